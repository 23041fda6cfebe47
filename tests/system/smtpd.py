#!/usr/bin/python3
"""A real SMTP server on loopback for invitemail's tests (aiosmtpd).

Run with /usr/bin/python3 (Debian's python3-aiosmtpd).  It listens on
127.0.0.1 only, writes what it accepted to --capture, logs every command
line it read to --log (AUTH lines and message data are never logged), and
misbehaves on request with --fault.  It stops on SIGTERM/SIGINT and by
itself after --max-seconds, so it can never linger after a test.

Capture: each accepted transaction becomes NNNN.eml (the DATA bytes as
received, after aiosmtpd undid dot-stuffing) and NNNN.json with mail_from,
rcpt_tos, tls {on, version, cipher}, auth_user (or null), peer and sni (the
server name the client sent, or null).  Both are written atomically
(temporary name, then rename), the .eml first.

Faults (--fault FAULT, repeatable).  A FAULT may end in "@N": the fault then
fires only the first N times it matches, e.g. "data:451@1".
  greeting:CODE       answer the connection with CODE (e.g. 421) and close
  rcpt:ADDR:CODE      answer RCPT TO:<ADDR> with CODE (e.g. 451, 550)
  rcpt:ADDR:hostile   answer RCPT TO:<ADDR> with a long multi-line 550 reply
                      full of control bytes, escapes and 8-bit bytes
  data:CODE           answer the end of DATA with CODE (e.g. 451, 554)
  drop-in-data        close the connection in the middle of the message data
  stall:SECONDS       wait SECONDS before the greeting
  stall-data:SECONDS  wait SECONDS before answering the end of DATA
  tls-fail            answer STARTTLS with 220, then abort the handshake
                      with a fatal TLS alert once the ClientHello begins,
                      and close
  noop:CODE           answer NOOP with CODE (421 also closes the connection)
  per-connection:N    take N messages on a connection, then answer the next
                      MAIL FROM with 421 and close (as relays that cap
                      messages per connection do)
  starttls-inject     STARTTLS injection (CVE-2011-0411 class): answer
                      STARTTLS with "220" and, in the same write, plaintext
                      replies for EHLO, MAIL, RCPT, DATA and the message,
                      then do the TLS handshake; inside TLS every MAIL FROM
                      gets 554, as a relay that refuses everything
  starttls-inject:auth  the same, the injected EHLO offering AUTH PLAIN
                      LOGIN and an injected 235 after it
  drip-greeting:SECONDS  never finish the greeting: "220-drip" every
                      SECONDS until the client goes away
  drip-data:SECONDS   answer the end of DATA with "250-drip" every SECONDS
                      until the client goes away (nothing is captured)
  flood-greeting      an endless greeting, "220-flood..." lines as fast as
                      the client reads them
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult

# A TLS 1.2-framed fatal alert: handshake_failure (RFC 8446 6.2).
TLS_ALERT_HANDSHAKE_FAILURE = b"\x15\x03\x03\x00\x02\x02\x28"

# What a STARTTLS injection puts after the 220, in the same write: the
# answers libESMTP would next expect (EHLO, [AUTH,] MAIL, RCPT, DATA, the
# end of the message).
INJECTED = (b"250 injected.example EHLO\r\n"
            b"250 2.1.0 injected MAIL\r\n250 2.1.5 injected RCPT\r\n"
            b"354 injected DATA\r\n250 2.0.0 injected ACCEPTED\r\n")
INJECTED_AUTH = (b"250-injected.example EHLO\r\n250 AUTH PLAIN LOGIN\r\n"
                 b"235 2.7.0 injected AUTH\r\n"
                 b"250 2.1.0 injected MAIL\r\n250 2.1.5 injected RCPT\r\n"
                 b"354 injected DATA\r\n250 2.0.0 injected ACCEPTED\r\n")

HOSTILE_LINE = (b"5.1.1 \x1b[31mred\x1b[0m \x07bell \x7fdel \xff\xfe high "
                + b"A" * 700)


class Fault:
    def __init__(self, spec):
        self.spec = spec
        self.remaining = None
        head, _, count = spec.rpartition("@")
        if head and count.isdigit():  # "@N"; an address's "@" is not one
            spec, self.remaining = head, int(count)
        self.parts = spec.split(":")
        if self.parts[0] not in ("greeting", "rcpt", "data", "drop-in-data",
                                 "stall", "stall-data", "tls-fail", "noop",
                                 "per-connection", "starttls-inject",
                                 "drip-greeting", "drip-data",
                                 "flood-greeting"):
            raise ValueError("unknown fault: " + self.spec)

    def fire(self, kind, addr=None):
        """True (and counted) when this fault applies to kind/addr now."""
        if self.parts[0] != kind:
            return False
        if kind == "rcpt" and self.parts[1].lower() != (addr or "").lower():
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        return True

    @property
    def value(self):
        return self.parts[-1]


class State:
    """What all connections share: options, faults, log and capture."""

    def __init__(self, args):
        self.args = args
        self.faults = [Fault(s) for s in args.fault]
        self.counter = 0
        self.log = open(args.log, "a", buffering=1) if args.log else None
        if args.capture:
            os.makedirs(args.capture, exist_ok=True)

    def fault(self, kind, addr=None):
        for f in self.faults:
            if f.fire(kind, addr):
                return f
        return None

    def per_connection_limit(self):
        for f in self.faults:
            if f.parts[0] == "per-connection":
                return int(f.value)
        return None

    def log_line(self, peer, text):
        if self.log:
            self.log.write("%s:%s %s\n" % (peer[0], peer[1], text))

    def write_atomic(self, name, data):
        path = os.path.join(self.args.capture, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def tls_info(session):
    extra = session.ssl
    if not extra or not extra.get("ssl_object"):
        return {"on": False, "version": None, "cipher": None}, None
    obj = extra["ssl_object"]
    cipher = obj.cipher()
    return ({"on": True, "version": obj.version(),
             "cipher": cipher[0] if cipher else None},
            getattr(obj, "invitemail_sni", None))


class Handler:
    def __init__(self, state):
        self.state = state

    async def handle_RCPT(self, server, session, envelope, address, options):
        f = self.state.fault("rcpt", address)
        if f is None:
            envelope.rcpt_tos.append(address)
            return "250 OK"
        if f.value == "hostile":
            await server.push(b"550-" + HOSTILE_LINE)
            await server.push(b"550-" + HOSTILE_LINE)
            return b"550 " + HOSTILE_LINE
        return "%s test fault for this recipient" % f.value

    async def handle_DATA(self, server, session, envelope):
        f = self.state.fault("drip-data")
        if f is not None:
            await server.drip(b"250-drip", float(f.value))
            return "250 never reached"
        f = self.state.fault("stall-data")
        if f is not None:
            await asyncio.sleep(float(f.value))
        f = self.state.fault("data")
        if f is not None:
            return "%s test fault for this message" % f.value
        self.save(session, envelope)
        return "250 OK queued"

    def save(self, session, envelope):
        st = self.state
        if not st.args.capture:
            return
        st.counter += 1
        tls, sni = tls_info(session)
        auth = None
        if session.authenticated and session.auth_data is not None:
            auth = session.auth_data.login.decode("utf-8", "replace")
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "tls": tls, "auth_user": auth, "sni": sni,
                "peer": list(session.peer[:2])}
        base = "%04d" % st.counter
        st.write_atomic(base + ".eml", envelope.original_content)
        st.write_atomic(base + ".json", json.dumps(meta, sort_keys=True).encode())


class TestSMTP(SMTP):
    """aiosmtpd's SMTP with a command log and the connection-level faults."""

    def __init__(self, state, *a, **kw):
        self.state = state
        self._in_data = False
        self._in_auth = False
        self._messages = 0
        super().__init__(*a, **kw)

    def _client_connected_cb(self, reader, writer):
        super()._client_connected_cb(reader, writer)
        orig = reader.readuntil

        async def logged(*a, **kw):
            line = await orig(*a, **kw)
            self._log_read(line)
            return line
        reader.readuntil = logged

    def _log_read(self, line):
        if self._in_data:
            if self.state.fault("drop-in-data"):
                self.transport.abort()
                raise asyncio.CancelledError()
            return
        text = line.rstrip(b"\r\n").decode("ascii", "replace")
        # Never write credentials, not even a test password.
        if self._in_auth:
            text = "<auth response redacted>"
        elif text[:4].upper() == "AUTH":
            text = " ".join(text.split()[:2]) + " <redacted>"
        self.state.log_line(self.session.peer, text)

    async def drip(self, line, seconds):
        """Sends line every seconds until the client goes away."""
        try:
            while not self.transport.is_closing():
                self._writer.write(line + b"\r\n")
                await self._writer.drain()
                # A hostile relay has no idle timeout of its own.
                if hasattr(self, "_reset_timeout"):
                    self._reset_timeout()
                await asyncio.sleep(seconds)
        except (ConnectionError, OSError):
            pass

    async def flood(self, line):
        """Sends line as fast as the client reads, until it goes away."""
        try:
            while not self.transport.is_closing():
                self._writer.write((line + b"\r\n") * 64)
                await self._writer.drain()
        except (ConnectionError, OSError):
            pass

    async def _handle_client(self):
        f = self.state.fault("drip-greeting")
        if f is not None:
            await self.drip(b"220-drip", float(f.value))
            return
        if self.state.fault("flood-greeting") is not None:
            await self.flood(b"220-flood")
            return
        f = self.state.fault("stall")
        if f is not None:
            await asyncio.sleep(float(f.value))
        f = self.state.fault("greeting")
        if f is not None:
            await self.push("%s test fault: go away" % f.value)
            self.transport.close()
            return
        await super()._handle_client()

    async def smtp_DATA(self, arg):
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False
            self._messages += 1

    async def smtp_MAIL(self, arg):
        if getattr(self, "_injected", False):
            # The real relay, inside TLS, refuses everything.
            await self.push("554 5.7.1 test fault: refused (after an injection)")
            return
        limit = self.state.per_connection_limit()
        if limit is not None and self._messages >= limit:
            await self.push("421 4.7.0 test fault: too many messages on this connection")
            self.transport.close()
            return
        await super().smtp_MAIL(arg)

    async def smtp_STARTTLS(self, arg):
        f = self.state.fault("starttls-inject") if not arg and self.tls_context else None
        if f is not None:
            extra = INJECTED_AUTH if f.value == "auth" else INJECTED
            orig = self.push
            self._injected = True

            async def push_with_injection(status):
                # The 220 and the injected replies leave in one write.
                self.push = orig
                self._writer.write(status.encode("ascii") + b"\r\n" + extra)
                await self._writer.drain()
            self.push = push_with_injection
        if not arg and self.tls_context and self.state.fault("tls-fail"):
            await self.push("220 Ready to start TLS")
            # Abort the handshake the client began: wait for the first
            # bytes of its ClientHello (an alert sent before it would be
            # bytes ahead of the handshake, which the client refuses as
            # an injection).
            try:
                await asyncio.wait_for(self._reader.read(5), 10)
            except (asyncio.TimeoutError, ConnectionError):
                pass
            self.transport.write(TLS_ALERT_HANDSHAKE_FAILURE)
            self.transport.close()
            return
        await super().smtp_STARTTLS(arg)

    async def smtp_NOOP(self, arg):
        f = self.state.fault("noop")
        if f is None:
            await super().smtp_NOOP(arg)
            return
        await self.push("%s test fault for NOOP" % f.value)
        if f.value == "421":
            self.transport.close()

    async def smtp_AUTH(self, arg):
        self._in_auth = True
        try:
            await super().smtp_AUTH(arg)
        finally:
            self._in_auth = False


