/*
 * transport_private.h - what transport.c, transport_file.c and
 * transport_net.c share.  Not part of the module's contract: only these
 * files (and test_transport.c, for the bounds) include it.
 */
#ifndef INVITEMAIL_TRANSPORT_PRIVATE_H
#define INVITEMAIL_TRANSPORT_PRIVATE_H

#include <signal.h>
#include "transport.h"

/* True when addr can go between '<' and '>' in MAIL FROM / RCPT TO:
 * non-empty, at most 254 bytes, printable ASCII without space, '<' or
 * '>' (so no CR, LF or other control can inject a command). */
gboolean transport_address_is_safe (const char *addr);

/* Sets a job's outcome, code and (made safe) reply. */
void transport_job_set (DeliveryJob *job, DeliveryOutcome outcome, int code,
                        const char *reply);

/* Creates dir (0750) when missing and checks it is a writable folder. */
gboolean transport_file_prepare (const char *dir, GError **error);

/* Writes each job as dir/TAG.eml then dir/TAG.envelope, atomically. */
void transport_file_deliver (const char *dir, DeliveryJob *jobs, guint n);

/* ---- transport_net.c: bounds for what libESMTP leaves unbounded ---- */

/* Interrupts a blocked connect() in the delivering thread only. */
#define TRANSPORT_WATCH_SIGNAL (SIGRTMIN + 2)

/* Resolves host within timeout_ms.  Returns what to hand libESMTP, in
 * order (its IPv4 literals, then the name itself if it has IPv6
 * addresses; an IP literal host as is), or NULL with *error
 * (G_IO_ERROR_TIMED_OUT or G_IO_ERROR_NOT_FOUND) set.
 * (transfer full: GPtrArray of char *) */
GPtrArray *transport_resolve (const char *host, guint timeout_ms,
                              GError **error);

typedef struct ConnectWatch ConnectWatch;

/* Arms the connect() watch for the calling thread; NULL if the system
 * has no timer for it (connect() is then unbounded). */
ConnectWatch *transport_watch_start (guint timeout_ms);
/* Stops it once connected; the watch stays valid.  NULL is fine. */
void transport_watch_disarm (ConnectWatch *w);
/* TRUE once the budget ran out (before a disarm). */
gboolean transport_watch_expired (const ConnectWatch *w);
void transport_watch_free (ConnectWatch *w);

#endif
