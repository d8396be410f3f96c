#!/usr/bin/python3
"""A stand-in OpenAI-compatible /v1/chat/completions endpoint for the
integration tests: answers every request after SLEEP_MS with a summary that
names how many lines it was given. Writes its port to PORT_FILE.

The summary counts the folds it stands on: "Fold N" where N is one more
than the fold number of the current summary in the prompt (1 when it has
none). A fold whose summary was thrown away (it raced an append) leaves no
trace, so the summary stored at the end tells how many folds were
committed one after the other.

Each request is recorded, as it arrives and before the wait, as one line
in PORT_FILE.requests: a test knows from it that a summarizer is inside
its LLM call.

For the soak, FAKE_LLM_FAIL_PCT (percent of requests answered 500 at
once) and FAKE_LLM_HANG_PCT (percent held for FAKE_LLM_HANG_MS, default
30000, before an answer: longer than a client's time-out) make it
unreliable; the draw is seeded (FAKE_LLM_SEED, default 1), so a run is
repeatable.

Hostile answers, for a prompt that holds a marker (in the messages being
folded, or in the summary they fold into):
  HOSTILE-HUGE  a 200 with a 50 MB body, a summary of "x"s, streamed with
                no Content-Length (it ends when the connection closes);
  HOSTILE-HANG  a 200 whose body comes one byte every 200 ms and never
                ends: the connection is never closed by this side.
The client must give up on both (llm.c caps the body and bounds the time)
and fold with its extractive fallback.

usage: fake_llm.py PORT_FILE [SLEEP_MS]"""
import http.server
import json
import os
import random
import re
import sys
import threading
import time

port_file = sys.argv[1]
sleep_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 300
count = 0
received = 0
lock = threading.Lock()
fail_pct = float(os.environ.get("FAKE_LLM_FAIL_PCT", "0"))
hang_pct = float(os.environ.get("FAKE_LLM_HANG_PCT", "0"))
hang_ms = int(os.environ.get("FAKE_LLM_HANG_MS", "30000"))
draw = random.Random(int(os.environ.get("FAKE_LLM_SEED", "1")))


def fold_number(prompt):
    """The fold number of the prompt's current summary, 0 for none."""
    m = re.search(r"^Current summary:\n(?:Summary: )?Fold (\d+) ", prompt,
                  re.M)
    return int(m.group(1)) if m else 0


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        global count, received
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        req = json.loads(body)
        prompt = req["messages"][-1]["content"]
        lines = [l for l in prompt.splitlines()
                 if l.startswith("User:") or l.startswith("Assistant:")]
        with lock:
            received += 1
            with open(port_file + ".requests", "a") as fp:
                fp.write("request %d\n" % received)
            luck = draw.uniform(0, 100)
        if luck < fail_pct:
            self.send_error(500, "injected failure")
            return
        if luck < fail_pct + hang_pct:
            time.sleep(hang_ms / 1000.0)
        try:
            if "HOSTILE-HUGE" in prompt:
                return self.huge()
            if "HOSTILE-HANG" in prompt:
                return self.hang()
        except OSError:  # the client gave up: what it must do
            return
        time.sleep(sleep_ms / 1000.0)
        with lock:
            count += 1
            n = count
        out = {"choices": [{"index": 0, "message": {
            "role": "assistant",
            "content": "Fold %d (call %d): the conversation went on over %d "
                       "more lines." % (fold_number(prompt) + 1, n,
                                        len(lines))}}]}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


    def head_no_length(self):
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()

    def huge(self):
        self.head_no_length()
        self.wfile.write(b'{"choices":[{"index":0,"message":{"role":'
                         b'"assistant","content":"')
        chunk = b"x" * 65536
        for _ in range(50 * 1024 * 1024 // len(chunk)):
            self.wfile.write(chunk)
        self.wfile.write(b'"}}]}')

    def hang(self):
        self.head_no_length()
        self.wfile.write(b'{"choices":[')
        while True:
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(0.2)


http.server.ThreadingHTTPServer.daemon_threads = True
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as fp:
    fp.write(str(srv.server_address[1]))
__import__("os").rename(port_file + ".tmp", port_file)
srv.serve_forever()
