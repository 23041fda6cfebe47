/*
 * transport.c - delivers finished messages to the relay through libESMTP
 * (the only file that includes it); the folder transport lives in
 * transport_file.c.  One connection per batch, one transaction (MAIL, one
 * RCPT, DATA) per job, each job judged from its own statuses.
 *
 * TRUSTS: the Config (checked by config.c) and the message bytes (CRLF
 * from mime_build).  Envelope addresses are checked again here.  The
 * relay is not trusted: its reply text is cut and made printable before
 * it leaves this file, and it gets no MAIL FROM unless TLS (when
 * configured) and AUTH (when configured) both succeeded.
 *
 * libESMTP 1.1.0 pitfalls handled here (LIBS.md 1-3): include order; our
 * own SSL_CTX for every session (the default one is freed under us); SNI
 * set by us; smtp_start_session's result ignored in favour of statuses;
 * sticky smtp_errno primed before each session; millisecond timeouts with
 * the RFC-minimum override; SIGPIPE ignored (transport_new); never
 * smtp_set_header (m, "To", ...); To/Cc/Bcc prohibited; no DSN, no
 * 8BITMIME body declaration.
 *
 * AUTH (why the monitor callback is a guard, not a logger): after a
 * refused AUTH libESMTP 1.1.0 simply goes on to MAIL FROM unauthenticated
 * (smtp-auth.c rsp_auth; only 534/538 stop it), and no API reports the
 * outcome.  But siobuf calls the protocol monitor with each outgoing
 * buffer *before* writing it to the socket.  So the monitor watches the
 * replies (235 after our AUTH = authenticated) and, when a buffer holding
 * "MAIL FROM:" is about to leave without a 235 seen, it cuts the
 * connection there: shutdown(2) of the socket (its fd comes from the TLS
 * layer, SSL_get_fd in our info callback) and, as a second belt that also
 * covers a clear-text loopback relay with no SSL, the outgoing buffer
 * (writable memory inside siobuf; the const in the callback type is only
 * a promise not to change it, which we break on purpose) is overwritten
 * with "QUIT" and blanks.  The relay therefore never receives MAIL FROM,
 * RCPT or DATA; every job is TEMPFAIL "AUTH refused: <reply>".  The
 * monitor never logs anything: the AUTH line holds the password.
 *
 * TLS 1.3 (why a NOOP goes out before libESMTP's EHLO): after the
 * handshake a TLS 1.3 server sends NewSessionTicket records.  libESMTP
 * 1.1.0 buffers EHLO, then polls for read and write together; when a
 * ticket has arrived by then, it takes the read branch first, SSL_read
 * consumes the ticket and wants more, and siobuf waits for a reply to an
 * EHLO it never flushed: a stall until the greeting timeout (LIBS.md 2;
 * 93 of 300 loopback sessions against a fast threaded server).  So in
 * SMTP_EV_STARTTLS_OK, which libESMTP raises after the handshake and
 * before it writes EHLO, we send NOOP through the SSL ourselves and read
 * its reply: the server sent its tickets before it read our NOOP, so
 * by the time its reply has come every ticket has been consumed, and the
 * race is gone (0 of 700).  It costs one round trip per TLS 1.3
 * connection, none for TLS 1.2.  A barrier that fails (no reply within
 * the timeout, 421, data we did not ask for) cuts the connection: the
 * jobs are TEMPFAIL and retried.  Tickets a server sent later still
 * cannot hold a worker past the timeouts.
 *
 * Name lookup and connect() have no timeout in libESMTP 1.1.0: both are
 * bounded in transport_net.c, and libESMTP gets an IPv4 literal.  The
 * certificate is still checked against the configured name (OpenSSL's
 * set1_host, SNI from the configuration); libESMTP's own check then sees
 * the literal and asks through SMTP_EV_WRONG_PEER_CERTIFICATE, answered
 * from OpenSSL's verify result only.
 */
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <auth-client.h>
#include <libesmtp.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "transport_private.h"

#define ADDRESS_MAX 254          /* RFC 5321 4.5.3.1.3 path minus brackets */
#define AUTH_FIELD_MAX 255       /* libESMTP's PLAIN plugin buffer, LIBS.md 3 */
#define FEED_CHUNK (1024 * 1024) /* big chunks: BDAT sends them as they come */
#define DEFAULT_TIMEOUT_MS 60000
#define BARRIER_REPLY_MAX 512    /* a NOOP reply longer than this is odd */

struct Transport {
  const Config *cfg;
  X509_STORE *store;   /* trusted CAs, loaded once, shared by every ctx */
  char *password;      /* NUL-terminated copy, wiped on free */
  gsize password_len;
  const gint *stop;    /* see transport_set_stop; NULL: never */
};

