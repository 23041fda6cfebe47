/*
 * service.c - one request in, one answer out.  See service.h.
 *
 * Check functions decide; proceed functions act (OpenSMTPD's split):
 * nothing is stored until every check has passed, so a refusal never
 * leaves a partial invite behind.
 *
 * SECURITY: the frame is hostile.  It reaches the rest of the program
 * only through request_parse and validate_invitation.  Refusals are
 * audited with the code, field and peer uid only: no value from a
 * refused request is written anywhere.  Operational logs get the invite
 * id and counts, never an address or a link.
 *
 * Threads: everything here runs on the main thread except build_send(),
 * which runs on the builder's pool (builder.h) and touches only its own
 * job, the configuration and templates (read-only until a drain), the
 * committer (thread-safe) and the limits (under limits_lock).
 */
#include "service.h"

#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "bounce.h"
#include "builder.h"
#include "commit.h"
#include "evidence.h"
#include "ratelimit.h"
#include "mime.h"
#include "queue.h"
#include "render.h"
#include "calendar.h"
#include "request.h"
#include "retry.h"
#include "token.h"
#include "validate.h"


struct Service {
  const Config *cfg;
  const Templates *templates;
  Queue *queue;
  Committer *committer;
  RetryPolicy retry;
  char *logo_cid;
  GTimeZone *tz;            /* local zone for Date:, looked up once */
  Limits *limits;           /* per-uid windows, under limits_lock */
  GMutex limits_lock;       /* a pool thread gives back what it could not build */
  Builder *builder;         /* render + MIME + hash, off the main thread */
  gint64 undelivered;       /* recipients waiting in the queue, as counted */
  gint64 undelivered_at;    /* monotonic ms of that count; 0 = never */
  ServiceHealth health;     /* answers request=health; NULL = none */
  gpointer health_data;
};

/* Recount the undelivered recipients at most this often; accepts in
 * between are added to the count as they come. */
#define UNDELIVERED_RECOUNT_MS 1000

void
service_set_health (Service *s, ServiceHealth fn, gpointer data)
{
  s->health = fn;
  s->health_data = data;
}

/* request=health: the figures come from whoever owns the parts (the
 * daemon: queue, delivery, audit, disk).  No personal data in them. */
static void
handle_health (Service *s, GString *out, Refusal *why)
{
  if (s->health == NULL)
    {
      refusal_set (why, REFUSAL_UNAVAILABLE, NULL, "health is not available");
      return;
    }
  answer_add (out, "status", "ok");
  s->health (s->health_data, out);
  answer_end (out);
}

/* A pending answer: where it goes once the commit is done. */
typedef struct {
  ServiceReply reply;
  gpointer target;
  Service *service;
  gboolean limited;         /* counted by limits_take: give back if not stored */
  uid_t uid;
  guint n_rcpts;
  gint64 taken_ms;
} Pending;

static void build_send (gpointer job, gpointer data);

/* The jobs in hand read the old configuration: they finish first. */
void
service_set_config (Service *s, const Config *cfg, const Templates *templates)
{
  builder_drain (s->builder);
  s->cfg = cfg;
  s->templates = templates;
  s->retry = retry_policy_from_config (cfg);
  g_free (s->logo_cid);
  s->logo_cid = g_strdup_printf ("logo.evisit@%s", cfg->message_id_domain);
}

Service *
service_new (const Config *cfg, const Templates *templates, Queue *queue,
             Committer *committer)
{
  Service *s = g_new0 (Service, 1);

  s->queue = queue;
  s->committer = committer;
  s->tz = g_time_zone_new_local ();
  s->limits = limits_new ();
  g_mutex_init (&s->limits_lock);
  s->builder = builder_new (0, build_send, s);
  service_set_config (s, cfg, templates);
  return s;
}

void
service_drain (Service *s)
{
  if (s != NULL)
    builder_drain (s->builder);
}

void
service_free (Service *s)
{
  if (s == NULL)
    return;
  builder_free (s->builder);
  g_mutex_clear (&s->limits_lock);
  g_free (s->logo_cid);
  g_time_zone_unref (s->tz);
  limits_free (s->limits);
  g_free (s);
}

static gboolean
array_has (const GArray *a, guint value)
{
  for (guint i = 0; i < a->len; i++)
    if (g_array_index (a, guint, i) == value)
      return TRUE;
  return FALSE;
}

/* The peer's primary gid from the kernel, or the members the
 * configuration listed (resolved at load: no name-service lookup here,
 * on the main loop). */
static gboolean
peer_in_groups (const GArray *gids, const GArray *members, const PeerCred *peer)
{
  G_STATIC_ASSERT (sizeof (uid_t) == sizeof (guint) && sizeof (gid_t) == sizeof (guint));
  return array_has (gids, peer->gid) || array_has (members, peer->uid);
}

