/*
 * queue.h - the durable queue: invites, their message bytes and their
 * recipients, and each recipient's delivery state.  SQL lives only here.
 *
 * An invite is inserted with its message and all recipients in one
 * transaction; queue_insert returns only after that commit (WAL,
 * synchronous=FULL), so `status=queued` is answered only for what a
 * crash or power loss cannot take back.
 *
 * Recipient states:
 *   queued    accepted, never tried
 *   sending   claimed by the delivery worker (in flight)
 *   deferred  tried, temporary failure, next_try set
 *   sent      the relay accepted it (final)
 *   failed    permanent failure (final)
 *   expired   retries ran out by max_age or meeting time (final)
 * A recipient found `sending` at start-up was in flight during a crash:
 * queue_recover makes it deferred again and reports it, because the
 * relay may already have it (at least once, never lost).
 *
 * Each connection belongs to one thread.  The daemon opens one for the
 * socket side and one for the delivery worker.
 */
#ifndef INVITEMAIL_QUEUE_H
#define INVITEMAIL_QUEUE_H

#include <glib.h>

typedef struct Queue Queue;

GQuark queue_error_quark (void);
#define QUEUE_ERROR (queue_error_quark ())
typedef enum {
  QUEUE_ERROR_IO,         /* storage failed: answer unavailable */
  QUEUE_ERROR_CONFLICT,   /* idempotency key used for another request */
  QUEUE_ERROR_NOT_FOUND,
  QUEUE_ERROR_CORRUPT     /* a row read back failed its checks */
} QueueError;

/* RCPT_BOUNCED and RCPT_DELAYED are never stored as a state: they are
 * how status shows a `sent` recipient for which a DSN came back (action
 * failed: final; action delayed: the remote side still tries). */
typedef enum {
  RCPT_QUEUED, RCPT_SENDING, RCPT_DEFERRED, RCPT_SENT, RCPT_FAILED, RCPT_EXPIRED,
  RCPT_BOUNCED, RCPT_DELAYED
} RcptState;

/* Each recipient's return token: its envelope sender is
 * LOCAL+TOKEN@DOMAIN ([bounce]), so a DSN names the recipient.  [0-9a-v],
 * random, unrelated to the invite id. */
#define QUEUE_TOKEN_LEN 26
gboolean queue_token_ok (const char *token);
/* Longest DSN diagnostic kept (with its NUL), as for SMTP replies. */
#define QUEUE_DSN_DIAG_MAX 256
/* "4.4.7": class 2, 4 or 5, then subject and detail (RFC 3463). */
gboolean queue_dsn_status_ok (const char *status);

const char *queue_state_name (RcptState s);   /* "queued", ... */

Queue *queue_open (const char *path, GError **error);
void queue_close (Queue *q);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Queue, queue_close)

typedef struct {
  const char *id;                 /* INVITE_ID_LEN chars, made by the daemon */
  gint64 created;                 /* unix seconds */
  gint64 expires;                 /* unix seconds: min(created+max_age, meeting) */
  const char *idempotency_key;    /* may be NULL */
  const char *fingerprint;        /* invitation_fingerprint; with the key */
  const char *staff;              /* may be NULL */
  const char *booking;            /* may be NULL */
  const char *unit;               /* the request's `unit`, may be NULL */
  const char *message_id;         /* the message's Message-ID (no <>) */
  gint64 peer_uid;
  const char *envelope_from;
  GBytes *message;                /* the exact bytes to send */
  const char *message_sha256;
  const char *const *recipients;  /* validated ASCII mailboxes */
  guint n_recipients;
} QueueInsert;

/*
 * Stores one invite durably: a batch of one (queue_insert_batch), so
 * there is one path for storing.  Idempotency keys are per uid: a key is
 * looked up only among the invites of ins->peer_uid.  When
 * ins->idempotency_key was seen before from that uid with the same
 * fingerprint, stores nothing and sets *existing_id to the
 * first invite's id (transfer full); with another fingerprint fails with
 * QUEUE_ERROR_CONFLICT.  Otherwise *existing_id is NULL.
 */
gboolean queue_insert (Queue *q, const QueueInsert *ins, char **existing_id,
                       GError **error);

/*
 * Group commit: stores n invites in ONE transaction (one fsync), each
 * under its own savepoint.  Returns FALSE with *error when the
 * transaction itself failed: then nothing of the batch is stored.  On
 * TRUE, each item says its own fate: error set (conflict, corrupt) =
 * not stored; existing_id set = idempotent repeat, nothing stored;
 * neither = stored.  Callers free existing_id and error.
 */
typedef struct {
  const QueueInsert *ins;   /* in */
  char *existing_id;        /* out (transfer full) */
  GError *error;            /* out (transfer full) */
} QueueBatchItem;

