/*
 * gate.h - the audit gate: every row the daemon writes while it runs
 * goes through here, and here is where an audit write failure becomes a
 * state the rest of the daemon obeys instead of a warning.
 *
 * The policy (fail closed; invitemaild(8), "When the audit cannot be
 * written"):
 *  - nothing is answered `queued` and no delivery outcome is recorded in
 *    the queue unless its audit row is stored first;
 *  - the first append that fails closes the gate: `send` and `cancel`
 *    are refused with `unavailable` at once, an answer that must be
 *    audited before it is shown (a status with addresses) is refused
 *    too, delivery claims nothing, outcomes in hand wait in memory
 *    (their recipients stay `sending`);
 *  - while closed, the gate's own thread tries every GATE_PROBE_MS to
 *    write an `audit_resumed` row saying how long the audit was
 *    unwritable and what was refused meanwhile (any append through a
 *    closed gate carries that row in front of its own, in one
 *    transaction); when it commits the gate is open again and work
 *    resumes.
 *
 * Thread safety: every function may be called from any thread.  Appends
 * through the gate are serialised on its mutex (they are serialised on
 * the audit's anyway); gate_is_open is a lock-free read, and the
 * counters never wait for an append.
 */
#ifndef INVITEMAIL_GATE_H
#define INVITEMAIL_GATE_H

#include <glib.h>
#include "audit.h"

/* How often a closed gate is tried again. */
#define GATE_PROBE_MS 1000

typedef struct Gate Gate;

/* Starts the gate's prober thread; audit must outlive the gate.
 * (transfer full) */
Gate *gate_new (Audit *audit);
/* Stops the prober.  NULL is fine. */
void gate_free (Gate *g);

/*
 * Appends n rows in one audit transaction (n may be 0: then only the
 * `audit_resumed` row of a closed gate is written, which is the probe).
 * Appends are serialised on the gate.
 * FALSE (error set) when nothing was stored; the gate is then closed and
 * a warning logged the first time.  TRUE when stored; a closed gate is
 * then open again.
 */
gboolean gate_append (Gate *g, const AuditRecord *recs, guint n,
                      GError **error);

gboolean gate_is_open (Gate *g);

/* What was done while the gate was closed, for the `audit_resumed` row:
 * requests answered `unavailable`, refusals answered without their row. */
void gate_note_refused_send (Gate *g);
void gate_note_unaudited (Gate *g, guint n);

/* The audit behind the gate (for seals and purges, which write their
 * own rows). (transfer none) */
Audit *gate_audit (Gate *g);

#endif
