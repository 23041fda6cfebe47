/*
 * fuzz_dsn.c - libFuzzer target for the bounce reader (dsn.c):
 * dsn_parse on arbitrary bytes, with and without an envelope recipient
 * taken from the input, and dsn_token_in on the input as text.
 *
 * Besides "no crash, no leak, no undefined behaviour" (the sanitizers),
 * it abort()s when a promise of dsn.h is broken: what dsn_parse accepts
 * has a token of QUEUE_TOKEN_LEN characters [0-9a-v], the action failed
 * or delayed, a status code that queue_dsn_status_ok takes and fits the
 * action, and a diagnostic of printable ASCII shorter than
 * QUEUE_DSN_DIAG_MAX; dsn_token_in's token has the same shape.
 *
 * TRUSTS: nothing in the input.  Built by `make fuzz` only, with clang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <gmime/gmime.h>

#include "dsn.h"

static void
must (gboolean ok)
{
  if (!ok)
    abort ();
}

static void
check (const Dsn *d)
{
  must (queue_token_ok (d->token));
  must (strcmp (d->action, "failed") == 0 || strcmp (d->action, "delayed") == 0);
  must (queue_dsn_status_ok (d->status) && d->status[0] != '2');
  must (strcmp (d->action, "failed") == 0 || d->status[0] == '4');
  must (strlen (d->diagnostic) < QUEUE_DSN_DIAG_MAX);
  for (const char *p = d->diagnostic; *p != '\0'; p++)
    must (*p >= ' ' && *p <= '~');
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static gboolean ready = FALSE;
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autofree char *first_line = NULL;
  char token[QUEUE_TOKEN_LEN + 1];
  const char *nl;
  Dsn d;

  if (!ready)
    {
      g_mime_init ();
      ready = TRUE;
    }
  if (dsn_parse ((const char *) data, size, NULL, &d, NULL))
    check (&d);
  /* The first line as the envelope recipient, as a mail system would
   * pass it: it alone may choose the token. */
  nl = memchr (text, '\n', strlen (text));
  first_line = nl != NULL ? g_strndup (text, (gsize) (nl - text)) : g_strdup (text);
  if (dsn_parse ((const char *) data, size, first_line, &d, NULL))
    {
      check (&d);
      must (dsn_token_in (first_line, token) && strcmp (token, d.token) == 0);
    }
  if (dsn_token_in (text, token))
    must (queue_token_ok (token));
  return 0;
}
