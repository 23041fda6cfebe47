/*
 * secret.h - reading a secret file safely, and keeping it in memory.
 *
 * A secret (the SMTP password, a key) is read through ONE open
 * descriptor: opened with O_NOFOLLOW (a symlink planted in its place is
 * refused), checked with fstat on that very descriptor (a regular file,
 * owned by the expected uid, no permission for group or others), and
 * read from it.  It is never opened again by path, so nothing can be
 * swapped between the check and the read.  For any secret of the
 * daemon (config.c reads the SMTP password with it; the audit key can
 * use it the same way).
 *
 * The bytes live in a Secret, wiped (explicit_bzero) before free; never
 * logged.
 */
#ifndef INVITEMAIL_SECRET_H
#define INVITEMAIL_SECRET_H

#include <glib.h>
#include <sys/types.h>

/* A secret read from a file: wiped (explicit_bzero) before free. */
typedef struct {
  char *value;                /* NUL-terminated, len bytes before it */
  gsize len;
} Secret;

GQuark secret_error_quark (void);
#define SECRET_ERROR (secret_error_quark ())
typedef enum {
  SECRET_ERROR_OPEN,          /* missing, unreadable, or a symlink */
  SECRET_ERROR_UNSAFE,        /* not a regular file, wrong owner or mode */
  SECRET_ERROR_CONTENT        /* empty, too long, or holds NUL */
} SecretError;

/*
 * Reads path into *out (which must be empty) through one descriptor.
 * The file must be a regular file owned by `owner` with no group or
 * other permission bits (0600 or 0400), hold 1..max_len bytes once
 * trailing line ends are dropped, and no NUL.  On failure *out stays
 * empty, the bytes read are wiped, and error says why in words that
 * never include the content.
 */
gboolean secret_read_file (const char *path, uid_t owner, gsize max_len,
                           Secret *out, GError **error);

/* Wipes and frees the value; *s is empty afterwards.  NULL-safe. */
void secret_wipe (Secret *s);

#endif
