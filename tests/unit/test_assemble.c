/* test_assemble.c - whole OpenAI streams through the SSE parser, the decoder and the assembler
 * (core/assemble.h), fed whole, split in two at every byte and one byte per feed: the
 * chat.completion written must be exactly the one written here by hand, and JSON to jansson.
 * Also the cap, the index limit, and a non-stream answer decoded and written back unchanged.
 * JSON is written with ' for " to stay readable; \' is an escaped quote. */
#include "unit.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/assemble.h"
#include "core/sse_parse.h"
#include "texts.h"

#define BIG (1 << 20)

/* the SSE text of a stream: each chunk (' for ") as an event's data; a chunk starting with ':'
 * is a comment line */
static size_t sse_of(const char *const *chunks, char *out, size_t cap)
{
    size_t n = 0;
    for (; *chunks != NULL; chunks++) {
        const char *head = **chunks == ':' ? "" : "data: ";
        assert_true(n + strlen(head) + strlen(*chunks) + 2 < cap);
        memcpy(out + n, head, strlen(head));
        n += strlen(head);
        n += dq(*chunks, out + n, cap - n);
        memcpy(out + n, "\n\n", 3);
        n += 2;
    }
    return n;
}

struct run {
    struct keel_decoder d;
    struct keel_asm a;
    int malformed; /* chunks the decoder could not read */
};

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct run *r = ctx;
    struct keel_chunk_info info;
    r->d.ops->frame(&r->d, event, data, len, &info);
    r->malformed += info.kind == KEEL_CHUNK_MALFORMED;
    return 0;
}

/* Feeds sse[0..len) cut at cuts[0..ncuts) (ascending) into a parser whose events go through the
 * decoder into r's assembler (cap max). Returns the decoder's rv. r is left for the caller to
 * read and release. */
static int assemble(struct run *r, const char *sse, size_t len, const size_t *cuts, size_t ncuts, size_t max)
{
    struct keel_sse_parser p;
    memset(r, 0, sizeof(*r));
    keel_asm_init(&r->a, max, "openai");
    keel_decoder_init(&r->d, keel_decoder_for("openai"), keel_asm_event, &r->a);
    keel_sse_parser_init(&p, 1 << 16, on_event, NULL, r);
    feed_pieces(&p, sse, len, cuts, ncuts);
    keel_sse_parser_release(&p);
    return r->d.rv;
}

/* one assembly of the stream cut at cuts: exactly want */
static void check_cut(const char *sse, size_t len, const size_t *cuts, size_t ncuts, const char *want)
{
    struct run r;
    struct keel_buf out;
    keel_buf_init(&out, BIG);
    assert_int_equal(assemble(&r, sse, len, cuts, ncuts, BIG), 0);
    assert_int_equal(r.malformed, 0);
    assert_true(keel_asm_has_content(&r.a));
    assert_int_equal(keel_asm_openai_chat(&r.a, &out), 0);
    if (out.len != strlen(want) || memcmp(out.base, want, out.len) != 0)
        fail_msg("assembled\n%.*s\nwanted\n%s", (int)out.len, out.base, want);
    keel_buf_release(&out);
    keel_asm_release(&r.a);
}

/* the stream's answer is want (' for "), whole, cut in two anywhere, and byte by byte */
static void check_stream(const char *const *chunks, const char *want_q)
{
    static char sse[8192], want[4096];
    static size_t cuts[8192];
    size_t len = sse_of(chunks, sse, sizeof(sse));
    size_t wlen = dq(want_q, want, sizeof(want));
    assert_json(want, wlen);
    check_cut(sse, len, NULL, 0, want);
    for (size_t cut = 0; cut <= len; cut++)
        check_cut(sse, len, &cut, 1, want);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    check_cut(sse, len, cuts, len, want);
}

/* ---- streams ---- */

/* a chunk of stream m (its head up to "choices":) with one choice, no logprobs */
#define DELTA(m, i, delta, finish) m "[{'index':" #i ",'delta':" delta ",'logprobs':null,'finish_reason':" finish "}]}"

