/*
 * audit_seal.c - forward-secure seals over the audit chain, the epoch
 * key and its file, `audit init`, and retention (purge to a checkpoint).
 *
 * The design (after journald's forward-secure sealing, with an HMAC
 * chain instead of its FSPRG): K_0 is 32 random bytes that compliance
 * keeps off the host.  A seal row (event "sealed", epoch e) carries
 * HMAC-SHA256 (K_e, "invitemail-seal" NUL seq NUL e NUL time_ms NUL
 * prev_hash): prev_hash commits to every row before it.  Right after the
 * seal commits, K_e becomes K_{e+1} = SHA-256 ("invitemail-evolve" ||
 * K_e) on disk and in memory, and K_e is wiped.  An intruder who later
 * reads K_n can seal only epochs >= n; any row before the last seal of
 * epoch n-1 that they change breaks a seal they cannot recompute, and
 * `verify --key` (K_0, forward) finds it.
 *
 * The key file: text "epoch N" and "key HEX" lines, mode 0600, replaced
 * by temp file + fsync + rename + fsync of the folder; the old file's
 * bytes are then overwritten through a descriptor opened before the
 * rename.  Limits: on a copy-on-write or wear-levelled medium the old
 * blocks may survive; keep the key file on a plain local file system.
 *
 * Retention: audit_purge deletes whole sealed epochs only, through the
 * purge gate (audit.c: a row in audit_purge_token, inserted and removed
 * inside the purge's own transaction), after recording a checkpoint
 * with everything needed to recompute the last purged seal row's hash
 * and, with a key, its MAC; verify continues from it.
 *
 * What it trusts: the key file (written by us, 0600, refused when group
 * or others may read it).  Secrets: keys are wiped (explicit_bzero)
 * before their memory is freed or reused; they are never logged.
 */
#include "audit_private.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ---- keys -------------------------------------------------------------- */

void
audit_key_wipe (AuditKey *k)
{
  if (k != NULL)
    explicit_bzero (k, sizeof *k);
}

static void
audit_wipe_free (char *s)
{
  if (s != NULL)
    explicit_bzero (s, strlen (s));
  g_free (s);
}

void
audit_key_evolve (AuditKey *k)
{
  static const char label[] = "invitemail-evolve";
  guint8 buf[sizeof label - 1 + 32];
  unsigned int n = 0;

  memcpy (buf, label, sizeof label - 1);
  memcpy (buf + sizeof label - 1, k->key, 32);
  /* EVP_Digest fails only without memory; then the key is zeroed
   * rather than kept, so no later seal can verify (loud, not silent). */
  if (!EVP_Digest (buf, sizeof buf, k->key, &n, EVP_sha256 (), NULL)
      || n != 32)
    explicit_bzero (k->key, 32);
  explicit_bzero (buf, sizeof buf);
  k->epoch++;
}

void
audit_key_commitment (const AuditKey *k, char out[65])
{
  static const char label[] = "invitemail-commit";
  guint8 buf[sizeof label - 1 + 32];

  memcpy (buf, label, sizeof label - 1);
  memcpy (buf + sizeof label - 1, k->key, 32);
  audit_sha256_hex (buf, sizeof buf, out);
  explicit_bzero (buf, sizeof buf);
}

void
audit_seal_mac (const AuditKey *k, gint64 seq, gint64 epoch, gint64 time_ms,
                const char *prev, char out[65])
{
  guint8 md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  char msg[256];
  int len;

  /* NUL separators: the decimal fields cannot contain one, so the
   * message splits one way only. */
  len = g_snprintf (msg, sizeof msg, "invitemail-seal%c%" G_GINT64_FORMAT
                    "%c%" G_GINT64_FORMAT "%c%" G_GINT64_FORMAT "%c%.64s", 0,
                    seq, 0, epoch, 0, time_ms, 0, prev);
  out[0] = '\0';
  if (len > 0 && len < (int) sizeof msg
      && HMAC (EVP_sha256 (), k->key, 32, (const guint8 *) msg, (size_t) len,
               md, &n) != NULL && n == 32)
    audit_hex (md, 32, out);
}

