#!/usr/bin/env python3
"""A stand-in for the Kubernetes API server, over HTTPS, for the CA's tests.

  fake_apiserver.py --cert C --key K --dir DIR [--token T] --port-file F

Serves what the Lanyard CA asks of an API server:
  GET   /openid/v1/jwks                                DIR/jwks.json, re-read
        each time (chunked, like the API server); 500 while DIR/fail exists
  PATCH /api/v1/namespaces/NS/configmaps/NAME          merge patch of .data
  POST  /api/v1/namespaces/NS/configmaps               create
  GET   /api/v1/namespaces?labelSelector=K=V            from DIR/namespaces.json
        ({"name": {"label": "value"}}), re-read each time
A ConfigMap's data lands in DIR/configmaps/NS/NAME/<key> (written whole,
then renamed), so a test reads what the CA published. Every request is
logged to DIR/requests.log: "METHOD PATH auth=ok|none|bad". With --token,
a request without "Authorization: Bearer <token>" gets 401.
"""

import argparse
import json
import os
import re
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CM = re.compile(r"^/api/v1/namespaces/([a-z0-9-]+)/configmaps(?:/([a-z0-9.-]+))?$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_request_line(self, auth):
        with open(os.path.join(ARGS.dir, "requests.log"), "a") as f:
            f.write("%s %s auth=%s\n" % (self.command, self.path, auth))

    def auth(self):
        got = self.headers.get("Authorization")
        if got is None:
            return "none"
        return "ok" if ARGS.token and got == "Bearer " + ARGS.token else "bad"

    def answer(self, status, obj, chunked=False):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 100):
                part = body[i:i + 100]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.close_connection = True

    def status(self, code, message):
        self.answer(code, {"kind": "Status", "apiVersion": "v1",
                           "status": "Failure", "message": message,
                           "code": code})

    def gate(self):
        auth = self.auth()
        self.log_request_line(auth)
        if ARGS.token and auth != "ok":
            self.status(401, "Unauthorized")
            return False
        return True

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"null")

    def namespaces(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        want = dict(kv.split("=", 1) for kv in
                    ",".join(query.get("labelSelector", [])).split(",") if kv)
        with open(os.path.join(ARGS.dir, "namespaces.json")) as f:
            namespaces = json.load(f)
        items = [{"metadata": {"name": name, "labels": labels}}
                 for name, labels in sorted(namespaces.items())
                 if all(labels.get(k) == v for k, v in want.items())]
        self.answer(200, {"kind": "NamespaceList", "apiVersion": "v1",
                          "items": items}, chunked=True)

    def do_GET(self):
        if not self.gate():
            return
        if self.path.startswith("/api/v1/namespaces?"):
            return self.namespaces()
        if self.path != "/openid/v1/jwks":
            return self.status(404, "not found")
        if os.path.exists(os.path.join(ARGS.dir, "fail")):
            return self.status(500, "internal error (test)")
        with open(os.path.join(ARGS.dir, "jwks.json")) as f:
            self.answer(200, json.load(f), chunked=True)

    def store(self, ns, name, data):
        d = os.path.join(ARGS.dir, "configmaps", ns, name)
        os.makedirs(d, exist_ok=True)
        for key, value in data.items():
            tmp = os.path.join(d, "." + key + ".tmp")
            with open(tmp, "w") as f:
                f.write(value)
            os.rename(tmp, os.path.join(d, key))

    def do_PATCH(self):
        if not self.gate():
            return
        m = CM.match(self.path)
        if not m or not m.group(2):
            return self.status(404, "not found")
        if self.headers.get("Content-Type") != "application/merge-patch+json":
            return self.status(415, "unsupported patch type")
        if not os.path.isdir(os.path.join(ARGS.dir, "configmaps", m.group(1), m.group(2))):
            return self.status(404, 'configmaps "%s" not found' % m.group(2))
        patch = self.body()
        self.store(m.group(1), m.group(2), patch.get("data", {}))
        self.answer(200, {"kind": "ConfigMap", "apiVersion": "v1",
                          "metadata": {"name": m.group(2), "namespace": m.group(1)}})

    def do_POST(self):
        if not self.gate():
            return
        m = CM.match(self.path)
        if not m or m.group(2):
            return self.status(404, "not found")
        obj = self.body()
        meta = obj.get("metadata", {})
        if obj.get("kind") != "ConfigMap" or meta.get("namespace") != m.group(1):
            return self.status(400, "bad ConfigMap")
        if os.path.isdir(os.path.join(ARGS.dir, "configmaps", m.group(1), meta["name"])):
            return self.status(409, "already exists")
        self.store(m.group(1), meta["name"], obj.get("data", {}))
        self.answer(201, obj)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--token")
    p.add_argument("--port-file", required=True)
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ARGS.cert, ARGS.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, ARGS.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
