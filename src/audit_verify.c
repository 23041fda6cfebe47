/*
 * audit_verify.c - checks an audit file: every row's hash and link, the
 * purge checkpoint it starts from, the append-only triggers, and with a
 * key every seal from the key's epoch on.
 *
 * Order of checks per row (audit_verify_row): sequence, link, own hash,
 * event name, so the message says what most likely happened; then, for
 * a seal row, its epoch (each seal's is the one before plus one) and its
 * MAC under the epoch key, derived forward from the key given.  A key of
 * epoch n (the daemon's current one, say) checks seals n and later only:
 * the report says how many were checked.
 *
 * What it trusts: nothing in the file.  Limits: rows after the last seal
 * are protected by the chain only; an intruder can cut or rewrite them
 * unnoticed, so they are returned as the unsealed tail for the caller
 * to report (compare `audit head` kept elsewhere to catch a cut).
 */
#include "audit_private.h"

#include <string.h>

#include <openssl/crypto.h>

static const char *const audit_triggers[] = {
  "audit_no_update", "audit_no_delete", "audit_checkpoint_no_update",
  "audit_checkpoint_no_delete",
};

typedef struct {
  const AuditKey *given;    /* NULL: chain only */
  AuditKey k;               /* K_e derived forward from given */
  AuditVerifyReport *rep;
  gint64 expect_epoch;      /* -1: the first seal may have any epoch */
  gint64 prev_seal_seq;
} AuditVerifier;

/*
 * Checks one row against the one before: sequence, link, own hash,
 * event name, in that order so the message says what most likely
 * happened.  On success prev gets this row's hash.
 */
gboolean
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

/* Missing or altered append-only triggers: names joined, NULL if none. */
static char *
audit_missing_triggers (sqlite3 *db)
{
  g_autoptr (GString) out = g_string_new (NULL);
  sqlite3_stmt *st = NULL;

  if (sqlite3_prepare_v2 (db, "SELECT sql FROM sqlite_master WHERE"
                          " type = 'trigger' AND name = ?1", -1, &st, NULL)
      != SQLITE_OK)
    return g_strdup ("(cannot read the schema)");
  for (gsize i = 0; i < G_N_ELEMENTS (audit_triggers); i++)
    {
      const char *sql;

      sqlite3_bind_text (st, 1, audit_triggers[i], -1, SQLITE_STATIC);
      if (sqlite3_step (st) != SQLITE_ROW
          || (sql = (const char *) sqlite3_column_text (st, 0)) == NULL
          || strstr (sql, "RAISE (ABORT") == NULL)
        g_string_append_printf (out, "%s%s", out->len ? ", " : "",
                                audit_triggers[i]);
      sqlite3_reset (st);
    }
  sqlite3_finalize (st);
  return out->len ? g_string_free (g_steal_pointer (&out), FALSE) : NULL;
}

/* Evolves v->k up to epoch (never back: an earlier one is unknowable). */
static void
audit_key_to (AuditVerifier *v, gint64 epoch)
{
  while (v->k.epoch < epoch)
    audit_key_evolve (&v->k);
}

/* The MAC check of one seal; prev is the hash of the row before it. */
static gboolean
audit_check_mac (AuditVerifier *v, gint64 seq, gint64 epoch, gint64 time_ms,
                 const char *prev, const char *seal, const char *detail,
                 GError **error)
{
  static const char init[] = "initial key, commitment ";
  char mac[65], commit[65];

  if (v->given == NULL || epoch < v->given->epoch)
    return TRUE;
  audit_key_to (v, epoch);
  if (epoch == v->given->epoch && g_str_has_prefix (detail ? detail : "", init))
    {
      audit_key_commitment (&v->k, commit);
      if (strcmp (detail + strlen (init), commit) != 0)
        return audit_broken (error, "row %" G_GINT64_FORMAT ": the key given"
                             " is not this log's initial key", seq);
    }
  audit_seal_mac (&v->k, seq, epoch, time_ms, prev, mac);
  if (mac[0] == '\0' || CRYPTO_memcmp (mac, seal, 64) != 0)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": seal (epoch %"
                         G_GINT64_FORMAT ") does not match: rows %"
                         G_GINT64_FORMAT "-%" G_GINT64_FORMAT " were changed"
                         " after sealing, or the key is not this log's", seq,
                         epoch, v->prev_seal_seq + 1, seq);
  v->rep->seals_checked++;
  return TRUE;
}

/* A seal row: epoch continuity, then its MAC. */
static gboolean
audit_check_seal (AuditVerifier *v, sqlite3_stmt *st, const char *prev,
                  GError **error)
{
  gint64 seq = sqlite3_column_int64 (st, C_SEQ);
  gint64 epoch = sqlite3_column_int64 (st, C_EPOCH);
  const char *seal = (const char *) sqlite3_column_text (st, C_SEAL);

  if (sqlite3_column_type (st, C_EPOCH) == SQLITE_NULL || epoch < 0
      || !audit_is_hex64 (seal))
    return audit_broken (error, "row %" G_GINT64_FORMAT ": seal row without"
                         " epoch or MAC", seq);
  if (v->expect_epoch >= 0 && epoch != v->expect_epoch)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": seal epoch %"
                         G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT
                         " (a seal was removed or replayed)", seq, epoch,
                         v->expect_epoch);
  if (!audit_check_mac (v, seq, epoch, sqlite3_column_int64 (st, C_TIME), prev,
                        seal, (const char *) sqlite3_column_text (st,
                                                                  C_DETAIL),
                        error))
    return FALSE;
  v->expect_epoch = epoch + 1;
  v->prev_seal_seq = seq;
  v->rep->n_seals++;
  v->rep->last_seal_seq = seq;
  v->rep->last_seal_epoch = epoch;
  v->rep->last_seal_time_ms = sqlite3_column_int64 (st, C_TIME);
  return TRUE;
}

