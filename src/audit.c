/*
 * audit.c - the insert-only audit log and its hash chain, in its own
 * SQLite file.  SQL lives only here (and in queue.c).
 *
 * What it does: appends rows, each in its own BEGIN IMMEDIATE
 * transaction on a WAL + synchronous=FULL connection (db.c), chained by
 * SHA-256; reads them back with bound filters; verifies the chain.
 * Triggers make UPDATE and DELETE abort, so a bug or a careless admin
 * cannot change history through SQL; someone who drops the triggers
 * and edits the file is caught by audit_verify instead.
 *
 * Canonical encoding (audit.h): for each value in this order
 *   seq, time_ms, event, invite_id, peer_uid, staff, booking, recipients,
 *   smtp_reply, error_code, field, detail, lang, template_name,
 *   link_sha256, notice_sha256, template_sha256, signature_sha256,
 *   message_sha256, prev_hash
 * a 4-byte big-endian length and the bytes; NULL (and peer_uid -1) is
 * length 0xFFFFFFFF with no bytes; integers are decimal ASCII.  row_hash
 * is the lower-case hex SHA-256 of that.  The first prev is 64 zeros.
 *
 * What it trusts: the strings in an AuditRecord (the daemon guarantees
 * there is no personal data in detail); they are stored as given.  It
 * trusts nothing read back: verify recomputes every hash.
 *
 * Limits: a hash chain without an outside anchor cannot show that the
 * newest rows were cut off while the daemon was stopped; while it runs,
 * the chain head kept in memory makes such a cut show up as a gap.
 * Only one Audit may append to a file (the daemon): the in-memory head
 * assumes no other writer.
 */
#include "audit.h"

#include <string.h>

#include <openssl/evp.h>

#include "db.h"

#define AUDIT_SCHEMA_VERSION 1
#define AUDIT_ZERO_HASH \
  "0000000000000000000000000000000000000000000000000000000000000000"

G_DEFINE_QUARK (invitemail-audit-error-quark, audit_error)

static const char *const audit_schema_sql =
  "CREATE TABLE IF NOT EXISTS audit ("
  " seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, event TEXT NOT NULL,"
  " invite_id TEXT, peer_uid INTEGER, staff TEXT, booking TEXT,"
  " recipients TEXT, smtp_reply TEXT, error_code TEXT, field TEXT,"
  " detail TEXT, lang TEXT, template_name TEXT, link_sha256 TEXT,"
  " notice_sha256 TEXT, template_sha256 TEXT, signature_sha256 TEXT,"
  " message_sha256 TEXT, prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL);"
  "CREATE INDEX IF NOT EXISTS audit_by_invite ON audit (invite_id);"
  "CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time_ms);"
  "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
  " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only'); END;"
  "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
  " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only'); END;";

/* The canonical order; also the column order of AUDIT_COLUMNS, with
 * row_hash after them. */
enum {
  C_SEQ, C_TIME, C_EVENT, C_INVITE, C_UID, C_STAFF, C_BOOKING, C_RCPTS,
  C_REPLY, C_ERROR_CODE, C_FIELD, C_DETAIL, C_LANG, C_TEMPLATE, C_LINK,
  C_NOTICE, C_TEMPLATE_SHA, C_SIGNATURE, C_MESSAGE, C_PREV, N_CANON,
  C_ROW_HASH = N_CANON
};

#define AUDIT_COLUMNS \
  "seq, time_ms, event, invite_id, peer_uid, staff, booking, recipients," \
  " smtp_reply, error_code, field, detail, lang, template_name," \
  " link_sha256, notice_sha256, template_sha256, signature_sha256," \
  " message_sha256, prev_hash, row_hash"

static const char *const audit_insert_sql =
  "INSERT INTO audit (" AUDIT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
  " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";

/* Where each text value lives in an AuditRecord / AuditRow; -1 for the
 * integers and the ones handled apart. */
#define REC(f) G_STRUCT_OFFSET (AuditRecord, f)
#define ROW(f) G_STRUCT_OFFSET (AuditRow, f)
static const struct {
  glong rec, row;
} audit_text[N_CANON + 1] = {
  [C_SEQ] = { -1, -1 }, [C_TIME] = { -1, -1 },
  [C_EVENT] = { -1, ROW (event) }, [C_INVITE] = { REC (invite_id),
                                                  ROW (invite_id) },
  [C_UID] = { -1, -1 },
  [C_STAFF] = { REC (staff), ROW (staff) },
  [C_BOOKING] = { REC (booking), ROW (booking) },
  [C_RCPTS] = { REC (recipients), ROW (recipients) },
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
};

