/*
 * transport_smtp.h - one libESMTP session (transport_smtp.c), for the
 * SMTP backend's batch driver (transport_relay.c).  Private to the
 * transport files.  Include <openssl/ssl.h> first.
 */
#ifndef INVITEMAIL_TRANSPORT_SMTP_H
#define INVITEMAIL_TRANSPORT_SMTP_H

#include <openssl/ssl.h>
#include "transport_private.h"

/* libESMTP's PLAIN plugin copies user and password into a 513-byte
 * buffer: each must fit in 255 bytes. */
#define TRANSPORT_AUTH_FIELD_MAX 255

/* What every session needs, built once by the backend's prepare. */
typedef struct {
  const Config *cfg;
  X509_STORE *store;   /* trusted CAs, NULL for tls=none */
  char *password;      /* NUL-terminated copy, wiped on free */
  gsize password_len;
} SmtpRelay;

/* Process-wide set-up libESMTP needs (SIGPIPE ignored, the SASL client
 * initialised once).  Idempotent. */
void transport_smtp_init (void);

/* The per-step timeout in ms (cfg's, or the default when unset);
 * transport_relay.c. */
guint transport_smtp_timeout (const Config *cfg);

/* Runs one session over the jobs of run marked in to_send, trying
 * targets (from transport_resolve) in turn until one connects, and fills
 * each such job's outcome.  A job whose data the relay answered is
 * reported (transport_report) at once, inside the session; the caller
 * reports the rest.  Returns how many were sent; marks in untried those
 * the session never began (no reply to their MAIL, RCPT or data). */
guint transport_smtp_session (const SmtpRelay *r, TransportRun *run,
                              const gboolean *to_send, GPtrArray *targets,
                              gboolean *untried);

#endif
