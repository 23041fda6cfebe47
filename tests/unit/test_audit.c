/*
 * test_audit.c - the audit log against real SQLite files: the chain
 * verifies; every kind of tampering made with raw SQL on a copy (the
 * triggers dropped first, as an attacker would) is found and the row
 * named; the triggers refuse UPDATE and DELETE; the chain continues
 * across reopen; filters; a read-only reader beside the writer; and
 * appends from several threads.  The canonical encoding is checked
 * against a second implementation written here from audit.h.
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

#include <openssl/evp.h>

#include "audit.h"
#include "audit_anchor.h"
#include "audit_erase.h"
#include "audit_key.h"
#include "audit_read.h"
#include "audit_seal.h"
#include "audit_verify.h"
#include "db.h"

#define INV1 "cccccccccccccccccc01"
#define INV2 "cccccccccccccccccc02"
#define ZERO64 \
  "0000000000000000000000000000000000000000000000000000000000000000"

typedef struct {
  char *dir;
  char *path;
  char *copy;
  gint64 now_ms;
} Fixture;

static gint64
fixed_clock (gpointer data)
{
  Fixture *fx = data;

  fx->now_ms += 1000;
  return fx->now_ms;
}

static int
setup (void **state)
{
  Fixture *fx = g_new0 (Fixture, 1);

  fx->dir = testutil_tmpdir ("test_audit-XXXXXX");
  fx->path = g_build_filename (fx->dir, "audit.db", NULL);
  fx->copy = g_build_filename (fx->dir, "copy.db", NULL);
  fx->now_ms = 1700000000000;
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
  g_free (fx->copy);
  g_free (fx);
  return 0;
}

/* ---- helpers --------------------------------------------------------- */

static Audit *
open_with_clock (Fixture *fx)
{
  g_autoptr (GError) error = NULL;
  Audit *a = audit_open (fx->path, &error);

  assert_non_null (a);
  assert_null (error);
  audit_set_clock (a, fixed_clock, fx);
  return a;
}

static void
append (Audit *a, AuditEvent e, const char *invite, const char *detail)
{
  g_autoptr (GError) error = NULL;
  AuditRecord r = { 0 };

  r.event = e;
  r.invite_id = invite;
  r.peer_uid = invite != NULL ? 1000 : -1;
  r.staff = "SE0000000000-test";
  r.booking = invite != NULL ? "BK-7" : NULL;
  r.recipients = e == AUDIT_ACCEPTED ? "ann@example.org,bo@example.com" : NULL;
  r.smtp_reply = e == AUDIT_SENT ? "250 2.0.0 Ok: queued" : NULL;
  r.detail = detail;
  r.lang = "sv";
  r.message_sha256 = e == AUDIT_ACCEPTED ? ZERO64 : NULL;
  if (!audit_append (a, &r, &error))
    fail_msg ("append: %s", error->message);
}

/* Six rows: the chain used by the tampering cases. */
static void
write_six (Fixture *fx)
{
  Audit *a = open_with_clock (fx);

  append (a, AUDIT_DAEMON_START, NULL, "version test");
  append (a, AUDIT_ACCEPTED, INV1, NULL);
  append (a, AUDIT_SENT, INV1, NULL);
  append (a, AUDIT_ACCEPTED, INV2, NULL);
  append (a, AUDIT_DEFERRED, INV2, "relay busy");
  append (a, AUDIT_DAEMON_STOP, NULL, "");
  audit_close (a);
}

static void
copy_file (const char *from, const char *to)
{
  g_autofree char *data = NULL;
  gsize len = 0;

  assert_true (g_file_get_contents (from, &data, &len, NULL));
  assert_true (g_file_set_contents (to, data, len, NULL));
}

static gboolean
collect_row (const AuditRow *row, gpointer data)
{
  GPtrArray *rows = data;
  AuditRow *c = g_new0 (AuditRow, 1);

  c->seq = row->seq;
  c->time_ms = row->time_ms;
  c->peer_uid = row->peer_uid;
  c->event = g_strdup (row->event);
  c->invite_id = g_strdup (row->invite_id);
  c->staff = g_strdup (row->staff);
  c->booking = g_strdup (row->booking);
  c->recipients = g_strdup (row->recipients);
  c->recipient_keys = g_strdup (row->recipient_keys);
  c->smtp_reply = g_strdup (row->smtp_reply);
  c->error_code = g_strdup (row->error_code);
  c->field = g_strdup (row->field);
  c->detail = g_strdup (row->detail);
  c->lang = g_strdup (row->lang);
  c->template_name = g_strdup (row->template_name);
  c->link_sha256 = g_strdup (row->link_sha256);
  c->notice_sha256 = g_strdup (row->notice_sha256);
  c->template_sha256 = g_strdup (row->template_sha256);
  c->signature_sha256 = g_strdup (row->signature_sha256);
  c->message_sha256 = g_strdup (row->message_sha256);
  c->prev_hash = g_strdup (row->prev_hash);
  c->row_hash = g_strdup (row->row_hash);
  c->org_unit = g_strdup (row->org_unit);
  c->epoch = row->epoch;
  c->seal = g_strdup (row->seal);
  c->next_key = g_strdup (row->next_key);
  c->prev_seal = g_strdup (row->prev_seal);
  g_ptr_array_add (rows, c);
  return TRUE;
}

static GPtrArray *
read_rows (const char *path, const AuditFilter *f)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *rows =
    g_ptr_array_new_with_free_func ((GDestroyNotify) audit_row_free);

  if (!audit_read (path, f, collect_row, rows, &error))
    fail_msg ("read: %s", error->message);
  return rows;
}

#define ROW_AT(rows, i) ((AuditRow *) g_ptr_array_index ((rows), (i)))

/* A second implementation of audit.h's canonical encoding. */
static void
put_field (GChecksum *sum, const char *s)
{
  guint32 n = s != NULL ? (guint32) strlen (s) : 0xFFFFFFFFu;
  guchar be[4] = { n >> 24, n >> 16, n >> 8, n };

  g_checksum_update (sum, be, 4);
  if (s != NULL)
    g_checksum_update (sum, (const guchar *) s, strlen (s));
}

static char *
independent_hash (const AuditRow *r)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *seq = g_strdup_printf ("%" G_GINT64_FORMAT, r->seq);
  g_autofree char *t = g_strdup_printf ("%" G_GINT64_FORMAT, r->time_ms);
  g_autofree char *uid = g_strdup_printf ("%" G_GINT64_FORMAT, r->peer_uid);
  g_autofree char *ep = g_strdup_printf ("%" G_GINT64_FORMAT, r->epoch);
  const char *v[] = {
    seq, t, r->event, r->invite_id, r->peer_uid >= 0 ? uid : NULL, r->staff,
    r->booking, r->recipient_keys, r->smtp_reply, r->error_code, r->field,
    r->detail, r->lang, r->template_name, r->link_sha256, r->notice_sha256,
    r->template_sha256, r->signature_sha256, r->message_sha256, r->org_unit,
    r->epoch >= 0 ? ep : NULL, r->seal, r->next_key, r->prev_seal,
    r->prev_hash,
  };

  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    put_field (sum, v[i]);
  return g_strdup (g_checksum_get_string (sum));
}

