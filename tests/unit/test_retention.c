/*
 * test_retention.c - the queue's and the outbox's retention fails
 * closed: real SQLite files (queue, audit) and a real outbox folder in a
 * temporary directory, the real audit gate.  The audit is made
 * unwritable the way another program would: a second connection holds
 * its write lock, and the gate's next append fails after the busy
 * timeout.
 *
 * While the gate is closed a pass removes nothing; once it opens the
 * pass removes and its `retention` row follows the `audit_resumed` row.
 * A row that could not be written (the audit failed during the pass) is
 * written first when the gate opens, before anything more is removed.
 * The thread tries again soon after the gate opens, not an hour later.
 *
 * Only the public headers are used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "audit.h"
#include "config.h"
#include "gate.h"
#include "queue.h"
#include "retention.h"

#define ID1 "aaaaaaaaaaaaaaaaaa01"
#define ID2 "aaaaaaaaaaaaaaaaaa02"
#define FINISHED 1000                   /* unix s: long ago */
#define NOW (FINISHED + 2 * 86400)      /* two days later */

typedef struct {
  char *dir;
  char *queue_db;
  char *audit_db;
  char *outbox;
  Audit *audit;
  Gate *gate;
  sqlite3 *holder;                      /* holds the audit's write lock */
} Fixture;

static int
setup (void **state)
{
  Fixture *f = g_new0 (Fixture, 1);

  f->dir = testutil_tmpdir ("test_retention-XXXXXX");
  f->queue_db = g_build_filename (f->dir, "queue.db", NULL);
  f->audit_db = g_build_filename (f->dir, "audit.db", NULL);
  f->outbox = g_build_filename (f->dir, "outbox", NULL);
  assert_int_equal (g_mkdir (f->outbox, 0750), 0);
  f->audit = audit_open (f->audit_db, NULL);
  assert_non_null (f->audit);
  f->gate = gate_new (f->audit);
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  Fixture *f = *state;

  if (f->holder != NULL)
    sqlite3_close (f->holder);
  gate_free (f->gate);
  audit_close (f->audit);
  testutil_rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->queue_db);
  g_free (f->audit_db);
  g_free (f->outbox);
  g_free (f);
  return 0;
}

/* An invite to one recipient, sent at FINISHED, with its outbox files. */
static void
finished_invite (Fixture *f, const char *id)
{
  static const char *const rcpt[] = { "ann@example.org" };
  g_autoptr (Queue) q = queue_open (f->queue_db, NULL);
  g_autofree char *body = g_strdup_printf ("Subject: invite %s\r\n\r\nHello\r\n", id);
  g_autoptr (GBytes) msg = g_bytes_new (body, strlen (body));
  g_autofree char *sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, msg);
  QueueInsert ins = {
    .id = id, .created = FINISHED - 10, .expires = FINISHED + 86400,
    .fingerprint = "fp-one", .staff = "SE0000000000-test", .booking = "BK-42",
    .unit = "Avd 4", .message_id = "0123456789abcdefghijklmnop@example.org",
    .peer_uid = 1000, .envelope_from = "noreply@example.org", .message = msg,
    .message_sha256 = sha, .recipients = rcpt, .n_recipients = 1,
  };
  QueueResult r = { id, 0, RCPT_SENT, 0, "250 ok" };
  g_autoptr (GError) error = NULL;

  assert_non_null (q);
  assert_true (queue_insert (q, &ins, NULL, &error));
  assert_true (queue_record (q, &r, 1, FINISHED, &error));
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *name = g_strdup_printf ("%s.0.%s", id, i ? "envelope" : "eml");
      g_autofree char *path = g_build_filename (f->outbox, name, NULL);

      assert_true (g_file_set_contents (path, "x", 1, NULL));
    }
}

