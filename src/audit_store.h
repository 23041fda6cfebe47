/*
 * audit_store.h - the chain and its storage, as the audit files above
 * it (seal, verify, anchor, read) see it.  Not for other modules: all
 * of it may change with the schema.  Includes nothing of the layers
 * above: they call down, never the other way (a seal row is signed
 * through a callback the seal layer passes in).
 *
 * Implemented in audit.c (schema, canonical encoding, append) and
 * audit_ro.c (read-only opening for readers without write access).
 */
#ifndef INVITEMAIL_AUDIT_STORE_H
#define INVITEMAIL_AUDIT_STORE_H

#include <sqlite3.h>

#include "audit.h"

/* 4: recipients as keyed hashes, clear addresses beside the chain.
 * 3 had them in the chain, 2 HMAC seals, 1 no seals; none verifies or
 * erases under this encoding, so such a file is refused with a message,
 * never mixed. */
#define AUDIT_SCHEMA_VERSION 4
#define AUDIT_ZERO_HASH \
  "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_SIG_HEX 128     /* an Ed25519 signature in hex */

/* The canonical order; also the column order of AUDIT_COLUMNS, with
 * row_hash after them. */
enum {
  C_SEQ, C_TIME, C_EVENT, C_INVITE, C_UID, C_STAFF, C_BOOKING, C_RCPTS,
  C_REPLY, C_ERROR_CODE, C_FIELD, C_DETAIL, C_LANG, C_TEMPLATE, C_LINK,
  C_NOTICE, C_TEMPLATE_SHA, C_SIGNATURE, C_MESSAGE, C_ORG_UNIT, C_EPOCH,
  C_SEAL, C_NEXT_KEY, C_PREV_SEAL, C_PREV, N_CANON,
  C_ROW_HASH = N_CANON
};

#define AUDIT_COLUMNS \
  "seq, time_ms, event, invite_id, peer_uid, staff, booking, recipients," \
  " smtp_reply, error_code, field, detail, lang, template_name," \
  " link_sha256, notice_sha256, template_sha256, signature_sha256," \
  " message_sha256, org_unit, epoch, seal, next_key, prev_seal," \
  " prev_hash, row_hash"

/* The seal columns of a seal row, as the kept-seal table (rows purged
 * by retention keep their seals there) selects them in AUDIT_COLUMNS
 * order. */
#define AUDIT_KEPT_SEAL_COLUMNS \
  "seq, time_ms, 'sealed', NULL, NULL, NULL, NULL, NULL, NULL, NULL," \
  " NULL, detail, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, epoch," \
  " seal, next_key, prev_seal, prev_hash, row_hash"

/* The values of one row in canonical order; v[i] NULL = SQL NULL. */
typedef struct {
  const char *v[N_CANON];
  gsize len[N_CANON];
  char seq[24], time[24], uid[24], epoch[24];
} AuditCanon;

/* What a seal's signature covers (besides its domain label). */
typedef struct {
  gint64 seq, time_ms, epoch;
  const char *prev_hash;    /* the row before: commits to every row */
  const char *prev_seal;    /* row_hash of the seal before, or zeros */
  const char *next_key;     /* hex public key of epoch + 1 */
  const char *detail;
} AuditSealInput;

/* Signs in into sig[AUDIT_SIG_HEX + 1] (hex).  FALSE with error set. */
typedef gboolean (*AuditSignFunc) (const AuditSealInput *in, char *sig,
                                   gpointer data, GError **error);

/* A seal row to append (audit_append_locked). */
typedef struct {
  gint64 epoch;
  const char *next_key;
  const char *detail;
  AuditSignFunc sign;
  gpointer sign_data;
} AuditSealSpec;

struct Audit {
  sqlite3 *db;
  struct DbCheckpointer *ckpt; /* checkpoints db's WAL off the append path */
  sqlite3_stmt *insert;
  GMutex lock;              /* guards everything below and the insert */
  gint64 last_seq;
  char last_hash[SHA256_HEX_SIZE];
  gint64 last_time_ms;      /* rows never go back before this */
  gboolean clock_flagged;   /* a clock_back row was written for this step */
  gint64 last_seal_seq;     /* 0: no seal (chain or kept) */
  gint64 last_seal_epoch;   /* -1: no seal */
  char last_seal_hash[SHA256_HEX_SIZE];  /* zeros: no seal */
  char last_seal_next[SHA256_HEX_SIZE];  /* the public key the last seal named */
  gboolean head_intact;
  AuditClock clock;
  gpointer clock_data;
  int lock_fd;              /* flock(LOCK_EX) on PATH.lock: one writer */
  char *path;
  guint8 addr_key[32];      /* keys recipient addresses (audit_address.c) */
  sqlite3_stmt *remember;   /* upserts audit_address */
  GHashTable *addr_cache;   /* address -> keyed hash, bounded */
  gpointer sealer;          /* the seal layer's state; NULL: no sealing */
  GDestroyNotify sealer_free;
};

