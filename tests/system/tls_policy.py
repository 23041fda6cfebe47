"""tls_policy.py - what reaches the wire, and who may ask.

TLS policy is judged by what the SMTP server received (tests/system/smtpd.py's
command log and capture folder), never by what the daemon says about
itself: a relay that offers no STARTTLS, shows a certificate from an
untrusted CA, for another name, or expired, or speaks only TLS 1.1 or
lower must see no MAIL FROM and no byte of a message; the invite is
deferred and the reason audited.  SNI is sent.  tls=none toward a host
that is not loopback is refused by --check-config and at start.  A
refused AUTH ends the session before MAIL FROM.  The password never
reaches a log, in clear or as AUTH PLAIN/LOGIN base64.

Who may ask: allowed_users / allowed_groups against the kernel's
SO_PEERCRED, the per-uid and total connection caps with their reserve,
and the idle timeout.  Other users are played by forked children that
switch uid and talk to the socket directly: no build-tree program is
ever run as another user (the tree may be closed to it).  Needs root;
users and groups it creates are removed at the end.
"""

import base64
import grp
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS, answer_get, read_answer  # noqa: E402

PASSWORD = "pw-Ex4mple-s3cret"
USER = "relaybot"
TEST_USER = "imtestuser"
TEST_GROUP = "imtestgrp"
# Numeric uids with no passwd entry: enough distinct peers to fill the
# daemon's total connection cap (its per-uid cap is 64).
CAP_UIDS = [61001, 61002, 61003, 61004, 61005]
PER_UID = 64              # CONTROL_MAX_PER_UID
TOTAL_ADMITTED = 256 - 8  # CONTROL_MAX_CONNECTIONS - CONTROL_RESERVE


def secret_forms(user=USER, password=PASSWORD):
    """The password as it could leak: clear, AUTH PLAIN, AUTH LOGIN."""
    plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    login = base64.b64encode(password.encode()).decode()
    return [password, plain, login]


class Base(imtest.DaemonCase):
    workdir_prefix = "imtls-"

    def forbidden_in_log(self):
        return super().forbidden_in_log() + secret_forms()

    def rows(self, invite_id=None, event=None):
        return [r for r in self.daemon.audit_rows()
                if (invite_id is None or r["invite_id"] == invite_id)
                and (event is None or r["event"] == event)]


def smtp_conf(srv, auth=(USER, PASSWORD), **smtp):
    return imtest.smtp_conf(srv, smtp, auth=auth)


class RelayRefused(Base):
    """Each relay here must get a connection, and nothing after TLS."""

    # name, smtpd cert, smtpd args, what the audited reason says (regex)
    CASES = [
        ("no STARTTLS offered", None, ["--auth", f"{USER}:{PASSWORD}",
                                       "--auth-plaintext"], r"STARTTLS"),
        ("untrusted CA", "server-untrusted", [], r"not trusted.*(issuer|self.signed)"),
        ("certificate for another name", "server-wrongname", [],
         r"does not name|hostname mismatch"),
        ("expired certificate", "server-expired", [], r"expired"),
        ("TLS 1.1 at most", "server-localhost", ["--tls-max", "1.1"],
         r"TLS handshake failed"),
    ]

    def run_case(self, name, cert, args, reason):
        srv = self.smtpd(*args, cert=cert)
        d = self.start_daemon(smtp_conf(srv))
        invite = d.send(RCPTS[:2])
        st = d.wait_state(invite, {"deferred", "failed", "sent"})
        self.assertEqual(st["state"], "deferred", f"{name}: {st}")
        imtest.wait_for(lambda: len(self.rows(invite, "deferred")) >= 2,
                        what=f"{name}: deferred rows")
        d.stop()   # nothing more may arrive while we judge
        log = srv.commands().upper()
        # The daemon did reach the relay: the test proves a refusal, not
        # an unreachable port.
        self.assertIn("EHLO", log, f"{name}: no EHLO at all")
        for verb in ("MAIL FROM", "RCPT TO", "DATA", "AUTH"):
            self.assertNotIn(verb, log, f"{name}: the relay received {verb}")
        self.assertEqual(srv.captures(), [], f"{name}: a message was captured")
        self.assertEqual(list(srv.capture.iterdir()), [], f"{name}: capture not empty")
        for r in self.rows(invite, "deferred"):
            self.assertRegex(r["smtp_reply"] or "", "(?i)" + reason,
                             f"{name}: audited reason")
        for rcpt in st["recipients"]:
            self.assertRegex(rcpt["reply"], "(?i)" + reason, f"{name}: status reply")

    def test_no_starttls(self):
        self.run_case(*self.CASES[0])

    def test_untrusted_ca(self):
        self.run_case(*self.CASES[1])

    def test_wrong_name(self):
        self.run_case(*self.CASES[2])

    def test_expired(self):
        self.run_case(*self.CASES[3])

    def test_tls_1_1_only(self):
        self.run_case(*self.CASES[4])


