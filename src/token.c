/*
 * token.c - random base-32 names.  See token.h.
 */
#include "token.h"

#include <string.h>
#include <sys/random.h>

static const char token_alphabet[] = "0123456789abcdefghijklmnopqrstuv";

char
token_digit (guint64 v)
{
  return token_alphabet[v & 31];
}

gboolean
token_random (char *out, gsize n)
{
  guint8 raw[64];

  for (gsize done = 0; done < n;)
    {
      gsize take = MIN (n - done, sizeof raw);

      if (getrandom (raw, take, 0) != (ssize_t) take)
        {
          explicit_bzero (raw, sizeof raw);
          return FALSE;
        }
      /* 256 is a multiple of 32: every digit is equally likely. */
      for (gsize i = 0; i < take; i++)
        out[done + i] = token_digit (raw[i]);
      done += take;
    }
  out[n] = '\0';
  explicit_bzero (raw, sizeof raw);
  return TRUE;
}
