/*
 * cli_ops.c - `invitemail bounce` and `invitemail health`: the client
 * side of operations.  See cli_ops.h.
 *
 * bounce: reads one message from standard input (at most DSN_INPUT_MAX
 * bytes are kept; the rest is read and dropped, up to BOUNCE_DRAIN_MAX,
 * so the mail system sees its pipe drained), parses it here with
 * dsn.c, in this process and not in the daemon, and sends the daemon
 * only the token, action, status and diagnostic, or the code the parser
 * refused with so that the daemon audits the refusal too.  Exit codes
 * are what a mail system's pipe expects: 0 recorded, 75 try again later
 * (daemon unreachable or busy: the mail is kept and retried), 65
 * refused (the mail system returns it to the postmaster).
 *
 * health: one request, printed as a monitoring plugin does (first line
 * "INVITEMAIL OK|WARNING|CRITICAL - ...", exit 0/1/2) or as JSON; a
 * daemon that does not answer is CRITICAL.
 */
#include "cli_ops.h"

#include "cli_compliance.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dsn.h"
#include "exitcodes.h"
#include "mime.h"

#define BOUNCE_DRAIN_MAX (64 * 1024 * 1024)

/* Reads standard input: at most DSN_INPUT_MAX bytes kept; *too_big when
 * there was more.  NULL on a read error. */
