#!/bin/bash
# A dead-letter topic that fails: the devbroker's fault injection makes
# chat.dlq refuse entries, and the workers must neither hang nor lose one.
#   1. ingest, permanent error (topic authorization): the DLQ entry is
#      given up and counted (ingest_dlq_lost), the partition goes on, and
#      SIGTERM still exits within 10 s.
#   2. summarizer, an entry that cannot be delivered yet (chat.dlq has no
#      usable metadata) when SIGTERM arrives: the bad job's offset must not
#      be stored, so that after the restart (chat.dlq healthy again) the
#      job is handled again and its DLQ entry arrives.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 1 # one partition: the bad messages sit in front of good ones

stat() { t_rcli hget chatmem:stats "$1"; }
dlq_entries() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t chat.dlq -o beginning -e -q \
		2>/dev/null | grep -c "$1"
}

# --- 1. ingest
good() { printf '{"event_id":"g%s","user_id":"dq","role":"user","content":"good %s"}\n' "$1" "$1"; }
{
	good 1
	echo '{"event_id":"b1","user_id":"dq","role":"user","content":"unterminated'
	good 2
	good 3
} >"$T_DIR/events.jsonl"
"$BIN/chatmem" send --raw <"$T_DIR/events.jsonl" 2>>"$T_DIR/logs/send.log" ||
	t_fail "chatmem send --raw failed"
# Every produce request from here on fails for good: the next ones are
# ingest's (the events are in already).
t_faults "produce-errors 1000 TOPIC_AUTHORIZATION_FAILED"
t_start_worker ingest ingest
I=$T_LAST_PID
t_wait 60 sh -c "[ \"\$(redis-cli -p $T_REDIS_PORT hget chatmem:stats ingest_dlq_lost)\" = 1 ]" ||
	t_fail "the undeliverable DLQ entry was not given up"
[ "$(stat ingest_applied)" = 3 ] || t_fail "good events not applied: $(stat ingest_applied)"
[ "$(stat ingest_dead)" = 1 ] || t_fail "bad event not counted: $(stat ingest_dead)"
t_stop_pid "$I" 10

# --- 2. summarizer
# chat.dlq now answers metadata with an error: an entry waits in the
# producer (retried) instead of being delivered.
t_faults "produce-errors 0 NO_ERROR" "topic-error chat.dlq TOPIC_AUTHORIZATION_FAILED"
t_start_worker ingest ingest
I=$T_LAST_PID
t_start_worker summarizer summarizer-1
S=$T_LAST_PID
# A session long enough to be folded: its fold is the marker that the
# summarizer is through the jobs in front of the bad one.
for i in $(seq 1 12); do
	printf '{"event_id":"s%s","user_id":"dq2","role":"user","content":"I moved to Lisbon in %s."}\n' "$i" "$((2000 + i))"
done | "$BIN/chatmem" send 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 60 sh -c "[ -n \"\$(redis-cli -p $T_REDIS_PORT hget 'chatmem:{dq2:default}:summary' text)\" ]" ||
	t_fail "the session was not folded"
printf 'dq2:default\t{"user_id":"bad id","conversation_id":"badjob"}\n' |
	kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t chat.compaction -K '	' ||
	t_fail "kcat produce failed"
# The summarizer polls the next job within its 100 ms loop; its DLQ entry
# then waits in the producer. Two seconds is ample for that, and nothing
# but the fix keeps the offset unstored.
sleep 2
kill -TERM "$S"
t_wait 10 sh -c "! kill -0 $S 2>/dev/null" || t_fail "summarizer still running 10 s after SIGTERM"
wait "$S" 2>/dev/null || true
[ "$(dlq_entries badjob)" = 0 ] || t_fail "the DLQ entry was delivered despite the fault"

# chat.dlq healthy again: the restarted summarizer must handle the bad job
# again (its offset was not stored) and deliver its DLQ entry.
t_faults "topic-error chat.dlq NO_ERROR"
t_start_worker summarizer summarizer-2
t_wait 60 sh -c "[ \"\$(kcat -b $CHATMEM_KAFKA_BROKERS -C -t chat.dlq -o beginning -e -q 2>/dev/null | grep -c badjob)\" -ge 1 ]" ||
	t_fail "the bad job's DLQ entry never arrived: its offset was stored before the entry was delivered"
t_stop_pid "$T_LAST_PID" 10
t_stop_pid "$I" 10
t_pass "an undeliverable DLQ entry is given up and counted; an undelivered one keeps its job for the restart"
