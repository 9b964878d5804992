/* test_anthropic.c - the Anthropic Messages decoder (core/anthropic.c): each stream event's
 * verdict and events, with the state kept across frames (and kept by a decoder that only
 * judges); whole answers and error bodies; then whole streams through the SSE parser into the
 * assembler (one chat.completion) and into the OpenAI stream encoder (chat.completion.chunk
 * frames), cut everywhere (feed.h), each compared with what is written here by hand. JSON is
 * written with ' for " to stay readable; \' is an escaped quote. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "core/event.h"
#include "feed.h"

/* ---- events, as one line each ---- */

struct rec {
    char log[4096];
    size_t len;
    int stop_at; /* return 9 from this event on (1-based; 0: never) */
    int n;
};

#define SPAN(v) (int)((v).p != NULL ? (v).len : 1), (v).p != NULL ? (v).p : "-"

static void line(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct rec *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->len += (size_t)vsnprintf(r->log + r->len, sizeof(r->log) - r->len, fmt, ap);
    va_end(ap);
    assert_true(r->len < sizeof(r->log));
}

static int record(void *ctx, const struct keel_ev *ev)
{
    struct rec *r = ctx;
    const struct keel_usage *u = &ev->u.usage.n;
    assert_int_equal(ev->choice, 0); /* one choice, always */
    r->n++;
    switch (ev->kind) {
    case KEEL_EV_META:
        assert_null(ev->u.meta.created.p);
        line(r, "META id=%.*s model=%.*s\n", SPAN(ev->u.meta.id), SPAN(ev->u.meta.model));
        break;
    case KEEL_EV_TEXT:
    case KEEL_EV_REASONING:
        assert_int_equal(ev->u.text.alt, 0);
        line(r, "%s %.*s\n", ev->kind == KEEL_EV_TEXT ? "TEXT" : "REASONING", SPAN(ev->u.text.s));
        break;
    case KEEL_EV_TOOL_CALL:
        assert_null(ev->u.tool.type.p);
        line(r, "TOOL #%u id=%.*s name=%.*s args=%.*s%s\n", (unsigned)ev->u.tool.index, SPAN(ev->u.tool.id),
             SPAN(ev->u.tool.name), SPAN(ev->u.tool.args), ev->u.tool.args_raw ? " (raw)" : "");
        break;
    case KEEL_EV_FINISH:
        line(r, "FINISH %.*s\n", SPAN(ev->u.finish));
        break;
    case KEEL_EV_USAGE:
        assert_true(u->present);
        line(r, "USAGE %lld/%lld/%lld raw=%.*s\n", u->prompt_tokens, u->completion_tokens, u->total_tokens,
             SPAN(ev->u.usage.raw));
        break;
    case KEEL_EV_ERROR:
        line(r, "ERROR %s raw=%.*s\n", ev->u.error.code, SPAN(ev->u.error.raw));
        break;
    default:
        fail_msg("an event the decoder never sends: %d", ev->kind);
    }
    return r->stop_at && r->n >= r->stop_at ? 9 : 0;
}

/* A stream under way: a decoder with the recorder and one that only judges, fed the same
 * frames. step() checks one frame's verdict and events (' for "), and that both verdicts match. */
struct run {
    struct keel_decoder d, judge;
    struct rec r;
    struct keel_chunk_info info;
};

static void start(struct run *s)
{
    memset(s, 0, sizeof(*s));
    keel_decoder_init(&s->d, &keel_anthropic_decoder, record, &s->r);
    keel_decoder_init(&s->judge, &keel_anthropic_decoder, NULL, NULL);
}

static void step(struct run *s, const char *event, const char *data_q, enum keel_chunk_kind kind, const char *want_q)
{
    static char data[4096], want[4096];
    struct keel_chunk_info alone;
    size_t len = dq(data_q, data, sizeof(data));
    dq(want_q, want, sizeof(want));
    s->r.len = 0;
    s->r.log[0] = '\0';
    s->d.ops->frame(&s->d, event, data, len, &s->info);
    s->judge.ops->frame(&s->judge, event, data, len, &alone);
    assert_int_equal(s->info.kind, kind);
    assert_string_equal(s->r.log, want);
    assert_memory_equal(&s->info, &alone, sizeof(alone));
}

/* one frame on a fresh stream */
static void frame_is(const char *event, const char *data_q, enum keel_chunk_kind kind, const char *want_q)
{
    struct run s;
    start(&s);
    step(&s, event, data_q, kind, want_q);
}

#define START(usage)                                                                                                   \
    "{'type':'message_start','message':{'id':'msg_1','type':'message','role':'assistant','content':[],"              \
    "'model':'claude-sonnet-4-5','stop_reason':null,'stop_sequence':null,'usage':" usage "}}"
#define BLOCK(i, block) "{'type':'content_block_start','index':" #i ",'content_block':" block "}"
#define DELTA(i, delta) "{'type':'content_block_delta','index':" #i ",'delta':" delta "}"
#define TEXT_DELTA(i, s) DELTA(i, "{'type':'text_delta','text':'" s "'}")
#define JSON_DELTA(i, s) DELTA(i, "{'type':'input_json_delta','partial_json':'" s "'}")
#define TOOL_BLOCK(i, id, name) BLOCK(i, "{'type':'tool_use','id':'" id "','name':'" name "','input':{}}")
#define STOP_BLOCK(i) "{'type':'content_block_stop','index':" #i "}"
#define MESSAGE_DELTA(stop, usage)                                                                                     \
    "{'type':'message_delta','delta':{'stop_reason':" stop ",'stop_sequence':null},'usage':" usage "}"
