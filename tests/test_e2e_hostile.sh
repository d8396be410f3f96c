#!/bin/bash
# Hostile input against a running fleet (ingest, summarizer on an LLM,
# context): each hostile event gets a DLQ entry, each hostile request an
# error reply (or a DLQ entry when not even its request_id can be read),
# and the valid traffic behind them on the same partition is still
# applied or answered by the same processes:
#   1. events: 2 MiB of content, a 100 KB key, 100,000 levels of nesting,
#      1 MB of empty objects (json-c would build 250 MB of them), NUL
#      bytes (escaped, raw, in a key), lone surrogates (high, low),
#      duplicate keys, ids with '{', '}', ':', '*' or a line break;
#   2. requests: the same kinds, a 1 MiB history message, 3.5 MB of inline
#      history (the reply stays inside max_tokens), the same with
#      max_tokens 1,000,000 (a reply too large for a Kafka message: an
#      error reply instead);
#   3. 10,000 requests for one session at once: each answered exactly once;
#   4. a session of 100,000 messages: the archive stays within
#      archive.max_messages and the session's Redis memory bounded;
#   5. an LLM that answers 50 MB, and one that never closes: the folds fall
#      back to extractive, every message is in the archive or the list
#      exactly once, and the next fold uses the LLM again;
# and no Redis key has a broken hash tag.
# Decoder details are unit-tested (tests/test_codec.c, test_hostile_*);
# a key that disagrees with the body and a reply_to naming an internal
# topic are proven by test_e2e_dlq.sh and test_e2e_reply_to.sh.
#
# The devbroker keeps about 5 MB per partition (DESIGN.md): one message of
# 10 MB cannot be stored there, so the largest request here is 3.5 MB, on
# a partition of its own; the 10 MB one is decoded in tests/test_codec.c
# (test_hostile_big) and its context bounded in tests/test_context.c
# (test_budget_large).
# brokers: dev
. "$(dirname "$0")/lib.sh"

ARCHIVE_MAX=500
LONG=100000
export CHATMEM_ARCHIVE_MAX_MESSAGES=$ARCHIVE_MAX
export CHATMEM_LLM_TIMEOUT_MS=1500 CHATMEM_LLM_MAX_RETRIES=1
# Big messages are produced with a larger limit; the workers keep
# librdkafka's default (1,000,000 bytes), as a production fleet would.
BIG="-X message.max.bytes=20000000"

t_start_redis
t_start_broker 8
t_start_fake_llm 20
t_start_worker ingest ingest
INGEST=$T_LAST_PID
t_start_worker summarizer summarizer
SUMMARIZER=$T_LAST_PID
t_start_worker context context
CONTEXT=$T_LAST_PID
t_ingest_ready
t_context_ready

# produce TOPIC PARTITION FILE: "key<TAB>value" lines.
produce() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" $BIG -P -t "$1" -p "$2" -K '	' <"$3" ||
		t_fail "cannot produce $3"
}
# read_topic TOPIC: every message of TOPIC as "key<TAB>value" lines.
read_topic() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$1" -o beginning -e -q \
		-f '%k\t%s\n' 2>/dev/null
}

# --- 5 (first: its folds take the longest). Sessions whose messages make
# the fake LLM answer 50 MB or never close, and one it answers well.
$PY - "$T_DIR" <<'PYEOF'
import json, os, sys
d = sys.argv[1]
for name, mark in (("llmhuge", "HOSTILE-HUGE"), ("llmhang", "HOSTILE-HANG"),
                   ("llmok", "")):
    with open(os.path.join(d, name + ".jsonl"), "w") as fp:
        for i in range(12):
            fp.write(json.dumps({
                "event_id": "%s-%d" % (name, i), "user_id": name,
                "role": "user" if i % 2 == 0 else "assistant",
                "content": "%s I moved to Lisbon in %d." % (mark, 2001 + i)})
                + "\n")
PYEOF
base=$(t_stats) || t_fail "no stats"
set -- $base
consumed=$(($1 + $2 + $3))
for s in llmhuge llmhang; do
	"$BIN/chatmem" send <"$T_DIR/$s.jsonl" 2>>"$T_DIR/logs/send.log" ||
		t_fail "cannot send $s"
done

