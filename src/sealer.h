/*
 * sealer.h - the audit's timed work, off the main loop: a seal every
 * [audit] seal_interval and a retention purge at start and then once a
 * day.  A seal is an append and an fsync'd key file written by rename;
 * a purge deletes and checks whole epochs: on the main loop either held
 * up every answer and the watchdog behind it.
 *
 * While the audit cannot be written (gate.h) both are skipped, so the
 * first row after a gap is the gate's `audit_resumed`; a failed seal or
 * purge is logged and tried again at its next time.
 */
#ifndef INVITEMAIL_SEALER_H
#define INVITEMAIL_SEALER_H

#include <glib.h>
#include "gate.h"

#define SEALER_PURGE_PERIOD_S (24 * 3600)

typedef struct Sealer Sealer;

/* Starts the thread; the first purge runs at once, the first seal after
 * interval_s.  gate must outlive it. (transfer full) */
Sealer *sealer_start (Gate *gate, guint interval_s);

/* Stops and joins the thread (a seal or purge in progress finishes).
 * NULL is fine. */
void sealer_stop (Sealer *s);

/* One seal now, on the caller's thread (the stop row is sealed too);
 * skipped while the gate is closed.  TRUE when a seal was written. */
gboolean sealer_seal_now (Gate *gate);

/* Unix seconds of the newest seal this thread wrote; 0 = none yet.
 * Thread-safe; NULL is fine (0). */
gint64 sealer_last_seal (Sealer *s);

#endif
