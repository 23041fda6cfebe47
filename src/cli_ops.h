/*
 * cli_ops.h - `invitemail bounce` (a DSN on standard input, for a mail
 * system's alias or pipe transport) and `invitemail health` (monitoring,
 * exit 0/1/2).  See cli_ops.c.
 */
#ifndef INVITEMAIL_CLI_OPS_H
#define INVITEMAIL_CLI_OPS_H

#include <glib.h>

#include "request.h"

/* Sends one request and returns the answer, or NULL with *rc set (the
 * client's exchange). */
typedef RawRequest *(*CliExchange) (gconstpointer ctx, const GString *req, int *rc);

/* recipient: --recipient, or NULL to take it from the environment. */
/* Prints a daemon's refusal (error, field, message) to stderr and
 * returns its exit code: one wording and one mapping for every command. */
int cli_print_refusal (const RawRequest *ans);

int cli_bounce (CliExchange exchange, gconstpointer ctx, const char *recipient);
int cli_health (CliExchange exchange, gconstpointer ctx, gboolean json);

#endif
