/*
 * cli_audit.c - the audit review commands.  See cli_audit.h.
 *
 * Output formats: `list` and `show` print one aligned line per row for
 * a person; `export --format csv` writes RFC 4180 CSV (every field
 * quoted, quotes doubled, CRLF rows) and `--format jsonl` one JSON
 * object per line.  Values come from the audit file, which only the
 * daemon writes, but they are escaped all the same.
 */
#include "cli_audit.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "config.h"
#include "exitcodes.h"
#include "version.h"

typedef struct {
  char *db;
  char *config;
  char *invite;
  char *event;
  char *since;
  char *until;
  char *format;
} AuditOptions;

static char *
default_db (const AuditOptions *o, GError **error)
{
  const char *path = o->config;
  g_autoptr (Config) cfg = NULL;

  if (o->db != NULL)
    return g_strdup (o->db);
  if (path == NULL && g_file_test (CONFIG_DEFAULT_PATH, G_FILE_TEST_EXISTS))
    path = CONFIG_DEFAULT_PATH;
  if (path == NULL)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                   "no audit file: give --db PATH or -c CONFIG");
      return NULL;
    }
  cfg = config_load_public (path, error);
  return cfg ? g_strdup (cfg->audit_db) : NULL;
}

/* Accepts RFC 3339 / ISO 8601 with offset, or a plain date (UTC). */
static gboolean
parse_time (const char *s, gint64 *ms)
{
  g_autoptr (GTimeZone) utc = g_time_zone_new_utc ();
  g_autoptr (GDateTime) dt = NULL;
  g_autofree char *full = NULL;

  if (s == NULL)
    return TRUE;
  if (strlen (s) == 10)
    s = full = g_strconcat (s, "T00:00:00Z", NULL);
  dt = g_date_time_new_from_iso8601 (s, utc);
  if (dt == NULL)
    return FALSE;
  *ms = g_date_time_to_unix (dt) * 1000;
  return TRUE;
}

static char *
format_time (gint64 ms)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (ms / 1000);

  return dt ? g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup ("?");
}

#define S(x) ((x) ? (x) : "")

static gboolean
print_row (const AuditRow *r, gpointer data)
{
  g_autofree char *t = format_time (r->time_ms);

  printf ("%6" G_GINT64_FORMAT " %s %-17s %-20s", r->seq, t, r->event, S (r->invite_id));
  if (r->peer_uid >= 0)
    printf (" uid=%" G_GINT64_FORMAT, r->peer_uid);
  if (r->staff)
    printf (" staff=%s", r->staff);
  if (r->booking)
    printf (" booking=%s", r->booking);
  if (r->recipients)
    printf (" rcpt=%s", r->recipients);
  if (r->error_code)
    printf (" error=%s", r->error_code);
  if (r->field)
    printf (" field=%s", r->field);
  if (r->smtp_reply)
    printf (" reply=\"%s\"", r->smtp_reply);
  if (r->detail)
    printf (" detail=\"%s\"", r->detail);
  if (r->notice_sha256)
    printf (" notice=%.12s", r->notice_sha256);
  if (r->message_sha256)
    printf (" message=%.12s", r->message_sha256);
  printf ("\n");
  return TRUE;
}

static const char *const columns[] = {
  "seq", "time", "event", "invite_id", "peer_uid", "staff", "booking",
  "recipients", "smtp_reply", "error_code", "field", "detail", "lang",
  "template", "link_sha256", "notice_sha256", "template_sha256",
  "signature_sha256", "message_sha256", "prev_hash", "row_hash", NULL
};

/* The row's values in the order of columns[]; (transfer full) */
static GPtrArray *
row_values (const AuditRow *r)
{
  GPtrArray *v = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (v, g_strdup_printf ("%" G_GINT64_FORMAT, r->seq));
  g_ptr_array_add (v, format_time (r->time_ms));
  g_ptr_array_add (v, g_strdup (r->event));
  g_ptr_array_add (v, g_strdup (r->invite_id));
  g_ptr_array_add (v, r->peer_uid >= 0 ? g_strdup_printf ("%" G_GINT64_FORMAT, r->peer_uid)
                   : NULL);
  const char *const more[] = { r->staff, r->booking, r->recipients, r->smtp_reply,
                               r->error_code, r->field, r->detail, r->lang,
                               r->template_name, r->link_sha256, r->notice_sha256,
                               r->template_sha256, r->signature_sha256,
                               r->message_sha256, r->prev_hash, r->row_hash };
  for (gsize i = 0; i < G_N_ELEMENTS (more); i++)
    g_ptr_array_add (v, g_strdup (more[i]));
  return v;
}

static gboolean
print_csv (const AuditRow *r, gpointer data)
{
  g_autoptr (GPtrArray) v = row_values (r);

  for (guint i = 0; i < v->len; i++)
    {
      const char *s = g_ptr_array_index (v, i);
      g_autoptr (GString) q = g_string_new ("\"");
      for (const char *p = S (s); *p; p++)
        g_string_append (q, *p == '"' ? "\"\"" : (char[]) { *p, 0 });
      g_string_append_c (q, '"');
      printf ("%s%s", i ? "," : "", q->str);
    }
  printf ("\r\n");
  return TRUE;
}

