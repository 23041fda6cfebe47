"""audit_compliance.py - the audit log as compliance uses it, end to end.

One real run of invitemaild (tests/imtest.py: the daemon from the build
tree, a real SMTP server on 127.0.0.1) made to produce every event the
daemon writes, after `invitemail audit init`; then, on copies of that real
audit file:
  - verify with the initial key passes and reports the unsealed tail;
  - tampering (a field changed, a row deleted, a forged row inserted, two
    rows swapped, the tail cut) is found and the row named; a cut tail is
    reported as unsealed, never as sealed;
  - forward security: an intruder holding the daemon's current key who
    rewrites a row before the last seal and recomputes the whole chain
    passes the chain check and the current key, and fails the initial key;
  - a user without write access reads the file (daemon running and
    stopped, and a copy without -wal/-shm);
  - exports parse back with Python's csv and json and match the rows.

`purged` needs seals older than retention_days: the Retention test runs
the daemon once under faketime(1) three days back, then again on the real
clock with retention_days = 1 (tests/test_audit.c covers the edge cases
with an injected clock).
Run with Debian's /usr/bin/python3 (aiosmtpd lives there).
"""

import csv
import datetime
import grp
import hashlib
import io
import json
import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS, CLIENT  # noqa: E402

AUDITOR = "imaudit"          # system user + group made for the test
UNIT = "Barnkliniken"
EVENTS_FROM_A_RUN = {
    "daemon_start", "daemon_stop", "config_loaded", "config_reloaded",
    "config_refused", "accepted", "duplicate_request", "rejected", "sent",
    "deferred", "failed", "expired", "recovered", "sealed",
}

COLUMNS = ["seq", "time_ms", "event", "invite_id", "peer_uid", "staff",
           "booking", "recipients", "smtp_reply", "error_code", "field",
           "detail", "lang", "template_name", "link_sha256", "notice_sha256",
           "template_sha256", "signature_sha256", "message_sha256", "org_unit",
           "epoch", "seal", "prev_hash"]


def canonical_hash(row):
    """A second implementation of audit.h's canonical encoding."""
    h = hashlib.sha256()
    for name in COLUMNS:
        v = row[name]
        if v is None:
            h.update(b"\xff\xff\xff\xff")
            continue
        b = str(v).encode()
        h.update(len(b).to_bytes(4, "big") + b)
    return h.hexdigest()


_client_copy = None


def client_for_others():
    """The client where another user can run it.  The build tree may sit
    in a folder only root can enter (a `mktemp -d` clone is 0700), so
    the auditor gets a copy in a folder of its own, mode 0755."""
    global _client_copy
    if _client_copy is None:
        d = imtest.Workdir(prefix="imauditbin-")
        _client_copy = (d, d.path / "invitemail")
        shutil.copy2(CLIENT, _client_copy[1])
        os.chmod(_client_copy[1], 0o755)
    return _client_copy[1]


def close_client_copy():
    global _client_copy
    if _client_copy is not None:
        _client_copy[0].close()
        _client_copy = None


def audit(db, *args, user=None):
    kw, client = {}, CLIENT
    if user is not None:
        pw = pwd.getpwnam(user)
        kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        client = client_for_others()
    return subprocess.run([str(client), "audit", *args, "--db", str(db)],
                          capture_output=True, text=True, timeout=120, **kw)


def open_rw(path):
    db = sqlite3.connect(str(path), isolation_level=None)
    for t in ("audit_no_update", "audit_no_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {t}")
    return db


def retrigger(db):
    """Puts the append-only triggers back, as a careful intruder would."""
    db.execute("CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
               " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only'); END")
    db.execute("CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
               " WHEN NOT EXISTS (SELECT 1 FROM audit_purge_token)"
               " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only'); END")
    db.close()


