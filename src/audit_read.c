/*
 * audit_read.c - the top layer of the audit files: reading for the
 * review commands of `invitemail audit` (filtered rows, the head).
 * Opening without write access is the storage layer's (audit_ro.c).
 *
 * Readers keep their transactions short: audit_read pages through the
 * rows (keyset, 256 a page), so a consumer that stops reading (a pager
 * left open) holds no snapshot that would keep the writer's WAL from
 * being reset.
 *
 * What it trusts: nothing read back (verify recomputes hashes); filters
 * are bound parameters.
 */
#include "audit_read.h"

#include <string.h>

#include "audit_store.h"

/* The reading state: the page statement, the address lookup, and the
 * keyed hash of the recipient filtered on. */
typedef struct {
  sqlite3 *db;
  sqlite3_stmt *st;
  sqlite3_stmt *resolve;
  const char *rcpt_key;     /* NULL: no recipient filter */
} AuditReader;

static void
audit_bind_filter (sqlite3_stmt *st, const AuditFilter *f,
                   const char *rcpt_key)
{
  sqlite3_bind_text (st, 1, f->invite_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, f->event, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 3, f->since_ms);
  sqlite3_bind_int64 (st, 4, f->until_ms);
  sqlite3_bind_text (st, 5, f->booking, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 6, f->staff, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 7, rcpt_key, -1, SQLITE_STATIC);
}

/* Rows read per page; each page is its own short read transaction. */
#define AUDIT_READ_PAGE 256

/* One page of matching rows after seq `after`, into rows; the
 * statement is reset before returning, which ends the read
 * transaction: no row is handed to the caller while it is open. */
static gboolean
audit_read_page (AuditReader *r, const AuditFilter *f, gint64 after,
                 GPtrArray *rows, GError **error)
{
  int rc;

  audit_bind_filter (r->st, f, r->rcpt_key);
  sqlite3_bind_int64 (r->st, 8, after);
  sqlite3_bind_int64 (r->st, 9, AUDIT_READ_PAGE);
  while ((rc = sqlite3_step (r->st)) == SQLITE_ROW)
    {
      AuditRow *row = audit_row_from_stmt (r->st);

      if (row->recipient_keys != NULL)
        row->recipients = audit_address_resolve (r->db, &r->resolve,
                                                 row->recipient_keys);
      g_ptr_array_add (rows, row);
    }
  if (rc != SQLITE_DONE)
    audit_fail (r->db, error, "read");
  sqlite3_reset (r->st);
  sqlite3_clear_bindings (r->st);
  return rc == SQLITE_DONE;
}

/*
 * Filters are bound parameters in one fixed statement, never pasted
 * SQL.  The time window is since_ms <= time_ms < until_ms.  A recipient
 * matches by its keyed hash (the domain's case and IDN form do not
 * matter); rows come back with their addresses resolved from beside the
 * chain, "(erased)" for one erased.
 *
 * Keyset pages (seq > last LIMIT n), each read in its own transaction
 * and handed to fn only after it ended: fn may block as long as it
 * likes (`invitemail audit list | less`, left paused) without holding
 * a read snapshot, which would stop every checkpoint from resetting
 * the WAL and let it grow with each row the daemon writes.  Rows
 * appended during the read show up in later pages; the chain is
 * append-only, so no row is seen twice or skipped.
 */
gboolean
audit_read (const char *path, const AuditFilter *f, AuditRowFunc fn,
            gpointer data, GError **error)
{
  static const AuditFilter all = { 0 };
  AuditReader r = { 0 };
  gint64 after = 0;
  gboolean ok = TRUE, more = TRUE;
  guint8 key[32];
  char rcpt_key[SHA256_HEX_SIZE];

  g_return_val_if_fail (path != NULL && fn != NULL, FALSE);
  f = f != NULL ? f : &all;
  r.db = audit_open_read (path, "SELECT " AUDIT_COLUMNS " FROM audit"
                          " WHERE seq > ?8"
                          " AND (?1 IS NULL OR invite_id = ?1)"
                          " AND (?2 IS NULL OR event = ?2)"
                          " AND (?3 = 0 OR time_ms >= ?3)"
                          " AND (?4 = 0 OR time_ms < ?4)"
                          " AND (?5 IS NULL OR booking = ?5)"
                          " AND (?6 IS NULL OR staff = ?6)"
                          " AND (?7 IS NULL OR instr (',' || recipients"
                          " || ',', ',' || ?7 || ',') > 0)"
                          " ORDER BY seq LIMIT ?9", &r.st, error);
  if (r.db == NULL)
    return FALSE;
  if (f->recipient != NULL)
    {
      ok = audit_address_key_load (r.db, key, error);
      if (ok)
        audit_address_hash (key, f->recipient, rcpt_key);
      explicit_bzero (key, sizeof key);
      r.rcpt_key = rcpt_key;
    }
  while (ok && more)
    {
      g_autoptr (GPtrArray) rows =
        g_ptr_array_new_with_free_func ((GDestroyNotify) audit_row_free);

      ok = audit_read_page (&r, f, after, rows, error);
      more = ok && rows->len == AUDIT_READ_PAGE;
      for (guint i = 0; ok && i < rows->len; i++)
        {
          const AuditRow *row = g_ptr_array_index (rows, i);
          after = row->seq;
          if (!fn (row, data))
            {
              more = FALSE;
              break;
            }
        }
    }
  sqlite3_finalize (r.resolve);
  sqlite3_finalize (r.st);
  sqlite3_close_v2 (r.db);
  return ok;
}

