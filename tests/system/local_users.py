"""local_users.py - a nosy or greedy local user against the real daemon.

The attacks of issue 9 that come from another account on the same host,
each played by a second local user made at test time (useradd: system
accounts without home or shell, left in place for the next run) and a
forked child that switches to that uid and speaks to the real socket
directly (SO_PEERCRED then names it); the one client run as another
user is a copy in a folder that user can reach.

- idempotency keys are per uid: another user's same key neither
  conflicts with the first caller's request nor answers its invite id;
- status (which shows every recipient's address) is answered only to
  the uid that sent the invite, root and [daemon] status_groups; anyone
  else gets exactly the answer an unknown id gets; every answer that
  showed addresses is audited without them;
- the Message-ID every recipient sees is random, not the invite id;
- per-uid limits (invites a minute, recipients a day) are answered
  rate_limited, and `invitemail send` run as that user exits 75; the cap
  on recipients waiting in the queue is answered busy; refusals are
  audited with the uid; root is not limited;
- privileges: started as root with [daemon] user the daemon binds its
  socket, takes its state files (even ones root left) and becomes that
  user for good (/proc/PID/status), and everything still works: sends,
  delivery, audit, reload, stop; without user it refuses and says what
  to set; the SMTP password file is refused when it is a symlink, a
  FIFO, another user's, or open to group or others; the audit .lock
  ends up 0600; the socket's folder is made 0755.

Needs root (to make users and to become them); exits 77 outside CI
otherwise.  Made-up recipients at example.org / example.com only.
"""

import grp
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import stat
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS, answer_get  # noqa: E402

SENDER = "imtestsender"      # allowed to send
OTHER = "imtestother"        # allowed to send, not in any status group
VIEWER = "imtestviewer"      # allowed, member of the status group
DAEMON_USER = "imtestdaemon" # what the daemon drops to
STATUS_GROUP = "imtestviewers"


def ensure_user(name, groups=()):
    try:
        pwd.getpwnam(name)
    except KeyError:
        cmd = ["useradd", "--system", "--user-group", "--no-create-home",
               "--shell", "/usr/sbin/nologin"]
        if groups:
            cmd += ["-G", ",".join(groups)]
        subprocess.run(cmd + [name], check=True)
    return pwd.getpwnam(name)


def ensure_group(name):
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True)
    return grp.getgrnam(name)


def setUpModule():
    if os.geteuid() != 0:
        imtest.skip_or_fail("local_users.py needs root to make and become local users")
    ensure_user(SENDER)
    ensure_user(OTHER)
    ensure_group(STATUS_GROUP)
    ensure_user(VIEWER, groups=[STATUS_GROUP])
    ensure_user(DAEMON_USER)
    if VIEWER not in grp.getgrnam(STATUS_GROUP).gr_mem:
        subprocess.run(["usermod", "-aG", STATUS_GROUP, VIEWER], check=True)


def tearDownModule():
    # The accounts stay (system accounts without a home or a shell, as
    # audit_compliance.py's auditor): deleting them while another suite
    # runs in parallel rewrote /etc/passwd under its lookups.
    pass


def request(*pairs):
    return ("".join(f"{k}={v}\n" for k, v in pairs) + "\n").encode()


def send_req(rcpts, key=None, booking="BK-2026-0042"):
    pairs = [("request", "send"), ("link", imtest.LINK), ("booking", booking)]
    pairs += [("bcc", r) for r in rcpts]
    if key:
        pairs.append(("idempotency_key", key))
    return request(*pairs)


class LocalUserCase(imtest.DaemonCase):
    workdir_prefix = "imlocal-"

    def start(self, daemon=None, extra=None):
        # The socket's group is nogroup and every child connects with
        # that primary gid, so only uids and /etc/group decide.
        keys = {"allowed_users": f"{SENDER};{OTHER};{VIEWER}", "socket_group": "nogroup"}
        keys.update(daemon or {})
        return self.start_daemon({"daemon": keys, **(extra or {})})

    def as_user(self, name, data):
        return self.daemon.raw_as(pwd.getpwnam(name).pw_uid,
                                  grp.getgrnam("nogroup").gr_gid, data)


