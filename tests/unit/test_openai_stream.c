/* test_openai_stream.c - the OpenAI stream encoder (core/assemble.h, keel_openai_chat_encoder's
 * stream ops): events one by one into chat.completion.chunk frames, exactly as written here by
 * hand, each frame JSON; the role on a choice's first delta, a tool call named once, the usage
 * chunk and [DONE] at the end; caps refused with nothing half-written and the state unmoved.
 * Then OpenAI streams through the SSE parser and the OpenAI decoder into it, cut everywhere
 * (feed.h): it works from any kind. JSON is written with ' for " to stay readable. */
#include "unit.h"

#include <errno.h>
#include <string.h>

#include "core/event.h"
#include "feed.h"

static const struct keel_encoder_ops *const enc = &keel_openai_chat_encoder;

/* a span over a literal */
#define J(s) ((struct keel_json){s, sizeof(s) - 1})

#define EV_TEXT(k, c, lit) ((struct keel_ev){.kind = (k), .choice = (c), .u.text = {.s = J(lit)}})
#define EV_TOOL(c, i, ...) ((struct keel_ev){.kind = KEEL_EV_TOOL_CALL, .choice = (c), .u.tool = {.index = (i), __VA_ARGS__}})

/* ev into s appends exactly want_q (' for "), every frame JSON */
static void writes(struct keel_stream_enc *s, struct keel_ev ev, const char *want_q)
{
    static char want[4096];
    struct keel_buf out;
    size_t n = dq(want_q, want, sizeof(want));
    keel_buf_init(&out, FEED_BIG);
    assert_int_equal(enc->stream_event(s, &ev, &out), 0);
    assert_wrote(&out, want, n);
    assert_chunks(out.base, out.len);
    keel_buf_release(&out);
}

/* the end of s is exactly want_q */
static void ends(struct keel_stream_enc *s, const char *want_q)
{
    static char want[4096];
    struct keel_buf out;
    size_t n = dq(want_q, want, sizeof(want));
    keel_buf_init(&out, FEED_BIG);
    assert_int_equal(enc->stream_end(s, &out), 0);
    assert_wrote(&out, want, n);
    assert_chunks(out.base, out.len);
    keel_buf_release(&out);
}

#define HEAD "data: {'id':'m1','object':'chat.completion.chunk','created':42,'model':'claude-x','choices':["
#define CH(c, delta, lp, finish)                                                                                       \
    HEAD "{'index':" #c ",'delta':" delta ",'logprobs':" lp ",'finish_reason':" finish "}]}\n\n"

static void meta(struct keel_stream_enc *s)
{
    struct keel_ev ev = {.kind = KEEL_EV_META};
    ev.u.meta.id = J("\"m1\"");
    ev.u.meta.model = J("\"claude-x\"");
    ev.u.meta.created = J("42");
    writes(s, ev, "");
}

static void test_text_and_end(void **state)
{
    struct keel_stream_enc s;
    enc->stream_init(&s, 1);
    meta(&s);
    /* later META fields do not replace the first; null is none */
    struct keel_ev again = {.kind = KEEL_EV_META};
    again.u.meta.id = J("\"m2\"");
    again.u.meta.created = J("null");
    writes(&s, again, "");
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"Hi \\\"there\\\"\""), CH(0, "{'role':'assistant','content':'Hi \\'there\\''}",
                                                               "null", "null"));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"\""), "");
    writes(&s, EV_TEXT(KEEL_EV_REASONING, 0, "\"hm\""), CH(0, "{'reasoning_content':'hm'}", "null", "null"));
    struct keel_ev alt = EV_TEXT(KEEL_EV_REASONING, 0, "\"ok\"");
    alt.u.text.alt = 1;
    writes(&s, alt, CH(0, "{'reasoning':'ok'}", "null", "null"));
    writes(&s, EV_TEXT(KEEL_EV_REFUSAL, 0, "\"No.\""), CH(0, "{'refusal':'No.'}", "null", "null"));
    struct keel_ev fin = {.kind = KEEL_EV_FINISH, .u.finish = J("\"stop\"")};
    writes(&s, fin, CH(0, "{}", "null", "'stop'"));
    /* usage: the last counts; an error is the caller's */
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 7, 8, 15}, .raw = J("{}")}};
    writes(&s, u, "");
    u.u.usage.n = (struct keel_usage){1, 7, 9, 16};
    writes(&s, u, "");
    struct keel_ev err = {.kind = KEEL_EV_ERROR, .u.error = {.code = "x", .raw = J("{}")}};
    writes(&s, err, "");
    ends(&s, HEAD "],'usage':{'prompt_tokens':7,'completion_tokens':9,'total_tokens':16}}\n\n"
                  "data: [DONE]\n\n");
}

