/* test_breaker.c - the circuit breaker on a fake clock: opening, skipping, exactly one half-open
 * probe among many concurrent requests, closing, reopening with a doubled and capped cooldown,
 * 429 cooling, the classes that never count (seed 003), and rejections (auth, not_found) counted
 * apart from failures against a threshold of their own (issue 13), all under `probe: request`;
 * then `probe: background` (issue 17): keel's own probes at a jittered base cooldown, clients
 * skipping the target throughout, a live probe closing it, and a change of rule by a reload. */
#include "unit.h"

#include "core/breaker.h"

static const struct keel_breaker_params P = {.failures = 3,
                                             .rejections = 10,
                                             .cooldown_ms = 1000,
                                             .max_cooldown_ms = 3000,
                                             .probe = KEEL_BREAKER_PROBE_REQUEST};
/* built without `rejections` (0): rejections get the failures' threshold, on their own count */
static const struct keel_breaker_params P0 = {
    .failures = 3, .cooldown_ms = 1000, .max_cooldown_ms = 3000, .probe = KEEL_BREAKER_PROBE_REQUEST};
/* the default rule: keel probes an open target itself */
static const struct keel_breaker_params PB = {.failures = 3,
                                              .rejections = 10,
                                              .cooldown_ms = 1000,
                                              .max_cooldown_ms = 3000,
                                              .probe = KEEL_BREAKER_PROBE_BACKGROUND};

static enum keel_admit admit(struct keel_breaker *b, uint64_t now)
{
    enum keel_breaker_change c;
    return keel_breaker_admit(b, now, &c);
}

static void open_it(struct keel_breaker *b, uint64_t now)
{
    for (int i = 0; i < 3; i++)
        keel_breaker_report(b, &P, KEEL_CLASS_SERVER_ERROR, 0, 0, now);
    assert_int_equal(b->state, KEEL_BREAKER_OPEN);
}

static void test_opens_after_consecutive_failures(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_SERVER_ERROR, 0, 0, 0), KEEL_BREAKER_SAME);
    assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_RESET, 0, 0, 0), KEEL_BREAKER_SAME);
    keel_breaker_report(&b, &P, KEEL_CLASS_OK, 0, 0, 0); /* a success in between resets the count */
    keel_breaker_report(&b, &P, KEEL_CLASS_SERVER_ERROR, 0, 0, 0);
    keel_breaker_report(&b, &P, KEEL_CLASS_FIRST_BYTE_TIMEOUT, 0, 0, 0);
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_EMPTY_RESPONSE, 0, 0, 100), KEEL_BREAKER_OPENED);
    assert_int_equal(b.state, KEEL_BREAKER_OPEN);
    assert_int_equal(b.open_until, 1100);
    assert_int_equal(admit(&b, 500), KEEL_ADMIT_SKIP);
    assert_int_equal(keel_breaker_ready_at(&b, 500), 1100);
}

static void test_classes_that_never_count(void **state)
{
    static const enum keel_class neutral[] = {KEEL_CLASS_BAD_REQUEST, KEEL_CLASS_CONTEXT_LENGTH, KEEL_CLASS_CLIENT_GONE,
                                              KEEL_CLASS_INVALID_REQUEST, KEEL_CLASS_GATEWAY_BUSY,
                                              KEEL_CLASS_DEADLINE_EXCEEDED, KEEL_CLASS_RATE_LIMITED};
    struct keel_breaker b;
    keel_breaker_init(&b);
    for (int round = 0; round < 10; round++)
        for (size_t i = 0; i < sizeof(neutral) / sizeof(neutral[0]); i++)
            keel_breaker_report(&b, &P, neutral[i], 0, 0, 0);
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(b.failures, 0);
    assert_false(keel_breaker_counts(KEEL_CLASS_CLIENT_GONE));
    assert_true(keel_breaker_counts(KEEL_CLASS_AUTH));
}

static enum keel_breaker_change report(struct keel_breaker *b, enum keel_class cls, uint64_t now)
{
    return keel_breaker_report(b, &P, cls, 0, 0, now);
}

/* n rejections, auth and not_found alternating (both are rejections, on one count) */
static void reject(struct keel_breaker *b, int n, uint64_t now)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(report(b, i % 2 ? KEEL_CLASS_NOT_FOUND : KEEL_CLASS_AUTH, now), KEEL_BREAKER_SAME);
}

