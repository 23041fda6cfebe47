/*
 * test_queue.c - the durable queue against real SQLite files in a
 * temporary directory: idempotency, claiming, outcomes and the invite
 * state rule, crash recovery, commit failure, and rows corrupted on
 * disk (which must give QUEUE_ERROR_CORRUPT, never a crash).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <string.h>
#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "db.h"
#include "queue.h"

#define ID1 "aaaaaaaaaaaaaaaaaa01"
#define ID2 "aaaaaaaaaaaaaaaaaa02"
#define ID3 "aaaaaaaaaaaaaaaaaa03"

typedef struct {
  char *dir;
  char *path;
} Fixture;

static int
setup (void **state)
{
  Fixture *fx = g_new0 (Fixture, 1);

  fx->dir = testutil_tmpdir ("test_queue-XXXXXX");
  fx->path = g_build_filename (fx->dir, "queue.db", NULL);
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

/* ---- helpers --------------------------------------------------------- */

static const char *const two_rcpts[] = { "ann@example.org", "bo@example.com" };
static const char *const one_rcpt[] = { "cy@example.org" };

typedef struct {
  QueueInsert ins;
  GBytes *msg;
  char *sha;
} TestInsert;

static void
test_insert_init (TestInsert *t, const char *id, gint64 created,
                  const char *const *rcpts, guint n)
{
  g_autofree char *body =
    g_strdup_printf ("Subject: invite %s\r\n\r\nHello\r\n", id);

  memset (t, 0, sizeof *t);
  t->msg = g_bytes_new (body, strlen (body));
  t->sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, t->msg);
  t->ins.id = id;
  t->ins.created = created;
  t->ins.expires = created + 86400;
  t->ins.fingerprint = "fp-one";
  t->ins.staff = "SE0000000000-test";
  t->ins.booking = "BK-42";
  t->ins.unit = "Avd 4";
  t->ins.message_id = "0123456789abcdefghijklmnop@example.org";
  t->ins.peer_uid = 1000;
  t->ins.envelope_from = "noreply@example.org";
  t->ins.message = t->msg;
  t->ins.message_sha256 = t->sha;
  t->ins.recipients = rcpts;
  t->ins.n_recipients = n;
}

static void
test_insert_clear (TestInsert *t)
{
  g_bytes_unref (t->msg);
  g_free (t->sha);
}

static void
insert_ok (Queue *q, const char *id, gint64 created, const char *const *rcpts,
           guint n)
{
  TestInsert t;
  g_autoptr (GError) error = NULL;
  g_autofree char *existing = NULL;

  test_insert_init (&t, id, created, rcpts, n);
  assert_true (queue_insert (q, &t.ins, &existing, &error));
  assert_null (error);
  assert_null (existing);
  test_insert_clear (&t);
}

/* The first column of the first row sql gives on db. */
static gint64
pragma_int (sqlite3 *db, const char *sql)
{
  sqlite3_stmt *st = NULL;
  gint64 v;

  assert_int_equal (sqlite3_prepare_v2 (db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal (sqlite3_step (st), SQLITE_ROW);
  v = sqlite3_column_int64 (st, 0);
  sqlite3_finalize (st);
  return v;
}

/* Runs SQL on a plain connection, as an attacker or a broken disk. */
static gint64
raw_count (const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  gint64 n;

  assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
  n = pragma_int (db, sql);
  sqlite3_close (db);
  return n;
}

static GPtrArray *
claim (Queue *q, gint64 now, guint max)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *jobs = queue_claim_due (q, now, max, &error);

  assert_non_null (jobs);
  assert_null (error);
  return jobs;
}

static QueueStatus *
status_ok (Queue *q, const char *id)
{
  g_autoptr (GError) error = NULL;
  QueueStatus *s = queue_status (q, id, &error);

  assert_non_null (s);
  assert_null (error);
  return s;
}

static RcptState
rcpt_state (QueueStatus *s, guint i)
{
  return ((QueueRcptStatus *) g_ptr_array_index (s->recipients, i))->state;
}

/* ---- tests ----------------------------------------------------------- */

static void
test_insert_and_status (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (QueueStatus) s = NULL;
  g_autoptr (GBytes) msg = NULL;
  g_autofree char *wal = NULL;
  struct stat sb;

  assert_non_null (q);
  insert_ok (q, ID1, 100, two_rcpts, 2);
  s = status_ok (q, ID1);
  assert_string_equal (s->id, ID1);
  assert_string_equal (s->state, "queued");
  assert_string_equal (s->booking, "BK-42");
  assert_int_equal (s->created, 100);
  assert_int_equal (s->expires, 100 + 86400);
  assert_int_equal (s->recipients->len, 2);
  assert_string_equal (((QueueRcptStatus *) s->recipients->pdata[0])->address,
                       "ann@example.org");
  assert_string_equal (((QueueRcptStatus *) s->recipients->pdata[1])->address,
                       "bo@example.com");
  assert_int_equal (rcpt_state (s, 0), RCPT_QUEUED);
  msg = queue_message (q, ID1, NULL);
  assert_non_null (msg);
  assert_non_null (g_strstr_len (g_bytes_get_data (msg, NULL),
                                 g_bytes_get_size (msg), "invite " ID1));
  /* The file holds addresses and bodies: owner only. */
  assert_int_equal (g_stat (fx->path, &sb), 0);
  assert_int_equal (sb.st_mode & 077, 0);
  wal = g_strconcat (fx->path, "-wal", NULL);     /* SQLite copies the mode */
  assert_int_equal (g_stat (wal, &sb), 0);
  assert_int_equal (sb.st_mode & 077, 0);
  assert_int_equal (queue_next_due (q, NULL), 100);
}

static void
test_status_not_found (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GError) error = NULL;

  assert_null (queue_status (q, ID2, &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND));
  g_clear_error (&error);
  assert_null (queue_message (q, ID2, &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND));
  assert_int_equal (queue_next_due (q, NULL), -1);
}

static void
test_idempotent_repeat (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *existing = NULL;
  TestInsert a, b;

  test_insert_init (&a, ID1, 100, two_rcpts, 2);
  a.ins.idempotency_key = "req-1";
  assert_true (queue_insert (q, &a.ins, &existing, &error));
  assert_null (existing);
  test_insert_init (&b, ID2, 200, two_rcpts, 2);
  b.ins.idempotency_key = "req-1";
  assert_true (queue_insert (q, &b.ins, &existing, &error));
  assert_null (error);
  assert_non_null (existing);
  assert_string_equal (existing, ID1);
  assert_null (queue_status (q, ID2, NULL));
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites"), 1);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM recipients"),
                    2);
  test_insert_clear (&a);
  test_insert_clear (&b);
}

/* Issue 9 point 6: keys are per uid.  Another uid's same key, with
 * another request or the same one, neither conflicts nor answers the
 * first caller's id: it is a new invite.  Batch inserts too. */
