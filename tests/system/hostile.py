"""hostile.py - the hostile-input corpus against a real invitemaild.

Starts the daemon from the build tree (tests/system/imtest.py, file transport)
and sends it well over 300 hostile requests over its real Unix socket:
every field with CR, LF, NUL, other C0/C1 controls and bidi or invisible
characters; invalid and overlong UTF-8; header and SMTP-command
injection; javascript:/data:/http:/ftp: links, userinfo, look-alike and
IDN hosts; oversize lines, requests and recipient lists; unterminated
requests; binary garbage; many connections held open; slow drips.

Each case asserts:
- the answer is `status=rejected` with the expected stable `error=` code
  and `field=` (or no field), or, where no answer is possible, that the
  daemon closed the connection;
- a framing error (which cannot be resynchronised) also closes it;
- nothing was queued: the queue has no invite and the outbox no file;
- `ping` is still answered on a new connection.
Slow clients: a request dripped one byte per 100 ms must still be served
when it completes within client_timeout; a drip that stops, or one that
never ends, must be answered `timeout`; a silent connection is closed.
Over the whole run the daemon's RSS (VmRSS) is sampled and must end
below start + 20 MB (plus the quarantine under ASan); the audit must hold no `accepted` row and verify;
the daemon's log must hold none of the addresses and links sent.

A few hostile-looking values are valid (an upper-case host, an IDN
domain, a percent-encoded CRLF in a link path): those "controls" go as
`preview` (never queued) and must be answered `ok` with a message that
holds no recipient and no Bcc/To/Cc header.

Ends with `hostile corpus: N cases, N refused as expected` and the
closing line `hostile: N passed, M failed`; exits non-zero on any
failure.  Run with Debian's /usr/bin/python3.
"""

import base64
import os
import random
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402

CLOSED = "<closed>"          # expected outcome: no answer, connection closed
LINK = "https://meet.example.org/evisit/room-4711?k=a1b2"
RCPT = "tolk.anna@example.com"
CLIENT_TIMEOUT = 4           # [daemon] client_timeout for this run
PER_UID_CAP = 64             # CONTROL_MAX_PER_UID in src/control.h
RSS_SLACK_KB = 20 * 1024
# Under ASan, freed memory waits in a quarantine (256 MB by default)
# before reuse, which RSS cannot tell from a leak: the daemon gets a
# small one, and the bound allows for it (twice: redzones and metadata).
ASAN_QUARANTINE_MB = 8

# Every address and link this run sends, for the log check at the end.
SENT_SECRETS = set()


# ---- building requests ---------------------------------------------------

def enc(v):
    return v if isinstance(v, bytes) else v.encode("utf-8")


def req(*pairs):
    """name=value lines (str or bytes) and the empty line."""
    out = b""
    for k, v in pairs:
        if k == "bcc" or k == "link":
            SENT_SECRETS.add(enc(v))
        out += enc(k) + b"=" + enc(v) + b"\n"
    return out + b"\n"


def send_with(**over):
    """A valid send request with some attributes replaced (bytes ok);
    a value of None leaves the attribute out."""
    base = [("request", "send"), ("link", LINK), ("bcc", RCPT),
            ("booking", "BK-2026-0042"), ("staff", "SE2321000016-A1B2"),
            ("lang", "sv"), ("template", "evisit"),
            ("meeting_time", "2099-12-02T14:00:00+01:00"),
            ("idempotency_key", "hostile-req-1")]
    pairs = [(k, over.get(k, v)) for k, v in base]
    pairs += [(k, v) for k, v in over.items() if k not in dict(base)]
    return req(*[(k, v) for k, v in pairs if v is not None])


class Case:
    def __init__(self, name, data, code, field=None, kind="plain", closes=False):
        self.name = name
        self.data = data          # bytes, or a callable(daemon) -> (pairs, closed)
        self.code = code          # refusal code, or CLOSED
        self.field = field
        self.kind = kind
        self.closes = closes      # a framing error: answered, then closed


# ---- characters ----------------------------------------------------------

# C0 controls besides CR, LF and NUL (which break framing), DEL, C1.
C0 = [b"\x01", b"\x07", b"\x08", b"\x09", b"\x0b", b"\x0c", b"\x1b", b"\x1f", b"\x7f"]
C1 = ["\u0080", "\u0085", "\u009b", "\u009f"]
# Bidi, zero-width and separator characters: valid UTF-8, no control,
# but they make text read differently from its bytes.
INVISIBLE = ["\u202e", "\u202d", "\u202a", "\u202b", "\u202c", "\u2066", "\u2067",
             "\u2068", "\u2069", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f",
             "\ufeff", "\u2028", "\u2029", "\u061c", "\u00ad"]
