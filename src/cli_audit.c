/*
 * cli_audit.c - the audit review commands.  See cli_audit.h.
 *
 * One branch per command in dispatch(): list, show, export, verify,
 * head, subject and report only read (the last two live in
 * cli_subject.c and cli_report.c), through a read-only connection that works
 * for a compliance user with no write access (audit_read.c); init is
 * the one command that writes (the first key and seal) and is run once
 * by the administrator, as the daemon's user, with the daemon stopped.
 *
 * Output formats: `list` and `show` print one aligned line per row for
 * a person; `export --format csv` writes RFC 4180 CSV (every field
 * quoted, quotes doubled, CRLF rows) and `--format jsonl` one JSON
 * object per line.  Values come from the audit file, which only the
 * daemon writes, but they are escaped all the same.
 *
 * verify proves the chain from the published value (audit_verify.h):
 * exit 0 when every check held (the words say which), 1 naming the
 * first fault; rows after the last seal fail it unless
 * --allow-unsealed-tail, which prints how many.
 */
#include "cli_audit.h"

#include <stdio.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "audit.h"
#include "audit_anchor.h"
#include "audit_erase.h"
#include "audit_read.h"
#include "audit_seal.h"
#include "audit_verify.h"
#include "cli_compliance.h"
#include "config.h"
#include "queue.h"
#include "retention.h"
#include "exitcodes.h"
#include "fileio.h"
#include "version.h"

typedef struct {
  char *db;
  char *config;
  char *invite;
  char *event;
  char *since;
  char *until;
  char *booking;
  char *staff;
  char *recipient;
  char *format;
  char *key;
  char *key_file;
  char *month;
  char *anchors;
  char *public_out;
  gint64 max_age;           /* seconds; 0 = no limit */
  gboolean allow_tail;
  gboolean chain_only;
  gboolean json;
  char *lang;
  char *sep;
  char *queue;
  gboolean all;
  Config *cfg;              /* loaded when -c or the default exists */
} AuditOptions;

static void
options_clear (AuditOptions *o)
{
  char **s[] = { &o->db, &o->config, &o->invite, &o->event, &o->since,
                 &o->until, &o->booking, &o->staff, &o->recipient,
                 &o->format, &o->key, &o->key_file, &o->month, &o->anchors,
                 &o->public_out, &o->lang, &o->sep, &o->queue };

  for (gsize i = 0; i < G_N_ELEMENTS (s); i++)
    g_clear_pointer (s[i], g_free);
  g_clear_pointer (&o->cfg, config_free);
}

/* The audit file: --db, else audit_db of -c FILE or the default config. */
static char *
default_db (AuditOptions *o, GError **error)
{
  const char *path = o->config;

  /* With --db, the default configuration is not needed (and may not be
   * readable by compliance); -c still gives key_file, group, interval. */
  if (path == NULL && o->db == NULL
      && g_file_test (CONFIG_DEFAULT_PATH, G_FILE_TEST_EXISTS))
    path = CONFIG_DEFAULT_PATH;
  if (path != NULL && (o->cfg = config_load_public (path, error)) == NULL)
    return NULL;
  if (o->db != NULL)
    return g_strdup (o->db);
  if (o->cfg == NULL)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                   "no audit file: give --db PATH or -c CONFIG");
      return NULL;
    }
  return g_strdup (o->cfg->audit_db);
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

static void
print_field (const char *name, const char *value, gboolean quote)
{
  if (value != NULL)
    printf (quote ? " %s=\"%s\"" : " %s=%s", name, value);
}

