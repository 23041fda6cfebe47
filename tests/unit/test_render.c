/*
 * test_render.c - templates_load, render_check_file (the template policy
 * alone), render_invitation, render_format_time and render_plain_text.
 *
 * Loads the real templates from $srcdir/templates and $srcdir/signatures,
 * renders in every shipped language and parses the HTML back; checks
 * that request values cannot add markup, that the privacy notice is in
 * every message even when a template tries to leave it out or hide it,
 * and that hostile template files (tests/data/render/reject-*.xhtml) are
 * refused.  Every case is its own named cmocka test, so a failure says
 * which.  Invitations are built through validate_invitation, as the
 * daemon builds them.  Temporary folders come from g_dir_make_tmp and
 * are removed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "render.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (xmlDoc, xmlFreeDoc)

#define ORG_NAME  "Region Exempel"
#define DPO_EMAIL "dataskyddsombud@example.org"
#define SLOGAN    "Digitalt när det är möjligt, fysiskt när det behövs"
#define LOGO_CID  "logo.1234@example.org"
#define LINK      "https://meet.example.org/j/4711?pin=1234"
#define NOW       "2026-01-01T00:00:00Z"

static Templates *real;          /* the shipped templates, loaded once */
static const RenderOrg org = { ORG_NAME, DPO_EMAIL, SLOGAN, LOGO_CID };

/* ---- helpers ------------------------------------------------------------ */

static const char *
srcdir (void)
{
  const char *s = g_getenv ("srcdir");
  return s != NULL && *s != '\0' ? s : ".";
}

static char *
src_path (const char *rel)
{
  return g_build_filename (srcdir (), rel, NULL);
}

static void
attr_free (gpointer p)
{
  RawAttr *a = p;
  g_free (a->name);
  g_free (a->value);
  g_free (a);
}

static void
req_add (RawRequest *req, const char *name, const char *value)
{
  RawAttr *a;

  if (value == NULL)
    return;
  a = g_new0 (RawAttr, 1);
  a->name = g_strdup (name);
  a->value = g_strdup (value);
  g_ptr_array_add (req->attrs, a);
}

/* What an invitation in a test asks for; NULL fields are left out. */
typedef struct {
  const char *lang;
  const char *link;
  const char *booking;
  const char *meeting_time;
  const char *meeting_end;
  const char *duration;
  const char *unit;
} Ask;

/* Through the real gate; NULL with *why filled when refused. */
static Invitation *
invitation_for (const Templates *t, const Ask *ask, Refusal *why)
{
  static const char *const hosts[] = { "*.example.org", NULL };
  g_autoptr(RawRequest) req = g_new0 (RawRequest, 1);
  g_autoptr(GDateTime) now = g_date_time_new_from_iso8601 (NOW, NULL);
  ValidateContext ctx = { hosts, 10, "sv", "evisit", templates_lookup,
                          (gpointer) t, now };
  Invitation *inv = NULL;

  req->attrs = g_ptr_array_new_with_free_func (attr_free);
  req_add (req, "request", "preview");
  req_add (req, "link", ask->link ? ask->link : LINK);
  req_add (req, "bcc", "anna.andersson@example.com");
  req_add (req, "staff", "SE2321000016-ABCD");
  req_add (req, "lang", ask->lang);
  req_add (req, "booking", ask->booking);
  req_add (req, "meeting_time", ask->meeting_time);
  req_add (req, "meeting_end", ask->meeting_end);
  req_add (req, "duration", ask->duration);
  req_add (req, "unit", ask->unit);
  refusal_clear (why);
  if (!validate_invitation (req, &ctx, &inv, why))
    return NULL;
  return inv;
}

static Rendered *
render_ask (const Templates *t, const RenderOrg *o, const Ask *ask)
{
  Refusal why;
  g_autoptr(GError) error = NULL;
  g_autoptr(Invitation) inv = invitation_for (t, ask, &why);

  if (inv == NULL)
    fail_msg ("refused: %s %s", refusal_code_name (why.code), why.message);
  Rendered *r = render_invitation (t, o, inv, &error);
  if (r == NULL)
    fail_msg ("render failed: %s", error->message);
  return r;
}

static int parse_errors;

static void
count_error (void *data, xmlErrorPtr err)
{
  (void) data;
  if (err != NULL && err->level >= XML_ERR_WARNING)
    parse_errors++;
}