#define MESSAGE_STOP "{'type':'message_stop'}"
#define PING "{'type':'ping'}"

/* ---- the stream's events, one by one ---- */

static void test_decoder_for(void **state)
{
    assert_ptr_equal(keel_decoder_for("anthropic"), &keel_anthropic_decoder);
    assert_string_equal(keel_anthropic_decoder.kind, "anthropic");
}

static void test_message_start(void **state)
{
    struct run s;
    start(&s);
    /* prompt tokens are every input token: the cache's reads and writes too, as OpenAI counts */
    step(&s, "message_start",
         START("{'input_tokens':25,'cache_creation_input_tokens':5,'cache_read_input_tokens':100,'output_tokens':1}"),
         KEEL_CHUNK_IDLE,
         "META id='msg_1' model='claude-sonnet-4-5'\n"
         "USAGE 130/1/131 raw={'input_tokens':25,'cache_creation_input_tokens':5,'cache_read_input_tokens':100,"
         "'output_tokens':1}\n");
    assert_true(s.info.has_usage);
    assert_int_equal(s.info.usage.prompt_tokens, 130);
    assert_int_equal(s.info.usage.completion_tokens, 1);
    assert_int_equal(s.info.usage.total_tokens, 131);
    assert_int_equal(s.info.usage.cached_tokens, 100); /* the cache's reads, for keel_tokens_total's cached */
    /* the final counts take the prompt (and its cached part) from message_start */
    step(&s, "message_delta", MESSAGE_DELTA("'end_turn'", "{'output_tokens':15}"), KEEL_CHUNK_IDLE,
         "FINISH 'stop'\nUSAGE 130/15/145 raw={'output_tokens':15}\n");
    assert_int_equal(s.info.usage.total_tokens, 145);
    assert_int_equal(s.info.usage.cached_tokens, 100);
    /* ... unless message_delta counts the input itself (server tools add to it) */
    step(&s, "message_delta", MESSAGE_DELTA("null", "{'input_tokens':40,'output_tokens':20}"), KEEL_CHUNK_IDLE,
         "USAGE 40/20/60 raw={'input_tokens':40,'output_tokens':20}\n");
    /* no usage, odd fields: nothing made up */
    frame_is("message_start", "{'type':'message_start','message':{'id':'msg_2','model':null}}", KEEL_CHUNK_IDLE,
             "META id='msg_2' model=-\n");
    frame_is("message_start", "{'type':'message_start','message':{}}", KEEL_CHUNK_IDLE, "");
    /* counts that are no integers read as 0; negative ones too */
    frame_is("message_start", START("{'input_tokens':'9','output_tokens':-4}"), KEEL_CHUNK_IDLE,
             "META id='msg_1' model='claude-sonnet-4-5'\nUSAGE 0/0/0 raw={'input_tokens':'9','output_tokens':-4}\n");
}

/* pings keep a stream alive and say nothing: never progress (seed 001); nor a block's end, nor a
 * type to come */
static void test_idle(void **state)
{
    frame_is("ping", PING, KEEL_CHUNK_IDLE, "");
    frame_is("content_block_stop", STOP_BLOCK(0), KEEL_CHUNK_IDLE, "");
    frame_is("future_event", "{'type':'future_event','text':'x'}", KEEL_CHUNK_IDLE, "");
    frame_is("message", "{'text':'no type'}", KEEL_CHUNK_IDLE, "");
    /* a data without a type goes by the event's name */
    frame_is("message_stop", "{}", KEEL_CHUNK_DONE, "");
    frame_is("message", MESSAGE_STOP, KEEL_CHUNK_DONE, "");
    /* the data's type wins over the name */
    frame_is("ping", MESSAGE_STOP, KEEL_CHUNK_DONE, "");
}

static void test_text(void **state)
{
    struct run s;
    start(&s);
    step(&s, "content_block_start", BLOCK(0, "{'type':'text','text':''}"), KEEL_CHUNK_IDLE, "");
    step(&s, "content_block_delta", TEXT_DELTA(0, "Hi \\'you\\' \\u00e9"), KEEL_CHUNK_PROGRESS,
         "TEXT 'Hi \\'you\\' \\u00e9'\n");
    step(&s, "content_block_delta", TEXT_DELTA(0, ""), KEEL_CHUNK_IDLE, "TEXT ''\n");
    step(&s, "content_block_delta", DELTA(0, "{'type':'text_delta','text':null}"), KEEL_CHUNK_IDLE, "");
    /* a text delta needs no block: its type says what it is */
    step(&s, "content_block_delta", TEXT_DELTA(7, "x"), KEEL_CHUNK_PROGRESS, "TEXT 'x'\n");
    step(&s, "content_block_stop", STOP_BLOCK(0), KEEL_CHUNK_IDLE, "");
    /* a block that starts with its text */
    frame_is("content_block_start", BLOCK(1, "{'type':'text','text':'Hello'}"), KEEL_CHUNK_PROGRESS, "TEXT 'Hello'\n");
}

