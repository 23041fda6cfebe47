/*
 * exitcodes.c - module errors to exit codes, in one switch (msmtp's
 * lesson: one table, so two programs never disagree on a code).
 */
#include "exitcodes.h"

#include "audit.h"
#include "config.h"
#include "db.h"
#include "queue.h"
#include "render.h"
#include "transport.h"

int
exit_code_for_error (const GError *error)
{
  if (error == NULL)
    return EXIT_OK;
  if (error->domain == CONFIG_ERROR || error->domain == RENDER_ERROR
      || error->domain == TRANSPORT_ERROR)
    return EXIT_CONFIG;
  if (error->domain == G_FILE_ERROR && error->code == G_FILE_ERROR_NOENT)
    return EXIT_NOINPUT;
  /* A file of another format cannot be shown intact either. */
  if (error->domain == AUDIT_ERROR && (error->code == AUDIT_ERROR_BROKEN
                                       || error->code == AUDIT_ERROR_FORMAT))
    return EXIT_VERIFY_FAILED;
  if (error->domain == DB_ERROR && error->code == DB_ERROR_OPEN)
    return EXIT_NOINPUT;
  return EXIT_INTERNAL;
}

int
exit_code_for_refusal (RefusalCode code)
{
  switch (code)
    {
    case REFUSAL_NONE:
      return EXIT_OK;
    case REFUSAL_UNAVAILABLE:
    case REFUSAL_BUSY:
    case REFUSAL_TIMEOUT:
    case REFUSAL_RATE_LIMITED:
      return EXIT_TEMPFAIL;
    case REFUSAL_INTERNAL:
      return EXIT_INTERNAL;
    default:
      return EXIT_REJECTED;
    }
}