/* Everything one smtp_start_session learns, filled by the callbacks. */
typedef struct {
  const Transport *t;
  gboolean auth_required;   /* AUTH configured: no MAIL without a 235 */
  gboolean auth_attempted;
  gboolean auth_pending;    /* AUTH sent, final reply not yet read */
  gboolean auth_ok;         /* 235 to our AUTH */
  gboolean cut;             /* we severed the connection before MAIL */
  gboolean connected;       /* libESMTP reported SMTP_EV_CONNECT */
  ConnectWatch *watch;      /* bounds connect(), NULL outside it */
  int fd;                   /* socket under TLS, -1 before the handshake */
  long verify_error;        /* first certificate error, X509_V_OK if none */
  char reason[DELIVERY_REPLY_MAX];       /* first session-level failure */
  char auth_reply[DELIVERY_REPLY_MAX];   /* the AUTH refusal */
  int last_code;                         /* last final reply read */
  char last_reply[DELIVERY_REPLY_MAX];
  char line[DELIVERY_REPLY_MAX];         /* reply line being assembled */
  gsize line_len;
} Attempt;

/* What the message callback needs for one job. */
typedef struct {
  const DeliveryJob *job;
  const Attempt *attempt;
  smtp_message_t message;
  smtp_recipient_t recipient;
} Feed;

G_DEFINE_QUARK (transport-error-quark, transport_error)

/* ---- small helpers shared with transport_file.c ---- */

void
transport_safe_text (char *dst, gsize max, const char *src, gsize len)
{
  gsize out = 0;

  if (dst == NULL || max == 0)
    return;
  for (gsize i = 0; src != NULL && i < len && out + 1 < max; i++)
    {
      unsigned char c = (unsigned char) src[i];

      if (c == '\r' || c == '\n' || c == '\t')
        c = ' ';
      else if (c < 0x20 || c > 0x7e)
        c = '?';
      if (c == ' ' && (out == 0 || dst[out - 1] == ' '))
        continue;                 /* no leading or doubled blanks */
      dst[out++] = (char) c;
    }
  while (out > 0 && dst[out - 1] == ' ')
    out--;
  dst[out] = '\0';
}

gboolean
transport_address_is_safe (const char *addr)
{
  gsize len = addr != NULL ? strlen (addr) : 0;

  if (len == 0 || len > ADDRESS_MAX)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      unsigned char c = (unsigned char) addr[i];
      if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>')
        return FALSE;
    }
  return TRUE;
}

void
transport_job_set (DeliveryJob *job, DeliveryOutcome outcome, int code,
                   const char *reply)
{
  job->outcome = outcome;
  job->smtp_code = code;
  transport_safe_text (job->reply, sizeof job->reply, reply,
                       reply != NULL ? strlen (reply) : 0);
}

static void G_GNUC_PRINTF (2, 3)
attempt_fail (Attempt *a, const char *fmt, ...)
{
  va_list ap;

  if (a->reason[0] != '\0')
    return;                       /* the first cause is the real one */
  va_start (ap, fmt);
  g_autofree char *text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  transport_safe_text (a->reason, sizeof a->reason, text, strlen (text));
}

/* A certificate OpenSSL refused; a name mismatch is said as such. */
static void
attempt_fail_verify (Attempt *a, long vfy)
{
  gboolean name = vfy == X509_V_ERR_HOSTNAME_MISMATCH
    || vfy == X509_V_ERR_IP_ADDRESS_MISMATCH;

  attempt_fail (a, "TLS certificate %s (verify error %ld: %s)",
                name ? "does not name the relay" : "not trusted", vfy,
                X509_verify_cert_error_string (vfy));
}

/* ---- the AUTH guard: protocol monitor ---- */

static void
attempt_reply_done (Attempt *a, int code)
{
  a->last_code = code;
  transport_safe_text (a->last_reply, sizeof a->last_reply, a->line,
                       a->line_len);
  if (!a->auth_pending || code == 334)
    return;                       /* 334: the SASL exchange goes on */
  a->auth_pending = FALSE;
  if (code == 235)
    a->auth_ok = TRUE;
  else
    g_snprintf (a->auth_reply, sizeof a->auth_reply, "AUTH refused: %s",
                a->last_reply);
}

/* Called at each '\n' read: a final line ("NNN " or "NNN") ends a reply. */
static void
attempt_line_done (Attempt *a)
{
  const char *l = a->line;

  if (a->line_len >= 3 && g_ascii_isdigit (l[0]) && g_ascii_isdigit (l[1])
      && g_ascii_isdigit (l[2]) && (a->line_len == 3 || l[3] != '-'))
    attempt_reply_done (a, (l[0] - '0') * 100 + (l[1] - '0') * 10
                        + (l[2] - '0'));
  a->line_len = 0;
}

