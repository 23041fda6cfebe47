/*
 * queue.c - the durable queue of invites and per-recipient delivery
 * state, in one SQLite file.  SQL lives only here (and in audit.c).
 *
 * What it does: keeps the schema (versioned by PRAGMA user_version),
 * caches every statement at open, and runs each change in one
 * BEGIN IMMEDIATE transaction (LIBS.md 6: a deferred read-then-write
 * gets SQLITE_BUSY_SNAPSHOT without waiting).  A function that changes
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
#include "queue.h"

#include <string.h>
#include <sys/random.h>

#include "db.h"
#include "validate.h"

#define QUEUE_SCHEMA_VERSION 6

G_DEFINE_QUARK (invitemail-queue-error-quark, queue_error)

static const char *const queue_schema_sql =
  "CREATE TABLE IF NOT EXISTS invites ("
  " id TEXT PRIMARY KEY NOT NULL,"
  " created INTEGER NOT NULL,"
  " expires INTEGER NOT NULL,"
  /* "UID:KEY": a caller's key is its own (queue_scoped_key). */
  " idem_key TEXT UNIQUE,"
  " fingerprint TEXT,"
  " staff TEXT,"
  " booking TEXT,"
  " peer_uid INTEGER NOT NULL,"
  " envelope_from TEXT NOT NULL,"
  " message BLOB NOT NULL,"
  " message_sha256 TEXT NOT NULL,"
  " unit TEXT,"
  /* The Message-ID's random local part: never derived from the id. */
  " message_id TEXT);"
  "CREATE TABLE IF NOT EXISTS recipients ("
  " invite_id TEXT NOT NULL REFERENCES invites(id),"
  " idx INTEGER NOT NULL,"
  " address TEXT NOT NULL,"
  " state TEXT NOT NULL CHECK (state IN ('queued','sending','deferred',"
  "   'sent','failed','expired')),"
  " attempts INTEGER NOT NULL DEFAULT 0,"
  " next_try INTEGER NOT NULL DEFAULT 0,"
  " updated INTEGER NOT NULL,"
  " reply TEXT,"
  " PRIMARY KEY (invite_id, idx));"
  /* Version 1 indexed every row by (state, next_try): three index
   * updates per recipient for lookups that the two partial indexes
   * below serve (due work; what was in flight at a crash). */
  "DROP INDEX IF EXISTS recipients_due;"
  "CREATE INDEX IF NOT EXISTS recipients_sending ON recipients (invite_id, idx)"
  " WHERE state = 'sending';"
  /* Due work in next_try order straight from an index: no sort of the
   * whole backlog at every claim.  Queued recipients carry
   * next_try = created, so they come oldest first too. */
  "CREATE INDEX IF NOT EXISTS recipients_pending ON recipients (next_try)"
  " WHERE state IN ('queued', 'deferred');";

/* Every statement, prepared once at open (SQLITE_PREPARE_PERSISTENT). */
enum {
  ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_ROLLBACK_TO, ST_RELEASE,
  ST_FIND_KEY, ST_INSERT_INVITE, ST_INSERT_RCPT,
  ST_SELECT_DUE, ST_MARK_SENDING, ST_MESSAGE, ST_RECORD,
  ST_SELECT_SENDING, ST_RECOVER, ST_NEXT_DUE, ST_STATUS, ST_UNDELIVERED,
  ST_TOKEN_FIND, ST_TOKEN_RECORD, ST_HEALTH_PENDING, ST_HEALTH_HOUR,
  N_ST
};

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

struct Queue {
  sqlite3 *db;
  sqlite3_stmt *st[N_ST];
  gboolean fail_commit;     /* test hook, see queue_set_fail_commit */
  gboolean writing;         /* holds queue_writer */
  gboolean checkpointed;    /* watched by queue_ckpt */
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

/* A cached statement borrowed for one use.  The cleanup resets it
 * (never finalizes): a stepped statement left unreset would keep its
 * read snapshot open and stall WAL checkpoints. */
typedef sqlite3_stmt QueueStmt;
static void
queue_stmt_release (QueueStmt *st)
{
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QueueStmt, queue_stmt_release)

static QueueStmt *
queue_stmt (Queue *q, int which)
{
  return q->st[which];
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

static gboolean
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

static gboolean
queue_fail (Queue *q, GError **error, const char *what)
{
  g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_IO, "queue %s: %s (%d)", what,
               sqlite3_errmsg (q->db), sqlite3_extended_errcode (q->db));
  return FALSE;
}

static gboolean
queue_corrupt (GError **error, const char *what)
{
  g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_CORRUPT,
               "queue row failed its checks: %s", what);
  return FALSE;
}

