/*
 * config.h - the daemon's configuration: one INI file read with GKeyFile.
 *
 * Every key has one row in the table of config_keys.c (type, default,
 * range, help), so the daemon runs with an empty or absent file.  Relative paths are resolved against the
 * folder of the file, or the current folder when there is no file.
 *
 * SECURITY: the file is trusted to be written by an administrator, but
 * its values are still checked (types, ranges, that tls=none is only
 * used toward loopback) because a typo must not turn into a leak.
 * The SMTP password is read from auth_password_file through one checked
 * descriptor (secret.c): the daemon's user's, closed to group and
 * others; it lives in a Secret, wiped on free.
 */
#ifndef INVITEMAIL_CONFIG_H
#define INVITEMAIL_CONFIG_H

#include <glib.h>

#include "digest.h"
#include <sys/types.h>

#include "secret.h"

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/invitemail/invitemail.conf"

typedef enum { TRANSPORT_FILE, TRANSPORT_SMTP } TransportType;
typedef enum { TLS_STARTTLS, TLS_NONE } TlsMode;
typedef enum { TO_HEADER_NONE, TO_HEADER_UNDISCLOSED } ToHeader;


typedef struct {
  char *path;                 /* the file read, or NULL for defaults only */

  /* [daemon] */
  char *socket;               /* default /run/invitemail/invitemail.sock */
  guint socket_mode;          /* default 0660 */
  char *socket_group;         /* default NULL: the daemon's group */
  GArray *allowed_users;      /* uid_t; empty = only the daemon's uid and root */
  GArray *allowed_groups;     /* gid_t */
  GArray *allowed_group_members;  /* uid_t: listed members, read at load */
  GArray *status_groups;      /* gid_t: may see any invite's status */
  GArray *status_group_members;   /* uid_t: listed members, read at load */
  char *queue_db;             /* default queue.db */
  char *audit_db;             /* default audit.db */
  guint client_timeout;       /* seconds a client may stay silent, default 30 */
  char *run_user;             /* key `user`: who to become when started as
                               * root; NULL = not set */
  uid_t run_uid;              /* its uid, resolved at load */
  char *run_group;            /* key `group`: NULL = the user's primary group */
  gid_t run_gid;              /* key `group`, else the user's primary group */

  /* [organisation] */
  char *org_name;             /* default "Region Exempel" */
  char *from;                 /* default "evisit@example.org" */
  char *envelope_from;        /* default = from */
  char *message_id_domain;    /* default = domain of from */
  char *dpo_email;            /* default "dataskyddsombud@example.org" */
  char *slogan;               /* default "Digitalt när det är möjligt,
                                 fysiskt när det behövs" */
  char *org_unit;             /* key `unit`, default NULL: for the audit */
  char *timezone;             /* IANA zone the mail shows times in,
                                 default "Europe/Stockholm" */
  char *contact;              /* whom to call when the link fails (phone
                                 or words), default NULL */

  /* [invite] */
  char *templates_dir;        /* default PKGDATADIR/templates */
  char *signatures_dir;       /* default PKGDATADIR/signatures */
  char *default_lang;         /* default "sv" */
  char **link_hosts;          /* default {"*.example.org", NULL} */
  guint max_recipients;       /* default 10, at most RECIPIENTS_HARD_MAX */
  ToHeader to_header;         /* default none */

  /* [transport] */
  TransportType transport;    /* default file */
  char *outbox_dir;           /* default outbox */

  /* [smtp] */
  char *smtp_host;            /* default localhost */
  guint smtp_port;            /* default 587 */
  TlsMode smtp_tls;           /* default starttls */
  char *smtp_ca_file;         /* default NULL: system store */
  char *smtp_auth_user;       /* default NULL: no AUTH */
  char *smtp_auth_password_file;
  Secret smtp_password;       /* read from the file at load */
  char *smtp_helo_name;       /* default: g_get_host_name() */
  guint smtp_timeout_ms;      /* key `timeout` in seconds, default 60 */
  guint smtp_connections;     /* parallel connections (workers), default 2 */

  /* [retry] (seconds) */
  guint retry_first_delay;    /* default 60 */
  guint retry_max_delay;      /* default 900 */
  guint retry_max_age;        /* default 86400 */

  /* [audit] */
  guint audit_seal_interval;  /* seconds between seals, default 900 */
  guint audit_retention_days; /* default 1830 (five years); 0 = forever */
  char *audit_key_file;       /* default audit.key beside audit_db */
  char *audit_group;          /* default NULL: audit files stay 0600 */

  /* [queue] */
  guint queue_retention_days; /* default 30; 0 = keep forever */

  /* [limits] per uid (root and the daemon's own uid are not limited);
   * 0 = no limit */
  guint limit_invites_per_minute;  /* default 60 */
  guint limit_recipients_per_day;  /* default 5000, over the last 24 h */
  guint limit_queued_recipients;   /* all callers: undelivered, default 20000 */

  /* [bounce] each recipient's envelope sender LOCAL+TOKEN@DOMAIN */
  gboolean bounce_verp;       /* key `verp`, default true */
  char *bounce_local_part;    /* default "bounces" */
  char *bounce_domain;        /* default NULL: the domain of envelope_from */

  /* [health] {warning, critical} of `invitemail health` */
  guint health_queue[2];      /* recipients waiting, default 100, 1000 */
  guint health_deferred[2];   /* age (s) of the oldest deferred, 1800, 14400 */
  guint health_failures[2];   /* failed + bounced in the last hour, 5, 50 */
  guint health_relay[2];      /* s since the relay last took one, with work
                               * waiting, 1800, 14400 */
  guint health_seal[2];       /* s since the last audit seal, 3600, 21600 */
  guint health_disk[2];       /* % free in the state folder, 10, 5 */

  /* What the file set, one "group.key=value" per entry, sorted: the
   * audit's configuration hash and the names of changed keys
   * (config_digest.c).  Empty for the embedded defaults. */
  char **file_settings;
} Config;

