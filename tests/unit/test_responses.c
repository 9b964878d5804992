/* test_responses.c - the OpenAI Responses decoder (core/responses.c), kind "openai-responses":
 * each stream event's verdict, usage and error code, judged alike with and without a callback
 * (which is handed ERROR events only); whole Response objects and error bodies; then whole
 * streams through the SSE parser, fed whole, cut in two at every byte and byte by byte, every run
 * judging the same frames the same way. JSON is written with ' for " to stay readable. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "core/event.h"
#include "texts.h"

/* an SSE event of a named type (the Responses API names every event) */
#define EVENT(name, data) "event: " name "\ndata: " data "\n\n"

/* ---- events: ERROR only ---- */

struct rec {
    char log[1024];
    size_t len;
};

#define SPAN(v) (int)((v).p != NULL ? (v).len : 1), (v).p != NULL ? (v).p : "-"

static int record(void *ctx, const struct keel_ev *ev)
{
    struct rec *r = ctx;
    if (ev->kind != KEEL_EV_ERROR)
        fail_msg("a judge-only decoder handed on event %d", ev->kind);
    r->len += (size_t)snprintf(r->log + r->len, sizeof(r->log) - r->len, "ERROR %s raw=%.*s\n", ev->u.error.code,
                               SPAN(ev->u.error.raw));
    assert_true(r->len < sizeof(r->log));
    return 0;
}

/* One frame, on a decoder with the recorder and on one that only judges: its verdict, the events
 * handed on (' for "), and both verdicts the same. info is left for the caller to read. */
static void frame_is(const char *event, const char *data_q, enum keel_chunk_kind kind, const char *want_q,
                     struct keel_chunk_info *info)
{
    static char data[4096], want[4096];
    struct keel_decoder d, judge;
    struct keel_chunk_info alone;
    struct rec r = {{0}, 0};
    size_t len = dq(data_q, data, sizeof(data));
    dq(want_q, want, sizeof(want));
    keel_decoder_init(&d, &keel_responses_decoder, record, &r);
    keel_decoder_init(&judge, &keel_responses_decoder, NULL, NULL);
    d.ops->frame(&d, event, data, len, info);
    judge.ops->frame(&judge, event, data, len, &alone);
    assert_int_equal(info->kind, kind);
    assert_string_equal(r.log, want);
    assert_memory_equal(info, &alone, sizeof(alone));
}

static void kind_is(const char *event, const char *data_q, enum keel_chunk_kind kind)
{
    struct keel_chunk_info info;
    frame_is(event, data_q, kind, "", &info);
    assert_int_equal(info.has_usage, 0);
}

#define RESPONSE(status, output, usage)                                                                                \
    "{'id':'resp_1','object':'response','created_at':1741476542,'status':'" status "','error':null,"               \
    "'incomplete_details':null,'model':'gpt-4.1-2025-04-14','output':" output ",'usage':" usage "}"
#define USAGE(i, o, t)                                                                                                 \
    "{'input_tokens':" #i ",'input_tokens_details':{'cached_tokens':0},'output_tokens':" #o                          \
    ",'output_tokens_details':{'reasoning_tokens':0},'total_tokens':" #t "}"
#define MESSAGE(content) "{'id':'msg_1','type':'message','status':'completed','role':'assistant','content':" content "}"
#define OUTPUT_TEXT(s) "{'type':'output_text','text':'" s "','annotations':[]}"
#define CALL(name, args)                                                                                               \
    "{'id':'fc_1','type':'function_call','status':'completed','call_id':'call_1','name':'" name                      \
    "','arguments':'" args "'}"
#define DELTA(type, s) "{'type':'" type "','item_id':'msg_1','output_index':0,'content_index':0,'delta':'" s "'}"

/* ---- the stream's events, one by one ---- */

static void test_decoder_for(void **state)
{
    assert_ptr_equal(keel_decoder_for("openai-responses"), &keel_responses_decoder);
    assert_string_equal(keel_responses_decoder.kind, "openai-responses");
    assert_ptr_equal(keel_decoder_for("openai"), &keel_openai_decoder);
    assert_null(keel_decoder_for("responses"));
}

