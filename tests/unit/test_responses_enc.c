/* test_responses_enc.c - the OpenAI Responses API encoder (core/assemble.h, keel_responses_encoder):
 * events one by one into named, numbered SSE events, exactly as written here by hand, every frame
 * JSON whose type is its name and whose sequence_number is its place, in an order the protocol
 * allows (feed.h's assert_responses); under every smaller cap of out each call is refused with
 * nothing written and the state unmoved; under every smaller cap of memory a stream is refused
 * with -ENOBUFS, out as it was, and given back whole by stream_release (ASan). A closed item's
 * arguments are refused. The whole Response from an assembly. Then OpenAI and Anthropic streams
 * through the SSE parser and their decoders into both, cut everywhere (feed.h). JSON is written
 * with ' for " to stay readable; \' is an escaped quote. */
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/event.h"
#include "feed.h"

static const struct keel_encoder_ops *const enc = &keel_responses_encoder;

/* a span over a literal */
#define J(s) ((struct keel_json){s, sizeof(s) - 1})

#define EV_TEXT(k, c, lit) ((struct keel_ev){.kind = (k), .choice = (c), .u.text = {.s = J(lit)}})
#define EV_TOOL(c, i, ...)                                                                                             \
    ((struct keel_ev){.kind = KEEL_EV_TOOL_CALL, .choice = (c), .u.tool = {.index = (i), __VA_ARGS__}})
#define EV_FINISH(c, lit) ((struct keel_ev){.kind = KEEL_EV_FINISH, .choice = (c), .u.finish = J(lit)})

/* ---- the frames, as OpenAI writes them ---- */

#define FRAME(type, body, seq) "event: " type "\ndata: {'type':'" type "'" body ",'sequence_number':" #seq "}\n\n"

#define RESPONSE(tail, created, model, status, details, output, usage)                                                 \
    "{'id':'resp_" tail "','object':'response','created_at':" #created ",'status':'" status "','error':null,"      \
    "'incomplete_details':" details ",'instructions':null,'metadata':{},'model':'" model "','output':[" output    \
    "],'parallel_tool_calls':true,'temperature':null,'tool_choice':'auto','tools':[],'top_p':null,'usage':" usage \
    "}"
#define PROGRESS(tail, created, model) RESPONSE(tail, created, model, "in_progress", "null", "", "null")
#define COMPLETED_(tail, created, model, output, usage) RESPONSE(tail, created, model, "completed", "null", output, usage)
#define INCOMPLETE_(tail, created, model, reason, output, usage)                                                       \
    RESPONSE(tail, created, model, "incomplete", "{'reason':'" reason "'}", output, usage)
#define USAGE(i, o, t)                                                                                                 \
    "{'input_tokens':" #i ",'input_tokens_details':{'cached_tokens':0},'output_tokens':" #o                          \
    ",'output_tokens_details':{'reasoning_tokens':0},'total_tokens':" #t "}"

#define START_(tail, created, model)                                                                                    \
    FRAME("response.created", ",'response':" PROGRESS(tail, created, model), 0)                                     \
    FRAME("response.in_progress", ",'response':" PROGRESS(tail, created, model), 1)
/* the head (tail, created, model) may come as one macro of three */
#define START(...) START_(__VA_ARGS__)
#define COMPLETED(...) COMPLETED_(__VA_ARGS__)
#define INCOMPLETE(...) INCOMPLETE_(__VA_ARGS__)
#define END(seq, response) FRAME("response.completed", ",'response':" response, seq)
#define CUT(seq, response) FRAME("response.incomplete", ",'response':" response, seq)

/* items whole */
#define PART_TEXT(t) "{'type':'output_text','text':'" t "','annotations':[]}"
#define PART_REFUSAL(t) "{'type':'refusal','refusal':'" t "'}"
#define MESSAGE(id, status, parts)                                                                                     \
    "{'type':'message','id':'" id "','status':'" status "','role':'assistant','content':[" parts "]}"
#define REASONING(id, t) "{'type':'reasoning','id':'" id "','summary':[{'type':'summary_text','text':'" t "'}]}"
#define CALL(id, call, name, args, status)                                                                             \
    "{'type':'function_call','id':'" id "','call_id':'" call "','name':'" name "','arguments':'" args             \
    "','status':'" status "'}"

/* frames about item n, its id `id` */
#define ABOUT(id, n) ",'item_id':'" id "','output_index':" #n
#define ADDED(n, item, seq) FRAME("response.output_item.added", ",'output_index':" #n ",'item':" item, seq)
#define ITEM_DONE(n, item, seq) FRAME("response.output_item.done", ",'output_index':" #n ",'item':" item, seq)
#define MESSAGE_ADDED(id, n, seq)                                                                                      \
    ADDED(n, "{'type':'message','id':'" id "','status':'in_progress','role':'assistant','content':[]}", seq)

#define TEXT_OPEN(id, n, s1, s2)                                                                                       \
    MESSAGE_ADDED(id, n, s1)                                                                                           \
    FRAME("response.content_part.added", ABOUT(id, n) ",'content_index':0,'part':" PART_TEXT(""), s2)
#define TEXT_DELTA(id, n, d, seq)                                                                                      \
    FRAME("response.output_text.delta", ABOUT(id, n) ",'content_index':0,'delta':'" d "','logprobs':[]", seq)
#define TEXT_CLOSE(id, n, t, status, s1, s2, s3)                                                                       \
    FRAME("response.output_text.done", ABOUT(id, n) ",'content_index':0,'text':'" t "','logprobs':[]", s1)         \
    FRAME("response.content_part.done", ABOUT(id, n) ",'content_index':0,'part':" PART_TEXT(t), s2)                \
    ITEM_DONE(n, MESSAGE(id, status, PART_TEXT(t)), s3)

#define REFUSAL_OPEN(id, n, s1, s2)                                                                                    \
    MESSAGE_ADDED(id, n, s1)                                                                                           \
    FRAME("response.content_part.added", ABOUT(id, n) ",'content_index':0,'part':" PART_REFUSAL(""), s2)
#define REFUSAL_DELTA(id, n, d, seq) FRAME("response.refusal.delta", ABOUT(id, n) ",'content_index':0,'delta':'" d "'", seq)
#define REFUSAL_CLOSE(id, n, t, status, s1, s2, s3)                                                                    \
    FRAME("response.refusal.done", ABOUT(id, n) ",'content_index':0,'refusal':'" t "'", s1)                          \
    FRAME("response.content_part.done", ABOUT(id, n) ",'content_index':0,'part':" PART_REFUSAL(t), s2)             \
    ITEM_DONE(n, MESSAGE(id, status, PART_REFUSAL(t)), s3)

#define RS_OPEN(id, n, s1, s2)                                                                                         \
    ADDED(n, "{'type':'reasoning','id':'" id "','summary':[]}", s1)                                                   \
    FRAME("response.reasoning_summary_part.added",                                                                    \
          ABOUT(id, n) ",'summary_index':0,'part':{'type':'summary_text','text':''}", s2)
#define RS_DELTA(id, n, d, seq)                                                                                        \
    FRAME("response.reasoning_summary_text.delta", ABOUT(id, n) ",'summary_index':0,'delta':'" d "'", seq)
#define RS_CLOSE(id, n, t, s1, s2, s3)                                                                                 \
    FRAME("response.reasoning_summary_text.done", ABOUT(id, n) ",'summary_index':0,'text':'" t "'", s1)             \
    FRAME("response.reasoning_summary_part.done",                                                                     \
          ABOUT(id, n) ",'summary_index':0,'part':{'type':'summary_text','text':'" t "'}", s2)                        \
    ITEM_DONE(n, REASONING(id, t), s3)

#define FC_OPEN(id, n, call, name, seq)                                                                                \
    ADDED(n,                                                                                                           \
          "{'type':'function_call','id':'" id "','call_id':'" call "','name':'" name                               \
          "','arguments':'','status':'in_progress'}",                                                                 \
          seq)
#define FC_DELTA(id, n, d, seq) FRAME("response.function_call_arguments.delta", ABOUT(id, n) ",'delta':'" d "'", seq)
#define FC_CLOSE(id, n, call, name, args, status, s1, s2)                                                              \
    FRAME("response.function_call_arguments.done", ABOUT(id, n) ",'name':'" name "','arguments':'" args "'", s1)  \
    ITEM_DONE(n, CALL(id, call, name, args, status), s2)

/* ---- events one by one ---- */

/* everything the stream under test wrote so far: one whole stream at its end */
static struct keel_buf told;

static void begin(struct keel_stream_enc *s, long long created_at)
{
    enc->stream_init(s, 0);
    s->created_at = created_at;
    keel_buf_release(&told);
    keel_buf_init(&told, FEED_BIG);
}