static void
test_idempotent_key_per_uid (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *existing = NULL;
  TestInsert a, b, c;
  QueueBatchItem item = { 0 };

  test_insert_init (&a, ID1, 100, two_rcpts, 2);
  a.ins.idempotency_key = "req-1";
  assert_true (queue_insert (q, &a.ins, NULL, NULL));
  test_insert_init (&b, ID2, 200, one_rcpt, 1);
  b.ins.idempotency_key = "req-1";
  b.ins.fingerprint = "fp-other";
  b.ins.peer_uid = 2000;
  assert_true (queue_insert (q, &b.ins, &existing, &error));
  assert_null (error);
  assert_null (existing);
  test_insert_init (&c, ID3, 300, two_rcpts, 2);
  c.ins.idempotency_key = "req-1";
  c.ins.peer_uid = 3000;
  item.ins = &c.ins;
  assert_true (queue_insert_batch (q, &item, 1, NULL));
  assert_null (item.error);
  assert_null (item.existing_id);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites"), 3);
  /* The first caller still gets its own id back. */
  a.ins.id = "aaaaaaaaaaaaaaaaaa04";
  assert_true (queue_insert (q, &a.ins, &existing, NULL));
  assert_string_equal (existing, ID1);
  test_insert_clear (&a);
  test_insert_clear (&b);
  test_insert_clear (&c);
}

/* The queue cap's count: queued, sending and deferred recipients;
 * never the finished ones. */
static void
test_count_undelivered (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GPtrArray) jobs = NULL;
  QueueResult sent = { ID1, 0, RCPT_SENT, 0, "250 ok" };
  QueueResult later = { ID1, 1, RCPT_DEFERRED, 5000, "451 later" };

  assert_int_equal (queue_count_undelivered (q, NULL), 0);
  insert_ok (q, ID1, 100, two_rcpts, 2);
  insert_ok (q, ID2, 200, one_rcpt, 1);
  assert_int_equal (queue_count_undelivered (q, NULL), 3);
  jobs = claim (q, 1000, 2);                   /* ID1's two: sending */
  assert_int_equal (jobs->len, 2);
  assert_int_equal (queue_count_undelivered (q, NULL), 3);
  assert_true (queue_record (q, &sent, 1, 1000, NULL));
  assert_true (queue_record (q, &later, 1, 1000, NULL));
  assert_int_equal (queue_count_undelivered (q, NULL), 2);
}

/* A version 3 file's global keys become their sender's on upgrade. */
static void
test_schema_upgrade_keys_scoped (void **state)
{
  Fixture *fx = *state;
  g_autofree char *existing = NULL;
  Queue *q = queue_open (fx->path, NULL);
  TestInsert a;

  test_insert_init (&a, ID1, 100, one_rcpt, 1);
  a.ins.idempotency_key = "req-9";
  assert_true (queue_insert (q, &a.ins, NULL, NULL));
  queue_close (q);
  testutil_sql (fx->path, "UPDATE invites SET idem_key = 'req-9';"
                "PRAGMA user_version = 3");
  q = queue_open (fx->path, NULL);
  assert_non_null (q);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites"
                               " WHERE idem_key = '1000:req-9'"), 1);
  a.ins.id = ID2;
  assert_true (queue_insert (q, &a.ins, &existing, NULL));
  assert_string_equal (existing, ID1);
  queue_close (q);
  test_insert_clear (&a);
}

static void
test_idempotent_conflict (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *existing = NULL;
  TestInsert a, b;

  test_insert_init (&a, ID1, 100, two_rcpts, 2);
  a.ins.idempotency_key = "req-1";
  assert_true (queue_insert (q, &a.ins, NULL, NULL));
  test_insert_init (&b, ID2, 200, one_rcpt, 1);
  b.ins.idempotency_key = "req-1";
  b.ins.fingerprint = "fp-other";
  assert_false (queue_insert (q, &b.ins, &existing, &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_CONFLICT));
  assert_null (existing);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites"), 1);
  test_insert_clear (&a);
  test_insert_clear (&b);
}

static void
test_claim_due (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GPtrArray) first = NULL, second = NULL, none = NULL;
  g_autoptr (GPtrArray) early = NULL, due = NULL;
  g_autoptr (QueueStatus) s = NULL;
  QueueResult res = { ID3, 0, RCPT_DEFERRED, 2000, "451 4.3.0 try later" };
  QueueJob *j;

  insert_ok (q, ID3, 300, one_rcpt, 1);
  insert_ok (q, ID1, 100, one_rcpt, 1);
  insert_ok (q, ID2, 200, one_rcpt, 1);
  first = claim (q, 1000, 2);
  assert_int_equal (first->len, 2);
  j = g_ptr_array_index (first, 0);
  assert_string_equal (j->invite_id, ID1);        /* oldest first */
  assert_string_equal (j->address, "cy@example.org");
  assert_string_equal (j->envelope_from, "noreply@example.org");
  assert_int_equal (j->attempts, 0);
  assert_int_equal (j->created, 100);
  assert_int_equal (j->expires, 100 + 86400);
  assert_string_equal (((QueueJob *) first->pdata[1])->invite_id, ID2);
  s = status_ok (q, ID1);
  assert_int_equal (rcpt_state (s, 0), RCPT_SENDING);
  assert_string_equal (s->state, "queued");       /* sending shows queued */
  second = claim (q, 1000, 10);
  assert_int_equal (second->len, 1);
  assert_string_equal (((QueueJob *) second->pdata[0])->invite_id, ID3);
  none = claim (q, 1000, 10);
  assert_int_equal (none->len, 0);
  /* A deferred recipient waits for its next_try. */
  assert_true (queue_record (q, &res, 1, 1000, NULL));
  assert_int_equal (queue_next_due (q, NULL), 2000);
  early = claim (q, 1999, 10);
  assert_int_equal (early->len, 0);
  due = claim (q, 2000, 10);
  assert_int_equal (due->len, 1);
  assert_int_equal (((QueueJob *) due->pdata[0])->attempts, 1);
}

/* Invite state from recipient states (queue.h, QueueStatus).  Queued
 * recipients come last: the first `claimed` are claimed in idx order,
 * then recorded unless "sending" is wanted. */
static const struct {
  const char *name;
  RcptState states[3];
  guint n;
  const char *expect;
} state_cases[] = {
  { "all sent", { RCPT_SENT, RCPT_SENT }, 2, "sent" },
  { "one still queued", { RCPT_SENT, RCPT_QUEUED }, 2, "queued" },
  { "one sending", { RCPT_SENDING, RCPT_DEFERRED }, 2, "queued" },
  { "sent and deferred", { RCPT_SENT, RCPT_DEFERRED }, 2, "deferred" },
  { "deferred beats failed", { RCPT_FAILED, RCPT_DEFERRED }, 2, "deferred" },
  { "sent and failed", { RCPT_SENT, RCPT_FAILED }, 2, "failed" },
  { "expired and sent", { RCPT_EXPIRED, RCPT_SENT }, 2, "failed" },
  { "all expired", { RCPT_EXPIRED }, 1, "failed" },
  { "mixed three", { RCPT_SENT, RCPT_FAILED, RCPT_QUEUED }, 3, "queued" },
};

