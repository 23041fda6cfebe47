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
 * TRUSTS: nothing it reads.  Never logs (an AUTH line holds the
 * password).
 */
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

/* Called at each '\n' read: a final line ("NNN " or "NNN") ends a reply. */
static void
line_done (Wire *w)
{
  const char *l = w->line;

  if (w->line_len >= 3 && g_ascii_isdigit (l[0]) && g_ascii_isdigit (l[1])
      && g_ascii_isdigit (l[2]) && (w->line_len == 3 || l[3] != '-'))
    reply_done (w, (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
  w->line_len = 0;
}

gboolean
transport_wire_read (Wire *w, const char *buf, gsize len)
{
  for (gsize i = 0; i < len; i++)
    {
      if (buf[i] == '\n')
        line_done (w);
      else if (w->line_len + 1 < sizeof w->line)
        w->line[w->line_len++] = buf[i];
    }
  return TRUE;
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
