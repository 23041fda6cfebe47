/*
 * audit_seal.c - forward-secure Ed25519 seals over the audit chain, the
 * daemon's key, `audit init`, and retention.  See audit_seal.h for the
 * design; audit_key.c holds the keys, the key file and what a seal
 * signs; the store (audit.c) appends the signed row through a callback.
 *
 * Order of a seal, so that no crash loses the chain:
 *   1. key file := {epoch e: key_e, next: key_e+1}  (new pair, durable)
 *   2. the seal row, signed with key_e, naming key_e+1's public half,
 *      commits
 *   3. key file := {epoch e+1: key_e+1}; key_e freed, old file bytes
 *      overwritten
 * A crash after 2 and before 3 leaves a file at epoch e with a `next`
 * whose public half the last seal names: opening finishes step 3.  A
 * crash before 2 leaves the `next` unused; the next seal makes another.
 *
 * Retention: audit_purge deletes whole sealed epochs only, through the
 * purge gate (audit.c: a row in audit_purge_token, inserted and removed
 * inside the purge's own transaction), and keeps their seal rows in
 * audit_kept_seal so the signature chain stays whole; the first row
 * left chains to the last kept seal's hash.  The clear addresses only
 * purged rows named go with them.
 *
 * What it trusts: the key file only as audit_key.c checks it.  Secrets
 * are never logged.
 */
#include "audit_seal.h"

#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit_anchor.h"
#include "audit_key.h"
#include "audit_store.h"

#define DAY_MS (G_GINT64_CONSTANT (24) * 3600 * 1000)

/* The seal layer's state in an Audit (a->sealer). */
typedef struct {
  char *key_path;
  char *group;
  guint retention_days;
  AuditSecret sec;          /* sec.key NULL: no sealing */
} AuditSealer;

static void
audit_sealer_free (gpointer p)
{
  AuditSealer *s = p;

  audit_secret_clear (&s->sec);
  g_free (s->key_path);
  g_free (s->group);
  g_free (s);
}

static AuditSealer *
audit_sealer (Audit *a)
{
  return a->sealer;
}

/* ---- opening ------------------------------------------------------------ */

/* Group read for compliance on the database and the files SQLite keeps
 * beside it: a reader without write access to the folder needs -wal
 * and -shm readable too.  Never the .lock: whoever can open it can hold
 * a lock on it and so keep the daemon from starting; it stays 0600. */
static gboolean
audit_share (const Audit *a, const char *group, GError **error)
{
  static const char *const suffix[] = { "", "-wal", "-shm" };
  struct group *gr;

  if (group == NULL)
    return TRUE;
  if ((gr = getgrnam (group)) == NULL)
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                   "audit group %s: no such group", group);
      return FALSE;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (suffix); i++)
    {
      g_autofree char *f = g_strconcat (a->path, suffix[i], NULL);

      if (!g_file_test (f, G_FILE_TEST_EXISTS))
        continue;
      if (chown (f, (uid_t) -1, gr->gr_gid) != 0 || chmod (f, 0640) != 0)
        {
          int saved = errno;
          g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit share %s:"
                       " %s", f, g_strerror (saved));
          return FALSE;
        }
    }
  return TRUE;
}

/* Whether k's public half is the one the last seal named. */
static gboolean
audit_key_named (EVP_PKEY *k, const char *named)
{
  char hex[SHA256_HEX_SIZE];

  return audit_secret_public_hex (k, hex) && strcmp (hex, named) == 0;
}

/*
 * The key file must continue the chain: its epoch is the last seal's
 * plus one and its public half the one that seal named; or it is one
 * epoch behind with the `next` key that seal named (a crash inside a
 * seal), which is finished here.
 */
static gboolean
audit_key_continues (Audit *a, AuditSealer *s, GError **error)
{
  AuditSecret *sec = &s->sec;
  gint64 last = a->last_seal_epoch;

  if (sec->epoch == last && sec->next != NULL
      && audit_key_named (sec->next, a->last_seal_next))
    {
      EVP_PKEY_free (sec->key);
      sec->key = g_steal_pointer (&sec->next);
      sec->epoch = last + 1;
      return audit_secret_store (s->key_path, sec, error);
    }
  if (sec->epoch == last + 1
      && (last < 0 || audit_key_named (sec->key, a->last_seal_next)))
    {
      EVP_PKEY_free (g_steal_pointer (&sec->next));
      return TRUE;
    }
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit key %s (epoch %"
               G_GINT64_FORMAT ") does not continue %s, whose last seal is"
               " epoch %" G_GINT64_FORMAT " and names another key: the key"
               " file or the audit file was restored from another copy;"
               " seals made with it would not verify", s->key_path,
               sec->epoch, a->path, last);
  return FALSE;
}

