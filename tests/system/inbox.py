#!/usr/bin/python3
"""inbox.py - does the invitation reach the inbox?

Renders the invitation with the default configuration through the real
daemon (invitemail preview: the bytes mime_build makes, the same as a
send but for the Message-ID) in every shipped language, with and
without a meeting time (and so with and without the calendar part),
with no To header (the default) and with `To: undisclosed-recipients:;`,
and scores each with Debian's SpamAssassin using only its local rules
(`spamassassin -L -t`: no DNS lists, no network, no Bayes until trained).
Every score must be at most MAX_SCORE; the table of scores is printed.

SpamAssassin runs with HOME in the test folder, so no user preferences
or auto-welcomelist from the machine take part.  Missing spamassassin
skips outside CI and fails in CI (contrib/deps.sh installs it).
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imtest  # noqa: E402
from imtest import RCPTS, LINK  # noqa: E402

MAX_SCORE = 1.0
MEETING = "2030-12-05T10:00:00Z"
MEASURED = []   # printed at the end, one line each, for contrib/check


def tearDownModule():
    for line in MEASURED:
        print(line)


def shipped_languages():
    return sorted(p.name.split(".")[1]
                  for p in (imtest.SRCDIR / "templates").glob("evisit.*.xhtml"))


def spam_score(eml, home):
    """(score, report) from spamassassin -L -t on the file eml."""
    with open(eml, "rb") as f:
        r = subprocess.run(["spamassassin", "-L", "-t"], stdin=f, capture_output=True,
                           timeout=120, env=dict(os.environ, HOME=str(home)))
    out = r.stdout.decode("utf-8", "replace")
    m = re.search(r"^X-Spam-Status: \w+, score=(-?[0-9.]+)", out, re.M)
    if r.returncode != 0 or m is None:
        raise AssertionError("spamassassin failed: %s %s" % (r.returncode, r.stderr[-500:]))
    report = out[out.find("Content analysis details"):]
    return float(m.group(1)), report


class SpamAssassin(imtest.DaemonCase):
    def scores(self, extra):
        self.start_daemon(extra)
        home = self.work.path / "sa-home"
        home.mkdir(exist_ok=True)
        rows = []
        for lang in shipped_languages():
            for when in (None, MEETING):
                args = ["preview", "--link", LINK, "--bcc", RCPTS[0], "--lang", lang,
                        "--booking", "AB-123"]
                if when:
                    args += ["--meeting-time", when]
                r = self.daemon.cli(*args, check=True)
                eml = self.work.path / ("%s-%s.eml" % (lang, "time" if when else "none"))
                eml.write_bytes(r.stdout)
                score, report = spam_score(eml, home)
                rows.append((lang, bool(when), score, report))
        return rows

    def check(self, extra, label):
        rows = self.scores(extra)
        for lang, when, score, report in rows:
            MEASURED.append("spamassassin -L -t: %s lang=%s meeting_time=%s score=%.1f"
                            % (label, lang, "yes" if when else "no", score))
        for lang, when, score, report in rows:
            self.assertLessEqual(score, MAX_SCORE, "%s %s meeting=%s:\n%s"
                                 % (label, lang, when, report))
        self.assertGreaterEqual(len(rows), 4)   # sv and en at least, both ways

    def test_default_no_to_header(self):
        self.check({}, "to_header=none (default)")

    def test_undisclosed_recipients(self):
        self.check({"invite": {"to_header": "undisclosed"}}, "to_header=undisclosed")


if __name__ == "__main__":
    if shutil.which("spamassassin") is None:
        imtest.skip_or_fail("spamassassin is not installed (Debian package spamassassin)")
    imtest.main("inbox", needs_aiosmtpd=False)
