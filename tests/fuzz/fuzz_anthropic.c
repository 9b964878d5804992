/* fuzz_anthropic.c - libFuzzer driver for an Anthropic answer re-encoded for an OpenAI client: SSE
 * bytes through the SSE parser and the Anthropic decoder, whose events go both to the assembler
 * (then written as a chat.completion) and to the OpenAI stream encoder (chat.completion.chunk
 * frames, and the end after a clean one); the same bytes also decoded as one whole answer. Never a
 * crash; a decoder that only judges gives every frame the same verdict; whatever is written is
 * JSON to jansson, frame by frame for the stream; fed whole or split where the input picks, the
 * same answer and the same stream. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assemble.h"
#include "core/sse_parse.h"

#define MAX_HELD (64u << 10) /* small enough that inputs reach it */

/* an invariant broken is a finding: say which, then abort so libFuzzer keeps the input */
static void broken(int line, const char *what)
{
    fprintf(stderr, "fuzz_anthropic.c:%d: invariant broken: %s\n", line, what);
    abort();
}

struct run {
    struct keel_decoder d, judge; /* into both sinks; judging alone */
    struct keel_asm a;
    struct keel_stream_enc s;
    struct keel_buf chunks;
    int done, error;
};

/* each event to both: the first refusal stops the decoding */
static int both(void *ctx, const struct keel_ev *ev)
{
    struct run *r = ctx;
    int rv = keel_asm_event(&r->a, ev);
    return rv != 0 ? rv : keel_openai_chat_encoder.stream_event(&r->s, ev, &r->chunks);
}

static int on_frame(void *ctx, const char *event, const char *data, size_t len)
{
    struct run *r = ctx;
    struct keel_chunk_info info, alone;
    r->d.ops->frame(&r->d, event, data, len, &info);
    r->judge.ops->frame(&r->judge, event, data, len, &alone);
    if (memcmp(&info, &alone, sizeof(info)) != 0)
        broken(__LINE__, "judged differently with and without a callback");
    r->done |= info.kind == KEEL_CHUNK_DONE;
    r->error |= info.kind == KEEL_CHUNK_ERROR;
    return 0;
}

/* JSON to jansson, but for what it cannot hold that keel passes through as sent: integers past
 * its range and a NUL escaped in a key (fuzz_json.c) */
static int json_ok(const char *p, size_t n)
{
    json_error_t err;
    json_t *v = json_loadb(p, n, JSON_ALLOW_NUL, &err);
    if (v == NULL)
        return strstr(err.text, "too big") != NULL || strstr(err.text, "overflow") != NULL ||
               strstr(err.text, "NUL byte in object key") != NULL;
    json_decref(v);
    return 1;
}

/* whole frames "data: X\n\n", each X JSON, [DONE] only last */
static void check_chunks(const struct keel_buf *b)
{
    if (b->len == 0)
        return; /* base may be NULL */
    const char *p = b->base, *end = b->base + b->len;
    while (p < end) {
        const char *stop = memmem(p, (size_t)(end - p), "\n\n", 2);
        if (stop == NULL || stop - p < 6 || memcmp(p, "data: ", 6) != 0)
            broken(__LINE__, "a stream frame that is not whole");
        if (stop - p == 12 && memcmp(p + 6, "[DONE]", 6) == 0) {
            if (stop + 2 != end)
                broken(__LINE__, "a frame after [DONE]");
        } else if (!json_ok(p + 6, (size_t)(stop - p - 6))) {
            broken(__LINE__, "a chunk written is not JSON");
        }
        p = stop + 2;
    }
}

static void start(struct run *r)
{
    keel_asm_init(&r->a, MAX_HELD, keel_anthropic_decoder.kind);
    keel_openai_chat_encoder.stream_init(&r->s, 1);
    keel_buf_init(&r->chunks, 4 * MAX_HELD);
    keel_decoder_init(&r->d, &keel_anthropic_decoder, both, r);
    keel_decoder_init(&r->judge, &keel_anthropic_decoder, NULL, NULL);
    r->done = r->error = 0;
}

/* What r decoded, when nothing failed so far: the answer into out, the stream's end (after a
 * clean one) into its chunks, both checked. Returns the first failure; r is released. */
static int finish(struct run *r, int rv, struct keel_buf *out)
{
    if (r->a.held > r->a.max)
        broken(__LINE__, "held past the cap");
    if (rv == 0)
        rv = r->d.rv;
    if (rv == 0)
        rv = keel_openai_chat_encoder.answer(&r->a, out);
    if (rv == 0 && !json_ok(out->base, out->len))
        broken(__LINE__, "the answer written is not JSON");
    if (rv == 0 && r->done && !r->error)
        rv = keel_openai_chat_encoder.stream_end(&r->s, &r->chunks);
    if (rv == 0)
        check_chunks(&r->chunks);
    keel_asm_release(&r->a);
    return rv;
}

/* the input as an SSE stream fed in two pieces, cut at `cut`: the answer into out, the stream
 * into chunks (taken over by the caller) */
static int stream(const uint8_t *d, size_t n, size_t cut, struct keel_buf *out, struct keel_buf *chunks)
{
    struct keel_sse_parser p;
    struct run r;
    start(&r);
    keel_sse_parser_init(&p, 4096, on_frame, NULL, &r);
    int rv = keel_sse_parser_feed(&p, (const char *)d, cut);
    if (rv == 0)
        rv = keel_sse_parser_feed(&p, (const char *)d + cut, n - cut);
    keel_sse_parser_release(&p);
    rv = finish(&r, rv, out);
    *chunks = r.chunks;
    return rv;
}

/* the input as one whole answer, into both */
static void answer(const uint8_t *d, size_t n, struct keel_buf *out)
{
    struct run r;
    char code[64];
    struct keel_usage u = {0};
    start(&r);
    r.done = r.d.ops->body(&r.d, (const char *)d, n, code, sizeof(code), &u) == KEEL_ANSWER_OK;
    finish(&r, 0, out);
    keel_buf_release(&r.chunks);
}

static int same(const struct keel_buf *x, const struct keel_buf *y)
{
    return x->len == y->len && (x->len == 0 || memcmp(x->base, y->base, x->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_buf a, b, ca, cb;
    if (size == 0)
        return 0;
    keel_buf_init(&a, 4 * MAX_HELD);
    keel_buf_init(&b, 4 * MAX_HELD);
    int ra = stream(data, size, size, &a, &ca);
    int rb = stream(data, size, data[0] % size, &b, &cb);
    /* an over-long line may be caught at a different event, so compare only clean runs */
    if (ra == 0 && rb == 0 && (!same(&a, &b) || !same(&ca, &cb)))
        broken(__LINE__, "fed whole and split, different answers");
    keel_buf_release(&ca);
    keel_buf_release(&cb);
    keel_buf_reset(&a);
    answer(data, size, &a);
    keel_buf_release(&a);
    keel_buf_release(&b);
    return 0;
}
