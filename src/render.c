/*
 * render.c - invitation templates, the privacy notice and the eVisit
 * signature into one XHTML document and its plain-text twin.
 *
 * Loading (templates_load): every NAME.LANG.xhtml in templates_dir,
 * privacy-notice.LANG.xhtml, SIGNATURES_DIR/evisit.LANG.xhtml and
 * logo.png are read once (each at most TEMPLATE_MAX_BYTES or
 * LOGO_MAX_BYTES), hashed (SHA-256, for the audit), parsed and checked.
 * A language whose template has no notice or no signature fails the
 * whole load: the daemon must not start without its privacy notice.
 *
 * Rendering: the renderer owns the skeleton (doctype, html, head,
 * body).  From the invitation template it takes only the <title> (the
 * subject) and the children of <body>; the signature, the logo and the
 * notice follow in their own <div>s, so no template can drop the notice
 * or hide it with a style sheet (style sheets are refused).  Output is
 * written in libxml2's XHTML mode (LIBS.md 5): <p></p>, never <p/>.
 *
 * SECURITY: template files are trusted to come from the administrator,
 * but are still parsed with XML_PARSE_NONET and without NOENT, DTDLOAD
 * or XINCLUDE, so no entity is expanded and no file or URL is fetched
 * (LIBS.md 5: NONET alone does not stop file:// XXE).  They are refused
 * if they hold a DOCTYPE with declarations, an entity reference, a
 * processing instruction, CDATA, foreign namespaces, script-capable or
 * form elements, <style>, on* attributes, javascript:/data: URLs, any
 * src that is not cid: (no remote content, no tracking pixel), or
 * inline styles that could move content over the notice.  Request
 * values (untrusted, though validated) enter the output only through
 * xmlNodeAddContent and xmlSetProp, which escape them; nothing is ever
 * pasted into markup.  Parse errors go to a structured handler, never
 * to stderr.
 *
 * LIMITS: file sizes as above; nesting depth is libxml2's default
 * (256) since XML_PARSE_HUGE is never set; the logo at most
 * LOGO_MAX_SIDE pixels a side.
 */
#include "render.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>
#include "digest.h"
#include "names.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (xmlDoc, xmlFreeDoc)

#define XHTML_NS       "http://www.w3.org/1999/xhtml"
#define XHTML_PUBLIC   "-//W3C//DTD XHTML 1.0 Transitional//EN"
#define XHTML_SYSTEM   "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd"
/* Never NOENT, DTDLOAD, DTDATTR, DTDVALID, XINCLUDE or HUGE (LIBS.md 5). */
#define PARSE_OPTIONS  (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
#define NOTICE_NAME    "privacy-notice"
#define SIGNATURE_NAME "evisit"
/* The cancellation's template: needs no link, and no request can name it. */
#define CANCEL_NAME    "cancel"
#define LOGO_FILE      "logo.png"
#define LOGO_MAX_SIDE  1000
/* The first line of a template's leading comment while its legal text
 * still waits for the organisation's approval or translator. */
#define UNAPPROVED_MARK "invitemail: translation not approved"
/* SHA-256 of the logo contrib/make-logo.py draws (it is deterministic):
 * a placeholder, not the organisation's own logo. */
#define PLACEHOLDER_LOGO_SHA256 \
  "47871f7cf4927fcd3fbef5b25b95192b532e7ba63b88e124e3fae8e4afca062b"
/* Plain-text lines: 78 characters, RFC 5322's advice, and what fits a
 * phone without reflowing. */
#define TEXT_WIDTH     78

/*
 * Layout: tables, inline styles and bgcolor, because that is what every
 * client keeps (Gmail drops <style>, Outlook's Word engine drops div
 * borders, padding and max-width on blocks).  Every cell names both its
 * background and its text colour, so a client that darkens one of them
 * cannot leave dark text on a dark background; color-scheme says the
 * design is light, so clients that honour it do not invert it.  Colours:
 * text #1a1a1a on #ffffff (17:1), the notice on #eef2f7 (15:1), links
 * and the button #1f5fa8 (6.4:1 with white).
 */
#define COLOR_PAGE      "#f2f4f7"
#define COLOR_CARD      "#ffffff"
#define COLOR_NOTICE    "#eef2f7"
#define COLOR_TEXT      "#1a1a1a"
#define FONT            "font-family:Arial,Helvetica,sans-serif;"
#define STYLE_BODY      "margin:0;padding:0;color-scheme:light;" \
                        "background-color:" COLOR_PAGE ";color:" COLOR_TEXT ";"
#define STYLE_WRAPPER   "color-scheme:light;background-color:" COLOR_PAGE ";" \
                        "color:" COLOR_TEXT ";"
#define STYLE_OUTER_TD  "padding:16px 8px;"
#define STYLE_CARD      "width:100%;max-width:600px;background-color:" COLOR_CARD ";" \
                        "color:" COLOR_TEXT ";"
#define STYLE_CELL      FONT "font-size:16px;line-height:1.5;" \
                        "background-color:" COLOR_CARD ";color:" COLOR_TEXT ";" \
                        "overflow-wrap:anywhere;word-wrap:break-word;"
#define STYLE_INVITE    STYLE_CELL "padding:24px 24px 8px 24px;"
#define STYLE_SIGNATURE STYLE_CELL "padding:8px 24px 24px 24px;"
#define STYLE_NOTICE    FONT "font-size:15px;line-height:1.5;" \
                        "background-color:" COLOR_NOTICE ";color:" COLOR_TEXT ";" \
                        "border-top:4px solid #1f5fa8;padding:16px 24px;" \
                        "overflow-wrap:anywhere;word-wrap:break-word;"
#define STYLE_LOGO      "display:block;border:0;"

G_DEFINE_QUARK (render-error-quark, render_error)

typedef enum {
  PH_LINK, PH_BOOKING, PH_STAFF, PH_MEETING_TIME,
  PH_ORG_NAME, PH_DPO_EMAIL, PH_SLOGAN, PH_MEETING_END, PH_CONTACT, PH_UNIT, PH_N
} Placeholder;

static const char *const placeholder_names[PH_N] = {
  "link", "booking", "staff", "meeting_time", "org_name", "dpo_email", "slogan",
  "meeting_end", "contact", "unit"
};

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

/* How a zone is named in the mail, per language; other zones are
 * shown by their name and UTC offset. */
typedef struct {
  const char *zone;
  const char *sv;
  const char *en;
  const char *ar;
} ZoneWords;

static const ZoneWords zone_words[] = {
  { "Europe/Stockholm", "svensk tid", "Swedish time", "بتوقيت السويد" },
};

static const LangWords lang_words[] = {
  { "sv",
    { "måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag" },
    { "januari", "februari", "mars", "april", "maj", "juni", "juli",
      "augusti", "september", "oktober", "november", "december" },
    "kl.", '.', "eVisit-logotyp, ", "" },
  { "en",
    { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
      "Sunday" },
    { "January", "February", "March", "April", "May", "June", "July",
      "August", "September", "October", "November", "December" },
    "at", ':', "", " eVisit logo" },
  { "ar",
    { "الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد" },
    { "يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو",
      "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر" },
    "الساعة", ':', "شعار eVisit، ", "" },
};

static const LangWords *
lang_words_find (const char *lang)
{
  for (gsize i = 0; i < G_N_ELEMENTS (lang_words); i++)
    if (g_strcmp0 (lang_words[i].lang, lang) == 0)
      return &lang_words[i];
  return NULL;
}

/* ---- small helpers ------------------------------------------------ */

static gboolean
node_is (const xmlNode *n, const char *name)
{
  return n != NULL && n->type == XML_ELEMENT_NODE
         && strcmp ((const char *) n->name, name) == 0;
}

static xmlNode *
child_element (const xmlNode *parent, const char *name)
{
  for (xmlNode *c = parent ? parent->children : NULL; c != NULL; c = c->next)
    if (node_is (c, name))
      return c;
  return NULL;
}

static int
placeholder_find (const char *name)
{
  for (int i = 0; i < PH_N; i++)
    if (strcmp (placeholder_names[i], name) == 0)
      return i;
  return -1;
}

/* The value of attribute name on el, or NULL. (transfer full) */
static char *
attr_get (const xmlNode *el, const char *name)
{
  xmlChar *v = xmlGetNoNsProp (el, BAD_CAST name);
  char *copy = g_strdup ((const char *) v);
  xmlFree (v);
  return copy;
}

