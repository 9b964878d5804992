/* fuzz_messages.c - libFuzzer driver for an Anthropic stream gathered back into its one Message
 * (core/anthropic_msg.h), what a non-stream client of an Anthropic target gets: SSE bytes through
 * the SSE parser, each frame judged by the Anthropic decoder (no callback) and handed to two
 * builders, one as request.c feeds it (frames up to the first error or malformed one; the answer
 * only after a clean end with content) and one every frame (the builder's whole contract). Never
 * a crash or leak; held <= max after every frame; a failure is final; finished() never goes
 * back, and agrees with the decoder on the end; whatever is written is JSON to jansson; fed whole
 * or split where the input picks, the same verdicts, failures and Messages. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/anthropic_msg.h"
#include "core/event.h"
#include "core/sse_parse.h"

/* small enough that inputs of libFuzzer's -max_len=4096 reach them: a few dozen empty objects
 * (jansson's cost, anthropic_msg.c) pass the cap, \u0000 in a text writes six bytes for one held */
#define MAX_HELD (16u << 10)
#define MAX_OUT MAX_HELD

/* request.c's own verdicts on the gated builder's stream (never a builder's code) */
#define FAIL_MALFORMED (-9001) /* a frame judged malformed: the attempt fails */
#define FAIL_ERROR (-9002)     /* an error frame */
#define FAIL_EMPTY (-9003)     /* ended without content progress */
#define FAIL_CUT (-9004)       /* ended mid-event or without message_stop */

/* an invariant broken is a finding: say which, then abort so libFuzzer keeps the input */
static void broken(int line, const char *what)
{
    fprintf(stderr, "fuzz_messages.c:%d: invariant broken: %s\n", line, what);
    abort();
}

/* JSON to jansson, but for what it cannot hold that keel passes through as sent: integers past
 * its range and a NUL escaped in a key (fuzz_json.c); an object when jansson could read it */
static int json_ok(const char *p, size_t n)
{
    json_error_t err;
    json_t *v = json_loadb(p, n, JSON_ALLOW_NUL, &err);
    if (v == NULL)
        return strstr(err.text, "too big") != NULL || strstr(err.text, "overflow") != NULL ||
               strstr(err.text, "NUL byte in object key") != NULL;
    int ok = json_is_object(v);
    json_decref(v);
    return ok;
}

struct build {
    struct keel_anthropic_msg m;
    int rv;           /* the first failure (the builder's, or a FAIL_* for the gated one); 0: none */
    size_t failed_at; /* the frame it came at, from 1; 0 when none or after the last frame */
};

struct run {
    struct keel_decoder judge;   /* judging only, as for a non-stream client of an Anthropic target */
    struct build gated, every;   /* request.c's feeding; every frame */
    size_t frames;               /* frames dispatched so far */
    int done, progress;          /* the gated stream's: message_stop judged; content progress */
    uint64_t trace;              /* a hash of every frame's verdict and what the builders made of it */
};

static void mix(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        *h = (*h ^ b[i]) * 1099511628211u;
}

/* one frame into b: its cap, its failure's finality and its finished() checked */
static void give(struct build *b, size_t at, const char *event, const char *data, size_t len)
{
    int was = keel_anthropic_msg_finished(&b->m);
    int rv = keel_anthropic_msg_frame(&b->m, event, data, len);
    if (b->m.held > b->m.max)
        broken(__LINE__, "held past the cap");
    if (rv != 0 && rv != -EPROTO && rv != -ENOBUFS && rv != -ENOMEM)
        broken(__LINE__, "a frame's failure is no code the header lists");
    if (b->rv != 0 && rv != b->rv)
        broken(__LINE__, "a failure is not final");
    if (was && !keel_anthropic_msg_finished(&b->m))
        broken(__LINE__, "finished() went back");
    if (rv != 0 && b->rv == 0) {
        b->rv = rv;
        b->failed_at = at;
    }
}