static const char *const three_rcpts[] = {
  "a1@example.org", "a2@example.org", "a3@example.com"
};

static void
check_state_case (const char *path, guint c)
{
  g_autoptr (Queue) q = queue_open (path, NULL);
  g_autoptr (GPtrArray) jobs = NULL;
  g_autoptr (QueueStatus) s = NULL;
  guint claimed = 0;

  insert_ok (q, ID1, 100, three_rcpts, state_cases[c].n);
  while (claimed < state_cases[c].n
         && state_cases[c].states[claimed] != RCPT_QUEUED)
    claimed++;
  jobs = claim (q, 1000, claimed);
  for (guint i = 0; i < claimed; i++)
    {
      QueueResult r = { ID1, i, state_cases[c].states[i], 5000, "250 ok" };
      if (r.state != RCPT_SENDING)
        assert_true (queue_record (q, &r, 1, 1000, NULL));
    }
  s = status_ok (q, ID1);
  if (strcmp (s->state, state_cases[c].expect) != 0)
    fail_msg ("case '%s': state %s, expected %s", state_cases[c].name,
              s->state, state_cases[c].expect);
  for (guint i = 0; i < state_cases[c].n; i++)
    {
      QueueRcptStatus *r = g_ptr_array_index (s->recipients, i);
      assert_int_equal (r->state, state_cases[c].states[i]);
      assert_int_equal (r->next_try, r->state == RCPT_DEFERRED ? 5000 : 0);
      if (i < claimed && r->state != RCPT_SENDING)
        {
          assert_int_equal (r->attempts, 1);
          assert_string_equal (r->reply, "250 ok");
        }
    }
}

static void
test_state_rules (void **state)
{
  Fixture *fx = *state;

  for (guint c = 0; c < G_N_ELEMENTS (state_cases); c++)
    {
      g_autofree char *name = g_strdup_printf ("state-%u.db", c);
      g_autofree char *path = g_build_filename (fx->dir, name, NULL);
      check_state_case (path, c);
    }
}

static void
test_record_unknown_recipient (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GPtrArray) jobs = NULL;
  g_autoptr (QueueStatus) s = NULL;
  g_autoptr (GError) error = NULL;
  QueueResult res[2] = {
    { ID1, 0, RCPT_SENT, 0, "250 ok" },
    { ID1, 7, RCPT_SENT, 0, "250 ok" },   /* no such idx */
  };

  insert_ok (q, ID1, 100, two_rcpts, 2);
  jobs = claim (q, 1000, 10);
  assert_false (queue_record (q, res, 2, 1000, &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND));
  /* One transaction: the good half was not kept either. */
  s = status_ok (q, ID1);
  assert_int_equal (rcpt_state (s, 0), RCPT_SENDING);
}

static void
test_recover_after_crash (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) jobs = NULL, again = NULL, due = NULL;
  g_autoptr (QueueStatus) s = NULL;
  Queue *q = queue_open (fx->path, NULL);
  QueueJob *j;

  insert_ok (q, ID1, 100, two_rcpts, 2);
  insert_ok (q, ID2, 150, one_rcpt, 1);
  jobs = claim (q, 1000, 2);            /* ID1's two recipients */
  assert_int_equal (jobs->len, 2);
  queue_close (q);                      /* "crash": no record */
  g_clear_pointer (&jobs, g_ptr_array_unref);

  q = queue_open (fx->path, NULL);
  assert_non_null (q);
  jobs = queue_recover (q, 5000, NULL);
  assert_non_null (jobs);
  assert_int_equal (jobs->len, 2);
  j = g_ptr_array_index (jobs, 1);
  assert_string_equal (j->invite_id, ID1);
  assert_int_equal (j->idx, 1);
  assert_string_equal (j->address, "bo@example.com");
  s = status_ok (q, ID1);
  assert_string_equal (s->state, "deferred");
  assert_int_equal (((QueueRcptStatus *) s->recipients->pdata[0])->next_try,
                    5000);
  again = queue_recover (q, 6000, NULL);
  assert_int_equal (again->len, 0);
  due = claim (q, 5000, 10);
  assert_int_equal (due->len, 3);
  queue_close (q);
}

static void
test_survives_reopen (void **state)
{
  Fixture *fx = *state;
  g_autoptr (QueueStatus) s = NULL;
  g_autoptr (GBytes) msg = NULL;
  Queue *q = queue_open (fx->path, NULL);

  insert_ok (q, ID1, 100, two_rcpts, 2);
  queue_close (q);
  q = queue_open (fx->path, NULL);
  assert_non_null (q);
  s = status_ok (q, ID1);
  assert_int_equal (s->recipients->len, 2);
  msg = queue_message (q, ID1, NULL);
  assert_non_null (msg);
  queue_close (q);
}

static void
test_fail_commit (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) jobs = NULL;
  g_autoptr (QueueStatus) s = NULL;
  TestInsert t;

  test_insert_init (&t, ID1, 100, two_rcpts, 2);
  queue_set_fail_commit (q, TRUE);
  assert_false (queue_insert (q, &t.ins, NULL, &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_IO));
  g_clear_error (&error);
  queue_set_fail_commit (q, FALSE);
  assert_null (queue_status (q, ID1, NULL));
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites"), 0);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM recipients"),
                    0);
  /* After the failure the connection still works. */
  assert_true (queue_insert (q, &t.ins, NULL, NULL));
  queue_set_fail_commit (q, TRUE);
  assert_null (queue_claim_due (q, 1000, 10, &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_IO));
  queue_set_fail_commit (q, FALSE);
  s = status_ok (q, ID1);
  assert_int_equal (rcpt_state (s, 0), RCPT_QUEUED);
  jobs = claim (q, 1000, 10);
  assert_int_equal (jobs->len, 2);
  test_insert_clear (&t);
}

static void
test_insert_refuses_bad_values (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  static const char *const injected[] = {
    "x@example.org>\r\nRCPT TO:<y@example.com"
  };
  static const char *const spaced[] = { "a b@example.org" };
  static const char *const empty[] = { "" };
  const struct {
    const char *name, *id, *sha;
    const char *const *rcpts;
  } cases[] = {
    { "short id", "abc", NULL, one_rcpt },
    { "upper-case id", "AAAAAAAAAAAAAAAAAA01", NULL, one_rcpt },
    { "CRLF in address", ID1, NULL, injected },
    { "space in address", ID1, NULL, spaced },
    { "empty address", ID1, NULL, empty },
    { "wrong message hash", ID1, "00", one_rcpt },
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (GError) error = NULL;
      TestInsert t;

      test_insert_init (&t, cases[c].id, 100, cases[c].rcpts, 1);
      if (cases[c].sha != NULL)
        t.ins.message_sha256 = cases[c].sha;
      if (queue_insert (q, &t.ins, NULL, &error))
        fail_msg ("case '%s' was stored", cases[c].name);
      assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_CORRUPT));
      test_insert_clear (&t);
    }
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites"), 0);
}

