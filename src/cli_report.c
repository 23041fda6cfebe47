/*
 * cli_report.c - `invitemail audit report --month YYYY-MM`: one month of
 * the audit as compliance files it away.
 *
 * What it shows: the verify result and the head to keep; invites and
 * recipients per day (an inline SVG chart in HTML) and per unit; sent,
 * failed and expired; every failure and expiry with booking and staff;
 * the notice versions used and when they changed; configuration loads
 * and reloads with the keys changed; outages (gaps between seals longer
 * than twice the seal interval, also those that begin or end in another
 * month); the periods the daemon ran but could not write the audit
 * (from the `audit_resumed` rows, gate_gap.h: since when, how long, how
 * many requests were refused `unavailable` and how many refusals went
 * without their own row - the only record of those refusals); refusals
 * by code; whether the month is partial.
 *
 * What it trusts: nothing in the audit file's text.  An `audit_resumed`
 * row whose detail is not exactly the gate's words is shown as
 * unreadable with its text cut short and made printable, never dropped.
 *
 * Times and days are in the organisation's zone ([organisation]
 * timezone); the month is that zone's month.  HTML is one
 * self-contained file: inline style and SVG, no script, no remote
 * asset.  Every value is escaped for its format.  CSV is one table
 * (kind, key, counts) for spreadsheets: --sep ';' adds a UTF-8 BOM so a
 * spreadsheet in a Swedish locale opens it as such.
 *
 * Limits: the month's rows, the seals before it and the first seal after
 * it are read; the audit is never written.  The writers are in
 * cli_report_write.c.
 */
#include "cli_report_private.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "audit_read.h"
#include "audit_verify.h"
#include "evidence.h"
#include "exitcodes.h"
#include "gate_gap.h"

static const Words words_sv = {
  "sv", "Granskningsrapport", "Ofullständig månad", "månaden är inte slut",
  "granskningsloggen börjar", "Kontroll av kedjan", "kedjan är hel",
  "KEDJAN ÄR BRUTEN", "Huvud att arkivera", "spara raden och hashen utanför servern",
  "Sammanfattning", "Per dag", "Per enhet", "Dag", "Enhet", "Inbjudningar",
  "Mottagare", "Skickade", "Misslyckade", "Utgångna", "Avvisade",
  "Misslyckade och utgångna", "Tid", "Händelse", "Inbjudan", "Bokning",
  "Personal", "Svar", "Versioner av integritetstexten", "Version", "Första",
  "Senaste", "Antal", "byttes till", "Konfiguration", "Ändrade nycklar",
  "Avbrott (glapp mellan förseglingar)", "Från", "Till", "Minuter",
  "Avvisningar per kod", "Kod", "inga", "inga förseglingar: avbrott kan inte"
  " avgöras (kör invitemail audit init)", "Tidszon", "(ingen enhet)",
  "samma som förra", "ny konfiguration", "Händelser",
  "mot det publicerade värdet: invitemail audit verify --key", "rader",
  "förseglingar", "Perioder då granskningsloggen inte kunde skrivas", "Sekunder",
  "Avvisade som unavailable", "Avvisningar utan egen rad",
  "oläslig audit_resumed-rad"
};

static const Words words_en = {
  "en", "Audit report", "Partial month", "the month is not over",
  "the audit log begins", "Chain verification", "the chain is intact",
  "THE CHAIN IS BROKEN", "Head to file away", "keep this row and hash off the host",
  "Summary", "Per day", "Per unit", "Day", "Unit", "Invites", "Recipients",
  "Sent", "Failed", "Expired", "Refused", "Failures and expiries", "Time",
  "Event", "Invite", "Booking", "Staff", "Reply", "Privacy notice versions",
  "Version", "First", "Last", "Count", "changed to", "Configuration",
  "Changed keys", "Outages (gaps between seals)", "From", "To", "Minutes",
  "Refusals by code", "Code", "none", "no seals: outages cannot be told"
  " (run invitemail audit init)", "Time zone", "(no unit)", "same as before",
  "new configuration", "Events",
  "against the published value: invitemail audit verify --key", "rows",
  "seals", "Periods the audit could not be written", "Seconds",
  "Refused unavailable", "Refusals without their row",
  "unreadable audit_resumed row"
};


