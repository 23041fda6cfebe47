/*
 * evidence.c - NAME=VALUE words in an audit row's detail.  See
 * evidence.h.
 *
 * What it trusts: the daemon's own values when writing (versions are
 * checked by render_policy.c, hashes are hex, times made here).  When reading,
 * nothing: a detail that is not in this shape simply has no values.
 */
#include "evidence.h"

#include <string.h>

static void
add (GString *s, const char *name, const char *value)
{
  if (value == NULL || *value == '\0')
    return;
  g_string_append_printf (s, "%s%s=%s", s->len ? " " : "", name, value);
}

char *
evidence_accepted (const char *notice_version, const char *notice_rendered_sha256,
                   GDateTime *meeting_time)
{
  GString *s = g_string_new (NULL);
  g_autoptr (GDateTime) utc = meeting_time ? g_date_time_to_utc (meeting_time) : NULL;
  g_autofree char *when = utc ? g_date_time_format (utc, "%Y-%m-%dT%H:%M:%SZ") : NULL;

  add (s, "notice_version", notice_version);
  add (s, "notice_rendered_sha256", notice_rendered_sha256);
  add (s, "meeting_time", when);
  return g_string_free (s, FALSE);
}

char *
evidence_config (const char *config_sha256, const char *changed, const char *file)
{
  GString *s = g_string_new (NULL);

  add (s, "config_sha256", config_sha256);
  if (changed != NULL)
    g_string_append_printf (s, "%schanged=%s", s->len ? " " : "",
                            *changed ? changed : "-");
  add (s, "file", file);
  return g_string_free (s, FALSE);
}

char *
evidence_get (const char *detail, const char *name)
{
  gsize n = strlen (name);

  for (const char *p = detail; p != NULL && *p != '\0';)
    {
      const char *end = strchr (p, ' ');

      if (strncmp (p, name, n) == 0 && p[n] == '=')
        {
          /* file= is last and may hold spaces. */
          if (strcmp (name, "file") == 0 || end == NULL)
            return g_strdup (p + n + 1);
          return g_strndup (p + n + 1, (gsize) (end - p - n - 1));
        }
      p = end ? end + 1 : NULL;
    }
  return NULL;
}
