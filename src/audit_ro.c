/*
 * audit_ro.c - read-only opening of the audit file, for every reader
 * (verify, the review commands), part of the storage layer.
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
 * What it trusts: nothing read back; the schema version is checked at
 * open so a file of another version gets plain words, not hash faults.
 */
#include "audit_store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "db.h"

char *
audit_lock_path (const char *path)
{
  return g_strconcat (path, ".lock", NULL);
}

gboolean
audit_writer_active (const char *path)
{
  g_autofree char *lp = audit_lock_path (path);
  int fd = open (lp, O_RDONLY | O_CLOEXEC);
  gboolean busy;

  /* The lock is the daemon's alone (0600): a reader that may not open
   * it cannot tell, so it must assume a writer. */
  if (fd < 0)
    return errno == EACCES;
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

/* db when its schema version is ours; else NULL with plain words. */
static sqlite3 *
audit_checked (sqlite3 *db, GError **error)
{
  if (audit_check_version (db, error))
    return db;
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
    return audit_checked (db, error);
  rc = sqlite3_extended_errcode (db);
  if ((rc == SQLITE_READONLY_DIRECTORY || (rc & 0xff) == SQLITE_CANTOPEN)
      && !audit_writer_active (path))
    {
      sqlite3_close_v2 (db);
      db = audit_open_immutable (path, error);
      return db != NULL ? audit_checked (db, error) : NULL;
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

