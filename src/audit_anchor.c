/*
 * audit_anchor.c - seal heads to the system log and back.  See
 * audit_anchor.h.
 *
 * What it trusts: nothing in an anchors file.  Each line is at most
 * ANCHOR_LINE_MAX bytes; values must be decimal or 64 lower-case hex
 * digits, or the line is skipped as not an anchor (a log holds other
 * lines too).  A file over ANCHOR_FILE_MAX is refused.
 */
#include "audit_anchor.h"

#include <stdio.h>
#include <string.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-journal.h>
#endif

#include "audit.h"

#define ANCHOR_LINE_MAX 65536
#define ANCHOR_FILE_MAX (G_GINT64_CONSTANT (1) << 30)

char *
audit_anchor_sd (const AuditAnchor *h)
{
  return g_strdup_printf ("[" AUDIT_ANCHOR_SD_ID " seq=\"%" G_GINT64_FORMAT
                          "\" hash=\"%s\" epoch=\"%" G_GINT64_FORMAT
                          "\" time_ms=\"%" G_GINT64_FORMAT "\"]", h->seq,
                          h->hash, h->epoch, h->time_ms);
}

char *
audit_anchor_json (const AuditAnchor *h)
{
  g_autoptr (GDateTime) dt =
    g_date_time_new_from_unix_utc (h->time_ms / 1000);
  g_autofree char *t = dt != NULL
    ? g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup ("");

  return g_strdup_printf ("{\"seq\":%" G_GINT64_FORMAT ",\"hash\":\"%s\","
                          "\"epoch\":%" G_GINT64_FORMAT ",\"time_ms\":%"
                          G_GINT64_FORMAT ",\"time\":\"%s\","
                          "\"message_id\":\"" AUDIT_ANCHOR_MESSAGE_ID "\"}",
                          h->seq, h->hash, h->epoch, h->time_ms, t);
}

void
audit_anchor_log (const AuditAnchor *h)
{
  g_autofree char *sd = audit_anchor_sd (h);
  g_autofree char *msg = g_strdup_printf ("audit sealed %s", sd);

  /* Under systemd (standard error is a journal stream) the record goes
   * to journald with its own fields: through libsystemd when built
   * with it, else through GLib's own journald writer.  The stream test
   * chooses, not sd_journal_send's answer, which is 0 even when no
   * journald listens.  Elsewhere (detached: syslog; foreground:
   * standard error) the operational log below carries it. */
  if (g_log_writer_is_journald (fileno (stderr)))
    {
#ifdef HAVE_SYSTEMD
      if (sd_journal_send ("MESSAGE=%s", msg,
                           "MESSAGE_ID=" AUDIT_ANCHOR_MESSAGE_ID,
                           "PRIORITY=6",
                           "INVITEMAIL_AUDIT_SEQ=%" G_GINT64_FORMAT, h->seq,
                           "INVITEMAIL_AUDIT_HASH=%s", h->hash,
                           "INVITEMAIL_AUDIT_EPOCH=%" G_GINT64_FORMAT,
                           h->epoch, "INVITEMAIL_AUDIT_TIME_MS=%"
                           G_GINT64_FORMAT, h->time_ms, NULL) == 0)
        return;
#else
      char seq[24], epoch[24], t[24];
      const GLogField fields[] = {
        { "MESSAGE", msg, -1 },
        { "MESSAGE_ID", AUDIT_ANCHOR_MESSAGE_ID, -1 },
        { "PRIORITY", "6", -1 },
        { "INVITEMAIL_AUDIT_SEQ", seq, -1 },
        { "INVITEMAIL_AUDIT_HASH", h->hash, -1 },
        { "INVITEMAIL_AUDIT_EPOCH", epoch, -1 },
        { "INVITEMAIL_AUDIT_TIME_MS", t, -1 },
      };

      g_snprintf (seq, sizeof seq, "%" G_GINT64_FORMAT, h->seq);
      g_snprintf (epoch, sizeof epoch, "%" G_GINT64_FORMAT, h->epoch);
      g_snprintf (t, sizeof t, "%" G_GINT64_FORMAT, h->time_ms);
      if (g_log_writer_journald (G_LOG_LEVEL_INFO, fields,
                                 G_N_ELEMENTS (fields), NULL)
          == G_LOG_WRITER_HANDLED)
        return;
#endif
    }
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_INFO,
                    "MESSAGE_ID", AUDIT_ANCHOR_MESSAGE_ID,
                    "MESSAGE", "%s", msg);
}

/* ---- parsing ------------------------------------------------------------ */

static gboolean
anchor_int (const char *s, gsize len, gint64 *out)
{
  char buf[24];
  char *end = NULL;

  if (len == 0 || len >= sizeof buf)
    return FALSE;
  memcpy (buf, s, len);
  buf[len] = '\0';
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isdigit (buf[i]))
      return FALSE;
  *out = g_ascii_strtoll (buf, &end, 10);
  return *end == '\0' && *out >= 0;
}

