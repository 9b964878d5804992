/* test_anthropic_enc.c - the Anthropic Messages encoder (core/assemble.h, keel_anthropic_encoder):
 * events one by one into named SSE events, exactly as written here by hand, every frame JSON in
 * an order the protocol allows (feed.h's assert_events); under every smaller cap each call is
 * refused with nothing written and the state unmoved. A closed tool call's arguments are refused.
 * The whole Message from an assembly, its tool inputs compacted or refused. Then OpenAI streams
 * through the SSE parser and the OpenAI decoder into both, cut everywhere (feed.h). JSON is
 * written with ' for " to stay readable; \' is an escaped quote. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/event.h"
#include "feed.h"

static const struct keel_encoder_ops *const enc = &keel_anthropic_encoder;

/* a span over a literal */
#define J(s) ((struct keel_json){s, sizeof(s) - 1})

#define EV_TEXT(k, c, lit) ((struct keel_ev){.kind = (k), .choice = (c), .u.text = {.s = J(lit)}})
#define EV_TOOL(c, i, ...)                                                                                             \
    ((struct keel_ev){.kind = KEEL_EV_TOOL_CALL, .choice = (c), .u.tool = {.index = (i), __VA_ARGS__}})
#define EV_FINISH(c, lit) ((struct keel_ev){.kind = KEEL_EV_FINISH, .choice = (c), .u.finish = J(lit)})

/* ---- the frames, as Anthropic writes them ---- */

#define START(id, model)                                                                                               \
    "event: message_start\ndata: {'type':'message_start','message':{'id':'" id "','type':'message','role':"          \
    "'assistant','model':'" model "','content':[],'stop_reason':null,'stop_sequence':null,'usage':"                   \
    "{'input_tokens':0,'output_tokens':0}}}\n\n"
#define OPEN(i, block)                                                                                                 \
    "event: content_block_start\ndata: {'type':'content_block_start','index':" #i ",'content_block':" block "}\n\n"
#define TEXT_BLOCK "{'type':'text','text':''}"
#define THINKING_BLOCK "{'type':'thinking','thinking':'','signature':''}"
#define TOOL_BLOCK(id, name) "{'type':'tool_use','id':'" id "','name':'" name "','input':{}}"
#define DELTA(i, type, key, s)                                                                                         \
    "event: content_block_delta\ndata: {'type':'content_block_delta','index':" #i ",'delta':{'type':'" type "','" key \
    "':'" s "'}}\n\n"
#define TEXT_DELTA(i, s) DELTA(i, "text_delta", "text", s)
#define THINKING_DELTA(i, s) DELTA(i, "thinking_delta", "thinking", s)
#define JSON_DELTA(i, s) DELTA(i, "input_json_delta", "partial_json", s)
#define CLOSE(i) "event: content_block_stop\ndata: {'type':'content_block_stop','index':" #i "}\n\n"
#define END(stop, p, c)                                                                                                \
    "event: message_delta\ndata: {'type':'message_delta','delta':{'stop_reason':'" stop "','stop_sequence':null},"  \
    "'usage':{'input_tokens':" #p ",'output_tokens':" #c "}}\n\n"                                                   \
    "event: message_stop\ndata: {'type':'message_stop'}\n\n"

/* ---- events one by one ---- */

/* call (stream_event with ev, or stream_end when ev is NULL) appends exactly want_q (' for "),
 * every frame JSON; and before that, under every cap that leaves less room than it needs, it is
 * refused with -ENOBUFS, out as it was and s unmoved */
static void call_writes(struct keel_stream_enc *s, const struct keel_ev *ev, const char *want_q)
{
    static char want[8192];
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
    keel_buf_release(&out);
}

static void writes(struct keel_stream_enc *s, struct keel_ev ev, const char *want_q)
{
    call_writes(s, &ev, want_q);
}

