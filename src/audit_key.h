/*
 * audit_key.h - the keys of the audit's signature chain (Ed25519,
 * through OpenSSL's EVP API) and the bytes a seal signs.  Used by the
 * seal layer (which signs) and the verify layer (which checks); calls
 * nothing above the store.
 *
 * Two kinds of key:
 *  - the public value: 32 bytes, written "ed25519:" and 64 hex digits.
 *    `audit init` prints the first one (epoch 0); every seal names the
 *    next epoch's.  It may be published: it lets anyone check and nobody
 *    sign.
 *  - the daemon's secret key file: the private key of the current epoch
 *    ("epoch N", "key HEX" lines; during a seal also "next HEX"), mode
 *    0600, owned by the user the daemon runs as.  It is read through one
 *    descriptor opened with O_NOFOLLOW and checked with fstat (never
 *    reopened by path), and replaced atomically (temp file, fsync,
 *    rename, fsync of the folder) with the old bytes overwritten.
 */
#ifndef INVITEMAIL_AUDIT_KEY_H
#define INVITEMAIL_AUDIT_KEY_H

#include <openssl/types.h>

#include "audit_store.h"

#define AUDIT_PUBKEY_PREFIX "ed25519:"
#define AUDIT_PUBKEY_TEXT (sizeof AUDIT_PUBKEY_PREFIX + 64)

typedef struct {
  guint8 pk[32];
} AuditPublicKey;

/* "ed25519:HEX" or bare HEX (64 digits), spaces around ignored. */
gboolean audit_pubkey_parse (const char *text, AuditPublicKey *out);
/* A file holding the public value (the first line that is not a '#'
 * comment).  A daemon key file given here is refused in plain words. */
gboolean audit_pubkey_read (const char *path, AuditPublicKey *out,
                            GError **error);
/* "ed25519:" + hex into out[AUDIT_PUBKEY_TEXT]. */
void audit_pubkey_format (const AuditPublicKey *k, char *out);

/* One epoch's secret state, as kept in the daemon's key file. */
typedef struct {
  gint64 epoch;
  EVP_PKEY *key;            /* the private key of epoch; NULL: none */
  EVP_PKEY *next;           /* made before a seal commits; NULL: none */
} AuditSecret;

/* A fresh Ed25519 private key. (transfer full) NULL with error set. */
EVP_PKEY *audit_secret_generate (GError **error);
/* The public half of k as 64 hex digits into out[SHA256_HEX_SIZE]. */
gboolean audit_secret_public_hex (EVP_PKEY *k, char out[SHA256_HEX_SIZE]);
/*
 * Reads the daemon's key file through one descriptor (O_NOFOLLOW):
 * refused unless a regular file owned by the effective user with no
 * group or other permission.  *absent (optional) is set and TRUE
 * returned when there is no such file.
 */
gboolean audit_secret_load (const char *path, AuditSecret *out,
                            gboolean *absent, GError **error);
/* Replaces the key file atomically and durably; the old file's bytes
 * are overwritten through a descriptor opened before the rename. */
gboolean audit_secret_store (const char *path, const AuditSecret *s,
                             GError **error);
/* Frees the keys (OpenSSL cleanses their memory). */
void audit_secret_clear (AuditSecret *s);

/* Signs what a seal covers with k: hex into sig[AUDIT_SIG_HEX + 1]. */
gboolean audit_seal_sign (EVP_PKEY *k, const AuditSealInput *in, char *sig,
                          GError **error);
/* TRUE when sig (hex) is pk's signature over in. */
gboolean audit_seal_check (const AuditPublicKey *pk, const AuditSealInput *in,
                           const char *sig);

/* A seal's words: "epoch E; retention N days", with "initial key; "
 * before them on the first.  The retention is signed with the seal, so
 * verification can hold a purge to the rule in force when the purged
 * rows were sealed. */
char *audit_seal_detail (gint64 epoch, guint retention_days);
/* The retention in days a seal's words state, or -1. */
gint64 audit_seal_retention (const char *detail);

#endif