static void
expect_broken (const char *path, const char *what, const char *needle)
{
  g_autoptr (GError) error = NULL;
  gint64 n = -1;

  if (audit_verify (path, &n, &error))
    fail_msg ("case '%s': verify passed", what);
  if (!g_error_matches (error, AUDIT_ERROR, AUDIT_ERROR_BROKEN))
    fail_msg ("case '%s': %s", what, error ? error->message : "no error");
  if (strstr (error->message, needle) == NULL)
    fail_msg ("case '%s': message '%s' lacks '%s'", what, error->message,
              needle);
}

static void
expect_ok (const char *path, gint64 rows)
{
  g_autoptr (GError) error = NULL;
  gint64 n = -1;

  if (!audit_verify (path, &n, &error))
    fail_msg ("verify: %s", error->message);
  assert_int_equal (n, rows);
}

/* ---- tests ----------------------------------------------------------- */

static void
test_sha256_hex (void **state)
{
  char out[65];

  (void) state;
  sha256_hex ("abc", 3, out);
  assert_string_equal (out, "ba7816bf8f01cfea414140de5dae2223"
                            "b00361a396177a9cb410ff61f20015ad");
  sha256_hex ("", 0, out);
  assert_string_equal (out, "e3b0c44298fc1c149afbf4c8996fb924"
                            "27ae41e4649b934ca495991b7852b855");
}

static void
test_event_names (void **state)
{
  (void) state;
  for (int e = 0; e < AUDIT_N_EVENTS; e++)
    {
      const char *name = audit_event_name (e);
      assert_non_null (name);
      assert_int_equal (audit_event_from_name (name), e);
    }
  assert_string_equal (audit_event_name (AUDIT_ACCEPTED), "accepted");
  assert_int_equal (audit_event_from_name ("bogus"), -1);
  assert_int_equal (audit_event_from_name (NULL), -1);
}

static void
test_append_and_verify (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) rows = NULL;
  struct stat sb;

  write_six (fx);
  expect_ok (fx->path, 6);
  rows = read_rows (fx->path, NULL);
  assert_int_equal (rows->len, 6);
  for (guint i = 0; i < rows->len; i++)
    {
      g_autofree char *h = independent_hash (ROW_AT (rows, i));
      assert_int_equal (ROW_AT (rows, i)->seq, i + 1);
      assert_int_equal (ROW_AT (rows, i)->time_ms,
                        1700000000000 + 1000 * (i + 1));
      assert_string_equal (ROW_AT (rows, i)->prev_hash,
                           i == 0 ? ZERO64 : ROW_AT (rows, i - 1)->row_hash);
      assert_string_equal (h, ROW_AT (rows, i)->row_hash);
    }
  assert_string_equal (ROW_AT (rows, 0)->event, "daemon_start");
  assert_int_equal (ROW_AT (rows, 0)->peer_uid, -1);
  assert_null (ROW_AT (rows, 0)->invite_id);
  assert_string_equal (ROW_AT (rows, 1)->recipients,
                       "ann@example.org,bo@example.com");
  assert_string_equal (ROW_AT (rows, 4)->detail, "relay busy");
  assert_string_equal (ROW_AT (rows, 5)->detail, "");   /* "" is not NULL */
  assert_int_equal (g_stat (fx->path, &sb), 0);
  assert_int_equal (sb.st_mode & 077, 0);
}

static void
test_canonical_encoding (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) rows = NULL;
  g_autofree char *hash = NULL;
  Audit *a = open_with_clock (fx);
  AuditRecord r = {
    AUDIT_REJECTED, NULL, 0, "staff-1", "BK-\xc3\x85\xc3\x84", NULL, NULL,
    "bad_address", "bcc", "address refused", "sv", "evisit",
    ZERO64, ZERO64, ZERO64, ZERO64, NULL
  };

  assert_true (audit_append (a, &r, NULL));
  audit_close (a);
  rows = read_rows (fx->path, NULL);
  assert_int_equal (rows->len, 1);
  assert_int_equal (ROW_AT (rows, 0)->peer_uid, 0);   /* 0 is not "none" */
  assert_string_equal (ROW_AT (rows, 0)->field, "bcc");
  hash = independent_hash (ROW_AT (rows, 0));
  assert_string_equal (hash, ROW_AT (rows, 0)->row_hash);
  expect_ok (fx->path, 1);
}

/* Each case runs on a copy of the six-row chain, triggers dropped. */
static const struct {
  const char *name;
  const char *sql;
  const char *needle;
} tamper_cases[] = {
  { "field changed", "UPDATE audit SET detail = 'edited' WHERE seq = 3",
    "row 3: hash mismatch (changed)" },
  { "time changed", "UPDATE audit SET time_ms = time_ms + 1 WHERE seq = 2",
    "row 2: hash mismatch" },
  { "field nulled", "UPDATE audit SET booking = NULL WHERE seq = 4",
    "row 4: hash mismatch" },
  { "recipient added",
    "UPDATE audit SET recipients = recipients || ',x@example.com'"
    " WHERE seq = 2", "row 2: hash mismatch" },
  { "middle row deleted", "DELETE FROM audit WHERE seq = 3",
    "row 3 missing" },
  { "two rows deleted", "DELETE FROM audit WHERE seq IN (3, 4)",
    "rows 3-4 missing" },
  { "first row deleted", "DELETE FROM audit WHERE seq = 1",
    "row 1 missing" },
  { "forged row appended",
    "INSERT INTO audit (seq, time_ms, event, prev_hash, row_hash)"
    " SELECT 7, time_ms + 1, 'sent', prev_hash, row_hash FROM audit"
    " WHERE seq = 6", "row 7: previous-hash link broken" },
  { "forged row inserted in the middle",
    "UPDATE audit SET seq = seq + 100 WHERE seq >= 4;"
    "UPDATE audit SET seq = seq - 99 WHERE seq >= 100;"
    "INSERT INTO audit (seq, time_ms, event, prev_hash, row_hash)"
    " SELECT 4, time_ms + 1, 'sent', row_hash, row_hash FROM audit"
    " WHERE seq = 3", "row 4: hash mismatch" },
  { "two rows swapped",
    "UPDATE audit SET seq = 100 WHERE seq = 2;"
    "UPDATE audit SET seq = 2 WHERE seq = 3;"
    "UPDATE audit SET seq = 3 WHERE seq = 100",
    "row 2: previous-hash link broken" },
  { "hash replaced", "UPDATE audit SET row_hash = '" ZERO64 "' WHERE seq = 5",
    "row 5: hash mismatch" },
  { "renumbered", "UPDATE audit SET seq = 0 WHERE seq = 1",
    "row 0: out of sequence" },
};

static void
test_tampering_found (void **state)
{
  Fixture *fx = *state;

  write_six (fx);
  for (guint c = 0; c < G_N_ELEMENTS (tamper_cases); c++)
    {
      g_autofree char *sql = g_strdup_printf (
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; %s",
        tamper_cases[c].sql);

      copy_file (fx->path, fx->copy);
      testutil_sql (fx->copy, sql);
      expect_broken (fx->copy, tamper_cases[c].name, tamper_cases[c].needle);
      g_unlink (fx->copy);
    }
  expect_ok (fx->path, 6);   /* the original is untouched */
}

