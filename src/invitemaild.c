/*
 * invitemaild.c - the daemon's entry point: options, start-up checks,
 * the main loop, and an orderly stop.
 *
 * Start-up is the only place that may exit on error (sysexits codes
 * from exitcodes.h).  Order matters: everything that can be wrong with
 * the configuration, templates, notice, signature, logo and TLS
 * settings is checked before the socket is bound, so a broken notice
 * means the daemon never takes a request.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

#include <glib-unix.h>

#include "audit.h"
#include "audit_read.h"
#include "audit_seal.h"
#include "config.h"
#include "commit.h"
#include "config_keys.h"
#include "control.h"
#include "delivery.h"
#include "evidence.h"
#include "exitcodes.h"
#include "health.h"
#include "gate.h"
#include "mime.h"
#include "notify.h"
#include "privilege.h"
#include "queue.h"
#include "render.h"
#include "sealer.h"
#include "retention.h"
#include "service.h"
#include "transport.h"
#include "version.h"

typedef struct {
  char *config_path;
  gboolean foreground;
  gboolean check_config;
  gboolean print_defaults;
  gboolean version;
} Options;

/* How long a stop waits for answers and for the SMTP batch in flight. */
#define STOP_ANSWER_WAIT_S 5
#define STOP_DELIVERY_WAIT_S 10

typedef struct {
  Config *cfg;
  Templates *templates;
  Audit *audit;
  Gate *gate;               /* every row while running goes through it */
  Sealer *sealer;
  gboolean started;         /* daemon_start is in the audit */
  Queue *queue;             /* the main thread's reader, for status */
  Committer *committer;
  Delivery *delivery;
  Retention *retention;     /* queue and outbox retention, own thread */
  Service *service;
  Control *control;
  GMainLoop *loop;
  gint64 stop_deadline;     /* monotonic; 0 = not stopping */
  gboolean delivery_left;   /* the worker did not finish in time */
  gint64 last_seal;         /* unix s of the newest seal known; 0 = none */
  gboolean watchdog_held;   /* pings withheld: delivery not alive */
} Daemon;

static gboolean use_syslog = FALSE;

/* Operational log: stderr in the foreground (journald adds the time),
 * syslog when detached.  Messages never carry addresses or links. */
static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data)
{
  const char *msg = NULL;
  const char *tag = "info";
  int prio = LOG_INFO;

  for (gsize i = 0; i < n; i++)
    if (strcmp (fields[i].key, "MESSAGE") == 0)
      msg = fields[i].value;
  if (msg == NULL)
    return G_LOG_WRITER_UNHANDLED;
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    tag = "error", prio = LOG_ERR;
  else if (level & G_LOG_LEVEL_WARNING)
    tag = "warning", prio = LOG_WARNING;
  else if (level & G_LOG_LEVEL_DEBUG)
    return G_LOG_WRITER_HANDLED;
  if (use_syslog)
    syslog (prio, "%s", msg);
  else
    fprintf (stderr, "invitemaild: %s: %s\n", tag, msg);
  return G_LOG_WRITER_HANDLED;
}

static gboolean
parse_options (int *argc, char ***argv, Options *o)
{
  g_autoptr (GError) error = NULL;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config_path,
      "Read configuration from FILE (default " CONFIG_DEFAULT_PATH
      ", or the embedded defaults when it does not exist)", "FILE" },
    { "foreground", 'f', 0, G_OPTION_ARG_NONE, &o->foreground,
      "Stay in the foreground and log to standard error", NULL },
    { "check-config", 0, 0, G_OPTION_ARG_NONE, &o->check_config,
      "Check configuration, templates, notice, signature, logo and TLS "
      "settings, say what is wrong, and exit (0 when all is right)", NULL },
    { "print-defaults", 0, 0, G_OPTION_ARG_NONE, &o->print_defaults,
      "Print every configuration key at its default, with its range, and exit",
      NULL },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &o->version, "Print the version", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- secure invitation mailer daemon");

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx,
    "Takes invite requests on a local Unix socket, renders each mail with the\n"
    "mandatory privacy notice, signature and logo, queues it durably and sends\n"
    "it with every recipient in the SMTP envelope only.  See invitemaild(8).\n"
    "Started as root it needs [daemon] user: it binds its socket, then drops\n"
    "to that user; without it, it refuses to run.\n\n"
    "Exit codes: 0 ok, 64 usage, 69 socket unavailable, 70 internal error,\n"
    "78 configuration, template or notice wrong.");
  if (!g_option_context_parse (ctx, argc, argv, &error))
    {
      fprintf (stderr, "invitemaild: %s (try --help)\n", error->message);
      return FALSE;
    }
  return TRUE;
}

