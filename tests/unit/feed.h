/* feed.h - whole streams for the decoder and encoder tests (test_anthropic.c, test_openai_stream.c,
 * test_anthropic_enc.c, test_responses_enc.c): an SSE text through the SSE parser, a decoder
 * (core/event.h) and either the assembler (its answer written by the OpenAI, the Anthropic or the
 * Responses encoder) or a stream encoder (OpenAI's, Anthropic's or the Responses one,
 * core/assemble.h), fed whole, cut in two at every byte and one byte per feed. Every run must judge the same frames the same way, with and without a callback, and
 * write exactly what the test wrote by hand; what it writes must be JSON to jansson. Texts are
 * written with ' for " to stay readable; \' is an escaped quote. Included by one file each. */
#ifndef KEEL_TEST_FEED_H
#define KEEL_TEST_FEED_H

#include <string.h>

#include "core/assemble.h"
#include "core/sse_parse.h"
#include "texts.h"

#define FEED_BIG (1 << 20)

/* an SSE event of a named type (Anthropic names every event) */
#define EVENT(name, data) "event: " name "\ndata: " data "\n\n"

/* every frame of an encoder's SSE output: "data: X\n\n", X JSON or [DONE] (the last) */
static void assert_chunks(const char *text, size_t len)
{
    if (len == 0)
        return; /* text may be NULL */
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *stop = memmem(p, (size_t)(end - p), "\n\n", 2);
        assert_non_null(stop);
        assert_true(stop - p > 6 && memcmp(p, "data: ", 6) == 0);
        if (stop - p == 12 && memcmp(p + 6, "[DONE]", 6) == 0)
            assert_true(stop + 2 == end);
        else
            assert_json(p + 6, (size_t)(stop - p - 6));
        p = stop + 2;
    }
}

/* Every frame of the Anthropic encoder's SSE output: "event: NAME\ndata: X\n\n", X a JSON object
 * whose "type" is NAME, in the order the protocol allows: message_start first, content blocks
 * numbered from 0 as they start, one open at a time, deltas and the stop for the open one,
 * message_delta with none open, message_stop last. */
static void assert_events(const char *text, size_t len)
{
    if (len == 0)
        return; /* text may be NULL */
    const char *p = text, *end = text + len;
    long long open = -1, next = 0;
    int stopped = 0;
    for (int first = 1; p < end; first = 0) {
        const char *stop = memmem(p, (size_t)(end - p), "\n\n", 2);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        json_error_t err;
        assert_non_null(stop);
        assert_false(stopped);
        assert_true(nl != NULL && nl < stop && nl - p > 7 && memcmp(p, "event: ", 7) == 0);
        assert_true(stop - nl > 7 && memcmp(nl + 1, "data: ", 6) == 0);
        assert_json(nl + 7, (size_t)(stop - nl - 7));
        json_t *v = json_loadb(nl + 7, (size_t)(stop - nl - 7), 0, &err);
        const char *type = json_string_value(json_object_get(v, "type"));
        json_t *index = json_object_get(v, "index");
        size_t tlen = (size_t)(nl - p - 7);
        if (type == NULL || strlen(type) != tlen || memcmp(type, p + 7, tlen) != 0)
            fail_msg("event %.*s with data %.*s", (int)tlen, p + 7, (int)(stop - nl - 7), nl + 7);
        assert_int_equal(first, strcmp(type, "message_start") == 0);
        if (strcmp(type, "content_block_start") == 0) {
            assert_int_equal(open, -1);
            assert_int_equal(json_integer_value(index), next);
            open = next++;
        } else if (strcmp(type, "content_block_delta") == 0 || strcmp(type, "content_block_stop") == 0) {
            assert_true(open >= 0);
            assert_int_equal(json_integer_value(index), open);
            if (strcmp(type, "content_block_stop") == 0)
                open = -1;
        } else if (strcmp(type, "message_delta") == 0) {
            assert_int_equal(open, -1);
        } else if (strcmp(type, "message_stop") == 0) {
            stopped = 1;
        } else {
            assert_string_equal(type, "message_start");
        }
        json_decref(v);
        p = stop + 2;
    }
}

/* Every frame of the Responses encoder's SSE output: "event: TYPE\ndata: X\n\n", X a JSON object
 * whose "type" is TYPE and whose "sequence_number" is the frame's place from 0, in the order the
 * protocol allows: response.created, response.in_progress, then output items numbered from 0 as
 * they are added, one open at a time, every frame about one naming the open one (its output_index
 * and its id), its output_item.done closing it with the id it was added with; last (when the
 * stream ended) response.completed or response.incomplete with none open, its output those items
 * by id, in order. */
