"""life_cycle.py - personal data over its life, as a data-protection
officer meets it: retention of the queue and the outbox, the evidence
rows, subject access, the monthly report.

The daemon runs under libfaketime (preloaded into the daemon only, the
clock set back) to make data that is old by the real clock, then once
on the real clock, whose start-up retention pass must remove it.

The fixture month (class Month) is made by the real daemon, started
four times under fixed clocks three months back: one invite on the last
evening of the month before that the relay defers (it goes out on day 3),
three on day 3 (two units, an IDN address),
on day 4 a relay that refuses one address and defers another until it
expires, plus a refusal; then nothing until day 20 (an outage), one
invite.  Then one start on the real clock purges the queue and outbox.
The report's numbers, outages and notice versions, subject access in
both address forms, and the HTML in headless Chromium are checked
against what was sent.
Run with Debian's /usr/bin/python3 (aiosmtpd lives there).
"""

import calendar
import csv
import datetime
import io
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS, CLIENT  # noqa: E402

OLD_LINK = "https://meet.example.org/evisit/room-old-1"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def need_faketime():
    if not os.path.exists(FAKETIME_LIB):
        imtest.skip_or_fail("libfaketime is not installed (Debian: faketime)")


def faked_env(faketime):
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": faketime, "TZ": "UTC",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")
            + ":verify_asan_link_order=0"}


def start_at(daemon, faketime=None):
    """Starts the daemon with libfaketime preloaded when faketime is set
    ("-40d", "@2026-10-05 09:00:00" in UTC): only the daemon's clock
    moves."""
    env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": faketime or "", "TZ": "UTC",
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
        d = imtest.Daemon(work.path, {"queue": {"retention_days": "30"}}, start=False)
        try:
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
            d.stop()                              # never left running
            work.close()

    def test_retention_zero_keeps_everything(self):
        need_faketime()
        work = imtest.Workdir(prefix="imretain0-")
        d = imtest.Daemon(work.path, {"queue": {"retention_days": "0"}}, start=False)
        try:
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
            d.stop()
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


# ---- the fixture month ---------------------------------------------------

IDN = "anna@bücher.example"            # U-label form
IDN_ASCII = "anna@xn--bcher-kva.example"
REFUSED_RCPT = "fel@example.com"       # the relay answers 550
SLOW_RCPT = "sen@example.org"          # the relay answers 451 until expiry
LATE_RCPT = "senare@example.org"       # deferred in the month before
CHROMIUM = shutil.which("chromium")


def month_back(n):
    """(year, month) n months before the real now."""
    t = datetime.date.today()
    m = t.year * 12 + (t.month - 1) - n
    return m // 12, m % 12 + 1


