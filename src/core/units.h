/* units.h - the one checked parser for numbers in config and headers (STYLE H3):
 * durations (250ms, 5s, 2m, 1h), byte sizes (512k, 8m, 1g; binary) and counts (32k = 32000). */
#ifndef KEEL_UNITS_H
#define KEEL_UNITS_H

#include <stdint.h>

/* Each returns 0, or -EINVAL with *out untouched. The whole string must be consumed. */
int keel_parse_uint(const char *s, uint64_t *out);
int keel_parse_duration_ms(const char *s, uint64_t *out);
int keel_parse_size(const char *s, uint64_t *out);
int keel_parse_count(const char *s, uint64_t *out);

#endif
