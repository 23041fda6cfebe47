/* test_config.c - configuration loading: defaults, paths, refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_keys.h"

typedef struct {
  char *dir;
} Fixture;

static int
setup (void **state)
{
  Fixture *f = g_new0 (Fixture, 1);

  f->dir = g_dir_make_tmp ("imcfg-XXXXXX", NULL);
  assert_non_null (f->dir);
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  Fixture *f = *state;

  testutil_rm_rf (f->dir);
  g_free (f->dir);
  g_free (f);
  return 0;
}

/* Writes text to DIR/invitemail.conf and loads it. */
static Config *
load_text (Fixture *f, const char *text, GError **error)
{
  g_autofree char *path = g_build_filename (f->dir, "invitemail.conf", NULL);

  assert_true (g_file_set_contents (path, text, -1, NULL));
  return config_load (path, error);
}

static void
test_defaults (void **state)
{
  g_autoptr (Config) cfg = config_defaults ();

  (void) state;
  assert_string_equal (cfg->socket, "/run/invitemail/invitemail.sock");
  assert_int_equal (cfg->socket_mode, 0660);
  assert_int_equal (cfg->transport, TRANSPORT_FILE);
  assert_int_equal (cfg->smtp_tls, TLS_STARTTLS);
  assert_int_equal (cfg->max_recipients, 10);
  assert_int_equal (cfg->to_header, TO_HEADER_NONE);
  assert_int_equal (cfg->smtp_timeout_ms, 60000);
  assert_int_equal (cfg->retry_first_delay, 60);
  assert_int_equal (cfg->retry_max_delay, 900);
  assert_int_equal (cfg->retry_max_age, 86400);
  assert_string_equal (cfg->envelope_from, cfg->from);
  assert_string_equal (cfg->message_id_domain, "example.org");
  assert_true (g_path_is_absolute (cfg->queue_db));
  assert_int_equal (cfg->queue_retention_days, 30);
  assert_string_equal (cfg->timezone, "Europe/Stockholm");
  assert_null (cfg->contact);
  assert_string_equal (cfg->slogan, "Digitalt när det är möjligt, fysiskt när det behövs");
}

static void
test_empty_file_is_defaults_beside_it (void **state)
{
  Fixture *f = *state;
  g_autoptr (GError) error = NULL;
  g_autoptr (Config) cfg = load_text (f, "# nothing\n", &error);
  g_autofree char *want_q = g_build_filename (f->dir, "queue.db", NULL);
  g_autofree char *want_o = g_build_filename (f->dir, "outbox", NULL);

  assert_non_null (cfg);
  assert_string_equal (cfg->queue_db, want_q);
  assert_string_equal (cfg->outbox_dir, want_o);
}

static void
test_values_and_relative_paths (void **state)
{
  Fixture *f = *state;
  g_autoptr (GError) error = NULL;
  g_autoptr (Config) cfg = load_text (f,
    "[daemon]\nsocket = run/im.sock\nsocket_mode = 0600\naudit_db = /var/x/audit.db\n"
    "[organisation]\nname = Region Östra\nfrom = evisit@Example.COM\n"
    "[invite]\nlink_hosts = meet.example.com; *.Video.Example.org ;\n"
    "max_recipients = 25\nto_header = undisclosed\ndefault_lang = en\n"
    "[smtp]\ntimeout = 7\nport = 2525\n"
    "[retry]\nfirst_delay = 5\nmax_delay = 40\nmax_age = 600\n", &error);
  g_autofree char *want_sock = g_build_filename (f->dir, "run/im.sock", NULL);

  assert_non_null (cfg);
  assert_string_equal (cfg->socket, want_sock);
  assert_int_equal (cfg->socket_mode, 0600);
  assert_string_equal (cfg->audit_db, "/var/x/audit.db");
  assert_string_equal (cfg->org_name, "Region Östra");
  assert_string_equal (cfg->from, "evisit@example.com");
  assert_string_equal (cfg->message_id_domain, "example.com");
  assert_string_equal (cfg->link_hosts[0], "meet.example.com");
  assert_string_equal (cfg->link_hosts[1], "*.video.example.org");
  assert_null (cfg->link_hosts[2]);
  assert_int_equal (cfg->max_recipients, 25);
  assert_int_equal (cfg->to_header, TO_HEADER_UNDISCLOSED);
  assert_int_equal (cfg->smtp_timeout_ms, 7000);
  assert_int_equal (cfg->smtp_port, 2525);
  assert_int_equal (cfg->retry_max_age, 600);
}

