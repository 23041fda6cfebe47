/*
 * dsn.c - one delivery status notification in, the recipient's return
 * token and the report's action, status and diagnostic out.  See dsn.h.
 *
 * GMime (initialised by mime_init) parses the MIME structure: the
 * multipart/report (at the top, or inside a multipart/mixed, at most
 * DSN_DEPTH_MAX deep) and its message/delivery-status part, decoded.
 * That part's fields (RFC 3464 section 2: a per-message block, then a
 * block per recipient, blocks separated by empty lines, header syntax
 * with folding) are read here, bounded: at most DSN_BLOCKS_MAX blocks,
 * DSN_FIELDS_MAX fields a block, DSN_FIELD_MAX bytes a field.
 *
 * Limits: the whole input is at most DSN_INPUT_MAX (the caller reads no
 * more).  The returned message (message/rfc822 or text/rfc822-headers)
 * is never looked at: it is our own message, or a forger's.
 */
#include "dsn.h"

#include <string.h>

#include <gmime/gmime.h>

#define DSN_DEPTH_MAX 4
#define DSN_BLOCKS_MAX 64
#define DSN_FIELDS_MAX 64
#define DSN_FIELD_MAX 2048

G_DEFINE_QUARK (invitemail-dsn-error-quark, dsn_error)

/* GMime 3.2 declares no autoptr cleanups of its own. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeParser, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeMessage, g_object_unref)

typedef struct {
  char *action;       /* lower case, comments dropped */
  char *status;
  char *diagnostic;
} DsnBlock;

/* ---- tokens ----------------------------------------------------------- */

static gboolean
token_char (char c)
{
  c = g_ascii_tolower (c);
  return g_ascii_isdigit (c) || (c >= 'a' && c <= 'v');
}

/* Every "+TOKEN@" in text, the '+' ending a non-empty local part.  One
 * distinct token: TRUE.  Upper case is folded: some relays change the
 * case of local parts. */
gboolean
dsn_token_in (const char *text, char out[QUEUE_TOKEN_LEN + 1])
{
  gboolean found = FALSE;

  if (text == NULL)
    return FALSE;
  for (const char *p = strchr (text, '+'); p != NULL; p = strchr (p + 1, '+'))
    {
      char tok[QUEUE_TOKEN_LEN + 1];
      gsize i;

      if (p == text || strchr (" \t<>:;,\"", p[-1]) != NULL)
        continue;
      for (i = 0; i < QUEUE_TOKEN_LEN && token_char (p[1 + i]); i++)
        tok[i] = g_ascii_tolower (p[1 + i]);
      if (i != QUEUE_TOKEN_LEN || p[1 + i] != '@')
        continue;
      tok[i] = '\0';
      if (found && strcmp (tok, out) != 0)
        return FALSE;
      memcpy (out, tok, sizeof tok);
      found = TRUE;
    }
  return found;
}

/* ---- the delivery-status fields ---------------------------------------- */

static void
block_clear (DsnBlock *b)
{
  g_free (b->action);
  g_free (b->status);
  g_free (b->diagnostic);
  memset (b, 0, sizeof *b);
}

/* A value without (comments) and surrounding blanks, lower case. */
static char *
plain_word (const char *v)
{
  GString *w = g_string_new (NULL);
  int depth = 0;

  for (const char *p = v; *p != '\0'; p++)
    {
      if (*p == '(')
        depth++;
      else if (*p == ')' && depth > 0)
        depth--;
      else if (depth == 0)
        g_string_append_c (w, g_ascii_tolower (*p));
    }
  return g_strstrip (g_string_free (w, FALSE));
}

/* Hostile text made like an SMTP reply: printable ASCII, blank runs
 * (folding) as one space, cut to max - 1 bytes. */
static void
safe_text (char *dst, gsize max, const char *src)
{
  gsize n = 0;
  gboolean blank = FALSE;

  for (const char *p = src; *p != '\0' && n + 1 < max; p++)
    {
      unsigned char c = (unsigned char) *p;
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
        {
          blank = n > 0;
          continue;
        }
      if (blank && n + 2 < max)
        dst[n++] = ' ';
      blank = FALSE;
      dst[n++] = (c > ' ' && c < 0x7f) ? (char) c : '?';
    }
  dst[n] = '\0';
}

