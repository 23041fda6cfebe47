/*
 * delivery.c - the delivery workers.  See delivery.h.
 *
 * Each worker is a thread with its own queue connection and transport
 * (one SMTP connection at a time).  Loop: claim due recipients (they
 * become `sending` in the queue, so a crash now is found by
 * queue_recover at the next start), expire those past their invite's
 * deadline without sending, deliver the rest in one transport batch.
 * The outcomes are recorded while the batch runs, not after it: the
 * transport hands over each one as soon as it is final (for SMTP right
 * after the relay's reply to that transaction's data), and the batch's
 * recorder thread writes what came, the audit rows in one audit
 * transaction, then the queue in one queue transaction, at most once
 * per DELIVERY_RECORD_MS (delivery.h), on the worker's second queue
 * connection, while the session goes on; the worker records the rest
 * at the batch's end.  So a crash re-sends what the relay took since the
 * last record, not the whole batch, and the session never waits for a
 * commit.  Claims are transactional, so workers never take the same
 * recipient.
 *
 * Ordering: the audit rows are written before the queue is updated, so
 * no outcome can be missing from the audit: a crash between the two
 * leaves the recipient `sending`, recovery audits it as `recovered` and
 * it is tried again (at least once; the audit then shows both tries).
 * It also means that whoever sees an outcome in `status` finds it in
 * the audit.  When the audit cannot be written (gate.h) the workers
 * claim nothing, and a worker holding outcomes keeps them until their
 * rows are stored (record()): inside a batch the recorder does not wait
 * for the audit (it leaves the rest to the batch's end), at the batch's
 * end the worker does.
 *
 * Logs carry invite ids and counts, never addresses.
 */
#include "delivery.h"

#include <string.h>

#include "bounce.h"
#include "queue.h"
#include "transport.h"

typedef struct {
  Delivery *d;
  Queue *queue;
  Queue *record_queue;      /* its batches' recorder's own connection */
  Transport *transport;
  GThread *thread;
  guint seen_wake;          /* the last wake this worker answered */
  gint64 batch_started;     /* monotonic us; 0 while idle (under d->lock) */
  guint batch_n;            /* recipients of that batch (under d->lock) */
  gint64 beat;              /* monotonic us of the last loop turn (under d->lock) */
} Worker;

struct Delivery {
  const Config *cfg;
  Gate *gate;
  RetryPolicy retry;
  GPtrArray *workers;       /* Worker* */
  GMutex lock;
  GCond cond;
  guint wake;               /* bumped by delivery_wake */
  gboolean stop;
  gint stop_flag;           /* stop, for the transports to read atomically */
  guint running;            /* workers still in their loop */
  guint busy;               /* workers inside a batch */
  guint64 unclaimed;        /* queued since the last claims (estimate) */
};

