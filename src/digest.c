/*
 * digest.c - SHA-256 in hex.  See digest.h.  No state.
 */
#include "digest.h"

#include <openssl/evp.h>

void
hex_encode (const guint8 *b, gsize n, char *out)
{
  static const char hex[] = "0123456789abcdef";

  for (gsize i = 0; i < n; i++)
    {
      out[2 * i] = hex[b[i] >> 4];
      out[2 * i + 1] = hex[b[i] & 0xf];
    }
  out[2 * n] = '\0';
}

void
sha256_hex (const void *data, gsize len, char out[SHA256_HEX_SIZE])
{
  guint8 md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;

  if (EVP_Digest (data, len, md, &n, EVP_sha256 (), NULL) != 1 || n != SHA256_LEN)
    g_error ("SHA-256 unavailable");   /* libcrypto cannot allocate */
  hex_encode (md, SHA256_LEN, out);
}

gboolean
sha256_hex_matches (const void *data, gsize len, const char *hex)
{
  char sum[SHA256_HEX_SIZE];

  if (hex == NULL)
    return FALSE;
  sha256_hex (data, len, sum);
  return g_ascii_strcasecmp (sum, hex) == 0;
}
