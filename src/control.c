/*
 * control.c - the Unix socket: bind, mode, peer credentials, caps,
 * framing, timeouts.  See control.h.
 *
 * SECURITY: the peer's uid and gid come from the kernel (SO_PEERCRED)
 * at accept time, before one request byte is read; a peer that is not
 * allowed gets `not_authorized` and the connection is closed.  Nothing
 * here interprets request bytes beyond finding where a request ends;
 * a framing error cannot be resynchronised, so it is answered and the
 * connection closed.  Buffers never exceed REQUEST_MAX_BYTES in and
 * CONTROL_MAX_PENDING_OUT out per connection.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

#include "notify.h"
#include "request.h"

G_DEFINE_QUARK (invitemail-control-error-quark, control_error)

typedef struct Conn Conn;

struct Control {
  const Config *cfg;
  Service *service;
  int listen_fd;
  guint listen_watch;
  gboolean owns_path;
  GHashTable *conns;        /* Conn* set */
  GHashTable *per_uid;      /* uid -> count */
};

struct Conn {
  Control *control;
  int fd;
  PeerCred peer;
  GByteArray *in;
  GString *out;
  gsize out_off;
  GSource *io_source;       /* one for the connection's life: see conn_update_watch */
  gpointer io_tag;
  GIOCondition io_want;
  guint idle_timer;
  int refs;                 /* the connection table's, plus one per pending answer */
  gboolean pending;         /* a request is with the service: read no further */
  gboolean processing;      /* inside conn_process: an answer now must not recurse */
  gboolean closing;         /* answer what is pending, then close */
  gboolean closed;          /* fd closed, only waiting for the last reference */
};

static void conn_close (Conn *c);
static void conn_process (Conn *c);
static void conn_touch (Conn *c);
static gboolean conn_write (Conn *c);
static gboolean conn_io (Conn *c, GIOCondition cond);

/* A source that stays attached while the connection lives; only the
 * conditions it waits for change.  Removing and re-adding a watch at
 * every request (g_unix_fd_add) made GLib change its poll set, and wake
 * its own loop through the eventfd, about ten times per request. */
typedef struct {
  GSource base;
  Conn *conn;
} ConnSource;

static gboolean
conn_source_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  ConnSource *cs = (ConnSource *) source;
  Conn *c = cs->conn;

  (void) callback;
  (void) data;
  return conn_io (c, g_source_query_unix_fd (source, c->io_tag));
}

static GSourceFuncs conn_source_funcs = {
  .dispatch = conn_source_dispatch,
};

static void
uid_count (Control *ctl, uid_t uid, int delta)
{
  gpointer key = GUINT_TO_POINTER (uid + 1);
  int n = GPOINTER_TO_INT (g_hash_table_lookup (ctl->per_uid, key)) + delta;

  if (n <= 0)
    g_hash_table_remove (ctl->per_uid, key);
  else
    g_hash_table_insert (ctl->per_uid, key, GINT_TO_POINTER (n));
}

static Conn *
conn_ref (Conn *c)
{
  c->refs++;
  return c;
}

static void
conn_unref (Conn *c)
{
  if (--c->refs > 0)
    return;
  g_byte_array_unref (c->in);
  g_string_free (c->out, TRUE);
  g_free (c);
}

static void
conn_update_watch (Conn *c)
{
  GIOCondition want = G_IO_HUP | G_IO_ERR;

  if (c->closed)
    return;
  /* While a request is with the service, nothing more is read: one
   * request at a time per connection, answers in order. */
  if (!c->pending && !c->closing)
    want |= G_IO_IN;
  if (c->out->len > c->out_off)
    want |= G_IO_OUT;
  if (c->io_source == NULL)
    {
      c->io_source = g_source_new (&conn_source_funcs, sizeof (ConnSource));
      ((ConnSource *) c->io_source)->conn = c;
      c->io_tag = g_source_add_unix_fd (c->io_source, c->fd, want);
      g_source_attach (c->io_source, NULL);
    }
  else if (want != c->io_want)
    g_source_modify_unix_fd (c->io_source, c->io_tag, want);
  c->io_want = want;
}

