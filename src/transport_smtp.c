/*
 * transport_smtp.c - the SMTP backend: delivers finished messages to the
 * relay through libESMTP 1.1.0, the only file that includes it.  One
 * connection per batch, one transaction (MAIL, one RCPT, DATA) per job,
 * each job judged from its own statuses and reported to the caller as
 * soon as the relay answered its data (message_done).  TLS comes from
 * transport_tls.c, the lookup and connect bounds from transport_net.c.
 *
 * TRUSTS: the Config (checked by config.c) and the message bytes (CRLF
 * from mime_build).  Envelope addresses are checked again here.  The
 * relay is not trusted: its reply text is cut and made printable before
 * it leaves this file, and it gets no MAIL FROM unless TLS (when
 * configured) and AUTH (when configured) both succeeded.
 *
 * libESMTP 1.1.0 quirks, each contained here:
 *  - <libesmtp.h> needs size_t first, and declares smtp_starttls_set_ctx
 *    and smtp_auth_set_context only after <openssl/ssl.h> and
 *    <auth-client.h>: hence the include order below.
 *  - Its default SSL_CTX sits in a static that smtp_destroy_session
 *    frees (a second session would use freed memory): every session
 *    gets its own (smtp_starttls_set_ctx takes a reference).
 *  - It sends no SNI and checks the certificate name without IP SANs or
 *    CNAME targets: OpenSSL enforces the configured name in the
 *    handshake (transport_tls.c), and libESMTP's own check, which sees
 *    the literal we connected to, is answered from OpenSSL's result.
 *  - smtp_start_session returns 1 even when STARTTLS was missing, the
 *    certificate refused or every recipient refused: jobs are judged
 *    only from the per-message and per-recipient statuses.
 *  - smtp_errno is sticky: set to a known value before each session.
 *  - smtp_set_timeout takes milliseconds and raises values to the RFC
 *    minimums (minutes) without Timeout_OVERRIDE_RFC2822_MINIMUM.  The
 *    timeout restarts at every read, so a relay that drips a line every
 *    few seconds is never timed out: each session has a deadline
 *    (TRANSPORT_SESSION_TIMEOUTS, plus a timeout per transaction
 *    answered: message_done), and replies have caps
 *    (transport_wire.c).
 *  - It writes with write(2): SIGPIPE is ignored, process-wide.
 *  - It passes a Bcc: header through, and smtp_set_header (m, "To", ...)
 *    lists every envelope recipient: never called; To (unless
 *    configured), Cc and Bcc are prohibited.
 *  - Any 8BITMIME body declaration makes 8BITMIME required; DSN
 *    parameters are optional: neither is used.
 *  - The message callback is asked to rewind (len == NULL) and its
 *    context pointer is free()d: it is malloc'd.
 *  - Mailboxes go verbatim between '<' and '>': a CRLF would inject
 *    commands, hence envelope_safe (envelope.h) before every use.
 *  - Name lookup and connect() have no timeout: both are bounded in
 *    transport_net.c, and libESMTP is handed an IPv4 literal.
 *  - The PLAIN plugin copies user and password into a 513-byte buffer.
 *  - After a refused AUTH it goes on to MAIL FROM unauthenticated (only
 *    534/538 stop it), and no API tells whether AUTH succeeded.
 *  - Bytes it read past the relay's 220 to STARTTLS stay in its read
 *    buffer and are taken as replies inside TLS (STARTTLS injection).
 *  - It raises SMTP_EV_STARTTLS_OK after the handshake and before its
 *    EHLO: the TLS 1.3 ticket barrier runs there (transport_tls.c).
 *
 * The protocol monitor as a guard, not a logger: libESMTP calls it with
 * every chunk it reads, before parsing it, and with every buffer it is
 * about to write.  transport_wire.c judges those bytes (AUTH before MAIL,
 * STARTTLS injection, deadline, caps); when it says stop, the session is
 * cut: shutdown(2) of the socket once the TLS layer told us its fd, and
 * in any case the buffers themselves (writable memory inside libESMTP:
 * the const in the callback type is a promise we break on purpose) are
 * overwritten, what would leave with "QUIT" and blanks, what was read
 * with empty lines that libESMTP's parser refuses.  So the relay gets no
 * MAIL FROM, RCPT or DATA after a cut, and libESMTP ends the session at
 * once.  The TLS handshake itself goes past the monitor: the injection
 * check runs at handshake start (attempt_tls_start), the deadline on
 * the socket's reads (transport_tls.c).  The monitor never logs: the
 * AUTH line holds the password.
 */
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <auth-client.h>
#include <libesmtp.h>

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "transport_private.h"
#include "transport_smtp.h"
#include "transport_tls.h"
#include "transport_wire.h"