BAD_UTF8 = {
    "overlong-nul-c080": b"\xc0\x80",
    "overlong-slash-c0af": b"\xc0\xaf",
    "overlong-3byte-e08080": b"\xe0\x80\x80",
    "overlong-4byte-f0808080": b"\xf0\x80\x80\x80",
    "surrogate-eda080": b"\xed\xa0\x80",
    "surrogate-low-edbfbf": b"\xed\xbf\xbf",
    "f5-out-of-range": b"\xf5\x80\x80\x80",
    "f4-90-over-max": b"\xf4\x90\x80\x80",
    "ff-byte": b"\xff",
    "fe-byte": b"\xfe",
    "lone-continuation": b"\x80",
    "truncated-e282": b"\xe2\x82",
    "5-byte-f8": b"\xf8\x88\x80\x80\x80",
}

# Where a character goes into a valid value of each field, and what the
# daemon answers when it is a visible-but-forbidden (bidi) character.
FIELDS = {
    # field: (prefix, suffix, code for an invisible character)
    "link": ("https://meet.example.org/ev", "isit/1", "invalid_link"),
    "bcc": ("tolk.anna@exam", "ple.com", "invalid_address"),
    "booking": ("BK-2026", "-0042", "invalid_value"),
    "staff": ("SE23210", "00016-A1B2", "invalid_value"),
    "lang": ("s", "v", "invalid_value"),
    "template": ("evi", "sit", "invalid_value"),
    "meeting_time": ("2099-12-02T14:00", ":00+01:00", "invalid_meeting_time"),
    "idempotency_key": ("hostile", "-req-2", "invalid_value"),
    "unit": ("Vårdcentral", "en Åby", "invalid_value"),
}


def with_field(field, value):
    if field == "id":
        return req(("request", "status"), ("id", value))
    return send_with(**{field: value})


def field_value(field, middle):
    pre, suf, _ = FIELDS[field] if field != "id" else ("0123456789", "abcdefghij", "")
    return enc(pre) + enc(middle) + enc(suf)


def control_cases():
    cases = []
    fields = list(FIELDS) + ["id"]
    for f in fields:
        for name, ch in (("CR", b"\r"), ("CRLF", b"\r\n"), ("NUL", b"\x00")):
            cases.append(Case(f"{f}: {name}", with_field(f, field_value(f, ch)),
                              "malformed", None, "control", closes=True))
        # A bare LF ends the line: what follows is not name=value.
        cases.append(Case(f"{f}: LF splits the line", with_field(f, field_value(f, b"\nx y")),
                          "malformed", None, "control"))
        for ch in C0:
            cases.append(Case(f"{f}: C0 {ch!r}", with_field(f, field_value(f, ch)),
                              "invalid_value", f, "control"))
        for ch in C1:
            cases.append(Case(f"{f}: C1 U+{ord(ch):04X}", with_field(f, field_value(f, ch)),
                              "invalid_value", f, "control"))
        for name, b in BAD_UTF8.items():
            cases.append(Case(f"{f}: bad UTF-8 {name}", with_field(f, field_value(f, b)),
                              "invalid_value", f, "utf8"))
    # Invisible characters pass the parser and are refused by the gate.
    for f in fields:
        code = FIELDS[f][2] if f != "id" else "invalid_value"
        for ch in INVISIBLE:
            cases.append(Case(f"{f}: invisible U+{ord(ch):04X}",
                              with_field(f, field_value(f, ch)), code, f, "bidi"))
    # The same in the local part of an address: no SMTPUTF8 here.
    for ch in INVISIBLE[:6]:
        cases.append(Case(f"bcc local part: U+{ord(ch):04X}",
                          send_with(bcc="tolk" + ch + ".anna@example.com"),
                          "address_utf8", "bcc", "bidi"))
    # And in the host of the link.
    for ch in INVISIBLE[:6]:
        cases.append(Case(f"link host: U+{ord(ch):04X}",
                          send_with(link="https://meet.exam" + ch + "ple.org/x"),
                          "invalid_link", "link", "bidi"))
    return cases