/* The service's answer, now or after a commit. */
static void
conn_on_answer (gpointer target, const char *answer, gsize len)
{
  Conn *c = target;

  if (!c->closed)
    {
      g_string_append_len (c->out, answer, (gssize) len);
      c->pending = FALSE;
      conn_touch (c);   /* a fresh window for the next request */
      if (c->out->len - c->out_off > CONTROL_MAX_PENDING_OUT)
        c->closing = TRUE;
      if (!c->processing)
        {
          conn_process (c);
          /* Sent at once: an answer is small and the socket nearly
           * always takes it, so no G_IO_OUT round through the loop. */
          if (!c->closed && !conn_write (c))
            conn_close (c);
          else
            conn_update_watch (c);
        }
    }
  conn_unref (c);
}

static void
conn_refuse (Conn *c, const Refusal *why)
{
  c->pending = TRUE;
  c->closing = TRUE;
  service_refuse (c->control->service, &c->peer, why, conn_on_answer, conn_ref (c));
}

static gboolean
conn_idle (gpointer data)
{
  Conn *c = data;
  Refusal why;

  c->idle_timer = 0;
  if (c->pending)
    {
      /* Waiting on our own commit, not on the client. */
      conn_touch (c);
      return G_SOURCE_REMOVE;
    }
  if (c->in->len > 0 && !c->closing)
    {
      /* Only a peer that started a request is told; an idle keep-alive
       * connection is simply closed. */
      refusal_set (&why, REFUSAL_TIMEOUT, NULL,
                   "no complete request within %u seconds",
                   c->control->cfg->client_timeout);
      g_byte_array_set_size (c->in, 0);
      conn_refuse (c, &why);
      conn_update_watch (c);
      c->idle_timer = g_timeout_add_seconds (5, conn_idle, c);
      return G_SOURCE_REMOVE;
    }
  conn_close (c);
  return G_SOURCE_REMOVE;
}

static void
conn_touch (Conn *c)
{
  if (c->idle_timer != 0)
    g_source_remove (c->idle_timer);
  c->idle_timer = g_timeout_add_seconds (c->control->cfg->client_timeout,
                                         conn_idle, c);
}

/* Hands complete requests to the service, one at a time. */
static void
conn_process (Conn *c)
{
  c->processing = TRUE;
  while (!c->closing && !c->pending && !c->closed && c->in->len > 0)
    {
      gsize frame_len = 0;
      Refusal why;
      FrameStatus st = request_frame ((const char *) c->in->data, c->in->len,
                                      &frame_len, &why);
      if (st == FRAME_INCOMPLETE)
        break;
      if (st == FRAME_ERROR)
        {
          g_byte_array_set_size (c->in, 0);
          conn_refuse (c, &why);
          break;
        }
      c->pending = TRUE;
      service_handle (c->control->service, &c->peer, (const char *) c->in->data,
                      frame_len, conn_on_answer, conn_ref (c));
      g_byte_array_remove_range (c->in, 0, frame_len);
    }
  c->processing = FALSE;
}

static gboolean
conn_read (Conn *c)
{
  guint8 buf[16384];
  ssize_t n = read (c->fd, buf, sizeof buf);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return TRUE;
  if (n <= 0)
    return FALSE;
  /* request_frame refuses anything over REQUEST_MAX_BYTES, and nothing
   * is read while a request is pending, so the buffer stays bounded.
   * The clock runs from a request's first byte: a peer that drips one
   * byte at a time cannot hold the connection past client_timeout. */
  if (c->in->len == 0)
    conn_touch (c);
  g_byte_array_append (c->in, buf, (guint) n);
  conn_process (c);
  return TRUE;
}

