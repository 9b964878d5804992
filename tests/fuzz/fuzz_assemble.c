/* fuzz_assemble.c - libFuzzer driver for a streamed answer assembled into one: SSE bytes through
 * the SSE parser, the OpenAI decoder and the assembler, then written as a chat.completion; the
 * same bytes also decoded as one non-stream answer and written. Whenever writing succeeds the
 * output is JSON to jansson, and fed whole or split where the input picks, the same answer. */
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
    fprintf(stderr, "fuzz_assemble.c:%d: invariant broken: %s\n", line, what);
    abort();
}

struct run {
    struct keel_decoder d;
    struct keel_asm a;
};

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct run *r = ctx;
    struct keel_chunk_info info;
    r->d.ops->frame(&r->d, event, data, len, &info);
    return 0;
}

/* JSON to jansson, but for what it cannot hold that keel passes through as sent: integers past
 * its range and a NUL escaped in a key (fuzz_json.c) */
static int is_json(const struct keel_buf *out)
{
    json_error_t err;
    json_t *v = json_loadb(out->base, out->len, JSON_ALLOW_NUL, &err);
    if (v == NULL)
        return strstr(err.text, "too big") != NULL || strstr(err.text, "overflow") != NULL ||
               strstr(err.text, "NUL byte in object key") != NULL;
    json_decref(v);
    return 1;
}

/* writes what r assembled into out when nothing failed so far; returns the first failure */
static int finish(struct run *r, int rv, struct keel_buf *out)
{
    if (r->a.held > r->a.max)
        broken(__LINE__, "held past the cap");
    keel_asm_has_content(&r->a);
    if (rv == 0)
        rv = r->d.rv;
    if (rv == 0)
        rv = keel_asm_openai_chat(&r->a, out);
    if (rv == 0 && !is_json(out))
        broken(__LINE__, "the answer written is not JSON");
    keel_asm_release(&r->a);
    return rv;
}

/* the input as an SSE stream fed in two pieces, cut at `cut` */
static int stream(const uint8_t *d, size_t n, size_t cut, struct keel_buf *out)
{
    struct keel_sse_parser p;
    struct run r;
    keel_asm_init(&r.a, MAX_HELD, "openai");
    keel_decoder_init(&r.d, &keel_openai_decoder, keel_asm_event, &r.a);
    keel_sse_parser_init(&p, 4096, on_event, NULL, &r);
    int rv = keel_sse_parser_feed(&p, (const char *)d, cut);
    if (rv == 0)
        rv = keel_sse_parser_feed(&p, (const char *)d + cut, n - cut);
    keel_sse_parser_release(&p);
    return finish(&r, rv, out);
}

/* the input as one non-stream answer */
static void answer(const uint8_t *d, size_t n, struct keel_buf *out)
{
    struct run r;
    char code[64];
    keel_asm_init(&r.a, MAX_HELD, "openai");
    keel_decoder_init(&r.d, &keel_openai_decoder, keel_asm_event, &r.a);
    r.d.ops->body(&r.d, (const char *)d, n, code, sizeof(code), NULL);
    finish(&r, 0, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_buf a, b;
    if (size == 0)
        return 0;
    keel_buf_init(&a, 4 * MAX_HELD);
    keel_buf_init(&b, 4 * MAX_HELD);
    int ra = stream(data, size, size, &a);
    int rb = stream(data, size, data[0] % size, &b);
    /* an over-long line may be caught at a different event, so compare only clean runs */
    if (ra == 0 && rb == 0 && (a.len != b.len || (a.len > 0 && memcmp(a.base, b.base, a.len) != 0)))
        broken(__LINE__, "fed whole and split, different answers");
    keel_buf_reset(&a);
    answer(data, size, &a);
    keel_buf_release(&a);
    keel_buf_release(&b);
    return 0;
}
