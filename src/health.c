/*
 * health.c - judging the daemon's figures.  See health.h.
 *
 * The relay check: the time since the relay last accepted a message
 * counts only while deferred recipients wait (an idle service is not a
 * sick one), from the later of that acceptance and the oldest deferred
 * recipient's invite, so one new deferral after a quiet day is not at
 * once critical.  "Verified TLS" is the configuration's promise: with
 * tls=starttls the transport gives no message to a relay whose
 * certificate or host name fails, so every acceptance counted here was
 * over verified TLS.
 */
#include "health.h"

#include "request.h"

static const char *const level_names[] = { "OK", "WARNING", "CRITICAL" };

const char *
health_level_name (HealthLevel l)
{
  return level_names[CLAMP ((int) l, 0, 2)];
}

/* Higher is worse. */
static HealthLevel
judge (guint64 value, const guint t[2])
{
  if (value >= t[1])
    return HEALTH_CRITICAL;
  return value >= t[0] ? HEALTH_WARNING : HEALTH_OK;
}

typedef struct {
  GPtrArray *lines;
  HealthLevel worst;
} Report;

static void G_GNUC_PRINTF (5, 6)
add (Report *r, const char *name, HealthLevel l, const char *value, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *text = NULL;

  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_ptr_array_add (r->lines, g_strdup_printf ("%s %s %s %s", name, health_level_name (l),
                                              value, text));
  r->worst = MAX (r->worst, l);
}

static char *
num (gint64 v)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT, v);
}

static void
check_queue (const Config *cfg, const HealthFacts *f, Report *r)
{
  g_autofree char *v = NULL, *age_s = NULL;
  gint64 age;

  if (!f->queue_read)
    {
      add (r, "queue", HEALTH_CRITICAL, "-", "the queue cannot be read");
      return;
    }
  v = num ((gint64) f->queue.pending);
  add (r, "queue", judge (f->queue.pending, cfg->health_queue), v,
       "%" G_GUINT64_FORMAT " recipient(s) waiting", f->queue.pending);
  if (f->queue.oldest_deferred_created == 0)
    {
      add (r, "deferred", HEALTH_OK, "0", "no recipient deferred");
      return;
    }
  age = MAX (f->now - f->queue.oldest_deferred_created, 0);
  age_s = num (age);
  add (r, "deferred", judge ((guint64) age, cfg->health_deferred), age_s,
       "the oldest deferred recipient was queued %" G_GINT64_FORMAT " s ago", age);
}

static void
check_failures (const Config *cfg, const HealthFacts *f, Report *r)
{
  guint64 bad = f->queue.failed_hour + f->queue.bounced_hour;
  g_autofree char *v = num ((gint64) bad);

  if (!f->queue_read)
    return;
  add (r, "failures", judge (bad, cfg->health_failures), v,
       "last hour: %" G_GUINT64_FORMAT " sent, %" G_GUINT64_FORMAT
       " failed or expired, %" G_GUINT64_FORMAT " bounced",
       f->queue.sent_hour, f->queue.failed_hour, f->queue.bounced_hour);
}

static void
check_relay (const Config *cfg, const HealthFacts *f, Report *r)
{
  const char *tls = cfg->smtp_tls == TLS_STARTTLS ? "verified TLS"
    : "clear text to a loopback relay";
  g_autofree char *v = NULL;
  gint64 since, quiet;

  if (cfg->transport != TRANSPORT_SMTP)
    {
      add (r, "relay", HEALTH_OK, "-", "file transport: no relay");
      return;
    }
  if (!f->queue_read)
    return;
  since = f->queue.last_sent > 0 ? f->now - f->queue.last_sent : -1;
  v = since >= 0 ? num (since) : g_strdup ("-");
  if (f->queue.oldest_deferred_created == 0)
    {
      if (since >= 0)
        add (r, "relay", HEALTH_OK, v, "last taken by the relay %" G_GINT64_FORMAT
             " s ago over %s; nothing deferred", since, tls);
      else
        add (r, "relay", HEALTH_OK, v, "nothing sent yet; nothing deferred");
      return;
    }
  quiet = f->now - MAX (f->queue.last_sent, f->queue.oldest_deferred_created);
  if (since >= 0)
    add (r, "relay", judge ((guint64) MAX (quiet, 0), cfg->health_relay), v,
         "last taken by the relay %" G_GINT64_FORMAT " s ago over %s; recipients"
         " deferred since", since, tls);
  else
    add (r, "relay", judge ((guint64) MAX (quiet, 0), cfg->health_relay), v,
         "the relay never took a message (%s required); recipients deferred", tls);
}

static void
check_seal (const Config *cfg, const HealthFacts *f, Report *r)
{
  g_autofree char *v = NULL;
  gint64 age;

  if (!f->sealing)
    {
      add (r, "seal", HEALTH_WARNING, "-",
           "the audit is not sealed: no key (run invitemail audit init)");
      return;
    }
  if (f->last_seal == 0)
    {
      add (r, "seal", HEALTH_WARNING, "-", "no audit seal written yet");
      return;
    }
  age = MAX (f->now - f->last_seal, 0);
  v = num (age);
  add (r, "seal", judge ((guint64) age, cfg->health_seal), v,
       "the last audit seal is %" G_GINT64_FORMAT " s old", age);
}

static void
check_disk (const Config *cfg, const HealthFacts *f, Report *r)
{
  g_autofree char *v = NULL;
  HealthLevel l;

  if (!f->disk_read)
    {
      add (r, "disk", HEALTH_CRITICAL, "-", "the state folder cannot be examined");
      return;
    }
  l = f->disk_free_pct <= cfg->health_disk[1] ? HEALTH_CRITICAL
    : f->disk_free_pct <= cfg->health_disk[0] ? HEALTH_WARNING : HEALTH_OK;
  v = num (f->disk_free_pct);
  add (r, "disk", l, v, "%u%% free (%" G_GUINT64_FORMAT " MiB) in the state folder",
       f->disk_free_pct, f->disk_free_bytes / (1024 * 1024));
}

HealthLevel
health_report (const Config *cfg, const HealthFacts *f, GString *out)
{
  Report r = { g_ptr_array_new_with_free_func (g_free), HEALTH_OK };

  check_queue (cfg, f, &r);
  check_failures (cfg, f, &r);
  check_relay (cfg, f, &r);
  check_seal (cfg, f, &r);
  check_disk (cfg, f, &r);
  add (&r, "delivery", f->delivery_alive ? HEALTH_OK : HEALTH_CRITICAL, "-",
       f->delivery_alive ? "the delivery workers are alive"
       : "a delivery worker is stuck or gone");
  add (&r, "audit", f->audit_closed ? HEALTH_CRITICAL : HEALTH_OK, "-",
       f->audit_closed ? "the audit cannot be written: sends are refused and"
       " delivery is paused until it can" : "the audit can be written");
  answer_add (out, "health", health_level_name (r.worst));
  for (guint i = 0; i < r.lines->len; i++)
    answer_add (out, "check", g_ptr_array_index (r.lines, i));
  g_ptr_array_unref (r.lines);
  return r.worst;
}
