/*
 * audit.h - the insert-only audit log with its hash chain.
 *
 * A separate SQLite file from the queue, written only by the daemon and
 * read (read-only) by `invitemail audit`.  Each row holds the SPEC
 * fields and two hashes: prev (the row_hash of the row before, 64 zeros
 * for the first) and row_hash = SHA-256 over a canonical encoding of
 * (seq, prev, every field).  Any change, insertion or deletion inside
 * the chain breaks a link or a hash, and audit_verify names the row.
 *
 * Canonical encoding: for each field in fixed order, a 4-byte
 * big-endian length and the bytes (NULL = length 0xFFFFFFFF, no bytes);
 * integers as decimal ASCII.  It never depends on SQLite's own storage.
 *
 * Never stored: the meeting link and the message body (only their
 * SHA-256).  Recipient addresses are stored: compliance must prove who
 * was sent what (SPEC "The audit log").
 *
 * Thread safety: one Audit may be shared by threads; audit_append
 * serialises on a mutex because the chain is a single sequence.
 */
#ifndef INVITEMAIL_AUDIT_H
#define INVITEMAIL_AUDIT_H

#include <glib.h>

typedef struct Audit Audit;

GQuark audit_error_quark (void);
#define AUDIT_ERROR (audit_error_quark ())
typedef enum {
  AUDIT_ERROR_IO,
  AUDIT_ERROR_BROKEN   /* verify found a bad row: message names it */
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
  AUDIT_RETENTION,          /* queue/outbox data removed: counts in detail */
  AUDIT_STATUS_SHOWN,       /* a status answer showed an invite's addresses */
  AUDIT_SEALED,             /* written only by audit_seal */
  AUDIT_PURGED,             /* written only by audit_purge */
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
  const char *recipients;       /* addresses joined by ',' */
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

/* Opens (creating) the audit for appending. (transfer full) */
Audit *audit_open (const char *path, GError **error);
void audit_close (Audit *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Audit, audit_close)

/* FALSE when, at open, the newest row's hash did not recompute (the
 * tail was changed): the daemon should log it; audit_verify names the
 * row.  Appending still works and chains to the stored hash. */
gboolean audit_head_intact (Audit *a);

/*
 * Appends n rows in ONE transaction (one fsync), for group commit: the
 * chain continues row by row and the in-memory head moves only after
 * the commit.  All or nothing: on error no row of the batch is stored.
 * Thread-safe.  n == 0 is a no-op.  AUDIT_SEALED/PURGED are refused
 * (only audit_seal and audit_purge write them).
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
  char *staff, *booking, *recipients, *smtp_reply, *error_code, *field;
  char *detail, *lang, *template_name;
  char *link_sha256, *notice_sha256, *template_sha256, *signature_sha256;
  char *message_sha256;
  char *prev_hash, *row_hash;
  char *org_unit;
  gint64 epoch;                 /* sealed rows: the key's epoch; else -1 */
  char *seal;                   /* sealed rows: hex HMAC-SHA256 */
} AuditRow;
void audit_row_free (AuditRow *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AuditRow, audit_row_free)

typedef struct {
  const char *invite_id;        /* NULL = any */
  const char *event;            /* NULL = any */
  gint64 since_ms, until_ms;    /* 0 = open */
  const char *booking;          /* NULL = any */
  const char *staff;            /* NULL = any */
  const char *recipient;        /* one address of recipients; NULL = any */
} AuditFilter;

/* Read-only access, for `invitemail audit`. */
typedef gboolean (*AuditRowFunc) (const AuditRow *row, gpointer data);
/* Calls fn for each matching row in order; stops if fn returns FALSE.
 * Reads in pages, each its own short read transaction: fn runs outside
 * any, so a slow or paused consumer holds no snapshot. */
gboolean audit_read (const char *path, const AuditFilter *f, AuditRowFunc fn,
                     gpointer data, GError **error);

/*
 * Walks the whole chain.  Returns TRUE when every row's hash and link
 * hold; otherwise FALSE with AUDIT_ERROR_BROKEN naming the first bad
 * seq.  *n_rows (optional) gets the rows checked.
 */
gboolean audit_verify (const char *path, gint64 *n_rows, GError **error);

/* ---- forward-secure sealing (audit_seal.c) ---------------------------
 *
 * Epoch keys: K_0 is 32 random bytes made by audit_init; K_{e+1} =
 * SHA-256 ("invitemail-evolve" || K_e), so a key gives every later key
 * and no earlier one.  A seal is a chain row (event "sealed", epoch e)
 * whose column `seal` is HMAC-SHA256 (K_e, "invitemail-seal" NUL seq NUL
 * e NUL time_ms NUL prev_hash): it vouches for every row before it.
 * After a seal the daemon keeps only K_{e+1}: whoever takes the host
 * later cannot re-seal rewritten history, and `verify --key` with K_0
 * (kept off the host) finds it.
 */
