/*
 * validate.c - the one gate: a RawRequest becomes an Invitation here, or
 * is refused with a stable code naming the field at fault.
 *
 * Check functions here only decide; they never log and never act.  An
 * Invitation can only be made by validate_invitation, so everything that
 * takes one (render, mime, queue) sees checked values only.
 *
 * SECURITY / what is refused, and why:
 * - Links: https only; parsed with GUri (G_URI_FLAGS_ENCODED, so that
 *   percent-escapes such as %2F or %0D%0A stay escaped and the link keeps
 *   its meaning); no userinfo (`https://example.org@evil.example/`); no
 *   percent-encoded host; no byte outside RFC 3986's character set, no
 *   whitespace or controls.  Non-ASCII is allowed only in the host, which
 *   must be free of invisible and bidi characters and is turned into
 *   A-labels (IDNA) before the allow-list check: a Cyrillic look-alike of
 *   example.org becomes xn--... and does not match "example.org".  IP
 *   literals, and hosts whose last label is all digits (127.1), are never
 *   allowed.
 * - Addresses: one RFC 5321 mailbox with a dot-atom ASCII local part (no
 *   quoted local parts, no SMTPUTF8) and a domain of LDH labels in
 *   A-label form; the address goes verbatim into RCPT TO, so CR, LF, NUL,
 *   controls, spaces, quotes and brackets are refused.
 * - Free text that reaches the message (booking, unit): one check,
 *   validate_free_text.  Letters, marks and digits of any script, single
 *   spaces and a few ASCII punctuation marks; nothing a mail client could
 *   turn into a link: no "@", no "//", a "." or ":" only before a space
 *   or at the end (so no "evil.example", "www.x" or "https:"), and no
 *   other dot or at sign (fullwidth or ideographic look-alikes are not
 *   letters, so they are refused too).  The link allow-list is the only
 *   way a link reaches the mail.  Controls, bidi and zero-width
 *   characters are refused as before: they make text read differently
 *   from its bytes.
 *
 * TRUSTS: the ValidateContext (from the configuration), and that the
 * RawRequest came from request_parse (names known, values UTF-8 without
 * controls) -- but the pieces re-check what they rely on, because they
 * are also fuzz targets on raw bytes.
 *
 * Refusal messages never contain request values: addresses and links
 * must not reach logs.
 */
#include "validate.h"

#include <string.h>
#include "digest.h"
#include "names.h"

struct Invitation {
  char *link;
  char *link_host;
  GPtrArray *recipients;       /* char *, de-duplicated, first-seen order */
  char *booking;
  char *staff;
  char *lang;
  char *template_name;
  GDateTime *meeting_time;
  GDateTime *meeting_end;      /* set whenever meeting_time is */
  gboolean end_given;          /* meeting_end or duration was in the request */
  char *idempotency_key;
  char *unit;
};

/* Raw address bytes we look at before any work; the result must still
 * fit ADDRESS_MAX.  A UTF-8 domain may be longer in bytes than its
 * A-labels, hence the slack. */
#define ADDRESS_RAW_MAX (4 * ADDRESS_MAX)
#define HOST_LABEL_MAX 63

/* Template names that are files of the template folder but never an
 * invitation template: the mandatory notice cannot be sent alone. */
static const char *const reserved_templates[] = { "privacy-notice", NULL };

/* ---- request kinds ------------------------------------------------------ */

static const char *const attrs_ping[] = { "request", NULL };
static const char *const attrs_status[] = { "request", "id", NULL };
/* dsn_error: what the client's own DSN parser refused, for the audit. */
static const char *const attrs_bounce[] = {
  "request", "token", "dsn_action", "dsn_status", "diagnostic", "dsn_error", NULL
};
static const char *const attrs_health[] = { "request", NULL };
static const char *const attrs_cancel[] = { "request", "id", NULL };
static const char *const attrs_send[] = {
  "request", "link", "bcc", "booking", "staff", "lang", "template",
  "meeting_time", "meeting_end", "duration", "idempotency_key", "unit", NULL
};
static const char *const attrs_preview[] = {
  "request", "link", "bcc", "booking", "staff", "lang", "template",
  "meeting_time", "meeting_end", "duration", "unit", NULL
};

static const struct {
  const char *name;
  RequestKind kind;
  const char *const *attrs;
} kinds[] = {
  { "ping", REQUEST_KIND_PING, attrs_ping },
  { "send", REQUEST_KIND_SEND, attrs_send },
  { "preview", REQUEST_KIND_PREVIEW, attrs_preview },
  { "status", REQUEST_KIND_STATUS, attrs_status },
  { "bounce", REQUEST_KIND_BOUNCE, attrs_bounce },
  { "health", REQUEST_KIND_HEALTH, attrs_health },
  { "cancel", REQUEST_KIND_CANCEL, attrs_cancel },
};