static gint64
now_s (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

/* The audit row of one recipient's outcome (no peer: the daemon's own). */
static void
outcome_row (AuditRecord *rec, const QueueJob *job, AuditEvent ev, const char *reply)
{
  *rec = (AuditRecord) { .event = ev, .invite_id = job->invite_id, .peer_uid = -1,
                         .recipients = job->address, .smtp_reply = reply };
}

/* Maps a transport outcome to the recipient's next state; res->reply
 * points into dj. */
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

/* Sleeps up to ms, or until the daemon stops.  FALSE when stopping.
 * A worker paused for the audit is alive and well (delivery_alive):
 * its loop turns every GATE_PROBE_MS, so it beats; a restart would not
 * bring the audit back, and would lose the outcomes it holds. */
static gboolean
worker_pause (Worker *w, guint ms)
{
  Delivery *d = w->d;
  gboolean stop;

  g_mutex_lock (&d->lock);
  if (!d->stop)
    g_cond_wait_until (&d->cond, &d->lock, g_get_monotonic_time () + ms * 1000);
  stop = d->stop;
  w->batch_started = 0;
  w->beat = g_get_monotonic_time ();
  g_mutex_unlock (&d->lock);
  return !stop;
}

/*
 * Audit first, then the queue (header comment), for n outcomes: jobs[i]
 * with res[i] and evs[i].  When the rows cannot be stored the outcomes
 * stay in memory and the recipients stay `sending`: nothing is recorded
 * without its row, and a message the relay took is not tried again
 * while this process lives.  With wait FALSE (the recorder, inside a
 * batch) that returns FALSE and the caller keeps them for the batch's
 * end; with wait TRUE (the worker, at the batch's end) the append is
 * retried once the gate is open again.  If the daemon stops first they
 * stay `sending`; the next start audits them `recovered` and tries them
 * again (the relay may then get a second copy, which that row says).
 * TRUE once handled (recorded, or its queue write failed after the rows
 * were stored, or given up because the daemon stops).
 */
static gboolean
record (Worker *w, Queue *queue, const QueueJob *const *jobs,
        const QueueResult *res, const AuditEvent *evs, guint n, gboolean wait)
{
  g_autoptr (GError) error = NULL;
  g_autofree AuditRecord *recs = g_new0 (AuditRecord, n);

  for (guint i = 0; i < n; i++)
    outcome_row (&recs[i], jobs[i], evs[i], res[i].reply);
  /* While the gate is closed only its own thread tries the audit. */
  while (!gate_is_open (w->d->gate)
         || !gate_append (w->d->gate, recs, n, &error))
    {
      g_clear_error (&error);
      if (!wait)
        return FALSE;
      if (!worker_pause (w, GATE_PROBE_MS))
        {
          g_warning ("stopping with %u outcome(s) not audited: their recipients"
                     " stay sending and are retried after the next start", n);
          return TRUE;
        }
    }
  if (!queue_record (queue, res, n, now_s (), &error))
    /* The recipients stay `sending`; the next start recovers them. */
    g_warning ("recording %u outcome(s) failed: %s", n, error->message);
  return TRUE;
}

/* Fetches each invite's message once per batch. */
static GBytes *
message_for (Worker *w, GHashTable *cache, const char *invite_id)
{
  g_autoptr (GError) error = NULL;
  GBytes *msg = g_hash_table_lookup (cache, invite_id);

  if (msg != NULL)
    return msg;
  msg = queue_message (w->queue, invite_id, &error);
  if (msg == NULL)
    {
      g_warning ("invite %s: message unreadable: %s", invite_id, error->message);
      return NULL;
    }
  g_hash_table_insert (cache, g_strdup (invite_id), msg);
  return msg;
}

/* One batch's outcomes on their way to the audit and the queue: those
 * final but not yet recorded wait in pending, in the order they came. */
typedef struct {
  Worker *w;
  GPtrArray *jobs;            /* QueueJob*, the claim */
  DeliveryJob *dj;            /* per claimed job */
  QueueResult *res;
  AuditEvent *evs;
  guint *of_sent;             /* index in the transport's jobs -> in jobs */
  GMutex lock;                /* the fields below, and settling */
  GCond cond;                 /* pending grew, or the transport returned */
  guint *pending;             /* indexes in jobs, n_pending of them */
  guint n_pending;
  gboolean sending;           /* the transport still runs */
  gboolean held;              /* a record in the batch failed: the rest
                               * waits for the batch's end */
} Batch;

/* Under b->lock, which it lets go while it writes: records what is
 * pending (record), in one audit and one queue transaction.  FALSE when
 * a closed gate kept it back (wait FALSE only): it is pending again,
 * ahead of what came meanwhile. */
static gboolean
flush_locked (Batch *b, gboolean wait)
{
  guint n = b->n_pending;

  if (n == 0)
    return TRUE;
  g_autofree guint *idx = g_memdup2 (b->pending, n * sizeof *idx);
  g_autofree const QueueJob **jobs = g_new (const QueueJob *, n);
  g_autofree QueueResult *res = g_new (QueueResult, n);
  g_autofree AuditEvent *evs = g_new (AuditEvent, n);
  for (guint k = 0; k < n; k++)
    {
      jobs[k] = g_ptr_array_index (b->jobs, idx[k]);
      res[k] = b->res[idx[k]];
      evs[k] = b->evs[idx[k]];
    }
  b->n_pending = 0;
  g_mutex_unlock (&b->lock);
  /* In the batch, the recorder thread's; at its end, the worker's. */
  gboolean ok = record (b->w, wait ? b->w->queue : b->w->record_queue,
                        jobs, res, evs, n, wait);
  g_mutex_lock (&b->lock);
  if (!ok)
    {
      memmove (b->pending + n, b->pending, b->n_pending * sizeof *idx);
      memcpy (b->pending, idx, n * sizeof *idx);
      b->n_pending += n;
    }
  return ok;
}

/*
 * The batch's recorder thread, while the transport runs: it records the
 * outcomes as they come, so that a message the relay took is in the
 * audit and the queue soon, not after the rest of the batch (up to
 * DELIVERY_BATCH_MAX transactions later, long enough for a crash to
 * send every one of them again).  It writes on the worker's second queue
 * connection (record_queue), which only the recorder of the worker's
 * batch in flight uses.  The SMTP session never waits for
 * a commit: what comes meanwhile is taken by the next record, at most
 * one per DELIVERY_RECORD_MS.  A record the audit refuses (gate.h)
 * ends it: the worker records the rest at the batch's end, waiting for
 * the gate as before.
 */
static gpointer
recorder (gpointer data)
{
  Batch *b = data;
  gint64 next = 0;            /* monotonic us before which none starts */

  g_mutex_lock (&b->lock);
  while (b->sending && !b->held)
    {
      if (b->n_pending == 0)
        g_cond_wait (&b->cond, &b->lock);
      else if (g_get_monotonic_time () < next)
        g_cond_wait_until (&b->cond, &b->lock, next);
      else
        {
          next = g_get_monotonic_time () + DELIVERY_RECORD_MS * 1000;
          b->held = !flush_locked (b, FALSE);
        }
    }
  g_mutex_unlock (&b->lock);
  return NULL;
}

/* Maps claimed job i's final outcome to its next state, and queues it
 * for the record (under b->lock once the recorder runs).  Backoff
 * counts from the failure, not from before a session that may have run
 * into its timeout. */
static void
settle (Batch *b, guint i, gboolean expired)
{
  decide (b->w->d, g_ptr_array_index (b->jobs, i), &b->dj[i], now_s (),
          &b->res[i], &b->evs[i]);
  if (expired && b->dj[i].outcome == DELIVERY_TEMPFAIL)
    {
      b->res[i].state = RCPT_EXPIRED;
      b->res[i].next_try = 0;
      b->evs[i] = AUDIT_EXPIRED;
    }
  b->pending[b->n_pending++] = i;
}

/* TransportDone: one outcome is final (for SMTP, a 250 means the relay
 * holds the message), handed to the recorder at once. */
static void
on_done (DeliveryJob *sent, guint index, gpointer data)
{
  Batch *b = data;
  guint i = b->of_sent[index];

  g_mutex_lock (&b->lock);
  b->dj[i] = sent[index];
  settle (b, i, FALSE);
  g_cond_signal (&b->cond);
  g_mutex_unlock (&b->lock);
}

static void
run_batch (Worker *w, GPtrArray *jobs)
{
  g_autoptr (GHashTable) cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                        (GDestroyNotify) g_bytes_unref);
  g_autofree DeliveryJob *dj = g_new0 (DeliveryJob, jobs->len);
  g_autofree QueueResult *res = g_new0 (QueueResult, jobs->len);
  g_autofree AuditEvent *evs = g_new0 (AuditEvent, jobs->len);
  g_autofree guint *of_sent = g_new0 (guint, jobs->len);
  g_autofree guint *pending = g_new0 (guint, jobs->len);
  g_autoptr (GPtrArray) tags = g_ptr_array_new_with_free_func (g_free);
  g_autofree DeliveryJob *send = g_new0 (DeliveryJob, jobs->len);
  Batch b = { .w = w, .jobs = jobs, .dj = dj, .res = res, .evs = evs,
              .of_sent = of_sent, .pending = pending };
  guint n_send = 0;
  gint64 now = now_s ();

  for (guint i = 0; i < jobs->len; i++)
    {
      QueueJob *job = g_ptr_array_index (jobs, i);
      GBytes *msg = message_for (w, cache, job->invite_id);
      char *tag = g_strdup_printf ("%s.%u", job->invite_id, job->idx);
      g_ptr_array_add (tags, tag);
      dj[i].recipient = job->address;
      /* LOCAL+TOKEN@DOMAIN: a bounce names this recipient (bounce.h). */
      char *from = bounce_return_address (w->d->cfg, job->envelope_from,
                                          job->return_token);
      g_ptr_array_add (tags, from);
      dj[i].envelope_from = from;
      dj[i].message = msg;
      dj[i].tag = tag;
      if (now >= job->expires || msg == NULL)
        {
          /* Past its deadline (max_age or the meeting's start): no try. */
          dj[i].outcome = msg == NULL ? DELIVERY_PERMFAIL : DELIVERY_TEMPFAIL;
          g_strlcpy (dj[i].reply, msg == NULL ? "message unreadable in queue"
                     : "expired before delivery", sizeof dj[i].reply);
          settle (&b, i, TRUE);
          continue;
        }
      of_sent[n_send] = i;
      send[n_send++] = dj[i];
    }
  g_mutex_init (&b.lock);
  g_cond_init (&b.cond);
  if (n_send > 0)
    {
      /* Without a thread the outcomes are recorded at the batch's end. */
      b.sending = TRUE;
      GThread *rec = g_thread_try_new ("record", recorder, &b, NULL);
      transport_deliver_each (w->transport, send, n_send, on_done, &b);
      g_mutex_lock (&b.lock);
      b.sending = FALSE;
      g_cond_signal (&b.cond);
      g_mutex_unlock (&b.lock);
      if (rec != NULL)
        g_thread_join (rec);
    }
  /* What is left, and what a closed gate kept back, waits for the
   * audit here (record). */
  g_mutex_lock (&b.lock);
  flush_locked (&b, TRUE);
  g_mutex_unlock (&b.lock);
  g_mutex_clear (&b.lock);
  g_cond_clear (&b.cond);
  g_message ("delivery batch: %u recipient(s), %u tried", jobs->len, n_send);
}

