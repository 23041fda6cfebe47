/*
 * audit_read.h - the top layer of the audit files: read-only access
 * for the review commands of `invitemail audit` (list, show, export,
 * head, report).  Works for a compliance user without write access to
 * the folder, while the daemon runs or not.
 */
#ifndef INVITEMAIL_AUDIT_READ_H
#define INVITEMAIL_AUDIT_READ_H

#include "audit.h"
#include "audit_anchor.h"

typedef struct {
  const char *invite_id;        /* NULL = any */
  const char *event;            /* NULL = any */
  gint64 since_ms, until_ms;    /* 0 = open */
  const char *booking;          /* NULL = any */
  const char *staff;            /* NULL = any */
  const char *recipient;        /* one address of recipients; NULL = any */
} AuditFilter;

typedef gboolean (*AuditRowFunc) (const AuditRow *row, gpointer data);
/* Calls fn for each matching row in order; stops if fn returns FALSE.
 * Reads in pages, each its own short read transaction: fn runs outside
 * any, so a slow or paused consumer holds no snapshot. */
gboolean audit_read (const char *path, const AuditFilter *f, AuditRowFunc fn,
                     gpointer data, GError **error);

/* The newest rows, newest first, at most max of them: read in one short
 * transaction and handed to fn after it ended (addresses stay as their
 * keyed hashes).  For the daemon's start (commit.c). */
gboolean audit_read_newest (const char *path, guint max, AuditRowFunc fn,
                            gpointer data, GError **error);

/* What the file knows of one address (audit_read_address). */
typedef struct {
  gboolean kept;            /* its clear text is kept beside the chain */
  gint64 erased_ms;         /* > 0: erased then (unix ms) */
  gint64 n_rows;            /* chain rows naming it (by keyed hash) */
} AuditAddressState;

/* Looks an address up by its keyed hash: `list --recipient` says
 * plainly when it was erased.  All zero when the file never had it (or
 * retention removed its rows). */
gboolean audit_read_address (const char *path, const char *address,
                             AuditAddressState *out, GError **error);

/* The newest row (seq and hash; 0 and 64 zeros when empty) of a file,
 * read-only: `invitemail audit head`. */
gboolean audit_read_head (const char *path, gint64 *seq, char hash[SHA256_HEX_SIZE],
                          GError **error);

/* The newest seal's head, as the daemon wrote it to the system log:
 * `invitemail audit head --json`.  FALSE with AUDIT_ERROR_BROKEN when
 * the file holds no seal. */
gboolean audit_read_anchor (const char *path, AuditAnchor *out,
                            GError **error);

#endif
