/*
 * mime.c - writes the invitation message, every encoding in it done by
 * GMime or byte for byte as GMime does it, with CRLF line ends.  One of the two files that include GMime:
 * dsn.c reads delivery status notifications; mime_init() serves both.
 *
 * Structure (RFC 2046, RFC 2387):
 *   multipart/alternative
 *     text/plain; charset=utf-8              quoted-printable
 *     multipart/related; type="text/html"
 *       text/html; charset=utf-8             quoted-printable
 *       image/png                            base64, inline, Content-ID
 * UTF-8 and the transfer encodings are forced: GMime would otherwise
 * pick ISO-8859-1 and 8bit for Swedish text (doc/ARCHITECTURE.md, GMime
 * traps).  With QP,
 * base64 and RFC 2047 headers every byte written is 7-bit ASCII and
 * every line is at most 78 characters, so no relay has to re-encode.
 *
 * Headers: From, Subject, Date, Message-Id, MIME-Version,
 * Auto-Submitted, X-Auto-Response-Suppress, Content-Language, and
 * either no To at all or the empty group `To: undisclosed-recipients: ;`
 * (GMime writes a space before the `;`, which RFC 5322 allows as CFWS).
 * Never Cc or Bcc: this module is never given a recipient address.
 *
 * TRUSTS: the Rendered values (made by render_fill.c) and the options (from
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

#include "envelope.h"
#include "names.h"

/* GMime 3.2 declares no autoptr cleanups for its objects. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (InternetAddress, g_object_unref)

/* RFC 5322 2.1.1: a line may hold 998 characters; a header value that
 * long is already absurd for a subject or a display name. */
#define MIME_HEADER_VALUE_MAX 998
#define MIME_ID_MAX     255

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

/* The language tag every wall checks (names.h): it goes verbatim into
 * Content-Language. */
static gboolean
check_lang (const char *lang, GError **error)
{
  if (lang_tag_ok (lang, -1))
    return TRUE;
  g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
               "language tag is not 2 or 3 letters a-z");
  return FALSE;
}

/*
 * g_utf8_validate (s, -1, NULL), cheaper on text that is mostly ASCII:
 * ASCII is skipped eight bytes at a time, and as no multi-byte UTF-8
 * sequence holds an ASCII byte, the text is valid exactly when each run
 * of non-ASCII bytes is valid on its own, which GLib checks.
 */
static gboolean
utf8_valid (const char *s)
{
  const char *end = s + strlen (s);
  const char *p = s;

  while (p < end)
    {
      guint64 word;
      if (end - p >= 8 && (memcpy (&word, p, 8), (word & G_GUINT64_CONSTANT (0x8080808080808080)) == 0))
        {
          p += 8;
          continue;
        }
      if ((guchar) *p < 0x80)
        {
          p++;
          continue;
        }
      const char *run = p;
      while (p < end && (guchar) *p >= 0x80)
        p++;
      if (!g_utf8_validate_len (run, (gsize) (p - run), NULL))
        return FALSE;
    }
  return TRUE;
}

static gboolean
check_body (const char *s, const char *what, GError **error)
{
  if (s == NULL || !utf8_valid (s))
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
                             ADDRESS_MAX, error)
      || !check_ascii_token (opt->logo_cid, "logo Content-ID", 1,
                             MIME_ID_MAX, error))
    return FALSE;
  if (opt->calendar != NULL
      && (!check_body (opt->calendar, "calendar", error)
          || (g_strcmp0 (opt->calendar_method, "PUBLISH") != 0
              && g_strcmp0 (opt->calendar_method, "CANCEL") != 0)))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
                     "calendar method is not PUBLISH or CANCEL");
      return FALSE;
    }
  if (opt->message_id != NULL)
    return check_ascii_token (opt->message_id, "Message-ID", 1, MIME_ID_MAX,
                              error);
  /* Generating needs an explicit domain: with NULL GMime would ask the
   * resolver for our host name (doc/ARCHITECTURE.md, GMime traps). */
  return check_ascii_token (opt->message_id_domain, "Message-ID domain", 0,
                            ADDRESS_MAX_DOMAIN, error);
}

/* ---- writing ------------------------------------------------------ */

