/* test_router.c - the plan over a model's targets after each failed attempt: failover, the
 * client's own errors, same-target retries with backoff inside the deadline, Retry-After,
 * everything rate-limited, larger-context failover. */
#include "unit.h"

#include "core/router.h"

#define T(window, same, backoff, maxwait) {.context_window = (window), .same_target = (same), .backoff_ms = (backoff), .max_wait_ms = (maxwait)}

static void test_failover_walks_the_chain_then_502(void **state)
{
    static const struct keel_route_target t[] = {T(0, 0, 200, 5000), T(0, 0, 200, 5000)};
    struct keel_router r;
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    struct keel_step s = keel_router_after(&r, KEEL_CLASS_SERVER_ERROR, 0, 0, 1000000, 7);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 1);
    assert_int_equal(s.wait_ms, 0);
    s = keel_router_after(&r, KEEL_CLASS_FIRST_BYTE_TIMEOUT, 0, 0, 1000000, 7);
    assert_int_equal(s.kind, KEEL_STEP_GIVE_UP);
    assert_int_equal(s.status, 502);
}

static void test_every_failover_class_moves_on_at_once(void **state)
{
    static const struct keel_route_target t[] = {T(0, 3, 200, 5000), T(0, 0, 200, 5000)};
    static const enum keel_class moving[] = {
        KEEL_CLASS_CONNECT_ERROR, KEEL_CLASS_RESET, KEEL_CLASS_FIRST_BYTE_TIMEOUT, KEEL_CLASS_STALL_TIMEOUT,
        KEEL_CLASS_QUOTA, KEEL_CLASS_AUTH, KEEL_CLASS_NOT_FOUND, KEEL_CLASS_STREAM_ERROR, KEEL_CLASS_EMPTY_RESPONSE};
    for (size_t i = 0; i < sizeof(moving) / sizeof(moving[0]); i++) {
        struct keel_router r;
        keel_router_init(&r, t, 2, NULL, NULL, NULL);
        struct keel_step s = keel_router_after(&r, moving[i], 0, 0, 1000000, 0);
        assert_int_equal(s.kind, KEEL_STEP_TRY);
        assert_int_equal(s.target, 1); /* even with same_target retries left: not retried */
        assert_int_equal(s.wait_ms, 0);
    }
}

static void test_client_fault_is_returned(void **state)
{
    static const struct keel_route_target t[] = {T(0, 0, 200, 5000), T(0, 0, 200, 5000)};
    struct keel_router r;
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    assert_int_equal(keel_router_after(&r, KEEL_CLASS_BAD_REQUEST, 0, 0, 1000, 0).kind, KEEL_STEP_RETURN);
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    assert_int_equal(keel_router_after(&r, KEEL_CLASS_CLIENT_GONE, 0, 0, 1000, 0).kind, KEEL_STEP_RETURN);
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    assert_int_equal(keel_router_after(&r, KEEL_CLASS_OK, 0, 0, 1000, 0).kind, KEEL_STEP_DONE);
}

static void test_same_target_retries_with_backoff(void **state)
{
    static const struct keel_route_target t[] = {T(0, 2, 100, 5000), T(0, 0, 100, 5000)};
    struct keel_router r;
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    struct keel_step s = keel_router_after(&r, KEEL_CLASS_SERVER_ERROR, 0, 0, 100000, 1000003);
    assert_int_equal(s.kind, KEEL_STEP_WAIT);
    assert_true(s.wait_ms <= 100);
    s = keel_router_resume(&r, s.wait_ms);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 0);
    s = keel_router_after(&r, KEEL_CLASS_OVERLOADED, 0, 0, 100000, 1000003);
    assert_int_equal(s.kind, KEEL_STEP_WAIT);
    assert_true(s.wait_ms <= 200);
    s = keel_router_after(&r, KEEL_CLASS_SERVER_ERROR, 0, 0, 100000, 1000003);
    assert_int_equal(s.target, 1); /* retries spent: move on, no wait */
    assert_int_equal(s.wait_ms, 0);
}

static void test_backoff_never_overruns_the_deadline(void **state)
{
    static const struct keel_route_target t[] = {T(0, 5, 1000, 5000), T(0, 0, 100, 5000)};
    struct keel_router r;
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    /* rnd picks the top of the jitter range: 1000 ms, but only 500 ms are left */
    struct keel_step s = keel_router_after(&r, KEEL_CLASS_SERVER_ERROR, 0, 10000, 10500, 1000);
    assert_int_equal(s.target, 1);
    assert_int_equal(s.wait_ms, 0);
}