/* A correctly hashed row with an event this program never writes. */
static void
test_unknown_event_found (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) rows = NULL;
  g_autofree char *sql = NULL, *hash = NULL;
  AuditRow forged = { 0 };

  write_six (fx);
  rows = read_rows (fx->path, NULL);
  forged.seq = 7;
  forged.time_ms = 1;
  forged.event = (char *) "bogus";
  forged.peer_uid = -1;
  forged.epoch = -1;
  forged.prev_hash = ROW_AT (rows, 5)->row_hash;
  hash = independent_hash (&forged);
  sql = g_strdup_printf ("INSERT INTO audit (seq, time_ms, event, prev_hash,"
                         " row_hash) VALUES (7, 1, 'bogus', '%s', '%s')",
                         forged.prev_hash, hash);
  testutil_sql (fx->path, sql);
  expect_broken (fx->path, "unknown event", "row 7: unknown event");
}

static void
test_triggers_refuse (void **state)
{
  Fixture *fx = *state;
  const char *const sqls[] = {
    "UPDATE audit SET detail = 'x' WHERE seq = 2",
    "DELETE FROM audit WHERE seq = 2",
    "DELETE FROM audit",
    "INSERT OR REPLACE INTO audit (seq, time_ms, event, prev_hash, row_hash)"
    " VALUES (2, 1, 'sent', 'a', 'b')",
  };
  Audit *a;

  write_six (fx);
  a = open_with_clock (fx);      /* refused even beside the writer */
  for (guint i = 0; i < G_N_ELEMENTS (sqls); i++)
    {
      sqlite3 *db = NULL;
      char *msg = NULL;

      assert_int_equal (sqlite3_open (fx->path, &db), SQLITE_OK);
      sqlite3_exec (db, "PRAGMA recursive_triggers=ON", NULL, NULL, NULL);
      if (sqlite3_exec (db, sqls[i], NULL, NULL, &msg) == SQLITE_OK)
        fail_msg ("allowed: %s", sqls[i]);
      assert_non_null (strstr (msg, "append-only"));
      sqlite3_free (msg);
      sqlite3_close (db);
    }
  audit_close (a);
  expect_ok (fx->path, 6);
}

static void
test_reopen_continues (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) rows = NULL;
  Audit *a;

  write_six (fx);
  a = open_with_clock (fx);
  assert_true (audit_head_intact (a));
  append (a, AUDIT_DAEMON_START, NULL, "again");
  append (a, AUDIT_RECOVERED, INV2, "in flight at a crash");
  audit_close (a);
  expect_ok (fx->path, 8);
  rows = read_rows (fx->path, NULL);
  assert_int_equal (ROW_AT (rows, 7)->seq, 8);
  assert_string_equal (ROW_AT (rows, 6)->prev_hash,
                       ROW_AT (rows, 5)->row_hash);
}

static void
test_tampered_tail_still_opens (void **state)
{
  Fixture *fx = *state;
  Audit *a;

  write_six (fx);
  testutil_sql (fx->path, "DROP TRIGGER audit_no_update;"
                      "UPDATE audit SET detail = 'x' WHERE seq = 6");
  a = open_with_clock (fx);
  assert_false (audit_head_intact (a));
  append (a, AUDIT_DAEMON_START, NULL, NULL);
  audit_close (a);
  expect_broken (fx->path, "tampered tail", "row 6: hash mismatch");
}

static void
test_read_filters (void **state)
{
  Fixture *fx = *state;
  const struct {
    const char *name;
    AuditFilter f;
    guint expect;
  } cases[] = {
    { "all", { NULL, NULL, 0, 0 }, 6 },
    { "invite", { INV1, NULL, 0, 0 }, 2 },
    { "event", { NULL, "accepted", 0, 0 }, 2 },
    { "invite and event", { INV2, "deferred", 0, 0 }, 1 },
    { "since", { NULL, NULL, 1700000000000 + 4000, 0 }, 3 },
    { "until (exclusive)", { NULL, NULL, 0, 1700000000000 + 3000 }, 2 },
    { "window", { NULL, NULL, 1700000000000 + 2000,
                  1700000000000 + 4000 }, 2 },
    { "no match", { "zzzzzzzzzzzzzzzzzzzz", NULL, 0, 0 }, 0 },
    { "quote in filter", { "x' OR '1'='1", NULL, 0, 0 }, 0 },
  };

  write_six (fx);
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (GPtrArray) rows = read_rows (fx->path, &cases[c].f);
      if (rows->len != cases[c].expect)
        fail_msg ("case '%s': %u rows, expected %u", cases[c].name, rows->len,
                  cases[c].expect);
    }
}

static gboolean
stop_after_two (const AuditRow *row, gpointer data)
{
  guint *n = data;

  (void) row;
  return ++*n < 2;
}

static void
test_read_stops (void **state)
{
  Fixture *fx = *state;
  guint n = 0;

  write_six (fx);
  assert_true (audit_read (fx->path, NULL, stop_after_two, &n, NULL));
  assert_int_equal (n, 2);
}

static void
test_reader_beside_writer (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) before = NULL, after = NULL;
  g_autoptr (GError) error = NULL;
  Audit *a = open_with_clock (fx);
  sqlite3 *ro;

  append (a, AUDIT_DAEMON_START, NULL, NULL);
  before = read_rows (fx->path, NULL);
  assert_int_equal (before->len, 1);
  expect_ok (fx->path, 1);
  append (a, AUDIT_CONFIG_LOADED, NULL, NULL);
  after = read_rows (fx->path, NULL);
  assert_int_equal (after->len, 2);
  ro = db_open_readonly (fx->path, &error);
  assert_non_null (ro);
  assert_false (db_exec (ro, "INSERT INTO audit (seq, time_ms, event,"
                         " prev_hash, row_hash)"
                         " VALUES (9, 1, 'sent', 'a', 'b')", &error));
  assert_true (g_error_matches (error, DB_ERROR, DB_ERROR_IO));
  sqlite3_close_v2 (ro);
  audit_close (a);
  expect_ok (fx->path, 2);
}

static void
test_missing_file (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  g_autofree char *none = g_build_filename (fx->dir, "none.db", NULL);

  assert_false (audit_verify (none, NULL, &error));
  assert_true (g_error_matches (error, AUDIT_ERROR, AUDIT_ERROR_IO));
  assert_false (g_file_test (none, G_FILE_TEST_EXISTS));
}

#define N_THREADS 4
#define PER_THREAD 200

static gpointer
append_many (gpointer data)
{
  Audit *a = data;

  for (int i = 0; i < PER_THREAD; i++)
    {
      AuditRecord r = { 0 };
      r.event = AUDIT_SENT;
      r.invite_id = INV1;
      r.peer_uid = -1;
      r.detail = "thread";
      if (!audit_append (a, &r, NULL))
        return GINT_TO_POINTER (1);
    }
  return NULL;
}

static void
test_concurrent_appends (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) rows = NULL;
  GThread *threads[N_THREADS];
  Audit *a = audit_open (fx->path, NULL);

  assert_non_null (a);
  for (int i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("append", append_many, a);
  for (int i = 0; i < N_THREADS; i++)
    assert_null (g_thread_join (threads[i]));
  audit_close (a);
  expect_ok (fx->path, N_THREADS * PER_THREAD);
  rows = read_rows (fx->path, NULL);
  assert_int_equal (rows->len, N_THREADS * PER_THREAD);
  for (guint i = 0; i < rows->len; i++)
    assert_int_equal (ROW_AT (rows, i)->seq, i + 1);
}

/* ---- batches, seals, retention --------------------------------------- */

