/*
 * retry.h - when to try a deferred recipient again, and when to stop.
 *
 * Capped exponential backoff ([retry] keys): the n-th retry waits
 * first_delay * 2^(n-1), at most max_delay.  An invite expires at
 * min(created + max_age, meeting_time): no retry goes out after the
 * meeting has started.  Pure functions of their arguments, so the
 * policy is tested without a clock.
 */
#ifndef INVITEMAIL_RETRY_H
#define INVITEMAIL_RETRY_H

#include <glib.h>

#include "config.h"

typedef struct {
  guint first_delay;   /* seconds */
  guint max_delay;     /* seconds */
  guint max_age;       /* seconds */
} RetryPolicy;

/* The policy the [retry] keys of cfg give: the one place that reads
 * them, for the service (expiry) and delivery (next try) alike. */
RetryPolicy retry_policy_from_config (const Config *cfg);

/* Seconds to wait after the attempts-th failed try (attempts >= 1). */
gint64 retry_delay (const RetryPolicy *p, guint attempts);

/* Unix time at which an invite created at `created` expires; meeting
 * is the meeting's start in unix seconds, or 0 when not given. */
gint64 retry_expires (const RetryPolicy *p, gint64 created, gint64 meeting);

/*
 * Next try for a recipient that just failed for the attempts-th time
 * at now, or -1 when the next try would fall at or after `expires`
 * (the recipient is then expired, not deferred).
 */
gint64 retry_next_try (const RetryPolicy *p, guint attempts, gint64 now,
                       gint64 expires);

#endif
