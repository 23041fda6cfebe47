/*
 * test_service.c - one request's whole path inside the daemon, with the
 * real templates, a real queue and audit file, and no socket: the
 * answer waits for durability, refusals leave nothing behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_read.h"
#include "commit.h"
#include "config.h"
#include "mime.h"
#include "queue.h"
#include "render.h"
#include "request.h"
#include "service.h"

typedef struct {
  TestDaemon *d;
  Service *service;
  PeerCred peer;
} Fixture;

static const char send_req[] =
  "request=send\n"
  "link=https://meet.example.org/evisit/room-1\n"
  "bcc=tolk@example.com\n"
  "bcc=guardian@example.org\n"
  "booking=BK-1\n"
  "\n";

static int
setup (void **state)
{
  Fixture *f = g_new0 (Fixture, 1);
  g_autofree char *conf = testutil_invite_conf ();

  f->d = testutil_daemon_new ("imsvc-XXXXXX", conf);
  testutil_daemon_load_templates (f->d);
  testutil_daemon_start_committer (f->d);
  f->service = service_new (f->d->cfg, f->d->templates, f->d->queue, f->d->committer);
  f->peer.uid = getuid ();
  f->peer.gid = getgid ();
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  Fixture *f = *state;

  service_free (f->service);
  testutil_daemon_free (f->d);
  g_free (f);
  return 0;
}

static void
collect (gpointer target, const char *answer, gsize len)
{
  GString *out = target;

  g_assert (out->len == 0);   /* exactly one answer per request */
  g_string_append_len (out, answer, (gssize) len);
}

/* Runs one request; returns the parsed answer (transfer full).  Answers
 * that wait for the group commit arrive through the main context. */
static RawRequest *
ask (Fixture *f, const char *req)
{
  g_autoptr (GString) out = g_string_new (NULL);
  RawRequest *ans = NULL;
  Refusal why;
  gsize len = 0;
  gint64 until = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  service_handle (f->service, &f->peer, req, strlen (req), collect, out);
  while (out->len == 0 && g_get_monotonic_time () < until)
    g_main_context_iteration (NULL, FALSE);
  assert_int_equal (answer_frame (out->str, out->len, &len, &why), FRAME_COMPLETE);
  assert_int_equal (len, out->len);
  assert_true (request_parse_answer (out->str, len, &ans, &why));
  return ans;
}

static gboolean
keep_row (const AuditRow *row, gpointer data)
{
  AuditRow *copy = g_new0 (AuditRow, 1);

  copy->seq = row->seq;
  copy->error_code = g_strdup (row->error_code);
  copy->invite_id = g_strdup (row->invite_id);
  g_ptr_array_add (data, copy);
  return TRUE;
}

static int
audit_count (Fixture *f, const char *event)
{
  return testutil_audit_count (f->d->cfg->audit_db, event, NULL);
}

static void
test_send_is_queued_and_audited (void **state)
{
  Fixture *f = *state;
  g_autoptr (RawRequest) ans = ask (f, send_req);
  g_autoptr (QueueStatus) st = NULL;
  const char *id = raw_request_get (ans, "id");

  assert_string_equal (raw_request_get (ans, "status"), "queued");
  assert_non_null (id);
  st = queue_status (f->d->queue, id, NULL);
  assert_non_null (st);
  assert_int_equal (st->recipients->len, 2);
  assert_string_equal (st->state, "queued");
  assert_int_equal (audit_count (f, "accepted"), 1);
  /* Time first: a later invite's id sorts after this one's, and the
   * random part differs. */
  {
    g_autoptr (RawRequest) later = NULL;
    const char *id2;
    g_usleep (2000);
    later = ask (f, send_req);
    id2 = raw_request_get (later, "id");
    assert_non_null (id2);
    assert_int_equal (strlen (id2), 20);
    assert_true (strcmp (id, id2) < 0);
    assert_true (strcmp (id + 9, id2 + 9) != 0);
  }
}