#define FEED_CHUNK (1024 * 1024) /* big chunks: BDAT sends them as they come */

/* Everything one smtp_start_session learns, filled by the callbacks. */
typedef struct {
  const SmtpRelay *smtp;
  TlsPeer tls;              /* socket and certificate error, from TLS */
  Wire wire;                /* replies and AUTH, judged from the bytes */
  gboolean cut;             /* we severed the connection before MAIL */
  gboolean connected;       /* libESMTP reported SMTP_EV_CONNECT */
  ConnectWatch *watch;      /* bounds connect(), NULL outside it */
  TransportRun *run;        /* the caller's jobs and its TransportDone */
  char reason[DELIVERY_REPLY_MAX];       /* first session-level failure */
} Attempt;

/* What the message callback needs for one job. */
typedef struct {
  DeliveryJob *job;
  guint index;              /* of job in run->jobs */
  gboolean judged;          /* its outcome is final (message_done) */
  const Attempt *attempt;
  smtp_message_t message;
  smtp_recipient_t recipient;
} Feed;

static void G_GNUC_PRINTF (2, 3)
attempt_fail (Attempt *a, const char *fmt, ...)
{
  va_list ap;

  if (a->reason[0] != '\0')
    return;                       /* the first cause is the real one */
  va_start (ap, fmt);
  g_autofree char *text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  transport_safe_text (a->reason, sizeof a->reason, text, strlen (text));
}

/* ---- the guard: protocol monitor ---- */

/* Records why the session ended and says so in the operational log (no
 * address in it: the relay and the reason only). */
static void
attempt_end (Attempt *a, const char *why)
{
  attempt_fail (a, "%s", why);
  g_warning ("SMTP session with %s port %u ended: %s", a->smtp->cfg->smtp_host,
             a->smtp->cfg->smtp_port, a->reason);
}

/* Ends the session here: the socket is shut down when we know it (from
 * the TLS layer), and libESMTP's buffers are silenced from now on
 * (monitor_read, monitor_write), which also covers a clear-text relay. */
static void
attempt_cut (Attempt *a, const char *why)
{
  a->cut = TRUE;
  if (a->tls.fd >= 0)
    shutdown (a->tls.fd, SHUT_RDWR);
  attempt_end (a, why);
}

static void
monitor_write (Attempt *a, char *buf, int len)
{
  if (!a->cut && !transport_wire_write (&a->wire, buf, (gsize) len))
    attempt_cut (a, a->wire.why);
  if (a->cut)
    transport_wire_silence (buf, (gsize) len, FALSE);  /* nothing leaves */
}

/* What was read goes through the wire's verdicts; after a cut it is
 * silenced, so libESMTP ends the session without waiting for more. */
static void
monitor_read (Attempt *a, char *buf, int len)
{
  if (!a->cut && !transport_wire_read (&a->wire, buf, (gsize) len))
    attempt_cut (a, a->wire.why);
  if (a->cut)
    transport_wire_silence (buf, (gsize) len, TRUE);
}

static void
monitor_cb (const char *buf, int buflen, int writing, void *arg)
{
  /* buf points into libESMTP's own buffers; see the file header for
   * why we change them. */
  if (buflen <= 0)
    return;
  if (writing == SMTP_CB_READING)
    monitor_read (arg, (char *) buf, buflen);
  else if (writing == SMTP_CB_WRITING)
    monitor_write (arg, (char *) buf, buflen);
}

/* At TLS handshake start, before our ClientHello leaves: the STARTTLS
 * injection check (transport_wire.c), with what already waits on the
 * socket, which libESMTP has not read yet. */
