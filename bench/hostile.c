/* hostile.c - bench/hostile: slow and hostile clients against keel, and the normal traffic whose
 * latency they must not hurt. Two modes, run as two processes by bench/hostile.sh:
 *   hostile attack PORT SLOWLORIS SLOWBODY SLOWREAD MODEL [TRICKLE_MS=300] [RECONNECT_MS=100] [MSS=1460]
 *     holds that many connections of each kind against PORT until SIGINT/SIGTERM, opening a new
 *     one (after RECONNECT_MS) for each that keel drops, then prints one line per kind: how many
 *     keel dropped, after how long, what it answered them, how many were still held at the end.
 *     "ready" goes to stderr once every connection has been opened once.
 *       slowloris: a request line and headers, one byte every TRICKLE_MS, never finished
 *       slow-body: whole headers with Content-Length: 102400, then one body byte every TRICKLE_MS
 *       slow-read: a streaming request for MODEL (a long stream), then its status line and one
 *                  byte a second, on a 4 KB receive buffer: the TCP window stays shut. Its SYN
 *                  advertises an MSS of MSS bytes (0: loopback's), as a client across a network
 *                  would. keel's end of it is looked up every 250 ms (keel_end_state)
 *   hostile load PORT MODEL CONNS RATE SECONDS
 *     non-stream chat requests for MODEL at RATE req/s in all over CONNS keep-alive connections
 *     (a connection sends its next request when it is due and its last one has answered), for
 *     SECONDS after a 1 s warm-up; one line: p50/p90/p99/max latency from send to the last byte;
 *     on stderr, each second's worst latency and answer count.
 * A load driver for bench/hostile.sh only: plain libuv, HTTP/1.1, 127.0.0.1. */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static uv_loop_t *loop;
static struct sockaddr_in addr;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static unsigned long arg_ul(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        fprintf(stderr, "hostile: bad %s \"%s\"\n", what, s);
        exit(2);
    }
    return v;
}

/* a growable array of durations; abort on out of memory (a bench driver) */
struct samples {
    uint32_t *v;
    size_t n, cap;
};

static void samples_add(struct samples *s, uint64_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (s->v == NULL)
            abort();
    }
    s->v[s->n++] = x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* sorts s; the q-quantile (0..1) of what it holds, 0 when empty */
static uint32_t quantile(struct samples *s, double q)
{
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof(*s->v), by_value);
    size_t i = (size_t)(q * (double)s->n);
    return s->v[i < s->n ? i : s->n - 1];
}

/* ================================================================== attack */

enum kind { SLOWLORIS, SLOWBODY, SLOWREAD, NKINDS };
static const char *kind_name[NKINDS] = {"slowloris", "slow-body", "slow-read"};

enum hstate {
    H_IDLE,       /* no socket: not opened yet, or waiting RECONNECT_MS to open again */
    H_CONNECTING, /* connect() in progress */
    H_OPEN,       /* connected, trickling */
    H_CLOSING     /* the poll handle is closing; the fd is closed in its close callback */
};

struct hconn {
    enum kind kind;
    enum hstate state;
    int fd;
    uv_poll_t poll; /* watches fd while CONNECTING/OPEN */
    uv_timer_t timer; /* the trickle while OPEN; the reconnect delay while IDLE */
    uint64_t opened_us; /* when connect() was called */
    size_t sent;        /* bytes of this kind's script sent so far */
    char answer[16];    /* the first bytes keel sent, if any: "HTTP/1.1 408" */
    size_t nanswer;
    uint16_t port;      /* our end's port, network order (slow-read: to look keel's end up) */
    unsigned ticks;     /* slow-read: trickle ticks while OPEN */
};