static gboolean
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

/* Parses "epoch N" / "key HEX" lines, or a lone 64-hex token (epoch 0);
 * '#' starts a comment. */
static gboolean
audit_key_parse (char *text, AuditKey *out)
{
  gboolean have_key = FALSE;
  char *save = NULL;

  out->epoch = 0;
  for (char *line = strtok_r (text, "\n", &save); line != NULL;
       line = strtok_r (NULL, "\n", &save))
    {
      char *word = g_strstrip (line);
      char *val;

      if (*word == '#' || *word == '\0')
        continue;
      if (g_str_has_prefix (word, "epoch ") && (val = word + 6) != NULL)
        {
          char *end = NULL;
          out->epoch = g_ascii_strtoll (val, &end, 10);
          if (end == val || *end != '\0' || out->epoch < 0)
            return FALSE;
          continue;
        }
      if (g_str_has_prefix (word, "key "))
        word = g_strchug (word + 4);
      if (have_key || !audit_unhex (word, out->key, 32))
        return FALSE;
      have_key = TRUE;
    }
  return have_key;
}

gboolean
audit_key_read (const char *path, AuditKey *out, GError **error)
{
  char *text = NULL;
  gsize len = 0;
  gboolean ok;

  g_return_val_if_fail (path != NULL && out != NULL, FALSE);
  if (!g_file_get_contents (path, &text, &len, error))
    return FALSE;
  ok = audit_key_parse (text, out);
  explicit_bzero (text, len);
  g_free (text);
  if (!ok)
    {
      audit_key_wipe (out);
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                   "%s: not an audit key (64 hex digits, or the daemon's"
                   " \"epoch N\" and \"key HEX\" lines)", path);
    }
  return ok;
}

static gboolean
audit_errno (GError **error, const char *what, const char *path)
{
  int saved = errno;

  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit key %s %s: %s",
               what, path, g_strerror (saved));
  return FALSE;
}

static gboolean
audit_write_all (int fd, const char *buf, gsize len)
{
  while (len > 0)
    {
      ssize_t w = write (fd, buf, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return FALSE;
      buf += w;
      len -= (gsize) w;
    }
  return TRUE;
}

/* The new key durably in a temp file beside path (0600). */
static gboolean
audit_key_write_temp (const char *tmp, const AuditKey *k, GError **error)
{
  char hex[65];
  char *text;
  gboolean ok;
  int fd;

  unlink (tmp);
  fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return audit_errno (error, "create", tmp);
  audit_hex (k->key, 32, hex);
  text = g_strdup_printf ("# invitemail audit key: secret, evolves at every"
                          " seal\nepoch %" G_GINT64_FORMAT "\nkey %s\n",
                          k->epoch, hex);
  explicit_bzero (hex, sizeof hex);
  ok = fchmod (fd, 0600) == 0 && audit_write_all (fd, text, strlen (text))
       && fsync (fd) == 0;
  audit_wipe_free (text);
  if (!ok)
    {
      audit_errno (error, "write", tmp);
      close (fd);
      unlink (tmp);
      return FALSE;
    }
  return close (fd) == 0 || audit_errno (error, "close", tmp);
}

/* Overwrites what an old key file held (through a descriptor opened
 * before the rename), so the old key does not linger in its blocks. */
static void
audit_key_shred (int fd)
{
  struct stat st;
  char zero[128] = { 0 };

  if (fd < 0)
    return;
  if (fstat (fd, &st) == 0 && st.st_size > 0)
    for (off_t off = 0; off < st.st_size; off += (off_t) sizeof zero)
      if (pwrite (fd, zero, sizeof zero, off) < 0)
        break;
  fsync (fd);
  close (fd);
}

static gboolean
audit_key_write (const char *path, const AuditKey *k, GError **error)
{
  g_autofree char *tmp = g_strconcat (path, ".new", NULL);
  g_autofree char *dir = g_path_get_dirname (path);
  gboolean ok = TRUE;
  int old, dfd;

  if (!audit_key_write_temp (tmp, k, error))
    return FALSE;
  old = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (rename (tmp, path) != 0)
    {
      audit_errno (error, "rename", path);
      unlink (tmp);
      if (old >= 0)
        close (old);
      return FALSE;
    }
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync (dfd) != 0)
    ok = audit_errno (error, "sync folder of", path);
  if (dfd >= 0)
    close (dfd);
  audit_key_shred (old);
  return ok;
}