static void
attempt_tls_start (void *arg, SSL *ssl)
{
  Attempt *a = arg;
  int unread = 0;

  (void) ssl;
  if (a->tls.fd < 0 || ioctl (a->tls.fd, FIONREAD, &unread) != 0)
    unread = 0;
  if (!transport_wire_tls_start (&a->wire, unread > 0 ? (gsize) unread : 0)
      && !a->cut)
    attempt_cut (a, a->wire.why);   /* shutdown: the handshake fails */
}

/* ---- events ---- */

static void message_done (Attempt *a, smtp_message_t m);

/* The TLS 1.3 ticket barrier (transport_tls.c); a failed one has shut
 * the connection down, and nothing more may leave (monitor_write). */
static void
attempt_barrier (Attempt *a, SSL *ssl)
{
  char why[DELIVERY_REPLY_MAX];

  if (transport_tls_barrier (ssl, transport_smtp_timeout (a->smtp->cfg),
                             why, sizeof why))
    return;
  attempt_fail (a, "%s", why);
  a->cut = TRUE;
}

/* A certificate OpenSSL refused. */
static void
attempt_fail_verify (Attempt *a, long vfy)
{
  g_autofree char *text = transport_tls_verify_text (vfy);

  attempt_fail (a, "%s", text);
}

/* libESMTP's own checks after the handshake.  *ok starts at 0 and stays
 * 0 (QUIT) except for its host-name check, which cannot follow a CNAME or
 * read IP SANs: OpenSSL already enforced the configured name, so a clean
 * verify result is enough there. */
static void
event_cb (smtp_session_t session, int event, void *arg, ...)
{
  Attempt *a = arg;
  va_list ap;

  (void) session;
  va_start (ap, arg);
  switch (event)
    {
    case SMTP_EV_CONNECT:
      a->connected = TRUE;
      transport_watch_disarm (a->watch);
      transport_relay_nodelay (a->smtp->cfg->smtp_port);
      break;
    case SMTP_EV_STARTTLS_OK:
      /* After the handshake, before libESMTP writes EHLO. */
      attempt_barrier (a, va_arg (ap, SSL *));
      break;
    case SMTP_EV_EXTNA_STARTTLS:
      attempt_fail (a, "relay offers no STARTTLS");
      break;
    case SMTP_EV_INVALID_PEER_CERTIFICATE:
      attempt_fail_verify (a, va_arg (ap, long));
      break;
    case SMTP_EV_WRONG_PEER_CERTIFICATE:
      {
        int *ok = va_arg (ap, int *);
        (void) va_arg (ap, const char *);
        SSL *ssl = va_arg (ap, SSL *);
        if (ok != NULL && ssl != NULL
            && SSL_get_verify_result (ssl) == X509_V_OK)
          *ok = 1;
        else
          attempt_fail (a, "TLS certificate does not name the relay");
        break;
      }
    case SMTP_EV_MESSAGESENT:
      message_done (a, va_arg (ap, smtp_message_t));
      break;
    case SMTP_EV_NO_PEER_CERTIFICATE:
      attempt_fail (a, "relay sent no TLS certificate");
      break;
    case SMTP_EV_WEAK_CIPHER:
      attempt_fail (a, "TLS cipher too weak");
      break;
    case SMTP_EV_NO_CLIENT_CERTIFICATE:
    case SMTP_EV_UNUSABLE_CLIENT_CERTIFICATE:
    case SMTP_EV_UNUSABLE_CA_LIST:
      attempt_fail (a, "unusable TLS client files under ~/.config/libesmtp");
      break;
    default:
      break;
    }
  va_end (ap);
}

/* ---- AUTH ---- */

static int
auth_interact (auth_client_request_t req, char **result, int fields,
               void *arg)
{
  const SmtpRelay *t = arg;

  for (int i = 0; i < fields; i++)
    {
      if (req[i].flags & AUTH_USER)
        result[i] = t->cfg->smtp_auth_user;
      else if (req[i].flags & AUTH_PASS)
        result[i] = t->password;
      else
        return 0;                 /* realm or other: we have none */
    }
  return 1;
}

static gpointer
auth_init_once (gpointer unused)
{
  (void) unused;
  auth_client_init ();
  return NULL;
}

void
transport_smtp_init (void)
{
  static GOnce once = G_ONCE_INIT;

  /* libESMTP writes with write(2): a relay that hangs up must give
   * EPIPE, not kill the daemon.  Process-wide, on purpose. */
  signal (SIGPIPE, SIG_IGN);
  g_once (&once, auth_init_once, NULL);
}

