#!/bin/bash
# make valgrind: every worker (ingest, summarizer with the LLM summarizer,
# context) and the chatmem CLI run under valgrind through a short scenario
# on the devbroker and a real redis-server, and the run fails on any leak
# (definitely or indirectly lost) or invalid access (read, write, free,
# uninitialised value) in any of them.
#
# The scenario: 400 events over 20 sessions (folds through the LLM
# summarizer and its fake endpoint, tests/fake_llm.py), bad events to the
# DLQ, context requests of every shape (query, inline history, scope
# user, unknown session, invalid ones), a Redis outage (kill -9: ingest
# and the summarizer pause, context answers degraded) and its end, then
# SIGTERM to every worker. Each program runs as
#   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
#            --error-exitcode=99 [--suppressions=tests/valgrind.supp]
# so a worker with an error exits 99 (its stop fails) and a CLI call with
# one fails the step. At the end every valgrind log is checked and a
# summary printed per program. Logs: tests/out/valgrind/vg/.
#
# Not part of `make test`: it takes a few minutes. The devbroker runs
# without valgrind (it is librdkafka's mock cluster, not ours to check).
. "$(dirname "$0")/lib.sh"

command -v valgrind >/dev/null || t_fail "valgrind is not installed (apt-get install valgrind)"

SUPP=$T_SRC/tests/valgrind.supp
VG_LOGS=$T_DIR/vg
REAL_BIN=$BIN
mkdir -p "$VG_LOGS" "$T_DIR/vgbin"
# Wrappers under vgbin/ stand for the programs: lib.sh's helpers start
# whatever $BIN holds.
for p in chatmem-ingest chatmem-summarizer chatmem-context chatmem; do
	cat >"$T_DIR/vgbin/$p" <<EOF
#!/bin/sh
exec valgrind --leak-check=full --show-leak-kinds=definite,indirect \\
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \\
	--num-callers=30 --suppressions="$SUPP" \\
	--log-file="$VG_LOGS/$p.%p.log" "$REAL_BIN/$p" "\$@"
EOF
	chmod +x "$T_DIR/vgbin/$p"
done
ln -s "$REAL_BIN/chatmem-devbroker" "$T_DIR/vgbin/chatmem-devbroker"
BIN=$T_DIR/vgbin

# vg_summary: one line per program from every valgrind log so far; fails
# when one has an error or a definite or indirect leak.
vg_summary() {
	$PY - "$VG_LOGS" <<'PYEOF'
import collections, glob, os, re, sys
per = collections.OrderedDict()
bad = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.log"))):
    prog = os.path.basename(path).rsplit(".", 2)[0]
    text = open(path, errors="replace").read()
    m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
    if not m:
        bad.append("%s: no ERROR SUMMARY (did it exit?)" % path)
        continue
    errors = int(m.group(1).replace(",", ""))
    lost = {}
    for kind in ("definitely", "indirectly", "possibly"):
        k = re.search(kind + r" lost: ([\d,]+) bytes", text)
        lost[kind] = int(k.group(1).replace(",", "")) if k else 0
    s = per.setdefault(prog, [0, 0, 0, 0, 0])
    s[0] += 1
    s[1] += errors
    s[2] += lost["definitely"]
    s[3] += lost["indirectly"]
    s[4] += lost["possibly"]
    if errors or lost["definitely"] or lost["indirectly"]:
        bad.append(path)
for prog, (runs, errors, d, i, p) in per.items():
    print("valgrind %-20s %2d run(s): %d errors, definitely lost %d B, "
          "indirectly lost %d B (possibly lost %d B, not counted)"
          % (prog, runs, errors, d, i, p))
for b in bad:
    print("valgrind: see %s" % b, file=sys.stderr)
sys.exit(1 if bad else 0)
PYEOF
}

# vg_cli_fail MSG: a CLI call failed (valgrind makes it exit 99 on an
# error of its own): the summary, then the failure.
vg_cli_fail() {
	vg_summary || true
	t_fail "$1"
}

# Under valgrind everything is some 20 times slower: a deadline that
# leaves the context worker time to read Redis, and prebuilt passes often
# enough to run during the scenario.
export CHATMEM_CONTEXT_DEADLINE_MS=2000 CHATMEM_CONTEXT_PREBUILT_INTERVAL_MS=200

t_start_redis
t_start_broker 4
t_start_fake_llm 50
t_start_worker ingest ingest
INGEST=$T_LAST_PID
t_start_worker summarizer summarizer
SUMMARIZER=$T_LAST_PID
t_start_worker context context
CONTEXT=$T_LAST_PID
t_log "workers started under valgrind"
for w in ingest summarizer context; do
	t_wait 120 grep -q "assigned" "$T_DIR/logs/$w.log" || t_fail "$w did not start"
done
t_ingest_ready
t_summarizer_ready
t_context_ready
t_log "workers ready"

