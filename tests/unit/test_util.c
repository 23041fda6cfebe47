/*
 * test_util.c - the rules several modules share, each written once:
 * the retry policy from the configuration, the envelope address check,
 * SHA-256 in hex, writing a whole buffer and replacing a file durably.
 * Table-driven: one row per case, the row's index in every failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "digest.h"
#include "envelope.h"
#include "fileio.h"
#include "names.h"
#include "token.h"
#include "testutil.h"
#include "retry.h"

/* ---- the retry policy from [retry] ---- */

static void
test_retry_policy_from_config (void **state)
{
  static const struct { guint first, max, age; gint64 delay3; } cases[] = {
    { 60, 900, 86400, 240 },
    { 1, 1, 1, 1 },
    { 30, 60, 3600, 60 },
    { 600, 7200, 604800, 2400 },
  };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (Config) cfg = config_defaults ();
      RetryPolicy p;

      cfg->retry_first_delay = cases[i].first;
      cfg->retry_max_delay = cases[i].max;
      cfg->retry_max_age = cases[i].age;
      p = retry_policy_from_config (cfg);
      if (p.first_delay != cases[i].first || p.max_delay != cases[i].max
          || p.max_age != cases[i].age || retry_delay (&p, 3) != cases[i].delay3)
        fail_msg ("case %zu: policy %u/%u/%u, third delay %" G_GINT64_FORMAT,
                  i, p.first_delay, p.max_delay, p.max_age, retry_delay (&p, 3));
    }
}

/* ---- what may go verbatim into an SMTP command ---- */

static void
test_envelope_safe (void **state)
{
  char at_max[ADDRESS_MAX + 1], over_max[ADDRESS_MAX + 2];
  static const struct {
    const char *s;
    gboolean mailbox, reverse, word;
  } cases[] = {
    { "anna@example.org", TRUE, TRUE, TRUE },
    { "a+tok3n@example.com", TRUE, TRUE, TRUE },
    { "\"a@b\"@example.org", TRUE, TRUE, TRUE },   /* last '@' splits */
    { "", FALSE, TRUE, FALSE },                    /* the null sender */
    { "relay.example.org", FALSE, FALSE, TRUE },   /* a host, no '@' */
    { "@example.org", FALSE, FALSE, TRUE },
    { "anna@", FALSE, FALSE, TRUE },
    { "@", FALSE, FALSE, TRUE },
    { "anna@example.org>\r\nDATA", FALSE, FALSE, FALSE },
    { "anna@example.org\r\nRSET", FALSE, FALSE, FALSE },
    { "anna@example.org\n", FALSE, FALSE, FALSE },
    { "an na@example.org", FALSE, FALSE, FALSE },
    { "<anna@example.org", FALSE, FALSE, FALSE },
    { "anna@example.org>", FALSE, FALSE, FALSE },
    { "anna\t@example.org", FALSE, FALSE, FALSE },
    { "anna\x7f@example.org", FALSE, FALSE, FALSE },
    { "ann\xc3\xa4@example.org", FALSE, FALSE, FALSE },  /* UTF-8: not on the wire */
    { "anna@ex\xe4mple.org", FALSE, FALSE, FALSE },
  };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gboolean m = envelope_safe (cases[i].s, ENVELOPE_MAILBOX);
      gboolean r = envelope_safe (cases[i].s, ENVELOPE_REVERSE_PATH);
      gboolean w = envelope_safe (cases[i].s, ENVELOPE_WORD);
      if (m != cases[i].mailbox || r != cases[i].reverse || w != cases[i].word)
        fail_msg ("case %zu (%s): mailbox %d reverse %d word %d", i,
                  cases[i].s, m, r, w);
    }
  assert_false (envelope_safe (NULL, ENVELOPE_MAILBOX));
  assert_false (envelope_safe (NULL, ENVELOPE_REVERSE_PATH));
  assert_false (envelope_safe (NULL, ENVELOPE_WORD));
  /* The length limit: ADDRESS_MAX bytes pass, one more does not. */
  memset (at_max, 'a', ADDRESS_MAX);
  memcpy (at_max + ADDRESS_MAX - 12, "@example.org", 12);
  at_max[ADDRESS_MAX] = '\0';
  assert_true (envelope_safe (at_max, ENVELOPE_MAILBOX));
  memset (over_max, 'a', ADDRESS_MAX + 1);
  memcpy (over_max + ADDRESS_MAX + 1 - 12, "@example.org", 12);
  over_max[ADDRESS_MAX + 1] = '\0';
  assert_false (envelope_safe (over_max, ENVELOPE_MAILBOX));
  assert_false (envelope_safe (over_max, ENVELOPE_WORD));
}