def injection_cases():
    c = []
    crlf = [
        ("bcc: RCPT TO injection", "bcc", b"x@example.com>\r\nRCPT TO:<y@example.com"),
        ("bcc: end of DATA", "bcc", b"x@example.com\r\n.\r\nMAIL FROM:<y@example.com>"),
        ("bcc: Bcc header", "bcc", b"x@example.com\r\nBcc: y@example.com"),
        ("booking: Bcc header", "booking", b"BK-1\r\nBcc: y@example.com"),
        ("booking: end of DATA", "booking", b"BK-1\r\n.\r\nMAIL FROM:<y@example.com>"),
        ("staff: To header", "staff", b"SE1\r\nTo: y@example.com"),
        ("link: header after the link", "link", b"https://meet.example.org/x\r\nBcc: y@example.com"),
        ("lang: Subject header", "lang", b"sv\r\nSubject: x"),
        ("meeting_time: header", "meeting_time", b"2099-12-02T14:00:00+01:00\r\nCc: y@example.com"),
    ]
    for name, f, v in crlf:
        c.append(Case(name + " (CRLF)", send_with(**{f: v}), "malformed", None, "injection",
                      closes=True))
        c.append(Case(name + " (LF)", send_with(**{f: v.replace(b"\r", b"")}), "malformed",
                      None, "injection"))
    # Without line breaks: the value itself must not pass.
    bad_addresses = [
        "x@example.com> RCPT TO:<y@example.com", "<x@example.com>", "x@example.com>",
        "Bcc: y@example.com", "x@example.com,y@example.com", "x@example.com;y@example.com",
        "x@example.com y@example.com", "x(comment)@example.com", "\"x y\"@example.com",
        "\"x\"@example.com", "x@[127.0.0.1]", "x@[IPv6:::1]", "x\\y@example.com",
        "@example.com", "x@", "x", "", "x@@example.com", "x@y@example.com",
        "x@example..com", ".x@example.com", "x.@example.com", "x..y@example.com",
        "x@-example.com", "x@example-.com", "x@example.com.", "x@localhost",
        "x@123.45", "x@example.123", "x@ex_ample.com", "x@exam ple.com",
        "a" * 65 + "@example.com", "x@" + "a" * 64 + ".example.com",
        "x@" + ".".join(["abcdefghij"] * 25) + ".com",
        "x:y@example.com", "x@example.com:25", "mailto:x@example.com",
        "x@example.com%0D%0ARCPT",
    ]
    for a in bad_addresses:
        c.append(Case(f"bcc: {a[:48]!r}", send_with(bcc=a), "invalid_address", "bcc",
                      "address"))
    for a in ["tolk.änna@example.com", "анна@example.com", "x\u00a0y@example.com"]:
        c.append(Case(f"bcc: non-ASCII local part {a!r}", send_with(bcc=a), "address_utf8",
                      "bcc", "address"))
    # Spaced or bracketed values in the token fields.
    for f, v in (("staff", "SE1 Bcc: y@example.com"), ("staff", "<SE1>"),
                 ("idempotency_key", "k\";DROP TABLE invites;--"),
                 ("idempotency_key", "k y"), ("staff", "a" * 65),
                 ("idempotency_key", "k" * 129), ("booking", "b" * 129),
                 ("booking", ""), ("staff", ""), ("lang", "sv,en"), ("lang", "SV"),
                 ("lang", "svvv"), ("lang", "../sv"), ("template", "../evisit"),
                 ("template", "evisit/../../x"), ("template", "-evisit"),
                 ("template", "Evisit"), ("template", "e" * 65)):
        c.append(Case(f"{f}: {v[:40]!r}", send_with(**{f: v}), "invalid_value", f, "token"))
    return c


# Free text that reaches the mail (booking, unit): nothing a mail client
# could turn into a link or an address gets past the gate (issue 9 p. 5).
LINKISH = [
    "Cancelled - rebook at https://evil.example.com/login",
    "rebook at HTTPS://EVIL.EXAMPLE.COM", "see http:evil", "go to www.evil",
    "WWW.EVIL", "evil.example.com", "rebook at evil.example/login", "evil.com",
    "räksmörgås.se", "evil\u3002com", "evil\uff0ecom", "evil\uff61com",
    "evil\u06d4com", "10.0.0.1", "mail tolk.anna@example.com", "x\uff20example",
    "mailto:x", "tel:+46701234567", "javascript:alert(1)", "go //evil",
    "<a href=x>x</a>", "<script>alert(1)</script>", "=?utf-8?q?x=0D=0ABcc:_y?=",
    "[click](x)", "evil .com!", "\"quoted\"", "a\\b", "100%", "a|b", "x" * 101,
    " leading", "trailing ", "two  spaces",
]


def free_text_cases():
    c = []
    for f in ("booking", "unit"):
        for v in LINKISH:
            c.append(Case(f"{f}: {v[:40]!r}", send_with(**{f: v}), "invalid_value", f,
                          "free text"))
        c.append(Case(f"{f}: in a preview", req(("request", "preview"), ("link", LINK),
                                                  ("bcc", RCPT), (f, LINKISH[0])),
                      "invalid_value", f, "free text"))
    c.append(Case("booking: 65 characters", send_with(booking="b" * 65), "invalid_value",
                  "booking", "free text"))
    c.append(Case("unit: in a ping", req(("request", "ping"), ("unit", "Avd 4")),
                  "unknown_attribute", "unit", "free text"))
    return c


def lookalike(s):
    return s.replace("a", "\u0430", 1)      # Cyrillic а


