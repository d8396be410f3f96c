#!/bin/bash
# 50 messages in the seed's style, starting "Hi, I'm Sumit Pandya, full
# stack developer", through ingest, the summarizer and the context worker:
# the reply's profile has the name and the role, the summary is not empty,
# the last 3 messages are verbatim, and the context is at most 20% of the
# full history's tokens. Then "Do you remember me?" is answered from the
# profile even though the first message was folded away long ago.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 4
t_start_worker ingest ingest
t_start_worker summarizer summarizer
t_start_worker context context
$PY "$T_SRC/tests/seed50.py" sumit >"$T_DIR/seed50.jsonl"
"$BIN/chatmem" send <"$T_DIR/seed50.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 30 sh -c "[ \$(redis-cli -p $T_REDIS_PORT hget 'chatmem:{sumit:default}:meta' total) = 50 ]" || t_fail "events did not arrive"
settled() { [ -z "$(t_rcli hget 'chatmem:{sumit:default}:meta' cjob)" ] && [ "$(t_rcli llen 'chatmem:{sumit:default}:msgs')" -le 8 ]; }
t_wait 30 settled || t_fail "the session was not compacted: $(t_rcli llen 'chatmem:{sumit:default}:msgs') messages"
t_folds sumit:default "$T_DIR/seed50.jsonl" --min-folded 40 || t_fail "compaction lost or duplicated messages"

"$BIN/chatmem" context sumit --query "Do you remember my name?" --json >"$T_DIR/reply.json" || t_fail "no reply"
$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/context-reply.schema.json" "$T_DIR/reply.json" || t_fail "reply does not validate"
$PY - "$T_DIR/reply.json" "$T_DIR/seed50.jsonl" <<'PYEOF' || t_fail "the context is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
seed = [json.loads(l) for l in open(sys.argv[2])]
p, m = r["profile"], r["metadata"]
assert p.get("name") == "Sumit Pandya", p
assert p.get("role") == "full stack developer", p
assert r["summary"], "empty summary"
assert m["summarized"] is True, m
assert [x["content"] for x in r["recent"]] == [e["content"] for e in seed[-3:]], r["recent"]
assert r["context"].startswith("User Profile: Sumit Pandya, full stack developer"), r["context"][:80]
ratio = m["tokens"] / m["full_history_tokens"]
print("tokens %d of %d (%.1f%%), summary %d chars" % (m["tokens"], m["full_history_tokens"], 100 * ratio, len(r["summary"])))
assert ratio <= 0.20, ratio
PYEOF
t_pass "50 seed-style messages: profile Sumit Pandya / full stack developer, summary, last 3 verbatim, <= 20% of full tokens"
