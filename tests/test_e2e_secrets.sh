#!/bin/bash
# Secrets and message text stay out of the logs. The test plants an LLM API
# key (CHATMEM_LLM_API_KEY), a Redis password (an ACL user of its own,
# given in the Redis URL, while the default user is locked with another
# password), a SASL password in the Kafka pass-through
# (CHATMEM_KAFKA_PROP_SASL_PASSWORD), a password in the LLM URL and a
# marker text in message
# contents, a profile, queries and inline histories, valid and invalid.
# It runs a full scenario at log level info: events, folds through the LLM
# summarizer (tests/fake_llm.py), context requests, bad events and
# requests, Redis dropping the workers' connections (they reconnect and
# AUTH again), the CLI. Then it greps every log (workers, CLI, broker,
# Redis, fake LLM) and the CLI's own output for each secret and the
# marker: none may appear. It first checks that the scenario worked: the
# workers authenticated as the ACL user, the marker was stored, folded and
# answered, so that "not in the logs" is not "never handled".
. "$(dirname "$0")/lib.sh"

LLM_KEY=sk-llmsecret-$$-Zq81
REDIS_PASS=redispw-$$-Hk27
ADMIN_PASS=adminpw-$$-Tt55
SASL_PASS=saslpw-$$-Mm93
URL_PASS=urlpw-$$-Vb40
MARKER=Zanzibar-marker-$$-q7
export CHATMEM_LOG_LEVEL=info

t_start_redis
# The workers' own ACL user, limited to chatmem's keys; the default user
# (the test's redis-cli, through REDISCLI_AUTH) gets another password.
t_rcli acl setuser chatmem on ">$REDIS_PASS" '~chatmem:*' '+@all' >/dev/null ||
	t_fail "cannot create the ACL user"
t_rcli config set requirepass "$ADMIN_PASS" >/dev/null || t_fail "cannot set requirepass"
export REDISCLI_AUTH=$ADMIN_PASS
export CHATMEM_REDIS_URL=redis://chatmem:$REDIS_PASS@127.0.0.1:$T_REDIS_PORT/0
export CHATMEM_LLM_API_KEY=$LLM_KEY
# Set in the pass-through but not used by the (plaintext) devbroker.
export CHATMEM_KAFKA_PROP_SASL_USERNAME=chatmem CHATMEM_KAFKA_PROP_SASL_PASSWORD=$SASL_PASS
t_start_broker 4
t_start_fake_llm 20
t_start_worker ingest ingest
t_start_worker summarizer summarizer
t_start_worker context context
t_ingest_ready
t_summarizer_ready
t_context_ready
# The URL with the password: a wrong one is refused (the ACL user is
# real), and the right one is that of the workers.
CHATMEM_REDIS_URL=redis://chatmem:wrong-$REDIS_PASS@127.0.0.1:$T_REDIS_PORT/0 \
	"$BIN/chatmem" session show nobody >/dev/null 2>>"$T_DIR/logs/cli.log" &&
	t_fail "a wrong Redis password was accepted"
t_rcli client list | grep -q 'user=chatmem' || t_fail "no worker is connected as the ACL user"

# Events: the marker in message contents and a profile; the same in
# events that fail validation (bad role, truncated JSON, bad user id).
$PY - "$MARKER" >"$T_DIR/events.jsonl" <<'PYEOF'
import json, sys
m = sys.argv[1]
for s in range(4):
    for n in range(12):
        text = "Hi, I'm %s and message %d says %s again." % (m, n, m) if n % 3 == 0 \
            else "message %d of session %d" % (n, s)
        print(json.dumps({"event_id": "sec-%d-%d" % (s, n), "user_id": "sec%d" % s,
                          "conversation_id": "c", "role": "user" if n % 2 == 0 else "assistant",
                          "content": text}))
print(json.dumps({"type": "profile.set", "event_id": "sec-prof", "user_id": "sec0",
                  "profile": {"name": m, "interests": [m]}}))
PYEOF
"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>>"$T_DIR/logs/cli.log" || t_fail "send failed"
{
	printf 'sec9:c\t{"event_id":"bad1","user_id":"sec9","role":"robot","content":"%s"}\n' "$MARKER"
	printf 'sec9:c\t{"event_id":"bad2","user_id":"sec9","role":"user","content":"%s\n' "$MARKER"
	printf 'sec9:c\t{"event_id":"bad3","user_id":"%s/x","role":"user","content":"%s"}\n' "$MARKER" "$MARKER"
	printf 'sec9:c\t{"event_id":"bad4","user_id":"sec9","role":"user","content":"%s","ts":"soon"}\n' "$MARKER"
} | kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_EVENTS" -K $'\t' 2>>"$T_DIR/logs/kcat.log" ||
	t_fail "cannot produce the bad events"
# The markers, the summarizer's 12 and 49 events here, 4 of them dead.
t_wait 60 t_stats_reach 66 || t_fail "ingest did not take every event: $(t_stats)"
folded() { [ "$(t_rcli hget 'chatmem:{sec0:c}:summary' folded)" -gt 0 ] 2>/dev/null; }
t_wait 60 folded || t_fail "the LLM summarizer never folded session sec0:c"
t_rcli --scan --pattern 'chatmem:{sec0:c}:archive' | grep -q . ||
	t_fail "no archive for sec0:c after its fold"

