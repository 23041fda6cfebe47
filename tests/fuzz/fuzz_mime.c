/*
 * fuzz_mime.c - libFuzzer target for the whole message path: fuzzer
 * bytes -> request_parse -> validate_invitation -> render_invitation ->
 * mime_build, and the message parsed back with GMime.
 *
 * Checked promises (abort() when broken):
 * - a validated invitation always becomes a message;
 * - the message parses back without a GMime parser warning; it has no
 *   To (or only the empty group undisclosed-recipients), no Cc and no
 *   Bcc header;
 * - no recipient address is anywhere in it: not in the raw bytes, not
 *   in a header, not in the decoded text or HTML -- unless that string
 *   was also given as another value (booking, link, staff) or is part
 *   of the organisation's own texts, where it is not a leak;
 * - the privacy notice is in both the decoded text/plain and text/html.
 *
 * TRUSTS: the shipped templates.  Built by `make fuzz` only, with clang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "calendar.h"
#include "fuzz_common.h"
#include "mime.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GMimeMessage, g_object_unref)

typedef struct
{
  GString *plain;
  GString *html;
  GString *headers;
} Decoded;

static void
collect_part (GMimeObject *parent, GMimeObject *part, gpointer data)
{
  Decoded *d = data;
  g_autofree char *hdrs = g_mime_object_get_headers (part, NULL);

  g_string_append (d->headers, hdrs);
  if (GMIME_IS_TEXT_PART (part))
    {
      g_autofree char *text = g_mime_text_part_get_text (GMIME_TEXT_PART (part));
      GMimeContentType *ct = g_mime_object_get_content_type (part);

      fuzz_must (text != NULL);
      if (g_mime_content_type_is_type (ct, "text", "html"))
        g_string_append (d->html, text);
      else
        g_string_append (d->plain, text);
    }
}

static void
on_parser_warning (gint64 offset, GMimeParserWarning code, const gchar *item,
                   gpointer user_data)
{
  (*(guint *)user_data)++;
}

/* Parses the bytes back; any parser warning (a malformed header or
 * part) counts as broken.  (transfer full) */
static GMimeMessage *
parse_back (GBytes *bytes)
{
  gsize len = 0;
  const guint8 *raw = g_bytes_get_data (bytes, &len);
  GMimeStream *stream = g_mime_stream_mem_new_with_buffer ((const char *)raw, len);
  GMimeParser *parser = g_mime_parser_new_with_stream (stream);
  GMimeParserOptions *po = g_mime_parser_options_new ();
  guint warnings = 0;
  GMimeMessage *msg;

  g_mime_parser_options_set_warning_callback (po, on_parser_warning, &warnings);
  msg = g_mime_parser_construct_message (parser, po);
  g_mime_parser_options_free (po);
  g_object_unref (parser);
  g_object_unref (stream);
  fuzz_must (warnings == 0);
  return msg;
}

/* Case-insensitive substring. */
static gboolean
contains (const char *hay, gsize hlen, const char *needle)
{
  gsize n = strlen (needle);

  for (gsize i = 0; n <= hlen && i <= hlen - n; i++)
    if (g_ascii_strncasecmp (hay + i, needle, n) == 0)
      return TRUE;
  return FALSE;
}

