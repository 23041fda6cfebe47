/*
 * refusal.c - names and default texts of the stable refusal codes, and
 * the one way to fill a Refusal.
 *
 * The code names are part of the protocol contract (invitemaild(8)): the
 * table below may only grow.  The test suite checks that every code has
 * a distinct, lowercase name and a text.
 *
 * SECURITY: refusal_set masks every byte of the message and field that
 * is not printable ASCII and cuts both to their fixed size, so a caller
 * that formats a value into a message can never put a line break, a
 * control or an unbounded string into an answer or a log line.  Callers
 * still must not format request values (addresses, links) into messages:
 * masking keeps the protocol safe, not the data private.
 */
#include "refusal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  const char *name;
  const char *text;
} RefusalInfo;

static const RefusalInfo refusal_table[REFUSAL_N_CODES] = {
  [REFUSAL_NONE] = { "none", "no refusal" },
  [REFUSAL_MALFORMED] = { "malformed",
    "the request is not lines of name=value ended by an empty line" },
  [REFUSAL_LINE_TOO_LONG] = { "line_too_long",
    "a line of the request is too long" },
  [REFUSAL_REQUEST_TOO_LARGE] = { "request_too_large",
    "the request is too large" },
  [REFUSAL_TOO_MANY_ATTRIBUTES] = { "too_many_attributes",
    "the request has too many lines" },
  [REFUSAL_UNKNOWN_ATTRIBUTE] = { "unknown_attribute",
    "the request has an attribute that is not known for this request" },
  [REFUSAL_REPEATED_ATTRIBUTE] = { "repeated_attribute",
    "an attribute that may appear only once is repeated" },
  [REFUSAL_UNKNOWN_REQUEST] = { "unknown_request",
    "the request must be send, preview, status, cancel or ping" },
  [REFUSAL_MISSING_FIELD] = { "missing_field",
    "a required attribute is missing" },
  [REFUSAL_INVALID_VALUE] = { "invalid_value",
    "a value is not valid" },
  [REFUSAL_INVALID_LINK] = { "invalid_link",
    "the meeting link is not a valid link" },
  [REFUSAL_LINK_NOT_HTTPS] = { "link_not_https",
    "the meeting link must start with https://" },
  [REFUSAL_LINK_HOST_NOT_ALLOWED] = { "link_host_not_allowed",
    "the meeting link points at a host that is not allowed" },
  [REFUSAL_INVALID_ADDRESS] = { "invalid_address",
    "a recipient is not a valid mail address" },
  [REFUSAL_ADDRESS_UTF8] = { "address_utf8",
    "a recipient address has non-ASCII characters before the @" },
  [REFUSAL_NO_RECIPIENTS] = { "no_recipients",
    "the invitation has no recipients" },
  [REFUSAL_TOO_MANY_RECIPIENTS] = { "too_many_recipients",
    "the invitation has too many recipients" },
  [REFUSAL_UNKNOWN_TEMPLATE] = { "unknown_template",
    "there is no such template" },
  [REFUSAL_UNKNOWN_LANG] = { "unknown_lang",
    "the template does not exist in this language" },
  [REFUSAL_INVALID_MEETING_TIME] = { "invalid_meeting_time",
    "the meeting time is not an RFC 3339 time with an offset" },
  [REFUSAL_MEETING_PASSED] = { "meeting_passed",
    "the meeting time has already passed" },
  [REFUSAL_NOT_FOUND] = { "not_found",
    "there is no invitation with this id" },
  [REFUSAL_CONFLICT] = { "conflict",
    "the idempotency key was already used for another request" },
  [REFUSAL_NOT_AUTHORIZED] = { "not_authorized",
    "this user may not use the invitation service" },
  [REFUSAL_BUSY] = { "busy",
    "the service is busy; try again later" },
  [REFUSAL_TIMEOUT] = { "timeout",
    "the request was not completed in time" },
  [REFUSAL_UNAVAILABLE] = { "unavailable",
    "the invitation could not be stored; try again later" },
  [REFUSAL_INTERNAL] = { "internal",
    "an internal error occurred" },
  [REFUSAL_RATE_LIMITED] = { "rate_limited",
    "this user has sent as many invitations as allowed for now; try again later" },
  [REFUSAL_NOT_DSN] = { "not_dsn",
    "the message is not a delivery status notification that can be read" },
  [REFUSAL_UNKNOWN_TOKEN] = { "unknown_token",
    "the bounce names no return token of this service" },
  [REFUSAL_NOT_SENT] = { "not_sent",
    "the recipient of this return token was never handed to the relay" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (refusal_table) == REFUSAL_N_CODES);

/* Unknown codes (a programmer error) read as "internal" rather than
 * indexing out of the table. */
static const RefusalInfo *
refusal_info (RefusalCode code)
{
  if ((int) code < 0 || code >= REFUSAL_N_CODES
      || refusal_table[code].name == NULL)
    return &refusal_table[REFUSAL_INTERNAL];
  return &refusal_table[code];
}

const char *
refusal_code_name (RefusalCode code)
{
  return refusal_info (code)->name;
}

const char *
refusal_code_text (RefusalCode code)
{
  return refusal_info (code)->text;
}

/* Replaces every byte that is not printable ASCII by '?'. */
static void
refusal_mask (char *s)
{
  for (; *s != '\0'; s++)
    if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
      *s = '?';
}

gboolean
refusal_set (Refusal *r, RefusalCode code, const char *field,
             const char *fmt, ...)
{
  g_return_val_if_fail (r != NULL, FALSE);

  refusal_clear (r);
  r->code = code;
  if (field != NULL)
    g_strlcpy (r->field, field, sizeof r->field);
  if (fmt != NULL)
    {
      va_list ap;

      va_start (ap, fmt);
      /* vsnprintf cuts at the buffer size and always terminates. */
      if (vsnprintf (r->message, sizeof r->message, fmt, ap) < 0)
        r->message[0] = '\0';
      va_end (ap);
    }
  if (r->message[0] == '\0')
    g_strlcpy (r->message, refusal_code_text (code), sizeof r->message);
  refusal_mask (r->field);
  refusal_mask (r->message);
  return FALSE;
}

void
refusal_clear (Refusal *r)
{
  g_return_if_fail (r != NULL);
  memset (r, 0, sizeof *r);
}