/* Collapses runs of ASCII white space to one space and trims. (transfer full) */
static char *
normalize_space (const char *s)
{
  GString *out = g_string_new (NULL);
  gboolean space = FALSE;

  for (; *s != '\0'; s++)
    {
      if (g_ascii_isspace (*s))
        {
          space = TRUE;
          continue;
        }
      if (space && out->len > 0)
        g_string_append_c (out, ' ');
      space = FALSE;
      g_string_append_c (out, *s);
    }
  return g_string_free (out, FALSE);
}

/*
 * Reads a regular file of at most max bytes.  The size is checked
 * before and while reading, so a huge or growing file costs at most
 * max + 1 bytes of memory.  (transfer full)
 */
static GBytes *
read_bounded (const char *path, gsize max, GError **error)
{
  struct stat st;
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

  if (fd < 0)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING, "%s: %s", path,
                   g_strerror (errno));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || (guint64) st.st_size > max)
    {
      close (fd);
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID,
                   "%s: not a regular file of at most %" G_GSIZE_FORMAT " bytes",
                   path, max);
      return NULL;
    }
  g_autofree char *buf = g_malloc (max + 1);
  gsize n = 0;
  ssize_t r = 0;
  while (n <= max && (r = read (fd, buf + n, max + 1 - n)) != 0)
    {
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        break;
      n += (gsize) r;
    }
  int saved = errno;
  close (fd);
  if (r < 0 || n > max)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID, "%s: %s", path,
                   r < 0 ? g_strerror (saved) : "file too large");
      return NULL;
    }
  return g_bytes_new (buf, n);
}

/* ---- parsing and checking ------------------------------------------ */

typedef struct {
  char *first;            /* the first error, "line N: message" */
} ParseErrors;

static void
parse_error_collect (void *data, xmlErrorPtr err)
{
  ParseErrors *pe = data;

  if (err == NULL || err->level < XML_ERR_ERROR || pe->first != NULL)
    return;
  g_autofree char *msg = g_strdup (err->message ? err->message : "error");
  pe->first = g_strdup_printf ("line %d: %s", err->line, g_strstrip (msg));
}

/*
 * Parses data as XML with the safe options; any error, even one libxml2
 * recovers from (an undefined entity), fails.  what names the file in
 * the message.  (transfer full)
 */
static xmlDoc *
parse_xml (const char *data, gsize len, const char *what, GError **error)
{
  ParseErrors pe = { NULL };
  xmlStructuredErrorFunc old_fn = xmlStructuredError;
  void *old_ctx = xmlStructuredErrorContext;

  if (len > G_MAXINT)
    len = G_MAXINT;   /* callers bound len far lower; keeps the cast sound */
  xmlSetStructuredErrorFunc (&pe, parse_error_collect);
  xmlDoc *doc = xmlReadMemory (data, (int) len, NULL, NULL, PARSE_OPTIONS);
  xmlSetStructuredErrorFunc (old_ctx, old_fn);
  if (doc == NULL || pe.first != NULL)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID,
                   "%s: not well-formed XML (%s)", what,
                   pe.first ? pe.first : "unknown error");
      g_free (pe.first);
      xmlFreeDoc (doc);
      return NULL;
    }
  return doc;
}

static const char *const forbidden_elements[] = {
  "script", "style", "iframe", "frame", "frameset", "object", "embed",
  "applet", "form", "input", "button", "select", "textarea", "base",
  "link", "svg", "math", "template", "audio", "video", "canvas", NULL
};

/* Elements allowed in <head> that must not reach the body. */
static const char *const head_only_elements[] = {
  "html", "head", "body", "title", "meta", NULL
};

static const char *const url_attributes[] = {
  "href", "action", "formaction", "cite", "longdesc", "usemap", NULL
};

/* Fetched when the mail is opened: only cid: parts of the message, so a
 * template cannot add a tracking pixel or any remote content. */
static const char *const resource_attributes[] = {
  "src", "srcset", "lowsrc", "dynsrc", "background", "poster", "data",
  "codebase", NULL
};

static gboolean
name_in (const char *name, const char *const *list)
{
  for (; *list != NULL; list++)
    if (g_ascii_strcasecmp (name, *list) == 0)
      return TRUE;
  return FALSE;
}

/* Lower case, without the white space and controls browsers ignore
 * inside a scheme ("java\tscript:"). (transfer full) */
static char *
compact_lower (const char *s)
{
  GString *out = g_string_new (NULL);

  for (; *s != '\0'; s++)
    if (!g_ascii_isspace (*s) && !g_ascii_iscntrl (*s))
      g_string_append_c (out, g_ascii_tolower (*s));
  return g_string_free (out, FALSE);
}

static gboolean
url_is_safe (const char *url)
{
  static const char *const bad[] = { "javascript:", "vbscript:", "data:", "file:", NULL };
  g_autofree char *c = compact_lower (url);

  for (const char *const *b = bad; *b != NULL; b++)
    if (g_str_has_prefix (c, *b))
      return FALSE;
  return TRUE;
}

static gboolean
resource_is_inline (const char *url)
{
  g_autofree char *c = compact_lower (url);
  return g_str_has_prefix (c, "cid:");
}

/* position could lay template content over the notice; the rest run code
 * or fetch resources in some clients. */
static gboolean
style_is_safe (const char *style)
{
  static const char *const bad[] = {
    "expression", "javascript", "vbscript", "url(", "@import", "behavior",
    "-moz-binding", "position", NULL
  };
  g_autofree char *c = compact_lower (style);

  for (const char *const *b = bad; *b != NULL; b++)
    if (strstr (c, *b) != NULL)
      return FALSE;
  return TRUE;
}

/* Checks that a data-im, data-im-block or data-im-absent value names a
 * placeholder. */
static gboolean
check_placeholder_attr (const char *name, const char *value, guint counts[PH_N],
                        GString *why)
{
  int ph = placeholder_find (value);

  if (ph < 0)
    {
      g_string_printf (why, "unknown placeholder %s=\"%.32s\"", name, value);
      return FALSE;
    }
  if (strcmp (name, "data-im") == 0)
    counts[ph]++;
  return TRUE;
}

/* An attribute's value as a GLib string, "" when empty. (transfer full) */
static char *
attr_value (const xmlAttr *a)
{
  xmlChar *v = xmlNodeListGetString (a->doc, a->children, 1);
  char *copy = g_strdup (v ? (const char *) v : "");
  xmlFree (v);
  return copy;
}

static gboolean
check_attribute (const xmlAttr *a, guint counts[PH_N], GString *why)
{
  const char *name = (const char *) a->name;
  g_autofree char *value = attr_value (a);
  if (a->ns != NULL && g_strcmp0 ((const char *) a->ns->href,
                                  (const char *) XML_XML_NAMESPACE) != 0)
    g_string_printf (why, "attribute %s in a foreign namespace", name);
  else if (g_ascii_strncasecmp (name, "on", 2) == 0)
    g_string_printf (why, "event-handler attribute %s", name);
  else if (name_in (name, url_attributes) && !url_is_safe (value))
    g_string_printf (why, "unsafe URL in attribute %s", name);
  else if (name_in (name, resource_attributes) && !resource_is_inline (value))
    g_string_printf (why, "attribute %s must name a cid: part", name);
  else if (g_ascii_strcasecmp (name, "style") == 0 && !style_is_safe (value))
    g_string_printf (why, "unsafe inline style");
  else if (strcmp (name, "data-im-href") == 0
           && !(node_is (a->parent, "a") && strcmp (value, "link") == 0))
    g_string_printf (why, "data-im-href=\"link\" only, and only on <a>");
  else if (strcmp (name, "data-im") == 0 || strcmp (name, "data-im-block") == 0
           || strcmp (name, "data-im-absent") == 0 || strcmp (name, "data-im-href") == 0)
    return check_placeholder_attr (name, value, counts, why);
  else if (g_str_has_prefix (name, "data-im"))
    g_string_printf (why, "unknown attribute %s", name);
  else
    return TRUE;
  return FALSE;
}

