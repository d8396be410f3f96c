#!/bin/bash
# The Python client (clients/python, package chatmem) against a fleet:
# ingest, summarizer and context workers on this test's Redis and broker.
# Its pytest suite (clients/python/tests/fleet) runs in the virtualenv of
# `make python-client-env` (made or refreshed here when needed): send then
# context (sync and asyncio), 1,000 concurrent requests all correlated
# (asyncio.gather, threads, futures), time-outs and a late reply, an error
# reply, prebuilt contexts with a tombstone, the reply topic's life cycle,
# and the README's quick start run as written.
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

make -s -C "$T_SRC" python-client-env >"$T_DIR/logs/venv.log" 2>&1 ||
	t_fail "cannot make the client's virtualenv: $(tail -5 "$T_DIR/logs/venv.log")"
PYC=$T_SRC/build/py-client/bin/python

t_start_fleet 4

# The client reads the broker and the topic names from CHATMEM_KAFKA_BROKERS
# and CHATMEM_TOPICS_* (set by lib.sh on Apache Kafka), as an application
# would.
(cd "$T_SRC/clients/python" &&
	"$PYC" -m pytest -p no:cacheprovider -q -rs --durations=8 tests/fleet) >"$T_DIR/logs/pytest.log" 2>&1 ||
	t_fail "pytest failed: $(tail -40 "$T_DIR/logs/pytest.log")"
t_pass "$(tail -1 "$T_DIR/logs/pytest.log")"