/* call (stream_event with ev, or stream_end when ev is NULL) appends exactly want_q (' for "),
 * every frame JSON; and before that, under every cap that leaves less room than it needs, it is
 * refused with -ENOBUFS, out as it was and s unmoved */
static void call_writes(struct keel_stream_enc *s, const struct keel_ev *ev, const char *want_q)
{
    static char want[16384];
    static struct keel_stream_enc was;
    struct keel_buf out;
    size_t n = dq(want_q, want, sizeof(want));
    for (size_t room = 0; room < n; room++) {
        keel_buf_init(&out, 1 + room);
        assert_int_equal(keel_buf_append(&out, "x", 1), 0);
        memcpy(&was, s, sizeof(was));
        assert_int_equal(ev != NULL ? enc->stream_event(s, ev, &out) : enc->stream_end(s, &out), -ENOBUFS);
        assert_int_equal(out.len, 1);
        assert_memory_equal(out.base, "x", 1);
        assert_memory_equal(&was, s, sizeof(was));
        keel_buf_release(&out);
    }
    keel_buf_init(&out, FEED_BIG);
    assert_int_equal(ev != NULL ? enc->stream_event(s, ev, &out) : enc->stream_end(s, &out), 0);
    assert_wrote(&out, want, n);
    assert_true(s->held <= s->max);
    if (n > 0)
        assert_int_equal(keel_buf_append(&told, out.base, out.len), 0);
    keel_buf_release(&out);
}

static void writes(struct keel_stream_enc *s, struct keel_ev ev, const char *want_q)
{
    call_writes(s, &ev, want_q);
}

/* the end of s is exactly want_q; everything s wrote is one whole stream; s given back */
static void ends(struct keel_stream_enc *s, const char *want_q)
{
    call_writes(s, NULL, want_q);
    assert_responses(told.base, told.len);
    enc->stream_release(s);
    assert_int_equal(s->held, 0);
    enc->stream_release(s); /* idempotent */
    keel_buf_release(&told);
}

/* ev into s is refused with rv: nothing written, s unmoved */
static void refused(struct keel_stream_enc *s, struct keel_ev ev, int rv)
{
    static struct keel_stream_enc was;
    struct keel_buf out;
    keel_buf_init(&out, FEED_BIG);
    assert_int_equal(keel_buf_append(&out, "x", 1), 0);
    memcpy(&was, s, sizeof(was));
    assert_int_equal(enc->stream_event(s, &ev, &out), rv);
    assert_int_equal(out.len, 1);
    assert_memory_equal(&was, s, sizeof(was));
    keel_buf_release(&out);
}

static struct keel_ev meta_ev(void)
{
    struct keel_ev ev = {.kind = KEEL_EV_META};
    ev.u.meta.id = J("\"chatcmpl-1\"");
    ev.u.meta.model = J("\"gpt-4o\"");
    ev.u.meta.created = J("42");
    return ev;
}

#define M1 "msg_0_chatcmpl-1"

static void test_text(void **state)
{
    struct keel_stream_enc s;
    begin(&s, 1700000000);
    /* META first: the Response's id, created_at and model from it; a later one says nothing */
    writes(&s, meta_ev(), START("chatcmpl-1", 42, "gpt-4o"));
    assert_true(s.held > 0 && s.held <= s.max);
    struct keel_ev again = {.kind = KEEL_EV_META};
    again.u.meta.id = J("\"other\"");
    again.u.meta.created = J("7");
    writes(&s, again, "");
    struct keel_ev role = {.kind = KEEL_EV_ROLE, .u.role = J("\"assistant\"")};
    writes(&s, role, "");
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"\""), ""); /* empty: no item */
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"Hi \\\"there\\\"\""),
           TEXT_OPEN(M1, 0, 2, 3) TEXT_DELTA(M1, 0, "Hi \\'there\\'", 4));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"\""), "");
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"!\""), TEXT_DELTA(M1, 0, "!", 5));
    struct keel_ev lp = {.kind = KEEL_EV_LOGPROBS};
    lp.u.logprobs.content = J("[]");
    writes(&s, lp, "");
    writes(&s, EV_FINISH(0, "\"stop\""), "");
    /* usage: the last counts; an error is the caller's */
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 7, 9, 16}, .raw = J("{}")}};
    writes(&s, u, "");
    u.u.usage.n = (struct keel_usage){1, 7, 10, 17};
    writes(&s, u, "");
    struct keel_ev err = {.kind = KEEL_EV_ERROR, .u.error = {.code = "x", .raw = J("{}")}};
    writes(&s, err, "");
    assert_int_equal(s.responses.told.seq, 6);
    ends(&s, TEXT_CLOSE(M1, 0, "Hi \\'there\\'!", "completed", 6, 7, 8)
                 END(9, COMPLETED("chatcmpl-1", 42, "gpt-4o", MESSAGE(M1, "completed", PART_TEXT("Hi \\'there\\'!")),
                                  USAGE(7, 10, 17))));
}

/* an item per run of one kind; no META first: keel's id, the caller's clock, no model, to the end */
static void test_reasoning_then_text(void **state)
{
    struct keel_stream_enc s;
    begin(&s, 1700000000);
    writes(&s, EV_TEXT(KEEL_EV_REASONING, 0, "\"\""), START("keel", 1700000000, ""));
    writes(&s, EV_TEXT(KEEL_EV_REASONING, 0, "\"Six times\""),
           RS_OPEN("rs_0_keel", 0, 2, 3) RS_DELTA("rs_0_keel", 0, "Six times", 4));
    struct keel_ev alt = EV_TEXT(KEEL_EV_REASONING, 0, "\" seven.\"");
    alt.u.text.alt = 1; /* sent as "reasoning": the same here */
    writes(&s, alt, RS_DELTA("rs_0_keel", 0, " seven.", 5));
    writes(&s, meta_ev(), ""); /* too late to say: the Response keeps what response.created said */
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"42\""),
           RS_CLOSE("rs_0_keel", 0, "Six times seven.", 6, 7, 8) TEXT_OPEN("msg_1_keel", 1, 9, 10)
               TEXT_DELTA("msg_1_keel", 1, "42", 11));
    writes(&s, EV_TEXT(KEEL_EV_REASONING, 0, "\"Hm\""),
           TEXT_CLOSE("msg_1_keel", 1, "42", "completed", 12, 13, 14) RS_OPEN("rs_2_keel", 2, 15, 16)
               RS_DELTA("rs_2_keel", 2, "Hm", 17));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"!\""),
           RS_CLOSE("rs_2_keel", 2, "Hm", 18, 19, 20) TEXT_OPEN("msg_3_keel", 3, 21, 22)
               TEXT_DELTA("msg_3_keel", 3, "!", 23));
    writes(&s, EV_FINISH(0, "\"length\""), "");
    /* cut by length: the last item too */
    ends(&s, TEXT_CLOSE("msg_3_keel", 3, "!", "incomplete", 24, 25, 26)
                 CUT(27, INCOMPLETE("keel", 1700000000, "", "max_output_tokens",
                                    REASONING("rs_0_keel", "Six times seven.") "," MESSAGE(
                                        "msg_1_keel", "completed", PART_TEXT("42")) "," REASONING("rs_2_keel", "Hm")
                                        "," MESSAGE("msg_3_keel", "incomplete", PART_TEXT("!")),
                                    USAGE(0, 0, 0))));
}

/* a refusal is a message of its own part; text after it another message */
static void test_refusal(void **state)
{
    struct keel_stream_enc s;
    begin(&s, 0);
    writes(&s, meta_ev(), START("chatcmpl-1", 42, "gpt-4o"));
    writes(&s, EV_TEXT(KEEL_EV_REFUSAL, 0, "\"\""), "");
    writes(&s, EV_TEXT(KEEL_EV_REFUSAL, 0, "\"I cannot\""),
           REFUSAL_OPEN(M1, 0, 2, 3) REFUSAL_DELTA(M1, 0, "I cannot", 4));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\" help\""),
           REFUSAL_CLOSE(M1, 0, "I cannot", "completed", 5, 6, 7) TEXT_OPEN("msg_1_chatcmpl-1", 1, 8, 9)
               TEXT_DELTA("msg_1_chatcmpl-1", 1, " help", 10));
    writes(&s, EV_TEXT(KEEL_EV_REFUSAL, 0, "\" with that.\""),
           TEXT_CLOSE("msg_1_chatcmpl-1", 1, " help", "completed", 11, 12, 13)
               REFUSAL_OPEN("msg_2_chatcmpl-1", 2, 14, 15) REFUSAL_DELTA("msg_2_chatcmpl-1", 2, " with that.", 16));
    writes(&s, EV_FINISH(0, "\"content_filter\""), "");
    ends(&s, REFUSAL_CLOSE("msg_2_chatcmpl-1", 2, " with that.", "incomplete", 17, 18, 19)
                 CUT(20, INCOMPLETE("chatcmpl-1", 42, "gpt-4o", "content_filter",
                                    MESSAGE(M1, "completed", PART_REFUSAL("I cannot")) "," MESSAGE(
                                        "msg_1_chatcmpl-1", "completed",
                                        PART_TEXT(" help")) "," MESSAGE("msg_2_chatcmpl-1", "incomplete",
                                                                        PART_REFUSAL(" with that.")),
                                    USAGE(0, 0, 0))));
}