/* ---- one mailbox ---- */

static void
test_same_address (void **state)
{
  static const struct { const char *a, *b; gboolean same; const char *normal_a; } cases[] = {
    { "anna@example.org", "anna@example.org", TRUE, "anna@example.org" },
    { "anna@example.org", "anna@EXAMPLE.Org", TRUE, "anna@example.org" },
    { "Anna@example.org", "anna@example.org", FALSE, "Anna@example.org" },  /* local part as written */
    { "anna@xn--exmple-cua.se", "anna@ex\xc3\xa4mple.se", TRUE, "anna@xn--exmple-cua.se" },
    { "anna@EX\xc3\x84MPLE.se", "anna@xn--exmple-cua.se", TRUE, "anna@xn--exmple-cua.se" },
    { "anna@example.org", "anna@example.com", FALSE, "anna@example.org" },
    { "a@b@example.org", "a@b@EXAMPLE.org", TRUE, "a@b@example.org" },    /* the last '@' */
    { "no-at", "no-at", TRUE, "no-at" },
    { "no-at", "NO-AT", FALSE, "no-at" },
  };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *n = envelope_address_normal (cases[i].a);
      if (envelope_same_address (cases[i].a, cases[i].b) != cases[i].same
          || envelope_same_address (cases[i].b, cases[i].a) != cases[i].same)
        fail_msg ("case %zu: %s ~ %s", i, cases[i].a, cases[i].b);
      if (strcmp (n, cases[i].normal_a) != 0)
        fail_msg ("case %zu: normal %s", i, n);
    }
  assert_false (envelope_same_address (NULL, "anna@example.org"));
  assert_false (envelope_same_address ("anna@example.org", NULL));
}

/* ---- SHA-256 in hex ---- */

static void
test_sha256_hex (void **state)
{
  /* FIPS 180-2 vectors and the empty input (the queue's tombstones). */
  static const struct { const char *in; const char *hex; } cases[] = {
    { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
  };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char out[SHA256_HEX_SIZE];
      g_autofree char *upper = g_ascii_strup (cases[i].hex, -1);
      gsize n = strlen (cases[i].in);

      memset (out, 'x', sizeof out);
      sha256_hex (cases[i].in, n, out);
      if (strcmp (out, cases[i].hex) != 0)
        fail_msg ("case %zu: %s", i, out);
      assert_int_equal (strlen (out), SHA256_HEX_LEN);
      assert_true (sha256_hex_matches (cases[i].in, n, cases[i].hex));
      assert_true (sha256_hex_matches (cases[i].in, n, upper));
      assert_false (sha256_hex_matches (cases[i].in, n, NULL));
      assert_false (sha256_hex_matches (cases[i].in, n, ""));
      assert_false (sha256_hex_matches ("other", 5, cases[i].hex));
    }
}

static void
test_hex_encode (void **state)
{
  static const struct { guint8 in[4]; gsize n; const char *hex; } cases[] = {
    { { 0 }, 0, "" },
    { { 0x00 }, 1, "00" },
    { { 0xff, 0x0f, 0xf0, 0xa5 }, 4, "ff0ff0a5" },
    { { 0x01, 0x23, 0x45 }, 3, "012345" },
  };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      char out[9];
      memset (out, 'x', sizeof out);
      hex_encode (cases[i].in, cases[i].n, out);
      if (strcmp (out, cases[i].hex) != 0)
        fail_msg ("case %zu: %s", i, out);
    }
}

/* ---- the language tag and the template name ---- */

