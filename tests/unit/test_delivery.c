/*
 * test_delivery.c - the delivery workers (delivery.h) on a real SQLite
 * queue and audit file, with the file transport writing into a
 * temporary outbox: recipients are claimed, delivered, recorded in the
 * queue and the audit; past their deadline they expire unsent; an
 * outbox that is gone defers them with backoff; a crash's `sending`
 * recipients wait for delivery_recover; the committer wakes a worker;
 * a stopped worker takes nothing more.  Against a slow relay on
 * loopback (tests/system/smtpd.py; skipped without aiosmtpd), each
 * outcome is recorded while its batch still runs, and none without its
 * audit row.
 *
 * Only the public headers are used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "audit_read.h"
#include "commit.h"
#include "config.h"
#include "delivery.h"
#include "queue.h"

static const char body[] =
  "From: Region Exempel <evisit@example.org>\r\n"
  "Subject: Inbjudan\r\n"
  "\r\n"
  "Inbjudan till ett videomöte\r\n";

typedef struct {
  TestDaemon *d;              /* d->queue is the test's own connection */
  char *outbox;
  Delivery *delivery;
  guint next_id;
} Fixture;

static int
setup (void **state)
{
  Fixture *f = g_new0 (Fixture, 1);

  f->d = testutil_daemon_new ("imdeliv-XXXXXX",
                              "[daemon]\nqueue_db = queue.db\naudit_db = audit.db\n"
                              "[transport]\ntype = file\noutbox_dir = outbox\n"
                              "[retry]\nfirst_delay = 60\n");
  f->outbox = g_build_filename (f->d->dir, "outbox", NULL);
  assert_string_equal (f->d->cfg->outbox_dir, f->outbox);
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  Fixture *f = *state;

  delivery_stop (f->delivery);
  testutil_daemon_free (f->d);
  g_free (f->outbox);
  g_free (f);
  return 0;
}

/* Stores an invite with n recipients guest0@example.com...; returns
 * its id (transfer full). */
static char *
insert (Fixture *f, guint n, gint64 expires)
{
  g_autoptr (GBytes) msg = g_bytes_new_static (body, sizeof body - 1);
  g_autoptr (GPtrArray) rcpts = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                      (const guchar *) body,
                                                      sizeof body - 1);
  g_autoptr (GError) error = NULL;
  char *id = g_strdup_printf ("d%019u", ++f->next_id);
  char *existing = NULL;
  QueueInsert ins = { 0 };

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (rcpts, g_strdup_printf ("guest%u@example.com", i));
  ins.id = id;
  ins.created = g_get_real_time () / G_USEC_PER_SEC - 5;
  ins.expires = expires;
  ins.peer_uid = 1000;
  ins.booking = "BK-2026-0042";
  ins.envelope_from = "evisit@example.org";
  ins.message = msg;
  ins.message_sha256 = sum;
  ins.recipients = (const char *const *) rcpts->pdata;
  ins.n_recipients = n;
  assert_true (queue_insert (f->d->queue, &ins, &existing, &error));
  assert_null (existing);
  return id;
}

static gint64
in_an_hour (void)
{
  return g_get_real_time () / G_USEC_PER_SEC + 3600;
}

static QueueStatus *
status (Fixture *f, const char *id)
{
  g_autoptr (GError) error = NULL;
  QueueStatus *st = queue_status (f->d->queue, id, &error);

  assert_non_null (st);
  return st;
}

/* TRUE when id is stored and every recipient of it is in state s. */
static gboolean
all_in (Fixture *f, const char *id, RcptState s)
{
  g_autoptr (QueueStatus) st = queue_status (f->d->queue, id, NULL);

  if (st == NULL)
    return FALSE;
  for (guint i = 0; i < st->recipients->len; i++)
    if (((QueueRcptStatus *) g_ptr_array_index (st->recipients, i))->state != s)
      return FALSE;
  return TRUE;
}

/* Waits up to ms for every recipient of id to reach s. */
static gboolean
wait_all_in (Fixture *f, const char *id, RcptState s, guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;

  while (!all_in (f, id, s))
    {
      if (g_get_monotonic_time () > until)
        return FALSE;
      g_usleep (10 * 1000);
    }
  return TRUE;
}