/* Parses html back; any libxml2 error or warning fails the test. */
static xmlDoc *
parse_back (const char *html)
{
  parse_errors = 0;
  xmlSetStructuredErrorFunc (NULL, count_error);
  xmlDoc *doc = xmlReadMemory (html, (int) strlen (html), NULL, NULL,
                               XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  xmlSetStructuredErrorFunc (NULL, NULL);
  assert_non_null (doc);
  assert_int_equal (parse_errors, 0);
  return doc;
}

static void
collect_elements (xmlNode *n, const char *name, GPtrArray *out)
{
  for (; n != NULL; n = n->next)
    if (n->type == XML_ELEMENT_NODE)
      {
        if (strcmp ((const char *) n->name, name) == 0)
          g_ptr_array_add (out, n);
        collect_elements (n->children, name, out);
      }
}

static GPtrArray *
elements (xmlDoc *doc, const char *name)
{
  GPtrArray *out = g_ptr_array_new ();
  collect_elements (xmlDocGetRootElement (doc), name, out);
  return out;
}

static char *
prop (xmlNode *el, const char *name)
{
  xmlChar *v = xmlGetProp (el, BAD_CAST name);
  char *s = g_strdup ((const char *) v);
  xmlFree (v);
  return s;
}

static xmlNode *
body_of (xmlDoc *doc)
{
  g_autoptr(GPtrArray) bodies = elements (doc, "body");
  assert_int_equal (bodies->len, 1);
  return g_ptr_array_index (bodies, 0);
}

/* The only element child of n, which must be called name. */
static xmlNode *
only_child (xmlNode *n, const char *name)
{
  xmlNode *found = NULL;
  for (xmlNode *c = n->children; c != NULL; c = c->next)
    if (c->type == XML_ELEMENT_NODE)
      {
        assert_null (found);
        found = c;
      }
  assert_non_null (found);
  assert_string_equal ((const char *) found->name, name);
  return found;
}

/* The renderer's skeleton: body > table.wrapper > tr > td > table.card,
 * whose rows are the sections.  Returns the card. */
static xmlNode *
card_of (xmlDoc *doc)
{
  xmlNode *wrapper = only_child (body_of (doc), "table");
  g_autofree char *wcls = prop (wrapper, "class");
  assert_string_equal (wcls, "wrapper");
  xmlNode *card = only_child (only_child (only_child (wrapper, "tr"), "td"), "table");
  g_autofree char *ccls = prop (card, "class");
  assert_string_equal (ccls, "card");
  return card;
}

/* The card's rows, in order, as their one cell's class names. */
static char *
section_classes (xmlDoc *doc)
{
  GString *s = g_string_new (NULL);
  for (xmlNode *c = card_of (doc)->children; c != NULL; c = c->next)
    if (c->type == XML_ELEMENT_NODE)
      {
        g_autofree char *cls = prop (only_child (c, "td"), "class");
        g_string_append_printf (s, "%s%s", s->len ? "," : "", cls ? cls : "?");
      }
  return g_string_free (s, FALSE);
}

/* The last row's cell: where the renderer puts the notice. */
static xmlNode *
notice_div (xmlDoc *doc)
{
  xmlNode *last = NULL;
  for (xmlNode *c = card_of (doc)->children; c != NULL; c = c->next)
    if (c->type == XML_ELEMENT_NODE)
      last = only_child (c, "td");
  return last;
}

static char *
text_of (xmlNode *n)
{
  xmlChar *v = xmlNodeGetContent (n);
  char *s = g_strdup ((const char *) v);
  xmlFree (v);
  return s;
}

/* The body's text as a reader sees it: white space runs as one space. */
static char *
html_text (const char *html)
{
  g_autoptr(xmlDoc) doc = parse_back (html);
  g_autofree char *raw = text_of (body_of (doc));
  g_auto(GStrv) words = g_strsplit_set (raw, " \t\n", -1);
  GString *s = g_string_new (NULL);

  for (char **w = words; *w != NULL; w++)
    if (**w != '\0')
      g_string_append_printf (s, "%s%s", s->len ? " " : "", *w);
  return g_string_free (s, FALSE);
}

static void
assert_contains (const char *haystack, const char *needle)
{
  if (strstr (haystack, needle) == NULL)
    fail_msg ("\"%s\" not found in:\n%s", needle, haystack);
}

static void
assert_lacks (const char *haystack, const char *needle)
{
  if (strstr (haystack, needle) != NULL)
    fail_msg ("\"%s\" found in:\n%s", needle, haystack);
}

/* White space runs as one space, trimmed: how a reader sees text
 * whatever the line breaks. (transfer full) */
static char *
squeeze (const char *s)
{
  g_auto(GStrv) words = g_strsplit_set (s, " \t\n", -1);
  GString *out = g_string_new (NULL);

  for (char **w = words; *w != NULL; w++)
    if (**w != '\0')
      g_string_append_printf (out, "%s%s", out->len ? " " : "", *w);
  return g_string_free (out, FALSE);
}

/* needle in the plain text, line breaks read as spaces (it is folded
 * at 78 characters) */
static void
assert_text_has (const char *text, const char *needle)
{
  g_autofree char *t = squeeze (text);
  g_autofree char *n = squeeze (needle);
  assert_contains (t, n);
}

/*
 * The routine's notice word for word, with only the organisation and
 * the data protection address filled in: Swedish as the routine has
 * it, English as the shipped translation.  No full stop after the
 * address: the routine has none.  (transfer full)
 */
static char *
notice_verbatim (const char *lang, const char *o)
{
  if (strcmp (lang, "sv") == 0)
    return g_strdup_printf ("%s kommer inte att spela in eller spara det digitala "
                            "mötet. %s kan inte styra över hur övriga deltagare "
                            "hanterar den information som framkommer vid det "
                            "digitala mötet. Om du har frågor kring hur %s "
                            "behandlar personuppgifter är du välkommen att "
                            "kontakta " DPO_EMAIL, o, o, o);
  if (strcmp (lang, "ar") == 0)
    return g_strdup_printf ("لن تقوم %s بتسجيل الاجتماع الرقمي أو حفظه. لا تستطيع %s "
                            "التحكم في كيفية تعامل المشاركين الآخرين مع المعلومات "
                            "التي تُطرح خلال الاجتماع الرقمي. إذا كانت لديك أسئلة حول "
                            "كيفية معالجة %s للبيانات الشخصية، فنرحب بتواصلك مع "
                            DPO_EMAIL, o, o, o);
  return g_strdup_printf ("%s will not record or save the digital meeting. %s "
                          "cannot control how other participants handle the "
                          "information that comes up during the digital "
                          "meeting. If you have questions about how %s processes "
                          "personal data, you are welcome to contact " DPO_EMAIL,
                          o, o, o);
}

/*
 * What every rendered message must be, whatever the template: the
 * skeleton, the three sections with the notice last, the logo by cid,
 * no markers left, XHTML-mode empty elements, and a notice that names
 * the DPO in html (as mailto:) and text.
 */
static void
assert_message_shape (const Rendered *r, const RenderOrg *o)
{
  g_autoptr(xmlDoc) doc = parse_back (r->html);
  g_autofree char *classes = section_classes (doc);
  g_autoptr(GPtrArray) imgs = elements (doc, "img");
  g_autoptr(GPtrArray) metas = elements (doc, "meta");
  xmlNode *notice = notice_div (doc);

  assert_true (g_str_has_prefix (r->html, "<!DOCTYPE html PUBLIC"));
  assert_lacks (r->html, "<?xml");
  assert_lacks (r->html, "data-im");
  assert_lacks (r->html, "<p/>");
  assert_lacks (r->html, "<div/>");
  assert_lacks (r->html, "<!--");
  assert_lacks (r->html, "<style");
  assert_string_equal (classes, "invitation,signature,privacy-notice");
  assert_int_equal (metas->len, 4);   /* charset, viewport, colour schemes */
  assert_contains (r->html, "<meta name=\"color-scheme\" content=\"light\" />");
  assert_int_equal (imgs->len, 1);
  g_autofree char *src = prop (g_ptr_array_index (imgs, 0), "src");
  assert_string_equal (src, "cid:" LOGO_CID);
  g_autofree char *notice_raw = text_of (notice);
  g_autofree char *notice_text = squeeze (notice_raw);
  g_autofree char *verbatim = notice_verbatim (r->lang, o->org_name);
  g_autofree char *block = o->slogan && *o->slogan
    ? g_strdup_printf ("%s %s", o->slogan, verbatim) : g_strdup (verbatim);
  /* the notice's cell holds the slogan and the notice and nothing else */
  assert_string_equal (notice_text, block);
  assert_contains (r->html, "href=\"mailto:" DPO_EMAIL "\"");
  g_autofree char *style = prop (notice, "style");
  assert_lacks (style, "display");
  g_autofree char *body_style = prop (body_of (doc), "style");
  assert_lacks (body_style, "display");
  g_autofree char *text_words = squeeze (r->text);
  g_autofree char *text_block = g_strconcat (block, " ", NULL);
  if (!g_str_has_suffix (text_words, block))
    assert_contains (text_words, text_block);
  assert_true (g_str_has_suffix (r->text, "\n") && !g_str_has_suffix (r->text, "\n\n"));
  assert_true (g_utf8_validate (r->html, -1, NULL) && g_utf8_validate (r->text, -1, NULL));
}

/* ---- temporary template folders ---------------------------------------- */

typedef struct {
  char *root;
  char *templates;
  char *signatures;
} TmpDirs;

static void
tmp_dirs_init (TmpDirs *d)
{
  g_autoptr(GError) error = NULL;
  d->root = g_dir_make_tmp (NULL, &error);   /* GLib picks a unique name */
  assert_non_null (d->root);
  d->templates = g_build_filename (d->root, "templates", NULL);
  d->signatures = g_build_filename (d->root, "signatures", NULL);
  assert_int_equal (g_mkdir (d->templates, 0700), 0);
  assert_int_equal (g_mkdir (d->signatures, 0700), 0);
}

static void
tmp_dirs_clear (TmpDirs *d)
{
  testutil_rm_rf (d->root);
  g_free (d->root);
  g_free (d->templates);
  g_free (d->signatures);
}

/*
 * One file of a test folder.  source: "@rel" a file under $srcdir,
 * "%name" a fixture in tests/data/render, "=text" literal bytes,
 * "!big-template" / "!big-logo" one byte over the limit.
 */
typedef struct {
  char dir;               /* 't' templates, 's' signatures */
  const char *name;
  const char *source;
} FileSpec;

static GBytes *
spec_bytes (const char *source)
{
  g_autofree char *path = NULL;
  char *data = NULL;
  gsize len = 0;

  if (source[0] == '=')
    return g_bytes_new (source + 1, strlen (source + 1));
  if (strcmp (source, "!big-template") == 0)
    {
      GString *s = g_string_new ("<html xmlns=\"http://www.w3.org/1999/xhtml\"><head>"
                                 "<title>x</title></head><body><p><a data-im=\"link\">"
                                 "x</a></p></body></html><!--");
      while (s->len < TEMPLATE_MAX_BYTES - 2)
        g_string_append_c (s, 'x');
      g_string_append (s, "-->");
      return g_string_free_to_bytes (s);
    }
  if (strcmp (source, "!big-logo") == 0)
    {
      guint8 *buf = g_malloc0 (LOGO_MAX_BYTES + 1);
      memcpy (buf, "\x89PNG\r\n\x1a\n", 8);
      return g_bytes_new_take (buf, LOGO_MAX_BYTES + 1);
    }
  path = source[0] == '@' ? src_path (source + 1)
                          : g_build_filename (srcdir (), "tests", "data", "render",
                                              source + 1, NULL);
  if (!g_file_get_contents (path, &data, &len, NULL))
    fail_msg ("cannot read %s", path);
  return g_bytes_new_take (data, len);
}

static void
write_specs (const TmpDirs *d, const FileSpec *specs)
{
  for (; specs->name != NULL; specs++)
    {
      g_autoptr(GBytes) bytes = spec_bytes (specs->source);
      g_autofree char *path = g_build_filename (specs->dir == 't' ? d->templates
                                                                  : d->signatures,
                                                specs->name, NULL);
      gsize len;
      const char *data = g_bytes_get_data (bytes, &len);
      assert_true (g_file_set_contents (path, data, (gssize) len, NULL));
    }
}

#define REAL_SV_NOTICE  { 't', "privacy-notice.sv.xhtml", "@templates/privacy-notice.sv.xhtml" }
#define REAL_EN_NOTICE  { 't', "privacy-notice.en.xhtml", "@templates/privacy-notice.en.xhtml" }
#define REAL_SV_TPL     { 't', "evisit.sv.xhtml", "@templates/evisit.sv.xhtml" }
#define REAL_EN_TPL     { 't', "evisit.en.xhtml", "@templates/evisit.en.xhtml" }
#define REAL_SV_SIG     { 's', "evisit.sv.xhtml", "@signatures/evisit.sv.xhtml" }
#define REAL_EN_SIG     { 's', "evisit.en.xhtml", "@signatures/evisit.en.xhtml" }
#define REAL_LOGO       { 's', "logo.png", "@signatures/logo.png" }
#define END_SPECS       { 0, NULL, NULL }

/* The real Swedish notice, signature and logo, plus one template. */
static Templates *
load_with_template (const char *fixture, TmpDirs *d, GError **error)
{
  g_autofree char *source = g_strconcat ("%", fixture, NULL);
  const FileSpec specs[] = {
    REAL_SV_NOTICE, REAL_SV_SIG, REAL_LOGO,
    { 't', "evisit.sv.xhtml", source }, END_SPECS
  };

  tmp_dirs_init (d);
  write_specs (d, specs);
  return templates_load (d->templates, d->signatures, error);
}

/* ---- the shipped templates ------------------------------------------------- */

static void
test_have (void **state)
{
  (void) state;
  assert_true (templates_have (real, "evisit", "sv"));
  assert_true (templates_have (real, "evisit", "en"));
  assert_true (templates_have (real, "evisit", "ar"));
  assert_false (templates_have (real, "cancel", "sv"));   /* never asked for */
  assert_true (templates_lookup ("evisit", "en", real));
  assert_false (templates_have (real, "evisit", "de"));
  assert_false (templates_have (real, "privacy-notice", "sv"));
  assert_false (templates_have (real, "other", "sv"));
  assert_false (templates_lookup ("evisit", NULL, real));
}

typedef struct {
  const char *lang;
  const char *subject;
  const char *subject_when;   /* after the subject, for the meeting's start */
  const char *phrases[8];     /* in both html and text */
} LangCase;

static const LangCase lang_cases[] = {
  { "sv", "Inbjudan till videomöte", "onsdag 2 december 2026 kl. 14.00",
    { "Du är inbjuden till ett videomöte (eVisit) med " ORG_NAME,
      "Mötet börjar onsdag 2 december 2026 kl. 14.00 (svensk tid) och slutar kl. 14.30.",
      "Bokningsreferens: AB-123", "väntrum",
      "går inte att svara på", "Med vänliga hälsningar", NULL } },
  { "ar", "دعوة إلى اجتماع فيديو", "الأربعاء 2 ديسمبر 2026 الساعة 14:00",
    { "أنت مدعو إلى اجتماع فيديو (eVisit) مع " ORG_NAME,
      "يبدأ الاجتماع الأربعاء 2 ديسمبر 2026 الساعة 14:00 (بتوقيت السويد) وينتهي "
      "الساعة 14:30.",
      "رقم الحجز: AB-123", "غرفة انتظار", "لا يمكن الرد عليها", "مع أطيب التحيات",
      NULL } },
  { "en", "Invitation to a video meeting", "Wednesday 2 December 2026 at 14:00",
    { "You are invited to a video meeting (eVisit) with " ORG_NAME,
      "The meeting starts on Wednesday 2 December 2026 at 14:00 (Swedish time) and ends at 14:30.",
      "Booking reference: AB-123", "waiting room",
      "cannot be replied to", "Kind regards", NULL } },
};


static void
test_render_lang (void **state)
{
  const LangCase *c = *state;
  Ask ask = { c->lang, NULL, "AB-123", "2026-12-02T13:00:00Z", NULL, NULL };
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);
  g_autofree char *lang_attr = g_strdup_printf ("lang=\"%s\"", c->lang);

  g_autofree char *subject = g_strdup_printf ("%s, %s", c->subject, c->subject_when);
  assert_string_equal (r->subject, subject);
  assert_string_equal (r->lang, c->lang);
  assert_contains (r->html, lang_attr);
  assert_contains (r->html, c->subject);
  g_autofree char *html_words = html_text (r->html);
  for (const char *const *p = c->phrases; *p != NULL; p++)
    {
      assert_contains (html_words, *p);
      assert_text_has (r->text, *p);
    }
  if (strcmp (c->lang, "ar") == 0)
    {
      assert_contains (r->html, "eVisit، <span dir=\"ltr\">" ORG_NAME "</span>");
      assert_contains (r->text, "eVisit، " ORG_NAME "\n");
    }
  else
    {
      assert_contains (r->html, "eVisit, <span>" ORG_NAME "</span>");
      assert_contains (r->text, "eVisit, " ORG_NAME "\n");
    }
  assert_contains (r->text, "\n" SLOGAN "\n");
  assert_contains (r->text, "\n" LINK "\n");
  assert_contains (r->html, "href=\"" LINK "\"");
  assert_message_shape (r, &org);
  /* the Swedish slogan is marked as Swedish in every other language */
  if (strcmp (c->lang, "sv") != 0)
    assert_contains (r->html, strcmp (c->lang, "ar") == 0
                              ? "lang=\"sv\" xml:lang=\"sv\" dir=\"ltr\">" SLOGAN "<"
                              : "lang=\"sv\" xml:lang=\"sv\">" SLOGAN "<");
}

