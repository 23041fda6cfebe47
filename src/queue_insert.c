/*
 * queue_insert.c - storing accepted invites: every row checked before
 * it goes in, idempotency keys scoped per uid, a batch of invites in one
 * transaction with a savepoint each.
 */
#include "queue_private.h"

#include <string.h>

#include "token.h"

/* ---- insert ---------------------------------------------------------- */

static gboolean
queue_insert_ok (const QueueInsert *ins, GError **error)
{
  gsize len = 0;
  const void *data = g_bytes_get_data (ins->message, &len);

  if (!queue_id_ok (ins->id))
    return queue_corrupt (error, "refusing to store a malformed invite id");
  if (!envelope_safe (ins->envelope_from, ENVELOPE_REVERSE_PATH))
    return queue_corrupt (error, "refusing to store a bad envelope sender");
  if (!sha256_hex_matches (data, len, ins->message_sha256))
    return queue_corrupt (error, "message_sha256 does not match the message");
  for (guint i = 0; i < ins->n_recipients; i++)
    if (!envelope_safe (ins->recipients[i], ENVELOPE_MAILBOX))
      return queue_corrupt (error, "refusing to store a bad recipient");
  return TRUE;
}

/*
 * The key as stored: "UID:KEY".  Keys are scoped per uid, so another
 * local user can neither take a caller's key first (its real request
 * would then fail with conflict) nor learn the caller's invite id by
 * replaying the key.  The uid has no ':', so the first one splits.
 * (transfer full; NULL when there is no key)
 */
static char *
queue_scoped_key (const QueueInsert *ins)
{
  if (ins->idempotency_key == NULL)
    return NULL;
  return g_strdup_printf ("%" G_GINT64_FORMAT ":%s", ins->peer_uid,
                          ins->idempotency_key);
}

/* Inside the transaction: 1 = key seen (answered), 0 = new, -1 = error. */
static int
queue_check_key (Queue *q, const QueueInsert *ins, char **existing_id,
                 GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_FIND_KEY);
  g_autofree char *key = queue_scoped_key (ins);
  const char *id;
  int rc;

  sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
  rc = sqlite3_step (st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    {
      queue_fail (q, error, "idempotency lookup");
      return -1;
    }
  id = queue_col_text (st, 0);
  if (!queue_id_ok (id))
    {
      queue_corrupt (error, "stored invite id");
      return -1;
    }
  if (g_strcmp0 (queue_col_text (st, 1), ins->fingerprint) != 0)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_CONFLICT,
                   "idempotency key already used for another request");
      return -1;
    }
  if (existing_id != NULL)
    *existing_id = g_strdup (id);
  return 1;
}

static gboolean
queue_insert_invite (Queue *q, const QueueInsert *ins, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_INSERT_INVITE);
  g_autofree char *key = queue_scoped_key (ins);
  gsize len = 0;
  const void *data = g_bytes_get_data (ins->message, &len);

  sqlite3_bind_text (st, 1, ins->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, ins->created);
  sqlite3_bind_int64 (st, 3, ins->expires);
  sqlite3_bind_text (st, 4, key, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 5, ins->fingerprint, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 6, ins->staff, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 7, ins->booking, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 8, ins->peer_uid);
  sqlite3_bind_text (st, 9, ins->envelope_from, -1, SQLITE_STATIC);
  /* A NULL pointer would bind SQL NULL; "" with length 0 is an empty blob. */
  sqlite3_bind_blob64 (st, 10, data != NULL ? data : "", len, SQLITE_STATIC);
  sqlite3_bind_text (st, 11, ins->message_sha256, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 12, ins->unit, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 13, ins->message_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_DONE)
    return queue_fail (q, error, "insert invite");
  return TRUE;
}

static gboolean
queue_insert_recipients (Queue *q, const QueueInsert *ins, GError **error)
{
  for (guint i = 0; i < ins->n_recipients; i++)
    {
      g_autoptr (QueueStmt) st = queue_stmt (q, ST_INSERT_RCPT);

      sqlite3_bind_text (st, 1, ins->id, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (st, 2, i);
      char token[QUEUE_TOKEN_LEN + 1];

      if (!token_random (token, QUEUE_TOKEN_LEN))
        return queue_fail (q, error, "no randomness for a return token");
      sqlite3_bind_text (st, 3, ins->recipients[i], -1, SQLITE_STATIC);
      /* next_try = created: queued recipients go oldest first. */
      sqlite3_bind_int64 (st, 4, ins->created);
      sqlite3_bind_text (st, 5, token, -1, SQLITE_TRANSIENT);
      if (sqlite3_step (st) != SQLITE_DONE)
        return queue_fail (q, error, "insert recipient");
    }
  return TRUE;
}

/* A batch of one: one path for storing, whatever the caller. */
gboolean
queue_insert (Queue *q, const QueueInsert *ins, char **existing_id,
              GError **error)
{
  QueueBatchItem item = { .ins = ins };

  g_return_val_if_fail (q != NULL && ins != NULL, FALSE);
  g_return_val_if_fail (ins->message != NULL, FALSE);
  g_return_val_if_fail (ins->n_recipients == 0 || ins->recipients != NULL,
                        FALSE);
  if (existing_id != NULL)
    *existing_id = NULL;
  if (!queue_insert_batch (q, &item, 1, error))
    return FALSE;
  if (item.error != NULL)
    {
      g_propagate_error (error, item.error);
      return FALSE;
    }
  if (existing_id != NULL)
    *existing_id = item.existing_id;
  else
    g_free (item.existing_id);
  return TRUE;
}

/* One invite inside the batch's transaction, under a savepoint so that
 * its failure (a key conflict, a bad row) undoes only itself. */
static void
queue_insert_one (Queue *q, QueueBatchItem *it)
{
  int seen = 0;

  if (it->ins->n_recipients == 0)
    {
      queue_corrupt (&it->error, "refusing to store an invite without recipients");
      return;
    }
  if (!queue_insert_ok (it->ins, &it->error)
      || !queue_run (q, ST_SAVEPOINT, &it->error))
    return;
  if (it->ins->idempotency_key != NULL)
    seen = queue_check_key (q, it->ins, &it->existing_id, &it->error);
  if (seen == 0 && queue_insert_invite (q, it->ins, &it->error)
      && queue_insert_recipients (q, it->ins, &it->error))
    {
      queue_run (q, ST_RELEASE, NULL);
      return;
    }
  queue_run (q, ST_ROLLBACK_TO, NULL);
  queue_run (q, ST_RELEASE, NULL);
}

gboolean
queue_insert_batch (Queue *q, QueueBatchItem *items, guint n, GError **error)
{
  return queue_insert_batch_then (q, items, n, NULL, NULL, error);
}

gboolean
queue_insert_batch_then (Queue *q, QueueBatchItem *items, guint n,
                         QueueBeforeCommit before, gpointer data,
                         GError **error)
{
  g_return_val_if_fail (q != NULL && (n == 0 || items != NULL), FALSE);

  for (guint i = 0; i < n; i++)
    {
      items[i].existing_id = NULL;
      items[i].error = NULL;
    }
  if (!queue_begin (q, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    queue_insert_one (q, &items[i]);
  if (before != NULL && !before (data, error))
    queue_rollback (q);
  else if (queue_commit (q, error))
    return TRUE;
  /* Nothing of the batch is stored: no item may claim otherwise. */
  for (guint i = 0; i < n; i++)
    g_clear_pointer (&items[i].existing_id, g_free);
  return FALSE;
}
