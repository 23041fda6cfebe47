/*
 * commit.c - the committer thread.  See commit.h.
 *
 * The main thread does the CPU work (parse, validate, render, MIME) and
 * submits finished items; this thread does the waiting on disk.  It
 * owns its queue connection; the audit is shared, behind the gate
 * (gate.h).  Results go back through g_main_context_invoke, so the
 * answer is written by the thread that owns the connection.
 */
#include "commit.h"

#include <string.h>

#include "audit_read.h"

struct CommitItem {
  CommitDone done;
  gpointer done_data;
  GStringChunk *strings;       /* every copied string lives here */
  gboolean has_insert;
  QueueInsert ins;
  GPtrArray *rcpts;            /* const char* into strings */
  gboolean has_audit;
  AuditRecord audit;
  CommitResult result;
  char *existing_id;
};

struct Committer {
  Queue *queue;
  Gate *gate;
  CommitStoredFunc on_stored;   /* under lock */
  gpointer on_stored_data;
  GThread *thread;
  GMutex lock;
  GCond cond;
  GPtrArray *incoming;         /* CommitItem*, under lock */
  guint in_flight;             /* taken by the thread, not yet handed back */
  gint expected;               /* announced, not yet submitted; under lock */
  gint64 gather_us;            /* under lock */
  gboolean stop;
  gboolean fail_commit;
};

static const char *
keep (CommitItem *it, const char *s)
{
  return s != NULL ? g_string_chunk_insert (it->strings, s) : NULL;
}

CommitItem *
commit_item_new (CommitDone done, gpointer data)
{
  CommitItem *it = g_new0 (CommitItem, 1);

  it->done = done;
  it->done_data = data;
  it->strings = g_string_chunk_new (512);
  it->result = COMMIT_STORED;
  return it;
}

static void
commit_item_free (CommitItem *it)
{
  if (it == NULL)
    return;
  if (it->ins.message != NULL)
    g_bytes_unref (it->ins.message);
  if (it->rcpts != NULL)
    g_ptr_array_unref (it->rcpts);
  g_string_chunk_free (it->strings);
  g_free (it->existing_id);
  g_free (it);
}

void
commit_item_set_insert (CommitItem *it, const QueueInsert *ins)
{
  it->has_insert = TRUE;
  it->ins = *ins;
  it->ins.id = keep (it, ins->id);
  it->ins.idempotency_key = keep (it, ins->idempotency_key);
  it->ins.fingerprint = keep (it, ins->fingerprint);
  it->ins.staff = keep (it, ins->staff);
  it->ins.booking = keep (it, ins->booking);
  it->ins.unit = keep (it, ins->unit);
  it->ins.message_id = keep (it, ins->message_id);
  it->ins.envelope_from = keep (it, ins->envelope_from);
  it->ins.message_sha256 = keep (it, ins->message_sha256);
  it->ins.message = g_bytes_ref (ins->message);
  it->rcpts = g_ptr_array_new ();
  for (guint i = 0; i < ins->n_recipients; i++)
    g_ptr_array_add (it->rcpts, (gpointer) keep (it, ins->recipients[i]));
  it->ins.recipients = (const char *const *) it->rcpts->pdata;
}

void
commit_item_set_audit (CommitItem *it, const AuditRecord *r)
{
  AuditRecord *a = &it->audit;

  it->has_audit = TRUE;
  *a = *r;
  a->invite_id = keep (it, r->invite_id);
  a->staff = keep (it, r->staff);
  a->booking = keep (it, r->booking);
  a->recipients = keep (it, r->recipients);
  a->smtp_reply = keep (it, r->smtp_reply);
  a->error_code = keep (it, r->error_code);
  a->field = keep (it, r->field);
  a->detail = keep (it, r->detail);
  a->lang = keep (it, r->lang);
  a->template_name = keep (it, r->template_name);
  a->link_sha256 = keep (it, r->link_sha256);
  a->notice_sha256 = keep (it, r->notice_sha256);
  a->template_sha256 = keep (it, r->template_sha256);
  a->signature_sha256 = keep (it, r->signature_sha256);
  a->message_sha256 = keep (it, r->message_sha256);
  a->org_unit = keep (it, r->org_unit);
}

CommitResult
commit_item_result (const CommitItem *it)
{
  return it->result;
}

const char *
commit_item_invite_id (const CommitItem *it)
{
  return it->existing_id != NULL ? it->existing_id : it->ins.id;
}

