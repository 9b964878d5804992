/* test_event.c - the OpenAI decoder (core/event.h): the events it reads from stream chunks and
 * from whole answers, in order; a callback that says stop; and that a decoder with a callback
 * judges every frame as one without (chunk.h's verdicts, test_chunk.c). JSON is written with '
 * for " to stay readable; \' is an escaped quote. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "core/event.h"

/* s with every ' turned into " (s is short: a test's literal) */
static const char *dq(const char *s)
{
    static char buf[4][2048];
    static int next;
    char *out = buf[next++ % 4];
    size_t n = strlen(s);
    assert_true(n < sizeof(buf[0]));
    for (size_t i = 0; i <= n; i++)
        out[i] = s[i] == '\'' ? '"' : s[i];
    return out;
}

struct rec {
    char log[4096];
    size_t len;
    int stop_at; /* return 5 from this event on (1-based; 0: never) */
    int n;       /* events seen */
};

static void say(struct rec *r, const char *fmt, const char *p, size_t len)
{
    r->len += (size_t)snprintf(r->log + r->len, sizeof(r->log) - r->len, fmt, (int)len, p);
    assert_true(r->len < sizeof(r->log));
}

static void span(struct rec *r, const char *name, struct keel_json v)
{
    r->len += (size_t)snprintf(r->log + r->len, sizeof(r->log) - r->len, " %s=", name);
    if (v.p == NULL)
        say(r, "%.*s", "-", 1);
    else
        say(r, "%.*s", v.p, v.len);
}

struct field {
    const char *name;
    struct keel_json v;
};

static void fields(struct rec *r, const struct field *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        span(r, f[i].name, f[i].v);
}
#define FIELDS(r, ...)                                                                                                 \
    fields(r, (const struct field[]){__VA_ARGS__}, sizeof((const struct field[]){__VA_ARGS__}) / sizeof(struct field))

static int on_ev(void *ctx, const struct keel_ev *ev)
{
    struct rec *r = ctx;
    char head[64];
    static const char *const names[] = {
        [KEEL_EV_META] = "META",           [KEEL_EV_ROLE] = "ROLE",         [KEEL_EV_TEXT] = "TEXT",
        [KEEL_EV_REASONING] = "REASONING", [KEEL_EV_REFUSAL] = "REFUSAL",   [KEEL_EV_TOOL_CALL] = "TOOL",
        [KEEL_EV_LOGPROBS] = "LOGPROBS",   [KEEL_EV_FINISH] = "FINISH",     [KEEL_EV_USAGE] = "USAGE",
        [KEEL_EV_ERROR] = "ERROR",
    };
    r->n++;
    snprintf(head, sizeof(head), "%s %u", names[ev->kind], (unsigned)ev->choice);
    say(r, "%.*s", head, strlen(head));
    switch (ev->kind) {
    case KEEL_EV_META:
        assert_int_equal(ev->choice, 0);
        FIELDS(r, {"id", ev->u.meta.id}, {"model", ev->u.meta.model}, {"created", ev->u.meta.created},
               {"fp", ev->u.meta.system_fingerprint}, {"tier", ev->u.meta.service_tier});
        break;
    case KEEL_EV_ROLE:
        span(r, "role", ev->u.role);
        break;
    case KEEL_EV_TEXT:
    case KEEL_EV_REFUSAL:
    case KEEL_EV_REASONING:
        if (ev->u.text.alt)
            say(r, "%.*s", " alt", 4);
        span(r, "s", ev->u.text.s);
        break;
    case KEEL_EV_TOOL_CALL:
        snprintf(head, sizeof(head), " #%u", (unsigned)ev->u.tool.index);
        say(r, "%.*s", head, strlen(head));
        FIELDS(r, {"id", ev->u.tool.id}, {"type", ev->u.tool.type}, {"name", ev->u.tool.name},
               {"args", ev->u.tool.args});
        break;
    case KEEL_EV_LOGPROBS:
        FIELDS(r, {"content", ev->u.logprobs.content}, {"refusal", ev->u.logprobs.refusal});
        break;
    case KEEL_EV_FINISH:
        span(r, "finish", ev->u.finish);
        break;
    case KEEL_EV_USAGE:
        assert_int_equal(ev->choice, 0);
        assert_true(ev->u.usage.n.present);
        snprintf(head, sizeof(head), " %lld/%lld/%lld", ev->u.usage.n.prompt_tokens, ev->u.usage.n.completion_tokens,
                 ev->u.usage.n.total_tokens);
        say(r, "%.*s", head, strlen(head));
        span(r, "raw", ev->u.usage.raw);
        break;
    case KEEL_EV_ERROR:
        say(r, " code=%.*s", ev->u.error.code, strlen(ev->u.error.code));
        span(r, "raw", ev->u.error.raw);
        break;
    }
    say(r, "%.*s", "\n", 1);
    return r->stop_at && r->n >= r->stop_at ? 5 : 0;
}