static void
json_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_printf (out, "\\%c", *p);
      else if (*p < 0x20)
        g_string_append_printf (out, "\\u%04x", *p);
      else
        g_string_append_c (out, (char) *p);
    }
  g_string_append_c (out, '"');
}

static gboolean
print_jsonl (const AuditRow *r, gpointer data)
{
  g_autoptr (GPtrArray) v = row_values (r);
  g_autoptr (GString) out = g_string_new ("{");

  for (guint i = 0; i < v->len; i++)
    {
      const char *s = g_ptr_array_index (v, i);
      g_string_append_printf (out, "%s\"%s\":", i ? "," : "", columns[i]);
      if (s == NULL)
        g_string_append (out, "null");
      else if (i == 0 || (i == 4 && s != NULL))
        g_string_append (out, s);
      else
        json_string (out, s);
    }
  g_string_append (out, "}");
  printf ("%s\n", out->str);
  return TRUE;
}

static int
do_read (const char *db, const AuditOptions *o, AuditRowFunc fn)
{
  g_autoptr (GError) error = NULL;
  AuditFilter f = { .invite_id = o->invite, .event = o->event };

  if (!parse_time (o->since, &f.since_ms) || !parse_time (o->until, &f.until_ms))
    {
      fprintf (stderr, "invitemail audit: --since/--until take RFC 3339 time or YYYY-MM-DD\n");
      return EXIT_USAGE;
    }
  if (fn == print_csv)
    {
      for (guint i = 0; columns[i]; i++)
        printf ("%s\"%s\"", i ? "," : "", columns[i]);
      printf ("\r\n");
    }
  if (!audit_read (db, &f, fn, NULL, &error))
    {
      fprintf (stderr, "invitemail audit: %s\n", error->message);
      return exit_code_for_error (error);
    }
  return EXIT_OK;
}

static int
do_verify (const char *db)
{
  g_autoptr (GError) error = NULL;
  gint64 n = 0;

  if (!audit_verify (db, &n, &error))
    {
      printf ("audit verify: FAILED: %s\n", error->message);
      return exit_code_for_error (error);
    }
  printf ("audit verify: ok, %" G_GINT64_FORMAT " rows, chain intact\n", n);
  return EXIT_OK;
}

static int
dispatch (const char *cmd, AuditOptions *o, int argc, char **argv, const char *db)
{
  if (strcmp (cmd, "list") == 0 && argc == 0)
    return do_read (db, o, print_row);
  if (strcmp (cmd, "show") == 0 && argc == 1)
    {
      o->invite = g_strdup (argv[0]);
      return do_read (db, o, print_row);
    }
  if (strcmp (cmd, "export") == 0 && argc == 0)
    {
      if (g_strcmp0 (o->format, "jsonl") == 0)
        return do_read (db, o, print_jsonl);
      if (o->format == NULL || strcmp (o->format, "csv") == 0)
        return do_read (db, o, print_csv);
      fprintf (stderr, "invitemail audit: --format is csv or jsonl\n");
      return EXIT_USAGE;
    }
  if (strcmp (cmd, "verify") == 0 && argc == 0)
    return do_verify (db);
  fprintf (stderr, "invitemail audit: unknown command or wrong arguments (try --help)\n");
  return EXIT_USAGE;
}

int
cli_audit_main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  AuditOptions o = { 0 };
  gboolean version = FALSE;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &o.db, "Audit file (default: audit_db of the config)", "PATH" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &o.config, "Configuration file", "FILE" },
    { "invite", 0, 0, G_OPTION_ARG_STRING, &o.invite, "Only rows of this invite", "ID" },
    { "event", 0, 0, G_OPTION_ARG_STRING, &o.event, "Only this event (accepted, sent, ...)", "EVENT" },
    { "since", 0, 0, G_OPTION_ARG_STRING, &o.since, "Rows at or after TIME", "TIME" },
    { "until", 0, 0, G_OPTION_ARG_STRING, &o.until, "Rows before TIME", "TIME" },
    { "format", 0, 0, G_OPTION_ARG_STRING, &o.format, "export: csv (default) or jsonl", "FMT" },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("list|show ID|export|verify - review the audit log");
  g_autofree char *db = NULL;
  int rc;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx,
    "Read-only.  verify checks every row's hash and its link to the row before;\n"
    "it exits 0 when the chain is intact and 1 naming the first bad row.");
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || (argc < 2 && !version))
    {
      fprintf (stderr, "invitemail audit: %s (try --help)\n",
               error ? error->message : "a command is needed");
      return EXIT_USAGE;
    }
  if (version)
    {
      printf ("%s\n", INVITEMAIL_VERSION_TEXT);
      return EXIT_OK;
    }
  if ((db = default_db (&o, &error)) == NULL)
    {
      fprintf (stderr, "invitemail audit: %s\n", error->message);
      return exit_code_for_error (error);
    }
  if (!g_file_test (db, G_FILE_TEST_IS_REGULAR))
    {
      fprintf (stderr, "invitemail audit: %s: no such audit file\n", db);
      return EXIT_NOINPUT;
    }
  rc = dispatch (argv[1], &o, argc - 2, argv + 2, db);
  g_free (o.db);
  g_free (o.config);
  g_free (o.invite);
  g_free (o.event);
  g_free (o.since);
  g_free (o.until);
  g_free (o.format);
  return rc;
}