class Fixture:
    """The month, made once for every test of Month."""

    def __init__(self):
        need_faketime()
        y, m = month_back(3)
        self.month = f"{y:04d}-{m:02d}"
        py, pm = month_back(4)
        last = (datetime.date(y, m, 1) - datetime.timedelta(days=1)).day
        self.prev_evening = f"{py:04d}-{pm:02d}-{last:02d} 20:00:00"
        self.work = imtest.Workdir(prefix="immonth-")
        self.dir = self.work.path
        self.db = self.dir / "audit.db"
        self.sent = {}                    # day -> [(unit, n_rcpts)]
        self.smtpd = None
        self.daemons = []                 # stopped at close, whatever happened
        try:
            self.build()
        except BaseException:
            self.close()
            raise

    def day(self, d, hms="09:00:00"):
        return f"@{self.month}-{d:02d} {hms}"

    def daemon(self, extra=None):
        cfg = {"audit": {"seal_interval": "3600"},
               "organisation": {"unit": "Vårdcentralen"}}
        for k, v in (extra or {}).items():
            cfg.setdefault(k, {}).update(v)
        d = imtest.Daemon(self.dir, cfg, start=False)
        self.daemons.append(d)
        return d

    def send(self, d, day, rcpts, unit=None, booking="BK-2026-0042"):
        extra = ["--unit", unit] if unit else []
        args = ["send", "--link", imtest.LINK, "--booking", booking,
                "--staff", "SE2321000016-A1B2", *extra]
        for r in rcpts:
            args += ["--bcc", r]
        r = d.cli(*args, check=True)
        self.sent.setdefault(day, []).append((unit or "Vårdcentralen", len(rcpts)))
        return r.stdout.decode().strip()

    def build(self):
        d = self.daemon()
        env = dict(os.environ, **faked_env("@" + self.prev_evening))
        init = subprocess.run([str(CLIENT), "audit", "init", "-c", str(d.conf)],
                              capture_output=True, text=True, timeout=60, env=env)
        assert init.returncode == 0, init.stderr
        # Clear text to a loopback relay: the test CA's certificates are
        # not valid yet three months back.
        self.smtpd = imtest.Smtpd(self.dir, "--fault", f"rcpt:{REFUSED_RCPT}:550",
                                  "--fault", f"rcpt:{SLOW_RCPT}:451",
                                  "--fault", f"rcpt:{LATE_RCPT}:451", cert=None)
        smtp = imtest.smtp_conf(self.smtpd, {"tls": "none", "host": "127.0.0.1"},
                                auth=None)
        # The last evening of the month before: an invite the relay defers,
        # sent on day 3 (its outcome belongs to the month, its unit too).
        d = self.daemon({**smtp, "retry": {"max_age": "2592000"}})
        start_at(d, "@" + self.prev_evening)
        late = self.send(d, 0, [LATE_RCPT])
        d.wait_state(late, {"deferred"})
        assert d.stop() == 0
        d = self.daemon()
        # Day 3: two units, the IDN address among three recipients.
        start_at(d, self.day(3))
        self.idn_first = self.send(d, 3, [RCPTS[0], IDN, RCPTS[1]], "Hudkliniken")
        ids = [self.idn_first, self.send(d, 3, RCPTS[1:2], "Barnkliniken"),
               self.send(d, 3, RCPTS[2:3], "Barnkliniken")]
        for i in ids + [late]:
            d.wait_state(i, {"sent"})
        assert d.stop() == 0
        self.outbox_after_day3 = len(list((self.dir / "outbox").glob("*.eml")))
        # Day 4: a relay that refuses one address for good and defers
        # another until the invite expires; and one refusal.
        d = self.daemon({**smtp, "retry": {"max_age": "3"}})
        start_at(d, self.day(4))
        self.failing = self.send(d, 4, [REFUSED_RCPT, RCPTS[0]], "Barnkliniken",
                                 booking="BK-2026-0099")
        slow = self.send(d, 4, [SLOW_RCPT], "Hudkliniken", booking="BK-2026-0100")
        ans = d.request(("request", "send"), ("link", "http://meet.example.org/x"),
                        ("bcc", RCPTS[0]), ("booking", "BK-2026-0101"))
        assert imtest.answer_get(ans, "error") == "link_not_https", ans
        d.wait_state(self.failing, {"failed"})
        d.wait_state(slow, {"failed"}, timeout=30)    # expired counts as failed
        assert d.stop() == 0
        self.smtpd.stop()
        # Nothing until day 20: an outage.  One invite to the IDN address.
        d = self.daemon()
        start_at(d, self.day(20))
        self.idn_second = self.send(d, 20, [IDN_ASCII])
        d.wait_state(self.idn_second, {"sent"})
        assert d.stop() == 0
        self.queue_before = self.count_invites()
        self.outbox_before = len(list((self.dir / "outbox").iterdir()))
        # Today, on the real clock: retention takes the month's data.
        start_at(d)
        self.retention = imtest.wait_for(
            lambda: [r for r in d.audit_rows() if r["event"] == "retention"],
            what="a retention row")
        assert d.stop() == 0
        self.queue_after = self.count_invites()
        self.outbox_after = sorted(p.name for p in (self.dir / "outbox").iterdir())

    def count_invites(self):
        import sqlite3
        with sqlite3.connect(f"file:{self.dir / 'queue.db'}?mode=ro", uri=True) as c:
            return c.execute("SELECT count(*) FROM invites WHERE length(message) > 0"
                             ).fetchone()[0]

    def audit(self, *args):
        r = subprocess.run([str(CLIENT), "audit", "--db", str(self.db), *args],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        return r.stdout

    def close(self):
        for d in self.daemons:
            d.stop()
        if self.smtpd:
            self.smtpd.stop()
        self.work.close()


FIX = None


def setUpModule():
    global FIX
    if os.path.exists(FAKETIME_LIB):
        FIX = Fixture()


def tearDownModule():
    if FIX is not None:
        FIX.close()


class Month(unittest.TestCase):
    def setUp(self):
        need_faketime()

    def csv_rows(self, *extra):
        out = FIX.audit("report", "--month", FIX.month, "--format", "csv", *extra)
        text = out.decode("utf-8-sig")
        return text, list(csv.reader(io.StringIO(text, newline=""),
                                     delimiter=";" if "--sep" in extra else ","))

    def test_report_counts_per_day_and_unit(self):
        text, rows = self.csv_rows()
        self.assertEqual(rows[0], ["kind", "key", "invites", "recipients", "sent",
                                   "failed", "expired", "refused", "audit_unwritable",
                                   "from", "to", "seconds", "refused_unavailable",
                                   "refusals_without_row", "note"])
        self.assertEqual({len(r) for r in rows}, {15})
        by = {(r[0], r[1]): [int(x) for x in r[2:8]] for r in rows[1:]}
        # The audit could be written all month: no period, counted 0.
        self.assertEqual([r for r in rows if r[0] == "audit_unwritable"], [])
        self.assertEqual(rows[-1][:2] + rows[-1][8:], ["total", FIX.month, "0"] + [""] * 6)
        def day(n):
            return by[("day", f"{FIX.month}-{n:02d}")]
        # Day 3: 3 invites, 5 recipients, all written to the outbox, and
        # the one deferred since the month before.
        self.assertEqual(day(3), [3, 5, 6, 0, 0, 0])
        # Day 4: 2 invites, 3 recipients; 1 sent, 1 failed, 1 expired; 1 refusal.
        self.assertEqual(day(4), [2, 3, 1, 1, 1, 1])
        self.assertEqual(day(20), [1, 1, 1, 0, 0, 0])
        self.assertEqual(sum(v[0] for k, v in by.items() if k[0] == "day"), 6)
        self.assertEqual(by[("total", FIX.month)], [6, 9, 8, 1, 1, 1])
        self.assertEqual(by[("unit", "Hudkliniken")], [2, 4, 3, 0, 1, 0])
        self.assertEqual(by[("unit", "Barnkliniken")], [3, 4, 3, 1, 0, 0])
        # The late one counts for the unit of its accepted row.
        self.assertEqual(by[("unit", "Vårdcentralen")], [1, 1, 2, 0, 0, 0])
        self.assertNotIn(("unit", "(ingen enhet)"), by)
        # The invite of the evening before belongs to the month before.
        self.assertEqual(len([k for k in by if k[0] == "day"]),
                         calendar.monthrange(*map(int, FIX.month.split("-")))[1])

    def test_report_csv_for_a_swedish_spreadsheet(self):
        raw = FIX.audit("report", "--month", FIX.month, "--format", "csv", "--sep", ";")
        self.assertTrue(raw.startswith(b"\xef\xbb\xbf\"kind\";\"key\";"))
        self.assertTrue(raw.endswith(b"\r\n"))
        self.assertIn("Vårdcentralen".encode(), raw)

    def test_report_text_outages_failures_versions(self):
        out = FIX.audit("report", "--month", FIX.month, "--lang", "en").decode()
        m = FIX.month
        # The outage across the month boundary, and the one of days 4-20.
        self.assertRegex(out, r"  %s \d\d:\d\d \.\. %s-03 \d\d:\d\d" %
                         (FIX.prev_evening[:10], m))
        self.assertRegex(out, r"  %s-04 \d\d:\d\d \.\. %s-20 \d\d:\d\d  230[34]\d min" % (m, m))
        fails = [l for l in out.splitlines()
                 if re.match(r"  \d{4}-\d\d-\d\d \d\d:\d\d (failed|expired) ", l)]
        self.assertEqual(len(fails), 2, out)
        self.assertTrue(any("booking=BK-2026-0099" in l and "unit=Barnkliniken" in l
                            and "staff=SE2321000016-A1B2" in l and "550" in l for l in fails))
        self.assertTrue(any("booking=BK-2026-0100" in l and " expired " in l for l in fails))
        self.assertRegex(out, r"\n  2026-12 +6  ")
        self.assertRegex(out, r"link_not_https +1\n")
        self.assertIn("the chain is intact", out)
        self.assertNotIn("Partial month", out)
        self.assertIn("\nPeriods the audit could not be written: 0\n", out)
        self.assertIn("\nPeriods the audit could not be written\n  (none)\n", out)
        # No address in a report.
        for a in RCPTS + [IDN, IDN_ASCII, REFUSED_RCPT, SLOW_RCPT, LATE_RCPT]:
            self.assertNotIn(a, out)

    def test_report_says_partial_month(self):
        y, m = month_back(4)
        out = FIX.audit("report", "--month", f"{y:04d}-{m:02d}", "--lang", "en").decode()
        self.assertIn("Partial month: the audit log begins", out)
        out = FIX.audit("report", "--month", datetime.date.today().strftime("%Y-%m"),
                        "--lang", "en").decode()
        self.assertIn("Partial month: the month is not over", out)

    def test_subject_in_both_address_forms(self):
        got = {}
        for form in (IDN, IDN_ASCII, "anna@BÜCHER.Example"):
            out = FIX.audit("subject", form, "--format", "jsonl").decode()
            got[form] = [json.loads(l) for l in out.splitlines()]
            for other in RCPTS + [REFUSED_RCPT, SLOW_RCPT, LATE_RCPT]:
                self.assertNotIn(other, out, "a co-recipient shown")
        self.assertEqual(got[IDN], got[IDN_ASCII])
        self.assertEqual(got[IDN], got["anna@BÜCHER.Example"])
        ids = [r["invite_id"] for r in got[IDN]]
        self.assertEqual(ids, [FIX.idn_first, FIX.idn_second])
        first = got[IDN][0]
        self.assertEqual((first["unit"], first["outcome"], first["other_recipients"],
                          first["notice_version"], first["booking"]),
                         ("Hudkliniken", "sent", 2, "2026-12", "BK-2026-0042"))
        self.assertTrue(first["time"].startswith(f"{FIX.month}-03T"))
        text = FIX.audit("subject", IDN).decode()
        self.assertIn("also written " + IDN_ASCII, text)
        # The local part is matched as written.
        none = FIX.audit("subject", "Anna@bücher.example", "--format", "csv").decode()
        self.assertEqual(len(none.strip().splitlines()), 1)

    def test_retention_of_queue_and_outbox(self):
        self.assertEqual(FIX.queue_before, 7)
        self.assertEqual(FIX.queue_after, 0)
        self.assertGreaterEqual(FIX.outbox_before, 2 * 7)
        self.assertEqual(FIX.outbox_after, [])
        self.assertEqual(FIX.retention[0]["detail"],
                         "older than 30 days: queue 7 invites (10 recipients; 0 kept as"
                         " idempotency tombstones), outbox %d files" % FIX.outbox_before)

    def test_bad_arguments_are_refused(self):
        cases = [["report", "--month", "2026-13"], ["report", "--month", "26-01"],
                 ["report", "--month", FIX.month, "--format", "pdf"],
                 ["report", "--month", FIX.month, "--lang", "de"],
                 ["report", "--month", FIX.month, "--format", "csv", "--sep", "|"],
                 ["subject", "not-an-address"], ["subject", "a@b\x01c.example"],
                 ["subject", IDN, "--format", "xml"]]
        for args in cases:
            with self.subTest(args=args):
                r = subprocess.run([str(CLIENT), "audit", "--db", str(FIX.db), *args],
                                   capture_output=True, timeout=60)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertEqual(r.stdout, b"")

    def test_no_address_or_link_in_the_daemon_log(self):
        log = (FIX.dir / "invitemaild.log").read_text(errors="replace")
        self.assertIn("retention:", log)
        for s in RCPTS + [IDN, IDN_ASCII, REFUSED_RCPT, SLOW_RCPT, LATE_RCPT,
                          imtest.LINK, "BK-2026-0099"]:
            self.assertNotIn(s, log)

    def test_list_hides_seals_unless_all(self):
        plain = FIX.audit("list").decode()
        every = FIX.audit("list", "--all").decode()
        self.assertNotIn(" sealed ", plain)
        self.assertIn(" sealed ", every)
        self.assertEqual(len(every.splitlines()) - len(plain.splitlines()),
                         every.count(" sealed "))

    def test_html_in_chromium(self):
        if CHROMIUM is None:
            imtest.skip_or_fail("chromium is not installed (Debian: chromium)")
        html = FIX.audit("report", "--month", FIX.month, "--format", "html").decode()
        # Self-contained: nothing fetched, nothing run.
        self.assertNotRegex(html, r"(?i)<script|<link|\bsrc=|url\(|@import")
        self.assertEqual(re.findall(r"https?://[^\"]*", html), ["http://www.w3.org/2000/svg"])
        self.assertIn("<svg", html)
        # The summary: 6 invites, 9 recipients, 8 sent, 1 failed, 1 expired,
        # 1 refused; outages counted; no period the audit could not be
        # written.
        self.assertRegex(html, r'<table class="summary">\n<tr><th>Inbjudningar</th>'
                         r'.*\n<tr><td>6</td><td>9</td><td>8</td><td>1</td><td>1</td>'
                         r'<td>1</td><td>[1-9]</td><td>0</td></tr>')
        page = FIX.dir / "report.html"
        page.write_text(html)
        shot, console = chromium_shot(page)
        self.assertEqual(console, [])
        self.assertFalse(png_is_blank(shot), "the report rendered blank")
        # The checks can fail: a blank page is blank, a console error is seen.
        empty = FIX.dir / "empty.html"
        empty.write_text("<!DOCTYPE html><html><body></body></html>")
        self.assertTrue(png_is_blank(chromium_shot(empty)[0]))
        noisy = FIX.dir / "noisy.html"
        noisy.write_text("<!DOCTYPE html><html><body><p>x</p>"
                         "<script>console.error('seen')</script></body></html>")
        self.assertTrue(chromium_shot(noisy)[1])


def chromium_shot(page):
    """A headless Chromium screenshot of page (PNG bytes) and the console
    lines it logged."""
    png = page.with_suffix(".png")
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
                        "--window-size=1000,1400", f"--screenshot={png}",
                        page.as_uri()], capture_output=True, text=True, timeout=120)
    assert png.exists(), r.stderr[-2000:]
    console = [l for l in r.stderr.splitlines() if ":CONSOLE" in l]
    return png.read_bytes(), console


def png_is_blank(data):
    """True when the PNG's pixels hold (nearly) one colour: decodes the
    IDAT stream and counts distinct byte values."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return len(set(zlib.decompress(idat))) < 16


if __name__ == "__main__":
    imtest.main("life_cycle", needs_aiosmtpd=False)
