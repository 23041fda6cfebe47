"""integration.py - invitemaild end to end, started as a user would.

A real SMTP server on 127.0.0.1 (tests/system/smtpd.py, aiosmtpd) with STARTTLS
from a throwaway CA and AUTH PLAIN; the real daemon from the build tree;
its real socket; the real client.  Every message the server captures is
checked by an independent parser (Python's email package).
"""

import collections
import os
import pwd
import re
import grp
import signal
import sys
import threading
import email
import email.policy
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS, LINK, answer_get  # noqa: E402

# The routine's block word for word, as sent through the real relay.
NOTICE_TEXTS_SV = [
    "Digitalt när det är möjligt, fysiskt när det behövs "
    "Region Exempel kommer inte att spela in eller spara det digitala mötet. "
    "Region Exempel kan inte styra över hur övriga deltagare hanterar den "
    "information som framkommer vid det digitala mötet. Om du har frågor kring "
    "hur Region Exempel behandlar personuppgifter är du välkommen att kontakta "
    "dataskyddsombud@example.org"]
SIGNATURE_SV = "Region Exempel"


class Base(imtest.DaemonCase):
    def events(self, invite_id=None):
        rows = self.daemon.audit_rows()
        return [(r["event"], r) for r in rows
                if invite_id is None or r["invite_id"] == invite_id]


