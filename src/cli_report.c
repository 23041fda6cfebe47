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
 * month); refusals by code; whether the month is partial.
 *
 * Times and days are in the organisation's zone ([organisation]
 * timezone); the month is that zone's month.  HTML is one
 * self-contained file: inline style and SVG, no script, no remote
 * asset.  Every value is escaped for its format.  CSV is one table
 * (kind, key, counts) for spreadsheets: --sep ';' adds a UTF-8 BOM so a
 * spreadsheet in a Swedish locale opens it as such.
 *
 * Limits: the month's rows, the seals before it and the first seal after
 * it are read; the audit is never written.
 */
#include "cli_compliance.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "audit_read.h"
#include "audit_verify.h"
#include "evidence.h"
#include "exitcodes.h"

#define SVG_BAR 18
#define SVG_HEIGHT 160

typedef struct {
  const char *lang;
  const char *title, *partial, *not_over, *begins, *verify, *verify_ok,
    *verify_bad, *head, *head_keep, *summary, *per_day, *per_unit, *day,
    *unit, *invites, *recipients, *sent, *failed, *expired, *refused,
    *problems, *time, *event, *invite, *booking, *staff, *reply, *versions,
    *version, *first, *last, *count, *changed_to, *configs, *keys, *outages,
    *from, *to, *minutes, *refusals, *code, *none, *no_seals, *zone,
    *no_unit, *loaded_same, *loaded_new, *events, *seals_unchecked;
} Words;

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
  "mot det publicerade värdet: invitemail audit verify --key"
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
  "against the published value: invitemail audit verify --key"
};

typedef struct {
  guint invites, recipients, sent, failed, expired, refused;
} Counts;

typedef struct {
  char *unit, *staff, *booking;
} InviteInfo;

typedef struct {
  gint64 ms;
  char *event, *invite, *reply;
} Problem;

typedef struct {
  char *name;
  guint count;
  gint64 first, last;
} VersionUse;

typedef struct {
  gint64 ms;
  char *text;               /* "from -> to" or the row's values */
  char *event, *sha, *changed;
} Note;

typedef struct {
  const ReportOptions *o;
  const Words *w;
  GTimeZone *tz;
  gint64 since, until;      /* ms, the month in the zone */
  guint n_days;
  Counts days[31];
  Counts total;
  GHashTable *units;        /* unit -> Counts* */
  GHashTable *invites;      /* id -> InviteInfo* */
  GPtrArray *problems;      /* Problem* */
  GHashTable *refusals;     /* code -> count */
  GHashTable *events;       /* event -> count */
  GPtrArray *versions;      /* VersionUse* */
  GPtrArray *version_changes; /* Note* (text) */
  char *last_version;
  GPtrArray *configs;       /* Note* (event, sha, changed) */
  char *last_config;
  GArray *seals;            /* gint64 ms, in order, with the neighbours */
  gint64 first_row_ms;      /* oldest row in the file; 0 = empty */
  gboolean verified;
  char *verify_text;
  gint64 head_seq;
  char head_hash[65];
} Report;

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

static char *
when (const Report *rp, gint64 ms)
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