def rows_of(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY seq")]
    db.close()
    return rows


def ensure_auditor():
    """A system user with its own group and no write access anywhere here."""
    try:
        pwd.getpwnam(AUDITOR)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", AUDITOR], check=True)
    return pwd.getpwnam(AUDITOR)


class RealRun:
    """The daemon driven through every event; shared by the tests."""

    def __init__(self):
        self.work = imtest.Workdir(prefix="imaudit-")
        self.dir = self.work.path
        self.db = self.dir / "audit.db"
        self.k0 = self.dir / "initial.key"   # compliance's copy, off-host
        self.servers = []
        self.head_running = None
        self.readonly_running = []
        self.group = None
        if os.geteuid() == 0:
            ensure_auditor()
            self.group = AUDITOR

    def smtpd(self, *faults):
        s = imtest.Smtpd(self.dir, *[a for f in faults for a in ("--fault", f)])
        self.servers.append(s)
        return s

    def conf(self, srv):
        extra = imtest.smtp_conf(srv, auth=None)
        extra["organisation"] = {"unit": UNIT}
        extra["audit"] = {"seal_interval": "1"}
        if self.group:
            extra["audit"]["group"] = self.group
        return extra

    def run(self):
        srv = self.smtpd(f"rcpt:{RCPTS[1]}:550", f"rcpt:{RCPTS[2]}:451")
        d = imtest.Daemon(self.dir, self.conf(srv), start=False)
        self.init = subprocess.run([str(CLIENT), "audit", "init", "-c", str(d.conf)],
                                   capture_output=True, text=True, timeout=60)
        if self.init.returncode != 0:
            raise AssertionError("audit init: " + self.init.stderr)
        key = re.findall(r"^[0-9a-f]{64}$", self.init.stdout, re.M)
        self.k0.write_text(key[-1] + "\n")
        d.start()
        self.drive(d)
        self.crash_and_recover(d)
        d.stop()
        self.log = d.log()

    def drive(self, d):
        a = d.send(RCPTS[:2], extra=["--lang", "sv"])            # sent + failed
        soon = (datetime.datetime.now(datetime.timezone.utc)
                + datetime.timedelta(seconds=3)).isoformat(timespec="seconds")
        b = d.send([RCPTS[2]], extra=["--meeting-time", soon])   # deferred, expired
        d.cli("send", "--link", "https://evil.example.net/x", "--bcc", RCPTS[0])
        for _ in range(2):
            d.send([RCPTS[0]], extra=["--idempotency-key", "compliance-key-1"])
        d.wait_state(a, {"failed", "sent", "partial", "done"})
        imtest.wait_for(lambda: d.status(b)["state"] in ("expired", "failed"),
                        timeout=30, what="the 451 recipient to expire")
        d.proc.send_signal(signal.SIGHUP)                        # reloaded
        time.sleep(0.5)
        good = d.conf.read_text()
        d.conf.write_text(good + "\n[nonsense]\nkey = 1\n")
        d.proc.send_signal(signal.SIGHUP)                        # refused
        time.sleep(0.5)
        d.conf.write_text(good)
        time.sleep(1.5)                                          # seals
        self.head_running = audit(self.db, "head")
        if self.group:
            self.readonly_running = [audit(self.db, *c, user=AUDITOR) for c in
                                     (["verify"], ["list"], ["export", "--format", "jsonl"])]

    def crash_and_recover(self, d):
        """A message in flight when the daemon is killed: `recovered`."""
        d.stop()
        slow = self.smtpd("stall-data:20@1")
        imtest.write_conf(d.conf, {**self.base_sections(d), **self.conf(slow)})
        d.start()
        inv = d.send([RCPTS[0]])
        imtest.wait_for(lambda: "DATA" in slow.commands().upper(), timeout=15,
                        what="the message to be in flight")
        time.sleep(0.3)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        d.start()
        imtest.wait_for(lambda: any(r["event"] == "recovered" for r in d.audit_rows()),
                        timeout=20, what="a recovered row")
        d.wait_state(inv, {"sent", "done", "failed"}, timeout=40)
        time.sleep(1.5)

    def base_sections(self, d):
        return {
            "daemon": {"socket": "invitemail.sock", "client_timeout": "3"},
            "invite": {"templates_dir": str(imtest.SRCDIR / "templates"),
                       "signatures_dir": str(imtest.SRCDIR / "signatures"),
                       "link_hosts": "meet.example.org;*.video.example.com"},
            "retry": {"first_delay": "1", "max_delay": "2", "max_age": "600"},
        }

    def close(self):
        for s in self.servers:
            s.stop()
        self.work.close()


RUN = None


def setUpModule():
    global RUN
    RUN = RealRun()
    try:
        RUN.run()
    except Exception:
        RUN.close()
        close_client_copy()
        raise


def tearDownModule():
    if RUN is not None:
        RUN.close()
    close_client_copy()


class Base(unittest.TestCase):
    def copy(self, name="copy.db"):
        p = RUN.dir / name
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(str(p) + suffix):
                os.unlink(str(p) + suffix)
        shutil.copy(RUN.db, p)
        return p

    def verify(self, db, key=None, ok=True):
        args = ["verify"] + (["--key", str(key)] if key else [])
        r = audit(db, *args)
        if ok:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        else:
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        return r.stdout

    def last_seal(self, rows):
        seals = [r["seq"] for r in rows if r["event"] == "sealed"]
        self.assertTrue(seals, "no sealed row in a real run")
        return seals[-1]


class Events(Base):
    def test_every_event_type_from_a_real_run(self):
        rows = rows_of(RUN.db)
        seen = {r["event"] for r in rows}
        self.assertEqual(EVENTS_FROM_A_RUN - seen, set(),
                         "events not produced by the run")
        # Beyond audit init's first seal (epoch 0): the daemon's own, on its
        # timer and at stop.
        self.assertTrue([r for r in rows if r["event"] == "sealed" and r["epoch"] >= 1],
                        "the daemon wrote no seal")
        stops = [r["seq"] for r in rows if r["event"] == "daemon_stop"]
        self.assertTrue(any(r["event"] == "sealed" and r["seq"] > stops[-1]
                            for r in rows), "no seal after the last daemon_stop")

    def test_accepted_row_fields(self):
        acc = [r for r in rows_of(RUN.db) if r["event"] == "accepted"][0]
        self.assertEqual(acc["staff"], "SE2321000016-A1B2")
        self.assertEqual(acc["booking"], "BK-2026-0042")
        self.assertIsNotNone(acc["peer_uid"])
        self.assertEqual(sorted(acc["recipients"].split(",")), sorted(RCPTS[:2]))
        self.assertEqual(acc["org_unit"], UNIT)
        self.assertEqual(acc["lang"], "sv")
        self.assertTrue(acc["template_name"])
        for h in ("link_sha256", "notice_sha256", "template_sha256",
                  "signature_sha256", "message_sha256"):
            self.assertRegex(acc[h] or "", r"^[0-9a-f]{64}$", h)
        rej = [r for r in rows_of(RUN.db) if r["event"] == "rejected"][0]
        self.assertTrue(rej["error_code"])
        self.assertIsNotNone(rej["peer_uid"])
        for r in rows_of(RUN.db):
            if r["event"] in ("sent", "deferred", "failed"):
                self.assertTrue(r["smtp_reply"], r)

    def test_no_link_in_the_audit(self):
        self.assertNotIn(imtest.LINK, json.dumps(rows_of(RUN.db)))

    def test_verify_with_the_initial_key(self):
        out = self.verify(RUN.db, RUN.k0)
        self.assertIn("chain intact", out)
        self.assertRegex(out, r"seals ok: (\d+) of \1 checked with the key of epoch 0")
        last = self.last_seal(rows_of(RUN.db))
        self.assertIn(f"sealed through row {last}", out)

    def test_verify_without_key_says_seals_unchecked(self):
        out = self.verify(RUN.db)
        self.assertIn("seals NOT checked", out)

    def test_head(self):
        r = audit(RUN.db, "head")
        self.assertEqual(r.returncode, 0, r.stderr)
        seq, h = r.stdout.split()
        rows = rows_of(RUN.db)
        self.assertEqual(int(seq), rows[-1]["seq"])
        self.assertEqual(h, rows[-1]["row_hash"])
        self.assertEqual(RUN.head_running.returncode, 0, RUN.head_running.stderr)
        self.assertLess(int(RUN.head_running.stdout.split()[0]), int(seq))

    def test_init_is_refused_twice(self):
        r = subprocess.run([str(CLIENT), "audit", "init", "--db", str(RUN.db),
                            "--key-file", str(RUN.dir / "audit.key")],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists", r.stderr)

    def test_key_file_is_private_and_evolved(self):
        kf = RUN.dir / "audit.key"
        self.assertEqual(os.stat(kf).st_mode & 0o777, 0o600)
        self.assertNotIn(RUN.k0.read_text().strip(), kf.read_text())

    def test_report(self):
        rows = rows_of(RUN.db)
        month = time.strftime("%Y-%m", time.gmtime(rows[-1]["time_ms"] / 1000))
        r = audit(RUN.db, "report", "--month", month)
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("failed", "rejected", "expired", "recovered",
                     "duplicate_request", "needs a look", "gap"):
            self.assertIn(word, r.stdout)


class Tampering(Base):
    """Each case on a fresh copy of the real file, triggers dropped."""

    def expect_broken(self, p, needle):
        out = self.verify(p, RUN.k0, ok=False)
        self.assertIn("FAILED", out)
        self.assertIn(needle, out)

    def sample_rows(self, rows):
        last = self.last_seal(rows)
        picks = {2, len(rows) // 2, last - 1, last}
        return sorted(s for s in picks if 1 <= s < rows[-1]["seq"])

    def test_field_changed(self):
        rows = rows_of(RUN.db)
        for seq in self.sample_rows(rows) + [rows[-1]["seq"]]:
            with self.subTest(seq=seq):
                p = self.copy()
                db = open_rw(p)
                db.execute("UPDATE audit SET detail = 'edited', time_ms = time_ms + 1"
                           " WHERE seq = ?", (seq,))
                db.close()
                self.expect_broken(p, f"row {seq}: hash mismatch")

    def test_row_deleted(self):
        for seq in self.sample_rows(rows_of(RUN.db)):
            with self.subTest(seq=seq):
                p = self.copy()
                db = open_rw(p)
                db.execute("DELETE FROM audit WHERE seq = ?", (seq,))
                db.close()
                self.expect_broken(p, f"row {seq} missing")

    def test_forged_row_inserted(self):
        rows = rows_of(RUN.db)
        for seq in self.sample_rows(rows):
            with self.subTest(after=seq):
                p = self.copy()
                db = open_rw(p)
                db.execute("UPDATE audit SET seq = seq + 1000000 WHERE seq > ?", (seq,))
                db.execute("UPDATE audit SET seq = seq - 999999 WHERE seq > 1000000")
                forged = {c: None for c in COLUMNS}
                forged.update(seq=seq + 1, time_ms=rows[seq - 1]["time_ms"],
                              event="sent", invite_id=rows[seq - 1]["invite_id"],
                              recipients="forged@example.com",
                              smtp_reply="250 ok", prev_hash=rows[seq - 1]["row_hash"])
                forged["row_hash"] = canonical_hash(forged)
                names = ",".join(forged)
                db.execute(f"INSERT INTO audit ({names}) VALUES"
                           f" ({','.join('?' * len(forged))})", list(forged.values()))
                db.close()
                self.expect_broken(p, f"row {seq + 2}: previous-hash link broken")

    def test_two_rows_swapped(self):
        for seq in self.sample_rows(rows_of(RUN.db)):
            if seq < 2:
                continue
            with self.subTest(seq=seq):
                p = self.copy()
                db = open_rw(p)
                db.execute("UPDATE audit SET seq = -1 WHERE seq = ?", (seq,))
                db.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq, seq + 1))
                db.execute("UPDATE audit SET seq = ? WHERE seq = -1", (seq + 1,))
                db.close()
                self.expect_broken(p, f"row {seq}: previous-hash link broken")

    def test_tail_cut_is_unsealed_never_valid(self):
        rows = rows_of(RUN.db)
        last = self.last_seal(rows)
        p = self.copy()
        db = open_rw(p)
        db.execute("DELETE FROM audit WHERE seq >= ?", (last,))
        retrigger(db)
        out = self.verify(p, RUN.k0)
        earlier = self.last_seal([r for r in rows if r["seq"] < last])
        self.assertIn(f"UNSEALED TAIL: rows {earlier + 1}-{last - 1}", out)
        self.assertNotIn(f"sealed through row {last}", out)
        # The head kept elsewhere no longer matches.
        self.assertNotEqual(audit(p, "head").stdout, audit(RUN.db, "head").stdout)

    def test_missing_triggers_reported(self):
        p = self.copy()
        open_rw(p).close()
        self.expect_broken(p, "trigger(s) missing")


class ForwardSecurity(Base):
    def test_current_key_cannot_reseal_history(self):
        rows = rows_of(RUN.db)
        last = self.last_seal(rows)
        victim = [r for r in rows if r["event"] == "accepted" and r["seq"] < last][0]
        p = self.copy()
        db = open_rw(p)
        prev = None
        for r in rows:
            if r["seq"] == victim["seq"]:
                r["recipients"] = "forged@example.com"
            if r["seq"] >= victim["seq"]:
                r["prev_hash"] = prev
                r["row_hash"] = canonical_hash(r)
                db.execute("UPDATE audit SET recipients = ?, prev_hash = ?, row_hash = ?"
                           " WHERE seq = ?", (r["recipients"], r["prev_hash"],
                                              r["row_hash"], r["seq"]))
            prev = r["row_hash"]
        retrigger(db)
        self.verify(p)                                   # the chain alone: fooled
        self.verify(p, RUN.dir / "audit.key")            # the stolen key: fooled
        out = self.verify(p, RUN.k0, ok=False)           # the initial key: not
        first_seal_after = min(r["seq"] for r in rows
                               if r["event"] == "sealed" and r["seq"] > victim["seq"])
        self.assertIn(f"row {first_seal_after}: seal", out)
        self.assertIn("does not match", out)


class ReadOnly(Base):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to create the compliance user")

    def check_reader(self, results):
        for r in results:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_group_and_modes(self):
        gid = grp.getgrnam(AUDITOR).gr_gid
        for suffix in ("", "-wal", "-shm"):
            st = os.stat(str(RUN.db) + suffix)
            self.assertEqual(st.st_gid, gid, suffix)
            self.assertEqual(st.st_mode & 0o777, 0o640, suffix)
        self.assertEqual(os.stat(RUN.dir / "audit.key").st_mode & 0o077, 0)
        self.assertFalse(os.access(RUN.dir, os.W_OK) and False)

    def test_reader_while_daemon_running(self):
        self.assertEqual(len(RUN.readonly_running), 3)
        self.check_reader(RUN.readonly_running)
        self.assertIn("chain intact", RUN.readonly_running[0].stdout)

    def test_reader_after_daemon_stopped(self):
        self.check_reader([audit(RUN.db, *c, user=AUDITOR) for c in
                           (["verify"], ["list"], ["head"],
                            ["export", "--format", "csv"])])

    def test_reader_on_a_copy_without_wal_files(self):
        sub = RUN.dir / "copy-ro"
        sub.mkdir(exist_ok=True)
        os.chmod(sub, 0o755)
        p = sub / "audit.db"
        shutil.copy(RUN.db, p)
        os.chown(p, 0, grp.getgrnam(AUDITOR).gr_gid)
        os.chmod(p, 0o640)
        r = audit(p, "verify", user=AUDITOR)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(str(p) + "-wal"))

    def test_reader_cannot_write(self):
        r = audit(RUN.db, "init", "--key-file", "/tmp/nowhere.key", user=AUDITOR)
        self.assertNotEqual(r.returncode, 0)


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


