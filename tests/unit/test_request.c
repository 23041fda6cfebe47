/*
 * test_request.c - the wire protocol (request.c) and refusal codes
 * (refusal.c): framing limits, line rules, answers, and a deterministic
 * fuzz loop.  Every framing input is copied into a heap block of exactly
 * its length, so a read past len shows up under ASan or valgrind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <glib.h>

#include "refusal.h"
#include "request.h"

/* ---- helpers ------------------------------------------------------------- */

/* n lines "bcc=a@example.org\n" */
static GString *
many_lines (guint n)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < n; i++)
    g_string_append (s, "bcc=a@example.org\n");
  return s;
}

/* A line of total bytes `len` (LF included when with_lf). */
static void
append_line (GString *s, gsize len, gboolean with_lf)
{
  gsize content = with_lf ? len - 1 : len;

  g_string_append (s, "booking=");
  for (gsize i = strlen ("booking="); i < content; i++)
    g_string_append_c (s, 'x');
  if (with_lf)
    g_string_append_c (s, '\n');
}

static FrameStatus
frame_exact (const char *bytes, gsize len, gsize *flen, Refusal *why)
{
  g_autofree char *copy = g_malloc (len > 0 ? len : 1);

  memcpy (copy, bytes, len);
  return request_frame (len > 0 ? copy : NULL, len, flen, why);
}

static const char *
status_name (FrameStatus s)
{
  return s == FRAME_COMPLETE ? "complete"
    : s == FRAME_INCOMPLETE ? "incomplete" : "error";
}

static void
expect_frame (const char *name, const GString *in, FrameStatus want,
              gsize want_len, RefusalCode want_code)
{
  Refusal why;
  gsize flen = 0;
  FrameStatus got;

  refusal_clear (&why);
  got = frame_exact (in->str, in->len, &flen, &why);
  if (got != want)
    fail_msg ("%s: status %s, expected %s (%s)", name, status_name (got),
              status_name (want), refusal_code_name (why.code));
  if (want == FRAME_COMPLETE && flen != want_len)
    fail_msg ("%s: frame_len %zu, expected %zu", name, flen, want_len);
  if (want == FRAME_ERROR && why.code != want_code)
    fail_msg ("%s: code %s, expected %s", name, refusal_code_name (why.code),
              refusal_code_name (want_code));
}

/* ---- framing ------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *bytes;
  gsize len;                  /* 0: strlen (bytes) */
  FrameStatus status;
  gsize frame_len;
  RefusalCode code;
} FrameCase;

static const FrameCase frame_cases[] = {
  { "empty buffer", "", 0, FRAME_INCOMPLETE, 0, 0 },
  { "empty request", "\n", 0, FRAME_COMPLETE, 1, 0 },
  { "one line", "request=ping\n\n", 0, FRAME_COMPLETE, 14, 0 },
  { "no end yet", "request=ping\n", 0, FRAME_INCOMPLETE, 0, 0 },
  { "half a line", "request=pi", 0, FRAME_INCOMPLETE, 0, 0 },
  { "two requests", "request=ping\n\nrequest=send\n\n", 0,
    FRAME_COMPLETE, 14, 0 },
  { "second request partial", "request=ping\n\nreq", 0,
    FRAME_COMPLETE, 14, 0 },
  { "CRLF lines", "request=ping\r\n\r\n", 0, FRAME_ERROR, 0,
    REFUSAL_MALFORMED },
  { "CR before LF arrives", "request=ping\r", 0, FRAME_ERROR, 0,
    REFUSAL_MALFORMED },
  { "NUL in value", "request=pi\0ng\n\n", 15, FRAME_ERROR, 0,
    REFUSAL_MALFORMED },
  { "no = is still a frame", "hello\n\n", 0, FRAME_COMPLETE, 7, 0 },
};

static void
test_frame_table (void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (frame_cases); i++)
    {
      const FrameCase *c = &frame_cases[i];
      g_autoptr (GString) in = g_string_new_len (c->bytes,
                                                 c->len ? c->len
                                                        : strlen (c->bytes));

      expect_frame (c->name, in, c->status, c->frame_len, c->code);
    }
}