gboolean queue_insert_batch (Queue *q, QueueBatchItem *items, guint n,
                             GError **error);

/*
 * A step run inside a write transaction, after its changes and before
 * COMMIT: FALSE (error set) rolls everything back.  The daemon writes
 * the audit rows here, so that nothing is committed to the queue
 * without its audit row (gate.h).
 */
typedef gboolean (*QueueBeforeCommit) (gpointer data, GError **error);

/* queue_insert_batch with `before` run before the COMMIT (NULL = none).
 * On FALSE nothing of the batch is stored, whichever step failed. */
gboolean queue_insert_batch_then (Queue *q, QueueBatchItem *items, guint n,
                                  QueueBeforeCommit before, gpointer data,
                                  GError **error);

/* One recipient to deliver. */
typedef struct {
  char *invite_id;
  guint idx;
  char *address;
  char *envelope_from;
  char *return_token;             /* NULL for recipients stored before tokens */
  guint attempts;                 /* tries before this one */
  gint64 created;
  gint64 expires;
} QueueJob;
void queue_job_free (QueueJob *j);

/*
 * Claims up to max recipients that are queued, or deferred with
 * next_try <= now, oldest first, marking them `sending` in one
 * transaction.  Returns a GPtrArray of QueueJob* (transfer full,
 * free function set); empty when nothing is due.
 */
GPtrArray *queue_claim_due (Queue *q, gint64 now, guint max, GError **error);

/* The message bytes of an invite (transfer full). */
GBytes *queue_message (Queue *q, const char *invite_id, GError **error);

typedef struct {
  const char *invite_id;
  guint idx;
  RcptState state;                /* sent, deferred, failed or expired */
  gint64 next_try;                /* for deferred */
  const char *reply;              /* safe text of the last SMTP reply, or NULL */
} QueueResult;

/* Records the outcome of n tries in one transaction; attempts += 1. */
gboolean queue_record (Queue *q, const QueueResult *res, guint n, gint64 now,
                       GError **error);

/*
 * Start-up recovery: every `sending` recipient becomes deferred with
 * next_try = now.  Returns them (QueueJob*, transfer full) so the caller
 * can audit "duplicate suspected".
 */
GPtrArray *queue_recover (Queue *q, gint64 now, GError **error);

/* Recipients not yet delivered (queued, sending, deferred), or -1 with
 * *error set. */
gint64 queue_count_undelivered (Queue *q, GError **error);

/* queue_recover with `before` run before the COMMIT, given the jobs
 * found (QueueJob*): FALSE from it leaves them all `sending`. */
typedef gboolean (*QueueRecoverCheck) (GPtrArray *jobs, gpointer data,
                                       GError **error);
GPtrArray *queue_recover_then (Queue *q, gint64 now, QueueRecoverCheck before,
                               gpointer data, GError **error);

/* Earliest next_try among queued/deferred recipients, or -1 if none. */
gint64 queue_next_due (Queue *q, GError **error);

typedef struct {
  char *address;
  RcptState state;
  guint attempts;
  gint64 next_try;                /* 0 unless deferred */
  gint64 updated;
  char *reply;                    /* may be NULL; for bounced/delayed the DSN's
                                   * "STATUS DIAGNOSTIC" */
  char *dsn_status;               /* bounced/delayed: "5.1.1"; else NULL */
} QueueRcptStatus;

typedef struct {
  char *id;
  char *state;                    /* queued | deferred | sent | bounced | failed */
  gint64 created;
  gint64 expires;
  char *booking;
  gint64 peer_uid;                /* who sent it: status is shown to it */
  GPtrArray *recipients;          /* QueueRcptStatus* */
} QueueStatus;
void queue_status_free (QueueStatus *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QueueStatus, queue_status_free)

/* One invite's state; QUEUE_ERROR_NOT_FOUND if no such id. */
QueueStatus *queue_status (Queue *q, const char *id, GError **error);

/* ---- retention ------------------------------------------------------
 *
 * An invite is finished when none of its recipients is queued, sending
 * or deferred.  A finished invite whose newest change (created and every
 * recipient's updated) is before cutoff goes: its recipients' rows, and
 * the invite's row with the message bytes.  An invite that came with an
 * idempotency key keeps a tombstone (id, created, uid, key and request
 * fingerprint; no message, staff, booking, sender or address), so a late
 * repeat of the key is still answered with the first id and never sent
 * twice.  The connection deletes with secure_delete on, so the freed
 * pages are overwritten in the file.
 */
typedef struct {
  guint invites;            /* invites whose data went */
  guint recipients;         /* recipient rows removed */
  guint tombstones;         /* of invites, those kept as tombstones */
  GPtrArray *tags;          /* "ID.IDX" of each recipient removed, for the
                             * outbox (transfer full; may be NULL) */
} QueuePurged;
void queue_purged_clear (QueuePurged *p);