def link_cases():
    c = []
    not_https = [
        "javascript:alert(1)", "JavaScript:alert(document.cookie)", "javascript://meet.example.org/%0Aalert(1)",
        "data:text/html,<script>alert(1)</script>", "data:text/html;base64,PHNjcmlwdD4=",
        "http://meet.example.org/evisit/1", "HTTP://meet.example.org/", "ftp://meet.example.org/x",
        "file:///etc/passwd", "vbscript:msgbox(1)", "mailto:x@example.com", "ws://meet.example.org/",
        "httpss://meet.example.org/", "http+https://meet.example.org/", "https+x://meet.example.org/",
    ]
    for link in not_https:
        c.append(Case(f"link: {link[:48]}", send_with(link=link), "link_not_https", "link", "link"))
    invalid = [
        "//meet.example.org/x", "meet.example.org/x", "https:meet.example.org/x",
        "https:/meet.example.org/x", "https:///x", " https://meet.example.org/x",
        "https://meet.example.org@evil.example.com/", "https://user:pw@meet.example.org/",
        "https://meet.example.org%2F@evil.example.com/", "https://meet%2Eexample.org/",
        "https://meet.example.org\\@evil.example.com/", "https://meet.example.org/x y",
        "https://meet.example.org/<script>", "https://meet.example.org/\"onmouseover=\"x",
        "https://meet.example.org/{x}", "https://meet.example.org/a|b",
        "https://meet.example.org/`x`", "https://meet.example.org/x^y",
        "https://meet.example.org./x", "https://MEET.example.org../x",
        "https://meet.example.org:0/", "https://meet.example.org:99999/",
        "https://meet.example.org:-1/", "https://meet.example.org:x/",
        "https://2130706433/", "https://0x7f.1/", "https://meet.example.org/é",
        "https://meet.example.org/?q=ä", "https://meet.example.org/#å",
        "https://-meet.example.org/", "https://meet_x.example.org/",
        "https://" + "a" * 64 + ".example.org/", "https://meet.example.org/" + "x" * 2100,
        "https://", "https://?", "https://#", "https",
    ]
    for link in invalid:
        c.append(Case(f"link: {link[:48]!r}", send_with(link=link), "invalid_link", "link",
                      "link"))
    cyr = "https://meet." + lookalike("example") + ".org/x"
    puny = "https://meet." + lookalike("example").encode("idna").decode() + ".org/x"
    not_allowed = [
        "https://evil.example.com/meet.example.org", "https://meet.example.org.evil.example.com/",
        "https://evilmeet.example.org/", "https://example.org/", "https://video.example.com/",
        "https://xvideo.example.com/", "https://video.example.com.evil.example/",
        "https://127.0.0.1/", "https://[::1]/", "https://[::ffff:127.0.0.1]/",
        "https://10.0.0.1/evisit", "https://localhost/",
        cyr, puny, "https://m\u0435et.example.org/",            # Cyrillic е
        "https://meet.ex\u0430mple.org/", "https://meet.example.\u043erg/",
        "https://meet.xn--example-9c.org/", "https://xn--meet-cua.example.org/",
        "https://meet.example.org\u3002evil.example/",             # ideographic full stop
    ]
    for link in not_allowed:
        c.append(Case(f"link: {link[:48]!r}", send_with(link=link), "link_host_not_allowed",
                      "link", "link"))
    return c


