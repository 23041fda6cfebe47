"""service_manager.py - invitemaild as systemd runs it, without systemd.

A fake service manager: a datagram socket standing in for
$NOTIFY_SOCKET, $WATCHDOG_USEC set as systemd sets it for WatchdogSec=,
and systemd's own systemd-socket-activate passing a listening socket
the way invitemaild.socket does.  Checks: READY=1 only once the socket
answers, WATCHDOG=1 at least at half the interval, RELOADING=1 then
READY=1 on SIGHUP, STOPPING=1 on SIGTERM, and that a passed socket is
used instead of binding [daemon] socket and is not removed at exit.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import answer_get, read_answer  # noqa: E402


class FakeManager:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.seen = []

    def next(self, timeout=15.0):
        """The next notice as a dict, or None when none came in time."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        fields = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
        self.seen.append(fields)
        return fields

    def wait_for(self, key, timeout=15.0):
        """Reads notices until one carries key=1; returns it (or None)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            n = self.next(left)
            if n is None:
                return None
            if n.get(key) == "1":
                return n
        return None

    def close(self):
        self.sock.close()


class Base(unittest.TestCase):
    def setUp(self):
        self.work = imtest.Workdir(prefix="imsd-")
        self.mgr = FakeManager(self.work.path / "notify.sock")
        self.daemon = imtest.Daemon(self.work.path, start=False)
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.mgr.close()
        self.work.close()

    def spawn(self, argv, **env):
        full = dict(os.environ, NOTIFY_SOCKET=self.mgr.path, **env)
        for k in ("LISTEN_PID", "LISTEN_FDS", "WATCHDOG_USEC", "WATCHDOG_PID"):
            if k not in env:
                full.pop(k, None)
        self.log = open(self.work.path / "invitemaild.log", "ab")
        self.addCleanup(self.log.close)
        self.proc = subprocess.Popen(argv, env=full, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        return self.proc

    def start_notify(self, **env):
        return self.spawn([str(imtest.DAEMON), "-c", str(self.daemon.conf),
                           "--foreground"], **env)

    def ping(self, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        try:
            s.connect(str(path))
            s.sendall(b"request=ping\n\n")
            return answer_get(read_answer(s), "status")
        finally:
            s.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)

    def daemon_log(self):
        return (self.work.path / "invitemaild.log").read_text(errors="replace")


class Notify(Base):
    def test_ready_only_once_the_socket_answers(self):
        self.start_notify()
        ready = self.mgr.wait_for("READY")
        self.assertIsNotNone(ready, "no READY=1: " + self.daemon_log())
        # READY means "take requests now": the socket must answer at once.
        self.assertEqual(self.ping(self.daemon.socket), "ok")
        self.assertTrue(ready.get("STATUS"), "READY without a STATUS line")
        self.assertEqual(self.stop(), 0)

    def test_watchdog_pings_at_half_the_interval(self):
        self.start_notify(WATCHDOG_USEC="1000000")
        self.assertIsNotNone(self.mgr.wait_for("READY"), self.daemon_log())
        t0 = time.monotonic()
        pings = 0
        while time.monotonic() - t0 < 2.5:
            n = self.mgr.next(max(0.01, 2.5 - (time.monotonic() - t0)))
            if n is not None and n.get("WATCHDOG") == "1":
                pings += 1
        # 1 s interval, pinged every 0.5 s: about 5 in 2.5 s; at least 3
        # leaves room for a loaded machine, at most 1 would be a miss.
        self.assertGreaterEqual(pings, 3, self.mgr.seen)
        self.assertEqual(self.stop(), 0)

    def test_watchdog_pings_go_on_while_a_batch_waits_on_a_slow_relay(self):
        # Pings need the delivery workers alive (delivery_alive): a worker
        # inside a batch within the transport's own bound is alive, so a
        # slow relay must not cost the pings (test_health.c makes a stale
        # worker count as dead).
        srv = imtest.Smtpd(self.work.path, "--fault", "stall:3")
        self.addCleanup(srv.stop)
        self.daemon = imtest.Daemon(self.work.path, imtest.smtp_conf(srv, auth=None),
                                    start=False)
        self.start_notify(WATCHDOG_USEC="1000000")
        self.assertIsNotNone(self.mgr.wait_for("READY"), self.daemon_log())
        r = self.daemon.cli("send", "--link", imtest.LINK, "--bcc", imtest.RCPTS[0])
        self.assertEqual(r.returncode, 0, r.stderr)
        t0 = time.monotonic()
        pings = 0
        while time.monotonic() - t0 < 2.5:
            n = self.mgr.next(max(0.01, 2.5 - (time.monotonic() - t0)))
            if n is not None and n.get("WATCHDOG") == "1":
                pings += 1
        self.assertGreaterEqual(pings, 3, self.mgr.seen)
        self.assertNotIn("watchdog pings withheld", self.daemon_log())
        self.assertEqual(self.stop(), 0)

    def test_no_watchdog_pings_without_a_watchdog(self):
        self.start_notify()
        self.assertIsNotNone(self.mgr.wait_for("READY"), self.daemon_log())
        self.assertIsNone(self.mgr.wait_for("WATCHDOG", timeout=1.5), self.mgr.seen)
        self.assertEqual(self.stop(), 0)

    def test_watchdog_meant_for_another_process_is_ignored(self):
        self.start_notify(WATCHDOG_USEC="1000000", WATCHDOG_PID="1")
        self.assertIsNotNone(self.mgr.wait_for("READY"), self.daemon_log())
        self.assertIsNone(self.mgr.wait_for("WATCHDOG", timeout=1.5), self.mgr.seen)
        self.assertEqual(self.stop(), 0)

    def test_reload_and_stop_are_announced(self):
        self.start_notify()
        self.assertIsNotNone(self.mgr.wait_for("READY"), self.daemon_log())
        self.proc.send_signal(signal.SIGHUP)
        reloading = self.mgr.wait_for("RELOADING")
        self.assertIsNotNone(reloading, "no RELOADING=1 on SIGHUP")
        self.assertRegex(reloading.get("MONOTONIC_USEC", ""), r"^[0-9]+$")
        self.assertIsNotNone(self.mgr.wait_for("READY"), "no READY=1 after the reload")
        self.assertEqual(self.ping(self.daemon.socket), "ok")
        self.proc.send_signal(signal.SIGTERM)
        self.assertIsNotNone(self.mgr.wait_for("STOPPING"), "no STOPPING=1 on SIGTERM")
        self.assertEqual(self.proc.wait(20), 0)


class SocketActivation(Base):
    def test_passed_socket_is_used_and_left_in_place(self):
        tool = shutil.which("systemd-socket-activate")
        if tool is None:
            imtest.skip_or_fail("systemd-socket-activate not found (Debian: systemd)")
        act = self.work.path / "activated.sock"
        own = self.daemon.socket   # [daemon] socket: must stay unbound
        self.spawn([tool, "-l", str(act), "-E", f"NOTIFY_SOCKET={self.mgr.path}",
                    str(imtest.DAEMON), "-c", str(self.daemon.conf), "--foreground"])
        imtest.wait_for(act.exists, what="systemd-socket-activate to listen")
        # The first connection starts the daemon, which takes it from the
        # passed socket's backlog.
        self.assertEqual(self.ping(act), "ok", self.daemon_log())
        self.assertIsNotNone(self.mgr.wait_for("READY"), "no READY=1 when activated")
        exe = os.readlink(f"/proc/{self.proc.pid}/exe")
        self.assertTrue(exe.endswith("invitemaild"), exe)
        self.assertFalse(own.exists(), "the daemon bound its own socket as well")
        self.assertEqual(self.ping(act), "ok")
        self.assertEqual(self.stop(), 0)
        # The socket belongs to the manager (RemoveOnStop=): not ours to unlink.
        self.assertTrue(act.exists(), "the daemon removed the passed socket")


if __name__ == "__main__":
    imtest.main("service_manager", needs_aiosmtpd=False)