static void
test_frame_line_limit (void **state)
{
  g_autoptr (GString) max_ok = g_string_new (NULL);
  g_autoptr (GString) nolf_short = g_string_new (NULL);
  g_autoptr (GString) nolf_long = g_string_new (NULL);
  g_autoptr (GString) over = g_string_new (NULL);
  g_autoptr (GString) later = g_string_new ("request=send\n");

  (void) state;
  append_line (max_ok, REQUEST_MAX_LINE, TRUE);
  g_string_append_c (max_ok, '\n');
  expect_frame ("line of exactly the limit", max_ok, FRAME_COMPLETE,
                REQUEST_MAX_LINE + 1, 0);

  append_line (nolf_short, REQUEST_MAX_LINE - 1, FALSE);
  expect_frame ("limit-1 bytes without LF", nolf_short, FRAME_INCOMPLETE, 0, 0);

  append_line (nolf_long, REQUEST_MAX_LINE, FALSE);
  expect_frame ("limit bytes without LF", nolf_long, FRAME_ERROR, 0,
                REFUSAL_LINE_TOO_LONG);

  append_line (over, REQUEST_MAX_LINE + 1, TRUE);
  expect_frame ("line one over the limit", over, FRAME_ERROR, 0,
                REFUSAL_LINE_TOO_LONG);

  append_line (later, REQUEST_MAX_LINE, FALSE);
  expect_frame ("long second line", later, FRAME_ERROR, 0,
                REFUSAL_LINE_TOO_LONG);
}

static void
test_frame_request_limit (void **state)
{
  const guint full = REQUEST_MAX_BYTES / REQUEST_MAX_LINE - 1;  /* 15 */
  g_autoptr (GString) exact = g_string_new (NULL);
  g_autoptr (GString) at_limit = g_string_new (NULL);
  g_autoptr (GString) big = g_string_new (NULL);

  (void) state;
  /* 15 full lines + a line one byte short + the empty line = the limit. */
  for (guint i = 0; i < full; i++)
    append_line (exact, REQUEST_MAX_LINE, TRUE);
  append_line (exact, REQUEST_MAX_LINE - 1, TRUE);
  g_string_append_c (exact, '\n');
  g_assert_cmpuint (exact->len, ==, REQUEST_MAX_BYTES);
  expect_frame ("request of exactly the limit", exact, FRAME_COMPLETE,
                REQUEST_MAX_BYTES, 0);

  /* The limit reached without the empty line: refused at once. */
  for (guint i = 0; i <= full; i++)
    append_line (at_limit, REQUEST_MAX_LINE, TRUE);
  g_assert_cmpuint (at_limit->len, ==, REQUEST_MAX_BYTES);
  expect_frame ("limit reached without end", at_limit, FRAME_ERROR, 0,
                REFUSAL_REQUEST_TOO_LARGE);

  /* The limit reached in the middle of a line. */
  for (guint i = 0; i < full; i++)
    append_line (big, REQUEST_MAX_LINE, TRUE);
  append_line (big, REQUEST_MAX_LINE - 1, TRUE);
  g_string_append (big, "x");
  expect_frame ("limit reached mid-line", big, FRAME_ERROR, 0,
                REFUSAL_REQUEST_TOO_LARGE);
}

static void
test_frame_attr_limit (void **state)
{
  g_autoptr (GString) ok = many_lines (REQUEST_MAX_ATTRS);
  g_autoptr (GString) over = many_lines (REQUEST_MAX_ATTRS + 1);
  g_autoptr (GString) early = many_lines (REQUEST_MAX_ATTRS);
  gsize ok_len;

  (void) state;
  g_string_append_c (ok, '\n');
  ok_len = ok->len;
  expect_frame ("exactly max attributes", ok, FRAME_COMPLETE, ok_len, 0);
  g_string_append_c (over, '\n');
  expect_frame ("one attribute too many", over, FRAME_ERROR, 0,
                REFUSAL_TOO_MANY_ATTRIBUTES);
  g_string_append_c (early, 'b');
  expect_frame ("first byte of one too many", early, FRAME_ERROR, 0,
                REFUSAL_TOO_MANY_ATTRIBUTES);
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *bytes;
  gsize len;              /* 0: strlen */
  RefusalCode code;       /* REFUSAL_NONE: parses */
  const char *field;      /* expected field, or NULL for "" */
  guint n_attrs;
} ParseCase;

