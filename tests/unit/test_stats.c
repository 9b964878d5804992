/* test_stats.c - percentiles on known distributions, the sliding window's span, histograms. */
#include "unit.h"

#include <stdlib.h>

#include "core/stats.h"

static void test_percentiles_of_known_distributions(void **state)
{
    uint32_t v[1000];
    struct keel_pcts p;
    for (uint32_t i = 0; i < 100; i++)
        v[i] = 100 - i; /* 1..100, shuffled by reversal */
    keel_pcts_of(v, 100, &p);
    assert_int_equal(p.count, 100);
    assert_int_equal(p.p50, 50);
    assert_int_equal(p.p90, 90);
    assert_int_equal(p.p99, 99);
    assert_int_equal(p.max, 100);
    for (uint32_t i = 0; i < 1000; i++)
        v[i] = (i * 7919) % 1000 + 1; /* 1..1000, permuted */
    keel_pcts_of(v, 1000, &p);
    assert_int_equal(p.p50, 500);
    assert_int_equal(p.p90, 900);
    assert_int_equal(p.p99, 990);
    assert_int_equal(p.max, 1000);
    /* 99 fast answers and one 491 s hang: p99 is fast, max shows the hang (seed 000's minimax) */
    for (int i = 0; i < 99; i++)
        v[i] = 1000;
    v[99] = 491000;
    keel_pcts_of(v, 100, &p);
    assert_int_equal(p.p99, 1000);
    assert_int_equal(p.max, 491000);
    keel_pcts_of(v, 0, &p);
    assert_int_equal(p.count, 0);
    assert_int_equal(p.max, 0);
    v[0] = 7;
    keel_pcts_of(v, 1, &p);
    assert_int_equal(p.p50, 7);
    assert_int_equal(p.p99, 7);
}

static void test_window_keeps_only_its_span(void **state)
{
    struct keel_window *w = calloc(1, sizeof(*w));
    struct keel_pcts p;
    for (uint32_t i = 1; i <= 10; i++)
        keel_window_add(w, i * 1000, i * 100); /* one sample a second */
    keel_window_pcts(w, 10000, 5000, &p);   /* the last 5 s: samples at 6..10 s */
    assert_int_equal(p.count, 5);
    assert_int_equal(p.p50, 800);
    assert_int_equal(p.max, 1000);
    keel_window_pcts(w, 100000, 5000, &p);
    assert_int_equal(p.count, 0);
    /* the ring keeps the newest KEEL_WINDOW_CAP samples */
    for (uint32_t i = 0; i < KEEL_WINDOW_CAP + 10; i++)
        keel_window_add(w, 200000, i);
    keel_window_pcts(w, 200000, 1000, &p);
    assert_int_equal(p.count, KEEL_WINDOW_CAP);
    assert_int_equal(p.max, KEEL_WINDOW_CAP + 9);
    free(w);
}

static void test_histogram_buckets(void **state)
{
    struct keel_hist h = {0};
    keel_hist_observe(&h, 0.004);
    keel_hist_observe(&h, 0.005); /* le is inclusive */
    keel_hist_observe(&h, 1.5);
    keel_hist_observe(&h, 900);   /* past the last bound: only in +Inf */
    assert_int_equal(h.buckets[0], 2);
    assert_int_equal(h.buckets[8], 1); /* (1, 2.5] */
    assert_int_equal(h.count, 4);
    uint64_t in_buckets = 0;
    for (int i = 0; i < KEEL_HIST_BUCKETS; i++)
        in_buckets += h.buckets[i];
    assert_int_equal(in_buckets, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_of_known_distributions),
        cmocka_unit_test(test_window_keeps_only_its_span),
        cmocka_unit_test(test_histogram_buckets),
    };
    return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
