#!/usr/bin/python3
"""The soak's report and verdict on the context requests.

Reads the requests sent (soak_requests.py's list), the replies read back
(kcat lines "<ms timestamp>\\t<request_id>\\t<reply JSON>") and the fault
log ("<ms start>\\t<ms end>\\t<kind>\\t<what>"), and prints one screen:
requests answered, answered twice, degraded, latency overall and the worst
latency of the requests sent during each fault (from its start to
SETTLE_MS after its end). Appends the lines of --sessions (the session
check's output) and of --extra as they are.

Fails (exit 1) when a request is unanswered, or answered more than once
other than across a crash of a context worker: the first reply of a
request answered twice must come at most --crash-window ms before a
`kill -9` of a context worker (its offset was not committed yet).

usage: soak_report.py --sends F --replies F --faults F [--requests F]
                      [--sessions F] [--extra F] [--crash-window MS]"""
import argparse
import json
import statistics

SETTLE_MS = 5000

ap = argparse.ArgumentParser()
ap.add_argument("--sends", required=True)
ap.add_argument("--replies", required=True)
ap.add_argument("--faults", required=True)
ap.add_argument("--requests",
                help="the requests as read back from Kafka: lines "
                     "\"<ms timestamp>\\t<request JSON>\"; their timestamps "
                     "(set where they were produced) replace the send times")
ap.add_argument("--sessions")
ap.add_argument("--extra")
ap.add_argument("--crash-window", type=int, default=15000)
a = ap.parse_args()

sent = {}
for line in open(a.sends):
    rid, ms, _ = line.rstrip("\n").split("\t")
    sent[rid] = int(ms)
# The time a request was produced, by Kafka's timestamp: the load
# generator's own delay before it (kcat's reading of its input) is not
# chatmem's.
for line in open(a.requests) if a.requests else []:
    parts = line.rstrip("\n").split("\t", 1)
    try:
        rid = json.loads(parts[1])["request_id"]
    except (IndexError, ValueError, KeyError, TypeError):
        continue
    if rid in sent:
        sent[rid] = int(parts[0])
replies = {}  # request_id -> [(ms, degraded, error)]
bad_lines = 0
for line in open(a.replies, encoding="utf-8", errors="replace"):
    parts = line.rstrip("\n").split("\t", 2)
    if len(parts) != 3 or parts[1] not in sent:
        bad_lines += len(parts) == 3 and parts[1].startswith("soak-")
        continue
    try:
        rep = json.loads(parts[2])
    except ValueError:
        bad_lines += 1
        continue
    replies.setdefault(parts[1], []).append(
        (int(parts[0]), bool(rep.get("metadata", {}).get("degraded")),
         rep.get("error", {}).get("code") if "error" in rep else None))
faults = []
for line in open(a.faults):
    s, e, kind, what = line.rstrip("\n").split("\t", 3)
    faults.append((int(s), int(e), kind, what))
t0 = min([f[0] for f in faults] + list(sent.values()) or [0])
kills = [f[0] for f in faults if f[2] == "kill-context"]

unanswered = [r for r in sent if r not in replies]
twice = {r: v for r, v in replies.items() if len(v) > 1}
unexplained = [r for r, v in twice.items()
               if not any(0 <= k - v[0][0] <= a.crash_window for k in kills)]
errors = sum(1 for v in replies.values() if v[0][2])
degraded = sum(1 for v in replies.values() if v[0][1])
lat = {r: v[0][0] - sent[r] for r, v in replies.items()}
vals = sorted(lat.values())


def pct(v, p):
    return v[min(len(v) - 1, int(len(v) * p))] if v else 0


for path in (a.extra, a.sessions):
    if path:
        for line in open(path):
            print(line.rstrip("\n"))
print("context requests: %d sent at a steady rate, %d answered, %d "
      "unanswered" % (len(sent), len(replies), len(unanswered)))
print("  answered twice: %d (all across a context worker's kill -9: %s); "
      "error replies %d; degraded %d" % (len(twice),
                                         "yes" if not unexplained else "NO",
                                         errors, degraded))
if vals:
    print("  latency ms, request produced to reply produced: p50 %d, p99 %d, "
          "max %d" % (
        pct(vals, 0.50), pct(vals, 0.99), vals[-1]))
print("faults (s from the start; worst latency of the requests sent from "
      "the fault to %d s after it):" % (SETTLE_MS // 1000))
for s, e, kind, what in faults:
    during = [lat[r] for r, ms in sent.items()
              if s <= ms <= e + SETTLE_MS and r in lat]
    print("  %6.1f-%6.1f  %-44s %5d requests, worst %6d ms" % (
        (s - t0) / 1000, (e - t0) / 1000, what[:44], len(during),
        max(during) if during else 0))
problems = []
if unanswered:
    problems.append("%d requests unanswered, e.g. %s"
                    % (len(unanswered), unanswered[:5]))
if unexplained:
    problems.append("%d requests answered twice with no context worker "
                    "killed just after, e.g. %s"
                    % (len(unexplained), unexplained[:5]))
if bad_lines:
    problems.append("%d replies could not be read" % bad_lines)
for p in problems:
    print("PROBLEM " + p)
raise SystemExit(1 if problems else 0)