gboolean
service_peer_allowed (Service *s, const PeerCred *peer)
{
  if (peer->uid == 0 || peer->uid == geteuid ())
    return TRUE;
  return array_has (s->cfg->allowed_users, peer->uid)
    || peer_in_groups (s->cfg->allowed_groups, s->cfg->allowed_group_members, peer);
}

/* status shows every recipient's address: only to the uid that sent
 * the invite, root, and members of [daemon] status_groups. */
static gboolean
peer_may_see (Service *s, const PeerCred *peer, gint64 sender_uid)
{
  return peer->uid == 0 || (gint64) peer->uid == sender_uid
    || peer_in_groups (s->cfg->status_groups, s->cfg->status_group_members, peer);
}

/* The id is the daemon's, never the client's (Postfix): the time in
 * milliseconds (9 base-32 characters, 45 bits) and then 55 random bits
 * (11 characters), [0-9a-v].  Time first, so that new ids land at the
 * end of the queue's indexes: a group commit dirties a few pages there
 * rather than one random page per invite in each index. */
static gboolean
make_invite_id (char out[INVITE_ID_LEN + 1])
{
  enum { TIME_CHARS = 9 };
  guint64 ms = (guint64) (g_get_real_time () / 1000);

  G_STATIC_ASSERT (INVITE_ID_LEN > TIME_CHARS);
  if (!token_random (out + TIME_CHARS, INVITE_ID_LEN - TIME_CHARS))
    return FALSE;
  for (int i = TIME_CHARS - 1; i >= 0; i--, ms >>= 5)
    out[i] = token_digit (ms);
  return TRUE;
}

/*
 * The Message-ID's local part: 128 random bits in 26 base-32 characters,
 * made for each message.  Every recipient sees the Message-ID; were it
 * the invite id, any recipient who is also a local user could ask the
 * daemon for the invite's status (and so everyone's address).  It is
 * kept in the queue with the invite.
 */
static gboolean
make_message_id (const char *domain, char **out)
{
  char local[27];

  if (!token_random (local, sizeof local - 1))
    return FALSE;
  *out = g_strdup_printf ("%s@%s", local, domain);
  return TRUE;
}

static void
give_back (Service *s, const Pending *p)
{
  g_mutex_lock (&s->limits_lock);
  limits_give_back (s->limits, p->uid, p->n_rcpts, p->taken_ms);
  g_mutex_unlock (&s->limits_lock);
}

static void
send_answer (ServiceReply reply, gpointer target, GString *out)
{
  reply (target, out->str, out->len);
}

/* Answers a send once its commit is done, or the refusal it became
 * (the committer already audited that refusal). */
static void
on_committed (CommitItem *item, gpointer data)
{
  Pending *p = data;
  g_autoptr (GString) out = g_string_new (NULL);
  Refusal why;

  if (p->limited && commit_item_result (item) != COMMIT_STORED)
    give_back (p->service, p);
  switch (commit_item_result (item))
    {
    case COMMIT_STORED:
    case COMMIT_DUPLICATE:
      answer_add (out, "status", "queued");
      answer_add (out, "id", commit_item_invite_id (item));
      answer_end (out);
      break;
    case COMMIT_CONFLICT:
      refusal_set (&why, REFUSAL_CONFLICT, "idempotency_key",
                   "this key was used for a different request");
      answer_refusal (out, &why);
      break;
    case COMMIT_FAILED:
      refusal_set (&why, REFUSAL_UNAVAILABLE, NULL,
                   "the invite could not be stored; nothing was queued, try again");
      answer_refusal (out, &why);
      break;
    case COMMIT_UNAUDITED:
      refusal_set (&why, REFUSAL_UNAVAILABLE, NULL,
                   "the audit log cannot be written now; nothing was queued, try again later");
      answer_refusal (out, &why);
      break;
    }
  send_answer (p->reply, p->target, out);
  g_free (p);
}

typedef struct {
  Pending pending;
  GString *answer;
  gboolean shows;           /* the answer shows what the row records */
} AuditedPending;

static void
on_answer_audited (CommitItem *item, gpointer data)
{
  AuditedPending *ap = data;

  /* A status answer shows addresses only with its audit row stored:
   * without it, the caller hears unavailable and sees nothing. */
  if (ap->shows && commit_item_result (item) != COMMIT_STORED)
    {
      Refusal why;

      refusal_set (&why, REFUSAL_UNAVAILABLE, NULL,
                   "the audit cannot be written now; try again");
      g_string_truncate (ap->answer, 0);
      answer_refusal (ap->answer, &why);
    }
  send_answer (ap->pending.reply, ap->pending.target, ap->answer);
  g_string_free (ap->answer, TRUE);
  g_free (ap);
}

/* Sends answer (taken) only once rec is in the audit: what was shown
 * is recorded before it is shown. */