/* sent, failed, expired: counted per day and per the invite's unit. */
static void
take_outcome (Report *rp, const AuditRow *r, int day)
{
  InviteInfo *info = r->invite_id ? g_hash_table_lookup (rp->invites, r->invite_id) : NULL;
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

/* Booking, staff and unit of invites accepted before the month whose
 * failures fall in it. */
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

static gboolean
report_read (Report *rp, GError **error)
{
  AuditFilter f = { .since_ms = rp->since, .until_ms = rp->until };
  AuditFilter before = { .event = "sealed", .until_ms = rp->since };
  AuditFilter after = { .event = "sealed", .since_ms = rp->until };
  gint64 prev = 0, next = 0;

  if (!audit_read (rp->o->db, NULL, first_row, &rp->first_row_ms, error)
      || !audit_read (rp->o->db, &before, seal_before, &prev, error))
    return FALSE;
  if (prev != 0)
    g_array_append_val (rp->seals, prev);
  if (!audit_read (rp->o->db, &f, report_row, rp, error)
      || !audit_read (rp->o->db, &after, first_row, &next, error))
    return FALSE;
  if (next != 0)
    g_array_append_val (rp->seals, next);
  for (guint i = 0; i < rp->problems->len; i++)
    {
      Problem *p = g_ptr_array_index (rp->problems, i);
      AuditFilter one = { .invite_id = p->invite, .event = "accepted" };
      if (p->invite != NULL && !g_hash_table_contains (rp->invites, p->invite)
          && !audit_read (rp->o->db, &one, late_accepted, rp, error))
        return FALSE;
    }
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
    ? g_strdup_printf ("%s: %" G_GINT64_FORMAT " rows (%" G_GINT64_FORMAT "-%"
                       G_GINT64_FORMAT "), %" G_GINT64_FORMAT " seals (%s)",
                       rp->w->verify_ok, v.n_rows, v.first_seq, v.last_seq, v.n_seals,
                       rp->w->seals_unchecked)
    : g_strdup_printf ("%s: %s", rp->w->verify_bad, error->message);
  g_clear_error (&error);
  memcpy (rp->head_hash, "?", 2);
  if (!audit_read_head (rp->o->db, &rp->head_seq, rp->head_hash, &error))
    memcpy (rp->head_hash, "?", 2);
}

/* ---- findings ---------------------------------------------------------- */

typedef struct {
  gint64 from, to;          /* to = 0: no seal since */
} Outage;

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

static const char *
partial_reason (const Report *rp, gint64 now, char **owned)
{
  if (now < rp->until)
    return rp->w->not_over;
  if (rp->first_row_ms == 0 || rp->first_row_ms > rp->since)
    {
      g_autofree char *t = rp->first_row_ms ? when (rp, rp->first_row_ms) : g_strdup ("-");
      *owned = g_strdup_printf ("%s %s", rp->w->begins, t);
      return *owned;
    }
  return NULL;
}

static GList *
sorted_keys (GHashTable *h)
{
  return g_list_sort (g_hash_table_get_keys (h), (GCompareFunc) g_utf8_collate);
}

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
  g_autoptr (GList) keys = sorted_keys (h);

  g_string_append_printf (o, "\n%s\n", title);
  for (GList *l = keys; l != NULL; l = l->next)
    g_string_append_printf (o, "  %-24s %u\n", (char *) l->data,
                            GPOINTER_TO_UINT (g_hash_table_lookup (h, l->data)));
  if (keys == NULL)
    g_string_append_printf (o, "  (%s)\n", w->none);
}

static void
write_text (Report *rp, GString *o, GArray *outs, const char *partial)
{
  const Words *w = rp->w;
  g_autoptr (GList) units = sorted_keys (rp->units);

  g_string_append_printf (o, "%s %s (%s: %s)\n", w->title, rp->o->month, w->zone,
                          rp->o->timezone);
  if (partial)
    g_string_append_printf (o, "%s: %s\n", w->partial, partial);
  g_string_append_printf (o, "\n%s: %s\n%s: %" G_GINT64_FORMAT " %s (%s)\n",
                          w->verify, rp->verify_text, w->head, rp->head_seq,
                          rp->head_hash, w->head_keep);
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
      g_autofree char *t = when (rp, p->ms);
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
      g_autofree char *a = when (rp, v->first), *b = when (rp, v->last);
      g_string_append_printf (o, "  %-16s %6u  %s .. %s\n", v->name, v->count, a, b);
    }
  for (guint i = 0; i < rp->version_changes->len; i++)
    {
      Note *n = g_ptr_array_index (rp->version_changes, i);
      g_autofree char *t = when (rp, n->ms);
      g_string_append_printf (o, "  %s %s\n", t, n->text);
    }
  g_string_append_printf (o, "\n%s\n", w->configs);
  for (guint i = 0; i < rp->configs->len; i++)
    {
      Note *n = g_ptr_array_index (rp->configs, i);
      g_autofree char *t = when (rp, n->ms);
      g_string_append_printf (o, "  %s %-16s %.12s %s\n", t, n->event, n->sha ? n->sha : "-",
                              n->changed ? n->changed : "");
    }
  g_string_append_printf (o, "\n%s\n", w->outages);
  if (rp->seals->len == 0)
    g_string_append_printf (o, "  (%s)\n", w->no_seals);
  for (guint i = 0; i < outs->len; i++)
    {
      Outage *x = &g_array_index (outs, Outage, i);
      g_autofree char *a = when (rp, x->from);
      g_autofree char *b = x->to ? when (rp, x->to) : g_strdup ("-");
      gint64 end = x->to ? x->to : MIN (g_get_real_time () / 1000, rp->until);
      g_string_append_printf (o, "  %s .. %s  %" G_GINT64_FORMAT " min\n", a, b,
                              (end - x->from) / 60000);
    }
  text_table (o, w, w->refusals, rp->refusals);
  text_table (o, w, w->events, rp->events);
}