class SmtpDelivery(Base):
    def test_three_recipients_three_tls_authenticated_transactions(self):
        srv = self.smtpd("--require-tls", "--auth", "relaybot:pw-Ex4mple",
                         "--require-auth")
        d = self.start_daemon(imtest.smtp_conf(srv))
        invite = d.send(RCPTS)
        self.assertRegex(invite, r"^[0-9a-z]{20}$")
        st = d.wait_state(invite, {"sent", "failed"})
        self.assertEqual(st["state"], "sent", st)
        caps = imtest.wait_for(lambda: len(srv.captures()) == 3 and srv.captures(),
                               what="three captured transactions")
        seen = []
        froms = set()
        for meta, eml in caps:
            self.assertEqual(len(meta["rcpt_tos"]), 1, "one recipient per transaction")
            seen += meta["rcpt_tos"]
            self.assertTrue(meta["tls"]["on"], "sent over TLS")
            self.assertEqual(meta["auth_user"], "relaybot")
            self.assertEqual(meta["sni"], "localhost")
            # Each recipient's own return address (VERP, [bounce]): a
            # bounce then names its recipient; the token is not the id.
            self.assertRegex(meta["mail_from"], r"^bounces\+[0-9a-v]{26}@example\.org$")
            self.assertNotIn(invite, meta["mail_from"])
            froms.add(meta["mail_from"])
            for addr in RCPTS:
                self.assertNotIn(addr.encode(), eml, "recipient address in the message")
            path = srv.capture / "check.eml"
            path.write_bytes(eml)
            args = ["--expect-link", LINK, "--to-mode", "none", "--crlf"]
            for t in NOTICE_TEXTS_SV + [SIGNATURE_SV]:
                args += ["--expect-text", t]
            for addr in RCPTS:
                args += ["--forbid", addr]
            r = imtest.parse_check(path, *args)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(sorted(seen), sorted(RCPTS))
        self.assertEqual(len(froms), len(RCPTS), "one return address per recipient")
        # One message, three identical copies.
        self.assertEqual(len({eml for _, eml in caps}), 1)
        evs = [e for e, _ in self.events(invite)]
        self.assertEqual(evs.count("accepted"), 1, evs)
        self.assertEqual(evs.count("sent"), 3, evs)
        acc = [r for e, r in self.events(invite) if e == "accepted"][0]
        self.assertEqual(sorted(acc["recipients"].split(",")), sorted(RCPTS))
        self.assertEqual(acc["staff"], "SE2321000016-A1B2")
        self.assertEqual(acc["booking"], "BK-2026-0042")
        for h in ("link_sha256", "notice_sha256", "template_sha256", "message_sha256"):
            self.assertRegex(acc[h] or "", r"^[0-9a-f]{64}$", h)
        self.assertNotIn(LINK, str(self.daemon.audit_rows()), "link stored in the audit")
        v = d.audit_verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_reload_under_load(self):
        # SIGHUP again and again while four connections keep sending and
        # the relay holds every DATA answer a little, so that each reload
        # finds recipients in flight: every invite answered `queued` is
        # delivered exactly once (a reload is not a crash: nothing in
        # flight is reset and sent again), no `recovered` row is written,
        # every reload is audited, and the daemon stays up (under ASan in
        # contrib/check, a retired delivery used after its free would
        # show here).
        srv = self.smtpd("--auth", "relaybot:pw-Ex4mple", "--fault", "stall-data:0.2")
        d = self.start_daemon(imtest.smtp_conf(srv, {"connections": "2"}))
        req = ("request=send\nlink=%s\nbcc=%s\nbooking=BK-RELOAD\n\n"
               % (LINK, RCPTS[0])).encode()
        acked, stop = [], threading.Event()

        def client():
            s = d.connect()
            try:
                while not stop.is_set() and len(acked) < 150:
                    ans = d.raw(req, sock=s)
                    if answer_get(ans, "status") == "queued":
                        acked.append(answer_get(ans, "id"))
            finally:
                s.close()

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        in_flight_at_reload = 0
        try:
            # Six reloads, spread over at least 30 answers (slow under
            # valgrind, so counted rather than timed), within a bound.
            deadline = time.monotonic() + 120
            for k in range(6):
                while len(acked) < 5 * (k + 1) and time.monotonic() < deadline:
                    time.sleep(0.05)
                # Wait (bounded) until the relay holds a DATA, then reload.
                before = srv.commands().count("DATA")
                until = time.monotonic() + 5
                while (srv.commands().count("DATA") == before
                       and time.monotonic() < until):
                    time.sleep(0.01)
                in_flight_at_reload += srv.commands().count("DATA") > before
                d.proc.send_signal(signal.SIGHUP)
                # Signals that arrive together are one reload: wait for it.
                imtest.wait_for(lambda: d.log().count("templates reloaded") > k,
                                timeout=60, what=f"reload {k + 1}")
            while len(acked) < 36 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            time.sleep(0.2)
            stop.set()
            for t in threads:
                t.join(30)
        self.assertTrue(d.alive(), "the daemon died")
        self.assertGreaterEqual(len(acked), 36, "too little load to mean anything")
        self.assertGreaterEqual(in_flight_at_reload, 3, "reloads found nothing in flight")
        imtest.wait_for(lambda: len(srv.captures()) >= len(acked), timeout=90,
                        what=f"{len(acked)} deliveries")
        for invite in acked:
            imtest.wait_for(lambda: d.status(invite)["state"] == "sent", timeout=30,
                            what=f"invite {invite} sent")
        time.sleep(1)   # a duplicate still on its way would land now
        self.assert_one_capture_each(srv, len(acked))
        events = [e for e, _ in self.events()]
        self.assertEqual(events.count("config_reloaded"), 6, events)
        self.assertEqual(events.count("recovered"), 0, "a reload ran crash recovery")
        self.assertEqual(events.count("sent"), len(acked), "one sent row per invite")
        v = d.audit_verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_reload_while_relay_holds_data(self):
        # Deterministic: the relay holds the answer to the one DATA for
        # 2 s; SIGHUP arrives meanwhile.  The old worker finishes that
        # transaction and records it; the new one must not take the
        # recipient again (the old code re-ran crash recovery, which
        # reset it to deferred, audited `recovered` and sent it twice).
        srv = self.smtpd("--auth", "relaybot:pw-Ex4mple", "--fault", "stall-data:2@1")
        d = self.start_daemon(imtest.smtp_conf(srv))
        invite = d.send(RCPTS[:1])
        imtest.wait_for(lambda: "DATA" in srv.commands(), timeout=10,
                        what="the DATA the relay holds")
        d.proc.send_signal(signal.SIGHUP)
        imtest.wait_for(lambda: "templates reloaded" in d.log(), timeout=20,
                        what="the reload")
        self.assertEqual(d.wait_state(invite, {"sent"})["state"], "sent")
        time.sleep(2.5)   # a second try would have been captured by now
        self.assert_one_capture_each(srv, 1)
        events = [e for e, _ in self.events(invite)]
        self.assertEqual(events, ["accepted", "sent"], events)

    def assert_one_capture_each(self, srv, n):
        caps = srv.captures()
        ids = collections.Counter()
        for _, eml in caps:
            m = re.search(rb"^Message-ID:\s*(\S+)", eml, re.M | re.I)
            self.assertIsNotNone(m, "no Message-ID")
            ids[m.group(1)] += 1
        dups = {k: v for k, v in ids.items() if v > 1}
        self.assertEqual(dups, {}, "invites delivered more than once")
        self.assertEqual(len(caps), n, "captures != invites answered queued")

    def test_no_starttls_gets_no_message(self):
        srv = self.smtpd(cert=None)
        d = self.start_daemon(imtest.smtp_conf(srv))
        invite = d.send(RCPTS[:1])
        st = d.wait_state(invite, {"deferred", "failed", "sent"})
        self.assertEqual(st["state"], "deferred", st)
        self.assertIn("STARTTLS", st["recipients"][0]["reply"])
        self.assertEqual(srv.captures(), [])
        self.assertNotIn("MAIL FROM", srv.commands().upper())
        deferred = [r for e, r in self.events(invite) if e == "deferred"]
        self.assertTrue(deferred and "STARTTLS" in (deferred[0]["smtp_reply"] or ""))

    def test_wrong_certificate_name_gets_no_message(self):
        srv = self.smtpd(cert="server-wrongname")
        d = self.start_daemon(imtest.smtp_conf(srv))
        invite = d.send(RCPTS[:2])
        st = d.wait_state(invite, {"deferred", "failed", "sent"})
        self.assertEqual(st["state"], "deferred", st)
        self.assertEqual(srv.captures(), [])
        self.assertNotIn("MAIL FROM", srv.commands().upper())
        deferred = [r for e, r in self.events(invite) if e == "deferred"]
        # Both recipients deferred (a retry may already have added more).
        self.assertGreaterEqual(len({r["recipients"] for r in deferred}), 2)
        self.assertTrue(all(r["smtp_reply"] for r in deferred))

    def test_permanent_and_temporary_failures_per_recipient(self):
        srv = self.smtpd("--fault", f"rcpt:{RCPTS[1]}:550",
                         "--fault", f"rcpt:{RCPTS[2]}:451@1")
        d = self.start_daemon(imtest.smtp_conf(srv, auth=None))
        invite = d.send(RCPTS)
        def settled():
            st = d.status(invite)
            states = {r["address"]: r["state"] for r in st["recipients"]}
            return states if states[RCPTS[2]] == "sent" else None
        states = imtest.wait_for(settled, timeout=30, what="retry of the 451")
        self.assertEqual(states[RCPTS[0]], "sent")
        self.assertEqual(states[RCPTS[1]], "failed")
        evs = [e for e, _ in self.events(invite)]
        self.assertIn("failed", evs)
        self.assertIn("deferred", evs)
        self.assertEqual(evs.count("sent"), 2)


