/*
 * transport_net.c - the socket-level work libESMTP 1.1.0 cannot do
 * itself: bounds on the relay's name lookup and on connect(), neither
 * of which libESMTP limits, and TCP_NODELAY on the relay connection.
 *
 * Lookup: the relay's name is resolved here, through GResolver in a
 * private main context, and given up when the timeout passes (the
 * GCancellable makes the threaded resolver return at once; its thread
 * finishes the getaddrinfo on its own).  libESMTP is then handed an IPv4
 * literal, which its own getaddrinfo answers without a lookup.  Tests
 * replace the resolver with g_resolver_set_default.
 *
 * connect(): libESMTP makes a blocking socket and calls connect() itself,
 * so the only way to bound it from outside is to interrupt it.  A POSIX
 * timer sends TRANSPORT_WATCH_SIGNAL to this thread alone
 * (SIGEV_THREAD_ID) when the connect budget is spent; its handler does
 * nothing and is installed without SA_RESTART, so the blocked connect()
 * fails with EINTR and libESMTP gives up on that address.  After the
 * first expiry the timer repeats every few milliseconds, so any further
 * address fails at once.  The caller disarms the watch as soon as
 * libESMTP reports the connection (SMTP_EV_CONNECT).  The signal is
 * unblocked in this thread only while the watch exists; the previous
 * mask is restored afterwards.
 *
 * TRUSTS: the host name (config.c checked it).  LIMITS: libESMTP's
 * smtp_set_server cannot take an IPv6 literal (it splits host:port at
 * the first colon), so when a name has IPv6 addresses it is also handed
 * to libESMTP as a name, after its IPv4 literals: that second lookup is
 * not bounded (connect() still is).  Nothing here logs.
 */
#include "transport_private.h"

#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <gio/gio.h>

#define TARGETS_MAX 4             /* addresses tried per session */
#define WATCH_REPEAT_NS 20000000L /* 20 ms between EINTRs once expired */

/* ---- bounded lookup ---- */

typedef struct {
  GList *addresses;
  GError *error;
  gboolean done;
} Lookup;

static void
lookup_done (GObject *source, GAsyncResult *result, gpointer data)
{
  Lookup *l = data;

  l->addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source),
                                                   result, &l->error);
  l->done = TRUE;
}

static gboolean
lookup_expired (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  return G_SOURCE_REMOVE;
}

/* The IPv4 literals (libESMTP can take only those), at most
 * TARGETS_MAX, then the name itself when it has IPv6 addresses too, so
 * that a relay reachable only over IPv6 is still reached. */
static GPtrArray *
targets_from (GList *addresses, const char *host)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  gboolean ipv6 = FALSE;

  for (GList *l = addresses; l != NULL; l = l->next)
    if (g_inet_address_get_family (l->data) != G_SOCKET_FAMILY_IPV4)
      ipv6 = TRUE;
    else if (out->len < TARGETS_MAX)
      g_ptr_array_add (out, g_inet_address_to_string (l->data));
  if (ipv6 || out->len == 0)
    g_ptr_array_add (out, g_strdup (host));
  return out;
}

/* Runs one lookup in a private main context; TRUE when it answered. */
static gboolean
lookup_run (const char *host, guint timeout_ms, Lookup *l)
{
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_autoptr (GResolver) resolver = NULL;
  g_autoptr (GSource) timer = g_timeout_source_new (timeout_ms);
  gboolean expired;

  g_main_context_push_thread_default (ctx);
  resolver = g_resolver_get_default ();
  g_source_set_callback (timer, lookup_expired, cancel, NULL);
  g_source_attach (timer, ctx);
  g_resolver_lookup_by_name_async (resolver, host, cancel, lookup_done, l);
  while (!l->done)
    g_main_context_iteration (ctx, TRUE);
  expired = g_cancellable_is_cancelled (cancel);
  g_source_destroy (timer);
  g_main_context_pop_thread_default (ctx);
  return !expired;
}

GPtrArray *
transport_resolve (const char *host, guint timeout_ms, GError **error)
{
  Lookup l = { 0 };
  GPtrArray *out = NULL;

  g_return_val_if_fail (host != NULL && timeout_ms > 0, NULL);

  if (g_hostname_is_ip_address (host))
    {
      out = g_ptr_array_new_with_free_func (g_free);
      g_ptr_array_add (out, g_strdup (host));
      return out;
    }
  if (!lookup_run (host, timeout_ms, &l))
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 "DNS lookup of the relay timed out after %u ms", timeout_ms);
  else if (l.error != NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 "DNS lookup of the relay failed: %s", l.error->message);
  else
    out = targets_from (l.addresses, host);
  g_clear_error (&l.error);
  g_resolver_free_addresses (l.addresses);
  return out;
}

