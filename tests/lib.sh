# Shared helpers for the integration tests (sourced, POSIX sh + bash ok).
#
# Each test gets its own directory under tests/out/<name>/ (<name>.apache
# on Apache Kafka), its own redis-server on a free port, and a broker, and
# stops everything it started on exit, pass, fail or SIGTERM
# (tests/run-e2e.sh sends SIGTERM when a test overruns its time limit).
#
# The broker is chosen by T_BROKER (one door: t_start_broker):
#   dev     (default) a devbroker of the test's own, topics with their
#           default names;
#   apache  Apache Kafka (ops/kafka.sh): the broker of the whole run when
#           CHATMEM_E2E_KAFKA names its bootstrap (tests/run-e2e.sh starts
#           one), else one of the test's own in $T_DIR/kafka. On a shared
#           broker every test has topics and consumer groups of its own:
#           their names start with T_NS ("<test>-<pid>."), and the workers
#           and the CLI get them through CHATMEM_TOPICS_*, CHATMEM_*_GROUP
#           and CHATMEM_CONTEXT_REPLY_TOPICS.
# Tests name topics only through T_EVENTS, T_COMPACTION, T_DLQ,
# T_REQUESTS, T_REPLIES (reply topics of their own: "$T_REPLIES.<x>", in
# the allow-list) and T_PREBUILT, and groups through T_NS.
#
# The first lines of a test say on which brokers tests/run-e2e.sh runs it:
# "# brokers: dev apache" (default: dev).
#
# Tests decide from outcomes: contents of Redis, the fleet counters in
# Redis (t_stats), messages on Kafka topics, replies. A "nothing more
# happened" check first waits for a marker that went in behind the events
# under test (t_ingest_marker, t_context_markers), never for a fixed time.
set -eu

T_SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CHATMEM_BIN:-$T_SRC/bin}
PY=/usr/bin/python3
T_NAME=$(basename "$0" .sh)
T_BROKER=${T_BROKER:-dev}
case $T_BROKER in
dev) T_DIR=$T_SRC/tests/out/$T_NAME ;;
apache) T_DIR=$T_SRC/tests/out/$T_NAME.apache ;;
*)
	echo "[$T_NAME] FAIL: T_BROKER must be dev or apache, not '$T_BROKER'" >&2
	exit 1
	;;
esac
# Names of topics and consumer groups: the defaults on a devbroker of the
# test's own; on Apache Kafka, a namespace per test and run.
if [ "$T_BROKER" = apache ]; then
	T_NS=$(echo "${T_NAME#test_}" | tr _ -)-$$.
else
	T_NS=""
fi
T_EVENTS=${T_NS}chat.events
T_COMPACTION=${T_NS}chat.compaction
T_DLQ=${T_NS}chat.dlq
T_REQUESTS=${T_NS}context.requests
T_REPLIES=${T_NS}context.replies
T_PREBUILT=${T_NS}context.prebuilt
if [ -n "$T_NS" ]; then
	export CHATMEM_TOPICS_EVENTS=$T_EVENTS CHATMEM_TOPICS_COMPACTION=$T_COMPACTION \
		CHATMEM_TOPICS_DLQ=$T_DLQ CHATMEM_TOPICS_REQUESTS=$T_REQUESTS \
		CHATMEM_TOPICS_REPLIES=$T_REPLIES CHATMEM_TOPICS_PREBUILT=$T_PREBUILT \
		CHATMEM_CONTEXT_REPLY_TOPICS="$T_REPLIES*" \
		CHATMEM_INGEST_GROUP=${T_NS}chatmem-ingest \
		CHATMEM_SUMMARIZER_GROUP=${T_NS}chatmem-summarizer \
		CHATMEM_CONTEXT_GROUP=${T_NS}chatmem-context
fi
rm -rf "$T_DIR"
mkdir -p "$T_DIR/logs"
T_PIDS=""
T_KAFKA_DIR=""
T_REDIS_PORT=""
T_PARTITIONS=""
T_PREFIX=${CHATMEM_KEY_PREFIX:-chatmem:}
T_MARKERS=0

