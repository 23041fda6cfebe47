/*
 * fuzz_anchor.c - libFuzzer target for what `invitemail audit verify`
 * reads from outside the audit file: anchor lines (audit_anchor.c:
 * journalctl -o json lines, syslog lines with the structured-data
 * element) and the public verification value (audit_key.c).
 *
 * Checked promises (abort() when broken):
 * - an accepted anchor has a hash of 64 lower-case hex digits and seq,
 *   epoch and time that are not negative;
 * - written back as the structured-data element it parses to the same
 *   anchor (the daemon's format and the reader agree);
 * - an accepted public value formats as "ed25519:" and 64 hex digits,
 *   which parses back to the same 32 bytes.
 *
 * TRUSTS: nothing in the input.  Built by `make fuzz` only, with clang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "audit_anchor.h"
#include "audit_key.h"

static void
must (gboolean ok)
{
  if (!ok)
    abort ();
}

static void
check_anchor (const char *line)
{
  AuditAnchor a, b;
  g_autofree char *sd = NULL;

  if (!audit_anchor_parse_line (line, &a))
    return;
  must (a.seq >= 0 && a.epoch >= 0 && a.time_ms >= 0);
  must (strlen (a.hash) == 64);
  for (int i = 0; i < 64; i++)
    must (g_ascii_isxdigit (a.hash[i]) && !g_ascii_isupper (a.hash[i]));
  sd = audit_anchor_sd (&a);
  must (audit_anchor_parse_line (sd, &b));
  must (a.seq == b.seq && a.epoch == b.epoch && a.time_ms == b.time_ms
        && strcmp (a.hash, b.hash) == 0);
}

static void
check_public (const char *text)
{
  AuditPublicKey k, again;
  char out[AUDIT_PUBKEY_TEXT];

  if (!audit_pubkey_parse (text, &k))
    return;
  audit_pubkey_format (&k, out);
  must (g_str_has_prefix (out, "ed25519:") && strlen (out) == 72);
  must (audit_pubkey_parse (out, &again));
  must (memcmp (k.pk, again.pk, 32) == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);

  check_anchor (text);
  check_public (text);
  return 0;
}
