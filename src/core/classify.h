/* classify.h - the failure classes of DESIGN.md, and the classification of an attempt's outcome.
 * Pure: an attempt's outcome goes in, a class comes out. The I/O layer gathers the
 * outcome; router.h decides what each class means for the fallback chain. */
#ifndef KEEL_CLASSIFY_H
#define KEEL_CLASSIFY_H

#include <stddef.h>

enum keel_class {
    KEEL_CLASS_OK = 0,
    KEEL_CLASS_CONNECT_ERROR,
    KEEL_CLASS_RESET,
    KEEL_CLASS_FIRST_BYTE_TIMEOUT,
    KEEL_CLASS_STALL_TIMEOUT,
    KEEL_CLASS_SERVER_ERROR,
    KEEL_CLASS_OVERLOADED,
    KEEL_CLASS_RATE_LIMITED,
    KEEL_CLASS_QUOTA,
    KEEL_CLASS_AUTH,
    KEEL_CLASS_NOT_FOUND,
    KEEL_CLASS_CONTEXT_LENGTH,
    KEEL_CLASS_BAD_REQUEST,
    KEEL_CLASS_STREAM_ERROR,
    KEEL_CLASS_EMPTY_RESPONSE,
    KEEL_CLASS_CLIENT_GONE,
    KEEL_CLASS_INVALID_REQUEST,
    KEEL_CLASS_GATEWAY_BUSY,
    /* the request's total deadline (its target's total, or the client's x-keel-timeout) ran out
     * while the attempt was within its own first_byte and stall: not the upstream's fault */
    KEEL_CLASS_DEADLINE_EXCEEDED,
    /* keel itself failed: out of descriptors or memory, or a limit of its own (max_memory)
     * reached mid-request. Never the upstream's fault: no breaker, no next target (seed 003) */
    KEEL_CLASS_LOCAL_ERROR,
    /* the request has no form in the target's protocol (audio input for a protocol without
     * it...): that target is passed over for a target of another protocol, else the 400 goes
     * to the client. Never the upstream's fault, which never saw it: no breaker */
    KEEL_CLASS_UNTRANSLATABLE,
    /* a client key over its rpm or tpm: refused before any upstream (429), local like
     * invalid_request: never walks the chain, never counts for a breaker */
    KEEL_CLASS_KEY_LIMITED,
    KEEL_CLASS_SKIPPED, /* not an outcome: the target was skipped (breaker open, or cooling) */
    KEEL_CLASS_COUNT
};

/* Transport failures are identities compared by pointer (STYLE E3); upstream.c returns them. */
extern const char keel_err_connect[];      /* refused, unreachable, connect timeout */
extern const char keel_err_resolve[];      /* name resolution failed */
extern const char keel_err_tls[];          /* TLS handshake or certificate verification */
extern const char keel_err_reset[];        /* peer closed or reset; protocol error */
extern const char keel_err_timeout[];      /* a deadline fired (which one: outcome.timeout) */
extern const char keel_err_too_large[];    /* the answer passed keel's size cap */
extern const char keel_err_local[];        /* keel's own resources ran out (EMFILE, ENOMEM...) */

enum keel_timeout_kind { KEEL_TIMEOUT_NONE, KEEL_TIMEOUT_FIRST_BYTE, KEEL_TIMEOUT_STALL };

/* What one attempt produced. A clean answer is status 200 with nothing else set. */
struct keel_outcome {
    const char *transport;  /* NULL, or one of keel_err_* */
    enum keel_timeout_kind timeout;
    int status;             /* HTTP status from the upstream, 0 if none arrived */
    const char *code;       /* provider error code/type from the body or error event, or NULL */
    int empty;              /* 200 whose answer had no choices / stream without content progress */
    int malformed;          /* 200 whose body was not JSON */
    int stream_error;       /* an error event inside a 200 stream */
    int untranslatable;     /* keel could not say the request in the target's protocol */
};

enum keel_class keel_classify(const struct keel_outcome *o);
const char *keel_class_name(enum keel_class c);
/* keel turned the request away itself, before any upstream: a bad request or key, its own
 * load, a key's limits (invalid_request, gateway_busy, key_limited) */
int keel_class_refused(enum keel_class c);


#endif
