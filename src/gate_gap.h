/*
 * gate_gap.h - the words of the `audit_resumed` row: written by the
 * audit gate (gate.c) when the audit can be written again, read back by
 * `invitemail audit report`.  The one definition of that text: the
 * writer and the reader use the same pieces, so they cannot drift apart.
 *
 * The detail is exactly (one line, UTC time without fraction):
 *   the audit could not be written from 2026-12-03T10:00:00Z for 42 s:
 *   3 request(s) refused unavailable, 1 refusal(s) answered without
 *   their row; delivery paused
 *
 * What it trusts: nothing on the reading side.  The audit file may be
 * hostile: gate_gap_parse takes only that exact text (no sign, no
 * leading zero, no space more or less, no number past its type, a real
 * calendar time) and says FALSE for anything else.
 */
#ifndef INVITEMAIL_GATE_GAP_H
#define INVITEMAIL_GATE_GAP_H

#include <glib.h>

typedef struct {
  gint64 since;             /* unix seconds: the first failed append */
  gint64 secs;              /* how long the audit could not be written */
  guint refused;            /* requests answered `unavailable` meanwhile */
  guint unaudited;          /* refusals answered without their own row */
} GateGap;

/* The detail of the `audit_resumed` row.  A negative length (the clock
 * stepped back meanwhile, recorded by its own `clock_back` row) is
 * written as 0.  (transfer full) */
char *gate_gap_format (const GateGap *gap);

/* TRUE and *out filled when detail is exactly what gate_gap_format
 * writes; FALSE (out untouched) for anything else, NULL included. */
gboolean gate_gap_parse (const char *detail, GateGap *out);

#endif