static void
monitor_read (Attempt *a, const char *buf, int len)
{
  for (int i = 0; i < len; i++)
    {
      if (buf[i] == '\n')
        attempt_line_done (a);
      else if (a->line_len + 1 < sizeof a->line)
        a->line[a->line_len++] = buf[i];
    }
}

static gboolean
buffer_has_mail (const char *buf, int len)
{
  static const char verb[] = "MAIL FROM:";
  const gsize vlen = sizeof verb - 1;

  for (int i = 0; i < len; i++)
    if ((i == 0 || buf[i - 1] == '\n') && (gsize) (len - i) >= vlen
        && g_ascii_strncasecmp (buf + i, verb, vlen) == 0)
      return TRUE;
  return FALSE;
}

/* Overwrites an outgoing buffer so that it says only QUIT. */
static void
blank_buffer (char *buf, int len)
{
  memset (buf, ' ', len);
  if (len >= 6)
    memcpy (buf, "QUIT\r\n", 6);
  if (len >= 2)
    memcpy (buf + len - 2, "\r\n", 2);
}

static void
attempt_cut (Attempt *a, char *buf, int len)
{
  a->cut = TRUE;
  if (a->fd >= 0)
    shutdown (a->fd, SHUT_RDWR);
  blank_buffer (buf, len);
  if (a->auth_attempted && a->auth_reply[0] != '\0')
    attempt_fail (a, "%s", a->auth_reply);
  else
    attempt_fail (a, "relay offers no AUTH");
}

static void
monitor_write (Attempt *a, char *buf, int len)
{
  if (a->cut)
    {
      blank_buffer (buf, len);    /* nothing more may leave */
      return;
    }
  if (!a->auth_required)
    return;
  if (len >= 5 && g_ascii_strncasecmp (buf, "AUTH ", 5) == 0)
    a->auth_attempted = a->auth_pending = TRUE;
  if (!a->auth_ok && buffer_has_mail (buf, len))
    attempt_cut (a, buf, len);
}

static void
monitor_cb (const char *buf, int buflen, int writing, void *arg)
{
  if (writing == SMTP_CB_READING)
    monitor_read (arg, buf, buflen);
  else if (writing == SMTP_CB_WRITING)
    monitor_write (arg, (char *) buf, buflen);  /* see the file header */
}

/* ---- TLS ---- */

static int
verify_cb (int preverify_ok, X509_STORE_CTX *store_ctx)
{
  SSL *ssl = X509_STORE_CTX_get_ex_data (store_ctx,
                                         SSL_get_ex_data_X509_STORE_CTX_idx ());
  Attempt *a = SSL_CTX_get_app_data (SSL_get_SSL_CTX (ssl));

  if (!preverify_ok && a != NULL && a->verify_error == X509_V_OK)
    a->verify_error = X509_STORE_CTX_get_error (store_ctx);
  return preverify_ok;
}

/* At handshake start: learn the socket (for the AUTH guard) and send SNI,
 * which libESMTP never does (LIBS.md 2).  No SNI for an IP literal. */
static void
info_cb (const SSL *cssl, int where, int ret)
{
  SSL *ssl = (SSL *) cssl;
  Attempt *a = SSL_CTX_get_app_data (SSL_get_SSL_CTX (ssl));
  const char *host;

  (void) ret;
  if (!(where & SSL_CB_HANDSHAKE_START) || a == NULL)
    return;
  a->fd = SSL_get_fd (ssl);
  host = a->t->cfg->smtp_host;
  if (!g_hostname_is_ip_address (host)
      && SSL_get_servername (ssl, TLSEXT_NAMETYPE_host_name) == NULL)
    SSL_set_tlsext_host_name (ssl, host);
}

/* One SSL_CTX per session, so the callbacks can find the Attempt. */
static SSL_CTX *
tls_ctx_new (const Transport *t, Attempt *a)
{
  SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());
  const char *host = t->cfg->smtp_host;
  X509_VERIFY_PARAM *param;
  int ok;

  if (ctx == NULL)
    return NULL;
  param = SSL_CTX_get0_param (ctx);
  /* TLS 1.3 is allowed: its ticket stall is handled by tls13_barrier. */
  ok = SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION)
    && (g_hostname_is_ip_address (host)
        ? X509_VERIFY_PARAM_set1_ip_asc (param, host)
        : X509_VERIFY_PARAM_set1_host (param, host, 0))
    && SSL_CTX_set_app_data (ctx, a);
  if (!ok)
    {
      SSL_CTX_free (ctx);
      return NULL;
    }
  SSL_CTX_set1_cert_store (ctx, t->store);
  SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER, verify_cb);
  SSL_CTX_set_info_callback (ctx, info_cb);
  return ctx;
}

static guint
timeout_of (const Config *cfg)
{
  return cfg->smtp_timeout_ms != 0 ? cfg->smtp_timeout_ms : DEFAULT_TIMEOUT_MS;
}