gboolean
validate_kind (const RawRequest *req, RequestKind *kind, Refusal *why)
{
  const char *value;

  g_return_val_if_fail (req != NULL && kind != NULL && why != NULL, FALSE);
  value = raw_request_get (req, "request");
  if (value == NULL)
    return refusal_set (why, REFUSAL_MISSING_FIELD, "request", NULL);
  for (gsize k = 0; k < G_N_ELEMENTS (kinds); k++)
    {
      if (strcmp (kinds[k].name, value) != 0)
        continue;
      for (guint i = 0; i < req->attrs->len; i++)
        {
          const RawAttr *a = g_ptr_array_index (req->attrs, i);

          if (!g_strv_contains (kinds[k].attrs, a->name))
            return refusal_set (why, REFUSAL_UNKNOWN_ATTRIBUTE, a->name,
                                "this attribute does not belong to a %s "
                                "request", kinds[k].name);
        }
      *kind = kinds[k].kind;
      return TRUE;
    }
  return refusal_set (why, REFUSAL_UNKNOWN_REQUEST, "request", NULL);
}

/* ---- character classes -------------------------------------------------- */

enum { CC_LOWER = 1, CC_UPPER = 2, CC_DIGIT = 4 };

static gboolean
char_in (char c, int classes, const char *extra)
{
  if ((classes & CC_LOWER) && g_ascii_islower (c))
    return TRUE;
  if ((classes & CC_UPPER) && g_ascii_isupper (c))
    return TRUE;
  if ((classes & CC_DIGIT) && g_ascii_isdigit (c))
    return TRUE;
  return c != '\0' && extra != NULL && strchr (extra, c) != NULL;
}

/* s is min..max characters, each of the classes or in extra. */
static gboolean
token_ok (const char *s, gsize min, gsize max, int classes, const char *extra)
{
  gsize n = strlen (s);

  if (n < min || n > max)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!char_in (s[i], classes, extra))
      return FALSE;
  return TRUE;
}

/*
 * Characters that render as nothing or reorder text: controls, format
 * characters (Cf: bidi embeddings/overrides/isolates U+202A..U+202E,
 * U+2066..U+2069, marks U+200E/U+200F, zero-width U+200B..U+200D,
 * U+FEFF), line and paragraph separators.  The explicit ranges repeat
 * what Cf covers so that an older Unicode table in GLib cannot let one
 * through.
 */
static gboolean
unichar_invisible (gunichar c)
{
  if ((c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e)
      || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff)
    return TRUE;
  switch (g_unichar_type (c))
    {
    case G_UNICODE_CONTROL:
    case G_UNICODE_FORMAT:
    case G_UNICODE_SURROGATE:
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
      return TRUE;
    default:
      return FALSE;
    }
}

/* n bytes of valid UTF-8 holding no invisible character and, unless
 * allow_space, no white space. */
static gboolean
utf8_visible (const char *s, gsize n, gboolean allow_space)
{
  if (!g_utf8_validate_len (s, n, NULL))
    return FALSE;
  for (const char *p = s; p < s + n; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (unichar_invisible (c) || (!allow_space && g_unichar_isspace (c)))
        return FALSE;
    }
  return TRUE;
}

/*
 * A lowercase ASCII host name: labels of [a-z0-9-], 1..63 each, no
 * hyphen at either end, at least min_labels labels, at most
 * ADDRESS_MAX_DOMAIN in all (RFC 1035 2.3.1, RFC 5321 4.5.3.1.2).
 * The last label must not be all digits, so that no dotted number (IPv4
 * or the 127.1 short forms some resolvers accept) passes as a name.
 */
static gboolean
host_ldh_ok (const char *host, guint min_labels)
{
  g_auto (GStrv) labels = NULL;
  guint n;

  if (*host == '\0' || strlen (host) > ADDRESS_MAX_DOMAIN)
    return FALSE;
  labels = g_strsplit (host, ".", -1);
  n = g_strv_length (labels);
  if (n < min_labels)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      gsize len = strlen (labels[i]);

      if (len == 0 || len > HOST_LABEL_MAX
          || labels[i][0] == '-' || labels[i][len - 1] == '-'
          || !token_ok (labels[i], 1, HOST_LABEL_MAX, CC_LOWER | CC_DIGIT,
                        "-"))
        return FALSE;
    }
  return !token_ok (labels[n - 1], 1, HOST_LABEL_MAX, CC_DIGIT, NULL);
}

gboolean
validate_host_allowed (const char *ascii_host, const char *const *link_hosts)
{
  gsize hlen;

  g_return_val_if_fail (ascii_host != NULL, FALSE);
  if (link_hosts == NULL)
    return FALSE;
  hlen = strlen (ascii_host);
  for (gsize i = 0; link_hosts[i] != NULL; i++)
    {
      const char *entry = link_hosts[i];

      if (g_str_has_prefix (entry, "*."))
        {
          gsize dlen = strlen (entry + 1);   /* ".domain" */

          /* At least one more label: "x.domain", never "domain". */
          if (dlen > 1 && hlen > dlen
              && g_ascii_strcasecmp (ascii_host + hlen - dlen, entry + 1) == 0)
            return TRUE;
        }
      else if (*entry != '\0' && g_ascii_strcasecmp (ascii_host, entry) == 0)
        return TRUE;
    }
  return FALSE;
}