#define RAW_ARGS "{\\'q\\': \\'a\\\\\\'b\\',\\n\\t\\'x\\':\\u0001}"

static void test_tool_calls(void **state)
{
    struct keel_stream_enc s;
    begin(&s, 0);
    writes(&s, meta_ev(), START("chatcmpl-1", 42, "gpt-4o"));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"Let me check.\""),
           TEXT_OPEN(M1, 0, 2, 3) TEXT_DELTA(M1, 0, "Let me check.", 4));
    /* the first fragment adds the item, with the id and name sent */
    writes(&s, EV_TOOL(0, 0, .id = J("\"call_a\""), .type = J("\"function\""), .name = J("\"get_weather\""),
                       .args = J("\"\"")),
           TEXT_CLOSE(M1, 0, "Let me check.", "completed", 5, 6, 7)
               FC_OPEN("fc_1_chatcmpl-1", 1, "call_a", "get_weather", 8));
    writes(&s, EV_TOOL(0, 0, .args = J("\"{\\\"ci\"")), FC_DELTA("fc_1_chatcmpl-1", 1, "{\\'ci", 9));
    writes(&s, EV_TOOL(0, 0, .args = J("\"\"")), "");
    writes(&s, EV_TOOL(0, 0), "");
    /* a server that repeats the id and name: only the arguments go out */
    writes(&s, EV_TOOL(0, 0, .id = J("\"call_a\""), .name = J("\"get_weather\""), .args = J("\"ty\\\": 1}\"")),
           FC_DELTA("fc_1_chatcmpl-1", 1, "ty\\': 1}", 10));
    /* no id sent: one made of the index and the response's; the first fragment's arguments follow */
    writes(&s, EV_TOOL(0, 1, .name = J("\"get_time\""), .args = J("\"{}\"")),
           FC_CLOSE("fc_1_chatcmpl-1", 1, "call_a", "get_weather", "{\\'city\\': 1}", "completed", 11, 12)
               FC_OPEN("fc_2_chatcmpl-1", 2, "call_1_chatcmpl-1", "get_time", 13)
                   FC_DELTA("fc_2_chatcmpl-1", 2, "{}", 14));
    /* the closed call: a fragment that says nothing is nothing, arguments cannot go out */
    writes(&s, EV_TOOL(0, 0, .id = J("\"call_a\""), .args = J("\"\"")), "");
    refused(&s, EV_TOOL(0, 0, .args = J("\"x\"")), -EPROTO);
    /* an empty id is none; no name: ""; raw arguments escaped into the string */
    writes(&s, EV_TOOL(0, 5, .id = J("\"\""), .args = J("{\"q\": \"a\\\"b\",\n\t\"x\":\x01}"), .args_raw = 1),
           FC_CLOSE("fc_2_chatcmpl-1", 2, "call_1_chatcmpl-1", "get_time", "{}", "completed", 15, 16)
               FC_OPEN("fc_3_chatcmpl-1", 3, "call_5_chatcmpl-1", "", 17) FC_DELTA("fc_3_chatcmpl-1", 3, RAW_ARGS, 18));
    refused(&s, EV_TOOL(0, 1, .args = J("\"x\"")), -EPROTO);
    /* past the index limit */
    refused(&s, EV_TOOL(0, KEEL_STREAM_MAX_INDEX, .name = J("\"f\"")), -ENOBUFS);
    writes(&s, EV_TOOL(0, KEEL_STREAM_MAX_INDEX - 1, .id = J("\"call_z\""), .name = J("\"f\"")),
           FC_CLOSE("fc_3_chatcmpl-1", 3, "call_5_chatcmpl-1", "", RAW_ARGS, "completed", 19, 20)
               FC_OPEN("fc_4_chatcmpl-1", 4, "call_z", "f", 21));
    /* other choices are not the protocol's */
    writes(&s, EV_TOOL(1, 0, .id = J("\"call_b\""), .name = J("\"g\""), .args = J("\"{}\"")), "");
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 1, "\"b\""), "");
    writes(&s, EV_FINISH(1, "\"length\""), "");
    writes(&s, EV_FINISH(0, "\"tool_calls\""), "");
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 20, 30, 50}}};
    writes(&s, u, "");
    ends(&s, FC_CLOSE("fc_4_chatcmpl-1", 4, "call_z", "f", "", "completed", 22, 23)
                 END(24, COMPLETED("chatcmpl-1", 42, "gpt-4o",
                                   MESSAGE(M1, "completed", PART_TEXT("Let me check.")) "," CALL(
                                       "fc_1_chatcmpl-1", "call_a", "get_weather", "{\\'city\\': 1}",
                                       "completed") "," CALL("fc_2_chatcmpl-1", "call_1_chatcmpl-1", "get_time",
                                                             "{}", "completed") "," CALL("fc_3_chatcmpl-1",
                                                                                         "call_5_chatcmpl-1", "",
                                                                                         RAW_ARGS, "completed")
                                       "," CALL("fc_4_chatcmpl-1", "call_z", "f", "", "completed"),
                                   USAGE(20, 30, 50))));
}

/* FINISH's word as the Response's status: the stream's end and the whole answer say the same */
static void test_finish_mapping(void **state)
{
    static const struct {
        const char *finish; /* a literal; NULL: none came */
        const char *reason; /* incomplete_details' reason; NULL: completed */
    } cases[] = {
        {"\"stop\"", NULL},
        {"\"length\"", "max_output_tokens"},
        {"\"tool_calls\"", NULL},
        {"\"function_call\"", NULL},
        {"\"content_filter\"", "content_filter"},
        {"\"insufficient_system_resource\"", NULL},
        {"\"\"", NULL},
        {"\"l\\u0065ngth\"", "max_output_tokens"}, /* compared decoded */
        {NULL, NULL},
    };
    static char q[4096], want[4096], details[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct keel_stream_enc s;
        struct keel_asm a;
        struct keel_buf out;
        struct keel_ev fin = {.kind = KEEL_EV_FINISH};
        const char *reason = cases[i].reason, *status = reason != NULL ? "incomplete" : "completed";
        enc->stream_init(&s, 0);
        s.created_at = 7;
        keel_asm_init(&a, FEED_BIG, "openai");
        a.created_at = 7;
        keel_buf_init(&out, FEED_BIG);
        if (cases[i].finish != NULL) {
            fin.u.finish = (struct keel_json){cases[i].finish, strlen(cases[i].finish)};
            assert_int_equal(enc->stream_event(&s, &fin, &out), 0);
            assert_int_equal(keel_asm_event(&a, &fin), 0);
        }
        assert_int_equal(enc->stream_end(&s, &out), 0);
        if (reason != NULL)
            snprintf(details, sizeof(details), "{'reason':'%s'}", reason);
        else
            snprintf(details, sizeof(details), "null");
        snprintf(q, sizeof(q), START("keel", 7, "") FRAME("response.%s", ",'response':" RESPONSE("keel", 7, "", "%s",
                                                                                                 "%s", "",
                                                                                                 USAGE(0, 0, 0)),
                                                          2),
                 status, status, status, details);
        assert_wrote(&out, want, dq(q, want, sizeof(want)));
        assert_responses(out.base, out.len);
        keel_buf_reset(&out);
        assert_int_equal(enc->answer(&a, &out), 0);
        snprintf(q, sizeof(q), RESPONSE("keel", 7, "", "%s", "%s", "", USAGE(0, 0, 0)), status, details);
        assert_wrote(&out, want, dq(q, want, sizeof(want)));
        keel_buf_release(&out);
        keel_asm_release(&a);
        enc->stream_release(&s);
    }
    /* the first finish reason that is not empty, choice 0's only */
    struct keel_stream_enc s;
    begin(&s, 0);
    writes(&s, EV_FINISH(1, "\"tool_calls\""), START("keel", 0, ""));
    writes(&s, EV_FINISH(0, "\"\""), "");
    writes(&s, EV_FINISH(0, "\"length\""), "");
    writes(&s, EV_FINISH(0, "\"stop\""), "");
    ends(&s, CUT(2, INCOMPLETE("keel", 0, "", "max_output_tokens", "", USAGE(0, 0, 0))));
}

