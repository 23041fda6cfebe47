"""audit_compliance.py - the audit log as compliance uses it, end to end.

One real run of invitemaild (tests/system/imtest.py: the daemon from the build
tree, a real SMTP server on 127.0.0.1) made to produce every event the
daemon writes, after `invitemail audit init`: first three days back under
faketime(1), then on the real clock, with a crash in between.  The heads
the daemon wrote to its log are the anchors.  Then, on copies of that
real audit file:
  - verify with the PUBLIC value passes, prints first and last seal time;
  - the tamper matrix: every attack of the evidence issue, each on its
    own copy, verified four ways (--key; --allow-unsealed-tail;
    --max-age; --anchors), the exit status asserted and the matrix
    printed.  The forger knows the format and holds the daemon's CURRENT
    private key (read from audit.key) and signs with Python's own
    Ed25519 (python3-cryptography): a second implementation of the seal;
  - a user without write access reads and verifies (daemon running and
    stopped, and a copy without -wal/-shm);
  - exports parse back with Python's csv and json and match the rows;
  - retention purges old sealed epochs and verify still passes.
Run with Debian's /usr/bin/python3 (aiosmtpd lives there).
"""

import csv
import datetime
import grp
import hashlib
import hmac
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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

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
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
DAY = 24 * 3600

COLUMNS = ["seq", "time_ms", "event", "invite_id", "peer_uid", "staff",
           "booking", "recipients", "smtp_reply", "error_code", "field",
           "detail", "lang", "template_name", "link_sha256", "notice_sha256",
           "template_sha256", "signature_sha256", "message_sha256", "org_unit",
           "epoch", "seal", "next_key", "prev_seal", "prev_hash"]
ZERO = "0" * 64
TRIGGERS = {
    "audit_no_update": "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
                       " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only'); END",
    "audit_no_delete": "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
                       " WHEN NOT EXISTS (SELECT 1 FROM audit_purge_token)"
                       " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only'); END",
}


# ---- a second implementation of the format, as a forger would write it --

def put(h, v):
    if v is None:
        h.update(b"\xff\xff\xff\xff")
        return
    b = str(v).encode()
    h.update(len(b).to_bytes(4, "big") + b)


def canonical_hash(row):
    h = hashlib.sha256()
    for name in COLUMNS:
        put(h, row[name])
    return h.hexdigest()


class _Buf:
    def __init__(self):
        self.b = b""

    def update(self, x):
        self.b += x


def seal_message(row):
    m = _Buf()
    for v in ("invitemail-audit-seal-v3", row["seq"], row["time_ms"], row["epoch"],
              row["prev_hash"], row["prev_seal"], row["next_key"], row["detail"]):
        put(m, v)
    return m.b


def public_hex(sk):
    return sk.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw).hex()


def stolen_key(key_file):
    """The daemon's current private key, read as an intruder would."""
    text = key_file.read_text()
    epoch = int(re.search(r"^epoch (\d+)$", text, re.M).group(1))
    hexkey = re.search(r"^key ([0-9a-f]{64})$", text, re.M).group(1)
    return epoch, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(hexkey))


def address_key(path):
    """The per-installation address key: in the file, outside the chain."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    key = db.execute("SELECT key FROM audit_address_key").fetchone()[0]
    db.close()
    return bytes.fromhex(key)


def addr_hash(key, addr):
    """The chain's keyed hash of an address: HMAC-SHA256 over the local
    part as written and the domain as a lower-case A-label."""
    local, _, domain = addr.rpartition("@")
    norm = f"{local}@{domain.encode('idna').decode().lower()}"
    return hmac.new(key, norm.encode(), hashlib.sha256).hexdigest()


def rechain(rows):
    """Renumbers from 1 and recomputes every link, seal link and hash:
    all an intruder without a signing key can do."""
    prev, prev_seal = ZERO, ZERO
    for i, r in enumerate(rows):
        r["seq"] = i + 1
        r["prev_hash"] = prev
        if r["event"] == "sealed":
            r["prev_seal"] = prev_seal
        r["row_hash"] = canonical_hash(r)
        if r["event"] == "sealed":
            prev_seal = r["row_hash"]
        prev = r["row_hash"]
    return rows


def reseal(rows, first_key, first_epoch=0):
    """Re-signs every seal row with a key chain the forger controls: the
    first seal with first_key (e.g. the stolen current key), each naming
    a fresh next key, as the daemon does."""
    prev, prev_seal, sk, epoch = ZERO, ZERO, first_key, first_epoch
    for i, r in enumerate(rows):
        r["seq"] = i + 1
        r["prev_hash"] = prev
        if r["event"] == "sealed":
            nxt = Ed25519PrivateKey.generate()
            r.update(epoch=epoch, prev_seal=prev_seal, next_key=public_hex(nxt))
            r["seal"] = sk.sign(seal_message(r)).hex()
            sk, epoch = nxt, epoch + 1
        r["row_hash"] = canonical_hash(r)
        if r["event"] == "sealed":
            prev_seal = r["row_hash"]
        prev = r["row_hash"]
    return rows


# ---- files ------------------------------------------------------------------

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
    for t in TRIGGERS:
        db.execute(f"DROP TRIGGER IF EXISTS {t}")
    return db


def retrigger(db):
    """Puts the append-only triggers back, as a careful intruder would."""
    for sql in TRIGGERS.values():
        db.execute(sql)
    db.close()


def rows_of(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY seq")]
    db.close()
    return rows


def write_rows(path, rows):
    """Replaces the chain with rows, the triggers dropped and put back."""
    db = open_rw(path)
    db.execute("DELETE FROM audit")
    names = COLUMNS + ["row_hash"]
    for r in rows:
        db.execute(f"INSERT INTO audit ({','.join(names)}) VALUES"
                   f" ({','.join('?' * len(names))})", [r[n] for n in names])
    retrigger(db)


def copy_db(src, dst):
    """The audit file with its -wal, as a careful copy takes it."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(dst) + suffix):
            os.unlink(str(dst) + suffix)
        if os.path.exists(str(src) + suffix):
            shutil.copy(str(src) + suffix, str(dst) + suffix)
    return dst


