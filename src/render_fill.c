/*
 * render_fill.c - one invitation or cancellation into one XHTML
 * document: the renderer owns the skeleton (doctype, html, head, body,
 * the layout tables).  From the invitation template it takes only the
 * <title> (the subject) and the children of <body>; the signature, the
 * logo and the notice follow in their own cells, so no template can
 * drop the notice or hide it with a style sheet (the policy refuses
 * style sheets).  Then the document is serialised in libxml2's XHTML
 * mode and given its plain-text twin (render_text.c).
 *
 * SECURITY: request values (untrusted, though validated) enter the
 * output only through xmlNodeAddContent and xmlSetProp or xmlNewProp,
 * whose values libxml2 escapes when it writes them; nothing is ever
 * pasted into markup.  Organisation values are
 * checked for UTF-8 once more, as libxml2 would write bad bytes through.
 */
#include "render_private.h"

#include <string.h>

#include <libxml/xmlsave.h>

#include "digest.h"

#define XHTML_PUBLIC   "-//W3C//DTD XHTML 1.0 Transitional//EN"
#define XHTML_SYSTEM   "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd"

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

/* The Placeholder that attribute attr of el names, or -1. */
static int
attr_placeholder (const xmlNode *el, const char *attr)
{
  g_autofree char *owned = NULL;
  const char *name = attr_peek (el, attr, &owned);

  return name ? placeholder_find (name) : -1;
}

/* Is the value named by attribute attr of el absent? */
static gboolean
value_absent (const xmlNode *el, const char *attr, const Fill *f)
{
  int ph = attr_placeholder (el, attr);

  return ph >= 0 && (f->values[ph] == NULL || f->values[ph][0] == '\0');
}

/* Does attribute attr of el name a value that is present? */
static gboolean
value_present (const xmlNode *el, const char *attr, const Fill *f)
{
  int ph = attr_placeholder (el, attr);

  return ph >= 0 && f->values[ph] != NULL && f->values[ph][0] != '\0';
}

/* Does el carry any data-im marker?  Most elements carry none, and
 * then no lookup of one can find it (the output's DOCTYPE declares no
 * attributes, so none has a default). */
static gboolean
has_markers (const xmlNode *el)
{
  for (const xmlAttr *a = el->properties; a != NULL; a = a->next)
    if (strncmp ((const char *) a->name, "data-im", 7) == 0)
      return TRUE;
  return FALSE;
}