/* ---- TLS 1.3: the session-ticket barrier (see the file header) ---- */

/* Waits for fd to be ready for events until deadline (monotonic us). */
static gboolean
wait_fd (int fd, short events, gint64 deadline)
{
  struct pollfd p = { .fd = fd, .events = events };

  for (;;)
    {
      gint64 left_ms = (deadline - g_get_monotonic_time () + 999) / 1000;
      int r;

      if (left_ms <= 0)
        return FALSE;
      r = poll (&p, 1, (int) MIN (left_ms, (gint64) G_MAXINT));
      if (r > 0)
        return TRUE;
      if (r == 0 || errno != EINTR)
        return FALSE;
    }
}

/* After an SSL call returned ret <= 0: TRUE when it may be retried. */
static gboolean
ssl_wait (SSL *ssl, int ret, gint64 deadline)
{
  switch (SSL_get_error (ssl, ret))
    {
    case SSL_ERROR_WANT_READ:
      return wait_fd (SSL_get_fd (ssl), POLLIN, deadline);
    case SSL_ERROR_WANT_WRITE:
      return wait_fd (SSL_get_fd (ssl), POLLOUT, deadline);
    default:
      return FALSE;
    }
}

/* The code of the reply that buf[0..len) completes, 0 while it is not
 * complete, -1 when it is malformed or followed by more data. */
static int
reply_complete (const char *buf, gsize len)
{
  gsize start = 0;

  for (gsize i = 0; i < len; i++)
    {
      if (buf[i] != '\n')
        continue;
      const char *l = buf + start;
      gsize llen = i + 1 - start;
      if (llen < 4 || !g_ascii_isdigit (l[0]) || !g_ascii_isdigit (l[1])
          || !g_ascii_isdigit (l[2]))
        return -1;
      if (l[3] != '-')
        return i + 1 == len ? (l[0] - '0') * 100 + (l[1] - '0') * 10
                              + (l[2] - '0') : -1;
      start = i + 1;
    }
  return 0;
}

/* Sends NOOP and reads its reply; its code, or 0 (timeout, closed) or
 * -1 (malformed, unasked data).  The reply text goes to text. */
static int
barrier_exchange (SSL *ssl, gint64 deadline, char *text, gsize max)
{
  char buf[BARRIER_REPLY_MAX];
  gsize len = 0;
  int n, code = 0;

  while ((n = SSL_write (ssl, "NOOP\r\n", 6)) <= 0)
    if (!ssl_wait (ssl, n, deadline))
      return 0;
  while (code == 0 && len < sizeof buf)
    {
      n = SSL_read (ssl, buf + len, (int) (sizeof buf - len));
      if (n > 0)
        code = reply_complete (buf, len += n);
      else if (!ssl_wait (ssl, n, deadline))
        return 0;                 /* a ticket gives WANT_READ: go on */
    }
  transport_safe_text (text, max, buf, len);
  return code != 0 ? code : -1;
}

static void
tls13_barrier (Attempt *a, SSL *ssl)
{
  char reply[DELIVERY_REPLY_MAX];
  gint64 deadline;
  int code;

  if (ssl == NULL || SSL_version (ssl) < TLS1_3_VERSION)
    return;
  deadline = g_get_monotonic_time ()
    + (gint64) timeout_of (a->t->cfg) * 1000;
  code = barrier_exchange (ssl, deadline, reply, sizeof reply);
  if (code > 0 && code != 421)
    return;
  if (code == 421)
    attempt_fail (a, "relay refused the session: %s", reply);
  else if (code == 0)
    attempt_fail (a, "TLS 1.3: no reply to NOOP after the handshake");
  else
    attempt_fail (a, "TLS 1.3: unexpected data after the handshake");
  a->cut = TRUE;                  /* nothing more leaves (monitor_write) */
  shutdown (SSL_get_fd (ssl), SHUT_RDWR);
}

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
static void
relay_sockets_nodelay (guint port)
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

/* libESMTP's own checks after the handshake.  *ok starts at 0 and stays
 * 0 (QUIT) except for its host-name check, which cannot follow a CNAME or
 * read IP SANs: OpenSSL already enforced the configured name, so a clean
 * verify result is enough there. */