static void test_thinking(void **state)
{
    struct run s;
    start(&s);
    step(&s, "content_block_start", BLOCK(0, "{'type':'thinking','thinking':'','signature':''}"), KEEL_CHUNK_IDLE,
         "");
    step(&s, "content_block_delta", DELTA(0, "{'type':'thinking_delta','thinking':'Let me see.'}"),
         KEEL_CHUNK_PROGRESS, "REASONING 'Let me see.'\n");
    step(&s, "content_block_delta", DELTA(0, "{'type':'thinking_delta','thinking':''}"), KEEL_CHUNK_IDLE,
         "REASONING ''\n");
    /* the signature is kept nowhere, and is no progress */
    step(&s, "content_block_delta", DELTA(0, "{'type':'signature_delta','signature':'EqQBCgIYAhIM1gbcDa9GJwZA'}"),
         KEEL_CHUNK_IDLE, "");
    /* delta types to come are no progress either */
    step(&s, "content_block_delta", DELTA(0, "{'type':'citations_delta','citation':{'cited_text':'x'}}"),
         KEEL_CHUNK_IDLE, "");
    step(&s, "content_block_delta", DELTA(0, "{'text':'no type'}"), KEEL_CHUNK_IDLE, "");
    /* redacted thinking is nothing a client reads */
    step(&s, "content_block_start", BLOCK(1, "{'type':'redacted_thinking','data':'EmwKAhgBEgy3va3pzix'}"),
         KEEL_CHUNK_IDLE, "");
    frame_is("content_block_start", BLOCK(0, "{'type':'thinking','thinking':'Hm'}"), KEEL_CHUNK_PROGRESS,
             "REASONING 'Hm'\n");
}

static void test_tool_use(void **state)
{
    struct run s;
    start(&s);
    step(&s, "content_block_start", BLOCK(0, "{'type':'text','text':''}"), KEEL_CHUNK_IDLE, "");
    /* a tool_use block names its call (the encoder writes the type): content, as an OpenAI
     * tool call's name is, so a call without arguments is an answer */
    step(&s, "content_block_start", TOOL_BLOCK(1, "toolu_01", "get_weather"), KEEL_CHUNK_PROGRESS,
         "TOOL #0 id='toolu_01' name='get_weather' args=-\n");
    step(&s, "content_block_delta", JSON_DELTA(1, ""), KEEL_CHUNK_IDLE, "TOOL #0 id=- name=- args=''\n");
    step(&s, "content_block_delta", JSON_DELTA(1, "{\\'ci"), KEEL_CHUNK_PROGRESS,
         "TOOL #0 id=- name=- args='{\\'ci'\n");
    step(&s, "content_block_start", TOOL_BLOCK(2, "toolu_02", "get_time"), KEEL_CHUNK_PROGRESS,
         "TOOL #1 id='toolu_02' name='get_time' args=-\n");
    /* each fragment goes to the call its block started, whatever came between */
    step(&s, "content_block_delta", JSON_DELTA(2, "{}"), KEEL_CHUNK_PROGRESS, "TOOL #1 id=- name=- args='{}'\n");
    step(&s, "content_block_delta", JSON_DELTA(1, "ty\\'}"), KEEL_CHUNK_PROGRESS,
         "TOOL #0 id=- name=- args='ty\\'}'\n");
    /* a fragment keel cannot place: at a text block, a block never started, no index */
    step(&s, "content_block_delta", JSON_DELTA(0, "{}"), KEEL_CHUNK_MALFORMED, "");
    step(&s, "content_block_delta", JSON_DELTA(5, "{}"), KEEL_CHUNK_MALFORMED, "");
    step(&s, "content_block_delta", "{'type':'content_block_delta','delta':{'type':'input_json_delta',"
         "'partial_json':'{}'}}", KEEL_CHUNK_MALFORMED, "");
    step(&s, "content_block_delta", JSON_DELTA(-1, "{}"), KEEL_CHUNK_MALFORMED, "");
    /* a server tool's input is Anthropic's own business: nothing for the client */
    step(&s, "content_block_start",
         BLOCK(3, "{'type':'server_tool_use','id':'srvtoolu_1','name':'web_search','input':{}}"), KEEL_CHUNK_IDLE,
         "");
    step(&s, "content_block_delta", JSON_DELTA(3, "{\\'query\\':"), KEEL_CHUNK_IDLE, "");
    /* past the blocks remembered: the call is still named and counted, its fragments unplaceable */
    step(&s, "content_block_start", TOOL_BLOCK(256, "toolu_03", "f"), KEEL_CHUNK_PROGRESS,
         "TOOL #2 id='toolu_03' name='f' args=-\n");
    step(&s, "content_block_delta", JSON_DELTA(256, "{}"), KEEL_CHUNK_MALFORMED, "");
    step(&s, "content_block_start", TOOL_BLOCK(255, "toolu_04", "g"), KEEL_CHUNK_PROGRESS,
         "TOOL #3 id='toolu_04' name='g' args=-\n");
    step(&s, "content_block_delta", JSON_DELTA(255, "[]"), KEEL_CHUNK_PROGRESS, "TOOL #3 id=- name=- args='[]'\n");
}

