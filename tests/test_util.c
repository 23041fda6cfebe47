/*
 * test_util.c - the rules several modules share, each written once:
 * the retry policy from the configuration, the envelope address check,
 * SHA-256 in hex, writing a whole buffer and replacing a file durably.
 * Table-driven: one row per case, the row's index in every failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "config.h"
#include "envelope.h"
#include "retry.h"

/* ---- the retry policy from [retry] ---- */

static void
test_retry_policy_from_config (void **state)
{
  static const struct { guint first, max, age; gint64 delay3; } cases[] = {
    { 60, 900, 86400, 240 },
    { 1, 1, 1, 1 },
    { 30, 60, 3600, 60 },
    { 600, 7200, 604800, 2400 },
  };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (Config) cfg = config_defaults ();
      RetryPolicy p;

      cfg->retry_first_delay = cases[i].first;
      cfg->retry_max_delay = cases[i].max;
      cfg->retry_max_age = cases[i].age;
      p = retry_policy_from_config (cfg);
      if (p.first_delay != cases[i].first || p.max_delay != cases[i].max
          || p.max_age != cases[i].age || retry_delay (&p, 3) != cases[i].delay3)
        fail_msg ("case %zu: policy %u/%u/%u, third delay %" G_GINT64_FORMAT,
                  i, p.first_delay, p.max_delay, p.max_age, retry_delay (&p, 3));
    }
}

/* ---- what may go verbatim into an SMTP command ---- */

static void
test_envelope_safe (void **state)
{
  char at_max[ADDRESS_MAX + 1], over_max[ADDRESS_MAX + 2];
  static const struct {
    const char *s;
    gboolean mailbox, reverse, word;
  } cases[] = {
    { "anna@example.org", TRUE, TRUE, TRUE },
    { "a+tok3n@example.com", TRUE, TRUE, TRUE },
    { "\"a@b\"@example.org", TRUE, TRUE, TRUE },   /* last '@' splits */
    { "", FALSE, TRUE, FALSE },                    /* the null sender */
    { "relay.example.org", FALSE, FALSE, TRUE },   /* a host, no '@' */
    { "@example.org", FALSE, FALSE, TRUE },
    { "anna@", FALSE, FALSE, TRUE },
    { "@", FALSE, FALSE, TRUE },
    { "anna@example.org>\r\nDATA", FALSE, FALSE, FALSE },
    { "anna@example.org\r\nRSET", FALSE, FALSE, FALSE },
    { "anna@example.org\n", FALSE, FALSE, FALSE },
    { "an na@example.org", FALSE, FALSE, FALSE },
    { "<anna@example.org", FALSE, FALSE, FALSE },
    { "anna@example.org>", FALSE, FALSE, FALSE },
    { "anna\t@example.org", FALSE, FALSE, FALSE },
    { "anna\x7f@example.org", FALSE, FALSE, FALSE },
    { "ann\xc3\xa4@example.org", FALSE, FALSE, FALSE },  /* UTF-8: not on the wire */
    { "anna@ex\xe4mple.org", FALSE, FALSE, FALSE },
  };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gboolean m = envelope_safe (cases[i].s, ENVELOPE_MAILBOX);
      gboolean r = envelope_safe (cases[i].s, ENVELOPE_REVERSE_PATH);
      gboolean w = envelope_safe (cases[i].s, ENVELOPE_WORD);
      if (m != cases[i].mailbox || r != cases[i].reverse || w != cases[i].word)
        fail_msg ("case %zu (%s): mailbox %d reverse %d word %d", i,
                  cases[i].s, m, r, w);
    }
  assert_false (envelope_safe (NULL, ENVELOPE_MAILBOX));
  assert_false (envelope_safe (NULL, ENVELOPE_REVERSE_PATH));
  assert_false (envelope_safe (NULL, ENVELOPE_WORD));
  /* The length limit: ADDRESS_MAX bytes pass, one more does not. */
  memset (at_max, 'a', ADDRESS_MAX);
  memcpy (at_max + ADDRESS_MAX - 12, "@example.org", 12);
  at_max[ADDRESS_MAX] = '\0';
  assert_true (envelope_safe (at_max, ENVELOPE_MAILBOX));
  memset (over_max, 'a', ADDRESS_MAX + 1);
  memcpy (over_max + ADDRESS_MAX + 1 - 12, "@example.org", 12);
  over_max[ADDRESS_MAX + 1] = '\0';
  assert_false (envelope_safe (over_max, ENVELOPE_MAILBOX));
  assert_false (envelope_safe (over_max, ENVELOPE_WORD));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_retry_policy_from_config),
    cmocka_unit_test (test_envelope_safe),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
