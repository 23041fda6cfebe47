"""bounces.py - DSNs (RFC 3464) reach the invite through `invitemail bounce`.

The real daemon delivers an invite to the file transport (its
.envelope files show each recipient's MAIL FROM, the return address
LOCAL+TOKEN@DOMAIN, as a relay would see it), then DSNs written the way
Postfix, Exim and Exchange write them (tests/data/dsn/) are piped into
the real client, fed as the documented ways do: a Postfix alias (the
envelope recipient in $ORIGINAL_RECIPIENT), a Postfix pipe transport
(--recipient), Exim (the token from Envelope-To and To).  Checked: exit
codes, `status` and `status --json`, the audit rows, and that forged,
broken and huge messages change nothing.
"""

import os
import random
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS  # noqa: E402

FIXTURES = imtest.SRCDIR / "tests" / "data" / "dsn"
TOKEN_RE = re.compile(r"^MAIL FROM:<bounces\+([0-9a-v]{26})@example\.org>$", re.M)


class Bounces(imtest.DaemonCase):
    def setUp(self):
        super().setUp()
        self.start_daemon()
        self.invite = self.daemon.send(RCPTS)
        st = self.daemon.wait_state(self.invite, {"sent", "failed"})
        self.assertEqual(st["state"], "sent", st)
        self.tokens = []
        for i in range(len(RCPTS)):
            env = (self.work.path / "outbox" / f"{self.invite}.{i}.envelope").read_text()
            m = TOKEN_RE.search(env)
            self.assertIsNotNone(m, env)
            self.tokens.append(m.group(1))

    def dsn(self, name, token, rcpt):
        text = (FIXTURES / name).read_text()
        return text.replace("@TOKEN@", token).replace("@RCPT@", rcpt).encode()

    def bounce(self, data, *args, env=None):
        e = {k: v for k, v in os.environ.items()
             if k not in ("ORIGINAL_RECIPIENT", "RECIPIENT")}
        e.update(env or {})
        return subprocess.run([str(imtest.CLIENT), "--socket", str(self.daemon.socket),
                               "bounce", *args], input=data, capture_output=True,
                              timeout=60, env=e)

    def rcpt_state(self, i):
        return self.daemon.status(self.invite)["recipients"][i]

    def events(self, event):
        return [r for r in self.daemon.audit_rows() if r["event"] == event]

    def assert_unchanged(self):
        st = self.daemon.status(self.invite)
        self.assertEqual(st["state"], "sent", st)
        self.assertEqual([r["state"] for r in st["recipients"]], ["sent"] * len(RCPTS))
        self.assertEqual(self.events("bounced") + self.events("delayed"), [])

    # ---- the return addresses ------------------------------------------
    def test_each_recipient_has_its_own_unguessable_return_address(self):
        self.assertEqual(len(set(self.tokens)), len(RCPTS))
        for t in self.tokens:
            self.assertNotIn(t, self.invite)
            self.assertNotIn(self.invite[:9], t)
        # Nothing of the token reaches the message the recipient gets.
        for i in range(len(RCPTS)):
            eml = (self.work.path / "outbox" / f"{self.invite}.{i}.eml").read_bytes()
            self.assertNotIn(self.tokens[i].encode(), eml)

    # ---- real DSNs -------------------------------------------------------
    def test_postfix_bounce_through_the_alias(self):
        # local(8) runs `|/usr/bin/invitemail bounce` with the envelope
        # recipient in $ORIGINAL_RECIPIENT.
        t = self.tokens[0]
        r = self.bounce(self.dsn("postfix-failed.eml", t, RCPTS[0]),
                        env={"ORIGINAL_RECIPIENT": f"bounces+{t}@example.org"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split(), [self.invite, "bounced"])
        rc = self.rcpt_state(0)
        self.assertEqual(rc["state"], "bounced")
        self.assertTrue(rc["reply"].startswith("5.1.1 smtp; 550 5.1.1"), rc)
        self.assertIn("User unknown in virtual mailbox table", rc["reply"])
        self.assertEqual([x["state"] for x in self.daemon.status(self.invite)["recipients"]],
                         ["bounced", "sent", "sent"])
        self.assertEqual(self.daemon.status(self.invite)["state"], "bounced")
        text = self.daemon.cli("status", self.invite, check=True).stdout.decode()
        self.assertIn(f"{RCPTS[0]} bounced 1 - 5.1.1 smtp;", text)
        rows = self.events("bounced")
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["invite_id"], self.invite)
        self.assertEqual(rows[0]["recipients"], RCPTS[0])
        self.assertTrue(rows[0]["smtp_reply"].startswith("5.1.1 "), rows[0])
        self.assertEqual(self.daemon.audit_verify().returncode, 0)

    def test_exim_bounce_token_from_the_headers(self):
        t = self.tokens[1]
        r = self.bounce(self.dsn("exim-failed.eml", t, RCPTS[1]))
        self.assertEqual(r.returncode, 0, r.stderr)
        rc = self.rcpt_state(1)
        self.assertEqual(rc["state"], "bounced")
        self.assertEqual(rc["reply"],
                         "5.0.0 smtp; 550 5.2.1 Mailbox disabled for this recipient")

    def test_exchange_ndr_through_a_pipe_transport(self):
        # master.cf: argv=/usr/bin/invitemail bounce --recipient ${recipient}
        t = self.tokens[2]
        r = self.bounce(self.dsn("exchange-failed.eml", t, RCPTS[2]),
                        "--recipient", f"bounces+{t}@example.org")
        self.assertEqual(r.returncode, 0, r.stderr)
        rc = self.rcpt_state(2)
        self.assertEqual(rc["state"], "bounced")
        self.assertEqual(rc["reply"], "5.1.10 smtp;550 5.1.10 RESOLVER.ADR."
                         "RecipientNotFound; Recipient not found by SMTP address lookup")

    def test_delayed_is_shown_not_final(self):
        t = self.tokens[0]
        r = self.bounce(self.dsn("postfix-delayed.eml", t, RCPTS[0]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split(), [self.invite, "delayed"])
        st = self.daemon.status(self.invite)
        self.assertEqual(st["recipients"][0]["state"], "delayed")
        self.assertTrue(st["recipients"][0]["reply"].startswith("4.4.1 X-Postfix;"))
        self.assertEqual(st["state"], "sent", "a delay report is not final")
        self.assertEqual(len(self.events("delayed")), 1)
        # The failure that follows is final, and a late delay changes nothing.
        r = self.bounce(self.dsn("postfix-failed.eml", t, RCPTS[0]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.rcpt_state(0)["state"], "bounced")
        r = self.bounce(self.dsn("postfix-delayed.eml", t, RCPTS[0]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().split(), [self.invite, "bounced"])
        self.assertEqual(self.rcpt_state(0)["state"], "bounced")
        self.assertEqual(len(self.events("delayed")), 1)

    # ---- what must change nothing --------------------------------------
    def test_forged_dsn_with_a_wrong_token(self):
        forged = "0123456789abcdefghijklmnop"
        r = self.bounce(self.dsn("postfix-failed.eml", forged, RCPTS[0]))
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"unknown_token", r.stderr)
        self.assert_unchanged()
        rej = [x for x in self.events("rejected") if x["error_code"] == "unknown_token"]
        self.assertEqual(len(rej), 1, "the refusal is audited")

    def test_the_envelope_recipient_outranks_the_headers(self):
        # Headers name a real token, the envelope a forged one: refused.
        r = self.bounce(self.dsn("postfix-failed.eml", self.tokens[0], RCPTS[0]),
                        env={"ORIGINAL_RECIPIENT":
                             "bounces+0123456789abcdefghijklmnop@example.org"})
        self.assertEqual(r.returncode, 65, r.stderr)
        # An envelope recipient without a token: refused too.
        r = self.bounce(self.dsn("postfix-failed.eml", self.tokens[0], RCPTS[0]),
                        "--recipient", "postmaster@example.org")
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"unknown_token", r.stderr)
        self.assert_unchanged()

    def test_headers_naming_two_tokens_are_refused(self):
        data = self.dsn("postfix-failed.eml", self.tokens[0], RCPTS[0]).replace(
            f"To: bounces+{self.tokens[0]}".encode(), f"To: bounces+{self.tokens[1]}".encode())
        r = self.bounce(data)
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"unknown_token", r.stderr)
        self.assert_unchanged()

    def test_broken_and_ordinary_mail_is_refused(self):
        t = self.tokens[0]
        cases = [self.dsn("broken-no-report.eml", t, RCPTS[0]),
                 self.dsn("broken-fields.eml", t, RCPTS[0]),
                 b"", b"\x00\xff\xfe garbage\r\n\r\n--",
                 # a report whose only recipient was delivered
                 self.dsn("postfix-failed.eml", t, RCPTS[0]).replace(
                     b"Action: failed", b"Action: delivered").replace(
                     b"Status: 5.1.1", b"Status: 2.0.0"),
                 # failed, but a success status code
                 self.dsn("postfix-failed.eml", t, RCPTS[0]).replace(
                     b"Status: 5.1.1", b"Status: 2.1.5")]
        for data in cases:
            r = self.bounce(data)
            self.assertEqual(r.returncode, 65, (data[:60], r.stderr))
            self.assertIn(b"not_dsn", r.stderr)
        self.assert_unchanged()
        self.assertTrue(self.daemon.alive())

    def test_huge_message_is_refused_and_drained(self):
        base = self.dsn("postfix-failed.eml", self.tokens[0], RCPTS[0])
        huge = base.replace(b"This is a MIME-encapsulated message.",
                            b"x" * (3 * 1024 * 1024))
        r = self.bounce(huge)
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"request_too_large", r.stderr)
        self.assert_unchanged()

    def test_hostile_diagnostic_is_made_safe(self):
        t = self.tokens[1]
        data = self.dsn("postfix-failed.eml", t, RCPTS[1]).replace(
            b"Diagnostic-Code: smtp; 550 5.1.1",
            b"Diagnostic-Code: smtp; 550 5.1.1 \x1b[31m\xc3\xa5\x07" + b"y" * 600)
        r = self.bounce(data)
        self.assertEqual(r.returncode, 0, r.stderr)
        reply = self.rcpt_state(1)["reply"]
        self.assertLessEqual(len(reply), 6 + 255)
        self.assertTrue(all(" " <= c <= "~" for c in reply), reply)

    def test_forged_request_on_the_socket(self):
        # A client that skips the parser gets the same checks.
        bad = [("dsn_action", "delivered"), ("dsn_status", "2.0.0"),
               ("diagnostic", "x\ty")]
        for name, value in bad:
            pairs = {"request": "bounce", "token": self.tokens[0],
                     "dsn_action": "failed", "dsn_status": "5.1.1"}
            pairs[name] = value
            ans = self.daemon.request(*pairs.items())
            self.assertEqual(imtest.answer_get(ans, "status"), "rejected", ans)
            self.assertEqual(imtest.answer_get(ans, "field"), name, ans)
        ans = self.daemon.request(("request", "bounce"), ("dsn_error", "sent"))
        self.assertEqual(imtest.answer_get(ans, "error"), "invalid_value", ans)
        self.assert_unchanged()

    def test_mutated_dsns_never_crash_the_parser(self):
        # 200 seeded mutations of the real fixtures (bytes flipped,
        # cut, repeated, boundaries and fields broken): every one is
        # recorded or refused, none crashes the client or the daemon.
        rnd = random.Random(14)
        names = ["postfix-failed.eml", "postfix-delayed.eml", "exim-failed.eml",
                 "exchange-failed.eml"]
        for n in range(200):
            data = bytearray(self.dsn(names[n % 4], self.tokens[n % 3], RCPTS[n % 3]))
            for _ in range(rnd.randint(1, 8)):
                op = rnd.randrange(4)
                i = rnd.randrange(len(data))
                if op == 0:
                    data[i] = rnd.randrange(256)
                elif op == 1:
                    del data[i:i + rnd.randint(1, 400)]
                elif op == 2:
                    data[i:i] = data[i:i + rnd.randint(1, 200)] * rnd.randint(1, 20)
                else:
                    data[i:i] = rnd.choice([b"\n--", b"\n\n", b"\r", b"\x00", b"(",
                                            b"\n ", b"Action: failed\n", b"+"])
            r = self.bounce(bytes(data))
            self.assertIn(r.returncode, (0, 65), (n, r.stderr[-300:]))
        self.assertTrue(self.daemon.alive())
        self.assertEqual(self.daemon.audit_verify().returncode, 0)

    def test_only_allowed_users_may_report_bounces(self):
        # A local user who is not allowed cannot mark anything bounced,
        # even with a real token.
        if os.geteuid() != 0:
            self.skipTest("needs root to speak as another user")
        import grp
        import pwd
        self.daemon.stop()
        # The socket's group lets nobody connect; the peer check refuses.
        text = self.daemon.conf.read_text().replace(
            "[daemon]\n", "[daemon]\nsocket_group = nogroup\n", 1)
        self.daemon.conf.write_text(text)
        self.daemon.start()
        nobody = pwd.getpwnam("nobody").pw_uid
        # The socket file shows at bind(), its group a moment later: wait
        # for an answer before speaking as another user.
        self.assertEqual(imtest.answer_get(self.daemon.request(("request", "ping")),
                                           "status"), "ok")
        ans = self.daemon.raw_as(nobody, grp.getgrnam("nogroup").gr_gid, (
            "request=bounce\ntoken=%s\ndsn_action=failed\ndsn_status=5.1.1\n\n"
            % self.tokens[0]).encode())
        self.assertEqual(imtest.answer_get(ans, "error"), "not_authorized", ans)
        self.assert_unchanged()

    def test_daemon_unreachable_means_try_again(self):
        self.daemon.stop()
        r = self.bounce(self.dsn("postfix-failed.eml", self.tokens[0], RCPTS[0]))
        self.assertEqual(r.returncode, 75, r.stderr)
        self.daemon.start()
        self.assert_unchanged()


class NotSent(imtest.DaemonCase):
    def test_bounce_for_a_recipient_the_relay_never_took(self):
        # A relay that refuses the connection: recipients stay deferred.
        d = self.start_daemon({"transport": {"type": "smtp"},
                               "smtp": {"host": "127.0.0.1", "port": "9", "tls": "none",
                                        "timeout": "2"}})
        invite = d.send(RCPTS[:1])
        d.wait_state(invite, {"deferred"})
        token = None
        # The token is only in the queue: take it the way a relay would
        # have seen it, through a raw read of the queue file.
        import sqlite3
        db = sqlite3.connect(f"file:{d.dir / 'queue.db'}?mode=ro", uri=True)
        token = db.execute("SELECT return_token FROM recipients").fetchone()[0]
        db.close()
        data = (FIXTURES / "postfix-failed.eml").read_text().replace(
            "@TOKEN@", token).replace("@RCPT@", RCPTS[0]).encode()
        r = subprocess.run([str(imtest.CLIENT), "--socket", str(d.socket), "bounce"],
                           input=data, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"not_sent", r.stderr)
        self.assertEqual(d.status(invite)["recipients"][0]["state"], "deferred")


if __name__ == "__main__":
    imtest.main("bounces", needs_aiosmtpd=False)
