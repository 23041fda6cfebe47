/*
 * test_report.c - the `audit_resumed` row's words (gate_gap.c, written
 * by the gate, read by the report) and the periods the audit could not
 * be written in `invitemail audit report`: rows stored through the real
 * audit API under a test clock, the real CLI run on the file, its text,
 * HTML and CSV read back.
 *
 * The month is 2026-10 in Europe/Stockholm (the report's default zone):
 * 2026-09-30T22:00Z to 2026-10-31T23:00Z.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "audit.h"
#include "gate_gap.h"
#include "testutil.h"

/* ---- the words ------------------------------------------------------- */

static void
test_gap_round_trip (void **state)
{
  const GateGap cases[] = {
    { 1796295000, 425, 7, 1 },
    { 0, 0, 0, 0 },
    { 253402300799, G_MAXINT64, G_MAXUINT, G_MAXUINT },   /* 9999-12-31 */
  };
  (void) state;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *s = gate_gap_format (&cases[i]);
      GateGap back = { -1, -1, 1, 1 };

      if (!gate_gap_parse (s, &back))
        fail_msg ("did not read back its own words: %s", s);
      assert_int_equal (back.since, cases[i].since);
      assert_int_equal (back.secs, cases[i].secs);
      assert_int_equal (back.refused, cases[i].refused);
      assert_int_equal (back.unaudited, cases[i].unaudited);
    }
}

static void
test_gap_words_as_before (void **state)
{
  GateGap g = { 1796295000, 425, 7, 1 }, back;
  GateGap back_step = { 1796295000, -3, 0, 2 };
  g_autofree char *s = gate_gap_format (&g);
  g_autofree char *step = gate_gap_format (&back_step);
  (void) state;

  /* The text older files hold, word for word. */
  assert_string_equal (s, "the audit could not be written from 2026-12-03T10:50:00Z for"
                       " 425 s: 7 request(s) refused unavailable, 1 refusal(s) answered"
                       " without their row; delivery paused");
  /* The clock stepped back meanwhile: no negative length. */
  assert_non_null (strstr (step, " for 0 s: "));
  assert_true (gate_gap_parse (step, &back));
  assert_int_equal (back.secs, 0);
}

static void
test_gap_parse_is_strict (void **state)
{
  static const char *const bad[] = {
    "",
    "the audit could not be written from ",
    "the audit could not be written from 2026-12-03T10:50:00Z for 425 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused ",
    "the audit could not be written from 2026-12-03T10:50:00Z for 425 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused\n",
    " the audit could not be written from 2026-12-03T10:50:00Z for 425 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
    "the audit could not be written from 2026-12-03T10:50:00Z for -5 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
    "the audit could not be written from 2026-12-03T10:50:00Z for +5 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
    "the audit could not be written from 2026-12-03T10:50:00Z for 425 s: 07 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
    "the audit could not be written from 2026-12-03T10:50:00Z for 425 s: 4294967296"
    " request(s) refused unavailable, 1 refusal(s) answered without their row;"
    " delivery paused",
    "the audit could not be written from 2026-12-03T10:50:00Z for 9223372036854775808"
    " s: 7 request(s) refused unavailable, 1 refusal(s) answered without their row;"
    " delivery paused",
    "the audit could not be written from 2026-12-03T10:50:00Z for  425 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
    "the audit could not be written from 2026-02-30T10:50:00Z for 425 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
    "the audit could not be written from 2026-12-03T24:00:00Z for 425 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
    "the audit could not be written from 2026-12-03T10:50:00.5Z for 425 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
    "the audit could not be written from 2026-12-03T10:50:00+01:00 for 425 s: 7"
    " request(s) refused unavailable, 1 refusal(s) answered without their row;"
    " delivery paused",
    "the audit could not be written from 2026-12-03 10:50:00Z for 425 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
    "the audit could not be written from 2026-12-03T10:50:00Z for 425 s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row",
    "the audit could not be written from 2026-12-03T10:50:00Z for 0x1A s: 7 request(s)"
    " refused unavailable, 1 refusal(s) answered without their row; delivery paused",
  };
  GateGap out = { 11, 12, 13, 14 };
  (void) state;

  assert_false (gate_gap_parse (NULL, &out));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    if (gate_gap_parse (bad[i], &out))
      fail_msg ("took a detail the gate never writes: \"%s\"", bad[i]);
  /* Untouched by a refusal. */
  assert_int_equal (out.since, 11);
  assert_int_equal (out.unaudited, 14);
}