static void
test_failed_commit_answers_unavailable (void **state)
{
  Fixture *f = *state;
  g_autoptr (RawRequest) ans = NULL;

  committer_set_fail_commit (f->d->committer, TRUE);
  ans = ask (f, send_req);
  committer_set_fail_commit (f->d->committer, FALSE);
  assert_string_equal (raw_request_get (ans, "status"), "rejected");
  assert_string_equal (raw_request_get (ans, "error"), "unavailable");
  assert_null (raw_request_get (ans, "id"));
  /* The audit rows commit before the queue (fail closed), so the
   * `accepted` row is there, followed by its withdrawal: `rejected`,
   * code unavailable, the same invite id. */
  assert_int_equal (audit_count (f, "accepted"), 1);
  assert_int_equal (audit_count (f, "rejected"), 1);
  {
    AuditFilter filter = { .event = "rejected" };
    g_autoptr (GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) audit_row_free);
    const AuditRow *r;

    assert_true (audit_read (f->d->cfg->audit_db, &filter, keep_row, rows, NULL));
    r = g_ptr_array_index (rows, 0);
    assert_string_equal (r->error_code, "unavailable");
    assert_non_null (r->invite_id);
    assert_int_equal (strlen (r->invite_id), 20);
  }
  /* Nothing half-stored: the queue has nothing due. */
  assert_int_equal (queue_next_due (f->d->queue, NULL), -1);
}

/*
 * Fail closed (gate.h): with the audit file unwritable, a send is
 * answered `unavailable` and nothing reaches the queue; once it can be
 * written again, the first row is `audit_resumed` with the counts, and
 * sends are queued again.
 */
static void
test_audit_failure_refuses_sends (void **state)
{
  Fixture *f = *state;
  g_autoptr (RawRequest) a0 = ask (f, send_req);
  g_autoptr (RawRequest) a1 = NULL;
  g_autoptr (RawRequest) a2 = NULL;
  g_autoptr (RawRequest) a3 = NULL;
  g_autoptr (RawRequest) st = NULL;
  g_autoptr (RawRequest) cancel = NULL;
  g_autofree char *status_req = NULL;
  g_autofree char *cancel_req = NULL;
  AuditRecord bad = { .event = AUDIT_DAEMON_START, .peer_uid = -1 };
  g_autoptr (GError) error = NULL;

  /* A real failure: another process's write transaction holds the
   * audit file, so the audit's BEGIN IMMEDIATE gives up after its busy
   * timeout (SQLITE_BUSY), as a full disk or a read-only file make an
   * append fail inside the audit. */
  sqlite3 *other = testutil_hold_write_lock (f->d->cfg->audit_db);

  assert_false (gate_append (f->d->gate, &bad, 1, &error));
  assert_false (gate_is_open (f->d->gate));
  a1 = ask (f, send_req);
  assert_string_equal (raw_request_get (a1, "status"), "rejected");
  assert_string_equal (raw_request_get (a1, "error"), "unavailable");
  assert_null (raw_request_get (a1, "id"));
  assert_int_equal (queue_count_undelivered (f->d->queue, NULL), 2);
  /* What must be audited before it is shown or done is not: a status
   * that shows addresses, a cancel. */
  assert_string_equal (raw_request_get (a0, "status"), "queued");
  status_req = g_strdup_printf ("request=status\nid=%s\n\n", raw_request_get (a0, "id"));
  st = ask (f, status_req);
  assert_string_equal (raw_request_get (st, "status"), "rejected");
  assert_string_equal (raw_request_get (st, "error"), "unavailable");
  assert_null (raw_request_get (st, "recipient"));
  cancel_req = g_strdup_printf ("request=cancel\nid=%s\n\n", raw_request_get (a0, "id"));
  cancel = ask (f, cancel_req);
  assert_string_equal (raw_request_get (cancel, "error"), "unavailable");
  assert_int_equal (queue_count_undelivered (f->d->queue, NULL), 2);
  /* Still closed: a refusal is answered without its row. */
  a2 = ask (f, "request=bogus\n\n");
  assert_string_equal (raw_request_get (a2, "status"), "rejected");
  testutil_release_write_lock (other);
  /* The committer probes within GATE_PROBE_MS. */
  for (int i = 0; i < 100 && !gate_is_open (f->d->gate); i++)
    g_usleep (50000);
  assert_true (gate_is_open (f->d->gate));
  a3 = ask (f, send_req);
  assert_string_equal (raw_request_get (a3, "status"), "queued");
  assert_int_equal (audit_count (f, "audit_resumed"), 1);
  assert_int_equal (audit_count (f, "accepted"), 2);
  assert_int_equal (audit_count (f, "status_shown"), 0);
  assert_int_equal (audit_count (f, "cancelled"), 0);
}