static void
test_batch_append (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) rows = NULL;
  AuditRecord recs[3] = {
    { .event = AUDIT_ACCEPTED, .invite_id = INV1, .peer_uid = 1000,
      .org_unit = "Barnkliniken", .recipients = "ann@example.org" },
    { .event = AUDIT_SENT, .invite_id = INV1, .peer_uid = -1 },
    { .event = AUDIT_FAILED, .invite_id = INV1, .peer_uid = -1,
      .smtp_reply = "550 5.1.1 no such user" },
  };
  Audit *a = open_with_clock (fx);

  assert_true (audit_append_batch (a, recs, 3, NULL));
  assert_true (audit_append_batch (a, recs, 0, NULL));
  append (a, AUDIT_DAEMON_STOP, NULL, NULL);   /* chains onto the batch */
  audit_close (a);
  expect_ok (fx->path, 4);
  rows = read_rows (fx->path, NULL);
  assert_string_equal (ROW_AT (rows, 0)->org_unit, "Barnkliniken");
  assert_int_equal (ROW_AT (rows, 0)->epoch, -1);
  assert_null (ROW_AT (rows, 0)->seal);
  /* One transaction: the three share the time the batch was taken. */
  assert_int_equal (ROW_AT (rows, 0)->time_ms, ROW_AT (rows, 2)->time_ms);
  assert_string_equal (ROW_AT (rows, 3)->prev_hash, ROW_AT (rows, 2)->row_hash);
}

static void
test_filters_review (void **state)
{
  Fixture *fx = *state;
  const struct {
    const char *name;
    AuditFilter f;
    guint expect;
  } cases[] = {
    { "booking", { .booking = "BK-7" }, 4 },
    { "staff", { .staff = "SE0000000000-test" }, 6 },
    { "recipient exact", { .recipient = "bo@example.com" }, 2 },
    { "recipient, domain in any case", { .recipient = "bo@Example.COM" }, 2 },
    { "recipient, local part as written", { .recipient = "BO@example.com" },
      0 },
    { "recipient part is no match", { .recipient = "o@example.com" }, 0 },
    { "booking and event", { .booking = "BK-7", .event = "sent" }, 1 },
  };

  write_six (fx);
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (GPtrArray) rows = read_rows (fx->path, &cases[c].f);
      if (rows->len != cases[c].expect)
        fail_msg ("case '%s': %u rows, expected %u", cases[c].name, rows->len,
                  cases[c].expect);
    }
}

static char *
key_path (Fixture *fx)
{
  return g_build_filename (fx->dir, "audit.key", NULL);
}

/* audit init (the published value into *pk), then a sealing Audit on
 * the fixture clock, set to the real time so that rows go forward. */
static Audit *
init_sealing (Fixture *fx, AuditPublicKey *pk, guint retention_days)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *kp = key_path (fx);
  AuditSealConfig sc = { .key_file = kp, .retention_days = retention_days };
  char pub[AUDIT_PUBLIC_TEXT];
  Audit *a;

  if (!audit_init (fx->path, &sc, pub, &error))
    fail_msg ("init: %s", error->message);
  assert_true (g_str_has_prefix (pub, "ed25519:"));
  assert_true (audit_pubkey_parse (pub, pk));
  a = audit_open_sealing (fx->path, &sc, &error);
  if (a == NULL)
    fail_msg ("open sealing: %s", error->message);
  assert_true (audit_sealing (a));
  fx->now_ms = g_get_real_time () / 1000;
  audit_set_clock (a, fixed_clock, fx);
  return a;
}

static void
seal (Audit *a)
{
  g_autoptr (GError) error = NULL;

  if (!audit_seal (a, &error))
    fail_msg ("seal: %s", error->message);
}

static gboolean
verify_with (const char *path, const AuditPublicKey *pk, gboolean tail,
             AuditVerifyReport *rep, GError **error)
{
  AuditVerifyOptions o = { .key = pk, .allow_unsealed_tail = tail };

  return audit_verify_full (path, &o, rep, error);
}

static void
verify_key (const char *path, const AuditPublicKey *pk, AuditVerifyReport *rep)
{
  g_autoptr (GError) error = NULL;

  if (!verify_with (path, pk, TRUE, rep, &error))
    fail_msg ("verify --key: %s", error->message);
}

static void
expect_broken_key (const char *path, const AuditPublicKey *pk,
                   const char *what, const char *needle)
{
  g_autoptr (GError) error = NULL;
  AuditVerifyReport rep;

  if (verify_with (path, pk, TRUE, &rep, &error))
    fail_msg ("case '%s': verify passed", what);
  if (strstr (error->message, needle) == NULL)
    fail_msg ("case '%s': message '%s' lacks '%s'", what, error->message,
              needle);
}

/* Rows: 1 init seal, 2-3, 4 seal, 5-6, 7 seal, 8 (unsealed tail). */
static Audit *
write_sealed (Fixture *fx, AuditPublicKey *pk)
{
  Audit *a = init_sealing (fx, pk, 0);

  append (a, AUDIT_ACCEPTED, INV1, NULL);
  append (a, AUDIT_SENT, INV1, NULL);
  seal (a);
  append (a, AUDIT_ACCEPTED, INV2, NULL);
  append (a, AUDIT_FAILED, INV2, NULL);
  seal (a);
  append (a, AUDIT_DAEMON_STOP, NULL, NULL);
  return a;
}

static void
test_seal_verify (void **state)
{
  Fixture *fx = *state;
  g_autofree char *kp = key_path (fx);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  AuditVerifyReport rep;
  AuditPublicKey pk;
  AuditSecret now;
  struct stat sb;
  char hex[65];
  Audit *a = write_sealed (fx, &pk);

  audit_close (a);
  verify_key (fx->path, &pk, &rep);
  assert_int_equal (rep.n_rows, 8);
  assert_int_equal (rep.n_seals, 3);
  assert_int_equal (rep.seals_checked, 3);
  assert_int_equal (rep.last_seal_seq, 7);
  assert_int_equal (rep.last_seal_epoch, 2);
  assert_int_equal (rep.unsealed, 1);
  /* Without --allow-unsealed-tail the unsealed last row fails. */
  assert_false (verify_with (fx->path, &pk, FALSE, &rep, &error));
  assert_non_null (strstr (error->message, "rows 8-8 (1) come after the last"
                           " seal"));
  /* The key file: 0600, epoch 3, the key row 7 named, no `next`. */
  assert_int_equal (g_stat (kp, &sb), 0);
  assert_int_equal (sb.st_mode & 0777, 0600);
  assert_true (audit_secret_load (kp, &now, NULL, NULL));
  assert_int_equal (now.epoch, 3);
  assert_null (now.next);
  rows = read_rows (fx->path, NULL);
  assert_true (audit_secret_public_hex (now.key, hex));
  assert_string_equal (hex, ROW_AT (rows, 6)->next_key);
  assert_string_equal (ROW_AT (rows, 6)->prev_seal, ROW_AT (rows, 3)->row_hash);
  assert_string_equal (ROW_AT (rows, 0)->prev_seal, ZERO64);
  assert_int_equal (strlen (ROW_AT (rows, 3)->seal), 128);
  audit_secret_clear (&now);
}

static void
test_wrong_key (void **state)
{
  Fixture *fx = *state;
  AuditPublicKey pk, other;

  audit_close (write_sealed (fx, &pk));
  memset (other.pk, 0x5a, 32);
  expect_broken_key (fx->path, &other, "wrong key",
                     "row 1: the first seal is not signed by the published"
                     " value given");
}

