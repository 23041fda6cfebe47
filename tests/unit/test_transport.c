/*
 * test_transport.c - transport.c against a real SMTP server on 127.0.0.1
 * (tests/system/smtpd.py, aiosmtpd) with real TLS from a throwaway CA made by
 * tests/system/mkcerts.sh, and the file transport against a real folder.
 *
 * Each case starts its own server (its own capture folder and command
 * log) and stops it with SIGTERM.  Exit 77 (skip) only when
 * /usr/bin/python3 cannot import aiosmtpd.
 *
 * The bounds libESMTP lacks are tested with stand-ins: a listening
 * socket whose accept queue is full (the kernel drops further SYNs, as
 * a black-holing firewall would) for connect(), and a GResolver that
 * answers late, installed with g_resolver_set_default, for the lookup.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

#include "transport.h"
#include "transport_private.h"
#include "transport_wire.h"

#define PYTHON "/usr/bin/python3"
#define TIMEOUT_MS 2000
#define FROM "evisit@example.org"

static char *tmp_root;      /* g_dir_make_tmp, removed at the end */
static char *certs;         /* tmp_root/certs */
static char *srcdir;

/* A message with the lines that SMTP transparency must keep intact. */
static const char MESSAGE[] =
  "From: Region Exempel <evisit@example.org>\r\n"
  "Subject: Inbjudan till videobesok\r\n"
  "Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
  "Message-Id: <test.1@example.org>\r\n"
  "MIME-Version: 1.0\r\n"
  "Content-Type: text/plain; charset=us-ascii\r\n"
  "\r\n"
  "Hej!\r\n"
  ".\r\n"
  "From here on, a line that mbox would mangle.\r\n"
  "..two dots\r\n"
  ". dot space\r\n"
  "last line\r\n";

/* ---------------------------------------------------------------- */
/* helpers: files, server, config                                    */

static char *
read_file (const char *path, gsize *len)
{
  char *data = NULL;
  if (!g_file_get_contents (path, &data, len, NULL))
    return NULL;
  return data;
}

static guint
count_files (const char *dir, const char *suffix)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (suffix == NULL || g_str_has_suffix (name, suffix))
      n++;
  return n;
}

typedef struct {
  GPid pid;
  int port;
  char *dir;
  char *capture;
  char *log;
} Server;

static Server *
server_start (const char *name, const char *const *extra)
{
  Server *s = g_new0 (Server, 1);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *ready = NULL;
  g_autoptr (GError) error = NULL;

  s->dir = g_build_filename (tmp_root, name, NULL);
  g_assert_cmpint (g_mkdir_with_parents (s->dir, 0700), ==, 0);
  s->capture = g_build_filename (s->dir, "cap", NULL);
  s->log = g_build_filename (s->dir, "log", NULL);
  ready = g_build_filename (s->dir, "ready", NULL);
  g_ptr_array_add (argv, g_strdup (PYTHON));
  g_ptr_array_add (argv, g_build_filename (srcdir, "tests", "system", "smtpd.py", NULL));
  const char *fixed[] = { "--ready-file", ready, "--capture", s->capture,
                          "--log", s->log, "--max-seconds", "60" };
  for (gsize i = 0; i < G_N_ELEMENTS (fixed); i++)
    g_ptr_array_add (argv, g_strdup (fixed[i]));
  for (gsize i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (extra[i]));
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_async (NULL, (char **) argv->pdata, NULL,
                      G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, &s->pid, &error))
    fail_msg ("cannot start smtpd.py: %s", error->message);

  for (int i = 0; i < 500 && s->port == 0; i++)
    {
      g_autofree char *text = read_file (ready, NULL);
      if (text != NULL)
        s->port = atoi (text);
      else
        g_usleep (20 * 1000);
    }
  if (s->port <= 0)
    fail_msg ("smtpd.py did not become ready");
  return s;
}

static void
server_stop (Server *s)
{
  int status;

  if (s == NULL)
    return;
  kill (s->pid, SIGTERM);
  waitpid (s->pid, &status, 0);
  g_spawn_close_pid (s->pid);
  g_free (s->dir);
  g_free (s->capture);
  g_free (s->log);
  g_free (s);
}

static char *
server_log (const Server *s)
{
  char *text = read_file (s->log, NULL);
  return text != NULL ? text : g_strdup ("");
}

/* The capture's .json for transaction number i (1-based). */
static char *
capture_meta (const Server *s, int i)
{
  g_autofree char *path = g_strdup_printf ("%s/%04d.json", s->capture, i);
  return read_file (path, NULL);
}

static char *
capture_eml (const Server *s, int i, gsize *len)
{
  g_autofree char *path = g_strdup_printf ("%s/%04d.eml", s->capture, i);
  return read_file (path, len);
}

static Config *
cfg_new (int port, TlsMode tls, const char *user, const char *password)
{
  Config *cfg = g_new0 (Config, 1);

  cfg->transport = TRANSPORT_SMTP;
  cfg->smtp_host = g_strdup (tls == TLS_NONE ? "127.0.0.1" : "localhost");
  cfg->smtp_port = port;
  cfg->smtp_tls = tls;
  cfg->smtp_ca_file = g_build_filename (certs, "ca.pem", NULL);
  cfg->smtp_helo_name = g_strdup ("client.example.org");
  cfg->smtp_timeout_ms = TIMEOUT_MS;
  cfg->to_header = TO_HEADER_NONE;
  cfg->envelope_from = g_strdup (FROM);
  if (user != NULL)
    {
      cfg->smtp_auth_user = g_strdup (user);
      cfg->smtp_password.value = g_strdup (password);
      cfg->smtp_password.len = strlen (password);
    }
  return cfg;
}

static void
cfg_free (Config *cfg)
{
  g_free (cfg->smtp_host);
  g_free (cfg->smtp_ca_file);
  g_free (cfg->smtp_helo_name);
  g_free (cfg->envelope_from);
  g_free (cfg->smtp_auth_user);
  g_free (cfg->smtp_password.value);
  g_free (cfg->outbox_dir);
  g_free (cfg);
}

/* n jobs to a@, b@, c@example.com ... all with MESSAGE. */
static DeliveryJob *
jobs_new (guint n, GBytes *msg)
{
  static const char *const rcpt[] = { "a@example.com", "b@example.com",
                                      "c@example.com", "d@example.com" };
  static const char *const tags[] = { "inv1.0", "inv1.1", "inv1.2",
                                      "inv1.3" };
  DeliveryJob *jobs = g_new0 (DeliveryJob, n);

  g_assert_cmpuint (n, <=, G_N_ELEMENTS (rcpt));
  for (guint i = 0; i < n; i++)
    {
      jobs[i].recipient = rcpt[i];
      jobs[i].envelope_from = FROM;
      jobs[i].message = msg;
      jobs[i].tag = tags[i];
      jobs[i].outcome = -1;
    }
  return jobs;
}

static GBytes *
message_bytes (void)
{
  return g_bytes_new_static (MESSAGE, sizeof MESSAGE - 1);
}

/* Runs n jobs through a fresh Transport. */
static DeliveryJob *
deliver (Config *cfg, guint n)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) msg = message_bytes ();
  DeliveryJob *jobs = jobs_new (n, msg);
  Transport *t = transport_new (cfg, &error);

  if (t == NULL)
    fail_msg ("transport_new: %s", error->message);
  gint64 start = g_get_monotonic_time ();
  transport_deliver (t, jobs, n);
  gint64 elapsed_ms = (g_get_monotonic_time () - start) / 1000;
  transport_free (t);
  /* transport.h: at most about (n + 2) * timeout. */
  if (elapsed_ms > (gint64) (n + 2) * TIMEOUT_MS + 1000)
    fail_msg ("transport_deliver took %" G_GINT64_FORMAT " ms", elapsed_ms);
  for (guint i = 0; i < n; i++)
    jobs[i].message = NULL;    /* msg is freed here; keep no dangling ref */
  return jobs;
}

