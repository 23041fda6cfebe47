/*
 * test_mime.c - mime_build: the message is parsed back with GMime (any
 * parser warning fails the test) and its raw bytes are checked: CRLF
 * only, 7-bit only, short lines, no To/Cc/Bcc, no recipient address.
 *
 * With MIME_TEST_OUT=FILE in the environment, the sample message is
 * also written to FILE so that tests/system/parse_message.py (an independent
 * parser) can be run on it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib/gstdio.h>

#include <string.h>
#include <gmime/gmime.h>

#include "digest.h"
#include "mime.h"

#define SUBJECT   "Inbjudan till videomöte – Åsa"
#define LINK      "https://evisit.example.org/join/abc123?x=1&y=2"
#define CID       "logo@invite.example.org"
#define FROM_NAME "Region Exempelskåne eVisit"
#define FROM_ADDR "noreply@example.org"
#define MSGID     "t3st.0001@invite.example.org"

#define SAMPLE_TEXT \
  "Hej!\n\nDu är inbjuden till ett videomöte (åäö ÅÄÖ).\n" \
  "Länk: " LINK "\n.\nFrom x\n" \
  "Integritet: vi behandlar dina personuppgifter enligt GDPR, läs mer hos " \
  "dataskyddsombudet som nås via dpo@example.org.\n"
#define SAMPLE_HTML \
  "<html><head><title>" SUBJECT "</title></head><body>\n" \
  "<p>Hej!</p>\n<p>Du är inbjuden till ett videomöte (åäö ÅÄÖ).</p>\n" \
  "<p><a href=\"https://evisit.example.org/join/abc123?x=1&amp;y=2\">" \
  "https://evisit.example.org/join/abc123?x=1&amp;y=2</a></p>\n" \
  "<p>Integritet: vi behandlar dina personuppgifter enligt GDPR.</p>\n" \
  "<p><img src=\"cid:" CID "\" alt=\"eVisit\" /></p>\n</body></html>\n"

/* A real 1x1 PNG. */
static const guint8 tiny_png[] = {
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d,
  0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
  0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xde, 0x00, 0x00, 0x00,
  0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
  0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00,
  0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82
};

/* ---- fixtures ----------------------------------------------------- */

/* rendered_free lives in render_fill.c; the tests make and free their own. */
static Rendered *
fake_new (const char *subject, const char *text, const char *html)
{
  Rendered *r = g_new0 (Rendered, 1);

  r->subject = g_strdup (subject);
  r->text = g_strdup (text);
  r->html = g_strdup (html);
  r->lang = g_strdup ("sv");
  r->logo = g_bytes_new_static (tiny_png, sizeof tiny_png);
  return r;
}

static void
fake_free (Rendered *r)
{
  if (r == NULL)
    return;
  g_free (r->subject);
  g_free (r->text);
  g_free (r->html);
  g_free (r->lang);
  g_clear_pointer (&r->logo, g_bytes_unref);
  g_free (r);
}
/* Its own type name, as render.h already ties Rendered to rendered_free. */
typedef Rendered FakeRendered;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (FakeRendered, fake_free)

static MimeOptions
options_default (GDateTime *date)
{
  MimeOptions o = {
    .from_name = FROM_NAME,
    .from_addr = FROM_ADDR,
    .message_id_domain = "invite.example.org",
    .to_undisclosed = FALSE,
    .date = date,
    .message_id = MSGID,
    .logo_cid = CID,
  };
  return o;
}

static GDateTime *
fixed_date (void)
{
  g_autoptr (GTimeZone) tz = g_time_zone_new_identifier ("+01:00");
  return g_date_time_new (tz, 2026, 11, 25, 14, 30, 5);
}

/* Builds the sample message, asserting success. (transfer full) */
static GBytes *
build_sample (gboolean undisclosed, const char *text)
{
  g_autoptr (GDateTime) date = fixed_date ();
  g_autoptr (FakeRendered) r = fake_new (SUBJECT, text ? text : SAMPLE_TEXT,
                                     SAMPLE_HTML);
  MimeOptions o = options_default (date);
  g_autoptr (GError) error = NULL;
  GBytes *raw;

  o.to_undisclosed = undisclosed;
  raw = mime_build (r, &o, NULL, &error);
  assert_null (error);
  assert_non_null (raw);
  return raw;
}

static void
on_parser_warning (gint64 offset, GMimeParserWarning code, const gchar *item,
                   gpointer user_data)
{
  guint *count = user_data;
  print_error ("GMime parser warning %d at %" G_GINT64_FORMAT ": %s\n",
               (int) code, offset, item ? item : "");
  (*count)++;
}