struct Audit {
  sqlite3 *db;
  sqlite3_stmt *insert;
  GMutex lock;              /* guards everything below and the insert */
  gint64 last_seq;
  char last_hash[65];
  gboolean head_intact;
  AuditClock clock;
  gpointer clock_data;
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

static gboolean
audit_fail (sqlite3 *db, GError **error, const char *what)
{
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit %s: %s (%d)", what,
               sqlite3_errmsg (db), sqlite3_extended_errcode (db));
  return FALSE;
}

/* Re-labels a DbError as AUDIT_ERROR_IO: callers see one domain. */
static gboolean
audit_from_db (GError *db_error, GError **error)
{
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit: %s",
               db_error->message);
  g_error_free (db_error);
  return FALSE;
}

static gboolean
audit_exec (sqlite3 *db, const char *sql, GError **error)
{
  GError *local = NULL;

  return db_exec (db, sql, &local) || audit_from_db (local, error);
}

/* ---- hashing --------------------------------------------------------- */

void
audit_sha256_hex (const void *data, gsize len, char out[65])
{
  static const char hex[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;

  /* EVP_Digest fails only when OpenSSL cannot allocate.  An empty
   * answer never equals a real hash, so the caller's check fails
   * instead of a row being chained to a made-up value. */
  out[0] = '\0';
  if (!EVP_Digest (data, len, md, &n, EVP_sha256 (), NULL) || n != 32)
    return;
  for (unsigned int i = 0; i < n; i++)
    {
      out[2 * i] = hex[md[i] >> 4];
      out[2 * i + 1] = hex[md[i] & 0xf];
    }
  out[64] = '\0';
}

/* The values of one row in canonical order; v[i] NULL = SQL NULL. */
typedef struct {
  const char *v[N_CANON];
  gsize len[N_CANON];
  char seq[24], time[24], uid[24];
} AuditCanon;

static void
audit_canon_set (AuditCanon *c, int i, const char *s)
{
  c->v[i] = s;
  c->len[i] = s != NULL ? strlen (s) : 0;
}

/* FALSE only when OpenSSL failed (see audit_sha256_hex). */
static gboolean
audit_canon_hash (const AuditCanon *c, char out[65])
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();

  for (int i = 0; i < N_CANON; i++)
    {
      guint32 n = c->v[i] != NULL ? (guint32) c->len[i] : 0xFFFFFFFFu;
      guint8 be[4] = { n >> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff };

      g_byte_array_append (buf, be, 4);
      if (c->v[i] != NULL)
        g_byte_array_append (buf, (const guint8 *) c->v[i], c->len[i]);
    }
  audit_sha256_hex (buf->data, buf->len, out);
  return out[0] != '\0';
}

static void
audit_canon_from_record (AuditCanon *c, const AuditRecord *rec, gint64 seq,
                         gint64 time_ms, const char *prev)
{
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
static void
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

/* ---- opening for append ---------------------------------------------- */

static gboolean
audit_schema (sqlite3 *db, GError **error)
{
  g_autofree char *sql = g_strdup_printf (
    "%s PRAGMA user_version=%d;", audit_schema_sql, AUDIT_SCHEMA_VERSION);
  sqlite3_stmt *st = NULL;
  gint64 version = -1;

  if (!audit_exec (db, "BEGIN IMMEDIATE", error))
    return FALSE;
  if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &st, NULL)
      == SQLITE_OK && sqlite3_step (st) == SQLITE_ROW)
    version = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  if (version < 0 || version > AUDIT_SCHEMA_VERSION)
    g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                 "audit schema version %" G_GINT64_FORMAT " not supported",
                 version);
  else if (audit_exec (db, sql, error) && audit_exec (db, "COMMIT", error))
    return TRUE;
  if (!sqlite3_get_autocommit (db))
    audit_exec (db, "ROLLBACK", NULL);
  return FALSE;
}