def make_tls(args):
    if not args.cert or args.no_starttls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.tls_max == "1.1":
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    elif args.tls_max == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def sni_cb(sslobj, name, _ctx):
        sslobj.invitemail_sni = name
    ctx.sni_callback = sni_cb
    return ctx


def make_authenticator(args):
    user, _, password = (args.auth or ":").partition(":")

    def check(server, session, envelope, mechanism, data):
        ok = (not args.auth_refuse and args.auth is not None
              and data.login == user.encode() and data.password == password.encode())
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)
    return check


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--ready-file", help="write the port here once listening")
    p.add_argument("--capture", help="folder for NNNN.eml / NNNN.json")
    p.add_argument("--log", help="append every command line read (AUTH redacted)")
    p.add_argument("--cert", help="server certificate (PEM): offer STARTTLS")
    p.add_argument("--key", help="server key (PEM)")
    p.add_argument("--no-starttls", action="store_true")
    p.add_argument("--require-tls", action="store_true",
                   help="530 to MAIL before STARTTLS")
    p.add_argument("--auth", metavar="USER:PASS", help="offer AUTH PLAIN/LOGIN")
    p.add_argument("--auth-plaintext", action="store_true",
                   help="offer AUTH without TLS too")
    p.add_argument("--auth-refuse", action="store_true", help="every AUTH gets 535")
    p.add_argument("--require-auth", action="store_true", help="530 to MAIL before AUTH")
    p.add_argument("--tls-max", choices=["1.1", "1.2"],
                   help="offer only TLS up to this version")
    p.add_argument("--fault", action="append", default=[], metavar="FAULT")
    p.add_argument("--max-seconds", type=float, default=300)
    return p.parse_args(argv)


async def serve(args):
    state = State(args)
    loop = asyncio.get_running_loop()
    tls = make_tls(args)
    offer_auth = args.auth is not None or args.auth_refuse

    def factory():
        return TestSMTP(state, Handler(state), loop=loop, hostname="smtpd.test",
                        tls_context=tls, require_starttls=args.require_tls,
                        auth_required=args.require_auth,
                        auth_require_tls=not args.auth_plaintext,
                        authenticator=make_authenticator(args),
                        auth_exclude_mechanism=None if offer_auth else ["PLAIN", "LOGIN"],
                        timeout=60)
    server = await loop.create_server(factory, "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.ready_file)
    if args.port == 0:
        print(port, flush=True)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.call_later(args.max_seconds, lambda: stop.done() or stop.set_result(None))
    await stop
    server.close()


def main(argv):
    args = parse_args(argv)
    # aiosmtpd logs each command (AUTH included) at INFO: keep it quiet.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore", DeprecationWarning)
    if args.cert and not args.key:
        sys.exit("--cert needs --key")
    for spec in args.fault:
        Fault(spec)  # fail early on a typo
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