/* Parses raw bytes back; any parser warning fails. (transfer full) */
static GMimeMessage *
parse_back (GBytes *raw)
{
  gsize len = 0;
  const char *data = g_bytes_get_data (raw, &len);
  GMimeStream *stream = g_mime_stream_mem_new_with_buffer (data, len);
  GMimeParser *parser = g_mime_parser_new_with_stream (stream);
  GMimeParserOptions *po = g_mime_parser_options_new ();
  guint warnings = 0;
  GMimeMessage *msg;

  g_mime_parser_options_set_warning_callback (po, on_parser_warning,
                                              &warnings);
  msg = g_mime_parser_construct_message (parser, po);
  g_mime_parser_options_free (po);
  g_object_unref (parser);
  g_object_unref (stream);
  assert_non_null (msg);
  assert_int_equal (warnings, 0);
  return msg;
}

/* Decoded content of a leaf part, CRLF turned back into LF. (transfer full) */
static char *
decoded_text (GMimeObject *obj)
{
  GMimeDataWrapper *content = g_mime_part_get_content (GMIME_PART (obj));
  GMimeStream *stream = g_mime_stream_mem_new ();
  GByteArray *ba;
  GString *out;

  assert_true (g_mime_data_wrapper_write_to_stream (content, stream) >= 0);
  ba = g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (stream));
  out = g_string_new_len ((const char *) ba->data, ba->len);
  g_object_unref (stream);
  for (gsize i = 0; i < out->len; i++)
    if (out->str[i] == '\r' && out->str[i + 1] == '\n')
      g_string_erase (out, i, 1);
  return g_string_free (out, FALSE);
}

static gboolean
raw_has_header (GBytes *raw, const char *name)
{
  g_autofree char *s = g_strndup (g_bytes_get_data (raw, NULL),
                                  g_bytes_get_size (raw));
  g_autofree char *head = NULL;
  g_autofree char *lname = g_ascii_strdown (name, -1);
  g_autofree char *needle = g_strdup_printf ("\r\n%s:", lname);
  char *end = strstr (s, "\r\n\r\n");

  /* Only the message's own header block, compared without case. */
  assert_non_null (end);
  head = g_ascii_strdown (s, end - s + 2);
  return strstr (head, needle) != NULL || g_str_has_prefix (head, needle + 2);
}

/* ---- structure ---------------------------------------------------- */

static void
assert_text_part (GMimeObject *obj, const char *subtype)
{
  GMimeContentType *ct = g_mime_object_get_content_type (obj);

  assert_true (GMIME_IS_TEXT_PART (obj));
  assert_true (g_mime_content_type_is_type (ct, "text", subtype));
  assert_string_equal (g_mime_object_get_content_type_parameter (obj, "charset"),
                       "utf-8");
  assert_int_equal (g_mime_part_get_content_encoding (GMIME_PART (obj)),
                    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
}

static void
assert_logo_part (GMimeObject *obj)
{
  GMimeContentType *ct = g_mime_object_get_content_type (obj);

  assert_true (GMIME_IS_PART (obj));
  assert_true (g_mime_content_type_is_type (ct, "image", "png"));
  assert_int_equal (g_mime_part_get_content_encoding (GMIME_PART (obj)),
                    GMIME_CONTENT_ENCODING_BASE64);
  assert_string_equal (g_mime_object_get_disposition (obj), "inline");
  assert_string_equal (g_mime_part_get_filename (GMIME_PART (obj)), "logo.png");
  assert_string_equal (g_mime_part_get_content_id (GMIME_PART (obj)), CID);
}

static void
test_structure (void **state)
{
  (void) state;
  g_autoptr (GBytes) raw = build_sample (FALSE, NULL);
  GMimeMessage *msg = parse_back (raw);
  GMimeObject *top = g_mime_message_get_mime_part (msg);
  GMimeObject *rel;
  GMimeContentType *ct;
  g_autofree char *html = NULL;
  GMimeDataWrapper *logo;

  assert_true (GMIME_IS_MULTIPART (top));
  ct = g_mime_object_get_content_type (top);
  assert_true (g_mime_content_type_is_type (ct, "multipart", "alternative"));
  assert_int_equal (g_mime_multipart_get_count (GMIME_MULTIPART (top)), 2);
  assert_text_part (g_mime_multipart_get_part (GMIME_MULTIPART (top), 0), "plain");

  rel = g_mime_multipart_get_part (GMIME_MULTIPART (top), 1);
  assert_true (GMIME_IS_MULTIPART (rel));
  ct = g_mime_object_get_content_type (rel);
  assert_true (g_mime_content_type_is_type (ct, "multipart", "related"));
  assert_string_equal (g_mime_object_get_content_type_parameter (rel, "type"),
                       "text/html");
  assert_int_equal (g_mime_multipart_get_count (GMIME_MULTIPART (rel)), 2);
  assert_text_part (g_mime_multipart_get_part (GMIME_MULTIPART (rel), 0), "html");
  assert_logo_part (g_mime_multipart_get_part (GMIME_MULTIPART (rel), 1));

  /* The HTML refers to the logo by the same Content-ID. */
  html = decoded_text (g_mime_multipart_get_part (GMIME_MULTIPART (rel), 0));
  assert_non_null (strstr (html, "src=\"cid:" CID "\""));
  /* The logo decodes to the same bytes. */
  logo = g_mime_part_get_content (GMIME_PART (g_mime_multipart_get_part (
    GMIME_MULTIPART (rel), 1)));
  {
    GMimeStream *s = g_mime_stream_mem_new ();
    GByteArray *ba;
    g_mime_data_wrapper_write_to_stream (logo, s);
    ba = g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (s));
    assert_int_equal (ba->len, sizeof tiny_png);
    assert_memory_equal (ba->data, tiny_png, sizeof tiny_png);
    g_object_unref (s);
  }
  g_object_unref (msg);
}

