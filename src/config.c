/*
 * config.c - the INI file into a Config, with every key's default.
 *
 * What it does: reads one GKeyFile driven by the key table
 * (config_keys.c): refuses keys without a row (a misspelt key must not
 * silently become a default), reads each row by its type (range, words,
 * paths against the file's folder, typed hooks for user and group
 * names) from the file or its default, then applies the rules between
 * keys and reads the SMTP password file.
 *
 * What it trusts: the administrator who wrote the file, only so far as
 * to follow it; every value is still checked.  It does not look at
 * templates (render_load.c) or open databases (queue.c, audit.c).
 *
 * Limits: auth user and password at most 255 bytes each (libESMTP's
 * PLAIN plugin copies both into a 513-byte buffer without checking).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "config_keys.h"
#include "names.h"
#include "validate.h"

#define AUTH_FIELD_MAX 255
#define CONTACT_MAX 200

G_DEFINE_QUARK (invitemail-config-error-quark, config_error)

void
config_free (Config *cfg)
{
  if (cfg == NULL)
    return;
  g_free (cfg->path);
  g_free (cfg->socket);
  g_free (cfg->socket_group);
  g_free (cfg->run_user);
  g_free (cfg->run_group);
  g_array_unref (cfg->allowed_users);
  g_array_unref (cfg->allowed_groups);
  g_array_unref (cfg->allowed_group_members);
  g_array_unref (cfg->status_groups);
  g_array_unref (cfg->status_group_members);
  g_free (cfg->queue_db);
  g_free (cfg->audit_db);
  g_free (cfg->org_name);
  g_free (cfg->from);
  g_free (cfg->envelope_from);
  g_free (cfg->message_id_domain);
  g_free (cfg->dpo_email);
  g_free (cfg->slogan);
  g_free (cfg->org_unit);
  g_free (cfg->timezone);
  g_free (cfg->contact);
  g_free (cfg->audit_key_file);
  g_free (cfg->audit_group);
  g_free (cfg->templates_dir);
  g_free (cfg->signatures_dir);
  g_free (cfg->default_lang);
  g_strfreev (cfg->link_hosts);
  g_free (cfg->outbox_dir);
  g_free (cfg->smtp_host);
  g_free (cfg->smtp_ca_file);
  g_free (cfg->smtp_auth_user);
  g_free (cfg->smtp_auth_password_file);
  secret_wipe (&cfg->smtp_password);
  g_free (cfg->smtp_helo_name);
  g_free (cfg->bounce_local_part);
  g_free (cfg->bounce_domain);
  g_strfreev (cfg->file_settings);
  g_free (cfg);
}

/* Relative paths are relative to the configuration file's folder, so a
 * configuration and its data can live together anywhere. */
static char *
resolve_path (const char *base_dir, const char *value)
{
  if (g_path_is_absolute (value))
    return g_strdup (value);
  return g_build_filename (base_dir, value, NULL);
}

static gboolean
fail (GError **error, ConfigError code, const char *group, const char *key,
      const char *what)
{
  g_set_error (error, CONFIG_ERROR, code, "[%s] %s: %s", group, key, what);
  return FALSE;
}

static gboolean
set_uint (Config *cfg, const ConfigKey *k, const char *v, GError **error)
{
  guint64 n = 0;

  if (!g_ascii_string_to_unsigned (v, 10, k->min, k->max, &n, NULL))
    {
      g_autofree char *what = g_strdup_printf ("not a whole number from %u to %u",
                                               k->min, k->max);
      return fail (error, CONFIG_ERROR_VALUE, k->section, k->name, what);
    }
  G_STRUCT_MEMBER (guint, cfg, k->offset) = (guint) n * (k->scale ? k->scale : 1);
  return TRUE;
}

/* Never a bit for others: any local user could then send mail in the
 * organisation's name. */
