#!/usr/bin/python3
"""Checks a compacted session: every produced event is exactly once either
in the session's archive (where folds move what they fold) or in its list,
in order, and the summary counted every folded one.

The archive is read with `chatmem session archive` (it is compressed: the
CLI decodes it), which prints one JSON line per archived message; it keeps
no event_id, so an archived message is matched to its event by seq (the
n-th event of the stream is seq n) and by its content and role.

usage: check_folds.py --port PORT --chatmem BIN/chatmem SESSION EVENTS_JSONL
(the CLI reaches Redis through CHATMEM_REDIS_URL). Prints the counts; exits
1 on any loss or duplicate."""
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
ap.add_argument("--min-folded", type=int, default=1)
ap.add_argument("session")
ap.add_argument("events")
a = ap.parse_args()

want = []  # the distinct events, in stream order
seen = set()
for line in open(a.events, encoding="utf-8"):
    if line.strip():
        ev = json.loads(line)
        if ev["event_id"] not in seen:
            seen.add(ev["event_id"])
            want.append(ev)
r = Redis(a.port)
tag = "%s{%s}" % (a.prefix, a.session)
summ = r.cmd("HMGET", tag + ":summary", "text", "upto", "folded")
folded = int(summ[2] or 0)
upto = int(summ[1] or 0)
meta = r.cmd("HMGET", tag + ":meta", "total", "last_seq")
total, last_seq = int(meta[0] or 0), int(meta[1] or 0)
stored = [json.loads(x) for x in r.cmd("LRANGE", tag + ":msgs", 0, -1)]
user, conv = a.session.split(":", 1)
out = subprocess.run([a.chatmem, "session", "archive", user, conv],
                     capture_output=True, text=True)
if out.returncode != 0:
    print("PROBLEM chatmem session archive failed: %s" % out.stderr.strip())
    sys.exit(1)
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
    problems.append("archive seqs are not 1..%d: %s" % (n, aseqs[:5] + ["..."] + aseqs[-5:]))
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
    problems.append("seqs %s.. do not follow the cursor %d" % (seqs[:3], upto))
if n != folded or upto != n:
    problems.append("archived %d, but the summary counts %d folded up to "
                    "seq %d" % (n, folded, upto))
if total != len(want) or last_seq != len(want):
    problems.append("meta total/last_seq %d/%d" % (total, last_seq))
if folded < a.min_folded:
    problems.append("only %d folded" % folded)
text = (summ[0] or b"").decode()
if folded and not text:
    problems.append("folded messages but the summary is empty")
print("%s: %d produced, %d folded (cursor %d) and archived, %d in the list; "
      "summary %d bytes" % (a.session, len(want), folded, upto, len(stored),
                            len(text)))
for p in problems:
    print("PROBLEM " + p)
sys.exit(1 if problems else 0)
