/*
 * queue.c - the durable queue of invites and per-recipient delivery
 * state, in one SQLite file.  SQL lives only in the queue's files
 * (queue_private.h lists them and their concerns) and in the audit's.
 *
 * What it does: opens the file (schema: queue_schema.c), caches every
 * statement at open, and runs each change in one
 * BEGIN IMMEDIATE transaction (a deferred read-then-write gets
 * SQLITE_BUSY_SNAPSHOT without waiting: doc/ARCHITECTURE.md, SQLite
 * traps).  A function that changes
 * state returns TRUE only after COMMIT came back, on a connection with
 * WAL + synchronous=FULL (db.c): that is what makes `status=queued`
 * survive a crash or power loss.
 *
 * What it trusts: nothing it reads back.  Like OpenSMTPD's
 * envelope_validate, every row is checked again (id shape, known state,
 * an address that cannot inject SMTP commands, message hash); a bad row
 * is QUEUE_ERROR_CORRUPT, never a crash.  The same checks refuse to
 * store bad values in the first place.
 *
 * What it does not do: decide retries (retry policy), log, or audit;
 * the caller does those with the results returned here.
 *
 * Threads: a Queue is one connection used by one thread.
 */
#include "queue_private.h"

#include <string.h>

#include "db.h"
#include "validate.h"

G_DEFINE_QUARK (invitemail-queue-error-quark, queue_error)

#define JOB_COLUMNS_FROM(hint) \
  "SELECT r.invite_id, r.idx, r.address, i.envelope_from, r.attempts," \
  " i.created, i.expires, r.return_token FROM recipients r " hint \
  " JOIN invites i ON i.id = r.invite_id "
#define JOB_COLUMNS JOB_COLUMNS_FROM ("")

static const char *const queue_sql[N_ST] = {
  [ST_BEGIN] = "BEGIN IMMEDIATE",
  [ST_COMMIT] = "COMMIT",
  [ST_ROLLBACK] = "ROLLBACK",
  [ST_SAVEPOINT] = "SAVEPOINT one_invite",
  [ST_ROLLBACK_TO] = "ROLLBACK TO one_invite",
  [ST_RELEASE] = "RELEASE one_invite",
  [ST_FIND_KEY] = "SELECT id, fingerprint FROM invites WHERE idem_key = ?1",
  [ST_INSERT_INVITE] =
    "INSERT INTO invites (id, created, expires, idem_key, fingerprint, staff,"
    " booking, peer_uid, envelope_from, message, message_sha256, unit,"
    " message_id)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
  [ST_INSERT_RCPT] =
    "INSERT INTO recipients (invite_id, idx, address, state, attempts,"
    " next_try, updated, return_token)"
    " VALUES (?1, ?2, ?3, 'queued', 0, ?4, ?4, ?5)",
  [ST_SELECT_DUE] =
    JOB_COLUMNS_FROM ("INDEXED BY recipients_pending")
    "WHERE r.state IN ('queued', 'deferred') AND r.next_try <= ?1"
    " ORDER BY r.next_try LIMIT ?2",
  [ST_MARK_SENDING] =
    "UPDATE recipients SET state = 'sending', updated = ?3"
    " WHERE invite_id = ?1 AND idx = ?2",
  [ST_MESSAGE] = "SELECT message, message_sha256 FROM invites WHERE id = ?1",
  [ST_RECORD] =
    "UPDATE recipients SET state = ?1, attempts = attempts + 1,"
    " next_try = ?2, updated = ?3, reply = ?4"
    " WHERE invite_id = ?5 AND idx = ?6",
  [ST_SELECT_SENDING] =
    JOB_COLUMNS_FROM ("INDEXED BY recipients_sending")
    "WHERE r.state = 'sending' ORDER BY r.invite_id, r.idx",
  [ST_RECOVER] =
    "UPDATE recipients SET state = 'deferred', next_try = ?1, updated = ?1"
    " WHERE state = 'sending'",
  [ST_NEXT_DUE] =
    "SELECT MIN(next_try) FROM recipients"
    " WHERE state IN ('queued', 'deferred')",
  /* Two counts, so that each reads one of the partial indexes: one
   * IN over all three states scans the whole table (the finished
   * recipients of the retention period). */
  [ST_UNDELIVERED] =
    "SELECT (SELECT COUNT(*) FROM recipients"
    "        WHERE state IN ('queued', 'deferred'))"
    " + (SELECT COUNT(*) FROM recipients WHERE state = 'sending')",
  [ST_STATUS] =
    "SELECT i.created, i.expires, i.booking, r.address, r.state, r.attempts,"
    " r.next_try, r.updated, r.reply, i.peer_uid, r.dsn_action, r.dsn_status,"
    " r.dsn_diag FROM invites i"
    " LEFT JOIN recipients r ON r.invite_id = i.id"
    " WHERE i.id = ?1 ORDER BY r.idx",
  [ST_TOKEN_FIND] =
    "SELECT invite_id, idx, address, state, dsn_action FROM recipients"
    " WHERE return_token = ?1",
  [ST_TOKEN_RECORD] =
    "UPDATE recipients SET dsn_action = ?1, dsn_status = ?2, dsn_diag = ?3,"
    " dsn_time = ?4 WHERE invite_id = ?5 AND idx = ?6",
  /* The two partial indexes serve the counts; the oldest deferred
   * recipient's invite through recipients_pending too. */
  [ST_HEALTH_PENDING] =
    "SELECT (SELECT COUNT(*) FROM recipients"
    "   WHERE state IN ('queued', 'deferred'))"
    " + (SELECT COUNT(*) FROM recipients WHERE state = 'sending'),"
    " (SELECT MIN(i.created) FROM recipients r JOIN invites i ON i.id = r.invite_id"
    "   WHERE r.state IN ('queued', 'deferred') AND r.state = 'deferred')",
  /* One pass over the recipients (no index on updated: it would cost
   * every outcome an index update for a monitoring read). */
  [ST_HEALTH_HOUR] =
    "SELECT COALESCE (SUM (state = 'sent' AND updated >= ?1), 0),"
    " COALESCE (SUM (state IN ('failed', 'expired') AND updated >= ?1), 0),"
    " COALESCE (SUM (dsn_action = 'failed' AND dsn_time >= ?1), 0),"
    " MAX (CASE WHEN state = 'sent' THEN updated END) FROM recipients",
};

