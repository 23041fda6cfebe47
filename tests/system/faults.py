"""faults.py - the fault matrix: invitemaild against a misbehaving relay.

The real daemon from the build tree, [transport] type=smtp, talks to
tests/system/smtpd.py on 127.0.0.1 (STARTTLS with a throwaway CA, AUTH PLAIN),
which misbehaves on request (--fault; "@N" makes a fault fire only the
first N times, so the same server behaves on the retry).  Each case
checks, through the real client, every recipient's end state
(`invitemail status --json`), the audit rows
(`invitemail audit export --format jsonl`) and what the server captured,
and, for temporary failures, that the retry delivers.

Retry settings are short ([retry] first_delay=1, max_delay=2) and every
wait is bounded: no case sleeps for minutes.  Run with Debian's
/usr/bin/python3 (aiosmtpd); the last line is `faults: N passed, M failed`.
"""

import collections
import signal
import sqlite3
import datetime
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS, LINK  # noqa: E402

R1, R2, R3 = RCPTS
AUTH = "relaybot:pw-Ex4mple"
FINAL = {"sent", "failed", "expired"}


def iso_seconds(text):
    """Unix seconds of a status next_try such as 2026-11-25T21:27:34Z."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class FaultBase(unittest.TestCase):
    """One relay and one daemon per case, both stopped in tearDown."""

    def setUp(self):
        self.work = imtest.Workdir(prefix="imfaults-")
        self.srv = None
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.stop()
            log = self.daemon.log()
            for secret in RCPTS + [LINK]:
                self.assertNotIn(secret, log, "personal data in the daemon's log")
        if self.srv is not None:
            self.srv.stop()
        self.work.close()

    def start(self, *faults, smtp=None, retry=None, server_args=()):
        args = ["--auth", AUTH, "--require-tls", "--require-auth", *server_args]
        for f in faults:
            args += ["--fault", f]
        self.srv = imtest.Smtpd(self.work.path, *args)
        extra = imtest.smtp_conf(self.srv, {"connections": "1", **(smtp or {})})
        extra["retry"] = {"first_delay": "1", "max_delay": "2", "max_age": "600",
                          **(retry or {})}
        self.daemon = imtest.Daemon(self.work.path, extra)
        return self.daemon

    # --- reading the outcome -------------------------------------------
    def final(self, invite, timeout=30):
        """Waits until every recipient is final; returns the status."""
        def done():
            st = self.daemon.status(invite)
            return st if all(r["state"] in FINAL for r in st["recipients"]) else None
        return imtest.wait_for(done, timeout=timeout, step=0.2,
                               what="every recipient in a final state")

    def states(self, st):
        return {r["address"]: r["state"] for r in st["recipients"]}

    def rcpt(self, st, addr):
        return next(r for r in st["recipients"] if r["address"] == addr)

    def rows(self, invite):
        """Per-recipient audit rows of this invite, in order."""
        return [r for r in self.daemon.audit_rows()
                if r["invite_id"] == invite and r["event"] != "accepted"]

    def events(self, invite):
        """{address: [event, ...]} from the audit."""
        out = collections.defaultdict(list)
        for r in self.rows(invite):
            out[r["recipients"]].append(r["event"])
        return dict(out)

    def captured(self):
        """{address: transactions captured}; each must hold one recipient."""
        count = collections.Counter()
        for meta, _ in self.srv.captures():
            self.assertEqual(len(meta["rcpt_tos"]), 1, "one recipient per transaction")
            self.assertTrue(meta["tls"]["on"], "sent over TLS")
            count[meta["rcpt_tos"][0]] += 1
        return dict(count)

    def check_audit_chain(self):
        r = self.daemon.audit_verify()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def assert_retried_then_sent(self, invite, who, reply, others_sent=True):
        """who were deferred once with reply, then sent; the rest sent at
        once; each address captured exactly once."""
        st = self.final(invite)
        self.assertEqual(st["state"], "sent", st)
        ev = self.events(invite)
        for addr in RCPTS:
            want = ["deferred", "sent"] if addr in who else ["sent"]
            self.assertEqual(ev.get(addr), want, f"audit of {addr}: {ev}")
            self.assertEqual(self.rcpt(st, addr)["attempts"], len(want), st)
        for r in self.rows(invite):
            if r["event"] == "deferred":
                self.assertIn(reply, r["smtp_reply"] or "", r)
            else:
                self.assertTrue((r["smtp_reply"] or "").startswith("250"), r)
        self.assertEqual(imtest.wait_for(lambda: len(self.captured()) == 3
                                         and self.captured(), what="3 captures"),
                         {a: 1 for a in RCPTS})
        self.check_audit_chain()


class FaultMatrix(FaultBase):
    def test_rcpt_451_for_one_of_three(self):
        d = self.start(f"rcpt:{R2}:451@1")
        inv = d.send(RCPTS)
        self.assert_retried_then_sent(inv, {R2}, "451 test fault")
        # The other two were not held back: sent in the first session,
        # before the deferred one's retry.
        rows = self.rows(inv)
        first_sent = max(r["time_ms"] for r in rows
                         if r["event"] == "sent" and r["recipients"] != R2)
        retry = [r for r in rows if r["recipients"] == R2][1]
        self.assertLess(first_sent, retry["time_ms"])

    def test_rcpt_550_for_one_of_three(self):
        d = self.start(f"rcpt:{R2}:550")
        inv = d.send(RCPTS)
        st = self.final(inv)
        self.assertEqual(self.states(st), {R1: "sent", R2: "failed", R3: "sent"})
        self.assertEqual(st["state"], "failed")
        bad = self.rcpt(st, R2)
        self.assertEqual(bad["attempts"], 1)
        self.assertTrue(bad["reply"].startswith("550 test fault"), bad)
        ev = self.events(inv)
        self.assertEqual(ev, {R1: ["sent"], R2: ["failed"], R3: ["sent"]})
        time.sleep(2.5)  # past first_delay + max_delay: final means final
        self.assertEqual(self.events(inv), ev)
        self.assertEqual(self.srv.commands().count(f"RCPT TO:<{R2}>"), 1)
        self.assertEqual(self.captured(), {R1: 1, R3: 1})
        self.check_audit_chain()

    def test_data_451(self):
        d = self.start("data:451@3")
        inv = d.send(RCPTS)
        self.assert_retried_then_sent(inv, set(RCPTS), "451 test fault")

    def test_data_554(self):
        d = self.start("data:554@1")
        inv = d.send(RCPTS)
        st = self.final(inv)
        states = self.states(st)
        self.assertEqual(sorted(states.values()), ["failed", "sent", "sent"], st)
        loser = next(a for a, s in states.items() if s == "failed")
        self.assertTrue(self.rcpt(st, loser)["reply"].startswith("554 test fault"))
        self.assertEqual(self.events(inv),
                         {a: ["failed" if a == loser else "sent"] for a in RCPTS})
        time.sleep(2.5)
        self.assertEqual(self.rcpt(self.daemon.status(inv), loser)["attempts"], 1)
        self.assertEqual(self.captured(), {a: 1 for a in RCPTS if a != loser})
        self.check_audit_chain()

    def test_greeting_421(self):
        d = self.start("greeting:421@1")
        inv = d.send(RCPTS)
        self.assert_retried_then_sent(inv, set(RCPTS), "421 test fault")

    def test_connection_dropped_in_data(self):
        d = self.start("drop-in-data@1")
        inv = d.send(RCPTS)
        self.assert_retried_then_sent(inv, set(RCPTS), "connection lost")

    def test_server_stalls_past_timeout(self):
        d = self.start("stall:6@1", smtp={"timeout": "2"})
        t0 = time.monotonic()
        inv = d.send(RCPTS)
        self.assert_retried_then_sent(inv, set(RCPTS), "timed out")
        self.assertLess(time.monotonic() - t0, 12, "the stall held a worker too long")

    def test_server_stalls_after_data(self):
        # The relay may have taken the message when our timeout ends the
        # wait for its answer: at least once, never lost.
        d = self.start("stall-data:5@1", smtp={"timeout": "2"})
        inv = d.send(RCPTS)
        st = self.final(inv)
        self.assertEqual(st["state"], "sent", st)
        ev = self.events(inv)
        self.assertEqual(sorted(len(e) for e in ev.values()), [2, 2, 2], ev)
        for addr in RCPTS:
            self.assertEqual(ev[addr][-1], "sent")
        caps = imtest.wait_for(lambda: len(self.captured()) == 3 and self.captured(),
                               what="3 captures")
        for addr in RCPTS:
            self.assertIn(caps[addr], (1, 2))
        self.check_audit_chain()

    def test_relay_caps_messages_per_connection(self):
        # The relay takes two messages per connection, then answers the
        # next MAIL FROM with 421 and hangs up.  That recipient is
        # deferred; the ones never tried in the session go out at once
        # on a new connection, with no attempt counted against them.
        five = ["tolk.%d@example.com" % i for i in range(5)]
        d = self.start("per-connection:2")
        inv = d.send(five)
        st = self.final(inv)
        self.assertEqual(st["state"], "sent", st)
        ev = self.events(inv)
        self.assertEqual(sorted(ev.values()),
                         [["deferred", "sent"]] + [["sent"]] * 4, ev)
        deferred = [a for a, e in ev.items() if e[0] == "deferred"]
        for r in self.rows(inv):
            if r["event"] == "deferred":
                self.assertIn("421", r["smtp_reply"] or "", r)
        for a in five:
            self.assertEqual(self.rcpt(st, a)["attempts"], 2 if a in deferred else 1, st)
        caps = imtest.wait_for(lambda: len(self.captured()) == 5 and self.captured(),
                               what="5 captures")
        self.assertEqual(caps, {a: 1 for a in five})
        peers = {line.split()[0] for line in self.srv.commands().splitlines()
                 if "MAIL FROM" in line.upper()}
        self.assertGreaterEqual(len(peers), 3, "the relay's cap needs three connections")
        self.check_audit_chain()

    def test_stop_opens_no_new_session(self):
        # One message per connection, and the first waits 3 s for the
        # answer to its DATA.  SIGTERM meanwhile: that transaction ends
        # (within the stop bound), no new connection is opened for the
        # other four, and they stay queued for the next start.
        five = ["tolk.%d@example.com" % i for i in range(5)]
        d = self.start("per-connection:1", "stall-data:3@1", smtp={"timeout": "20"})
        inv = d.send(five)
        imtest.wait_for(lambda: "DATA" in self.srv.commands(), timeout=10,
                        what="the first DATA")
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(30), 0)
        time.sleep(0.5)
        self.assertEqual(len(self.srv.captures()), 1)
        peers = {line.split()[0] for line in self.srv.commands().splitlines()
                 if "EHLO" in line.upper()}
        self.assertEqual(len(peers), 1, "a new connection after SIGTERM")
        db = sqlite3.connect(str(d.dir / "queue.db"))
        try:
            states = sorted(r[0] for r in db.execute(
                "SELECT state FROM recipients WHERE invite_id = ?", (inv,)))
        finally:
            db.close()
        self.assertEqual(states.count("sent"), 1, states)
        self.assertEqual(len(states), 5, states)
        # The next start sends the other four.
        d.start()
        self.assertEqual(self.final(inv)["state"], "sent")

    def test_stalled_connection_does_not_hold_back_new_work(self):
        # The first connection waits 8 s for the answer to its DATA; an
        # invite queued meanwhile goes out on a second connection within
        # about DELIVERY_SLOW_BATCH_MS, not after the stall.
        d = self.start("stall-data:8@1", smtp={"connections": "2", "timeout": "20"})
        first = d.send(RCPTS[:1])
        imtest.wait_for(lambda: "DATA" in self.srv.commands(), timeout=10,
                        what="the first DATA")
        time.sleep(1.2)
        t0 = time.monotonic()
        second = d.send(RCPTS[1:2])
        st = d.wait_state(second, {"sent"}, timeout=20)
        took = time.monotonic() - t0
        self.assertEqual(st["state"], "sent", st)
        self.assertLess(took, 5, "the new invite waited for the stalled connection")
        self.assertNotEqual(d.status(first)["state"], "sent",
                            "the stall should still be running")
        self.assertEqual(self.final(first)["state"], "sent")
        self.check_audit_chain()

    def test_starttls_handshake_fails(self):
        d = self.start("tls-fail@1")
        inv = d.send(RCPTS)
        self.assert_retried_then_sent(inv, set(RCPTS), "TLS handshake failed")
        log = self.srv.commands()
        self.assertEqual(log.count("STARTTLS"), 2, log)

    def test_tls13_barrier_refused(self):
        # The NOOP sent after a TLS 1.3 handshake (the ticket barrier)
        # answered 421: nothing is sent, the retry delivers.
        d = self.start("noop:421@1")
        inv = d.send(RCPTS)
        self.assert_retried_then_sent(inv, set(RCPTS), "421 test fault for NOOP")


class HostileRelay(FaultBase):
    """A relay that lies or stalls on purpose (issue 9, points 1 and 2)."""

    def start_hostile(self, fault, auth, tls12=False, smtp=None):
        args = ["--fault", fault, "--require-tls"]
        if auth:
            args += ["--auth", AUTH, "--require-auth"]
        if tls12:
            args += ["--tls-max", "1.2"]
        self.srv = imtest.Smtpd(self.work.path, *args)
        user, _, password = AUTH.partition(":")
        extra = imtest.smtp_conf(self.srv, {"connections": "1", **(smtp or {})},
                                 auth=(user, password) if auth else None)
        extra["retry"] = {"first_delay": "1", "max_delay": "2", "max_age": "600"}
        self.daemon = imtest.Daemon(self.work.path, extra)
        return self.daemon

    def check_injection_refused(self, auth, tls12):
        # Every connection answers STARTTLS with "220" plus plaintext
        # replies (EHLO, [AUTH 235,] MAIL, RCPT, 354, 250 ACCEPTED) in one
        # write, and inside TLS refuses every MAIL.  The old code took the
        # injected lines as the answers and recorded "sent".
        fault = "starttls-inject:auth" if auth else "starttls-inject"
        d = self.start_hostile(fault, auth, tls12)
        inv = d.send(RCPTS[:2])
        def settled():
            ev = self.events(inv)
            return (any("sent" in e for e in ev.values())
                    or (len(ev) == 2 and all(len(e) >= 2 for e in ev.values())))
        imtest.wait_for(settled, timeout=30, what="two attempts per recipient")
        for addr, events in self.events(inv).items():
            self.assertNotIn("sent", events, f"{addr}: recorded sent")
        st = d.status(inv)
        self.assertEqual(st["state"], "deferred", st)
        d.stop()
        ev = self.events(inv)
        for addr, events in ev.items():
            self.assertNotIn("sent", events, f"{addr}: {ev}")
            self.assertEqual(set(events), {"deferred"}, ev)
        for r in self.rows(inv):
            self.assertIn("STARTTLS injection", r["smtp_reply"] or "", r)
        self.assertIn("STARTTLS injection", d.log(), "not in the operational log")
        log = self.srv.commands().upper()
        self.assertEqual(log.count("STARTTLS"), log.count("EHLO"), log)
        for verb in ("MAIL FROM", "RCPT TO", "DATA", "AUTH"):
            self.assertNotIn(verb, log, f"the relay received {verb}")
        self.assertEqual(self.srv.captures(), [])
        self.check_audit_chain()

    def test_starttls_injection_tls13(self):
        self.check_injection_refused(auth=False, tls12=False)

    def test_starttls_injection_tls12(self):
        self.check_injection_refused(auth=False, tls12=True)

    def test_starttls_injection_tls13_auth(self):
        self.check_injection_refused(auth=True, tls12=False)

    def test_starttls_injection_tls12_auth(self):
        self.check_injection_refused(auth=True, tls12=True)

    def test_dripping_greeting_costs_one_worker_the_deadline(self):
        # The first connection's greeting never ends ("220-drip" every
        # 2 s, inside timeout = 5, which libESMTP restarts at each line).
        # Another invite goes out meanwhile on a second connection; the
        # first is deferred by the session deadline (8 x 5 s) within 60 s
        # of its request, and the retry delivers it.
        d = self.start_hostile("drip-greeting:2@1", auth=True,
                               smtp={"connections": "2", "timeout": "5"})
        t0 = time.monotonic()
        first = d.send(RCPTS[:1])
        time.sleep(2)
        second = d.send(RCPTS[1:2])
        st = d.wait_state(second, {"sent"}, timeout=20)
        self.assertEqual(st["state"], "sent", st)
        self.assertLess(time.monotonic() - t0, 20, "the drip held back other work")
        imtest.wait_for(lambda: self.events(first).get(RCPTS[0]), timeout=70,
                        step=0.5, what="the dripped invite's first outcome")
        took = time.monotonic() - t0
        print(f"dripping greeting: deferred {took:.1f} s after the request",
              file=sys.stderr)
        self.assertLess(took, 60, "deferred too late")
        self.assertGreater(took, 35, "deferred before the deadline")
        st = self.final(first, timeout=30)
        self.assertEqual(st["state"], "sent", st)
        self.assertEqual(self.events(first), {RCPTS[0]: ["deferred", "sent"]})
        deferred = [r for r in self.rows(first) if r["event"] == "deferred"]
        self.assertIn("deadline", deferred[0]["smtp_reply"] or "")
        self.assertIn("deadline", d.log())
        self.check_audit_chain()

    def test_dripping_data_answer_is_cut_at_the_deadline(self):
        # The answer to the end of DATA drips ("250-drip" every 0.5 s,
        # timeout = 2): deferred after the deadline (16 s), not sent; the
        # retry delivers (the relay may have taken it: at least once).
        d = self.start_hostile("drip-data:0.5@1", auth=True, smtp={"timeout": "2"})
        t0 = time.monotonic()
        inv = d.send(RCPTS[:1])
        imtest.wait_for(lambda: self.events(inv).get(RCPTS[0]), timeout=40,
                        step=0.5, what="the first outcome")
        took = time.monotonic() - t0
        print(f"dripping DATA answer: deferred {took:.1f} s after the request",
              file=sys.stderr)
        self.assertLess(took, 16 + 2 * 2 + 5, "the drip outlived the deadline")
        self.assertEqual(self.final(inv)["state"], "sent")
        self.assertEqual(self.events(inv), {RCPTS[0]: ["deferred", "sent"]})
        deferred = [r for r in self.rows(inv) if r["event"] == "deferred"]
        self.assertIn("deadline", deferred[0]["smtp_reply"] or "")
        self.check_audit_chain()


class RetryPolicy(FaultBase):
    def deferred_rows(self, invite, addr, n, timeout):
        return imtest.wait_for(
            lambda: (lambda rows: rows if len(rows) >= n else None)(
                [r for r in self.rows(invite) if r["recipients"] == addr]),
            timeout=timeout, step=0.2, what=f"{n} attempts")

    def test_backoff_doubles_up_to_max_delay(self):
        d = self.start(f"rcpt:{R1}:451")
        inv = d.send(RCPTS)
        rows = self.deferred_rows(inv, R1, 4, timeout=20)[:4]
        self.assertEqual([r["event"] for r in rows], ["deferred"] * 4)
        # first_delay=1, max_delay=2: the waits are 1, 2, 2 seconds.  The
        # queue counts whole seconds and the worker wakes at the due time,
        # so each gap is within a second below and a little above.
        gaps = [(b["time_ms"] - a["time_ms"]) / 1000 for a, b in zip(rows, rows[1:])]
        for gap, delay in zip(gaps, [1, 2, 2]):
            self.assertGreaterEqual(gap, delay - 1.0, gaps)
            self.assertLessEqual(gap, delay + 1.5, gaps)
        self.assertGreater(gaps[1] + gaps[2], gaps[0] * 2 - 0.5, gaps)
        st = d.status(inv)
        r1 = self.rcpt(st, R1)
        self.assertEqual(st["state"], "deferred")
        self.assertGreaterEqual(r1["attempts"], 4)
        self.assertTrue(r1["reply"].startswith("451 test fault"), r1)
        last = [r for r in self.rows(inv) if r["recipients"] == R1][-1]
        if r1["state"] == "deferred" and last["event"] == "deferred":
            wait = iso_seconds(r1["next_try"]) - last["time_ms"] / 1000
            self.assertGreater(wait, 0.9, r1)    # max_delay 2, never more
            self.assertLess(wait, 2.1, r1)
        self.assertEqual(self.states(st)[R2], "sent")
        self.assertEqual(self.states(st)[R3], "sent")

    def test_backoff_counts_from_the_failure(self):
        # A session that ends by timeout takes seconds; the retry must
        # still wait first_delay after that failure, not after the
        # moment the batch was claimed (else a stalling relay is retried
        # at once, again and again).
        d = self.start("stall:5@1", smtp={"timeout": "2"},
                       retry={"first_delay": "2", "max_delay": "2"})
        inv = d.send([R1])
        self.final(inv, timeout=20)
        rows = [r for r in self.rows(inv) if r["recipients"] == R1]
        self.assertEqual([r["event"] for r in rows], ["deferred", "sent"], rows)
        gap = (rows[1]["time_ms"] - rows[0]["time_ms"]) / 1000
        # 2 s, less at most 1 s of whole-second rounding in the queue.
        self.assertGreaterEqual(gap, 1.0, f"retried {gap:.2f} s after the failure")

    def test_expires_at_max_age(self):
        d = self.start(f"rcpt:{R1}:451", retry={"max_age": "3"})
        t0 = time.time()
        inv = d.send(RCPTS)
        st = self.final(inv, timeout=15)
        self.assertEqual(self.states(st), {R1: "expired", R2: "sent", R3: "sent"})
        ev = self.events(inv)[R1]
        self.assertEqual(ev[-1], "expired", ev)
        self.assertTrue(set(ev[:-1]) <= {"deferred"}, ev)
        expired = [r for r in self.rows(inv) if r["event"] == "expired"]
        self.assertEqual([r["recipients"] for r in expired], [R1])
        self.assertLessEqual(expired[0]["time_ms"] / 1000, t0 + 3 + 1.5)
        self.assertTrue(self.rcpt(st, R1)["reply"].startswith("451"), st)
        self.check_audit_chain()

    def test_expires_at_meeting_time(self):
        d = self.start(f"rcpt:{R1}:451")
        meeting = int(time.time()) + 5
        when = datetime.datetime.fromtimestamp(meeting, datetime.timezone.utc)
        inv = d.send(RCPTS, extra=("--meeting-time", when.strftime("%Y-%m-%dT%H:%M:%SZ")))
        st = self.final(inv, timeout=15)
        self.assertEqual(self.states(st), {R1: "expired", R2: "sent", R3: "sent"})
        r1_rows = [r for r in self.rows(inv) if r["recipients"] == R1]
        self.assertEqual(r1_rows[-1]["event"], "expired")
        self.assertGreaterEqual(len(r1_rows), 2, r1_rows)
        for r in r1_rows:
            # No try at or after the meeting's start, and it gave up by then.
            self.assertLess(r["time_ms"] / 1000, meeting + 1.0, r)
        time.sleep(max(0.0, meeting + 1.5 - time.time()))
        self.assertEqual(len([r for r in self.rows(inv) if r["recipients"] == R1]),
                         len(r1_rows), "tried again after expiry")
        self.check_audit_chain()


if __name__ == "__main__":
    imtest.main("faults")