/* a Response with nothing in it is still whole: its start at the end */
static void test_no_events(void **state)
{
    struct keel_stream_enc s;
    struct keel_asm a;
    begin(&s, 0);
    struct keel_ev err = {.kind = KEEL_EV_ERROR, .u.error = {.code = ""}};
    writes(&s, err, ""); /* an error starts nothing */
    assert_int_equal(s.held, 0);
    ends(&s, START("keel", 0, "") END(2, COMPLETED("keel", 0, "", "", USAGE(0, 0, 0))));
    keel_asm_init(&a, FEED_BIG, "openai");
    struct keel_buf out;
    static char want[2048];
    size_t n = dq(COMPLETED("keel", 0, "", "", USAGE(0, 0, 0)), want, sizeof(want));
    keel_buf_init(&out, FEED_BIG);
    assert_int_equal(enc->answer(&a, &out), 0);
    assert_wrote(&out, want, n);
    keel_buf_release(&out);
    keel_asm_release(&a);
    /* a usage alone: the Response's start, then its counts at the end */
    begin(&s, 0);
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 3, 0, 3}}};
    writes(&s, u, START("keel", 0, ""));
    ends(&s, END(2, COMPLETED("keel", 0, "", "", USAGE(3, 0, 3))));
    /* a negative count (a server's -1 for "unknown") is none */
    begin(&s, 0);
    u.u.usage.n = (struct keel_usage){1, -1, -2, -3};
    writes(&s, u, START("keel", 0, ""));
    ends(&s, END(2, COMPLETED("keel", 0, "", "", USAGE(0, 0, 0))));
    /* a total past what a count holds stays the largest */
    begin(&s, 0);
    u.u.usage.n = (struct keel_usage){1, LLONG_MAX, 5, 0};
    writes(&s, u, START("keel", 0, ""));
    ends(&s, END(2, COMPLETED("keel", 0, "", "", USAGE(9223372036854775807, 5, 9223372036854775807))));
    /* release with nothing sent */
    enc->stream_init(&s, 0);
    enc->stream_release(&s);
    assert_int_equal(s.held, 0);
}

/* META's id kept to [A-Za-z0-9_-] and 64 of them; no string, or nothing left: keel's */
static void test_meta(void **state)
{
    static const struct {
        const char *id, *tail;
    } ids[] = {
        {"\"chat/cmpl 1\\u00e9-x_y\"", "chatcmpl1u00e9-x_y"},
        {"\"msg_01XFDUDYJgAACzvnptvVoYEL\"", "msg_01XFDUDYJgAACzvnptvVoYEL"},
        {"\"0123456789012345678901234567890123456789012345678901234567890123456789\"",
         "0123456789012345678901234567890123456789012345678901234567890123"},
        {"\"\"", "keel"},
        {"\"/// .\"", "keel"},
        {"17", "keel"},
        {"{\"a\":\"b\"}", "keel"},
    };
    static char q[4096], want[4096];
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        struct keel_stream_enc s;
        struct keel_ev m = {.kind = KEEL_EV_META};
        m.u.meta.id = (struct keel_json){ids[i].id, strlen(ids[i].id)};
        m.u.meta.model = J("\"m\\\"1\"");
        m.u.meta.created = J("1.5"); /* no integer: the caller's clock */
        begin(&s, 99);
        snprintf(q, sizeof(q), START("%s", 99, "m\\'1"), ids[i].tail, ids[i].tail);
        dq(q, want, sizeof(want));
        writes(&s, m, want);
        snprintf(q, sizeof(q), END(2, COMPLETED("%s", 99, "m\\'1", "", USAGE(0, 0, 0))), ids[i].tail);
        dq(q, want, sizeof(want));
        ends(&s, want);
        /* the whole answer says the same */
        struct keel_asm a;
        struct keel_buf out;
        keel_asm_init(&a, FEED_BIG, "anthropic");
        a.created_at = 99;
        assert_int_equal(keel_asm_event(&a, &m), 0);
        keel_buf_init(&out, FEED_BIG);
        assert_int_equal(enc->answer(&a, &out), 0);
        snprintf(q, sizeof(q), COMPLETED("%s", 99, "m\\'1", "", USAGE(0, 0, 0)), ids[i].tail);
        assert_wrote(&out, want, dq(q, want, sizeof(want)));
        keel_buf_release(&out);
        keel_asm_release(&a);
    }
    /* a model that is no string is ""; a null id is none, and a later one too late */
    struct keel_stream_enc s;
    struct keel_ev m = {.kind = KEEL_EV_META};
    m.u.meta.id = J("null");
    m.u.meta.model = J("5");
    m.u.meta.created = J("-3");
    begin(&s, 99);
    writes(&s, m, START("keel", -3, ""));
    writes(&s, meta_ev(), "");
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"a\""), TEXT_OPEN("msg_0_keel", 0, 2, 3) TEXT_DELTA("msg_0_keel", 0, "a", 4));
    ends(&s, TEXT_CLOSE("msg_0_keel", 0, "a", "completed", 5, 6, 7)
                 END(8, COMPLETED("keel", -3, "", MESSAGE("msg_0_keel", "completed", PART_TEXT("a")), USAGE(0, 0, 0))));
}

/* ---- bounded memory ---- */

/* a stream with every kind of item, its events in order */
static void memory_events(struct keel_ev *evs, size_t *n)
{
    size_t k = 0;
    evs[k++] = meta_ev();
    evs[k++] = EV_TEXT(KEEL_EV_REASONING, 0, "\"Thinking about the weather in Paris.\"");
    evs[k++] = EV_TEXT(KEEL_EV_TEXT, 0, "\"Let me check the weather for you.\"");
    evs[k++] = EV_TEXT(KEEL_EV_TEXT, 0, "\" It may take a moment.\"");
    evs[k++] = EV_TOOL(0, 0, .id = J("\"call_a\""), .name = J("\"get_weather\""), .args = J("\"{\\\"city\\\":\""));
    evs[k++] = EV_TOOL(0, 0, .args = J("\"\\\"Paris\\\"}\""));
    for (uint32_t t = 1; t < 12; t++)
        evs[k++] = EV_TOOL(0, t, .id = J("\"call_b\""), .name = J("\"get_time\""), .args = J("\"{}\""));
    evs[k++] = EV_TEXT(KEEL_EV_REFUSAL, 0, "\"No more.\"");
    evs[k++] = EV_FINISH(0, "\"tool_calls\"");
    evs[k++] = (struct keel_ev){.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 5, 6, 11}}};
    *n = k;
}

/* Under every cap of the state's memory: each call goes through or is refused with -ENOBUFS, out
 * as it was and held within the cap; a refused stream is given back whole (ASan). Under a cap
 * that suffices, exactly what an unbounded stream writes. */
static void test_memory_cap(void **state)
{
    struct keel_ev evs[32];
    size_t n;
    struct keel_stream_enc s;
    struct keel_buf out, all;
    memory_events(evs, &n);
    keel_buf_init(&all, FEED_BIG);
    begin(&s, 0);
    size_t peak = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(enc->stream_event(&s, &evs[i], &all), 0);
        peak = s.held > peak ? s.held : peak;
    }
    assert_int_equal(enc->stream_end(&s, &all), 0);
    assert_responses(all.base, all.len);
    enc->stream_release(&s);
    assert_true(peak > 0);
    int refusals = 0;
    for (size_t max = 0; max <= peak; max += max < 512 ? 1 : 7) {
        keel_buf_init(&out, FEED_BIG);
        begin(&s, 0);
        s.max = max;
        int rv = 0;
        for (size_t i = 0; i < n && rv == 0; i++) {
            size_t was = out.len;
            rv = enc->stream_event(&s, &evs[i], &out);
            assert_true(rv == 0 || rv == -ENOBUFS);
            assert_true(s.held <= max);
            if (rv != 0)
                assert_int_equal(out.len, was);
        }
        if (rv == 0)
            rv = enc->stream_end(&s, &out);
        if (rv == 0) {
            assert_wrote(&out, all.base, all.len);
        } else {
            refusals++;
            assert_true(out.len == 0 || memcmp(out.base, all.base, out.len) == 0); /* a beginning of it */
        }
        enc->stream_release(&s);
        assert_int_equal(s.held, 0);
        keel_buf_release(&out);
    }
    assert_true(refusals > 0);
    /* exactly the room the unbounded stream took: the same stream */
    keel_buf_init(&out, FEED_BIG);
    begin(&s, 0);
    s.max = peak;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(enc->stream_event(&s, &evs[i], &out), 0);
    assert_int_equal(enc->stream_end(&s, &out), 0);
    assert_wrote(&out, all.base, all.len);
    enc->stream_release(&s);
    keel_buf_release(&out);
    /* the caller lowering the cap past what is held: refused */
    keel_buf_init(&out, FEED_BIG);
    begin(&s, 0);
    assert_int_equal(enc->stream_event(&s, &evs[0], &out), 0);
    assert_int_equal(enc->stream_event(&s, &evs[1], &out), 0);
    s.max = s.held - 1;
    size_t was = out.len;
    assert_int_equal(enc->stream_event(&s, &evs[2], &out), -ENOBUFS);
    assert_int_equal(out.len, was);
    enc->stream_release(&s);
    keel_buf_release(&out);
    keel_buf_release(&all);
    keel_buf_release(&told);
}