static void test_which_classes_are_rejections(void **state)
{
    assert_true(keel_breaker_is_rejection(KEEL_CLASS_AUTH));
    assert_true(keel_breaker_is_rejection(KEEL_CLASS_NOT_FOUND));
    int n = 0;
    for (int c = 0; c < KEEL_CLASS_COUNT; c++) {
        if (!keel_breaker_is_rejection((enum keel_class)c))
            continue;
        n++;
        assert_true(keel_breaker_counts((enum keel_class)c)); /* a rejection is a counting class */
    }
    assert_int_equal(n, 2);
}

/* flagged prompts among normal traffic: 9 rejections, an ok, again and again: never open */
static void test_rejections_below_the_threshold_among_oks_never_open(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    for (int round = 0; round < 100; round++) {
        reject(&b, 9, (uint64_t)round);
        assert_int_equal(b.rejections, 9);
        assert_int_equal(report(&b, KEEL_CLASS_OK, (uint64_t)round), KEEL_BREAKER_SAME);
        assert_int_equal(b.rejections, 0); /* ok resets the count */
    }
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(b.failures, 0);
    assert_int_equal(admit(&b, 100), KEEL_ADMIT_ALLOW);
}

/* a revoked key or a removed model: every request rejected, `rejections` in a row open it */
static void test_rejections_in_a_row_open(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    reject(&b, 9, 0);
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(b.failures, 0); /* rejections do not advance failures */
    assert_int_equal(report(&b, KEEL_CLASS_AUTH, 500), KEEL_BREAKER_OPENED);
    assert_int_equal(b.state, KEEL_BREAKER_OPEN);
    assert_int_equal(b.open_until, 1500);
    assert_int_equal(b.rejections, 0);
    assert_int_equal(admit(&b, 1499), KEEL_ADMIT_SKIP);
    /* late rejections while open change nothing */
    assert_int_equal(report(&b, KEEL_CLASS_NOT_FOUND, 600), KEEL_BREAKER_SAME);
    assert_int_equal(b.open_until, 1500);
    assert_int_equal(admit(&b, 1500), KEEL_ADMIT_PROBE);
    /* the probe's success closes it with both counts at zero */
    assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_OK, 1, 0, 1600), KEEL_BREAKER_CLOSED_AGAIN);
    assert_int_equal(b.rejections, 0);
    assert_int_equal(b.failures, 0);
    reject(&b, 9, 1700);
    assert_int_equal(report(&b, KEEL_CLASS_NOT_FOUND, 1700), KEEL_BREAKER_OPENED);
}

/* neither count resets or advances the other; only ok resets either */
static void test_failures_and_rejections_do_not_mix(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    /* failures, then rejections in between: the failures' count goes on where it was */
    report(&b, KEEL_CLASS_SERVER_ERROR, 0);
    report(&b, KEEL_CLASS_FIRST_BYTE_TIMEOUT, 0);
    reject(&b, 9, 0);
    assert_int_equal(b.failures, 2);
    assert_int_equal(b.rejections, 9);
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(report(&b, KEEL_CLASS_RESET, 0), KEEL_BREAKER_OPENED);

    /* rejections, then failures in between: the rejections' count goes on where it was */
    keel_breaker_init(&b);
    reject(&b, 9, 0);
    report(&b, KEEL_CLASS_CONNECT_ERROR, 0);
    report(&b, KEEL_CLASS_STALL_TIMEOUT, 0);
    assert_int_equal(b.rejections, 9);
    assert_int_equal(b.failures, 2);
    assert_int_equal(report(&b, KEEL_CLASS_AUTH, 0), KEEL_BREAKER_OPENED);

    /* 429s and neutral classes reset neither count: only an ok does */
    keel_breaker_init(&b);
    reject(&b, 9, 0);
    report(&b, KEEL_CLASS_SERVER_ERROR, 0);
    report(&b, KEEL_CLASS_SERVER_ERROR, 0);
    static const enum keel_class neither[] = {KEEL_CLASS_RATE_LIMITED, KEEL_CLASS_BAD_REQUEST,
                                              KEEL_CLASS_CONTEXT_LENGTH, KEEL_CLASS_CLIENT_GONE,
                                              KEEL_CLASS_DEADLINE_EXCEEDED};
    for (size_t i = 0; i < sizeof(neither) / sizeof(neither[0]); i++)
        report(&b, neither[i], 0);
    assert_int_equal(b.rejections, 9);
    assert_int_equal(b.failures, 2);
    report(&b, KEEL_CLASS_OK, 0);
    assert_int_equal(b.rejections, 0);
    assert_int_equal(b.failures, 0);
}

