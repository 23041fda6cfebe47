/*
 * cli_report_write.c - the monthly report as text, CSV and HTML.  See
 * cli_report.c for what it holds.
 *
 * HTML is one self-contained file: inline style and SVG, no script, no
 * remote asset; every value passes g_markup_escape_text.  CSV quotes
 * every field (cli_csv_line); --sep ';' starts with a UTF-8 BOM.  The
 * periods the audit could not be written are in every format, counted
 * at the top (the total row in CSV).
 */
#include "cli_report_private.h"

#include <string.h>

#define SVG_BAR 18
#define SVG_HEIGHT 160

/* ---- text -------------------------------------------------------------- */

static void
text_counts_line (GString *o, const char *key, const Counts *c)
{
  g_string_append_printf (o, "  %-24s %8u %10u %8u %8u %8u %8u\n", key, c->invites,
                          c->recipients, c->sent, c->failed, c->expired, c->refused);
}

static void
text_counts_head (GString *o, const Words *w, const char *first)
{
  g_string_append_printf (o, "  %-24s %8s %10s %8s %8s %8s %8s\n", first, w->invites,
                          w->recipients, w->sent, w->failed, w->expired, w->refused);
}

static void
text_table (GString *o, const Words *w, const char *title, GHashTable *h)
{
  g_autoptr (GList) keys = report_sorted_keys (h);

  g_string_append_printf (o, "\n%s\n", title);
  for (GList *l = keys; l != NULL; l = l->next)
    g_string_append_printf (o, "  %-24s %u\n", (char *) l->data,
                            GPOINTER_TO_UINT (g_hash_table_lookup (h, l->data)));
  if (keys == NULL)
    g_string_append_printf (o, "  (%s)\n", w->none);
}

/* One line per period: from .. to, seconds, the two counts. */
static void
text_unwritable (Report *rp, GString *o)
{
  const Words *w = rp->w;

  g_string_append_printf (o, "\n%s\n", w->unwritable);
  for (guint i = 0; i < rp->unwritable->len; i++)
    {
      Unwritable *u = g_ptr_array_index (rp->unwritable, i);
      g_autofree char *b = report_when (rp, u->row_ms);
      g_autofree char *a = u->unreadable ? NULL : report_when (rp, u->from_ms);

      if (u->unreadable != NULL)
        g_string_append_printf (o, "  %s  %s: \"%s\"\n", b, w->unreadable, u->unreadable);
      else
        g_string_append_printf (o, "  %s .. %s  %" G_GINT64_FORMAT " s  %s %u  %s %u\n",
                                a, b, u->secs, w->refused_unavailable, u->refused,
                                w->without_row, u->unaudited);
    }
  if (rp->unwritable->len == 0)
    g_string_append_printf (o, "  (%s)\n", w->none);
}