static gboolean
check_element (const xmlNode *el, gboolean in_body, guint counts[PH_N],
               GString *why)
{
  const char *name = (const char *) el->name;

  if (el->ns != NULL && g_strcmp0 ((const char *) el->ns->href, XHTML_NS) != 0)
    g_string_printf (why, "element <%s> in a foreign namespace", name);
  else if (name_in (name, forbidden_elements))
    g_string_printf (why, "element <%s> is not allowed", name);
  else if (in_body && name_in (name, head_only_elements))
    g_string_printf (why, "element <%s> inside <body>", name);
  else
    {
      for (const xmlAttr *a = el->properties; a != NULL; a = a->next)
        if (!check_attribute (a, counts, why))
          return FALSE;
      return TRUE;
    }
  return FALSE;
}

/* Walks a subtree; fills why and returns FALSE at the first fault. */
static gboolean
check_tree (const xmlNode *n, gboolean in_body, guint counts[PH_N], GString *why)
{
  for (; n != NULL; n = n->next)
    {
      switch (n->type)
        {
        case XML_TEXT_NODE:
        case XML_COMMENT_NODE:
          break;
        case XML_ELEMENT_NODE:
          if (!check_element (n, in_body, counts, why)
              || !check_tree (n->children, in_body || node_is (n, "body"),
                              counts, why))
            return FALSE;
          break;
        case XML_ENTITY_REF_NODE:
          g_string_printf (why, "entity reference &%s; (write the character itself)",
                           (const char *) n->name);
          return FALSE;
        case XML_PI_NODE:
          g_string_printf (why, "processing instruction <?%s?>", (const char *) n->name);
          return FALSE;
        case XML_CDATA_SECTION_NODE:
          g_string_printf (why, "CDATA section");
          return FALSE;
        default:
          g_string_printf (why, "unexpected node type %d", (int) n->type);
          return FALSE;
        }
    }
  return TRUE;
}

/* Document level: no DTD declarations, no PI, an <html> with a <body>. */
static gboolean
check_document (xmlDoc *doc, guint counts[PH_N], GString *why)
{
  xmlNode *root = xmlDocGetRootElement (doc);

  if ((doc->intSubset != NULL && doc->intSubset->children != NULL)
      || doc->extSubset != NULL)
    g_string_printf (why, "DOCTYPE with declarations (no entities or DTDs)");
  else if (!node_is (root, "html"))
    g_string_printf (why, "the root element is not <html>");
  else if (child_element (root, "body") == NULL)
    g_string_printf (why, "no <body>");
  else
    {
      for (xmlNode *n = doc->children; n != NULL; n = n->next)
        if (n->type == XML_PI_NODE)
          {
            g_string_printf (why, "processing instruction <?%s?>",
                             (const char *) n->name);
            return FALSE;
          }
      return check_tree (root, FALSE, counts, why);
    }
  return FALSE;
}

/* The subject: the <title>'s text, one line. (transfer full) */
static char *
title_text (xmlNode *root)
{
  xmlNode *title = child_element (child_element (root, "head"), "title");
  GString *s = g_string_new (NULL);

  for (xmlNode *c = title ? title->children : NULL; c != NULL; c = c->next)
    {
      if (c->type == XML_ELEMENT_NODE)
        {
          g_string_free (s, TRUE);
          return NULL;   /* markup in a subject line makes no sense */
        }
      if (c->type == XML_TEXT_NODE)
        g_string_append (s, (const char *) c->content);
    }
  g_autofree char *raw = g_string_free (s, FALSE);
  char *norm = normalize_space (raw);
  if (*norm == '\0')
    g_clear_pointer (&norm, g_free);
  return norm;
}

/* Kind-specific rules: a template needs a subject and a link; the
 * notice must name the data protection officer. */
static gboolean
check_kind (Part *part, PartKind kind, const guint counts[PH_N], GString *why)
{
  if (kind == PART_TEMPLATE)
    {
      part->subject = title_text (xmlDocGetRootElement (part->doc));
      if (part->subject == NULL)
        g_string_printf (why, "no <title> text (the subject)");
      else if (counts[PH_LINK] == 0 && !part->is_cancel)
        g_string_printf (why, "no data-im=\"link\" placeholder");
      else
        return TRUE;
      return FALSE;
    }
  if (kind == PART_NOTICE && counts[PH_DPO_EMAIL] == 0)
    {
      g_string_printf (why, "no data-im=\"dpo_email\" placeholder");
      return FALSE;
    }
  return TRUE;
}

static void
part_free (Part *p)
{
  if (p == NULL)
    return;
  xmlFreeDoc (p->doc);
  g_free (p->subject);
  g_free (p->unapproved);
  g_free (p->version);
  g_free (p);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Part, part_free)

/* A notice's version name: the `version` attribute of its <html>, for
 * the audit.  Absent is fine (NULL); present it must be a short plain
 * name, as it is copied into every accepted row. */
static gboolean
notice_version (Part *part, GString *why)
{
  xmlChar *v = xmlGetProp (xmlDocGetRootElement (part->doc), BAD_CAST "version");
  gsize n = v ? strlen ((const char *) v) : 0;
  gboolean ok = n <= 64 && (v == NULL || n > 0);

  for (gsize i = 0; ok && i < n; i++)
    ok = g_ascii_isalnum (v[i]) || v[i] == '.' || v[i] == '_' || v[i] == '-';
  if (!ok)
    g_string_printf (why, "version must be 1 to 64 of A-Z a-z 0-9 . _ -");
  else if (v != NULL)
    part->version = g_strdup ((const char *) v);
  xmlFree (v);
  return ok;
}

/* A comment before the root element saying UNAPPROVED_MARK: a
 * translation of the legal text that the organisation has not yet
 * approved.  Rendered all the same; --check-config warns. */
static gboolean
marked_unapproved (xmlDoc *doc)
{
  for (xmlNode *n = doc->children; n != NULL; n = n->next)
    if (n->type == XML_COMMENT_NODE && n->content != NULL
        && strstr ((const char *) n->content, UNAPPROVED_MARK) != NULL)
      return TRUE;
  return FALSE;
}

/* Reads, hashes, parses and checks one file. (transfer full) */
static Part *
part_load (const char *path, PartKind kind, gboolean is_cancel, GError **error)
{
  g_autoptr(GBytes) bytes = read_bounded (path, TEMPLATE_MAX_BYTES, error);
  if (bytes == NULL)
    return NULL;

  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  g_autoptr(Part) part = g_new0 (Part, 1);
  part->is_cancel = is_cancel;
  sha256_hex (data, len, part->sha256);
  part->doc = parse_xml (data, len, path, error);
  if (part->doc == NULL)
    return NULL;

  guint counts[PH_N] = { 0 };
  g_autoptr(GString) why = g_string_new (NULL);
  if (!check_document (part->doc, counts, why) || !check_kind (part, kind, counts, why)
      || (kind == PART_NOTICE && !notice_version (part, why)))
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID, "%s: %s", path, why->str);
      return NULL;
    }
  part->body = child_element (xmlDocGetRootElement (part->doc), "body");
  if (marked_unapproved (part->doc))
    part->unapproved = g_strdup (path);
  return g_steal_pointer (&part);
}

/* ---- loading directories --------------------------------------------- */

/* Splits "NAME.LANG.xhtml"; FALSE when it has another shape. */
static gboolean
split_file_name (const char *file, char **name, char **lang)
{
  gsize len = strlen (file) - strlen (".xhtml");
  const char *dot = g_strrstr_len (file, (gssize) len, ".");

  if (dot == NULL || !template_name_ok (file, dot - file)
      || !lang_tag_ok (dot + 1, (gssize) (len - (gsize) (dot - file) - 1)))
    return FALSE;
  *name = g_strndup (file, (gsize) (dot - file));
  *lang = g_strndup (dot + 1, len - (gsize) (dot - file) - 1);
  return TRUE;
}

/* Where a file of a directory goes; NULL means "ignore it". */
static GHashTable *
table_for (Templates *t, gboolean signatures, const char *name, const char *lang,
           PartKind *kind, char **key)
{
  if (signatures)
    {
      *kind = PART_SIGNATURE;
      *key = g_strdup (lang);
      return strcmp (name, SIGNATURE_NAME) == 0 ? t->signatures : NULL;
    }
  *kind = strcmp (name, NOTICE_NAME) == 0 ? PART_NOTICE : PART_TEMPLATE;
  *key = *kind == PART_NOTICE ? g_strdup (lang) : g_strdup_printf ("%s.%s", name, lang);
  return *kind == PART_NOTICE ? t->notices : t->templates;
}

