/*
 * ratelimit.h - per-uid sending limits: invites per minute and recipients
 * over the last 24 hours, for one allowed local user at a time.
 *
 * One allowed user must not be able to mail-bomb an address through the
 * organisation's relay, or fill the disk: each uid has its own window.
 * The windows live in memory (a restart starts them afresh); what they
 * hold is bounded by the limits themselves: at most recipients_per_day
 * entries per uid, and uids that sent nothing for a day are dropped.
 *
 * Not thread-safe: used on the main loop only (service.c).  Times are
 * passed in (unix milliseconds), so tests need no clock.
 */
#ifndef INVITEMAIL_RATELIMIT_H
#define INVITEMAIL_RATELIMIT_H

#include <glib.h>
#include <sys/types.h>

#include "refusal.h"

typedef struct Limits Limits;

typedef struct {
  guint invites_per_minute;     /* 0 = no limit */
  guint recipients_per_day;     /* 0 = no limit */
} LimitsConfig;

Limits *limits_new (void);
void limits_free (Limits *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Limits, limits_free)

/*
 * Whether uid may send one more invite of n_rcpts recipients at now_ms.
 * When it may, the invite is counted at once (so a burst waiting for
 * its commit is counted too) and TRUE is returned; otherwise *why is
 * rate_limited, with the limit reached in plain words, and nothing is
 * counted.
 */
gboolean limits_take (Limits *l, const LimitsConfig *cfg, uid_t uid,
                      guint n_rcpts, gint64 now_ms, Refusal *why);

/* Gives back what limits_take counted at taken_ms for an invite that
 * was not stored after all (a commit failure or an idempotent repeat). */
void limits_give_back (Limits *l, uid_t uid, guint n_rcpts, gint64 taken_ms);

#endif