void
report_write_text (Report *rp, GString *o, GArray *outs, const char *partial)
{
  const Words *w = rp->w;
  g_autoptr (GList) units = report_sorted_keys (rp->units);

  g_string_append_printf (o, "%s %s (%s: %s)\n", w->title, rp->o->month, w->zone,
                          rp->o->timezone);
  if (partial)
    g_string_append_printf (o, "%s: %s\n", w->partial, partial);
  g_string_append_printf (o, "\n%s: %s\n%s: %" G_GINT64_FORMAT " %s (%s)\n",
                          w->verify, rp->verify_text, w->head, rp->head_seq,
                          rp->head_hash, w->head_keep);
  g_string_append_printf (o, "%s: %u\n", w->unwritable, rp->unwritable->len);
  g_string_append_printf (o, "\n%s\n", w->per_day);
  text_counts_head (o, w, w->day);
  for (guint d = 0; d < rp->n_days; d++)
    {
      g_autofree char *key = g_strdup_printf ("%s-%02u", rp->o->month, d + 1);
      text_counts_line (o, key, &rp->days[d]);
    }
  text_counts_line (o, "=", &rp->total);
  g_string_append_printf (o, "\n%s\n", w->per_unit);
  text_counts_head (o, w, w->unit);
  for (GList *l = units; l != NULL; l = l->next)
    text_counts_line (o, l->data, g_hash_table_lookup (rp->units, l->data));
  g_string_append_printf (o, "\n%s\n", w->problems);
  for (guint i = 0; i < rp->problems->len; i++)
    {
      Problem *p = g_ptr_array_index (rp->problems, i);
      InviteInfo *info = p->invite ? g_hash_table_lookup (rp->invites, p->invite) : NULL;
      g_autofree char *t = report_when (rp, p->ms);
      g_string_append_printf (o, "  %s %-8s %s unit=%s booking=%s staff=%s reply=\"%s\"\n",
                              t, p->event, p->invite ? p->invite : "-",
                              info && info->unit ? info->unit : "-",
                              info && info->booking ? info->booking : "-",
                              info && info->staff ? info->staff : "-",
                              p->reply ? p->reply : "");
    }
  if (rp->problems->len == 0)
    g_string_append_printf (o, "  (%s)\n", w->none);
  g_string_append_printf (o, "\n%s\n", w->versions);
  for (guint i = 0; i < rp->versions->len; i++)
    {
      VersionUse *v = g_ptr_array_index (rp->versions, i);
      g_autofree char *a = report_when (rp, v->first), *b = report_when (rp, v->last);
      g_string_append_printf (o, "  %-16s %6u  %s .. %s\n", v->name, v->count, a, b);
    }
  for (guint i = 0; i < rp->version_changes->len; i++)
    {
      Note *n = g_ptr_array_index (rp->version_changes, i);
      g_autofree char *t = report_when (rp, n->ms);
      g_string_append_printf (o, "  %s %s\n", t, n->text);
    }
  g_string_append_printf (o, "\n%s\n", w->configs);
  for (guint i = 0; i < rp->configs->len; i++)
    {
      Note *n = g_ptr_array_index (rp->configs, i);
      g_autofree char *t = report_when (rp, n->ms);
      g_string_append_printf (o, "  %s %-16s %.12s %s\n", t, n->event, n->sha ? n->sha : "-",
                              n->changed ? n->changed : "");
    }
  g_string_append_printf (o, "\n%s\n", w->outages);
  if (rp->seals->len == 0)
    g_string_append_printf (o, "  (%s)\n", w->no_seals);
  for (guint i = 0; i < outs->len; i++)
    {
      Outage *x = &g_array_index (outs, Outage, i);
      g_autofree char *a = report_when (rp, x->from);
      g_autofree char *b = x->to ? report_when (rp, x->to) : g_strdup ("-");
      gint64 end = report_outage_end (rp, x);
      g_string_append_printf (o, "  %s .. %s  %" G_GINT64_FORMAT " min\n", a, b,
                              (end - x->from) / 60000);
    }
  text_unwritable (rp, o);
  text_table (o, w, w->refusals, rp->refusals);
  text_table (o, w, w->events, rp->events);
}

/* ---- csv --------------------------------------------------------------- */

/* Every line's fields: kind, key, the six counts, then the periods the
 * audit could not be written (their number in the total row, each one's
 * figures in its own row), the last a note. */
#define CSV_COLUMNS 15

static void
csv_counts (GString *o, char sep, const char *kind, const char *key, const Counts *c,
            const char *unwritable)
{
  char n[6][16];
  const guint v[6] = { c->invites, c->recipients, c->sent, c->failed, c->expired,
                       c->refused };
  const char *f[CSV_COLUMNS] = { kind, key, n[0], n[1], n[2], n[3], n[4], n[5],
                                 unwritable };

  for (int i = 0; i < 6; i++)
    g_snprintf (n[i], sizeof n[i], "%u", v[i]);
  cli_csv_line (o, f, CSV_COLUMNS, sep);
}

/* An audit-unwritable period as text for the cells of a row: from is
 * NULL for an unreadable row, whose row time stands alone. */
typedef struct {
  char *from, *row, *secs, *refused, *unaudited;
} UnwritableCells;

static void
unwritable_cells (Report *rp, const Unwritable *u, UnwritableCells *c)
{
  c->row = report_when (rp, u->row_ms);
  c->from = u->unreadable ? NULL : report_when (rp, u->from_ms);
  c->secs = g_strdup_printf ("%" G_GINT64_FORMAT, u->secs);
  c->refused = g_strdup_printf ("%u", u->refused);
  c->unaudited = g_strdup_printf ("%u", u->unaudited);
}

static void
unwritable_cells_clear (UnwritableCells *c)
{
  g_free (c->row);
  g_free (c->from);
  g_free (c->secs);
  g_free (c->refused);
  g_free (c->unaudited);
}