static const ParseCase parse_cases[] = {
  { "empty request", "\n", 0, REFUSAL_NONE, NULL, 0 },
  { "ping", "request=ping\n\n", 0, REFUSAL_NONE, NULL, 1 },
  { "send", "request=send\nlink=https://example.org/m?a=b\n"
    "bcc=a@example.org\nbooking=Bokning 12 åäö\nstaff=hsa-1\nlang=sv\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\n"
    "idempotency_key=k1\n\n", 0, REFUSAL_NONE, NULL, 9 },
  { "status with id", "request=status\nid=abc\n\n", 0, REFUSAL_NONE, NULL, 2 },
  { "repeated bcc", "request=send\nbcc=a@example.org\nbcc=b@example.org\n\n",
    0, REFUSAL_NONE, NULL, 3 },
  { "empty value", "booking=\n\n", 0, REFUSAL_NONE, NULL, 1 },
  { "= inside value", "link=https://example.org/?a=b=c\n\n", 0,
    REFUSAL_NONE, NULL, 1 },
  { "no =", "request\n\n", 0, REFUSAL_MALFORMED, NULL, 0 },
  { "empty name", "=ping\n\n", 0, REFUSAL_MALFORMED, NULL, 0 },
  { "uppercase name", "Request=ping\n\n", 0, REFUSAL_MALFORMED, NULL, 0 },
  { "digit in name", "bcc2=a@example.org\n\n", 0, REFUSAL_MALFORMED, NULL, 0 },
  { "space before =", "request =ping\n\n", 0, REFUSAL_MALFORMED, NULL, 0 },
  { "name of 33", "abcdefghijklmnopqrstuvwxyzabcdefg=x\n\n", 0,
    REFUSAL_MALFORMED, NULL, 0 },
  { "unknown name of 32", "abcdefghijklmnopqrstuvwxyzabcdef=x\n\n", 0,
    REFUSAL_UNKNOWN_ATTRIBUTE, "abcdefghijklmnopqrstuvwxyzabcde", 0 },
  { "unknown attribute", "request=ping\ncolor=red\n\n", 0,
    REFUSAL_UNKNOWN_ATTRIBUTE, "color", 0 },
  { "answer name in request", "status=ok\n\n", 0,
    REFUSAL_UNKNOWN_ATTRIBUTE, "status", 0 },
  { "repeated request", "request=ping\nrequest=send\n\n", 0,
    REFUSAL_REPEATED_ATTRIBUTE, "request", 0 },
  { "repeated link", "link=https://example.org/\nlink=https://example.org/\n\n",
    0, REFUSAL_REPEATED_ATTRIBUTE, "link", 0 },
  { "bad UTF-8", "booking=\xff\xfe\n\n", 0, REFUSAL_INVALID_VALUE, "booking",
    0 },
  { "overlong UTF-8", "booking=\xc0\xaf\n\n", 0, REFUSAL_INVALID_VALUE,
    "booking", 0 },
  { "UTF-16 surrogate", "booking=\xed\xa0\x80\n\n", 0, REFUSAL_INVALID_VALUE,
    "booking", 0 },
  { "tab in value", "booking=a\tb\n\n", 0, REFUSAL_INVALID_VALUE, "booking",
    0 },
  { "ESC in value", "staff=a\x1b[31m\n\n", 0, REFUSAL_INVALID_VALUE, "staff",
    0 },
  { "DEL in value", "staff=a\x7f\n\n", 0, REFUSAL_INVALID_VALUE, "staff", 0 },
  { "C1 NEL in value", "booking=a\xc2\x85z\n\n", 0, REFUSAL_INVALID_VALUE,
    "booking", 0 },
  { "CR in value", "request=ping\r\n\n", 0, REFUSAL_MALFORMED, NULL, 0 },
  { "NUL in value", "request=pi\0ng\n\n", 15, REFUSAL_MALFORMED, NULL, 0 },
  { "not ended", "request=ping\n", 0, REFUSAL_MALFORMED, NULL, 0 },
  { "bytes after end", "request=ping\n\nx", 0, REFUSAL_MALFORMED, NULL, 0 },
  { "nothing", "", 0, REFUSAL_MALFORMED, NULL, 0 },
};

