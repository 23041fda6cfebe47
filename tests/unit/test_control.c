/*
 * test_control.c - the Unix socket (control.h) for real: a socket in a
 * temporary folder, the real service with the shipped templates, a
 * queue and an audit file; the test is the client and turns the main
 * context.  Several requests on one connection, the socket file's mode,
 * a stale file replaced but a live daemon's socket never stolen, peer
 * credentials (another uid, when run as root), framing limits answered
 * and the connection closed, the per-uid connection cap, the client
 * timeout, a peer that never reads its answers, and a stop.
 *
 * Only the public headers are used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "audit_read.h"
#include "commit.h"
#include "config.h"
#include "control.h"
#include "mime.h"
#include "queue.h"
#include "render.h"
#include "request.h"
#include "service.h"

#define NOBODY 65534

typedef struct {
  TestDaemon *d;
  char *socket;
  Service *service;
  Control *control;
} Fixture;

static int
setup (void **state)
{
  Fixture *f = g_new0 (Fixture, 1);
  g_autofree char *invite = testutil_invite_conf ();
  g_autofree char *conf = g_strconcat ("[daemon]\nsocket = run/invitemail.sock\nsocket_mode = 0660\n"
                                       "socket_group = nogroup\nclient_timeout = 2\n", invite, NULL);
  g_autoptr (GError) error = NULL;

  f->d = testutil_daemon_new ("imctl-XXXXXX", conf);
  /* Another uid must reach the socket in the peer test. */
  assert_int_equal (chmod (f->d->dir, 0755), 0);
  f->socket = g_build_filename (f->d->dir, "run", "invitemail.sock", NULL);
  assert_string_equal (f->d->cfg->socket, f->socket);
  testutil_daemon_load_templates (f->d);
  testutil_daemon_start_committer (f->d);
  f->service = service_new (f->d->cfg, f->d->templates, f->d->queue, f->d->committer);
  f->control = control_new (f->d->cfg, f->service, &error);
  assert_non_null (f->control);
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  Fixture *f = *state;

  control_free (f->control);
  service_free (f->service);
  testutil_daemon_free (f->d);
  g_free (f->socket);
  g_free (f);
  return 0;
}

static int
client (Fixture *f)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  assert_true (fd >= 0);
  g_strlcpy (sa.sun_path, f->socket, sizeof sa.sun_path);
  assert_int_equal (connect (fd, (struct sockaddr *) &sa, sizeof sa), 0);
  return fd;
}

/* Writes everything, turning the main context while the socket is full. */
static void
say (int fd, const char *data, gsize len)
{
  gsize off = 0;
  gint64 until = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (off < len && g_get_monotonic_time () < until)
    {
      ssize_t n = send (fd, data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0)
        off += (gsize) n;
      else if (n < 0 && errno != EAGAIN && errno != EINTR)
        break;   /* the daemon closed: what was sent is what counts */
      g_main_context_iteration (NULL, FALSE);
    }
}

static void
say_str (int fd, const char *s)
{
  say (fd, s, strlen (s));
}

typedef struct {
  GString *data;
  gboolean eof;
} Heard;

/*
 * Turns the main context and reads until `frames` whole answers came,
 * the daemon closed, or ms passed.  With frames == 0 it waits for the
 * close (or ms).
 */
static Heard
hear (int fd, guint frames, guint ms)
{
  Heard h = { g_string_new (NULL), FALSE };
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < until)
    {
      char buf[4096];
      ssize_t n = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
      guint got = 0;
      gsize off = 0, len = 0;
      Refusal why;

      if (n > 0)
        g_string_append_len (h.data, buf, n);
      else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        {
          h.eof = TRUE;
          break;
        }
      while (off < h.data->len
             && answer_frame (h.data->str + off, h.data->len - off, &len, &why)
                == FRAME_COMPLETE)
        {
          got++;
          off += len;
        }
      if (frames > 0 && got >= frames)
        break;
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
  return h;
}