static void test_stop_reasons(void **state)
{
    static const char *const map[][2] = {
        {"'end_turn'", "'stop'"},      {"'stop_sequence'", "'stop'"},          {"'max_tokens'", "'length'"},
        {"'tool_use'", "'tool_calls'"}, {"'refusal'", "'content_filter'"},     {"'pause_turn'", "'stop'"},
        {"'model_context_window_exceeded'", "'length'"}, {"'something_new'", "'stop'"},
        {"'max\\u005ftokens'", "'length'"},
    };
    char data[256], want[256];
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        snprintf(data, sizeof(data), "{'type':'message_delta','delta':{'stop_reason':%s}}", map[i][0]);
        snprintf(want, sizeof(want), "FINISH %s\n", map[i][1]);
        frame_is("message_delta", data, KEEL_CHUNK_IDLE, want);
    }
    /* none said: no finish */
    frame_is("message_delta", MESSAGE_DELTA("null", "{'output_tokens':3}"), KEEL_CHUNK_IDLE,
             "USAGE 0/3/3 raw={'output_tokens':3}\n");
    frame_is("message_delta", "{'type':'message_delta'}", KEEL_CHUNK_IDLE, "");
}

static void test_errors(void **state)
{
    frame_is("error", "{'type':'error','error':{'type':'overloaded_error','message':'Overloaded'}}", KEEL_CHUNK_ERROR,
             "ERROR overloaded_error raw={'type':'overloaded_error','message':'Overloaded'}\n");
    /* by its type alone, and by its name alone */
    frame_is("message", "{'type':'error','error':{'type':'rate_limit_error','message':'slow down'}}",
             KEEL_CHUNK_ERROR, "ERROR rate_limit_error raw={'type':'rate_limit_error','message':'slow down'}\n");
    frame_is("error", "{'message':'boom'}", KEEL_CHUNK_ERROR, "ERROR  raw={'message':'boom'}\n");
    frame_is("error", "upstream connect error", KEEL_CHUNK_ERROR, "ERROR  raw=-\n");
    /* codes keel's classifier knows */
    frame_is("error",
             "{'type':'error','error':{'type':'invalid_request_error','message':'prompt is too long: 210000 tokens "
             "> 200000 maximum'}}",
             KEEL_CHUNK_ERROR,
             "ERROR context_length_exceeded raw={'type':'invalid_request_error','message':'prompt is too long: "
             "210000 tokens > 200000 maximum'}\n");
    frame_is("error",
             "{'type':'error','error':{'type':'invalid_request_error','message':'input length and `max_tokens` "
             "exceed context limit: 198000 + 8192 > 200000'}}",
             KEEL_CHUNK_ERROR,
             "ERROR context_length_exceeded raw={'type':'invalid_request_error','message':'input length and "
             "`max_tokens` exceed context limit: 198000 + 8192 > 200000'}\n");
    frame_is("error", "{'type':'error','error':{'type':'invalid_request_error','message':'messages: empty'}}",
             KEEL_CHUNK_ERROR, "ERROR invalid_request_error raw={'type':'invalid_request_error','message':"
             "'messages: empty'}\n");
    frame_is("error", "{'type':'error','error':{'type':'not_found_error','message':'model: claude-x'}}",
             KEEL_CHUNK_ERROR, "ERROR model_not_found raw={'type':'not_found_error','message':'model: claude-x'}\n");
    frame_is("error", "{'type':'error','error':{'type':'api_error','message':'Internal server error'}}",
             KEEL_CHUNK_ERROR, "ERROR api_error raw={'type':'api_error','message':'Internal server error'}\n");
    struct run s;
    start(&s);
    step(&s, "error", "{'type':'error','error':{'type':'overloaded_error'}}", KEEL_CHUNK_ERROR,
         "ERROR overloaded_error raw={'type':'overloaded_error'}\n");
    assert_string_equal(s.info.error_code, "overloaded_error");
}

static void test_malformed(void **state)
{
    frame_is("content_block_delta", "{'type':'content_block_delta',", KEEL_CHUNK_MALFORMED, "");
    frame_is("message", "[DONE]", KEEL_CHUNK_MALFORMED, "");
    frame_is("message_start", "['message_start']", KEEL_CHUNK_MALFORMED, "");
    frame_is("message", "", KEEL_CHUNK_MALFORMED, "");
}

/* frame data_q (' for ") through d: its verdict */
static enum keel_chunk_kind judged(struct keel_decoder *d, const char *event, const char *data_q)
{
    char data[512];
    struct keel_chunk_info info;
    d->ops->frame(d, event, data, dq(data_q, data, sizeof(data)), &info);
    return info.kind;
}

/* A decoder that only judges keeps the blocks too: its verdict on a fragment depends on them. A
 * callback that says stop stops the events, not the judging nor the state. */
static void test_state_without_events(void **state)
{
    struct keel_decoder d;
    keel_decoder_init(&d, &keel_anthropic_decoder, NULL, NULL);
    assert_int_equal(judged(&d, "content_block_start", TOOL_BLOCK(4, "toolu_9", "f")), KEEL_CHUNK_PROGRESS);
    assert_int_equal(judged(&d, "content_block_delta", JSON_DELTA(4, "{")), KEEL_CHUNK_PROGRESS);
    /* a new answer forgets the last one's blocks */
    keel_decoder_init(&d, &keel_anthropic_decoder, NULL, NULL);
    assert_int_equal(judged(&d, "content_block_delta", JSON_DELTA(4, "{")), KEEL_CHUNK_MALFORMED);

    struct run s;
    start(&s);
    s.r.stop_at = 1;
    step(&s, "content_block_start", TOOL_BLOCK(0, "toolu_1", "f"), KEEL_CHUNK_PROGRESS,
         "TOOL #0 id='toolu_1' name='f' args=-\n");
    assert_int_equal(s.d.rv, 9);
    step(&s, "content_block_start", TOOL_BLOCK(1, "toolu_2", "g"), KEEL_CHUNK_PROGRESS, "");
    step(&s, "content_block_delta", JSON_DELTA(1, "{"), KEEL_CHUNK_PROGRESS, "");
    assert_int_equal(s.r.n, 1);
}