/* what happened to each kind over the whole run */
struct tally {
    size_t conns;         /* connections of this kind held at a time */
    uint64_t opens;       /* connect() calls */
    uint64_t connect_errors; /* socket/connect failures (refused, EMFILE) */
    uint64_t dropped;     /* closed by keel (EOF, reset, write error) after connecting */
    uint64_t unseen;      /* of those, slow-read ones keel closed with a FIN stuck behind unsent
                             data: only keel's end of the socket shows it (sock_diag) */
    struct samples ttd;   /* ms from connect() to the drop, one per dropped connection */
    uint64_t answered[6]; /* drops after an HTTP answer, by status class: [0] none, [1..5] 1xx..5xx */
    char statuses[128];   /* the distinct statuses seen, "408 503" */
    size_t open_now;      /* connected right now */
    uint64_t open_sum, open_samples; /* open_now sampled each second after ready */
    size_t open_min;
};

static struct hconn *hconns;
static size_t nhconns, opened_once;
static struct tally tally[NKINDS];
static unsigned trickle_ms = 300, reconnect_ms = 100;
static int read_mss = 1460; /* slow-read's advertised MSS; 0: loopback's own (65483) */
static int ready;
static char read_request[512];
static char body_headers[256];
static uv_timer_t opener, sampler;
static uv_signal_t sigint, sigterm;