static void test_probe_ending_in_a_rejection_reopens(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    open_it(&b, 0); /* by failures: a rejected probe reopens it all the same */
    assert_int_equal(admit(&b, 1000), KEEL_ADMIT_PROBE);
    /* a late rejection from a request that is not the probe changes nothing */
    assert_int_equal(report(&b, KEEL_CLASS_AUTH, 1000), KEEL_BREAKER_SAME);
    assert_int_equal(b.state, KEEL_BREAKER_HALF_OPEN);
    assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_AUTH, 1, 0, 1000), KEEL_BREAKER_REOPENED);
    assert_int_equal(b.cooldown_ms, 2000);
    assert_int_equal(admit(&b, 2999), KEEL_ADMIT_SKIP);
    assert_int_equal(admit(&b, 3000), KEEL_ADMIT_PROBE);
    assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_NOT_FOUND, 1, 0, 3000), KEEL_BREAKER_REOPENED);
    assert_int_equal(b.cooldown_ms, 3000); /* doubled, capped */
    assert_int_equal(b.rejections, 0);
}

static void test_zero_rejections_means_the_failures_threshold(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    for (int i = 0; i < 2; i++)
        assert_int_equal(keel_breaker_report(&b, &P0, KEEL_CLASS_AUTH, 0, 0, 0), KEEL_BREAKER_SAME);
    assert_int_equal(keel_breaker_report(&b, &P0, KEEL_CLASS_AUTH, 0, 0, 0), KEEL_BREAKER_OPENED);
    /* still a count of its own: 2 rejections and 2 failures open nothing */
    keel_breaker_init(&b);
    keel_breaker_report(&b, &P0, KEEL_CLASS_NOT_FOUND, 0, 0, 0);
    keel_breaker_report(&b, &P0, KEEL_CLASS_SERVER_ERROR, 0, 0, 0);
    keel_breaker_report(&b, &P0, KEEL_CLASS_AUTH, 0, 0, 0);
    keel_breaker_report(&b, &P0, KEEL_CLASS_RESET, 0, 0, 0);
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(keel_breaker_report(&b, &P0, KEEL_CLASS_AUTH, 0, 0, 0), KEEL_BREAKER_OPENED);
    /* and an ok between them keeps it closed */
    keel_breaker_init(&b);
    for (int i = 0; i < 30; i++)
        keel_breaker_report(&b, &P0, i % 3 == 2 ? KEEL_CLASS_OK : KEEL_CLASS_AUTH, 0, 0, 0);
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
}

static void test_exactly_one_probe_among_many(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    open_it(&b, 0);
    /* the cooldown ends; 100 requests arrive at the same instant */
    int probes = 0, skips = 0;
    for (int i = 0; i < 100; i++) {
        enum keel_breaker_change c;
        enum keel_admit a = keel_breaker_admit(&b, 1000, &c);
        probes += a == KEEL_ADMIT_PROBE;
        skips += a == KEEL_ADMIT_SKIP;
        if (a == KEEL_ADMIT_PROBE)
            assert_int_equal(c, KEEL_BREAKER_PROBING);
    }
    assert_int_equal(probes, 1);
    assert_int_equal(skips, 99);
    assert_int_equal(b.state, KEEL_BREAKER_HALF_OPEN);
    /* late reports from requests that started before the breaker opened change nothing */
    assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_SERVER_ERROR, 0, 0, 1001), KEEL_BREAKER_SAME);
    assert_int_equal(admit(&b, 1002), KEEL_ADMIT_SKIP);
    /* the probe succeeds: closed, everyone goes through */
    assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_OK, 1, 0, 1200), KEEL_BREAKER_CLOSED_AGAIN);
    assert_int_equal(admit(&b, 1200), KEEL_ADMIT_ALLOW);
    assert_int_equal(admit(&b, 1200), KEEL_ADMIT_ALLOW);
}

