#!/usr/bin/python3
"""A stand-in OpenAI-compatible /v1/chat/completions endpoint for the
integration tests: answers every request after SLEEP_MS with a summary that
names how many lines it was given. Writes its port to PORT_FILE.

usage: fake_llm.py PORT_FILE [SLEEP_MS]"""
import http.server
import json
import sys
import threading
import time

port_file = sys.argv[1]
sleep_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 300
count = 0
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        req = json.loads(body)
        prompt = req["messages"][-1]["content"]
        lines = [l for l in prompt.splitlines()
                 if l.startswith("User:") or l.startswith("Assistant:")]
        time.sleep(sleep_ms / 1000.0)
        with lock:
            count += 1
            n = count
        out = {"choices": [{"index": 0, "message": {
            "role": "assistant",
            "content": "Summary %d: the conversation went on over %d more "
                       "lines." % (n, len(lines))}}]}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as fp:
    fp.write(str(srv.server_address[1]))
__import__("os").rename(port_file + ".tmp", port_file)
srv.serve_forever()