class CancelAccess(LocalUserCase):
    """invitemail cancel acts on an invite: only the uid that sent it and
    root may; a status-group member may look, not act; anyone else gets
    exactly what an unknown id gets."""

    def cancel_req(self, invite):
        return request(("request", "cancel"), ("id", invite))

    def test_cancel_only_sender_and_root(self):
        d = self.start({"status_groups": STATUS_GROUP})
        sent = self.as_user(SENDER, send_req(RCPTS[:1]))
        invite = answer_get(sent, "id")
        self.assertTrue(invite, sent)
        unknown = self.as_user(OTHER, self.cancel_req("0" * 20))
        for who in (OTHER, VIEWER):
            ans = self.as_user(who, self.cancel_req(invite))
            self.assertEqual(answer_get(ans, "error"), "not_found", (who, ans))
            self.assertEqual(ans, unknown, who)
        self.assertEqual([r for r in d.audit_rows() if r["event"] == "cancelled"], [])
        ans = self.as_user(SENDER, self.cancel_req(invite))
        self.assertEqual(answer_get(ans, "status"), "cancelled", ans)
        rows = [r for r in d.audit_rows() if r["event"] == "cancelled"]
        self.assertEqual([int(r["peer_uid"]) for r in rows], [pwd.getpwnam(SENDER).pw_uid])
        second = d.raw(self.cancel_req(invite))   # root may too
        self.assertEqual(answer_get(second, "status"), "cancelled", second)


class IdempotencyPerUid(LocalUserCase):
    """Issue 9 point 6: keys were global, so another user could take the
    booking tool's key first (its real request then failed with
    `conflict`) or learn its invite id by replaying the key."""

    def test_idempotency_key_is_per_uid(self):
        d = self.start()
        mine = self.as_user(SENDER, send_req(RCPTS[:1], key="tool-42"))
        self.assertEqual(answer_get(mine, "status"), "queued", mine)
        first = answer_get(mine, "id")
        # Another user replaying the very same request: a new invite of
        # its own, never the first caller's id.
        replay = self.as_user(OTHER, send_req(RCPTS[:1], key="tool-42"))
        self.assertEqual(answer_get(replay, "status"), "queued", replay)
        self.assertNotEqual(answer_get(replay, "id"), first)
        # A third uid (root), the same key, another request: no conflict.
        other = d.raw(send_req(RCPTS[1:2], key="tool-42", booking="BK-2026-0099"))
        self.assertEqual(answer_get(other, "status"), "queued", other)
        self.assertNotIn(answer_get(other, "id"), (first, answer_get(replay, "id")))
        # The first caller still gets its own id back, and its own
        # different request under that key is still a conflict.
        again = self.as_user(SENDER, send_req(RCPTS[:1], key="tool-42"))
        self.assertEqual(answer_get(again, "id"), first)
        clash = self.as_user(SENDER, send_req(RCPTS[2:], key="tool-42"))
        self.assertEqual(answer_get(clash, "error"), "conflict", clash)
        events = [r["event"] for r in d.audit_rows()]
        self.assertEqual(events.count("accepted"), 3)
        self.assertEqual(events.count("duplicate_request"), 1)


