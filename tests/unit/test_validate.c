/*
 * test_validate.c - the one gate (validate.c): links, addresses, request
 * kinds, whole invitations with a fake template lookup, fingerprints,
 * invite ids, and a deterministic fuzz loop over the pieces.
 * All addresses and hosts are example.org / example.com (RFC 2606) or
 * made up; bookings are made up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <glib.h>

#include "validate.h"

static const char *const hosts[] = {
  "example.org", "*.example.org", "meet.example.com", NULL
};

/* ---- links --------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *link;
  RefusalCode code;           /* REFUSAL_NONE: accepted */
  const char *normalized;     /* when accepted; NULL = same as link */
} LinkCase;

static const LinkCase link_cases[] = {
  { "plain", "https://example.org/", 0, NULL },
  { "no path", "https://example.org", 0, NULL },
  { "path and query", "https://meet.example.com/room/123?pin=42", 0, NULL },
  { "upper case scheme and host", "HTTPS://Meet.Example.COM/Room",
    0, "https://meet.example.com/Room" },
  { "port", "https://video.example.org:8443/x", 0, NULL },
  { "default port kept", "https://example.org:443/", 0, NULL },
  { "sub-host and fragment", "https://a.b.example.org/x#frag", 0, NULL },
  { "IDN host to A-labels", "https://räksmörgås.example.org/mote",
    0, "https://xn--rksmrgs-5wao1o.example.org/mote" },
  { "A-label host", "https://xn--rksmrgs-5wao1o.example.org/", 0, NULL },
  { "encoded CRLF stays encoded", "https://example.org/a%0D%0Ab", 0, NULL },
  { "encoded slash and = kept", "https://example.org/a%2Fb?x=%3D&y=1", 0,
    NULL },
  { "sub-delims in query", "https://example.org/?q=a+b&c=d;e,f!$'()*", 0,
    NULL },
  { "tilde dash underscore in path",
    "https://sub.example.org/p/~a_b-c.html", 0, NULL },
  { "http", "http://example.org/", REFUSAL_LINK_NOT_HTTPS, NULL },
  { "javascript", "javascript:alert(1)", REFUSAL_LINK_NOT_HTTPS, NULL },
  { "data", "data:text/html,<script>alert(1)</script>",
    REFUSAL_LINK_NOT_HTTPS, NULL },
  { "ftp", "ftp://example.org/", REFUSAL_LINK_NOT_HTTPS, NULL },
  { "httpsx scheme", "httpsx://example.org/", REFUSAL_LINK_NOT_HTTPS, NULL },
  { "userinfo", "https://user:pw@example.org/", REFUSAL_INVALID_LINK, NULL },
  { "allowed host as userinfo", "https://example.org@evil.example/",
    REFUSAL_INVALID_LINK, NULL },
  { "empty userinfo", "https://@example.org/", REFUSAL_INVALID_LINK, NULL },
  { "host not allowed", "https://evil.example/", REFUSAL_LINK_HOST_NOT_ALLOWED,
    NULL },
  { "Cyrillic look-alike", "https://\xd0\xb5\xd1\x85" "ample.org/",
    REFUSAL_LINK_HOST_NOT_ALLOWED, NULL },
  { "allowed host as prefix", "https://example.org.evil.example/",
    REFUSAL_LINK_HOST_NOT_ALLOWED, NULL },
  { "allowed host as suffix without dot", "https://notexample.org/",
    REFUSAL_LINK_HOST_NOT_ALLOWED, NULL },
  { "wildcard does not cover parent", "https://example.com/",
    REFUSAL_LINK_HOST_NOT_ALLOWED, NULL },
  { "IPv4 literal", "https://192.0.2.1/", REFUSAL_LINK_HOST_NOT_ALLOWED, NULL },
  { "IPv6 literal", "https://[2001:db8::1]/", REFUSAL_LINK_HOST_NOT_ALLOWED,
    NULL },
  { "short dotted number", "https://127.1/", REFUSAL_INVALID_LINK, NULL },
  { "space in path", "https://example.org/a b", REFUSAL_INVALID_LINK, NULL },
  { "CRLF in path", "https://example.org/\r\nX-Evil: 1", REFUSAL_INVALID_LINK,
    NULL },
  { "angle brackets", "https://example.org/<script>", REFUSAL_INVALID_LINK,
    NULL },
  { "quote", "https://example.org/\"onmouseover=", REFUSAL_INVALID_LINK, NULL },
  { "backslash host trick", "https://example.org\\.evil.example/",
    REFUSAL_INVALID_LINK, NULL },
  { "RLO in path", "https://example.org/\xe2\x80\xae" "fdp.exe",
    REFUSAL_INVALID_LINK, NULL },
  { "RLO in host", "https://exa\xe2\x80\xaemple.org/", REFUSAL_INVALID_LINK,
    NULL },
  { "zero-width space in host", "https://exa\xe2\x80\x8bmple.org/",
    REFUSAL_INVALID_LINK, NULL },
  { "non-ASCII in path", "https://example.org/m\xc3\xb6te",
    REFUSAL_INVALID_LINK, NULL },
  { "percent-encoded host", "https://ex%61mple.org/", REFUSAL_INVALID_LINK,
    NULL },
  { "bad percent escape", "https://example.org/%zz", REFUSAL_INVALID_LINK,
    NULL },
  { "empty host", "https:///path", REFUSAL_INVALID_LINK, NULL },
  { "no slashes", "https:example.org", REFUSAL_INVALID_LINK, NULL },
  { "scheme-relative", "//example.org/", REFUSAL_INVALID_LINK, NULL },
  { "empty", "", REFUSAL_INVALID_LINK, NULL },
  { "port 0", "https://example.org:0/", REFUSAL_INVALID_LINK, NULL },
  { "port out of range", "https://example.org:99999/", REFUSAL_INVALID_LINK,
    NULL },
  { "trailing dot", "https://example.org./", REFUSAL_INVALID_LINK, NULL },
  { "empty label", "https://.example.org/", REFUSAL_INVALID_LINK, NULL },
  { "underscore in host", "https://ex_ample.example.org/", REFUSAL_INVALID_LINK,
    NULL },
  { "star host", "https://*.example.org/", REFUSAL_INVALID_LINK, NULL },
  { "bad UTF-8", "https://example.org/\xff", REFUSAL_INVALID_LINK, NULL },
  { "tab", "https://example.org/\t", REFUSAL_INVALID_LINK, NULL },
};

