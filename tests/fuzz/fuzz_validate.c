/*
 * fuzz_validate.c - libFuzzer target for the one gate (validate.c):
 * validate_link and validate_address on arbitrary text, and
 * validate_invitation on whatever request_parse makes of the input.
 *
 * Checked promises (abort() when broken):
 * - an accepted link is https://, ASCII, without space, controls,
 *   userinfo or percent-escaped host, on the allow-list, and is
 *   accepted again as it is (normalising is idempotent);
 * - an accepted address is ASCII, one @, no byte that could end or
 *   extend an SMTP command (CR, LF, NUL, < > space ...), at most
 *   ADDRESS_MAX bytes, and is accepted again unchanged;
 * - an accepted invitation holds 1..max_recipients such addresses, a
 *   link as above, and a booking without controls or bidi characters;
 * - every refusal carries a code and a printable-ASCII message.
 *
 * TRUSTS: nothing in the input.  Built by `make fuzz` only, with clang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "request.h"
#include "validate.h"

#define MAX_RCPTS 5

static const char *const hosts[]
    = { "meet.example.org", "*.video.example.com", "xn--exmple-cua.example.net", NULL };

static void
must (gboolean ok)
{
  if (!ok)
    abort ();
}

static void
check_refusal (const Refusal *why)
{
  must (why->code > REFUSAL_NONE && why->code < REFUSAL_N_CODES);
  for (const char *p = why->message; *p != '\0'; p++)
    must (*p >= 0x20 && *p < 0x7f);
}

static gboolean
no_bytes (const char *s, const char *bad)
{
  for (const char *p = s; *p != '\0'; p++)
    if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f
        || strchr (bad, *p) != NULL)
      return FALSE;
  return TRUE;
}

static void
check_link_out (const char *link)
{
  g_autoptr (GUri) uri = g_uri_parse (link, G_URI_FLAGS_ENCODED, NULL);
  g_autofree char *again = NULL;
  Refusal why;

  must (g_str_has_prefix (link, "https://"));
  must (no_bytes (link, "\"<>\\^`{|}"));
  must (uri != NULL && g_uri_get_userinfo (uri) == NULL);
  must (strchr (g_uri_get_host (uri), '%') == NULL);
  must (validate_host_allowed (g_uri_get_host (uri), hosts));
  must (validate_link (link, hosts, &again, &why));
  must (strcmp (link, again) == 0);
}

static void
check_address_out (const char *addr)
{
  g_autofree char *again = NULL;
  const char *at = strchr (addr, '@');
  Refusal why;

  must (strlen (addr) <= ADDRESS_MAX);
  must (no_bytes (addr, "<>,\"\\()[];:"));
  must (at != NULL && strchr (at + 1, '@') == NULL);
  must (validate_address (addr, &again, &why));
  must (strcmp (addr, again) == 0);
}

static void
check_booking_out (const char *booking)
{
  if (booking == NULL)
    return;
  must (g_utf8_validate (booking, -1, NULL));
  for (const char *p = booking; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      must (c >= 0x20 && !(c >= 0x7f && c <= 0x9f));
      must (!(c >= 0x202a && c <= 0x202e) && !(c >= 0x2066 && c <= 0x2069));
      must (!(c >= 0x200b && c <= 0x200f) && c != 0xfeff);
    }
}

static gboolean
have_template (const char *name, const char *lang, gpointer data)
{
  return strcmp (name, "evisit") == 0
         && (strcmp (lang, "sv") == 0 || strcmp (lang, "en") == 0);
}

static void
fuzz_invitation (const char *buf, gsize len)
{
  g_autoptr (RawRequest) req = NULL;
  g_autoptr (Invitation) inv = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_utc (2026, 1, 1, 0, 0, 0);
  ValidateContext ctx = { hosts, MAX_RCPTS, "sv", "evisit", have_template, NULL, now };
  Refusal why;

  if (!request_parse (buf, len, &req, &why))
    return;
  if (!validate_invitation (req, &ctx, &inv, &why))
    {
      check_refusal (&why);
      must (inv == NULL);
      return;
    }
  must (invitation_n_recipients (inv) >= 1 && invitation_n_recipients (inv) <= MAX_RCPTS);
  for (guint i = 0; i < invitation_n_recipients (inv); i++)
    check_address_out (invitation_recipient (inv, i));
  check_link_out (invitation_link (inv));
  check_booking_out (invitation_booking (inv));
  g_free (invitation_fingerprint (inv));
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *)data, size);
  g_autofree char *link = NULL;
  g_autofree char *addr = NULL;
  Refusal why;

  if (validate_link (text, hosts, &link, &why))
    check_link_out (link);
  else
    check_refusal (&why);
  if (validate_address (text, &addr, &why))
    check_address_out (addr);
  else
    check_refusal (&why);
  validate_invite_id (text, &why);
  fuzz_invitation ((const char *)data, size);
  return 0;
}
