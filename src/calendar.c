/*
 * calendar.c - writes (and reads back) the invite.ics calendar entry.
 *
 * What it does: one VCALENDAR with one VTIMEZONE and one VEVENT, RFC
 * 5545 text escaping and line folding, METHOD:PUBLISH or CANCEL (see
 * calendar.h for why).  The VTIMEZONE holds one observance per UTC
 * offset the meeting touches, each starting at the zone's last
 * transition before it, found by asking GLib's zone database; that is
 * all a reader needs for these two instants, and it follows whatever
 * rules the system's tzdata has.
 *
 * What it trusts: nothing in the values.  Text is escaped, controls are
 * dropped, the UID and addresses are checked to be printable ASCII
 * without ';' ':' ',' '"' or space (else left out).  Reading back
 * (calendar_parse) takes only the first VEVENT's UID, SEQUENCE, DTSTART,
 * DTEND and SUMMARY, bounded in size, and fails on anything else odd.
 *
 * Limits: lines folded at 75 octets; transitions searched at most 800
 * days back; calendar_parse reads at most CALENDAR_PARSE_MAX bytes.
 */
#include "calendar.h"
#include "version.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_TZ         "Europe/Stockholm"
#define FOLD_OCTETS        75
#define SEARCH_DAYS        800
#define CALENDAR_PARSE_MAX (256 * 1024)

/* ---- writing ------------------------------------------------------------ */

/* Appends one content line, folded at 75 octets (RFC 5545 3.1) on a
 * UTF-8 character boundary, ended by CRLF. */
static void
put_line (GString *out, const char *line)
{
  gsize len = strlen (line), at = 0, room = FOLD_OCTETS;

  while (len - at > room)
    {
      gsize cut = at + room;
      while (cut > at && ((guchar) line[cut] & 0xc0) == 0x80)
        cut--;   /* never inside a UTF-8 sequence */
      g_string_append_len (out, line + at, (gssize) (cut - at));
      g_string_append (out, "\r\n ");
      at = cut;
      room = FOLD_OCTETS - 1;   /* the continuation's leading space */
    }
  g_string_append (out, line + at);
  g_string_append (out, "\r\n");
}

/* TEXT value escaping (RFC 5545 3.3.11); CR and other controls dropped,
 * newlines as \n.  Invalid UTF-8 is replaced. (transfer full) */
static char *
escape_text (const char *s)
{
  g_autofree char *valid = g_utf8_make_valid (s ? s : "", -1);
  GString *out = g_string_new (NULL);

  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c == '\\' || c == ';' || c == ',')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, (char) c);
        }
      else if (c == '\n')
        g_string_append (out, "\\n");
      else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
        continue;
      else
        g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

/* A quoted parameter value: no DQUOTE, no controls (RFC 5545 3.2). */
static char *
quote_param (const char *s)
{
  g_autofree char *text = escape_text (s);
  GString *out = g_string_new ("\"");

  for (const char *p = text; *p != '\0'; p++)
    if (*p != '"' && *p != '\\')
      g_string_append_c (out, *p);
  g_string_append_c (out, '"');
  return g_string_free (out, FALSE);
}

/* Printable ASCII without the characters that end a value or start a
 * parameter: safe to write bare (a UID, a mailto: address). */
static gboolean
plain_token (const char *s)
{
  if (s == NULL || *s == '\0' || strlen (s) > 255)
    return FALSE;
  for (; *s != '\0'; s++)
    if ((guchar) *s <= 0x20 || (guchar) *s >= 0x7f || strchr (";:,\"\\", *s) != NULL)
      return FALSE;
  return TRUE;
}

static GTimeZone *
zone_new (const char *tz_name)
{
  GTimeZone *tz = g_time_zone_new_identifier (tz_name ? tz_name : DEFAULT_TZ);
  return tz ? tz : g_time_zone_new_utc ();
}

static gint32
offset_at (GTimeZone *tz, gint64 t)
{
  return g_time_zone_get_offset (tz, g_time_zone_find_interval (tz, G_TIME_TYPE_UNIVERSAL, t));
}

/* The last instant before t at which the offset changed to its value at
 * t, or G_MININT64 when none in SEARCH_DAYS. */
