#!/bin/bash
# The events topic deleted and created again (DESIGN.md, guarantee 1): its
# offsets start again below those Redis recorded as applied, so the
# sessions' watermarks would take its new events for applied ones. Ingest
# detects it and, by default (ingest.topic_reset = stop), consumes nothing
# from it and says so; with ingest.topic_reset = replay it applies the new
# topic's events as new ones: 0 lost, 0 duplicated, in order.
# brokers: apache
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 4
# 100 sessions; the first 1000 events go to the first topic, the last 200
# (2 more per session, for the same sessions) to the recreated one.
$PY "$T_SRC/tests/gen_events.py" 100 1200 rc >"$T_DIR/all.jsonl"
head -n 1000 "$T_DIR/all.jsonl" >"$T_DIR/a.jsonl"
tail -n 200 "$T_DIR/all.jsonl" >"$T_DIR/b.jsonl"

t_start_worker ingest ingest-a
A=$T_LAST_PID
t_ingest_ready
"$BIN/chatmem" send <"$T_DIR/a.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "chatmem send failed"
t_wait 60 t_applied_reach 1001 || t_fail "the first topic's events were not applied: $(t_stats)"
t_stop_pid "$A"

"$T_SRC/ops/kafka.sh" topics -b "$CHATMEM_KAFKA_BROKERS" -D "$T_EVENTS" \
	>>"$T_DIR/logs/kafka-topics.log" 2>&1 || t_fail "cannot delete $T_EVENTS"
t_create_topics 4 "$T_EVENTS"
"$BIN/chatmem" send <"$T_DIR/b.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "chatmem send failed"
t_log "topic recreated with 200 new events for the same sessions"
before=$(t_stats)

# Default: held, said, nothing consumed (neither applied nor skipped).
t_start_worker ingest ingest-b
B=$T_LAST_PID
t_wait 30 grep -q 'the topic was recreated' "$T_DIR/logs/ingest-b.log" ||
	t_fail "ingest did not detect the recreated topic"
sleep 2
[ "$(t_stats)" = "$before" ] || t_fail "ingest consumed the recreated topic: $(t_stats), before $before"
$PY "$T_SRC/tests/check_sessions.py" --port "$T_REDIS_PORT" "$T_DIR/a.jsonl" >/dev/null ||
	t_fail "the sessions changed while the partitions were held"
t_stop_pid "$B"

# The operator's choice: replay it as new.
CHATMEM_INGEST_TOPIC_RESET=replay t_start_worker ingest ingest-c
done_all() { $PY "$T_SRC/tests/check_sessions.py" --port "$T_REDIS_PORT" "$T_DIR/all.jsonl"; }
t_wait 60 done_all || { done_all; t_fail "the recreated topic's events were not applied once each, in order"; }
set -- $(t_stats) $before
[ "$(($1 - $4)) $(($2 - $5))" = "200 0" ] ||
	t_fail "replay applied $(($1 - $4)) and skipped $(($2 - $5)), want 200 and 0"
t_pass "recreated topic: held by default, then its 200 events applied as new, in order"