static void
answer_after_audit (Service *s, const AuditRecord *rec, GString *answer,
                    ServiceReply reply, gpointer target)
{
  AuditedPending *ap = g_new0 (AuditedPending, 1);
  CommitItem *item = commit_item_new (on_answer_audited, ap);

  ap->pending.reply = reply;
  ap->pending.target = target;
  ap->answer = answer;
  ap->shows = rec->event == AUDIT_STATUS_SHOWN;
  commit_item_set_audit (item, rec);
  committer_submit (s->committer, item);
}

/*
 * Booking and staff of a refused request, for the audit, when they are
 * harmless by themselves: the booking passes the free-text rules, the
 * staff id is a plain token without '@', and neither is the field the
 * refusal is about.  Anything else stays out: a refused value is never
 * written anywhere.
 */
static const char *
refused_value (const RawRequest *req, const Refusal *why, const char *name)
{
  const char *v = req ? raw_request_get (req, name) : NULL;
  Refusal scratch;

  if (v == NULL || strcmp (why->field, name) == 0)
    return NULL;
  if (strcmp (name, "booking") == 0)
    return validate_free_text (name, v, BOOKING_MAX_CHARS, &scratch) ? v : NULL;
  if (*v == '\0' || strlen (v) > STAFF_MAX)
    return NULL;
  for (const char *p = v; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr ("._:-", *p) == NULL)
      return NULL;
  return v;
}

/* booking and staff: harmless values for the row, or NULL. */
static void
refuse_with (Service *s, const PeerCred *peer, const Refusal *why,
             const char *booking, const char *staff, ServiceReply reply, gpointer target)
{
  AuditRecord rec = { 0 };
  GString *answer = g_string_new (NULL);

  answer_refusal (answer, why);
  rec.event = AUDIT_REJECTED;
  rec.peer_uid = peer != NULL && peer->uid != (uid_t) -1 ? (gint64) peer->uid : -1;
  rec.error_code = refusal_code_name (why->code);
  rec.field = why->field[0] != '\0' ? why->field : NULL;
  rec.detail = why->message;
  rec.booking = booking;
  rec.staff = staff;
  g_message ("refused request from uid %ld: %s%s%s", (long) rec.peer_uid,
             refusal_code_name (why->code), why->field[0] ? " field=" : "",
             why->field);
  /* Answered only once the refusal is in the audit. */
  answer_after_audit (s, &rec, answer, reply, target);
}

static void
refuse_request (Service *s, const PeerCred *peer, const RawRequest *req,
                const Refusal *why, ServiceReply reply, gpointer target)
{
  refuse_with (s, peer, why, refused_value (req, why, "booking"),
               refused_value (req, why, "staff"), reply, target);
}

void
service_refuse (Service *s, const PeerCred *peer, const Refusal *why,
                ServiceReply reply, gpointer target)
{
  refuse_request (s, peer, NULL, why, reply, target);
}

static void
status_answer (const QueueStatus *st, GString *out)
{
  answer_add (out, "status", "ok");
  answer_add (out, "id", st->id);
  answer_add (out, "state", st->state);
  for (guint i = 0; i < st->recipients->len; i++)
    {
      QueueRcptStatus *r = g_ptr_array_index (st->recipients, i);
      g_autoptr (GDateTime) next = r->next_try > 0
        ? g_date_time_new_from_unix_utc (r->next_try) : NULL;
      g_autofree char *next_s = next ? g_date_time_format_iso8601 (next) : g_strdup ("-");
      /* ADDRESS STATE ATTEMPTS NEXT_TRY REPLY...: the reply last, as it
       * is the only field with spaces. */
      g_autofree char *line = g_strdup_printf ("%s %s %u %s %s", r->address,
                                               queue_state_name (r->state),
                                               r->attempts, next_s,
                                               r->reply ? r->reply : "-");
      answer_add (out, "recipient", line);
    }
  answer_end (out);
}

/*
 * status shows every recipient's address, so it is answered only to
 * the uid that sent the invite, root and [daemon] status_groups.
 * Anyone else gets not_found, the very answer an unknown id gets: a
 * different code would tell a nosy user that the invite exists (that a
 * mail went out at the time the id encodes).  Each answer is audited
 * (who asked, which invite, how many addresses; never the addresses)
 * and sent only once that row is stored.  TRUE when the answer is on
 * its way; FALSE with *why set.
 */
static gboolean
handle_status (Service *s, const PeerCred *peer, const RawRequest *req,
               ServiceReply reply, gpointer target, Refusal *why)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QueueStatus) st = NULL;
  g_autofree char *detail = NULL;
  const char *id = raw_request_get (req, "id");
  AuditRecord rec = { 0 };
  GString *out;

  if (id == NULL)
    return refusal_set (why, REFUSAL_MISSING_FIELD, "id", NULL);
  if (!validate_invite_id (id, why))
    return FALSE;
  st = queue_status (s->queue, id, &error);
  if (st == NULL && !g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND))
    return refusal_set (why, REFUSAL_UNAVAILABLE, NULL, "queue cannot be read now");
  if (st == NULL || !peer_may_see (s, peer, st->peer_uid))
    return refusal_set (why, REFUSAL_NOT_FOUND, "id", "no invite with that id");
  out = g_string_new (NULL);
  status_answer (st, out);
  detail = g_strdup_printf ("status answered with %u recipient address(es)",
                            st->recipients->len);
  rec.event = AUDIT_STATUS_SHOWN;
  rec.invite_id = st->id;
  rec.peer_uid = peer->uid;
  rec.detail = detail;
  answer_after_audit (s, &rec, out, reply, target);
  return TRUE;
}

