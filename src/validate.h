/*
 * validate.h - the one gate: a raw request becomes an Invitation here
 * or is refused with a stable code.
 *
 * Invitation is opaque: only validate.c can make one, so everything
 * downstream (render, mime, queue) can only ever see checked values.
 *
 * SECURITY: every value here came from a local peer we do not trust.
 * Links are https only, parsed with GUri, host on the allow-list, no
 * userinfo, no whitespace or controls.  Addresses are one RFC 5321
 * mailbox (dot-atom local part, ASCII), the domain turned into A-labels
 * with g_hostname_to_ascii; CR, LF, NUL, controls, '<', '>', spaces and
 * quotes are refused because they would go verbatim into RCPT TO.
 */
#ifndef INVITEMAIL_VALIDATE_H
#define INVITEMAIL_VALIDATE_H

#include <glib.h>
#include "refusal.h"
#include "request.h"
#include "envelope.h"     /* ADDRESS_MAX and the wire's address rule */

#define LINK_MAX            2048
#define BOOKING_MAX_CHARS   64    /* booking: characters (validate_free_text) */
#define UNIT_MAX_CHARS      100   /* unit: characters */
#define FREE_TEXT_MAX_BYTES 400   /* any free text, bytes of UTF-8 */
#define STAFF_MAX           64
#define IDEMPOTENCY_KEY_MAX 128
#define RECIPIENTS_HARD_MAX 100   /* max_recipients may not exceed this */
#define INVITE_ID_LEN       20    /* [0-9a-z]{20}, made by the daemon */
/* A meeting without meeting_end or duration lasts this long; none may
 * last longer than MEETING_MAX_MINUTES (one day). */
#define MEETING_DEFAULT_MINUTES 30
#define MEETING_MAX_MINUTES     1440

typedef enum {
  REQUEST_KIND_PING,
  REQUEST_KIND_SEND,
  REQUEST_KIND_PREVIEW,
  REQUEST_KIND_STATUS,
  REQUEST_KIND_BOUNCE,            /* a DSN read by `invitemail bounce` */
  REQUEST_KIND_HEALTH,
  REQUEST_KIND_CANCEL
} RequestKind;

typedef struct Invitation Invitation;

/* Answers whether a template exists in a language; lets validation stay
 * independent of how templates are stored. */
typedef gboolean (*TemplateLookup) (const char *name, const char *lang,
                                    gpointer user_data);

typedef struct {
  const char *const *link_hosts;  /* NULL-terminated: "host" or "*.domain" */
  guint max_recipients;           /* 1..RECIPIENTS_HARD_MAX */
  const char *default_lang;       /* used when lang= is absent */
  const char *default_template;   /* "evisit" */
  TemplateLookup have_template;
  gpointer have_template_data;
  GDateTime *now;                 /* meeting_time must be after this */
} ValidateContext;

/*
 * Reads request=...; refuses unknown_request / missing_field.  Also
 * refuses attributes that do not belong to the kind (e.g. bcc in a
 * ping) with unknown_attribute and the field named.
 */
gboolean validate_kind (const RawRequest *req, RequestKind *kind, Refusal *why);

/*
 * For send and preview: checks every attribute and builds *out
 * (transfer full).  Recipients are de-duplicated (domain compared
 * without case, local part as given) keeping first-seen order.
 */
gboolean validate_invitation (const RawRequest *req, const ValidateContext *ctx,
                              Invitation **out, Refusal *why);

/* The pieces, exposed for the unit tests and the fuzzers. */
gboolean validate_link (const char *link, const char *const *link_hosts,
                        char **normalized, Refusal *why);
gboolean validate_address (const char *addr, char **ascii, Refusal *why);
gboolean validate_invite_id (const char *id, Refusal *why);
/*
 * Free text that reaches the message (booking, unit): 1..max_chars
 * characters of letters, marks, digits, single inner spaces and
 * - _ . , : ; ' ( ) & # / +; nothing that looks like a link, a domain
 * or an address ("@", "//", a "." or ":" not followed by a space,
 * ",", ";", ")" or the end, except a ":" between digits).  Refuses invalid_value with
 * field set to the given name.
 */
gboolean validate_free_text (const char *field, const char *value,
                             guint max_chars, Refusal *why);
/* True when host matches one allow-list entry ("*.d" = any sub-host of d). */
gboolean validate_host_allowed (const char *ascii_host,
                                const char *const *link_hosts);

void invitation_free (Invitation *inv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Invitation, invitation_free)

/* Accessors; all (transfer none), valid while the Invitation lives. */
const char *invitation_link (const Invitation *inv);
const char *invitation_link_host (const Invitation *inv);   /* A-label form */
guint invitation_n_recipients (const Invitation *inv);
const char *invitation_recipient (const Invitation *inv, guint i);
const char *invitation_booking (const Invitation *inv);     /* may be NULL */
const char *invitation_staff (const Invitation *inv);       /* may be NULL */
const char *invitation_lang (const Invitation *inv);
const char *invitation_template (const Invitation *inv);
GDateTime *invitation_meeting_time (const Invitation *inv); /* may be NULL */
/* Set exactly when the meeting time is: from meeting_end, from
 * duration, or MEETING_DEFAULT_MINUTES after the start. */
GDateTime *invitation_meeting_end (const Invitation *inv);  /* may be NULL */
const char *invitation_idempotency_key (const Invitation *inv); /* may be NULL */
const char *invitation_unit (const Invitation *inv);        /* may be NULL */

/*
 * SHA-256 (hex) over a canonical encoding of every field, for the
 * idempotency check: the same key with another request is a conflict.
 */
char *invitation_fingerprint (const Invitation *inv);

#endif
