/*
 * builder.c - the message-building pool.  See builder.h.
 *
 * A GThreadPool does the queueing and the threads; what it lacks is a
 * way to wait for the jobs in hand without destroying it, which a
 * reload needs: the count of unfinished jobs and a condition for it.
 */
#include "builder.h"

struct Builder {
  GThreadPool *pool;
  BuilderFunc fn;
  gpointer data;
  guint threads;
  GMutex lock;
  GCond idle;
  guint pending;             /* pushed, not yet finished; under lock */
};

static void
run_job (gpointer job, gpointer data)
{
  Builder *b = data;

  b->fn (job, b->data);
  g_mutex_lock (&b->lock);
  if (--b->pending == 0)
    g_cond_broadcast (&b->idle);
  g_mutex_unlock (&b->lock);
}

Builder *
builder_new (guint threads, BuilderFunc fn, gpointer data)
{
  Builder *b = g_new0 (Builder, 1);

  if (threads == 0)
    threads = g_get_num_processors ();
  b->threads = CLAMP (threads, 1, BUILDER_THREADS_MAX);
  b->fn = fn;
  b->data = data;
  g_mutex_init (&b->lock);
  g_cond_init (&b->idle);
  /* Exclusive: the threads start now and stay, so a job never waits
   * for a thread to be made (the pool would otherwise make and end them
   * as load comes and goes).  Cannot fail for exclusive pools. */
  b->pool = g_thread_pool_new (run_job, b, (gint) b->threads, TRUE, NULL);
  return b;
}

void
builder_push (Builder *b, gpointer job)
{
  g_mutex_lock (&b->lock);
  b->pending++;
  g_mutex_unlock (&b->lock);
  g_thread_pool_push (b->pool, job, NULL);
}

void
builder_drain (Builder *b)
{
  if (b == NULL)
    return;
  g_mutex_lock (&b->lock);
  while (b->pending > 0)
    g_cond_wait (&b->idle, &b->lock);
  g_mutex_unlock (&b->lock);
}

guint
builder_pending (Builder *b)
{
  guint n;

  g_mutex_lock (&b->lock);
  n = b->pending;
  g_mutex_unlock (&b->lock);
  return n;
}

guint
builder_threads (const Builder *b)
{
  return b->threads;
}

void
builder_free (Builder *b)
{
  if (b == NULL)
    return;
  /* immediate FALSE, wait TRUE: every queued job still runs. */
  g_thread_pool_free (b->pool, FALSE, TRUE);
  g_mutex_clear (&b->lock);
  g_cond_clear (&b->idle);
  g_free (b);
}