/* the end of s is exactly want_q; want_q with everything s wrote before it is one whole stream */
static void ends(struct keel_stream_enc *s, const char *want_q)
{
    call_writes(s, NULL, want_q);
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

/* the stream as a whole: frames in an order the protocol allows */
static void whole(const char *q)
{
    static char text[16384];
    size_t n = dq(q, text, sizeof(text));
    assert_events(text, n);
}

static struct keel_ev meta_ev(void)
{
    struct keel_ev ev = {.kind = KEEL_EV_META};
    ev.u.meta.id = J("\"chatcmpl-1\"");
    ev.u.meta.model = J("\"gpt-4o\"");
    ev.u.meta.created = J("42");
    return ev;
}

static void test_text(void **state)
{
    struct keel_stream_enc s;
    enc->stream_init(&s, 0);
    /* META first: message_start carries its id and model; a later one says nothing */
    writes(&s, meta_ev(), START("chatcmpl-1", "gpt-4o"));
    struct keel_ev again = {.kind = KEEL_EV_META};
    again.u.meta.id = J("\"other\"");
    writes(&s, again, "");
    struct keel_ev role = {.kind = KEEL_EV_ROLE, .u.role = J("\"assistant\"")};
    writes(&s, role, "");
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"\""), ""); /* empty: no block */
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"Hi \\\"there\\\"\""), OPEN(0, TEXT_BLOCK) TEXT_DELTA(0, "Hi \\'there\\'"));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"\""), "");
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"!\""), TEXT_DELTA(0, "!"));
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
    ends(&s, CLOSE(0) END("end_turn", 7, 10));
    whole(START("chatcmpl-1", "gpt-4o") OPEN(0, TEXT_BLOCK) TEXT_DELTA(0, "Hi \\'there\\'") TEXT_DELTA(0, "!")
              CLOSE(0) END("end_turn", 7, 10));
}

/* a block per run of one kind: a thinking block, a text one, thinking again in a new one */
static void test_reasoning_then_text(void **state)
{
    struct keel_stream_enc s;
    enc->stream_init(&s, 1);
    /* no META first: message_start with the first event, id and model "" */
    writes(&s, EV_TEXT(KEEL_EV_REASONING, 0, "\"\""), START("", ""));
    writes(&s, EV_TEXT(KEEL_EV_REASONING, 0, "\"Six times\""), OPEN(0, THINKING_BLOCK) THINKING_DELTA(0, "Six times"));
    struct keel_ev alt = EV_TEXT(KEEL_EV_REASONING, 0, "\" seven.\"");
    alt.u.text.alt = 1; /* sent as "reasoning": the same to Anthropic */
    writes(&s, alt, THINKING_DELTA(0, " seven."));
    writes(&s, meta_ev(), ""); /* too late to say */
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"42\""), CLOSE(0) OPEN(1, TEXT_BLOCK) TEXT_DELTA(1, "42"));
    writes(&s, EV_TEXT(KEEL_EV_REASONING, 0, "\"Hm\""), CLOSE(1) OPEN(2, THINKING_BLOCK) THINKING_DELTA(2, "Hm"));
    writes(&s, EV_FINISH(0, "\"length\""), "");
    ends(&s, CLOSE(2) END("max_tokens", 0, 0));
}

static void test_refusal(void **state)
{
    struct keel_stream_enc s;
    enc->stream_init(&s, 0);
    writes(&s, meta_ev(), START("chatcmpl-1", "gpt-4o"));
    writes(&s, EV_TEXT(KEEL_EV_REFUSAL, 0, "\"\""), "");
    writes(&s, EV_TEXT(KEEL_EV_REFUSAL, 0, "\"I cannot\""), OPEN(0, TEXT_BLOCK) TEXT_DELTA(0, "I cannot"));
    /* text and refusal share the text block */
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\" help\""), TEXT_DELTA(0, " help"));
    writes(&s, EV_TEXT(KEEL_EV_REFUSAL, 0, "\" with that.\""), TEXT_DELTA(0, " with that."));
    writes(&s, EV_FINISH(0, "\"content_filter\""), "");
    ends(&s, CLOSE(0) END("refusal", 0, 0));
}

