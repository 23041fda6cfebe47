/*
 * fileio.h - writing bytes so that they are whole and, where asked,
 * survive a crash or power loss: one loop for short writes and EINTR,
 * one way to replace a file durably.
 *
 * Durable replace: the bytes go to a fresh temporary file in the same
 * folder (O_CREAT|O_EXCL, so never through a link an attacker planted),
 * which is given its mode, fsynced and closed, then renamed over the
 * name, then the folder is fsynced so the rename itself survives.  A
 * reader sees the old file or the whole new one, never a part.
 */
#ifndef INVITEMAIL_FILEIO_H
#define INVITEMAIL_FILEIO_H

#include <glib.h>
#include <sys/types.h>

/* All len bytes to fd with write(2); FALSE with errno set otherwise. */
gboolean fileio_write_all (int fd, const void *buf, gsize len);

/* The same on a socket with send(2) and MSG_NOSIGNAL: a peer that went
 * away is an error (EPIPE), not a SIGPIPE that kills the process. */
gboolean fileio_send_all (int fd, const void *buf, gsize len);

/*
 * Replaces name in the folder dirfd durably with len bytes of data,
 * mode `mode`.  The temporary file is tmp_name when given (removed
 * first: one fixed name, so a crash leaves at most one behind and the
 * next replace clears it), else ".tmp-NAME-RANDOM" (a leading dot keeps
 * it apart from the caller's names).  FALSE with errno set and no
 * temporary file left behind otherwise.
 */
gboolean fileio_replace_at (int dirfd, const char *name, const char *tmp_name,
                            const void *data, gsize len, mode_t mode);

#endif
