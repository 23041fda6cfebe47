/*
 * audit_verify.c - checks an audit file from the published value on.
 * See audit_verify.h for what a pass proves and what it cannot.
 *
 * Order: the kept seals of purged rows (each one's hash, epoch and
 * signature, chained by prev_seal), then every chain row (sequence,
 * link, own hash, event; time never back nor far ahead; seal rows:
 * epoch is the one before plus one, prev_seal names the seal before,
 * and the signature verifies under the public key the seal before named
 * - for epoch 0, the published value), then the whole-file rules (some
 * seal exists, the tail is sealed, the newest purge is sealed and was
 * allowed, the last seal is recent enough), the append-only triggers,
 * that every clear address kept beside the chain matches its keyed hash,
 * and last the anchors.
 *
 * What it trusts: nothing in the file or the anchors.  Speed: one
 * SHA-256 per row and one Ed25519 verification per seal.
 */
#include "audit_verify.h"

#include <stdio.h>
#include <string.h>

#include "audit_store.h"

#define DAY_MS (G_GINT64_CONSTANT (24) * 3600 * 1000)
/* A row dated more than this after the verifier's clock is forged or
 * was written under a wrong clock: either way not evidence of its time. */
#define FUTURE_SLACK_MS DAY_MS

static const char *const audit_triggers[] = {
  "audit_no_update", "audit_no_delete", "audit_kept_seal_no_update",
  "audit_kept_seal_no_delete",
};

typedef struct {
  const AuditVerifyOptions *o;
  AuditVerifyReport *rep;
  AuditPublicKey pk;        /* the key of the next seal's epoch */
  gboolean have_pk;
  gint64 expect_epoch;
  char prev_seal[SHA256_HEX_SIZE];       /* row_hash of the last seal seen */
  gint64 last_time;
  gint64 now_ms;
  /* the newest `purged` row so far and whether a seal came after it */
  gint64 purged_seq, purged_time, purged_through;
  gboolean purged_sealed;
  GHashTable *named;        /* keyed hashes the rows name -> first seq */
  GHashTable *erased;       /* keyed hashes `erased` rows name */
} AuditVerifier;

static char *
verify_time (gint64 ms)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (ms / 1000);

  return dt ? g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup ("?");
}

/* Row times never go back (the store keeps them in order even when the
 * clock steps back) and are not far ahead of the verifier's clock. */
static gboolean
verify_row_time (AuditVerifier *v, gint64 seq, gint64 t, GError **error)
{
  if (t < v->last_time)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": time goes back"
                         " %" G_GINT64_FORMAT " ms before the row before;"
                         " the daemon never writes that (edited or forged)",
                         seq, v->last_time - t);
  if (t > v->now_ms + FUTURE_SLACK_MS)
    {
      g_autofree char *when = verify_time (t);
      return audit_broken (error, "row %" G_GINT64_FORMAT ": dated %s, in"
                           " the future (forged, or written under a wrong"
                           " clock)", seq, when);
    }
  v->last_time = t;
  return TRUE;
}

/* A seal: epoch continuity, the seal before, the signature, then the
 * key it names becomes the next one's. */
