/*
 * test_notify.c - notify.c against a fake service manager: a datagram
 * socket in a temporary folder (or the abstract namespace) standing in
 * for $NOTIFY_SOCKET, the watchdog variables, and listening sockets
 * placed on fd 3 and 4 as socket activation does.
 *
 * Built twice by make check: against libsystemd (when configure found
 * it) and with NOTIFY_FORCE_FALLBACK, so both implementations of the
 * protocols are held to the same expectations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "notify.h"

typedef struct {
  char *dir;
  char *path;
  int fd;                   /* the fake manager's datagram socket */
} Manager;

static int
manager_setup (void **state)
{
  Manager *m = g_new0 (Manager, 1);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };

  m->dir = g_dir_make_tmp ("test-notify-XXXXXX", NULL);
  assert_non_null (m->dir);
  m->path = g_build_filename (m->dir, "notify", NULL);
  assert_true (strlen (m->path) < sizeof sa.sun_path);
  strcpy (sa.sun_path, m->path);
  m->fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  assert_true (m->fd >= 0);
  assert_int_equal (bind (m->fd, (struct sockaddr *) &sa, sizeof sa), 0);
  g_setenv ("NOTIFY_SOCKET", m->path, TRUE);
  *state = m;
  return 0;
}

static int
manager_teardown (void **state)
{
  Manager *m = *state;

  g_unsetenv ("NOTIFY_SOCKET");
  close (m->fd);
  g_unlink (m->path);
  g_rmdir (m->dir);
  g_free (m->path);
  g_free (m->dir);
  g_free (m);
  return 0;
}

/* The next datagram, or NULL when none arrived. */
static char *
manager_read (int fd)
{
  char buf[4096];
  ssize_t n = recv (fd, buf, sizeof buf - 1, MSG_DONTWAIT);

  if (n < 0)
    return NULL;
  buf[n] = '\0';
  return g_strdup (buf);
}

typedef struct {
  const char *name;
  void (*call) (void);
  const char *want;         /* exact datagram, or prefix when ends in '*' */
} NoticeCase;

static void call_ready (void) { notify_ready ("started, socket /run/x.sock"); }
static void call_ready_null (void) { notify_ready (NULL); }
static void call_ready_hostile (void) { notify_ready ("a\nSTOPPING=1\x01\xc3\xa5"); }
static void call_stopping (void) { notify_stopping (); }
static void call_reloading (void) { notify_reloading (); }
static void call_ping (void) { notify_watchdog_ping (); }

static const NoticeCase notice_cases[] = {
  { "ready with status", call_ready, "READY=1\nSTATUS=started, socket /run/x.sock" },
  { "ready without status", call_ready_null, "READY=1" },
  { "status cannot add a line or a control byte", call_ready_hostile,
    "READY=1\nSTATUS=a?STOPPING=1???" },
  { "stopping", call_stopping, "STOPPING=1\nSTATUS=stopping" },
  { "reloading carries MONOTONIC_USEC", call_reloading,
    "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=*" },
  { "watchdog ping", call_ping, "WATCHDOG=1" },
};

static void
check_notice (const NoticeCase *c, char *got)
{
  size_t n = strlen (c->want);

  if (got == NULL)
    fail_msg ("%s: no datagram arrived", c->name);
  if (c->want[n - 1] == '*')
    {
      if (strncmp (got, c->want, n - 1) != 0 || strlen (got) == n - 1)
        fail_msg ("%s: got \"%s\"", c->name, got);
    }
  else if (strcmp (got, c->want) != 0)
    fail_msg ("%s: got \"%s\", want \"%s\"", c->name, got, c->want);
  g_free (got);
}

static void
test_notices_reach_the_manager (void **state)
{
  Manager *m = *state;

  for (size_t i = 0; i < G_N_ELEMENTS (notice_cases); i++)
    {
      notice_cases[i].call ();
      check_notice (&notice_cases[i], manager_read (m->fd));
    }
  /* Exactly one datagram per notice. */
  assert_null (manager_read (m->fd));
}

static void
test_abstract_notify_socket (void **state)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  g_autofree char *name = g_strdup_printf ("invitemail-test-notify-%d", (int) getpid ());
  g_autofree char *env = g_strdup_printf ("@%s", name);
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  socklen_t len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + 1 + strlen (name));
  char *got;

  (void) state;
  assert_true (fd >= 0);
  memcpy (sa.sun_path + 1, name, strlen (name));
  assert_int_equal (bind (fd, (struct sockaddr *) &sa, len), 0);
  g_setenv ("NOTIFY_SOCKET", env, TRUE);
  notify_ready ("abstract");
  got = manager_read (fd);
  g_unsetenv ("NOTIFY_SOCKET");
  close (fd);
  assert_non_null (got);
  assert_string_equal (got, "READY=1\nSTATUS=abstract");
  g_free (got);
}

static void
test_no_manager_is_quiet (void **state)
{
  Manager *m = *state;

  g_unsetenv ("NOTIFY_SOCKET");
  notify_ready ("nobody listens");
  notify_watchdog_ping ();
  notify_stopping ();
  assert_null (manager_read (m->fd));
  g_setenv ("NOTIFY_SOCKET", m->path, TRUE);
}

typedef struct {
  const char *name;
  const char *usec;         /* NULL = unset */
  const char *pid;          /* NULL = unset, "self" = this process */
  guint64 want;
} WatchdogCase;

static const WatchdogCase watchdog_cases[] = {
  { "interval for this pid", "30000000", "self", 30000000 },
  { "interval without WATCHDOG_PID", "15000000", NULL, 15000000 },
  { "interval for another pid", "30000000", "1", 0 },
  { "no WATCHDOG_USEC", NULL, "self", 0 },
  { "zero interval", "0", "self", 0 },
  { "not a number", "30s", "self", 0 },
  { "negative", "-5", "self", 0 },
};