def protocol_cases():
    c = []
    P = "protocol"
    ping_bytes = b"request=ping\n\n"
    c += [
        Case("no request line", req(("link", LINK)), "missing_field", "request", P),
        Case("empty request", b"\n", "missing_field", "request", P),
        Case("request= empty", req(("request", "")), "unknown_request", "request", P),
        Case("request=SEND", req(("request", "SEND")), "unknown_request", "request", P),
        Case("request=sendmail", req(("request", "sendmail")), "unknown_request", "request", P),
        Case("unknown attribute", req(("request", "ping"), ("foo", "bar")),
             "unknown_attribute", "foo", P),
        Case("to attribute", send_with() [:-1] + b"to=y@example.com\n\n", "unknown_attribute",
             "to", P),
        Case("cc attribute", send_with()[:-1] + b"cc=y@example.com\n\n", "unknown_attribute",
             "cc", P),
        Case("bcc in a ping", req(("request", "ping"), ("bcc", RCPT)), "unknown_attribute",
             "bcc", P),
        Case("idempotency_key in a preview",
             req(("request", "preview"), ("link", LINK), ("bcc", RCPT), ("idempotency_key", "k")),
             "unknown_attribute", "idempotency_key", P),
        Case("upper-case name", b"Request=ping\n\n", "malformed", None, P),
        Case("name with digit", b"request=ping\nbcc2=x@example.com\n\n", "malformed", None, P),
        Case("name too long", b"request=ping\n" + b"a" * 33 + b"=x\n\n", "malformed", None, P),
        Case("empty name", b"request=ping\n=x\n\n", "malformed", None, P),
        Case("space before =", b"request =ping\n\n", "malformed", None, P),
        Case("line without =", b"request=ping\nhello\n\n", "malformed", None, P),
        Case("line of spaces", b"request=ping\n   \n\n", "malformed", None, P),
        Case("repeated link", send_with()[:-1] + b"link=" + LINK.encode() + b"\n\n",
             "repeated_attribute", "link", P),
        Case("repeated request", b"request=ping\nrequest=send\n\n", "repeated_attribute",
             "request", P),
        Case("missing link", send_with(link=None), "missing_field", "link", P),
        Case("no recipient", send_with(bcc=None), "no_recipients", "bcc", P),
        Case("status without id", req(("request", "status")), "missing_field", "id", P),
        Case("status unknown id", req(("request", "status"), ("id", "0123456789abcdefghij")),
             "not_found", "id", P),
        Case("status id too short", req(("request", "status"), ("id", "abc")),
             "invalid_value", "id", P),
        Case("status id SQL", req(("request", "status"), ("id", "' OR '1'='1")),
             "invalid_value", "id", P),
        Case("status id glob", req(("request", "status"), ("id", "%%%%%%%%%%%%%%%%%%%%")),
             "invalid_value", "id", P),
        Case("unknown lang", send_with(lang="de"), "unknown_lang", "lang", P),
        Case("unknown template", send_with(template="nope"), "unknown_template", "template", P),
        Case("notice as template", send_with(template="privacy-notice"), "unknown_template",
             "template", P),
        Case("meeting passed", send_with(meeting_time="2001-01-01T10:00:00+01:00"),
             "meeting_passed", "meeting_time", P),
        Case("meeting without offset", send_with(meeting_time="2099-12-02T14:00:00"),
             "invalid_meeting_time", "meeting_time", P),
        Case("meeting Feb 30", send_with(meeting_time="2099-02-30T14:00:00+01:00"),
             "invalid_meeting_time", "meeting_time", P),
        Case("meeting week date", send_with(meeting_time="2099-W49-3T14:00:00Z"),
             "invalid_meeting_time", "meeting_time", P),
        Case("meeting 25:00", send_with(meeting_time="2099-12-02T25:00:00Z"),
             "invalid_meeting_time", "meeting_time", P),
        Case("meeting huge year", send_with(meeting_time="99999-12-02T14:00:00Z"),
             "invalid_meeting_time", "meeting_time", P),
        Case("meeting 10 fraction digits", send_with(meeting_time="2099-12-02T14:00:00.0123456789Z"),
             "invalid_meeting_time", "meeting_time", P),
        Case("meeting shell", send_with(meeting_time="$(reboot)"),
             "invalid_meeting_time", "meeting_time", P),
        Case("a good ping, then garbage on the same connection",
             pipelined(ping_bytes + b"\xff\xfe garbage\n\n", 2), "malformed", None, P),
        Case("three pings, then a CR on the same connection",
             pipelined(ping_bytes * 3 + b"request=ping\r\n\n", 4), "malformed", None, P,
             closes=True),
    ]
    return c


def size_cases():
    S = "size"
    c = [
        Case("line of 4096 bytes", req(("request", "send"), ("booking", "x" * 4090)),
             "line_too_long", None, S, closes=True),
        Case("line of 1 MB", b"request=send\nbooking=" + b"x" * (1 << 20) + b"\n\n",
             "line_too_long", None, S, closes=True),
        Case("line of 5000 bytes without LF", b"request=send\nbooking=" + b"y" * 5000,
             "line_too_long", None, S, closes=True),
        Case("request over 64 KiB",
             b"request=send\n" + (b"booking=" + b"y" * 4000 + b"\n") * 17 + b"\n",
             "request_too_large", None, S, closes=True),
        Case("129 attributes", b"request=send\n" + b"bcc=x@example.com\n" * 128 + b"\n",
             "too_many_attributes", None, S, closes=True),
        Case("101 recipient lines",
             req(("request", "send"), ("link", LINK),
                 *[("bcc", f"r{i}@example.com") for i in range(101)]),
             "too_many_recipients", "bcc", S),
        Case("11 distinct recipients (max_recipients 10)",
             req(("request", "send"), ("link", LINK),
                 *[("bcc", f"r{i}@example.com") for i in range(11)]),
             "too_many_recipients", "bcc", S),
        Case("100 recipients, one bad at the end",
             req(("request", "send"), ("link", LINK),
                 *[("bcc", f"r{i}@example.com") for i in range(99)], ("bcc", "bad@")),
             "invalid_address", "bcc", S),
    ]
    return c


