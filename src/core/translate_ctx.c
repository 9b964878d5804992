/* translate_ctx.c - the request translators' shared bookkeeping; see translate_ctx.h. What a
 * request becomes is translate.c's and translate_messages.c's. */
#include "core/translate_ctx.h"

#include <stdarg.h>
#include <stdio.h> /* snprintf */
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

json_t *keel_tctx_fail(struct keel_tctx *c, const char *fmt, ...)
{
    if (!c->failed && c->err != NULL && c->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    c->failed = 1;
    return NULL;
}

void keel_tctx_drop(struct keel_tctx *c, const char *name)
{
    char clean[64];
    size_t n = 0;
    if (c->dropped == NULL || c->droppedlen == 0)
        return;
    for (; name[n] != '\0' && n < sizeof(clean) - 1; n++) {
        char ch = name[n];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 strchr("_.[]-", ch) != NULL;
        clean[n] = ok ? ch : '?';
    }
    clean[n] = '\0';
    size_t used = strlen(c->dropped);
    for (size_t at = 0; at < used;) {
        size_t end = at;
        while (end < used && c->dropped[end] != ',')
            end++;
        if (end - at == n && memcmp(c->dropped + at, clean, n) == 0)
            return;
        at = end + 1;
    }
    if (n == 0 || used + (used > 0) + n + 1 > c->droppedlen)
        return;
    if (used > 0)
        c->dropped[used++] = ',';
    memcpy(c->dropped + used, clean, n + 1);
}

void keel_tctx_drop_unknown(struct keel_tctx *c, const json_t *obj, const char *const *known, const char *prefix)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        char name[64];
        if (json_is_null(v) || keel_tctx_in_list(key, known))
            continue;
        snprintf(name, sizeof(name), "%s%s", prefix, key);
        keel_tctx_drop(c, name);
    }
}

const char *keel_tctx_type(struct keel_tctx *c, const char *path, const json_t *obj)
{
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (type == NULL)
        keel_tctx_fail(c, "%s: must be an object with a string type", path);
    return type;
}

json_t *keel_tctx_string_member(struct keel_tctx *c, const char *path, const json_t *obj, const char *key)
{
    json_t *s = json_object_get(obj, key);
    if (!json_is_string(s))
        return keel_tctx_fail(c, "%s.%s: must be a string", path, key);
    return s;
}

json_t *keel_tctx_number(struct keel_tctx *c, const json_t *v, const char *path)
{
    if (v != NULL && !json_is_number(v))
        return keel_tctx_fail(c, "%s: must be a number", path);
    return json_incref((json_t *)v);
}

json_t *keel_tctx_load(struct keel_tctx *c, const char *s, size_t n, enum json_error_code *code)
{
    json_error_t je;
    struct keel_json root;
    memset(&je, 0, sizeof(je)); /* a failure jansson never reported (memory) leaves its code unset */
    json_t *v = json_loadb(s, n, JSON_ALLOW_NUL, &je);
    if (v != NULL)
        return v;
    *code = json_error_code(&je);
    if (*code != json_error_numeric_overflow && *code != json_error_null_byte_in_key &&
        keel_json_parse(s, n, &root) == 0 &&
        (keel_json_type(root) == KEEL_JSON_OBJECT || keel_json_type(root) == KEEL_JSON_ARRAY))
        c->oom = 1;
    return NULL;
}

json_t *keel_tctx_begin(struct keel_tctx *c, const char *body, size_t len, char *err, size_t errlen, char *dropped,
                        size_t droppedlen)
{
    enum json_error_code code = json_error_unknown;
    json_t *req = NULL;
    *c = (struct keel_tctx){err, errlen, dropped, droppedlen, 0, 0};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (dropped != NULL && droppedlen > 0)
        dropped[0] = '\0';
    if (body != NULL && len > 0)
        req = keel_tctx_load(c, body, len, &code);
    if (c->oom)
        return NULL;
    if (req == NULL && code == json_error_numeric_overflow)
        keel_tctx_fail(c, "request body: a number is out of range");
    else if (req == NULL && code == json_error_null_byte_in_key)
        keel_tctx_fail(c, "request body: an object key holds a NUL character");
    else if (!json_is_object(req))
        keel_tctx_fail(c, "request body must be a JSON object");
    else
        return req;
    json_decref(req);
    return NULL;
}

/* compact JSON, malloc'd (not jansson's allocator: the caller frees with free()) */
static char *dump(const json_t *out, size_t *out_len)
{
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t n = json_dumpb(out, NULL, 0, flags);
    char *s = n > 0 ? malloc(n + 1) : NULL;
    if (s == NULL)
        return NULL;
    if (json_dumpb(out, s, n, flags) != n) {
        free(s);
        return NULL;
    }
    s[n] = '\0';
    *out_len = n;
    return s;
}

char *keel_tctx_finish(struct keel_tctx *c, json_t **v, const char *const *names, size_t n, size_t *out_len)
{
    char *s = NULL;
    if (!c->failed && !c->oom) {
        json_t *out = json_object();
        for (size_t k = 0; k < n; k++)
            if (v[k] != NULL)
                keel_tctx_put(c, out, names[k], json_incref(v[k]));
        if (!c->oom)
            s = dump(out, out_len);
        json_decref(out);
    }
    for (size_t k = 0; k < n; k++)
        json_decref(v[k]);
    return s;
}
