/*
 * exitcodes.h - the documented exit codes of both programs (sysexits),
 * and the one switch that maps module errors onto them.
 *
 *   0  EXIT_OK            success (sent to the queue, printed, verified)
 *   64 EXIT_USAGE         bad command line
 *   65 EXIT_REJECTED      the daemon refused the request (error=CODE)
 *   66 EXIT_NOINPUT       a file named on the command line is missing
 *   69 EXIT_UNREACHABLE   the daemon's socket could not be reached
 *   70 EXIT_INTERNAL      internal error (or the daemon answered internal)
 *   75 EXIT_TEMPFAIL      the daemon could not store it now: try again
 *   78 EXIT_CONFIG        configuration, template or notice is wrong
 *   1  EXIT_VERIFY_FAILED `audit verify` found the chain broken
 */
#ifndef INVITEMAIL_EXITCODES_H
#define INVITEMAIL_EXITCODES_H

#include <glib.h>
#include "refusal.h"

enum {
  EXIT_OK = 0,
  EXIT_VERIFY_FAILED = 1,
  EXIT_USAGE = 64,
  EXIT_REJECTED = 65,
  EXIT_NOINPUT = 66,
  EXIT_UNREACHABLE = 69,
  EXIT_INTERNAL = 70,
  EXIT_TEMPFAIL = 75,
  EXIT_CONFIG = 78
};

/* Exit code for a GError from any module (NULL = EXIT_OK). */
int exit_code_for_error (const GError *error);

/* Exit code for a refusal code answered by the daemon. */
int exit_code_for_refusal (RefusalCode code);

#endif
