#!/usr/bin/python3
"""screenshots.py - the mail as recipients' clients draw it (headless Chromium).

Renders the invitation through the real daemon (invitemail preview) in
every shipped language, with a meeting time, a unit, a contact and a
long link with a token, and runs contrib/preview-shots on each: Debian's
chromium draws the HTML part at 800 and 390 CSS pixels, in light and in
dark mode.  The PNGs are kept in the build folder (shots/, CI keeps them
as artefacts).  Asserted for every shot: no horizontal overflow at 390
px, the privacy notice's cell visible and holding the notice (verbatim
for Swedish), the lowest text contrast at least 4.5:1.  A hostile
control (a fixed 700 px block, grey on grey, no notice) must fail all
three, so the checks can fail.

Missing chromium skips outside CI and fails in CI (contrib/deps.sh).
"""

import email.message
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS  # noqa: E402

SHOTS = imtest.TOP_BUILDDIR / "shots"
TOOL = imtest.SRCDIR / "contrib" / "preview-shots"
LONG_LINK = ("https://meet.example.org/evisit/room-4711?k=a1b2&token="
             "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5xY7z")
NOTICE_SV = ("Digitalt när det är möjligt, fysiskt när det behövs Region Exempel kommer "
             "inte att spela in eller spara det digitala mötet. Region Exempel kan inte "
             "styra över hur övriga deltagare hanterar den information som framkommer vid "
             "det digitala mötet. Om du har frågor kring hur Region Exempel behandlar "
             "personuppgifter är du välkommen att kontakta dataskyddsombud@example.org")


MEASURED = []


def tearDownModule():
    for line in MEASURED:
        print(line)


def shipped_languages():
    return sorted(p.name.split(".")[1]
                  for p in (imtest.SRCDIR / "templates").glob("evisit.*.xhtml"))


def run_tool(*args):
    r = subprocess.run([imtest.PYTHON, str(TOOL), "--json", "--out", str(SHOTS), *args],
                       capture_output=True, text=True, timeout=300)
    shots = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    return r, shots


class Chromium(imtest.DaemonCase):
    def forbidden_in_log(self):
        return super().forbidden_in_log() + [LONG_LINK]

    def test_every_language_at_800_and_390_light_and_dark(self):
        d = self.start_daemon({"organisation": {"contact": "Barnkliniken, 010-123 45 67"}})
        emls = []
        for lang in shipped_languages():
            r = d.cli("preview", "--link", LONG_LINK, "--bcc", RCPTS[0], "--lang", lang,
                      "--meeting-time", "2030-12-05T10:00:00Z", "--unit", "Barnkliniken",
                      "--booking", "AB-123", check=True)
            path = self.work.path / ("invite-%s.eml" % lang)
            path.write_bytes(r.stdout)
            emls.append(str(path))
        r, shots = run_tool("--check", *emls)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(shots), 4 * len(emls))
        MEASURED.append("chromium shots: %d PNGs in %s, lowest text contrast %.2f, "
                        "widest page at 390 px: %d px"
                        % (len(shots), SHOTS, min(s["minContrast"] for s in shots),
                           max(s["scrollWidth"] for s in shots if s["width"] == 390)))
        for s in shots:
            what = "%s %s %s" % (s["file"], s["width"], s["scheme"])
            self.assertTrue(os.path.getsize(s["png"]) > 5000, what)
            if s["width"] == 390:
                self.assertFalse(s["overflow"], what)
                self.assertLessEqual(s["scrollWidth"], 390, what)
            self.assertTrue(s["noticeVisible"], what)
            self.assertIn("dataskyddsombud@example.org", s["noticeText"], what)
            self.assertGreaterEqual(s["minContrast"], 4.5, what)
            if s["file"].endswith("invite-sv.eml"):
                self.assertEqual(s["noticeText"], NOTICE_SV, what)

    def test_the_checks_can_fail(self):
        msg = email.message.EmailMessage()
        msg["Subject"] = "control"
        msg.set_content("x")
        msg.add_alternative(
            '<html><body style="background:#888888">'
            '<div style="width:700px;color:#777777">grey on grey, too wide</div>'
            '</body></html>', subtype="html")
        path = self.work.path / "control.eml"
        path.write_bytes(bytes(msg))
        r, shots = run_tool("--check", str(path))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("wider than the window", r.stderr)
        self.assertIn("privacy notice not visible", r.stderr)
        self.assertIn("contrast", r.stderr)
        small = [s for s in shots if s["width"] == 390]
        self.assertTrue(small and all(s["overflow"] for s in small))
        self.assertTrue(all(s["minContrast"] < 4.5 for s in shots))


if __name__ == "__main__":
    if shutil.which("chromium") is None:
        imtest.skip_or_fail("chromium is not installed (Debian package chromium)")
    imtest.main("screenshots", needs_aiosmtpd=False)
