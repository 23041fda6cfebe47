/*
 * retention.c - the queue's and the outbox's retention.  See retention.h.
 *
 * What it trusts: nothing in the outbox folder but its own naming: a
 * file is removed only when its name is a delivery tag file
 * ([0-9a-z][0-9a-z.-]*.eml or .envelope) or a leftover temporary
 * (.tmp-*), and only with unlinkat on the folder's fd (no path is built
 * from a name, no link is followed: unlink removes a link, never its
 * target).  The queue checks its own rows (queue.c).
 *
 * Order: the queue first, then the outbox, then the audit row with the
 * counts.  A crash between them leaves files that the next pass takes
 * by their age, and at worst a pass without its row; never a row for
 * something that was not removed.
 */
#include "retention.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"

/* Invites per queue transaction: a pass never holds the queue's write
 * lock for long against the committer. */
#define RETENTION_BATCH 200

struct Retention {
  GThread *thread;
  Audit *audit;
  GMutex lock;
  GCond cond;
  gboolean stop;
  char *queue_db;
  char *outbox_dir;
  guint days;
};

/* A name this program writes into the outbox (transport_file.c). */
static gboolean
outbox_name_ours (const char *name)
{
  gsize n = strlen (name);
  const char *dot = strrchr (name, '.');

  if (g_str_has_prefix (name, ".tmp-"))
    return TRUE;
  if (n == 0 || name[0] == '.' || dot == NULL
      || (strcmp (dot, ".eml") != 0 && strcmp (dot, ".envelope") != 0))
    return FALSE;
  for (const char *p = name; p < dot; p++)
    if (!(g_ascii_isdigit (*p) || (*p >= 'a' && *p <= 'z') || *p == '.'
          || *p == '-'))
      return FALSE;
  return TRUE;
}

static void
outbox_unlink (int dirfd, const char *name, guint *files)
{
  if (unlinkat (dirfd, name, 0) == 0)
    (*files)++;
}

/* The files of the purged recipients, whatever their age. */
static void
outbox_remove_tags (int dirfd, GPtrArray *tags, guint *files)
{
  for (guint i = 0; tags != NULL && i < tags->len; i++)
    {
      const char *tag = g_ptr_array_index (tags, i);
      g_autofree char *eml = g_strconcat (tag, ".eml", NULL);
      g_autofree char *env = g_strconcat (tag, ".envelope", NULL);

      outbox_unlink (dirfd, eml, files);
      outbox_unlink (dirfd, env, files);
    }
}

/* Every other file of ours last changed before cutoff. */
static void
outbox_remove_old (int dirfd, gint64 cutoff, guint *files)
{
  int fd = dup (dirfd);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  g_autoptr (GPtrArray) old = g_ptr_array_new_with_free_func (g_free);
  struct dirent *e;
  struct stat st;

  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return;
    }
  while ((e = readdir (d)) != NULL)
    if (outbox_name_ours (e->d_name)
        && fstatat (dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
        && S_ISREG (st.st_mode) && (gint64) st.st_mtime < cutoff)
      g_ptr_array_add (old, g_strdup (e->d_name));
  closedir (d);
  for (guint i = 0; i < old->len; i++)
    outbox_unlink (dirfd, g_ptr_array_index (old, i), files);
}

