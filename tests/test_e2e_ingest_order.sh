#!/bin/bash
# 10,000 events over 200 sessions, consumed by two ingest processes in one
# group, arrive complete and in order per session. Replaying them (the same
# events produced again, and the same offsets consumed again by a fresh
# group) changes nothing.
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 8
$PY "$T_SRC/tests/gen_events.py" 200 10000 ord >"$T_DIR/events.jsonl"

t_start_worker ingest ingest-a
A=$T_LAST_PID
t_start_worker ingest ingest-b
B=$T_LAST_PID
# Both members must hold partitions before the stream starts. Which member
# holds what is seen nowhere but in the workers' logs (the devbroker cannot
# describe a group): these two checks read log lines.
t_wait 30 sh -c "grep -q 'assigned [1-9]' '$T_DIR/logs/ingest-a.log' && grep -q 'assigned [1-9]' '$T_DIR/logs/ingest-b.log'" ||
	t_fail "the two ingest workers did not both get partitions"
# Events applied by one worker, from its last "stats:" log line.
log_applied() {
	sed -n 's/.*stats: \([0-9]*\) applied.*/\1/p' "$T_DIR/logs/$1.log" | tail -1
}

"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>"$T_DIR/logs/send.log" ||
	t_fail "chatmem send failed"
# Each event is applied once: the counter reaches 10000 when all are.
t_wait 60 t_applied_reach 10000 ||
	t_fail "not all 10000 events were applied: applied/duplicates/dead $(t_stats)"
t_sessions_check "$T_DIR/events.jsonl" || t_fail "sessions differ after the first pass"
keys_before=$(t_rcli dbsize)

# Replay 1: the same events (same event_ids) produced again.
"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>>"$T_DIR/logs/send.log" ||
	t_fail "chatmem send (replay) failed"
t_wait 60 t_stats_reach 20000 ||
	t_fail "the replay was not consumed: applied/duplicates/dead $(t_stats)"
set -- $(t_stats)
[ "$1 $2 $3" = "10000 10000 0" ] ||
	t_fail "replaying the same events applied something: applied/duplicates/dead $1/$2/$3"
t_sessions_check "$T_DIR/events.jsonl" || t_fail "sessions changed after replaying the same events"
t_stop_pid "$A"
t_stop_pid "$B"
a=$(log_applied ingest-a)
b=$(log_applied ingest-b)
[ "${a:-0}" -gt 0 ] || t_fail "worker a applied nothing"
[ "${b:-0}" -gt 0 ] || t_fail "worker b applied nothing"
t_log "first pass: a applied $a, b applied $b"

# Replay 2: the same 20000 offsets consumed again by a group with no
# committed offsets. A and B are stopped: what the counters gain now is
# ingest-c's.
set -- $(t_stats)
base="$1 $2 $3" base_total=$(($1 + $2 + $3))
CHATMEM_INGEST_GROUP=${T_NS}chatmem-ingest-replay t_start_worker ingest ingest-c
C=$T_LAST_PID
t_wait 60 t_stats_reach $((base_total + 20000)) ||
	t_fail "the offset replay was not consumed: applied/duplicates/dead $(t_stats)"
t_stop_pid "$C"
set -- $(t_stats) $base
[ "$(($1 - $4)) $(($2 - $5)) $(($3 - $6))" = "0 20000 0" ] ||
	t_fail "replaying the offsets applied something: applied/duplicates/dead $1/$2/$3, before $4/$5/$6"
t_sessions_check "$T_DIR/events.jsonl" || t_fail "sessions changed after replaying the offsets"
[ "$(t_rcli dbsize)" = "$keys_before" ] || t_fail "key count changed on replay"
t_pass "10000 events / 200 sessions in order; both replays changed nothing"
