/*
 * audit_erase.h - erasing a recipient's address from the audit (GDPR
 * Art. 17) without breaking the evidence.  Above the store, beside
 * sealing.
 *
 * The chain holds only a keyed hash of each address (audit.h); the
 * clear address is kept beside it.  Erasure removes the clear address
 * (with SQLite's secure_delete, and the WAL truncated, so its bytes
 * leave the files), keeps a tombstone (hash, date) so a later search
 * says when it was erased, and appends an `erased` row naming who, how
 * many rows and the keyed hash the rows already hold (verify ties each
 * tombstone to it), never the address.  Every row hash, seal and anchor
 * stays valid.
 */
#ifndef INVITEMAIL_AUDIT_ERASE_H
#define INVITEMAIL_AUDIT_ERASE_H

#include "audit.h"

/*
 * Erases address from beside the chain of the open audit a (the one
 * writer: the daemon stopped, or the daemon itself) and audits it as
 * uid; elsewhere (optional) names what else the caller erased (counts
 * only, e.g. "queue: 2 recipient row(s), outbox: 4 file(s)") and goes
 * into the audited words.  *n_rows gets the chain rows that named it.
 * With nothing to erase here and elsewhere NULL it is refused
 * (AUDIT_ERROR_IO, nothing written).  The caller seals afterwards.
 * Thread-safe.
 */
gboolean audit_erase_recipient (Audit *a, const char *address, gint64 uid,
                                const char *elsewhere, gint64 *n_rows,
                                GError **error);

#endif
