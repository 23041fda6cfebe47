/*
 * testutil.h - helpers the cmocka tests share: a test's temporary
 * folder, raw SQL on a state file (as an attacker or a crash would
 * leave it, behind the modules' backs), and the parts of a test daemon
 * (config, queue, audit, gate, committer) made in one place the way
 * invitemaild makes them, so that a change to how the daemon's parts
 * are made is made here once.
 * Include after <cmocka.h>.
 */
#ifndef INVITEMAIL_TESTUTIL_H
#define INVITEMAIL_TESTUTIL_H

#include <glib.h>
#include <sqlite3.h>

#include "audit.h"
#include "commit.h"
#include "config.h"
#include "gate.h"
#include "queue.h"
#include "render.h"

/* Removes dir and everything below it; quiet about what is not there. */
void testutil_rm_rf (const char *dir);

/* Runs sql on the SQLite file at path; fails the test on error. */
void testutil_sql (const char *path, const char *sql);

/* From now on the audit file at audit_db refuses every new row (a
 * trigger raises ABORT on INSERT), as a failing disk would, after the
 * gate let a request in; testutil_audit_take_rows undoes it. */
void testutil_audit_refuse_rows (const char *audit_db);
void testutil_audit_take_rows (const char *audit_db);

/* Another connection's write transaction (BEGIN IMMEDIATE) on the
 * SQLite file at path, as another process or a slow disk would hold it:
 * the modules' writers wait on it, then give up.  Release it with
 * testutil_release_write_lock. */
sqlite3 *testutil_hold_write_lock (const char *path);
void testutil_release_write_lock (sqlite3 *db);

/* Whether the bytes of the file at path (SQLite pages, a WAL) hold
 * needle anywhere; FALSE for a file that is not there. */
gboolean testutil_file_holds (const char *path, const char *needle);

/* A new temporary folder from a g_dir_make_tmp template such as
 * "imsvc-XXXXXX" (transfer full); fails the test when none can be made. */
char *testutil_tmpdir (const char *tmpl);

/* The source tree's top folder, absolute: $srcdir as make check sets
 * it, else the current folder (transfer full). */
char *testutil_srcdir (void);

/* An [invite] section that names the shipped templates and signatures
 * of the source tree, with meet.example.org as the only link host
 * (transfer full). */
char *testutil_invite_conf (void);

/* Turns the default main context for ms milliseconds. */
void testutil_spin (guint ms);

/* Audit rows in the file at audit_db with this event and invite id
 * (NULL: any); fails the test when the file cannot be read. */
int testutil_audit_count (const char *audit_db, const char *event, const char *invite_id);

/* The parts of a test daemon in a temporary folder.  The test reaches
 * into them as it likes; testutil_daemon_free takes them down in the
 * daemon's order. */
typedef struct {
  char *dir;                  /* the temporary folder, removed at the end */
  Config *cfg;                /* from invitemail.conf in dir */
  Templates *templates;       /* NULL until testutil_daemon_load_templates */
  Queue *queue;               /* the test's own connection to cfg->queue_db */
  Audit *audit;               /* cfg->audit_db */
  Gate *gate;                 /* over audit */
  Committer *committer;       /* NULL until testutil_daemon_start_committer */
  gboolean owns_context;      /* the default main context is the test's */
} TestDaemon;

/* Makes the folder from tmpl, writes conf there as invitemail.conf
 * (relative paths in it name files in the folder; an empty conf gives
 * queue.db and audit.db there) and loads it; then opens the queue and
 * the audit and puts the gate over the audit.  Fails the test when any
 * part cannot be made. */
TestDaemon *testutil_daemon_new (const char *tmpl, const char *conf);

/* Loads the templates and signatures cfg names. */
void testutil_daemon_load_templates (TestDaemon *d);

/* Starts the committer on cfg->queue_db behind the gate.  As in the
 * daemon, whose main loop owns the default main context, the test's
 * thread takes that context first, so the committer's answers come
 * through it (a context nobody owns would let the committer run them on
 * its own thread). */
void testutil_daemon_start_committer (TestDaemon *d);

/* Stops the committer, runs what it left on the main context, closes
 * the rest, removes the folder.  What the test built on top (a service,
 * a socket, delivery workers) it stops first. */
void testutil_daemon_free (TestDaemon *d);

#endif
