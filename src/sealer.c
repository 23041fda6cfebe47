/*
 * sealer.c - seals and purges on a thread of their own.  See sealer.h.
 *
 * What it trusts: the gate and the audit (audit_seal and audit_purge
 * serialise on the audit's own mutex with every append).
 * Limits: one seal per interval, one purge per SEALER_PURGE_PERIOD_S.
 */
#include "sealer.h"

#include "audit_seal.h"

struct Sealer {
  Gate *gate;
  guint interval_s;
  GThread *thread;
  GMutex lock;
  GCond cond;
  gboolean stop;
  gint64 last_seal;         /* unix s, under lock */
};

gboolean
sealer_seal_now (Gate *gate)
{
  g_autoptr (GError) error = NULL;

  if (!gate_is_open (gate))
    return FALSE;
  if (!audit_seal (gate_audit (gate), &error))
    {
      g_warning ("audit seal failed: %s", error->message);
      return FALSE;
    }
  return audit_sealing (gate_audit (gate));
}

gint64
sealer_last_seal (Sealer *s)
{
  gint64 t;

  if (s == NULL)
    return 0;
  g_mutex_lock (&s->lock);
  t = s->last_seal;
  g_mutex_unlock (&s->lock);
  return t;
}

static void
sealer_purge (Gate *gate)
{
  g_autoptr (GError) error = NULL;

  if (gate_is_open (gate)
      && !audit_purge (gate_audit (gate), g_get_real_time () / 1000, &error))
    g_warning ("audit purge failed: %s", error->message);
}

/* Waits until the monotonic time `until` or a stop; TRUE when stopping. */
static gboolean
sealer_wait (Sealer *s, gint64 until)
{
  gboolean stop;

  g_mutex_lock (&s->lock);
  while (!s->stop && g_get_monotonic_time () < until)
    g_cond_wait_until (&s->cond, &s->lock, until);
  stop = s->stop;
  g_mutex_unlock (&s->lock);
  return stop;
}

static gpointer
sealer_thread (gpointer data)
{
  Sealer *s = data;
  gint64 now = g_get_monotonic_time ();
  gint64 next_seal = now + (gint64) s->interval_s * G_USEC_PER_SEC;
  gint64 next_purge = now;

  for (;;)
    {
      if (sealer_wait (s, MIN (next_seal, next_purge)))
        return NULL;
      now = g_get_monotonic_time ();
      if (now >= next_purge)
        {
          sealer_purge (s->gate);
          next_purge = now + (gint64) SEALER_PURGE_PERIOD_S * G_USEC_PER_SEC;
        }
      if (now >= next_seal)
        {
          if (sealer_seal_now (s->gate))
            {
              g_mutex_lock (&s->lock);
              s->last_seal = g_get_real_time () / G_USEC_PER_SEC;
              g_mutex_unlock (&s->lock);
            }
          next_seal = now + (gint64) s->interval_s * G_USEC_PER_SEC;
        }
    }
}

Sealer *
sealer_start (Gate *gate, guint interval_s)
{
  Sealer *s = g_new0 (Sealer, 1);

  s->gate = gate;
  s->interval_s = MAX (interval_s, 1);
  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  s->thread = g_thread_new ("sealer", sealer_thread, s);
  return s;
}

void
sealer_stop (Sealer *s)
{
  if (s == NULL)
    return;
  g_mutex_lock (&s->lock);
  s->stop = TRUE;
  g_cond_signal (&s->cond);
  g_mutex_unlock (&s->lock);
  g_thread_join (s->thread);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s);
}