static void test_failed_probe_doubles_the_cooldown_up_to_the_cap(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    open_it(&b, 0); /* cooldown 1000 */
    uint64_t now = 1000;
    static const uint64_t want[] = {2000, 3000, 3000};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(admit(&b, now), KEEL_ADMIT_PROBE);
        assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_CONNECT_ERROR, 1, 0, now), KEEL_BREAKER_REOPENED);
        assert_int_equal(b.cooldown_ms, want[i]);
        assert_int_equal(admit(&b, now + want[i] - 1), KEEL_ADMIT_SKIP);
        now += want[i];
    }
    /* recovery resets the cooldown to the first one */
    assert_int_equal(admit(&b, now), KEEL_ADMIT_PROBE);
    keel_breaker_report(&b, &P, KEEL_CLASS_OK, 1, 0, now);
    open_it(&b, now);
    assert_int_equal(b.open_until, now + 1000);
}

static void test_probe_without_verdict_gives_its_turn_back(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    open_it(&b, 0);
    assert_int_equal(admit(&b, 1000), KEEL_ADMIT_PROBE);
    assert_int_equal(admit(&b, 1000), KEEL_ADMIT_SKIP);
    keel_breaker_report(&b, &P, KEEL_CLASS_CLIENT_GONE, 1, 0, 1100);
    assert_int_equal(b.state, KEEL_BREAKER_HALF_OPEN);
    assert_int_equal(admit(&b, 1100), KEEL_ADMIT_PROBE);
    /* a probe admitted but never sent is handed back too */
    keel_breaker_release(&b);
    assert_int_equal(admit(&b, 1200), KEEL_ADMIT_PROBE);
}

static void test_429_cools_without_counting(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    keel_breaker_report(&b, &P, KEEL_CLASS_SERVER_ERROR, 0, 0, 0);
    keel_breaker_report(&b, &P, KEEL_CLASS_RATE_LIMITED, 0, 5000, 0);
    assert_int_equal(b.failures, 1);
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(admit(&b, 4999), KEEL_ADMIT_SKIP);
    assert_int_equal(keel_breaker_ready_at(&b, 100), 5000);
    assert_int_equal(admit(&b, 5000), KEEL_ADMIT_ALLOW);
    /* a probe answered with 429 shows the target alive: closed, but cooling */
    open_it(&b, 6000);
    assert_int_equal(admit(&b, 7000), KEEL_ADMIT_PROBE);
    assert_int_equal(keel_breaker_report(&b, &P, KEEL_CLASS_RATE_LIMITED, 1, 2000, 7000), KEEL_BREAKER_CLOSED_AGAIN);
    assert_int_equal(admit(&b, 8000), KEEL_ADMIT_SKIP);
    assert_int_equal(admit(&b, 9000), KEEL_ADMIT_ALLOW);
}

/* ------------------------------------------------------------------ probe: background */

/* a fixed sequence of "random" numbers, lowest, highest and in between */
static const uint64_t RND[] = {0, 200, 100, UINT64_MAX, 12345, 7};

static void open_bg(struct keel_breaker *b, uint64_t now)
{
    for (int i = 0; i < 3; i++)
        keel_breaker_report(b, &PB, KEEL_CLASS_SERVER_ERROR, 0, 0, now);
    assert_int_equal(b->state, KEEL_BREAKER_OPEN);
    assert_true(b->background);
}