typedef struct {
  const char *event;
  const char *reply;          /* when set, every such row must have it */
  GHashTable *recipients;     /* recipients field of each such row */
  int n;
  int bad_reply;
} AuditScan;

static gboolean
scan_row (const AuditRow *row, gpointer data)
{
  AuditScan *s = data;

  if (g_strcmp0 (row->event, s->event) != 0)
    return TRUE;
  s->n++;
  if (s->reply != NULL && g_strcmp0 (row->smtp_reply, s->reply) != 0)
    s->bad_reply++;
  if (s->recipients != NULL && row->recipients != NULL)
    g_hash_table_add (s->recipients, g_strdup (row->recipients));
  return TRUE;
}

static AuditScan
scan (Fixture *f, const char *id, const char *event, const char *reply)
{
  AuditFilter filter = { .invite_id = id, .event = event };
  AuditScan s = { .event = event, .reply = reply,
                  .recipients = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                       g_free, NULL) };

  assert_true (audit_read (f->d->cfg->audit_db, &filter, scan_row, &s, NULL));
  return s;
}

static char *
outbox_file (Fixture *f, const char *id, guint idx, const char *ext)
{
  g_autofree char *name = g_strdup_printf ("%s.%u.%s", id, idx, ext);

  return g_build_filename (f->outbox, name, NULL);
}

static guint
outbox_count (Fixture *f)
{
  g_autoptr (GDir) d = g_dir_open (f->outbox, 0, NULL);
  guint n = 0;

  if (d == NULL)
    return 0;
  while (g_dir_read_name (d) != NULL)
    n++;
  return n;
}

static void
start (Fixture *f)
{
  g_autoptr (GError) error = NULL;

  f->delivery = delivery_start (f->d->cfg, f->d->gate, &error);
  assert_non_null (f->delivery);
}

/* Woken, the worker delivers at once (its idle poll is 30 s), writes
 * each message and envelope, and records sent in queue and audit. */
static void
test_delivers_and_records (void **state)
{
  Fixture *f = *state;
  g_autofree char *id = NULL;
  g_autoptr (QueueStatus) st = NULL;
  AuditScan sent;

  start (f);
  g_usleep (200 * 1000);      /* the worker is idle now */
  id = insert (f, 2, in_an_hour ());
  delivery_wake (f->delivery, 2);
  assert_true (wait_all_in (f, id, RCPT_SENT, 5000));

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *eml = outbox_file (f, id, i, "eml");
      g_autofree char *env = outbox_file (f, id, i, "envelope");
      g_autofree char *bytes = NULL, *envelope = NULL, *want = NULL;
      gsize len = 0;

      assert_true (g_file_get_contents (eml, &bytes, &len, NULL));
      assert_int_equal (len, sizeof body - 1);
      assert_memory_equal (bytes, body, len);
      assert_true (g_file_get_contents (env, &envelope, NULL, NULL));
      /* Each recipient's own return address ([bounce], bounce.h). */
      want = g_strdup_printf ("^MAIL FROM:<bounces\\+[0-9a-v]{26}@example\\.org>\n"
                              "RCPT TO:<guest%u@example\\.com>\n$", i);
      if (!g_regex_match_simple (want, envelope, 0, 0))
        fail_msg ("envelope %s", envelope);
    }
  assert_int_equal (outbox_count (f), 4);

  st = status (f, id);
  assert_string_equal (st->state, "sent");
  for (guint i = 0; i < st->recipients->len; i++)
    {
      QueueRcptStatus *r = g_ptr_array_index (st->recipients, i);
      assert_int_equal (r->attempts, 1);
      assert_string_equal (r->reply, "written to outbox");
    }
  sent = scan (f, id, "sent", "written to outbox");
  assert_int_equal (sent.n, 2);
  assert_int_equal (sent.bad_reply, 0);
  assert_true (g_hash_table_contains (sent.recipients, "guest0@example.com"));
  assert_true (g_hash_table_contains (sent.recipients, "guest1@example.com"));
  g_hash_table_unref (sent.recipients);
}