static void
assert_reply_safe (const DeliveryJob *job)
{
  gsize len = strlen (job->reply);

  assert_true (len < DELIVERY_REPLY_MAX);
  for (gsize i = 0; i < len; i++)
    assert_true (job->reply[i] >= 0x20 && job->reply[i] <= 0x7e);
}

static void
assert_all_tempfail (const DeliveryJob *jobs, guint n, const char *reason)
{
  for (guint i = 0; i < n; i++)
    {
      if (jobs[i].outcome != DELIVERY_TEMPFAIL
          || strstr (jobs[i].reply, reason) == NULL)
        fail_msg ("job %u: outcome %d reply '%s', wanted TEMPFAIL '%s'", i,
                  jobs[i].outcome, jobs[i].reply, reason);
      assert_reply_safe (&jobs[i]);
    }
}

/* True when the server's command log has a line whose command (after
 * the "ip:port " prefix) starts with verb, in any case. */
static gboolean
log_has_command (const char *log, const char *verb)
{
  g_auto (GStrv) lines = g_strsplit (log, "\n", -1);

  for (gsize i = 0; lines[i] != NULL; i++)
    {
      const char *cmd = strchr (lines[i], ' ');
      if (cmd != NULL && g_ascii_strncasecmp (cmd + 1, verb, strlen (verb)) == 0)
        return TRUE;
    }
  return FALSE;
}

/* The TLS 1.3 ticket barrier: NOOP right after the handshake, before
 * libESMTP's second EHLO. */
static const char *const tls13_order[] = { "EHLO", "STARTTLS", "NOOP",
                                           "EHLO", "MAIL", NULL };

/* Fails unless the log's commands start with verbs[0], verbs[1], ...
 * in that order (other commands may come between). */
static void
assert_commands_in_order (const char *log, const char *const *verbs)
{
  g_auto (GStrv) lines = g_strsplit (log, "\n", -1);
  gsize v = 0;

  for (gsize i = 0; lines[i] != NULL && verbs[v] != NULL; i++)
    {
      const char *cmd = strchr (lines[i], ' ');
      if (cmd != NULL
          && g_ascii_strncasecmp (cmd + 1, verbs[v], strlen (verbs[v])) == 0)
        v++;
    }
  if (verbs[v] != NULL)
    fail_msg ("command %s missing or out of order in:\n%s", verbs[v], log);
}

static void
assert_no_mail_from (const Server *s)
{
  g_autofree char *log = server_log (s);

  if (log_has_command (log, "MAIL") || log_has_command (log, "RCPT")
      || log_has_command (log, "DATA"))
    fail_msg ("server received an envelope:\n%s", log);
  assert_int_equal (count_files (s->capture, NULL), 0);
}

/* ---------------------------------------------------------------- */
/* TLS, AUTH and session-level failures                              */

static void
test_starttls_auth_three_jobs (void **state)
{
  (void) state;
  g_autofree char *cert = g_build_filename (certs, "server-localhost.pem", NULL);
  g_autofree char *key = g_build_filename (certs, "server-localhost.key", NULL);
  const char *args[] = { "--cert", cert, "--key", key, "--auth", "mailer:s3cret",
                         "--require-tls", "--require-auth", NULL };
  Server *s = server_start ("three", args);
  Config *cfg = cfg_new (s->port, TLS_STARTTLS, "mailer", "s3cret");
  g_autofree DeliveryJob *jobs = deliver (cfg, 3);

  for (int i = 0; i < 3; i++)
    {
      gsize len;
      g_autofree char *meta = capture_meta (s, i + 1);
      g_autofree char *eml = capture_eml (s, i + 1, &len);
      g_autofree char *rcpt = g_strdup_printf ("\"rcpt_tos\": [\"%s\"]",
                                               jobs[i].recipient);

      if (jobs[i].outcome != DELIVERY_SENT)
        fail_msg ("job %d: %d %s", i, jobs[i].outcome, jobs[i].reply);
      assert_int_equal (jobs[i].smtp_code, 250);
      assert_non_null (meta);
      assert_non_null (strstr (meta, rcpt));        /* exactly one RCPT */
      assert_non_null (strstr (meta, "\"mail_from\": \"" FROM "\""));
      assert_non_null (strstr (meta, "\"on\": true"));
      assert_non_null (strstr (meta, "\"version\": \"TLSv1.3\""));
      assert_non_null (strstr (meta, "\"auth_user\": \"mailer\""));
      assert_non_null (strstr (meta, "\"sni\": \"localhost\""));
      assert_non_null (eml);
      assert_int_equal (len, sizeof MESSAGE - 1);
      assert_memory_equal (eml, MESSAGE, len);
    }
  assert_int_equal (count_files (s->capture, ".eml"), 3);
  g_autofree char *log = server_log (s);
  assert_true (log_has_command (log, "MAIL FROM:<" FROM ">"));
  assert_null (strstr (log, "s3cret"));
  assert_commands_in_order (log, tls13_order);
  server_stop (s);
  cfg_free (cfg);
}

/* STARTTLS to an IP literal: OpenSSL checks the IP SAN (libESMTP's own
 * check cannot), and no SNI is sent (RFC 6066 3). */
static void
test_starttls_ip_literal (void **state)
{
  (void) state;
  g_autofree char *cert = g_build_filename (certs, "server-localhost.pem", NULL);
  g_autofree char *key = g_build_filename (certs, "server-localhost.key", NULL);
  const char *args[] = { "--cert", cert, "--key", key, "--require-tls", NULL };
  Server *s = server_start ("ip-literal", args);
  Config *cfg = cfg_new (s->port, TLS_STARTTLS, NULL, NULL);

  g_free (cfg->smtp_host);
  cfg->smtp_host = g_strdup ("127.0.0.1");
  g_autofree DeliveryJob *jobs = deliver (cfg, 1);
  g_autofree char *meta = capture_meta (s, 1);

  if (jobs[0].outcome != DELIVERY_SENT)
    fail_msg ("outcome %d: %s", jobs[0].outcome, jobs[0].reply);
  assert_non_null (strstr (meta, "\"on\": true"));
  assert_non_null (strstr (meta, "\"sni\": null"));
  server_stop (s);
  cfg_free (cfg);
}

typedef struct {
  const char *name;
  const char *cert;          /* server certificate base name, NULL = none */
  const char *extra[8];      /* more smtpd.py options */
  const char *user;          /* client AUTH user, NULL = no AUTH */
  TlsMode tls;
  const char *reason;        /* expected in every job's reply */
} RefuseCase;

