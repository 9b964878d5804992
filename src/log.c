/* log.c - stderr logger; see log.h. One fprintf per line so concurrent writers never tear one. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static enum keel_log_level min_level = KEEL_LOG_INFO;

void keel_log_set_level(enum keel_log_level l)
{
    min_level = l;
}

long long keel_time_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void keel_time_rfc3339(long long epoch_ms, char *dst, size_t n)
{
    time_t secs = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(dst, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(epoch_ms % 1000));
}

void keel_log(enum keel_log_level l, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (l < min_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char ts[40];
    keel_time_rfc3339(keel_time_now_ms(), ts, sizeof(ts));
    fprintf(stderr, "%s %s %s\n", ts, names[l], msg);
}
