"""failclosed.py - the audit is the record: when it cannot be written the
daemon stops promising, and a reader cannot make its files grow.

The real daemon from the build tree, its real socket and client, real
SQLite files.  Cases:

- an audit reader paused in the middle of `invitemail audit list` (its
  standard output a pipe nobody reads) while the daemon writes thousands
  of rows: the audit's WAL stays bounded;
- the audit made unwritable under load (a tiny loop-mounted file system
  filled up when we are root, else the audit file made read-only): sends
  are answered `unavailable`, no recipient is `sent` without its audit
  row, and once the audit can be written again everything answered
  `queued` is delivered exactly as audited and `audit verify` passes;
  the monthly report (text, HTML, CSV) shows the period with the
  figures of its `audit_resumed` row.

Every wait is bounded.  Run with Debian's /usr/bin/python3; the last
line is `failclosed: N passed, M failed`.
"""

import collections
import csv
import datetime
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import LINK, RCPTS, answer_get  # noqa: E402

# A refusal is one audit row in its own commit when one client sends
# them one after the other: the quickest way to make the WAL grow.
BAD = ("request=send\nlink=http://meet.example.org/x\nbcc=%s\n\n" % RCPTS[0]).encode()


def wal_size(db):
    try:
        return os.stat(str(db) + "-wal").st_size
    except FileNotFoundError:
        return 0


def read_marks(db, pid):
    """The WAL read marks (bytes 123-127 of -shm, SQLite's WAL_READ_LOCK)
    that process pid holds a lock on: a reader in a read transaction."""
    ino = os.stat(str(db) + "-shm").st_ino
    marks = []
    with open("/proc/locks") as f:
        for line in f:
            p = line.split()
            if "->" in p:
                continue
            if (len(p) >= 8 and p[4] == str(pid) and p[5].endswith(f":{ino}")
                    and 120 <= int(p[6]) <= 127):
                marks.append(int(p[6]))
    return marks