/*
 * The tree is fixed, so it is written directly; GMime does every
 * encoding in it: RFC 2047 words and folding for the headers, the
 * address list, the date, quoted-printable and base64 (the same
 * encoders its serialiser runs); the common bytes of quoted-printable
 * are written here as GMime's encoder writes them (qp_encode).  Building GMime's object tree per
 * invite and serialising it through stream filters cost two thirds of
 * the accept path's CPU; the output is the same shape, byte for byte
 * apart from the boundaries (tests/unit/test_mime.c parses it back with
 * GMime and checks the raw bytes).
 *
 * Everything is written with LF and turned into CRLF in one pass at
 * the end: no input can hold a CR (header values are checked, bodies
 * go through append_lf_only, the encoders emit none).
 */

/* LF in, LF out: a stray CRLF or bare CR from a template becomes LF so
 * that the final pass makes exactly one CRLF of it.  Appended to out,
 * a run between CRs at a time. */
static void
append_lf_only (GString *out, const char *s, gsize len)
{
  const char *end = s + len;

  for (const char *p = s; p < end;)
    {
      const char *cr = memchr (p, '\r', (gsize) (end - p));
      gsize run = cr ? (gsize) (cr - p) : (gsize) (end - p);
      g_string_append_len (out, p, (gssize) run);
      if (cr == NULL)
        break;
      if (cr + 1 == end || cr[1] != '\n')
        g_string_append_c (out, '\n');
      p = cr + 1;
    }
}

/* Printable ASCII but '=': what GMime's quoted-printable encoder
 * writes as it is. */
static inline gboolean
qp_plain (guchar c)
{
  return (guchar) (c - 33) <= 126 - 33 && c != '=';
}

static const char qp_hex[] = "0123456789ABCDEF";

/* The end of the run at p that GMime writes as it is, a plain byte
 * after the other: plain bytes, and blanks followed by one.  A blank
 * GMime holds back goes out as it is when a plain byte follows, after
 * the soft break that byte's place on the line asks for, which is
 * where a plain byte there would break; so such a blank is written as
 * if it were plain. */
static const guchar *
qp_plain_run (const guchar *p, const guchar *end)
{
  while (p < end)
    {
      if (qp_plain (*p))
        p++;
      else if (end - p >= 2 && (*p == ' ' || *p == '\t') && qp_plain (p[1]))
        p += 2;
      else
        break;
    }
  return p;
}

/*
 * Quoted-printable exactly as g_mime_encoding_quoted_encode_close
 * writes it, at a fraction of its cost.  GMime's encoder keeps two
 * things between bytes: the characters on the output line (save) and
 * a blank held back in case the line ends after it (state, -1 for
 * none).  The bytes of a text -- printable ASCII, blanks, '=' and the
 * bytes of multi-byte characters -- are written here as GMime writes
 * them: a held blank goes out as it is before the next such byte; a
 * plain byte goes out after a soft break ("=\n") once 75 characters
 * are on the line; a blank is held back, after the same break; '=' and
 * bytes over 127 go out as =XX, after a soft break once 73 are on the
 * line.  Runs of plain bytes (and blanks between them, see
 * qp_plain_run) are copied in pieces.  Line ends and
 * control bytes go through GMime's own step with the same state, and
 * GMime's close ends it.  test_mime's test_qp_differential compares
 * the two on many bodies.  out must have room for GMIME_QP_ENCODE_LEN
 * (len) bytes.  Returns the bytes written.
 */
static size_t
qp_encode (const guchar *in, size_t len, guchar *out)
{
  const guchar *end = in + len;
  guchar *o = out;
  int state = -1;
  guint32 save = 0;

  while (in < end)
    {
      guchar c = *in;
      if (c < 33 && c != ' ' && c != '\t')
        {
          o += g_mime_encoding_quoted_encode_step (in++, 1, o, &state, &save);
          continue;
        }
      if (state != -1)
        {
          *o++ = (guchar) state;
          save++;
          state = -1;
        }
      if (qp_plain (c) || (end - in >= 2 && (c == ' ' || c == '\t') && qp_plain (in[1])))
        {
          const guchar *run = qp_plain_run (in, end);
          while (in < run)
            {
              if (save > 74)
                {
                  *o++ = '=';
                  *o++ = '\n';
                  save = 0;
                }
              size_t n = MIN ((size_t) (75 - save), (size_t) (run - in));
              memcpy (o, in, n);
              o += n;
              in += n;
              save += (guint32) n;
            }
          continue;
        }
      if (c == ' ' || c == '\t')
        {
          if (save > 74)
            {
              *o++ = '=';
              *o++ = '\n';
              save = 0;
            }
          state = c;
        }
      else
        {
          if (save > 72)
            {
              *o++ = '=';
              *o++ = '\n';
              save = 3;
            }
          else
            save += 3;
          *o++ = '=';
          *o++ = (guchar) qp_hex[c >> 4];
          *o++ = (guchar) qp_hex[c & 0xf];
        }
      in++;
    }
  o += g_mime_encoding_quoted_encode_close (NULL, 0, o, &state, &save);
  return (size_t) (o - out);
}