/* Recomputes every row hash from seq `from` on with the independent
 * implementation, as an intruder with write access would. */
static void
rechain (const char *path, gint64 from)
{
  g_autoptr (GPtrArray) rows = read_rows (path, NULL);

  testutil_sql (path, "DROP TRIGGER IF EXISTS audit_no_update");
  for (guint i = (guint) from - 1; i < rows->len; i++)
    {
      AuditRow *r = ROW_AT (rows, i);
      g_autofree char *h = NULL, *sql = NULL;

      if (i > 0)
        {
          g_free (r->prev_hash);
          r->prev_hash = g_strdup (ROW_AT (rows, i - 1)->row_hash);
        }
      h = independent_hash (r);
      g_free (r->row_hash);
      r->row_hash = g_strdup (h);
      sql = g_strdup_printf ("UPDATE audit SET prev_hash = '%s', row_hash ="
                             " '%s' WHERE seq = %" G_GINT64_FORMAT,
                             r->prev_hash, h, r->seq);
      testutil_sql (path, sql);
    }
  testutil_sql (path, "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
                  " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only');"
                  " END;");
}

/* Re-signs seal row `seq` with k over its (rechained) fields, and
 * rechains from there: what the holder of a private key can do. */
static void
resign (const char *path, gint64 seq, EVP_PKEY *k)
{
  g_autoptr (GPtrArray) rows = read_rows (path, NULL);
  AuditRow *r = ROW_AT (rows, seq - 1);
  AuditSealInput in = { r->seq, r->time_ms, r->epoch, r->prev_hash,
                        r->prev_seal, r->next_key, r->detail };
  g_autofree char *sql = NULL;
  char sig[AUDIT_SIG_HEX + 1];

  assert_true (audit_seal_sign (k, &in, sig, NULL));
  sql = g_strdup_printf ("DROP TRIGGER IF EXISTS audit_no_update;"
                         "UPDATE audit SET seal = '%s' WHERE seq = %"
                         G_GINT64_FORMAT, sig, seq);
  testutil_sql (path, sql);
  rechain (path, seq);
}

/* Forward security: the intruder holds the key file of epoch 3 and
 * rewrites row 5 with the whole chain recomputed and seal 7 re-signed
 * with the key they hold.  The chain alone passes; the published value
 * finds seal 7, whose signature needed epoch 2's key, long gone. */
static void
test_forward_security (void **state)
{
  Fixture *fx = *state;
  g_autofree char *kp = key_path (fx);
  AuditPublicKey pk;
  AuditSecret stolen;

  audit_close (write_sealed (fx, &pk));
  assert_true (audit_secret_load (kp, &stolen, NULL, NULL));
  testutil_sql (fx->path, "DROP TRIGGER audit_no_update;"
                      "UPDATE audit SET recipients = 'forged@example.com'"
                      " WHERE seq = 5;"
                      "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
                      " BEGIN SELECT RAISE (ABORT, 'audit rows are"
                      " append-only'); END;");
  rechain (fx->path, 5);
  expect_ok (fx->path, 8);
  resign (fx->path, 7, stolen.key);
  expect_ok (fx->path, 8);
  expect_broken_key (fx->path, &pk, "forged before the last seal",
                     "row 7: seal (epoch 2) signature does not verify");
  /* The same with the stolen key posing as epoch 0's: the first seal. */
  resign (fx->path, 1, stolen.key);
  expect_broken_key (fx->path, &pk, "stolen key as the first",
                     "row 1: the first seal is not signed by the published");
  audit_secret_clear (&stolen);
}

/* Seal rows themselves: their fields, and a seal removed with the
 * chain recomputed (the epochs then jump). */
static void
test_seal_tampering (void **state)
{
  Fixture *fx = *state;
  const struct {
    const char *name;
    const char *sql;
    gint64 rechain_from;
    const char *needle;
  } cases[] = {
    { "signature changed", "UPDATE audit SET seal = substr (seal, 2) || '0'"
      " WHERE seq = 4", 0, "row 4: hash mismatch" },
    { "epoch changed", "UPDATE audit SET epoch = 5 WHERE seq = 4", 0,
      "row 4: hash mismatch" },
    { "seal turned into a plain row",
      "UPDATE audit SET event = 'sent' WHERE seq = 4", 0,
      "row 4: hash mismatch" },
    { "epoch replayed, rechained", "UPDATE audit SET epoch = 2 WHERE seq = 4",
      4, "row 4: seal of epoch 2 where epoch 1 was due" },
    { "next key replaced, rechained", "UPDATE audit SET next_key = '" ZERO64
      "' WHERE seq = 4", 4, "row 4: seal (epoch 1) signature does not" },
    { "seal deleted, rechained", "DROP TRIGGER audit_no_delete;"
      " DELETE FROM audit WHERE seq = 4;"
      " UPDATE audit SET seq = seq - 1 WHERE seq > 4", 4,
      "row 6: seal of epoch 2 where epoch 1 was due" },
  };
  AuditPublicKey pk;

  audit_close (write_sealed (fx, &pk));
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autofree char *sql = g_strdup_printf ("DROP TRIGGER audit_no_update;"
                                              " %s", cases[c].sql);
      copy_file (fx->path, fx->copy);
      testutil_sql (fx->copy, sql);
      if (cases[c].rechain_from > 0)
        rechain (fx->copy, cases[c].rechain_from);
      testutil_sql (fx->copy, "CREATE TRIGGER IF NOT EXISTS audit_no_delete"
                    " BEFORE DELETE ON audit WHEN NOT EXISTS (SELECT 1 FROM"
                    " audit_purge_token) BEGIN SELECT RAISE (ABORT, 'audit"
                    " rows are append-only'); END;");
      expect_broken_key (fx->copy, &pk, cases[c].name, cases[c].needle);
      g_unlink (fx->copy);
    }
}

static void
test_missing_trigger_reported (void **state)
{
  Fixture *fx = *state;
  AuditPublicKey pk;

  audit_close (write_sealed (fx, &pk));
  copy_file (fx->path, fx->copy);
  testutil_sql (fx->copy, "DROP TRIGGER audit_no_delete");
  expect_broken_key (fx->copy, &pk, "trigger dropped", "audit_no_delete");
}

/* No seal at all, or a seal first of epoch 3: both refused. */
/* The clear addresses live outside the chain: one changed there would
 * be shown for a sealed row, so verify checks each against its hash. */
static void
test_address_table_changed (void **state)
{
  Fixture *fx = *state;
  AuditPublicKey pk;

  audit_close (write_sealed (fx, &pk));
  copy_file (fx->path, fx->copy);
  testutil_sql (fx->copy, "UPDATE audit_address SET address ="
                " 'forged@example.com' WHERE address = 'bo@example.com'");
  expect_broken_key (fx->copy, &pk, "address changed beside the chain",
                     "does not match its keyed hash");
  g_unlink (fx->copy);
  copy_file (fx->path, fx->copy);
  testutil_sql (fx->copy, "DELETE FROM audit_address WHERE address ="
                " 'bo@example.com'");
  expect_broken_key (fx->copy, &pk, "address removed beside the chain",
                     "row 2 names an address that is neither kept nor"
                     " erased");
  g_unlink (fx->copy);
  copy_file (fx->path, fx->copy);
  testutil_sql (fx->copy, "UPDATE audit_address SET address = NULL,"
                " erased_ms = 1 WHERE address = 'bo@example.com'");
  expect_broken_key (fx->copy, &pk, "erasure made beside the chain",
                     "no `erased` row records it");
}