/* ---- checks shared by writing and reading back ----------------------- */

static gboolean
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

/* QUEUE_TOKEN_LEN characters of [0-9a-v], 5 random bits each (130
 * bits from the kernel's CSPRNG): guessing one is hopeless, and it says
 * nothing about the invite id or the address. */
static gboolean
queue_new_token (char out[QUEUE_TOKEN_LEN + 1])
{
  static const char alphabet[] = "0123456789abcdefghijklmnopqrstuv";
  unsigned char raw[QUEUE_TOKEN_LEN];

  if (getrandom (raw, sizeof raw, 0) != (ssize_t) sizeof raw)
    return FALSE;
  for (guint i = 0; i < QUEUE_TOKEN_LEN; i++)
    out[i] = alphabet[raw[i] & 31];
  out[QUEUE_TOKEN_LEN] = '\0';
  explicit_bzero (raw, sizeof raw);
  return TRUE;
}

/* The address goes verbatim into MAIL FROM / RCPT TO (LIBS.md 1): only
 * printable ASCII without space, '<' or '>' can never inject a command.
 * It is local@domain as validate.c made it.  The reverse path may be
 * empty (the null sender <>). */
static gboolean
queue_address_ok (const char *a, gboolean may_be_empty)
{
  const char *at;
  gsize n;

  if (a == NULL)
    return FALSE;
  n = strlen (a);
  if (n == 0)
    return may_be_empty;
  at = strrchr (a, '@');
  if (n > ADDRESS_MAX || at == NULL || at == a || at[1] == '\0')
    return FALSE;
  for (const char *p = a; *p != '\0'; p++)
    if (*p <= ' ' || *p >= 0x7f || *p == '<' || *p == '>')
      return FALSE;
  return TRUE;
}

static gboolean
queue_sha256_ok (const void *data, gsize len, const char *hex)
{
  g_autofree char *sum = NULL;

  if (hex == NULL)
    return FALSE;
  sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
  return g_ascii_strcasecmp (sum, hex) == 0;
}

/* The text of a column, or NULL when it is not text (NULL, blob, ...). */
static const char *
queue_col_text (sqlite3_stmt *st, int col)
{
  if (sqlite3_column_type (st, col) != SQLITE_TEXT)
    return NULL;
  return (const char *) sqlite3_column_text (st, col);
}

static gboolean
queue_col_int (sqlite3_stmt *st, int col, gint64 min, gint64 *out)
{
  if (sqlite3_column_type (st, col) != SQLITE_INTEGER)
    return FALSE;
  *out = sqlite3_column_int64 (st, col);
  return *out >= min;
}

/* ---- transactions ---------------------------------------------------- */

static gboolean
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

static gboolean
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
static void
queue_rollback (Queue *q)
{
  if (!sqlite3_get_autocommit (q->db))
    queue_run (q, ST_ROLLBACK, NULL);
  queue_end_write (q);
}

static gboolean
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
queue_user_version (sqlite3 *db, gint64 *version, GError **error)
{
  sqlite3_stmt *st = NULL;
  gboolean ok;

  if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &st, NULL)
      != SQLITE_OK)
    return db_fail (db, error, "user_version");
  ok = sqlite3_step (st) == SQLITE_ROW;
  if (ok)
    *version = sqlite3_column_int64 (st, 0);
  else
    db_fail (db, error, "user_version");
  sqlite3_finalize (st);
  return ok;
}

/* Whether table has column (both are our own literals). */
static gboolean
queue_has_column (sqlite3 *db, const char *table, const char *column)
{
  sqlite3_stmt *st = NULL;
  gboolean found = FALSE;

  if (sqlite3_prepare_v2 (db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
                          -1, &st, NULL) != SQLITE_OK)
    return FALSE;
  sqlite3_bind_text (st, 1, table, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, column, -1, SQLITE_STATIC);
  found = sqlite3_step (st) == SQLITE_ROW;
  sqlite3_finalize (st);
  return found;
}

/*
 * 6: each recipient's return token (its envelope sender is
 * LOCAL+TOKEN@DOMAIN, so a bounce names the recipient) and the DSN that
 * came back for it.  New files get the columns here as well.  Recipients
 * stored before have no token: they keep the plain envelope sender.
 */