# Context requests carrying the marker: query, inline history, scope
# user, and invalid ones (their error replies are logged at debug only).
"$BIN/chatmem" context sec0 c --query "Where is $MARKER?" --json \
	>"$T_DIR/reply.json" 2>>"$T_DIR/logs/cli.log" || t_fail "no context reply"
grep -q "$MARKER" "$T_DIR/reply.json" || t_fail "the reply does not hold the marker"
{
	printf 'sq1\t{"request_id":"sq1","user_id":"sec1","conversation_id":"c","query":"%s","scope":"user"}\n' "$MARKER"
	printf 'sq2\t{"request_id":"sq2","user_id":"sec2","history":[{"role":"user","content":"%s"}]}\n' "$MARKER"
	printf 'sq3\t{"request_id":"sq3","user_id":"sec2","query":"%s","max_tokens":"%s"}\n' "$MARKER" "$MARKER"
	printf 'sq4\t{"request_id":"sq4","user_id":"sec2","history":[{"role":"%s","content":"%s"}]}\n' "$MARKER" "$MARKER"
	printf 'sq5\t{"request_id":"sq5","user_id":"sec2","reply_to":"chat.events","query":"%s"}\n' "$MARKER"
	printf 'sq6\t{"request_id":"sq6","user_id":"sec2","query":"%s"\n' "$MARKER"
} | kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_REQUESTS" -K $'\t' 2>>"$T_DIR/logs/kcat.log" ||
	t_fail "cannot produce the requests"
replies() {
	[ "$(kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES" -e -q -f '%k\n' 2>/dev/null |
		grep -c '^sq[1-5]$')" -ge 5 ]
}
t_wait 30 replies || t_fail "the requests were not answered"

# Redis drops every connection of the ACL user: the workers reconnect and
# AUTH again (and say so in their logs).
t_rcli client kill user chatmem >/dev/null || t_fail "cannot kill the workers' connections"
printf '%s\n' "{\"event_id\":\"sec-after\",\"user_id\":\"sec3\",\"conversation_id\":\"c\",\"role\":\"user\",\"content\":\"after $MARKER\"}" |
	"$BIN/chatmem" send 2>>"$T_DIR/logs/cli.log" || t_fail "send failed"
t_wait 60 t_stats_reach 67 || t_fail "ingest did not reconnect"
# The first request after the drop may meet the dead connection (a
# degraded reply); the next ones reconnect.
context_back() {
	"$BIN/chatmem" context sec3 c --json --timeout 5000 >"$T_DIR/after.json" \
		2>>"$T_DIR/logs/cli.log" && grep -q '"degraded":false' "$T_DIR/after.json"
}
t_wait 30 context_back || t_fail "context did not reconnect"

# A summarizer given its credentials in the LLM URL's user info instead
# of a key (a gateway with basic auth) says it has no key, naming the URL.
(
	unset CHATMEM_LLM_API_KEY
	export CHATMEM_LLM_BASE_URL=http://gateway:$URL_PASS@${CHATMEM_LLM_BASE_URL#http://}
	export CHATMEM_SUMMARIZER_GROUP=${T_NS}secrets-nokey
	t_start_worker summarizer summarizer-nokey
	t_wait 30 grep -q 'is not set' "$T_DIR/logs/summarizer-nokey.log" ||
		t_fail "the summarizer without a key did not say so"
	t_stop_pid "$T_LAST_PID"
) || exit 1

# The CLI's own output (not replies, which hold the marker by design).
mkdir -p "$T_DIR/cli-out"
"$BIN/chatmem" stats --json >"$T_DIR/cli-out/stats.json" 2>>"$T_DIR/logs/cli.log" || t_fail "stats failed"
grep -q '"cache_enabled":true' "$T_DIR/cli-out/stats.json" || t_fail "stats did not reach redis"

for pid in $T_PIDS; do
	case $pid in "$T_BROKER_PID") continue ;; esac
	kill -TERM "$pid" 2>/dev/null || true
done
t_wait 30 sh -c "! grep -L 'stopping' '$T_DIR/logs/ingest.log' '$T_DIR/logs/summarizer.log' '$T_DIR/logs/context.log' | grep -q ." ||
	t_fail "a worker did not stop"
grep -q 'is not set' "$T_DIR/logs/summarizer.log" && t_fail "the summarizer did not read the API key"
grep -q 'redis://chatmem:\*\*\*@' "$T_DIR/logs/context.log" ||
	t_fail "the logs do not name the redis URL (redacted) at all"

# The verdict: no secret in any log or CLI output, no marker in any log.
leaks=""
for secret in "$LLM_KEY" "$REDIS_PASS" "$ADMIN_PASS" "$SASL_PASS" "$URL_PASS"; do
	found=$(grep -rlF -- "$secret" "$T_DIR/logs" "$T_DIR/cli-out" || true)
	[ -z "$found" ] || leaks="$leaks secret '$secret' in: $found;"
done
found=$(grep -rlF -- "$MARKER" "$T_DIR/logs" || true)
[ -z "$found" ] || leaks="$leaks marker in: $found;"
[ -z "$leaks" ] || t_fail "$leaks"
t_log "$(cat "$T_DIR"/logs/*.log | wc -l) log lines checked"
t_pass "no LLM key, Redis or SASL password, nor message text in any log at info level"
