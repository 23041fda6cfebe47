/*
 * test_calendar.c - calendar_ics and calendar_parse.
 *
 * Checks the entry a recipient's calendar reads: METHOD:PUBLISH, the
 * wall-clock times in the organisation's zone with a VTIMEZONE whose
 * offset is right in winter and in summer, CRLF lines of at most 75
 * octets, no ATTENDEE and no address but the organisation's own; that
 * hostile text (CR/LF, ';', ',', '\') cannot add a property; that a
 * cancellation keeps the UID with SEQUENCE one higher; and that what
 * is written reads back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <glib.h>

#include "calendar.h"

#define ORG_ADDR "evisit@example.org"

static void
assert_has (const char *hay, const char *needle)
{
  if (strstr (hay, needle) == NULL)
    fail_msg ("\"%s\" not found in:\n%s", needle, hay);
}

static guint
count_of (const char *hay, const char *needle)
{
  guint n = 0;
  for (const char *p = strstr (hay, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

static void
assert_lacks (const char *hay, const char *needle)
{
  if (strstr (hay, needle) != NULL)
    fail_msg ("\"%s\" found in:\n%s", needle, hay);
}

/* Every line ends CRLF, none over 75 octets, nothing but CRLF as a line
 * end; returns the unfolded lines. */
static GStrv
lines_of (const char *ics)
{
  g_autoptr(GString) unfolded = g_string_new (NULL);
  const char *p = ics;

  assert_true (g_str_has_suffix (ics, "\r\n"));
  while (*p != '\0')
    {
      const char *crlf = strstr (p, "\r\n");
      assert_non_null (crlf);
      assert_true (crlf - p <= 75);
      g_autofree char *line = g_strndup (p, (gsize) (crlf - p));
      assert_null (strchr (line, '\r'));
      assert_null (strchr (line, '\n'));
      if (line[0] == ' ')
        g_string_append (unfolded, line + 1);
      else
        g_string_append_printf (unfolded, "%s%s", unfolded->len ? "\n" : "", line);
      p = crlf + 2;
    }
  return g_strsplit (unfolded->str, "\n", -1);
}

static char *
make (const char *start, const char *end, gboolean cancel, const char *summary,
      const char *description)
{
  g_autoptr(GDateTime) s = g_date_time_new_from_iso8601 (start, NULL);
  g_autoptr(GDateTime) e = g_date_time_new_from_iso8601 (end, NULL);
  g_autoptr(GDateTime) stamp = g_date_time_new_from_iso8601 ("2026-11-30T08:00:00Z", NULL);
  CalendarEvent ev = {
    .uid = "0123456789abcdef0123456789abcdef@example.org",
    .sequence = cancel ? 1 : 0,
    .cancel = cancel,
    .start = s, .end = e, .stamp = stamp,
    .tz_name = NULL,
    .summary = summary,
    .description = description,
    .link = "https://meet.example.org/j/4711?pin=1234",
    .organizer_name = "Region \"Exempel\"",
    .organizer_addr = ORG_ADDR,
    .lang = "sv",
  };
  assert_string_equal (calendar_method (&ev), cancel ? "CANCEL" : "PUBLISH");
  return calendar_ics (&ev);
}

static void
test_winter (void **state)
{
  (void) state;
  g_autofree char *ics = make ("2026-12-04T10:00:00Z", "2026-12-04T10:30:00Z", FALSE,
                               "Inbjudan till videomöte", "Hej!\nAnslut här.");
  g_auto(GStrv) lines = lines_of (ics);
  g_autofree char *joined = g_strjoinv ("\n", lines);

  assert_string_equal (lines[0], "BEGIN:VCALENDAR");
  assert_has (joined, "\nMETHOD:PUBLISH\n");
  assert_has (joined, "\nTZID:Europe/Stockholm\nBEGIN:STANDARD\nDTSTART:20261025T030000\n"
                      "TZOFFSETFROM:+0200\nTZOFFSETTO:+0100\n");
  assert_has (joined, "\nDTSTART;TZID=Europe/Stockholm:20261204T110000\n");
  assert_has (joined, "\nDTEND;TZID=Europe/Stockholm:20261204T113000\n");
  assert_has (joined, "\nDTSTAMP:20261130T080000Z\n");
  assert_has (joined, "\nSEQUENCE:0\n");
  assert_has (joined, "\nSTATUS:CONFIRMED\n");
  assert_has (joined, "\nDESCRIPTION;LANGUAGE=sv:Hej!\\nAnslut här.\n");
  assert_has (joined, "\nURL:https://meet.example.org/j/4711?pin=1234\n");
  assert_has (joined, "\nORGANIZER;CN=\"Region Exempel\":mailto:" ORG_ADDR "\n");
  assert_lacks (joined, "ATTENDEE");
  /* the organisation's own address is the only one */
  assert_int_equal (count_of (joined, "@"), 2);   /* UID and ORGANIZER */
}

static void
test_summer (void **state)
{
  (void) state;
  g_autofree char *ics = make ("2027-06-17T10:00:00Z", "2027-06-17T11:15:00Z", FALSE,
                               "Möte", NULL);
  g_auto(GStrv) lines = lines_of (ics);
  g_autofree char *joined = g_strjoinv ("\n", lines);

  assert_has (joined, "BEGIN:DAYLIGHT\nDTSTART:20270328T020000\nTZOFFSETFROM:+0100\n"
                      "TZOFFSETTO:+0200\n");
  assert_has (joined, "\nDTSTART;TZID=Europe/Stockholm:20270617T120000\n");
  assert_has (joined, "\nDTEND;TZID=Europe/Stockholm:20270617T131500\n");
}

