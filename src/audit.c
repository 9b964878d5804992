/* audit.c - the audit log writer; see audit.h. Two buffers: the loop appends lines to `pending`;
 * a flush swaps it with the empty `writing` buffer and hands that to one libuv worker, which
 * appends it to the file (rotating first when it would pass max_size). Only the worker touches
 * fd and size while `busy`; only the loop touches `pending`. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fmt.h"
#include "core/json.h"
#include "log.h"

#define FLUSH_BYTES (64u << 10)
#define MAX_PENDING (16u << 20)
#define FLUSH_MS 1000

struct keel_audit {
    uv_loop_t *loop;
    char *path;
    uint64_t max_size;
    unsigned keep;
    int fd;
    uint64_t size;           /* bytes in the current file */
    struct keel_buf pending; /* whole lines the loop queued */
    struct keel_buf writing; /* whole lines the worker is writing */
    int busy;                /* a worker owns `writing`, fd and size */
    int werr;                /* errno of the worker's last failure, 0 if none */
    uint64_t lost;           /* lines the worker could not write (no file open) */
    int broken;              /* the last write failed: said once, and again when it heals */
    uv_work_t work;
    uv_timer_t timer;
    uint64_t dropped;
    struct keel_buf line; /* the record being written (kept: no allocation per request) */
};

