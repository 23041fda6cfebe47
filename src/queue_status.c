/*
 * queue_status.c - reading the queue back: an invite's status, the
 * rows of one domain for subject access, return tokens and the DSNs
 * recorded on them, and the figures `invitemail health` shows.
 */
#include "queue_private.h"

#include <string.h>

#include "db.h"

/* ---- status ---------------------------------------------------------- */

static void
queue_rcpt_status_free (QueueRcptStatus *r)
{
  g_free (r->address);
  g_free (r->reply);
  g_free (r->dsn_status);
  g_free (r);
}

void
queue_status_free (QueueStatus *s)
{
  if (s == NULL)
    return;
  g_free (s->id);
  g_free (s->state);
  g_free (s->booking);
  g_clear_pointer (&s->recipients, g_ptr_array_unref);
  g_free (s);
}
/* Columns col.. (dsn_action, dsn_status, dsn_diag): all NULL, or a DSN
 * recorded on a recipient the relay took. */
static gboolean
queue_dsn_row_ok (sqlite3_stmt *st, int col, RcptState state)
{
  const char *action = queue_col_text (st, col);

  if (sqlite3_column_type (st, col) == SQLITE_NULL)
    return TRUE;
  return state == RCPT_SENT
    && (g_strcmp0 (action, "failed") == 0 || g_strcmp0 (action, "delayed") == 0)
    && queue_dsn_status_ok (queue_col_text (st, col + 1))
    && (sqlite3_column_type (st, col + 2) == SQLITE_NULL
        || queue_safe_text_ok (queue_col_text (st, col + 2)));
}

/* A recipient the relay took, then a DSN came back for: shown as
 * bounced (final) or delayed (the remote side still tries), with the
 * DSN's status and diagnostic in place of the relay's reply. */
static void
queue_rcpt_apply_dsn (QueueRcptStatus *r, sqlite3_stmt *st, int col)
{
  const char *action = queue_col_text (st, col);
  const char *diag = queue_col_text (st, col + 2);

  if (action == NULL)
    return;
  r->state = strcmp (action, "failed") == 0 ? RCPT_BOUNCED : RCPT_DELAYED;
  r->dsn_status = g_strdup (queue_col_text (st, col + 1));
  g_free (r->reply);
  r->reply = g_strdup_printf ("%s%s%s", r->dsn_status, diag ? " " : "", diag ? diag : "");
}

/* Columns 3.. of ST_STATUS, checked. (transfer full) */
static QueueRcptStatus *
queue_rcpt_from_row (sqlite3_stmt *st, GError **error)
{
  const char *addr = queue_col_text (st, 3);
  const char *reply = queue_col_text (st, 8);
  gint64 attempts, next_try, updated;
  RcptState state;
  QueueRcptStatus *r;

  if (!envelope_safe (addr, ENVELOPE_MAILBOX)
      || !queue_state_parse (queue_col_text (st, 4), &state)
      || !queue_col_int (st, 5, 0, &attempts) || attempts > G_MAXUINT
      || !queue_col_int (st, 6, G_MININT64, &next_try)
      || !queue_col_int (st, 7, G_MININT64, &updated)
      || (sqlite3_column_type (st, 8) != SQLITE_NULL && reply == NULL)
      || (reply != NULL && !g_utf8_validate (reply, -1, NULL))
      || !queue_dsn_row_ok (st, 10, state))
    {
      queue_corrupt (error, "recipient status");
      return NULL;
    }
  r = g_new0 (QueueRcptStatus, 1);
  r->address = g_strdup (addr);
  r->state = state;
  r->attempts = (guint) attempts;
  r->next_try = state == RCPT_DEFERRED ? next_try : 0;
  r->updated = updated;
  r->reply = g_strdup (reply);
  queue_rcpt_apply_dsn (r, st, 10);
  return r;
}

/* The invite's state from its recipients' (queue.h, QueueStatus). */
static const char *
queue_invite_state (GPtrArray *rcpts)
{
  gboolean deferred = FALSE, bounced = FALSE, failed = FALSE;

  for (guint i = 0; i < rcpts->len; i++)
    {
      const QueueRcptStatus *r = g_ptr_array_index (rcpts, i);
      if (r->state == RCPT_QUEUED || r->state == RCPT_SENDING)
        return "queued";
      deferred |= r->state == RCPT_DEFERRED;
      bounced |= r->state == RCPT_BOUNCED;
      failed |= r->state == RCPT_FAILED || r->state == RCPT_EXPIRED;
    }
  if (deferred)
    return "deferred";
  /* A delayed DSN is not final: such a recipient counts as sent. */
  return failed ? "failed" : bounced ? "bounced" : "sent";
}

