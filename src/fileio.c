/*
 * fileio.c - whole writes and durable replaces.  See fileio.h.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static gboolean
fileio_put_all (int fd, const char *buf, gsize len, gboolean socket)
{
  while (len > 0)
    {
      ssize_t n = socket ? send (fd, buf, len, MSG_NOSIGNAL)
                         : write (fd, buf, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        errno = EIO;
      if (n <= 0)
        return FALSE;
      buf += n;
      len -= (gsize) n;
    }
  return TRUE;
}

gboolean
fileio_write_all (int fd, const void *buf, gsize len)
{
  return fileio_put_all (fd, buf, len, FALSE);
}

gboolean
fileio_send_all (int fd, const void *buf, gsize len)
{
  return fileio_put_all (fd, buf, len, TRUE);
}

/* Creates the temporary file; its name into tmp. */
static int
fileio_open_temp (int dirfd, const char *name, const char *tmp_name,
                  char *tmp, gsize tmp_size)
{
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;

  if (tmp_name != NULL)
    {
      g_strlcpy (tmp, tmp_name, tmp_size);
      unlinkat (dirfd, tmp, 0);
      return openat (dirfd, tmp, flags, 0600);
    }
  for (int tries = 0; tries < 16; tries++)
    {
      g_snprintf (tmp, tmp_size, ".tmp-%s-%08x", name, g_random_int ());
      int fd = openat (dirfd, tmp, flags, 0600);
      if (fd >= 0 || errno != EEXIST)
        return fd;
    }
  return -1;
}

gboolean
fileio_replace_at (int dirfd, const char *name, const char *tmp_name,
                   const void *data, gsize len, mode_t mode)
{
  char tmp[512];
  int fd, saved;
  gboolean ok;

  if (strlen (name) + 16 > sizeof tmp
      || (tmp_name != NULL && strlen (tmp_name) >= sizeof tmp))
    {
      errno = ENAMETOOLONG;
      return FALSE;
    }
  fd = fileio_open_temp (dirfd, name, tmp_name, tmp, sizeof tmp);
  if (fd < 0)
    return FALSE;
  /* fchmod, not the open's mode: the umask must not widen or narrow it. */
  ok = fchmod (fd, mode) == 0 && fileio_write_all (fd, data, len)
       && fsync (fd) == 0;
  saved = errno;
  ok = close (fd) == 0 && ok;
  if (ok && renameat (dirfd, tmp, dirfd, name) == 0 && fsync (dirfd) == 0)
    return TRUE;
  saved = errno ? errno : saved;
  unlinkat (dirfd, tmp, 0);
  errno = saved;
  return FALSE;
}