static int open_file(struct keel_audit *a)
{
    a->fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (a->fd < 0)
        return -errno;
    struct stat st;
    a->size = fstat(a->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

/* FILE.(keep-1) -> FILE.keep, ..., FILE -> FILE.1, then a fresh FILE */
static void rotate(struct keel_audit *a)
{
    size_t n = strlen(a->path) + 16;
    char from[n], to[n];
    if (a->fd >= 0)
        close(a->fd);
    for (unsigned i = a->keep; i > 1; i--) {
        snprintf(from, n, "%s.%u", a->path, i - 1);
        snprintf(to, n, "%s.%u", a->path, i);
        rename(from, to);
    }
    snprintf(to, n, "%s.1", a->path);
    rename(a->path, to);
    int rv = open_file(a);
    if (rv != 0) {
        a->werr = -rv;
        a->size = 0;
    }
}

static uint64_t count_lines(const char *p, const char *end)
{
    uint64_t n = 0;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

static void write_all(struct keel_audit *a, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (a->fd < 0) {
            a->lost += count_lines(p + off, p + len);
            return;
        }
        ssize_t r = write(a->fd, p + off, len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            a->werr = errno;
            a->lost += count_lines(p + off, p + len);
            break;
        }
        off += (size_t)r;
    }
    a->size += off;
}

/* worker thread: whole lines, rotating between two lines whenever the next would pass max_size.
 * With no file open (a rotation could not open a fresh one: its directory gone, a full disk)
 * each flush tries again, so the log resumes once the cause is fixed. */
static void do_write(uv_work_t *w)
{
    struct keel_audit *a = w->data;
    const char *p = a->writing.base, *end = p + a->writing.len, *chunk = p;
    int rv = a->fd < 0 ? open_file(a) : 0;
    if (rv != 0) {
        a->werr = -rv;
        a->lost += count_lines(p, end);
        return;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl ? nl + 1 : end;
        uint64_t would = a->size + (uint64_t)(next - chunk);
        if (a->max_size > 0 && would > a->max_size && a->size + (uint64_t)(p - chunk) > 0) {
            write_all(a, chunk, (size_t)(p - chunk));
            rotate(a);
            chunk = p;
        }
        p = next;
    }
    write_all(a, chunk, (size_t)(end - chunk));
}

static void flush(struct keel_audit *a);

/* the loop's side of a write: what went wrong is said once, and when it heals */
static void report(struct keel_audit *a)
{
    a->dropped += a->lost;
    if (a->werr != 0 && !a->broken)
        keel_error("audit log %s: write failed: %s (%llu lines lost; retrying at each flush)", a->path,
                   strerror(a->werr), (unsigned long long)a->lost);
    else if (a->werr == 0 && a->broken)
        keel_info("audit log %s: writing again", a->path);
    a->broken = a->werr != 0;
    a->werr = 0;
    a->lost = 0;
}

static void after_write(uv_work_t *w, int status)
{
    (void)status;
    struct keel_audit *a = w->data;
    a->busy = 0;
    keel_buf_reset(&a->writing);
    report(a);
    if (a->pending.len >= FLUSH_BYTES)
        flush(a);
}

static void flush(struct keel_audit *a)
{
    if (a->busy || a->pending.len == 0)
        return;
    struct keel_buf t = a->writing;
    a->writing = a->pending;
    a->pending = t;
    a->busy = 1;
    a->work.data = a;
    uv_queue_work(a->loop, &a->work, do_write, after_write);
}

static void on_timer(uv_timer_t *t)
{
    flush(t->data);
}

struct keel_audit *keel_audit_open(uv_loop_t *loop, const char *path, uint64_t max_size, unsigned keep, char *err,
                                   size_t errlen)
{
    struct keel_audit *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->loop = loop;
    a->path = strdup(path);
    a->max_size = max_size;
    a->keep = keep > 0 ? keep : 1;
    int rv = open_file(a);
    if (rv != 0) {
        snprintf(err, errlen, "audit_log %s: cannot open for appending: %s", path, strerror(-rv));
        free(a->path);
        free(a);
        return NULL;
    }
    keel_buf_init(&a->pending, MAX_PENDING);
    keel_buf_init(&a->writing, MAX_PENDING);
    keel_buf_init(&a->line, MAX_PENDING);
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, on_timer, FLUSH_MS, FLUSH_MS);
    uv_unref((uv_handle_t *)&a->timer);
    return a;
}

void keel_audit_line(struct keel_audit *a, const char *line, size_t len)
{
    if (a->pending.len + len + 1 > MAX_PENDING) {
        a->dropped++; /* the disk can't keep up: lose the line, never the loop */
        return;
    }
    keel_buf_append(&a->pending, line, len);
    keel_buf_append(&a->pending, "\n", 1);
    if (a->pending.len >= FLUSH_BYTES)
        flush(a);
}

void keel_audit_flush_now(struct keel_audit *a)
{
    while (a->busy)
        uv_run(a->loop, UV_RUN_ONCE); /* let the worker in flight finish */
    if (a->pending.len == 0)
        return;
    struct keel_buf t = a->writing;
    a->writing = a->pending;
    a->pending = t;
    do_write(&(uv_work_t){.data = a});
    keel_buf_reset(&a->writing);
    report(a);
}

uint64_t keel_audit_dropped(const struct keel_audit *a)
{
    return a->dropped;
}

/* ---- the record's line, written directly ---- */

static int to_buf(void *ctx, const char *run, size_t len)
{
    return keel_buf_append(ctx, run, len);
}

/* ,"key": then s as a JSON string; NULL as null. A client's text that is not valid UTF-8 (a
 * name cut mid-character) is recorded as "" rather than losing the line. */
static void put_str(struct keel_buf *b, const char *key, const char *s)
{
    keel_buf_appends(b, key);
    if (s == NULL) {
        keel_buf_append(b, "null", 4);
        return;
    }
    size_t n = strlen(s);
    keel_buf_append(b, "\"", 1);
    if (keel_json_utf8_valid(s, n))
        keel_json_escape(s, n, to_buf, b);
    keel_buf_append(b, "\"", 1);
}

/* key (",\"name\":" with its punctuation) then an integer, a boolean */
static void put_int(struct keel_buf *b, const char *key, long long v)
{
    char num[24];
    struct keel_fmt f;
    keel_fmt_init(&f, num, sizeof(num));
    keel_fmt_i64(&f, v);
    keel_buf_appends(b, key);
    keel_buf_append(b, num, f.len);
}

static void put_bool(struct keel_buf *b, const char *key, int v)
{
    keel_buf_appends(b, key);
    keel_buf_appends(b, v ? "true" : "false");
}

/* keel_time_rfc3339's text (ts: 40 bytes), its date and time formatted once a second: a loop
 * writes every record of its own, so one cache per thread serves them all */
static void stamp(long long ms, char ts[40])
{
    static _Thread_local long long second = -1;
    static _Thread_local char prefix[40]; /* "2026-11-29T10:45:07." */
    static _Thread_local size_t plen;
    if (ms / 1000 != second) {
        keel_time_rfc3339(ms, prefix, sizeof(prefix));
        plen = strlen(prefix) - 4; /* "123Z" off */
        second = ms / 1000;
    }
    int m = (int)(ms % 1000);
    memcpy(ts, prefix, plen);
    ts[plen] = (char)('0' + m / 100);
    ts[plen + 1] = (char)('0' + m / 10 % 10);
    ts[plen + 2] = (char)('0' + m % 10);
    memcpy(ts + plen + 3, "Z", 2);
}

/* the line, members in DESIGN.md's order (the one jansson wrote them in before) */
static void format_record(struct keel_buf *b, const struct keel_audit_record *rec)
{
    char ts[40];
    stamp(rec->start_wall_ms, ts);
    put_str(b, "{\"ts\":", ts);
    put_str(b, ",\"id\":", rec->id);
    put_str(b, ",\"model\":", rec->model ? rec->model : "");
    put_bool(b, ",\"stream\":", rec->stream);
    put_int(b, ",\"status\":", rec->status);
    put_int(b, ",\"ms\":", (long long)rec->ms);
    if (rec->has_ttft)
        put_int(b, ",\"ttft_ms\":", (long long)rec->ttft_ms);
    else
        keel_buf_appends(b, ",\"ttft_ms\":null");
    put_str(b, ",\"upstream\":", rec->upstream);
    put_str(b, ",\"target_model\":", rec->target_model);
    keel_buf_appends(b, ",\"attempts\":[");
    for (size_t i = 0; i < rec->nattempts; i++) {
        const struct keel_audit_attempt *a = &rec->attempts[i];
        put_str(b, i ? ",{\"upstream\":" : "{\"upstream\":", a->upstream);
        put_str(b, ",\"model\":", a->model);
        put_str(b, ",\"class\":", a->cls);
        put_int(b, ",\"status\":", a->status);
        put_int(b, ",\"ms\":", (long long)a->ms);
        put_int(b, ",\"ttft_ms\":", (long long)a->ttft_ms);
        put_str(b, ",\"kind\":", a->kind);
        keel_buf_append(b, "}", 1);
    }
    keel_buf_append(b, "]", 1);
    put_int(b, ",\"prompt_bytes\":", (long long)rec->prompt_bytes);
    if (rec->has_usage) {
        put_int(b, ",\"usage\":{\"prompt_tokens\":", rec->prompt_tokens);
        put_int(b, ",\"completion_tokens\":", rec->completion_tokens);
        put_int(b, ",\"total_tokens\":", rec->total_tokens);
        keel_buf_append(b, "}", 1);
    } else {
        keel_buf_appends(b, ",\"usage\":null");
    }
    put_bool(b, ",\"client_gone\":", rec->client_gone);
    put_str(b, ",\"class\":", rec->cls);
    if (rec->error != NULL)
        put_str(b, ",\"error\":", rec->error);
    if (rec->protocol != NULL)
        put_str(b, ",\"protocol\":", rec->protocol);
    if (rec->has_cost) {
        char num[40];
        int n = snprintf(num, sizeof(num), "%.17g", rec->cost); /* exact, as jansson's reals */
        keel_buf_appends(b, ",\"cost\":");
        keel_buf_append(b, num, (size_t)n);
    }
    if (rec->key != NULL)
        put_str(b, ",\"key\":", rec->key);
    if (rec->continued)
        keel_buf_appends(b, ",\"continued\":true");
    keel_buf_append(b, "}", 1);
}

void keel_audit_format(struct keel_buf *b, const struct keel_audit_record *rec)
{
    keel_buf_reset(b);
    format_record(b, rec);
}

void keel_audit_record(struct keel_audit *a, const struct keel_audit_record *rec)
{
    if (a == NULL)
        return;
    keel_audit_format(&a->line, rec);
    if (a->line.base != NULL)
        keel_audit_line(a, a->line.base, a->line.len);
}
