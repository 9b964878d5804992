/* test_continue.c - continuing a broken stream: what the told keeps of the events that went out
 * and what rules a continuation out, the prefill request in each protocol (Anthropic's trailing
 * whitespace, the client's own prefill extended, continuation_body, thinking left out), and the
 * splice (reasoning and pre-content events dropped, the whitespace the prefill lost not said
 * twice, in every escape it may come in). */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/continue.h"

#define J(s) ((struct keel_json){(s), sizeof(s) - 1})

static struct keel_ev text_ev(enum keel_ev_kind kind, uint32_t choice, struct keel_json s)
{
    struct keel_ev ev = {.kind = kind, .choice = choice};
    ev.u.text.s = s;
    return ev;
}

static void test_told_keeps_choice_0_text_decoded(void **state)
{
    struct keel_told t;
    keel_told_init(&t, 1 << 20);
    struct keel_ev a = text_ev(KEEL_EV_TEXT, 0, J("\"Hel\""));
    struct keel_ev b = text_ev(KEEL_EV_TEXT, 0, J("\"lo\\n\\u00e9 \\\"x\\\"\""));
    struct keel_ev reasoning = text_ev(KEEL_EV_REASONING, 0, J("\"hmm\""));
    struct keel_ev empty = text_ev(KEEL_EV_TEXT, 0, J("\"\""));
    assert_int_equal(keel_told_event(&t, &a), 0);
    assert_int_equal(keel_told_event(&t, &reasoning), 0);
    assert_int_equal(keel_told_event(&t, &empty), 0);
    assert_int_equal(keel_told_event(&t, &b), 0);
    assert_int_equal(t.text.len, strlen("Hello\n\xc3\xa9 \"x\""));
    assert_memory_equal(t.text.base, "Hello\n\xc3\xa9 \"x\"", t.text.len);
    assert_null(keel_told_blocker(&t));
    keel_told_release(&t);
    assert_int_equal(t.text.len, 0);
    assert_null(keel_told_blocker(&t));
    keel_told_release(&t);
}

static void test_told_blockers(void **state)
{
    struct keel_told t;
    struct keel_ev tool = {.kind = KEEL_EV_TOOL_CALL};
    struct keel_ev refusal = text_ev(KEEL_EV_REFUSAL, 0, J("\"no\""));
    struct keel_ev other = text_ev(KEEL_EV_TEXT, 1, J("\"hi\""));
    struct keel_ev finish = {.kind = KEEL_EV_FINISH};
    struct keel_ev nul = text_ev(KEEL_EV_TEXT, 0, J("\"a\\u0000\""));
    struct keel_ev big = text_ev(KEEL_EV_TEXT, 0, J("\"0123456789\""));
    const struct keel_ev *evs[] = {&tool, &refusal, &other, &finish, &nul, &big};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        keel_told_init(&t, 8);
        keel_told_event(&t, evs[i]);
        assert_non_null(keel_told_blocker(&t));
        keel_told_release(&t);
    }
    /* an empty refusal says nothing */
    keel_told_init(&t, 8);
    struct keel_ev none = text_ev(KEEL_EV_REFUSAL, 0, J("\"\""));
    keel_told_event(&t, &none);
    assert_null(keel_told_blocker(&t));
    keel_told_release(&t);
}

static char *prefill(const char *body, const char *kind, const char *text, const char *extra, size_t *trimmed)
{
    size_t len;
    char *out = keel_prefill_body(body, strlen(body), kind, text, strlen(text), extra, &len, trimmed);
    if (out != NULL)
        assert_int_equal(len, strlen(out));
    return out;
}