static void test_tool_calls(void **state)
{
    struct keel_stream_enc s;
    enc->stream_init(&s, 1);
    writes(&s, meta_ev(), START("chatcmpl-1", "gpt-4o"));
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 0, "\"Let me check.\""), OPEN(0, TEXT_BLOCK) TEXT_DELTA(0, "Let me check."));
    /* the first fragment starts the block, with the id and name sent */
    writes(&s, EV_TOOL(0, 0, .id = J("\"call_a\""), .type = J("\"function\""), .name = J("\"get_weather\""),
                       .args = J("\"\"")),
           CLOSE(0) OPEN(1, TOOL_BLOCK("call_a", "get_weather")));
    writes(&s, EV_TOOL(0, 0, .args = J("\"{\\\"ci\"")), JSON_DELTA(1, "{\\'ci"));
    writes(&s, EV_TOOL(0, 0, .args = J("\"\"")), "");
    writes(&s, EV_TOOL(0, 0), "");
    /* a server that repeats the id and name: only the arguments go out */
    writes(&s, EV_TOOL(0, 0, .id = J("\"call_a\""), .name = J("\"get_weather\""), .args = J("\"ty\\\": 1}\"")),
           JSON_DELTA(1, "ty\\': 1}"));
    /* no id sent: one made of the index; the arguments of the first fragment follow its start */
    writes(&s, EV_TOOL(0, 1, .name = J("\"get_time\""), .args = J("\"{}\"")),
           CLOSE(1) OPEN(2, TOOL_BLOCK("toolu_keel_1", "get_time")) JSON_DELTA(2, "{}"));
    /* the closed call: a fragment that says nothing is nothing, arguments cannot go out */
    writes(&s, EV_TOOL(0, 0, .id = J("\"call_a\""), .args = J("\"\"")), "");
    refused(&s, EV_TOOL(0, 0, .args = J("\"x\"")), -EPROTO);
    /* an empty id is none; no name: ""; raw arguments escaped into the string */
    writes(&s, EV_TOOL(0, 5, .id = J("\"\""), .args = J("{\"q\": \"a\\\"b\",\n\t\"x\":\x01}"), .args_raw = 1),
           CLOSE(2) OPEN(3, TOOL_BLOCK("toolu_keel_5", ""))
               JSON_DELTA(3, "{\\'q\\': \\'a\\\\\\'b\\',\\n\\t\\'x\\':\\u0001}"));
    refused(&s, EV_TOOL(0, 1, .args = J("\"x\"")), -EPROTO);
    /* past the index limit */
    refused(&s, EV_TOOL(0, KEEL_STREAM_MAX_INDEX, .name = J("\"f\"")), -ENOBUFS);
    writes(&s, EV_TOOL(0, KEEL_STREAM_MAX_INDEX - 1, .id = J("\"call_z\""), .name = J("\"f\"")),
           CLOSE(3) OPEN(4, TOOL_BLOCK("call_z", "f")));
    /* other choices are not the protocol's */
    writes(&s, EV_TOOL(1, 0, .id = J("\"call_b\""), .name = J("\"g\""), .args = J("\"{}\"")), "");
    writes(&s, EV_TEXT(KEEL_EV_TEXT, 1, "\"b\""), "");
    writes(&s, EV_FINISH(1, "\"length\""), "");
    writes(&s, EV_FINISH(0, "\"tool_calls\""), "");
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 20, 30, 50}}};
    writes(&s, u, "");
    ends(&s, CLOSE(4) END("tool_use", 20, 30));
}

