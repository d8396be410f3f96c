#!/bin/bash
# A burst of 20 messages to one session: context.prebuilt, read with kcat,
# holds for that session contexts that only move forward, the newest
# ending with the 20th message, and the burst published far fewer than 20
# entries.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 4
t_start_worker ingest ingest
t_start_worker context context
# Both run before the burst: a marker session's context was published.
t_ingest_ready
t_wait 30 sh -c "kcat -b $CHATMEM_KAFKA_BROKERS -C -t context.prebuilt -e -q -f '%k\n' | grep -q '^$T_MARKER\$'" ||
	t_fail "no prebuilt context for the marker session $T_MARKER"

for i in $(seq 1 20); do
	printf '{"event_id":"pb-%d","user_id":"burst","role":"user","content":"burst message %d"}\n' "$i" "$i"
done >"$T_DIR/burst.jsonl"
"$BIN/chatmem" send <"$T_DIR/burst.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"

# Prints, oldest first, the number of the last message of each prebuilt
# context of burst:default (one session: one partition, in order).
burst_lasts() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t context.prebuilt -e -q -f '%k\t%s\n' >"$T_DIR/prebuilt.tsv" 2>/dev/null || return 1
	grep '^burst:default	' "$T_DIR/prebuilt.tsv" | cut -f2- >"$T_DIR/burst-prebuilt.jsonl"
	$PY -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(r["recent"][-1]["content"].split()[-1])
' "$T_DIR/burst-prebuilt.jsonl"
}
last_is() { [ "$(burst_lasts | tail -1)" = "$1" ]; }
t_wait 20 last_is 20 || t_fail "the last prebuilt context does not end with message 20: $(burst_lasts | tail -1)"
grep '"content":"burst message 20"}\]' "$T_DIR/burst-prebuilt.jsonl" | tail -1 >"$T_DIR/last.json"

# Nothing more should come for the burst: a 21st message to the same
# session is the marker. Once its context is out, every context published
# for the session is there, in order.
"$BIN/chatmem" send --user burst --content "burst message 21" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 20 last_is 21 || t_fail "the prebuilt context of the 21st message did not come: $(burst_lasts | tail -1)"
burst_lasts >"$T_DIR/lasts.txt"
sort -n -c "$T_DIR/lasts.txt" 2>/dev/null ||
	t_fail "a prebuilt context older than the one before it was published: $(tr '\n' ' ' <"$T_DIR/lasts.txt")"
n=$(awk '$1 <= 20' "$T_DIR/lasts.txt" | wc -l)
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
t_pass "20-message burst: $n prebuilt entries, in order, the last one ends with message 20"