static void
test_hashes_and_logo (void **state)
{
  (void) state;
  Ask ask = { "en", NULL, NULL, NULL };
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);
  const struct { const char *rel; const char *got; } files[] = {
    { "templates/evisit.en.xhtml", r->template_sha256 },
    { "templates/privacy-notice.en.xhtml", r->notice_sha256 },
    { "signatures/evisit.en.xhtml", r->signature_sha256 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = src_path (files[i].rel);
      g_autofree char *data = NULL;
      gsize len;
      assert_true (g_file_get_contents (path, &data, &len, NULL));
      g_autofree char *want = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                           (const guchar *) data, len);
      assert_string_equal (files[i].got, want);
    }
  g_autofree char *logo_path = src_path ("signatures/logo.png");
  g_autofree char *logo = NULL;
  gsize logo_len;
  assert_true (g_file_get_contents (logo_path, &logo, &logo_len, NULL));
  assert_int_equal (g_bytes_get_size (r->logo), logo_len);
  assert_memory_equal (g_bytes_get_data (r->logo, NULL), logo, logo_len);
  /* 200 x 60 pixels shown at 100 x 30: sharp on 2x screens */
  assert_contains (r->html, "width=\"100\" height=\"30\"");
  assert_contains (r->html, "alt=\"" ORG_NAME " eVisit logo\"");
}

/* A booking with the XML-significant characters the gate lets through
 * stays text; markup itself never passes the gate. */
static void
test_booking_is_text (void **state)
{
  (void) state;
  Ask ask = { "sv", NULL, "R&D 'A' &amp; #1", NULL };
  Ask markup = { "sv", NULL, "<b>&amp;</b>", NULL };
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);
  g_autoptr(xmlDoc) doc = parse_back (r->html);
  g_autoptr(Invitation) refused = NULL;
  Refusal why;

  assert_contains (r->html, "R&amp;D 'A' &amp;amp; #1");
  assert_contains (r->text, "Bokningsreferens: R&D 'A' &amp; #1\n");
  assert_message_shape (r, &org);
  refused = invitation_for (real, &markup, &why);
  assert_null (refused);
  assert_string_equal (why.field, "booking");
}

typedef struct {
  const char *name;
  const char *link;
  const char *href_html;      /* as serialised, NULL: the gate refuses it */
} LinkCase;

static const LinkCase link_cases[] = {
  { "ampersand", "https://meet.example.org/j/1?a=1&b=2",
    "href=\"https://meet.example.org/j/1?a=1&amp;b=2\"" },
  { "apostrophe", "https://meet.example.org/j/1?n='x'",
    "href=\"https://meet.example.org/j/1?n='x'\"" },
  { "entity-like", "https://meet.example.org/j/1?x=&quot;&lt;",
    "href=\"https://meet.example.org/j/1?x=&amp;quot;&amp;lt;\"" },
  { "quote", "https://meet.example.org/j/1?q=\"><script>", NULL },
  { "angle", "https://meet.example.org/j/1?q=<b>", NULL },
};

static void
test_link (void **state)
{
  const LinkCase *c = *state;
  Ask ask = { "sv", c->link, NULL, NULL };
  Refusal why;

  if (c->href_html == NULL)
    {
      g_autoptr(Invitation) inv = invitation_for (real, &ask, &why);
      assert_null (inv);
      assert_int_equal (why.code, REFUSAL_INVALID_LINK);
      return;
    }
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);
  g_autoptr(xmlDoc) doc = parse_back (r->html);
  g_autoptr(GPtrArray) links = elements (doc, "a");
  gboolean found = FALSE;

  assert_contains (r->html, c->href_html);
  for (guint i = 0; i < links->len; i++)
    {
      g_autofree char *href = prop (g_ptr_array_index (links, i), "href");
      g_autofree char *text = text_of (g_ptr_array_index (links, i));
      found |= g_strcmp0 (href, c->link) == 0 && g_strcmp0 (text, c->link) == 0;
    }
  assert_true (found);
  g_autofree char *line = g_strdup_printf ("\n%s\n", c->link);
  assert_contains (r->text, line);
}

typedef struct {
  const char *name;
  const char *lang;
  const char *booking;
  const char *meeting_time;
  const char *present[3];
  const char *absent[3];
} BlockCase;

static const BlockCase block_cases[] = {
  { "sv-neither", "sv", NULL, NULL, { "Om knappen inte fungerar", NULL },
    { "Bokningsreferens", "Mötet börjar", NULL } },
  { "sv-booking-only", "sv", "AB-1", NULL, { "Bokningsreferens: AB-1", NULL },
    { "Mötet börjar", NULL } },
  { "en-time-only", "en", NULL, "2026-06-15T09:05:00-03:30",
    { "starts on Monday 15 June 2026 at 14:35 (Swedish time) and ends at 15:05.", NULL },
    { "Booking reference", NULL } },
};

static void
test_blocks (void **state)
{
  const BlockCase *c = *state;
  Ask ask = { c->lang, NULL, c->booking, c->meeting_time };
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);

  g_autofree char *html_words = html_text (r->html);

  for (const char *const *p = c->present; *p != NULL; p++)
    {
      assert_contains (html_words, *p);
      assert_text_has (r->text, *p);
    }
  for (const char *const *p = c->absent; *p != NULL; p++)
    {
      assert_lacks (r->html, *p);
      assert_lacks (r->text, *p);
    }
  assert_lacks (r->text, "\n\n\n");
  assert_message_shape (r, &org);
}

static void
test_no_slogan (void **state)
{
  (void) state;
  const RenderOrg plain = { "Exempelkommunen", DPO_EMAIL, "", LOGO_CID };
  Ask ask = { "sv", NULL, NULL, NULL };
  g_autoptr(Rendered) r = render_ask (real, &plain, &ask);

  assert_contains (r->text, "Med vänliga hälsningar\neVisit, Exempelkommunen\n\n");
  assert_contains (r->text, "\n\nExempelkommunen kommer inte att spela in");
  assert_contains (r->html, "alt=\"eVisit-logotyp, Exempelkommunen\"");
  assert_message_shape (r, &plain);
}

static void
test_bad_org_utf8 (void **state)
{
  (void) state;
  const RenderOrg bad = { "Region \xff", DPO_EMAIL, SLOGAN, LOGO_CID };
  Ask ask = { "sv", NULL, NULL, NULL };
  Refusal why;
  g_autoptr(GError) error = NULL;
  g_autoptr(Invitation) inv = invitation_for (real, &ask, &why);

  assert_non_null (inv);
  g_autoptr(Rendered) r = render_invitation (real, &bad, inv, &error);
  assert_null (r);
  assert_true (g_error_matches (error, RENDER_ERROR, RENDER_ERROR_FAILED));
}