static void
test_no_seals_refused (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  AuditVerifyReport rep;
  AuditPublicKey pk;

  write_six (fx);
  memset (pk.pk, 1, 32);
  assert_false (verify_with (fx->path, &pk, TRUE, &rep, &error));
  assert_non_null (strstr (error->message, "NO SEALS"));
  assert_int_equal (rep.n_rows, 6);
}

/* A crash after a seal's commit, before the key file moved on: the file
 * holds epoch 1 and the `next` key; opening finishes the move.  A key
 * file of another epoch, or one others can read, is refused. */
static void
test_key_catch_up (void **state)
{
  Fixture *fx = *state;
  g_autofree char *kp = key_path (fx);
  g_autoptr (GError) error = NULL;
  AuditSealConfig sc = { .key_file = kp };
  AuditVerifyReport rep;
  AuditPublicKey pk;
  AuditSecret before, after;
  Audit *a = init_sealing (fx, &pk, 0);

  assert_true (audit_secret_load (kp, &before, NULL, NULL));
  seal (a);
  audit_close (a);
  assert_true (audit_secret_load (kp, &after, NULL, NULL));
  /* As the file stood between steps 2 and 3: epoch 1 with next. */
  before.next = g_steal_pointer (&after.key);
  assert_true (audit_secret_store (kp, &before, NULL));
  a = audit_open_sealing (fx->path, &sc, &error);
  if (a == NULL)
    fail_msg ("open: %s", error->message);
  seal (a);
  audit_close (a);
  verify_key (fx->path, &pk, &rep);
  assert_int_equal (rep.seals_checked, 3);
  /* The key file of epoch 1 again (restored from a backup): refused. */
  EVP_PKEY_free (g_steal_pointer (&before.next));
  assert_true (audit_secret_store (kp, &before, NULL));
  assert_null (audit_open_sealing (fx->path, &sc, &error));
  assert_non_null (strstr (error->message, "does not continue"));
  g_clear_error (&error);
  /* Others may read it: refused, through the same descriptor. */
  g_chmod (kp, 0644);
  assert_null (audit_open_sealing (fx->path, &sc, &error));
  assert_non_null (strstr (error->message, "mode 0600"));
  g_clear_error (&error);
  /* Gone, while the file holds seals: refused, not run unsealed. */
  g_chmod (kp, 0600);
  {
    g_autofree char *away = g_build_filename (fx->dir, "away.key", NULL);
    assert_int_equal (g_rename (kp, away), 0);
    assert_null (audit_open_sealing (fx->path, &sc, &error));
    assert_non_null (strstr (error->message, "is missing: restore it"));
    g_clear_error (&error);
    assert_int_equal (g_rename (away, kp), 0);
  }
  /* A symbolic link: refused (O_NOFOLLOW). */
  g_chmod (kp, 0600);
  {
    g_autofree char *link = g_build_filename (fx->dir, "link.key", NULL);
    AuditSealConfig sl = { .key_file = link };
    assert_int_equal (symlink (kp, link), 0);
    assert_null (audit_open_sealing (fx->path, &sl, &error));
    assert_non_null (strstr (error->message, "symbolic link"));
  }
  audit_secret_clear (&before);
  audit_secret_clear (&after);
}

static void
test_init_refuses_twice (void **state)
{
  Fixture *fx = *state;
  g_autofree char *kp = key_path (fx);
  g_autoptr (GError) error = NULL;
  AuditSealConfig sc = { .key_file = kp };
  AuditPublicKey pk;
  char pub[AUDIT_PUBLIC_TEXT];
  Audit *a = init_sealing (fx, &pk, 0);

  assert_false (audit_init (fx->path, &sc, pub, &error));
  assert_non_null (strstr (error->message, "exists"));
  g_clear_error (&error);
  g_unlink (kp);
  /* The daemon holds the file: a second writer is refused. */
  assert_false (audit_init (fx->path, &sc, pub, &error));
  assert_non_null (strstr (error->message, "another writer"));
  g_clear_error (&error);
  audit_close (a);
  /* Seals there but the key gone: restore it, not a new chain. */
  assert_false (audit_init (fx->path, &sc, pub, &error));
  assert_non_null (strstr (error->message, "is missing: restore it"));
}

/* Time: the clock steps back 10 s; rows keep their order and one
 * clock_back row records the step; verify passes and counts it.  A row
 * whose time goes back by hand (rechained) fails. */
static void
test_clock_back (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) rows = NULL;
  AuditVerifyReport rep;
  AuditPublicKey pk;
  Audit *a = init_sealing (fx, &pk, 0);

  append (a, AUDIT_ACCEPTED, INV1, NULL);       /* 2 */
  fx->now_ms -= 10000;
  append (a, AUDIT_SENT, INV1, NULL);           /* 3 clock_back, 4 sent */
  append (a, AUDIT_SENT, INV2, NULL);           /* 5: still behind */
  seal (a);
  audit_close (a);
  rows = read_rows (fx->path, NULL);
  assert_string_equal (ROW_AT (rows, 2)->event, "clock_back");
  assert_non_null (strstr (ROW_AT (rows, 2)->detail, "went back 9000 ms"));
  assert_string_equal (ROW_AT (rows, 3)->event, "sent");
  assert_string_equal (ROW_AT (rows, 4)->event, "sent");
  for (guint i = 1; i < rows->len; i++)
    assert_true (ROW_AT (rows, i)->time_ms >= ROW_AT (rows, i - 1)->time_ms);
  verify_key (fx->path, &pk, &rep);
  assert_int_equal (rep.n_clock_back, 1);
  assert_int_equal (rep.first_clock_back_seq, 3);
  copy_file (fx->path, fx->copy);
  testutil_sql (fx->copy, "DROP TRIGGER audit_no_update;"
                "UPDATE audit SET time_ms = time_ms - 60000 WHERE seq = 5");
  rechain (fx->copy, 5);
  expect_broken_key (fx->copy, &pk, "time edited back",
                     "row 5: time goes back");
}

/* --max-age, and anchors: matching, missing (cut) and contradicted. */
static void
test_max_age_and_anchors (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) hs = g_array_new (FALSE, FALSE, sizeof (AuditAnchor));
  AuditVerifyOptions o = { 0 };
  AuditVerifyReport rep;
  AuditPublicKey pk;
  AuditAnchor h;
  Audit *a = write_sealed (fx, &pk);

  seal (a);                                     /* 9 */
  audit_close (a);
  o.key = &pk;
  o.now_ms = fx->now_ms + 3600 * 1000;
  o.max_age_ms = 7200 * 1000;
  assert_true (audit_verify_full (fx->path, &o, &rep, NULL));
  o.max_age_ms = 600 * 1000;
  assert_false (audit_verify_full (fx->path, &o, &rep, &error));
  assert_non_null (strstr (error->message, "more than --max-age 600 s"));
  g_clear_error (&error);
  o.max_age_ms = 0;
  assert_true (audit_read_anchor (fx->path, &h, NULL));
  assert_int_equal (h.seq, 9);
  assert_int_equal (h.epoch, 3);
  g_array_append_val (hs, h);
  o.anchors = hs;
  assert_true (audit_verify_full (fx->path, &o, &rep, NULL));
  assert_int_equal (rep.anchors_checked, 1);
  /* The file cut before row 9: the anchor is missing. */
  copy_file (fx->path, fx->copy);
  testutil_sql (fx->copy, "DROP TRIGGER audit_no_delete;"
                "DELETE FROM audit WHERE seq = 9;"
                "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
                " WHEN NOT EXISTS (SELECT 1 FROM audit_purge_token)"
                " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only');"
                " END;");
  o.allow_unsealed_tail = TRUE;
  assert_false (audit_verify_full (fx->copy, &o, &rep, &error));
  assert_non_null (strstr (error->message, "anchored head row 9"));
  g_clear_error (&error);
  /* An anchor that says another hash: contradicted. */
  g_array_index (hs, AuditAnchor, 0).hash[0] ^= 1;
  assert_false (audit_verify_full (fx->path, &o, &rep, &error));
  assert_non_null (strstr (error->message, "contradicts the head anchored"));
}

