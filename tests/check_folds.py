#!/usr/bin/python3
"""Checks a compacted session: every produced event is exactly once either
in the session's archive (where folds move what they fold) or in its list,
in order, and the summary counted every folded one.

The archive is read with `chatmem session archive` (it is compressed: the
CLI decodes it), which prints one JSON line per archived message; it keeps
no event_id, so an archived message is matched to its event by seq (the
n-th event of the stream is seq n) and by its content and role.

usage: check_folds.py --port PORT --chatmem BIN/chatmem [SESSION] EVENTS_JSONL
(the CLI reaches Redis through CHATMEM_REDIS_URL). Without SESSION, every
session of EVENTS_JSONL is checked (and --min-folded defaults to 0). Prints
the counts; exits 1 on any loss or duplicate. With --totals it only
compares each session's count of messages ever appended with its events,
without reading archives: fast enough to wait on, before the whole check."""
import argparse
import json
import subprocess
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from resp import Redis  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--chatmem", required=True)
ap.add_argument("--prefix", default="chatmem:")
ap.add_argument("--min-folded", type=int, default=None)
ap.add_argument("--totals", action="store_true",
                help="only compare each session's message count with its "
                     "events (no archive read: fast, to wait on)")
ap.add_argument("args", nargs="+", metavar="[SESSION] EVENTS")
a = ap.parse_args()
if len(a.args) > 2:
    ap.error("expected [SESSION] EVENTS")
only = a.args[0] if len(a.args) == 2 else None
min_folded = a.min_folded if a.min_folded is not None else (1 if only else 0)

streams = {}  # session -> its distinct events, in stream order
seen = set()
for line in open(a.args[-1], encoding="utf-8"):
    if line.strip():
        ev = json.loads(line)
        key = "%s:%s" % (ev["user_id"], ev.get("conversation_id", "default"))
        if ev["event_id"] not in seen and (only is None or key == only):
            seen.add(ev["event_id"])
            streams.setdefault(key, []).append(ev)
if only and only not in streams:
    streams[only] = []
r = Redis(a.port)


def check_total(session, want):
    """Returns (None, problems): the session's count of messages ever
    appended against its events."""
    tag = "%s{%s}" % (a.prefix, session)
    total = int(r.cmd("HGET", tag + ":meta", "total") or 0)
    if total != len(want):
        return None, ["%d appended, %d produced" % (total, len(want))]
    return None, []


def check(session, want):
    """Returns (counts, problems) of one session against its events."""
    tag = "%s{%s}" % (a.prefix, session)
    user, conv = session.split(":", 1)
    # The summary, list and meta are read, then the archive (by the CLI),
    # then the summary's cursor again: a fold that committed in between
    # (the summarizer may still be at work) moved the cursor, and the
    # session is read again, so that one fold's state is checked.
    for _ in range(10):
        summ = r.cmd("HMGET", tag + ":summary", "text", "upto", "folded")
        folded = int(summ[2] or 0)
        upto = int(summ[1] or 0)
        meta = r.cmd("HMGET", tag + ":meta", "total", "last_seq")
        total, last_seq = int(meta[0] or 0), int(meta[1] or 0)
        stored = [json.loads(x)
                  for x in r.cmd("LRANGE", tag + ":msgs", 0, -1)]
        out = subprocess.run([a.chatmem, "session", "archive", user, conv],
                             capture_output=True, text=True)
        if out.returncode != 0:
            return None, ["chatmem session archive failed: %s"
                          % out.stderr.strip()]
        if int(r.cmd("HGET", tag + ":summary", "upto") or 0) == upto:
            break
    archived = [json.loads(x) for x in out.stdout.splitlines() if x.strip()]

    problems = []
    ids = [m["event_id"] for m in stored]
    seqs = [m["seq"] for m in stored]
    aseqs = [m["seq"] for m in archived]
    n = len(archived)
    if n + len(stored) != len(want):
        problems.append("archived %d + stored %d != produced %d"
                        % (n, len(stored), len(want)))
    if aseqs != list(range(1, n + 1)):
        problems.append("archive seqs are not 1..%d: %s"
                        % (n, aseqs[:5] + ["..."] + aseqs[-5:]))
    for m in archived:
        ev = want[m["seq"] - 1] if 0 < m["seq"] <= len(want) else None
        if not ev or m["content"] != ev["content"] or m["role"] != ev["role"]:
            problems.append("archived seq %d is not event %s" % (
                m["seq"], ev and ev["event_id"]))
            break
    if ids != [ev["event_id"] for ev in want[n:]]:
        problems.append("the list is not exactly the unarchived tail of the "
                        "stream (first stored %s, expected %s)"
                        % (ids[:1], [ev["event_id"] for ev in want[n:n + 1]]))
    if seqs != list(range(upto + 1, upto + 1 + len(stored))):
        problems.append("seqs %s.. do not follow the cursor %d"
                        % (seqs[:3], upto))
    if n != folded or upto != n:
        problems.append("archived %d, but the summary counts %d folded up to "
                        "seq %d" % (n, folded, upto))
    if total != len(want) or last_seq != len(want):
        problems.append("meta total/last_seq %d/%d" % (total, last_seq))
    if folded < min_folded:
        problems.append("only %d folded" % folded)
    text = (summ[0] or b"").decode()
    if folded and not text:
        problems.append("folded messages but the summary is empty")
    return (len(want), folded, upto, len(stored), len(text)), problems


bad = 0
totals = [0, 0, 0]  # produced, archived, in the lists
for session, want in streams.items():
    counts, problems = (check_total if a.totals else check)(session, want)
    if counts:
        totals[0] += counts[0]
        totals[1] += counts[1]
        totals[2] += counts[3]
    if only:
        if counts:
            print("%s: %d produced, %d folded (cursor %d) and archived, %d "
                  "in the list; summary %d bytes" % ((session,) + counts))
    for p in problems:
        if bad < 20:
            print("PROBLEM %s: %s" % (session, p))
    bad += bool(problems)
if a.totals:
    print("%d sessions: %d whose count of messages differs from their "
          "events" % (len(streams), bad))
elif not only:
    print("%d sessions: %d produced, %d folded and archived, %d in the lists;"
          " %d with problems" % (len(streams), totals[0], totals[1], totals[2],
                                 bad))
sys.exit(1 if bad else 0)