/* An Invitation checked against other templates than the renderer's. */
static void
test_render_unknown_language (void **state)
{
  (void) state;
  const FileSpec files[] = { REAL_SV_TPL, REAL_SV_NOTICE, REAL_SV_SIG, REAL_LOGO,
                             END_SPECS };
  Ask ask = { "en", NULL, NULL, NULL };
  Refusal why;
  g_autoptr(GError) error = NULL;
  TmpDirs d;

  tmp_dirs_init (&d);
  write_specs (&d, files);
  g_autoptr(Templates) sv_only = templates_load (d.templates, d.signatures, &error);
  tmp_dirs_clear (&d);
  assert_non_null (sv_only);
  g_autoptr(Invitation) inv = invitation_for (real, &ask, &why);
  assert_non_null (inv);
  g_autoptr(Rendered) r = render_invitation (sv_only, &org, inv, &error);
  assert_null (r);
  assert_true (g_error_matches (error, RENDER_ERROR, RENDER_ERROR_MISSING));
}

/* The hosting unit from the request, as text; absent, no line. */
static void
test_unit (void **state)
{
  (void) state;
  Ask ask = { "sv", NULL, NULL, NULL, NULL, NULL, "Barn- & ungdomsklinik (BUP)" };
  Ask none = { "en", NULL, NULL, NULL, NULL, NULL, NULL };
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);
  g_autoptr(Rendered) en = render_ask (real, &org, &none);

  assert_contains (r->text, "\nMötet hålls av Barn- & ungdomsklinik (BUP).\n");
  assert_contains (r->html, "<strong>Barn- &amp; ungdomsklinik (BUP)</strong>");
  assert_lacks (en->text, "hosted by");
  assert_message_shape (r, &org);
}

/* Whom to call: the configured contact, else the words for its absence;
 * a contact that looks like markup stays text. */
static void
test_contact (void **state)
{
  (void) state;
  const RenderOrg with = { ORG_NAME, DPO_EMAIL, SLOGAN, LOGO_CID, NULL,
                           "Barnkliniken <b>010-123 45 67</b>" };
  Ask ask = { "sv", NULL, NULL, NULL, NULL, NULL };
  g_autoptr(Rendered) r = render_ask (real, &with, &ask);
  g_autoptr(Rendered) plain = render_ask (real, &org, &ask);
  g_autoptr(xmlDoc) doc = parse_back (r->html);
  g_autoptr(GPtrArray) bold = elements (doc, "b");

  assert_contains (r->text, "Om länken inte fungerar eller du inte kan delta\n"
                            "Kontakta Barnkliniken <b>010-123 45 67</b>.\n");
  assert_contains (r->html, "Barnkliniken &lt;b&gt;010-123 45 67&lt;/b&gt;");
  assert_int_equal (bold->len, 0);
  assert_lacks (r->text, "den som bokade");
  assert_contains (plain->text, "Om länken inte fungerar eller du inte kan delta\n"
                                "Kontakta den som bokade mötet.\n");
  assert_message_shape (r, &with);
}

/* The link as a button with words a screen reader can say, the address
 * written out below it; the plain text has the address on its own line
 * and not the button's words. */
static void
test_button (void **state)
{
  (void) state;
  Ask ask = { "en", NULL, NULL, NULL, NULL, NULL };
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);
  g_autoptr(xmlDoc) doc = parse_back (r->html);
  g_autoptr(GPtrArray) links = elements (doc, "a");
  guint buttons = 0, written = 0;

  for (guint i = 0; i < links->len; i++)
    {
      xmlNode *a = g_ptr_array_index (links, i);
      g_autofree char *href = prop (a, "href");
      g_autofree char *cls = prop (a, "class");
      g_autofree char *text = text_of (a);
      if (g_strcmp0 (href, LINK) != 0)
        continue;
      if (g_strcmp0 (cls, "button") == 0)
        {
          buttons++;
          assert_string_equal (text, "Join the video meeting");
        }
      else
        {
          written++;
          assert_string_equal (text, LINK);
          g_autofree char *style = prop (a, "style");
          assert_contains (style, "overflow-wrap:anywhere");
        }
    }
  assert_int_equal (buttons, 1);
  assert_int_equal (written, 1);
  assert_lacks (r->text, "Join the video meeting");
  assert_contains (r->text, "\n" LINK "\n");
}

/* The audit's notice evidence: the version attribute of the notice's
 * <html>, refused when it is not a plain name, and a hash of the notice
 * as rendered, which follows what was filled in, not only the file. */
#define NOTICE_HEAD "=<html xmlns=\"http://www.w3.org/1999/xhtml\""
#define NOTICE_BODY "><head><title>n</title></head><body><p><a data-im=\"dpo_email\">" \
                    "d</a></p></body></html>"

static Templates *
load_notice (const char *notice_source, GError **error)
{
  const FileSpec files[] = { REAL_SV_TPL, REAL_SV_SIG, REAL_LOGO,
                             { 't', "privacy-notice.sv.xhtml", notice_source },
                             END_SPECS };
  TmpDirs d;
  Templates *t;

  tmp_dirs_init (&d);
  write_specs (&d, files);
  t = templates_load (d.templates, d.signatures, error);
  tmp_dirs_clear (&d);
  return t;
}

static void
test_notice_version (void **state)
{
  (void) state;
  static const RenderOrg other = { ORG_NAME, "dpo.annan@example.org", SLOGAN, LOGO_CID,
                                     NULL, NULL };
  Ask ask = { "sv", NULL, NULL, NULL, NULL, NULL };
  g_autoptr(Rendered) a = render_ask (real, &org, &ask);
  g_autoptr(Rendered) b = render_ask (real, &other, &ask);
  g_autoptr(GError) error = NULL;
  g_autoptr(Templates) none = load_notice (NOTICE_HEAD NOTICE_BODY, &error);
  g_autoptr(Templates) bad = NULL;

  assert_string_equal (a->notice_version, "2026-12");
  assert_int_equal (strlen (a->notice_rendered_sha256), 64);
  assert_string_equal (a->notice_sha256, b->notice_sha256);
  assert_string_not_equal (a->notice_rendered_sha256, b->notice_rendered_sha256);
  assert_non_null (none);
  g_autoptr(Rendered) c = render_ask (none, &org, &ask);
  assert_null (c->notice_version);
  bad = load_notice (NOTICE_HEAD " version=\"v 2; drop\"" NOTICE_BODY, &error);
  assert_null (bad);
  assert_contains (error->message, "version must be");
}

/* Lines of at most 78 characters (counted in characters, not bytes),
 * but for a single word that is longer (a link, kept whole). */
static void
assert_lines_fit (const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l != NULL; l++)
    if (g_utf8_strlen (*l, -1) > 78 && strchr (*l, ' ') != NULL)
      fail_msg ("line of %ld characters: %s", g_utf8_strlen (*l, -1), *l);
}

/*
 * What survives real clients: lang and dir on the wrapper as well as on
 * <html>; every section cell names its background and text colour (and
 * bgcolor); the notice on its own cell with its own background; plain
 * text folded at 78 with a long link whole on its own line.
 */
static void
test_layout (void **state)
{
  const char *lang = *state;
  const char *long_link = "https://meet.example.org/j/4711?pin=1234&token="
                          "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5xY7z";
  Ask ask = { lang, long_link, "AB-123", "2026-12-02T13:00:00Z", NULL, NULL,
              "Barnkliniken" };
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);
  g_autoptr(xmlDoc) doc = parse_back (r->html);
  xmlNode *html = xmlDocGetRootElement (doc);
  xmlNode *wrapper = only_child (body_of (doc), "table");
  const char *dir = strcmp (lang, "ar") == 0 ? "rtl" : "ltr";

  for (xmlNode *n = html; n != NULL; n = n == html ? wrapper : NULL)
    {
      g_autofree char *l = prop (n, "lang");
      g_autofree char *d = prop (n, "dir");
      assert_string_equal (l, lang);
      assert_string_equal (d, dir);
    }
  for (xmlNode *row = card_of (doc)->children; row != NULL; row = row->next)
    {
      if (row->type != XML_ELEMENT_NODE)
        continue;
      xmlNode *cell = only_child (row, "td");
      g_autofree char *style = prop (cell, "style");
      g_autofree char *bg = prop (cell, "bgcolor");
      assert_non_null (bg);
      assert_contains (style, "background-color:");
      assert_contains (style, ";color:#");
    }
  g_autofree char *notice_bg = prop (notice_div (doc), "bgcolor");
  assert_string_not_equal (notice_bg, "#ffffff");
  assert_lines_fit (r->text);
  g_autofree char *own_line = g_strconcat ("\n", long_link, "\n", NULL);
  assert_contains (r->text, own_line);
}

/* ---- meeting times ---------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *iso;
  const char *lang;
  const char *tz;             /* NULL: the default, Europe/Stockholm */
  const char *want;
} TimeCase;

/* UTC in, the organisation's wall clock out: an hour on in winter, two
 * in summer; an offset given in the request does not change the zone
 * the reader is told. */