static gboolean
queue_status_head (QueueStatus *s, sqlite3_stmt *st, GError **error)
{
  const char *booking = queue_col_text (st, 2);

  if (!queue_col_int (st, 0, G_MININT64, &s->created)
      || !queue_col_int (st, 1, G_MININT64, &s->expires)
      || (sqlite3_column_type (st, 2) != SQLITE_NULL && booking == NULL)
      || (booking != NULL && !g_utf8_validate (booking, -1, NULL))
      || !queue_col_int (st, 9, G_MININT64, &s->peer_uid))
    return queue_corrupt (error, "invite");
  s->booking = g_strdup (booking);
  return TRUE;
}

QueueStatus *
queue_status (Queue *q, const char *id, GError **error)
{
  g_autoptr (QueueStatus) s = g_new0 (QueueStatus, 1);
  g_autoptr (QueueStmt) st = NULL;
  int rc;

  g_return_val_if_fail (q != NULL && id != NULL, NULL);
  s->id = g_strdup (id);
  s->recipients =
    g_ptr_array_new_with_free_func ((GDestroyNotify) queue_rcpt_status_free);
  st = queue_stmt (q, ST_STATUS);
  sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      QueueRcptStatus *r;
      if (s->recipients->len == 0 && !queue_status_head (s, st, error))
        return NULL;
      if ((r = queue_rcpt_from_row (st, error)) == NULL)
        return NULL;
      g_ptr_array_add (s->recipients, r);
    }
  if (rc != SQLITE_DONE)
    {
      queue_fail (q, error, "status");
      return NULL;
    }
  if (s->recipients->len == 0)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND,
                   "no such invite");
      return NULL;
    }
  s->state = g_strdup (queue_invite_state (s->recipients));
  return g_steal_pointer (&s);
}

/* ---- subject access (read-only) -------------------------------------- */

static gboolean
queue_domain_row (sqlite3_stmt *st, QueueRecipientFunc fn, gpointer data)
{
  QueueRecipientRow row = {
    queue_col_text (st, 0), queue_col_text (st, 1), queue_col_text (st, 2),
    0, 0, queue_col_text (st, 5), queue_col_text (st, 6)
  };
  RcptState state;

  if (!queue_id_ok (row.invite_id) || !envelope_safe (row.address, ENVELOPE_MAILBOX)
      || !queue_state_parse (row.state, &state)
      || !queue_col_int (st, 3, G_MININT64, &row.created)
      || !queue_col_int (st, 4, G_MININT64, &row.updated)
      || (row.staff != NULL && !g_utf8_validate (row.staff, -1, NULL))
      || (row.booking != NULL && !g_utf8_validate (row.booking, -1, NULL)))
    return TRUE;   /* a row that fails its checks is not shown */
  return fn (&row, data);
}

gboolean
queue_read_domain (const char *path, const char *domain,
                   QueueRecipientFunc fn, gpointer data, GError **error)
{
  g_autoptr (GError) local = NULL;
  sqlite3 *db;
  sqlite3_stmt *st = NULL;
  int rc;

  g_return_val_if_fail (path != NULL && domain != NULL && fn != NULL, FALSE);
  if ((db = db_open_readonly (path, &local)) == NULL)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_IO, "queue: %s", local->message);
      return FALSE;
    }
  /* LIKE ignores ASCII case, and a '_' in domain matches more than
   * itself: the caller compares each address exactly. */
  rc = sqlite3_prepare_v2 (db, "SELECT r.invite_id, r.address, r.state,"
                           " i.created, r.updated, i.staff, i.booking"
                           " FROM recipients r JOIN invites i ON i.id = r.invite_id"
                           " WHERE r.address LIKE '%@' || ?1"
                           " ORDER BY i.created, r.invite_id", -1, &st, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_bind_text (st, 1, domain, -1, SQLITE_TRANSIENT);
      while ((rc = sqlite3_step (st)) == SQLITE_ROW && queue_domain_row (st, fn, data))
        ;
    }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_IO, "queue read: %s",
                 sqlite3_errmsg (db));
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  return rc == SQLITE_DONE || rc == SQLITE_ROW;
}

/* ---- bounces --------------------------------------------------------- */

void
queue_token_owner_free (QueueTokenOwner *o)
{
  if (o == NULL)
    return;
  g_free (o->invite_id);
  g_free (o->address);
  g_free (o->dsn_action);
  g_free (o);
}

