/* probe.h - keel's own probes of open targets (breaker `probe: background`, issue 17): each open
 * target gets a minimal real request at its jittered base cooldown, so a target that comes back
 * is in service again within about one cooldown and no client request is ever the probe. The
 * schedule and the verdict are core/breaker's; this file turns them into transfers and back. One
 * uv timer, armed for the earliest due probe or probe deadline. The gateway owns it. */
#ifndef KEEL_PROBE_H
#define KEEL_PROBE_H

struct keel_gateway;
struct keel_probe;

/* NULL when out of memory. gw outlives it (the gateway is never freed before exit). */
struct keel_probe *keel_probe_new(struct keel_gateway *gw);
/* A breaker changed, or the config did: plans the probes of targets that opened and re-arms the
 * timer. No I/O (the timer starts the transfers), so any callback may call it. p NULL or
 * stopping: nothing. */
void keel_probe_kick(struct keel_probe *p);
/* SIGTERM: cancels the probes under way (no callback fires after; their breakers stay open: the
 * process is on its way out) and closes the timer. p is freed in the timer's close callback,
 * which sets gw->probe to NULL; until then keel_probe_kick(p) does nothing. */
void keel_probe_stop(struct keel_probe *p);

#endif
