#!/bin/sh
# Runs the integration tests given as arguments, one after another, and
# prints a summary. Exits 1 if any failed.
set -u
pass=0
fail=0
failed=""
for t in "$@"; do
	start=$(date +%s)
	if bash "$t"; then
		pass=$((pass + 1))
		echo "ok   $(basename "$t") ($(($(date +%s) - start)) s)"
	else
		fail=$((fail + 1))
		failed="$failed $(basename "$t")"
		echo "FAIL $(basename "$t") ($(($(date +%s) - start)) s)"
	fi
done
echo "integration: $pass passed, $fail failed${failed:+:$failed}"
[ "$fail" -eq 0 ]