static void test_progress(void **state)
{
    static const char *const deltas[] = {"response.output_text.delta", "response.refusal.delta",
                                         "response.reasoning_summary_text.delta", "response.reasoning_text.delta",
                                         "response.function_call_arguments.delta"};
    char data[256];
    for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
        snprintf(data, sizeof(data), "{'type':'%s','item_id':'x','output_index':0,'delta':'Hi'}", deltas[i]);
        kind_is(deltas[i], data, KEEL_CHUNK_PROGRESS);
        /* an empty delta, or one that is no string, is no progress */
        snprintf(data, sizeof(data), "{'type':'%s','item_id':'x','output_index':0,'delta':''}", deltas[i]);
        kind_is(deltas[i], data, KEEL_CHUNK_IDLE);
        snprintf(data, sizeof(data), "{'type':'%s','delta':null}", deltas[i]);
        kind_is(deltas[i], data, KEEL_CHUNK_IDLE);
        snprintf(data, sizeof(data), "{'type':'%s'}", deltas[i]);
        kind_is(deltas[i], data, KEEL_CHUNK_IDLE);
    }
    /* an escaped type is the same type */
    kind_is("message", "{'type':'response.output_text\\u002edelta','delta':'a'}", KEEL_CHUNK_PROGRESS);
    /* the data's type, else the event's name */
    kind_is("response.output_text.delta", "{'delta':'a'}", KEEL_CHUNK_PROGRESS);
    kind_is("message", "{'type':'response.output_text.delta','delta':'a'}", KEEL_CHUNK_PROGRESS);
    kind_is("message", "{'delta':'a'}", KEEL_CHUNK_IDLE);
}

static void test_output_item_added(void **state)
{
    kind_is("response.output_item.added",
            "{'type':'response.output_item.added','output_index':0,'item':{'id':'fc_1','type':'function_call',"
            "'status':'in_progress','arguments':'','call_id':'call_1','name':'get_weather'}}",
            KEEL_CHUNK_PROGRESS);
    kind_is("response.output_item.added",
            "{'type':'response.output_item.added','output_index':0,'item':{'id':'fc_1','type':'function_call',"
            "'arguments':'','call_id':'call_1','name':''}}",
            KEEL_CHUNK_IDLE);
    kind_is("response.output_item.added",
            "{'type':'response.output_item.added','output_index':0,'item':{'id':'msg_1','type':'message',"
            "'status':'in_progress','role':'assistant','content':[]}}",
            KEEL_CHUNK_IDLE);
    kind_is("response.output_item.added",
            "{'type':'response.output_item.added','output_index':0,'item':{'id':'rs_1','type':'reasoning',"
            "'summary':[]}}",
            KEEL_CHUNK_IDLE);
    kind_is("response.output_item.added", "{'type':'response.output_item.added','item':null}", KEEL_CHUNK_IDLE);
}

static void test_idle(void **state)
{
    static const char *const idle[] = {"response.created", "response.in_progress", "response.content_part.added",
                                       "response.output_text.done", "response.content_part.done",
                                       "response.output_item.done", "response.function_call_arguments.done",
                                       "response.output_text.annotation.added", "response.queued",
                                       "response.some_type_to_come_that_is_longer_than_any_known_type.delta"};
    char data[256];
    for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++) {
        snprintf(data, sizeof(data), "{'type':'%s','sequence_number':3,'delta':'x','text':'x'}", idle[i]);
        kind_is(idle[i], data, KEEL_CHUNK_IDLE);
    }
    /* response.created carries "usage": null */
    kind_is("response.created", "{'type':'response.created','response':" RESPONSE("in_progress", "[]", "null") "}",
            KEEL_CHUNK_IDLE);
}

