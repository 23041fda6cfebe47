/*
 * queue_deliver.c - what the delivery workers ask of the queue: claim
 * due recipients, read the message (checked against its hash), record
 * outcomes, recover what was in flight at a crash; and cancel.
 */
#include "queue_private.h"

#include <string.h>

/* ---- delivery -------------------------------------------------------- */

void
queue_job_free (QueueJob *j)
{
  if (j == NULL)
    return;
  g_free (j->invite_id);
  g_free (j->address);
  g_free (j->envelope_from);
  g_free (j->return_token);
  g_free (j);
}

/* One JOB_COLUMNS row, checked. (transfer full) */
static QueueJob *
queue_job_from_row (sqlite3_stmt *st, GError **error)
{
  const char *id = queue_col_text (st, 0);
  const char *addr = queue_col_text (st, 2);
  const char *from = queue_col_text (st, 3);
  const char *token = queue_col_text (st, 7);
  gint64 idx, attempts, created, expires;
  QueueJob *j;

  if (!queue_id_ok (id) || !envelope_safe (addr, ENVELOPE_MAILBOX)
      || !envelope_safe (from, ENVELOPE_REVERSE_PATH)
      || (sqlite3_column_type (st, 7) != SQLITE_NULL && !queue_token_ok (token))
      || !queue_col_int (st, 1, 0, &idx) || idx > G_MAXUINT
      || !queue_col_int (st, 4, 0, &attempts) || attempts > G_MAXUINT
      || !queue_col_int (st, 5, G_MININT64, &created)
      || !queue_col_int (st, 6, G_MININT64, &expires))
    {
      queue_corrupt (error, "recipient to deliver");
      return NULL;
    }
  j = g_new0 (QueueJob, 1);
  j->invite_id = g_strdup (id);
  j->idx = (guint) idx;
  j->address = g_strdup (addr);
  j->envelope_from = g_strdup (from);
  j->return_token = g_strdup (token);
  j->attempts = (guint) attempts;
  j->created = created;
  j->expires = expires;
  return j;
}

/* Steps a JOB_COLUMNS statement to the end. (transfer full) */
static GPtrArray *
queue_collect_jobs (Queue *q, QueueStmt *st, GError **error)
{
  g_autoptr (GPtrArray) jobs =
    g_ptr_array_new_with_free_func ((GDestroyNotify) queue_job_free);
  int rc;

  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      QueueJob *j = queue_job_from_row (st, error);
      if (j == NULL)
        return NULL;
      g_ptr_array_add (jobs, j);
    }
  if (rc != SQLITE_DONE)
    {
      queue_fail (q, error, "select recipients");
      return NULL;
    }
  return g_steal_pointer (&jobs);
}

static GPtrArray *
queue_select_due (Queue *q, gint64 now, guint max, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_SELECT_DUE);

  sqlite3_bind_int64 (st, 1, now);
  sqlite3_bind_int64 (st, 2, max);
  return queue_collect_jobs (q, st, error);
}

static gboolean
queue_mark_sending (Queue *q, const QueueJob *j, gint64 now, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_MARK_SENDING);

  sqlite3_bind_text (st, 1, j->invite_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, j->idx);
  sqlite3_bind_int64 (st, 3, now);
  if (sqlite3_step (st) != SQLITE_DONE)
    return queue_fail (q, error, "mark sending");
  return TRUE;
}

GPtrArray *
queue_claim_due (Queue *q, gint64 now, guint max, GError **error)
{
  g_autoptr (GPtrArray) jobs = NULL;

  g_return_val_if_fail (q != NULL, NULL);
  if (!queue_begin (q, error))
    return NULL;
  /* Select all first, then update: changing rows under a running
   * SELECT on the same table is undefined in SQLite. */
  jobs = queue_select_due (q, now, max, error);
  for (guint i = 0; jobs != NULL && i < jobs->len; i++)
    if (!queue_mark_sending (q, g_ptr_array_index (jobs, i), now, error))
      g_clear_pointer (&jobs, g_ptr_array_unref);
  if (jobs == NULL || !queue_commit (q, error))
    {
      queue_rollback (q);
      return NULL;
    }
  return g_steal_pointer (&jobs);
}

