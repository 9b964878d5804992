/* streams.c - bench/streams: holds N concurrent SSE streams open against keel (or keel sim
 * directly) on model "ticks:MS", whose chunks carry the sim's send time, and measures every
 * chunk's one-way delay while all N are open. With a PID it also samples that process's RSS and
 * open fds at the plateau. One result line on stdout; exits 1 if the plateau is never reached.
 *   streams PORT MODEL N HOLD_SECONDS [PID]
 * A load driver for bench/bench.sh only: plain libuv, HTTP/1.1, 127.0.0.1. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

struct conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    char line[512]; /* the response's current line, [0, nline) */
    size_t nline;
    int first; /* has had a tick */
    int open;
};

static struct conn *conns;
static size_t n, started, firsts, errors, closed_early;
static uint32_t *delays; /* µs, only while all n are open */
static size_t ndelays, capdelays;
static int plateau, pid;
static unsigned hold_s;
static char request[512];
static uv_loop_t *loop;
static uv_timer_t opener, holder, sampler, giveup;
static long rss_kb = -1, fds = -1;
static uint64_t plateau_at_us;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536];
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void on_line(struct conn *c, const char *line, size_t len)
{
    const char *t = memmem(line, len, "\"content\":\"T", 12);
    if (t == NULL)
        return;
    uint64_t sent = strtoull(t + 12, NULL, 10), now = now_us();
    if (!c->first) {
        c->first = 1;
        if (++firsts == n) {
            plateau = 1;
            plateau_at_us = now;
            uv_timer_start(&holder, stop, (uint64_t)hold_s * 1000, 0);
        }
        return;
    }
    if (!plateau)
        return;
    if (ndelays == capdelays) {
        capdelays = capdelays ? capdelays * 2 : 65536;
        delays = realloc(delays, capdelays * sizeof(*delays));
        if (delays == NULL)
            abort();
    }
    delays[ndelays++] = now > sent ? (uint32_t)(now - sent) : 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        if (c->open && !plateau)
            closed_early++;
        if (c->open && plateau)
            errors++; /* a stream lost while measuring */
        c->open = 0;
        uv_close((uv_handle_t *)s, NULL);
        return;
    }
    for (ssize_t i = 0; i < nread; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            on_line(c, c->line, c->nline);
            c->nline = 0;
        } else if (c->nline < sizeof(c->line)) {
            c->line[c->nline++] = ch;
        }
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0) {
        errors++;
        uv_close((uv_handle_t *)&c->tcp, NULL);
        return;
    }
    c->open = 1;
    uv_buf_t b = uv_buf_init(request, (unsigned)strlen(request));
    uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, NULL);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void open_some(uv_timer_t *t)
{
    static struct sockaddr_in addr;
    static int port = -1;
    if (port < 0) {
        port = (int)(intptr_t)t->data;
        uv_ip4_addr("127.0.0.1", port, &addr);
    }
    for (int i = 0; i < 50 && started < n; i++, started++) { /* 10k connections a second */
        struct conn *c = &conns[started];
        uv_tcp_init(loop, &c->tcp);
        c->tcp.data = c;
        c->connect.data = c;
        if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, on_connect) != 0) {
            errors++;
            uv_close((uv_handle_t *)&c->tcp, NULL);
        }
    }
    if (started == n)
        uv_timer_stop(t);
}

static void sample(uv_timer_t *t)
{
    char path[64], line[256];
    if (!plateau || pid <= 0)
        return;
    uv_timer_stop(t);
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            rss_kb = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    for (fds = 0; d != NULL && readdir(d) != NULL;)
        fds++;
    if (d != NULL) {
        closedir(d);
        fds -= 2; /* . and .. */
    }
}

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: streams PORT MODEL N HOLD_SECONDS [PID]\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int port = atoi(argv[1]);
    n = strtoul(argv[3], NULL, 10);
    hold_s = (unsigned)strtoul(argv[4], NULL, 10);
    pid = argc > 5 ? atoi(argv[5]) : 0;
    char body[256];
    int bl = snprintf(body, sizeof(body),
                      "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", argv[2]);
    snprintf(request, sizeof(request),
             "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\n\r\n%s",
             bl, body);
    conns = calloc(n, sizeof(*conns));
    loop = uv_default_loop();
    uv_timer_init(loop, &opener);
    uv_timer_init(loop, &holder);
    uv_timer_init(loop, &sampler);
    uv_timer_init(loop, &giveup);
    opener.data = (void *)(intptr_t)port;
    uv_timer_start(&opener, open_some, 0, 5);
    uv_timer_start(&sampler, sample, 1000, 250);
    uv_timer_start(&giveup, stop, 60000 + (uint64_t)hold_s * 1000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    if (!plateau) {
        printf("streams=%zu/%zu open=never errors=%zu closed_early=%zu\n", firsts, n, errors, closed_early);
        return 1;
    }
    qsort(delays, ndelays, sizeof(*delays), by_value);
    uint32_t p50 = ndelays ? delays[ndelays / 2] : 0, p99 = ndelays ? delays[ndelays * 99 / 100] : 0,
             max = ndelays ? delays[ndelays - 1] : 0;
    printf("streams=%zu chunks=%zu delay_us_p50=%u delay_us_p99=%u delay_us_max=%u rss_kb=%ld fds=%ld errors=%zu "
           "held_s=%.1f\n",
           n, ndelays, p50, p99, max, rss_kb, fds, errors + closed_early, (double)(now_us() - plateau_at_us) / 1e6);
    return 0;
}