static void
block_field (DsnBlock *b, const char *name, const char *value, char **sender)
{
  char **slot = NULL;

  if (g_ascii_strcasecmp (name, "Action") == 0)
    slot = &b->action;
  else if (g_ascii_strcasecmp (name, "Status") == 0)
    slot = &b->status;
  else if (g_ascii_strcasecmp (name, "Diagnostic-Code") == 0)
    slot = &b->diagnostic;
  else if (g_ascii_strcasecmp (name, "X-Postfix-Sender") == 0)
    slot = sender;
  /* A repeated field keeps its first value. */
  if (slot != NULL && *slot == NULL)
    *slot = g_strdup (value);
}

/* One "Name: value" (unfolded) into the block; FALSE if not a field. */
static gboolean
parse_field (const GString *line, DsnBlock *b, char **sender)
{
  const char *colon = memchr (line->str, ':', line->len);
  g_autofree char *name = NULL;

  if (colon == NULL || colon == line->str)
    return FALSE;
  name = g_strndup (line->str, (gsize) (colon - line->str));
  for (const char *p = name; *p != '\0'; p++)
    if (*p <= ' ' || *p >= 0x7f)
      return FALSE;
  block_field (b, name, colon + 1, sender);
  return TRUE;
}

/*
 * Splits the decoded delivery-status part into blocks and picks the
 * per-recipient block to report: the first failed one, else the first
 * delayed one.  *sender gets the per-message X-Postfix-Sender.
 */
static gboolean
parse_fields (const char *data, gsize len, DsnBlock *pick, char **sender,
              GError **error)
{
  g_autoptr (GString) line = g_string_new (NULL);
  DsnBlock cur = { 0 }, delayed = { 0 };
  guint block = 0, fields = 0, recipients = 0;
  gboolean have_failed = FALSE, have_delayed = FALSE, other = FALSE;
  const char *p, *end;

  if (data == NULL)   /* an empty part: GByteArray holds no buffer */
    data = "", len = 0;
  p = data;
  end = data + len;

  while (p <= end)
    {
      const char *nl = p < end ? memchr (p, '\n', (gsize) (end - p)) : NULL;
      const char *stop = nl != NULL ? nl : end;
      gsize n = (gsize) (stop - p);
      gboolean last = nl == NULL;

      if (n > 0 && stop[-1] == '\r')
        n--;
      if (n > 0 && (p[0] == ' ' || p[0] == '\t') && line->len > 0)
        {
          /* Folded: part of the field before. */
          if (line->len + n < DSN_FIELD_MAX)
            g_string_append_len (line, p, (gssize) n);
        }
      else
        {
          if (line->len > 0)
            {
              if (++fields > DSN_FIELDS_MAX || !parse_field (line, &cur, sender))
                goto bad;
              g_string_truncate (line, 0);
            }
          g_string_append_len (line, p, (gssize) MIN (n, DSN_FIELD_MAX));
        }
      if (n == 0 || last)
        {
          if (line->len > 0 && (++fields > DSN_FIELDS_MAX
                                || !parse_field (line, &cur, sender)))
            goto bad;
          g_string_truncate (line, 0);
          if (fields > 0)
            {
              if (++block > DSN_BLOCKS_MAX)
                goto bad;
              if (block > 1)
                {
                  g_autofree char *action = cur.action ? plain_word (cur.action) : NULL;
                  recipients++;
                  if (action == NULL || cur.status == NULL)
                    goto bad;
                  if (!have_failed && strcmp (action, "failed") == 0)
                    {
                      have_failed = TRUE;
                      block_clear (pick);
                      *pick = cur;
                      g_free (pick->action);
                      pick->action = g_steal_pointer (&action);
                      memset (&cur, 0, sizeof cur);
                    }
                  else if (!have_delayed && strcmp (action, "delayed") == 0)
                    {
                      have_delayed = TRUE;
                      delayed = cur;
                      g_free (delayed.action);
                      delayed.action = g_steal_pointer (&action);
                      memset (&cur, 0, sizeof cur);
                    }
                  else
                    other = TRUE;
                }
              block_clear (&cur);
              fields = 0;
            }
        }
      if (last)
        break;
      p = nl + 1;
    }
  block_clear (&cur);
  if (recipients == 0)
    {
      block_clear (&delayed);
      g_set_error (error, DSN_ERROR, DSN_ERROR_NOT_DSN,
                   "the delivery status has no per-recipient fields");
      return FALSE;
    }
  if (!have_failed && have_delayed)
    *pick = delayed;
  else
    block_clear (&delayed);
  if (!have_failed && !have_delayed)
    {
      g_set_error (error, DSN_ERROR, DSN_ERROR_NOT_FAILURE,
                   "the report says delivered, relayed or expanded%s",
                   other ? "" : " only");
      return FALSE;
    }
  return TRUE;
bad:
  block_clear (&cur);
  block_clear (&delayed);
  g_set_error (error, DSN_ERROR, DSN_ERROR_NOT_DSN,
               "the delivery status fields are broken");
  return FALSE;
}