static void
collect_absent (xmlNode *n, const xmlNode *section, const Fill *f, GHashTable *drop)
{
  for (; n != NULL; n = n->next)
    {
      if (n->type != XML_ELEMENT_NODE)
        continue;
      if (!has_markers (n))
        collect_absent (n->children, section, f, drop);
      else if (value_absent (n, "data-im-block", f))
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
      else if (n->type == XML_ELEMENT_NODE && !has_markers (n))
        fill_present (n->children, f);
      else if (n->type == XML_ELEMENT_NODE)
        {
          g_autofree char *owned = NULL;
          int ph = attr_placeholder (n, "data-im");
          const char *href = attr_peek (n, "data-im-href", &owned);
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

/* An attribute of an element made here: it cannot be there yet, so
 * libxml2's search for one to replace (xmlSetProp) is skipped. */
static void
prop_new (xmlNode *el, const char *name, const char *value)
{
  xmlNewProp (el, BAD_CAST name, BAD_CAST value);
}

static xmlNode *
new_child (xmlNode *parent, const Fill *f, const char *name, const char *cls,
           const char *style)
{
  xmlNode *el = xmlNewChild (parent, f->ns, BAD_CAST name, NULL);

  if (cls != NULL)
    prop_new (el, "class", cls);
  if (style != NULL)
    prop_new (el, "style", style);
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

  prop_new (cell, "bgcolor", bgcolor);
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
  const LangWords *words = w ? w : lang_words_find ("en");
  g_autofree char *alt = g_strconcat (words->alt_before, f->values[PH_ORG_NAME],
                                      words->alt_after, NULL);
  char width[16], height[16];

  /* shown at half its pixels: sharp on the 2x screens of phones */
  g_snprintf (width, sizeof width, "%u", MAX (t->logo_width / 2, 1u));
  g_snprintf (height, sizeof height, "%u", MAX (t->logo_height / 2, 1u));
  prop_new (img, "src", src);
  prop_new (img, "alt", alt);
  prop_new (img, "width", width);
  prop_new (img, "height", height);
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

  prop_new (table, "role", "presentation");
  prop_new (table, "width", "100%");
  prop_new (table, "cellpadding", "0");
  prop_new (table, "cellspacing", "0");
  prop_new (table, "border", "0");
  prop_new (table, "bgcolor", bgcolor);
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

  prop_new (wrapper, "lang", f->lang);
  xmlNodeSetLang (wrapper, BAD_CAST f->lang);
  prop_new (wrapper, "dir", lang_dir (f->lang));
  prop_new (td, "align", "center");
  card = new_table (td, f, "card", STYLE_CARD, COLOR_CARD);
  prop_new (card, "align", "center");
  return card;
}

static xmlNode *
add_head (xmlNode *html, const Fill *f, const char *subject)
{
  xmlNode *head = new_child (html, f, "head", NULL, NULL);
  xmlNode *meta = new_child (head, f, "meta", NULL, NULL);

  /* Our own, so libxml2's XHTML mode does not add a second one. */
  prop_new (meta, "http-equiv", "Content-Type");
  prop_new (meta, "content", "text/html; charset=UTF-8");
  /* phones: the layout's own width, no zoomed-out desktop page */
  meta = new_child (head, f, "meta", NULL, NULL);
  prop_new (meta, "name", "viewport");
  prop_new (meta, "content", "width=device-width, initial-scale=1");
  /* the design is light with explicit colours: do not invert it */
  meta = new_child (head, f, "meta", NULL, NULL);
  prop_new (meta, "name", "color-scheme");
  prop_new (meta, "content", "light");
  meta = new_child (head, f, "meta", NULL, NULL);
  prop_new (meta, "name", "supported-color-schemes");
  prop_new (meta, "content", "light");
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
  /* Element and attribute names go into a dictionary instead of one
   * copy each (freed with the document).  It is this document's own:
   * renders run on several threads at once, and a libxml2 dictionary
   * must not be shared by documents being built. */
  doc->dict = xmlDictCreate ();
  xmlCreateIntSubset (doc, BAD_CAST "html", BAD_CAST XHTML_PUBLIC, BAD_CAST XHTML_SYSTEM);
  xmlNode *html = xmlNewDocNode (doc, NULL, BAD_CAST "html", NULL);
  xmlDocSetRootElement (doc, html);
  f->ns = xmlNewNs (html, BAD_CAST XHTML_NS, NULL);
  xmlSetNs (html, f->ns);
  prop_new (html, "lang", f->lang);
  xmlNodeSetLang (html, BAD_CAST f->lang);

  prop_new (html, "dir", lang_dir (f->lang));

  add_head (html, f, subject);
  xmlNode *body = new_child (html, f, "body", NULL, STYLE_BODY);
  prop_new (body, "bgcolor", COLOR_PAGE);
  xmlNode *card = add_wrapper (body, f);
  add_section (card, f, "invitation", STYLE_INVITE, COLOR_CARD, tpl);
  xmlNode *signature = add_section (card, f, "signature", STYLE_SIGNATURE, COLOR_CARD, sig);
  add_logo (signature, t, f, org->logo_cid);
  *notice_cell = add_section (card, f, "privacy-notice", STYLE_NOTICE, COLOR_NOTICE,
                              notice);
  return doc;
}

/* XHTML mode: <p></p> and <br />, never <p/>, which HTML parsers read
 * as an opening tag. (transfer full) */
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

/* The rest of a render once the values are in f: the subject with the
 * start's date, the document, the notice's hash, the HTML and the text.
 * (transfer full) */
static Rendered *
render_doc (const Templates *t, const RenderOrg *org, Fill *f, GDateTime *start,
            const Part *tpl, const Part *sig, const Part *notice, GError **error)
{
  g_autoptr(Rendered) r = rendered_new (t, f, tpl, sig, notice);
  if (start != NULL)
    {
      /* the date in the subject, so the inbox list shows when */
      g_autoptr(GDateTime) local = to_zone (start, org->timezone);
      g_autofree char *day = format_day_time (local, lang_words_find (f->lang));
      g_free (r->subject);
      r->subject = g_strdup_printf ("%s, %s", tpl->subject, day);
    }
  xmlNode *notice_cell = NULL;
  g_autoptr(xmlDoc) doc = build_doc (t, org, f, r->subject, tpl, sig, notice, &notice_cell);
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
  return render_doc (t, org, &f, start, tpl, sig, notice, error);
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
  return render_doc (t, org, &f, start, tpl, sig, notice, error);
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
