/*
 * cli_report_private.h - what cli_report.c (reading a month) and
 * cli_report_write.c (text, CSV and HTML) share.  Not for other files.
 */
#ifndef INVITEMAIL_CLI_REPORT_PRIVATE_H
#define INVITEMAIL_CLI_REPORT_PRIVATE_H

#include "cli_compliance.h"
#include "digest.h"

/* The report's words in one language. */
typedef struct {
  const char *lang;
  const char *title, *partial, *not_over, *begins, *verify, *verify_ok,
    *verify_bad, *head, *head_keep, *summary, *per_day, *per_unit, *day,
    *unit, *invites, *recipients, *sent, *failed, *expired, *refused,
    *problems, *time, *event, *invite, *booking, *staff, *reply, *versions,
    *version, *first, *last, *count, *changed_to, *configs, *keys, *outages,
    *from, *to, *minutes, *refusals, *code, *none, *no_seals, *zone,
    *no_unit, *loaded_same, *loaded_new, *events, *seals_unchecked, *rows,
    *seals, *unwritable, *seconds, *refused_unavailable, *without_row,
    *unreadable;
} Words;

typedef struct {
  guint invites, recipients, sent, failed, expired, refused;
} Counts;

typedef struct {
  char *unit, *staff, *booking;
} InviteInfo;

typedef struct {
  gint64 ms;
  char *event, *invite, *reply;
} Problem;

typedef struct {
  char *name;
  guint count;
  gint64 first, last;
} VersionUse;

typedef struct {
  gint64 ms;
  char *text;               /* "from -> to" or the row's values */
  char *event, *sha, *changed;
} Note;

/* A period the daemon ran but could not write the audit, from its
 * `audit_resumed` row (gate_gap.h). */
typedef struct {
  gint64 row_ms;            /* the row: when the audit could be written again */
  gint64 from_ms;           /* the first failed append */
  gint64 secs;
  guint refused, unaudited;
  char *unreadable;         /* not NULL: the row's detail did not parse;
                             * this is it, cut short and made printable */
} Unwritable;

typedef struct {
  const ReportOptions *o;
  const Words *w;
  GTimeZone *tz;
  gint64 since, until;      /* ms, the month in the zone */
  guint n_days;
  Counts days[31];
  Counts total;
  GHashTable *units;        /* unit -> Counts* */
  GHashTable *invites;      /* id -> InviteInfo* */
  GPtrArray *problems;      /* Problem* */
  GHashTable *refusals;     /* code -> count */
  GHashTable *events;       /* event -> count */
  GPtrArray *versions;      /* VersionUse* */
  GPtrArray *version_changes; /* Note* (text) */
  char *last_version;
  GPtrArray *configs;       /* Note* (event, sha, changed) */
  char *last_config;
  GArray *seals;            /* gint64 ms, in order, with the neighbours */
  GPtrArray *unwritable;    /* Unwritable*, in order, also one that runs
                             * over the month's start or end */
  gint64 first_row_ms;      /* oldest row in the file; 0 = empty */
  gboolean verified;
  char *verify_text;
  gint64 head_seq;
  char head_hash[SHA256_HEX_SIZE];
} Report;

typedef struct {
  gint64 from, to;          /* to = 0: no seal since */
} Outage;

/* A time as the report shows it: the zone's "YYYY-MM-DD HH:MM".
 * (transfer full) */
char *report_when (const Report *rp, gint64 ms);
/* The keys of h in collation order. (transfer container) */
GList *report_sorted_keys (GHashTable *h);
/* Where an outage ends for its length: its next seal, else now or the
 * month's end. */
gint64 report_outage_end (const Report *rp, const Outage *x);

/* The writers: everything escaped for its format. */
void report_write_text (Report *rp, GString *o, GArray *outs, const char *partial);
void report_write_csv (Report *rp, GString *o, char sep);
void report_write_html (Report *rp, GString *o, GArray *outs, const char *partial);

#endif