QueueTokenOwner *
queue_token_find (Queue *q, const char *token, GError **error)
{
  g_autoptr (QueueStmt) st = NULL;
  const char *id, *addr, *action;
  gint64 idx;
  RcptState state;
  QueueTokenOwner *o;
  int rc;

  g_return_val_if_fail (q != NULL, NULL);
  if (!queue_token_ok (token))
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND, "no such return token");
      return NULL;
    }
  st = queue_stmt (q, ST_TOKEN_FIND);
  sqlite3_bind_text (st, 1, token, -1, SQLITE_STATIC);
  rc = sqlite3_step (st);
  if (rc == SQLITE_DONE)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND, "no such return token");
      return NULL;
    }
  if (rc != SQLITE_ROW)
    {
      queue_fail (q, error, "token lookup");
      return NULL;
    }
  id = queue_col_text (st, 0);
  addr = queue_col_text (st, 2);
  action = queue_col_text (st, 4);
  if (!queue_id_ok (id) || !envelope_safe (addr, ENVELOPE_MAILBOX)
      || !queue_col_int (st, 1, 0, &idx) || idx > G_MAXUINT
      || !queue_state_parse (queue_col_text (st, 3), &state)
      || (sqlite3_column_type (st, 4) != SQLITE_NULL
          && g_strcmp0 (action, "failed") != 0 && g_strcmp0 (action, "delayed") != 0))
    {
      queue_corrupt (error, "recipient of a return token");
      return NULL;
    }
  o = g_new0 (QueueTokenOwner, 1);
  o->invite_id = g_strdup (id);
  o->idx = (guint) idx;
  o->address = g_strdup (addr);
  o->state = state;
  o->dsn_action = g_strdup (action);
  return o;
}

gboolean
queue_record_dsn (Queue *q, const char *invite_id, guint idx, const char *action,
                  const char *status, const char *diagnostic, gint64 now,
                  GError **error)
{
  g_return_val_if_fail (q != NULL && invite_id != NULL, FALSE);
  if ((g_strcmp0 (action, "failed") != 0 && g_strcmp0 (action, "delayed") != 0)
      || !queue_dsn_status_ok (status)
      || (diagnostic != NULL && !queue_safe_text_ok (diagnostic)))
    return queue_corrupt (error, "refusing to store a bad DSN");
  if (!queue_begin (q, error))
    return FALSE;
  {
    g_autoptr (QueueStmt) st = queue_stmt (q, ST_TOKEN_RECORD);
    sqlite3_bind_text (st, 1, action, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 3, diagnostic, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 4, now);
    sqlite3_bind_text (st, 5, invite_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 6, idx);
    if (sqlite3_step (st) != SQLITE_DONE)
      {
        queue_fail (q, error, "record DSN");
        queue_rollback (q);
        return FALSE;
      }
    if (sqlite3_changes (q->db) == 0)
      {
        queue_rollback (q);
        g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND, "no such recipient");
        return FALSE;
      }
  }
  return queue_commit (q, error);
}

/* ---- health ---------------------------------------------------------- */

gboolean
queue_health (Queue *q, gint64 now, QueueHealth *out, GError **error)
{
  g_return_val_if_fail (q != NULL && out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  {
    g_autoptr (QueueStmt) st = queue_stmt (q, ST_HEALTH_PENDING);
    if (sqlite3_step (st) != SQLITE_ROW)
      return queue_fail (q, error, "health");
    out->pending = (guint64) MAX (sqlite3_column_int64 (st, 0), 0);
    out->oldest_deferred_created = sqlite3_column_type (st, 1) == SQLITE_NULL
      ? 0 : sqlite3_column_int64 (st, 1);
  }
  {
    g_autoptr (QueueStmt) st = queue_stmt (q, ST_HEALTH_HOUR);
    sqlite3_bind_int64 (st, 1, now - 3600);
    if (sqlite3_step (st) != SQLITE_ROW)
      return queue_fail (q, error, "health");
    out->sent_hour = (guint64) MAX (sqlite3_column_int64 (st, 0), 0);
    out->failed_hour = (guint64) MAX (sqlite3_column_int64 (st, 1), 0);
    out->bounced_hour = (guint64) MAX (sqlite3_column_int64 (st, 2), 0);
    out->last_sent = sqlite3_column_type (st, 3) == SQLITE_NULL
      ? 0 : sqlite3_column_int64 (st, 3);
  }
  return TRUE;
}