static void assert_responses(const char *text, size_t len)
{
    static char ids[KEEL_STREAM_MAX_INDEX * 4][128];
    if (len == 0)
        return; /* text may be NULL */
    const char *p = text, *end = text + len;
    long long open = -1, next = 0, seq = 0;
    int ended = 0;
    for (; p < end; seq++) {
        const char *stop = memmem(p, (size_t)(end - p), "\n\n", 2);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        json_error_t err;
        assert_non_null(stop);
        assert_false(ended);
        assert_true(nl != NULL && nl < stop && nl - p > 7 && memcmp(p, "event: ", 7) == 0);
        assert_true(stop - nl > 7 && memcmp(nl + 1, "data: ", 6) == 0);
        assert_json(nl + 7, (size_t)(stop - nl - 7));
        json_t *v = json_loadb(nl + 7, (size_t)(stop - nl - 7), 0, &err);
        const char *type = json_string_value(json_object_get(v, "type"));
        size_t tlen = (size_t)(nl - p - 7);
        if (type == NULL || strlen(type) != tlen || memcmp(type, p + 7, tlen) != 0)
            fail_msg("event %.*s with data %.*s", (int)tlen, p + 7, (int)(stop - nl - 7), nl + 7);
        json_t *sn = json_object_get(v, "sequence_number");
        assert_true(json_is_integer(sn));
        assert_int_equal(json_integer_value(sn), seq);
        json_t *index = json_object_get(v, "output_index"), *item = json_object_get(v, "item");
        const char *item_id = json_string_value(json_object_get(v, "item_id"));
        assert_int_equal(seq == 0, strcmp(type, "response.created") == 0);
        assert_int_equal(seq == 1, strcmp(type, "response.in_progress") == 0);
        if (strcmp(type, "response.output_item.added") == 0) {
            assert_int_equal(open, -1);
            assert_int_equal(json_integer_value(index), next);
            assert_true(next < (long long)(sizeof(ids) / sizeof(ids[0])));
            const char *id = json_string_value(json_object_get(item, "id"));
            assert_non_null(id);
            assert_true(strlen(id) < sizeof(ids[0]));
            memcpy(ids[next], id, strlen(id) + 1);
            open = next++;
        } else if (strcmp(type, "response.completed") == 0 || strcmp(type, "response.incomplete") == 0) {
            json_t *output = json_object_get(json_object_get(v, "response"), "output");
            assert_int_equal(open, -1);
            assert_int_equal(json_array_size(output), next);
            for (long long i = 0; i < next; i++)
                assert_string_equal(json_string_value(json_object_get(json_array_get(output, (size_t)i), "id")),
                                    ids[i]);
            ended = 1;
        } else if (seq > 1) {
            assert_true(open >= 0);
            assert_int_equal(json_integer_value(index), open);
            if (strcmp(type, "response.output_item.done") == 0) {
                assert_string_equal(json_string_value(json_object_get(item, "id")), ids[open]);
                open = -1;
            } else {
                assert_non_null(item_id);
                assert_string_equal(item_id, ids[open]);
            }
        }
        json_decref(v);
        p = stop + 2;
    }
}

/* out holds exactly want[0..n) */
static void assert_wrote(const struct keel_buf *out, const char *want, size_t n)
{
    if (out->len != n || (n > 0 && memcmp(out->base, want, n) != 0))
        fail_msg("wrote\n%.*s\nwanted\n%.*s", (int)out->len, out->len > 0 ? out->base : "", (int)n, want);
}

/* the assembler, its answer written by the OpenAI, the Anthropic or the Responses encoder; or
 * their streams */
enum feed_sink {
    FEED_ASM,
    FEED_STREAM,
    FEED_ASM_ANTHROPIC,
    FEED_STREAM_ANTHROPIC,
    FEED_ASM_RESPONSES,
    FEED_STREAM_RESPONSES
};

/* the caller's clock the Responses encoder is given (created_at when the stream sends none) */
#define FEED_NOW 1760000000

static const struct keel_encoder_ops *feed_enc(enum feed_sink sink)
{
    if (sink == FEED_ASM_RESPONSES || sink == FEED_STREAM_RESPONSES)
        return &keel_responses_encoder;
    return sink == FEED_ASM_ANTHROPIC || sink == FEED_STREAM_ANTHROPIC ? &keel_anthropic_encoder
                                                                        : &keel_openai_chat_encoder;
}

static int feed_assembles(enum feed_sink sink)
{
    return sink == FEED_ASM || sink == FEED_ASM_ANTHROPIC || sink == FEED_ASM_RESPONSES;
}

struct feed {
    const struct keel_decoder_ops *ops;
    enum feed_sink sink;
    int include_usage;
    struct keel_decoder d, judge; /* with the sink; judging alone */
    struct keel_asm a;
    struct keel_stream_enc s;
    struct keel_buf out; /* the answer written, or the chunks (and the end after a clean one) */
    char kinds[512];     /* a letter per frame: D(one) P(rogress) I(dle) E(rror) M(alformed) */
    size_t nkinds;
    char code[64]; /* the last error frame's code */
    int done, error;
};

