#!/bin/bash
# kill -9 of Apache Kafka itself mid-stream, then a restart on the same log
# directory and port: the ingest and context workers, left running,
# reconnect by themselves, and no event is lost or applied twice.
# brokers: apache
. "$(dirname "$0")/lib.sh"

# A broker of this test's own (it is killed), not the run's.
unset CHATMEM_E2E_KAFKA
t_start_redis
t_start_broker 8
$PY "$T_SRC/tests/gen_events.py" 100 10000 brs >"$T_DIR/events.jsonl"

t_start_worker ingest ingest
t_start_worker context context
t_ingest_ready
t_context_ready

# 20 paced chunks of 500: the broker dies under the stream.
t_send_paced "$T_DIR/events.jsonl" 500 0.2
set -- $(t_stats)
base=$1

t_wait 60 t_applied_reach $((base + 2000)) || t_fail "ingest did not start applying"
t_kill_kafka
set -- $(t_stats)
[ $(($1 - base)) -lt 10000 ] || t_fail "the kill came after the whole stream"
t_log "killed the broker (-9) with $(($1 - base)) of 10000 applied"
t_start_kafka
t_log "the broker is back on $CHATMEM_KAFKA_BROKERS"

wait "$T_SENDER" || t_fail "producing the events failed (a send did not survive the broker restart)"
done_all() { t_sessions_check "$T_DIR/events.jsonl"; }
t_wait 120 done_all || { done_all; t_fail "events lost or duplicated across the broker restart"; }
# The context worker answers again on every partition.
t_context_markers
set -- $(t_stats)
[ "$1" = $((base + 10000)) ] || t_fail "applied $(($1 - base)) events, not 10000"
t_pass "broker killed (-9) and restarted on its data mid-stream: the workers resumed, 0 lost, 0 duplicated"