static void
test_anchor_lines (void **state)
{
  static const char hash[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  AuditAnchor in = { 42, "", 7, 1796290808655 }, out;
  g_autofree char *sd = NULL, *syslog_line = NULL, *json = NULL;

  (void) state;
  memcpy (in.hash, hash, 65);
  sd = audit_anchor_sd (&in);
  syslog_line = g_strdup_printf ("Dec  3 10:00:00 host invitemaild[12]:"
                                 " audit sealed %s", sd);
  assert_true (audit_anchor_parse_line (syslog_line, &out));
  assert_int_equal (out.seq, 42);
  assert_int_equal (out.epoch, 7);
  assert_int_equal (out.time_ms, 1796290808655);
  assert_string_equal (out.hash, hash);
  json = g_strdup_printf ("{ \"MESSAGE_ID\" : \"%s\",\"INVITEMAIL_AUDIT_SEQ\":"
                          "\"42\",\"INVITEMAIL_AUDIT_HASH\":\"%s\","
                          "\"INVITEMAIL_AUDIT_EPOCH\":\"7\","
                          "\"INVITEMAIL_AUDIT_TIME_MS\":\"1796290808655\"}",
                          AUDIT_ANCHOR_MESSAGE_ID, hash);
  memset (&out, 0, sizeof out);
  assert_true (audit_anchor_parse_line (json, &out));
  assert_int_equal (out.seq, 42);
  assert_string_equal (out.hash, hash);
  /* Not anchors: other lines, a short hash, a negative number. */
  assert_false (audit_anchor_parse_line ("invitemaild: info: started", &out));
  assert_false (audit_anchor_parse_line ("[invitemail-audit@32473 seq=\"1\""
                                         " hash=\"abc\" epoch=\"0\""
                                         " time_ms=\"1\"]", &out));
  assert_false (audit_anchor_parse_line ("[invitemail-audit@32473 seq=\"-1\""
                                         " hash=\"0123456789abcdef0123456789"
                                         "abcdef0123456789abcdef0123456789"
                                         "abcdef\" epoch=\"0\" time_ms=\"1\"]",
                                         &out));
}

#define DAY_MS (24 * 3600 * G_GINT64_CONSTANT (1000))

static void
test_purge (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) rows = NULL;
  g_autoptr (GError) error = NULL;
  AuditVerifyReport rep;
  AuditPublicKey pk;
  AuditVerifyOptions o = { .key = &pk };
  gint64 real;
  Audit *a = init_sealing (fx, &pk, 1);        /* 1 seal, "retention 1" */

  real = fx->now_ms;
  append (a, AUDIT_ACCEPTED, INV1, NULL);     /* 2 */
  append (a, AUDIT_SENT, INV1, NULL);         /* 3 */
  seal (a);                                   /* 4 */
  fx->now_ms = real + 3 * DAY_MS;
  append (a, AUDIT_ACCEPTED, INV2, NULL);     /* 5 */
  seal (a);                                   /* 6 */
  append (a, AUDIT_SENT, INV2, NULL);         /* 7 */
  /* Retention 1 day at real + 2 days: rows 1-4 go, 5-7 stay; the purge
   * (row 8) is sealed at once (row 9). */
  if (!audit_purge (a, real + 2 * DAY_MS, &error))
    fail_msg ("purge: %s", error->message);
  audit_close (a);
  rows = read_rows (fx->path, NULL);
  assert_int_equal (rows->len, 5);
  assert_int_equal (ROW_AT (rows, 0)->seq, 5);
  assert_string_equal (ROW_AT (rows, 3)->event, "purged");
  assert_non_null (strstr (ROW_AT (rows, 3)->detail, "rows 1-4 purged"));
  assert_string_equal (ROW_AT (rows, 4)->event, "sealed");
  /* Verified as of the last row's day (its rows are 3 days ahead). */
  o.now_ms = fx->now_ms + 3600 * 1000;
  if (!audit_verify_full (fx->path, &o, &rep, &error))
    fail_msg ("verify: %s", error->message);
  assert_int_equal (rep.checkpoint_seq, 4);
  assert_int_equal (rep.n_kept_seals, 2);
  assert_int_equal (rep.first_seq, 5);
  assert_int_equal (rep.last_seal_seq, 9);
  assert_int_equal (rep.n_seals, 4);
  assert_int_equal (rep.seals_checked, 4);   /* kept 1 and 4, then 6, 9 */
  assert_int_equal (rep.unsealed, 0);
  /* The kept seals are append-only and bound by hash and signature. */
  copy_file (fx->path, fx->copy);
  testutil_sql (fx->copy, "DROP TRIGGER audit_kept_seal_no_update;"
                      "UPDATE audit_kept_seal SET detail = 'x' WHERE seq = 4");
  assert_false (audit_verify_full (fx->copy, &o, &rep, &error));
  assert_non_null (strstr (error->message, "kept seal of purged rows: row 4:"
                           " hash mismatch"));
  g_clear_error (&error);
  g_unlink (fx->copy);
  copy_file (fx->path, fx->copy);
  testutil_sql (fx->copy, "DROP TRIGGER audit_kept_seal_no_delete;"
                      "DELETE FROM audit_kept_seal");
  assert_false (audit_verify_full (fx->copy, &o, &rep, &error));
  assert_non_null (strstr (error->message, "rows 1-4 missing"));
  g_clear_error (&error);
  g_unlink (fx->copy);
  /* A hostile file: the table rebuilt without its constraints, a kept
   * seal with no prev_hash.  A fault, not a crash. */
  copy_file (fx->path, fx->copy);
  testutil_sql (fx->copy, "CREATE TABLE k2 AS SELECT * FROM audit_kept_seal;"
                "DROP TABLE audit_kept_seal;"
                "ALTER TABLE k2 RENAME TO audit_kept_seal;"
                "UPDATE audit_kept_seal SET prev_hash = NULL, seal = NULL");
  assert_false (audit_verify_full (fx->copy, &o, &rep, &error));
  assert_non_null (strstr (error->message, "kept seal of purged rows"));
}

/* A purge the chain does not vouch for: rows deleted up to a seal, the
 * seals kept just as a real purge keeps them, but no sealed `purged`
 * row, or one dated before the signed retention allowed. */