Audit *
audit_open_sealing (const char *path, const AuditSealConfig *cfg,
                    GError **error)
{
  g_autoptr (Audit) a = NULL;
  AuditSealer *s;
  gboolean absent = TRUE;

  g_return_val_if_fail (path != NULL && cfg != NULL, NULL);
  if ((a = audit_open (path, error)) == NULL)
    return NULL;
  s = g_new0 (AuditSealer, 1);
  s->key_path = g_strdup (cfg->key_file);
  s->group = g_strdup (cfg->group);
  s->retention_days = cfg->retention_days;
  s->sec.epoch = -1;
  a->sealer = s;
  a->sealer_free = audit_sealer_free;
  if (!audit_share (a, s->group, error))
    return NULL;
  if (s->key_path != NULL
      && (!audit_secret_load (s->key_path, &s->sec, &absent, error)
          || (!absent && !audit_key_continues (a, s, error))))
    return NULL;
  /* Sealed before, and now no key: someone removed it, or the file
   * moved without it.  Running on unsealed would hide that. */
  if (s->key_path != NULL && absent && a->last_seal_epoch >= 0)
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "%s holds seals"
                   " (the last of epoch %" G_GINT64_FORMAT ") but its key"
                   " file %s is missing: restore it", path,
                   a->last_seal_epoch, s->key_path);
      return NULL;
    }
  return g_steal_pointer (&a);
}

gboolean
audit_sealing (Audit *a)
{
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_val_if_fail (a != NULL, FALSE);
  locker = g_mutex_locker_new (&a->lock);
  return a->sealer != NULL && audit_sealer (a)->sec.key != NULL;
}

/* ---- sealing -------------------------------------------------------------- */

static gboolean
audit_sign_cb (const AuditSealInput *in, char *sig, gpointer data,
               GError **error)
{
  return audit_seal_sign (data, in, sig, error);
}

/* The seal row of epoch sec.epoch; then the key moves on (steps in the
 * header comment). */
static gboolean
audit_seal_locked (Audit *a, GError **error)
{
  AuditSealer *s = audit_sealer (a);
  AuditSecret *sec = &s->sec;
  AuditRecord rec = { .event = AUDIT_SEALED, .peer_uid = -1 };
  g_autofree char *detail = audit_seal_detail (sec->epoch, s->retention_days);
  AuditSealSpec spec = { sec->epoch, NULL, detail, audit_sign_cb, sec->key };
  AuditAnchor head;
  char next_hex[SHA256_HEX_SIZE];
  gboolean ok;

  EVP_PKEY_free (sec->next);
  if ((sec->next = audit_secret_generate (error)) == NULL)
    return FALSE;
  if (!audit_secret_public_hex (sec->next, next_hex))
    {
      g_set_error_literal (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                           "audit key: cannot take the next public key");
      return FALSE;
    }
  if (!audit_secret_store (s->key_path, sec, error))
    return FALSE;
  spec.next_key = next_hex;
  rec.detail = detail;
  if (!audit_append_locked (a, &rec, 1, &spec, error))
    return FALSE;
  /* The seal is durable: from here on key_e must not survive. */
  EVP_PKEY_free (sec->key);
  sec->key = g_steal_pointer (&sec->next);
  sec->epoch++;
  head = (AuditAnchor) { a->last_seal_seq, "", a->last_seal_epoch,
                         a->last_time_ms };
  memcpy (head.hash, a->last_seal_hash, SHA256_HEX_SIZE);
  ok = audit_secret_store (s->key_path, sec, error);
  audit_anchor_log (&head);
  return ok;
}

gboolean
audit_seal (Audit *a, GError **error)
{
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_val_if_fail (a != NULL, FALSE);
  locker = g_mutex_locker_new (&a->lock);
  if (a->sealer == NULL || audit_sealer (a)->sec.key == NULL)
    return TRUE;
  return audit_seal_locked (a, error);
}

gboolean
audit_init (const char *path, const AuditSealConfig *cfg, char *public_text,
            GError **error)
{
  g_autoptr (Audit) a = NULL;
  AuditPublicKey pk;
  AuditSealer *s;
  struct stat st;
  char hex[SHA256_HEX_SIZE];

  g_return_val_if_fail (path != NULL && cfg != NULL && cfg->key_file, FALSE);
  if (lstat (cfg->key_file, &st) == 0)
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit key %s exists"
                   " already: audit init runs once", cfg->key_file);
      return FALSE;
    }
  /* Refused there when the file holds seals already (the key missing). */
  if ((a = audit_open_sealing (path, cfg, error)) == NULL)
    return FALSE;
  s = audit_sealer (a);
  s->sec.epoch = 0;
  if ((s->sec.key = audit_secret_generate (error)) == NULL
      || !audit_secret_public_hex (s->sec.key, hex)
      || !audit_pubkey_parse (hex, &pk))
    return FALSE;
  if (!audit_seal_locked (a, error))
    return FALSE;
  audit_pubkey_format (&pk, public_text);
  return TRUE;
}

/* ---- retention ------------------------------------------------------------ */

/* The newest seal that both the configured retention and the retention
 * it signed allow to go (0 = none), -1 on error. */