/* Rows damaged on disk; the call named must answer CORRUPT. */
enum { OP_STATUS, OP_CLAIM, OP_MESSAGE, OP_RECOVER };
static const struct {
  const char *name;
  const char *sql;
  int op;
} corrupt_cases[] = {
  { "unknown state", "UPDATE recipients SET state = 'bogus'", OP_STATUS },
  { "CRLF in address",
    "UPDATE recipients SET address = 'x@example.org>' || char(13,10) ||"
    " 'RCPT TO:<y@example.com'", OP_CLAIM },
  { "address not text",
    "UPDATE recipients SET address = CAST('a@example.org' AS BLOB)",
    OP_STATUS },
  { "address without @", "UPDATE recipients SET address = 'nobody'",
    OP_CLAIM },
  { "empty address", "UPDATE recipients SET address = ''", OP_CLAIM },
  { "negative attempts", "UPDATE recipients SET attempts = -1", OP_STATUS },
  { "bad invite id",
    "UPDATE recipients SET invite_id = 'X';"
    "UPDATE invites SET id = 'X'", OP_CLAIM },
  { "message changed", "UPDATE invites SET message = x'00'", OP_MESSAGE },
  { "message not a blob", "UPDATE invites SET message = 'text'", OP_MESSAGE },
  { "sending with bad sender",
    "UPDATE recipients SET state = 'sending';"
    "UPDATE invites SET envelope_from = 'a b'", OP_RECOVER },
  { "no recipients", "DELETE FROM recipients", OP_STATUS },
};

static gboolean
run_corrupt_op (Queue *q, int op, GError **error)
{
  g_autoptr (QueueStatus) s = NULL;
  g_autoptr (GPtrArray) jobs = NULL;
  g_autoptr (GBytes) msg = NULL;

  switch (op)
    {
    case OP_STATUS:
      return (s = queue_status (q, ID1, error)) != NULL;
    case OP_CLAIM:
      return (jobs = queue_claim_due (q, 1000, 10, error)) != NULL;
    case OP_MESSAGE:
      return (msg = queue_message (q, ID1, error)) != NULL;
    default:
      return (jobs = queue_recover (q, 1000, error)) != NULL;
    }
}

static void
test_corrupt_rows (void **state)
{
  Fixture *fx = *state;

  for (guint c = 0; c < G_N_ELEMENTS (corrupt_cases); c++)
    {
      g_autofree char *name = g_strdup_printf ("corrupt-%u.db", c);
      g_autofree char *path = g_build_filename (fx->dir, name, NULL);
      g_autofree char *sql = g_strdup_printf (
        "PRAGMA ignore_check_constraints=ON; %s", corrupt_cases[c].sql);
      g_autoptr (Queue) q = queue_open (path, NULL);
      g_autoptr (GError) error = NULL;

      insert_ok (q, ID1, 100, one_rcpt, 1);
      testutil_sql (path, sql);
      if (run_corrupt_op (q, corrupt_cases[c].op, &error))
        fail_msg ("case '%s' was accepted", corrupt_cases[c].name);
      if (!g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_CORRUPT))
        fail_msg ("case '%s': %s", corrupt_cases[c].name,
                  error ? error->message : "no error");
    }
}

static void
test_schema_too_new (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  Queue *q = queue_open (fx->path, NULL);

  queue_close (q);
  testutil_sql (fx->path, "PRAGMA user_version = 99");
  assert_null (queue_open (fx->path, &error));
  assert_non_null (error);
  assert_non_null (strstr (error->message, "99"));
}

/* A version 1 queue (recipients_due, no recipients_sending) is brought
 * to version 2 on open, and what was in flight is still found. */
static void
test_schema_upgrade_from_1 (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) jobs = NULL;
  g_autoptr (GPtrArray) back = NULL;
  Queue *q = queue_open (fx->path, NULL);

  insert_ok (q, ID1, 100, one_rcpt, 1);
  jobs = claim (q, 5000, 10);
  assert_int_equal (jobs->len, 1);
  queue_close (q);
  testutil_sql (fx->path, "DROP INDEX recipients_sending;"
                "CREATE INDEX recipients_due ON recipients (state, next_try);"
                "PRAGMA user_version = 1");
  q = queue_open (fx->path, NULL);
  assert_non_null (q);
  back = queue_recover (q, 6000, NULL);
  assert_non_null (back);
  assert_int_equal (back->len, 1);
  queue_close (q);
  assert_int_equal (raw_count (fx->path, "SELECT user_version FROM pragma_user_version"), 6);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM sqlite_master"
                               " WHERE type = 'index' AND name = 'recipients_sending'"), 1);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM sqlite_master"
                               " WHERE type = 'index' AND name = 'recipients_due'"), 0);
}

/* A version 2 queue (no `unit` column) gets the column on open and
 * keeps its invites; the unit given with an invite is stored. */
static void
test_schema_upgrade_from_2 (void **state)
{
  Fixture *fx = *state;
  Queue *q = queue_open (fx->path, NULL);

  insert_ok (q, ID1, 100, one_rcpt, 1);
  queue_close (q);
  testutil_sql (fx->path, "ALTER TABLE invites DROP COLUMN unit;"
                "ALTER TABLE invites DROP COLUMN message_id;"
                "PRAGMA user_version = 2");
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM pragma_table_info('invites')"
                               " WHERE name = 'unit'"), 0);
  q = queue_open (fx->path, NULL);
  assert_non_null (q);
  insert_ok (q, ID2, 200, one_rcpt, 1);
  queue_close (q);
  assert_int_equal (raw_count (fx->path, "SELECT user_version FROM pragma_user_version"), 6);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites"
                               " WHERE unit IS NULL"), 1);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites"
                               " WHERE unit = 'Avd 4'"), 1);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites WHERE message_id"
                               " = '0123456789abcdefghijklmnop@example.org'"), 1);
}

/* Version 6: every recipient gets its own random return token, each
 * job carries it, a DSN is recorded on the token's recipient and shown
 * as bounced/delayed, and health counts it. */