/* Quoted-printable of a UTF-8 body, lines of at most 76 characters.
 * Bodies without a CR (all the renderer makes) are encoded in place,
 * without the LF-only copy. */
static void
append_qp (GString *out, const char *utf8)
{
  gsize len = strlen (utf8);
  g_autoptr (GString) lf = NULL;
  const char *in = utf8;
  gsize at = out->len;

  if (memchr (utf8, '\r', len) != NULL)
    {
      lf = g_string_sized_new (len);
      append_lf_only (lf, utf8, len);
      in = lf->str;
      len = lf->len;
    }
  g_string_set_size (out, at + GMIME_QP_ENCODE_LEN (len));
  g_string_set_size (out, at + qp_encode ((const guchar *) in, len,
                                          (guchar *) out->str + at));
}

static void
append_base64 (GString *out, GBytes *data)
{
  gsize len = 0;
  const guchar *in = g_bytes_get_data (data, &len);
  gsize at = out->len;
  int state = 0;
  guint32 save = 0;
  size_t n;

  g_string_set_size (out, at + GMIME_BASE64_ENCODE_LEN (len));
  n = g_mime_encoding_base64_encode_close (in, len, (guchar *) out->str + at,
                                           &state, &save);
  g_string_set_size (out, at + n);
}

/* "=-" and 24 base64 characters, as GMime makes them: '=' followed by
 * '-' can occur neither in quoted-printable nor in base64, so a
 * boundary can never be found inside a part.  Not secret, so GLib's
 * generator is enough; unique per message all the same. */
static void
new_boundary (char out[27])
{
  static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

  out[0] = '=';
  out[1] = '-';
  for (int i = 2; i < 26; i++)
    out[i] = b64[g_random_int_range (0, 64)];
  out[26] = '\0';
}

static void
append_text_part (GString *out, const char *subtype, const char *utf8)
{
  g_string_append_printf (out,
                          "Content-Type: text/%s; charset=utf-8\n"
                          "Content-Transfer-Encoding: quoted-printable\n\n",
                          subtype);
  append_qp (out, utf8);
}

/* image/png, base64, inline, Content-Id: <cid>, filename logo.png.
 * The HTML refers to it as src="cid:CID" (RFC 2392). */
static void
append_logo_part (GString *out, GBytes *logo, const char *cid)
{
  g_string_append_printf (out,
                          "Content-Type: image/png; name=logo.png\n"
                          "Content-Transfer-Encoding: base64\n"
                          "Content-Disposition: inline; filename=logo.png\n"
                          "Content-Id: <%s>\n\n", cid);
  append_base64 (out, logo);
}

/* text/calendar (RFC 5545 8.1, RFC 6047 2.4): method= as in the file,
 * quoted-printable (its lines are folded at 75 octets already), as the
 * attachment invite.ics.  The CRLFs of the calendar text become LF here
 * and CRLF again in the final pass. */
static void
append_calendar_part (GString *out, const char *ics, const char *method)
{
  g_string_append_printf (out,
                          "Content-Type: text/calendar; charset=utf-8; method=%s;\n"
                          "\tname=invite.ics\n"
                          "Content-Transfer-Encoding: quoted-printable\n"
                          "Content-Disposition: attachment; filename=invite.ics\n\n",
                          method);
  append_qp (out, ics);
}

/* The whole body tree, its Content-Type header first:
 *   multipart/alternative: text/plain, multipart/related (text/html, logo).
 * RFC 2046 5.1.4: the simplest alternative first, the preferred last.
 * RFC 2387 3.1: type= names the related part's root type. */