static void
check_recipients (const Invitation *inv, const char *request, GBytes *bytes,
                  const Decoded *d)
{
  g_autofree char *org
      = g_strjoin ("\n", fuzz_org.org_name, fuzz_org.dpo_email, fuzz_org.slogan,
                   fuzz_org.logo_cid, "noreply@example.org", "fuzz.1@example.org", NULL);
  gsize len = 0;
  const char *raw = g_bytes_get_data (bytes, &len);

  for (guint i = 0; i < invitation_n_recipients (inv); i++)
    {
      const char *rcpt = invitation_recipient (inv, i);
      gboolean given_elsewhere = contains (org, strlen (org), rcpt);

      /* The request holds the bcc lines themselves: a hit counts only
       * when the address is not also part of another value. */
      for (const char *p = strchr (request, '\n'); p != NULL && !given_elsewhere;
           p = strchr (p + 1, '\n'))
        if (!g_str_has_prefix (p + 1, "bcc=")
            && contains (p + 1, strcspn (p + 1, "\n"), rcpt))
          given_elsewhere = TRUE;
      if (given_elsewhere)
        continue;
      fuzz_must (!contains (raw, len, rcpt));
      fuzz_must (!contains (d->headers->str, d->headers->len, rcpt));
      fuzz_must (!contains (d->plain->str, d->plain->len, rcpt));
      fuzz_must (!contains (d->html->str, d->html->len, rcpt));
    }
}

static void
check_message (const Invitation *inv, const char *request, GBytes *bytes,
               gboolean undisclosed)
{
  g_autoptr (GMimeMessage) msg = parse_back (bytes);
  GMimeObject *obj;
  const char *to;
  const char *notice = fuzz_notice_text (invitation_lang (inv));
  Decoded d = { g_string_new (NULL), g_string_new (NULL), g_string_new (NULL) };
  g_autofree char *top = NULL;

  fuzz_must (msg != NULL);
  obj = GMIME_OBJECT (msg);
  to = g_mime_object_get_header (obj, "To");
  fuzz_must (undisclosed ? to != NULL && strchr (to, '@') == NULL : to == NULL);
  fuzz_must (g_mime_object_get_header (obj, "Cc") == NULL);
  fuzz_must (g_mime_object_get_header (obj, "Bcc") == NULL);
  top = g_mime_object_get_headers (obj, NULL);
  g_string_append (d.headers, top);
  g_mime_message_foreach (msg, collect_part, &d);
  fuzz_must (strstr (d.plain->str, notice) != NULL);
  fuzz_must (strstr (d.html->str, notice) != NULL);
  check_recipients (inv, request, bytes, &d);
  g_string_free (d.plain, TRUE);
  g_string_free (d.html, TRUE);
  g_string_free (d.headers, TRUE);
}

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  mime_init ();
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *request = NULL;
  g_autoptr (Invitation) inv = fuzz_invitation (data, size, &request);
  g_autoptr (GError) error = NULL;
  g_autoptr (Rendered) r = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GDateTime) date = g_date_time_new_utc (2026, 1, 1, 12, 0, 0);
  gboolean undisclosed = size > 0 && (data[size - 1] & 1);
  MimeOptions opt
      = { fuzz_org.org_name,    "noreply@example.org", "example.org", undisclosed, date,
          "fuzz.1@example.org", fuzz_org.logo_cid, NULL, NULL };

  if (inv == NULL)
    return 0;
  r = render_invitation (fuzz_templates (), &fuzz_org, inv, &error);
  fuzz_must (r != NULL);
  /* with a meeting time, the calendar entry too, its texts from the
   * request: no value may reach it as an address or a property */
  g_autofree char *ics = NULL;
  if (invitation_meeting_time (inv) != NULL)
    {
      CalendarEvent ev = {
        .uid = "fuzz0123456789@example.org", .start = invitation_meeting_time (inv),
        .end = invitation_meeting_end (inv), .stamp = date,
        .summary = invitation_unit (inv) ? invitation_unit (inv) : r->title,
        .description = r->text, .link = invitation_link (inv),
        .organizer_name = fuzz_org.org_name, .organizer_addr = "noreply@example.org",
        .lang = r->lang,
      };
      ics = calendar_ics (&ev);
      fuzz_must (ics != NULL);
      fuzz_must (strstr (ics, "\nATTENDEE") == NULL);
      opt.calendar = ics;
      opt.calendar_method = calendar_method (&ev);
    }
  bytes = mime_build (r, &opt, NULL, &error);
  fuzz_must (bytes != NULL);
  check_message (inv, request, bytes, undisclosed);
  return 0;
}
