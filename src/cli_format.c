/*
 * cli_format.c - output helpers shared by the compliance commands.
 * See cli_compliance.h.
 */
#include "cli_compliance.h"

#include <string.h>

/*
 * Every field quoted.  A field that begins with = + - @, a tab or a CR
 * is one a spreadsheet would run as a formula: it gets a leading ' (the
 * usual guard against CSV injection), whatever it came from (a unit or
 * booking from a request, a row's hostile text).  Our own numbers are
 * never negative, so none is changed.
 */
void
cli_csv_line (GString *out, const char *const *fields, guint n, char sep)
{
  for (guint i = 0; i < n; i++)
    {
      const char *f = fields[i] ? fields[i] : "";

      if (i > 0)
        g_string_append_c (out, sep);
      g_string_append_c (out, '"');
      if (*f != '\0' && strchr ("=+-@\t\r", *f) != NULL)
        g_string_append_c (out, '\'');
      for (const char *p = f; *p; p++)
        {
          if (*p == '"')
            g_string_append_c (out, '"');
          g_string_append_c (out, *p);
        }
      g_string_append_c (out, '"');
    }
  g_string_append (out, "\r\n");
}

void
cli_json_string (GString *out, const char *s)
{
  if (s == NULL)
    {
      g_string_append (out, "null");
      return;
    }
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_printf (out, "\\%c", *p);
      else if (*p < 0x20 || *p == 0x7f)
        g_string_append_printf (out, "\\u%04x", *p);
      else
        g_string_append_c (out, (char) *p);
    }
  g_string_append_c (out, '"');
}

char *
cli_format_time (gint64 ms, GTimeZone *tz)
{
  g_autoptr (GDateTime) utc = g_date_time_new_from_unix_utc (ms / 1000);
  g_autoptr (GDateTime) local = utc && tz ? g_date_time_to_timezone (utc, tz) : NULL;

  if (local == NULL)
    return g_strdup ("?");
  return g_date_time_format (local, "%Y-%m-%dT%H:%M:%S%:z");
}
