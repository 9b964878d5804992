/* request_t.h - one client request's record, shared by the files that carry it: request.c (its
 * state machine: what happens next, and when), intake.c (the client's request read and checked,
 * and each attempt's body), relay.c (an answer's frames in, the client's bytes out) and
 * answer.c (headers, error envelopes, the one final answer). Nothing else includes it. */
#ifndef KEEL_REQUEST_T_H
#define KEEL_REQUEST_T_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "core/anthropic_msg.h"
#include "core/assemble.h"
#include "core/backend.h"
#include "managed.h"
#include "core/buf.h"
#include "core/chunk.h"
#include "core/classify.h"
#include "core/continue.h"
#include "core/deadline.h"
#include "core/reqbody.h"
#include "core/event.h"
#include "core/router.h"
#include "core/sse_parse.h"
#include "io/server.h"

#define MAX_ATTEMPTS 32
#define KEEL_BACK_HEADERS 16 /* an upstream's headers passed back to the client, at most */
#define MAX_ANSWER (64u << 20)     /* a non-stream answer or error body, bytes; an assembled one too */
#define MAX_SSE_LINE (4u << 20)    /* one SSE line or event */
#define OUT_HIGH_WATER (64u << 10) /* client bytes pending before the upstream is paused */
#define MAX_OUT (MAX_SSE_LINE + OUT_HIGH_WATER + 4096)

/* The states of a request (STYLE L1). Each attempt walks ATTEMPT -> BUFFER, PRECOMMIT (-> RELAY)
 * or ASSEMBLE; a failed attempt before the commit point goes to ATTEMPT again (the router's next
 * target) or to WAIT first (a backoff or a Retry-After on the same target). */
enum keel_req_state {
    REQ_WAIT,      /* no transfer: waiting until wake_at to try the router's target again */
    REQ_ATTEMPT,   /* a transfer to the current target is under way; its head not yet in */
    REQ_BUFFER,    /* a non-stream answer or an error: its body is collected, capped */
    REQ_PRECOMMIT, /* a 200 event stream for a stream client: its headers held until content */
    REQ_RELAY,     /* committed: events flow to the client, the upstream paused when it lags */
    REQ_ASSEMBLE,  /* a 200 event stream for a non-stream client: assembled into one answer, the
                      client sees nothing until it is whole (so any failure fails over unseen) */
    REQ_END,       /* answered or the client is gone; recorded and freed */
};

/* where an attempt's stream goes (open_reader) */
enum keel_sink {
    SINK_PASS,   /* a stream client of the target's protocol: frames relayed as sent (judged; and
                  * followed by a shadow encoder when the stream may be continued) */
    SINK_ENCODE, /* a stream client of another protocol, or a continuation: events re-encoded */
    SINK_ASM,    /* a non-stream client: events assembled into one answer */
    SINK_FRAMES, /* a non-stream client of the target's protocol: its answer built from frames */
};

struct attempt {
    const struct keel_target_conf *target;
    enum keel_class cls;
    int status;
    uint64_t ms;
    uint64_t ttft_ms; /* attempt start -> its first content progress; 0 = none */
};

struct keel_request {
    struct keel_gateway *gw;
    struct keel_worker *w;  /* the loop it runs on: its timer, its client, its upstream sockets */
    struct keel_http *http; /* NULL once the client has its final bytes or is gone */
    enum keel_req_state state;
    char id[24];
    char *body;                          /* the client's body as sent: malloc'd, freed at the end */
    size_t body_len;
    struct keel_reqbody spans;           /* the members each attempt's body replaces */
    int stream;                          /* the client asked for a stream */
    const struct keel_encoder_ops *enc;  /* the client's protocol: what it gets */
    int include_usage;                   /* a stream client asked for usage (stream_options) */
    struct keel_config *config;          /* held until the request ends (SIGHUP may replace it) */
    const struct keel_model_conf *model; /* in config */
    struct keel_model_state *mstate;     /* the model's counters and windows (gw->state) */
    struct keel_target_state **tstate;   /* [model->ntargets]: each target's breaker and counters */
    uint64_t start_ms;
    uint64_t client_budget_ms;           /* from x-keel-timeout; 0 = none */
    const struct keel_key_conf *key;     /* the client key it presented (in config); NULL: keys are off */
    struct keel_key_state *kstate;       /* that key's limits and counts (gw->state) */
    struct attempt *attempts; /* [nattempts] of [attempts_cap]: attempts_inline, grown on the heap
                               * for a long chain (at most MAX_ATTEMPTS) */
    size_t nattempts, attempts_cap;
    struct attempt attempts_inline[4];
    struct keel_router router;  /* which target next, and when */
    uv_timer_t *timer;          /* every deadline and wait; malloc'd, freed in its close cb */
    struct keel_deadline dl;    /* of the attempt under way (total_at also while waiting) */
    uint64_t wake_at;           /* WAIT: when to try again */
    int probe;                  /* the attempt under way is its breaker's half-open probe */
    int attempt_open;           /* an attempt started and is not yet reported to its breaker */
    int failed;                 /* the last attempt failed: a move to another target is a failover */
    enum keel_class failed_cls; /* its class */
    size_t failed_from;         /* and its target */
    uint64_t ttft_ms;           /* request start -> the answer's first content; 0 = none */
    int answered;               /* the client got a successful answer */
    int status_sent;            /* the HTTP status the client got (0: none, it left first) */
    uint64_t first_progress_at; /* the attempt under way's first content progress; 0 = none */
    struct keel_usage usage;    /* what the answering attempt reported */
    int64_t start_wall_ms;      /* wall clock at arrival, for the audit's ts */
    int gone;                   /* the client went away */
    size_t mem;                 /* bytes charged to gw->mem_held: bodies and buffers (max_memory) */
    uint64_t ended_ms;          /* REQ_END reached: the answer was handed to the server */
    int sending;                /* REQ_END reached with the final bytes still with the server:
                                   recorded and freed once on_delivered says whether they went */