static gboolean
queue_upgrade_returns (sqlite3 *db, GError **error)
{
  static const char *const columns[][2] = {
    { "return_token", "return_token TEXT" },
    { "dsn_action", "dsn_action TEXT CHECK (dsn_action IN ('failed', 'delayed'))" },
    { "dsn_status", "dsn_status TEXT" },
    { "dsn_diag", "dsn_diag TEXT" },
    { "dsn_time", "dsn_time INTEGER" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (columns); i++)
    if (!queue_has_column (db, "recipients", columns[i][0]))
      {
        g_autofree char *sql = g_strdup_printf ("ALTER TABLE recipients ADD COLUMN %s",
                                                columns[i][1]);
        if (!db_exec (db, sql, error))
          return FALSE;
      }
  return db_exec (db, "CREATE UNIQUE INDEX IF NOT EXISTS recipients_token"
                  " ON recipients (return_token) WHERE return_token IS NOT NULL",
                  error);
}

/*
 * Upgrade steps for files made by an older version, inside the schema
 * transaction.  CREATE TABLE IF NOT EXISTS leaves an old table as it
 * was, so a column added since is added here (a new file already has
 * it).  Each step says which version brought it.
 */
static gboolean
queue_upgrade (sqlite3 *db, gint64 version, GError **error)
{
  /* 3: the hosting unit given with the request (`unit`). */
  if (!queue_has_column (db, "invites", "unit")
      && !db_exec (db, "ALTER TABLE invites ADD COLUMN unit TEXT", error))
    return FALSE;
  /* 4: idempotency keys belong to the uid that sent them.  Keys stored
   * before were global; they become their sender's. */
  if (version < 4
      && !db_exec (db, "UPDATE invites SET idem_key = peer_uid || ':' || idem_key"
                   " WHERE idem_key IS NOT NULL", error))
    return FALSE;
  /* 5: the Message-ID, random and kept with the invite. */
  if (!queue_has_column (db, "invites", "message_id")
      && !db_exec (db, "ALTER TABLE invites ADD COLUMN message_id TEXT", error))
    return FALSE;
  return queue_upgrade_returns (db, error);
}

/* Creates or checks the schema in one transaction, so two connections
 * opening a new file at once cannot both half-create it. */
static gboolean
queue_schema (sqlite3 *db, GError **error)
{
  gint64 version = 0;
  g_autofree char *set_version = NULL;

  if (!db_exec (db, "BEGIN IMMEDIATE", error))
    return FALSE;
  if (!queue_user_version (db, &version, error))
    goto fail;
  if (version > QUEUE_SCHEMA_VERSION)
    {
      g_set_error (error, DB_ERROR, DB_ERROR_SCHEMA,
                   "queue schema version %" G_GINT64_FORMAT
                   " is newer than this program's %d", version,
                   QUEUE_SCHEMA_VERSION);
      goto fail;
    }
  set_version = g_strdup_printf ("PRAGMA user_version=%d",
                                 QUEUE_SCHEMA_VERSION);
  if (db_exec (db, queue_schema_sql, error)
      && queue_upgrade (db, version, error)
      && db_exec (db, set_version, error)
      && db_exec (db, "COMMIT", error))
    return TRUE;
fail:
  if (!sqlite3_get_autocommit (db))
    db_exec (db, "ROLLBACK", NULL);
  return FALSE;
}

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

/* ---- insert ---------------------------------------------------------- */

static gboolean
queue_insert_ok (const QueueInsert *ins, GError **error)
{
  gsize len = 0;
  const void *data = g_bytes_get_data (ins->message, &len);

  if (!queue_id_ok (ins->id))
    return queue_corrupt (error, "refusing to store a malformed invite id");
  if (!queue_address_ok (ins->envelope_from, TRUE))
    return queue_corrupt (error, "refusing to store a bad envelope sender");
  if (!queue_sha256_ok (data, len, ins->message_sha256))
    return queue_corrupt (error, "message_sha256 does not match the message");
  for (guint i = 0; i < ins->n_recipients; i++)
    if (!queue_address_ok (ins->recipients[i], FALSE))
      return queue_corrupt (error, "refusing to store a bad recipient");
  return TRUE;
}

/*
 * The key as stored: "UID:KEY".  Keys are scoped per uid, so another
 * local user can neither take a caller's key first (its real request
 * would then fail with conflict) nor learn the caller's invite id by
 * replaying the key.  The uid has no ':', so the first one splits.
 * (transfer full; NULL when there is no key)
 */
static char *
queue_scoped_key (const QueueInsert *ins)
{
  if (ins->idempotency_key == NULL)
    return NULL;
  return g_strdup_printf ("%" G_GINT64_FORMAT ":%s", ins->peer_uid,
                          ins->idempotency_key);
}

/* Inside the transaction: 1 = key seen (answered), 0 = new, -1 = error. */
static int
queue_check_key (Queue *q, const QueueInsert *ins, char **existing_id,
                 GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_FIND_KEY);
  g_autofree char *key = queue_scoped_key (ins);
  const char *id;
  int rc;

  sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
  rc = sqlite3_step (st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    {
      queue_fail (q, error, "idempotency lookup");
      return -1;
    }
  id = queue_col_text (st, 0);
  if (!queue_id_ok (id))
    {
      queue_corrupt (error, "stored invite id");
      return -1;
    }
  if (g_strcmp0 (queue_col_text (st, 1), ins->fingerprint) != 0)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_CONFLICT,
                   "idempotency key already used for another request");
      return -1;
    }
  if (existing_id != NULL)
    *existing_id = g_strdup (id);
  return 1;
}