/* ---- the whole answer ---- */

static int text_ev(struct keel_asm *a, enum keel_ev_kind kind, uint32_t choice, const char *literal)
{
    struct keel_ev ev = {.kind = kind, .choice = choice};
    ev.u.text.s = (struct keel_json){literal, strlen(literal)};
    return keel_asm_event(a, &ev);
}

static int tool_ev(struct keel_asm *a, uint32_t index, const char *id, const char *name, const char *args, int raw)
{
    struct keel_ev ev = {.kind = KEEL_EV_TOOL_CALL};
    ev.u.tool.index = index;
    if (id != NULL)
        ev.u.tool.id = (struct keel_json){id, strlen(id)};
    if (name != NULL)
        ev.u.tool.name = (struct keel_json){name, strlen(name)};
    if (args != NULL)
        ev.u.tool.args = (struct keel_json){args, strlen(args)};
    ev.u.tool.args_raw = raw;
    return keel_asm_event(a, &ev);
}

static int finish_ev(struct keel_asm *a, const char *literal)
{
    struct keel_ev ev = {.kind = KEEL_EV_FINISH};
    ev.u.finish = (struct keel_json){literal, strlen(literal)};
    return keel_asm_event(a, &ev);
}

/* a's Response is exactly want_q; under every cap that leaves less room, -ENOBUFS and out as it was */
static void answer_is(const struct keel_asm *a, const char *want_q)
{
    static char want[16384];
    struct keel_buf out;
    size_t n = dq(want_q, want, sizeof(want));
    assert_json(want, n);
    for (size_t room = 0; room < n; room++) {
        keel_buf_init(&out, 1 + room);
        assert_int_equal(keel_buf_append(&out, "x", 1), 0);
        assert_int_equal(enc->answer(a, &out), -ENOBUFS);
        assert_int_equal(out.len, 1);
        keel_buf_release(&out);
    }
    keel_buf_init(&out, FEED_BIG);
    assert_int_equal(enc->answer(a, &out), 0);
    assert_wrote(&out, want, n);
    keel_buf_release(&out);
}

#define A1(kind, n) kind "_" #n "_chatcmpl-1"

static void test_answer(void **state)
{
    struct keel_asm a;
    keel_asm_init(&a, FEED_BIG, "openai");
    a.created_at = 5; /* META's created wins */
    struct keel_ev m = meta_ev();
    m.u.meta.system_fingerprint = J("\"fp\"");
    assert_int_equal(keel_asm_event(&a, &m), 0);
    /* items in this order whatever the events' order: reasoning, the message, tool calls */
    assert_int_equal(tool_ev(&a, 0, "\"call_a\"", "\"get_weather\"", "\"{\\\"city\\\": \"", 0), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_REFUSAL, 0, "\"No \\\"that\\\".\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"Caf\\u00e9 \xc3\xa9\\n\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_REASONING, 0, "\"Hm.\""), 0);
    assert_int_equal(tool_ev(&a, 0, NULL, NULL, "\"\\\"Paris\\\"}\"", 0), 0);
    /* a gap at 1; index 2 with no id nor arguments; index 3's arguments sent raw */
    assert_int_equal(tool_ev(&a, 2, NULL, "\"now\"", NULL, 0), 0);
    assert_int_equal(tool_ev(&a, 3, "\"call_d\"", "\"f\"", "{ \"a\" : [1, \"\\u00e9\"] }", 1), 0);
    /* other choices are left out */
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 1, "\"other\""), 0);
    assert_int_equal(finish_ev(&a, "\"tool_calls\""), 0);
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 11, 22, 33}, .raw = J("{}")}};
    assert_int_equal(keel_asm_event(&a, &u), 0);
    answer_is(&a, COMPLETED("chatcmpl-1", 42, "gpt-4o",
                            REASONING(A1("rs", 0), "Hm.") "," MESSAGE(A1("msg", 1), "completed",
                                                                      PART_TEXT("Caf\\u00e9 \xc3\xa9\\n") "," PART_REFUSAL(
                                                                          "No \\'that\\'.")) "," CALL(A1("fc", 2), "call_a",
                                                                                                      "get_weather",
                                                                                                      "{\\'city\\': "
                                                                                                      "\\'Paris\\'}",
                                                                                                      "completed")
                                "," CALL(A1("fc", 3), "call_2_chatcmpl-1", "now", "", "completed") "," CALL(
                                    A1("fc", 4), "call_d", "f", "{ \\'a\\' : [1, \\'\\\\u00e9\\'] }", "completed"),
                            USAGE(11, 22, 33)));
    keel_asm_release(&a);

    /* empty texts make no item; no META: keel's id, the caller's clock */
    keel_asm_init(&a, FEED_BIG, "openai");
    a.created_at = 1700000000;
    assert_int_equal(text_ev(&a, KEEL_EV_REASONING, 0, "\"\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_REFUSAL, 0, "\"\""), 0);
    answer_is(&a, COMPLETED("keel", 1700000000, "", "", USAGE(0, 0, 0)));
    /* a refusal alone: its part alone */
    assert_int_equal(text_ev(&a, KEEL_EV_REFUSAL, 0, "\"No.\""), 0);
    answer_is(&a, COMPLETED("keel", 1700000000, "", MESSAGE("msg_0_keel", "completed", PART_REFUSAL("No.")),
                            USAGE(0, 0, 0)));
    keel_asm_release(&a);
}

/* cut: the last item says so */
static void test_answer_incomplete(void **state)
{
    struct keel_asm a;
    keel_asm_init(&a, FEED_BIG, "openai");
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"Hi\""), 0);
    assert_int_equal(tool_ev(&a, 0, "\"call_a\"", "\"f\"", "\"{\"", 0), 0);
    assert_int_equal(finish_ev(&a, "\"length\""), 0);
    answer_is(&a, INCOMPLETE("keel", 0, "", "max_output_tokens",
                             MESSAGE("msg_0_keel", "completed", PART_TEXT("Hi")) "," CALL("fc_1_keel", "call_a", "f",
                                                                                          "{", "incomplete"),
                             USAGE(0, 0, 0)));
    keel_asm_release(&a);
    keel_asm_init(&a, FEED_BIG, "openai");
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"Hi\""), 0);
    assert_int_equal(finish_ev(&a, "\"content_filter\""), 0);
    answer_is(&a, INCOMPLETE("keel", 0, "", "content_filter", MESSAGE("msg_0_keel", "incomplete", PART_TEXT("Hi")),
                             USAGE(0, 0, 0)));
    keel_asm_release(&a);
    /* reasoning has no status */
    keel_asm_init(&a, FEED_BIG, "openai");
    assert_int_equal(text_ev(&a, KEEL_EV_REASONING, 0, "\"Hm\""), 0);
    assert_int_equal(finish_ev(&a, "\"length\""), 0);
    answer_is(&a, INCOMPLETE("keel", 0, "", "max_output_tokens", REASONING("rs_0_keel", "Hm"), USAGE(0, 0, 0)));
    keel_asm_release(&a);
}

/* ---- OpenAI streams through both ---- */

#define DATA(s) "data: " s "\n\n"
#define OM1 "{'id':'chatcmpl-1','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o-2024-08-06'," \
            "'service_tier':'default','system_fingerprint':'fp_f5','choices':"
#define R1 "chatcmpl-1", 1700000000, "gpt-4o-2024-08-06"