/* Sleeps until woken, stopped, or the next recipient is due. */
static void
wait_for_work (Worker *w)
{
  g_autoptr (GError) error = NULL;
  Delivery *d = w->d;
  gint64 next = queue_next_due (w->queue, &error);
  gint64 now = now_s ();
  gint64 wait_s = DELIVERY_IDLE_POLL;

  if (next >= 0)
    wait_s = CLAMP (next - now, 0, DELIVERY_IDLE_POLL);
  g_mutex_lock (&d->lock);
  if (d->wake == w->seen_wake && !d->stop && wait_s > 0)
    g_cond_wait_until (&d->cond, &d->lock,
                       g_get_monotonic_time () + wait_s * G_USEC_PER_SEC);
  w->seen_wake = d->wake;
  w->beat = g_get_monotonic_time ();
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
  Worker *w = data;
  Delivery *d = w->d;

  while (!stopping (d))
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) jobs = NULL;

      /* Delivery pauses while the audit cannot be written: no claim,
       * so no outcome that could not be recorded. */
      if (!gate_is_open (d->gate))
        {
          worker_pause (w, GATE_PROBE_MS);
          continue;
        }
      jobs = queue_claim_due (w->queue, now_s (), DELIVERY_BATCH_MAX, &error);
      if (jobs == NULL)
        g_warning ("reading the queue failed: %s", error->message);
      if (jobs != NULL && jobs->len > 0)
        {
          g_mutex_lock (&d->lock);
          d->busy++;
          d->unclaimed -= MIN (d->unclaimed, jobs->len);
          w->batch_started = g_get_monotonic_time ();
          w->batch_n = jobs->len;
          g_mutex_unlock (&d->lock);
          run_batch (w, jobs);
          g_mutex_lock (&d->lock);
          d->busy--;
          w->batch_started = 0;
          w->beat = g_get_monotonic_time ();
          g_mutex_unlock (&d->lock);
        }
      else
        wait_for_work (w);
    }
  g_mutex_lock (&d->lock);
  d->running--;
  g_cond_broadcast (&d->cond);
  g_mutex_unlock (&d->lock);
  return NULL;
}

