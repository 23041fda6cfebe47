/*
 * token.h - random names in base 32 ([0-9a-v], 5 bits a character):
 * the invite id's random part, the Message-ID's local part and the
 * recipients' return tokens.  One alphabet, one source of randomness
 * (the kernel's CSPRNG through getrandom).  Lowercase letters and
 * digits only: safe in a file name, an SMTP address and a header.
 */
#ifndef INVITEMAIL_TOKEN_H
#define INVITEMAIL_TOKEN_H

#include <glib.h>

/* The digit for the low 5 bits of v. */
char token_digit (guint64 v);

/* n random digits and a NUL into out (n + 1 bytes); FALSE when the
 * kernel gave no randomness (out is then unchanged). */
gboolean token_random (char *out, gsize n);

#endif