def garbage_cases():
    rnd = random.Random(4711)
    c = []
    G = "garbage"
    for i in range(12):
        body = bytes(rnd.choice([b for b in range(256) if b not in (0, 10, 13, 61)])
                     for _ in range(rnd.randint(1, 3000)))
        c.append(Case(f"garbage #{i} (no NUL/CR/=)", body + b"\n\n", "malformed", None, G))
    for i in range(8):
        body = b"gar\x00" + bytes(rnd.randrange(256) for _ in range(rnd.randint(16, 2000)))
        c.append(Case(f"garbage #{i} with NUL", body, "malformed", None, G, closes=True))
    for i in range(6):
        # Ends with 0xff, so it can never be valid UTF-8 by chance.
        body = bytes(rnd.randrange(0x80, 0x100) for _ in range(rnd.randint(0, 500))) + b"\xff"
        c.append(Case(f"high bytes #{i} as booking", send_with(booking=body),
                      "invalid_value", "booking", G))
    c += [
        Case("TLS ClientHello", bytes.fromhex("160301020001000200030300") + bytes(40),
             "malformed", None, G, closes=True),
        Case("HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "malformed", None, G,
             closes=True),
        Case("SMTP greeting", b"EHLO evil.example.com\r\nMAIL FROM:<x@example.com>\r\n",
             "malformed", None, G, closes=True),
        Case("SMTP with LF", b"EHLO evil.example.com\nMAIL FROM:<x@example.com>\n\n",
             "malformed", None, G),
        Case("JSON", b'{"request":"send","bcc":["x@example.com"]}\n\n', "malformed", None, G),
        Case("UTF-16 BOM request", "request=ping\n\n".encode("utf-16"), "malformed", None, G,
             closes=True),
        Case("UTF-8 BOM before name", b"\xef\xbb\xbfrequest=ping\n\n", "malformed", None, G),
        Case("bare CR", b"\r", "malformed", None, G, closes=True),
        Case("NUL only", b"\x00", "malformed", None, G, closes=True),
        Case("percent-encoded request", b"request%3Dping\n\n", "malformed", None, G),
    ]
    return c


# ---- cases that need their own conversation ------------------------------

def unterminated(data):
    def run(d):
        s = d.connect()
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return read_answer(s, 10)
        finally:
            s.close()
    return run


def stream_cases():
    S = "stream"
    c = []
    for name, data in [
            ("half a line", b"request=se"),
            ("a line, no end", b"request=send\n"),
            ("a full send but no empty line", send_with()[:-1]),
            ("half a send", send_with()[:60]),
            ("garbage, no end", b"\xff\xfe\x01\x02"),
            ("one byte", b"r")]:
        c.append(Case(f"unterminated: {name}", unterminated(data), CLOSED, None, S))
    c.append(Case("drip that stops half-way", drip(b"request=send\nlink=", stop=True),
                  "timeout", None, S))
    c.append(Case("drip that never ends", drip_forever, "timeout", None, S))
    c.append(Case("silent connection is closed", silent, CLOSED, None, S))
    c.append(Case(f"{PER_UID_CAP} connections held open, one more is busy", hold_open,
                  "busy", None, S))
    return c


def pipelined(data, n):
    """Sends data at once, returns the n-th answer."""
    def run(d):
        s = d.connect()
        try:
            s.sendall(data)
            s.settimeout(10)
            buf = b""
            while buf.count(b"\n\n") < n:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            answers = buf.split(b"\n\n")
            for earlier in answers[:n - 1]:
                if imtest.answer_get(parse_pairs(earlier + b"\n\n"), "status") != "ok":
                    raise AssertionError(f"an earlier answer was {earlier!r}")
            last = parse_pairs(answers[n - 1] + b"\n\n") if len(answers) > n - 1 else []
            s.settimeout(2)
            try:
                closed = s.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                closed = False
            return last, closed
        finally:
            s.close()
    return run


def drip(data, stop=False):
    def run(d):
        s = d.connect()
        try:
            t0 = time.monotonic()
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                time.sleep(0.1)
            took = time.monotonic() - t0
            limit = 3 * CLIENT_TIMEOUT + 5
            pairs, closed = read_answer(s, limit)
            if not stop and took > CLIENT_TIMEOUT:
                raise AssertionError(f"drip took {took:.1f}s, over client_timeout")
            return pairs, closed
        finally:
            s.close()
    return run


def drip_forever(d):
    """One byte every 100 ms of a request that never ends: the daemon
    must answer `timeout` (and close) instead of being held."""
    s = d.connect()
    s.setblocking(False)
    deadline = time.monotonic() + 3 * CLIENT_TIMEOUT + 5
    buf = b""
    pattern = b"request=send\nbooking=" + b"x" * 4000 + b"\nbooking="
    i = 0
    try:
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
                if b"\n\n" in buf:
                    break
            except BlockingIOError:
                pass
            try:
                s.send(pattern[i % len(pattern):i % len(pattern) + 1])
                i += 1
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
            time.sleep(0.1)
        return parse_pairs(buf), not buf or b"\n\n" in buf
    finally:
        s.close()


def silent(d):
    s = d.connect()
    try:
        return read_answer(s, CLIENT_TIMEOUT + 10)
    finally:
        s.close()


def hold_open(d):
    held = []
    try:
        for _ in range(PER_UID_CAP):
            s = d.connect()
            s.sendall(b"request=ping\n\n")
            pairs, _ = read_answer(s, 10, expect_close=False)
            if imtest.answer_get(pairs, "status") != "ok":
                raise AssertionError(f"connection {len(held)} not admitted: {pairs}")
            held.append(s)
        extra = d.connect()
        held.append(extra)
        return read_answer(extra, 10)
    finally:
        for s in held:
            s.close()


# ---- talking -------------------------------------------------------------

def parse_pairs(buf):
    text = buf.split(b"\n\n", 1)[0].decode("utf-8", errors="replace")
    return [tuple(line.split("=", 1)) if "=" in line else (line, "")
            for line in text.split("\n") if line]


