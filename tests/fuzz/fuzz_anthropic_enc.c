/* fuzz_anthropic_enc.c - libFuzzer driver for an OpenAI answer re-encoded for an Anthropic client:
 * chat.completion.chunk SSE bytes through the SSE parser and the OpenAI decoder, whose events go
 * both to the assembler (then written as an Anthropic Message) and to the Anthropic stream
 * encoder (named events, and the end after a clean stream). Never a crash; a decoder that only
 * judges gives every frame the same verdict; an event refused writes nothing and moves nothing;
 * every frame written is whole `event: NAME\ndata: JSON\n\n`, its JSON's "type" NAME, in the
 * order the protocol allows; the Message written is JSON and says what the stream said (stop
 * reason, usage, thinking, text, tool calls); fed whole or split where the input picks, the same
 * Message and the same stream. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assemble.h"
#include "core/sse_parse.h"

/* small enough that inputs of libFuzzer's -max_len=4096 reach them: a choice index in the dozens
 * takes that many choice slots, a stream switching blocks writes some 6 bytes per byte read */
#define MAX_HELD (16u << 10)
#define MAX_OUT MAX_HELD

/* an invariant broken is a finding: say which, then abort so libFuzzer keeps the input */
static void broken(int line, const char *what)
{
    fprintf(stderr, "fuzz_anthropic_enc.c:%d: invariant broken: %s\n", line, what);
    abort();
}

static int known_code(int rv)
{
    return rv == 0 || rv == -ENOBUFS || rv == -ENOMEM || rv == -EPROTO;
}

struct run {
    struct keel_decoder d, judge; /* into both sinks; judging alone */
    struct keel_asm a;
    struct keel_stream_enc s;
    struct keel_buf chunks;
    int done, error;
};

/* each event to both: the first refusal stops the decoding. A refused event writes nothing and
 * leaves the stream's state as it was (core/assemble.h: all or nothing). */
static int both(void *ctx, const struct keel_ev *ev)
{
    struct run *r = ctx;
    int rv = keel_asm_event(&r->a, ev);
    if (r->a.held > r->a.max)
        broken(__LINE__, "held past the cap");
    if (rv != 0)
        return rv;
    struct keel_stream_anthropic st = r->s.anthropic;
    struct keel_usage u = r->s.usage;
    size_t was = r->chunks.len;
    rv = keel_anthropic_encoder.stream_event(&r->s, ev, &r->chunks);
    if (!known_code(rv))
        broken(__LINE__, "stream_event's failure is no code the header lists");
    if (rv != 0 && (r->chunks.len != was || memcmp(&st, &r->s.anthropic, sizeof(st)) != 0 ||
                    u.present != r->s.usage.present || u.prompt_tokens != r->s.usage.prompt_tokens ||
                    u.completion_tokens != r->s.usage.completion_tokens))
        broken(__LINE__, "a refused event wrote or moved the stream");
    return rv;
}

static int on_frame(void *ctx, const char *event, const char *data, size_t len)
{
    struct run *r = ctx;
    struct keel_chunk_info info, alone;
    /* an exact-size copy: data need not be NUL-terminated, and ASan sees a read past it */
    char *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, len);
    r->d.ops->frame(&r->d, event, copy, len, &info);
    r->judge.ops->frame(&r->judge, event, copy, len, &alone);
    free(copy);
    if (memcmp(&info, &alone, sizeof(info)) != 0)
        broken(__LINE__, "judged differently with and without a callback");
    r->done |= info.kind == KEEL_CHUNK_DONE;
    r->error |= info.kind == KEEL_CHUNK_ERROR;
    return 0; /* the parser goes on: a callback's stop would restart it mid-line on the next feed */
}

/* ---- reading what was written ---- */

