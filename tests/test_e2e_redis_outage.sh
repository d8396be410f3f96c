#!/bin/bash
# Redis stopped for 5 s mid-stream, then restarted: ingest pauses, retries
# and resumes, and nothing is lost; context replies keep coming meanwhile,
# marked degraded.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 8
$PY "$T_SRC/tests/gen_events.py" 100 6000 outage >"$T_DIR/events.jsonl"

t_start_worker ingest ingest
t_start_worker context context
t_wait 30 grep -q 'assigned [1-9]' "$T_DIR/logs/ingest.log" || t_fail "ingest got no partitions"
t_wait 30 grep -q 'assigned [1-9]' "$T_DIR/logs/context.log" || t_fail "context got no partitions"

(
	split -l 300 "$T_DIR/events.jsonl" "$T_DIR/chunk."
	for c in "$T_DIR"/chunk.*; do
		"$BIN/chatmem" send <"$c" 2>>"$T_DIR/logs/send.log" || exit 1
		sleep 0.4
	done
) &
SENDER=$!

t_wait 30 sh -c "[ \$(redis-cli -p $T_REDIS_PORT dbsize) -gt 30 ]" || t_fail "ingest did not start applying"
t_stop_redis
t_log "redis stopped"
# While Redis is down, a context request is still answered, degraded.
"$BIN/chatmem" context u1-outage c1 --json --timeout 10000 >"$T_DIR/degraded.json" ||
	t_fail "no context reply while redis was down"
grep -q '"degraded":true' "$T_DIR/degraded.json" || t_fail "reply not marked degraded: $(cat "$T_DIR/degraded.json")"
sleep 4
t_start_redis
t_log "redis restarted on the same port and data"

wait "$SENDER" || t_fail "producing the events failed"
done_all() {
	$PY "$T_SRC/tests/check_sessions.py" --port "$T_REDIS_PORT" "$T_DIR/events.jsonl"
}
t_wait 60 done_all || { done_all; t_fail "events lost after the redis outage"; }
grep -q 'partitions paused' "$T_DIR/logs/ingest.log" || t_fail "ingest never paused"
grep -q 'partitions resumed' "$T_DIR/logs/ingest.log" || t_fail "ingest never resumed"
"$BIN/chatmem" context u1-outage c1 --json >"$T_DIR/after.json" || t_fail "no reply after the outage"
grep -q '"degraded":false' "$T_DIR/after.json" || t_fail "reply still degraded after redis came back"
t_pass "redis down 5 s mid-stream: 0 lost, paused and resumed, replies degraded meanwhile"