/* ---- links -------------------------------------------------------------- */

/* The scheme, RFC 3986 3.1, must be https (in any case). */
static gboolean
link_scheme_ok (const char *link, Refusal *why)
{
  gsize i = 0;

  if (!g_ascii_isalpha (link[0]))
    return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                        "the meeting link has no scheme");
  while (char_in (link[i], CC_LOWER | CC_UPPER | CC_DIGIT, "+.-"))
    i++;
  if (link[i] != ':')
    return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                        "the meeting link has no scheme");
  if (i != 5 || g_ascii_strncasecmp (link, "https", 5) != 0)
    return refusal_set (why, REFUSAL_LINK_NOT_HTTPS, "link", NULL);
  if (strncmp (link + 6, "//", 2) != 0)
    return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                        "the meeting link must start with https:// and a host");
  return TRUE;
}

/*
 * Byte rules, given link starts "https://": ASCII outside the authority
 * must be RFC 3986 characters (no space, controls, DEL, " < > \ ^ ` { | }).
 * The authority holds no userinfo and no percent-escape; non-ASCII is
 * allowed there only (an IDN host), and only visible characters.
 */
static gboolean
link_bytes_ok (const char *link, Refusal *why)
{
  const gsize start = strlen ("https://");
  const gsize end = start + strcspn (link + start, "/?#");

  for (gsize i = 0; link[i] != '\0'; i++)
    {
      unsigned char c = link[i];
      gboolean in_authority = i >= start && i < end;

      if (c >= 0x80 && !in_authority)
        return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                            "non-ASCII characters are allowed only in the "
                            "host name; percent-encode them");
      if (c <= 0x20 || c == 0x7f || strchr ("\"<>\\^`{|}", c) != NULL)
        return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                            "the meeting link holds a space, control or "
                            "character not allowed in a link");
      if (in_authority && (c == '@' || c == '%'))
        return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                            "the meeting link may not hold a user name or an "
                            "encoded host");
    }
  if (!utf8_visible (link + start, end - start, FALSE))
    return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                        "the host name holds invisible characters");
  return TRUE;
}

/* Host (GUri has turned a UTF-8 host into A-labels) to lowercase,
 * checked against name rules and the allow-list. */
static gboolean
link_host_ok (GUri *uri, const char *const *link_hosts, char **host_out,
              Refusal *why)
{
  g_autofree char *host = NULL;

  if (g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                        "the meeting link has no host");
  host = g_ascii_strdown (g_uri_get_host (uri), -1);
  if (g_hostname_is_ip_address (host))
    return refusal_set (why, REFUSAL_LINK_HOST_NOT_ALLOWED, "link",
                        "the meeting link must name a host, not an address");
  if (!host_ldh_ok (host, 1))
    return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                        "the host name of the meeting link is not valid");
  if (!validate_host_allowed (host, link_hosts))
    return refusal_set (why, REFUSAL_LINK_HOST_NOT_ALLOWED, "link", NULL);
  *host_out = g_steal_pointer (&host);
  return TRUE;
}

/* The whole link check; *normalized and *host_out are (transfer full). */
static gboolean
link_check (const char *link, const char *const *link_hosts,
            char **normalized, char **host_out, Refusal *why)
{
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GUri) clean = NULL;
  g_autofree char *host = NULL;
  g_autofree char *out = NULL;

  if (strlen (link) > LINK_MAX || !g_utf8_validate (link, -1, NULL))
    return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                        "the meeting link is too long or not text");
  if (!link_scheme_ok (link, why) || !link_bytes_ok (link, why))
    return FALSE;
  uri = g_uri_parse (link, G_URI_FLAGS_ENCODED, NULL);
  if (uri == NULL)
    return refusal_set (why, REFUSAL_INVALID_LINK, "link", NULL);
  if (g_uri_get_userinfo (uri) != NULL || g_uri_get_port (uri) == 0)
    return refusal_set (why, REFUSAL_INVALID_LINK, "link", NULL);
  if (!link_host_ok (uri, link_hosts, &host, why))
    return FALSE;
  clean = g_uri_build (G_URI_FLAGS_ENCODED, "https", NULL, host,
                       g_uri_get_port (uri), g_uri_get_path (uri),
                       g_uri_get_query (uri), g_uri_get_fragment (uri));
  out = g_uri_to_string (clean);
  if (strlen (out) > LINK_MAX)
    return refusal_set (why, REFUSAL_INVALID_LINK, "link",
                        "the meeting link is too long");
  *normalized = g_steal_pointer (&out);
  *host_out = g_steal_pointer (&host);
  return TRUE;
}