static void test_openai_text(void **state)
{
    static const char stream[] =
        DATA(OM1 "[{'index':0,'delta':{'role':'assistant','content':'','refusal':null},'logprobs':null,"
                 "'finish_reason':null}],'usage':null}")
        ": keep-alive\n\n"
        DATA(OM1 "[{'index':0,'delta':{'content':'Hello'},'logprobs':null,'finish_reason':null}],'usage':null}")
        DATA(OM1 "[{'index':0,'delta':{'content':' world'},'logprobs':null,'finish_reason':null}],'usage':null}")
        DATA(OM1 "[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}],'usage':null}")
        DATA(OM1 "[],'usage':{'prompt_tokens':9,'completion_tokens':2,'total_tokens':11,'prompt_tokens_details':"
                 "{'cached_tokens':0}}}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM_RESPONSES, 0, stream, "IPPIID", "",
               START(R1) TEXT_OPEN(M1, 0, 2, 3) TEXT_DELTA(M1, 0, "Hello", 4) TEXT_DELTA(M1, 0, " world", 5)
                   TEXT_CLOSE(M1, 0, "Hello world", "completed", 6, 7, 8)
                       END(9, COMPLETED(R1, MESSAGE(M1, "completed", PART_TEXT("Hello world")), USAGE(9, 2, 11))));
    feed_check(&keel_openai_decoder, FEED_ASM_RESPONSES, 0, stream, "IPPIID", "",
               COMPLETED(R1, MESSAGE(M1, "completed", PART_TEXT("Hello world")), USAGE(9, 2, 11)));
}

#define OM2 "{'id':'chatcmpl-2','object':'chat.completion.chunk','created':1700000001,'model':'gpt-4o','choices':"
#define D2(delta, finish) DATA(OM2 "[{'index':0,'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}")
#define ARGS2(i, s) D2("{'tool_calls':[{'index':" #i ",'function':{'arguments':'" s "'}}]}", "null")
#define R2 "chatcmpl-2", 1700000001, "gpt-4o"
#define OUTPUT2                                                                                                        \
    MESSAGE("msg_0_chatcmpl-2", "completed", PART_TEXT("Checking.")) "," CALL(                                         \
        "fc_1_chatcmpl-2", "call_a", "get_weather", "{\\'city\\': \\'Paris\\'}",                                       \
        "completed") "," CALL("fc_2_chatcmpl-2", "call_b", "get_time", "{\\'tz\\': \\'CET\\'}", "completed")

/* text, then two calls one after the other, as OpenAI sends parallel calls */
static void test_openai_tool_calls(void **state)
{
    static const char stream[] =
        D2("{'role':'assistant','content':''}", "null")
        D2("{'content':'Checking.'}", "null")
        D2("{'tool_calls':[{'index':0,'id':'call_a','type':'function','function':{'name':'get_weather',"
           "'arguments':''}}]}", "null")
        ARGS2(0, "{\\'ci")
        ARGS2(0, "ty\\': \\'Par")
        ARGS2(0, "is\\'}")
        D2("{'tool_calls':[{'index':1,'id':'call_b','type':'function','function':{'name':'get_time',"
           "'arguments':''}}]}", "null")
        ARGS2(1, "{\\'tz\\':")
        ARGS2(1, " \\'CET\\'}")
        D2("{}", "'tool_calls'")
        DATA(OM2 "[],'usage':{'prompt_tokens':30,'completion_tokens':40,'total_tokens':70}}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM_RESPONSES, 1, stream, "IPPPPPPPPIID", "",
               START(R2) TEXT_OPEN("msg_0_chatcmpl-2", 0, 2, 3) TEXT_DELTA("msg_0_chatcmpl-2", 0, "Checking.", 4)
                   TEXT_CLOSE("msg_0_chatcmpl-2", 0, "Checking.", "completed", 5, 6, 7)
                       FC_OPEN("fc_1_chatcmpl-2", 1, "call_a", "get_weather", 8)
                           FC_DELTA("fc_1_chatcmpl-2", 1, "{\\'ci", 9) FC_DELTA("fc_1_chatcmpl-2", 1, "ty\\': \\'Par", 10)
                               FC_DELTA("fc_1_chatcmpl-2", 1, "is\\'}", 11)
                                   FC_CLOSE("fc_1_chatcmpl-2", 1, "call_a", "get_weather", "{\\'city\\': \\'Paris\\'}",
                                            "completed", 12, 13) FC_OPEN("fc_2_chatcmpl-2", 2, "call_b", "get_time", 14)
                                       FC_DELTA("fc_2_chatcmpl-2", 2, "{\\'tz\\':", 15)
                                           FC_DELTA("fc_2_chatcmpl-2", 2, " \\'CET\\'}", 16)
                                               FC_CLOSE("fc_2_chatcmpl-2", 2, "call_b", "get_time",
                                                        "{\\'tz\\': \\'CET\\'}", "completed", 17, 18)
                                                   END(19, COMPLETED(R2, OUTPUT2, USAGE(30, 40, 70))));
    feed_check(&keel_openai_decoder, FEED_ASM_RESPONSES, 1, stream, "IPPPPPPPPIID", "",
               COMPLETED(R2, OUTPUT2, USAGE(30, 40, 70)));
}

#define OM3 "{'id':'r-3','object':'chat.completion.chunk','created':1700000002,'model':'deepseek-reasoner'," \
            "'system_fingerprint':'fp_r','choices':"
#define D3(delta, finish) DATA(OM3 "[{'index':0,'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}")
#define R3 "r-3", 1700000002, "deepseek-reasoner"
#define OUTPUT3 REASONING("rs_0_r-3", "Six times seven.") "," MESSAGE("msg_1_r-3", "incomplete", PART_TEXT("42"))

static void test_openai_reasoning(void **state)
{
    static const char stream[] =
        D3("{'role':'assistant','content':null,'reasoning_content':''}", "null")
        D3("{'content':null,'reasoning_content':'Six times'}", "null")
        D3("{'content':null,'reasoning_content':' seven.'}", "null")
        D3("{'content':'42','reasoning_content':null}", "null")
        DATA(OM3 "[{'index':0,'delta':{'content':'','reasoning_content':null},'logprobs':null,'finish_reason':"
                 "'length'}],'usage':{'prompt_tokens':10,'completion_tokens':5,'total_tokens':15}}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM_RESPONSES, 0, stream, "IPPPID", "",
               START(R3) RS_OPEN("rs_0_r-3", 0, 2, 3) RS_DELTA("rs_0_r-3", 0, "Six times", 4)
                   RS_DELTA("rs_0_r-3", 0, " seven.", 5) RS_CLOSE("rs_0_r-3", 0, "Six times seven.", 6, 7, 8)
                       TEXT_OPEN("msg_1_r-3", 1, 9, 10) TEXT_DELTA("msg_1_r-3", 1, "42", 11)
                           TEXT_CLOSE("msg_1_r-3", 1, "42", "incomplete", 12, 13, 14)
                               CUT(15, INCOMPLETE(R3, "max_output_tokens", OUTPUT3, USAGE(10, 5, 15))));
    feed_check(&keel_openai_decoder, FEED_ASM_RESPONSES, 0, stream, "IPPPID", "",
               INCOMPLETE(R3, "max_output_tokens", OUTPUT3, USAGE(10, 5, 15)));
}

#define OM4 "{'id':'chatcmpl-4','object':'chat.completion.chunk','created':1700000003,'model':'gpt-4o','choices':"
#define D4(delta, finish) DATA(OM4 "[{'index':0,'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}")
#define R4 "chatcmpl-4", 1700000003, "gpt-4o"
#define M4 "msg_0_chatcmpl-4"

static void test_openai_refusal(void **state)
{
    static const char stream[] =
        D4("{'role':'assistant','content':null,'refusal':''}", "null")
        D4("{'refusal':'I cannot'}", "null")
        D4("{'refusal':' help with that.'}", "null")
        D4("{}", "'content_filter'")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM_RESPONSES, 0, stream, "IPPID", "",
               START(R4) REFUSAL_OPEN(M4, 0, 2, 3) REFUSAL_DELTA(M4, 0, "I cannot", 4)
                   REFUSAL_DELTA(M4, 0, " help with that.", 5)
                       REFUSAL_CLOSE(M4, 0, "I cannot help with that.", "incomplete", 6, 7, 8)
                           CUT(9, INCOMPLETE(R4, "content_filter",
                                             MESSAGE(M4, "incomplete", PART_REFUSAL("I cannot help with that.")),
                                             USAGE(0, 0, 0))));
    feed_check(&keel_openai_decoder, FEED_ASM_RESPONSES, 0, stream, "IPPID", "",
               INCOMPLETE(R4, "content_filter", MESSAGE(M4, "incomplete", PART_REFUSAL("I cannot help with that.")),
                          USAGE(0, 0, 0)));
}

#define OM7 "{'id':'chatcmpl-7','object':'chat.completion.chunk','created':1700000006,'model':'gpt-4o','choices':"
#define TEXT7(s) DATA(OM7 "[{'index':0,'delta':{'content':'" s "'},'logprobs':null,'finish_reason':null}]}")
#define R7 "chatcmpl-7", 1700000006, "gpt-4o"
#define M7 "msg_0_chatcmpl-7"
#define ALL7                                                                                                           \
    "caf\\u00e9 \\ud83d\\ude00 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \\'q\\' \\\\ tab\\t end\\n"    \
    "\\u2028/\\/"

