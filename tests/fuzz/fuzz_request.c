/*
 * fuzz_request.c - libFuzzer target for the wire protocol (request.c):
 * request_frame, request_parse, answer_frame, request_parse_answer and
 * answer_add, on arbitrary bytes.
 *
 * Besides "no crash, no leak, no undefined behaviour" (the sanitizers),
 * it checks the parser's promises and abort()s when one is broken:
 * - a complete frame lies within the input and ends with "\n\n" (or is
 *   the lone "\n");
 * - every parsed value is valid UTF-8 without C0/C1 controls or DEL,
 *   every name is [a-z_]{1,32};
 * - a parsed request written back with answer_add frames and parses
 *   again (as an answer) to the same names and values;
 * - any bytes given to answer_add as a value stay within one line.
 *
 * TRUSTS: nothing in the input.  Limits: none beyond libFuzzer's
 * -max_len.  Built by `make fuzz` only, with clang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "request.h"

static void
must (gboolean ok)
{
  if (!ok)
    abort ();
}

static gboolean
name_ok (const char *s)
{
  gsize n = strlen (s);

  if (n == 0 || n > REQUEST_MAX_NAME)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!(g_ascii_islower (s[i]) || s[i] == '_'))
      return FALSE;
  return TRUE;
}

static gboolean
value_ok (const char *s)
{
  if (!g_utf8_validate (s, -1, NULL))
    return FALSE;
  for (const char *p = s; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
        return FALSE;
    }
  return TRUE;
}

/* Writes req as an answer, frames and parses it back: same pairs. */
static void
check_round_trip (const RawRequest *req)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (RawRequest) back = NULL;
  gsize flen = 0;
  Refusal why;

  for (guint i = 0; i < req->attrs->len; i++)
    {
      const RawAttr *a = g_ptr_array_index (req->attrs, i);
      answer_add (out, a->name, a->value);
    }
  answer_end (out);
  must (answer_frame (out->str, out->len, &flen, &why) == FRAME_COMPLETE);
  must (flen == out->len);
  must (request_parse_answer (out->str, out->len, &back, &why));
  must (back->attrs->len == req->attrs->len);
  for (guint i = 0; i < req->attrs->len; i++)
    {
      const RawAttr *a = g_ptr_array_index (req->attrs, i);
      const RawAttr *b = g_ptr_array_index (back->attrs, i);

      must (strcmp (a->name, b->name) == 0);
      must (strcmp (a->value, b->value) == 0);
    }
}

static void
check_parsed (const RawRequest *req)
{
  for (guint i = 0; i < req->attrs->len; i++)
    {
      const RawAttr *a = g_ptr_array_index (req->attrs, i);

      must (name_ok (a->name));
      must (value_ok (a->value));
    }
  check_round_trip (req);
}

static void
fuzz_frame (const char *buf, gsize len, gboolean answer)
{
  gsize flen = 0;
  Refusal why;
  FrameStatus st = answer ? answer_frame (buf, len, &flen, &why)
                          : request_frame (buf, len, &flen, &why);
  g_autoptr (RawRequest) req = NULL;
  gboolean ok;

  if (st == FRAME_ERROR)
    must (why.code != REFUSAL_NONE);
  if (st != FRAME_COMPLETE)
    return;
  must (flen >= 1 && flen <= len && buf[flen - 1] == '\n');
  must (flen == 1 || buf[flen - 2] == '\n');
  ok = answer ? request_parse_answer (buf, flen, &req, &why)
              : request_parse (buf, flen, &req, &why);
  if (ok)
    check_parsed (req);
  else
    must (why.code != REFUSAL_NONE && req == NULL);
}

/* Arbitrary bytes (up to the first NUL) as a value: one line out. */
static void
fuzz_answer_add (const char *buf, gsize len)
{
  g_autofree char *value = g_strndup (buf, len);
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (RawRequest) back = NULL;
  Refusal why;

  answer_add (out, value, value);
  answer_end (out);
  must (request_parse_answer (out->str, out->len, &back, &why));
  must (back->attrs->len == 1);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (RawRequest) whole = NULL;
  Refusal why;
  const char *buf = (const char *)data;

  fuzz_frame (buf, size, FALSE);
  fuzz_frame (buf, size, TRUE);
  /* The parser must be safe on bytes that were never framed. */
  if (request_parse (buf, size, &whole, &why))
    check_parsed (whole);
  fuzz_answer_add (buf, size);
  return 0;
}