static void
test_refusals (void **state)
{
  Fixture *f = *state;
  static const struct { const char *name; const char *text; int code; const char *says; } cases[] = {
    { "unknown key", "[daemon]\nsockett = x\n", CONFIG_ERROR_KEY, "sockett" },
    { "unknown section", "[deamon]\nsocket = x\n", CONFIG_ERROR_KEY, "unknown" },
    { "mode for others", "[daemon]\nsocket_mode = 0666\n", CONFIG_ERROR_VALUE, "socket_mode" },
    { "mode not octal", "[daemon]\nsocket_mode = rw\n", CONFIG_ERROR_VALUE, "socket_mode" },
    { "bad from", "[organisation]\nfrom = not an address\n", CONFIG_ERROR_VALUE, "from" },
    { "from with CRLF", "[organisation]\nfrom = a@example.org\\r\\nBcc: x@example.com\n",
      CONFIG_ERROR_VALUE, "from" },
    { "too many rcpts", "[invite]\nmax_recipients = 101\n", CONFIG_ERROR_VALUE, "max_recipients" },
    { "zero rcpts", "[invite]\nmax_recipients = 0\n", CONFIG_ERROR_VALUE, "max_recipients" },
    { "to_header word", "[invite]\nto_header = all\n", CONFIG_ERROR_VALUE, "to_header" },
    { "no link hosts", "[invite]\nlink_hosts = ;\n", CONFIG_ERROR_VALUE, "link_hosts" },
    { "link host url", "[invite]\nlink_hosts = https://x.example.org/\n", CONFIG_ERROR_VALUE,
      "link_hosts" },
    { "transport word", "[transport]\ntype = sendmail\n", CONFIG_ERROR_VALUE, "type" },
    { "tls none remote", "[smtp]\nhost = smtp.example.org\ntls = none\n", CONFIG_ERROR_VALUE,
      "loopback" },
    { "tls none name like 127", "[smtp]\nhost = 127.0.0.300\ntls = none\n",
      CONFIG_ERROR_VALUE, "loopback" },
    { "tls word", "[smtp]\ntls = ssl\n", CONFIG_ERROR_VALUE, "tls" },
    { "port range", "[smtp]\nport = 70000\n", CONFIG_ERROR_VALUE, "port" },
    { "timeout zero", "[smtp]\ntimeout = 0\n", CONFIG_ERROR_VALUE, "timeout" },
    { "auth half", "[smtp]\nauth_user = bot\n", CONFIG_ERROR_VALUE, "together" },
    { "retry order", "[retry]\nfirst_delay = 100\nmax_delay = 10\n", CONFIG_ERROR_VALUE,
      "max_delay" },
    { "lang syntax", "[invite]\ndefault_lang = swedish\n", CONFIG_ERROR_VALUE, "default_lang" },
    { "retention range", "[queue]\nretention_days = -1\n", CONFIG_ERROR_VALUE,
      "retention_days" },
    { "unknown zone", "[organisation]\ntimezone = Europe/Stockhlom\n", CONFIG_ERROR_VALUE,
      "timezone" },
    { "offset as zone", "[organisation]\ntimezone = +01:00\n", CONFIG_ERROR_VALUE, "timezone" },
    { "zone path", "[organisation]\ntimezone = ../../etc/passwd\n", CONFIG_ERROR_VALUE,
      "timezone" },
    { "status group unknown", "[daemon]\nstatus_groups = no-such-group-imtest\n",
      CONFIG_ERROR_VALUE, "status_groups" },
    { "not ini", "this is not a key file\n", CONFIG_ERROR_READ, "" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (Config) cfg = load_text (f, cases[i].text, &error);
      if (cfg != NULL || !g_error_matches (error, CONFIG_ERROR, cases[i].code)
          || strstr (error->message, cases[i].says) == NULL)
        fail_msg ("case '%s': %s", cases[i].name, error ? error->message : "accepted");
    }
}

/* The audit's configuration evidence: a hash that ignores layout and
 * comments, and the changed keys named without their values. */
static void
test_digest_and_changed_keys (void **state)
{
  Fixture *f = *state;
  g_autoptr (Config) a = load_text (f, "[retry]\nmax_age = 600\n[queue]\n"
                                    "retention_days = 7\n", NULL);
  g_autoptr (Config) b = load_text (f, "# same, other layout\n[queue]\n"
                                    "retention_days=7\n\n[retry]\nmax_age = 600\n", NULL);
  g_autoptr (Config) c = load_text (f, "[queue]\nretention_days = 9\n"
                                    "[invite]\ndefault_lang = en\n", NULL);
  g_autoptr (Config) d = config_defaults ();
  g_autofree char *ab = NULL, *ac = NULL;
  char ha[65], hb[65], hc[65];

  assert_non_null (a);
  assert_non_null (b);
  assert_non_null (c);
  assert_int_equal (c->queue_retention_days, 9);
  config_digest (a, ha);
  config_digest (b, hb);
  config_digest (c, hc);
  assert_int_equal (strlen (ha), 64);
  assert_string_equal (ha, hb);
  assert_string_not_equal (ha, hc);
  ab = config_changed_keys (a, b);
  ac = config_changed_keys (a, c);
  assert_string_equal (ab, "");
  assert_string_equal (ac, "invite.default_lang,queue.retention_days,retry.max_age");
  assert_null (strstr (ac, "600"));
  g_free (ab);
  ab = config_changed_keys (d, a);
  assert_string_equal (ab, "queue.retention_days,retry.max_age");
}

static void
test_tls_none_loopback_allowed (void **state)
{
  Fixture *f = *state;
  g_autoptr (GError) error = NULL;
  g_autoptr (Config) cfg = load_text (f, "[smtp]\nhost = 127.0.0.1\ntls = none\n", &error);

  assert_non_null (cfg);
  assert_int_equal (cfg->smtp_tls, TLS_NONE);
  assert_true (config_host_is_loopback ("localhost"));
  assert_true (config_host_is_loopback ("::1"));
  assert_true (config_host_is_loopback ("127.1.2.3"));
  assert_false (config_host_is_loopback ("127.0.0.1.example.com"));
  assert_false (config_host_is_loopback ("10.0.0.1"));
  /* Names that only look like loopback addresses: DNS decides where
   * clear text would go, so they are refused (issue 9 point 3). */
  static const char *const names[] = {
    "127.0.0.300", "127.1", "127.0.1", "0x7f.0.0.1", "0177.0.0.1",
    "127.0.0.1.", "127.0.0.01", " 127.0.0.1", "::ffff:127.0.0.1",
    "[127.0.0.1]", "localhost.", "localhost.example.org", "[::2]", "::",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (config_host_is_loopback (names[i]))
      fail_msg ("'%s' taken for a loopback address", names[i]);
  assert_true (config_host_is_loopback ("[::1]"));
  assert_true (config_host_is_loopback ("127.255.255.254"));
  assert_true (config_host_is_loopback ("LocalHost"));
}

static void
test_password_file_mode (void **state)
{
  Fixture *f = *state;
  g_autofree char *pw = g_build_filename (f->dir, "pw", NULL);
  const char *text = "[transport]\ntype = smtp\n[smtp]\nauth_user = bot\n"
                     "auth_password_file = pw\n";

  assert_true (g_file_set_contents (pw, "s3cret\n", -1, NULL));
  assert_int_equal (chmod (pw, 0644), 0);
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (Config) cfg = load_text (f, text, &error);
    assert_null (cfg);
    assert_true (g_error_matches (error, CONFIG_ERROR, CONFIG_ERROR_SECRET));
    assert_null (strstr (error->message, "s3cret"));
  }
  assert_int_equal (chmod (pw, 0600), 0);
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (Config) cfg = load_text (f, text, &error);
    assert_non_null (cfg);
    assert_int_equal (cfg->smtp_password.len, 6);
    assert_memory_equal (cfg->smtp_password.value, "s3cret", 6);
  }
}

