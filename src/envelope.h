/*
 * envelope.h - the one rule for what may go verbatim into an SMTP
 * command: MAIL FROM, RCPT TO, and the words of EHLO and AUTH.
 *
 * libESMTP writes the envelope addresses between '<' and '>' without
 * looking at them, so a CR, LF or '>' in one would start a command of
 * the sender's choosing.  Every wall checks with this one function: the
 * gate after it built an address (validate.c), the queue before it
 * stores one and after it reads one back (queue.c), and the transport
 * before it hands one to the relay or the outbox (transport*.c).
 *
 * What it checks is the wire's rule, not RFC 5322 syntax (that is
 * validate.c's job): printable ASCII without space, '<' or '>', within
 * the RFC 5321 path length; for a mailbox one '@' with text on each
 * side (the last '@': the local part is dot-atom, so it holds none).
 */
#ifndef INVITEMAIL_ENVELOPE_H
#define INVITEMAIL_ENVELOPE_H

#include <glib.h>

/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 (with <>). */
#define ADDRESS_MAX_LOCAL   64
#define ADDRESS_MAX_DOMAIN  253
#define ADDRESS_MAX         254

typedef enum {
  ENVELOPE_MAILBOX,       /* local@domain: a recipient, a sender */
  ENVELOPE_REVERSE_PATH,  /* a mailbox, or "" (the null sender <>) */
  ENVELOPE_WORD,          /* one argument of a command: host, EHLO name, AUTH user */
} EnvelopeKind;

/* TRUE when s (NULL: never) is safe on the wire as kind. */
gboolean envelope_safe (const char *s, EnvelopeKind kind);

/*
 * When two addresses are one mailbox: the local part as written (it is
 * the receiving system's to interpret), the domain without case and as
 * an A-label (so "example.org" and "EXAMPLE.org", "xn--exmple-cua.se"
 * and "exämple.se" are one).  The normal form is local@a-label in lower
 * case; without an '@' it is addr itself.  (transfer full)
 */
char *envelope_address_normal (const char *addr);

/* envelope_address_normal (a) equals envelope_address_normal (b). */
gboolean envelope_same_address (const char *a, const char *b);

#endif