gboolean
validate_link (const char *link, const char *const *link_hosts,
               char **normalized, Refusal *why)
{
  g_autofree char *host = NULL;
  g_autofree char *out = NULL;

  g_return_val_if_fail (link != NULL && why != NULL, FALSE);
  if (!link_check (link, link_hosts, &out, &host, why))
    return FALSE;
  if (normalized != NULL)
    *normalized = g_steal_pointer (&out);
  return TRUE;
}

/* ---- addresses ---------------------------------------------------------- */

/* RFC 5322 3.2.3 atext, beside letters and digits. */
#define ATEXT_EXTRA "!#$%&'*+-/=?^_`{|}~"

/* Dot-atom: atext runs joined by single dots (RFC 5322 3.2.3). */
static gboolean
local_part_ok (const char *local, gsize n)
{
  if (n == 0 || n > ADDRESS_MAX_LOCAL || local[0] == '.'
      || local[n - 1] == '.')
    return FALSE;
  for (gsize i = 0; i < n; i++)
    {
      if (local[i] == '.' && local[i + 1] == '.')
        return FALSE;
      if (local[i] != '.'
          && !char_in (local[i], CC_LOWER | CC_UPPER | CC_DIGIT, ATEXT_EXTRA))
        return FALSE;
    }
  return TRUE;
}

/* Bytes that must never reach RCPT TO, or that only a quoted local part
 * or an address literal could hold (both refused). */
static gboolean
address_bytes_ok (const char *addr)
{
  for (const char *p = addr; *p != '\0'; p++)
    {
      unsigned char c = *p;

      if (c < 0x20 || c == 0x7f || strchr (" <>,\"\\()[];:", c) != NULL)
        return FALSE;
    }
  return TRUE;
}

/* UTF-8 or ASCII domain to lowercase A-labels, or NULL. (transfer full) */
static char *
domain_to_ascii (const char *domain)
{
  g_autofree char *ascii = NULL;
  g_autofree char *lower = NULL;

  if (!utf8_visible (domain, strlen (domain), FALSE))
    return NULL;
  ascii = g_hostname_to_ascii (domain);
  if (ascii == NULL)
    return NULL;
  lower = g_ascii_strdown (ascii, -1);
  if (!host_ldh_ok (lower, 2))
    return NULL;
  return g_steal_pointer (&lower);
}

gboolean
validate_address (const char *addr, char **ascii, Refusal *why)
{
  const char *at;
  g_autofree char *domain = NULL;
  g_autofree char *result = NULL;

  g_return_val_if_fail (addr != NULL && why != NULL, FALSE);
  if (strlen (addr) > ADDRESS_RAW_MAX || !g_utf8_validate (addr, -1, NULL)
      || !address_bytes_ok (addr))
    return refusal_set (why, REFUSAL_INVALID_ADDRESS, "bcc", NULL);
  at = strchr (addr, '@');
  if (at == NULL || strchr (at + 1, '@') != NULL)
    return refusal_set (why, REFUSAL_INVALID_ADDRESS, "bcc",
                        "a recipient address must hold exactly one @");
  for (const char *p = addr; p < at; p++)
    if ((unsigned char) *p >= 0x80)
      return refusal_set (why, REFUSAL_ADDRESS_UTF8, "bcc", NULL);
  if (!local_part_ok (addr, at - addr))
    return refusal_set (why, REFUSAL_INVALID_ADDRESS, "bcc",
                        "the part before the @ is not a valid mailbox name");
  domain = domain_to_ascii (at + 1);
  if (domain == NULL)
    return refusal_set (why, REFUSAL_INVALID_ADDRESS, "bcc",
                        "the part after the @ is not a valid domain name");
  result = g_strdup_printf ("%.*s@%s", (int) (at - addr), addr, domain);
  if (strlen (result) > ADDRESS_MAX)
    return refusal_set (why, REFUSAL_INVALID_ADDRESS, "bcc",
                        "the recipient address is too long");
  /* What goes on the wire passes the rule every later wall checks. */
  if (!envelope_safe (result, ENVELOPE_MAILBOX))
    return refusal_set (why, REFUSAL_INVALID_ADDRESS, "bcc", NULL);
  if (ascii != NULL)
    *ascii = g_steal_pointer (&result);
  return TRUE;
}

gboolean
validate_invite_id (const char *id, Refusal *why)
{
  g_return_val_if_fail (why != NULL, FALSE);
  if (id == NULL
      || !token_ok (id, INVITE_ID_LEN, INVITE_ID_LEN, CC_LOWER | CC_DIGIT, NULL))
    return refusal_set (why, REFUSAL_INVALID_VALUE, "id",
                        "an invite id is 20 characters of a-z and 0-9");
  return TRUE;
}

/* ---- the invitation ----------------------------------------------------- */

