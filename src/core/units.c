/* units.c - checked number parsing; see units.h. No strtol: every digit is ours to check. */
#include "core/units.h"

#include <errno.h>
#include <string.h>

/* parses leading decimal digits; returns how many were read, 0 on none or overflow */
static size_t digits(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return i;
}

static int scaled(const char *s, uint64_t *out, const char *const *suffix, const uint64_t *mult, int n)
{
    uint64_t v;
    size_t i = digits(s, &v);
    if (i == 0)
        return -EINVAL;
    for (int k = 0; k < n; k++) {
        if (strcmp(s + i, suffix[k]) == 0) {
            if (mult[k] != 0 && v > UINT64_MAX / mult[k])
                return -EINVAL;
            *out = v * mult[k];
            return 0;
        }
    }
    return -EINVAL;
}

int keel_parse_uint(const char *s, uint64_t *out)
{
    static const char *const sfx[] = {""};
    static const uint64_t mul[] = {1};
    return scaled(s, out, sfx, mul, 1);
}

int keel_parse_duration_ms(const char *s, uint64_t *out)
{
    static const char *const sfx[] = {"ms", "s", "m", "h"};
    static const uint64_t mul[] = {1, 1000, 60000, 3600000};
    return scaled(s, out, sfx, mul, 4);
}

int keel_parse_size(const char *s, uint64_t *out)
{
    static const char *const sfx[] = {"", "k", "m", "g", "KiB", "MiB", "GiB"};
    static const uint64_t mul[] = {1, 1024, 1048576, 1073741824, 1024, 1048576, 1073741824};
    return scaled(s, out, sfx, mul, 7);
}

int keel_parse_count(const char *s, uint64_t *out)
{
    static const char *const sfx[] = {"", "k", "m"};
    static const uint64_t mul[] = {1, 1000, 1000000};
    return scaled(s, out, sfx, mul, 3);
}
