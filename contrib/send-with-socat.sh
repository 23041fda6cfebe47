#!/bin/sh
# send-with-socat.sh - the socket protocol spoken from a shell script,
# as a booking tool might, without the invitemail client.
#
# Usage: send-with-socat.sh LINK ADDR [ADDR...]
# Env:   INVITEMAIL_SOCKET (default /run/invitemail/invitemail.sock)
#
# Values must not contain a line break: the daemon would refuse the
# request (malformed), and this script refuses it first.
set -eu
sock=${INVITEMAIL_SOCKET:-/run/invitemail/invitemail.sock}
[ $# -ge 2 ] || { echo "usage: $0 LINK ADDR [ADDR...]" >&2; exit 64; }
link=$1; shift
case $link in *"
"*) echo "line break in link" >&2; exit 65;; esac
{
  printf 'request=send\nlink=%s\n' "$link"
  for a in "$@"; do printf 'bcc=%s\n' "$a"; done
  printf '\n'
} | socat -t 30 - "UNIX-CONNECT:$sock"