static gboolean
print_row (const AuditRow *r, gpointer data)
{
  g_autofree char *t = format_time (r->time_ms);

  printf ("%6" G_GINT64_FORMAT " %s %-17s %-20s", r->seq, t, r->event,
          S (r->invite_id));
  if (r->peer_uid >= 0)
    printf (" uid=%" G_GINT64_FORMAT, r->peer_uid);
  print_field ("staff", r->staff, FALSE);
  print_field ("booking", r->booking, FALSE);
  print_field ("unit", r->org_unit, TRUE);
  print_field ("rcpt", r->recipients, FALSE);
  print_field ("template", r->template_name, FALSE);
  print_field ("lang", r->lang, FALSE);
  print_field ("error", r->error_code, FALSE);
  print_field ("field", r->field, FALSE);
  print_field ("reply", r->smtp_reply, TRUE);
  print_field ("detail", r->detail, TRUE);
  if (r->epoch >= 0)
    printf (" epoch=%" G_GINT64_FORMAT, r->epoch);
  if (r->notice_sha256)
    printf (" notice=%.12s", r->notice_sha256);
  if (r->message_sha256)
    printf (" message=%.12s", r->message_sha256);
  printf ("\n");
  return TRUE;
}

/* Export columns: the first 21 keep their order for older readers. */
static const char *const columns[] = {
  "seq", "time", "event", "invite_id", "peer_uid", "staff", "booking",
  "recipients", "smtp_reply", "error_code", "field", "detail", "lang",
  "template", "link_sha256", "notice_sha256", "template_sha256",
  "signature_sha256", "message_sha256", "prev_hash", "row_hash",
  "org_unit", "epoch", "seal", "time_ms", "recipient_keys", NULL
};
/* JSON numbers rather than strings: */
#define IS_NUMBER(i) ((i) == 0 || (i) == 4 || (i) == 22 || (i) == 24)

static char *
int_or_null (gint64 v)
{
  return v >= 0 ? g_strdup_printf ("%" G_GINT64_FORMAT, v) : NULL;
}

/* The row's values in the order of columns[]; (transfer full) */
static GPtrArray *
row_values (const AuditRow *r)
{
  GPtrArray *v = g_ptr_array_new_with_free_func (g_free);
  const char *const text[] = {
    r->staff, r->booking, r->recipients, r->smtp_reply, r->error_code,
    r->field, r->detail, r->lang, r->template_name, r->link_sha256,
    r->notice_sha256, r->template_sha256, r->signature_sha256,
    r->message_sha256, r->prev_hash, r->row_hash, r->org_unit
  };

  g_ptr_array_add (v, int_or_null (r->seq));
  g_ptr_array_add (v, format_time (r->time_ms));
  g_ptr_array_add (v, g_strdup (r->event));
  g_ptr_array_add (v, g_strdup (r->invite_id));
  g_ptr_array_add (v, int_or_null (r->peer_uid));
  for (gsize i = 0; i < G_N_ELEMENTS (text); i++)
    g_ptr_array_add (v, g_strdup (text[i]));
  g_ptr_array_add (v, int_or_null (r->epoch));
  g_ptr_array_add (v, g_strdup (r->seal));
  g_ptr_array_add (v, int_or_null (r->time_ms));
  g_ptr_array_add (v, g_strdup (r->recipient_keys));
  return v;
}

/* RFC 4180: every field quoted, quotes doubled, CRLF line ends. */
static void
csv_line (const char *const *fields, guint n)
{
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    {
      g_string_append (out, i ? ",\"" : "\"");
      for (const char *p = S (fields[i]); *p; p++)
        {
          if (*p == '"')
            g_string_append_c (out, '"');
          g_string_append_c (out, *p);
        }
      g_string_append_c (out, '"');
    }
  g_string_append (out, "\r\n");
  fwrite (out->str, 1, out->len, stdout);
}

static gboolean
print_csv (const AuditRow *r, gpointer data)
{
  g_autoptr (GPtrArray) v = row_values (r);

  csv_line ((const char *const *) v->pdata, v->len);
  return TRUE;
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
      else if (IS_NUMBER (i))
        g_string_append (out, s);
      else
        cli_json_string (out, s);
    }
  g_string_append (out, "}\n");
  fwrite (out->str, 1, out->len, stdout);
  return TRUE;
}