/* slowloris never ends its headers: one more header line, forever */
static char loris_byte(size_t i)
{
    static const char head[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    static const char pad[] = "X-Slow-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    if (i < sizeof(head) - 1)
        return head[i];
    return pad[(i - (sizeof(head) - 1)) % (sizeof(pad) - 1)];
}

static void hconn_open(struct hconn *c);
static void on_hpoll(uv_poll_t *p, int status, int events);

static void note_status(struct tally *t, const struct hconn *c)
{
    if (c->nanswer < 12 || memcmp(c->answer, "HTTP/1.", 7) != 0 || c->answer[9] < '1' || c->answer[9] > '5') {
        t->answered[0]++;
        return;
    }
    t->answered[c->answer[9] - '0']++;
    char st[5] = {c->answer[9], c->answer[10], c->answer[11], ' ', '\0'};
    size_t used = strlen(t->statuses);
    if (strstr(t->statuses, st) == NULL && used + sizeof(st) <= sizeof(t->statuses))
        memcpy(t->statuses + used, st, sizeof(st));
}

static void on_reconnect(uv_timer_t *t)
{
    hconn_open(t->data);
}

static void on_hclosed(uv_handle_t *h)
{
    struct hconn *c = h->data;
    close(c->fd);
    c->fd = -1;
    c->state = H_IDLE;
    if (ready >= 0) /* not stopping: an attacker opens another one */
        uv_timer_start(&c->timer, on_reconnect, reconnect_ms, 0);
}

/* the socket is finished with: keel dropped it (dropped=1) or it never connected */
static void hconn_close(struct hconn *c, int dropped)
{
    struct tally *t = &tally[c->kind];
    uv_timer_stop(&c->timer);
    if (c->state == H_OPEN) {
        t->open_now--;
        if (dropped) {
            t->dropped++;
            samples_add(&t->ttd, (now_us() - c->opened_us) / 1000);
            note_status(t, c);
        }
    } else {
        t->connect_errors++;
    }
    /* closed with a reset: an attacker leaves nothing in TIME_WAIT, and a socket keel only
     * half-closed (see keel_end_state) is freed at once */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    c->state = H_CLOSING;
    uv_close((uv_handle_t *)&c->poll, on_hclosed);
}

static void keep_answer(struct hconn *c, const char *buf, ssize_t n)
{
    for (ssize_t i = 0; i < n && c->nanswer < sizeof(c->answer); i++)
        c->answer[c->nanswer++] = buf[i];
}

/* A slow reader can't see keel drop it when keel closes with a FIN (shutdown) rather than a
 * reset: the FIN waits behind the bytes the shut window never lets through, in an orphaned
 * socket. So the driver asks the kernel (sock_diag) for the state of keel's end of the
 * connection, as only a bench on the same host can: anything but ESTABLISHED means dropped. */
static int diag_fd = -1;

/* keel's end of c: its TCP state, 0 when there is no such socket, -1 when the lookup failed */
static int keel_end_state(const struct hconn *c)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req = {0};
    req.nlh.nlmsg_len = sizeof(req);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = AF_INET;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0u;
    req.r.id.idiag_sport = addr.sin_port;
    req.r.id.idiag_dport = c->port;
    req.r.id.idiag_src[0] = addr.sin_addr.s_addr;
    req.r.id.idiag_dst[0] = addr.sin_addr.s_addr;
    req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (diag_fd < 0 || send(diag_fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
        return -1;
    union {
        struct nlmsghdr h;
        char b[4096];
    } buf;
    ssize_t n = recv(diag_fd, &buf, sizeof(buf), 0);
    if (n < (ssize_t)sizeof(struct nlmsghdr))
        return -1;
    if (buf.h.nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(&buf.h);
        return e->error == -ENOENT ? 0 : -1;
    }
    if (buf.h.nlmsg_type != SOCK_DIAG_BY_FAMILY)
        return -1;
    return ((const struct inet_diag_msg *)NLMSG_DATA(&buf.h))->idiag_state;
}

/* one step of the trickle: a byte out (slowloris, slow-body); slow-read: every 250 ms a look at
 * keel's end, every fourth a byte in */
static void on_trickle(uv_timer_t *t)
{
    struct hconn *c = t->data;
    ssize_t n;
    if (c->state != H_OPEN)
        return;
    if (c->kind == SLOWREAD) {
        int state = keel_end_state(c);
        if (state >= 0 && state != 1 /* TCP_ESTABLISHED */) {
            tally[c->kind].unseen++;
            hconn_close(c, 1); /* with a reset (SO_LINGER 0): the orphan goes at once */
            return;
        }
        if (++c->ticks % 4 != 0)
            return;
        /* the status line at once (it says what keel answered), then a byte a second */
        char line[12];
        n = recv(c->fd, line, c->nanswer < sizeof(line) ? sizeof(line) - c->nanswer : 1, MSG_DONTWAIT);
        if (n > 0)
            keep_answer(c, line, n);
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            hconn_close(c, 1);
        return;
    }
    char b = c->kind == SLOWLORIS ? loris_byte(c->sent) : 'x';
    n = send(c->fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == 1)
        c->sent++;
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        hconn_close(c, 1);
}

/* all of buf, or -1; the connection has just connected, so its send buffer is empty */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void on_connected(struct hconn *c)
{
    struct tally *t = &tally[c->kind];
    int rv = 0;
    struct sockaddr_in me;
    socklen_t melen = sizeof(me);
    c->state = H_OPEN;
    c->ticks = 0;
    c->port = getsockname(c->fd, (struct sockaddr *)&me, &melen) == 0 ? me.sin_port : 0;
    t->open_now++;
    if (c->kind == SLOWREAD)
        rv = send_all(c->fd, read_request, strlen(read_request));
    else if (c->kind == SLOWBODY)
        rv = send_all(c->fd, body_headers, strlen(body_headers));
    if (rv != 0) {
        hconn_close(c, 1);
        return;
    }
    /* slow-read never asks to read: data stays in the kernel and the window shuts; a FIN or a
     * reset still wakes it (EPOLLRDHUP, EPOLLERR/EPOLLHUP are always reported) */
    uv_poll_start(&c->poll, c->kind == SLOWREAD ? UV_DISCONNECT : UV_READABLE | UV_DISCONNECT, on_hpoll);
    unsigned every = c->kind == SLOWREAD ? 250 : trickle_ms;
    uv_timer_start(&c->timer, on_trickle, (uint64_t)(rand() % every) + 1, every); /* spread, not in bursts */
}

static void on_hpoll(uv_poll_t *p, int status, int events)
{
    struct hconn *c = p->data;
    if (c->state == H_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (status < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            hconn_close(c, 0);
            return;
        }
        on_connected(c);
        return;
    }
    if (c->state != H_OPEN)
        return;
    /* slow-read asked only for UV_DISCONNECT: any wake-up (FIN, or EPOLLERR/EPOLLHUP, which
     * libuv reports as status < 0) is keel dropping it */
    if (status < 0 || c->kind == SLOWREAD || !(events & UV_READABLE)) {
        hconn_close(c, 1);
        return;
    }
    char buf[4096];
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
        keep_answer(c, buf, n);
        return; /* an answer: the EOF, if any, comes with the next wake-up */
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    hconn_close(c, 1);
}

static void hconn_open(struct hconn *c)
{
    struct tally *t = &tally[c->kind];
    c->sent = 0;
    c->nanswer = 0;
    c->opened_us = now_us();
    t->opens++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        t->connect_errors++;
        uv_timer_start(&c->timer, on_reconnect, reconnect_ms, 0);
        return;
    }
    if (c->kind == SLOWREAD) {
        int small = 4096; /* before connect, so the window scale stays small too */
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        /* an Ethernet-sized MSS in the SYN: keel's socket sizes its send buffer (2 x cwnd x MSS)
         * as for a client across a network, not loopback's 64 KB segments */
        if (read_mss > 0)
            setsockopt(c->fd, IPPROTO_TCP, TCP_MAXSEG, &read_mss, sizeof(read_mss));
    }
    if (connect(c->fd, (const struct sockaddr *)&addr, sizeof(addr)) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        t->connect_errors++;
        uv_timer_start(&c->timer, on_reconnect, reconnect_ms, 0);
        return;
    }
    c->state = H_CONNECTING;
    uv_poll_init(loop, &c->poll, c->fd);
    c->poll.data = c;
    uv_poll_start(&c->poll, UV_WRITABLE | UV_DISCONNECT, on_hpoll);
}

static void open_some(uv_timer_t *t)
{
    for (int i = 0; i < 20 && opened_once < nhconns; i++) /* 2,000 connections a second */
        hconn_open(&hconns[opened_once++]);
    if (opened_once == nhconns)
        uv_timer_stop(t);
}

/* ready: every connection opened once and 99% of them open, or 15 s gone by (keel refusing) */
static void sample_open(uv_timer_t *t)
{
    static unsigned seconds;
    size_t open = 0;
    for (int k = 0; k < NKINDS; k++)
        open += tally[k].open_now;
    seconds++;
    if (!ready && opened_once == nhconns && (open + nhconns / 100 >= nhconns || seconds >= 15)) {
        ready = 1;
        fprintf(stderr, "ready open=%zu of %zu after %us\n", open, nhconns, seconds);
    }
    if (ready <= 0)
        return;
    for (int k = 0; k < NKINDS; k++) {
        struct tally *tl = &tally[k];
        tl->open_sum += tl->open_now;
        tl->open_samples++;
        if (tl->open_samples == 1 || tl->open_now < tl->open_min)
            tl->open_min = tl->open_now;
    }
}

static void walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_stop(uv_signal_t *s, int signum)
{
    uint64_t now = now_us();
    ready = -1; /* no more reconnects */
    for (int k = 0; k < NKINDS; k++) {
        struct tally *t = &tally[k];
        struct samples held = {0};
        for (size_t i = 0; i < nhconns; i++)
            if ((int)hconns[i].kind == k && hconns[i].state == H_OPEN)
                samples_add(&held, (now - hconns[i].opened_us) / 1000);
        size_t nheld = held.n;
        printf("kind=%s conns=%zu opens=%llu dropped=%llu dropped_unseen=%llu ttd_ms_p50=%u ttd_ms_p99=%u ttd_ms_max=%u "
               "ttd_ms_min=%u answered_none=%llu answered_4xx=%llu answered_5xx=%llu statuses=%s "
               "connect_errors=%llu open_min=%zu open_avg=%.0f held_at_end=%zu held_age_ms_min=%u\n",
               kind_name[k], t->conns, (unsigned long long)t->opens, (unsigned long long)t->dropped,
               (unsigned long long)t->unseen,
               quantile(&t->ttd, 0.5), quantile(&t->ttd, 0.99), quantile(&t->ttd, 1), quantile(&t->ttd, 0),
               (unsigned long long)t->answered[0], (unsigned long long)t->answered[4],
               (unsigned long long)t->answered[5], t->statuses[0] ? t->statuses : "-",
               (unsigned long long)t->connect_errors, t->open_min,
               t->open_samples ? (double)t->open_sum / (double)t->open_samples : 0.0, nheld,
               quantile(&held, 0));
        free(held.v);
    }
    fflush(stdout);
    /* a reset, not a FIN: nothing lingers in TIME_WAIT between rounds */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    for (size_t i = 0; i < nhconns; i++)
        if (hconns[i].fd >= 0)
            setsockopt(hconns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    uv_walk(loop, walk_close, NULL);
}

static int attack(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: hostile attack PORT SLOWLORIS SLOWBODY SLOWREAD MODEL [TRICKLE_MS] [RECONNECT_MS] [MSS]\n");
        return 2;
    }
    size_t n[NKINDS] = {arg_ul(argv[3], "SLOWLORIS"), arg_ul(argv[4], "SLOWBODY"), arg_ul(argv[5], "SLOWREAD")};
    if (argc > 7)
        trickle_ms = (unsigned)arg_ul(argv[7], "TRICKLE_MS");
    if (argc > 8)
        reconnect_ms = (unsigned)arg_ul(argv[8], "RECONNECT_MS");
    if (argc > 9)
        read_mss = (int)arg_ul(argv[9], "MSS");
    if (trickle_ms == 0)
        trickle_ms = 1;
    char body[256];
    int bl = snprintf(body, sizeof(body),
                      "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", argv[6]);
    snprintf(read_request, sizeof(read_request),
             "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\n\r\n%s",
             bl, body);
    snprintf(body_headers, sizeof(body_headers),
             "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: 102400\r\n\r\n");
    diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag_fd < 0)
        fprintf(stderr, "hostile: no sock_diag (%s): a slow reader keel closes with a FIN goes unseen\n",
                strerror(errno));
    nhconns = n[0] + n[1] + n[2];
    hconns = calloc(nhconns ? nhconns : 1, sizeof(*hconns));
    if (hconns == NULL)
        return 1;
    /* interleave the kinds, so each ramps up at the same pace */
    size_t left[NKINDS] = {n[0], n[1], n[2]};
    for (size_t i = 0; i < nhconns;) {
        for (int k = 0; k < NKINDS && i < nhconns; k++) {
            if (left[k] == 0)
                continue;
            left[k]--;
            tally[k].conns++;
            struct hconn *c = &hconns[i++];
            c->kind = (enum kind)k;
            c->fd = -1;
            uv_timer_init(loop, &c->timer);
            c->timer.data = c;
        }
    }
    uv_timer_init(loop, &opener);
    uv_timer_init(loop, &sampler);
    uv_timer_start(&opener, open_some, 0, 10);
    uv_timer_start(&sampler, sample_open, 1000, 1000);
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigint, on_stop, SIGINT);
    uv_signal_start(&sigterm, on_stop, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

/* ================================================================== load */

struct lconn {
    uv_tcp_t tcp;
    uv_timer_t retry; /* 10 ms between a close and the next connect */
    uv_connect_t connect;
    uv_write_t write;
    int open;     /* connected and not closing */
    int busy;     /* a request is out */
    uint64_t due_us, sent_us;
    /* the response being read */
    char head[2048];
    size_t nhead;
    int in_body, chunked, status;
    size_t body_left;  /* Content-Length bytes left, or of the current chunk */
    int chunk_state;   /* chunked: 0 size line, 1 data, 2 CRLF after data, 3 trailer */
    char line[64];
    size_t nline;
};

static struct lconn *lconns;
static size_t nlconns;
static uint64_t period_us, start_us, measure_from_us, end_us;
static struct samples lat;
static uint32_t *sec_max, *sec_n; /* per second of the measured window: worst latency (µs), answers */
static uint64_t lreqs, lerrors, lreconnects, llate;
static char load_request[512];
static uv_timer_t pacer;

static void lconn_connect(struct lconn *c);

static void on_retry(uv_timer_t *t)
{
    lreconnects++;
    lconn_connect(t->data);
}

static void on_lclosed(uv_handle_t *h)
{
    struct lconn *c = h->data;
    if (now_us() < end_us)
        uv_timer_start(&c->retry, on_retry, 10, 0);
}

static void lconn_fail(struct lconn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->busy && c->sent_us >= measure_from_us)
        lerrors++;
    c->open = 0;
    c->busy = 0;
    uv_close((uv_handle_t *)&c->tcp, on_lclosed);
}