/* Frames data (' for ") as event `event` with a callback; checks its kind, that the events are
 * `want` (' for "), and that a decoder without a callback gives the same verdict. */
static void frame_is(const char *event, const char *data, enum keel_chunk_kind kind, const char *want)
{
    struct keel_decoder d, plain;
    struct keel_chunk_info info, plain_info;
    struct rec r = {0};
    const char *json = dq(data);
    keel_decoder_init(&d, &keel_openai_decoder, on_ev, &r);
    d.ops->frame(&d, event, json, strlen(json), &info);
    assert_int_equal(info.kind, kind);
    assert_int_equal(d.rv, 0);
    assert_string_equal(r.log, dq(want));
    keel_decoder_init(&plain, &keel_openai_decoder, NULL, NULL);
    plain.ops->frame(&plain, event, json, strlen(json), &plain_info);
    assert_memory_equal(&info, &plain_info, sizeof(info));
}

static void test_decoder_for(void **state)
{
    assert_ptr_equal(keel_decoder_for("openai"), &keel_openai_decoder);
    assert_string_equal(keel_openai_decoder.kind, "openai");
    assert_ptr_equal(keel_decoder_for("anthropic"), &keel_anthropic_decoder);
    assert_null(keel_decoder_for("Anthropic"));
    assert_null(keel_decoder_for(""));
}

static void test_content_and_meta(void **state)
{
    frame_is("message",
             "{'id':'c1','object':'chat.completion.chunk','created':7,'model':'m','system_fingerprint':null,"
             "'service_tier':'default','choices':[{'index':0,'delta':{'role':'assistant','content':'Hi'},"
             "'logprobs':null,'finish_reason':null}],'usage':null}",
             KEEL_CHUNK_PROGRESS,
             "META 0 id='c1' model='m' created=7 fp=- tier='default'\n"
             "ROLE 0 role='assistant'\n"
             "TEXT 0 s='Hi'\n");
    frame_is("message", "{'system_fingerprint':'fp_1','choices':[]}", KEEL_CHUNK_IDLE,
             "META 0 id=- model=- created=- fp='fp_1' tier=-\n");
    /* "" is text (the answer's content is "", not null); null and absent are none */
    frame_is("message", "{'choices':[{'delta':{'content':''}}]}", KEEL_CHUNK_IDLE, "TEXT 0 s=''\n");
    frame_is("message", "{'choices':[{'delta':{'content':null,'refusal':null}}]}", KEEL_CHUNK_IDLE, "");
    frame_is("message", "{'choices':[{'delta':{}}]}", KEEL_CHUNK_IDLE, "");
    /* escapes stay as sent */
    frame_is("message", "{'choices':[{'delta':{'content':'a\\'b\\\\n\\u00e9\\ud83d\\ude00'}}]}", KEEL_CHUNK_PROGRESS,
             "TEXT 0 s='a\\'b\\\\n\\u00e9\\ud83d\\ude00'\n");
}

static void test_reasoning(void **state)
{
    frame_is("message", "{'choices':[{'delta':{'reasoning_content':'hmm','content':null}}]}", KEEL_CHUNK_PROGRESS,
             "REASONING 0 s='hmm'\n");
    frame_is("message", "{'choices':[{'delta':{'reasoning':'hmm'}}]}", KEEL_CHUNK_PROGRESS,
             "REASONING 0 alt s='hmm'\n");
    frame_is("message", "{'choices':[{'delta':{'reasoning':''}}]}", KEEL_CHUNK_IDLE, "REASONING 0 alt s=''\n");
    /* both keys carrying the same text: once, as reasoning_content */
    frame_is("message", "{'choices':[{'delta':{'reasoning':'x','reasoning_content':'x'}}]}", KEEL_CHUNK_PROGRESS,
             "REASONING 0 s='x'\n");
    frame_is("message", "{'choices':[{'delta':{'reasoning_content':null,'reasoning':'y'}}]}", KEEL_CHUNK_PROGRESS,
             "REASONING 0 alt s='y'\n");
}

