#!/bin/bash
# Redis stopped mid-stream, for as long as the rest of the stream takes to
# produce, then restarted: ingest pauses, retries and resumes, and nothing
# is lost; context replies keep coming meanwhile, marked degraded.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 8
$PY "$T_SRC/tests/gen_events.py" 100 6000 outage >"$T_DIR/events.jsonl"

t_start_worker ingest ingest
t_start_worker context context
t_ingest_ready
t_context_ready

t_send_paced "$T_DIR/events.jsonl" 300 0.4

# The marker event counts as one applied event.
t_wait 30 t_applied_reach 31 || t_fail "ingest did not start applying"
t_stop_redis
sent=$(cat "$T_DIR/sent.txt" 2>/dev/null | wc -l)
[ "$sent" -lt 20 ] || t_fail "the whole stream was produced before the outage"
t_log "redis stopped with $sent of 20 chunks produced"
# While Redis is down, a context request is still answered, degraded.
"$BIN/chatmem" context u1-outage c1 --json --timeout 10000 >"$T_DIR/degraded.json" ||
	t_fail "no context reply while redis was down"
grep -q '"degraded":true' "$T_DIR/degraded.json" || t_fail "reply not marked degraded: $(cat "$T_DIR/degraded.json")"
# Redis stays down until the rest of the stream is on the broker.
wait "$T_SENDER" || t_fail "producing the events failed"
t_start_redis
t_log "redis restarted on the same port and data"

done_all() {
	$PY "$T_SRC/tests/check_sessions.py" --port "$T_REDIS_PORT" "$T_DIR/events.jsonl"
}
# Every event is in Redis, once and in order, though some were produced
# only after Redis stopped: ingest resumed after the outage.
t_wait 60 done_all || { done_all; t_fail "events lost after the redis outage"; }
# That ingest paused its partitions (rather than, say, polling on without
# storing) shows nowhere but in its log.
grep -q 'partitions paused' "$T_DIR/logs/ingest.log" || t_fail "ingest never paused"
"$BIN/chatmem" context u1-outage c1 --json >"$T_DIR/after.json" || t_fail "no reply after the outage"
grep -q '"degraded":false' "$T_DIR/after.json" || t_fail "reply still degraded after redis came back"
t_pass "redis down mid-stream: 0 lost, paused and resumed, replies degraded meanwhile"