/* kind audit_unwritable, key its start (its row's time when unreadable),
 * the counts empty.  The note of an unreadable one says so first
 * (cli_csv_line guards every field against formulas). */
static void
csv_unwritable (Report *rp, GString *o, char sep)
{
  for (guint i = 0; i < rp->unwritable->len; i++)
    {
      Unwritable *u = g_ptr_array_index (rp->unwritable, i);
      UnwritableCells c;
      g_autofree char *note = u->unreadable
        ? g_strdup_printf ("unreadable: %s", u->unreadable) : NULL;

      unwritable_cells (rp, u, &c);
      const char *a = c.from;
      const char *f[CSV_COLUMNS] = { "audit_unwritable", a ? a : c.row, "", "", "", "",
                                     "", "", "1", a, c.row, a ? c.secs : NULL,
                                     a ? c.refused : NULL, a ? c.unaudited : NULL, note };

      cli_csv_line (o, f, CSV_COLUMNS, sep);
      unwritable_cells_clear (&c);
    }
}

void
report_write_csv (Report *rp, GString *o, char sep)
{
  static const char *const head[CSV_COLUMNS] = {
    "kind", "key", "invites", "recipients", "sent", "failed", "expired", "refused",
    "audit_unwritable", "from", "to", "seconds", "refused_unavailable",
    "refusals_without_row", "note" };
  g_autoptr (GList) units = report_sorted_keys (rp->units);
  g_autofree char *n_unwritable = g_strdup_printf ("%u", rp->unwritable->len);

  if (sep == ';')
    g_string_append (o, "\xEF\xBB\xBF");   /* UTF-8 BOM: spreadsheets read UTF-8 */
  cli_csv_line (o, head, G_N_ELEMENTS (head), sep);
  for (guint d = 0; d < rp->n_days; d++)
    {
      g_autofree char *key = g_strdup_printf ("%s-%02u", rp->o->month, d + 1);
      csv_counts (o, sep, "day", key, &rp->days[d], NULL);
    }
  for (GList *l = units; l != NULL; l = l->next)
    csv_counts (o, sep, "unit", l->data, g_hash_table_lookup (rp->units, l->data), NULL);
  csv_unwritable (rp, o, sep);
  csv_counts (o, sep, "total", rp->o->month, &rp->total, n_unwritable);
}

/* ---- html -------------------------------------------------------------- */

static void
h_text (GString *o, const char *s)
{
  g_autofree char *e = g_markup_escape_text (s ? s : "", -1);
  g_string_append (o, e);
}

static void
h_cell (GString *o, const char *tag, const char *s)
{
  g_string_append_printf (o, "<%s>", tag);
  h_text (o, s);
  g_string_append_printf (o, "</%s>", tag);
}

static void
h_row (GString *o, const char *tag, const char *const *cells, guint n)
{
  g_string_append (o, "<tr>");
  for (guint i = 0; i < n; i++)
    h_cell (o, tag, cells[i]);
  g_string_append (o, "</tr>\n");
}

static void
h_counts_table (GString *o, const Words *w, const char *first)
{
  const char *head[] = { first, w->invites, w->recipients, w->sent, w->failed,
                         w->expired, w->refused };

  g_string_append (o, "<table>\n");
  h_row (o, "th", head, G_N_ELEMENTS (head));
}

static void
h_counts_row (GString *o, const char *key, const Counts *c)
{
  g_autofree char *a = g_strdup_printf ("%u", c->invites);
  g_autofree char *b = g_strdup_printf ("%u", c->recipients);
  g_autofree char *s = g_strdup_printf ("%u", c->sent);
  g_autofree char *f = g_strdup_printf ("%u", c->failed);
  g_autofree char *e = g_strdup_printf ("%u", c->expired);
  g_autofree char *r = g_strdup_printf ("%u", c->refused);
  const char *cells[] = { key, a, b, s, f, e, r };

  h_row (o, "td", cells, G_N_ELEMENTS (cells));
}