/* Turns an item's audit row into what really happened to it. */
static void
adjust_audit (CommitItem *it)
{
  AuditRecord *a = &it->audit;

  switch (it->result)
    {
    case COMMIT_STORED:
    case COMMIT_UNAUDITED:
      return;
    case COMMIT_DUPLICATE:
      *a = (AuditRecord) { .event = AUDIT_DUPLICATE_REQUEST, .invite_id = it->existing_id,
                           .peer_uid = a->peer_uid, .staff = a->staff,
                           .booking = a->booking };
      return;
    case COMMIT_CONFLICT:
    case COMMIT_FAILED:
      *a = (AuditRecord) { .event = AUDIT_REJECTED, .peer_uid = a->peer_uid,
                           .error_code = it->result == COMMIT_CONFLICT ? "conflict"
                                                                        : "unavailable",
                           .field = it->result == COMMIT_CONFLICT ? "idempotency_key"
                                                                   : NULL,
                           .detail = it->result == COMMIT_CONFLICT
                             ? "idempotency key used for another request"
                             : "the queue could not store the invite" };
      return;
    }
}

/* The batch's audit rows, each adjusted to what happened to its item. */
static GArray *
batch_rows (GPtrArray *batch)
{
  GArray *recs = g_array_sized_new (FALSE, FALSE, sizeof (AuditRecord), batch->len);

  for (guint i = 0; i < batch->len; i++)
    {
      CommitItem *it = g_ptr_array_index (batch, i);
      if (!it->has_audit)
        continue;
      adjust_audit (it);
      g_array_append_val (recs, it->audit);
    }
  return recs;
}

/*
 * The audit cannot be written: no item may be answered `queued`, no
 * answer that must be audited first (a status that shows addresses, a
 * cancel) may go out (COMMIT_UNAUDITED: its handler answers
 * `unavailable`), and the refusals go out without their rows.  All are
 * counted for the audit_resumed row; a send the service already refused
 * as `unavailable` counts as a refused request.
 */
static void
batch_unaudited (Committer *c, GPtrArray *batch)
{
  guint refusals = 0;

  for (guint i = 0; i < batch->len; i++)
    {
      CommitItem *it = g_ptr_array_index (batch, i);
      /* An audit-only item hears it too: what it was to answer (a
       * status showing addresses, a DSN to record) must not go ahead
       * without its row; a refusal still goes out, without it. */
      if (!it->has_insert && it->has_audit)
        it->result = COMMIT_UNAUDITED;
      if (it->has_insert && it->result != COMMIT_CONFLICT)
        {
          it->result = COMMIT_UNAUDITED;
          gate_note_refused_send (c->gate);
        }
      else if (!it->has_insert && it->has_audit
               && it->audit.event != AUDIT_REJECTED)
        gate_note_refused_send (c->gate);
      else if (!it->has_insert
               && g_strcmp0 (it->audit.error_code, "unavailable") == 0)
        gate_note_refused_send (c->gate);
      else if (it->has_audit)
        refusals++;
    }
  gate_note_unaudited (c->gate, refusals);
}

/* A batch without inserts: its rows only. */
static void
write_rows (Committer *c, GPtrArray *batch)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) recs = batch_rows (batch);

  if (recs->len > 0
      && !gate_append (c->gate, (AuditRecord *) recs->data, recs->len, &error))
    batch_unaudited (c, batch);
}

typedef struct {
  Committer *c;
  GPtrArray *batch;
  QueueBatchItem *qi;
  CommitItem **map;
  guint n;
  gboolean reached;         /* the inserts ran; results are known */
  gboolean audited;         /* the batch's rows are stored */
} BatchRun;

/* Inside the queue transaction: each item's fate from its insert. */
static void
take_results (BatchRun *b)
{
  for (guint i = 0; i < b->n; i++)
    {
      QueueBatchItem *q = &b->qi[i];
      CommitItem *it = b->map[i];

      if (g_error_matches (q->error, QUEUE_ERROR, QUEUE_ERROR_CONFLICT))
        it->result = COMMIT_CONFLICT;
      else if (q->error != NULL)
        {
          g_warning ("invite %s not stored: %s", it->ins.id, q->error->message);
          it->result = COMMIT_FAILED;
        }
      else if (q->existing_id != NULL)
        {
          it->result = COMMIT_DUPLICATE;
          it->existing_id = g_steal_pointer (&q->existing_id);
        }
      g_clear_error (&q->error);
    }
}

/* QueueBeforeCommit: the rows go to the audit while the queue
 * transaction is still open; if they cannot be stored, the queue rolls
 * back and nothing of the batch exists. */
