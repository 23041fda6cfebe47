/*
 * invitemail.c - the command line for staff, the booking tool and
 * compliance: send, preview, status, ping (over the socket) and audit
 * (read-only, straight from the audit file).  run() dispatches
 * on the command's name.
 *
 * The client is a convenience, not a gate: the daemon validates
 * everything again.  It refuses locally only what cannot be framed (a
 * value holding CR, LF or NUL would end the request early).
 */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli_audit.h"
#include "cli_compliance.h"
#include "cli_ops.h"
#include "config.h"
#include "exitcodes.h"
#include "fileio.h"
#include "request.h"
#include "version.h"

#define DEFAULT_SOCKET "/run/invitemail/invitemail.sock"
#define CLIENT_TIMEOUT_S 30

typedef struct {
  char *socket;
  char *config;
  char *link;
  char **bcc;
  char *booking;
  char *staff;
  char *lang;
  char *template_name;
  char *meeting_time;
  char *meeting_end;
  char *duration;
  char *idempotency_key;
  char *unit;
  gboolean json;
  char *recipient;
} ClientOptions;

static int
usage_error (const char *msg)
{
  fprintf (stderr, "invitemail: %s (try invitemail --help)\n", msg);
  return EXIT_USAGE;
}

/* --socket, else $INVITEMAIL_SOCKET, else [daemon] socket of -c FILE
 * (or of the default configuration file when it exists), else the
 * default path. */
static char *
socket_path (const ClientOptions *o)
{
  const char *env = g_getenv ("INVITEMAIL_SOCKET");

  if (o->socket != NULL)
    return g_strdup (o->socket);
  if (env != NULL && *env != '\0')
    return g_strdup (env);
  const char *conf = o->config;
  if (conf == NULL && g_file_test (CONFIG_DEFAULT_PATH, G_FILE_TEST_EXISTS))
    conf = CONFIG_DEFAULT_PATH;
  if (conf != NULL)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (Config) cfg = config_load_public (conf, &error);
      if (cfg != NULL)
        return g_strdup (cfg->socket);
      fprintf (stderr, "invitemail: %s\n", error->message);
    }
  return g_strdup (DEFAULT_SOCKET);
}

static int
connect_socket (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  struct timeval tv = { CLIENT_TIMEOUT_S, 0 };
  int fd;

  if (strlen (path) >= sizeof sa.sun_path)
    return -1;
  g_strlcpy (sa.sun_path, path, sizeof sa.sun_path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) != 0)
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  return fd;
}

/* Reads one answer frame (answer_frame bounds it: a preview carries a
 * whole base64 message on one line). */
static RawRequest *
read_answer (int fd)
{
  g_autoptr (GByteArray) in = g_byte_array_new ();
  char buf[65536];

  for (;;)
    {
      RawRequest *ans = NULL;
      gsize frame_len = 0;
      Refusal why;
      ssize_t n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return NULL;
      g_byte_array_append (in, (guint8 *) buf, (guint) n);
      switch (answer_frame ((const char *) in->data, in->len, &frame_len, &why))
        {
        case FRAME_INCOMPLETE:
          continue;
        case FRAME_ERROR:
          return NULL;
        case FRAME_COMPLETE:
          return request_parse_answer ((const char *) in->data, frame_len, &ans, &why)
            ? ans : NULL;
        }
    }
}

/* Sends one request and returns the answer, or NULL with an exit code. */
static RawRequest *
exchange (const ClientOptions *o, const GString *req, int *rc)
{
  g_autofree char *path = socket_path (o);
  RawRequest *ans;
  int fd = connect_socket (path);

  if (fd < 0)
    {
      fprintf (stderr, "invitemail: cannot reach invitemaild at %s: %s\n", path,
               g_strerror (errno));
      *rc = EXIT_UNREACHABLE;
      return NULL;
    }
  if (!fileio_send_all (fd, req->str, req->len) || (ans = read_answer (fd)) == NULL)
    {
      fprintf (stderr, "invitemail: no answer from invitemaild at %s\n", path);
      close (fd);
      *rc = EXIT_UNREACHABLE;
      return NULL;
    }
  close (fd);
  return ans;
}

static gboolean
add_line (GString *req, const char *name, const char *value)
{
  if (value == NULL)
    return TRUE;
  if (strpbrk (value, "\r\n") != NULL)
    {
      fprintf (stderr, "invitemail: --%s holds a line break\n", name);
      return FALSE;
    }
  g_string_append_printf (req, "%s=%s\n", name, value);
  return TRUE;
}