/* ---- headers ------------------------------------------------------ */

static void
test_headers_default (void **state)
{
  (void) state;
  g_autoptr (GBytes) raw = build_sample (FALSE, NULL);
  GMimeMessage *msg = parse_back (raw);
  GMimeObject *obj = GMIME_OBJECT (msg);
  InternetAddressList *from = g_mime_message_get_from (msg);
  InternetAddress *ia;
  g_autoptr (GDateTime) want = fixed_date ();
  GDateTime *date;

  assert_string_equal (g_mime_message_get_subject (msg), SUBJECT);
  assert_int_equal (internet_address_list_length (from), 1);
  ia = internet_address_list_get_address (from, 0);
  assert_string_equal (internet_address_get_name (ia), FROM_NAME);
  assert_string_equal (internet_address_mailbox_get_addr (
                         INTERNET_ADDRESS_MAILBOX (ia)), FROM_ADDR);
  date = g_mime_message_get_date (msg);
  assert_non_null (date);
  assert_int_equal (g_date_time_to_unix (date), g_date_time_to_unix (want));
  assert_string_equal (g_mime_message_get_message_id (msg), MSGID);
  assert_string_equal (g_mime_object_get_header (obj, "MIME-Version"), "1.0");
  assert_string_equal (g_mime_object_get_header (obj, "Auto-Submitted"),
                       "auto-generated");
  assert_string_equal (g_mime_object_get_header (obj, "X-Auto-Response-Suppress"),
                       "All");
  /* GMime's parser files Content-* headers under the top-level part. */
  assert_string_equal (g_mime_object_get_header (g_mime_message_get_mime_part (msg),
                                                 "Content-Language"), "sv");
  /* No To, Cc or Bcc line at all: GMime's placeholders stay unwritten. */
  assert_false (raw_has_header (raw, "To"));
  assert_false (raw_has_header (raw, "Cc"));
  assert_false (raw_has_header (raw, "Bcc"));
  assert_null (g_mime_object_get_header (obj, "To"));
  assert_null (g_mime_object_get_header (obj, "Cc"));
  assert_null (g_mime_object_get_header (obj, "Bcc"));
  g_object_unref (msg);
}

static void
test_to_undisclosed (void **state)
{
  (void) state;
  g_autoptr (GBytes) raw = build_sample (TRUE, NULL);
  g_autofree char *s = g_strndup (g_bytes_get_data (raw, NULL),
                                  g_bytes_get_size (raw));
  GMimeMessage *msg = parse_back (raw);
  InternetAddressList *to = g_mime_message_get_to (msg);
  InternetAddress *group;
  const char *line = strstr (s, "\r\nTo: ");

  assert_non_null (line);
  assert_true (g_str_has_prefix (line, "\r\nTo: undisclosed-recipients: ;\r\n"));
  assert_null (strstr (line + 2, "\r\nTo:"));  /* exactly one */
  assert_int_equal (internet_address_list_length (to), 1);
  group = internet_address_list_get_address (to, 0);
  assert_true (INTERNET_ADDRESS_IS_GROUP (group));
  assert_string_equal (internet_address_get_name (group), "undisclosed-recipients");
  assert_int_equal (internet_address_list_length (internet_address_group_get_members (
                      INTERNET_ADDRESS_GROUP (group))), 0);
  assert_false (raw_has_header (raw, "Cc"));
  assert_false (raw_has_header (raw, "Bcc"));
  g_object_unref (msg);
}