static auth_context_t
auth_ctx_new (const SmtpRelay *t)
{
  auth_context_t ctx = auth_create_context ();

  if (ctx == NULL)
    return NULL;
  auth_set_mechanism_flags (ctx, AUTH_PLUGIN_PLAIN, 0);
  auth_set_interact_cb (ctx, auth_interact, (void *) t);
  return ctx;
}

/* ---- message data ---- */

/* libESMTP's message callback: len == NULL rewinds; *ctx is ours but
 * libESMTP free()s it, hence malloc.  Never hands out data once the
 * connection was cut. */
static const char *
feed_cb (void **ctx, int *len, void *arg)
{
  const Feed *f = arg;
  gsize *pos = *ctx;
  gsize size;
  const char *data;

  if (pos == NULL && (pos = *ctx = malloc (sizeof *pos)) != NULL)
    *pos = 0;
  if (len == NULL)
    {
      if (pos != NULL)
        *pos = 0;
      return NULL;
    }
  data = g_bytes_get_data (f->job->message, &size);
  if (pos == NULL || f->attempt->cut || data == NULL || *pos >= size)
    {
      *len = 0;
      return NULL;
    }
  gsize chunk = MIN (size - *pos, (gsize) FEED_CHUNK);
  *len = (int) chunk;
  *pos += chunk;
  return data + *pos - chunk;
}

/* ---- building and judging a session ---- */

static void
session_set_timeouts (smtp_session_t s, guint ms)
{
  static const int which[] = { Timeout_GREETING, Timeout_ENVELOPE,
                               Timeout_DATA, Timeout_TRANSFER, Timeout_DATA2 };

  for (gsize i = 0; i < G_N_ELEMENTS (which); i++)
    smtp_set_timeout (s, which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, ms);
}

static gboolean
session_setup (const SmtpRelay *t, smtp_session_t s, Attempt *a,
               SSL_CTX *tls, auth_context_t auth)
{
  const Config *cfg = t->cfg;
  const char *helo = cfg->smtp_helo_name != NULL ? cfg->smtp_helo_name
                                                 : g_get_host_name ();
  gboolean ok = smtp_set_hostname (s, helo)
    && smtp_set_eventcb (s, event_cb, a)
    && smtp_set_monitorcb (s, monitor_cb, a, 0);

  session_set_timeouts (s, transport_smtp_timeout (cfg));
  if (cfg->smtp_tls == TLS_NONE)
    ok = ok && smtp_starttls_enable (s, Starttls_DISABLED);
  else
    ok = ok && tls != NULL && smtp_starttls_enable (s, Starttls_REQUIRED)
      && smtp_starttls_set_ctx (s, tls);
  if (auth != NULL)
    ok = ok && smtp_auth_set_context (s, auth);
  return ok;
}

static gboolean
feed_add (const SmtpRelay *t, smtp_session_t s, Feed *f)
{
  const DeliveryJob *job = f->job;

  f->message = smtp_add_message (s);
  if (f->message == NULL)
    return FALSE;
  /* message_done finds the job from libESMTP's message. */
  smtp_message_set_application_data_release (f->message, f, NULL);
  /* Recipients live only in the envelope: no To (unless configured),
   * Cc or Bcc header may carry them. */
  gboolean ok = smtp_set_reverse_path (f->message, job->envelope_from)
    && smtp_set_messagecb (f->message, feed_cb, f)
    && smtp_set_header_option (f->message, "Cc", Hdr_PROHIBIT, 1)
    && smtp_set_header_option (f->message, "Bcc", Hdr_PROHIBIT, 1);
  if (t->cfg->to_header == TO_HEADER_NONE)
    ok = ok && smtp_set_header_option (f->message, "To", Hdr_PROHIBIT, 1);
  f->recipient = ok ? smtp_add_recipient (f->message, job->recipient) : NULL;
  return f->recipient != NULL;
}