static void test_backoff_is_full_jitter_and_capped(void **state)
{
    assert_int_equal(keel_backoff_ms(200, 1, 200), 200);
    assert_int_equal(keel_backoff_ms(200, 1, 201), 0);
    assert_int_equal(keel_backoff_ms(200, 3, 800), 800);
    for (uint64_t rnd = 0; rnd < 5000; rnd += 37)
        assert_true(keel_backoff_ms(200, 3, rnd) <= 800);
    assert_true(keel_backoff_ms(200, 60, UINT64_MAX) <= KEEL_BACKOFF_CAP_MS);
    assert_true(keel_backoff_ms(UINT64_MAX / 2, 2, UINT64_MAX) <= KEEL_BACKOFF_CAP_MS);
}

static void test_retry_after_that_fits_is_waited_once(void **state)
{
    static const struct keel_route_target t[] = {T(0, 0, 200, 5000), T(0, 0, 200, 5000)};
    struct keel_router r;
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    struct keel_step s = keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 2000, 0, 60000, 0);
    assert_int_equal(s.kind, KEEL_STEP_WAIT);
    assert_int_equal(s.wait_ms, 2000);
    assert_int_equal(keel_router_resume(&r, 2000).target, 0);
    s = keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 2000, 2000, 60000, 0);
    assert_int_equal(s.target, 1); /* one wait per target */
    assert_int_equal(s.wait_ms, 0);
}

static void test_retry_after_too_long_moves_on_at_once(void **state)
{
    static const struct keel_route_target t[] = {T(0, 0, 200, 5000), T(0, 0, 200, 5000)};
    struct keel_router r;
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    struct keel_step s = keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 6000, 0, 60000, 0); /* > max_wait */
    assert_int_equal(s.target, 1);
    assert_int_equal(s.wait_ms, 0);
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    s = keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 3000, 0, 2000, 0); /* past the deadline */
    assert_int_equal(s.target, 1);
    keel_router_init(&r, t, 2, NULL, NULL, NULL);
    s = keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 0, 0, 60000, 0); /* no Retry-After */
    assert_int_equal(s.target, 1);
}

static void test_all_rate_limited_is_429_with_smallest_retry_after(void **state)
{
    static const struct keel_route_target t[] = {T(0, 0, 200, 0), T(0, 0, 200, 0), T(0, 0, 200, 0)};
    struct keel_router r;
    keel_router_init(&r, t, 3, NULL, NULL, NULL);
    keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 30000, 0, 60000, 0);
    keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 7000, 0, 60000, 0);
    struct keel_step s = keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 0, 0, 60000, 0);
    assert_int_equal(s.kind, KEEL_STEP_GIVE_UP);
    assert_int_equal(s.status, 429);
    assert_int_equal(s.retry_after_ms, 7000);
    /* one target failing otherwise makes it a 502 */
    keel_router_init(&r, t, 3, NULL, NULL, NULL);
    keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 30000, 0, 60000, 0);
    keel_router_after(&r, KEEL_CLASS_SERVER_ERROR, 0, 0, 60000, 0);
    s = keel_router_after(&r, KEEL_CLASS_RATE_LIMITED, 1000, 0, 60000, 0);
    assert_int_equal(s.status, 502);
}

static void test_context_length_goes_only_to_a_larger_window(void **state)
{
    static const struct keel_route_target t[] = {T(8000, 0, 0, 0), T(0, 0, 0, 0), T(4000, 0, 0, 0), T(128000, 0, 0, 0)};
    struct keel_router r;
    keel_router_init(&r, t, 4, NULL, NULL, NULL);
    struct keel_step s = keel_router_after(&r, KEEL_CLASS_CONTEXT_LENGTH, 0, 0, 60000, 0);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 3); /* skips the undeclared and the smaller window */
    s = keel_router_after(&r, KEEL_CLASS_CONTEXT_LENGTH, 0, 0, 60000, 0);
    assert_int_equal(s.kind, KEEL_STEP_RETURN); /* nothing larger left: the 400 as is */
    assert_int_equal(s.target, 3);
}

/* a request one protocol cannot carry goes to the first later target of another; none left:
 * the 400 as is (the client's request, not a target, is the problem) */