/* -c FILE, else the default file when it exists, else embedded defaults. */
static Config *
load_config (const char *path, GError **error)
{
  if (path == NULL && g_file_test (CONFIG_DEFAULT_PATH, G_FILE_TEST_EXISTS))
    path = CONFIG_DEFAULT_PATH;
  return config_load (path, error);
}

static int
fail_start (const char *what, const GError *error)
{
  g_critical ("%s: %s", what, error->message);
  return exit_code_for_error (error) == EXIT_CONFIG ? EXIT_CONFIG : EXIT_INTERNAL;
}

/* Shipped examples still in use: warnings, not errors, since the quick
 * start runs on exactly these; a production system should show none. */
static void
print_placeholders (Daemon *d)
{
  g_autoptr (GPtrArray) cfg = config_placeholders (d->cfg);
  g_autoptr (GPtrArray) tpl = templates_placeholders (d->templates);

  for (guint i = 0; i < cfg->len; i++)
    printf ("warning: placeholder: %s\n", (const char *) g_ptr_array_index (cfg, i));
  for (guint i = 0; i < tpl->len; i++)
    printf ("warning: placeholder: %s\n", (const char *) g_ptr_array_index (tpl, i));
}

/*
 * A daemon that keeps root turns any bug into a root compromise, so
 * started as root it needs [daemon] user to drop to (like Postfix's
 * mail_owner).  Says what to set, on the terminal: this is before any
 * fork.
 */
static gboolean
root_allowed (const Config *cfg)
{
  if (geteuid () != 0 || cfg->run_user != NULL)
    return TRUE;
  fprintf (stderr,
           "invitemaild: started as root without [daemon] user: refusing to run "
           "as root.\n"
           "invitemaild: set [daemon] user (and optionally group) in %s to the "
           "unprivileged account the daemon should run as, e.g.\n"
           "    [daemon]\n    user = invitemail\n"
           "invitemaild: it then binds its socket and takes its files as root and "
           "drops to that user; or start it as that user (systemd: User=).\n",
           cfg->path ? cfg->path : "the configuration file (-c FILE)");
  return FALSE;
}

static int
check_config (Daemon *d)
{
  g_autoptr (GError) error = NULL;
  Transport *t = transport_new (d->cfg, &error);

  if (t == NULL)
    {
      fprintf (stderr, "invitemaild: transport: %s\n", error->message);
      return EXIT_CONFIG;
    }
  transport_free (t);
  printf ("configuration ok: %s\n", d->cfg->path ? d->cfg->path : "(embedded defaults)");
  printf ("  templates: %s\n  signatures: %s\n", d->cfg->templates_dir,
          d->cfg->signatures_dir);
  printf ("  transport: %s\n", d->cfg->transport == TRANSPORT_SMTP ? "smtp" : "file");
  printf ("  keys set: %u of %u, the rest at their defaults (--print-defaults)\n",
          g_strv_length (d->cfg->file_settings), config_keys_count ());
  if (d->cfg->run_user != NULL)
    printf ("  user: %s (uid %lu, gid %lu) when started as root\n", d->cfg->run_user,
            (unsigned long) d->cfg->run_uid, (unsigned long) d->cfg->run_gid);
  else if (geteuid () == 0)
    printf ("warning: no [daemon] user: started as root, the daemon would refuse "
            "to run; set user = ACCOUNT\n");
  print_placeholders (d);
  return EXIT_OK;
}