static gboolean
check_link (const RawRequest *req, const ValidateContext *ctx,
            Invitation *inv, Refusal *why)
{
  const char *link = raw_request_get (req, "link");

  if (link == NULL)
    return refusal_set (why, REFUSAL_MISSING_FIELD, "link",
                        "the meeting link is missing");
  return link_check (link, ctx->link_hosts, &inv->link, &inv->link_host, why);
}

/* Checks and de-duplicates every bcc.  Addresses come out of
 * validate_address with the domain lowercased, so exact comparison is
 * "domain without case, local part as given". */
static gboolean
check_recipients (const RawRequest *req, const ValidateContext *ctx,
                  Invitation *inv, Refusal *why)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint max = CLAMP (ctx->max_recipients, 1, RECIPIENTS_HARD_MAX);

  for (guint i = 0; i < req->attrs->len; i++)
    {
      const RawAttr *a = g_ptr_array_index (req->attrs, i);
      char *addr = NULL;

      if (strcmp (a->name, "bcc") != 0)
        continue;
      if (!validate_address (a->value, &addr, why))
        return FALSE;
      if (g_hash_table_contains (seen, addr))
        {
          g_free (addr);
          continue;
        }
      g_hash_table_add (seen, addr);
      g_ptr_array_add (inv->recipients, addr);
    }
  if (inv->recipients->len == 0)
    return refusal_set (why, REFUSAL_NO_RECIPIENTS, "bcc", NULL);
  if (inv->recipients->len > max)
    return refusal_set (why, REFUSAL_TOO_MANY_RECIPIENTS, "bcc",
                        "the invitation has more than %u recipients", max);
  return TRUE;
}

/* The ASCII punctuation free text may hold besides letters, marks,
 * digits and spaces: enough for "BK-2026/42 (R&D), avd. 4: Kl 10:30". */
#define FREE_TEXT_PUNCT "-_.,:;'()&#/+"

/* A character free text may hold at all. */
static gboolean
free_text_char_ok (gunichar c)
{
  if (c < 0x80)
    return g_ascii_isalnum (c) || c == ' ' || strchr (FREE_TEXT_PUNCT, (int) c) != NULL;
  if (unichar_invisible (c))
    return FALSE;
  return g_unichar_isalpha (c) || g_unichar_ismark (c)
    || g_unichar_type (c) == G_UNICODE_DECIMAL_NUMBER;
}

/*
 * What a mail client may turn into a link or an address: "@", "//", or
 * a "." or ":" followed by anything but a space, "," ";" ")" or the end
 * ("x.tld", "www.", "https:", "mailto:").  A ":" between two digits (10:30) is a
 * time, not a scheme.
 */
static gboolean
free_text_looks_like_link (const char *s)
{
  if (strchr (s, '@') != NULL || strstr (s, "//") != NULL)
    return TRUE;
  for (const char *p = s; *p != '\0'; p++)
    {
      if (*p != '.' && *p != ':')
        continue;
      /* End of a sentence or an abbreviation: "avd. 4", "(ref.)". */
      if (p[1] == '\0' || strchr (" ,;)", p[1]) != NULL)
        continue;
      if (*p == ':' && p > s && g_ascii_isdigit (p[-1]) && g_ascii_isdigit (p[1]))
        continue;
      return TRUE;
    }
  return FALSE;
}

gboolean
validate_free_text (const char *field, const char *value, guint max_chars,
                    Refusal *why)
{
  gsize n;

  g_return_val_if_fail (field != NULL && value != NULL && why != NULL, FALSE);
  n = strlen (value);
  if (n == 0 || n > FREE_TEXT_MAX_BYTES || !g_utf8_validate (value, n, NULL)
      || g_utf8_strlen (value, n) > max_chars)
    return refusal_set (why, REFUSAL_INVALID_VALUE, field,
                        "%s must be 1 to %u characters of text", field, max_chars);
  if (free_text_looks_like_link (value))
    return refusal_set (why, REFUSAL_INVALID_VALUE, field,
                        "%s may not hold anything that looks like a link, a "
                        "domain or an address", field);
  if (value[0] == ' ' || value[n - 1] == ' ' || strstr (value, "  ") != NULL)
    return refusal_set (why, REFUSAL_INVALID_VALUE, field,
                        "%s may not start or end with a space or hold two in a row",
                        field);
  for (const char *p = value; *p != '\0'; p = g_utf8_next_char (p))
    if (!free_text_char_ok (g_utf8_get_char (p)))
      return refusal_set (why, REFUSAL_INVALID_VALUE, field,
                          "%s may hold letters, digits, spaces and "
                          "- _ . , : ; ' ( ) & # / + only", field);
  return TRUE;
}

/* booking and unit: the free text that reaches the message. */
static gboolean
check_free_text (const RawRequest *req, Invitation *inv, Refusal *why)
{
  const char *booking = raw_request_get (req, "booking");
  const char *unit = raw_request_get (req, "unit");

  if (booking != NULL && !validate_free_text ("booking", booking, BOOKING_MAX_CHARS, why))
    return FALSE;
  if (unit != NULL && !validate_free_text ("unit", unit, UNIT_MAX_CHARS, why))
    return FALSE;
  inv->booking = g_strdup (booking);
  inv->unit = g_strdup (unit);
  return TRUE;
}

