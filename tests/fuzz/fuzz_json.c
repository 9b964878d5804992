/* fuzz_json.c - libFuzzer driver for the span scanner, differential against jansson: both
 * accept or both reject (but for jansson's integer/real range limits, its refusing NUL in keys
 * and its deeper nesting limit), and every member of an accepted object reads back the same
 * through keel_json_get. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

static size_t depth_of(const uint8_t *d, size_t n)
{
    size_t depth = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] == '[' || d[i] == '{')
            max = ++depth > max ? depth : max;
        else if ((d[i] == ']' || d[i] == '}') && depth > 0)
            depth--;
    }
    return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_json root;
    json_error_t err;
    int ours = keel_json_parse((const char *)data, size, &root) == 0;
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (ours && j == NULL && strstr(err.text, "too big") == NULL && strstr(err.text, "overflow") == NULL &&
        strstr(err.text, "NUL byte in object key") == NULL)
        abort(); /* we accepted what jansson rejects */
    /* jansson also stops at a NUL byte after a value, which we reject */
    if (!ours && j != NULL && depth_of(data, size) <= 512 && memchr(data, '\0', size) == NULL)
        abort(); /* we rejected what jansson accepts */
    /* a key with an escaped NUL reads back cut short through jansson's C-string keys */
    if (ours && json_is_object(j) && memmem(data, size, "\\u0000", 6) == NULL) {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v)
        {
            if (strlen(key) >= 100)
                continue;
            struct keel_json m = keel_json_get(root, key);
            if (m.p == NULL)
                abort();
            if (json_is_string(v) && memchr(json_string_value(v), '\0', json_string_length(v)) == NULL) {
                char buf[4096];
                long n = keel_json_string(m, buf, sizeof(buf));
                if (n != (long)json_string_length(v) ||
                    ((size_t)n < sizeof(buf) && memcmp(buf, json_string_value(v), (size_t)n) != 0))
                    abort();
            }
            if (json_is_true(v) != (keel_json_type(m) == KEEL_JSON_TRUE) ||
                json_is_array(v) != (keel_json_type(m) == KEEL_JSON_ARRAY))
                abort();
        }
    }
    json_decref(j);
    return 0;
}
