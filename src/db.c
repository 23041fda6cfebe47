/*
 * db.c - opening SQLite files the way every state file here needs.
 *
 * What it does: creates the file 0600 (& ~umask) before SQLite sees it,
 * opens it, and sets the per-connection settings that the queue and the
 * audit rely on (doc/ARCHITECTURE.md, SQLite traps): WAL (checked: the
 * answer must be "wal"),
 * synchronous=FULL so a commit survives power loss, a busy timeout,
 * foreign keys, trusted_schema=OFF and defensive mode.
 *
 * Threading: the Debian build is serialized (THREADSAFE=1).  We open
 * with SQLITE_OPEN_FULLMUTEX explicitly rather than NOMUTEX: the queue
 * connections are each used by one thread, but the audit connection is
 * shared by threads (appends are serialised by the audit's own mutex,
 * yet a misuse elsewhere should not corrupt memory).  The mutex costs
 * nanoseconds against the fsync of every commit.
 *
 * What it trusts: the path (from the configuration, chosen by the
 * administrator).  Symlinks are followed on purpose, so a packager may
 * point the state file elsewhere.
 *
 * Limits: none of its own; DB_BUSY_TIMEOUT_MS bounds lock waits.
 */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (invitemail-db-error-quark, db_error)

gboolean
db_fail (sqlite3 *db, GError **error, const char *what)
{
  g_set_error (error, DB_ERROR, DB_ERROR_IO, "%s: %s (%d)", what,
               db != NULL ? sqlite3_errmsg (db) : "out of memory",
               db != NULL ? sqlite3_extended_errcode (db) : SQLITE_NOMEM);
  return FALSE;
}

gboolean
db_exec (sqlite3 *db, const char *sql, GError **error)
{
  char *msg = NULL;

  g_return_val_if_fail (db != NULL && sql != NULL, FALSE);
  if (sqlite3_exec (db, sql, NULL, NULL, &msg) == SQLITE_OK)
    return TRUE;
  g_set_error (error, DB_ERROR, DB_ERROR_IO, "%s (%d)",
               msg != NULL ? msg : sqlite3_errmsg (db),
               sqlite3_extended_errcode (db));
  sqlite3_free (msg);
  return FALSE;
}

/*
 * SQLite creates new files 0644 & ~umask.  The queue holds recipient
 * addresses and message bodies, so we create the file ourselves with
 * 0600 first; SQLite gives -wal and -shm the same mode as the database.
 * The audit file needs group read for compliance staff (a reader needs
 * -wal and -shm readable too): that is a deployment decision (group +
 * umask 027 or a chmod by the installer), not something to widen here.
 *
 * O_EXCL, and no descriptor at all when the file exists: closing any
 * descriptor of a file drops every POSIX lock this process holds on it,
 * among them the SHARED lock that the connections already open (the
 * checkpointer opens after the writer, the delivery workers after the
 * committer) hold for as long as they use the WAL.  Without that lock
 * another process that closed its own connection (a sqlite3 shell, a
 * script) believed it was the last one, checkpointed, and deleted -wal
 * and -shm under the daemon, whose later commits then went to a deleted
 * file that no reader saw and a crash lost.
 */
static gboolean
db_create_private (const char *path, GError **error)
{
  int fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

  if (fd < 0 && errno == EEXIST)
    return TRUE;
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, DB_ERROR, DB_ERROR_OPEN, "cannot create %s: %s",
                   path, g_strerror (saved));
      return FALSE;
    }
  close (fd);
  return TRUE;
}

/* journal_mode answers the mode now in force; anything but "wal" (e.g.
 * a file system without shared memory) would silently lose the
 * reader/writer concurrency and the durability reasoning, so refuse. */
static gboolean
db_set_wal (sqlite3 *db, GError **error)
{
  sqlite3_stmt *st = NULL;
  gboolean ok = FALSE;

  if (sqlite3_prepare_v2 (db, "PRAGMA journal_mode=WAL", -1, &st, NULL)
      != SQLITE_OK)
    return db_fail (db, error, "journal_mode");
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      const char *mode = (const char *) sqlite3_column_text (st, 0);
      ok = mode != NULL && g_ascii_strcasecmp (mode, "wal") == 0;
      if (!ok)
        g_set_error (error, DB_ERROR, DB_ERROR_OPEN,
                     "journal_mode is %s, not wal", mode ? mode : "(null)");
    }
  else
    db_fail (db, error, "journal_mode");
  sqlite3_finalize (st);
  return ok;
}