static gboolean
audit_then_commit (gpointer data, GError **error)
{
  BatchRun *b = data;
  g_autoptr (GArray) recs = NULL;

  b->reached = TRUE;
  take_results (b);
  recs = batch_rows (b->batch);
  if (recs->len > 0
      && !gate_append (b->c->gate, (AuditRecord *) recs->data, recs->len, error))
    return FALSE;
  b->audited = TRUE;
  return TRUE;
}

/*
 * The queue commit failed after the batch's rows were stored: each
 * `accepted` row is followed by a `rejected` row with the same invite
 * id, code unavailable, and the client is told so.  A repeat
 * (`duplicate_request`) names the invite stored before, which stays:
 * its `rejected` row carries no id.  If even these rows cannot be
 * written, the log says how many.
 */
static void
withdraw (Committer *c, BatchRun *b)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) recs = g_array_new (FALSE, FALSE, sizeof (AuditRecord));

  for (guint i = 0; i < b->n; i++)
    {
      CommitItem *it = b->map[i];
      AuditRecord r = { .event = AUDIT_REJECTED, .peer_uid = it->audit.peer_uid,
                        .invite_id = it->result == COMMIT_STORED ? it->ins.id : NULL,
                        .error_code = "unavailable",
                        .detail = "not stored: the queue commit failed after the row"
                                  " above; answered unavailable" };

      if (it->result != COMMIT_STORED && it->result != COMMIT_DUPLICATE)
        continue;
      it->result = COMMIT_FAILED;
      g_array_append_val (recs, r);
    }
  if (recs->len > 0
      && !gate_append (c->gate, (AuditRecord *) recs->data, recs->len, &error))
    g_critical ("%u accepted row(s) of invites that were not stored could not be"
                " withdrawn: %s", recs->len, error->message);
}

static void
store_invites (Committer *c, GPtrArray *batch, gboolean fail_commit)
{
  g_autoptr (GError) error = NULL;
  g_autofree QueueBatchItem *qi = g_new0 (QueueBatchItem, batch->len);
  g_autofree CommitItem **map = g_new0 (CommitItem *, batch->len);
  BatchRun b = { c, batch, qi, map, 0, FALSE, FALSE };

  for (guint i = 0; i < batch->len; i++)
    {
      CommitItem *it = g_ptr_array_index (batch, i);
      if (!it->has_insert)
        continue;
      map[b.n] = it;
      qi[b.n++].ins = &it->ins;
    }
  if (b.n == 0)
    {
      write_rows (c, batch);
      return;
    }
  queue_set_fail_commit (c->queue, fail_commit);
  if (queue_insert_batch_then (c->queue, qi, b.n, audit_then_commit, &b, &error))
    return;
  if (b.audited)
    {
      g_warning ("queue commit of %u invite(s) failed: %s", b.n, error->message);
      withdraw (c, &b);
    }
  else if (b.reached)
    batch_unaudited (c, batch);   /* the gate has logged why */
  else
    {
      g_warning ("queue commit of %u invite(s) failed: %s", b.n, error->message);
      /* The queue failed before anything was audited: the rows say so. */
      for (guint i = 0; i < b.n; i++)
        map[i]->result = COMMIT_FAILED;
      write_rows (c, batch);
    }
  for (guint i = 0; i < b.n; i++)
    {
      g_clear_error (&qi[i].error);
      g_free (qi[i].existing_id);
    }
}

static gboolean
hand_back (gpointer data)
{
  GPtrArray *batch = data;

  for (guint i = 0; i < batch->len; i++)
    {
      CommitItem *it = g_ptr_array_index (batch, i);
      if (it->done != NULL)
        it->done (it, it->done_data);
    }
  return G_SOURCE_REMOVE;
}

static void
batch_free (gpointer data)
{
  g_ptr_array_unref (data);
}

/* hand_back on the thread that iterates the default main context. */
static void
hand_back_later (GPtrArray *batch)
{
  GSource *src = g_idle_source_new ();

  g_source_set_priority (src, G_PRIORITY_HIGH);
  g_source_set_callback (src, hand_back, g_ptr_array_ref (batch), batch_free);
  g_source_attach (src, NULL);
  g_source_unref (src);
}

static void
settle (Committer *c, GPtrArray *batch)
{
  g_mutex_lock (&c->lock);
  c->in_flight -= batch->len;
  g_mutex_unlock (&c->lock);
}

/*
 * Under c->lock: what is waiting, at most COMMIT_BATCH_MAX items; the
 * rest stays for the next commit.  A burst of thousands in one
 * transaction would hold the queue's and the audit's write locks for
 * its whole length (the workers' claims and records wait) and keep the
 * first answer until the last item is stored.
 */
