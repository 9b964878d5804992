/* classify.c - outcome -> class; see classify.h and DESIGN.md's failure table.
 * An explicit upstream status wins over anything nested in it (seed 003), so the status is read
 * before the body's code, and a body code only refines a status of the same family. */
#include "core/classify.h"

#include <string.h>

const char keel_err_connect[] = "connect failed";
const char keel_err_resolve[] = "name resolution failed";
const char keel_err_tls[] = "tls handshake failed";
const char keel_err_reset[] = "connection reset";
const char keel_err_timeout[] = "deadline exceeded";
const char keel_err_too_large[] = "answer too large";
const char keel_err_local[] = "local resources exhausted";

static const char *const names[KEEL_CLASS_COUNT] = {
    [KEEL_CLASS_OK] = "ok",
    [KEEL_CLASS_CONNECT_ERROR] = "connect_error",
    [KEEL_CLASS_RESET] = "reset",
    [KEEL_CLASS_FIRST_BYTE_TIMEOUT] = "first_byte_timeout",
    [KEEL_CLASS_STALL_TIMEOUT] = "stall_timeout",
    [KEEL_CLASS_SERVER_ERROR] = "server_error",
    [KEEL_CLASS_OVERLOADED] = "overloaded",
    [KEEL_CLASS_RATE_LIMITED] = "rate_limited",
    [KEEL_CLASS_QUOTA] = "quota",
    [KEEL_CLASS_AUTH] = "auth",
    [KEEL_CLASS_NOT_FOUND] = "not_found",
    [KEEL_CLASS_CONTEXT_LENGTH] = "context_length",
    [KEEL_CLASS_BAD_REQUEST] = "bad_request",
    [KEEL_CLASS_STREAM_ERROR] = "stream_error",
    [KEEL_CLASS_EMPTY_RESPONSE] = "empty_response",
    [KEEL_CLASS_CLIENT_GONE] = "client_gone",
    [KEEL_CLASS_INVALID_REQUEST] = "invalid_request",
    [KEEL_CLASS_GATEWAY_BUSY] = "gateway_busy",
    [KEEL_CLASS_DEADLINE_EXCEEDED] = "deadline_exceeded",
    [KEEL_CLASS_LOCAL_ERROR] = "local_error",
    [KEEL_CLASS_UNTRANSLATABLE] = "untranslatable",
    [KEEL_CLASS_KEY_LIMITED] = "key_limited",
    [KEEL_CLASS_SKIPPED] = "skipped",
};

int keel_class_refused(enum keel_class c)
{
    return c == KEEL_CLASS_INVALID_REQUEST || c == KEEL_CLASS_GATEWAY_BUSY || c == KEEL_CLASS_KEY_LIMITED;
}

const char *keel_class_name(enum keel_class c)
{
    return c < KEEL_CLASS_COUNT ? names[c] : "unknown";
}

static int code_is(const char *code, const char *const *list)
{
    if (code == NULL)
        return 0;
    for (; *list != NULL; list++)
        if (strcmp(code, *list) == 0)
            return 1;
    return 0;
}

static const char *const overloaded_codes[] = {"overloaded", "overloaded_error", "server_overloaded", "engine_overloaded", NULL};
static const char *const quota_codes[] = {"insufficient_quota", "billing_hard_limit_reached", "payment_required", NULL};
static const char *const context_codes[] = {"context_length_exceeded", "string_above_max_length", "context_window_exceeded", NULL};
static const char *const rate_codes[] = {"rate_limit_exceeded", "rate_limit_error", "rate_limited", NULL};
static const char *const notfound_codes[] = {"model_not_found", NULL};

/* a 200 whose stream carried an error event: the provider's code may name a more precise class */
static enum keel_class stream_error_class(const char *code)
{
    if (code_is(code, overloaded_codes))
        return KEEL_CLASS_OVERLOADED;
    if (code_is(code, rate_codes))
        return KEEL_CLASS_RATE_LIMITED;
    if (code_is(code, quota_codes))
        return KEEL_CLASS_QUOTA;
    return KEEL_CLASS_STREAM_ERROR;
}

enum keel_class keel_classify(const struct keel_outcome *o)
{
    int s = o->status;
    if (o->untranslatable)
        return KEEL_CLASS_UNTRANSLATABLE;
    if (o->transport == keel_err_local)
        return KEEL_CLASS_LOCAL_ERROR; /* whatever the upstream said so far, keel is what failed */
    if (s == 0 || o->transport == keel_err_timeout) {
        if (o->transport == keel_err_timeout)
            return o->timeout == KEEL_TIMEOUT_STALL ? KEEL_CLASS_STALL_TIMEOUT : KEEL_CLASS_FIRST_BYTE_TIMEOUT;
        if (o->transport == keel_err_connect || o->transport == keel_err_resolve || o->transport == keel_err_tls)
            return KEEL_CLASS_CONNECT_ERROR;
        return KEEL_CLASS_RESET; /* no status and no transport error: the peer said nothing */
    }
    if (s >= 200 && s < 300) {
        if (o->stream_error)
            return stream_error_class(o->code);
        if (o->transport == keel_err_too_large)
            return KEEL_CLASS_SERVER_ERROR;
        if (o->transport != NULL)
            return KEEL_CLASS_RESET;
        if (o->empty || o->malformed)
            return KEEL_CLASS_EMPTY_RESPONSE;
        return KEEL_CLASS_OK;
    }
    switch (s) {
    case 401:
    case 403:
        return KEEL_CLASS_AUTH;
    case 402:
        return KEEL_CLASS_QUOTA;
    case 404:
        return KEEL_CLASS_NOT_FOUND;
    case 408:
        return KEEL_CLASS_SERVER_ERROR;
    case 413:
        return code_is(o->code, context_codes) ? KEEL_CLASS_CONTEXT_LENGTH : KEEL_CLASS_BAD_REQUEST;
    case 429:
        /* some providers say quota with a 429 */
        return code_is(o->code, quota_codes) ? KEEL_CLASS_QUOTA : KEEL_CLASS_RATE_LIMITED;
    case 529:
        return KEEL_CLASS_OVERLOADED;
    }
    if (s >= 500)
        return code_is(o->code, overloaded_codes) ? KEEL_CLASS_OVERLOADED : KEEL_CLASS_SERVER_ERROR;
    if (s >= 400) {
        if (code_is(o->code, context_codes))
            return KEEL_CLASS_CONTEXT_LENGTH;
        if (code_is(o->code, quota_codes))
            return KEEL_CLASS_QUOTA;
        if (code_is(o->code, notfound_codes))
            return KEEL_CLASS_NOT_FOUND;
        return KEEL_CLASS_BAD_REQUEST;
    }
    /* 1xx/3xx are not answers an OpenAI client can use */
    return KEEL_CLASS_SERVER_ERROR;
}