#define M1 "{'id':'chatcmpl-1','object':'chat.completion.chunk','created':1700000000,'model':'gpt-4o-2024-08-06'," \
           "'service_tier':'default','system_fingerprint':'fp_f5','choices':"
static const char *const text_stream[] = {
    M1 "[{'index':0,'delta':{'role':'assistant','content':'','refusal':null},'logprobs':null,'finish_reason':null}],"
       "'usage':null}",
    ": keep-alive",
    M1 "[{'index':0,'delta':{'content':'Hello'},'logprobs':null,'finish_reason':null}],'usage':null}",
    M1 "[{'index':0,'delta':{'content':' world'},'logprobs':null,'finish_reason':null}],'usage':null}",
    M1 "[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}],'usage':null}",
    M1 "[],'usage':{'prompt_tokens':9,'completion_tokens':2,'total_tokens':11,'prompt_tokens_details':"
       "{'cached_tokens':0}}}",
    "[DONE]",
    NULL,
};
static const char text_answer[] =
    "{'id':'chatcmpl-1','object':'chat.completion','created':1700000000,'model':'gpt-4o-2024-08-06','choices':["
    "{'index':0,'message':{'role':'assistant','content':'Hello world','refusal':null},'logprobs':null,"
    "'finish_reason':'stop'}],'usage':{'prompt_tokens':9,'completion_tokens':2,'total_tokens':11,"
    "'prompt_tokens_details':{'cached_tokens':0}},'service_tier':'default','system_fingerprint':'fp_f5'}";

static void test_text(void **state)
{
    check_stream(text_stream, text_answer);
}

#define M2 "{'id':'chatcmpl-2','object':'chat.completion.chunk','created':1700000001,'model':'gpt-4o','choices':"
#define ARGS(i, s) DELTA(M2, 0, "{'tool_calls':[{'index':" #i ",'function':{'arguments':'" s "'}}]}", "null")
static void test_tool_calls(void **state)
{
    static const char *const stream[] = {
        DELTA(M2, 0, "{'role':'assistant','content':null,'tool_calls':[{'index':0,'id':'call_a','type':'function',"
                     "'function':{'name':'get_weather','arguments':''}}]}", "null"),
        ARGS(0, "{\\'ci"),
        ARGS(0, "ty\\': \\'Par"),
        DELTA(M2, 0, "{'tool_calls':[{'index':1,'id':'call_b','type':'function','function':{'name':'get_time',"
                     "'arguments':''}}]}", "null"),
        ARGS(0, "is\\'}"),
        ARGS(1, "{\\'tz\\':"),
        ARGS(1, " \\'CET\\'}"),
        DELTA(M2, 0, "{}", "'tool_calls'"),
        "[DONE]",
        NULL,
    };
    check_stream(stream,
                 "{'id':'chatcmpl-2','object':'chat.completion','created':1700000001,'model':'gpt-4o','choices':["
                 "{'index':0,'message':{'role':'assistant','content':null,'refusal':null,'tool_calls':["
                 "{'id':'call_a','type':'function','function':{'name':'get_weather','arguments':"
                 "'{\\'city\\': \\'Paris\\'}'}},"
                 "{'id':'call_b','type':'function','function':{'name':'get_time','arguments':'{\\'tz\\': \\'CET\\'}'}}"
                 "]},'logprobs':null,'finish_reason':'tool_calls'}]}");
}

/* servers that repeat the id and name in every fragment (they are kept, not joined), and a
 * call that never said its id */
