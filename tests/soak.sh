#!/bin/bash
# The fault-injection soak (issue: reliability under fire). On Apache Kafka
# (a broker of its own: it is killed) and a redis-server with AOF
# (appendfsync everysec), a fleet of 2 ingest, 2 summarizer and 2 context
# workers takes EVENTS events over SESSIONS sessions and a steady stream of
# context requests with a query, while, every few seconds, something
# breaks:
#   - kill -9 of a random worker of each kind (twice for context), each
#     restarted;
#   - kill -9 of the Kafka broker, restarted on its log directory;
#   - kill -9 of Redis twice, restarted from its AOF (the tail of the AOF
#     that a power cut would lose is cut off each time: Redis comes back
#     having lost acknowledged writes);
#   - one Redis outage of 10 s (shut down, then started again);
#   - a third ingest worker added midway, and one removed later, so that
#     the group rebalances under load.
# The summarizers fold through an LLM endpoint that is slow, fails 5% of
# the calls and hangs 2% past the client's time-out.
#
# Then it checks every session against the events produced: each exactly
# once, in order, in the session's archive (folded) or its list; every
# request answered, more than once only across a context worker's crash;
# and prints a one-screen report with the worst context latency of each
# fault (tests/soak_report.py).
#
# Knobs (environment): SOAK_EVENTS (100000), SOAK_SESSIONS (2000),
# SOAK_SECONDS (150: how long the events are produced and the faults
# come), SOAK_RATE (20 context requests a second). `make soak` runs it as
# it is; tests/test_e2e_soak.sh runs a shorter one in `make test`.
. "$(dirname "$0")/lib.sh"

EVENTS=${SOAK_EVENTS:-100000}
SESSIONS=${SOAK_SESSIONS:-2000}
DURATION=${SOAK_SECONDS:-150}
RATE=${SOAK_RATE:-20}
PAUSE=0.5

[ "$T_BROKER" = apache ] || t_fail "the soak runs on Apache Kafka (T_BROKER=apache)"
unset CHATMEM_E2E_KAFKA
export T_REDIS_OPTS="--appendfsync everysec"
t_start_redis
t_start_broker 8
t_log "$EVENTS events over $SESSIONS sessions in ${DURATION}s, $RATE requests/s"
$PY "$T_SRC/tests/gen_events.py" "$SESSIONS" "$EVENTS" soak >"$T_DIR/events.jsonl"

FAKE_LLM_FAIL_PCT=5 FAKE_LLM_HANG_PCT=2 FAKE_LLM_HANG_MS=3000 t_start_fake_llm 30
export CHATMEM_LLM_TIMEOUT_MS=1000 CHATMEM_LLM_MAX_RETRIES=1