static const TimeCase time_cases[] = {
  { "sv-utc-winter", "2026-12-03T10:00:00Z", "sv", NULL,
    "torsdag 3 december 2026 kl. 11.00 (svensk tid)" },
  { "sv-utc-summer", "2026-06-15T07:05:00Z", "sv", NULL,
    "måndag 15 juni 2026 kl. 09.05 (svensk tid)" },
  { "en-utc-winter", "2026-12-03T10:00:00Z", "en", NULL,
    "Thursday 3 December 2026 at 11:00 (Swedish time)" },
  { "en-utc-summer", "2026-06-15T07:05:00Z", "en", "Europe/Stockholm",
    "Monday 15 June 2026 at 09:05 (Swedish time)" },
  { "sv-offset-given", "2026-12-02T14:00:00+01:00", "sv", NULL,
    "onsdag 2 december 2026 kl. 14.00 (svensk tid)" },
  { "sv-new-year-in-utc", "2026-12-31T23:30:00Z", "sv", NULL,
    "fredag 1 januari 2027 kl. 00.30 (svensk tid)" },
  { "sv-dst-ends", "2026-10-25T01:30:00Z", "sv", NULL,
    "söndag 25 oktober 2026 kl. 02.30 (svensk tid)" },
  { "en-other-zone", "2026-06-15T07:05:00Z", "en", "Europe/Helsinki",
    "Monday 15 June 2026 at 10:05 (Europe/Helsinki, UTC+03:00)" },
  { "other-language-iso", "2026-12-02T13:00:00Z", "de", NULL,
    "2026-12-02 14:00 (Europe/Stockholm, UTC+01:00)" },
};

static void
test_format_time (void **state)
{
  const TimeCase *c = *state;
  g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601 (c->iso, NULL);
  assert_non_null (dt);
  g_autofree char *got = render_format_time (dt, c->lang, c->tz);
  assert_string_equal (got, c->want);
}

/* The end after the start: the clock time on the same day. */
static void
test_format_end (void **state)
{
  (void) state;
  g_autoptr(GDateTime) s = g_date_time_new_from_iso8601 ("2026-12-03T10:00:00Z", NULL);
  g_autoptr(GDateTime) e = g_date_time_add_minutes (s, 45);
  g_autoptr(GDateTime) late = g_date_time_add_minutes (s, 13 * 60);
  g_autofree char *sv = render_format_end (s, e, "sv", NULL);
  g_autofree char *en = render_format_end (s, e, "en", NULL);
  g_autofree char *next = render_format_end (s, late, "sv", NULL);

  assert_string_equal (sv, "kl. 11.45");
  assert_string_equal (en, "at 11:45");
  assert_string_equal (next, "fredag 4 december 2026 kl. 00.00");
}

/* The end from meeting_end or duration, shown in the mail; what is
 * refused is refused with its field named. */
typedef struct {
  const char *name;
  const char *end;
  const char *duration;
  const char *start;
  const char *want;           /* in the text; NULL: refused */
  const char *field;          /* refused with this field */
} EndCase;

static const EndCase end_cases[] = {
  { "default-30", NULL, NULL, "2026-12-03T10:00:00Z", "och slutar kl. 11.30.", NULL },
  { "duration-90", NULL, "90", "2026-12-03T10:00:00Z", "och slutar kl. 12.30.", NULL },
  { "end-utc", "2026-12-03T10:45:00Z", NULL, "2026-12-03T10:00:00Z",
    "och slutar kl. 11.45.", NULL },
  { "end-offset", "2026-12-03T12:15+01:00", NULL, "2026-12-03T10:00:00Z",
    "och slutar kl. 12.15.", NULL },
  { "end-before-start", "2026-12-03T09:00:00Z", NULL, "2026-12-03T10:00:00Z", NULL,
    "meeting_end" },
  { "end-equal-start", "2026-12-03T10:00:00Z", NULL, "2026-12-03T10:00:00Z", NULL,
    "meeting_end" },
  { "end-no-offset", "2026-12-03T11:00:00", NULL, "2026-12-03T10:00:00Z", NULL,
    "meeting_end" },
  { "end-too-late", "2026-12-04T10:01:00Z", NULL, "2026-12-03T10:00:00Z", NULL,
    "meeting_end" },
  { "both", "2026-12-03T11:00:00Z", "30", "2026-12-03T10:00:00Z", NULL, "duration" },
  { "duration-zero", NULL, "0", "2026-12-03T10:00:00Z", NULL, "duration" },
  { "duration-day-and-one", NULL, "1441", "2026-12-03T10:00:00Z", NULL, "duration" },
  { "duration-sign", NULL, "+30", "2026-12-03T10:00:00Z", NULL, "duration" },
  { "duration-words", NULL, "30min", "2026-12-03T10:00:00Z", NULL, "duration" },
  { "duration-no-start", NULL, "30", NULL, NULL, "meeting_time" },
  { "end-no-start", "2026-12-03T11:00:00Z", NULL, NULL, NULL, "meeting_time" },
};

static void
test_meeting_end (void **state)
{
  const EndCase *c = *state;
  Ask ask = { "sv", NULL, NULL, c->start, c->end, c->duration };
  Refusal why;
  g_autoptr(Invitation) inv = invitation_for (real, &ask, &why);

  if (c->want == NULL)
    {
      assert_null (inv);
      assert_string_equal (why.field, c->field);
      return;
    }
  if (inv == NULL)
    fail_msg ("refused: %s %s", refusal_code_name (why.code), why.message);
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);
  assert_text_has (r->text, c->want);
}

/* ---- plain text ----------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *xhtml;
  const char *want;           /* NULL: must fail */
} TextCase;

#define H(body) "<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>T</title>" \
                "<style>p { color: red }</style></head><body>" body "</body></html>"

static const TextCase text_cases[] = {
  { "paragraphs", H ("<p>One</p><p>Two</p>"), "One\n\nTwo\n" },
  { "whitespace", H ("<p>  a \n\t b  </p>"), "a b\n" },
  { "br", H ("<p>a<br/>b<br/><br/>c</p>"), "a\nb\n\nc\n" },
  { "divs", H ("<div>a</div><div>b</div>"), "a\nb\n" },
  { "heading", H ("<h1>Title</h1><p>x</p>"), "Title\n\nx\n" },
  { "inline", H ("<p>a <strong>b</strong><em>c</em> d</p>"), "a bc d\n" },
  { "list", H ("<p>Do:</p><ul><li>x</li><li> y </li></ul><p>z</p>"), "Do:\n\n- x\n- y\n\nz\n" },
  { "nested-list", H ("<ul><li>x<ul><li>y</li></ul></li><li>z</li></ul>"), "- x\n  - y\n- z\n" },
  { "link-text", H ("<p>Go <a href=\"https://e.example.org/x\">here</a>.</p>"),
    "Go here <https://e.example.org/x>.\n" },
  { "link-is-href", H ("<p><a href=\"https://e.example.org/x\">https://e.example.org/x</a></p>"),
    "https://e.example.org/x\n" },
  { "link-empty", H ("<p>Link: <a href=\"https://e.example.org/x\"></a></p>"),
    "Link: https://e.example.org/x\n" },
  { "mailto", H ("<p>Mail <a href=\"mailto:dpo@example.org\">dpo@example.org</a></p>"),
    "Mail dpo@example.org\n" },
  { "escapes", H ("<p>a &lt;b&gt; &amp; &#229;</p>"), "a <b> & å\n" },
  { "skips", H ("<p>x</p><script>y</script><style>z</style><img src=\"cid:a\" alt=\"logo\"/>"),
    "x\n" },
  { "table", H ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>"),
    "a b\nc\n" },
  { "pre", H ("<pre>a\n  b</pre>"), "a\n  b\n" },
  { "fold-78", H ("<p>Åå " "aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee fffffffff ggggggggg "
                  "hhhhhhhhh iiiiiiiii</p>"),
    "Åå aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee fffffffff ggggggggg\n"
    "hhhhhhhhh iiiiiiiii\n" },
  { "fold-long-word", H ("<p>Link: <a href=\"https://e.example.org/" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\">"
                         "https://e.example.org/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx</a> end</p>"),
    "Link:\nhttps://e.example.org/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nend\n" },
  { "fold-keeps-time", H ("<p>Mötet börjar fredag 4 december 2026 kl. 11.00 (svensk tid) och "
                          "slutar kl. 11.30.</p>"),
    "Mötet börjar fredag 4 december 2026 kl. 11.00 (svensk tid) och slutar\n"
    "kl. 11.30.\n" },
  { "fold-list", H ("<ul><li>aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee fffffffff "
                    "ggggggggg hhhhhhhhh</li></ul>"),
    "- aaaaaaaaa bbbbbbbbb ccccccccc ddddddddd eeeeeeeee fffffffff ggggggggg\n"
    "  hhhhhhhhh\n" },
  { "no-body", "<div><p>x</p><p>y</p></div>", "x\n\ny\n" },
  { "empty", H (""), "\n" },
  { "entity", "<!DOCTYPE html [<!ENTITY e \"x\">]><html><body><p>&e;</p></body></html>", NULL },
  { "undefined-entity", H ("<p>a&nbsp;b</p>"), NULL },
  { "broken", H ("<p>x"), NULL },
};

static void
test_plain_text (void **state)
{
  const TextCase *c = *state;
  g_autoptr(GError) error = NULL;
  g_autofree char *got = render_plain_text (c->xhtml, strlen (c->xhtml), &error);

  if (c->want == NULL)
    {
      assert_null (got);
      assert_true (g_error_matches (error, RENDER_ERROR, RENDER_ERROR_INVALID));
      return;
    }
  if (got == NULL)
    fail_msg ("failed: %s", error->message);
  assert_string_equal (got, c->want);
}

/* The rendered text equals a fresh walk of the rendered HTML. */
static void
test_text_matches_html (void **state)
{
  (void) state;
  Ask ask = { "sv", NULL, "AB-123", "2026-12-02T14:00:00+01:00" };
  g_autoptr(Rendered) r = render_ask (real, &org, &ask);
  g_autoptr(GError) error = NULL;
  g_autofree char *again = render_plain_text (r->html, strlen (r->html), &error);

  assert_non_null (again);
  assert_string_equal (again, r->text);
  assert_true (g_str_has_prefix (r->text, "Hej!\n\nDu är inbjuden"));
}

/* ---- hostile templates ------------------------------------------------------- */