static int on_frame(void *ctx, const char *event, const char *data, size_t len)
{
    struct run *r = ctx;
    struct keel_chunk_info info;
    /* an exact-size copy: data need not be NUL-terminated, and ASan sees a read past it */
    char *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, len);
    r->frames++;
    r->judge.ops->frame(&r->judge, event, copy, len, &info);
    if (r->gated.rv == 0) {
        /* request.c's on_event in REQ_ASSEMBLE for a native-frames encoder */
        switch (info.kind) {
        case KEEL_CHUNK_DONE:
            r->done = 1;
            break;
        case KEEL_CHUNK_PROGRESS:
            r->progress = 1;
            break;
        case KEEL_CHUNK_MALFORMED:
            r->gated.rv = FAIL_MALFORMED;
            break;
        case KEEL_CHUNK_ERROR:
            r->gated.rv = FAIL_ERROR;
            break;
        case KEEL_CHUNK_IDLE:
            break;
        }
        if (r->gated.rv == 0) {
            give(&r->gated, r->frames, event, copy, len);
            /* judged the end and taken: the Message is whole; and whole only at an end judged */
            if (info.kind == KEEL_CHUNK_DONE && r->gated.rv == 0 && !keel_anthropic_msg_finished(&r->gated.m))
                broken(__LINE__, "the decoder judged the end, the builder took it and is not finished");
            if (info.kind != KEEL_CHUNK_DONE && !r->done && keel_anthropic_msg_finished(&r->gated.m))
                broken(__LINE__, "the builder finished at a frame the decoder did not judge the end");
        } else {
            r->gated.failed_at = r->frames;
        }
    }
    give(&r->every, r->frames, event, copy, len);
    free(copy);
    int fin[2] = {keel_anthropic_msg_finished(&r->gated.m), keel_anthropic_msg_finished(&r->every.m)};
    mix(&r->trace, &info.kind, sizeof(info.kind));
    mix(&r->trace, &info.has_usage, sizeof(info.has_usage));
    mix(&r->trace, &info.usage.prompt_tokens, sizeof(info.usage.prompt_tokens));
    mix(&r->trace, &info.usage.completion_tokens, sizeof(info.usage.completion_tokens));
    mix(&r->trace, info.error_code, strnlen(info.error_code, sizeof(info.error_code)));
    mix(&r->trace, fin, sizeof(fin));
    mix(&r->trace, &r->every.rv, sizeof(r->every.rv));
    return 0; /* the parser goes on: a callback's stop would restart it mid-line on the next feed */
}

/* b's Message written into out (any time: the builder writes what it has): the code, out checked */
static int write_msg(const struct build *b, struct keel_buf *out)
{
    struct keel_buf again;
    int rv = keel_anthropic_msg_write(&b->m, out);
    if (rv != 0 && rv != -EPROTO && rv != -ENOBUFS && rv != -ENOMEM)
        broken(__LINE__, "write's failure is no code the header lists");
    if (rv != 0 && out->len != 0)
        broken(__LINE__, "a failed write left bytes");
    if (rv == -EPROTO && keel_anthropic_msg_finished(&b->m))
        broken(__LINE__, "a finished Message could not be written");
    if (rv == 0 && !json_ok(out->base, out->len))
        broken(__LINE__, "the Message written is no JSON object");
    /* writing reads the builder only: a second write is the same */
    keel_buf_init(&again, MAX_OUT);
    if (keel_anthropic_msg_write(&b->m, &again) != rv ||
        (rv == 0 && (again.len != out->len || memcmp(again.base, out->base, out->len) != 0)))
        broken(__LINE__, "written twice, different");
    keel_buf_release(&again);
    return rv;
}

struct result {
    int feed_rv;           /* the parser's failure, 0 when none */
    int gated_rv, every_rv; /* each builder's first failure (the gated one's FAIL_* too) */
    size_t gated_at, every_at, frames;
    int gated_wrote, every_wrote; /* write's code */
    uint64_t trace;
    struct keel_buf gated_out, every_out;
};