static gboolean
set_mode (Config *cfg, const ConfigKey *k, const char *v, GError **error)
{
  guint64 m = 0;

  if (!g_ascii_string_to_unsigned (v, 8, 0, k->max, &m, NULL) || (m & 07) != 0)
    return fail (error, CONFIG_ERROR_VALUE, k->section, k->name,
                 "octal mode without bits for others (at most 0770)");
  G_STRUCT_MEMBER (guint, cfg, k->offset) = (guint) m;
  return TRUE;
}

/* A word of k->words, in any case, into its index. */
static gboolean
set_choice (Config *cfg, const ConfigKey *k, const char *v, GError **error)
{
  for (int i = 0; k->words[i] != NULL; i++)
    if (g_ascii_strcasecmp (v, k->words[i]) == 0)
      {
        G_STRUCT_MEMBER (int, cfg, k->offset) = i;
        return TRUE;
      }
  g_autofree char *all = g_strjoinv (" or ", (char **) k->words);
  g_autofree char *what = g_strdup_printf ("must be %s", all);
  return fail (error, CONFIG_ERROR_VALUE, k->section, k->name, what);
}

/* One key's value, from the file or its row's default, into its field:
 * the one way every key is read. */
static gboolean
set_value (Config *cfg, const ConfigKey *k, const char *dir, const char *v,
           GError **error)
{
  char **str = &G_STRUCT_MEMBER (char *, cfg, k->offset);

  switch (k->type)
    {
    case CONFIG_TYPE_STRING:
      g_free (*str);
      *str = g_strdup (v);
      return TRUE;
    case CONFIG_TYPE_PATH:
      g_free (*str);
      *str = resolve_path (dir, v);
      return TRUE;
    case CONFIG_TYPE_UINT:
      return set_uint (cfg, k, v, error);
    case CONFIG_TYPE_MODE:
      return set_mode (cfg, k, v, error);
    case CONFIG_TYPE_CHOICE:
      return set_choice (cfg, k, v, error);
    case CONFIG_TYPE_LIST:
      g_strfreev (G_STRUCT_MEMBER (char **, cfg, k->offset));
      G_STRUCT_MEMBER (char **, cfg, k->offset) = config_split_list (v);
      return TRUE;
    case CONFIG_TYPE_HOOK:
      return k->hook (cfg, k, v, error);
    default:
      g_return_val_if_reached (FALSE);
    }
}

static Config *
config_new_defaults (const char *base_dir)
{
  Config *cfg = g_new0 (Config, 1);

  cfg->allowed_users = g_array_new (FALSE, FALSE, sizeof (uid_t));
  cfg->allowed_groups = g_array_new (FALSE, FALSE, sizeof (gid_t));
  cfg->allowed_group_members = g_array_new (FALSE, FALSE, sizeof (uid_t));
  cfg->status_groups = g_array_new (FALSE, FALSE, sizeof (gid_t));
  cfg->status_group_members = g_array_new (FALSE, FALSE, sizeof (uid_t));
  for (const ConfigKey *k = config_keys; k->section != NULL; k++)
    if (k->def != NULL && !set_value (cfg, k, base_dir, k->def, NULL))
      g_error ("config_keys.c: [%s] %s: its default is refused", k->section, k->name);
  /* the one default that is not a constant */
  cfg->smtp_helo_name = g_strdup (g_get_host_name ());
  cfg->file_settings = g_new0 (char *, 1);
  return cfg;
}

/* Every key must have a row in the table (config_keys.c). */
static gboolean
check_known_keys (GKeyFile *kf, GError **error)
{
  g_auto (GStrv) groups = g_key_file_get_groups (kf, NULL);

  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_auto (GStrv) keys = g_key_file_get_keys (kf, groups[i], NULL, NULL);
      for (guint j = 0; keys != NULL && keys[j] != NULL; j++)
        if (config_key_find (groups[i], keys[j]) == NULL)
          return fail (error, CONFIG_ERROR_KEY, groups[i], keys[j],
                       "unknown key (see invitemail.conf(5))");
      /* An empty section is harmless, but an unknown one is a typo. */
      if ((keys == NULL || keys[0] == NULL) && !config_section_known (groups[i]))
        return fail (error, CONFIG_ERROR_KEY, groups[i], "*", "unknown section");
    }
  return TRUE;
}