static void test_prefill_openai_appends_the_assistant(void **state)
{
    size_t trimmed;
    char *b = prefill("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}", "openai",
                      "Hello fr ", "{\"continue_final_message\":true,\"add_generation_prompt\":false}", &trimmed);
    assert_string_equal(b, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
                           "\"content\":\"Hello fr \"}],\"stream\":true,\"continue_final_message\":true,"
                           "\"add_generation_prompt\":false}");
    assert_int_equal(trimmed, 0); /* only Anthropic refuses trailing whitespace */
    free(b);
    /* nothing said yet (reasoning only): the request as it was */
    b = prefill("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "openai", "", NULL, &trimmed);
    assert_string_equal(b, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    free(b);
}

static void test_prefill_anthropic_trims_and_drops_thinking(void **state)
{
    size_t trimmed;
    char *b = prefill("{\"model\":\"m\",\"max_tokens\":9,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}",
                      "anthropic", "Hello from \n", NULL, &trimmed);
    assert_string_equal(b, "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                           "{\"role\":\"assistant\",\"content\":\"Hello from\"}],\"stream\":true}");
    assert_int_equal(trimmed, 2);
    free(b);
    /* only whitespace: no prefill message at all */
    b = prefill("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "anthropic", " \n\t", NULL, &trimmed);
    assert_string_equal(b, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(trimmed, 3);
    free(b);
}

static void test_prefill_extends_the_clients_own(void **state)
{
    size_t trimmed;
    char *b = prefill("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"{\"}]}",
                      "anthropic", "\"a\": 1", NULL, &trimmed);
    assert_string_equal(b, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
                           "\"content\":\"{\\\"a\\\": 1\"}]}");
    free(b);
    b = prefill("{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Sure\"}]}]}", "anthropic",
                ", here", NULL, &trimmed);
    assert_string_equal(b, "{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Sure\"},"
                           "{\"type\":\"text\",\"text\":\", here\"}]}]}");
    free(b);
    b = prefill("{\"messages\":[{\"role\":\"assistant\",\"content\":null}]}", "openai", "x", NULL, &trimmed);
    assert_string_equal(b, "{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]}");
    free(b);
}

static void test_prefill_refuses_what_it_cannot_build(void **state)
{
    size_t trimmed;
    assert_null(prefill("{\"model\":\"m\"}", "openai", "x", NULL, &trimmed));
    assert_null(prefill("not json", "openai", "x", NULL, &trimmed));
    assert_null(prefill("{\"messages\":[]}", "openai", "x", "[1]", &trimmed));
    char *b = prefill("{\"messages\":[]}", "openai", "x\xc3", NULL, &trimmed); /* not UTF-8 */
    assert_null(b);
}

/* the splice on one event: its verdict, and the text that goes on ("" when dropped) */
static int splice(struct keel_splice *s, struct keel_ev ev, char *said, size_t cap)
{
    struct keel_buf lit;
    struct keel_ev out;
    keel_buf_init(&lit, 1 << 16);
    int v = keel_splice_event(s, &ev, &out, &lit);
    const struct keel_ev *e = v == KEEL_SPLICE_EDIT ? &out : &ev;
    said[0] = '\0';
    if (v != KEEL_SPLICE_DROP && (e->kind == KEEL_EV_TEXT || e->kind == KEEL_EV_REFUSAL))
        snprintf(said, cap, "%.*s", (int)e->u.text.s.len, e->u.text.s.p);
    keel_buf_release(&lit);
    return v;
}

static void test_splice_drops_reasoning_and_what_precedes_content(void **state)
{
    struct keel_splice s;
    char said[64];
    keel_splice_init(&s, "", 0);
    struct keel_ev meta = {.kind = KEEL_EV_META}, role = {.kind = KEEL_EV_ROLE}, finish = {.kind = KEEL_EV_FINISH};
    struct keel_ev usage = {.kind = KEEL_EV_USAGE}, logprobs = {.kind = KEEL_EV_LOGPROBS}, err = {.kind = KEEL_EV_ERROR};
    assert_int_equal(splice(&s, meta, said, sizeof(said)), KEEL_SPLICE_PASS);
    assert_int_equal(splice(&s, role, said, sizeof(said)), KEEL_SPLICE_DROP);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_REASONING, 0, J("\"think\"")), said, sizeof(said)), KEEL_SPLICE_DROP);
    assert_int_equal(splice(&s, usage, said, sizeof(said)), KEEL_SPLICE_DROP);
    assert_int_equal(splice(&s, logprobs, said, sizeof(said)), KEEL_SPLICE_DROP);
    assert_int_equal(splice(&s, finish, said, sizeof(said)), KEEL_SPLICE_DROP); /* no text yet */
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\"\"")), said, sizeof(said)), KEEL_SPLICE_DROP);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 1, J("\"b\"")), said, sizeof(said)), KEEL_SPLICE_DROP);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\"om the\"")), said, sizeof(said)), KEEL_SPLICE_PASS);
    assert_string_equal(said, "\"om the\"");
    assert_int_equal(splice(&s, text_ev(KEEL_EV_REASONING, 0, J("\"more\"")), said, sizeof(said)), KEEL_SPLICE_DROP);
    assert_int_equal(splice(&s, usage, said, sizeof(said)), KEEL_SPLICE_PASS);
    assert_int_equal(splice(&s, logprobs, said, sizeof(said)), KEEL_SPLICE_PASS);
    assert_int_equal(splice(&s, finish, said, sizeof(said)), KEEL_SPLICE_PASS);
    assert_int_equal(splice(&s, err, said, sizeof(said)), KEEL_SPLICE_DROP);
}

