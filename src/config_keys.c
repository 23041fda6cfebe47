/*
 * config_keys.c - the table of configuration keys, and the typed hooks
 * of the keys that name users and groups.  See config_keys.h.
 *
 * What it trusts: the hooks get a value config.c already checked as a
 * string (trimmed, UTF-8, no control characters); names are looked up
 * in the system's user and group databases at load and reload only.
 *
 * Limits: ranges are in the rows; the hard cap of recipients is
 * RECIPIENTS_HARD_MAX (validate.h).
 */
#include "config_keys.h"

#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "validate.h"

#define RETRY_MAX_S (30 * 86400)
#define DAYS_MAX (100 * 366)
#define HEALTH_SECONDS_MAX (366 * 86400)

static gboolean
hook_fail (GError **error, const ConfigKey *key, const char *what)
{
  g_set_error (error, CONFIG_ERROR, CONFIG_ERROR_VALUE, "[%s] %s: %s",
               key->section, key->name, what);
  return FALSE;
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
 * Group names or numbers into gids, and their listed members into uids.
 * Membership is read here, at start and at each reload, so that deciding
 * about a peer never waits on the name service (NSS, LDAP) on the main
 * loop; a change to /etc/group takes effect at the next SIGHUP.
 */
static gboolean
resolve_groups (const ConfigKey *key, const char *value, GArray *gids,
                GArray *members, GError **error)
{
  g_auto (GStrv) groups = config_split_list (value);

  for (guint i = 0; groups[i] != NULL; i++)
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
        return hook_fail (error, key, "no such group");
      g_array_append_val (gids, gr->gr_gid);
      add_group_members (gr, members);
    }
  return TRUE;
}

static gboolean
hook_allowed_groups (void *p, const ConfigKey *key, const char *value, GError **error)
{
  Config *cfg = p;

  return resolve_groups (key, value, cfg->allowed_groups, cfg->allowed_group_members,
                         error);
}

static gboolean
hook_status_groups (void *p, const ConfigKey *key, const char *value, GError **error)
{
  Config *cfg = p;

  return resolve_groups (key, value, cfg->status_groups, cfg->status_group_members,
                         error);
}

/* User names or numeric uids. */
static gboolean
hook_allowed_users (void *p, const ConfigKey *key, const char *value, GError **error)
{
  Config *cfg = p;
  g_auto (GStrv) users = config_split_list (value);

  for (guint i = 0; users[i] != NULL; i++)
    {
      guint64 n;
      struct passwd *pw = getpwnam (users[i]);
      uid_t uid;
      if (pw != NULL)
        uid = pw->pw_uid;
      else if (g_ascii_string_to_unsigned (users[i], 10, 0, G_MAXUINT32 - 1, &n, NULL))
        uid = (uid_t) n;
      else
        return hook_fail (error, key, "no such user");
      g_array_append_val (cfg->allowed_users, uid);
    }
  return TRUE;
}

static const char *const transport_words[] = { "file", "smtp", NULL };
static const char *const tls_words[] = { "starttls", "none", NULL };
static const char *const to_header_words[] = { "none", "undisclosed", NULL };
static const char *const bool_words[] = { "false", "true", NULL };

#define AT(field) offsetof (Config, field)
#define STR(sec, key, field, def, help) \
  { sec, key, CONFIG_TYPE_STRING, AT (field), def, NULL, 0, 0, 0, NULL, NULL, FALSE, help }
#define PATH(sec, key, field, def, shown, help) \
  { sec, key, CONFIG_TYPE_PATH, AT (field), def, shown, 0, 0, 0, NULL, NULL, FALSE, help }
#define UINT(sec, key, field, def, min, max, help) \
  { sec, key, CONFIG_TYPE_UINT, AT (field), def, NULL, min, max, 0, NULL, NULL, FALSE, help }
#define CHOICE(sec, key, field, def, words, help) \
  { sec, key, CONFIG_TYPE_CHOICE, AT (field), def, NULL, 0, 0, 0, words, NULL, FALSE, help }
#define HOOK(sec, key, hook, help) \
  { sec, key, CONFIG_TYPE_HOOK, 0, NULL, NULL, 0, 0, 0, NULL, hook, FALSE, help }
