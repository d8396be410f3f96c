#!/bin/bash
# kill -9 of an ingest worker mid-stream, then a restart: 0 lost and 0
# duplicated.
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 8
$PY "$T_SRC/tests/gen_events.py" 100 10000 kill >"$T_DIR/events.jsonl"

t_start_worker ingest ingest-1
W=$T_LAST_PID
t_ingest_ready

# Produce in 20 paced chunks so that the kill lands mid-stream.
t_send_paced "$T_DIR/events.jsonl" 500 0.2

# Kill in the middle of the fifth chunk (the sender is paced over ~4 s).
t_wait 30 t_applied_reach 2251 || t_fail "ingest did not start applying"
kill -KILL "$W"
wait "$W" 2>/dev/null || true
at_kill=$(t_rcli eval "local n=0 for _,k in ipairs(redis.call('keys','chatmem:{*-kill:*}:meta')) do n=n+tonumber(redis.call('hget',k,'total') or 0) end return n" 0)
[ "$at_kill" -lt 10000 ] || t_fail "the kill came after the whole stream ($at_kill applied)"
t_log "killed ingest (-9) with $at_kill of 10000 events in redis"
# Only ingest-2 adds to the counters from now on.
set -- $(t_stats)
base="$1 $2"
t_start_worker ingest ingest-2
R=$T_LAST_PID
wait "$T_SENDER" || t_fail "producing the events failed"

done_all() {
	$PY "$T_SRC/tests/check_sessions.py" --port "$T_REDIS_PORT" "$T_DIR/events.jsonl"
}
# The restarted member waits for the killed one's session to time out
# (session.timeout.ms = 10 s) before it gets the partitions.
t_wait 90 done_all || { done_all; t_fail "events lost or duplicated after kill -9"; }
t_stop_pid "$R"
set -- $(t_stats) $base
[ $(($1 - $4)) -gt 0 ] || t_fail "the restarted worker applied nothing"
t_log "restarted worker: $(($1 - $4)) applied, $(($2 - $5)) redelivered and skipped"
t_pass "kill -9 mid-stream: 0 lost, 0 duplicated"