static void
problem_free (Problem *p)
{
  g_free (p->event);
  g_free (p->invite);
  g_free (p->reply);
  g_free (p);
}

static void
note_free (Note *n)
{
  g_free (n->text);
  g_free (n->event);
  g_free (n->sha);
  g_free (n->changed);
  g_free (n);
}

static void
version_free (VersionUse *v)
{
  g_free (v->name);
  g_free (v);
}

static void
unwritable_free (Unwritable *u)
{
  g_free (u->unreadable);
  g_free (u);
}

static void
invite_info_free (InviteInfo *i)
{
  g_free (i->unit);
  g_free (i->staff);
  g_free (i->booking);
  g_free (i);
}

/* ---- the month ------------------------------------------------------- */

static gboolean
month_in_zone (Report *rp, const char *month)
{
  int y, m;
  char extra;

  if (month == NULL || strlen (month) != 7
      || sscanf (month, "%4d-%2d%c", &y, &m, &extra) != 2 || m < 1 || m > 12
      || y < 1970 || y > 9998)
    return FALSE;
  g_autoptr (GDateTime) a = g_date_time_new (rp->tz, y, m, 1, 0, 0, 0);
  g_autoptr (GDateTime) b = a ? g_date_time_add_months (a, 1) : NULL;
  if (b == NULL)
    return FALSE;
  rp->since = g_date_time_to_unix (a) * 1000;
  rp->until = g_date_time_to_unix (b) * 1000;
  rp->n_days = g_date_get_days_in_month ((GDateMonth) m, (GDateYear) y);
  return TRUE;
}

/* 0-based day of the month in the zone; -1 outside. */
static int
day_of (const Report *rp, gint64 ms)
{
  g_autoptr (GDateTime) utc = g_date_time_new_from_unix_utc (ms / 1000);
  g_autoptr (GDateTime) local = utc ? g_date_time_to_timezone (utc, rp->tz) : NULL;

  if (local == NULL || ms < rp->since || ms >= rp->until)
    return -1;
  return g_date_time_get_day_of_month (local) - 1;
}

char *
report_when (const Report *rp, gint64 ms)
{
  g_autoptr (GDateTime) utc = g_date_time_new_from_unix_utc (ms / 1000);
  g_autoptr (GDateTime) local = utc ? g_date_time_to_timezone (utc, rp->tz) : NULL;

  return local ? g_date_time_format (local, "%Y-%m-%d %H:%M") : g_strdup ("?");
}

/* ---- reading ----------------------------------------------------------- */

static Counts *
unit_counts (Report *rp, const char *unit)
{
  const char *key = unit ? unit : rp->w->no_unit;
  Counts *c = g_hash_table_lookup (rp->units, key);

  if (c == NULL)
    {
      c = g_new0 (Counts, 1);
      g_hash_table_insert (rp->units, g_strdup (key), c);
    }
  return c;
}

static guint
n_addresses (const char *list)
{
  guint n = 0;

  for (const char *p = list; p != NULL && *p != '\0'; p = strchr (p, ','), p = p ? p + 1 : NULL)
    n++;
  return n;
}

static void
take_version (Report *rp, const AuditRow *r)
{
  g_autofree char *v = evidence_get (r->detail, "notice_version");
  const char *name = v ? v : "-";
  VersionUse *use = NULL;

  for (guint i = 0; i < rp->versions->len && use == NULL; i++)
    if (strcmp (((VersionUse *) g_ptr_array_index (rp->versions, i))->name, name) == 0)
      use = g_ptr_array_index (rp->versions, i);
  if (use == NULL)
    {
      use = g_new0 (VersionUse, 1);
      use->name = g_strdup (name);
      use->first = r->time_ms;
      g_ptr_array_add (rp->versions, use);
    }
  use->count++;
  use->last = r->time_ms;
  if (rp->last_version != NULL && strcmp (rp->last_version, name) != 0)
    {
      Note *n = g_new0 (Note, 1);
      n->ms = r->time_ms;
      n->text = g_strdup_printf ("%s \u2192 %s", rp->last_version, name);
      g_ptr_array_add (rp->version_changes, n);
    }
  g_free (rp->last_version);
  rp->last_version = g_strdup (name);
}

