/*
 * fuzz_common.c - see fuzz_common.h.  Not a fuzz target itself.
 *
 * TRUSTS: the templates of the source tree.  Everything made from the
 * fuzzer input passes through request_parse and validate_invitation,
 * as in the daemon, so the targets test what a peer can really reach.
 */
#include "fuzz_common.h"

#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_SRCDIR
#define FUZZ_SRCDIR "."
#endif

const RenderOrg fuzz_org = { "Region Exempel", "dataskyddsombud@example.org",
                             "Digitalt när det är möjligt, fysiskt när det behövs", "logo.fuzz@example.org",
                             NULL, "Barnkliniken, 010-123 45 67" };

static const char *const hosts[] = { "meet.example.org", "*.video.example.com", NULL };

static const char *const names[FUZZ_N_PIECES]
    = { "booking", "link", "staff", "meeting_time", "lang", "bcc", "bcc", "bcc" };

void
fuzz_must (gboolean ok)
{
  if (!ok)
    abort ();
}

const Templates *
fuzz_templates (void)
{
  static Templates *t;

  if (t == NULL)
    {
      const char *src = g_getenv ("srcdir");
      g_autofree char *tdir = NULL;
      g_autofree char *sdir = NULL;
      g_autoptr (GError) error = NULL;

      src = src != NULL && *src != '\0' ? src : FUZZ_SRCDIR;
      tdir = g_build_filename (src, "templates", NULL);
      sdir = g_build_filename (src, "signatures", NULL);
      t = templates_load (tdir, sdir, &error);
      if (t == NULL)
        g_error ("templates: %s", error->message);
    }
  return t;
}

const char *
fuzz_notice_text (const char *lang)
{
  /* on the first line of the folded plain text, whatever else the
   * request holds: the organisation's name before it is fixed */
  if (strcmp (lang, "en") == 0)
    return "will not record or save the digital meeting";
  if (strcmp (lang, "ar") == 0)
    return "بتسجيل الاجتماع الرقمي أو حفظه";
  return "kommer inte att spela in eller spara det digitala";
}

static void
add_piece (GString *req, guint i, const char *v, gsize n)
{
  if (n == 0 && i == 1)
    {
      g_string_append (req, "link=https://meet.example.org/j/4711?pin=1\n");
      return;
    }
  if (n == 0 && i == 5)
    {
      g_string_append (req, "bcc=anna.fuzz@example.com\n");
      return;
    }
  if (n == 0)
    return;
  g_string_append_printf (req, "%s=", names[i]);
  if (i == 1 && !(n >= 6 && g_ascii_strncasecmp (v, "https:", 6) == 0))
    g_string_append (req, "https://meet.example.org/");
  g_string_append_len (req, v, (gssize)n);
  g_string_append_c (req, '\n');
}

static gboolean
have_template (const char *name, const char *lang, gpointer data)
{
  return templates_have (fuzz_templates (), name, lang);
}

Invitation *
fuzz_invitation (const uint8_t *data, size_t size, char **request_out)
{
  GString *req = g_string_new ("request=preview\n");
  const char *p = (const char *)data, *end = p + size;
  g_autoptr (RawRequest) raw = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_utc (2026, 1, 1, 0, 0, 0);
  ValidateContext ctx = { hosts, 5, "sv", "evisit", have_template, NULL, now };
  Invitation *inv = NULL;
  Refusal why;

  for (guint i = 0; i < FUZZ_N_PIECES; i++)
    {
      const char *nl = p < end ? memchr (p, '\n', end - p) : NULL;
      gsize n = p < end ? (gsize)((nl != NULL ? nl : end) - p) : 0;

      add_piece (req, i, p, n);
      p = nl != NULL ? nl + 1 : end;
    }
  g_string_append_c (req, '\n');
  if (request_parse (req->str, req->len, &raw, &why))
    validate_invitation (raw, &ctx, &inv, &why);
  *request_out = g_string_free (req, FALSE);
  return inv;
}
