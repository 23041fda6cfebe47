/*
 * cli_subject.c - subject access (GDPR Art. 15): every invite sent to
 * one address, from the audit and, while it still holds them, the queue.
 *
 * The address matches in U-label and A-label form (the domain through
 * g_hostname_to_ascii) and without case in the domain; the local part
 * as written.  The one place that decides whether a stored address is
 * the subject's is subject_matches: when the audit keeps keyed hashes
 * instead of clear addresses, only it changes.
 *
 * Co-recipients are never shown: an invite lists how many others it
 * had, not who.  Values come from files only the daemon writes, but are
 * escaped for every format all the same.
 */
#include "cli_compliance.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "audit_read.h"
#include "envelope.h"
#include "evidence.h"
#include "exitcodes.h"
#include "queue.h"

typedef struct {
  char *local;              /* as given */
  char *domain;             /* A-label form, lower case */
  char *domain_unicode;     /* U-label form, for the heading */
} Subject;

typedef struct {
  char *invite_id;
  gint64 time_ms;           /* accepted (or first seen) */
  char *unit, *staff, *booking, *lang;
  char *notice_version, *meeting_time;
  char *outcome;            /* last event for this address, or queue state */
  gint64 outcome_ms;
  char *reply;
  gint others;              /* co-recipients; -1 unknown */
  const char *source;       /* "audit", "queue" or "audit+queue" */
} SubjectInvite;

typedef struct {
  Subject subject;
  GHashTable *by_id;        /* invite id -> SubjectInvite (owned by list) */
  GPtrArray *list;          /* in the order first seen */
} SubjectScan;

static void
subject_invite_free (SubjectInvite *v)
{
  g_free (v->invite_id);
  g_free (v->unit);
  g_free (v->staff);
  g_free (v->booking);
  g_free (v->lang);
  g_free (v->notice_version);
  g_free (v->meeting_time);
  g_free (v->outcome);
  g_free (v->reply);
  g_free (v);
}