/* The file's value of k, trimmed, non-empty, UTF-8 without control
 * characters; *out NULL when the file does not set it. */
static gboolean
get_value (GKeyFile *kf, const ConfigKey *k, char **out, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *v = g_key_file_get_string (kf, k->section, k->name, &local);

  *out = NULL;
  if (v == NULL)
    {
      if (g_error_matches (local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND)
          || g_error_matches (local, G_KEY_FILE_ERROR,
                              G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
        return TRUE;
      return fail (error, CONFIG_ERROR_VALUE, k->section, k->name, local->message);
    }
  g_strstrip (v);
  if (*v == '\0' || !g_utf8_validate (v, -1, NULL))
    return fail (error, CONFIG_ERROR_VALUE, k->section, k->name,
                 "empty or not UTF-8");
  for (const char *p = v; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      return fail (error, CONFIG_ERROR_VALUE, k->section, k->name,
                   "control character in value");
  *out = g_steal_pointer (&v);
  return TRUE;
}

/* Every row the file sets, in the table's order. */
static gboolean
read_keys (GKeyFile *kf, const char *dir, Config *cfg, GError **error)
{
  for (const ConfigKey *k = config_keys; k->section != NULL; k++)
    {
      g_autofree char *v = NULL;
      if (!get_value (kf, k, &v, error)
          || (v != NULL && !set_value (cfg, k, dir, v, error)))
        return FALSE;
    }
  return TRUE;
}

/* ---- rules between keys, and values checked beyond their type --------- */

/*
 * [daemon] user and group: whom the daemon becomes when started as root
 * (invitemaild.c drops to them once the socket is bound).  Resolved here,
 * at start and reload.  group defaults to the user's primary group.
 */
static gboolean
check_run_user (Config *cfg, GError **error)
{
  struct passwd *pw;
  struct group *gr;

  if (cfg->run_user == NULL)
    return cfg->run_group == NULL
      || fail (error, CONFIG_ERROR_VALUE, "daemon", "group", "needs user as well");
  if ((pw = getpwnam (cfg->run_user)) == NULL)
    return fail (error, CONFIG_ERROR_VALUE, "daemon", "user", "no such user");
  cfg->run_uid = pw->pw_uid;
  cfg->run_gid = pw->pw_gid;
  if (cfg->run_group == NULL)
    return TRUE;
  if ((gr = getgrnam (cfg->run_group)) == NULL)
    return fail (error, CONFIG_ERROR_VALUE, "daemon", "group", "no such group");
  cfg->run_gid = gr->gr_gid;
  return TRUE;
}

static gboolean
check_daemon (Config *cfg, GError **error)
{
  if (strlen (cfg->socket) >= 108)
    return fail (error, CONFIG_ERROR_VALUE, "daemon", "socket",
                 "path longer than a Unix socket address allows");
  if (cfg->socket_group != NULL && getgrnam (cfg->socket_group) == NULL)
    return fail (error, CONFIG_ERROR_VALUE, "daemon", "socket_group",
                 "no such group");
  return check_run_user (cfg, error);
}

static gboolean
check_mailbox (const char *group, const char *key, char **value, GError **error)
{
  Refusal why;
  char *ascii = NULL;

  if (!validate_address (*value, &ascii, &why))
    return fail (error, CONFIG_ERROR_VALUE, group, key, why.message);
  g_free (*value);
  *value = ascii;
  return TRUE;
}

/* A domain name as its ASCII form, or NULL. (transfer full) */
static char *
domain_ascii (const char *domain)
{
  g_autofree char *probe = g_strconcat ("x@", domain, NULL);
  g_autofree char *ascii = NULL;
  Refusal why;

  if (!validate_address (probe, &ascii, &why))
    return NULL;
  return g_strdup (ascii + 2);
}

/* The addresses, and what defaults to from. */
static gboolean
check_organisation (Config *cfg, GError **error)
{
  if (!check_mailbox ("organisation", "from", &cfg->from, error)
      || !check_mailbox ("organisation", "dpo_email", &cfg->dpo_email, error))
    return FALSE;
  if (cfg->envelope_from == NULL)
    cfg->envelope_from = g_strdup (cfg->from);
  else if (!check_mailbox ("organisation", "envelope_from", &cfg->envelope_from, error))
    return FALSE;
  if (cfg->message_id_domain == NULL)
    cfg->message_id_domain = g_strdup (strrchr (cfg->from, '@') + 1);
  else
    {
      char *ascii = domain_ascii (cfg->message_id_domain);
      if (ascii == NULL)
        return fail (error, CONFIG_ERROR_VALUE, "organisation",
                     "message_id_domain", "not a domain name");
      g_free (cfg->message_id_domain);
      cfg->message_id_domain = ascii;
    }
  return TRUE;
}

/* The keys that shape what the mail says: the zone its times are shown
 * in (an IANA name the system's zone database knows, so a typo cannot
 * quietly show UTC) and whom to call when the link fails. */
static gboolean
check_message_keys (Config *cfg, GError **error)
{
  g_autoptr (GTimeZone) tz = g_time_zone_new_identifier (cfg->timezone);

  /* names only: GLib would also take "+01:00", which has no summer time */
  if (tz == NULL || (strchr (cfg->timezone, '/') == NULL
                     && strcmp (cfg->timezone, "UTC") != 0))
    return fail (error, CONFIG_ERROR_VALUE, "organisation", "timezone",
                 "not a time zone name such as Europe/Stockholm");
  if (cfg->contact != NULL && strlen (cfg->contact) > CONTACT_MAX)
    return fail (error, CONFIG_ERROR_VALUE, "organisation", "contact",
                 "longer than 200 bytes");
  return TRUE;
}

static gboolean
check_link_hosts (Config *cfg, GError **error)
{
  if (cfg->link_hosts == NULL || cfg->link_hosts[0] == NULL)
    return fail (error, CONFIG_ERROR_VALUE, "invite", "link_hosts",
                 "at least one host is needed");
  for (guint i = 0; cfg->link_hosts[i] != NULL; i++)
    {
      char *h = cfg->link_hosts[i];
      const char *name = g_str_has_prefix (h, "*.") ? h + 2 : h;
      g_autofree char *ascii = g_hostname_to_ascii (name);
      if (ascii == NULL || *ascii == '\0' || strchr (ascii, '*') != NULL
          || strchr (ascii, '/') != NULL || strchr (ascii, ':') != NULL)
        return fail (error, CONFIG_ERROR_VALUE, "invite", "link_hosts",
                     "not a host name or *.domain");
      char *lower = g_ascii_strdown (ascii, -1);
      cfg->link_hosts[i] = name == h ? lower : g_strconcat ("*.", lower, NULL);
      if (name != h)
        g_free (lower);
      g_free (h);
    }
  return TRUE;
}

static gboolean
check_invite (Config *cfg, GError **error)
{
  if (!lang_tag_ok (cfg->default_lang, -1))
    return fail (error, CONFIG_ERROR_VALUE, "invite", "default_lang",
                 "a language code such as sv or en");
  return check_link_hosts (cfg, error);
}

/* The password file must be the daemon's alone: owned by the user the
 * daemon runs as, no permission for group or others, read through one
 * descriptor (secret.c). */
static gboolean
read_secret (const Config *cfg, const char *path, Secret *out, GError **error)
{
  g_autoptr (GError) local = NULL;
  /* Started as root, the daemon becomes run_user: the file must be
   * that user's, so that a reload (after the drop) can read it too. */
  uid_t owner = geteuid () == 0 && cfg->run_user != NULL ? cfg->run_uid : geteuid ();

  if (!secret_read_file (path, owner, AUTH_FIELD_MAX, out, &local))
    return fail (error, CONFIG_ERROR_SECRET, "smtp", "auth_password_file",
                 local->message);
  return TRUE;
}

/* Cross-key rules, checked after every key is read. */
static gboolean
check_smtp (Config *cfg, gboolean read_secrets, GError **error)
{
  g_autofree char *ascii = g_hostname_to_ascii (cfg->smtp_host);

  if (ascii == NULL || strpbrk (ascii, " /\\@") != NULL)
    return fail (error, CONFIG_ERROR_VALUE, "smtp", "host", "not a host name");
  if (cfg->smtp_tls == TLS_NONE && !config_host_is_loopback (cfg->smtp_host))
    return fail (error, CONFIG_ERROR_VALUE, "smtp", "tls",
                 "none is allowed only toward a loopback relay: a literal "
                 "127.0.0.0/8 or ::1 address, or localhost resolving only "
                 "to them");
  if (cfg->smtp_auth_user != NULL && strlen (cfg->smtp_auth_user) > AUTH_FIELD_MAX)
    return fail (error, CONFIG_ERROR_VALUE, "smtp", "auth_user",
                 "longer than 255 bytes");
  if ((cfg->smtp_auth_user == NULL) != (cfg->smtp_auth_password_file == NULL))
    return fail (error, CONFIG_ERROR_VALUE, "smtp", "auth_user",
                 "auth_user and auth_password_file go together");
  if (read_secrets && cfg->smtp_auth_password_file != NULL
      && cfg->transport == TRANSPORT_SMTP)
    return read_secret (cfg, cfg->smtp_auth_password_file, &cfg->smtp_password, error);
  return TRUE;
}

static gboolean
check_retry (Config *cfg, GError **error)
{
  if (cfg->retry_max_delay < cfg->retry_first_delay)
    return fail (error, CONFIG_ERROR_VALUE, "retry", "max_delay",
                 "smaller than first_delay");
  return TRUE;
}

static void
default_key_file (Config *cfg)
{
  g_autofree char *db_dir = NULL;

  if (cfg->audit_key_file != NULL)
    return;
  db_dir = g_path_get_dirname (cfg->audit_db);
  cfg->audit_key_file = g_build_filename (db_dir, "audit.key", NULL);
}

static gint
compare_settings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Every "group.key=value" the file sets, sorted, for config_digest.
 * Values as the file has them (trimmed): they are the administrator's
 * words.  A row flagged secret whose value is not a path to the secret
 * (none today) is kept without its value: a hash of a short secret
 * could be guessed. */
static char **
collect_settings (GKeyFile *kf)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new ();
  g_auto (GStrv) groups = g_key_file_get_groups (kf, NULL);

  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_auto (GStrv) keys = g_key_file_get_keys (kf, groups[i], NULL, NULL);
      for (guint j = 0; keys != NULL && keys[j] != NULL; j++)
        {
          g_autofree char *v = g_key_file_get_value (kf, groups[i], keys[j], NULL);
          const ConfigKey *k = config_key_find (groups[i], keys[j]);
          if (k->secret && k->type != CONFIG_TYPE_PATH)
            g_clear_pointer (&v, g_free);
          g_ptr_array_add (out, g_strdup_printf ("%s.%s=%s", groups[i], keys[j],
                                                 v ? g_strstrip (v) : ""));
        }
    }
  g_ptr_array_sort (out, compare_settings);
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&out), FALSE);
}