static void
test_fake_purge (void **state)
{
  Fixture *fx = *state;
  AuditPublicKey pk;
  Audit *a = init_sealing (fx, &pk, 30);

  append (a, AUDIT_ACCEPTED, INV1, NULL);     /* 2 */
  seal (a);                                   /* 3 */
  append (a, AUDIT_SENT, INV1, NULL);         /* 4 */
  seal (a);                                   /* 5 */
  audit_close (a);
  testutil_sql (fx->path, "DROP TRIGGER audit_no_delete;"
                "INSERT INTO audit_kept_seal SELECT seq, time_ms, epoch,"
                " detail, seal, next_key, prev_seal, prev_hash, row_hash, 0"
                " FROM audit WHERE event = 'sealed' AND seq <= 3;"
                "DELETE FROM audit WHERE seq <= 3;"
                "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
                " WHEN NOT EXISTS (SELECT 1 FROM audit_purge_token)"
                " BEGIN SELECT RAISE (ABORT, 'audit rows are append-only');"
                " END;");
  expect_broken_key (fx->path, &pk, "purge without a purged row",
                     "no `purged` row in the chain names that purge");
}

static void
test_old_format_refused (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;

  write_six (fx);
  testutil_sql (fx->path, "PRAGMA user_version = 2");
  assert_false (audit_verify (fx->path, NULL, &error));
  assert_true (g_error_matches (error, AUDIT_ERROR, AUDIT_ERROR_FORMAT));
  assert_non_null (strstr (error->message, "schema version 2 (HMAC seals)"));
  g_clear_error (&error);
  assert_null (audit_open (fx->path, &error));
  assert_true (g_error_matches (error, AUDIT_ERROR, AUDIT_ERROR_FORMAT));
}


/* Erasure: the chain holds keyed hashes only; erase removes the clear
 * address from beside it (and from the files' bytes), audits who and how
 * many rows, and verify still passes. */
static void
test_erase_recipient (void **state)
{
  Fixture *fx = *state;
  g_autofree char *kp = key_path (fx);
  g_autofree char *wal = g_strconcat (fx->path, "-wal", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  AuditSealConfig sc = { .key_file = kp };
  AuditRecord sent = { .event = AUDIT_SENT, .invite_id = INV1,
                       .peer_uid = -1, .recipients = "bo@example.com",
                       .smtp_reply = "250 ok" };
  AuditFilter by_bo = { .recipient = "bo@EXAMPLE.com" };
  AuditAddressState st;
  AuditVerifyReport rep;
  AuditPublicKey pk;
  gint64 n = 0;
  Audit *a = init_sealing (fx, &pk, 0);

  append (a, AUDIT_ACCEPTED, INV1, NULL);      /* ann, bo */
  assert_true (audit_append (a, &sent, NULL));
  seal (a);
  audit_close (a);
  rows = read_rows (fx->path, NULL);
  assert_string_equal (ROW_AT (rows, 1)->recipients,
                       "ann@example.org,bo@example.com");
  assert_null (strchr (ROW_AT (rows, 1)->recipient_keys, '@'));
  g_clear_pointer (&rows, g_ptr_array_unref);
  rows = read_rows (fx->path, &by_bo);
  assert_int_equal (rows->len, 2);
  g_clear_pointer (&rows, g_ptr_array_unref);

  a = audit_open_sealing (fx->path, &sc, &error);
  assert_non_null (a);
  audit_set_clock (a, fixed_clock, fx);
  assert_true (audit_erase_recipient (a, "bo@Example.COM", 1234, NULL, &n,
                                        &error));
  assert_int_equal (n, 2);
  assert_false (audit_erase_recipient (a, "bo@example.com", 1234, NULL, &n,
                                         &error));
  assert_non_null (strstr (error->message, "no clear address to erase"));
  g_clear_error (&error);
  seal (a);
  audit_close (a);

  verify_key (fx->path, &pk, &rep);
  rows = read_rows (fx->path, NULL);
  assert_string_equal (ROW_AT (rows, 1)->recipients,
                       "ann@example.org,(erased)");
  assert_string_equal (ROW_AT (rows, 2)->recipients, "(erased)");
  assert_string_equal (ROW_AT (rows, 4)->event, "erased");
  assert_int_equal (ROW_AT (rows, 4)->peer_uid, 1234);
  assert_null (strstr (ROW_AT (rows, 4)->detail, "bo@"));
  assert_non_null (strstr (ROW_AT (rows, 4)->detail, "2 row(s)"));
  assert_true (audit_read_address (fx->path, "bo@example.com", &st, NULL));
  assert_false (st.kept);
  assert_true (st.erased_ms > 0);
  assert_int_equal (st.n_rows, 2);
  /* Gone from the bytes of the file and its WAL; the other stays. */
  assert_false (testutil_file_holds (fx->path, "bo@example.com"));
  assert_false (testutil_file_holds (wal, "bo@example.com"));
  assert_true (testutil_file_holds (fx->path, "ann@example.org"));
}

static void
test_purge_refuses_broken (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) rows = NULL;
  g_autofree char *kp = key_path (fx);
  AuditSealConfig sc = { .key_file = kp, .retention_days = 1 };
  AuditPublicKey pk;
  Audit *a = init_sealing (fx, &pk, 1);

  append (a, AUDIT_ACCEPTED, INV1, NULL);
  seal (a);
  audit_close (a);
  testutil_sql (fx->path, "DROP TRIGGER audit_no_update;"
                      "UPDATE audit SET staff = 'x' WHERE seq = 2");
  a = audit_open_sealing (fx->path, &sc, NULL);
  assert_non_null (a);
  assert_false (audit_purge (a, fx->now_ms + 5 * DAY_MS, &error));
  assert_true (g_error_matches (error, AUDIT_ERROR, AUDIT_ERROR_BROKEN));
  audit_close (a);
  rows = read_rows (fx->path, NULL);
  assert_int_equal (ROW_AT (rows, 0)->seq, 1);   /* nothing deleted */
}

static void
test_head (void **state)
{
  Fixture *fx = *state;
  g_autoptr (GPtrArray) rows = NULL;
  char hash[65];
  gint64 seq = 0;

  write_six (fx);
  rows = read_rows (fx->path, NULL);
  assert_true (audit_read_head (fx->path, &seq, hash, NULL));
  assert_int_equal (seq, 6);
  assert_string_equal (hash, ROW_AT (rows, 5)->row_hash);
}

int
main (void)
{
#define T(fn) cmocka_unit_test_setup_teardown (fn, setup, teardown)
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_sha256_hex),
    cmocka_unit_test (test_event_names),
    T (test_append_and_verify),
    T (test_canonical_encoding),
    T (test_tampering_found),
    T (test_unknown_event_found),
    T (test_triggers_refuse),
    T (test_reopen_continues),
    T (test_tampered_tail_still_opens),
    T (test_read_filters),
    T (test_read_stops),
    T (test_reader_beside_writer),
    T (test_missing_file),
    T (test_concurrent_appends),
    T (test_batch_append),
    T (test_filters_review),
    T (test_seal_verify),
    T (test_wrong_key),
    T (test_forward_security),
    T (test_seal_tampering),
    T (test_missing_trigger_reported),
    T (test_address_table_changed),
    T (test_no_seals_refused),
    T (test_key_catch_up),
    T (test_init_refuses_twice),
    T (test_clock_back),
    T (test_max_age_and_anchors),
    cmocka_unit_test (test_anchor_lines),
    T (test_purge),
    T (test_fake_purge),
    T (test_old_format_refused),
    T (test_erase_recipient),
    T (test_purge_refuses_broken),
    T (test_head),
  };
#undef T

  return cmocka_run_group_tests (tests, NULL, NULL);
}