static void
set_or_unset (const char *name, const char *value)
{
  g_autofree char *self = g_strdup_printf ("%d", (int) getpid ());

  if (value == NULL)
    g_unsetenv (name);
  else
    g_setenv (name, strcmp (value, "self") == 0 ? self : value, TRUE);
}

static void
test_watchdog_interval (void **state)
{
  (void) state;
  for (size_t i = 0; i < G_N_ELEMENTS (watchdog_cases); i++)
    {
      const WatchdogCase *c = &watchdog_cases[i];
      guint64 got;

      set_or_unset ("WATCHDOG_USEC", c->usec);
      set_or_unset ("WATCHDOG_PID", c->pid);
      got = notify_watchdog_usec ();
      if (got != c->want)
        fail_msg ("%s: got %" G_GUINT64_FORMAT ", want %" G_GUINT64_FORMAT,
                  c->name, got, c->want);
    }
  g_unsetenv ("WATCHDOG_USEC");
  g_unsetenv ("WATCHDOG_PID");
}

/* ---- socket activation ------------------------------------------- */

typedef enum { SOCK_LISTENING, SOCK_DATAGRAM, SOCK_UNLISTENED, SOCK_NONE } SockKind;

static void
place (SockKind kind, int target)
{
  int fd = -1;

  if (kind == SOCK_NONE)
    return;
  if (kind == SOCK_DATAGRAM)
    fd = socket (AF_UNIX, SOCK_DGRAM, 0);
  else
    fd = socket (AF_UNIX, SOCK_STREAM, 0);
  assert_true (fd >= 0);
  if (kind == SOCK_LISTENING)
    {
      /* Autobind gives an abstract name: nothing on disk to clean up. */
      struct sockaddr_un sa = { .sun_family = AF_UNIX };
      assert_int_equal (bind (fd, (struct sockaddr *) &sa, sizeof (sa_family_t)), 0);
      assert_int_equal (listen (fd, 4), 0);
    }
  if (fd != target)
    {
      assert_int_equal (dup2 (fd, target), target);
      close (fd);
    }
}

typedef struct {
  const char *name;
  SockKind fd3, fd4;
  const char *listen_pid;   /* "self", another, or NULL */
  const char *listen_fds;
  int want;                 /* 3 or -1 */
  gboolean fd4_closed;      /* an extra descriptor is not leaked */
} ListenCase;

static const ListenCase listen_cases[] = {
  { "one listening socket", SOCK_LISTENING, SOCK_NONE, "self", "1", 3, TRUE },
  { "two sockets: first used, second closed", SOCK_LISTENING, SOCK_LISTENING,
    "self", "2", 3, TRUE },
  { "meant for another pid", SOCK_LISTENING, SOCK_NONE, "1", "1", -1, TRUE },
  { "no LISTEN_PID", SOCK_LISTENING, SOCK_NONE, NULL, "1", -1, TRUE },
  { "LISTEN_FDS zero", SOCK_LISTENING, SOCK_NONE, "self", "0", -1, TRUE },
  { "LISTEN_FDS garbage", SOCK_LISTENING, SOCK_NONE, "self", "1x", -1, TRUE },
  { "datagram socket refused", SOCK_DATAGRAM, SOCK_NONE, "self", "1", -1, TRUE },
  { "socket not listening refused", SOCK_UNLISTENED, SOCK_NONE, "self", "1", -1, TRUE },
};

static int
fds_free_setup (void **state)
{
  (void) state;
  /* The cases own fd 3 and 4: they must be free in this process. */
  if (fcntl (3, F_GETFD) != -1 || fcntl (4, F_GETFD) != -1)
    {
      print_message ("fd 3 or 4 is in use here: cannot stage socket activation\n");
      return -1;
    }
  return 0;
}

static void
run_listen_case (const ListenCase *c)
{
  int got;

  place (c->fd3, 3);
  place (c->fd4, 4);
  set_or_unset ("LISTEN_PID", c->listen_pid);
  set_or_unset ("LISTEN_FDS", c->listen_fds);
  g_setenv ("LISTEN_FDNAMES", "invitemaild.socket", TRUE);
  got = notify_listen_fd ();
  if (got != c->want)
    fail_msg ("%s: got fd %d, want %d", c->name, got, c->want);
  if (g_getenv ("LISTEN_PID") || g_getenv ("LISTEN_FDS") || g_getenv ("LISTEN_FDNAMES"))
    fail_msg ("%s: LISTEN_* still in the environment", c->name);
  if (got == 3 && (fcntl (3, F_GETFD) & FD_CLOEXEC) == 0)
    fail_msg ("%s: the passed socket is not close-on-exec", c->name);
  if (c->fd4 != SOCK_NONE && c->fd4_closed && c->want == 3 && fcntl (4, F_GETFD) != -1)
    fail_msg ("%s: the extra descriptor was left open", c->name);
  /* A second call never takes the socket again. */
  if (notify_listen_fd () != -1)
    fail_msg ("%s: a second call took a socket", c->name);
  close (3);
  close (4);
}

static void
test_listen_fd (void **state)
{
  (void) state;
  for (size_t i = 0; i < G_N_ELEMENTS (listen_cases); i++)
    run_listen_case (&listen_cases[i]);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_notices_reach_the_manager, manager_setup,
                                     manager_teardown),
    cmocka_unit_test_setup_teardown (test_no_manager_is_quiet, manager_setup,
                                     manager_teardown),
    cmocka_unit_test (test_abstract_notify_socket),
    cmocka_unit_test (test_watchdog_interval),
    cmocka_unit_test_setup (test_listen_fd, fds_free_setup),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