static const RefuseCase refuse_cases[] = {
  { "no-starttls", "server-localhost", { "--no-starttls" }, NULL,
    TLS_STARTTLS, "relay offers no STARTTLS" },
  { "wrong-name", "server-wrongname", { NULL }, NULL, TLS_STARTTLS,
    "TLS certificate does not name the relay (verify error 62" },
  { "untrusted-ca", "server-untrusted", { NULL }, NULL, TLS_STARTTLS,
    "TLS certificate not trusted (verify error 20" },
  { "expired", "server-expired", { NULL }, NULL, TLS_STARTTLS,
    "TLS certificate not trusted (verify error 10" },
  { "tls-1.1-only", "server-localhost", { "--tls-max", "1.1" }, NULL,
    TLS_STARTTLS, "TLS handshake failed" },
  { "auth-refused", "server-localhost", { "--auth", "mailer:other",
    "--auth-refuse" }, "mailer", TLS_STARTTLS, "AUTH refused: 535" },
  { "auth-refused-plain", NULL, { "--auth", "mailer:other", "--auth-refuse",
    "--auth-plaintext" }, "mailer", TLS_NONE, "AUTH refused: 535" },
  { "auth-not-offered", "server-localhost", { NULL }, "mailer",
    TLS_STARTTLS, "relay offers no AUTH" },
  { "greeting-421", NULL, { "--fault", "greeting:421" }, NULL, TLS_NONE,
    "421 test fault" },
  { "greeting-stall", NULL, { "--fault", "stall:4" }, NULL, TLS_NONE,
    "connection lost or timed out" },
  { "tls-handshake-aborted", "server-localhost", { "--fault", "tls-fail" },
    NULL, TLS_STARTTLS, "TLS handshake failed" },
  { "tls13-barrier-421", "server-localhost", { "--fault", "noop:421" }, NULL,
    TLS_STARTTLS, "relay refused the session: 421 test fault" },
  /* STARTTLS response injection: plaintext replies after the 220, in the
   * same write; the relay refuses every MAIL inside TLS.  The old code
   * took the injected replies as answers and reported SENT. */
  { "starttls-inject-tls13", "server-localhost",
    { "--fault", "starttls-inject" }, NULL, TLS_STARTTLS,
    "STARTTLS injection" },
  { "starttls-inject-tls12", "server-localhost",
    { "--fault", "starttls-inject", "--tls-max", "1.2" }, NULL, TLS_STARTTLS,
    "STARTTLS injection" },
  { "starttls-inject-auth-tls13", "server-localhost",
    { "--fault", "starttls-inject:auth", "--auth", "mailer:s3cret" },
    "mailer", TLS_STARTTLS, "STARTTLS injection" },
  { "starttls-inject-auth-tls12", "server-localhost",
    { "--fault", "starttls-inject:auth", "--auth", "mailer:s3cret",
      "--tls-max", "1.2" }, "mailer", TLS_STARTTLS, "STARTTLS injection" },
  /* An endless greeting: cut by the reply caps, long before the
   * deadline. */
  { "greeting-flood", NULL, { "--fault", "flood-greeting" }, NULL, TLS_NONE,
    "relay reply over 64 lines" },
};

/* Each case: every job TEMPFAIL with the reason, and the server got no
 * MAIL FROM, no RCPT, no DATA and captured nothing. */
static void
test_session_refused (void **state)
{
  (void) state;
  for (gsize c = 0; c < G_N_ELEMENTS (refuse_cases); c++)
    {
      const RefuseCase *rc = &refuse_cases[c];
      g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);

      print_message ("case %s\n", rc->name);
      if (rc->cert != NULL)
        {
          g_ptr_array_add (args, g_strdup ("--cert"));
          g_ptr_array_add (args, g_strdup_printf ("%s/%s.pem", certs, rc->cert));
          g_ptr_array_add (args, g_strdup ("--key"));
          g_ptr_array_add (args, g_strdup_printf ("%s/%s.key", certs, rc->cert));
        }
      for (gsize i = 0; rc->extra[i] != NULL; i++)
        g_ptr_array_add (args, g_strdup (rc->extra[i]));
      g_ptr_array_add (args, NULL);

      Server *s = server_start (rc->name, (const char *const *) args->pdata);
      Config *cfg = cfg_new (s->port, rc->tls, rc->user, "s3cret");
      g_autofree DeliveryJob *jobs = deliver (cfg, 2);

      assert_all_tempfail (jobs, 2, rc->reason);
      assert_int_equal (jobs[0].smtp_code, 0);
      assert_no_mail_from (s);
      if (!g_str_has_prefix (rc->name, "greeting"))
        {
          g_autofree char *log = server_log (s);
          assert_true (log_has_command (log, "EHLO"));  /* the log works */
        }
      server_stop (s);
      cfg_free (cfg);
    }
}