    /* a managed target (seed 002) */
    struct keel_backend_waiter waiter; /* queued while its backend starts */
    struct keel_backend *backend;      /* acquired for the attempt under way, or NULL */
    uint64_t backend_gen;              /* the backend run the attempt went to */
    int healed;                        /* the one retry after a restart is spent */
    int backend_waiting;               /* acquire said "wait": the answer is to come (on_backend) */
    int backend_ok;                    /* that answer, while in its worker's inbox */
    struct keel_request *inbox_next;   /* in w->inbox (under gw->mu) */

    /* the attempt under way; reset by start_attempt */
    const struct keel_target_conf *target;
    struct keel_upstream_xfer *xfer; /* NULL when no transfer is under way */
    uint64_t attempt_start_ms;
    int status;                  /* the upstream's status, 0 before the head */
    uint64_t retry_after_ms;     /* the upstream's Retry-After, 0 = none */
    char content_type[64];
    struct keel_outcome outcome; /* evidence for classify */
    char code[64];               /* the provider's error code, outcome.code points here */
    struct keel_buf answer;      /* BUFFER: the body so far; ASSEMBLE: the assembled answer */
    struct keel_sse_parser sse;  /* PRECOMMIT, RELAY, ASSEMBLE */
    struct keel_decoder dec;     /* the target's protocol, read into events */
    struct keel_asm assembly;    /* ASSEMBLE: the answer so far, from events */
    struct keel_anthropic_msg frames; /* ASSEMBLE, the client's own protocol when the encoder
                                       * builds from frames (native_frames): the answer so far */
    struct keel_stream_enc *senc; /* RELAY from another protocol: its events in the client's;
                                   * allocated (3 KB) only for a stream that needs it */
    int senc_open;               /* senc was set up and not yet released (stream_release) */
    int saw_done;                /* the stream's end frame ([DONE], message_stop) came */
    int saw_finish;              /* a choice's finish reason came (OpenAI chunks) */
    enum keel_sink sink;         /* PRECOMMIT, RELAY, ASSEMBLE: where the stream goes */
    struct keel_buf back; /* the upstream's headers that go back with its answer
                           * (core/headers.h): "name\0value\0" pairs, at most 1536 bytes */
    size_t nback;         /* pairs in back, at most KEEL_BACK_HEADERS */

    /* continuation after the commit point (core/continue.h, README "Continuation") */
    int armed;                /* a later target can continue this stream: what it tells is kept */
    struct keel_told told;    /* what the client was told so far, across attempts (armed) */
    struct keel_buf scratch;  /* a shadow encoder's frames (dropped), a spliced literal */
    int continuing;           /* the attempt under way continues the committed stream */
    struct keel_splice splice; /* its events, filtered for the client */
    size_t continued;         /* continuations started */
    const struct keel_target_conf *cut_target; /* the first break: its target and class */
    enum keel_class cut_cls;

    /* the client side of a stream (relay.c) */
    struct keel_buf out; /* SSE bytes not yet handed to the client (held before the commit) */
    int writing;         /* a write awaits on_written */
    int paused;          /* the transfer is paused until the client catches up */
    int finishing;       /* the stream's last bytes are in `out`: the next write is final */

    struct keel_route_target route[]; /* the model's targets as the router sees them */
};

/* intake.c has read and checked a chat request and filled r (body, spans, model, config, state,
 * stream, budget); request.c's state machine owns it from here (request.c) */
void keel_req_begin(struct keel_request *r);

#endif
