/* jpath.c - a string found by a dotted path; see jpath.h. */
#include "core/jpath.h"

#include <string.h>

#define SEG_MAX 128 /* a name or a value, bytes */

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* One segment at *p: its name, and its [key=value] when it has one (key empty when not). Moves
 * *p past it and the '.' after it. -1 when malformed. */
static int segment(const char **p, char *name, char *key, char *value)
{
    const char *s = *p;
    size_t n = 0;
    while (name_char(s[n]))
        n++;
    if (n == 0 || n >= SEG_MAX)
        return -1;
    memcpy(name, s, n);
    name[n] = '\0';
    s += n;
    key[0] = value[0] = '\0';
    if (*s == '[') {
        const char *eq = strchr(s, '='), *close = strchr(s, ']');
        if (eq == NULL || close == NULL || eq > close || eq == s + 1 || (size_t)(eq - s) > SEG_MAX ||
            (size_t)(close - eq) > SEG_MAX)
            return -1;
        for (const char *c = s + 1; c < eq; c++)
            if (!name_char(*c))
                return -1;
        memcpy(key, s + 1, (size_t)(eq - s - 1));
        key[eq - s - 1] = '\0';
        memcpy(value, eq + 1, (size_t)(close - eq - 1));
        value[close - eq - 1] = '\0';
        if (strchr(value, '[') != NULL || strchr(value, '=') != NULL)
            return -1;
        s = close + 1;
    }
    if (*s == '.') {
        if (!name_char(s[1]))
            return -1;
        s++;
    } else if (*s != '\0') {
        return -1;
    }
    *p = s;
    return 0;
}

int keel_jpath_check(const char *path)
{
    char name[SEG_MAX], key[SEG_MAX], value[SEG_MAX];
    if (path == NULL || *path == '\0')
        return -1;
    while (*path != '\0')
        if (segment(&path, name, key, value) != 0)
            return -1;
    return 0;
}

/* value with "{model}" replaced by model, into out: 0, or -1 when it does not fit */
static int substitute(const char *value, const char *model, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *v = value; *v != '\0';) {
        const char *add = v;
        size_t n = 1;
        if (strncmp(v, "{model}", 7) == 0) {
            add = model;
            n = strlen(model);
            v += 7;
        } else {
            v++;
        }
        if (o + n >= cap)
            return -1;
        memcpy(out + o, add, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

long keel_jpath_string(struct keel_json root, const char *path, const char *model, char *out, size_t cap)
{
    char name[SEG_MAX], key[SEG_MAX], value[SEG_MAX], want[1024], got[1024];
    struct keel_json v = root;
    while (*path != '\0') {
        if (segment(&path, name, key, value) != 0)
            return -1;
        v = keel_json_get(v, name);
        if (key[0] == '\0')
            continue;
        if (keel_json_type(v) != KEEL_JSON_ARRAY || substitute(value, model, want, sizeof(want)) != 0)
            return -1;
        struct keel_json el, found = {NULL, 0};
        size_t pos = 0;
        while (found.p == NULL && keel_json_next(v, &pos, NULL, &el)) {
            long n = keel_json_string(keel_json_get(el, key), got, sizeof(got));
            if (n >= 0 && (size_t)n == strlen(want) && memcmp(got, want, (size_t)n) == 0)
                found = el;
        }
        v = found;
    }
    if (keel_json_type(v) != KEEL_JSON_STRING || v.len - 2 >= cap)
        return -1;
    return keel_json_string(v, out, cap);
}
