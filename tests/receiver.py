#!/usr/bin/env python3
"""A Mattermost incoming-webhook stand-in for runwarden's tests.

    receiver.py --port-file F [--log F.jsonl] [--port N]

Listens on 127.0.0.1 (port 0 = ephemeral) and writes the chosen port to the
port file atomically once it is listening. Every POST to a path other than
/_control is recorded as one JSON line in the log:

    {"path": ..., "body": <parsed JSON, else text>, "received_at": <epoch s>,
     "answer": <script entry used>, "content_type": ...}

How it answers is scripted through POST /_control with
{"script": ["500", "500", "ok"], "default": "ok", "reset": false}: each
webhook request pops the next entry, the default answers once the script is
empty ("reset": true also forgets the recorded requests). Entries:

    ok        200, body "ok" (what Mattermost answers on success)
    json      200 with a JSON body (Rocket.Chat, Zulip: Slack-compatible)
    204       204 No Content (Discord)
    400       400, Mattermost's JSON error for an unknown/invalid hook
    429:N     429 with Retry-After: N
    500       500 with a JSON error (any other 3-digit code works the same)
    slow:S    sleep S seconds, then answer ok
    drop      close the connection without answering

GET /_control/requests returns the recorded list, GET /_control/count their
number, GET /_control/script what is left of the script. Standard library
only; quiet; exits 0 on SIGTERM or SIGINT.
"""

import argparse
import collections
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MATTERMOST_400 = {
    "id": "web.incoming_webhook.invalid.app_error",
    "message": "Invalid webhook",
    "detailed_error": "",
    "request_id": "testrequestid",
    "status_code": 400,
}


class State:
    """The script queue and the record of requests, shared by all threads."""

    def __init__(self, log_path):
        self.lock = threading.Lock()
        self.script = collections.deque()
        self.default = "ok"
        self.records = []
        self.log_path = log_path
        if log_path:
            # Truncate: one receiver, one log.
            with open(log_path, "w", encoding="utf-8"):
                pass

    def next_answer(self):
        with self.lock:
            return self.script.popleft() if self.script else self.default

    def record(self, rec):
        line = json.dumps(rec, sort_keys=True)
        with self.lock:
            self.records.append(rec)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
                    f.flush()

    def control(self, req):
        with self.lock:
            if "script" in req:
                script = req["script"]
                if not isinstance(script, list) or not all(isinstance(e, str) for e in script):
                    raise ValueError("script must be a list of strings")
                for e in script:
                    validate_entry(e)
                self.script = collections.deque(script)
            if "default" in req:
                validate_entry(req["default"])
                self.default = req["default"]
            if req.get("reset"):
                self.records = []
                if self.log_path:
                    with open(self.log_path, "w", encoding="utf-8"):
                        pass
            return {"script": list(self.script), "default": self.default}


def validate_entry(entry):
    if not isinstance(entry, str):
        raise ValueError("script entries are strings")
    if entry in ("ok", "json", "drop"):
        return
    if entry.startswith("429:"):
        int(entry[4:])
        return
    if entry.startswith("slow:"):
        float(entry[5:])
        return
    if len(entry) == 3 and entry.isdigit():
        return
    raise ValueError("unknown script entry: %r" % entry)


def parse_body(raw, content_type):
    text = raw.decode("utf-8", errors="replace")
    # Slack-style form posts carry the JSON in a "payload" field.
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = urllib.parse.parse_qs(text)
        if "payload" in fields:
            text = fields["payload"][0]
    try:
        return json.loads(text)
    except ValueError:
        return text


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as libcurl expects
    server_version = "runwarden-test-receiver"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - quiet by design
        pass

    def _send(self, code, body, content_type="text/plain", headers=None):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_json(self, code, obj, headers=None):
        self._send(code, json.dumps(obj), "application/json", headers)

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self):
        state = self.server.state
        path = self.path.split("?", 1)[0]
        if path == "/_control/requests":
            with state.lock:
                self._send_json(200, list(state.records))
        elif path == "/_control/count":
            with state.lock:
                self._send(200, str(len(state.records)))
        elif path == "/_control/script":
            with state.lock:
                self._send_json(200, {"script": list(state.script), "default": state.default})
        else:
            self._send(200, "runwarden test receiver\n")

    def do_POST(self):
        received_at = time.time()
        raw = self._read_body()
        state = self.server.state
        path = self.path.split("?", 1)[0]
        if path == "/_control" or path.startswith("/_control/"):
            try:
                req = json.loads(raw.decode("utf-8") or "{}")
                if not isinstance(req, dict):
                    raise ValueError("control body must be a JSON object")
                self._send_json(200, state.control(req))
            except (ValueError, TypeError) as e:
                self._send_json(400, {"error": str(e)})
            return

        answer = state.next_answer()
        content_type = self.headers.get("Content-Type", "")
        state.record({
            "path": self.path,
            "body": parse_body(raw, content_type),
            "received_at": received_at,
            "answer": answer,
            "content_type": content_type,
        })
        self._answer(answer)

    def _answer(self, answer):
        if answer == "ok":
            self._send(200, "ok")
        elif answer == "json":
            self._send_json(200, {"success": True, "ts": "1700000000.000100"})
        elif answer == "204":
            self.send_response(204)
            self.end_headers()
            self.wfile.flush()
        elif answer == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif answer.startswith("slow:"):
            time.sleep(float(answer[5:]))
            self._send(200, "ok")
        elif answer.startswith("429:"):
            self._send_json(429, {
                "id": "api.context.rate_limit.app_error",
                "message": "Too many requests",
                "status_code": 429,
            }, {"Retry-After": answer[4:]})
        elif answer == "400":
            self._send_json(400, MATTERMOST_400)
        else:
            code = int(answer)
            self._send_json(code, {
                "id": "api.test_receiver.scripted.app_error",
                "message": "scripted error %d" % code,
                "status_code": code,
            })


def listen_backlog():
    try:
        with open("/proc/sys/net/core/somaxconn", encoding="ascii") as f:
            return max(128, int(f.read().strip()))
    except (OSError, ValueError):
        return 128


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of posts then overflows
    # it and each connection overflowed waits for a 1 s SYN retransmit. Real
    # chat servers listen with the system's limit (Go's net/http reads
    # net.core.somaxconn, as here).
    request_queue_size = listen_backlog()


def write_atomically(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", default=None, help="JSON lines file of the requests")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    server = Server(("127.0.0.1", args.port), Handler)
    server.state = State(args.log)
    write_atomically(args.port_file, "%d\n" % server.server_address[1])

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
