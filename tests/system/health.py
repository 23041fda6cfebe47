"""health.py - `invitemail health [--json]` against the real daemon.

Each state made for real: OK (sealed audit, file transport), WARNING (no
audit key; a bounce counted in the last hour), CRITICAL (recipients
piling up behind a relay that takes nothing, a stale seal, a full disk
by the thresholds, no daemon at all), each with the monitoring plugin's
exit code 0/1/2 and the same verdict in JSON.  The pure judgement of
every check is in tests/unit/test_health.c.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS  # noqa: E402

FIXTURES = imtest.SRCDIR / "tests" / "data" / "dsn"


class Health(imtest.DaemonCase):
    def start(self, extra=None, sealed=True):
        d = imtest.Daemon(self.work.path, extra, start=False)
        if sealed:
            r = subprocess.run([str(imtest.CLIENT), "audit", "init", "-c", str(d.conf)],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
        d.start()
        self.daemon = d
        return d

    def health(self, *args):
        r = self.daemon.cli("health", *args)
        return r.returncode, r.stdout.decode()

    def checks(self):
        code, out = self.health("--json")
        js = json.loads(out)
        self.assertEqual(code, {"OK": 0, "WARNING": 1, "CRITICAL": 2}[js["status"]])
        return code, js["status"], {c["name"]: c for c in js["checks"]}

    def test_ok(self):
        d = self.start()
        invite = d.send(RCPTS)
        d.wait_state(invite, {"sent"})
        code, out = self.health()
        self.assertEqual(code, 0, out)
        self.assertTrue(out.startswith("INVITEMAIL OK\n"), out)
        code, status, c = self.checks()
        self.assertEqual(status, "OK")
        self.assertEqual(set(c), {"queue", "deferred", "failures", "relay", "seal", "disk",
                                  "delivery", "audit"})
        self.assertEqual(c["queue"]["value"], 0)
        self.assertIn(f"{len(RCPTS)} sent", c["failures"]["text"])
        self.assertTrue(all(x["level"] == "OK" for x in c.values()), c)
        for addr in RCPTS:
            self.assertNotIn(addr, out)

    def test_warning_without_audit_key(self):
        self.start(sealed=False)
        code, out = self.health()
        self.assertEqual(code, 1, out)
        self.assertTrue(out.startswith("INVITEMAIL WARNING - seal: the audit is not sealed"),
                        out)
        _, status, c = self.checks()
        self.assertEqual((status, c["seal"]["level"]), ("WARNING", "WARNING"))

    def test_warning_on_a_bounce_in_the_last_hour(self):
        d = self.start({"health": {"failures_warning": "1", "failures_critical": "10"}})
        invite = d.send(RCPTS[:1])
        d.wait_state(invite, {"sent"})
        self.assertEqual(self.checks()[1], "OK")
        env = (self.work.path / "outbox" / f"{invite}.0.envelope").read_text()
        token = env.split("bounces+", 1)[1].split("@", 1)[0]
        dsn = (FIXTURES / "postfix-failed.eml").read_text().replace(
            "@TOKEN@", token).replace("@RCPT@", RCPTS[0])
        r = subprocess.run([str(imtest.CLIENT), "--socket", str(d.socket), "bounce"],
                           input=dsn.encode(), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        code, status, c = self.checks()
        self.assertEqual((code, c["failures"]["level"]), (1, "WARNING"), c)
        self.assertEqual(c["failures"]["value"], 1)
        self.assertIn("1 bounced", c["failures"]["text"])

    def test_critical_queue_and_relay_when_nothing_gets_through(self):
        # A relay port where nothing listens: every try is deferred.
        d = self.start({"transport": {"type": "smtp"},
                        "smtp": {"host": "127.0.0.1", "port": "9", "tls": "none",
                                 "timeout": "2"},
                        "health": {"queue_warning": "1", "queue_critical": "3",
                                   "relay_warning": "1", "relay_critical": "3600",
                                   "deferred_warning": "3600",
                                   "deferred_critical": "7200"}})
        invite = d.send(RCPTS)
        d.wait_state(invite, {"deferred"})
        time.sleep(1.5)
        code, status, c = self.checks()
        self.assertEqual((code, status), (2, "CRITICAL"), c)
        self.assertEqual((c["queue"]["level"], c["queue"]["value"]), ("CRITICAL", 3))
        self.assertEqual(c["relay"]["level"], "WARNING", c["relay"])
        self.assertIn("never took a message", c["relay"]["text"])
        self.assertEqual(c["deferred"]["level"], "OK")
        self.assertGreaterEqual(c["deferred"]["value"], 1)
        code, out = self.health()
        self.assertEqual(code, 2)
        self.assertTrue(out.startswith("INVITEMAIL CRITICAL - queue: 3 recipient(s)"), out)

    def test_critical_stale_seal_and_full_disk(self):
        self.start({"health": {"seal_warning": "1", "seal_critical": "2",
                               "disk_warning": "100", "disk_critical": "100"}})
        time.sleep(2.2)
        code, status, c = self.checks()
        self.assertEqual(code, 2)
        self.assertEqual(c["seal"]["level"], "CRITICAL", c["seal"])
        self.assertGreaterEqual(c["seal"]["value"], 2)
        self.assertEqual(c["disk"]["level"], "CRITICAL", c["disk"])
        self.assertEqual(c["delivery"]["level"], "OK")

    def test_thresholds_are_checked_at_load(self):
        d = imtest.Daemon(self.work.path, {"health": {"queue_warning": "10",
                                                      "queue_critical": "5"}},
                          start=False)
        r = d.check_config()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("[health] queue_critical", r.stderr)

    def test_only_allowed_users_may_ask(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to speak as another user")
        import grp
        import pwd
        # The socket's group lets nobody connect; the peer check refuses.
        d = self.start({"daemon": {"socket_group": "nogroup"}})
        nobody = pwd.getpwnam("nobody").pw_uid
        # The socket file shows at bind(), its group a moment later: wait
        # for an answer before speaking as another user.
        self.assertEqual(imtest.answer_get(d.request(("request", "ping")), "status"), "ok")
        ans = d.raw_as(nobody, grp.getgrnam("nogroup").gr_gid, b"request=health\n\n")
        self.assertEqual(imtest.answer_get(ans, "error"), "not_authorized", ans)
        self.assertIsNone(imtest.answer_get(ans, "health"))

    def test_critical_when_the_daemon_does_not_answer(self):
        d = self.start()
        d.stop()
        code, out = self.health()
        self.assertEqual(code, 2)
        self.assertTrue(out.startswith("INVITEMAIL CRITICAL - the daemon does not answer"))
        code, out = self.health("--json")
        self.assertEqual((code, json.loads(out)["status"]), (2, "CRITICAL"))


if __name__ == "__main__":
    imtest.main("health", needs_aiosmtpd=False)
