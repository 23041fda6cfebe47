/*
 * service.h - what the daemon does with one request: the
 * check-then-proceed sequence from parsed bytes to an answer.
 *
 *   parse (request.c) -> kind, validate (validate.c) -> render
 *   (render_fill.c) -> build (mime.c) -> store durably and audit, in a
 *   group commit (commit.c) -> the worker is woken -> answer `queued`.
 *
 * Runs on the main loop's thread.  Every refusal is audited with the
 * peer's uid and the code before it is answered; nothing from a refused
 * request is stored.  Answers that wait for a commit arrive later,
 * through the ServiceReply given with the request.
 */
#ifndef INVITEMAIL_SERVICE_H
#define INVITEMAIL_SERVICE_H

#include <glib.h>
#include <sys/types.h>

#include "config.h"
#include "refusal.h"

/* Opaque here: a caller of the service never looks inside them, and
 * this header stays light for control.c and the tests. */
typedef struct Queue Queue;            /* queue.h */
typedef struct Committer Committer;    /* commit.h */
typedef struct Templates Templates;    /* render.h */

typedef struct {
  pid_t pid;
  uid_t uid;
  gid_t gid;
} PeerCred;

typedef struct Service Service;

/* Clock for the daemon's times (unix seconds); injectable for tests. */
typedef gint64 (*ServiceClock) (void);

/*
 * Receives one whole answer, exactly once per request, on the main
 * loop's thread: at once for ping, status and preview, after the group
 * commit for send and refusals.  The bytes are borrowed.
 */
typedef void (*ServiceReply) (gpointer target, const char *answer, gsize len);

/* All arguments are borrowed and must outlive the Service.  queue is a
 * connection for reading status; committer stores and audits. */
Service *service_new (const Config *cfg, const Templates *templates,
                      Queue *queue, Committer *committer);
void service_free (Service *s);

/* Waits until every send handed to the build pool has reached the
 * committer (or been refused): call before the committer stops. */
void service_drain (Service *s);

/* Replaces configuration and templates (after a reload).  Borrowed. */
void service_set_config (Service *s, const Config *cfg, const Templates *templates);

/* Whether the peer may ask at all (root, the daemon's own uid,
 * allowed_users, allowed_groups including supplementary groups). */
gboolean service_peer_allowed (Service *s, const PeerCred *peer);

/* Fills the lines of a health answer (answer_add), between status=ok
 * and the end; runs on the main loop's thread. */
typedef void (*ServiceHealth) (gpointer data, GString *out);
void service_set_health (Service *s, ServiceHealth fn, gpointer data);

/* Handles one framed request; the answer goes to reply (target). */
void service_handle (Service *s, const PeerCred *peer, const char *frame,
                     gsize len, ServiceReply reply, gpointer target);

/* Audits a refusal found before a request could be parsed (framing,
 * peer not allowed, caps, timeouts), then answers it through reply. */
void service_refuse (Service *s, const PeerCred *peer, const Refusal *why,
                     ServiceReply reply, gpointer target);

#endif
