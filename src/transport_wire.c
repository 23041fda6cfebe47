/*
 * transport_wire.c - the verdicts of transport_wire.h, from bytes only.
 *
 * Replies: every '\n' ends a line; a line "NNN " or "NNN" (no '-')
 * ends a reply, whose code and text are kept (text made printable and
 * cut to DELIVERY_REPLY_MAX).  Longer lines are cut, never overflow.
 *
 * AUTH: when AUTH is required, "AUTH " written marks an exchange; its
 * final reply is 235 (authenticated) or a refusal, kept for the reason.
 * A command buffer that holds a line starting "MAIL FROM:" while no 235
 * was seen must not leave: libESMTP would send it unauthenticated.
 *
 * STARTTLS response injection (the client side of CVE-2011-0411): a
 * relay, or anyone on the path, answers STARTTLS with "220" and, in the
 * same write, plaintext lines ("250 ok", "354", "250 accepted").
 * libESMTP reads from the socket into its own buffer, and bytes left in
 * that buffer after the 220 stay there when TLS starts: it would take
 * them as the relay's answers to the commands it sends inside TLS, and a
 * message the real relay refused would be recorded as sent.  Before the
 * handshake the dialogue is strictly one reply per command (libESMTP
 * pipelines nothing before TLS): the greeting, then one reply to each
 * command line written (EHLO, STARTTLS).  So at handshake start every
 * byte read must belong to those replies: more replies than greeting +
 * commands, or any byte after the last one (a blank line included),
 * means bytes read but not consumed, i.e. injected; and bytes already
 * waiting on the socket (the caller asks the kernel) were sent before
 * our ClientHello, which no honest server does.  Either ends the
 * session before the handshake: no command ever goes over that TLS.
 *
 * Deadline and caps: libESMTP's timeout restarts at every read, so a
 * relay that drips one line every few seconds holds a session for
 * hours.  Every byte read and every buffer written is checked against
 * the session's deadline, and a reply may have at most
 * TRANSPORT_REPLY_LINES_MAX lines and TRANSPORT_REPLY_BYTES_MAX bytes.
 *
 * TRUSTS: nothing it reads.  Never logs (an AUTH line holds the
 * password).
 */
#include <stdarg.h>
#include <string.h>

#include "transport_wire.h"

static void
reply_done (Wire *w, int code)
{
  w->last_code = code;
  transport_safe_text (w->last_reply, sizeof w->last_reply, w->line,
                       w->line_len);
  if (!w->auth_pending || code == 334)
    return;                       /* 334: the SASL exchange goes on */
  w->auth_pending = FALSE;
  if (code == 235)
    w->auth_ok = TRUE;
  else
    g_snprintf (w->auth_reply, sizeof w->auth_reply, "AUTH refused: %s",
                w->last_reply);
}

static gboolean G_GNUC_PRINTF (2, 3)
refuse (Wire *w, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  g_vsnprintf (w->why, sizeof w->why, fmt, ap);
  va_end (ap);
  return FALSE;
}

static gboolean
past_deadline (Wire *w)
{
  if (w->deadline == 0 || g_get_monotonic_time () < w->deadline)
    return FALSE;
  return !refuse (w, "SMTP session deadline passed: the relay was too slow "
                  "(a dripping or endless reply)");
}

/* Called at each '\n' read: a final line ("NNN " or "NNN") ends a reply. */
static void
line_done (Wire *w)
{
  const char *l = w->line;

  w->reply_lines++;
  if (w->line_len >= 3 && g_ascii_isdigit (l[0]) && g_ascii_isdigit (l[1])
      && g_ascii_isdigit (l[2]) && (w->line_len == 3 || l[3] != '-'))
    {
      reply_done (w, (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
      w->replies += !w->tls_started;
      w->reply_lines = 0;
      w->reply_bytes = 0;
    }
  w->line_len = 0;
}

gboolean
transport_wire_read (Wire *w, const char *buf, gsize len)
{
  if (past_deadline (w))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      w->reply_bytes++;
      if (buf[i] == '\n')
        line_done (w);
      else if (w->line_len + 1 < sizeof w->line)
        w->line[w->line_len++] = buf[i];
      if (w->reply_lines > TRANSPORT_REPLY_LINES_MAX
          || w->reply_bytes > TRANSPORT_REPLY_BYTES_MAX)
        return refuse (w, "relay reply over %d lines or %d bytes",
                       TRANSPORT_REPLY_LINES_MAX, TRANSPORT_REPLY_BYTES_MAX);
    }
  return TRUE;
}

gboolean
transport_wire_tls_start (Wire *w, gsize unread)
{
  if (w->tls_started)
    return TRUE;
  w->tls_started = TRUE;
  if (w->replies == w->commands + 1 && w->reply_bytes == 0 && unread == 0)
    return TRUE;
  return refuse (w, "STARTTLS injection: the relay sent data after its 220 "
                 "to STARTTLS, before the TLS handshake (%u replies where %u "
                 "were due, %zu bytes more); session ended",
                 w->replies, w->commands + 1, w->reply_bytes + unread);
}

static gboolean
buffer_has_mail (const char *buf, gsize len)
{
  static const char verb[] = "MAIL FROM:";
  const gsize vlen = sizeof verb - 1;

  for (gsize i = 0; i < len; i++)
    if ((i == 0 || buf[i - 1] == '\n') && len - i >= vlen
        && g_ascii_strncasecmp (buf + i, verb, vlen) == 0)
      return TRUE;
  return FALSE;
}

gboolean
transport_wire_write (Wire *w, const char *buf, gsize len)
{
  if (past_deadline (w))
    return FALSE;
  for (gsize i = 0; i < len && !w->tls_started; i++)
    w->commands += buf[i] == '\n';
  if (!w->auth_required)
    return TRUE;
  if (len >= 5 && g_ascii_strncasecmp (buf, "AUTH ", 5) == 0)
    w->auth_attempted = w->auth_pending = TRUE;
  if (w->auth_ok || !buffer_has_mail (buf, len))
    return TRUE;
  if (w->auth_attempted && w->auth_reply[0] != '\0')
    g_strlcpy (w->why, w->auth_reply, sizeof w->why);
  else
    g_strlcpy (w->why, "relay offers no AUTH", sizeof w->why);
  return FALSE;
}

void
transport_wire_silence (char *buf, gsize len, gboolean reading)
{
  if (reading)
    {
      memset (buf, '\n', len);
      return;
    }
  memset (buf, ' ', len);
  if (len >= 6)
    memcpy (buf, "QUIT\r\n", 6);
  if (len >= 2)
    memcpy (buf + len - 2, "\r\n", 2);
}