static void test_background_interval_is_the_base_cooldown_with_jitter(void **state)
{
    /* uniform in [0.9, 1.1] x cooldown: the bounds are reached, and never passed */
    assert_int_equal(keel_breaker_probe_interval(&PB, 0), 900);
    assert_int_equal(keel_breaker_probe_interval(&PB, 200), 1100);
    assert_int_equal(keel_breaker_probe_interval(&PB, 100), 1000);
    uint64_t lo = UINT64_MAX, hi = 0, x = 1;
    for (int i = 0; i < 10000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t v = keel_breaker_probe_interval(&PB, x);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    assert_int_equal(lo, 900);
    assert_int_equal(hi, 1100);
    struct keel_breaker_params big = PB;
    big.cooldown_ms = 30000;
    assert_int_equal(keel_breaker_probe_interval(&big, 0), 27000);
    assert_int_equal(keel_breaker_probe_interval(&big, 6000), 33000);
    /* a zero or tiny cooldown still leaves room between probes */
    struct keel_breaker_params tiny = PB;
    tiny.cooldown_ms = 0;
    assert_int_equal(keel_breaker_probe_interval(&tiny, 12345), KEEL_BREAKER_PROBE_MIN_MS);
}

/* a target down for good: probed once per jittered base cooldown, never doubled, clients
 * skipping it throughout, even past each cooldown */
static void test_background_probes_at_the_base_cooldown_and_clients_always_skip(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    open_bg(&b, 5000);
    assert_int_equal(b.open_until, 6000); /* before any plan: the cooldown */
    uint64_t now = 5000;
    for (size_t i = 0; i < sizeof(RND) / sizeof(RND[0]); i++) {
        uint64_t due = keel_breaker_probe_due(&b, &PB, now, RND[i]);
        assert_true(due >= now + 900 && due <= now + 1100);
        /* planned once: asking again with other randomness gives the same time */
        assert_int_equal(keel_breaker_probe_due(&b, &PB, now + 1, RND[(i + 1) % 6]), due);
        assert_int_equal(keel_breaker_ready_at(&b, now), due);
        assert_int_equal(keel_breaker_next_probe(&b), due); /* what /admin/status shows */
        for (uint64_t t = now; t < due + 3000; t += 250)
            assert_int_equal(admit(&b, t), KEEL_ADMIT_SKIP); /* never a client probe */
        assert_int_equal(keel_breaker_probe_start(&b, due - 1), 0);
        assert_int_equal(keel_breaker_probe_start(&b, due), 1);
        assert_int_equal(keel_breaker_probe_start(&b, due), 0); /* one at a time */
        assert_int_equal(keel_breaker_probe_due(&b, &PB, due, 0), UINT64_MAX);
        assert_int_equal(keel_breaker_next_probe(&b), UINT64_MAX); /* one is out */
        assert_int_equal(admit(&b, due + 10), KEEL_ADMIT_SKIP); /* the probe out keeps clients off */
        now = due + 40; /* the probe took 40 ms and failed */
        assert_int_equal(keel_breaker_probe_done(&b, &PB, KEEL_CLASS_SERVER_ERROR, 0, now, RND[(i + 2) % 6]),
                         KEEL_BREAKER_SAME);
        assert_int_equal(b.state, KEEL_BREAKER_OPEN);
        assert_int_equal(b.cooldown_ms, 1000); /* no doubling */
        assert_true(b.probe_at >= now + 900 && b.probe_at <= now + 1100);
    }
    assert_int_equal(b.failures, 0);
}

static void test_background_probe_alive_closes(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    open_bg(&b, 0);
    uint64_t due = keel_breaker_probe_due(&b, &PB, 0, 100);
    assert_int_equal(due, 1000);
    assert_int_equal(keel_breaker_probe_start(&b, 1000), 1);
    /* a late answer from a request sent before the opening changes nothing */
    assert_int_equal(keel_breaker_report(&b, &PB, KEEL_CLASS_OK, 0, 0, 1010), KEEL_BREAKER_SAME);
    assert_int_equal(b.state, KEEL_BREAKER_OPEN);
    assert_int_equal(keel_breaker_probe_done(&b, &PB, KEEL_CLASS_OK, 0, 1050, 0), KEEL_BREAKER_RECOVERED);
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(b.cooldown_ms, 0);
    assert_int_equal(admit(&b, 1050), KEEL_ADMIT_ALLOW);
    assert_int_equal(keel_breaker_probe_due(&b, &PB, 1050, 0), UINT64_MAX); /* closed: none */
    assert_int_equal(keel_breaker_next_probe(&b), UINT64_MAX);
    assert_int_equal(keel_breaker_probe_done(&b, &PB, KEEL_CLASS_OK, 0, 1060, 0), KEEL_BREAKER_SAME);
    /* it opens again after `failures` as before, with a fresh plan */
    open_bg(&b, 2000);
    assert_int_equal(keel_breaker_probe_due(&b, &PB, 2000, 0), 2900);
}

static void test_background_probe_verdicts(void **state)
{
    /* alive: an answer (even "slow down"), or the client-side 4xx classes */
    static const enum keel_class alive[] = {KEEL_CLASS_OK, KEEL_CLASS_RATE_LIMITED, KEEL_CLASS_BAD_REQUEST,
                                            KEEL_CLASS_CONTEXT_LENGTH, KEEL_CLASS_INVALID_REQUEST};
    for (size_t i = 0; i < sizeof(alive) / sizeof(alive[0]); i++) {
        assert_true(keel_breaker_probe_alive(alive[i]));
        assert_false(keel_breaker_counts(alive[i]));
    }
    /* every counting class means still down; and nothing alive counts */
    for (int c = 0; c < KEEL_CLASS_COUNT; c++)
        if (keel_breaker_counts((enum keel_class)c))
            assert_false(keel_breaker_probe_alive((enum keel_class)c));
    /* neither (keel's own trouble, the probe never sent): still open, the same wait again */
    static const enum keel_class none[] = {KEEL_CLASS_LOCAL_ERROR, KEEL_CLASS_GATEWAY_BUSY, KEEL_CLASS_CLIENT_GONE,
                                           KEEL_CLASS_DEADLINE_EXCEEDED};
    struct keel_breaker b;
    keel_breaker_init(&b);
    open_bg(&b, 0);
    uint64_t now = 0;
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        now = keel_breaker_probe_due(&b, &PB, now, 0);
        assert_int_equal(keel_breaker_probe_start(&b, now), 1);
        assert_int_equal(keel_breaker_probe_done(&b, &PB, none[i], 0, now, 200), KEEL_BREAKER_SAME);
        assert_int_equal(b.state, KEEL_BREAKER_OPEN);
        assert_int_equal(b.probe_at, now + 1100);
    }
    /* a rejection is a counting class: still down */
    now = keel_breaker_probe_due(&b, &PB, now, 0);
    keel_breaker_probe_start(&b, now);
    assert_int_equal(keel_breaker_probe_done(&b, &PB, KEEL_CLASS_AUTH, 0, now, 0), KEEL_BREAKER_SAME);
    assert_int_equal(b.state, KEEL_BREAKER_OPEN);
    /* a 429 answers: closed, but cooling for its Retry-After */
    now = keel_breaker_probe_due(&b, &PB, now, 0);
    keel_breaker_probe_start(&b, now);
    assert_int_equal(keel_breaker_probe_done(&b, &PB, KEEL_CLASS_RATE_LIMITED, 3000, now, 0), KEEL_BREAKER_RECOVERED);
    assert_int_equal(admit(&b, now + 2999), KEEL_ADMIT_SKIP);
    assert_int_equal(admit(&b, now + 3000), KEEL_ADMIT_ALLOW);
}