/* ---- whole answers ---- */

/* a whole answer (' for "): its kind, code and events; the same kind, code and usage without a
 * callback */
static void body_is(const char *text_q, enum keel_answer_kind kind, const char *code, const char *want_q)
{
    static char text[4096], want[4096];
    struct keel_decoder d;
    struct rec r = {0};
    char got[64], alone[64];
    struct keel_usage u = {0}, alone_u = {0};
    size_t len = dq(text_q, text, sizeof(text));
    dq(want_q, want, sizeof(want));
    keel_decoder_init(&d, &keel_anthropic_decoder, record, &r);
    assert_int_equal(d.ops->body(&d, text, len, got, sizeof(got), &u), kind);
    assert_string_equal(got, code);
    assert_string_equal(r.log, want);
    keel_decoder_init(&d, &keel_anthropic_decoder, NULL, NULL);
    assert_int_equal(d.ops->body(&d, text, len, alone, sizeof(alone), &alone_u), kind);
    assert_string_equal(alone, code);
    assert_memory_equal(&u, &alone_u, sizeof(u));
}

#define ANSWER(content, stop, usage)                                                                                   \
    "{'id':'msg_9','type':'message','role':'assistant','model':'claude-opus-4-1','content':" content                   \
    ",'stop_reason':" stop ",'stop_sequence':null,'usage':" usage "}"

static void test_body(void **state)
{
    body_is(ANSWER("[{'type':'text','text':'Hi'},{'type':'text','text':' there'}]", "'end_turn'",
                   "{'input_tokens':12,'output_tokens':6}"),
            KEEL_ANSWER_OK, "",
            "META id='msg_9' model='claude-opus-4-1'\nTEXT 'Hi'\nTEXT ' there'\nFINISH 'stop'\n"
            "USAGE 12/6/18 raw={'input_tokens':12,'output_tokens':6}\n");
    /* a tool's input is an object: handed on as raw JSON text */
    body_is(ANSWER("[{'type':'text','text':'Checking.'},{'type':'tool_use','id':'toolu_1','name':'get_weather',"
                   "'input':{'city': 'Paris', 'units': ['c']}},{'type':'tool_use','id':'toolu_2','name':'noop'}]",
                   "'tool_use'", "{'input_tokens':3,'cache_read_input_tokens':7,'output_tokens':9}"),
            KEEL_ANSWER_OK, "",
            "META id='msg_9' model='claude-opus-4-1'\nTEXT 'Checking.'\n"
            "TOOL #0 id='toolu_1' name='get_weather' args={'city': 'Paris', 'units': ['c']} (raw)\n"
            "TOOL #1 id='toolu_2' name='noop' args={} (raw)\n"
            "FINISH 'tool_calls'\nUSAGE 10/9/19 raw={'input_tokens':3,'cache_read_input_tokens':7,'output_tokens':9}\n");
    body_is(ANSWER("[{'type':'thinking','thinking':'Six times seven.','signature':'Eq'},{'type':'redacted_thinking',"
                   "'data':'xx'},{'type':'text','text':'42'}]",
                   "'max_tokens'", "{'input_tokens':1,'output_tokens':2}"),
            KEEL_ANSWER_OK, "",
            "META id='msg_9' model='claude-opus-4-1'\nREASONING 'Six times seven.'\nTEXT '42'\nFINISH 'length'\n"
            "USAGE 1/2/3 raw={'input_tokens':1,'output_tokens':2}\n");
    /* nothing a client reads: empty */
    body_is(ANSWER("[]", "'end_turn'", "{'input_tokens':1,'output_tokens':0}"), KEEL_ANSWER_EMPTY, "",
            "META id='msg_9' model='claude-opus-4-1'\nFINISH 'stop'\nUSAGE 1/0/1 raw={'input_tokens':1,'output_tokens':0}\n");
    body_is(ANSWER("[{'type':'text','text':''}]", "'max_tokens'", "null"), KEEL_ANSWER_EMPTY, "",
            "META id='msg_9' model='claude-opus-4-1'\nTEXT ''\nFINISH 'length'\n");
    body_is("{'id':'msg_8','type':'message'}", KEEL_ANSWER_EMPTY, "", "META id='msg_8' model=-\n");
    body_is("{'content':'text, not blocks'}", KEEL_ANSWER_EMPTY, "", "");
    /* errors: the code normalised as a stream's */
    body_is("{'type':'error','error':{'type':'overloaded_error','message':'Overloaded'}}", KEEL_ANSWER_ERROR,
            "overloaded_error", "ERROR overloaded_error raw={'type':'overloaded_error','message':'Overloaded'}\n");
    body_is("{'type':'error','error':{'type':'invalid_request_error','message':'prompt is too long: 1 > 0'}}",
            KEEL_ANSWER_ERROR, "context_length_exceeded",
            "ERROR context_length_exceeded raw={'type':'invalid_request_error','message':'prompt is too long: 1 > 0'}\n");
    body_is("{'content':[", KEEL_ANSWER_MALFORMED, "", "");
    body_is("[]", KEEL_ANSWER_MALFORMED, "", "");

    /* no room for a code, no usage wanted */
    struct keel_decoder d;
    const char *e = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\"}}";
    keel_decoder_init(&d, &keel_anthropic_decoder, NULL, NULL);
    assert_int_equal(d.ops->body(&d, e, strlen(e), NULL, 0, NULL), KEEL_ANSWER_ERROR);
}

