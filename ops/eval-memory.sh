#!/bin/bash
# make eval-memory: answer retention of chatmem's contexts on LoCoMo's very
# long conversations, against two baselines measured in the same run
# (tests/eval/eval_memory.c says how). Starts its own fleet the way the
# integration tests do (tests/lib.sh: a redis-server on a free port, the
# devbroker, chatmem-ingest, chatmem-summarizer and chatmem-context),
# checks that each worker serves, runs the evaluation, and stops everything
# it started, whatever happens.
#
#   ops/eval-memory.sh EVAL_MEMORY_BINARY [OUT_DIR]
#
# Writes OUT_DIR/memory.json (default build/eval); the fleet's logs are in
# tests/out/eval-memory/logs. Exits 0 when the data is absent (saying so)
# and whatever the results are; 1 when the harness or the fleet failed.
#
# Settings (environment):
#   EVAL_MEMORY_DATA      the data (default ../shared/data/locomo-dev/
#                         locomo-dev.json, relative to the repository)
#   EVAL_MEMORY_BROKERS   an external Kafka bootstrap (Apache Kafka, say)
#                         instead of the devbroker; its topics must exist,
#                         the reply topic and context.replies.marker (the
#                         readiness check) included. User ids then get a
#                         suffix of their own, so that events of earlier
#                         runs left on the topic do not mix in.
#   EVAL_MEMORY_IMPLICIT  recall.implicit of the context worker (default 0:
#                         the issue compares "without query" with implicit
#                         recall off; 1 measures the product's default)
#   EVAL_MEMORY_REPLY_TOPIC  reply topic (default context.replies.eval)
#   EVAL_MEMORY_ARGS      more options for the binary (-w, -s, -t...)
# Any CHATMEM_* setting (CHATMEM_CONTEXT_RECENT_VERBATIM, ...) reaches the
# workers and the evaluation alike.
set -eu -o pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
EVAL=${1:?usage: ops/eval-memory.sh EVAL_MEMORY_BINARY [OUT_DIR]}
OUT=${2:-$here/build/eval}
DATA=${EVAL_MEMORY_DATA:-../shared/data/locomo-dev/locomo-dev.json}
case "$DATA" in
/*) ;;
*) DATA=$here/$DATA ;;
esac

# Nothing to start without the data.
if [ ! -e "$DATA" ]; then
	exec "$EVAL" "$DATA"
fi

# The fleet, as the integration tests start it (stopped on exit).
. "$here/tests/lib.sh"

REPLY_TOPIC=${EVAL_MEMORY_REPLY_TOPIC:-context.replies.eval}
USER_PREFIX=locomo
export CHATMEM_RECALL_IMPLICIT=${EVAL_MEMORY_IMPLICIT:-0}
mkdir -p "$OUT"

t_start_redis
if [ -n "${EVAL_MEMORY_BROKERS:-}" ]; then
	export CHATMEM_KAFKA_BROKERS=$EVAL_MEMORY_BROKERS
	T_PARTITIONS=$(kcat -b "$CHATMEM_KAFKA_BROKERS" -L -t context.requests |
		sed -n 's/.* with \([0-9]*\) partitions.*/\1/p' | head -1)
	[ -n "$T_PARTITIONS" ] && [ "$T_PARTITIONS" -gt 0 ] ||
		t_fail "no topic context.requests at '$CHATMEM_KAFKA_BROKERS'"
	USER_PREFIX=locomo-$(date +%s)
	t_log "kafka at '$CHATMEM_KAFKA_BROKERS' ($T_PARTITIONS partitions)"
else
	t_start_broker 8
fi
t_start_worker ingest ingest
INGEST_PID=$T_LAST_PID
t_start_worker summarizer summarizer
SUMMARIZER_PID=$T_LAST_PID
t_start_worker context context
CONTEXT_PID=$T_LAST_PID
t_ingest_ready
t_summarizer_ready
t_context_ready
t_log "fleet ready (redis :$T_REDIS_PORT, logs in $T_DIR/logs)"

label=$(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown)
status=0
# shellcheck disable=SC2086 # EVAL_MEMORY_ARGS is a list of options
"$EVAL" -o "$OUT/memory.json" -r "$REPLY_TOPIC" -u "$USER_PREFIX" \
	-L "$label" ${EVAL_MEMORY_ARGS:-} "$DATA" || status=$?

# An orderly stop; a worker that does not stop cleanly is reported (the
# EXIT trap kills what is left).
for pid in $CONTEXT_PID $SUMMARIZER_PID $INGEST_PID; do
	kill -TERM "$pid" 2>/dev/null || true
	if ! t_wait 10 t_pid_gone "$pid"; then
		t_log "WARNING: pid $pid still running 10 s after SIGTERM"
		continue
	fi
	rc=0
	wait "$pid" || rc=$?
	[ $rc -eq 0 ] || t_log "WARNING: pid $pid exited with status $rc after SIGTERM"
done
if [ "$status" -ne 0 ]; then
	t_fail "the evaluation failed (status $status)"
fi
