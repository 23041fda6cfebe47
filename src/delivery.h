/*
 * delivery.h - the delivery workers: threads ([smtp] connections of
 * them for SMTP, one for the file transport) that take due recipients
 * from the queue, hand them to the transport in batches over one
 * connection each, and record each outcome in the queue and the audit.
 *
 * The socket side never waits on SMTP: it only stores and calls
 * delivery_wake.  The worker has its own queue connection (SQLite
 * connections are per thread here).
 */
#ifndef INVITEMAIL_DELIVERY_H
#define INVITEMAIL_DELIVERY_H

#include <glib.h>
#include "audit.h"
#include "config.h"
#include "gate.h"
#include "retry.h"

/* Recipients handed to one connection at most.  A batch costs a
 * session (connect, EHLO, QUIT) and a claim however many it holds;
 * under a backlog a bigger one is what lets one connection keep up with
 * the accepts.  Its size does not bound what a crash re-sends: the
 * outcomes are recorded while it runs (DELIVERY_RECORD_MS). */
#define DELIVERY_BATCH_MAX 100
/* Inside a batch, each outcome (a message the relay took, or refused)
 * goes to the batch's recorder thread as soon as it is final, and the
 * recorder writes what came (audit rows first, then the queue) at once
 * when its last record began at least this long ago, else when that is
 * so; the rest at the batch's end.  A crash re-sends (and the audit
 * flags `recovered`) what the relay took since the last record: about
 * this long plus a commit's worth of transactions per connection, plus
 * the one in flight.  It bounds the commits a fast relay costs (one
 * audit and one queue commit per this long and connection); the SMTP
 * session never waits for them. */
#define DELIVERY_RECORD_MS 20
/* The worker looks at the queue at least this often (seconds). */
#define DELIVERY_IDLE_POLL 30

typedef struct Delivery Delivery;

/*
 * Start-up recovery, once per process and before the first
 * delivery_start: recipients left `sending` by a crash are deferred
 * (due now) and audited as `recovered` (the relay may have them); the
 * rows are stored before the queue changes, and if they cannot be,
 * nothing changes and it fails.
 * Never at a reload, whose retired workers may still be sending.
 */
gboolean delivery_recover (const char *queue_path, Gate *gate, GError **error);

/*
 * Opens the workers' queue connections and transports, then starts the
 * threads.  It does not recover: see delivery_recover.  cfg and audit
 * must outlive it.  (transfer full)
 */
Delivery *delivery_start (const Config *cfg, Gate *gate, GError **error);

/*
 * Tells the workers that n recipients were queued.  Thread-safe, cheap.
 * Connections open as the work needs them, up to [smtp] connections:
 * an idle worker is woken when no worker is busy, when the recipients
 * not yet claimed would fill a batch, or when a busy worker's batch has
 * run for DELIVERY_SLOW_BATCH_MS (a slow or stalled relay connection
 * must not hold back new work).  Otherwise the busy worker takes the
 * new recipients with its next claim, in a bigger batch on a session
 * already paid for.
 */
void delivery_wake (Delivery *d, guint n);

/* delivery_wake with the Delivery as a gpointer: the committer's
 * listener for stored invites (committer_set_on_stored). */
void delivery_wake_stored (gpointer delivery, guint n);
#define DELIVERY_SLOW_BATCH_MS 1000

/*
 * Liveness, for the service manager's watchdog and `health`: every
 * worker thread is still in its loop, and each is either idle and has
 * turned its loop within DELIVERY_IDLE_POLL + DELIVERY_ALIVE_SLACK
 * seconds, or inside a batch for no longer than the transport's bound
 * for that batch (transport.h) plus the slack.  now_us is
 * g_get_monotonic_time ().  Thread-safe.
 */
gboolean delivery_alive (Delivery *d, gint64 now_us);
#define DELIVERY_ALIVE_SLACK 30

/* Asks the worker to stop after the batch in flight, joins it and frees
 * everything.  NULL is fine. */
void delivery_stop (Delivery *d);

/*
 * The same, but waits at most `seconds` for the batch in flight.  FALSE
 * when the worker is still inside an SMTP session then: it is left
 * running (the process is about to exit) and its recipients, still
 * `sending` in the queue, are retried after the next start.
 */
gboolean delivery_stop_within (Delivery *d, guint seconds);

#endif