def ensure_auditor():
    """A system user with its own group and no write access anywhere here."""
    try:
        pwd.getpwnam(AUDITOR)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", AUDITOR], check=True)
    return pwd.getpwnam(AUDITOR)


def faked(days_back):
    """Environment for a program run days_back days in the past."""
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": f"-{days_back}d",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            # libfaketime comes first: let an ASan build start anyway.
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")
            + ":verify_asan_link_order=0"}


def start_faked(d, days_back):
    """d.start () with libfaketime preloaded (the faketime command would
    sit between the daemon and our signals)."""
    env = faked(days_back)
    old = {k: os.environ.get(k) for k in env}
    try:
        os.environ.update(env)
        d.start()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def init(conf, public, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    r = subprocess.run([str(CLIENT), "audit", "init", "-c", str(conf),
                        "--public", str(public)],
                       capture_output=True, text=True, timeout=60, env=env)
    if r.returncode != 0:
        raise AssertionError("audit init: " + r.stdout + r.stderr)
    return r


def anchors_from_log(log_text, path):
    lines = [l for l in log_text.splitlines() if "[invitemail-audit@" in l]
    path.write_text("\n".join(lines) + "\n")
    return lines


class RealRun:
    """The daemon driven through every event; shared by the tests."""

    def __init__(self):
        self.work = imtest.Workdir(prefix="imaudit-")
        self.dir = self.work.path
        self.db = self.dir / "audit.db"
        self.pub = self.dir / "audit.pub"     # compliance's copy, published
        self.anchors = self.dir / "anchors.log"
        self.old = self.dir / "old"           # a copy three days old
        self.nowal = self.dir / "nowal"       # a copy without its -wal
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
        extra = imtest.smtp_conf(srv, auth=None) if srv else {}
        extra["organisation"] = {"unit": UNIT}
        extra["audit"] = {"seal_interval": "1"}
        if self.group:
            extra["audit"]["group"] = self.group
        return extra

    def run(self):
        if not os.path.exists(FAKETIME_LIB):
            imtest.skip_or_fail("libfaketime is not installed (Debian: faketime)")
        srv = self.smtpd(f"rcpt:{RCPTS[1]}:550", f"rcpt:{RCPTS[2]}:451")
        d = imtest.Daemon(self.dir, self.conf(srv), start=False)
        self.init = init(d.conf, self.pub, faked(3))
        self.three_days_back(d)
        imtest.write_conf(d.conf, {**self.base_sections(d), **self.conf(srv)})
        d.start()
        self.drive(d)
        self.crash_and_recover(d)
        d.stop()
        self.log = d.log()
        self.anchor_lines = anchors_from_log(self.log, self.anchors)

    def three_days_back(self, d):
        """One invite three days ago, then a stop (sealed); the files as
        they were then are kept as the older copy.  The file transport:
        the test CA's certificates did not exist three days ago."""
        conf = self.conf(None)
        imtest.write_conf(d.conf, {**self.base_sections(d), "audit": conf["audit"]})
        start_faked(d, 3)
        self.old_invite = d.send([RCPTS[0]])
        d.wait_state(self.old_invite, {"sent"})
        d.stop()
        self.old.mkdir()
        copy_db(self.db, self.old / "audit.db")
        shutil.copy2(self.dir / "audit.key", self.old / "audit.key")

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
        self.nowal.mkdir()
        shutil.copy(self.db, self.nowal / "audit.db")            # no -wal
        self.head_running = audit(self.db, "head")
        if self.group:
            pub = client_for_others().parent / "audit.pub"
            shutil.copy(self.pub, pub)
            os.chmod(pub, 0o644)
            self.readonly_running = [audit(self.db, *c, user=AUDITOR) for c in
                                     (["verify", "--key", str(pub),
                                       "--allow-unsealed-tail"],
                                      ["list"], ["export", "--format", "jsonl"])]

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
            "daemon": {"socket": "invitemail.sock", "client_timeout": "3",
                       # as root the daemon needs [daemon] user; root by choice here
                       "user": "root" if os.geteuid() == 0 else None},
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
        return copy_db(RUN.db, RUN.dir / name)

    def verify(self, db, *extra, key=True, ok=True):
        args = ["verify"] + (["--key", str(RUN.pub)] if key else []) + list(extra)
        r = audit(db, *args)
        self.assertEqual(r.returncode, 0 if ok else 1, r.stdout + r.stderr)
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
        self.assertTrue([r for r in rows if r["event"] == "sealed" and r["epoch"] >= 1],
                        "the daemon wrote no seal")
        self.assertEqual(rows[-1]["event"], "sealed", "a stopped daemon's last row")
        stops = [r["seq"] for r in rows if r["event"] == "daemon_stop"]
        self.assertTrue(any(r["event"] == "sealed" and r["seq"] > stops[-1]
                            for r in rows), "no seal after the last daemon_stop")
        # Idle seals: the daemon seals every seal_interval with nothing
        # else written in between (two seal rows in a row).
        self.assertTrue(any(a["event"] == b["event"] == "sealed"
                            for a, b in zip(rows, rows[1:])), "no idle seal")
        # Three days back, then now: times never go back.
        self.assertTrue(all(a["time_ms"] <= b["time_ms"] for a, b in zip(rows, rows[1:])))
        self.assertGreater(rows[-1]["time_ms"] - rows[0]["time_ms"], 2 * DAY * 1000)

    def test_accepted_row_fields(self):
        acc = [r for r in rows_of(RUN.db) if r["event"] == "accepted"][-1]
        self.assertEqual(acc["staff"], "SE2321000016-A1B2")
        self.assertEqual(acc["booking"], "BK-2026-0042")
        self.assertIsNotNone(acc["peer_uid"])
        self.assertEqual(acc["org_unit"], UNIT)
        self.assertTrue(acc["template_name"])
        for h in ("link_sha256", "notice_sha256", "template_sha256",
                  "signature_sha256", "message_sha256"):
            self.assertRegex(acc[h] or "", r"^[0-9a-f]{64}$", h)
        rej = [r for r in rows_of(RUN.db) if r["event"] == "rejected"][0]
        self.assertTrue(rej["error_code"])
        for r in rows_of(RUN.db):
            if r["event"] in ("sent", "deferred", "failed"):
                self.assertTrue(r["smtp_reply"], r)

    def test_no_link_in_the_audit(self):
        self.assertNotIn(imtest.LINK, json.dumps(rows_of(RUN.db)))

    def test_init_prints_the_public_value(self):
        pub = RUN.pub.read_text().strip()
        self.assertRegex(pub, r"^ed25519:[0-9a-f]{64}$")
        self.assertIn(pub, RUN.init.stdout)
        self.assertNotIn(pub.split(":")[1], (RUN.dir / "audit.key").read_text())

    def test_verify_with_the_public_value(self):
        out = self.verify(RUN.db, "--anchors", str(RUN.anchors))
        rows = rows_of(RUN.db)
        seals = [r for r in rows if r["event"] == "sealed"]
        self.assertIn("chain intact", out)
        self.assertIn(f"seals ok: {len(seals)} seals, epochs 0-{seals[-1]['epoch']},"
                      " every signature verified from the published value", out)
        first = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seals[0]["time_ms"] // 1000))
        last = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seals[-1]["time_ms"] // 1000))
        self.assertIn(f"first seal {first}, last seal {last}", out)
        self.assertIn(f"sealed through row {seals[-1]['seq']}", out)
        self.assertRegex(out, r"anchors ok: \d+ heads")
        self.assertGreaterEqual(len(RUN.anchor_lines), 3)

    def test_verify_without_key_says_start_unchecked(self):
        out = self.verify(RUN.db, key=False)
        self.assertIn("NOT checked against the published value", out)

    def test_secret_key_refused_as_public_value(self):
        r = audit(RUN.db, "verify", "--key", str(RUN.dir / "audit.key"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("secret key file, not the public value", r.stderr)

    def test_head(self):
        r = audit(RUN.db, "head")
        self.assertEqual(r.returncode, 0, r.stderr)
        seq, h = r.stdout.split()
        rows = rows_of(RUN.db)
        self.assertEqual(int(seq), rows[-1]["seq"])
        self.assertEqual(h, rows[-1]["row_hash"])
        self.assertEqual(RUN.head_running.returncode, 0, RUN.head_running.stderr)
        self.assertLess(int(RUN.head_running.stdout.split()[0]), int(seq))

    def test_head_json_is_the_last_anchor(self):
        r = audit(RUN.db, "head", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        head = json.loads(r.stdout)
        last = rows_of(RUN.db)[-1]
        self.assertEqual((head["seq"], head["hash"], head["epoch"], head["time_ms"]),
                         (last["seq"], last["row_hash"], last["epoch"], last["time_ms"]))
        sd = (f'seq="{head["seq"]}" hash="{head["hash"]}" epoch="{head["epoch"]}"'
              f' time_ms="{head["time_ms"]}"')
        self.assertIn(sd, RUN.anchor_lines[-1])

    def test_anchors_as_journal_json(self):
        """The same heads as `journalctl -o json` lines carry them (its
        `"KEY" : "value"` spacing)."""
        p = RUN.dir / "anchors.json"
        with open(p, "w") as f:
            for line in RUN.anchor_lines:
                m = dict(re.findall(r'(\w+)="([^"]*)"', line))
                f.write(json.dumps({
                    "MESSAGE": "audit sealed", "PRIORITY": "6",
                    "MESSAGE_ID": "04a821d8047a4c3495d12ce6adb6d8d9",
                    "INVITEMAIL_AUDIT_SEQ": m["seq"], "INVITEMAIL_AUDIT_HASH": m["hash"],
                    "INVITEMAIL_AUDIT_EPOCH": m["epoch"],
                    "INVITEMAIL_AUDIT_TIME_MS": m["time_ms"]},
                    separators=(", ", " : ")) + "\n")
        out = self.verify(RUN.db, "--anchors", str(p))
        self.assertIn(f"anchors ok: {len(RUN.anchor_lines)} heads", out)

    def test_init_is_refused_twice(self):
        r = subprocess.run([str(CLIENT), "audit", "init", "--db", str(RUN.db),
                            "--key-file", str(RUN.dir / "audit.key")],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists", r.stderr)

    def test_key_file_is_private_and_moved_on(self):
        kf = RUN.dir / "audit.key"
        self.assertEqual(os.stat(kf).st_mode & 0o777, 0o600)
        epoch, sk = stolen_key(kf)
        rows = rows_of(RUN.db)
        self.assertEqual(epoch, rows[-1]["epoch"] + 1)
        self.assertEqual(public_hex(sk), rows[-1]["next_key"])

    def test_old_format_gets_plain_words(self):
        p = self.copy("v2.db")
        db = sqlite3.connect(str(p))
        db.execute("PRAGMA user_version = 2")
        db.close()
        r = audit(p, "verify", "--key", str(RUN.pub))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("schema version 2 (HMAC seals)", r.stdout + r.stderr)


def detected_by(out):
    """Which check a FAILED message came from, in plain words."""
    for needle, what in (("anchored", "anchors"), ("max-age", "age"),
                         ("keyed hash", "addresses"),
                         ("neither kept nor erased", "addresses"),
                         ("no `erased` row", "addresses"),
                         ("trigger", "triggers"), ("purge", "purge rule"),
                         ("come after the last seal", "sealed tail"),
                         ("NO SEALS", "seals"), ("seal", "seals"),
                         ("time goes back", "time"), ("future", "time"),
                         ("hash mismatch", "chain"), ("link", "chain"),
                         ("missing", "chain"), ("sequence", "chain")):
        if needle in out:
            return what
    return "?"


class TamperMatrix(Base):
    """Each attack of the evidence issue on its own copy of the real file.
    Four verifications per copy, each with the published value:
      key    --key PUB
      tail   --key PUB --allow-unsealed-tail           (a live file)
      age    ... --max-age 86400                       (seals at least daily)
      anch   ... --anchors (the heads the daemon logged)
    Expected statuses are asserted; the matrix is printed."""

    COLS = ("key", "tail", "age", "anch")
    results = []

    def run_four(self, p):
        base = ["verify", "--key", str(RUN.pub)]
        tail = base + ["--allow-unsealed-tail"]
        runs = [base, tail, tail + ["--max-age", str(DAY)],
                tail + ["--anchors", str(RUN.anchors)]]
        return [audit(p, *a) for a in runs]

    def attack(self, name, p, expect, notes=""):
        rs = self.run_four(p)
        got = tuple(r.returncode for r in rs)
        why = [detected_by(r.stdout) if r.returncode else "-" for r in rs]
        TamperMatrix.results.append((name, got, why, notes))
        self.assertEqual(got, expect, f"{name}: " + " | ".join(
            r.stdout.strip().splitlines()[0] if r.stdout.strip() else r.stderr
            for r in rs))
        return rs

    @classmethod
    def tearDownClass(cls):
        w = max(len(n) for n, *_ in cls.results) if cls.results else 10
        lines = [f"{'attack':<{w}}  " + "  ".join(f"{c:>4}" for c in cls.COLS)
                 + "  detected by (key | tail | age | anchors)"]
        for name, got, why, notes in cls.results:
            lines.append(f"{name:<{w}}  " + "  ".join(f"{g:>4}" for g in got)
                         + "  " + " | ".join(why) + (f"  [{notes}]" if notes else ""))
        print("\nTAMPER MATRIX (exit status of invitemail audit verify):\n"
              + "\n".join(lines), file=sys.stderr)

    def people_rows(self, rows, key):
        h = addr_hash(key, RCPTS[0])
        return [r for r in rows if r["recipients"] and h in r["recipients"].split(",")]

    def test_tamper_matrix(self):
        rows0 = rows_of(RUN.db)
        seals = [r["seq"] for r in rows0 if r["event"] == "sealed"]
        victim = [r for r in rows0 if r["event"] == "accepted"][-1]["seq"]
        ALL = (1, 1, 1, 1)

        # The untouched copy passes every way.
        self.attack("untouched copy", self.copy(), (0, 0, 0, 0))

        def edited(name, change, expect, notes=""):
            p = self.copy()
            rows = rows_of(p)
            rows = change(rows) or rows
            write_rows(p, rows)
            with self.subTest(attack=name):
                self.attack(name, p, expect, notes)

        def set_rcpt(rows, forged="forged@example.com"):
            rows[victim - 1]["recipients"] = forged

        edited("change a row", set_rcpt, ALL)
        edited("change a row, recompute every hash",
               lambda rows: (set_rcpt(rows), rechain(rows))[1], ALL)
        edited("delete a row",
               lambda rows: [r for r in rows if r["seq"] != victim], ALL)
        edited("delete a row, renumber + rehash",
               lambda rows: rechain([r for r in rows if r["seq"] != victim]), ALL)

        def insert(rows):
            forged = dict(rows[victim - 1], event="sent", smtp_reply="250 ok",
                          recipients="forged@example.com")
            return rechain(rows[:victim] + [forged] + rows[victim:])
        edited("insert a forged row, renumber + rehash", insert, ALL)

        def renumber(rows):
            for r in rows[victim - 1:]:
                r["seq"] += 1
        edited("renumber the rows after one", renumber, ALL)

        def replace_seal(rows):
            s = seals[len(seals) // 2] - 1
            other = Ed25519PrivateKey.generate()
            rechain(rows)
            rows[s]["seal"] = other.sign(seal_message(rows[s])).hex()
            return rechain(rows)
        edited("replace a seal (signed by another key)", replace_seal, ALL)

        p = self.copy()
        db = open_rw(p)
        db.close()
        self.attack("drop a trigger", p, ALL)

        # The clear address kept beside the chain (outside it, erasable)
        # changed, so that a list shows another person for a sealed row.
        p = self.copy()
        db = sqlite3.connect(str(p))
        db.execute("UPDATE audit_address SET address = 'forged@example.com'"
                   " WHERE address = ?", (RCPTS[0],))
        db.commit()
        db.close()
        self.attack("change an address beside the chain", p, ALL)
        p = self.copy()
        db = sqlite3.connect(str(p))
        db.execute("DELETE FROM audit_address WHERE address = ?", (RCPTS[0],))
        db.commit()
        db.close()
        self.attack("delete an address beside the chain", p, ALL)
        p = self.copy()
        db = sqlite3.connect(str(p))
        db.execute("UPDATE audit_address SET address = NULL, erased_ms = 1"
                   " WHERE address = ?", (RCPTS[0],))
        db.commit()
        db.close()
        self.attack("erase an address by hand (no erased row)", p, ALL)

        def append(rows):
            extra = dict(rows[victim - 1], time_ms=rows[-1]["time_ms"] + 1)
            rows.append(extra)
            return rechain(rows)
        edited("append a row after the last seal", append, (1, 0, 0, 0),
               "only the sealed-tail rule: exit 0 with --allow-unsealed-tail,"
               " which prints the count")

        edited("delete the last seal", lambda rows: rows[:-1], (1, 0, 0, 1))

        cut = rows0[-1]["time_ms"] - 2 * DAY * 1000
        edited("cut the last two days",
               lambda rows: [r for r in rows if r["time_ms"] <= cut], (0, 0, 1, 1),
               "the copy ends in a valid seal three days old")

        with self.subTest(attack="roll back to an older copy"):
            self.attack("roll back to an older copy", RUN.old / "audit.db",
                        (0, 0, 1, 1))
        with self.subTest(attack="roll back + key file, daemon run on it"):
            p = self.rolled_back_and_continued()
            self.attack("roll back + its key file, daemon run on it", p,
                        (0, 0, 0, 1), "fresh valid seals: only anchors see it")

        def fake_purge(rows):
            cp = seals[len(seals) // 2]
            db = sqlite3.connect(str(p2))
            db.execute("INSERT INTO audit_kept_seal SELECT seq, time_ms, epoch,"
                       " detail, seal, next_key, prev_seal, prev_hash, row_hash, 0"
                       " FROM audit WHERE event = 'sealed' AND seq <= ?", (cp,))
            db.commit()
            db.close()
            return [r for r in rows if r["seq"] > cp]
        p2 = self.copy()
        rows = fake_purge(rows_of(p2))
        write_rows(p2, rows)
        with self.subTest(attack="fake a retention purge"):
            self.attack("fake a retention purge", p2, ALL,
                        "seals kept as a real purge keeps them; no sealed"
                        " `purged` row allowed it")

        edited("strip all seals, renumber + rehash",
               lambda rows: rechain([r for r in rows if r["event"] != "sealed"]), ALL)

        epoch, stolen = stolen_key(RUN.dir / "audit.key")

        akey = address_key(RUN.db)

        def forge(rows, first_epoch):
            people = self.people_rows(rows, akey)
            self.assertTrue(people)
            for r in people:
                r["recipients"] = r["recipients"].replace(
                    addr_hash(akey, RCPTS[0]), addr_hash(akey, "forged@example.com"))
            return reseal(rows, stolen, first_epoch)
        edited("strip seals, rewrite a person's rows, re-seal with the CURRENT key",
               lambda rows: forge(rows, 0), ALL,
               f"stolen key of epoch {epoch} signs as epoch 0")
        edited("same, the forged seals numbered from the stolen epoch",
               lambda rows: forge(rows, epoch), ALL)

        def resign_last(rows):
            set_rcpt(rows)
            rechain(rows)
            last = rows[-1]
            last["seal"] = stolen.sign(seal_message(last)).hex()
            return rechain(rows)
        edited("rewrite a row, re-sign the last seal with the CURRENT key",
               resign_last, ALL)

        # A purge faked by the holder of the CURRENT key: rows up to a
        # seal deleted, their seals kept as a real purge keeps them, and a
        # `purged` row naming them, sealed with the stolen key.  The seal
        # at the cut signed the retention in force (the default, five
        # years): the purge came too early.  Dating the purged row years
        # ahead to satisfy it makes it a row from the future.
        def forged_purge(rows, ahead_ms):
            cp = seals[len(seals) // 2]
            cut = [r for r in rows if r["seq"] == cp][0]
            db = sqlite3.connect(str(pf))
            db.execute("INSERT INTO audit_kept_seal SELECT seq, time_ms, epoch,"
                       " detail, seal, next_key, prev_seal, prev_hash, row_hash, 0"
                       " FROM audit WHERE event = 'sealed' AND seq <= ?", (cp,))
            db.commit()
            db.close()
            kept = [r for r in rows if r["seq"] > cp]
            last = kept[-1]
            t = last["time_ms"] + ahead_ms
            purged = {c: None for c in COLUMNS}
            purged.update(seq=last["seq"] + 1, time_ms=t, event="purged",
                          detail=f"rows 1-{cp} purged, sealed through epoch"
                                 f" {cut['epoch']} (retention 1 days)",
                          prev_hash=last["row_hash"])
            purged["row_hash"] = canonical_hash(purged)
            nxt = Ed25519PrivateKey.generate()
            seal = {c: None for c in COLUMNS}
            seal.update(seq=last["seq"] + 2, time_ms=t, event="sealed", epoch=epoch,
                        detail=f"epoch {epoch}; retention 1 days",
                        prev_hash=purged["row_hash"], prev_seal=last["row_hash"],
                        next_key=public_hex(nxt))
            seal["seal"] = stolen.sign(seal_message(seal)).hex()
            seal["row_hash"] = canonical_hash(seal)
            return kept + [purged, seal]
        for name, ahead, expect in (
                ("fake a purge, its purged row sealed with the CURRENT key",
                 1000, ALL),
                ("same, the purged row dated 6 years ahead", 6 * 366 * DAY * 1000,
                 ALL)):
            pf = self.copy()
            write_rows(pf, forged_purge(rows_of(pf), ahead))
            with self.subTest(attack=name):
                self.attack(name, pf, expect)

        with self.subTest(attack="set the clock back"):
            p = self.run_on_copy(days_back=1)
            rs = self.attack("set the clock back a day (daemon on a copy)", p,
                             (0, 0, 0, 0), "flagged: a clock_back row; row"
                             " times kept in order, nothing back-dated")
            self.assertIn("the host clock went back 1 time(s)", rs[1].stdout)
            times = [r["time_ms"] for r in rows_of(p)]
            self.assertEqual(times, sorted(times))

        with self.subTest(attack="copy without the -wal file"):
            rs = self.run_four(RUN.nowal / "audit.db")
            self.assertEqual(rs[3].returncode, 1, rs[3].stdout)
            TamperMatrix.results.append((
                "copy without the -wal file (daemon running)",
                tuple(r.returncode for r in rs),
                [detected_by(r.stdout) if r.returncode else "-" for r in rs],
                "commits still in the WAL are missing"))

    def daemon_on(self, folder, days_back=0):
        d = imtest.Daemon(folder, {"audit": {"seal_interval": "1"}}, start=False)
        if days_back:
            start_faked(d, days_back)
        else:
            d.start()
        inv = d.send([RCPTS[0]])
        d.wait_state(inv, {"sent"})
        d.stop()
        return d

    def rolled_back_and_continued(self):
        """The older copy with its own key file, and the daemon run on it:
        it seals on, with the keys that copy's chain named."""
        w = RUN.dir / "rolledback"
        w.mkdir()
        copy_db(RUN.old / "audit.db", w / "audit.db")
        shutil.copy2(RUN.old / "audit.key", w / "audit.key")
        self.daemon_on(w)
        return w / "audit.db"

    def run_on_copy(self, days_back):
        w = RUN.dir / f"clock-{days_back}"
        w.mkdir()
        copy_db(RUN.db, w / "audit.db")
        shutil.copy2(RUN.dir / "audit.key", w / "audit.key")
        self.daemon_on(w, days_back)
        return w / "audit.db"

    def test_rollback_without_its_key_file_stops_the_daemon(self):
        """The older copy under the CURRENT key file: the key does not
        continue that chain, so the daemon refuses to start."""
        w = RUN.dir / "rolledback-nokey"
        w.mkdir()
        copy_db(RUN.old / "audit.db", w / "audit.db")
        shutil.copy2(RUN.dir / "audit.key", w / "audit.key")
        d = imtest.Daemon(w, {}, start=False)
        with self.assertRaises(AssertionError) as cm:
            d.start()
        self.assertIn("does not continue", str(cm.exception))


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
        self.assertIn("seals ok", RUN.readonly_running[0].stdout)

    def test_reader_after_daemon_stopped(self):
        pub = client_for_others().parent / "audit.pub"
        self.check_reader([audit(RUN.db, *c, user=AUDITOR) for c in
                           (["verify", "--key", str(pub)], ["list"], ["head"],
                            ["export", "--format", "csv"])])

    def test_reader_on_a_copy_without_wal_files(self):
        sub = RUN.dir / "copy-ro"
        sub.mkdir(exist_ok=True)
        os.chmod(sub, 0o755)
        p = sub / "audit.db"
        shutil.copy(RUN.db, p)
        os.chown(p, 0, grp.getgrnam(AUDITOR).gr_gid)
        os.chmod(p, 0o640)
        pub = client_for_others().parent / "audit.pub"
        r = audit(p, "verify", "--key", str(pub), user=AUDITOR)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(str(p) + "-wal"))

    def test_reader_cannot_write(self):
        r = audit(RUN.db, "init", "--key-file", "/tmp/nowhere.key", user=AUDITOR)
        self.assertNotEqual(r.returncode, 0)


class Erasure(Base):
    """GDPR Art. 17 on a copy of the real file: the chain holds keyed
    hashes only; `audit erase` removes the clear address (from the
    file's bytes too), is audited and sealed, and verify from the
    published value, with the anchors, still passes."""

    def test_erase_keeps_the_evidence_valid(self):
        w = RUN.dir / "erase"
        w.mkdir()
        p = copy_db(RUN.db, w / "audit.db")
        shutil.copy2(RUN.dir / "audit.key", w / "audit.key")
        who = RCPTS[1]
        raw = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        in_chain = [r[0] for r in raw.execute("SELECT recipients FROM audit"
                                              " WHERE recipients IS NOT NULL")]
        raw.close()
        self.assertTrue(in_chain)
        self.assertFalse([r for r in in_chain if "@" in r], "an address in the chain")
        n = len([r for r in in_chain if addr_hash(address_key(p), who) in r.split(",")])
        self.assertGreater(n, 0)
        r = audit(p, "erase", "--recipient", who.upper().replace(who.split("@")[0].upper(),
                                                                   who.split("@")[0]),
                  "--key-file", str(w / "audit.key"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"removed from beside {n} row(s)", r.stdout)
        for f in (p, str(p) + "-wal"):
            if os.path.exists(f):
                self.assertNotIn(who.encode(), open(f, "rb").read(), f)
        rows = rows_of(p)
        self.assertEqual(rows[-2]["event"], "erased")
        self.assertEqual(rows[-2]["peer_uid"], os.getuid())
        self.assertNotIn(who, rows[-2]["detail"])
        self.assertEqual(rows[-1]["event"], "sealed")
        self.verify(p, "--anchors", str(RUN.anchors))
        lst = audit(p, "list", "--recipient", who)
        self.assertEqual(lst.returncode, 0, lst.stderr)
        self.assertIn(f"{who} was erased on", lst.stderr)
        self.assertIn(f"the {n} row(s) naming it keep only its keyed hash", lst.stderr)
        self.assertIn("(erased)", lst.stdout)
        self.assertNotIn(who, lst.stdout)
        sub = audit(p, "subject", who)
        self.assertIn(f"{who} was erased on", sub.stderr)
        again = audit(p, "erase", "--recipient", who, "--key-file", str(w / "audit.key"))
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("no clear address to erase", again.stderr)

    def test_erase_reaches_the_queue_and_the_outbox(self):
        """With -c: the queue's finished recipient rows and the outbox
        files of that address go too, counted in the erased row."""
        w = RUN.dir / "erase-all"
        w.mkdir()
        copy_db(RUN.db, w / "audit.db")
        copy_db(RUN.dir / "queue.db", w / "queue.db")
        shutil.copy2(RUN.dir / "audit.key", w / "audit.key")
        shutil.copytree(RUN.dir / "outbox", w / "outbox")
        imtest.write_conf(w / "invitemail.conf", RUN.base_sections(None))
        who = RCPTS[0]
        envs = [f for f in os.listdir(w / "outbox") if f.endswith(".envelope")
                and who in (w / "outbox" / f).read_text()]
        self.assertTrue(envs, "the run wrote no outbox file for the address")
        q = sqlite3.connect(str(w / "queue.db"))
        before = q.execute("SELECT count (*) FROM recipients WHERE address = ?",
                           (who,)).fetchone()[0]
        q.close()
        self.assertGreater(before, 0)
        r = subprocess.run([str(CLIENT), "audit", "-c", str(w / "invitemail.conf"),
                            "erase", "--recipient", who],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"queue: {before} recipient row(s), outbox: {2 * len(envs)} file(s)",
                      r.stdout)
        for f in ("queue.db", "queue.db-wal", "audit.db", "audit.db-wal"):
            if (w / f).exists():
                self.assertNotIn(who.encode(), (w / f).read_bytes(), f)
        self.assertFalse([f for f in os.listdir(w / "outbox")
                          if f.endswith(".envelope")
                          and who in (w / "outbox" / f).read_text()])
        erased = [x for x in rows_of(w / "audit.db") if x["event"] == "erased"]
        self.assertIn(f"queue: {before} recipient row(s)", erased[-1]["detail"])
        self.verify(w / "audit.db", "--anchors", str(RUN.anchors))


class Retention(unittest.TestCase):
    """A real purge: epochs sealed three days ago (the daemon under
    faketime) go at the next start with retention_days = 1, a sealed
    `purged` row says so, and verification from the published value
    still passes through the kept seals."""

    def test_old_sealed_epochs_are_purged_and_verify_passes(self):
        if not os.path.exists(FAKETIME_LIB):
            imtest.skip_or_fail("libfaketime is not installed (Debian: faketime)")
        work = imtest.Workdir(prefix="imretention-")
        try:
            extra = {"audit": {"seal_interval": "3600", "retention_days": "1"}}
            d = imtest.Daemon(work.path, extra, start=False)
            pub = work.path / "audit.pub"
            init(d.conf, pub, faked(3))
            start_faked(d, 3)
            old_id = d.send(RCPTS[:1])
            d.wait_state(old_id, {"sent"})
            self.assertEqual(d.stop(), 0)          # seals the old epoch
            db = work.path / "audit.db"
            self.assertTrue(any(r["invite_id"] == old_id for r in rows_of(db)))
            d.start()                              # purges at start
            imtest.wait_for(lambda: any(r["event"] == "purged" for r in rows_of(db)),
                            timeout=20, what="a purged row")
            new_id = d.send(RCPTS[:1])
            d.wait_state(new_id, {"sent"})
            self.assertEqual(d.stop(), 0)
            after = rows_of(db)
            self.assertFalse(any(r["invite_id"] == old_id for r in after),
                             "rows of the purged epoch are still there")
            self.assertTrue(any(r["invite_id"] == new_id for r in after))
            purged = [r for r in after if r["event"] == "purged"][0]
            self.assertEqual(after[after.index(purged) + 1]["event"], "sealed")
            r = audit(db, "verify", "--key", str(pub))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("were purged (retention)", r.stdout)
            anchors = work.path / "anchors.log"
            anchors_from_log(d.log(), anchors)
            r = audit(db, "verify", "--key", str(pub), "--anchors", str(anchors))
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
                             ("recipients", "recipient_keys"), ("smtp_reply", "smtp_reply"),
                             ("detail", "detail"), ("row_hash", "row_hash"),
                             ("org_unit", "org_unit"), ("seal", "seal"),
                             ("template_name", "template")):
                self.assertEqual(jr[key], row[col], (row["seq"], col))
                self.assertEqual(cr[key], row[col] or "", (row["seq"], col))
            self.assertEqual(jr["peer_uid"], row["peer_uid"])
            self.assertEqual(jr["epoch"], row["epoch"])
            # Clear addresses come from beside the chain, one per hash.
            if row["recipients"]:
                clear = jr["recipients"].split(",")
                self.assertEqual(len(clear), len(row["recipients"].split(",")))
                self.assertTrue(all("@" in a for a in clear), clear)
                self.assertEqual(cr["recipients"], jr["recipients"])

    def test_list_filters(self):
        rows = [json.loads(l) for l in
                audit(RUN.db, "export", "--format", "jsonl").stdout.splitlines()]
        acc = [r for r in rows if r["event"] == "accepted"][0]
        t_mid = rows[len(rows) // 2]["time_ms"]
        since = datetime.datetime.fromtimestamp(t_mid // 1000 + 1, datetime.timezone.utc)
        cases = [
            (["--event", "sent"], lambda r: r["event"] == "sent"),
            (["--booking", "BK-2026-0042"], lambda r: r["booking"] == "BK-2026-0042"),
            (["--staff", "SE2321000016-A1B2"], lambda r: r["staff"] == "SE2321000016-A1B2"),
            (["--recipient", RCPTS[1].split("@")[0] + "@" + RCPTS[1].split("@")[1].upper()],
             lambda r: RCPTS[1] in (r["recipients"] or "").split(",")),
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