/* A host name in A-label form: letters, digits, '-' and '.'. */
static gboolean
domain_ok (const char *ascii)
{
  if (ascii == NULL || *ascii == '\0')
    return FALSE;
  for (const char *p = ascii; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.')
      return FALSE;
  return TRUE;
}

/* ADDR into its parts; FALSE when it is no address (also for control
 * characters or spaces anywhere: no stored address has them). */
static gboolean
subject_parse (const char *addr, Subject *s)
{
  const char *at = addr ? strrchr (addr, '@') : NULL;
  g_autofree char *ascii = NULL;

  if (at == NULL || at == addr || at[1] == '\0' || !g_utf8_validate (addr, -1, NULL))
    return FALSE;
  for (const char *p = addr; *p; p++)
    if ((unsigned char) *p <= ' ' || *p == 0x7f)
      return FALSE;
  ascii = g_hostname_to_ascii (at + 1);
  if (!domain_ok (ascii))
    return FALSE;
  s->local = g_strndup (addr, (gsize) (at - addr));
  s->domain = g_ascii_strdown (ascii, -1);
  s->domain_unicode = g_hostname_to_unicode (s->domain);
  if (s->domain_unicode == NULL)
    s->domain_unicode = g_strdup (s->domain);
  return TRUE;
}

static void
subject_clear (Subject *s)
{
  g_free (s->local);
  g_free (s->domain);
  g_free (s->domain_unicode);
}

/* Whether one stored address is the subject's (the header comment). */
static gboolean
subject_matches (const Subject *s, const char *stored)
{
  g_autofree char *mine = g_strdup_printf ("%s@%s", s->local, s->domain);

  return stored != NULL && strchr (stored, '@') != NULL
         && envelope_same_address (stored, mine);
}

/* Whether a comma-joined list holds the subject; *n gets its length. */
static gboolean
list_matches (const Subject *s, const char *list, gint *n)
{
  g_auto (GStrv) parts = g_strsplit (list ? list : "", ",", -1);
  gboolean hit = FALSE;

  *n = 0;
  for (guint i = 0; parts[i] != NULL; i++)
    if (parts[i][0] != '\0')
      {
        (*n)++;
        hit = hit || subject_matches (s, parts[i]);
      }
  return hit;
}

static SubjectInvite *
scan_get (SubjectScan *sc, const char *id, gint64 time_ms, const char *source)
{
  SubjectInvite *v = g_hash_table_lookup (sc->by_id, id);

  if (v != NULL)
    return v;
  v = g_new0 (SubjectInvite, 1);
  v->invite_id = g_strdup (id);
  v->time_ms = time_ms;
  v->others = -1;
  v->source = source;
  g_ptr_array_add (sc->list, v);
  g_hash_table_insert (sc->by_id, v->invite_id, v);
  return v;
}

static void
take_accepted (SubjectInvite *v, const AuditRow *r, gint n)
{
  v->time_ms = r->time_ms;
  v->unit = g_strdup (r->org_unit);
  v->staff = g_strdup (r->staff);
  v->booking = g_strdup (r->booking);
  v->lang = g_strdup (r->lang);
  v->notice_version = evidence_get (r->detail, "notice_version");
  v->meeting_time = evidence_get (r->detail, "meeting_time");
  v->others = n - 1;
  if (v->outcome == NULL)
    v->outcome = g_strdup ("accepted");
}

static gboolean
scan_audit_row (const AuditRow *r, gpointer data)
{
  static const char *const outcomes[] = {
    "sent", "deferred", "failed", "expired", "recovered", NULL
  };
  SubjectScan *sc = data;
  SubjectInvite *v;
  gint n;

  if (r->invite_id == NULL || !list_matches (&sc->subject, r->recipients, &n))
    return TRUE;
  v = scan_get (sc, r->invite_id, r->time_ms, "audit");
  if (g_strcmp0 (r->event, "accepted") == 0)
    take_accepted (v, r, n);
  else if (g_strv_contains (outcomes, r->event))
    {
      g_free (v->outcome);
      g_free (v->reply);
      v->outcome = g_strdup (r->event);
      v->outcome_ms = r->time_ms;
      v->reply = g_strdup (r->smtp_reply);
    }
  return TRUE;
}

/* The queue's view: its state wins for invites still in delivery. */
static gboolean
scan_queue_row (const QueueRecipientRow *q, gpointer data)
{
  SubjectScan *sc = data;
  SubjectInvite *v;
  gboolean known;

  if (!subject_matches (&sc->subject, q->address))
    return TRUE;
  known = g_hash_table_contains (sc->by_id, q->invite_id);
  v = scan_get (sc, q->invite_id, q->created * 1000, "queue");
  if (known)
    v->source = "audit+queue";
  else
    {
      v->staff = g_strdup (q->staff);
      v->booking = g_strdup (q->booking);
    }
  g_free (v->outcome);
  v->outcome = g_strdup (q->state);
  v->outcome_ms = q->updated * 1000;
  return TRUE;
}

static gint
by_time (gconstpointer a, gconstpointer b)
{
  const SubjectInvite *x = *(SubjectInvite *const *) a;
  const SubjectInvite *y = *(SubjectInvite *const *) b;

  return x->time_ms < y->time_ms ? -1 : x->time_ms > y->time_ms;
}

/* ---- output ------------------------------------------------------------ */

static const char *const subject_columns[] = {
  "time", "invite_id", "unit", "staff", "booking", "outcome", "outcome_time",
  "reply", "notice_version", "meeting_time", "lang", "other_recipients",
  "source", NULL
};

/* The values of one invite in subject_columns' order. (transfer full) */
static GPtrArray *
invite_values (const SubjectInvite *v, GTimeZone *tz)
{
  GPtrArray *a = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (a, cli_format_time (v->time_ms, tz));
  g_ptr_array_add (a, g_strdup (v->invite_id));
  g_ptr_array_add (a, g_strdup (v->unit));
  g_ptr_array_add (a, g_strdup (v->staff));
  g_ptr_array_add (a, g_strdup (v->booking));
  g_ptr_array_add (a, g_strdup (v->outcome));
  g_ptr_array_add (a, v->outcome_ms ? cli_format_time (v->outcome_ms, tz) : NULL);
  g_ptr_array_add (a, g_strdup (v->reply));
  g_ptr_array_add (a, g_strdup (v->notice_version));
  g_ptr_array_add (a, g_strdup (v->meeting_time));
  g_ptr_array_add (a, g_strdup (v->lang));
  g_ptr_array_add (a, v->others >= 0 ? g_strdup_printf ("%d", v->others) : NULL);
  g_ptr_array_add (a, g_strdup (v->source));
  return a;
}

static void
print_text (const SubjectScan *sc, GTimeZone *tz, const char *zone)
{
  printf ("subject access: %s@%s", sc->subject.local, sc->subject.domain_unicode);
  if (strcmp (sc->subject.domain, sc->subject.domain_unicode) != 0)
    printf (" (also written %s@%s)", sc->subject.local, sc->subject.domain);
  printf ("\n%u invite(s); times in %s; other recipients are not shown\n",
          sc->list->len, zone);
  for (guint i = 0; i < sc->list->len; i++)
    {
      g_autoptr (GPtrArray) a = invite_values (g_ptr_array_index (sc->list, i), tz);

      printf ("\n");
      for (guint c = 0; subject_columns[c] != NULL; c++)
        if (g_ptr_array_index (a, c) != NULL)
          printf ("  %-17s %s\n", subject_columns[c], (char *) g_ptr_array_index (a, c));
    }
}

static void
print_rows (const SubjectScan *sc, GTimeZone *tz, gboolean csv)
{
  g_autoptr (GString) out = g_string_new (NULL);

  if (csv)
    cli_csv_line (out, subject_columns, g_strv_length ((char **) subject_columns), ',');
  for (guint i = 0; i < sc->list->len; i++)
    {
      g_autoptr (GPtrArray) a = invite_values (g_ptr_array_index (sc->list, i), tz);

      if (csv)
        {
          cli_csv_line (out, (const char *const *) a->pdata, a->len, ',');
          continue;
        }
      g_string_append_c (out, '{');
      for (guint c = 0; c < a->len; c++)
        {
          const char *s = g_ptr_array_index (a, c);
          g_string_append_printf (out, "%s\"%s\":", c ? "," : "", subject_columns[c]);
          if (s == NULL)
            g_string_append (out, "null");
          else if (strcmp (subject_columns[c], "other_recipients") == 0)
            g_string_append (out, s);      /* a number, made here */
          else
            cli_json_string (out, s);
        }
      g_string_append (out, "}\n");
    }
  fwrite (out->str, 1, out->len, stdout);
}

int
cli_subject (const char *address, const SubjectOptions *o)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GTimeZone) tz = o->timezone ? g_time_zone_new_identifier (o->timezone)
                                         : NULL;
  SubjectScan sc = { 0 };
  AuditFilter f = { .recipient = address };
  int rc = EXIT_OK;

  if (o->format != NULL && strcmp (o->format, "text") != 0
      && strcmp (o->format, "csv") != 0 && strcmp (o->format, "jsonl") != 0)
    {
      fprintf (stderr, "invitemail audit: subject --format is text, csv or jsonl\n");
      return EXIT_USAGE;
    }
  if (!subject_parse (address, &sc.subject))
    {
      fprintf (stderr, "invitemail audit: subject needs an address (local@domain)\n");
      return EXIT_USAGE;
    }
  if (tz == NULL)
    tz = g_time_zone_new_utc ();
  sc.by_id = g_hash_table_new (g_str_hash, g_str_equal);
  sc.list = g_ptr_array_new_with_free_func ((GDestroyNotify) subject_invite_free);
  /* The filter picks the rows by the address's keyed hash in SQL (same
   * normal form: domain as a lower-case A-label); subject_matches still
   * decides on each resolved row. */
  if (!audit_read (o->db, &f, scan_audit_row, &sc, &error))
    {
      fprintf (stderr, "invitemail audit: %s\n", error->message);
      rc = exit_code_for_error (error);
    }
  else if (o->queue_db != NULL
           && !queue_read_domain (o->queue_db, sc.subject.domain, scan_queue_row, &sc,
                                  &error))
    fprintf (stderr, "invitemail audit: the queue was not searched (%s);"
             " the audit was\n", error->message);
  if (rc == EXIT_OK)
    {
      g_ptr_array_sort (sc.list, by_time);
      if (o->format == NULL || strcmp (o->format, "text") == 0)
        print_text (&sc, tz, o->timezone ? o->timezone : "UTC");
      else
        print_rows (&sc, tz, strcmp (o->format, "csv") == 0);
    }
  g_hash_table_unref (sc.by_id);
  g_ptr_array_unref (sc.list);
  subject_clear (&sc.subject);
  return rc;
}
