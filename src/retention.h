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
 * writes one audit row `retention` with the counts (no id, no address).
 * retention_days 0 keeps everything.
 */
#ifndef INVITEMAIL_RETENTION_H
#define INVITEMAIL_RETENTION_H

#include <glib.h>

#include "audit.h"
#include "config.h"

#define RETENTION_PERIOD_S 3600

typedef struct Retention Retention;

typedef struct {
  guint invites;       /* invites whose data went */
  guint recipients;    /* recipient rows removed */
  guint tombstones;    /* invites kept as idempotency tombstones */
  guint files;         /* outbox files removed */
} RetentionCounts;

/*
 * One pass at now (unix seconds): queue, then outbox (outbox_dir may be
 * NULL or absent), then the audit row when anything went.  FALSE with
 * *error when the queue or the audit failed; what committed before
 * stays counted in *out.
 */
gboolean retention_run (const char *queue_db, const char *outbox_dir,
                        guint days, gint64 now, Audit *audit,
                        RetentionCounts *out, GError **error);

/* Removes the outbox files ("TAG.eml", "TAG.envelope") of tags, for an
 * erasure; returns how many went.  dir NULL or absent: 0. */
guint retention_outbox_remove (const char *dir, GPtrArray *tags);

/* Starts the thread; its first pass runs at once.  The Config is
 * copied (the daemon frees it at a reload). (transfer full) */
Retention *retention_start (const Config *cfg, Audit *audit);
/* After a reload: the new retention_days and outbox, next pass on. */
void retention_set_config (Retention *r, const Config *cfg);
/* Stops and joins the thread (a pass in progress finishes). NULL ok. */
void retention_stop (Retention *r);

#endif
