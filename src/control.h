/*
 * control.h - the Unix stream socket where requests arrive.
 *
 * Binds the configured path (or takes a socket passed by systemd socket
 * activation, LISTEN_FDS), sets its mode and group, accepts on the main
 * loop, reads each peer's credentials with SO_PEERCRED before any
 * request byte is read, frames requests (request.c) and hands each one
 * to the service.  One connection may carry several requests in turn.
 *
 * Limits: CONTROL_MAX_CONNECTIONS open at once (the last
 * CONTROL_RESERVE are kept for an answer `busy`), CONTROL_MAX_PER_UID
 * per peer uid, [daemon] client_timeout seconds without a byte closes
 * the connection (a started request is first answered `timeout`), and a peer that does not read its answers is dropped once
 * CONTROL_MAX_PENDING_OUT bytes wait for it.
 */
#ifndef INVITEMAIL_CONTROL_H
#define INVITEMAIL_CONTROL_H

#include <glib.h>
#include "config.h"
#include "service.h"

#define CONTROL_MAX_CONNECTIONS 256
#define CONTROL_RESERVE 8
#define CONTROL_MAX_PER_UID 64
#define CONTROL_MAX_PENDING_OUT (4 * 1024 * 1024)

typedef struct Control Control;

GQuark control_error_quark (void);
#define CONTROL_ERROR (control_error_quark ())
typedef enum { CONTROL_ERROR_BIND, CONTROL_ERROR_IN_USE } ControlError;

/* A listening socket: passed by systemd, or bound here (owns_path:
 * the file is ours to remove at stop). */
typedef struct {
  int fd;
  gboolean owns_path;
} ControlSocket;

/* Binds (or adopts) the socket: its folder made 0755 when missing, the
 * socket given socket_mode and socket_group, and, when the daemon will
 * drop root, both given to [daemon] user.  Separate from control_new so
 * that it can happen before the drop. */
gboolean control_listen (const Config *cfg, ControlSocket *out, GError **error);

/* Starts accepting on sock (taken) on the default main context.  cfg
 * and service must outlive it. (transfer full) */
Control *control_new_listening (const Config *cfg, Service *service,
                                const ControlSocket *sock);

/* control_listen and control_new_listening in one. (transfer full) */
Control *control_new (const Config *cfg, Service *service, GError **error);

/* Stops accepting new connections; open ones finish their request. */
void control_stop_accepting (Control *c);

/* For a stop: closes idle connections, lets the others receive their
 * pending answer and then close.  Returns how many are still busy. */
guint control_drain (Control *c);

/* After a reload: the socket path never changes, the rest may. */
void control_set_config (Control *c, const Config *cfg);

/* Closes everything and removes the socket file it created. */
void control_free (Control *c);

#endif