static void test_error_code(void **state)
{
    static const char *const bodies[][2] = {
        {"{'type':'error','error':{'type':'rate_limit_error','message':'Number of request tokens has exceeded'}}",
         "rate_limit_error"},
        {"{'type':'error','error':{'type':'authentication_error','message':'invalid x-api-key'}}",
         "authentication_error"},
        {"{'type':'error','error':{'type':'not_found_error','message':'model: claude-9'}}", "model_not_found"},
        {"{'type':'error','error':{'type':'invalid_request_error','message':'prompt is too long: 201000 tokens > "
         "200000 maximum'}}",
         "context_length_exceeded"},
        {"{'type':'error','error':{'type':'invalid_request_error','message':'max_tokens: Field required'}}",
         "invalid_request_error"},
        {"{'type':'error','error':{'type':'overloaded_error','message':'Overloaded'},'request_id':'req_1'}",
         "overloaded_error"},
        {"{'type':'error','error':{'message':'no type'}}", ""},
        {"{'error':'overloaded'}", ""},
        {"<html>502 Bad Gateway</html>", ""},
        {"", ""},
    };
    char body[512], code[64];
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        size_t len = dq(bodies[i][0], body, sizeof(body));
        keel_anthropic_decoder.error_code(body, len, code, sizeof(code));
        assert_string_equal(code, bodies[i][1]);
    }
    /* truncated to fit, and no room at all */
    size_t len = dq(bodies[1][0], body, sizeof(body));
    keel_anthropic_decoder.error_code(body, len, code, 5);
    assert_string_equal(code, "auth");
    keel_anthropic_decoder.error_code(body, len, code, 0);
}

/* ---- whole streams into one answer, and into an OpenAI stream ---- */

static const char text_stream[] =
    EVENT("message_start", START("{'input_tokens':25,'cache_creation_input_tokens':0,'cache_read_input_tokens':10,"
                                 "'output_tokens':1}"))
    EVENT("content_block_start", BLOCK(0, "{'type':'text','text':''}"))
    EVENT("ping", PING)
    EVENT("content_block_delta", TEXT_DELTA(0, "Hello"))
    ": a comment\n\n"
    EVENT("content_block_delta", TEXT_DELTA(0, " w\\u00f6rld \xe6\x97\xa5\xe6\x9c\xac"))
    EVENT("content_block_stop", STOP_BLOCK(0))
    EVENT("message_delta", MESSAGE_DELTA("'end_turn'", "{'output_tokens':12}"))
    EVENT("message_stop", MESSAGE_STOP);

/* the chunk head of msg_1 */
#define CHUNK "data: {'id':'msg_1','object':'chat.completion.chunk','created':0,'model':'claude-sonnet-4-5','choices':["
#define CHOICE(delta, finish) CHUNK "{'index':0,'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}\n\n"
#define USAGE_CHUNK(p, c, t)                                                                                           \
    CHUNK "],'usage':{'prompt_tokens':" #p ",'completion_tokens':" #c ",'total_tokens':" #t "}}\n\n"
#define DONE "data: [DONE]\n\n"

static void test_text_stream(void **state)
{
    feed_check(&keel_anthropic_decoder, FEED_ASM, 0, text_stream, "IIIPPIID", "",
               "{'id':'msg_1','object':'chat.completion','model':'claude-sonnet-4-5','choices':[{'index':0,"
               "'message':{'role':'assistant','content':'Hello w\\u00f6rld \xe6\x97\xa5\xe6\x9c\xac','refusal':null},"
               "'logprobs':null,'finish_reason':'stop'}],'usage':{'prompt_tokens':35,'completion_tokens':12,"
               "'total_tokens':47}}");
    feed_check(&keel_anthropic_decoder, FEED_STREAM, 1, text_stream, "IIIPPIID", "",
               CHOICE("{'role':'assistant','content':'Hello'}", "null")
               CHOICE("{'content':' w\\u00f6rld \xe6\x97\xa5\xe6\x9c\xac'}", "null")
               CHOICE("{}", "'stop'")
               USAGE_CHUNK(35, 12, 47)
               DONE);
    /* no usage asked for: none sent */
    feed_check(&keel_anthropic_decoder, FEED_STREAM, 0, text_stream, "IIIPPIID", "",
               CHOICE("{'role':'assistant','content':'Hello'}", "null")
               CHOICE("{'content':' w\\u00f6rld \xe6\x97\xa5\xe6\x9c\xac'}", "null")
               CHOICE("{}", "'stop'")
               DONE);
}

