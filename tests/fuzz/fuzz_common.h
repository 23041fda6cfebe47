/*
 * fuzz_common.h - shared by the render and MIME fuzz targets: the
 * shipped templates loaded once, and an Invitation made from fuzzer
 * bytes the only way the daemon makes one (request_parse, then
 * validate_invitation).
 *
 * Input layout: up to FUZZ_N_PIECES pieces separated by LF, in this
 * order: booking, link, staff, meeting_time, lang, bcc, bcc, bcc.
 * An empty piece leaves the attribute out (link and the first bcc
 * then get a sane default, so most inputs reach the renderer); a link
 * piece that does not start with "https:" is appended to
 * "https://meet.example.org/".  Bytes after the last piece are ignored.
 */
#ifndef INVITEMAIL_FUZZ_COMMON_H
#define INVITEMAIL_FUZZ_COMMON_H

#include <stdint.h>
#include <glib.h>

#include "render.h"

#define FUZZ_N_PIECES 8

extern const RenderOrg fuzz_org;

/* The templates of the source tree ($srcdir, else FUZZ_SRCDIR); aborts
 * when they cannot be loaded.  (transfer none) */
const Templates *fuzz_templates (void);

/* The request text made of the input, and what the gate made of it;
 * *request_out is (transfer full) even when NULL is returned. */
Invitation *fuzz_invitation (const uint8_t *data, size_t size, char **request_out);

/* The notice sentence every message must hold, in lang. */
const char *fuzz_notice_text (const char *lang);

/* abort() unless ok. */
void fuzz_must (gboolean ok);

#endif