/* FINISH's word as stop_reason: the stream's end and the whole answer say the same */
static void test_finish_mapping(void **state)
{
    static const struct {
        const char *finish; /* a literal; NULL: none came */
        const char *stop;
    } cases[] = {
        {"\"stop\"", "end_turn"},
        {"\"length\"", "max_tokens"},
        {"\"tool_calls\"", "tool_use"},
        {"\"function_call\"", "tool_use"},
        {"\"content_filter\"", "refusal"},
        {"\"insufficient_system_resource\"", "end_turn"},
        {"\"\"", "end_turn"},
        {"\"l\\u0065ngth\"", "max_tokens"}, /* compared decoded */
        {NULL, "end_turn"},
    };
    static char q[1024], want[1024];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct keel_stream_enc s;
        struct keel_asm a;
        struct keel_buf out;
        struct keel_ev fin = {.kind = KEEL_EV_FINISH};
        enc->stream_init(&s, 0);
        keel_asm_init(&a, FEED_BIG, "openai");
        keel_buf_init(&out, FEED_BIG);
        if (cases[i].finish != NULL) {
            fin.u.finish = (struct keel_json){cases[i].finish, strlen(cases[i].finish)};
            assert_int_equal(enc->stream_event(&s, &fin, &out), 0);
            assert_int_equal(keel_asm_event(&a, &fin), 0);
        }
        assert_int_equal(enc->stream_end(&s, &out), 0);
        snprintf(q, sizeof(q), START("", "") END("%s", 0, 0), cases[i].stop);
        assert_wrote(&out, want, dq(q, want, sizeof(want)));
        assert_events(out.base, out.len);
        keel_buf_reset(&out);
        assert_int_equal(enc->answer(&a, &out), 0);
        snprintf(q, sizeof(q), "{'id':'','type':'message','role':'assistant','model':'','content':[],'stop_reason':"
                               "'%s','stop_sequence':null,'usage':{'input_tokens':0,'output_tokens':0}}",
                 cases[i].stop);
        assert_wrote(&out, want, dq(q, want, sizeof(want)));
        keel_buf_release(&out);
        keel_asm_release(&a);
    }
    /* the first finish reason that is not empty, choice 0's only */
    struct keel_stream_enc s;
    enc->stream_init(&s, 0);
    writes(&s, EV_FINISH(1, "\"tool_calls\""), START("", ""));
    writes(&s, EV_FINISH(0, "\"\""), "");
    writes(&s, EV_FINISH(0, "\"length\""), "");
    writes(&s, EV_FINISH(0, "\"stop\""), "");
    ends(&s, END("max_tokens", 0, 0));
}

/* a message with nothing in it is still whole: message_start at the end */
static void test_no_events(void **state)
{
    struct keel_stream_enc s;
    struct keel_asm a;
    enc->stream_init(&s, 0);
    struct keel_ev err = {.kind = KEEL_EV_ERROR, .u.error = {.code = ""}};
    writes(&s, err, ""); /* an error starts nothing */
    ends(&s, START("", "") END("end_turn", 0, 0));
    whole(START("", "") END("end_turn", 0, 0));
    keel_asm_init(&a, FEED_BIG, "openai");
    struct keel_buf out;
    static char want[512];
    size_t n = dq("{'id':'','type':'message','role':'assistant','model':'','content':[],'stop_reason':'end_turn',"
                  "'stop_sequence':null,'usage':{'input_tokens':0,'output_tokens':0}}",
                  want, sizeof(want));
    keel_buf_init(&out, FEED_BIG);
    assert_int_equal(enc->answer(&a, &out), 0);
    assert_wrote(&out, want, n);
    keel_buf_release(&out);
    keel_asm_release(&a);
    /* a usage alone: the message's start, then its counts at the end */
    enc->stream_init(&s, 0);
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 3, 0, 3}}};
    writes(&s, u, START("", ""));
    ends(&s, END("end_turn", 3, 0));
    /* a negative count (a server's -1 for "unknown") is none: Anthropic's counts never are */
    enc->stream_init(&s, 0);
    u.u.usage.n = (struct keel_usage){1, -1, -2, -3};
    writes(&s, u, START("", ""));
    ends(&s, END("end_turn", 0, 0));
}