static void test_done(void **state)
{
    struct keel_chunk_info info;
    frame_is("response.completed",
             "{'type':'response.completed','sequence_number':9,'response':"
             RESPONSE("completed", "[" MESSAGE("[" OUTPUT_TEXT("Hi") "]") "]", USAGE(36, 87, 123)) "}",
             KEEL_CHUNK_DONE, "", &info);
    assert_int_equal(info.has_usage, 1);
    assert_int_equal(info.usage.present, 1);
    assert_int_equal(info.usage.prompt_tokens, 36);
    assert_int_equal(info.usage.completion_tokens, 87);
    assert_int_equal(info.usage.total_tokens, 123);

    frame_is("response.incomplete",
             "{'type':'response.incomplete','response':" RESPONSE("incomplete", "[]", USAGE(5, 16, 21)) "}",
             KEEL_CHUNK_DONE, "", &info);
    assert_int_equal(info.has_usage, 1);
    assert_int_equal(info.usage.prompt_tokens, 5);
    assert_int_equal(info.usage.completion_tokens, 16);
    assert_int_equal(info.usage.total_tokens, 21);

    /* no usage: done all the same; no total: the sum */
    frame_is("response.completed", "{'type':'response.completed','response':{'usage':null}}", KEEL_CHUNK_DONE, "",
             &info);
    assert_int_equal(info.has_usage, 0);
    assert_int_equal(info.usage.present, 0);
    frame_is("response.completed", "{'type':'response.completed'}", KEEL_CHUNK_DONE, "", &info);
    assert_int_equal(info.has_usage, 0);
    frame_is("response.completed",
             "{'type':'response.completed','response':{'usage':{'input_tokens':3,'output_tokens':4}}}",
             KEEL_CHUNK_DONE, "", &info);
    assert_int_equal(info.usage.total_tokens, 7);
}

static void test_errors(void **state)
{
    struct keel_chunk_info info;
    frame_is("error",
             "{'type':'error','code':'rate_limit_exceeded','message':'Rate limit reached','param':null,"
             "'sequence_number':2}",
             KEEL_CHUNK_ERROR,
             "ERROR rate_limit_exceeded raw={'type':'error','code':'rate_limit_exceeded','message':'Rate limit "
             "reached','param':null,'sequence_number':2}\n",
             &info);
    assert_string_equal(info.error_code, "rate_limit_exceeded");
    frame_is("error", "{'type':'error','code':'server_error','message':'boom'}", KEEL_CHUNK_ERROR,
             "ERROR server_error raw={'type':'error','code':'server_error','message':'boom'}\n", &info);
    assert_string_equal(info.error_code, "server_error");
    /* no code: "" (the top-level type is "error" itself, never a code) */
    frame_is("error", "{'type':'error','code':null,'message':'boom'}", KEEL_CHUNK_ERROR,
             "ERROR  raw={'type':'error','code':null,'message':'boom'}\n", &info);
    assert_string_equal(info.error_code, "");
    /* a nested error object: its code, else its type */
    frame_is("error", "{'type':'error','error':{'type':'server_error','code':'insufficient_quota'}}",
             KEEL_CHUNK_ERROR, "ERROR insufficient_quota raw={'type':'server_error','code':'insufficient_quota'}\n",
             &info);
    assert_string_equal(info.error_code, "insufficient_quota");
    frame_is("message", "{'type':'error','error':{'type':'server_overloaded','code':null}}", KEEL_CHUNK_ERROR,
             "ERROR server_overloaded raw={'type':'server_overloaded','code':null}\n", &info);
    assert_string_equal(info.error_code, "server_overloaded");
    /* `event: error` whatever its data's type says; with data that is no JSON object too */
    frame_is("error", "{'code':'server_error'}", KEEL_CHUNK_ERROR, "ERROR server_error raw={'code':'server_error'}\n",
             &info);
    frame_is("error", "upstream exploded", KEEL_CHUNK_ERROR, "ERROR  raw=-\n", &info);
    assert_string_equal(info.error_code, "");

    /* response.failed: the response's error code, its usage */
    frame_is("response.failed",
             "{'type':'response.failed','response':{'id':'resp_1','status':'failed','error':{'code':'server_error',"
             "'message':'The model failed'},'output':[],'usage':" USAGE(10, 2, 12) "}}",
             KEEL_CHUNK_ERROR, "ERROR server_error raw={'code':'server_error','message':'The model failed'}\n", &info);
    assert_string_equal(info.error_code, "server_error");
    assert_int_equal(info.has_usage, 1);
    assert_int_equal(info.usage.total_tokens, 12);
    frame_is("response.failed", "{'type':'response.failed','response':{'status':'failed','error':null}}",
             KEEL_CHUNK_ERROR,
             "ERROR  raw={'type':'response.failed','response':{'status':'failed','error':null}}\n", &info);
    assert_string_equal(info.error_code, "");
}