static void
take_accepted (Report *rp, const AuditRow *r, int day)
{
  InviteInfo *info = g_new0 (InviteInfo, 1);
  guint n = n_addresses (r->recipients);
  Counts *u = unit_counts (rp, r->org_unit);

  info->unit = g_strdup (r->org_unit);
  info->staff = g_strdup (r->staff);
  info->booking = g_strdup (r->booking);
  if (r->invite_id != NULL)
    g_hash_table_replace (rp->invites, g_strdup (r->invite_id), info);
  else
    invite_info_free (info);
  rp->days[day].invites++;
  rp->days[day].recipients += n;
  rp->total.invites++;
  rp->total.recipients += n;
  u->invites++;
  u->recipients += n;
  take_version (rp, r);
}

static void
take_config (Report *rp, const AuditRow *r)
{
  Note *n = g_new0 (Note, 1);

  n->ms = r->time_ms;
  n->event = g_strdup (r->event);
  n->sha = evidence_get (r->detail, "config_sha256");
  n->changed = evidence_get (r->detail, "changed");
  if (n->changed == NULL && g_strcmp0 (r->event, "config_loaded") == 0 && n->sha)
    n->changed = g_strdup (rp->last_config == NULL ? "" : strcmp (rp->last_config, n->sha) == 0
                           ? rp->w->loaded_same : rp->w->loaded_new);
  if (n->changed == NULL && g_strcmp0 (r->event, "config_refused") == 0)
    n->changed = g_strdup (r->detail);
  if (n->sha != NULL && g_strcmp0 (r->event, "config_refused") != 0)
    {
      g_free (rp->last_config);
      rp->last_config = g_strdup (n->sha);
    }
  g_ptr_array_add (rp->configs, n);
}

static gboolean
late_accepted (const AuditRow *r, gpointer data)
{
  Report *rp = data;
  InviteInfo *info = g_new0 (InviteInfo, 1);

  info->unit = g_strdup (r->org_unit);
  info->staff = g_strdup (r->staff);
  info->booking = g_strdup (r->booking);
  g_hash_table_replace (rp->invites, g_strdup (r->invite_id), info);
  return FALSE;
}

/*
 * Unit, booking and staff of an outcome's invite: from this month's
 * accepted row, else looked up once (accepted in an earlier month; a
 * purged one is remembered as unknown).  The read runs between the
 * outer read's pages, on a connection of its own.
 */
static InviteInfo *
invite_info (Report *rp, const char *id)
{
  AuditFilter one = { .invite_id = id, .event = "accepted" };

  if (id == NULL)
    return NULL;
  if (!g_hash_table_contains (rp->invites, id)
      && (!audit_read (rp->o->db, &one, late_accepted, rp, NULL)
          || !g_hash_table_contains (rp->invites, id)))
    g_hash_table_insert (rp->invites, g_strdup (id), g_new0 (InviteInfo, 1));
  return g_hash_table_lookup (rp->invites, id);
}

/* sent, failed, expired: counted per day and per the invite's unit. */
static void
take_outcome (Report *rp, const AuditRow *r, int day)
{
  InviteInfo *info = invite_info (rp, r->invite_id);
  Counts *u = unit_counts (rp, info ? info->unit : NULL);
  gboolean sent = strcmp (r->event, "sent") == 0;
  gboolean failed = strcmp (r->event, "failed") == 0;
  Problem *p;

  rp->days[day].sent += sent;
  rp->total.sent += sent;
  u->sent += sent;
  rp->days[day].failed += failed;
  rp->total.failed += failed;
  u->failed += failed;
  rp->days[day].expired += !sent && !failed;
  rp->total.expired += !sent && !failed;
  u->expired += !sent && !failed;
  if (sent)
    return;
  p = g_new0 (Problem, 1);
  p->ms = r->time_ms;
  p->event = g_strdup (r->event);
  p->invite = g_strdup (r->invite_id);
  p->reply = g_strdup (r->smtp_reply);
  g_ptr_array_add (rp->problems, p);
}

