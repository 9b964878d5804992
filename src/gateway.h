/* gateway.h - the serving process: the client and admin listeners, the upstream multi handle
 * and the config they share, on one libuv loop (gateway.c). intake.c and request.c run each
 * client request, admin.c the admin listener. */
#ifndef KEEL_GATEWAY_H
#define KEEL_GATEWAY_H

#include "config.h"
#include "gateway_t.h"

/* Listens and serves until SIGTERM/SIGINT drains it; returns the process exit code.
 * Takes ownership of config. */
int keel_gateway_run(struct keel_config *config);

/* The client listeners: one on the gateway's loop, or with workers one per worker, each on its
 * own loop with its own upstream connections (room: each one's cache of idle connections);
 * their threads start with the gateway. 0, or -1 with a message in err. */
int keel_gateway_listen(struct keel_gateway *gw, struct keel_config *config, uint64_t room, char *err,
                        size_t errlen);

/* Takes a (re)loaded config's per-target breaker parameters, webhook and client limits (gw->api
 * must exist; gw->nofile sets the default connection cap). */
void keel_gateway_apply(struct keel_gateway *gw, const struct keel_config *c);

#endif