/* Through the gate: a failure closes it (and is logged there). */
static gboolean
audit_daemon_event (Daemon *d, AuditEvent ev, const char *detail, GError **error)
{
  AuditRecord rec = { .event = ev, .peer_uid = -1, .detail = detail };

  return gate_append (d->gate, &rec, 1, error);
}

/* config_loaded / config_reloaded: the file, a hash of its settings and,
 * after a reload, the keys that changed (never a value). */
static gboolean
audit_config_event (Daemon *d, AuditEvent ev, const Config *old, GError **error)
{
  g_autofree char *changed = old ? config_changed_keys (old, d->cfg) : NULL;
  g_autofree char *detail = NULL;
  char digest[SHA256_HEX_SIZE];

  config_digest (d->cfg, digest);
  detail = evidence_config (digest, changed, d->cfg->path ? d->cfg->path
                            : "(embedded defaults)");
  return audit_daemon_event (d, ev, detail, error);
}

/* Quits once every accepted request has been answered, or at the
 * deadline: what is committed stays committed either way. */
static gboolean
stop_when_answered (gpointer data)
{
  Daemon *d = data;
  guint busy = control_drain (d->control);

  if ((busy == 0 && committer_pending (d->committer) == 0)
      || g_get_monotonic_time () > d->stop_deadline)
    {
      g_main_loop_quit (d->loop);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_stop_signal (gpointer data)
{
  Daemon *d = data;

  if (d->stop_deadline != 0)
    return G_SOURCE_CONTINUE;
  g_message ("stopping on signal: no new requests, answering those in hand");
  notify_stopping ();
  d->stop_deadline = g_get_monotonic_time () + STOP_ANSWER_WAIT_S * G_USEC_PER_SEC;
  control_stop_accepting (d->control);
  g_timeout_add (20, stop_when_answered, d);
  return G_SOURCE_CONTINUE;
}

/* The old worker finishes its batch in its own time; then its
 * configuration and templates can go. */
typedef struct {
  Delivery *delivery;
  Config *cfg;
  Templates *templates;
} Retired;

static gpointer
retire_thread (gpointer data)
{
  Retired *r = data;

  delivery_stop (r->delivery);
  templates_free (r->templates);
  config_free (r->cfg);
  g_free (r);
  return NULL;
}

static gboolean
reload_compatible (const Config *old, const Config *new, GError **error)
{
  if (g_strcmp0 (old->socket, new->socket) != 0
      || g_strcmp0 (old->queue_db, new->queue_db) != 0
      || g_strcmp0 (old->audit_db, new->audit_db) != 0
      || g_strcmp0 (old->run_user, new->run_user) != 0
      || old->run_uid != new->run_uid || old->run_gid != new->run_gid)
    {
      g_set_error (error, CONFIG_ERROR, CONFIG_ERROR_VALUE,
                   "socket, queue_db, audit_db, user and group change only "
                   "with a restart");
      return FALSE;
    }
  return TRUE;
}

/*
 * SIGHUP: configuration and templates are loaded and checked in full,
 * and a new delivery worker is started on them, before anything is
 * switched; any failure leaves the running configuration untouched.
 * No crash recovery here: the retired workers finish and record the
 * recipients they hold, and the new ones never take those (they are
 * `sending`, which no claim selects).
 */
static void
reload (Daemon *d)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (Config) cfg = config_load (d->cfg->path, &error);
  g_autoptr (Templates) t = NULL;
  Delivery *fresh = NULL;
  Retired *old;

  /* Fail closed: a configuration change that cannot be audited does
   * not happen. */
  if (!gate_is_open (d->gate))
    {
      g_warning ("reload refused, the running configuration stays: the audit"
                 " cannot be written");
      return;
    }
  if (cfg == NULL || !reload_compatible (d->cfg, cfg, &error)
      || (t = templates_load (cfg->templates_dir, cfg->signatures_dir, &error)) == NULL
      || (fresh = delivery_start (cfg, d->gate, &error)) == NULL)
    {
      g_warning ("reload refused, the running configuration stays: %s", error->message);
      audit_daemon_event (d, AUDIT_CONFIG_REFUSED, error->message, NULL);
      return;
    }
  old = g_new0 (Retired, 1);
  old->delivery = d->delivery;
  old->cfg = d->cfg;
  old->templates = d->templates;
  d->cfg = g_steal_pointer (&cfg);
  d->templates = g_steal_pointer (&t);
  d->delivery = fresh;
  service_set_config (d->service, d->cfg, d->templates);
  control_set_config (d->control, d->cfg);
  committer_set_on_stored (d->committer, delivery_wake_stored, d->delivery);
  retention_set_config (d->retention, d->cfg);
  if (!audit_config_event (d, AUDIT_CONFIG_RELOADED, old->cfg, &error))
    g_critical ("configuration reloaded but not audited: %s", error->message);
  g_thread_unref (g_thread_new ("retire", retire_thread, old));
  g_message ("configuration and templates reloaded");
}

static gboolean
on_hup (gpointer data)
{
  Daemon *d = data;

  if (d->stop_deadline != 0)
    return G_SOURCE_CONTINUE;
  notify_reloading ();
  reload (d);
  notify_ready ("reload handled");
  return G_SOURCE_CONTINUE;
}

/* systemd's watchdog: pinged from the main loop, so a wedged loop is
 * restarted; at half the interval, as sd_watchdog_enabled(3) advises.
 * Only while delivery is alive too (delivery_alive): a stuck or dead
 * worker would otherwise leave accepted invites unsent behind a service
 * that looks healthy; without pings the manager restarts the daemon,
 * and recovery retries what was in flight. */
static gboolean
on_watchdog (gpointer data)
{
  Daemon *d = data;

  if (delivery_alive (d->delivery, g_get_monotonic_time ()))
    {
      if (d->watchdog_held)
        g_message ("delivery alive again: watchdog pings resumed");
      d->watchdog_held = FALSE;
      notify_watchdog_ping ();
    }
  else if (!d->watchdog_held)
    {
      d->watchdog_held = TRUE;
      g_warning ("a delivery worker is stuck or gone: watchdog pings withheld");
    }
  return G_SOURCE_CONTINUE;
}

/* ---- health (request=health, `invitemail health`) ----------------------- */

static gboolean
newest_seal (const AuditRow *row, gpointer data)
{
  gint64 *t = data;

  *t = MAX (*t, row->time_ms / 1000);
  return TRUE;
}

/* At start: the newest seal in the file, looked for only as far back
 * as the critical age (older is critical either way). */
static void
load_last_seal (Daemon *d)
{
  g_autoptr (GError) error = NULL;
  AuditFilter f = { .event = "sealed" };

  f.since_ms = (g_get_real_time () / 1000) - (gint64) d->cfg->health_seal[1] * 1000;
  if (!audit_read (d->cfg->audit_db, &f, newest_seal, &d->last_seal, &error))
    g_warning ("reading the last audit seal failed: %s", error->message);
}

/* Free space of the folder holding path, as a percentage of the file
 * system and in bytes. */
static gboolean
folder_free (const char *path, guint *pct, guint64 *bytes)
{
  g_autofree char *dir = g_path_get_dirname (path);
  struct statvfs sv;

  if (statvfs (dir, &sv) != 0 || sv.f_blocks == 0)
    return FALSE;
  *pct = (guint) (sv.f_bavail * 100 / sv.f_blocks);
  *bytes = (guint64) sv.f_bavail * sv.f_frsize;
  return TRUE;
}

static void
daemon_health (gpointer data, GString *out)
{
  Daemon *d = data;
  g_autoptr (GError) error = NULL;
  HealthFacts f = { 0 };
  guint pct2 = 0;
  guint64 bytes2 = 0;

  f.now = g_get_real_time () / G_USEC_PER_SEC;
  f.queue_read = queue_health (d->queue, f.now, &f.queue, &error);
  if (!f.queue_read)
    g_warning ("health: %s", error->message);
  f.sealing = audit_sealing (d->audit);
  f.last_seal = MAX (d->last_seal, sealer_last_seal (d->sealer));
  f.disk_read = folder_free (d->cfg->queue_db, &f.disk_free_pct, &f.disk_free_bytes)
    && folder_free (d->cfg->audit_db, &pct2, &bytes2);
  if (f.disk_read && pct2 < f.disk_free_pct)
    f.disk_free_pct = pct2, f.disk_free_bytes = bytes2;
  f.delivery_alive = delivery_alive (d->delivery, g_get_monotonic_time ());
  f.audit_closed = !gate_is_open (d->gate);
  health_report (d->cfg, &f, out);
}

/*
 * Forks into the background but keeps the parent waiting on a pipe
 * until the child has opened its files and bound the socket: the
 * starting command exits with the child's start-up code, so a broken
 * start is never reported as success.  Until then errors still go to
 * the terminal.  Returns the write end in the child.
 */
static int
detach_begin (GError **error)
{
  int fds[2];
  pid_t pid;
  unsigned char code = EXIT_INTERNAL;

  if (pipe2 (fds, O_CLOEXEC) != 0 || (pid = fork ()) < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "fork: %s",
                   g_strerror (errno));
      return -1;
    }
  if (pid > 0)
    {
      close (fds[1]);
      while (read (fds[0], &code, 1) < 0 && errno == EINTR)
        ;
      _exit (code);
    }
  close (fds[0]);
  setsid ();
  return fds[1];
}

