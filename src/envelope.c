/*
 * envelope.c - what may go verbatim into an SMTP command.  See
 * envelope.h.  Pure: no state, no allocation.
 */
#include "envelope.h"

#include <string.h>

gboolean
envelope_safe (const char *s, EnvelopeKind kind)
{
  const char *at;
  gsize n;

  if (s == NULL)
    return FALSE;
  n = strlen (s);
  if (n == 0)
    return kind == ENVELOPE_REVERSE_PATH;
  if (n > ADDRESS_MAX)
    return FALSE;
  for (const unsigned char *p = (const unsigned char *) s; *p != '\0'; p++)
    if (*p <= ' ' || *p >= 0x7f || *p == '<' || *p == '>')
      return FALSE;
  if (kind == ENVELOPE_WORD)
    return TRUE;
  at = strrchr (s, '@');
  return at != NULL && at != s && at[1] != '\0';
}
