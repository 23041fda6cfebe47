/*
 * evidence.h - the structured part of an audit row's detail text.
 *
 * Rows that carry more evidence than the chain has columns for keep it
 * in `detail` as space-separated NAME=VALUE words, VALUE without
 * spaces, except the last word, `file=`, which runs to the end:
 *
 *   accepted         notice_version=V notice_rendered_sha256=HEX
 *                    meeting_time=2026-10-05T09:00:00Z
 *   config_loaded    config_sha256=HEX file=PATH
 *   config_reloaded  config_sha256=HEX changed=KEY,KEY file=PATH
 *
 * Absent values are left out.  Readers (invitemail audit) take values
 * only through evidence_get, so the encoding can move to columns of
 * its own without touching them.
 */
#ifndef INVITEMAIL_EVIDENCE_H
#define INVITEMAIL_EVIDENCE_H

#include <glib.h>

/* For an accepted row; any argument may be NULL. (transfer full) */
char *evidence_accepted (const char *notice_version,
                         const char *notice_rendered_sha256,
                         GDateTime *meeting_time);

/* For config_loaded (changed NULL) and config_reloaded. (transfer full) */
char *evidence_config (const char *config_sha256, const char *changed,
                       const char *file);

/* The value of NAME in a detail text, or NULL. (transfer full) */
char *evidence_get (const char *detail, const char *name);

#endif