/* Invites (dark) and recipients (light) per day as bars. */
static void
h_chart (GString *o, const Report *rp)
{
  guint max = 1, width = rp->n_days * (SVG_BAR + 4) + 40;

  for (guint d = 0; d < rp->n_days; d++)
    max = MAX (max, rp->days[d].recipients);
  g_string_append_printf (o, "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\""
                          " width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\">\n"
                          "<title>", width, SVG_HEIGHT + 40, width, SVG_HEIGHT + 40);
  h_text (o, rp->w->per_day);
  g_string_append_printf (o, "</title>\n<text x=\"0\" y=\"12\" class=\"axis\">%u</text>\n"
                          "<line x1=\"30\" y1=\"%d\" x2=\"%u\" y2=\"%d\" stroke=\"#888\"/>\n",
                          max, SVG_HEIGHT + 10, width, SVG_HEIGHT + 10);
  for (guint d = 0; d < rp->n_days; d++)
    {
      const Counts *c = &rp->days[d];
      guint x = 34 + d * (SVG_BAR + 4);
      guint hr = c->recipients * SVG_HEIGHT / max, hi = c->invites * SVG_HEIGHT / max;

      g_string_append_printf (o, "<g><title>%s-%02u: %u / %u</title>"
                              "<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"#9ecae1\"/>"
                              "<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"#08519c\"/>"
                              "</g>\n", rp->o->month, d + 1, c->invites, c->recipients,
                              x, SVG_HEIGHT + 10 - hr, SVG_BAR, hr,
                              x + 4, SVG_HEIGHT + 10 - hi, SVG_BAR - 8, hi);
      if (d % 2 == 0)
        g_string_append_printf (o, "<text x=\"%u\" y=\"%d\" class=\"axis\">%u</text>\n",
                                x + 2, SVG_HEIGHT + 28, d + 1);
    }
  g_string_append (o, "</svg>\n<p class=\"legend\"><span class=\"k1\"></span> ");
  h_text (o, rp->w->invites);
  g_string_append (o, " <span class=\"k2\"></span> ");
  h_text (o, rp->w->recipients);
  g_string_append (o, "</p>\n");
}

static void
h_section (GString *o, const char *title)
{
  g_string_append (o, "<h2>");
  h_text (o, title);
  g_string_append (o, "</h2>\n");
}

static void
h_problems (GString *o, Report *rp)
{
  const Words *w = rp->w;
  const char *head[] = { w->time, w->event, w->invite, w->unit, w->booking, w->staff,
                         w->reply };

  h_section (o, w->problems);
  g_string_append (o, "<table>\n");
  h_row (o, "th", head, G_N_ELEMENTS (head));
  for (guint i = 0; i < rp->problems->len; i++)
    {
      Problem *p = g_ptr_array_index (rp->problems, i);
      InviteInfo *info = p->invite ? g_hash_table_lookup (rp->invites, p->invite) : NULL;
      g_autofree char *t = report_when (rp, p->ms);
      const char *cells[] = { t, p->event, p->invite, info ? info->unit : NULL,
                              info ? info->booking : NULL, info ? info->staff : NULL,
                              p->reply };
      h_row (o, "td", cells, G_N_ELEMENTS (cells));
    }
  g_string_append (o, "</table>\n");
}

static void
h_versions (GString *o, Report *rp)
{
  const Words *w = rp->w;
  const char *head[] = { w->version, w->count, w->first, w->last };

  h_section (o, w->versions);
  g_string_append (o, "<table>\n");
  h_row (o, "th", head, G_N_ELEMENTS (head));
  for (guint i = 0; i < rp->versions->len; i++)
    {
      VersionUse *v = g_ptr_array_index (rp->versions, i);
      g_autofree char *n = g_strdup_printf ("%u", v->count);
      g_autofree char *a = report_when (rp, v->first), *b = report_when (rp, v->last);
      const char *cells[] = { v->name, n, a, b };
      h_row (o, "td", cells, G_N_ELEMENTS (cells));
    }
  g_string_append (o, "</table>\n<ul>\n");
  for (guint i = 0; i < rp->version_changes->len; i++)
    {
      Note *n = g_ptr_array_index (rp->version_changes, i);
      g_autofree char *t = report_when (rp, n->ms);
      g_autofree char *line = g_strdup_printf ("%s: %s %s", t, w->changed_to, n->text);
      h_cell (o, "li", line);
    }
  g_string_append (o, "</ul>\n");
}