static void test_thinking_stream(void **state)
{
    static const char stream[] =
        EVENT("message_start", START("{'input_tokens':40,'output_tokens':3}"))
        EVENT("content_block_start", BLOCK(0, "{'type':'thinking','thinking':'','signature':''}"))
        EVENT("content_block_delta", DELTA(0, "{'type':'thinking_delta','thinking':'Six times'}"))
        EVENT("content_block_delta", DELTA(0, "{'type':'thinking_delta','thinking':' seven.'}"))
        EVENT("content_block_delta", DELTA(0, "{'type':'signature_delta','signature':'EqQBCgIYAhIM1gbcDa9G'}"))
        EVENT("content_block_stop", STOP_BLOCK(0))
        EVENT("content_block_start", BLOCK(1, "{'type':'text','text':''}"))
        EVENT("content_block_delta", TEXT_DELTA(1, "42"))
        EVENT("content_block_delta", TEXT_DELTA(1, ""))
        EVENT("content_block_stop", STOP_BLOCK(1))
        EVENT("message_delta", MESSAGE_DELTA("'max_tokens'", "{'output_tokens':30}"))
        EVENT("message_stop", MESSAGE_STOP);
    feed_check(&keel_anthropic_decoder, FEED_ASM, 0, stream, "IIPPIIIPIIID", "",
               "{'id':'msg_1','object':'chat.completion','model':'claude-sonnet-4-5','choices':[{'index':0,"
               "'message':{'role':'assistant','content':'42','reasoning_content':'Six times seven.','refusal':null},"
               "'logprobs':null,'finish_reason':'length'}],'usage':{'prompt_tokens':40,'completion_tokens':30,"
               "'total_tokens':70}}");
    feed_check(&keel_anthropic_decoder, FEED_STREAM, 1, stream, "IIPPIIIPIIID", "",
               CHOICE("{'role':'assistant','reasoning_content':'Six times'}", "null")
               CHOICE("{'reasoning_content':' seven.'}", "null")
               CHOICE("{'content':'42'}", "null")
               CHOICE("{}", "'length'")
               USAGE_CHUNK(40, 30, 70)
               DONE);
}

static const char tools_stream[] =
    EVENT("message_start", START("{'input_tokens':100,'output_tokens':1}"))
    EVENT("content_block_start", BLOCK(0, "{'type':'text','text':''}"))
    EVENT("content_block_delta", TEXT_DELTA(0, "Let me check."))
    EVENT("content_block_stop", STOP_BLOCK(0))
    EVENT("content_block_start", TOOL_BLOCK(1, "toolu_01", "get_weather"))
    EVENT("content_block_delta", JSON_DELTA(1, ""))
    EVENT("content_block_delta", JSON_DELTA(1, "{\\'ci"))
    EVENT("ping", PING)
    EVENT("content_block_delta", JSON_DELTA(1, "ty\\': \\'Par"))
    EVENT("content_block_delta", JSON_DELTA(1, "is\\'}"))
    EVENT("content_block_stop", STOP_BLOCK(1))
    EVENT("content_block_start", TOOL_BLOCK(2, "toolu_02", "get_time"))
    EVENT("content_block_delta", JSON_DELTA(2, "{\\'tz\\':"))
    EVENT("content_block_delta", JSON_DELTA(2, " \\'CET\\'}"))
    EVENT("content_block_stop", STOP_BLOCK(2))
    EVENT("message_delta", MESSAGE_DELTA("'tool_use'", "{'output_tokens':60}"))
    EVENT("message_stop", MESSAGE_STOP);

#define TOOL_ARGS(i, s) CHOICE("{'tool_calls':[{'index':" #i ",'function':{'arguments':'" s "'}}]}", "null")

static void test_tools_stream(void **state)
{
    feed_check(&keel_anthropic_decoder, FEED_ASM, 0, tools_stream, "IIPIPIPIPPIPPPIID", "",
               "{'id':'msg_1','object':'chat.completion','model':'claude-sonnet-4-5','choices':[{'index':0,"
               "'message':{'role':'assistant','content':'Let me check.','refusal':null,'tool_calls':["
               "{'id':'toolu_01','type':'function','function':{'name':'get_weather','arguments':"
               "'{\\'city\\': \\'Paris\\'}'}},"
               "{'id':'toolu_02','type':'function','function':{'name':'get_time','arguments':'{\\'tz\\': \\'CET\\'}'}}"
               "]},'logprobs':null,'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':100,"
               "'completion_tokens':60,'total_tokens':160}}");
    feed_check(&keel_anthropic_decoder, FEED_STREAM, 1, tools_stream, "IIPIPIPIPPIPPPIID", "",
               CHOICE("{'role':'assistant','content':'Let me check.'}", "null")
               CHOICE("{'tool_calls':[{'index':0,'id':'toolu_01','type':'function','function':{'name':'get_weather',"
                      "'arguments':''}}]}", "null")
               TOOL_ARGS(0, "{\\'ci")
               TOOL_ARGS(0, "ty\\': \\'Par")
               TOOL_ARGS(0, "is\\'}")
               CHOICE("{'tool_calls':[{'index':1,'id':'toolu_02','type':'function','function':{'name':'get_time',"
                      "'arguments':''}}]}", "null")
               TOOL_ARGS(1, "{\\'tz\\':")
               TOOL_ARGS(1, " \\'CET\\'}")
               CHOICE("{}", "'tool_calls'")
               USAGE_CHUNK(100, 60, 160)
               DONE);
}

