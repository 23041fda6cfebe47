/*
 * test_ratelimit.c - the per-uid windows of ratelimit.c with a clock
 * given by the test: invites per minute, recipients per day, windows
 * that slide, uids apart, what a failed store gives back; and that
 * rate_limited maps to exit 75 (try again later).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "exitcodes.h"
#include "ratelimit.h"

#define MIN_MS (60 * 1000)
#define DAY_MS (24 * 3600 * 1000LL)
#define T0 1796290000000LL

typedef struct {
  const char *name;
  uid_t uid;
  guint n;
  gint64 at;          /* ms after T0 */
  gboolean ok;
} Step;

static void
run (const LimitsConfig *cfg, const Step *steps, gsize n)
{
  g_autoptr (Limits) l = limits_new ();

  for (gsize i = 0; i < n; i++)
    {
      Refusal why;
      gboolean ok;

      refusal_clear (&why);
      ok = limits_take (l, cfg, steps[i].uid, steps[i].n, T0 + steps[i].at, &why);
      if (ok != steps[i].ok)
        fail_msg ("step '%s': %s", steps[i].name, ok ? "taken" : why.message);
      if (!ok && why.code != REFUSAL_RATE_LIMITED)
        fail_msg ("step '%s': code %d", steps[i].name, why.code);
    }
}

static void
test_per_minute (void **state)
{
  static const LimitsConfig cfg = { 3, 0 };
  static const Step steps[] = {
    { "1st", 1000, 1, 0, TRUE },
    { "2nd", 1000, 1, 100, TRUE },
    { "3rd", 1000, 1, 200, TRUE },
    { "4th in the minute", 1000, 1, 300, FALSE },
    { "another uid", 1001, 1, 300, TRUE },
    { "still in the minute", 1000, 1, MIN_MS - 1, FALSE },
    { "the 1st left the window", 1000, 1, MIN_MS + 1, TRUE },
    { "full again", 1000, 1, MIN_MS + 2, FALSE },
  };

  (void) state;
  run (&cfg, steps, G_N_ELEMENTS (steps));
}

static void
test_per_day (void **state)
{
  static const LimitsConfig cfg = { 0, 10 };
  static const Step steps[] = {
    { "4", 1000, 4, 0, TRUE },
    { "4 more", 1000, 4, 1000, TRUE },
    { "3 would make 11", 1000, 3, 2000, FALSE },
    { "2 make 10", 1000, 2, 3000, TRUE },
    { "1 more is over", 1000, 1, 4000, FALSE },
    { "another uid", 1001, 10, 4000, TRUE },
    { "23 h later still over", 1000, 1, 23 * 3600 * 1000LL, FALSE },
    { "a day after the first 4", 1000, 4, DAY_MS + 1, TRUE },
    { "one more", 1000, 1, DAY_MS + 2, FALSE },
    { "one bigger than the limit", 1002, 11, 0, FALSE },
  };

  (void) state;
  run (&cfg, steps, G_N_ELEMENTS (steps));
}

static void
test_off (void **state)
{
  static const LimitsConfig cfg = { 0, 0 };
  g_autoptr (Limits) l = limits_new ();
  Refusal why;

  (void) state;
  for (int i = 0; i < 10000; i++)
    assert_true (limits_take (l, &cfg, 1000, 100, T0, &why));
}

/* An invite that was not stored after all does not count. */
static void
test_give_back (void **state)
{
  static const LimitsConfig cfg = { 2, 5 };
  g_autoptr (Limits) l = limits_new ();
  Refusal why;

  (void) state;
  assert_true (limits_take (l, &cfg, 1000, 3, T0, &why));
  assert_true (limits_take (l, &cfg, 1000, 2, T0 + 1, &why));
  assert_false (limits_take (l, &cfg, 1000, 1, T0 + 2, &why));
  limits_give_back (l, 1000, 2, T0 + 1);
  assert_true (limits_take (l, &cfg, 1000, 2, T0 + 3, &why));
  assert_false (limits_take (l, &cfg, 1000, 1, T0 + 4, &why));
  assert_string_equal (refusal_code_name (why.code), "rate_limited");
}

static void
test_exit_code (void **state)
{
  (void) state;
  assert_int_equal (exit_code_for_refusal (REFUSAL_RATE_LIMITED), 75);
  assert_int_equal (EXIT_TEMPFAIL, 75);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_per_minute),
    cmocka_unit_test (test_per_day),
    cmocka_unit_test (test_off),
    cmocka_unit_test (test_give_back),
    cmocka_unit_test (test_exit_code),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