static void
test_connection_refused (void **state)
{
  (void) state;
  struct sockaddr_in sa = { .sin_family = AF_INET,
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t sl = sizeof sa;
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  /* A port that was free a moment ago and is closed now. */
  assert_int_equal (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0);
  assert_int_equal (getsockname (fd, (struct sockaddr *) &sa, &sl), 0);
  close (fd);
  Config *cfg = cfg_new (ntohs (sa.sin_port), TLS_STARTTLS, NULL, NULL);
  g_autofree DeliveryJob *jobs = deliver (cfg, 2);

  assert_all_tempfail (jobs, 2, "connect failed: Connection refused");
  cfg_free (cfg);
}

/* ---------------------------------------------------------------- */
/* per-recipient and per-message replies                             */

typedef struct {
  const char *name;
  const char *fault;
  DeliveryOutcome want[3];
  int code[3];
  int captured;
  const char *reply0;        /* expected in the first job's reply */
} ReplyCase;

static const ReplyCase reply_cases[] = {
  { "rcpt-550-one-of-three", "rcpt:b@example.com:550",
    { DELIVERY_SENT, DELIVERY_PERMFAIL, DELIVERY_SENT }, { 250, 550, 250 }, 2,
    "250 OK queued" },
  { "rcpt-451", "rcpt:a@example.com:451",
    { DELIVERY_TEMPFAIL, DELIVERY_SENT, DELIVERY_SENT }, { 451, 250, 250 }, 2,
    "451 test fault" },
  { "data-554", "data:554@1",
    { DELIVERY_PERMFAIL, DELIVERY_SENT, DELIVERY_SENT }, { 554, 250, 250 }, 2,
    "554 test fault" },
  { "data-451", "data:451",
    { DELIVERY_TEMPFAIL, DELIVERY_TEMPFAIL, DELIVERY_TEMPFAIL },
    { 451, 451, 451 }, 0, "451 test fault" },
  { "drop-in-data", "drop-in-data",
    { DELIVERY_TEMPFAIL, DELIVERY_TEMPFAIL, DELIVERY_TEMPFAIL }, { 0, 0, 0 },
    0, "connection lost or timed out" },
  { "data-stall", "stall-data:4",
    { DELIVERY_TEMPFAIL, DELIVERY_TEMPFAIL, DELIVERY_TEMPFAIL }, { 0, 0, 0 },
    0, "connection lost or timed out" },
};

static void
test_replies (void **state)
{
  (void) state;
  for (gsize c = 0; c < G_N_ELEMENTS (reply_cases); c++)
    {
      const ReplyCase *rc = &reply_cases[c];
      const char *args[] = { "--fault", rc->fault, NULL };

      print_message ("case %s\n", rc->name);
      Server *s = server_start (rc->name, args);
      Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
      g_autofree DeliveryJob *jobs = deliver (cfg, 3);

      for (int i = 0; i < 3; i++)
        {
          if (jobs[i].outcome != rc->want[i] || jobs[i].smtp_code != rc->code[i])
            fail_msg ("%s job %d: outcome %d code %d reply '%s'", rc->name, i,
                      jobs[i].outcome, jobs[i].smtp_code, jobs[i].reply);
          assert_reply_safe (&jobs[i]);
          assert_true (jobs[i].reply[0] != '\0');
        }
      if (strstr (jobs[0].reply, rc->reply0) == NULL)
        fail_msg ("%s: reply '%s'", rc->name, jobs[0].reply);
      assert_int_equal (count_files (s->capture, ".eml"), rc->captured);
      server_stop (s);
      cfg_free (cfg);
    }
}

/* Plain text to a loopback relay; the body's ".", "From " and dot lines
 * arrive byte for byte. */
static void
test_plaintext_loopback (void **state)
{
  (void) state;
  Server *s = server_start ("plain", NULL);
  Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
  g_autofree DeliveryJob *jobs = deliver (cfg, 1);
  gsize len;
  g_autofree char *eml = capture_eml (s, 1, &len);
  g_autofree char *meta = capture_meta (s, 1);

  assert_int_equal (jobs[0].outcome, DELIVERY_SENT);
  assert_non_null (strstr (jobs[0].reply, "250"));
  assert_non_null (eml);
  assert_int_equal (len, sizeof MESSAGE - 1);
  assert_memory_equal (eml, MESSAGE, len);
  assert_non_null (strstr (eml, "\r\n.\r\nFrom here"));
  assert_non_null (strstr (meta, "\"on\": false"));
  server_stop (s);
  cfg_free (cfg);
}

static void
test_hostile_reply (void **state)
{
  (void) state;
  const char *args[] = { "--fault", "rcpt:a@example.com:hostile", NULL };
  Server *s = server_start ("hostile", args);
  Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
  g_autofree DeliveryJob *jobs = deliver (cfg, 2);

  assert_int_equal (jobs[0].outcome, DELIVERY_PERMFAIL);
  assert_int_equal (jobs[0].smtp_code, 550);
  assert_reply_safe (&jobs[0]);
  if (strlen (jobs[0].reply) <= 100)                /* cut, not dropped */
    fail_msg ("reply too short: %s", jobs[0].reply);
  assert_null (strchr (jobs[0].reply, '\x1b'));
  assert_int_equal (jobs[1].outcome, DELIVERY_SENT);
  server_stop (s);
  cfg_free (cfg);
}

/* An address that would inject a second RCPT is refused before sending;
 * the other job still goes. */
static void
test_invalid_address (void **state)
{
  (void) state;
  Server *s = server_start ("inject", NULL);
  Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
  g_autoptr (GBytes) msg = message_bytes ();
  DeliveryJob jobs[2];
  Transport *t = transport_new (cfg, NULL);

  memset (jobs, 0, sizeof jobs);
  jobs[0] = (DeliveryJob) { .recipient = "x@example.com>\r\nRCPT TO:<evil@example.com",
                            .envelope_from = FROM, .message = msg, .tag = "t1.0" };
  jobs[1] = (DeliveryJob) { .recipient = "ok@example.com", .envelope_from = FROM,
                            .message = msg, .tag = "t1.1" };
  transport_deliver (t, jobs, 2);
  transport_free (t);

  assert_int_equal (jobs[0].outcome, DELIVERY_PERMFAIL);
  assert_string_equal (jobs[0].reply, "invalid address");
  assert_int_equal (jobs[1].outcome, DELIVERY_SENT);
  g_autofree char *log = server_log (s);
  assert_null (strstr (log, "evil"));
  assert_int_equal (count_files (s->capture, ".eml"), 1);
  server_stop (s);
  cfg_free (cfg);
}

/* To, Cc and Bcc inside the message never reach the relay; with
 * to_header=undisclosed the empty group To is kept. */
static void
test_prohibited_headers (void **state)
{
  (void) state;
  static const char leaky[] =
    "From: evisit@example.org\r\nTo: undisclosed-recipients:;\r\n"
    "Cc: leak-cc@example.com\r\nBcc: leak-bcc@example.com\r\n"
    "Subject: x\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
    "Message-Id: <t.2@example.org>\r\n\r\nbody\r\n";
  Server *s = server_start ("headers", NULL);

  for (int undisclosed = 0; undisclosed <= 1; undisclosed++)
    {
      Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
      g_autoptr (GBytes) msg = g_bytes_new_static (leaky, sizeof leaky - 1);
      DeliveryJob job = { .recipient = "a@example.com", .envelope_from = FROM,
                          .message = msg, .tag = "h.0" };
      cfg->to_header = undisclosed ? TO_HEADER_UNDISCLOSED : TO_HEADER_NONE;
      Transport *t = transport_new (cfg, NULL);
      transport_deliver (t, &job, 1);
      transport_free (t);
      g_autofree char *eml = capture_eml (s, undisclosed + 1, NULL);

      assert_int_equal (job.outcome, DELIVERY_SENT);
      assert_non_null (eml);
      assert_null (strstr (eml, "leak-"));
      assert_null (strstr (eml, "Cc:"));
      assert_null (strstr (eml, "Bcc:"));
      if (undisclosed)
        assert_non_null (strstr (eml, "To: undisclosed-recipients:;\r\n"));
      else
        assert_null (strstr (eml, "To:"));
      cfg_free (cfg);
    }
  server_stop (s);
}

/* ---------------------------------------------------------------- */
/* TLS 1.3 ticket barrier; DNS and connect() bounds                  */

/* Many TLS 1.3 sessions in a row, one job each: every one is sent and
 * none comes near the timeout (a ticket stall would last TIMEOUT_MS). */
static void
test_tls13_sessions (void **state)
{
  (void) state;
  enum { SESSIONS = 25 };
  g_autofree char *cert = g_build_filename (certs, "server-localhost.pem", NULL);
  g_autofree char *key = g_build_filename (certs, "server-localhost.key", NULL);
  const char *args[] = { "--cert", cert, "--key", key, "--require-tls", NULL };
  Server *s = server_start ("tls13-many", args);
  Config *cfg = cfg_new (s->port, TLS_STARTTLS, NULL, NULL);

  for (int i = 0; i < SESSIONS; i++)
    {
      gint64 start = g_get_monotonic_time ();
      g_autofree DeliveryJob *jobs = deliver (cfg, 1);
      gint64 ms = (g_get_monotonic_time () - start) / 1000;

      if (jobs[0].outcome != DELIVERY_SENT || ms >= TIMEOUT_MS / 2)
        fail_msg ("session %d: outcome %d after %" G_GINT64_FORMAT " ms: %s",
                  i, jobs[0].outcome, ms, jobs[0].reply);
    }
  g_autofree char *meta = capture_meta (s, SESSIONS);
  assert_non_null (strstr (meta, "\"version\": \"TLSv1.3\""));
  assert_int_equal (count_files (s->capture, ".eml"), SESSIONS);
  server_stop (s);
  cfg_free (cfg);
}

/* TLS 1.2 has no post-handshake tickets: no NOOP round trip. */
static void
test_tls12_no_barrier (void **state)
{
  (void) state;
  g_autofree char *cert = g_build_filename (certs, "server-localhost.pem", NULL);
  g_autofree char *key = g_build_filename (certs, "server-localhost.key", NULL);
  const char *args[] = { "--cert", cert, "--key", key, "--tls-max", "1.2",
                         NULL };
  Server *s = server_start ("tls12", args);
  Config *cfg = cfg_new (s->port, TLS_STARTTLS, NULL, NULL);
  g_autofree DeliveryJob *jobs = deliver (cfg, 1);
  g_autofree char *meta = capture_meta (s, 1);
  g_autofree char *log = server_log (s);

  assert_int_equal (jobs[0].outcome, DELIVERY_SENT);
  assert_non_null (strstr (meta, "\"version\": \"TLSv1.2\""));
  assert_false (log_has_command (log, "NOOP"));
  server_stop (s);
  cfg_free (cfg);
}

/* transport_wire.c's verdicts, byte by byte (the relay tests above show
 * them on a real connection). */
static gboolean
wire_says (Wire *w, const char *read, const char *write)
{
  if (read != NULL && !transport_wire_read (w, read, strlen (read)))
    return FALSE;
  return write == NULL || transport_wire_write (w, write, strlen (write));
}

static void
test_wire_verdicts (void **state)
{
  (void) state;
  static const struct {
    const char *name, *after_220;   /* bytes read with the 220 */
    gsize unread;                   /* bytes waiting on the socket */
    gboolean ok;
  } inject[] = {
    { "clean", "", 0, TRUE },
    { "injected replies", "250 ok\r\n354 go\r\n", 0, FALSE },
    { "part of a line", "2", 0, FALSE },
    { "one blank line", "\r\n", 0, FALSE },
    { "bytes on the socket", "", 1, FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (inject); i++)
    {
      Wire w = { 0 };
      g_autofree char *reply = g_strconcat ("220 go ahead\r\n",
                                            inject[i].after_220, NULL);
      assert_true (wire_says (&w, "220-relay.example.org\r\n220 hi\r\n",
                              "EHLO client.example.org\r\n"));
      assert_true (wire_says (&w, "250-relay\r\n250 STARTTLS\r\n",
                              "STARTTLS\r\n"));
      assert_true (wire_says (&w, reply, NULL));
      if (transport_wire_tls_start (&w, inject[i].unread) != inject[i].ok)
        fail_msg ("%s: verdict %d (%s)", inject[i].name, !inject[i].ok, w.why);
      if (!inject[i].ok)
        assert_non_null (strstr (w.why, "STARTTLS injection"));
      /* TLS 1.3 tickets start "handshakes" later: never judged again. */
      assert_true (transport_wire_tls_start (&w, 100));
    }

  /* Reply caps: 64 lines and 8192 bytes per reply. */
  Wire w = { 0 };
  for (int i = 0; i < TRANSPORT_REPLY_LINES_MAX; i++)
    assert_true (wire_says (&w, "220-drip\r\n", NULL));
  assert_false (wire_says (&w, "220-drip\r\n", NULL));
  assert_non_null (strstr (w.why, "relay reply over 64 lines"));
  Wire w2 = { 0 };
  g_autofree char *long_line = g_strnfill (TRANSPORT_REPLY_BYTES_MAX, 'x');
  assert_true (wire_says (&w2, long_line, NULL));
  assert_false (wire_says (&w2, "x", NULL));
  Wire w3 = { 0 };                /* a final line resets the count */
  for (int i = 0; i < 3 * TRANSPORT_REPLY_LINES_MAX; i++)
    assert_true (wire_says (&w3, "250-x\r\n250 ok\r\n", NULL));

  /* Deadline: no byte in, none out, once it has passed. */
  Wire late = { .deadline = g_get_monotonic_time () - 1 };
  assert_false (wire_says (&late, "250 ok\r\n", NULL));
  assert_non_null (strstr (late.why, "deadline"));
  assert_false (wire_says (&late, NULL, "QUIT\r\n"));

  /* AUTH guard: no MAIL FROM before a 235. */
  Wire auth = { .auth_required = TRUE };
  assert_true (wire_says (&auth, NULL, "AUTH PLAIN AGZvbwBiYXI=\r\n"));
  assert_true (wire_says (&auth, "535 5.7.8 no\r\n", NULL));
  assert_false (wire_says (&auth, NULL, "MAIL FROM:<evisit@example.org>\r\n"));
  assert_non_null (strstr (auth.why, "AUTH refused: 535"));
}

/* A relay that drips its reply, one line every 0.4 s, well inside the
 * 1 s timeout that libESMTP restarts at every read: the session
 * deadline (TRANSPORT_SESSION_TIMEOUTS * timeout = 8 s) ends it, within
 * two more timeouts, and the jobs are deferred.  The old code stayed for
 * as long as the relay dripped. */
static void
test_dripping_relay (void **state)
{
  (void) state;
  static const struct {
    const char *name, *fault;
    TlsMode tls;
  } cases[] = {
    { "drip-greeting", "drip-greeting:0.4", TLS_STARTTLS },
    { "drip-data-tls", "drip-data:0.4", TLS_STARTTLS },
    { "drip-data-clear", "drip-data:0.4", TLS_NONE },
  };
  const guint timeout_ms = 1000;
  const gint64 deadline_ms = (gint64) TRANSPORT_SESSION_TIMEOUTS * timeout_ms;
  g_autofree char *cert = g_build_filename (certs, "server-localhost.pem", NULL);
  g_autofree char *key = g_build_filename (certs, "server-localhost.key", NULL);

  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      const char *tls_args[] = { "--fault", cases[c].fault, "--cert", cert,
                                 "--key", key, NULL };
      const char *clear_args[] = { "--fault", cases[c].fault, NULL };
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) msg = message_bytes ();

      print_message ("case %s\n", cases[c].name);
      Server *s = server_start (cases[c].name, cases[c].tls == TLS_NONE
                                ? clear_args : tls_args);
      Config *cfg = cfg_new (s->port, cases[c].tls, NULL, NULL);
      cfg->smtp_timeout_ms = timeout_ms;
      g_autofree DeliveryJob *jobs = jobs_new (1, msg);
      Transport *t = transport_new (cfg, &error);
      assert_non_null (t);

      gint64 start = g_get_monotonic_time ();
      transport_deliver (t, jobs, 1);
      gint64 ms = (g_get_monotonic_time () - start) / 1000;

      transport_free (t);
      print_message ("%s: deferred after %" G_GINT64_FORMAT " ms\n",
                     cases[c].name, ms);
      assert_all_tempfail (jobs, 1, "SMTP session deadline passed");
      if (ms < deadline_ms - 100 || ms > deadline_ms + 2 * timeout_ms + 1000)
        fail_msg ("%s: ended after %" G_GINT64_FORMAT " ms", cases[c].name, ms);
      g_autofree char *log = server_log (s);
      if (g_str_has_prefix (cases[c].name, "drip-data"))
        assert_true (log_has_command (log, "DATA"));
      assert_int_equal (count_files (s->capture, ".eml"), 0);
      server_stop (s);
      cfg_free (cfg);
    }
}

