/*
 * names.c - the language tag and the template name.  See names.h.
 */
#include "names.h"

#include <string.h>

gboolean
lang_tag_ok (const char *s, gssize len)
{
  gsize n;

  if (s == NULL)
    return FALSE;
  n = len < 0 ? strlen (s) : (gsize) len;
  if (n < LANG_TAG_MIN || n > LANG_TAG_MAX)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (s[i] < 'a' || s[i] > 'z')
      return FALSE;
  return TRUE;
}

gboolean
template_name_ok (const char *s, gssize len)
{
  gsize n;

  if (s == NULL)
    return FALSE;
  n = len < 0 ? strlen (s) : (gsize) len;
  if (n == 0 || n > TEMPLATE_NAME_MAX
      || !(g_ascii_islower (s[0]) || g_ascii_isdigit (s[0])))
    return FALSE;
  for (gsize i = 1; i < n; i++)
    if (!g_ascii_islower (s[i]) && !g_ascii_isdigit (s[i]) && s[i] != '_'
        && s[i] != '-')
      return FALSE;
  return TRUE;
}
