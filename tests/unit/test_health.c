/* test_health.c - a model's verdict from its recent outcomes on a fake clock: idle, healthy,
 * degraded and failing, and the words that say why; the window forgets what is older. */
#include "unit.h"

#include <string.h>

#include "core/health.h"

static struct keel_outcomes o;

static enum keel_health_state verdict(uint64_t now, size_t targets, size_t open, int near, char *why, size_t cap)
{
    struct keel_outcome_counts c;
    keel_outcomes_count(&o, now, 300000, &c);
    return keel_health_of(&c, targets, open, near, why, cap);
}

static void test_states(void **state)
{
    char why[256];
    memset(&o, 0, sizeof(o));
    assert_int_equal(verdict(1000, 2, 0, 0, why, sizeof(why)), KEEL_HEALTH_IDLE);
    assert_string_equal(why, "");
    for (int i = 0; i < 10; i++)
        keel_outcomes_add(&o, 1000 + i, KEEL_CLASS_OK, 0);
    assert_int_equal(verdict(2000, 2, 0, 0, why, sizeof(why)), KEEL_HEALTH_HEALTHY);
    /* a failover in ten: fine; two in ten: degraded */
    keel_outcomes_add(&o, 2001, KEEL_CLASS_OK, 1);
    assert_int_equal(verdict(2002, 2, 0, 0, why, sizeof(why)), KEEL_HEALTH_HEALTHY);
    keel_outcomes_add(&o, 2003, KEEL_CLASS_OK, 1);
    assert_int_equal(verdict(2004, 2, 0, 0, why, sizeof(why)), KEEL_HEALTH_DEGRADED);
    assert_string_equal(why, "2 of 12 requests failed over");
    /* one failure: degraded, named */
    keel_outcomes_add(&o, 2005, KEEL_CLASS_SERVER_ERROR, 0);
    assert_int_equal(verdict(2006, 2, 1, 0, why, sizeof(why)), KEEL_HEALTH_DEGRADED);
    assert_string_equal(why, "1 of 13 requests failed (server_error 1); 1 of 2 targets' breakers open; 2 of 13 requests failed over");
    /* near the cliff alone is degraded */
    memset(&o, 0, sizeof(o));
    keel_outcomes_add(&o, 10, KEEL_CLASS_OK, 0);
    assert_int_equal(verdict(20, 1, 0, 1, why, sizeof(why)), KEEL_HEALTH_DEGRADED);
    assert_string_equal(why, "near its cliff");
}

/* seed 004 seen by an operator: 35 of 35 failed, both breakers open: failing, whatever the cliff */
static void test_answering_nothing_is_failing(void **state)
{
    char why[256];
    memset(&o, 0, sizeof(o));
    for (int i = 0; i < 30; i++)
        keel_outcomes_add(&o, 100 + i, KEEL_CLASS_SERVER_ERROR, 1);
    for (int i = 0; i < 5; i++)
        keel_outcomes_add(&o, 200 + i, KEEL_CLASS_SKIPPED, 0);
    assert_int_equal(verdict(300, 2, 2, 0, why, sizeof(why)), KEEL_HEALTH_FAILING);
    assert_string_equal(why, "35 of 35 requests failed (server_error 30, skipped 5); every target's breaker is open; "
                             "30 of 35 requests failed over");
    /* every breaker open with no request yet: failing too */
    memset(&o, 0, sizeof(o));
    assert_int_equal(verdict(300, 1, 1, 0, why, sizeof(why)), KEEL_HEALTH_FAILING);
    /* two failures in two: degraded until there are three to judge by */
    keel_outcomes_add(&o, 1, KEEL_CLASS_RESET, 0);
    keel_outcomes_add(&o, 2, KEEL_CLASS_RESET, 0);
    assert_int_equal(verdict(3, 1, 0, 0, why, sizeof(why)), KEEL_HEALTH_DEGRADED);
    keel_outcomes_add(&o, 3, KEEL_CLASS_RESET, 0);
    assert_int_equal(verdict(4, 1, 0, 0, why, sizeof(why)), KEEL_HEALTH_FAILING);
    /* words cut to fit, never past the buffer */
    char tiny[8];
    keel_health_of(&(struct keel_outcome_counts){.requests = 5, .by_class = {[KEEL_CLASS_RESET] = 5}}, 1, 1, 1, tiny,
                   sizeof(tiny));
    assert_true(strlen(tiny) < sizeof(tiny));
}

static void test_window_forgets(void **state)
{
    char why[64];
    memset(&o, 0, sizeof(o));
    keel_outcomes_add(&o, 1000, KEEL_CLASS_SERVER_ERROR, 0);
    keel_outcomes_add(&o, 400000, KEEL_CLASS_OK, 0);
    struct keel_outcome_counts c;
    keel_outcomes_count(&o, 400001, 300000, &c);
    assert_int_equal(c.requests, 1); /* the failure is older than five minutes */
    assert_int_equal(verdict(400001, 1, 0, 0, why, sizeof(why)), KEEL_HEALTH_HEALTHY);
    /* the ring keeps the newest KEEL_OUTCOMES_CAP */
    for (int i = 0; i < KEEL_OUTCOMES_CAP + 10; i++)
        keel_outcomes_add(&o, 500000, KEEL_CLASS_OK, 0);
    keel_outcomes_count(&o, 500001, 300000, &c);
    assert_int_equal(c.requests, KEEL_OUTCOMES_CAP);
}

/* what keel refused itself, or a client that left, says nothing of the providers: a model whose
 * only failures are bad requests and spent keys stays healthy, the words say how many */
static void test_local_is_not_the_models_fault(void **state)
{
    char why[256];
    memset(&o, 0, sizeof(o));
    for (int i = 0; i < 5; i++)
        keel_outcomes_add(&o, 10 + i, KEEL_CLASS_INVALID_REQUEST, 0);
    assert_int_equal(verdict(20, 1, 0, 0, why, sizeof(why)), KEEL_HEALTH_IDLE);
    keel_outcomes_add(&o, 21, KEEL_CLASS_KEY_LIMITED, 0);
    keel_outcomes_add(&o, 22, KEEL_CLASS_CLIENT_GONE, 0);
    keel_outcomes_add(&o, 23, KEEL_CLASS_GATEWAY_BUSY, 0);
    keel_outcomes_add(&o, 24, KEEL_CLASS_OK, 0);
    assert_int_equal(verdict(30, 1, 0, 0, why, sizeof(why)), KEEL_HEALTH_HEALTHY);
    assert_string_equal(why, "8 refused by keel or left by their client (not the providers' doing)");
    keel_outcomes_add(&o, 25, KEEL_CLASS_RESET, 0);
    keel_outcomes_add(&o, 26, KEEL_CLASS_RESET, 0);
    assert_int_equal(verdict(30, 1, 0, 0, why, sizeof(why)), KEEL_HEALTH_FAILING); /* 1 of 3 judged answered */
    assert_string_equal(why, "2 of 3 requests failed (reset 2); "
                             "8 refused by keel or left by their client (not the providers' doing)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states),
        cmocka_unit_test(test_answering_nothing_is_failing),
        cmocka_unit_test(test_window_forgets),
        cmocka_unit_test(test_local_is_not_the_models_fault),
    };
    return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