typedef struct {
  const char *fixture;
  const char *reason;         /* a part of the error message */
} RejectCase;

static const RejectCase reject_cases[] = {
  { "reject-entity.xhtml", "DOCTYPE with declarations" },
  { "reject-xxe-system.xhtml", "DOCTYPE with declarations" },
  { "reject-xxe-parameter.xhtml", "DOCTYPE with declarations" },
  { "reject-undefined-entity.xhtml", "Entity 'nbsp' not defined" },
  { "reject-script.xhtml", "<script> is not allowed" },
  { "reject-script-in-head.xhtml", "<script> is not allowed" },
  { "reject-style-element.xhtml", "<style> is not allowed" },
  { "reject-onclick.xhtml", "event-handler attribute onclick" },
  { "reject-onload-upper.xhtml", "event-handler attribute OnLoad" },
  { "reject-javascript-href.xhtml", "unsafe URL in attribute href" },
  { "reject-javascript-tab-href.xhtml", "unsafe URL in attribute href" },
  { "reject-data-src.xhtml", "src must name a cid: part" },
  { "reject-remote-image.xhtml", "src must name a cid: part" },
  { "reject-pi.xhtml", "processing instruction <?php?>" },
  { "reject-pi-top.xhtml", "processing instruction <?xml-stylesheet?>" },
  { "reject-iframe.xhtml", "<iframe> is not allowed" },
  { "reject-object.xhtml", "<object> is not allowed" },
  { "reject-embed.xhtml", "<embed> is not allowed" },
  { "reject-form.xhtml", "<form> is not allowed" },
  { "reject-svg.xhtml", "<svg> in a foreign namespace" },
  { "reject-foreign-attribute.xhtml", "href in a foreign namespace" },
  { "reject-position.xhtml", "unsafe inline style" },
  { "reject-css-expression.xhtml", "unsafe inline style" },
  { "reject-cdata.xhtml", "CDATA section" },
  { "reject-unknown-placeholder.xhtml", "unknown placeholder data-im=\"password\"" },
  { "reject-unknown-block.xhtml", "unknown placeholder data-im-block=\"secret\"" },
  { "reject-href-not-link.xhtml", "data-im-href=\"link\" only, and only on <a>" },
  { "reject-href-not-a.xhtml", "data-im-href=\"link\" only, and only on <a>" },
  { "reject-meta-in-body.xhtml", "<meta> inside <body>" },
  { "reject-no-title.xhtml", "no <title> text" },
  { "reject-blank-title.xhtml", "no <title> text" },
  { "reject-no-body.xhtml", "no <body>" },
  { "reject-empty-body.xhtml", "no data-im=\"link\" placeholder" },
  { "reject-not-html.xhtml", "root element is not <html>" },
  { "reject-broken.xhtml", "tag mismatch" },
  { "reject-bare-ampersand.xhtml", "not well-formed XML" },
};

static void
test_rejected (void **state)
{
  const RejectCase *c = *state;
  g_autoptr(GError) error = NULL;
  TmpDirs d;
  g_autoptr(Templates) t = load_with_template (c->fixture, &d, &error);

  tmp_dirs_clear (&d);
  assert_null (t);
  assert_true (g_error_matches (error, RENDER_ERROR, RENDER_ERROR_INVALID));
  assert_contains (error->message, "evisit.sv.xhtml: ");
  assert_contains (error->message, c->reason);
  assert_lacks (error->message, "root:");    /* nothing of /etc/passwd */
}

/* The policy alone (render_check_file) refuses the same files, with
 * the same reason, as templates_load. */
static void
test_policy_rejected (void **state)
{
  const RejectCase *c = *state;
  g_autofree char *rel = g_build_filename ("tests", "data", "render", c->fixture, NULL);
  g_autofree char *path = src_path (rel);
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;

  assert_true (g_file_get_contents (path, &data, &len, NULL));
  assert_false (render_check_file (data, len, RENDER_FILE_TEMPLATE, &error));
  assert_true (g_error_matches (error, RENDER_ERROR, RENDER_ERROR_INVALID));
  assert_true (g_str_has_prefix (error->message, "file: "));
  assert_contains (error->message, c->reason);
}

typedef struct {
  const char *file;
  RenderFile kind;
  gboolean ok;
  const char *reason;         /* when refused: a part of the message */
} PolicyFileCase;

static const PolicyFileCase policy_file_cases[] = {
  { "templates/evisit.sv.xhtml", RENDER_FILE_TEMPLATE, TRUE, NULL },
  { "templates/evisit.ar.xhtml", RENDER_FILE_TEMPLATE, TRUE, NULL },
  { "templates/cancel.en.xhtml", RENDER_FILE_CANCEL, TRUE, NULL },
  { "templates/cancel.en.xhtml", RENDER_FILE_TEMPLATE, FALSE, "no data-im=\"link\"" },
  { "templates/privacy-notice.sv.xhtml", RENDER_FILE_NOTICE, TRUE, NULL },
  { "signatures/evisit.en.xhtml", RENDER_FILE_SIGNATURE, TRUE, NULL },
  { "signatures/evisit.en.xhtml", RENDER_FILE_NOTICE, FALSE, "no data-im=\"dpo_email\"" },
  { "tests/data/render/bad-notice-no-dpo.xhtml", RENDER_FILE_NOTICE, FALSE, "dpo_email" },
};

/* Each kind's own rules, on the shipped files; too large is refused. */
static void
test_policy_kinds (void **state)
{
  for (gsize i = 0; i < G_N_ELEMENTS (policy_file_cases); i++)
    {
      const PolicyFileCase *c = &policy_file_cases[i];
      g_autofree char *path = src_path (c->file);
      g_autofree char *data = NULL;
      gsize len = 0;
      g_autoptr(GError) error = NULL;

      assert_true (g_file_get_contents (path, &data, &len, NULL));
      assert_int_equal (render_check_file (data, len, c->kind, &error), c->ok);
      if (c->ok)
        assert_null (error);
      else
        assert_contains (error->message, c->reason);
    }
  g_autofree char *big = g_malloc0 (TEMPLATE_MAX_BYTES + 1);
  g_autoptr(GError) error = NULL;
  assert_false (render_check_file (big, TEMPLATE_MAX_BYTES + 1, RENDER_FILE_TEMPLATE, &error));
  assert_true (g_error_matches (error, RENDER_ERROR, RENDER_ERROR_INVALID));
}

typedef struct {
  const char *fixture;
  const char *phrase;         /* of the template, in the invitation div */
} HostileCase;

static const HostileCase hostile_cases[] = {
  { "hostile-minimal.xhtml", LINK },
  { "hostile-hidden-body.xhtml", "Möte: " LINK },
  { "hostile-comments.xhtml", "Möte " LINK },
  { "hostile-fake-notice.xhtml", "Vi sparar allt." },
};

/* Templates that try to drop or hide the notice: rendered, with it. */
static void
test_hostile_rendered (void **state)
{
  const HostileCase *c = *state;
  g_autoptr(GError) error = NULL;
  TmpDirs d;
  g_autoptr(Templates) t = load_with_template (c->fixture, &d, &error);

  tmp_dirs_clear (&d);
  if (t == NULL)
    fail_msg ("load failed: %s", error->message);
  Ask ask = { "sv", NULL, NULL, NULL };
  g_autoptr(Rendered) r = render_ask (t, &org, &ask);
  assert_string_equal (r->subject, "Inbjudan");
  assert_contains (r->text, c->phrase);
  assert_message_shape (r, &org);
  g_autoptr(xmlDoc) doc = parse_back (r->html);
  g_autofree char *notice = text_of (notice_div (doc));
  assert_lacks (notice, "Vi sparar allt.");
}

/* ---- load failures ------------------------------------------------------------- */

typedef struct {
  const char *name;
  FileSpec files[8];
  int code;
  const char *message;        /* a part of the error message */
} LoadCase;

static const LoadCase load_cases[] = {
  { "notice-missing-for-en",
    { REAL_SV_TPL, REAL_EN_TPL, REAL_SV_NOTICE, REAL_SV_SIG, REAL_EN_SIG, REAL_LOGO,
      END_SPECS },
    RENDER_ERROR_NO_NOTICE, "privacy-notice.en.xhtml" },
  { "no-notice-at-all",
    { REAL_SV_TPL, REAL_SV_SIG, REAL_LOGO, END_SPECS },
    RENDER_ERROR_NO_NOTICE, "privacy notice" },
  { "signature-missing-for-en",
    { REAL_SV_TPL, REAL_EN_TPL, REAL_SV_NOTICE, REAL_EN_NOTICE, REAL_SV_SIG, REAL_LOGO,
      END_SPECS },
    RENDER_ERROR_MISSING, "evisit.en.xhtml" },
  { "no-template",
    { REAL_SV_NOTICE, REAL_SV_SIG, REAL_LOGO, END_SPECS },
    RENDER_ERROR_MISSING, "template" },
  { "logo-missing",
    { REAL_SV_TPL, REAL_SV_NOTICE, REAL_SV_SIG, END_SPECS },
    RENDER_ERROR_MISSING, "logo.png" },
  { "logo-not-png",
    { REAL_SV_TPL, REAL_SV_NOTICE, REAL_SV_SIG, { 's', "logo.png", "=GIF89a......" },
      END_SPECS },
    RENDER_ERROR_INVALID, "logo.png" },
  { "logo-too-large",
    { REAL_SV_TPL, REAL_SV_NOTICE, REAL_SV_SIG, { 's', "logo.png", "!big-logo" },
      END_SPECS },
    RENDER_ERROR_INVALID, "logo.png" },
  { "template-too-large",
    { { 't', "evisit.sv.xhtml", "!big-template" }, REAL_SV_NOTICE, REAL_SV_SIG,
      REAL_LOGO, END_SPECS },
    RENDER_ERROR_INVALID, "evisit.sv.xhtml" },
  { "notice-without-dpo",
    { REAL_SV_TPL, { 't', "privacy-notice.sv.xhtml", "%bad-notice-no-dpo.xhtml" },
      REAL_SV_SIG, REAL_LOGO, END_SPECS },
    RENDER_ERROR_INVALID, "dpo_email" },
  { "hostile-signature",
    { REAL_SV_TPL, REAL_SV_NOTICE, { 's', "evisit.sv.xhtml", "%reject-onclick.xhtml" },
      REAL_LOGO, END_SPECS },
    RENDER_ERROR_INVALID, "onclick" },
  { "hostile-notice",
    { REAL_SV_TPL, { 't', "privacy-notice.sv.xhtml", "%reject-xxe-system.xhtml" },
      REAL_SV_SIG, REAL_LOGO, END_SPECS },
    RENDER_ERROR_INVALID, "privacy-notice.sv.xhtml" },
  { "upper-case-language",
    { REAL_SV_TPL, { 't', "evisit.SV.xhtml", "@templates/evisit.sv.xhtml" },
      REAL_SV_NOTICE, REAL_SV_SIG, REAL_LOGO, END_SPECS },
    RENDER_ERROR_INVALID, "NAME.LANG.xhtml" },
};

