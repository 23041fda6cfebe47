/*
 * transport_tls.h - the TLS side of the SMTP backend: trusted CAs, one
 * verifying SSL_CTX per session, and the TLS 1.3 ticket barrier.  Only
 * OpenSSL here; transport_smtp.c wires it into libESMTP.  Private to the
 * transport files (and test_transport.c).
 *
 * Include <openssl/ssl.h> before this header (the libESMTP include order
 * in transport_smtp.c wants it first anyway).
 */
#ifndef INVITEMAIL_TRANSPORT_TLS_H
#define INVITEMAIL_TRANSPORT_TLS_H

#include <glib.h>
#include <openssl/ssl.h>

/* What one session's TLS callbacks fill in or call.  Lives as long as
 * the SSL_CTX made for it (its app data). */
typedef struct {
  const char *host;   /* the configured relay: name or IP literal */
  int fd;             /* the socket, learnt at handshake start; -1 before */
  long verify_error;  /* first certificate error, X509_V_OK if none */
  gint64 deadline;    /* monotonic us; a read after it fails; 0: none */
  gboolean expired;   /* a read was refused for the deadline */
  /* Called at handshake start, before the ClientHello leaves, with the
   * socket in fd.  NULL: nothing to call. */
  void (*handshake_start) (void *arg, SSL *ssl);
  void *arg;
} TlsPeer;

/* The trusted CAs: ca_file (at least one certificate in it), or
 * OpenSSL's default paths when ca_file is NULL.  (transfer full) */
X509_STORE *transport_tls_store_new (const char *ca_file, GError **error);

/* A client SSL_CTX for one session: TLS 1.2 or later, the peer verified
 * against store, peer->host checked by OpenSSL (set1_host, or set1_ip
 * for a literal), SNI sent, peer filled in by the callbacks.  NULL when
 * OpenSSL refuses.  From handshake start, every read from the socket
 * after peer->deadline fails and shuts the socket down.  (transfer full) */
SSL_CTX *transport_tls_ctx_new (X509_STORE *store, TlsPeer *peer);

/* Plain words for a certificate OpenSSL refused; a name mismatch is said
 * as such.  (transfer full) */
char *transport_tls_verify_text (long vfy);

/* The TLS 1.3 ticket barrier, right after the handshake (see
 * transport_tls.c): TRUE when the connection may go on.  FALSE with why
 * filled: the connection is shut down and must carry nothing more. */
gboolean transport_tls_barrier (SSL *ssl, guint timeout_ms, char *why,
                                gsize max);

#endif