/* ---- opening with a key ------------------------------------------------ */

/* The daemon's key must be private: refuse a key file others can read. */
static gboolean
audit_key_load_private (Audit *a, GError **error)
{
  struct stat st;

  if (lstat (a->key_path, &st) != 0)
    return errno == ENOENT || audit_errno (error, "stat", a->key_path);
  if (!S_ISREG (st.st_mode) || (st.st_mode & 077) != 0)
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                   "audit key %s: must be a regular file of mode 0600",
                   a->key_path);
      return FALSE;
    }
  if (!audit_key_read (a->key_path, &a->ks.key, error))
    return FALSE;
  a->ks.have = TRUE;
  return TRUE;
}

/* A crash between a seal's commit and the key write leaves the file one
 * epoch behind: move it forward (never back) to the next seal's epoch. */
static gboolean
audit_key_catch_up (Audit *a, GError **error)
{
  gboolean moved = FALSE;

  while (a->ks.key.epoch < a->next_epoch)
    {
      audit_key_evolve (&a->ks.key);
      moved = TRUE;
    }
  a->next_epoch = a->ks.key.epoch;
  return !moved || audit_key_write (a->key_path, &a->ks.key, error);
}

/* Group read for compliance on the database and the files SQLite keeps
 * beside it (LIBS.md 6: a reader needs -wal and -shm readable too). */
static gboolean
audit_share (const Audit *a, GError **error)
{
  static const char *const suffix[] = { "", "-wal", "-shm", ".lock" };
  struct group *gr;

  if (a->group == NULL)
    return TRUE;
  if ((gr = getgrnam (a->group)) == NULL)
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                   "audit group %s: no such group", a->group);
      return FALSE;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (suffix); i++)
    {
      g_autofree char *f = g_strconcat (a->path, suffix[i], NULL);

      if (!g_file_test (f, G_FILE_TEST_EXISTS))
        continue;
      if (chown (f, (uid_t) -1, gr->gr_gid) != 0 || chmod (f, 0640) != 0)
        return audit_errno (error, "share", f);
    }
  return TRUE;
}

Audit *
audit_open_sealing (const char *path, const AuditSealConfig *cfg,
                    GError **error)
{
  g_autoptr (Audit) a = NULL;

  g_return_val_if_fail (path != NULL && cfg != NULL, NULL);
  if ((a = audit_open (path, error)) == NULL)
    return NULL;
  a->key_path = g_strdup (cfg->key_file);
  a->group = g_strdup (cfg->group);
  a->retention_days = cfg->retention_days;
  if (!audit_share (a, error))
    return NULL;
  if (a->key_path != NULL
      && (!audit_key_load_private (a, error)
          || (a->ks.have && !audit_key_catch_up (a, error))))
    return NULL;
  return g_steal_pointer (&a);
}

gboolean
audit_sealing (Audit *a)
{
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_val_if_fail (a != NULL, FALSE);
  locker = g_mutex_locker_new (&a->lock);
  return a->ks.have;
}

/* ---- sealing ----------------------------------------------------------- */

/* Writes the seal row (epoch a->next_epoch), then evolves the key. */
static gboolean
audit_seal_locked (Audit *a, const char *detail, GError **error)
{
  g_autofree char *words = NULL;
  AuditRecord rec = { .event = AUDIT_SEALED, .peer_uid = -1 };

  words = detail != NULL ? g_strdup (detail)
    : g_strdup_printf ("epoch %" G_GINT64_FORMAT, a->next_epoch);
  rec.detail = words;
  a->ks.key.epoch = a->next_epoch;
  if (!audit_append_locked (a, &rec, 1, error))
    return FALSE;
  /* The seal is durable: from here on K_e must not survive. */
  audit_key_evolve (&a->ks.key);
  a->next_epoch = a->ks.key.epoch;
  return audit_key_write (a->key_path, &a->ks.key, error);
}