/* A refusal's words and exit code (cli_print_refusal); 0 otherwise. */
static int
report_answer (const RawRequest *ans)
{
  if (g_strcmp0 (raw_request_get (ans, "status"), "rejected") != 0)
    return EXIT_OK;
  return cli_print_refusal (ans);
}

static gboolean
build_invite_request (const ClientOptions *o, const char *kind, GString *req)
{
  if (o->link == NULL || o->bcc == NULL)
    return FALSE;
  g_string_append_printf (req, "request=%s\n", kind);
  if (!add_line (req, "link", o->link))
    return FALSE;
  for (guint i = 0; o->bcc[i] != NULL; i++)
    if (!add_line (req, "bcc", o->bcc[i]))
      return FALSE;
  if (!add_line (req, "booking", o->booking) || !add_line (req, "staff", o->staff)
      || !add_line (req, "lang", o->lang) || !add_line (req, "template", o->template_name)
      || !add_line (req, "meeting_time", o->meeting_time)
      || !add_line (req, "unit", o->unit)
      || !add_line (req, "meeting_end", o->meeting_end)
      || !add_line (req, "duration", o->duration))
    return FALSE;
  if (strcmp (kind, "send") == 0 && !add_line (req, "idempotency_key", o->idempotency_key))
    return FALSE;
  g_string_append_c (req, '\n');
  return TRUE;
}

static int
cmd_send_or_preview (const ClientOptions *o, const char *kind)
{
  g_autoptr (GString) req = g_string_new (NULL);
  g_autoptr (RawRequest) ans = NULL;
  int rc = EXIT_OK;

  if (!build_invite_request (o, kind, req))
    return usage_error ("--link and at least one --bcc are needed; no line breaks");
  if ((ans = exchange (o, req, &rc)) == NULL)
    return rc;
  if ((rc = report_answer (ans)) != EXIT_OK)
    return rc;
  if (strcmp (kind, "send") == 0)
    {
      printf ("%s\n", raw_request_get (ans, "id"));
      return EXIT_OK;
    }
  const char *b64 = raw_request_get (ans, "eml");
  gsize len = 0;
  g_autofree guchar *eml = b64 ? g_base64_decode (b64, &len) : NULL;
  if (eml == NULL || fwrite (eml, 1, len, stdout) != len || fflush (stdout) != 0)
    return EXIT_INTERNAL;
  return EXIT_OK;
}

static void
print_status_json (const RawRequest *ans)
{
  g_autoptr (GString) js = g_string_new ("{\"id\":");

  cli_json_string (js, raw_request_get (ans, "id"));
  g_string_append (js, ",\"state\":");
  cli_json_string (js, raw_request_get (ans, "state"));
  g_string_append (js, ",\"recipients\":[");
  for (guint i = 0, n = 0; i < ans->attrs->len; i++)
    {
      RawAttr *a = g_ptr_array_index (ans->attrs, i);
      if (strcmp (a->name, "recipient") != 0)
        continue;
      g_auto (GStrv) f = g_strsplit (a->value, " ", 5);
      if (g_strv_length (f) < 5)
        continue;
      g_string_append (js, n++ ? ",{\"address\":" : "{\"address\":");
      cli_json_string (js, f[0]);
      g_string_append (js, ",\"state\":");
      cli_json_string (js, f[1]);
      /* attempts is a number: anything else from the daemon is null. */
      g_string_append_printf (js, ",\"attempts\":%s,\"next_try\":",
                              f[2][0] != '\0' && strspn (f[2], "0123456789") == strlen (f[2])
                              ? f[2] : "null");
      if (strcmp (f[3], "-") != 0)
        cli_json_string (js, f[3]);
      else
        g_string_append (js, "null");
      g_string_append (js, ",\"reply\":");
      if (strcmp (f[4], "-") != 0)
        cli_json_string (js, f[4]);
      else
        g_string_append (js, "null");
      g_string_append_c (js, '}');
    }
  g_string_append (js, "]}");
  printf ("%s\n", js->str);
}

/*
 * Sends `request=VERB` with `id=` the one argument and checks the answer
 * (status and cancel).  Returns EXIT_OK with *ans set (transfer full),
 * or the exit code with *ans NULL.
 */