static void
h_configs (GString *o, Report *rp)
{
  const Words *w = rp->w;
  const char *head[] = { w->time, w->event, "SHA-256", w->keys };

  h_section (o, w->configs);
  g_string_append (o, "<table>\n");
  h_row (o, "th", head, G_N_ELEMENTS (head));
  for (guint i = 0; i < rp->configs->len; i++)
    {
      Note *n = g_ptr_array_index (rp->configs, i);
      g_autofree char *t = report_when (rp, n->ms);
      g_autofree char *sha = n->sha ? g_strndup (n->sha, 12) : NULL;
      const char *cells[] = { t, n->event, sha, n->changed };
      h_row (o, "td", cells, G_N_ELEMENTS (cells));
    }
  g_string_append (o, "</table>\n");
}

static void
h_outages (GString *o, Report *rp, GArray *outs)
{
  const Words *w = rp->w;
  const char *head[] = { w->from, w->to, w->minutes };

  h_section (o, w->outages);
  if (rp->seals->len == 0)
    h_cell (o, "p", w->no_seals);
  g_string_append (o, "<table>\n");
  h_row (o, "th", head, G_N_ELEMENTS (head));
  for (guint i = 0; i < outs->len; i++)
    {
      Outage *x = &g_array_index (outs, Outage, i);
      gint64 end = report_outage_end (rp, x);
      g_autofree char *a = report_when (rp, x->from);
      g_autofree char *b = x->to ? report_when (rp, x->to) : g_strdup ("-");
      g_autofree char *m = g_strdup_printf ("%" G_GINT64_FORMAT, (end - x->from) / 60000);
      const char *cells[] = { a, b, m };
      h_row (o, "td", cells, G_N_ELEMENTS (cells));
    }
  g_string_append (o, "</table>\n");
}

static void
h_unwritable (GString *o, Report *rp)
{
  const Words *w = rp->w;
  const char *head[] = { w->from, w->to, w->seconds, w->refused_unavailable,
                         w->without_row };

  h_section (o, w->unwritable);
  if (rp->unwritable->len == 0)
    {
      h_cell (o, "p", w->none);
      g_string_append_c (o, '\n');
      return;
    }
  g_string_append (o, "<table>\n");
  h_row (o, "th", head, G_N_ELEMENTS (head));
  for (guint i = 0; i < rp->unwritable->len; i++)
    {
      Unwritable *u = g_ptr_array_index (rp->unwritable, i);
      UnwritableCells c;
      g_autofree char *bad = u->unreadable
        ? g_strdup_printf ("%s: %s", w->unreadable, u->unreadable) : NULL;

      unwritable_cells (rp, u, &c);
      if (bad != NULL)
        {
          /* The unreadable text in one cell across the figures. */
          g_string_append (o, "<tr><td>-</td>");
          h_cell (o, "td", c.row);
          g_string_append (o, "<td colspan=\"3\" class=\"bad\">");
          h_text (o, bad);
          g_string_append (o, "</td></tr>\n");
        }
      else
        {
          const char *cells[] = { c.from, c.row, c.secs, c.refused, c.unaudited };
          h_row (o, "td", cells, G_N_ELEMENTS (cells));
        }
      unwritable_cells_clear (&c);
    }
  g_string_append (o, "</table>\n");
}

static void
h_count_table (GString *o, Report *rp, const char *title, const char *first,
               GHashTable *h)
{
  g_autoptr (GList) codes = report_sorted_keys (h);
  const char *head[] = { first, rp->w->count };

  h_section (o, title);
  g_string_append (o, "<table>\n");
  h_row (o, "th", head, G_N_ELEMENTS (head));
  for (GList *l = codes; l != NULL; l = l->next)
    {
      g_autofree char *n = g_strdup_printf ("%u", GPOINTER_TO_UINT (
                                              g_hash_table_lookup (h, l->data)));
      const char *cells[] = { l->data, n };
      h_row (o, "td", cells, G_N_ELEMENTS (cells));
    }
  g_string_append (o, "</table>\n");
}

/* The month at a glance: the totals, the number of outages and of
 * periods the audit could not be written. */