static gboolean
fill_filter (const AuditOptions *o, AuditFilter *f)
{
  *f = (AuditFilter) { .invite_id = o->invite, .event = o->event,
                       .booking = o->booking, .staff = o->staff,
                       .recipient = o->recipient };
  if (parse_time (o->since, &f->since_ms) && parse_time (o->until, &f->until_ms))
    return TRUE;
  fprintf (stderr, "invitemail audit: --since/--until take RFC 3339 time"
           " or YYYY-MM-DD\n");
  return FALSE;
}

static int
read_rows (const char *db, const AuditFilter *f, AuditRowFunc fn, gpointer data)
{
  g_autoptr (GError) error = NULL;

  if (!audit_read (db, f, fn, data, &error))
    {
      fprintf (stderr, "invitemail audit: %s\n", error->message);
      return exit_code_for_error (error);
    }
  return EXIT_OK;
}

/* A search by an erased address says so plainly, on standard error. */
static void
say_if_erased (const char *db, const char *address)
{
  AuditAddressState st;

  if (address != NULL && audit_read_address (db, address, &st, NULL)
      && st.erased_ms > 0 && !st.kept)
    {
      g_autofree char *t = format_time (st.erased_ms);
      fprintf (stderr, "invitemail audit: %s was erased on %s: the %"
               G_GINT64_FORMAT " row(s) naming it keep only its keyed hash"
               " and show it as " "(erased)\n", address, t, st.n_rows);
    }
}

static int
do_read (const char *db, const AuditOptions *o, AuditRowFunc fn)
{
  AuditFilter f;

  if (!fill_filter (o, &f))
    return EXIT_USAGE;
  say_if_erased (db, o->recipient);
  if (fn == print_csv)
    csv_line (columns, g_strv_length ((char **) columns));
  return read_rows (db, &f, fn, NULL);
}

/* ---- verify, head, init ------------------------------------------------ */

static void
verify_say_seals (const AuditVerifyReport *rep, const char *key_text)
{
  g_autofree char *t0 = format_time (rep->first_seal_time_ms);
  g_autofree char *t1 = format_time (rep->last_seal_time_ms);

  if (key_text != NULL)
    printf ("audit verify: seals ok: %" G_GINT64_FORMAT " seals, epochs 0-%"
            G_GINT64_FORMAT ", every signature verified from the published"
            " value %s\n", rep->n_seals, rep->last_seal_epoch, key_text);
  else
    printf ("audit verify: seals chained: %" G_GINT64_FORMAT " seals, epochs"
            " 0-%" G_GINT64_FORMAT "; %" G_GINT64_FORMAT " signatures verified"
            " with the keys the seals name, but the first seal was NOT checked"
            " against the published value (give --key FILE)\n", rep->n_seals,
            rep->last_seal_epoch, rep->seals_checked);
  printf ("audit verify: sealed through row %" G_GINT64_FORMAT "; first seal"
          " %s, last seal %s\n", MAX (rep->last_seal_seq, rep->checkpoint_seq),
          t0, t1);
}

static void
verify_say (const AuditVerifyReport *rep, const char *key_text,
            const AuditOptions *o)
{
  if (rep->checkpoint_seq > 0)
    {
      g_autofree char *t = format_time (rep->checkpoint_time_ms);
      printf ("audit verify: rows 1-%" G_GINT64_FORMAT " were purged"
              " (retention), sealed through %s; %" G_GINT64_FORMAT " seals of"
              " them are kept and verified\n", rep->checkpoint_seq, t,
              rep->n_kept_seals);
    }
  printf ("audit verify: chain intact: %" G_GINT64_FORMAT " rows (%"
          G_GINT64_FORMAT "-%" G_GINT64_FORMAT "), every link and hash holds\n",
          rep->n_rows, rep->first_seq, rep->last_seq);
  verify_say_seals (rep, key_text);
  if (rep->unsealed > 0)
    printf ("audit verify: UNSEALED TAIL: %" G_GINT64_FORMAT " rows (%"
            G_GINT64_FORMAT "-%" G_GINT64_FORMAT ") come after the last seal"
            " and are not yet protected (allowed by --allow-unsealed-tail)\n",
            rep->unsealed, rep->last_seq - rep->unsealed + 1, rep->last_seq);
  if (rep->n_clock_back > 0)
    printf ("audit verify: the host clock went back %" G_GINT64_FORMAT
            " time(s), first at row %" G_GINT64_FORMAT " (clock_back rows);"
            " row times were kept in order\n", rep->n_clock_back,
            rep->first_clock_back_seq);
  if (o->anchors != NULL)
    printf ("audit verify: anchors ok: %" G_GINT64_FORMAT " heads from %s found"
            " and matching (newest anchored row %" G_GINT64_FORMAT ")\n",
            rep->anchors_checked, o->anchors, rep->newest_anchor_seq);
  else
    printf ("audit verify: no --anchors given: a cut tail or an older copy"
            " that ends in a seal is not detectable without them\n");
}

