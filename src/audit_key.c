/*
 * audit_key.c - Ed25519 keys of the audit's signature chain, the key
 * file, and the bytes a seal signs.  See audit_key.h.
 *
 * What a seal signs: the canonical encoding (4-byte big-endian length
 * and bytes per value, NULL as 0xFFFFFFFF) of the label
 * "invitemail-audit-seal-v3", seq, time_ms, epoch (decimal ASCII),
 * prev_hash, prev_seal, next_key and detail.  The label keeps a seal
 * signature from meaning anything else; the lengths make the split
 * unambiguous.
 *
 * What it trusts: the key file only after the descriptor it was read
 * through showed a regular file of ours with mode 0600 or stricter.
 * Secrets: the private keys live in EVP_PKEY objects (OpenSSL cleanses
 * them when freed); any copy in our buffers is wiped (explicit_bzero)
 * before it is freed.  Never logged.  Limits: on a copy-on-write or
 * wear-levelled medium an overwritten key file's old blocks may survive:
 * keep the key file on a plain local file system.
 */
#include "audit_key.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fileio.h"

#define KEY_FILE_MAX 4096

static const char seal_label[] = "invitemail-audit-seal-v3";

/* ---- public values ------------------------------------------------------ */

gboolean
audit_pubkey_parse (const char *text, AuditPublicKey *out)
{
  g_autofree char *t = g_strstrip (g_strdup (text != NULL ? text : ""));
  const char *hex = t;

  if (g_str_has_prefix (t, AUDIT_PUBKEY_PREFIX))
    hex = t + strlen (AUDIT_PUBKEY_PREFIX);
  return strlen (hex) == 64 && audit_unhex (hex, out->pk, 32);
}

gboolean
audit_pubkey_read (const char *path, AuditPublicKey *out, GError **error)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, error))
    return FALSE;
  if (strstr (text, "\nkey ") != NULL || g_str_has_prefix (text, "key "))
    {
      explicit_bzero (text, strlen (text));
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_FORMAT, "%s is a secret"
                   " key file, not the public value: verify needs only what"
                   " `invitemail audit init` printed (ed25519:...)", path);
      return FALSE;
    }
  lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l != NULL; l++)
    {
      char *w = g_strstrip (*l);

      if (*w == '#' || *w == '\0')
        continue;
      if (audit_pubkey_parse (w, out))
        return TRUE;
      break;
    }
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_FORMAT, "%s: not a public"
               " verification value (ed25519: and 64 hex digits, as `invitemail"
               " audit init` printed it)", path);
  return FALSE;
}

void
audit_pubkey_format (const AuditPublicKey *k, char *out)
{
  memcpy (out, AUDIT_PUBKEY_PREFIX, strlen (AUDIT_PUBKEY_PREFIX));
  hex_encode (k->pk, 32, out + strlen (AUDIT_PUBKEY_PREFIX));
}

/* ---- private keys --------------------------------------------------------- */

EVP_PKEY *
audit_secret_generate (GError **error)
{
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id (EVP_PKEY_ED25519, NULL);
  EVP_PKEY *k = NULL;

  if (ctx == NULL || EVP_PKEY_keygen_init (ctx) <= 0
      || EVP_PKEY_keygen (ctx, &k) <= 0)
    {
      EVP_PKEY_free (k);
      k = NULL;
      g_set_error_literal (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                           "audit key: Ed25519 key generation failed");
    }
  EVP_PKEY_CTX_free (ctx);
  return k;
}

gboolean
audit_secret_public_hex (EVP_PKEY *k, char out[SHA256_HEX_SIZE])
{
  guint8 pk[32];
  size_t len = sizeof pk;

  out[0] = '\0';
  if (k == NULL || EVP_PKEY_get_raw_public_key (k, pk, &len) != 1
      || len != 32)
    return FALSE;
  hex_encode (pk, 32, out);
  return TRUE;
}

/* The 32-byte seed of k as hex into out[SHA256_HEX_SIZE] (a secret: wipe it). */
static gboolean
audit_secret_hex (EVP_PKEY *k, char out[SHA256_HEX_SIZE])
{
  guint8 sk[32];
  size_t len = sizeof sk;
  gboolean ok = EVP_PKEY_get_raw_private_key (k, sk, &len) == 1 && len == 32;

  if (ok)
    hex_encode (sk, 32, out);
  explicit_bzero (sk, sizeof sk);
  return ok;
}

static EVP_PKEY *
audit_secret_from_hex (const char *hex)
{
  guint8 sk[32];
  EVP_PKEY *k = NULL;

  if (strlen (hex) == 64 && audit_unhex (hex, sk, 32))
    k = EVP_PKEY_new_raw_private_key (EVP_PKEY_ED25519, NULL, sk, 32);
  explicit_bzero (sk, sizeof sk);
  return k;
}

void
audit_secret_clear (AuditSecret *s)
{
  if (s == NULL)
    return;
  EVP_PKEY_free (s->key);
  EVP_PKEY_free (s->next);
  *s = (AuditSecret) { .epoch = -1 };
}