static void
test_return_tokens_and_dsn (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GPtrArray) jobs = NULL;
  g_autoptr (QueueTokenOwner) owner = NULL;
  g_autoptr (QueueStatus) s = NULL;
  g_autoptr (GError) error = NULL;
  QueueResult res[3];
  QueueHealth h;
  const QueueJob *j0, *j1;

  insert_ok (q, ID1, 100, three_rcpts, 3);
  jobs = claim (q, 1000, 10);
  assert_int_equal (jobs->len, 3);
  j0 = jobs->pdata[0];
  j1 = jobs->pdata[1];
  assert_true (queue_token_ok (j0->return_token));
  assert_true (queue_token_ok (j1->return_token));
  assert_string_not_equal (j0->return_token, j1->return_token);
  assert_null (strstr (j0->return_token, ID1));
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(DISTINCT return_token)"
                               " FROM recipients"), 3);
  /* Not handed to the relay yet: the owner shows `sending`. */
  owner = queue_token_find (q, j1->return_token, NULL);
  assert_non_null (owner);
  assert_int_equal (owner->state, RCPT_SENDING);
  g_clear_pointer (&owner, queue_token_owner_free);
  for (guint i = 0; i < 3; i++)
    res[i] = (QueueResult) { ID1, i, i == 2 ? RCPT_FAILED : RCPT_SENT, 0, "250 ok" };
  assert_true (queue_record (q, res, 3, 1000, NULL));
  owner = queue_token_find (q, j1->return_token, NULL);
  assert_non_null (owner);
  assert_string_equal (owner->invite_id, ID1);
  assert_int_equal (owner->idx, 1);
  assert_string_equal (owner->address, three_rcpts[1]);
  assert_int_equal (owner->state, RCPT_SENT);
  assert_null (owner->dsn_action);
  /* Unknown and malformed tokens are not found. */
  assert_null (queue_token_find (q, "0123456789abcdefghijklmnop", &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND));
  g_clear_error (&error);
  assert_null (queue_token_find (q, "x' OR 1=1 --", &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND));
  g_clear_error (&error);
  /* Delayed first: shown, not final. */
  assert_true (queue_record_dsn (q, ID1, 0, "delayed", "4.4.1", "timed out", 1100, NULL));
  s = status_ok (q, ID1);
  assert_int_equal (rcpt_state (s, 0), RCPT_DELAYED);
  assert_string_equal (s->state, "failed");   /* the third one failed */
  g_clear_pointer (&s, queue_status_free);
  assert_true (queue_record_dsn (q, ID1, 1, "failed", "5.1.1",
                                 "smtp; 550 5.1.1 unknown", 1200, NULL));
  s = status_ok (q, ID1);
  assert_int_equal (rcpt_state (s, 1), RCPT_BOUNCED);
  assert_string_equal (((QueueRcptStatus *) s->recipients->pdata[1])->reply,
                       "5.1.1 smtp; 550 5.1.1 unknown");
  assert_string_equal (((QueueRcptStatus *) s->recipients->pdata[1])->dsn_status, "5.1.1");
  /* Bad values are refused, not stored. */
  assert_false (queue_record_dsn (q, ID1, 1, "delivered", "2.0.0", NULL, 1300, &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_CORRUPT));
  g_clear_error (&error);
  assert_false (queue_record_dsn (q, ID1, 1, "failed", "5.1.1", "a\nb", 1300, &error));
  g_clear_error (&error);
  assert_false (queue_record_dsn (q, ID1, 7, "failed", "5.1.1", NULL, 1300, &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND));
  g_clear_error (&error);
  /* A DSN stored on a recipient that was never sent reads as corrupt. */
  testutil_sql (fx->path, "UPDATE recipients SET dsn_action = 'failed',"
                " dsn_status = '5.1.1' WHERE idx = 2");
  assert_null (queue_status (q, ID1, &error));
  assert_true (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_CORRUPT));
  g_clear_error (&error);
  testutil_sql (fx->path, "UPDATE recipients SET dsn_action = NULL, dsn_status = NULL"
                " WHERE idx = 2");
  /* Health: 2 sent, 1 failed, 1 bounced in the hour before 1500. */
  assert_true (queue_health (q, 1500, &h, NULL));
  assert_int_equal (h.pending, 0);
  assert_int_equal (h.sent_hour, 2);
  assert_int_equal (h.failed_hour, 1);
  assert_int_equal (h.bounced_hour, 1);
  assert_int_equal (h.last_sent, 1000);
  assert_int_equal (h.oldest_deferred_created, 0);
  assert_true (queue_health (q, 1200 + 3601, &h, NULL));
  assert_int_equal (h.sent_hour, 0);
  assert_int_equal (h.bounced_hour, 0);
}

/* A version 5 queue (no return tokens) gets the columns and the index on
 * open; its recipients keep no token (their jobs carry NULL: the plain
 * envelope sender), new ones get one. */
static void
test_schema_upgrade_from_5 (void **state)
{
  Fixture *fx = *state;
  Queue *q = queue_open (fx->path, NULL);
  g_autoptr (GPtrArray) jobs = NULL;
  QueueHealth h;

  insert_ok (q, ID1, 100, one_rcpt, 1);
  queue_close (q);
  testutil_sql (fx->path, "DROP INDEX recipients_token;"
                "ALTER TABLE recipients DROP COLUMN return_token;"
                "ALTER TABLE recipients DROP COLUMN dsn_action;"
                "ALTER TABLE recipients DROP COLUMN dsn_status;"
                "ALTER TABLE recipients DROP COLUMN dsn_diag;"
                "ALTER TABLE recipients DROP COLUMN dsn_time;"
                "PRAGMA user_version = 5");
  q = queue_open (fx->path, NULL);
  assert_non_null (q);
  insert_ok (q, ID2, 200, one_rcpt, 1);
  jobs = claim (q, 1000, 10);
  assert_int_equal (jobs->len, 2);
  assert_null (((QueueJob *) jobs->pdata[0])->return_token);
  assert_true (queue_token_ok (((QueueJob *) jobs->pdata[1])->return_token));
  assert_true (queue_health (q, 1000, &h, NULL));
  assert_int_equal (h.pending, 2);
  queue_close (q);
  assert_int_equal (raw_count (fx->path, "SELECT user_version FROM pragma_user_version"), 6);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM sqlite_master"
                               " WHERE type = 'index' AND name = 'recipients_token'"), 1);
}

/* db.h's checkpointer: the watched connection's commits wake it once
 * the WAL holds DB_CHECKPOINT_PAGES, and it copies the WAL into the
 * database file. */
static void
test_checkpointer (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  sqlite3 *db = db_open (fx->path, &error);
  DbCheckpointer *c = db_checkpointer_start (fx->path, &error);
  gint64 until = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  GStatBuf st;

  assert_non_null (db);
  assert_non_null (c);
  db_checkpointer_watch (c, db);
  assert_true (db_exec (db, "CREATE TABLE t (x BLOB)", &error));
  assert_true (g_stat (fx->path, &st) == 0);
  assert_true (st.st_size < 64 * 1024);   /* everything is still in the WAL */
  for (guint i = 0; i < DB_CHECKPOINT_PAGES / 4 + 50; i++)
    assert_true (db_exec (db, "BEGIN IMMEDIATE;"
                          "INSERT INTO t VALUES (zeroblob(4000)), (zeroblob(4000)),"
                          " (zeroblob(4000)), (zeroblob(4000)), (zeroblob(4000));"
                          "COMMIT", &error));
  while (db_checkpointer_runs (c) == 0 && g_get_monotonic_time () < until)
    g_usleep (10000);
  assert_true (db_checkpointer_runs (c) >= 1);
  assert_true (g_stat (fx->path, &st) == 0);
  assert_true (st.st_size > (goffset) DB_CHECKPOINT_PAGES * 4000);
  sqlite3_close_v2 (db);
  db_checkpointer_stop (c);
}

/* Counts the warnings that name the WAL's size. */
static guint wal_warnings;

