/*
 * test_commit.c - the committer (commit.h) on real SQLite files: an
 * answer never comes before its commit, what arrives during a commit
 * goes in the next one together, idempotent repeats and key conflicts,
 * a failing commit stores nothing and says so in the audit, a stop
 * commits what is pending.
 *
 * Only the public headers are used.  Another connection's write lock
 * on the queue file (BEGIN IMMEDIATE from the test) stands for a slow
 * disk: the committer waits on it, so the test controls when a commit
 * can finish.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_read.h"
#include "commit.h"
#include "queue.h"

typedef struct {
  TestDaemon *d;              /* d->queue is the test's own connection */
  gint clock_calls;           /* audit batches, through the clock */
  guint next_id;
} Fixture;

/* One answer handed back to the main loop. */
typedef struct {
  Fixture *f;
  char *id;                   /* the id submitted */
  CommitResult result;
  char *answered_id;
  gboolean done;
  gboolean visible;           /* its invite was readable when answered */
  GThread *thread;            /* where it was answered */
  int audit_rows;             /* rows for its id when answered */
} Answer;

/* Each audit batch asks the clock once: distinct times = batches. */
static gint64
counting_clock (gpointer data)
{
  Fixture *f = data;

  return 1700000000000 + g_atomic_int_add (&f->clock_calls, 1);
}

static int
setup (void **state)
{
  Fixture *f = g_new0 (Fixture, 1);

  /* No keys: queue.db and audit.db in the test's folder. */
  f->d = testutil_daemon_new ("imcommit-XXXXXX", "");
  audit_set_clock (f->d->audit, counting_clock, f);
  testutil_daemon_start_committer (f->d);
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  Fixture *f = *state;

  testutil_daemon_free (f->d);
  g_free (f);
  return 0;
}

static int
audit_count (Fixture *f, const char *event, const char *invite_id)
{
  return testutil_audit_count (f->d->cfg->audit_db, event, invite_id);
}

static gboolean
invite_stored (Fixture *f, const char *id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QueueStatus) st = queue_status (f->d->queue, id, &error);

  if (st == NULL)
    assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND));
  return st != NULL;
}

/* Runs on the main loop's thread: by now the commit must be visible to
 * any other connection, with its audit row. */
static void
on_done (CommitItem *item, gpointer data)
{
  Answer *a = data;

  a->thread = g_thread_self ();
  assert_false (a->done);   /* exactly once */
  a->done = TRUE;
  a->result = commit_item_result (item);
  a->answered_id = g_strdup (commit_item_invite_id (item));
  if (a->answered_id == NULL)
    return;   /* an audit-only item */
  a->visible = invite_stored (a->f, a->answered_id);
  a->audit_rows = audit_count (a->f, NULL, a->answered_id);
}

static void
answer_free (Answer *a)
{
  g_free (a->id);
  g_free (a->answered_id);
  g_free (a);
}

typedef struct {
  const char *key;            /* idempotency key or NULL */
  const char *fingerprint;
  gint64 uid;
  const char *recipient;
  gboolean announced;         /* committer_submit_announced */
} ItemSpec;

static Answer *
submit (Fixture *f, const ItemSpec *spec)
{
  static const char body[] = "Subject: test\r\n\r\nInbjudan till eVisit\r\n";
  g_autoptr (GBytes) msg = g_bytes_new_static (body, sizeof body - 1);
  char sha[65];
  const char *rcpts[1] = { spec->recipient ? spec->recipient : "tolk@example.com" };
  Answer *a = g_new0 (Answer, 1);
  QueueInsert ins = { 0 };
  AuditRecord rec = { 0 };
  CommitItem *item;

  a->f = f;
  a->id = g_strdup_printf ("%020u", ++f->next_id);
  sha256_hex (body, sizeof body - 1, sha);
  ins.id = a->id;
  ins.created = g_get_real_time () / G_USEC_PER_SEC;
  ins.expires = ins.created + 3600;
  ins.idempotency_key = spec->key;
  ins.fingerprint = spec->fingerprint;
  ins.booking = "BK-1";
  ins.peer_uid = spec->uid;
  ins.envelope_from = "evisit@example.org";
  ins.message = msg;
  ins.message_sha256 = sha;
  ins.recipients = rcpts;
  ins.n_recipients = 1;
  rec.event = AUDIT_ACCEPTED;
  rec.invite_id = a->id;
  rec.peer_uid = spec->uid;
  rec.booking = "BK-1";
  rec.recipients = rcpts[0];
  rec.message_sha256 = sha;
  item = commit_item_new (on_done, a);
  commit_item_set_insert (item, &ins);
  commit_item_set_audit (item, &rec);
  if (spec->announced)
    committer_submit_announced (f->d->committer, item);
  else
    committer_submit (f->d->committer, item);
  return a;
}

