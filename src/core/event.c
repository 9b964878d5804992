/* event.c - the decoders by upstream kind, and what every decoder reads fields with (core/event.h):
 * keys compared on the span scanner's strings (core/json.h), no tree, no allocation. The
 * protocols themselves are openai.c's, anthropic.c's and responses.c's. */
#include "core/event.h"

#include <assert.h>
#include <string.h>

const struct keel_decoder_ops *keel_decoder_for(const char *kind)
{
    static const struct keel_decoder_ops *const all[] = {&keel_openai_decoder, &keel_anthropic_decoder,
                                                           &keel_responses_decoder};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(all[i]->kind, kind) == 0)
            return all[i];
    return NULL;
}

int keel_key_is(struct keel_json v, struct keel_key key)
{
    char decoded[32];
    assert(key.len < sizeof(decoded));
    if (keel_json_type(v) != KEEL_JSON_STRING)
        return 0;
    if (memchr(v.p, '\\', v.len) == NULL)
        return v.len - 2 == key.len && memcmp(v.p + 1, key.s, key.len) == 0;
    long n = keel_json_string(v, decoded, sizeof(decoded)); /* an escaped string compares decoded */
    return n == (long)key.len && memcmp(decoded, key.s, key.len) == 0;
}

size_t keel_key_find(struct keel_json v, const struct keel_key *keys, size_t n)
{
    size_t i = 0;
    while (i < n && !keel_key_is(v, keys[i]))
        i++;
    return i;
}

void keel_key_pick(struct keel_json obj, const struct keel_key *keys, size_t n, struct keel_json *out)
{
    struct keel_json k, v;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        out[i] = (struct keel_json){NULL, 0};
    if (keel_json_type(obj) != KEEL_JSON_OBJECT)
        return;
    while (keel_json_next(obj, &pos, &k, &v)) {
        size_t i = keel_key_find(k, keys, n);
        if (i < n)
            out[i] = v;
    }
}

/* 0 when text[0..len) is one JSON object, root its span; -1 otherwise */
static int parse_object(const char *text, size_t len, struct keel_json *root)
{
    return keel_json_parse(text, len, root) == 0 && keel_json_type(*root) == KEEL_JSON_OBJECT ? 0 : -1;
}

int keel_decoder_open_body(const char *text, size_t len, char *code, size_t codelen, struct keel_json *root)
{
    if (codelen > 0)
        code[0] = '\0';
    return parse_object(text, len, root);
}

void keel_decoder_emit_error(struct keel_decoder *d, const char *code, struct keel_json root, struct keel_json err)
{
    struct keel_ev ev = {.kind = KEEL_EV_ERROR};
    ev.u.error.code = code;
    ev.u.error.raw = keel_json_type(err) == KEEL_JSON_OBJECT ? err : root;
    keel_decoder_emit(d, &ev);
}

int keel_decoder_open(struct keel_decoder *d, const char *event, const char *data, size_t len,
                      struct keel_chunk_info *info, struct keel_json *root)
{
    static const struct keel_json absent = {NULL, 0};
    if (parse_object(data, len, root) == 0)
        return 0;
    /* `event: error` with a payload that is no JSON object is still an error */
    info->kind = strcmp(event, "error") == 0 ? KEEL_CHUNK_ERROR : KEEL_CHUNK_MALFORMED;
    if (info->kind == KEEL_CHUNK_ERROR)
        keel_decoder_emit_error(d, info->error_code, absent, absent);
    return -1;
}
