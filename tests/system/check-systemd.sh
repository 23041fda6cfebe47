#!/bin/sh
# check-systemd.sh - the shipped systemd units, checked offline (no
# running systemd needed) with systemd-analyze:
#   - `systemd-analyze security --offline=yes` of invitemaild.service
#     scores at most 1.5 (EXPOSURE_MAX; the issue's bar);
#   - `systemd-analyze verify` finds nothing wrong with the service and
#     socket (ExecStart pointed at the built daemon, man pages not
#     looked up);
#   - the settings the daemon's design depends on are there: Type=notify
#     with a watchdog and --foreground, a fixed unprivileged user (no
#     DynamicUser, see the unit's comment), no PrivateUsers (it would
#     turn every caller's SO_PEERCRED uid into "nobody"), the socket at
#     the daemon's default path with mode 0660 and a client group;
#   - the sysusers.d snippet creates the users and groups the units name
#     (systemd-sysusers into a scratch root).
#
# Environment: srcdir, top_builddir (automake sets them).
# Last line: "systemd: N passed, M failed".  Exit 1 when any failed, 77
# (skip) without systemd-analyze outside CI (Debian: package systemd).
set -u

src=${srcdir:-.}
top=${top_builddir:-.}
SA=${SYSTEMD_ANALYZE:-systemd-analyze}
EXPOSURE_MAX=1.5
service=$src/contrib/invitemaild.service
sock=$src/contrib/invitemaild.socket
sysusers=$src/contrib/invitemail.sysusers
pass=0
fail=0

if ! command -v "$SA" >/dev/null 2>&1; then
  echo "systemd-analyze not found (Debian: systemd)" >&2
  [ -n "${CI:-}" ] && exit 99
  exit 77
fi

ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() {
  what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/imsystemd-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

score_ok() {
  out=$("$SA" security --offline=yes "$service" 2>&1)
  score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  echo "  exposure: ${score:-?} (at most $EXPOSURE_MAX)"
  [ -n "$score" ] || { echo "$out" | tail -n 5; return 1; }
  awk -v s="$score" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(s <= m) }' \
    || { echo "$out" | grep '✗'; return 1; }
  # And systemd's own comparison agrees (its threshold is in tenths).
  "$SA" security --offline=yes --threshold=15 "$service" >/dev/null 2>&1
}

verify_ok() {
  sed "s#/usr/sbin/invitemaild#$(cd "$top" && pwd)/src/invitemaild#" "$service" \
    > "$tmp/invitemaild.service"
  cp "$sock" "$tmp/invitemaild.socket"
  out=$("$SA" verify --man=no "$tmp/invitemaild.socket" "$tmp/invitemaild.service" 2>&1)
  rc=$?
  [ -n "$out" ] && echo "$out" | sed 's/^/  /'
  [ "$rc" -eq 0 ] && [ -z "$out" ]
}

# key=value present in the unit's section lines (comments ignored).
has() { grep -v '^[[:space:]]*#' "$1" | grep -Eq "^$2\$"; }
lacks() { ! grep -v '^[[:space:]]*#' "$1" | grep -Eq "^$2"; }

sysusers_ok() {
  command -v systemd-sysusers >/dev/null 2>&1 || { echo "  (systemd-sysusers missing)"; return 1; }
  mkdir -p "$tmp/root/etc"
  systemd-sysusers --root="$tmp/root" "$sysusers" >/dev/null 2>&1 || return 1
  for name in invitemail; do
    grep -q "^$name:" "$tmp/root/etc/passwd" || { echo "  no user $name"; return 1; }
  done
  for name in invitemail invitemail-clients invitemail-audit; do
    grep -q "^$name:" "$tmp/root/etc/group" || { echo "  no group $name"; return 1; }
  done
}

check "service: security exposure at most $EXPOSURE_MAX" score_ok
check "service and socket: systemd-analyze verify is clean" verify_ok
check "service: Type=notify" has "$service" 'Type=notify'
check "service: a watchdog" has "$service" 'WatchdogSec=[1-9][0-9]*'
check "service: runs in the foreground" has "$service" 'ExecStart=/usr/sbin/invitemaild --foreground .*'
check "service: reload is SIGHUP" has "$service" 'ExecReload=/bin/kill -HUP \$MAINPID'
check "service: fixed unprivileged user" has "$service" 'User=invitemail'
check "service: no DynamicUser" lacks "$service" 'DynamicUser=yes'
check "service: no PrivateUsers (SO_PEERCRED must see real uids)" lacks "$service" 'PrivateUsers=yes'
check "service: state under StateDirectory" has "$service" 'StateDirectory=invitemail'
check "service: socket folder under RuntimeDirectory" has "$service" 'RuntimeDirectory=invitemail'
check "service: no capabilities" has "$service" 'CapabilityBoundingSet='
check "service: NoNewPrivileges" has "$service" 'NoNewPrivileges=yes'
check "socket: the daemon's default path" has "$sock" 'ListenStream=/run/invitemail/invitemail.sock'
check "socket: mode 0660" has "$sock" 'SocketMode=0660'
check "socket: a client group" has "$sock" 'SocketGroup=invitemail-clients'
check "socket: one listening socket, not Accept=yes" lacks "$sock" 'Accept=yes'
check "sysusers: creates the user and groups the units name" sysusers_ok

echo "systemd: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
