/* audit.h - the audit log: one JSON line per client request (DESIGN.md "Audit record"), written
 * off the loop: lines gather in a buffer that a libuv worker thread appends to the file at least
 * every second (and at once past 64 KiB), in whole lines only, so a crash never tears one; the
 * file rotates by size (FILE -> FILE.1 -> ... FILE.N). The caller never hands it a secret. */
#ifndef KEEL_AUDIT_H
#define KEEL_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct keel_audit;

/* NULL with a message in err if the file cannot be opened for appending */
struct keel_audit *keel_audit_open(uv_loop_t *loop, const char *path, uint64_t max_size, unsigned keep, char *err,
                                   size_t errlen);
/* queues one line (without its '\n'); lines past the buffer's cap are dropped and counted */
void keel_audit_line(struct keel_audit *a, const char *line, size_t len);
/* writes what is queued, synchronously (at exit) */
void keel_audit_flush_now(struct keel_audit *a);
uint64_t keel_audit_dropped(const struct keel_audit *a);

/* one attempt of a request, as its record lists them */
struct keel_audit_attempt {
    const char *upstream, *model; /* the target */
    const char *cls;              /* its class's name */
    const char *kind;             /* the protocol the target speaks */
    int status;
    uint64_t ms, ttft_ms;
};

/* One request's record (DESIGN.md "Audit record"): what the routed and the rejected paths both
 * write. Names, ids, statuses, sizes and times, never a secret, a header or a prompt. */
struct keel_audit_record {
    int64_t start_wall_ms; /* arrival, wall clock: the record's ts */
    const char *id;
    const char *model;     /* the model the client asked for */
    int stream;            /* the client asked for a stream */
    int status;            /* what the client got (0: nothing, it left first) */
    uint64_t ms;
    int has_ttft;          /* ttft_ms is known (else null) */
    uint64_t ttft_ms;
    const char *upstream, *target_model; /* the last target tried; NULL: none */
    const struct keel_audit_attempt *attempts; /* [nattempts], in the order tried */
    size_t nattempts;
    size_t prompt_bytes;
    int has_usage;
    long long prompt_tokens, completion_tokens, total_tokens;
    int client_gone;
    const char *cls;       /* the request's class */
    const char *error;     /* a rejection's code; NULL: no "error" member */
    const char *protocol;  /* the client's protocol ("openai-chat", "anthropic-messages"); NULL: none */
    int continued;         /* the stream broke after its commit and another target finished it
                            * (or tried to): "continued": true */
    const char *key;       /* the client key's name (never the key); NULL: no "key" member */
    int has_cost;          /* the answering target has a price and the answer a usage */
    double cost;           /* its tokens at that price ("cost") */
};

/* queues rec's line (written directly, not through a JSON tree: it is on every request's path);
 * a NULL log takes nothing */
void keel_audit_record(struct keel_audit *a, const struct keel_audit_record *rec);
/* the record's line alone, into b (reset first; b->base NULL when out of memory): formatted
 * outside the lock the workers share the log under, then queued with keel_audit_line */
struct keel_buf;
void keel_audit_format(struct keel_buf *b, const struct keel_audit_record *rec);

#endif