static void
check_link_case (const char *name, const char *link, RefusalCode code,
                 const char *normalized)
{
  g_autofree char *out = NULL;
  Refusal why;
  gboolean ok;

  refusal_clear (&why);
  ok = validate_link (link, hosts, &out, &why);
  if (ok != (code == REFUSAL_NONE))
    fail_msg ("link %s: %s (%s)", name, ok ? "accepted" : "refused",
              refusal_code_name (why.code));
  if (!ok && why.code != code)
    fail_msg ("link %s: code %s, expected %s", name,
              refusal_code_name (why.code), refusal_code_name (code));
  if (!ok && strcmp (why.field, "link") != 0)
    fail_msg ("link %s: field '%s'", name, why.field);
  if (ok && strcmp (out, normalized ? normalized : link) != 0)
    fail_msg ("link %s: normalized to '%s'", name, out);
}

static void
test_link_table (void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (link_cases); i++)
    check_link_case (link_cases[i].name, link_cases[i].link,
                     link_cases[i].code, link_cases[i].normalized);
}

static void
test_link_length (void **state)
{
  g_autoptr (GString) link = g_string_new ("https://example.org/");

  (void) state;
  while (link->len < LINK_MAX)
    g_string_append_c (link, 'a');
  check_link_case ("exactly LINK_MAX", link->str, REFUSAL_NONE, NULL);
  g_string_append_c (link, 'a');
  check_link_case ("LINK_MAX + 1", link->str, REFUSAL_INVALID_LINK, NULL);
}

static void
test_link_no_hosts (void **state)
{
  Refusal why;

  (void) state;
  assert_false (validate_link ("https://example.org/", NULL, NULL, &why));
  assert_int_equal (why.code, REFUSAL_LINK_HOST_NOT_ALLOWED);
}

typedef struct {
  const char *name;
  const char *host;
  gboolean allowed;
} HostCase;

static const HostCase host_cases[] = {
  { "exact", "meet.example.com", TRUE },
  { "exact ignoring case", "MEET.Example.com", TRUE },
  { "exact entry not a wildcard", "a.meet.example.com", FALSE },
  { "wildcard one label", "a.example.org", TRUE },
  { "wildcard two labels", "a.b.example.org", TRUE },
  { "wildcard parent itself via exact", "example.org", TRUE },
  { "suffix without dot", "badexample.org", FALSE },
  { "allowed as prefix", "a.example.org.evil.example", FALSE },
  { "other", "example.com", FALSE },
  { "empty", "", FALSE },
};

static void
test_host_allowed_table (void **state)
{
  static const char *const only_wild[] = { "*.example.net", "*.", "*", "",
                                            NULL };

  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (host_cases); i++)
    if (validate_host_allowed (host_cases[i].host, hosts)
        != host_cases[i].allowed)
      fail_msg ("host %s: wrong answer", host_cases[i].name);
  assert_false (validate_host_allowed ("example.net", only_wild));
  assert_true (validate_host_allowed ("x.example.net", only_wild));
  assert_false (validate_host_allowed ("x", only_wild));
  assert_false (validate_host_allowed (".example.net", only_wild));
  assert_false (validate_host_allowed ("x.", only_wild));
  assert_false (validate_host_allowed ("example.org", NULL));
}

/* ---- addresses ----------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *addr;
  RefusalCode code;
  const char *ascii;          /* when accepted; NULL = same */
} AddrCase;

#define L64 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"
#define D63 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"