static void test_malformed(void **state)
{
    kind_is("response.output_text.delta", "not json", KEEL_CHUNK_MALFORMED);
    kind_is("message", "[DONE]", KEEL_CHUNK_MALFORMED); /* no sentinel: response.completed ends it */
    kind_is("message", "['a']", KEEL_CHUNK_MALFORMED);
    kind_is("message", "'a string'", KEEL_CHUNK_MALFORMED);
    kind_is("message", "{'type':'response.output_text.delta','delta':'a'", KEEL_CHUNK_MALFORMED);
    kind_is("message", "", KEEL_CHUNK_MALFORMED);
}

/* ---- whole answers ---- */

static void body_is(const char *text_q, enum keel_answer_kind kind, const char *code, const char *want_q,
                    const struct keel_usage *want_usage)
{
    static char text[4096], want[4096];
    struct keel_decoder d, judge;
    struct rec r = {{0}, 0};
    char got[64] = "x", alone[64] = "x";
    struct keel_usage u = {0}, ua = {0};
    size_t len = dq(text_q, text, sizeof(text));
    dq(want_q, want, sizeof(want));
    if (kind != KEEL_ANSWER_MALFORMED)
        assert_json(text, len); /* the test's own text is JSON to jansson too */
    keel_decoder_init(&d, &keel_responses_decoder, record, &r);
    keel_decoder_init(&judge, &keel_responses_decoder, NULL, NULL);
    assert_int_equal(d.ops->body(&d, text, len, got, sizeof(got), &u), kind);
    assert_int_equal(judge.ops->body(&judge, text, len, alone, sizeof(alone), &ua), kind);
    assert_int_equal(judge.ops->body(&judge, text, len, NULL, 0, NULL), kind);
    assert_string_equal(got, code);
    assert_string_equal(alone, code);
    assert_string_equal(r.log, want);
    assert_memory_equal(&u, &ua, sizeof(u));
    if (want_usage != NULL)
        assert_memory_equal(&u, want_usage, sizeof(u));
    else
        assert_int_equal(u.present, 0);
}

static void test_body(void **state)
{
    static const struct keel_usage usage = {1, 36, 87, 123};
    body_is(RESPONSE("completed", "[" MESSAGE("[" OUTPUT_TEXT("Hello") "]") "]", USAGE(36, 87, 123)), KEEL_ANSWER_OK,
            "", "", &usage);
    /* reasoning first, then the message */
    body_is(RESPONSE("completed",
                     "[{'id':'rs_1','type':'reasoning','summary':[]}," MESSAGE("[" OUTPUT_TEXT("Hi") "]") "]",
                     "null"),
            KEEL_ANSWER_OK, "", "", NULL);
    body_is(RESPONSE("completed", "[" MESSAGE("[{'type':'refusal','refusal':'I cannot help with that.'}]") "]",
                     USAGE(36, 87, 123)),
            KEEL_ANSWER_OK, "", "", &usage);
    body_is(RESPONSE("completed", "[" CALL("get_weather", "{\\'city\\':\\'Paris\\'}") "]", USAGE(36, 87, 123)),
            KEEL_ANSWER_OK, "", "", &usage);
    body_is(RESPONSE("completed", "[" CALL("get_time", "") "]", "null"), KEEL_ANSWER_OK, "", "", NULL);
    /* an incomplete answer with text is an answer */
    body_is(RESPONSE("incomplete", "[" MESSAGE("[" OUTPUT_TEXT("Hel") "]") "]", USAGE(36, 87, 123)), KEEL_ANSWER_OK,
            "", "", &usage);

    /* nothing a client reads */
    body_is(RESPONSE("completed", "[]", USAGE(36, 87, 123)), KEEL_ANSWER_EMPTY, "", "", &usage);
    body_is(RESPONSE("completed", "[" MESSAGE("[]") "]", "null"), KEEL_ANSWER_EMPTY, "", "", NULL);
    body_is(RESPONSE("completed", "[" MESSAGE("[" OUTPUT_TEXT("") "]") "]", "null"), KEEL_ANSWER_EMPTY, "", "", NULL);
    body_is(RESPONSE("completed", "[" MESSAGE("[{'type':'refusal','refusal':''}]") "]", "null"), KEEL_ANSWER_EMPTY,
            "", "", NULL);
    body_is(RESPONSE("incomplete", "[{'id':'rs_1','type':'reasoning','summary':[]}]", USAGE(36, 87, 123)),
            KEEL_ANSWER_EMPTY, "", "", &usage);
    body_is("{'output':null}", KEEL_ANSWER_EMPTY, "", "", NULL);
    body_is("{}", KEEL_ANSWER_EMPTY, "", "", NULL);

    /* errors: an error object, or status failed (whatever the output holds) */
    body_is("{'id':'resp_1','object':'response','status':'failed','error':{'code':'server_error','message':'x'},"
            "'output':[" MESSAGE("[" OUTPUT_TEXT("Hel") "]") "],'usage':" USAGE(36, 87, 123) "}",
            KEEL_ANSWER_ERROR, "server_error", "ERROR server_error raw={'code':'server_error','message':'x'}\n",
            &usage);
    body_is("{'status':'failed','error':null,'output':[]}", KEEL_ANSWER_ERROR, "",
            "ERROR  raw={'status':'failed','error':null,'output':[]}\n", NULL);
    body_is("{'error':{'message':'Rate limit reached','type':'requests','param':null,'code':'rate_limit_exceeded'}}",
            KEEL_ANSWER_ERROR, "rate_limit_exceeded",
            "ERROR rate_limit_exceeded raw={'message':'Rate limit reached','type':'requests','param':null,"
            "'code':'rate_limit_exceeded'}\n",
            NULL);
    body_is("{'error':{'message':'Overloaded','type':'server_overloaded','code':null}}", KEEL_ANSWER_ERROR,
            "server_overloaded", "ERROR server_overloaded raw={'message':'Overloaded','type':'server_overloaded',"
            "'code':null}\n",
            NULL);

    /* no JSON object */
    body_is("not json", KEEL_ANSWER_MALFORMED, "", "", NULL);
    body_is("[]", KEEL_ANSWER_MALFORMED, "", "", NULL);
    body_is("", KEEL_ANSWER_MALFORMED, "", "", NULL);
    body_is("{'output':[]", KEEL_ANSWER_MALFORMED, "", "", NULL);
}