static void
test_load_error (void **state)
{
  const LoadCase *c = *state;
  g_autoptr(GError) error = NULL;
  TmpDirs d;

  tmp_dirs_init (&d);
  write_specs (&d, c->files);
  g_autoptr(Templates) t = templates_load (d.templates, d.signatures, &error);
  tmp_dirs_clear (&d);
  assert_null (t);
  assert_non_null (error);
  if (!g_error_matches (error, RENDER_ERROR, c->code))
    fail_msg ("code %d, want %d: %s", error->code, c->code, error->message);
  assert_contains (error->message, c->message);
}

static void
test_load_missing_dir (void **state)
{
  (void) state;
  g_autoptr(GError) error = NULL;
  g_autoptr(Templates) t = templates_load ("/nonexistent/templates",
                                           "/nonexistent/signatures", &error);
  assert_null (t);
  assert_true (g_error_matches (error, RENDER_ERROR, RENDER_ERROR_MISSING));
}

/* Other files in the folders are ignored; a language needs all three. */
static void
test_load_ignores_others (void **state)
{
  (void) state;
  const FileSpec files[] = {
    REAL_SV_TPL, REAL_SV_NOTICE, REAL_SV_SIG, REAL_LOGO, REAL_EN_NOTICE,
    { 't', "README", "=not a template" }, { 't', ".evisit.sv.xhtml.swp", "=junk" },
    { 's', "other.sv.xhtml", "=<not even xml" }, END_SPECS
  };
  g_autoptr(GError) error = NULL;
  TmpDirs d;

  tmp_dirs_init (&d);
  write_specs (&d, files);
  g_autoptr(Templates) t = templates_load (d.templates, d.signatures, &error);
  tmp_dirs_clear (&d);
  if (t == NULL)
    fail_msg ("load failed: %s", error->message);
  assert_true (templates_have (t, "evisit", "sv"));
  assert_false (templates_have (t, "evisit", "en"));
}

/* --check-config's list: the shipped set still holds the unapproved
 * English notice and the generated logo; an own logo and only approved
 * files leave nothing to report. */
static void
test_placeholders (void **state)
{
  (void) state;
  g_autoptr(GPtrArray) shipped = templates_placeholders (real);
  assert_int_equal (shipped->len, 3);
  assert_true (g_str_has_suffix (g_ptr_array_index (shipped, 0),
                                 "privacy-notice.ar.xhtml: translation not yet "
                                 "approved by the organisation"));
  assert_true (g_str_has_suffix (g_ptr_array_index (shipped, 1),
                                 "privacy-notice.en.xhtml: translation not yet "
                                 "approved by the organisation"));
  assert_contains (g_ptr_array_index (shipped, 2), "generated placeholder logo");

  const FileSpec files[] = { REAL_SV_TPL, REAL_SV_NOTICE, REAL_SV_SIG, REAL_LOGO,
                             END_SPECS };
  g_autoptr(GError) error = NULL;
  g_autofree char *logo = NULL;
  gsize len;
  TmpDirs d;

  tmp_dirs_init (&d);
  write_specs (&d, files);
  g_autofree char *path = g_build_filename (d.signatures, "logo.png", NULL);
  assert_true (g_file_get_contents (path, &logo, &len, NULL));
  logo = g_realloc (logo, len + 1);
  logo[len] = 'x';   /* another file, still a PNG by its header */
  assert_true (g_file_set_contents (path, logo, (gssize) len + 1, NULL));
  g_autoptr(Templates) t = templates_load (d.templates, d.signatures, &error);
  tmp_dirs_clear (&d);
  if (t == NULL)
    fail_msg ("load failed: %s", error->message);
  g_autoptr(GPtrArray) own = templates_placeholders (t);
  assert_int_equal (own->len, 0);
}

/* ---- main --------------------------------------------------------------------- */

/* ---- byte-identity ------------------------------------------------------ */

/*
 * Every output byte of a set of renders, as SHA-256 digests of the
 * subject, the HTML, the plain text and the notice's own hash, against
 * tests/data/render/golden.txt.  The file was written by the renderer
 * before its CPU work (commit 1deaff6); a faster renderer must make
 * the same bytes for the same input and time.  After a change that is
 * meant to alter the output, RENDER_GOLDEN_OUT=FILE writes the current
 * lines to FILE for review and replacement.
 */
typedef struct {
  const char *name;
  const char *fixture;        /* NULL: the shipped templates; else a file in
                                 tests/data/render as the Swedish template */
  const char *lang;
  gboolean full;              /* booking, start, end and unit given */
  gboolean org_full;          /* contact and a time zone configured */
  gboolean cancel;            /* render_cancellation */
} GoldenCase;

static const GoldenCase golden_cases[] = {
  { "sv-minimal", NULL, "sv", FALSE, FALSE, FALSE },
  { "sv-full", NULL, "sv", TRUE, TRUE, FALSE },
  { "en-minimal", NULL, "en", FALSE, FALSE, FALSE },
  { "en-full", NULL, "en", TRUE, TRUE, FALSE },
  { "ar-minimal", NULL, "ar", FALSE, FALSE, FALSE },
  { "ar-full", NULL, "ar", TRUE, TRUE, FALSE },
  { "sv-cancel", NULL, "sv", TRUE, TRUE, TRUE },
  { "en-cancel-no-time", NULL, "en", FALSE, FALSE, TRUE },
  { "ar-cancel", NULL, "ar", TRUE, FALSE, TRUE },
  { "features-minimal", "golden-features.xhtml", "sv", FALSE, FALSE, FALSE },
  { "features-full", "golden-features.xhtml", "sv", TRUE, TRUE, FALSE },
  { "comments", "hostile-comments.xhtml", "sv", TRUE, FALSE, FALSE },
  { "minimal", "hostile-minimal.xhtml", "sv", FALSE, TRUE, FALSE },
};

static void
golden_digest (GString *out, const char *s)
{
  char hex[SHA256_HEX_SIZE];

  sha256_hex (s, strlen (s), hex);
  g_string_append_printf (out, " %s", hex);
}

/* One line: the case's name and the digests of what it rendered. */
static void
golden_append (GString *out, const char *name, const Rendered *r)
{
  g_string_append (out, name);
  golden_digest (out, r->subject);
  golden_digest (out, r->title);
  golden_digest (out, r->html);
  golden_digest (out, r->text);
  g_string_append_printf (out, " %s\n", r->notice_rendered_sha256);
}

static const RenderOrg golden_full = { "Region Skåne \"Öst\" & <Väst>", DPO_EMAIL, SLOGAN,
                                       LOGO_CID, "Europe/Helsinki",
                                       "Barnkliniken <b>010-123 45 67</b> & co" };
static const RenderOrg golden_plain = { ORG_NAME, DPO_EMAIL, NULL, LOGO_CID, NULL, NULL };

/* What a case asks for. */
static Ask
golden_ask (const GoldenCase *c)
{
  Ask ask = { c->lang, NULL, NULL, NULL, NULL, NULL, NULL };

  if (c->full)
    {
      ask.booking = "R&D 'A' &amp; #1 (x)";
      ask.meeting_time = "2026-12-03T10:00:00Z";
      ask.meeting_end = "2026-12-03T11:45:00Z";
      ask.unit = "Barn- & ungdomsklinik (BUP)";
    }
  return ask;
}

/* A cancellation case's render; no cmocka calls, so threads may use
 * it.  NULL with *error set on failure. (transfer full) */
static Rendered *
golden_cancel (const Templates *t, const GoldenCase *c, GError **error)
{
  g_autoptr(GDateTime) start = g_date_time_new_from_iso8601 ("2026-12-03T10:00:00Z", NULL);
  g_autoptr(GDateTime) end = g_date_time_new_from_iso8601 ("2026-12-03T10:30:00Z", NULL);

  return render_cancellation (t, c->org_full ? &golden_full : &golden_plain, c->lang,
                              c->full ? start : NULL, c->full ? end : NULL, error);
}

