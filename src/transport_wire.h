/*
 * transport_wire.h - judges the SMTP dialogue from the bytes that cross
 * the wire, as libESMTP's protocol monitor shows them: what the relay
 * sent (as read, before libESMTP parses it) and each command buffer
 * before it is written.  No libESMTP and no socket here: it only keeps
 * count and gives verdicts; transport_smtp.c cuts the connection when a
 * verdict says so.  Private to the transport files and their tests.
 */
#ifndef INVITEMAIL_TRANSPORT_WIRE_H
#define INVITEMAIL_TRANSPORT_WIRE_H

#include <glib.h>
#include "transport.h"

/* A reply longer than this many lines or bytes ends the session: no
 * relay needs more (EHLO answers run to a few dozen lines), and a relay
 * that sends more is feeding us forever. */
#define TRANSPORT_REPLY_LINES_MAX 64
#define TRANSPORT_REPLY_BYTES_MAX 8192

typedef struct {
  gint64 deadline;          /* in: monotonic us the session must end by;
                             * 0: none */
  gboolean auth_required;   /* in: AUTH configured, no MAIL without a 235 */
  gboolean auth_attempted;
  gboolean auth_pending;    /* AUTH sent, final reply not yet read */
  gboolean auth_ok;         /* 235 to our AUTH */
  int last_code;            /* last final reply read, 0 before any */
  char last_reply[DELIVERY_REPLY_MAX];   /* made safe */
  char auth_reply[DELIVERY_REPLY_MAX];   /* "AUTH refused: ..." */
  char line[DELIVERY_REPLY_MAX];         /* reply line being assembled */
  gsize line_len;           /* bytes kept in line */
  guint reply_lines;        /* lines of the reply being read */
  gsize reply_bytes;        /* bytes read since the last reply ended */
  gboolean tls_started;     /* the TLS handshake began: counting stopped */
  guint commands;           /* command lines written before it */
  guint replies;            /* replies read in full before it */
  char why[DELIVERY_REPLY_MAX];          /* the last FALSE verdict's reason */
} Wire;

/* Bytes read from the relay.  FALSE when the session must end (why
 * set): the deadline has passed, or a reply is over the caps. */
gboolean transport_wire_read (Wire *w, const char *buf, gsize len);

/* A buffer about to be written.  FALSE when it must not leave (why
 * set): the deadline has passed, or MAIL FROM without a 235 while AUTH
 * is required. */
gboolean transport_wire_write (Wire *w, const char *buf, gsize len);

/* The TLS handshake begins (after our STARTTLS and the relay's 220);
 * unread is how many bytes wait unread on the socket.  FALSE (why set)
 * when the relay sent anything beyond the 220 (see transport_wire.c):
 * the session must end before the handshake.  Later calls (TLS 1.3
 * post-handshake messages, renegotiation) return TRUE. */
gboolean transport_wire_tls_start (Wire *w, gsize unread);

/* After a cut: overwrites a buffer libESMTP is about to write so that it
 * says only QUIT, or one it has read (reading) so that it holds only
 * empty lines, which its reply parser refuses at once. */
void transport_wire_silence (char *buf, gsize len, gboolean reading);

#endif