static void test_untranslatable_goes_to_another_protocol(void **state)
{
    struct keel_route_target t[4] = {T(0, 0, 0, 0), T(0, 0, 0, 0), T(0, 0, 0, 0), T(0, 0, 0, 0)};
    t[0].protocol = t[1].protocol = t[3].protocol = 1; /* t[2] speaks protocol 0 */
    struct keel_router r;
    keel_router_init(&r, t, 4, NULL, NULL, NULL);
    struct keel_step s = keel_router_after(&r, KEEL_CLASS_UNTRANSLATABLE, 0, 0, 60000, 0);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 2); /* not t[1]: the same protocol could not carry it either */
    s = keel_router_after(&r, KEEL_CLASS_SERVER_ERROR, 0, 0, 60000, 0);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 3);
    s = keel_router_after(&r, KEEL_CLASS_UNTRANSLATABLE, 0, 0, 60000, 0);
    assert_int_equal(s.kind, KEEL_STEP_RETURN);
    assert_int_equal(s.target, 3);
}

/* a fake breaker table: which targets are open, and who was skipped */
struct fake {
    enum keel_admit admit[4];
    int skipped[4];
};

static enum keel_admit fake_admit(void *ctx, size_t target, uint64_t now)
{
    return ((struct fake *)ctx)->admit[target];
}

static void fake_skip(void *ctx, size_t target)
{
    ((struct fake *)ctx)->skipped[target]++;
}

static void test_open_targets_are_skipped(void **state)
{
    static const struct keel_route_target t[] = {T(0, 0, 0, 0), T(0, 0, 0, 0), T(0, 0, 0, 0)};
    struct fake f = {.admit = {KEEL_ADMIT_SKIP, KEEL_ADMIT_PROBE, KEEL_ADMIT_ALLOW}};
    struct keel_router r;
    keel_router_init(&r, t, 3, fake_admit, fake_skip, &f);
    struct keel_step s = keel_router_start(&r, 0);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 1);
    assert_true(s.probe);
    assert_int_equal(f.skipped[0], 1);
    s = keel_router_after(&r, KEEL_CLASS_SERVER_ERROR, 0, 0, 60000, 0);
    assert_int_equal(s.target, 2);
    assert_false(s.probe);
}

static void test_every_target_open_is_503_without_an_attempt(void **state)
{
    static const struct keel_route_target t[] = {T(0, 0, 0, 0), T(0, 0, 0, 0)};
    struct fake f = {.admit = {KEEL_ADMIT_SKIP, KEEL_ADMIT_SKIP}};
    struct keel_router r;
    keel_router_init(&r, t, 2, fake_admit, fake_skip, &f);
    struct keel_step s = keel_router_start(&r, 0);
    assert_int_equal(s.kind, KEEL_STEP_GIVE_UP);
    assert_int_equal(s.status, 503);
    assert_int_equal(f.skipped[0] + f.skipped[1], 2);
    /* one real failure, then the rest open: the failure decides (502) */
    f.admit[0] = KEEL_ADMIT_ALLOW;
    keel_router_init(&r, t, 2, fake_admit, fake_skip, &f);
    s = keel_router_start(&r, 0);
    assert_int_equal(s.target, 0);
    s = keel_router_after(&r, KEEL_CLASS_RESET, 0, 0, 60000, 0);
    assert_int_equal(s.status, 502);
}

static void test_a_wait_re_admits_the_target(void **state)
{
    static const struct keel_route_target t[] = {T(0, 1, 100, 5000), T(0, 0, 0, 0)};
    struct fake f = {.admit = {KEEL_ADMIT_ALLOW, KEEL_ADMIT_ALLOW}};
    struct keel_router r;
    keel_router_init(&r, t, 2, fake_admit, fake_skip, &f);
    keel_router_start(&r, 0);
    struct keel_step s = keel_router_after(&r, KEEL_CLASS_SERVER_ERROR, 0, 0, 60000, 0);
    assert_int_equal(s.kind, KEEL_STEP_WAIT);
    f.admit[0] = KEEL_ADMIT_SKIP; /* its breaker opened meanwhile (other requests' failures) */
    s = keel_router_resume(&r, 50);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 1);
    assert_int_equal(f.skipped[0], 1);
}

/* a committed stream that broke: only targets that declare continuation are asked, an open one
 * is skipped, none left is 502, the client's own refusal ends it */