/* staff (an HSA-id or user name) and idempotency_key: plain tokens. */
static gboolean
check_tokens (const RawRequest *req, Invitation *inv, Refusal *why)
{
  const char *staff = raw_request_get (req, "staff");
  const char *key = raw_request_get (req, "idempotency_key");
  const int cc = CC_LOWER | CC_UPPER | CC_DIGIT;

  if (staff != NULL && !token_ok (staff, 1, STAFF_MAX, cc, "._@:-"))
    return refusal_set (why, REFUSAL_INVALID_VALUE, "staff",
                        "staff must be 1 to %d of A-Z a-z 0-9 . _ @ : -",
                        STAFF_MAX);
  if (key != NULL && !token_ok (key, 1, IDEMPOTENCY_KEY_MAX, cc, "._:-"))
    return refusal_set (why, REFUSAL_INVALID_VALUE, "idempotency_key",
                        "idempotency_key must be 1 to %d of A-Z a-z 0-9 . _ : -",
                        IDEMPOTENCY_KEY_MAX);
  inv->staff = g_strdup (staff);
  inv->idempotency_key = g_strdup (key);
  return TRUE;
}

/*
 * lang and template.  Rule for telling the two refusals apart: if the
 * template is missing in the asked language but exists in the default
 * language, the language is at fault (unknown_lang); otherwise the
 * template is (unknown_template).  A template that exists only in some
 * third language is therefore reported as unknown_template.
 */
static gboolean
check_lang_template (const RawRequest *req, const ValidateContext *ctx,
                     Invitation *inv, Refusal *why)
{
  const char *lang = raw_request_get (req, "lang");
  const char *tmpl = raw_request_get (req, "template");
  const char *def = ctx->default_lang;
  TemplateLookup have = ctx->have_template;
  gpointer data = ctx->have_template_data;

  lang = lang != NULL ? lang : def;
  tmpl = tmpl != NULL ? tmpl : ctx->default_template;
  if (!lang_tag_ok (lang, -1))
    return refusal_set (why, REFUSAL_INVALID_VALUE, "lang",
                        "lang must be 2 or 3 letters a-z");
  if (!template_name_ok (tmpl, -1))
    return refusal_set (why, REFUSAL_INVALID_VALUE, "template",
                        "template must be 1 to %d of a-z 0-9 _ - and start"
                        " with a-z 0-9", TEMPLATE_NAME_MAX);
  if (g_strv_contains (reserved_templates, tmpl) || have == NULL)
    return refusal_set (why, REFUSAL_UNKNOWN_TEMPLATE, "template", NULL);
  if (!have (tmpl, lang, data))
    {
      if (def != NULL && strcmp (lang, def) != 0 && have (tmpl, def, data))
        return refusal_set (why, REFUSAL_UNKNOWN_LANG, "lang", NULL);
      return refusal_set (why, REFUSAL_UNKNOWN_TEMPLATE, "template", NULL);
    }
  inv->lang = g_strdup (lang);
  inv->template_name = g_strdup (tmpl);
  return TRUE;
}

/*
 * The shape of RFC 3339 date-time with a required offset:
 * YYYY-MM-DDTHH:MM[:SS[.1-9 digits]](Z|+HH:MM|-HH:MM).  GLib's ISO 8601
 * parser is far more lenient (week dates, no offset = local time), so the
 * shape is checked first.  Returns the length of the date and HH:MM part
 * with seconds (16 when seconds are absent), or 0 when it does not fit.
 */
static gsize
meeting_time_shape (const char *s, gboolean *has_seconds)
{
  static const char head[] = "DDDD-DD-DDTDD:DD";
  gsize i;

  for (i = 0; head[i] != '\0'; i++)
    if (head[i] == 'D' ? !g_ascii_isdigit (s[i]) : s[i] != head[i])
      return 0;
  *has_seconds = s[i] == ':';
  if (*has_seconds)
    {
      if (!g_ascii_isdigit (s[i + 1]) || !g_ascii_isdigit (s[i + 2]))
        return 0;
      i += 3;
      if (s[i] == '.')
        {
          gsize d = 0;

          while (g_ascii_isdigit (s[i + 1 + d]))
            d++;
          if (d == 0 || d > 9)
            return 0;
          i += 1 + d;
        }
    }
  if (strcmp (s + i, "Z") == 0)
    return i;
  if ((s[i] != '+' && s[i] != '-') || !g_ascii_isdigit (s[i + 1])
      || !g_ascii_isdigit (s[i + 2]) || s[i + 3] != ':'
      || !g_ascii_isdigit (s[i + 4]) || !g_ascii_isdigit (s[i + 5])
      || s[i + 6] != '\0')
    return 0;
  return i;
}

