/*
 * gate_gap.c - the `audit_resumed` row's text, written and read.  See
 * gate_gap.h for the format and what the reader trusts.
 *
 * Limits: the time is the proleptic UTC of GDateTime (years 1-9999);
 * counts fit a guint, the length a gint64.
 */
#include "gate_gap.h"

#include <string.h>

/* The literal pieces between the values, in order; the writer's format
 * is built from them, the reader matches them. */
#define GAP_HEAD "the audit could not be written from "
#define GAP_FOR " for "
#define GAP_SECS " s: "
#define GAP_REFUSED " request(s) refused unavailable, "
#define GAP_TAIL " refusal(s) answered without their row; delivery paused"

/* "YYYY-MM-DDTHH:MM:SSZ" */
#define GAP_TIME_LEN 20

static char *
gap_time (gint64 since)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (since);

  return t ? g_date_time_format_iso8601 (t) : g_strdup ("?");
}

char *
gate_gap_format (const GateGap *gap)
{
  g_autofree char *since = gap_time (gap->since);

  return g_strdup_printf (GAP_HEAD "%s" GAP_FOR "%" G_GINT64_FORMAT GAP_SECS "%u"
                          GAP_REFUSED "%u" GAP_TAIL, since, MAX (gap->secs, 0),
                          gap->refused, gap->unaudited);
}

/* Moves *p past lit when it is there. */
static gboolean
gap_literal (const char **p, const char *lit)
{
  size_t n = strlen (lit);

  if (strncmp (*p, lit, n) != 0)
    return FALSE;
  *p += n;
  return TRUE;
}

/* A decimal as %u / %" G_GINT64_FORMAT " write a non-negative one: digits
 * only, no leading zero but in "0", at most max. */
static gboolean
gap_number (const char **p, guint64 max, guint64 *out)
{
  const char *s = *p;
  guint64 v = 0;

  if (!g_ascii_isdigit (*s) || (s[0] == '0' && g_ascii_isdigit (s[1])))
    return FALSE;
  for (; g_ascii_isdigit (*s); s++)
    {
      guint d = (guint) (*s - '0');
      if (v > (max - d) / 10)
        return FALSE;
      v = v * 10 + d;
    }
  *p = s;
  *out = v;
  return TRUE;
}

/* The time as the writer wrote it: GLib's ISO 8601 reader takes the
 * fixed-length text, and only when writing it again gives the same
 * bytes does it pass (no offset, no fraction, no other form). */
static gboolean
gap_since (const char **p, gint64 *out)
{
  g_autofree char *s = g_strndup (*p, GAP_TIME_LEN);
  g_autoptr (GDateTime) t = NULL;
  g_autofree char *again = NULL;

  if (strlen (s) != GAP_TIME_LEN || (t = g_date_time_new_from_iso8601 (s, NULL)) == NULL)
    return FALSE;
  again = g_date_time_format_iso8601 (t);
  if (again == NULL || strcmp (again, s) != 0)
    return FALSE;
  *out = g_date_time_to_unix (t);
  *p += GAP_TIME_LEN;
  return TRUE;
}

gboolean
gate_gap_parse (const char *detail, GateGap *out)
{
  const char *p = detail;
  GateGap g = { 0 };
  guint64 secs, refused, unaudited;

  if (p == NULL || !gap_literal (&p, GAP_HEAD) || !gap_since (&p, &g.since)
      || !gap_literal (&p, GAP_FOR) || !gap_number (&p, G_MAXINT64, &secs)
      || !gap_literal (&p, GAP_SECS) || !gap_number (&p, G_MAXUINT, &refused)
      || !gap_literal (&p, GAP_REFUSED) || !gap_number (&p, G_MAXUINT, &unaudited)
      || !gap_literal (&p, GAP_TAIL) || *p != '\0')
    return FALSE;
  g.secs = (gint64) secs;
  g.refused = (guint) refused;
  g.unaudited = (guint) unaudited;
  *out = g;
  return TRUE;
}
