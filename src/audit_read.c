/*
 * audit_read.c - read-only access to the audit file for `invitemail
 * audit`: opening without write access, filtered reads, the head.
 *
 * Why reading works without write access: the writer keeps -wal and
 * -shm in place (audit.c, SQLITE_FCNTL_PERSIST_WAL), so a reader never
 * has to create them.  If they are missing anyway (a file copied
 * elsewhere, or removed by hand) SQLite answers SQLITE_READONLY_DIRECTORY
 * in a folder the reader cannot write; then, and only when no writer
 * holds PATH.lock, the reader opens the file with immutable=1.  That is
 * safe because without -wal every commit is in the main file, and
 * without a writer nothing changes it; the lock probe is what makes the
 * second true (a writer starting during a read is a window we accept:
 * the daemon opens the file only at start).
 *
 * Readers keep their transactions short: audit_read pages through the
 * rows (keyset, 256 a page), so a consumer that stops reading (a pager
 * left open) holds no snapshot that would keep the writer's WAL from
 * being reset.
 *
 * What it trusts: nothing read back (verify recomputes hashes); filters
 * are bound parameters.
 */
#include "audit_private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "db.h"

gboolean
audit_writer_active (const char *path)
{
  g_autofree char *lp = audit_lock_path (path);
  int fd = open (lp, O_RDONLY | O_CLOEXEC);
  gboolean busy;

  if (fd < 0)
    return FALSE;
  busy = flock (fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close (fd);
  return busy;
}

/* file:PATH?immutable=1 with PATH escaped for a URI. */
static sqlite3 *
audit_open_immutable (const char *path, GError **error)
{
  g_autofree char *esc = g_uri_escape_string (path, "/", FALSE);
  g_autofree char *uri = g_strconcat ("file:", esc, "?immutable=1", NULL);
  sqlite3 *db = NULL;

  if (sqlite3_open_v2 (uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI
                       | SQLITE_OPEN_FULLMUTEX, NULL) == SQLITE_OK)
    return db;
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit: cannot open %s: %s",
               path, db != NULL ? sqlite3_errmsg (db) : "out of memory");
  sqlite3_close_v2 (db);
  return NULL;
}

/* The usual read-only open; when the WAL files are missing in a folder
 * we cannot write (SQLITE_READONLY_DIRECTORY / CANTOPEN at the first
 * read) and no writer is active, immutable=1 (header comment). */
static sqlite3 *
audit_open_ro (const char *path, GError **error)
{
  GError *local = NULL;
  sqlite3 *db = db_open_readonly (path, &local);
  int rc;

  if (db == NULL)
    {
      audit_from_db (local, error);
      return NULL;
    }
  rc = sqlite3_exec (db, "SELECT count (*) FROM sqlite_master", NULL, NULL,
                     NULL);
  if (rc == SQLITE_OK)
    return db;
  rc = sqlite3_extended_errcode (db);
  if ((rc == SQLITE_READONLY_DIRECTORY || (rc & 0xff) == SQLITE_CANTOPEN)
      && !audit_writer_active (path))
    {
      sqlite3_close_v2 (db);
      return audit_open_immutable (path, error);
    }
  audit_fail (db, error, "read");
  sqlite3_close_v2 (db);
  return NULL;
}

sqlite3 *
audit_open_read (const char *path, const char *sql, sqlite3_stmt **st,
                 GError **error)
{
  sqlite3 *db = audit_open_ro (path, error);

  if (db == NULL)
    return NULL;
  if (sqlite3_prepare_v2 (db, sql, -1, st, NULL) != SQLITE_OK)
    {
      audit_fail (db, error, "read");
      sqlite3_close_v2 (db);
      return NULL;
    }
  return db;
}

static void
audit_bind_filter (sqlite3_stmt *st, const AuditFilter *f)
{
  sqlite3_bind_text (st, 1, f->invite_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, f->event, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 3, f->since_ms);
  sqlite3_bind_int64 (st, 4, f->until_ms);
  sqlite3_bind_text (st, 5, f->booking, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 6, f->staff, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 7, f->recipient, -1, SQLITE_STATIC);
}

/* Rows read per page; each page is its own short read transaction. */
#define AUDIT_READ_PAGE 256

/* One page of matching rows after seq `after`, into rows; the
 * statement is reset before returning, which ends the read
 * transaction: no row is handed to the caller while it is open. */
static gboolean
audit_read_page (sqlite3 *db, sqlite3_stmt *st, const AuditFilter *f,
                 gint64 after, GPtrArray *rows, GError **error)
{
  int rc;

  audit_bind_filter (st, f);
  sqlite3_bind_int64 (st, 8, after);
  sqlite3_bind_int64 (st, 9, AUDIT_READ_PAGE);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (rows, audit_row_from_stmt (st));
  if (rc != SQLITE_DONE)
    audit_fail (db, error, "read");
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
  return rc == SQLITE_DONE;
}

/*
 * Filters are bound parameters in one fixed statement, never pasted
 * SQL.  The time window is since_ms <= time_ms < until_ms.  A recipient
 * matches one whole address of the comma-joined list, ignoring case.
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
  sqlite3_stmt *st = NULL;
  sqlite3 *db;
  gint64 after = 0;
  gboolean ok = TRUE, more = TRUE;

  g_return_val_if_fail (path != NULL && fn != NULL, FALSE);
  f = f != NULL ? f : &all;
  db = audit_open_read (path, "SELECT " AUDIT_COLUMNS " FROM audit"
                        " WHERE seq > ?8"
                        " AND (?1 IS NULL OR invite_id = ?1)"
                        " AND (?2 IS NULL OR event = ?2)"
                        " AND (?3 = 0 OR time_ms >= ?3)"
                        " AND (?4 = 0 OR time_ms < ?4)"
                        " AND (?5 IS NULL OR booking = ?5)"
                        " AND (?6 IS NULL OR staff = ?6)"
                        " AND (?7 IS NULL OR instr (',' || lower (recipients)"
                        " || ',', ',' || lower (?7) || ',') > 0)"
                        " ORDER BY seq LIMIT ?9", &st, error);
  if (db == NULL)
    return FALSE;
  while (ok && more)
    {
      g_autoptr (GPtrArray) rows =
        g_ptr_array_new_with_free_func ((GDestroyNotify) audit_row_free);

      ok = audit_read_page (db, st, f, after, rows, error);
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
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  return ok;
}

gboolean
audit_read_head (const char *path, gint64 *seq, char hash[65], GError **error)
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
      g_strlcpy (hash, h != NULL ? h : "", 65);
    }
  else if (rc == SQLITE_DONE && !audit_checkpoint_head (db, seq, hash))
    rc = SQLITE_ERROR;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    audit_fail (db, error, "read head");
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  return rc == SQLITE_ROW || rc == SQLITE_DONE;
}