static GPtrArray *
take_batch (Committer *c)
{
  GPtrArray *batch = c->incoming;

  c->incoming = g_ptr_array_new_with_free_func ((GDestroyNotify) commit_item_free);
  if (batch->len <= COMMIT_BATCH_MAX)
    return batch;
  for (guint i = COMMIT_BATCH_MAX; i < batch->len; i++)
    g_ptr_array_add (c->incoming, g_ptr_array_index (batch, i));
  g_ptr_array_set_free_func (batch, NULL);
  g_ptr_array_set_size (batch, COMMIT_BATCH_MAX);
  g_ptr_array_set_free_func (batch, (GDestroyNotify) commit_item_free);
  return batch;
}

/*
 * Under c->lock, with items waiting: while more are announced and the
 * batch has room, wait for them, up to COMMIT_GATHER_US.  Under load a
 * batch that would have gone alone takes the sends being built beside
 * it, and the next one does not pay its own two fsyncs for them.
 */
static void
gather (Committer *c)
{
  gint64 until = g_get_monotonic_time () + c->gather_us;

  while (c->expected > 0 && !c->stop && c->incoming->len < COMMIT_BATCH_MAX)
    if (!g_cond_wait_until (&c->cond, &c->lock, until))
      break;
}

static gpointer
committer_thread (gpointer data)
{
  Committer *c = data;

  for (;;)
    {
      GPtrArray *batch;
      guint stored = 0;
      gboolean fail_commit;

      g_mutex_lock (&c->lock);
      while (c->incoming->len == 0 && !c->stop)
        g_cond_wait (&c->cond, &c->lock);
      gather (c);
      if (c->incoming->len == 0 && c->stop)
        {
          g_mutex_unlock (&c->lock);
          return NULL;
        }
      batch = take_batch (c);
      c->in_flight += batch->len;
      fail_commit = c->fail_commit;
      g_mutex_unlock (&c->lock);

      /* While the gate is closed nothing reaches the queue, and the
       * answers go out at once (the gate's thread probes). */
      if (!gate_is_open (c->gate))
        batch_unaudited (c, batch);
      else
        store_invites (c, batch, fail_commit);
      for (guint i = 0; i < batch->len; i++)
        {
          CommitItem *it = g_ptr_array_index (batch, i);
          if (it->has_insert && it->result == COMMIT_STORED)
            stored += it->ins.n_recipients;
        }
      /* Under the lock: once committer_set_on_stored has returned, a
       * retired listener (SIGHUP) is never called, so it may be freed. */
      if (stored > 0)
        {
          g_mutex_lock (&c->lock);
          if (c->on_stored != NULL)
            c->on_stored (c->on_stored_data, stored);
          g_mutex_unlock (&c->lock);
        }
      /* Queued on the main context before in_flight drops: once
       * committer_pending() is 0, iterating the main context delivers
       * every answer.  Always queued, never run here: the context is
       * free while the daemon stops (g_main_context_invoke would then
       * run the answers on this thread). */
      hand_back_later (batch);
      settle (c, batch);
      g_ptr_array_unref (batch);
    }
}

typedef struct {
  Queue *queue;
  gint64 cutoff_ms;         /* rows older were never judged */
  GHashTable *withdrawn;    /* invite ids with a later `rejected` row */
  GPtrArray *orphans;       /* invite ids to withdraw (owned) */
  GError *error;
} Reconcile;

/* AuditRowFunc over the newest rows, newest first. */
static gboolean
reconcile_row (const AuditRow *row, gpointer data)
{
  Reconcile *r = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (QueueStatus) st = NULL;

  if (g_strcmp0 (row->event, "daemon_stop") == 0
      || g_strcmp0 (row->event, "daemon_start") == 0)
    return FALSE;           /* a clean stop drains the committer */
  if (g_strcmp0 (row->event, "rejected") == 0 && row->invite_id != NULL)
    g_hash_table_add (r->withdrawn, g_strdup (row->invite_id));
  if (g_strcmp0 (row->event, "accepted") != 0 || row->invite_id == NULL
      || g_hash_table_contains (r->withdrawn, row->invite_id))
    return TRUE;
  if (row->time_ms < r->cutoff_ms)
    return FALSE;
  st = queue_status (r->queue, row->invite_id, &error);
  if (st != NULL)
    return FALSE;           /* stored: every older batch was too */
  if (!g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND))
    {
      r->error = g_steal_pointer (&error);
      return FALSE;
    }
  g_ptr_array_add (r->orphans, g_strdup (row->invite_id));
  return TRUE;
}

