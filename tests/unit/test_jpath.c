/* test_jpath.c - a string found by a dotted path in a JSON answer (a control plane's data-plane
 * URL in its health answer): members, [key=value] selections with {model}, and everything that
 * does not lead to a string. */
#include "unit.h"

#include <string.h>

#include "core/jpath.h"

static long find(const char *json, const char *path, const char *model, char *out, size_t cap)
{
    struct keel_json root;
    assert_int_equal(keel_json_parse(json, strlen(json), &root), 0);
    return keel_jpath_string(root, path, model, out, cap);
}

static const char health[] =
    "{\"status\":\"ok\",\"all_models_loaded\":[{\"model_name\":\"a\",\"backend_url\":\"http://127.0.0.1:8001/v1\"},"
    "{\"model_name\":\"q\\\"x\",\"backend_url\":\"http://127.0.0.1:8002\"},{\"model_name\":\"a\",\"backend_url\":\"late\"}],"
    "\"nested\":{\"deep\":{\"url\":\"http://h\\/p\"}},\"n\":3}";

static void test_lemonade_health(void **state)
{
    char out[128];
    assert_int_equal(find(health, "all_models_loaded[model_name={model}].backend_url", "a", out, sizeof(out)), 24);
    assert_string_equal(out, "http://127.0.0.1:8001/v1"); /* the first match */
    assert_int_equal(find(health, "all_models_loaded[model_name={model}].backend_url", "q\"x", out, sizeof(out)), 21);
    assert_string_equal(out, "http://127.0.0.1:8002");
    assert_int_equal(find(health, "nested.deep.url", "a", out, sizeof(out)), 10);
    assert_string_equal(out, "http://h/p");
    assert_int_equal(find(health, "all_models_loaded[model_name=pre-{model}-post].backend_url", "a", out, sizeof(out)), -1);
}

static void test_what_leads_nowhere(void **state)
{
    char out[128];
    const char *model = "a";
    assert_int_equal(find(health, "all_models_loaded[model_name={model}].backend_url", "zz", out, sizeof(out)), -1);
    assert_int_equal(find(health, "n", model, out, sizeof(out)), -1);         /* no string */
    assert_int_equal(find(health, "status.x", model, out, sizeof(out)), -1);  /* into a string */
    assert_int_equal(find(health, "nested[k=v].url", model, out, sizeof(out)), -1); /* no array */
    assert_int_equal(find(health, "missing", model, out, sizeof(out)), -1);
    assert_int_equal(find(health, "all_models_loaded[model_name={model}].backend_url", "a", out, 10), -1); /* too long */
    assert_int_equal(find("[1]", "a", model, out, sizeof(out)), -1);
}

static void test_check(void **state)
{
    assert_int_equal(keel_jpath_check("all_models_loaded[model_name={model}].backend_url"), 0);
    assert_int_equal(keel_jpath_check("a.b.c"), 0);
    assert_int_equal(keel_jpath_check("a[k=]"), 0); /* an empty value matches "" */
    const char *bad[] = {"", ".a", "a.", "a..b", "a[", "a[k]", "a[=v]", "a[k=v", "a[k=v]b", "a b", "a[k=v=w]", "a[k=[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (keel_jpath_check(bad[i]) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(keel_jpath_check(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lemonade_health),
        cmocka_unit_test(test_what_leads_nowhere),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests_name("jpath", tests, NULL, NULL);
}