static const AddrCase addr_cases[] = {
  { "plain", "anna@example.org", 0, NULL },
  { "domain lowercased, local kept", "Anna.Svensson@Example.ORG", 0,
    "Anna.Svensson@example.org" },
  { "plus tag", "a+tag@example.com", 0, NULL },
  { "apostrophe", "o'brien@example.org", 0, NULL },
  { "all atext", "x!#$%&'*+-/=?^_`{|}~@example.org", 0, NULL },
  { "IDN domain", "tolk@räksmörgås.example.org", 0,
    "tolk@xn--rksmrgs-5wao1o.example.org" },
  { "IDN domain upper case", "tolk@RÄKSMÖRGÅS.example.org", 0,
    "tolk@xn--rksmrgs-5wao1o.example.org" },
  { "A-label domain", "a@xn--rksmrgs-5wao1o.example.org", 0, NULL },
  { "sub-domains", "a@sub.domain.example.com", 0, NULL },
  { "digits and hyphen", "a@1-x.example.org", 0, NULL },
  { "local of 64", L64 "@example.org", 0, NULL },
  { "label of 63", "a@" D63 ".example.org", 0, NULL },
  { "empty", "", REFUSAL_INVALID_ADDRESS, NULL },
  { "no @", "anna", REFUSAL_INVALID_ADDRESS, NULL },
  { "no domain", "anna@", REFUSAL_INVALID_ADDRESS, NULL },
  { "no local", "@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "double @", "a@@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "two @", "a@b@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "CRLF injection", "anna@example.org>\r\nRCPT TO:<x@example.org",
    REFUSAL_INVALID_ADDRESS, NULL },
  { "LF at end", "anna@example.org\n", REFUSAL_INVALID_ADDRESS, NULL },
  { "space", "anna @example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "space in domain", "anna@ex ample.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "tab", "a\tb@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "DEL", "anna@example.org\x7f", REFUSAL_INVALID_ADDRESS, NULL },
  { "angle brackets", "<anna@example.org>", REFUSAL_INVALID_ADDRESS, NULL },
  { "display name", "Anna <anna@example.org>", REFUSAL_INVALID_ADDRESS, NULL },
  { "comma list", "a@example.org,b@example.org", REFUSAL_INVALID_ADDRESS,
    NULL },
  { "quoted local", "\"anna\"@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "backslash", "a\\b@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "comment", "a(c)@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "leading dot", ".anna@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "trailing dot", "anna.@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "double dot", "an..na@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "UTF-8 local part", "\xc3\xa5sa@example.org", REFUSAL_ADDRESS_UTF8, NULL },
  { "address literal", "anna@[192.0.2.1]", REFUSAL_INVALID_ADDRESS, NULL },
  { "bare IPv4", "anna@192.0.2.1", REFUSAL_INVALID_ADDRESS, NULL },
  { "numeric TLD", "anna@example.123", REFUSAL_INVALID_ADDRESS, NULL },
  { "one label", "anna@localhost", REFUSAL_INVALID_ADDRESS, NULL },
  { "leading hyphen", "anna@-example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "trailing hyphen", "anna@example-.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "underscore in domain", "anna@exa_mple.org", REFUSAL_INVALID_ADDRESS,
    NULL },
  { "percent in domain", "anna@exa%mple.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "empty label", "anna@example..org", REFUSAL_INVALID_ADDRESS, NULL },
  { "trailing dot domain", "anna@example.org.", REFUSAL_INVALID_ADDRESS, NULL },
  { "local of 65", L64 "m@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "label of 64", "a@" D63 "x.example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "too long in all", L64 "@" D63 "." D63 "." D63 ".example.org",
    REFUSAL_INVALID_ADDRESS, NULL },
  { "RLO in domain", "anna@exa\xe2\x80\xaemple.org", REFUSAL_INVALID_ADDRESS,
    NULL },
  { "ZWSP in domain", "anna@exa\xe2\x80\x8bmple.org", REFUSAL_INVALID_ADDRESS,
    NULL },
  { "bad UTF-8", "anna@example.org\xff", REFUSAL_INVALID_ADDRESS, NULL },
  { "semicolon", "anna;x@example.org", REFUSAL_INVALID_ADDRESS, NULL },
  { "colon", "anna:x@example.org", REFUSAL_INVALID_ADDRESS, NULL },
};

static void
test_address_table (void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (addr_cases); i++)
    {
      const AddrCase *c = &addr_cases[i];
      g_autofree char *out = NULL;
      Refusal why;
      gboolean ok;

      refusal_clear (&why);
      ok = validate_address (c->addr, &out, &why);
      if (ok != (c->code == REFUSAL_NONE))
        fail_msg ("address %s: %s (%s)", c->name, ok ? "accepted" : "refused",
                  refusal_code_name (why.code));
      if (!ok && why.code != c->code)
        fail_msg ("address %s: code %s, expected %s", c->name,
                  refusal_code_name (why.code), refusal_code_name (c->code));
      if (!ok && strcmp (why.field, "bcc") != 0)
        fail_msg ("address %s: field '%s'", c->name, why.field);
      if (ok && strcmp (out, c->ascii ? c->ascii : c->addr) != 0)
        fail_msg ("address %s: became '%s'", c->name, out);
    }
}

/* ---- invite ids ---------------------------------------------------------- */

static void
test_invite_id (void **state)
{
  static const struct { const char *id; gboolean ok; } cases[] = {
    { "0123456789abcdefghij", TRUE },
    { "zzzzzzzzzzzzzzzzzzzz", TRUE },
    { "0123456789abcdefghi", FALSE },
    { "0123456789abcdefghijk", FALSE },
    { "0123456789ABCDEFGHIJ", FALSE },
    { "0123456789abcdefghi-", FALSE },
    { "../../../etc/passwd0", FALSE },
    { "", FALSE },
    { NULL, FALSE },
  };

  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      Refusal why;

      refusal_clear (&why);
      if (validate_invite_id (cases[i].id, &why) != cases[i].ok)
        fail_msg ("id case %zu wrong", i);
      if (!cases[i].ok && (why.code != REFUSAL_INVALID_VALUE
                           || strcmp (why.field, "id") != 0))
        fail_msg ("id case %zu: wrong refusal", i);
    }
}