gboolean audit_fail (sqlite3 *db, GError **error, const char *what);
gboolean audit_exec (sqlite3 *db, const char *sql, GError **error);
gboolean audit_broken (GError **error, const char *fmt, ...)
  G_GNUC_PRINTF (2, 3);
gboolean audit_is_hex (const char *s, gsize len);
#define audit_is_hex64(s) audit_is_hex ((s), 64)
/* Lower- or upper-case hex of exactly n bytes (then NUL) into out. */
gboolean audit_unhex (const char *s, guint8 *out, gsize n);

/* FALSE only when OpenSSL failed. */
gboolean audit_canon_hash (const AuditCanon *c, char out[SHA256_HEX_SIZE]);
void audit_canon_from_stmt (AuditCanon *c, sqlite3_stmt *st);

/* Appends n rows in one transaction under a->lock (held by the caller).
 * With seal non-NULL, n must be 1 and recs[0] is a seal row: the store
 * fills seq, time, prev_hash and prev_seal and seal->sign signs them. */
gboolean audit_append_locked (Audit *a, const AuditRecord *recs, guint n,
                              const AuditSealSpec *seal, GError **error);

/* The schema version of an open file, checked: AUDIT_ERROR_FORMAT with
 * plain words for another version. */
gboolean audit_check_version (sqlite3 *db, GError **error);

/* The newest kept (purged) seal's seq and row hash: 0 and zeros when
 * none.  FALSE on a read error. */
gboolean audit_checkpoint_head (sqlite3 *db, gint64 *seq, char hash[SHA256_HEX_SIZE]);

/* Checks one chain row (selected as AUDIT_COLUMNS) against the one
 * before: sequence, link, own hash, event name, in that order so the
 * message says what most likely happened.  On success prev gets its
 * hash. */
gboolean audit_check_row (sqlite3_stmt *st, gint64 expect, char prev[SHA256_HEX_SIZE],
                          GError **error);

AuditRow *audit_row_from_stmt (sqlite3_stmt *st);
gboolean audit_from_db (GError *db_error, GError **error);

/* ---- recipient addresses beside the chain (audit_address.c) -------- */

/* What a reader shows for an address erased (or purged) from beside the
 * chain. */
#define AUDIT_ADDRESS_ERASED "(erased)"

/* Makes the per-installation address key once (writer, in the schema
 * transaction). */
gboolean audit_address_key_ensure (sqlite3 *db, GError **error);
gboolean audit_address_key_load (sqlite3 *db, guint8 key[32], GError **error);
/* HMAC-SHA256 (key, local@a-label-domain-lower-case) in hex. */
void audit_address_hash (const guint8 key[32], const char *addr,
                         char out[SHA256_HEX_SIZE]);
/* The comma-joined keyed hashes of comma-joined addresses, through
 * cache (address -> hash; may be NULL). (transfer full) */
char *audit_address_keys (const guint8 key[32], GHashTable *cache,
                          const char *recipients);
/* The addresses a batch names, each kept once beside its hash with the
 * newest row naming it (retention drops it with that row): noted row by
 * row, flushed in the batch's transaction; *st is prepared on first use
 * and finalised by the caller. */
GHashTable *audit_address_pending_new (void);
void audit_address_note (GHashTable *pending, const char *clear,
                         const char *keys, gint64 seq);
gboolean audit_address_flush (sqlite3 *db, sqlite3_stmt **st,
                              GHashTable *pending, GError **error);
/* Comma-joined clear addresses for comma-joined hashes, "(erased)" for
 * any no longer kept. (transfer full) */
char *audit_address_resolve (sqlite3 *db, sqlite3_stmt **st,
                             const char *keys);

/* ---- read-only opening (audit_ro.c) ---------------------------------- */

char *audit_lock_path (const char *path);      /* PATH.lock */
/* Whether a writer (the daemon) holds PATH.lock now. */
gboolean audit_writer_active (const char *path);
/* A read-only connection (schema version checked) and one prepared
 * statement on it; falls back to immutable=1 only when no writer holds
 * the lock. */
sqlite3 *audit_open_read (const char *path, const char *sql,
                          sqlite3_stmt **st, GError **error);

#endif