static void on_lalloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536];
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void response_done(struct lconn *c)
{
    uint64_t now = now_us();
    if (c->sent_us >= measure_from_us && c->sent_us < end_us) {
        lreqs++;
        if (c->status != 200)
            lerrors++;
        else
            samples_add(&lat, now - c->sent_us);
        size_t sec = (size_t)((c->sent_us - measure_from_us) / 1000000u);
        if (now - c->sent_us > sec_max[sec])
            sec_max[sec] = (uint32_t)(now - c->sent_us);
        sec_n[sec]++;
    }
    c->busy = 0;
    c->nhead = 0;
    c->in_body = 0;
}

/* the headers are complete in c->head: status, and how the body is framed */
static int parse_head(struct lconn *c)
{
    c->head[c->nhead] = '\0';
    if (sscanf(c->head, "HTTP/1.%*d %d", &c->status) != 1)
        return -1;
    c->chunked = strcasestr(c->head, "\ntransfer-encoding: chunked") != NULL;
    const char *cl = strcasestr(c->head, "\ncontent-length:");
    c->body_left = cl ? strtoul(cl + 16, NULL, 10) : 0;
    c->chunk_state = 0;
    c->nline = 0;
    c->in_body = 1;
    return 0;
}

/* consumes body bytes; returns how many of len it used, and calls response_done at the end */
static size_t eat_body(struct lconn *c, const char *p, size_t len)
{
    size_t used = 0;
    if (!c->chunked) {
        size_t take = len < c->body_left ? len : c->body_left;
        c->body_left -= take;
        if (c->body_left == 0)
            response_done(c);
        return take;
    }
    while (used < len && c->in_body) {
        if (c->chunk_state == 1) {
            size_t take = len - used < c->body_left ? len - used : c->body_left;
            c->body_left -= take;
            used += take;
            if (c->body_left == 0)
                c->chunk_state = 2;
            continue;
        }
        char ch = p[used++];
        if (ch != '\n') {
            if (c->nline < sizeof(c->line) - 1)
                c->line[c->nline++] = ch;
            continue;
        }
        c->line[c->nline] = '\0';
        c->nline = 0;
        if (c->chunk_state == 0) {
            c->body_left = strtoul(c->line, NULL, 16);
            c->chunk_state = c->body_left ? 1 : 3;
        } else if (c->chunk_state == 2) {
            c->chunk_state = 0;
        } else if (c->chunk_state == 3 && (c->line[0] == '\r' || c->line[0] == '\0')) {
            response_done(c);
        }
    }
    return used;
}

