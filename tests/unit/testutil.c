/* testutil.c - see testutil.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "audit_read.h"

#include "testutil.h"

void
testutil_rm_rf (const char *dir)
{
  g_autoptr (GDir) d = dir != NULL ? g_dir_open (dir, 0, NULL) : NULL;
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      if (g_file_test (p, G_FILE_TEST_IS_DIR) && !g_file_test (p, G_FILE_TEST_IS_SYMLINK))
        testutil_rm_rf (p);
      else
        g_unlink (p);
    }
  if (dir != NULL)
    g_rmdir (dir);
}

void
testutil_sql (const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  char *msg = NULL;

  assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
  sqlite3_busy_timeout (db, 5000);
  if (sqlite3_exec (db, sql, NULL, NULL, &msg) != SQLITE_OK)
    fail_msg ("raw sql failed: %s: %s", sql, msg);
  sqlite3_close (db);
}

void
testutil_audit_refuse_rows (const char *audit_db)
{
  testutil_sql (audit_db, "CREATE TRIGGER im_test_fail BEFORE INSERT ON audit"
                " BEGIN SELECT RAISE (ABORT, 'test: audit unwritable'); END");
}

void
testutil_audit_take_rows (const char *audit_db)
{
  testutil_sql (audit_db, "DROP TRIGGER im_test_fail");
}

sqlite3 *
testutil_hold_write_lock (const char *path)
{
  sqlite3 *db = NULL;

  assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
  assert_int_equal (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  return db;
}

void
testutil_release_write_lock (sqlite3 *db)
{
  assert_int_equal (sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close (db);
}

gboolean
testutil_file_holds (const char *path, const char *needle)
{
  g_autofree char *data = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &data, &len, NULL))
    return FALSE;
  return memmem (data, len, needle, strlen (needle)) != NULL;
}

char *
testutil_tmpdir (const char *tmpl)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp (tmpl, &error);

  if (dir == NULL)
    fail_msg ("temporary folder %s: %s", tmpl, error->message);
  return dir;
}

char *
testutil_srcdir (void)
{
  const char *srcdir = g_getenv ("srcdir");

  return g_canonicalize_filename (srcdir != NULL ? srcdir : ".", NULL);
}

char *
testutil_invite_conf (void)
{
  g_autofree char *srcdir = testutil_srcdir ();

  return g_strdup_printf ("[invite]\ntemplates_dir = %s/templates\n"
                          "signatures_dir = %s/signatures\n"
                          "link_hosts = meet.example.org\n", srcdir, srcdir);
}

void
testutil_spin (guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < until)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

static gboolean
count_row (const AuditRow *row, gpointer data)
{
  (void) row;
  (*(int *) data)++;
  return TRUE;
}

int
testutil_audit_count (const char *audit_db, const char *event, const char *invite_id)
{
  AuditFilter filter = { .event = event, .invite_id = invite_id };
  int n = 0;

  assert_true (audit_read (audit_db, &filter, count_row, &n, NULL));
  return n;
}

TestDaemon *
testutil_daemon_new (const char *tmpl, const char *conf)
{
  TestDaemon *d = g_new0 (TestDaemon, 1);
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;

  d->dir = testutil_tmpdir (tmpl);
  path = g_build_filename (d->dir, "invitemail.conf", NULL);
  assert_true (g_file_set_contents (path, conf, -1, NULL));
  d->cfg = config_load (path, &error);
  if (d->cfg == NULL)
    fail_msg ("config: %s", error->message);
  d->queue = queue_open (d->cfg->queue_db, NULL);
  assert_non_null (d->queue);
  d->audit = audit_open (d->cfg->audit_db, NULL);
  assert_non_null (d->audit);
  d->gate = gate_new (d->audit);
  return d;
}

void
testutil_daemon_load_templates (TestDaemon *d)
{
  g_autoptr (GError) error = NULL;

  d->templates = templates_load (d->cfg->templates_dir, d->cfg->signatures_dir, &error);
  if (d->templates == NULL)
    fail_msg ("templates: %s", error->message);
}

void
testutil_daemon_start_committer (TestDaemon *d)
{
  assert_true (g_main_context_acquire (NULL));
  d->owns_context = TRUE;
  d->committer = committer_start (d->cfg->queue_db, d->gate, NULL);
  assert_non_null (d->committer);
}

void
testutil_daemon_free (TestDaemon *d)
{
  if (d->committer != NULL)
    committer_stop (d->committer);
  while (d->owns_context && g_main_context_iteration (NULL, FALSE))
    ;
  queue_close (d->queue);
  gate_free (d->gate);
  audit_close (d->audit);
  if (d->templates != NULL)
    templates_free (d->templates);
  config_free (d->cfg);
  testutil_rm_rf (d->dir);
  g_free (d->dir);
  if (d->owns_context)
    g_main_context_release (NULL);
  g_free (d);
}
