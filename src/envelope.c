/*
 * envelope.c - what may go verbatim into an SMTP command.  See
 * envelope.h.  Pure: no state.
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

char *
envelope_address_normal (const char *addr)
{
  const char *at = strrchr (addr, '@');
  g_autofree char *ascii = NULL;
  g_autofree char *lower = NULL;

  if (at == NULL)
    return g_strdup (addr);
  ascii = g_hostname_to_ascii (at + 1);
  lower = g_ascii_strdown (ascii != NULL ? ascii : at + 1, -1);
  return g_strdup_printf ("%.*s@%s", (int) (at - addr), addr, lower);
}

gboolean
envelope_same_address (const char *a, const char *b)
{
  g_autofree char *na = NULL;
  g_autofree char *nb = NULL;

  if (a == NULL || b == NULL)
    return FALSE;
  na = envelope_address_normal (a);
  nb = envelope_address_normal (b);
  return strcmp (na, nb) == 0;
}
