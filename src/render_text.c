/*
 * render_text.c - the plain-text twin of the rendered XHTML: one line
 * per block, a blank line between paragraphs, <br/> as a newline, list
 * items as "- ", links as "text <href>", folded at TEXT_WIDTH.
 *
 * TRUSTS: nothing; render_plain_text parses its input with the policy's
 * safe options (render_policy.c) and bounds its size.  An entity
 * reference fails rather than silently losing its text.
 *
 * LIMITS: input at most 4 * TEMPLATE_MAX_BYTES; recursion bounded by
 * libxml2's nesting limit (256).
 */
#include "render_private.h"

#include <string.h>

#include <libxml/parser.h>

/* Plain-text lines: 78 characters, RFC 5322's advice, and what fits a
 * phone without reflowing. */
#define TEXT_WIDTH     78

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
          /* its text is not in the tree (libxml2 keeps a reference
           * node, not the text); silently dropping it could drop part
           * of the notice */
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

char *
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

