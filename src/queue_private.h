/*
 * queue_private.h - what the queue's files share and nobody else sees:
 * the connection with its cached statements, the transaction steps and
 * the checks every row passes on its way in and out.
 *
 * The queue is one module in several files, each with one concern:
 *   queue.c            statements, connection, transactions, row checks
 *   queue_schema.c     the schema and its upgrade steps
 *   queue_insert.c     storing invites (batches; idempotency keys)
 *   queue_deliver.c    delivery claims, outcomes, recovery, cancel
 *   queue_status.c     status, subject access, bounces, health
 *   queue_retention.c  purge after the retention period, erasure
 * SQL lives only in these files (and in the audit's).
 */
#ifndef INVITEMAIL_QUEUE_PRIVATE_H
#define INVITEMAIL_QUEUE_PRIVATE_H

#include <sqlite3.h>

#include "digest.h"
#include "envelope.h"
#include "queue.h"

/* Every statement, prepared once at open (SQLITE_PREPARE_PERSISTENT). */
enum {
  ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_ROLLBACK_TO, ST_RELEASE,
  ST_FIND_KEY, ST_INSERT_INVITE, ST_INSERT_RCPT,
  ST_SELECT_DUE, ST_MARK_SENDING, ST_MESSAGE, ST_RECORD,
  ST_SELECT_SENDING, ST_RECOVER, ST_NEXT_DUE, ST_STATUS, ST_UNDELIVERED,
  ST_TOKEN_FIND, ST_TOKEN_RECORD, ST_HEALTH_PENDING, ST_HEALTH_HOUR,
  N_ST
};

struct Queue {
  sqlite3 *db;
  sqlite3_stmt *st[N_ST];
  gboolean fail_commit;     /* test hook, see queue_set_fail_commit */
  gboolean writing;         /* holds queue_writer */
  gboolean checkpointed;    /* watched by queue_ckpt */
};

/* A cached statement borrowed for one use.  The cleanup resets it
 * (never finalizes): a stepped statement left unreset would keep its
 * read snapshot open and stall WAL checkpoints. */
typedef sqlite3_stmt QueueStmt;
static inline void
queue_stmt_release (QueueStmt *st)
{
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QueueStmt, queue_stmt_release)

static inline QueueStmt *
queue_stmt (Queue *q, int which)
{
  return q->st[which];
}

/* queue_schema.c: creates or upgrades the schema of a new connection. */
gboolean queue_schema (sqlite3 *db, GError **error);

/* Errors: QUEUE_ERROR_IO with SQLite's words; QUEUE_ERROR_CORRUPT for a
 * row (or a value to store) that fails its checks.  Both return FALSE. */
gboolean queue_fail (Queue *q, GError **error, const char *what);
gboolean queue_corrupt (GError **error, const char *what);

/* Transactions: BEGIN IMMEDIATE under the process's writer mutex. */
gboolean queue_run (Queue *q, int which, GError **error);
gboolean queue_begin (Queue *q, GError **error);
void queue_rollback (Queue *q);
gboolean queue_commit (Queue *q, GError **error);

/* Checks shared by writing and reading back. */
gboolean queue_state_parse (const char *name, RcptState *out);
gboolean queue_id_ok (const char *id);
gboolean queue_safe_text_ok (const char *t);
const char *queue_col_text (sqlite3_stmt *st, int col);
gboolean queue_col_int (sqlite3_stmt *st, int col, gint64 min, gint64 *out);

#endif
