/*
 * dsn.h - reads one delivery status notification (RFC 3464: a
 * multipart/report; report-type=delivery-status) and finds the return
 * token of the recipient it is about.
 *
 * Each recipient's envelope sender is LOCAL+TOKEN@DOMAIN (queue.h), so a
 * DSN about it is addressed to that return address.  The token is taken
 * from the envelope recipient when the mail system passes it (the
 * authority: `invitemail bounce --recipient`, or $ORIGINAL_RECIPIENT /
 * $RECIPIENT from Postfix local(8) and Exim); otherwise from the DSN's
 * X-Original-To, Delivered-To, Envelope-To and To headers and the
 * report's X-Postfix-Sender field, which must then all agree.
 *
 * TRUSTS nothing: the bytes come from any remote server, or anyone who
 * can mail the return address.  The input is capped (DSN_INPUT_MAX,
 * enforced by the caller), GMime parses the MIME structure, the status
 * fields are read by a small bounded parser here, and what leaves is
 * only a token shape, an action word, a status code and a diagnostic
 * made printable ASCII and cut like an SMTP reply.  The daemon checks
 * all of it again and maps the token to a recipient or refuses.
 */
#ifndef INVITEMAIL_DSN_H
#define INVITEMAIL_DSN_H

#include <glib.h>

#include "queue.h"

/* Largest message read: a DSN with the whole invite returned is about
 * 100 KiB; anything far beyond is not one of ours. */
#define DSN_INPUT_MAX (2 * 1024 * 1024)

GQuark dsn_error_quark (void);
#define DSN_ERROR (dsn_error_quark ())
typedef enum {
  DSN_ERROR_NOT_DSN,      /* not MIME, not multipart/report, broken fields */
  DSN_ERROR_NOT_FAILURE,  /* a DSN, but only delivered/relayed/expanded */
  DSN_ERROR_NO_TOKEN,     /* no return token found, or tokens disagree */
} DsnError;

typedef struct {
  char token[QUEUE_TOKEN_LEN + 1];
  char action[8];                     /* "failed" or "delayed" */
  char status[10];                    /* "5.1.1" */
  char diagnostic[QUEUE_DSN_DIAG_MAX]; /* safe text; "" when none */
} Dsn;

/*
 * Parses data (len bytes, at most DSN_INPUT_MAX).  envelope_rcpt is the
 * envelope recipient from the mail system, or NULL.  The first
 * per-recipient block whose action is failed wins, else the first
 * delayed one.  Fills *out or fails with DSN_ERROR.  Call mime_init()
 * first (it initialises GMime).
 */
gboolean dsn_parse (const char *data, gsize len, const char *envelope_rcpt,
                    Dsn *out, GError **error);

/* The token in an address (or any text holding one) of the form
 * LOCAL+TOKEN@domain, lower-cased into out; FALSE when there is none
 * or more than one different. */
gboolean dsn_token_in (const char *text, char out[QUEUE_TOKEN_LEN + 1]);

#endif