static void
test_message_id_generated (void **state)
{
  (void) state;
  g_autoptr (FakeRendered) r = fake_new (SUBJECT, SAMPLE_TEXT, SAMPLE_HTML);
  MimeOptions o = options_default (NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (GDateTime) before = g_date_time_new_now_utc ();
  GMimeMessage *msg;
  GDateTime *date;

  o.message_id = NULL;
  o.message_id_domain = "example.org";
  raw = mime_build (r, &o, &id, &error);
  assert_null (error);
  assert_non_null (raw);
  assert_non_null (id);
  assert_true (g_str_has_suffix (id, "@example.org"));
  assert_null (strchr (id, '<'));
  assert_null (strchr (id, '>'));
  msg = parse_back (raw);
  assert_string_equal (g_mime_message_get_message_id (msg), id);
  /* Date defaults to now. */
  date = g_mime_message_get_date (msg);
  assert_non_null (date);
  assert_true (g_date_time_to_unix (date) >= g_date_time_to_unix (before) - 1);
  assert_true (g_date_time_to_unix (date) <= g_date_time_to_unix (before) + 60);
  g_object_unref (msg);
}

/* ---- raw bytes ---------------------------------------------------- */

static void
test_raw_bytes (void **state)
{
  (void) state;
  g_autoptr (GBytes) raw = build_sample (TRUE, NULL);
  gsize len = 0;
  const guint8 *p = g_bytes_get_data (raw, &len);
  gsize line_start = 0;

  assert_true (len > 0);
  assert_int_equal (p[len - 1], '\n');
  for (gsize i = 0; i < len; i++)
    {
      assert_true (p[i] != 0 && p[i] < 0x80);            /* 7-bit */
      if (p[i] == '\r')
        assert_true (i + 1 < len && p[i + 1] == '\n');   /* no bare CR */
      if (p[i] != '\n')
        continue;
      assert_true (i > 0 && p[i - 1] == '\r');           /* no bare LF */
      /* Without CRLF: RFC 5322 allows 998, QP/base64/folding give 78. */
      assert_true (i - 1 - line_start <= 78);
      line_start = i + 1;
    }
  /* UTF-8 everywhere: GMime would pick ISO-8859-1 for Latin-1 text. */
  {
    g_autofree char *lower = g_ascii_strdown ((const char *) p, len);
    assert_null (strstr (lower, "iso-8859"));
    assert_non_null (strstr (lower, "\r\nfrom: region =?utf-8?"));
  }
  /* No recipient-like address: none was given. */
  assert_null (g_strstr_len ((const char *) p, len, "@example.com"));
  assert_null (g_strstr_len ((const char *) p, len, "Bcc"));
}

/* The two multipart boundaries: distinct within a message, fresh for
 * every message, and never inside a part (they start with "=-", which
 * neither quoted-printable nor base64 can produce). */
static void
test_boundaries (void **state)
{
  (void) state;
  g_autoptr (GBytes) a = build_sample (FALSE, NULL);
  g_autoptr (GBytes) b = build_sample (FALSE, NULL);
  g_autofree char *sa = g_strndup (g_bytes_get_data (a, NULL), g_bytes_get_size (a));
  g_autofree char *sb = g_strndup (g_bytes_get_data (b, NULL), g_bytes_get_size (b));
  g_autoptr (GRegex) re = g_regex_new ("boundary=\"([^\"]+)\"", 0, 0, NULL);
  g_autoptr (GMatchInfo) m = NULL;
  g_autoptr (GMatchInfo) mb = NULL;
  g_autofree char *alt = NULL;
  g_autofree char *rel = NULL;
  g_autofree char *alt_b = NULL;

  assert_true (g_regex_match (re, sa, 0, &m));
  alt = g_match_info_fetch (m, 1);
  assert_true (g_match_info_next (m, NULL));
  rel = g_match_info_fetch (m, 1);
  assert_true (g_str_has_prefix (alt, "=-") && g_str_has_prefix (rel, "=-"));
  assert_true (strlen (alt) >= 20);
  assert_string_not_equal (alt, rel);
  assert_true (g_regex_match (re, sb, 0, &mb));
  alt_b = g_match_info_fetch (mb, 1);
  assert_string_not_equal (alt, alt_b);
  /* Each boundary: once in its header, then as delimiters only. */
  {
    g_autofree char *delim = g_strdup_printf ("\r\n--%s", alt);
    g_autofree char *close = g_strdup_printf ("\r\n--%s--\r\n", alt);
    guint n = 0;
    for (const char *p = sa; (p = strstr (p, alt)) != NULL; p++)
      n++;
    /* header, first delimiter, second delimiter, close */
    assert_int_equal (n, 4);
    assert_non_null (strstr (sa, delim));
    assert_true (g_str_has_suffix (sa, close + 2) || strstr (sa, close) != NULL);
  }
  {
    guint n = 0;
    for (const char *p = sa; (p = strstr (p, rel)) != NULL; p++)
      n++;
    assert_int_equal (n, 4);
  }
}

/* ---- text round trips --------------------------------------------- */

typedef struct {
  const char *name;
  const char *in;
  const char *want;   /* NULL: same as in */
} TextCase;

static const TextCase text_cases[] = {
  { "swedish", "Hej Åsa, välkommen till mötet på fredag.\nÅÄÖ åäö\n", NULL },
  { "dot line", "first\n.\nlast\n", NULL },
  { "from line", "From x\nFrom: y\n>From z\n", NULL },
  { "long line", "Detta är en mycket lång rad som är mycket längre än sjuttioåtta "
    "tecken och som därför måste brytas mjukt av quoted-printable, åäö åäö.\n", NULL },
  { "trailing space", "ends with space \nends with tab\t\n", NULL },
  { "equals and specials", "a=b =?utf-8?q?x?= 100% <tag> & \"q\"\n", NULL },
  { "emoji", "smile \xf0\x9f\x99\x82 done\n", NULL },
  { "no final newline", "one\ntwo", NULL },
  { "empty lines", "\n\n\nx\n\n", NULL },
  { "crlf input", "a\r\nb\r\n", "a\nb\n" },
  { "bare cr input", "a\rb\n", "a\nb\n" },
};

static void
test_text_roundtrip (void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (text_cases); i++)
    {
      const TextCase *c = &text_cases[i];
      g_autoptr (GBytes) raw = build_sample (FALSE, c->in);
      GMimeMessage *msg = parse_back (raw);
      GMimeObject *top = g_mime_message_get_mime_part (msg);
      g_autofree char *got =
        decoded_text (g_mime_multipart_get_part (GMIME_MULTIPART (top), 0));

      print_message ("case: %s\n", c->name);
      assert_string_equal (got, c->want ? c->want : c->in);
      g_object_unref (msg);
    }
}