static void
test_parse_table (void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (parse_cases); i++)
    {
      const ParseCase *c = &parse_cases[i];
      gsize len = c->len ? c->len : strlen (c->bytes);
      g_autofree char *copy = g_memdup2 (c->bytes, len + 1);
      g_autoptr (RawRequest) req = NULL;
      Refusal why;
      gboolean ok;

      refusal_clear (&why);
      ok = request_parse (copy, len, &req, &why);
      if (ok != (c->code == REFUSAL_NONE))
        fail_msg ("%s: parse %s (%s)", c->name, ok ? "accepted" : "refused",
                  refusal_code_name (why.code));
      if (ok && req->attrs->len != c->n_attrs)
        fail_msg ("%s: %u attributes, expected %u", c->name, req->attrs->len,
                  c->n_attrs);
      if (!ok && why.code != c->code)
        fail_msg ("%s: code %s, expected %s", c->name,
                  refusal_code_name (why.code), refusal_code_name (c->code));
      if (!ok && strcmp (why.field, c->field ? c->field : "") != 0)
        fail_msg ("%s: field '%s', expected '%s'", c->name, why.field,
                  c->field ? c->field : "");
      if (!ok && req != NULL)
        fail_msg ("%s: refused but returned a request", c->name);
    }
}

static void
test_parse_values (void **state)
{
  const char *in = "request=send\nbcc=a@example.org\nlink=https://example.org/"
    "?x=1\nbcc=b@example.org\nbooking=\n\n";
  g_autoptr (RawRequest) req = NULL;
  Refusal why;

  (void) state;
  assert_true (request_parse (in, strlen (in), &req, &why));
  assert_string_equal (raw_request_get (req, "request"), "send");
  assert_string_equal (raw_request_get (req, "bcc"), "a@example.org");
  assert_string_equal (raw_request_get (req, "link"),
                       "https://example.org/?x=1");
  assert_string_equal (raw_request_get (req, "booking"), "");
  assert_null (raw_request_get (req, "staff"));
  assert_int_equal (raw_request_count (req, "bcc"), 2);
  assert_int_equal (raw_request_count (req, "staff"), 0);
  assert_string_equal (((RawAttr *) g_ptr_array_index (req->attrs, 3))->value,
                       "b@example.org");
}

/* Two requests in one buffer are framed and parsed one after the other. */
static void
test_frame_then_parse_pipeline (void **state)
{
  const char *buf = "request=ping\n\nrequest=status\nid=x\n\n";
  gsize len = strlen (buf), off = 0, flen = 0;
  const char *kinds[] = { "ping", "status" };
  Refusal why;

  (void) state;
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (RawRequest) req = NULL;

      assert_int_equal (request_frame (buf + off, len - off, &flen, &why),
                        FRAME_COMPLETE);
      assert_true (request_parse (buf + off, flen, &req, &why));
      assert_string_equal (raw_request_get (req, "request"), kinds[i]);
      off += flen;
    }
  assert_int_equal (off, len);
  assert_int_equal (request_frame (buf + off, 0, &flen, &why),
                    FRAME_INCOMPLETE);
}