/* Tells the waiting parent how start-up ended; on success the child
 * leaves the terminal and logs to syslog from now on. */
static void
detach_end (int ready_fd, int rc)
{
  unsigned char code = (unsigned char) rc;
  int fd;

  if (ready_fd < 0)
    return;
  if (rc == EXIT_OK)
    {
      openlog ("invitemaild", LOG_PID, LOG_MAIL);
      use_syslog = TRUE;
      fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
      if (fd >= 0)
        {
          dup2 (fd, 0), dup2 (fd, 1), dup2 (fd, 2);
          if (fd > 2)
            close (fd);
        }
    }
  if (write (ready_fd, &code, 1) != 1)
    g_warning ("could not report start-up to the parent");
  close (ready_fd);
}

static gboolean
open_audit (Daemon *d, GError **error)
{
  AuditSealConfig sc = { d->cfg->audit_key_file, d->cfg->audit_group,
                         d->cfg->audit_retention_days };

  if ((d->audit = audit_open_sealing (d->cfg->audit_db, &sc, error)) == NULL)
    return FALSE;
  if (!audit_sealing (d->audit))
    g_warning ("audit not sealed: no key file %s (run invitemail audit init)",
               d->cfg->audit_key_file);
  return TRUE;
}

/*
 * Started as root: the socket is bound, the state files are handed to
 * [daemon] user, and then the daemon becomes that user for good, before
 * it opens anything else (main refused already when user is missing).
 * `user = root` keeps root deliberately (start warns); not root: nothing
 * to drop.
 */
