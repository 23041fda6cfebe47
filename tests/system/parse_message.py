#!/usr/bin/python3
"""parse_message.py - check an invitemail message with an independent parser.

Parses FILE.eml with Python's own email package (policy.default, not
GMime) and checks the shape invitemaild(8), THE MESSAGE, promises:

  - no parser defects on any part;
  - multipart/alternative(text/plain, multipart/related(text/html, image/png)),
    or that as the first part of a multipart/mixed whose second part is
    the calendar entry: text/calendar; method=PUBLISH or CANCEL, the
    attachment invite.ics, no ATTENDEE, no address but From's, its
    METHOD the same as the method= parameter (--calendar none, publish
    or cancel says which must be there; default: either way);
  - charset utf-8 on both text parts;
  - the link (--expect-link) in the decoded plain text and in the HTML
    (as an href or as text, HTML entities decoded);
  - each --expect-text in both the decoded plain text and the HTML's
    text (whitespace runs compared as one space);
  - each --forbid string (without case) absent from the raw bytes, from
    every decoded header and from every decoded part;
  - no Cc and no Bcc header; To absent (--to-mode none, the default) or
    exactly the empty group undisclosed-recipients (--to-mode undisclosed);
  - every cid: the HTML uses is the Content-ID of an image part, and the
    image part's Content-ID is used by the HTML;
  - Auto-Submitted: auto-generated; one From, Date, Message-ID, MIME-Version;
  - with --crlf: every line ends with CRLF, no 8-bit byte, no line over 78.

Exits 0 printing "ok", or 1 printing each failed check on its own line
(2 for usage errors).  Run with /usr/bin/python3 (Debian's), stdlib only.
"""

import argparse
import email.policy
import html.parser
import re
import sys
from email.parser import BytesParser


class HtmlScan(html.parser.HTMLParser):
    """Collects the text, the attribute values and the cid: references."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text = []
        self.attrs = []
        self.cids = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            self.attrs.append(value)
            if name in ("src", "href", "background") and value.lower().startswith("cid:"):
                self.cids.append(value[4:])

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def squash(s):
    return re.sub(r"\s+", " ", s).strip()


class Checker:
    def __init__(self):
        self.failures = []

    def check(self, ok, what):
        if not ok:
            self.failures.append(what)
        return ok


def check_calendar(c, msg, cal, want):
    """The invite.ics part: method, file name, and no address in it."""
    if want == "none":
        c.check(cal is None, "a calendar part where none was expected")
        return
    if cal is None:
        c.check(want == "any", "no calendar part (expected %s)" % want)
        return
    method = (cal.get_param("method") or "").upper()
    c.check(method in ("PUBLISH", "CANCEL"), "calendar method=%r" % method)
    c.check(want == "any" or method == want.upper(),
            "calendar method %s, expected %s" % (method, want.upper()))
    c.check(cal.get_filename() == "invite.ics", "calendar file name %r" % cal.get_filename())
    c.check(cal.get_content_disposition() == "attachment", "calendar not an attachment")
    c.check(cal.get_content_charset() == "utf-8", "calendar charset not utf-8")
    text = cal.get_content()
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    lines = unfolded.replace("\r\n", "\n").split("\n")
    c.check(lines[0] == "BEGIN:VCALENDAR", "calendar does not begin with BEGIN:VCALENDAR")
    c.check("METHOD:" + method in lines, "METHOD line differs from method=")
    c.check(sum(1 for l in lines if l == "BEGIN:VEVENT") == 1, "not exactly one VEVENT")
    c.check(not any(l.upper().startswith("ATTENDEE") for l in lines), "ATTENDEE in the calendar")
    for key in ("UID:", "DTSTART;TZID=", "DTEND;TZID=", "DTSTAMP:", "SEQUENCE:"):
        c.check(any(l.startswith(key) for l in lines), "no %s line in the calendar" % key)
    sender = msg["From"].addresses[0].addr_spec.lower() if msg["From"] else ""
    for addr in re.findall(r"mailto:([^\s;:,]+)", unfolded, re.I):
        c.check(addr.lower() == sender, "address %r in the calendar" % addr)


def structure(c, msg):
    """Returns (plain, html, [images], calendar or None), or None when
    the shape is wrong."""
    calendar = None
    if msg.get_content_type() == "multipart/mixed":
        outer = list(msg.iter_parts())
        types = [p.get_content_type() for p in outer]
        if not c.check(types == ["multipart/alternative", "text/calendar"],
                       "mixed holds %s, not [multipart/alternative, text/calendar]" % types):
            return None
        msg, calendar = outer
    if not c.check(msg.get_content_type() == "multipart/alternative",
                   "top level is %s, not multipart/alternative" % msg.get_content_type()):
        return None
    top = list(msg.iter_parts())
    types = [p.get_content_type() for p in top]
    if not c.check(types == ["text/plain", "multipart/related"],
                   "alternative holds %s, not [text/plain, multipart/related]" % types):
        return None
    related = top[1]
    c.check(related.get_param("type") == "text/html",
            "multipart/related type= is %r, not text/html" % related.get_param("type"))
    inner = list(related.iter_parts())
    types = [p.get_content_type() for p in inner]
    if not c.check(types == ["text/html", "image/png"],
                   "related holds %s, not [text/html, image/png]" % types):
        return None
    return top[0], inner[0], inner[1:], calendar


def check_defects(c, msg):
    for part in msg.walk():
        c.check(not part.defects, "defects in %s: %s" % (part.get_content_type(), part.defects))


def check_headers(c, msg, to_mode):
    for name in ("Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"):
        c.check(name not in msg, "%s header present" % name)
    for name in ("From", "Date", "Message-ID", "MIME-Version", "Subject"):
        c.check(len(msg.get_all(name, [])) == 1, "not exactly one %s header" % name)
    c.check(str(msg.get("Auto-Submitted", "")).strip() == "auto-generated",
            "Auto-Submitted is %r, not auto-generated" % msg.get("Auto-Submitted"))
    tos = msg.get_all("To", [])
    if to_mode == "none":
        c.check(not tos, "To header present with --to-mode none")
        return
    if not c.check(len(tos) == 1, "not exactly one To header with --to-mode undisclosed"):
        return
    to = tos[0]
    groups = getattr(to, "groups", ())
    c.check(len(groups) == 1 and groups[0].display_name == "undisclosed-recipients"
            and len(groups[0].addresses) == 0,
            "To is %r, not the empty group undisclosed-recipients" % str(to))


def check_texts(c, plain, htmlpart, link, expects):
    for part in (plain, htmlpart):
        c.check(part.get_content_charset() == "utf-8",
                "%s charset is %r, not utf-8" % (part.get_content_type(),
                                                   part.get_content_charset()))
    plain_text = plain.get_content()
    scan = HtmlScan()
    scan.feed(htmlpart.get_content())
    scan.close()
    html_text = squash("".join(scan.text))
    if link is not None:
        c.check(link in plain_text, "link not in the plain text")
        c.check(link in scan.attrs or link in html_text, "link not in the HTML")
    for want in expects:
        c.check(squash(want) in squash(plain_text), "text %r not in the plain text" % want)
        c.check(squash(want) in html_text, "text %r not in the HTML" % want)
    return scan


def check_images(c, scan, images):
    ids = set()
    for img in images:
        cid = (img.get("Content-ID") or "").strip()
        if c.check(cid.startswith("<") and cid.endswith(">"), "image Content-ID %r not <...>" % cid):
            ids.add(cid[1:-1])
        c.check(img.get("Content-Transfer-Encoding", "").lower() == "base64", "image not base64")
        c.check(img.get_content_disposition() == "inline", "image not inline")
        c.check(img.get_content()[:8] == b"\x89PNG\r\n\x1a\n", "image is not a PNG")
    for cid in scan.cids:
        c.check(cid in ids, "HTML refers to cid:%s but no part has that Content-ID" % cid)
    for cid in ids:
        c.check(cid in scan.cids, "image Content-ID <%s> not used by the HTML" % cid)


def decoded_everything(msg):
    """Every header value decoded, and every part's decoded content."""
    out = []
    for part in msg.walk():
        for name, value in part.items():
            out.append("%s: %s" % (name, value))
        if part.is_multipart():
            continue
        content = part.get_content()
        out.append(content if isinstance(content, str) else content.decode("latin-1"))
    return "\n".join(out)


