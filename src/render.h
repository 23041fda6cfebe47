/*
 * render.h - invitation, privacy notice and signature into HTML and
 * plain text, through the libxml2 tree.
 *
 * Files (loaded once by templates_load, checked, kept parsed):
 *   TEMPLATES_DIR/NAME.LANG.xhtml            the invitation; <title> = subject
 *   TEMPLATES_DIR/privacy-notice.LANG.xhtml  mandatory, one per language
 *   SIGNATURES_DIR/evisit.LANG.xhtml          the eVisit signature
 *   SIGNATURES_DIR/logo.png                   the logo, inline by cid:
 *
 * The renderer owns the output skeleton (html/head/style/body): the
 * invitation template contributes only its <title> and the children of
 * its <body>; the signature and the notice are appended after it by the
 * renderer, so no template can leave the notice out or hide it with a
 * style sheet.
 *
 * Placeholders are elements carrying data-im="NAME"; the renderer
 * replaces their content (and for data-im="link" on <a>, the href) and
 * removes the attribute.  Names: link, booking, staff, meeting_time,
 * meeting_end, org_name, dpo_email, slogan, contact, unit.  An element whose
 * value is absent (no booking, no meeting time) is removed with its
 * data-im-block ancestor if it has one; an element with
 * data-im-absent="NAME" is kept only when NAME is absent (the words to
 * show instead, e.g. without a configured contact).
 *
 * SECURITY: request values enter only as text nodes (xmlNodeAddContent)
 * and attribute values (xmlSetProp), never by pasting strings.  Template
 * files are parsed with XML_PARSE_NONET and no entity expansion, and
 * refused if they hold entity references, an internal subset, <script>,
 * event-handler attributes, or processing instructions.
 */
#ifndef INVITEMAIL_RENDER_H
#define INVITEMAIL_RENDER_H

#include <glib.h>

#include "digest.h"
#include "validate.h"

#define TEMPLATE_MAX_BYTES (256 * 1024)
#define LOGO_MAX_BYTES     (256 * 1024)

typedef struct Templates Templates;

GQuark render_error_quark (void);
#define RENDER_ERROR (render_error_quark ())
typedef enum {
  RENDER_ERROR_MISSING,   /* a required file is absent */
  RENDER_ERROR_INVALID,   /* a file is not well-formed or breaks a rule */
  RENDER_ERROR_NO_NOTICE, /* a language has a template but no notice */
  RENDER_ERROR_FAILED     /* rendering itself failed */
} RenderError;

/*
 * Loads every NAME.LANG.xhtml in templates_dir, every notice, every
 * signature and the logo.  Fails if any file is broken, if the notice
 * or signature is missing for a language that has a template, or if
 * the logo is missing or not a PNG.  (transfer full)
 */
Templates *templates_load (const char *templates_dir, const char *signatures_dir,
                           GError **error);
void templates_free (Templates *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Templates, templates_free)

gboolean templates_have (const Templates *t, const char *name, const char *lang);
/* A TemplateLookup for ValidateContext; user_data is the Templates. */
gboolean templates_lookup (const char *name, const char *lang, gpointer t);

/*
 * What still stands in for the organisation's own material, one plain
 * sentence each: the generated logo, and every file whose leading
 * comment says "invitemail: translation not approved" (legal text
 * waiting for the organisation's approval or translator).  For
 * --check-config's warnings.  (transfer full)
 */
GPtrArray *templates_placeholders (const Templates *t);

/* Organisation values from [organisation]; trusted (config). */
typedef struct {
  const char *org_name;
  const char *dpo_email;
  const char *slogan;
  const char *logo_cid;   /* Content-ID without <>, e.g. "logo@example.org" */
  const char *timezone;   /* IANA zone of the times shown; NULL = the
                             default, RENDER_DEFAULT_TZ */
  const char *contact;    /* whom to call when the link fails, or NULL */
} RenderOrg;