typedef struct {
  gint64 epoch;
  guint8 key[32];
} AuditKey;

/* Reads a key file: either the daemon's ("epoch N" and "key HEX"
 * lines) or just the 64 hex digits (epoch 0, as audit init printed). */
gboolean audit_key_read (const char *path, AuditKey *out, GError **error);
void audit_key_wipe (AuditKey *k);
/* K_{e+1} = SHA-256 ("invitemail-evolve" || K_e), in place; epoch+1. */
void audit_key_evolve (AuditKey *k);

typedef struct {
  const char *key_file;     /* the daemon's current key; NULL: no seals */
  const char *group;        /* compliance group: db, -wal, -shm get it
                             * and mode 0640; NULL: left private */
  guint retention_days;     /* audit_purge keeps this long; 0 = forever */
} AuditSealConfig;

/*
 * audit_open plus sealing: loads key_file (absent = sealing off until
 * `invitemail audit init`; audit_sealing tells), catches its epoch up
 * with the last seal in the file (a crash between a seal and the key
 * write), shares the files with the group.  (transfer full)
 */
Audit *audit_open_sealing (const char *path, const AuditSealConfig *cfg,
                           GError **error);

/* TRUE when a key is loaded and audit_seal writes seals. */
gboolean audit_sealing (Audit *a);

/*
 * Writes a seal row over the current head with K_e, then evolves the
 * key: the new key is written durably (temp file 0600, fsync, rename,
 * fsync of the folder), the old file's bytes are overwritten and K_e is
 * wiped from memory.  Seals even when nothing happened since the last
 * one, so a gap between seals shows the daemon was not running.  No-op
 * (TRUE) without a key.  Thread-safe.  If writing the new key fails the
 * key in memory has still moved on (FALSE, error set); the next open
 * catches the file up from the seals.
 */
gboolean audit_seal (Audit *a, GError **error);

/*
 * `invitemail audit init`: creates K_0 (getrandom), writes the first
 * seal (epoch 0; its detail carries K_0's commitment) and the key file
 * with K_1, and returns K_0 as hex in initial_hex[65] for compliance to
 * keep off the host.  Refuses when key_file exists or a daemon holds
 * the audit file.  Creates the audit file if needed.
 */
gboolean audit_init (const char *path, const AuditSealConfig *cfg,
                     char initial_hex[65], GError **error);

/*
 * Retention: deletes every row up to and including the newest seal
 * older than retention_days (whole sealed epochs only), after checking
 * the purged rows' chain, in one transaction that first records a
 * checkpoint (the seal row's seq, time, epoch, prev, MAC and hash) so
 * verification continues from it.  Appends a `purged` row naming the
 * range.  Nothing old enough (or retention 0): TRUE, nothing done.
 * now_ms is unix milliseconds.  Thread-safe; meant for once a day.
 */
gboolean audit_purge (Audit *a, gint64 now_ms, GError **error);

/* The newest row (seq and hash; 0 and 64 zeros when empty) of a file,
 * read-only: `invitemail audit head`. */
gboolean audit_read_head (const char *path, gint64 *seq, char hash[65],
                          GError **error);

/* ---- full verification (audit_verify.c) ------------------------------ */
typedef struct {
  gint64 n_rows;              /* rows checked */
  gint64 first_seq, last_seq; /* 0 when empty */
  gint64 checkpoint_seq;      /* rows up to here purged (0 = none) */
  gint64 checkpoint_time_ms;
  gint64 n_seals;             /* seal rows in the chain */
  gint64 seals_checked;       /* seals whose MAC was checked */
  gint64 key_epoch;           /* epoch of the key given; -1 none */
  gint64 last_seal_seq;       /* 0 = no seal */
  gint64 last_seal_epoch;     /* -1 = no seal */
  gint64 last_seal_time_ms;
} AuditVerifyReport;

/*
 * Checks every row, every link, the append-only triggers, and with a
 * key every seal from the key's epoch on (re-deriving the epoch keys
 * forward).  FALSE with AUDIT_ERROR_BROKEN naming the row on the first
 * fault.  Rows after rep->last_seal_seq are the unsealed tail: the
 * caller must report them as not protected.  key NULL = chain only.
 */
gboolean audit_verify_full (const char *path, const AuditKey *key,
                            AuditVerifyReport *rep, GError **error);

/* Hex SHA-256 of data into out[65]. */
void audit_sha256_hex (const void *data, gsize len, char out[65]);

#endif