/* ---- the report ------------------------------------------------------ */

typedef struct {
  char *dir, *path;
  gint64 now_ms;
} Fixture;

static int
setup (void **state)
{
  Fixture *fx = g_new0 (Fixture, 1);

  fx->dir = testutil_tmpdir ("imreport-XXXXXX");
  fx->path = g_build_filename (fx->dir, "audit.db", NULL);
  *state = fx;
  return 0;
}

static int
teardown (void **state)
{
  Fixture *fx = *state;

  testutil_rm_rf (fx->dir);
  g_free (fx->dir);
  g_free (fx->path);
  g_free (fx);
  return 0;
}

static gint64
fixed_clock (gpointer data)
{
  return ((Fixture *) data)->now_ms;
}

static gint64
utc_s (const char *iso)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_iso8601 (iso, NULL);

  assert_non_null (t);
  return g_date_time_to_unix (t);
}

/* An `audit_resumed` row at row_iso with exactly the detail given. */
static void
resumed_raw (Audit *a, Fixture *fx, const char *row_iso, const char *detail)
{
  g_autoptr (GError) error = NULL;
  AuditRecord r = { .event = AUDIT_RESUMED, .peer_uid = -1, .detail = detail };

  fx->now_ms = utc_s (row_iso) * 1000;
  if (!audit_append_batch (a, &r, 1, &error))
    fail_msg ("append: %s", error->message);
}

/* As the gate writes it: the period from since_iso to the row. */
static void
resumed (Audit *a, Fixture *fx, const char *since_iso, const char *row_iso,
         guint refused, guint unaudited)
{
  GateGap g = { utc_s (since_iso), utc_s (row_iso) - utc_s (since_iso), refused,
                unaudited };
  g_autofree char *detail = gate_gap_format (&g);

  resumed_raw (a, fx, row_iso, detail);
}

#define HOSTILE "the audit could not be written from 2026-10-12T08:00:00Z for -5 s: " \
  "3 request(s)\n<script>alert(1)</script> =HYPERLINK(\"x\")\x1b[2J"

/* The month's file: a period before it, one across its start, one in it,
 * two unreadable rows, one across its end, one after it. */
static void
write_month (Fixture *fx)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (Audit) a = audit_open (fx->path, &error);

  if (a == NULL)
    fail_msg ("open: %s", error->message);
  audit_set_clock (a, fixed_clock, fx);
  resumed (a, fx, "2026-09-15T11:00:00Z", "2026-09-15T12:00:00Z", 1, 1);
  resumed (a, fx, "2026-09-30T21:30:00Z", "2026-09-30T22:20:00Z", 4, 2);
  resumed (a, fx, "2026-10-10T08:00:00Z", "2026-10-10T08:07:05Z", 7, 1);
  resumed_raw (a, fx, "2026-10-12T09:00:00Z", HOSTILE);
  /* Well formed, but the period would begin after its own row. */
  resumed_raw (a, fx, "2026-10-14T10:00:00Z",
               "the audit could not be written from 2026-10-20T00:00:00Z for 60 s:"
               " 1 request(s) refused unavailable, 0 refusal(s) answered without"
               " their row; delivery paused");
  resumed (a, fx, "2026-10-31T22:30:00Z", "2026-10-31T23:40:00Z", 9, 0);
  resumed (a, fx, "2026-11-05T09:00:00Z", "2026-11-05T10:00:00Z", 5, 5);
}

/* The real CLI's report of the file. (transfer full) */
static char *
report (Fixture *fx, const char *month, const char *format, const char *lang)
{
  const char *argv[] = { CLI_PATH, "audit", "--db", fx->path, "report", "--month", month,
                         "--format", format, "--lang", lang, NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;
  char *out = NULL;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                     &status, &error))
    fail_msg ("%s: %s", CLI_PATH, error->message);
  if (!g_spawn_check_wait_status (status, &error))
    fail_msg ("report %s %s: %s (%s)", month, format, error->message, err);
  return out;
}

static void
assert_has (const char *text, const char *part)
{
  if (strstr (text, part) == NULL)
    fail_msg ("missing \"%s\" in:\n%s", part, text);
}

static void
assert_lacks (const char *text, const char *part)
{
  if (strstr (text, part) != NULL)
    fail_msg ("unexpected \"%s\" in:\n%s", part, text);
}