class FileTransportAndProtocol(Base):
    def setUp(self):
        super().setUp()
        self.start_daemon({"daemon": {"socket_group": "nogroup"}})

    def test_file_transport_writes_eml_and_envelope(self):
        invite = self.daemon.send(RCPTS[:2])
        outbox = self.work.path / "outbox"
        emls = imtest.wait_for(lambda: len(list(outbox.glob("*.eml"))) == 2
                               and sorted(outbox.glob("*.eml")), what="two .eml files")
        for eml in emls:
            env = eml.with_suffix(".envelope").read_text()
            self.assertIn("RCPT TO:<", env)
            r = imtest.parse_check(eml, "--expect-link", LINK, "--crlf",
                                   "--forbid", RCPTS[0], "--forbid", RCPTS[1])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.daemon.wait_state(invite, {"sent"})["state"], "sent")
        self.assertEqual([p for p in outbox.iterdir() if p.name.startswith(".")], [])

    def test_preview_is_the_exact_message_without_sending(self):
        r = self.daemon.cli("preview", "--link", LINK, "--bcc", RCPTS[0], "--lang", "en",
                            "--meeting-time", "2099-12-02T14:00:00+01:00", check=True)
        path = self.work.path / "preview.eml"
        path.write_bytes(r.stdout)
        chk = imtest.parse_check(path, "--expect-link", LINK, "--forbid", RCPTS[0],
                                 "--expect-text", "14:00", "--crlf")
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
        self.assertIn(b"Content-Language: en", r.stdout)
        self.assertFalse((self.work.path / "outbox").exists()
                         and list((self.work.path / "outbox").glob("*.eml")))

    def test_idempotency_key(self):
        extra = ["--idempotency-key", "booking-tool-req-77"]
        a = self.daemon.send(RCPTS[:1], extra=extra)
        b = self.daemon.send(RCPTS[:1], extra=extra)
        self.assertEqual(a, b)
        r = self.daemon.cli("send", "--link", LINK, "--bcc", RCPTS[1], *extra)
        self.assertEqual(r.returncode, 65)
        self.assertIn(b"conflict", r.stderr)
        # The key holds across a restart: the same id, nothing new queued.
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon.start()
        self.assertEqual(self.daemon.send(RCPTS[:1], extra=extra), a)
        r = self.daemon.cli("send", "--link", LINK, "--bcc", RCPTS[1], *extra)
        self.assertIn(b"conflict", r.stderr)
        accepted = [row for row in self.daemon.audit_rows() if row["event"] == "accepted"]
        self.assertEqual(len(accepted), 1)

    def test_status_unknown_id(self):
        r = self.daemon.cli("status", "0123456789abcdefghij")
        self.assertEqual(r.returncode, 65)
        self.assertIn(b"not_found", r.stderr)

    def test_every_refusal_code_over_the_socket(self):
        d = self.daemon
        send = [("request", "send"), ("link", LINK), ("bcc", RCPTS[0])]
        cases = [
            ("malformed", b"request=ping\nno equals sign\n\n", None),
            ("malformed", b"request=ping\r\n\n", None),
            ("line_too_long", b"request=send\nbooking=" + b"x" * 5000 + b"\n\n", None),
            ("request_too_large",
             b"request=send\n" + (b"booking=" + b"y" * 4000 + b"\n") * 17 + b"\n", None),
            ("too_many_attributes", b"request=send\n" + b"bcc=x@example.com\n" * 130 + b"\n",
             None),
            ("unknown_attribute", b"request=send\nsubject=hi\n\n", "subject"),
            ("repeated_attribute", b"request=send\nlink=a\nlink=b\n\n", "link"),
            ("unknown_request", b"request=delete\n\n", "request"),
            ("missing_field", b"link=x\n\n", "request"),
            ("missing_field", b"request=send\nbcc=a@example.com\n\n", "link"),
            ("invalid_value", b"request=send\nlink=" + LINK.encode()
             + b"\nbcc=a@example.com\nbooking=\xff\xfe\n\n", "booking"),
            ("invalid_link", b"request=send\nlink=https://user:pw@meet.example.org/x\n"
             b"bcc=a@example.com\n\n", "link"),
            ("link_not_https", b"request=send\nlink=javascript:alert(1)\nbcc=a@example.com\n\n",
             "link"),
            ("link_host_not_allowed", b"request=send\nlink=https://evil.example.net/x\n"
             b"bcc=a@example.com\n\n", "link"),
            ("invalid_address", b"request=send\nlink=" + LINK.encode()
             + b"\nbcc=a@example.com>\n\n", "bcc"),
            ("address_utf8", "request=send\nlink={}\nbcc=åsa@example.com\n\n".format(LINK)
             .encode(), "bcc"),
            ("no_recipients", b"request=send\nlink=" + LINK.encode() + b"\n\n", None),
            ("too_many_recipients", ("request=send\nlink=" + LINK + "\n" + "".join(
                f"bcc=p{i}@example.com\n" for i in range(11)) + "\n").encode(), None),
            ("unknown_template", b"request=send\nlink=" + LINK.encode()
             + b"\nbcc=a@example.com\ntemplate=nosuch\n\n", "template"),
            ("unknown_lang", b"request=send\nlink=" + LINK.encode()
             + b"\nbcc=a@example.com\nlang=fi\n\n", "lang"),
            ("invalid_meeting_time", b"request=send\nlink=" + LINK.encode()
             + b"\nbcc=a@example.com\nmeeting_time=tomorrow\n\n", "meeting_time"),
            ("meeting_passed", b"request=send\nlink=" + LINK.encode()
             + b"\nbcc=a@example.com\nmeeting_time=2001-01-01T10:00:00+01:00\n\n",
             "meeting_time"),
            ("not_found", b"request=status\nid=0123456789abcdefghij\n\n", None),
            ("invalid_value", b"request=status\nid=../../etc\n\n", "id"),
        ]
        seen = set()
        for code, data, field in cases:
            with self.subTest(code=code, data=data[:40]):
                ans = d.raw(data)
                self.assertEqual(answer_get(ans, "status"), "rejected", ans)
                self.assertEqual(answer_get(ans, "error"), code, ans)
                if field:
                    self.assertEqual(answer_get(ans, "field"), field, ans)
                self.assertTrue(answer_get(ans, "message"))
                seen.add(code)
                self.assertEqual(answer_get(d.request(("request", "ping")), "status"), "ok")
        # conflict: the same key, another request
        k = ("idempotency_key", "k-1")
        self.assertEqual(answer_get(d.request(*send, k), "status"), "queued")
        ans = d.request(("request", "send"), ("link", LINK), ("bcc", RCPTS[1]), k)
        self.assertEqual(answer_get(ans, "error"), "conflict")
        seen.add("conflict")
        # not_authorized: a user that is neither root, the daemon, nor allowed
        nobody = pwd.getpwnam("nobody").pw_uid
        nogroup = grp.getgrnam("nogroup").gr_gid
        ans = d.raw_as(nobody, nogroup, b"request=ping\n\n")
        self.assertEqual(answer_get(ans, "error"), "not_authorized", ans)
        seen.add("not_authorized")
        # timeout: a request started and never finished
        s = d.connect()
        s.sendall(b"request=ping\n")
        ans = imtest.read_answer(s)
        s.close()
        self.assertEqual(answer_get(ans, "error"), "timeout")
        seen.add("timeout")
        # busy: more connections than one uid may hold
        held = [d.connect() for _ in range(64)]
        try:
            extra = d.connect()
            ans = imtest.read_answer(extra)
            extra.close()
            self.assertEqual(answer_get(ans, "error"), "busy")
            seen.add("busy")
        finally:
            for s in held:
                s.close()
        time.sleep(0.2)
        self.assertEqual(answer_get(d.request(("request", "ping")), "status"), "ok")
        self.assertTrue(d.alive())
        # Refusals are audited with their code; none left an invite behind.
        rows = d.audit_rows()
        rejected = {r["error_code"] for r in rows if r["event"] == "rejected"}
        self.assertTrue(seen - {"conflict"} <= rejected | {"conflict"}, rejected)
        accepted = [r for r in rows if r["event"] == "accepted"]
        self.assertEqual(len(accepted), 1)
        self.assertTrue(all(r["peer_uid"] is not None for r in rows
                            if r["event"] == "rejected"
                            and r["error_code"] not in ("busy",)))
        print(f"refusal codes exercised over the socket: {len(seen)}: {sorted(seen)}")

    def test_several_requests_on_one_connection(self):
        s = self.daemon.connect()
        try:
            for _ in range(3):
                ans = self.daemon.raw(b"request=ping\n\n", sock=s)
                self.assertEqual(answer_get(ans, "status"), "ok")
        finally:
            s.close()


