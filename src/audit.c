/*
 * audit.c - the bottom layer of the audit: the insert-only log and its
 * hash chain in its own SQLite file: schema, canonical encoding,
 * opening, appending (one row or a group-commit batch).  It calls no
 * layer above: seal rows are signed through the callback the seal layer
 * hands in (audit_store.h).  Read-only opening is in audit_ro.c.  SQL
 * lives only in the audit files (and queue.c).
 *
 * What it does: appends rows in BEGIN IMMEDIATE transactions on a WAL +
 * synchronous=FULL connection (db.c), chained by SHA-256.  Triggers make
 * UPDATE and DELETE abort, except a DELETE inside audit_purge's own
 * transaction (a row in audit_purge_token, inserted and removed in that
 * same transaction, opens the gate; it is never committed).  A careless
 * admin cannot change history through SQL; someone who drops the
 * triggers and edits the file is caught by verify instead.
 *
 * Canonical encoding (audit.h): for each value in this order
 *   seq, time_ms, event, invite_id, peer_uid, staff, booking, recipients,
 *   smtp_reply, error_code, field, detail, lang, template_name,
 *   link_sha256, notice_sha256, template_sha256, signature_sha256,
 *   message_sha256, org_unit, epoch, seal, next_key, prev_seal, prev_hash
 * a 4-byte big-endian length and the bytes; NULL (and peer_uid -1) is
 * length 0xFFFFFFFF with no bytes; integers are decimal ASCII.  row_hash
 * is the lower-case hex SHA-256 of that.  The first prev is 64 zeros (or,
 * after retention, the hash of the last purged seal, kept in
 * audit_kept_seal).
 *
 * Time never goes back in the chain: a row gets max (clock, time of the
 * row before); a step back of more than a second adds one `clock_back`
 * row saying by how much, so the step is on record and no row can be
 * back-dated by setting the clock back.
 *
 * Readers without write access (compliance): the writer keeps -wal and
 * -shm in place when it closes (SQLITE_FCNTL_PERSIST_WAL, WAL truncated
 * by journal_size_limit), because a reader that cannot create them in
 * a folder it cannot write gets SQLITE_READONLY_DIRECTORY (audit_ro.c).
 *
 * One writer: audit_open holds flock(LOCK_EX) on PATH.lock for its life
 * (a separate file: POSIX locks on the database would be dropped by
 * SQLite's own close() calls), so `audit init` cannot race the daemon.
 *
 * What it trusts: the strings in an AuditRecord (the daemon guarantees
 * there is no personal data in detail); they are stored as given.  It
 * trusts nothing read back: verify recomputes every hash.
 */
#include "audit_store.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "db.h"

G_DEFINE_QUARK (invitemail-audit-error-quark, audit_error)

/* What journal_size_limit leaves of the WAL after a reset: more than a
 * checkpoint's worth (DB_CHECKPOINT_PAGES of 4 KiB), so the WAL is
 * rewritten in place rather than truncated and grown again, which made
 * every commit's fdatasync also write the file's size.  (The accept
 * rates at 1 and 8 MiB are in commit 2aa34ea.) */
#define AUDIT_WAL_LIMIT (8 * 1024 * 1024)

static const char *const audit_schema_sql =
  "CREATE TABLE IF NOT EXISTS audit ("
  " seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, event TEXT NOT NULL,"
  " invite_id TEXT, peer_uid INTEGER, staff TEXT, booking TEXT,"
  " recipients TEXT, smtp_reply TEXT, error_code TEXT, field TEXT,"
  " detail TEXT, lang TEXT, template_name TEXT, link_sha256 TEXT,"
  " notice_sha256 TEXT, template_sha256 TEXT, signature_sha256 TEXT,"
  " message_sha256 TEXT, org_unit TEXT, epoch INTEGER, seal TEXT,"
  " next_key TEXT, prev_seal TEXT,"
  " prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL);"
  "CREATE INDEX IF NOT EXISTS audit_by_invite ON audit (invite_id);"
  "CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time_ms);"
  "CREATE TABLE IF NOT EXISTS audit_purge_token (id INTEGER PRIMARY KEY);"
  "CREATE TABLE IF NOT EXISTS audit_address ("
  " hash TEXT PRIMARY KEY, address TEXT, last_seq INTEGER NOT NULL,"
  " erased_ms INTEGER);"
  "CREATE TABLE IF NOT EXISTS audit_address_key ("
  " id INTEGER PRIMARY KEY CHECK (id = 1), key TEXT NOT NULL);"
  "CREATE TABLE IF NOT EXISTS audit_kept_seal ("
  " seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
  " epoch INTEGER NOT NULL, detail TEXT, seal TEXT NOT NULL,"
  " next_key TEXT NOT NULL, prev_seal TEXT NOT NULL,"
  " prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL,"
  " purged_at_ms INTEGER NOT NULL);"
  "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
  " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only'); END;"
  "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
  " WHEN NOT EXISTS (SELECT 1 FROM audit_purge_token)"
  " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only'); END;"
  "CREATE TRIGGER IF NOT EXISTS audit_kept_seal_no_update BEFORE UPDATE"
  " ON audit_kept_seal"
  " BEGIN SELECT RAISE (ABORT, 'kept seals are append-only'); END;"
  "CREATE TRIGGER IF NOT EXISTS audit_kept_seal_no_delete BEFORE DELETE"
  " ON audit_kept_seal"
  " BEGIN SELECT RAISE (ABORT, 'kept seals are append-only'); END;";

