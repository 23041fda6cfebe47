/*
 * test_builder.c - the build pool: jobs run on its own threads, all of
 * them, and a drain returns only once every job pushed before it ran.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>

#include "builder.h"

typedef struct {
  GMutex lock;
  GThread *caller;
  guint ran;
  guint on_caller;          /* jobs that ran on the pushing thread */
  guint running, most;      /* jobs running now, and at most at once */
  GHashTable *threads;      /* GThread* seen */
} Tally;

static void
count_job (gpointer job, gpointer data)
{
  Tally *t = data;
  guint *sleep_us = job;

  g_mutex_lock (&t->lock);
  t->running++;
  t->most = MAX (t->most, t->running);
  g_mutex_unlock (&t->lock);
  g_usleep (*sleep_us);
  g_mutex_lock (&t->lock);
  t->running--;
  t->ran++;
  t->on_caller += g_thread_self () == t->caller;
  g_hash_table_add (t->threads, g_thread_self ());
  g_mutex_unlock (&t->lock);
  g_free (job);
}

static void
tally_init (Tally *t)
{
  g_mutex_init (&t->lock);
  t->caller = g_thread_self ();
  t->ran = t->on_caller = t->running = t->most = 0;
  t->threads = g_hash_table_new (NULL, NULL);
}

static void
tally_clear (Tally *t)
{
  g_hash_table_unref (t->threads);
  g_mutex_clear (&t->lock);
}

static void
push_sleeper (Builder *b, guint us)
{
  guint *job = g_new (guint, 1);

  *job = us;
  builder_push (b, job);
}

static void
test_drain_waits_for_every_job (void **state)
{
  Tally t;
  Builder *b;

  (void) state;
  tally_init (&t);
  b = builder_new (2, count_job, &t);
  for (guint i = 0; i < 40; i++)
    push_sleeper (b, 2000);
  /* 40 jobs of 2 ms on 2 threads: far from done when the push returns. */
  assert_true (builder_pending (b) > 0);
  builder_drain (b);
  assert_int_equal (builder_pending (b), 0);
  g_mutex_lock (&t.lock);
  assert_int_equal (t.ran, 40);
  assert_int_equal (t.on_caller, 0);
  g_mutex_unlock (&t.lock);
  /* Usable again after a drain, as after a reload. */
  push_sleeper (b, 0);
  builder_drain (b);
  assert_int_equal (t.ran, 41);
  builder_free (b);
  tally_clear (&t);
}

static void
test_jobs_run_in_parallel (void **state)
{
  Tally t;
  Builder *b;

  (void) state;
  tally_init (&t);
  b = builder_new (2, count_job, &t);
  assert_int_equal (builder_threads (b), 2);
  /* Jobs of 50 ms, queued at once: the second thread takes one while
   * the first sleeps, so two run together, never three. */
  for (guint i = 0; i < 8; i++)
    push_sleeper (b, 50000);
  builder_drain (b);
  assert_int_equal (t.most, 2);
  assert_int_equal (g_hash_table_size (t.threads), 2);
  builder_free (b);
  tally_clear (&t);
}

static void
test_free_runs_what_was_pushed (void **state)
{
  Tally t;
  Builder *b;

  (void) state;
  tally_init (&t);
  b = builder_new (1, count_job, &t);
  for (guint i = 0; i < 10; i++)
    push_sleeper (b, 1000);
  builder_free (b);
  assert_int_equal (t.ran, 10);
  tally_clear (&t);
  builder_free (NULL);
  builder_drain (NULL);
}

static void
test_thread_count_follows_the_cpus (void **state)
{
  Tally t;
  Builder *b;
  guint cpus = g_get_num_processors ();

  (void) state;
  tally_init (&t);
  b = builder_new (0, count_job, &t);
  assert_int_equal (builder_threads (b), CLAMP (cpus, 1, BUILDER_THREADS_MAX));
  builder_free (b);
  b = builder_new (99, count_job, &t);
  assert_int_equal (builder_threads (b), BUILDER_THREADS_MAX);
  builder_free (b);
  tally_clear (&t);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_drain_waits_for_every_job),
    cmocka_unit_test (test_jobs_run_in_parallel),
    cmocka_unit_test (test_free_runs_what_was_pushed),
    cmocka_unit_test (test_thread_count_follows_the_cpus),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