/* ---- the key table against the man page and the example ------------- */

/* The source tree: IM_SRCDIR when set (a moved tree), else the build's. */
static char *
source_file (const char *rel)
{
  const char *top = g_getenv ("IM_SRCDIR");

  return g_build_filename (top != NULL ? top : TOP_SRCDIR, rel, NULL);
}

/* A man-page line as words: escapes decoded, quotes dropped, so that a
 * default reads as the file would write it. */
static void
append_roff (GString *text, const char *line)
{
  static const char *const from[] = { "\\-", "\\[:a]", "\\[:o]", "\\&", "\"", NULL };
  static const char *const to[] = { "-", "ä", "ö", "", "", NULL };
  g_autoptr (GString) l = g_string_new (line);

  for (guint i = 0; from[i] != NULL; i++)
    g_string_replace (l, from[i], to[i], 0);
  g_string_append_printf (text, "%s\n", l->str);
}

/*
 * "section.key" -> its entry's text, from man/invitemail.conf.5: under
 * ".SH [section]", each ".TP" followed by ".B key" (or ".BR a \", \" b"
 * for a pair) starts an entry that runs to the next .TP or .SH.
 */
static GHashTable *
man_entries (void)
{
  g_autofree char *path = source_file ("man/invitemail.conf.5");
  g_autofree char *text = NULL;
  g_autoptr (GHashTable) entries = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                          g_free, NULL);
  g_autoptr (GPtrArray) open = g_ptr_array_new ();
  g_autofree char *section = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    fail_msg ("cannot read %s (set IM_SRCDIR)", path);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *l = lines[i];
      if (g_str_has_prefix (l, ".SH") || g_str_has_prefix (l, ".TP"))
        g_ptr_array_set_size (open, 0);
      if (g_str_has_prefix (l, ".SH"))
        {
          g_free (section);
          section = g_str_has_prefix (l, ".SH [") && g_str_has_suffix (l, "]")
            ? g_strndup (l + 5, strlen (l) - 6) : NULL;
        }
      else if (section != NULL && i > 0 && strcmp (lines[i - 1], ".TP") == 0
               && (g_str_has_prefix (l, ".B ") || g_str_has_prefix (l, ".BR ")))
        {
          g_autoptr (GRegex) word = g_regex_new ("[a-z_]+", 0, 0, NULL);
          g_autoptr (GMatchInfo) m = NULL;
          g_regex_match (word, strchr (l, ' '), 0, &m);
          for (; g_match_info_matches (m); g_match_info_next (m, NULL))
            {
              g_autofree char *w = g_match_info_fetch (m, 0);
              char *key = g_strdup_printf ("%s.%s", section, w);
              GString *body = g_string_new (NULL);
              if (g_hash_table_contains (entries, key))
                fail_msg ("%s documented twice", key);
              g_hash_table_insert (entries, key, body);
              g_ptr_array_add (open, body);
            }
        }
      else
        for (guint j = 0; j < open->len; j++)
          append_roff (open->pdata[j], l);
    }
  return g_steal_pointer (&entries);
}

