/* state.c - runtime state registry; see state.h. Linear lookups: the lists hold configured names
 * only (bounded), and requests resolve their entries once, at their start and end. */
#include "state.h"

#include <stdlib.h>
#include <string.h>

/* appends a zeroed element of `size` to a pointer list; returns it or NULL */
static void *push(void ***list, size_t *n, size_t size)
{
    void *e = calloc(1, size);
    void **nl = e ? realloc(*list, (*n + 1) * sizeof(**list)) : NULL;
    if (nl == NULL) {
        free(e);
        return NULL;
    }
    *list = nl;
    nl[(*n)++] = e;
    return e;
}

struct keel_target_state *keel_state_target(struct keel_state *s, const char *upstream, const char *model)
{
    for (size_t i = 0; i < s->ntargets; i++)
        if (strcmp(s->targets[i]->upstream, upstream) == 0 && strcmp(s->targets[i]->model, model) == 0)
            return s->targets[i];
    struct keel_target_state *t = push((void ***)&s->targets, &s->ntargets, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->upstream = strdup(upstream);
    t->model = strdup(model);
    keel_breaker_init(&t->breaker);
    return t;
}

struct keel_model_state *keel_state_model(struct keel_state *s, const char *name)
{
    for (size_t i = 0; i < s->nmodels; i++)
        if (strcmp(s->models[i]->name, name) == 0)
            return s->models[i];
    struct keel_model_state *m = push((void ***)&s->models, &s->nmodels, sizeof(*m));
    if (m != NULL)
        m->name = strdup(name);
    return m;
}

struct keel_key_state *keel_state_key(struct keel_state *s, const char *name)
{
    for (size_t i = 0; i < s->nkeys; i++)
        if (strcmp(s->keys[i]->name, name) == 0)
            return s->keys[i];
    struct keel_key_state *k = push((void ***)&s->keys, &s->nkeys, sizeof(*k));
    if (k != NULL)
        k->name = strdup(name);
    return k;
}

struct keel_route_stats *keel_state_route(struct keel_model_state *m, const char *upstream)
{
    for (size_t i = 0; i < m->nroutes; i++)
        if (strcmp(m->routes[i]->upstream, upstream) == 0)
            return m->routes[i];
    struct keel_route_stats *r = push((void ***)&m->routes, &m->nroutes, sizeof(*r));
    if (r != NULL)
        r->upstream = strdup(upstream);
    return r;
}

struct keel_window_stats *keel_state_window(struct keel_model_state *m, const char *upstream, const char *model)
{
    for (size_t i = 0; i < m->nwindows; i++)
        if (strcmp(m->windows[i]->upstream, upstream) == 0 && strcmp(m->windows[i]->model, model) == 0)
            return m->windows[i];
    struct keel_window_stats *w = push((void ***)&m->windows, &m->nwindows, sizeof(*w));
    if (w != NULL) {
        w->upstream = strdup(upstream);
        w->model = strdup(model);
    }
    return w;
}

void keel_state_failover(struct keel_model_state *m, const char *from, const char *to, enum keel_class cls)
{
    for (size_t i = 0; i < m->nfailovers; i++) {
        struct keel_failover_stats *f = m->failovers[i];
        if (f->cls == cls && strcmp(f->from, from) == 0 && strcmp(f->to, to) == 0) {
            f->n++;
            return;
        }
    }
    struct keel_failover_stats *f = push((void ***)&m->failovers, &m->nfailovers, sizeof(*f));
    if (f == NULL)
        return;
    f->from = strdup(from);
    f->to = strdup(to);
    f->cls = cls;
    f->n = 1;
}

void keel_state_recent(struct keel_target_state *t, enum keel_class cls)
{
    t->recent[t->nrecent % KEEL_RECENT] = cls;
    t->nrecent++;
}