Config *
config_defaults (void)
{
  g_autofree char *cwd = g_get_current_dir ();
  Config *cfg = config_new_defaults (cwd);

  cfg->envelope_from = g_strdup (cfg->from);
  cfg->message_id_domain = g_strdup (strrchr (cfg->from, '@') + 1);
  default_key_file (cfg);
  return cfg;
}

/* [bounce]: the return address LOCAL+TOKEN@DOMAIN of each recipient. */
static gboolean
check_bounce (Config *cfg, GError **error)
{
  /* Letters, digits, '.', '-', '_' only, not '+': the token follows the
   * first '+', and the address goes verbatim into MAIL FROM. */
  if (strlen (cfg->bounce_local_part) > 32
      || !g_regex_match_simple ("^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
                                cfg->bounce_local_part, 0, 0))
    return fail (error, CONFIG_ERROR_VALUE, "bounce", "local_part",
                 "letters, digits, '.', '-' and '_' only, at most 32");
  if (cfg->bounce_domain != NULL)
    {
      char *ascii = domain_ascii (cfg->bounce_domain);
      if (ascii == NULL)
        return fail (error, CONFIG_ERROR_VALUE, "bounce", "domain", "not a domain name");
      g_free (cfg->bounce_domain);
      cfg->bounce_domain = ascii;
    }
  return TRUE;
}

