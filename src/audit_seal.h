/*
 * audit_seal.h - forward-secure, publicly verifiable seals over the
 * audit chain, `audit init`, and retention.  Above the store
 * (audit.h), beside verification (audit_verify.h).
 *
 * A key-evolving signature chain: `audit init` makes the key pair of
 * epoch 0 and prints its public half, the published value.  A seal of
 * epoch e is a chain row signed with epoch e's private key over the
 * chain head (seq, the hash of the row before), its time, its epoch,
 * the seal before it, the public key of epoch e + 1 (a fresh key pair)
 * and its words (which carry the retention in force).  Once the seal is
 * durable the daemon keeps only epoch e + 1's private key: the old one
 * is freed (OpenSSL cleanses it) and its file overwritten.  Whoever
 * steals the key file at epoch n can sign epochs n and later only; every
 * seal before n still verifies only with the keys the chain itself named
 * from the published value on.
 */
#ifndef INVITEMAIL_AUDIT_SEAL_H
#define INVITEMAIL_AUDIT_SEAL_H

#include "audit.h"

typedef struct {
  const char *key_file;     /* the daemon's secret key; NULL: no seals */
  const char *group;        /* compliance group: db, -wal, -shm get it
                             * and mode 0640; NULL: left private */
  guint retention_days;     /* audit_purge keeps this long; 0 = forever */
} AuditSealConfig;

/*
 * audit_open plus sealing: loads key_file (absent = sealing off until
 * `invitemail audit init`; audit_sealing tells) and checks that it
 * continues the file's last seal: its public half must be the one that
 * seal named.  A crash between a seal's commit and the key file's
 * replacement is finished here.  A key file of another epoch (a copy
 * restored from elsewhere) is refused, and so is a missing one once the
 * file holds seals.  Shares the files with the group.  (transfer full)
 */
Audit *audit_open_sealing (const char *path, const AuditSealConfig *cfg,
                           GError **error);

/* TRUE when a key is loaded and audit_seal writes seals. */
gboolean audit_sealing (Audit *a);

/*
 * Writes a seal row over the current head and moves to the next epoch:
 * the next key pair is made and stored beside the current key first
 * (durably), then the signed seal row commits, then the key file is
 * replaced by the next key alone and the old one freed.  Then the head
 * goes to the system log (audit_anchor.h).  Seals even when nothing
 * happened since the last one, so a gap between seals shows the daemon
 * was not running.  No-op (TRUE) without a key.  Thread-safe.
 */
gboolean audit_seal (Audit *a, GError **error);

/*
 * `invitemail audit init`: makes the key pair of epoch 0, writes the
 * first seal (epoch 0) and the key file with epoch 1's private key, and
 * returns the public value ("ed25519:" + 64 hex) in
 * public_text[AUDIT_PUBLIC_TEXT].  Refuses when key_file exists, when
 * the file holds seals already, or when a daemon holds the audit file.
 * Creates the audit file if needed.
 */
#define AUDIT_PUBLIC_TEXT 73
gboolean audit_init (const char *path, const AuditSealConfig *cfg,
                     char *public_text, GError **error);

/*
 * Retention: deletes every row up to and including the newest seal that
 * is older than retention_days and older than the retention that seal
 * itself signed (whole sealed epochs only), after checking the rows'
 * chain; the seal rows among them move to the kept-seal table, so the
 * signature chain from the published value stays whole.  Then a
 * `purged` row names the range and a seal covers it at once.  Nothing
 * old enough (or retention 0): TRUE, nothing done.  now_ms is unix
 * milliseconds.  Thread-safe; meant for once a day.
 */
gboolean audit_purge (Audit *a, gint64 now_ms, GError **error);

#endif
