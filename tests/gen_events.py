#!/usr/bin/python3
"""Writes chat events as JSON lines: EVENTS events spread round-robin over
SESSIONS sessions, so that each session's events are in a known order.

usage: gen_events.py SESSIONS EVENTS [TAG]
Event ids are "<TAG>-<session>-<n>", users "u<session>-<TAG>", content
says which message of which session it is (with some UTF-8 in it)."""
import json
import sys

sessions, events = int(sys.argv[1]), int(sys.argv[2])
tag = sys.argv[3] if len(sys.argv) > 3 else "t"
count = [0] * sessions
for i in range(events):
    s = i % sessions
    n = count[s]
    count[s] += 1
    ev = {
        "type": "message",
        "event_id": "%s-%d-%d" % (tag, s, n),
        "user_id": "u%d-%s" % (s, tag),
        "conversation_id": "c%d" % (s % 3),
        "role": "user" if n % 2 == 0 else "assistant",
        "content": "message %d of session %d: caf\u00e9 \u2014 ok" % (n, s),
        "ts": 1732400000000 + i,
    }
    print(json.dumps(ev, ensure_ascii=False))
