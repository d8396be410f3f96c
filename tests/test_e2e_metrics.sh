#!/bin/bash
# The operations endpoints of every daemon (metrics.listen): /metrics moves
# with the events and the requests, /healthz answers while the process
# runs, and /readyz is not ready while Redis is stopped and ready again
# once it is back.
# brokers: dev
. "$(dirname "$0")/lib.sh"

t_start_redis
t_start_broker 4

PORT_INGEST=$(t_free_port)
PORT_CONTEXT=$(t_free_port)
PORT_SUMM=$(t_free_port)
CHATMEM_METRICS_LISTEN=127.0.0.1:$PORT_INGEST t_start_worker ingest ingest
PID_INGEST=$T_LAST_PID
CHATMEM_METRICS_LISTEN=127.0.0.1:$PORT_CONTEXT t_start_worker context context
PID_CONTEXT=$T_LAST_PID
CHATMEM_METRICS_LISTEN=:$PORT_SUMM t_start_worker summarizer summarizer
PID_SUMM=$T_LAST_PID

# status PORT PATH: prints the HTTP status of GET PATH.
status() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2"; }
status_is() { [ "$(status "$1" "$2")" = "$3" ]; }
# metric PORT NAME: prints the value of the series NAME (with its labels,
# as rendered), or 0 when it is not there.
metric() {
	curl -sf "http://127.0.0.1:$1/metrics" |
		awk -v n="$2" '$1 == n { v = $2 } END { print (v == "" ? 0 : v) }'
}
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }
metric_over() { awk -v v="$(metric "$1" "$2")" -v m="$3" 'BEGIN { exit !(v > m) }'; }

for p in $PORT_INGEST $PORT_CONTEXT $PORT_SUMM; do
	t_wait 10 status_is "$p" /healthz 200 || t_fail "no /healthz 200 on port $p"
done
status_is "$PORT_INGEST" /nothing 404 || t_fail "an unknown path is not 404"

t_ingest_ready   # 1 event applied
t_context_ready  # 4 requests
t_summarizer_ready # 12 events applied, at least one fold
for p in $PORT_INGEST $PORT_CONTEXT $PORT_SUMM; do
	t_wait 30 status_is "$p" /readyz 200 ||
		t_fail "port $p not ready: $(curl -s "http://127.0.0.1:$p/readyz")"
done

# 40 events, and one that is not JSON: the applied counter is exactly the
# events applied, the bad one is counted by reason.
$PY "$T_SRC/tests/gen_events.py" 4 40 metrics >"$T_DIR/events.jsonl"
{
	cat "$T_DIR/events.jsonl"
	echo '{"event_id":"bad","user_id":"m","role":"user","content":'
} >"$T_DIR/send.jsonl"
"$BIN/chatmem" send --raw <"$T_DIR/send.jsonl" 2>>"$T_DIR/logs/send.log" ||
	t_fail "chatmem send failed"
t_wait 30 t_stats_reach 54 || t_fail "not all events consumed: $(t_stats)"
applied=$(metric "$PORT_INGEST" chatmem_ingest_events_applied_total)
[ "$applied" = 53 ] || t_fail "events_applied_total is $applied, expected 53 (1 + 12 + 40)"
[ "$(t_stats)" = "53 0 1" ] || t_fail "fleet counters: $(t_stats)"
metric_is "$PORT_INGEST" 'chatmem_ingest_dlq_events_total{reason="invalid_event"}' 1 ||
	t_fail "the bad event is not counted in dlq_events_total"
metric_over "$PORT_INGEST" chatmem_ingest_batch_seconds_count 0 ||
	t_fail "no batch time observed"
metric_over "$PORT_SUMM" chatmem_summarizer_folds_total 0 ||
	t_fail "the summarizer's folds_total did not move"
metric_over "$PORT_SUMM" chatmem_summarizer_messages_folded_total 0 ||
	t_fail "messages_folded_total did not move"