static const char *const audit_insert_sql =
  "INSERT INTO audit (" AUDIT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
  " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,"
  " ?22, ?23, ?24, ?25, ?26)";

/* Where each text value lives in an AuditRecord / AuditRow; -1 for the
 * integers and the ones handled apart. */
#define REC(f) G_STRUCT_OFFSET (AuditRecord, f)
#define ROW(f) G_STRUCT_OFFSET (AuditRow, f)
static const struct {
  glong rec, row;
} audit_text[N_CANON + 1] = {
  [C_SEQ] = { -1, -1 }, [C_TIME] = { -1, -1 },
  [C_EVENT] = { -1, ROW (event) },
  [C_INVITE] = { REC (invite_id), ROW (invite_id) },
  [C_UID] = { -1, -1 },
  [C_STAFF] = { REC (staff), ROW (staff) },
  [C_BOOKING] = { REC (booking), ROW (booking) },
  [C_RCPTS] = { REC (recipients), ROW (recipient_keys) },
  [C_REPLY] = { REC (smtp_reply), ROW (smtp_reply) },
  [C_ERROR_CODE] = { REC (error_code), ROW (error_code) },
  [C_FIELD] = { REC (field), ROW (field) },
  [C_DETAIL] = { REC (detail), ROW (detail) },
  [C_LANG] = { REC (lang), ROW (lang) },
  [C_TEMPLATE] = { REC (template_name), ROW (template_name) },
  [C_LINK] = { REC (link_sha256), ROW (link_sha256) },
  [C_NOTICE] = { REC (notice_sha256), ROW (notice_sha256) },
  [C_TEMPLATE_SHA] = { REC (template_sha256), ROW (template_sha256) },
  [C_SIGNATURE] = { REC (signature_sha256), ROW (signature_sha256) },
  [C_MESSAGE] = { REC (message_sha256), ROW (message_sha256) },
  [C_ORG_UNIT] = { REC (org_unit), ROW (org_unit) },
  [C_EPOCH] = { -1, -1 },
  [C_SEAL] = { -1, ROW (seal) },
  [C_NEXT_KEY] = { -1, ROW (next_key) },
  [C_PREV_SEAL] = { -1, ROW (prev_seal) },
  [C_PREV] = { -1, ROW (prev_hash) },
  [C_ROW_HASH] = { -1, ROW (row_hash) },
};

static const char *const audit_event_names[AUDIT_N_EVENTS] = {
  [AUDIT_DAEMON_START] = "daemon_start",
  [AUDIT_DAEMON_STOP] = "daemon_stop",
  [AUDIT_CONFIG_LOADED] = "config_loaded",
  [AUDIT_CONFIG_RELOADED] = "config_reloaded",
  [AUDIT_CONFIG_REFUSED] = "config_refused",
  [AUDIT_ACCEPTED] = "accepted",
  [AUDIT_DUPLICATE_REQUEST] = "duplicate_request",
  [AUDIT_REJECTED] = "rejected",
  [AUDIT_SENT] = "sent",
  [AUDIT_DEFERRED] = "deferred",
  [AUDIT_FAILED] = "failed",
  [AUDIT_EXPIRED] = "expired",
  [AUDIT_RECOVERED] = "recovered",
  [AUDIT_RESUMED] = "audit_resumed",
  [AUDIT_RETENTION] = "retention",
  [AUDIT_STATUS_SHOWN] = "status_shown",
  [AUDIT_BOUNCED] = "bounced",
  [AUDIT_DSN_DELAYED] = "delayed",
  [AUDIT_SEALED] = "sealed",
  [AUDIT_PURGED] = "purged",
  [AUDIT_CLOCK_BACK] = "clock_back",
  [AUDIT_ERASED] = "erased",
  [AUDIT_CANCELLED] = "cancelled",
};

