/*
 * delivery.c - the delivery worker thread.  See delivery.h.
 *
 * Loop: claim due recipients (they become `sending` in the queue, so a
 * crash now is found by queue_recover at the next start), expire those
 * past their invite's deadline without sending, deliver the rest in one
 * transport batch, then record every outcome in one queue transaction
 * and one audit row per recipient.
 *
 * Ordering: the queue is updated before the audit rows are written.  A
 * crash between the two leaves a recipient `sent` in the queue with no
 * `sent` audit row; a crash before the queue update leaves it `sending`
 * and recovery audits it as `recovered` (a possible duplicate).
 *
 * Logs carry invite ids and counts, never addresses.
 */
#include "delivery.h"

#include "queue.h"
#include "transport.h"

struct Delivery {
  const Config *cfg;
  Audit *audit;
  Queue *queue;
  Transport *transport;
  RetryPolicy retry;
  GThread *thread;
  GMutex lock;
  GCond cond;
  gboolean wake;
  gboolean stop;
};

static gint64
now_s (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static void
audit_outcome (Delivery *d, AuditEvent ev, const QueueJob *job, const char *reply)
{
  g_autoptr (GError) error = NULL;
  AuditRecord rec = { 0 };

  rec.event = ev;
  rec.invite_id = job->invite_id;
  rec.peer_uid = -1;
  rec.recipients = job->address;
  rec.smtp_reply = reply;
  if (!audit_append (d->audit, &rec, &error))
    g_warning ("audit write failed for invite %s: %s", job->invite_id,
               error->message);
}

/* Maps a transport outcome to the recipient's next state. */
static void
decide (Delivery *d, const QueueJob *job, const DeliveryJob *dj, gint64 now,
        QueueResult *res, AuditEvent *ev)
{
  res->invite_id = job->invite_id;
  res->idx = job->idx;
  res->reply = dj->reply;
  res->next_try = 0;
  switch (dj->outcome)
    {
    case DELIVERY_SENT:
      res->state = RCPT_SENT;
      *ev = AUDIT_SENT;
      return;
    case DELIVERY_PERMFAIL:
      res->state = RCPT_FAILED;
      *ev = AUDIT_FAILED;
      return;
    case DELIVERY_TEMPFAIL:
      res->next_try = retry_next_try (&d->retry, job->attempts + 1, now,
                                      job->expires);
      res->state = res->next_try < 0 ? RCPT_EXPIRED : RCPT_DEFERRED;
      *ev = res->next_try < 0 ? AUDIT_EXPIRED : AUDIT_DEFERRED;
      if (res->next_try < 0)
        res->next_try = 0;
      return;
    }
}

static void
record (Delivery *d, GPtrArray *jobs, QueueResult *res, AuditEvent *evs)
{
  g_autoptr (GError) error = NULL;

  if (!queue_record (d->queue, res, jobs->len, now_s (), &error))
    {
      /* The recipients stay `sending`; the next start recovers them. */
      g_warning ("recording %u outcome(s) failed: %s", jobs->len, error->message);
      return;
    }
  for (guint i = 0; i < jobs->len; i++)
    audit_outcome (d, evs[i], g_ptr_array_index (jobs, i), res[i].reply);
}

/* Fetches each invite's message once per batch. */
static GBytes *
message_for (Delivery *d, GHashTable *cache, const char *invite_id)
{
  g_autoptr (GError) error = NULL;
  GBytes *msg = g_hash_table_lookup (cache, invite_id);

  if (msg != NULL)
    return msg;
  msg = queue_message (d->queue, invite_id, &error);
  if (msg == NULL)
    {
      g_warning ("invite %s: message unreadable: %s", invite_id, error->message);
      return NULL;
    }
  g_hash_table_insert (cache, g_strdup (invite_id), msg);
  return msg;
}

static void
run_batch (Delivery *d, GPtrArray *jobs)
{
  g_autoptr (GHashTable) cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                        (GDestroyNotify) g_bytes_unref);
  g_autofree DeliveryJob *dj = g_new0 (DeliveryJob, jobs->len);
  g_autofree QueueResult *res = g_new0 (QueueResult, jobs->len);
  g_autofree AuditEvent *evs = g_new0 (AuditEvent, jobs->len);
  g_autofree gboolean *skip = g_new0 (gboolean, jobs->len);
  g_autoptr (GPtrArray) tags = g_ptr_array_new_with_free_func (g_free);
  g_autofree DeliveryJob *send = g_new0 (DeliveryJob, jobs->len);
  guint n_send = 0;
  gint64 now = now_s ();

  for (guint i = 0; i < jobs->len; i++)
    {
      QueueJob *job = g_ptr_array_index (jobs, i);
      GBytes *msg = message_for (d, cache, job->invite_id);
      char *tag = g_strdup_printf ("%s.%u", job->invite_id, job->idx);
      g_ptr_array_add (tags, tag);
      dj[i].recipient = job->address;
      dj[i].envelope_from = job->envelope_from;
      dj[i].message = msg;
      dj[i].tag = tag;
      if (now >= job->expires || msg == NULL)
        {
          /* Past its deadline (max_age or the meeting's start): no try. */
          skip[i] = TRUE;
          dj[i].outcome = msg == NULL ? DELIVERY_PERMFAIL : DELIVERY_TEMPFAIL;
          g_strlcpy (dj[i].reply, msg == NULL ? "message unreadable in queue"
                     : "expired before delivery", sizeof dj[i].reply);
          continue;
        }
      send[n_send++] = dj[i];
    }
  if (n_send > 0)
    transport_deliver (d->transport, send, n_send);
  for (guint i = 0, k = 0; i < jobs->len; i++)
    {
      if (!skip[i])
        dj[i] = send[k++];
      decide (d, g_ptr_array_index (jobs, i), &dj[i], now, &res[i], &evs[i]);
      if (skip[i] && dj[i].outcome == DELIVERY_TEMPFAIL)
        {
          res[i].state = RCPT_EXPIRED;
          res[i].next_try = 0;
          evs[i] = AUDIT_EXPIRED;
        }
    }
  record (d, jobs, res, evs);
  g_message ("delivery batch: %u recipient(s), %u tried", jobs->len, n_send);
}

