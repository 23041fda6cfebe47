/*
 * gate.c - the audit gate.  See gate.h for the policy.
 *
 * What it does: passes rows to audit_append_batch; on failure records
 * when and why the audit became unwritable and logs it once; on the
 * first success after that, prepends an `audit_resumed` row to the same
 * transaction, so the gap is in the chain exactly where it was, and
 * logs that too.
 *
 * What it trusts: the rows (built by the daemon, no personal data in
 * detail).  The resume row holds only times and counts.
 *
 * Limits: none; a closed gate costs one failing append per probe.
 */
#include "gate.h"

#include <string.h>

#include "gate_gap.h"

struct Gate {
  Audit *audit;
  GMutex append_lock;       /* serialises appends through the gate */
  GMutex lock;              /* guards what follows */
  GCond cond;               /* wakes the prober */
  gint open;                /* atomic: 1 open, 0 closed */
  gint64 closed_at;         /* real time, us */
  guint refused_sends;      /* while closed */
  guint unaudited;          /* while closed */
  gboolean stop;
  GThread *prober;
};

/*
 * While the gate is closed, tries the `audit_resumed` row every
 * GATE_PROBE_MS.  A thread of its own, so that an append that fails
 * slowly (a lock held elsewhere fails only after the busy timeout, a
 * stalled disk later still) never delays an answer: while closed the
 * committer answers at once and the workers wait.
 */
static gpointer
gate_prober (gpointer data)
{
  Gate *g = data;

  g_mutex_lock (&g->lock);
  while (!g->stop)
    {
      if (g_atomic_int_get (&g->open))
        {
          g_cond_wait (&g->cond, &g->lock);
          continue;
        }
      g_cond_wait_until (&g->cond, &g->lock,
                         g_get_monotonic_time () + GATE_PROBE_MS * 1000);
      if (g->stop || g_atomic_int_get (&g->open))
        continue;
      g_mutex_unlock (&g->lock);
      gate_append (g, NULL, 0, NULL);
      g_mutex_lock (&g->lock);
    }
  g_mutex_unlock (&g->lock);
  return NULL;
}

Gate *
gate_new (Audit *audit)
{
  Gate *g = g_new0 (Gate, 1);

  g->audit = audit;
  g->open = 1;
  g_mutex_init (&g->append_lock);
  g_mutex_init (&g->lock);
  g_cond_init (&g->cond);
  g->prober = g_thread_new ("gate", gate_prober, g);
  return g;
}

void
gate_free (Gate *g)
{
  if (g == NULL)
    return;
  g_mutex_lock (&g->lock);
  g->stop = TRUE;
  g_cond_signal (&g->cond);
  g_mutex_unlock (&g->lock);
  g_thread_join (g->prober);
  g_mutex_clear (&g->append_lock);
  g_mutex_clear (&g->lock);
  g_cond_clear (&g->cond);
  g_free (g);
}

Audit *
gate_audit (Gate *g)
{
  return g->audit;
}

gboolean
gate_is_open (Gate *g)
{
  return g_atomic_int_get (&g->open) != 0;
}

/* The words of the resume row (no personal data); their one definition
 * is gate_gap.c, which `invitemail audit report` reads them back with. */
static char *
gate_gap_detail (Gate *g)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g->lock);
  GateGap gap = { .since = g->closed_at / G_USEC_PER_SEC,
                  .secs = (g_get_real_time () - g->closed_at) / G_USEC_PER_SEC,
                  .refused = g->refused_sends, .unaudited = g->unaudited };

  return gate_gap_format (&gap);
}

/* Under g->append_lock. */
static void
gate_close (Gate *g, const GError *why)
{
  if (!g_atomic_int_get (&g->open))
    return;
  g_mutex_lock (&g->lock);
  g_atomic_int_set (&g->open, 0);
  g->closed_at = g_get_real_time ();
  g->refused_sends = 0;
  g->unaudited = 0;
  g_cond_signal (&g->cond);
  g_mutex_unlock (&g->lock);
  g_warning ("the audit cannot be written (%s): sends are refused with"
             " unavailable and delivery pauses until it can", why->message);
}

/* Under g->append_lock: the rows with the resume row in front. */
static gboolean
gate_append_reopening (Gate *g, const AuditRecord *recs, guint n, GError **error)
{
  g_autofree AuditRecord *all = g_new0 (AuditRecord, n + 1);
  g_autofree char *detail = gate_gap_detail (g);

  all[0] = (AuditRecord) { .event = AUDIT_RESUMED, .peer_uid = -1, .detail = detail };
  if (n > 0)
    memcpy (all + 1, recs, n * sizeof *recs);
  if (!audit_append_batch (g->audit, all, n + 1, error))
    return FALSE;
  g_atomic_int_set (&g->open, 1);
  g_message ("the audit can be written again: %s", detail);
  return TRUE;
}

gboolean
gate_append (Gate *g, const AuditRecord *recs, guint n, GError **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g->append_lock);
  GError *local = NULL;
  gboolean ok;

  if (g_atomic_int_get (&g->open))
    ok = n == 0 || audit_append_batch (g->audit, recs, n, &local);
  else
    ok = gate_append_reopening (g, recs, n, &local);
  if (!ok)
    {
      gate_close (g, local);
      g_propagate_error (error, local);
    }
  return ok;
}

void
gate_note_refused_send (Gate *g)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g->lock);

  if (!g_atomic_int_get (&g->open))
    g->refused_sends++;
}

void
gate_note_unaudited (Gate *g, guint n)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g->lock);

  if (!g_atomic_int_get (&g->open))
    g->unaudited += n;
}
