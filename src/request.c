/*
 * request.c - the wire protocol: framing and parsing of requests, and the
 * writing of answers.  Pure: no I/O, no global state.
 *
 * A request is lines `name=value`, each ended by LF, ended by an empty
 * line (Postfix policy-delegation shape).  This is the first code that
 * sees hostile bytes from the socket, so:
 *
 * - request_frame never reads past len and refuses as early as the bytes
 *   allow: a line as soon as REQUEST_MAX_LINE bytes without LF are seen,
 *   a request as soon as it cannot end within REQUEST_MAX_BYTES, and the
 *   line after REQUEST_MAX_ATTRS attributes.  So the caller never has to
 *   buffer more than REQUEST_MAX_BYTES.
 * - CR and NUL are refused (malformed) while framing, so a client that
 *   speaks CRLF gets a clear answer at once instead of waiting for an
 *   empty line that never comes.
 * - request_parse re-runs the framing checks on what it is given, so it
 *   is safe on any bytes (it is a fuzz target), then checks names,
 *   repeats and values.  Values are kept only if they are valid UTF-8
 *   without C0/C1 controls or DEL.
 *
 * TRUSTS: nothing in the bytes.  Does not judge what a value means (that
 * is validate.c); does not know which attributes a kind of request takes.
 *
 * Answers: answer_add replaces controls and invalid UTF-8 in values, and
 * anything outside [a-z_] in names, so no value can end or split an
 * answer.
 */
#include "request.h"

#include <string.h>

typedef struct {
  gsize max_line;
  gsize max_bytes;
  guint max_attrs;
} FrameLimits;

static const FrameLimits request_limits = {
  REQUEST_MAX_LINE, REQUEST_MAX_BYTES, REQUEST_MAX_ATTRS
};

static const FrameLimits answer_limits = {
  ANSWER_MAX_BYTES, ANSWER_MAX_BYTES, ANSWER_MAX_ATTRS
};

/* The request attributes (invitemaild(8), PROTOCOL); only bcc repeats. */
typedef struct {
  const char *name;
  gboolean multi;
} KnownAttr;

static const KnownAttr known_attrs[] = {
  { "request", FALSE },
  { "link", FALSE },
  { "bcc", TRUE },
  { "booking", FALSE },
  { "staff", FALSE },
  { "lang", FALSE },
  { "template", FALSE },
  { "meeting_time", FALSE },
  { "meeting_end", FALSE },
  { "duration", FALSE },
  { "idempotency_key", FALSE },
  { "id", FALSE },
  { "unit", FALSE },
  { "token", FALSE },
  { "dsn_action", FALSE },
  { "dsn_status", FALSE },
  { "diagnostic", FALSE },
  { "dsn_error", FALSE },
};

/* ---- framing ---------------------------------------------------------- */

static FrameStatus
frame_fail (Refusal *why, RefusalCode code)
{
  refusal_set (why, code, NULL, NULL);
  return FRAME_ERROR;
}

/*
 * Looks at one line starting at pos.  Returns the length of the line
 * with its LF, or 0 when no LF was found in the bytes we may look at
 * (*status then says incomplete or error).  Looks at no more bytes than
 * the line and request limits allow.
 */
static gsize
frame_line (const char *buf, gsize len, gsize pos, const FrameLimits *lim,
            FrameStatus *status, Refusal *why)
{
  gsize window = MIN (len - pos, lim->max_line);
  gsize i;

  window = MIN (window, lim->max_bytes - pos);
  for (i = 0; i < window; i++)
    {
      char c = buf[pos + i];

      if (c == '\n')
        return i + 1;
      if (c == '\r' || c == '\0')
        {
          *status = FRAME_ERROR;
          refusal_set (why, REFUSAL_MALFORMED, NULL,
                       "the request holds a CR or NUL byte; lines end with LF");
          return 0;
        }
    }
  /* Seen max_line bytes without LF: with its LF the line would be over. */
  if (window == lim->max_line)
    *status = frame_fail (why, REFUSAL_LINE_TOO_LONG);
  /* Seen up to max_bytes without the end: one more byte is too many. */
  else if (pos + window == lim->max_bytes)
    *status = frame_fail (why, REFUSAL_REQUEST_TOO_LARGE);
  else
    *status = FRAME_INCOMPLETE;
  return 0;
}