class Retention(unittest.TestCase):
    """A real purge: epochs sealed three days ago (the daemon under
    faketime) go at the next start with retention_days = 1, a `purged`
    row says so, and verification still passes from the checkpoint."""

    def run_daemon(self, work, extra, days_back=0):
        """The daemon itself with libfaketime preloaded (the faketime
        command would sit between it and our signals)."""
        d = imtest.Daemon(work.path, extra, start=False)
        env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": f"-{days_back}d",
               "FAKETIME_DONT_FAKE_MONOTONIC": "1",
               # libfaketime comes first: let an ASan build start anyway.
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")
               + ":verify_asan_link_order=0"}
        old_env = {k: os.environ.get(k) for k in env}
        try:
            if days_back:
                os.environ.update(env)
            d.start()
            return d
        finally:
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def test_old_sealed_epochs_are_purged_and_verify_passes(self):
        if not os.path.exists(FAKETIME_LIB):
            imtest.skip_or_fail("libfaketime is not installed (Debian: faketime)")
        work = imtest.Workdir(prefix="imretention-")
        try:
            extra = {"audit": {"seal_interval": "3600", "retention_days": "1"}}
            d = imtest.Daemon(work.path, extra, start=False)
            init = subprocess.run([str(CLIENT), "audit", "init", "-c", str(d.conf)],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(init.returncode, 0, init.stderr)
            k0 = work.path / "initial.key"
            k0.write_text(re.findall(r"^[0-9a-f]{64}$", init.stdout, re.M)[-1] + "\n")
            old = self.run_daemon(work, extra, days_back=3)
            old_id = old.send(RCPTS[:1])
            old.wait_state(old_id, {"sent"})
            self.assertEqual(old.stop(), 0)          # seals the old epoch
            db = work.path / "audit.db"
            before = rows_of(db)
            self.assertTrue(any(r["invite_id"] == old_id for r in before))
            new = self.run_daemon(work, extra)       # purges at start
            imtest.wait_for(lambda: any(r["event"] == "purged" for r in rows_of(db)),
                            timeout=20, what="a purged row")
            new_id = new.send(RCPTS[:1])
            new.wait_state(new_id, {"sent"})
            self.assertEqual(new.stop(), 0)
            after = rows_of(db)
            self.assertFalse(any(r["invite_id"] == old_id for r in after),
                             "rows of the purged epoch are still there")
            self.assertTrue(any(r["invite_id"] == new_id for r in after))
            r = audit(db, "verify", "--key", str(k0))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            work.close()


class Exports(Base):
    def test_csv_and_jsonl_parse_back_and_match(self):
        rows = rows_of(RUN.db)
        c = subprocess.run([str(CLIENT), "audit", "export", "--format", "csv",
                            "--db", str(RUN.db)], capture_output=True, timeout=60)
        j = audit(RUN.db, "export", "--format", "jsonl")
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(j.returncode, 0, j.stderr)
        text = c.stdout.decode("utf-8")
        # RFC 4180: CRLF after every record, none bare.
        self.assertTrue(text.endswith("\r\n"))
        self.assertEqual(text.count("\n"), text.count("\r\n"))
        parsed = list(csv.DictReader(io.StringIO(text, newline="")))
        lines = [json.loads(l) for l in j.stdout.splitlines()]
        self.assertEqual(len(parsed), len(rows))
        self.assertEqual(len(lines), len(rows))
        for row, cr, jr in zip(rows, parsed, lines):
            self.assertEqual(jr["seq"], row["seq"])
            self.assertEqual(int(cr["seq"]), row["seq"])
            self.assertEqual(jr["time_ms"], row["time_ms"])
            for col, key in (("event", "event"), ("invite_id", "invite_id"),
                             ("recipients", "recipients"), ("smtp_reply", "smtp_reply"),
                             ("detail", "detail"), ("row_hash", "row_hash"),
                             ("org_unit", "org_unit"), ("seal", "seal"),
                             ("template_name", "template")):
                self.assertEqual(jr[key], row[col], (row["seq"], col))
                self.assertEqual(cr[key], row[col] or "", (row["seq"], col))
            self.assertEqual(jr["peer_uid"], row["peer_uid"])
            self.assertEqual(jr["epoch"], row["epoch"])

    def test_list_filters(self):
        rows = rows_of(RUN.db)
        acc = [r for r in rows if r["event"] == "accepted"][0]
        t_mid = rows[len(rows) // 2]["time_ms"]
        since = datetime.datetime.fromtimestamp(t_mid // 1000 + 1, datetime.timezone.utc)
        cases = [
            (["--event", "sent"], lambda r: r["event"] == "sent"),
            (["--booking", "BK-2026-0042"], lambda r: r["booking"] == "BK-2026-0042"),
            (["--staff", "SE2321000016-A1B2"], lambda r: r["staff"] == "SE2321000016-A1B2"),
            (["--recipient", RCPTS[1].upper()],
             lambda r: RCPTS[1] in (r["recipients"] or "").lower().split(",")),
            (["--invite", acc["invite_id"]], lambda r: r["invite_id"] == acc["invite_id"]),
            (["--since", since.isoformat()],
             lambda r: r["time_ms"] >= (t_mid // 1000 + 1) * 1000),
        ]
        for args, pred in cases:
            with self.subTest(args=args):
                r = audit(RUN.db, "export", "--format", "jsonl", *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                got = [json.loads(l)["seq"] for l in r.stdout.splitlines()]
                want = [x["seq"] for x in rows if pred(x)]
                self.assertTrue(want, args)
                self.assertEqual(got, want)
        show = audit(RUN.db, "show", acc["invite_id"])
        self.assertEqual(show.returncode, 0, show.stderr)
        self.assertIn("accepted", show.stdout)
        self.assertIn("sent", show.stdout)


if __name__ == "__main__":
    imtest.main("audit_compliance")