# The consumer lag per partition, from librdkafka's statistics: every
# event is consumed, so each partition of the events topic reports 0.
lag_caught_up() {
	curl -sf "http://127.0.0.1:$PORT_INGEST/metrics" |
		grep "^chatmem_ingest_consumer_lag_messages{topic=\"$T_EVENTS\"" >"$T_DIR/lag.txt"
	[ "$(wc -l <"$T_DIR/lag.txt")" = 4 ] &&
		[ "$(awk '$2 != 0' "$T_DIR/lag.txt" | wc -l)" = 0 ]
}
t_wait 30 lag_caught_up || t_fail "no consumer lag of 0 for the 4 partitions: $(cat "$T_DIR/lag.txt")"

# A context request moves the requests counter and the build histogram.
req0=$(metric "$PORT_CONTEXT" chatmem_context_requests_total)
[ "$req0" -ge 4 ] || t_fail "requests_total is $req0 after 4 marker requests"
"$BIN/chatmem" context u0-metrics c0 --json >"$T_DIR/reply.json" ||
	t_fail "no context reply"
t_wait 10 metric_is "$PORT_CONTEXT" chatmem_context_requests_total $((req0 + 1)) ||
	t_fail "requests_total did not move by one: $(metric "$PORT_CONTEXT" chatmem_context_requests_total)"
metric_over "$PORT_CONTEXT" chatmem_context_build_seconds_count 0 ||
	t_fail "no context build time observed"
metric_over "$PORT_CONTEXT" chatmem_context_tokens_saved_total -1 ||
	t_fail "no tokens_saved_total"
curl -sf "http://127.0.0.1:$PORT_CONTEXT/metrics" >"$T_DIR/context.metrics"
grep -q '^# TYPE chatmem_context_build_seconds histogram$' "$T_DIR/context.metrics" ||
	t_fail "build_seconds is not a histogram"
grep -q '^chatmem_context_build_seconds_bucket{le="+Inf"} ' "$T_DIR/context.metrics" ||
	t_fail "build_seconds has no +Inf bucket"

# Redis stopped: an event makes ingest meet the outage (it pauses), the
# context worker meets it on its next prebuilt pass; neither is ready.
t_stop_redis
printf '{"event_id":"outage-1","user_id":"m","role":"user","content":"during"}\n' |
	"$BIN/chatmem" send 2>>"$T_DIR/logs/send.log" || t_fail "send during the outage failed"
for p in $PORT_INGEST $PORT_CONTEXT; do
	t_wait 30 status_is "$p" /readyz 503 ||
		t_fail "port $p still ready with redis stopped"
	curl -s "http://127.0.0.1:$p/readyz" | grep -q redis ||
		t_fail "the 503 of port $p does not say redis: $(curl -s "http://127.0.0.1:$p/readyz")"
	status_is "$p" /healthz 200 || t_fail "port $p not alive during the outage"
done
metric_over "$PORT_INGEST" chatmem_ingest_redis_errors_total 0 ||
	t_fail "ingest's redis_errors_total did not move"

t_start_redis
for p in $PORT_INGEST $PORT_CONTEXT; do
	t_wait 30 status_is "$p" /readyz 200 ||
		t_fail "port $p not ready again after redis came back: $(curl -s "http://127.0.0.1:$p/readyz")"
done
t_wait 30 metric_is "$PORT_INGEST" chatmem_ingest_events_applied_total 54 ||
	t_fail "the event sent during the outage was not applied"
metric_over "$PORT_INGEST" chatmem_ingest_paused_seconds_total 0 ||
	t_fail "ingest's paused_seconds_total did not move"
# SIGTERM: each stops its HTTP server and exits 0.
for p in $PID_INGEST $PID_CONTEXT $PID_SUMM; do
	t_stop_pid "$p" 20
done
status_is "$PORT_INGEST" /healthz 000 || t_fail "/healthz still answers after the stop"
t_pass "metrics move with events and requests; /readyz 503 without redis, 200 after"
