/*
 * refusal.h - the stable refusal codes of the socket protocol.
 *
 * Every refusal the daemon answers carries one of these codes as
 * `error=CODE`.  The strings are part of the contract with the booking
 * tool (invitemaild(8), Refusal codes): never rename one, only add.  A
 * Refusal also names the one field at fault (or none) and plain words
 * for a person.
 *
 * SECURITY: Refusal.message is built by us, never copied from the
 * request, so it can be logged and sent back without leaking input.
 */
#ifndef INVITEMAIL_REFUSAL_H
#define INVITEMAIL_REFUSAL_H

#include <glib.h>

typedef enum {
  REFUSAL_NONE = 0,
  REFUSAL_MALFORMED,            /* a line that is not name=value, CR, NUL */
  REFUSAL_LINE_TOO_LONG,
  REFUSAL_REQUEST_TOO_LARGE,
  REFUSAL_TOO_MANY_ATTRIBUTES,
  REFUSAL_UNKNOWN_ATTRIBUTE,
  REFUSAL_REPEATED_ATTRIBUTE,
  REFUSAL_UNKNOWN_REQUEST,
  REFUSAL_MISSING_FIELD,
  REFUSAL_INVALID_VALUE,        /* bad UTF-8, controls, bidi, syntax */
  REFUSAL_INVALID_LINK,
  REFUSAL_LINK_NOT_HTTPS,
  REFUSAL_LINK_HOST_NOT_ALLOWED,
  REFUSAL_INVALID_ADDRESS,
  REFUSAL_ADDRESS_UTF8,         /* UTF-8 local part: no SMTPUTF8 here */
  REFUSAL_NO_RECIPIENTS,
  REFUSAL_TOO_MANY_RECIPIENTS,
  REFUSAL_UNKNOWN_TEMPLATE,
  REFUSAL_UNKNOWN_LANG,
  REFUSAL_INVALID_MEETING_TIME,
  REFUSAL_MEETING_PASSED,
  REFUSAL_NOT_FOUND,            /* status for an id we do not know */
  REFUSAL_CONFLICT,             /* idempotency key reused for another request */
  REFUSAL_NOT_AUTHORIZED,       /* peer uid/gid not allowed */
  REFUSAL_BUSY,                 /* connection caps reached */
  REFUSAL_TIMEOUT,              /* client too slow */
  REFUSAL_UNAVAILABLE,          /* could not store durably; try again */
  REFUSAL_INTERNAL,
  REFUSAL_RATE_LIMITED,         /* the caller's per-uid limit is reached */
  REFUSAL_NOT_DSN,              /* bounce: not a delivery status notification */
  REFUSAL_UNKNOWN_TOKEN,        /* bounce: no return token, or not ours */
  REFUSAL_NOT_SENT,             /* bounce: that recipient was never sent */
  REFUSAL_N_CODES
} RefusalCode;

/* Longest field name and message we carry; longer text is cut. */
#define REFUSAL_FIELD_MAX 32
#define REFUSAL_MESSAGE_MAX 200

typedef struct {
  RefusalCode code;
  char field[REFUSAL_FIELD_MAX];       /* "" when no single field is at fault */
  char message[REFUSAL_MESSAGE_MAX];   /* plain words, one line, ASCII */
} Refusal;

/* Stable machine code, e.g. "link_host_not_allowed". Static storage. */
const char *refusal_code_name (RefusalCode code);

/* Default plain-words explanation for a code. Static storage. */
const char *refusal_code_text (RefusalCode code);

/*
 * Fills *r.  field may be NULL.  fmt may be NULL for the default text.
 * The formatted message is cut at REFUSAL_MESSAGE_MAX and any byte that
 * is not printable ASCII is replaced by '?', so callers must not (and
 * need not) worry about what they format into it.
 * Always returns FALSE, so validators can `return refusal_set (...)`.
 */
gboolean refusal_set (Refusal *r, RefusalCode code, const char *field,
                      const char *fmt, ...) G_GNUC_PRINTF (4, 5);

void refusal_clear (Refusal *r);

#endif
