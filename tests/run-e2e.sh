#!/bin/sh
# Runs the integration tests given as arguments, one after another, and
# prints a summary. Exits 1 if any failed.
#
# Each test runs under a time limit of CHATMEM_E2E_TIMEOUT seconds (default
# 300), so that a hang fails fast. At the limit the test's process group
# gets SIGTERM: the test's EXIT trap (tests/lib.sh) stops the workers and
# the redis-server it started, and the workers themselves see SIGTERM.
# Whatever still runs 10 s later gets SIGKILL. A redis-server a test left
# behind (its pid file under tests/out/<test>/) is then shut down here, and
# the test is reported as having leaked it.
set -u
limit=${CHATMEM_E2E_TIMEOUT:-300}
pass=0
fail=0
failed=""

# stop_leftovers TEST: kills every redis-server that still runs from a pid
# file under the test's directory (and in it: its working directory is the
# test's); prints how many there were.
stop_leftovers() {
	n=0
	dir=$(cd "$(dirname "$1")" && pwd)/out/$(basename "$1" .sh)
	for pidfile in $(find "$dir" -name redis.pid 2>/dev/null); do
		pid=$(cat "$pidfile" 2>/dev/null) || continue
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ] || continue
		case $(readlink "/proc/$pid/cwd" 2>/dev/null) in
		"$dir"/*) ;;
		*) continue ;;
		esac
		kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
	done
	echo "$n"
}

for t in "$@"; do
	name=$(basename "$t" .sh)
	start=$(date +%s)
	timeout --kill-after=10 "$limit" bash "$t"
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0) status=ok ;;
	124 | 137) status=TIMEOUT ;;
	*) status=FAIL ;;
	esac
	left=$(stop_leftovers "$t")
	if [ "$left" -gt 0 ]; then
		echo "$name left $left redis-server(s) running; killed" >&2
		[ "$status" = ok ] && status=FAIL
	fi
	if [ "$status" = ok ]; then
		pass=$((pass + 1))
		echo "ok   $name.sh ($secs s)"
	else
		fail=$((fail + 1))
		failed="$failed $name.sh"
		if [ "$status" = TIMEOUT ]; then
			echo "FAIL $name.sh (TIMEOUT after $limit s)"
		else
			echo "FAIL $name.sh ($secs s)"
		fi
	fi
done
echo "integration: $pass passed, $fail failed${failed:+:$failed}"
[ "$fail" -eq 0 ]
