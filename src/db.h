/*
 * db.h - opening SQLite files the way every state file here needs.
 *
 * The only home of connection settings: WAL, synchronous=FULL (a commit
 * survives power loss, LIBS.md 6), a busy timeout, foreign keys.  These
 * are per connection, so every open goes through here.  Writers use
 * BEGIN IMMEDIATE (a deferred read-then-write gets SQLITE_BUSY_SNAPSHOT
 * without waiting).
 */
#ifndef INVITEMAIL_DB_H
#define INVITEMAIL_DB_H

#include <glib.h>
#include <sqlite3.h>

GQuark db_error_quark (void);
#define DB_ERROR (db_error_quark ())
typedef enum {
  DB_ERROR_OPEN,
  DB_ERROR_SCHEMA,
  DB_ERROR_IO,        /* a statement or commit failed */
  DB_ERROR_CORRUPT    /* data read back failed its checks */
} DbError;

#define DB_BUSY_TIMEOUT_MS 5000

/* Opens path read-write (created if absent, mode 0600 & ~umask) with the
 * settings above.  (transfer full: sqlite3_close_v2) */
sqlite3 *db_open (const char *path, GError **error);

/* Opens an existing file read-only (for `invitemail audit`). */
sqlite3 *db_open_readonly (const char *path, GError **error);

/* Runs SQL without results; sets DB_ERROR_IO with sqlite's words. */
gboolean db_exec (sqlite3 *db, const char *sql, GError **error);

/* Sets *error from the connection's last error. Returns FALSE. */
gboolean db_fail (sqlite3 *db, GError **error, const char *what);

#endif
