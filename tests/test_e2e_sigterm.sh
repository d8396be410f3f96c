#!/bin/bash
# SIGTERM makes every worker exit 0 within 10 s: idle, and in the middle
# of a stream (finishing the batch in hand, committing, flushing).
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 8
$PY "$T_SRC/tests/gen_events.py" 50 5000 term >"$T_DIR/events.jsonl"

# Idle workers.
t_start_worker ingest ingest-idle
I=$T_LAST_PID
t_start_worker context context-idle
C=$T_LAST_PID
t_start_worker summarizer summarizer-idle
Z=$T_LAST_PID
# Each has done its job once (a marker session folded, marker requests
# answered on every partition) and is idle again.
t_summarizer_ready
t_context_ready
t_stop_pid "$I" 10
t_stop_pid "$C" 10
t_stop_pid "$Z" 10
t_log "idle ingest, context and summarizer exited 0 within 10 s"

# Busy: SIGTERM while events stream in; what was acknowledged is kept and
# the rest is applied by the next worker, exactly once.
t_start_worker ingest ingest-busy
I=$T_LAST_PID
t_ingest_ready
set -- $(t_stats)
base=$1
"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>>"$T_DIR/logs/send.log" &
S=$!
t_wait 30 t_applied_reach $((base + 1)) || t_fail "nothing applied"
t_stop_pid "$I" 10
set -- $(t_stats)
t_log "busy ingest exited 0 within 10 s after $(($1 - base)) applies"
wait "$S" || t_fail "send failed"
t_start_worker ingest ingest-next
N=$T_LAST_PID
done_all() { $PY "$T_SRC/tests/check_sessions.py" --port "$T_REDIS_PORT" "$T_DIR/events.jsonl"; }
t_wait 60 done_all || { done_all; t_fail "events lost or duplicated across the SIGTERM"; }
t_stop_pid "$N" 10
# The devbroker too (Apache Kafka's own shutdown is not ours to test).
if [ "$T_BROKER" = dev ]; then
	t_stop_pid "$T_BROKER_PID" 10
	t_pass "ingest, context, summarizer and devbroker exit 0 within 10 s of SIGTERM; nothing lost across it"
else
	t_pass "ingest, context and summarizer exit 0 within 10 s of SIGTERM; nothing lost across it"
fi
