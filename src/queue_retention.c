/*
 * queue_retention.c - personal data leaving the queue: invites past the
 * retention period (purged, or kept as tombstones for their idempotency
 * key) and every row of one address (erasure).  Freed pages are zeroed
 * (PRAGMA secure_delete).
 */
#include "queue_private.h"

#include <string.h>

#include "db.h"

/* ---- retention ------------------------------------------------------- */

/* SHA-256 of zero bytes: a tombstone's message_sha256, so that reading
 * it back still passes queue_message's check. */
#define QUEUE_EMPTY_SHA256 \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char *const queue_purge_select_sql =
  "SELECT i.id, i.idem_key IS NOT NULL FROM invites i"
  " WHERE length (i.message) > 0 AND i.created < ?1"
  " AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.invite_id = i.id"
  "  AND (r.state IN ('queued', 'sending', 'deferred') OR r.updated >= ?1))"
  " LIMIT ?2";

void
queue_purged_clear (QueuePurged *p)
{
  if (p == NULL)
    return;
  g_clear_pointer (&p->tags, g_ptr_array_unref);
  p->invites = p->recipients = p->tombstones = 0;
}

/* Runs one statement with an id bound as ?1; TRUE when it completed. */
static gboolean
queue_purge_exec (Queue *q, const char *sql, const char *id, GError **error)
{
  sqlite3_stmt *st = NULL;
  gboolean ok;

  if (sqlite3_prepare_v2 (q->db, sql, -1, &st, NULL) != SQLITE_OK)
    return queue_fail (q, error, "prepare purge");
  sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
  ok = sqlite3_step (st) == SQLITE_DONE;
  sqlite3_finalize (st);
  return ok || queue_fail (q, error, "purge");
}

/* The outbox tags of an invite's recipients, before they go. */
static gboolean
queue_purge_tags (Queue *q, const char *id, QueuePurged *out, GError **error)
{
  sqlite3_stmt *st = NULL;
  int rc;

  if (sqlite3_prepare_v2 (q->db, "SELECT idx FROM recipients WHERE invite_id = ?1",
                          -1, &st, NULL) != SQLITE_OK)
    return queue_fail (q, error, "prepare purge");
  sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      out->recipients++;
      g_ptr_array_add (out->tags, g_strdup_printf ("%s.%" G_GINT64_FORMAT, id,
                                                   (gint64) sqlite3_column_int64 (st, 0)));
    }
  sqlite3_finalize (st);
  return rc == SQLITE_DONE || queue_fail (q, error, "purge");
}

static gboolean
queue_purge_one (Queue *q, const char *id, gboolean tombstone, QueuePurged *out,
                 GError **error)
{
  if (!queue_purge_tags (q, id, out, error)
      || !queue_purge_exec (q, "DELETE FROM recipients WHERE invite_id = ?1",
                            id, error))
    return FALSE;
  out->invites++;
  if (!tombstone)
    return queue_purge_exec (q, "DELETE FROM invites WHERE id = ?1", id, error);
  out->tombstones++;
  return queue_purge_exec (q, "UPDATE invites SET message = x'', message_sha256 = '"
                           QUEUE_EMPTY_SHA256 "', staff = NULL, booking = NULL,"
                           " envelope_from = '' WHERE id = ?1", id, error);
}

/* The candidates: ids with their tombstone flag. (transfer full) */
static GPtrArray *
queue_purge_select (Queue *q, gint64 cutoff, guint max, GArray *tomb,
                    GError **error)
{
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  sqlite3_stmt *st = NULL;
  int rc;

  if (sqlite3_prepare_v2 (q->db, queue_purge_select_sql, -1, &st, NULL) != SQLITE_OK)
    {
      queue_fail (q, error, "prepare purge");
      return NULL;
    }
  sqlite3_bind_int64 (st, 1, cutoff);
  sqlite3_bind_int64 (st, 2, max);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *id = queue_col_text (st, 0);
      gboolean t = sqlite3_column_int (st, 1) != 0;

      if (!queue_id_ok (id))
        continue;   /* never act on a row that fails its checks */
      g_ptr_array_add (ids, g_strdup (id));
      g_array_append_val (tomb, t);
    }
  sqlite3_finalize (st);
  if (rc != SQLITE_DONE)
    {
      queue_fail (q, error, "select purge");
      return NULL;
    }
  return g_steal_pointer (&ids);
}