static void test_tool_calls_repeated(void **state)
{
    static const char *const stream[] = {
        "{'id':'x','choices':[{'delta':{'role':'assistant','tool_calls':[{'index':0,'id':'call_1','type':'function',"
        "'function':{'name':'f','arguments':'{'}}]}}]}",
        "{'id':'x','choices':[{'delta':{'tool_calls':[{'index':0,'id':'call_1','type':'function',"
        "'function':{'name':'f','arguments':'}'}}]}}]}",
        "{'id':'x','choices':[{'delta':{'tool_calls':[{'index':1,'function':{'arguments':'[]'}}]}}]}",
        "{'id':'x','choices':[{'delta':{},'finish_reason':'tool_calls'}]}",
        NULL,
    };
    check_stream(stream, "{'id':'x','object':'chat.completion','choices':[{'index':0,'message':{'role':'assistant',"
                         "'content':null,'refusal':null,'tool_calls':[{'id':'call_1','type':'function','function':"
                         "{'name':'f','arguments':'{}'}},{'type':'function','function':{'name':'','arguments':'[]'}}"
                         "]},'logprobs':null,'finish_reason':'tool_calls'}]}");
}

#define M3 "{'id':'r-3','object':'chat.completion.chunk','created':1700000002,'model':'deepseek-reasoner'," \
           "'system_fingerprint':'fp_r','choices':"
static void test_reasoning(void **state)
{
    static const char *const stream[] = {
        DELTA(M3, 0, "{'role':'assistant','content':null,'reasoning_content':''}", "null"),
        DELTA(M3, 0, "{'content':null,'reasoning_content':'Six times'}", "null"),
        DELTA(M3, 0, "{'content':null,'reasoning_content':' seven.'}", "null"),
        DELTA(M3, 0, "{'content':'42','reasoning_content':null}", "null"),
        M3 "[{'index':0,'delta':{'content':'','reasoning_content':null},'logprobs':null,'finish_reason':'stop'}],"
           "'usage':{'prompt_tokens':10,'completion_tokens':5,'total_tokens':15,'completion_tokens_details':"
           "{'reasoning_tokens':3}}}",
        "[DONE]",
        NULL,
    };
    check_stream(stream, "{'id':'r-3','object':'chat.completion','created':1700000002,'model':'deepseek-reasoner',"
                         "'choices':[{'index':0,'message':{'role':'assistant','content':'42','reasoning_content':"
                         "'Six times seven.','refusal':null},'logprobs':null,'finish_reason':'stop'}],'usage':"
                         "{'prompt_tokens':10,'completion_tokens':5,'total_tokens':15,'completion_tokens_details':"
                         "{'reasoning_tokens':3}},'system_fingerprint':'fp_r'}");
    /* sent as "reasoning", written back so; no created: left out */
    static const char *const alt[] = {
        "{'id':'or-1','model':'x/y','choices':[{'index':0,'delta':{'role':'assistant','content':'',"
        "'reasoning':'Hm'}}]}",
        "{'id':'or-1','model':'x/y','choices':[{'index':0,'delta':{'content':'Yes','reasoning':null},"
        "'finish_reason':'stop'}]}",
        "[DONE]",
        NULL,
    };
    check_stream(alt, "{'id':'or-1','object':'chat.completion','model':'x/y','choices':[{'index':0,'message':"
                      "{'role':'assistant','content':'Yes','reasoning':'Hm','refusal':null},'logprobs':null,"
                      "'finish_reason':'stop'}]}");
}

#define M4 "{'id':'chatcmpl-4','object':'chat.completion.chunk','created':1700000003,'model':'gpt-4o','choices':"
static void test_refusal(void **state)
{
    static const char *const stream[] = {
        DELTA(M4, 0, "{'role':'assistant','content':null,'refusal':''}", "null"),
        DELTA(M4, 0, "{'refusal':'I cannot'}", "null"),
        DELTA(M4, 0, "{'refusal':' help with that.'}", "null"),
        DELTA(M4, 0, "{}", "'stop'"),
        "[DONE]",
        NULL,
    };
    check_stream(stream, "{'id':'chatcmpl-4','object':'chat.completion','created':1700000003,'model':'gpt-4o',"
                         "'choices':[{'index':0,'message':{'role':'assistant','content':null,'refusal':"
                         "'I cannot help with that.'},'logprobs':null,'finish_reason':'stop'}]}");
}