static void test_role(void **state)
{
    struct keel_stream_enc s;
    enc->stream_init(&s, 0);
    meta(&s);
    /* a role event goes out alone, once; an empty text before any role carries the role alone */
    struct keel_ev role = {.kind = KEEL_EV_ROLE, .u.role = J("\"assistant\"")};
    writes(&s, role, CH(0, "{'role':'assistant'}", "null", "null"));
    writes(&s, role, "");
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"a\""), CH(0, "{'content':'a'}", "null", "null"));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 1, "\"\""), CH(1, "{'role':'assistant'}", "null", "null"));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 1, "\"\""), "");
    /* a finish or logprobs carry no role: the choice's next delta does */
    struct keel_ev fin = {.kind = KEEL_EV_FINISH, .choice = 2, .u.finish = J("\"length\"")};
    writes(&s, fin, CH(2, "{}", "null", "'length'"));
    struct keel_ev lp = {.kind = KEEL_EV_LOGPROBS, .choice = 2};
    lp.u.logprobs.content = J("[{\"token\":\"a\",\"logprob\":-1}]");
    lp.u.logprobs.refusal = J("null");
    writes(&s, lp, CH(2, "{}", "{'content':[{'token':'a','logprob':-1}],'refusal':null}", "null"));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 2, "\"z\""), CH(2, "{'role':'assistant','content':'z'}", "null", "null"));
    /* no usage asked for: the end is [DONE] alone */
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 1, 1, 2}}};
    writes(&s, u, "");
    ends(&s, "data: [DONE]\n\n");
}

static void test_tool_calls(void **state)
{
    struct keel_stream_enc s;
    enc->stream_init(&s, 1);
    meta(&s);
    /* named once: the id when one came, type "function", the name ("" when none came) */
    writes(&s, EV_TOOL(0, 0, .id = J("\"toolu_1\""), .name = J("\"f\"")),
           CH(0, "{'role':'assistant','tool_calls':[{'index':0,'id':'toolu_1','type':'function','function':"
                 "{'name':'f','arguments':''}}]}", "null", "null"));
    writes(&s, EV_TOOL(0, 0, .args = J("\"\"")), "");
    writes(&s, EV_TOOL(0, 0, .args = J("\"{\\\"a\"")),
           CH(0, "{'tool_calls':[{'index':0,'function':{'arguments':'{\\'a'}}]}", "null", "null"));
    /* a server that repeats the call's id and name: only the arguments go out again */
    writes(&s, EV_TOOL(0, 0, .id = J("\"toolu_1\""), .type = J("\"function\""), .name = J("\"f\""),
                       .args = J("\"\\\":1}\"")),
           CH(0, "{'tool_calls':[{'index':0,'function':{'arguments':'\\':1}'}}]}", "null", "null"));
    writes(&s, EV_TOOL(0, 3, .args = J("\"[]\"")),
           CH(0, "{'tool_calls':[{'index':3,'type':'function','function':{'name':'','arguments':'[]'}}]}", "null",
              "null"));
    /* raw arguments (a whole Anthropic answer's input) go out escaped into the string */
    writes(&s, EV_TOOL(0, 4, .id = J("\"toolu_4\""), .name = J("\"g\""), .args = J("{\"q\": \"a\\\"b\",\n\t\"x\":\x01}"),
                       .args_raw = 1),
           CH(0, "{'tool_calls':[{'index':4,'id':'toolu_4','type':'function','function':{'name':'g','arguments':"
                 "'{\\'q\\': \\'a\\\\\\'b\\',\\n\\t\\'x\\':\\u0001}'}}]}", "null", "null"));
    /* no usage came: none made up */
    ends(&s, "data: [DONE]\n\n");
}

