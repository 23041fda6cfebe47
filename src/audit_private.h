/*
 * audit_private.h - what audit.c, audit_seal.c and audit_verify.c share.
 * Not for other modules: everything here may change with the schema.
 */
#ifndef INVITEMAIL_AUDIT_PRIVATE_H
#define INVITEMAIL_AUDIT_PRIVATE_H

#include <sqlite3.h>

#include "audit.h"
#include "db.h"

#define AUDIT_SCHEMA_VERSION 2
#define AUDIT_ZERO_HASH \
  "0000000000000000000000000000000000000000000000000000000000000000"

/* The canonical order; also the column order of AUDIT_COLUMNS, with
 * row_hash after them. */
enum {
  C_SEQ, C_TIME, C_EVENT, C_INVITE, C_UID, C_STAFF, C_BOOKING, C_RCPTS,
  C_REPLY, C_ERROR_CODE, C_FIELD, C_DETAIL, C_LANG, C_TEMPLATE, C_LINK,
  C_NOTICE, C_TEMPLATE_SHA, C_SIGNATURE, C_MESSAGE, C_ORG_UNIT, C_EPOCH,
  C_SEAL, C_PREV, N_CANON,
  C_ROW_HASH = N_CANON
};

#define AUDIT_COLUMNS \
  "seq, time_ms, event, invite_id, peer_uid, staff, booking, recipients," \
  " smtp_reply, error_code, field, detail, lang, template_name," \
  " link_sha256, notice_sha256, template_sha256, signature_sha256," \
  " message_sha256, org_unit, epoch, seal, prev_hash, row_hash"

/* The values of one row in canonical order; v[i] NULL = SQL NULL. */
typedef struct {
  const char *v[N_CANON];
  gsize len[N_CANON];
  char seq[24], time[24], uid[24], epoch[24];
} AuditCanon;

/* The key state of a sealing Audit: K_epoch, wiped when it evolves. */
typedef struct {
  gboolean have;
  AuditKey key;
} AuditKeyState;

struct Audit {
  sqlite3 *db;
  DbCheckpointer *ckpt;     /* checkpoints db's WAL off the append path */
  sqlite3_stmt *insert;
  GMutex lock;              /* guards everything below and the insert */
  gint64 last_seq;
  char last_hash[65];
  gint64 next_epoch;        /* epoch of the next seal row */
  gboolean head_intact;
  AuditClock clock;
  gpointer clock_data;
  int lock_fd;              /* flock(LOCK_EX) on PATH.lock: one writer */
  char *path;
  char *key_path;           /* NULL: no sealing */
  char *group;              /* NULL: files stay private */
  guint retention_days;     /* 0: keep forever */
  AuditKeyState ks;
};

gboolean audit_fail (sqlite3 *db, GError **error, const char *what);
gboolean audit_exec (sqlite3 *db, const char *sql, GError **error);
gboolean audit_broken (GError **error, const char *fmt, ...)
  G_GNUC_PRINTF (2, 3);
gboolean audit_is_hex64 (const char *s);
void audit_hex (const guint8 *b, gsize n, char *out);

/* FALSE only when OpenSSL failed. */
gboolean audit_canon_hash (const AuditCanon *c, char out[65]);
void audit_canon_from_stmt (AuditCanon *c, sqlite3_stmt *st);

/* Appends n rows in one transaction under a->lock (held by the caller).
 * Rows whose event is AUDIT_SEALED get epoch a->next_epoch and the
 * seal MAC under a->ks (which must be loaded). */
gboolean audit_append_locked (Audit *a, const AuditRecord *recs, guint n,
                              GError **error);

/* HMAC-SHA256 seal of a chain head, lower-case hex into out[65]. */
void audit_seal_mac (const AuditKey *k, gint64 seq, gint64 epoch,
                     gint64 time_ms, const char *prev, char out[65]);
/* Hex SHA-256 ("invitemail-commit" || K): names a key without giving it. */
void audit_key_commitment (const AuditKey *k, char out[65]);

/* A read-only connection and one prepared statement on it; falls back
 * to immutable=1 only when no writer holds the lock (audit.c). */
sqlite3 *audit_open_read (const char *path, const char *sql,
                          sqlite3_stmt **st, GError **error);

AuditRow *audit_row_from_stmt (sqlite3_stmt *st);
char *audit_lock_path (const char *path);      /* PATH.lock */
gboolean audit_from_db (GError *db_error, GError **error);

/* The newest purge checkpoint's seq and row hash (0 and zeros when
 * none).  FALSE on a read error (audit_seal.c). */
gboolean audit_checkpoint_head (sqlite3 *db, gint64 *seq, char hash[65]);

/* Whether a writer (the daemon) holds PATH.lock now. */
gboolean audit_writer_active (const char *path);

/* Checks one chain row (selected as AUDIT_COLUMNS) against the one
 * before; on success prev gets its hash (audit_verify.c). */
gboolean audit_verify_row (sqlite3_stmt *st, gint64 expect, char prev[65],
                           GError **error);

#endif