/* A GResolver that answers after late_delay_ms with late_answer (a
 * comma-separated list of addresses, or NULL for "not found"). */
typedef struct { GResolver parent; } LateResolver;
typedef struct { GResolverClass parent_class; } LateResolverClass;
G_DEFINE_TYPE (LateResolver, late_resolver, G_TYPE_RESOLVER)

static guint late_delay_ms;
static const char *late_answer;
static guint late_lookups;

static GList *
late_lookup (GError **error)
{
  g_atomic_int_inc (&late_lookups);
  g_usleep ((gulong) late_delay_ms * 1000);
  if (late_answer == NULL)
    {
      g_set_error (error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND,
                   "no such host (test resolver)");
      return NULL;
    }
  g_auto (GStrv) parts = g_strsplit (late_answer, ",", -1);
  GList *out = NULL;
  for (gsize i = 0; parts[i] != NULL; i++)
    out = g_list_append (out, g_inet_address_new_from_string (parts[i]));
  return out;
}

static void
late_thread (GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
  GError *error = NULL;
  GList *addrs = late_lookup (&error);

  (void) src;
  (void) data;
  (void) cancel;
  if (addrs == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, addrs,
                           (GDestroyNotify) g_resolver_free_addresses);
}

static GList *
late_by_name (GResolver *r, const char *host, GCancellable *c, GError **e)
{
  (void) r;
  (void) host;
  (void) c;
  return late_lookup (e);
}

static void
late_by_name_async (GResolver *r, const char *host, GCancellable *cancel,
                    GAsyncReadyCallback cb, gpointer data)
{
  GTask *task = g_task_new (r, cancel, cb, data);

  (void) host;
  g_task_set_return_on_cancel (task, TRUE);
  g_task_run_in_thread (task, late_thread);
  g_object_unref (task);
}