GBytes *
queue_message (Queue *q, const char *invite_id, GError **error)
{
  g_autoptr (QueueStmt) st = NULL;
  const void *data;
  gsize len;
  int rc;

  g_return_val_if_fail (q != NULL && invite_id != NULL, NULL);
  st = queue_stmt (q, ST_MESSAGE);
  sqlite3_bind_text (st, 1, invite_id, -1, SQLITE_STATIC);
  rc = sqlite3_step (st);
  if (rc == SQLITE_DONE)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND,
                   "no such invite");
      return NULL;
    }
  if (rc != SQLITE_ROW)
    {
      queue_fail (q, error, "read message");
      return NULL;
    }
  data = sqlite3_column_blob (st, 0);
  len = (gsize) sqlite3_column_bytes (st, 0);
  /* The bytes are what goes on the wire: check them against the hash
   * that was audited when the invite was accepted. */
  if (sqlite3_column_type (st, 0) != SQLITE_BLOB
      || !sha256_hex_matches (data, len, queue_col_text (st, 1)))
    {
      queue_corrupt (error, "message bytes");
      return NULL;
    }
  return g_bytes_new (data, len);
}

static gboolean
queue_record_one (Queue *q, const QueueResult *r, gint64 now, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_RECORD);

  sqlite3_bind_text (st, 1, queue_state_name (r->state), -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, r->state == RCPT_DEFERRED ? r->next_try : 0);
  sqlite3_bind_int64 (st, 3, now);
  sqlite3_bind_text (st, 4, r->reply, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 5, r->invite_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 6, r->idx);
  if (sqlite3_step (st) != SQLITE_DONE)
    return queue_fail (q, error, "record outcome");
  if (sqlite3_changes (q->db) == 0)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND,
                   "no such recipient");
      return FALSE;
    }
  return TRUE;
}

static gboolean
queue_result_ok (const QueueResult *r)
{
  return r->invite_id != NULL
    && (r->state == RCPT_SENT || r->state == RCPT_DEFERRED
        || r->state == RCPT_FAILED || r->state == RCPT_EXPIRED);
}

gboolean
queue_record (Queue *q, const QueueResult *res, guint n, gint64 now,
              GError **error)
{
  g_return_val_if_fail (q != NULL && (n == 0 || res != NULL), FALSE);
  for (guint i = 0; i < n; i++)
    g_return_val_if_fail (queue_result_ok (&res[i]), FALSE);
  if (!queue_begin (q, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (!queue_record_one (q, &res[i], now, error))
      {
        queue_rollback (q);
        return FALSE;
      }
  return queue_commit (q, error);
}

static GPtrArray *
queue_select_sending (Queue *q, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_SELECT_SENDING);

  return queue_collect_jobs (q, st, error);
}

static gboolean
queue_requeue_sending (Queue *q, gint64 now, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_RECOVER);

  sqlite3_bind_int64 (st, 1, now);
  if (sqlite3_step (st) != SQLITE_DONE)
    return queue_fail (q, error, "recover");
  return TRUE;
}

GPtrArray *
queue_recover (Queue *q, gint64 now, GError **error)
{
  return queue_recover_then (q, now, NULL, NULL, error);
}

GPtrArray *
queue_recover_then (Queue *q, gint64 now, QueueRecoverCheck before,
                    gpointer data, GError **error)
{
  g_autoptr (GPtrArray) jobs = NULL;

  g_return_val_if_fail (q != NULL, NULL);
  if (!queue_begin (q, error))
    return NULL;
  jobs = queue_select_sending (q, error);
  if (jobs != NULL && !queue_requeue_sending (q, now, error))
    g_clear_pointer (&jobs, g_ptr_array_unref);
  if (jobs != NULL && jobs->len > 0 && before != NULL
      && !before (jobs, data, error))
    g_clear_pointer (&jobs, g_ptr_array_unref);
  if (jobs == NULL || !queue_commit (q, error))
    {
      queue_rollback (q);
      return NULL;
    }
  return g_steal_pointer (&jobs);
}

gint64
queue_next_due (Queue *q, GError **error)
{
  g_autoptr (QueueStmt) st = NULL;

  g_return_val_if_fail (q != NULL, -1);
  st = queue_stmt (q, ST_NEXT_DUE);
  if (sqlite3_step (st) != SQLITE_ROW)
    {
      queue_fail (q, error, "next due");
      return -1;
    }
  if (sqlite3_column_type (st, 0) == SQLITE_NULL)
    return -1;
  return sqlite3_column_int64 (st, 0);
}

