#!/bin/bash
# 10,000 events over 200 sessions, consumed by two ingest processes in one
# group, arrive complete and in order per session. Replaying them (the same
# events produced again, and the same offsets consumed again by a fresh
# group) changes nothing.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 8
$PY "$T_SRC/tests/gen_events.py" 200 10000 ord >"$T_DIR/events.jsonl"

t_start_worker ingest ingest-a
A=$T_LAST_PID
t_start_worker ingest ingest-b
B=$T_LAST_PID
# Both members must hold partitions before the stream starts.
t_wait 30 sh -c "grep -q 'assigned [1-9]' '$T_DIR/logs/ingest-a.log' && grep -q 'assigned [1-9]' '$T_DIR/logs/ingest-b.log'" ||
	t_fail "the two ingest workers did not both get partitions"

"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>"$T_DIR/logs/send.log" ||
	t_fail "chatmem send failed"
t_wait 60 t_stats_reach 10000 ingest-a ingest-b ||
	t_fail "not all 10000 events were consumed: $(t_stats ingest-a ingest-b)"
set -- $(t_stats ingest-a)
[ "$1" -gt 0 ] || t_fail "worker a applied nothing"
set -- $(t_stats ingest-b)
[ "$1" -gt 0 ] || t_fail "worker b applied nothing"
t_sessions_check "$T_DIR/events.jsonl" || t_fail "sessions differ after the first pass"
t_log "first pass: a applied $(t_stats ingest-a | cut -d' ' -f1), b applied $(t_stats ingest-b | cut -d' ' -f1)"
keys_before=$(t_rcli dbsize)

# Replay 1: the same events (same event_ids) produced again.
"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>>"$T_DIR/logs/send.log" ||
	t_fail "chatmem send (replay) failed"
t_wait 60 t_stats_reach 20000 ingest-a ingest-b ||
	t_fail "the replay was not consumed: $(t_stats ingest-a ingest-b)"
set -- $(t_stats ingest-a ingest-b)
[ "$1 $2" = "10000 10000" ] ||
	t_fail "replaying the same events applied something: applied/duplicates $1/$2"
t_sessions_check "$T_DIR/events.jsonl" || t_fail "sessions changed after replaying the same events"
t_stop_pid "$A"
t_stop_pid "$B"

# Replay 2: the same 20000 offsets consumed again by a group with no
# committed offsets.
CHATMEM_INGEST_GROUP=chatmem-ingest-replay t_start_worker ingest ingest-c
C=$T_LAST_PID
t_wait 60 t_stats_reach 20000 ingest-c ||
	t_fail "the offset replay was not consumed: $(t_stats ingest-c)"
t_stop_pid "$C"
set -- $(t_stats ingest-c)
[ "$1 $2" = "0 20000" ] || t_fail "replaying the offsets applied something: applied/duplicates $1/$2"
t_sessions_check "$T_DIR/events.jsonl" || t_fail "sessions changed after replaying the offsets"
[ "$(t_rcli dbsize)" = "$keys_before" ] || t_fail "key count changed on replay"
t_pass "10000 events / 200 sessions in order; both replays changed nothing"