static gboolean
will_drop_root (const Config *cfg)
{
  return geteuid () == 0 && cfg->run_user != NULL && cfg->run_uid != 0;
}

static gboolean
drop_root (const Config *cfg, GError **error)
{
  g_autofree char *q_wal = g_strconcat (cfg->queue_db, "-wal", NULL);
  g_autofree char *q_shm = g_strconcat (cfg->queue_db, "-shm", NULL);
  g_autofree char *a_wal = g_strconcat (cfg->audit_db, "-wal", NULL);
  g_autofree char *a_shm = g_strconcat (cfg->audit_db, "-shm", NULL);
  g_autofree char *a_lock = g_strconcat (cfg->audit_db, ".lock", NULL);
  const char *const files[] = { cfg->queue_db, q_wal, q_shm, cfg->audit_db, a_wal,
                                a_shm, a_lock, cfg->audit_key_file, NULL };

  if (!privilege_take_files (files, cfg->run_uid, error)
      || !privilege_drop (cfg->run_user, cfg->run_uid, cfg->run_gid, error))
    return FALSE;
  g_message ("running as %s (uid %lu, gid %lu)", cfg->run_user,
             (unsigned long) cfg->run_uid, (unsigned long) cfg->run_gid);
  return TRUE;
}

static int
start (Daemon *d)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *detail = NULL;
  ControlSocket sock;

  /* State files are the daemon's; the audit group may read. */
  umask (027);
  /* Dropping root: the socket first (its folder may need root, /run),
   * then the drop, before anything else is opened.  Otherwise the
   * socket is bound once the audit and the queue are open, before
   * recovery and delivery start. */
  sock.fd = -1;
  if (will_drop_root (d->cfg)
      && (!control_listen (d->cfg, &sock, &error) || !drop_root (d->cfg, &error)))
    {
      if (sock.fd >= 0)
        close (sock.fd);
      g_critical ("%s", error->message);
      return sock.fd >= 0 ? EXIT_CONFIG : EXIT_UNREACHABLE;
    }
  if (geteuid () == 0 && d->cfg->run_uid == 0)
    g_warning ("[daemon] user is root: running as root, by choice");
  if (!open_audit (d, &error))
    return fail_start ("audit", error);
  if ((d->queue = queue_open (d->cfg->queue_db, &error)) == NULL)
    return fail_start ("queue", error);
  d->gate = gate_new (d->audit);
  /* Fail closed from the first row: a daemon that cannot write its
   * audit at start does not start (the service manager tries again).
   * First the rows a crash between the two commits left behind. */
  if (committer_reconcile (d->queue, d->gate, d->cfg->audit_db,
                           d->cfg->queue_retention_days, &error) < 0)
    return fail_start ("audit", error);
  detail = g_strdup_printf ("%s; config %s", INVITEMAIL_VERSION_TEXT,
                            d->cfg->path ? d->cfg->path : "(embedded defaults)");
  if (!audit_daemon_event (d, AUDIT_DAEMON_START, detail, &error)
      || !audit_config_event (d, AUDIT_CONFIG_LOADED, NULL, &error))
    return fail_start ("audit", error);
  d->started = TRUE;
  if ((d->committer = committer_start (d->cfg->queue_db, d->gate, &error)) == NULL)
    return fail_start ("queue", error);
  d->service = service_new (d->cfg, d->templates, d->queue, d->committer);
  service_set_health (d->service, daemon_health, d);
  load_last_seal (d);
  /* The socket is bound before recovery and delivery start: a client
   * that connects meanwhile waits in the backlog until the main loop
   * runs, instead of finding a dead socket file from the last run. */
  if (sock.fd < 0 && !control_listen (d->cfg, &sock, &error))
    {
      g_critical ("socket: %s", error->message);
      return EXIT_UNREACHABLE;
    }
  d->control = control_new_listening (d->cfg, d->service, &sock);
  /* Crash recovery here only, never in reload(). */
  if (!delivery_recover (d->cfg->queue_db, d->gate, &error)
      || (d->delivery = delivery_start (d->cfg, d->gate, &error)) == NULL)
    return fail_start ("delivery", error);
  committer_set_on_stored (d->committer, delivery_wake_stored, d->delivery);
  d->sealer = sealer_start (d->gate, d->cfg->audit_seal_interval);
  d->retention = retention_start (d->cfg, d->gate);
  g_message ("%s started, socket %s, transport %s", INVITEMAIL_VERSION_TEXT,
             d->cfg->socket, d->cfg->transport == TRANSPORT_SMTP ? "smtp" : "file");
  return EXIT_OK;
}

