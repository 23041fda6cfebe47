"""imtest - shared parts of invitemail's integration tests.

Starts the real programs as a user would: tests/system/smtpd.py (a real SMTP
server on 127.0.0.1, Debian's aiosmtpd) with TLS material made at test
time by tests/system/mkcerts.sh, and invitemaild from the build tree with a
configuration written into a temporary folder.  Talks to the daemon over
its real Unix socket and with the real invitemail client.

Every wait is a bounded loop: nothing here can hang a test run.
Run with Debian's /usr/bin/python3 (aiosmtpd lives there).
"""

import base64
import json
import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

TOP_BUILDDIR = pathlib.Path(os.environ.get("top_builddir", ".")).resolve()
SRCDIR = pathlib.Path(os.environ.get("srcdir", ".")).resolve()
PYTHON = os.environ.get("PYTHON3", "/usr/bin/python3")
DAEMON = TOP_BUILDDIR / "src" / "invitemaild"
CLIENT = TOP_BUILDDIR / "src" / "invitemail"
SMTPD = SRCDIR / "tests" / "system" / "smtpd.py"
MKCERTS = SRCDIR / "tests" / "system" / "mkcerts.sh"
PARSE = SRCDIR / "tests" / "system" / "parse_message.py"

LINK = "https://meet.example.org/evisit/room-4711?k=a1b2&lang=sv"
NOTICE_SV = "dataskyddsombud"

# IM_DAEMON_WRAPPER (e.g. "valgrind --error-exitcode=99 ...") is put in
# front of the daemon's command line; waits on the daemon are then
# longer, and its exit code 99 (valgrind's errors) fails the stop.
WRAPPER = shlex.split(os.environ.get("IM_DAEMON_WRAPPER", ""))
WRAPPER_EXIT = 99
SLOW = 6 if WRAPPER else 1

# Made-up people at example domains only.
RCPTS = ["tolk.anna@example.com", "vardnadshavare.1@example.org",
         "vardnadshavare.2@example.com"]