static int
ask_about_invite (const ClientOptions *o, const char *verb, int argc,
                  char **argv, RawRequest **ans)
{
  g_autoptr (GString) req = g_string_new (NULL);
  g_autoptr (RawRequest) got = NULL;
  int rc = EXIT_OK;

  *ans = NULL;
  if (argc != 1)
    {
      g_autofree char *what = g_strdup_printf ("%s takes one invite id", verb);
      return usage_error (what);
    }
  g_string_printf (req, "request=%s\n", verb);
  if (!add_line (req, "id", argv[0]))
    return EXIT_USAGE;
  g_string_append_c (req, '\n');
  if ((got = exchange (o, req, &rc)) == NULL)
    return rc;
  if ((rc = report_answer (got)) != EXIT_OK)
    return rc;
  *ans = g_steal_pointer (&got);
  return EXIT_OK;
}

static int
cmd_status (const ClientOptions *o, int argc, char **argv)
{
  g_autoptr (RawRequest) ans = NULL;
  int rc = ask_about_invite (o, "status", argc, argv, &ans);

  if (rc != EXIT_OK)
    return rc;
  if (o->json)
    {
      print_status_json (ans);
      return EXIT_OK;
    }
  const char *id = raw_request_get (ans, "id");
  const char *state = raw_request_get (ans, "state");
  printf ("%s %s\n", id ? id : "?", state ? state : "?");
  for (guint i = 0; i < ans->attrs->len; i++)
    {
      RawAttr *a = g_ptr_array_index (ans->attrs, i);
      if (strcmp (a->name, "recipient") == 0)
        printf ("  %s\n", a->value);
    }
  return EXIT_OK;
}

/* Prints "ID cancelled: N stopped, M notified [by CANCELLATION-ID]". */
static int
cmd_cancel (const ClientOptions *o, int argc, char **argv)
{
  g_autoptr (RawRequest) ans = NULL;
  int rc = ask_about_invite (o, "cancel", argc, argv, &ans);

  if (rc != EXIT_OK)
    return rc;
  /* The daemon's answer is not trusted to carry every name: a missing
   * one prints "?", never a NULL through printf. */
  const char *by = raw_request_get (ans, "cancellation");
  const char *id = raw_request_get (ans, "id");
  const char *stopped = raw_request_get (ans, "stopped");
  const char *notified = raw_request_get (ans, "notified");
  printf ("%s cancelled: %s stopped, %s notified%s%s\n", id ? id : "?",
          stopped ? stopped : "?", notified ? notified : "?",
          by ? " by " : "", by ? by : "");
  return EXIT_OK;
}

static int
cmd_ping (const ClientOptions *o)
{
  g_autoptr (GString) req = g_string_new ("request=ping\n\n");
  g_autoptr (RawRequest) ans = NULL;
  int rc = EXIT_OK;

  if ((ans = exchange (o, req, &rc)) == NULL)
    return rc;
  if ((rc = report_answer (ans)) == EXIT_OK)
    printf ("ok\n");
  return rc;
}

static RawRequest *
exchange_for_ops (gconstpointer ctx, const GString *req, int *rc)
{
  return exchange (ctx, req, rc);
}

static const char summary[] =
  "Commands:\n"
  "  send       queue one invite; prints its id (exit 0 when queued)\n"
  "  preview    print the exact message (RFC 5322) that would be sent\n"
  "  status ID  where an invite is, per recipient (--json for JSON)\n"
  "  cancel ID  stop what has not gone out; send the others a cancellation\n"
  "  ping       check that the daemon answers\n"
  "  bounce     read one DSN (bounce) on standard input and record it\n"
  "             (a mail alias or pipe: |/usr/bin/invitemail bounce)\n"
  "  health     queue, relay, audit seal, disk: exit 0 OK, 1 WARNING, 2 CRITICAL\n"
  "  audit list|show|export|verify   read the audit log (see invitemail audit --help)\n";

static const char description[] =
  "Exit codes: 0 ok, 1 audit verify found the log broken, 64 usage,\n"
  "65 request refused by the daemon, 66 file missing, 69 daemon unreachable,\n"
  "70 internal error, 75 try again later, 78 configuration wrong.\n"
  "health: 0 OK, 1 WARNING, 2 CRITICAL (no answer is CRITICAL).\n"
  "bounce: 75 when the daemon cannot be reached, so the mail system retries.\n"
  "See invitemail(1).";