static void
free_entries (GHashTable *entries)
{
  GHashTableIter it;
  gpointer body;

  g_hash_table_iter_init (&it, entries);
  while (g_hash_table_iter_next (&it, NULL, &body))
    g_string_free (body, TRUE);
  g_hash_table_unref (entries);
}

/* "section.key" -> value of the example's "key = value" or "#key = value"
 * lines (commented keys are shown at their defaults). */
static GHashTable *
example_values (void)
{
  g_autofree char *path = source_file ("contrib/invitemail.conf");
  g_autofree char *text = NULL;
  g_autofree char *section = NULL;
  g_auto (GStrv) lines = NULL;
  GHashTable *values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GRegex) kv = g_regex_new ("^#?([a-z_]+) = (.*)$", 0, 0, NULL);

  if (!g_file_get_contents (path, &text, NULL, NULL))
    fail_msg ("cannot read %s (set IM_SRCDIR)", path);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (GMatchInfo) m = NULL;
      if (lines[i][0] == '[')
        {
          g_free (section);
          section = g_strndup (lines[i] + 1, strcspn (lines[i] + 1, "]"));
        }
      else if (section != NULL && g_regex_match (kv, lines[i], 0, &m))
        {
          g_autofree char *k = g_match_info_fetch (m, 1);
          char *key = g_strdup_printf ("%s.%s", section, k);
          if (g_hash_table_contains (values, key))
            fail_msg ("%s twice in the example", key);
          g_hash_table_insert (values, key, g_match_info_fetch (m, 2));
        }
    }
  return values;
}