/* Why the session gave no per-job answer, as text. */
static void
attempt_explain (Attempt *a, int err)
{
  char buf[128];

  if (a->tls.expired && !a->cut)   /* the TLS layer cut it */
    attempt_end (a, "SMTP session deadline passed: the relay was too slow "
                 "(a dripping or endless reply)");
  else if (a->tls.verify_error != X509_V_OK)
    attempt_fail_verify (a, a->tls.verify_error);
  else if (err == SMTP_ERR_CLIENT_ERROR)
    {
      unsigned long e = ERR_peek_last_error ();
      const char *why = e != 0 ? ERR_reason_error_string (e) : NULL;
      attempt_fail (a, "TLS handshake failed%s%s%s", why ? " (" : "",
                    why ? why : "", why ? ")" : "");
    }
  else if (a->wire.last_code >= 400)
    attempt_fail (a, "relay refused the session: %s", a->wire.last_reply);
  else if (err < 0)
    attempt_fail (a, "connect failed: %s", g_strerror (-err));
  else if (err == SMTP_ERR_DROPPED_CONNECTION)  /* also how timeouts end */
    attempt_fail (a, "connection lost or timed out");
  else if (err != 0 && err != SMTP_ERR_INVAL)
    attempt_fail (a, "SMTP session failed: %s",
                  smtp_strerror (err, buf, sizeof buf));
  else
    attempt_fail (a, "SMTP session ended without an answer");
}

static void
status_text (char *dst, gsize max, const smtp_status_t *st)
{
  g_autofree char *text = g_strdup_printf ("%d %s", st->code,
                                           st->text ? st->text : "");
  transport_safe_text (dst, max, text, strlen (text));
}

/* Sets the outcome from a 4xx/5xx status; FALSE if st holds neither. */
static gboolean
judge_failure (DeliveryJob *job, const smtp_status_t *st)
{
  char text[DELIVERY_REPLY_MAX];

  if (st == NULL || st->code < 400 || st->code > 599)
    return FALSE;
  status_text (text, sizeof text, st);
  transport_job_set (job, st->code >= 500 ? DELIVERY_PERMFAIL
                     : DELIVERY_TEMPFAIL, st->code, text);
  return TRUE;
}

/* The status pointers point into the message and recipient objects
 * (1.1.0 api.c), so they stay valid until smtp_destroy_session. */
/* The session ended before this transaction began: no reply to its
 * MAIL FROM, its RCPT or its data (a relay that hung up after a few
 * messages, or a connection lost between two of them). */
static gboolean
never_tried (Feed *f)
{
  const smtp_status_t *path = smtp_reverse_path_status (f->message);
  const smtp_status_t *msg = smtp_message_transfer_status (f->message);
  const smtp_status_t *rcpt = smtp_recipient_status (f->recipient);

  return (path == NULL || path->code == 0) && (msg == NULL || msg->code == 0)
         && (rcpt == NULL || rcpt->code == 0);
}

static void
judge (Feed *f, Attempt *a, DeliveryJob *job)
{
  const smtp_status_t *msg = smtp_message_transfer_status (f->message);
  const smtp_status_t *rcpt = smtp_recipient_status (f->recipient);
  char text[DELIVERY_REPLY_MAX];

  if (!a->cut && msg != NULL && msg->code == 250 && rcpt != NULL
      && rcpt->code / 100 == 2)
    {
      status_text (text, sizeof text, msg);
      transport_job_set (job, DELIVERY_SENT, 250, text);
      return;
    }
  if (!a->cut && (judge_failure (job, rcpt)
                  || judge_failure (job, smtp_reverse_path_status (f->message))
                  || judge_failure (job, msg)))
    return;
  transport_job_set (job, DELIVERY_TEMPFAIL, 0, a->reason);
}

/* SMTP_EV_MESSAGESENT: the relay answered the end of this transaction's
 * data (2xx, 4xx or 5xx; libESMTP raises it before the next MAIL FROM,
 * with nothing of ours in flight).  Its outcome is final now: a 250
 * means the relay holds the message, and the caller must hear of it
 * before the session goes on, not at the batch's end, so a crash in
 * between cannot send it again.  A reply read after a cut is silenced
 * (no event); a cut after it does not undo it.  The caller's time is
 * not the relay's: the session's deadline moves by as much.  And an
 * answered transaction earns the session one more timeout
 * (TRANSPORT_SESSION_TIMEOUTS): a relay that takes each message
 * steadily, if slowly, is not cut in the middle of a full batch. */