static int
run (const char *cmd, ClientOptions *o, int argc, char **argv)
{
  if (strcmp (cmd, "send") == 0 || strcmp (cmd, "preview") == 0)
    return argc == 0 ? cmd_send_or_preview (o, cmd) : usage_error ("unexpected argument");
  if (strcmp (cmd, "status") == 0)
    return cmd_status (o, argc, argv);
  if (strcmp (cmd, "bounce") == 0)
    return argc == 0 ? cli_bounce (exchange_for_ops, o, o->recipient)
                     : usage_error ("bounce reads the message on standard input");
  if (strcmp (cmd, "health") == 0)
    return argc == 0 ? cli_health (exchange_for_ops, o, o->json)
                     : usage_error ("unexpected argument");
  if (strcmp (cmd, "cancel") == 0)
    return cmd_cancel (o, argc, argv);
  if (strcmp (cmd, "ping") == 0)
    return cmd_ping (o);
  return usage_error ("unknown command");
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  ClientOptions o = { 0 };
  gboolean version = FALSE;
  GOptionEntry entries[] = {
    { "socket", 's', 0, G_OPTION_ARG_FILENAME, &o.socket,
      "Daemon socket (default $INVITEMAIL_SOCKET or " DEFAULT_SOCKET ")", "PATH" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &o.config,
      "Take the socket from this configuration file", "FILE" },
    { "link", 0, 0, G_OPTION_ARG_STRING, &o.link, "Meeting link (https)", "URL" },
    { "bcc", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.bcc, "Recipient; repeat for each", "ADDR" },
    { "booking", 0, 0, G_OPTION_ARG_STRING, &o.booking, "Booking reference", "REF" },
    { "staff", 0, 0, G_OPTION_ARG_STRING, &o.staff, "Who sends it (e.g. HSA-id)", "ID" },
    { "lang", 0, 0, G_OPTION_ARG_STRING, &o.lang, "Language: sv (default), en, ...", "LANG" },
    { "template", 0, 0, G_OPTION_ARG_STRING, &o.template_name, "Template (default evisit)", "NAME" },
    { "meeting-time", 0, 0, G_OPTION_ARG_STRING, &o.meeting_time,
      "Meeting start, RFC 3339 with offset", "TIME" },
    { "meeting-end", 0, 0, G_OPTION_ARG_STRING, &o.meeting_end,
      "Meeting end, RFC 3339 with offset", "TIME" },
    { "duration", 0, 0, G_OPTION_ARG_STRING, &o.duration,
      "Meeting length in minutes (default 30)", "MINUTES" },
    { "idempotency-key", 0, 0, G_OPTION_ARG_STRING, &o.idempotency_key,
      "Your request id: repeating it queues one invite", "KEY" },
    { "unit", 0, 0, G_OPTION_ARG_STRING, &o.unit,
      "Hosting clinic or unit, shown in the mail and audited", "NAME" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &o.json, "status, health: print JSON", NULL },
    { "recipient", 0, 0, G_OPTION_ARG_STRING, &o.recipient,
      "bounce: the envelope recipient (Postfix pipe: ${recipient})", "ADDR" },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = NULL;
  int rc;

  setlocale (LC_ALL, "C.UTF-8");
  if (argc >= 2 && strcmp (argv[1], "audit") == 0)
    return cli_audit_main (argc - 1, argv + 1);
  ctx = g_option_context_new ("COMMAND [ARGS] - secure invitation mailer client");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_summary (ctx, summary);
  g_option_context_set_description (ctx, description);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return usage_error (error->message);
  if (version)
    {
      printf ("%s\n", INVITEMAIL_VERSION_TEXT);
      return EXIT_OK;
    }
  if (argc < 2)
    return usage_error ("a command is needed");
  rc = run (argv[1], &o, argc - 2, argv + 2);
  g_free (o.socket);
  g_free (o.config);
  g_free (o.link);
  g_strfreev (o.bcc);
  g_free (o.booking);
  g_free (o.staff);
  g_free (o.lang);
  g_free (o.template_name);
  g_free (o.meeting_time);
  g_free (o.meeting_end);
  g_free (o.duration);
  g_free (o.idempotency_key);
  g_free (o.recipient);
  g_free (o.unit);
  return rc;
}