static gint64
last_transition (GTimeZone *tz, gint64 t)
{
  gint32 now = offset_at (tz, t);
  gint64 hi = t, lo = t;

  for (int d = 0; d < SEARCH_DAYS; d++)
    {
      lo -= 86400;
      if (offset_at (tz, lo) != now)
        break;
      hi = lo;
      if (d == SEARCH_DAYS - 1)
        return G_MININT64;
    }
  while (hi - lo > 1)   /* offset(lo) differs, offset(hi) is now's */
    {
      gint64 mid = lo + (hi - lo) / 2;
      if (offset_at (tz, mid) == now)
        hi = mid;
      else
        lo = mid;
    }
  return hi;
}

static void
offset_text (gint32 seconds, char out[8])
{
  char sign = seconds < 0 ? '-' : '+';
  seconds = ABS (seconds);
  g_snprintf (out, 8, "%c%02d%02d", sign, seconds / 3600, seconds / 60 % 60);
}

/* One STANDARD or DAYLIGHT observance for the offset in force at t. */
static void
put_observance (GString *out, GTimeZone *tz, gint64 t)
{
  gint interval = g_time_zone_find_interval (tz, G_TIME_TYPE_UNIVERSAL, t);
  gint32 to = g_time_zone_get_offset (tz, interval);
  gint64 since = last_transition (tz, t);
  gint32 from = since == G_MININT64 ? to : offset_at (tz, since - 1);
  char from_s[8], to_s[8];
  g_autofree char *name = escape_text (g_time_zone_get_abbreviation (tz, interval));
  gboolean dst = g_time_zone_is_dst (tz, interval);

  offset_text (from, from_s);
  offset_text (to, to_s);
  put_line (out, dst ? "BEGIN:DAYLIGHT" : "BEGIN:STANDARD");
  if (since == G_MININT64)
    put_line (out, "DTSTART:19700101T000000");
  else
    {
      /* the onset in the local time that was in force before it */
      g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (since);
      g_autoptr(GDateTime) before = g_date_time_add_seconds (utc, from);
      g_autofree char *s = g_date_time_format (before, "DTSTART:%Y%m%dT%H%M%S");
      put_line (out, s);
    }
  g_autofree char *f = g_strdup_printf ("TZOFFSETFROM:%s", from_s);
  g_autofree char *o = g_strdup_printf ("TZOFFSETTO:%s", to_s);
  put_line (out, f);
  put_line (out, o);
  if (*name != '\0')
    {
      g_autofree char *n = g_strdup_printf ("TZNAME:%s", name);
      put_line (out, n);
    }
  put_line (out, dst ? "END:DAYLIGHT" : "END:STANDARD");
}

static void
put_vtimezone (GString *out, GTimeZone *tz, const char *tzid, gint64 start, gint64 end)
{
  g_autofree char *id = g_strdup_printf ("TZID:%s", tzid);

  put_line (out, "BEGIN:VTIMEZONE");
  put_line (out, id);
  put_observance (out, tz, start);
  if (offset_at (tz, end) != offset_at (tz, start)
      || last_transition (tz, end) != last_transition (tz, start))
    put_observance (out, tz, end);
  put_line (out, "END:VTIMEZONE");
}

/* "NAME;TZID=zone:YYYYMMDDTHHMMSS" in the zone's wall clock. */
static void
put_local_time (GString *out, const char *name, GDateTime *dt, GTimeZone *tz,
                const char *tzid)
{
  g_autoptr(GDateTime) local = g_date_time_to_timezone (dt, tz);
  g_autofree char *stamp = g_date_time_format (local, "%Y%m%dT%H%M%S");
  g_autofree char *line = g_strdup_printf ("%s;TZID=%s:%s", name, tzid, stamp);

  put_line (out, line);
}

static void
put_text (GString *out, const char *name, const char *lang, const char *value)
{
  g_autofree char *text = escape_text (value);
  g_autofree char *line = lang && plain_token (lang)
    ? g_strdup_printf ("%s;LANGUAGE=%s:%s", name, lang, text)
    : g_strdup_printf ("%s:%s", name, text);

  put_line (out, line);
}

