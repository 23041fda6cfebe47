/*
 * test_dsn.c - the bounce reader's rules (dsn.c) on the real fixtures
 * of tests/data/dsn/ and on small crafted reports: where the token may
 * come from, which per-recipient block wins, what a status must look
 * like, and how a hostile diagnostic is made safe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dsn.h"
#include "mime.h"

#define TOK "0123456789abcdefghijklmnop"
#define TOK2 "ponmlkjihgfedcba9876543210"

/* $srcdir (make check sets it), else the current folder. */
static const char *
srcdir (void)
{
  const char *s = g_getenv ("srcdir");
  return s != NULL ? s : ".";
}

static char *
fixture (const char *name, const char *token)
{
  g_autofree char *path = g_build_filename (srcdir (), "tests", "data", "dsn", name, NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) s = NULL;

  if (!g_file_get_contents (path, &text, NULL, &error))
    fail_msg ("%s: %s", path, error->message);
  s = g_string_new (text);
  g_string_replace (s, "@TOKEN@", token, 0);
  g_string_replace (s, "@RCPT@", "tolk@example.com", 0);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

/* A minimal report: one per-recipient block made of fields. */
static char *
report (const char *to, const char *fields)
{
  return g_strdup_printf ("To: %s\nMIME-Version: 1.0\n"
                          "Content-Type: multipart/report; report-type=delivery-status;"
                          " boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nx\n"
                          "--b\nContent-Type: message/delivery-status\n\n"
                          "Reporting-MTA: dns; relay.example.org\n\n%s\n--b--\n", to, fields);
}

static gboolean
parse (const char *text, const char *envelope, Dsn *d, int *code)
{
  g_autoptr (GError) error = NULL;
  gboolean ok = dsn_parse (text, strlen (text), envelope, d, &error);

  *code = ok ? -1 : error->code;
  return ok;
}

static void
test_fixtures (void **state)
{
  static const struct {
    const char *name, *action, *status, *diag_start;
  } cases[] = {
    { "postfix-failed.eml", "failed", "5.1.1", "smtp; 550 5.1.1 <tolk@example.com>:" },
    { "postfix-delayed.eml", "delayed", "4.4.1", "X-Postfix; connect to" },
    { "exim-failed.eml", "failed", "5.0.0", "smtp; 550 5.2.1 Mailbox disabled" },
    { "exchange-failed.eml", "failed", "5.1.10", "smtp;550 5.1.10 RESOLVER.ADR" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = fixture (cases[i].name, TOK);
      Dsn d;
      int code;

      if (!parse (text, NULL, &d, &code))
        fail_msg ("%s refused (%d)", cases[i].name, code);
      assert_string_equal (d.token, TOK);
      assert_string_equal (d.action, cases[i].action);
      assert_string_equal (d.status, cases[i].status);
      if (!g_str_has_prefix (d.diagnostic, cases[i].diag_start))
        fail_msg ("%s: diagnostic %s", cases[i].name, d.diagnostic);
      /* Folded lines became one line. */
      assert_null (strchr (d.diagnostic, '\n'));
    }
}

static void
test_broken_fixtures (void **state)
{
  const char *names[] = { "broken-no-report.eml", "broken-fields.eml" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *text = fixture (names[i], TOK);
      Dsn d;
      int code;

      assert_false (parse (text, NULL, &d, &code));
      assert_int_equal (code, DSN_ERROR_NOT_DSN);
    }
}

static void
test_token_sources (void **state)
{
  g_autofree char *text = fixture ("postfix-failed.eml", TOK);
  Dsn d;
  int code;

  /* The envelope recipient alone decides when it is given. */
  assert_true (parse (text, "bounces+" TOK2 "@example.org", &d, &code));
  assert_string_equal (d.token, TOK2);
  assert_false (parse (text, "postmaster@example.org", &d, &code));
  assert_int_equal (code, DSN_ERROR_NO_TOKEN);
  /* Upper case from a relay that changed the local part is folded. */
  assert_true (parse (text, "BOUNCES+0123456789ABCDEFGHIJKLMNOP@EXAMPLE.ORG", &d, &code));
  assert_string_equal (d.token, TOK);
  /* Headers that disagree: no token. */
  {
    g_autofree char *two = report ("bounces+" TOK "@example.org, bounces+" TOK2
                                   "@example.org",
                                   "Action: failed\nStatus: 5.1.1\n");
    assert_false (parse (two, NULL, &d, &code));
    assert_int_equal (code, DSN_ERROR_NO_TOKEN);
  }
  /* No token anywhere. */
  {
    g_autofree char *none = report ("postmaster@example.org",
                                    "Action: failed\nStatus: 5.1.1\n");
    assert_false (parse (none, NULL, &d, &code));
    assert_int_equal (code, DSN_ERROR_NO_TOKEN);
  }
}

static void
test_token_shapes (void **state)
{
  char t[QUEUE_TOKEN_LEN + 1];

  assert_true (dsn_token_in ("<bounces+" TOK "@example.org>", t));
  assert_string_equal (t, TOK);
  assert_true (dsn_token_in ("rfc822; evisit+" TOK "@example.org", t));
  /* 25 characters, 27, a character outside [0-9a-v], no '@' after it,
   * nothing before the '+': none of them a token. */
  assert_false (dsn_token_in ("bounces+0123456789abcdefghijklmno@example.org", t));
  assert_false (dsn_token_in ("bounces+0123456789abcdefghijklmnopq@example.org", t));
  assert_false (dsn_token_in ("bounces+0123456789abcdefghijklmnoz@example.org", t));
  assert_false (dsn_token_in ("bounces+" TOK ".example.org", t));
  assert_false (dsn_token_in ("<+" TOK "@example.org>", t));
  assert_false (dsn_token_in (NULL, t));
  /* The same token twice is one token; two different are none. */
  assert_true (dsn_token_in ("a+" TOK "@x.org b+" TOK "@y.org", t));
  assert_false (dsn_token_in ("a+" TOK "@x.org b+" TOK2 "@y.org", t));
}

static void
test_which_block_and_status (void **state)
{
  Dsn d;
  int code;
  const char *to = "bounces+" TOK "@example.org";
  g_autofree char *delayed_then_failed = report (to,
    "Action: delayed\nStatus: 4.4.1\n\n"
    "Action: failed (gave up)\nStatus: 5.4.7 (expired)\n"
    "Diagnostic-Code: smtp;\n 451 4.4.7 still down\n");
  g_autofree char *delivered = report (to, "Action: delivered\nStatus: 2.0.0\n");
  g_autofree char *success_status = report (to, "Action: failed\nStatus: 2.1.5\n");
  g_autofree char *delayed_5 = report (to, "Action: delayed\nStatus: 5.1.1\n");
  g_autofree char *no_status = report (to, "Action: failed\n");
  g_autofree char *bad_status = report (to, "Action: failed\nStatus: 5.1\n");
  g_autofree char *gave_up_4 = report (to, "Action: failed\nStatus: 4.4.7\n");

  assert_true (parse (delayed_then_failed, NULL, &d, &code));
  assert_string_equal (d.action, "failed");
  assert_string_equal (d.status, "5.4.7");
  assert_string_equal (d.diagnostic, "smtp; 451 4.4.7 still down");
  assert_false (parse (delivered, NULL, &d, &code));
  assert_int_equal (code, DSN_ERROR_NOT_FAILURE);
  assert_false (parse (success_status, NULL, &d, &code));
  assert_int_equal (code, DSN_ERROR_NOT_DSN);
  assert_false (parse (delayed_5, NULL, &d, &code));
  assert_false (parse (no_status, NULL, &d, &code));
  assert_false (parse (bad_status, NULL, &d, &code));
  /* A remote side that gave up on a temporary error. */
  assert_true (parse (gave_up_4, NULL, &d, &code));
  assert_string_equal (d.status, "4.4.7");
}

static void
test_hostile_diagnostic (void **state)
{
  g_autoptr (GString) fields = g_string_new ("Action: failed\nStatus: 5.1.1\n"
                                             "Diagnostic-Code: smtp; 550 \x1b[31m\xc3\xa5\x07");
  g_autofree char *text = NULL;
  Dsn d;
  int code;

  for (int i = 0; i < 1000; i++)
    g_string_append_c (fields, 'y');
  g_string_append_c (fields, '\n');
  text = report ("bounces+" TOK "@example.org", fields->str);
  assert_true (parse (text, NULL, &d, &code));
  assert_int_equal (strlen (d.diagnostic), QUEUE_DSN_DIAG_MAX - 1);
  for (const char *p = d.diagnostic; *p != '\0'; p++)
    assert_true (*p >= ' ' && *p <= '~');
}

static void
test_too_large_and_empty (void **state)
{
  g_autofree char *big = g_malloc0 (DSN_INPUT_MAX + 1);
  Dsn d;
  g_autoptr (GError) error = NULL;

  memset (big, 'x', DSN_INPUT_MAX + 1);
  assert_false (dsn_parse (big, DSN_INPUT_MAX + 1, NULL, &d, &error));
  assert_true (g_error_matches (error, DSN_ERROR, DSN_ERROR_NOT_DSN));
  g_clear_error (&error);
  assert_false (dsn_parse (NULL, 0, NULL, &d, &error));
  assert_true (g_error_matches (error, DSN_ERROR, DSN_ERROR_NOT_DSN));
}

static int
setup (void **state)
{
  mime_init ();
  return 0;
}

static int
teardown (void **state)
{
  mime_shutdown ();
  return 0;
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_fixtures),
    cmocka_unit_test (test_broken_fixtures),
    cmocka_unit_test (test_token_sources),
    cmocka_unit_test (test_token_shapes),
    cmocka_unit_test (test_which_block_and_status),
    cmocka_unit_test (test_hostile_diagnostic),
    cmocka_unit_test (test_too_large_and_empty),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
