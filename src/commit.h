/*
 * commit.h - group commit for the accept path.
 *
 * Every answer that promises something durable (`queued`) or that must
 * be audited (every refusal) waits for a commit.  One fsync per request
 * would cap the daemon at a few hundred requests a second; instead a
 * committer thread takes everything that arrived while the previous
 * commit was running and stores it in one queue transaction and one
 * audit transaction, then hands the results back to the main loop,
 * which answers.  Under load, batches grow by themselves; at rest a
 * batch is one request and the latency is one fsync (Postfix's and
 * every database's group commit).
 *
 * Ordering (fail closed, gate.h): the batch's invites are inserted in
 * one queue transaction; while it is still open, the batch's audit rows
 * (`accepted`, refusals) are appended and committed; only then does the
 * queue commit, and an invite is answered `queued` only after both.
 *  - audit append fails: the queue rolls back, nothing of the batch
 *    exists, each send is answered `unavailable`; refusals are answered
 *    with their own code, without their row (counted in audit_resumed);
 *  - queue commit fails after the rows: each `accepted` row gets a
 *    `rejected` row (code unavailable, same invite id) after it, and the
 *    send is answered `unavailable`;
 *  - a crash between the two commits leaves an `accepted` row whose
 *    invite is in no queue and was answered nothing; the next start
 *    finds it (committer_reconcile) and writes its `rejected` row;
 *  - the queue fails before the audit: every send is audited as
 *    rejected with code unavailable, as before.
 * While the gate is closed nothing reaches the queue and sends are
 * answered `unavailable` at once.
 */
#ifndef INVITEMAIL_COMMIT_H
#define INVITEMAIL_COMMIT_H

#include <glib.h>
#include "audit.h"
#include "gate.h"
#include "queue.h"

/* Most items stored in one transaction. */
#define COMMIT_BATCH_MAX 512
/* Longest wait for items announced with committer_expect before a batch
 * is committed without them (microseconds): about one message build. */
#define COMMIT_GATHER_US 300

typedef struct Committer Committer;
typedef struct CommitItem CommitItem;

/* Called on the main loop's thread once the item is committed (or
 * failed); it must not keep the item, which is freed after it returns. */
typedef void (*CommitDone) (CommitItem *item, gpointer data);

/* Outcome of an item's queue insert. */
typedef enum {
  COMMIT_STORED,        /* stored durably (or audit-only item written) */
  COMMIT_DUPLICATE,     /* idempotent repeat: existing_id is the invite */
  COMMIT_CONFLICT,      /* key reused for another request */
  COMMIT_FAILED,        /* storage failed: nothing stored */
  COMMIT_UNAUDITED      /* the audit cannot be written: nothing stored
                         * (an audit-only item: its row is not stored,
                         * and an answer that needs it is not given) */
} CommitResult;

/* A new item (transfer full), to be filled and submitted. */
CommitItem *commit_item_new (CommitDone done, gpointer data);

/* Makes the item store an invite.  ins and its strings are copied. */
void commit_item_set_insert (CommitItem *item, const QueueInsert *ins);

/* The audit row written with the item (copied).  For an insert, this
 * is the `accepted` row; it is replaced by a `duplicate_request` or a
 * `rejected` row when the insert turns out so. */
void commit_item_set_audit (CommitItem *item, const AuditRecord *rec);

CommitResult commit_item_result (const CommitItem *item);
/* The invite id answered: the new id, or the first one for a repeat. */
const char *commit_item_invite_id (const CommitItem *item);

/*
 * At start, before the first batch and before daemon_start: a crash
 * between a batch's audit commit and its queue commit left `accepted`
 * rows of invites that are in no queue and were answered nothing.
 * Batches commit one after the other, so only the newest can be so:
 * the audit's newest rows are read back (COMMIT_RECONCILE_ROWS at most,
 * back to the last daemon_stop or daemon_start, or to the first
 * `accepted` row whose invite the queue has; rows older than the queue's
 * retention are never judged) and each such row gets a `rejected` row
 * (code unavailable, same invite id) after it.  Returns how many, or -1
 * with error (then the daemon must not start: fail closed).
 */
#define COMMIT_RECONCILE_ROWS 10000
gint committer_reconcile (Queue *queue, Gate *gate, const char *audit_path,
                          guint retention_days, GError **error);

/* Starts the thread with its own queue connection; every row goes
 * through gate, which must outlive it. (transfer full) */
Committer *committer_start (const char *queue_path, Gate *gate,
                            GError **error);

/* FALSE while the audit cannot be written: `send` is then refused with
 * `unavailable` before any work (thread-safe, lock-free). */
gboolean committer_audit_open (Committer *c);

/*
 * Told after a group commit stored invites: n recipients are new work.
 * Runs on the committer's thread, under its lock: keep it short (the
 * daemon wakes the delivery workers).  The committer knows nothing of
 * who listens.
 */
typedef void (*CommitStoredFunc) (gpointer data, guint n);

/* Whom to tell (may be set later; fn NULL = none).  Once it returns the
 * previous listener is never called again: its data may be freed. */
void committer_set_on_stored (Committer *c, CommitStoredFunc fn, gpointer data);

/* Hands the item over (transfer full); thread-safe. */
void committer_submit (Committer *c, CommitItem *item);

/*
 * delta items are on their way (+1 when a send is handed to the build
 * pool, -1 once it has been submitted or given up).  While some are,
 * the committer waits for them, at most COMMIT_GATHER_US, before it
 * commits what it holds: one pair of fsyncs then serves them too
 * (PostgreSQL's commit_delay).  A lone request is never delayed: its
 * own announcement is withdrawn with its submit
 * (committer_submit_announced).
 */
void committer_expect (Committer *c, gint delta);
/* committer_submit of an item announced with committer_expect (+1),
 * and its announcement withdrawn in the same step: a committer that
 * waits for it wakes once, and a lone request is not woken twice. */
void committer_submit_announced (Committer *c, CommitItem *item);
/* The gather bound in microseconds (COMMIT_GATHER_US by default; 0: no
 * gathering).  For tests. */
void committer_set_gather (Committer *c, gint64 us);

/* Items submitted but not yet handed back. */
guint committer_pending (Committer *c);

/* For tests: the next queue commits fail. */
void committer_set_fail_commit (Committer *c, gboolean fail);

/* Commits what is pending, stops the thread and frees it.  Results of
 * the last batches are still handed to the main context, which must be
 * iterated afterwards to deliver them.  NULL is fine. */
void committer_stop (Committer *c);

#endif