t_log() { echo "[$T_NAME] $*"; }

# kcat, whose consumers (-C) do not wait the default 500 ms for more data
# at the end of each partition: a test that reads a topic to its end (-e)
# in a loop sees it as it is now. Inside `sh -c` strings plain kcat runs.
kcat() {
	case " $* " in
	*" -C "*) command kcat -X fetch.wait.max.ms=10 "$@" ;;
	*) command kcat "$@" ;;
	esac
}

t_fail() {
	echo "[$T_NAME] FAIL: $*" >&2
	for f in "$T_DIR"/logs/*.log; do
		[ -f "$f" ] || continue
		echo "--- tail of $f" >&2
		tail -15 "$f" >&2
	done
	exit 1
}

t_free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

t_cleanup() {
	for p in $T_PIDS; do
		kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	if [ -n "$T_REDIS_PORT" ]; then
		redis-cli -p "$T_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
	fi
	# A broker of the test's own runs in a session of its own (setsid):
	# killed here, its directory kept for the post-mortem.
	if [ -n "$T_KAFKA_DIR" ] && [ -f "$T_KAFKA_DIR/kafka.pid" ]; then
		kill -KILL "$(cat "$T_KAFKA_DIR/kafka.pid")" 2>/dev/null || true
	fi
}
trap t_cleanup EXIT

# On SIGTERM or SIGINT (the run-e2e.sh timeout, ^C) say so and exit: the
# EXIT trap then stops the processes and the redis-server of the test.
t_on_signal() {
	trap - TERM INT
	echo "[$T_NAME] FAIL: stopped by SIG$1" >&2
	[ "$1" = TERM ] && exit 143
	exit 130
}
trap 't_on_signal TERM' TERM
trap 't_on_signal INT' INT

# Milliseconds since the epoch (GNU date).
t_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# t_wait SECONDS COMMAND...: retries COMMAND every 0.1 s until it succeeds;
# fails once SECONDS have passed, however long each try takes.
t_wait() {
	_t_wait_end=$(($(t_now_ms) + $1 * 1000))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(t_now_ms)" -lt "$_t_wait_end" ] || return 1
		sleep 0.1
	done
	return 0
}

# Starts redis-server on a free port; persistent (AOF, fsync always) so that
# a test can stop and restart it without losing acknowledged writes.
# T_REDIS_OPTS: more redis-server options (later ones win).
t_start_redis() {
	[ -n "$T_REDIS_PORT" ] || T_REDIS_PORT=$(t_free_port)
	mkdir -p "$T_DIR/redis"
	# shellcheck disable=SC2086 # T_REDIS_OPTS is a list of options
	redis-server --port "$T_REDIS_PORT" --bind 127.0.0.1 \
		--dir "$T_DIR/redis" --save '' --appendonly yes \
		--appendfsync always --daemonize yes \
		--logfile "$T_DIR/logs/redis.log" \
		--pidfile "$T_DIR/redis.pid" ${T_REDIS_OPTS:-}
	# PONG, not LOADING: the AOF is loaded.
	t_wait 30 sh -c "redis-cli -p $T_REDIS_PORT ping | grep -q PONG" ||
		t_fail "redis did not start"
	export CHATMEM_REDIS_URL=redis://127.0.0.1:$T_REDIS_PORT
}

t_stop_redis() {
	redis-cli -p "$T_REDIS_PORT" shutdown >/dev/null 2>&1 || true
	t_wait 10 sh -c "! redis-cli -p $T_REDIS_PORT ping" ||
		t_fail "redis did not stop"
}

# t_cut_aof PERCENT: takes the newest PERCENT % off the end of the stopped
# Redis's AOF, as a power cut would, at the start of a MULTI/EXEC block (a
# script's writes), never inside one: Redis 7.0's loader, cut inside one,
# keeps the dangling MULTI in the file, and a later load applies part of
# a script. Prints the sizes before and after.
t_cut_aof() {
	$PY - "$(ls "$T_DIR"/redis/appendonlydir/*.incr.aof | tail -1)" "$1" <<'PYEOF'
import os, sys
path, pct = sys.argv[1], float(sys.argv[2])
size = os.path.getsize(path)
with open(path, "rb") as fp:
    head = fp.read(int(size * (100 - pct) / 100))
cut = head.rfind(b"*1\r\n$5\r\nMULTI\r\n")
if cut <= 0:
    sys.exit("no MULTI to cut at in " + path)
os.truncate(path, cut)
print(size, cut)
PYEOF
}

# t_kill_redis: kill -9 of redis-server, as a crash: nothing is saved on
# the way out.
t_kill_redis() {
	kill -9 "$(cat "$T_DIR/redis.pid")" 2>/dev/null || true
	t_wait 10 sh -c "! redis-cli -p $T_REDIS_PORT ping" ||
		t_fail "redis did not die"
	rm -f "$T_DIR/redis.pid"
}

t_rcli() { redis-cli -p "$T_REDIS_PORT" "$@"; }

# t_start_broker [PARTITIONS]: the test's broker, by T_BROKER (see the
# top), with PARTITIONS (default 8, left in T_PARTITIONS) per topic; sets
# and exports CHATMEM_KAFKA_BROKERS. The devbroker's pid is left in
# T_BROKER_PID and its fault file is $T_DIR/faults (see t_faults). On
# Apache Kafka the test's six topics and "$T_REPLIES.marker" are created
# (context.prebuilt with cleanup.policy=compact, and the topic configs
# in T_PREBUILT_CONFIG: "key=value,...") before it returns, so that
# workers started next find them.
t_start_broker() {
	T_PARTITIONS=${1:-8}
	if [ "$T_BROKER" = apache ]; then
		if [ -n "${CHATMEM_E2E_KAFKA:-}" ]; then
			CHATMEM_KAFKA_BROKERS=$CHATMEM_E2E_KAFKA
		else
			t_start_kafka
		fi
		export CHATMEM_KAFKA_BROKERS
		t_create_topics "$T_PARTITIONS" "$T_EVENTS" "$T_COMPACTION" "$T_DLQ" \
			"$T_REQUESTS" "$T_REPLIES" "$T_REPLIES.marker" \
			"$T_PREBUILT,cleanup.policy=compact${T_PREBUILT_CONFIG:+,$T_PREBUILT_CONFIG}"
		return 0
	fi
	rm -f "$T_DIR/bootstrap"
	"$BIN/chatmem-devbroker" -p "$T_PARTITIONS" -f "$T_DIR/bootstrap" \
		-C "$T_DIR/faults" >"$T_DIR/logs/devbroker.log" 2>&1 &
	T_BROKER_PID=$!
	T_PIDS="$T_PIDS $T_BROKER_PID"
	t_wait 10 test -s "$T_DIR/bootstrap" || t_fail "devbroker did not start"
	CHATMEM_KAFKA_BROKERS=$(cat "$T_DIR/bootstrap")
	export CHATMEM_KAFKA_BROKERS
}

# t_start_kafka: an Apache Kafka broker of the test's own (ops/kafka.sh)
# with its data in $T_DIR/kafka (T_KAFKA_DIR), T_PARTITIONS partitions per
# auto-created topic; sets and exports CHATMEM_KAFKA_BROKERS. Called again
# after t_kill_kafka, it restarts on the same data and port.
t_start_kafka() {
	T_KAFKA_DIR=$T_DIR/kafka
	"$T_SRC/ops/kafka.sh" start -d "$T_KAFKA_DIR" -p "${T_PARTITIONS:-8}" \
		>"$T_DIR/logs/kafka-start.log" 2>&1 ||
		t_fail "apache kafka did not start: $(tail -5 "$T_DIR/logs/kafka-start.log")"
	CHATMEM_KAFKA_BROKERS=$(cat "$T_KAFKA_DIR/bootstrap")
	export CHATMEM_KAFKA_BROKERS
}

# t_kill_kafka: kill -9 of the test's own broker; waits until it is gone.
t_kill_kafka() {
	_t_kp=$(cat "$T_KAFKA_DIR/kafka.pid")
	kill -KILL "$_t_kp" || t_fail "cannot kill the broker (pid $_t_kp)"
	t_wait 10 sh -c "case \$(ps -o stat= -p $_t_kp) in ''|Z*) exit 0;; esac; exit 1" ||
		t_fail "the broker (pid $_t_kp) survived kill -9"
}

# t_create_topics PARTITIONS TOPIC[,key=value...]...: creates topics on
# Apache Kafka (ops/kafka.sh topics); fails the test when one is missing.
t_create_topics() {
	_t_np=$1
	shift
	"$T_SRC/ops/kafka.sh" topics -b "$CHATMEM_KAFKA_BROKERS" -p "$_t_np" "$@" \
		>>"$T_DIR/logs/kafka-topics.log" 2>&1 ||
		t_fail "cannot create topics $*: $(tail -3 "$T_DIR/logs/kafka-topics.log")"
}

# t_start_worker NAME LOGNAME [ARGS...]: starts bin/chatmem-NAME in the
# background; its pid is left in T_LAST_PID.
t_start_worker() {
	_name=$1
	_log=$2
	shift 2
	"$BIN/chatmem-$_name" "$@" >>"$T_DIR/logs/$_log.log" 2>&1 &
	T_LAST_PID=$!
	T_PIDS="$T_PIDS $T_LAST_PID"
}

t_pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# t_stop_pid PID [SECONDS]: SIGTERM, then waits; fails unless it exits 0
# within SECONDS (default 10).
t_stop_pid() {
	kill -TERM "$1"
	t_wait "${2:-10}" t_pid_gone "$1" ||
		t_fail "pid $1 still running ${2:-10}s after SIGTERM"
	wait "$1" || t_fail "pid $1 exited with status $? after SIGTERM"
}

# t_sessions_check EXPECTED_JSONL: asserts every session in Redis holds
# exactly the messages of the file, in file order, once each.
t_sessions_check() {
	$PY "$T_SRC/tests/check_sessions.py" --port "$T_REDIS_PORT" "$@"
}

t_pass() { echo "[$T_NAME] PASS${1:+: $1}"; }

# t_stats: prints the fleet counters "APPLIED DUPLICATES DEAD" that ingest
# adds to P:stats in Redis (ingest_applied, ingest_duplicates,
# ingest_dead; 0 while unset). Every event an ingest worker consumes
# counts once in one of them, added once per batch, after the batch's
# writes are acknowledged and its offsets stored: a count that covers an
# event proves everything the event does in Redis is done. Fails when
# Redis does not answer.
t_stats() {
	_t_st=$(redis-cli -p "$T_REDIS_PORT" hmget "${T_PREFIX}stats" \
		ingest_applied ingest_duplicates ingest_dead 2>/dev/null |
		sed 's/^$/0/' | tr '\n' ' ')
	case "$_t_st" in
	*[!0-9\ ]*) return 1 ;;
	esac
	set -- $_t_st
	[ $# -eq 3 ] || return 1
	echo "$1 $2 $3"
}

# t_stats_reach TOTAL: true once applied + duplicates + dead >= TOTAL,
# that is once ingest has consumed TOTAL events (more with redeliveries).
t_stats_reach() {
	_t_sr=$(t_stats) || return 1
	set -- $1 $_t_sr
	[ $(($2 + $3 + $4)) -ge "$1" ]
}

# t_applied_reach COUNT: true once ingest has applied COUNT events.
t_applied_reach() {
	_t_sr=$(t_stats) || return 1
	[ "${_t_sr%% *}" -ge "$1" ]
}

# t_produce TOPIC PARTITION KEY VALUE: one message (kcat); PARTITION "-"
# lets the partitioner choose by key.
t_produce() {
	if [ "$2" = - ]; then
		printf '%s\t%s\n' "$3" "$4" |
			kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$1" -K '	'
	else
		printf '%s\t%s\n' "$3" "$4" |
			kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$1" -p "$2" -K '	'
	fi
}

# t_partition_of TOPIC KEY: prints the partition of the last message keyed
# KEY on TOPIC; fails when there is none.
t_partition_of() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$1" -e -q -f '%k\t%p\n' |
		awk -F '\t' -v k="$2" '$1 == k { p = $2 } END { if (p == "") exit 1; print p }'
}

t_llen_is() { [ "$(t_rcli llen "$1")" = "$2" ]; }

# t_ingest_marker [PARTITION]: produces a message event of a session of its
# own ("mark<N>:marker") to $T_EVENTS (to PARTITION when given, else
# where its key lands) and waits until ingest has stored it. Proves that an
# ingest worker consumes that partition, and that everything produced to
# the partition before the marker was handled first (one partition is
# applied in order). The session's name is left in T_MARKER.
t_ingest_marker() {
	T_MARKERS=$((T_MARKERS + 1))
	T_MARKER=mark$T_MARKERS:marker
	t_produce "$T_EVENTS" "${1:--}" "$T_MARKER" \
		"{\"event_id\":\"mark-$T_MARKERS\",\"user_id\":\"mark$T_MARKERS\",\"conversation_id\":\"marker\",\"role\":\"user\",\"content\":\"marker $T_MARKERS\"}" ||
		t_fail "cannot produce marker event $T_MARKERS"
	t_wait 30 t_llen_is "${T_PREFIX}{$T_MARKER}:msgs" 1 ||
		t_fail "ingest did not store marker event $T_MARKERS (partition ${1:-by key})"
}

# t_ingest_ready: an ingest worker consumes $T_EVENTS (a marker event
# went through it).
t_ingest_ready() { t_ingest_marker; }

_t_summary_folded() {
	[ "$(t_rcli hget "${T_PREFIX}{$1}:summary" folded)" -gt 0 ] 2>/dev/null
}

# t_summarizer_ready: ingest and a summarizer run: twelve messages to a
# session of their own are stored and folded into its summary.
t_summarizer_ready() {
	T_MARKERS=$((T_MARKERS + 1))
	_t_s=mark$T_MARKERS:fold
	for _t_i in 1 2 3 4 5 6 7 8 9 10 11 12; do
		printf '%s\t{"event_id":"mark-%s-%s","user_id":"mark%s","conversation_id":"fold","role":"user","content":"Marker line %s was written on day %s."}\n' \
			"$_t_s" "$T_MARKERS" "$_t_i" "$T_MARKERS" "$_t_i" "$_t_i"
	done | kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_EVENTS" -K '	' ||
		t_fail "cannot produce the summarizer's marker events"
	t_wait 30 _t_summary_folded "$_t_s" ||
		t_fail "no summarizer folded marker session $_t_s"
}

# Prints how many of the marker requests TAG-<n> have a reply on
# $T_REPLIES.marker.
_t_marker_replies() {
	kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES.marker" -e -q \
		-f '%k\n' 2>/dev/null | grep "^$1-[0-9]*\$" | sort -u | wc -l
}

_t_marker_replies_are() { [ "$(_t_marker_replies "$1")" -ge "$2" ]; }

# t_context_markers: sends one context request to every partition of
# $T_REQUESTS, answered on $T_REPLIES.marker, and waits for
# every reply. Proves that context workers consume every partition, and
# that every request produced before was handled first.
t_context_markers() {
	T_MARKERS=$((T_MARKERS + 1))
	_t_p=0
	while [ $_t_p -lt "$T_PARTITIONS" ]; do
		t_produce "$T_REQUESTS" $_t_p "cmark$T_MARKERS-$_t_p" \
			"{\"request_id\":\"cmark$T_MARKERS-$_t_p\",\"user_id\":\"marker\",\"reply_to\":\"$T_REPLIES.marker\",\"max_tokens\":100}" ||
			t_fail "cannot produce context marker $T_MARKERS-$_t_p"
		_t_p=$((_t_p + 1))
	done
	t_wait 30 _t_marker_replies_are "cmark$T_MARKERS" "$T_PARTITIONS" ||
		t_fail "only $(_t_marker_replies "cmark$T_MARKERS") of $T_PARTITIONS context marker requests answered"
}

# t_context_ready: a context worker answers requests on every partition.
t_context_ready() { t_context_markers; }

# t_start_fleet PARTITIONS: Redis, a broker with PARTITIONS partitions, one
# worker of each kind, returning once ingest and context answer (for
# tests that drive the fleet from outside, as an application would).
t_start_fleet() {
	t_start_redis
	t_start_broker "$1"
	t_start_worker ingest ingest
	t_start_worker summarizer summarizer
	t_start_worker context context
	t_ingest_ready
	t_context_ready
}

# t_start_fake_llm SLEEP_MS: a stand-in OpenAI-compatible endpoint; the
# summarizers started afterwards use it. It appends a line to
# $T_DIR/llm.port.requests for each request as it arrives.
t_start_fake_llm() {
	rm -f "$T_DIR/llm.port" "$T_DIR/llm.port.requests"
	$PY "$T_SRC/tests/fake_llm.py" "$T_DIR/llm.port" "${1:-300}" \
		>"$T_DIR/logs/fake-llm.log" 2>&1 &
	T_PIDS="$T_PIDS $!"
	t_wait 10 test -s "$T_DIR/llm.port" || t_fail "fake llm did not start"
	export CHATMEM_SUMMARIZER_KIND=llm
	export CHATMEM_LLM_BASE_URL=http://127.0.0.1:$(cat "$T_DIR/llm.port")
}

# Prints how many requests the fake LLM has received.
t_llm_requests() {
	if [ -f "$T_DIR/llm.port.requests" ]; then
		wc -l <"$T_DIR/llm.port.requests"
	else
		echo 0
	fi
}

# t_send_paced FILE LINES PAUSE: produces the events of FILE (JSON lines)
# with `chatmem send`, LINES at a time and PAUSE seconds apart, in the
# background, so that a kill or a restart lands mid-stream; each chunk sent
# is listed in $T_DIR/sent.txt. The sender's pid is left in T_SENDER (wait
# for it: it fails if a send failed).
t_send_paced() {
	(
		_p=$T_DIR/chunk.$(basename "$1").
		split -l "$2" "$1" "$_p"
		for c in "$_p"*; do
			"$BIN/chatmem" send <"$c" 2>>"$T_DIR/logs/send.log" || exit 1
			echo "$c" >>"$T_DIR/sent.txt"
			sleep "$3"
		done
	) &
	T_SENDER=$!
}

# t_folds SESSION EVENTS_JSONL [ARGS]: every event exactly once in the
# session's archive or its list, in order (tests/check_folds.py).
t_folds() {
	_s=$1
	_e=$2
	shift 2
	$PY "$T_SRC/tests/check_folds.py" --port "$T_REDIS_PORT" \
		--chatmem "$BIN/chatmem" "$@" "$_s" "$_e"
}

# t_archive_keys [PATTERN]: prints the archive keys (SCAN, never KEYS)
# whose name matches *PATTERN*:archive (default: every one), one a line.
t_archive_keys() {
	t_rcli --scan --pattern "*${1:-}*:archive"
}

# t_faults LINE...: hands fault-injection commands to the devbroker (see
# tools/devbroker/main.c) and waits until it applied them. Before
# t_start_broker, they apply from its start. Devbroker only.
t_faults() {
	[ "$T_BROKER" = dev ] || t_fail "t_faults needs the devbroker (T_BROKER=dev)"
	rm -f "$T_DIR/faults.done"
	printf '%s\n' "$@" >"$T_DIR/faults.tmp"
	mv "$T_DIR/faults.tmp" "$T_DIR/faults"
	[ -n "${T_BROKER_PID:-}" ] || return 0
	t_wait 10 test -e "$T_DIR/faults.done" || t_fail "faults not applied"
}