static void test_refusal(void **state)
{
    frame_is("message", "{'choices':[{'delta':{'role':'assistant','content':null,'refusal':'No.'}}]}",
             KEEL_CHUNK_PROGRESS, "ROLE 0 role='assistant'\nREFUSAL 0 s='No.'\n");
    frame_is("message", "{'choices':[{'delta':{'refusal':''}}]}", KEEL_CHUNK_IDLE, "REFUSAL 0 s=''\n");
}

static void test_tool_calls(void **state)
{
    /* the first fragment names the call; later ones carry only arguments */
    frame_is("message",
             "{'choices':[{'index':0,'delta':{'role':'assistant','content':null,'tool_calls':[{'index':1,"
             "'id':'call_b','type':'function','function':{'name':'f','arguments':''}}]}}]}",
             KEEL_CHUNK_PROGRESS,
             "ROLE 0 role='assistant'\n"
             "TOOL 0 #1 id='call_b' type='function' name='f' args=''\n");
    frame_is("message", "{'choices':[{'delta':{'tool_calls':[{'index':1,'function':{'arguments':'{\\'a'}}]}}]}",
             KEEL_CHUNK_PROGRESS, "TOOL 0 #1 id=- type=- name=- args='{\\'a'\n");
    /* no index: the place in the array; an empty fragment is no progress but still an event */
    frame_is("message", "{'choices':[{'delta':{'tool_calls':[{'function':{'arguments':''}},{'id':null}]}}]}",
             KEEL_CHUNK_IDLE,
             "TOOL 0 #0 id=- type=- name=- args=''\n"
             "TOOL 0 #1 id=- type=- name=- args=-\n");
    /* every fragment is read even after one progresses */
    frame_is("message",
             "{'choices':[{'delta':{'tool_calls':[{'index':0,'function':{'arguments':'1'}},"
             "{'index':1,'function':{'arguments':'2'}}]}}]}",
             KEEL_CHUNK_PROGRESS,
             "TOOL 0 #0 id=- type=- name=- args='1'\n"
             "TOOL 0 #1 id=- type=- name=- args='2'\n");
}

static void test_logprobs_and_finish(void **state)
{
    frame_is("message",
             "{'choices':[{'index':0,'delta':{'content':'a'},'logprobs':{'content':[{'token':'a','logprob':-0.1}],"
             "'refusal':null},'finish_reason':null}]}",
             KEEL_CHUNK_PROGRESS,
             "TEXT 0 s='a'\n"
             "LOGPROBS 0 content=[{'token':'a','logprob':-0.1}] refusal=null\n");
    frame_is("message", "{'choices':[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}]}",
             KEEL_CHUNK_IDLE, "FINISH 0 finish='stop'\n");
}

static void test_choices_interleaved(void **state)
{
    frame_is("message",
             "{'choices':[{'index':1,'delta':{'content':'b'}},{'index':0,'delta':{'content':'a'},"
             "'finish_reason':'stop'}]}",
             KEEL_CHUNK_PROGRESS,
             "TEXT 1 s='b'\n"
             "TEXT 0 s='a'\n"
             "FINISH 0 finish='stop'\n");
    /* no index: the place in the array */
    frame_is("message", "{'choices':[{'delta':{'content':''}},{'delta':{'content':'x'}}]}", KEEL_CHUNK_PROGRESS,
             "TEXT 0 s=''\nTEXT 1 s='x'\n");
}