const char *
calendar_method (const CalendarEvent *ev)
{
  return ev->cancel ? "CANCEL" : "PUBLISH";
}

char *
calendar_ics (const CalendarEvent *ev)
{
  g_return_val_if_fail (ev != NULL && ev->start != NULL && ev->end != NULL, NULL);
  g_return_val_if_fail (plain_token (ev->uid), NULL);

  GString *out = g_string_new (NULL);
  g_autoptr(GTimeZone) tz = zone_new (ev->tz_name);
  const char *tzid = g_time_zone_get_identifier (tz);
  g_autoptr(GDateTime) now = ev->stamp ? g_date_time_ref (ev->stamp)
                                       : g_date_time_new_now_utc ();
  g_autoptr(GDateTime) now_utc = g_date_time_to_utc (now);
  g_autofree char *dtstamp = g_date_time_format (now_utc, "DTSTAMP:%Y%m%dT%H%M%SZ");
  g_autofree char *method = g_strdup_printf ("METHOD:%s", calendar_method (ev));
  g_autofree char *uid = g_strdup_printf ("UID:%s", ev->uid);
  g_autofree char *seq = g_strdup_printf ("SEQUENCE:%u", ev->sequence);

  put_line (out, "BEGIN:VCALENDAR");
  put_line (out, "PRODID:-//invitemail//" INVITEMAIL_VERSION_TEXT "//EN");
  put_line (out, "VERSION:2.0");
  put_line (out, "CALSCALE:GREGORIAN");
  put_line (out, method);
  put_vtimezone (out, tz, tzid, g_date_time_to_unix (ev->start),
                 g_date_time_to_unix (ev->end));
  put_line (out, "BEGIN:VEVENT");
  put_line (out, uid);
  put_line (out, seq);
  put_line (out, dtstamp);
  put_local_time (out, "DTSTART", ev->start, tz, tzid);
  put_local_time (out, "DTEND", ev->end, tz, tzid);
  put_text (out, "SUMMARY", ev->lang, ev->summary);
  if (ev->link != NULL)
    {
      put_text (out, "LOCATION", ev->lang, ev->link);
      /* a URI value is not TEXT-escaped; the link was checked to hold
       * only RFC 3986 characters, and anything else leaves URL out */
      gboolean uri_ok = TRUE;
      for (const char *p = ev->link; *p != '\0'; p++)
        uri_ok = uri_ok && (guchar) *p > 0x20 && (guchar) *p < 0x7f && *p != '"';
      if (uri_ok)
        {
          g_autofree char *line = g_strdup_printf ("URL:%s", ev->link);
          put_line (out, line);
        }
    }
  if (ev->description != NULL)
    put_text (out, "DESCRIPTION", ev->lang, ev->description);
  if (plain_token (ev->organizer_addr))
    {
      /* the organisation's own address, never a person's: PUBLISH
       * requires an ORGANIZER (RFC 5546 3.2.1) */
      g_autofree char *cn = quote_param (ev->organizer_name ? ev->organizer_name : "");
      g_autofree char *line = g_strdup_printf ("ORGANIZER;CN=%s:mailto:%s", cn,
                                               ev->organizer_addr);
      put_line (out, line);
    }
  put_line (out, ev->cancel ? "STATUS:CANCELLED" : "STATUS:CONFIRMED");
  put_line (out, "TRANSP:OPAQUE");
  put_line (out, "CLASS:PRIVATE");
  put_line (out, "END:VEVENT");
  put_line (out, "END:VCALENDAR");
  return g_string_free (out, FALSE);
}

char *
calendar_new_uid (const char *domain)
{
  GString *out = g_string_new (NULL);

  for (int i = 0; i < 4; i++)
    g_string_append_printf (out, "%08x", g_random_int ());
  g_string_append_printf (out, "@%s", domain);
  return g_string_free (out, FALSE);
}

/* ---- reading back ------------------------------------------------------- */