# --- 1. Hostile events, then a good one, on one partition.
$PY - "$T_DIR/events.tsv" <<'PYEOF'
import json, sys
out = open(sys.argv[1], "wb")
def put(key, value):
    if isinstance(value, str):
        value = value.encode()
    out.write(key.encode() + b"\t" + value + b"\n")
def ev(eid, **kw):
    e = {"event_id": eid, "user_id": "hostile", "role": "user",
         "content": "x"}
    e.update(kw)
    return json.dumps(e)
put("hostile:default", ev("g1", content="good 1"))
put("hostile:default", ev("big", content="y" * (2 * 1024 * 1024)))
put("k" * 100000, ev("bigkey"))
put("hostile:default", '{"event_id":"deep","user_id":"hostile","x":'
    + "[" * 100000 + "]" * 100000 + "}")
put("hostile:default", '{"event_id":"many","user_id":"hostile","x":['
    + ",".join(["{}"] * 350000) + "]}")
put("hostile:default", ev("nul1", content="a\u0000b"))
put("hostile:default", ev("nul2", content="a").replace('"a"', '"a\0b"'))
put("hostile:default", ev("nul3").replace('"user_id"', '"user_id\\u0000x"'))
put("hostile:default", ev("sur1").replace('"x"', '"\\ud800"'))
put("hostile:default", ev("sur2").replace('"x"', '"a\\udc00b"'))
put("hostile:default", ev("dup").replace('"user_id"',
                                         '"user_id":"other","user_id"'))
put("hostile:default", ev("id1", user_id="u{1}"))
put("hostile:default", ev("id2", conversation_id="c*"))
put("hostile:default", ev("id3", user_id="a:b"))
put("hostile:default", ev("id4", user_id="a\nb"))
put("hostile:default", ev("g2", content="good 2"))
PYEOF
EVENTS=$((24 + 16)) # with the two LLM sessions
HOSTILE_EVENTS=14
produce "$T_EVENTS" 0 "$T_DIR/events.tsv"

# --- 2. Hostile requests on partition 1, each partition followed by a
# valid one; the large ones on partitions of their own.
RT=$T_REPLIES.hostile
$PY - "$T_DIR" "$RT" <<'PYEOF'
import json, os, sys
d, rt = sys.argv[1], sys.argv[2]
def rq(rid, **kw):
    r = {"request_id": rid, "user_id": "hostile", "reply_to": rt,
         "max_tokens": 200}
    r.update(kw)
    return json.dumps(r)
def write(name, lines):
    with open(os.path.join(d, name), "wb") as fp:
        for k, v in lines:
            fp.write(k.encode() + b"\t" + v.encode() + b"\n")
write("requests-1.tsv", [
    ("r-deep", '{"request_id":"r-deep","user_id":"hostile","x":'
     + "[" * 100000 + "]" * 100000 + "}"),
    ("r-many", '{"request_id":"r-many","user_id":"hostile","x":['
     + ",".join(["{}"] * 350000) + "]}"),
    ("r-rawnul", rq("r-rawnul", query="a").replace('"a"', '"a\0b"')),
    ("r-nul", rq("r-nul", query="a\u0000b")),
    ("r-nulkey", rq("r-nulkey").replace('"user_id"', '"user_id\\u0000"')),
    ("r-sur", rq("r-sur", query="x").replace('"x"', '"\\udc00"')),
    ("r-dup", rq("r-dup").replace('"user_id"', '"user_id":"a","user_id"')),
    ("r-id1", rq("r-id1", user_id="u*")),
    ("r-id2", rq("r-id2", conversation_id="c}\n")),
    ("r-mib", rq("r-mib", history=[{"role": "user",
                                    "content": "z" * (1024 * 1024)}])),
    ("r-ok1", rq("r-ok1")),
])
hist = [{"role": "user" if i % 2 == 0 else "assistant",
         "content": ("Message %d: I moved to Lisbon. " % i
                     + " ".join("w%d" % j for j in range(12000)))[:65536]}
        for i in range(55)]
write("requests-2.tsv", [("r-huge", rq("r-huge", max_tokens=500, recent=1000,
                                       history=hist)),
                         ("r-ok2", rq("r-ok2"))])
