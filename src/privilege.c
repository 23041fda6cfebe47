/*
 * privilege.c - dropping root for good.  See privilege.h.
 *
 * Order (setgroups/initgroups and setgid need root, so they come before
 * setuid), then the checks OpenSMTPD and Postfix make: every id is the
 * target's, and root cannot be regained.  Nothing here logs; the caller
 * reports the error once and exits.
 */
#include "privilege.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (invitemail-privilege-error-quark, privilege_error)

static gboolean
drop_fail (GError **error, const char *what)
{
  g_set_error (error, PRIVILEGE_ERROR, PRIVILEGE_ERROR_DROP,
               "dropping root: %s: %s", what, g_strerror (errno));
  return FALSE;
}

/* The ids after the drop are the target's, all three of each kind. */
static gboolean
drop_stuck (uid_t uid, gid_t gid)
{
  uid_t ru, eu, su;
  gid_t rg, eg, sg;

  if (getresuid (&ru, &eu, &su) != 0 || getresgid (&rg, &eg, &sg) != 0)
    return FALSE;
  return ru == uid && eu == uid && su == uid && rg == gid && eg == gid && sg == gid;
}

gboolean
privilege_drop (const char *user, uid_t uid, gid_t gid, GError **error)
{
  g_return_val_if_fail (user != NULL, FALSE);
  if (uid == 0)
    {
      errno = EINVAL;
      return drop_fail (error, "the user to become is root");
    }
  if (initgroups (user, gid) != 0)
    return drop_fail (error, "initgroups");
  if (setresgid (gid, gid, gid) != 0)
    return drop_fail (error, "setresgid");
  if (setresuid (uid, uid, uid) != 0)
    return drop_fail (error, "setresuid");
  errno = EPERM;
  if (!drop_stuck (uid, gid))
    return drop_fail (error, "the ids did not all change");
  /* Regaining root must fail now. */
  if (setuid (0) == 0 || seteuid (0) == 0 || setgid (0) == 0)
    {
      errno = EPERM;
      return drop_fail (error, "root could be regained");
    }
  return TRUE;
}

gboolean
privilege_take_files (const char *const *paths, uid_t uid, GError **error)
{
  for (gsize i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      struct stat st;
      const char *why = NULL;
      int fd = open (paths[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

      if (fd < 0 && errno == ENOENT)
        continue;
      if (fd < 0 || fstat (fd, &st) != 0)
        why = errno == ELOOP ? "a symbolic link" : g_strerror (errno);
      else if (!S_ISREG (st.st_mode))
        why = "not a regular file";
      else if (st.st_uid != uid && fchown (fd, uid, (gid_t) -1) != 0)
        why = g_strerror (errno);
      if (fd >= 0)
        close (fd);
      if (why != NULL)
        {
          g_set_error (error, PRIVILEGE_ERROR, PRIVILEGE_ERROR_FILE,
                       "%s: cannot give it to uid %lu: %s", paths[i],
                       (unsigned long) uid, why);
          return FALSE;
        }
    }
  return TRUE;
}
