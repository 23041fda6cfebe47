/*
 * bench_client.c - load generator for invitemaild's Unix socket, used by
 * contrib/bench (not a test, and not installed).
 *
 * Runs CLIENTS threads.  Each connects once, then sends REQUESTS
 * `request=send` requests one after another on that connection, timing
 * each from the first byte written to the end of the answer (the empty
 * line).  All threads start together behind a barrier; the wall time is
 * from that start to the last thread's last answer.
 *
 * Output, one line each, for people and for contrib/bench:
 *   accepted=N other=N errors=N wall_s=F rate=F p50_ms=F p99_ms=F max_ms=F
 * where accepted counts answers `status=queued`, other every other answer
 * (refusals), errors lost connections.  A thread that loses its connection
 * stops (no reconnect: a benchmark must not hide failures).
 *
 * TRUSTS: the daemon's answers are only scanned for "status=queued" and
 * the empty line.  LIMITS: answers up to ANSWER_MAX bytes.
 * Recipients are made-up addresses at example.org.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ANSWER_MAX 8192
#define REQUEST_MAX 2048

typedef struct {
  const char *socket_path;
  int id;
  long requests;
  int rcpts;
  pthread_barrier_t *start;
  double *lat_ms;           /* one slot per request */
  long done, accepted, other, errors;
} Client;

static double
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
connect_unix (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd;

  if (strlen (path) >= sizeof sa.sun_path)
    return -1;
  strcpy (sa.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect (fd, (struct sockaddr *) &sa, sizeof sa) != 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* One request, different recipients and booking each time, so every
 * invite is new (no idempotency key). */
static int
build_request (char *buf, size_t max, const Client *c, long n)
{
  int len = snprintf (buf, max,
                      "request=send\n"
                      "link=https://meet.example.org/evisit/room-4711?k=a1b2\n"
                      "booking=BK-BENCH-%d-%ld\n"
                      "staff=SE2321000016-A1B2\n", c->id, n);

  for (int r = 0; r < c->rcpts && len > 0 && (size_t) len < max; r++)
    len += snprintf (buf + len, max - len,
                     "bcc=bench.c%d.n%ld.r%d@example.org\n", c->id, n, r);
  if (len > 0 && (size_t) len + 1 < max)
    buf[len++] = '\n';
  return len > 0 && (size_t) len < max ? len : -1;
}

static int
write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t w = write (fd, buf, len);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return -1;
      buf += w;
      len -= (size_t) w;
    }
  return 0;
}

/* Reads one answer (up to its empty line).  Returns 1 queued, 0 other,
 * -1 connection lost or answer too long.  One request is in flight at a
 * time, so nothing follows the empty line. */
static int
read_answer (int fd)
{
  char buf[ANSWER_MAX + 1];
  size_t len = 0;

  for (;;)
    {
      ssize_t r = read (fd, buf + len, ANSWER_MAX - len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return -1;
      len += (size_t) r;
      buf[len] = '\0';
      if (strstr (buf, "\n\n") != NULL || buf[0] == '\n')
        return strstr (buf, "status=queued\n") != NULL ? 1 : 0;
      if (len == ANSWER_MAX)
        return -1;
    }
}

static void *
client_run (void *data)
{
  Client *c = data;
  char req[REQUEST_MAX];
  int fd = connect_unix (c->socket_path);

  pthread_barrier_wait (c->start);
  if (fd < 0)
    {
      c->errors++;
      return NULL;
    }
  for (long n = 0; n < c->requests; n++)
    {
      int len = build_request (req, sizeof req, c, n);
      double t0 = now_ms ();
      int res = len < 0 || write_all (fd, req, (size_t) len) != 0 ? -1 : read_answer (fd);
      if (res < 0)
        {
          c->errors++;
          break;
        }
      c->lat_ms[c->done++] = now_ms () - t0;
      *(res ? &c->accepted : &c->other) += 1;
    }
  close (fd);
  return NULL;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
percentile (const double *sorted, long n, double p)
{
  long i = (long) (p * (double) n);

  if (n == 0)
    return 0.0;
  return sorted[i < n ? i : n - 1];
}

/* Merges every thread's latencies and prints the result line. */
static void
report (Client *cs, int nclients, double wall_ms)
{
  long total = 0, accepted = 0, other = 0, errors = 0, k = 0;
  double *all;

  for (int i = 0; i < nclients; i++)
    total += cs[i].done;
  all = calloc ((size_t) total + 1, sizeof *all);
  for (int i = 0; i < nclients; i++)
    {
      memcpy (all + k, cs[i].lat_ms, (size_t) cs[i].done * sizeof *all);
      k += cs[i].done;
      accepted += cs[i].accepted;
      other += cs[i].other;
      errors += cs[i].errors;
    }
  qsort (all, (size_t) total, sizeof *all, cmp_double);
  printf ("accepted=%ld other=%ld errors=%ld wall_s=%.3f rate=%.1f "
          "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
          accepted, other, errors, wall_ms / 1e3,
          wall_ms > 0 ? accepted / (wall_ms / 1e3) : 0.0,
          percentile (all, total, 0.50), percentile (all, total, 0.99),
          total ? all[total - 1] : 0.0);
  free (all);
}

static int
usage (void)
{
  fprintf (stderr, "usage: bench_client SOCKET CLIENTS REQUESTS_PER_CLIENT [RCPTS]\n");
  return 64;
}

int
main (int argc, char **argv)
{
  int nclients, rcpts = 1;
  long requests;
  pthread_barrier_t start;
  pthread_t *threads;
  Client *cs;
  double t0;

  if (argc < 4 || argc > 5)
    return usage ();
  nclients = atoi (argv[2]);
  requests = atol (argv[3]);
  if (argc == 5)
    rcpts = atoi (argv[4]);
  if (nclients < 1 || nclients > 1024 || requests < 1 || requests > 10000000
      || rcpts < 1 || rcpts > 100)
    return usage ();
  cs = calloc ((size_t) nclients, sizeof *cs);
  threads = calloc ((size_t) nclients, sizeof *threads);
  pthread_barrier_init (&start, NULL, (unsigned) nclients + 1);
  for (int i = 0; i < nclients; i++)
    {
      cs[i] = (Client) { .socket_path = argv[1], .id = i, .requests = requests,
                         .rcpts = rcpts, .start = &start,
                         .lat_ms = calloc ((size_t) requests, sizeof (double)) };
      pthread_create (&threads[i], NULL, client_run, &cs[i]);
    }
  pthread_barrier_wait (&start);
  t0 = now_ms ();
  for (int i = 0; i < nclients; i++)
    pthread_join (threads[i], NULL);
  report (cs, nclients, now_ms () - t0);
  for (int i = 0; i < nclients; i++)
    free (cs[i].lat_ms);
  free (cs);
  free (threads);
  pthread_barrier_destroy (&start);
  return 0;
}