/* Sleeps until woken, stopped, or the next recipient is due. */
static void
wait_for_work (Delivery *d)
{
  g_autoptr (GError) error = NULL;
  gint64 next = queue_next_due (d->queue, &error);
  gint64 now = now_s ();
  gint64 wait_s = DELIVERY_IDLE_POLL;

  if (next >= 0)
    wait_s = CLAMP (next - now, 0, DELIVERY_IDLE_POLL);
  g_mutex_lock (&d->lock);
  if (!d->wake && !d->stop && wait_s > 0)
    g_cond_wait_until (&d->cond, &d->lock,
                       g_get_monotonic_time () + wait_s * G_USEC_PER_SEC);
  d->wake = FALSE;
  g_mutex_unlock (&d->lock);
}

static gboolean
stopping (Delivery *d)
{
  gboolean stop;

  g_mutex_lock (&d->lock);
  stop = d->stop;
  g_mutex_unlock (&d->lock);
  return stop;
}

static gpointer
worker (gpointer data)
{
  Delivery *d = data;

  while (!stopping (d))
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) jobs = queue_claim_due (d->queue, now_s (),
                                                    DELIVERY_BATCH_MAX, &error);
      if (jobs == NULL)
        g_warning ("reading the queue failed: %s", error->message);
      if (jobs != NULL && jobs->len > 0)
        run_batch (d, jobs);
      else
        wait_for_work (d);
    }
  return NULL;
}

static gboolean
recover (Delivery *d, GError **error)
{
  g_autoptr (GPtrArray) jobs = queue_recover (d->queue, now_s (), error);

  if (jobs == NULL)
    return FALSE;
  for (guint i = 0; i < jobs->len; i++)
    audit_outcome (d, AUDIT_RECOVERED, g_ptr_array_index (jobs, i),
                   "in flight at a crash: retried, may be a duplicate");
  if (jobs->len > 0)
    g_message ("recovered %u recipient(s) that were in flight", jobs->len);
  return TRUE;
}

Delivery *
delivery_start (const Config *cfg, Audit *audit, GError **error)
{
  Delivery *d = g_new0 (Delivery, 1);

  d->cfg = cfg;
  d->audit = audit;
  d->retry.first_delay = cfg->retry_first_delay;
  d->retry.max_delay = cfg->retry_max_delay;
  d->retry.max_age = cfg->retry_max_age;
  g_mutex_init (&d->lock);
  g_cond_init (&d->cond);
  d->queue = queue_open (cfg->queue_db, error);
  if (d->queue == NULL
      || (d->transport = transport_new (cfg, error)) == NULL
      || !recover (d, error))
    {
      delivery_stop (d);
      return NULL;
    }
  d->thread = g_thread_new ("delivery", worker, d);
  return d;
}

void
delivery_wake (Delivery *d)
{
  g_mutex_lock (&d->lock);
  d->wake = TRUE;
  g_cond_signal (&d->cond);
  g_mutex_unlock (&d->lock);
}

void
delivery_stop (Delivery *d)
{
  if (d == NULL)
    return;
  g_mutex_lock (&d->lock);
  d->stop = TRUE;
  g_cond_signal (&d->cond);
  g_mutex_unlock (&d->lock);
  if (d->thread != NULL)
    g_thread_join (d->thread);
  transport_free (d->transport);
  queue_close (d->queue);
  g_mutex_clear (&d->lock);
  g_cond_clear (&d->cond);
  g_free (d);
}