/* escapes are kept as sent; raw UTF-8 (2, 3 and 4 bytes) is cut between feeds at every byte */
static void test_openai_unicode(void **state)
{
    static const char stream[] =
        TEXT7("caf\\u00e9 ")
        TEXT7("\\ud83d\\ude00")
        TEXT7(" na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80")
        TEXT7(" \\'q\\' \\\\ tab\\t end\\n")
        TEXT7("\\u2028/\\/")
        DATA(OM7 "[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}]}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM_RESPONSES, 0, stream, "PPPPPID", "",
               START(R7) TEXT_OPEN(M7, 0, 2, 3) TEXT_DELTA(M7, 0, "caf\\u00e9 ", 4)
                   TEXT_DELTA(M7, 0, "\\ud83d\\ude00", 5)
                       TEXT_DELTA(M7, 0, " na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", 6)
                           TEXT_DELTA(M7, 0, " \\'q\\' \\\\ tab\\t end\\n", 7) TEXT_DELTA(M7, 0, "\\u2028/\\/", 8)
                               TEXT_CLOSE(M7, 0, ALL7, "completed", 9, 10, 11)
                                   END(12, COMPLETED(R7, MESSAGE(M7, "completed", PART_TEXT(ALL7)), USAGE(0, 0, 0))));
    feed_check(&keel_openai_decoder, FEED_ASM_RESPONSES, 0, stream, "PPPPPID", "",
               COMPLETED(R7, MESSAGE(M7, "completed", PART_TEXT(ALL7)), USAGE(0, 0, 0)));
}

struct run {
    struct keel_decoder d;
    struct keel_stream_enc s;
    struct keel_buf out;
};

static int run_ev(void *ctx, const struct keel_ev *ev)
{
    struct run *r = ctx;
    return enc->stream_event(&r->s, ev, &r->out);
}

static int run_frame(void *ctx, const char *event, const char *data, size_t len)
{
    struct run *r = ctx;
    struct keel_chunk_info info;
    r->d.ops->frame(&r->d, event, data, len, &info);
    return 0;
}

/* A server that goes back to an earlier call's arguments after the next call started (OpenAI's
 * own servers do not): the decoder's consumer says -EPROTO there, what went out before is a valid
 * beginning of a stream, and the state is given back whole. The assembler joins them by index:
 * the whole answer is fine. */
static void test_openai_interleaved(void **state)
{
    static const char stream_q[] =
        D2("{'role':'assistant','content':null,'tool_calls':[{'index':0,'id':'call_a','type':'function',"
           "'function':{'name':'get_weather','arguments':''}}]}", "null")
        ARGS2(0, "{\\'ci")
        D2("{'tool_calls':[{'index':1,'id':'call_b','type':'function','function':{'name':'get_time',"
           "'arguments':'{}'}}]}", "null")
        ARGS2(0, "ty\\': \\'Paris\\'}")
        D2("{}", "'tool_calls'")
        DATA("[DONE]");
    static char sse[4096], want[8192];
    static struct run r;
    struct keel_sse_parser p;
    size_t len = dq(stream_q, sse, sizeof(sse));
    size_t n = dq(START(R2) FC_OPEN("fc_0_chatcmpl-2", 0, "call_a", "get_weather", 2)
                      FC_DELTA("fc_0_chatcmpl-2", 0, "{\\'ci", 3)
                          FC_CLOSE("fc_0_chatcmpl-2", 0, "call_a", "get_weather", "{\\'ci", "completed", 4, 5)
                              FC_OPEN("fc_1_chatcmpl-2", 1, "call_b", "get_time", 6)
                                  FC_DELTA("fc_1_chatcmpl-2", 1, "{}", 7),
                  want, sizeof(want));
    enc->stream_init(&r.s, 0);
    keel_buf_init(&r.out, FEED_BIG);
    keel_decoder_init(&r.d, &keel_openai_decoder, run_ev, &r);
    keel_sse_parser_init(&p, 1 << 16, run_frame, NULL, &r);
    feed_pieces(&p, sse, len, NULL, 0);
    keel_sse_parser_release(&p);
    assert_int_equal(r.d.rv, -EPROTO);
    assert_wrote(&r.out, want, n);
    assert_responses(r.out.base, r.out.len);
    enc->stream_release(&r.s);
    assert_int_equal(r.s.held, 0);
    keel_buf_release(&r.out);
    feed_check(&keel_openai_decoder, FEED_ASM_RESPONSES, 0, stream_q, "PPPPID", "",
               COMPLETED(R2,
                         CALL("fc_0_chatcmpl-2", "call_a", "get_weather", "{\\'city\\': \\'Paris\\'}",
                              "completed") "," CALL("fc_1_chatcmpl-2", "call_b", "get_time", "{}", "completed"),
                         USAGE(0, 0, 0)));
}

/* ---- Anthropic streams through both ---- */

#define A_START(usage)                                                                                                 \
    "{'type':'message_start','message':{'id':'msg_1','type':'message','role':'assistant','content':[],"              \
    "'model':'claude-sonnet-4-5','stop_reason':null,'stop_sequence':null,'usage':" usage "}}"
#define A_BLOCK(i, block) "{'type':'content_block_start','index':" #i ",'content_block':" block "}"
#define A_DELTA(i, delta) "{'type':'content_block_delta','index':" #i ",'delta':" delta "}"
#define A_TEXT(i, s) A_DELTA(i, "{'type':'text_delta','text':'" s "'}")
#define A_JSON(i, s) A_DELTA(i, "{'type':'input_json_delta','partial_json':'" s "'}")
#define A_TOOL(i, id, name) A_BLOCK(i, "{'type':'tool_use','id':'" id "','name':'" name "','input':{}}")
#define A_STOP(i) "{'type':'content_block_stop','index':" #i "}"
#define A_END(stop, usage)                                                                                             \
    EVENT("message_delta", "{'type':'message_delta','delta':{'stop_reason':" stop ",'stop_sequence':null},'usage':" \
                           usage "}")                                                                                  \
    EVENT("message_stop", "{'type':'message_stop'}")
#define A_PING EVENT("ping", "{'type':'ping'}")
#define RA "msg_1", 1760000000, "claude-sonnet-4-5"

static void test_anthropic_text(void **state)
{
    static const char stream[] =
        EVENT("message_start", A_START("{'input_tokens':25,'cache_creation_input_tokens':0,"
                                       "'cache_read_input_tokens':10,'output_tokens':1}"))
        EVENT("content_block_start", A_BLOCK(0, "{'type':'text','text':''}"))
        A_PING
        EVENT("content_block_delta", A_TEXT(0, "Hello"))
        ": a comment\n\n"
        EVENT("content_block_delta", A_TEXT(0, " w\\u00f6rld \xe6\x97\xa5\xe6\x9c\xac"))
        EVENT("content_block_stop", A_STOP(0))
        A_END("'end_turn'", "{'output_tokens':12}");
#define TA "Hello w\\u00f6rld \xe6\x97\xa5\xe6\x9c\xac"
    feed_check(&keel_anthropic_decoder, FEED_STREAM_RESPONSES, 0, stream, "IIIPPIID", "",
               START(RA) TEXT_OPEN("msg_0_msg_1", 0, 2, 3) TEXT_DELTA("msg_0_msg_1", 0, "Hello", 4)
                   TEXT_DELTA("msg_0_msg_1", 0, " w\\u00f6rld \xe6\x97\xa5\xe6\x9c\xac", 5)
                       TEXT_CLOSE("msg_0_msg_1", 0, TA, "completed", 6, 7, 8)
                           END(9, COMPLETED(RA, MESSAGE("msg_0_msg_1", "completed", PART_TEXT(TA)), USAGE(35, 12, 47))));
    feed_check(&keel_anthropic_decoder, FEED_ASM_RESPONSES, 0, stream, "IIIPPIID", "",
               COMPLETED(RA, MESSAGE("msg_0_msg_1", "completed", PART_TEXT(TA)), USAGE(35, 12, 47)));
}

