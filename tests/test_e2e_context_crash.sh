#!/bin/bash
# kill -9 of the context worker while 2000 requests stream in, then a
# restart: every request gets a reply (at-least-once: a request whose reply
# was not acknowledged before the kill is answered again), and each reply
# is built from its own session (the pipelined Redis loads stay in step).
# Offsets are stored while the replies stream out (not only at shutdown):
# the restarted worker redoes only the requests answered since the last
# commit. After a graceful stop a third worker answers nothing again.
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

N=2000

t_start_redis
t_start_broker 8
$PY "$T_SRC/tests/gen_events.py" 50 500 cr >"$T_DIR/events.jsonl"
t_start_worker ingest ingest
"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 60 t_sessions_check "$T_DIR/events.jsonl" || t_fail "the sessions were not stored"

# Requests keyed by request_id over the 50 sessions; every 40th is invalid
# (max_tokens 0) and gets an error reply.
$PY - "$N" >"$T_DIR/requests.tsv" <<'PYEOF'
import json, sys
for i in range(int(sys.argv[1])):
    s = i % 50
    req = {"request_id": "cr-%d" % i, "user_id": "u%d-cr" % s,
           "conversation_id": "c%d" % (s % 3), "recent": 3,
           "max_tokens": 0 if i % 40 == 39 else 500}
    print("cr-%d\t%s" % (i, json.dumps(req)))
PYEOF

t_start_worker context context-1
C1=$T_LAST_PID
t_context_ready

# Produce in 20 paced chunks so that the kill lands mid-stream.
(
	split -l $((N / 20)) "$T_DIR/requests.tsv" "$T_DIR/chunk."
	for c in "$T_DIR"/chunk.*; do
		kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_REQUESTS" -K $'\t' <"$c" || exit 1
		sleep 0.2
	done
) 2>>"$T_DIR/logs/kcat.log" &
SENDER=$!

# Prints the number of distinct request_ids answered on context.replies.
answered() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES" -e -q -f '%k\n' \
		>"$T_DIR/keys.txt" 2>/dev/null || return 1
	sort -u "$T_DIR/keys.txt" | wc -l
}
answered_at_least() { [ "$(answered)" -ge "$1" ]; }

t_wait 30 answered_at_least 1000 || t_fail "context did not start answering"
kill -KILL "$C1"
wait "$C1" 2>/dev/null || true
at_kill=$(answered)
[ "$at_kill" -lt "$N" ] || t_fail "the kill came after the whole stream ($at_kill answered)"
t_log "killed context (-9) with $at_kill of $N requests answered"

t_start_worker context context-2
C2=$T_LAST_PID
wait "$SENDER" || t_fail "producing the requests failed"
# The restarted member gets the partitions once the killed one's session
# times out (session.timeout.ms = 10 s).
t_wait 90 answered_at_least "$N" || t_fail "only $(answered) of $N requests answered after the restart"

kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES" -e -q -f '%k\t%s\n' \
	>"$T_DIR/replies.tsv" 2>/dev/null || t_fail "cannot read the replies"
# Every reply is right for its request; prints how many were sent again.
cat >"$T_DIR/check.py" <<'PYEOF'
import json, sys
n = int(sys.argv[1])
seen = {}
for line in open(sys.argv[2], encoding="utf-8"):
    key, _, value = line.rstrip("\n").partition("\t")
    r = json.loads(value)
    assert r["request_id"] == key, (key, r)
    i = int(key.split("-")[1])
    if i % 40 == 39:
        assert r["error"]["code"] == "invalid_request", r
    else:
        s = i % 50
        assert r["user_id"] == "u%d-cr" % s, r
        assert r["conversation_id"] == "c%d" % (s % 3), r
        assert r["metadata"]["total_messages"] == 10, r["metadata"]
        assert not r["metadata"]["degraded"], r["metadata"]
        got = [m["content"] for m in r["recent"]]
        want = ["message %d of session %d: caf\u00e9 \u2014 ok" % (k, s)
                for k in (7, 8, 9)]
        assert got == want, (key, got)
    seen[i] = seen.get(i, 0) + 1
missing = [i for i in range(n) if i not in seen]
assert not missing, "no reply to %d request(s), e.g. cr-%d" % (len(missing), missing[0])
print(sum(seen.values()) - n)
PYEOF
again=$($PY "$T_DIR/check.py" "$N" "$T_DIR/replies.tsv") || t_fail "a reply is wrong"

t_log "$again request(s) answered again after the kill"
# At least 2 s of answering came before the kill, and offsets are
# committed every second: only the requests answered since are redone.
[ "$again" -lt "$at_kill" ] || t_fail "all $at_kill requests answered before the kill were answered again: no offset was stored"

# A graceful stop stores and commits what was delivered: a new worker
# then has nothing left to answer. (The restarted worker did answer: the
# kill left requests unanswered, and all of them were answered since.)
t_stop_pid "$C2"
before=$(wc -l <"$T_DIR/replies.tsv")
t_start_worker context context-3
C3=$T_LAST_PID
# A marker request behind the committed offsets of every partition: once
# all are answered, context-3 has read every partition past them; its
# graceful stop then delivers any reply it made.
t_context_markers
t_stop_pid "$C3"
kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES" -e -q -f '%k\n' \
	>"$T_DIR/keys.txt" 2>/dev/null || t_fail "cannot read the replies"
after=$(wc -l <"$T_DIR/keys.txt")
[ "$after" -eq "$before" ] || t_fail "$((after - before)) request(s) answered again after a graceful stop"
t_pass "kill -9 mid-stream: all $N requests answered, each from its own session; nothing answered again after SIGTERM"
