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

#include <string.h>
#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "audit.h"
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

  fx->dir = g_dir_make_tmp ("test_audit-XXXXXX", NULL);
  assert_non_null (fx->dir);
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
  GDir *d = g_dir_open (fx->dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (fx->dir, name, NULL);
      g_unlink (p);
    }
  if (d != NULL)
    g_dir_close (d);
  g_rmdir (fx->dir);
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
raw_exec (const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  char *msg = NULL;

  assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
  sqlite3_busy_timeout (db, 5000);
  if (sqlite3_exec (db, sql, NULL, NULL, &msg) != SQLITE_OK)
    fail_msg ("raw sql failed: %s: %s", sql, msg);
  sqlite3_close (db);
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
  const char *v[] = {
    seq, t, r->event, r->invite_id, r->peer_uid >= 0 ? uid : NULL, r->staff,
    r->booking, r->recipients, r->smtp_reply, r->error_code, r->field,
    r->detail, r->lang, r->template_name, r->link_sha256, r->notice_sha256,
    r->template_sha256, r->signature_sha256, r->message_sha256, r->prev_hash,
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
  audit_sha256_hex ("abc", 3, out);
  assert_string_equal (out, "ba7816bf8f01cfea414140de5dae2223"
                            "b00361a396177a9cb410ff61f20015ad");
  audit_sha256_hex ("", 0, out);
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
      raw_exec (fx->copy, sql);
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
  forged.prev_hash = ROW_AT (rows, 5)->row_hash;
  hash = independent_hash (&forged);
  sql = g_strdup_printf ("INSERT INTO audit (seq, time_ms, event, prev_hash,"
                         " row_hash) VALUES (7, 1, 'bogus', '%s', '%s')",
                         forged.prev_hash, hash);
  raw_exec (fx->path, sql);
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
  raw_exec (fx->path, "DROP TRIGGER audit_no_update;"
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
  };
#undef T

  return cmocka_run_group_tests (tests, NULL, NULL);
}