write("requests-3.tsv", [("r-toolarge", rq("r-toolarge", max_tokens=1000000,
                                           recent=1000, history=hist)),
                         ("r-ok3", rq("r-ok3"))])
PYEOF
produce "$T_REQUESTS" 1 "$T_DIR/requests-1.tsv"
produce "$T_REQUESTS" 2 "$T_DIR/requests-2.tsv"
produce "$T_REQUESTS" 3 "$T_DIR/requests-3.tsv"

# The events: every one consumed, the good ones applied in order.
t_wait 30 t_stats_reach $((consumed + EVENTS)) ||
	t_fail "ingest did not get through the hostile events: $(t_stats)"
t_rcli lrange "${T_PREFIX}{hostile:default}:msgs" 0 -1 >"$T_DIR/hostile.msgs"
grep -o '"content":"good [0-9]"' "$T_DIR/hostile.msgs" | tr -d '\n' |
	grep -qx '"content":"good 1""content":"good 2"' ||
	t_fail "the good events around the hostile ones: $(cat "$T_DIR/hostile.msgs")"

# The replies: an error for each readable request_id, a context for the
# valid ones, and the two unreadable requests in the DLQ.
replies_in() {
	read_topic "$RT" >"$T_DIR/replies.tsv" &&
		for k in r-nul r-nulkey r-sur r-dup r-id1 r-id2 r-mib r-ok1 r-huge r-ok2 r-toolarge r-ok3; do
			grep -q "^$k	" "$T_DIR/replies.tsv" || return 1
		done
}
t_wait 30 replies_in || t_fail "replies missing (see $T_DIR/replies.tsv)"
dlq_in() {
	read_topic "$T_DLQ" | cut -f2- >"$T_DIR/dlq.jsonl" &&
		[ "$(wc -l <"$T_DIR/dlq.jsonl")" -ge $((HOSTILE_EVENTS + 3)) ]
}
t_wait 30 dlq_in || t_fail "dlq entries missing: $(wc -l <"$T_DIR/dlq.jsonl")"
$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/dlq-entry.schema.json" "$T_DIR/dlq.jsonl" ||
	t_fail "dlq entries do not validate"
$PY - "$T_DIR" "$T_EVENTS" "$T_REQUESTS" "$HOSTILE_EVENTS" <<'PYEOF' || t_fail "wrong DLQ entries or replies"
import json, os, sys
d, events, requests, n_events = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
dlq = [json.loads(l) for l in open(os.path.join(d, "dlq.jsonl"), encoding="utf-8")]
ev = [e for e in dlq if e["topic"] == events]
rq = [e for e in dlq if e["topic"] == requests]
assert len(ev) == n_events and len(rq) == 3, (len(ev), len(rq))
def entry(eid):
    m = [e for e in ev if '"event_id": "%s"' % eid in e.get("payload", "")]
    assert len(m) == 1, (eid, len(m))
    return m[0]
def says(eid, why):
    assert why in entry(eid)["error"], (eid, entry(eid)["error"])
big = entry("big")
assert big["payload_truncated"] is True and big["payload_bytes"] > 2 * 1024 * 1024, big.keys()
assert len(big["payload"]) == 65536
says("big", "field 'content': 2097152 bytes is over the limit")
bigkey = entry("bigkey")
assert bigkey["key_truncated"] is True and bigkey["key_bytes"] == 100000
assert len(bigkey["key"]) == 1024
says("bigkey", "message key does not match")
for why in ("nested deeper than 32 levels",
            "more than 65536 values and member names"):
    assert len([e for e in ev if why in e["error"]]) == 1, why
    assert len([e for e in rq if why in e["error"]]) == 1, why
says("nul1", "field 'content': must not contain NUL")
says("nul2", "control character 0x00")
says("nul3", "NUL (\\u0000) in a key")
says("sur1", "unpaired surrogate escape \\ud800")
says("sur2", "unpaired surrogate escape \\udc00")
says("dup", "duplicate key")
says("id1", "field 'user_id': forbidden character '{'")
says("id2", "field 'conversation_id': forbidden character '*'")
says("id3", "field 'user_id': forbidden character ':'")
says("id4", "field 'user_id': forbidden character 0x0a")
assert any("control character 0x00" in e["error"] for e in rq), rq