/* At most this many characters of an unreadable detail are shown. */
#define UNREADABLE_MAX 160

/* A hostile detail as the writers may show it: valid UTF-8, no control
 * character (a line break or an escape sequence in the text report),
 * cut short. */
static char *
printable (const char *s)
{
  g_autofree char *valid = g_utf8_make_valid (s ? s : "", -1);
  glong n = g_utf8_strlen (valid, -1);
  g_autofree char *cut = g_utf8_substring (valid, 0, MIN (n, UNREADABLE_MAX));
  GString *o = g_string_new (NULL);

  for (const char *p = cut; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (g_unichar_iscntrl (c) || g_unichar_type (c) == G_UNICODE_FORMAT)
        g_string_append_c (o, '?');
      else
        g_string_append_unichar (o, c);
    }
  if (n > UNREADABLE_MAX)
    g_string_append (o, "\u2026");
  return g_string_free (o, FALSE);
}

/*
 * An `audit_resumed` row: the period it closes, when its detail is
 * exactly the gate's words and the period begins no later than the row;
 * else an unreadable entry at the row's time.  A row after the month
 * counts only when its period began in the month.
 */
static void
take_resumed (Report *rp, const AuditRow *r)
{
  Unwritable *u = g_new0 (Unwritable, 1);
  GateGap gap;

  u->row_ms = r->time_ms;
  if (gate_gap_parse (r->detail, &gap) && gap.since <= G_MAXINT64 / 1000
      && gap.since * 1000 <= r->time_ms)
    {
      u->from_ms = gap.since * 1000;
      u->secs = gap.secs;
      u->refused = gap.refused;
      u->unaudited = gap.unaudited;
    }
  else
    u->unreadable = printable (r->detail);
  if (r->time_ms >= rp->until && (u->unreadable != NULL || u->from_ms >= rp->until))
    {
      unwritable_free (u);
      return;
    }
  g_ptr_array_add (rp->unwritable, u);
}

/* The first `audit_resumed` row after the month: its period may have
 * begun in the month (a later one cannot: a period ends at its row). */
static gboolean
resumed_after (const AuditRow *r, gpointer data)
{
  take_resumed (data, r);
  return FALSE;
}

static void
count_key (GHashTable *h, const char *key)
{
  gpointer n = g_hash_table_lookup (h, key);

  g_hash_table_insert (h, g_strdup (key), GUINT_TO_POINTER (GPOINTER_TO_UINT (n) + 1));
}

static gboolean
report_row (const AuditRow *r, gpointer data)
{
  Report *rp = data;
  int day = day_of (rp, r->time_ms);

  if (day < 0)
    return TRUE;
  count_key (rp->events, r->event);
  if (strcmp (r->event, "accepted") == 0)
    take_accepted (rp, r, day);
  else if (strcmp (r->event, "sent") == 0 || strcmp (r->event, "failed") == 0
           || strcmp (r->event, "expired") == 0)
    take_outcome (rp, r, day);
  else if (strcmp (r->event, "rejected") == 0)
    {
      count_key (rp->refusals, r->error_code ? r->error_code : "?");
      rp->days[day].refused++;
      rp->total.refused++;
    }
  else if (g_str_has_prefix (r->event, "config_"))
    take_config (rp, r);
  else if (strcmp (r->event, "sealed") == 0)
    g_array_append_val (rp->seals, r->time_ms);
  else if (strcmp (r->event, "audit_resumed") == 0)
    take_resumed (rp, r);
  return TRUE;
}

