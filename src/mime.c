/*
 * mime.c - builds the invitation message with GMime and serialises it
 * with CRLF line ends.  The only file that includes GMime.
 *
 * Structure (RFC 2046, RFC 2387):
 *   multipart/alternative
 *     text/plain; charset=utf-8              quoted-printable
 *     multipart/related; type="text/html"
 *       text/html; charset=utf-8             quoted-printable
 *       image/png                            base64, inline, Content-ID
 * UTF-8 and the transfer encodings are forced: GMime would otherwise
 * pick ISO-8859-1 and 8bit for Swedish text (LIBS.md 4).  With QP,
 * base64 and RFC 2047 headers every byte written is 7-bit ASCII and
 * every line is at most 78 characters, so no relay has to re-encode.
 *
 * Headers: From, Subject, Date, Message-Id, MIME-Version,
 * Auto-Submitted, X-Auto-Response-Suppress, Content-Language, and
 * either no To at all or the empty group `To: undisclosed-recipients: ;`
 * (GMime writes a space before the `;`, which RFC 5322 allows as CFWS).
 * Never Cc or Bcc: this module is never given a recipient address.
 *
 * TRUSTS: the Rendered values (made by render.c) and the options (from
 * the configuration) to be what they say, but checks them anyway: a
 * header value with CR/LF or a control character, a non-ASCII or
 * spaced address, domain or id, or invalid UTF-8 is refused with
 * MIME_ERROR_FAILED rather than written.  GMime itself would encode a
 * CR/LF as =0D=0A, so this is a second wall, not the only one.
 *
 * LIMITS: header values are capped at MIME_HEADER_VALUE_MAX bytes;
 * bodies are whatever the renderer produced (it caps its inputs).
 */
#include "mime.h"

#include <string.h>
#include <gmime/gmime.h>

/* GMime 3.2 declares no autoptr cleanups for its objects. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeMessage, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeObject, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeMultipart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimePart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeTextPart, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeDataWrapper, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (InternetAddress, g_object_unref)

/* RFC 5322 2.1.1: a line may hold 998 characters; a header value that
 * long is already absurd for a subject or a display name. */
#define MIME_HEADER_VALUE_MAX 998
/* RFC 5321 4.5.3.1: a path holds at most 256 octets with its <>. */
#define MIME_ADDR_MAX   254
#define MIME_DOMAIN_MAX 253
#define MIME_ID_MAX     255
/* RFC 5646 4.4.1: implementations must handle tags of 35 characters. */
#define MIME_LANG_MAX   35

static const guint8 png_signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

G_DEFINE_QUARK (mime-error-quark, mime_error)

void
mime_init (void)
{
  g_mime_init ();
}

void
mime_shutdown (void)
{
  g_mime_shutdown ();
}

/* ---- input checks ------------------------------------------------- */

/* A one-line UTF-8 header value: no C0 control (CR, LF, TAB, NUL...),
 * no DEL, no C1 control.  NULL or "" is allowed only if may_be_empty. */
static gboolean
check_header_text (const char *s, const char *what, gboolean may_be_empty,
                   GError **error)
{
  if (s == NULL || *s == '\0')
    {
      if (may_be_empty)
        return TRUE;
      g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED, "%s is empty", what);
      return FALSE;
    }
  if (strlen (s) > MIME_HEADER_VALUE_MAX || !g_utf8_validate (s, -1, NULL))
    {
      g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
                   "%s is too long or not UTF-8", what);
      return FALSE;
    }
  for (const char *p = s; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c < 0x20 || (c >= 0x7f && c < 0xa0))
        {
          g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
                       "%s holds a control character", what);
          return FALSE;
        }
    }
  return TRUE;
}

/* Printable ASCII without space and without the RFC 5322 specials that
 * would change how a header is parsed; `ats` is how many '@' it must
 * hold (1 for an address or an id, 0 for a domain). */
static gboolean
check_ascii_token (const char *s, const char *what, guint ats, gsize max,
                   GError **error)
{
  gsize len = s ? strlen (s) : 0;
  gboolean bad = len == 0 || len > max;
  guint seen = 0;

  for (gsize i = 0; !bad && i < len; i++)
    {
      guchar c = (guchar) s[i];
      bad = c <= 0x20 || c >= 0x7f || strchr ("<>()[]\\,;:\"", c) != NULL;
      seen += c == '@';
    }
  if (bad || seen != ats || s[0] == '@' || s[len - 1] == '@')
    {
      g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
                   "%s is empty, too long or not a plain ASCII %s", what,
                   ats ? "address" : "domain");
      return FALSE;
    }
  return TRUE;
}