/* META's id and model that are no strings are "" */
static void test_meta_not_strings(void **state)
{
    struct keel_stream_enc s;
    enc->stream_init(&s, 0);
    struct keel_ev m = {.kind = KEEL_EV_META};
    m.u.meta.id = J("17");
    writes(&s, m, START("", ""));
    struct keel_asm a;
    struct keel_buf out;
    keel_asm_init(&a, FEED_BIG, "openai");
    keel_buf_init(&out, FEED_BIG);
    m.u.meta.model = J("{\"x\":1}");
    assert_int_equal(keel_asm_event(&a, &m), 0);
    assert_int_equal(enc->answer(&a, &out), 0);
    static const char head[] = "{\"id\":\"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"\",";
    assert_true(out.len > sizeof(head) && memcmp(out.base, head, sizeof(head) - 1) == 0);
    keel_buf_release(&out);
    keel_asm_release(&a);
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

/* a's Message is exactly want_q; under every cap that leaves less room, -ENOBUFS and out as it was */
static void answer_is(const struct keel_asm *a, const char *want_q)
{
    static char want[8192];
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

/* a's Message is refused with -EPROTO, out as it was */
static void answer_refused(const struct keel_asm *a)
{
    struct keel_buf out;
    keel_buf_init(&out, FEED_BIG);
    assert_int_equal(keel_buf_append(&out, "x", 1), 0);
    assert_int_equal(enc->answer(a, &out), -EPROTO);
    assert_int_equal(out.len, 1);
    keel_buf_release(&out);
}

static void test_answer(void **state)
{
    struct keel_asm a;
    keel_asm_init(&a, FEED_BIG, "openai");
    struct keel_ev m = meta_ev();
    m.u.meta.system_fingerprint = J("\"fp\"");
    assert_int_equal(keel_asm_event(&a, &m), 0);
    /* blocks in this order whatever the events' order: thinking, text, refusal, tool calls */
    assert_int_equal(tool_ev(&a, 0, "\"call_a\"", "\"get_weather\"", "\"{\\\"city\\\": \"", 0), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_REFUSAL, 0, "\"No \\\"that\\\".\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"Caf\\u00e9 \xc3\xa9\\n\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_REASONING, 0, "\"Hm.\""), 0);
    /* whitespace between tokens dropped, not inside strings; escapes in strings kept */
    assert_int_equal(tool_ev(&a, 0, NULL, NULL, "\"\\\"Paris \\\\\\\"x\\\\\\\"\\\",\\n \\\"n\\\": [1, 2.50e1],\\t"
                                                "\\\"u\\\": \\\"\\\\u00e9\\u00e9\\\" }\"", 0),
                     0);
    /* a gap at 1; index 2 with no id nor arguments; index 3's arguments sent raw; blank ones */
    assert_int_equal(tool_ev(&a, 2, NULL, "\"now\"", NULL, 0), 0);
    assert_int_equal(tool_ev(&a, 3, "\"call_d\"", "\"f\"", "{ \"a\" : {\"b\": [ ] } }", 1), 0);
    assert_int_equal(tool_ev(&a, 4, "\"call_e\"", "\"g\"", "\" \\n\\t \"", 0), 0);
    /* a string ending in an escaped backslash, spaces inside it kept */
    assert_int_equal(tool_ev(&a, 5, "\"call_f\"", "\"h\"", "{\"p\": \"C:\\\\ x\\\\\", \"q\" :\r\n1}", 1), 0);
    /* other choices are left out */
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 1, "\"other\""), 0);
    struct keel_ev fin = {.kind = KEEL_EV_FINISH, .u.finish = J("\"tool_calls\"")};
    assert_int_equal(keel_asm_event(&a, &fin), 0);
    struct keel_ev u = {.kind = KEEL_EV_USAGE, .u.usage = {.n = {1, 11, 22, 33}, .raw = J("{}")}};
    assert_int_equal(keel_asm_event(&a, &u), 0);
    answer_is(&a, "{'id':'chatcmpl-1','type':'message','role':'assistant','model':'gpt-4o','content':["
                  "{'type':'thinking','thinking':'Hm.','signature':''},"
                  "{'type':'text','text':'Caf\\u00e9 \xc3\xa9\\n'},"
                  "{'type':'text','text':'No \\'that\\'.'},"
                  "{'type':'tool_use','id':'call_a','name':'get_weather','input':{'city':'Paris \\'x\\'',"
                  "'n':[1,2.50e1],'u':'\\u00e9\xc3\xa9'}},"
                  "{'type':'tool_use','id':'toolu_keel_2','name':'now','input':{}},"
                  "{'type':'tool_use','id':'call_d','name':'f','input':{'a':{'b':[]}}},"
                  "{'type':'tool_use','id':'call_e','name':'g','input':{}},"
                  "{'type':'tool_use','id':'call_f','name':'h','input':{'p':'C:\\\\ x\\\\','q':1}}"
                  "],'stop_reason':'tool_use','stop_sequence':null,'usage':{'input_tokens':11,'output_tokens':22}}");
    keel_asm_release(&a);

    /* empty texts make no block */
    keel_asm_init(&a, FEED_BIG, "openai");
    assert_int_equal(text_ev(&a, KEEL_EV_REASONING, 0, "\"\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_REFUSAL, 0, "\"\""), 0);
    answer_is(&a, "{'id':'','type':'message','role':'assistant','model':'','content':[],'stop_reason':'end_turn',"
                  "'stop_sequence':null,'usage':{'input_tokens':0,'output_tokens':0}}");
    keel_asm_release(&a);
}