/* ---- request kinds ------------------------------------------------------- */

static RawRequest *
parse_or_fail (const char *text)
{
  RawRequest *req = NULL;
  Refusal why;

  if (!request_parse (text, strlen (text), &req, &why))
    fail_msg ("test request does not parse: %s", refusal_code_name (why.code));
  return req;
}

typedef struct {
  const char *name;
  const char *text;
  RefusalCode code;
  const char *field;
  RequestKind kind;
} KindCase;

static const KindCase kind_cases[] = {
  { "ping", "request=ping\n\n", 0, NULL, REQUEST_KIND_PING },
  { "status", "request=status\nid=x\n\n", 0, NULL, REQUEST_KIND_STATUS },
  { "send", "request=send\nlink=x\nbcc=y\nidempotency_key=k\n\n", 0, NULL,
    REQUEST_KIND_SEND },
  { "preview", "request=preview\nlink=x\nbcc=y\nlang=en\n\n", 0, NULL,
    REQUEST_KIND_PREVIEW },
  { "empty request", "\n", REFUSAL_MISSING_FIELD, "request", 0 },
  { "no request line", "link=x\n\n", REFUSAL_MISSING_FIELD, "request", 0 },
  { "unknown request", "request=delete\n\n", REFUSAL_UNKNOWN_REQUEST,
    "request", 0 },
  { "empty request value", "request=\n\n", REFUSAL_UNKNOWN_REQUEST, "request",
    0 },
  { "case matters", "request=PING\n\n", REFUSAL_UNKNOWN_REQUEST, "request", 0 },
  { "bcc in ping", "request=ping\nbcc=a@example.org\n\n",
    REFUSAL_UNKNOWN_ATTRIBUTE, "bcc", 0 },
  { "link in status", "request=status\nid=x\nlink=y\n\n",
    REFUSAL_UNKNOWN_ATTRIBUTE, "link", 0 },
  { "id in send", "request=send\nid=x\n\n", REFUSAL_UNKNOWN_ATTRIBUTE, "id",
    0 },
  { "key in preview", "request=preview\nidempotency_key=k\n\n",
    REFUSAL_UNKNOWN_ATTRIBUTE, "idempotency_key", 0 },
};

static void
test_kind_table (void **state)
{
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (kind_cases); i++)
    {
      const KindCase *c = &kind_cases[i];
      g_autoptr (RawRequest) req = parse_or_fail (c->text);
      RequestKind kind = 99;
      Refusal why;
      gboolean ok;

      refusal_clear (&why);
      ok = validate_kind (req, &kind, &why);
      if (ok != (c->code == REFUSAL_NONE))
        fail_msg ("kind %s: %s (%s)", c->name, ok ? "accepted" : "refused",
                  refusal_code_name (why.code));
      if (ok && kind != c->kind)
        fail_msg ("kind %s: wrong kind %d", c->name, kind);
      if (!ok && (why.code != c->code || strcmp (why.field, c->field) != 0))
        fail_msg ("kind %s: %s/%s, expected %s/%s", c->name,
                  refusal_code_name (why.code), why.field,
                  refusal_code_name (c->code), c->field);
    }
}

/* ---- invitations --------------------------------------------------------- */

/* Fake templates: evisit in sv and en, interpreter in sv only. */
static gboolean
fake_have_template (const char *name, const char *lang, gpointer data)
{
  static const char *const have[] = { "evisit/sv", "evisit/en",
                                      "interpreter/sv", NULL };
  g_autofree char *key = g_strdup_printf ("%s/%s", name, lang);

  (*(guint *) data)++;
  return g_strv_contains (have, key);
}

typedef struct {
  guint lookups;
  GDateTime *now;
  ValidateContext ctx;
} Fixture;

static int
fixture_setup (void **state)
{
  Fixture *f = g_new0 (Fixture, 1);

  f->now = g_date_time_new_utc (2026, 6, 1, 12, 0, 0);
  f->ctx.link_hosts = hosts;
  f->ctx.max_recipients = 3;
  f->ctx.default_lang = "sv";
  f->ctx.default_template = "evisit";
  f->ctx.have_template = fake_have_template;
  f->ctx.have_template_data = &f->lookups;
  f->ctx.now = f->now;
  *state = f;
  return 0;
}

static int
fixture_teardown (void **state)
{
  Fixture *f = *state;

  g_date_time_unref (f->now);
  g_free (f);
  return 0;
}

#define BASE "request=send\nlink=https://meet.example.com/r/1\n" \
  "bcc=a@example.org\n"
#define B64 "1234567890123456789012345678901234567890123456789012345678901234"
/* 64 times "å" (2 bytes each). */
#define A8 "\xc3\xa5\xc3\xa5\xc3\xa5\xc3\xa5\xc3\xa5\xc3\xa5\xc3\xa5\xc3\xa5"
#define A64 A8 A8 A8 A8 A8 A8 A8 A8

typedef struct {
  const char *name;
  const char *text;
  RefusalCode code;
  const char *field;
} InvCase;