/* Row checks beyond the chain: seal fields only on seal rows. */
static gboolean
audit_check_kind (AuditVerifier *v, sqlite3_stmt *st, const char *prev,
                  GError **error)
{
  const char *event = (const char *) sqlite3_column_text (st, C_EVENT);

  if (g_strcmp0 (event, "sealed") == 0)
    return audit_check_seal (v, st, prev, error);
  if (sqlite3_column_type (st, C_EPOCH) != SQLITE_NULL
      || sqlite3_column_type (st, C_SEAL) != SQLITE_NULL)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": seal fields on a"
                         " %s row", (gint64) sqlite3_column_int64 (st, C_SEQ),
                         event);
  return TRUE;
}

/* The checkpoint must be a seal row whose hash recomputes (and, with a
 * key, whose MAC holds): then the chain may start from its hash. */
static gboolean
audit_check_checkpoint (AuditVerifier *v, sqlite3 *db, gint64 *expect,
                        char prev[65], GError **error)
{
  sqlite3_stmt *st = NULL;
  gboolean ok = TRUE;
  int rc;

  if (sqlite3_prepare_v2 (db, "SELECT seq, time_ms, 'sealed', NULL, NULL,"
                          " NULL, NULL, NULL, NULL, NULL, NULL, detail, NULL,"
                          " NULL, NULL, NULL, NULL, NULL, NULL, NULL, epoch,"
                          " seal, prev_hash, row_hash FROM audit_checkpoint"
                          " ORDER BY seq DESC LIMIT 1", -1, &st, NULL)
      != SQLITE_OK)
    return audit_fail (db, error, "verify checkpoint");
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      gint64 seq = sqlite3_column_int64 (st, C_SEQ);
      const char *cprev = (const char *) sqlite3_column_text (st, C_PREV);
      char p[65];

      g_strlcpy (p, cprev != NULL ? cprev : "", sizeof p);
      v->rep->checkpoint_seq = seq;
      v->rep->checkpoint_time_ms = sqlite3_column_int64 (st, C_TIME);
      ok = audit_verify_row (st, seq, p, error)
           && audit_check_seal (v, st, cprev, error);
      if (!ok)
        g_prefix_error (error, "purge checkpoint: ");
      *expect = seq + 1;
      memcpy (prev, p, 65);
      v->rep->n_seals--;    /* counted in the chain report as the start */
    }
  else if (rc != SQLITE_DONE)
    ok = audit_fail (db, error, "verify checkpoint");
  sqlite3_finalize (st);
  return ok;
}

static gboolean
audit_walk (AuditVerifier *v, sqlite3 *db, sqlite3_stmt *st, GError **error)
{
  AuditVerifyReport *rep = v->rep;
  char prev[65], before[65];
  gint64 expect = 1;
  int rc;

  memcpy (prev, AUDIT_ZERO_HASH, 65);
  if (!audit_check_checkpoint (v, db, &expect, prev, error))
    return FALSE;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      memcpy (before, prev, 65);
      if (!audit_verify_row (st, expect, prev, error)
          || !audit_check_kind (v, st, before, error))
        return FALSE;
      if (rep->first_seq == 0)
        rep->first_seq = expect;
      rep->last_seq = expect++;
      rep->n_rows++;
    }
  return rc == SQLITE_DONE || audit_fail (db, error, "verify");
}

gboolean
audit_verify_full (const char *path, const AuditKey *key,
                   AuditVerifyReport *rep, GError **error)
{
  AuditVerifier v = { .given = key, .rep = rep, .expect_epoch = -1 };
  g_autofree char *missing = NULL;
  sqlite3_stmt *st = NULL;
  sqlite3 *db;
  gboolean ok;

  g_return_val_if_fail (path != NULL && rep != NULL, FALSE);
  *rep = (AuditVerifyReport) { .key_epoch = key ? key->epoch : -1,
                               .last_seal_epoch = -1 };
  if (key != NULL)
    v.k = *key;
  db = audit_open_read (path, "SELECT " AUDIT_COLUMNS
                        " FROM audit ORDER BY seq", &st, error);
  if (db == NULL)
    return FALSE;
  ok = audit_walk (&v, db, st, error);
  missing = ok ? audit_missing_triggers (db) : NULL;
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  audit_key_wipe (&v.k);
  if (missing != NULL)
    return audit_broken (error, "append-only trigger(s) missing or altered:"
                         " %s (the file was changed outside invitemail)",
                         missing);
  return ok;
}

gboolean
audit_verify (const char *path, gint64 *n_rows, GError **error)
{
  AuditVerifyReport rep;
  gboolean ok = audit_verify_full (path, NULL, &rep, error);

  if (n_rows != NULL)
    *n_rows = rep.n_rows;
  return ok;
}