/* arguments that are not one JSON object: the Message is refused, not sent with a made-up input */
static void test_answer_bad_input(void **state)
{
    static const struct {
        const char *args;
        int raw;
    } bad[] = {
        {"\"{\\\"a\\\":\"", 0},     /* cut short */
        {"\"[1, 2]\"", 0},          /* an array */
        {"\"1\"", 0},               /* a number */
        {"\"\\\"s\\\"\"", 0},       /* a string */
        {"\"{} {}\"", 0},           /* two values */
        {"\"{\\\"a\\\":1}x\"", 0},  /* trailing bytes */
        {"\"{\\\"a\\\":\\u0000}\"", 0}, /* a NUL */
        {"[1]", 1},                 /* raw, an array */
        {"{\"a\": tru}", 1},        /* raw, not JSON */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct keel_asm a;
        keel_asm_init(&a, FEED_BIG, "openai");
        assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"hi\""), 0);
        assert_int_equal(tool_ev(&a, 0, "\"call_a\"", "\"f\"", "\"{}\"", 0), 0);
        assert_int_equal(tool_ev(&a, 1, "\"call_b\"", "\"g\"", bad[i].args, bad[i].raw), 0);
        answer_refused(&a);
        keel_asm_release(&a);
    }
}

/* ---- OpenAI streams through both ---- */

#define DATA(s) "data: " s "\n\n"
#define M1 "{'id':'chatcmpl-1','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o-2024-08-06'," \
           "'service_tier':'default','system_fingerprint':'fp_f5','choices':"

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
    feed_check(&keel_openai_decoder, FEED_STREAM_ANTHROPIC, 0, stream, "IPPIID", "",
               START("chatcmpl-1", "gpt-4o-2024-08-06") OPEN(0, TEXT_BLOCK) TEXT_DELTA(0, "Hello")
                   TEXT_DELTA(0, " world") CLOSE(0) END("end_turn", 9, 2));
    feed_check(&keel_openai_decoder, FEED_ASM_ANTHROPIC, 0, stream, "IPPIID", "",
               "{'id':'chatcmpl-1','type':'message','role':'assistant','model':'gpt-4o-2024-08-06','content':["
               "{'type':'text','text':'Hello world'}],'stop_reason':'end_turn','stop_sequence':null,'usage':"
               "{'input_tokens':9,'output_tokens':2}}");
}

#define M2 "{'id':'chatcmpl-2','object':'chat.completion.chunk','created':1700000001,'model':'gpt-4o','choices':"
#define D2(delta, finish) DATA(M2 "[{'index':0,'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}")
#define ARGS2(i, s) D2("{'tool_calls':[{'index':" #i ",'function':{'arguments':'" s "'}}]}", "null")

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
        DATA(M2 "[],'usage':{'prompt_tokens':30,'completion_tokens':40,'total_tokens':70}}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM_ANTHROPIC, 1, stream, "IPPPPPPPPIID", "",
               START("chatcmpl-2", "gpt-4o") OPEN(0, TEXT_BLOCK) TEXT_DELTA(0, "Checking.")
                   CLOSE(0) OPEN(1, TOOL_BLOCK("call_a", "get_weather")) JSON_DELTA(1, "{\\'ci")
                       JSON_DELTA(1, "ty\\': \\'Par") JSON_DELTA(1, "is\\'}")
                           CLOSE(1) OPEN(2, TOOL_BLOCK("call_b", "get_time")) JSON_DELTA(2, "{\\'tz\\':")
                               JSON_DELTA(2, " \\'CET\\'}") CLOSE(2) END("tool_use", 30, 40));
    feed_check(&keel_openai_decoder, FEED_ASM_ANTHROPIC, 1, stream, "IPPPPPPPPIID", "",
               "{'id':'chatcmpl-2','type':'message','role':'assistant','model':'gpt-4o','content':["
               "{'type':'text','text':'Checking.'},"
               "{'type':'tool_use','id':'call_a','name':'get_weather','input':{'city':'Paris'}},"
               "{'type':'tool_use','id':'call_b','name':'get_time','input':{'tz':'CET'}}"
               "],'stop_reason':'tool_use','stop_sequence':null,'usage':{'input_tokens':30,'output_tokens':40}}");
}