static gint64
audit_purge_point (Audit *a, gint64 now_ms, guint days, gint64 *epoch)
{
  sqlite3_stmt *st = NULL;
  gint64 seq = 0;
  int rc;

  if (sqlite3_prepare_v2 (a->db, "SELECT seq, epoch, time_ms, detail FROM"
                          " audit WHERE event = 'sealed' AND time_ms < ?1"
                          " ORDER BY seq DESC", -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_int64 (st, 1, now_ms - (gint64) days * DAY_MS);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      gint64 signed_days = audit_seal_retention (
        (const char *) sqlite3_column_text (st, 3));

      if (signed_days > 0
          && sqlite3_column_int64 (st, 2) + signed_days * DAY_MS <= now_ms)
        {
          seq = sqlite3_column_int64 (st, 0);
          *epoch = sqlite3_column_int64 (st, 1);
          break;
        }
    }
  sqlite3_finalize (st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? seq : -1;
}

/* Never purge evidence: the rows to go must verify first.  *first gets
 * the first seq checked. */
static gboolean
audit_check_range (sqlite3 *db, gint64 through, gint64 *first,
                   GError **error)
{
  sqlite3_stmt *st = NULL;
  char prev[SHA256_HEX_SIZE];
  gint64 expect;
  gboolean ok = TRUE;
  int rc = SQLITE_DONE;

  if (!audit_checkpoint_head (db, &expect, prev))
    return audit_fail (db, error, "read kept seals");
  *first = ++expect;
  if (sqlite3_prepare_v2 (db, "SELECT " AUDIT_COLUMNS " FROM audit"
                          " WHERE seq <= ?1 ORDER BY seq", -1, &st, NULL)
      != SQLITE_OK)
    return audit_fail (db, error, "purge check");
  sqlite3_bind_int64 (st, 1, through);
  while (ok && (rc = sqlite3_step (st)) == SQLITE_ROW)
    ok = audit_check_row (st, expect++, prev, error);
  if (ok && rc != SQLITE_DONE)
    ok = audit_fail (db, error, "purge check");
  sqlite3_finalize (st);
  return ok;
}

static gboolean
audit_exec_seq (sqlite3 *db, const char *sql, gint64 seq, gint64 a2,
                GError **error)
{
  sqlite3_stmt *st = NULL;
  int rc;

  if (sqlite3_prepare_v2 (db, sql, -1, &st, NULL) != SQLITE_OK)
    return audit_fail (db, error, "purge");
  sqlite3_bind_int64 (st, 1, seq);
  sqlite3_bind_int64 (st, 2, a2);
  rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    audit_fail (db, error, "purge");
  sqlite3_finalize (st);
  return rc == SQLITE_DONE;
}

/* The seal rows kept, the gated delete, and the gate closed again, in
 * one transaction. */
static gboolean
audit_purge_txn (sqlite3 *db, gint64 through, gint64 now_ms, GError **error)
{
  gboolean ok =
    audit_exec (db, "BEGIN IMMEDIATE", error)
    && audit_exec (db, "INSERT INTO audit_purge_token (id) VALUES (1)", error)
    && audit_exec_seq (db, "INSERT INTO audit_kept_seal (seq, time_ms, epoch,"
                       " detail, seal, next_key, prev_seal, prev_hash,"
                       " row_hash, purged_at_ms) SELECT seq, time_ms, epoch,"
                       " detail, seal, next_key, prev_seal, prev_hash,"
                       " row_hash, ?2 FROM audit WHERE event = 'sealed'"
                       " AND seq <= ?1", through, now_ms, error)
    && audit_exec_seq (db, "DELETE FROM audit WHERE seq <= ?1", through, 0,
                       error)
    && audit_exec_seq (db, "DELETE FROM audit_address WHERE last_seq <= ?1",
                       through, 0, error)
    && audit_exec (db, "DELETE FROM audit_purge_token", error)
    && audit_exec (db, "COMMIT", error);

  if (!ok && !sqlite3_get_autocommit (db))
    audit_exec (db, "ROLLBACK", NULL);
  return ok;
}

/*
 * The `purged` row is a second commit, sealed at once: verification
 * accepts kept seals only when a sealed `purged` row names them.
 */
gboolean
audit_purge (Audit *a, gint64 now_ms, GError **error)
{
  g_autoptr (GMutexLocker) locker = NULL;
  g_autofree char *words = NULL;
  AuditRecord rec = { .event = AUDIT_PURGED, .peer_uid = -1 };
  gint64 through, first = 0, epoch = -1;
  AuditSealer *s;

  g_return_val_if_fail (a != NULL, FALSE);
  locker = g_mutex_locker_new (&a->lock);
  s = audit_sealer (a);
  if (s == NULL || s->retention_days == 0)
    return TRUE;
  through = audit_purge_point (a, now_ms, s->retention_days, &epoch);
  if (through < 0)
    return audit_fail (a->db, error, "purge");
  if (through == 0)
    return TRUE;
  if (!audit_check_range (a->db, through, &first, error)
      || !audit_purge_txn (a->db, through, now_ms, error))
    return FALSE;
  words = g_strdup_printf ("rows %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT
                           " purged, sealed through epoch %" G_GINT64_FORMAT
                           " (retention %u days)", first, through, epoch,
                           s->retention_days);
  rec.detail = words;
  if (!audit_append_locked (a, &rec, 1, NULL, error))
    return FALSE;
  return s->sec.key == NULL || audit_seal_locked (a, error);
}