static GList *
late_by_name_finish (GResolver *r, GAsyncResult *result, GError **error)
{
  (void) r;
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
late_resolver_init (LateResolver *self)
{
  (void) self;
}

static void
late_resolver_class_init (LateResolverClass *klass)
{
  GResolverClass *rc = G_RESOLVER_CLASS (klass);

  rc->lookup_by_name = late_by_name;
  rc->lookup_by_name_async = late_by_name_async;
  rc->lookup_by_name_finish = late_by_name_finish;
}

typedef struct {
  const char *name;
  guint delay_ms;            /* the resolver's answer comes this late */
  const char *answer;        /* NULL: not found */
  DeliveryOutcome want;
  const char *reason;        /* expected in the reply (TEMPFAIL) */
  gint64 min_ms, max_ms;     /* how long transport_deliver may take */
} DnsCase;

static const DnsCase dns_cases[] = {
  { "slow-but-in-time", 300, "127.0.0.1", DELIVERY_SENT, "250", 250, 1500 },
  { "past-the-timeout", 6000, "127.0.0.1", DELIVERY_TEMPFAIL,
    "DNS lookup of the relay timed out after 2000 ms", 1900, 3000 },
  { "not-found", 0, NULL, DELIVERY_TEMPFAIL,
    "DNS lookup of the relay failed: no such host", 0, 1000 },
  /* tls=none: a name that now resolves off loopback gets no connection */
  { "clear-text-off-loopback", 0, "192.0.2.7", DELIVERY_TEMPFAIL,
    "clear text only to a loopback address", 0, 1000 },
};

/* The relay's name goes through our bounded lookup, and libESMTP gets
 * its answer: relay.example.org exists only in the test resolver. */
static void
test_dns_bound (void **state)
{
  (void) state;
  Server *s = server_start ("dns", NULL);
  g_autoptr (GResolver) old = g_resolver_get_default ();
  g_autoptr (GResolver) late = g_object_new (late_resolver_get_type (), NULL);

  g_resolver_set_default (late);
  for (gsize c = 0; c < G_N_ELEMENTS (dns_cases); c++)
    {
      const DnsCase *dc = &dns_cases[c];
      Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
      guint before = g_atomic_int_get (&late_lookups);

      print_message ("case %s\n", dc->name);
      g_free (cfg->smtp_host);
      cfg->smtp_host = g_strdup ("relay.example.org");
      late_delay_ms = dc->delay_ms;
      late_answer = dc->answer;
      gint64 start = g_get_monotonic_time ();
      g_autofree DeliveryJob *jobs = deliver (cfg, 2);
      gint64 ms = (g_get_monotonic_time () - start) / 1000;

      for (int i = 0; i < 2; i++)
        if (jobs[i].outcome != dc->want || strstr (jobs[i].reply, dc->reason) == NULL)
          fail_msg ("%s job %d: outcome %d '%s'", dc->name, i, jobs[i].outcome,
                    jobs[i].reply);
      if (ms < dc->min_ms || ms > dc->max_ms)
        fail_msg ("%s: took %" G_GINT64_FORMAT " ms", dc->name, ms);
      assert_int_equal (g_atomic_int_get (&late_lookups), before + 1);
      cfg_free (cfg);
    }
  g_resolver_set_default (old);
  assert_int_equal (count_files (s->capture, ".eml"), 2);
  server_stop (s);
}

/* What libESMTP is handed: IPv4 literals, then the name when it has
 * IPv6 addresses (smtp_set_server cannot take an IPv6 literal); an IP
 * literal host without any lookup. */
static void
test_resolve_targets (void **state)
{
  (void) state;
  static const struct {
    const char *name, *host, *answer, *want;
    guint lookups;
  } cases[] = {
    { "ipv4", "relay.example.org", "192.0.2.1,192.0.2.2",
      "192.0.2.1 192.0.2.2", 1 },
    { "dual-stack", "relay.example.org", "2001:db8::1,192.0.2.1",
      "192.0.2.1 relay.example.org", 1 },
    { "ipv6-only", "relay.example.org", "2001:db8::1",
      "relay.example.org", 1 },
    { "at-most-four", "relay.example.org",
      "192.0.2.1,192.0.2.2,192.0.2.3,192.0.2.4,192.0.2.5",
      "192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4", 1 },
    { "ip-literal", "192.0.2.9", "192.0.2.1", "192.0.2.9", 0 },
  };
  g_autoptr (GResolver) old = g_resolver_get_default ();
  g_autoptr (GResolver) late = g_object_new (late_resolver_get_type (), NULL);

  g_resolver_set_default (late);
  late_delay_ms = 0;
  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (GError) error = NULL;
      guint before = g_atomic_int_get (&late_lookups);

      late_answer = cases[c].answer;
      g_autoptr (GPtrArray) got = transport_resolve (cases[c].host, 1000, &error);
      assert_non_null (got);
      g_ptr_array_add (got, NULL);
      g_autofree char *joined = g_strjoinv (" ", (char **) got->pdata);
      if (strcmp (joined, cases[c].want) != 0)
        fail_msg ("%s: got '%s'", cases[c].name, joined);
      assert_int_equal (g_atomic_int_get (&late_lookups) - before,
                        cases[c].lookups);
    }
  g_resolver_set_default (old);
}

static gboolean
signal_blocked (int sig)
{
  sigset_t set;

  pthread_sigmask (SIG_BLOCK, NULL, &set);
  return sigismember (&set, sig) == 1;
}

/* A relay that black-holes SYNs: a listener with listen(0) whose one
 * queue slot is taken, so the kernel drops every further SYN and a
 * blocking connect() would wait for minutes.  The watch ends it. */
