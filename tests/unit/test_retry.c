/* test_retry.c - the backoff policy, table-driven. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "retry.h"

static const RetryPolicy policy = { 60, 900, 86400 };

static void
test_delay_doubles_to_cap (void **state)
{
  static const struct { guint attempts; gint64 delay; } cases[] = {
    { 1, 60 }, { 2, 120 }, { 3, 240 }, { 4, 480 }, { 5, 900 }, { 6, 900 },
    { 40, 900 }, { 1000, 900 },
  };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gint64 got = retry_delay (&policy, cases[i].attempts);
      if (got != cases[i].delay)
        fail_msg ("case %zu: attempts %u gave %" G_GINT64_FORMAT " want %"
                  G_GINT64_FORMAT, i, cases[i].attempts, got, cases[i].delay);
    }
}

static void
test_expires_is_earlier_of_age_and_meeting (void **state)
{
  (void) state;
  assert_int_equal (retry_expires (&policy, 1000, 0), 1000 + 86400);
  assert_int_equal (retry_expires (&policy, 1000, 5000), 5000);
  assert_int_equal (retry_expires (&policy, 1000, 1000 + 90000), 1000 + 86400);
}

static void
test_next_try_stops_at_expiry (void **state)
{
  (void) state;
  assert_int_equal (retry_next_try (&policy, 1, 100, 1000), 160);
  assert_int_equal (retry_next_try (&policy, 1, 100, 160), -1);
  assert_int_equal (retry_next_try (&policy, 5, 100, 100000), 1000);
  assert_int_equal (retry_next_try (&policy, 5, 100, 999), -1);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_delay_doubles_to_cap),
    cmocka_unit_test (test_expires_is_earlier_of_age_and_meeting),
    cmocka_unit_test (test_next_try_stops_at_expiry),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
