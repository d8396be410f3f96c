#!/usr/bin/python3
"""Checks that Redis holds exactly the given events: for every session of
the input files (JSON lines, in produce order), the stored list holds each
of its message events once, in order, with sequence numbers 1..n.

usage: check_sessions.py --port PORT [--prefix P] FILE...
Prints "ok: S sessions, N messages" or every difference, and exits 1."""
import argparse
import collections
import json
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from resp import Redis  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--prefix", default="chatmem:")
ap.add_argument("files", nargs="+")
args = ap.parse_args()

want = collections.OrderedDict()
seen = set()
for path in args.files:
    with open(path, encoding="utf-8") as fp:
        for line in fp:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("type", "message") != "message" or "event_id" not in ev:
                continue
            if ev["event_id"] in seen:
                continue  # a repeated event_id must not be stored twice
            seen.add(ev["event_id"])
            key = "%s:%s" % (ev["user_id"], ev.get("conversation_id", "default"))
            want.setdefault(key, []).append(ev)

r = Redis(args.port)
problems, total = [], 0
for key, evs in want.items():
    raw = r.cmd("LRANGE", "%s{%s}:msgs" % (args.prefix, key), 0, -1)
    got = [json.loads(x) for x in raw]
    ids = [g.get("event_id") for g in got]
    exp = [e["event_id"] for e in evs]
    total += len(got)
    if ids != exp:
        lost = [x for x in exp if x not in ids]
        dup = [x for x, c in collections.Counter(ids).items() if c > 1]
        problems.append("%s: %d stored, %d expected, lost %d %s, "
                        "duplicated %d %s, order ok: %s"
                        % (key, len(ids), len(exp), len(lost), lost[:3],
                           len(dup), dup[:3],
                           [x for x in ids if x in exp] == exp))
        continue
    seqs = [g["seq"] for g in got]
    if seqs != list(range(1, len(got) + 1)):
        problems.append("%s: sequence numbers %s" % (key, seqs[:10]))
    for g, e in zip(got, evs):
        if g["content"] != e["content"] or g["role"] != e["role"]:
            problems.append("%s: %s stored differently" % (key, e["event_id"]))
            break
    meta = r.cmd("HMGET", "%s{%s}:meta" % (args.prefix, key), "total",
                 "last_seq")
    if [int(x or 0) for x in meta] != [len(got), len(got)]:
        problems.append("%s: meta total/last_seq %s for %d messages"
                        % (key, meta, len(got)))

if problems:
    for p in problems[:20]:
        print("MISMATCH " + p)
    print("%d of %d sessions differ" % (len(problems), len(want)))
    sys.exit(1)
print("ok: %d sessions, %d messages, each once and in order"
      % (len(want), total))