/* the defaults when no META came: core reads no clock, so created is 0 */
static void test_no_meta(void **state)
{
    struct keel_stream_enc s;
    enc->stream_init(&s, 0);
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"x\""),
           "data: {'id':'','object':'chat.completion.chunk','created':0,'model':'','choices':[{'index':0,'delta':"
           "{'role':'assistant','content':'x'},'logprobs':null,'finish_reason':null}]}\n\n");
}

/* Refused: an index past the limit, an id past its room, the output's cap. Nothing is written
 * then, and nothing moves: the same event with room writes what it would have. */
static void test_limits(void **state)
{
    struct keel_stream_enc s;
    struct keel_buf out;
    char id[300];
    enc->stream_init(&s, 1);
    keel_buf_init(&out, 1);
    assert_int_equal(keel_buf_append(&out, "x", 1), 0);
    struct keel_ev text = EV_TEXT(KEEL_EV_TEXT, KEEL_STREAM_MAX_INDEX, "\"x\"");
    assert_int_equal(enc->stream_event(&s, &text, &out), -ENOBUFS);
    struct keel_ev tool = EV_TOOL(0, KEEL_STREAM_MAX_INDEX, .args = J("\"\""));
    assert_int_equal(enc->stream_event(&s, &tool, &out), -ENOBUFS);
    memset(id, 'a', sizeof(id));
    id[0] = id[sizeof(id) - 1] = '"';
    struct keel_ev m = {.kind = KEEL_EV_META};
    m.u.meta.id = (struct keel_json){id, sizeof(id)};
    m.u.meta.model = J("\"kept-not\"");
    assert_int_equal(enc->stream_event(&s, &m, &out), -ENOBUFS);
    assert_int_equal(s.model_len, 0); /* all or none */
    meta(&s);
    text.choice = KEEL_STREAM_MAX_INDEX - 1;
    assert_int_equal(enc->stream_event(&s, &text, &out), -ENOBUFS);
    tool.u.tool.index = KEEL_STREAM_MAX_INDEX - 1;
    tool.u.tool.name = J("\"f\"");
    assert_int_equal(enc->stream_event(&s, &tool, &out), -ENOBUFS);
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 1, 2, 3}}};
    assert_int_equal(enc->stream_event(&s, &u, &out), 0);
    assert_int_equal(enc->stream_end(&s, &out), -ENOBUFS);
    assert_int_equal(out.len, 1);
    assert_memory_equal(out.base, "x", 1);
    keel_buf_release(&out);
    writes(&s, text, CH(127, "{'role':'assistant','content':'x'}", "null", "null"));
    writes(&s, tool, CH(0, "{'role':'assistant','tool_calls':[{'index':127,'type':'function','function':"
                           "{'name':'f','arguments':''}}]}", "null", "null"));
    ends(&s, HEAD "],'usage':{'prompt_tokens':1,'completion_tokens':2,'total_tokens':3}}\n\ndata: [DONE]\n\n");
}

/* ---- OpenAI streams through it ---- */

#define M1 "{'id':'chatcmpl-1','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o-2024-08-06'," \
           "'service_tier':'default','system_fingerprint':'fp_f5','choices':"
#define H1 "data: {'id':'chatcmpl-1','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o-2024-08-06'," \
           "'choices':["
#define DATA(s) "data: " s "\n\n"