/* ---- connect() watch ---- */

struct ConnectWatch {
  timer_t timer;
  sigset_t old_mask;
  gboolean armed;
};

/* Set by the handler, which runs only in the thread the timer targets.
 * (_Thread_local in the program itself is async-signal-safe.) */
static _Thread_local volatile sig_atomic_t watch_fired;

static void
watch_handler (int sig)
{
  (void) sig;                     /* its real job: make connect() EINTR */
  watch_fired = 1;
}

static gpointer
watch_install (gpointer unused)
{
  struct sigaction sa;

  (void) unused;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = watch_handler;
  sigemptyset (&sa.sa_mask);
  sa.sa_flags = 0;                /* no SA_RESTART: connect() must fail */
  sigaction (TRANSPORT_WATCH_SIGNAL, &sa, NULL);
  return NULL;
}

ConnectWatch *
transport_watch_start (guint timeout_ms)
{
  static GOnce once = G_ONCE_INIT;
  ConnectWatch *w = g_new0 (ConnectWatch, 1);
  struct sigevent sev;
  sigset_t set;
  struct itimerspec its = {
    .it_value = { timeout_ms / 1000, (long) (timeout_ms % 1000) * 1000000L },
    .it_interval = { 0, WATCH_REPEAT_NS },
  };

  g_once (&once, watch_install, NULL);
  memset (&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = TRANSPORT_WATCH_SIGNAL;
  sev._sigev_un._tid = gettid ();   /* glibc has no sigev_notify_thread_id */
  if (timer_create (CLOCK_MONOTONIC, &sev, &w->timer) != 0)
    {
      g_free (w);
      return NULL;                  /* unbounded, as libESMTP alone is */
    }
  sigemptyset (&set);
  sigaddset (&set, TRANSPORT_WATCH_SIGNAL);
  watch_fired = 0;
  pthread_sigmask (SIG_UNBLOCK, &set, &w->old_mask);
  timer_settime (w->timer, 0, &its, NULL);
  w->armed = TRUE;
  return w;
}

gboolean
transport_watch_expired (const ConnectWatch *w)
{
  return w != NULL && watch_fired;
}

void
transport_watch_disarm (ConnectWatch *w)
{
  struct itimerspec off = { { 0, 0 }, { 0, 0 } };

  if (w == NULL || !w->armed)
    return;
  timer_settime (w->timer, 0, &off, NULL);
  w->armed = FALSE;
}

void
transport_watch_free (ConnectWatch *w)
{
  if (w == NULL)
    return;
  transport_watch_disarm (w);
  timer_delete (w->timer);
  pthread_sigmask (SIG_SETMASK, &w->old_mask, NULL);
  g_free (w);
}

/* ---- TCP_NODELAY ---- */

/*
 * TCP_NODELAY on the relay connection.  libESMTP writes the message in
 * 2 KiB pieces; with Nagle on, the last short piece (with the final
 * dot) waits for the ACK of the one before, which the relay delays by
 * ~40 ms because it has nothing to say yet: every transaction would
 * stall that long.  libESMTP does not hand out its socket, so at
 * SMTP_EV_CONNECT (in the connecting thread, right after connect())
 * every TCP socket of this process connected to the relay's port gets
 * TCP_NODELAY; for another worker's relay connection that is the same
 * right setting, so the scan cannot do harm.
 */
void
transport_relay_nodelay (guint port)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      struct sockaddr_storage ss;
      socklen_t len = sizeof ss;
      int fd = atoi (name), type = 0, one = 1;
      socklen_t tlen = sizeof type;
      guint peer_port = 0;

      if (fd <= 2 || getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0
          || type != SOCK_STREAM || getpeername (fd, (struct sockaddr *) &ss, &len) != 0)
        continue;
      if (ss.ss_family == AF_INET)
        peer_port = ntohs (((struct sockaddr_in *) &ss)->sin_port);
      else if (ss.ss_family == AF_INET6)
        peer_port = ntohs (((struct sockaddr_in6 *) &ss)->sin6_port);
      if (peer_port == port)
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}
