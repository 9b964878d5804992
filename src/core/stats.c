/* stats.c - histograms and sliding windows; see stats.h. */
#include "core/stats.h"

#include <stdlib.h>

const double keel_hist_bounds[KEEL_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                    2.5,   5,    10,    30,   60,  120,  300, 600};

void keel_hist_observe(struct keel_hist *h, double seconds)
{
    size_t i = 0;
    while (i < KEEL_HIST_BUCKETS && seconds > keel_hist_bounds[i])
        i++;
    if (i < KEEL_HIST_BUCKETS)
        h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

void keel_window_add(struct keel_window *w, uint64_t now, uint32_t ms)
{
    w->at[w->head] = now;
    w->ms[w->head] = ms;
    w->head = (w->head + 1) % KEEL_WINDOW_CAP;
    if (w->n < KEEL_WINDOW_CAP)
        w->n++;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t rank(const uint32_t *sorted, size_t n, unsigned pct)
{
    size_t k = (n * pct + 99) / 100; /* nearest rank, 1-based */
    return sorted[k > 0 ? k - 1 : 0];
}

void keel_window_pcts(const struct keel_window *w, uint64_t now, uint64_t span, struct keel_pcts *out)
{
    *out = (struct keel_pcts){0};
    uint32_t *v = malloc((w->n ? w->n : 1) * sizeof(*v)); /* freed below; status requests only */
    if (v == NULL)
        return;
    size_t n = 0;
    for (size_t i = 0; i < w->n; i++) {
        size_t slot = (w->head + KEEL_WINDOW_CAP - 1 - i) % KEEL_WINDOW_CAP;
        if (now - w->at[slot] >= span && now >= w->at[slot])
            break; /* older samples follow */
        v[n++] = w->ms[slot];
    }
    keel_pcts_of(v, n, out);
    free(v);
}

void keel_pcts_of(uint32_t *v, size_t n, struct keel_pcts *out)
{
    *out = (struct keel_pcts){.count = n};
    if (n == 0)
        return;
    qsort(v, n, sizeof(v[0]), cmp_u32);
    out->p50 = rank(v, n, 50);
    out->p90 = rank(v, n, 90);
    out->p99 = rank(v, n, 99);
    out->max = v[n - 1];
}
