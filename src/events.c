/* events.c - event log lines and webhook delivery; see events.h. */
#include "events.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "io/upstream.h"
#include "log.h"

#define DELIVERY_TIMEOUT_MS 5000

void keel_events_init(struct keel_events *e, struct keel_upstream *u, const char *url)
{
    memset(e, 0, sizeof(*e));
    e->upstream = u;
    keel_events_set_url(e, url);
}

void keel_events_set_url(struct keel_events *e, const char *url)
{
    free(e->url);
    e->url = url ? strdup(url) : NULL;
}

static void deliver_next(struct keel_events *e);

static void on_head(void *ctx, int status, const char *content_type, uint64_t retry_after_ms)
{
    ((struct keel_events *)ctx)->status = status;
}

static int on_data(void *ctx, const char *data, size_t len)
{
    return KEEL_XFER_CONSUMED;
}

static void on_done(void *ctx, const char *err, const char *detail)
{
    struct keel_events *e = ctx;
    e->xfer = NULL;
    if (err != NULL || e->status < 200 || e->status >= 300) {
        e->failed++;
        keel_warn("event webhook delivery failed: %s (status %d): event dropped", err ? detail : "bad status",
                  e->status);
    } else {
        e->sent++;
    }
    deliver_next(e);
}

static void deliver_next(struct keel_events *e)
{
    static const struct keel_upstream_cbs cbs = {on_head, on_data, on_done};
    while (e->xfer == NULL && e->n > 0) {
        char *body = e->queue[e->head];
        e->head = (e->head + 1) % KEEL_EVENTS_QUEUE;
        e->n--;
        if (e->url != NULL) {
            struct keel_upstream_spec spec = {.url = e->url, .body = body, .body_len = strlen(body),
                                              .connect_timeout_ms = DELIVERY_TIMEOUT_MS,
                                              .timeout_ms = DELIVERY_TIMEOUT_MS};
            e->status = 0;
            e->xfer = keel_upstream_xfer_start(e->upstream, &spec, &cbs, e);
            if (e->xfer == NULL)
                e->failed++;
        }
        free(body);
    }
}

void keel_events_emit(struct keel_events *e, json_t *ev)
{
    char ts[40];
    keel_time_rfc3339(keel_time_now_ms(), ts, sizeof(ts));
    json_object_set_new(ev, "ts", json_string(ts));
    char *body = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
    json_t **slot = &e->recent[e->nrecent++ % KEEL_EVENTS_RECENT];
    json_decref(*slot);
    *slot = ev;
    if (body == NULL)
        return;
    keel_info("event %s", body);
    if (e->url == NULL) {
        free(body);
        return;
    }
    if (e->n == KEEL_EVENTS_QUEUE) {
        e->dropped++;
        keel_warn("event webhook queue full (%d): event dropped", KEEL_EVENTS_QUEUE);
        free(body);
        return;
    }
    e->queue[(e->head + e->n) % KEEL_EVENTS_QUEUE] = body;
    e->n++;
    deliver_next(e);
}

json_t *keel_events_recent(const struct keel_events *e)
{
    json_t *a = json_array();
    size_t have = e->nrecent < KEEL_EVENTS_RECENT ? e->nrecent : KEEL_EVENTS_RECENT;
    for (size_t k = 0; k < have; k++)
        json_array_append(a, e->recent[(e->nrecent - 1 - k) % KEEL_EVENTS_RECENT]);
    return a;
}
