/* test_quota.c - a key's rpm and tpm on a fake clock: a minute's burst, then the rate; no double
 * burst at a window's edge; tokens charged after the answer, refused while over a minute ahead;
 * the wait said in ms. */
#include "unit.h"

#include "core/quota.h"

static void test_rpm_burst_then_rate(void **state)
{
    struct keel_quota q = {0};
    uint64_t t = 1000000;
    for (int i = 0; i < 60; i++)
        assert_int_equal(keel_quota_admit(&q, 60, 0, t), 0); /* a minute's worth at once */
    uint64_t wait = keel_quota_admit(&q, 60, 0, t);
    assert_int_equal(wait, 1000); /* then one a second */
    assert_int_equal(keel_quota_admit(&q, 60, 0, t + 999), 1);
    assert_int_equal(keel_quota_admit(&q, 60, 0, t + 1000), 0);
    assert_true(keel_quota_admit(&q, 60, 0, t + 1000) > 0);
    /* a refused request is not counted: waiting is enough */
    assert_int_equal(keel_quota_admit(&q, 60, 0, t + 2000), 0);
    /* no edge to double the burst at: 61 s later the bucket is full again, not twice over */
    t += 62000;
    for (int i = 0; i < 60; i++)
        assert_int_equal(keel_quota_admit(&q, 60, 0, t), 0);
    assert_true(keel_quota_admit(&q, 60, 0, t) > 0);
}

static void test_unlimited(void **state)
{
    struct keel_quota q = {0};
    for (int i = 0; i < 100000; i++)
        assert_int_equal(keel_quota_admit(&q, 0, 0, 5), 0);
    keel_quota_spend(&q, 0, 1000000, 5);
    assert_int_equal(keel_quota_admit(&q, 0, 0, 5), 0);
}

static void test_high_rpm(void **state)
{
    struct keel_quota q = {0};
    for (int i = 0; i < 120000; i++)
        assert_int_equal(keel_quota_admit(&q, 120000, 0, 7), 0);
    assert_int_equal(keel_quota_admit(&q, 120000, 0, 7), 1); /* 0.5 ms, said as 1 */
}

static void test_tpm_charged_after_the_answer(void **state)
{
    struct keel_quota q = {0};
    uint64_t t = 500;
    assert_int_equal(keel_quota_admit(&q, 0, 1000, t), 0);
    keel_quota_spend(&q, 1000, 900, t); /* 0.9 of a minute's tokens */
    assert_int_equal(keel_quota_admit(&q, 0, 1000, t), 0);
    keel_quota_spend(&q, 1000, 600, t); /* 1.5 minutes ahead */
    assert_int_equal(keel_quota_admit(&q, 0, 1000, t), 30000);
    assert_int_equal(keel_quota_admit(&q, 0, 1000, t + 29999), 1);
    assert_int_equal(keel_quota_admit(&q, 0, 1000, t + 30000), 0);
    /* the longer of the two waits is said */
    struct keel_quota both = {0};
    keel_quota_spend(&both, 100, 300, 0);             /* 3 minutes of tokens */
    assert_int_equal(keel_quota_admit(&both, 1, 100, 0), 120000);
}

/* what another instance admitted counts here as if admitted here */
static void test_charge_from_elsewhere(void **state)
{
    struct keel_quota q = {0};
    keel_quota_charge(&q, 60, 59, 1000);
    assert_int_equal(keel_quota_admit(&q, 60, 0, 1000), 0); /* the 60th */
    assert_int_equal(keel_quota_admit(&q, 60, 0, 1000), 1000);
    keel_quota_charge(&q, 0, 1000, 1000); /* no limit: nothing to count */
    keel_quota_charge(&q, 60, 0, 1000);
    assert_int_equal(keel_quota_admit(&q, 60, 0, 2000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpm_burst_then_rate),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_high_rpm),
        cmocka_unit_test(test_tpm_charged_after_the_answer),
        cmocka_unit_test(test_charge_from_elsewhere),
    };
    return cmocka_run_group_tests_name("quota", tests, NULL, NULL);
}