/* ---- a slow relay: tests/system/smtpd.py on 127.0.0.1 ---- */

typedef struct {
  GPid pid;
  char *capture;
} Relay;

/* Starts smtpd.py taking stall_s per transaction; its port, or 0 when
 * /usr/bin/python3 has no aiosmtpd (the caller skips). */
static int
relay_start (Fixture *f, Relay *r, const char *stall_s)
{
  const char *srcdir = g_getenv ("srcdir") ? g_getenv ("srcdir") : ".";
  g_autofree char *script = g_build_filename (srcdir, "tests", "system",
                                              "smtpd.py", NULL);
  g_autofree char *ready = g_build_filename (f->d->dir, "relay-port", NULL);
  g_autofree char *stall = g_strdup_printf ("stall-data:%s", stall_s);
  const char *probe[] = { "/usr/bin/python3", "-c", "import aiosmtpd", NULL };
  int status = -1;
  int port = 0;

  if (!g_spawn_sync (NULL, (char **) probe, NULL, G_SPAWN_STDOUT_TO_DEV_NULL
                     | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                     &status, NULL)
      || !g_spawn_check_wait_status (status, NULL))
    return 0;
  r->capture = g_build_filename (f->d->dir, "relay", NULL);
  const char *argv[] = { "/usr/bin/python3", script, "--ready-file", ready,
                         "--capture", r->capture, "--fault", stall,
                         "--max-seconds", "60", NULL };
  assert_true (g_spawn_async (NULL, (char **) argv, NULL,
                              G_SPAWN_DO_NOT_REAP_CHILD
                              | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                              &r->pid, NULL));
  for (int i = 0; i < 500 && port == 0; i++)
    {
      g_autofree char *text = NULL;
      if (g_file_get_contents (ready, &text, NULL, NULL))
        port = atoi (text);
      else
        g_usleep (20 * 1000);
    }
  assert_true (port > 0);
  return port;
}

static void
relay_stop (Relay *r)
{
  int status;

  kill (r->pid, SIGTERM);
  waitpid (r->pid, &status, 0);
  g_spawn_close_pid (r->pid);
  g_free (r->capture);
}

static guint
relay_count (const Relay *r)
{
  g_autoptr (GDir) d = g_dir_open (r->capture, 0, NULL);
  const char *name;
  guint n = 0;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    n += g_str_has_suffix (name, ".json");
  return n;
}

/* Recipients of id in state s. */
static guint
count_in (Fixture *f, const char *id, RcptState s)
{
  g_autoptr (QueueStatus) st = queue_status (f->d->queue, id, NULL);
  guint n = 0;

  for (guint i = 0; st != NULL && i < st->recipients->len; i++)
    n += ((QueueRcptStatus *) g_ptr_array_index (st->recipients, i))->state == s;
  return n;
}

/* One batch of 4 to a relay that takes 0.5 s per transaction: the first
 * message the relay took is `sent` in the queue, with its audit row,
 * while the batch still runs (the relay has not yet taken all 4).
 * Recorded only at the batch's end, a crash in between would send them
 * all again. */
static void
test_recorded_while_batch_runs (void **state)
{
  Fixture *f = *state;
  Relay relay = { 0 };
  int port = relay_start (f, &relay, "0.5");
  g_autofree char *conf = g_build_filename (f->d->dir, "smtp.conf", NULL);
  g_autofree char *text = NULL;
  g_autofree char *id = NULL;
  gint64 until;
  guint taken = 0;

  if (port == 0)
    skip ();
  text = g_strdup_printf ("[daemon]\nqueue_db = queue.db\naudit_db = audit.db\n"
                          "[transport]\ntype = smtp\n"
                          "[smtp]\nhost = 127.0.0.1\nport = %d\ntls = none\n"
                          "timeout = 5\nconnections = 1\n"
                          "[retry]\nfirst_delay = 60\n", port);
  assert_true (g_file_set_contents (conf, text, -1, NULL));
  config_free (f->d->cfg);
  f->d->cfg = config_load (conf, NULL);
  assert_non_null (f->d->cfg);
  id = insert (f, 4, in_an_hour ());
  start (f);
  delivery_wake (f->delivery, 4);
  until = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (count_in (f, id, RCPT_SENT) == 0 && g_get_monotonic_time () < until)
    g_usleep (5 * 1000);
  taken = relay_count (&relay);
  if (count_in (f, id, RCPT_SENT) == 0 || taken >= 4)
    fail_msg ("first `sent` seen with %u of 4 at the relay", taken);
  assert_true (scan (f, id, "sent", NULL).n >= 1);
  assert_true (wait_all_in (f, id, RCPT_SENT, 10000));
  assert_int_equal (scan (f, id, "sent", NULL).n, 4);
  assert_int_equal (relay_count (&relay), 4);
  delivery_stop (f->delivery);
  f->delivery = NULL;
  relay_stop (&relay);
}

