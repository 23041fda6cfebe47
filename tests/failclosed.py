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
  `queued` is delivered exactly as audited and `audit verify` passes.

Every wait is bounded.  Run with Debian's /usr/bin/python3; the last
line is `failclosed: N passed, M failed`.
"""

import os
import sqlite3
import subprocess
import sys
import threading
import time

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
        # transaction for the whole list, no checkpoint could reset the
        # WAL, and each of the 4000 rows written meanwhile made it grow
        # (about 30 MiB here, 400 MiB in the field).
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
                biggest = self.refuse(d, 4000, s)
                self.assertIsNone(reader.poll(), "the reader did not stay paused")
            finally:
                out, _ = reader.communicate(timeout=60)
        finally:
            s.close()
        self.assertEqual(reader.returncode, 0)
        self.assertGreater(out.count(b"\n"), 1500, "the reader saw too few rows")
        print(f"WAL at most {biggest / 1048576:.1f} MiB during the paused read",
              file=sys.stderr)
        # The writer keeps up to 8 MiB after a reset (journal_size_limit).
        self.assertLess(biggest, 12 * 1048576, "the WAL grew under a paused reader")

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


if __name__ == "__main__":
    imtest.main("failclosed", needs_aiosmtpd=False)