def check_forbidden(c, raw, msg, forbids):
    raw_l = raw.lower()
    decoded_l = decoded_everything(msg).lower()
    for bad in forbids:
        c.check(bad.lower().encode("utf-8") not in raw_l, "%r in the raw bytes" % bad)
        c.check(bad.lower() not in decoded_l, "%r in a decoded header or part" % bad)


def check_wire(c, raw):
    lines = raw.split(b"\n")
    c.check(lines[-1] == b"", "message does not end with a line end")
    c.check(all(l.endswith(b"\r") for l in lines[:-1]), "bare LF")
    c.check(all(b"\r" not in l.rstrip(b"\r") for l in lines), "bare CR")
    c.check(all(b < 0x80 for b in raw), "8-bit byte in the message")
    c.check(all(len(l.rstrip(b"\r")) <= 78 for l in lines), "line longer than 78")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eml")
    ap.add_argument("--expect-link")
    ap.add_argument("--expect-text", action="append", default=[])
    ap.add_argument("--forbid", action="append", default=[])
    ap.add_argument("--to-mode", choices=("none", "undisclosed"), default="none")
    ap.add_argument("--crlf", action="store_true", help="also check the wire form")
    ap.add_argument("--calendar", choices=("any", "none", "publish", "cancel"), default="any")
    args = ap.parse_args(argv)

    with open(args.eml, "rb") as f:
        raw = f.read()
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    c = Checker()
    check_defects(c, msg)
    check_headers(c, msg, args.to_mode)
    check_forbidden(c, raw, msg, args.forbid)
    if args.crlf:
        check_wire(c, raw)
    parts = structure(c, msg)
    if parts is not None:
        plain, htmlpart, images, calendar = parts
        scan = check_texts(c, plain, htmlpart, args.expect_link, args.expect_text)
        check_images(c, scan, images)
        check_calendar(c, msg, calendar, args.calendar)

    if c.failures:
        for f in c.failures:
            print("FAIL: " + f)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