static gboolean
audit_is_hex64 (const char *s)
{
  if (s == NULL || strlen (s) != 64)
    return FALSE;
  for (const char *p = s; *p != '\0'; p++)
    if (!g_ascii_isxdigit (*p) || g_ascii_isupper (*p))
      return FALSE;
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
  char hash[65];
  int rc;

  a->last_seq = 0;
  memcpy (a->last_hash, AUDIT_ZERO_HASH, 65);
  a->head_intact = TRUE;
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
      audit_canon_from_stmt (&c, st);
      audit_canon_hash (&c, hash);
      a->head_intact = g_strcmp0 (stored, hash) == 0;
      memcpy (a->last_hash, audit_is_hex64 (stored) ? stored : hash, 65);
    }
  sqlite3_finalize (st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return audit_fail (a->db, error, "read head");
  return TRUE;
}

Audit *
audit_open (const char *path, GError **error)
{
  g_autoptr (Audit) a = NULL;
  GError *local = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  a = g_new0 (Audit, 1);
  g_mutex_init (&a->lock);
  a->db = db_open (path, &local);
  if (a->db == NULL)
    {
      audit_from_db (local, error);
      return NULL;
    }
  /* REPLACE deletes rows without firing delete triggers unless
   * recursive_triggers is on; we never use REPLACE, but be safe. */
  if (!audit_exec (a->db, "PRAGMA recursive_triggers=ON", error)
      || !audit_schema (a->db, error) || !audit_load_head (a, error))
    return NULL;
  if (sqlite3_prepare_v3 (a->db, audit_insert_sql, -1,
                          SQLITE_PREPARE_PERSISTENT, &a->insert, NULL)
      != SQLITE_OK)
    {
      audit_fail (a->db, error, "prepare");
      return NULL;
    }
  return g_steal_pointer (&a);
}

void
audit_close (Audit *a)
{
  if (a == NULL)
    return;
  sqlite3_finalize (a->insert);
  sqlite3_close_v2 (a->db);
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
              gint64 uid, const char *hash, GError **error)
{
  sqlite3_stmt *st = a->insert;
  int rc;

  for (int i = 0; i < N_CANON; i++)
    sqlite3_bind_text (st, i + 1, c->v[i], (int) c->len[i], SQLITE_STATIC);
  sqlite3_bind_int64 (st, C_SEQ + 1, seq);
  sqlite3_bind_int64 (st, C_TIME + 1, time_ms);
  if (uid >= 0)
    sqlite3_bind_int64 (st, C_UID + 1, uid);
  sqlite3_bind_text (st, C_ROW_HASH + 1, hash, -1, SQLITE_STATIC);
  rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    audit_fail (a->db, error, "insert");
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
  return rc == SQLITE_DONE;
}

static gboolean
audit_append_locked (Audit *a, const AuditRecord *rec, GError **error)
{
  gint64 seq = a->last_seq + 1;
  gint64 now = a->clock != NULL ? a->clock (a->clock_data)
                                : g_get_real_time () / 1000;
  AuditCanon c;
  char hash[65];

  audit_canon_from_record (&c, rec, seq, now, a->last_hash);
  if (!audit_canon_hash (&c, hash))
    {
      g_set_error_literal (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                           "audit: SHA-256 failed");
      return FALSE;
    }
  if (!audit_exec (a->db, "BEGIN IMMEDIATE", error))
    return FALSE;
  if (!audit_insert (a, &c, seq, now, rec->peer_uid, hash, error)
      || !audit_exec (a->db, "COMMIT", error))
    {
      if (!sqlite3_get_autocommit (a->db))
        audit_exec (a->db, "ROLLBACK", NULL);
      return FALSE;
    }
  /* Only a committed row moves the head. */
  a->last_seq = seq;
  memcpy (a->last_hash, hash, 65);
  return TRUE;
}