static gboolean
load_entry (Templates *t, const char *dir, const char *file, gboolean signatures,
            GError **error)
{
  g_autofree char *name = NULL, *lang = NULL, *key = NULL;
  g_autofree char *path = g_build_filename (dir, file, NULL);
  PartKind kind;

  if (!split_file_name (file, &name, &lang))
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID,
                   "%s: file name is not NAME.LANG.xhtml", path);
      return FALSE;
    }
  GHashTable *table = table_for (t, signatures, name, lang, &kind, &key);
  if (table == NULL)
    return TRUE;
  Part *part = part_load (path, kind,
                          kind == PART_TEMPLATE && strcmp (name, CANCEL_NAME) == 0, error);
  if (part == NULL)
    return FALSE;
  g_hash_table_replace (table, g_steal_pointer (&key), part);
  return TRUE;
}

/* Loads every *.xhtml of dir; hidden and other files are ignored. */
static gboolean
load_dir (Templates *t, const char *dir, gboolean signatures, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GDir) d = g_dir_open (dir, 0, &local);
  const char *file;

  if (d == NULL)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING, "%s", local->message);
      return FALSE;
    }
  while ((file = g_dir_read_name (d)) != NULL)
    {
      if (file[0] == '.' || !g_str_has_suffix (file, ".xhtml"))
        continue;
      if (!load_entry (t, dir, file, signatures, error))
        return FALSE;
    }
  return TRUE;
}

/* PNG signature, then IHDR first (PNG spec 5.2, 11.2.2) for the size. */
static gboolean
logo_check (Templates *t, const char *path, GError **error)
{
  static const guint8 sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  gsize len;
  const guint8 *p = g_bytes_get_data (t->logo, &len);

  if (len >= 24 && memcmp (p, sig, 8) == 0 && memcmp (p + 12, "IHDR", 4) == 0)
    {
      t->logo_width = (guint) p[16] << 24 | (guint) p[17] << 16 | (guint) p[18] << 8 | p[19];
      t->logo_height = (guint) p[20] << 24 | (guint) p[21] << 16 | (guint) p[22] << 8 | p[23];
      if (t->logo_width > 0 && t->logo_width <= LOGO_MAX_SIDE
          && t->logo_height > 0 && t->logo_height <= LOGO_MAX_SIDE)
        return TRUE;
    }
  g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID,
               "%s: not a PNG image of at most %d pixels a side", path, LOGO_MAX_SIDE);
  return FALSE;
}

static gboolean
logo_load (Templates *t, const char *signatures_dir, GError **error)
{
  g_autofree char *path = g_build_filename (signatures_dir, LOGO_FILE, NULL);

  t->logo = read_bounded (path, LOGO_MAX_BYTES, error);
  if (t->logo == NULL || !logo_check (t, path, error))
    return FALSE;
  gsize len;
  const void *data = g_bytes_get_data (t->logo, &len);
  sha256_hex (data, len, t->logo_sha256);
  return TRUE;
}

/* Every template language needs its notice and its signature. */
static gboolean
check_languages (const Templates *t, GError **error)
{
  GHashTableIter it;
  gpointer key;

  if (g_hash_table_size (t->notices) == 0)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_NO_NOTICE,
                   "no privacy notice (%s.LANG.xhtml) found", NOTICE_NAME);
      return FALSE;
    }
  if (g_hash_table_size (t->templates) == 0)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING, "no invitation template found");
      return FALSE;
    }
  g_hash_table_iter_init (&it, t->templates);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      const char *lang = strrchr (key, '.') + 1;
      if (!g_hash_table_contains (t->notices, lang))
        g_set_error (error, RENDER_ERROR, RENDER_ERROR_NO_NOTICE,
                     "template %s has no privacy notice %s.%s.xhtml",
                     (const char *) key, NOTICE_NAME, lang);
      else if (!g_hash_table_contains (t->signatures, lang))
        g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING,
                     "template %s has no signature %s.%s.xhtml",
                     (const char *) key, SIGNATURE_NAME, lang);
      else
        continue;
      return FALSE;
    }
  return TRUE;
}

Templates *
templates_load (const char *templates_dir, const char *signatures_dir, GError **error)
{
  g_return_val_if_fail (templates_dir != NULL && signatures_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr(Templates) t = g_new0 (Templates, 1);
  t->templates = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) part_free);
  t->notices = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) part_free);
  t->signatures = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) part_free);
  if (!load_dir (t, templates_dir, FALSE, error)
      || !load_dir (t, signatures_dir, TRUE, error)
      || !logo_load (t, signatures_dir, error)
      || !check_languages (t, error))
    return NULL;
  return g_steal_pointer (&t);
}

void
templates_free (Templates *t)
{
  if (t == NULL)
    return;
  g_clear_pointer (&t->templates, g_hash_table_unref);
  g_clear_pointer (&t->notices, g_hash_table_unref);
  g_clear_pointer (&t->signatures, g_hash_table_unref);
  g_clear_pointer (&t->logo, g_bytes_unref);
  g_free (t);
}

gboolean
templates_have (const Templates *t, const char *name, const char *lang)
{
  g_return_val_if_fail (t != NULL, FALSE);
  if (name == NULL || lang == NULL)
    return FALSE;

  g_autofree char *key = g_strdup_printf ("%s.%s", name, lang);
  if (strcmp (name, CANCEL_NAME) == 0)
    return FALSE;   /* sent only by invitemail cancel, never asked for */
  return g_hash_table_contains (t->templates, key)
         && g_hash_table_contains (t->notices, lang)
         && g_hash_table_contains (t->signatures, lang);
}

gboolean
templates_lookup (const char *name, const char *lang, gpointer t)
{
  return templates_have (t, name, lang);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

static void
add_unapproved (GPtrArray *out, GHashTable *parts)
{
  GHashTableIter it;
  gpointer value;
  g_autoptr(GPtrArray) paths = g_ptr_array_new ();

  g_hash_table_iter_init (&it, parts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (((const Part *) value)->unapproved != NULL)
      g_ptr_array_add (paths, ((const Part *) value)->unapproved);
  /* hash order is arbitrary; the report should not be */
  g_ptr_array_sort (paths, compare_strings);
  for (guint i = 0; i < paths->len; i++)
    g_ptr_array_add (out, g_strdup_printf ("%s: translation not yet approved by "
                                           "the organisation",
                                           (const char *) g_ptr_array_index (paths, i)));
}

GPtrArray *
templates_placeholders (const Templates *t)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  g_return_val_if_fail (t != NULL, out);
  add_unapproved (out, t->notices);
  add_unapproved (out, t->templates);
  add_unapproved (out, t->signatures);
  if (strcmp (t->logo_sha256, PLACEHOLDER_LOGO_SHA256) == 0)
    g_ptr_array_add (out, g_strdup ("logo.png is the generated placeholder logo "
                                    "(contrib/make-logo.py)"));
  return out;
}

/* ---- the meeting time -------------------------------------------------- */

/* The zone as the reader's language names it. (transfer full) */
static char *
zone_label (GDateTime *local, const char *lang, const char *tz_name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (zone_words); i++)
    if (strcmp (zone_words[i].zone, tz_name) == 0)
      {
        if (g_strcmp0 (lang, "sv") == 0)
          return g_strdup (zone_words[i].sv);
        if (g_strcmp0 (lang, "en") == 0)
          return g_strdup (zone_words[i].en);
        if (g_strcmp0 (lang, "ar") == 0)
          return g_strdup (zone_words[i].ar);
      }
  gint64 minutes = g_date_time_get_utc_offset (local) / G_TIME_SPAN_MINUTE;
  char sign = minutes < 0 ? '-' : '+';
  minutes = ABS (minutes);
  return g_strdup_printf ("%s, UTC%c%02d:%02d", tz_name, sign,
                          (int) (minutes / 60), (int) (minutes % 60));
}

/* dt in the zone named tz_name (NULL: the default); an unknown name
 * (config.c refuses those) falls back to UTC rather than failing a
 * send. (transfer full) */
static GDateTime *
to_zone (GDateTime *dt, const char *tz_name)
{
  g_autoptr(GTimeZone) tz = g_time_zone_new_identifier (tz_name ? tz_name
                                                        : RENDER_DEFAULT_TZ);
  if (tz == NULL)
    tz = g_time_zone_new_utc ();
  return g_date_time_to_timezone (dt, tz);
}