#define RENDER_DEFAULT_TZ "Europe/Stockholm"

typedef struct {
  char *subject;          /* one line, UTF-8, from <title>, with the
                             meeting's start when there is one */
  char *title;            /* the <title> alone (a calendar's SUMMARY) */
  char *html;             /* XHTML serialisation, UTF-8, LF */
  char *text;             /* plain text, UTF-8, LF */
  char *lang;
  GBytes *logo;           /* PNG bytes (shared with Templates) */
  char template_sha256[SHA256_HEX_SIZE];   /* of the template file's bytes */
  char notice_sha256[SHA256_HEX_SIZE];     /* of the notice file's bytes */
  char signature_sha256[SHA256_HEX_SIZE];  /* of the signature file's bytes */
  /* For the audit: the notice's version name (the `version` attribute
   * on its <html>, [A-Za-z0-9._-]{1,64}; NULL when it has none) and the
   * SHA-256 of the notice as this mail shows it: the XHTML of its
   * filled section, so a changed dpo_email or name shows too. */
  char *notice_version;
  char notice_rendered_sha256[SHA256_HEX_SIZE];
} Rendered;

/*
 * Renders one invitation (transfer full).  The notice is always in
 * both html and text; RENDER_ERROR_FAILED only on internal failure.
 */
Rendered *render_invitation (const Templates *t, const RenderOrg *org,
                             const Invitation *inv, GError **error);
/*
 * The cancellation of an invite: TEMPLATES_DIR/cancel.LANG.xhtml (LANG
 * falling back to sv, then en), with the meeting's start and end (NULL
 * when the invite had none), the
 * organisation's values, the signature and the notice, like any
 * invitation but without a link.  No request can name the template
 * "cancel" (templates_have says no).  (transfer full)
 */
Rendered *render_cancellation (const Templates *t, const RenderOrg *org, const char *lang,
                               GDateTime *start, GDateTime *end, GError **error);

/*
 * The template policy alone, on one file's bytes, as templates_load
 * would check the file: parsed with the safe options, the tree, URL and
 * style checks, then the rules of its kind (a template's subject and
 * link, a cancellation's subject, a notice's dpo_email and version).
 * FALSE with RENDER_ERROR_INVALID when templates_load would refuse it.
 * For the policy's fuzz target.
 */
typedef enum {
  RENDER_FILE_TEMPLATE, RENDER_FILE_CANCEL, RENDER_FILE_NOTICE, RENDER_FILE_SIGNATURE
} RenderFile;
gboolean render_check_file (const char *data, gsize len, RenderFile kind, GError **error);

void rendered_free (Rendered *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Rendered, rendered_free)

/*
 * A meeting time as the mail shows it, in the organisation's zone
 * tz_name (NULL: RENDER_DEFAULT_TZ), in the given language: sv
 * "torsdag 4 december 2026 kl. 11.00 (svensk tid)", en "Thursday 4
 * December 2026 at 11:00 (Swedish time)"; a zone without words here is
 * shown as "(Europe/Helsinki, UTC+02:00)", a language without words as
 * "2026-12-04 11:00 (...)".  Own word tables, never the C locale.
 * (transfer full)
 */
char *render_format_time (GDateTime *dt, const char *lang, const char *tz_name);

/*
 * The end as the mail shows it after the start: "kl. 11.30" / "at
 * 11:30" on the same day, else the day and time without the zone.
 * (transfer full)
 */
char *render_format_end (GDateTime *start, GDateTime *end, const char *lang,
                         const char *tz_name);

/*
 * Plain text from an XHTML tree: skips head/style/script, one line per
 * block, blank line between paragraphs, <br/> as newline, list items
 * as "- ", links as "text <href>" (or just href when the text is it).
 * Exposed for the unit tests.  (transfer full)
 */
char *render_plain_text (const char *xhtml, gsize len, GError **error);

#endif