gboolean
audit_seal (Audit *a, GError **error)
{
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_val_if_fail (a != NULL, FALSE);
  locker = g_mutex_locker_new (&a->lock);
  if (!a->ks.have)
    return TRUE;
  return audit_seal_locked (a, NULL, error);
}

gboolean
audit_init (const char *path, const AuditSealConfig *cfg,
            char initial_hex[65], GError **error)
{
  g_autoptr (Audit) a = NULL;
  g_autofree char *detail = NULL;
  char commit[65];

  g_return_val_if_fail (path != NULL && cfg != NULL && cfg->key_file, FALSE);
  if (g_file_test (cfg->key_file, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit key %s exists"
                   " already: audit init runs once", cfg->key_file);
      return FALSE;
    }
  if ((a = audit_open_sealing (path, cfg, error)) == NULL)
    return FALSE;
  if (a->next_epoch != 0)
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "%s holds seals"
                   " already but its key file is missing: restore it", path);
      return FALSE;
    }
  if (getrandom (a->ks.key.key, 32, 0) != 32)
    return audit_errno (error, "random for", cfg->key_file);
  a->ks.have = TRUE;
  audit_key_commitment (&a->ks.key, commit);
  detail = g_strdup_printf ("initial key, commitment %s", commit);
  audit_hex (a->ks.key.key, 32, initial_hex);
  if (!audit_seal_locked (a, detail, error))
    {
      explicit_bzero (initial_hex, 65);
      return FALSE;
    }
  return TRUE;
}

/* ---- retention --------------------------------------------------------- */

