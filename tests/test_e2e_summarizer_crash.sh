#!/bin/bash
# kill -9 of the summarizer in the middle of a fold (while it waits on a
# slow LLM), then a restart: the session stays consistent, nothing is lost
# or duplicated between its list and its archive, and the restarted
# summarizer completes the fold.
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 4
t_start_fake_llm 2000
$PY - >"$T_DIR/events.jsonl" <<'PYEOF'
import json
for i in range(40):
    print(json.dumps({"event_id": "crash-%d" % i, "user_id": "crashy",
                      "conversation_id": "c1",
                      "role": "user" if i % 2 == 0 else "assistant",
                      "content": "Line %d about the release on 2026-12-%02d." % (i, 1 + i % 28)}))
PYEOF
t_start_worker ingest ingest
t_start_worker summarizer summarizer-1
S=$T_LAST_PID
"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 30 sh -c "[ \$(redis-cli -p $T_REDIS_PORT hget 'chatmem:{crashy:c1}:meta' total) = 40 ]" || t_fail "events did not arrive"
# The job is pending and the summarizer is inside the 2 s LLM call: the
# fake LLM has its request.
llm_called() { [ "$(t_llm_requests)" -ge 1 ]; }
t_wait 30 llm_called || t_fail "the summarizer never called the LLM"
kill -KILL "$S"
wait "$S" 2>/dev/null || true
before=$(t_rcli llen 'chatmem:{crashy:c1}:msgs')
[ "$before" = 40 ] || t_fail "the fold committed before the kill ($before left): the kill was not mid-fold"
[ -z "$(t_archive_keys crashy)" ] || t_fail "an archive was written before the fold committed"
t_folds crashy:c1 "$T_DIR/events.jsonl" --min-folded 0 || t_fail "inconsistent right after the kill"

t_start_worker summarizer summarizer-2
folded() { [ "$(t_rcli llen 'chatmem:{crashy:c1}:msgs')" -le 3 ]; }
t_wait 60 folded || t_fail "the restarted summarizer did not fold: $(t_rcli llen 'chatmem:{crashy:c1}:msgs') left"
t_folds crashy:c1 "$T_DIR/events.jsonl" --min-folded 37 || t_fail "lost or duplicated after the restart"
t_pass "kill -9 mid-fold: session unchanged, restart folded it into the archive, 0 lost, 0 duplicated"