/* The value of name in the first answer of h (transfer full). */
static char *
answer_value (const Heard *h, const char *name)
{
  g_autoptr (RawRequest) ans = NULL;
  gsize len = 0;
  Refusal why;

  if (answer_frame (h->data->str, h->data->len, &len, &why) != FRAME_COMPLETE
      || !request_parse_answer (h->data->str, len, &ans, &why))
    return NULL;
  return g_strdup (raw_request_get (ans, name));
}

static void
assert_refused (const Heard *h, const char *code)
{
  g_autofree char *status = answer_value (h, "status");
  g_autofree char *error = answer_value (h, "error");

  assert_non_null (status);
  assert_string_equal (status, "rejected");
  assert_non_null (error);
  assert_string_equal (error, code);
}

typedef struct {
  const char *code;
  gint64 uid;
  int n;
} RefusalScan;

static gboolean
scan_refusal (const AuditRow *row, gpointer data)
{
  RefusalScan *s = data;

  if (g_strcmp0 (row->error_code, s->code) == 0 && row->peer_uid == s->uid)
    s->n++;
  return TRUE;
}

/* Rejected rows with this code from this uid; waits for the commit. */
static int
audited_refusals (Fixture *f, const char *code, gint64 uid)
{
  AuditFilter filter = { .event = "rejected" };
  RefusalScan s = { code, uid, 0 };
  gint64 until = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (committer_pending (f->d->committer) > 0 && g_get_monotonic_time () < until)
    testutil_spin (5);
  assert_true (audit_read (f->d->cfg->audit_db, &filter, scan_refusal, &s, NULL));
  return s.n;
}

static void
heard_clear (Heard *h)
{
  g_string_free (h->data, TRUE);
}

/* Several requests in turn on one connection, sent in one write: each
 * answered, in order, and the connection stays open. */
static void
test_requests_in_turn (void **state)
{
  Fixture *f = *state;
  int fd = client (f);
  Heard h;

  say_str (fd, "request=ping\n\nrequest=ping\n\nrequest=status\nid=0000000000000000zzzz\n\n");
  h = hear (fd, 3, 5000);
  assert_false (h.eof);
  assert_string_equal (h.data->str,
                       "status=ok\n\nstatus=ok\n\n"
                       "status=rejected\nerror=not_found\nfield=id\n"
                       "message=no invite with that id\n\n");
  heard_clear (&h);
  h = hear (fd, 0, 200);
  assert_false (h.eof);
  assert_int_equal (h.data->len, 0);
  heard_clear (&h);
  close (fd);
}

/* The socket has the configured mode from the start and goes away with
 * control_free. */
static void
test_socket_file (void **state)
{
  Fixture *f = *state;
  struct stat st;

  assert_int_equal (lstat (f->socket, &st), 0);
  assert_true (S_ISSOCK (st.st_mode));
  assert_int_equal (st.st_mode & 07777, 0660);
  assert_int_equal (st.st_gid, NOBODY);   /* socket_group */
  control_free (f->control);
  f->control = NULL;
  assert_int_equal (lstat (f->socket, &st), -1);
  assert_int_equal (errno, ENOENT);
}

/* A second daemon never steals a live socket; a stale socket file left
 * by a crash is replaced; anything else at the path is left alone. */
static void
test_socket_path_owner (void **state)
{
  Fixture *f = *state;
  g_autoptr (GError) error = NULL;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  Control *second;
  int fd, live;
  Heard h;

  second = control_new (f->d->cfg, f->service, &error);
  assert_null (second);
  assert_true (g_error_matches (error, CONTROL_ERROR, CONTROL_ERROR_IN_USE));
  g_clear_error (&error);
  /* The first one still works. */
  live = client (f);
  say_str (live, "request=ping\n\n");
  h = hear (live, 1, 5000);
  assert_string_equal (h.data->str, "status=ok\n\n");
  heard_clear (&h);
  close (live);

  control_free (f->control);
  f->control = NULL;
  /* A stale socket: bound, then its process died. */
  g_strlcpy (sa.sun_path, f->socket, sizeof sa.sun_path);
  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  assert_int_equal (bind (fd, (struct sockaddr *) &sa, sizeof sa), 0);
  close (fd);
  f->control = control_new (f->d->cfg, f->service, &error);
  assert_non_null (f->control);
  live = client (f);
  say_str (live, "request=ping\n\n");
  h = hear (live, 1, 5000);
  assert_string_equal (h.data->str, "status=ok\n\n");
  heard_clear (&h);
  close (live);

  control_free (f->control);
  f->control = NULL;
  assert_true (g_file_set_contents (f->socket, "not a socket", -1, NULL));
  second = control_new (f->d->cfg, f->service, &error);
  assert_null (second);
  assert_true (g_error_matches (error, CONTROL_ERROR, CONTROL_ERROR_BIND));
  assert_true (g_file_test (f->socket, G_FILE_TEST_IS_REGULAR));
}