/* Fail closed inside a batch: once the audit cannot be written (another
 * process holds its write lock), no outcome reaches the queue without
 * its row, even as the relay takes the rest of the batch; the
 * recipients stay `sending`.  When the audit is writable again, every
 * outcome is recorded, each once, and nothing is sent twice. */
static void
test_batch_waits_for_audit (void **state)
{
  Fixture *f = *state;
  Relay relay = { 0 };
  int port = relay_start (f, &relay, "0.5");
  g_autofree char *conf = g_build_filename (f->d->dir, "smtp.conf", NULL);
  g_autofree char *text = NULL;
  g_autofree char *id = NULL;
  sqlite3 *other = NULL;

  if (port == 0)
    skip ();
  text = g_strdup_printf ("[daemon]\nqueue_db = queue.db\naudit_db = audit.db\n"
                          "[transport]\ntype = smtp\n"
                          "[smtp]\nhost = 127.0.0.1\nport = %d\ntls = none\n"
                          "timeout = 5\nconnections = 1\n"
                          "[retry]\nfirst_delay = 60\n", port);
  assert_true (g_file_set_contents (conf, text, -1, NULL));
  config_free (f->d->cfg);
  f->d->cfg = config_load (conf, NULL);
  assert_non_null (f->d->cfg);
  id = insert (f, 4, in_an_hour ());
  start (f);
  delivery_wake (f->delivery, 4);
  gint64 until = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (count_in (f, id, RCPT_SENT) == 0 && g_get_monotonic_time () < until)
    g_usleep (5 * 1000);
  guint sent = count_in (f, id, RCPT_SENT);
  assert_true (sent >= 1 && sent < 4);
  other = testutil_hold_write_lock (f->d->cfg->audit_db);
  /* The relay takes the rest; the recorder's append waits for the lock
   * (DB_BUSY_TIMEOUT_MS), fails, and the gate closes. */
  until = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while ((relay_count (&relay) < 4 || gate_is_open (f->d->gate))
         && g_get_monotonic_time () < until)
    g_usleep (20 * 1000);
  assert_int_equal (relay_count (&relay), 4);
  assert_false (gate_is_open (f->d->gate));
  g_usleep (300 * 1000);
  assert_int_equal (count_in (f, id, RCPT_SENT), sent);
  assert_int_equal (count_in (f, id, RCPT_SENDING), 4 - sent);
  testutil_release_write_lock (other);
  assert_true (wait_all_in (f, id, RCPT_SENT, 10000));
  assert_int_equal (scan (f, id, "sent", NULL).n, 4);
  assert_int_equal (relay_count (&relay), 4);
  delivery_stop (f->delivery);
  f->delivery = NULL;
  relay_stop (&relay);
}

/* More recipients than one batch takes: every one is delivered once. */
static void
test_more_than_a_batch (void **state)
{
  Fixture *f = *state;
  g_autofree char *a = insert (f, 60, in_an_hour ());
  g_autofree char *b = insert (f, 60, in_an_hour ());
  AuditScan sa, sb;

  start (f);
  delivery_wake (f->delivery, 120);
  assert_true (wait_all_in (f, a, RCPT_SENT, 10000));
  assert_true (wait_all_in (f, b, RCPT_SENT, 10000));
  assert_int_equal (outbox_count (f), 240);
  sa = scan (f, a, "sent", NULL);
  sb = scan (f, b, "sent", NULL);
  assert_int_equal (sa.n, 60);
  assert_int_equal (sb.n, 60);
  assert_int_equal (g_hash_table_size (sa.recipients), 60);   /* none twice */
  g_hash_table_unref (sa.recipients);
  g_hash_table_unref (sb.recipients);
}