static void
event_cb (smtp_session_t session, int event, void *arg, ...)
{
  Attempt *a = arg;
  va_list ap;

  (void) session;
  va_start (ap, arg);
  switch (event)
    {
    case SMTP_EV_CONNECT:
      a->connected = TRUE;
      transport_watch_disarm (a->watch);
      relay_sockets_nodelay (a->t->cfg->smtp_port);
      break;
    case SMTP_EV_STARTTLS_OK:
      tls13_barrier (a, va_arg (ap, SSL *));
      break;
    case SMTP_EV_EXTNA_STARTTLS:
      attempt_fail (a, "relay offers no STARTTLS");
      break;
    case SMTP_EV_INVALID_PEER_CERTIFICATE:
      attempt_fail_verify (a, va_arg (ap, long));
      break;
    case SMTP_EV_WRONG_PEER_CERTIFICATE:
      {
        int *ok = va_arg (ap, int *);
        (void) va_arg (ap, const char *);
        SSL *ssl = va_arg (ap, SSL *);
        if (ok != NULL && ssl != NULL
            && SSL_get_verify_result (ssl) == X509_V_OK)
          *ok = 1;
        else
          attempt_fail (a, "TLS certificate does not name the relay");
        break;
      }
    case SMTP_EV_NO_PEER_CERTIFICATE:
      attempt_fail (a, "relay sent no TLS certificate");
      break;
    case SMTP_EV_WEAK_CIPHER:
      attempt_fail (a, "TLS cipher too weak");
      break;
    case SMTP_EV_NO_CLIENT_CERTIFICATE:
    case SMTP_EV_UNUSABLE_CLIENT_CERTIFICATE:
    case SMTP_EV_UNUSABLE_CA_LIST:
      attempt_fail (a, "unusable TLS client files under ~/.config/libesmtp");
      break;
    default:
      break;
    }
  va_end (ap);
}

/* ---- AUTH ---- */

static int
auth_interact (auth_client_request_t req, char **result, int fields,
               void *arg)
{
  const Transport *t = arg;

  for (int i = 0; i < fields; i++)
    {
      if (req[i].flags & AUTH_USER)
        result[i] = t->cfg->smtp_auth_user;
      else if (req[i].flags & AUTH_PASS)
        result[i] = t->password;
      else
        return 0;                 /* realm or other: we have none */
    }
  return 1;
}

static gpointer
auth_init_once (gpointer unused)
{
  (void) unused;
  auth_client_init ();
  return NULL;
}

static auth_context_t
auth_ctx_new (const Transport *t)
{
  static GOnce once = G_ONCE_INIT;
  auth_context_t ctx;

  g_once (&once, auth_init_once, NULL);
  ctx = auth_create_context ();
  if (ctx == NULL)
    return NULL;
  auth_set_mechanism_flags (ctx, AUTH_PLUGIN_PLAIN, 0);
  auth_set_interact_cb (ctx, auth_interact, (void *) t);
  return ctx;
}

/* ---- message data ---- */

/* libESMTP's message callback: len == NULL rewinds; *ctx is ours but
 * libESMTP free()s it, hence malloc.  Never hands out data once the
 * connection was cut. */
static const char *
feed_cb (void **ctx, int *len, void *arg)
{
  const Feed *f = arg;
  gsize *pos = *ctx;
  gsize size;
  const char *data;

  if (pos == NULL && (pos = *ctx = malloc (sizeof *pos)) != NULL)
    *pos = 0;
  if (len == NULL)
    {
      if (pos != NULL)
        *pos = 0;
      return NULL;
    }
  data = g_bytes_get_data (f->job->message, &size);
  if (pos == NULL || f->attempt->cut || data == NULL || *pos >= size)
    {
      *len = 0;
      return NULL;
    }
  gsize chunk = MIN (size - *pos, (gsize) FEED_CHUNK);
  *len = (int) chunk;
  *pos += chunk;
  return data + *pos - chunk;
}

/* ---- building and judging a session ---- */

static void
session_set_timeouts (smtp_session_t s, guint ms)
{
  static const int which[] = { Timeout_GREETING, Timeout_ENVELOPE,
                               Timeout_DATA, Timeout_TRANSFER, Timeout_DATA2 };

  for (gsize i = 0; i < G_N_ELEMENTS (which); i++)
    smtp_set_timeout (s, which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, ms);
}

static gboolean
session_setup (const Transport *t, smtp_session_t s, Attempt *a,
               SSL_CTX *tls, auth_context_t auth)
{
  const Config *cfg = t->cfg;
  const char *helo = cfg->smtp_helo_name != NULL ? cfg->smtp_helo_name
                                                 : g_get_host_name ();
  gboolean ok = smtp_set_hostname (s, helo)
    && smtp_set_eventcb (s, event_cb, a)
    && smtp_set_monitorcb (s, monitor_cb, a, 0);

  session_set_timeouts (s, timeout_of (cfg));
  if (cfg->smtp_tls == TLS_NONE)
    ok = ok && smtp_starttls_enable (s, Starttls_DISABLED);
  else
    ok = ok && tls != NULL && smtp_starttls_enable (s, Starttls_REQUIRED)
      && smtp_starttls_set_ctx (s, tls);
  if (auth != NULL)
    ok = ok && smtp_auth_set_context (s, auth);
  return ok;
}