static void
test_names (void **state)
{
  static const struct { const char *s; gboolean lang, tmpl; } cases[] = {
    { "sv", TRUE, TRUE }, { "en", TRUE, TRUE }, { "fil", TRUE, TRUE },
    { "s", FALSE, TRUE }, { "svse", FALSE, TRUE }, { "", FALSE, FALSE },
    { "SV", FALSE, FALSE }, { "sv-SE", FALSE, FALSE }, { "s1", FALSE, TRUE },
    { "evisit", FALSE, TRUE }, { "e-visit_2", FALSE, TRUE }, { "2fa", FALSE, TRUE },
    { "_x", FALSE, FALSE }, { "-x", FALSE, FALSE }, { "a.b", FALSE, FALSE },
    { "../x", FALSE, FALSE }, { "a/b", FALSE, FALSE }, { "sv\n", FALSE, FALSE },
    { "s\xc3\xa5", FALSE, FALSE }, { "e visit", FALSE, FALSE },
  };
  char name[TEMPLATE_NAME_MAX + 2];

  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      gboolean l = lang_tag_ok (cases[i].s, -1);
      gboolean t = template_name_ok (cases[i].s, -1);
      if (l != cases[i].lang || t != cases[i].tmpl)
        fail_msg ("case %zu (%s): lang %d template %d", i, cases[i].s, l, t);
    }
  assert_false (lang_tag_ok (NULL, -1));
  assert_false (template_name_ok (NULL, -1));
  /* A length inside a longer string: the part of a file name. */
  assert_true (lang_tag_ok ("sv.xhtml", 2));
  assert_false (lang_tag_ok ("sv.xhtml", 3));
  assert_true (template_name_ok ("evisit.sv.xhtml", 6));
  assert_false (template_name_ok ("evisit.sv.xhtml", 9));
  memset (name, 'a', sizeof name);
  assert_true (template_name_ok (name, TEMPLATE_NAME_MAX));
  assert_false (template_name_ok (name, TEMPLATE_NAME_MAX + 1));
}

/* ---- random base-32 names ---- */

static void
test_token_random (void **state)
{
  static const gsize sizes[] = { 0, 1, 11, 26, 64, 65, 200, 2000 };
  static const struct { guint64 v; char digit; } digits[] = {
    { 0, '0' }, { 9, '9' }, { 10, 'a' }, { 31, 'v' }, { 32, '0' }, { 33, '1' },
    { G_MAXUINT64, 'v' },
  };
  guint seen[32] = { 0 };

  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (digits); i++)
    if (token_digit (digits[i].v) != digits[i].digit)
      fail_msg ("digit case %zu: %c", i, token_digit (digits[i].v));
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autofree char *a = g_malloc (sizes[i] + 2);
      g_autofree char *b = g_malloc (sizes[i] + 2);

      a[sizes[i] + 1] = b[sizes[i] + 1] = 'X';   /* not written past n + 1 */
      assert_true (token_random (a, sizes[i]));
      assert_true (token_random (b, sizes[i]));
      assert_int_equal (strlen (a), sizes[i]);
      assert_int_equal (a[sizes[i] + 1], 'X');
      for (gsize k = 0; k < sizes[i]; k++)
        {
          if (!g_ascii_isdigit (a[k]) && !(a[k] >= 'a' && a[k] <= 'v'))
            fail_msg ("size %zu: '%c' outside [0-9a-v]", sizes[i], a[k]);
          seen[g_ascii_isdigit (a[k]) ? a[k] - '0' : a[k] - 'a' + 10]++;
        }
      if (sizes[i] >= 11)
        assert_string_not_equal (a, b);   /* 55 bits: never twice */
    }
  /* 2367 digits drawn: every one of the 32 shows up (a 5-bit mask, not
   * a modulo over a narrower range). */
  for (guint d = 0; d < 32; d++)
    if (seen[d] == 0)
      fail_msg ("digit %u never drawn", d);
}

/* ---- whole writes ---- */

static void
test_write_all (void **state)
{
  static const gsize sizes[] = { 0, 1, 4096, 200000 };   /* past a pipe's buffer */
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autofree char *dir = g_dir_make_tmp ("imutil-XXXXXX", NULL);
      g_autofree char *path = g_build_filename (dir, "f", NULL);
      g_autofree char *buf = g_malloc (sizes[i] + 1);
      g_autofree char *got = NULL;
      gsize len = 0;
      int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, 0600);

      memset (buf, 'a' + (int) i, sizes[i]);
      assert_true (fd >= 0);
      if (!fileio_write_all (fd, buf, sizes[i]))
        fail_msg ("case %zu: %s", i, g_strerror (errno));
      close (fd);
      assert_true (g_file_get_contents (path, &got, &len, NULL));
      assert_int_equal (len, sizes[i]);
      assert_memory_equal (got, buf, sizes[i]);
      testutil_rm_rf (dir);
    }
  /* A closed descriptor: FALSE, not a crash. */
  assert_false (fileio_write_all (-1, "x", 1));
}