/*
 * Writers in this process (the committer and the delivery workers,
 * each on its own connection) take turns on this mutex before BEGIN
 * IMMEDIATE.  SQLite's lock only lets a loser poll (db.c's busy handler
 * sleeps 250 us a try), so a group commit arriving during a worker's
 * claim waited up to a poll interval past the lock's release; a mutex
 * hands over at once.  The busy handler still covers other processes.
 * One for all queues: a process has one queue, and a thread never
 * holds two write transactions.
 */
static GMutex queue_writer;

/*
 * The queue's checkpointer (db.h), shared by every connection to it in
 * the process and stopped with the last.  Without it, whichever writer
 * pushed the WAL past its limit checkpointed inside its COMMIT, holding
 * queue_writer all the while.  A connection to another file than the
 * first (only in tests) keeps SQLite's own checkpoints.
 */
static GMutex queue_ckpt_lock;
static DbCheckpointer *queue_ckpt;
static char *queue_ckpt_path;
static guint queue_ckpt_users;

static void
queue_ckpt_join (Queue *q, const char *path)
{
  g_autoptr (GError) error = NULL;

  g_mutex_lock (&queue_ckpt_lock);
  if (queue_ckpt == NULL)
    {
      queue_ckpt = db_checkpointer_start (path, &error);
      if (queue_ckpt != NULL)
        queue_ckpt_path = g_strdup (path);
      else
        g_warning ("queue checkpoints stay in the commits: %s", error->message);
    }
  if (queue_ckpt != NULL && strcmp (queue_ckpt_path, path) == 0)
    {
      db_checkpointer_watch (queue_ckpt, q->db);
      queue_ckpt_users++;
      q->checkpointed = TRUE;
    }
  g_mutex_unlock (&queue_ckpt_lock);
}

/* After q->db is closed. */
static void
queue_ckpt_leave (Queue *q)
{
  if (!q->checkpointed)
    return;
  g_mutex_lock (&queue_ckpt_lock);
  if (--queue_ckpt_users == 0)
    {
      db_checkpointer_stop (queue_ckpt);
      queue_ckpt = NULL;
      g_clear_pointer (&queue_ckpt_path, g_free);
    }
  g_mutex_unlock (&queue_ckpt_lock);
}

static const char *const queue_state_names[] = {
  [RCPT_QUEUED] = "queued", [RCPT_SENDING] = "sending",
  [RCPT_DEFERRED] = "deferred", [RCPT_SENT] = "sent",
  [RCPT_FAILED] = "failed", [RCPT_EXPIRED] = "expired",
  [RCPT_BOUNCED] = "bounced", [RCPT_DELAYED] = "delayed",
};

const char *
queue_state_name (RcptState s)
{
  if ((guint) s >= G_N_ELEMENTS (queue_state_names))
    return "unknown";
  return queue_state_names[s];
}

gboolean
queue_state_parse (const char *name, RcptState *out)
{
  for (guint i = 0; name != NULL && i < G_N_ELEMENTS (queue_state_names); i++)
    if (strcmp (name, queue_state_names[i]) == 0)
      {
        *out = (RcptState) i;
        return TRUE;
      }
  return FALSE;
}

/* ---- errors ---------------------------------------------------------- */

gboolean
queue_fail (Queue *q, GError **error, const char *what)
{
  g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_IO, "queue %s: %s (%d)", what,
               sqlite3_errmsg (q->db), sqlite3_extended_errcode (q->db));
  return FALSE;
}