# Events, with bad ones among them (the DLQ path).
$PY "$T_SRC/tests/gen_events.py" 20 400 vg >"$T_DIR/events.jsonl"
"$BIN/chatmem" send <"$T_DIR/events.jsonl" 2>>"$T_DIR/logs/send.log" ||
	vg_cli_fail "chatmem send failed"
{
	printf 'bad:1\tnot json\n'
	printf 'bad:2\t{"event_id":"b2","user_id":"bad user","role":"user","content":"x"}\n'
	printf 'bad:3\t{"event_id":"b3","user_id":"u1","role":"robot","content":"x"}\n'
} | kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_EVENTS" -K $'\t' || t_fail "kcat produce failed"
# 13 applied by the markers, then the 400.
t_wait 120 t_applied_reach 413 || t_fail "the events were not stored"
t_log "400 events stored"
folded() { [ "$(t_rcli hget 'chatmem:{u0-vg:c0}:summary' folded)" -gt 0 ] 2>/dev/null; }
t_wait 120 folded || t_fail "no fold of session u0-vg:c0"

# Context requests: through the CLI (each under valgrind), then a burst of
# every shape with kcat.
"$BIN/chatmem" context u0-vg c0 --query "what was message 3?" --json >"$T_DIR/q.json" ||
	vg_cli_fail "chatmem context failed"
printf '[{"role":"user","content":"hello there"},{"role":"assistant","content":"hi"}]' >"$T_DIR/history.json"
"$BIN/chatmem" context u1-vg c1 --history-file "$T_DIR/history.json" --json >"$T_DIR/h.json" ||
	vg_cli_fail "chatmem context --history-file failed"
"$BIN/chatmem" context u2-vg c2 --scope user --query "message 1" --json >"$T_DIR/s.json" ||
	vg_cli_fail "chatmem context --scope user failed"
"$BIN/chatmem" session show u3-vg c0 >"$T_DIR/show.txt" || vg_cli_fail "chatmem session show failed"
"$BIN/chatmem" session archive u0-vg c0 >"$T_DIR/archive.txt" || vg_cli_fail "chatmem session archive failed"
"$BIN/chatmem" stats >"$T_DIR/stats.txt" || vg_cli_fail "chatmem stats failed"

requests() {
	for i in $(seq 0 39); do
		s=$((i % 20))
		case $((i % 5)) in
		0) printf '%s-%d\t{"request_id":"%s-%d","user_id":"u%d-vg","conversation_id":"c%d","query":"message %d"}\n' "$1" "$i" "$1" "$i" "$s" $((s % 3)) "$i" ;;
		1) printf '%s-%d\t{"request_id":"%s-%d","user_id":"in%d","history":[{"role":"user","content":"inline %d"},{"role":"assistant","content":"ok"}]}\n' "$1" "$i" "$1" "$i" "$i" "$i" ;;
		2) printf '%s-%d\t{"request_id":"%s-%d","user_id":"u%d-vg","conversation_id":"c%d","scope":"user","max_tokens":120}\n' "$1" "$i" "$1" "$i" "$s" $((s % 3)) ;;
		3) printf '%s-%d\t{"request_id":"%s-%d","user_id":"nobody%d"}\n' "$1" "$i" "$1" "$i" "$i" ;;
		4) printf '%s-%d\t{"request_id":"%s-%d","user_id":"u1-vg","max_tokens":"lots"}\n' "$1" "$i" "$1" "$i" ;;
		esac
	done
	printf 'garbage\tnot json at all\n'
	printf '%s-x\t{"request_id":"%s-x","user_id":"u1-vg","reply_to":"chat.events"}\n' "$1" "$1"
}
answered() {
	[ "$(kcat -b "$CHATMEM_KAFKA_BROKERS" -C -t "$T_REPLIES" -e -q -f '%k\n' 2>/dev/null |
		grep -c "^$1-")" -ge 41 ]
}
requests up | kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_REQUESTS" -K $'\t' || t_fail "kcat produce failed"
t_wait 120 answered up || t_fail "the requests were not all answered"
t_log "context requests answered"

# A Redis outage: ingest and the summarizer pause, context answers
# degraded (the cache, inline history, empty), then all resume.
kill -KILL "$(cat "$T_DIR/redis.pid")"
$PY "$T_SRC/tests/gen_events.py" 20 100 vg2 >"$T_DIR/events2.jsonl"
"$BIN/chatmem" send <"$T_DIR/events2.jsonl" 2>>"$T_DIR/logs/send.log" ||
	vg_cli_fail "chatmem send failed during the outage"
requests down | kcat -b "$CHATMEM_KAFKA_BROKERS" -P -t "$T_REQUESTS" -K $'\t' || t_fail "kcat produce failed"
t_wait 120 answered down || t_fail "the requests were not all answered during the outage"
t_log "context requests answered during the redis outage"
t_start_redis
t_wait 120 t_applied_reach 513 ||
	t_fail "the events sent during the outage were not stored"
t_log "resumed after the outage"

# SIGTERM: each exits 0, or 99 when valgrind found an error in it.
failed=""
for pid in $CONTEXT $SUMMARIZER $INGEST; do
	kill -TERM "$pid"
	t_wait 120 t_pid_gone "$pid" || t_fail "pid $pid still running 120 s after SIGTERM"
	wait "$pid" || failed="$failed $pid:$?"
done
vg_summary || failed="$failed logs"
[ -z "$failed" ] || t_fail "valgrind found errors or leaks (pid:status$failed; logs in $VG_LOGS)"
t_pass "no leak, no invalid access in ingest, summarizer, context and the CLI"
