#!/bin/bash
# Rebalance under load, on Apache Kafka: while 20,000 events over 200
# sessions stream in, a third ingest worker joins the group of two, then
# one of the first two leaves (SIGTERM). Partitions move twice mid-stream;
# afterwards every session holds its events exactly once, in order.
# brokers: apache
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 8
$PY "$T_SRC/tests/gen_events.py" 200 20000 reb >"$T_DIR/events.jsonl"

t_start_worker ingest ingest-a
A=$T_LAST_PID
t_start_worker ingest ingest-b
B=$T_LAST_PID
t_wait 30 sh -c "grep -q 'assigned [1-9]' '$T_DIR/logs/ingest-a.log' && grep -q 'assigned [1-9]' '$T_DIR/logs/ingest-b.log'" ||
	t_fail "the two ingest workers did not both get partitions"
t_ingest_ready

# 40 paced chunks of 500 (~8 s and more): the group changes twice while
# they stream in.
t_send_paced "$T_DIR/events.jsonl" 500 0.2

# Events applied by one worker, from its last "stats:" log line.
log_applied() {
	sed -n 's/.*stats: \([0-9]*\) applied.*/\1/p' "$T_DIR/logs/$1.log" | tail -1
}
# The marker event was applied before: the stream's 20000 come on top.
set -- $(t_stats)
base=$1

t_wait 60 t_applied_reach $((base + 5000)) || t_fail "ingest did not start applying"
t_start_worker ingest ingest-c
C=$T_LAST_PID
t_wait 60 grep -q 'assigned [1-9]' "$T_DIR/logs/ingest-c.log" ||
	t_fail "the joining worker got no partitions"
set -- $(t_stats)
t_log "ingest-c joined with $(($1 - base)) of 20000 applied"

t_wait 60 t_applied_reach $((base + 10000)) || t_fail "ingest stalled after the join"
set -- $(t_stats)
[ $(($1 - base)) -lt 20000 ] || t_fail "the stream was over before ingest-b left"
t_stop_pid "$B" 10
t_log "ingest-b left (SIGTERM) with $(($1 - base)) of 20000 applied"

wait "$T_SENDER" || t_fail "producing the events failed"
done_all() { t_sessions_check "$T_DIR/events.jsonl"; }
t_wait 90 done_all || { done_all; t_fail "events lost, duplicated or out of order across the rebalances"; }
t_stop_pid "$A" 10
t_stop_pid "$C" 10
set -- $(t_stats)
[ "$1" = $((base + 20000)) ] || t_fail "applied $(($1 - base)) events, not 20000"
a=$(log_applied ingest-a)
b=$(log_applied ingest-b)
c=$(log_applied ingest-c)
[ "${c:-0}" -gt 0 ] || t_fail "the joining worker applied nothing"
t_log "applied: a $a, b $b, c $c; $2 redelivered and skipped"
t_pass "a worker joined and one left mid-stream: 20000 events, 0 lost, 0 duplicated, in order"