static gboolean
queue_insert_invite (Queue *q, const QueueInsert *ins, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_INSERT_INVITE);
  g_autofree char *key = queue_scoped_key (ins);
  gsize len = 0;
  const void *data = g_bytes_get_data (ins->message, &len);

  sqlite3_bind_text (st, 1, ins->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, ins->created);
  sqlite3_bind_int64 (st, 3, ins->expires);
  sqlite3_bind_text (st, 4, key, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 5, ins->fingerprint, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 6, ins->staff, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 7, ins->booking, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 8, ins->peer_uid);
  sqlite3_bind_text (st, 9, ins->envelope_from, -1, SQLITE_STATIC);
  /* A NULL pointer would bind SQL NULL; "" with length 0 is an empty blob. */
  sqlite3_bind_blob64 (st, 10, data != NULL ? data : "", len, SQLITE_STATIC);
  sqlite3_bind_text (st, 11, ins->message_sha256, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 12, ins->unit, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 13, ins->message_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_DONE)
    return queue_fail (q, error, "insert invite");
  return TRUE;
}

static gboolean
queue_insert_recipients (Queue *q, const QueueInsert *ins, GError **error)
{
  for (guint i = 0; i < ins->n_recipients; i++)
    {
      g_autoptr (QueueStmt) st = queue_stmt (q, ST_INSERT_RCPT);

      sqlite3_bind_text (st, 1, ins->id, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (st, 2, i);
      char token[QUEUE_TOKEN_LEN + 1];

      if (!queue_new_token (token))
        return queue_fail (q, error, "no randomness for a return token");
      sqlite3_bind_text (st, 3, ins->recipients[i], -1, SQLITE_STATIC);
      /* next_try = created: queued recipients go oldest first. */
      sqlite3_bind_int64 (st, 4, ins->created);
      sqlite3_bind_text (st, 5, token, -1, SQLITE_TRANSIENT);
      if (sqlite3_step (st) != SQLITE_DONE)
        return queue_fail (q, error, "insert recipient");
    }
  return TRUE;
}

gboolean
queue_insert (Queue *q, const QueueInsert *ins, char **existing_id,
              GError **error)
{
  int seen = 0;

  g_return_val_if_fail (q != NULL && ins != NULL, FALSE);
  g_return_val_if_fail (ins->message != NULL, FALSE);
  g_return_val_if_fail (ins->n_recipients == 0 || ins->recipients != NULL,
                        FALSE);
  if (existing_id != NULL)
    *existing_id = NULL;
  if (ins->n_recipients == 0)
    return queue_corrupt (error, "refusing to store an invite without "
                          "recipients");
  if (!queue_insert_ok (ins, error) || !queue_begin (q, error))
    return FALSE;
  /* The key check and the insert share one IMMEDIATE transaction, so
   * two requests with one key cannot both be stored. */
  if (ins->idempotency_key != NULL)
    seen = queue_check_key (q, ins, existing_id, error);
  if (seen == 0 && queue_insert_invite (q, ins, error)
      && queue_insert_recipients (q, ins, error))
    return queue_commit (q, error);
  queue_rollback (q);
  return seen == 1;
}

/* One invite inside the batch's transaction, under a savepoint so that
 * its failure (a key conflict, a bad row) undoes only itself. */
static void
queue_insert_one (Queue *q, QueueBatchItem *it)
{
  int seen = 0;

  if (it->ins->n_recipients == 0)
    {
      queue_corrupt (&it->error, "refusing to store an invite without recipients");
      return;
    }
  if (!queue_insert_ok (it->ins, &it->error)
      || !queue_run (q, ST_SAVEPOINT, &it->error))
    return;
  if (it->ins->idempotency_key != NULL)
    seen = queue_check_key (q, it->ins, &it->existing_id, &it->error);
  if (seen == 0 && queue_insert_invite (q, it->ins, &it->error)
      && queue_insert_recipients (q, it->ins, &it->error))
    {
      queue_run (q, ST_RELEASE, NULL);
      return;
    }
  queue_run (q, ST_ROLLBACK_TO, NULL);
  queue_run (q, ST_RELEASE, NULL);
}

gboolean
queue_insert_batch (Queue *q, QueueBatchItem *items, guint n, GError **error)
{
  return queue_insert_batch_then (q, items, n, NULL, NULL, error);
}

gboolean
queue_insert_batch_then (Queue *q, QueueBatchItem *items, guint n,
                         QueueBeforeCommit before, gpointer data,
                         GError **error)
{
  g_return_val_if_fail (q != NULL && (n == 0 || items != NULL), FALSE);

  for (guint i = 0; i < n; i++)
    {
      items[i].existing_id = NULL;
      items[i].error = NULL;
    }
  if (!queue_begin (q, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    queue_insert_one (q, &items[i]);
  if (before != NULL && !before (data, error))
    queue_rollback (q);
  else if (queue_commit (q, error))
    return TRUE;
  /* Nothing of the batch is stored: no item may claim otherwise. */
  for (guint i = 0; i < n; i++)
    g_clear_pointer (&items[i].existing_id, g_free);
  return FALSE;
}

/* ---- delivery -------------------------------------------------------- */

void
queue_job_free (QueueJob *j)
{
  if (j == NULL)
    return;
  g_free (j->invite_id);
  g_free (j->address);
  g_free (j->envelope_from);
  g_free (j->return_token);
  g_free (j);
}

/* One JOB_COLUMNS row, checked. (transfer full) */
static QueueJob *
queue_job_from_row (sqlite3_stmt *st, GError **error)
{
  const char *id = queue_col_text (st, 0);
  const char *addr = queue_col_text (st, 2);
  const char *from = queue_col_text (st, 3);
  const char *token = queue_col_text (st, 7);
  gint64 idx, attempts, created, expires;
  QueueJob *j;

  if (!queue_id_ok (id) || !queue_address_ok (addr, FALSE)
      || !queue_address_ok (from, TRUE)
      || (sqlite3_column_type (st, 7) != SQLITE_NULL && !queue_token_ok (token))
      || !queue_col_int (st, 1, 0, &idx) || idx > G_MAXUINT
      || !queue_col_int (st, 4, 0, &attempts) || attempts > G_MAXUINT
      || !queue_col_int (st, 5, G_MININT64, &created)
      || !queue_col_int (st, 6, G_MININT64, &expires))
    {
      queue_corrupt (error, "recipient to deliver");
      return NULL;
    }
  j = g_new0 (QueueJob, 1);
  j->invite_id = g_strdup (id);
  j->idx = (guint) idx;
  j->address = g_strdup (addr);
  j->envelope_from = g_strdup (from);
  j->return_token = g_strdup (token);
  j->attempts = (guint) attempts;
  j->created = created;
  j->expires = expires;
  return j;
}

/* Steps a JOB_COLUMNS statement to the end. (transfer full) */
static GPtrArray *
queue_collect_jobs (Queue *q, QueueStmt *st, GError **error)
{
  g_autoptr (GPtrArray) jobs =
    g_ptr_array_new_with_free_func ((GDestroyNotify) queue_job_free);
  int rc;

  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      QueueJob *j = queue_job_from_row (st, error);
      if (j == NULL)
        return NULL;
      g_ptr_array_add (jobs, j);
    }
  if (rc != SQLITE_DONE)
    {
      queue_fail (q, error, "select recipients");
      return NULL;
    }
  return g_steal_pointer (&jobs);
}

static GPtrArray *
queue_select_due (Queue *q, gint64 now, guint max, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_SELECT_DUE);

  sqlite3_bind_int64 (st, 1, now);
  sqlite3_bind_int64 (st, 2, max);
  return queue_collect_jobs (q, st, error);
}

static gboolean
queue_mark_sending (Queue *q, const QueueJob *j, gint64 now, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_MARK_SENDING);

  sqlite3_bind_text (st, 1, j->invite_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, j->idx);
  sqlite3_bind_int64 (st, 3, now);
  if (sqlite3_step (st) != SQLITE_DONE)
    return queue_fail (q, error, "mark sending");
  return TRUE;
}