/* "torsdag 4 december 2026 kl. 11.00", no zone. (transfer full) */
static char *
format_day_time (GDateTime *local, const LangWords *w)
{
  if (w == NULL)   /* a language without words here: ISO 8601 is neutral */
    return g_strdup_printf ("%04d-%02d-%02d %02d:%02d",
                            g_date_time_get_year (local), g_date_time_get_month (local),
                            g_date_time_get_day_of_month (local),
                            g_date_time_get_hour (local), g_date_time_get_minute (local));
  return g_strdup_printf ("%s %d %s %d %s %02d%c%02d",
                          w->days[g_date_time_get_day_of_week (local) - 1],
                          g_date_time_get_day_of_month (local),
                          w->months[g_date_time_get_month (local) - 1],
                          g_date_time_get_year (local), w->at,
                          g_date_time_get_hour (local), w->clock_sep,
                          g_date_time_get_minute (local));
}

char *
render_format_time (GDateTime *dt, const char *lang, const char *tz_name)
{
  g_return_val_if_fail (dt != NULL, NULL);

  const char *zone = tz_name ? tz_name : RENDER_DEFAULT_TZ;
  g_autoptr(GDateTime) local = to_zone (dt, zone);
  g_autofree char *day = format_day_time (local, lang_words_find (lang));
  g_autofree char *label = zone_label (local, lang, zone);
  return g_strdup_printf ("%s (%s)", day, label);
}

char *
render_format_end (GDateTime *start, GDateTime *end, const char *lang,
                   const char *tz_name)
{
  g_return_val_if_fail (start != NULL && end != NULL, NULL);

  const LangWords *w = lang_words_find (lang);
  g_autoptr(GDateTime) s = to_zone (start, tz_name);
  g_autoptr(GDateTime) e = to_zone (end, tz_name);
  gboolean same_day = g_date_time_get_year (s) == g_date_time_get_year (e)
                      && g_date_time_get_day_of_year (s) == g_date_time_get_day_of_year (e);

  if (!same_day || w == NULL)
    return format_day_time (e, w);
  return g_strdup_printf ("%s %02d%c%02d", w->at, g_date_time_get_hour (e),
                          w->clock_sep, g_date_time_get_minute (e));
}

/* ---- building the output tree ------------------------------------------ */

/* What a render fills in; values[i] NULL means absent. */
typedef struct {
  const char *values[PH_N];
  const char *lang;
  xmlNs *ns;              /* the output's XHTML namespace */
} Fill;

/* Copies are made in the output's namespace, without the xmlns
 * declarations xmlDocCopyNode repeats on each detached copy. */
static void
adopt_namespace (xmlNode *n, xmlNs *ns)
{
  for (; n != NULL; n = n->next)
    {
      if (n->type != XML_ELEMENT_NODE)
        continue;
      xmlNs *defs = n->nsDef;
      n->nsDef = NULL;
      n->ns = ns;
      adopt_namespace (n->children, ns);
      xmlFreeNsList (defs);
    }
}

/* The element to drop for an absent value: its data-im-block ancestor
 * (below the section), else itself. */
static xmlNode *
absent_target (xmlNode *el, const xmlNode *section)
{
  for (xmlNode *a = el->parent; a != NULL && a != section; a = a->parent)
    if (xmlHasProp (a, BAD_CAST "data-im-block") != NULL)
      return a;
  return el;
}

/* Is the value named by attribute attr of el absent? */
static gboolean
value_absent (const xmlNode *el, const char *attr, const Fill *f)
{
  g_autofree char *name = attr_get (el, attr);
  int ph = name ? placeholder_find (name) : -1;

  return ph >= 0 && (f->values[ph] == NULL || f->values[ph][0] == '\0');
}

/* Does attribute attr of el name a value that is present? */
static gboolean
value_present (const xmlNode *el, const char *attr, const Fill *f)
{
  g_autofree char *name = attr_get (el, attr);
  int ph = name ? placeholder_find (name) : -1;

  return ph >= 0 && f->values[ph] != NULL && f->values[ph][0] != '\0';
}

static void
collect_absent (xmlNode *n, const xmlNode *section, const Fill *f, GHashTable *drop)
{
  for (; n != NULL; n = n->next)
    {
      if (n->type != XML_ELEMENT_NODE)
        continue;
      if (value_absent (n, "data-im-block", f))
        g_hash_table_add (drop, n);
      else if (value_present (n, "data-im-absent", f))
        g_hash_table_add (drop, n);   /* the words for when it is missing */
      else if (value_absent (n, "data-im", f))
        g_hash_table_add (drop, absent_target (n, section));
      else
        collect_absent (n->children, section, f, drop);
    }
}

/* Unlinks every node first, then frees: one may lie inside another. */
static void
drop_absent (xmlNode *section, const Fill *f)
{
  g_autoptr(GHashTable) drop = g_hash_table_new (NULL, NULL);
  GHashTableIter it;
  gpointer node;

  collect_absent (section->children, section, f, drop);
  g_hash_table_iter_init (&it, drop);
  while (g_hash_table_iter_next (&it, &node, NULL))
    xmlUnlinkNode (node);
  g_hash_table_iter_init (&it, drop);
  while (g_hash_table_iter_next (&it, &node, NULL))
    xmlFreeNode (node);
}

/* Value as the element's only content; links also as href. */
static void
set_value (xmlNode *el, int ph, const Fill *f)
{
  const char *value = f->values[ph];

  xmlNodeSetContent (el, NULL);            /* frees the sample content */
  xmlNodeAddContent (el, BAD_CAST value);  /* literal: escapes & < > */
  if (!node_is (el, "a"))
    return;
  if (ph == PH_LINK)
    xmlSetProp (el, BAD_CAST "href", BAD_CAST value);
  else if (ph == PH_DPO_EMAIL)
    {
      g_autofree char *mailto = g_strconcat ("mailto:", value, NULL);
      xmlSetProp (el, BAD_CAST "href", BAD_CAST mailto);
    }
}

static void
strip_markers (xmlNode *el)
{
  xmlAttr *a = el->properties;

  while (a != NULL)
    {
      xmlAttr *next = a->next;
      if (g_str_has_prefix ((const char *) a->name, "data-im"))
        xmlRemoveProp (a);
      a = next;
    }
}

/* Fills present placeholders, removes markers and comments. */
static void
fill_present (xmlNode *n, const Fill *f)
{
  while (n != NULL)
    {
      xmlNode *next = n->next;
      if (n->type == XML_COMMENT_NODE)
        {
          xmlUnlinkNode (n);
          xmlFreeNode (n);
        }
      else if (n->type == XML_ELEMENT_NODE)
        {
          g_autofree char *name = attr_get (n, "data-im");
          g_autofree char *href = attr_get (n, "data-im-href");
          int ph = name ? placeholder_find (name) : -1;
          if (href != NULL && node_is (n, "a"))
            /* a button: the link as its target, the template's words
             * as its text (a screen reader says them, not the URL) */
            xmlSetProp (n, BAD_CAST "href", BAD_CAST f->values[PH_LINK]);
          if (ph >= 0)
            set_value (n, ph, f);
          else
            fill_present (n->children, f);
          strip_markers (n);
        }
      n = next;
    }
}

static xmlNode *
new_child (xmlNode *parent, const Fill *f, const char *name, const char *cls,
           const char *style)
{
  xmlNode *el = xmlNewChild (parent, f->ns, BAD_CAST name, NULL);

  if (cls != NULL)
    xmlSetProp (el, BAD_CAST "class", BAD_CAST cls);
  if (style != NULL)
    xmlSetProp (el, BAD_CAST "style", BAD_CAST style);
  return el;
}

/* A table row whose one cell holds a filled copy of part's body
 * children; bgcolor too, for clients that ignore CSS backgrounds. */
static xmlNode *
add_section (xmlNode *card, const Fill *f, const char *cls, const char *style,
             const char *bgcolor, const Part *part)
{
  xmlNode *tr = new_child (card, f, "tr", NULL, NULL);
  xmlNode *cell = new_child (tr, f, "td", cls, style);

  xmlSetProp (cell, BAD_CAST "bgcolor", BAD_CAST bgcolor);
  for (xmlNode *c = part->body->children; c != NULL; c = c->next)
    xmlAddChild (cell, xmlDocCopyNode (c, card->doc, 1));
  adopt_namespace (cell->children, f->ns);
  drop_absent (cell, f);
  fill_present (cell->children, f);
  return cell;
}