/*
 * Busy handler: SQLite's own (sqlite3_busy_timeout) sleeps 1, 2, 5, 10,
 * 15, 20, 25, 50 ms... between tries, so a writer that loses a race
 * with another thread's short commit waits far longer than that commit
 * takes.  Our writers hold the lock for one fsync at a time, so poll
 * every 250 us instead, up to DB_BUSY_TIMEOUT_MS in all.
 */
#define DB_BUSY_POLL_US 250

static int
db_busy (void *data, int count)
{
  if ((gint64) count * DB_BUSY_POLL_US >= (gint64) DB_BUSY_TIMEOUT_MS * 1000)
    return 0;
  g_usleep (DB_BUSY_POLL_US);
  return 1;
}

/* Settings that are per connection (doc/ARCHITECTURE.md, SQLite traps)
 * and safe on a read-only connection: none of them writes to the file. */
static gboolean
db_set_common (sqlite3 *db, GError **error)
{
  sqlite3_extended_result_codes (db, 1);
  if (sqlite3_busy_handler (db, db_busy, NULL) != SQLITE_OK)
    return db_fail (db, error, "busy_handler");
  /* Defensive mode: no writable_schema, no direct shadow-table writes,
   * so a bug here cannot corrupt the file's structure. */
  if (sqlite3_db_config (db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK)
    return db_fail (db, error, "defensive");
  /* The schema is ours; do not let a tampered file run functions from
   * triggers or views. */
  return db_exec (db, "PRAGMA trusted_schema=OFF", error);
}

static sqlite3 *
db_open_with (const char *path, int flags, GError **error)
{
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2 (path, &db, flags | SQLITE_OPEN_FULLMUTEX, NULL);

  if (rc != SQLITE_OK)
    {
      g_set_error (error, DB_ERROR, DB_ERROR_OPEN, "cannot open %s: %s", path,
                   db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
      sqlite3_close_v2 (db);
      return NULL;
    }
  return db;
}

sqlite3 *
db_open (const char *path, GError **error)
{
  sqlite3 *db;

  g_return_val_if_fail (path != NULL, NULL);
  if (!db_create_private (path, error))
    return NULL;
  db = db_open_with (path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error);
  if (db == NULL)
    return NULL;
  /* Order: the busy timeout first, because switching to WAL takes a
   * lock that another connection may briefly hold. */
  if (!db_set_common (db, error)
      || !db_set_wal (db, error)
      || !db_exec (db, "PRAGMA synchronous=FULL", error)
      || !db_exec (db, "PRAGMA foreign_keys=ON", error))
    {
      sqlite3_close_v2 (db);
      return NULL;
    }
  return db;
}

sqlite3 *
db_open_readonly (const char *path, GError **error)
{
  sqlite3 *db;

  g_return_val_if_fail (path != NULL, NULL);
  db = db_open_with (path, SQLITE_OPEN_READONLY, error);
  if (db == NULL)
    return NULL;
  if (!db_set_common (db, error)
      || !db_exec (db, "PRAGMA query_only=ON", error))
    {
      sqlite3_close_v2 (db);
      return NULL;
    }
  return db;
}

/* ---- the checkpointer (db.h) ------------------------------------------ */

struct DbCheckpointer {
  sqlite3 *db;
  char *wal_path;           /* PATH-wal, for its size */
  GThread *thread;
  GMutex lock;
  GCond cond;
  gboolean wanted;
  gboolean stop;
  guint runs;
  gint copied;              /* atomic: WAL frames the last checkpoint had
                             * copied into the database */
  int stuck_at;             /* the checkpoint thread's: copied when the
                             * last one stopped short of the WAL's end */
  gint64 wal_limit;         /* bytes; see db_checkpointer_set_wal_limit */
  gint64 wal_warned;        /* size last warned about; 0 = under the limit */
  guint truncates;          /* TRUNCATE checkpoints that reset the WAL */
  guint restarts;           /* RESTART checkpoints that made a long WAL
                             * start again from its beginning */
};

/*
 * After each commit of a watched connection, with the WAL's length in
 * frames.  What counts is what the WAL gained since the last
 * checkpoint: under a steady stream of commits a PASSIVE checkpoint
 * never catches up with the writer, the WAL is not reset, and a test
 * of its length alone woke the checkpointer after every commit, each
 * time to copy a few frames and fsync the database again (per 8,000
 * invites: 1,150 queue checkpoints, 2,300 fdatasyncs, 159 MB copied
 * into a 78 MB file).  A WAL shorter than what was copied has been
 * reset since: all of it is new.
 */
static int
db_wal_hook (void *data, sqlite3 *db, const char *name, int pages)
{
  DbCheckpointer *c = data;
  int copied = g_atomic_int_get (&c->copied);

  (void) db;
  (void) name;
  if (pages < copied)
    copied = 0;
  if (pages - copied >= DB_CHECKPOINT_PAGES)
    {
      g_mutex_lock (&c->lock);
      c->wanted = TRUE;
      g_cond_signal (&c->cond);
      g_mutex_unlock (&c->lock);
    }
  return SQLITE_OK;
}

static gint64
db_wal_size (const DbCheckpointer *c)
{
  struct stat sb;

  return stat (c->wal_path, &sb) == 0 ? (gint64) sb.st_size : 0;
}

/*
 * The WAL past its limit: a PASSIVE checkpoint cannot reset it while a
 * reader holds an old snapshot (a paused `invitemail audit list` of an
 * old build, a sqlite3 shell left open), and the WAL grows with every
 * commit.  Try a TRUNCATE checkpoint, and say so in the log with the
 * size, again each time it doubles, and once when it is back under
 * the limit.
 *
 * held: a reader holds old frames (db_checkpoint_now).  Only then is a failed TRUNCATE
 * worth a warning, and only then does it not wait (this connection
 * has no busy handler: it must never hold up the writers for long).
 * Otherwise all that stands in the way is a writer in the middle of a
 * commit (under a steady stream of group commits, nearly always: the
 * warning then blamed a reader that did not exist), so the TRUNCATE
 * waits for it, DB_TRUNCATE_WAIT_MS at most, and the writer then waits
 * for the copy of what the PASSIVE had not reached and one fsync.
 */
#define DB_TRUNCATE_WAIT_MS 20

static int
db_busy_truncate (void *data, int count)
{
  (void) data;
  if ((gint64) count * DB_BUSY_POLL_US >= (gint64) DB_TRUNCATE_WAIT_MS * 1000)
    return 0;
  g_usleep (DB_BUSY_POLL_US);
  return 1;
}

static void
db_bound_wal (DbCheckpointer *c, gboolean held)
{
  gint64 size = db_wal_size (c);
  gint64 limit;
  int rc;

  g_mutex_lock (&c->lock);
  limit = c->wal_limit;
  g_mutex_unlock (&c->lock);
  if (size <= limit)
    {
      if (c->wal_warned != 0)
        g_message ("WAL of %s back under its limit of %.1f MiB",
                   sqlite3_db_filename (c->db, NULL), limit / 1048576.0);
      c->wal_warned = 0;
      return;
    }
  if (!held)
    sqlite3_busy_handler (c->db, db_busy_truncate, NULL);
  rc = sqlite3_wal_checkpoint_v2 (c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                  NULL, NULL);
  sqlite3_busy_handler (c->db, NULL, NULL);
  if (rc == SQLITE_OK)
    {
      g_atomic_int_set (&c->copied, 0);
      g_mutex_lock (&c->lock);
      c->truncates++;
      g_mutex_unlock (&c->lock);
      return;
    }
  if (held && size >= 2 * c->wal_warned)
    {
      g_warning ("WAL of %s is %.1f MiB, over its limit of %.1f MiB, and"
                 " cannot be reset: a reader holds an old snapshot (%s)",
                 sqlite3_db_filename (c->db, NULL), size / 1048576.0,
                 limit / 1048576.0, sqlite3_errstr (rc));
      c->wal_warned = size;
    }
}

/*
 * A WAL of DB_RESTART_PAGES frames or more has not been reset since it
 * was that short: a reader that began before the last checkpoint had
 * copied everything was still in it when the next writer began (the
 * delivery workers read the queue all the time while the committer
 * writes).  Left alone it grows to its limit, every commit appends to a
 * longer file, so every fdatasync also writes the file's new size, and
 * the TRUNCATE at the limit starts that over from an empty file.  With
 * a delivering relay that made accepts 15 % slower (commit message).
 * A RESTART checkpoint waits, DB_TRUNCATE_WAIT_MS at most, until every
 * reader has left the WAL; the next writer then writes it again from
 * its beginning, in place, at the length it has.  The writer waits for
 * that too, once per DB_RESTART_PAGES frames.  A reader that stays
 * longer makes it fail at no cost but the wait; the bound below
 * (db_bound_wal) still stands.
 */
static void
db_restart_long_wal (DbCheckpointer *c, int log)
{
  int rc;

  if (log < DB_RESTART_PAGES)
    return;
  sqlite3_busy_handler (c->db, db_busy_truncate, NULL);
  rc = sqlite3_wal_checkpoint_v2 (c->db, NULL, SQLITE_CHECKPOINT_RESTART,
                                  NULL, NULL);
  sqlite3_busy_handler (c->db, NULL, NULL);
  if (rc != SQLITE_OK)
    return;
  g_atomic_int_set (&c->copied, 0);
  c->stuck_at = -1;
  g_mutex_lock (&c->lock);
  c->restarts++;
  g_mutex_unlock (&c->lock);
}

static void
db_checkpoint_now (DbCheckpointer *c)
{
  int log = 0, done = 0;
  int rc = sqlite3_wal_checkpoint_v2 (c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
  gboolean held = FALSE;

  /* A reader holds old frames when two checkpoints in a row stopped at
   * the same frame short of the end.  Once is no sign: a checkpoint
   * also stops short, at once, while a writer's transaction that began
   * on a fully copied WAL still reads the database file alone. */
  if (rc == SQLITE_OK)
    {
      g_atomic_int_set (&c->copied, done);
      held = done < log && done == c->stuck_at;
      c->stuck_at = done < log ? done : -1;
    }
  /* BUSY: another checkpoint is running; the next wake tries again. */
  if (rc != SQLITE_OK && rc != SQLITE_BUSY)
    g_warning ("checkpoint of %s failed: %s", sqlite3_db_filename (c->db, NULL),
               sqlite3_errmsg (c->db));
  /* A reader holding old frames would make the RESTART wait in vain. */
  if (rc == SQLITE_OK && !held)
    db_restart_long_wal (c, log);
  db_bound_wal (c, held);
}

static gpointer
db_checkpointer_thread (gpointer data)
{
  DbCheckpointer *c = data;

  g_mutex_lock (&c->lock);
  for (;;)
    {
      while (!c->wanted && !c->stop)
        g_cond_wait (&c->cond, &c->lock);
      if (c->stop)
        break;
      c->wanted = FALSE;
      g_mutex_unlock (&c->lock);
      db_checkpoint_now (c);
      g_mutex_lock (&c->lock);
      c->runs++;
    }
  g_mutex_unlock (&c->lock);
  db_checkpoint_now (c);
  return NULL;
}

DbCheckpointer *
db_checkpointer_start (const char *path, GError **error)
{
  DbCheckpointer *c;
  sqlite3 *db = db_open (path, error);

  if (db == NULL)
    return NULL;
  /* No busy handler: a checkpoint that would have to wait gives up. */
  sqlite3_busy_handler (db, NULL, NULL);
  c = g_new0 (DbCheckpointer, 1);
  c->db = db;
  c->wal_path = g_strconcat (path, "-wal", NULL);
  c->wal_limit = DB_WAL_LIMIT;
  c->stuck_at = -1;
  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  c->thread = g_thread_new ("checkpoint", db_checkpointer_thread, c);
  return c;
}

void
db_checkpointer_watch (DbCheckpointer *c, sqlite3 *db)
{
  g_return_if_fail (c != NULL && db != NULL);
  /* Replaces SQLite's own hook, which is its automatic checkpoint. */
  sqlite3_wal_hook (db, db_wal_hook, c);
}

void
db_checkpointer_set_wal_limit (DbCheckpointer *c, gint64 bytes)
{
  g_mutex_lock (&c->lock);
  c->wal_limit = bytes;
  g_mutex_unlock (&c->lock);
}

/* The tests' counters: each is written under the lock. */
static guint
db_checkpointer_count (DbCheckpointer *c, const guint *counter)
{
  guint n;

  g_mutex_lock (&c->lock);
  n = *counter;
  g_mutex_unlock (&c->lock);
  return n;
}

guint
db_checkpointer_truncates (DbCheckpointer *c)
{
  return db_checkpointer_count (c, &c->truncates);
}

guint
db_checkpointer_restarts (DbCheckpointer *c)
{
  return db_checkpointer_count (c, &c->restarts);
}

guint
db_checkpointer_runs (DbCheckpointer *c)
{
  return db_checkpointer_count (c, &c->runs);
}

void
db_checkpointer_stop (DbCheckpointer *c)
{
  if (c == NULL)
    return;
  g_mutex_lock (&c->lock);
  c->stop = TRUE;
  g_cond_signal (&c->cond);
  g_mutex_unlock (&c->lock);
  g_thread_join (c->thread);
  sqlite3_close_v2 (c->db);
  g_free (c->wal_path);
  g_mutex_clear (&c->lock);
  g_cond_clear (&c->cond);
  g_free (c);
}
