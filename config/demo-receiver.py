#!/usr/bin/env python3
"""make run's demo web hook (config/demo.sh): prints every alert that
parkpulse-notify delivers to it, then answers 200.
usage: demo-receiver.py PORT"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hook(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            a = json.loads(body)
            line = "#%s %s %s %s %s → %s: %s" % (a.get("seq"), a.get("park_name"), a.get("label"),
                                                 a.get("period"), a.get("previous"), a.get("status"),
                                                 a.get("message"))
        except ValueError:
            line = body.decode("utf-8", "replace")
        print("demo receiver: " + line, flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
