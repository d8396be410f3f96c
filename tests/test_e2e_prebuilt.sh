#!/bin/bash
# A burst of 20 messages to one session: context.prebuilt, read with kcat,
# holds as its last entry for that session a context whose recent ends
# with the 20th message, and the burst published far fewer than 20 entries.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 4
t_start_worker ingest ingest
t_start_worker context context
t_wait 30 grep -q 'assigned [1-9]' "$T_DIR/logs/context.log" || t_fail "context got no partitions"
t_wait 30 grep -q 'assigned [1-9]' "$T_DIR/logs/ingest.log" || t_fail "ingest got no partitions"

for i in $(seq 1 20); do
	printf '{"event_id":"pb-%d","user_id":"burst","role":"user","content":"burst message %d"}\n' "$i" "$i"
done >"$T_DIR/burst.jsonl"
"$BIN/chatmem" send <"$T_DIR/burst.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"

last_is_20() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t context.prebuilt -e -q -f '%k\t%s\n' >"$T_DIR/prebuilt.tsv" 2>/dev/null || return 1
	grep '^burst:default	' "$T_DIR/prebuilt.tsv" | tail -1 | cut -f2- >"$T_DIR/last.json"
	grep -q '"content":"burst message 20"}\]' "$T_DIR/last.json"
}
t_wait 20 last_is_20 || t_fail "the last prebuilt context does not end with message 20: $(cat "$T_DIR/last.json")"
sleep 2 # nothing more should come for the burst
last_is_20 || t_fail "a later prebuilt entry does not end with message 20"
n=$(grep -c '^burst:default	' "$T_DIR/prebuilt.tsv")
[ "$n" -le 5 ] || t_fail "the burst published $n prebuilt contexts"
$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/context-prebuilt.schema.json" "$T_DIR/last.json" || t_fail "prebuilt context does not validate"
grep -q '"request_id"' "$T_DIR/last.json" && t_fail "prebuilt context carries a request_id"

# A profile change reaches the prebuilt context of every conversation of
# the user, not only the one its event was keyed by.
"$BIN/chatmem" send --user burst --conv side --content "a side conversation" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 10 sh -c "kcat -b $CHATMEM_KAFKA_BROKERS -C -t context.prebuilt -e -q -f '%k\n' | grep -q '^burst:side\$'" || t_fail "no prebuilt context for burst:side"
"$BIN/chatmem" send --user burst --type profile.set --profile '{"name":"Burst Tester"}' 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
side_has_name() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t context.prebuilt -e -q -f '%k\t%s\n' 2>/dev/null |
		grep '^burst:side	' | tail -1 | grep -q '"name":"Burst Tester"'
}
t_wait 15 side_has_name || t_fail "the profile change did not republish burst:side"
t_pass "20-message burst: $n prebuilt entries, the last one ends with message 20"