static gboolean
check_meeting_time (const RawRequest *req, const ValidateContext *ctx,
                    Invitation *inv, Refusal *why)
{
  const char *v = raw_request_get (req, "meeting_time");
  g_autofree char *full = NULL;
  g_autoptr (GDateTime) now = NULL;
  gboolean has_seconds = FALSE;

  if (v == NULL)
    return TRUE;
  if (strlen (v) > 64 || meeting_time_shape (v, &has_seconds) == 0)
    return refusal_set (why, REFUSAL_INVALID_MEETING_TIME, "meeting_time",
                        NULL);
  /* GLib wants seconds; HH:MM alone means HH:MM:00. */
  full = has_seconds ? g_strdup (v) : g_strdup_printf ("%.16s:00%s", v, v + 16);
  inv->meeting_time = g_date_time_new_from_iso8601 (full, NULL);
  if (inv->meeting_time == NULL)
    return refusal_set (why, REFUSAL_INVALID_MEETING_TIME, "meeting_time",
                        "the meeting time is not a real date and time");
  now = ctx->now != NULL ? g_date_time_ref (ctx->now)
                         : g_date_time_new_now_utc ();
  if (g_date_time_compare (inv->meeting_time, now) <= 0)
    return refusal_set (why, REFUSAL_MEETING_PASSED, "meeting_time", NULL);
  return TRUE;
}

/*
 * The end: meeting_end (RFC 3339, after the start) or duration (whole
 * minutes), never both, and only with a start; at most
 * MEETING_MAX_MINUTES after the start.  Without either the meeting
 * lasts MEETING_DEFAULT_MINUTES, so the mail and the calendar entry
 * always have an end.
 */
static gboolean
check_meeting_end (const RawRequest *req, Invitation *inv, Refusal *why)
{
  const char *end = raw_request_get (req, "meeting_end");
  const char *dur = raw_request_get (req, "duration");
  const char *field = end != NULL ? "meeting_end" : "duration";
  gint64 minutes = MEETING_DEFAULT_MINUTES;

  if (end != NULL && dur != NULL)
    return refusal_set (why, REFUSAL_INVALID_MEETING_TIME, "duration",
                        "give meeting_end or duration, not both");
  if (inv->meeting_time == NULL)
    return end == NULL && dur == NULL
           ? TRUE
           : refusal_set (why, REFUSAL_MISSING_FIELD, "meeting_time",
                          "an end needs the meeting's start (meeting_time)");
  if (end != NULL)
    {
      gboolean has_seconds = FALSE;
      g_autofree char *full = NULL;
      if (strlen (end) > 64 || meeting_time_shape (end, &has_seconds) == 0)
        return refusal_set (why, REFUSAL_INVALID_MEETING_TIME, field,
                            "meeting_end is not an RFC 3339 time with an offset");
      full = has_seconds ? g_strdup (end) : g_strdup_printf ("%.16s:00%s", end, end + 16);
      inv->meeting_end = g_date_time_new_from_iso8601 (full, NULL);
      if (inv->meeting_end == NULL)
        return refusal_set (why, REFUSAL_INVALID_MEETING_TIME, field,
                            "meeting_end is not a real date and time");
      minutes = g_date_time_difference (inv->meeting_end, inv->meeting_time)
                / G_TIME_SPAN_MINUTE;
      if (g_date_time_compare (inv->meeting_end, inv->meeting_time) <= 0)
        minutes = 0;
    }
  else if (dur != NULL)
    {
      guint64 v = 0;
      if (strlen (dur) > 4 || !g_ascii_string_to_unsigned (dur, 10, 1,
                                                           MEETING_MAX_MINUTES,
                                                           &v, NULL))
        return refusal_set (why, REFUSAL_INVALID_MEETING_TIME, field,
                            "duration is whole minutes, 1 to %d",
                            MEETING_MAX_MINUTES);
      minutes = (gint64) v;
    }
  if (minutes < 1 || minutes > MEETING_MAX_MINUTES)
    return refusal_set (why, REFUSAL_INVALID_MEETING_TIME, field,
                        "the meeting must end after it starts, within %d minutes",
                        MEETING_MAX_MINUTES);
  if (inv->meeting_end == NULL)
    inv->meeting_end = g_date_time_add_minutes (inv->meeting_time, (gint) minutes);
  inv->end_given = end != NULL || dur != NULL;
  return TRUE;
}

