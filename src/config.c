/*
 * config.c - the INI file into a Config, with every key's default.
 *
 * What it does: reads one GKeyFile, refuses unknown sections and keys
 * (a misspelt key must not silently become a default), checks types and
 * ranges, resolves relative paths against the file's folder, resolves
 * user and group names, and reads the SMTP password file.
 *
 * What it trusts: the administrator who wrote the file, only so far as
 * to follow it; every value is still checked.  It does not look at
 * templates (render.c) or open databases (queue.c, audit.c).
 *
 * Limits: auth user and password at most 255 bytes each (libESMTP's
 * PLAIN plugin copies both into a 513-byte buffer, LIBS.md 3).
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
#include "validate.h"

#define AUTH_FIELD_MAX 255
#define SMTP_TIMEOUT_MAX_S 3600
#define RETRY_MAX_S (30 * 86400)
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
 * configuration and its data can live together anywhere (SPEC). */
static char *
resolve_path (const char *base_dir, const char *value)
{
  if (g_path_is_absolute (value))
    return g_strdup (value);
  return g_build_filename (base_dir, value, NULL);
}

static Config *
config_new_defaults (const char *base_dir)
{
  Config *cfg = g_new0 (Config, 1);

  cfg->socket = g_strdup ("/run/invitemail/invitemail.sock");
  cfg->socket_mode = 0660;
  cfg->allowed_users = g_array_new (FALSE, FALSE, sizeof (uid_t));
  cfg->allowed_groups = g_array_new (FALSE, FALSE, sizeof (gid_t));
  cfg->allowed_group_members = g_array_new (FALSE, FALSE, sizeof (uid_t));
  cfg->status_groups = g_array_new (FALSE, FALSE, sizeof (gid_t));
  cfg->status_group_members = g_array_new (FALSE, FALSE, sizeof (uid_t));
  cfg->queue_db = resolve_path (base_dir, "queue.db");
  cfg->audit_db = resolve_path (base_dir, "audit.db");
  cfg->client_timeout = 30;
  cfg->org_name = g_strdup ("Region Exempel");
  cfg->from = g_strdup ("evisit@example.org");
  cfg->dpo_email = g_strdup ("dataskyddsombud@example.org");
  cfg->slogan = g_strdup ("Digitalt när det är möjligt, fysiskt när det behövs");
  cfg->timezone = g_strdup ("Europe/Stockholm");
  cfg->templates_dir = g_strdup (PKGDATADIR "/templates");
  cfg->signatures_dir = g_strdup (PKGDATADIR "/signatures");
  cfg->default_lang = g_strdup ("sv");
  cfg->link_hosts = g_strsplit ("*.example.org;example.org", ";", -1);
  cfg->max_recipients = 10;
  cfg->to_header = TO_HEADER_NONE;
  cfg->transport = TRANSPORT_FILE;
  cfg->outbox_dir = resolve_path (base_dir, "outbox");
  cfg->smtp_host = g_strdup ("localhost");
  cfg->smtp_port = 587;
  cfg->smtp_tls = TLS_STARTTLS;
  cfg->smtp_helo_name = g_strdup (g_get_host_name ());
  cfg->smtp_timeout_ms = 60 * 1000;
  cfg->smtp_connections = 2;
  cfg->retry_first_delay = 60;
  cfg->retry_max_delay = 15 * 60;
  cfg->retry_max_age = 24 * 3600;
  cfg->audit_seal_interval = 900;
  cfg->audit_retention_days = 1830;
  cfg->queue_retention_days = 30;
  cfg->limit_invites_per_minute = 60;
  cfg->limit_recipients_per_day = 5000;
  cfg->limit_queued_recipients = 20000;
  cfg->bounce_verp = TRUE;
  cfg->bounce_local_part = g_strdup ("bounces");
  cfg->health_queue[0] = 100, cfg->health_queue[1] = 1000;
  cfg->health_deferred[0] = 1800, cfg->health_deferred[1] = 4 * 3600;
  cfg->health_failures[0] = 5, cfg->health_failures[1] = 50;
  cfg->health_relay[0] = 1800, cfg->health_relay[1] = 4 * 3600;
  cfg->health_seal[0] = 3600, cfg->health_seal[1] = 6 * 3600;
  cfg->health_disk[0] = 10, cfg->health_disk[1] = 5;
  cfg->file_settings = g_new0 (char *, 1);
  return cfg;
}