const char *
audit_event_name (AuditEvent e)
{
  if ((guint) e >= AUDIT_N_EVENTS)
    return "unknown";
  return audit_event_names[e];
}

int
audit_event_from_name (const char *name)
{
  for (int i = 0; name != NULL && i < AUDIT_N_EVENTS; i++)
    if (strcmp (name, audit_event_names[i]) == 0)
      return i;
  return -1;
}

gboolean
audit_fail (sqlite3 *db, GError **error, const char *what)
{
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit %s: %s (%d)", what,
               sqlite3_errmsg (db), sqlite3_extended_errcode (db));
  return FALSE;
}

/* Re-labels a DbError as AUDIT_ERROR_IO: callers see one domain. */
gboolean
audit_from_db (GError *db_error, GError **error)
{
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit: %s",
               db_error->message);
  g_error_free (db_error);
  return FALSE;
}

gboolean
audit_exec (sqlite3 *db, const char *sql, GError **error)
{
  GError *local = NULL;

  return db_exec (db, sql, &local) || audit_from_db (local, error);
}

gboolean
audit_broken (GError **error, const char *fmt, ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, AUDIT_ERROR, AUDIT_ERROR_BROKEN, msg);
  return FALSE;
}

/* ---- hashing --------------------------------------------------------- */

static void
audit_canon_set (AuditCanon *c, int i, const char *s)
{
  c->v[i] = s;
  c->len[i] = s != NULL ? strlen (s) : 0;
}

/* Streams the fields into SHA-256 without building the encoding. */
gboolean
audit_canon_hash (const AuditCanon *c, char out[SHA256_HEX_SIZE])
{
  guint8 md[32];
  unsigned int n = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  gboolean ok = ctx != NULL && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL);

  for (int i = 0; ok && i < N_CANON; i++)
    {
      guint32 len = c->v[i] != NULL ? (guint32) c->len[i] : 0xFFFFFFFFu;
      guint8 be[4] = { len >> 24, (len >> 16) & 0xff, (len >> 8) & 0xff,
                       len & 0xff };

      ok = EVP_DigestUpdate (ctx, be, 4)
           && (c->v[i] == NULL || EVP_DigestUpdate (ctx, c->v[i], c->len[i]));
    }
  ok = ok && EVP_DigestFinal_ex (ctx, md, &n) && n == 32;
  EVP_MD_CTX_free (ctx);
  out[0] = '\0';
  if (ok)
    hex_encode (md, 32, out);
  return ok;
}

static void
audit_canon_from_record (AuditCanon *c, const AuditRecord *rec, gint64 seq,
                         gint64 time_ms, const char *prev)
{
  for (int i = 0; i < N_CANON; i++)
    audit_canon_set (c, i, NULL);
  g_snprintf (c->seq, sizeof c->seq, "%" G_GINT64_FORMAT, seq);
  g_snprintf (c->time, sizeof c->time, "%" G_GINT64_FORMAT, time_ms);
  g_snprintf (c->uid, sizeof c->uid, "%" G_GINT64_FORMAT, rec->peer_uid);
  audit_canon_set (c, C_SEQ, c->seq);
  audit_canon_set (c, C_TIME, c->time);
  audit_canon_set (c, C_EVENT, audit_event_name (rec->event));
  audit_canon_set (c, C_UID, rec->peer_uid >= 0 ? c->uid : NULL);
  audit_canon_set (c, C_PREV, prev);
  for (int i = 0; i < N_CANON; i++)
    if (audit_text[i].rec >= 0)
      audit_canon_set (c, i, G_STRUCT_MEMBER (const char *, rec,
                                              audit_text[i].rec));
}

/* From a statement selecting AUDIT_COLUMNS.  Integers come back as the
 * same decimal text we hashed; the pointers live until the next step. */