gboolean
validate_invitation (const RawRequest *req, const ValidateContext *ctx,
                     Invitation **out, Refusal *why)
{
  g_autoptr (Invitation) inv = NULL;
  RequestKind kind;

  g_return_val_if_fail (req != NULL && ctx != NULL, FALSE);
  g_return_val_if_fail (out != NULL && why != NULL, FALSE);
  if (!validate_kind (req, &kind, why))
    return FALSE;
  if (kind != REQUEST_KIND_SEND && kind != REQUEST_KIND_PREVIEW)
    return refusal_set (why, REFUSAL_UNKNOWN_REQUEST, "request",
                        "only send and preview requests carry an invitation");
  /* Before any work: a flood of bcc lines costs one count. */
  if (raw_request_count (req, "bcc") > RECIPIENTS_HARD_MAX)
    return refusal_set (why, REFUSAL_TOO_MANY_RECIPIENTS, "bcc", NULL);
  inv = g_new0 (Invitation, 1);
  inv->recipients = g_ptr_array_new_with_free_func (g_free);
  if (!check_link (req, ctx, inv, why)
      || !check_recipients (req, ctx, inv, why)
      || !check_free_text (req, inv, why)
      || !check_tokens (req, inv, why)
      || !check_lang_template (req, ctx, inv, why)
      || !check_meeting_time (req, ctx, inv, why)
      || !check_meeting_end (req, inv, why))
    return FALSE;
  *out = g_steal_pointer (&inv);
  return TRUE;
}

void
invitation_free (Invitation *inv)
{
  if (inv == NULL)
    return;
  g_free (inv->link);
  g_free (inv->link_host);
  g_clear_pointer (&inv->recipients, g_ptr_array_unref);
  g_free (inv->booking);
  g_free (inv->staff);
  g_free (inv->lang);
  g_free (inv->template_name);
  g_clear_pointer (&inv->meeting_time, g_date_time_unref);
  g_clear_pointer (&inv->meeting_end, g_date_time_unref);
  g_free (inv->idempotency_key);
  g_free (inv->unit);
  g_free (inv);
}

/* ---- accessors ---------------------------------------------------------- */

const char *
invitation_link (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->link;
}

const char *
invitation_link_host (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->link_host;
}

guint
invitation_n_recipients (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, 0);
  return inv->recipients->len;
}

const char *
invitation_recipient (const Invitation *inv, guint i)
{
  g_return_val_if_fail (inv != NULL && i < inv->recipients->len, NULL);
  return g_ptr_array_index (inv->recipients, i);
}

const char *
invitation_booking (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->booking;
}

const char *
invitation_staff (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->staff;
}

const char *
invitation_lang (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->lang;
}

const char *
invitation_template (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->template_name;
}

GDateTime *
invitation_meeting_time (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->meeting_time;
}

GDateTime *
invitation_meeting_end (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->meeting_end;
}

const char *
invitation_idempotency_key (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->idempotency_key;
}

const char *
invitation_unit (const Invitation *inv)
{
  g_return_val_if_fail (inv != NULL, NULL);
  return inv->unit;
}

/* ---- fingerprint -------------------------------------------------------- */

/* tag:LEN:bytes; -- or tag:-; when absent -- so no two different field
 * sets encode to the same bytes. */
static void
fp_add (GString *buf, const char *tag, const char *value)
{
  if (value == NULL)
    {
      g_string_append_printf (buf, "%s:-;", tag);
      return;
    }
  g_string_append_printf (buf, "%s:%" G_GSIZE_FORMAT ":", tag, strlen (value));
  g_string_append (buf, value);
  g_string_append_c (buf, ';');
}

/*
 * Every field that shapes the mail or its delivery, in a fixed order,
 * recipients in their (de-duplicated) order.  The idempotency key is
 * left out: it is what the fingerprint is looked up by.  The meeting
 * time counts in whole Unix seconds.
 */
char *
invitation_fingerprint (const Invitation *inv)
{
  g_autoptr (GString) buf = g_string_new ("invitemail-fingerprint-1;");
  g_autofree char *n = NULL;
  g_autofree char *when = NULL;
  char hex[SHA256_HEX_SIZE];

  g_return_val_if_fail (inv != NULL, NULL);
  fp_add (buf, "link", inv->link);
  n = g_strdup_printf ("%u", inv->recipients->len);
  fp_add (buf, "n", n);
  for (guint i = 0; i < inv->recipients->len; i++)
    fp_add (buf, "bcc", g_ptr_array_index (inv->recipients, i));
  fp_add (buf, "booking", inv->booking);
  fp_add (buf, "staff", inv->staff);
  fp_add (buf, "lang", inv->lang);
  fp_add (buf, "template", inv->template_name);
  if (inv->meeting_time != NULL)
    when = g_strdup_printf ("%" G_GINT64_FORMAT,
                            g_date_time_to_unix (inv->meeting_time));
  fp_add (buf, "meeting_time", when);
  /* Only when given, so that fingerprints stored before unit existed
   * still match the same request. */
  if (inv->unit != NULL)
    fp_add (buf, "unit", inv->unit);
  /* only when asked for, so fingerprints stored before ends existed
   * still match their retries */
  if (inv->end_given)
    {
      g_autofree char *end = g_strdup_printf ("%" G_GINT64_FORMAT,
                                              g_date_time_to_unix (inv->meeting_end));
      fp_add (buf, "meeting_end", end);
    }
  sha256_hex (buf->str, buf->len, hex);
  return g_strdup (hex);
}