gboolean
audit_append (Audit *a, const AuditRecord *rec, GError **error)
{
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_val_if_fail (a != NULL && rec != NULL, FALSE);
  g_return_val_if_fail ((guint) rec->event < AUDIT_N_EVENTS, FALSE);
  locker = g_mutex_locker_new (&a->lock);
  return audit_append_locked (a, rec, error);
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
  g_free (r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AuditRow, audit_row_free)

static AuditRow *
audit_row_from_stmt (sqlite3_stmt *st)
{
  AuditRow *r = g_new0 (AuditRow, 1);

  r->seq = sqlite3_column_int64 (st, C_SEQ);
  r->time_ms = sqlite3_column_int64 (st, C_TIME);
  r->peer_uid = sqlite3_column_type (st, C_UID) == SQLITE_NULL
                  ? -1 : sqlite3_column_int64 (st, C_UID);
  for (int i = 0; i <= C_ROW_HASH; i++)
    if (audit_text[i].row >= 0)
      G_STRUCT_MEMBER (char *, r, audit_text[i].row) =
        g_strdup ((const char *) sqlite3_column_text (st, i));
  return r;
}

/* A read-only connection and one statement on it. */
static sqlite3 *
audit_open_read (const char *path, const char *sql, sqlite3_stmt **st,
                 GError **error)
{
  GError *local = NULL;
  sqlite3 *db = db_open_readonly (path, &local);

  if (db == NULL)
    {
      audit_from_db (local, error);
      return NULL;
    }
  if (sqlite3_prepare_v2 (db, sql, -1, st, NULL) != SQLITE_OK)
    {
      audit_fail (db, error, "read");
      sqlite3_close_v2 (db);
      return NULL;
    }
  return db;
}

/*
 * Filters are bound parameters in one fixed statement, never pasted
 * SQL.  The time window is since_ms <= time_ms < until_ms.  The read
 * transaction lasts while fn runs: keep fn quick (LIBS.md 6, a long
 * reader starves WAL checkpoints).
 */
gboolean
audit_read (const char *path, const AuditFilter *f, AuditRowFunc fn,
            gpointer data, GError **error)
{
  static const AuditFilter all = { NULL, NULL, 0, 0 };
  sqlite3_stmt *st = NULL;
  sqlite3 *db;
  int rc;

  g_return_val_if_fail (path != NULL && fn != NULL, FALSE);
  f = f != NULL ? f : &all;
  db = audit_open_read (path, "SELECT " AUDIT_COLUMNS " FROM audit"
                        " WHERE (?1 IS NULL OR invite_id = ?1)"
                        " AND (?2 IS NULL OR event = ?2)"
                        " AND (?3 = 0 OR time_ms >= ?3)"
                        " AND (?4 = 0 OR time_ms < ?4) ORDER BY seq",
                        &st, error);
  if (db == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, f->invite_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, f->event, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 3, f->since_ms);
  sqlite3_bind_int64 (st, 4, f->until_ms);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      g_autoptr (AuditRow) row = audit_row_from_stmt (st);
      if (!fn (row, data))
        {
          rc = SQLITE_DONE;
          break;
        }
    }
  if (rc != SQLITE_DONE)
    audit_fail (db, error, "read");
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  return rc == SQLITE_DONE;
}

/* ---- verify ---------------------------------------------------------- */

static gboolean
audit_broken (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
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

/*
 * Checks one row against the one before: sequence, link, own hash,
 * event name, in that order so the message says what most likely
 * happened.  On success prev gets this row's hash.
 */
static gboolean
audit_verify_row (sqlite3_stmt *st, gint64 expect, char prev[65],
                  GError **error)
{
  gint64 seq = sqlite3_column_int64 (st, C_SEQ);
  const char *stored;
  AuditCanon c;
  char hash[65];

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
  memcpy (prev, hash, 65);
  return TRUE;
}

gboolean
audit_verify (const char *path, gint64 *n_rows, GError **error)
{
  sqlite3_stmt *st = NULL;
  sqlite3 *db;
  char prev[65];
  gint64 n = 0;
  gboolean ok = TRUE;
  int rc;

  g_return_val_if_fail (path != NULL, FALSE);
  memcpy (prev, AUDIT_ZERO_HASH, 65);
  db = audit_open_read (path, "SELECT " AUDIT_COLUMNS
                        " FROM audit ORDER BY seq", &st, error);
  if (db == NULL)
    return FALSE;
  while (ok && (rc = sqlite3_step (st)) == SQLITE_ROW)
    if ((ok = audit_verify_row (st, n + 1, prev, error)))
      n++;
  if (ok && rc != SQLITE_DONE)
    ok = audit_fail (db, error, "verify");
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  if (n_rows != NULL)
    *n_rows = n;
  return ok;
}