void
audit_canon_from_stmt (AuditCanon *c, sqlite3_stmt *st)
{
  for (int i = 0; i < N_CANON; i++)
    {
      c->v[i] = NULL;
      c->len[i] = 0;
      if (sqlite3_column_type (st, i) == SQLITE_NULL)
        continue;
      c->v[i] = (const char *) sqlite3_column_text (st, i);
      c->len[i] = (gsize) sqlite3_column_bytes (st, i);
    }
}

gboolean
audit_is_hex (const char *s, gsize len)
{
  if (s == NULL || strlen (s) != len)
    return FALSE;
  for (const char *p = s; *p != '\0'; p++)
    if (!g_ascii_isxdigit (*p) || g_ascii_isupper (*p))
      return FALSE;
  return TRUE;
}

gboolean
audit_unhex (const char *s, guint8 *out, gsize n)
{
  for (gsize i = 0; i < n; i++)
    {
      int hi = g_ascii_xdigit_value (s[2 * i]);
      int lo = hi >= 0 ? g_ascii_xdigit_value (s[2 * i + 1]) : -1;

      if (lo < 0)
        return FALSE;
      out[i] = (guint8) (hi << 4 | lo);
    }
  return s[2 * n] == '\0';
}

gboolean
audit_check_row (sqlite3_stmt *st, gint64 expect, char prev[SHA256_HEX_SIZE],
                 GError **error)
{
  gint64 seq = sqlite3_column_int64 (st, C_SEQ);
  const char *stored;
  AuditCanon c;
  char hash[SHA256_HEX_SIZE];

  if (seq > expect + 1)
    return audit_broken (error, "rows %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT
                         " missing (deleted)", expect, seq - 1);
  if (seq == expect + 1)
    return audit_broken (error, "row %" G_GINT64_FORMAT " missing (deleted)",
                         expect);
  if (seq != expect)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": out of sequence",
                         seq);
  if (g_strcmp0 ((const char *) sqlite3_column_text (st, C_PREV), prev) != 0)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": previous-hash link"
                         " broken (inserted or deleted)", seq);
  audit_canon_from_stmt (&c, st);
  audit_canon_hash (&c, hash);
  stored = (const char *) sqlite3_column_text (st, C_ROW_HASH);
  if (hash[0] == '\0' || g_strcmp0 (stored, hash) != 0)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": hash mismatch"
                         " (changed)", seq);
  if (audit_event_from_name ((const char *) sqlite3_column_text (st, C_EVENT))
      < 0)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": unknown event",
                         seq);
  memcpy (prev, hash, SHA256_HEX_SIZE);
  return TRUE;
}

/* ---- opening for append ---------------------------------------------- */

static gint64
audit_user_version (sqlite3 *db)
{
  sqlite3_stmt *st = NULL;
  gint64 version = -1;

  if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &st, NULL)
      == SQLITE_OK && sqlite3_step (st) == SQLITE_ROW)
    version = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  return version;
}

gboolean
audit_check_version (sqlite3 *db, GError **error)
{
  gint64 version = audit_user_version (db);

  if (version == AUDIT_SCHEMA_VERSION)
    return TRUE;
  if (version >= 1 && version <= 3)
    g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_FORMAT,
                 "audit file of schema version %" G_GINT64_FORMAT " (%s):"
                 " this build reads and writes version %d only, whose seals"
                 " are Ed25519 signatures anyone can check and whose"
                 " addresses can be erased; keep the old file with the old"
                 " build, and start a new one with `invitemail audit init`",
                 version, version == 1 ? "no seals" : version == 2
                 ? "HMAC seals" : "addresses in the chain",
                 AUDIT_SCHEMA_VERSION);
  else
    g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_FORMAT,
                 "not an invitemail audit file of a version this build knows"
                 " (schema version %" G_GINT64_FORMAT ", this build: %d)",
                 version, AUDIT_SCHEMA_VERSION);
  return FALSE;
}

/* Older versions hashed other fields: their rows cannot verify under
 * this encoding, so such a file is refused, never mixed. */
