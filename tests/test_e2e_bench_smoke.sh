#!/bin/sh
# make bench's harness works end to end at tiny sizes (BENCH_SMOKE=1): it
# starts its own fleet, produces every number, writes a well-formed
# bench.json and the report, and stops what it started. Asserts no speed.
# First the report's self-test: the client comparison's arithmetic on
# hand-made curves (ops/bench_report.py --self-test).
. "$(dirname "$0")/lib.sh"

$PY "$T_SRC/ops/bench_report.py" --self-test >"$T_DIR/logs/self-test.log" 2>&1 ||
	t_fail "bench_report.py --self-test failed (see $T_DIR/logs/self-test.log)"
out=$T_DIR/bench
BENCH_SMOKE=1 CHATMEM_BIN=$BIN "$T_SRC/ops/bench.sh" "$out" \
	>"$T_DIR/logs/bench.log" 2>&1 || t_fail "ops/bench.sh failed"
$PY - "$out/bench.json" <<'PY' || t_fail "bench.json is incomplete"
import json, sys
d = json.load(open(sys.argv[1]))
modes = [r["mode"] for r in d["results"]]
for m in ("ingest", "ref_kcat", "ref_redis", "memory", "prefill", "context",
          "build", "cost", "archive_codec", "archive_memory"):
    assert m in modes, "no %s result" % m
assert sorted(r["workers"] for r in d["results"] if r["mode"] == "ingest") == [1, 2]
for r in d["results"]:
    if r["mode"] == "ingest":
        assert r["events_per_s"] > 0
    if r["mode"] == "context":
        assert r["received"] > 0 and r["p99_us"] > 0, r
    if r["mode"] == "cost":
        assert r["full_tokens"] > 0 and r["chatmem_tokens"] > 0
assert [r["messages"] for r in d["results"] if r["mode"] == "cost"] == [5, 10, 20, 50]
runs = [r for r in d["results"] if r["mode"] == "context_client"]
clients = {r["client"] for r in runs if r["received"] > 0}
assert clients == {"c", "node", "python"}, "client comparison ran for %s" % sorted(clients)
assert all(r["rep"] >= 1 for r in runs), runs
node = d["summary"]["clients"]["node"]
assert "bounds" in node and "min_ratio" in node, node
assert all(0 <= b["ratio"] <= 1 for b in node["bounds"]), node
assert d["summary"]["redis_bytes_per_session"] > 0
assert d["summary"]["archive_bytes_per_msg"] > 0
PY
[ -s "$out/report.txt" ] || t_fail "no report.txt"
grep -q '^Context request/reply' "$out/report.txt" || t_fail "report lacks the context table"
t_pass "$(grep -c . "$out/results.jsonl") results"