/*
 * Crash recovery, for process start only: a recipient still `sending`
 * then was in flight when the last process died.  Never on a reload:
 * the retired workers are still sending theirs, and resetting them
 * would send them a second time and audit a crash that never was.
 */
static gboolean
audit_recovered (GPtrArray *jobs, gpointer data, GError **error)
{
  g_autofree AuditRecord *recs = g_new0 (AuditRecord, jobs->len);

  for (guint i = 0; i < jobs->len; i++)
    outcome_row (&recs[i], g_ptr_array_index (jobs, i), AUDIT_RECOVERED,
                 "in flight at a crash: retried, may be a duplicate");
  return gate_append (data, recs, jobs->len, error);
}

gboolean
delivery_recover (const char *queue_path, Gate *gate, GError **error)
{
  g_autoptr (Queue) q = queue_open (queue_path, error);
  g_autoptr (GPtrArray) jobs = NULL;

  /* The `recovered` rows are stored before the reset commits. */
  if (q == NULL
      || (jobs = queue_recover_then (q, now_s (), audit_recovered, gate, error)) == NULL)
    return FALSE;
  if (jobs->len > 0)
    g_message ("recovered %u recipient(s) that were in flight", jobs->len);
  return TRUE;
}

static void
worker_free (Worker *w)
{
  transport_free (w->transport);
  queue_close (w->record_queue);
  queue_close (w->queue);
  g_free (w);
}

