/*
 * transport.c - the transport's contract (transport.h) over a table of
 * backends: each has prepare (check the configuration, build what every
 * delivery needs), deliver (fill every job's outcome) and free.
 *
 *   file  transport_file.c  each job as .eml + .envelope in a folder
 *   smtp  transport_relay.c the batch: checks, lookup, sessions
 *         transport_smtp.c  one libESMTP session: STARTTLS
 *                           (transport_tls.c), AUTH, one transaction
 *                           per job, judged by transport_wire.c
 *
 * It also holds the small helpers every backend uses: hostile text made
 * safe, the envelope address check, setting a job's outcome, telling the
 * caller that one is final (transport_report: once per job; whatever a
 * backend left unreported is reported when it returns).
 *
 * TRUSTS: the Config (checked by config.c).  The jobs' addresses and
 * replies are not trusted: backends check the former, and every reply
 * goes through transport_safe_text before anyone stores or logs it.
 */
#include <string.h>

#include "transport_private.h"

struct Transport {
  const TransportBackend *backend;
  gpointer state;
  const gint *stop;    /* see transport_set_stop; NULL: never */
};

G_DEFINE_QUARK (transport-error-quark, transport_error)

/* ---- helpers for every backend ---- */

void
transport_safe_text (char *dst, gsize max, const char *src, gsize len)
{
  gsize out = 0;

  if (dst == NULL || max == 0)
    return;
  for (gsize i = 0; src != NULL && i < len && out + 1 < max; i++)
    {
      unsigned char c = (unsigned char) src[i];

      if (c == '\r' || c == '\n' || c == '\t')
        c = ' ';
      else if (c < 0x20 || c > 0x7e)
        c = '?';
      if (c == ' ' && (out == 0 || dst[out - 1] == ' '))
        continue;                 /* no leading or doubled blanks */
      dst[out++] = (char) c;
    }
  while (out > 0 && dst[out - 1] == ' ')
    out--;
  dst[out] = '\0';
}

void
transport_job_set (DeliveryJob *job, DeliveryOutcome outcome, int code,
                   const char *reply)
{
  job->outcome = outcome;
  job->smtp_code = code;
  transport_safe_text (job->reply, sizeof job->reply, reply,
                       reply != NULL ? strlen (reply) : 0);
}

void
transport_jobs_fail (DeliveryJob *jobs, guint n, const gboolean *which,
                     const char *why)
{
  for (guint i = 0; i < n; i++)
    if (which == NULL || which[i])
      transport_job_set (&jobs[i], DELIVERY_TEMPFAIL, 0, why);
}

gint64
transport_report (TransportRun *run, guint i)
{
  gint64 start;

  g_return_val_if_fail (run != NULL && i < run->n, 0);
  if (run->reported[i])
    return 0;
  run->reported[i] = TRUE;
  if (run->done == NULL)
    return 0;
  start = g_get_monotonic_time ();
  run->done (run->jobs, i, run->data);
  return g_get_monotonic_time () - start;
}

gboolean
transport_stopping (const TransportRun *run)
{
  return run->stop != NULL && g_atomic_int_get (run->stop);
}

/* ---- the contract ---- */

static const TransportBackend *
backend_for (TransportType type)
{
  static const TransportBackend *const table[] = {
    [TRANSPORT_FILE] = &transport_file_backend,
    [TRANSPORT_SMTP] = &transport_smtp_backend,
  };

  return (guint) type < G_N_ELEMENTS (table) ? table[type] : NULL;
}

Transport *
transport_new (const Config *cfg, GError **error)
{
  const TransportBackend *backend;
  gpointer state;

  g_return_val_if_fail (cfg != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if ((backend = backend_for (cfg->transport)) == NULL)
    {
      g_set_error (error, TRANSPORT_ERROR, TRANSPORT_ERROR_CONFIG,
                   "unknown transport type");
      return NULL;
    }
  if ((state = backend->prepare (cfg, error)) == NULL)
    return NULL;
  Transport *t = g_new0 (Transport, 1);
  t->backend = backend;
  t->state = state;
  return t;
}

void
transport_deliver_each (Transport *t, DeliveryJob *jobs, guint n,
                        TransportDone done, gpointer data)
{
  g_return_if_fail (t != NULL && (jobs != NULL || n == 0));

  g_autofree gboolean *reported = g_new0 (gboolean, n);
  TransportRun run = { .jobs = jobs, .n = n, .stop = t->stop, .done = done,
                       .data = data, .reported = reported };
  t->backend->deliver (t->state, &run);
  /* Every job is reported once, whatever the backend did. */
  for (guint i = 0; i < n; i++)
    transport_report (&run, i);
}

void
transport_deliver (Transport *t, DeliveryJob *jobs, guint n)
{
  transport_deliver_each (t, jobs, n, NULL, NULL);
}

void
transport_set_stop (Transport *t, const gint *stop)
{
  g_return_if_fail (t != NULL);
  t->stop = stop;
}

void
transport_free (Transport *t)
{
  if (t == NULL)
    return;
  t->backend->free (t->state);
  g_free (t);
}