static gboolean
validate (Service *s, const RawRequest *req, Invitation **inv, Refusal *why)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  ValidateContext ctx = {
    .link_hosts = (const char *const *) s->cfg->link_hosts,
    .max_recipients = s->cfg->max_recipients,
    .default_lang = s->cfg->default_lang,
    .default_template = "evisit",
    .have_template = templates_lookup,
    .have_template_data = (gpointer) s->templates,
    .now = now,
  };
  return validate_invitation (req, &ctx, inv, why);
}

/* The calendar entry for an invite with a meeting time: a new UID (a
 * cancellation reads it back from the stored message), the whole plain
 * text as its description (link, unit, whom to call, the notice), and
 * the organisation's own From address as the organiser: no recipient,
 * no person.  (transfer full) */
static char *
invitation_calendar (Service *s, const Invitation *inv, const Rendered *r,
                     GDateTime *now)
{
  g_autofree char *uid = calendar_new_uid (s->cfg->message_id_domain);
  const char *unit = invitation_unit (inv);
  g_autofree char *summary = unit ? g_strdup_printf ("%s, %s", r->title, unit)
                                  : g_strdup (r->title);
  CalendarEvent ev = {
    .uid = uid,
    .sequence = 0,
    .start = invitation_meeting_time (inv),
    .end = invitation_meeting_end (inv),
    .stamp = now,
    .tz_name = s->cfg->timezone,
    .summary = summary,
    .description = r->text,
    .link = invitation_link (inv),
    .organizer_name = s->cfg->org_name,
    .organizer_addr = s->cfg->from,
    .lang = r->lang,
  };
  return calendar_ics (&ev);
}

/* Renders and builds the message with the Message-ID msgid; on
 * failure *why is internal. */
static GBytes *
build_message (Service *s, const Invitation *inv, const char *msgid,
               Rendered **rendered_out, Refusal *why)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (Rendered) r = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now (s->tz);
  RenderOrg org = { s->cfg->org_name, s->cfg->dpo_email, s->cfg->slogan, s->logo_cid,
                    s->cfg->timezone, s->cfg->contact };
  MimeOptions mo = {
    .from_name = s->cfg->org_name,
    .from_addr = s->cfg->from,
    .message_id_domain = s->cfg->message_id_domain,
    .to_undisclosed = s->cfg->to_header == TO_HEADER_UNDISCLOSED,
    .date = now,
    .message_id = msgid,
    .logo_cid = s->logo_cid,
  };
  GBytes *msg;
  g_autofree char *ics = NULL;

  r = render_invitation (s->templates, &org, inv, &error);
  if (r != NULL && invitation_meeting_time (inv) != NULL)
    {
      ics = invitation_calendar (s, inv, r, now);
      mo.calendar = ics;
      mo.calendar_method = "PUBLISH";
    }
  if (r == NULL || (msg = mime_build (r, &mo, NULL, &error)) == NULL)
    {
      g_warning ("building the message failed: %s", error->message);
      refusal_set (why, REFUSAL_INTERNAL, NULL, "the message could not be built");
      return NULL;
    }
  *rendered_out = g_steal_pointer (&r);
  return msg;
}

static void
handle_preview (Service *s, const RawRequest *req, GString *out, Refusal *why)
{
  g_autoptr (Invitation) inv = NULL;
  g_autoptr (Rendered) r = NULL;
  g_autoptr (GBytes) msg = NULL;
  g_autofree char *b64 = NULL;
  g_autofree char *msgid = NULL;
  gsize len;
  const guchar *data;

  if (!validate (s, req, &inv, why))
    return;
  if (!make_message_id (s->cfg->message_id_domain, &msgid))
    {
      refusal_set (why, REFUSAL_INTERNAL, NULL, "no randomness for a Message-ID");
      return;
    }
  if ((msg = build_message (s, inv, msgid, &r, why)) == NULL)
    return;
  data = g_bytes_get_data (msg, &len);
  b64 = g_base64_encode (data, len);
  answer_add (out, "status", "ok");
  answer_add (out, "eml", b64);
  answer_end (out);
}