static void
append_body (GString *out, const Rendered *r, const MimeOptions *opt)
{
  char alt[27], rel[27], mix[27];

  new_boundary (alt);
  do
    new_boundary (rel);
  while (strcmp (alt, rel) == 0);
  do
    new_boundary (mix);
  while (strcmp (mix, alt) == 0 || strcmp (mix, rel) == 0);
  if (opt->calendar != NULL)
    {
      /* RFC 2046 5.1.3: the message, then the entry as an attachment;
       * inside the alternative, a client that knows text/calendar
       * could show it instead of the text */
      g_string_append_printf (out, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n", mix);
      g_string_append_printf (out, "--%s\n", mix);
    }
  g_string_append_printf (out, "Content-Type: multipart/alternative; boundary=\"%s\"\n\n", alt);
  g_string_append_printf (out, "--%s\n", alt);
  append_text_part (out, "plain", r->text);
  g_string_append_printf (out, "\n--%s\n", alt);
  g_string_append_printf (out, "Content-Type: multipart/related; boundary=\"%s\";\n"
                          "\ttype=\"text/html\"\n\n", rel);
  g_string_append_printf (out, "--%s\n", rel);
  append_text_part (out, "html", r->html);
  g_string_append_printf (out, "\n--%s\n", rel);
  append_logo_part (out, r->logo, opt->logo_cid);
  g_string_append_printf (out, "\n--%s--\n", rel);
  g_string_append_printf (out, "\n--%s--\n", alt);
  if (opt->calendar != NULL)
    {
      g_string_append_printf (out, "\n--%s\n", mix);
      append_calendar_part (out, opt->calendar, opt->calendar_method);
      g_string_append_printf (out, "\n--%s--\n", mix);
    }
}

/* ---- headers ------------------------------------------------------ */

/* "From: name <addr>" with the name in RFC 2047 words where it needs
 * them (UTF-8, else GMime picks ISO-8859-1 for "Region Skåne"), folded
 * by GMime. */
static void
append_from (GString *out, GMimeFormatOptions *fo, const MimeOptions *opt)
{
  InternetAddressList *list = internet_address_list_new ();
  g_autoptr (InternetAddress) ia =
    internet_address_mailbox_new (opt->from_name ? opt->from_name : "",
                                  opt->from_addr);
  /* GMime folds counting from the start of its string, so the header
   * is made on its own. */
  g_autoptr (GString) line = g_string_new ("From: ");

  internet_address_set_charset (ia, "utf-8");
  internet_address_list_add (list, ia);
  internet_address_list_encode (list, fo, line);
  g_object_unref (list);
  g_string_append_len (out, line->str, (gssize) line->len);
  /* The encoder ends the header with its own newline. */
  if (line->str[line->len - 1] != '\n')
    g_string_append_c (out, '\n');
}

/* An unstructured header: RFC 2047 words where needed, folded. */
static void
append_unstructured (GString *out, GMimeFormatOptions *fo, const char *name,
                     const char *utf8)
{
  g_autofree char *encoded = g_mime_utils_header_encode_text (fo, utf8, "utf-8");
  g_autofree char *line = g_strdup_printf ("%s: %s", name, encoded);
  g_autofree char *folded = g_mime_utils_unstructured_header_fold (NULL, fo, line);

  g_string_append (out, folded);
  if (out->len == 0 || out->str[out->len - 1] != '\n')
    g_string_append_c (out, '\n');
}

/* No Cc or Bcc ever; To only as the empty group when asked. */
static void
append_headers (GString *out, GMimeFormatOptions *fo, const Rendered *r,
                const MimeOptions *opt, const char *message_id)
{
  g_autoptr (GDateTime) now = opt->date ? NULL : g_date_time_new_now_local ();
  g_autofree char *date = g_mime_utils_header_format_date (opt->date ? opt->date : now);

  g_string_append_printf (out, "Date: %s\n", date);
  append_from (out, fo, opt);
  append_unstructured (out, fo, "Subject", r->subject);
  if (opt->to_undisclosed)
    g_string_append (out, "To: undisclosed-recipients: ;\n");
  g_string_append_printf (out, "Message-Id: <%s>\n", message_id);
  /* RFC 3834: machines must not answer an automatic message. */
  g_string_append (out, "Auto-Submitted: auto-generated\n");
  /* Exchange's equivalent: no out-of-office or delivery-report replies. */
  g_string_append (out, "X-Auto-Response-Suppress: All\n");
  /* RFC 3282; the tag was checked to be letters, digits and '-'. */
  g_string_append_printf (out, "Content-Language: %s\nMIME-Version: 1.0\n", r->lang);
}

/* LF to CRLF (libESMTP sends the bytes as they are: doc/ARCHITECTURE.md,
 * libESMTP traps).
 * (transfer full) */
static GBytes *
to_crlf (const GString *lf)
{
  const char *end = lf->str + lf->len;
  gsize lines = 0;

  for (const char *p = lf->str; (p = memchr (p, '\n', (gsize) (end - p))) != NULL; p++)
    lines++;
  guint8 *out = g_malloc (lf->len + lines);
  guint8 *o = out;
  for (const char *p = lf->str; p < end;)
    {
      const char *nl = memchr (p, '\n', (gsize) (end - p));
      gsize run = nl ? (gsize) (nl - p) : (gsize) (end - p);
      memcpy (o, p, run);
      o += run;
      if (nl == NULL)
        break;
      *o++ = '\r';
      *o++ = '\n';
      p = nl + 1;
    }
  return g_bytes_new_take (out, (gsize) (o - out));
}

/* The first text/calendar part under obj, depth-first. */
static GMimeObject *
find_calendar (GMimeObject *obj, int depth)
{
  if (depth > 4 || obj == NULL)
    return NULL;
  if (GMIME_IS_MULTIPART (obj))
    {
      GMimeMultipart *mp = GMIME_MULTIPART (obj);
      for (int i = 0; i < g_mime_multipart_get_count (mp); i++)
        {
          GMimeObject *found = find_calendar (g_mime_multipart_get_part (mp, i), depth + 1);
          if (found != NULL)
            return found;
        }
      return NULL;
    }
  GMimeContentType *ct = g_mime_object_get_content_type (obj);
  return GMIME_IS_PART (obj) && g_mime_content_type_is_type (ct, "text", "calendar")
    ? obj : NULL;
}

char *
mime_calendar_text (GBytes *message, char **lang_out, GError **error)
{
  gsize len = 0;
  const guint8 *raw = g_bytes_get_data (message, &len);
  GMimeStream *stream = g_mime_stream_mem_new_with_buffer ((const char *) raw, len);
  GMimeParser *parser = g_mime_parser_new_with_stream (stream);
  GMimeMessage *msg = g_mime_parser_construct_message (parser, NULL);
  char *text = NULL;

  g_object_unref (parser);
  g_object_unref (stream);
  GMimeObject *cal = msg ? find_calendar (g_mime_message_get_mime_part (msg), 0) : NULL;
  GMimeDataWrapper *w = cal ? g_mime_part_get_content (GMIME_PART (cal)) : NULL;
  if (w != NULL)
    {
      GMimeStream *mem = g_mime_stream_mem_new ();
      g_mime_data_wrapper_write_to_stream (w, mem);   /* decodes the QP */
      GByteArray *bytes = g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (mem));
      text = g_strndup ((const char *) bytes->data, bytes->len);
      g_object_unref (mem);
    }
  if (text != NULL && !g_utf8_validate (text, -1, NULL))
    g_clear_pointer (&text, g_free);
  if (text != NULL && lang_out != NULL)
    {
      /* GMime files the message's Content-* headers under its top part */
      const char *lang = g_mime_object_get_header (g_mime_message_get_mime_part (msg),
                                                   "Content-Language");
      *lang_out = g_strdup (lang ? lang : "");
      g_strstrip (*lang_out);
    }
  if (msg != NULL)
    g_object_unref (msg);
  if (text == NULL)
    {
      g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED, "the message has no calendar entry");
    }
  return text;
}