/* A peer that went away: EPIPE, and no SIGPIPE kills the test. */
static void
test_send_all_peer_gone (void **state)
{
  int sv[2];
  char big[65536] = { 0 };

  (void) state;
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_true (fileio_send_all (sv[0], "ping\n", 5));
  close (sv[1]);
  errno = 0;
  assert_false (fileio_send_all (sv[0], big, sizeof big));
  assert_int_equal (errno, EPIPE);
  close (sv[0]);
}

/* ---- durable replace ---- */

static void
test_replace_at (void **state)
{
  static const struct {
    const char *before;    /* NULL: no file yet */
    const char *tmp_name;  /* NULL: a random one */
    gboolean leftover;     /* a crash left tmp_name behind */
    mode_t mode;
  } cases[] = {
    { NULL, NULL, FALSE, 0640 },
    { "old bytes, longer than the new", NULL, FALSE, 0640 },
    { NULL, "key.new", FALSE, 0600 },
    { "old key", "key.new", TRUE, 0600 },
    { "", NULL, FALSE, 0644 },
  };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *dir = g_dir_make_tmp ("imutil-XXXXXX", NULL);
      g_autofree char *path = g_build_filename (dir, "key", NULL);
      g_autofree char *got = NULL;
      g_autoptr (GDir) d = NULL;
      struct stat st;
      mode_t old_mask = umask (077);   /* the mode is the caller's, not the umask's */
      int dfd = open (dir, O_RDONLY | O_DIRECTORY);
      guint entries = 0;

      if (cases[i].before != NULL)
        assert_true (g_file_set_contents (path, cases[i].before, -1, NULL));
      if (cases[i].leftover)
        {
          g_autofree char *t = g_build_filename (dir, cases[i].tmp_name, NULL);
          assert_true (g_file_set_contents (t, "stale", -1, NULL));
        }
      if (!fileio_replace_at (dfd, "key", cases[i].tmp_name, "new", 3, cases[i].mode))
        fail_msg ("case %zu: %s", i, g_strerror (errno));
      umask (old_mask);
      assert_true (g_file_get_contents (path, &got, NULL, NULL));
      assert_string_equal (got, "new");
      assert_int_equal (stat (path, &st), 0);
      if ((st.st_mode & 07777) != cases[i].mode)
        fail_msg ("case %zu: mode %o", i, st.st_mode & 07777);
      d = g_dir_open (dir, 0, NULL);
      while (g_dir_read_name (d) != NULL)
        entries++;
      if (entries != 1)
        fail_msg ("case %zu: %u names in the folder, want only the file", i, entries);
      close (dfd);
      testutil_rm_rf (dir);
    }
}

/* A failed rename (the name is a folder) leaves no temporary file. */
static void
test_replace_at_failure_leaves_nothing (void **state)
{
  static const char *const tmp_names[] = { NULL, "x.new" };
  (void) state;
  for (gsize i = 0; i < G_N_ELEMENTS (tmp_names); i++)
    {
      g_autofree char *dir = g_dir_make_tmp ("imutil-XXXXXX", NULL);
      g_autofree char *sub = g_build_filename (dir, "taken", NULL);
      g_autofree char *inner = g_build_filename (sub, "keep", NULL);
      g_autoptr (GDir) d = NULL;
      int dfd = open (dir, O_RDONLY | O_DIRECTORY);
      guint entries = 0;

      assert_int_equal (mkdir (sub, 0700), 0);
      assert_true (g_file_set_contents (inner, "x", -1, NULL));
      assert_false (fileio_replace_at (dfd, "taken", tmp_names[i], "new", 3, 0600));
      assert_true (errno != 0);
      d = g_dir_open (dir, 0, NULL);
      while (g_dir_read_name (d) != NULL)
        entries++;
      if (entries != 1)
        fail_msg ("case %zu: %u names left", i, entries);
      close (dfd);
      testutil_rm_rf (dir);
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_retry_policy_from_config),
    cmocka_unit_test (test_envelope_safe),
    cmocka_unit_test (test_same_address),
    cmocka_unit_test (test_sha256_hex),
    cmocka_unit_test (test_hex_encode),
    cmocka_unit_test (test_names),
    cmocka_unit_test (test_token_random),
    cmocka_unit_test (test_write_all),
    cmocka_unit_test (test_send_all_peer_gone),
    cmocka_unit_test (test_replace_at),
    cmocka_unit_test (test_replace_at_failure_leaves_nothing),
  };

  return cmocka_run_group_tests (tests, NULL, NULL);
}