static void
add_logo (xmlNode *signature, const Templates *t, const Fill *f, const char *cid)
{
  const LangWords *w = lang_words_find (f->lang);
  xmlNode *p = new_child (signature, f, "p", NULL, NULL);
  xmlNode *img = new_child (p, f, "img", NULL, STYLE_LOGO);
  g_autofree char *src = g_strconcat ("cid:", cid, NULL);
  const LangWords *words = w ? w : &lang_words[1];   /* else English */
  g_autofree char *alt = g_strconcat (words->alt_before, f->values[PH_ORG_NAME],
                                      words->alt_after, NULL);
  char width[16], height[16];

  /* shown at half its pixels: sharp on the 2x screens of phones */
  g_snprintf (width, sizeof width, "%u", MAX (t->logo_width / 2, 1u));
  g_snprintf (height, sizeof height, "%u", MAX (t->logo_height / 2, 1u));
  xmlSetProp (img, BAD_CAST "src", BAD_CAST src);
  xmlSetProp (img, BAD_CAST "alt", BAD_CAST alt);
  xmlSetProp (img, BAD_CAST "width", BAD_CAST width);
  xmlSetProp (img, BAD_CAST "height", BAD_CAST height);
}

/* Right-to-left scripts; everything else is left-to-right. */
static const char *
lang_dir (const char *lang)
{
  static const char *const rtl[] = { "ar", "fa", "he", "ur", "ps", "ckb", "yi", NULL };

  return lang != NULL && g_strv_contains (rtl, lang) ? "rtl" : "ltr";
}

static xmlNode *
new_table (xmlNode *parent, const Fill *f, const char *cls, const char *style,
           const char *bgcolor)
{
  xmlNode *table = new_child (parent, f, "table", cls, style);

  xmlSetProp (table, BAD_CAST "role", BAD_CAST "presentation");
  xmlSetProp (table, BAD_CAST "width", BAD_CAST "100%");
  xmlSetProp (table, BAD_CAST "cellpadding", BAD_CAST "0");
  xmlSetProp (table, BAD_CAST "cellspacing", BAD_CAST "0");
  xmlSetProp (table, BAD_CAST "border", BAD_CAST "0");
  xmlSetProp (table, BAD_CAST "bgcolor", BAD_CAST bgcolor);
  return table;
}

/*
 * The page: a full-width wrapper table carrying lang and dir (some
 * clients drop <html> and <body>), centring a card of at most 600 px
 * whose rows are the sections.  Returns the card. */
static xmlNode *
add_wrapper (xmlNode *body, const Fill *f)
{
  xmlNode *wrapper = new_table (body, f, "wrapper", STYLE_WRAPPER, COLOR_PAGE);
  xmlNode *td = new_child (new_child (wrapper, f, "tr", NULL, NULL), f, "td", NULL,
                           STYLE_OUTER_TD);
  xmlNode *card;

  xmlSetProp (wrapper, BAD_CAST "lang", BAD_CAST f->lang);
  xmlNodeSetLang (wrapper, BAD_CAST f->lang);
  xmlSetProp (wrapper, BAD_CAST "dir", BAD_CAST lang_dir (f->lang));
  xmlSetProp (td, BAD_CAST "align", BAD_CAST "center");
  card = new_table (td, f, "card", STYLE_CARD, COLOR_CARD);
  xmlSetProp (card, BAD_CAST "align", BAD_CAST "center");
  return card;
}

static xmlNode *
add_head (xmlNode *html, const Fill *f, const char *subject)
{
  xmlNode *head = new_child (html, f, "head", NULL, NULL);
  xmlNode *meta = new_child (head, f, "meta", NULL, NULL);

  /* Our own, so libxml2's XHTML mode does not add a second one. */
  xmlSetProp (meta, BAD_CAST "http-equiv", BAD_CAST "Content-Type");
  xmlSetProp (meta, BAD_CAST "content", BAD_CAST "text/html; charset=UTF-8");
  /* phones: the layout's own width, no zoomed-out desktop page */
  meta = new_child (head, f, "meta", NULL, NULL);
  xmlSetProp (meta, BAD_CAST "name", BAD_CAST "viewport");
  xmlSetProp (meta, BAD_CAST "content", BAD_CAST "width=device-width, initial-scale=1");
  /* the design is light with explicit colours: do not invert it */
  meta = new_child (head, f, "meta", NULL, NULL);
  xmlSetProp (meta, BAD_CAST "name", BAD_CAST "color-scheme");
  xmlSetProp (meta, BAD_CAST "content", BAD_CAST "light");
  meta = new_child (head, f, "meta", NULL, NULL);
  xmlSetProp (meta, BAD_CAST "name", BAD_CAST "supported-color-schemes");
  xmlSetProp (meta, BAD_CAST "content", BAD_CAST "light");
  xmlNewTextChild (head, f->ns, BAD_CAST "title", BAD_CAST subject);
  return head;
}

/*
 * The whole output: skeleton, invitation, signature with logo, notice.
 * The notice goes last and outside the invitation's div, whatever the
 * template holds.  (transfer full)
 */
static xmlDoc *
build_doc (const Templates *t, const RenderOrg *org, Fill *f, const char *subject,
           const Part *tpl, const Part *sig, const Part *notice, xmlNode **notice_cell)
{
  xmlDoc *doc = xmlNewDoc (BAD_CAST "1.0");
  xmlCreateIntSubset (doc, BAD_CAST "html", BAD_CAST XHTML_PUBLIC, BAD_CAST XHTML_SYSTEM);
  xmlNode *html = xmlNewDocNode (doc, NULL, BAD_CAST "html", NULL);
  xmlDocSetRootElement (doc, html);
  f->ns = xmlNewNs (html, BAD_CAST XHTML_NS, NULL);
  xmlSetNs (html, f->ns);
  xmlSetProp (html, BAD_CAST "lang", BAD_CAST f->lang);
  xmlNodeSetLang (html, BAD_CAST f->lang);

  xmlSetProp (html, BAD_CAST "dir", BAD_CAST lang_dir (f->lang));

  add_head (html, f, subject);
  xmlNode *body = new_child (html, f, "body", NULL, STYLE_BODY);
  xmlSetProp (body, BAD_CAST "bgcolor", BAD_CAST COLOR_PAGE);
  xmlNode *card = add_wrapper (body, f);
  add_section (card, f, "invitation", STYLE_INVITE, COLOR_CARD, tpl);
  xmlNode *signature = add_section (card, f, "signature", STYLE_SIGNATURE, COLOR_CARD, sig);
  add_logo (signature, t, f, org->logo_cid);
  *notice_cell = add_section (card, f, "privacy-notice", STYLE_NOTICE, COLOR_NOTICE,
                              notice);
  return doc;
}

/* XHTML mode: <p></p> and <br />, never <p/> (LIBS.md 5). (transfer full) */
static char *
serialize_doc (xmlDoc *doc, GError **error)
{
  xmlBuffer *buf = xmlBufferCreate ();
  xmlSaveCtxt *save = buf ? xmlSaveToBuffer (buf, "UTF-8",
                                             XML_SAVE_XHTML | XML_SAVE_NO_DECL) : NULL;
  long rc = save ? xmlSaveDoc (save, doc) : -1;
  char *out = NULL;

  if (save != NULL && xmlSaveClose (save) < 0)
    rc = -1;
  if (rc >= 0)
    out = g_strndup ((const char *) xmlBufferContent (buf), (gsize) xmlBufferLength (buf));
  if (buf != NULL)
    xmlBufferFree (buf);
  if (out == NULL)
    g_set_error (error, RENDER_ERROR, RENDER_ERROR_FAILED, "cannot serialise the HTML");
  return out;
}

static void
fill_values (Fill *f, const RenderOrg *org, const Invitation *inv, const char *when,
             const char *until)
{
  memset (f, 0, sizeof *f);
  f->lang = invitation_lang (inv);
  f->values[PH_LINK] = invitation_link (inv);
  f->values[PH_BOOKING] = invitation_booking (inv);
  f->values[PH_STAFF] = invitation_staff (inv);
  f->values[PH_MEETING_TIME] = when;
  f->values[PH_MEETING_END] = until;
  f->values[PH_ORG_NAME] = org->org_name;
  f->values[PH_DPO_EMAIL] = org->dpo_email;
  f->values[PH_SLOGAN] = org->slogan;
  f->values[PH_CONTACT] = org->contact;
  f->values[PH_UNIT] = invitation_unit (inv);
}