static gboolean
feed_add (const Transport *t, smtp_session_t s, Feed *f)
{
  const DeliveryJob *job = f->job;

  f->message = smtp_add_message (s);
  if (f->message == NULL)
    return FALSE;
  /* Recipients live only in the envelope (SPEC Privacy, LIBS.md 1). */
  gboolean ok = smtp_set_reverse_path (f->message, job->envelope_from)
    && smtp_set_messagecb (f->message, feed_cb, f)
    && smtp_set_header_option (f->message, "Cc", Hdr_PROHIBIT, 1)
    && smtp_set_header_option (f->message, "Bcc", Hdr_PROHIBIT, 1);
  if (t->cfg->to_header == TO_HEADER_NONE)
    ok = ok && smtp_set_header_option (f->message, "To", Hdr_PROHIBIT, 1);
  f->recipient = ok ? smtp_add_recipient (f->message, job->recipient) : NULL;
  return f->recipient != NULL;
}

/* Why the session gave no per-job answer, as text. */
static void
attempt_explain (Attempt *a, int err)
{
  char buf[128];

  if (a->verify_error != X509_V_OK)
    attempt_fail_verify (a, a->verify_error);
  else if (err == SMTP_ERR_CLIENT_ERROR)
    {
      unsigned long e = ERR_peek_last_error ();
      const char *why = e != 0 ? ERR_reason_error_string (e) : NULL;
      attempt_fail (a, "TLS handshake failed%s%s%s", why ? " (" : "",
                    why ? why : "", why ? ")" : "");
    }
  else if (a->last_code >= 400)
    attempt_fail (a, "relay refused the session: %s", a->last_reply);
  else if (err < 0)
    attempt_fail (a, "connect failed: %s", g_strerror (-err));
  else if (err == SMTP_ERR_DROPPED_CONNECTION)  /* also how timeouts end */
    attempt_fail (a, "connection lost or timed out");
  else if (err != 0 && err != SMTP_ERR_INVAL)
    attempt_fail (a, "SMTP session failed: %s",
                  smtp_strerror (err, buf, sizeof buf));
  else
    attempt_fail (a, "SMTP session ended without an answer");
}

static void
status_text (char *dst, gsize max, const smtp_status_t *st)
{
  g_autofree char *text = g_strdup_printf ("%d %s", st->code,
                                           st->text ? st->text : "");
  transport_safe_text (dst, max, text, strlen (text));
}

/* Sets the outcome from a 4xx/5xx status; FALSE if st holds neither. */
static gboolean
judge_failure (DeliveryJob *job, const smtp_status_t *st)
{
  char text[DELIVERY_REPLY_MAX];

  if (st == NULL || st->code < 400 || st->code > 599)
    return FALSE;
  status_text (text, sizeof text, st);
  transport_job_set (job, st->code >= 500 ? DELIVERY_PERMFAIL
                     : DELIVERY_TEMPFAIL, st->code, text);
  return TRUE;
}

/* The status pointers point into the message and recipient objects
 * (1.1.0 api.c), so they stay valid until smtp_destroy_session. */
/* The session ended before this transaction began: no reply to its
 * MAIL FROM, its RCPT or its data (a relay that hung up after a few
 * messages, or a connection lost between two of them). */
static gboolean
never_tried (Feed *f)
{
  const smtp_status_t *path = smtp_reverse_path_status (f->message);
  const smtp_status_t *msg = smtp_message_transfer_status (f->message);
  const smtp_status_t *rcpt = smtp_recipient_status (f->recipient);

  return (path == NULL || path->code == 0) && (msg == NULL || msg->code == 0)
         && (rcpt == NULL || rcpt->code == 0);
}

static void
judge (Feed *f, Attempt *a, DeliveryJob *job)
{
  const smtp_status_t *msg = smtp_message_transfer_status (f->message);
  const smtp_status_t *rcpt = smtp_recipient_status (f->recipient);
  char text[DELIVERY_REPLY_MAX];

  if (!a->cut && msg != NULL && msg->code == 250 && rcpt != NULL
      && rcpt->code / 100 == 2)
    {
      status_text (text, sizeof text, msg);
      transport_job_set (job, DELIVERY_SENT, 250, text);
      return;
    }
  if (!a->cut && (judge_failure (job, rcpt)
                  || judge_failure (job, smtp_reverse_path_status (f->message))
                  || judge_failure (job, msg)))
    return;
  transport_job_set (job, DELIVERY_TEMPFAIL, 0, a->reason);
}

static void
fail_all (DeliveryJob *jobs, guint n, const gboolean *to_send, const char *why)
{
  for (guint i = 0; i < n; i++)
    if (to_send[i])
      transport_job_set (&jobs[i], DELIVERY_TEMPFAIL, 0, why);
}

/* Runs the session against each resolved address in turn until one
 * connects; connect() is bounded by one watch over them all.  A second
 * smtp_start_session after a failed connect is safe: nothing was sent,
 * so every recipient is still incomplete (LIBS.md 3). */