/* ---- csv --------------------------------------------------------------- */

static void
csv_counts (GString *o, char sep, const char *kind, const char *key, const Counts *c)
{
  char n[6][16];
  const guint v[6] = { c->invites, c->recipients, c->sent, c->failed, c->expired,
                       c->refused };
  const char *f[8] = { kind, key, n[0], n[1], n[2], n[3], n[4], n[5] };

  for (int i = 0; i < 6; i++)
    g_snprintf (n[i], sizeof n[i], "%u", v[i]);
  cli_csv_line (o, f, 8, sep);
}

static void
write_csv (Report *rp, GString *o, char sep)
{
  static const char *const head[] = { "kind", "key", "invites", "recipients", "sent",
                                      "failed", "expired", "refused" };
  g_autoptr (GList) units = sorted_keys (rp->units);

  if (sep == ';')
    g_string_append (o, "\xEF\xBB\xBF");   /* UTF-8 BOM: spreadsheets read UTF-8 */
  cli_csv_line (o, head, G_N_ELEMENTS (head), sep);
  for (guint d = 0; d < rp->n_days; d++)
    {
      g_autofree char *key = g_strdup_printf ("%s-%02u", rp->o->month, d + 1);
      csv_counts (o, sep, "day", key, &rp->days[d]);
    }
  for (GList *l = units; l != NULL; l = l->next)
    csv_counts (o, sep, "unit", l->data, g_hash_table_lookup (rp->units, l->data));
  csv_counts (o, sep, "total", rp->o->month, &rp->total);
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
      g_autofree char *t = when (rp, p->ms);
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
      g_autofree char *a = when (rp, v->first), *b = when (rp, v->last);
      const char *cells[] = { v->name, n, a, b };
      h_row (o, "td", cells, G_N_ELEMENTS (cells));
    }
  g_string_append (o, "</table>\n<ul>\n");
  for (guint i = 0; i < rp->version_changes->len; i++)
    {
      Note *n = g_ptr_array_index (rp->version_changes, i);
      g_autofree char *t = when (rp, n->ms);
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
      g_autofree char *t = when (rp, n->ms);
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
      gint64 end = x->to ? x->to : MIN (g_get_real_time () / 1000, rp->until);
      g_autofree char *a = when (rp, x->from);
      g_autofree char *b = x->to ? when (rp, x->to) : g_strdup ("-");
      g_autofree char *m = g_strdup_printf ("%" G_GINT64_FORMAT, (end - x->from) / 60000);
      const char *cells[] = { a, b, m };
      h_row (o, "td", cells, G_N_ELEMENTS (cells));
    }
  g_string_append (o, "</table>\n");
}

static void
h_count_table (GString *o, Report *rp, const char *title, const char *first,
               GHashTable *h)
{
  g_autoptr (GList) codes = sorted_keys (h);
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

static const char report_css[] =
  "body{font-family:system-ui,sans-serif;margin:2em;color:#111;background:#fff}"
  "table{border-collapse:collapse;margin:.5em 0 1.5em}"
  "th,td{border:1px solid #bbb;padding:.2em .6em;text-align:left}"
  "td{font-variant-numeric:tabular-nums}"
  ".partial{background:#fff3cd;border:1px solid #e0b000;padding:.5em}"
  ".bad{color:#a00;font-weight:bold}.hash{font-family:monospace;word-break:break-all}"
  ".axis{font-size:10px;fill:#444}.legend span{display:inline-block;width:1em;height:1em}"
  ".k1{background:#08519c}.k2{background:#9ecae1}";

static void
write_html (Report *rp, GString *o, GArray *outs, const char *partial)
{
  const Words *w = rp->w;
  g_autoptr (GList) units = sorted_keys (rp->units);
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
  h_count_table (o, rp, w->refusals, w->code, rp->refusals);
  h_count_table (o, rp, w->events, w->event, rp->events);
  g_string_append (o, "</body>\n</html>\n");
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
    write_html (&rp, out, outs, partial);
  else if (strcmp (fmt, "csv") == 0)
    write_csv (&rp, out, o->sep ? o->sep[0] : ',');
  else
    write_text (&rp, out, outs, partial);
  fwrite (out->str, 1, out->len, stdout);
  report_free (&rp);
  return EXIT_OK;
}
