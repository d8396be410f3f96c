#!/bin/sh
# Runs the libFuzzer targets built by `make fuzz` (build/fuzz/bin/fuzz_<name>),
# one after the other, each for SECONDS, and prints a line per target: its
# executions (libFuzzer's final stats), executions per second, and whether
# it failed (a crash, a sanitizer report, a leak, a timeout, an invariant
# of the target broken). Exits 1 when one did.
#
#   ops/fuzz.sh SECONDS NAME...
#
# Each target starts from its committed seeds (tests/fuzz/corpus/<name>,
# copied to build/fuzz/corpus/<name>, which also keeps what earlier runs
# found and takes the new inputs: git's copy is never written) and the
# inputs that once failed (tests/fuzz/regressions/<name>). A failing input
# is written to build/fuzz/artifacts/<name>/; once the bug is fixed, keep it
# in tests/fuzz/regressions/<name>/ so that `make unit` replays it. The
# targets whose input is JSON get the dictionary tests/fuzz/json.dict. The
# log of each run is build/fuzz/logs/<name>.log.
#
# FUZZ_TIMEOUT (default 10): seconds one input may take before it counts
# as a hang. FUZZ_FLAGS: more libFuzzer flags (e.g. -max_len=65536).
set -eu

[ $# -ge 2 ] || {
	echo "usage: $0 SECONDS NAME..." >&2
	exit 2
}
seconds=$1
shift
out=build/fuzz
timeout=${FUZZ_TIMEOUT:-10}
failed=0

printf '%-18s %12s %10s  %s\n' target executions exec/s result
for name in "$@"; do
	bin=$out/bin/fuzz_$name
	corpus=$out/corpus/$name
	artifacts=$out/artifacts/$name
	log=$out/logs/$name.log
	mkdir -p "$corpus" "$artifacts" "$out/logs"
	cp tests/fuzz/corpus/"$name"/* "$corpus"/
	# Paths without spaces: each word one argument.
	args="-artifact_prefix=$artifacts/ $corpus"
	[ -d tests/fuzz/regressions/"$name" ] &&
		args="$args tests/fuzz/regressions/$name"
	case $name in
	event | request | compaction | stored | llm)
		args="-dict=tests/fuzz/json.dict $args"
		;;
	esac
	rc=0
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$seconds" -timeout="$timeout" \
		-print_final_stats=1 ${FUZZ_FLAGS:-} $args >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	if [ "$rc" = 0 ]; then
		result=ok
	else
		failed=1
		artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
		result="FAILED (exit $rc) ${artifact:-see $log}"
	fi
	printf '%-18s %12s %10s  %s\n' "fuzz_$name" "${execs:-?}" "${rate:-?}" \
		"$result"
done
exit $failed