static void test_splice_tool_call_or_refusal_is_content(void **state)
{
    struct keel_splice s;
    char said[64];
    struct keel_ev tool = {.kind = KEEL_EV_TOOL_CALL}, finish = {.kind = KEEL_EV_FINISH};
    keel_splice_init(&s, " ", 1);
    assert_int_equal(splice(&s, tool, said, sizeof(said)), KEEL_SPLICE_PASS);
    assert_int_equal(splice(&s, finish, said, sizeof(said)), KEEL_SPLICE_PASS);
    keel_splice_init(&s, "", 0);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_REFUSAL, 0, J("\"no\"")), said, sizeof(said)), KEEL_SPLICE_PASS);
    assert_int_equal(splice(&s, finish, said, sizeof(said)), KEEL_SPLICE_PASS);
}

/* the prefill lost " \n": the continuation may say it again, in any escape, in any cut */
static void test_splice_skips_the_whitespace_the_prefill_lost(void **state)
{
    struct keel_splice s;
    char said[64];
    keel_splice_init(&s, " \n", 2);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\" \\nthe\"")), said, sizeof(said)), KEEL_SPLICE_EDIT);
    assert_string_equal(said, "\"the\"");
    /* once content went on, whitespace is the model's own */
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\" \\n\"")), said, sizeof(said)), KEEL_SPLICE_PASS);

    keel_splice_init(&s, " \n", 2);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\"\\u0020\"")), said, sizeof(said)), KEEL_SPLICE_DROP);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\"\\u000Ax\"")), said, sizeof(said)), KEEL_SPLICE_EDIT);
    assert_string_equal(said, "\"x\"");

    /* it says something else first: nothing is cut, ever */
    keel_splice_init(&s, " \n", 2);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\"the\"")), said, sizeof(said)), KEEL_SPLICE_PASS);
    keel_splice_init(&s, " \n", 2);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\" the\"")), said, sizeof(said)), KEEL_SPLICE_EDIT);
    assert_string_equal(said, "\"the\""); /* the space was said, the newline was not: "the" follows " \n" */
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\"\\n\"")), said, sizeof(said)), KEEL_SPLICE_PASS);

    /* a literal that is only an escape of another character */
    keel_splice_init(&s, " ", 1);
    assert_int_equal(splice(&s, text_ev(KEEL_EV_TEXT, 0, J("\"\\\"q\\\"\"")), said, sizeof(said)), KEEL_SPLICE_PASS);
    assert_string_equal(said, "\"\\\"q\\\"\"");
}

static void test_splice_remembers_at_most_its_room(void **state)
{
    char ws[KEEL_SPLICE_WS + 10];
    memset(ws, '\n', 10);
    memset(ws + 10, ' ', KEEL_SPLICE_WS);
    struct keel_splice s;
    keel_splice_init(&s, ws, sizeof(ws));
    assert_int_equal(s.nws, KEEL_SPLICE_WS);
    assert_int_equal(s.ws[0], ' '); /* the run's end: what was said just before the cut */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_told_keeps_choice_0_text_decoded),
        cmocka_unit_test(test_told_blockers),
        cmocka_unit_test(test_prefill_openai_appends_the_assistant),
        cmocka_unit_test(test_prefill_anthropic_trims_and_drops_thinking),
        cmocka_unit_test(test_prefill_extends_the_clients_own),
        cmocka_unit_test(test_prefill_refuses_what_it_cannot_build),
        cmocka_unit_test(test_splice_drops_reasoning_and_what_precedes_content),
        cmocka_unit_test(test_splice_tool_call_or_refusal_is_content),
        cmocka_unit_test(test_splice_skips_the_whitespace_the_prefill_lost),
        cmocka_unit_test(test_splice_remembers_at_most_its_room),
    };
    return cmocka_run_group_tests_name("continue", tests, NULL, NULL);
}
