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

/* What the walker does with an element, looked up once per element. */
enum {
  EL_SKIP = 1 << 0,       /* left out with its content */
  EL_PARAGRAPH = 1 << 1,  /* blank line before and after */
  EL_LINE = 1 << 2,       /* own line */
};

/* Names compared without ASCII case, as HTML readers do; the few
 * elements that change the walk itself (lists, br, pre, links, cells)
 * are recognised by their exact lower-case name (strcmp), as before. */
static const struct {
  const char *name;
  guint flags;
} element_kinds[] = {
  { "head", EL_SKIP }, { "title", EL_SKIP }, { "style", EL_SKIP },
  { "script", EL_SKIP }, { "template", EL_SKIP }, { "img", EL_SKIP },
  { "p", EL_PARAGRAPH }, { "h1", EL_PARAGRAPH }, { "h2", EL_PARAGRAPH },
  { "h3", EL_PARAGRAPH }, { "h4", EL_PARAGRAPH }, { "h5", EL_PARAGRAPH },
  { "h6", EL_PARAGRAPH }, { "ul", EL_PARAGRAPH }, { "ol", EL_PARAGRAPH },
  { "blockquote", EL_PARAGRAPH }, { "pre", EL_PARAGRAPH }, { "table", EL_PARAGRAPH },
  { "dl", EL_PARAGRAPH }, { "hr", EL_PARAGRAPH }, { "address", EL_PARAGRAPH },
  { "figure", EL_PARAGRAPH },
  { "div", EL_LINE }, { "li", EL_LINE }, { "tr", EL_LINE }, { "dt", EL_LINE },
  { "dd", EL_LINE }, { "section", EL_LINE }, { "article", EL_LINE },
  { "header", EL_LINE }, { "footer", EL_LINE }, { "nav", EL_LINE },
  { "main", EL_LINE }, { "aside", EL_LINE }, { "caption", EL_LINE },
  { "center", EL_LINE }, { "figcaption", EL_LINE }, { "body", EL_LINE },
};

/* The EL_ flags of an element name, without ASCII case.  The names
 * above are at most 10 characters, so a longer name has none. */
static guint
element_kind (const char *name)
{
  char low[12];
  gsize n = 0;

  for (; name[n] != '\0'; n++)
    {
      if (n == sizeof low - 1)
        return 0;
      low[n] = name[n] >= 'A' && name[n] <= 'Z' ? (char) (name[n] + ('a' - 'A')) : name[n];
    }
  low[n] = '\0';
  for (gsize i = 0; i < G_N_ELEMENTS (element_kinds); i++)
    if (element_kinds[i].name[0] == low[0] && strcmp (element_kinds[i].name, low) == 0)
      return element_kinds[i].flags;
  return 0;
}

/* g_string_append_len without its call when the bytes fit, as most
 * words and lines do. */
static inline void
str_append (GString *out, const char *p, gsize n)
{
  if (out->len + n < out->allocated_len)
    {
      memcpy (out->str + out->len, p, n);
      out->len += n;
      out->str[out->len] = '\0';
    }
  else
    g_string_append_len (out, p, (gssize) n);
}

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

/* Text as a reader sees it: outside <pre>, runs of white space are one
 * space; inside, line breaks stay.  Appended a run at a time: the
 * flush before a run pays everything owed, so the rest of the run
 * owes nothing. */
static void
tw_text (TextWriter *w, const char *s)
{
  while (*s != '\0')
    {
      const char *run = s;
      if (w->pre > 0 && *s == '\n')
        {
          w->newlines++;
          s++;
          continue;
        }
      if (w->pre == 0 && g_ascii_isspace (*s))
        {
          w->space = TRUE;
          s++;
          continue;
        }
      if (w->pre > 0)
        while (*s != '\0' && *s != '\n')
          s++;
      else
        while (*s != '\0' && !g_ascii_isspace (*s))
          s++;
      if (w->newlines > 0 || w->space)
        tw_flush (w);
      str_append (w->out, run, (gsize) (s - run));
    }
}

static void tw_children (TextWriter *w, const xmlNode *n);

/* A link styled as a button (class "button"): its words are for the
 * HTML view; the plain text shows the address on its own line where
 * the template writes it out. */