static void
test_html_roundtrip (void **state)
{
  (void) state;
  g_autoptr (GBytes) raw = build_sample (FALSE, NULL);
  GMimeMessage *msg = parse_back (raw);
  GMimeObject *top = g_mime_message_get_mime_part (msg);
  GMimeObject *rel = g_mime_multipart_get_part (GMIME_MULTIPART (top), 1);
  g_autofree char *html =
    decoded_text (g_mime_multipart_get_part (GMIME_MULTIPART (rel), 0));
  g_autofree char *text =
    decoded_text (g_mime_multipart_get_part (GMIME_MULTIPART (top), 0));

  assert_string_equal (html, SAMPLE_HTML);
  assert_string_equal (text, SAMPLE_TEXT);
  g_object_unref (msg);
}

/* ---- refusals ----------------------------------------------------- */

typedef enum {
  F_SUBJECT, F_FROM_NAME, F_FROM_ADDR, F_DOMAIN, F_MSGID, F_CID, F_LANG,
  F_HTML, F_TEXT, F_LOGO
} Field;

typedef struct {
  const char *name;
  Field field;
  const char *value;   /* NULL means "set to NULL" */
  gboolean generate;   /* message_id = NULL, so the domain is used */
} BadCase;

static const BadCase bad_cases[] = {
  { "subject LF", F_SUBJECT, "Inbjudan\nBcc: x@example.com", FALSE },
  { "subject CR", F_SUBJECT, "Inbjudan\rX", FALSE },
  { "subject CRLF", F_SUBJECT, "Inbjudan\r\n", FALSE },
  { "subject tab", F_SUBJECT, "a\tb", FALSE },
  { "subject C1", F_SUBJECT, "a\xc2\x85" "b", FALSE },
  { "subject empty", F_SUBJECT, "", FALSE },
  { "subject NULL", F_SUBJECT, NULL, FALSE },
  { "subject not UTF-8", F_SUBJECT, "\xe5sa", FALSE },
  { "from name LF", F_FROM_NAME, "Org\nTo: x", FALSE },
  { "from addr space", F_FROM_ADDR, "no reply@example.org", FALSE },
  { "from addr non-ASCII", F_FROM_ADDR, "nö@example.org", FALSE },
  { "from addr no @", F_FROM_ADDR, "noreply", FALSE },
  { "from addr two @", F_FROM_ADDR, "a@b@example.org", FALSE },
  { "from addr brackets", F_FROM_ADDR, "<noreply@example.org>", FALSE },
  { "from addr comma", F_FROM_ADDR, "a@example.org,b@example.com", FALSE },
  { "from addr LF", F_FROM_ADDR, "a@example.org\n", FALSE },
  { "from addr NULL", F_FROM_ADDR, NULL, FALSE },
  { "domain NULL when generating", F_DOMAIN, NULL, TRUE },
  { "domain empty", F_DOMAIN, "", TRUE },
  { "domain space", F_DOMAIN, "example .org", TRUE },
  { "domain with @", F_DOMAIN, "x@example.org", TRUE },
  { "domain non-ASCII", F_DOMAIN, "exämple.org", TRUE },
  { "message id brackets", F_MSGID, "<a@example.org>", FALSE },
  { "message id no @", F_MSGID, "abc", FALSE },
  { "message id space", F_MSGID, "a b@example.org", FALSE },
  { "cid NULL", F_CID, NULL, FALSE },
  { "cid brackets", F_CID, "<logo@example.org>", FALSE },
  { "lang NULL", F_LANG, NULL, FALSE },
  { "lang LF", F_LANG, "sv\nX: y", FALSE },
  { "lang space", F_LANG, "s v", FALSE },
  /* One language rule for request, templates and message (names.h). */
  { "lang region", F_LANG, "en-GB", FALSE },
  { "lang upper", F_LANG, "SV", FALSE },
  { "html NULL", F_HTML, NULL, FALSE },
  { "html not UTF-8", F_HTML, "<p>\xe5</p>", FALSE },
  { "text NULL", F_TEXT, NULL, FALSE },
  { "text not UTF-8", F_TEXT, "\xff", FALSE },
  { "logo NULL", F_LOGO, NULL, FALSE },
  { "logo not PNG", F_LOGO, "GIF89a not a png", FALSE },
};