static const ConfigKey *
config_key_find_full (const char *full)
{
  g_autofree char *section = g_strndup (full, strcspn (full, "."));

  return strchr (full, '.') ? config_key_find (section, strchr (full, '.') + 1) : NULL;
}

/* Every row is documented with its default and shown in the example at
 * it; every documented or shown key has a row. */
static void
test_key_table_matches_docs (void **state)
{
  GHashTable *man = man_entries ();
  g_autoptr (GHashTable) example = example_values ();
  GHashTableIter it;
  gpointer key;
  guint rows = 0;

  (void) state;
  for (const ConfigKey *k = config_keys; k->section != NULL; k++, rows++)
    {
      g_autofree char *full = g_strdup_printf ("%s.%s", k->section, k->name);
      const char *def = config_key_shown_default (k);
      GString *body = g_hash_table_lookup (man, full);
      const char *shown = g_hash_table_lookup (example, full);

      if (body == NULL)
        fail_msg ("%s is not in man/invitemail.conf.5", full);
      if (strstr (body->str, "efault") == NULL)
        fail_msg ("%s: the man page gives no default", full);
      if (def != NULL && strstr (body->str, def) == NULL)
        fail_msg ("%s: the man page does not give the default %s", full, def);
      if (shown == NULL)
        fail_msg ("%s is not in contrib/invitemail.conf", full);
      if (def != NULL && strcmp (shown, def) != 0)
        fail_msg ("%s: the example shows %s, the default is %s", full, shown, def);
      if (k->help == NULL || *k->help == '\0')
        fail_msg ("%s has no help", full);
      if (config_key_find (k->section, k->name) != k)
        fail_msg ("%s has two rows", full);
    }
  g_hash_table_iter_init (&it, man);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (config_key_find_full (key) == NULL)
      fail_msg ("the man page documents %s, which has no row", (char *) key);
  g_hash_table_iter_init (&it, example);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (config_key_find_full (key) == NULL)
      fail_msg ("the example sets %s, which has no row", (char *) key);
  assert_int_equal (g_hash_table_size (man), rows);
  free_entries (man);
}

/* The parser reads every row by its type: a number past a row's range
 * and a word not in its list are refused, naming the key; the largest
 * number lands in the row's field (scaled) unless a rule between keys
 * refuses it. */
static void
test_rows_drive_parser (void **state)
{
  Fixture *f = *state;
  guint stored = 0;

  for (const ConfigKey *k = config_keys; k->section != NULL; k++)
    {
      g_autofree char *name = g_strdup_printf ("[%s] %s: ", k->section, k->name);
      g_autofree char *over = NULL, *top = NULL;
      g_autoptr (GError) error = NULL;
      if (k->type == CONFIG_TYPE_CHOICE)
        over = g_strdup_printf ("[%s]\n%s = maybe\n", k->section, k->name);
      else if (k->type == CONFIG_TYPE_UINT && k->max < G_MAXUINT)
        over = g_strdup_printf ("[%s]\n%s = %u\n", k->section, k->name, k->max + 1);
      else
        continue;
      g_autoptr (Config) bad = load_text (f, over, &error);
      if (bad != NULL || !g_error_matches (error, CONFIG_ERROR, CONFIG_ERROR_VALUE)
          || strstr (error->message, name) == NULL)
        fail_msg ("%s accepted or refused oddly: %s", over, error ? error->message : "");
      if (k->type != CONFIG_TYPE_UINT)
        continue;
      top = g_strdup_printf ("[%s]\n%s = %u\n", k->section, k->name, k->max);
      g_autoptr (Config) good = load_text (f, top, NULL);
      if (good != NULL)
        {
          assert_int_equal (G_STRUCT_MEMBER (guint, good, k->offset),
                            k->max * (k->scale ? k->scale : 1));
          stored++;
        }
    }
  assert_int_equal (stored, 19);   /* 26 numbers; 7 meet a rule between keys */
}

