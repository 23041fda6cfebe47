/*
 * queue_schema.c - the queue file's schema, versioned by PRAGMA
 * user_version, and the steps that upgrade a file made by an older
 * version.  Runs once per connection, at queue_open.
 *
 * What it trusts: nothing in the file's version beyond "newer than
 * this program" (refused) or "older" (upgraded in one transaction).
 */
#include "queue_private.h"

#include "db.h"

#define QUEUE_SCHEMA_VERSION 6

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
gboolean
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