/* a request-mode breaker has no background probes, and the background calls leave it be */
static void test_request_mode_has_no_background_probes(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    open_it(&b, 0);
    assert_false(b.background);
    assert_int_equal(keel_breaker_probe_due(&b, &P, 0, 0), UINT64_MAX);
    assert_int_equal(keel_breaker_probe_start(&b, 5000), 0);
    assert_int_equal(keel_breaker_probe_done(&b, &P, KEEL_CLASS_OK, 0, 5000, 0), KEEL_BREAKER_SAME);
    assert_int_equal(b.open_until, 1000);
    assert_int_equal(keel_breaker_next_probe(&b), 1000); /* the first request from then */
    assert_int_equal(admit(&b, 1000), KEEL_ADMIT_PROBE);
    assert_int_equal(keel_breaker_probe_due(&b, &P, 1000, 0), UINT64_MAX); /* half-open */
    assert_int_equal(keel_breaker_next_probe(&b), UINT64_MAX);
    keel_breaker_release(&b);
    assert_int_equal(keel_breaker_next_probe(&b), 0); /* given back: the next request */
}

/* a reload changes the rule; a breaker keeps the one it opened under until it closes, except
 * that a client probe failing under the new background rule hands over to keel's probes */
static void test_rule_change_by_a_reload(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    /* opened under background, the config now says request: keel's probes go on */
    open_bg(&b, 0);
    uint64_t due = keel_breaker_probe_due(&b, &P, 0, 0);
    assert_int_equal(due, 900);
    assert_int_equal(admit(&b, 5000), KEEL_ADMIT_SKIP);
    assert_int_equal(keel_breaker_probe_start(&b, due), 1);
    assert_int_equal(keel_breaker_probe_done(&b, &P, KEEL_CLASS_OK, 0, due, 0), KEEL_BREAKER_RECOVERED);
    /* and it opens under request next time */
    open_it(&b, 1000);
    assert_false(b.background);
    /* opened under request, the config now says background: its client probe's failure hands it
     * to keel's probes at the base cooldown */
    assert_int_equal(admit(&b, 2000), KEEL_ADMIT_PROBE);
    assert_int_equal(keel_breaker_report(&b, &PB, KEEL_CLASS_SERVER_ERROR, 1, 0, 2000), KEEL_BREAKER_REOPENED);
    assert_true(b.background);
    assert_int_equal(b.cooldown_ms, 1000);
    assert_int_equal(admit(&b, 3000), KEEL_ADMIT_SKIP);
    assert_int_equal(keel_breaker_probe_due(&b, &PB, 2000, 200), 3100);
}