static void
fill_accepted (Service *s, AuditRecord *rec, const PeerCred *peer, const Invitation *inv,
               const char *id, const Rendered *r, const char *msg_sha,
               char link_sha[SHA256_HEX_SIZE], GString *rcpts)
{
  const char *link = invitation_link (inv);

  for (guint i = 0; i < invitation_n_recipients (inv); i++)
    g_string_append_printf (rcpts, "%s%s", i ? "," : "",
                            invitation_recipient (inv, i));
  sha256_hex (link, strlen (link), link_sha);
  rec->event = AUDIT_ACCEPTED;
  rec->invite_id = id;
  rec->peer_uid = peer->uid;
  rec->staff = invitation_staff (inv);
  rec->booking = invitation_booking (inv);
  rec->recipients = rcpts->str;
  rec->lang = invitation_lang (inv);
  rec->template_name = invitation_template (inv);
  rec->link_sha256 = link_sha;
  rec->notice_sha256 = r->notice_sha256;
  rec->template_sha256 = r->template_sha256;
  rec->signature_sha256 = r->signature_sha256;
  rec->message_sha256 = msg_sha;
  /* The unit the request named, else the configured one. */
  rec->org_unit = invitation_unit (inv) != NULL ? invitation_unit (inv)
                                                : s->cfg->org_unit;
}

static void
fill_insert (Service *s, QueueInsert *ins, const PeerCred *peer,
             const Invitation *inv, const char *id, const char *msgid,
             GBytes *msg, const char *msg_sha, const char *fp, const char **rcpts)
{
  GDateTime *meeting = invitation_meeting_time (inv);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  for (guint i = 0; i < invitation_n_recipients (inv); i++)
    rcpts[i] = invitation_recipient (inv, i);
  ins->id = id;
  ins->created = now;
  ins->expires = retry_expires (&s->retry, now,
                                meeting ? g_date_time_to_unix (meeting) : 0);
  ins->idempotency_key = invitation_idempotency_key (inv);
  ins->fingerprint = fp;
  ins->staff = invitation_staff (inv);
  ins->booking = invitation_booking (inv);
  ins->unit = invitation_unit (inv);
  ins->message_id = msgid;
  ins->peer_uid = peer->uid;
  ins->envelope_from = s->cfg->envelope_from;
  ins->message = msg;
  ins->message_sha256 = msg_sha;
  ins->recipients = rcpts;
  ins->n_recipients = invitation_n_recipients (inv);
}

/*
 * The limits of issue 9 point 7, after validation (so a malformed
 * request costs nothing) and before any work: per uid, invites a minute
 * and recipients a day (rate_limited), and for everyone together the
 * recipients waiting in the queue (busy: a state of the service, not the
 * caller's doing).  Root and the daemon's own uid are not limited: they
 * can write to the queue file anyway.  Refusals are audited like any.
 */
static gboolean
check_limits (Service *s, const PeerCred *peer, guint n_rcpts, Pending *p,
              Refusal *why)
{
  LimitsConfig lc = { s->cfg->limit_invites_per_minute,
                      s->cfg->limit_recipients_per_day };
  gint64 mono_ms = g_get_monotonic_time () / 1000;
  guint cap = s->cfg->limit_queued_recipients;
  gboolean taken;

  if (peer->uid == 0 || peer->uid == geteuid ())
    return TRUE;
  if (cap > 0 && (s->undelivered_at == 0
                  || mono_ms - s->undelivered_at >= UNDELIVERED_RECOUNT_MS))
    {
      g_autoptr (GError) error = NULL;
      gint64 n = queue_count_undelivered (s->queue, &error);
      if (n < 0)
        return refusal_set (why, REFUSAL_UNAVAILABLE, NULL, "queue cannot be read now");
      s->undelivered = n;
      s->undelivered_at = mono_ms;
    }
  if (cap > 0 && s->undelivered + n_rcpts > cap)
    return refusal_set (why, REFUSAL_BUSY, NULL,
                        "%u recipients are waiting to be delivered; try again later", cap);
  p->taken_ms = g_get_real_time () / 1000;
  g_mutex_lock (&s->limits_lock);
  taken = limits_take (s->limits, &lc, peer->uid, n_rcpts, p->taken_ms, why);
  g_mutex_unlock (&s->limits_lock);
  if (!taken)
    return FALSE;
  p->limited = TRUE;
  p->uid = peer->uid;
  p->n_rcpts = n_rcpts;
  s->undelivered += n_rcpts;
  return TRUE;
}

/* A send between the main thread's checks and the committer: all owned. */
typedef struct {
  Pending pend;             /* reply, target, service, what limits took */
  PeerCred peer;
  Invitation *inv;
  char id[INVITE_ID_LEN + 1];
  char *msgid;
} SendJob;

static void
send_job_free (SendJob *job)
{
  invitation_free (job->inv);
  g_free (job->msgid);
  g_free (job);
}

/* Checks, then hands the build to the pool (build_send): the answer
 * `queued` is given by on_committed, after the transaction holding it. */
