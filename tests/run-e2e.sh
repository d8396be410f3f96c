#!/bin/sh
# Runs the integration tests given as arguments, one after another, on the
# brokers each names in its first lines ("# brokers: dev apache"; default
# dev), and prints a summary. Exits 1 if any failed.
#
# The devbroker runs come first; then one Apache Kafka broker
# (ops/kafka.sh, data in tests/out/kafka/) is started for all the Apache
# runs, which each create topics and consumer groups of their own on it
# (tests/lib.sh), and stopped at the end. CHATMEM_E2E_BROKERS limits the
# brokers ("dev", "apache"; default both).
#
# Each test runs under a time limit of CHATMEM_E2E_TIMEOUT seconds (default
# 300), so that a hang fails fast. At the limit the test's process group
# gets SIGTERM: the test's EXIT trap (tests/lib.sh) stops the workers, the
# redis-server and any broker of its own it started, and the workers
# themselves see SIGTERM. Whatever still runs 10 s later gets SIGKILL. A
# redis-server or Kafka broker a test left behind (its pid file under
# tests/out/<test>/) is then killed here, and the test is reported as
# having leaked it.
set -u
limit=${CHATMEM_E2E_TIMEOUT:-300}
brokers=${CHATMEM_E2E_BROKERS:-dev apache}
here=$(cd "$(dirname "$0")" && pwd)
pass=0
fail=0
failed=""
kafka_dir=$here/out/kafka

# stop_leftovers DIR: kills every redis-server and Kafka broker that still
# runs from a pid file under the test's directory DIR (and, for Redis, in
# it: its working directory is the test's); prints how many there were.
stop_leftovers() {
	n=0
	for pidfile in $(find "$1" -name redis.pid -o -name kafka.pid 2>/dev/null); do
		pid=$(cat "$pidfile" 2>/dev/null) || continue
		case $(cat "/proc/$pid/comm" 2>/dev/null) in
		redis-server)
			case $(readlink "/proc/$pid/cwd" 2>/dev/null) in
			"$1"/*) ;;
			*) continue ;;
			esac
			;;
		java)
			tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "kafka.Kafka $1/" ||
				continue
			;;
		*) continue ;;
		esac
		kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
	done
	echo "$n"
}

# runs_on TEST BROKER: the test names BROKER in its first lines.
runs_on() {
	b=$(sed -n '1,30s/^# brokers: //p' "$1")
	case " ${b:-dev} " in
	*" $2 "*) return 0 ;;
	esac
	return 1
}

start_kafka() {
	rm -rf "$kafka_dir"
	start=$(date +%s)
	if ! CHATMEM_E2E_KAFKA=$("$here/../ops/kafka.sh" start -d "$kafka_dir" -p 8); then
		echo "FAIL apache kafka did not start (log: $kafka_dir/kafka.log)"
		return 1
	fi
	export CHATMEM_E2E_KAFKA
	echo "apache kafka on $CHATMEM_E2E_KAFKA ($(($(date +%s) - start)) s to start)"
}
stop_kafka() {
	[ -n "${CHATMEM_E2E_KAFKA:-}" ] || return 0
	"$here/../ops/kafka.sh" stop -d "$kafka_dir"
	CHATMEM_E2E_KAFKA=""
}
trap stop_kafka EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# run TEST BROKER
run() {
	name=$(basename "$1" .sh)
	dir=$here/out/$name
	label=$name.sh
	if [ "$2" = apache ]; then
		dir=$dir.apache
		label="$name.sh [apache]"
	fi
	start=$(date +%s)
	T_BROKER=$2 timeout --kill-after=10 "$limit" bash "$1"
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0) status=ok ;;
	124 | 137) status=TIMEOUT ;;
	*) status=FAIL ;;
	esac
	left=$(stop_leftovers "$dir")
	if [ "$left" -gt 0 ]; then
		echo "$label left $left redis-server(s) or broker(s) running; killed" >&2
		[ "$status" = ok ] && status=FAIL
	fi
	if [ "$status" = ok ]; then
		pass=$((pass + 1))
		echo "ok   $label ($secs s)"
	else
		fail=$((fail + 1))
		failed="$failed $label"
		if [ "$status" = TIMEOUT ]; then
			echo "FAIL $label (TIMEOUT after $limit s)"
		else
			echo "FAIL $label ($secs s)"
		fi
	fi
}

for broker in $brokers; do
	kafka_started=""
	for t in "$@"; do
		runs_on "$t" "$broker" || continue
		if [ "$broker" = apache ] && [ -z "$kafka_started" ]; then
			kafka_started=1
			if ! start_kafka; then
				fail=$((fail + 1))
				failed="$failed apache-kafka"
				break
			fi
		fi
		run "$t" "$broker"
	done
done
stop_kafka
echo "integration: $pass passed, $fail failed${failed:+:$failed}"
[ "$fail" -eq 0 ]
