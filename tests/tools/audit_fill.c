/*
 * audit_fill.c - writes N realistic audit rows fast, for
 * contrib/bench-audit and the compliance test: batches of 1,000 rows
 * through audit_append_batch (one transaction each), a seal every
 * SEAL_EVERY rows after `audit init` made the first key.
 *
 *   audit_fill DB N [SEAL_EVERY]   prints the public verification value
 *                                  when SEAL_EVERY > 0 (key file DB.key)
 *
 * Made-up data at example domains only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "audit.h"
#include "audit_seal.h"

#define FILL_BATCH 1000

static void
fill_record (AuditRecord *r, guint64 i, char *id, char *booking)
{
  static const AuditEvent cycle[] = { AUDIT_ACCEPTED, AUDIT_SENT, AUDIT_SENT,
                                      AUDIT_DEFERRED, AUDIT_SENT };
  static const char sha[] =
    "5f0c1e7a9b3d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4";

  g_snprintf (id, 21, "%020" G_GUINT64_FORMAT, i / 5);
  g_snprintf (booking, 24, "BK-2026-%07" G_GUINT64_FORMAT, i / 5);
  *r = (AuditRecord) { .event = cycle[i % 5], .invite_id = id, .peer_uid = -1 };
  if (r->event == AUDIT_ACCEPTED)
    {
      r->peer_uid = 1000;
      r->staff = "SE2321000016-A1B2";
      r->booking = booking;
      r->recipients = "tolk.anna@example.com,vardnadshavare.1@example.org";
      r->lang = "sv";
      r->template_name = "evisit";
      r->org_unit = "Barnkliniken";
      r->link_sha256 = r->notice_sha256 = r->template_sha256 = sha;
      r->signature_sha256 = r->message_sha256 = sha;
    }
  else
    {
      r->recipients = "tolk.anna@example.com";
      r->smtp_reply = r->event == AUDIT_SENT ? "250 2.0.0 Ok: queued"
                                             : "451 4.3.0 try again later";
    }
}

static gboolean
fill (Audit *a, guint64 n, guint64 seal_every, GError **error)
{
  AuditRecord recs[FILL_BATCH];
  static char ids[FILL_BATCH][21], bookings[FILL_BATCH][24];

  for (guint64 done = 0; done < n;)
    {
      guint k = (guint) MIN ((guint64) FILL_BATCH, n - done);
      if (seal_every > 0)
        k = (guint) MIN ((guint64) k, seal_every - done % seal_every);
      for (guint j = 0; j < k; j++)
        fill_record (&recs[j], done + j, ids[j], bookings[j]);
      if (!audit_append_batch (a, recs, k, error))
        return FALSE;
      done += k;
      if (seal_every > 0 && done % seal_every == 0 && !audit_seal (a, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
run (const char *db, guint64 n, guint64 seal_every, GError **error)
{
  g_autofree char *key_file = g_strconcat (db, ".key", NULL);
  AuditSealConfig sc = { .key_file = key_file };
  g_autoptr (Audit) a = NULL;
  char pub[AUDIT_PUBLIC_TEXT];

  if (seal_every > 0)
    {
      if (!audit_init (db, &sc, pub, error))
        return FALSE;
      printf ("%s\n", pub);
    }
  a = audit_open_sealing (db, &sc, error);
  return a != NULL && fill (a, n, seal_every, error);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  if (argc < 3 || argc > 4)
    {
      fprintf (stderr, "usage: audit_fill DB N [SEAL_EVERY]\n");
      return 64;
    }
  if (!run (argv[1], g_ascii_strtoull (argv[2], NULL, 10),
            argc == 4 ? g_ascii_strtoull (argv[3], NULL, 10) : 0, &error))
    {
      fprintf (stderr, "audit_fill: %s\n", error->message);
      return 1;
    }
  return 0;
}