static GLogWriterOutput
count_wal_warnings (GLogLevelFlags level, const GLogField *fields, gsize n,
                    gpointer data)
{
  for (gsize i = 0; i < n; i++)
    if ((level & G_LOG_LEVEL_WARNING) && strcmp (fields[i].key, "MESSAGE") == 0
        && strstr (fields[i].value, "MiB, over its limit") != NULL)
      wal_warnings++;
  return g_log_writer_default (level, fields, n, data);
}

static void
write_blobs (sqlite3 *db, guint commits)
{
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < commits; i++)
    assert_true (db_exec (db, "BEGIN IMMEDIATE;"
                          "INSERT INTO t VALUES (zeroblob(4000)), (zeroblob(4000));"
                          "COMMIT", &error));
}

static gint64
wal_size (const char *path)
{
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  GStatBuf st;

  return g_stat (wal, &st) == 0 ? (gint64) st.st_size : 0;
}

/*
 * The checkpointer runs once per DB_CHECKPOINT_PAGES frames the WAL
 * gained, not after every commit once the WAL is that long.  A reader
 * that starts a new read transaction after each commit lets every
 * checkpoint copy the whole WAL yet keeps the writer from resetting it
 * (what a writer that never pauses does too): the WAL only grows.
 * Before, each of these commits woke a checkpoint and its fsyncs.
 */
static void
test_checkpointer_not_every_commit (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  sqlite3 *db = db_open (fx->path, &error);
  sqlite3 *reader = NULL;
  sqlite3_stmt *st = NULL;
  DbCheckpointer *c = db_checkpointer_start (fx->path, &error);
  const guint commits = 400;
  gint64 frames;
  guint runs;

  assert_non_null (db);
  assert_non_null (c);
  db_checkpointer_watch (c, db);
  assert_true (db_exec (db, "CREATE TABLE t (x BLOB)", &error));
  reader = db_open_readonly (fx->path, &error);
  assert_non_null (reader);
  assert_int_equal (sqlite3_prepare_v2 (reader, "SELECT count(*) FROM t", -1, &st,
                                        NULL), SQLITE_OK);
  for (guint i = 0; i < commits; i++)
    {
      assert_true (db_exec (db, "INSERT INTO t VALUES (zeroblob(100))", &error));
      /* A snapshot at the newest frame: checkpoints may copy it all. */
      sqlite3_reset (st);
      assert_int_equal (sqlite3_step (st), SQLITE_ROW);
      /* Let a woken checkpointer finish before the next commit. */
      g_usleep (2000);
    }
  frames = wal_size (fx->path) / (4096 + 24);
  runs = db_checkpointer_runs (c);
  assert_true (frames >= commits);   /* never reset: one frame or more each */
  assert_true (runs >= 1);
  assert_true (runs <= frames / DB_CHECKPOINT_PAGES + 1);
  sqlite3_finalize (st);
  sqlite3_close_v2 (reader);
  sqlite3_close_v2 (db);
  db_checkpointer_stop (c);
}

/* The checkpointer bounds the WAL: a reader holding an old snapshot
 * lets it grow past the limit (warned about, with the size); once that
 * reader is gone, a TRUNCATE checkpoint brings it back under. */
static void
test_checkpointer_bounds_wal (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  sqlite3 *db = db_open (fx->path, &error);
  sqlite3 *reader = NULL;
  sqlite3_stmt *st = NULL;
  DbCheckpointer *c = db_checkpointer_start (fx->path, &error);
  const gint64 limit = 1024 * 1024;
  gint64 until = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  assert_non_null (db);
  assert_non_null (c);
  wal_warnings = 0;
  db_checkpointer_set_wal_limit (c, limit);
  db_checkpointer_watch (c, db);
  assert_true (db_exec (db, "CREATE TABLE t (x BLOB)", &error));
  write_blobs (db, 10);
  /* A reader paused in the middle of its rows: one open snapshot. */
  reader = db_open_readonly (fx->path, &error);
  assert_non_null (reader);
  assert_int_equal (sqlite3_prepare_v2 (reader, "SELECT x FROM t", -1, &st, NULL),
                    SQLITE_OK);
  assert_int_equal (sqlite3_step (st), SQLITE_ROW);
  write_blobs (db, 600);      /* about 5 MiB of WAL */
  while (wal_warnings == 0 && g_get_monotonic_time () < until)
    g_usleep (10000);
  assert_true (wal_size (fx->path) > limit);
  assert_true (wal_warnings >= 1);
  assert_int_equal (db_checkpointer_truncates (c), 0);
  /* The reader goes: the next checkpoint resets the WAL. */
  sqlite3_finalize (st);
  sqlite3_close_v2 (reader);
  while (db_checkpointer_truncates (c) == 0 && g_get_monotonic_time () < until)
    write_blobs (db, 20);
  assert_true (db_checkpointer_truncates (c) >= 1);
  assert_true (wal_size (fx->path) < limit);
  sqlite3_close_v2 (db);
  db_checkpointer_stop (c);
}

/* A writer that holds the write lock for most of the time, as the
 * committer does under a steady stream of requests. */
static gpointer
busy_writer (gpointer data)
{
  sqlite3 *db = data;

  for (guint i = 0; i < 300; i++)
    {
      if (!db_exec (db, "BEGIN IMMEDIATE;"
                    "INSERT INTO t VALUES (zeroblob(4000)), (zeroblob(4000));", NULL))
        return GINT_TO_POINTER (FALSE);
      g_usleep (3000);
      if (!db_exec (db, "COMMIT", NULL))
        return GINT_TO_POINTER (FALSE);
    }
  return GINT_TO_POINTER (TRUE);
}

/* A WAL over its limit only because the writer is always in a commit
 * is no reader holding a snapshot: no warning says so (before, every
 * TRUNCATE that met the writer's lock logged that a reader held an old
 * snapshot), and once the writer pauses the WAL is reset. */
static void
test_checkpointer_busy_writer_no_warning (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  sqlite3 *db = db_open (fx->path, &error);
  DbCheckpointer *c = db_checkpointer_start (fx->path, &error);
  const gint64 limit = 1024 * 1024;
  gint64 until = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  GThread *writer;

  assert_non_null (db);
  assert_non_null (c);
  wal_warnings = 0;
  db_checkpointer_set_wal_limit (c, limit);
  db_checkpointer_watch (c, db);
  assert_true (db_exec (db, "CREATE TABLE t (x BLOB)", &error));
  writer = g_thread_new ("writer", busy_writer, db);
  assert_true (GPOINTER_TO_INT (g_thread_join (writer)));
  assert_true (db_checkpointer_runs (c) >= 2);
  assert_int_equal (wal_warnings, 0);
  /* The writer pauses between commits: the WAL is reset. */
  while (db_checkpointer_truncates (c) == 0 && g_get_monotonic_time () < until)
    write_blobs (db, 20);
  assert_true (db_checkpointer_truncates (c) >= 1);
  assert_int_equal (wal_warnings, 0);
  sqlite3_close_v2 (db);
  db_checkpointer_stop (c);
}