static void test_usage_error_done(void **state)
{
    frame_is("message", "{'id':'c1','choices':[],'usage':{'prompt_tokens':5,'completion_tokens':4,'total_tokens':9}}",
             KEEL_CHUNK_IDLE,
             "META 0 id='c1' model=- created=- fp=- tier=-\n"
             "USAGE 0 5/4/9 raw={'prompt_tokens':5,'completion_tokens':4,'total_tokens':9}\n");
    frame_is("message", "{'error':{'message':'INTERNAL_ERROR','code':'internal_error'}}", KEEL_CHUNK_ERROR,
             "ERROR 0 code=internal_error raw={'message':'INTERNAL_ERROR','code':'internal_error'}\n");
    /* an error chunk's other parts are still read out, the error last */
    frame_is("message",
             "{'id':'c2','choices':[{'delta':{'content':'x'}}],'usage':{'total_tokens':1},"
             "'error':{'type':'overloaded'}}",
             KEEL_CHUNK_ERROR,
             "META 0 id='c2' model=- created=- fp=- tier=-\n"
             "TEXT 0 s='x'\n"
             "USAGE 0 0/0/1 raw={'total_tokens':1}\n"
             "ERROR 0 code=overloaded raw={'type':'overloaded'}\n");
    frame_is("error", "{'message':'boom','code':502}", KEEL_CHUNK_ERROR,
             "ERROR 0 code=502 raw={'message':'boom','code':502}\n");
    frame_is("error", "not json", KEEL_CHUNK_ERROR, "ERROR 0 code= raw=-\n");
    frame_is("message", "{'error':null,'choices':[{'delta':{'content':'x'}}]}", KEEL_CHUNK_PROGRESS, "TEXT 0 s='x'\n");
    frame_is("message", "[DONE]", KEEL_CHUNK_DONE, "");
    frame_is("message", "{'choices':[{'delta':", KEEL_CHUNK_MALFORMED, "");
    frame_is("message", "[1,2]", KEEL_CHUNK_MALFORMED, "");
    /* A surrogate pair's halves in two chunks: each chunk is malformed JSON to the scanner
     * (RFC 8259 leaves lone surrogates undefined; jansson refuses them too), so no event. */
    frame_is("message", "{'choices':[{'delta':{'content':'\\ud83d'}}]}", KEEL_CHUNK_MALFORMED, "");
    frame_is("message", "{'choices':[{'delta':{'content':'\\ude00'}}]}", KEEL_CHUNK_MALFORMED, "");
}

static void test_stop(void **state)
{
    struct keel_decoder d;
    struct keel_chunk_info info;
    struct rec r = {.stop_at = 2};
    const char *a = dq("{'id':'s','choices':[{'delta':{'role':'assistant','content':'x'},'finish_reason':'stop'}]}");
    keel_decoder_init(&d, &keel_openai_decoder, on_ev, &r);
    d.ops->frame(&d, "message", a, strlen(a), &info);
    assert_int_equal(d.rv, 5);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.log, dq("META 0 id='s' model=- created=- fp=- tier=-\nROLE 0 role='assistant'\n"));
    assert_int_equal(info.kind, KEEL_CHUNK_PROGRESS);
    /* stopped for good: later frames are judged, nothing more is handed on */
    r.stop_at = 0;
    const char *b = dq("{'choices':[{'delta':{'content':'y'}}],'usage':{'total_tokens':3}}");
    d.ops->frame(&d, "message", b, strlen(b), &info);
    assert_int_equal(info.kind, KEEL_CHUNK_PROGRESS);
    assert_true(info.has_usage);
    assert_int_equal(info.usage.total_tokens, 3);
    assert_int_equal(r.n, 2);
    assert_int_equal(d.rv, 5);

    /* stopped before the fragment that progresses: the verdict still sees it */
    struct rec r2 = {.stop_at = 1};
    const char *c =
        dq("{'choices':[{'delta':{'role':'assistant','tool_calls':[{'index':0,'function':{'arguments':'{'}}]}}]}");
    keel_decoder_init(&d, &keel_openai_decoder, on_ev, &r2);
    d.ops->frame(&d, "message", c, strlen(c), &info);
    assert_int_equal(info.kind, KEEL_CHUNK_PROGRESS);
    assert_int_equal(r2.n, 1);
    assert_int_equal(d.rv, 5);

    /* a whole answer stops the same way */
    struct rec r3 = {.stop_at = 1};
    const char *e = dq("{'choices':[{'message':{'role':'assistant','content':'x'}}],'usage':{'total_tokens':3}}");
    char code[64];
    struct keel_usage u = {0};
    keel_decoder_init(&d, &keel_openai_decoder, on_ev, &r3);
    assert_int_equal(d.ops->body(&d, e, strlen(e), code, sizeof(code), &u), KEEL_ANSWER_OK);
    assert_int_equal(r3.n, 1);
    assert_int_equal(d.rv, 5);
    assert_int_equal(u.total_tokens, 3);
}

/* Decodes a whole answer (' for ") with a callback: its kind, code and events; and the same
 * verdict, code and usage without one. */