static gboolean
verify_seal (AuditVerifier *v, const AuditSealInput *in, const char *sig,
             const char *row_hash, GError **error)
{
  AuditVerifyReport *rep = v->rep;

  if (in->epoch != v->expect_epoch)
    return v->expect_epoch == 0
      ? audit_broken (error, "row %" G_GINT64_FORMAT ": the first seal is of"
                      " epoch %" G_GINT64_FORMAT ", not 0: the chain does not"
                      " begin at the published value", in->seq, in->epoch)
      : audit_broken (error, "row %" G_GINT64_FORMAT ": seal of epoch %"
                      G_GINT64_FORMAT " where epoch %" G_GINT64_FORMAT " was"
                      " due (a seal is missing, replayed or out of order)",
                      in->seq, in->epoch, v->expect_epoch);
  if (g_strcmp0 (in->prev_seal, v->prev_seal) != 0)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": the seal does not"
                         " name the seal before it (one was removed or"
                         " replaced)", in->seq);
  if (!audit_is_hex64 (in->next_key) || sig == NULL)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": seal row without"
                         " next key or signature", in->seq);
  if (v->have_pk && !audit_seal_check (&v->pk, in, sig))
    return in->epoch == 0
      ? audit_broken (error, "row %" G_GINT64_FORMAT ": the first seal is not"
                      " signed by the published value given (another log's"
                      " value, or a forged start)", in->seq)
      : audit_broken (error, "row %" G_GINT64_FORMAT ": seal (epoch %"
                      G_GINT64_FORMAT ") signature does not verify: rows"
                      " before it were changed after sealing, or the seal"
                      " was forged", in->seq, in->epoch);
  if (v->have_pk)
    rep->seals_checked++;
  audit_unhex (in->next_key, v->pk.pk, 32);
  v->have_pk = TRUE;
  v->expect_epoch++;
  g_strlcpy (v->prev_seal, row_hash, sizeof v->prev_seal);
  if (rep->n_seals++ == 0)
    rep->first_seal_time_ms = in->time_ms;
  rep->last_seal_seq = in->seq;
  rep->last_seal_epoch = in->epoch;
  rep->last_seal_time_ms = in->time_ms;
  v->purged_sealed = v->purged_seq > 0;
  return TRUE;
}

static gboolean
verify_seal_row (AuditVerifier *v, sqlite3_stmt *st, GError **error)
{
  AuditSealInput in = {
    sqlite3_column_int64 (st, C_SEQ), sqlite3_column_int64 (st, C_TIME),
    sqlite3_column_int64 (st, C_EPOCH),
    (const char *) sqlite3_column_text (st, C_PREV),
    (const char *) sqlite3_column_text (st, C_PREV_SEAL),
    (const char *) sqlite3_column_text (st, C_NEXT_KEY),
    (const char *) sqlite3_column_text (st, C_DETAIL)
  };

  if (sqlite3_column_type (st, C_EPOCH) == SQLITE_NULL)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": seal row without"
                         " epoch", in.seq);
  return verify_seal (v, &in, (const char *) sqlite3_column_text (st, C_SEAL),
                      (const char *) sqlite3_column_text (st, C_ROW_HASH),
                      error);
}

/* The words of a `purged` row: "rows A-B purged, ..." */
static void
verify_note_purge (AuditVerifier *v, sqlite3_stmt *st)
{
  const char *d = (const char *) sqlite3_column_text (st, C_DETAIL);
  gint64 first = 0, through = 0;

  if (d != NULL && sscanf (d, "rows %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT,
                           &first, &through) == 2)
    {
      v->purged_seq = sqlite3_column_int64 (st, C_SEQ);
      v->purged_time = sqlite3_column_int64 (st, C_TIME);
      v->purged_through = through;
      v->purged_sealed = FALSE;
    }
}

/* The keyed hash an `erased` row names ("keyed hash HEX"). */
static void
verify_note_erased (AuditVerifier *v, sqlite3_stmt *st)
{
  const char *d = (const char *) sqlite3_column_text (st, C_DETAIL);
  const char *p = d != NULL ? strstr (d, "keyed hash ") : NULL;
  char h[SHA256_HEX_SIZE];

  if (p == NULL)
    return;
  g_strlcpy (h, p + strlen ("keyed hash "), sizeof h);
  if (audit_is_hex64 (h))
    g_hash_table_add (v->erased, g_strdup (h));
}

/* Row checks beyond the chain: seal fields only on seal rows. */
static gboolean
verify_kind (AuditVerifier *v, sqlite3_stmt *st, GError **error)
{
  const char *event = (const char *) sqlite3_column_text (st, C_EVENT);
  gint64 seq = sqlite3_column_int64 (st, C_SEQ);

  if (g_strcmp0 (event, "sealed") == 0)
    return verify_seal_row (v, st, error);
  for (int c = C_EPOCH; c <= C_PREV_SEAL; c++)
    if (sqlite3_column_type (st, c) != SQLITE_NULL)
      return audit_broken (error, "row %" G_GINT64_FORMAT ": seal fields on"
                           " a %s row", seq, event);
  if (g_strcmp0 (event, "purged") == 0)
    verify_note_purge (v, st);
  if (g_strcmp0 (event, "erased") == 0 && v->erased != NULL)
    verify_note_erased (v, st);
  if (g_strcmp0 (event, "clock_back") == 0 && v->rep->n_clock_back++ == 0)
    v->rep->first_clock_back_seq = seq;
  return TRUE;
}

