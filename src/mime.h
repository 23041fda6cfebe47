/*
 * mime.h - builds and serialises the message with GMime (mime.c; the
 * only other file that includes GMime is dsn.c, which reads DSNs).
 *
 * Structure:
 *   multipart/alternative
 *     text/plain; charset=utf-8 (quoted-printable)
 *     multipart/related; type="text/html"
 *       text/html; charset=utf-8 (quoted-printable)
 *       image/png (base64, inline, Content-ID)
 * and with a calendar entry (a meeting time was given) all of that as
 * the first part of a multipart/mixed whose second part is
 *     text/calendar; method=PUBLISH|CANCEL; name=invite.ics (attachment)
 * Headers: From, Subject (RFC 2047), Date, Message-ID on our domain,
 * MIME-Version, Auto-Submitted: auto-generated, X-Auto-Response-Suppress:
 * All (Exchange: no out-of-office replies), Content-Language;
 * no To/Cc/Bcc, or `To: undisclosed-recipients:;` when asked (GMime
 * writes it as `undisclosed-recipients: ;`, the same group).
 * Every input is checked: CR/LF or controls in a header value, a
 * non-ASCII or spaced address/domain/id, or a logo that is not a PNG
 * give MIME_ERROR_FAILED.
 * Serialised with CRLF line ends (libESMTP splits lines only at CRLF).
 *
 * SECURITY: no recipient address is ever given to this module, so no
 * address can reach the message bytes.
 */
#ifndef INVITEMAIL_MIME_H
#define INVITEMAIL_MIME_H

#include <glib.h>
#include "render.h"

GQuark mime_error_quark (void);
#define MIME_ERROR (mime_error_quark ())
typedef enum { MIME_ERROR_FAILED } MimeError;

typedef struct {
  const char *from_name;          /* organisation name, UTF-8 */
  const char *from_addr;          /* ASCII mailbox */
  const char *message_id_domain;  /* right side of Message-ID */
  gboolean to_undisclosed;        /* write To: undisclosed-recipients:; */
  GDateTime *date;                /* Date header; injectable for tests */
  const char *message_id;         /* bare id (no <>), or NULL to generate */
  const char *logo_cid;           /* Content-ID of the logo, no <>; the
                                     HTML refers to it as cid:LOGO_CID
                                     (same value as RenderOrg.logo_cid) */
  const char *calendar;           /* invite.ics text (CRLF), or NULL */
  const char *calendar_method;    /* "PUBLISH" or "CANCEL" with it */
} MimeOptions;

/* Call once from the main thread before any other mime_ call. */
void mime_init (void);
void mime_shutdown (void);

/*
 * Builds the message (transfer full).  *message_id_out (optional) gets
 * the bare Message-ID used (transfer full).
 */
GBytes *mime_build (const Rendered *r, const MimeOptions *opt,
                    char **message_id_out, GError **error);

/*
 * The decoded text of the text/calendar part of a message mime_build
 * made, and its Content-Language (transfer full each); NULL with
 * MIME_ERROR_FAILED when there is none.  For a cancellation, which
 * needs the entry's UID and times.
 */
char *mime_calendar_text (GBytes *message, char **lang_out, GError **error);

#endif
