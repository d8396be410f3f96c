#!/bin/bash
# The seed conversation through ingest and context: the reply's `recent`
# holds the last 3 messages verbatim, the reply validates against schemas/,
# inline history is used when given, and a request with bad fields gets an
# error reply (also schema-valid).
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 8
t_start_worker ingest ingest
t_start_worker context context

"$BIN/chatmem" send <"$T_SRC/ops/seed-conversation.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 30 sh -c "[ \$(redis-cli -p $T_REDIS_PORT llen 'chatmem:{sumit:default}:msgs') = 11 ]" ||
	t_fail "the seed conversation did not reach redis"

"$BIN/chatmem" context sumit --query "Do you remember my name?" --json >"$T_DIR/reply.json" ||
	t_fail "no context reply"
$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/context-reply.schema.json" "$T_DIR/reply.json" ||
	t_fail "the reply does not validate against schemas/context-reply.schema.json"
$PY - "$T_DIR/reply.json" "$T_SRC/ops/seed-conversation.jsonl" <<'PYEOF' || t_fail "reply content is wrong"
import json, sys
reply = json.load(open(sys.argv[1]))
seed = [json.loads(l) for l in open(sys.argv[2])]
want = [{"role": e["role"], "content": e["content"]} for e in seed[-3:]]
assert reply["recent"] == want, reply["recent"]
ctx = reply["context"]
for e in seed[-3:]:
    assert e["content"] in ctx, e["content"]
assert ctx.rstrip().endswith("User: Do you remember my name?"), ctx
m = reply["metadata"]
assert m["total_messages"] == 11, m
assert 0 < m["tokens"] <= 2000 and m["tokens"] < m["full_history_tokens"], m
assert m["degraded"] is False and m["cached"] is False, m
print("reply ok: recent = last 3 verbatim, tokens %d of %d" % (m["tokens"], m["full_history_tokens"]))
PYEOF

# Inline history is used instead of the stored messages.
printf '[{"role":"user","content":"inline one"},{"role":"assistant","content":"inline two"}]' >"$T_DIR/history.json"
"$BIN/chatmem" context sumit --history-file "$T_DIR/history.json" --json >"$T_DIR/inline.json" ||
	t_fail "no reply to the inline-history request"
grep -q '"recent":\[{"role":"user","content":"inline one"},{"role":"assistant","content":"inline two"}\]' "$T_DIR/inline.json" ||
	t_fail "inline history not used: $(cat "$T_DIR/inline.json")"

# An application's own history tells who the user is before ingest has
# seen any of it: a user chatmem has never heard of gets the profile the
# inline history states. The request's profile wins field by field, and
# with --no-stored nothing stored is read (sumit's stored name and summary
# are not in it) and the reply is not degraded.
printf '[{"role":"user","content":"Hi, I'"'"'m Ada Quinn"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"I work as a data engineer"},{"role":"assistant","content":"Nice."},{"role":"user","content":"Do you remember my name?"}]' >"$T_DIR/fresh.json"
"$BIN/chatmem" context nobody-yet --history-file "$T_DIR/fresh.json" --json >"$T_DIR/fresh-reply.json" ||
	t_fail "no reply to the fresh user's inline-history request"
"$BIN/chatmem" context sumit --history-file "$T_DIR/fresh.json" --profile '{"role":"architect"}' --no-stored --json >"$T_DIR/stateless.json" ||
	t_fail "no reply to the --no-stored request"
"$BIN/chatmem" context sumit --profile '{"name":"Sumit P."}' --json >"$T_DIR/profiled.json" ||
	t_fail "no reply to the --profile request"
$PY - "$T_DIR/fresh-reply.json" "$T_DIR/stateless.json" "$T_DIR/profiled.json" <<'PYEOF' || t_fail "the profile of an inline-history request is wrong"
import json, sys
fresh, stateless, profiled = (json.load(open(p)) for p in sys.argv[1:4])
assert fresh["profile"] == {"name": "Ada Quinn", "role": "data engineer", "interests": []}, fresh["profile"]
assert fresh["context"].startswith("User Profile: Ada Quinn, data engineer\n"), fresh["context"]
assert fresh["metadata"]["degraded"] is False, fresh["metadata"]
assert stateless["profile"] == {"name": "Ada Quinn", "role": "architect", "interests": []}, stateless["profile"]
assert "Sumit" not in stateless["context"] and stateless["summary"] == "", stateless
assert stateless["metadata"]["degraded"] is False, stateless["metadata"]
p = profiled["profile"]
assert p["name"] == "Sumit P." and p["role"] == "full stack developer", p
assert "React" in p["interests"], p
print("profiles ok: inline history, request profile, stored: false")
PYEOF

# Bad fields: exactly one error reply each, correlated by request_id. Sent
# with kcat so that no chatmem-side validation gets in the way.
{
	printf 'e1\t{"request_id":"e1","user_id":"bad/user"}\n'
	printf 'e2\t{"request_id":"e2","user_id":"sumit","max_tokens":"lots"}\n'
	printf 'e3\t{"request_id":"e3","user_id":"sumit","recent":-1}\n'
	printf 'e4\t{"request_id":"e4"}\n'
	printf 'e5\t{"request_id":"e5","user_id":"sumit","history":[{"role":"user"}]}\n'
} | kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_REQUESTS" -K '	' || t_fail "kcat produce failed"
got_errors() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES" -e -q -f '%k\t%s\n' >"$T_DIR/replies.tsv" &&
		[ "$(grep -c '^e[1-5]	' "$T_DIR/replies.tsv")" -ge 5 ]
}
t_wait 20 got_errors || t_fail "not every bad request got a reply: $(cat "$T_DIR/replies.tsv")"
# Exactly one each: marker requests behind them on every partition are
# answered, so any second reply would have been made by now.
t_context_markers
kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES" -e -q -f '%k\t%s\n' >"$T_DIR/replies.tsv" ||
	t_fail "cannot read the replies"
for i in 1 2 3 4 5; do
	[ "$(grep -c "^e$i	" "$T_DIR/replies.tsv")" = 1 ] || t_fail "request e$i got other than one reply"
	grep "^e$i	" "$T_DIR/replies.tsv" | cut -f2- >"$T_DIR/error-$i.json"
	grep -q '"error":{"code":"invalid_request"' "$T_DIR/error-$i.json" || t_fail "e$i: no error reply: $(cat "$T_DIR/error-$i.json")"
	$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/context-reply.schema.json" "$T_DIR/error-$i.json" ||
		t_fail "the error reply to e$i does not validate"
done
# What chatmem itself put on the wire validates too: the events of the seed
# and the requests written by `chatmem context`.
$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/chat-event.schema.json" "$T_SRC/ops/seed-conversation.jsonl" ||
	t_fail "the seed events do not validate"
kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REQUESTS" -e -q -f '%k\t%s\n' | grep -v -e '^e[1-5]	' -e '^cmark[0-9]*-' | cut -f2- >"$T_DIR/requests.jsonl"
[ "$(wc -l <"$T_DIR/requests.jsonl")" -ge 2 ] || t_fail "the CLI requests are not on context.requests"
$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/context-request.schema.json" "$T_DIR/requests.jsonl" ||
	t_fail "requests written by chatmem context do not validate"
t_pass "seed context: recent = last 3 verbatim, schema-valid; inline history (and the profile it states, the request's profile, stored: false); 5 bad requests, 5 error replies"
