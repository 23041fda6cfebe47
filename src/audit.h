/*
 * audit.h - the insert-only audit log with its hash chain: the bottom
 * layer of the audit files (the chain and its storage).
 *
 * A separate SQLite file from the queue, written only by the daemon and
 * read (read-only) by `invitemail audit`.  Each row holds the evidence
 * fields and two hashes: prev (the row_hash of the row before, 64 zeros
 * for the first) and row_hash = SHA-256 over a canonical encoding of
 * (seq, every field, prev).  Any change, insertion or deletion inside
 * the chain breaks a link or a hash, and verification names the row.
 *
 * Canonical encoding: for each field in fixed order, a 4-byte
 * big-endian length and the bytes (NULL = length 0xFFFFFFFF, no bytes);
 * integers as decimal ASCII.  It never depends on SQLite's own storage.
 *
 * Never stored: the meeting link and the message body (only their
 * SHA-256).  Recipient addresses: compliance must prove who was sent
 * what, and a person may have theirs erased, so the chain holds a keyed
 * hash of each (HMAC-SHA256 under a per-installation secret kept in the
 * file, outside the chain) and the clear address is kept beside the
 * chain, where erasure removes it without breaking any hash or seal.
 *
 * Time: the daemon, never a client, sets row times, and they never go
 * back: when the host clock steps back the rows keep the time of the
 * row before and one `clock_back` row records the step.
 *
 * The layers above: audit_seal.h (signed seals, init, retention),
 * audit_verify.h (verification from the published value), audit_anchor.h
 * (seal heads in the system log), audit_read.h (the review commands).
 *
 * Thread safety: one Audit may be shared by threads; appends serialise
 * on a mutex because the chain is a single sequence.
 */
#ifndef INVITEMAIL_AUDIT_H
#define INVITEMAIL_AUDIT_H

#include <glib.h>

#include "digest.h"

typedef struct Audit Audit;

GQuark audit_error_quark (void);
#define AUDIT_ERROR (audit_error_quark ())
typedef enum {
  AUDIT_ERROR_IO,
  AUDIT_ERROR_BROKEN,  /* verify found a fault: the message names it */
  AUDIT_ERROR_FORMAT   /* a file of another schema version or kind */
} AuditError;

typedef enum {
  AUDIT_DAEMON_START,
  AUDIT_DAEMON_STOP,
  AUDIT_CONFIG_LOADED,
  AUDIT_CONFIG_RELOADED,
  AUDIT_CONFIG_REFUSED,
  AUDIT_ACCEPTED,
  AUDIT_DUPLICATE_REQUEST,  /* idempotent repeat: same id answered */
  AUDIT_REJECTED,
  AUDIT_SENT,
  AUDIT_DEFERRED,
  AUDIT_FAILED,
  AUDIT_EXPIRED,
  AUDIT_RECOVERED,          /* in flight at a crash: may be a duplicate */
  AUDIT_RESUMED,            /* the audit is writable again after a gap */
  AUDIT_RETENTION,          /* queue/outbox data removed: counts in detail */
  AUDIT_STATUS_SHOWN,       /* a status answer showed an invite's addresses */
  AUDIT_BOUNCED,            /* a DSN with action failed came back */
  AUDIT_DSN_DELAYED,        /* a DSN with action delayed: not final */
  AUDIT_CANCELLED,          /* invitemail cancel: stopped and notified */
  AUDIT_SEALED,             /* written only by the seal layer */
  AUDIT_PURGED,             /* written only by retention */
  AUDIT_CLOCK_BACK,         /* written only by the store: clock stepped back */
  AUDIT_ERASED,             /* written only by erasure: who, how many rows */
  AUDIT_N_EVENTS
} AuditEvent;

const char *audit_event_name (AuditEvent e);   /* "accepted", ... */
/* -1 if unknown */
int audit_event_from_name (const char *name);

/* One row to append.  Every pointer may be NULL; peer_uid -1 = none. */
typedef struct {
  AuditEvent event;
  const char *invite_id;
  gint64 peer_uid;
  const char *staff;
  const char *booking;
  const char *recipients;       /* addresses joined by ','; the chain
                                 * keeps their keyed hashes, the clear
                                 * text is kept beside it (erasable) */
  const char *smtp_reply;       /* safe text */
  const char *error_code;       /* refusal code, for rejected */
  const char *field;            /* refusal field */
  const char *detail;           /* plain words (no personal data) */
  const char *lang;
  const char *template_name;
  const char *link_sha256;
  const char *notice_sha256;
  const char *template_sha256;
  const char *signature_sha256;
  const char *message_sha256;
  const char *org_unit;         /* [organisation] unit, for accepted */
} AuditRecord;

/* Opens (creating) the audit for appending; holds PATH.lock so there is
 * one writer.  A file of another schema version is refused with
 * AUDIT_ERROR_FORMAT.  (transfer full) */
Audit *audit_open (const char *path, GError **error);
void audit_close (Audit *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Audit, audit_close)

/* FALSE when, at open, the newest row's hash did not recompute (the
 * tail was changed): the daemon should log it; verify names the row.
 * Appending still works and chains to the stored hash. */
gboolean audit_head_intact (Audit *a);

/*
 * Appends n rows in ONE transaction (one fsync), for group commit: the
 * chain continues row by row and the in-memory head moves only after
 * the commit.  All or nothing: on error no row of the batch is stored.
 * Thread-safe.  n == 0 is a no-op.  AUDIT_SEALED, PURGED and CLOCK_BACK
 * are refused (only the layers that own them write them).
 */
gboolean audit_append_batch (Audit *a, const AuditRecord *recs, guint n,
                             GError **error);

/* Appends one row durably; thread-safe.  Time is taken here (the
 * daemon, never the client, sets times) unless audit_set_clock. */
gboolean audit_append (Audit *a, const AuditRecord *rec, GError **error);

/* For tests: a clock returning unix milliseconds. */
typedef gint64 (*AuditClock) (gpointer data);
void audit_set_clock (Audit *a, AuditClock clock, gpointer data);

/* A row as read back. */
typedef struct {
  gint64 seq;
  gint64 time_ms;
  char *event;
  char *invite_id;
  gint64 peer_uid;              /* -1 = none */
  char *staff, *booking;
  char *recipients;             /* clear, "(erased)" for one erased */
  char *recipient_keys;         /* as in the chain: keyed hashes */
  char *smtp_reply, *error_code, *field;
  char *detail, *lang, *template_name;
  char *link_sha256, *notice_sha256, *template_sha256, *signature_sha256;
  char *message_sha256;
  char *prev_hash, *row_hash;
  char *org_unit;
  gint64 epoch;                 /* seal rows: the key's epoch; else -1 */
  char *seal;                   /* seal rows: hex Ed25519 signature */
  char *next_key;               /* seal rows: hex public key of epoch+1 */
  char *prev_seal;              /* seal rows: row_hash of the seal before */
} AuditRow;
void audit_row_free (AuditRow *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AuditRow, audit_row_free)

#endif
