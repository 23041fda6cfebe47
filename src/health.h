/*
 * health.h - `invitemail health`: the daemon's figures judged against
 * [health] thresholds, each check OK, WARNING or CRITICAL, the whole the
 * worst of them (a monitoring plugin's 0/1/2).
 *
 * Checks: queue (recipients waiting), deferred (age of the oldest
 * deferred recipient), failures (failed, expired and bounced in the last
 * hour), relay (SMTP: time since the relay last took a message while
 * deferred work waits; TLS verified or a loopback relay in clear),
 * seal (age of the last audit seal; no key is a WARNING), disk (free
 * space in the state folders), delivery (the workers are alive), audit
 * (the audit can be written: while not, sends are refused and delivery
 * pauses, gate.h).
 *
 * Pure: the daemon gathers HealthFacts, health_report judges and writes
 * the answer lines, so every state can be made in a unit test.
 */
#ifndef INVITEMAIL_HEALTH_H
#define INVITEMAIL_HEALTH_H

#include <glib.h>

#include "config.h"
#include "queue.h"

typedef enum { HEALTH_OK, HEALTH_WARNING, HEALTH_CRITICAL } HealthLevel;

typedef struct {
  gint64 now;                 /* unix seconds */
  gboolean queue_read;        /* FALSE: the queue could not be read */
  QueueHealth queue;
  gboolean sealing;           /* an audit key is loaded */
  gint64 last_seal;           /* unix seconds; 0 = none seen */
  gboolean disk_read;
  guint disk_free_pct;        /* of the fuller state folder */
  guint64 disk_free_bytes;
  gboolean delivery_alive;
  gboolean audit_closed;      /* the audit cannot be written (gate.h) */
} HealthFacts;

const char *health_level_name (HealthLevel l);   /* "OK", ... */

/*
 * Appends health=LEVEL and one `check=NAME LEVEL VALUE TEXT` line per
 * check (answer_add) to out; returns the overall level.  VALUE is a
 * number or "-".  TEXT has no personal data.
 */
HealthLevel health_report (const Config *cfg, const HealthFacts *f, GString *out);

#endif
