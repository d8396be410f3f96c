# Shared helpers for the integration tests (sourced, POSIX sh + bash ok).
#
# Each test gets its own directory under tests/out/<name>/, its own
# redis-server and devbroker on free ports, and stops everything it started
# on exit, pass or fail.
set -eu

T_SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CHATMEM_BIN:-$T_SRC/bin}
PY=/usr/bin/python3
T_NAME=$(basename "$0" .sh)
T_DIR=$T_SRC/tests/out/$T_NAME
rm -rf "$T_DIR"
mkdir -p "$T_DIR/logs"
T_PIDS=""
T_REDIS_PORT=""

t_log() { echo "[$T_NAME] $*"; }

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
}
trap t_cleanup EXIT

# t_wait SECONDS COMMAND...: retries COMMAND every 0.1 s until it succeeds.
t_wait() {
	_limit=$(($1 * 10))
	shift
	_i=0
	until "$@" >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ $_i -ge $_limit ] && return 1
		sleep 0.1
	done
	return 0
}

# Starts redis-server on a free port; persistent (AOF, fsync always) so that
# a test can stop and restart it without losing acknowledged writes.
t_start_redis() {
	[ -n "$T_REDIS_PORT" ] || T_REDIS_PORT=$(t_free_port)
	mkdir -p "$T_DIR/redis"
	redis-server --port "$T_REDIS_PORT" --bind 127.0.0.1 \
		--dir "$T_DIR/redis" --save '' --appendonly yes \
		--appendfsync always --daemonize yes \
		--logfile "$T_DIR/logs/redis.log" \
		--pidfile "$T_DIR/redis.pid"
	t_wait 10 redis-cli -p "$T_REDIS_PORT" ping || t_fail "redis did not start"
	export CHATMEM_REDIS_URL=redis://127.0.0.1:$T_REDIS_PORT
}

t_stop_redis() {
	redis-cli -p "$T_REDIS_PORT" shutdown >/dev/null 2>&1 || true
	t_wait 10 sh -c "! redis-cli -p $T_REDIS_PORT ping" ||
		t_fail "redis did not stop"
}

t_rcli() { redis-cli -p "$T_REDIS_PORT" "$@"; }

# Starts the devbroker with $1 partitions (default 8). Its fault file is
# $T_DIR/faults (see t_faults).
t_start_broker() {
	rm -f "$T_DIR/bootstrap"
	"$BIN/chatmem-devbroker" -p "${1:-8}" -f "$T_DIR/bootstrap" \
		-C "$T_DIR/faults" >"$T_DIR/logs/devbroker.log" 2>&1 &
	T_BROKER_PID=$!
	T_PIDS="$T_PIDS $T_BROKER_PID"
	t_wait 10 test -s "$T_DIR/bootstrap" || t_fail "devbroker did not start"
	CHATMEM_KAFKA_BROKERS=$(cat "$T_DIR/bootstrap")
	export CHATMEM_KAFKA_BROKERS
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

# t_stop_pid PID [SECONDS]: SIGTERM, then waits; fails unless it exits 0 in
# time.
t_stop_pid() {
	kill -TERM "$1"
	_i=0
	while kill -0 "$1" 2>/dev/null; do
		_i=$((_i + 1))
		[ $_i -ge $((${2:-10} * 10)) ] && t_fail "pid $1 still running ${2:-10}s after SIGTERM"
		sleep 0.1
	done
	wait "$1" || t_fail "pid $1 exited with status $? after SIGTERM"
}

# t_sessions_check EXPECTED_JSONL: asserts every session in Redis holds
# exactly the messages of the file, in file order, once each.
t_sessions_check() {
	$PY "$T_SRC/tests/check_sessions.py" --port "$T_REDIS_PORT" "$@"
}

t_pass() { echo "[$T_NAME] PASS${1:+: $1}"; }

# t_stats LOGNAME...: sums the last "stats:" line of each ingest log and
# prints "APPLIED DUPLICATES DLQ".
t_stats() {
	_a=0 _d=0 _q=0
	for _l in "$@"; do
		_line=$(grep 'stats:' "$T_DIR/logs/$_l.log" 2>/dev/null | tail -1)
		[ -n "$_line" ] || continue
		set -- $(echo "$_line" | sed 's/.*stats: \([0-9]*\) applied, \([0-9]*\) duplicates skipped, \([0-9]*\) to dlq.*/\1 \2 \3/')
		_a=$((_a + $1)) _d=$((_d + $2)) _q=$((_q + $3))
	done
	echo "$_a $_d $_q"
}

# t_stats_reach TOTAL LOGNAME...: true once applied+duplicates+dlq of the
# logs add up to at least TOTAL.
t_stats_reach() {
	_want=$1
	shift
	set -- $(t_stats "$@")
	[ $(($1 + $2 + $3)) -ge "$_want" ]
}

# t_start_fake_llm SLEEP_MS: a stand-in OpenAI-compatible endpoint; the
# summarizers started afterwards use it.
t_start_fake_llm() {
	rm -f "$T_DIR/llm.port"
	$PY "$T_SRC/tests/fake_llm.py" "$T_DIR/llm.port" "${1:-300}" \
		>"$T_DIR/logs/fake-llm.log" 2>&1 &
	T_PIDS="$T_PIDS $!"
	t_wait 10 test -s "$T_DIR/llm.port" || t_fail "fake llm did not start"
	export CHATMEM_SUMMARIZER_KIND=llm
	export CHATMEM_LLM_BASE_URL=http://127.0.0.1:$(cat "$T_DIR/llm.port")
}

# t_folds SESSION EVENTS_JSONL [ARGS]: every event folded or stored once.
t_folds() {
	_s=$1
	_e=$2
	shift 2
	$PY "$T_SRC/tests/check_folds.py" --port "$T_REDIS_PORT" "$@" "$_s" "$_e"
}

# t_faults LINE...: hands fault-injection commands to the devbroker (see
# tools/devbroker/main.c) and waits until it applied them. Before
# t_start_broker, they apply from its start.
t_faults() {
	rm -f "$T_DIR/faults.done"
	printf '%s\n' "$@" >"$T_DIR/faults.tmp"
	mv "$T_DIR/faults.tmp" "$T_DIR/faults"
	[ -n "${T_BROKER_PID:-}" ] || return 0
	t_wait 10 test -e "$T_DIR/faults.done" || t_fail "faults not applied"
}