static int
do_verify (const char *db, const AuditOptions *o)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) anchors = NULL;
  char key_text[AUDIT_PUBKEY_TEXT];
  AuditVerifyOptions vo = { .allow_unsealed_tail = o->allow_tail,
                            .max_age_ms = o->max_age * 1000,
                            .chain_only = o->chain_only };
  AuditVerifyReport rep;
  AuditPublicKey key;

  if (o->max_age < 0)
    {
      fprintf (stderr, "invitemail audit: --max-age takes seconds\n");
      return EXIT_USAGE;
    }
  if ((o->key != NULL && !audit_pubkey_read (o->key, &key, &error))
      || (o->anchors != NULL
          && (anchors = audit_anchor_read_file (o->anchors, &error)) == NULL))
    {
      fprintf (stderr, "invitemail audit: %s\n", error->message);
      return EXIT_NOINPUT;
    }
  if (o->key != NULL)
    {
      vo.key = &key;
      audit_pubkey_format (&key, key_text);
    }
  vo.anchors = anchors;
  if (!audit_verify_full (db, &vo, &rep, &error))
    {
      printf ("audit verify: FAILED: %s\n", error->message);
      return exit_code_for_error (error);
    }
  if (o->chain_only)
    printf ("audit verify: CHAIN ONLY: %" G_GINT64_FORMAT " rows, every link"
            " and hash holds; this proves nothing against anyone who can"
            " write the file (no seal, time, tail or anchor was checked)\n",
            rep.n_rows);
  else
    verify_say (&rep, o->key != NULL ? key_text : NULL, o);
  return EXIT_OK;
}

static int
do_head (const char *db, const AuditOptions *o)
{
  g_autoptr (GError) error = NULL;
  char hash[SHA256_HEX_SIZE];
  gint64 seq = 0;
  AuditAnchor h;

  if (o->json)
    {
      g_autofree char *json = NULL;

      if (!audit_read_anchor (db, &h, &error))
        {
          fprintf (stderr, "invitemail audit: %s\n", error->message);
          return exit_code_for_error (error);
        }
      json = audit_anchor_json (&h);
      printf ("%s\n", json);
      return EXIT_OK;
    }
  if (!audit_read_head (db, &seq, hash, &error))
    {
      fprintf (stderr, "invitemail audit: %s\n", error->message);
      return exit_code_for_error (error);
    }
  printf ("%" G_GINT64_FORMAT " %s\n", seq, hash);
  return EXIT_OK;
}

/* The public value into path: a new file, readable by all (it is
 * public), never over an existing one. */
static gboolean
write_public (const char *path, const char *text, GError **error)
{
  g_autofree char *line = g_strconcat (text, "\n", NULL);
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                 0644);
  gboolean ok = fd >= 0
    && fileio_write_all (fd, line, strlen (line)) && fsync (fd) == 0;

  if (!ok)
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                 "%s: %s", path, g_strerror (errno));
  if (fd >= 0)
    close (fd);
  return ok;
}

