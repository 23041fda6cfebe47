/*
 * retry.c - the backoff policy.  See retry.h.  No state, no clock.
 */
#include "retry.h"

RetryPolicy
retry_policy_from_config (const Config *cfg)
{
  RetryPolicy p = {
    .first_delay = cfg->retry_first_delay,
    .max_delay = cfg->retry_max_delay,
    .max_age = cfg->retry_max_age,
  };

  return p;
}

gint64
retry_delay (const RetryPolicy *p, guint attempts)
{
  gint64 d = p->first_delay;

  g_return_val_if_fail (attempts >= 1, p->first_delay);
  /* Doubling stops at the cap, so no shift can overflow. */
  for (guint i = 1; i < attempts && d < p->max_delay; i++)
    d *= 2;
  return MIN (d, (gint64) p->max_delay);
}

gint64
retry_expires (const RetryPolicy *p, gint64 created, gint64 meeting)
{
  gint64 by_age = created + p->max_age;

  if (meeting > 0 && meeting < by_age)
    return meeting;
  return by_age;
}

gint64
retry_next_try (const RetryPolicy *p, guint attempts, gint64 now,
                gint64 expires)
{
  gint64 next = now + retry_delay (p, attempts);

  return next >= expires ? -1 : next;
}
