/* backends.c - what both kinds of backend (managed_t.h) share, below the two files that run
 * them: managed.c (processes keel starts) and control.c (models a control plane runs): the
 * waiters told, the clock, the state names, the checks' callbacks and the probe's body. */
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "io/upstream.h"
#include "managed_t.h"

const char *const keel_backend_state_names[] = {"stopped", "starting", "ready", "stopping", "backing_off"};

uint64_t keel_backend_now(const struct keel_backend *b)
{
    return uv_now(b->m->loop);
}

/* Every waiter is told ok (the backend is ready: each counts as an active user) or not. */
void keel_backend_notify(struct keel_backend *b, int ok)
{
    if (b->waiters.next == &b->waiters)
        return;
    /* detach the list first: a callback may wait again (joining a fresh list) or free its request */
    struct keel_backend_waiter *w = b->waiters.next;
    b->waiters.prev->next = NULL;
    b->waiters.next = b->waiters.prev = &b->waiters;
    while (w != NULL) {
        struct keel_backend_waiter *next = w->next;
        w->prev = w->next = NULL;
        w->backend = NULL;
        if (ok) {
            b->active++;
            b->last_used = keel_backend_now(b);
        }
        w->cb(w->ctx, ok);
        w = next;
    }
}

void keel_backend_check_head(void *ctx, int status, const char *ct, uint64_t ra)
{
    ((struct keel_backend *)ctx)->check_status = status;
}

int keel_backend_check_data(void *ctx, const char *data, size_t len)
{
    struct keel_backend *b = ctx;
    size_t room = sizeof(b->check_body) - 1 - b->check_len;
    size_t take = len < room ? len : room;
    memcpy(b->check_body + b->check_len, data, take);
    b->check_len += take;
    return KEEL_XFER_CONSUMED;
}

/* The ready probe: one 1-token completion for `model`, quoted as JSON (a config string may hold
 * a quote or a backslash, and spliced in raw it made the body invalid and the backend never
 * ready). malloc'd; NULL when out of memory. */
char *keel_backend_probe_body(const char *model)
{
    static const char head[] = "{\"model\":",
                      tail[] = ",\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}],\"max_tokens\":1,"
                               "\"stream\":false}";
    size_t q = keel_json_quote(model, NULL, 0);
    char *body = malloc(sizeof(head) - 1 + q + sizeof(tail));
    if (body == NULL)
        return NULL;
    memcpy(body, head, sizeof(head) - 1);
    keel_json_quote(model, body + sizeof(head) - 1, q + 1);
    memcpy(body + sizeof(head) - 1 + q, tail, sizeof(tail));
    return body;
}
