/*
 * notify.h - the daemon's side of the service manager: readiness,
 * reload and stop notices, the watchdog, and a socket passed by socket
 * activation.
 *
 * With libsystemd at build time (HAVE_SYSTEMD) these call sd_notify(3),
 * sd_watchdog_enabled(3) and sd_listen_fds(3); without it they speak
 * the same documented protocols themselves (a datagram to
 * $NOTIFY_SOCKET; $WATCHDOG_USEC/$WATCHDOG_PID; $LISTEN_PID/$LISTEN_FDS
 * with the first socket on fd 3).  Outside systemd every notice is a
 * no-op, the watchdog is off and there is no passed socket.
 *
 * Not thread-safe by design: call them from the main thread only.
 */
#ifndef INVITEMAIL_NOTIFY_H
#define INVITEMAIL_NOTIFY_H

#include <glib.h>

/* READY=1 with a one-line STATUS= (status may be NULL).  Call once the
 * socket is bound and delivery runs, and again after each reload. */
void notify_ready (const char *status);

/* STOPPING=1: call as soon as an orderly stop begins. */
void notify_stopping (void);

/* RELOADING=1 (with MONOTONIC_USEC=): call when a reload begins; send
 * notify_ready() when it ends, whether it was applied or refused. */
void notify_reloading (void);

/* The watchdog interval the manager expects pings within, in
 * microseconds, or 0 when there is no watchdog for this process.
 * Ping at half this interval. */
guint64 notify_watchdog_usec (void);

/* WATCHDOG=1. */
void notify_watchdog_ping (void);

/* The listening Unix stream socket passed by socket activation, made
 * close-on-exec, or -1 when there is none (or it is not a listening
 * AF_UNIX stream socket: the daemon then binds its own and a clash is
 * reported there).  Consumes $LISTEN_PID/$LISTEN_FDS/$LISTEN_FDNAMES so
 * a second call, or a child, never takes it again.  Extra passed
 * descriptors are closed. */
int notify_listen_fd (void);

#endif