/* A reader as the delivery workers are: short read transactions, one
 * after the other, until told to stop. */
typedef struct {
  const char *path;
  gint stop;
  guint reads;
} ShortReader;

static gpointer
short_reader (gpointer data)
{
  ShortReader *r = data;
  sqlite3 *db = db_open_readonly (r->path, NULL);
  sqlite3_stmt *st = NULL;

  if (db == NULL || sqlite3_prepare_v2 (db, "SELECT count(*) FROM t", -1, &st,
                                        NULL) != SQLITE_OK)
    return GINT_TO_POINTER (FALSE);
  while (!g_atomic_int_get (&r->stop))
    {
      if (sqlite3_step (st) != SQLITE_ROW)
        break;
      g_usleep (500);          /* the snapshot is held meanwhile */
      sqlite3_reset (st);
      r->reads++;
      g_usleep (100);
    }
  sqlite3_finalize (st);
  sqlite3_close_v2 (db);
  return GINT_TO_POINTER (TRUE);
}

/*
 * A reader that is nearly always in a short read transaction keeps the
 * writer from resetting the WAL even though each checkpoint copies it
 * all.  Before, the WAL then grew to its limit (32 MiB) and was
 * truncated, and grew again, every commit writing the file's new size
 * too.  Now a WAL of DB_RESTART_PAGES frames is made to start again
 * from its beginning: it stays near that length, with no TRUNCATE.
 */
static void
test_checkpointer_restarts_long_wal (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  sqlite3 *db = db_open (fx->path, &error);
  DbCheckpointer *c = db_checkpointer_start (fx->path, &error);
  ShortReader r = { fx->path, 0, 0 };
  const gint64 frame = 4096 + 24;
  /* Twice the length: the checkpointer runs beside the writer, late on
   * a busy machine; without the RESTART the WAL reaches 4 times it. */
  const gint64 bound = 2 * DB_RESTART_PAGES * frame;
  gint64 largest = 0;
  GThread *reader;

  assert_non_null (db);
  assert_non_null (c);
  db_checkpointer_set_wal_limit (c, (gint64) 256 * 1024 * 1024);
  db_checkpointer_watch (c, db);
  assert_true (db_exec (db, "CREATE TABLE t (x BLOB)", &error));
  reader = g_thread_new ("reader", short_reader, &r);
  /* Three commits of 2-3 frames each per pass: about 4 times
   * DB_RESTART_PAGES frames in all. */
  for (guint i = 0; i < DB_RESTART_PAGES / 2; i++)
    {
      write_blobs (db, 3);
      largest = MAX (largest, wal_size (fx->path));
    }
  g_atomic_int_set (&r.stop, 1);
  assert_true (GPOINTER_TO_INT (g_thread_join (reader)));
  assert_true (r.reads > 0);
  assert_true (db_checkpointer_restarts (c) >= 1);
  assert_int_equal (db_checkpointer_truncates (c), 0);
  assert_true (largest <= bound);
  sqlite3_close_v2 (db);
  db_checkpointer_stop (c);
}

static void
test_many_inserts (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GPtrArray) jobs = NULL;
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < 1000; i++)
    {
      g_autofree char *id = g_strdup_printf ("bbbbbbbbbbbbbbb%05u", i);
      insert_ok (q, id, 100 + i, one_rcpt, 1);
    }
  jobs = claim (q, 5000, 5000);
  assert_int_equal (jobs->len, 1000);
  assert_string_equal (((QueueJob *) jobs->pdata[0])->invite_id,
                       "bbbbbbbbbbbbbbb00000");
  assert_string_equal (((QueueJob *) jobs->pdata[999])->invite_id,
                       "bbbbbbbbbbbbbbb00999");
  /* Sanity, not a benchmark: 1000 fsynced commits well under a minute. */
  assert_true (g_get_monotonic_time () - start < 60 * G_USEC_PER_SEC);
}

/* db.c: the per-connection settings the durability promise rests on. */
static void
test_db_settings (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  g_autofree char *missing = g_build_filename (fx->dir, "none.db", NULL);
  sqlite3 *db = db_open (fx->path, &error);
  sqlite3 *ro;

  assert_non_null (db);
  assert_int_equal (pragma_int (db, "PRAGMA synchronous"), 2);   /* FULL */
  assert_int_equal (pragma_int (db, "PRAGMA foreign_keys"), 1);
  assert_int_equal (pragma_int (db, "PRAGMA trusted_schema"), 0);
  assert_int_equal (pragma_int (db, "SELECT journal_mode = 'wal' FROM"
                                    " pragma_journal_mode"), 1);
  ro = db_open_readonly (fx->path, &error);
  assert_non_null (ro);
  assert_int_equal (pragma_int (ro, "PRAGMA query_only"), 1);
  assert_false (db_exec (ro, "CREATE TABLE t (x)", &error));
  assert_true (g_error_matches (error, DB_ERROR, DB_ERROR_IO));
  g_clear_error (&error);
  sqlite3_close_v2 (ro);
  sqlite3_close_v2 (db);
  assert_null (db_open_readonly (missing, &error));
  assert_true (g_error_matches (error, DB_ERROR, DB_ERROR_OPEN));
  assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));
}

/* ---- retention ------------------------------------------------------- */

#define ID4 "aaaaaaaaaaaaaaaaaa04"

/* Claims every due recipient at now and gives them states in order. */
static void
finish_all (Queue *q, gint64 now, const RcptState *states, guint n)
{
  g_autoptr (GPtrArray) jobs = claim (q, now, 100);
  g_autoptr (GArray) res = g_array_new (FALSE, TRUE, sizeof (QueueResult));

  assert_int_equal (jobs->len, n);
  for (guint i = 0; i < jobs->len; i++)
    {
      QueueJob *j = g_ptr_array_index (jobs, i);
      QueueResult r = { j->invite_id, j->idx, states[i], now + 100000, "250 ok" };
      g_array_append_val (res, r);
    }
  assert_true (queue_record (q, (QueueResult *) (void *) res->data, res->len,
                             now, NULL));
}

