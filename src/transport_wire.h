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

typedef struct {
  gboolean auth_required;   /* in: AUTH configured, no MAIL without a 235 */
  gboolean auth_attempted;
  gboolean auth_pending;    /* AUTH sent, final reply not yet read */
  gboolean auth_ok;         /* 235 to our AUTH */
  int last_code;            /* last final reply read, 0 before any */
  char last_reply[DELIVERY_REPLY_MAX];   /* made safe */
  char auth_reply[DELIVERY_REPLY_MAX];   /* "AUTH refused: ..." */
  char line[DELIVERY_REPLY_MAX];         /* reply line being assembled */
  gsize line_len;
  char why[DELIVERY_REPLY_MAX];          /* the last FALSE verdict's reason */
} Wire;

/* Bytes read from the relay.  FALSE when the session must end (why set). */
gboolean transport_wire_read (Wire *w, const char *buf, gsize len);

/* A buffer about to be written.  FALSE when it must not leave: MAIL FROM
 * without a 235 while AUTH is required (why set). */
gboolean transport_wire_write (Wire *w, const char *buf, gsize len);

#endif