static FrameStatus
frame_scan (const char *buf, gsize len, const FrameLimits *lim,
            gsize *frame_len, Refusal *why)
{
  gsize pos = 0;
  guint nattrs = 0;

  for (;;)
    {
      FrameStatus status = FRAME_INCOMPLETE;
      gsize n;

      if (pos >= lim->max_bytes)
        return frame_fail (why, REFUSAL_REQUEST_TOO_LARGE);
      if (pos >= len)
        return FRAME_INCOMPLETE;
      if (nattrs == lim->max_attrs && buf[pos] != '\n')
        return frame_fail (why, REFUSAL_TOO_MANY_ATTRIBUTES);
      n = frame_line (buf, len, pos, lim, &status, why);
      if (n == 0)
        return status;
      if (n == 1)
        {
          *frame_len = pos + 1;
          return FRAME_COMPLETE;
        }
      nattrs++;
      pos += n;
    }
}

FrameStatus
request_frame (const char *buf, gsize len, gsize *frame_len, Refusal *why)
{
  g_return_val_if_fail (buf != NULL || len == 0, FRAME_ERROR);
  g_return_val_if_fail (frame_len != NULL && why != NULL, FRAME_ERROR);
  return frame_scan (buf, len, &request_limits, frame_len, why);
}

FrameStatus
answer_frame (const char *buf, gsize len, gsize *frame_len, Refusal *why)
{
  g_return_val_if_fail (buf != NULL || len == 0, FRAME_ERROR);
  g_return_val_if_fail (frame_len != NULL && why != NULL, FRAME_ERROR);
  return frame_scan (buf, len, &answer_limits, frame_len, why);
}

/* ---- parsing ---------------------------------------------------------- */

static void
raw_attr_free (gpointer p)
{
  RawAttr *a = p;

  g_free (a->name);
  g_free (a->value);
  g_free (a);
}

static const KnownAttr *
known_attr (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (known_attrs); i++)
    if (strcmp (known_attrs[i].name, name) == 0)
      return &known_attrs[i];
  return NULL;
}

static gboolean
name_ok (const char *s, gsize n)
{
  if (n == 0 || n > REQUEST_MAX_NAME)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!(g_ascii_islower (s[i]) || s[i] == '_'))
      return FALSE;
  return TRUE;
}

/* Valid UTF-8, no C0 control, DEL or C1 control (U+0080..U+009F). */
static gboolean
value_ok (const char *s, gsize n)
{
  const char *p;

  if (!g_utf8_validate_len (s, n, NULL))
    return FALSE;
  for (p = s; p < s + n; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
        return FALSE;
    }
  return TRUE;
}

/*
 * One line without its LF.  CR and NUL were refused while framing.
 * strict: the request rules (known names, no repeats of single-valued
 * attributes); otherwise the answer rules (any name, repeats kept).
 */
static gboolean
parse_line (RawRequest *req, const char *line, gsize n, gboolean strict,
            Refusal *why)
{
  const char *eq = memchr (line, '=', n);
  g_autofree char *name = NULL;
  const KnownAttr *known;
  RawAttr *attr;

  if (eq == NULL || !name_ok (line, eq - line))
    return refusal_set (why, REFUSAL_MALFORMED, NULL,
                        "a line is not name=value with a name of a-z and _");
  name = g_strndup (line, eq - line);
  known = known_attr (name);
  if (strict && known == NULL)
    return refusal_set (why, REFUSAL_UNKNOWN_ATTRIBUTE, name, NULL);
  if (strict && !known->multi && raw_request_count (req, name) > 0)
    return refusal_set (why, REFUSAL_REPEATED_ATTRIBUTE, name, NULL);
  if (!value_ok (eq + 1, n - (eq + 1 - line)))
    return refusal_set (why, REFUSAL_INVALID_VALUE, name,
                        "a value is not UTF-8 text without control characters");
  attr = g_new0 (RawAttr, 1);
  attr->name = g_steal_pointer (&name);
  attr->value = g_strndup (eq + 1, n - (eq + 1 - line));
  g_ptr_array_add (req->attrs, attr);
  return TRUE;
}

