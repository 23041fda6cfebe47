/*
 * transport_private.h - what transport.c and transport_file.c share.
 * Not part of the module's contract: only these two files include it.
 */
#ifndef INVITEMAIL_TRANSPORT_PRIVATE_H
#define INVITEMAIL_TRANSPORT_PRIVATE_H

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

#endif