/* The kept seals of purged rows: each one's own hash, in order, and the
 * seal chain through them. */
static gboolean
verify_kept (AuditVerifier *v, sqlite3 *db, char prev[SHA256_HEX_SIZE], gint64 *expect,
             GError **error)
{
  sqlite3_stmt *st = NULL;
  gint64 last = 0;
  gboolean ok = TRUE;
  int rc;

  if (sqlite3_prepare_v2 (db, "SELECT " AUDIT_KEPT_SEAL_COLUMNS " FROM"
                          " audit_kept_seal ORDER BY seq", -1, &st, NULL)
      != SQLITE_OK)
    return audit_fail (db, error, "verify kept seals");
  while (ok && (rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      gint64 seq = sqlite3_column_int64 (st, C_SEQ);
      char p[SHA256_HEX_SIZE];

      const char *cprev = (const char *) sqlite3_column_text (st, C_PREV);

      /* A hostile file may have no such constraint as NOT NULL. */
      g_strlcpy (p, cprev != NULL ? cprev : "", sizeof p);
      ok = (seq > last || audit_broken (error, "kept seal %" G_GINT64_FORMAT
                                        ": out of order", seq))
           && audit_check_row (st, seq, p, error)
           && verify_row_time (v, seq, sqlite3_column_int64 (st, C_TIME),
                               error)
           && verify_seal_row (v, st, error);
      if (!ok)
        g_prefix_error (error, "kept seal of purged rows: ");
      last = seq;
      memcpy (prev, p, SHA256_HEX_SIZE);
      v->rep->n_kept_seals++;
      v->rep->checkpoint_seq = seq;
      v->rep->checkpoint_time_ms = sqlite3_column_int64 (st, C_TIME);
    }
  if (ok && rc != SQLITE_DONE)
    ok = audit_fail (db, error, "verify kept seals");
  sqlite3_finalize (st);
  *expect = last + 1;
  return ok;
}

/* Notes the keyed hashes a row names (comma-joined 64-hex tokens),
 * each once, without allocating for one seen before. */
static void
verify_note_named (AuditVerifier *v, sqlite3_stmt *st, gint64 seq)
{
  const char *p = (const char *) sqlite3_column_text (st, C_RCPTS);
  char h[SHA256_HEX_SIZE];

  while (p != NULL && *p != '\0')
    {
      const char *end = strchr (p, ',');
      gsize len = end != NULL ? (gsize) (end - p) : strlen (p);

      if (len == SHA256_HEX_LEN)
        {
          memcpy (h, p, SHA256_HEX_LEN);
          h[SHA256_HEX_LEN] = '\0';
          if (!g_hash_table_contains (v->named, h))
            g_hash_table_insert (v->named, g_strdup (h),
                                 GINT_TO_POINTER ((gint) MIN (seq, G_MAXINT)));
        }
      p = end != NULL ? end + 1 : p + len;
    }
}

static gboolean
verify_walk (AuditVerifier *v, sqlite3 *db, sqlite3_stmt *st, GError **error)
{
  AuditVerifyReport *rep = v->rep;
  char prev[SHA256_HEX_SIZE];
  gint64 expect = 1;
  int rc;

  memcpy (prev, AUDIT_ZERO_HASH, SHA256_HEX_SIZE);
  if (!verify_kept (v, db, prev, &expect, error))
    return FALSE;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      if (!audit_check_row (st, expect, prev, error)
          || (!v->o->chain_only
              && (!verify_row_time (v, expect,
                                    sqlite3_column_int64 (st, C_TIME), error)
                  || !verify_kind (v, st, error))))
        return FALSE;
      if (v->named != NULL)
        verify_note_named (v, st, expect);
      if (rep->first_seq == 0)
        rep->first_seq = expect;
      rep->last_seq = expect++;
      rep->n_rows++;
    }
  return rc == SQLITE_DONE || audit_fail (db, error, "verify");
}