static void
test_preview_returns_the_message (void **state)
{
  Fixture *f = *state;
  g_autoptr (RawRequest) ans = NULL;
  g_autofree guchar *eml = NULL;
  gsize len = 0;

  ans = ask (f, "request=preview\nlink=https://meet.example.org/evisit/room-1\n"
                "bcc=tolk@example.com\nbooking=R&D (avd. 4)\n\n");
  assert_string_equal (raw_request_get (ans, "status"), "ok");
  eml = g_base64_decode (raw_request_get (ans, "eml"), &len);
  assert_true (len > 1000);
  assert_null (g_strstr_len ((char *) eml, len, "tolk@example.com"));
  assert_null (g_strstr_len ((char *) eml, len, "\nTo:"));
  assert_null (g_strstr_len ((char *) eml, len, "\nBcc:"));
  assert_int_equal (audit_count (f, "accepted"), 0);
  assert_int_equal (queue_next_due (f->d->queue, NULL), -1);
}

static gboolean
keep_unit (const AuditRow *row, gpointer data)
{
  g_free (*(char **) data);
  *(char **) data = g_strdup (row->org_unit);
  return TRUE;
}

/* The request's unit is audited with the invite; a link smuggled into
 * booking or unit is refused with the field named, and nothing is
 * queued (issue 9 point 5). */
static void
test_unit_audited_free_text_refused (void **state)
{
  Fixture *f = *state;
  g_autoptr (RawRequest) ok = NULL;
  g_autoptr (RawRequest) bad = NULL;
  g_autoptr (RawRequest) bad_unit = NULL;
  g_autofree char *unit = NULL;
  AuditFilter accepted = { .event = "accepted" };

  ok = ask (f, "request=send\nlink=https://meet.example.org/evisit/room-1\n"
               "bcc=tolk@example.com\nunit=Vårdcentralen Åby\n\n");
  assert_string_equal (raw_request_get (ok, "status"), "queued");
  assert_true (audit_read (f->d->cfg->audit_db, &accepted, keep_unit, &unit, NULL));
  assert_string_equal (unit, "Vårdcentralen Åby");
  bad = ask (f, "request=send\nlink=https://meet.example.org/evisit/room-1\n"
                "bcc=tolk@example.com\nbooking=Cancelled - rebook at "
                "https://evil.example.com/login\n\n");
  assert_string_equal (raw_request_get (bad, "error"), "invalid_value");
  assert_string_equal (raw_request_get (bad, "field"), "booking");
  bad_unit = ask (f, "request=preview\nlink=https://meet.example.org/evisit/room-1\n"
                     "bcc=tolk@example.com\nunit=see www.evil.example\n\n");
  assert_string_equal (raw_request_get (bad_unit, "error"), "invalid_value");
  assert_string_equal (raw_request_get (bad_unit, "field"), "unit");
  assert_int_equal (audit_count (f, "accepted"), 1);
  assert_int_equal (audit_count (f, "rejected"), 2);
}

/* A status answer shows the addresses only once its status_shown row
 * is stored: with the audit failing, the caller hears unavailable. */
static void
test_status_shown_only_when_audited (void **state)
{
  Fixture *f = *state;
  g_autoptr (RawRequest) sent = ask (f, send_req);
  g_autofree char *req = g_strdup_printf ("request=status\nid=%s\n\n",
                                          raw_request_get (sent, "id"));
  g_autoptr (RawRequest) ok = ask (f, req);
  g_autoptr (RawRequest) blind = NULL;
  g_autoptr (RawRequest) again = NULL;

  assert_string_equal (raw_request_get (ok, "status"), "ok");
  assert_int_equal (audit_count (f, "status_shown"), 1);
  testutil_audit_refuse_rows (f->d->cfg->audit_db);
  blind = ask (f, req);
  assert_string_equal (raw_request_get (blind, "error"), "unavailable");
  assert_null (raw_request_get (blind, "recipient"));
  testutil_audit_take_rows (f->d->cfg->audit_db);
  /* The gate reopens once its prober has written audit_resumed (about
   * a second); until then status stays unavailable. */
  for (int i = 0; i < 100; i++)
    {
      g_clear_pointer (&again, raw_request_free);
      again = ask (f, req);
      if (g_strcmp0 (raw_request_get (again, "status"), "ok") == 0)
        break;
      assert_string_equal (raw_request_get (again, "error"), "unavailable");
      assert_null (raw_request_get (again, "recipient"));
      g_usleep (100 * 1000);
    }
  assert_string_equal (raw_request_get (again, "status"), "ok");
  assert_int_equal (audit_count (f, "status_shown"), 2);
}

