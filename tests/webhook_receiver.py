#!/usr/bin/env python3
"""A webhook receiver for Roster's delivery tests (tests/api/webhooks.rs), standard library only.

Listens on 127.0.0.1 (--port, 0: any free port) and prints "listening PORT". Each POST to any
path other than /_config is verified the Standard Webhooks way against the configured secrets
and recorded as one JSON line in --log: the webhook-id, the body (a list of its lines for
JSON Lines, as archive exports are sent), whether a signature verified,
how many signatures came, and what the receiver answered. The test steers it with
POST /_config {"secrets": ["whsec_..."], "mode": "ok" | "fail" | "slow" | "reset" | "redirect",
"delay_ms": N, "redirect_to": URL}:
  ok        answers 204 (after delay_ms, 0 by default);
  fail      answers 500;
  slow      waits delay_ms before answering 200 (tests set it past Roster's timeout);
  reset     closes the connection with a TCP reset, answering nothing;
  redirect  answers 307 to redirect_to.
"Down" is the test stopping the process and starting it again on the same port.
"""

import argparse
import base64
import hashlib
import hmac
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
CONFIG = {"secrets": [], "mode": "ok", "delay_ms": 0, "redirect_to": ""}


def verified(secrets, msg_id, timestamp, body, header):
    signed = f"{msg_id}.{timestamp}.".encode() + body
    given = [part.split(",", 1)[1] for part in header.split(" ") if part.startswith("v1,")]
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        if any(hmac.compare_digest(expected, g) for g in given):
            return True, len(given)
    return False, len(given)


def parse(body, content_type):
    """An event's JSON; an archive export's JSON Lines (application/x-ndjson) as a list."""
    if content_type.startswith("application/x-ndjson"):
        return [json.loads(line) for line in body.decode().splitlines() if line]
    return json.loads(body or b"null")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/_config":
            with LOCK:
                CONFIG.update(json.loads(body))
            return self.answer(204)
        with LOCK:
            config = dict(CONFIG)
        msg_id = self.headers.get("webhook-id", "")
        timestamp = self.headers.get("webhook-timestamp", "")
        valid, signatures = verified(
            config["secrets"], msg_id, timestamp, body, self.headers.get("webhook-signature", "")
        )
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
        mode = config["mode"]
        record = {
            "id": msg_id,
            "valid": valid and fresh,
            "signatures": signatures,
            "body": parse(body, self.headers.get("content-type", "")),
            "mode": mode,
            "at_ms": int(time.time() * 1000),
        }
        if mode == "reset":
            self.log(record)
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if mode in ("ok", "slow") and config["delay_ms"]:
            time.sleep(config["delay_ms"] / 1000)
        self.log(record)
        if mode == "ok":
            self.answer(204)
        elif mode == "slow":
            self.answer(200)
        elif mode == "redirect":
            self.answer(307, [("location", config["redirect_to"])])
        else:
            self.answer(500)

    def log(self, record):
        with LOCK:
            with open(ARGS.log, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    ARGS = parser.parse_args()
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