static void
test_connect_bound (void **state)
{
  (void) state;
  struct sockaddr_in sa = { .sin_family = AF_INET,
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t sl = sizeof sa;
  int lfd = socket (AF_INET, SOCK_STREAM, 0);
  int filler = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int probe = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

  assert_int_equal (bind (lfd, (struct sockaddr *) &sa, sizeof sa), 0);
  assert_int_equal (getsockname (lfd, (struct sockaddr *) &sa, &sl), 0);
  assert_int_equal (listen (lfd, 0), 0);
  connect (filler, (struct sockaddr *) &sa, sizeof sa);
  struct pollfd pf = { .fd = filler, .events = POLLOUT };
  assert_int_equal (poll (&pf, 1, 2000), 1);       /* it took the slot */
  /* Confirm the black hole before relying on it. */
  connect (probe, (struct sockaddr *) &sa, sizeof sa);
  pf.fd = probe;
  assert_int_equal (poll (&pf, 1, 300), 0);
  close (probe);

  /* The watch must leave the thread's signal mask as it found it. */
  sigset_t block;
  sigemptyset (&block);
  sigaddset (&block, TRANSPORT_WATCH_SIGNAL);
  pthread_sigmask (SIG_BLOCK, &block, NULL);

  Config *cfg = cfg_new (ntohs (sa.sin_port), TLS_STARTTLS, NULL, NULL);
  gint64 start = g_get_monotonic_time ();
  g_autofree DeliveryJob *jobs = deliver (cfg, 2);
  gint64 ms = (g_get_monotonic_time () - start) / 1000;

  assert_all_tempfail (jobs, 2, "connect timed out after 2000 ms");
  if (ms < TIMEOUT_MS - 100 || ms > TIMEOUT_MS + 1000)
    fail_msg ("connect bound took %" G_GINT64_FORMAT " ms", ms);
  assert_true (signal_blocked (TRANSPORT_WATCH_SIGNAL));
  pthread_sigmask (SIG_UNBLOCK, &block, NULL);
  close (filler);
  close (lfd);
  cfg_free (cfg);
}

/* ---------------------------------------------------------------- */
/* file transport, safe text, set-up errors                          */

static void
test_file_transport (void **state)
{
  (void) state;
  Config *cfg = g_new0 (Config, 1);
  g_autoptr (GError) error = NULL;

  cfg->transport = TRANSPORT_FILE;
  cfg->outbox_dir = g_build_filename (tmp_root, "outbox", "new", NULL);
  g_assert_cmpint (g_mkdir_with_parents (cfg->outbox_dir, 0700), ==, 0);
  g_rmdir (cfg->outbox_dir);                      /* transport_new makes it */
  Transport *t = transport_new (cfg, &error);
  assert_non_null (t);
  g_autoptr (GBytes) msg = message_bytes ();
  DeliveryJob *jobs = jobs_new (3, msg);
  jobs[2].tag = "../escape";
  transport_deliver (t, jobs, 3);

  for (int i = 0; i < 2; i++)
    {
      gsize len;
      g_autofree char *eml_path = g_strdup_printf ("%s/%s.eml", cfg->outbox_dir, jobs[i].tag);
      g_autofree char *env_path = g_strdup_printf ("%s/%s.envelope", cfg->outbox_dir, jobs[i].tag);
      g_autofree char *eml = read_file (eml_path, &len);
      g_autofree char *env = read_file (env_path, NULL);
      g_autofree char *want = g_strdup_printf ("MAIL FROM:<%s>\nRCPT TO:<%s>\n",
                                               FROM, jobs[i].recipient);
      struct stat st;

      assert_int_equal (jobs[i].outcome, DELIVERY_SENT);
      assert_int_equal (len, sizeof MESSAGE - 1);
      assert_memory_equal (eml, MESSAGE, len);
      assert_string_equal (env, want);
      assert_int_equal (stat (eml_path, &st), 0);
      assert_int_equal (st.st_mode & 0777, 0640);
    }
  assert_int_equal (jobs[2].outcome, DELIVERY_PERMFAIL);
  assert_int_equal (count_files (cfg->outbox_dir, NULL), 4);  /* no temp left */
  struct stat st;
  assert_int_equal (stat (cfg->outbox_dir, &st), 0);
  assert_int_equal (st.st_mode & 0777, 0750);
  transport_free (t);
  g_free (jobs);
  cfg_free (cfg);
}

/* ---------------------------------------------------------------- */
/* TransportDone: each outcome as soon as it is final, once           */

typedef struct {
  const char *capture;        /* folder whose files are counted, or NULL */
  const char *suffix;
  guint calls;
  guint index[8];             /* the job each call was about */
  int outcome[8];             /* its outcome then */
  guint files[8];             /* files with suffix in capture then */
  guint sleep_ms;             /* time the first call takes */
} DoneLog;

static void
done_log (DeliveryJob *jobs, guint index, gpointer data)
{
  DoneLog *d = data;

  if (d->calls < G_N_ELEMENTS (d->index))
    {
      d->index[d->calls] = index;
      d->outcome[d->calls] = jobs[index].outcome;
      d->files[d->calls] = d->capture != NULL
        ? count_files (d->capture, d->suffix) : 0;
    }
  if (d->calls++ == 0 && d->sleep_ms > 0)
    g_usleep (d->sleep_ms * 1000);
}

static void
deliver_each (Config *cfg, DeliveryJob *jobs, guint n, DoneLog *log)
{
  g_autoptr (GError) error = NULL;
  Transport *t = transport_new (cfg, &error);

  if (t == NULL)
    fail_msg ("transport_new: %s", error->message);
  transport_deliver_each (t, jobs, n, done_log, log);
  transport_free (t);
}

/* SMTP: each transaction is reported right after the relay answered its
 * data, before the next one begins (the capture holds exactly the
 * messages up to it), not at the batch's end. */
static void
test_done_per_transaction (void **state)
{
  (void) state;
  Server *s = server_start ("done-each", NULL);
  Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
  g_autoptr (GBytes) msg = message_bytes ();
  g_autofree DeliveryJob *jobs = jobs_new (3, msg);
  DoneLog log = { .capture = s->capture, .suffix = ".json" };

  deliver_each (cfg, jobs, 3, &log);
  assert_int_equal (log.calls, 3);
  for (guint k = 0; k < 3; k++)
    {
      assert_int_equal (log.index[k], k);
      assert_int_equal (log.outcome[k], DELIVERY_SENT);
      assert_int_equal (jobs[k].outcome, DELIVERY_SENT);
      if (log.files[k] != k + 1)
        fail_msg ("job %u reported with %u message(s) at the relay", k,
                  log.files[k]);
    }
  server_stop (s);
  cfg_free (cfg);
}

/* A relay that takes one message per connection (421 to the next MAIL,
 * then the job after it goes over a new session) and a job refused
 * before any session: each job is reported exactly once, with its final
 * outcome, whichever session ends it. */
static void
test_done_once_each (void **state)
{
  (void) state;
  const char *args[] = { "--fault", "per-connection:1", NULL };
  Server *s = server_start ("done-once", args);
  Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
  g_autoptr (GBytes) msg = message_bytes ();
  g_autofree DeliveryJob *jobs = jobs_new (4, msg);
  DoneLog log = { 0 };
  guint seen[4] = { 0 };

  jobs[3].recipient = "bad>@example.com";   /* refused before any session */
  deliver_each (cfg, jobs, 4, &log);
  assert_int_equal (log.calls, 4);
  for (guint k = 0; k < 4; k++)
    {
      seen[log.index[k]]++;
      assert_int_equal (log.outcome[k], jobs[log.index[k]].outcome);
    }
  for (guint i = 0; i < 4; i++)
    assert_int_equal (seen[i], 1);
  if (jobs[0].outcome != DELIVERY_SENT || jobs[1].outcome != DELIVERY_TEMPFAIL
      || jobs[1].smtp_code != 421 || jobs[2].outcome != DELIVERY_SENT)
    fail_msg ("outcomes %d %d (%s) %d", jobs[0].outcome, jobs[1].outcome,
              jobs[1].reply, jobs[2].outcome);
  assert_int_equal (jobs[3].outcome, DELIVERY_PERMFAIL);
  assert_int_equal (count_files (s->capture, ".json"), 2);
  server_stop (s);
  cfg_free (cfg);
}

/* The time the caller spends in TransportDone is not the relay's: its
 * first call outlasts the session's deadline (8 x 400 ms), and every
 * transaction still goes through. */
static void
test_done_time_not_the_relays (void **state)
{
  (void) state;
  Server *s = server_start ("done-slow", NULL);
  Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
  g_autoptr (GBytes) msg = message_bytes ();
  g_autofree DeliveryJob *jobs = jobs_new (3, msg);
  DoneLog log = { .sleep_ms = 3400 };

  cfg->smtp_timeout_ms = 400;
  g_assert_cmpuint (log.sleep_ms, >,
                    TRANSPORT_SESSION_TIMEOUTS * cfg->smtp_timeout_ms);
  deliver_each (cfg, jobs, 3, &log);
  assert_int_equal (log.calls, 3);
  for (guint i = 0; i < 3; i++)
    if (jobs[i].outcome != DELIVERY_SENT)
      fail_msg ("job %u: outcome %d reply '%s'", i, jobs[i].outcome,
                jobs[i].reply);
  assert_int_equal (count_files (s->capture, ".json"), 3);
  server_stop (s);
  cfg_free (cfg);
}

/* A relay that answers every message, slowly but steadily (0.25 s of a
 * 0.6 s timeout): 24 of them outlast the session's first deadline
 * (8 x 0.6 s), and each answered one earns another timeout, so the
 * session is not cut in the middle of the batch (which would defer,
 * and later send again, the message the relay was taking). */
static void
test_steady_relay_not_cut (void **state)
{
  (void) state;
  const char *args[] = { "--fault", "stall-data:0.25", NULL };
  Server *s = server_start ("steady", args);
  Config *cfg = cfg_new (s->port, TLS_NONE, NULL, NULL);
  g_autoptr (GBytes) msg = message_bytes ();
  g_autoptr (GError) error = NULL;
  enum { N = 24 };
  DeliveryJob jobs[N] = { 0 };

  cfg->smtp_timeout_ms = 600;
  g_assert_cmpuint (N * 250, >, TRANSPORT_SESSION_TIMEOUTS * cfg->smtp_timeout_ms);
  for (guint i = 0; i < N; i++)
    {
      jobs[i].recipient = "a@example.com";
      jobs[i].envelope_from = FROM;
      jobs[i].message = msg;
      jobs[i].tag = "inv1.0";
    }
  Transport *t = transport_new (cfg, &error);
  assert_non_null (t);
  transport_deliver (t, jobs, N);
  transport_free (t);
  for (guint i = 0; i < N; i++)
    if (jobs[i].outcome != DELIVERY_SENT)
      fail_msg ("job %u: outcome %d reply '%s'", i, jobs[i].outcome,
                jobs[i].reply);
  assert_int_equal (count_files (s->capture, ".json"), N);
  server_stop (s);
  cfg_free (cfg);
}

/* File transport: each job is reported once its files are in place. */
static void
test_done_file (void **state)
{
  (void) state;
  Config *cfg = g_new0 (Config, 1);
  g_autoptr (GBytes) msg = message_bytes ();
  g_autofree DeliveryJob *jobs = jobs_new (3, msg);

  cfg->transport = TRANSPORT_FILE;
  cfg->outbox_dir = g_build_filename (tmp_root, "outbox-done", NULL);
  DoneLog log = { .capture = cfg->outbox_dir, .suffix = ".envelope" };
  deliver_each (cfg, jobs, 3, &log);
  assert_int_equal (log.calls, 3);
  for (guint k = 0; k < 3; k++)
    {
      assert_int_equal (log.index[k], k);
      assert_int_equal (log.outcome[k], DELIVERY_SENT);
      assert_int_equal (log.files[k], k + 1);
    }
  cfg_free (cfg);
}

static void
test_safe_text (void **state)
{
  (void) state;
  static const struct {
    const char *name, *in;
    gsize max;
    const char *want;
  } cases[] = {
    { "plain", "250 OK queued\r\n", 64, "250 OK queued" },
    { "controls", "550 \x1b[31mred\x07\x7f\xff", 64, "550 ?[31mred???" },
    { "newlines-folded", "550 a\r\n550 b\r\n", 64, "550 a 550 b" },
    { "cut", "0123456789", 5, "0123" },
    { "empty", "", 8, "" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char out[64];
      transport_safe_text (out, cases[i].max, cases[i].in, strlen (cases[i].in));
      if (strcmp (out, cases[i].want) != 0)
        fail_msg ("%s: got '%s'", cases[i].name, out);
    }
}

static void
test_setup_errors (void **state)
{
  (void) state;
  Config *cfg = cfg_new (25, TLS_STARTTLS, NULL, NULL);
  g_autoptr (GError) error = NULL;

  g_free (cfg->smtp_ca_file);
  cfg->smtp_ca_file = g_build_filename (tmp_root, "missing-ca.pem", NULL);
  assert_null (transport_new (cfg, &error));
  assert_true (g_error_matches (error, TRANSPORT_ERROR, TRANSPORT_ERROR_TLS));
  g_clear_error (&error);

  g_free (cfg->smtp_ca_file);
  cfg->smtp_ca_file = g_build_filename (certs, "ca.pem", NULL);
  g_free (cfg->smtp_host);
  cfg->smtp_host = g_strdup ("::1");
  assert_null (transport_new (cfg, &error));
  assert_true (g_error_matches (error, TRANSPORT_ERROR, TRANSPORT_ERROR_CONFIG));
  g_clear_error (&error);

  g_free (cfg->smtp_host);
  cfg->smtp_host = g_strdup ("localhost");
  g_free (cfg->smtp_helo_name);
  cfg->smtp_helo_name = g_strdup ("evil\r\nMAIL FROM:<x@example.com>");
  assert_null (transport_new (cfg, &error));
  assert_true (g_error_matches (error, TRANSPORT_ERROR, TRANSPORT_ERROR_CONFIG));
  cfg_free (cfg);
}

/* ---------------------------------------------------------------- */

static void
skip_without_aiosmtpd (void)
{
  g_autofree char *err = NULL;
  int status = -1;
  const char *argv[] = { PYTHON, "-c", "import aiosmtpd", NULL };

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                     NULL, NULL, NULL, &err, &status, NULL)
      || !g_spawn_check_wait_status (status, NULL))
    {
      fprintf (stderr, "SKIP: %s cannot import aiosmtpd (install "
               "python3-aiosmtpd): %s\n", PYTHON, err ? err : "not found");
      exit (77);
    }
}