static gboolean
audit_schema (sqlite3 *db, GError **error)
{
  g_autofree char *sql = g_strdup_printf (
    "%s PRAGMA user_version=%d;", audit_schema_sql, AUDIT_SCHEMA_VERSION);

  if (!audit_exec (db, "BEGIN IMMEDIATE", error))
    return FALSE;
  if ((audit_user_version (db) == 0 || audit_check_version (db, error))
      && audit_exec (db, sql, error) && audit_address_key_ensure (db, error)
      && audit_exec (db, "COMMIT", error))
    return TRUE;
  if (!sqlite3_get_autocommit (db))
    audit_exec (db, "ROLLBACK", NULL);
  return FALSE;
}

gboolean
audit_checkpoint_head (sqlite3 *db, gint64 *seq, char hash[SHA256_HEX_SIZE])
{
  sqlite3_stmt *st = NULL;
  int rc;

  *seq = 0;
  memcpy (hash, AUDIT_ZERO_HASH, SHA256_HEX_SIZE);
  if (sqlite3_prepare_v2 (db, "SELECT seq, row_hash FROM audit_kept_seal"
                          " ORDER BY seq DESC LIMIT 1", -1, &st, NULL)
      != SQLITE_OK)
    return FALSE;
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      const char *h = (const char *) sqlite3_column_text (st, 1);
      *seq = sqlite3_column_int64 (st, 0);
      g_strlcpy (hash, h != NULL ? h : "", SHA256_HEX_SIZE);
    }
  sqlite3_finalize (st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

/* The newest seal, in the chain or else among the kept ones: what the
 * next seal continues from. */
static gboolean
audit_load_last_seal (Audit *a, GError **error)
{
  sqlite3_stmt *st = NULL;
  int rc;

  a->last_seal_seq = 0;
  a->last_seal_epoch = -1;
  memcpy (a->last_seal_hash, AUDIT_ZERO_HASH, SHA256_HEX_SIZE);
  a->last_seal_next[0] = '\0';
  if (sqlite3_prepare_v2 (a->db, "SELECT seq, epoch, row_hash, next_key FROM"
                          " (SELECT seq, epoch, row_hash, next_key FROM audit"
                          " WHERE event = 'sealed' UNION ALL SELECT seq,"
                          " epoch, row_hash, next_key FROM audit_kept_seal)"
                          " ORDER BY seq DESC LIMIT 1", -1, &st, NULL)
      != SQLITE_OK)
    return audit_fail (a->db, error, "read last seal");
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      const char *h = (const char *) sqlite3_column_text (st, 2);
      const char *k = (const char *) sqlite3_column_text (st, 3);

      a->last_seal_seq = sqlite3_column_int64 (st, 0);
      a->last_seal_epoch = sqlite3_column_int64 (st, 1);
      g_strlcpy (a->last_seal_hash, h != NULL ? h : "", SHA256_HEX_SIZE);
      g_strlcpy (a->last_seal_next, k != NULL ? k : "", SHA256_HEX_SIZE);
    }
  sqlite3_finalize (st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE
         || audit_fail (a->db, error, "read last seal");
}

/* When every row was purged, the chain continues from the checkpoint. */
static gboolean
audit_load_checkpoint_head (Audit *a, GError **error)
{
  if (!audit_checkpoint_head (a->db, &a->last_seq, a->last_hash))
    return audit_fail (a->db, error, "read checkpoint");
  return TRUE;
}

/*
 * Continues the chain from the newest row.  A tail whose hash does not
 * recompute does not stop the daemon (audit_head_intact tells, verify
 * names the row): the new rows chain to the stored hash, so the damage
 * stays visible instead of being papered over.
 */
static gboolean
audit_load_head (Audit *a, GError **error)
{
  sqlite3_stmt *st = NULL;
  char hash[SHA256_HEX_SIZE];
  int rc;

  a->last_seq = 0;
  memcpy (a->last_hash, AUDIT_ZERO_HASH, SHA256_HEX_SIZE);
  a->head_intact = TRUE;
  a->last_time_ms = 0;
  if (!audit_load_last_seal (a, error))
    return FALSE;
  if (sqlite3_prepare_v2 (a->db, "SELECT " AUDIT_COLUMNS
                          " FROM audit ORDER BY seq DESC LIMIT 1", -1, &st,
                          NULL) != SQLITE_OK)
    return audit_fail (a->db, error, "read head");
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      AuditCanon c;
      const char *stored = (const char *) sqlite3_column_text (st, C_ROW_HASH);

      a->last_seq = sqlite3_column_int64 (st, C_SEQ);
      a->last_time_ms = sqlite3_column_int64 (st, C_TIME);
      audit_canon_from_stmt (&c, st);
      audit_canon_hash (&c, hash);
      a->head_intact = g_strcmp0 (stored, hash) == 0;
      memcpy (a->last_hash, audit_is_hex64 (stored) ? stored : hash, SHA256_HEX_SIZE);
    }
  sqlite3_finalize (st);
  if (rc == SQLITE_DONE)
    return audit_load_checkpoint_head (a, error);
  if (rc != SQLITE_ROW)
    return audit_fail (a->db, error, "read head");
  return TRUE;
}

