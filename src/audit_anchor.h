/*
 * audit_anchor.h - seal heads as records in the system log, and reading
 * them back for `invitemail audit verify --anchors FILE`.
 *
 * After each seal the daemon writes the seal's head (seq, row hash,
 * epoch, time) to the system log: under systemd as journald fields
 * (MESSAGE_ID below, INVITEMAIL_AUDIT_SEQ, _HASH, _EPOCH, _TIME_MS);
 * otherwise as RFC 5424 structured data in the message of the daemon's
 * log line (syslog when detached, standard error in the foreground):
 *   [invitemail-audit@32473 seq="N" hash="HEX" epoch="E" time_ms="T"]
 * (32473 is the private enterprise number RFC 5612 sets aside for
 * documentation.)  The region's log platform keeps them off the host;
 * a copy of the audit file that lacks or contradicts any of them was
 * cut, lost a seal or was rolled back.
 */
#ifndef INVITEMAIL_AUDIT_ANCHOR_H
#define INVITEMAIL_AUDIT_ANCHOR_H

#include <glib.h>

#include "digest.h"

#define AUDIT_ANCHOR_MESSAGE_ID "04a821d8047a4c3495d12ce6adb6d8d9"
#define AUDIT_ANCHOR_SD_ID "invitemail-audit@32473"

typedef struct {
  gint64 seq;
  char hash[SHA256_HEX_SIZE];
  gint64 epoch;
  gint64 time_ms;
} AuditAnchor;

/* The structured-data element for h. (transfer full) */
char *audit_anchor_sd (const AuditAnchor *h);
/* One JSON object for h (`audit head --json`). (transfer full) */
char *audit_anchor_json (const AuditAnchor *h);

/* Writes h to the system log (see above).  Never fails the caller: a
 * log that cannot take it is the log platform's problem, and the next
 * seal writes the next head. */
void audit_anchor_log (const AuditAnchor *h);

/* One line of `journalctl -o json` output, a syslog line or a log line
 * holding the structured-data element: TRUE and *out when it carries a
 * head. */
gboolean audit_anchor_parse_line (const char *line, AuditAnchor *out);

/* Every head in a file of such lines, in file order (GArray of
 * AuditAnchor; transfer full).  A file with none is refused
 * (AUDIT_ERROR_FORMAT): checking against no anchors proves nothing. */
GArray *audit_anchor_read_file (const char *path, GError **error);

#endif