static int
group_setup (void **state)
{
  (void) state;
  g_autofree char *script = NULL;
  int status = -1;

  tmp_root = g_dir_make_tmp ("test_transport-XXXXXX", NULL);
  certs = g_build_filename (tmp_root, "certs", NULL);
  script = g_build_filename (srcdir, "tests", "system", "mkcerts.sh", NULL);
  const char *argv[] = { "/bin/sh", script, certs, NULL };
  if (tmp_root == NULL
      || !g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL,
                        NULL, NULL, NULL, &status, NULL)
      || !g_spawn_check_wait_status (status, NULL))
    return -1;
  return 0;
}

static int
group_teardown (void **state)
{
  (void) state;
  const char *argv[] = { "rm", "-rf", tmp_root, NULL };

  if (g_getenv ("INVITEMAIL_TEST_KEEP") != NULL)
    fprintf (stderr, "kept %s\n", tmp_root);
  else if (tmp_root != NULL)
    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                  NULL, NULL, NULL, NULL);
  g_free (tmp_root);
  g_free (certs);
  return 0;
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_safe_text),
    cmocka_unit_test (test_wire_verdicts),
    cmocka_unit_test (test_setup_errors),
    cmocka_unit_test (test_file_transport),
    cmocka_unit_test (test_done_file),
    cmocka_unit_test (test_done_per_transaction),
    cmocka_unit_test (test_done_once_each),
    cmocka_unit_test (test_done_time_not_the_relays),
    cmocka_unit_test (test_steady_relay_not_cut),
    cmocka_unit_test (test_starttls_auth_three_jobs),
    cmocka_unit_test (test_starttls_ip_literal),
    cmocka_unit_test (test_session_refused),
    cmocka_unit_test (test_connection_refused),
    cmocka_unit_test (test_replies),
    cmocka_unit_test (test_plaintext_loopback),
    cmocka_unit_test (test_hostile_reply),
    cmocka_unit_test (test_invalid_address),
    cmocka_unit_test (test_prohibited_headers),
    cmocka_unit_test (test_tls13_sessions),
    cmocka_unit_test (test_tls12_no_barrier),
    cmocka_unit_test (test_dripping_relay),
    cmocka_unit_test (test_resolve_targets),
    cmocka_unit_test (test_dns_bound),
    cmocka_unit_test (test_connect_bound),
  };
  int failed;

  srcdir = g_strdup (g_getenv ("srcdir") ? g_getenv ("srcdir") : ".");
  skip_without_aiosmtpd ();
  failed = cmocka_run_group_tests (tests, group_setup, group_teardown);
  g_free (srcdir);
  return failed;
}