static void
golden_line (GString *out, const GoldenCase *c)
{
  const RenderOrg *o = c->org_full ? &golden_full : &golden_plain;
  Ask ask = golden_ask (c);
  g_autoptr(GError) error = NULL;
  g_autoptr(Templates) own = NULL;
  g_autoptr(Rendered) r = NULL;
  TmpDirs d;

  if (c->fixture != NULL)
    {
      own = load_with_template (c->fixture, &d, &error);
      tmp_dirs_clear (&d);
      if (own == NULL)
        fail_msg ("load failed: %s", error->message);
    }
  if (c->cancel && (r = golden_cancel (real, c, &error)) == NULL)
    fail_msg ("render failed: %s", error->message);
  if (!c->cancel)
    r = render_ask (own ? own : real, o, &ask);
  golden_append (out, c->name, r);
}

/* The golden lines of the shipped templates' cases, rendered again and
 * again by one thread while another does the same. */
typedef struct {
  Invitation *inv[G_N_ELEMENTS (golden_cases)];   /* NULL: not rendered */
  const char *want;       /* the lines one thread alone renders */
  GString *lines;
  char *error;
} GoldenRun;

static gpointer
golden_thread (gpointer data)
{
  GoldenRun *run = data;

  for (int round = 0; round < 20 && run->error == NULL; round++)
    {
      g_string_truncate (run->lines, 0);
      for (gsize i = 0; i < G_N_ELEMENTS (golden_cases) && run->error == NULL; i++)
        {
          const GoldenCase *c = &golden_cases[i];
          g_autoptr(GError) error = NULL;
          g_autoptr(Rendered) r = NULL;
          if (c->fixture != NULL)
            continue;
          r = c->cancel ? golden_cancel (real, c, &error)
                        : render_invitation (real, c->org_full ? &golden_full : &golden_plain,
                                             run->inv[i], &error);
          if (r == NULL)
            run->error = g_strdup (error->message);
          else
            golden_append (run->lines, c->name, r);
        }
      if (run->error == NULL && strcmp (run->lines->str, run->want) != 0)
        run->error = g_strdup_printf ("round %d rendered other bytes", round);
    }
  return NULL;
}

/* Renders share nothing that changes: two threads rendering the same
 * templates at once make the same bytes as one. */
static void
test_golden_threads (void **state)
{
  (void) state;
  GoldenRun runs[2] = { 0 };
  GThread *threads[2];
  g_autoptr(GString) want = g_string_new (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (golden_cases); i++)
    if (golden_cases[i].fixture == NULL)
      golden_line (want, &golden_cases[i]);
  for (int k = 0; k < 2; k++)
    {
      runs[k].lines = g_string_new (NULL);
      runs[k].want = want->str;
      for (gsize i = 0; i < G_N_ELEMENTS (golden_cases); i++)
        if (golden_cases[i].fixture == NULL && !golden_cases[i].cancel)
          {
            Ask ask = golden_ask (&golden_cases[i]);
            Refusal why;
            runs[k].inv[i] = invitation_for (real, &ask, &why);
            assert_non_null (runs[k].inv[i]);
          }
    }
  for (int k = 0; k < 2; k++)
    threads[k] = g_thread_new ("render", golden_thread, &runs[k]);
  for (int k = 0; k < 2; k++)
    g_thread_join (threads[k]);
  for (int k = 0; k < 2; k++)
    {
      if (runs[k].error != NULL)
        fail_msg ("thread %d: %s", k, runs[k].error);
      g_free (runs[k].error);
      assert_string_equal (runs[k].lines->str, want->str);
      g_string_free (runs[k].lines, TRUE);
      for (gsize i = 0; i < G_N_ELEMENTS (golden_cases); i++)
        g_clear_pointer (&runs[k].inv[i], invitation_free);
    }
}

static void
test_golden (void **state)
{
  (void) state;
  g_autoptr(GString) got = g_string_new (NULL);
  g_autofree char *path = g_build_filename (srcdir (), "tests", "data", "render",
                                            "golden.txt", NULL);
  g_autofree char *want = NULL;
  const char *out = g_getenv ("RENDER_GOLDEN_OUT");

  for (gsize i = 0; i < G_N_ELEMENTS (golden_cases); i++)
    {
      /* the same render twice: nothing may be left over from the first */
      g_autoptr(GString) again = g_string_new (NULL);
      gsize at = got->len;
      golden_line (got, &golden_cases[i]);
      golden_line (again, &golden_cases[i]);
      assert_string_equal (got->str + at, again->str);
    }
  if (out != NULL)
    assert_true (g_file_set_contents (out, got->str, (gssize) got->len, NULL));
  if (!g_file_get_contents (path, &want, NULL, NULL))
    fail_msg ("cannot read %s", path);
  g_auto(GStrv) want_lines = g_strsplit (want, "\n", -1);
  g_auto(GStrv) got_lines = g_strsplit (got->str, "\n", -1);
  for (gsize i = 0; got_lines[i] != NULL || want_lines[i] != NULL; i++)
    if (got_lines[i] == NULL || want_lines[i] == NULL
        || strcmp (got_lines[i], want_lines[i]) != 0)
      fail_msg ("output differs from %s:\n  got  %s\n  want %s", path,
                got_lines[i] ? got_lines[i] : "(none)",
                want_lines[i] ? want_lines[i] : "(none)");
}

static int
group_setup (void **state)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tdir = src_path ("templates");
  g_autofree char *sdir = src_path ("signatures");

  (void) state;
  real = templates_load (tdir, sdir, &error);
  if (real == NULL)
    fprintf (stderr, "cannot load the shipped templates: %s\n", error->message);
  return real == NULL ? -1 : 0;
}

static int
group_teardown (void **state)
{
  (void) state;
  g_clear_pointer (&real, templates_free);
  return 0;
}

static void
add_test (GArray *tests, const char *prefix, const char *name,
          CMUnitTestFunction fn, const void *data, GPtrArray *names)
{
  char *full = g_strdup_printf ("%s/%s", prefix, name);
  struct CMUnitTest t = { full, fn, NULL, NULL, (void *) data };

  g_ptr_array_add (names, full);
  g_array_append_val (tests, t);
}

int
main (void)
{
  g_autoptr(GArray) tests = g_array_new (FALSE, FALSE, sizeof (struct CMUnitTest));
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

  xmlInitParser ();
  add_test (tests, "load", "have", test_have, NULL, names);
  add_test (tests, "load", "missing-dir", test_load_missing_dir, NULL, names);
  add_test (tests, "load", "ignores-others", test_load_ignores_others, NULL, names);
  for (gsize i = 0; i < G_N_ELEMENTS (load_cases); i++)
    add_test (tests, "load", load_cases[i].name, test_load_error, &load_cases[i], names);
  for (gsize i = 0; i < G_N_ELEMENTS (reject_cases); i++)
    add_test (tests, "rejected", reject_cases[i].fixture, test_rejected,
              &reject_cases[i], names);
  for (gsize i = 0; i < G_N_ELEMENTS (reject_cases); i++)
    add_test (tests, "policy", reject_cases[i].fixture, test_policy_rejected,
              &reject_cases[i], names);
  add_test (tests, "policy", "kinds", test_policy_kinds, NULL, names);
  for (gsize i = 0; i < G_N_ELEMENTS (hostile_cases); i++)
    add_test (tests, "hostile", hostile_cases[i].fixture, test_hostile_rendered,
              &hostile_cases[i], names);
  for (gsize i = 0; i < G_N_ELEMENTS (lang_cases); i++)
    add_test (tests, "render", lang_cases[i].lang, test_render_lang, &lang_cases[i], names);
  add_test (tests, "render", "hashes-and-logo", test_hashes_and_logo, NULL, names);
  add_test (tests, "render", "notice-version", test_notice_version, NULL, names);
  add_test (tests, "render", "booking-is-text", test_booking_is_text, NULL, names);
  add_test (tests, "render", "no-slogan", test_no_slogan, NULL, names);
  add_test (tests, "render", "placeholders", test_placeholders, NULL, names);
  add_test (tests, "render", "contact", test_contact, NULL, names);
  add_test (tests, "render", "unit", test_unit, NULL, names);
  add_test (tests, "render", "button", test_button, NULL, names);
  static const char *const layout_langs[] = { "sv", "en", "ar" };
  for (gsize i = 0; i < G_N_ELEMENTS (layout_langs); i++)
    add_test (tests, "layout", layout_langs[i], test_layout, (void *) layout_langs[i], names);
  add_test (tests, "render", "text-matches-html", test_text_matches_html, NULL, names);
  add_test (tests, "render", "golden", test_golden, NULL, names);
  add_test (tests, "render", "golden-threads", test_golden_threads, NULL, names);
  add_test (tests, "render", "bad-org-utf8", test_bad_org_utf8, NULL, names);
  add_test (tests, "render", "unknown-language", test_render_unknown_language, NULL, names);
  for (gsize i = 0; i < G_N_ELEMENTS (link_cases); i++)
    add_test (tests, "link", link_cases[i].name, test_link, &link_cases[i], names);
  for (gsize i = 0; i < G_N_ELEMENTS (block_cases); i++)
    add_test (tests, "blocks", block_cases[i].name, test_blocks, &block_cases[i], names);
  for (gsize i = 0; i < G_N_ELEMENTS (time_cases); i++)
    add_test (tests, "time", time_cases[i].name, test_format_time, &time_cases[i], names);
  add_test (tests, "time", "end", test_format_end, NULL, names);
  for (gsize i = 0; i < G_N_ELEMENTS (end_cases); i++)
    add_test (tests, "end", end_cases[i].name, test_meeting_end, &end_cases[i], names);
  for (gsize i = 0; i < G_N_ELEMENTS (text_cases); i++)
    add_test (tests, "text", text_cases[i].name, test_plain_text, &text_cases[i], names);

  int failed = _cmocka_run_group_tests ("render", (const struct CMUnitTest *) tests->data,
                                        tests->len, group_setup, group_teardown);
  xmlCleanupParser ();
  return failed == 0 ? 0 : 1;
}