static gboolean
parse_frame (const char *frame, gsize len, const FrameLimits *lim,
             gboolean strict, RawRequest **out, Refusal *why)
{
  g_autoptr (RawRequest) req = NULL;
  gsize flen = 0, pos = 0;
  FrameStatus st;

  g_return_val_if_fail (frame != NULL || len == 0, FALSE);
  g_return_val_if_fail (out != NULL && why != NULL, FALSE);

  st = frame_scan (frame, len, lim, &flen, why);
  if (st == FRAME_ERROR)
    return FALSE;
  if (st == FRAME_INCOMPLETE || flen != len)
    return refusal_set (why, REFUSAL_MALFORMED, NULL,
                        "the request does not end with exactly one empty line");
  req = g_new0 (RawRequest, 1);
  req->attrs = g_ptr_array_new_with_free_func (raw_attr_free);
  while (frame[pos] != '\n')
    {
      const char *nl = memchr (frame + pos, '\n', len - pos);

      if (!parse_line (req, frame + pos, nl - (frame + pos), strict, why))
        return FALSE;
      pos = nl - frame + 1;
    }
  *out = g_steal_pointer (&req);
  return TRUE;
}

gboolean
request_parse (const char *frame, gsize len, RawRequest **out, Refusal *why)
{
  return parse_frame (frame, len, &request_limits, TRUE, out, why);
}

gboolean
request_parse_answer (const char *frame, gsize len, RawRequest **out,
                      Refusal *why)
{
  return parse_frame (frame, len, &answer_limits, FALSE, out, why);
}

void
raw_request_free (RawRequest *req)
{
  if (req == NULL)
    return;
  g_clear_pointer (&req->attrs, g_ptr_array_unref);
  g_free (req);
}

const char *
raw_request_get (const RawRequest *req, const char *name)
{
  g_return_val_if_fail (req != NULL && name != NULL, NULL);
  for (guint i = 0; i < req->attrs->len; i++)
    {
      const RawAttr *a = g_ptr_array_index (req->attrs, i);

      if (strcmp (a->name, name) == 0)
        return a->value;
    }
  return NULL;
}

guint
raw_request_count (const RawRequest *req, const char *name)
{
  guint n = 0;

  g_return_val_if_fail (req != NULL && name != NULL, 0);
  for (guint i = 0; i < req->attrs->len; i++)
    {
      const RawAttr *a = g_ptr_array_index (req->attrs, i);

      if (strcmp (a->name, name) == 0)
        n++;
    }
  return n;
}

/* ---- answers ---------------------------------------------------------- */

/* Names go out as [a-z_]{1,32}, what request_parse_answer accepts. */
static void
answer_append_name (GString *out, const char *name)
{
  gsize i;

  for (i = 0; name[i] != '\0' && i < REQUEST_MAX_NAME; i++)
    g_string_append_c (out, g_ascii_islower (name[i]) ? name[i] : '_');
  if (i == 0)
    g_string_append_c (out, '_');
}

/* Invalid UTF-8 becomes U+FFFD; C0, DEL and C1 controls become spaces. */
static void
answer_append_value (GString *out, const char *value)
{
  g_autofree char *valid = g_utf8_make_valid (value, -1);

  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
        g_string_append_c (out, ' ');
      else
        g_string_append_unichar (out, c);
    }
}

void
answer_add (GString *out, const char *name, const char *value)
{
  g_return_if_fail (out != NULL && name != NULL);
  answer_append_name (out, name);
  g_string_append_c (out, '=');
  answer_append_value (out, value != NULL ? value : "");
  g_string_append_c (out, '\n');
}

void
answer_end (GString *out)
{
  g_return_if_fail (out != NULL);
  g_string_append_c (out, '\n');
}

void
answer_refusal (GString *out, const Refusal *r)
{
  g_return_if_fail (out != NULL && r != NULL);
  answer_add (out, "status", "rejected");
  answer_add (out, "error", refusal_code_name (r->code));
  if (r->field[0] != '\0')
    answer_add (out, "field", r->field);
  answer_add (out, "message",
              r->message[0] != '\0' ? r->message : refusal_code_text (r->code));
  answer_end (out);
}
