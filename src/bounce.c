/*
 * bounce.c - a bounce request to a recipient's DSN, and return
 * addresses.  See bounce.h.
 *
 * TRUSTS: only the peer check done before (an allowed user), not the
 * values: token shape, action, status code and diagnostic are checked
 * here as if no client had parsed them, and the token must be one the
 * queue made.  Logs carry the invite id and codes, never an address.
 */
#include "bounce.h"

#include <string.h>

#include "audit.h"

typedef struct {
  Queue *queue;
  ServiceReply reply;
  gpointer target;
  char *invite_id;
  guint idx;
  char *action;
  char *status;
  char *diagnostic;         /* may be NULL */
} BouncePending;

static void
pending_free (BouncePending *p)
{
  g_free (p->invite_id);
  g_free (p->action);
  g_free (p->status);
  g_free (p->diagnostic);
  g_free (p);
}

static void
answer_state (BouncePending *p, const char *state)
{
  g_autoptr (GString) out = g_string_new (NULL);

  answer_add (out, "status", "ok");
  answer_add (out, "id", p->invite_id);
  answer_add (out, "state", state);
  answer_end (out);
  p->reply (p->target, out->str, out->len);
}

static void
answer_unavailable (BouncePending *p)
{
  g_autoptr (GString) out = g_string_new (NULL);
  Refusal why;

  refusal_set (&why, REFUSAL_UNAVAILABLE, NULL,
               "the bounce could not be recorded; nothing changed, try again");
  answer_refusal (out, &why);
  p->reply (p->target, out->str, out->len);
}

/* The audit row is in (or failed): now the queue, then the answer.  A
 * queue failure after the row leaves the recipient as it was; the mail
 * system retries (exit 75) and the next try is audited again. */
static void
on_audited (CommitItem *item, gpointer data)
{
  BouncePending *p = data;
  g_autoptr (GError) error = NULL;

  if (commit_item_result (item) != COMMIT_STORED)
    answer_unavailable (p);
  else if (!queue_record_dsn (p->queue, p->invite_id, p->idx, p->action, p->status,
                              p->diagnostic, g_get_real_time () / G_USEC_PER_SEC,
                              &error))
    {
      g_warning ("invite %s: recording a DSN failed: %s", p->invite_id, error->message);
      answer_unavailable (p);
    }
  else
    {
      g_message ("invite %s recipient %u: DSN %s %s", p->invite_id, p->idx,
                 p->action, p->status);
      answer_state (p, strcmp (p->action, "failed") == 0 ? "bounced" : "delayed");
    }
  pending_free (p);
}

/* Printable ASCII, shorter than QUEUE_DSN_DIAG_MAX. */
static gboolean
diagnostic_ok (const char *d)
{
  if (strlen (d) >= QUEUE_DSN_DIAG_MAX)
    return FALSE;
  for (const char *p = d; *p != '\0'; p++)
    if (*p < ' ' || *p > '~')
      return FALSE;
  return TRUE;
}

/* The client's parser refused: only these codes may be relayed, so a
 * client cannot make the audit say anything else. */
static gboolean
client_refusal (const char *code, Refusal *why)
{
  if (strcmp (code, "not_dsn") == 0)
    return refusal_set (why, REFUSAL_NOT_DSN, NULL, NULL);
  if (strcmp (code, "unknown_token") == 0)
    return refusal_set (why, REFUSAL_UNKNOWN_TOKEN, NULL, NULL);
  if (strcmp (code, "request_too_large") == 0)
    return refusal_set (why, REFUSAL_REQUEST_TOO_LARGE, NULL,
                        "the bounce message is too large to be a DSN of ours");
  return refusal_set (why, REFUSAL_INVALID_VALUE, "dsn_error", NULL);
}