class StatusAccess(LocalUserCase):
    """Issue 9 point 4: any allowed user could read an invite's hidden
    co-recipients with `status`, and the invite id was the Message-ID
    every recipient sees."""

    def status_req(self, invite):
        return request(("request", "status"), ("id", invite))

    def test_status_only_sender_root_and_status_groups(self):
        d = self.start({"status_groups": STATUS_GROUP})
        sent = self.as_user(SENDER, send_req(RCPTS))
        invite = answer_get(sent, "id")
        self.assertTrue(invite, sent)
        unknown = "0" * 20
        nosy = self.as_user(OTHER, self.status_req(invite))
        # Exactly what an id that does not exist gets: existence is not
        # revealed either.
        self.assertEqual(nosy, self.as_user(OTHER, self.status_req(unknown)))
        self.assertEqual(answer_get(nosy, "error"), "not_found", nosy)
        self.assertNotIn(RCPTS[0], repr(nosy))
        for who, ans in (("sender", self.as_user(SENDER, self.status_req(invite))),
                         ("root", d.raw(self.status_req(invite))),
                         ("status group", self.as_user(VIEWER, self.status_req(invite)))):
            self.assertEqual(answer_get(ans, "status"), "ok", (who, ans))
            shown = [v.split(" ")[0] for k, v in ans if k == "recipient"]
            self.assertEqual(sorted(shown), sorted(RCPTS), who)
        # Each answer that showed addresses is audited: who, which
        # invite, never the addresses.
        rows = d.audit_rows(status_shown=True)
        shown = [r for r in rows if r["event"] == "status_shown"]
        uids = sorted(int(r["peer_uid"]) for r in shown)
        self.assertEqual(uids, sorted([0, pwd.getpwnam(SENDER).pw_uid,
                                       pwd.getpwnam(VIEWER).pw_uid]), shown)
        for r in shown:
            self.assertEqual(r["invite_id"], invite)
            for a in RCPTS:
                self.assertNotIn(a, json_dump(r))
        refused = [r for r in rows if r["event"] == "rejected"
                   and int(r["peer_uid"]) == pwd.getpwnam(OTHER).pw_uid]
        self.assertEqual([r["error_code"] for r in refused], ["not_found", "not_found"])

    def test_status_group_change_needs_reload(self):
        """Membership is read at start and reload, never looked up on the
        main loop: without status_groups the viewer is refused."""
        self.start()
        invite = answer_get(self.as_user(SENDER, send_req(RCPTS[:1])), "id")
        ans = self.as_user(VIEWER, self.status_req(invite))
        self.assertEqual(answer_get(ans, "error"), "not_found", ans)

    def test_message_id_not_derived_from_invite_id(self):
        d = self.start()
        ids = [answer_get(self.as_user(SENDER, send_req(RCPTS[:1])), "id") for _ in range(2)]
        outbox = d.dir / "outbox"
        emls = imtest.wait_for(lambda: (lambda f: f if len(f) == 2 else None)(
            sorted(outbox.glob("*.eml"))), what="two messages in the outbox")
        msgids = []
        for eml in emls:
            head = eml.read_bytes().split(b"\r\n\r\n", 1)[0].decode()
            msgid = re.search(r"^Message-Id:\s*<([^>]+)>", head, re.I | re.M).group(1)
            msgids.append(msgid)
            local = msgid.split("@")[0]
            self.assertGreaterEqual(len(local), 26, msgid)
            for invite in ids:
                self.assertNotIn(invite, msgid)
                self.assertNotIn(invite[:9], local)   # not even its time part
        self.assertNotEqual(msgids[0], msgids[1])
        # Kept in the queue with the invite.
        db = sqlite3.connect(f"file:{d.dir / 'queue.db'}?mode=ro", uri=True)
        kept = dict(db.execute("SELECT id, message_id FROM invites"))
        db.close()
        self.assertEqual(sorted(kept[i] for i in ids), sorted(msgids))


class RateLimits(LocalUserCase):
    """Issue 9 point 7: one allowed user could mail-bomb any address
    through the organisation's relay, or fill the disk."""

    def limited(self, rows, name):
        uid = pwd.getpwnam(name).pw_uid
        return [r for r in rows if r["event"] == "rejected"
                and r["error_code"] == "rate_limited" and int(r["peer_uid"]) == uid]

    def test_invites_per_minute(self):
        d = self.start(extra={"limits": {"invites_per_minute": "3",
                                          "recipients_per_day": "0"}})
        for i in range(3):
            ans = self.as_user(SENDER, send_req(RCPTS[:1], booking=f"BK-{i}"))
            self.assertEqual(answer_get(ans, "status"), "queued", ans)
        ans = self.as_user(SENDER, send_req(RCPTS[:1]))
        self.assertEqual(answer_get(ans, "error"), "rate_limited", ans)
        # The limit is per uid: another user, and root, still send.
        self.assertEqual(answer_get(self.as_user(OTHER, send_req(RCPTS[:1])), "status"),
                         "queued")
        for _ in range(4):
            self.assertEqual(answer_get(d.raw(send_req(RCPTS[:1])), "status"), "queued")
        # invitemail itself, run as that user, says "try again later".
        r = self.client_as(SENDER, "send", "--link", imtest.LINK, "--bcc", RCPTS[0])
        self.assertEqual(r.returncode, 75, r.stderr)
        self.assertIn("rate_limited", r.stderr)
        self.assertEqual(len(self.limited(d.audit_rows(), SENDER)), 2)
        events = [r["event"] for r in d.audit_rows()]
        self.assertEqual(events.count("accepted"), 3 + 1 + 4)

    def test_recipients_per_day(self):
        d = self.start(extra={"limits": {"recipients_per_day": "4"}})
        ok = self.as_user(SENDER, send_req(RCPTS))
        self.assertEqual(answer_get(ok, "status"), "queued", ok)
        over = self.as_user(SENDER, send_req(RCPTS[:2]))
        self.assertEqual(answer_get(over, "error"), "rate_limited", over)
        fits = self.as_user(SENDER, send_req(RCPTS[:1]))
        self.assertEqual(answer_get(fits, "status"), "queued", fits)
        self.assertEqual(answer_get(self.as_user(SENDER, send_req(RCPTS[:1])), "error"),
                         "rate_limited")
        self.assertEqual(len(self.limited(d.audit_rows(), SENDER)), 2)

    def test_queued_recipients_cap(self):
        # A relay that is not there: everything stays deferred, so the
        # queue only grows.
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        d = self.start(extra={"limits": {"queued_recipients": "4"},
                              "transport": {"type": "smtp"},
                              "smtp": {"host": "127.0.0.1", "port": str(port),
                                       "tls": "none", "timeout": "2"}})
        first = self.as_user(SENDER, send_req(RCPTS))
        self.assertEqual(answer_get(first, "status"), "queued", first)
        full = self.as_user(OTHER, send_req(RCPTS[:2]))
        self.assertEqual(answer_get(full, "error"), "busy", full)
        fits = self.as_user(OTHER, send_req(RCPTS[:1]))
        self.assertEqual(answer_get(fits, "status"), "queued", fits)
        self.assertEqual(answer_get(self.as_user(SENDER, send_req(RCPTS[:1])), "error"),
                         "busy")
        busy = [r for r in d.audit_rows() if r["event"] == "rejected"
                and r["error_code"] == "busy"]
        self.assertEqual(len(busy), 2, busy)

    def client_as(self, name, *args):
        """The real client, copied where that user can run it."""
        copy = self.work.path / "bin" / "invitemail"
        if not copy.exists():
            copy.parent.mkdir(mode=0o755)
            shutil.copy2(imtest.CLIENT, copy)
            os.chmod(copy, 0o755)
        return subprocess.run([str(copy), "--socket", str(self.daemon.socket), *args],
                              user=pwd.getpwnam(name).pw_uid,
                              group=grp.getgrnam("nogroup").gr_gid, extra_groups=[],
                              capture_output=True, text=True, timeout=60)