replies = {}
for line in open(os.path.join(d, "replies.tsv"), encoding="utf-8"):
    k, _, v = line.rstrip("\n").partition("\t")
    replies.setdefault(k, []).append(v)
for k, v in replies.items():
    assert len(v) == 1, (k, len(v))
got = {k: json.loads(v[0]) for k, v in replies.items()}
for rid in ("r-deep", "r-many", "r-rawnul"):
    assert rid not in got, rid
def error(rid, why):
    r = got[rid]
    assert r["error"]["code"] == "invalid_request", r
    assert why in r["error"]["message"], (rid, r["error"]["message"])
error("r-nul", "field 'query': must not contain NUL")
error("r-nulkey", "NUL (\\u0000) in a key")
error("r-sur", "unpaired surrogate escape \\udc00")
error("r-dup", "duplicate key")
error("r-id1", "field 'user_id': forbidden character '*'")
error("r-id2", "field 'conversation_id': forbidden character '}'")
error("r-mib", "field 'history[0].content': 1048576 bytes is over the limit")
error("r-toolarge", "over the 995904 a message may hold")
huge = got["r-huge"]
meta = huge["metadata"]
assert 0 < meta["tokens"] <= 500 and meta["total_messages"] == 55, meta
assert meta["full_history_tokens"] > 100000, meta
raw = replies["r-huge"][0].encode()
assert len(raw) < 64 * 1024, len(raw)
for rid in ("r-ok1", "r-ok2", "r-ok3"):
    assert "context" in got[rid] and got[rid]["user_id"] == "hostile", got[rid]
PYEOF
t_log "hostile events in the DLQ, hostile requests answered with errors; valid traffic behind them went through"

# --- 3. 10,000 requests for one session at once.
for i in $(seq 1 12); do
	printf '{"event_id":"fl%s","user_id":"flood","role":"user","content":"I live in Lisbon and my cat is called Tom, note %s."}\n' "$i" "$i"
done | "$BIN/chatmem" send 2>>"$T_DIR/logs/send.log" || t_fail "cannot send flood events"
FLOOD=10000
seq 1 $FLOOD | awk -v rt="$T_REPLIES.flood" '{printf "flood:default\t{\"request_id\":\"fl-%d\",\"user_id\":\"flood\",\"reply_to\":\"%s\",\"max_tokens\":60}\n", $1, rt}' \
	>"$T_DIR/flood.tsv"
kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_REQUESTS" -K '	' <"$T_DIR/flood.tsv" ||
	t_fail "cannot produce the flood"
flood_replies() { read_topic "$T_REPLIES.flood" | cut -f1 | sort >"$T_DIR/flood.keys"; }
flood_done() { flood_replies && [ "$(wc -l <"$T_DIR/flood.keys")" -ge $FLOOD ]; }
t_wait 60 flood_done || t_fail "only $(wc -l <"$T_DIR/flood.keys") of $FLOOD flood requests answered"
# Responsive afterwards: a request on every partition is answered, and
# nothing more came for the flood meanwhile.
t_context_markers
flood_replies
[ "$(wc -l <"$T_DIR/flood.keys")" -eq $FLOOD ] &&
	[ "$(uniq "$T_DIR/flood.keys" | wc -l)" -eq $FLOOD ] ||
	t_fail "flood: $(wc -l <"$T_DIR/flood.keys") replies, $(uniq "$T_DIR/flood.keys" | wc -l) distinct; want $FLOOD of each"
t_log "$FLOOD requests for one session: each answered once, the worker answers the next ones"

# --- 4. A session of 100,000 messages, paced in chunks of 10,000 (the
# devbroker's retention; see DESIGN.md).
$PY - "$T_DIR/long.tsv" $LONG <<'PYEOF'
import sys
with open(sys.argv[1], "w") as fp:
    for i in range(1, int(sys.argv[2]) + 1):
        fp.write('long:default\t{"event_id":"l%d","user_id":"long","role":"%s",'
                 '"content":"Line %d: I moved to Lisbon in %d."}\n'
                 % (i, "user" if i % 2 else "assistant", i, 1900 + i % 100))