static void on_lread(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct lconn *c = s->data;
    if (nread < 0) {
        lconn_fail(c);
        return;
    }
    size_t i = 0, len = (size_t)nread;
    while (i < len) {
        if (!c->busy) { /* bytes nobody asked for */
            lconn_fail(c);
            return;
        }
        if (c->in_body) {
            i += eat_body(c, buf->base + i, len - i);
            continue;
        }
        c->head[c->nhead++] = buf->base[i++];
        if (c->nhead >= 4 && memcmp(c->head + c->nhead - 4, "\r\n\r\n", 4) == 0) {
            if (parse_head(c) != 0) {
                lconn_fail(c);
                return;
            }
            if (!c->chunked && c->body_left == 0)
                response_done(c);
        } else if (c->nhead == sizeof(c->head) - 1) {
            lconn_fail(c);
            return;
        }
    }
}

static void on_lconnect(uv_connect_t *req, int status)
{
    struct lconn *c = req->data;
    if (status < 0) {
        lconn_fail(c);
        return;
    }
    c->open = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_lalloc, on_lread);
}

static void lconn_connect(struct lconn *c)
{
    uv_tcp_init(loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c;
    c->connect.data = c;
    c->open = 0;
    c->busy = 0;
    if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, on_lconnect) != 0)
        lconn_fail(c);
}

