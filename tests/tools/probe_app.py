#!/usr/bin/env python3
"""An app for probe tests: serves HTTP on 127.0.0.1:PORT.

  GET /ok      200
  GET /fail    500
  GET /gate    waits until the file GATE exists, then 200 (a probe that
               is still running while the test looks elsewhere)
Each request's path is appended to LOG, one per line."""
import http.server
import os
import sys
import time

port, log, gate = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log, "a") as f:
            f.write(self.path + "\n")
        if self.path.startswith("/gate"):
            while not os.path.exists(gate):
                time.sleep(0.05)
        code = 500 if self.path.startswith("/fail") else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
