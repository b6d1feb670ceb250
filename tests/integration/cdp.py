#!/usr/bin/env python3
"""Drives a real headless Chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: JSON messages ending in NUL, written to the
browser's fd 3 and read from its fd 4), for page checks that a one-shot
--dump-dom cannot make: a page that stays open while the test changes
things behind it, with live Server-Sent Events.

  cdp.py BROWSER URL STEP...

STEP is one of
  --wait SECONDS JS REGEX   evaluate JS in the page until its value (as a
                            string) matches REGEX; print it; fail after SECONDS
  --run SHELL               run a shell command (exit status must be 0)

Exit status 0 when every step passed, 1 otherwise (the last value seen is
printed), 2 on a browser that could not be driven.
"""

import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, binary):
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        self.profile = tempfile.mkdtemp(prefix="rw-cdp-")

        def fds():
            # Through copies: a pipe end may already be fd 3 or 4, and
            # dup2 onto itself would leave it close-on-exec.
            r, w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--user-data-dir=" + self.profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # close_fds would close 3 and 4 after preexec_fn made them.
            preexec_fn=fds, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        for fd in (self.to_browser, self.from_browser):
            os.set_inheritable(fd, False)
        self.buf = b""
        self.next_id = 0

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(method + ": " + json.dumps(reply["error"]))
                    return reply.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise RuntimeError(method + ": no answer from the browser")
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError(method + ": the browser went away")
            self.buf += chunk

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["rm", "-rf", "--", self.profile])


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    binary, url, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
    b = Browser(binary)
    try:
        target = b.call("Target.createTarget", {"url": url})["targetId"]
        session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        while steps:
            kind = steps.pop(0)
            if kind == "--run" and steps:
                cmd = steps.pop(0)
                if subprocess.run(["sh", "-c", cmd]).returncode != 0:
                    print("cdp: step failed: " + cmd, file=sys.stderr)
                    return 1
                continue
            if kind != "--wait" or len(steps) < 3:
                print("cdp: bad step at " + kind, file=sys.stderr)
                return 2
            secs, js, pattern = steps.pop(0), steps.pop(0), steps.pop(0)
            deadline = time.monotonic() + float(secs)
            value = None
            while True:
                r = b.call("Runtime.evaluate", {"expression": js, "returnByValue": True}, session)
                value = str(r.get("result", {}).get("value"))
                if re.search(pattern, value):
                    print(value)
                    break
                if time.monotonic() > deadline:
                    print("cdp: timed out after %ss waiting for %s to match %r; last value: %s"
                          % (secs, js, pattern, value), file=sys.stderr)
                    return 1
                time.sleep(0.1)
        return 0
    except RuntimeError as e:
        print("cdp: " + str(e), file=sys.stderr)
        return 2
    finally:
        b.close()


if __name__ == "__main__":
    sys.exit(main())
