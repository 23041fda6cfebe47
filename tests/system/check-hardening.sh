#!/bin/sh
# check-hardening.sh - proves on the built binaries what configure asked
# the compiler and linker for (issue: build hardening), with readelf and
# nm from binutils:
#   PIE               ELF type DYN with the PIE flag
#   full RELRO        a GNU_RELRO segment and BIND_NOW
#   NX stack          GNU_STACK without the execute flag
#   stack protector   __stack_chk_fail imported
#   FORTIFY_SOURCE    __*_chk functions imported (proves -O1 or more too:
#                     glibc's fortify wrappers do nothing at -O0), and the
#                     DWARF producer of every compilation unit of ours
#                     names -O2 (or higher) and -fstack-protector-strong
#   no shell          invitemaild imports no system, popen, exec*,
#                     posix_spawn*, wordexp or g_spawn_*: nothing in the
#                     daemon can start another program
#
# With --enable-sanitizers FORTIFY is left out on purpose (configure
# drops it: it clashes with ASan), so that one check is not made there.
#
# Environment: top_builddir (automake sets it), READELF, NM.
# Last line: "hardening: N passed, M failed".  Exit 1 when any failed,
# 77 (skip) when readelf is missing outside CI.
set -u

top=${top_builddir:-.}
READELF=${READELF:-readelf}
NM=${NM:-nm}
pass=0
fail=0

if ! command -v "$READELF" >/dev/null 2>&1 || ! command -v "$NM" >/dev/null 2>&1; then
  echo "readelf/nm not found (Debian: binutils)" >&2
  [ -n "${CI:-}" ] && exit 99
  exit 77
fi

ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { # description command...
  what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

imports() { "$NM" -D --undefined-only "$1" | awk '{ print $NF }' | sed 's/@.*//'; }

is_pie() {
  "$READELF" -h "$1" | grep -q 'Type:[[:space:]]*DYN' \
    && "$READELF" -d "$1" | grep -q 'FLAGS_1.*PIE'
}
has_relro() { "$READELF" -lW "$1" | grep -q 'GNU_RELRO'; }
has_now() { "$READELF" -d "$1" | grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW|\(BIND_NOW\)'; }
nx_stack() { "$READELF" -lW "$1" | grep 'GNU_STACK' | grep -qv 'RWE'; }
has_ssp() { imports "$1" | grep -qx '__stack_chk_fail'; }
has_fortify() { imports "$1" | grep -v '^__stack_chk_fail$' | grep -Eq '^__[a-z_0-9]+_chk$'; }
sanitized() { imports "$1" | grep -q '^__asan_init'; }

# Every DW_AT_producer of our own units (built with -std=c11; C runtime
# and sanitizer runtime objects are not ours): -O2/-O3/-Os and the
# strong stack protector.
producers_ok() {
  all=$("$READELF" --debug-dump=info "$1" 2>/dev/null | grep 'DW_AT_producer')
  [ -n "$all" ] || { echo "  (no debug info: producer check not made)"; return 0; }
  prods=$(echo "$all" | sed -n 's/.*DW_AT_producer.*: \(GNU C.* -std=c11.*\)/\1/p' | sort -u)
  [ -n "$prods" ] || { echo "  no unit of ours (-std=c11) in the debug info"; return 1; }
  echo "$prods" | while IFS= read -r p; do
    case $p in *-fstack-protector-strong*) ;; *) echo "  no -fstack-protector-strong: $p"; exit 1 ;; esac
    case $p in *-O2*|*-O3*|*-Os*) ;; *) echo "  not optimised: $p"; exit 1 ;; esac
  done
}

# Functions that run another program (or a shell) on the daemon's behalf.
SPAWNERS='^(system|popen|execl|execle|execlp|execv|execve|execvp|execvpe|fexecve|posix_spawn|posix_spawnp|wordexp|g_spawn_[a-z_]+|g_subprocess_[a-z_]+)$'
no_spawn() {
  found=$(imports "$1" | grep -E "$SPAWNERS" | tr '\n' ' ')
  [ -z "$found" ] || { echo "  imports: $found"; return 1; }
}

for prog in invitemaild invitemail; do
  bin=$top/src/$prog
  if [ ! -x "$bin" ]; then
    bad "$prog: $bin not built"
    continue
  fi
  check "$prog: position-independent executable (PIE)" is_pie "$bin"
  check "$prog: GNU_RELRO segment" has_relro "$bin"
  check "$prog: BIND_NOW (full RELRO)" has_now "$bin"
  check "$prog: non-executable stack" nx_stack "$bin"
  check "$prog: stack protector (__stack_chk_fail)" has_ssp "$bin"
  if sanitized "$bin"; then
    echo "note: $prog is built with sanitizers: FORTIFY_SOURCE is off by design"
  else
    check "$prog: FORTIFY_SOURCE (__*_chk imports)" has_fortify "$bin"
  fi
  check "$prog: every unit built with -O2+ and -fstack-protector-strong" \
    producers_ok "$bin"
done
if [ -x "$top/src/invitemaild" ]; then
  check "invitemaild: no system/popen/exec/spawn imported" no_spawn "$top/src/invitemaild"
fi

echo "hardening: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