static int
do_init (const char *db, const AuditOptions *o)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_path_get_dirname (db);
  g_autofree char *beside = g_build_filename (dir, "audit.key", NULL);
  AuditSealConfig sc = { .key_file = beside };
  char pub[AUDIT_PUBLIC_TEXT];

  if (o->cfg != NULL)
    sc = (AuditSealConfig) { o->cfg->audit_key_file, o->cfg->audit_group,
                             o->cfg->audit_retention_days };
  if (o->key_file != NULL)
    sc.key_file = o->key_file;
  if (!audit_init (db, &sc, pub, &error)
      || (o->public_out != NULL && !write_public (o->public_out, pub, &error)))
    {
      fprintf (stderr, "invitemail audit init: %s\n", error->message);
      return exit_code_for_error (error);
    }
  printf ("audit init: first seal written; the daemon's secret key is %s.\n"
          "The public verification value follows.  It is not secret: publish"
          " it where the\nlog cannot reach it (the document archive, a letter"
          " to the data-protection\nofficer).  `invitemail audit verify --key"
          " FILE` needs it in FILE:\n%s\n", sc.key_file, pub);
  return EXIT_OK;
}

/* The writer's view for init and erase: key file, group, retention from
 * -c, --key-file over it. */
static AuditSealConfig
seal_config (const char *db, const AuditOptions *o, char **beside)
{
  g_autofree char *dir = g_path_get_dirname (db);
  AuditSealConfig sc = { 0 };

  *beside = g_build_filename (dir, "audit.key", NULL);
  sc.key_file = *beside;
  if (o->cfg != NULL)
    sc = (AuditSealConfig) { o->cfg->audit_key_file, o->cfg->audit_group,
                             o->cfg->audit_retention_days };
  if (o->key_file != NULL)
    sc.key_file = o->key_file;
  return sc;
}

/* The queue's and the outbox's part of an erasure (with -c: the daemon
 * stopped, it writes both).  Words for the audit row, or NULL when
 * there is no queue to search; FALSE when the queue refused. */
static gboolean
erase_queue (const AuditOptions *o, char **words, GError **error)
{
  g_autoptr (GPtrArray) tags = g_ptr_array_new_with_free_func (g_free);
  Queue *q;
  gint n;
  guint files;

  *words = NULL;
  if (o->cfg == NULL || o->cfg->queue_db == NULL
      || !g_file_test (o->cfg->queue_db, G_FILE_TEST_IS_REGULAR))
    return TRUE;
  if ((q = queue_open (o->cfg->queue_db, error)) == NULL)
    return FALSE;
  n = queue_erase_address (q, o->recipient, tags, error);
  queue_close (q);
  if (n < 0)
    return FALSE;
  files = o->cfg->transport == TRANSPORT_FILE
    ? retention_outbox_remove (o->cfg->outbox_dir, tags) : 0;
  *words = g_strdup_printf ("queue: %d recipient row(s), outbox: %u file(s)",
                            n, files);
  return TRUE;
}

/* `audit erase --recipient ADDR`: the daemon stopped (it is the one
 * writer of the audit and, with -c, of the queue and the outbox); the
 * queue first (a match still in delivery refuses it all), then the
 * audit, whose erased row counts everything, sealed at once. */
static int
do_erase (const char *db, const AuditOptions *o)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *beside = NULL, *elsewhere = NULL;
  g_autoptr (Audit) a = NULL;
  AuditSealConfig sc = seal_config (db, o, &beside);
  gint64 n = 0;

  if (o->recipient == NULL)
    {
      fprintf (stderr, "invitemail audit: erase needs --recipient ADDR\n");
      return EXIT_USAGE;
    }
  if ((a = audit_open_sealing (db, &sc, &error)) == NULL
      || !erase_queue (o, &elsewhere, &error)
      || !audit_erase_recipient (a, o->recipient, (gint64) getuid (),
                                 elsewhere, &n, &error)
      || !audit_seal (a, &error))
    {
      fprintf (stderr, "invitemail audit erase: %s\n", error->message);
      return exit_code_for_error (error);
    }
  printf ("audit erase: the address was removed from beside %" G_GINT64_FORMAT
          " row(s), which keep only its keyed hash; %s; the erasure is"
          " audited (who, when, how many rows; not the address)%s\n", n,
          elsewhere != NULL ? elsewhere : "the queue was not searched (no -c)",
          audit_sealing (a) ? " and sealed" : "");
  return EXIT_OK;
}

