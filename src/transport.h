/*
 * transport.h - hands finished messages to the relay (SMTP, through
 * libESMTP, which only transport_smtp.c includes) or to a folder (file
 * transport, for development and the quick start).  The backends behind
 * this contract are listed in transport.c.
 *
 * One call delivers a batch over one connection: one SMTP transaction
 * (MAIL, one RCPT, DATA) per job, so a relay that copies the envelope
 * into headers can never show one recipient's address to another, and
 * each recipient gets its own exact outcome, handed to the caller as
 * soon as the relay gave it (TransportDone), not at the batch's end.
 *
 * SECURITY:
 *  - our own SSL_CTX: verify peer, configured host name checked
 *    (X509_VERIFY_PARAM_set1_host), SNI sent, TLS 1.2 or later;
 *  - STARTTLS required unless tls=none, which config allows only toward
 *    a loopback host; a server without STARTTLS or with a bad
 *    certificate gets no MAIL FROM;
 *  - To, Cc, Bcc prohibited in libESMTP's header handling; recipients
 *    only in the envelope;
 *  - envelope addresses were validated (validate.c) and are checked
 *    again here for CR, LF, '<', '>' and controls before use;
 *  - a refused AUTH never leads to sending unauthenticated;
 *  - success is judged only from per-message and per-recipient status;
 *  - the server's reply is hostile: cut to DELIVERY_REPLY_MAX and made
 *    printable ASCII before anyone stores or logs it;
 *  - the password never reaches a log, the protocol monitor included.
 */
#ifndef INVITEMAIL_TRANSPORT_H
#define INVITEMAIL_TRANSPORT_H

#include <glib.h>
#include "config.h"

#define DELIVERY_REPLY_MAX 256
/* Sessions one transport_deliver may open for one batch: a relay that
 * ends sessions early gets a new one for what it never began, while
 * each delivers something, up to this many. */
#define TRANSPORT_MAX_SESSIONS 32
/* Every SMTP session (one connection) ends by this many times
 * [smtp] timeout after it began, plus one timeout for each transaction
 * the relay answered, however it paces its replies: libESMTP's own
 * timeout restarts at every read.  The credit lets a slow relay that
 * answers steadily finish a full batch instead of being cut (and sent
 * the message in flight again); a dripping one gets no more than one
 * timeout per message it actually answers. */
#define TRANSPORT_SESSION_TIMEOUTS 8

typedef enum {
  DELIVERY_SENT,       /* relay answered 250 to the end of DATA */
  DELIVERY_TEMPFAIL,   /* 4xx, no connection, TLS or AUTH trouble: retry */
  DELIVERY_PERMFAIL    /* 5xx for this recipient: final */
} DeliveryOutcome;

typedef struct {
  /* in */
  const char *recipient;      /* validated ASCII mailbox */
  const char *envelope_from;
  GBytes *message;            /* CRLF bytes from mime_build */
  const char *tag;            /* invite id + index, for file names; [0-9a-z.-] */
  /* out */
  DeliveryOutcome outcome;
  int smtp_code;              /* 0 when no reply was had */
  char reply[DELIVERY_REPLY_MAX];  /* safe text: what happened, for status and audit */
} DeliveryJob;

typedef struct Transport Transport;

GQuark transport_error_quark (void);
#define TRANSPORT_ERROR (transport_error_quark ())
typedef enum { TRANSPORT_ERROR_CONFIG, TRANSPORT_ERROR_TLS } TransportError;

/* Builds the transport (SSL_CTX, AUTH context, outbox check).  Call
 * once at start-up; fails on a bad CA file or outbox.  cfg must outlive
 * the Transport.  (transfer full) */
Transport *transport_new (const Config *cfg, GError **error);
void transport_free (Transport *t);

/*
 * Told that jobs[index] (of the jobs handed to transport_deliver_each)
 * has its final outcome, code and reply, on the delivering thread.
 * Called once per job, as soon as the outcome is known: for SMTP right
 * after the relay's reply to the end of that job's data (the relay holds
 * the message from then on, while the session goes on with the next
 * transaction), for the file transport once its files are in place;
 * jobs that end without a reply of their own (refused before any
 * session, a session lost or cut) when their session ends, at the
 * latest before transport_deliver_each returns.  It may block, e.g. to
 * record the outcome durably: the session waits, and the time spent
 * here does not count against its deadline.  It must not call into the
 * Transport.
 */
typedef void (*TransportDone) (DeliveryJob *jobs, guint index, gpointer data);

/*
 * Delivers n jobs over one connection (or n files) and fills each job's
 * outcome, code and reply.  Never fails as a whole: a connection that
 * cannot be made marks every job DELIVERY_TEMPFAIL with the reason.
 * If the relay ends the session early, the jobs it never began go over
 * a new connection (see TRANSPORT_MAX_SESSIONS), but only after a
 * session that delivered something.  Blocks for at most the name
 * lookup's timeout plus, per session, about
 * (TRANSPORT_SESSION_TIMEOUTS + 2 + jobs it answered) *
 * cfg->smtp_timeout_ms, plus the time spent in done.  done (NULL: none) hears of each job's outcome as
 * soon as it is final (TransportDone).
 */
void transport_deliver_each (Transport *t, DeliveryJob *jobs, guint n,
                             TransportDone done, gpointer data);

/* transport_deliver_each without a TransportDone: the outcomes are read
 * once it returns. */
void transport_deliver (Transport *t, DeliveryJob *jobs, guint n);

/* While *stop (read atomically) is non-zero, transport_deliver opens no
 * further session for a batch: the daemon is stopping.  stop must
 * outlive the Transport; NULL turns it off. */
void transport_set_stop (Transport *t, const gint *stop);

/* Makes hostile text safe: printable ASCII, cut to max-1 bytes. */
void transport_safe_text (char *dst, gsize max, const char *src, gsize len);

#endif