static gboolean
is_button (const xmlNode *el)
{
  g_autofree char *owned = NULL;
  const char *cls = node_is (el, "a") ? attr_peek (el, "class", &owned) : NULL;

  for (const char *p = cls; p != NULL; p = strchr (p, ' '))
    {
      if (*p == ' ')
        p++;
      if (strncmp (p, "button", 6) == 0 && (p[6] == ' ' || p[6] == '\0'))
        return TRUE;
    }
  return FALSE;
}

/* "text <href>", or the href alone when the text is the address. */
static void
tw_link (TextWriter *w, const xmlNode *a)
{
  g_autofree char *owned = NULL;
  const char *href = attr_peek (a, "href", &owned);
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
  guint kind = element_kind (name);
  gboolean list = strcmp (name, "ul") == 0 || strcmp (name, "ol") == 0;
  gboolean pre = strcmp (name, "pre") == 0;
  /* a list inside a list item is one more line, not a paragraph */
  guint gap = (kind & EL_PARAGRAPH) && !(list && w->lists > 0) ? 2
              : (kind & EL_LINE) || list ? 1 : 0;

  if ((kind & EL_SKIP) || is_button (el))
    return;
  if (strcmp (name, "br") == 0)
    {
      w->newlines = MIN (w->newlines + 1, 2u);
      w->space = FALSE;
      return;
    }
  if (gap > 0)
    tw_break (w, gap);
  w->lists += list;
  w->pre += pre;
  if (strcmp (name, "li") == 0)
    tw_list_item (w, el);
  else if (strcmp (name, "a") == 0)
    tw_link (w, el);
  else
    tw_children (w, el->children);
  w->lists -= list;
  w->pre -= pre;
  if (gap > 0)
    tw_break (w, gap);
  else if (strcmp (name, "td") == 0 || strcmp (name, "th") == 0)
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
 * it can be clicked and copied.  List items hang under their text.
 * Words are the runs between single spaces; empty ones (two spaces in
 * a row) are dropped. */
static void
wrap_line (GString *out, const char *line, gsize len, guint width)
{
  const char *end = line + len;
  guint lead = 0;

  while (lead < len && line[lead] == ' ')
    lead++;
  guint hang = lead + (len - lead >= 2 && line[lead] == '-' && line[lead + 1] == ' ' ? 2 : 0);
  g_autoptr(GString) cur = g_string_sized_new (width * 2);
  glong cur_chars = lead;
  guint on_line = 0;       /* words on cur */
  gsize last_at = 0;       /* where cur's last word starts */
  glong last_chars = 0;

  g_string_append_len (cur, line, lead);
  for (const char *w = line + lead; w <= end;)
    {
      const char *stop = memchr (w, ' ', (gsize) (end - w));
      gsize bytes = stop ? (gsize) (stop - w) : (gsize) (end - w);
      const char *next = w + bytes + 1;
      if (bytes == 0)
        {
          w = next;
          continue;
        }
      glong n = g_utf8_strlen (w, (gssize) bytes);
      if (on_line > 0 && (guint) (cur_chars + 1 + n) > width)
        {
          /* "kl." or "at" stays with the time that follows it */
          gboolean carry = on_line > 1 && last_chars <= 3 && g_ascii_isdigit (*w);
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
      str_append (cur, w, bytes);
      cur_chars += n;
      on_line++;
      w = next;
    }
  g_string_append_len (out, cur->str, (gssize) cur->len);
}

/* RFC 3676 4.1 / RFC 5322 2.1.1: lines of at most TEXT_WIDTH characters.
 * A line of at most width bytes has at most width characters and is
 * copied as it is, uncounted. */
static char *
wrap_text (const char *text, gsize len, guint width)
{
  GString *out = g_string_sized_new (len + len / 16 + 1);
  const char *end = text + len;

  for (const char *l = text; l <= end;)
    {
      const char *nl = memchr (l, '\n', (gsize) (end - l));
      gsize n = nl ? (gsize) (nl - l) : (gsize) (end - l);
      if (l != text)
        g_string_append_c (out, '\n');
      if (n <= width || (guint) g_utf8_strlen (l, (gssize) n) <= width)
        str_append (out, l, n);
      else
        wrap_line (out, l, n, width);
      l += n + 1;
    }
  return g_string_free (out, FALSE);
}

char *
tree_to_text (xmlNode *root, GError **error)
{
  TextWriter w = { g_string_sized_new (4096), 0, FALSE, 0, 0, error, FALSE };
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
  return wrap_text (raw->str, raw->len, TEXT_WIDTH);
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

