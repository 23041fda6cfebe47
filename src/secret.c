/*
 * secret.c - a secret file read through one checked descriptor.  See
 * secret.h.
 *
 * SECURITY: open (O_NOFOLLOW | O_NOCTTY | O_NONBLOCK), then every check
 * on that descriptor with fstat, then read from it: the file checked is
 * the file read.  O_NONBLOCK keeps a FIFO planted in the secret's place
 * from hanging the start (it is then refused as not a regular file).
 * The error words never hold the secret's bytes.
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (invitemail-secret-error-quark, secret_error)

void
secret_wipe (Secret *s)
{
  if (s == NULL)
    return;
  if (s->value != NULL)
    {
      explicit_bzero (s->value, s->len);
      g_free (s->value);
    }
  s->value = NULL;
  s->len = 0;
}

/* The file behind fd may hold a secret: a regular file of owner's,
 * closed to group and others. */
static gboolean
secret_fd_safe (int fd, uid_t owner, GError **error)
{
  struct stat st;

  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, SECRET_ERROR, SECRET_ERROR_UNSAFE, "not a regular file");
      return FALSE;
    }
  if (st.st_uid != owner || (st.st_mode & 0077) != 0)
    {
      g_set_error (error, SECRET_ERROR, SECRET_ERROR_UNSAFE,
                   "must be owned by uid %lu (the daemon's user) with mode 0600 "
                   "or 0400; it is owned by uid %lu with mode %04o",
                   (unsigned long) owner, (unsigned long) st.st_uid,
                   (unsigned) (st.st_mode & 07777));
      return FALSE;
    }
  return TRUE;
}

/* Up to max bytes from fd into a buffer of max+1 (so that "too long"
 * can be told); -1 on a read error. */
static gssize
secret_read_fd (int fd, char *buf, gsize max)
{
  gsize got = 0;

  while (got <= max)
    {
      ssize_t n = read (fd, buf + got, max + 1 - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      if (n == 0)
        break;
      got += (gsize) n;
    }
  return (gssize) got;
}

gboolean
secret_read_file (const char *path, uid_t owner, gsize max_len, Secret *out,
                  GError **error)
{
  /* Room for the secret, a CR LF, and one byte to see it is too long. */
  gsize cap = max_len + 2;
  g_autofree char *buf = NULL;
  gssize n;
  int fd;

  g_return_val_if_fail (path != NULL && out != NULL && out->value == NULL, FALSE);
  fd = open (path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    {
      g_set_error (error, SECRET_ERROR, SECRET_ERROR_OPEN, "%s",
                   errno == ELOOP ? "is a symbolic link" : g_strerror (errno));
      return FALSE;
    }
  if (!secret_fd_safe (fd, owner, error))
    {
      close (fd);
      return FALSE;
    }
  buf = g_malloc0 (cap + 2);
  n = secret_read_fd (fd, buf, cap);
  close (fd);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    n--;
  if (n <= 0 || (gsize) n > max_len || memchr (buf, '\0', (gsize) n) != NULL)
    {
      explicit_bzero (buf, cap + 2);
      g_set_error (error, SECRET_ERROR, SECRET_ERROR_CONTENT,
                   n < 0 ? "cannot be read"
                         : "empty, longer than allowed, or holds a NUL byte");
      return FALSE;
    }
  buf[n] = '\0';
  out->len = (gsize) n;
  out->value = g_steal_pointer (&buf);
  return TRUE;
}