/* the input as an SSE stream fed in two pieces, cut at `cut`, into res (its buffers the caller's) */
static void stream(const uint8_t *d, size_t n, size_t cut, struct result *res)
{
    struct keel_sse_parser p;
    struct run r;
    memset(&r, 0, sizeof(r));
    r.trace = 14695981039346656037u;
    keel_decoder_init(&r.judge, &keel_anthropic_decoder, NULL, NULL);
    keel_anthropic_msg_init(&r.gated.m, MAX_HELD);
    keel_anthropic_msg_init(&r.every.m, MAX_HELD);
    keel_sse_parser_init(&p, 4096, on_frame, NULL, &r);
    int rv = keel_sse_parser_feed(&p, (const char *)d, cut);
    if (rv == 0)
        rv = keel_sse_parser_feed(&p, (const char *)d + cut, n - cut);
    if (rv != 0 && rv != KEEL_SSE_ETOOLONG && rv != -ENOMEM)
        broken(__LINE__, "the parser failed with a callback's value, and the callback returns 0");
    int pending = keel_sse_parser_pending(&p);
    keel_sse_parser_release(&p);

    /* request.c's assembled(): the end, then the answer from the frames */
    if (r.gated.rv == 0) {
        if (rv != 0)
            r.gated.rv = rv;
        else if (!r.progress)
            r.gated.rv = FAIL_EMPTY;
        else if (pending || !r.done)
            r.gated.rv = FAIL_CUT;
    }
    keel_buf_init(&res->gated_out, MAX_OUT);
    keel_buf_init(&res->every_out, MAX_OUT);
    res->gated_wrote = write_msg(&r.gated, &res->gated_out);
    if (r.gated.rv == 0 && res->gated_wrote != 0 && res->gated_wrote != -ENOBUFS)
        broken(__LINE__, "a clean stream's Message could not be written");
    res->every_wrote = write_msg(&r.every, &res->every_out);
    res->feed_rv = rv;
    res->gated_rv = r.gated.rv;
    res->gated_at = r.gated.failed_at;
    res->every_rv = r.every.rv;
    res->every_at = r.every.failed_at;
    res->frames = r.frames;
    res->trace = r.trace;

    keel_anthropic_msg_release(&r.gated.m);
    keel_anthropic_msg_release(&r.every.m);
    if (r.gated.m.held != 0 || r.every.m.held != 0)
        broken(__LINE__, "held after release");
    keel_anthropic_msg_release(&r.every.m); /* idempotent */
}

/* KEEL_FUZZ_VERBOSE=1: each run's failures and Messages on stderr */
static int verbose(void)
{
    static int v = -1;
    if (v < 0)
        v = getenv("KEEL_FUZZ_VERBOSE") != NULL;
    return v;
}

static void show(const char *how, const struct result *r)
{
    fprintf(stderr, "%s: %zu frames, parser %d; gated %d at %zu, wrote %d: %.*s\n", how, r->frames, r->feed_rv,
            r->gated_rv, r->gated_at, r->gated_wrote, (int)r->gated_out.len,
            r->gated_out.base ? r->gated_out.base : "");
    fprintf(stderr, "  every %d at %zu, wrote %d: %.*s\n", r->every_rv, r->every_at, r->every_wrote,
            (int)r->every_out.len, r->every_out.base ? r->every_out.base : "");
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
    if (verbose()) {
        show("whole", &a);
        show("split", &b);
    }
    if (a.feed_rv != b.feed_rv || a.frames != b.frames || a.trace != b.trace)
        broken(__LINE__, "fed whole and split, different frames or verdicts");
    if (a.gated_rv != b.gated_rv || a.gated_at != b.gated_at || a.every_rv != b.every_rv || a.every_at != b.every_at)
        broken(__LINE__, "fed whole and split, a different first failure");
    if (a.gated_wrote != b.gated_wrote || a.every_wrote != b.every_wrote || !same(&a.gated_out, &b.gated_out) ||
        !same(&a.every_out, &b.every_out))
        broken(__LINE__, "fed whole and split, different Messages");
    keel_buf_release(&a.gated_out);
    keel_buf_release(&a.every_out);
    keel_buf_release(&b.gated_out);
    keel_buf_release(&b.every_out);
    return 0;
}