static void body_is(const char *text, enum keel_answer_kind kind, const char *code, const char *want)
{
    struct keel_decoder d;
    struct rec r = {0};
    char got[64], plain[64];
    struct keel_usage u = {0}, plain_u = {0};
    const char *json = dq(text);
    keel_decoder_init(&d, &keel_openai_decoder, on_ev, &r);
    assert_int_equal(d.ops->body(&d, json, strlen(json), got, sizeof(got), &u), kind);
    assert_string_equal(got, code);
    assert_string_equal(r.log, dq(want));
    keel_decoder_init(&d, &keel_openai_decoder, NULL, NULL);
    assert_int_equal(d.ops->body(&d, json, strlen(json), plain, sizeof(plain), &plain_u), kind);
    assert_string_equal(plain, code);
    assert_memory_equal(&u, &plain_u, sizeof(u));
}

static void test_body(void **state)
{
    body_is("{'id':'x','object':'chat.completion','created':3,'model':'m','choices':[{'index':0,'message':{"
            "'role':'assistant','content':'hi','reasoning':'r','refusal':null,'tool_calls':[{'id':'call_1',"
            "'type':'function','function':{'name':'f','arguments':'{}'}},{'index':7,'id':'call_2','type':'function',"
            "'function':{'name':'g','arguments':''}}]},'logprobs':{'content':[{'token':'hi'}],'refusal':null},"
            "'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':1,'completion_tokens':2,'total_tokens':3},"
            "'system_fingerprint':'fp'}",
            KEEL_ANSWER_OK, "",
            "META 0 id='x' model='m' created=3 fp='fp' tier=-\n"
            "ROLE 0 role='assistant'\n"
            "REASONING 0 alt s='r'\n"
            "TEXT 0 s='hi'\n"
            "TOOL 0 #0 id='call_1' type='function' name='f' args='{}'\n"
            "TOOL 0 #1 id='call_2' type='function' name='g' args=''\n"
            "LOGPROBS 0 content=[{'token':'hi'}] refusal=null\n"
            "FINISH 0 finish='tool_calls'\n"
            "USAGE 0 1/2/3 raw={'prompt_tokens':1,'completion_tokens':2,'total_tokens':3}\n");
    /* n = 2, and a refusal */
    body_is("{'choices':[{'index':0,'message':{'role':'assistant','content':null,'refusal':'no'},"
            "'finish_reason':'stop'},"
            "{'index':1,'message':{'role':'assistant','content':'ok'},'finish_reason':'stop'}]}",
            KEEL_ANSWER_OK, "",
            "ROLE 0 role='assistant'\nREFUSAL 0 s='no'\nFINISH 0 finish='stop'\n"
            "ROLE 1 role='assistant'\nTEXT 1 s='ok'\nFINISH 1 finish='stop'\n");
    body_is("{'error':{'message':'x','type':'server_error'}}", KEEL_ANSWER_ERROR, "server_error",
            "ERROR 0 code=server_error raw={'message':'x','type':'server_error'}\n");
    body_is("{'id':'x','choices':[]}", KEEL_ANSWER_EMPTY, "", "META 0 id='x' model=- created=- fp=- tier=-\n");
    body_is("{'choices':", KEEL_ANSWER_MALFORMED, "", "");
}

static void test_error_code(void **state)
{
    char code[64];
    const char *a = dq("{'error':{'message':'m','type':'invalid_request_error','code':'context_length_exceeded'}}");
    keel_openai_decoder.error_code(a, strlen(a), code, sizeof(code));
    assert_string_equal(code, "context_length_exceeded");
    const char *b = dq("{'code':'top','type':'t'}");
    keel_openai_decoder.error_code(b, strlen(b), code, sizeof(code));
    assert_string_equal(code, "top");
    keel_openai_decoder.error_code("", 0, code, sizeof(code));
    assert_string_equal(code, "");
    keel_openai_decoder.error_code(a, strlen(a), code, 0); /* no room: nothing written */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_for),
        cmocka_unit_test(test_content_and_meta),
        cmocka_unit_test(test_reasoning),
        cmocka_unit_test(test_refusal),
        cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_logprobs_and_finish),
        cmocka_unit_test(test_choices_interleaved),
        cmocka_unit_test(test_usage_error_done),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_error_code),
    };
    return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