gboolean
audit_read_address (const char *path, const char *address,
                    AuditAddressState *out, GError **error)
{
  sqlite3_stmt *st = NULL;
  guint8 key[32];
  char h[SHA256_HEX_SIZE];
  sqlite3 *db;
  int rc;

  g_return_val_if_fail (path != NULL && address != NULL && out, FALSE);
  *out = (AuditAddressState) { 0 };
  db = audit_open_read (path, "SELECT address IS NOT NULL, erased_ms,"
                        " (SELECT count (*) FROM audit WHERE instr (','"
                        " || recipients || ',', ',' || ?1 || ',') > 0)"
                        " FROM audit_address WHERE hash = ?1", &st, error);
  if (db == NULL)
    return FALSE;
  if (!audit_address_key_load (db, key, error))
    rc = SQLITE_ERROR;
  else
    {
      audit_address_hash (key, address, h);
      sqlite3_bind_text (st, 1, h, -1, SQLITE_STATIC);
      rc = sqlite3_step (st);
      if (rc == SQLITE_ROW)
        {
          out->kept = sqlite3_column_int (st, 0);
          out->erased_ms = sqlite3_column_int64 (st, 1);
          out->n_rows = sqlite3_column_int64 (st, 2);
        }
      else if (rc != SQLITE_DONE)
        audit_fail (db, error, "read address");
    }
  explicit_bzero (key, sizeof key);
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

gboolean
audit_read_newest (const char *path, guint max, AuditRowFunc fn,
                   gpointer data, GError **error)
{
  g_autoptr (GPtrArray) rows =
    g_ptr_array_new_with_free_func ((GDestroyNotify) audit_row_free);
  sqlite3_stmt *st = NULL;
  sqlite3 *db;
  int rc;

  g_return_val_if_fail (path != NULL && fn != NULL, FALSE);
  db = audit_open_read (path, "SELECT " AUDIT_COLUMNS " FROM audit"
                        " ORDER BY seq DESC LIMIT ?1", &st, error);
  if (db == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, max);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (rows, audit_row_from_stmt (st));
  if (rc != SQLITE_DONE)
    audit_fail (db, error, "read");
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  for (guint i = 0; rc == SQLITE_DONE && i < rows->len; i++)
    if (!fn (g_ptr_array_index (rows, i), data))
      break;
  return rc == SQLITE_DONE;
}

gboolean
audit_read_head (const char *path, gint64 *seq, char hash[SHA256_HEX_SIZE], GError **error)
{
  sqlite3_stmt *st = NULL;
  sqlite3 *db;
  int rc;

  g_return_val_if_fail (path != NULL && seq != NULL && hash != NULL, FALSE);
  db = audit_open_read (path, "SELECT seq, row_hash FROM audit"
                        " ORDER BY seq DESC LIMIT 1", &st, error);
  if (db == NULL)
    return FALSE;
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      const char *h = (const char *) sqlite3_column_text (st, 1);
      *seq = sqlite3_column_int64 (st, 0);
      g_strlcpy (hash, h != NULL ? h : "", SHA256_HEX_SIZE);
    }
  else if (rc == SQLITE_DONE && !audit_checkpoint_head (db, seq, hash))
    rc = SQLITE_ERROR;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    audit_fail (db, error, "read head");
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

gboolean
audit_read_anchor (const char *path, AuditAnchor *out, GError **error)
{
  sqlite3_stmt *st = NULL;
  sqlite3 *db;
  int rc;

  g_return_val_if_fail (path != NULL && out != NULL, FALSE);
  db = audit_open_read (path, "SELECT seq, row_hash, epoch, time_ms FROM"
                        " (SELECT seq, row_hash, epoch, time_ms FROM audit"
                        " WHERE event = 'sealed' UNION ALL SELECT seq,"
                        " row_hash, epoch, time_ms FROM audit_kept_seal)"
                        " ORDER BY seq DESC LIMIT 1", &st, error);
  if (db == NULL)
    return FALSE;
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      const char *h = (const char *) sqlite3_column_text (st, 1);

      out->seq = sqlite3_column_int64 (st, 0);
      g_strlcpy (out->hash, h != NULL ? h : "", sizeof out->hash);
      out->epoch = sqlite3_column_int64 (st, 2);
      out->time_ms = sqlite3_column_int64 (st, 3);
    }
  else if (rc == SQLITE_DONE)
    audit_broken (error, "%s holds no seal (run `invitemail audit init`)",
                  path);
  else
    audit_fail (db, error, "read head");
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  return rc == SQLITE_ROW;
}