/* FALSE when the connection should close now. */
static gboolean
conn_write (Conn *c)
{
  while (c->out->len > c->out_off)
    {
      ssize_t n = send (c->fd, c->out->str + c->out_off, c->out->len - c->out_off,
                        MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return TRUE;
      if (n <= 0)
        return FALSE;
      c->out_off += (gsize) n;
    }
  g_string_truncate (c->out, 0);
  c->out_off = 0;
  return !(c->closing && !c->pending);
}

static gboolean
conn_io (Conn *c, GIOCondition cond)
{
  gboolean keep = TRUE;

  if ((cond & G_IO_IN) && !c->closing && !c->pending)
    keep = conn_read (c);
  if (keep && !c->closed)
    keep = conn_write (c);
  if (keep && (cond & (G_IO_ERR | G_IO_NVAL)))
    keep = FALSE;
  /* A peer that hung up gets no more answers; a pending commit still
   * completes and is answered into the void. */
  if (keep && (cond & G_IO_HUP) && !(cond & G_IO_IN))
    keep = FALSE;
  if (!keep)
    {
      conn_close (c);   /* may free c */
      return G_SOURCE_REMOVE;
    }
  conn_update_watch (c);
  return G_SOURCE_CONTINUE;
}

static void
conn_close (Conn *c)
{
  Control *ctl = c->control;

  if (c->closed)
    return;
  c->closed = TRUE;
  if (c->io_source != NULL)
    {
      g_source_destroy (c->io_source);
      g_clear_pointer (&c->io_source, g_source_unref);
    }
  if (c->idle_timer != 0)
    g_source_remove (c->idle_timer);
  c->idle_timer = 0;
  close (c->fd);
  uid_count (ctl, c->peer.uid, -1);
  g_hash_table_remove (ctl->conns, c);
  conn_unref (c);
}

static gboolean
peer_credentials (int fd, PeerCred *peer)
{
  struct ucred uc;
  socklen_t len = sizeof uc;

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 || len != sizeof uc)
    return FALSE;
  peer->pid = uc.pid;
  peer->uid = uc.uid;
  peer->gid = uc.gid;
  return TRUE;
}

/* Decides whether a new connection may stay; fills *why if not. */
static gboolean
admit (Control *ctl, const PeerCred *peer, Refusal *why)
{
  guint total = g_hash_table_size (ctl->conns);
  int mine = GPOINTER_TO_INT (g_hash_table_lookup (ctl->per_uid,
                                                   GUINT_TO_POINTER (peer->uid + 1)));

  if (!service_peer_allowed (ctl->service, peer))
    return refusal_set (why, REFUSAL_NOT_AUTHORIZED, NULL,
                        "this user may not send invites");
  if (total >= CONTROL_MAX_CONNECTIONS - CONTROL_RESERVE || mine >= CONTROL_MAX_PER_UID)
    return refusal_set (why, REFUSAL_BUSY, NULL, "too many open connections");
  return TRUE;
}

static void
accept_one (Control *ctl, int fd)
{
  Conn *c = g_new0 (Conn, 1);
  Refusal why;

  c->control = ctl;
  c->fd = fd;
  c->refs = 1;
  c->in = g_byte_array_new ();
  c->out = g_string_new (NULL);
  if (!peer_credentials (fd, &c->peer))
    c->peer.uid = (uid_t) -1;
  refusal_clear (&why);
  if (c->peer.uid == (uid_t) -1)
    refusal_set (&why, REFUSAL_NOT_AUTHORIZED, NULL, "peer credentials unavailable");
  else
    admit (ctl, &c->peer, &why);
  g_hash_table_add (ctl->conns, c);
  uid_count (ctl, c->peer.uid, +1);
  conn_touch (c);
  if (why.code != REFUSAL_NONE)
    conn_refuse (c, &why);
  conn_update_watch (c);
}