/* One writer per file; see the header comment. */
static gboolean
audit_take_lock (Audit *a, GError **error)
{
  g_autofree char *lp = audit_lock_path (a->path);
  int saved;

  a->lock_fd = open (lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  /* 0600 even when an older version left it group-readable: anyone who
   * can open it can hold a lock on it and keep the daemon from starting. */
  if (a->lock_fd >= 0 && fchmod (a->lock_fd, 0600) == 0
      && flock (a->lock_fd, LOCK_EX | LOCK_NB) == 0)
    return TRUE;
  saved = errno;
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit %s: %s", lp,
               saved == EWOULDBLOCK
                 ? "in use by another writer (is invitemaild running?)"
                 : g_strerror (saved));
  return FALSE;
}

/* Keeps -wal and -shm after close, for readers that cannot create them
 * (header comment); journal_size_limit keeps the kept WAL small. */
static gboolean
audit_persist_wal (sqlite3 *db, GError **error)
{
  int on = 1;
  g_autofree char *sql = g_strdup_printf ("PRAGMA journal_size_limit=%d",
                                          AUDIT_WAL_LIMIT);

  if (sqlite3_file_control (db, "main", SQLITE_FCNTL_PERSIST_WAL, &on)
      != SQLITE_OK)
    return audit_fail (db, error, "persist wal");
  return audit_exec (db, sql, error);
}

static Audit *
audit_open_common (const char *path, GError **error)
{
  g_autoptr (Audit) a = g_new0 (Audit, 1);
  GError *local = NULL;

  g_mutex_init (&a->lock);
  a->lock_fd = -1;
  a->addr_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         g_free);
  a->path = g_strdup (path);
  if (!audit_take_lock (a, error))
    return NULL;
  a->db = db_open (path, &local);
  if (a->db == NULL)
    {
      audit_from_db (local, error);
      return NULL;
    }
  /* REPLACE deletes rows without firing delete triggers unless
   * recursive_triggers is on; we never use REPLACE, but be safe. */
  /* secure_delete: an erased address's bytes are overwritten, not left
   * in free pages (audit_erase.c). */
  if (!audit_exec (a->db, "PRAGMA recursive_triggers=ON", error)
      || !audit_exec (a->db, "PRAGMA secure_delete=ON", error)
      || !audit_persist_wal (a->db, error)
      || !audit_schema (a->db, error) || !audit_load_head (a, error)
      || !audit_address_key_load (a->db, a->addr_key, error))
    return NULL;
  if (sqlite3_prepare_v3 (a->db, audit_insert_sql, -1,
                          SQLITE_PREPARE_PERSISTENT, &a->insert, NULL)
      != SQLITE_OK)
    {
      audit_fail (a->db, error, "prepare");
      return NULL;
    }
  a->ckpt = db_checkpointer_start (path, &local);
  if (a->ckpt == NULL)
    {
      audit_from_db (local, error);
      return NULL;
    }
  db_checkpointer_watch (a->ckpt, a->db);
  return g_steal_pointer (&a);
}

Audit *
audit_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  return audit_open_common (path, error);
}

void
audit_close (Audit *a)
{
  if (a == NULL)
    return;
  sqlite3_finalize (a->insert);
  sqlite3_finalize (a->remember);
  explicit_bzero (a->addr_key, sizeof a->addr_key);
  if (a->addr_cache != NULL)
    g_hash_table_unref (a->addr_cache);
  /* The checkpointer goes first (with a last checkpoint), so that the
   * writer, which keeps the WAL for readers, is the last to close. */
  if (a->db != NULL)
    sqlite3_wal_hook (a->db, NULL, NULL);
  db_checkpointer_stop (a->ckpt);
  sqlite3_close_v2 (a->db);
  if (a->sealer != NULL && a->sealer_free != NULL)
    a->sealer_free (a->sealer);
  if (a->lock_fd >= 0)
    close (a->lock_fd);
  g_free (a->path);
  g_mutex_clear (&a->lock);
  g_free (a);
}

