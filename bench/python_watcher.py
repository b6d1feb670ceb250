#!/usr/bin/env python3
"""A minimal polling run watcher, as teams write them: the peer that
bench/watcher_idle.sh compares runwarden's watcher with.

    python_watcher.py RUN_DIR [--interval 5] [--env FILE]

Every INTERVAL seconds it reads RUN_DIR/state.json with json.load; when the
status is COMPLETED or FAILED it posts one Mattermost message with urllib
(URL from MATTERMOST_WEBHOOK_URL in FILE or the environment), writes
RUN_DIR/posted.py.marker and exits; CANCELLED exits without a post.
Standard library only. Deliberately plain: no inotify, no D-Bus, no retries
beyond the next poll.
"""

import argparse
import json
import os
import sys
import time
import urllib.request


def webhook_url(env_file):
    url = os.environ.get("MATTERMOST_WEBHOOK_URL", "")
    if env_file and os.path.exists(env_file):
        with open(env_file, encoding="utf-8") as f:
            for line in f:
                if line.startswith("MATTERMOST_WEBHOOK_URL="):
                    url = line.split("=", 1)[1].strip()
    return url


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--env", default=None)
    args = ap.parse_args()
    url = webhook_url(args.env)
    marker = os.path.join(args.run_dir, "posted.py.marker")
    while True:
        try:
            with open(os.path.join(args.run_dir, "state.json"), encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = {}
        status = state.get("status")
        if status == "CANCELLED":
            return 0
        if status in ("COMPLETED", "FAILED") and not os.path.exists(marker):
            text = "%s %s (exit code %s)" % (state.get("build"), status, state.get("exit_code"))
            body = json.dumps({"text": text}).encode()
            req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    if resp.status == 200:
                        open(marker, "w").close()
                        return 0
            except OSError as e:
                print("post failed: %s" % e, file=sys.stderr)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
