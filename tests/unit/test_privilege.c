/*
 * test_privilege.c - dropping root for real, in a forked child: every
 * id becomes the target's and root cannot be had back; the state files
 * root left are handed over, a symlink in their place is refused.
 * Needs root (CI runs as root); skipped otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <glib/gstdio.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privilege.h"

static const struct passwd *
nobody (void)
{
  const struct passwd *pw = getpwnam ("nobody");

  assert_non_null (pw);
  assert_int_not_equal (pw->pw_uid, 0);
  return pw;
}

/* In a child: drop, then try everything that would give root back. */
static int
child_drop (uid_t uid, gid_t gid)
{
  uid_t ru, eu, su;
  gid_t rg, eg, sg;

  if (!privilege_drop ("nobody", uid, gid, NULL))
    return 10;
  if (getresuid (&ru, &eu, &su) != 0 || ru != uid || eu != uid || su != uid)
    return 11;
  if (getresgid (&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid)
    return 12;
  if (setuid (0) == 0 || seteuid (0) == 0 || setreuid (0, 0) == 0 || setgid (0) == 0)
    return 13;
  return 0;
}

static void
test_drop (void **state)
{
  const struct passwd *pw;
  int status = -1;
  pid_t pid;

  (void) state;
  if (geteuid () != 0)
    skip ();
  pw = nobody ();
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    _exit (child_drop (pw->pw_uid, pw->pw_gid));
  assert_int_equal (waitpid (pid, &status, 0), pid);
  assert_true (WIFEXITED (status));
  assert_int_equal (WEXITSTATUS (status), 0);
}

static void
test_drop_to_root_refused (void **state)
{
  g_autoptr (GError) error = NULL;

  (void) state;
  assert_false (privilege_drop ("root", 0, 0, &error));
  assert_true (g_error_matches (error, PRIVILEGE_ERROR, PRIVILEGE_ERROR_DROP));
}

static void
test_take_files (void **state)
{
  g_autofree char *dir = g_dir_make_tmp ("impriv-XXXXXX", NULL);
  g_autofree char *db = g_build_filename (dir, "queue.db", NULL);
  g_autofree char *gone = g_build_filename (dir, "queue.db-wal", NULL);
  g_autofree char *link = g_build_filename (dir, "audit.key", NULL);
  g_autoptr (GError) error = NULL;
  const struct passwd *pw;
  struct stat st;

  (void) state;
  if (geteuid () != 0)
    skip ();
  pw = nobody ();
  assert_true (g_file_set_contents (db, "x", 1, NULL));
  {
    const char *const files[] = { db, gone, NULL };
    assert_true (privilege_take_files (files, pw->pw_uid, &error));
  }
  assert_int_equal (stat (db, &st), 0);
  assert_int_equal (st.st_uid, pw->pw_uid);
  assert_int_equal (st.st_gid, 0);          /* the group is left alone */
  /* A symlink planted in a state file's place is refused, its target
   * left as it was. */
  assert_int_equal (symlink ("/etc/passwd", link), 0);
  {
    const char *const files[] = { link, NULL };
    assert_false (privilege_take_files (files, pw->pw_uid, &error));
  }
  assert_int_equal (stat ("/etc/passwd", &st), 0);
  assert_int_equal (st.st_uid, 0);
  testutil_rm_rf (dir);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_drop),
    cmocka_unit_test (test_drop_to_root_refused),
    cmocka_unit_test (test_take_files),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
