/*
 * request.h - bytes from the socket to a raw request, answers to bytes.
 *
 * Pure: no I/O, no allocation beyond the returned objects.  This is the
 * first parser that sees hostile bytes (a fuzz target).
 *
 * Wire shape (Postfix policy-delegation style): lines `name=value`,
 * each ended by LF, a request ended by an empty line.  Answers have the
 * same shape.
 *
 * Limits (enforced here, before anything is copied):
 *   REQUEST_MAX_LINE   bytes in one line, LF included
 *   REQUEST_MAX_BYTES  bytes in one request, terminating empty line included
 *   REQUEST_MAX_ATTRS  lines in one request
 */
#ifndef INVITEMAIL_REQUEST_H
#define INVITEMAIL_REQUEST_H

#include <glib.h>
#include "refusal.h"

#define REQUEST_MAX_LINE  4096
#define REQUEST_MAX_BYTES (64 * 1024)
#define REQUEST_MAX_ATTRS 128
#define REQUEST_MAX_NAME  32

typedef enum {
  FRAME_INCOMPLETE,  /* need more bytes */
  FRAME_COMPLETE,    /* *frame_len bytes hold one request */
  FRAME_ERROR        /* *why says why; the stream cannot be resynchronised */
} FrameStatus;

/*
 * Looks for one complete request at the start of buf[0..len).
 * On FRAME_COMPLETE, *frame_len is the number of bytes up to and
 * including the terminating empty line.  Detects over-long lines and
 * over-large requests as early as possible (before the LF arrives), so
 * a peer can never make us buffer more than REQUEST_MAX_BYTES.
 */
FrameStatus request_frame (const char *buf, gsize len, gsize *frame_len,
                           Refusal *why);

typedef struct {
  char *name;
  char *value;   /* NUL-free, valid UTF-8, no control characters */
} RawAttr;

typedef struct {
  GPtrArray *attrs;  /* RawAttr*, in arrival order */
} RawRequest;

/*
 * Parses one frame (as found by request_frame) into *out (transfer full).
 * Checks: every line is name=value with name [a-z_]{1,32}; no CR or NUL;
 * the name is a known attribute (request.c) else unknown_attribute;
 * a single-valued attribute appears at most once else repeated_attribute;
 * values are valid UTF-8 without C0/C1 controls or DEL else invalid_value
 * (field set).  Returns FALSE and fills *why on refusal.
 */
gboolean request_parse (const char *frame, gsize len, RawRequest **out,
                        Refusal *why);

/* Same framing rules, but any name is accepted and repeats are kept:
 * for the client reading answers.  Answers are framed with the answer
 * limits below (a preview's eml= line is far longer than a request
 * line), so frame them with answer_frame, not request_frame. */
gboolean request_parse_answer (const char *frame, gsize len, RawRequest **out,
                               Refusal *why);

/* Limits for answers read by the client: one line may be as long as the
 * whole answer (eml= carries a base64 message on one line). */
#define ANSWER_MAX_BYTES (32 * 1024 * 1024)
#define ANSWER_MAX_ATTRS 1024

/* request_frame with the answer limits, for the client. */
FrameStatus answer_frame (const char *buf, gsize len, gsize *frame_len,
                          Refusal *why);

void raw_request_free (RawRequest *req);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RawRequest, raw_request_free)

/* First value of name, or NULL. (transfer none) */
const char *raw_request_get (const RawRequest *req, const char *name);

/* Number of lines carrying name. */
guint raw_request_count (const RawRequest *req, const char *name);

/*
 * Answers.  answer_add appends `name=value\n`; a value holding LF, CR,
 * NUL or other controls has each such byte replaced by a space, so no
 * value can ever end an answer early.  answer_end appends the empty line.
 */
void answer_add (GString *out, const char *name, const char *value);
void answer_end (GString *out);

/* status=rejected, error=CODE, field=NAME (if any), message=..., end. */
void answer_refusal (GString *out, const Refusal *r);

#endif