/* [health]: of each warning/critical pair, critical must be the worse
 * one; for free disk space lower is worse. */
static gboolean
check_health (Config *cfg, GError **error)
{
  static const char *const names[] = { "queue", "deferred", "failures", "relay", "seal" };
  const guint *pairs[] = { cfg->health_queue, cfg->health_deferred, cfg->health_failures,
                           cfg->health_relay, cfg->health_seal };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (pairs[i][1] < pairs[i][0])
      {
        g_autofree char *key = g_strconcat (names[i], "_critical", NULL);
        return fail (error, CONFIG_ERROR_VALUE, "health", key,
                     "must not be below the warning value");
      }
  if (cfg->health_disk[1] > cfg->health_disk[0])
    return fail (error, CONFIG_ERROR_VALUE, "health", "disk_critical",
                 "must not be above the warning value");
  return TRUE;
}

static Config *
load (const char *path, gboolean read_secrets, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  g_autoptr (Config) cfg = NULL;
  g_autofree char *abs = NULL;
  g_autofree char *dir = NULL;

  if (path == NULL)
    return config_defaults ();
  abs = g_canonicalize_filename (path, NULL);
  if (!g_key_file_load_from_file (kf, abs, G_KEY_FILE_NONE, &local))
    {
      g_set_error (error, CONFIG_ERROR, CONFIG_ERROR_READ, "%s: %s", abs,
                   local->message);
      return NULL;
    }
  dir = g_path_get_dirname (abs);
  cfg = config_new_defaults (dir);
  cfg->path = g_strdup (abs);
  if (!check_known_keys (kf, error)
      || !read_keys (kf, dir, cfg, error)
      || !check_daemon (cfg, error)
      || !check_organisation (cfg, error)
      || !check_message_keys (cfg, error)
      || !check_invite (cfg, error)
      || !check_smtp (cfg, read_secrets, error)
      || !check_retry (cfg, error)
      || !check_bounce (cfg, error)
      || !check_health (cfg, error))
    return NULL;
  default_key_file (cfg);
  g_strfreev (cfg->file_settings);
  cfg->file_settings = collect_settings (kf);
  return g_steal_pointer (&cfg);
}

