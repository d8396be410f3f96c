#!/bin/bash
# context.deadline_ms: every request is answered within the deadline of
# being taken from Kafka, whatever Redis does. A burst of 200 requests (a
# quarter with inline history, half for sessions the worker has cached, a
# quarter for sessions it has never seen) is sent while Redis is killed
# (connections refused), while it is hung (kill -STOP: connections accepted
# by the kernel, never answered) and while it is slow (a Lua script busy
# for 3 s: every command waits behind it). Each time every request is answered once, degraded: the
# inline history's context, the cached session's, or an empty one; and the
# worker's own measure of each reply (metadata.build_us, from the request
# taken from Kafka to its reply built) is within the deadline plus a
# margin of MARGIN_MS for scheduling on a loaded machine. After each, once
# Redis answers again (the worker is never restarted), a burst is answered
# in full from Redis, not degraded.
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

DEADLINE_MS=200
MARGIN_MS=50
N=200
SESSIONS=40
export CHATMEM_CONTEXT_DEADLINE_MS=$DEADLINE_MS
# No prebuilt passes: the bursts' own batches are the first to meet
# Redis down, hung or busy (a pass has the same bound, but would leave
# the requests' batches only the backoff to see).
export CHATMEM_CONTEXT_PREBUILT=0

t_start_redis
REDIS_PID=$(cat "$T_DIR/redis.pid")
# A test that fails while Redis is stopped must not leave the cleanup's
# redis-cli waiting on it.
trap 'kill -CONT "$REDIS_PID" 2>/dev/null || true; t_cleanup' EXIT
t_start_broker 8
# 40 sessions of 10 messages each (messages 0..9; recent 3 are 7, 8, 9).
$PY "$T_SRC/tests/gen_events.py" "$SESSIONS" $((SESSIONS * 10)) dl >"$T_DIR/events.jsonl"
t_start_worker ingest ingest
t_start_worker context context
"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 60 t_sessions_check "$T_DIR/events.jsonl" || t_fail "the sessions were not stored"
t_context_ready

# The requests of burst TAG, "key<TAB>json" lines: i % 4 == 0 with an
# inline history of 6 messages (a user Redis does not know), 1 and 2 for
# the stored session i % 40, 3 for a session nobody wrote to.
cat >"$T_DIR/burst.py" <<'PYEOF'
import json, sys
tag, n, sessions = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    rid = "%s-%d" % (tag, i)
    req = {"request_id": rid, "recent": 3, "max_tokens": 500}
    if i % 4 == 0:
        req["user_id"] = "inline%d-%s" % (i, tag)
        req["history"] = [{"role": "user" if k % 2 == 0 else "assistant",
                           "content": "inline %d line %d" % (i, k)}
                          for k in range(6)]
    elif i % 4 == 3:
        req["user_id"] = "nobody%d-%s" % (i, tag)
    else:
        s = i % sessions
        req["user_id"] = "u%d-dl" % s
        req["conversation_id"] = "c%d" % (s % 3)
    print("%s\t%s" % (rid, json.dumps(req)))
PYEOF