static GByteArray *
read_stdin (gboolean *too_big)
{
  g_autoptr (GByteArray) in = g_byte_array_new ();
  char buf[65536];
  gsize total = 0;

  *too_big = FALSE;
  for (;;)
    {
      ssize_t n = read (STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return NULL;
      if (n == 0 || total > BOUNCE_DRAIN_MAX)
        break;
      total += (gsize) n;
      if (in->len + (gsize) n > DSN_INPUT_MAX)
        *too_big = TRUE;
      else
        g_byte_array_append (in, (guint8 *) buf, (guint) n);
    }
  return g_steal_pointer (&in);
}

int
cli_print_refusal (const RawRequest *ans)
{
  const char *code = raw_request_get (ans, "error");
  const char *msg = raw_request_get (ans, "message");
  const char *field = raw_request_get (ans, "field");

  fprintf (stderr, "invitemail: refused: %s%s%s%s%s%s\n", code ? code : "?",
           field ? " (" : "", field ? field : "", field ? ")" : "",
           msg ? ": " : "", msg ? msg : "");
  for (int c = 0; c < REFUSAL_N_CODES; c++)
    if (g_strcmp0 (code, refusal_code_name (c)) == 0)
      return exit_code_for_refusal (c);
  return EXIT_REJECTED;
}

/* The envelope recipient the mail system passed: --recipient, else
 * Postfix local(8)'s and Exim's environment. */
static const char *
envelope_recipient (const char *option)
{
  const char *v;

  if (option != NULL)
    return option;
  if ((v = g_getenv ("ORIGINAL_RECIPIENT")) != NULL && *v != '\0')
    return v;
  if ((v = g_getenv ("RECIPIENT")) != NULL && *v != '\0')
    return v;
  return NULL;
}

int
cli_bounce (CliExchange exchange, gconstpointer ctx, const char *recipient)
{
  g_autoptr (GByteArray) in = NULL;
  g_autoptr (GString) req = g_string_new ("request=bounce\n");
  g_autoptr (GError) error = NULL;
  g_autoptr (RawRequest) ans = NULL;
  const char *rcpt = envelope_recipient (recipient);
  gboolean too_big = FALSE;
  Dsn dsn;
  int rc = EXIT_OK;

  if (rcpt != NULL && strpbrk (rcpt, "\r\n") != NULL)
    rcpt = "";   /* cannot be ours; dsn_parse finds no token in it */
  if ((in = read_stdin (&too_big)) == NULL)
    {
      fprintf (stderr, "invitemail: reading standard input: %s\n", g_strerror (errno));
      return EXIT_TEMPFAIL;
    }
  if (too_big)
    g_string_append (req, "dsn_error=request_too_large\n");
  else
    {
      gboolean ok;
      mime_init ();
      ok = dsn_parse ((const char *) in->data, in->len, rcpt, &dsn, &error);
      mime_shutdown ();
      if (!ok)
        {
          fprintf (stderr, "invitemail: bounce: %s\n", error->message);
          g_string_append_printf (req, "dsn_error=%s\n",
                                  error->code == DSN_ERROR_NO_TOKEN ? "unknown_token"
                                  : "not_dsn");
        }
      else
        {
          g_string_append_printf (req, "token=%s\ndsn_action=%s\ndsn_status=%s\n",
                                  dsn.token, dsn.action, dsn.status);
          if (dsn.diagnostic[0] != '\0')
            g_string_append_printf (req, "diagnostic=%s\n", dsn.diagnostic);
        }
    }
  g_string_append_c (req, '\n');
  if ((ans = exchange (ctx, req, &rc)) == NULL)
    return EXIT_TEMPFAIL;
  if (g_strcmp0 (raw_request_get (ans, "status"), "rejected") == 0)
    return cli_print_refusal (ans);
  printf ("%s %s\n", raw_request_get (ans, "id"), raw_request_get (ans, "state"));
  return EXIT_OK;
}

/* ---- health --------------------------------------------------------- */

static int
level_code (const char *level)
{
  if (g_strcmp0 (level, "OK") == 0)
    return 0;
  if (g_strcmp0 (level, "WARNING") == 0)
    return 1;
  return 2;
}

/* check=NAME LEVEL VALUE TEXT... */
static void
print_health_json (const RawRequest *ans, const char *level)
{
  g_autoptr (GString) js = g_string_new ("{\"status\":");
  guint n = 0;

  cli_json_string (js, level);
  g_string_append (js, ",\"checks\":[");
  for (guint i = 0; i < ans->attrs->len; i++)
    {
      RawAttr *a = g_ptr_array_index (ans->attrs, i);
      g_auto (GStrv) f = NULL;
      if (strcmp (a->name, "check") != 0)
        continue;
      f = g_strsplit (a->value, " ", 4);
      if (g_strv_length (f) < 4)
        continue;
      g_string_append (js, n++ ? ",{\"name\":" : "{\"name\":");
      cli_json_string (js, f[0]);
      g_string_append (js, ",\"level\":");
      cli_json_string (js, f[1]);
      g_string_append (js, ",\"value\":");
      if (strcmp (f[2], "-") == 0)
        g_string_append (js, "null");
      else
        {
          char *end = NULL;
          g_ascii_strtoll (f[2], &end, 10);
          if (end != NULL && *end == '\0')
            g_string_append (js, f[2]);
          else
            cli_json_string (js, f[2]);
        }
      g_string_append (js, ",\"text\":");
      cli_json_string (js, f[3]);
      g_string_append_c (js, '}');
    }
  g_string_append (js, "]}");
  printf ("%s\n", js->str);
}

int
cli_health (CliExchange exchange, gconstpointer ctx, gboolean json)
{
  g_autoptr (GString) req = g_string_new ("request=health\n\n");
  g_autoptr (RawRequest) ans = NULL;
  const char *level;
  int rc = EXIT_OK;

  if ((ans = exchange (ctx, req, &rc)) == NULL
      || g_strcmp0 (raw_request_get (ans, "status"), "ok") != 0)
    {
      /* No answer, or a refusal (e.g. not_authorized: this user may
       * not ask): the monitor must see it, as CRITICAL. */
      g_autofree char *why = ans == NULL ? g_strdup ("the daemon does not answer")
        : g_strdup_printf ("the daemon refused: %s",
                           raw_request_get (ans, "error") ? raw_request_get (ans, "error")
                           : "?");
      g_autoptr (GString) js = g_string_new ("{\"status\":\"CRITICAL\",\"checks\":["
                                             "{\"name\":\"daemon\",\"level\":\"CRITICAL\","
                                             "\"value\":null,\"text\":");
      if (json)
        {
          cli_json_string (js, why);
          g_string_append (js, "}]}");
          printf ("%s\n", js->str);
        }
      else
        printf ("INVITEMAIL CRITICAL - %s\n", why);
      return 2;
    }
  level = raw_request_get (ans, "health");
  if (level_code (level) == 2)
    level = "CRITICAL";
  if (json)
    {
      print_health_json (ans, level);
      return level_code (level);
    }
  printf ("INVITEMAIL %s", level);
  for (guint i = 0, n = 0; i < ans->attrs->len; i++)
    {
      RawAttr *a = g_ptr_array_index (ans->attrs, i);
      g_auto (GStrv) f = NULL;
      if (strcmp (a->name, "check") != 0)
        continue;
      f = g_strsplit (a->value, " ", 4);
      if (g_strv_length (f) == 4 && strcmp (f[1], "OK") != 0)
        printf ("%s %s: %s", n++ ? ";" : " -", f[0], f[3]);
    }
  printf ("\n");
  for (guint i = 0; i < ans->attrs->len; i++)
    {
      RawAttr *a = g_ptr_array_index (ans->attrs, i);
      g_auto (GStrv) f = NULL;
      if (strcmp (a->name, "check") != 0)
        continue;
      f = g_strsplit (a->value, " ", 4);
      if (g_strv_length (f) == 4)
        printf ("  %-9s %-8s %s\n", f[0], f[1], f[3]);
    }
  return level_code (level);
}