static void test_openai_text(void **state)
{
    static const char stream[] =
        DATA(M1 "[{'index':0,'delta':{'role':'assistant','content':'','refusal':null},'logprobs':null,"
                "'finish_reason':null}],'usage':null}")
        ": keep-alive\n\n"
        DATA(M1 "[{'index':0,'delta':{'content':'Hello'},'logprobs':null,'finish_reason':null}],'usage':null}")
        DATA(M1 "[{'index':0,'delta':{'content':' world'},'logprobs':null,'finish_reason':null}],'usage':null}")
        DATA(M1 "[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}],'usage':null}")
        DATA(M1 "[],'usage':{'prompt_tokens':9,'completion_tokens':2,'total_tokens':11,'prompt_tokens_details':"
                "{'cached_tokens':0}}}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM, 1, stream, "IPPIID", "",
               H1 "{'index':0,'delta':{'role':'assistant'},'logprobs':null,'finish_reason':null}]}\n\n"
               H1 "{'index':0,'delta':{'content':'Hello'},'logprobs':null,'finish_reason':null}]}\n\n"
               H1 "{'index':0,'delta':{'content':' world'},'logprobs':null,'finish_reason':null}]}\n\n"
               H1 "{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}]}\n\n"
               H1 "],'usage':{'prompt_tokens':9,'completion_tokens':2,'total_tokens':11}}\n\n"
               "data: [DONE]\n\n");
}

#define M2 "{'id':'c2','object':'chat.completion.chunk','created':7,'model':'gpt-4o','choices':[{'index':0,'delta':"
#define H2 "data: {'id':'c2','object':'chat.completion.chunk','created':7,'model':'gpt-4o','choices':[{'index':0,"    \
           "'delta':"
#define CALL(i, rest) "{'tool_calls':[{'index':" #i rest "}]}"
#define NOTHING_YET ",'logprobs':null,'finish_reason':null}]}\n\n"

static void test_openai_tool_calls(void **state)
{
    static const char stream[] =
        DATA(M2 "{'role':'assistant','content':null,'tool_calls':[{'index':0,'id':'call_a','type':'function',"
                "'function':{'name':'get_weather','arguments':''}}]}}]}")
        DATA(M2 CALL(0, ",'function':{'arguments':'{\\'ci'}") "}]}")
        DATA(M2 CALL(1, ",'id':'call_b','type':'function','function':{'name':'get_time','arguments':''}") "}]}")
        DATA(M2 CALL(1, ",'function':{'arguments':'{}'}") "}]}")
        DATA(M2 CALL(0, ",'id':'call_a','type':'function','function':{'name':'get_weather','arguments':'ty\\'}'}") "}]}")
        DATA(M2 "{},'finish_reason':'tool_calls'}]}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM, 1, stream, "PPPPPID", "",
               H2 "{'role':'assistant'}" NOTHING_YET
               H2 CALL(0, ",'id':'call_a','type':'function','function':{'name':'get_weather','arguments':''}")
                  NOTHING_YET
               H2 CALL(0, ",'function':{'arguments':'{\\'ci'}") NOTHING_YET
               H2 CALL(1, ",'id':'call_b','type':'function','function':{'name':'get_time','arguments':''}")
                  NOTHING_YET
               H2 CALL(1, ",'function':{'arguments':'{}'}") NOTHING_YET
               H2 CALL(0, ",'function':{'arguments':'ty\\'}'}") NOTHING_YET
               H2 "{},'logprobs':null,'finish_reason':'tool_calls'}]}\n\n"
               "data: [DONE]\n\n");
}

#define M3 "{'id':'c3','object':'chat.completion.chunk','created':5,'model':'m','choices':"
#define H3(i) "data: {'id':'c3','object':'chat.completion.chunk','created':5,'model':'m','choices':[{'index':" #i  \
              ",'delta':"