static void error_code_is(const char *text_q, const char *want)
{
    static char text[1024];
    char code[64] = "x";
    size_t len = dq(text_q, text, sizeof(text));
    keel_responses_decoder.error_code(text, len, code, sizeof(code));
    assert_string_equal(code, want);
}

static void test_error_code(void **state)
{
    error_code_is("{'error':{'message':'Rate limit reached','type':'requests','param':null,"
                  "'code':'rate_limit_exceeded'}}",
                  "rate_limit_exceeded");
    error_code_is("{'error':{'message':'You exceeded your current quota','type':'insufficient_quota','param':null,"
                  "'code':'insufficient_quota'}}",
                  "insufficient_quota");
    error_code_is("{'error':{'message':'The model does not exist','type':'invalid_request_error','param':'model',"
                  "'code':'model_not_found'}}",
                  "model_not_found");
    error_code_is("{'error':{'message':'x','type':'server_error','code':null}}", "server_error");
    error_code_is("{'error':{'message':'x'}}", "");
    error_code_is("{}", "");
    error_code_is("<html>502 Bad Gateway</html>", "");
    error_code_is("", "");
}

/* ---- whole streams, cut everywhere ---- */

struct feed {
    struct keel_decoder d, judge; /* with the recorder; judging alone */
    struct rec r;
    char kinds[64]; /* a letter per frame: D(one) P(rogress) I(dle) E(rror) M(alformed) */
    size_t nkinds;
    char code[64];          /* the last error frame's code */
    struct keel_usage usage; /* the last usage a frame carried */
};

static int feed_frame(void *ctx, const char *event, const char *data, size_t len)
{
    struct feed *f = ctx;
    struct keel_chunk_info info, alone;
    f->d.ops->frame(&f->d, event, data, len, &info);
    f->judge.ops->frame(&f->judge, event, data, len, &alone);
    assert_memory_equal(&info, &alone, sizeof(info));
    assert_true(f->nkinds + 1 < sizeof(f->kinds));
    f->kinds[f->nkinds++] = "DPIEM"[info.kind];
    if (info.kind == KEEL_CHUNK_ERROR)
        memcpy(f->code, info.error_code, sizeof(f->code));
    if (info.has_usage)
        f->usage = info.usage;
    return 0;
}

