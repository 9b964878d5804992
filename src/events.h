/* events.h - keel's events (breaker transitions now; restarts and cliff warnings later): each is
 * a structured log line and, if `events.webhook` is configured, a JSON POST. Delivery goes
 * through a bounded queue, one POST at a time: it never blocks or fails a request; a failed
 * delivery is logged and dropped, never retried forever. */
#ifndef KEEL_EVENTS_H
#define KEEL_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define KEEL_EVENTS_QUEUE 256
#define KEEL_EVENTS_RECENT 20 /* the latest events /admin/status shows */

struct keel_upstream;
struct keel_upstream_xfer;

struct keel_events {
    struct keel_upstream *upstream;
    char *url;                      /* NULL: log only */
    char *queue[KEEL_EVENTS_QUEUE]; /* JSON bodies waiting, oldest at head */
    size_t head, n;
    struct keel_upstream_xfer *xfer; /* the delivery under way, or NULL */
    int status;                      /* its HTTP status */
    uint64_t sent, failed, dropped;  /* deliveries so far */
    json_t *recent[KEEL_EVENTS_RECENT]; /* the latest events, a ring at nrecent */
    size_t nrecent;                     /* events ever emitted */
};

void keel_events_init(struct keel_events *e, struct keel_upstream *u, const char *url);
void keel_events_set_url(struct keel_events *e, const char *url);
/* logs the event and queues it for the webhook; takes ownership of ev (an object) */
void keel_events_emit(struct keel_events *e, json_t *ev);
/* the latest events, newest first (a new array) */
json_t *keel_events_recent(const struct keel_events *e);

#endif