/* Seals before the month: keeps only the newest (the outage that runs
 * into the month starts there). */
static gboolean
seal_before (const AuditRow *r, gpointer data)
{
  *(gint64 *) data = r->time_ms;
  return TRUE;
}

static gboolean
first_row (const AuditRow *r, gpointer data)
{
  *(gint64 *) data = r->time_ms;
  return FALSE;
}

static gboolean
report_read (Report *rp, GError **error)
{
  AuditFilter f = { .since_ms = rp->since, .until_ms = rp->until };
  AuditFilter before = { .event = "sealed", .until_ms = rp->since };
  AuditFilter after = { .event = "sealed", .since_ms = rp->until };
  AuditFilter resumed = { .event = "audit_resumed", .since_ms = rp->until };
  gint64 prev = 0, next = 0;

  if (!audit_read (rp->o->db, NULL, first_row, &rp->first_row_ms, error)
      || !audit_read (rp->o->db, &before, seal_before, &prev, error))
    return FALSE;
  if (prev != 0)
    g_array_append_val (rp->seals, prev);
  if (!audit_read (rp->o->db, &f, report_row, rp, error)
      || !audit_read (rp->o->db, &after, first_row, &next, error)
      || !audit_read (rp->o->db, &resumed, resumed_after, rp, error))
    return FALSE;
  if (next != 0)
    g_array_append_val (rp->seals, next);
  return TRUE;
}

static void
report_verify (Report *rp)
{
  g_autoptr (GError) error = NULL;
  /* A live file: rows after the last seal are counted, not a fault.
   * Without the published value the first seal's signature is not
   * checked; the text says where that is done. */
  AuditVerifyOptions vo = { .allow_unsealed_tail = TRUE };
  AuditVerifyReport v = { 0 };

  rp->verified = audit_verify_full (rp->o->db, &vo, &v, &error);
  rp->verify_text = rp->verified
    ? g_strdup_printf ("%s: %" G_GINT64_FORMAT " %s (%" G_GINT64_FORMAT "-%"
                       G_GINT64_FORMAT "), %" G_GINT64_FORMAT " %s (%s)",
                       rp->w->verify_ok, v.n_rows, rp->w->rows, v.first_seq,
                       v.last_seq, v.n_seals, rp->w->seals, rp->w->seals_unchecked)
    : g_strdup_printf ("%s: %s", rp->w->verify_bad, error->message);
  g_clear_error (&error);
  memcpy (rp->head_hash, "?", 2);
  if (!audit_read_head (rp->o->db, &rp->head_seq, rp->head_hash, &error))
    memcpy (rp->head_hash, "?", 2);
}

/* ---- findings ---------------------------------------------------------- */


/* Gaps between consecutive seals longer than twice the interval that
 * overlap the month; the last seal counts up to now when none followed. */
static GArray *
outages (const Report *rp, gint64 now)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (Outage));
  gint64 gap = 2 * (gint64) (rp->o->seal_interval ? rp->o->seal_interval : 900) * 1000;

  for (guint i = 0; i < rp->seals->len; i++)
    {
      gint64 a = g_array_index (rp->seals, gint64, i);
      gint64 b = i + 1 < rp->seals->len ? g_array_index (rp->seals, gint64, i + 1) : 0;
      gint64 end = b ? b : MIN (now, rp->until);
      Outage o = { a, b };

      if (end - a > gap && a < rp->until && end > rp->since)
        g_array_append_val (out, o);
    }
  return out;
}

gint64
report_outage_end (const Report *rp, const Outage *x)
{
  return x->to ? x->to : MIN (g_get_real_time () / 1000, rp->until);
}

static const char *
partial_reason (const Report *rp, gint64 now, char **owned)
{
  if (now < rp->until)
    return rp->w->not_over;
  if (rp->first_row_ms == 0 || rp->first_row_ms > rp->since)
    {
      g_autofree char *t = rp->first_row_ms ? report_when (rp, rp->first_row_ms) : g_strdup ("-");
      *owned = g_strdup_printf ("%s %s", rp->w->begins, t);
      return *owned;
    }
  return NULL;
}

