/*
 * builder.h - a small pool of threads that build messages off the main
 * loop.
 *
 * The main thread parses and checks each request; rendering the XHTML,
 * building the MIME message and hashing it are CPU work that needs no
 * shared state, so it runs here, on as many threads as there are CPUs
 * (at most BUILDER_THREADS_MAX), while the main thread reads the next
 * request.  A job ends by handing its result to the committer (or its
 * refusal to the audit), never by touching the main loop's data.
 *
 * Lifetimes: a job reads the configuration and templates it was pushed
 * with.  builder_drain() returns once every job pushed before it has
 * run, so the caller may then switch or free what they read (SIGHUP)
 * or stop the committer they submit to (shutdown).  Only one thread
 * pushes (the main thread); builder_drain is called from that thread.
 */
#ifndef INVITEMAIL_BUILDER_H
#define INVITEMAIL_BUILDER_H

#include <glib.h>

#define BUILDER_THREADS_MAX 4

typedef struct Builder Builder;

/* Runs one job on a pool thread; owns and frees it. */
typedef void (*BuilderFunc) (gpointer job, gpointer data);

/* threads 0: one per CPU, 1..BUILDER_THREADS_MAX. */
Builder *builder_new (guint threads, BuilderFunc fn, gpointer data);
/* Waits for the jobs in hand, then frees the pool.  NULL is allowed. */
void builder_free (Builder *b);

void builder_push (Builder *b, gpointer job);
/* Blocks until every job pushed so far has run. */
void builder_drain (Builder *b);
/* Jobs pushed and not yet finished (a snapshot). */
guint builder_pending (Builder *b);
guint builder_threads (const Builder *b);

#endif