static void
apply_bad (Rendered *r, MimeOptions *o, const BadCase *c)
{
  char **rfield = NULL;

  switch (c->field)
    {
    case F_SUBJECT: rfield = &r->subject; break;
    case F_LANG: rfield = &r->lang; break;
    case F_HTML: rfield = &r->html; break;
    case F_TEXT: rfield = &r->text; break;
    case F_FROM_NAME: o->from_name = c->value; break;
    case F_FROM_ADDR: o->from_addr = c->value; break;
    case F_DOMAIN: o->message_id_domain = c->value; break;
    case F_MSGID: o->message_id = c->value; break;
    case F_CID: o->logo_cid = c->value; break;
    case F_LOGO:
      g_clear_pointer (&r->logo, g_bytes_unref);
      if (c->value)
        r->logo = g_bytes_new_static (c->value, strlen (c->value));
      break;
    }
  if (rfield != NULL)
    {
      g_free (*rfield);
      *rfield = g_strdup (c->value);
    }
  if (c->generate)
    o->message_id = NULL;
}

static void
test_refusals (void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      const BadCase *c = &bad_cases[i];
      g_autoptr (FakeRendered) r = fake_new (SUBJECT, SAMPLE_TEXT, SAMPLE_HTML);
      g_autoptr (GDateTime) date = fixed_date ();
      MimeOptions o = options_default (date);
      g_autoptr (GError) error = NULL;
      char *id = (char *) "untouched";
      g_autoptr (GBytes) raw = NULL;

      print_message ("case: %s\n", c->name);
      apply_bad (r, &o, c);
      raw = mime_build (r, &o, &id, &error);
      assert_null (raw);
      assert_non_null (error);
      assert_true (g_error_matches (error, MIME_ERROR, MIME_ERROR_FAILED));
      assert_string_equal (id, "untouched");
    }
}

/* The good neighbours of the refusals: these must still be accepted. */
static void
test_accepted_edges (void **state)
{
  (void) state;
  g_autoptr (FakeRendered) r = fake_new ("ASCII only", "", "<p></p>");
  g_autoptr (GDateTime) date = fixed_date ();
  MimeOptions o = options_default (date);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) raw = NULL;
  GMimeMessage *msg;

  o.from_name = NULL;   /* address only */
  g_free (r->lang);
  r->lang = g_strdup ("fil");   /* three letters: the longest tag */
  raw = mime_build (r, &o, NULL, &error);
  assert_null (error);
  assert_non_null (raw);
  msg = parse_back (raw);
  assert_string_equal (g_mime_message_get_subject (msg), "ASCII only");
  assert_string_equal (g_mime_object_get_header (g_mime_message_get_mime_part (msg),
                                                 "Content-Language"), "fil");
  g_object_unref (msg);
}