gboolean
audit_head_intact (Audit *a)
{
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_val_if_fail (a != NULL, FALSE);
  locker = g_mutex_locker_new (&a->lock);
  return a->head_intact;
}

void
audit_set_clock (Audit *a, AuditClock clock, gpointer data)
{
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_if_fail (a != NULL);
  locker = g_mutex_locker_new (&a->lock);
  a->clock = clock;
  a->clock_data = data;
}

/* ---- append ---------------------------------------------------------- */

static gboolean
audit_insert (Audit *a, const AuditCanon *c, gint64 seq, gint64 time_ms,
              gint64 uid, gint64 epoch, const char *hash, GError **error)
{
  sqlite3_stmt *st = a->insert;
  int rc;

  for (int i = 0; i < N_CANON; i++)
    sqlite3_bind_text (st, i + 1, c->v[i], (int) c->len[i], SQLITE_STATIC);
  sqlite3_bind_int64 (st, C_SEQ + 1, seq);
  sqlite3_bind_int64 (st, C_TIME + 1, time_ms);
  if (uid >= 0)
    sqlite3_bind_int64 (st, C_UID + 1, uid);
  if (epoch >= 0)
    sqlite3_bind_int64 (st, C_EPOCH + 1, epoch);
  sqlite3_bind_text (st, C_ROW_HASH + 1, hash, -1, SQLITE_STATIC);
  rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    audit_fail (a->db, error, "insert");
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
  return rc == SQLITE_DONE;
}

/* One row of a batch: hash it onto prev, insert it, move prev on.  A
 * seal row gets its epoch, next key, the seal before it and the
 * signature over all of that from the seal layer's callback. */
static gboolean
audit_add_row (Audit *a, const AuditRecord *rec, const AuditSealSpec *seal,
               GHashTable *pending, gint64 seq, gint64 now, char prev[SHA256_HEX_SIZE],
               GError **error)
{
  g_autofree char *keys = rec->recipients != NULL
    ? audit_address_keys (a->addr_key, a->addr_cache, rec->recipients)
    : NULL;
  char sig[AUDIT_SIG_HEX + 1];
  AuditCanon c;
  char hash[SHA256_HEX_SIZE];

  audit_canon_from_record (&c, rec, seq, now, prev);
  audit_canon_set (&c, C_RCPTS, keys);
  if (keys != NULL)
    audit_address_note (pending, rec->recipients, keys, seq);
  if (seal != NULL)
    {
      AuditSealInput in = { seq, now, seal->epoch, prev, a->last_seal_hash,
                            seal->next_key, seal->detail };

      if (!seal->sign (&in, sig, seal->sign_data, error))
        return FALSE;
      g_snprintf (c.epoch, sizeof c.epoch, "%" G_GINT64_FORMAT, seal->epoch);
      audit_canon_set (&c, C_EPOCH, c.epoch);
      audit_canon_set (&c, C_SEAL, sig);
      audit_canon_set (&c, C_NEXT_KEY, seal->next_key);
      audit_canon_set (&c, C_PREV_SEAL, a->last_seal_hash);
      audit_canon_set (&c, C_DETAIL, seal->detail);
    }
  if (!audit_canon_hash (&c, hash))
    {
      g_set_error_literal (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                           "audit: SHA-256 failed");
      return FALSE;
    }
  if (!audit_insert (a, &c, seq, now, rec->peer_uid,
                     seal != NULL ? seal->epoch : -1, hash, error))
    return FALSE;
  memcpy (prev, hash, SHA256_HEX_SIZE);
  return TRUE;
}

/* The clock_back row for a step back of more than a second, once per
 * step: *rec is filled when one is due (words into buf). */
static gboolean
audit_clock_row (Audit *a, gint64 clock, AuditRecord *rec, char *buf,
                 gsize size)
{
  if (clock >= a->last_time_ms)
    a->clock_flagged = FALSE;
  if (clock >= a->last_time_ms - 1000 || a->clock_flagged)
    return FALSE;
  g_snprintf (buf, size, "the host clock went back %" G_GINT64_FORMAT
              " ms (to unix ms %" G_GINT64_FORMAT "); rows keep the time of"
              " the row before until the clock passes it",
              a->last_time_ms - clock, clock);
  *rec = (AuditRecord) { .event = AUDIT_CLOCK_BACK, .peer_uid = -1,
                         .detail = buf };
  a->clock_flagged = TRUE;
  return TRUE;
}