#define M5 "{'id':'chatcmpl-5','object':'chat.completion.chunk','created':1700000004,'model':'gpt-4o-mini','choices':"
static void test_logprobs(void **state)
{
    static const char *const stream[] = {
        M5 "[{'index':0,'delta':{'role':'assistant','content':'','refusal':null},'logprobs':{'content':[],"
           "'refusal':null},'finish_reason':null}]}",
        M5 "[{'index':0,'delta':{'content':'Hi'},'logprobs':{'content':[{'token':'Hi','logprob':-0.0012,'bytes':"
           "[72,105],'top_logprobs':[{'token':'Hi','logprob':-0.0012,'bytes':[72,105]}]}],'refusal':null},"
           "'finish_reason':null}]}",
        /* whitespace inside the array as a server may send it */
        M5 "[{'index':0,'delta':{'content':'!'},'logprobs':{'content':[ {'token':'!','logprob':-0.31,'bytes':[33],"
           "'top_logprobs':[]} ],'refusal':null},'finish_reason':null}]}",
        DELTA(M5, 0, "{}", "'stop'"),
        "[DONE]",
        NULL,
    };
    check_stream(stream, "{'id':'chatcmpl-5','object':'chat.completion','created':1700000004,'model':'gpt-4o-mini',"
                         "'choices':[{'index':0,'message':{'role':'assistant','content':'Hi!','refusal':null},"
                         "'logprobs':{'content':[{'token':'Hi','logprob':-0.0012,'bytes':[72,105],'top_logprobs':"
                         "[{'token':'Hi','logprob':-0.0012,'bytes':[72,105]}]},{'token':'!','logprob':-0.31,"
                         "'bytes':[33],'top_logprobs':[]}],'refusal':null},'finish_reason':'stop'}]}");
}

#define M6 "{'id':'chatcmpl-6','object':'chat.completion.chunk','created':1700000005,'model':'gpt-4o','choices':"
static void test_two_choices(void **state)
{
    static const char *const stream[] = {
        DELTA(M6, 0, "{'role':'assistant','content':''}", "null"),
        DELTA(M6, 1, "{'role':'assistant','content':''}", "null"),
        DELTA(M6, 1, "{'content':'Bonjour'}", "null"),
        DELTA(M6, 0, "{'content':'Hello'}", "null"),
        M6 "[{'index':1,'delta':{'content':' !'},'logprobs':null,'finish_reason':null},{'index':0,'delta':"
           "{'content':'!'},'logprobs':null,'finish_reason':null}]}",
        DELTA(M6, 1, "{}", "'stop'"),
        DELTA(M6, 0, "{}", "'length'"),
        M6 "[],'usage':{'prompt_tokens':8,'completion_tokens':6,'total_tokens':14}}",
        "[DONE]",
        NULL,
    };
    check_stream(stream, "{'id':'chatcmpl-6','object':'chat.completion','created':1700000005,'model':'gpt-4o',"
                         "'choices':[{'index':0,'message':{'role':'assistant','content':'Hello!','refusal':null},"
                         "'logprobs':null,'finish_reason':'length'},{'index':1,'message':{'role':'assistant',"
                         "'content':'Bonjour !','refusal':null},'logprobs':null,'finish_reason':'stop'}],'usage':"
                         "{'prompt_tokens':8,'completion_tokens':6,'total_tokens':14}}");
}