class Readers(imtest.DaemonCase):
    workdir_prefix = "imfailclosed-"

    def refuse(self, d, n, sock):
        biggest = 0
        for i in range(n):
            ans = d.raw(BAD, sock=sock)
            self.assertEqual(answer_get(ans, "status"), "rejected", ans)
            if i % 50 == 0:
                biggest = max(biggest, wal_size(d.dir / "audit.db"))
        return max(biggest, wal_size(d.dir / "audit.db"))

    def test_paused_audit_list_does_not_grow_the_wal(self):
        # `invitemail audit list | less`, left paused: the reader blocks
        # writing to a pipe nobody reads.  Before, it held one read
        # transaction for the whole list (a lock on a WAL read mark in
        # -shm), no checkpoint could reset the WAL, and each of the 6000
        # rows written meanwhile made it grow (about 78 MiB; 400 MiB in
        # the field).
        d = self.start_daemon()
        audit = d.dir / "audit.db"
        s = d.connect()
        try:
            self.refuse(d, 1500, s)
            reader = subprocess.Popen([str(imtest.CLIENT), "audit", "list", "--db",
                                       str(audit)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
            try:
                time.sleep(1.0)   # it fills the pipe and blocks
                self.assertIsNone(reader.poll(), "the reader did not block")
                marks = read_marks(audit, reader.pid)
                biggest = self.refuse(d, 6000, s)
                self.assertIsNone(reader.poll(), "the reader did not stay paused")
            finally:
                out, _ = reader.communicate(timeout=60)
        finally:
            s.close()
        self.assertEqual(reader.returncode, 0)
        self.assertGreater(out.count(b"\n"), 1500, "the reader saw too few rows")
        print(f"WAL at most {biggest / 1048576:.1f} MiB during the paused read",
              file=sys.stderr)
        self.assertEqual(marks, [], "the paused reader holds a WAL snapshot")
        # Checkpoints that lag on a busy machine let the WAL pass its
        # 8 MiB; past 32 MiB the daemon truncates it (nobody holds it).
        self.assertLess(biggest, 40 * 1048576, "the WAL grew under a paused reader")

    def test_foreign_reader_is_reported_and_the_wal_reset_after(self):
        # A reader we do not control (a sqlite3 shell left in a read
        # transaction) keeps the WAL from being reset: the daemon says so
        # in its log with the size once it passes its limit (32 MiB),
        # and once the reader is gone a TRUNCATE checkpoint brings it
        # back down.
        d = self.start_daemon()
        audit = d.dir / "audit.db"
        s = d.connect()
        try:
            self.refuse(d, 10, s)
            db = sqlite3.connect(f"file:{audit}?mode=ro", uri=True, isolation_level=None)
            db.execute("BEGIN")
            db.execute("SELECT count(*) FROM audit").fetchone()
            self.refuse(d, 4000, s)
            grown = wal_size(audit)
            imtest.wait_for(lambda: "over its limit" in d.log(), timeout=20,
                            what="the warning about the WAL")
            db.close()
            # The writes go on: the next checkpoints find no old snapshot.
            # Under 8 MiB: a plain reset keeps 8 MiB (journal_size_limit),
            # so this is the TRUNCATE checkpoint's work.
            deadline = time.monotonic() + 30
            while wal_size(audit) >= 8 * 1048576 and time.monotonic() < deadline:
                self.refuse(d, 20, s)
            after = wal_size(audit)
        finally:
            s.close()
        self.assertGreater(grown, 32 * 1048576, "the reader did not hold the WAL")
        self.assertLess(after, 8 * 1048576, "the WAL was not reset")
        self.assertRegex(d.log(), r"WAL of \S+audit\.db is \d+\.\d MiB, over its limit")
        print(f"WAL {grown / 1048576:.1f} MiB with the reader, {after / 1048576:.1f}"
              " MiB after", file=sys.stderr)

    def test_foreign_connection_closing_keeps_the_daemons_wal(self):
        # A sqlite3 shell (here Python's) opens the audit read-write,
        # reads, and closes.  Each database connection of the daemon holds
        # a SHARED lock on the file; opening a second connection used to
        # open and close a descriptor of the file first, which dropped
        # them all (POSIX locks are per process), so the shell thought it
        # was the last user, checkpointed and deleted -wal and -shm: the
        # daemon's later rows went to a deleted WAL, invisible to every
        # reader and lost at a crash.
        d = self.start_daemon()
        audit = d.dir / "audit.db"
        s = d.connect()
        try:
            self.refuse(d, 20, s)
            before = len(self.exported(audit))
            db = sqlite3.connect(str(audit))
            db.execute("SELECT count(*) FROM audit").fetchone()
            db.close()
            self.assertTrue(os.path.exists(str(audit) + "-wal"), "the WAL was deleted")
            self.refuse(d, 20, s)
        finally:
            s.close()
        self.assertEqual(len(self.exported(audit)), before + 20,
                         "rows written after the foreign close are not seen")

    def exported(self, audit):
        r = subprocess.run([str(imtest.CLIENT), "audit", "export", "--format", "jsonl",
                            "--db", str(audit)], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()


class AuditDiskFull(imtest.DaemonCase):
    """The audit's file system fills up under load, then has room again."""

    workdir_prefix = "imfailclosed-"

    def setUp(self):
        super().setUp()
        self.mounted = None

    def tearDown(self):
        # The daemon stops first, then the file system goes, then the
        # folder (a mount point cannot be removed while mounted).
        try:
            if self.daemon is not None:
                self.daemon.stop()
        finally:
            if self.mounted:
                subprocess.run(["umount", "-l", str(self.mounted)], check=False)
            super().tearDown()

    def audit_folder(self):
        """A tiny file system of its own (tmpfs, root only) for the audit,
        or None when we cannot mount one."""
        mnt = self.work.path / "auditfs"
        mnt.mkdir()
        # IM_FAILCLOSED_NO_MOUNT=1 tries the fallback as root too.
        if os.geteuid() != 0 or os.environ.get("IM_FAILCLOSED_NO_MOUNT"):
            return None
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs",
                            str(mnt)], capture_output=True)
        if r.returncode != 0:
            return None
        self.mounted = mnt
        return mnt

    def break_audit(self, mnt, audit):
        """Makes every append fail; returns how to undo it."""
        if mnt is not None:
            # Disk full: fill what is left of the tmpfs.
            filler = mnt / "filler"
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            return lambda: filler.unlink()
        # Fallback without root: another process holds the audit's write
        # lock, so each append fails (SQLITE_BUSY) after the busy timeout.
        db = sqlite3.connect(str(audit), isolation_level=None, timeout=10)
        db.execute("BEGIN IMMEDIATE")
        return lambda: (db.execute("ROLLBACK"), db.close())

    def rows(self, audit):
        r = subprocess.run([str(imtest.CLIENT), "audit", "export", "--format", "jsonl",
                            "--db", str(audit)], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines() if line]

    def test_audit_full_under_load(self):
        mnt = self.audit_folder()
        audit = (mnt or self.work.path) / "audit.db"
        print("audit failure by", "a full tmpfs" if mnt else "a held write lock",
              file=sys.stderr)
        # The relay holds the first invite's DATA 2 s: the disk fills while
        # it is in flight, so its outcome meets an audit that cannot be
        # written.  The load starts once the disk is full: the audit's
        # WAL is then still short and every append must grow it (a WAL
        # reset before would let appends rewrite its pages in place for
        # a while, full disk or not).
        srv = self.smtpd("--auth", "relaybot:pw-Ex4mple", "--fault", "stall-data:2@1")
        conf = imtest.smtp_conf(srv, {"connections": "2"})
        conf["daemon"] = {"audit_db": str(audit)}
        d = self.start_daemon(conf)
        answers, stop, n = [], threading.Event(), iter(range(100000))

        def send(s):
            addr = "gast.%d@example.com" % next(n)
            req = ("request=send\nlink=%s\nbcc=%s\nbooking=BK-FULL\n\n"
                   % (LINK, addr)).encode()
            ans = d.raw(req, sock=s)
            answers.append((time.monotonic(), addr, answer_get(ans, "status"),
                            answer_get(ans, "error"), answer_get(ans, "id")))

        def client():
            s = d.connect()
            try:
                while not stop.is_set():
                    send(s)
                    time.sleep(0.01)
            finally:
                s.close()

        threads = [threading.Thread(target=client) for _ in range(3)]
        first = d.connect()
        try:
            send(first)
        finally:
            first.close()
        self.assertEqual(answers[0][2], "queued", answers)
        try:
            imtest.wait_for(lambda: "DATA" in srv.commands(), timeout=20,
                            what="the first DATA")
            undo = self.break_audit(mnt, audit)
            broken_at = time.monotonic()
            for t in threads:
                t.start()
            imtest.wait_for(lambda: sum(a[3] == "unavailable" for a in answers) >= 5,
                            timeout=30, what="sends answered unavailable")
            self.assertIn("audit cannot be written", d.log())
            time.sleep(2.5)   # the held DATA is answered meanwhile
            held = self.held_back(d, audit, answers)
            h = d.cli("health", "--json")
            checks = {c["name"]: c for c in json.loads(h.stdout)["checks"]}
            self.assertEqual(h.returncode, 2, h.stdout)
            self.assertEqual(checks["audit"]["level"], "CRITICAL", checks)
            undo()
            fixed_at = time.monotonic()
            imtest.wait_for(lambda: "audit can be written again" in d.log(), timeout=30,
                            what="the audit to resume")
            imtest.wait_for(lambda: sum(a[2] == "queued" and a[0] > fixed_at + 0.5
                                        for a in answers) >= 5,
                            timeout=30, what="sends queued again")
        finally:
            stop.set()
            for t in threads:
                if t.is_alive():
                    t.join(30)
        self.assertTrue(d.alive(), "the daemon died")
        queued = {a[1]: a[4] for a in answers if a[2] == "queued"}
        refused = {a[1] for a in answers if a[3] == "unavailable"}
        other = [a for a in answers if a[2] != "queued" and a[3] != "unavailable"]
        self.assertEqual(other, [], "answers other than queued/unavailable")
        self.assertTrue(any(a[3] == "unavailable" and a[0] > broken_at for a in answers))
        for invite in queued.values():
            imtest.wait_for(lambda: d.status(invite)["state"] == "sent", timeout=60,
                            what=f"invite {invite} sent")
        time.sleep(1)
        self.check_record(d, audit, srv, queued, refused, held)

    def held_back(self, d, audit, answers):
        """While the audit is full: no recipient is `sent` in the queue
        without its `sent` row, and the one whose DATA was answered while
        full is still `sending` (its outcome waits in memory)."""
        sent_rows = {(r["invite_id"], r["recipients"]) for r in self.rows(audit)
                     if r["event"] == "sent"}
        q = sqlite3.connect(f"file:{d.dir / 'queue.db'}?mode=ro", uri=True)
        try:
            sent = set(q.execute("SELECT invite_id, address FROM recipients"
                                 " WHERE state = 'sent'"))
            sending = set(q.execute("SELECT invite_id, address FROM recipients"
                                    " WHERE state = 'sending'"))
        finally:
            q.close()
        self.assertEqual(sent - sent_rows, set(), "sent in the queue without its row")
        self.assertGreaterEqual(len(sending), 1, "no outcome held back")
        return sending

    def check_record(self, d, audit, srv, queued, refused, held):
        rows = self.rows(audit)
        caps = collections.Counter()
        for meta, _ in srv.captures():
            for a in meta["rcpt_tos"]:
                caps[a] += 1
        accepted = collections.Counter(r["invite_id"] for r in rows
                                       if r["event"] == "accepted")
        sent = collections.Counter(r["recipients"] for r in rows if r["event"] == "sent")
        withdrawn = {r["invite_id"] for r in rows
                     if r["event"] == "rejected" and r["invite_id"]}
        # Every invite answered queued: one accepted row, one sent row,
        # one delivery.
        for addr, invite in queued.items():
            self.assertEqual(accepted[invite], 1, f"accepted rows of {invite}")
            self.assertEqual(sent[addr], 1, f"sent rows for {addr} ({len(rows)} rows,"
                             f" last {rows[-1]['seq']}; {d.status(invite)})")
            self.assertEqual(caps[addr], 1, f"deliveries to {addr}")
        # Nothing refused was sent, and nothing was sent that no one
        # asked for: deliveries are exactly the sent rows.
        for addr in refused:
            self.assertEqual(caps[addr], 0, f"{addr} was refused but delivered")
        self.assertEqual(dict(caps), dict(sent), "deliveries differ from the sent rows")
        # An accepted row of an invite not queued was withdrawn.
        for invite in set(accepted) - set(queued.values()):
            self.assertIn(invite, withdrawn, f"accepted {invite} neither queued nor withdrawn")
        # The outcomes held while the audit was full were recorded once.
        for invite, addr in held:
            self.assertEqual(sent[addr], 1, f"held outcome of {invite}")
        events = [r["event"] for r in rows]
        self.assertEqual(events.count("audit_resumed"), 1, "no audit_resumed row")
        self.assertEqual(events.count("recovered"), 0)
        resumed = next(r for r in rows if r["event"] == "audit_resumed")
        self.assertRegex(resumed["detail"], r"\d+ request\(s\) refused unavailable")
        self.check_report(audit, resumed, refused)
        # No `audit init` here, so no seal to prove: the chain.
        v = subprocess.run([str(imtest.CLIENT), "audit", "verify", "--chain-only",
                            "--db", str(audit)],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        print(f"{len(queued)} queued, {len(refused)} refused unavailable,"
              f" {len(held)} outcome(s) held", file=sys.stderr)

    def check_report(self, audit, resumed, refused):
        """`audit report` for the month of the row: the period, as the
        gate wrote it, in text, HTML and CSV, and counted at the top."""
        m = re.fullmatch(r"the audit could not be written from (\S+) for (\d+) s: (\d+)"
                         r" request\(s\) refused unavailable, (\d+) refusal\(s\) answered"
                         r" without their row; delivery paused", resumed["detail"])
        self.assertIsNotNone(m, resumed["detail"])
        secs, n_refused, n_unaudited = m.group(2), m.group(3), m.group(4)
        self.assertGreaterEqual(int(n_refused), 5)
        # The report's zone without a configuration file.
        zone = zoneinfo.ZoneInfo("Europe/Stockholm")
        since = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        end = datetime.datetime.fromtimestamp(resumed["time_ms"] / 1000, datetime.timezone.utc)
        month = end.astimezone(zone).strftime("%Y-%m")
        a = since.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        b = end.astimezone(zone).strftime("%Y-%m-%d %H:%M")

        def report(fmt):
            r = subprocess.run([str(imtest.CLIENT), "audit", "--db", str(audit), "report",
                                "--month", month, "--format", fmt, "--lang", "en"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout

        text = report("text")
        self.assertIn("\nPeriods the audit could not be written: 1\n", text)
        self.assertIn(f"\n  {a} .. {b}  {secs} s  Refused unavailable {n_refused}"
                      f"  Refusals without their row {n_unaudited}\n", text)
        html = report("html")
        self.assertRegex(html, r"<th>Periods the audit could not be written</th></tr>\n"
                         r"<tr>(<td>\d+</td>){7}<td>1</td></tr>")
        self.assertIn(f"<tr><td>{a}</td><td>{b}</td><td>{secs}</td><td>{n_refused}</td>"
                      f"<td>{n_unaudited}</td></tr>", html)
        rows = list(csv.reader(io.StringIO(report("csv"), newline="")))
        self.assertEqual([r for r in rows if r[0] == "audit_unwritable"],
                         [["audit_unwritable", a, "", "", "", "", "", "", "1", a, b, secs,
                           n_refused, n_unaudited, ""]])
        self.assertEqual(rows[-1][8], "1")
        print(f"report: {n_refused} refused unavailable, {n_unaudited} without their row"
              f" in {secs} s ({len(refused)} unavailable answers seen)", file=sys.stderr)


if __name__ == "__main__":
    imtest.main("failclosed")
