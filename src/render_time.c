/*
 * render_time.c - the meeting's start and end as the mail shows them,
 * in the organisation's zone and the reader's language, from the
 * renderer's own word tables (never the C locale, whose month names
 * depend on the host); and the logo's alt text words.
 *
 * TRUSTS: the zone name comes from the configuration, which refuses
 * unknown zones; one unknown here still falls back to UTC rather than
 * failing a send.  Languages without words here get ISO 8601.
 */
#include "render_private.h"

#include <string.h>

/* How a zone is named in the mail, per language; other zones are
 * shown by their name and UTC offset. */
typedef struct {
  const char *zone;
  const char *sv;
  const char *en;
  const char *ar;
} ZoneWords;

static const ZoneWords zone_words[] = {
  { "Europe/Stockholm", "svensk tid", "Swedish time", "بتوقيت السويد" },
};

static const LangWords lang_words[] = {
  { "sv",
    { "måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag" },
    { "januari", "februari", "mars", "april", "maj", "juni", "juli",
      "augusti", "september", "oktober", "november", "december" },
    "kl.", '.', "eVisit-logotyp, ", "" },
  { "en",
    { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
      "Sunday" },
    { "January", "February", "March", "April", "May", "June", "July",
      "August", "September", "October", "November", "December" },
    "at", ':', "", " eVisit logo" },
  { "ar",
    { "الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد" },
    { "يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو",
      "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر" },
    "الساعة", ':', "شعار eVisit، ", "" },
};

const LangWords *
lang_words_find (const char *lang)
{
  for (gsize i = 0; i < G_N_ELEMENTS (lang_words); i++)
    if (g_strcmp0 (lang_words[i].lang, lang) == 0)
      return &lang_words[i];
  return NULL;
}

/* ---- the meeting time -------------------------------------------------- */

/* The zone as the reader's language names it. (transfer full) */
static char *
zone_label (GDateTime *local, const char *lang, const char *tz_name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (zone_words); i++)
    if (strcmp (zone_words[i].zone, tz_name) == 0)
      {
        if (g_strcmp0 (lang, "sv") == 0)
          return g_strdup (zone_words[i].sv);
        if (g_strcmp0 (lang, "en") == 0)
          return g_strdup (zone_words[i].en);
        if (g_strcmp0 (lang, "ar") == 0)
          return g_strdup (zone_words[i].ar);
      }
  gint64 minutes = g_date_time_get_utc_offset (local) / G_TIME_SPAN_MINUTE;
  char sign = minutes < 0 ? '-' : '+';
  minutes = ABS (minutes);
  return g_strdup_printf ("%s, UTC%c%02d:%02d", tz_name, sign,
                          (int) (minutes / 60), (int) (minutes % 60));
}

/* dt in the zone named tz_name (NULL: the default); an unknown name
 * (config.c refuses those) falls back to UTC rather than failing a
 * send. (transfer full) */
GDateTime *
to_zone (GDateTime *dt, const char *tz_name)
{
  g_autoptr(GTimeZone) tz = g_time_zone_new_identifier (tz_name ? tz_name
                                                        : RENDER_DEFAULT_TZ);
  if (tz == NULL)
    tz = g_time_zone_new_utc ();
  return g_date_time_to_timezone (dt, tz);
}

/* "torsdag 4 december 2026 kl. 11.00", no zone. (transfer full) */
char *
format_day_time (GDateTime *local, const LangWords *w)
{
  if (w == NULL)   /* a language without words here: ISO 8601 is neutral */
    return g_strdup_printf ("%04d-%02d-%02d %02d:%02d",
                            g_date_time_get_year (local), g_date_time_get_month (local),
                            g_date_time_get_day_of_month (local),
                            g_date_time_get_hour (local), g_date_time_get_minute (local));
  return g_strdup_printf ("%s %d %s %d %s %02d%c%02d",
                          w->days[g_date_time_get_day_of_week (local) - 1],
                          g_date_time_get_day_of_month (local),
                          w->months[g_date_time_get_month (local) - 1],
                          g_date_time_get_year (local), w->at,
                          g_date_time_get_hour (local), w->clock_sep,
                          g_date_time_get_minute (local));
}

char *
render_format_time (GDateTime *dt, const char *lang, const char *tz_name)
{
  g_return_val_if_fail (dt != NULL, NULL);

  const char *zone = tz_name ? tz_name : RENDER_DEFAULT_TZ;
  g_autoptr(GDateTime) local = to_zone (dt, zone);
  g_autofree char *day = format_day_time (local, lang_words_find (lang));
  g_autofree char *label = zone_label (local, lang, zone);
  return g_strdup_printf ("%s (%s)", day, label);
}

char *
render_format_end (GDateTime *start, GDateTime *end, const char *lang,
                   const char *tz_name)
{
  g_return_val_if_fail (start != NULL && end != NULL, NULL);

  const LangWords *w = lang_words_find (lang);
  g_autoptr(GDateTime) s = to_zone (start, tz_name);
  g_autoptr(GDateTime) e = to_zone (end, tz_name);
  gboolean same_day = g_date_time_get_year (s) == g_date_time_get_year (e)
                      && g_date_time_get_day_of_year (s) == g_date_time_get_day_of_year (e);

  if (!same_day || w == NULL)
    return format_day_time (e, w);
  return g_strdup_printf ("%s %02d%c%02d", w->at, g_date_time_get_hour (e),
                          w->clock_sep, g_date_time_get_minute (e));
}