# The fleet: pids by name ("ingest-3"), names by kind, in start order.
declare -A PID
declare -A LIVE=([ingest]="" [summarizer]="" [context]="")
SEQ=0
start() {
	SEQ=$((SEQ + 1))
	t_start_worker "$1" "$1-$SEQ"
	PID[$1-$SEQ]=$T_LAST_PID
	LIVE[$1]="${LIVE[$1]} $1-$SEQ"
}
# pick KIND: a random live worker of KIND.
pick() {
	set -- ${LIVE[$1]}
	shift $((RANDOM % $#))
	echo "$1"
}
forget() { LIVE[$1]=$(echo " ${LIVE[$1]} " | sed "s/ $2 / /"); }

FAULTS=$T_DIR/faults.tsv
: >"$FAULTS"
# fault KIND WHAT START_MS: one line of the fault log, ending now.
fault() { printf '%s\t%s\t%s\t%s\n' "$3" "$(t_now_ms)" "$1" "$2" >>"$FAULTS"; }

kill_one() {
	_n=$(pick "$1")
	_t=$(t_now_ms)
	kill -KILL "${PID[$_n]}" 2>/dev/null || true
	wait "${PID[$_n]}" 2>/dev/null || true
	forget "$1" "$_n"
	start "$1"
	fault "kill-$1" "kill -9 $_n, restarted" "$_t"
}

# Cuts the last part of Redis's AOF, as a power cut would have.
kill_redis() {
	_t=$(t_now_ms)
	t_kill_redis
	t_cut_aof 2 >/dev/null
	t_start_redis
	fault redis "kill -9 redis, AOF tail lost, restarted" "$_t"
}

redis_outage() {
	_t=$(t_now_ms)
	t_stop_redis
	sleep 10
	t_start_redis
	fault redis "redis down for 10 s" "$_t"
}

kill_kafka() {
	_t=$(t_now_ms)
	t_kill_kafka
	t_start_kafka
	fault kafka "kill -9 kafka, restarted on its logs" "$_t"
}

start ingest
start ingest
start summarizer
start summarizer
start context
start context
t_ingest_ready
t_context_ready

# Replies are read from the beginning of the topic by a consumer of no
# group, for the whole run.
kcat -b "$CHATMEM_KAFKA_BROKERS" -C -E -t "$T_REPLIES" -o beginning -u \
	-f '%T\t%k\t%s\n' >"$T_DIR/replies.tsv" 2>"$T_DIR/logs/replies.log" &
READER=$!
T_PIDS="$T_PIDS $READER"

T0=$(t_now_ms)
chunk=$(((EVENTS * 5 / DURATION + 9) / 10))
t_send_paced "$T_DIR/events.jsonl" "$chunk" "$PAUSE"
$PY "$T_SRC/tests/soak_requests.py" --brokers "$CHATMEM_KAFKA_BROKERS" \
	--topic "$T_REQUESTS" --events "$T_DIR/events.jsonl" --rate "$RATE" \
	--duration "$DURATION" --out "$T_DIR/sends.tsv" >"$T_DIR/logs/requests.log" 2>&1 &
REQUESTER=$!
T_PIDS="$T_PIDS $REQUESTER"

# at FRACTION: waits until FRACTION of the duration has passed.
at() {
	_due=$((T0 + DURATION * 1000 * $1 / 100))
	_now=$(t_now_ms)
	[ "$_now" -ge "$_due" ] || sleep "$(((_due - _now) / 1000)).$(((_due - _now) % 1000 / 100))"
}
at 6 && kill_one ingest
at 10 && kill_one summarizer
at 14 && kill_one context
at 20 && kill_kafka
at 32 && kill_redis
at 40 && {
	_t=$(t_now_ms)
	start ingest
	fault rebalance "a third ingest worker joins" "$_t"
}
at 48 && redis_outage
at 62 && kill_one ingest && kill_one summarizer && kill_one context
at 72 && kill_redis
at 80 && {
	_t=$(t_now_ms)
	_n=$(pick ingest)
	t_stop_pid "${PID[$_n]}" 20
	forget ingest "$_n"
	fault rebalance "ingest $_n leaves (SIGTERM)" "$_t"
}
at 88 && kill_one context
t_log "faults done: $(wc -l <"$FAULTS")"

wait "$T_SENDER" || t_fail "producing the events failed"
wait "$REQUESTER" || t_fail "producing the requests failed: $(tail -3 "$T_DIR/logs/requests.log")"
t_log "all produced after $((($(t_now_ms) - T0) / 1000)) s; waiting for the fleet to catch up"

# Waits on the counts (fast), then checks every message once.
counts_match() {
	$PY "$T_SRC/tests/check_folds.py" --port "$T_REDIS_PORT" --totals \
		--chatmem "$BIN/chatmem" "$T_DIR/events.jsonl" >"$T_DIR/totals.txt"
}
t_wait 180 counts_match || t_log "the counts still differ: $(tail -1 "$T_DIR/totals.txt")"
$PY "$T_SRC/tests/check_folds.py" --port "$T_REDIS_PORT" \
	--chatmem "$BIN/chatmem" "$T_DIR/events.jsonl" >"$T_DIR/sessions.txt" || true
answered() {
	[ "$(cut -f2 "$T_DIR/replies.tsv" | grep -c '^soak-' || true)" -ge "$(wc -l <"$T_DIR/sends.tsv")" ]
}
t_wait 120 answered || true
kill "$READER" 2>/dev/null || true
wait "$READER" 2>/dev/null || true
kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REQUESTS" -o beginning -e -q \
	-f '%T\t%s\n' >"$T_DIR/requests.tsv" 2>>"$T_DIR/logs/replies.log" || true

{
	echo "chatmem soak on Apache Kafka: $EVENTS events, $SESSIONS sessions, $(wc -l <"$FAULTS") faults in ${DURATION}s"
	echo "sessions: $(tail -1 "$T_DIR/sessions.txt")"
	grep '^PROBLEM' "$T_DIR/sessions.txt" | head -5 || true
	set -- $(t_stats)
	echo "ingest: $(cat "$T_DIR"/logs/ingest-*.log | grep -c 'events redis lost again' || true) partitions rewound after redis lost writes; counters (in redis: a lost AOF tail takes some along) $1 applied, $2 redelivered and skipped, $3 to the DLQ"
	echo "summarizer: $(cat "$T_DIR"/logs/summarizer-*.log | grep -c 'using extractive for this' || true) LLM fallbacks logged; fake LLM saw $(wc -l <"$T_DIR/llm.port.requests") calls"
} >"$T_DIR/extra.txt"
set +e
$PY "$T_SRC/tests/soak_report.py" --sends "$T_DIR/sends.tsv" \
	--replies "$T_DIR/replies.tsv" --faults "$FAULTS" \
	--requests "$T_DIR/requests.tsv" \
	--extra "$T_DIR/extra.txt" | tee "$T_DIR/report.txt"
verdict=${PIPESTATUS[0]}
set -e
grep -q ' 0 with problems$' "$T_DIR/sessions.txt" ||
	t_fail "sessions lost or duplicated events (report above; details in $T_DIR/sessions.txt)"
[ "$verdict" = 0 ] || t_fail "context requests unanswered or answered twice (report above)"
t_pass "soak: 0 lost, 0 duplicated, in order; every request answered"