/* ---- answers ------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *attr;
  const char *value;
  const char *expect;
} AnswerCase;

static const AnswerCase answer_cases[] = {
  { "plain", "status", "queued", "status=queued\n" },
  { "LF in value", "message", "a\nstatus=queued", "message=a status=queued\n" },
  { "CR LF in value", "message", "a\r\n\r\nb", "message=a    b\n" },
  { "controls in value", "message", "a\tb\x1b\x7f", "message=a b  \n" },
  { "C1 in value", "message", "a\xc2\x85" "b", "message=a b\n" },
  { "bad UTF-8 in value", "message", "a\xff", "message=a\xef\xbf\xbd\n" },
  { "UTF-8 kept", "message", "Hej Åsa", "message=Hej Åsa\n" },
  { "NULL value", "id", NULL, "id=\n" },
  { "name sanitised", "Bad=Name\n", "v", "_ad__ame_=v\n" },
  { "empty name", "", "v", "_=v\n" },
};

static void
test_answer_add_table (void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (answer_cases); i++)
    {
      const AnswerCase *c = &answer_cases[i];
      g_autoptr (GString) out = g_string_new (NULL);

      answer_add (out, c->attr, c->value);
      if (strcmp (out->str, c->expect) != 0)
        fail_msg ("%s: got '%s'", c->name, out->str);
    }
}

/* A refusal written by the daemon is read back by the client parser. */
static void
test_answer_refusal_roundtrip (void **state)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (RawRequest) ans = NULL;
  Refusal r, why;
  gsize flen = 0;

  (void) state;
  refusal_set (&r, REFUSAL_LINK_HOST_NOT_ALLOWED, "link", NULL);
  answer_refusal (out, &r);
  assert_int_equal (answer_frame (out->str, out->len, &flen, &why),
                    FRAME_COMPLETE);
  assert_int_equal (flen, out->len);
  assert_true (request_parse_answer (out->str, out->len, &ans, &why));
  assert_string_equal (raw_request_get (ans, "status"), "rejected");
  assert_string_equal (raw_request_get (ans, "error"), "link_host_not_allowed");
  assert_string_equal (raw_request_get (ans, "field"), "link");
  assert_string_equal (raw_request_get (ans, "message"),
                       refusal_code_text (REFUSAL_LINK_HOST_NOT_ALLOWED));
}

static void
test_answer_refusal_no_field (void **state)
{
  g_autoptr (GString) out = g_string_new (NULL);
  Refusal r;

  (void) state;
  refusal_set (&r, REFUSAL_BUSY, NULL, "try in %d s", 5);
  answer_refusal (out, &r);
  assert_string_equal (out->str, "status=rejected\nerror=busy\n"
                       "message=try in 5 s\n\n");
}

/* Answers may repeat names and carry one very long line (eml=). */
static void
test_answer_limits (void **state)
{
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) eml = g_string_new (NULL);
  g_autoptr (RawRequest) ans = NULL;
  Refusal why;
  gsize flen = 0;

  (void) state;
  for (guint i = 0; i < 200 * 1024; i++)
    g_string_append_c (eml, 'A' + i % 26);
  answer_add (out, "status", "ok");
  answer_add (out, "recipient", "1 sent");
  answer_add (out, "recipient", "2 deferred");
  answer_add (out, "eml", eml->str);
  answer_end (out);
  assert_int_equal (request_frame (out->str, out->len, &flen, &why),
                    FRAME_ERROR);
  assert_int_equal (why.code, REFUSAL_LINE_TOO_LONG);
  assert_int_equal (answer_frame (out->str, out->len, &flen, &why),
                    FRAME_COMPLETE);
  assert_true (request_parse_answer (out->str, flen, &ans, &why));
  assert_int_equal (raw_request_count (ans, "recipient"), 2);
  assert_string_equal (raw_request_get (ans, "eml"), eml->str);
  assert_false (request_parse (out->str, out->len, &ans, &why));
}

/* ---- refusal codes ------------------------------------------------------- */

static gboolean
printable_ascii (const char *s)
{
  for (; *s; s++)
    if (*s < 0x20 || *s > 0x7e)
      return FALSE;
  return TRUE;
}

static void
test_refusal_names (void **state)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  (void) state;
  for (int c = 0; c < REFUSAL_N_CODES; c++)
    {
      const char *name = refusal_code_name (c);
      const char *text = refusal_code_text (c);

      if (name == NULL || text == NULL || *text == '\0' || !printable_ascii (text))
        fail_msg ("code %d lacks a name or a plain text", c);
      if (strspn (name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen (name))
        fail_msg ("code %d: name '%s' not lowercase", c, name);
      if (c != REFUSAL_INTERNAL && strcmp (name, "internal") == 0)
        fail_msg ("code %d has no name of its own", c);
      if (!g_hash_table_add (seen, (gpointer) name))
        fail_msg ("code %d: name '%s' repeated", c, name);
    }
  /* The contract spells these exactly. */
  assert_string_equal (refusal_code_name (REFUSAL_MALFORMED), "malformed");
  assert_string_equal (refusal_code_name (REFUSAL_LINK_HOST_NOT_ALLOWED),
                       "link_host_not_allowed");
  assert_string_equal (refusal_code_name (REFUSAL_ADDRESS_UTF8), "address_utf8");
  assert_string_equal (refusal_code_name (REFUSAL_INVALID_MEETING_TIME),
                       "invalid_meeting_time");
  assert_string_equal (refusal_code_name (REFUSAL_INTERNAL), "internal");
  assert_string_equal (refusal_code_name (REFUSAL_N_CODES), "internal");
}

