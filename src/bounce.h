/*
 * bounce.h - bounces (DSNs) reaching the invite: the daemon's side of
 * `request=bounce`, and each recipient's return address.
 *
 * Flow: the mail system pipes a DSN sent to LOCAL+TOKEN@DOMAIN into
 * `invitemail bounce`, which parses it (dsn.c, in that unprivileged
 * process) and sends only token, action, status and diagnostic here
 * (or dsn_error, the code its parser refused with).  The daemon, the
 * only writer of queue and audit, checks them again, maps the token to
 * its recipient, writes the audit row (through the committer, like
 * every refusal) and then the recipient's DSN in the queue, and answers
 * with the invite id and the state the recipient now shows.
 *
 * Refused, audited, nothing changed: a client-side refusal (not_dsn,
 * request_too_large, unknown_token), a malformed or unknown token
 * (unknown_token), a recipient the relay never took (not_sent), bad
 * values (invalid_value).  A `delayed` DSN after a `failed` one changes
 * nothing (the final word stays).
 */
#ifndef INVITEMAIL_BOUNCE_H
#define INVITEMAIL_BOUNCE_H

#include <glib.h>

#include "commit.h"
#include "config.h"
#include "queue.h"
#include "request.h"
#include "service.h"

/*
 * Handles one bounce request.  TRUE when the answer will come through
 * reply (after the audit commit); FALSE with *why set to refuse now.
 */
gboolean bounce_handle (Queue *q, Committer *c, const PeerCred *peer,
                        const RawRequest *req, ServiceReply reply, gpointer target,
                        Refusal *why);

/*
 * The envelope sender for one recipient: LOCAL+TOKEN@DOMAIN from
 * [bounce] (local_part, domain: default the domain of envelope_from),
 * or a copy of envelope_from when [bounce] verp is off, there is no
 * token (a recipient stored before tokens), or envelope_from is the
 * null sender.  (transfer full)
 */
char *bounce_return_address (const Config *cfg, const char *envelope_from,
                             const char *token);

#endif
