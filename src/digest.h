/*
 * digest.h - SHA-256 in lowercase hex, and hex itself: one way to write
 * every hash the queue, the audit, the evidence and the fingerprints
 * store and compare.
 *
 * A hash in hex is SHA256_HEX_LEN characters; a buffer that holds one
 * with its NUL is SHA256_HEX_SIZE bytes (the literal 65 it replaces).
 */
#ifndef INVITEMAIL_DIGEST_H
#define INVITEMAIL_DIGEST_H

#include <glib.h>

#define SHA256_LEN       32
#define SHA256_HEX_LEN   (2 * SHA256_LEN)
#define SHA256_HEX_SIZE  (SHA256_HEX_LEN + 1)

/* n bytes of b as 2n lowercase hex digits and a NUL into out. */
void hex_encode (const guint8 *b, gsize n, char *out);

/* SHA-256 of len bytes of data (OpenSSL) into out.  Aborts only when
 * libcrypto cannot allocate, like g_malloc: no input makes it fail. */
void sha256_hex (const void *data, gsize len, char out[SHA256_HEX_SIZE]);

/* TRUE when hex (NULL: never) is the SHA-256 of data, in either case. */
gboolean sha256_hex_matches (const void *data, gsize len, const char *hex);

#endif