/* Lets the last committed answers reach the connections. */
static void
deliver_last_answers (Daemon *d)
{
  gint64 until = g_get_monotonic_time () + G_USEC_PER_SEC;

  while (g_main_context_iteration (NULL, FALSE) && g_get_monotonic_time () < until)
    ;
}

static void
shutdown_daemon (Daemon *d)
{
  gboolean started = d->started;

  control_stop_accepting (d->control);
  /* No further request is read from any connection: nothing can reach
   * the committer once it is stopped. */
  if (d->control != NULL)
    control_drain (d->control);
  /* The sends being built reach the committer before it stops. */
  service_drain (d->service);
  /* Commits what was submitted; the answers go out if the peer still
   * listens. */
  committer_stop (d->committer);
  deliver_last_answers (d);
  control_free (d->control);
  service_free (d->service);
  /* The SMTP batch in flight gets a bounded time; what it cannot record
   * stays `sending` in the queue and is retried after the next start. */
  d->delivery_left = !delivery_stop_within (d->delivery, STOP_DELIVERY_WAIT_S);
  retention_stop (d->retention);
  sealer_stop (d->sealer);
  if (started)
    audit_daemon_event (d, AUDIT_DAEMON_STOP, d->delivery_left
                        ? "stopped; an SMTP batch in flight is left for retry"
                        : "stopped", NULL);
  if (started)
    sealer_seal_now (d->gate);   /* the stop row is sealed too */
  queue_close (d->queue);
  if (d->delivery_left)
    return;   /* the worker still uses audit and config: exit without freeing */
  gate_free (d->gate);
  audit_close (d->audit);
  templates_free (d->templates);
  config_free (d->cfg);
  if (d->loop != NULL)
    g_main_loop_unref (d->loop);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  Options o = { 0 };
  Daemon d = { 0 };
  int rc;

  setlocale (LC_ALL, "C.UTF-8");
  g_log_set_writer_func (log_writer, NULL, NULL);
  if (!parse_options (&argc, &argv, &o))
    return EXIT_USAGE;
  if (o.version)
    {
      printf ("%s\n", INVITEMAIL_VERSION_TEXT);
      return EXIT_OK;
    }
  if (o.print_defaults)
    {
      g_autofree char *text = config_keys_print_defaults ();
      fputs (text, stdout);
      return EXIT_OK;
    }
  signal (SIGPIPE, SIG_IGN);
  mime_init ();
  d.cfg = load_config (o.config_path, &error);
  g_clear_pointer (&o.config_path, g_free);
  if (d.cfg == NULL)
    return fail_start ("configuration", error);
  if ((d.templates = templates_load (d.cfg->templates_dir, d.cfg->signatures_dir,
                                     &error)) == NULL)
    {
      rc = fail_start ("templates", error);
      shutdown_daemon (&d);
      return rc;
    }
  if (o.check_config)
    rc = check_config (&d);
  else if (!root_allowed (d.cfg))
    rc = EXIT_CONFIG;
  else
    {
      int ready_fd = -1;
      if (!o.foreground && (ready_fd = detach_begin (&error)) < 0)
        rc = fail_start ("detach", error);
      else
        detach_end (ready_fd, rc = start (&d));
    }
  if (!o.check_config && rc == EXIT_OK)
    {
      d.loop = g_main_loop_new (NULL, FALSE);
      g_unix_signal_add (SIGTERM, on_stop_signal, &d);
      g_unix_signal_add (SIGINT, on_stop_signal, &d);
      g_unix_signal_add (SIGHUP, on_hup, &d);
      if (notify_watchdog_usec () > 0)
        g_timeout_add (MAX (notify_watchdog_usec () / 2000, 1), on_watchdog, &d);
      notify_ready ("accepting invite requests");
      g_main_loop_run (d.loop);
    }
  shutdown_daemon (&d);
  if (d.delivery_left)
    _exit (rc);
  mime_shutdown ();
  return rc;
}