class Cancel(Base):
    """invitemail cancel end to end over the real relay."""

    def ics_lines(self, eml):
        msg = email.message_from_bytes(eml, policy=email.policy.default)
        cal = [p for p in msg.walk() if p.get_content_type() == "text/calendar"][0]
        return cal, cal.get_content().replace("\r\n ", "").replace("\r\n", "\n").split("\n")

    def test_cancel_sent_and_stop_pending(self):
        # RCPTS[1] is deferred by the relay (451, every try); the others are sent.
        srv = self.smtpd("--require-tls", "--auth", "relaybot:pw-Ex4mple",
                         "--fault", "rcpt:%s:451" % RCPTS[1])
        d = self.start_daemon(imtest.smtp_conf(srv))
        invite = d.send(RCPTS, extra=("--meeting-time", "2030-12-05T10:00:00Z",
                                      "--duration", "40", "--lang", "en"))
        imtest.wait_for(lambda: len(srv.captures()) == 2, what="two sent")
        imtest.wait_for(lambda: any(r["recipient"].split()[1] == "deferred"
                                    for r in [{"recipient": x} for x in
                                              self.recipient_lines(d, invite)]),
                        what="one deferred")
        _, first = srv.captures()[0]
        _, orig = self.ics_lines(first)
        uid = [l for l in orig if l.startswith("UID:")][0]

        r = d.cli("cancel", invite, check=True)
        out = r.stdout.decode().strip()
        self.assertRegex(out, r"^%s cancelled: 1 stopped, 2 notified by [0-9a-v]{20}$" % invite)
        cancel_id = out.split()[-1]
        caps = imtest.wait_for(lambda: len(srv.captures()) == 4 and srv.captures(),
                               what="two cancellations")
        seen = []
        for meta, eml in caps[2:]:
            seen += meta["rcpt_tos"]
            path = srv.capture / "cancel.eml"
            path.write_bytes(eml)
            args = ["--calendar", "cancel", "--crlf",
                    "--expect-text", "The video meeting (eVisit) with Region Exempel that "
                    "was to start on Thursday 5 December 2030 at 11:00 (Swedish time) is "
                    "cancelled."]
            for addr in RCPTS:
                args += ["--forbid", addr]
            chk = imtest.parse_check(path, *args)
            self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
            cal, lines = self.ics_lines(eml)
            self.assertEqual(cal.get_param("method"), "CANCEL")
            self.assertIn(uid, lines)
            self.assertIn("SEQUENCE:1", lines)
            self.assertIn("METHOD:CANCEL", lines)
            self.assertIn("STATUS:CANCELLED", lines)
            self.assertIn("DTSTART;TZID=Europe/Stockholm:20301205T110000", lines)
            msg = email.message_from_bytes(eml, policy=email.policy.default)
            self.assertTrue(msg["Subject"].startswith("Cancelled: video meeting, "))
        self.assertEqual(sorted(seen), sorted([RCPTS[0], RCPTS[2]]))
        # The deferred one was stopped, never sent.
        lines = self.recipient_lines(d, invite)
        stopped = [l for l in lines if l.startswith(RCPTS[1] + " ")][0]
        self.assertEqual(stopped.split()[1], "failed")
        self.assertIn("cancelled by the sender", stopped)
        time.sleep(2.5)   # past the retry delay: nothing more goes out
        self.assertEqual(len(srv.captures()), 4)
        # Audited on the cancelled invite, with the addresses notified.
        rows = [r for e, r in self.events(invite) if e == "cancelled"]
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(sorted(rows[0]["recipients"].split(",")), sorted([RCPTS[0], RCPTS[2]]))
        self.assertIn("1 recipient(s) stopped, 2 sent a cancellation", rows[0]["detail"])
        # A second cancel sends nothing twice: the same cancellation.
        r = d.cli("cancel", invite, check=True)
        self.assertTrue(r.stdout.decode().strip().endswith(cancel_id), r.stdout)
        time.sleep(1)
        self.assertEqual(len(srv.captures()), 4)

    def recipient_lines(self, d, invite):
        r = d.cli("status", invite, check=True)
        return [l.strip() for l in r.stdout.decode().splitlines()[1:]]

    def test_cancel_before_sending_stops_it(self):
        # Every RCPT deferred: nothing went out, so nothing is sent now.
        srv = self.smtpd("--require-tls", "--auth", "relaybot:pw-Ex4mple",
                         "--fault", "rcpt:%s:451" % RCPTS[0])
        # The retry must not come before the cancel: with the suites'
        # 1 s a slow daemon (valgrind) had it in flight again, and the
        # cancel rightly only notified it.  Past the retry's time,
        # nothing goes out.
        conf = imtest.smtp_conf(srv)
        conf["retry"] = {"first_delay": "5", "max_delay": "5"}
        d = self.start_daemon(conf)
        invite = d.send(RCPTS[:1], extra=("--meeting-time", "2030-12-05T10:00:00Z"))
        d.wait_state(invite, {"deferred"})
        r = d.cli("cancel", invite, check=True)
        self.assertEqual(r.stdout.decode().strip(), "%s cancelled: 1 stopped, 0 notified" % invite)
        self.assertEqual(d.status(invite)["state"], "failed")
        time.sleep(6)
        self.assertEqual(srv.captures(), [])
        self.assertEqual([e for e, _ in self.events(invite)].count("cancelled"), 1)

    def test_cancel_unknown_id(self):
        d = self.start_daemon()
        r = d.cli("cancel", "0" * 20)
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"not_found", r.stderr)
        r = d.cli("cancel", "../etc")
        self.assertEqual(r.returncode, 65, r.stderr)