/* ---- sample for the independent parser ---------------------------- */

/* The second, independent parser: Python's email package reads the
 * sample back through tests/system/parse_message.py.  MIME_TEST_OUT keeps a
 * copy for a person to look at. */
static void
test_independent_parser (void **state)
{
  (void) state;
  const char *keep = g_getenv ("MIME_TEST_OUT");
  const char *srcdir = g_getenv ("srcdir") ? g_getenv ("srcdir") : ".";
  const char *python = g_getenv ("PYTHON3") ? g_getenv ("PYTHON3") : "/usr/bin/python3";
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("immime-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "sample.eml", NULL);
  g_autofree char *script = g_build_filename (srcdir, "tests", "system", "parse_message.py", NULL);
  g_autofree char *out = NULL;
  int status = -1;

  for (int undisclosed = 0; undisclosed <= 1; undisclosed++)
    {
      g_autoptr (GBytes) raw = build_sample (undisclosed, NULL);
      const char *argv[] = { python, script, path, "--crlf", "--expect-link", LINK,
                             "--to-mode", undisclosed ? "undisclosed" : "none",
                             "--forbid", "@example.com", NULL };
      assert_true (g_file_set_contents (path, g_bytes_get_data (raw, NULL),
                                        g_bytes_get_size (raw), NULL));
      if (keep != NULL && !undisclosed)
        assert_true (g_file_set_contents (keep, g_bytes_get_data (raw, NULL),
                                          g_bytes_get_size (raw), NULL));
      g_clear_pointer (&out, g_free);
      assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                                 NULL, NULL, &out, NULL, &status, &error));
      if (!g_spawn_check_wait_status (status, NULL))
        fail_msg ("parse_message.py (undisclosed=%d): %s", undisclosed, out);
    }
  g_unlink (path);
  g_rmdir (dir);
}

static int
setup (void **state)
{
  (void) state;
  mime_init ();
  return 0;
}

static int
teardown (void **state)
{
  (void) state;
  mime_shutdown ();
  return 0;
}

/* ---- byte-identity ------------------------------------------------------ */

/* Bodies that reach every branch of the quoted-printable writer: lines
 * just under, at and over 76 characters, '=' and multi-byte characters
 * at the soft break, trailing blanks before line ends and at the end,
 * CRLF and bare CR, a lone dot, "From ", empty lines.  (transfer full) */
static char *
qp_edges (void)
{
  GString *s = g_string_new ("Rad ett\r\nRad två\rRad tre\n\n.\nFrom x\n");

  for (int len = 70; len <= 80; len++)
    {
      for (int i = 0; i < len; i++)
        if ((i + len) % 11 == 0)
          g_string_append (s, "ä");
        else
          g_string_append_c (s, "abc= \tx"[(i * 3 + len) % 7]);
      g_string_append (s, len % 3 == 0 ? " \n" : len % 3 == 1 ? "\t\r\n" : "\n");
      for (int i = 0; i < len; i++)
        g_string_append_c (s, 'a' + i % 26);
      g_string_append (s, len % 2 ? "=\n" : "Å\n");
    }
  for (int i = 0; i < 300; i++)
    g_string_append (s, i % 50 == 49 ? "ö" : "y");
  g_string_append (s, "\n   \n\t\nslut med blank ");
  return g_string_free (s, FALSE);
}

/*
 * The whole message, boundaries included (GLib's generator seeded),
 * against the digests of the bytes mime_build wrote before its CPU work
 * (commit 1deaff6): a faster writer must write the same bytes.
 */