#define M3 "{'id':'r-3','object':'chat.completion.chunk','created':1700000002,'model':'deepseek-reasoner'," \
           "'system_fingerprint':'fp_r','choices':"
#define D3(delta, finish) DATA(M3 "[{'index':0,'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}")

static void test_openai_reasoning(void **state)
{
    static const char stream[] =
        D3("{'role':'assistant','content':null,'reasoning_content':''}", "null")
        D3("{'content':null,'reasoning_content':'Six times'}", "null")
        D3("{'content':null,'reasoning_content':' seven.'}", "null")
        D3("{'content':'42','reasoning_content':null}", "null")
        DATA(M3 "[{'index':0,'delta':{'content':'','reasoning_content':null},'logprobs':null,'finish_reason':"
                "'length'}],'usage':{'prompt_tokens':10,'completion_tokens':5,'total_tokens':15}}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM_ANTHROPIC, 0, stream, "IPPPID", "",
               START("r-3", "deepseek-reasoner") OPEN(0, THINKING_BLOCK) THINKING_DELTA(0, "Six times")
                   THINKING_DELTA(0, " seven.") CLOSE(0) OPEN(1, TEXT_BLOCK) TEXT_DELTA(1, "42") CLOSE(1)
                       END("max_tokens", 10, 5));
    feed_check(&keel_openai_decoder, FEED_ASM_ANTHROPIC, 0, stream, "IPPPID", "",
               "{'id':'r-3','type':'message','role':'assistant','model':'deepseek-reasoner','content':["
               "{'type':'thinking','thinking':'Six times seven.','signature':''},{'type':'text','text':'42'}],"
               "'stop_reason':'max_tokens','stop_sequence':null,'usage':{'input_tokens':10,'output_tokens':5}}");
}

#define M4 "{'id':'chatcmpl-4','object':'chat.completion.chunk','created':1700000003,'model':'gpt-4o','choices':"
#define D4(delta, finish) DATA(M4 "[{'index':0,'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}")

static void test_openai_refusal(void **state)
{
    static const char stream[] =
        D4("{'role':'assistant','content':null,'refusal':''}", "null")
        D4("{'refusal':'I cannot'}", "null")
        D4("{'refusal':' help with that.'}", "null")
        D4("{}", "'content_filter'")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM_ANTHROPIC, 0, stream, "IPPID", "",
               START("chatcmpl-4", "gpt-4o") OPEN(0, TEXT_BLOCK) TEXT_DELTA(0, "I cannot")
                   TEXT_DELTA(0, " help with that.") CLOSE(0) END("refusal", 0, 0));
    feed_check(&keel_openai_decoder, FEED_ASM_ANTHROPIC, 0, stream, "IPPID", "",
               "{'id':'chatcmpl-4','type':'message','role':'assistant','model':'gpt-4o','content':["
               "{'type':'text','text':'I cannot help with that.'}],'stop_reason':'refusal','stop_sequence':null,"
               "'usage':{'input_tokens':0,'output_tokens':0}}");
}

#define M7 "{'id':'chatcmpl-7','object':'chat.completion.chunk','created':1700000006,'model':'gpt-4o','choices':"
#define TEXT7(s) DATA(M7 "[{'index':0,'delta':{'content':'" s "'},'logprobs':null,'finish_reason':null}]}")

