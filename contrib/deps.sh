# deps.sh - sourced by contrib/quickstart and contrib/check: installs the
# Debian 12 packages that are missing, and nothing else.
# Usage: im_install_missing PKG...

im_install_missing() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

IM_BUILD_DEPS=(build-essential autoconf automake pkg-config libglib2.0-dev
  libesmtp-dev libgmime-3.0-dev libxml2-dev libsqlite3-dev libssl-dev
  libcmocka-dev ca-certificates libsystemd-dev)
IM_TEST_DEPS=(python3 python3-aiosmtpd openssl socat valgrind)
# systemd: systemd-analyze (unit security score) and systemd-socket-activate;
# binutils: readelf and nm for the build-hardening check; passwd: useradd.
IM_TEST_DEPS+=(systemd binutils passwd)
# faketime: the retention test runs the daemon once with its clock days back.
IM_TEST_DEPS+=(faketime)
# spamassassin: tests/system/inbox.py scores every shipped language with its
# local rules (spamassassin -L -t).
IM_TEST_DEPS+=(spamassassin)
# chromium (also below): tests/system/screenshots.py and contrib/preview-shots
# draw the mail headless; fonts-dejavu-core gives the same glyphs everywhere.
IM_TEST_DEPS+=(chromium fonts-dejavu-core)
# python3-cryptography: the audit tamper matrix forges Ed25519 seals with
# a second, independent implementation (tests/system/audit_compliance.py).
IM_TEST_DEPS+=(python3-cryptography)
# strace: tests/system/tls_policy.py checks the order in which the socket is
# bound, given its mode and renamed into place.
IM_TEST_DEPS+=(strace)
# chromium: tests/system/life_cycle.py renders the HTML audit report headless.
IM_TEST_DEPS+=(chromium)
# contrib/check-debian: build, check and install the Debian package.
IM_DEB_DEPS=(debhelper dpkg-dev fakeroot lintian)
# contrib/bench only: smtp-sink and smtp-source from postfix (the MTA is
# never started, see contrib/bench), msmtp, ss and ps.
IM_BENCH_DEPS=(postfix msmtp iproute2 procps)
# make fuzz and contrib/check's fuzz stage: clang 14 with libFuzzer and
# the sanitizer runtimes.
IM_FUZZ_DEPS=(clang libclang-rt-14-dev)