static void
outbox_purge (const char *dir, GPtrArray *tags, gint64 cutoff, guint *files)
{
  int dirfd;

  if (dir == NULL
      || (dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    return;   /* no outbox (the SMTP transport): nothing to keep */
  outbox_remove_tags (dirfd, tags, files);
  outbox_remove_old (dirfd, cutoff, files);
  fsync (dirfd);
  close (dirfd);
}

guint
retention_outbox_remove (const char *dir, GPtrArray *tags)
{
  guint files = 0;
  int dirfd;

  if (dir == NULL
      || (dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    return 0;
  outbox_remove_tags (dirfd, tags, &files);
  fsync (dirfd);
  close (dirfd);
  return files;
}

static gboolean
retention_queue (const char *queue_db, gint64 cutoff, QueuePurged *purged,
                 GError **error)
{
  g_autoptr (Queue) q = queue_open (queue_db, error);
  gint n;

  if (q == NULL)
    return FALSE;
  do
    n = queue_purge (q, cutoff, RETENTION_BATCH, purged, error);
  while (n == RETENTION_BATCH);
  return n >= 0;
}

static gboolean
retention_audit (Audit *audit, guint days, const RetentionCounts *c,
                 GError **error)
{
  g_autofree char *detail = g_strdup_printf (
    "older than %u days: queue %u invites (%u recipients; %u kept as"
    " idempotency tombstones), outbox %u files", days, c->invites,
    c->recipients, c->tombstones, c->files);
  AuditRecord rec = { .event = AUDIT_RETENTION, .peer_uid = -1,
                      .detail = detail };

  return audit == NULL || audit_append (audit, &rec, error);
}

gboolean
retention_run (const char *queue_db, const char *outbox_dir, guint days,
               gint64 now, Audit *audit, RetentionCounts *out, GError **error)
{
  QueuePurged purged = { 0 };
  gint64 cutoff = now - (gint64) days * 86400;
  gboolean ok;

  g_return_val_if_fail (queue_db != NULL && out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  if (days == 0)
    return TRUE;
  ok = retention_queue (queue_db, cutoff, &purged, error);
  out->invites = purged.invites;
  out->recipients = purged.recipients;
  out->tombstones = purged.tombstones;
  outbox_purge (outbox_dir, purged.tags, cutoff, &out->files);
  queue_purged_clear (&purged);
  if (out->invites == 0 && out->files == 0)
    return ok;
  /* The queue's error (if any) wins; the row is written either way. */
  return retention_audit (audit, days, out, ok ? error : NULL) && ok;
}

static void
retention_pass (Retention *r)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *queue_db = NULL, *outbox = NULL;
  RetentionCounts c;
  guint days;

  g_mutex_lock (&r->lock);
  queue_db = g_strdup (r->queue_db);
  outbox = g_strdup (r->outbox_dir);
  days = r->days;
  g_mutex_unlock (&r->lock);
  if (!retention_run (queue_db, outbox, days, g_get_real_time () / G_USEC_PER_SEC,
                      r->audit, &c, &error))
    g_warning ("retention pass failed: %s", error->message);
  else if (c.invites > 0 || c.files > 0)
    g_message ("retention: %u invites, %u recipients, %u outbox files removed",
               c.invites, c.recipients, c.files);
}

static gpointer
retention_thread (gpointer data)
{
  Retention *r = data;

  for (;;)
    {
      gint64 until;

      retention_pass (r);
      until = g_get_monotonic_time () + (gint64) RETENTION_PERIOD_S * G_USEC_PER_SEC;
      g_mutex_lock (&r->lock);
      while (!r->stop && g_cond_wait_until (&r->cond, &r->lock, until))
        ;
      if (r->stop)
        {
          g_mutex_unlock (&r->lock);
          return NULL;
        }
      g_mutex_unlock (&r->lock);
    }
}

void
retention_set_config (Retention *r, const Config *cfg)
{
  g_return_if_fail (r != NULL && cfg != NULL);
  g_mutex_lock (&r->lock);
  g_free (r->outbox_dir);
  r->outbox_dir = g_strdup (cfg->outbox_dir);
  r->days = cfg->queue_retention_days;
  g_mutex_unlock (&r->lock);
}

Retention *
retention_start (const Config *cfg, Audit *audit)
{
  Retention *r = g_new0 (Retention, 1);

  g_mutex_init (&r->lock);
  g_cond_init (&r->cond);
  r->audit = audit;
  r->queue_db = g_strdup (cfg->queue_db);
  retention_set_config (r, cfg);
  r->thread = g_thread_new ("retention", retention_thread, r);
  return r;
}

void
retention_stop (Retention *r)
{
  if (r == NULL)
    return;
  g_mutex_lock (&r->lock);
  r->stop = TRUE;
  g_cond_signal (&r->cond);
  g_mutex_unlock (&r->lock);
  g_thread_join (r->thread);
  g_free (r->queue_db);
  g_free (r->outbox_dir);
  g_mutex_clear (&r->lock);
  g_cond_clear (&r->cond);
  g_free (r);
}