/* "epoch N", "key HEX" and optionally "next HEX" lines; '#' comments. */
static gboolean
audit_secret_parse (char *text, AuditSecret *out)
{
  char *save = NULL;

  for (char *line = strtok_r (text, "\n", &save); line != NULL;
       line = strtok_r (NULL, "\n", &save))
    {
      char *w = g_strstrip (line), *end = NULL;
      EVP_PKEY **slot = NULL;

      if (*w == '#' || *w == '\0')
        continue;
      if (g_str_has_prefix (w, "epoch "))
        {
          out->epoch = g_ascii_strtoll (w + 6, &end, 10);
          if (end == w + 6 || *end != '\0' || out->epoch < 0)
            return FALSE;
          continue;
        }
      if (g_str_has_prefix (w, "key "))
        slot = &out->key;
      else if (g_str_has_prefix (w, "next "))
        slot = &out->next;
      if (slot == NULL || *slot != NULL
          || (*slot = audit_secret_from_hex (g_strchug (strchr (w, ' '))))
             == NULL)
        return FALSE;
    }
  return out->key != NULL && out->epoch >= 0;
}

static gboolean
audit_errno (GError **error, const char *what, const char *path)
{
  int saved = errno;

  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit key %s %s: %s",
               what, path, g_strerror (saved));
  return FALSE;
}

/* Reads at most KEY_FILE_MAX bytes from fd into buf (NUL-terminated). */
static gssize
audit_read_fd (int fd, char *buf, gsize size)
{
  gsize got = 0;

  while (got < size - 1)
    {
      ssize_t r = read (fd, buf + got, size - 1 - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      if (r == 0)
        break;
      got += (gsize) r;
    }
  buf[got] = '\0';
  return (gssize) got;
}

/* The checks on the one descriptor: ours, regular, no group/other bits. */
static gboolean
audit_secret_fd_ok (int fd, const char *path, GError **error)
{
  struct stat st;

  if (fstat (fd, &st) != 0)
    return audit_errno (error, "stat", path);
  if (S_ISREG (st.st_mode) && st.st_uid == geteuid ()
      && (st.st_mode & 077) == 0)
    return TRUE;
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO, "audit key %s: must be a"
               " regular file owned by uid %u with mode 0600 (it is %s,"
               " uid %u, mode %04o)", path, (unsigned) geteuid (),
               S_ISREG (st.st_mode) ? "a file" : "not a regular file",
               (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
  return FALSE;
}

gboolean
audit_secret_load (const char *path, AuditSecret *out, gboolean *absent,
                   GError **error)
{
  char buf[KEY_FILE_MAX];
  gboolean ok;
  gssize n;
  int fd;

  *out = (AuditSecret) { .epoch = -1 };
  if (absent != NULL)
    *absent = FALSE;
  fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 && errno == ENOENT && absent != NULL)
    return (*absent = TRUE);
  if (fd < 0)
    return audit_errno (error, errno == ELOOP ? "(a symbolic link, refused)"
                        : "open", path);
  if (!audit_secret_fd_ok (fd, path, error))
    {
      close (fd);
      return FALSE;
    }
  n = audit_read_fd (fd, buf, sizeof buf);
  close (fd);
  ok = n > 0 && audit_secret_parse (buf, out);
  explicit_bzero (buf, sizeof buf);
  if (ok)
    return TRUE;
  audit_secret_clear (out);
  g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_FORMAT, "audit key %s: not an"
               " invitemail signing key file (\"epoch N\" and \"key HEX\""
               " lines)", path);
  return FALSE;
}

/* The key file's text (a secret: the caller wipes it). */
static char *
audit_secret_text (const AuditSecret *s)
{
  char key[SHA256_HEX_SIZE], next[SHA256_HEX_SIZE];
  char *text = NULL;

  if (!audit_secret_hex (s->key, key)
      || (s->next != NULL && !audit_secret_hex (s->next, next)))
    return NULL;
  text = g_strdup_printf ("# invitemail audit signing key: secret; replaced"
                          " at every seal\nepoch %" G_GINT64_FORMAT
                          "\nkey %s\n%s%s%s", s->epoch, key,
                          s->next != NULL ? "next " : "",
                          s->next != NULL ? next : "",
                          s->next != NULL ? "\n" : "");
  explicit_bzero (key, sizeof key);
  explicit_bzero (next, sizeof next);
  return text;
}

/* Overwrites what an old key file held (through a descriptor opened
 * before the rename), so the old key does not linger in its blocks. */
static void
audit_secret_shred (int fd)
{
  struct stat st;
  char zero[128] = { 0 };

  if (fd < 0)
    return;
  if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && st.st_size > 0)
    for (off_t off = 0; off < st.st_size; off += (off_t) sizeof zero)
      if (pwrite (fd, zero, sizeof zero, off) < 0)
        break;
  fsync (fd);
  close (fd);
}