/* escapes are kept as sent; raw UTF-8 (2, 3 and 4 bytes) is cut between feeds at every byte */
static void test_openai_unicode(void **state)
{
    static const char stream[] =
        TEXT7("caf\\u00e9 ")
        TEXT7("\\ud83d\\ude00")
        TEXT7(" na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80")
        TEXT7(" \\'q\\' \\\\ tab\\t end\\n")
        TEXT7("\\u2028/\\/")
        DATA(M7 "[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}]}")
        DATA("[DONE]");
    feed_check(&keel_openai_decoder, FEED_STREAM_ANTHROPIC, 0, stream, "PPPPPID", "",
               START("chatcmpl-7", "gpt-4o") OPEN(0, TEXT_BLOCK) TEXT_DELTA(0, "caf\\u00e9 ")
                   TEXT_DELTA(0, "\\ud83d\\ude00")
                       TEXT_DELTA(0, " na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80")
                       TEXT_DELTA(0, " \\'q\\' \\\\ tab\\t end\\n") TEXT_DELTA(0, "\\u2028/\\/") CLOSE(0)
                           END("end_turn", 0, 0));
    feed_check(&keel_openai_decoder, FEED_ASM_ANTHROPIC, 0, stream, "PPPPPID", "",
               "{'id':'chatcmpl-7','type':'message','role':'assistant','model':'gpt-4o','content':[{'type':'text',"
               "'text':'caf\\u00e9 \\ud83d\\ude00 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \\'q\\' \\\\ "
               "tab\\t end\\n\\u2028/\\/'}],'stop_reason':'end_turn','stop_sequence':null,'usage':{'input_tokens':0,"
               "'output_tokens':0}}");
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
 * own servers do not): the decoder's consumer says -EPROTO there, and what went out before is a
 * valid beginning of a stream. The assembler joins them by index: the whole answer is fine. */
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
    static char sse[4096], want[4096];
    static struct run r;
    struct keel_sse_parser p;
    size_t len = dq(stream_q, sse, sizeof(sse));
    size_t n = dq(START("chatcmpl-2", "gpt-4o") OPEN(0, TOOL_BLOCK("call_a", "get_weather")) JSON_DELTA(0, "{\\'ci")
                      CLOSE(0) OPEN(1, TOOL_BLOCK("call_b", "get_time")) JSON_DELTA(1, "{}"),
                  want, sizeof(want));
    enc->stream_init(&r.s, 0);
    keel_buf_init(&r.out, FEED_BIG);
    keel_decoder_init(&r.d, &keel_openai_decoder, run_ev, &r);
    keel_sse_parser_init(&p, 1 << 16, run_frame, NULL, &r);
    feed_pieces(&p, sse, len, NULL, 0);
    keel_sse_parser_release(&p);
    assert_int_equal(r.d.rv, -EPROTO);
    assert_wrote(&r.out, want, n);
    assert_events(r.out.base, r.out.len);
    keel_buf_release(&r.out);
    feed_check(&keel_openai_decoder, FEED_ASM_ANTHROPIC, 0, stream_q, "PPPPID", "",
               "{'id':'chatcmpl-2','type':'message','role':'assistant','model':'gpt-4o','content':["
               "{'type':'tool_use','id':'call_a','name':'get_weather','input':{'city':'Paris'}},"
               "{'type':'tool_use','id':'call_b','name':'get_time','input':{}}"
               "],'stop_reason':'tool_use','stop_sequence':null,'usage':{'input_tokens':0,'output_tokens':0}}");
}

static void test_ops(void **state)
{
    assert_string_equal(enc->protocol, "anthropic-messages");
    assert_string_equal(enc->native_kind, "anthropic");
    assert_ptr_equal(enc->answer, keel_asm_anthropic_message);
    assert_ptr_equal(enc->stream_init, keel_anthropic_stream_init);
    assert_ptr_equal(enc->stream_event, keel_anthropic_stream_event);
    assert_ptr_equal(enc->stream_end, keel_anthropic_stream_end);
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
        cmocka_unit_test(test_meta_not_strings),
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_answer_bad_input),
        cmocka_unit_test(test_openai_text),
        cmocka_unit_test(test_openai_tool_calls),
        cmocka_unit_test(test_openai_reasoning),
        cmocka_unit_test(test_openai_refusal),
        cmocka_unit_test(test_openai_unicode),
        cmocka_unit_test(test_openai_interleaved),
        cmocka_unit_test(test_ops),
    };
    return cmocka_run_group_tests_name("anthropic_enc", tests, NULL, NULL);
}
