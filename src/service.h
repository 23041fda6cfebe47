/*
 * service.h - what the daemon does with one request: the
 * check-then-proceed sequence from parsed bytes to an answer.
 *
 *   parse (request.c) -> kind, validate (validate.c) -> render
 *   (render.c) -> build (mime.c) -> store durably (queue.c) -> audit
 *   (audit.c) -> wake the delivery worker -> answer `queued`.
 *
 * Runs on the main loop's thread.  Every refusal is audited with the
 * peer's uid and the code; nothing from a refused request is stored.
 */
#ifndef INVITEMAIL_SERVICE_H
#define INVITEMAIL_SERVICE_H

#include <glib.h>
#include <sys/types.h>

#include "audit.h"
#include "config.h"
#include "delivery.h"
#include "queue.h"
#include "refusal.h"
#include "render.h"

typedef struct {
  pid_t pid;
  uid_t uid;
  gid_t gid;
} PeerCred;

typedef struct Service Service;

/* Clock for the daemon's times (unix seconds); injectable for tests. */
typedef gint64 (*ServiceClock) (void);

/* All arguments are borrowed and must outlive the Service; delivery
 * may be NULL (nothing to wake). */
Service *service_new (const Config *cfg, const Templates *templates,
                      Queue *queue, Audit *audit, Delivery *delivery);
void service_free (Service *s);

/* Whether the peer may ask at all (root, the daemon's own uid,
 * allowed_users, allowed_groups including supplementary groups). */
gboolean service_peer_allowed (Service *s, const PeerCred *peer);

/* Handles one framed request; appends the whole answer to out. */
void service_handle (Service *s, const PeerCred *peer, const char *frame,
                     gsize len, GString *out);

/* Answers and audits a refusal found before a request could be parsed
 * (framing, peer not allowed, caps, timeouts). */
void service_refuse (Service *s, const PeerCred *peer, const Refusal *why,
                     GString *out);

#endif
