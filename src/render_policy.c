/*
 * render_policy.c - the template policy: every template, notice and
 * signature file is parsed here and checked before it is kept, and the
 * small tree helpers the other render files share.
 *
 * SECURITY: template files are trusted to come from the administrator,
 * but are still parsed with XML_PARSE_NONET and without NOENT, DTDLOAD
 * or XINCLUDE, so no entity is expanded and no file or URL is fetched
 * (NONET alone does not stop a file:// external entity; see
 * doc/ARCHITECTURE.md on libxml2).  They are refused if they hold a
 * DOCTYPE with declarations, an entity reference, a processing
 * instruction, CDATA, foreign namespaces, script-capable or form
 * elements, <style>, on* attributes, javascript:/vbscript:/data:/file:
 * URLs, any src that is not cid: (no remote content, no tracking
 * pixel), or inline styles that could run code, fetch a resource or
 * move content over the notice.  Parse errors go to a structured
 * handler, never to stderr.
 *
 * LIMITS: the callers bound the bytes (TEMPLATE_MAX_BYTES); nesting
 * depth is libxml2's default (256) since XML_PARSE_HUGE is never set,
 * which also bounds check_tree's recursion.  Fuzzed by
 * tests/fuzz/fuzz_policy.c.
 */
#include "render_private.h"

#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

/* Never NOENT, DTDLOAD, DTDATTR, DTDVALID, XINCLUDE or HUGE: those expand
 * entities, fetch files or lift the depth and size limits. */
#define PARSE_OPTIONS  (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

G_DEFINE_QUARK (render-error-quark, render_error)

/* Indexed by Placeholder (render_private.h). */
const char *const placeholder_names[PH_N] = {
  "link", "booking", "staff", "meeting_time", "org_name", "dpo_email", "slogan",
  "meeting_end", "contact", "unit"
};

/* ---- tree helpers --------------------------------------------------- */

gboolean
node_is (const xmlNode *n, const char *name)
{
  return n != NULL && n->type == XML_ELEMENT_NODE
         && strcmp ((const char *) n->name, name) == 0;
}

xmlNode *
child_element (const xmlNode *parent, const char *name)
{
  for (xmlNode *c = parent ? parent->children : NULL; c != NULL; c = c->next)
    if (node_is (c, name))
      return c;
  return NULL;
}

int
placeholder_find (const char *name)
{
  for (int i = 0; i < PH_N; i++)
    if (strcmp (placeholder_names[i], name) == 0)
      return i;
  return -1;
}

/* The value of attribute name on el, or NULL. (transfer full) */
char *
attr_get (const xmlNode *el, const char *name)
{
  xmlChar *v = xmlGetNoNsProp (el, BAD_CAST name);
  char *copy = g_strdup ((const char *) v);
  xmlFree (v);
  return copy;
}

/*
 * The value of attribute name (no namespace) on el, or NULL, as
 * attr_get gives it, without a copy in the common case of one text
 * child; otherwise the copy is put in *owned for the caller to free.
 * (transfer none, or full through *owned)
 */
const char *
attr_peek (const xmlNode *el, const char *name, char **owned)
{
  for (const xmlAttr *a = el->properties; a != NULL; a = a->next)
    {
      if (a->ns != NULL || strcmp ((const char *) a->name, name) != 0)
        continue;
      if (a->children == NULL)
        return "";
      if (a->children->next == NULL
          && (a->children->type == XML_TEXT_NODE
              || a->children->type == XML_CDATA_SECTION_NODE))
        return (const char *) a->children->content;
      break;
    }
  /* an attribute of several nodes, or one a DTD gives a default:
   * libxml2's own lookup */
  *owned = attr_get (el, name);
  return *owned;
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
xmlDoc *
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

gboolean
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

void
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

Part *
part_parse (const char *data, gsize len, const char *what, PartKind kind,
            gboolean is_cancel, GError **error)
{
  g_autoptr(Part) part = g_new0 (Part, 1);
  part->is_cancel = is_cancel;
  part->doc = parse_xml (data, len, what, error);
  if (part->doc == NULL)
    return NULL;

  guint counts[PH_N] = { 0 };
  g_autoptr(GString) why = g_string_new (NULL);
  if (!check_document (part->doc, counts, why) || !check_kind (part, kind, counts, why)
      || (kind == PART_NOTICE && !notice_version (part, why)))
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID, "%s: %s", what, why->str);
      return NULL;
    }
  part->body = child_element (xmlDocGetRootElement (part->doc), "body");
  return g_steal_pointer (&part);
}

gboolean
render_check_file (const char *data, gsize len, RenderFile kind, GError **error)
{
  static const PartKind kinds[] = {
    [RENDER_FILE_TEMPLATE] = PART_TEMPLATE, [RENDER_FILE_CANCEL] = PART_TEMPLATE,
    [RENDER_FILE_NOTICE] = PART_NOTICE, [RENDER_FILE_SIGNATURE] = PART_SIGNATURE,
  };

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail ((guint) kind < G_N_ELEMENTS (kinds), FALSE);
  if (len > TEMPLATE_MAX_BYTES)
    {
      g_set_error (error, RENDER_ERROR, RENDER_ERROR_INVALID, "file too large");
      return FALSE;
    }
  g_autoptr(Part) part = part_parse (data ? data : "", len, "file", kinds[kind],
                                     kind == RENDER_FILE_CANCEL, error);
  return part != NULL;
}
