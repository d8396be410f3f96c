#!/bin/bash
# Recall from the archive: a 700-turn session is folded many times (its
# old messages move to the archive); a query about the fact stated at turn
# 5 brings that turn back, dated, exactly once, inside the budget, at 2000
# and at 300 tokens. Every event is in the list plus the archive exactly
# once. A second conversation of the same user recalls the fact only with
# scope "user". Without a query, the newest user message is the query
# (recall.implicit).
. "$(dirname "$0")/lib.sh"

FACT='By the way, my sister Priya moved to Lisbon in 2019 and opened a bakery there called Pastel Azul.'
Q='Where did my sister Priya move, and what is her bakery called?'

t_start_redis
t_start_broker 4
t_start_worker ingest ingest
t_start_worker summarizer summarizer
t_start_worker context context
$PY "$T_SRC/tests/gen_recall.py" rita main 700 r >"$T_DIR/main.jsonl"
$PY "$T_SRC/tests/gen_recall.py" rita other 4 o | sed 's/Priya moved to Lisbon in 2019 and opened a bakery there called Pastel Azul/has a cat/' >"$T_DIR/other.jsonl"
"$BIN/chatmem" send <"$T_DIR/main.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
"$BIN/chatmem" send <"$T_DIR/other.jsonl" 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 60 sh -c "[ \"\$(redis-cli -p $T_REDIS_PORT hget 'chatmem:{rita:main}:meta' total)\" = 700 ]" || t_fail "events did not arrive"
settled() { [ -z "$(t_rcli hget 'chatmem:{rita:main}:meta' cjob)" ] && [ "$(t_rcli llen 'chatmem:{rita:main}:msgs')" -le 8 ]; }
t_wait 60 settled || t_fail "the session was not compacted: $(t_rcli llen 'chatmem:{rita:main}:msgs') messages"
t_folds rita:main "$T_DIR/main.jsonl" --min-folded 690 || t_fail "compaction lost or duplicated messages"

ask() { # OUT ARGS...: a context request, its reply as JSON in OUT
	_out=$1
	shift
	"$BIN/chatmem" context "$@" --json >"$T_DIR/$_out" || t_fail "no reply to $*"
	$PY "$T_SRC/tests/validate_schema.py" "$T_SRC/schemas/context-reply.schema.json" "$T_DIR/$_out" || t_fail "reply to $* does not validate"
}
ask q2000.json rita main --query "$Q" --max-tokens 2000
ask q300.json rita main --query "$Q" --max-tokens 300
ask user.json rita other --query "$Q" --scope user
ask session.json rita other --query "$Q"
echo '{"event_id": "r-last", "user_id": "rita", "conversation_id": "main", "role": "user", "content": "Remind me: where did my sister Priya open her bakery?"}' |
	"$BIN/chatmem" send 2>>"$T_DIR/logs/send.log" || t_fail "send failed"
t_wait 30 sh -c "[ \"\$(redis-cli -p $T_REDIS_PORT hget 'chatmem:{rita:main}:meta' total)\" = 701 ]" || t_fail "the last event did not arrive"
ask implicit.json rita main

$PY - "$T_DIR" "$FACT" <<'PYEOF' || t_fail "recall is wrong"
import json, sys
d, fact = sys.argv[1], sys.argv[2]

def section(ctx):
    """The Relevant Earlier Messages section, its dates resolved: each
    line gets the date of the run it belongs to."""
    if "Relevant Earlier Messages:\n" not in ctx:
        return []
    body = ctx.split("Relevant Earlier Messages:\n", 1)[1].split("\n\n", 1)[0]
    lines, date = [], None
    for l in body.split("\n"):
        if l.startswith("["):
            date, l = l[1:11], l[13:]
        lines.append((date, l))
    return lines

def check(name, budget, want):
    r = json.load(open("%s/%s" % (d, name)))
    ctx, m = r["context"], r["metadata"]
    assert m["tokens"] <= budget, (name, m["tokens"], budget)
    sec = section(ctx)
    n = sec.count(("2023-05-08", "User: " + fact))
    if want:
        assert n == 1, (name, n, ctx)
        assert m["recalled"] == len(sec) >= 1, (name, m, sec)
        # chronological
        dates = [x[0] for x in sec if x[0]]
        assert dates == sorted(dates), (name, dates)
    else:
        assert fact not in ctx, (name, ctx)
    print("%s: %d tokens, %d recalled in %d us" % (name, m["tokens"], m["recalled"], m["recall_us"]))

check("q2000.json", 2000, True)
check("q300.json", 300, True)
check("user.json", 2000, True)
check("session.json", 2000, False)
check("implicit.json", 2000, True)
PYEOF
t_pass "a fact of turn 5 of 700, folded into the archive, recalled once inside the budget; scope user; implicit query"