typedef struct {
  const char *name;
  GString *(*make) (void);
  const char *code;
} FramingCase;

static GString *
long_line (void)
{
  GString *s = g_string_new ("booking=");

  while (s->len <= REQUEST_MAX_LINE + 16)
    g_string_append_c (s, 'a');
  return s;           /* no LF: refused as soon as the limit is passed */
}

static GString *
big_request (void)
{
  GString *s = g_string_new ("request=ping\n");

  while (s->len <= REQUEST_MAX_BYTES + 16)
    {
      g_string_append (s, "booking=");
      for (int i = 0; i < 1000; i++)
        g_string_append_c (s, 'b');
      g_string_append_c (s, '\n');
    }
  return s;
}

static GString *
many_lines (void)
{
  GString *s = g_string_new (NULL);

  for (int i = 0; i <= REQUEST_MAX_ATTRS + 1; i++)
    g_string_append (s, "bcc=guest@example.com\n");
  return s;
}

static GString *
crlf (void)
{
  return g_string_new ("request=ping\r\n\r\n");
}

static GString *
nul_byte (void)
{
  GString *s = g_string_new ("request=ping");

  g_string_append_c (s, '\0');
  g_string_append (s, "\n\n");
  return s;
}

static GString *
no_equals (void)
{
  return g_string_new ("request ping\n\n");
}

static const FramingCase framing_cases[] = {
  { "line over the limit", long_line, "line_too_long" },
  { "request over the limit", big_request, "request_too_large" },
  { "too many lines", many_lines, "too_many_attributes" },
  { "CRLF", crlf, "malformed" },
  { "NUL", nul_byte, "malformed" },
  { "no '='", no_equals, "malformed" },
};

/* Framing errors cannot be resynchronised: answered with their code,
 * audited with the peer's uid, then the connection is closed; the
 * daemon goes on answering others. */
static void
test_framing_limits (void **state)
{
  Fixture *f = *state;

  for (gsize i = 0; i < G_N_ELEMENTS (framing_cases); i++)
    {
      const FramingCase *c = &framing_cases[i];
      g_autoptr (GString) bytes = c->make ();
      int before = audited_refusals (f, c->code, getuid ());
      int fd = client (f);
      Heard h;

      say (fd, bytes->str, bytes->len);
      h = hear (fd, 0, 5000);
      if (!h.eof || strstr (h.data->str, c->code) == NULL)
        fail_msg ("%s: %s, answer \"%s\"", c->name, h.eof ? "closed" : "still open",
                  h.data->str);
      assert_refused (&h, c->code);
      assert_int_equal (audited_refusals (f, c->code, getuid ()), before + 1);
      heard_clear (&h);
      close (fd);
    }
  /* still serving */
  {
    int fd = client (f);
    Heard h;

    say_str (fd, "request=ping\n\n");
    h = hear (fd, 1, 5000);
    assert_string_equal (h.data->str, "status=ok\n\n");
    heard_clear (&h);
    close (fd);
  }
}

/* In a child as `nobody` (in the socket's group, so it may connect):
 * connects, asks ping, writes what it heard
 * (and "EOF" when the daemon closed) to out_fd. */