def proc_ids(pid, key):
    """The four ids of a /proc/PID/status line (Uid: or Gid:)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {key} in /proc/{pid}/status")


class Privileges(imtest.DaemonCase):
    """Issue 9 point 8: the daemon never dropped root."""

    workdir_prefix = "imprivs-"

    def state_dir(self):
        """A folder of the daemon user's, with its own copy of the
        templates (the build tree may be closed to that user, and a
        reload reads them again after the drop)."""
        pw = pwd.getpwnam(DAEMON_USER)
        state = self.work.path / "state"
        state.mkdir(mode=0o750)
        for sub in ("templates", "signatures"):
            shutil.copytree(imtest.SRCDIR / sub, state / sub)
        for p in [state, *state.rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
        return state

    def daemon_in(self, state, daemon_keys, extra=None):
        sections = {"daemon": daemon_keys,
                    "invite": {"templates_dir": "templates", "signatures_dir": "signatures"}}
        sections.update(extra or {})
        d = imtest.Daemon(state, sections, start=False)
        self.daemon = d
        return d

    def test_drop_to_user(self):
        pw = pwd.getpwnam(DAEMON_USER)
        state = self.state_dir()
        d = self.daemon_in(state, {"user": DAEMON_USER, "socket": "run/invitemail.sock"})
        d.socket = state / "run" / "invitemail.sock"
        # Left by root before the first start: the audit made by `audit
        # init` as root, and a lock file open to all.
        init = subprocess.run([str(imtest.CLIENT), "audit", "-c", str(d.conf), "init",
                               "--public", str(self.work.path / "audit.pub")],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(init.returncode, 0, init.stderr)
        lock = state / "audit.db.lock"
        lock.touch()
        os.chmod(lock, 0o644)
        self.assertEqual((state / "audit.db").stat().st_uid, 0)
        d.start()
        pid = d.proc.pid
        # The socket is bound before the drop: wait for the daemon to
        # say it dropped (it opens nothing before that).
        imtest.wait_for(lambda: f"running as {DAEMON_USER}" in d.log(), what="the drop")
        self.assertEqual(proc_ids(pid, "Uid"), [pw.pw_uid] * 4)
        self.assertEqual(proc_ids(pid, "Gid"), [pw.pw_gid] * 4)
        groups = pathlib.Path(f"/proc/{pid}/status").read_text().split("Groups:")[1]
        self.assertNotIn(0, [int(g) for g in groups.splitlines()[0].split()])
        self.assertIn(f"running as {DAEMON_USER}", d.log())
        # The socket's folder: made 0755 and the daemon's; the socket too.
        run = (state / "run").stat()
        self.assertEqual((stat.S_IMODE(run.st_mode), run.st_uid), (0o755, pw.pw_uid))
        self.assertEqual(d.socket.stat().st_uid, pw.pw_uid)
        # Everything still works as that user: accept, deliver, audit.
        invite = d.send(RCPTS[:2])
        d.wait_state(invite, {"sent"})
        emls = list((state / "outbox").glob("*.eml"))
        self.assertEqual(len(emls), 2)
        self.assertTrue(all(e.stat().st_uid == pw.pw_uid for e in emls))
        for f in ("queue.db", "audit.db", "audit.db.lock"):
            self.assertEqual((state / f).stat().st_uid, pw.pw_uid, f)
        self.assertEqual(stat.S_IMODE(lock.stat().st_mode), 0o600)
        # A reload runs as the user: it must still read everything.
        d.proc.send_signal(signal.SIGHUP)
        imtest.wait_for(lambda: any(r["event"] == "config_reloaded" for r in d.audit_rows()),
                        what="config_reloaded")
        self.assertTrue(d.alive())
        self.assertEqual(answer_get(d.request(("request", "ping")), "status"), "ok")
        self.assertEqual(d.stop(), 0)
        self.assertFalse(d.socket.exists(), "the dropped daemon removes its socket")
        v = subprocess.run([str(imtest.CLIENT), "audit", "verify", "--db",
                            str(state / "audit.db"), "--key", str(self.work.path / "audit.pub")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_root_without_user_refuses(self):
        state = self.state_dir()
        for user, says in ((None, "user = invitemail"), ("no-such-user-imtest", "no such user")):
            d = imtest.Daemon(state, {"daemon": {"user": user},
                                      "invite": {"templates_dir": "templates",
                                                 "signatures_dir": "signatures"}},
                              start=False)
            r = subprocess.run([str(imtest.DAEMON), "-c", str(d.conf), "--foreground"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn("[daemon] user" if user is None else "user", r.stderr)
            self.assertIn(says, r.stderr)
            self.assertFalse(d.socket.exists())
            self.assertFalse((state / "queue.db").exists())
            self.assertFalse((state / "audit.db").exists())

    def test_secret_file_checks(self):
        """The SMTP password: one descriptor, O_NOFOLLOW, fstat owner and
        mode, never reopened by path (--check-config runs the same load)."""
        pw = pwd.getpwnam(DAEMON_USER)
        state = self.state_dir()
        good = state / "smtp-password"
        good.write_text("pw-Ex4mple\n")
        os.chown(good, pw.pw_uid, pw.pw_gid)
        os.chmod(good, 0o600)
        cases = [("good", good, 0, "configuration ok")]
        group_readable = state / "pw-0640"
        shutil.copy2(good, group_readable)
        os.chown(group_readable, pw.pw_uid, pw.pw_gid)
        os.chmod(group_readable, 0o640)
        cases.append(("group may read", group_readable, 78, "mode"))
        roots = state / "pw-root"
        shutil.copy2(good, roots)
        os.chown(roots, 0, 0)
        os.chmod(roots, 0o600)
        cases.append(("root's, not the daemon user's", roots, 78, "owned by uid"))
        link = state / "pw-link"
        link.symlink_to(good)
        cases.append(("symbolic link", link, 78, "symbolic link"))
        fifo = state / "pw-fifo"
        os.mkfifo(fifo, 0o600)
        os.chown(fifo, pw.pw_uid, pw.pw_gid)
        cases.append(("FIFO", fifo, 78, "not a regular file"))
        for name, path, code, says in cases:
            d = imtest.Daemon(state, {"daemon": {"user": DAEMON_USER},
                                      "invite": {"templates_dir": "templates",
                                                 "signatures_dir": "signatures"},
                                      "transport": {"type": "smtp"},
                                      "smtp": {"host": "localhost", "auth_user": "relaybot",
                                               "auth_password_file": str(path)}},
                              start=False)
            r = d.check_config()
            self.assertEqual(r.returncode, code, (name, r.stdout, r.stderr))
            self.assertIn(says, r.stdout + r.stderr, name)
            self.assertNotIn("pw-Ex4mple", r.stdout + r.stderr, name)


def json_dump(row):
    return json.dumps(row, ensure_ascii=False)


if __name__ == "__main__":
    imtest.main("local_users")
