/*
 * db.h - opening SQLite files the way every state file here needs.
 *
 * The only home of connection settings: WAL, synchronous=FULL (a commit
 * survives power loss: doc/ARCHITECTURE.md, SQLite traps), a busy
 * timeout, foreign keys.  These
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

/*
 * Checkpoints off the commit path.  SQLite's automatic checkpoint runs
 * inside the COMMIT that pushes the WAL past 1000 pages, so every few
 * hundred group commits one of them also copied 4 MB into the database
 * and fsynced it, and every answer waiting on it was late (the accept
 * benchmark's p99).  A checkpointer is a thread with its own connection
 * to path; the writer connections it watches (db_checkpointer_watch)
 * no longer checkpoint themselves but wake it when their commit left
 * the WAL DB_CHECKPOINT_PAGES or more longer than what the last
 * checkpoint copied (not merely that long: under a steady stream of
 * commits the WAL is not reset), and it runs a PASSIVE checkpoint,
 * which never blocks a writer.  It also runs one when stopped.
 */
/* A checkpoint ends with an fsync of everything it copied, and the
 * commits' own fsyncs queue behind it on the disk: small ones often
 * beat big ones rarely (the p99 figures that chose 250 are in commit
 * 15af64b). */
#define DB_CHECKPOINT_PAGES 250
/* A WAL this long (8 MiB of 4 KiB pages) that no writer has reset is
 * made to start again from its beginning (a RESTART checkpoint, which
 * waits a few milliseconds at most for the readers in it; db.c). */
#define DB_RESTART_PAGES 2048
typedef struct DbCheckpointer DbCheckpointer;

/*
 * The WAL's bound.  A reader that holds one read transaction (an old
 * snapshot) keeps every checkpoint from resetting the WAL, and it then
 * grows with each commit.  After each checkpoint, when PATH-wal is over
 * the limit, the checkpointer tries a TRUNCATE checkpoint; when a
 * reader holds old frames (two checkpoints in a row stopped at the same
 * frame) it does not wait, and when that fails it logs a warning
 * naming the size (again each time the size doubles; a message when it
 * is back under).  Otherwise only a writer's commit is in the way (a
 * steady stream of them keeps the WAL from being reset), and the
 * TRUNCATE waits for it, a few milliseconds at most, without a
 * warning.  Our own readers page through in short transactions
 * (audit_read), so only a foreign reader can get there.
 */
#define DB_WAL_LIMIT ((gint64) 32 * 1024 * 1024)

DbCheckpointer *db_checkpointer_start (const char *path, GError **error);
/* For the tests: another limit than DB_WAL_LIMIT. */
void db_checkpointer_set_wal_limit (DbCheckpointer *c, gint64 bytes);
/* TRUNCATE checkpoints that reset an over-limit WAL (for the tests). */
guint db_checkpointer_truncates (DbCheckpointer *c);
/* RESTART checkpoints of a long WAL (for the tests). */
guint db_checkpointer_restarts (DbCheckpointer *c);
/* db must be a connection to the checkpointer's file; it must be closed
 * (or watched no more) before the checkpointer stops. */
void db_checkpointer_watch (DbCheckpointer *c, sqlite3 *db);
/* How many checkpoints it has run (for the tests). */
guint db_checkpointer_runs (DbCheckpointer *c);
void db_checkpointer_stop (DbCheckpointer *c);

/* Runs SQL without results; sets DB_ERROR_IO with sqlite's words. */
gboolean db_exec (sqlite3 *db, const char *sql, GError **error);

/* Sets *error from the connection's last error. Returns FALSE. */
gboolean db_fail (sqlite3 *db, GError **error, const char *what);

#endif