#define M7 "{'id':'chatcmpl-7','object':'chat.completion.chunk','created':1700000006,'model':'gpt-4o','choices':"
#define TEXT7(s) DELTA(M7, 0, "{'content':'" s "'}", "null")
/* escapes are kept as sent; raw UTF-8 (2, 3 and 4 bytes) is cut between feeds at every byte */
static void test_unicode(void **state)
{
    static const char *const stream[] = {
        DELTA(M7, 0, "{'role':'assistant','content':''}", "null"),
        TEXT7("caf\\u00e9 "),
        TEXT7("\\ud83d\\ude00"),
        TEXT7(" na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"),
        TEXT7(" \\'q\\' \\\\ tab\\t end\\n"),
        TEXT7("\\u2028/\\/"),
        DELTA(M7, 0, "{}", "'stop'"),
        "[DONE]",
        NULL,
    };
    check_stream(stream, "{'id':'chatcmpl-7','object':'chat.completion','created':1700000006,'model':'gpt-4o',"
                         "'choices':[{'index':0,'message':{'role':'assistant','content':'caf\\u00e9 \\ud83d\\ude00 "
                         "na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \\'q\\' \\\\ tab\\t end\\n"
                         "\\u2028/\\/','refusal':null},'logprobs':null,'finish_reason':'stop'}]}");
}

/* ---- the assembler fed events directly ---- */

static struct keel_json js(const char *s)
{
    return (struct keel_json){s, strlen(s)};
}

static int text_ev(struct keel_asm *a, enum keel_ev_kind kind, uint32_t choice, const char *literal)
{
    struct keel_ev ev = {.kind = kind, .choice = choice};
    ev.u.text.s = js(literal);
    return keel_asm_event(a, &ev);
}

static int tool_ev(struct keel_asm *a, uint32_t choice, uint32_t index, const char *args)
{
    struct keel_ev ev = {.kind = KEEL_EV_TOOL_CALL, .choice = choice};
    ev.u.tool.index = index;
    ev.u.tool.args = js(args);
    return keel_asm_event(a, &ev);
}

/* what a's chat.completion is, ' for " in want; and that it is JSON */
static void written_is(const struct keel_asm *a, const char *want_q)
{
    char want[4096];
    struct keel_buf out;
    keel_buf_init(&out, BIG);
    dq(want_q, want, sizeof(want));
    assert_int_equal(keel_asm_openai_chat(a, &out), 0);
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.base, want, out.len);
    assert_json(out.base, out.len);
    keel_buf_release(&out);
}

/* A surrogate pair's halves in two literals: the decoder never hands them on one at a time
 * (test_event.c: such a chunk is malformed), but the join is right for any decoder that does. */
static void test_split_surrogate_joins(void **state)
{
    struct keel_asm a;
    struct keel_buf out;
    json_error_t err;
    keel_asm_init(&a, BIG, "openai");
    keel_buf_init(&out, BIG);
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"a\\ud83d\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"\\ude00b\""), 0);
    assert_int_equal(keel_asm_openai_chat(&a, &out), 0);
    json_t *v = json_loadb(out.base, out.len, 0, &err);
    assert_non_null(v);
    json_t *msg = json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "a\xf0\x9f\x98\x80" "b");
    json_decref(v);
    keel_buf_release(&out);
    keel_asm_release(&a);
}

static void test_gaps_defaults_and_meta(void **state)
{
    struct keel_asm a;
    keel_asm_init(&a, BIG, "openai");
    written_is(&a, "{'object':'chat.completion','choices':[]}");
    assert_false(keel_asm_has_content(&a));
    struct keel_ev meta = {.kind = KEEL_EV_META};
    meta.u.meta.model = js("\"m1\"");
    meta.u.meta.system_fingerprint = js("null");
    assert_int_equal(keel_asm_event(&a, &meta), 0);
    meta.u.meta.model = js("\"m2\""); /* the first one stays */
    meta.u.meta.id = js("\"id-2\"");
    meta.u.meta.system_fingerprint = js("\"fp\"");
    assert_int_equal(keel_asm_event(&a, &meta), 0);
    /* choice 2 only: 0 and 1 are written empty; tool call 1 only: written alone, with no id */
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 2, "\"\""), 0);
    assert_false(keel_asm_has_content(&a));
    assert_int_equal(tool_ev(&a, 2, 1, "\"{}\""), 0);
    assert_true(keel_asm_has_content(&a));
    struct keel_ev e = {.kind = KEEL_EV_ERROR};
    e.u.error.code = "x";
    e.u.error.raw = js("{}");
    assert_int_equal(keel_asm_event(&a, &e), 0); /* ignored */