static void
h_summary (GString *o, Report *rp, GArray *outs)
{
  const Words *w = rp->w;
  const Counts *c = &rp->total;
  const char *head[] = { w->invites, w->recipients, w->sent, w->failed, w->expired,
                         w->refused, w->outages, w->unwritable };
  g_autofree char *v0 = g_strdup_printf ("%u", c->invites);
  g_autofree char *v1 = g_strdup_printf ("%u", c->recipients);
  g_autofree char *v2 = g_strdup_printf ("%u", c->sent);
  g_autofree char *v3 = g_strdup_printf ("%u", c->failed);
  g_autofree char *v4 = g_strdup_printf ("%u", c->expired);
  g_autofree char *v5 = g_strdup_printf ("%u", c->refused);
  g_autofree char *v6 = g_strdup_printf ("%u", outs->len);
  g_autofree char *v7 = g_strdup_printf ("%u", rp->unwritable->len);
  const char *cells[] = { v0, v1, v2, v3, v4, v5, v6, v7 };

  h_section (o, w->summary);
  g_string_append (o, "<table class=\"summary\">\n");
  h_row (o, "th", head, G_N_ELEMENTS (head));
  h_row (o, "td", cells, G_N_ELEMENTS (cells));
  g_string_append (o, "</table>\n");
}

static const char report_css[] =
  "body{font-family:system-ui,sans-serif;margin:2em;color:#111;background:#fff}"
  "table{border-collapse:collapse;margin:.5em 0 1.5em}"
  "th,td{border:1px solid #bbb;padding:.2em .6em;text-align:left}"
  "td{font-variant-numeric:tabular-nums}"
  ".partial{background:#fff3cd;border:1px solid #e0b000;padding:.5em}"
  ".bad{color:#a00;font-weight:bold}.hash{font-family:monospace;word-break:break-all}"
  ".axis{font-size:10px;fill:#444}.legend span{display:inline-block;width:1em;height:1em}"
  ".k1{background:#08519c}.k2{background:#9ecae1}"
  ".summary td{font-size:1.4em;font-weight:bold;text-align:right}";

void
report_write_html (Report *rp, GString *o, GArray *outs, const char *partial)
{
  const Words *w = rp->w;
  g_autoptr (GList) units = report_sorted_keys (rp->units);
  g_autofree char *head = g_strdup_printf ("%" G_GINT64_FORMAT, rp->head_seq);

  g_string_append_printf (o, "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n"
                          "<meta charset=\"utf-8\"/>\n<title>", w->lang);
  h_text (o, w->title);
  g_string_append_printf (o, " %s</title>\n<style>%s</style>\n</head>\n<body>\n<h1>",
                          rp->o->month, report_css);
  h_text (o, w->title);
  g_string_append_printf (o, " %s</h1>\n<p>", rp->o->month);
  h_text (o, w->zone);
  g_string_append (o, ": ");
  h_text (o, rp->o->timezone);
  g_string_append (o, "</p>\n");
  if (partial)
    {
      g_autofree char *line = g_strdup_printf ("%s: %s", w->partial, partial);
      g_string_append (o, "<p class=\"partial\">");
      h_text (o, line);
      g_string_append (o, "</p>\n");
    }
  h_section (o, w->verify);
  g_string_append_printf (o, "<p%s>", rp->verified ? "" : " class=\"bad\"");
  h_text (o, rp->verify_text);
  g_string_append (o, "</p>\n<p>");
  h_text (o, w->head);
  g_string_append (o, " (");
  h_text (o, w->head_keep);
  g_string_append_printf (o, "): <span class=\"hash\">%s %s</span></p>\n", head,
                          rp->head_hash);
  h_summary (o, rp, outs);
  h_section (o, w->per_day);
  h_chart (o, rp);
  h_counts_table (o, w, w->day);
  for (guint d = 0; d < rp->n_days; d++)
    {
      g_autofree char *key = g_strdup_printf ("%s-%02u", rp->o->month, d + 1);
      h_counts_row (o, key, &rp->days[d]);
    }
  h_counts_row (o, "=", &rp->total);
  g_string_append (o, "</table>\n");
  h_section (o, w->per_unit);
  h_counts_table (o, w, w->unit);
  for (GList *l = units; l != NULL; l = l->next)
    h_counts_row (o, l->data, g_hash_table_lookup (rp->units, l->data));
  g_string_append (o, "</table>\n");
  h_problems (o, rp);
  h_versions (o, rp);
  h_configs (o, rp);
  h_outages (o, rp, outs);
  h_unwritable (o, rp);
  h_count_table (o, rp, w->refusals, w->code, rp->refusals);
  h_count_table (o, rp, w->events, w->event, rp->events);
  g_string_append (o, "</body>\n</html>\n");
}

