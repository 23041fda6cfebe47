/*
 * transport_relay.c - the SMTP backend's entry in the transport table:
 * prepare (the settings libESMTP can take, the trusted CAs, a copy of
 * the password), deliver (one batch: envelope checks, the relay's name
 * resolved within the timeout, sessions until the batch is done) and
 * free.  Each session is transport_smtp.c's.
 *
 * A relay may end a session after some messages (a cap per connection,
 * a 421 between two): the transactions it never began go out at once on
 * a new connection, as long as the last one delivered something, up to
 * TRANSPORT_MAX_SESSIONS.  Each job is reported (transport_report) as
 * soon as its outcome is final: a transaction the relay answered, from
 * inside the session (transport_smtp.c); the others when their session
 * ends.
 *
 * tls=none: config.c let only loopback hosts through, but a name is
 * resolved again for every batch, so only the loopback literals it has
 * then are used.
 *
 * TRUSTS: the Config (checked by config.c; what libESMTP cannot take is
 * refused here).  Envelope addresses are checked before any session.
 */
#include <string.h>

#include "transport_smtp.h"
#include "transport_tls.h"

#define DEFAULT_TIMEOUT_MS 60000

guint
transport_smtp_timeout (const Config *cfg)
{
  return cfg->smtp_timeout_ms != 0 ? cfg->smtp_timeout_ms : DEFAULT_TIMEOUT_MS;
}

/* tls=none: config.c let only loopback hosts through, but a name is
 * resolved again for every batch.  Keep the literal loopback addresses
 * and drop the rest, names included (libESMTP would look a name up
 * once more); FALSE when nothing is left. */
static gboolean
targets_loopback_only (GPtrArray *targets)
{
  for (guint i = targets->len; i-- > 0;)
    {
      const char *target = g_ptr_array_index (targets, i);
      if (!g_hostname_is_ip_address (target)
          || !config_host_is_loopback (target))
        g_ptr_array_remove_index (targets, i);
    }
  return targets->len > 0;
}

static void
relay_deliver (gpointer state, TransportRun *run)
{
  const SmtpRelay *t = state;
  DeliveryJob *jobs = run->jobs;
  guint n = run->n;

  g_autofree gboolean *to_send = g_new0 (gboolean, n);
  guint count = 0;
  for (guint i = 0; i < n; i++)
    {
      DeliveryJob *job = &jobs[i];
      if (!envelope_safe (job->recipient, ENVELOPE_MAILBOX)
          || !envelope_safe (job->envelope_from, ENVELOPE_MAILBOX)
          || job->message == NULL)
        transport_job_set (job, DELIVERY_PERMFAIL, 0, "invalid address");
      else
        {
          to_send[i] = TRUE;
          count++;
        }
    }
  if (count == 0)
    return;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) targets = transport_resolve (
    t->cfg->smtp_host, transport_smtp_timeout (t->cfg), &error);
  if (targets == NULL)
    {
      transport_jobs_fail (jobs, n, to_send, error->message);
      return;
    }
  if (t->cfg->smtp_tls == TLS_NONE && !targets_loopback_only (targets))
    {
      transport_jobs_fail (jobs, n, to_send,
                           "clear text only to a loopback address: "
                           "the relay's name resolved elsewhere");
      return;
    }
  /* A relay may end a session after some messages (a cap per
   * connection, a 421 between two): the transactions it never began go
   * out at once on a new connection, as long as the last one delivered
   * something.  Bounded: every session but the last sends at least one. */
  g_autofree gboolean *untried = g_new0 (gboolean, n);
  for (guint round = 0; round < TRANSPORT_MAX_SESSIONS; round++)
    {
      guint sent = transport_smtp_session (t, run, to_send, targets, untried);
      guint again = 0;
      /* What this session tried is final; what it never began may go
       * over the next one (transport.c reports it if there is none). */
      for (guint i = 0; i < n; i++)
        {
          if (to_send[i] && !untried[i])
            transport_report (run, i);
          again += (to_send[i] = untried[i]);
        }
      /* Stopping: no new session; the rest stays deferred. */
      if (sent == 0 || again == 0 || transport_stopping (run))
        break;
      memset (untried, 0, n * sizeof *untried);
    }
}

/* ---- set-up ---- */

static gboolean
check_smtp_config (const Config *cfg, GError **error)
{
  const char *bad = NULL;
  const char *helo = cfg->smtp_helo_name;
  const char *user = cfg->smtp_auth_user;

  if (cfg->smtp_host == NULL || !envelope_safe (cfg->smtp_host, ENVELOPE_WORD))
    bad = "smtp host";
  else if (strchr (cfg->smtp_host, ':') != NULL)
    /* smtp_set_server splits "host:port" at the first colon. */
    bad = "smtp host: IPv6 literals are not supported, use a name";
  else if (helo != NULL && !envelope_safe (helo, ENVELOPE_WORD))
    bad = "smtp helo_name";
  else if (user != NULL && (!envelope_safe (user, ENVELOPE_WORD)
                            || strlen (user) > TRANSPORT_AUTH_FIELD_MAX))
    bad = "smtp auth_user";
  else if (user != NULL
           && (cfg->smtp_password.value == NULL || cfg->smtp_password.len == 0
               || cfg->smtp_password.len > TRANSPORT_AUTH_FIELD_MAX
               || memchr (cfg->smtp_password.value, '\0',
                          cfg->smtp_password.len) != NULL))
    bad = "smtp password (empty, over 255 bytes or holding NUL)";
  if (bad == NULL)
    return TRUE;
  g_set_error (error, TRANSPORT_ERROR, TRANSPORT_ERROR_CONFIG,
               "invalid %s", bad);
  return FALSE;
}

static gpointer
relay_prepare (const Config *cfg, GError **error)
{
  X509_STORE *store = NULL;

  transport_smtp_init ();

  if (!check_smtp_config (cfg, error))
    return NULL;
  if (cfg->smtp_tls != TLS_NONE
      && (store = transport_tls_store_new (cfg->smtp_ca_file, error)) == NULL)
    return NULL;

  SmtpRelay *t = g_new0 (SmtpRelay, 1);
  t->cfg = cfg;
  t->store = store;
  if (cfg->smtp_auth_user != NULL)
    {
      t->password_len = cfg->smtp_password.len;
      t->password = g_malloc (t->password_len + 1);
      memcpy (t->password, cfg->smtp_password.value, t->password_len);
      t->password[t->password_len] = '\0';
    }
  return t;
}

static void
relay_free (gpointer state)
{
  SmtpRelay *t = state;

  if (t->password != NULL)
    {
      explicit_bzero (t->password, t->password_len);
      g_free (t->password);
    }
  X509_STORE_free (t->store);
  g_free (t);
}

const TransportBackend transport_smtp_backend = {
  .name = "smtp",
  .prepare = relay_prepare,
  .deliver = relay_deliver,
  .free = relay_free,
};