static int feed_ev(void *ctx, const struct keel_ev *ev)
{
    struct feed *f = ctx;
    if (feed_assembles(f->sink))
        return keel_asm_event(&f->a, ev);
    return feed_enc(f->sink)->stream_event(&f->s, ev, &f->out);
}

static int feed_frame(void *ctx, const char *event, const char *data, size_t len)
{
    struct feed *f = ctx;
    struct keel_chunk_info info, alone;
    f->d.ops->frame(&f->d, event, data, len, &info);
    f->judge.ops->frame(&f->judge, event, data, len, &alone);
    assert_memory_equal(&info, &alone, sizeof(info));
    assert_true(f->nkinds + 1 < sizeof(f->kinds));
    f->kinds[f->nkinds++] = "DPIEM"[info.kind];
    if (info.kind == KEEL_CHUNK_ERROR) {
        f->error = 1;
        memcpy(f->code, info.error_code, sizeof(f->code));
    }
    f->done |= info.kind == KEEL_CHUNK_DONE;
    return 0;
}

/* sse[0..len) cut at cuts[0..ncuts) (ascending) into f's decoder and sink, then the answer
 * written (FEED_ASM*) or the stream's end (FEED_STREAM*, after a clean end without error). f is
 * left for the caller to read and feed_release. */
static void feed_run(struct feed *f, const char *sse, size_t len, const size_t *cuts, size_t ncuts)
{
    struct keel_sse_parser p;
    keel_asm_init(&f->a, FEED_BIG, f->ops->kind);
    f->a.created_at = FEED_NOW;
    feed_enc(f->sink)->stream_init(&f->s, f->include_usage);
    f->s.created_at = FEED_NOW;
    keel_buf_init(&f->out, FEED_BIG);
    keel_decoder_init(&f->d, f->ops, feed_ev, f);
    keel_decoder_init(&f->judge, f->ops, NULL, NULL);
    memset(f->kinds, 0, sizeof(f->kinds));
    f->nkinds = 0;
    f->code[0] = '\0';
    f->done = f->error = 0;
    keel_sse_parser_init(&p, 1 << 16, feed_frame, NULL, f);
    feed_pieces(&p, sse, len, cuts, ncuts);
    keel_sse_parser_release(&p);
    assert_int_equal(f->d.rv, 0);
    if (feed_assembles(f->sink))
        assert_int_equal(feed_enc(f->sink)->answer(&f->a, &f->out), 0);
    else if (f->done && !f->error)
        assert_int_equal(feed_enc(f->sink)->stream_end(&f->s, &f->out), 0);
}

static void feed_release(struct feed *f)
{
    if (feed_enc(f->sink)->stream_release != NULL)
        feed_enc(f->sink)->stream_release(&f->s);
    assert_int_equal(f->s.held, 0);
    keel_asm_release(&f->a);
    keel_buf_release(&f->out);
}

/* one run cut at cuts: exactly the frames' kinds, the error code and the output wanted */
static void feed_cut(struct feed *f, const char *sse, size_t len, const size_t *cuts, size_t ncuts,
                     const char *kinds, const char *code, const char *want)
{
    feed_run(f, sse, len, cuts, ncuts);
    assert_string_equal(f->kinds, kinds);
    assert_string_equal(f->code, code);
    assert_wrote(&f->out, want, strlen(want));
    feed_release(f);
}

/* Stream sse_q (' for ") decoded by ops into sink: whole, cut in two anywhere and byte by byte,
 * its frames judged `kinds`, the last error's code `code`, and exactly want_q written. */
static void feed_check(const struct keel_decoder_ops *ops, enum feed_sink sink, int include_usage,
                       const char *sse_q, const char *kinds, const char *code, const char *want_q)
{
    static char sse[16384], want[16384];
    static size_t cuts[16384];
    static struct feed f;
    size_t len = dq(sse_q, sse, sizeof(sse));
    size_t wlen = dq(want_q, want, sizeof(want));
    if (feed_assembles(sink))
        assert_json(want, wlen);
    else if (sink == FEED_STREAM)
        assert_chunks(want, wlen);
    else if (sink == FEED_STREAM_RESPONSES)
        assert_responses(want, wlen);
    else
        assert_events(want, wlen);
    f.ops = ops;
    f.sink = sink;
    f.include_usage = include_usage;
    feed_cut(&f, sse, len, NULL, 0, kinds, code, want);
    for (size_t cut = 0; cut <= len; cut++)
        feed_cut(&f, sse, len, &cut, 1, kinds, code, want);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    feed_cut(&f, sse, len, cuts, len, kinds, code, want);
}

#endif