/*
 * Purges at most max finished invites older than cutoff (unix seconds)
 * in one transaction, adding to *out once it committed.  Returns the number purged (fewer
 * than max: nothing older is left), or -1 with *error.
 */
gint queue_purge (Queue *q, gint64 cutoff, guint max, QueuePurged *out,
                  GError **error);

/*
 * Erasure of one address (`invitemail audit erase`, the daemon
 * stopped): every recipient row whose address matches (local part as
 * written, domain without case) is deleted, with secure_delete on, in
 * one transaction; each one's outbox tag ("ID.IDX") is added to tags.
 * The invites and their other recipients stay.  A match still queued,
 * sending or deferred refuses it all (QUEUE_ERROR_CONFLICT), nothing
 * changed.  Returns the rows deleted, or -1 with *error.
 */
gint queue_erase_address (Queue *q, const char *address, GPtrArray *tags,
                          GError **error);

/* ---- subject access (read-only) --------------------------------------
 *
 * For `invitemail audit subject`: every recipient row whose address is
 * in domain (A-label form, any case), with its invite's times, staff
 * and booking, through a read-only connection of its own.  The values
 * are checked as status checks them; a row that fails is skipped.
 * fn returns FALSE to stop.  QUEUE_ERROR_IO when the file cannot be
 * read (e.g. compliance has no access to the queue).
 */
typedef struct {
  const char *invite_id;
  const char *address;
  const char *state;
  gint64 created;
  gint64 updated;
  const char *staff;        /* may be NULL */
  const char *booking;      /* may be NULL */
} QueueRecipientRow;
typedef gboolean (*QueueRecipientFunc) (const QueueRecipientRow *row,
                                        gpointer data);
gboolean queue_read_domain (const char *path, const char *domain,
                            QueueRecipientFunc fn, gpointer data,
                            GError **error);
/* ---- bounces (DSN) -------------------------------------------------- */

typedef struct {
  char *invite_id;
  guint idx;
  char *address;
  RcptState state;                /* as stored: sent, deferred, ... */
  char *dsn_action;               /* the DSN recorded before, or NULL */
} QueueTokenOwner;
void queue_token_owner_free (QueueTokenOwner *o);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QueueTokenOwner, queue_token_owner_free)

/* The recipient a return token belongs to; QUEUE_ERROR_NOT_FOUND for a
 * token that is malformed or not ours. (transfer full) */
QueueTokenOwner *queue_token_find (Queue *q, const char *token, GError **error);

/* Records a DSN (action "failed" or "delayed", a queue_dsn_status_ok
 * status, a printable diagnostic or NULL) on one recipient. */
gboolean queue_record_dsn (Queue *q, const char *invite_id, guint idx,
                           const char *action, const char *status,
                           const char *diagnostic, gint64 now, GError **error);

/* ---- health ---------------------------------------------------------- */

typedef struct {
  guint64 pending;                /* queued, sending or deferred recipients */
  gint64 oldest_deferred_created; /* created of the oldest deferred one; 0 none */
  guint64 sent_hour;              /* outcomes in the hour before now */
  guint64 failed_hour;            /* failed or expired */
  guint64 bounced_hour;           /* DSN action failed received */
  gint64 last_sent;               /* newest relay acceptance; 0 never */
} QueueHealth;

/* Reads the figures above (one pass over the recipients). */
gboolean queue_health (Queue *q, gint64 now, QueueHealth *out, GError **error);

/*
 * TEST HOOK, not for production code: while fail is TRUE every commit
 * really fails (the transaction is rolled back instead of committed)
 * and the call returns QUEUE_ERROR_IO, so tests can prove that nothing
 * is answered `queued` unless the commit succeeded.
 */
void queue_set_fail_commit (Queue *q, gboolean fail);

/* The reply of a recipient stopped by a cancel (state failed). */
#define QUEUE_CANCELLED_REPLY "cancelled by the sender"

/*
 * For invitemail cancel: in one transaction, recipients of id still
 * queued or deferred become failed with QUEUE_CANCELLED_REPLY
 * (*stopped counts them), and *reached gets the addresses already sent
 * or in flight, which need a cancellation (transfer full; may be
 * empty).  An unknown id gives an empty list and 0.
 */
gboolean queue_cancel (Queue *q, const char *id, gint64 now, GPtrArray **reached,
                       guint *stopped, GError **error);

/* Puts back what queue_cancel stopped (deferred, due at once), for a
 * cancel whose audit row or cancellation could not be stored. */
gboolean queue_cancel_undo (Queue *q, const char *id, gint64 now, GError **error);

#endif