/* --print-defaults writes a file the parser takes, with every row. */
static void
test_print_defaults_loads (void **state)
{
  Fixture *f = *state;
  g_autofree char *text = config_keys_print_defaults ();
  g_autoptr (GError) error = NULL;
  g_autoptr (Config) cfg = load_text (f, text, &error);

  if (cfg == NULL)
    fail_msg ("%s", error->message);
  for (const ConfigKey *k = config_keys; k->section != NULL; k++)
    {
      g_autofree char *line = g_strdup_printf ("\n%s%s =", k->def ? "" : "#", k->name);
      assert_non_null (strstr (text, line));
    }
  assert_int_equal (cfg->socket_mode, 0660);
  assert_int_equal (cfg->smtp_timeout_ms, 60000);
  assert_true (cfg->bounce_verp);
  assert_int_equal (cfg->health_disk[1], 5);
  assert_string_equal (cfg->link_hosts[1], "example.org");
}

/* The row flagged secret (the password file): a new password is named
 * "smtp.password" at reload, and the digest, which covers the path
 * only, does not change with the contents. */
static void
test_secret_never_hashed (void **state)
{
  Fixture *f = *state;
  g_autofree char *pw = g_build_filename (f->dir, "pw", NULL);
  const char *text = "[transport]\ntype = smtp\n[smtp]\nauth_user = bot\n"
                     "auth_password_file = pw\n";
  const ConfigKey *k = config_key_find ("smtp", "auth_password_file");
  g_autofree char *changed = NULL;
  char ha[65], hb[65];

  assert_non_null (k);
  assert_true (k->secret);
  assert_true (g_file_set_contents (pw, "first-s3cret\n", -1, NULL));
  assert_int_equal (chmod (pw, 0600), 0);
  g_autoptr (Config) a = load_text (f, text, NULL);
  assert_true (g_file_set_contents (pw, "second-s3cret\n", -1, NULL));
  assert_int_equal (chmod (pw, 0600), 0);   /* a new file: set its mode again */
  g_autoptr (Config) b = load_text (f, text, NULL);
  assert_non_null (a);
  assert_non_null (b);
  config_digest (a, ha);
  config_digest (b, hb);
  assert_string_equal (ha, hb);
  changed = config_changed_keys (a, b);
  assert_string_equal (changed, "smtp.password");
  for (char **s = b->file_settings; *s != NULL; s++)
    assert_null (strstr (*s, "s3cret"));
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_defaults),
    cmocka_unit_test_setup_teardown (test_empty_file_is_defaults_beside_it, setup, teardown),
    cmocka_unit_test_setup_teardown (test_values_and_relative_paths, setup, teardown),
    cmocka_unit_test_setup_teardown (test_refusals, setup, teardown),
    cmocka_unit_test_setup_teardown (test_tls_none_loopback_allowed, setup, teardown),
    cmocka_unit_test_setup_teardown (test_password_file_mode, setup, teardown),
    cmocka_unit_test_setup_teardown (test_digest_and_changed_keys, setup, teardown),
    cmocka_unit_test (test_key_table_matches_docs),
    cmocka_unit_test_setup_teardown (test_rows_drive_parser, setup, teardown),
    cmocka_unit_test_setup_teardown (test_print_defaults_loads, setup, teardown),
    cmocka_unit_test_setup_teardown (test_secret_never_hashed, setup, teardown),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