gboolean
audit_checkpoint_head (sqlite3 *db, gint64 *seq, char hash[65])
{
  sqlite3_stmt *st = NULL;
  int rc;

  *seq = 0;
  memcpy (hash, AUDIT_ZERO_HASH, 65);
  if (sqlite3_prepare_v2 (db, "SELECT seq, row_hash FROM audit_checkpoint"
                          " ORDER BY seq DESC LIMIT 1", -1, &st, NULL)
      != SQLITE_OK)
    return FALSE;
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      const char *h = (const char *) sqlite3_column_text (st, 1);
      *seq = sqlite3_column_int64 (st, 0);
      g_strlcpy (hash, h != NULL ? h : "", 65);
    }
  sqlite3_finalize (st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

/* The newest seal older than cutoff: its seq (0 = none), -1 on error. */
static gint64
audit_purge_point (sqlite3 *db, gint64 cutoff, gint64 *epoch)
{
  sqlite3_stmt *st = NULL;
  gint64 seq = -1;
  int rc;

  if (sqlite3_prepare_v2 (db, "SELECT seq, epoch FROM audit WHERE event ="
                          " 'sealed' AND epoch IS NOT NULL AND time_ms < ?1"
                          " ORDER BY seq DESC LIMIT 1", -1, &st, NULL)
      != SQLITE_OK)
    return -1;
  sqlite3_bind_int64 (st, 1, cutoff);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    seq = rc == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : 0;
  if (rc == SQLITE_ROW)
    *epoch = sqlite3_column_int64 (st, 1);
  sqlite3_finalize (st);
  return seq;
}

/* Never purge evidence: the rows to go must verify first.  *first gets
 * the first seq checked. */
static gboolean
audit_check_range (sqlite3 *db, gint64 through, gint64 *first,
                   GError **error)
{
  sqlite3_stmt *st = NULL;
  char prev[65];
  gint64 expect;
  gboolean ok = TRUE;
  int rc = SQLITE_DONE;

  if (!audit_checkpoint_head (db, &expect, prev))
    return audit_fail (db, error, "read checkpoint");
  *first = ++expect;
  if (sqlite3_prepare_v2 (db, "SELECT " AUDIT_COLUMNS " FROM audit"
                          " WHERE seq <= ?1 ORDER BY seq", -1, &st, NULL)
      != SQLITE_OK)
    return audit_fail (db, error, "purge check");
  sqlite3_bind_int64 (st, 1, through);
  while (ok && (rc = sqlite3_step (st)) == SQLITE_ROW)
    ok = audit_verify_row (st, expect++, prev, error);
  if (ok && rc != SQLITE_DONE)
    ok = audit_fail (db, error, "purge check");
  sqlite3_finalize (st);
  return ok;
}

static gboolean
audit_exec_seq (sqlite3 *db, const char *sql, gint64 seq, gint64 a2,
                gint64 a3, GError **error)
{
  sqlite3_stmt *st = NULL;
  int rc;

  if (sqlite3_prepare_v2 (db, sql, -1, &st, NULL) != SQLITE_OK)
    return audit_fail (db, error, "purge");
  sqlite3_bind_int64 (st, 1, seq);
  sqlite3_bind_int64 (st, 2, a2);
  sqlite3_bind_int64 (st, 3, a3);
  rc = sqlite3_step (st);
  if (rc != SQLITE_DONE)
    audit_fail (db, error, "purge");
  sqlite3_finalize (st);
  return rc == SQLITE_DONE;
}

/* The checkpoint (a copy of seal row `through`), the gated delete, and
 * the gate closed again, in one transaction. */
static gboolean
audit_purge_txn (sqlite3 *db, gint64 through, gint64 first, gint64 now_ms,
                 GError **error)
{
  gboolean ok =
    audit_exec (db, "BEGIN IMMEDIATE", error)
    && audit_exec (db, "INSERT INTO audit_purge_token (id) VALUES (1)", error)
    && audit_exec_seq (db, "INSERT INTO audit_checkpoint (seq, time_ms,"
                       " epoch, prev_hash, seal, detail, row_hash, first_seq,"
                       " purged_at_ms) SELECT seq, time_ms, epoch, prev_hash,"
                       " seal, detail, row_hash, ?2, ?3 FROM audit"
                       " WHERE seq = ?1", through, first, now_ms, error)
    && audit_exec_seq (db, "DELETE FROM audit WHERE seq <= ?1", through, 0, 0,
                       error)
    && audit_exec (db, "DELETE FROM audit_purge_token", error)
    && audit_exec (db, "COMMIT", error);

  if (!ok && !sqlite3_get_autocommit (db))
    audit_exec (db, "ROLLBACK", NULL);
  return ok;
}

/*
 * The `purged` row is a second commit: if the daemon dies between the
 * two, the checkpoint table still says what was purged and when.
 */
gboolean
audit_purge (Audit *a, gint64 now_ms, GError **error)
{
  g_autoptr (GMutexLocker) locker = NULL;
  g_autofree char *words = NULL;
  AuditRecord rec = { .event = AUDIT_PURGED, .peer_uid = -1 };
  gint64 through, first = 0, epoch = -1;

  g_return_val_if_fail (a != NULL, FALSE);
  locker = g_mutex_locker_new (&a->lock);
  if (a->retention_days == 0)
    return TRUE;
  through = audit_purge_point (a->db, now_ms - (gint64) a->retention_days
                               * 24 * 3600 * 1000, &epoch);
  if (through < 0)
    return audit_fail (a->db, error, "purge");
  if (through == 0)
    return TRUE;
  if (!audit_check_range (a->db, through, &first, error)
      || !audit_purge_txn (a->db, through, first, now_ms, error))
    return FALSE;
  words = g_strdup_printf ("rows %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT
                           " purged, sealed through epoch %" G_GINT64_FORMAT
                           " (retention %u days)", first, through, epoch,
                           a->retention_days);
  rec.detail = words;
  return audit_append_locked (a, &rec, 1, error);
}