/* another instance's view (state: redis): its opening opens a closed breaker here until the same
 * end, its closing closes an open one unless this instance's probe is out, the later 429 wins */
static void test_shared_snapshots(void **state)
{
    struct keel_breaker b;
    keel_breaker_init(&b);
    enum keel_breaker_change ch;
    assert_int_equal(keel_breaker_shared_open(&b, &PB, 500, 1000, 1000), KEEL_BREAKER_SAME); /* over already */
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(keel_breaker_shared_open(&b, &PB, 3000, 2000, 1000), KEEL_BREAKER_OPENED);
    assert_int_equal(b.state, KEEL_BREAKER_OPEN);
    assert_int_equal(keel_breaker_admit(&b, 1500, &ch), KEEL_ADMIT_SKIP);
    assert_int_equal(keel_breaker_admit(&b, 5000, &ch), KEEL_ADMIT_SKIP); /* background: until a probe closes it */
    /* the probe is planned as after any opening; this instance's probe out: a close waits for it */
    uint64_t due = keel_breaker_probe_due(&b, &PB, 1000, 0);
    assert_true(due > 1000 && due != UINT64_MAX);
    assert_true(keel_breaker_probe_start(&b, due));
    assert_int_equal(keel_breaker_shared_close(&b), KEEL_BREAKER_SAME);
    assert_int_equal(b.state, KEEL_BREAKER_OPEN);
    assert_int_equal(keel_breaker_probe_done(&b, &PB, KEEL_CLASS_SKIPPED, 0, due, 0), KEEL_BREAKER_SAME); /* lost the claim */
    assert_int_equal(keel_breaker_shared_close(&b), KEEL_BREAKER_RECOVERED);
    assert_int_equal(b.state, KEEL_BREAKER_CLOSED);
    assert_int_equal(keel_breaker_admit(&b, due, &ch), KEEL_ADMIT_ALLOW);
    /* 429 cool-downs: the later one */
    keel_breaker_shared_cool(&b, 9000);
    keel_breaker_shared_cool(&b, 7000);
    assert_int_equal(b.cool_until, 9000);
    assert_int_equal(keel_breaker_admit(&b, 8000, &ch), KEEL_ADMIT_SKIP);
    assert_int_equal(keel_breaker_admit(&b, 9000, &ch), KEEL_ADMIT_ALLOW);
    assert_int_equal(keel_breaker_shared_close(&b), KEEL_BREAKER_SAME); /* closed already */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_snapshots),
        cmocka_unit_test(test_opens_after_consecutive_failures),
        cmocka_unit_test(test_classes_that_never_count),
        cmocka_unit_test(test_exactly_one_probe_among_many),
        cmocka_unit_test(test_failed_probe_doubles_the_cooldown_up_to_the_cap),
        cmocka_unit_test(test_probe_without_verdict_gives_its_turn_back),
        cmocka_unit_test(test_429_cools_without_counting),
        cmocka_unit_test(test_which_classes_are_rejections),
        cmocka_unit_test(test_rejections_below_the_threshold_among_oks_never_open),
        cmocka_unit_test(test_rejections_in_a_row_open),
        cmocka_unit_test(test_failures_and_rejections_do_not_mix),
        cmocka_unit_test(test_probe_ending_in_a_rejection_reopens),
        cmocka_unit_test(test_zero_rejections_means_the_failures_threshold),
        cmocka_unit_test(test_background_interval_is_the_base_cooldown_with_jitter),
        cmocka_unit_test(test_background_probes_at_the_base_cooldown_and_clients_always_skip),
        cmocka_unit_test(test_background_probe_alive_closes),
        cmocka_unit_test(test_background_probe_verdicts),
        cmocka_unit_test(test_request_mode_has_no_background_probes),
        cmocka_unit_test(test_rule_change_by_a_reload),
    };
    return cmocka_run_group_tests_name("breaker", tests, NULL, NULL);
}
