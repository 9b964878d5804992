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

/* Takes a (re)loaded config's per-target breaker parameters, webhook and client limits (gw->api
 * must exist; gw->nofile sets the default connection cap). */
void keel_gateway_apply(struct keel_gateway *gw, const struct keel_config *c);

#endif