gint
queue_purge (Queue *q, gint64 cutoff, guint max, QueuePurged *out,
             GError **error)
{
  g_autoptr (GArray) tomb = g_array_new (FALSE, FALSE, sizeof (gboolean));
  g_autoptr (GPtrArray) ids = NULL;
  QueuePurged got = { 0 };
  guint i;

  g_return_val_if_fail (q != NULL && out != NULL && max > 0, -1);
  got.tags = g_ptr_array_new_with_free_func (g_free);
  /* The message bytes and addresses must leave the file, not only the
   * b-tree: freed pages are zeroed (a connection setting). */
  if (!db_exec (q->db, "PRAGMA secure_delete = ON", NULL)
      || !queue_begin (q, error))
    return -1;
  ids = queue_purge_select (q, cutoff, max, tomb, error);
  for (i = 0; ids != NULL && i < ids->len; i++)
    if (!queue_purge_one (q, g_ptr_array_index (ids, i),
                          g_array_index (tomb, gboolean, i), &got, error))
      break;
  if (ids == NULL || i < ids->len || !queue_commit (q, error))
    {
      queue_rollback (q);
      queue_purged_clear (&got);
      return -1;
    }
  /* Counted only once committed. */
  out->invites += got.invites;
  out->recipients += got.recipients;
  out->tombstones += got.tombstones;
  if (out->tags == NULL)
    out->tags = g_steal_pointer (&got.tags);
  else
    g_ptr_array_extend_and_steal (out->tags, g_steal_pointer (&got.tags));
  return (gint) ids->len;
}

/* ---- erasure of one address -------------------------------------------- */

/* The matching rows: "ID.IDX" tags into tags; *busy counts those still
 * in delivery. */
static gboolean
queue_erase_select (Queue *q, const char *address, GPtrArray *tags,
                    guint *busy, GError **error)
{
  g_autofree char *norm = envelope_address_normal (address);
  sqlite3_stmt *st = NULL;
  int rc;

  /* lower () only narrows the rows; each is then compared as a mailbox
   * (envelope_same_address).  Stored domains are lower-case A-labels,
   * so the asked one is made one too. */
  if (sqlite3_prepare_v2 (q->db, "SELECT invite_id, idx, address, state FROM"
                          " recipients WHERE lower (address) = lower (?1)",
                          -1, &st, NULL) != SQLITE_OK)
    return queue_fail (q, error, "prepare erase");
  sqlite3_bind_text (st, 1, norm, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *id = queue_col_text (st, 0), *state = queue_col_text (st, 3);

      if (!queue_id_ok (id) || !envelope_same_address (queue_col_text (st, 2), address))
        continue;
      if (g_strcmp0 (state, "queued") == 0 || g_strcmp0 (state, "sending") == 0
          || g_strcmp0 (state, "deferred") == 0)
        (*busy)++;
      g_ptr_array_add (tags, g_strdup_printf ("%s.%" G_GINT64_FORMAT, id,
                                              (gint64) sqlite3_column_int64 (st, 1)));
    }
  sqlite3_finalize (st);
  return rc == SQLITE_DONE || queue_fail (q, error, "erase");
}

static gboolean
queue_erase_tag (Queue *q, const char *tag, GError **error)
{
  const char *dot = strrchr (tag, '.');
  g_autofree char *id = g_strndup (tag, dot - tag);
  sqlite3_stmt *st = NULL;
  gboolean ok;

  if (sqlite3_prepare_v2 (q->db, "DELETE FROM recipients WHERE invite_id = ?1"
                          " AND idx = ?2", -1, &st, NULL) != SQLITE_OK)
    return queue_fail (q, error, "prepare erase");
  sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, g_ascii_strtoll (dot + 1, NULL, 10));
  ok = sqlite3_step (st) == SQLITE_DONE;
  sqlite3_finalize (st);
  return ok || queue_fail (q, error, "erase");
}

gint
queue_erase_address (Queue *q, const char *address, GPtrArray *tags,
                     GError **error)
{
  guint busy = 0, i, first = tags->len;

  g_return_val_if_fail (q != NULL && address != NULL && tags != NULL, -1);
  if (!db_exec (q->db, "PRAGMA secure_delete = ON", NULL)
      || !queue_begin (q, error))
    return -1;
  if (!queue_erase_select (q, address, tags, &busy, error))
    i = 0;
  else if (busy > 0)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_CONFLICT, "%u recipient"
                   " row(s) with this address are still in delivery: erase"
                   " once they are sent, failed or expired", busy);
      i = 0;
    }
  else
    for (i = first; i < tags->len; i++)
      if (!queue_erase_tag (q, g_ptr_array_index (tags, i), error))
        break;
  if (busy > 0 || i < tags->len || !queue_commit (q, error))
    {
      queue_rollback (q);
      g_ptr_array_remove_range (tags, first, tags->len - first);
      return -1;
    }
  return (gint) (tags->len - first);
}
