/*
 * transport_private.h - what the transport files share.  Not part of the
 * module's contract: only src/transport*.c (and test_transport.c, for
 * the bounds) include it.
 *
 * Layers: transport.c (the contract in transport.h) picks a backend from
 * the table below and holds the small helpers every backend uses; the
 * backends (transport_file.c, transport_relay.c) include only this
 * header, never each other or transport.c's internals.  The SMTP
 * backend is layered: transport_relay.c (the batch) over
 * transport_smtp.c (one libESMTP session), which builds on
 * transport_tls.c (OpenSSL), transport_wire.c (verdicts from the bytes)
 * and transport_net.c (lookup and connect bounds).
 */
#ifndef INVITEMAIL_TRANSPORT_PRIVATE_H
#define INVITEMAIL_TRANSPORT_PRIVATE_H

#include <signal.h>
#include "envelope.h"
#include "transport.h"

/* ---- backends ---- */

/* One transport_deliver_each call, as the backends see it. */
typedef struct {
  DeliveryJob *jobs;
  guint n;
  const gint *stop;     /* as in transport_set_stop; NULL: never */
  TransportDone done;   /* NULL: nobody listens */
  gpointer data;
  gboolean *reported;   /* per job: done was called for it */
} TransportRun;

typedef struct {
  const char *name;
  /* Checks the configuration and builds what every delivery needs (cfg
   * outlives it).  NULL with *error set.  (transfer full) */
  gpointer (*prepare) (const Config *cfg, GError **error);
  /* transport_deliver_each's contract for run->jobs: fills every job's
   * outcome, and calls transport_report for each as soon as it is final
   * (transport.c reports the rest when this returns). */
  void (*deliver) (gpointer state, TransportRun *run);
  void (*free) (gpointer state);
} TransportBackend;

extern const TransportBackend transport_file_backend;  /* transport_file.c */
extern const TransportBackend transport_smtp_backend;  /* transport_relay.c */

/* ---- helpers in transport.c ---- */

/* Sets a job's outcome, code and (made safe) reply. */
void transport_job_set (DeliveryJob *job, DeliveryOutcome outcome, int code,
                        const char *reply);

/* Marks TEMPFAIL with why every job whose which[i] is set (all when
 * which is NULL). */
void transport_jobs_fail (DeliveryJob *jobs, guint n, const gboolean *which,
                          const char *why);

/* run->jobs[i]'s outcome is final: tells the caller's TransportDone, the
 * first time only.  Returns the microseconds spent in it (the SMTP
 * session's deadline moves by as much). */
gint64 transport_report (TransportRun *run, guint i);

/* TRUE once the daemon is stopping (transport_set_stop). */
gboolean transport_stopping (const TransportRun *run);

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

/* Sets TCP_NODELAY on every TCP socket of this process connected to
 * port (see transport_net.c for why and why this is safe). */
void transport_relay_nodelay (guint port);

#endif