class Configuration(Base):
    def test_check_config_good(self):
        d = imtest.Daemon(self.work.path, start=False)
        r = d.check_config()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_every_shipped_template_is_installed(self):
        # make install copies only what Makefile.am lists: a template or
        # signature left out is missing from every installed system.
        am = (imtest.SRCDIR / "Makefile.am").read_text()
        listed = set(re.findall(r"((?:templates|signatures)/[\w.-]+\.(?:xhtml|png))", am))
        shipped = {"%s/%s" % (d, p.name) for d in ("templates", "signatures")
                   for p in (imtest.SRCDIR / d).iterdir()
                   if p.suffix in (".xhtml", ".png")}
        self.assertEqual(shipped - listed, set())

    def test_check_config_warns_placeholders(self):
        # The shipped examples work (exit 0) but each is named.
        d = imtest.Daemon(self.work.path, start=False)
        r = d.check_config()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        warnings = [l for l in r.stdout.splitlines() if l.startswith("warning: placeholder: ")]
        for what in ('name is the example "Region Exempel"',
                     "from is in the example domain example.org",
                     "dpo_email is in the example domain example.org",
                     "message_id_domain is the example domain example.org",
                     "link_hosts holds the example host meet.example.org",
                     "link_hosts holds the example host *.video.example.com",
                     "privacy-notice.en.xhtml: translation not yet approved",
                     "privacy-notice.ar.xhtml: translation not yet approved",
                     "logo.png is the generated placeholder logo"):
            self.assertTrue(any(what in w for w in warnings), (what, r.stdout))
        # An organisation's own values, logo and approved notice: silence.
        tpl = self.copy_templates()
        for notice in tpl.glob("privacy-notice.*.xhtml"):
            notice.write_text(notice.read_text().replace(
                "invitemail: translation not approved", "approved 2026-11-30"))
        sig = self.work.path / "sig"
        sig.mkdir()
        for p in (imtest.SRCDIR / "signatures").iterdir():
            (sig / p.name).write_bytes(p.read_bytes())
        with open(sig / "logo.png", "ab") as f:
            f.write(b"own")
        d = imtest.Daemon(self.work.path, {
            "organisation": {"name": "Region Nord", "from": "evisit@region-nord.se",
                             "dpo_email": "dso@region-nord.se"},
            "invite": {"templates_dir": str(tpl), "signatures_dir": str(sig),
                       "link_hosts": "*.video.region-nord.se"}}, start=False)
        r = d.check_config()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("warning", r.stdout + r.stderr)

    def copy_templates(self):
        dst = self.work.path / "tpl"
        dst.mkdir()
        for p in (imtest.SRCDIR / "templates").iterdir():
            (dst / p.name).write_bytes(p.read_bytes())
        return dst

    def test_broken_notice_stops_start(self):
        tpl = self.copy_templates()
        (tpl / "privacy-notice.sv.xhtml").write_text("<html><body><p>broken</body></html>")
        d = imtest.Daemon(self.work.path, {"invite": {"templates_dir": str(tpl)}},
                          start=False)
        r = d.check_config()
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertIn("privacy-notice.sv", r.stdout + r.stderr)
        with self.assertRaises(AssertionError):
            d.start()
        self.assertEqual(d.proc.returncode, 78)

    def test_missing_notice_stops_start(self):
        tpl = self.copy_templates()
        (tpl / "privacy-notice.en.xhtml").unlink()
        d = imtest.Daemon(self.work.path, {"invite": {"templates_dir": str(tpl)}},
                          start=False)
        r = d.check_config()
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)

    def test_cleartext_to_remote_relay_refused(self):
        d = imtest.Daemon(self.work.path, {"transport": {"type": "smtp"},
                                           "smtp": {"host": "smtp.example.org",
                                                    "tls": "none"}}, start=False)
        r = d.check_config()
        self.assertEqual(r.returncode, 78)
        self.assertIn("loopback", r.stdout + r.stderr)

    def test_undisclosed_to_header(self):
        self.start_daemon({"invite": {"to_header": "undisclosed"}})
        r = self.daemon.cli("preview", "--link", LINK, "--bcc", RCPTS[0], check=True)
        path = self.work.path / "p.eml"
        path.write_bytes(r.stdout)
        chk = imtest.parse_check(path, "--to-mode", "undisclosed", "--forbid", RCPTS[0])
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)

    def test_time_in_organisation_zone(self):
        # UTC in, Swedish wall clock out, in the Subject and both parts:
        # an hour on in winter, two in summer; the end from --duration.
        self.start_daemon()
        for when, dur, subject, text in (
                ("2030-12-05T10:00:00Z", "45", "torsdag 5 december 2030 kl. 11.00",
                 "Mötet börjar torsdag 5 december 2030 kl. 11.00 (svensk tid) "
                 "och slutar kl. 11.45."),
                ("2031-06-19T10:00:00Z", None, "torsdag 19 juni 2031 kl. 12.00",
                 "Mötet börjar torsdag 19 juni 2031 kl. 12.00 (svensk tid) "
                 "och slutar kl. 12.30.")):
            args = ["preview", "--link", LINK, "--bcc", RCPTS[0], "--meeting-time", when]
            if dur:
                args += ["--duration", dur]
            r = self.daemon.cli(*args, check=True)
            msg = email.message_from_bytes(r.stdout, policy=email.policy.default)
            self.assertEqual(msg["Subject"], "Inbjudan till videomöte, " + subject)
            path = self.work.path / "t.eml"
            path.write_bytes(r.stdout)
            chk = imtest.parse_check(path, "--expect-text", text)
            self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)

    def test_calendar_entry(self):
        # With a meeting time: invite.ics with start, end, zone, link,
        # unit and the notice, and no recipient address anywhere.
        self.start_daemon()
        r = self.daemon.cli("preview", "--link", LINK, "--bcc", RCPTS[0], "--bcc", RCPTS[1],
                            "--meeting-time", "2030-12-05T10:00:00Z", "--duration", "45",
                            "--unit", "Barnkliniken", check=True)
        path = self.work.path / "cal.eml"
        path.write_bytes(r.stdout)
        chk = imtest.parse_check(path, "--calendar", "publish", "--forbid", RCPTS[0],
                                 "--forbid", RCPTS[1], "--expect-link", LINK)
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)
        msg = email.message_from_bytes(r.stdout, policy=email.policy.default)
        cal = [p for p in msg.walk() if p.get_content_type() == "text/calendar"][0]
        text = cal.get_content().replace("\r\n ", "").replace("\r\n", "\n")
        lines = text.split("\n")
        self.assertIn("DTSTART;TZID=Europe/Stockholm:20301205T110000", lines)
        self.assertIn("DTEND;TZID=Europe/Stockholm:20301205T114500", lines)
        self.assertIn("TZID:Europe/Stockholm", lines)
        self.assertIn("URL:" + LINK, lines)
        self.assertIn("SUMMARY;LANGUAGE=sv:Inbjudan till videomöte\\, Barnkliniken", lines)
        desc = [l for l in lines if l.startswith("DESCRIPTION")][0]
        flat = " ".join(desc.replace("\\n", " ").replace("\\,", ",").split())
        self.assertIn(" ".join(NOTICE_TEXTS_SV[0].split()), flat)
        self.assertIn("Mötet hålls av Barnkliniken.", flat)
        # Without one: no calendar part at all.
        r = self.daemon.cli("preview", "--link", LINK, "--bcc", RCPTS[0], check=True)
        path.write_bytes(r.stdout)
        chk = imtest.parse_check(path, "--calendar", "none")
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)


if __name__ == "__main__":
    if os.geteuid() != 0:
        # The not_authorized case switches to 'nobody'; it needs root.
        print("note: not root, running as uid", os.geteuid(), file=sys.stderr)
    imtest.main("integration")