static Answer *
submit_plain (Fixture *f)
{
  ItemSpec spec = { .uid = 1000 };

  return submit (f, &spec);
}

/* Iterates the main context until every answer came or 10 s passed. */
static void
wait_answers (Answer **as, guint n)
{
  gint64 until = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  for (;;)
    {
      guint done = 0;

      for (guint i = 0; i < n; i++)
        done += as[i]->done;
      if (done == n || g_get_monotonic_time () > until)
        break;
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
  for (guint i = 0; i < n; i++)
    assert_true (as[i]->done);
}

static void
test_answer_only_after_commit (void **state)
{
  Fixture *f = *state;
  sqlite3 *lock = testutil_hold_write_lock (f->d->cfg->queue_db);
  Answer *a = submit_plain (f);

  /* The commit cannot finish: no answer, nothing visible, still pending. */
  testutil_spin (300);
  assert_false (a->done);
  assert_int_equal (committer_pending (f->d->committer), 1);
  assert_false (invite_stored (f, a->id));
  assert_int_equal (audit_count (f, NULL, a->id), 0);

  testutil_release_write_lock (lock);
  wait_answers (&a, 1);
  assert_int_equal (a->result, COMMIT_STORED);
  assert_string_equal (a->answered_id, a->id);
  assert_true (a->visible);               /* committed before the answer */
  assert_int_equal (a->audit_rows, 1);    /* and audited before it */
  assert_int_equal (audit_count (f, "accepted", a->id), 1);
  assert_int_equal (committer_pending (f->d->committer), 0);
  answer_free (a);
}

/* What arrives while a commit waits on the disk goes in the next one
 * together: 21 invites, at most 3 audit batches (1 would be ideal, the
 * first may go alone), never one per invite. */
static void
test_group_commit (void **state)
{
  Fixture *f = *state;
  Answer *as[21];
  sqlite3 *lock = testutil_hold_write_lock (f->d->cfg->queue_db);
  gint before = g_atomic_int_get (&f->clock_calls);

  as[0] = submit_plain (f);
  testutil_spin (100);   /* the committer has taken it and waits for the lock */
  for (guint i = 1; i < G_N_ELEMENTS (as); i++)
    as[i] = submit_plain (f);
  testutil_spin (50);
  for (guint i = 0; i < G_N_ELEMENTS (as); i++)
    assert_false (as[i]->done);
  testutil_release_write_lock (lock);
  wait_answers (as, G_N_ELEMENTS (as));
  for (guint i = 0; i < G_N_ELEMENTS (as); i++)
    {
      assert_int_equal (as[i]->result, COMMIT_STORED);
      assert_true (as[i]->visible);
      assert_int_equal (as[i]->audit_rows, 1);
      answer_free (as[i]);
    }
  assert_int_equal (audit_count (f, "accepted", NULL), 21);
  assert_in_range (g_atomic_int_get (&f->clock_calls) - before, 1, 3);
}

/* An item announced (committer_expect) is waited for: the one that
 * came first waits for it and both go in one commit. */
static void
test_gather_waits_for_announced (void **state)
{
  Fixture *f = *state;
  Answer *as[2];
  gint before = g_atomic_int_get (&f->clock_calls);

  committer_set_gather (f->d->committer, 20 * G_USEC_PER_SEC);
  committer_expect (f->d->committer, 1);
  as[0] = submit_plain (f);
  testutil_spin (300);
  assert_false (as[0]->done);   /* held for the one announced */
  as[1] = submit_plain (f);
  committer_expect (f->d->committer, -1);
  wait_answers (as, 2);
  for (guint i = 0; i < 2; i++)
    {
      assert_int_equal (as[i]->result, COMMIT_STORED);
      answer_free (as[i]);
    }
  assert_int_equal (g_atomic_int_get (&f->clock_calls) - before, 1);
}

/* A lone request is not delayed: its own announcement is withdrawn
 * with its submit, and nothing else is on its way. */
static void
test_gather_never_delays_a_lone_item (void **state)
{
  Fixture *f = *state;
  ItemSpec spec = { .uid = 1000, .announced = TRUE };
  Answer *a;
  gint64 t0;

  committer_set_gather (f->d->committer, 20 * G_USEC_PER_SEC);
  committer_expect (f->d->committer, 1);
  t0 = g_get_monotonic_time ();
  a = submit (f, &spec);
  wait_answers (&a, 1);
  assert_int_equal (a->result, COMMIT_STORED);
  /* far below the 20 s it would wait for an announced item */
  assert_true (g_get_monotonic_time () - t0 < 5 * G_USEC_PER_SEC);
  answer_free (a);
}

static gboolean
count_by_time (const AuditRow *row, gpointer data)
{
  GHashTable *per_time = data;
  gpointer key = GINT_TO_POINTER ((gint) (row->time_ms - 1700000000000));

  g_hash_table_insert (per_time, key,
                       GINT_TO_POINTER (GPOINTER_TO_INT (g_hash_table_lookup (per_time, key)) + 1));
  return TRUE;
}

/* A burst bigger than COMMIT_BATCH_MAX goes in several transactions,
 * none over the cap. */
static void
test_batch_cap (void **state)
{
  Fixture *f = *state;
  enum { N = COMMIT_BATCH_MAX + 88 };
  g_autofree Answer **as = g_new0 (Answer *, N + 1);
  g_autoptr (GHashTable) per_time = g_hash_table_new (NULL, NULL);
  sqlite3 *lock = testutil_hold_write_lock (f->d->cfg->queue_db);
  GHashTableIter it;
  gpointer key, value;
  int biggest = 0;

  as[0] = submit_plain (f);
  testutil_spin (100);
  for (guint i = 1; i <= N; i++)
    as[i] = submit_plain (f);
  testutil_release_write_lock (lock);
  wait_answers (as, N + 1);
  for (guint i = 0; i <= N; i++)
    {
      assert_int_equal (as[i]->result, COMMIT_STORED);
      answer_free (as[i]);
    }
  assert_true (audit_read (f->d->cfg->audit_db, NULL, count_by_time, per_time, NULL));
  g_hash_table_iter_init (&it, per_time);
  while (g_hash_table_iter_next (&it, &key, &value))
    biggest = MAX (biggest, GPOINTER_TO_INT (value));
  assert_int_equal (biggest, COMMIT_BATCH_MAX);
  assert_in_range (g_hash_table_size (per_time), 2, 4);
}

static void
test_duplicate_and_conflict (void **state)
{
  Fixture *f = *state;
  ItemSpec first = { .key = "booking-42", .fingerprint = "fp-A", .uid = 1000 };
  ItemSpec other = { .key = "booking-42", .fingerprint = "fp-B", .uid = 1000 };
  ItemSpec other_uid = { .key = "booking-42", .fingerprint = "fp-B", .uid = 1001 };
  Answer *a = submit (f, &first);
  Answer *dup, *conflict, *mine;

  wait_answers (&a, 1);
  assert_int_equal (a->result, COMMIT_STORED);

  /* The same key and request: answered with the first id, nothing new. */
  dup = submit (f, &first);
  wait_answers (&dup, 1);
  assert_int_equal (dup->result, COMMIT_DUPLICATE);
  assert_string_equal (dup->answered_id, a->id);
  assert_false (invite_stored (f, dup->id));
  assert_int_equal (audit_count (f, "duplicate_request", a->id), 1);

  /* The same key with another request: refused, nothing stored. */
  conflict = submit (f, &other);
  wait_answers (&conflict, 1);
  assert_int_equal (conflict->result, COMMIT_CONFLICT);
  assert_false (invite_stored (f, conflict->id));

  /* Another uid's key of the same name is its own. */
  mine = submit (f, &other_uid);
  wait_answers (&mine, 1);
  assert_int_equal (mine->result, COMMIT_STORED);
  assert_true (mine->visible);

  assert_int_equal (audit_count (f, "accepted", NULL), 2);
  assert_int_equal (audit_count (f, "rejected", NULL), 1);
  answer_free (a);
  answer_free (dup);
  answer_free (conflict);
  answer_free (mine);
}

static gboolean
is_conflict_row (const AuditRow *row, gpointer data)
{
  if (g_strcmp0 (row->error_code, "conflict") == 0
      && g_strcmp0 (row->field, "idempotency_key") == 0
      && row->peer_uid == 1000 && row->invite_id == NULL)
    (*(int *) data)++;
  return TRUE;
}

/* Two requests with one key in the same batch: the second sees the
 * first's insert inside the same transaction. */
static void
test_duplicate_within_one_batch (void **state)
{
  Fixture *f = *state;
  ItemSpec same = { .key = "k-7", .fingerprint = "fp-A", .uid = 1000 };
  ItemSpec differs = { .key = "k-7", .fingerprint = "fp-Z", .uid = 1000 };
  AuditFilter rejected = { .event = "rejected" };
  sqlite3 *lock = testutil_hold_write_lock (f->d->cfg->queue_db);
  Answer *as[3];
  int conflicts = 0;

  as[0] = submit (f, &same);
  as[1] = submit (f, &same);
  as[2] = submit (f, &differs);
  testutil_spin (50);
  testutil_release_write_lock (lock);
  wait_answers (as, 3);
  assert_int_equal (as[0]->result, COMMIT_STORED);
  assert_int_equal (as[1]->result, COMMIT_DUPLICATE);
  assert_string_equal (as[1]->answered_id, as[0]->id);
  assert_int_equal (as[2]->result, COMMIT_CONFLICT);
  assert_true (audit_read (f->d->cfg->audit_db, &rejected, is_conflict_row, &conflicts, NULL));
  assert_int_equal (conflicts, 1);
  for (guint i = 0; i < 3; i++)
    answer_free (as[i]);
}

static gboolean
is_unavailable_row (const AuditRow *row, gpointer data)
{
  if (g_strcmp0 (row->event, "rejected") == 0
      && g_strcmp0 (row->error_code, "unavailable") == 0
      && row->invite_id != NULL && row->recipients == NULL)
    (*(int *) data)++;
  return TRUE;
}

/* A queue commit that fails: every invite of the batch is refused,
 * none is stored; the next commit works again.  The audit rows commit
 * before the queue (fail closed, commit.h), so each `accepted` row is
 * followed by its withdrawal: `rejected`, unavailable, same invite id. */
static void
test_failed_commit_stores_nothing (void **state)
{
  Fixture *f = *state;
  Answer *as[3];
  Answer *after;
  int unavailable = 0;

  committer_set_fail_commit (f->d->committer, TRUE);
  for (guint i = 0; i < 3; i++)
    as[i] = submit_plain (f);
  wait_answers (as, 3);
  for (guint i = 0; i < 3; i++)
    {
      assert_int_equal (as[i]->result, COMMIT_FAILED);
      assert_false (as[i]->visible);
      assert_false (invite_stored (f, as[i]->id));
    }
  assert_int_equal (audit_count (f, "accepted", NULL), 3);
  assert_true (audit_read (f->d->cfg->audit_db, NULL, is_unavailable_row, &unavailable, NULL));
  assert_int_equal (unavailable, 3);

  committer_set_fail_commit (f->d->committer, FALSE);
  after = submit_plain (f);
  wait_answers (&after, 1);
  assert_int_equal (after->result, COMMIT_STORED);
  assert_true (after->visible);
  for (guint i = 0; i < 3; i++)
    answer_free (as[i]);
  answer_free (after);
}

/* An item the queue refuses to store (an address that could inject an
 * SMTP command) fails alone; the rest of its batch is stored. */
static void
test_bad_item_fails_alone (void **state)
{
  Fixture *f = *state;
  ItemSpec good = { .uid = 1000 };
  ItemSpec bad = { .uid = 1000,
                   .recipient = "x@example.com>\r\nRCPT TO:<y@example.com" };
  sqlite3 *lock = testutil_hold_write_lock (f->d->cfg->queue_db);
  Answer *as[3];

  as[0] = submit (f, &good);
  as[1] = submit (f, &bad);
  as[2] = submit (f, &good);
  testutil_spin (50);
  testutil_release_write_lock (lock);
  wait_answers (as, 3);
  assert_int_equal (as[0]->result, COMMIT_STORED);
  assert_int_equal (as[1]->result, COMMIT_FAILED);
  assert_int_equal (as[2]->result, COMMIT_STORED);
  assert_false (invite_stored (f, as[1]->id));
  assert_true (invite_stored (f, as[0]->id));
  assert_true (invite_stored (f, as[2]->id));
  /* Its accepted row became a refusal without the address. */
  assert_int_equal (audit_count (f, "accepted", NULL), 2);
  assert_int_equal (audit_count (f, "rejected", NULL), 1);
  for (guint i = 0; i < 3; i++)
    answer_free (as[i]);
}

/* A refusal is an audit-only item: answered after its row is written,
 * and the queue is not touched. */
static void
test_audit_only_item (void **state)
{
  Fixture *f = *state;
  Answer *a = g_new0 (Answer, 1);
  AuditRecord rec = { .event = AUDIT_REJECTED, .peer_uid = 1000,
                      .error_code = "invalid_link", .field = "link" };
  CommitItem *item = commit_item_new (on_done, a);
  g_autoptr (GPtrArray) jobs = NULL;

  a->f = f;
  commit_item_set_audit (item, &rec);
  committer_submit (f->d->committer, item);
  wait_answers (&a, 1);
  assert_int_equal (a->result, COMMIT_STORED);
  assert_int_equal (audit_count (f, "rejected", NULL), 1);
  jobs = queue_claim_due (f->d->queue, G_MAXINT64 / 2, 10, NULL);
  assert_non_null (jobs);
  assert_int_equal (jobs->len, 0);
  answer_free (a);
}

/* committer_stop commits what was submitted; the answers come on the
 * thread that iterates the main context afterwards, even though nobody
 * owns the context during the stop (as in the daemon, whose loop has
 * returned by then). */
static void
test_stop_commits_pending (void **state)
{
  Fixture *f = *state;
  Answer *as[5];

  for (guint i = 0; i < 5; i++)
    as[i] = submit_plain (f);
  g_main_context_release (NULL);
  committer_stop (f->d->committer);
  f->d->committer = NULL;
  for (guint i = 0; i < 5; i++)
    assert_null (as[i]->thread);   /* none answered yet, on any thread */
  assert_true (g_main_context_acquire (NULL));
  wait_answers (as, 5);
  for (guint i = 0; i < 5; i++)
    {
      assert_int_equal (as[i]->result, COMMIT_STORED);
      assert_true (as[i]->visible);
      assert_true (as[i]->thread == g_thread_self ());
      answer_free (as[i]);
    }
}

/* committer_reconcile: an `accepted` row whose invite no queue holds
 * (a crash between the batch's audit commit and its queue commit) gets
 * a `rejected` row after it; a stored invite ends the look back; a
 * second start writes nothing more. */
static void
test_reconcile_after_crash_between_commits (void **state)
{
  Fixture *f = *state;
  Answer *a = submit_plain (f);
  AuditRecord orphan = { .event = AUDIT_ACCEPTED, .peer_uid = 1000,
                         .invite_id = "0000000000aaaaaaaaaa" };
  g_autoptr (GError) error = NULL;

  wait_answers (&a, 1);
  assert_int_equal (a->result, COMMIT_STORED);
  assert_int_equal (committer_reconcile (f->d->queue, f->d->gate, f->d->cfg->audit_db, 0, &error), 0);
  /* What the audit holds after such a crash: the row, no invite. */
  assert_true (gate_append (f->d->gate, &orphan, 1, &error));
  assert_int_equal (committer_reconcile (f->d->queue, f->d->gate, f->d->cfg->audit_db, 0, &error), 1);
  assert_int_equal (audit_count (f, "rejected", orphan.invite_id), 1);
  assert_int_equal (audit_count (f, "rejected", a->id), 0);
  assert_int_equal (committer_reconcile (f->d->queue, f->d->gate, f->d->cfg->audit_db, 0, &error), 0);
  assert_int_equal (audit_count (f, "rejected", orphan.invite_id), 1);
  answer_free (a);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_answer_only_after_commit, setup, teardown),
    cmocka_unit_test_setup_teardown (test_group_commit, setup, teardown),
    cmocka_unit_test_setup_teardown (test_batch_cap, setup, teardown),
    cmocka_unit_test_setup_teardown (test_gather_waits_for_announced, setup, teardown),
    cmocka_unit_test_setup_teardown (test_gather_never_delays_a_lone_item, setup, teardown),
    cmocka_unit_test_setup_teardown (test_duplicate_and_conflict, setup, teardown),
    cmocka_unit_test_setup_teardown (test_duplicate_within_one_batch, setup, teardown),
    cmocka_unit_test_setup_teardown (test_reconcile_after_crash_between_commits,
                                     setup, teardown),
    cmocka_unit_test_setup_teardown (test_failed_commit_stores_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown (test_bad_item_fails_alone, setup, teardown),
    cmocka_unit_test_setup_teardown (test_audit_only_item, setup, teardown),
    cmocka_unit_test_setup_teardown (test_stop_commits_pending, setup, teardown),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