/* Organisation values come from the configuration; libxml2 would write
 * bad UTF-8 through unchanged, so it is checked here once more. */
static gboolean
values_ok (const Fill *f, GError **error)
{
  for (int i = 0; i < PH_N; i++)
    if (f->values[i] != NULL && !g_utf8_validate (f->values[i], -1, NULL))
      {
        g_set_error (error, RENDER_ERROR, RENDER_ERROR_FAILED,
                     "the value for %s is not valid UTF-8", placeholder_names[i]);
        return FALSE;
      }
  return TRUE;
}

static char *tree_to_text (xmlNode *root, GError **error);

static Rendered *
rendered_new (const Templates *t, const Fill *f, const Part *tpl,
              const Part *sig, const Part *notice)
{
  Rendered *r = g_new0 (Rendered, 1);

  r->subject = g_strdup (tpl->subject);
  r->title = g_strdup (tpl->subject);
  r->lang = g_strdup (f->lang);
  r->logo = g_bytes_ref (t->logo);
  memcpy (r->template_sha256, tpl->sha256, sizeof r->template_sha256);
  memcpy (r->notice_sha256, notice->sha256, sizeof r->notice_sha256);
  memcpy (r->signature_sha256, sig->sha256, sizeof r->signature_sha256);
  r->notice_version = g_strdup (notice->version);
  return r;
}

/* SHA-256 of the filled notice section's XHTML (Rendered). */
static gboolean
hash_rendered_notice (xmlDoc *doc, xmlNode *cell, char out[SHA256_HEX_SIZE], GError **error)
{
  xmlBuffer *buf = xmlBufferCreate ();
  gboolean ok = FALSE;

  /* the renderer's own notice cell, never an element a template calls
   * "privacy-notice" */
  if (cell != NULL && buf != NULL && xmlNodeDump (buf, doc, cell, 0, 0) > 0)
    {
      sha256_hex (xmlBufferContent (buf), (gsize) xmlBufferLength (buf), out);
      ok = TRUE;
    }
  if (buf != NULL)
    xmlBufferFree (buf);
  if (!ok)
    g_set_error (error, RENDER_ERROR, RENDER_ERROR_FAILED,
                 "the rendered notice could not be hashed");
  return ok;
}

Rendered *
render_invitation (const Templates *t, const RenderOrg *org, const Invitation *inv,
                   GError **error)
{
  g_return_val_if_fail (t != NULL && org != NULL && inv != NULL, NULL);
  g_return_val_if_fail (org->org_name != NULL && org->dpo_email != NULL
                        && org->logo_cid != NULL, NULL);

  const char *lang = invitation_lang (inv);
  g_autofree char *key = g_strdup_printf ("%s.%s", invitation_template (inv), lang);
  const Part *tpl = g_hash_table_lookup (t->templates, key);
  const Part *notice = g_hash_table_lookup (t->notices, lang);
  const Part *sig = g_hash_table_lookup (t->signatures, lang);
  if (tpl == NULL || notice == NULL || sig == NULL)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING,
                   "no template %s with notice and signature", key);
      return NULL;
    }

  GDateTime *start = invitation_meeting_time (inv);
  GDateTime *end = invitation_meeting_end (inv);
  g_autofree char *when = start ? render_format_time (start, lang, org->timezone) : NULL;
  g_autofree char *until = start && end
    ? render_format_end (start, end, lang, org->timezone) : NULL;
  Fill f;
  fill_values (&f, org, inv, when, until);
  if (!values_ok (&f, error))
    return NULL;
  g_autoptr(Rendered) r = rendered_new (t, &f, tpl, sig, notice);
  if (start != NULL)
    {
      /* the date in the subject, so the inbox list shows when */
      g_autoptr(GDateTime) local = to_zone (start, org->timezone);
      g_autofree char *day = format_day_time (local, lang_words_find (lang));
      g_free (r->subject);
      r->subject = g_strdup_printf ("%s, %s", tpl->subject, day);
    }
  xmlNode *notice_cell = NULL;
  g_autoptr(xmlDoc) doc = build_doc (t, org, &f, r->subject, tpl, sig, notice, &notice_cell);
  if (!hash_rendered_notice (doc, notice_cell, r->notice_rendered_sha256, error))
    return NULL;
  r->html = serialize_doc (doc, error);
  if (r->html == NULL)
    return NULL;
  r->text = tree_to_text (xmlDocGetRootElement (doc), error);
  if (r->text == NULL)
    return NULL;
  return g_steal_pointer (&r);
}

Rendered *
render_cancellation (const Templates *t, const RenderOrg *org, const char *lang,
                     GDateTime *start, GDateTime *end, GError **error)
{
  g_return_val_if_fail (t != NULL && org != NULL, NULL);

  const char *langs[] = { lang, "sv", "en" };
  const Part *tpl = NULL, *notice = NULL, *sig = NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (langs) && tpl == NULL; i++)
    {
      g_autofree char *key = g_strdup_printf ("%s.%s", CANCEL_NAME,
                                              langs[i] ? langs[i] : "");
      tpl = g_hash_table_lookup (t->templates, key);
      lang = tpl ? langs[i] : lang;
    }
  notice = tpl ? g_hash_table_lookup (t->notices, lang) : NULL;
  sig = tpl ? g_hash_table_lookup (t->signatures, lang) : NULL;
  if (tpl == NULL || notice == NULL || sig == NULL)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_MISSING,
                   "no cancellation template (%s.LANG.xhtml)", CANCEL_NAME);
      return NULL;
    }
  g_autofree char *when = start ? render_format_time (start, lang, org->timezone) : NULL;
  g_autofree char *until = start && end
    ? render_format_end (start, end, lang, org->timezone) : NULL;
  Fill f;
  memset (&f, 0, sizeof f);
  f.lang = lang;
  f.values[PH_MEETING_TIME] = when;
  f.values[PH_MEETING_END] = until;
  f.values[PH_ORG_NAME] = org->org_name;
  f.values[PH_DPO_EMAIL] = org->dpo_email;
  f.values[PH_SLOGAN] = org->slogan;
  f.values[PH_CONTACT] = org->contact;
  if (!values_ok (&f, error))
    return NULL;
  g_autoptr(Rendered) r = rendered_new (t, &f, tpl, sig, notice);
  if (start != NULL)
    {
      g_autoptr(GDateTime) local = to_zone (start, org->timezone);
      g_autofree char *day = format_day_time (local, lang_words_find (lang));
      g_free (r->subject);
      r->subject = g_strdup_printf ("%s, %s", tpl->subject, day);
    }
  xmlNode *notice_cell = NULL;
  g_autoptr(xmlDoc) doc = build_doc (t, org, &f, r->subject, tpl, sig, notice, &notice_cell);
  if (!hash_rendered_notice (doc, notice_cell, r->notice_rendered_sha256, error))
    return NULL;
  r->html = serialize_doc (doc, error);
  if (r->html == NULL)
    return NULL;
  r->text = tree_to_text (xmlDocGetRootElement (doc), error);
  if (r->text == NULL)
    return NULL;
  return g_steal_pointer (&r);
}

void
rendered_free (Rendered *r)
{
  if (r == NULL)
    return;
  g_free (r->subject);
  g_free (r->title);
  g_free (r->html);
  g_free (r->text);
  g_free (r->lang);
  g_free (r->notice_version);
  g_clear_pointer (&r->logo, g_bytes_unref);
  g_free (r);
}

/* ---- plain text ----------------------------------------------------------- */

typedef struct {
  GString *out;
  guint newlines;         /* line breaks owed before the next text */
  gboolean space;         /* a space owed before the next text */
  guint lists;            /* depth of ul/ol */
  guint pre;              /* depth of pre */
  GError **error;
  gboolean failed;
} TextWriter;

static const char *const skip_elements[] = {
  "head", "title", "style", "script", "template", "img", NULL
};
/* Blank line before and after. */
static const char *const paragraph_elements[] = {
  "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "pre",
  "table", "dl", "hr", "address", "figure", NULL
};
/* Own line. */
static const char *const line_elements[] = {
  "div", "li", "tr", "dt", "dd", "section", "article", "header", "footer",
  "nav", "main", "aside", "caption", "center", "figcaption", "body", NULL
};