/* JSON to jansson (a NUL escaped in a string allowed), an object: NULL when not */
static json_t *object_of(const char *p, size_t n)
{
    json_error_t err;
    json_t *v = json_loadb(p, n, JSON_ALLOW_NUL, &err);
    if (!json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* s's string appended to b (NUL bytes and all) */
static void join(struct keel_buf *b, json_t *s)
{
    if (!json_is_string(s))
        broken(__LINE__, "a text that is no string");
    if (keel_buf_append(b, json_string_value(s), json_string_length(s)) != 0)
        abort();
}

/* a text or thinking delta's string after the others: an empty one is never sent */
static void said_text(struct keel_buf *b, json_t *s)
{
    if (json_string_length(s) == 0)
        broken(__LINE__, "an empty text or thinking delta");
    join(b, s);
}

/* what a stream said: its frames checked, its texts joined */
struct said {
    int ended;              /* message_delta and message_stop came, last */
    json_t *start, *delta;  /* message_start's message and message_delta (when ended); owned */
    struct keel_buf thinking, text;
    size_t tools;           /* tool_use blocks started */
};

/* Every frame of the stream: "event: NAME\ndata: X\n\n", X a JSON object whose "type" is NAME,
 * in the order the protocol allows: message_start first and once, content blocks numbered from
 * 0 as they start, one open at a time, each delta of its block's kind and only for the open
 * block, its stop; after the end message_delta (no block open) and message_stop, last. Returns
 * what the stream said. */
static void check_events(const struct keel_buf *b, int ended, struct said *said)
{
    enum { NONE, TEXT, THINKING, TOOL } open = NONE;
    long long index = -1, next = 0;
    int stopped = 0, deltas = 0;
    memset(said, 0, sizeof(*said));
    keel_buf_init(&said->thinking, MAX_OUT);
    keel_buf_init(&said->text, MAX_OUT);
    if (b->len == 0) {
        if (ended)
            broken(__LINE__, "an ended stream wrote nothing");
        return; /* base may be NULL */
    }
    const char *p = b->base, *end = b->base + b->len;
    for (int first = 1; p < end; first = 0) {
        const char *stop = memmem(p, (size_t)(end - p), "\n\n", 2);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (stop == NULL || nl == NULL || nl >= stop || nl - p <= 7 || memcmp(p, "event: ", 7) != 0 ||
            stop - nl <= 7 || memcmp(nl + 1, "data: ", 6) != 0)
            broken(__LINE__, "a stream frame that is not whole");
        if (memchr(p, '\r', (size_t)(stop - p)) != NULL)
            broken(__LINE__, "a CR in a frame: the client's SSE parser splits there");
        if (stopped)
            broken(__LINE__, "a frame after message_stop");
        json_t *v = object_of(nl + 7, (size_t)(stop - nl - 7));
        if (v == NULL)
            broken(__LINE__, "a frame's data is no JSON object");
        const char *type = json_string_value(json_object_get(v, "type"));
        size_t tlen = (size_t)(nl - p - 7);
        if (type == NULL || strlen(type) != tlen || memcmp(type, p + 7, tlen) != 0)
            broken(__LINE__, "a frame's \"type\" is not its event's name");
        json_t *idx = json_object_get(v, "index");
        if (first != (strcmp(type, "message_start") == 0))
            broken(__LINE__, "message_start not first, or not once");
        if (strcmp(type, "message_start") == 0) {
            said->start = json_incref(json_object_get(v, "message"));
            if (!json_is_object(said->start))
                broken(__LINE__, "message_start without its message");
        } else if (strcmp(type, "content_block_start") == 0) {
            json_t *block = json_object_get(v, "content_block");
            const char *kind = json_string_value(json_object_get(block, "type"));
            if (open != NONE || !json_is_integer(idx) || json_integer_value(idx) != next || kind == NULL)
                broken(__LINE__, "a block started out of order");
            index = next++;
            if (strcmp(kind, "text") == 0 && json_string_length(json_object_get(block, "text")) == 0)
                open = TEXT;
            else if (strcmp(kind, "thinking") == 0 && json_string_length(json_object_get(block, "thinking")) == 0)
                open = THINKING;
            else if (strcmp(kind, "tool_use") == 0 && json_is_string(json_object_get(block, "id")) &&
                     json_is_string(json_object_get(block, "name")) &&
                     json_object_size(json_object_get(block, "input")) == 0)
                open = TOOL;
            else
                broken(__LINE__, "a block that is none the encoder starts");
            said->tools += open == TOOL;
            deltas = 0;
        } else if (strcmp(type, "content_block_delta") == 0) {
            json_t *delta = json_object_get(v, "delta");
            const char *kind = json_string_value(json_object_get(delta, "type"));
            if (open == NONE || !json_is_integer(idx) || json_integer_value(idx) != index || kind == NULL)
                broken(__LINE__, "a delta for a block that is not open");
            if (open == TEXT && strcmp(kind, "text_delta") == 0) {
                said_text(&said->text, json_object_get(delta, "text"));
            } else if (open == THINKING && strcmp(kind, "thinking_delta") == 0) {
                said_text(&said->thinking, json_object_get(delta, "thinking"));
            } else if (!(open == TOOL && strcmp(kind, "input_json_delta") == 0 &&
                         json_is_string(json_object_get(delta, "partial_json")))) {
                broken(__LINE__, "a delta of another kind than its block");
            }
            deltas++;
        } else if (strcmp(type, "content_block_stop") == 0) {
            if (open == NONE || !json_is_integer(idx) || json_integer_value(idx) != index)
                broken(__LINE__, "a stop for a block that is not open");
            if (open != TOOL && deltas == 0)
                broken(__LINE__, "a text or thinking block stopped empty");
            open = NONE;
        } else if (strcmp(type, "message_delta") == 0) {
            if (!ended || open != NONE || said->delta != NULL)
                broken(__LINE__, "message_delta before the end, twice, or with a block open");
            said->delta = json_incref(v);
        } else if (strcmp(type, "message_stop") == 0) {
            if (said->delta == NULL)
                broken(__LINE__, "message_stop without message_delta");
            stopped = 1;
        } else {
            broken(__LINE__, "a frame of a type the encoder does not write");
        }
        json_decref(v);
        p = stop + 2;
    }
    if (ended != stopped)
        broken(__LINE__, "the stream's end is not message_delta then message_stop, last");
    said->ended = ended;
}

static void said_release(struct said *said)
{
    json_decref(said->start);
    json_decref(said->delta);
    keel_buf_release(&said->thinking);
    keel_buf_release(&said->text);
}

/* The Message and the stream of one run, both whole: the same stop reason and usage, the same
 * thinking, the same text (a refusal is a text block of its own in the Message, so with both only
 * the lengths), as many tool calls, and the stream's id and model, when it had them, the
 * Message's. */
static void compare(const char *msg, size_t len, const struct said *said)
{
    json_t *m = object_of(msg, len);
    json_t *content = json_object_get(m, "content"), *block, *u = json_object_get(m, "usage");
    json_t *du = json_object_get(said->delta, "usage");
    struct keel_buf thinking, text;
    size_t i, texts = 0, tools = 0;
    keel_buf_init(&thinking, MAX_OUT);
    keel_buf_init(&text, MAX_OUT);
    json_array_foreach(content, i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (type == NULL)
            broken(__LINE__, "a Message's block without its type");
        if (strcmp(type, "thinking") == 0) {
            join(&thinking, json_object_get(block, "thinking"));
        } else if (strcmp(type, "text") == 0) {
            join(&text, json_object_get(block, "text"));
            texts++;
        } else {
            tools++;
        }
    }
    json_t *stop = json_object_get(json_object_get(said->delta, "delta"), "stop_reason");
    if (!json_equal(json_object_get(m, "stop_reason"), stop))
        broken(__LINE__, "the Message's stop_reason is not the stream's");
    if (!json_equal(json_object_get(u, "input_tokens"), json_object_get(du, "input_tokens")) ||
        !json_equal(json_object_get(u, "output_tokens"), json_object_get(du, "output_tokens")))
        broken(__LINE__, "the Message's usage is not the stream's");
    if (thinking.len != said->thinking.len ||
        (thinking.len > 0 && memcmp(thinking.base, said->thinking.base, thinking.len) != 0))
        broken(__LINE__, "the Message's thinking is not the stream's");
    if (text.len != said->text.len ||
        (texts < 2 && text.len > 0 && memcmp(text.base, said->text.base, text.len) != 0))
        broken(__LINE__, "the Message's text is not the stream's");
    if (tools != said->tools)
        broken(__LINE__, "the Message's tool calls are not the stream's");
    const char *keys[] = {"id", "model"};
    for (i = 0; i < 2; i++) {
        json_t *sv = json_object_get(said->start, keys[i]);
        if (json_string_length(sv) > 0 && !json_equal(sv, json_object_get(m, keys[i])))
            broken(__LINE__, "the stream's id or model is not the Message's");
    }
    keel_buf_release(&thinking);
    keel_buf_release(&text);
    json_decref(m);
}

/* ---- runs ---- */

struct result {
    int rv;        /* the parser's or the decoder's first failure */
    int answer_rv; /* the Message's writing (when rv is 0) */
    int end_rv;    /* stream_end's (when called) */
    struct keel_buf answer, chunks;
};

/* the input as an SSE stream fed in two pieces, cut at `cut`, into res (its buffers the caller's) */
static void stream(const uint8_t *d, size_t n, size_t cut, struct result *res)
{
    struct keel_sse_parser p;
    struct run r;
    struct said said;
    keel_asm_init(&r.a, MAX_HELD, keel_openai_decoder.kind);
    keel_anthropic_encoder.stream_init(&r.s, 1);
    keel_buf_init(&r.chunks, MAX_OUT);
    keel_decoder_init(&r.d, &keel_openai_decoder, both, &r);
    keel_decoder_init(&r.judge, &keel_openai_decoder, NULL, NULL);
    r.done = r.error = 0;
    keel_sse_parser_init(&p, 4096, on_frame, NULL, &r);
    int rv = keel_sse_parser_feed(&p, (const char *)d, cut);
    if (rv == 0)
        rv = keel_sse_parser_feed(&p, (const char *)d + cut, n - cut);
    int pending = keel_sse_parser_pending(&p);
    keel_sse_parser_release(&p);
    if (r.a.held > r.a.max)
        broken(__LINE__, "held past the cap");
    if (rv == 0)
        rv = r.d.rv;
    if (!known_code(rv) && rv != KEEL_SSE_ETOOLONG)
        broken(__LINE__, "a failure that is no code the headers list");

    keel_buf_init(&res->answer, MAX_OUT);
    res->answer_rv = res->end_rv = -1;
    if (rv == 0) {
        res->answer_rv = keel_anthropic_encoder.answer(&r.a, &res->answer);
        if (!known_code(res->answer_rv))
            broken(__LINE__, "answer's failure is no code the header lists");
        if (res->answer_rv != 0 && res->answer.len != 0)
            broken(__LINE__, "a failed answer left bytes");
        json_t *m = res->answer_rv == 0 ? object_of(res->answer.base, res->answer.len) : NULL;
        if (res->answer_rv == 0 && m == NULL)
            broken(__LINE__, "the Message written is no JSON object");
        json_decref(m);
    }
    /* request.c's end of a re-encoded stream: a clean one, [DONE] seen, no error frame */
    if (rv == 0 && r.done && !r.error && !pending) {
        size_t was = r.chunks.len;
        res->end_rv = keel_anthropic_encoder.stream_end(&r.s, &r.chunks);
        if (!known_code(res->end_rv) || res->end_rv == -EPROTO)
            broken(__LINE__, "stream_end's failure is no code the header lists");
        if (res->end_rv != 0 && r.chunks.len != was)
            broken(__LINE__, "a failed stream_end wrote");
    }
    check_events(&r.chunks, res->end_rv == 0, &said);
    if (res->answer_rv == 0 && said.ended)
        compare(res->answer.base, res->answer.len, &said);
    said_release(&said);
    keel_asm_release(&r.a);
    res->rv = rv;
    res->chunks = r.chunks;
}

static int same(const struct keel_buf *x, const struct keel_buf *y)
{
    return x->len == y->len && (x->len == 0 || memcmp(x->base, y->base, x->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct result a, b;
    if (size == 0)
        return 0;
    stream(data, size, size, &a);
    stream(data, size, data[0] % size, &b);
    if (getenv("KEEL_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "rv %d, answer %d: %.*s\nend %d, stream:\n%.*s\n", a.rv, a.answer_rv, (int)a.answer.len,
                a.answer.len ? a.answer.base : "", a.end_rv, (int)a.chunks.len, a.chunks.len ? a.chunks.base : "");
    if (a.rv != b.rv || a.answer_rv != b.answer_rv || a.end_rv != b.end_rv || !same(&a.answer, &b.answer) ||
        !same(&a.chunks, &b.chunks))
        broken(__LINE__, "fed whole and split, different answers or streams");
    keel_buf_release(&a.answer);
    keel_buf_release(&a.chunks);
    keel_buf_release(&b.answer);
    keel_buf_release(&b.chunks);
    return 0;
}
