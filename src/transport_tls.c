/*
 * transport_tls.c - TLS for the SMTP backend, OpenSSL only: the trusted
 * CAs, one verifying SSL_CTX per session, SNI, and the TLS 1.3 ticket
 * barrier.  transport_smtp.c hands the SSL_CTX to libESMTP, which runs
 * the handshake itself.
 *
 * Verification is OpenSSL's, enforced in the handshake: SSL_VERIFY_PEER
 * against our own store and the configured host checked with set1_host
 * (set1_ip for a literal), so a wrong name aborts the handshake before a
 * byte of SMTP is sent over it.  libESMTP sends no SNI; the info
 * callback sets it at handshake start.  The first certificate error is
 * kept for the reply text.
 *
 * Deadline: libESMTP runs the handshake and every later read itself,
 * restarting its timeout at each one, and shows us no byte of the
 * handshake.  So at handshake start a callback goes on the socket's BIO:
 * every read OpenSSL makes after the session's deadline fails and shuts
 * the socket down.  A relay that drips its handshake (or anything after
 * it) is cut at its first byte past the deadline; a silent one by
 * libESMTP's own timeout.
 *
 * TLS 1.3 (why a NOOP goes out before libESMTP's EHLO): after the
 * handshake a TLS 1.3 server sends NewSessionTicket records.  libESMTP
 * 1.1.0 buffers EHLO, then polls for read and write together; when a
 * ticket has arrived by then, it takes the read branch first, SSL_read
 * consumes the ticket and wants more, and libESMTP waits for a reply to
 * an EHLO it never flushed: a stall until the timeout (93 of 300
 * loopback sessions against a fast threaded server).  So right after the
 * handshake, before libESMTP writes EHLO, transport_tls_barrier sends
 * NOOP through the SSL itself and reads its reply: the server sent its
 * tickets before it read our NOOP, so by the time its reply has come
 * every ticket has been consumed, and the race is gone (0 of 700).  It
 * costs one round trip per TLS 1.3 connection, none for TLS 1.2.  A
 * barrier that fails (no reply within the timeout, 421, data we did not
 * ask for) shuts the connection down: the jobs are deferred and retried.
 *
 * TRUSTS: the host and CA file from the configuration.  The relay's
 * bytes are hostile: the NOOP reply is bounded (BARRIER_REPLY_MAX) and
 * made printable before it leaves this file.
 */
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "transport_private.h"
#include "transport_tls.h"

#define BARRIER_REPLY_MAX 512    /* a NOOP reply longer than this is odd */

char *
transport_tls_verify_text (long vfy)
{
  gboolean name = vfy == X509_V_ERR_HOSTNAME_MISMATCH
    || vfy == X509_V_ERR_IP_ADDRESS_MISMATCH;

  return g_strdup_printf ("TLS certificate %s (verify error %ld: %s)",
                          name ? "does not name the relay" : "not trusted",
                          vfy, X509_verify_cert_error_string (vfy));
}

static int
verify_cb (int preverify_ok, X509_STORE_CTX *store_ctx)
{
  SSL *ssl = X509_STORE_CTX_get_ex_data (store_ctx,
                                         SSL_get_ex_data_X509_STORE_CTX_idx ());
  TlsPeer *p = SSL_CTX_get_app_data (SSL_get_SSL_CTX (ssl));

  if (!preverify_ok && p != NULL && p->verify_error == X509_V_OK)
    p->verify_error = X509_STORE_CTX_get_error (store_ctx);
  return preverify_ok;
}

/* Every socket read, once the handshake starts: none after the deadline. */
static long
bio_cb (BIO *bio, int oper, const char *argp, size_t len, int argi,
        long argl, int ret, size_t *processed)
{
  TlsPeer *p = (TlsPeer *) BIO_get_callback_arg (bio);

  (void) argp;
  (void) len;
  (void) argi;
  (void) argl;
  (void) processed;
  if (oper != BIO_CB_READ || p == NULL || p->deadline == 0
      || g_get_monotonic_time () < p->deadline)
    return ret;
  p->expired = TRUE;
  if (p->fd >= 0)
    shutdown (p->fd, SHUT_RDWR);
  /* The read fails for good: no retry flag left from an earlier EAGAIN,
   * or OpenSSL would report WANT_READ and libESMTP would poll again. */
  BIO_clear_retry_flags (bio);
  return -1;
}

/* At handshake start: learn the socket, watch its reads (the deadline)
 * and send SNI (libESMTP sends none); no SNI for an IP literal.  Then
 * the owner's hook. */
static void
info_cb (const SSL *cssl, int where, int ret)
{
  SSL *ssl = (SSL *) cssl;
  TlsPeer *p = SSL_CTX_get_app_data (SSL_get_SSL_CTX (ssl));

  (void) ret;
  if (!(where & SSL_CB_HANDSHAKE_START) || p == NULL)
    return;
  p->fd = SSL_get_fd (ssl);
  BIO *rbio = SSL_get_rbio (ssl);
  if (rbio != NULL && BIO_get_callback_ex (rbio) == NULL)
    {
      BIO_set_callback_arg (rbio, (char *) p);
      BIO_set_callback_ex (rbio, bio_cb);
    }
  if (!g_hostname_is_ip_address (p->host)
      && SSL_get_servername (ssl, TLSEXT_NAMETYPE_host_name) == NULL)
    SSL_set_tlsext_host_name (ssl, p->host);
  if (p->handshake_start != NULL)
    p->handshake_start (p->arg, ssl);
}

SSL_CTX *
transport_tls_ctx_new (X509_STORE *store, TlsPeer *peer)
{
  SSL_CTX *ctx = SSL_CTX_new (TLS_client_method ());
  X509_VERIFY_PARAM *param;
  int ok;

  if (ctx == NULL)
    return NULL;
  param = SSL_CTX_get0_param (ctx);
  /* TLS 1.3 is allowed: its ticket stall is handled by the barrier. */
  ok = SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION)
    && (g_hostname_is_ip_address (peer->host)
        ? X509_VERIFY_PARAM_set1_ip_asc (param, peer->host)
        : X509_VERIFY_PARAM_set1_host (param, peer->host, 0))
    && SSL_CTX_set_app_data (ctx, peer);
  if (!ok)
    {
      SSL_CTX_free (ctx);
      return NULL;
    }
  SSL_CTX_set1_cert_store (ctx, store);
  SSL_CTX_set_verify (ctx, SSL_VERIFY_PEER, verify_cb);
  SSL_CTX_set_info_callback (ctx, info_cb);
  return ctx;
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

gboolean
transport_tls_barrier (SSL *ssl, guint timeout_ms, char *why, gsize max)
{
  char reply[DELIVERY_REPLY_MAX];
  gint64 deadline;
  int code;

  if (ssl == NULL || SSL_version (ssl) < TLS1_3_VERSION)
    return TRUE;
  deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  code = barrier_exchange (ssl, deadline, reply, sizeof reply);
  if (code > 0 && code != 421)
    return TRUE;
  if (code == 421)
    g_snprintf (why, max, "relay refused the session: %s", reply);
  else if (code == 0)
    g_strlcpy (why, "TLS 1.3: no reply to NOOP after the handshake", max);
  else
    g_strlcpy (why, "TLS 1.3: unexpected data after the handshake", max);
  shutdown (SSL_get_fd (ssl), SHUT_RDWR);
  return FALSE;
}

/* ---- set-up ---- */

X509_STORE *
transport_tls_store_new (const char *ca_file, GError **error)
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
