/*
 * audit_verify.h - full verification of an audit file from the
 * published value: the chain, the seal chain, time, retention, and
 * (optionally) heads kept in the system log.  Above the store, beside
 * sealing; reads the file only.
 *
 * What a pass proves: every row from the first kept one to the last
 * seal is exactly what the daemon wrote, in order, none removed or
 * added, because each seal from epoch 0 on is signed by a key the chain
 * named, starting from the published value; row times never go back;
 * every purge was sealed and allowed by the retention signed in force;
 * every clear address shown beside the chain is the one its row's keyed
 * hash names.
 * With anchors: the file holds every head the system log recorded, so it
 * was not cut, lost no seal and is not an older copy.
 * What it cannot prove: rows after the last seal (the unsealed tail)
 * are protected by the chain only; someone holding the daemon's key at
 * epoch n can write new, well-signed seals from n on (anchors kept off
 * the host catch a rewrite of what they covered); the rows say what the
 * daemon was told and did, not that a mail reached its reader.
 */
#ifndef INVITEMAIL_AUDIT_VERIFY_H
#define INVITEMAIL_AUDIT_VERIFY_H

#include "audit.h"
#include "audit_anchor.h"
#include "audit_key.h"

typedef struct {
  const AuditPublicKey *key;    /* the published value; NULL: the first
                                 * seal's signature is not checked */
  const GArray *anchors;        /* of AuditAnchor; NULL: none */
  gboolean allow_unsealed_tail; /* a live file: rows after the last seal */
  gint64 max_age_ms;            /* > 0: the last seal must be this recent */
  gint64 now_ms;                /* 0: the real clock */
  gboolean chain_only;          /* links and hashes only: no seal, tail,
                                 * time or purge rule (audit_verify) */
} AuditVerifyOptions;

typedef struct {
  gint64 n_rows;              /* chain rows checked */
  gint64 first_seq, last_seq; /* 0 when empty */
  gint64 checkpoint_seq;      /* rows up to here purged (0 = none) */
  gint64 checkpoint_time_ms;
  gint64 n_kept_seals;        /* seals of purged rows, kept */
  gint64 n_seals;             /* every seal: kept and in the chain */
  gint64 seals_checked;       /* of them, signatures verified */
  gint64 last_seal_seq;       /* 0 = no seal */
  gint64 last_seal_epoch;     /* -1 = no seal */
  gint64 first_seal_time_ms, last_seal_time_ms;
  gint64 unsealed;            /* rows after the last seal */
  gint64 n_clock_back;        /* clock_back rows */
  gint64 first_clock_back_seq;
  gint64 anchors_checked;
  gint64 newest_anchor_seq;
} AuditVerifyReport;

/*
 * FALSE with AUDIT_ERROR_BROKEN naming the first fault (a row, a seal,
 * a purge, a time, an anchor, the tail, the age), or AUDIT_ERROR_FORMAT
 * for a file of another schema; rep holds what was counted until then.
 */
gboolean audit_verify_full (const char *path, const AuditVerifyOptions *o,
                            AuditVerifyReport *rep, GError **error);

/* Chain only (no key, no anchors, tail allowed): for tests and tools. */
gboolean audit_verify (const char *path, gint64 *n_rows, GError **error);

#endif