gboolean
audit_append_locked (Audit *a, const AuditRecord *recs, guint n,
                     const AuditSealSpec *seal, GError **error)
{
  gint64 clock = a->clock != NULL ? a->clock (a->clock_data)
                                  : g_get_real_time () / 1000;
  gint64 now = MAX (clock, a->last_time_ms), seq = a->last_seq;
  char prev[SHA256_HEX_SIZE], words[200];
  AuditRecord clock_rec;
  gboolean stepped = audit_clock_row (a, clock, &clock_rec, words,
                                      sizeof words);
  g_autoptr (GHashTable) pending = audit_address_pending_new ();
  guint i;

  g_return_val_if_fail (seal == NULL || n == 1, FALSE);
  memcpy (prev, a->last_hash, SHA256_HEX_SIZE);
  if (!audit_exec (a->db, "BEGIN IMMEDIATE", error))
    return FALSE;
  if (stepped && !audit_add_row (a, &clock_rec, NULL, pending, ++seq, now,
                                prev, error))
    i = 0;
  else
    for (i = 0; i < n; i++)
      if (!audit_add_row (a, &recs[i], seal, pending, ++seq, now, prev, error))
        break;
  if (i < n || !audit_address_flush (a->db, &a->remember, pending, error)
      || !audit_exec (a->db, "COMMIT", error))
    {
      if (!sqlite3_get_autocommit (a->db))
        audit_exec (a->db, "ROLLBACK", NULL);
      a->clock_flagged = a->clock_flagged && !stepped;
      return FALSE;
    }
  /* Only a committed batch moves the head. */
  a->last_seq = seq;
  a->last_time_ms = now;
  memcpy (a->last_hash, prev, SHA256_HEX_SIZE);
  if (seal != NULL)
    {
      a->last_seal_seq = seq;
      a->last_seal_epoch = seal->epoch;
      memcpy (a->last_seal_hash, prev, SHA256_HEX_SIZE);
      g_strlcpy (a->last_seal_next, seal->next_key, SHA256_HEX_SIZE);
    }
  return TRUE;
}

gboolean
audit_append_batch (Audit *a, const AuditRecord *recs, guint n,
                    GError **error)
{
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_val_if_fail (a != NULL && (recs != NULL || n == 0), FALSE);
  for (guint i = 0; i < n; i++)
    g_return_val_if_fail ((guint) recs[i].event < AUDIT_SEALED, FALSE);
  if (n == 0)
    return TRUE;
  locker = g_mutex_locker_new (&a->lock);
  return audit_append_locked (a, recs, n, NULL, error);
}

gboolean
audit_append (Audit *a, const AuditRecord *rec, GError **error)
{
  g_return_val_if_fail (rec != NULL, FALSE);
  return audit_append_batch (a, rec, 1, error);
}

/* ---- reading --------------------------------------------------------- */

void
audit_row_free (AuditRow *r)
{
  if (r == NULL)
    return;
  for (int i = 0; i <= C_ROW_HASH; i++)
    if (audit_text[i].row >= 0)
      g_free (G_STRUCT_MEMBER (char *, r, audit_text[i].row));
  g_free (r->recipients);
  g_free (r);
}

AuditRow *
audit_row_from_stmt (sqlite3_stmt *st)
{
  AuditRow *r = g_new0 (AuditRow, 1);

  r->seq = sqlite3_column_int64 (st, C_SEQ);
  r->time_ms = sqlite3_column_int64 (st, C_TIME);
  r->peer_uid = sqlite3_column_type (st, C_UID) == SQLITE_NULL
                  ? -1 : sqlite3_column_int64 (st, C_UID);
  r->epoch = sqlite3_column_type (st, C_EPOCH) == SQLITE_NULL
               ? -1 : sqlite3_column_int64 (st, C_EPOCH);
  for (int i = 0; i <= C_ROW_HASH; i++)
    if (audit_text[i].row >= 0)
      G_STRUCT_MEMBER (char *, r, audit_text[i].row) =
        g_strdup ((const char *) sqlite3_column_text (st, i));
  return r;
}