/* list shows the story, not the seals (most rows of a quiet day): they
 * stay in verify, export and list --all or --event sealed. */
static gboolean
print_row_no_seal (const AuditRow *r, gpointer data)
{
  return g_strcmp0 (r->event, "sealed") == 0 || print_row (r, data);
}

static const char *
org_timezone (const AuditOptions *o)
{
  return o->cfg != NULL && o->cfg->timezone != NULL ? o->cfg->timezone
                                                    : "Europe/Stockholm";
}

static int
do_subject (const char *db, const AuditOptions *o, const char *address)
{
  SubjectOptions so = { db, o->queue, o->format, org_timezone (o) };

  if (so.queue_db == NULL && o->cfg != NULL && o->db == NULL)
    so.queue_db = o->cfg->queue_db;
  say_if_erased (db, address);
  return cli_subject (address, &so);
}

static int
do_report (const char *db, const AuditOptions *o)
{
  ReportOptions ro = { db, o->month, o->format, o->lang, o->sep, org_timezone (o),
                       o->cfg != NULL ? o->cfg->audit_seal_interval : 900 };

  return cli_report (&ro);
}

/* ---- dispatch ---------------------------------------------------------- */

static int
dispatch (const char *cmd, AuditOptions *o, int argc, char **argv, const char *db)
{
  if (strcmp (cmd, "list") == 0 && argc == 0)
    return do_read (db, o, o->all || o->event ? print_row : print_row_no_seal);
  if (strcmp (cmd, "subject") == 0 && argc == 1)
    return do_subject (db, o, argv[0]);
  if (strcmp (cmd, "show") == 0 && argc == 1)
    {
      g_free (o->invite);
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
    return do_verify (db, o);
  if (strcmp (cmd, "head") == 0 && argc == 0)
    return do_head (db, o);
  if (strcmp (cmd, "report") == 0 && argc == 0)
    return do_report (db, o);
  if (strcmp (cmd, "erase") == 0 && argc == 0)
    return do_erase (db, o);
  fprintf (stderr, "invitemail audit: unknown command or wrong arguments (try --help)\n");
  return EXIT_USAGE;
}

static const char description[] =
  "Commands:\n"
  "  list                 rows, filtered by the options (seals with --all)\n"
  "  show ID              one invite's whole story\n"
  "  export               --format csv (RFC 4180) or jsonl (JSON Lines)\n"
  "  verify --key FILE    proves the chain from the published value in FILE:\n"
  "                       every row, link, seal signature, time, purge and\n"
  "                       trigger; --anchors FILE also checks the heads the\n"
  "                       daemon wrote to the system log; --max-age SECONDS\n"
  "                       fails on a stale copy; --allow-unsealed-tail for\n"
  "                       a live file\n"
  "  head [--json]        the newest row's seq and hash; --json: the newest\n"
  "                       seal's head (seq, hash, epoch, time), as anchored\n"
  "  subject ADDR         every invite sent to ADDR (GDPR Art. 15), others\n"
  "                       redacted; --format text, csv or jsonl\n"
  "  report --month YYYY-MM [--format html|text|csv] [--lang sv|en] [--sep ';']\n"
  "                       the month for compliance: verify, head, per day and\n"
  "                       unit, failures, notice versions, configuration,\n"
  "                       outages, refusals; html > report.html\n"
  "  erase --recipient ADDR  (data-protection officer, daemon stopped)\n"
  "                       remove an address's clear text; rows keep its\n"
  "                       keyed hash, verify still passes; audited\n"
  "  init [--public FILE] (administrator, daemon stopped, once) make the\n"
  "                       first key pair, write the first seal, print the\n"
  "                       public verification value (and write it to FILE)\n"
  "\n"
  "All but init and erase only read, and work without write access to the\n"
  "folder.\n"
  "verify exits 0 when every check held and 1 naming the first fault (also\n"
  "when there is no seal, the last row is not sealed, or the file is of\n"
  "another format).";

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
    { "booking", 0, 0, G_OPTION_ARG_STRING, &o.booking, "Only rows of this booking", "REF" },
    { "staff", 0, 0, G_OPTION_ARG_STRING, &o.staff, "Only rows of this staff id", "ID" },
    { "recipient", 0, 0, G_OPTION_ARG_STRING, &o.recipient, "Only rows naming this address; erase: the address to erase", "ADDR" },
    { "format", 0, 0, G_OPTION_ARG_STRING, &o.format, "export: csv (default) or jsonl; subject: text, csv or jsonl; report: text, html or csv", "FMT" },
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &o.key, "verify: the public verification value printed by init", "FILE" },
    { "anchors", 0, 0, G_OPTION_ARG_FILENAME, &o.anchors, "verify: seal heads from the system log (journalctl -o json or syslog lines)", "FILE" },
    { "allow-unsealed-tail", 0, 0, G_OPTION_ARG_NONE, &o.allow_tail, "verify: a live file: rows after the last seal are counted, not a failure", NULL },
    { "max-age", 0, 0, G_OPTION_ARG_INT64, &o.max_age, "verify: fail when the last seal is older than this", "SECONDS" },
    { "chain-only", 0, 0, G_OPTION_ARG_NONE, &o.chain_only, "verify: links and hashes only (a diagnostic: proves nothing against a forger)", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &o.json, "head: the newest seal's head as JSON", NULL },
    { "public", 0, 0, G_OPTION_ARG_FILENAME, &o.public_out, "init: also write the public value to FILE", "FILE" },
    { "key-file", 0, 0, G_OPTION_ARG_FILENAME, &o.key_file, "init, erase: the daemon's key file (default: key_file of the config)", "FILE" },
    { "month", 0, 0, G_OPTION_ARG_STRING, &o.month, "report: the month", "YYYY-MM" },
    { "lang", 0, 0, G_OPTION_ARG_STRING, &o.lang, "report: sv (default) or en", "LANG" },
    { "sep", 0, 0, G_OPTION_ARG_STRING, &o.sep, "report --format csv: ',' (default) or ';' (with a UTF-8 BOM)", "C" },
    { "queue", 0, 0, G_OPTION_ARG_FILENAME, &o.queue, "subject: the queue file too (default: queue_db of the config)", "PATH" },
    { "all", 0, 0, G_OPTION_ARG_NONE, &o.all, "list: seal rows too", NULL },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("COMMAND - review the audit log");
  g_autofree char *db = NULL;
  int rc;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx, description);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || (argc < 2 && !version))
    {
      fprintf (stderr, "invitemail audit: %s (try --help)\n",
               error ? error->message : "a command is needed");
      options_clear (&o);
      return EXIT_USAGE;
    }
  if (version)
    {
      printf ("%s\n", INVITEMAIL_VERSION_TEXT);
      options_clear (&o);
      return EXIT_OK;
    }
  if ((db = default_db (&o, &error)) == NULL)
    rc = (fprintf (stderr, "invitemail audit: %s\n", error->message),
          exit_code_for_error (error));
  else if (strcmp (argv[1], "init") == 0 && argc == 2)
    rc = do_init (db, &o);
  else if (!g_file_test (db, G_FILE_TEST_IS_REGULAR))
    rc = (fprintf (stderr, "invitemail audit: %s: no such audit file\n", db),
          EXIT_NOINPUT);
  else
    rc = dispatch (argv[1], &o, argc - 2, argv + 2, db);
  options_clear (&o);
  return rc;
}