static gboolean
fail (GError **error, ConfigError code, const char *group, const char *key,
      const char *what)
{
  g_set_error (error, CONFIG_ERROR, code, "[%s] %s: %s", group, key, what);
  return FALSE;
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

/* A string value: trimmed, non-empty, UTF-8 without control characters.
 * Replaces *dst only when the key is present. */
static gboolean
get_string (GKeyFile *kf, const char *group, const char *key, char **dst,
            GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *v = g_key_file_get_string (kf, group, key, &local);

  if (v == NULL)
    {
      if (g_error_matches (local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND)
          || g_error_matches (local, G_KEY_FILE_ERROR,
                              G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
        return TRUE;
      return fail (error, CONFIG_ERROR_VALUE, group, key, local->message);
    }
  g_strstrip (v);
  if (*v == '\0' || !g_utf8_validate (v, -1, NULL))
    return fail (error, CONFIG_ERROR_VALUE, group, key,
                 "empty or not UTF-8");
  for (const char *p = v; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      return fail (error, CONFIG_ERROR_VALUE, group, key,
                   "control character in value");
  g_free (*dst);
  *dst = g_steal_pointer (&v);
  return TRUE;
}

static gboolean
get_path (GKeyFile *kf, const char *base_dir, const char *group,
          const char *key, char **dst, GError **error)
{
  char *before = *dst;
  char *v = NULL;

  if (!get_string (kf, group, key, &v, error))
    return FALSE;
  if (v == NULL)
    return TRUE;
  g_free (before);
  *dst = resolve_path (base_dir, v);
  g_free (v);
  return TRUE;
}

static gboolean
get_uint (GKeyFile *kf, const char *group, const char *key, guint min,
          guint max, guint *dst, GError **error)
{
  g_autofree char *v = NULL;
  guint64 n = 0;

  if (!get_string (kf, group, key, &v, error))
    return FALSE;
  if (v == NULL)
    return TRUE;
  if (!g_ascii_string_to_unsigned (v, 10, min, max, &n, NULL))
    {
      g_autofree char *what = g_strdup_printf ("not a whole number from %u to %u",
                                               min, max);
      return fail (error, CONFIG_ERROR_VALUE, group, key, what);
    }
  *dst = (guint) n;
  return TRUE;
}

/* Maps a word to an enum value through a NULL-terminated word list. */
static gboolean
get_choice (GKeyFile *kf, const char *group, const char *key,
            const char *const *words, int *dst, GError **error)
{
  g_autofree char *v = NULL;

  if (!get_string (kf, group, key, &v, error))
    return FALSE;
  if (v == NULL)
    return TRUE;
  for (int i = 0; words[i] != NULL; i++)
    if (g_ascii_strcasecmp (v, words[i]) == 0)
      {
        *dst = i;
        return TRUE;
      }
  g_autofree char *all = g_strjoinv (" or ", (char **) words);
  g_autofree char *what = g_strdup_printf ("must be %s", all);
  return fail (error, CONFIG_ERROR_VALUE, group, key, what);
}

static gboolean
get_list (GKeyFile *kf, const char *group, const char *key, char ***dst,
          GError **error)
{
  g_autofree char *v = NULL;
  g_autoptr (GPtrArray) items = NULL;

  if (!get_string (kf, group, key, &v, error))
    return FALSE;
  if (v == NULL)
    return TRUE;
  items = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) parts = g_strsplit (v, ";", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    {
      g_strstrip (parts[i]);
      if (parts[i][0] != '\0')
        g_ptr_array_add (items, g_strdup (parts[i]));
    }
  g_ptr_array_add (items, NULL);
  g_strfreev (*dst);
  *dst = (char **) g_ptr_array_free (g_steal_pointer (&items), FALSE);
  return TRUE;
}

/* The uids of a group's listed (supplementary) members; names that do
 * not resolve are skipped. */
static void
add_group_members (const struct group *gr, GArray *members)
{
  g_auto (GStrv) names = g_strdupv (gr->gr_mem);

  /* Copied first: getpwnam may reuse the buffer getgrnam returned. */
  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    {
      struct passwd *pw = getpwnam (names[i]);
      if (pw != NULL)
        g_array_append_val (members, pw->pw_uid);
    }
}

/*
 * [daemon] KEY: group names or numbers into gids, and their listed
 * members into uids.  Membership is read here, at start and at each
 * reload, so that deciding about a peer never waits on the name service
 * (NSS, LDAP) on the main loop; a change to /etc/group takes effect at
 * the next SIGHUP.
 */
static gboolean
resolve_groups (GKeyFile *kf, const char *key, GArray *gids, GArray *members,
                GError **error)
{
  g_auto (GStrv) groups = NULL;

  if (!get_list (kf, "daemon", key, &groups, error))
    return FALSE;
  for (guint i = 0; groups != NULL && groups[i] != NULL; i++)
    {
      guint64 n;
      struct group *gr = getgrnam (groups[i]);
      if (gr == NULL && g_ascii_string_to_unsigned (groups[i], 10, 0, G_MAXUINT32 - 1,
                                                     &n, NULL))
        {
          gid_t gid = (gid_t) n;
          g_array_append_val (gids, gid);
          gr = getgrgid (gid);
          if (gr != NULL)
            add_group_members (gr, members);
          continue;
        }
      if (gr == NULL)
        return fail (error, CONFIG_ERROR_VALUE, "daemon", key, "no such group");
      g_array_append_val (gids, gr->gr_gid);
      add_group_members (gr, members);
    }
  return TRUE;
}

static gboolean
resolve_users (GKeyFile *kf, Config *cfg, GError **error)
{
  g_auto (GStrv) users = NULL;

  if (!get_list (kf, "daemon", "allowed_users", &users, error))
    return FALSE;
  for (guint i = 0; users != NULL && users[i] != NULL; i++)
    {
      guint64 n;
      struct passwd *pw = getpwnam (users[i]);
      uid_t uid;
      if (pw != NULL)
        uid = pw->pw_uid;
      else if (g_ascii_string_to_unsigned (users[i], 10, 0, G_MAXUINT32 - 1, &n, NULL))
        uid = (uid_t) n;
      else
        return fail (error, CONFIG_ERROR_VALUE, "daemon", "allowed_users",
                     "no such user");
      g_array_append_val (cfg->allowed_users, uid);
    }
  return resolve_groups (kf, "allowed_groups", cfg->allowed_groups,
                         cfg->allowed_group_members, error)
    && resolve_groups (kf, "status_groups", cfg->status_groups,
                       cfg->status_group_members, error);
}

/*
 * [daemon] user and group: whom the daemon becomes when started as root
 * (invitemaild.c drops to them once the socket is bound).  Resolved here,
 * at start and reload.  group defaults to the user's primary group.
 */
static gboolean
read_run_user (GKeyFile *kf, Config *cfg, GError **error)
{
  g_autofree char *group = NULL;
  struct passwd *pw;
  struct group *gr;

  if (!get_string (kf, "daemon", "user", &cfg->run_user, error)
      || !get_string (kf, "daemon", "group", &group, error))
    return FALSE;
  if (cfg->run_user == NULL)
    return group == NULL
      || fail (error, CONFIG_ERROR_VALUE, "daemon", "group", "needs user as well");
  if ((pw = getpwnam (cfg->run_user)) == NULL)
    return fail (error, CONFIG_ERROR_VALUE, "daemon", "user", "no such user");
  cfg->run_uid = pw->pw_uid;
  cfg->run_gid = pw->pw_gid;
  if (group == NULL)
    return TRUE;
  if ((gr = getgrnam (group)) == NULL)
    return fail (error, CONFIG_ERROR_VALUE, "daemon", "group", "no such group");
  cfg->run_gid = gr->gr_gid;
  return TRUE;
}

static gboolean
read_daemon (GKeyFile *kf, const char *dir, Config *cfg, GError **error)
{
  g_autofree char *mode = NULL;
  guint64 m = 0;

  if (!get_path (kf, dir, "daemon", "socket", &cfg->socket, error)
      || !get_string (kf, "daemon", "socket_group", &cfg->socket_group, error)
      || !get_string (kf, "daemon", "socket_mode", &mode, error)
      || !get_path (kf, dir, "daemon", "queue_db", &cfg->queue_db, error)
      || !get_path (kf, dir, "daemon", "audit_db", &cfg->audit_db, error)
      || !get_uint (kf, "daemon", "client_timeout", 1, 3600, &cfg->client_timeout, error)
      || !resolve_users (kf, cfg, error)
      || !read_run_user (kf, cfg, error))
    return FALSE;
  if (mode != NULL)
    {
      /* Never world-accessible: any local user could then send mail
       * in the organisation's name. */
      if (!g_ascii_string_to_unsigned (mode, 8, 0, 0770, &m, NULL) || (m & 07) != 0)
        return fail (error, CONFIG_ERROR_VALUE, "daemon", "socket_mode",
                     "octal mode without bits for others (at most 0770)");
      cfg->socket_mode = (guint) m;
    }
  if (strlen (cfg->socket) >= 108)
    return fail (error, CONFIG_ERROR_VALUE, "daemon", "socket",
                 "path longer than a Unix socket address allows");
  if (cfg->socket_group != NULL && getgrnam (cfg->socket_group) == NULL)
    return fail (error, CONFIG_ERROR_VALUE, "daemon", "socket_group",
                 "no such group");
  return TRUE;
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

static gboolean
read_organisation (GKeyFile *kf, Config *cfg, GError **error)
{
  if (!get_string (kf, "organisation", "name", &cfg->org_name, error)
      || !get_string (kf, "organisation", "from", &cfg->from, error)
      || !get_string (kf, "organisation", "envelope_from", &cfg->envelope_from, error)
      || !get_string (kf, "organisation", "message_id_domain",
                      &cfg->message_id_domain, error)
      || !get_string (kf, "organisation", "dpo_email", &cfg->dpo_email, error)
      || !get_string (kf, "organisation", "slogan", &cfg->slogan, error)
      || !get_string (kf, "organisation", "unit", &cfg->org_unit, error))
    return FALSE;
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
      g_autofree char *probe = g_strconcat ("x@", cfg->message_id_domain, NULL);
      char *ascii = NULL;
      Refusal why;
      if (!validate_address (probe, &ascii, &why))
        return fail (error, CONFIG_ERROR_VALUE, "organisation",
                     "message_id_domain", "not a domain name");
      g_free (cfg->message_id_domain);
      cfg->message_id_domain = g_strdup (ascii + 2);
      g_free (ascii);
    }
  return TRUE;
}

/* The keys that shape what the mail says: the zone its times are shown
 * in (an IANA name the system's zone database knows, so a typo cannot
 * quietly show UTC) and whom to call when the link fails. */
static gboolean
read_message_keys (GKeyFile *kf, Config *cfg, GError **error)
{
  if (!get_string (kf, "organisation", "timezone", &cfg->timezone, error)
      || !get_string (kf, "organisation", "contact", &cfg->contact, error))
    return FALSE;
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
read_invite (GKeyFile *kf, const char *dir, Config *cfg, GError **error)
{
  static const char *const to_words[] = { "none", "undisclosed", NULL };
  int to = cfg->to_header;

  if (!get_path (kf, dir, "invite", "templates_dir", &cfg->templates_dir, error)
      || !get_path (kf, dir, "invite", "signatures_dir", &cfg->signatures_dir, error)
      || !get_string (kf, "invite", "default_lang", &cfg->default_lang, error)
      || !get_list (kf, "invite", "link_hosts", &cfg->link_hosts, error)
      || !get_uint (kf, "invite", "max_recipients", 1, RECIPIENTS_HARD_MAX,
                    &cfg->max_recipients, error)
      || !get_choice (kf, "invite", "to_header", to_words, &to, error))
    return FALSE;
  cfg->to_header = (ToHeader) to;
  if (!g_regex_match_simple ("^[a-z]{2,3}$", cfg->default_lang, 0, 0))
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

static gboolean
read_transport (GKeyFile *kf, const char *dir, Config *cfg, GError **error)
{
  static const char *const type_words[] = { "file", "smtp", NULL };
  static const char *const tls_words[] = { "starttls", "none", NULL };
  int type = cfg->transport, tls = cfg->smtp_tls;
  guint timeout_s = cfg->smtp_timeout_ms / 1000;

  if (!get_choice (kf, "transport", "type", type_words, &type, error)
      || !get_path (kf, dir, "transport", "outbox_dir", &cfg->outbox_dir, error)
      || !get_string (kf, "smtp", "host", &cfg->smtp_host, error)
      || !get_uint (kf, "smtp", "port", 1, 65535, &cfg->smtp_port, error)
      || !get_choice (kf, "smtp", "tls", tls_words, &tls, error)
      || !get_path (kf, dir, "smtp", "ca_file", &cfg->smtp_ca_file, error)
      || !get_string (kf, "smtp", "auth_user", &cfg->smtp_auth_user, error)
      || !get_path (kf, dir, "smtp", "auth_password_file",
                    &cfg->smtp_auth_password_file, error)
      || !get_string (kf, "smtp", "helo_name", &cfg->smtp_helo_name, error)
      || !get_uint (kf, "smtp", "timeout", 1, SMTP_TIMEOUT_MAX_S, &timeout_s, error)
      || !get_uint (kf, "smtp", "connections", 1, 16, &cfg->smtp_connections, error))
    return FALSE;
  cfg->transport = (TransportType) type;
  cfg->smtp_tls = (TlsMode) tls;
  cfg->smtp_timeout_ms = timeout_s * 1000;
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
read_retry (GKeyFile *kf, Config *cfg, GError **error)
{
  if (!get_uint (kf, "retry", "first_delay", 1, RETRY_MAX_S,
                 &cfg->retry_first_delay, error)
      || !get_uint (kf, "retry", "max_delay", 1, RETRY_MAX_S,
                    &cfg->retry_max_delay, error)
      || !get_uint (kf, "retry", "max_age", 1, RETRY_MAX_S,
                    &cfg->retry_max_age, error))
    return FALSE;
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

/* [audit]: the key file defaults to audit.key beside audit_db, so the
 * daemon's state stays together. */
static gboolean
read_audit (GKeyFile *kf, const char *dir, Config *cfg, GError **error)
{
  if (!get_uint (kf, "audit", "seal_interval", 1, 24 * 3600,
                 &cfg->audit_seal_interval, error)
      || !get_uint (kf, "audit", "retention_days", 0, 100 * 366,
                    &cfg->audit_retention_days, error)
      || !get_path (kf, dir, "audit", "key_file", &cfg->audit_key_file, error)
      || !get_string (kf, "audit", "group", &cfg->audit_group, error))
    return FALSE;
  default_key_file (cfg);
  return TRUE;
}

/* [queue]: how long finished invites stay (queue.c, retention.c). */
static gboolean
read_queue (GKeyFile *kf, Config *cfg, GError **error)
{
  return get_uint (kf, "queue", "retention_days", 0, 100 * 366,
                   &cfg->queue_retention_days, error);
}

/* [limits]: what one uid may send, and how much may wait in the queue
 * in all (service.c, limits.c).  0 turns a limit off. */
static gboolean
read_limits (GKeyFile *kf, Config *cfg, GError **error)
{
  return get_uint (kf, "limits", "invites_per_minute", 0, 100000,
                   &cfg->limit_invites_per_minute, error)
    && get_uint (kf, "limits", "recipients_per_day", 0, 10000000,
                 &cfg->limit_recipients_per_day, error)
    && get_uint (kf, "limits", "queued_recipients", 0, 10000000,
                 &cfg->limit_queued_recipients, error);
}

static gint
compare_settings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Every "group.key=value" the file sets, sorted, for config_digest.
 * Values as the file has them (trimmed): they are the administrator's
 * words, and the file holds no secret. */
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
read_bounce (GKeyFile *kf, Config *cfg, GError **error)
{
  static const char *const yes_no[] = { "false", "true", NULL };
  int verp = cfg->bounce_verp ? 1 : 0;

  if (!get_choice (kf, "bounce", "verp", yes_no, &verp, error)
      || !get_string (kf, "bounce", "local_part", &cfg->bounce_local_part, error)
      || !get_string (kf, "bounce", "domain", &cfg->bounce_domain, error))
    return FALSE;
  cfg->bounce_verp = verp == 1;
  /* Letters, digits, '.', '-', '_' only, not '+': the token follows the
   * first '+', and the address goes verbatim into MAIL FROM. */
  if (strlen (cfg->bounce_local_part) > 32
      || !g_regex_match_simple ("^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
                                cfg->bounce_local_part, 0, 0))
    return fail (error, CONFIG_ERROR_VALUE, "bounce", "local_part",
                 "letters, digits, '.', '-' and '_' only, at most 32");
  if (cfg->bounce_domain != NULL)
    {
      g_autofree char *probe = g_strconcat ("x@", cfg->bounce_domain, NULL);
      char *ascii = NULL;
      Refusal why;
      if (!validate_address (probe, &ascii, &why))
        return fail (error, CONFIG_ERROR_VALUE, "bounce", "domain", "not a domain name");
      g_free (cfg->bounce_domain);
      cfg->bounce_domain = g_strdup (ascii + 2);
      g_free (ascii);
    }
  return TRUE;
}

/* One warning/critical pair; critical must be the worse one. */
static gboolean
get_threshold (GKeyFile *kf, const char *what, guint max, gboolean lower_is_worse,
               guint pair[2], GError **error)
{
  g_autofree char *w = g_strconcat (what, "_warning", NULL);
  g_autofree char *c = g_strconcat (what, "_critical", NULL);

  if (!get_uint (kf, "health", w, lower_is_worse ? 0 : 1, max, &pair[0], error)
      || !get_uint (kf, "health", c, lower_is_worse ? 0 : 1, max, &pair[1], error))
    return FALSE;
  if (lower_is_worse ? pair[1] > pair[0] : pair[1] < pair[0])
    return fail (error, CONFIG_ERROR_VALUE, "health", c,
                 lower_is_worse ? "must not be above the warning value"
                 : "must not be below the warning value");
  return TRUE;
}

/* [health]: thresholds of `invitemail health` (seconds, counts, % free). */
static gboolean
read_health (GKeyFile *kf, Config *cfg, GError **error)
{
  return get_threshold (kf, "queue", G_MAXINT, FALSE, cfg->health_queue, error)
    && get_threshold (kf, "deferred", 366 * 86400, FALSE, cfg->health_deferred, error)
    && get_threshold (kf, "failures", G_MAXINT, FALSE, cfg->health_failures, error)
    && get_threshold (kf, "relay", 366 * 86400, FALSE, cfg->health_relay, error)
    && get_threshold (kf, "seal", 366 * 86400, FALSE, cfg->health_seal, error)
    && get_threshold (kf, "disk", 100, TRUE, cfg->health_disk, error);
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
      || !read_daemon (kf, dir, cfg, error)
      || !read_organisation (kf, cfg, error)
      || !read_message_keys (kf, cfg, error)
      || !read_invite (kf, dir, cfg, error)
      || !read_transport (kf, dir, cfg, error)
      || !check_smtp (cfg, read_secrets, error)
      || !read_retry (kf, cfg, error)
      || !read_audit (kf, dir, cfg, error)
      || !read_queue (kf, cfg, error)
      || !read_limits (kf, cfg, error)
      || !read_bounce (kf, cfg, error)
      || !read_health (kf, cfg, error))
    return NULL;
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