static void
session_run (const Transport *t, smtp_session_t s, Attempt *a,
             GPtrArray *targets)
{
  guint budget = timeout_of (t->cfg);
  int err = 0;

  a->watch = transport_watch_start (budget);
  for (guint i = 0; i < targets->len && !a->connected; i++)
    {
      g_autofree char *server = g_strdup_printf (
        "%s:%u", (const char *) g_ptr_array_index (targets, i),
        t->cfg->smtp_port);
      if (!smtp_set_server (s, server))
        break;
      /* smtp_errno is sticky (LIBS.md 1): a refused call sets it to a
       * known value, so an old error is never blamed on this session. */
      smtp_message_transfer_status (NULL);
      ERR_clear_error ();
      smtp_start_session (s);
      err = smtp_errno ();
    }
  if (!a->connected && transport_watch_expired (a->watch))
    attempt_fail (a, "connect timed out after %u ms", budget);
  attempt_explain (a, err);
  transport_watch_free (a->watch);
  a->watch = NULL;
}

/* Runs one session over the jobs marked in to_send.  Returns how many
 * were sent; marks in untried those the session never reached. */
static guint
smtp_deliver (const Transport *t, DeliveryJob *jobs, guint n,
              const gboolean *to_send, GPtrArray *targets, gboolean *untried)
{
  guint sent = 0;
  Attempt a = { .t = t, .fd = -1, .verify_error = X509_V_OK,
                .auth_required = t->cfg->smtp_auth_user != NULL };
  g_autofree Feed *feeds = g_new0 (Feed, n);
  smtp_session_t s = smtp_create_session ();
  SSL_CTX *tls = t->cfg->smtp_tls == TLS_NONE ? NULL : tls_ctx_new (t, &a);
  auth_context_t auth = a.auth_required ? auth_ctx_new (t) : NULL;
  gboolean ok = s != NULL && session_setup (t, s, &a, tls, auth)
    && (!a.auth_required || auth != NULL);

  for (guint i = 0; ok && i < n; i++)
    if (to_send[i])
      {
        feeds[i] = (Feed) { .job = &jobs[i], .attempt = &a };
        ok = feed_add (t, s, &feeds[i]);
      }
  if (!ok)
    fail_all (jobs, n, to_send, "SMTP setup failed");
  else
    {
      session_run (t, s, &a, targets);
      for (guint i = 0; i < n; i++)
        if (to_send[i])
          {
            judge (&feeds[i], &a, &jobs[i]);
            sent += jobs[i].outcome == DELIVERY_SENT;
            untried[i] = !a.cut && jobs[i].outcome == DELIVERY_TEMPFAIL
                         && never_tried (&feeds[i]);
          }
    }
  if (s != NULL)
    smtp_destroy_session (s);   /* drops libESMTP's reference to tls */
  if (auth != NULL)
    auth_destroy_context (auth);
  SSL_CTX_free (tls);
  return sent;
}

/* tls=none: config.c let only loopback hosts through, but a name is
 * resolved again for every batch.  Keep the literal loopback addresses
 * and drop the rest, names included (libESMTP would look a name up
 * once more); FALSE when nothing is left. */
static gboolean
targets_loopback_only (GPtrArray *targets)
{
  for (guint i = targets->len; i-- > 0;)
    {
      const char *target = g_ptr_array_index (targets, i);
      if (!g_hostname_is_ip_address (target) || !config_host_is_loopback (target))
        g_ptr_array_remove_index (targets, i);
    }
  return targets->len > 0;
}

void
transport_deliver (Transport *t, DeliveryJob *jobs, guint n)
{
  g_return_if_fail (t != NULL && (jobs != NULL || n == 0));

  if (t->cfg->transport == TRANSPORT_FILE)
    {
      transport_file_deliver (t->cfg->outbox_dir, jobs, n);
      return;
    }

  g_autofree gboolean *to_send = g_new0 (gboolean, n);
  guint count = 0;
  for (guint i = 0; i < n; i++)
    {
      DeliveryJob *job = &jobs[i];
      if (!transport_address_is_safe (job->recipient)
          || !transport_address_is_safe (job->envelope_from)
          || job->message == NULL)
        transport_job_set (job, DELIVERY_PERMFAIL, 0, "invalid address");
      else
        {
          to_send[i] = TRUE;
          count++;
        }
    }
  if (count == 0)
    return;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) targets = transport_resolve (
    t->cfg->smtp_host, timeout_of (t->cfg), &error);
  if (targets == NULL)
    {
      fail_all (jobs, n, to_send, error->message);
      return;
    }
  if (t->cfg->smtp_tls == TLS_NONE && !targets_loopback_only (targets))
    {
      fail_all (jobs, n, to_send, "clear text only to a loopback address: "
                "the relay's name resolved elsewhere");
      return;
    }
  /* A relay may end a session after some messages (a cap per
   * connection, a 421 between two): the transactions it never began go
   * out at once on a new connection, as long as the last one delivered
   * something.  Bounded: every session but the last sends at least one. */
  g_autofree gboolean *untried = g_new0 (gboolean, n);
  for (guint round = 0; round < TRANSPORT_MAX_SESSIONS; round++)
    {
      guint sent = smtp_deliver (t, jobs, n, to_send, targets, untried);
      guint again = 0;
      for (guint i = 0; i < n; i++)
        again += (to_send[i] = untried[i]);
      /* Stopping: no new session; the rest stays deferred. */
      if (sent == 0 || again == 0 || (t->stop != NULL && g_atomic_int_get (t->stop)))
        break;
      memset (untried, 0, n * sizeof *untried);
    }
}