class RelayAccepted(Base):
    def test_sni_and_tls_version_and_no_secret_in_logs(self):
        srv = self.smtpd("--require-tls", "--auth", f"{USER}:{PASSWORD}", "--require-auth")
        d = self.start_daemon(smtp_conf(srv))
        invite = d.send(RCPTS[:1])
        st = d.wait_state(invite, {"sent", "deferred", "failed"})
        self.assertEqual(st["state"], "sent", st)
        meta, _ = imtest.wait_for(lambda: srv.captures(), what="a capture")[0]
        self.assertEqual(meta["sni"], "localhost", "SNI not sent")
        self.assertIn(meta["tls"]["version"], ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(meta["auth_user"], USER)
        d.stop()
        self.assert_no_secret(srv)

    def test_auth_refused_ends_the_session(self):
        srv = self.smtpd("--auth", f"{USER}:{PASSWORD}", "--auth-refuse")
        d = self.start_daemon(smtp_conf(srv))
        invite = d.send(RCPTS[:1])
        st = d.wait_state(invite, {"deferred", "failed", "sent"})
        self.assertEqual(st["state"], "deferred", st)
        d.stop()
        log = srv.commands().upper()
        self.assertIn("STARTTLS", log)
        self.assertIn("AUTH", log, "the daemon never tried AUTH")
        for verb in ("MAIL FROM", "RCPT TO", "DATA"):
            self.assertNotIn(verb, log, f"unauthenticated {verb} after 535")
        self.assertEqual(srv.captures(), [])
        deferred = self.rows(invite, "deferred")
        self.assertTrue(deferred, "no deferred row")
        self.assertTrue(all("AUTH refused" in (r["smtp_reply"] or "") for r in deferred),
                        deferred)
        self.assert_no_secret(srv)

    def test_auth_not_offered_sends_nothing(self):
        srv = self.smtpd()   # STARTTLS, but no AUTH offered
        d = self.start_daemon(smtp_conf(srv))
        invite = d.send(RCPTS[:1])
        st = d.wait_state(invite, {"deferred", "failed", "sent"})
        self.assertEqual(st["state"], "deferred", st)
        d.stop()
        self.assertNotIn("MAIL FROM", srv.commands().upper())
        self.assertEqual(srv.captures(), [])
        self.assertIn("no AUTH", st["recipients"][0]["reply"])

    def assert_no_secret(self, srv):
        texts = {"daemon log": self.daemon.log(), "smtpd log": srv.commands(),
                 "smtpd stderr": (srv.dir / "stderr").read_text(errors="replace"),
                 "audit": json.dumps(self.daemon.audit_rows())}
        for where, text in texts.items():
            for form in secret_forms():
                self.assertNotIn(form, text, f"the password reached the {where}")


class CleartextPolicy(Base):
    # host, allowed with tls=none
    HOSTS = [("smtp.example.org", False), ("localhost.example.org", False),
             ("127.0.0.1.example.org", False), ("10.0.0.25", False),
             ("::ffff:127.0.0.1", False), ("127.0.0.300", False), ("127.1", False),
             ("0x7f.0.0.1", False), ("127.0.0.1.", False),
             ("localhost", True), ("127.0.0.1", True),
             ("127.0.0.2", True)]

    def test_check_config_refuses_tls_none_off_loopback(self):
        for host, allowed in self.HOSTS:
            with self.subTest(host=host):
                d = imtest.Daemon(self.work.path, {"transport": {"type": "smtp"},
                                                   "smtp": {"host": host, "tls": "none"}},
                                  start=False)
                r = d.check_config()
                self.assertEqual(r.returncode, 0 if allowed else 78,
                                 f"{host}: {r.stdout}{r.stderr}")

    def test_start_refuses_tls_none_off_loopback(self):
        d = imtest.Daemon(self.work.path, {"transport": {"type": "smtp"},
                                           "smtp": {"host": "smtp.example.org",
                                                    "tls": "none"}}, start=False)
        with self.assertRaises(AssertionError):
            d.start()
        self.assertEqual(d.proc.returncode, 78)
        self.assertFalse(d.socket.exists(), "socket bound despite the refusal")
        self.assertIn("loopback", d.log())

    def test_tls_none_to_loopback_is_allowed(self):
        srv = self.smtpd(cert=None)
        d = self.start_daemon(smtp_conf(srv, auth=None, tls="none"))
        invite = d.send(RCPTS[:1])
        self.assertEqual(d.wait_state(invite, {"sent", "deferred", "failed"})["state"],
                         "sent")
        meta, _ = imtest.wait_for(lambda: srv.captures(), what="a capture")[0]
        self.assertFalse(meta["tls"]["on"])


# ---- who may ask ----------------------------------------------------

_created = {"user": False, "group": False}


def ensure_test_accounts():
    """imtestuser (supplementary member of imtestgrp), made if absent."""
    try:
        grp.getgrnam(TEST_GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", TEST_GROUP], check=True)
        _created["group"] = True
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", "-G", TEST_GROUP, TEST_USER], check=True)
        _created["user"] = True


def remove_test_accounts():
    if _created["user"]:
        subprocess.run(["userdel", TEST_USER], check=False)
    if _created["group"]:
        subprocess.run(["groupdel", TEST_GROUP], check=False)


class Holder:
    """A forked child that becomes uid/gid, opens n connections one after
    the other, sends a ping on each, and keeps them open until release().
    answers: one dict per connection: status or error."""

    def __init__(self, sock_path, uid, gid, n):
        res_r, res_w = os.pipe()
        rel_r, rel_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(res_r)
            os.close(rel_w)
            self._child(str(sock_path), uid, gid, n, res_w, rel_r)
        os.close(res_w)
        os.close(rel_r)
        self.release_fd = rel_w
        data = b""
        with os.fdopen(res_r, "rb") as f:
            data = f.readline()
        self.answers = json.loads(data) if data else [{"error": "child died"}]

    @staticmethod
    def _child(path, uid, gid, n, res_w, rel_r):
        out, held = [], []
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            for _ in range(n):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(15)
                try:
                    s.connect(path)
                    s.sendall(b"request=ping\n\n")
                    ans = dict(read_answer(s))
                except OSError as e:
                    ans = {"oserror": str(e)}
                out.append({k: ans[k] for k in ("status", "error", "oserror") if k in ans})
                held.append(s)
            os.write(res_w, (json.dumps(out) + "\n").encode())
            os.read(rel_r, 1)
        except BaseException as e:  # noqa: B902 - report, never raise in a fork
            os.write(res_w, (json.dumps([{"error": "child: " + repr(e)}]) + "\n").encode())
        finally:
            os._exit(0)

    def release(self):
        if self.release_fd is not None:
            # A byte, not just EOF: later holders inherited this pipe's
            # write end, so closing it here alone would never wake us.
            os.write(self.release_fd, b"x")
            os.close(self.release_fd)
            self.release_fd = None
            os.waitpid(self.pid, 0)

    def count(self, key, value):
        return sum(1 for a in self.answers if a.get(key) == value)


@unittest.skipUnless(os.geteuid() == 0, "switching users needs root")
class WhoMayAsk(Base):
    def start(self, **daemon):
        keys = {"socket_group": "nogroup", "client_timeout": "30"}
        keys.update(daemon)
        d = self.start_daemon({"daemon": keys})
        self.nogroup = grp.getgrnam("nogroup").gr_gid
        return d

    def ask_as(self, uid, data=b"request=ping\n\n"):
        return self.daemon.raw_as(uid, self.nogroup, data)

    def test_allowed_user_asks_other_is_refused_and_audited(self):
        self.start(allowed_users=TEST_USER)
        me = pwd.getpwnam(TEST_USER).pw_uid
        nobody = pwd.getpwnam("nobody").pw_uid
        self.assertEqual(answer_get(self.ask_as(me), "status"), "ok")
        ans = self.ask_as(nobody)
        self.assertEqual(answer_get(ans, "error"), "not_authorized", ans)
        # Refused before any byte was read: even a request that is
        # garbage gets not_authorized, not malformed.
        ans = self.ask_as(nobody, b"\x00\xff garbage\r\n\n")
        self.assertEqual(answer_get(ans, "error"), "not_authorized", ans)
        refused = [r for r in self.rows(event="rejected")
                   if r["error_code"] == "not_authorized"]
        self.assertEqual(len(refused), 2, refused)
        self.assertTrue(all(int(r["peer_uid"]) == nobody for r in refused), refused)
        self.assertFalse([r for r in self.rows(event="rejected")
                          if int(r["peer_uid"]) == me], "the allowed user was refused")

    def test_allowed_group_by_supplementary_membership(self):
        self.start(allowed_groups=TEST_GROUP)
        me = pwd.getpwnam(TEST_USER).pw_uid
        nobody = pwd.getpwnam("nobody").pw_uid
        # The child's primary gid is nogroup: only /etc/group makes it a
        # member of imtestgrp.
        self.assertEqual(answer_get(self.ask_as(me), "status"), "ok")
        self.assertEqual(answer_get(self.ask_as(nobody), "error"), "not_authorized")

    def test_allowed_group_by_primary_gid(self):
        self.start(allowed_groups="nogroup")
        nobody = pwd.getpwnam("nobody").pw_uid
        self.assertEqual(answer_get(self.ask_as(nobody), "status"), "ok")

    def test_per_uid_cap(self):
        uid = CAP_UIDS[0]
        d = self.start(allowed_users=str(uid))
        h = Holder(d.socket, uid, self.nogroup, PER_UID + 1)
        try:
            self.assertEqual(h.count("status", "ok"), PER_UID, h.answers[:3])
            self.assertEqual(h.answers[-1].get("error"), "busy", h.answers[-1])
            # Another user is not held back by this one.
            self.assertEqual(answer_get(d.request(("request", "ping")), "status"), "ok")
        finally:
            h.release()
        imtest.wait_for(lambda: answer_get(self.daemon.raw_as(uid, self.nogroup,
                                                              b"request=ping\n\n"),
                                           "status") == "ok",
                        what="the uid to be admitted again")

    def test_total_cap_keeps_a_reserve_to_answer(self):
        users = ";".join(str(u) for u in CAP_UIDS)
        d = self.start(allowed_users=users)
        holders = []
        try:
            left = TOTAL_ADMITTED
            for uid in CAP_UIDS[:4]:
                n = min(PER_UID - 2, left)
                holders.append(Holder(d.socket, uid, self.nogroup, n))
                left -= n
            admitted = sum(h.count("status", "ok") for h in holders)
            self.assertEqual(admitted, 4 * (PER_UID - 2))
            rest = Holder(d.socket, CAP_UIDS[4], self.nogroup, TOTAL_ADMITTED - admitted + 1)
            holders.append(rest)
            self.assertEqual(rest.count("status", "ok"), TOTAL_ADMITTED - admitted,
                             rest.answers)
            # Full: the next caller, root included, is answered, not dropped.
            self.assertEqual(rest.answers[-1].get("error"), "busy", rest.answers[-1])
            self.assertEqual(answer_get(d.request(("request", "ping")), "error"), "busy")
            self.assertTrue(d.alive())
        finally:
            for h in holders:
                h.release()
        imtest.wait_for(lambda: answer_get(self.daemon.request(("request", "ping")),
                                           "status") == "ok",
                        what="ping once the holders are gone")
        busy = [r for r in self.rows(event="rejected") if r["error_code"] == "busy"]
        self.assertTrue(busy, "busy refusals were not audited")


class SocketAppears(Base):
    """The socket shows up under its name only with its final mode: a
    client that connects the moment it appears (the booking tool started
    beside the daemon) must not be refused by a mode about to widen."""

    def test_bound_aside_then_renamed_into_place(self):
        trace = self.work.path / "strace.out"
        saved = imtest.WRAPPER
        imtest.WRAPPER = ["strace", "-f", "-qq", "-o", str(trace), "-e",
                          "trace=bind,chmod,fchmodat,rename,renameat,renameat2"]
        try:
            d = self.start_daemon({"daemon": {"socket_mode": "0660"}})
        finally:
            imtest.WRAPPER = saved
        self.assertEqual(answer_get(d.request(("request", "ping")), "status"), "ok")
        self.assertEqual(os.stat(d.socket).st_mode & 0o777, 0o660)
        # strace holds the daemon; stop the daemon itself (its pid leads
        # every line of the trace) and let strace end with it.
        os.kill(int(trace.read_text().split()[0]), signal.SIGTERM)
        d.proc.wait(20)
        calls = [l for l in trace.read_text().splitlines()
                 if "invitemail.sock" in l and "= -1" not in l]
        final = str(d.socket)
        binds = [l for l in calls if "bind(" in l]
        self.assertTrue(binds, calls)
        self.assertFalse([l for l in binds if f'"{final}"' in l],
                         "bound under its real name: " + repr(binds))
        order = [("chmod" if "chmod" in l else "rename" if "rename" in l else "bind")
                 for l in calls]
        self.assertEqual(order[-3:], ["bind", "chmod", "rename"], calls)
        self.assertIn(f'"{final}"', calls[-1])


class Timeouts(Base):
    def test_started_request_times_out_with_an_answer(self):
        d = self.start_daemon({"daemon": {"client_timeout": "1"}})
        s = d.connect()
        t0 = time.monotonic()
        s.sendall(b"request=ping\n")   # never finished
        ans = read_answer(s)
        took = time.monotonic() - t0
        self.assertEqual(answer_get(ans, "error"), "timeout", ans)
        self.assertLess(took, 8, "timeout answered too late")
        s.settimeout(10)
        self.assertEqual(s.recv(1), b"", "connection left open after the timeout")
        s.close()

    def test_silent_connection_is_closed(self):
        d = self.start_daemon({"daemon": {"client_timeout": "1"}})
        s = d.connect()
        s.settimeout(10)
        t0 = time.monotonic()
        self.assertEqual(s.recv(1), b"", "a silent connection got an answer")
        self.assertLess(time.monotonic() - t0, 8)
        s.close()
        self.assertEqual(answer_get(d.request(("request", "ping")), "status"), "ok")

    def test_slow_drip_cannot_hold_a_connection(self):
        """One byte at a time, each well inside client_timeout: the
        connection must still end within a bounded time."""
        d = self.start_daemon({"daemon": {"client_timeout": "1"}})
        s = d.connect()
        s.settimeout(0.5)
        t0 = time.monotonic()
        closed = False
        s.sendall(b"request=ping\nbooking=")
        while time.monotonic() - t0 < 10:
            try:
                s.sendall(b"x")
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
        s.close()
        self.assertTrue(closed, "a slow drip held the connection for 10 s")


def main():
    if not imtest.have_aiosmtpd():
        imtest.skip_or_fail("python3-aiosmtpd is not installed")
    # A harness that stops us with SIGTERM still gets its accounts back.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if os.geteuid() == 0:
            ensure_test_accounts()
        prog = unittest.main(exit=False, verbosity=2)
    finally:
        if os.geteuid() == 0:
            remove_test_accounts()
    r = prog.result
    imtest.report("tls_policy", r)
    if r.failures or r.errors:
        sys.exit(1)
    if r.skipped:
        imtest.skip_or_fail(f"{len(r.skipped)} skipped (not root)")
    sys.exit(0)


if __name__ == "__main__":
    main()