static void feed_cut(const char *sse, size_t len, const size_t *cuts, size_t ncuts, const char *kinds,
                     const char *code, const char *events, const struct keel_usage *usage)
{
    static struct feed f;
    struct keel_sse_parser p;
    memset(&f, 0, sizeof(f));
    keel_decoder_init(&f.d, &keel_responses_decoder, record, &f.r);
    keel_decoder_init(&f.judge, &keel_responses_decoder, NULL, NULL);
    keel_sse_parser_init(&p, 1 << 16, feed_frame, NULL, &f);
    feed_pieces(&p, sse, len, cuts, ncuts);
    keel_sse_parser_release(&p);
    assert_string_equal(f.kinds, kinds);
    assert_string_equal(f.code, code);
    assert_string_equal(f.r.log, events);
    assert_memory_equal(&f.usage, usage, sizeof(f.usage));
}

/* Stream sse_q (' for "): whole, cut in two anywhere and byte by byte, its frames judged
 * `kinds`, the last error's code `code`, the ERROR events `events_q`, the last usage `usage`. */
static void stream_is(const char *sse_q, const char *kinds, const char *code, const char *events_q,
                      const struct keel_usage *usage)
{
    static char sse[16384], events[4096];
    static size_t cuts[16384];
    size_t len = dq(sse_q, sse, sizeof(sse));
    dq(events_q, events, sizeof(events));
    feed_cut(sse, len, NULL, 0, kinds, code, events, usage);
    for (size_t cut = 0; cut <= len; cut++)
        feed_cut(sse, len, &cut, 1, kinds, code, events, usage);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    feed_cut(sse, len, cuts, len, kinds, code, events, usage);
}

#define CREATED EVENT("response.created", "{'type':'response.created','sequence_number':0,'response':" \
                      RESPONSE("in_progress", "[]", "null") "}")
#define IN_PROGRESS EVENT("response.in_progress", "{'type':'response.in_progress','sequence_number':1,'response':" \
                          RESPONSE("in_progress", "[]", "null") "}")

static void test_text_stream(void **state)
{
    static const struct keel_usage usage = {1, 36, 87, 123};
    stream_is(CREATED IN_PROGRESS
              EVENT("response.output_item.added", "{'type':'response.output_item.added','sequence_number':2,"
                    "'output_index':0,'item':{'id':'msg_1','type':'message','status':'in_progress',"
                    "'role':'assistant','content':[]}}")
              EVENT("response.content_part.added", "{'type':'response.content_part.added','sequence_number':3,"
                    "'item_id':'msg_1','output_index':0,'content_index':0,'part':" OUTPUT_TEXT("") "}")
              EVENT("response.output_text.delta", DELTA("response.output_text.delta", "Hel"))
              EVENT("response.output_text.delta", DELTA("response.output_text.delta", "lo, \\'w\\u00f6rld\\'"))
              EVENT("response.output_text.delta", DELTA("response.output_text.delta", "!\\n"))
              EVENT("response.output_text.done", "{'type':'response.output_text.done','sequence_number':7,"
                    "'item_id':'msg_1','output_index':0,'content_index':0,'text':'Hello, \\'w\\u00f6rld\\'!\\n'}")
              EVENT("response.content_part.done", "{'type':'response.content_part.done','sequence_number':8,"
                    "'item_id':'msg_1','output_index':0,'content_index':0,'part':"
                    OUTPUT_TEXT("Hello, \\'w\\u00f6rld\\'!\\n") "}")
              EVENT("response.output_item.done", "{'type':'response.output_item.done','sequence_number':9,"
                    "'output_index':0,'item':" MESSAGE("[" OUTPUT_TEXT("Hello, \\'w\\u00f6rld\\'!\\n") "]") "}")
              EVENT("response.completed", "{'type':'response.completed','sequence_number':10,'response':"
                    RESPONSE("completed", "[" MESSAGE("[" OUTPUT_TEXT("Hello, \\'w\\u00f6rld\\'!\\n") "]") "]",
                             USAGE(36, 87, 123)) "}"),
              "IIIIPPPIIID", "", "", &usage);
}

