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
 * counts, written through the audit gate like every other row.  A crash
 * between them leaves files that the next pass takes by their age, and
 * at worst a pass without its row; never a row for something that was
 * not removed.
 *
 * When the audit cannot be written (the gate is closed: disk full, a
 * read-only file, a lock held elsewhere) a pass removes nothing, and
 * the thread looks again every RETENTION_RETRY_MS so that the purge
 * follows soon after the gate opens.  The audit can also fail during a
 * pass, after the queue and the outbox went: the row's append then
 * closes the gate, and the row is kept in memory and written first when
 * the gate opens, before anything else is removed.  So at most one pass
 * is ever missing from the chain, and only a crash, or a stop while the
 * audit is down (logged, counts only), loses its row.
 */
#include "retention.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"

G_DEFINE_QUARK (retention-error-quark, retention_error)

/* Invites per queue transaction: a pass never holds the queue's write
 * lock for long against the committer. */
#define RETENTION_BATCH 200

struct Retention {
  GThread *thread;
  Gate *gate;
  RetentionCounts owed;     /* a pass whose row could not be written */
  gboolean held_logged;     /* "nothing is purged" logged for this closure */
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

/* The row's words: counts only (no id, no address). */
static char *
retention_detail (const RetentionCounts *c)
{
  return g_strdup_printf (
    "older than %u days: queue %u invites (%u recipients; %u kept as"
    " idempotency tombstones), outbox %u files", c->days, c->invites,
    c->recipients, c->tombstones, c->files);
}

/* Writes the row of *c through the gate.  When that fails the gate is
 * closed (gate_append) and *c is kept in *owed (NULL: it is lost). */
static gboolean
retention_audit (Gate *gate, const RetentionCounts *c, RetentionCounts *owed,
                 GError **error)
{
  g_autofree char *detail = retention_detail (c);
  AuditRecord rec = { .event = AUDIT_RETENTION, .peer_uid = -1,
                      .detail = detail };

  if (gate == NULL || gate_append (gate, &rec, 1, error))
    return TRUE;
  if (owed != NULL)
    *owed = *c;
  return FALSE;
}

static gboolean
counts_empty (const RetentionCounts *c)
{
  return c->invites == 0 && c->files == 0;
}

static gboolean
audit_closed (GError **error)
{
  g_set_error_literal (error, RETENTION_ERROR, RETENTION_ERROR_AUDIT_CLOSED,
                       "the audit cannot be written: nothing purged");
  return FALSE;
}

gboolean
retention_run (const char *queue_db, const char *outbox_dir, guint days,
               gint64 now, Gate *gate, RetentionCounts *owed,
               RetentionCounts *out, GError **error)
{
  QueuePurged purged = { 0 };
  gint64 cutoff = now - (gint64) days * 86400;
  gboolean ok;

  g_return_val_if_fail (queue_db != NULL && out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  out->days = days;
  /* Fail closed: nothing is removed whose row cannot be stored. */
  if (gate != NULL && !gate_is_open (gate))
    return audit_closed (error);
  /* The row an earlier pass owes goes first; while it cannot be
   * written nothing more goes. */
  if (owed != NULL && !counts_empty (owed))
    {
      RetentionCounts late = *owed;

      memset (owed, 0, sizeof *owed);
      if (!retention_audit (gate, &late, owed, NULL))
        return audit_closed (error);
    }
  if (days == 0)
    return TRUE;
  ok = retention_queue (queue_db, cutoff, &purged, error);
  out->invites = purged.invites;
  out->recipients = purged.recipients;
  out->tombstones = purged.tombstones;
  outbox_purge (outbox_dir, purged.tags, cutoff, &out->files);
  queue_purged_clear (&purged);
  if (counts_empty (out))
    return ok;
  /* The row is written either way; the queue's error (if any) wins. */
  return retention_audit (gate, out, owed, ok ? error : NULL) && ok;
}

/* One pass; TRUE when the audit held it back (look again soon). */
static gboolean
retention_pass (Retention *r)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *queue_db = NULL, *outbox = NULL;
  RetentionCounts c;
  guint days;
  gboolean held;

  g_mutex_lock (&r->lock);
  queue_db = g_strdup (r->queue_db);
  outbox = g_strdup (r->outbox_dir);
  days = r->days;
  g_mutex_unlock (&r->lock);
  /* r->owed and r->held_logged are this thread's own (retention_stop
   * reads them after the join). */
  if (!retention_run (queue_db, outbox, days, g_get_real_time () / G_USEC_PER_SEC,
                      r->gate, &r->owed, &c, &error))
    {
      if (!g_error_matches (error, RETENTION_ERROR, RETENTION_ERROR_AUDIT_CLOSED))
        g_warning ("retention pass failed: %s", error->message);
      else if (!r->held_logged)
        g_warning ("retention: the audit cannot be written; nothing is"
                   " purged until it can");
    }
  if (!counts_empty (&c))
    g_message ("retention: %u invites, %u recipients, %u outbox files removed",
               c.invites, c.recipients, c.files);
  held = !counts_empty (&r->owed) || (r->gate != NULL && !gate_is_open (r->gate));
  r->held_logged = held;
  return held;
}

static gpointer
retention_thread (gpointer data)
{
  Retention *r = data;

  for (;;)
    {
      gboolean held = retention_pass (r);
      gint64 until = g_get_monotonic_time ()
                     + (held ? (gint64) RETENTION_RETRY_MS * 1000
                             : (gint64) RETENTION_PERIOD_S * G_USEC_PER_SEC);

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
retention_start (const Config *cfg, Gate *gate)
{
  Retention *r = g_new0 (Retention, 1);

  g_mutex_init (&r->lock);
  g_cond_init (&r->cond);
  r->gate = gate;
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
  if (!counts_empty (&r->owed))
    g_warning ("retention: the audit row of a pass that removed %u invites"
               " and %u outbox files could not be written", r->owed.invites,
               r->owed.files);
  g_free (r->queue_db);
  g_free (r->outbox_dir);
  g_mutex_clear (&r->lock);
  g_cond_clear (&r->cond);
  g_free (r);
}