/* Unfolded content lines (RFC 5545 3.1). (transfer full) */
static GPtrArray *
unfold (const char *ics)
{
  GPtrArray *lines = g_ptr_array_new_with_free_func (g_free);
  g_auto(GStrv) raw = g_strsplit (ics, "\n", -1);

  for (char **l = raw; *l != NULL; l++)
    {
      gsize n = strlen (*l);
      if (n > 0 && (*l)[n - 1] == '\r')
        (*l)[n - 1] = '\0';
      if (((*l)[0] == ' ' || (*l)[0] == '\t') && lines->len > 0)
        {
          char *prev = g_ptr_array_index (lines, lines->len - 1);
          g_ptr_array_index (lines, lines->len - 1) = g_strconcat (prev, *l + 1, NULL);
          g_free (prev);
        }
      else
        g_ptr_array_add (lines, g_strdup (*l));
    }
  return lines;
}

/* DTSTART;TZID=zone:YYYYMMDDTHHMMSS or ...:YYYYMMDDTHHMMSSZ. */
static GDateTime *
parse_time (const char *params, const char *value)
{
  int y, mo, d, h, mi, s;
  char z = '\0';

  if (strlen (value) < 15
      || sscanf (value, "%4d%2d%2dT%2d%2d%2d%c", &y, &mo, &d, &h, &mi, &s, &z) < 6)
    return NULL;
  if (z == 'Z')
    return g_date_time_new_utc (y, mo, d, h, mi, s);
  const char *tzid = strstr (params, ";TZID=");
  if (tzid == NULL)
    return NULL;
  g_autoptr(GTimeZone) tz = g_time_zone_new_identifier (tzid + 6);
  return tz ? g_date_time_new (tz, y, mo, d, h, mi, s) : NULL;
}

static char *
unescape_text (const char *s)
{
  GString *out = g_string_new (NULL);

  for (; *s != '\0'; s++)
    {
      if (*s == '\\' && s[1] != '\0')
        {
          s++;
          g_string_append_c (out, *s == 'n' || *s == 'N' ? '\n' : *s);
        }
      else
        g_string_append_c (out, *s);
    }
  return g_string_free (out, FALSE);
}

gboolean
calendar_parse (const char *ics, char **uid, guint *sequence, GDateTime **start,
                GDateTime **end, char **summary)
{
  g_return_val_if_fail (ics != NULL, FALSE);
  if (strlen (ics) > CALENDAR_PARSE_MAX)
    return FALSE;

  g_autoptr(GPtrArray) lines = unfold (ics);
  g_autofree char *u = NULL, *sum = NULL;
  g_autoptr(GDateTime) s = NULL, e = NULL;
  guint64 seq = 0;
  int events = 0;
  gboolean in_event = FALSE;

  for (guint i = 0; i < lines->len; i++)
    {
      const char *l = g_ptr_array_index (lines, i);
      const char *colon = strchr (l, ':');
      if (strcmp (l, "BEGIN:VEVENT") == 0)
        in_event = ++events == 1;
      else if (strcmp (l, "END:VEVENT") == 0)
        in_event = FALSE;
      if (!in_event || colon == NULL)
        continue;
      g_autofree char *name_params = g_strndup (l, (gsize) (colon - l));
      char *semi = strchr (name_params, ';');
      g_autofree char *params = g_strdup (semi ? semi : "");
      if (semi != NULL)
        *semi = '\0';
      if (strcmp (name_params, "UID") == 0 && u == NULL && plain_token (colon + 1))
        u = g_strdup (colon + 1);
      else if (strcmp (name_params, "SEQUENCE") == 0
               && !g_ascii_string_to_unsigned (colon + 1, 10, 0, 1000000, &seq, NULL))
        return FALSE;
      else if (strcmp (name_params, "DTSTART") == 0 && s == NULL)
        s = parse_time (params, colon + 1);
      else if (strcmp (name_params, "DTEND") == 0 && e == NULL)
        e = parse_time (params, colon + 1);
      else if (strcmp (name_params, "SUMMARY") == 0 && sum == NULL)
        sum = unescape_text (colon + 1);
    }
  if (events != 1 || u == NULL || s == NULL || e == NULL)
    return FALSE;
  *uid = g_steal_pointer (&u);
  *sequence = (guint) seq;
  *start = g_steal_pointer (&s);
  *end = g_steal_pointer (&e);
  *summary = sum ? g_steal_pointer (&sum) : g_strdup ("");
  return TRUE;
}