gint
committer_reconcile (Queue *queue, Gate *gate, const char *audit_path,
                     guint retention_days, GError **error)
{
  Reconcile r = { queue, 0, g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL),
                  g_ptr_array_new_with_free_func (g_free), NULL };
  g_autofree AuditRecord *recs = NULL;
  gint n = -1;

  if (retention_days > 0)
    r.cutoff_ms = g_get_real_time () / 1000 - (gint64) retention_days * 86400 * 1000;
  if (!audit_read_newest (audit_path, COMMIT_RECONCILE_ROWS, reconcile_row, &r, error))
    goto out;
  if (r.error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&r.error));
      goto out;
    }
  recs = g_new0 (AuditRecord, MAX (r.orphans->len, 1));
  for (guint i = 0; i < r.orphans->len; i++)
    recs[i] = (AuditRecord) { .event = AUDIT_REJECTED, .peer_uid = -1,
                              .invite_id = g_ptr_array_index (r.orphans, i),
                              .error_code = "unavailable",
                              .detail = "not stored: the daemon stopped between the"
                                        " audit and the queue commit; its client got"
                                        " no answer" };
  if (r.orphans->len > 0 && !gate_append (gate, recs, r.orphans->len, error))
    goto out;
  if (r.orphans->len > 0)
    g_warning ("%u accepted invite(s) were not stored at a crash: audited as"
               " rejected (unavailable)", r.orphans->len);
  n = (gint) r.orphans->len;
out:
  g_hash_table_unref (r.withdrawn);
  g_ptr_array_unref (r.orphans);
  return n;
}

Committer *
committer_start (const char *queue_path, Gate *gate, GError **error)
{
  Committer *c = g_new0 (Committer, 1);

  c->queue = queue_open (queue_path, error);
  if (c->queue == NULL)
    {
      g_free (c);
      return NULL;
    }
  c->gate = gate;
  c->gather_us = COMMIT_GATHER_US;
  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  c->incoming = g_ptr_array_new_with_free_func ((GDestroyNotify) commit_item_free);
  c->thread = g_thread_new ("committer", committer_thread, c);
  return c;
}

void
committer_set_on_stored (Committer *c, CommitStoredFunc fn, gpointer data)
{
  g_mutex_lock (&c->lock);
  c->on_stored = fn;
  c->on_stored_data = data;
  g_mutex_unlock (&c->lock);
}

void
committer_set_gather (Committer *c, gint64 us)
{
  g_mutex_lock (&c->lock);
  c->gather_us = us;
  g_mutex_unlock (&c->lock);
}

void
committer_expect (Committer *c, gint delta)
{
  g_mutex_lock (&c->lock);
  c->expected = MAX (c->expected + delta, 0);
  g_cond_signal (&c->cond);
  g_mutex_unlock (&c->lock);
}

/* withdraw: the announcements this submit settles (0 or 1). */
static void
submit (Committer *c, CommitItem *item, gint withdraw)
{
  g_mutex_lock (&c->lock);
  g_ptr_array_add (c->incoming, item);
  c->expected = MAX (c->expected - withdraw, 0);
  g_cond_signal (&c->cond);
  g_mutex_unlock (&c->lock);
}

void
committer_submit_announced (Committer *c, CommitItem *item)
{
  submit (c, item, 1);
}

void
committer_submit (Committer *c, CommitItem *item)
{
  submit (c, item, 0);
}

gboolean
committer_audit_open (Committer *c)
{
  return gate_is_open (c->gate);
}

guint
committer_pending (Committer *c)
{
  guint n;

  g_mutex_lock (&c->lock);
  n = c->incoming->len + c->in_flight;
  g_mutex_unlock (&c->lock);
  return n;
}

void
committer_set_fail_commit (Committer *c, gboolean fail)
{
  g_mutex_lock (&c->lock);
  c->fail_commit = fail;
  g_mutex_unlock (&c->lock);
}

void
committer_stop (Committer *c)
{
  if (c == NULL)
    return;
  g_mutex_lock (&c->lock);
  c->stop = TRUE;
  g_cond_signal (&c->cond);
  g_mutex_unlock (&c->lock);
  g_thread_join (c->thread);
  queue_close (c->queue);
  g_ptr_array_unref (c->incoming);
  g_mutex_clear (&c->lock);
  g_cond_clear (&c->cond);
  g_free (c);
}
