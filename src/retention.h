/*
 * retention.h - personal data in the queue and the outbox lives only
 * [queue] retention_days.
 *
 * A thread of its own (never the main loop: a purge takes the queue's
 * write lock and deletes files) runs once at start and then every
 * RETENTION_PERIOD_S: finished invites older than retention_days leave
 * the queue (queue_purge: message bytes and addresses; a tombstone for
 * an idempotency key), their files leave the outbox, and so does any
 * other outbox file older than that.  Each pass that removed something
 * writes one audit row `retention` with the counts (no id, no address),
 * through the audit gate.  While the gate is closed (the audit cannot be
 * written) nothing is removed; the thread looks again every
 * RETENTION_RETRY_MS and purges soon after the gate opens.
 * retention_days 0 keeps everything.
 */
#ifndef INVITEMAIL_RETENTION_H
#define INVITEMAIL_RETENTION_H

#include <glib.h>

#include "audit.h"
#include "config.h"
#include "gate.h"

#define RETENTION_PERIOD_S 3600
/* How often a pass held back by a closed gate looks again. */
#define RETENTION_RETRY_MS 1000

#define RETENTION_ERROR (retention_error_quark ())
GQuark retention_error_quark (void);
typedef enum {
  RETENTION_ERROR_AUDIT_CLOSED   /* the gate is closed: nothing purged */
} RetentionError;

typedef struct Retention Retention;

typedef struct {
  guint invites;       /* invites whose data went */
  guint recipients;    /* recipient rows removed */
  guint tombstones;    /* invites kept as idempotency tombstones */
  guint files;         /* outbox files removed */
  guint days;          /* the retention_days of the pass */
} RetentionCounts;

/*
 * One pass at now (unix seconds): queue, then outbox (outbox_dir may be
 * NULL or absent), then the `retention` row through gate when anything
 * went (gate NULL: no row).
 *
 * gate closed: nothing is removed; FALSE with
 * RETENTION_ERROR_AUDIT_CLOSED.  *owed (may be NULL) holds the counts
 * of an earlier pass whose row could not be written: that row is
 * written first, and while it cannot be, nothing is removed (same
 * error).  When this pass's row cannot be written the gate is closed,
 * its counts go to *owed and FALSE is returned with the audit's error.
 * FALSE with *error too when the queue failed; what committed before
 * stays counted in *out.
 */
gboolean retention_run (const char *queue_db, const char *outbox_dir,
                        guint days, gint64 now, Gate *gate,
                        RetentionCounts *owed, RetentionCounts *out,
                        GError **error);

/* Removes the outbox files ("TAG.eml", "TAG.envelope") of tags, for an
 * erasure; returns how many went.  dir NULL or absent: 0. */
guint retention_outbox_remove (const char *dir, GPtrArray *tags);

/* Starts the thread; its first pass runs at once.  The Config is
 * copied (the daemon frees it at a reload). (transfer full) */
Retention *retention_start (const Config *cfg, Gate *gate);
/* After a reload: the new retention_days and outbox, next pass on. */
void retention_set_config (Retention *r, const Config *cfg);
/* Stops and joins the thread (a pass in progress finishes); a row
 * still owed is logged as lost.  NULL ok. */
void retention_stop (Retention *r);

#endif