static void test_continue_asks_only_declared_targets(void **state)
{
    struct keel_route_target t[] = {T(0, 3, 200, 5000), T(0, 3, 200, 5000), T(0, 0, 200, 5000), T(0, 0, 200, 5000)};
    t[2].continuation = 1;
    t[3].continuation = 1;
    struct fake f = {0};
    struct keel_router r;
    keel_router_init(&r, t, 4, fake_admit, fake_skip, &f);
    keel_router_start(&r, 0);
    assert_true(keel_router_continuable(KEEL_CLASS_RESET));
    assert_true(keel_router_continuable(KEEL_CLASS_STALL_TIMEOUT));
    assert_true(keel_router_continuable(KEEL_CLASS_STREAM_ERROR));
    assert_false(keel_router_continuable(KEEL_CLASS_CLIENT_GONE));
    assert_false(keel_router_continuable(KEEL_CLASS_DEADLINE_EXCEEDED));
    assert_false(keel_router_continuable(KEEL_CLASS_LOCAL_ERROR));
    struct keel_step s = keel_router_continue(&r, KEEL_CLASS_RESET, 0);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 2); /* target 1 (no declaration) passed over, not skipped */
    assert_int_equal(f.skipped[1], 0);
    assert_int_equal(r.skipped, 0);
    /* the continuation failed before its content: the next declared one; then none */
    s = keel_router_continue(&r, KEEL_CLASS_SERVER_ERROR, 0);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 3);
    s = keel_router_continue(&r, KEEL_CLASS_FIRST_BYTE_TIMEOUT, 0);
    assert_int_equal(s.kind, KEEL_STEP_GIVE_UP);
    assert_int_equal(s.status, 502);
}

static void test_continue_skips_open_and_stops_on_refusal(void **state)
{
    struct keel_route_target t[] = {T(0, 0, 200, 5000), T(0, 0, 200, 5000), T(0, 0, 200, 5000)};
    t[1].continuation = 1;
    t[2].continuation = 1;
    struct fake f = {0};
    f.admit[1] = KEEL_ADMIT_SKIP;
    f.admit[2] = KEEL_ADMIT_PROBE;
    struct keel_router r;
    keel_router_init(&r, t, 3, fake_admit, fake_skip, &f);
    keel_router_start(&r, 0);
    struct keel_step s = keel_router_continue(&r, KEEL_CLASS_STALL_TIMEOUT, 0);
    assert_int_equal(s.kind, KEEL_STEP_TRY);
    assert_int_equal(s.target, 2);
    assert_true(s.probe);
    assert_int_equal(f.skipped[1], 1);
    /* a rejected prefill (400) is the client's: no other target is asked */
    keel_router_init(&r, t, 3, NULL, NULL, NULL);
    keel_router_start(&r, 0);
    s = keel_router_continue(&r, KEEL_CLASS_RESET, 0);
    assert_int_equal(s.target, 1);
    s = keel_router_continue(&r, KEEL_CLASS_BAD_REQUEST, 0);
    assert_int_equal(s.kind, KEEL_STEP_RETURN);
    s = keel_router_continue(&r, KEEL_CLASS_CONTEXT_LENGTH, 0);
    assert_int_equal(s.kind, KEEL_STEP_RETURN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_walks_the_chain_then_502),
        cmocka_unit_test(test_every_failover_class_moves_on_at_once),
        cmocka_unit_test(test_client_fault_is_returned),
        cmocka_unit_test(test_same_target_retries_with_backoff),
        cmocka_unit_test(test_backoff_never_overruns_the_deadline),
        cmocka_unit_test(test_backoff_is_full_jitter_and_capped),
        cmocka_unit_test(test_retry_after_that_fits_is_waited_once),
        cmocka_unit_test(test_retry_after_too_long_moves_on_at_once),
        cmocka_unit_test(test_all_rate_limited_is_429_with_smallest_retry_after),
        cmocka_unit_test(test_context_length_goes_only_to_a_larger_window),
        cmocka_unit_test(test_untranslatable_goes_to_another_protocol),
        cmocka_unit_test(test_open_targets_are_skipped),
        cmocka_unit_test(test_every_target_open_is_503_without_an_attempt),
        cmocka_unit_test(test_a_wait_re_admits_the_target),
        cmocka_unit_test(test_continue_asks_only_declared_targets),
        cmocka_unit_test(test_continue_skips_open_and_stops_on_refusal),
    };
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