static gboolean
tw_at_line_start (const TextWriter *w)
{
  return w->out->len == 0 || w->out->str[w->out->len - 1] == '\n';
}

/* Pays what is owed before visible text. */
static void
tw_flush (TextWriter *w)
{
  if (w->out->len > 0)
    for (guint i = 0; i < MIN (w->newlines, 2u); i++)
      g_string_append_c (w->out, '\n');
  w->newlines = 0;
  if (w->space && !tw_at_line_start (w) && w->out->str[w->out->len - 1] != ' ')
    g_string_append_c (w->out, ' ');
  w->space = FALSE;
}

static void
tw_break (TextWriter *w, guint n)
{
  w->newlines = MAX (w->newlines, n);
  w->space = FALSE;
}

static void
tw_raw (TextWriter *w, const char *s)
{
  tw_flush (w);
  g_string_append (w->out, s);
}

static void
tw_text (TextWriter *w, const char *s)
{
  for (; *s != '\0'; s++)
    {
      if (w->pre > 0 && *s == '\n')
        w->newlines++;
      else if (w->pre == 0 && g_ascii_isspace (*s))
        w->space = TRUE;
      else
        {
          tw_flush (w);
          g_string_append_c (w->out, *s);
        }
    }
}

static void tw_children (TextWriter *w, const xmlNode *n);

/* A link styled as a button (class "button"): its words are for the
 * HTML view; the plain text shows the address on its own line where
 * the template writes it out. */
static gboolean
is_button (const xmlNode *el)
{
  g_autofree char *cls = node_is (el, "a") ? attr_get (el, "class") : NULL;
  g_auto(GStrv) words = cls ? g_strsplit (cls, " ", -1) : NULL;

  return words != NULL && g_strv_contains ((const char *const *) words, "button");
}

/* "text <href>", or the href alone when the text is the address. */
static void
tw_link (TextWriter *w, const xmlNode *a)
{
  g_autofree char *href = attr_get (a, "href");
  gsize mark = w->out->len;

  tw_children (w, a->children);
  if (href == NULL || href[0] == '\0' || href[0] == '#')
    return;
  g_autofree char *text = g_strstrip (g_strdup (w->out->str + mark));
  if (*text == '\0')
    tw_raw (w, href);
  else if (strcmp (text, href) != 0
           && !(g_str_has_prefix (href, "mailto:") && strcmp (text, href + 7) == 0))
    g_string_append_printf (w->out, " <%s>", href);
}

static void
tw_list_item (TextWriter *w, const xmlNode *li)
{
  tw_break (w, 1);
  tw_flush (w);
  for (guint i = 1; i < w->lists; i++)
    g_string_append (w->out, "  ");
  g_string_append (w->out, "- ");
  tw_children (w, li->children);
  tw_break (w, 1);
}

static void
tw_element (TextWriter *w, const xmlNode *el)
{
  const char *name = (const char *) el->name;
  gboolean list = node_is (el, "ul") || node_is (el, "ol");
  /* a list inside a list item is one more line, not a paragraph */
  guint gap = name_in (name, paragraph_elements) && !(list && w->lists > 0) ? 2
              : name_in (name, line_elements) || list ? 1 : 0;

  if (name_in (name, skip_elements) || is_button (el))
    return;
  if (node_is (el, "br"))
    {
      w->newlines = MIN (w->newlines + 1, 2u);
      w->space = FALSE;
      return;
    }
  if (gap > 0)
    tw_break (w, gap);
  w->lists += list;
  w->pre += node_is (el, "pre");
  if (node_is (el, "li"))
    tw_list_item (w, el);
  else if (node_is (el, "a"))
    tw_link (w, el);
  else
    tw_children (w, el->children);
  w->lists -= list;
  w->pre -= node_is (el, "pre");
  if (gap > 0)
    tw_break (w, gap);
  else if (node_is (el, "td") || node_is (el, "th"))
    w->space = TRUE;
}

static void
tw_children (TextWriter *w, const xmlNode *n)
{
  for (; n != NULL && !w->failed; n = n->next)
    {
      if (n->type == XML_ELEMENT_NODE)
        tw_element (w, n);
      else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE)
        tw_text (w, (const char *) n->content);
      else if (n->type == XML_ENTITY_REF_NODE)
        {
          /* its text is not in the tree; silently dropping it could
           * drop part of the notice (LIBS.md 5) */
          g_set_error (w->error, RENDER_ERROR, RENDER_ERROR_INVALID,
                       "entity reference &%s; in the document", (const char *) n->name);
          w->failed = TRUE;
        }
    }
}

/* One line folded at spaces into lines of at most width characters; a
 * word longer than that (a link) stays whole on a line of its own, so
 * it can be clicked and copied.  List items hang under their text. */
static void
wrap_line (GString *out, const char *line, guint width)
{
  guint lead = 0;

  while (line[lead] == ' ')
    lead++;
  guint hang = lead + (g_str_has_prefix (line + lead, "- ") ? 2 : 0);
  g_autoptr(GString) cur = g_string_new (NULL);
  glong cur_chars = lead;
  guint on_line = 0;       /* words on cur */
  gsize last_at = 0;       /* where cur's last word starts */
  glong last_chars = 0;
  g_auto(GStrv) words = g_strsplit (line + lead, " ", -1);

  g_string_append_len (cur, line, lead);
  for (char **w = words; *w != NULL; w++)
    {
      glong n = g_utf8_strlen (*w, -1);
      if (**w == '\0')
        continue;
      if (on_line > 0 && (guint) (cur_chars + 1 + n) > width)
        {
          /* "kl." or "at" stays with the time that follows it */
          gboolean carry = on_line > 1 && last_chars <= 3 && g_ascii_isdigit (**w);
          g_autofree char *moved = carry ? g_strdup (cur->str + last_at) : NULL;
          if (carry)
            g_string_truncate (cur, last_at - 1);
          g_string_append_len (out, cur->str, (gssize) cur->len);
          g_string_append_c (out, '\n');
          g_string_truncate (cur, 0);
          for (guint i = 0; i < hang; i++)
            g_string_append_c (cur, ' ');
          cur_chars = hang;
          on_line = 0;
          if (carry)
            {
              last_at = cur->len;
              g_string_append (cur, moved);
              cur_chars += last_chars;
              on_line = 1;
            }
        }
      if (on_line > 0)
        {
          g_string_append_c (cur, ' ');
          cur_chars++;
        }
      last_at = cur->len;
      last_chars = n;
      g_string_append (cur, *w);
      cur_chars += n;
      on_line++;
    }
  g_string_append_len (out, cur->str, (gssize) cur->len);
}

/* RFC 3676 4.1 / RFC 5322 2.1.1: lines of at most TEXT_WIDTH characters. */
static char *
wrap_text (const char *text, guint width)
{
  GString *out = g_string_new (NULL);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  for (char **l = lines; *l != NULL; l++)
    {
      if (l != lines)
        g_string_append_c (out, '\n');
      if ((guint) g_utf8_strlen (*l, -1) <= width)
        g_string_append (out, *l);
      else
        wrap_line (out, *l, width);
    }
  return g_string_free (out, FALSE);
}

/* The text of root's <body> (or of root, head skipped), folded at
 * TEXT_WIDTH. (transfer full) */
static char *
tree_to_text (xmlNode *root, GError **error)
{
  TextWriter w = { g_string_new (NULL), 0, FALSE, 0, 0, error, FALSE };
  xmlNode *body = child_element (root, "body");

  if (body != NULL)
    tw_children (&w, body->children);
  else if (root != NULL)
    tw_element (&w, root);
  if (w.failed)
    {
      g_string_free (w.out, TRUE);
      return NULL;
    }
  while (w.out->len > 0 && g_ascii_isspace (w.out->str[w.out->len - 1]))
    g_string_truncate (w.out, w.out->len - 1);
  g_string_append_c (w.out, '\n');
  g_autoptr(GString) raw = w.out;
  return wrap_text (raw->str, TEXT_WIDTH);
}

char *
render_plain_text (const char *xhtml, gsize len, GError **error)
{
  g_return_val_if_fail (xhtml != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (len > TEMPLATE_MAX_BYTES * 4)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID, "document too large");
      return NULL;
    }
  g_autoptr(xmlDoc) doc = parse_xml (xhtml, len, "document", error);
  if (doc == NULL)
    return NULL;
  return tree_to_text (xmlDocGetRootElement (doc), error);
}