/* Past its deadline (max_age or the meeting's start) a recipient is
 * expired without a try: no file, an `expired` row. */
static void
test_expired_not_sent (void **state)
{
  Fixture *f = *state;
  g_autofree char *id = insert (f, 1, g_get_real_time () / G_USEC_PER_SEC - 1);
  AuditScan ex;

  start (f);
  delivery_wake (f->delivery, 1);
  assert_true (wait_all_in (f, id, RCPT_EXPIRED, 5000));
  assert_int_equal (outbox_count (f), 0);
  ex = scan (f, id, "expired", "expired before delivery");
  assert_int_equal (ex.n, 1);
  assert_int_equal (ex.bad_reply, 0);
  assert_int_equal (scan (f, id, "sent", NULL).n, 0);
  g_hash_table_unref (ex.recipients);
}

/* A message that fails its hash when read back is never sent: the
 * recipient fails for good. */
static void
test_corrupt_message_fails (void **state)
{
  Fixture *f = *state;
  g_autofree char *id = insert (f, 1, in_an_hour ());
  g_autofree char *sql = g_strdup_printf (
    "UPDATE invites SET message = X'48656a' WHERE id = '%s'", id);
  AuditScan failed;

  testutil_sql (f->d->cfg->queue_db, sql);
  start (f);
  delivery_wake (f->delivery, 1);
  assert_true (wait_all_in (f, id, RCPT_FAILED, 5000));
  assert_int_equal (outbox_count (f), 0);
  failed = scan (f, id, "failed", "message unreadable in queue");
  assert_int_equal (failed.n, 1);
  assert_int_equal (failed.bad_reply, 0);
  g_hash_table_unref (failed.recipients);
}

/* The outbox gone after start: a temporary failure, deferred by
 * [retry] first_delay, audited `deferred`. */
static void
test_outbox_gone_defers (void **state)
{
  Fixture *f = *state;
  g_autofree char *id = NULL;
  g_autoptr (QueueStatus) st = NULL;
  QueueRcptStatus *r;
  gint64 before;
  AuditScan def;

  start (f);
  testutil_rm_rf (f->outbox);
  before = g_get_real_time () / G_USEC_PER_SEC;
  id = insert (f, 1, in_an_hour ());
  delivery_wake (f->delivery, 1);
  assert_true (wait_all_in (f, id, RCPT_DEFERRED, 5000));
  st = status (f, id);
  r = g_ptr_array_index (st->recipients, 0);
  assert_int_equal (r->attempts, 1);
  assert_in_range (r->next_try, before + 60, before + 60 + 5);
  assert_non_null (strstr (r->reply, "outbox unavailable"));
  def = scan (f, id, "deferred", NULL);
  assert_int_equal (def.n, 1);
  g_hash_table_unref (def.recipients);
}

/* A recipient left `sending` (a crash) is not taken by a new worker
 * (a reload must not re-send what retired workers hold); start-up
 * recovery audits it `recovered` and makes it due; then it is sent. */
static void
test_sending_waits_for_recovery (void **state)
{
  Fixture *f = *state;
  g_autofree char *id = insert (f, 1, in_an_hour ());
  g_autoptr (GPtrArray) claimed = queue_claim_due (f->d->queue, g_get_real_time () / G_USEC_PER_SEC,
                                                   10, NULL);
  g_autoptr (GError) error = NULL;
  AuditScan rec;

  assert_non_null (claimed);
  assert_int_equal (claimed->len, 1);
  assert_true (all_in (f, id, RCPT_SENDING));

  start (f);
  delivery_wake (f->delivery, 1);
  g_usleep (1000 * 1000);
  assert_true (all_in (f, id, RCPT_SENDING));
  assert_int_equal (outbox_count (f), 0);
  delivery_stop (f->delivery);
  f->delivery = NULL;

  assert_true (delivery_recover (f->d->cfg->queue_db, f->d->gate, &error));
  assert_true (all_in (f, id, RCPT_DEFERRED));
  rec = scan (f, id, "recovered", NULL);
  assert_int_equal (rec.n, 1);
  assert_true (g_hash_table_contains (rec.recipients, "guest0@example.com"));
  g_hash_table_unref (rec.recipients);

  start (f);
  assert_true (wait_all_in (f, id, RCPT_SENT, 5000));
  assert_int_equal (outbox_count (f), 2);
}