/* ---- MIME --------------------------------------------------------------- */

static gboolean
is_type (GMimeObject *o, const char *type, const char *subtype)
{
  GMimeContentType *ct = g_mime_object_get_content_type (o);
  return ct != NULL && g_mime_content_type_is_type (ct, type, subtype);
}

static gboolean
is_delivery_report (GMimeObject *o)
{
  GMimeContentType *ct = g_mime_object_get_content_type (o);
  const char *rt;

  if (!GMIME_IS_MULTIPART (o) || !is_type (o, "multipart", "report"))
    return FALSE;
  rt = g_mime_content_type_get_parameter (ct, "report-type");
  return rt != NULL && (g_ascii_strcasecmp (rt, "delivery-status") == 0
                        || g_ascii_strcasecmp (rt, "global-delivery-status") == 0);
}

/* The multipart/report, depth first, not below DSN_DEPTH_MAX. */
static GMimeObject *
find_report (GMimeObject *o, guint depth)
{
  if (o == NULL || depth > DSN_DEPTH_MAX)
    return NULL;
  if (is_delivery_report (o))
    return o;
  if (GMIME_IS_MULTIPART (o))
    {
      int n = g_mime_multipart_get_count (GMIME_MULTIPART (o));
      for (int i = 0; i < n && i < DSN_BLOCKS_MAX; i++)
        {
          GMimeObject *r = find_report (g_mime_multipart_get_part (GMIME_MULTIPART (o), i),
                                        depth + 1);
          if (r != NULL)
            return r;
        }
    }
  return NULL;
}

/* The decoded bytes of the report's message/delivery-status part. */
static GByteArray *
status_part_bytes (GMimeObject *report)
{
  int n = g_mime_multipart_get_count (GMIME_MULTIPART (report));

  for (int i = 0; i < n && i < DSN_BLOCKS_MAX; i++)
    {
      GMimeObject *part = g_mime_multipart_get_part (GMIME_MULTIPART (report), i);
      g_autoptr (GMimeStream) mem = NULL;
      GByteArray *bytes;

      if (!is_type (part, "message", "delivery-status")
          && !is_type (part, "message", "global-delivery-status"))
        continue;
      mem = g_mime_stream_mem_new ();
      if (GMIME_IS_PART (part))
        {
          GMimeDataWrapper *w = g_mime_part_get_content (GMIME_PART (part));
          if (w == NULL || g_mime_data_wrapper_write_to_stream (w, mem) < 0)
            return NULL;
        }
      else if (g_mime_object_write_content_to_stream (part, NULL, mem) < 0)
        return NULL;
      bytes = g_byte_array_new ();
      g_byte_array_append (bytes,
                           g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (mem))->data,
                           g_mime_stream_mem_get_byte_array (GMIME_STREAM_MEM (mem))->len);
      return bytes;
    }
  return NULL;
}

/* Token from the headers the delivering side adds or keeps, and the
 * report's X-Postfix-Sender: all that hold one must agree. */