static void
test_report_text (void **state)
{
  Fixture *fx = *state;
  g_autofree char *en = NULL, *sv = NULL, *section = NULL;

  write_month (fx);
  en = report (fx, "2026-10", "text", "en");
  /* Counted at the top, before the first table. */
  assert_true (strstr (en, "Periods the audit could not be written: 5\n")
               < strstr (en, "Per day"));
  section = g_strdup (strstr (en, "\nPeriods the audit could not be written\n"));
  assert_non_null (section);
  *strstr (section, "\nRefusals by code") = '\0';
  /* Local times; the one across the month's start in full, as outages. */
  assert_string_equal (section,
                       "\nPeriods the audit could not be written\n"
                       "  2026-09-30 23:30 .. 2026-10-01 00:20  3000 s  Refused unavailable 4"
                       "  Refusals without their row 2\n"
                       "  2026-10-10 10:00 .. 2026-10-10 10:07  425 s  Refused unavailable 7"
                       "  Refusals without their row 1\n"
                       "  2026-10-12 11:00  unreadable audit_resumed row: \"the audit could"
                       " not be written from 2026-10-12T08:00:00Z for -5 s: 3 request(s)?"
                       "<script>alert(1)</script> =HYPERLINK(\"x\")?[2J\"\n"
                       "  2026-10-14 12:00  unreadable audit_resumed row: \"the audit could"
                       " not be written from 2026-10-20T00:00:00Z for 60 s: 1 request(s)"
                       " refused unavailable, 0 refusal(s) answered without their row;"
                       " delivery paused\"\n"
                       "  2026-10-31 23:30 .. 2026-11-01 00:40  4200 s  Refused unavailable 9"
                       "  Refusals without their row 0\n");
  sv = report (fx, "2026-10", "text", "sv");
  assert_has (sv, "Perioder då granskningsloggen inte kunde skrivas: 5\n");
  assert_has (sv, "  2026-10-10 10:00 .. 2026-10-10 10:07  425 s  Avvisade som unavailable 7"
              "  Avvisningar utan egen rad 1\n");
  assert_has (sv, "oläslig audit_resumed-rad: \"the audit");
}

static void
test_report_html (void **state)
{
  Fixture *fx = *state;
  g_autofree char *html = NULL;

  write_month (fx);
  html = report (fx, "2026-10", "html", "en");
  assert_has (html, "<th>Outages (gaps between seals)</th>"
              "<th>Periods the audit could not be written</th></tr>\n"
              "<tr><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td>"
              "<td>0</td><td>5</td></tr>");
  assert_has (html, "<h2>Periods the audit could not be written</h2>\n<table>\n"
              "<tr><th>From</th><th>To</th><th>Seconds</th><th>Refused unavailable</th>"
              "<th>Refusals without their row</th></tr>\n"
              "<tr><td>2026-09-30 23:30</td><td>2026-10-01 00:20</td><td>3000</td>"
              "<td>4</td><td>2</td></tr>\n"
              "<tr><td>2026-10-10 10:00</td><td>2026-10-10 10:07</td><td>425</td>"
              "<td>7</td><td>1</td></tr>\n"
              "<tr><td>-</td><td>2026-10-12 11:00</td><td colspan=\"3\" class=\"bad\">"
              "unreadable audit_resumed row: the audit could not be written from"
              " 2026-10-12T08:00:00Z for -5 s: 3 request(s)?&lt;script&gt;alert(1)"
              "&lt;/script&gt; =HYPERLINK(&quot;x&quot;)?[2J</td></tr>\n");
  assert_has (html, "<tr><td>2026-10-31 23:30</td><td>2026-11-01 00:40</td><td>4200</td>"
              "<td>9</td><td>0</td></tr>\n</table>\n");
  assert_lacks (html, "<script");
  assert_lacks (html, "2026-09-15");
  assert_lacks (html, "2026-11-05");
}

