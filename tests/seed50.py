#!/usr/bin/python3
"""Prints a 50-message conversation in the seed's style as chat events
(JSON lines): it opens with "Hi, I'm Sumit Pandya, full stack developer",
goes through JavaScript questions with long assistant answers, and ends
with "Do you remember my name?"."""
import json
import sys

user = sys.argv[1] if len(sys.argv) > 1 else "sumit"
topics = [
    ("async/await in JavaScript", "an async function returns a Promise and await pauses it until the Promise settles"),
    ("the event loop", "the call stack runs to completion, then microtasks such as resolved Promises, then the next macrotask such as a timer"),
    ("closures", "a function keeps access to the variables of the scope it was created in, even after that scope has returned"),
    ("React hooks", "useState keeps state between renders and useEffect runs side effects after the render is committed"),
    ("Node.js streams", "a readable stream emits chunks, a writable stream accepts them, and pipe() handles backpressure between them"),
    ("TypeScript generics", "a generic type parameter lets one function keep the type of its argument in its return type"),
    ("Express middleware", "each middleware gets req, res and next, and calls next() to pass control to the following one"),
    ("PostgreSQL indexes", "a B-tree index speeds up equality and range lookups at the cost of slower writes"),
    ("Docker layers", "each instruction of a Dockerfile adds a layer, and unchanged layers are reused from the cache"),
    ("JWT authentication", "the server signs a token with the user's claims and checks the signature on every request"),
    ("WebSockets", "after an HTTP upgrade both sides can send frames at any time over the same TCP connection"),
    ("GraphQL resolvers", "each field of the schema has a resolver function that returns its value"),
]
lines = [("user", "Hi, I'm Sumit Pandya, full stack developer"),
         ("assistant", "Nice to meet you, Sumit! How can I help you today?")]
i = 0
while len(lines) < 48:
    t, fact = topics[i % len(topics)]
    i += 1
    lines.append(("user", "Can you explain %s? I use it at work on our React and Node.js app." % t))
    lines.append(("assistant",
                  "Sure. In short, %s. In practice this matters because it decides "
                  "how your code behaves under load, how errors surface and how "
                  "easy it is to test. A common mistake is to assume the simple "
                  "case always holds; measure it in your own app, add a small "
                  "test that shows the behaviour, and keep the example next to "
                  "the code so that the next person on the team sees why it was "
                  "written that way. If you tell me more about your setup, I can "
                  "suggest a concrete pattern for %s." % (fact, t)))
lines.append(("user", "Thanks, that was very helpful."))
lines.append(("user", "Do you remember my name?"))
for n, (role, content) in enumerate(lines[:50]):
    print(json.dumps({"event_id": "s50-%s-%02d" % (user, n), "user_id": user,
                      "conversation_id": "default", "role": role,
                      "content": content, "ts": 1732400000000 + n * 1000}))