static Worker *
worker_new (Delivery *d, GError **error)
{
  Worker *w = g_new0 (Worker, 1);

  w->d = d;
  if ((w->queue = queue_open (d->cfg->queue_db, error)) == NULL
      || (w->record_queue = queue_open (d->cfg->queue_db, error)) == NULL
      || (w->transport = transport_new (d->cfg, error)) == NULL)
    {
      worker_free (w);
      return NULL;
    }
  transport_set_stop (w->transport, &d->stop_flag);
  return w;
}

/* One worker for the file transport; [smtp] connections for SMTP. */
static guint
n_workers (const Config *cfg)
{
  return cfg->transport == TRANSPORT_SMTP ? MAX (cfg->smtp_connections, 1) : 1;
}

Delivery *
delivery_start (const Config *cfg, Gate *gate, GError **error)
{
  Delivery *d = g_new0 (Delivery, 1);
  guint n = n_workers (cfg);

  d->cfg = cfg;
  d->gate = gate;
  d->retry = retry_policy_from_config (cfg);
  d->workers = g_ptr_array_new ();
  g_mutex_init (&d->lock);
  g_cond_init (&d->cond);
  for (guint i = 0; i < n; i++)
    {
      Worker *w = worker_new (d, error);
      if (w == NULL)
        {
          delivery_stop (d);
          return NULL;
        }
      g_ptr_array_add (d->workers, w);
    }
  d->running = n;
  for (guint i = 0; i < n; i++)
    {
      Worker *w = g_ptr_array_index (d->workers, i);
      w->beat = g_get_monotonic_time ();
      w->thread = g_thread_new ("delivery", worker, w);
    }
  return d;
}

