"""life_cycle.py - personal data over its life, as a data-protection
officer meets it: retention of the queue and the outbox.

The daemon runs under libfaketime (preloaded into the daemon only, the
clock set back) to make data that is old by the real clock, then once
on the real clock, whose start-up retention pass must remove it.
Run with Debian's /usr/bin/python3 (aiosmtpd lives there).
"""

import os
import pathlib
import signal
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


def evidence(detail, name):
    """The NAME=VALUE word of an audit detail (src/evidence.h)."""
    for word in (detail or "").split(" "):
        k, _, v = word.partition("=")
        if k == name:
            return v
    return None


class Evidence(imtest.DaemonCase):
    """What the audit must answer: which notice, as rendered, for which
    meeting; who and what booking a refusal was about; which keys a
    reload changed (never their values)."""

    def test_accepted_refused_and_reload_rows(self):
        d = self.start_daemon({"retry": {"max_age": "600"}})
        when = "2031-05-06T10:30:00+02:00"
        i = d.send(RCPTS[:1], extra=["--meeting-time", when])
        d.wait_state(i, {"sent"})
        bad_link = d.request(("request", "send"), ("link", "http://meet.example.org/x"),
                             ("bcc", RCPTS[0]), ("booking", "BK-2031-7"),
                             ("staff", "SE2321000016-A1B2"))
        self.assertEqual(imtest.answer_get(bad_link, "error"), "link_not_https")
        bad_booking = d.request(("request", "send"), ("link", imtest.LINK),
                                ("bcc", RCPTS[0]), ("booking", "see anna@example.org"),
                                ("staff", "anna@example.org"))
        self.assertEqual(imtest.answer_get(bad_booking, "field"), "booking")
        conf = d.conf.read_text().replace("max_age = 600", "max_age = 900")
        d.conf.write_text(conf + "\n[queue]\nretention_days = 60\n")
        d.proc.send_signal(signal.SIGHUP)
        rows = imtest.wait_for(lambda: (lambda r: r if any(
            x["event"] == "config_reloaded" for x in r) else None)(d.audit_rows()),
            what="a config_reloaded row")

        acc = [r for r in rows if r["event"] == "accepted"][0]
        self.assertEqual(evidence(acc["detail"], "notice_version"), "2026-12")
        self.assertRegex(evidence(acc["detail"], "notice_rendered_sha256"), "^[0-9a-f]{64}$")
        self.assertEqual(evidence(acc["detail"], "meeting_time"), "2031-05-06T08:30:00Z")
        rej = [r for r in rows if r["event"] == "rejected"]
        self.assertEqual(len(rej), 2)
        self.assertEqual((rej[0]["booking"], rej[0]["staff"]),
                         ("BK-2031-7", "SE2321000016-A1B2"))
        # A value that looks like an address is never written.
        self.assertEqual((rej[1]["booking"], rej[1]["staff"]), (None, None))
        loaded = [r for r in rows if r["event"] == "config_loaded"][0]
        reloaded = [r for r in rows if r["event"] == "config_reloaded"][0]
        self.assertRegex(evidence(loaded["detail"], "config_sha256"), "^[0-9a-f]{64}$")
        self.assertNotEqual(evidence(loaded["detail"], "config_sha256"),
                            evidence(reloaded["detail"], "config_sha256"))
        self.assertEqual(evidence(reloaded["detail"], "changed"),
                         "queue.retention_days,retry.max_age")
        self.assertNotIn("900", reloaded["detail"].replace(str(d.conf), ""))
        self.assertEqual(evidence(reloaded["detail"], "file"), str(d.conf))


if __name__ == "__main__":
    imtest.main("life_cycle", needs_aiosmtpd=False)