static gboolean
handle_send (Service *s, const PeerCred *peer, const RawRequest *req,
             ServiceReply reply, gpointer target, Refusal *why)
{
  g_autoptr (Invitation) inv = NULL;
  g_autofree char *msgid = NULL;
  Pending pend = { 0 };
  SendJob *job;
  char id[INVITE_ID_LEN + 1];

  /* Fail closed: while no audit row can be stored, nothing is queued
   * (commit.h); say so at once rather than after the work. */
  if (!committer_audit_open (s->committer))
    return refusal_set (why, REFUSAL_UNAVAILABLE, NULL,
                        "the audit log cannot be written now; nothing was queued,"
                        " try again later");
  if (!validate (s, req, &inv, why)
      || !check_limits (s, peer, invitation_n_recipients (inv), &pend, why))
    return FALSE;
  if (!make_invite_id (id) || !make_message_id (s->cfg->message_id_domain, &msgid))
    {
      if (pend.limited)
        give_back (s, &pend);
      return refusal_set (why, REFUSAL_INTERNAL, NULL, "no randomness for an id");
    }
  job = g_new0 (SendJob, 1);
  job->pend = pend;
  job->pend.reply = reply;
  job->pend.target = target;
  job->pend.service = s;
  job->peer = *peer;
  job->inv = g_steal_pointer (&inv);
  memcpy (job->id, id, sizeof id);
  job->msgid = g_steal_pointer (&msgid);
  committer_expect (s->committer, 1);
  builder_push (s->builder, job);
  return TRUE;
}

/* BuilderFunc, on a pool thread: render, build, hash, then the insert
 * and its `accepted` row go to the committer.  A message that cannot be
 * built is refused (internal) and audited like any refusal; booking and
 * staff come from the checked invitation. */
static void
build_send (gpointer data, gpointer service)
{
  SendJob *job = data;
  Service *s = service;
  const Invitation *inv = job->inv;
  g_autoptr (Rendered) r = NULL;
  g_autoptr (GBytes) msg = NULL;
  g_autoptr (GString) rcpts = g_string_new (NULL);
  g_autofree char *fp = NULL;
  g_autofree const char **rcpt_v = NULL;
  g_autofree char *evidence = NULL;
  char msg_sha[SHA256_HEX_SIZE], link_sha[SHA256_HEX_SIZE];
  QueueInsert ins = { 0 };
  AuditRecord rec = { 0 };
  CommitItem *item;
  Refusal why;
  gsize len;
  const void *data_;

  refusal_clear (&why);
  msg = build_message (s, inv, job->msgid, &r, &why);
  if (msg == NULL)
    {
      if (job->pend.limited)
        give_back (s, &job->pend);
      refuse_with (s, &job->peer, &why, invitation_booking (inv),
                   invitation_staff (inv), job->pend.reply, job->pend.target);
      committer_expect (s->committer, -1);
      send_job_free (job);
      return;
    }
  data_ = g_bytes_get_data (msg, &len);
  sha256_hex (data_, len, msg_sha);
  fp = invitation_fingerprint (inv);
  rcpt_v = g_new0 (const char *, invitation_n_recipients (inv) + 1);
  fill_insert (s, &ins, &job->peer, inv, job->id, job->msgid, msg, msg_sha, fp, rcpt_v);
  fill_accepted (s, &rec, &job->peer, inv, job->id, r, msg_sha, link_sha, rcpts);
  /* Which notice the person was shown, as shown, and for when. */
  evidence = evidence_accepted (r->notice_version, r->notice_rendered_sha256,
                                invitation_meeting_time (inv));
  rec.detail = evidence;
  /* The item copies every string it keeps: the job can go now. */
  item = commit_item_new (on_committed, g_memdup2 (&job->pend, sizeof job->pend));
  commit_item_set_insert (item, &ins);
  commit_item_set_audit (item, &rec);
  committer_submit_announced (s->committer, item);
  send_job_free (job);
}

/* ---- cancel ------------------------------------------------------------ */

typedef struct {
  ServiceReply reply;
  gpointer target;
  Service *service;
  char *id;                 /* the cancelled invite */
  guint stopped;
  guint notified;
} CancelPending;

static void
cancel_answer (GString *out, const char *id, guint stopped, guint notified,
               const char *cancellation)
{
  g_autofree char *s = g_strdup_printf ("%u", stopped);
  g_autofree char *n = g_strdup_printf ("%u", notified);

  answer_add (out, "status", "cancelled");
  answer_add (out, "id", id);
  answer_add (out, "stopped", s);
  answer_add (out, "notified", n);
  if (cancellation != NULL)
    answer_add (out, "cancellation", cancellation);
  answer_end (out);
}