#define HEALTH(what, i, def, min, max, help) \
  UINT ("health", #what "_" #i, health_##what[i##_AT], def, min, max, help)
#define warning_AT 0
#define critical_AT 1

const ConfigKey config_keys[] = {
  PATH ("daemon", "socket", socket, "/run/invitemail/invitemail.sock", NULL,
        "Unix socket requests arrive on, shorter than 108 bytes"),
  { "daemon", "socket_mode", CONFIG_TYPE_MODE, AT (socket_mode), "0660", NULL, 0, 0770, 0,
    NULL, NULL, FALSE, "socket permissions, never a bit for others" },
  STR ("daemon", "socket_group", socket_group, NULL,
       "group given to the socket (default: the daemon's)"),
  HOOK ("daemon", "allowed_users", hook_allowed_users,
        "users (names or uids, ';'-separated) who may make requests"),
  HOOK ("daemon", "allowed_groups", hook_allowed_groups,
        "groups (names or gids) whose members may make requests"),
  HOOK ("daemon", "status_groups", hook_status_groups,
        "groups whose members may see any invite's status"),
  PATH ("daemon", "queue_db", queue_db, "queue.db", NULL, "the queue database"),
  PATH ("daemon", "audit_db", audit_db, "audit.db", NULL, "the audit database"),
  UINT ("daemon", "client_timeout", client_timeout, "30", 1, 3600,
        "seconds a client may stay silent"),
  STR ("daemon", "user", run_user, NULL, "whom to become when started as root"),
  STR ("daemon", "group", run_group, NULL, "group to become (default: the user's)"),

  STR ("organisation", "name", org_name, "Region Exempel", "the organisation's name"),
  STR ("organisation", "from", from, "evisit@example.org", "the From address"),
  STR ("organisation", "envelope_from", envelope_from, NULL,
       "the envelope sender (default: from)"),
  STR ("organisation", "message_id_domain", message_id_domain, NULL,
       "domain of Message-IDs (default: from's)"),
  STR ("organisation", "dpo_email", dpo_email, "dataskyddsombud@example.org",
       "the data protection officer's address"),
  STR ("organisation", "slogan", slogan,
       "Digitalt när det är möjligt, fysiskt när det behövs", "the footer's line"),
  STR ("organisation", "unit", org_unit, NULL, "unit recorded in the audit"),
  STR ("organisation", "timezone", timezone, "Europe/Stockholm",
       "IANA zone the mail shows times in"),
  STR ("organisation", "contact", contact, NULL,
       "whom to call when the link fails, at most 200 bytes"),

  PATH ("invite", "templates_dir", templates_dir, PKGDATADIR "/templates",
        "/usr/share/invitemail/templates", "folder of the invitation templates"),
  PATH ("invite", "signatures_dir", signatures_dir, PKGDATADIR "/signatures",
        "/usr/share/invitemail/signatures", "folder of the signatures"),
  STR ("invite", "default_lang", default_lang, "sv",
       "language when a request names none (2 or 3 letters)"),
  { "invite", "link_hosts", CONFIG_TYPE_LIST, AT (link_hosts), "*.example.org;example.org",
    NULL, 0, 0, 0, NULL, NULL, FALSE, "hosts a meeting link may point to" },
  UINT ("invite", "max_recipients", max_recipients, "10", 1, RECIPIENTS_HARD_MAX,
        "recipients per request"),
  CHOICE ("invite", "to_header", to_header, "none", to_header_words,
          "To header: none or undisclosed"),

  CHOICE ("transport", "type", transport, "file", transport_words,
          "file (outbox_dir) or smtp (the relay)"),
  PATH ("transport", "outbox_dir", outbox_dir, "outbox", NULL,
        "folder the file transport writes to"),

  STR ("smtp", "host", smtp_host, "localhost", "the relay"),
  UINT ("smtp", "port", smtp_port, "587", 1, 65535, "the relay's port"),
  CHOICE ("smtp", "tls", smtp_tls, "starttls", tls_words,
          "starttls, or none toward a loopback relay only"),
  PATH ("smtp", "ca_file", smtp_ca_file, NULL, NULL,
        "CA certificates for the relay (default: the system's)"),
  STR ("smtp", "auth_user", smtp_auth_user, NULL, "AUTH user, at most 255 bytes"),
  { "smtp", "auth_password_file", CONFIG_TYPE_PATH, AT (smtp_auth_password_file), NULL,
    NULL, 0, 0, 0, NULL, NULL, TRUE,
    "file holding the AUTH password, the daemon's user's, mode 0600" },
  STR ("smtp", "helo_name", smtp_helo_name, NULL, "EHLO name (default: the host name)"),
  { "smtp", "timeout", CONFIG_TYPE_UINT, AT (smtp_timeout_ms), "60", NULL, 1, 3600, 1000,
    NULL, NULL, FALSE, "seconds per SMTP step" },
  UINT ("smtp", "connections", smtp_connections, "2", 1, 16, "parallel connections"),

  UINT ("retry", "first_delay", retry_first_delay, "60", 1, RETRY_MAX_S,
        "seconds before the first retry"),
  UINT ("retry", "max_delay", retry_max_delay, "900", 1, RETRY_MAX_S,
        "longest wait between retries"),
  UINT ("retry", "max_age", retry_max_age, "86400", 1, RETRY_MAX_S,
        "seconds after which a recipient expires"),

  UINT ("queue", "retention_days", queue_retention_days, "30", 0, DAYS_MAX,
        "days finished invites stay (0: forever)"),

  UINT ("audit", "seal_interval", audit_seal_interval, "900", 1, 24 * 3600,
        "seconds between seals"),
  UINT ("audit", "retention_days", audit_retention_days, "1830", 0, DAYS_MAX,
        "days audit rows stay (0: forever)"),
  PATH ("audit", "key_file", audit_key_file, NULL, "audit.key",
        "the sealing key (default: audit.key beside audit_db)"),
  STR ("audit", "group", audit_group, NULL, "group that may read the audit files"),

  UINT ("limits", "invites_per_minute", limit_invites_per_minute, "60", 0, 100000,
        "invites per uid per minute (0: no limit)"),
  UINT ("limits", "recipients_per_day", limit_recipients_per_day, "5000", 0, 10000000,
        "recipients per uid over 24 h (0: no limit)"),
  UINT ("limits", "queued_recipients", limit_queued_recipients, "20000", 0, 10000000,
        "undelivered recipients in all (0: no limit)"),

  CHOICE ("bounce", "verp", bounce_verp, "true", bool_words,
          "a return address per recipient"),
  STR ("bounce", "local_part", bounce_local_part, "bounces",
       "local part of the return address"),
  STR ("bounce", "domain", bounce_domain, NULL,
       "domain of the return address (default: envelope_from's)"),

  HEALTH (queue, warning, "100", 1, G_MAXINT, "recipients waiting"),
  HEALTH (queue, critical, "1000", 1, G_MAXINT, "recipients waiting"),
  HEALTH (deferred, warning, "1800", 1, HEALTH_SECONDS_MAX,
          "age in seconds of the oldest deferred"),
  HEALTH (deferred, critical, "14400", 1, HEALTH_SECONDS_MAX,
          "age in seconds of the oldest deferred"),
  HEALTH (failures, warning, "5", 1, G_MAXINT, "failed or bounced in the last hour"),
  HEALTH (failures, critical, "50", 1, G_MAXINT, "failed or bounced in the last hour"),
  HEALTH (relay, warning, "1800", 1, HEALTH_SECONDS_MAX,
          "seconds since the relay last took one"),
  HEALTH (relay, critical, "14400", 1, HEALTH_SECONDS_MAX,
          "seconds since the relay last took one"),
  HEALTH (seal, warning, "3600", 1, HEALTH_SECONDS_MAX, "seconds since the last seal"),
  HEALTH (seal, critical, "21600", 1, HEALTH_SECONDS_MAX, "seconds since the last seal"),
  HEALTH (disk, warning, "10", 0, 100, "percent free in the state folders"),
  HEALTH (disk, critical, "5", 0, 100, "percent free in the state folders"),

  { NULL, NULL, CONFIG_TYPE_STRING, 0, NULL, NULL, 0, 0, 0, NULL, NULL, FALSE, NULL }
};

guint
config_keys_count (void)
{
  guint n = 0;

  while (config_keys[n].section != NULL)
    n++;
  return n;
}

const ConfigKey *
config_key_find (const char *section, const char *name)
{
  for (const ConfigKey *k = config_keys; k->section != NULL; k++)
    if (strcmp (k->section, section) == 0 && strcmp (k->name, name) == 0)
      return k;
  return NULL;
}

gboolean
config_section_known (const char *section)
{
  for (const ConfigKey *k = config_keys; k->section != NULL; k++)
    if (strcmp (k->section, section) == 0)
      return TRUE;
  return FALSE;
}

const char *
config_key_shown_default (const ConfigKey *key)
{
  return key->shown != NULL ? key->shown : key->def;
}

char **
config_split_list (const char *value)
{
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) parts = g_strsplit (value, ";", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      g_strstrip (parts[i]);
      if (parts[i][0] != '\0')
        g_ptr_array_add (items, g_strdup (parts[i]));
    }
  g_ptr_array_add (items, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&items), FALSE);
}

static void
print_range (GString *out, const ConfigKey *k)
{
  if (k->type == CONFIG_TYPE_UINT)
    g_string_append_printf (out, " (%u to %u)", k->min, k->max);
  else if (k->type == CONFIG_TYPE_MODE)
    g_string_append_printf (out, " (octal, at most %04o)", k->max);
  else if (k->type == CONFIG_TYPE_CHOICE)
    {
      g_autofree char *all = g_strjoinv (" or ", (char **) k->words);
      g_string_append_printf (out, " (%s)", all);
    }
}

char *
config_keys_print_defaults (void)
{
  GString *out = g_string_new (NULL);
  const char *section = NULL;

  for (const ConfigKey *k = config_keys; k->section != NULL; k++)
    {
      if (section == NULL || strcmp (section, k->section) != 0)
        g_string_append_printf (out, "%s[%s]\n", section ? "\n" : "", k->section);
      section = k->section;
      g_string_append_printf (out, "# %s", k->help);
      print_range (out, k);
      if (k->def != NULL)
        g_string_append_printf (out, "\n%s = %s\n", k->name, k->def);
      else
        g_string_append_printf (out, "\n#%s =\n", k->name);
    }
  return g_string_free (out, FALSE);
}
