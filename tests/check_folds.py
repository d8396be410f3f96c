#!/usr/bin/python3
"""Checks a compacted session: every produced event is either folded into
the summary (counted) or still in the list, exactly once and in order.

usage: check_folds.py --port PORT SESSION EVENTS_JSONL
Prints the counts; exits 1 on any loss or duplicate."""
import argparse
import json
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from resp import Redis  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--prefix", default="chatmem:")
ap.add_argument("--min-folded", type=int, default=1)
ap.add_argument("session")
ap.add_argument("events")
a = ap.parse_args()

want = []
for line in open(a.events, encoding="utf-8"):
    if line.strip():
        ev = json.loads(line)
        if ev["event_id"] not in want:
            want.append(ev["event_id"])
r = Redis(a.port)
tag = "%s{%s}" % (a.prefix, a.session)
summ = r.cmd("HMGET", tag + ":summary", "text", "upto", "folded")
folded = int(summ[2] or 0)
upto = int(summ[1] or 0)
meta = r.cmd("HMGET", tag + ":meta", "total", "last_seq")
total, last_seq = int(meta[0] or 0), int(meta[1] or 0)
stored = [json.loads(x) for x in r.cmd("LRANGE", tag + ":msgs", 0, -1)]
ids = [m["event_id"] for m in stored]
seqs = [m["seq"] for m in stored]
problems = []
if folded + len(stored) != len(want):
    problems.append("folded %d + stored %d != produced %d"
                    % (folded, len(stored), len(want)))
if ids != want[folded:]:
    problems.append("the list is not exactly the unfolded tail of the "
                    "stream (first stored %s, expected %s)"
                    % (ids[:1], want[folded:folded + 1]))
if seqs != list(range(upto + 1, upto + 1 + len(stored))):
    problems.append("seqs %s.. do not follow the cursor %d" % (seqs[:3], upto))
if total != len(want) or last_seq != len(want):
    problems.append("meta total/last_seq %d/%d" % (total, last_seq))
if folded < a.min_folded:
    problems.append("only %d folded" % folded)
text = (summ[0] or b"").decode()
if folded and not text:
    problems.append("folded messages but the summary is empty")
print("%s: %d produced, %d folded (cursor %d), %d in the list; summary %d "
      "bytes" % (a.session, len(want), folded, upto, len(stored), len(text)))
for p in problems:
    print("PROBLEM " + p)
sys.exit(1 if problems else 0)