GPtrArray *
queue_claim_due (Queue *q, gint64 now, guint max, GError **error)
{
  g_autoptr (GPtrArray) jobs = NULL;

  g_return_val_if_fail (q != NULL, NULL);
  if (!queue_begin (q, error))
    return NULL;
  /* Select all first, then update: changing rows under a running
   * SELECT on the same table is undefined in SQLite. */
  jobs = queue_select_due (q, now, max, error);
  for (guint i = 0; jobs != NULL && i < jobs->len; i++)
    if (!queue_mark_sending (q, g_ptr_array_index (jobs, i), now, error))
      g_clear_pointer (&jobs, g_ptr_array_unref);
  if (jobs == NULL || !queue_commit (q, error))
    {
      queue_rollback (q);
      return NULL;
    }
  return g_steal_pointer (&jobs);
}

GBytes *
queue_message (Queue *q, const char *invite_id, GError **error)
{
  g_autoptr (QueueStmt) st = NULL;
  const void *data;
  gsize len;
  int rc;

  g_return_val_if_fail (q != NULL && invite_id != NULL, NULL);
  st = queue_stmt (q, ST_MESSAGE);
  sqlite3_bind_text (st, 1, invite_id, -1, SQLITE_STATIC);
  rc = sqlite3_step (st);
  if (rc == SQLITE_DONE)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND,
                   "no such invite");
      return NULL;
    }
  if (rc != SQLITE_ROW)
    {
      queue_fail (q, error, "read message");
      return NULL;
    }
  data = sqlite3_column_blob (st, 0);
  len = (gsize) sqlite3_column_bytes (st, 0);
  /* The bytes are what goes on the wire: check them against the hash
   * that was audited when the invite was accepted. */
  if (sqlite3_column_type (st, 0) != SQLITE_BLOB
      || !queue_sha256_ok (data, len, queue_col_text (st, 1)))
    {
      queue_corrupt (error, "message bytes");
      return NULL;
    }
  return g_bytes_new (data, len);
}