static gboolean
on_accept (int lfd, GIOCondition cond, gpointer data)
{
  Control *ctl = data;

  for (int i = 0; i < 64; i++)
    {
      int fd = accept4 (lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        {
          if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            g_warning ("accept: %s", g_strerror (errno));
          break;
        }
      if (g_hash_table_size (ctl->conns) >= CONTROL_MAX_CONNECTIONS)
        {
          close (fd);   /* even the reserve is gone: drop silently */
          continue;
        }
      accept_one (ctl, fd);
    }
  return G_SOURCE_CONTINUE;
}

/* Refuses to steal the socket of a daemon that is still running; a
 * stale socket file left by a crash is removed. */
static gboolean
clear_stale (const struct sockaddr_un *sa, GError **error)
{
  struct stat st;
  int fd;

  if (lstat (sa->sun_path, &st) != 0)
    return TRUE;
  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error (error, CONTROL_ERROR, CONTROL_ERROR_BIND,
                   "%s exists and is not a socket", sa->sun_path);
      return FALSE;
    }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect (fd, (const struct sockaddr *) sa, sizeof *sa) == 0)
    {
      close (fd);
      g_set_error (error, CONTROL_ERROR, CONTROL_ERROR_IN_USE,
                   "%s: another invitemaild is listening", sa->sun_path);
      return FALSE;
    }
  if (fd >= 0)
    close (fd);
  unlink (sa->sun_path);
  return TRUE;
}

/* Started as root to drop to [daemon] user: what is made here is
 * handed to that user (invitemaild.c drops right after binding). */
static gboolean
will_drop (const Config *cfg)
{
  return geteuid () == 0 && cfg->run_user != NULL && cfg->run_uid != 0;
}

static gboolean
set_owner_mode (const Config *cfg, const char *path, GError **error)
{
  uid_t owner = will_drop (cfg) ? cfg->run_uid : (uid_t) -1;
  gid_t group = will_drop (cfg) ? cfg->run_gid : (gid_t) -1;

  if (cfg->socket_group != NULL)
    {
      struct group *gr = getgrnam (cfg->socket_group);
      if (gr == NULL)
        {
          g_set_error (error, CONTROL_ERROR, CONTROL_ERROR_BIND,
                       "%s: no group %s", cfg->socket, cfg->socket_group);
          return FALSE;
        }
      group = gr->gr_gid;
    }
  if ((owner != (uid_t) -1 || group != (gid_t) -1)
      && chown (path, owner, group) != 0)
    {
      g_set_error (error, CONTROL_ERROR, CONTROL_ERROR_BIND, "%s: cannot set owner "
                   "or group %s: %s", cfg->socket,
                   cfg->socket_group ? cfg->socket_group : "", g_strerror (errno));
      return FALSE;
    }
  if (chmod (path, cfg->socket_mode) != 0)
    {
      g_set_error (error, CONTROL_ERROR, CONTROL_ERROR_BIND, "%s: chmod: %s",
                   cfg->socket, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

/*
 * The socket's folder, when it does not exist yet: made with mode 0755
 * exactly (the documented mode: anyone may reach the socket, whose own
 * mode and group are the gate), whatever the umask; given to [daemon]
 * user when the daemon will drop to it, so that it can remove its
 * socket at stop.  A folder that exists is left as it is.
 */
static gboolean
make_socket_dir (const Config *cfg, const char *dir)
{
  if (g_file_test (dir, G_FILE_TEST_IS_DIR))
    return TRUE;
  if (g_mkdir_with_parents (dir, 0755) != 0 || chmod (dir, 0755) != 0)
    return FALSE;
  return !will_drop (cfg) || chown (dir, cfg->run_uid, cfg->run_gid) == 0;
}

static int
bind_socket (const Config *cfg, GError **error)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  g_autofree char *dir = g_path_get_dirname (cfg->socket);
  mode_t old;
  int fd, rc;

  g_strlcpy (sa.sun_path, cfg->socket, sizeof sa.sun_path);
  if (!make_socket_dir (cfg, dir) || !clear_stale (&sa, error))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, CONTROL_ERROR, CONTROL_ERROR_BIND, "%s: %s", dir,
                     g_strerror (errno));
      return -1;
    }
  /* Bound under a temporary name and a tight umask, given its owner,
   * group and mode, and only then renamed into place: the socket never
   * exists under its real name with another mode, so a client that
   * connects the moment it appears (the booking tool started beside the
   * daemon) is never refused by a mode that was about to widen.  A name
   * too long for the temporary suffix is bound in place instead. */
  g_autofree char *tmp = g_strconcat (cfg->socket, ".new", NULL);
  struct sockaddr_un ta = { .sun_family = AF_UNIX };
  gboolean in_place = strlen (tmp) >= sizeof ta.sun_path;

  g_strlcpy (ta.sun_path, in_place ? cfg->socket : tmp, sizeof ta.sun_path);
  if (!in_place)
    unlink (tmp);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  old = umask (0177);
  rc = fd < 0 ? -1 : bind (fd, (struct sockaddr *) &ta, sizeof ta);
  umask (old);
  if (rc != 0 || listen (fd, 128) != 0 || !set_owner_mode (cfg, ta.sun_path, error)
      || (!in_place && rename (tmp, cfg->socket) != 0))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, CONTROL_ERROR, CONTROL_ERROR_BIND, "%s: %s",
                     cfg->socket, g_strerror (errno));
      if (fd >= 0)
        close (fd);
      if (!in_place)
        unlink (tmp);
      return -1;
    }
  return fd;
}