static gboolean
token_from_message (GMimeMessage *msg, const char *sender, char out[QUEUE_TOKEN_LEN + 1])
{
  static const char *const names[] = { "X-Original-To", "Delivered-To", "Envelope-To", "To" };
  GMimeHeaderList *headers = g_mime_object_get_header_list (GMIME_OBJECT (msg));
  gboolean found = FALSE;
  int n = g_mime_header_list_get_count (headers);

  for (int i = 0; i < n && i < 1000; i++)
    {
      GMimeHeader *h = g_mime_header_list_get_header_at (headers, i);
      char tok[QUEUE_TOKEN_LEN + 1];
      const char *value = g_mime_header_get_raw_value (h);

      gboolean listed = FALSE;

      for (guint k = 0; k < G_N_ELEMENTS (names); k++)
        listed |= g_ascii_strcasecmp (names[k], g_mime_header_get_name (h)) == 0;
      if (!listed || value == NULL || !dsn_token_in (value, tok))
        continue;
      if (found && strcmp (tok, out) != 0)
        return FALSE;
      memcpy (out, tok, sizeof tok);
      found = TRUE;
    }
  if (sender != NULL)
    {
      char tok[QUEUE_TOKEN_LEN + 1];
      if (dsn_token_in (sender, tok))
        {
          if (found && strcmp (tok, out) != 0)
            return FALSE;
          memcpy (out, tok, sizeof tok);
          found = TRUE;
        }
    }
  return found;
}

static gboolean
fill_result (DsnBlock *b, Dsn *out, GError **error)
{
  g_autofree char *status = plain_word (b->status);
  char *sp = strpbrk (status, " \t;");

  if (sp != NULL)
    *sp = '\0';
  /* failed: 5.x.x, or 4.x.x when the remote side gave up on a
   * temporary error; delayed: 4.x.x only. */
  if (!queue_dsn_status_ok (status)
      || (strcmp (b->action, "failed") == 0 && status[0] == '2')
      || (strcmp (b->action, "delayed") == 0 && status[0] != '4'))
    {
      g_set_error (error, DSN_ERROR, DSN_ERROR_NOT_DSN,
                   "the report's status code is missing or does not fit its action");
      return FALSE;
    }
  g_strlcpy (out->action, b->action, sizeof out->action);
  g_strlcpy (out->status, status, sizeof out->status);
  safe_text (out->diagnostic, sizeof out->diagnostic, b->diagnostic ? b->diagnostic : "");
  return TRUE;
}

gboolean
dsn_parse (const char *data, gsize len, const char *envelope_rcpt, Dsn *out,
           GError **error)
{
  g_autoptr (GMimeStream) stream = NULL;
  g_autoptr (GMimeParser) parser = NULL;
  g_autoptr (GMimeMessage) msg = NULL;
  g_autoptr (GByteArray) fields = NULL;
  g_autofree char *sender = NULL;
  GMimeObject *report;
  DsnBlock pick = { 0 };
  gboolean ok;

  g_return_val_if_fail ((data != NULL || len == 0) && out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  if (data == NULL)
    data = "";
  if (len > DSN_INPUT_MAX)
    {
      g_set_error (error, DSN_ERROR, DSN_ERROR_NOT_DSN, "the message is too large");
      return FALSE;
    }
  stream = g_mime_stream_mem_new_with_buffer (data, len);
  parser = g_mime_parser_new_with_stream (stream);
  g_mime_parser_set_format (parser, GMIME_FORMAT_MESSAGE);
  msg = g_mime_parser_construct_message (parser, NULL);
  report = msg != NULL ? find_report (g_mime_message_get_mime_part (msg), 0) : NULL;
  if (report == NULL)
    {
      g_set_error (error, DSN_ERROR, DSN_ERROR_NOT_DSN,
                   "not a delivery status notification (multipart/report;"
                   " report-type=delivery-status)");
      return FALSE;
    }
  if ((fields = status_part_bytes (report)) == NULL)
    {
      g_set_error (error, DSN_ERROR, DSN_ERROR_NOT_DSN,
                   "the report has no message/delivery-status part");
      return FALSE;
    }
  if (!parse_fields ((const char *) fields->data, fields->len, &pick, &sender, error))
    {
      /* A block picked before the fields broke is dropped too. */
      block_clear (&pick);
      return FALSE;
    }
  ok = fill_result (&pick, out, error);
  block_clear (&pick);
  if (!ok)
    return FALSE;
  /* The envelope recipient is the mail system's word: when it is given,
   * nothing in the message may choose the token instead. */
  if (envelope_rcpt != NULL ? !dsn_token_in (envelope_rcpt, out->token)
      : !token_from_message (msg, sender, out->token))
    {
      g_set_error (error, DSN_ERROR, DSN_ERROR_NO_TOKEN,
                   envelope_rcpt != NULL
                   ? "the envelope recipient holds no return token"
                   : "no return token in the headers, or tokens that disagree");
      return FALSE;
    }
  return TRUE;
}