static gint64
sql_count (const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  gint64 n;

  assert_int_equal (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  assert_int_equal (sqlite3_prepare_v2 (db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal (sqlite3_step (st), SQLITE_ROW);
  n = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  sqlite3_close (db);
  return n;
}

/* Whether the invite's data and outbox files are still there. */
static gboolean
kept (Fixture *f, const char *id)
{
  g_autofree char *sql = g_strdup_printf (
    "SELECT COUNT(*) FROM recipients WHERE invite_id = '%s'", id);
  g_autofree char *eml = g_strdup_printf ("%s/%s.0.eml", f->outbox, id);
  gboolean row = sql_count (f->queue_db, sql) == 1;
  gboolean file = g_file_test (eml, G_FILE_TEST_EXISTS);

  assert_true (row == file);            /* both or neither */
  return row;
}

/* The events of the audit, in order, space-separated. */
static char *
events (Fixture *f)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  GString *s = g_string_new (NULL);

  assert_int_equal (sqlite3_open_v2 (f->audit_db, &db, SQLITE_OPEN_READONLY, NULL),
                    SQLITE_OK);
  assert_int_equal (sqlite3_prepare_v2 (db, "SELECT event FROM audit ORDER BY seq",
                                        -1, &st, NULL), SQLITE_OK);
  while (sqlite3_step (st) == SQLITE_ROW)
    g_string_append_printf (s, "%s%s", s->len ? " " : "",
                            (const char *) sqlite3_column_text (st, 0));
  sqlite3_finalize (st);
  sqlite3_close (db);
  return g_string_free (s, FALSE);
}

/* Another program takes the audit's write lock. */
static void
hold_audit (Fixture *f)
{
  f->holder = testutil_hold_write_lock (f->audit_db);
}

static void
release_audit (Fixture *f)
{
  testutil_release_write_lock (f->holder);
  f->holder = NULL;
}

/* The audit fails under a writer (after the busy timeout): the gate
 * closes, as it does for any row the daemon cannot store. */
static void
close_gate (Fixture *f)
{
  AuditRecord rec = { .event = AUDIT_DAEMON_START, .peer_uid = -1,
                      .detail = "test" };
  g_autoptr (GError) error = NULL;

  hold_audit (f);
  assert_false (gate_append (f->gate, &rec, 1, &error));
  assert_false (gate_is_open (f->gate));
}

/* Lets the gate's prober store `audit_resumed` (every GATE_PROBE_MS). */
static void
open_gate (Fixture *f)
{
  gint64 until = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  release_audit (f);
  while (!gate_is_open (f->gate) && g_get_monotonic_time () < until)
    g_usleep (20 * 1000);
  assert_true (gate_is_open (f->gate));
}

/* While the gate is closed a pass removes nothing, from the queue or
 * the outbox; once it opens the pass removes and writes its row, after
 * the `audit_resumed` row. */
static void
test_closed_gate_purges_nothing (void **state)
{
  Fixture *f = *state;
  RetentionCounts owed = { 0 }, c;
  g_autoptr (GError) error = NULL;
  g_autofree char *ev = NULL;

  finished_invite (f, ID1);
  close_gate (f);
  assert_false (retention_run (f->queue_db, f->outbox, 1, NOW, f->gate, &owed,
                               &c, &error));
  assert_true (g_error_matches (error, RETENTION_ERROR, RETENTION_ERROR_AUDIT_CLOSED));
  g_clear_error (&error);
  assert_int_equal (c.invites + c.files + owed.invites + owed.files, 0);
  assert_true (kept (f, ID1));
  open_gate (f);
  assert_true (kept (f, ID1));
  assert_true (retention_run (f->queue_db, f->outbox, 1, NOW, f->gate, &owed,
                              &c, &error));
  assert_null (error);
  assert_int_equal (c.invites, 1);
  assert_int_equal (c.files, 2);
  assert_false (kept (f, ID1));
  ev = events (f);
  assert_string_equal (ev, "audit_resumed retention");
  assert_int_equal (sql_count (f->audit_db, "SELECT COUNT(*) FROM audit WHERE"
                               " event = 'retention' AND detail = 'older than 1"
                               " days: queue 1 invites (1 recipients; 0 kept as"
                               " idempotency tombstones), outbox 2 files'"), 1);
}

/* The audit fails during a pass (the gate still looked open): the row's
 * append closes the gate and the row is owed.  Nothing more is removed
 * until it can be written; then it is written first, then the next
 * pass's. */
static void
test_failed_row_written_first (void **state)
{
  Fixture *f = *state;
  RetentionCounts owed = { 0 }, c;
  g_autoptr (GError) error = NULL;
  g_autofree char *ev = NULL;

  finished_invite (f, ID1);
  hold_audit (f);
  assert_false (retention_run (f->queue_db, f->outbox, 1, NOW, f->gate, &owed,
                               &c, &error));
  assert_non_null (error);
  g_clear_error (&error);
  assert_false (gate_is_open (f->gate));      /* like every other writer */
  assert_false (kept (f, ID1));
  assert_int_equal (owed.invites, 1);
  assert_int_equal (owed.files, 2);
  /* Another old invite: not removed while the row is owed. */
  finished_invite (f, ID2);
  assert_false (retention_run (f->queue_db, f->outbox, 1, NOW, f->gate, &owed,
                               &c, &error));
  assert_true (g_error_matches (error, RETENTION_ERROR, RETENTION_ERROR_AUDIT_CLOSED));
  g_clear_error (&error);
  assert_true (kept (f, ID2));
  open_gate (f);
  assert_true (retention_run (f->queue_db, f->outbox, 1, NOW, f->gate, &owed,
                              &c, &error));
  assert_null (error);
  assert_int_equal (owed.invites + owed.files, 0);
  assert_int_equal (c.invites, 1);
  assert_false (kept (f, ID2));
  ev = events (f);
  assert_string_equal (ev, "audit_resumed retention retention");
}

/* The thread: its first pass finds the gate closed and removes
 * nothing; it looks again soon, and purges within seconds of the gate
 * opening (not at the next hourly pass). */
static void
test_thread_purges_soon_after_gate_opens (void **state)
{
  Fixture *f = *state;
  g_autofree char *conf = g_build_filename (f->dir, "test.conf", NULL);
  g_autofree char *text = g_strdup_printf (
    "[daemon]\nqueue_db = queue.db\naudit_db = audit.db\n"
    "[transport]\ntype = file\noutbox_dir = %s\n"
    "[queue]\nretention_days = 1\n", f->outbox);
  g_autoptr (GError) error = NULL;
  Config *cfg;
  Retention *r;
  gint64 until;

  assert_true (g_file_set_contents (conf, text, -1, NULL));
  cfg = config_load (conf, &error);
  assert_non_null (cfg);
  finished_invite (f, ID1);
  close_gate (f);
  r = retention_start (cfg, f->gate);
  config_free (cfg);
  g_usleep (1500 * 1000);                     /* its first pass, and a retry */
  assert_true (kept (f, ID1));
  open_gate (f);
  until = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (kept (f, ID1) && g_get_monotonic_time () < until)
    g_usleep (50 * 1000);
  retention_stop (r);
  assert_false (kept (f, ID1));
  g_autofree char *ev = events (f);
  assert_string_equal (ev, "audit_resumed retention");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_closed_gate_purges_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown (test_failed_row_written_first, setup, teardown),
    cmocka_unit_test_setup_teardown (test_thread_purges_soon_after_gate_opens, setup,
                                     teardown),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