Config *
config_load (const char *path, GError **error)
{
  return load (path, TRUE, error);
}

Config *
config_load_public (const char *path, GError **error)
{
  return load (path, FALSE, error);
}

/* A literal loopback address: 127.0.0.0/8 as a strict dotted quad
 * (inet_pton: four decimal parts, each 0-255, so "127.0.0.300",
 * "127.1" or "0x7f.0.0.1" are not addresses), or ::1, bare or in
 * brackets.  "::ffff:127.0.0.1" is not accepted: the relay connection
 * is IPv4 or a name, never a mapped address. */
static gboolean
literal_is_loopback (const char *host)
{
  struct in_addr a4;
  struct in6_addr a6;
  gsize len = strlen (host);

  if (inet_pton (AF_INET, host, &a4) == 1)
    return (ntohl (a4.s_addr) >> 24) == 127;
  if (len > 2 && host[0] == '[' && host[len - 1] == ']')
    {
      g_autofree char *bare = g_strndup (host + 1, len - 2);
      return inet_pton (AF_INET6, bare, &a6) == 1 && IN6_IS_ADDR_LOOPBACK (&a6);
    }
  return inet_pton (AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK (&a6);
}

/* "localhost" passes only when every address it resolves to here is a
 * loopback address: the name is looked up (normally in /etc/hosts), not
 * trusted for its spelling. */
static gboolean
localhost_is_loopback (void)
{
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
  struct addrinfo *res = NULL;
  gboolean ok;

  if (getaddrinfo ("localhost", NULL, &hints, &res) != 0)
    return FALSE;
  ok = res != NULL;
  for (struct addrinfo *ai = res; ok && ai != NULL; ai = ai->ai_next)
    {
      char text[INET6_ADDRSTRLEN];
      const void *addr = ai->ai_family == AF_INET
        ? (const void *) &((struct sockaddr_in *) ai->ai_addr)->sin_addr
        : (const void *) &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr;

      ok = (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
        && inet_ntop (ai->ai_family, addr, text, sizeof text) != NULL
        && literal_is_loopback (text);
    }
  freeaddrinfo (res);
  return ok;
}

gboolean
config_host_is_loopback (const char *host)
{
  g_return_val_if_fail (host != NULL, FALSE);

  if (literal_is_loopback (host))
    return TRUE;
  return g_ascii_strcasecmp (host, "localhost") == 0 && localhost_is_loopback ();
}

/* ---- placeholders still in use -------------------------------------------- */

/* Domains reserved for examples and tests (RFC 2606, RFC 6761): mail to
 * them goes nowhere, and a link host there is not the video service. */
static gboolean
domain_is_example (const char *domain)
{
  static const char *const names[] = { "example.org", "example.com", "example.net", NULL };
  static const char *const tlds[] = { ".example", ".test", ".invalid", ".localhost", NULL };
  g_autofree char *d = g_ascii_strdown (domain, -1);

  for (const char *const *n = names; *n != NULL; n++)
    {
      gsize dl = strlen (d), nl = strlen (*n);
      if (strcmp (d, *n) == 0 || (dl > nl && d[dl - nl - 1] == '.' && g_str_has_suffix (d, *n)))
        return TRUE;
    }
  for (const char *const *t = tlds; *t != NULL; t++)
    if (g_str_has_suffix (d, *t) || strcmp (d, *t + 1) == 0)
      return TRUE;
  return FALSE;
}

static void
warn_example_address (GPtrArray *out, const char *key, const char *addr)
{
  const char *at = addr ? strrchr (addr, '@') : NULL;

  if (at != NULL && domain_is_example (at + 1))
    g_ptr_array_add (out, g_strdup_printf ("[organisation] %s is in the example "
                                           "domain %s", key, at + 1));
}

GPtrArray *
config_placeholders (const Config *cfg)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  g_return_val_if_fail (cfg != NULL, out);
  if (g_strcmp0 (cfg->org_name, "Region Exempel") == 0)
    g_ptr_array_add (out, g_strdup ("[organisation] name is the example "
                                    "\"Region Exempel\""));
  warn_example_address (out, "from", cfg->from);
  warn_example_address (out, "envelope_from", cfg->envelope_from);
  warn_example_address (out, "dpo_email", cfg->dpo_email);
  if (cfg->message_id_domain != NULL && domain_is_example (cfg->message_id_domain))
    g_ptr_array_add (out, g_strdup_printf ("[organisation] message_id_domain is "
                                           "the example domain %s",
                                           cfg->message_id_domain));
  for (guint i = 0; cfg->link_hosts != NULL && cfg->link_hosts[i] != NULL; i++)
    {
      const char *h = cfg->link_hosts[i];
      if (domain_is_example (g_str_has_prefix (h, "*.") ? h + 2 : h))
        g_ptr_array_add (out, g_strdup_printf ("[invite] link_hosts holds the "
                                               "example host %s", h));
    }
  return out;
}