/*
 * A cancel stops the recipients not yet reached, then stores its
 * `cancelled` row; when that row cannot be stored (the audit refuses
 * the insert after the gate let the request in), the stop is undone:
 * the recipients are due again and the answer is unavailable.  Once
 * the audit takes rows again the cancel goes through.
 */
static void
test_cancel_undone_without_its_row (void **state)
{
  Fixture *f = *state;
  g_autoptr (RawRequest) sent = ask (f, send_req);
  g_autofree char *req = g_strdup_printf ("request=cancel\nid=%s\n\n",
                                          raw_request_get (sent, "id"));
  g_autoptr (RawRequest) blind = NULL;
  g_autoptr (RawRequest) again = NULL;

  assert_int_equal (queue_count_undelivered (f->d->queue, NULL), 2);
  testutil_audit_refuse_rows (f->d->cfg->audit_db);
  blind = ask (f, req);
  assert_string_equal (raw_request_get (blind, "error"), "unavailable");
  assert_int_equal (queue_count_undelivered (f->d->queue, NULL), 2);
  testutil_audit_take_rows (f->d->cfg->audit_db);
  for (int i = 0; i < 100; i++)
    {
      g_clear_pointer (&again, raw_request_free);
      again = ask (f, req);
      if (g_strcmp0 (raw_request_get (again, "status"), "cancelled") == 0)
        break;
      assert_string_equal (raw_request_get (again, "error"), "unavailable");
      g_usleep (100 * 1000);
    }
  assert_string_equal (raw_request_get (again, "status"), "cancelled");
  assert_string_equal (raw_request_get (again, "stopped"), "2");
  assert_string_equal (raw_request_get (again, "notified"), "0");
  assert_int_equal (queue_count_undelivered (f->d->queue, NULL), 0);
  assert_int_equal (audit_count (f, "cancelled"), 1);
}

static void
test_refusal_stores_nothing (void **state)
{
  Fixture *f = *state;
  g_autoptr (RawRequest) ans = ask (f, "request=send\nlink=http://meet.example.org/x\n"
                                       "bcc=tolk@example.com\n\n");

  assert_string_equal (raw_request_get (ans, "error"), "link_not_https");
  assert_string_equal (raw_request_get (ans, "field"), "link");
  assert_int_equal (queue_next_due (f->d->queue, NULL), -1);
  assert_int_equal (audit_count (f, "rejected"), 1);
}

static void
free_string (gpointer s)
{
  g_string_free (s, TRUE);
}

/* n sends handed to the service at once (as from n connections); their
 * answers fill the returned strings.  (transfer full) */
static GPtrArray *
send_many (Fixture *f, guint n)
{
  GPtrArray *outs = g_ptr_array_new_with_free_func (free_string);

  for (guint i = 0; i < n; i++)
    {
      GString *out = g_string_new (NULL);
      g_ptr_array_add (outs, out);
      service_handle (f->service, &f->peer, send_req, strlen (send_req), collect, out);
    }
  return outs;
}

/* Waits (20 s at most) for every answer of send_many; each must be
 * `queued`.  Returns the ids in order.  (transfer full) */
static GPtrArray *
queued_ids (GPtrArray *outs)
{
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);
  gint64 until = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  guint answered = 0;

  while (answered < outs->len && g_get_monotonic_time () < until)
    {
      g_main_context_iteration (NULL, FALSE);
      answered = 0;
      for (guint i = 0; i < outs->len; i++)
        answered += ((GString *) g_ptr_array_index (outs, i))->len > 0;
    }
  assert_int_equal (answered, outs->len);
  for (guint i = 0; i < outs->len; i++)
    {
      GString *out = g_ptr_array_index (outs, i);
      g_autoptr (RawRequest) ans = NULL;
      Refusal why;
      assert_true (request_parse_answer (out->str, out->len, &ans, &why));
      assert_string_equal (raw_request_get (ans, "status"), "queued");
      g_ptr_array_add (ids, g_strdup (raw_request_get (ans, "id")));
    }
  return ids;
}