gboolean
audit_secret_store (const char *path, const AuditSecret *s, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmp = g_strconcat (base, ".new", NULL);
  char *text = audit_secret_text (s);
  struct stat st;
  gboolean ok;
  int old, dfd;

  if (text == NULL)
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                   "audit key %s: cannot export the key", path);
      return FALSE;
    }
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  /* Opened before the rename: the old key's blocks, shredded after. */
  old = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  /* One fixed temporary name (PATH.new, 0600): a crash leaves at most
   * one copy of a key behind, and the next store removes it. */
  ok = dfd >= 0 && fileio_replace_at (dfd, base, tmp, text, strlen (text), 0600);
  if (!ok)
    audit_errno (error, "replace", path);
  explicit_bzero (text, strlen (text));
  g_free (text);
  if (dfd >= 0)
    close (dfd);
  /* Replaced (no name left), even when only the folder's fsync failed:
   * the old key goes.  Still named: it is the live key, kept. */
  if (old >= 0 && fstat (old, &st) == 0 && st.st_nlink == 0)
    audit_secret_shred (old);
  else if (old >= 0)
    close (old);
  return ok;
}

/* ---- what a seal signs ---------------------------------------------------- */

static void
audit_seal_put (GByteArray *b, const char *s)
{
  guint32 len = s != NULL ? (guint32) strlen (s) : 0xFFFFFFFFu;
  guint8 be[4] = { len >> 24, (len >> 16) & 0xff, (len >> 8) & 0xff,
                   len & 0xff };

  g_byte_array_append (b, be, 4);
  if (s != NULL)
    g_byte_array_append (b, (const guint8 *) s, len);
}

static GByteArray *
audit_seal_message (const AuditSealInput *in)
{
  GByteArray *b = g_byte_array_sized_new (512);
  char num[3][24];

  g_snprintf (num[0], sizeof num[0], "%" G_GINT64_FORMAT, in->seq);
  g_snprintf (num[1], sizeof num[1], "%" G_GINT64_FORMAT, in->time_ms);
  g_snprintf (num[2], sizeof num[2], "%" G_GINT64_FORMAT, in->epoch);
  audit_seal_put (b, seal_label);
  for (int i = 0; i < 3; i++)
    audit_seal_put (b, num[i]);
  audit_seal_put (b, in->prev_hash);
  audit_seal_put (b, in->prev_seal);
  audit_seal_put (b, in->next_key);
  audit_seal_put (b, in->detail);
  return b;
}

gboolean
audit_seal_sign (EVP_PKEY *k, const AuditSealInput *in, char *sig,
                 GError **error)
{
  g_autoptr (GByteArray) msg = audit_seal_message (in);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  guint8 raw[64];
  size_t len = sizeof raw;
  gboolean ok = ctx != NULL && k != NULL
                && EVP_DigestSignInit (ctx, NULL, NULL, NULL, k) == 1
                && EVP_DigestSign (ctx, raw, &len, msg->data, msg->len) == 1
                && len == 64;

  EVP_MD_CTX_free (ctx);
  sig[0] = '\0';
  if (ok)
    hex_encode (raw, 64, sig);
  else
    g_set_error_literal (error, AUDIT_ERROR, AUDIT_ERROR_IO,
                         "audit seal: Ed25519 signing failed");
  return ok;
}

gboolean
audit_seal_check (const AuditPublicKey *pk, const AuditSealInput *in,
                  const char *sig)
{
  g_autoptr (GByteArray) msg = NULL;
  EVP_PKEY *k;
  EVP_MD_CTX *ctx;
  guint8 raw[64];
  gboolean ok;

  if (sig == NULL || strlen (sig) != AUDIT_SIG_HEX
      || !audit_unhex (sig, raw, 64))
    return FALSE;
  k = EVP_PKEY_new_raw_public_key (EVP_PKEY_ED25519, NULL, pk->pk, 32);
  ctx = EVP_MD_CTX_new ();
  msg = audit_seal_message (in);
  ok = k != NULL && ctx != NULL
       && EVP_DigestVerifyInit (ctx, NULL, NULL, NULL, k) == 1
       && EVP_DigestVerify (ctx, raw, 64, msg->data, msg->len) == 1;
  EVP_MD_CTX_free (ctx);
  EVP_PKEY_free (k);
  return ok;
}

char *
audit_seal_detail (gint64 epoch, guint retention_days)
{
  return g_strdup_printf ("%sepoch %" G_GINT64_FORMAT "; retention %u days",
                          epoch == 0 ? "initial key; " : "", epoch,
                          retention_days);
}

gint64
audit_seal_retention (const char *detail)
{
  const char *p = detail != NULL ? strstr (detail, "; retention ") : NULL;
  char *end = NULL;
  gint64 days;

  if (p == NULL)
    return -1;
  p += strlen ("; retention ");
  days = g_ascii_strtoll (p, &end, 10);
  if (end == p || !g_str_has_prefix (end, " days") || days < 0)
    return -1;
  return days;
}
