/*
 * transport_file.c - the development transport: each job becomes two
 * files in the outbox folder instead of an SMTP transaction.
 *
 *   TAG.eml       the exact message bytes (CRLF, as mime_build made them)
 *   TAG.envelope  "MAIL FROM:<from>\nRCPT TO:<rcpt>\n"
 *
 * Each file is replaced durably (fileio_replace_at: a temporary name in
 * the same folder, O_CREAT|O_EXCL, mode 0640, fsynced, renamed into
 * place, the folder fsynced).  The .eml goes first, so a reader that sees an envelope always
 * finds its message, even after a crash.  Writing a tag again replaces
 * both files (a retry after a crash writes the same bytes).
 *
 * TRUSTS: nothing in the job.  The tag must match [0-9a-z.-] and not
 * start with '.', so it can never name a path outside the folder or a
 * hidden temporary file; addresses are checked as for SMTP.
 * LIMITS: no quota; the folder is for development and the quick start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "transport_private.h"

#define TAG_MAX 128

/* The backend's state: the outbox folder (owned by the Config). */
typedef struct {
  const char *dir;
} FileOutbox;

/* Creates dir (0750) when missing and checks it is a writable folder. */
static gboolean
outbox_prepare (const char *dir, GError **error)
{
  struct stat st;

  if (dir == NULL || *dir == '\0')
    {
      g_set_error (error, TRANSPORT_ERROR, TRANSPORT_ERROR_CONFIG,
                   "outbox_dir is empty");
      return FALSE;
    }
  if (mkdir (dir, 0750) < 0 && errno != EEXIST)
    {
      g_set_error (error, TRANSPORT_ERROR, TRANSPORT_ERROR_CONFIG,
                   "cannot create outbox %s: %s", dir, g_strerror (errno));
      return FALSE;
    }
  if (stat (dir, &st) < 0 || !S_ISDIR (st.st_mode)
      || access (dir, W_OK | X_OK) < 0)
    {
      g_set_error (error, TRANSPORT_ERROR, TRANSPORT_ERROR_CONFIG,
                   "outbox %s is not a writable folder", dir);
      return FALSE;
    }
  return TRUE;
}

static gboolean
tag_is_safe (const char *tag)
{
  gsize len = tag != NULL ? strlen (tag) : 0;

  if (len == 0 || len > TAG_MAX || tag[0] == '.')
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!(g_ascii_isdigit (tag[i]) || (tag[i] >= 'a' && tag[i] <= 'z')
          || tag[i] == '.' || tag[i] == '-'))
      return FALSE;
  return TRUE;
}

static void
file_deliver_one (int dirfd, DeliveryJob *job)
{
  if (!tag_is_safe (job->tag))
    {
      transport_job_set (job, DELIVERY_PERMFAIL, 0, "invalid tag");
      return;
    }
  if (!envelope_safe (job->recipient, ENVELOPE_MAILBOX)
      || !envelope_safe (job->envelope_from, ENVELOPE_MAILBOX)
      || job->message == NULL)
    {
      transport_job_set (job, DELIVERY_PERMFAIL, 0, "invalid address");
      return;
    }

  g_autofree char *eml = g_strconcat (job->tag, ".eml", NULL);
  g_autofree char *env_name = g_strconcat (job->tag, ".envelope", NULL);
  g_autofree char *env = g_strdup_printf ("MAIL FROM:<%s>\nRCPT TO:<%s>\n",
                                          job->envelope_from, job->recipient);
  gsize size;
  const char *data = g_bytes_get_data (job->message, &size);

  errno = 0;
  if (fileio_replace_at (dirfd, eml, NULL, data != NULL ? data : "", size, 0640)
      && fileio_replace_at (dirfd, env_name, NULL, env, strlen (env), 0640))
    {
      transport_job_set (job, DELIVERY_SENT, 0, "written to outbox");
      return;
    }
  g_autofree char *why = g_strdup_printf ("outbox write failed: %s",
                                          g_strerror (errno));
  transport_job_set (job, DELIVERY_TEMPFAIL, 0, why);
}

/* Writes each job as dir/TAG.eml then dir/TAG.envelope, atomically,
 * and reports it once both are in place.  A batch of files is quick:
 * no early stop. */
static void
file_deliver (gpointer state, TransportRun *run)
{
  const char *dir = ((const FileOutbox *) state)->dir;
  int dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (dirfd < 0)
    {
      g_autofree char *why = g_strdup_printf ("outbox unavailable: %s",
                                              g_strerror (errno));
      transport_jobs_fail (run->jobs, run->n, NULL, why);
      return;
    }
  for (guint i = 0; i < run->n; i++)
    {
      file_deliver_one (dirfd, &run->jobs[i]);
      transport_report (run, i);
    }
  close (dirfd);
}

static gpointer
file_prepare (const Config *cfg, GError **error)
{
  FileOutbox *o;

  if (!outbox_prepare (cfg->outbox_dir, error))
    return NULL;
  o = g_new0 (FileOutbox, 1);
  o->dir = cfg->outbox_dir;
  return o;
}

const TransportBackend transport_file_backend = {
  .name = "file",
  .prepare = file_prepare,
  .deliver = file_deliver,
  .free = g_free,
};