GBytes *
mime_build (const Rendered *r, const MimeOptions *opt, char **message_id_out,
            GError **error)
{
  g_autoptr (GString) lf = NULL;
  g_autofree char *message_id = NULL;
  GMimeFormatOptions *fo;
  GBytes *out;

  g_return_val_if_fail (r != NULL, NULL);
  g_return_val_if_fail (opt != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_inputs (r, opt, error))
    return NULL;
  message_id = opt->message_id
    ? g_strdup (opt->message_id)
    : g_mime_utils_generate_message_id (opt->message_id_domain);

  lf = g_string_sized_new (strlen (r->text) * 2 + strlen (r->html) * 2
                           + (opt->calendar ? strlen (opt->calendar) * 2 : 0)
                           + g_bytes_get_size (r->logo) * 4 / 3 + 2048);
  fo = g_mime_format_options_new ();
  append_headers (lf, fo, r, opt, message_id);
  append_body (lf, r, opt);
  g_mime_format_options_free (fo);
  if (memchr (lf->str, '\r', lf->len) != NULL)
    {
      /* Cannot happen (see above); never send a message that breaks it. */
      g_set_error (error, MIME_ERROR, MIME_ERROR_FAILED,
                   "could not serialise the message");
      return NULL;
    }
  out = to_crlf (lf);
  if (message_id_out != NULL)
    *message_id_out = g_steal_pointer (&message_id);
  return out;
}