static void
message_done (Attempt *a, smtp_message_t m)
{
  Feed *f = m != NULL ? smtp_message_get_application_data (m) : NULL;

  if (f == NULL || f->judged || a->cut)
    return;
  judge (f, a, f->job);
  f->judged = TRUE;
  gint64 spent = transport_report (a->run, f->index)
    + (gint64) transport_smtp_timeout (a->smtp->cfg) * 1000;
  if (a->wire.deadline != 0)
    a->wire.deadline += spent;
  if (a->tls.deadline != 0)
    a->tls.deadline += spent;
}

/* Runs the session against each resolved address in turn until one
 * connects; connect() is bounded by one watch over them all.  A second
 * smtp_start_session after a failed connect is safe: nothing was sent,
 * so every recipient is still incomplete. */
static void
session_run (const SmtpRelay *t, smtp_session_t s, Attempt *a,
             GPtrArray *targets)
{
  guint budget = transport_smtp_timeout (t->cfg);
  int err = 0;

  a->watch = transport_watch_start (budget);
  for (guint i = 0; i < targets->len && !a->connected; i++)
    {
      g_autofree char *server = g_strdup_printf (
        "%s:%u", (const char *) g_ptr_array_index (targets, i),
        t->cfg->smtp_port);
      if (!smtp_set_server (s, server))
        break;
      /* smtp_errno is sticky: a refused call sets it to a
       * known value, so an old error is never blamed on this session. */
      smtp_message_transfer_status (NULL);
      ERR_clear_error ();
      smtp_start_session (s);
      err = smtp_errno ();
    }
  if (!a->connected && transport_watch_expired (a->watch))
    attempt_fail (a, "connect timed out after %u ms", budget);
  attempt_explain (a, err);
  transport_watch_free (a->watch);
  a->watch = NULL;
}

guint
transport_smtp_session (const SmtpRelay *t, TransportRun *run,
              const gboolean *to_send, GPtrArray *targets, gboolean *untried)
{
  DeliveryJob *jobs = run->jobs;
  guint n = run->n;
  guint sent = 0;
  gint64 deadline = g_get_monotonic_time ()
    + (gint64) TRANSPORT_SESSION_TIMEOUTS
      * transport_smtp_timeout (t->cfg) * 1000;
  Attempt a = { .smtp = t,
                .tls = { .host = t->cfg->smtp_host, .fd = -1,
                         .verify_error = X509_V_OK, .deadline = deadline,
                         .handshake_start = attempt_tls_start },
                .wire = { .auth_required = t->cfg->smtp_auth_user != NULL,
                          .deadline = deadline },
                .run = run };
  g_autofree Feed *feeds = g_new0 (Feed, n);
  smtp_session_t s = smtp_create_session ();

  a.tls.arg = &a;
  SSL_CTX *tls = t->cfg->smtp_tls == TLS_NONE ? NULL
    : transport_tls_ctx_new (t->store, &a.tls);
  auth_context_t auth = a.wire.auth_required ? auth_ctx_new (t) : NULL;
  gboolean ok = s != NULL && session_setup (t, s, &a, tls, auth)
    && (!a.wire.auth_required || auth != NULL);

  for (guint i = 0; ok && i < n; i++)
    if (to_send[i])
      {
        feeds[i] = (Feed) { .job = &jobs[i], .index = i, .attempt = &a };
        ok = feed_add (t, s, &feeds[i]);
      }
  if (!ok)
    transport_jobs_fail (jobs, n, to_send, "SMTP setup failed");
  else
    {
      session_run (t, s, &a, targets);
      for (guint i = 0; i < n; i++)
        if (to_send[i])
          {
            if (!feeds[i].judged)
              judge (&feeds[i], &a, &jobs[i]);
            sent += jobs[i].outcome == DELIVERY_SENT;
            untried[i] = !feeds[i].judged && !a.cut
                         && jobs[i].outcome == DELIVERY_TEMPFAIL
                         && never_tried (&feeds[i]);
          }
    }
  if (s != NULL)
    smtp_destroy_session (s);   /* drops libESMTP's reference to tls */
  if (auth != NULL)
    auth_destroy_context (auth);
  SSL_CTX_free (tls);
  return sent;
}