static void pace(uv_timer_t *t)
{
    uint64_t now = now_us();
    if (now >= end_us) {
        uv_stop(loop);
        return;
    }
    for (size_t i = 0; i < nlconns; i++) {
        struct lconn *c = &lconns[i];
        if (!c->open || c->busy || now < c->due_us)
            continue;
        if (now - c->due_us > period_us) { /* behind: skip the missed slots, never burst */
            if (now >= measure_from_us)
                llate++;
            c->due_us = now;
        }
        c->due_us += period_us;
        c->busy = 1;
        c->nhead = 0;
        c->in_body = 0;
        c->sent_us = now;
        uv_buf_t b = uv_buf_init(load_request, (unsigned)strlen(load_request));
        if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, NULL) != 0)
            lconn_fail(c);
    }
}

static int load(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: hostile load PORT MODEL CONNS RATE SECONDS\n");
        return 2;
    }
    nlconns = arg_ul(argv[4], "CONNS");
    unsigned long rate = arg_ul(argv[5], "RATE"), secs = arg_ul(argv[6], "SECONDS");
    if (nlconns == 0 || rate == 0) {
        fprintf(stderr, "hostile: CONNS and RATE must be > 0\n");
        return 2;
    }
    char body[256];
    int bl = snprintf(body, sizeof(body), "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}",
                      argv[3]);
    snprintf(load_request, sizeof(load_request),
             "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\n\r\n%s",
             bl, body);
    period_us = (uint64_t)nlconns * 1000000u / rate;
    start_us = now_us();
    measure_from_us = start_us + 1000000u;
    end_us = measure_from_us + secs * 1000000u;
    lconns = calloc(nlconns, sizeof(*lconns));
    sec_max = calloc(secs + 1, sizeof(*sec_max));
    sec_n = calloc(secs + 1, sizeof(*sec_n));
    if (lconns == NULL || sec_max == NULL || sec_n == NULL)
        return 1;
    for (size_t i = 0; i < nlconns; i++) {
        lconns[i].due_us = start_us + period_us * i / nlconns; /* spread over the period */
        uv_timer_init(loop, &lconns[i].retry);
        lconns[i].retry.data = &lconns[i];
        lconn_connect(&lconns[i]);
    }
    uv_timer_init(loop, &pacer);
    uv_timer_start(&pacer, pace, 1, 1);
    uv_run(loop, UV_RUN_DEFAULT);
    printf("load rate=%lu conns=%zu reqs=%llu rps=%.0f p50_us=%u p90_us=%u p99_us=%u p999_us=%u max_us=%u "
           "errors=%llu reconnects=%llu late=%llu\n",
           rate, nlconns, (unsigned long long)lreqs, (double)lreqs / (double)secs, quantile(&lat, 0.5),
           quantile(&lat, 0.9), quantile(&lat, 0.99), quantile(&lat, 0.999), quantile(&lat, 1),
           (unsigned long long)lerrors, (unsigned long long)lreconnects, (unsigned long long)llate);
    /* where the slow answers were: the worst latency (ms) of each second, and its answers */
    fprintf(stderr, "timeline_max_ms");
    for (unsigned long i = 0; i < secs; i++)
        fprintf(stderr, " %.1f/%u", sec_max[i] / 1000.0, sec_n[i]);
    fprintf(stderr, "\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: hostile attack PORT SLOWLORIS SLOWBODY SLOWREAD MODEL [TRICKLE_MS] [RECONNECT_MS] [MSS]\n"
                        "       hostile load PORT MODEL CONNS RATE SECONDS\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    loop = uv_default_loop();
    uv_ip4_addr("127.0.0.1", (int)arg_ul(argv[2], "PORT"), &addr);
    if (strcmp(argv[1], "attack") == 0)
        return attack(argc, argv);
    if (strcmp(argv[1], "load") == 0)
        return load(argc, argv);
    fprintf(stderr, "hostile: unknown mode \"%s\"\n", argv[1]);
    return 2;
}