GList *
report_sorted_keys (GHashTable *h)
{
  return g_list_sort (g_hash_table_get_keys (h), (GCompareFunc) g_utf8_collate);
}

/* ---- entry ------------------------------------------------------------- */

static void
report_free (Report *rp)
{
  g_clear_pointer (&rp->units, g_hash_table_unref);
  g_clear_pointer (&rp->invites, g_hash_table_unref);
  g_clear_pointer (&rp->problems, g_ptr_array_unref);
  g_clear_pointer (&rp->refusals, g_hash_table_unref);
  g_clear_pointer (&rp->events, g_hash_table_unref);
  g_clear_pointer (&rp->versions, g_ptr_array_unref);
  g_clear_pointer (&rp->version_changes, g_ptr_array_unref);
  g_clear_pointer (&rp->configs, g_ptr_array_unref);
  g_clear_pointer (&rp->seals, g_array_unref);
  g_clear_pointer (&rp->unwritable, g_ptr_array_unref);
  g_clear_pointer (&rp->tz, g_time_zone_unref);
  g_free (rp->last_version);
  g_free (rp->last_config);
  g_free (rp->verify_text);
}

static int
report_usage (const char *what)
{
  fprintf (stderr, "invitemail audit: report %s\n", what);
  return EXIT_USAGE;
}

int
cli_report (const ReportOptions *o)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GArray) outs = NULL;
  g_autofree char *owned = NULL;
  const char *fmt = o->format ? o->format : "text";
  const char *partial;
  Report rp = { .o = o };

  if (strcmp (fmt, "text") != 0 && strcmp (fmt, "html") != 0 && strcmp (fmt, "csv") != 0)
    return report_usage ("--format is html, text or csv");
  if (o->lang != NULL && strcmp (o->lang, "sv") != 0 && strcmp (o->lang, "en") != 0)
    return report_usage ("--lang is sv or en");
  if (o->sep != NULL && strcmp (o->sep, ",") != 0 && strcmp (o->sep, ";") != 0)
    return report_usage ("--sep is ',' or ';'");
  rp.w = o->lang && strcmp (o->lang, "en") == 0 ? &words_en : &words_sv;
  rp.tz = g_time_zone_new_identifier (o->timezone);
  if (rp.tz == NULL)
    return report_usage ("cannot load the organisation's time zone");
  if (!month_in_zone (&rp, o->month))
    {
      report_free (&rp);
      return report_usage ("needs --month YYYY-MM");
    }
  rp.units = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  rp.invites = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) invite_info_free);
  rp.problems = g_ptr_array_new_with_free_func ((GDestroyNotify) problem_free);
  rp.refusals = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  rp.events = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  rp.versions = g_ptr_array_new_with_free_func ((GDestroyNotify) version_free);
  rp.version_changes = g_ptr_array_new_with_free_func ((GDestroyNotify) note_free);
  rp.configs = g_ptr_array_new_with_free_func ((GDestroyNotify) note_free);
  rp.seals = g_array_new (FALSE, FALSE, sizeof (gint64));
  rp.unwritable = g_ptr_array_new_with_free_func ((GDestroyNotify) unwritable_free);
  if (!report_read (&rp, &error))
    {
      fprintf (stderr, "invitemail audit: %s\n", error->message);
      report_free (&rp);
      return exit_code_for_error (error);
    }
  report_verify (&rp);
  outs = outages (&rp, g_get_real_time () / 1000);
  partial = partial_reason (&rp, g_get_real_time () / 1000, &owned);
  if (strcmp (fmt, "html") == 0)
    report_write_html (&rp, out, outs, partial);
  else if (strcmp (fmt, "csv") == 0)
    report_write_csv (&rp, out, o->sep ? o->sep[0] : ',');
  else
    report_write_text (&rp, out, outs, partial);
  fwrite (out->str, 1, out->len, stdout);
  report_free (&rp);
  return EXIT_OK;
}
