/*
 * test_health.c - `invitemail health` judged from facts: every check in
 * each of its states (health.c), and the delivery workers' liveness
 * that the watchdog and the delivery check rest on (delivery_alive,
 * with a real worker on a real queue and the file transport).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "audit.h"
#include "config.h"
#include "delivery.h"
#include "health.h"
#include "testutil.h"

#define NOW 1796289300

/* A healthy service: SMTP, sealed a minute ago, plenty of disk. */
static HealthFacts
healthy (void)
{
  HealthFacts f = { 0 };

  f.now = NOW;
  f.queue_read = TRUE;
  f.queue.pending = 3;
  f.queue.sent_hour = 40;
  f.queue.last_sent = NOW - 60;
  f.sealing = TRUE;
  f.last_seal = NOW - 60;
  f.disk_read = TRUE;
  f.disk_free_pct = 50;
  f.disk_free_bytes = (guint64) 20 << 30;
  f.delivery_alive = TRUE;
  return f;
}

static Config *
smtp_config (void)
{
  Config *cfg = config_defaults ();
  cfg->transport = TRANSPORT_SMTP;
  return cfg;
}

/* The level of one check (and the overall one under "health"). */
static char *
level_of (const char *answer, const char *check)
{
  g_auto (GStrv) lines = g_strsplit (answer, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) f = NULL;
      if (strcmp (check, "health") == 0 && g_str_has_prefix (lines[i], "health="))
        return g_strdup (lines[i] + 7);
      if (!g_str_has_prefix (lines[i], "check="))
        continue;
      f = g_strsplit (lines[i] + 6, " ", 4);
      if (g_strv_length (f) == 4 && strcmp (f[0], check) == 0)
        return g_strdup (f[1]);
    }
  return NULL;
}

static void
expect (const Config *cfg, const HealthFacts *f, const char *check, const char *level,
        HealthLevel overall)
{
  g_autoptr (GString) out = g_string_new (NULL);
  HealthLevel got = health_report (cfg, f, out);
  g_autofree char *l = level_of (out->str, check);
  g_autofree char *h = level_of (out->str, "health");

  if (g_strcmp0 (l, level) != 0 || got != overall
      || g_strcmp0 (h, health_level_name (overall)) != 0)
    fail_msg ("%s: want %s (overall %s), answer:\n%s", check, level,
              health_level_name (overall), out->str);
}

static void
test_all_ok (void **state)
{
  g_autoptr (Config) cfg = smtp_config ();
  HealthFacts f = healthy ();
  const char *checks[] = { "queue", "deferred", "failures", "relay", "seal", "disk",
                           "delivery", "audit" };

  for (guint i = 0; i < G_N_ELEMENTS (checks); i++)
    expect (cfg, &f, checks[i], "OK", HEALTH_OK);
}

static void
test_queue_depth (void **state)
{
  g_autoptr (Config) cfg = smtp_config ();
  HealthFacts f = healthy ();

  f.queue.pending = 100;
  expect (cfg, &f, "queue", "WARNING", HEALTH_WARNING);
  f.queue.pending = 1000;
  expect (cfg, &f, "queue", "CRITICAL", HEALTH_CRITICAL);
  f.queue_read = FALSE;
  expect (cfg, &f, "queue", "CRITICAL", HEALTH_CRITICAL);
}

static void
test_oldest_deferred (void **state)
{
  g_autoptr (Config) cfg = smtp_config ();
  HealthFacts f = healthy ();

  /* The relay took one a minute ago: only the deferred age speaks. */
  f.queue.last_sent = NOW - 10;
  f.queue.oldest_deferred_created = NOW - 1800;
  expect (cfg, &f, "deferred", "WARNING", HEALTH_WARNING);
  f.queue.oldest_deferred_created = NOW - 4 * 3600;
  expect (cfg, &f, "deferred", "CRITICAL", HEALTH_CRITICAL);
}

static void
test_failures_last_hour (void **state)
{
  g_autoptr (Config) cfg = smtp_config ();
  HealthFacts f = healthy ();

  f.queue.failed_hour = 2;
  f.queue.bounced_hour = 3;
  expect (cfg, &f, "failures", "WARNING", HEALTH_WARNING);
  f.queue.bounced_hour = 48;
  expect (cfg, &f, "failures", "CRITICAL", HEALTH_CRITICAL);
}