static void test_anthropic_thinking(void **state)
{
    static const char stream[] =
        EVENT("message_start", A_START("{'input_tokens':40,'output_tokens':3}"))
        EVENT("content_block_start", A_BLOCK(0, "{'type':'thinking','thinking':'','signature':''}"))
        EVENT("content_block_delta", A_DELTA(0, "{'type':'thinking_delta','thinking':'Six times'}"))
        EVENT("content_block_delta", A_DELTA(0, "{'type':'thinking_delta','thinking':' seven.'}"))
        EVENT("content_block_delta", A_DELTA(0, "{'type':'signature_delta','signature':'EqQBCgIYAhIM1gbcDa9G'}"))
        EVENT("content_block_stop", A_STOP(0))
        EVENT("content_block_start", A_BLOCK(1, "{'type':'text','text':''}"))
        EVENT("content_block_delta", A_TEXT(1, "42"))
        EVENT("content_block_delta", A_TEXT(1, ""))
        EVENT("content_block_stop", A_STOP(1))
        A_END("'max_tokens'", "{'output_tokens':30}");
#define OUTPUTA REASONING("rs_0_msg_1", "Six times seven.") "," MESSAGE("msg_1_msg_1", "incomplete", PART_TEXT("42"))
    feed_check(&keel_anthropic_decoder, FEED_STREAM_RESPONSES, 0, stream, "IIPPIIIPIIID", "",
               START(RA) RS_OPEN("rs_0_msg_1", 0, 2, 3) RS_DELTA("rs_0_msg_1", 0, "Six times", 4)
                   RS_DELTA("rs_0_msg_1", 0, " seven.", 5) RS_CLOSE("rs_0_msg_1", 0, "Six times seven.", 6, 7, 8)
                       TEXT_OPEN("msg_1_msg_1", 1, 9, 10) TEXT_DELTA("msg_1_msg_1", 1, "42", 11)
                           TEXT_CLOSE("msg_1_msg_1", 1, "42", "incomplete", 12, 13, 14)
                               CUT(15, INCOMPLETE(RA, "max_output_tokens", OUTPUTA, USAGE(40, 30, 70))));
    feed_check(&keel_anthropic_decoder, FEED_ASM_RESPONSES, 0, stream, "IIPPIIIPIIID", "",
               INCOMPLETE(RA, "max_output_tokens", OUTPUTA, USAGE(40, 30, 70)));
}

/* text, a call, text again (Claude may): the stream's items as they came, the whole answer's text
 * joined in one message */
static void test_anthropic_tools(void **state)
{
    static const char stream[] =
        EVENT("message_start", A_START("{'input_tokens':100,'output_tokens':1}"))
        EVENT("content_block_start", A_BLOCK(0, "{'type':'text','text':''}"))
        EVENT("content_block_delta", A_TEXT(0, "Let me check."))
        EVENT("content_block_stop", A_STOP(0))
        EVENT("content_block_start", A_TOOL(1, "toolu_01", "get_weather"))
        EVENT("content_block_delta", A_JSON(1, ""))
        EVENT("content_block_delta", A_JSON(1, "{\\'ci"))
        A_PING
        EVENT("content_block_delta", A_JSON(1, "ty\\': \\'Paris\\'}"))
        EVENT("content_block_stop", A_STOP(1))
        EVENT("content_block_start", A_BLOCK(2, "{'type':'text','text':''}"))
        EVENT("content_block_delta", A_TEXT(2, " And the time."))
        EVENT("content_block_stop", A_STOP(2))
        EVENT("content_block_start", A_TOOL(3, "toolu_02", "get_time"))
        EVENT("content_block_stop", A_STOP(3))
        A_END("'tool_use'", "{'output_tokens':60}");
#define CALLA1(status) CALL("fc_1_msg_1", "toolu_01", "get_weather", "{\\'city\\': \\'Paris\\'}", status)
    feed_check(&keel_anthropic_decoder, FEED_STREAM_RESPONSES, 0, stream, "IIPIPIPIPIIPIPIID", "",
               START(RA) TEXT_OPEN("msg_0_msg_1", 0, 2, 3) TEXT_DELTA("msg_0_msg_1", 0, "Let me check.", 4)
                   TEXT_CLOSE("msg_0_msg_1", 0, "Let me check.", "completed", 5, 6, 7)
                       FC_OPEN("fc_1_msg_1", 1, "toolu_01", "get_weather", 8) FC_DELTA("fc_1_msg_1", 1, "{\\'ci", 9)
                           FC_DELTA("fc_1_msg_1", 1, "ty\\': \\'Paris\\'}", 10)
                               FC_CLOSE("fc_1_msg_1", 1, "toolu_01", "get_weather", "{\\'city\\': \\'Paris\\'}",
                                        "completed", 11, 12) TEXT_OPEN("msg_2_msg_1", 2, 13, 14)
                                   TEXT_DELTA("msg_2_msg_1", 2, " And the time.", 15)
                                       TEXT_CLOSE("msg_2_msg_1", 2, " And the time.", "completed", 16, 17, 18)
                                           FC_OPEN("fc_3_msg_1", 3, "toolu_02", "get_time", 19)
                                               FC_CLOSE("fc_3_msg_1", 3, "toolu_02", "get_time", "", "completed", 20,
                                                        21)
                                                   END(22, COMPLETED(RA,
                                                                     MESSAGE("msg_0_msg_1", "completed",
                                                                             PART_TEXT("Let me check.")) "," CALLA1(
                                                                         "completed") "," MESSAGE("msg_2_msg_1",
                                                                                                  "completed",
                                                                                                  PART_TEXT(
                                                                                                      " And the time."))
                                                                         "," CALL("fc_3_msg_1", "toolu_02", "get_time",
                                                                                  "", "completed"),
                                                                     USAGE(100, 60, 160))));
    feed_check(&keel_anthropic_decoder, FEED_ASM_RESPONSES, 0, stream, "IIPIPIPIPIIPIPIID", "",
               COMPLETED(RA,
                         MESSAGE("msg_0_msg_1", "completed", PART_TEXT("Let me check. And the time.")) "," CALL(
                             "fc_1_msg_1", "toolu_01", "get_weather", "{\\'city\\': \\'Paris\\'}",
                             "completed") "," CALL("fc_2_msg_1", "toolu_02", "get_time", "", "completed"),
                         USAGE(100, 60, 160)));
}

/* an error after content: what came before, and no end (the caller ends the stream its own way) */
static void test_anthropic_error(void **state)
{
    static const char stream[] =
        EVENT("message_start", A_START("{'input_tokens':10,'output_tokens':1}"))
        EVENT("content_block_start", A_BLOCK(0, "{'type':'text','text':''}"))
        EVENT("content_block_delta", A_TEXT(0, "Partial"))
        EVENT("error", "{'type':'error','error':{'type':'overloaded_error','message':'Overloaded'}}");
    feed_check(&keel_anthropic_decoder, FEED_STREAM_RESPONSES, 0, stream, "IIPE", "overloaded_error",
               START(RA) TEXT_OPEN("msg_0_msg_1", 0, 2, 3) TEXT_DELTA("msg_0_msg_1", 0, "Partial", 4));
}

static void test_ops(void **state)
{
    assert_string_equal(enc->protocol, "openai-responses");
    assert_string_equal(enc->native_kind, "openai-responses");
    assert_null(enc->native_end);
    assert_string_equal(enc->error_event, "error");
    assert_int_equal(enc->native_frames, 0);
    assert_ptr_equal(enc->answer, keel_asm_responses);
    assert_ptr_equal(enc->stream_init, keel_responses_stream_init);
    assert_ptr_equal(enc->stream_event, keel_responses_stream_event);
    assert_ptr_equal(enc->stream_end, keel_responses_stream_end);
    assert_ptr_equal(enc->stream_release, keel_responses_stream_release);
    /* the other encoders hold nothing */
    assert_null(keel_openai_chat_encoder.stream_release);
    assert_null(keel_anthropic_encoder.stream_release);
    /* a fresh state: the default cap, nothing held */
    struct keel_stream_enc s;
    enc->stream_init(&s, 1);
    assert_int_equal(s.max, KEEL_STREAM_MAX_HELD);
    assert_int_equal(s.held, 0);
    assert_int_equal(s.include_usage, 1);
    enc->stream_release(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_reasoning_then_text),
        cmocka_unit_test(test_refusal),
        cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_finish_mapping),
        cmocka_unit_test(test_no_events),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_memory_cap),
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_answer_incomplete),
        cmocka_unit_test(test_openai_text),
        cmocka_unit_test(test_openai_tool_calls),
        cmocka_unit_test(test_openai_reasoning),
        cmocka_unit_test(test_openai_refusal),
        cmocka_unit_test(test_openai_unicode),
        cmocka_unit_test(test_openai_interleaved),
        cmocka_unit_test(test_anthropic_text),
        cmocka_unit_test(test_anthropic_thinking),
        cmocka_unit_test(test_anthropic_tools),
        cmocka_unit_test(test_anthropic_error),
        cmocka_unit_test(test_ops),
    };
    return cmocka_run_group_tests_name("responses_enc", tests, NULL, NULL);
}
