#!/usr/bin/env python3
"""A webhook receiver for tests/deploy/measure-agent.sh: answers every POST
with 204 and appends "<unix seconds, µs precision> <type> <alert id>" to a
file the moment the request has arrived, so a script can time alerts.
Standard library only. Usage: webhook-receiver.py PORT LOGFILE"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log_path = int(sys.argv[1]), sys.argv[2]
log = open(log_path, "a", buffering=1)


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        arrived = time.time()
        try:
            event = json.loads(body)
            line = f"{arrived:.6f} {event.get('type', '?')} {event.get('data', {}).get('id', '?')}"
        except ValueError:
            line = f"{arrived:.6f} unparsable -"
        log.write(line + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Hook).serve_forever()
