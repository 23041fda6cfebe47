"""local_users.py - a nosy or greedy local user against the real daemon.

The attacks of issue 9 that come from another account on the same host,
each played by a second local user made at test time (useradd; removed
at the end when this suite made it) and a forked child that switches to
that uid and speaks to the real socket directly (SO_PEERCRED then names
it): no build-tree program is run as another user.

- idempotency keys are per uid: another user's same key neither
  conflicts with the first caller's request nor answers its invite id.

Needs root (to make users and to become them); exits 77 outside CI
otherwise.  Made-up recipients at example.org / example.com only.
"""

import grp
import os
import pwd
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS, answer_get  # noqa: E402

SENDER = "imtestsender"      # allowed to send
OTHER = "imtestother"        # allowed to send, not in any status group
_created = []


def ensure_user(name, groups=()):
    try:
        pwd.getpwnam(name)
    except KeyError:
        cmd = ["useradd", "--system", "--user-group", "--no-create-home",
               "--shell", "/usr/sbin/nologin"]
        if groups:
            cmd += ["-G", ",".join(groups)]
        subprocess.run(cmd + [name], check=True)
        _created.append(("user", name))
    return pwd.getpwnam(name)


def ensure_group(name):
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True)
        _created.append(("group", name))
    return grp.getgrnam(name)


def setUpModule():
    if os.geteuid() != 0:
        imtest.skip_or_fail("local_users.py needs root to make and become local users")
    ensure_user(SENDER)
    ensure_user(OTHER)


def tearDownModule():
    for kind, name in reversed(_created):
        subprocess.run(["userdel" if kind == "user" else "groupdel", name], check=False)


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
        keys = {"allowed_users": f"{SENDER};{OTHER}", "socket_group": "nogroup"}
        keys.update(daemon or {})
        return self.start_daemon({"daemon": keys, **(extra or {})})

    def as_user(self, name, data):
        return self.daemon.raw_as(pwd.getpwnam(name).pw_uid,
                                  grp.getgrnam("nogroup").gr_gid, data)


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


if __name__ == "__main__":
    imtest.main("local_users")
