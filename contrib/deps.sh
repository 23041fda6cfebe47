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
  libcmocka-dev ca-certificates)
IM_TEST_DEPS=(python3 python3-aiosmtpd openssl socat valgrind)
