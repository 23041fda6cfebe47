/*
 * audit_erase.c - erasure of a recipient's clear address.  See
 * audit_erase.h.
 *
 * Why the bytes leave the files: the writer runs with secure_delete on
 * (audit.c), so SQLite overwrites the old cell content when the address
 * is set to NULL, and a TRUNCATE checkpoint afterwards writes the pages
 * home and empties the WAL, which would otherwise keep the page images
 * that held it.  Limits: copies made before (backups, exports) still
 * hold it; so may a copy-on-write or wear-levelled medium.
 *
 * What it trusts: the address as given (it is only hashed and compared).
 */
#include "audit_erase.h"

#include "audit_store.h"

static gint64
audit_erase_count (sqlite3 *db, const char *h)
{
  sqlite3_stmt *st = NULL;
  gint64 n = -1;

  if (sqlite3_prepare_v2 (db, "SELECT count (*) FROM audit WHERE instr (','"
                          " || recipients || ',', ',' || ?1 || ',') > 0", -1,
                          &st, NULL) == SQLITE_OK)
    {
      sqlite3_bind_text (st, 1, h, -1, SQLITE_STATIC);
      if (sqlite3_step (st) == SQLITE_ROW)
        n = sqlite3_column_int64 (st, 0);
    }
  sqlite3_finalize (st);
  return n;
}

/* The clear text gone, a tombstone left: rows changed (0 or 1). */
static int
audit_erase_clear (sqlite3 *db, const char *h, gint64 now_ms)
{
  sqlite3_stmt *st = NULL;
  int changed = -1;

  if (sqlite3_prepare_v2 (db, "UPDATE audit_address SET address = NULL,"
                          " erased_ms = ?2 WHERE hash = ?1 AND address IS"
                          " NOT NULL", -1, &st, NULL) == SQLITE_OK)
    {
      sqlite3_bind_text (st, 1, h, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (st, 2, now_ms);
      if (sqlite3_step (st) == SQLITE_DONE)
        changed = sqlite3_changes (db);
    }
  sqlite3_finalize (st);
  return changed;
}

static gboolean
audit_erase_txn (Audit *a, const char *h, gboolean quiet_ok, gint64 *n_rows,
                 GError **error)
{
  gint64 now = MAX (g_get_real_time () / 1000, a->last_time_ms);
  int changed;

  if (!audit_exec (a->db, "BEGIN IMMEDIATE", error))
    return FALSE;
  *n_rows = audit_erase_count (a->db, h);
  changed = *n_rows >= 0 ? audit_erase_clear (a->db, h, now) : -1;
  if (changed < 0)
    {
      audit_fail (a->db, error, "erase");
      audit_exec (a->db, "ROLLBACK", NULL);
      return FALSE;
    }
  if (changed == 0 && quiet_ok)
    return audit_exec (a->db, "COMMIT", error);
  if (changed == 0)
    {
      audit_exec (a->db, "ROLLBACK", NULL);
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "no clear address to"
                   " erase: none of the %" G_GINT64_FORMAT " row(s) naming it"
                   " keeps it (never sent to, erased already, or purged)",
                   *n_rows);
      return FALSE;
    }
  return audit_exec (a->db, "COMMIT", error);
}

gboolean
audit_erase_recipient (Audit *a, const char *address, gint64 uid,
                       const char *elsewhere, gint64 *n_rows, GError **error)
{
  g_autoptr (GMutexLocker) locker = NULL;
  g_autofree char *words = NULL;
  AuditRecord rec = { .event = AUDIT_ERASED, .peer_uid = uid };
  int log = 0, ckpt = 0;
  char h[SHA256_HEX_SIZE];

  g_return_val_if_fail (a != NULL && address != NULL && n_rows, FALSE);
  locker = g_mutex_locker_new (&a->lock);
  audit_address_hash (a->addr_key, address, h);
  if (!audit_erase_txn (a, h, elsewhere != NULL, n_rows, error))
    return FALSE;
  /* The keyed hash (which the rows hold already, so it tells nothing
   * new) ties the tombstone to this row for verify. */
  words = g_strdup_printf ("a recipient address erased: its clear text was"
                           " removed from beside %" G_GINT64_FORMAT " row(s),"
                           " which keep its keyed hash %s%s%s", *n_rows, h,
                           elsewhere != NULL ? "; " : "",
                           elsewhere != NULL ? elsewhere : "");
  rec.detail = words;
  if (!audit_append_locked (a, &rec, 1, NULL, error))
    return FALSE;
  if (sqlite3_wal_checkpoint_v2 (a->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log,
                                 &ckpt) != SQLITE_OK)
    return audit_fail (a->db, error, "checkpoint after erase");
  return TRUE;
}
