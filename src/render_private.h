/*
 * render_private.h - what the render files share and nothing else
 * includes: the parsed file (Part), the loaded set (struct Templates),
 * the placeholder names, the renderer's own words per language, and the
 * few helpers each layer offers the one above.
 *
 * Layers, each file using only those below it (no circles):
 *   render_policy.c  parsing with the safe options and the template
 *                    policy (tree, URL and style checks); tree helpers
 *   render_time.c    the meeting time in the reader's words and zone
 *   render_text.c    the plain-text twin of an XHTML tree  (policy)
 *   render_load.c    reading the files and the logo        (policy)
 *   render_fill.c    filling, the layout, serialising      (all above)
 */
#ifndef INVITEMAIL_RENDER_PRIVATE_H
#define INVITEMAIL_RENDER_PRIVATE_H

#include <libxml/tree.h>

#include "render.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (xmlDoc, xmlFreeDoc)

#define XHTML_NS       "http://www.w3.org/1999/xhtml"
/* The cancellation's template: needs no link, and no request can name it. */
#define CANCEL_NAME    "cancel"

typedef enum {
  PH_LINK, PH_BOOKING, PH_STAFF, PH_MEETING_TIME,
  PH_ORG_NAME, PH_DPO_EMAIL, PH_SLOGAN, PH_MEETING_END, PH_CONTACT, PH_UNIT, PH_N
} Placeholder;

/* The data-im names, indexed by Placeholder. */
extern const char *const placeholder_names[PH_N];

typedef enum { PART_TEMPLATE, PART_NOTICE, PART_SIGNATURE } PartKind;

/* One parsed, checked file. */
typedef struct {
  xmlDoc *doc;
  xmlNode *body;          /* the <body> element inside doc */
  char *subject;          /* templates only: the normalised <title> */
  char *unapproved;       /* the file's path when it is marked as an
                             unapproved translation, else NULL */
  gboolean is_cancel;     /* CANCEL_NAME.LANG: the cancellation, no link */
  char *version;          /* notices only: the version attribute, or NULL */
  char sha256[SHA256_HEX_SIZE];
} Part;

struct Templates {
  GHashTable *templates;  /* "NAME.LANG" -> Part */
  GHashTable *notices;    /* LANG -> Part */
  GHashTable *signatures; /* LANG -> Part */
  GBytes *logo;
  char logo_sha256[SHA256_HEX_SIZE];
  guint logo_width;
  guint logo_height;
};

/* ---- render_policy.c ---------------------------------------------------- */

gboolean node_is (const xmlNode *n, const char *name);
/* The first child element called name, or NULL. */
xmlNode *child_element (const xmlNode *parent, const char *name);
/* The Placeholder called name, or -1. */
int placeholder_find (const char *name);
/* The value of attribute name on el, or NULL. (transfer full) */
char *attr_get (const xmlNode *el, const char *name);
/* The same without a copy when it can: the value lives as long as el;
 * a copy, when one is needed, goes to *owned. (transfer none) */
const char *attr_peek (const xmlNode *el, const char *name, char **owned);
/* Is name (ASCII case-insensitive) in the NULL-terminated list? */
gboolean name_in (const char *name, const char *const *list);
/*
 * Parses data as XML with the safe options; any error, even one libxml2
 * recovers from (an undefined entity), fails.  what names the file in
 * the message.  (transfer full)
 */
xmlDoc *parse_xml (const char *data, gsize len, const char *what, GError **error);
/*
 * Parses one file's bytes and applies the policy for its kind: the
 * tree check, then a template's subject and link, a notice's
 * dpo_email and version.  Fills doc, body, subject, version and
 * is_cancel; the caller adds sha256 and unapproved.  what names the
 * file in the message.  (transfer full)
 */
Part *part_parse (const char *data, gsize len, const char *what, PartKind kind,
                  gboolean is_cancel, GError **error);
void part_free (Part *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Part, part_free)

/* ---- render_time.c ------------------------------------------------------ */

/* Words that the renderer itself writes, per language. */
typedef struct {
  const char *lang;
  const char *days[7];    /* Monday first, as GDateTime counts */
  const char *months[12];
  const char *at;         /* between the date and the clock time */
  char clock_sep;         /* between hours and minutes: 11.00, 11:00 */
  const char *alt_before; /* the logo's alt text: before and after */
  const char *alt_after;  /* the organisation's name */
} LangWords;

/* The words for lang, or NULL for a language without words here. */
const LangWords *lang_words_find (const char *lang);
/* dt in the zone named tz_name (NULL: the default); an unknown name
 * falls back to UTC. (transfer full) */
GDateTime *to_zone (GDateTime *dt, const char *tz_name);
/* "torsdag 4 december 2026 kl. 11.00", no zone; ISO 8601 when w is
 * NULL. (transfer full) */
char *format_day_time (GDateTime *local, const LangWords *w);

/* ---- render_text.c ------------------------------------------------------ */

/* The text of root's <body> (or of root, head skipped), folded at 78
 * characters. (transfer full) */
char *tree_to_text (xmlNode *root, GError **error);

#endif