static void test_openai_choices_and_logprobs(void **state)
{
    static const char stream[] =
        DATA(M3 "[{'index':1,'delta':{'role':'assistant','content':'B'},'logprobs':{'content':[{'token':'B',"
                "'logprob':-0.5}],'refusal':null},'finish_reason':null},{'index':0,'delta':{'content':'A'},"
                "'logprobs':null,'finish_reason':'stop'}]}")
        DATA(M3 "[{'index':1,'delta':{'refusal':'no'},'finish_reason':'stop'}],'usage':{'prompt_tokens':1,"
                "'completion_tokens':2,'total_tokens':3}}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM, 1, stream, "PPD", "",
               H3(1) "{'role':'assistant'}" NOTHING_YET
               H3(1) "{'content':'B'}" NOTHING_YET
               H3(1) "{},'logprobs':{'content':[{'token':'B','logprob':-0.5}],'refusal':null},'finish_reason':null}]}"
                     "\n\n"
               H3(0) "{'role':'assistant','content':'A'}" NOTHING_YET
               H3(0) "{},'logprobs':null,'finish_reason':'stop'}]}\n\n"
               H3(1) "{'refusal':'no'}" NOTHING_YET
               H3(1) "{},'logprobs':null,'finish_reason':'stop'}]}\n\n"
               "data: {'id':'c3','object':'chat.completion.chunk','created':5,'model':'m','choices':[],'usage':"
               "{'prompt_tokens':1,'completion_tokens':2,'total_tokens':3}}\n\n"
               "data: [DONE]\n\n");
}

/* ---- a whole Anthropic answer, as a stream ---- */

static int to_stream(void *ctx, const struct keel_ev *ev)
{
    void **pair = ctx;
    return enc->stream_event(pair[0], ev, pair[1]);
}

static void test_anthropic_body(void **state)
{
    static char text[1024], want[2048];
    struct keel_stream_enc s;
    struct keel_buf out;
    struct keel_decoder d;
    void *pair[] = {&s, &out};
    size_t len = dq("{'id':'msg_5','type':'message','role':'assistant','model':'claude-x','content':[{'type':'text',"
                    "'text':'Sure.'},{'type':'tool_use','id':'toolu_5','name':'f','input':{'a': 'b'}}],"
                    "'stop_reason':'tool_use','usage':{'input_tokens':4,'output_tokens':5}}",
                    text, sizeof(text));
    size_t n = dq("data: {'id':'msg_5','object':'chat.completion.chunk','created':0,'model':'claude-x','choices':["
                  "{'index':0,'delta':{'role':'assistant','content':'Sure.'},'logprobs':null,'finish_reason':null}]}"
                  "\n\n"
                  "data: {'id':'msg_5','object':'chat.completion.chunk','created':0,'model':'claude-x','choices':["
                  "{'index':0,'delta':{'tool_calls':[{'index':0,'id':'toolu_5','type':'function','function':"
                  "{'name':'f','arguments':'{\\'a\\': \\'b\\'}'}}]},'logprobs':null,'finish_reason':null}]}\n\n"
                  "data: {'id':'msg_5','object':'chat.completion.chunk','created':0,'model':'claude-x','choices':["
                  "{'index':0,'delta':{},'logprobs':null,'finish_reason':'tool_calls'}]}\n\n"
                  "data: {'id':'msg_5','object':'chat.completion.chunk','created':0,'model':'claude-x','choices':[],"
                  "'usage':{'prompt_tokens':4,'completion_tokens':5,'total_tokens':9}}\n\n"
                  "data: [DONE]\n\n",
                  want, sizeof(want));
    enc->stream_init(&s, 1);
    keel_buf_init(&out, FEED_BIG);
    keel_decoder_init(&d, &keel_anthropic_decoder, to_stream, pair);
    assert_int_equal(d.ops->body(&d, text, len, NULL, 0, NULL), KEEL_ANSWER_OK);
    assert_int_equal(d.rv, 0);
    assert_int_equal(enc->stream_end(&s, &out), 0);
    assert_wrote(&out, want, n);
    assert_chunks(out.base, out.len);
    keel_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_and_end),
        cmocka_unit_test(test_role),
        cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_no_meta),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_openai_text),
        cmocka_unit_test(test_openai_tool_calls),
        cmocka_unit_test(test_openai_choices_and_logprobs),
        cmocka_unit_test(test_anthropic_body),
    };
    return cmocka_run_group_tests_name("openai_stream", tests, NULL, NULL);
}