/* An error after content: judged an error with its code. The assembler ignores it (the caller
 * fails over); the stream encoder wrote what came before and no end (the caller ends the stream
 * its own way). */
static void test_error_stream(void **state)
{
    static const char stream[] =
        EVENT("message_start", START("{'input_tokens':10,'output_tokens':1}"))
        EVENT("content_block_start", BLOCK(0, "{'type':'text','text':''}"))
        EVENT("content_block_delta", TEXT_DELTA(0, "Partial"))
        EVENT("error", "{'type':'error','error':{'type':'overloaded_error','message':'Overloaded'}}");
    feed_check(&keel_anthropic_decoder, FEED_ASM, 0, stream, "IIPE", "overloaded_error",
               "{'id':'msg_1','object':'chat.completion','model':'claude-sonnet-4-5','choices':[{'index':0,"
               "'message':{'role':'assistant','content':'Partial','refusal':null},'logprobs':null,"
               "'finish_reason':null}],'usage':{'prompt_tokens':10,'completion_tokens':1,'total_tokens':11}}");
    feed_check(&keel_anthropic_decoder, FEED_STREAM, 1, stream, "IIPE", "overloaded_error",
               CHOICE("{'role':'assistant','content':'Partial'}", "null"));
}

/* kept alive by pings, no token ever (seed 001): never progress, nothing for the client */
static void test_pings_only(void **state)
{
    static const char stream[] =
        EVENT("message_start", START("{'input_tokens':5,'output_tokens':0}"))
        EVENT("ping", PING)
        EVENT("ping", PING)
        EVENT("content_block_start", BLOCK(0, "{'type':'text','text':''}"))
        EVENT("ping", PING);
    feed_check(&keel_anthropic_decoder, FEED_ASM, 0, stream, "IIIII", "",
               "{'id':'msg_1','object':'chat.completion','model':'claude-sonnet-4-5','choices':[],'usage':"
               "{'prompt_tokens':5,'completion_tokens':0,'total_tokens':5}}");
    feed_check(&keel_anthropic_decoder, FEED_STREAM, 1, stream, "IIIII", "", "");
}

/* ---- a whole answer into one chat.completion ---- */

static void test_body_assembled(void **state)
{
    static char text[2048], want[2048];
    struct keel_asm a;
    struct keel_decoder d;
    struct keel_buf out;
    /* the input as sent, whitespace and escapes and all, becomes the arguments string */
    size_t len = dq(ANSWER("[{'type':'text','text':'On it.'},{'type':'tool_use','id':'toolu_1','name':'run',"
                           "'input':{\n\t'cmd': 'echo \\'hi\\' \\\\\\\\ \\u00e9',\r\n'n': [1, 2]}}]",
                           "'tool_use'", "{'input_tokens':3,'output_tokens':4}"),
                    text, sizeof(text));
    size_t wlen = dq("{'id':'msg_9','object':'chat.completion','model':'claude-opus-4-1','choices':[{'index':0,"
                     "'message':{'role':'assistant','content':'On it.','refusal':null,'tool_calls':[{'id':'toolu_1',"
                     "'type':'function','function':{'name':'run','arguments':'{\\n\\t\\'cmd\\': \\'echo "
                     "\\\\\\'hi\\\\\\' \\\\\\\\\\\\\\\\ \\\\u00e9\\',\\r\\n\\'n\\': [1, 2]}'}}]},'logprobs':null,"
                     "'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':3,'completion_tokens':4,"
                     "'total_tokens':7}}",
                     want, sizeof(want));
    keel_asm_init(&a, FEED_BIG, "anthropic");
    keel_buf_init(&out, FEED_BIG);
    keel_decoder_init(&d, &keel_anthropic_decoder, keel_asm_event, &a);
    assert_int_equal(d.ops->body(&d, text, len, NULL, 0, NULL), KEEL_ANSWER_OK);
    assert_int_equal(d.rv, 0);
    assert_int_equal(keel_asm_openai_chat(&a, &out), 0);
    assert_wrote(&out, want, wlen);
    /* and the arguments decode to the input exactly as it was sent */
    json_error_t err;
    json_t *v = json_loadb(out.base, out.len, 0, &err);
    assert_non_null(v);
    json_t *call = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(v, "choices"), 0),
                                                                  "message"), "tool_calls"), 0);
    const char *args = json_string_value(json_object_get(json_object_get(call, "function"), "arguments"));
    assert_non_null(args);
    const char *input = strstr(text, "\"input\":") + 8;
    assert_memory_equal(args, input, strlen(args));
    assert_true(strncmp(input + strlen(args), "}],\"stop_reason\"", 16) == 0);
    json_decref(v);
    keel_buf_release(&out);
    keel_asm_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_for),
        cmocka_unit_test(test_message_start),
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_thinking),
        cmocka_unit_test(test_tool_use),
        cmocka_unit_test(test_stop_reasons),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_state_without_events),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_error_code),
        cmocka_unit_test(test_text_stream),
        cmocka_unit_test(test_thinking_stream),
        cmocka_unit_test(test_tools_stream),
        cmocka_unit_test(test_error_stream),
        cmocka_unit_test(test_pings_only),
        cmocka_unit_test(test_body_assembled),
    };
    return cmocka_run_group_tests_name("anthropic", tests, NULL, NULL);
}