static gboolean
check_fields (const RawRequest *req, Refusal *why)
{
  const char *token = raw_request_get (req, "token");
  const char *action = raw_request_get (req, "dsn_action");
  const char *status = raw_request_get (req, "dsn_status");
  const char *diag = raw_request_get (req, "diagnostic");

  if (token == NULL)
    return refusal_set (why, REFUSAL_MISSING_FIELD, "token", NULL);
  if (action == NULL)
    return refusal_set (why, REFUSAL_MISSING_FIELD, "dsn_action", NULL);
  if (status == NULL)
    return refusal_set (why, REFUSAL_MISSING_FIELD, "dsn_status", NULL);
  if (!queue_token_ok (token))
    return refusal_set (why, REFUSAL_UNKNOWN_TOKEN, "token", NULL);
  if (strcmp (action, "failed") != 0 && strcmp (action, "delayed") != 0)
    return refusal_set (why, REFUSAL_INVALID_VALUE, "dsn_action",
                        "the action must be failed or delayed");
  if (!queue_dsn_status_ok (status) || status[0] == '2'
      || (strcmp (action, "delayed") == 0 && status[0] != '4'))
    return refusal_set (why, REFUSAL_INVALID_VALUE, "dsn_status",
                        "not a status code (RFC 3463) that fits the action");
  if (diag != NULL && !diagnostic_ok (diag))
    return refusal_set (why, REFUSAL_INVALID_VALUE, "diagnostic",
                        "the diagnostic must be printable ASCII, at most 255 bytes");
  return TRUE;
}

gboolean
bounce_handle (Queue *q, Committer *c, const PeerCred *peer, const RawRequest *req,
               ServiceReply reply, gpointer target, Refusal *why)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QueueTokenOwner) owner = NULL;
  g_autofree char *smtp_reply = NULL;
  const char *code = raw_request_get (req, "dsn_error");
  const char *action = raw_request_get (req, "dsn_action");
  const char *diag = raw_request_get (req, "diagnostic");
  AuditRecord rec = { 0 };
  BouncePending *p;
  CommitItem *item;

  if (code != NULL)
    return client_refusal (code, why);
  if (!check_fields (req, why))
    return FALSE;
  owner = queue_token_find (q, raw_request_get (req, "token"), &error);
  if (owner == NULL)
    {
      if (g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND))
        return refusal_set (why, REFUSAL_UNKNOWN_TOKEN, "token",
                            "no recipient has this return token");
      g_warning ("bounce: token lookup failed: %s", error->message);
      return refusal_set (why, REFUSAL_UNAVAILABLE, NULL, "queue cannot be read now");
    }
  if (owner->state != RCPT_SENT)
    return refusal_set (why, REFUSAL_NOT_SENT, "token", NULL);
  p = g_new0 (BouncePending, 1);
  p->queue = q;
  p->reply = reply;
  p->target = target;
  p->invite_id = g_strdup (owner->invite_id);
  p->idx = owner->idx;
  if (g_strcmp0 (owner->dsn_action, "failed") == 0 && strcmp (action, "delayed") == 0)
    {
      /* A late delay report: the bounce already recorded stays. */
      answer_state (p, "bounced");
      pending_free (p);
      return TRUE;
    }
  p->action = g_strdup (action);
  p->status = g_strdup (raw_request_get (req, "dsn_status"));
  p->diagnostic = diag != NULL && *diag != '\0' ? g_strdup (diag) : NULL;
  smtp_reply = g_strdup_printf ("%s%s%s", p->status, p->diagnostic ? " " : "",
                                p->diagnostic ? p->diagnostic : "");
  rec.event = strcmp (action, "failed") == 0 ? AUDIT_BOUNCED : AUDIT_DSN_DELAYED;
  rec.invite_id = owner->invite_id;
  rec.peer_uid = peer->uid;
  rec.recipients = owner->address;
  rec.smtp_reply = smtp_reply;
  rec.detail = strcmp (action, "failed") == 0
    ? "DSN: the remote side refused it after the relay took it (final)"
    : "DSN: the remote side is still trying (not final)";
  item = commit_item_new (on_audited, p);
  commit_item_set_audit (item, &rec);
  committer_submit (c, item);
  return TRUE;
}

char *
bounce_return_address (const Config *cfg, const char *envelope_from, const char *token)
{
  const char *at = strrchr (envelope_from, '@');

  if (!cfg->bounce_verp || token == NULL || at == NULL)
    return g_strdup (envelope_from);
  return g_strdup_printf ("%s+%s@%s", cfg->bounce_local_part, token,
                          cfg->bounce_domain != NULL ? cfg->bounce_domain : at + 1);
}
