/*
 * ratelimit.c - per-uid sending windows.  See ratelimit.h.
 *
 * Each uid has a queue of (time, recipients) entries, oldest first, for
 * the last 24 hours: the per-minute count walks back from the newest
 * entry (at most invites_per_minute steps), the day's recipients are a
 * running sum kept as entries come and go.  Entries older than a day
 * are dropped at each use, and a uid whose queue empties is forgotten,
 * so memory stays bounded by the limits.
 */
#include "ratelimit.h"

#define MINUTE_MS (60 * 1000)
#define DAY_MS (24 * 3600 * 1000)

typedef struct {
  gint64 ms;
  guint n;
} Sent;

typedef struct {
  GQueue sent;                  /* Sent*, oldest first */
  guint64 day_rcpts;            /* sum of n over sent */
} Window;

struct Limits {
  GHashTable *by_uid;           /* uid+1 -> Window* */
  guint takes;                  /* since the last sweep */
};

#define SWEEP_EVERY 1024

static void
window_free (Window *w)
{
  g_queue_clear_full (&w->sent, g_free);
  g_free (w);
}

Limits *
limits_new (void)
{
  Limits *l = g_new0 (Limits, 1);

  l->by_uid = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) window_free);
  return l;
}

void
limits_free (Limits *l)
{
  if (l == NULL)
    return;
  g_hash_table_unref (l->by_uid);
  g_free (l);
}

static void
window_expire (Window *w, gint64 now_ms)
{
  Sent *s;

  while ((s = g_queue_peek_head (&w->sent)) != NULL && s->ms <= now_ms - DAY_MS)
    {
      w->day_rcpts -= s->n;
      g_free (g_queue_pop_head (&w->sent));
    }
}

/* Invites in the last minute, counting at most stop of them. */
static guint
window_last_minute (Window *w, gint64 now_ms, guint stop)
{
  guint n = 0;

  for (GList *i = w->sent.tail; i != NULL && n < stop; i = i->prev)
    {
      if (((Sent *) i->data)->ms <= now_ms - MINUTE_MS)
        break;
      n++;
    }
  return n;
}

/* Forgets the uids that sent nothing for a day. */
static void
limits_sweep (Limits *l, gint64 now_ms)
{
  GHashTableIter it;
  Window *w;

  g_hash_table_iter_init (&it, l->by_uid);
  while (g_hash_table_iter_next (&it, NULL, (gpointer *) &w))
    {
      window_expire (w, now_ms);
      if (g_queue_is_empty (&w->sent))
        g_hash_table_iter_remove (&it);
    }
}

gboolean
limits_take (Limits *l, const LimitsConfig *cfg, uid_t uid, guint n_rcpts,
             gint64 now_ms, Refusal *why)
{
  gpointer key = GUINT_TO_POINTER ((guint) uid + 1);
  Window *w = g_hash_table_lookup (l->by_uid, key);
  Sent *s;

  if (cfg->invites_per_minute == 0 && cfg->recipients_per_day == 0)
    return TRUE;
  if (++l->takes >= SWEEP_EVERY)
    {
      l->takes = 0;
      limits_sweep (l, now_ms);
      w = g_hash_table_lookup (l->by_uid, key);
    }
  if (w == NULL)
    {
      w = g_new0 (Window, 1);
      g_hash_table_insert (l->by_uid, key, w);
    }
  window_expire (w, now_ms);
  if (cfg->invites_per_minute > 0
      && window_last_minute (w, now_ms, cfg->invites_per_minute) >= cfg->invites_per_minute)
    return refusal_set (why, REFUSAL_RATE_LIMITED, NULL,
                        "at most %u invitations a minute per user; try again "
                        "in a minute", cfg->invites_per_minute);
  if (cfg->recipients_per_day > 0
      && w->day_rcpts + n_rcpts > cfg->recipients_per_day)
    return refusal_set (why, REFUSAL_RATE_LIMITED, NULL,
                        "at most %u recipients a day per user; try again later",
                        cfg->recipients_per_day);
  s = g_new (Sent, 1);
  s->ms = now_ms;
  s->n = n_rcpts;
  g_queue_push_tail (&w->sent, s);
  w->day_rcpts += n_rcpts;
  return TRUE;
}

void
limits_give_back (Limits *l, uid_t uid, guint n_rcpts, gint64 taken_ms)
{
  gpointer key = GUINT_TO_POINTER ((guint) uid + 1);
  Window *w = g_hash_table_lookup (l->by_uid, key);

  if (w == NULL)
    return;
  /* The newest matching entry: it is near the tail. */
  for (GList *i = w->sent.tail; i != NULL; i = i->prev)
    {
      Sent *s = i->data;
      if (s->ms == taken_ms && s->n == n_rcpts)
        {
          w->day_rcpts -= s->n;
          g_free (s);
          g_queue_delete_link (&w->sent, i);
          break;
        }
    }
  if (g_queue_is_empty (&w->sent))
    g_hash_table_remove (l->by_uid, key);
}