static void
test_purge_finished (void **state)
{
  Fixture *fx = *state;
  g_autoptr (Queue) q = queue_open (fx->path, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *existing = NULL;
  static const RcptState sent_failed_sent[] = { RCPT_SENT, RCPT_SENT, RCPT_FAILED,
                                               RCPT_SENT, RCPT_DEFERRED };
  static const RcptState sent[] = { RCPT_SENT };
  QueuePurged p = { 0 };
  TestInsert t;

  /* ID1: two sent; ID2 (with a key): failed; ID3: one still deferred;
   * all finished at 200.  ID4: finished at 2000, after the cutoff. */
  insert_ok (q, ID1, 100, two_rcpts, 2);
  test_insert_init (&t, ID2, 101, one_rcpt, 1);
  t.ins.idempotency_key = "req-2";
  assert_true (queue_insert (q, &t.ins, NULL, NULL));
  insert_ok (q, ID3, 102, two_rcpts, 2);
  finish_all (q, 200, sent_failed_sent, 5);
  insert_ok (q, ID4, 103, one_rcpt, 1);
  finish_all (q, 2000, sent, 1);

  assert_int_equal (queue_purge (q, 1000, 10, &p, &error), 2);
  assert_null (error);
  assert_int_equal (p.invites, 2);
  assert_int_equal (p.recipients, 3);
  assert_int_equal (p.tombstones, 1);
  assert_int_equal (p.tags->len, 3);
  assert_string_equal (g_ptr_array_index (p.tags, 0), ID1 ".0");
  assert_string_equal (g_ptr_array_index (p.tags, 2), ID2 ".0");
  assert_null (queue_status (q, ID1, NULL));
  queue_status_free (status_ok (q, ID3));
  queue_status_free (status_ok (q, ID4));
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM invites"), 3);
  assert_int_equal (raw_count (fx->path, "SELECT COUNT(*) FROM recipients"
                                         " WHERE invite_id IN ('" ID1 "','" ID2 "')"), 0);
  /* The tombstone holds no message, staff, booking or sender. */
  assert_int_equal (raw_count (fx->path, "SELECT length (message) + (staff IS NULL)"
                               " + (booking IS NULL) + length (envelope_from)"
                               " FROM invites WHERE id = '" ID2 "'"), 2);
  /* A late repeat of the key is still answered with the first id. */
  test_insert_clear (&t);
  test_insert_init (&t, ID2 "x", 3000, one_rcpt, 1);
  t.ins.id = "aaaaaaaaaaaaaaaaaa05";
  t.ins.idempotency_key = "req-2";
  assert_true (queue_insert (q, &t.ins, &existing, NULL));
  assert_string_equal (existing, ID2);
  test_insert_clear (&t);
  /* Nothing more to purge; tombstones are not counted again. */
  queue_purged_clear (&p);
  assert_int_equal (queue_purge (q, 1000, 10, &p, &error), 0);
  assert_int_equal (p.invites, 0);
  queue_purged_clear (&p);
  /* secure_delete: the message bytes left the file itself. */
  g_clear_pointer (&q, queue_close);
  assert_false (testutil_file_holds (fx->path, "invite " ID1));
  assert_true (testutil_file_holds (fx->path, "invite " ID3));
}

/* Erasure finds one mailbox however its domain is written (case,
 * U-label or A-label: envelope_same_address), never another local part. */
static void
test_erase_address_forms (void **state)
{
  static const char *const rcpts[] = { "ann@xn--exmple-cua.se", "Ann@xn--exmple-cua.se" };
  static const struct { const char *asked; gint erased; } cases[] = {
    { "ann@xn--exmple-cua.se", 1 },
    { "ann@XN--EXMPLE-CUA.SE", 1 },
    { "ann@ex\xc3\xa4mple.se", 1 },
    { "ann@EX\xc3\x84MPLE.se", 1 },
    { "ANN@xn--exmple-cua.se", 0 },   /* the local part as written */
    { "ann@example.se", 0 },
  };
  Fixture *fx = *state;

  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (Queue) q = NULL;
      g_autoptr (GPtrArray) tags = g_ptr_array_new_with_free_func (g_free);
      g_autoptr (GError) error = NULL;
      gint n;

      g_unlink (fx->path);
      q = queue_open (fx->path, NULL);
      assert_non_null (q);
      insert_ok (q, ID1, 100, rcpts, 2);
      for (guint i = 0; i < 2; i++)
        {
          QueueResult r = { ID1, i, RCPT_SENT, 0, "250 ok" };
          assert_true (queue_record (q, &r, 1, 1000, NULL));
        }
      n = queue_erase_address (q, cases[c].asked, tags, &error);
      if (n != cases[c].erased || error != NULL)
        fail_msg ("case %zu (%s): erased %d", c, cases[c].asked, n);
      g_clear_pointer (&q, queue_close);
      g_autofree char *wal = g_strconcat (fx->path, "-wal", NULL);
      g_autofree char *shm = g_strconcat (fx->path, "-shm", NULL);
      g_unlink (wal);
      g_unlink (shm);
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_db_settings, setup, teardown),
    cmocka_unit_test_setup_teardown (test_checkpointer_bounds_wal, setup, teardown),
    cmocka_unit_test_setup_teardown (test_checkpointer_busy_writer_no_warning, setup,
                                     teardown),
    cmocka_unit_test_setup_teardown (test_insert_and_status, setup, teardown),
    cmocka_unit_test_setup_teardown (test_erase_address_forms, setup, teardown),
    cmocka_unit_test_setup_teardown (test_status_not_found, setup, teardown),
    cmocka_unit_test_setup_teardown (test_idempotent_repeat, setup, teardown),
    cmocka_unit_test_setup_teardown (test_idempotent_key_per_uid, setup, teardown),
    cmocka_unit_test_setup_teardown (test_count_undelivered, setup, teardown),
    cmocka_unit_test_setup_teardown (test_schema_upgrade_keys_scoped, setup, teardown),
    cmocka_unit_test_setup_teardown (test_idempotent_conflict, setup,
                                     teardown),
    cmocka_unit_test_setup_teardown (test_claim_due, setup, teardown),
    cmocka_unit_test_setup_teardown (test_state_rules, setup, teardown),
    cmocka_unit_test_setup_teardown (test_record_unknown_recipient, setup,
                                     teardown),
    cmocka_unit_test_setup_teardown (test_recover_after_crash, setup,
                                     teardown),
    cmocka_unit_test_setup_teardown (test_survives_reopen, setup, teardown),
    cmocka_unit_test_setup_teardown (test_fail_commit, setup, teardown),
    cmocka_unit_test_setup_teardown (test_insert_refuses_bad_values, setup,
                                     teardown),
    cmocka_unit_test_setup_teardown (test_corrupt_rows, setup, teardown),
    cmocka_unit_test_setup_teardown (test_schema_too_new, setup, teardown),
    cmocka_unit_test_setup_teardown (test_schema_upgrade_from_1, setup, teardown),
    cmocka_unit_test_setup_teardown (test_schema_upgrade_from_2, setup, teardown),
    cmocka_unit_test_setup_teardown (test_schema_upgrade_from_5, setup, teardown),
    cmocka_unit_test_setup_teardown (test_return_tokens_and_dsn, setup, teardown),
    cmocka_unit_test_setup_teardown (test_checkpointer, setup, teardown),
    cmocka_unit_test_setup_teardown (test_checkpointer_not_every_commit, setup, teardown),
    cmocka_unit_test_setup_teardown (test_checkpointer_restarts_long_wal, setup,
                                     teardown),
    cmocka_unit_test_setup_teardown (test_many_inserts, setup, teardown),
    cmocka_unit_test_setup_teardown (test_purge_finished, setup, teardown),
  };

  /* Once per process (GLib's rule); it forwards to the default. */
  g_log_set_writer_func (count_wal_warnings, NULL, NULL);
  return cmocka_run_group_tests (tests, NULL, NULL);
}