typedef struct {
  gboolean done;
  CommitResult result;
} Done;

static void
on_committed (CommitItem *item, gpointer data)
{
  Done *d = data;

  d->result = commit_item_result (item);
  d->done = TRUE;
}

/* The committer wakes an idle worker after it stored an invite. */
static void
test_committer_wakes_worker (void **state)
{
  Fixture *f = *state;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) msg = g_bytes_new_static (body, sizeof body - 1);
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                      (const guchar *) body,
                                                      sizeof body - 1);
  const char *rcpts[] = { "tolk@example.com" };
  QueueInsert ins = { .id = "c0000000000000000001",
                      .created = g_get_real_time () / G_USEC_PER_SEC,
                      .expires = in_an_hour (), .peer_uid = 1000,
                      .envelope_from = "evisit@example.org", .message = msg,
                      .message_sha256 = sum, .recipients = rcpts,
                      .n_recipients = 1 };
  Committer *c;
  CommitItem *item;
  Done done = { 0 };
  gint64 until;

  assert_true (g_main_context_acquire (NULL));
  c = committer_start (f->d->cfg->queue_db, f->d->gate, &error);
  assert_non_null (c);
  start (f);
  committer_set_on_stored (c, delivery_wake_stored, f->delivery);
  g_usleep (200 * 1000);      /* the worker is idle now */
  item = commit_item_new (on_committed, &done);
  commit_item_set_insert (item, &ins);
  committer_submit (c, item);
  assert_true (wait_all_in (f, ins.id, RCPT_SENT, 5000));
  until = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (!done.done && g_get_monotonic_time () < until)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  assert_true (done.done);
  assert_int_equal (done.result, COMMIT_STORED);
  committer_set_on_stored (c, NULL, NULL);
  committer_stop (c);
  g_main_context_release (NULL);
}

/* A stop while idle returns at once; a stopped worker takes nothing. */
static void
test_stop (void **state)
{
  Fixture *f = *state;
  g_autofree char *id = NULL;
  gint64 t0;

  start (f);
  g_usleep (100 * 1000);
  t0 = g_get_monotonic_time ();
  assert_true (delivery_stop_within (f->delivery, 5));
  assert_in_range (g_get_monotonic_time () - t0, 0, G_USEC_PER_SEC);
  f->delivery = NULL;
  id = insert (f, 1, in_an_hour ());
  g_usleep (300 * 1000);
  assert_true (all_in (f, id, RCPT_QUEUED));
  assert_int_equal (outbox_count (f), 0);
  delivery_stop (NULL);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_delivers_and_records, setup, teardown),
    cmocka_unit_test_setup_teardown (test_more_than_a_batch, setup, teardown),
    cmocka_unit_test_setup_teardown (test_recorded_while_batch_runs, setup, teardown),
    cmocka_unit_test_setup_teardown (test_batch_waits_for_audit, setup, teardown),
    cmocka_unit_test_setup_teardown (test_expired_not_sent, setup, teardown),
    cmocka_unit_test_setup_teardown (test_corrupt_message_fails, setup, teardown),
    cmocka_unit_test_setup_teardown (test_outbox_gone_defers, setup, teardown),
    cmocka_unit_test_setup_teardown (test_sending_waits_for_recovery, setup, teardown),
    cmocka_unit_test_setup_teardown (test_committer_wakes_worker, setup, teardown),
    cmocka_unit_test_setup_teardown (test_stop, setup, teardown),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