void
transport_set_stop (Transport *t, const gint *stop)
{
  g_return_if_fail (t != NULL);
  t->stop = stop;
}

/* ---- set-up ---- */

static X509_STORE *
store_new (const char *ca_file, GError **error)
{
  X509_STORE *store = X509_STORE_new ();
  int ok = store != NULL
    && (ca_file != NULL ? X509_STORE_load_file (store, ca_file)
                        : X509_STORE_set_default_paths (store));

  if (ok && ca_file != NULL)
    {
      STACK_OF (X509_OBJECT) *objs = X509_STORE_get0_objects (store);
      ok = objs != NULL && sk_X509_OBJECT_num (objs) > 0;
    }
  if (!ok)
    {
      unsigned long e = ERR_get_error ();
      g_set_error (error, TRANSPORT_ERROR, TRANSPORT_ERROR_TLS,
                   "cannot load trusted CAs from %s: %s",
                   ca_file ? ca_file : "the system store",
                   e ? ERR_reason_error_string (e) : "no certificate found");
      X509_STORE_free (store);
      ERR_clear_error ();
      return NULL;
    }
  return store;
}

static gboolean
check_smtp_config (const Config *cfg, GError **error)
{
  const char *bad = NULL;
  const char *helo = cfg->smtp_helo_name;
  const char *user = cfg->smtp_auth_user;

  if (cfg->smtp_host == NULL || !transport_address_is_safe (cfg->smtp_host))
    bad = "smtp host";
  else if (strchr (cfg->smtp_host, ':') != NULL)
    /* smtp_set_server splits "host:port" at the first colon. */
    bad = "smtp host: IPv6 literals are not supported, use a name";
  else if (helo != NULL && !transport_address_is_safe (helo))
    bad = "smtp helo_name";
  else if (user != NULL && (!transport_address_is_safe (user)
                            || strlen (user) > AUTH_FIELD_MAX))
    bad = "smtp auth_user";
  else if (user != NULL
           && (cfg->smtp_password.value == NULL || cfg->smtp_password.len == 0
               || cfg->smtp_password.len > AUTH_FIELD_MAX
               || memchr (cfg->smtp_password.value, '\0',
                          cfg->smtp_password.len) != NULL))
    bad = "smtp password (empty, over 255 bytes or holding NUL)";
  if (bad == NULL)
    return TRUE;
  g_set_error (error, TRANSPORT_ERROR, TRANSPORT_ERROR_CONFIG,
               "invalid %s", bad);
  return FALSE;
}

Transport *
transport_new (const Config *cfg, GError **error)
{
  g_return_val_if_fail (cfg != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* libESMTP writes with write(2): a relay that hangs up must give
   * EPIPE, not kill the daemon (LIBS.md 3).  Process-wide, on purpose. */
  signal (SIGPIPE, SIG_IGN);

  if (cfg->transport == TRANSPORT_FILE)
    {
      if (!transport_file_prepare (cfg->outbox_dir, error))
        return NULL;
      Transport *t = g_new0 (Transport, 1);
      t->cfg = cfg;
      return t;
    }
  if (!check_smtp_config (cfg, error))
    return NULL;
  X509_STORE *store = NULL;
  if (cfg->smtp_tls != TLS_NONE
      && (store = store_new (cfg->smtp_ca_file, error)) == NULL)
    return NULL;

  Transport *t = g_new0 (Transport, 1);
  t->cfg = cfg;
  t->store = store;
  if (cfg->smtp_auth_user != NULL)
    {
      t->password_len = cfg->smtp_password.len;
      t->password = g_malloc (t->password_len + 1);
      memcpy (t->password, cfg->smtp_password.value, t->password_len);
      t->password[t->password_len] = '\0';
    }
  return t;
}

void
transport_free (Transport *t)
{
  if (t == NULL)
    return;
  if (t->password != NULL)
    {
      explicit_bzero (t->password, t->password_len);
      g_free (t->password);
    }
  X509_STORE_free (t->store);
  g_free (t);
}