static void
test_relay (void **state)
{
  g_autoptr (Config) cfg = smtp_config ();
  HealthFacts f = healthy ();

  /* Idle for a day with nothing deferred: fine. */
  f.queue.last_sent = NOW - 86400;
  expect (cfg, &f, "relay", "OK", HEALTH_OK);
  /* Deferred for 30 min and nothing taken since: warning; 4 h: critical.
   * The deferred check is set high so only the relay speaks. */
  cfg->health_deferred[0] = cfg->health_deferred[1] = 366 * 86400;
  f.queue.oldest_deferred_created = NOW - 1800;
  expect (cfg, &f, "relay", "WARNING", HEALTH_WARNING);
  f.queue.oldest_deferred_created = NOW - 4 * 3600;
  expect (cfg, &f, "relay", "CRITICAL", HEALTH_CRITICAL);
  /* The relay took one since: fine again. */
  f.queue.last_sent = NOW - 5;
  expect (cfg, &f, "relay", "OK", HEALTH_OK);
  /* Never took one. */
  f.queue.last_sent = 0;
  expect (cfg, &f, "relay", "CRITICAL", HEALTH_CRITICAL);
  /* The file transport has no relay to judge. */
  cfg->transport = TRANSPORT_FILE;
  expect (cfg, &f, "relay", "OK", HEALTH_OK);
}

static void
test_seal (void **state)
{
  g_autoptr (Config) cfg = smtp_config ();
  HealthFacts f = healthy ();

  f.last_seal = NOW - 3600;
  expect (cfg, &f, "seal", "WARNING", HEALTH_WARNING);
  f.last_seal = NOW - 6 * 3600;
  expect (cfg, &f, "seal", "CRITICAL", HEALTH_CRITICAL);
  f.last_seal = 0;
  expect (cfg, &f, "seal", "WARNING", HEALTH_WARNING);
  f.last_seal = NOW;
  f.sealing = FALSE;
  expect (cfg, &f, "seal", "WARNING", HEALTH_WARNING);
}

static void
test_disk (void **state)
{
  g_autoptr (Config) cfg = smtp_config ();
  HealthFacts f = healthy ();

  f.disk_free_pct = 10;
  expect (cfg, &f, "disk", "WARNING", HEALTH_WARNING);
  f.disk_free_pct = 5;
  expect (cfg, &f, "disk", "CRITICAL", HEALTH_CRITICAL);
  f.disk_read = FALSE;
  expect (cfg, &f, "disk", "CRITICAL", HEALTH_CRITICAL);
}

/* The audit cannot be written (gate.h): CRITICAL. */
static void
test_audit_closed (void **state)
{
  g_autoptr (Config) cfg = smtp_config ();
  HealthFacts f = healthy ();

  f.audit_closed = TRUE;
  expect (cfg, &f, "audit", "CRITICAL", HEALTH_CRITICAL);
}

static void
test_delivery_dead (void **state)
{
  g_autoptr (Config) cfg = smtp_config ();
  HealthFacts f = healthy ();

  f.delivery_alive = FALSE;
  expect (cfg, &f, "delivery", "CRITICAL", HEALTH_CRITICAL);
}

/* A real worker: alive now, idle and polling; seen from a clock a
 * minute past its poll, its loop has stopped turning: not alive. */
static void
test_delivery_alive (void **state)
{
  g_autofree char *dir = g_dir_make_tmp ("test_health-XXXXXX", NULL);
  g_autoptr (Config) cfg = config_defaults ();
  g_autoptr (GError) error = NULL;
  g_autofree char *audit_db = g_build_filename (dir, "audit.db", NULL);
  Audit *audit;
  Gate *gate;
  Delivery *d;
  gint64 now;

  g_free (cfg->queue_db);
  cfg->queue_db = g_build_filename (dir, "queue.db", NULL);
  g_free (cfg->outbox_dir);
  cfg->outbox_dir = g_build_filename (dir, "outbox", NULL);
  audit = audit_open (audit_db, &error);
  assert_non_null (audit);
  gate = gate_new (audit);
  d = delivery_start (cfg, gate, &error);
  if (d == NULL)
    fail_msg ("delivery_start: %s", error->message);
  now = g_get_monotonic_time ();
  assert_true (delivery_alive (d, now));
  assert_true (delivery_alive (d, now + (DELIVERY_IDLE_POLL - 1) * G_USEC_PER_SEC));
  assert_false (delivery_alive (d, now + (DELIVERY_IDLE_POLL + DELIVERY_ALIVE_SLACK + 2)
                                * G_USEC_PER_SEC));
  assert_false (delivery_alive (NULL, now));
  delivery_stop (d);
  gate_free (gate);
  audit_close (audit);
  testutil_rm_rf (dir);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_all_ok),
    cmocka_unit_test (test_audit_closed),
    cmocka_unit_test (test_queue_depth),
    cmocka_unit_test (test_oldest_deferred),
    cmocka_unit_test (test_failures_last_hour),
    cmocka_unit_test (test_relay),
    cmocka_unit_test (test_seal),
    cmocka_unit_test (test_disk),
    cmocka_unit_test (test_delivery_dead),
    cmocka_unit_test (test_delivery_alive),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