static void test_function_call_stream(void **state)
{
    static const struct keel_usage usage = {1, 50, 18, 68};
    stream_is(CREATED IN_PROGRESS
              EVENT("response.output_item.added", "{'type':'response.output_item.added','sequence_number':2,"
                    "'output_index':0,'item':{'id':'fc_1','type':'function_call','status':'in_progress',"
                    "'arguments':'','call_id':'call_1','name':'get_weather'}}")
              EVENT("response.function_call_arguments.delta", "{'type':'response.function_call_arguments.delta',"
                    "'sequence_number':3,'item_id':'fc_1','output_index':0,'delta':'{\\'city\\':'}")
              EVENT("response.function_call_arguments.delta", "{'type':'response.function_call_arguments.delta',"
                    "'sequence_number':4,'item_id':'fc_1','output_index':0,'delta':''}")
              EVENT("response.function_call_arguments.delta", "{'type':'response.function_call_arguments.delta',"
                    "'sequence_number':5,'item_id':'fc_1','output_index':0,'delta':'\\'Paris\\'}'}")
              EVENT("response.function_call_arguments.done", "{'type':'response.function_call_arguments.done',"
                    "'sequence_number':6,'item_id':'fc_1','output_index':0,'arguments':'{\\'city\\':\\'Paris\\'}'}")
              EVENT("response.output_item.done", "{'type':'response.output_item.done','sequence_number':7,"
                    "'output_index':0,'item':" CALL("get_weather", "{\\'city\\':\\'Paris\\'}") "}")
              EVENT("response.completed", "{'type':'response.completed','sequence_number':8,'response':"
                    RESPONSE("completed", "[" CALL("get_weather", "{\\'city\\':\\'Paris\\'}") "]",
                             USAGE(50, 18, 68)) "}"),
              "IIPPIPIID", "", "", &usage);
}

static void test_reasoning_stream(void **state)
{
    static const struct keel_usage usage = {1, 10, 30, 40};
    stream_is(CREATED
              EVENT("response.output_item.added", "{'type':'response.output_item.added','sequence_number':1,"
                    "'output_index':0,'item':{'id':'rs_1','type':'reasoning','summary':[]}}")
              EVENT("response.reasoning_summary_part.added", "{'type':'response.reasoning_summary_part.added',"
                    "'sequence_number':2,'item_id':'rs_1','output_index':0,'summary_index':0,"
                    "'part':{'type':'summary_text','text':''}}")
              EVENT("response.reasoning_summary_text.delta", "{'type':'response.reasoning_summary_text.delta',"
                    "'sequence_number':3,'item_id':'rs_1','output_index':0,'summary_index':0,'delta':'Thinking'}")
              EVENT("response.incomplete", "{'type':'response.incomplete','sequence_number':4,'response':"
                    RESPONSE("incomplete", "[]", USAGE(10, 30, 40)) "}"),
              "IIIPD", "", "", &usage);
}

static void test_error_stream(void **state)
{
    static const struct keel_usage none = {0};
    static const struct keel_usage usage = {1, 12, 1, 13};
    stream_is(CREATED IN_PROGRESS
              EVENT("response.output_text.delta", DELTA("response.output_text.delta", "Hi"))
              EVENT("error", "{'type':'error','sequence_number':3,'code':'server_error','message':'An error "
                    "occurred','param':null}"),
              "IIPE", "server_error",
              "ERROR server_error raw={'type':'error','sequence_number':3,'code':'server_error','message':'An "
              "error occurred','param':null}\n",
              &none);
    stream_is(CREATED IN_PROGRESS
              EVENT("response.failed", "{'type':'response.failed','sequence_number':2,'response':{'id':'resp_1',"
                    "'status':'failed','error':{'code':'rate_limit_exceeded','message':'slow down'},'output':[],"
                    "'usage':" USAGE(12, 1, 13) "}}"),
              "IIE", "rate_limit_exceeded",
              "ERROR rate_limit_exceeded raw={'code':'rate_limit_exceeded','message':'slow down'}\n", &usage);
    /* a frame that is no JSON mid-stream */
    stream_is(CREATED "data: {oops\n\n" EVENT("response.output_text.delta", DELTA("response.output_text.delta", "a")),
              "IMP", "", "", &none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_for),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_output_item_added),
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_done),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_error_code),
        cmocka_unit_test(test_text_stream),
        cmocka_unit_test(test_function_call_stream),
        cmocka_unit_test(test_reasoning_stream),
        cmocka_unit_test(test_error_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