PYEOF
split -l 10000 "$T_DIR/long.tsv" "$T_DIR/long."
n=0
for c in "$T_DIR"/long.[a-z][a-z]; do
	kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_EVENTS" -K '	' <"$c" ||
		t_fail "cannot produce $c"
	n=$((n + 10000))
	t_wait 60 sh -c "[ \"\$(redis-cli -p $T_REDIS_PORT hget '${T_PREFIX}{long:default}:meta' total)\" -ge $n ]" ||
		t_fail "ingest stalled at $(t_rcli hget "${T_PREFIX}{long:default}:meta" total) of $n"
done
long_folded() {
	_f=$(t_rcli hget "${T_PREFIX}{long:default}:summary" folded)
	_l=$(t_rcli llen "${T_PREFIX}{long:default}:msgs")
	[ -n "$_f" ] && [ $((_f + _l)) -eq $LONG ] && [ "$_l" -le 8 ]
}
t_wait 60 long_folded ||
	t_fail "the long session was not folded: $(t_rcli hget "${T_PREFIX}{long:default}:summary" folded) folded, $(t_rcli llen "${T_PREFIX}{long:default}:msgs") left"
archived=$("$BIN/chatmem" session archive long | wc -l)
[ "$archived" -gt 0 ] && [ "$archived" -le $ARCHIVE_MAX ] ||
	t_fail "the archive holds $archived messages; archive.max_messages is $ARCHIVE_MAX"
bytes=0
for k in $(t_rcli --scan --pattern "${T_PREFIX}{long:default}:*"); do
	bytes=$((bytes + $(t_rcli memory usage "$k")))
done
[ "$bytes" -lt 200000 ] || t_fail "the long session takes $bytes bytes of Redis"
"$BIN/chatmem" context long -n 300 -j >"$T_DIR/long.reply" 2>>"$T_DIR/logs/cli.log" ||
	t_fail "no context for the long session"
$PY - "$T_DIR/long.reply" $LONG <<'PYEOF' || t_fail "bad context for the long session"
import json, sys
r = json.load(open(sys.argv[1]))
m = r["metadata"]
assert m["total_messages"] == int(sys.argv[2]) and 0 < m["tokens"] <= 300, m
PYEOF
t_log "$LONG messages: $archived archived (max $ARCHIVE_MAX), $bytes bytes of Redis"

# --- 5. The LLM folds fell back to extractive and left the sessions whole;
# the next session is summarized by the LLM again.
"$BIN/chatmem" send <"$T_DIR/llmok.jsonl" 2>>"$T_DIR/logs/send.log" ||
	t_fail "cannot send llmok"
summary_of() { t_rcli hget "${T_PREFIX}{$1:default}:summary" text; }
llm_folded() {
	for s in llmhuge llmhang llmok; do
		[ "$(t_rcli hget "${T_PREFIX}{$s:default}:summary" folded)" -gt 0 ] 2>/dev/null || return 1
	done
}
t_wait 60 llm_folded || t_fail "the LLM sessions were not all folded"
for s in llmhuge llmhang; do
	sum=$(summary_of $s)
	case $sum in
	*Lisbon*) ;;
	*) t_fail "$s: not an extractive summary: '$sum'" ;;
	esac
	case $sum in
	*xxxxxxxx* | Fold*) t_fail "$s: the LLM's answer was taken: '${sum:0:80}'" ;;
	esac
	t_folds $s:default "$T_DIR/$s.jsonl" || t_fail "$s: lost or duplicated"
done
case $(summary_of llmok) in
Fold*) ;;
*) t_fail "llmok was not summarized by the LLM: '$(summary_of llmok)'" ;;
esac

# The same processes all along, and they still stop cleanly; no Redis key
# with a broken hash tag.
for p in $INGEST $SUMMARIZER $CONTEXT; do
	kill -0 "$p" 2>/dev/null || t_fail "worker $p died"
	t_stop_pid "$p" 10
done
t_rcli --scan >"$T_DIR/keys.txt"
bad=$(grep -Ev "^${T_PREFIX}([^{}]*|\{[A-Za-z0-9._@-]+(:[A-Za-z0-9._@-]+)?\}:[a-z_]+)\$" "$T_DIR/keys.txt" || true)
[ -z "$bad" ] || t_fail "keys with a broken hash tag: $bad"
t_pass "hostile events and requests get DLQ entries or errors, the workers go on; $FLOOD requests each answered once; $LONG messages bounded; a hostile LLM falls back"
