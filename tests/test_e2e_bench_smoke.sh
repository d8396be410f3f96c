#!/bin/sh
# make bench's harness works end to end at tiny sizes (BENCH_SMOKE=1): it
# starts its own fleet, produces every number, writes a well-formed
# bench.json and the report, and stops what it started. Asserts no speed.
. "$(dirname "$0")/lib.sh"

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
clients = {r["client"] for r in d["results"] if r["mode"] == "context_client" and r["received"] > 0}
assert clients == {"c", "node", "python"}, "client comparison ran for %s" % sorted(clients)
assert "same_p99" in d["summary"]["clients"]["node"], d["summary"]["clients"]
assert d["summary"]["redis_bytes_per_session"] > 0
assert d["summary"]["archive_bytes_per_msg"] > 0
PY
[ -s "$out/report.txt" ] || t_fail "no report.txt"
grep -q '^Context request/reply' "$out/report.txt" || t_fail "report lacks the context table"
t_pass "$(grep -c . "$out/results.jsonl") results"
