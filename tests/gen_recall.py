#!/usr/bin/python3
"""Prints a long synthetic conversation as chat events (JSON lines) for the
recall test: TURNS turns (default 700) alternating user/assistant, one day
of ts every 20 turns, about everyday topics. Turn 5 (a user message) states
a fact found nowhere else: the sister Priya moved to Lisbon in 2019 and
opened a bakery called Pastel Azul. Later turns are decoys that share some
of its words (sister, bakery, moved, Lisbon), never all of them.

usage: gen_recall.py USER CONV [TURNS] [TAG]"""
import json
import random
import sys

user, conv = sys.argv[1], sys.argv[2]
turns = int(sys.argv[3]) if len(sys.argv) > 3 else 700
tag = sys.argv[4] if len(sys.argv) > 4 else "r"
FACT = ("By the way, my sister Priya moved to Lisbon in 2019 and opened "
        "a bakery there called Pastel Azul.")
rnd = random.Random(7)
things = ["the garden", "my bike", "the new job", "our trip to the coast",
          "the book club", "a pottery class", "the marathon training",
          "my neighbour's dog", "the kitchen renovation", "a chess game",
          "the photography course", "the hiking trail", "our band practice",
          "the science fair", "a jazz concert", "the camping weekend"]
feelings = ["went really well", "was harder than I thought",
            "made me laugh all day", "took most of the afternoon",
            "is going better every week", "needs more practice"]
decoys = ["My sister called me about the weekend plans.",
          "The bakery near my office was closed again today.",
          "A friend of mine moved to a new flat last month.",
          "I saw a documentary about Lisbon trams yesterday.",
          "My sister loves long walks on the beach.",
          "We bought bread at the bakery on the corner."]
lines = [("user", "Hi! I've been meaning to catch up with you."),
         ("assistant", "Great to hear from you! What's new?"),
         ("user", "Lots of small things, work has been busy."),
         ("assistant", "Busy weeks can be tiring. Anything fun lately?"),
         ("user", FACT),
         ("assistant", "That sounds like a big adventure for her!")]
while len(lines) < turns:
    if len(lines) % 2 == 0:
        if rnd.random() < 0.08:
            text = rnd.choice(decoys)
        else:
            text = "Today %s %s, and I keep thinking about %s." % (
                rnd.choice(things), rnd.choice(feelings), rnd.choice(things))
        lines.append(("user", text))
    else:
        lines.append(("assistant", "Nice! How did %s compare to %s?" % (
            rnd.choice(things), rnd.choice(things))))
base = 1683504000000  # 2023-05-08 00:00 UTC
for i, (role, text) in enumerate(lines[:turns]):
    print(json.dumps({"type": "message", "event_id": "%s-%d" % (tag, i),
                      "user_id": user, "conversation_id": conv,
                      "role": role, "content": text,
                      "ts": base + (i // 20) * 86400000 + i * 1000}))
