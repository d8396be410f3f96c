#!/bin/bash
# Ingest appends to one session at a high rate while the summarizer folds
# it again and again through an LLM endpoint that takes 300 ms per call.
# Afterwards every event is exactly once either in the session's archive
# (where the folds moved it) or still in the list, in order.
# brokers: dev apache
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 4
t_start_fake_llm 300
$PY - >"$T_DIR/events.jsonl" <<'PYEOF'
import json
for i in range(3000):
    print(json.dumps({"event_id": "race-%d" % i, "user_id": "racer",
                      "conversation_id": "hot",
                      "role": "user" if i % 2 == 0 else "assistant",
                      "content": "Message %d: the build on node %d took %d seconds."
                                 % (i, i % 7, i % 60)}))
PYEOF
t_start_worker ingest ingest
t_start_worker summarizer summarizer
SUM=$T_LAST_PID
# Both consume before the stream starts: a session of their own was folded.
t_summarizer_ready

# 3000 events in 30 chunks over ~3 s: appends keep landing while folds
# (each 300 ms in the LLM) are in flight.
split -l 100 "$T_DIR/events.jsonl" "$T_DIR/chunk."
for c in "$T_DIR"/chunk.*; do
	"$BIN/chatmem" send <"$c" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
	sleep 0.1
done
all_in() { [ "$(t_rcli hget 'chatmem:{racer:hot}:meta' total)" = 3000 ]; }
t_wait 60 all_in || t_fail "not all events were appended"
# Let the last jobs finish, then check.
settled() { [ -z "$(t_rcli hget 'chatmem:{racer:hot}:meta' cjob)" ]; }
t_wait 60 settled || t_fail "a compaction job never finished"
t_folds racer:hot "$T_DIR/events.jsonl" --min-folded 100 || t_fail "events lost or duplicated by compaction"
llen=$(t_rcli llen 'chatmem:{racer:hot}:msgs')
[ "$llen" -le 20 ] || t_fail "the session was not compacted: $llen messages left"
t_stop_pid "$SUM" 10
# The fake LLM numbers each summary one past the summary it was given, so
# the stored summary says how many folds were committed one on another.
summary=$(t_rcli hget 'chatmem:{racer:hot}:summary' text)
folds=$(echo "$summary" | sed -n 's/^Fold \([0-9]*\) .*/\1/p')
[ "${folds:-0}" -ge 3 ] || t_fail "only ${folds:-0} folds committed while the stream was appending: '$summary'"
t_log "$folds folds committed, $(t_llm_requests) LLM requests"
t_pass "3000 appends under 300 ms folds ($folds folds): every event archived or stored exactly once"