# Checks the replies of burst TAG (MODE degraded: Redis away; full: Redis
# up) and prints "max_build_ms p50_build_ms max_e2e_ms", e2e being the
# reply's Kafka timestamp less its request's (both CreateTime).
cat >"$T_DIR/check.py" <<'PYEOF'
import json, sys
tag, n, sessions, mode, limit_us = (sys.argv[1], int(sys.argv[2]),
    int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
sent = {}
for line in open(sys.argv[6], encoding="utf-8"):
    k, _, ts = line.rstrip("\n").partition("\t")
    sent[k] = int(ts)
got = {}
for line in open(sys.argv[7], encoding="utf-8"):
    k, ts, value = line.rstrip("\n").split("\t", 2)
    if k.startswith(tag + "-"):
        got.setdefault(k, []).append((int(ts), json.loads(value)))
missing = [i for i in range(n) if "%s-%d" % (tag, i) not in got]
assert not missing, "%d of %d requests not answered, e.g. %s-%d" % (
    len(missing), n, tag, missing[0])
twice = [k for k, v in got.items() if len(v) > 1]
assert not twice, "answered more than once: %s" % twice[:3]
builds, e2e = [], []
for i in range(n):
    k = "%s-%d" % (tag, i)
    ts, r = got[k][0]
    meta = r["metadata"]
    builds.append(meta["build_us"])
    e2e.append(ts - sent[k])
    assert meta["build_us"] <= limit_us, (k, "over the deadline", meta)
    assert meta["degraded"] == (mode == "degraded"), (k, mode, meta)
    recent = [m["content"] for m in r["recent"]]
    if i % 4 == 0:
        want = ["inline %d line %d" % (i, j) for j in (3, 4, 5)]
        assert meta["total_messages"] == 6, (k, meta)
    elif i % 4 == 3:
        want = []
    else:
        s = i % sessions
        want = ["message %d of session %d: caf\u00e9 \u2014 ok" % (j, s)
                for j in (7, 8, 9)]
    assert recent == want, (k, mode, recent, want)
builds.sort()
print("%.1f %.1f %d" % (builds[-1] / 1000.0, builds[len(builds) // 2] / 1000.0,
                        max(e2e)))
PYEOF

# burst TAG MODE: sends burst TAG, waits for its N replies and checks them
# (check.py); logs the figures.
burst() {
	$PY "$T_DIR/burst.py" "$1" "$N" "$SESSIONS" >"$T_DIR/$1.tsv"
	kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_REQUESTS" -K $'\t' <"$T_DIR/$1.tsv" \
		2>>"$T_DIR/logs/kcat.log" || t_fail "cannot produce burst $1"
	t_wait 60 answered "$1" || t_fail "only $(count "$1") of $N requests of burst $1 answered"
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REQUESTS" -e -q -f '%k\t%T\n' \
		>"$T_DIR/requests.ts" 2>/dev/null || t_fail "cannot read the requests"
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES" -e -q -f '%k\t%T\t%s\n' \
		>"$T_DIR/replies.tsv" 2>/dev/null || t_fail "cannot read the replies"
	_figures=$($PY "$T_DIR/check.py" "$1" "$N" "$SESSIONS" "$2" \
		$(((DEADLINE_MS + MARGIN_MS) * 1000)) "$T_DIR/requests.ts" \
		"$T_DIR/replies.tsv" 2>"$T_DIR/check.err") ||
		t_fail "burst $1 ($2): $(tail -1 "$T_DIR/check.err")"
	set -- "$1" "$2" $_figures
	t_log "burst $1: $N answered, $2; build_us max $3 ms, median $4 ms (deadline $DEADLINE_MS ms); reply - request timestamps max $5 ms"
}
count() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES" -e -q -f '%k\n' 2>/dev/null |
		grep "^$1-[0-9]*\$" | sort -u | wc -l
}
answered() { [ "$(count "$1")" -ge "$N" ]; }

# Redis answers the worker again: a request for a stored session gets its
# full context (the reconnect backs off up to 5 s).
redis_back() {
	"$BIN/chatmem" context u0-dl c0 --json --timeout 5000 2>/dev/null |
		grep -q '"degraded":false'
}

# Warm-up with Redis up: full contexts, which also fill the worker's
# cache with the 40 sessions.
burst warm full

# 1. Killed: connections refused.
kill -KILL "$REDIS_PID"
t_wait 10 t_pid_gone "$REDIS_PID" || t_fail "redis survived kill -9"
burst killed degraded
t_start_redis
REDIS_PID=$(cat "$T_DIR/redis.pid")
t_wait 30 redis_back || t_fail "replies still degraded 30 s after redis restarted"
burst after-kill full

# 2. Hung: the worker's connection is open and idle when Redis stops.
kill -STOP "$REDIS_PID"
burst hung degraded
kill -CONT "$REDIS_PID"
t_wait 30 redis_back || t_fail "replies still degraded 30 s after redis resumed"
burst after-hang full

# 3. Slow: a script keeps Redis busy for 3 s (below its 5 s busy-reply
# threshold, so every command is answered, late).
BUSY='local t = redis.call("TIME")
local stop = t[1] * 1000000 + t[2] + tonumber(ARGV[1])
repeat t = redis.call("TIME") until t[1] * 1000000 + t[2] >= stop'
t_rcli eval "$BUSY" 0 3000000 >/dev/null &
BUSY_PID=$!
t_wait 5 sh -c "! timeout 0.5 redis-cli -p $T_REDIS_PORT ping" ||
	t_fail "redis never got busy"
burst slow degraded
wait "$BUSY_PID" || t_fail "the busy script failed"
t_wait 30 redis_back || t_fail "replies still degraded 30 s after redis was busy"
burst after-slow full

grep -q 'replying degraded' "$T_DIR/logs/context.log" ||
	t_fail "the worker never said it replied degraded"
t_pass "$N requests answered within ${DEADLINE_MS} ms (+${MARGIN_MS}) while redis was killed, hung and busy; full replies after each"
