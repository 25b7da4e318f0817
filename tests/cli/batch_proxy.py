#!/usr/bin/env python3
"""A partner's node seen through a faulty link, for tests/cli/federation_test.sh.

Listens on a free loopback port with the partner's node certificate (TLS 1.3, client certificates
from the CA required), writes that port to PORT_FILE, and forwards each request to the partner
(whose port is in UPSTREAM_PORT_FILE) with the calling node's certificate. The answer to the first
POST /v1/federation/batches is spoiled as MODE says; everything else passes unchanged:

  fail-second  the second line becomes a 500 and the later ones 503 "not applied", as a partner
               that could not apply the second envelope would answer (though this one did);
  short        the last line is dropped;
  long         a megabyte of empty lines follows the answers.

In MODE slow, no batch is spoiled: the proxy is a partner that takes no batches (404) and takes
half a second over each envelope. In MODE other-root, no batch is spoiled either: the first
answer to POST /v1/log/consistency names another root, as proofs to another tree would.

In MODE forged-receipt, the first answer to a batch or an envelope says, in place of its first
receipt, that its format is a line break and then a line of the proxy's own.

In MODE no-checkpoint, nothing is spoiled: every GET /v1/log/checkpoint is answered 503, as a
partner that takes envelopes but withholds its checkpoints would answer.

In MODE witness, nothing is spoiled: the shell command in $PROXY_HOOK runs once, before the first
GET /v1/log/consistency goes on (another witness of the caller's home cosigning meanwhile), and
the file named by $PROXY_CHECKPOINT, if set, answers the first GET /v1/log/checkpoint (a
checkpoint older than the partner's latest).

Usage: batch_proxy.py PKI_DIR PARTNER CALLER UPSTREAM_PORT_FILE PORT_FILE MODE
"""
import http.client
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import time

pki, partner, caller, upstream_port_file, port_file, mode = sys.argv[1:7]
spoiled = threading.Event()
checkpoint_served = threading.Event()


def spoil(body: bytes) -> bytes:
    lines = body.decode().split("\n")[:-1]
    if mode == "short":
        lines = lines[:-1]
    elif mode == "long":
        # The answers, then a megabyte of empty lines: more answers than envelopes, which the
        # node must see without splitting the whole body first.
        return body + b"\n" * (1 << 20)
    elif mode == "fail-second":
        error = {"code": "internal", "message": "injected by the test proxy"}
        lines[1] = json.dumps({"status": 500, "error": error}, separators=(",", ":"))
        for i in range(2, len(lines)):
            later = {"code": "unavailable", "message": "not applied (test proxy)"}
            lines[i] = json.dumps({"status": 503, "error": later}, separators=(",", ":"))
    return "".join(line + "\n" for line in lines).encode()


class Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.forward()

    def do_POST(self):
        self.forward()

    def forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if mode == "slow" and self.command == "POST":
            if self.path == "/v1/federation/batches":
                self.answer(404, b'{"error":{"code":"not-found","message":"no batches here"}}')
                return
            time.sleep(0.5)
        if mode == "no-checkpoint" and self.command == "GET" and self.path == "/v1/log/checkpoint":
            self.answer(503, b'{"error":{"code":"unavailable","message":"withheld by the test proxy"}}')
            return
        if mode == "witness" and self.command == "GET":
            if (self.path == "/v1/log/checkpoint" and os.environ.get("PROXY_CHECKPOINT")
                    and not checkpoint_served.is_set()):
                checkpoint_served.set()
                with open(os.environ["PROXY_CHECKPOINT"], "rb") as f:
                    self.answer(200, f.read(), "text/plain; charset=utf-8")
                print("batch_proxy: served an older checkpoint", file=sys.stderr, flush=True)
                return
            if self.path.startswith("/v1/log/consistency?") and not spoiled.is_set():
                spoiled.set()
                hook = subprocess.run(os.environ["PROXY_HOOK"], shell=True)
                print(f"batch_proxy: ran the hook before {self.path}: exit {hook.returncode}",
                      file=sys.stderr, flush=True)
        with open(upstream_port_file) as f:
            port = int(f.read())
        upstream = http.client.HTTPSConnection("127.0.0.1", port, context=client_tls, timeout=10)
        headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
        upstream.request(self.command, self.path, body, headers)
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        if (mode in ("fail-second", "short", "long") and self.path == "/v1/federation/batches"
                and answer.status == 200 and not spoiled.is_set()):
            spoiled.set()
            data = spoil(data)
            print(f"batch_proxy: spoiled a batch answer ({mode})", file=sys.stderr, flush=True)
        if (mode == "forged-receipt" and self.path.startswith("/v1/federation/")
                and answer.status == 200 and not spoiled.is_set()):
            spoiled.set()
            forged = json.dumps({"format": "x\nWITNESS: forged by the proxy", "kind": "receipt"})
            lines = data.decode().split("\n")
            lines[0] = forged
            data = "\n".join(lines).encode()
            print("batch_proxy: forged a receipt", file=sys.stderr, flush=True)
        if (mode == "other-root" and self.command == "POST" and self.path == "/v1/log/consistency"
                and answer.status == 200 and not spoiled.is_set()):
            spoiled.set()
            proofs = json.loads(data)
            proofs["root"] = "00" * 32
            data = json.dumps(proofs, separators=(",", ":")).encode()
            print("batch_proxy: spoiled a consistency answer", file=sys.stderr, flush=True)
        self.answer(answer.status, data, answer.getheader("Content-Type", "application/json"))

    def answer(self, status, data, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


client_tls = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=f"{pki}/ca.pem")
client_tls.check_hostname = False  # the upstream's name is checked by the node that calls us
client_tls.load_cert_chain(f"{pki}/nodes/{caller}.pem", f"{pki}/nodes/{caller}.key")
server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_tls.minimum_version = ssl.TLSVersion.TLSv1_3
server_tls.verify_mode = ssl.CERT_REQUIRED
server_tls.load_verify_locations(f"{pki}/ca.pem")
server_tls.load_cert_chain(f"{pki}/nodes/{partner}.pem", f"{pki}/nodes/{partner}.key")

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
server.socket = server_tls.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(port_file + ".tmp", port_file)
server.serve_forever()