/* A purge is evidence only when a sealed `purged` row names it and the
 * retention its last seal signed allowed it at that row's time. */
static gboolean
verify_purge (AuditVerifier *v, sqlite3 *db, GError **error)
{
  gint64 cp = v->rep->checkpoint_seq, days;
  g_autofree char *detail = NULL;
  sqlite3_stmt *st = NULL;

  if (cp == 0)
    return TRUE;
  if (v->purged_seq == 0 || v->purged_through != cp)
    return audit_broken (error, "rows 1-%" G_GINT64_FORMAT " are gone but no"
                         " `purged` row in the chain names that purge: not"
                         " a retention purge made by invitemail", cp);
  if (!v->purged_sealed)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": the purge it"
                         " records is not sealed", v->purged_seq);
  if (sqlite3_prepare_v2 (db, "SELECT detail FROM audit_kept_seal WHERE"
                          " seq = ?1", -1, &st, NULL) == SQLITE_OK)
    {
      sqlite3_bind_int64 (st, 1, cp);
      if (sqlite3_step (st) == SQLITE_ROW)
        detail = g_strdup ((const char *) sqlite3_column_text (st, 0));
    }
  sqlite3_finalize (st);
  days = audit_seal_retention (detail);
  if (days <= 0 || v->rep->checkpoint_time_ms + days * DAY_MS
                   > v->purged_time)
    return audit_broken (error, "row %" G_GINT64_FORMAT ": purge of rows"
                         " sealed by row %" G_GINT64_FORMAT " before the"
                         " retention that seal signed (%" G_GINT64_FORMAT
                         " days) had passed", v->purged_seq, cp, days);
  return TRUE;
}

/* The rules about the file as a whole, after the walk. */
static gboolean
verify_whole (AuditVerifier *v, sqlite3 *db, GError **error)
{
  AuditVerifyReport *rep = v->rep;
  gint64 sealed = MAX (rep->last_seal_seq, rep->checkpoint_seq);

  rep->unsealed = rep->last_seq > sealed ? rep->last_seq - sealed : 0;
  if (v->o->chain_only)
    return TRUE;
  if (rep->n_seals == 0)
    return audit_broken (error, "NO SEALS: nothing in this file is protected"
                         " by a seal (run `invitemail audit init` once)");
  if (rep->unsealed > 0 && !v->o->allow_unsealed_tail)
    return audit_broken (error, "rows %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT
                         " (%" G_GINT64_FORMAT ") come after the last seal and"
                         " are not protected by it; a stopped daemon seals"
                         " its last row (for a live file give"
                         " --allow-unsealed-tail)", sealed + 1, rep->last_seq,
                         rep->unsealed);
  if (!verify_purge (v, db, error))
    return FALSE;
  if (v->o->max_age_ms > 0
      && v->now_ms - rep->last_seal_time_ms > v->o->max_age_ms)
    {
      g_autofree char *t = verify_time (rep->last_seal_time_ms);
      return audit_broken (error, "the last seal (row %" G_GINT64_FORMAT
                           ", %s) is %" G_GINT64_FORMAT " s old, more than"
                           " --max-age %" G_GINT64_FORMAT " s: a stale or"
                           " cut copy, or the daemon stopped sealing",
                           rep->last_seal_seq, t,
                           (v->now_ms - rep->last_seal_time_ms) / 1000,
                           v->o->max_age_ms / 1000);
    }
  return TRUE;
}

/* Missing or altered append-only triggers: names joined, NULL if none. */
static char *
verify_missing_triggers (sqlite3 *db)
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