gint64
queue_count_undelivered (Queue *q, GError **error)
{
  g_autoptr (QueueStmt) st = NULL;

  g_return_val_if_fail (q != NULL, -1);
  st = queue_stmt (q, ST_UNDELIVERED);
  if (sqlite3_step (st) != SQLITE_ROW)
    {
      queue_fail (q, error, "count undelivered");
      return -1;
    }
  return sqlite3_column_int64 (st, 0);
}

/* ---- cancel ---------------------------------------------------------- */

/*
 * Stops what has not gone out and lists what has, in one transaction:
 * recipients still queued or deferred become failed with the reply
 * QUEUE_CANCELLED_REPLY (a final state: the worker never claims them);
 * those sent or in flight (sending: the relay may have it) are returned
 * for a cancellation of their own.  Prepared here rather than at open:
 * a cancel is rare.
 */
gboolean
queue_cancel (Queue *q, const char *id, gint64 now, GPtrArray **reached,
              guint *stopped, GError **error)
{
  static const char stop_sql[] =
    "UPDATE recipients SET state = 'failed', reply = '" QUEUE_CANCELLED_REPLY "',"
    " next_try = 0, updated = ?2"
    " WHERE invite_id = ?1 AND state IN ('queued', 'deferred')";
  static const char reached_sql[] =
    "SELECT address FROM recipients WHERE invite_id = ?1"
    " AND state IN ('sent', 'sending') ORDER BY idx";
  sqlite3_stmt *stop = NULL, *sel = NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  gboolean ok = FALSE;
  int rc = SQLITE_OK;

  g_return_val_if_fail (q != NULL && reached != NULL && stopped != NULL, FALSE);
  if (!queue_id_ok (id))
    return queue_corrupt (error, "invite id");
  if (!queue_begin (q, error))
    return FALSE;
  if (sqlite3_prepare_v2 (q->db, stop_sql, -1, &stop, NULL) != SQLITE_OK
      || sqlite3_prepare_v2 (q->db, reached_sql, -1, &sel, NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_text (stop, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stop, 2, now);
  if (sqlite3_step (stop) != SQLITE_DONE)
    goto out;
  *stopped = (guint) sqlite3_changes (q->db);
  sqlite3_bind_text (sel, 1, id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (sel)) == SQLITE_ROW)
    {
      const char *a = queue_col_text (sel, 0);
      if (!envelope_safe (a, ENVELOPE_MAILBOX))
        {
          sqlite3_finalize (stop);
          sqlite3_finalize (sel);
          queue_rollback (q);
          return queue_corrupt (error, "recipient address");
        }
      g_ptr_array_add (out, g_strdup (a));
    }
  ok = rc == SQLITE_DONE;
out:
  if (!ok)
    queue_fail (q, error, "cancel");
  sqlite3_finalize (stop);
  sqlite3_finalize (sel);
  if (!ok)
    {
      queue_rollback (q);
      return FALSE;
    }
  if (!queue_commit (q, error))
    return FALSE;
  *reached = g_steal_pointer (&out);
  return TRUE;
}

/*
 * Undoes queue_cancel's stop when the cancel could not be stored with
 * its audit row: the recipients it made failed with
 * QUEUE_CANCELLED_REPLY are due again at once (deferred, so the
 * worker's next claim takes them).
 */
gboolean
queue_cancel_undo (Queue *q, const char *id, gint64 now, GError **error)
{
  static const char sql[] =
    "UPDATE recipients SET state = 'deferred', reply = NULL, next_try = ?2,"
    " updated = ?2 WHERE invite_id = ?1 AND state = 'failed'"
    " AND reply = '" QUEUE_CANCELLED_REPLY "'";
  sqlite3_stmt *st = NULL;
  gboolean ok;

  g_return_val_if_fail (q != NULL, FALSE);
  if (!queue_id_ok (id))
    return queue_corrupt (error, "invite id");
  if (!queue_begin (q, error))
    return FALSE;
  ok = sqlite3_prepare_v2 (q->db, sql, -1, &st, NULL) == SQLITE_OK;
  if (ok)
    {
      sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (st, 2, now);
      ok = sqlite3_step (st) == SQLITE_DONE;
    }
  if (!ok)
    queue_fail (q, error, "undo cancel");
  sqlite3_finalize (st);
  if (!ok)
    {
      queue_rollback (q);
      return FALSE;
    }
  return queue_commit (q, error);
}