gboolean
delivery_alive (Delivery *d, gint64 now_us)
{
  gint64 idle_limit = (DELIVERY_IDLE_POLL + DELIVERY_ALIVE_SLACK) * G_USEC_PER_SEC;
  gboolean alive;

  if (d == NULL)
    return FALSE;
  g_mutex_lock (&d->lock);
  /* Stopping: the workers leave on purpose. */
  alive = d->stop || d->running == d->workers->len;
  for (guint i = 0; alive && !d->stop && i < d->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (d->workers, i);
      if (w->batch_started != 0)
        {
          /* transport_deliver's own bound for a batch of this size. */
          gint64 limit = ((gint64) w->batch_n + 2 * TRANSPORT_MAX_SESSIONS)
            * d->cfg->smtp_timeout_ms * 1000 + DELIVERY_ALIVE_SLACK * G_USEC_PER_SEC;
          alive = now_us - w->batch_started <= limit;
        }
      else
        alive = now_us - w->beat <= idle_limit;
    }
  g_mutex_unlock (&d->lock);
  return alive;
}

/* Under d->lock: is a busy worker's batch taking long? */
static gboolean
batch_is_slow (Delivery *d)
{
  gint64 limit = g_get_monotonic_time () - DELIVERY_SLOW_BATCH_MS * 1000;

  for (guint i = 0; i < d->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (d->workers, i);
      if (w->batch_started != 0 && w->batch_started < limit)
        return TRUE;
    }
  return FALSE;
}

/* Wakes one idle worker, when the rule in delivery.h says so: it claims
 * everything due (up to a batch), and waking them all would only have
 * them queue for the queue's write lock with empty claims, in the
 * committer's way.  A worker that finishes a batch claims again at once,
 * so a stream of work needs no wake at all. */
void
delivery_wake (Delivery *d, guint n)
{
  g_mutex_lock (&d->lock);
  d->unclaimed += n;
  if (d->busy == 0 || d->unclaimed >= DELIVERY_BATCH_MAX || batch_is_slow (d))
    {
      d->wake++;
      g_cond_signal (&d->cond);
    }
  g_mutex_unlock (&d->lock);
}

void
delivery_wake_stored (gpointer delivery, guint n)
{
  if (delivery != NULL)
    delivery_wake (delivery, n);
}

gboolean
delivery_stop_within (Delivery *d, guint seconds)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;
  gboolean done;

  if (d == NULL)
    return TRUE;
  g_mutex_lock (&d->lock);
  d->stop = TRUE;
  g_atomic_int_set (&d->stop_flag, 1);
  g_cond_broadcast (&d->cond);
  while (d->running > 0)
    if (!g_cond_wait_until (&d->cond, &d->lock, deadline))
      break;
  done = d->running == 0;
  g_mutex_unlock (&d->lock);
  if (done)
    delivery_stop (d);
  return done;
}

void
delivery_stop (Delivery *d)
{
  if (d == NULL)
    return;
  g_mutex_lock (&d->lock);
  d->stop = TRUE;
  g_atomic_int_set (&d->stop_flag, 1);
  g_cond_broadcast (&d->cond);
  g_mutex_unlock (&d->lock);
  for (guint i = 0; i < d->workers->len; i++)
    {
      Worker *w = g_ptr_array_index (d->workers, i);
      if (w->thread != NULL)
        g_thread_join (w->thread);
      worker_free (w);
    }
  g_ptr_array_unref (d->workers);
  g_mutex_clear (&d->lock);
  g_cond_clear (&d->cond);
  g_free (d);
}