def wait_for(predicate, timeout=20.0, step=0.05, what="condition"):
    """Polls predicate until it returns a true value or timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Workdir:
    """A temporary folder removed at close (kept when IM_KEEP is set)."""

    def __init__(self, prefix="imtest-"):
        self.path = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
        # Traversable, so a test can connect as another user.
        os.chmod(self.path, 0o755)

    def close(self):
        if not os.environ.get("IM_KEEP"):
            shutil.rmtree(self.path, ignore_errors=True)


_certs = None


def certs():
    """TLS material for the whole run (made once, in a temp folder)."""
    global _certs
    if _certs is None:
        d = pathlib.Path(tempfile.mkdtemp(prefix="imcerts-"))
        subprocess.run(["sh", str(MKCERTS), str(d)], check=True,
                       stdout=subprocess.DEVNULL)
        _certs = d
    return _certs


class Smtpd:
    """tests/system/smtpd.py as a child process."""

    def __init__(self, workdir, *args, cert="server-localhost"):
        self.dir = pathlib.Path(workdir) / f"smtpd-{time.monotonic_ns()}"
        self.capture = self.dir / "capture"
        self.log = self.dir / "smtpd.log"
        self.capture.mkdir(parents=True)
        ready = self.dir / "port"
        cmd = [PYTHON, str(SMTPD), "--port", "0", "--ready-file", str(ready),
               "--capture", str(self.capture), "--log", str(self.log),
               "--max-seconds", "240"]
        if cert:
            c = certs()
            cmd += ["--cert", str(c / f"{cert}.pem"), "--key", str(c / f"{cert}.key")]
        cmd += list(args)
        with open(self.dir / "stderr", "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        self.port = int(wait_for(lambda: ready.exists() and ready.read_text().strip(),
                                 what="smtpd to listen"))

    def captures(self):
        """[(json dict, eml bytes)] in arrival order."""
        out = []
        for j in sorted(self.capture.glob("*.json")):
            eml = j.with_suffix(".eml")
            out.append((json.loads(j.read_text()), eml.read_bytes()))
        return out

    def commands(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_conf(path, sections):
    """An INI file; a key whose value is None is left out."""
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {v}" for k, v in keys.items() if v is not None]
        lines.append("")
    pathlib.Path(path).write_text("\n".join(lines))


class Daemon:
    """invitemaild from the build tree, in the foreground, on its own
    configuration in a temporary folder."""

    def __init__(self, workdir, extra=None, start=True):
        self.dir = pathlib.Path(workdir)
        self.socket = self.dir / "invitemail.sock"
        self.conf = self.dir / "invitemail.conf"
        self.logfile = self.dir / "invitemaild.log"
        sections = {
            "daemon": {"socket": "invitemail.sock", "client_timeout": "3"},
            "invite": {"templates_dir": str(SRCDIR / "templates"),
                       "signatures_dir": str(SRCDIR / "signatures"),
                       "link_hosts": "meet.example.org;*.video.example.com"},
            "retry": {"first_delay": "1", "max_delay": "2", "max_age": "600"},
        }
        if os.geteuid() == 0:
            # Started as root the daemon refuses to run without [daemon]
            # user; the suites keep root deliberately (files and sockets
            # of several users), tests/system/local_users.py drops for real.
            sections["daemon"]["user"] = "root"
        for sec, keys in (extra or {}).items():
            sections.setdefault(sec, {}).update(keys)
        write_conf(self.conf, sections)
        self.proc = None
        if start:
            self.start()

    def check_config(self):
        return subprocess.run([str(DAEMON), "-c", str(self.conf), "--check-config"],
                              capture_output=True, text=True, timeout=30)

    def start(self):
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(WRAPPER + [str(DAEMON), "-c", str(self.conf),
                                                    "--foreground"],
                                         stdout=subprocess.DEVNULL, stderr=log)
        wait_for(lambda: self.socket.exists() or self.proc.poll() is not None,
                 timeout=20 * SLOW, what="the daemon's socket")
        if self.proc.poll() is not None:
            raise AssertionError("invitemaild exited: " + self.log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(20 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("invitemaild did not stop on SIGTERM")
            if WRAPPER and code == WRAPPER_EXIT:
                raise AssertionError(f"{WRAPPER[0]} found errors in invitemaild: "
                                     + self.log()[-3000:])
            return code
        return self.proc.returncode if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    # --- the socket, spoken directly -----------------------------------
    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(str(self.socket))
        return s

    def raw(self, data, sock=None):
        """Sends bytes, returns the answer as a list of (name, value)."""
        own = sock is None
        s = sock or self.connect()
        try:
            s.sendall(data)
            return read_answer(s)
        finally:
            if own:
                s.close()

    def raw_as(self, uid, gid, data):
        """Sends bytes over the socket from a child process running as
        uid/gid (the build tree may not be reachable for that user, so
        no program is executed as it).  Returns the answer pairs."""
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rfd)
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                ans = self.raw(data)
                os.write(wfd, "\n".join(f"{k}={v}" for k, v in ans).encode())
            finally:
                os._exit(0)
        os.close(wfd)
        out = b""
        while chunk := os.read(rfd, 65536):
            out += chunk
        os.close(rfd)
        os.waitpid(pid, 0)
        return [tuple(l.split("=", 1)) for l in out.decode().split("\n") if "=" in l]

    def request(self, *pairs):
        body = "".join(f"{k}={v}\n" for k, v in pairs) + "\n"
        return self.raw(body.encode())

    # --- the client ----------------------------------------------------
    def cli(self, *args, check=False):
        r = subprocess.run([str(CLIENT), "--socket", str(self.socket), *args],
                           capture_output=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"invitemail {args[0]} exited {r.returncode}: "
                                 f"{r.stderr.decode(errors='replace')}")
        return r

    def send(self, rcpts, link=LINK, extra=()):
        args = ["send", "--link", link, "--booking", "BK-2026-0042",
                "--staff", "SE2321000016-A1B2", *extra]
        for r in rcpts:
            args += ["--bcc", r]
        r = self.cli(*args, check=True)
        return r.stdout.decode().strip()

    def status(self, invite_id):
        r = self.cli("status", "--json", invite_id, check=True)
        return json.loads(r.stdout)

    def wait_state(self, invite_id, states, timeout=30):
        return wait_for(lambda: (lambda s: s if s["state"] in states else None)(
            self.status(invite_id)), timeout=timeout, what=f"state in {states}")

    def audit_rows(self, status_shown=False):
        """The audit as dicts.  Every status answer writes a
        `status_shown` row, and the tests poll status while they wait:
        those rows are left out unless status_shown is set."""
        r = subprocess.run([str(CLIENT), "audit", "export", "--format", "jsonl",
                            "--db", str(self.dir / "audit.db")],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("audit export failed: " + r.stderr)
        rows = [json.loads(line) for line in r.stdout.splitlines() if line]
        return [r for r in rows if status_shown or r["event"] != "status_shown"]

    def audit_verify(self):
        """The chain's links and hashes (these daemons run without `audit
        init`, so there is no seal to prove; audit_compliance.py does)."""
        return subprocess.run([str(CLIENT), "audit", "verify", "--chain-only",
                               "--db", str(self.dir / "audit.db")],
                              capture_output=True, text=True, timeout=60)


def read_answer(s):
    buf = b""
    while b"\n\n" not in buf and not buf.startswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    text = buf.split(b"\n\n", 1)[0].decode("utf-8", errors="replace")
    pairs = []
    for line in text.split("\n"):
        if line:
            k, _, v = line.partition("=")
            pairs.append((k, v))
    return pairs


def answer_get(pairs, name):
    for k, v in pairs:
        if k == name:
            return v
    return None


def parse_check(eml_path, *args):
    """Runs the independent parser check (Python's email package)."""
    return subprocess.run([PYTHON, str(PARSE), str(eml_path), *args],
                          capture_output=True, text=True, timeout=60)


def password_file(workdir, secret):
    p = pathlib.Path(workdir) / "smtp-password"
    p.write_text(secret + "\n")
    os.chmod(p, 0o600)
    return p


def smtp_conf(smtpd, extra_smtp=None, auth=("relaybot", "pw-Ex4mple")):
    smtp = {"host": "localhost", "port": str(smtpd.port),
            "ca_file": str(certs() / "ca.pem"), "timeout": "3",
            "helo_name": "invitemail.test.example.org"}
    if auth:
        smtp["auth_user"] = auth[0]
        smtp["auth_password_file"] = str(password_file(smtpd.dir, auth[1]))
    smtp.update(extra_smtp or {})
    return {"transport": {"type": "smtp"}, "smtp": smtp}


def b64decode(s):
    return base64.b64decode(s)


def have_aiosmtpd():
    r = subprocess.run([PYTHON, "-c", "import aiosmtpd"], capture_output=True)
    return r.returncode == 0


def skip_or_fail(reason):
    """Exit 77 (automake's skip) outside CI; CI must never skip."""
    print(reason, file=sys.stderr)
    sys.exit(99 if os.environ.get("CI") else 77)


def report(name, result):
    """Prints the line contrib/check counts ("NAME: P passed, F failed")
    and returns the exit status: 1 on a failure or a skipped case."""
    failed = len(result.failures) + len(result.errors)
    # An error in setUpModule counts as a failure with no test run.
    passed = max(0, result.testsRun - failed - len(result.skipped))
    print(f"{name}: {passed} passed, {failed} failed")
    return 1 if failed or result.skipped else 0


def main(name, needs_aiosmtpd=True):
    """A suite's entry point: unittest, then report(name, ...)."""
    if needs_aiosmtpd and not have_aiosmtpd():
        skip_or_fail("python3-aiosmtpd is not installed")
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(report(name, prog.result))


class DaemonCase(unittest.TestCase):
    """A test with its own folder, SMTP servers and one daemon, all
    stopped at the end; the daemon's log must then hold none of the
    strings forbidden_in_log() names (no address or link, ever)."""

    workdir_prefix = "imtest-"

    def setUp(self):
        self.work = Workdir(prefix=self.workdir_prefix)
        self.servers = []
        self.daemon = None

    def forbidden_in_log(self):
        return RCPTS + [LINK, "meet.example.org/evisit"]

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.stop()
            log = self.daemon.log()
            for s in self.forbidden_in_log():
                self.assertNotIn(s, log, "personal data or a secret in the daemon's log")
        for s in self.servers:
            s.stop()
        self.work.close()

    def smtpd(self, *args, **kw):
        s = Smtpd(self.work.path, *args, **kw)
        self.servers.append(s)
        return s

    def start_daemon(self, extra=None):
        self.daemon = Daemon(self.work.path, extra)
        return self.daemon