def read_answer(s, timeout, expect_close=True):
    """Reads one answer; then, if expect_close, whether the daemon
    closes.  Returns (pairs, closed)."""
    s.settimeout(timeout)
    buf = b""
    closed = False
    try:
        while b"\n\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            buf += chunk
    except socket.timeout:
        return parse_pairs(buf), False
    except ConnectionResetError:
        closed = True
    if expect_close and not closed:
        s.settimeout(2)
        try:
            closed = s.recv(1) == b""
        except ConnectionResetError:
            closed = True       # closed with our bytes unread
        except socket.timeout:
            closed = False
    return parse_pairs(buf), closed


def exchange(d, data, expect_close=False):
    s = d.connect()
    try:
        s.settimeout(10)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass   # refused early (line too long): the answer is waiting
        return read_answer(s, 15, expect_close)
    finally:
        s.close()


# ---- the run -------------------------------------------------------------

def daemon_has_asan():
    try:
        return b"__asan_init" in imtest.DAEMON.read_bytes()
    except OSError:
        return False


class Run:
    def __init__(self):
        self.rss_slack = RSS_SLACK_KB
        if daemon_has_asan():
            opts = os.environ.get("ASAN_OPTIONS", "")
            os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
                f"quarantine_size_mb={ASAN_QUARANTINE_MB}"
            self.rss_slack += 2 * ASAN_QUARANTINE_MB * 1024
            print(f"ASan build: quarantine {ASAN_QUARANTINE_MB} MB, RSS bound start + "
                  f"{self.rss_slack // 1024} MB")
        self.work = imtest.Workdir(prefix="imhostile-")
        self.daemon = imtest.Daemon(self.work.path, {
            "daemon": {"client_timeout": str(CLIENT_TIMEOUT)},
            "transport": {"type": "file"},
        })
        self.outbox = self.work.path / "outbox"
        self.passed = 0
        self.failed = 0
        self.refused = 0
        self.answered = 0        # refusals answered (and so audited)
        self.rss = []

    def vmrss(self):
        with open(f"/proc/{self.daemon.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def queued(self):
        db = self.work.path / "queue.db"
        if not db.exists():
            return 0
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute("SELECT count(*) FROM invites").fetchone()[0]
        finally:
            con.close()

    def ping_ok(self):
        # Connections a case just closed may not be reaped yet: a `busy`
        # is retried for a moment.
        deadline = time.monotonic() + 5
        while True:
            pairs, _ = exchange(self.daemon, b"request=ping\n\n")
            if (imtest.answer_get(pairs, "error") != "busy"
                    or time.monotonic() > deadline):
                return imtest.answer_get(pairs, "status") == "ok"
            time.sleep(0.1)

    def check(self, case):
        if callable(case.data):
            pairs, closed = case.data(self.daemon)
        else:
            pairs, closed = exchange(self.daemon, case.data, case.closes)
        got = imtest.answer_get(pairs, "error")
        if case.code == CLOSED:
            assert not pairs, f"expected no answer, got {pairs}"
            assert closed, "the connection was not closed"
        else:
            assert imtest.answer_get(pairs, "status") == "rejected", f"not refused: {pairs}"
            assert got == case.code, f"error={got}, expected {case.code}: {pairs}"
            field = imtest.answer_get(pairs, "field")
            assert field == case.field, f"field={field}, expected {case.field}"
            msg = imtest.answer_get(pairs, "message") or ""
            assert msg and all(0x20 <= ord(ch) < 0x7f for ch in msg), f"message {msg!r}"
            if case.closes:
                assert closed, "a framing error must close the connection"
        assert self.daemon.alive(), "the daemon died"
        assert self.ping_ok(), "ping not answered after the case"
        assert self.queued() == 0, "an invite was queued"
        assert not (self.outbox.exists() and any(self.outbox.iterdir())), "outbox not empty"

    def run_case(self, case):
        try:
            self.check(case)
            self.passed += 1
            self.refused += 1
            self.answered += case.code != CLOSED
        except Exception as e:  # noqa: BLE001 - report every failure, go on
            self.failed += 1
            print(f"FAIL [{case.kind}] {case.name}: {e}")
        self.rss.append(self.vmrss())

    def control(self, name, link=LINK, bcc=RCPT, booking="BK-2026-0042", forbid=(),
                unit=None):
        """A valid-but-odd preview: ok, and the message is clean."""
        try:
            extra = (("unit", unit),) if unit else ()
            pairs, _ = exchange(self.daemon, req(("request", "preview"), ("link", link),
                                                 ("bcc", bcc), ("booking", booking), *extra))
            assert imtest.answer_get(pairs, "status") == "ok", pairs
            eml = base64.b64decode(imtest.answer_get(pairs, "eml"))
            head = eml.split(b"\r\n\r\n", 1)[0].lower()
            for h in (b"\r\nbcc:", b"\r\nto:", b"\r\ncc:"):
                assert h not in b"\r\n" + head, f"header {h!r} in the message"
            for s in (bcc, *forbid):
                assert s.lower().encode() not in eml.lower(), f"{s!r} in the message"
            assert self.queued() == 0
            self.passed += 1
            return True
        except Exception as e:  # noqa: BLE001
            self.failed += 1
            print(f"FAIL [control] {name}: {e}")
            return False

    def controls(self):
        cyr_domain = "anna@" + lookalike("example") + ".org"
        ok = [
            self.control("upper-case link host", link="https://MEET.EXAMPLE.ORG/x"),
            self.control("link on port 443", link="https://meet.example.org:443/x"),
            self.control("sub-host of *.video.example.com", link="https://a.video.example.com/j"),
            self.control("percent-encoded CRLF in the link path",
                         link="https://meet.example.org/x%0D%0ABcc:%20y@example.com",
                         forbid=("\r\nBcc: y",)),
            self.control("quote in the link path", link="https://meet.example.org/x'onmouseover='1"),
            self.control("upper-case address", bcc="ANNA@EXAMPLE.COM"),
            self.control("IDN address domain", bcc="anna@bücher.example"),
            self.control("look-alike (Cyrillic) address domain", bcc=cyr_domain),
            self.control("punycode address domain", bcc="anna@xn--bcher-kva.example"),
            self.control("atext local part", bcc="a!#$%&'*+/=?^_`{|}~-b@example.com"),
            self.control("punctuation in booking", booking="BK-2026/42 (R&D), avd. 4: kl 10:30"),
            self.control("unit in Swedish", unit="Vårdcentralen Åby, avd. 4"),
            self.control("unit in Arabic", unit="\u0639\u064a\u0627\u062f\u0629 \u0627\u0644\u0623\u0637\u0641\u0627\u0644"),
            self.control("encoded-word-looking local part", bcc="=?utf-8?q?x?=@example.com"),
            self.expect_ok("drip a ping, one byte every 100 ms", drip(b"request=ping\n\n")),
        ]
        return sum(ok)

    def expect_ok(self, name, run):
        try:
            pairs, _ = run(self.daemon)
            assert imtest.answer_get(pairs, "status") == "ok", pairs
            self.passed += 1
            return True
        except Exception as e:  # noqa: BLE001
            self.failed += 1
            print(f"FAIL [control] {name}: {e}")
            return False

    def finish(self):
        d = self.daemon
        rows = d.audit_rows()
        accepted = [r for r in rows if r["event"] == "accepted"]
        rejected = [r for r in rows if r["event"] == "rejected"]
        v = d.audit_verify()
        d.stop()
        log = d.log()
        leaks = sorted(s for s in SENT_SECRETS
                       if (len(s) >= 6 and b"@" in s) or len(s) >= 12
                       if s.decode("utf-8", "replace") in log)
        for name, ok in (("no accepted row in the audit", not accepted),
                         (f"every refusal audited ({len(rejected)} rows for "
                          f"{self.answered} answered)", len(rejected) >= self.answered),
                         ("audit verifies", v.returncode == 0),
                         ("no address or link in the daemon's log", not leaks)):
            if ok:
                self.passed += 1
            else:
                self.failed += 1
                print(f"FAIL [final] {name}" + (f": {leaks[:5]}" if leaks else ""))


def all_cases():
    return (control_cases() + injection_cases() + free_text_cases() + link_cases()
            + protocol_cases()
            + size_cases() + garbage_cases() + stream_cases())


def main():
    sys.stdout.reconfigure(line_buffering=True)
    if not imtest.DAEMON.exists():
        imtest.skip_or_fail(f"{imtest.DAEMON} not built")
    cases = all_cases()
    run = Run()
    try:
        t0 = time.monotonic()
        for _ in range(3):          # warm up: caches, audit, SQLite pages
            run.ping_ok()
        start = run.vmrss()
        for i, case in enumerate(cases, 1):
            run.run_case(case)
            if i % 100 == 0:
                print(f"  after {i} cases: VmRSS {run.rss[-1]} kB")
        n_controls = run.controls()
        end = run.vmrss()
        peak = max(run.rss + [start, end])
        print(f"RSS (VmRSS): start {start} kB, peak {peak} kB, end {end} kB")
        if end < start + run.rss_slack:
            run.passed += 1
        else:
            run.failed += 1
            print(f"FAIL [rss] end {end} kB >= start {start} kB + {run.rss_slack} kB")
        run.finish()
        print(f"hostile controls: {n_controls} valid-but-odd previews answered ok, none queued")
        print(f"hostile corpus: {len(cases)} cases, {run.refused} refused as expected "
              f"({time.monotonic() - t0:.0f} s)")
    finally:
        if run.daemon.alive():
            run.daemon.stop()
        run.work.close()
    print(f"hostile: {run.passed} passed, {run.failed} failed")
    sys.exit(1 if run.failed else 0)


if __name__ == "__main__":
    main()