static void
on_cancel_committed (CommitItem *item, gpointer data)
{
  CancelPending *cp = data;
  g_autoptr (GString) out = g_string_new (NULL);
  Refusal why;

  if (commit_item_result (item) == COMMIT_STORED
      || commit_item_result (item) == COMMIT_DUPLICATE)
    cancel_answer (out, cp->id, cp->stopped, cp->notified, commit_item_invite_id (item));
  else
    {
      /* Its row (or the cancellation) was not stored: the recipients
       * it stopped go back to the queue, so nothing changed unaudited. */
      g_autoptr (GError) error = NULL;
      if (cp->stopped > 0
          && !queue_cancel_undo (cp->service->queue, cp->id,
                                 g_get_real_time () / G_USEC_PER_SEC, &error))
        g_warning ("cancel of %s not stored and not undone: %s", cp->id, error->message);
      refusal_set (&why, REFUSAL_UNAVAILABLE, NULL,
                   "the cancellation could not be stored; nothing was cancelled, try again");
      answer_refusal (out, &why);
    }
  send_answer (cp->reply, cp->target, out);
  g_free (cp->id);
  g_free (cp);
}

/*
 * The cancellation mail for the recipients the invite reached: the
 * cancel template in the invite's language, and when the invite had a
 * calendar entry, the same UID with METHOD:CANCEL and SEQUENCE one
 * higher.  *start_out gets the meeting's start (or NULL).  (transfer full)
 */
static GBytes *
build_cancellation (Service *s, GBytes *original, const char *msgid,
                    GDateTime **start_out, Refusal *why)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *lang = NULL, *uid = NULL, *summary = NULL, *ics = NULL;
  g_autofree char *text = mime_calendar_text (original, &lang, NULL);
  g_autoptr (GDateTime) start = NULL, end = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now (s->tz);
  g_autoptr (Rendered) r = NULL;
  guint seq = 0;
  RenderOrg org = { s->cfg->org_name, s->cfg->dpo_email, s->cfg->slogan, s->logo_cid,
                    s->cfg->timezone, s->cfg->contact };
  MimeOptions mo = {
    .from_name = s->cfg->org_name,
    .from_addr = s->cfg->from,
    .message_id_domain = s->cfg->message_id_domain,
    .to_undisclosed = s->cfg->to_header == TO_HEADER_UNDISCLOSED,
    .date = now,
    .message_id = msgid,
    .logo_cid = s->logo_cid,
  };
  GBytes *msg = NULL;

  if (text != NULL && !calendar_parse (text, &uid, &seq, &start, &end, &summary))
    {
      refusal_set (why, REFUSAL_INTERNAL, NULL, "the invite's calendar entry is unreadable");
      return NULL;
    }
  r = render_cancellation (s->templates, &org, lang ? lang : s->cfg->default_lang,
                           start, end, &error);
  if (r != NULL && uid != NULL)
    {
      CalendarEvent ev = {
        .uid = uid, .sequence = seq + 1, .cancel = TRUE,
        .start = start, .end = end, .stamp = now,
        .tz_name = s->cfg->timezone, .summary = summary, .description = r->text,
        .organizer_name = s->cfg->org_name, .organizer_addr = s->cfg->from,
        .lang = r->lang,
      };
      ics = calendar_ics (&ev);
      mo.calendar = ics;
      mo.calendar_method = calendar_method (&ev);
    }
  if (r == NULL || (msg = mime_build (r, &mo, NULL, &error)) == NULL)
    {
      g_warning ("building the cancellation failed: %s", error->message);
      refusal_set (why, REFUSAL_INTERNAL, NULL, "the cancellation could not be built");
      return NULL;
    }
  *start_out = g_steal_pointer (&start);
  return msg;
}

/*
 * invitemail cancel ID: only the uid that sent the invite (or root) may
 * cancel it -- status_groups may look, not act; anyone else hears
 * not_found, as for status.  Recipients not yet reached are stopped;
 * those reached (or in flight) get a cancellation of their own, queued
 * as a new invite under the idempotency key "cancel:ID", so a repeated
 * cancel sends nothing twice.  Audited as `cancelled` on ID, with the
 * addresses notified.
 */
