/*
 * notify.c - readiness, reload, stop and watchdog notices to the
 * service manager, and the socket passed by socket activation.  See
 * notify.h.
 *
 * Two implementations of the same protocols: libsystemd's when the
 * build found it (HAVE_SYSTEMD), else a small one of our own, so that
 * Type=notify and socket activation work on either build.  The test
 * suite builds this file both ways (NOTIFY_FORCE_FALLBACK).
 *
 * Trusts: the environment the service manager set.  Every variable is
 * parsed strictly; LISTEN_FDS and WATCHDOG_USEC only count when their
 * *_PID names this process (a value inherited from a parent is not
 * ours).  A passed descriptor is used only if it is a listening
 * AF_UNIX stream socket.
 *
 * Limits: a notice that cannot be sent is reported once and otherwise
 * ignored: the manager's watchdog, not this process, decides what a
 * missing ping means.  STATUS= text is cut to one line of at most
 * NOTIFY_STATUS_MAX bytes.
 */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if defined(HAVE_SYSTEMD) && !defined(NOTIFY_FORCE_FALLBACK)
#include <systemd/sd-daemon.h>
#define NOTIFY_USE_LIBSYSTEMD 1
#else
#define NOTIFY_USE_LIBSYSTEMD 0
#endif

#define LISTEN_FDS_FIRST 3
#define LISTEN_FDS_LIMIT 64
#define NOTIFY_STATUS_MAX 200

#if !NOTIFY_USE_LIBSYSTEMD
/* The sd_notify protocol: one datagram to $NOTIFY_SOCKET, a path or an
 * abstract name written with a leading '@'.  Returns 0 when there is
 * no manager to tell, > 0 when sent, -errno on failure. */
static int
send_notice (const char *state)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  socklen_t salen;
  size_t len;
  int fd, rc;

  if (path == NULL || path[0] == '\0')
    return 0;
  len = strlen (path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path)
    return -EINVAL;
  memcpy (sa.sun_path, path, len);
  if (path[0] == '@')
    sa.sun_path[0] = '\0'; /* abstract: no terminating NUL counts */
  salen = (socklen_t)(offsetof (struct sockaddr_un, sun_path) + len);
  if ((fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
    return -errno;
  rc = sendto (fd, state, strlen (state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0
           ? -errno
           : 1;
  close (fd);
  return rc;
}

/* "VALUE_PID" unset, or set to this process. */
static gboolean
pid_is_ours (const char *name, gboolean required)
{
  const char *v = g_getenv (name);
  guint64 pid = 0;

  if (v == NULL)
    return !required;
  return g_ascii_string_to_unsigned (v, 10, 1, G_MAXINT, &pid, NULL)
         && (pid_t)pid == getpid ();
}

static guint64
watchdog_usec (void)
{
  const char *v = g_getenv ("WATCHDOG_USEC");
  guint64 usec = 0;

  if (v == NULL || !g_ascii_string_to_unsigned (v, 10, 1, G_MAXUINT64, &usec, NULL)
      || !pid_is_ours ("WATCHDOG_PID", FALSE))
    return 0;
  return usec;
}

/* How many descriptors were passed (sd_listen_fds (1)): the variables
 * are removed whatever they held. */
static int
listen_fds (void)
{
  const char *v = g_getenv ("LISTEN_FDS");
  guint64 n = 0;
  gboolean ours = pid_is_ours ("LISTEN_PID", TRUE);

  if (v == NULL || !g_ascii_string_to_unsigned (v, 10, 0, LISTEN_FDS_LIMIT, &n, NULL))
    n = 0;
  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_FDS");
  g_unsetenv ("LISTEN_FDNAMES");
  if (!ours)
    return 0;
  for (int fd = LISTEN_FDS_FIRST; fd < LISTEN_FDS_FIRST + (int)n; fd++)
    if (fcntl (fd, F_SETFD, FD_CLOEXEC) != 0)
      return -errno;
  return (int)n;
}

#else /* NOTIFY_USE_LIBSYSTEMD */

static int
send_notice (const char *state)
{
  return sd_notify (0, state);
}

static guint64
watchdog_usec (void)
{
  uint64_t usec = 0;

  return sd_watchdog_enabled (0, &usec) > 0 ? (guint64)usec : 0;
}

static int
listen_fds (void)
{
  int n = sd_listen_fds (1);

  return n > LISTEN_FDS_LIMIT ? LISTEN_FDS_LIMIT : n;
}

#endif

static void
notice (const char *state)
{
  static gboolean warned = FALSE;
  int rc = send_notice (state);

  /* Once only: a broken notify socket must not flood the log with one
   * warning per watchdog ping. */
  if (rc < 0 && !warned)
    {
      warned = TRUE;
      g_warning ("cannot notify the service manager: %s", g_strerror (-rc));
    }
}

/* One line of printable ASCII, whatever the caller passed. */
static char *
status_line (const char *status)
{
  GString *s = g_string_new (NULL);

  for (const char *p = status; *p != '\0' && s->len < NOTIFY_STATUS_MAX; p++)
    g_string_append_c (s, g_ascii_isprint (*p) ? *p : '?');
  return g_string_free (s, FALSE);
}

void
notify_ready (const char *status)
{
  g_autofree char *line = NULL;
  g_autofree char *msg = NULL;

  if (status == NULL)
    {
      notice ("READY=1");
      return;
    }
  line = status_line (status);
  msg = g_strdup_printf ("READY=1\nSTATUS=%s", line);
  notice (msg);
}

void
notify_stopping (void)
{
  notice ("STOPPING=1\nSTATUS=stopping");
}

void
notify_reloading (void)
{
  /* MONOTONIC_USEC is what Type=notify-reload (systemd 253+) matches a
   * reload by; older managers ignore it.  GLib's monotonic clock is
   * CLOCK_MONOTONIC in microseconds, the clock systemd means. */
  g_autofree char *msg = g_strdup_printf ("RELOADING=1\nSTATUS=reloading\n"
                                          "MONOTONIC_USEC=%" G_GINT64_FORMAT,
                                          g_get_monotonic_time ());
  notice (msg);
}

guint64
notify_watchdog_usec (void)
{
  return watchdog_usec ();
}

void
notify_watchdog_ping (void)
{
  notice ("WATCHDOG=1");
}

static gboolean
is_unix_listener (int fd)
{
  int domain = 0, type = 0, listening = 0;
  socklen_t len = sizeof domain;

  if (getsockopt (fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX)
    return FALSE;
  len = sizeof type;
  if (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
    return FALSE;
  len = sizeof listening;
  return getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0
         && listening != 0;
}

int
notify_listen_fd (void)
{
  int n = listen_fds ();

  if (n <= 0)
    return -1;
  /* The socket unit names one ListenStream=; anything more is a
   * misconfiguration we must not leak into the daemon. */
  if (n > 1)
    g_warning ("%d sockets passed by the service manager; using the first", n);
  for (int fd = LISTEN_FDS_FIRST + 1; fd < LISTEN_FDS_FIRST + n; fd++)
    close (fd);
  if (!is_unix_listener (LISTEN_FDS_FIRST))
    {
      g_warning ("the passed socket is not a listening Unix stream socket; ignored");
      close (LISTEN_FDS_FIRST);
      return -1;
    }
  return LISTEN_FDS_FIRST;
}
