#!/bin/bash
# brokers: dev apache
# The Node.js client (clients/node) against a fleet: Redis, a broker,
# ingest, summarizer and context workers, then `node --test` in
# clients/node with the fleet's settings in the environment:
# test/e2e.test.js (send then context, 1,000 concurrent requests,
# time-outs, an error reply, prebuilt with tombstones), test/seed.test.js
# (the seed README's snippets through chatmem/seed) and
# test/quickstart.test.js (the README's quick start).
. "$(dirname "$0")/lib.sh"

NODE_DIR=$T_SRC/clients/node
command -v node >/dev/null || t_fail "node is missing"
"$NODE_DIR/scripts/install-deps.sh" || t_fail "cannot install clients/node's dependencies"

t_start_fleet 4

# The tests check that the context worker's librdkafka and the client's
# partitioner put each session on the same partition of the T_PARTITIONS.
export CHATMEM_TEST_PARTITIONS=$T_PARTITIONS
(cd "$NODE_DIR" && node --test --test-concurrency=3 \
	test/e2e.test.js test/seed.test.js test/quickstart.test.js) \
	>"$T_DIR/logs/node-test.log" 2>&1 || {
	grep -E -B2 -A25 '^not ok|^# (pass|fail)' "$T_DIR/logs/node-test.log" | tail -80 >&2
	t_fail "node --test failed (log: $T_DIR/logs/node-test.log)"
}
grep -E '^# (tests|pass|fail)' "$T_DIR/logs/node-test.log"
t_pass "the Node.js client: $(sed -n 's/^# pass //p' "$T_DIR/logs/node-test.log") tests passed"
