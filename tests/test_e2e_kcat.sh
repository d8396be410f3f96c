#!/bin/bash
# Drives the fleet from a Kafka client we did not write (kcat), using only
# the JSON contract of DESIGN.md: events in, a request in, the reply out.
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 8
t_start_worker ingest ingest
t_start_worker context context

# Events, keyed by session as the contract says.
$PY - >"$T_DIR/events.tsv" <<'PYEOF'
import json
lines = ["Hi, I'm Ada, a compiler engineer", "I like OCaml and Rust",
         "What is a borrow checker?", "It enforces ownership rules.",
         "Thanks, that helps"]
for i, text in enumerate(lines):
    ev = {"type": "message", "event_id": "kc-%d" % i, "user_id": "ada",
          "conversation_id": "k1", "role": "user" if i % 2 == 0 else "assistant",
          "content": text, "ts": 1732400000000 + i}
    print("ada:k1\t" + json.dumps(ev))
PYEOF
kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_EVENTS" -K '	' <"$T_DIR/events.tsv" || t_fail "kcat produce events failed"
t_wait 30 sh -c "[ \$(redis-cli -p $T_REDIS_PORT llen 'chatmem:{ada:k1}:msgs') = 5 ]" || t_fail "events did not arrive"

# A request with our own reply topic, then read the reply with kcat.
printf 'kreq-1\t{"request_id":"kreq-1","user_id":"ada","conversation_id":"k1","reply_to":"%s","max_tokens":500,"recent":2}\n' "$T_REPLIES.kcat" |
	kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_REQUESTS" -K '	' || t_fail "kcat produce request failed"
got_reply() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES.kcat" -e -q -f '%k\t%s\n' >"$T_DIR/reply.tsv" 2>/dev/null &&
		grep -q '^kreq-1	' "$T_DIR/reply.tsv"
}
t_wait 30 got_reply || t_fail "no reply on $T_REPLIES.kcat"
grep '^kreq-1	' "$T_DIR/reply.tsv" | cut -f2- >"$T_DIR/reply.json"
$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/context-reply.schema.json" "$T_DIR/reply.json" ||
	t_fail "reply does not validate"
$PY - "$T_DIR/reply.json" <<'PYEOF' || t_fail "reply content is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["request_id"] == "kreq-1" and r["user_id"] == "ada", r
assert [m["content"] for m in r["recent"]] == ["It enforces ownership rules.", "Thanks, that helps"], r["recent"]
assert r["metadata"]["total_messages"] == 5, r["metadata"]
assert r["metadata"]["tokens"] <= 500, r["metadata"]
PYEOF
# The reply carries the request_id as its kafka_correlationId header.
kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES.kcat" -e -q -f '%k\t%h\n' 2>/dev/null |
	grep -q '^kreq-1	.*kafka_correlationId=kreq-1' || t_fail "the reply has no kafka_correlationId header"

# Header routing (Spring's ReplyingKafkaTemplate, SmallRye): a body without
# request_id and reply_to, the headers stand for them; the reply carries
# the request's kafka_correlationId back.
printf '{"user_id":"ada","conversation_id":"k1","max_tokens":300}' |
	kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_REQUESTS" -k ada:k1 \
		-H "kafka_correlationId=corr-77" -H "kafka_replyTopic=$T_REPLIES.hdr" ||
	t_fail "kcat produce of the header-routed request failed"
got_hdr_reply() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES.hdr" -e -q -f '%k\t%h\t%s\n' >"$T_DIR/hdr.tsv" 2>/dev/null &&
		grep -q '^corr-77	' "$T_DIR/hdr.tsv"
}
t_wait 30 got_hdr_reply || t_fail "no reply on $T_REPLIES.hdr to the header-routed request"
grep -q '^corr-77	kafka_correlationId=corr-77	' "$T_DIR/hdr.tsv" ||
	t_fail "the header-routed reply lacks its correlation header: $(cat "$T_DIR/hdr.tsv")"
grep '^corr-77	' "$T_DIR/hdr.tsv" | cut -f3- >"$T_DIR/hdr.json"
$PY - "$T_DIR/hdr.json" <<'PYEOF' || t_fail "the header-routed reply is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["request_id"] == "corr-77" and "context" in r, r
assert r["metadata"]["tokens"] <= 300, r["metadata"]
PYEOF
t_pass "kcat produced 5 events and a request; the reply on $T_REPLIES.kcat is correct, schema-valid and correlated by header; a request routed only by headers is answered on its kafka_replyTopic"
