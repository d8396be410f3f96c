#!/bin/bash
# Where replies go (DESIGN.md, context.requests): an invalid request's
# error reply goes to its own reply_to when that is readable and allowed;
# a reply_to outside context.reply_topics (an internal topic such as
# chat.events) gets an invalid_request error on the default reply topic,
# and nothing is ever written to the topic it named.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 4
t_start_worker context context

# One key: every request lands on one partition and is answered in order
# by one batch or a few. Their replies land on several partitions, so the
# test waits until every expected reply is there.
{
	printf 'k\t{"request_id":"r1","user_id":"bad id","reply_to":"context.replies.app7"}\n'
	printf 'k\t{"request_id":"r2","user_id":"u1","reply_to":"chat.events"}\n'
	printf 'k\t{"request_id":"r3","user_id":"u1","reply_to":"chat.compaction"}\n'
	printf 'k\t{"request_id":"r4","user_id":"u1","reply_to":"context.requests"}\n'
	printf 'k\t{"request_id":"r5","user_id":"u1","reply_to":"context.replies.app7"}\n'
	printf 'k\t{"request_id":"r6","user_id":"u1","reply_to":"context.replies.app7","recent":-1}\n'
	printf 'k\t{"request_id":"r7","user_id":"u1","reply_to":"chat.events","recent":-1}\n'
	printf 'k\t{"request_id":"marker","user_id":"u1"}\n'
} | kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t context.requests -K '	' ||
	t_fail "kcat produce failed"

# read_topic TOPIC: every message of TOPIC as "key<TAB>value" lines.
read_topic() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$1" -o beginning -e -q \
		-f '%k\t%s\n' 2>/dev/null
}
has_keys() {
	_f=$1
	shift
	for _k in "$@"; do
		grep -q "^$_k	" "$_f" || return 1
	done
}
all_seen() {
	read_topic context.replies >"$T_DIR/replies.tsv" &&
		read_topic context.replies.app7 >"$T_DIR/app7.tsv" &&
		has_keys "$T_DIR/replies.tsv" r2 r3 r4 r7 marker &&
		has_keys "$T_DIR/app7.tsv" r1 r5 r6
}
t_wait 60 all_seen || t_fail "replies missing (see $T_DIR/*.tsv)"
read_topic chat.events >"$T_DIR/events.tsv" || true
read_topic chat.compaction >"$T_DIR/compaction.tsv" || true
read_topic context.requests >"$T_DIR/requests.tsv"

$PY - "$T_DIR" <<'PYEOF' || t_fail "replies went to the wrong topics"
import json, os, sys
d = sys.argv[1]
def load(name):
    out = {}
    for line in open(os.path.join(d, name), encoding="utf-8"):
        k, _, v = line.rstrip("\n").partition("\t")
        if v:
            out.setdefault(k, []).append(json.loads(v))
    return out
replies, app7 = load("replies.tsv"), load("app7.tsv")
def error(where, rid):
    assert rid in where and len(where[rid]) == 1, (rid, where.get(rid))
    r = where[rid][0]
    assert r["request_id"] == rid and r["error"]["code"] == "invalid_request", r
    return r["error"]["message"]
# 1. invalid request, allowed reply_to: the error goes there.
assert "user_id" in error(app7, "r1")
assert "r1" not in replies
# 2. a reply_to outside the allow-list: error on the default topic.
for rid in ("r2", "r3", "r4"):
    assert "reply_to" in error(replies, rid), rid
# 3. an allowed reply_to gets its context there.
assert app7["r5"][0]["user_id"] == "u1" and "context" in app7["r5"][0], app7["r5"]
# 4. invalid request with an allowed / a forbidden reply_to.
assert "recent" in error(app7, "r6")
assert "r7" in replies and "error" in replies["r7"][0], replies.get("r7")
assert "context" in replies["marker"][0]
for rid in ("r2", "r3", "r4", "r5", "r6", "r7", "marker"):
    assert rid not in app7 or rid in ("r5", "r6"), rid
PYEOF
# Nothing was written to the internal topics the requests named.
[ ! -s "$T_DIR/events.tsv" ] || t_fail "the context worker wrote to chat.events"
[ ! -s "$T_DIR/compaction.tsv" ] || t_fail "the context worker wrote to chat.compaction"
[ "$(wc -l <"$T_DIR/requests.tsv")" -eq 8 ] ||
	t_fail "the context worker wrote to context.requests"
t_pass "errors follow an allowed reply_to; internal topics are refused and never written"
