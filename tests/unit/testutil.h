/*
 * testutil.h - helpers the cmocka tests share: removing a test's
 * temporary folder, and raw SQL on a state file (as an attacker or a
 * crash would leave it, behind the modules' backs).
 * Include after <cmocka.h>.
 */
#ifndef INVITEMAIL_TESTUTIL_H
#define INVITEMAIL_TESTUTIL_H

#include <glib.h>

/* Removes dir and everything below it; quiet about what is not there. */
void testutil_rm_rf (const char *dir);

/* Runs sql on the SQLite file at path; fails the test on error. */
void testutil_sql (const char *path, const char *sql);

#endif