/* Text that tries to end the value and start a property stays text. */
static void
test_hostile_text (void **state)
{
  (void) state;
  g_autofree char *ics = make ("2026-12-04T10:00:00Z", "2026-12-04T10:30:00Z", FALSE,
                               "x\r\nATTENDEE:mailto:evil@example.com",
                               "a;b,c\\d\r\nEND:VEVENT\nBEGIN:VALARM");
  g_auto(GStrv) lines = lines_of (ics);

  for (char **l = lines; *l != NULL; l++)
    {
      assert_false (g_str_has_prefix (*l, "ATTENDEE"));
      assert_false (g_str_has_prefix (*l, "BEGIN:VALARM"));
    }
  g_autofree char *joined = g_strjoinv ("\n", lines);
  assert_has (joined, "\nSUMMARY;LANGUAGE=sv:x\\nATTENDEE:mailto:evil@example.com\n");
  assert_has (joined, "\nDESCRIPTION;LANGUAGE=sv:a\\;b\\,c\\\\d\\nEND:VEVENT\\nBEGIN:VALARM\n");
  assert_int_equal (count_of (joined, "END:VEVENT\n"), 1);
}

/* Long UTF-8 text folds at 75 octets without splitting a character. */
static void
test_folding (void **state)
{
  (void) state;
  g_autoptr(GString) long_text = g_string_new (NULL);
  for (int i = 0; i < 100; i++)
    g_string_append (long_text, "åäö ");
  g_autofree char *ics = make ("2026-12-04T10:00:00Z", "2026-12-04T10:30:00Z", FALSE,
                               "s", long_text->str);
  g_auto(GStrv) lines = lines_of (ics);   /* asserts 75 octets */

  assert_true (g_utf8_validate (ics, -1, NULL));
  for (char **l = lines; *l != NULL; l++)
    assert_true (g_utf8_validate (*l, -1, NULL));
}

/* What a cancellation needs reads back from what was sent. */
static void
test_parse_and_cancel (void **state)
{
  (void) state;
  g_autofree char *ics = make ("2026-12-04T10:00:00Z", "2026-12-04T10:45:00Z", FALSE,
                               "Inbjudan, Barn; klinik", NULL);
  g_autofree char *uid = NULL, *summary = NULL;
  g_autoptr(GDateTime) s = NULL, e = NULL;
  guint seq = 99;

  assert_true (calendar_parse (ics, &uid, &seq, &s, &e, &summary));
  assert_string_equal (uid, "0123456789abcdef0123456789abcdef@example.org");
  assert_int_equal (seq, 0);
  assert_int_equal (g_date_time_to_unix (s), 1796378400);   /* 2026-12-04T10:00:00Z */
  assert_int_equal (g_date_time_to_unix (e) - g_date_time_to_unix (s), 45 * 60);
  assert_string_equal (summary, "Inbjudan, Barn; klinik");

  g_autofree char *cancel = make ("2026-12-04T10:00:00Z", "2026-12-04T10:45:00Z", TRUE,
                                  summary, NULL);
  g_auto(GStrv) lines = lines_of (cancel);
  g_autofree char *joined = g_strjoinv ("\n", lines);
  assert_has (joined, "\nMETHOD:CANCEL\n");
  assert_has (joined, "\nSTATUS:CANCELLED\n");
  assert_has (joined, "\nSEQUENCE:1\n");
  assert_has (joined, "\nUID:0123456789abcdef0123456789abcdef@example.org\n");
}

static void
test_parse_refuses (void **state)
{
  (void) state;
  static const char *const bad[] = {
    "",
    "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
    "BEGIN:VEVENT\r\nUID:a@b\r\nDTSTART:20261204T100000Z\r\nEND:VEVENT\r\n",
    "BEGIN:VEVENT\r\nUID:a@b\r\nDTSTART:2026\r\nDTEND:20261204T100000Z\r\nEND:VEVENT\r\n",
    "BEGIN:VEVENT\r\nUID:a b\r\nDTSTART:20261204T100000Z\r\nDTEND:20261204T100000Z\r\n"
    "END:VEVENT\r\n",
    "BEGIN:VEVENT\r\nUID:a@b\r\nDTSTART;TZID=Mars/Base:20261204T100000\r\n"
    "DTEND:20261204T100000Z\r\nEND:VEVENT\r\n",
    "BEGIN:VEVENT\r\nUID:a@b\r\nSEQUENCE:-1\r\nDTSTART:20261204T100000Z\r\n"
    "DTEND:20261204T100000Z\r\nEND:VEVENT\r\n",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *uid = NULL, *summary = NULL;
      g_autoptr(GDateTime) s = NULL, e = NULL;
      guint seq = 0;
      if (calendar_parse (bad[i], &uid, &seq, &s, &e, &summary))
        fail_msg ("case %" G_GSIZE_FORMAT " was accepted", i);
    }
}

static void
test_new_uid (void **state)
{
  (void) state;
  g_autofree char *a = calendar_new_uid ("example.org");
  g_autofree char *b = calendar_new_uid ("example.org");

  assert_int_equal (strlen (a), 32 + strlen ("@example.org"));
  assert_string_not_equal (a, b);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_winter),
    cmocka_unit_test (test_summer),
    cmocka_unit_test (test_hostile_text),
    cmocka_unit_test (test_folding),
    cmocka_unit_test (test_parse_and_cancel),
    cmocka_unit_test (test_parse_refuses),
    cmocka_unit_test (test_new_uid),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