GQuark config_error_quark (void);
#define CONFIG_ERROR (config_error_quark ())
typedef enum {
  CONFIG_ERROR_READ,      /* file unreadable or not INI */
  CONFIG_ERROR_KEY,       /* unknown section or key */
  CONFIG_ERROR_VALUE,     /* a value of the wrong type or out of range */
  CONFIG_ERROR_SECRET     /* password file missing or readable by others */
} ConfigError;

/* A Config with every embedded default, paths relative to the cwd. */
Config *config_defaults (void);

/*
 * Reads path (NULL = defaults only).  Unknown sections or keys are
 * errors: a misspelt key must not silently fall back to a default.
 * Returns NULL with *error set on the first fault (transfer full).
 */
Config *config_load (const char *path, GError **error);

/* For the client programs (invitemail, invitemail audit): the same
 * checks, but the SMTP password file is never opened, so staff and
 * compliance can read the socket and audit paths without the secret. */
Config *config_load_public (const char *path, GError **error);

void config_free (Config *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Config, config_free)

/*
 * Values still at their shipped examples, one plain sentence each:
 * the example organisation name and addresses, link hosts or Message-ID
 * domain in example domains (example.org/com/net, .example, .test,
 * .invalid, .localhost).  For --check-config's warnings; never fatal,
 * as the quick start runs on exactly these.  (transfer full)
 */
GPtrArray *config_placeholders (const Config *cfg);

/* ---- configuration evidence (config_digest.c) ------------------------ */

/* Hex SHA-256 over the file's settings (file_settings, one per line),
 * into out[SHA256_HEX_SIZE]: equal files give equal hashes whatever their layout.
 * Secrets are never in the file (the SMTP password has its own file),
 * and the password file's contents are not hashed. */
void config_digest (const Config *cfg, char out[SHA256_HEX_SIZE]);

/* The keys whose values differ between two configurations, sorted and
 * joined by ','; "smtp.password" when the password file's contents
 * changed.  Never a value.  "" when none. (transfer full) */
char *config_changed_keys (const Config *old, const Config *new);

/* True for a literal loopback address (127.0.0.0/8 as a strict dotted
 * quad, "::1", "[::1]") and for "localhost" when every address it
 * resolves to is one of those.  Anything else, "127.0.0.300" included,
 * is a name that DNS could send anywhere: FALSE. */
gboolean config_host_is_loopback (const char *host);

#endif