gboolean
queue_corrupt (GError **error, const char *what)
{
  g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_CORRUPT,
               "queue row failed its checks: %s", what);
  return FALSE;
}

/* ---- checks shared by writing and reading back ----------------------- */

gboolean
queue_id_ok (const char *id)
{
  if (id == NULL || strlen (id) != INVITE_ID_LEN)
    return FALSE;
  for (const char *p = id; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'z'))
      return FALSE;
  return TRUE;
}

gboolean
queue_token_ok (const char *token)
{
  if (token == NULL || strlen (token) != QUEUE_TOKEN_LEN)
    return FALSE;
  for (const char *p = token; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'v'))
      return FALSE;
  return TRUE;
}
/* The text of a column, or NULL when it is not text (NULL, blob, ...). */
const char *
queue_col_text (sqlite3_stmt *st, int col)
{
  if (sqlite3_column_type (st, col) != SQLITE_TEXT)
    return NULL;
  return (const char *) sqlite3_column_text (st, col);
}

gboolean
queue_col_int (sqlite3_stmt *st, int col, gint64 min, gint64 *out)
{
  if (sqlite3_column_type (st, col) != SQLITE_INTEGER)
    return FALSE;
  *out = sqlite3_column_int64 (st, col);
  return *out >= min;
}

/* A DSN's status code as stored: class.subject.detail (RFC 3463). */
gboolean
queue_dsn_status_ok (const char *status)
{
  return status != NULL && strlen (status) <= 9
    && g_regex_match_simple ("^[245]\\.[0-9]{1,3}\\.[0-9]{1,3}$", status, 0, 0);
}

/* Printable ASCII, at most QUEUE_DSN_DIAG_MAX - 1 bytes. */
gboolean
queue_safe_text_ok (const char *t)
{
  if (t == NULL || strlen (t) >= QUEUE_DSN_DIAG_MAX)
    return FALSE;
  for (const char *p = t; *p != '\0'; p++)
    if (*p < ' ' || *p > '~')
      return FALSE;
  return TRUE;
}

/* ---- transactions ---------------------------------------------------- */

gboolean
queue_run (Queue *q, int which, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, which);

  if (sqlite3_step (st) != SQLITE_DONE)
    return queue_fail (q, error, queue_sql[which]);
  return TRUE;
}

static void
queue_end_write (Queue *q)
{
  if (q->writing)
    {
      q->writing = FALSE;
      g_mutex_unlock (&queue_writer);
    }
}

gboolean
queue_begin (Queue *q, GError **error)
{
  g_return_val_if_fail (!q->writing, FALSE);
  g_mutex_lock (&queue_writer);
  q->writing = TRUE;
  if (queue_run (q, ST_BEGIN, error))
    return TRUE;
  queue_end_write (q);
  return FALSE;
}

/* Undoes an open transaction; harmless when none is open (e.g. SQLite
 * already rolled back after an I/O error). */
void
queue_rollback (Queue *q)
{
  if (!sqlite3_get_autocommit (q->db))
    queue_run (q, ST_ROLLBACK, NULL);
  queue_end_write (q);
}

gboolean
queue_commit (Queue *q, GError **error)
{
  if (q->fail_commit)
    {
      queue_rollback (q);
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_IO,
                   "queue COMMIT: failed by the test hook");
      return FALSE;
    }
  if (!queue_run (q, ST_COMMIT, error))
    {
      queue_rollback (q);
      return FALSE;
    }
  queue_end_write (q);
  return TRUE;
}

void
queue_set_fail_commit (Queue *q, gboolean fail)
{
  g_return_if_fail (q != NULL);
  q->fail_commit = fail;
}

/* ---- open / close ---------------------------------------------------- */

static gboolean
queue_prepare_all (Queue *q, GError **error)
{
  for (int i = 0; i < N_ST; i++)
    if (sqlite3_prepare_v3 (q->db, queue_sql[i], -1,
                            SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL)
        != SQLITE_OK)
      return db_fail (q->db, error, "prepare");
  return TRUE;
}

/*
 * Opens (creating) the queue file.  Every failure (file, schema version,
 * statements) is QUEUE_ERROR_IO with db.c's words: callers see one
 * error domain per module.
 */
Queue *
queue_open (const char *path, GError **error)
{
  g_autoptr (Queue) q = NULL;
  g_autoptr (GError) local = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  q = g_new0 (Queue, 1);
  q->db = db_open (path, &local);
  if (q->db == NULL || !queue_schema (q->db, &local)
      || !queue_prepare_all (q, &local))
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_IO, "queue: %s",
                   local->message);
      return NULL;
    }
  queue_ckpt_join (q, path);
  return g_steal_pointer (&q);
}

void
queue_close (Queue *q)
{
  if (q == NULL)
    return;
  for (int i = 0; i < N_ST; i++)
    sqlite3_finalize (q->st[i]);
  sqlite3_close_v2 (q->db);
  queue_ckpt_leave (q);
  g_free (q);
}