static void
test_refusal_set_masks_and_cuts (void **state)
{
  g_autofree char *longtext = g_strnfill (500, 'm');
  Refusal r;

  (void) state;
  assert_false (refusal_set (&r, REFUSAL_INVALID_VALUE, "bo\nok", "x\r\ny Å"));
  assert_int_equal (r.code, REFUSAL_INVALID_VALUE);
  assert_string_equal (r.field, "bo?ok");
  assert_string_equal (r.message, "x??y ??");
  refusal_set (&r, REFUSAL_INTERNAL, "abcdefghijklmnopqrstuvwxyz0123456789",
               "%s", longtext);
  assert_int_equal (strlen (r.message), REFUSAL_MESSAGE_MAX - 1);
  assert_int_equal (strlen (r.field), REFUSAL_FIELD_MAX - 1);
  refusal_set (&r, REFUSAL_TIMEOUT, NULL, NULL);
  assert_string_equal (r.field, "");
  assert_string_equal (r.message, refusal_code_text (REFUSAL_TIMEOUT));
  refusal_clear (&r);
  assert_int_equal (r.code, REFUSAL_NONE);
}

/* ---- fuzz-ish ------------------------------------------------------------ */

/* Bytes biased toward the grammar, so the loop gets past the first check. */
static void
fuzz_fill (GRand *rng, char *buf, gsize len)
{
  static const char alphabet[] = "request=pingsendbcclink_\n\n\n==\r\t\xc3\xa5\xff";

  for (gsize i = 0; i < len; i++)
    buf[i] = g_rand_int_range (rng, 0, 4) == 0
      ? (char) g_rand_int_range (rng, 0, 256)
      : alphabet[g_rand_int_range (rng, 0, sizeof alphabet - 1)];
}

static void
test_fuzz_frame_parse (void **state)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (20261125);
  guint complete = 0, parsed = 0;

  (void) state;
  for (guint i = 0; i < 10000; i++)
    {
      gsize len = g_rand_int_range (rng, 0, 300);
      g_autofree char *buf = g_malloc (len + 1);
      g_autoptr (RawRequest) req = NULL;
      g_autoptr (RawRequest) ans = NULL;
      Refusal why;
      gsize flen = 0;

      fuzz_fill (rng, buf, len);
      if (request_frame (buf, len, &flen, &why) == FRAME_COMPLETE)
        {
          assert_in_range (flen, 1, len);
          complete++;
          if (request_parse (buf, flen, &req, &why))
            parsed++;
          (void) request_parse_answer (buf, flen, &ans, &why);
        }
      g_clear_pointer (&req, raw_request_free);
      (void) request_parse (buf, len, &req, &why);
    }
  /* The loop must reach the deeper code, not only the first check. */
  assert_true (complete > 100);
  assert_true (parsed > 10);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_frame_table),
    cmocka_unit_test (test_frame_line_limit),
    cmocka_unit_test (test_frame_request_limit),
    cmocka_unit_test (test_frame_attr_limit),
    cmocka_unit_test (test_parse_table),
    cmocka_unit_test (test_parse_values),
    cmocka_unit_test (test_frame_then_parse_pipeline),
    cmocka_unit_test (test_answer_add_table),
    cmocka_unit_test (test_answer_refusal_roundtrip),
    cmocka_unit_test (test_answer_refusal_no_field),
    cmocka_unit_test (test_answer_limits),
    cmocka_unit_test (test_refusal_names),
    cmocka_unit_test (test_refusal_set_masks_and_cuts),
    cmocka_unit_test (test_fuzz_frame_parse),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
