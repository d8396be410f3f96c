#!/bin/bash
# Bad events of every kind land in chat.dlq with a reason, and the good
# events behind them on the same partition still arrive.
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 1 # one partition: every bad event sits in front of good ones
t_start_worker ingest ingest

good() { printf '{"event_id":"g%s","user_id":"dlq","role":"user","content":"good %s"}\n' "$1" "$1"; }
{
	good 1
	echo '{"event_id":"b1","user_id":"dlq","role":"user","content":"unterminated'
	good 2
	echo '{"event_id":"b2","user_id":"dlq","role":"user","content":42}'
	echo '{"event_id":"b3","user_id":"d/lq","role":"user","content":"x"}'
	echo '{"event_id":"b4","user_id":"dlq","role":"robot","content":"x"}'
	echo '{"event_id":"b5","user_id":"dlq","role":"user"}'
	printf '{"event_id":"b6","user_id":"%s","role":"user","content":"x"}\n' "$(head -c 129 /dev/zero | tr '\0' a)"
	good 3
	printf '{"event_id":"b7","user_id":"dlq","role":"user","content":"\377\376"}\n'
	echo '[1,2,3]'
	good 4
} >"$T_DIR/mixed.jsonl"
"$BIN/chatmem" send --raw <"$T_DIR/mixed.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "chatmem send --raw failed"
# A key that does not match the event's session:
printf 'other:default\t{"event_id":"b8","user_id":"dlq","role":"user","content":"x"}\n' |
	kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_EVENTS" -K '	' || t_fail "kcat produce failed"
good 5 | "$BIN/chatmem" send 2>>"$T_DIR/logs/send.log"

# 14 events: ingest counts each once (applied, duplicate or dead), after
# Redis and the broker acknowledged what the batch wrote, DLQ entries
# included.
t_wait 30 t_stats_reach 14 || t_fail "not all 14 events were consumed: $(t_stats)"
[ "$(t_stats)" = "5 0 9" ] || t_fail "expected 5 applied and 9 to the dlq, got applied/duplicates/dead $(t_stats)"
[ "$(t_rcli llen 'chatmem:{dlq:default}:msgs')" = 5 ] ||
	t_fail "good events did not all arrive: $(t_rcli llen 'chatmem:{dlq:default}:msgs')"
kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_DLQ" -e -q >"$T_DIR/dlq.jsonl" || t_fail "cannot read chat.dlq"
n=$(wc -l <"$T_DIR/dlq.jsonl")
[ "$n" -eq 9 ] || t_fail "expected 9 dlq entries, got $n: $(cat "$T_DIR/dlq.jsonl")"
$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/dlq-entry.schema.json" "$T_DIR/dlq.jsonl" ||
	t_fail "dlq entries do not validate"
for why in "malformed JSON" "field 'content'" "field 'user_id'" "field 'role'" "missing field 'content'" "invalid UTF-8" "message key does not match"; do
	grep -q "$why" "$T_DIR/dlq.jsonl" || t_fail "no dlq entry says \"$why\""
done
t_rcli lrange 'chatmem:{dlq:default}:msgs' 0 -1 | grep -o '"content":"good [0-9]"' | tr -d '\n' |
	grep -q '"content":"good 1""content":"good 2""content":"good 3""content":"good 4""content":"good 5"' ||
	t_fail "good events out of order"
t_pass "9 bad events in chat.dlq with reasons; the 5 good ones arrived in order"
