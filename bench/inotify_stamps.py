#!/usr/bin/env python3
"""Timestamps of the files runwarden renames into place, for latency breakdowns.

    inotify_stamps.py RUNS_DIR OUT.jsonl [--ready FILE]

Watches RUNS_DIR (runwarden's $STATE/runs) and every run directory created in
it, and appends one JSON line per rename into place of state.json,
notification.json or posted.marker:

    {"t": <epoch s float, when this process read the event>, "build": ..., "file": ...}

Every runwarden write is tmp + fsync + rename, so IN_MOVED_TO is the moment a
reader can see the new content. Touches FILE once watching (for the caller to
wait on). Standard library only (inotify through ctypes). Ends on SIGTERM.
"""

import ctypes
import ctypes.util
import json
import os
import signal
import struct
import sys
import time

IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_ISDIR = 0x40000000
IN_Q_OVERFLOW = 0x00004000
WANTED = {"state.json", "notification.json", "posted.marker"}


def main():
    runs, out = sys.argv[1], sys.argv[2]
    ready = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--ready" else None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        sys.exit("inotify_init1: %s" % os.strerror(ctypes.get_errno()))
    wds = {}

    def add(path, mask):
        wd = libc.inotify_add_watch(fd, path.encode(), mask)
        if wd >= 0:
            wds[wd] = path

    os.makedirs(runs, exist_ok=True)
    add(runs, IN_CREATE)
    for name in os.listdir(runs):
        if os.path.isdir(os.path.join(runs, name)):
            add(os.path.join(runs, name), IN_MOVED_TO)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    if ready:
        open(ready, "w").close()
    with open(out, "a", buffering=1, encoding="utf-8") as log:
        while True:
            buf = os.read(fd, 1 << 16)
            t = time.time()
            off = 0
            while off < len(buf):
                wd, mask, _cookie, ln = struct.unpack_from("iIII", buf, off)
                name = buf[off + 16:off + 16 + ln].rstrip(b"\0").decode(errors="replace")
                off += 16 + ln
                if mask & IN_Q_OVERFLOW:
                    log.write(json.dumps({"t": t, "overflow": True}) + "\n")
                    continue
                base = wds.get(wd)
                if base is None:
                    continue
                if base == runs:
                    if mask & IN_CREATE and mask & IN_ISDIR:
                        add(os.path.join(runs, name), IN_MOVED_TO)
                    continue
                if mask & IN_MOVED_TO and name in WANTED:
                    log.write(json.dumps({"t": t, "build": os.path.basename(base), "file": name}) + "\n")


if __name__ == "__main__":
    main()