gboolean
control_listen (const Config *cfg, ControlSocket *out, GError **error)
{
  out->fd = notify_listen_fd ();
  out->owns_path = FALSE;
  if (out->fd < 0)
    {
      out->fd = bind_socket (cfg, error);
      out->owns_path = out->fd >= 0;
    }
  return out->fd >= 0;
}

Control *
control_new_listening (const Config *cfg, Service *service, const ControlSocket *sock)
{
  Control *c = g_new0 (Control, 1);

  c->cfg = cfg;
  c->service = service;
  c->conns = g_hash_table_new (NULL, NULL);
  c->per_uid = g_hash_table_new (NULL, NULL);
  c->listen_fd = sock->fd;
  c->owns_path = sock->owns_path;
  fcntl (c->listen_fd, F_SETFL, fcntl (c->listen_fd, F_GETFL) | O_NONBLOCK);
  c->listen_watch = g_unix_fd_add (c->listen_fd, G_IO_IN, on_accept, c);
  return c;
}

Control *
control_new (const Config *cfg, Service *service, GError **error)
{
  ControlSocket sock;

  if (!control_listen (cfg, &sock, error))
    return NULL;
  return control_new_listening (cfg, service, &sock);
}

void
control_set_config (Control *c, const Config *cfg)
{
  c->cfg = cfg;
}

guint
control_drain (Control *c)
{
  g_autoptr (GList) open = g_hash_table_get_keys (c->conns);
  guint busy = 0;

  for (GList *l = open; l != NULL; l = l->next)
    {
      Conn *conn = l->data;
      if (!conn->pending && conn->out->len == conn->out_off)
        {
          conn_close (conn);
          continue;
        }
      conn->closing = TRUE;
      conn_update_watch (conn);
      busy++;
    }
  return busy;
}

void
control_stop_accepting (Control *c)
{
  if (c != NULL && c->listen_watch != 0)
    {
      g_source_remove (c->listen_watch);
      c->listen_watch = 0;
    }
}

void
control_free (Control *c)
{
  g_autoptr (GList) open = NULL;

  if (c == NULL)
    return;
  control_stop_accepting (c);
  open = g_hash_table_get_keys (c->conns);
  for (GList *l = open; l != NULL; l = l->next)
    conn_close (l->data);
  if (c->listen_fd >= 0)
    close (c->listen_fd);
  if (c->owns_path)
    unlink (c->cfg->socket);
  g_hash_table_unref (c->conns);
  g_hash_table_unref (c->per_uid);
  g_free (c);
}