static void
test_golden_bytes (void **state)
{
  static const char *const want[] = {
    "cdba0c8ed2f0d153fe94aa398be6cf9d11ace8111dae8f656fc22ff81aff8536",
    "3ec40a213686805cd09c5c58030f583bb870d4d9011f3044a564373eaa94ffea",
  };
  (void) state;
  g_autofree char *edges = qp_edges ();
  g_autofree char *html = g_strconcat (SAMPLE_HTML, edges, NULL);
  g_autoptr (GDateTime) date = fixed_date ();

  for (gsize i = 0; i < G_N_ELEMENTS (want); i++)
    {
      g_autoptr (FakeRendered) r = fake_new (SUBJECT, edges, html);
      MimeOptions o = options_default (date);
      g_autoptr (GError) error = NULL;
      char sum[SHA256_HEX_SIZE];

      if (i == 1)
        {
          o.to_undisclosed = TRUE;
          o.calendar = "BEGIN:VCALENDAR\r\nSUMMARY:Möte = viktigt \r\n"
                       "DESCRIPTION:lång rad lång rad lång rad lång rad lång rad lång r\r\n"
                       " ad\r\nEND:VCALENDAR\r\n";
          o.calendar_method = "PUBLISH";
        }
      g_random_set_seed (4711);
      g_autoptr (GBytes) raw = mime_build (r, &o, NULL, &error);
      if (raw == NULL)
        fail_msg ("message %" G_GSIZE_FORMAT ": %s", i, error->message);
      sha256_hex (g_bytes_get_data (raw, NULL), g_bytes_get_size (raw), sum);
      if (strcmp (sum, want[i]) != 0)
        fail_msg ("message %" G_GSIZE_FORMAT " differs: %s", i, sum);
    }
}

/* GMime's own encoder on body, LF made CRLF, as the message must hold
 * it. (transfer full) */
static char *
gmime_qp_crlf (const char *body)
{
  gsize len = strlen (body);
  g_autofree guchar *qp = g_malloc (GMIME_QP_ENCODE_LEN (len));
  int state = -1;
  guint32 save = 0;
  size_t n = g_mime_encoding_quoted_encode_close ((const guchar *) body, len, qp,
                                                  &state, &save);
  GString *out = g_string_new (NULL);

  for (size_t i = 0; i < n; i++)
    if (qp[i] == '\n')
      g_string_append (out, "\r\n");
    else
      g_string_append_c (out, (char) qp[i]);
  return g_string_free (out, FALSE);
}

/*
 * mime_build writes quoted-printable itself for runs of plain bytes and
 * lets GMime do the rest; its parts must be byte for byte what GMime's
 * encoder alone writes.  Random bodies (seeded, so a failure repeats)
 * of plain runs of every length around the 76-column fold, blanks,
 * tabs, '=', line ends and multi-byte characters; each encoded body
 * must appear in the message followed by its boundary.
 */
static void
test_qp_differential (void **state)
{
  static const char *const pieces[] = {
    "a", "bcdefghij", "0123456789012345678901234567890123456789", " ", "\t", "=",
    "\n", "\n\n", "ä", "€", ".", "From ", "  \n", "=\n", "~", "!",
  };
  g_autoptr (GDateTime) date = fixed_date ();
  GRand *rand = g_rand_new_with_seed (2026);

  (void) state;
  for (int round = 0; round < 400; round++)
    {
      GString *body = g_string_new (NULL);
      int parts = g_rand_int_range (rand, 1, 120);
      for (int i = 0; i < parts; i++)
        {
          const char *p = pieces[g_rand_int_range (rand, 0, G_N_ELEMENTS (pieces))];
          int times = g_rand_int_range (rand, 1, 4) == 1 ? g_rand_int_range (rand, 1, 90) : 1;
          for (int k = 0; k < times; k++)
            g_string_append (body, p);
        }
      g_autofree char *text = g_string_free (body, FALSE);
      g_autoptr (FakeRendered) r = fake_new (SUBJECT, text, SAMPLE_HTML);
      MimeOptions o = options_default (date);
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) raw = mime_build (r, &o, NULL, &error);
      assert_non_null (raw);
      g_autofree char *msg = g_strndup (g_bytes_get_data (raw, NULL), g_bytes_get_size (raw));
      g_autofree char *qp = gmime_qp_crlf (text);
      g_autofree char *want = g_strconcat ("quoted-printable\r\n\r\n", qp, "\r\n--=-", NULL);
      if (strstr (msg, want) == NULL)
        fail_msg ("round %d: body encoded unlike GMime:\n%s\nwant:\n%s", round, msg, want);
    }
  g_rand_free (rand);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_structure),
    cmocka_unit_test (test_headers_default),
    cmocka_unit_test (test_to_undisclosed),
    cmocka_unit_test (test_message_id_generated),
    cmocka_unit_test (test_raw_bytes),
    cmocka_unit_test (test_boundaries),
    cmocka_unit_test (test_text_roundtrip),
    cmocka_unit_test (test_html_roundtrip),
    cmocka_unit_test (test_refusals),
    cmocka_unit_test (test_accepted_edges),
    cmocka_unit_test (test_independent_parser),
    cmocka_unit_test (test_golden_bytes),
    cmocka_unit_test (test_qp_differential),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