static void G_GNUC_NORETURN
child_as_nobody (const char *path, int out_fd)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  char buf[4096];
  gsize got = 0;
  int fd;

  if (setgroups (0, NULL) != 0 || setgid (NOBODY) != 0 || setuid (NOBODY) != 0)
    _exit (2);
  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  g_strlcpy (sa.sun_path, path, sizeof sa.sun_path);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) != 0)
    _exit (3);
  if (write (fd, "request=ping\n\n", 14) != 14)
    _exit (4);
  for (;;)
    {
      struct pollfd p = { fd, POLLIN, 0 };
      ssize_t n;

      if (poll (&p, 1, 5000) != 1)
        _exit (5);
      n = read (fd, buf + got, sizeof buf - 1 - got);
      /* A reset after the answer (the daemon closed without reading
       * our request) ends it like a close. */
      if (n < 0 && errno == ECONNRESET && got > 0)
        break;
      if (n < 0)
        _exit (6);
      if (n == 0)
        break;
      got += (gsize) n;
      if (got >= sizeof buf - 1)
        _exit (7);
    }
  if (write (out_fd, buf, got) != (ssize_t) got || write (out_fd, "EOF", 3) != 3)
    _exit (8);
  _exit (0);
}

/* Another uid that is not allowed is refused before any request is
 * read: not_authorized, the connection closed, audited with its uid. */
static void
test_peer_not_allowed (void **state)
{
  Fixture *f = *state;
  int out[2];
  pid_t pid;
  int status = 0;
  gint64 until = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  g_autoptr (GString) heard = g_string_new (NULL);
  char buf[4096];
  ssize_t n;

  if (getuid () != 0)
    {
      skip ();   /* needs root to be another uid; reported as skipped */
      return;
    }
  assert_int_equal (pipe (out), 0);
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      close (out[0]);
      child_as_nobody (f->socket, out[1]);
    }
  close (out[1]);
  while (waitpid (pid, &status, WNOHANG) == 0 && g_get_monotonic_time () < until)
    testutil_spin (5);
  assert_true (WIFEXITED (status));
  assert_int_equal (WEXITSTATUS (status), 0);
  while ((n = read (out[0], buf, sizeof buf)) > 0)
    g_string_append_len (heard, buf, n);
  close (out[0]);
  assert_true (g_str_has_prefix (heard->str, "status=rejected\nerror=not_authorized\n"));
  assert_true (g_str_has_suffix (heard->str, "\n\nEOF"));
  assert_int_equal (audited_refusals (f, "not_authorized", NOBODY), 1);
  assert_int_equal (audited_refusals (f, "not_authorized", getuid ()), 0);
}

/* CONTROL_MAX_PER_UID connections from one uid; the next is answered
 * busy and closed; once one closes, a new one is served. */
static void
test_per_uid_cap (void **state)
{
  Fixture *f = *state;
  int fds[CONTROL_MAX_PER_UID];
  int extra;
  Heard h;

  for (int i = 0; i < CONTROL_MAX_PER_UID; i++)
    {
      fds[i] = client (f);
      testutil_spin (2);
    }
  /* All of them are served. */
  say_str (fds[CONTROL_MAX_PER_UID - 1], "request=ping\n\n");
  h = hear (fds[CONTROL_MAX_PER_UID - 1], 1, 5000);
  assert_string_equal (h.data->str, "status=ok\n\n");
  heard_clear (&h);

  extra = client (f);
  h = hear (extra, 0, 5000);
  assert_true (h.eof);
  assert_refused (&h, "busy");
  heard_clear (&h);
  close (extra);
  assert_int_equal (audited_refusals (f, "busy", getuid ()), 1);

  close (fds[0]);
  testutil_spin (50);
  extra = client (f);
  say_str (extra, "request=ping\n\n");
  h = hear (extra, 1, 5000);
  assert_string_equal (h.data->str, "status=ok\n\n");
  heard_clear (&h);
  close (extra);
  for (int i = 1; i < CONTROL_MAX_PER_UID; i++)
    close (fds[i]);
}

/* client_timeout (2 s here; GLib's second timers fire up to a second
 * early): a started request is answered `timeout` and closed; an idle
 * connection is closed without a word; neither within the first
 * second. */
