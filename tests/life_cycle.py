"""life_cycle.py - personal data over its life, as a data-protection
officer meets it: retention of the queue and the outbox.

The daemon runs under libfaketime (preloaded into the daemon only, the
clock set back) to make data that is old by the real clock, then once
on the real clock, whose start-up retention pass must remove it.
Run with Debian's /usr/bin/python3 (aiosmtpd lives there).
"""

import os
import pathlib
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS, CLIENT  # noqa: E402

OLD_LINK = "https://meet.example.org/evisit/room-old-1"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def need_faketime():
    if not os.path.exists(FAKETIME_LIB):
        imtest.skip_or_fail("libfaketime is not installed (Debian: faketime)")


def start_at(daemon, faketime=None):
    """Starts the daemon with libfaketime preloaded when faketime is set
    ("-40d", "@2026-10-05 09:00:00"): only the daemon's clock moves."""
    env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": faketime or "",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           # libfaketime comes first: let an ASan build start anyway.
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")
           + ":verify_asan_link_order=0"}
    old = {k: os.environ.get(k) for k in env}
    try:
        if faketime:
            os.environ.update(env)
        daemon.start()
        return daemon
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def file_bytes(*paths):
    out = b""
    for p in paths:
        if os.path.exists(p):
            out += pathlib.Path(p).read_bytes()
    return out


class Retention(unittest.TestCase):
    """Invites finished 40 days ago leave the queue and the outbox at the
    next start (retention_days 30), with an audit row that counts them;
    an invite that came with an idempotency key keeps its id."""

    def test_queue_and_outbox_purged_at_start(self):
        need_faketime()
        work = imtest.Workdir(prefix="imretain-")
        try:
            d = imtest.Daemon(work.path, {"queue": {"retention_days": "30"}},
                              start=False)
            start_at(d, "-40d")
            old = d.send(RCPTS[:2], link=OLD_LINK)
            keyed = d.send(RCPTS[2:], link=OLD_LINK,
                           extra=["--idempotency-key", "req-old-1"])
            for i in (old, keyed):
                d.wait_state(i, {"sent"})
            outbox = work.path / "outbox"
            self.assertEqual(len(list(outbox.glob("*.eml"))), 3)
            self.assertEqual(d.stop(), 0)
            stale = outbox / "zz0.0.eml"          # an orphan from a crash
            stale.write_bytes(b"x")
            os.utime(stale, (0, 0))
            mine = outbox / "notes.txt"           # not ours: stays
            mine.write_text("kept")
            os.utime(mine, (0, 0))

            start_at(d)                           # the real clock
            rows = imtest.wait_for(
                lambda: [r for r in d.audit_rows() if r["event"] == "retention"],
                what="a retention row")
            self.assertEqual(len(rows), 1)
            self.assertEqual(rows[0]["detail"],
                             "older than 30 days: queue 2 invites (3 recipients;"
                             " 1 kept as idempotency tombstones), outbox 7 files")
            self.assertEqual(sorted(p.name for p in outbox.iterdir()), ["notes.txt"])
            st = d.cli("status", old)
            self.assertNotEqual(st.returncode, 0)
            # The key's repeat is still answered with the first id.
            again = d.send(RCPTS[2:], link=OLD_LINK,
                           extra=["--idempotency-key", "req-old-1"])
            self.assertEqual(again, keyed)
            fresh = d.send(RCPTS[:1])
            d.wait_state(fresh, {"sent"})
            self.assertEqual(d.stop(), 0)
            q = work.path / "queue.db"
            data = file_bytes(q, f"{q}-wal").replace(b"=\r\n", b"")
            for gone in RCPTS[1:] + ["room-old-1"]:
                self.assertFalse(gone.encode() in data, gone + " is still in the queue file")
            self.assertTrue(RCPTS[0].encode() in data)   # the fresh invite's
            r = d.audit_verify()
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            work.close()

    def test_retention_zero_keeps_everything(self):
        need_faketime()
        work = imtest.Workdir(prefix="imretain0-")
        try:
            d = imtest.Daemon(work.path, {"queue": {"retention_days": "0"}},
                              start=False)
            start_at(d, "-400d")
            i = d.send(RCPTS[:1])
            d.wait_state(i, {"sent"})
            self.assertEqual(d.stop(), 0)
            start_at(d)
            d.wait_state(i, {"sent"})
            self.assertEqual(d.stop(), 0)
            self.assertFalse([r for r in d.audit_rows() if r["event"] == "retention"])
            self.assertEqual(len(list((work.path / "outbox").glob("*.eml"))), 1)
        finally:
            work.close()


if __name__ == "__main__":
    imtest.main("life_cycle", needs_aiosmtpd=False)