#define EMPTY_CHOICE(i) "{'index':" #i ",'message':{'role':'assistant','content':null,'refusal':null},"     \
                        "'logprobs':null,'finish_reason':null}"
    written_is(&a, "{'id':'id-2','object':'chat.completion','model':'m1','choices':[" EMPTY_CHOICE(0) ","
                   EMPTY_CHOICE(1) ",{'index':2,'message':{'role':'assistant','content':'','refusal':null,"
                   "'tool_calls':[{'type':'function','function':{'name':'','arguments':'{}'}}]},'logprobs':null,"
                   "'finish_reason':null}],'system_fingerprint':'fp'}");
    /* released: empty again, and usable */
    keel_asm_release(&a);
    assert_int_equal(a.held, 0);
    written_is(&a, "{'object':'chat.completion','choices':[]}");
    keel_asm_release(&a);
}

static void test_has_content(void **state)
{
    static const enum keel_ev_kind kinds[] = {KEEL_EV_TEXT, KEEL_EV_REASONING, KEEL_EV_REFUSAL};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct keel_asm a;
        keel_asm_init(&a, BIG, "openai");
        assert_int_equal(text_ev(&a, kinds[i], 0, "\"\""), 0);
        struct keel_ev role = {.kind = KEEL_EV_ROLE, .u.role = js("\"assistant\"")};
        assert_int_equal(keel_asm_event(&a, &role), 0);
        assert_false(keel_asm_has_content(&a));
        assert_int_equal(text_ev(&a, kinds[i], 0, "\"x\""), 0);
        assert_true(keel_asm_has_content(&a));
        keel_asm_release(&a);
    }
}

/* whole once every choice has its finish reason, and not before */
static void test_finished(void **state)
{
    struct keel_asm a;
    keel_asm_init(&a, BIG, "openai");
    assert_false(keel_asm_finished(&a)); /* no choice at all */
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 0, "\"a\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 1, "\"b\""), 0);
    assert_false(keel_asm_finished(&a));
    struct keel_ev fin = {.kind = KEEL_EV_FINISH, .choice = 1, .u.finish = js("\"stop\"")};
    assert_int_equal(keel_asm_event(&a, &fin), 0);
    assert_false(keel_asm_finished(&a)); /* choice 0 is still under way */
    fin.choice = 0;
    assert_int_equal(keel_asm_event(&a, &fin), 0);
    assert_true(keel_asm_finished(&a));
    keel_asm_release(&a);
}

/* Under every cap from 0 to what the stream takes unbounded, the answer is either exactly the
 * one written unbounded or refused with -ENOBUFS, held never passes the cap, and a cap that
 * suffices once suffices from there on (buffers grow into exactly what is left when short). */
static void test_cap(void **state)
{
    static char sse[8192], want[4096];
    size_t len = sse_of(text_stream, sse, sizeof(sse));
    size_t wlen = dq(text_answer, want, sizeof(want));
    struct keel_buf out;
    struct run r;
    assert_int_equal(assemble(&r, sse, len, NULL, 0, BIG), 0);
    size_t need = r.a.held, fits_from = 0;
    keel_asm_release(&r.a);
    keel_buf_init(&out, BIG);
    for (size_t max = 0; max <= need; max++) {
        int rv = assemble(&r, sse, len, NULL, 0, max);
        assert_true(r.a.held <= max);
        if (rv == 0) {
            fits_from = fits_from ? fits_from : max;
            keel_buf_reset(&out);
            assert_int_equal(keel_asm_openai_chat(&r.a, &out), 0);
            assert_int_equal(out.len, wlen);
            assert_memory_equal(out.base, want, wlen);
        } else {
            assert_int_equal(rv, -ENOBUFS);
            assert_int_equal(fits_from, 0);
        }
        keel_asm_release(&r.a);
    }
    assert_true(fits_from > 0 && fits_from <= need); /* small caps refused, the unbounded need fits */
    keel_buf_release(&out);

    /* the output's own cap: refused, and out left as it was */
    assert_int_equal(assemble(&r, sse, len, NULL, 0, BIG), 0);
    keel_buf_init(&out, 100);
    assert_int_equal(keel_buf_append(&out, "x", 1), 0);
    assert_int_equal(keel_asm_openai_chat(&r.a, &out), -ENOBUFS);
    assert_int_equal(out.len, 1);
    keel_buf_release(&out);
    keel_asm_release(&r.a);
}