static gboolean
handle_cancel (Service *s, const PeerCred *peer, const RawRequest *req,
               ServiceReply reply, gpointer target, Refusal *why)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (QueueStatus) st = NULL;
  g_autoptr (GBytes) original = NULL, msg = NULL;
  g_autoptr (GPtrArray) reached = NULL;
  g_autoptr (GDateTime) start = NULL;
  g_autoptr (GString) rcpts = g_string_new (NULL);
  g_autofree char *detail = NULL, *msgid = NULL, *key = NULL;
  char fp[SHA256_HEX_SIZE];
  const char *id = raw_request_get (req, "id");
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  char new_id[INVITE_ID_LEN + 1], msg_sha[SHA256_HEX_SIZE];
  guint stopped = 0;
  AuditRecord rec = { 0 };
  QueueInsert ins = { 0 };

  if (id == NULL)
    return refusal_set (why, REFUSAL_MISSING_FIELD, "id", NULL);
  if (!validate_invite_id (id, why))
    return FALSE;
  /* Fail closed, as for send: the queue is not changed while its audit
   * row cannot be stored. */
  if (!committer_audit_open (s->committer))
    return refusal_set (why, REFUSAL_UNAVAILABLE, NULL,
                        "the audit log cannot be written now; nothing was"
                        " cancelled, try again later");
  st = queue_status (s->queue, id, &error);
  if (st == NULL && !g_error_matches (error, QUEUE_ERROR, QUEUE_ERROR_NOT_FOUND))
    return refusal_set (why, REFUSAL_UNAVAILABLE, NULL, "queue cannot be read now");
  if (st == NULL || !(peer->uid == 0 || (gint64) peer->uid == st->peer_uid))
    return refusal_set (why, REFUSAL_NOT_FOUND, "id", "no invite with that id");
  /* Built before anything changes: a failure here leaves the invite as
   * it was. */
  if ((original = queue_message (s->queue, id, NULL)) == NULL)
    return refusal_set (why, REFUSAL_UNAVAILABLE, NULL, "queue cannot be read now");
  if (!make_invite_id (new_id) || !make_message_id (s->cfg->message_id_domain, &msgid))
    return refusal_set (why, REFUSAL_INTERNAL, NULL, "no randomness for an id");
  if ((msg = build_cancellation (s, original, msgid, &start, why)) == NULL)
    return FALSE;
  g_clear_error (&error);
  if (!queue_cancel (s->queue, id, now, &reached, &stopped, &error))
    return refusal_set (why, REFUSAL_UNAVAILABLE, NULL, "queue cannot be written now");
  for (guint i = 0; i < reached->len; i++)
    g_string_append_printf (rcpts, "%s%s", i ? "," : "",
                            (const char *) g_ptr_array_index (reached, i));
  detail = g_strdup_printf ("cancelled: %u recipient(s) stopped, %u sent a cancellation",
                            stopped, reached->len);
  rec.event = AUDIT_CANCELLED;
  rec.invite_id = id;
  rec.peer_uid = peer->uid;
  rec.recipients = rcpts->str;
  rec.detail = detail;
  CancelPending *cp = g_new0 (CancelPending, 1);
  cp->reply = reply;
  cp->target = target;
  cp->service = s;
  cp->id = g_strdup (id);
  cp->stopped = stopped;
  cp->notified = reached->len;
  CommitItem *item = commit_item_new (on_cancel_committed, cp);
  if (reached->len == 0)
    {
      /* nothing went out: stopping it is the whole cancel */
      commit_item_set_audit (item, &rec);
      committer_submit (s->committer, item);
      return TRUE;
    }
  g_ptr_array_add (reached, NULL);
  gsize len;
  const void *data = g_bytes_get_data (msg, &len);
  sha256_hex (data, len, msg_sha);
  rec.message_sha256 = msg_sha;
  key = g_strdup_printf ("cancel:%s", id);
  sha256_hex (key, strlen (key), fp);
  ins.id = new_id;
  ins.created = now;
  ins.expires = retry_expires (&s->retry, now, start ? g_date_time_to_unix (start) : 0);
  ins.idempotency_key = key;
  ins.fingerprint = fp;
  ins.message_id = msgid;
  ins.peer_uid = peer->uid;
  ins.envelope_from = s->cfg->envelope_from;
  ins.message = msg;
  ins.message_sha256 = msg_sha;
  ins.recipients = (const char **) reached->pdata;
  ins.n_recipients = reached->len - 1;
  commit_item_set_insert (item, &ins);
  commit_item_set_audit (item, &rec);
  committer_submit (s->committer, item);
  return TRUE;
}

void
service_handle (Service *s, const PeerCred *peer, const char *frame, gsize len,
                ServiceReply reply, gpointer target)
{
  g_autoptr (RawRequest) req = NULL;
  g_autoptr (GString) out = g_string_new (NULL);
  Refusal why;
  RequestKind kind;

  refusal_clear (&why);
  if (!request_parse (frame, len, &req, &why) || !validate_kind (req, &kind, &why))
    {
      service_refuse (s, peer, &why, reply, target);
      return;
    }
  switch (kind)
    {
    case REQUEST_KIND_PING:
      answer_add (out, "status", "ok");
      answer_end (out);
      break;
    case REQUEST_KIND_STATUS:
      if (handle_status (s, peer, req, reply, target, &why))
        return;
      break;
    case REQUEST_KIND_PREVIEW:
      handle_preview (s, req, out, &why);
      break;
    case REQUEST_KIND_SEND:
      if (handle_send (s, peer, req, reply, target, &why))
        return;
      break;
    case REQUEST_KIND_BOUNCE:
      if (bounce_handle (s->queue, s->committer, peer, req, reply, target, &why))
        return;
      break;
    case REQUEST_KIND_HEALTH:
      handle_health (s, out, &why);
      break;
    case REQUEST_KIND_CANCEL:
      if (handle_cancel (s, peer, req, reply, target, &why))
        return;
      break;
    }
  if (why.code != REFUSAL_NONE)
    refuse_request (s, peer, req, &why, reply, target);
  else
    send_answer (reply, target, out);
}
