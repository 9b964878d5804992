/* log.h - keel's log: one line per event on stderr, "ts level message". Never pass a header,
 * body, prompt or key here (STYLE S2): log ids, routes, states, statuses and sizes. */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

#include <stddef.h>

enum keel_log_level { KEEL_LOG_DEBUG, KEEL_LOG_INFO, KEEL_LOG_WARN, KEEL_LOG_ERROR };

void keel_log_set_level(enum keel_log_level l);
/* wall clock, ms since the epoch, and its RFC 3339 form "2026-11-23T12:25:26.704Z" */
long long keel_time_now_ms(void);
void keel_time_rfc3339(long long epoch_ms, char *dst, size_t n);
void keel_log(enum keel_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define keel_info(...) keel_log(KEEL_LOG_INFO, __VA_ARGS__)
#define keel_warn(...) keel_log(KEEL_LOG_WARN, __VA_ARGS__)
#define keel_error(...) keel_log(KEEL_LOG_ERROR, __VA_ARGS__)
#define keel_debug(...) keel_log(KEEL_LOG_DEBUG, __VA_ARGS__)

#endif
