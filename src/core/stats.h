/* stats.h - latency statistics, pure: Prometheus-style cumulative histograms with fixed buckets,
 * and a sliding window of recent samples for live percentiles (p50/p90/p99/max). */
#ifndef KEEL_STATS_H
#define KEEL_STATS_H

#include <stddef.h>
#include <stdint.h>

#define KEEL_HIST_BUCKETS 16
extern const double keel_hist_bounds[KEEL_HIST_BUCKETS]; /* seconds; +Inf is implicit */

struct keel_hist {
    uint64_t buckets[KEEL_HIST_BUCKETS]; /* non-cumulative counts per bucket */
    uint64_t count;
    double sum; /* seconds */
};

void keel_hist_observe(struct keel_hist *h, double seconds);

#define KEEL_WINDOW_CAP 4096

struct keel_window {
    uint64_t at[KEEL_WINDOW_CAP]; /* when each sample was taken (ms) */
    uint32_t ms[KEEL_WINDOW_CAP]; /* the sample */
    size_t head;                  /* next slot to write */
    size_t n;                     /* samples held, <= KEEL_WINDOW_CAP */
};

struct keel_pcts {
    size_t count; /* samples in the window */
    uint32_t p50, p90, p99, max;
};

/* percentiles (nearest rank) of n samples; sorts v in place */
void keel_pcts_of(uint32_t *v, size_t n, struct keel_pcts *out);

void keel_window_add(struct keel_window *w, uint64_t now, uint32_t ms);
/* percentiles (nearest rank) of the samples taken in (now - span, now]; zeros when none */
void keel_window_pcts(const struct keel_window *w, uint64_t now, uint64_t span, struct keel_pcts *out);

#endif