static gboolean
queue_record_one (Queue *q, const QueueResult *r, gint64 now, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_RECORD);

  sqlite3_bind_text (st, 1, queue_state_name (r->state), -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, r->state == RCPT_DEFERRED ? r->next_try : 0);
  sqlite3_bind_int64 (st, 3, now);
  sqlite3_bind_text (st, 4, r->reply, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 5, r->invite_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 6, r->idx);
  if (sqlite3_step (st) != SQLITE_DONE)
    return queue_fail (q, error, "record outcome");
  if (sqlite3_changes (q->db) == 0)
    {
      g_set_error (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND,
                   "no such recipient");
      return FALSE;
    }
  return TRUE;
}

static gboolean
queue_result_ok (const QueueResult *r)
{
  return r->invite_id != NULL
    && (r->state == RCPT_SENT || r->state == RCPT_DEFERRED
        || r->state == RCPT_FAILED || r->state == RCPT_EXPIRED);
}

gboolean
queue_record (Queue *q, const QueueResult *res, guint n, gint64 now,
              GError **error)
{
  g_return_val_if_fail (q != NULL && (n == 0 || res != NULL), FALSE);
  for (guint i = 0; i < n; i++)
    g_return_val_if_fail (queue_result_ok (&res[i]), FALSE);
  if (!queue_begin (q, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (!queue_record_one (q, &res[i], now, error))
      {
        queue_rollback (q);
        return FALSE;
      }
  return queue_commit (q, error);
}

static GPtrArray *
queue_select_sending (Queue *q, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_SELECT_SENDING);

  return queue_collect_jobs (q, st, error);
}

static gboolean
queue_requeue_sending (Queue *q, gint64 now, GError **error)
{
  g_autoptr (QueueStmt) st = queue_stmt (q, ST_RECOVER);

  sqlite3_bind_int64 (st, 1, now);
  if (sqlite3_step (st) != SQLITE_DONE)
    return queue_fail (q, error, "recover");
  return TRUE;
}

GPtrArray *
queue_recover (Queue *q, gint64 now, GError **error)
{
  return queue_recover_then (q, now, NULL, NULL, error);
}

GPtrArray *
queue_recover_then (Queue *q, gint64 now, QueueRecoverCheck before,
                    gpointer data, GError **error)
{
  g_autoptr (GPtrArray) jobs = NULL;

  g_return_val_if_fail (q != NULL, NULL);
  if (!queue_begin (q, error))
    return NULL;
  jobs = queue_select_sending (q, error);
  if (jobs != NULL && !queue_requeue_sending (q, now, error))
    g_clear_pointer (&jobs, g_ptr_array_unref);
  if (jobs != NULL && jobs->len > 0 && before != NULL
      && !before (jobs, data, error))
    g_clear_pointer (&jobs, g_ptr_array_unref);
  if (jobs == NULL || !queue_commit (q, error))
    {
      queue_rollback (q);
      return NULL;
    }
  return g_steal_pointer (&jobs);
}

gint64
queue_next_due (Queue *q, GError **error)
{
  g_autoptr (QueueStmt) st = NULL;

  g_return_val_if_fail (q != NULL, -1);
  st = queue_stmt (q, ST_NEXT_DUE);
  if (sqlite3_step (st) != SQLITE_ROW)
    {
      queue_fail (q, error, "next due");
      return -1;
    }
  if (sqlite3_column_type (st, 0) == SQLITE_NULL)
    return -1;
  return sqlite3_column_int64 (st, 0);
}

gint64
queue_count_undelivered (Queue *q, GError **error)
{
  g_autoptr (QueueStmt) st = NULL;

  g_return_val_if_fail (q != NULL, -1);
  st = queue_stmt (q, ST_UNDELIVERED);
  if (sqlite3_step (st) != SQLITE_ROW)
    {
      queue_fail (q, error, "count undelivered");
      return -1;
    }
  return sqlite3_column_int64 (st, 0);
}

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

/* A DSN's status code as stored: class.subject.detail (RFC 3463). */
gboolean
queue_dsn_status_ok (const char *status)
{
  return status != NULL && strlen (status) <= 9
    && g_regex_match_simple ("^[245]\\.[0-9]{1,3}\\.[0-9]{1,3}$", status, 0, 0);
}

/* Printable ASCII, at most QUEUE_DSN_DIAG_MAX - 1 bytes. */
static gboolean
queue_safe_text_ok (const char *t)
{
  if (t == NULL || strlen (t) >= QUEUE_DSN_DIAG_MAX)
    return FALSE;
  for (const char *p = t; *p != '\0'; p++)
    if (*p < ' ' || *p > '~')
      return FALSE;
  return TRUE;
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

  if (!queue_address_ok (addr, FALSE)
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

/* ---- subject access (read-only) -------------------------------------- */

static gboolean
queue_domain_row (sqlite3_stmt *st, QueueRecipientFunc fn, gpointer data)
{
  QueueRecipientRow row = {
    queue_col_text (st, 0), queue_col_text (st, 1), queue_col_text (st, 2),
    0, 0, queue_col_text (st, 5), queue_col_text (st, 6)
  };
  RcptState state;

  if (!queue_id_ok (row.invite_id) || !queue_address_ok (row.address, FALSE)
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
  if (!queue_id_ok (id) || !queue_address_ok (addr, FALSE)
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

/* ---- erasure of one address -------------------------------------------- */

/* The local part as written, the domain without case. */
static gboolean
queue_same_address (const char *stored, const char *asked)
{
  const char *a = strrchr (stored, '@'), *b = strrchr (asked, '@');

  if (a == NULL || b == NULL)
    return strcmp (stored, asked) == 0;
  return a - stored == b - asked && strncmp (stored, asked, a - stored) == 0
         && g_ascii_strcasecmp (a, b) == 0;
}

/* The matching rows: "ID.IDX" tags into tags; *busy counts those still
 * in delivery. */
static gboolean
queue_erase_select (Queue *q, const char *address, GPtrArray *tags,
                    guint *busy, GError **error)
{
  sqlite3_stmt *st = NULL;
  int rc;

  if (sqlite3_prepare_v2 (q->db, "SELECT invite_id, idx, address, state FROM"
                          " recipients WHERE lower (address) = lower (?1)",
                          -1, &st, NULL) != SQLITE_OK)
    return queue_fail (q, error, "prepare erase");
  sqlite3_bind_text (st, 1, address, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *id = queue_col_text (st, 0), *state = queue_col_text (st, 3);

      if (!queue_id_ok (id) || !queue_same_address (queue_col_text (st, 2),
                                                    address))
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
/* ---- cancel ---------------------------------------------------------- */

/*
 * Stops what has not gone out and lists what has, in one transaction:
 * recipients still queued or deferred become failed with the reply
 * QUEUE_CANCELLED_REPLY (a final state: the worker never claims them);
 * those sent or in flight (sending: the relay may have it) are returned
 * for a cancellation of their own.  Prepared here rather than at open:
 * a cancel is rare.
 */
gboolean
queue_cancel (Queue *q, const char *id, gint64 now, GPtrArray **reached,
              guint *stopped, GError **error)
{
  static const char stop_sql[] =
    "UPDATE recipients SET state = 'failed', reply = '" QUEUE_CANCELLED_REPLY "',"
    " next_try = 0, updated = ?2"
    " WHERE invite_id = ?1 AND state IN ('queued', 'deferred')";
  static const char reached_sql[] =
    "SELECT address FROM recipients WHERE invite_id = ?1"
    " AND state IN ('sent', 'sending') ORDER BY idx";
  sqlite3_stmt *stop = NULL, *sel = NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  gboolean ok = FALSE;
  int rc = SQLITE_OK;

  g_return_val_if_fail (q != NULL && reached != NULL && stopped != NULL, FALSE);
  if (!queue_id_ok (id))
    return queue_corrupt (error, "invite id");
  if (!queue_begin (q, error))
    return FALSE;
  if (sqlite3_prepare_v2 (q->db, stop_sql, -1, &stop, NULL) != SQLITE_OK
      || sqlite3_prepare_v2 (q->db, reached_sql, -1, &sel, NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_text (stop, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stop, 2, now);
  if (sqlite3_step (stop) != SQLITE_DONE)
    goto out;
  *stopped = (guint) sqlite3_changes (q->db);
  sqlite3_bind_text (sel, 1, id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (sel)) == SQLITE_ROW)
    {
      const char *a = queue_col_text (sel, 0);
      if (!queue_address_ok (a, FALSE))
        {
          sqlite3_finalize (stop);
          sqlite3_finalize (sel);
          queue_rollback (q);
          return queue_corrupt (error, "recipient address");
        }
      g_ptr_array_add (out, g_strdup (a));
    }
  ok = rc == SQLITE_DONE;
out:
  if (!ok)
    queue_fail (q, error, "cancel");
  sqlite3_finalize (stop);
  sqlite3_finalize (sel);
  if (!ok)
    {
      queue_rollback (q);
      return FALSE;
    }
  if (!queue_commit (q, error))
    return FALSE;
  *reached = g_steal_pointer (&out);
  return TRUE;
}

/*
 * Undoes queue_cancel's stop when the cancel could not be stored with
 * its audit row: the recipients it made failed with
 * QUEUE_CANCELLED_REPLY are due again at once (deferred, so the
 * worker's next claim takes them).
 */
gboolean
queue_cancel_undo (Queue *q, const char *id, gint64 now, GError **error)
{
  static const char sql[] =
    "UPDATE recipients SET state = 'deferred', reply = NULL, next_try = ?2,"
    " updated = ?2 WHERE invite_id = ?1 AND state = 'failed'"
    " AND reply = '" QUEUE_CANCELLED_REPLY "'";
  sqlite3_stmt *st = NULL;
  gboolean ok;

  g_return_val_if_fail (q != NULL, FALSE);
  if (!queue_id_ok (id))
    return queue_corrupt (error, "invite id");
  if (!queue_begin (q, error))
    return FALSE;
  ok = sqlite3_prepare_v2 (q->db, sql, -1, &st, NULL) == SQLITE_OK;
  if (ok)
    {
      sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (st, 2, now);
      ok = sqlite3_step (st) == SQLITE_DONE;
    }
  if (!ok)
    queue_fail (q, error, "undo cancel");
  sqlite3_finalize (st);
  if (!ok)
    {
      queue_rollback (q);
      return FALSE;
    }
  return queue_commit (q, error);
}