/* A kept clear address must be the one its keyed hash names. */
static gboolean
verify_address_rows (sqlite3 *db, const guint8 key[32], GError **error)
{
  sqlite3_stmt *st = NULL;
  gboolean ok = TRUE;
  int rc = SQLITE_DONE;

  if (sqlite3_prepare_v2 (db, "SELECT hash, address FROM audit_address"
                          " WHERE address IS NOT NULL", -1, &st, NULL)
      != SQLITE_OK)
    ok = audit_fail (db, error, "verify addresses");
  while (ok && (rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *h = (const char *) sqlite3_column_text (st, 0);
      char want[SHA256_HEX_SIZE];

      audit_address_hash (key, (const char *) sqlite3_column_text (st, 1),
                          want);
      if (g_strcmp0 (h, want) != 0)
        ok = audit_broken (error, "an address kept beside the chain does not"
                           " match its keyed hash %.12s...: the address"
                           " table was changed outside invitemail",
                           h != NULL ? h : "");
    }
  if (ok && rc != SQLITE_DONE)
    ok = audit_fail (db, error, "verify addresses");
  sqlite3_finalize (st);
  return ok;
}

/* Every keyed hash a row names is kept beside the chain, with its
 * address or as erased: a row deleted there would show a person as
 * erased who never was. */
static gboolean
verify_address_named (AuditVerifier *v, sqlite3 *db, GError **error)
{
  sqlite3_stmt *st = NULL;
  GHashTableIter it;
  gpointer h, seq;
  gboolean ok = TRUE;

  if (sqlite3_prepare_v2 (db, "SELECT 1 FROM audit_address WHERE hash = ?1",
                          -1, &st, NULL) != SQLITE_OK)
    return audit_fail (db, error, "verify addresses");
  g_hash_table_iter_init (&it, v->named);
  while (ok && g_hash_table_iter_next (&it, &h, &seq))
    {
      sqlite3_bind_text (st, 1, h, -1, SQLITE_STATIC);
      if (sqlite3_step (st) != SQLITE_ROW)
        ok = audit_broken (error, "row %d names an address that is neither"
                           " kept nor erased beside the chain: the address"
                           " table was changed outside invitemail",
                           GPOINTER_TO_INT (seq));
      sqlite3_reset (st);
    }
  sqlite3_finalize (st);
  return ok;
}

/* Every tombstone (an address erased) has its `erased` row in the
 * chain: one made outside invitemail would hide who was sent what. */
static gboolean
verify_address_erased (AuditVerifier *v, sqlite3 *db, GError **error)
{
  sqlite3_stmt *st = NULL;
  gboolean ok = TRUE;
  int rc = SQLITE_DONE;

  if (sqlite3_prepare_v2 (db, "SELECT hash FROM audit_address WHERE"
                          " address IS NULL", -1, &st, NULL) != SQLITE_OK)
    return audit_fail (db, error, "verify addresses");
  while (ok && (rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *h = (const char *) sqlite3_column_text (st, 0);

      if (h == NULL || !g_hash_table_contains (v->erased, h))
        ok = audit_broken (error, "an address beside the chain is marked"
                           " erased (%.12s...) but no `erased` row records"
                           " it: an erasure made outside invitemail",
                           h != NULL ? h : "");
    }
  if (ok && rc != SQLITE_DONE)
    ok = audit_fail (db, error, "verify addresses");
  sqlite3_finalize (st);
  return ok;
}

/* Each clear address kept beside the chain must be the one its keyed
 * hash names, and each one a row names must be there: the table is
 * outside the chain (so that it can be erased), so this is what keeps a
 * changed or removed address from being shown for a sealed row. */
static gboolean
verify_addresses (AuditVerifier *v, sqlite3 *db, GError **error)
{
  guint8 key[32];
  gboolean ok;

  if (!audit_address_key_load (db, key, error))
    return FALSE;
  ok = verify_address_rows (db, key, error)
       && verify_address_named (v, db, error)
       && verify_address_erased (v, db, error);
  explicit_bzero (key, sizeof key);
  return ok;
}

/* One anchor against the file: the row of its seq must be a seal with
 * the same hash, epoch and time. */
static gboolean
verify_anchor (sqlite3_stmt *st, const AuditAnchor *h, GError **error)
{
  g_autofree char *t = verify_time (h->time_ms);
  int rc;

  sqlite3_reset (st);
  sqlite3_bind_int64 (st, 1, h->seq);
  rc = sqlite3_step (st);
  if (rc != SQLITE_ROW)
    return audit_broken (error, "anchored head row %" G_GINT64_FORMAT
                         " (epoch %" G_GINT64_FORMAT ", %s) is missing from"
                         " the file: it was cut, lost a seal, or is an older"
                         " copy", h->seq, h->epoch, t);
  if (g_strcmp0 ((const char *) sqlite3_column_text (st, 0), "sealed") != 0
      || g_strcmp0 ((const char *) sqlite3_column_text (st, 1), h->hash) != 0
      || sqlite3_column_int64 (st, 2) != h->epoch
      || sqlite3_column_int64 (st, 3) != h->time_ms)
    return audit_broken (error, "row %" G_GINT64_FORMAT " contradicts the"
                         " head anchored in the system log (epoch %"
                         G_GINT64_FORMAT ", %s): the file was rewritten or"
                         " rolled back", h->seq, h->epoch, t);
  return TRUE;
}

static gboolean
verify_anchors (AuditVerifier *v, sqlite3 *db, GError **error)
{
  const GArray *hs = v->o->anchors;
  sqlite3_stmt *st = NULL;
  gboolean ok = TRUE;

  if (hs == NULL)
    return TRUE;
  if (sqlite3_prepare_v2 (db, "SELECT event, row_hash, epoch, time_ms FROM"
                          " audit WHERE seq = ?1 UNION ALL SELECT 'sealed',"
                          " row_hash, epoch, time_ms FROM audit_kept_seal"
                          " WHERE seq = ?1", -1, &st, NULL) != SQLITE_OK)
    return audit_fail (db, error, "verify anchors");
  for (guint i = 0; ok && i < hs->len; i++)
    {
      const AuditAnchor *h = &g_array_index (hs, AuditAnchor, i);

      ok = verify_anchor (st, h, error);
      v->rep->anchors_checked += ok;
      if (ok && h->seq > v->rep->newest_anchor_seq)
        v->rep->newest_anchor_seq = h->seq;
    }
  sqlite3_finalize (st);
  return ok;
}

gboolean
audit_verify_full (const char *path, const AuditVerifyOptions *o,
                   AuditVerifyReport *rep, GError **error)
{
  static const AuditVerifyOptions none = { 0 };
  AuditVerifier v = { .o = o != NULL ? o : &none, .rep = rep };
  g_autofree char *missing = NULL;
  sqlite3_stmt *st = NULL;
  sqlite3 *db;
  gboolean ok;

  g_return_val_if_fail (path != NULL && rep != NULL, FALSE);
  *rep = (AuditVerifyReport) { .last_seal_epoch = -1 };
  memcpy (v.prev_seal, AUDIT_ZERO_HASH, SHA256_HEX_SIZE);
  v.now_ms = v.o->now_ms > 0 ? v.o->now_ms : g_get_real_time () / 1000;
  if (v.o->key != NULL)
    {
      v.pk = *v.o->key;
      v.have_pk = TRUE;
    }
  db = audit_open_read (path, "SELECT " AUDIT_COLUMNS
                        " FROM audit ORDER BY seq", &st, error);
  if (db == NULL)
    return FALSE;
  if (!v.o->chain_only)
    {
      v.named = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      v.erased = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    }
  ok = verify_walk (&v, db, st, error) && verify_whole (&v, db, error);
  sqlite3_finalize (st);
  if (ok && (missing = verify_missing_triggers (db)) != NULL)
    ok = audit_broken (error, "append-only trigger(s) missing or altered:"
                       " %s (the file was changed outside invitemail)",
                       missing);
  ok = ok && (v.o->chain_only || verify_addresses (&v, db, error))
       && verify_anchors (&v, db, error);
  g_clear_pointer (&v.named, g_hash_table_unref);
  g_clear_pointer (&v.erased, g_hash_table_unref);
  sqlite3_close_v2 (db);
  return ok;
}

gboolean
audit_verify (const char *path, gint64 *n_rows, GError **error)
{
  AuditVerifyOptions o = { .chain_only = TRUE };
  AuditVerifyReport rep;
  gboolean ok = audit_verify_full (path, &o, &rep, error);

  if (n_rows != NULL)
    *n_rows = rep.n_rows;
  return ok;
}
