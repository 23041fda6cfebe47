/*
 * privilege.h - giving up root, like Postfix and OpenSMTPD.
 *
 * Started as root (outside systemd, which starts it as its own user),
 * invitemaild binds its socket and takes ownership of its state files,
 * then becomes [daemon] user / group for good: supplementary groups from
 * the group database (initgroups), then the gid, then the uid, and then
 * it checks that every id changed and that root cannot be had back.
 * Started as root without `user` it refuses to run (invitemaild.c).
 */
#ifndef INVITEMAIL_PRIVILEGE_H
#define INVITEMAIL_PRIVILEGE_H

#include <glib.h>
#include <sys/types.h>

GQuark privilege_error_quark (void);
#define PRIVILEGE_ERROR (privilege_error_quark ())
typedef enum {
  PRIVILEGE_ERROR_DROP,       /* a set*id call failed or did not stick */
  PRIVILEGE_ERROR_FILE        /* a state file could not be taken over */
} PrivilegeError;

/*
 * Becomes user (uid, gid) for good.  Needs root.  FALSE with *error when
 * any step fails or when afterwards the real, effective or saved ids
 * differ from the targets, or setuid(0) / setgid(0) succeed.  The caller
 * must then exit: a half-dropped process must not serve.
 */
gboolean privilege_drop (const char *user, uid_t uid, gid_t gid, GError **error);

/*
 * Gives the daemon's user the state files that exist among paths (a
 * NULL-terminated list): the queue and audit databases with their -wal,
 * -shm and lock files, the audit key.  A file left by root (an older
 * daemon that ran as root, `invitemail audit init` run as root, a reader
 * run as root that made the -shm) would otherwise stop the dropped
 * daemon.  Only regular files, opened with O_NOFOLLOW and changed with
 * fchown: a symlink is refused, never followed.  The group is left as
 * it is (the audit's compliance group).  Missing files are skipped.
 */
gboolean privilege_take_files (const char *const *paths, uid_t uid, GError **error);

#endif
