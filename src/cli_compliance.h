/*
 * cli_compliance.h - the data-protection officer's commands of
 * `invitemail audit`: subject access (cli_subject.c) and the monthly
 * report (cli_report.c).  Both only read.
 */
#ifndef INVITEMAIL_CLI_COMPLIANCE_H
#define INVITEMAIL_CLI_COMPLIANCE_H

#include <glib.h>

typedef struct {
  const char *db;           /* the audit file */
  const char *queue_db;     /* the queue file, or NULL: audit only */
  const char *format;       /* text (NULL), csv or jsonl */
  const char *timezone;     /* IANA zone for times; NULL = UTC */
} SubjectOptions;

/* `invitemail audit subject ADDR`: an exit code (exitcodes.h). */
int cli_subject (const char *address, const SubjectOptions *o);

typedef struct {
  const char *db;
  const char *month;        /* YYYY-MM, in the organisation's zone */
  const char *format;       /* text (NULL), html or csv */
  const char *lang;         /* sv (NULL) or en */
  const char *sep;          /* csv: "," (NULL) or ";" (with a UTF-8 BOM) */
  const char *timezone;     /* NULL = Europe/Stockholm */
  guint seal_interval;      /* seconds; a gap over twice this is an outage */
} ReportOptions;

/* `invitemail audit report`: an exit code (exitcodes.h). */
int cli_report (const ReportOptions *o);

/* Shared by every command: CSV with a separator (every field quoted,
 * quotes doubled, CRLF), and a JSON string (UTF-8 as it is, '"', '\\'
 * and controls escaped; NULL is null). */
void cli_csv_line (GString *out, const char *const *fields, guint n, char sep);
void cli_json_string (GString *out, const char *s);
/* Unix ms as ISO 8601 with the zone's offset. (transfer full) */
char *cli_format_time (gint64 ms, GTimeZone *tz);

#endif