/* RFC 5646 shape only: letters, digits and '-'. */
static gboolean
check_lang (const char *lang, GError **error)
{
  gsize len = lang ? strlen (lang) : 0;
  gboolean ok = len > 0 && len <= MIME_LANG_MAX && lang[0] != '-';

  for (gsize i = 0; ok && i < len; i++)
    ok = g_ascii_isalnum (lang[i]) || lang[i] == '-';
  if (!ok)
    g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
                 "language tag is not a plain RFC 5646 tag");
  return ok;
}

static gboolean
check_body (const char *s, const char *what, GError **error)
{
  if (s == NULL || !g_utf8_validate (s, -1, NULL))
    {
      g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
                   "%s is missing or not UTF-8", what);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_logo (GBytes *logo, GError **error)
{
  gsize len = 0;
  const guint8 *data = logo ? g_bytes_get_data (logo, &len) : NULL;

  if (data == NULL || len < sizeof png_signature
      || memcmp (data, png_signature, sizeof png_signature) != 0)
    {
      g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
                   "logo is missing or not a PNG");
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_inputs (const Rendered *r, const MimeOptions *opt, GError **error)
{
  if (!check_header_text (r->subject, "subject", FALSE, error)
      || !check_body (r->text, "plain text", error)
      || !check_body (r->html, "HTML", error)
      || !check_lang (r->lang, error)
      || !check_logo (r->logo, error)
      || !check_header_text (opt->from_name, "sender name", TRUE, error)
      || !check_ascii_token (opt->from_addr, "sender address", 1,
                             MIME_ADDR_MAX, error)
      || !check_ascii_token (opt->logo_cid, "logo Content-ID", 1,
                             MIME_ID_MAX, error))
    return FALSE;
  if (opt->message_id != NULL)
    return check_ascii_token (opt->message_id, "Message-ID", 1, MIME_ID_MAX,
                              error);
  /* Generating needs an explicit domain: with NULL GMime would ask the
   * resolver for our host name (LIBS.md 4). */
  return check_ascii_token (opt->message_id_domain, "Message-ID domain", 0,
                            MIME_DOMAIN_MAX, error);
}

/* ---- parts -------------------------------------------------------- */

/* LF in, LF out: a stray CRLF or bare CR from a template becomes LF so
 * that the DOS newline filter makes exactly one CRLF of it. (transfer full) */
static char *
newlines_to_lf (const char *s)
{
  GString *out = g_string_sized_new (strlen (s));

  for (const char *p = s; *p != '\0'; p++)
    {
      if (*p != '\r')
        g_string_append_c (out, *p);
      else if (p[1] != '\n')
        g_string_append_c (out, '\n');
    }
  return g_string_free (out, FALSE);
}

/* Content from bytes, copied into the wrapper's own stream. (transfer full) */
static GMimeDataWrapper *
wrapper_new (const void *data, gsize len)
{
  g_autoptr (GMimeStream) stream =
    g_mime_stream_mem_new_with_buffer (data, len);
  return g_mime_data_wrapper_new_with_stream (stream,
                                              GMIME_CONTENT_ENCODING_DEFAULT);
}

/* text/SUBTYPE; charset=utf-8, quoted-printable.  The content is set as
 * raw bytes, not with g_mime_text_part_set_text, which would pick
 * ISO-8859-1 and 8bit on its own (LIBS.md 4). (transfer full) */
static GMimeObject *
text_part_new (const char *subtype, const char *utf8)
{
  g_autofree char *lf = newlines_to_lf (utf8);
  g_autoptr (GMimeDataWrapper) content = wrapper_new (lf, strlen (lf));
  GMimeTextPart *tp = g_mime_text_part_new_with_subtype (subtype);

  g_mime_part_set_content (GMIME_PART (tp), content);
  g_mime_text_part_set_charset (tp, "utf-8");
  g_mime_part_set_content_encoding (GMIME_PART (tp),
                                    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  return GMIME_OBJECT (tp);
}

/* image/png, base64, inline, Content-Id: <cid>, filename logo.png.
 * The HTML refers to it as src="cid:CID" (RFC 2392). (transfer full) */
static GMimeObject *
logo_part_new (GBytes *logo, const char *cid)
{
  gsize len = 0;
  const void *data = g_bytes_get_data (logo, &len);
  g_autoptr (GMimeDataWrapper) content = wrapper_new (data, len);
  GMimePart *part = g_mime_part_new_with_type ("image", "png");

  g_mime_part_set_content (part, content);
  g_mime_part_set_content_encoding (part, GMIME_CONTENT_ENCODING_BASE64);
  g_mime_object_set_disposition (GMIME_OBJECT (part), GMIME_DISPOSITION_INLINE);
  g_mime_part_set_filename (part, "logo.png");
  g_mime_part_set_content_id (part, cid);
  return GMIME_OBJECT (part);
}

/* The whole body tree. (transfer full) */
static GMimeObject *
body_new (const Rendered *r, const MimeOptions *opt)
{
  GMimeMultipart *alt = g_mime_multipart_new_with_subtype ("alternative");
  g_autoptr (GMimeMultipart) rel = g_mime_multipart_new_with_subtype ("related");
  g_autoptr (GMimeObject) plain = text_part_new ("plain", r->text);
  g_autoptr (GMimeObject) html = text_part_new ("html", r->html);
  g_autoptr (GMimeObject) logo = logo_part_new (r->logo, opt->logo_cid);

  /* RFC 2387 3.1: type= names the root part's type; GMime leaves it out. */
  g_mime_object_set_content_type_parameter (GMIME_OBJECT (rel), "type",
                                            "text/html");
  g_mime_multipart_add (rel, html);
  g_mime_multipart_add (rel, logo);
  /* RFC 2046 5.1.4: the simplest alternative first, the preferred last. */
  g_mime_multipart_add (alt, plain);
  g_mime_multipart_add (alt, GMIME_OBJECT (rel));
  return GMIME_OBJECT (alt);
}

/* ---- headers ------------------------------------------------------ */

static void
set_from (GMimeMessage *msg, const MimeOptions *opt)
{
  g_autoptr (InternetAddress) ia =
    internet_address_mailbox_new (opt->from_name ? opt->from_name : "",
                                  opt->from_addr);

  /* Otherwise GMime picks ISO-8859-1 for a name such as "Region Skåne". */
  internet_address_set_charset (ia, "utf-8");
  internet_address_list_add (g_mime_message_get_from (msg), ia);
}

static void
set_to_group (GMimeMessage *msg)
{
  g_autoptr (InternetAddress) group =
    internet_address_group_new ("undisclosed-recipients");

  internet_address_list_add (g_mime_message_get_to (msg), group);
}

/* The placeholder To/Cc/Bcc headers of g_mime_message_new (TRUE) are
 * skipped while their lists are empty; we never add to Cc or Bcc, and
 * to To only the empty group. */
static void
set_headers (GMimeMessage *msg, const Rendered *r, const MimeOptions *opt,
             const char *message_id)
{
  GMimeObject *obj = GMIME_OBJECT (msg);
  g_autoptr (GDateTime) now = opt->date ? NULL : g_date_time_new_now_local ();

  set_from (msg, opt);
  if (opt->to_undisclosed)
    set_to_group (msg);
  g_mime_message_set_subject (msg, r->subject, "utf-8");
  g_mime_message_set_date (msg, opt->date ? opt->date : now);
  g_mime_message_set_message_id (msg, message_id);
  /* RFC 3834: machines must not answer an automatic message. */
  g_mime_object_set_header (obj, "Auto-Submitted", "auto-generated", NULL);
  /* Exchange's equivalent: no out-of-office or delivery-report replies. */
  g_mime_object_set_header (obj, "X-Auto-Response-Suppress", "All", NULL);
  /* RFC 3282. */
  g_mime_object_set_header (obj, "Content-Language", r->lang, NULL);
}

/* ---- serialising -------------------------------------------------- */

/* CRLF everywhere (libESMTP sends the bytes as they are, LIBS.md 1).
 * The length comes from the byte array: write_to_stream's return value
 * is not the stream length (LIBS.md 4). (transfer full) */
static GBytes *
serialise (GMimeObject *obj, GError **error)
{
  GMimeFormatOptions *fo = g_mime_format_options_new ();
  g_autoptr (GMimeStream) stream = g_mime_stream_mem_new ();
  GByteArray *bytes;
  ssize_t rc;

  g_mime_format_options_set_newline_format (fo, GMIME_NEWLINE_FORMAT_DOS);
  rc = g_mime_object_write_to_stream (obj, fo, stream);
  g_mime_format_options_free (fo);
  bytes = g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (stream));
  if (rc < 0 || bytes == NULL || bytes->len == 0)
    {
      g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
                   "could not serialise the message");
      return NULL;
    }
  return g_bytes_new (bytes->data, bytes->len);
}

GBytes *
mime_build (const Rendered *r, const MimeOptions *opt, char **message_id_out,
            GError **error)
{
  g_autoptr (GMimeMessage) msg = NULL;
  g_autoptr (GMimeObject) body = NULL;
  g_autofree char *message_id = NULL;
  GBytes *out;

  g_return_val_if_fail (r != NULL, NULL);
  g_return_val_if_fail (opt != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_inputs (r, opt, error))
    return NULL;
  message_id = opt->message_id
    ? g_strdup (opt->message_id)
    : g_mime_utils_generate_message_id (opt->message_id_domain);

  msg = g_mime_message_new (TRUE);
  set_headers (msg, r, opt, message_id);
  body = body_new (r, opt);
  g_mime_message_set_mime_part (msg, body);

  out = serialise (GMIME_OBJECT (msg), error);
  if (out != NULL && message_id_out != NULL)
    *message_id_out = g_steal_pointer (&message_id);
  return out;
}