static void
test_report_csv (void **state)
{
  Fixture *fx = *state;
  g_autofree char *csv = NULL;
  g_auto (GStrv) lines = NULL;
  guint n = 0, periods = 0;

  write_month (fx);
  csv = report (fx, "2026-10", "csv", "en");
  assert_true (g_str_has_prefix (csv, "\"kind\",\"key\",\"invites\",\"recipients\",\"sent\","
                                 "\"failed\",\"expired\",\"refused\",\"audit_unwritable\","
                                 "\"from\",\"to\",\"seconds\",\"refused_unavailable\","
                                 "\"refusals_without_row\",\"note\"\r\n"));
  assert_has (csv, "\r\n\"audit_unwritable\",\"2026-09-30 23:30\",\"\",\"\",\"\",\"\",\"\","
              "\"\",\"1\",\"2026-09-30 23:30\",\"2026-10-01 00:20\",\"3000\",\"4\",\"2\","
              "\"\"\r\n");
  assert_has (csv, "\r\n\"audit_unwritable\",\"2026-10-10 10:00\",\"\",\"\",\"\",\"\",\"\","
              "\"\",\"1\",\"2026-10-10 10:00\",\"2026-10-10 10:07\",\"425\",\"7\",\"1\","
              "\"\"\r\n");
  /* Unreadable: a note that starts with a word, never with '='. */
  assert_has (csv, "\r\n\"audit_unwritable\",\"2026-10-12 11:00\",\"\",\"\",\"\",\"\",\"\","
              "\"\",\"1\",\"\",\"2026-10-12 11:00\",\"\",\"\",\"\",\"unreadable: the audit"
              " could not be written from 2026-10-12T08:00:00Z for -5 s: 3 request(s)?"
              "<script>alert(1)</script> =HYPERLINK(\"\"x\"\")?[2J\"\r\n");
  assert_has (csv, "\r\n\"total\",\"2026-10\",\"0\",\"0\",\"0\",\"0\",\"0\",\"0\",\"5\","
              "\"\",\"\",\"\",\"\",\"\",\"\"\r\n");
  /* One table: every line has its 15 fields (no line break from the
   * file's text), 31 days, 5 periods, the total. */
  lines = g_strsplit (csv, "\r\n", -1);
  for (; lines[n] != NULL && lines[n][0] != '\0'; n++)
    {
      g_auto (GStrv) f = g_strsplit (lines[n], "\",\"", -1);
      assert_int_equal (g_strv_length (f), 15);
      periods += g_str_has_prefix (lines[n], "\"audit_unwritable\",");
    }
  assert_int_equal (n, 1 + 31 + 5 + 1);
  assert_int_equal (periods, 5);
}

/* A unit a request may carry ('-' and '+' pass the free-text rule)
 * that a spreadsheet would compute: the CSV field starts with ' instead. */
static void
test_report_csv_no_formula (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  g_autofree char *csv = NULL;
  AuditRecord r = { .event = AUDIT_ACCEPTED, .peer_uid = 1000,
                    .invite_id = "1k8ug5da50rafse6lnoo", .org_unit = "-2+3",
                    .booking = "+A1" };
  Audit *a = audit_open (fx->path, &error);

  if (a == NULL)
    fail_msg ("open: %s", error->message);
  audit_set_clock (a, fixed_clock, fx);
  fx->now_ms = utc_s ("2026-10-05T09:00:00Z") * 1000;
  if (!audit_append_batch (a, &r, 1, &error))
    fail_msg ("append: %s", error->message);
  audit_close (a);
  csv = report (fx, "2026-10", "csv", "en");
  assert_has (csv, "\r\n\"unit\",\"'-2+3\",\"1\",");
  assert_lacks (csv, "\"-2+3\"");
}

static void
test_report_month_without (void **state)
{
  Fixture *fx = *state;
  g_autofree char *text = NULL, *html = NULL, *csv = NULL;

  write_month (fx);
  text = report (fx, "2026-08", "text", "en");
  assert_has (text, "Periods the audit could not be written: 0\n");
  assert_has (text, "\nPeriods the audit could not be written\n  (none)\n");
  html = report (fx, "2026-08", "html", "sv");
  assert_has (html, "<h2>Perioder då granskningsloggen inte kunde skrivas</h2>\n"
              "<p>inga</p>\n");
  assert_has (html, "<td>0</td><td>0</td></tr>\n</table>");
  csv = report (fx, "2026-08", "csv", "en");
  assert_lacks (csv, "\"audit_unwritable\",\"2026");
  assert_has (csv, "\"total\",\"2026-08\",\"0\",\"0\",\"0\",\"0\",\"0\",\"0\",\"0\",");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_gap_round_trip),
    cmocka_unit_test (test_gap_words_as_before),
    cmocka_unit_test (test_gap_parse_is_strict),
    cmocka_unit_test_setup_teardown (test_report_text, setup, teardown),
    cmocka_unit_test_setup_teardown (test_report_html, setup, teardown),
    cmocka_unit_test_setup_teardown (test_report_csv, setup, teardown),
    cmocka_unit_test_setup_teardown (test_report_csv_no_formula, setup, teardown),
    cmocka_unit_test_setup_teardown (test_report_month_without, setup, teardown),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