static void test_index_limit(void **state)
{
    struct keel_asm a;
    keel_asm_init(&a, BIG, "openai");
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 127, "\"x\""), 0);
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, 128, "\"x\""), -ENOBUFS);
    assert_int_equal(text_ev(&a, KEEL_EV_TEXT, UINT32_MAX, "\"x\""), -ENOBUFS);
    assert_int_equal(a.nchoices, 128);
    assert_int_equal(tool_ev(&a, 0, 127, "\"\""), 0);
    assert_int_equal(tool_ev(&a, 0, 128, "\"\""), -ENOBUFS);
    keel_asm_release(&a);
}

/* ---- a whole answer, decoded and written back ---- */

static void round_trip(const char *answer_q)
{
    char answer[4096];
    size_t len = dq(answer_q, answer, sizeof(answer));
    struct keel_asm a;
    struct keel_decoder d;
    struct keel_usage u = {0};
    char code[64];
    keel_asm_init(&a, BIG, "openai");
    keel_decoder_init(&d, &keel_openai_decoder, keel_asm_event, &a);
    assert_int_equal(d.ops->body(&d, answer, len, code, sizeof(code), &u), KEEL_ANSWER_OK);
    assert_int_equal(d.rv, 0);
    written_is(&a, answer_q);
    keel_asm_release(&a);
}

static void test_body_round_trip(void **state)
{
    round_trip("{'id':'chatcmpl-9','object':'chat.completion','created':1700000009,'model':'gpt-4o','choices':["
               "{'index':0,'message':{'role':'assistant','content':'Hi \\'there\\'','refusal':null,'tool_calls':["
               "{'id':'call_1','type':'function','function':{'name':'f','arguments':'{\\'x\\':1}'}},"
               "{'id':'call_2','type':'function','function':{'name':'g','arguments':''}}]},'logprobs':null,"
               "'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':1,'completion_tokens':2,'total_tokens':3},"
               "'service_tier':'default','system_fingerprint':'fp_9'}");
    round_trip("{'id':'chatcmpl-10','object':'chat.completion','created':1,'model':'m','choices':["
               "{'index':0,'message':{'role':'assistant','content':'4','reasoning_content':'2+2','refusal':null},"
               "'logprobs':{'content':[{'token':'4','logprob':0,'bytes':[52],'top_logprobs':[]}],'refusal':null},"
               "'finish_reason':'stop'},"
               "{'index':1,'message':{'role':'assistant','content':null,'refusal':'No.'},'logprobs':null,"
               "'finish_reason':'stop'}],'usage':{'prompt_tokens':3,'completion_tokens':2,'total_tokens':5}}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_tool_calls_repeated),
        cmocka_unit_test(test_reasoning),
        cmocka_unit_test(test_refusal),
        cmocka_unit_test(test_logprobs),
        cmocka_unit_test(test_two_choices),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_split_surrogate_joins),
        cmocka_unit_test(test_gaps_defaults_and_meta),
        cmocka_unit_test(test_has_content),
        cmocka_unit_test(test_finished),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_index_limit),
        cmocka_unit_test(test_body_round_trip),
    };
    return cmocka_run_group_tests_name("assemble", tests, NULL, NULL);
}