static void
test_client_timeout (void **state)
{
  Fixture *f = *state;
  int started = client (f);
  int idle = client (f);
  gint64 t0 = g_get_monotonic_time ();
  Heard h;

  say_str (started, "request=ping\n");
  h = hear (started, 0, 6000);
  assert_true (h.eof);
  assert_refused (&h, "timeout");
  assert_true (g_get_monotonic_time () - t0 >= 900 * 1000);
  heard_clear (&h);

  h = hear (idle, 0, 6000);
  assert_true (h.eof);
  assert_int_equal (h.data->len, 0);
  heard_clear (&h);
  close (started);
  close (idle);
  assert_int_equal (audited_refusals (f, "timeout", getuid ()), 1);
}

/* A peer that asks and never reads: once CONTROL_MAX_PENDING_OUT bytes
 * of answers wait for it, no further request is read, and the
 * connection is dropped; the daemon does not buffer without bound. */
static void
test_reader_that_never_reads (void **state)
{
  Fixture *f = *state;
  static const char preview[] =
    "request=preview\nlink=https://meet.example.org/evisit/room-1\n"
    "bcc=tolk@example.com\n\n";
  g_autoptr (GString) one = g_string_new (NULL);
  g_autoptr (GString) all = g_string_new (NULL);
  int fd = client (f);
  gsize answer_len = 0, off = 0, n_requests;
  gint64 until;
  gboolean dropped = FALSE;
  Heard h;

  /* How big one answer is. */
  say_str (fd, preview);
  h = hear (fd, 1, 5000);
  answer_len = h.data->len;
  assert_true (answer_len > 1000);
  heard_clear (&h);

  /* Twice what the cap allows, and more than the socket buffers hold. */
  n_requests = MAX (2 * CONTROL_MAX_PENDING_OUT / answer_len,
                    (gsize) (2 * 1024 * 1024) / (sizeof preview - 1));
  for (gsize i = 0; i < n_requests; i++)
    g_string_append (all, preview);
  until = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (!dropped && g_get_monotonic_time () < until)
    {
      ssize_t n = off < all->len
        ? send (fd, all->str + off, all->len - off, MSG_DONTWAIT | MSG_NOSIGNAL)
        : 0;

      if (n > 0)
        off += (gsize) n;
      else if (n < 0 && errno != EAGAIN && errno != EINTR)
        dropped = TRUE;   /* EPIPE / ECONNRESET: the daemon closed */
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
  assert_true (dropped);
  /* It stopped reading well before the end of what was sent. */
  assert_true (off < all->len);
  close (fd);
}

/* A stop: no new connection is served; idle ones are closed. */
static void
test_stop (void **state)
{
  Fixture *f = *state;
  int idle = client (f);
  int late;
  Heard h;

  testutil_spin (20);
  control_stop_accepting (f->control);
  late = client (f);             /* the kernel's backlog takes it ... */
  say_str (late, "request=ping\n\n");
  h = hear (late, 1, 300);       /* ... but nobody answers */
  assert_int_equal (h.data->len, 0);
  heard_clear (&h);
  assert_int_equal (control_drain (f->control), 0);
  h = hear (idle, 0, 2000);
  assert_true (h.eof);
  assert_int_equal (h.data->len, 0);
  heard_clear (&h);
  close (idle);
  close (late);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_requests_in_turn, setup, teardown),
    cmocka_unit_test_setup_teardown (test_socket_file, setup, teardown),
    cmocka_unit_test_setup_teardown (test_socket_path_owner, setup, teardown),
    cmocka_unit_test_setup_teardown (test_framing_limits, setup, teardown),
    cmocka_unit_test_setup_teardown (test_peer_not_allowed, setup, teardown),
    cmocka_unit_test_setup_teardown (test_per_uid_cap, setup, teardown),
    cmocka_unit_test_setup_teardown (test_client_timeout, setup, teardown),
    cmocka_unit_test_setup_teardown (test_reader_that_never_reads, setup, teardown),
    cmocka_unit_test_setup_teardown (test_stop, setup, teardown),
  };

  mime_init ();   /* as invitemaild does before anything else */
  return cmocka_run_group_tests (tests, NULL, NULL);
}