/* Many requests in flight at once (as from many connections): each is
 * answered exactly once, with its own id, and all are stored. */
static void
test_group_commit_answers_each (void **state)
{
  Fixture *f = *state;
  enum { N = 200 };
  g_autoptr (GPtrArray) outs = send_many (f, N);
  g_autoptr (GPtrArray) ids = queued_ids (outs);
  g_autoptr (GHashTable) distinct = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < ids->len; i++)
    g_hash_table_add (distinct, g_ptr_array_index (ids, i));
  assert_int_equal (g_hash_table_size (distinct), N);
  assert_int_equal (audit_count (f, "accepted"), N);
}

static gboolean
message_has (Fixture *f, const char *id, const char *needle)
{
  g_autoptr (GBytes) msg = queue_message (f->d->queue, id, NULL);
  gsize len;
  const char *data;

  assert_non_null (msg);
  data = g_bytes_get_data (msg, &len);
  return g_strstr_len (data, (gssize) len, needle) != NULL;
}

/*
 * SIGHUP while sends are being built on the pool: service_set_config
 * returns only once every send handed over before it has been built,
 * with the configuration it was accepted under; the old configuration
 * may go right after (the daemon frees it).  Here it is scribbled on
 * instead, so a build that read it late would show.
 */
static void
test_reload_waits_for_sends_in_hand (void **state)
{
  Fixture *f = *state;
  enum { N = 100 };
  g_autofree char *conf = g_build_filename (f->d->dir, "reloaded.conf", NULL);
  g_autofree char *text = NULL;
  g_autoptr (Config) cfg2 = NULL;
  g_autoptr (GPtrArray) outs = NULL;
  g_autoptr (GPtrArray) ids = NULL;

  text = g_strdup_printf ("[organisation]\nname = Region Omega\n"
                          "[invite]\ntemplates_dir = %s\nsignatures_dir = %s\n"
                          "link_hosts = meet.example.org\n",
                          f->d->cfg->templates_dir, f->d->cfg->signatures_dir);
  assert_true (g_file_set_contents (conf, text, -1, NULL));
  cfg2 = config_load (conf, NULL);
  assert_non_null (cfg2);
  assert_string_equal (f->d->cfg->org_name, "Region Exempel");
  outs = send_many (f, N);
  service_set_config (f->service, cfg2, f->d->templates);
  memcpy (f->d->cfg->org_name, "Region Scribbl", strlen ("Region Scribbl"));
  ids = queued_ids (outs);
  for (guint i = 0; i < ids->len; i++)
    {
      assert_false (message_has (f, g_ptr_array_index (ids, i), "Region Scribbl"));
      assert_true (message_has (f, g_ptr_array_index (ids, i), "Region Exempel"));
    }
  /* and a send after the reload is built on the new one */
  {
    g_autoptr (RawRequest) ans = ask (f, send_req);
    assert_string_equal (raw_request_get (ans, "status"), "queued");
    assert_true (message_has (f, raw_request_get (ans, "id"), "Region Omega"));
  }
  service_set_config (f->service, f->d->cfg, f->d->templates);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_send_is_queued_and_audited, setup, teardown),
    cmocka_unit_test_setup_teardown (test_failed_commit_answers_unavailable, setup, teardown),
    cmocka_unit_test_setup_teardown (test_audit_failure_refuses_sends, setup, teardown),
    cmocka_unit_test_setup_teardown (test_preview_returns_the_message, setup, teardown),
    cmocka_unit_test_setup_teardown (test_refusal_stores_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown (test_unit_audited_free_text_refused, setup, teardown),
    cmocka_unit_test_setup_teardown (test_status_shown_only_when_audited, setup, teardown),
    cmocka_unit_test_setup_teardown (test_cancel_undone_without_its_row, setup, teardown),
    cmocka_unit_test_setup_teardown (test_group_commit_answers_each, setup, teardown),
    cmocka_unit_test_setup_teardown (test_reload_waits_for_sends_in_hand, setup, teardown),
  };
  int rc;

  mime_init ();
  rc = cmocka_run_group_tests (tests, NULL, NULL);
  mime_shutdown ();
  return rc;
}