static const InvCase inv_cases[] = {
  { "minimal send", BASE "\n", 0, NULL },
  { "minimal preview", "request=preview\nlink=https://example.org/\n"
    "bcc=a@example.org\n\n", 0, NULL },
  { "ping is not an invitation", "request=ping\n\n", REFUSAL_UNKNOWN_REQUEST,
    "request" },
  { "missing link", "request=send\nbcc=a@example.org\n\n",
    REFUSAL_MISSING_FIELD, "link" },
  { "empty link", "request=send\nlink=\nbcc=a@example.org\n\n",
    REFUSAL_INVALID_LINK, "link" },
  { "link host not allowed", "request=send\nlink=https://evil.example/\n"
    "bcc=a@example.org\n\n", REFUSAL_LINK_HOST_NOT_ALLOWED, "link" },
  { "no recipients", "request=send\nlink=https://example.org/\n\n",
    REFUSAL_NO_RECIPIENTS, "bcc" },
  { "bad recipient", BASE "bcc=b@example.org\r\n\n", REFUSAL_MALFORMED, NULL },
  { "invalid recipient", BASE "bcc=<b@example.org>\n\n",
    REFUSAL_INVALID_ADDRESS, "bcc" },
  { "UTF-8 recipient", BASE "bcc=\xc3\xa5sa@example.org\n\n",
    REFUSAL_ADDRESS_UTF8, "bcc" },
  { "max recipients", BASE "bcc=b@example.org\nbcc=c@example.org\n\n", 0,
    NULL },
  { "one over max", BASE "bcc=b@example.org\nbcc=c@example.org\n"
    "bcc=d@example.org\n\n", REFUSAL_TOO_MANY_RECIPIENTS, "bcc" },
  { "local part case is kept apart", BASE "bcc=b@example.org\nbcc=c@example.org\n"
    "bcc=A@EXAMPLE.ORG\nbcc=a@Example.Org\n\n", REFUSAL_TOO_MANY_RECIPIENTS,
    "bcc" },
  { "duplicates fit after de-dup", BASE "bcc=b@example.org\n"
    "bcc=a@EXAMPLE.org\nbcc=b@example.ORG\n\n", 0, NULL },
  { "booking", BASE "booking=Bokning 12 åäö\n\n", 0, NULL },
  { "booking of 64 characters", BASE "booking=" B64 "\n\n", 0, NULL },
  { "booking of 65 characters", BASE "booking=" B64 "9\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking of 64 non-ASCII characters", BASE "booking=" A64 "\n\n", 0, NULL },
  { "booking with punctuation", BASE "booking=BK-2026/42 (R&D), avd. 4: kl 10:30;"
    " #7 + 'x'_y.\n\n", 0, NULL },
  { "booking in Arabic", BASE "booking=\xd8\xad\xd8\xac\xd8\xb2 12\n\n", 0, NULL },
  /* Issue 9 point 5: a link slipped past the allow-list through free text. */
  { "booking with https link", BASE "booking=Cancelled - rebook at "
    "https://evil.example.com/login\n\n", REFUSAL_INVALID_VALUE, "booking" },
  { "booking with scheme only", BASE "booking=see https:evil\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with www", BASE "booking=rebook at www.evil\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with WWW", BASE "booking=WWW.EVIL\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with domain", BASE "booking=rebook at evil.example\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with IDN domain", BASE "booking=r\xc3\xa4kna.se\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with ideographic dot", BASE "booking=evil\xe3\x80\x82" "com\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with fullwidth dot", BASE "booking=evil\xef\xbc\x8e" "com\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with IP address", BASE "booking=10.0.0.1\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with address", BASE "booking=mail x@example.com\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with fullwidth at", BASE "booking=x\xef\xbc\xa0" "example\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with mailto", BASE "booking=mailto:x\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with protocol-relative", BASE "booking=go //evil\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with markup", BASE "booking=<b>x</b>\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with encoded word", BASE "booking==?utf-8?q?x?=\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with leading space", BASE "booking= BK-1\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with two spaces", BASE "booking=BK  1\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with tab", BASE "booking=BK\t1\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "unit", BASE "unit=Vårdcentralen Åby, avd. 4\n\n", 0, NULL },
  { "unit of 101 characters", BASE "unit=" B64 "1234567890123456789012345678901234567\n\n",
    REFUSAL_INVALID_VALUE, "unit" },
  { "unit with link", BASE "unit=Klinik https://evil.example.com/login\n\n",
    REFUSAL_INVALID_VALUE, "unit" },
  { "unit with domain", BASE "unit=evil.example.com\n\n",
    REFUSAL_INVALID_VALUE, "unit" },
  { "unit with address", BASE "unit=klinik@example.org\n\n",
    REFUSAL_INVALID_VALUE, "unit" },
  { "unit with RLO", BASE "unit=abc\xe2\x80\xae" "def\n\n",
    REFUSAL_INVALID_VALUE, "unit" },
  { "empty unit", BASE "unit=\n\n", REFUSAL_INVALID_VALUE, "unit" },
  { "empty booking", BASE "booking=\n\n", REFUSAL_INVALID_VALUE, "booking" },
  { "booking with RLO", BASE "booking=abc\xe2\x80\xae" "def\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with isolate", BASE "booking=abc\xe2\x81\xa6" "def\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with ZWSP", BASE "booking=abc\xe2\x80\x8b\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with BOM", BASE "booking=\xef\xbb\xbf" "abc\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "booking with line separator", BASE "booking=a\xe2\x80\xa8" "b\n\n",
    REFUSAL_INVALID_VALUE, "booking" },
  { "staff", BASE "staff=SE2321000032-abc1\n\n", 0, NULL },
  { "staff with space", BASE "staff=a b\n\n", REFUSAL_INVALID_VALUE, "staff" },
  { "empty staff", BASE "staff=\n\n", REFUSAL_INVALID_VALUE, "staff" },
  { "staff of 65", BASE "staff=" L64 "m\n\n", REFUSAL_INVALID_VALUE, "staff" },
  { "lang en", BASE "lang=en\n\n", 0, NULL },
  { "lang without templates", BASE "lang=de\n\n", REFUSAL_UNKNOWN_LANG,
    "lang" },
  { "lang upper case", BASE "lang=EN\n\n", REFUSAL_INVALID_VALUE, "lang" },
  { "lang too long", BASE "lang=english\n\n", REFUSAL_INVALID_VALUE, "lang" },
  { "lang path", BASE "lang=../\n\n", REFUSAL_INVALID_VALUE, "lang" },
  { "template in default lang", BASE "template=interpreter\n\n", 0, NULL },
  { "template not in lang", BASE "template=interpreter\nlang=en\n\n",
    REFUSAL_UNKNOWN_LANG, "lang" },
  { "unknown template", BASE "template=nope\n\n", REFUSAL_UNKNOWN_TEMPLATE,
    "template" },
  { "unknown template and lang", BASE "template=nope\nlang=de\n\n",
    REFUSAL_UNKNOWN_TEMPLATE, "template" },
  { "notice is not a template", BASE "template=privacy-notice\n\n",
    REFUSAL_UNKNOWN_TEMPLATE, "template" },
  { "template path", BASE "template=../etc\n\n", REFUSAL_INVALID_VALUE,
    "template" },
  { "template leading hyphen", BASE "template=-x\n\n", REFUSAL_INVALID_VALUE,
    "template" },
  { "template of 65", BASE "template=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm\n\n",
    REFUSAL_INVALID_VALUE, "template" },
  { "meeting time with offset", BASE "meeting_time=2030-01-01T10:00:00+01:00\n\n",
    0, NULL },
  { "meeting time Z no seconds", BASE "meeting_time=2030-01-01T10:00Z\n\n", 0,
    NULL },
  { "meeting time fraction", BASE "meeting_time=2030-01-01T10:00:00.5-05:00\n\n",
    0, NULL },
  { "meeting time no offset", BASE "meeting_time=2030-01-01T10:00:00\n\n",
    REFUSAL_INVALID_MEETING_TIME, "meeting_time" },
  { "meeting time space", BASE "meeting_time=2030-01-01 10:00:00Z\n\n",
    REFUSAL_INVALID_MEETING_TIME, "meeting_time" },
  { "meeting time lower case", BASE "meeting_time=2030-01-01t10:00:00z\n\n",
    REFUSAL_INVALID_MEETING_TIME, "meeting_time" },
  { "meeting time offset no colon",
    BASE "meeting_time=2030-01-01T10:00:00+0100\n\n",
    REFUSAL_INVALID_MEETING_TIME, "meeting_time" },
  { "meeting time Feb 30", BASE "meeting_time=2030-02-30T10:00:00Z\n\n",
    REFUSAL_INVALID_MEETING_TIME, "meeting_time" },
  { "meeting time hour 24", BASE "meeting_time=2030-01-01T24:00:00Z\n\n",
    REFUSAL_INVALID_MEETING_TIME, "meeting_time" },
  { "meeting time 10 digit fraction",
    BASE "meeting_time=2030-01-01T10:00:00.1234567890Z\n\n",
    REFUSAL_INVALID_MEETING_TIME, "meeting_time" },
  { "meeting time words", BASE "meeting_time=tomorrow\n\n",
    REFUSAL_INVALID_MEETING_TIME, "meeting_time" },
  { "meeting time trailing", BASE "meeting_time=2030-01-01T10:00:00Zx\n\n",
    REFUSAL_INVALID_MEETING_TIME, "meeting_time" },
  { "meeting passed", BASE "meeting_time=2020-01-01T10:00:00Z\n\n",
    REFUSAL_MEETING_PASSED, "meeting_time" },
  { "meeting exactly now", BASE "meeting_time=2026-06-01T14:00:00+02:00\n\n",
    REFUSAL_MEETING_PASSED, "meeting_time" },
  { "meeting one second ahead", BASE "meeting_time=2026-06-01T12:00:01Z\n\n",
    0, NULL },
  { "idempotency key", BASE "idempotency_key=abc-123:x.y_Z\n\n", 0, NULL },
  { "idempotency key space", BASE "idempotency_key=a b\n\n",
    REFUSAL_INVALID_VALUE, "idempotency_key" },
  { "idempotency key in preview", "request=preview\n"
    "link=https://example.org/\nbcc=a@example.org\nidempotency_key=k\n\n",
    REFUSAL_UNKNOWN_ATTRIBUTE, "idempotency_key" },
};

static void
test_invitation_table (void **state)
{
  Fixture *f = *state;

  for (gsize i = 0; i < G_N_ELEMENTS (inv_cases); i++)
    {
      const InvCase *c = &inv_cases[i];
      g_autoptr (RawRequest) req = NULL;
      g_autoptr (Invitation) inv = NULL;
      Refusal why;
      gboolean ok;

      refusal_clear (&why);
      ok = request_parse (c->text, strlen (c->text), &req, &why)
        && validate_invitation (req, &f->ctx, &inv, &why);
      if (ok != (c->code == REFUSAL_NONE))
        fail_msg ("invitation %s: %s (%s/%s)", c->name,
                  ok ? "accepted" : "refused", refusal_code_name (why.code),
                  why.field);
      if (!ok && (why.code != c->code
                  || strcmp (why.field, c->field ? c->field : "") != 0))
        fail_msg ("invitation %s: %s/%s, expected %s/%s", c->name,
                  refusal_code_name (why.code), why.field,
                  refusal_code_name (c->code), c->field ? c->field : "");
      if (!ok && inv != NULL)
        fail_msg ("invitation %s: refused but built", c->name);
    }
}

static Invitation *
build (Fixture *f, const char *text)
{
  g_autoptr (RawRequest) req = parse_or_fail (text);
  Invitation *inv = NULL;
  Refusal why;

  if (!validate_invitation (req, &f->ctx, &inv, &why))
    fail_msg ("refused: %s/%s", refusal_code_name (why.code), why.field);
  return inv;
}

static void
test_invitation_accessors (void **state)
{
  Fixture *f = *state;
  g_autoptr (Invitation) inv = build (f,
    "request=send\nlink=HTTPS://Meet.Example.COM/r/1?p=2\n"
    "bcc=B@Example.ORG\nbcc=a@räksmörgås.example.org\nbcc=B@example.org\n"
    "bcc=b@example.org\nbooking=Bokning 7\nstaff=hsa-42\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00+01:00\n"
    "idempotency_key=k-1\nunit=Vårdcentralen Åby\n\n");

  assert_string_equal (invitation_unit (inv), "Vårdcentralen Åby");
  assert_string_equal (invitation_link (inv),
                       "https://meet.example.com/r/1?p=2");
  assert_string_equal (invitation_link_host (inv), "meet.example.com");
  assert_int_equal (invitation_n_recipients (inv), 3);
  assert_string_equal (invitation_recipient (inv, 0), "B@example.org");
  assert_string_equal (invitation_recipient (inv, 1),
                       "a@xn--rksmrgs-5wao1o.example.org");
  assert_string_equal (invitation_recipient (inv, 2), "b@example.org");
  assert_string_equal (invitation_booking (inv), "Bokning 7");
  assert_string_equal (invitation_staff (inv), "hsa-42");
  assert_string_equal (invitation_lang (inv), "en");
  assert_string_equal (invitation_template (inv), "evisit");
  assert_int_equal (g_date_time_to_unix (invitation_meeting_time (inv)),
                    1893488400);
  assert_string_equal (invitation_idempotency_key (inv), "k-1");
}

static void
test_invitation_defaults (void **state)
{
  Fixture *f = *state;
  g_autoptr (Invitation) inv = build (f, BASE "\n");

  assert_string_equal (invitation_lang (inv), "sv");
  assert_string_equal (invitation_template (inv), "evisit");
  assert_null (invitation_booking (inv));
  assert_null (invitation_staff (inv));
  assert_null (invitation_meeting_time (inv));
  assert_null (invitation_idempotency_key (inv));
  assert_null (invitation_unit (inv));
  assert_true (f->lookups > 0);
}

/* A flood of bcc lines is refused on the count alone, before any address
 * is checked (a bad address among them is not reported). */
static void
test_invitation_hard_max (void **state)
{
  Fixture *f = *state;
  g_autoptr (GString) text = g_string_new ("request=send\n");
  g_autoptr (RawRequest) req = NULL;
  g_autoptr (Invitation) inv = NULL;
  Refusal why;

  g_string_append (text, "bcc=not an address\n");
  for (guint i = 0; i < RECIPIENTS_HARD_MAX; i++)
    g_string_append (text, "bcc=a@example.org\n");
  g_string_append (text, "\n");
  req = parse_or_fail (text->str);
  assert_false (validate_invitation (req, &f->ctx, &inv, &why));
  assert_int_equal (why.code, REFUSAL_TOO_MANY_RECIPIENTS);
  assert_null (inv);
}

/* ---- fingerprints -------------------------------------------------------- */

#define FULL "request=send\nlink=https://example.org/m\n" \
  "bcc=a@example.org\nbcc=b@example.org\nbooking=B1\nstaff=s1\nlang=en\n" \
  "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\nidempotency_key=k1\n\n"

static char *
fingerprint_of (Fixture *f, const char *text)
{
  g_autoptr (Invitation) inv = build (f, text);

  return invitation_fingerprint (inv);
}

static const struct {
  const char *name;
  const char *text;
} fp_changed[] = {
  { "link", "request=send\nlink=https://example.org/n\n"
    "bcc=a@example.org\nbcc=b@example.org\nbooking=B1\nstaff=s1\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\n\n" },
  { "recipient order", "request=send\nlink=https://example.org/m\n"
    "bcc=b@example.org\nbcc=a@example.org\nbooking=B1\nstaff=s1\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\n\n" },
  { "one recipient less", "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbooking=B1\nstaff=s1\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\n\n" },
  { "booking", "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbcc=b@example.org\nbooking=B2\nstaff=s1\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\n\n" },
  { "no booking", "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbcc=b@example.org\nstaff=s1\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\n\n" },
  { "staff", "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbcc=b@example.org\nbooking=B1\nstaff=s2\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\n\n" },
  { "lang", "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbcc=b@example.org\nbooking=B1\nstaff=s1\nlang=sv\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\n\n" },
  { "template", "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbcc=b@example.org\nbooking=B1\nstaff=s1\nlang=sv\n"
    "template=interpreter\nmeeting_time=2030-01-01T10:00:00Z\n\n" },
  { "meeting time", "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbcc=b@example.org\nbooking=B1\nstaff=s1\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:01Z\n\n" },
  { "unit", "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbcc=b@example.org\nbooking=B1\nstaff=s1\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\nunit=Avd 4\n\n" },
  { "field boundary", "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbcc=b@example.org\nbooking=B1s\nstaff=1\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T10:00:00Z\n\n" },
};

static void
test_fingerprint (void **state)
{
  Fixture *f = *state;
  g_autofree char *base = fingerprint_of (f, FULL);
  g_autofree char *again = fingerprint_of (f, FULL);
  g_autofree char *other_key = NULL;
  g_autofree char *same_time = NULL;

  assert_int_equal (strlen (base), 64);
  assert_int_equal (strspn (base, "0123456789abcdef"), 64);
  assert_string_equal (base, again);
  /* The key is what the fingerprint is stored under, not part of it;
   * the same instant in another offset is the same meeting. */
  other_key = fingerprint_of (f, "request=send\nlink=https://example.org/m\n"
    "bcc=a@example.org\nbcc=b@example.org\nbooking=B1\nstaff=s1\nlang=en\n"
    "template=evisit\nmeeting_time=2030-01-01T11:00:00+01:00\n"
    "idempotency_key=k2\n\n");
  assert_string_equal (base, other_key);
  same_time = fingerprint_of (f, "request=preview\nlink=https://EXAMPLE.org/m\n"
    "bcc=a@example.org\nbcc=b@EXAMPLE.org\nbcc=a@example.org\nbooking=B1\n"
    "staff=s1\nlang=en\ntemplate=evisit\nmeeting_time=2030-01-01T10:00Z\n\n");
  assert_string_equal (base, same_time);
  for (gsize i = 0; i < G_N_ELEMENTS (fp_changed); i++)
    {
      g_autofree char *fp = fingerprint_of (f, fp_changed[i].text);

      if (strcmp (fp, base) == 0)
        fail_msg ("fingerprint blind to %s", fp_changed[i].name);
    }
}

/* ---- fuzz-ish ------------------------------------------------------------ */

static char *
fuzz_string (GRand *rng, const char *prefix)
{
  static const char alphabet[] = "abcXYZ019.-_@@@:/%?#[]<>\"\\ \r\n\t"
    "\xc3\xa5\xd0\xb5\xe2\x80\xae\xff";
  gsize len = g_rand_int_range (rng, 0, 120);
  GString *s = g_string_new (g_rand_boolean (rng) ? prefix : "");

  for (gsize i = 0; i < len; i++)
    {
      char c = g_rand_int_range (rng, 0, 5) == 0
        ? (char) g_rand_int_range (rng, 1, 256)
        : alphabet[g_rand_int_range (rng, 0, sizeof alphabet - 1)];

      g_string_append_c (s, c);
    }
  return g_string_free (s, FALSE);
}

static void
test_fuzz_pieces (void **state)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (4242);
  guint links_ok = 0, addrs_ok = 0;

  (void) state;
  for (guint i = 0; i < 10000; i++)
    {
      g_autofree char *link = fuzz_string (rng, "https://a.example.org/");
      g_autofree char *addr = fuzz_string (rng, "a@example.org");
      g_autofree char *norm = NULL;
      g_autofree char *ascii = NULL;
      Refusal why;

      if (validate_link (link, hosts, &norm, &why))
        {
          links_ok++;
          /* Whatever is accepted is accepted again, unchanged. */
          g_autofree char *again = NULL;
          assert_true (validate_link (norm, hosts, &again, &why));
          assert_string_equal (norm, again);
        }
      if (validate_address (addr, &ascii, &why))
        {
          addrs_ok++;
          assert_null (strpbrk (ascii, " <>\r\n\t\""));
        }
      (void) validate_invite_id (addr, &why);
    }
  assert_true (links_ok > 0);
  assert_true (addrs_ok > 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_link_table),
    cmocka_unit_test (test_link_length),
    cmocka_unit_test (test_link_no_hosts),
    cmocka_unit_test (test_host_allowed_table),
    cmocka_unit_test (test_address_table),
    cmocka_unit_test (test_invite_id),
    cmocka_unit_test (test_kind_table),
    cmocka_unit_test_setup_teardown (test_invitation_table, fixture_setup,
                                     fixture_teardown),
    cmocka_unit_test_setup_teardown (test_invitation_accessors, fixture_setup,
                                     fixture_teardown),
    cmocka_unit_test_setup_teardown (test_invitation_defaults, fixture_setup,
                                     fixture_teardown),
    cmocka_unit_test_setup_teardown (test_invitation_hard_max, fixture_setup,
                                     fixture_teardown),
    cmocka_unit_test_setup_teardown (test_fingerprint, fixture_setup,
                                     fixture_teardown),
    cmocka_unit_test (test_fuzz_pieces),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
