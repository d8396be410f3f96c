#!/usr/bin/python3
"""The soak's steady stream of context requests: RATE a second for
DURATION seconds, each for a session of EVENTS_JSONL chosen at random
(seeded), with a query drawn from one of that session's messages. They are
produced through kcat (one process for the whole run, so that librdkafka
rides out a broker restart), and each is listed in OUT as
"<request_id>\\t<ms sent>\\t<session>" once handed to kcat.

usage: soak_requests.py --brokers B --topic T --events EVENTS_JSONL
                        --rate R --duration S --out OUT [--seed N]"""
import argparse
import json
import random
import subprocess
import time

ap = argparse.ArgumentParser()
ap.add_argument("--brokers", required=True)
ap.add_argument("--topic", required=True)
ap.add_argument("--events", required=True)
ap.add_argument("--rate", type=float, required=True)
ap.add_argument("--duration", type=float, required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--seed", type=int, default=7)
a = ap.parse_args()

sessions = {}
for line in open(a.events, encoding="utf-8"):
    if line.strip():
        ev = json.loads(line)
        sessions.setdefault((ev["user_id"], ev["conversation_id"]),
                            []).append(ev["content"])
keys = sorted(sessions)
draw = random.Random(a.seed)
kcat = subprocess.Popen(
    ["kcat", "-b", a.brokers, "-P", "-E", "-t", a.topic, "-K", "\t",
     "-X", "message.timeout.ms=600000"],
    stdin=subprocess.PIPE, text=True)
start = time.monotonic()
n = 0
with open(a.out, "w") as out:
    while True:
        due = start + n / a.rate
        if due - start >= a.duration:
            break
        time.sleep(max(0.0, due - time.monotonic()))
        user, conv = draw.choice(keys)
        words = draw.choice(sessions[(user, conv)]).split(":")[0]
        rid = "soak-%d" % n
        req = {"request_id": rid, "user_id": user, "conversation_id": conv,
               "query": words, "max_tokens": 600}
        kcat.stdin.write("%s:%s\t%s\n" % (user, conv, json.dumps(req)))
        kcat.stdin.flush()
        out.write("%s\t%d\t%s:%s\n" % (rid, time.time() * 1000, user, conv))
        out.flush()
        n += 1
kcat.stdin.close()
if kcat.wait() != 0:
    raise SystemExit("kcat failed producing the requests")
print("sent %d requests" % n)
