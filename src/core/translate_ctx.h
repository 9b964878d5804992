/* translate_ctx.h - the bookkeeping the request translators share (translate.c,
 * translate_messages.c, translate_responses.c; private to them, translate.h is the contract): a translation's first
 * failure and the fields it did not send, jansson's builders noting running out of memory, and
 * the entry points' parse and serialise. Builders put what they make straight into their parent
 * and carry on when jansson runs out of memory (oom; the result is thrown away at the end); a
 * request that cannot be translated stops at the first problem (failed, its message in err). */
#ifndef KEEL_TRANSLATE_CTX_H
#define KEEL_TRANSLATE_CTX_H

#include <jansson.h>
#include <stddef.h>
#include <string.h>

/* one translation under way; on the entry point's stack, its buffers the caller's */
struct keel_tctx {
    char *err; /* NULL or errlen bytes; written by the first keel_tctx_fail() only */
    size_t errlen;
    char *dropped; /* NULL or droppedlen bytes, always NUL-terminated */
    size_t droppedlen;
    int failed; /* the request cannot be translated: err says why */
    int oom;    /* an allocation failed: the result is discarded */
};

/* ---- bookkeeping ---------------------------------------------------------------------------- */

/* Records why the request cannot be translated; returns NULL for `return keel_tctx_fail(...)`. */
__attribute__((format(printf, 2, 3))) json_t *keel_tctx_fail(struct keel_tctx *c, const char *fmt, ...);

/* Lists `name` as not sent, once. A client's unknown key reaches the logs this way, so bytes
 * outside [A-Za-z0-9_.[]-] become '?' and a name is cut at 63 bytes. */
void keel_tctx_drop(struct keel_tctx *c, const char *name);

/* Lists obj's non-null members that are not in `known` (NULL-terminated) as dropped, `prefix`
 * before each. */
void keel_tctx_drop_unknown(struct keel_tctx *c, const json_t *obj, const char *const *known, const char *prefix);

/* The set_new/append_new of jansson, noting a failure (they free `v` when they fail; a NULL `v`
 * is one that could not be made). */
static inline void keel_tctx_put(struct keel_tctx *c, json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, v) != 0)
        c->oom = 1;
}

static inline void keel_tctx_push(struct keel_tctx *c, json_t *arr, json_t *v)
{
    if (json_array_append_new(arr, v) != 0)
        c->oom = 1;
}

/* v, noting an allocation failure when it is NULL without a keel_tctx_fail() */
static inline json_t *keel_tctx_need(struct keel_tctx *c, json_t *v)
{
    if (v == NULL && !c->failed)
        c->oom = 1;
    return v;
}

/* ---- reading the request -------------------------------------------------------------------- */

/* obj's member `key`; a JSON null counts as absent (OpenAI's clients send null for unset fields) */
static inline json_t *keel_tctx_get(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static inline int keel_tctx_nonempty(const json_t *s)
{
    return json_is_string(s) && json_string_length(s) > 0;
}

/* key is one of list's strings (NULL-terminated) */
static inline int keel_tctx_in_list(const char *key, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(key, *list) == 0)
            return 1;
    return 0;
}

/* ---- reading the request: each reader refuses (keel_tctx_fail) what is not what it wants, the
 * message naming `path` ---- */

/* obj's "type" string, or NULL after keel_tctx_fail() (obj no object, or no string type) */
const char *keel_tctx_type(struct keel_tctx *c, const char *path, const json_t *obj);

/* obj[key] as a string, or NULL after keel_tctx_fail() */
json_t *keel_tctx_string_member(struct keel_tctx *c, const char *path, const json_t *obj, const char *key);

/* v as it is (a new reference) when it is a number; NULL when absent or after keel_tctx_fail() */
json_t *keel_tctx_number(struct keel_tctx *c, const json_t *v, const char *path);

/* jansson's tree of [s, s+n); NULL when it failed, the reason in *code. jansson reports running
 * out of memory as a syntax error, so a failure on a text keel's scanner accepts is taken for one
 * (c->oom), unless jansson says why it refuses valid JSON (a number past 64 bits, a NUL in a
 * key). Without JSON_DECODE_ANY only an object or array is a tree. */
json_t *keel_tctx_load(struct keel_tctx *c, const char *s, size_t n, enum json_error_code *code);

/* ---- an entry point's start and end --------------------------------------------------------- */

/* Sets c up for the caller's err[0..errlen) and dropped[0..droppedlen) (each may be NULL/0; both
 * emptied) and parses the request [body, body+len). Returns the request object, the caller's to
 * json_decref; NULL when it is not one (c->failed, why in err) or when out of memory (c->oom,
 * err left empty). */
json_t *keel_tctx_begin(struct keel_tctx *c, const char *body, size_t len, char *err, size_t errlen, char *dropped,
                        size_t droppedlen);

/* The translation's result: when it did not fail, the object of v[k] named names[k] for each
 * non-NULL v[k] of v[0..n), in that order, as compact JSON malloc'd (not jansson's allocator: the
 * caller frees with free()) and NUL-terminated, its length in *out_len. NULL when it failed or
 * ran out of memory. Releases v's references either way. */
char *keel_tctx_finish(struct keel_tctx *c, json_t **v, const char *const *names, size_t n, size_t *out_len);

#endif