static gboolean
anchor_hash (const char *s, gsize len, char out[SHA256_HEX_SIZE])
{
  if (len != SHA256_HEX_LEN)
    return FALSE;
  for (gsize i = 0; i < SHA256_HEX_LEN; i++)
    if (!g_ascii_isxdigit (s[i]) || g_ascii_isupper (s[i]))
      return FALSE;
  memcpy (out, s, SHA256_HEX_LEN);
  out[SHA256_HEX_LEN] = '\0';
  return TRUE;
}

/* The value after `key` up to the closing quote; quotes may come
 * escaped (a JSON string holding the element).  NULL if absent. */
static const char *
anchor_value (const char *from, const char *key, gsize *len)
{
  const char *p = strstr (from, key);
  const char *v, *e;

  if (p == NULL)
    return NULL;
  v = p + strlen (key);
  if (*v == '\\')
    v++;
  if (*v != '"')
    return NULL;
  v++;
  for (e = v; *e != '\0' && *e != '"' && *e != '\\'; e++)
    ;
  *len = (gsize) (e - v);
  return v;
}

/* key=value pairs of the element (syslog, a log line, or a journal
 * MESSAGE holding it). */
static gboolean
anchor_from_sd (const char *line, AuditAnchor *out)
{
  const char *sd = strstr (line, "[" AUDIT_ANCHOR_SD_ID " ");
  const char *v[4];
  gsize n[4];

  if (sd == NULL)
    return FALSE;
  v[0] = anchor_value (sd, " seq=", &n[0]);
  v[1] = anchor_value (sd, " hash=", &n[1]);
  v[2] = anchor_value (sd, " epoch=", &n[2]);
  v[3] = anchor_value (sd, " time_ms=", &n[3]);
  return v[0] && v[1] && v[2] && v[3] && anchor_int (v[0], n[0], &out->seq)
         && anchor_hash (v[1], n[1], out->hash)
         && anchor_int (v[2], n[2], &out->epoch)
         && anchor_int (v[3], n[3], &out->time_ms);
}

/* The string value of "key" in a JSON object line, spaces allowed
 * around the colon as journalctl writes them.  NULL if absent or not a
 * plain string. */
static const char *
anchor_json_value (const char *line, const char *key, gsize *len)
{
  const char *p = strstr (line, key), *v, *e;

  if (p == NULL)
    return NULL;
  for (v = p + strlen (key); *v == ' '; v++)
    ;
  if (*v++ != ':')
    return NULL;
  while (*v == ' ')
    v++;
  if (*v++ != '"')
    return NULL;
  for (e = v; *e != '\0' && *e != '"' && *e != '\\'; e++)
    ;
  if (*e != '"')
    return NULL;
  *len = (gsize) (e - v);
  return v;
}

/* The journal's own fields in `journalctl -o json` output. */
static gboolean
anchor_from_journal_json (const char *line, AuditAnchor *out)
{
  const char *id, *v[4];
  gsize idn = 0, n[4];

  id = anchor_json_value (line, "\"MESSAGE_ID\"", &idn);
  if (id == NULL || idn != strlen (AUDIT_ANCHOR_MESSAGE_ID)
      || strncmp (id, AUDIT_ANCHOR_MESSAGE_ID, idn) != 0)
    return FALSE;
  v[0] = anchor_json_value (line, "\"INVITEMAIL_AUDIT_SEQ\"", &n[0]);
  v[1] = anchor_json_value (line, "\"INVITEMAIL_AUDIT_HASH\"", &n[1]);
  v[2] = anchor_json_value (line, "\"INVITEMAIL_AUDIT_EPOCH\"", &n[2]);
  v[3] = anchor_json_value (line, "\"INVITEMAIL_AUDIT_TIME_MS\"", &n[3]);
  return v[0] && v[1] && v[2] && v[3] && anchor_int (v[0], n[0], &out->seq)
         && anchor_hash (v[1], n[1], out->hash)
         && anchor_int (v[2], n[2], &out->epoch)
         && anchor_int (v[3], n[3], &out->time_ms);
}

gboolean
audit_anchor_parse_line (const char *line, AuditAnchor *out)
{
  if (line == NULL || strlen (line) > ANCHOR_LINE_MAX)
    return FALSE;
  return anchor_from_journal_json (line, out) || anchor_from_sd (line, out);
}

GArray *
audit_anchor_read_file (const char *path, GError **error)
{
  g_autoptr (GArray) out = g_array_new (FALSE, FALSE, sizeof (AuditAnchor));
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  if ((gint64) len > ANCHOR_FILE_MAX)
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_FORMAT,
                   "%s: over 1 GiB of anchors: give a month at a time", path);
      return NULL;
    }
  lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l != NULL; l++)
    {
      AuditAnchor h;

      if (audit_anchor_parse_line (*l, &h))
        g_array_append_val (out, h);
    }
  if (out->len == 0)
    {
      g_set_error (error, AUDIT_ERROR, AUDIT_ERROR_FORMAT, "%s holds no audit"
                   " anchor (journalctl -o json lines with MESSAGE_ID="
                   AUDIT_ANCHOR_MESSAGE_ID ", or log lines with ["
                   AUDIT_ANCHOR_SD_ID " ...])", path);
      return NULL;
    }
  return g_steal_pointer (&out);
}
