/* demo.c - `keel demo`: starts `keel sim` and `keel serve` as child processes on free loopback
 * ports, sends an agent's requests through models whose primary fails the way one of the seeds
 * saw in the wild, and prints what keel did beside what a client without keel got.
 * Blocking libcurl is fine here: this is a client. */
#include "demo.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/units.h"

struct child {
    pid_t pid;
    char log[512];
};

static char dir[256];

static int spawn(struct child *c, const char *self, const char *name, char *const argv[])
{
    snprintf(c->log, sizeof(c->log), "%s/%s.log", dir, name);
    c->pid = fork();
    if (c->pid < 0)
        return -1;
    if (c->pid == 0) {
        FILE *f = freopen(c->log, "w", stderr);
        if (f == NULL)
            _exit(127);
        execv(self, argv);
        _exit(127);
    }
    return 0;
}

/* waits (bounded) for "<marker>...:PORT" in a child's log; returns the port or -1 */
static int wait_port(struct child *c, const char *marker)
{
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(c->log, "r");
        char line[1024];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            char *m = strstr(line, marker);
            if (m == NULL)
                continue;
            char *colon = strchr(m + strlen(marker), ':');
            fclose(f);
            char digits[8] = "";
            for (size_t k = 0; colon && k < sizeof(digits) - 1 && colon[1 + k] >= '0' && colon[1 + k] <= '9'; k++)
                digits[k] = colon[1 + k];
            uint64_t port;
            return keel_parse_uint(digits, &port) == 0 && port < 65536 ? (int)port : -1;
        }
        if (f != NULL)
            fclose(f);
        int status;
        if (waitpid(c->pid, &status, WNOHANG) == c->pid)
            return -1;
        usleep(50000);
    }
    return -1;
}

static void stop(struct child *c)
{
    if (c->pid <= 0)
        return;
    kill(c->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(c->pid, NULL, WNOHANG) == c->pid)
            return;
        usleep(20000);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
}

struct answer {
    long status;
    char upstream[64], model[64], attempts[1024];
    char body[65536];
    size_t body_len;
    double secs;
};

static size_t on_header(char *buf, size_t size, size_t n, void *userp)
{
    struct answer *a = userp;
    size_t len = size * n;
    struct {
        const char *name;
        char *dst;
        size_t cap;
    } want[] = {{"x-keel-upstream:", a->upstream, sizeof(a->upstream)},
                {"x-keel-model:", a->model, sizeof(a->model)},
                {"x-keel-attempts:", a->attempts, sizeof(a->attempts)}};
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(want[i].name);
        if (len > l && strncasecmp(buf, want[i].name, l) == 0) {
            size_t v = l;
            while (v < len && buf[v] == ' ')
                v++;
            size_t e = len;
            while (e > v && (buf[e - 1] == '\r' || buf[e - 1] == '\n'))
                e--;
            snprintf(want[i].dst, want[i].cap, "%.*s", (int)(e - v), buf + v);
        }
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *userp)
{
    struct answer *a = userp;
    size_t len = size * n;
    size_t room = sizeof(a->body) - 1 - a->body_len;
    size_t take = len < room ? len : room;
    memcpy(a->body + a->body_len, buf, take);
    a->body_len += take;
    a->body[a->body_len] = '\0';
    return len;
}

/* one agent turn, as an OpenAI client or (claude) as an Anthropic Messages client */
static void ask_as(int port, const char *model, int stream, int claude, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    char url[128], body[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/%s", port, claude ? "messages" : "chat/completions");
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"stream\":%s,%s\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}",
             model, stream ? "true" : "false", claude ? "\"max_tokens\":100," : "");
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    curl_easy_perform(e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a->status);
    a->secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
}

static void ask(int port, const char *model, int stream, struct answer *a)
{
    ask_as(port, model, stream, 0, a);
}

/* "up/model;class=C;status=S;ms=M, ..." -> "C -> C -> ok" */
static void classes(const char *attempts, char *dst, size_t n)
{
    size_t off = 0;
    dst[0] = '\0';
    for (const char *p = strstr(attempts, "class="); p != NULL && off < n; p = strstr(p + 1, "class=")) {
        const char *v = p + 6, *e = strchr(v, ';');
        size_t l = e ? (size_t)(e - v) : strlen(v);
        int w = snprintf(dst + off, n - off, "%s%.*s", off ? " > " : "", (int)l, v);
        off += w > 0 ? (size_t)w : 0;
    }
}

/* GET /admin/status, parsed; NULL on failure. The caller decrefs. */
static json_t *admin_status(int admin)
{
    struct answer a;
    memset(&a, 0, sizeof(a));
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/status", admin);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
    curl_easy_perform(e);
    curl_easy_cleanup(e);
    return json_loads(a.body, 0, NULL);
}

/* /admin/status's backend of upstream (and model, for a control plane's), or NULL; borrowed from root */
static json_t *backend_in(json_t *root, const char *upstream, const char *model)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(root, "backends"), i, b)
    {
        const char *u = json_string_value(json_object_get(b, "upstream")), *m = json_string_value(json_object_get(b, "model"));
        if (u != NULL && strcmp(u, upstream) == 0 && (model == NULL || (m != NULL && strcmp(m, model) == 0)))
            return b;
    }
    return NULL;
}

/* the managed backend's pid, port and restarts */
static void backend_of(int admin, int *pid, int *port, long *restarts)
{
    json_t *root = admin_status(admin);
    json_t *b = backend_in(root, "local", NULL);
    *pid = (int)json_integer_value(json_object_get(b, "pid"));
    *port = (int)json_integer_value(json_object_get(b, "port"));
    *restarts = (long)json_integer_value(json_object_get(b, "restarts"));
    json_decref(root);
}

/* the primary's breaker in the storm model */
static void breaker_of(int admin, char *dst, size_t n)
{
    snprintf(dst, n, "?");
    json_t *root = admin_status(admin);
    size_t i, j;
    json_t *m, *t;
    json_array_foreach(json_object_get(root, "models"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")) ?: "", "storm2") != 0)
            continue;
        json_array_foreach(json_object_get(m, "targets"), j, t)
        {
            if (strcmp(json_string_value(json_object_get(t, "upstream")) ?: "", "primary") != 0)
                continue;
            const char *state = json_string_value(json_object_get(t, "breaker"));
            json_int_t left = json_integer_value(json_object_get(t, "cooldown_left_ms"));
            if (left > 0)
                snprintf(dst, n, "%s, %.1fs left", state ? state : "?", (double)left / 1000.0);
            else
                snprintf(dst, n, "%s", state ? state : "?");
        }
    }
    json_decref(root);
}

/* the drift model's cliff watch: 1 when keel warned */
static int near_cliff(int admin)
{
    json_t *root = admin_status(admin);
    size_t i;
    json_t *m;
    int near = 0;
    json_array_foreach(json_object_get(root, "models"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")) ?: "", "drift") == 0)
            near = json_is_true(json_object_get(json_object_get(m, "cliff"), "near"));
    }
    json_decref(root);
    return near;
}

/* seed 000: latency, not error rate, is the early warning */
static int drift(int port, int admin)
{
    printf("  Tail latency drifting toward the cliff (seed 000): every answer below is a 200, each a bit\n"
           "  slower. The clients cancel at 2.5s (cliff: 2500ms); keel warns 1s before (cliff_margin: 1s).\n\n");
    int warned_at = 0, ok = 1;
    double worst = 0;
    for (int i = 1; i <= 10 && warned_at == 0; i++) {
        struct answer a;
        ask(port, "drift", 0, &a);
        int near = near_cliff(admin);
        printf("  request %2d: %ld in %.2fs   cliff watch: %s\n", i, a.status, a.secs,
               near ? "NEAR THE CLIFF (warning logged, event sent)" : "ok");
        fflush(stdout);
        ok &= a.status == 200;
        worst = a.secs > worst ? a.secs : worst;
        if (near)
            warned_at = i;
    }
    ok &= warned_at > 0 && worst < 2.5;
    printf("\n  %s\n\n", ok ? "The warning fired before any request reached the cliff: nothing was lost."
                           : "No warning before the cliff   <-- UNEXPECTED");
    return ok;
}

/* seed 002: the local server is evicted behind keel's back; the next chat must not see it */
static int eviction(int port, int admin)
{
    printf("  Silent eviction (seed 002): keel runs a local server (a `keel sim`) on a port it picked.\n"
           "  The server is killed (as an OOM or idle eviction would) between two chats.\n\n");
    int pid0 = 0, port0 = 0, pid1 = 0, port1 = 0;
    long r0 = 0, r1 = 0;
    for (int i = 0; i < 100 && pid0 == 0; i++) {
        backend_of(admin, &pid0, &port0, &r0);
        if (pid0 == 0)
            usleep(50000);
    }
    struct answer a;
    ask(port, "local", 0, &a);
    printf("  chat 1: %ld from %-8s  (local server pid %d, port %d)\n", a.status, a.upstream, pid0, port0);
    kill(pid0, SIGKILL);
    printf("  kill -9 %d\n", pid0);
    usleep(20000);
    ask(port, "local", 1, &a);
    backend_of(admin, &pid1, &port1, &r1);
    printf("  chat 2: %ld from %-8s  (local server pid %d, port %d, restarts %ld) in %.2fs\n\n", a.status,
           a.upstream, pid1, port1, r1, a.secs);
    int ok = a.status == 200 && strcmp(a.upstream, "local") == 0 && port1 == port0 && pid1 != pid0 && r1 == 1;
    printf("  %s\n\n", ok ? "keel restarted it on the same port and the chat never saw the eviction."
                           : "The eviction was not healed as promised   <-- UNEXPECTED");
    return ok;
}

/* the control plane's model as keel sees it: its data-plane URL ("" when none) and recoveries */
static void control_of(int admin, char *url, size_t n, long *recoveries)
{
    json_t *root = admin_status(admin);
    json_t *b = backend_in(root, "lemonade", "healthy");
    snprintf(url, n, "%s", json_string_value(json_object_get(b, "url")) ?: "");
    *recoveries = (long)json_integer_value(json_object_get(b, "recoveries"));
    json_decref(root);
}

/* POSTs body to the control plane's path; the HTTP status */
static long control_post(int ctl, const char *path, const char *body)
{
    struct answer a;
    memset(&a, 0, sizeof(a));
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", ctl, path);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
    curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a.status);
    curl_easy_cleanup(e);
    return a.status;
}

/* seed 002 as it happened: the server belongs to a control plane, which evicts it behind its own
 * back, keeps listing it, and respawns it on a port of its own choosing */
static int control_plane(int port, int admin, int ctl)
{
    printf("  Seed 002 as it happened: a control plane (`keel sim --control`, as Lemonade's lemond) runs the\n"
           "  model's server on a port of its own choosing; keel sends chat straight to that server. The\n"
           "  server is evicted behind the control plane's back, and the control plane keeps listing it.\n\n");
    char url0[256], url1[256];
    long rec0 = 0, rec1 = 0;
    struct answer a;
    ask(port, "lemon", 0, &a);
    control_of(admin, url0, sizeof(url0), &rec0);
    int ok = a.status == 200;
    printf("  chat 1: %ld from %-9s (keel had it loaded; the control plane says it is at %s)\n", a.status, a.upstream,
           url0);
    long evicted = control_post(ctl, "/sim/evict", "{\"model_name\":\"healthy\"}");
    printf("  the server is killed; the control plane still lists it at %s\n", url0);
    ask(port, "lemon", 1, &a);
    control_of(admin, url1, sizeof(url1), &rec1);
    printf("  chat 2: %ld from %-9s in %.2fs (unload, load, URL read back: %s; recoveries %ld)\n\n", a.status,
           a.upstream, a.secs, url1, rec1);
    ok &= evicted == 200 && a.status == 200 && strcmp(url0, url1) != 0 && url1[0] != '\0' && rec1 == rec0 + 1;
    printf("  %s\n\n", ok ? "keel had the control plane reload it, followed it to its new port, and the chat never "
                           "saw the eviction."
                         : "The eviction was not healed as promised   <-- UNEXPECTED");
    return ok;
}

/* seed 004: a broken target costs nothing once found broken, and comes back by itself */
static int storm(int port, int admin)
{
    printf("  503 storm and the circuit breaker (seed 004): the primary fails its first 4 requests, then\n"
           "  heals. Its breaker: 3 failures open it, 1s cooldown, then one probe.\n\n");
    printf("  %6s  %-44s %-9s %s\n", "t", "attempts", "answered", "primary's breaker after");
    int ok = 1, back = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 32 && back < 2; i++) {
        struct answer a;
        ask(port, "storm2", 0, &a);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        char cls[256], br[64];
        classes(a.attempts, cls, sizeof(cls));
        breaker_of(admin, br, sizeof(br));
        double t = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("  %5.2fs  %-44s %-9s %s\n", t, cls, a.upstream, br);
        fflush(stdout);
        ok &= a.status == 200;
        back = strcmp(a.upstream, "primary") == 0 ? back + 1 : 0;
        usleep(250000);
    }
    printf("\n  %s\n\n", back >= 2 ? "Found broken after 3 failures, skipped at no cost while open, probed once "
                                   "per cooldown,\n  and back in service after its first good probe."
                                 : "The primary did not come back   <-- UNEXPECTED");
    return ok && back >= 2;
}

enum expect { ANSWERED, CONTINUED, RETURNED_400 };

struct scenario {
    const char *failure;  /* what the provider does, and the seed it comes from */
    const char *model;    /* the alias the agent asks for */
    int stream;
    int claude;           /* the agent speaks Anthropic Messages (POST /v1/messages) */
    enum expect expect;
    const char *upstream; /* who should answer */
    const char *without;  /* what a client without keel got, per the seeds */
};

static const struct scenario scenarios[] = {
    {"hangs, never answers (000)", "hang", 1, 0, ANSWERED, "backup", "600 s, then a 502"},
    {"heartbeats, no tokens (001)", "heartbeat", 1, 0, ANSWERED, "backup", "15+ min; fallback never tried"},
    {"Anthropic pings, no tokens (001)", "seed001", 1, 0, ANSWERED, "backup", "15+ min; fallback never tried"},
    {"the same, to a Claude client (001)", "seed001", 1, 1, ANSWERED, "backup", "15+ min; fallback never tried"},
    {"Anthropic 529 overloaded", "overloaded", 0, 0, ANSWERED, "backup", "the error, or retries on it"},
    {"503 storm (000)", "storm", 0, 0, ANSWERED, "backup", "3 retries on the same model, then dies"},
    {"200 with no choices (000)", "empty", 0, 0, ANSWERED, "backup", "an empty 'success'"},
    {"INTERNAL_ERROR before content (000)", "crash", 1, 0, ANSWERED, "backup", "the error, mid-turn"},
    {"connection dropped (002)", "drop", 0, 0, ANSWERED, "backup", "a 502"},
    {"429 with Retry-After: 1", "limited", 0, 0, ANSWERED, "primary", "a 429 to the agent"},
    {"cut mid-stream (000)", "cut", 1, 0, CONTINUED, "backup", "a truncated answer that looks complete"},
    {"the client's own 400 (003)", "bad", 0, 0, RETURNED_400, "primary", "walks the whole chain, failing each"},
};

static const char config_fmt[] =
    "listen: 127.0.0.1:0\n"
    "admin_listen: 127.0.0.1:0\n"
    "cliff_margin: 1s\n"
    "defaults:\n"
    "  timeouts: { connect: 2s, first_byte: 3s, stall: 3s, total: 30s }\n"
    "  retry: { same_target: 0, backoff: 100ms, max_wait: 5s }\n"
    "upstreams:\n"
    "  - { name: primary, kind: openai, base_url: \"http://127.0.0.1:%d/v1\", api_key: demo-key-a }\n"
    "  - { name: backup, kind: openai, base_url: \"http://127.0.0.1:%d/v1\", api_key: demo-key-b }\n"
    "  - { name: claude, kind: anthropic, base_url: \"http://127.0.0.1:%d/v1\", api_key: demo-key-c }\n"
    "  - name: local\n"
    "    base_url: \"http://127.0.0.1:{port}/v1\"\n"
    "    managed: { command: [\"%s\", sim, --listen, \"127.0.0.1:{port}\"], ready_probe: true }\n"
    "  - name: lemonade\n"
    "    control: { url: \"http://127.0.0.1:%d/api/v1\", load_timeout: 10s }\n"
    "models:\n"
    "  - { name: hang,      targets: [ { upstream: primary, model: hang }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: heartbeat, targets: [ { upstream: primary, model: \"heartbeat-only:500\" }, { upstream: backup, model: healthy } ] }\n"
    /* seed 001's own chain: an Anthropic primary kept alive by pings, an OpenAI fallback */
    "  - { name: seed001,   targets: [ { upstream: claude, model: \"pings-only:500\" }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: overloaded, targets: [ { upstream: claude, model: \"529\" }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: storm,     targets: [ { upstream: primary, model: \"503\" }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: empty,     targets: [ { upstream: primary, model: empty-choices }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: crash,     targets: [ { upstream: primary, model: error-before-content }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: drop,      targets: [ { upstream: primary, model: reset-before-headers }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: limited,   targets: [ { upstream: primary, model: \"rate-limit-then-heal:1\" }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: cut,       targets: [ { upstream: primary, model: reset-mid-stream }, { upstream: backup, model: prefill, continuation: prefill } ] }\n"
    "  - { name: bad,       targets: [ { upstream: primary, model: \"400\" }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: local, targets: [ { upstream: local, model: healthy }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: lemon, targets: [ { upstream: lemonade, model: healthy } ] }\n"
    "  - { name: drift, cliff: 2500ms, targets: [ { upstream: primary, model: \"drift:200\" } ] }\n"
    "  - name: storm2\n"
    "    targets:\n"
    "      - { upstream: primary, model: \"fail-then-heal:4#storm\", breaker: { failures: 3, cooldown: 1s } }\n"
    "      - { upstream: backup, model: healthy }\n";

/* an OpenAI stream's text: its chunks' content deltas joined into dst */
static void streamed_text(const char *body, char *dst, size_t n)
{
    size_t off = 0;
    dst[0] = '\0';
    for (const char *p = strstr(body, "data: {"); p != NULL; p = strstr(p + 1, "data: {")) {
        const char *e = strchr(p, '\n');
        json_t *chunk = json_loadb(p + 6, e ? (size_t)(e - p - 6) : strlen(p + 6), 0, NULL);
        json_t *c = json_object_get(json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta"),
                                    "content");
        if (json_is_string(c) && off < n)
            off += (size_t)snprintf(dst + off, n - off, "%s", json_string_value(c));
        json_decref(chunk);
    }
}

/* what keel did, in a few words, from the answer */
static void describe(const struct scenario *s, struct answer *a, char *dst, size_t n, int *ok)
{
    char cls[256];
    classes(a->attempts, cls, sizeof(cls));
    /* a whole stream ends with its protocol's end: [DONE], or Anthropic's message_stop */
    int done = strstr(a->body, s->claude ? "event: message_stop" : "data: [DONE]") != NULL;
    int error_event = strstr(a->body, "\"error\"") != NULL;
    switch (s->expect) {
    case ANSWERED:
        *ok = a->status == 200 && strcmp(a->upstream, s->upstream) == 0 && (!s->stream || done);
        snprintf(dst, n, "%s", cls);
        break;
    case CONTINUED: {
        /* the backup finished the answer: the client reads it whole, exactly once, then [DONE];
         * the stream's headers named the primary, the SSE comment names who continued */
        char text[1024];
        streamed_text(a->body, text, sizeof(text));
        const char *on = strstr(a->body, ": keel continues the answer on ");
        if (on != NULL)
            snprintf(a->upstream, sizeof(a->upstream), "%.*s", (int)strcspn(on + 31, "/"), on + 31);
        *ok = a->status == 200 && done && !error_event && strcmp(text, "Hello from the keel simulator.") == 0 &&
              strcmp(a->upstream, s->upstream) == 0;
        /* the comment's "after primary/MODEL: CLASS (...)": the class that broke the stream */
        const char *after = on ? strstr(on, " after ") : NULL, *why = after ? strstr(after, ": ") : NULL;
        snprintf(dst, n, "%.*s > continued: whole, once", why ? (int)strcspn(why + 2, " (") : 1, why ? why + 2 : "?");
        break;
    }
    case RETURNED_400:
        *ok = a->status == 400 && strcmp(a->upstream, s->upstream) == 0 && strstr(a->attempts, ", ") == NULL;
        snprintf(dst, n, "returned as is, backup untouched");
        break;
    }
}

int keel_demo_run(const char *self)
{
    char exe[512];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (l > 0) {
        exe[l] = '\0';
        self = exe;
    }
    snprintf(dir, sizeof(dir), "%s/keel-demo-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "keel demo: cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct child sim = {0}, gw = {0}, ctl = {0};
    char *sim_argv[] = {(char *)self, "sim", "--listen", "127.0.0.1:0", NULL};
    char *ctl_argv[] = {(char *)self, "sim", "--control", "--listen", "127.0.0.1:0", NULL};
    int rc = 1;
    if (spawn(&sim, self, "sim", sim_argv) != 0 || spawn(&ctl, self, "control", ctl_argv) != 0)
        goto out;
    int sim_port = wait_port(&sim, "sim listening on ");
    int ctl_port = wait_port(&ctl, "sim control plane listening on ");
    if (sim_port <= 0 || ctl_port <= 0) {
        fprintf(stderr, "keel demo: the simulator did not start (see %s and %s)\n", sim.log, ctl.log);
        goto out;
    }
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%s/keel.yaml", dir);
    FILE *f = fopen(cfg, "w");
    if (f == NULL)
        goto out;
    fprintf(f, config_fmt, sim_port, sim_port, sim_port, self, ctl_port);
    fclose(f);
    char *gw_argv[] = {(char *)self, "serve", "-c", cfg, NULL};
    if (spawn(&gw, self, "keel", gw_argv) != 0)
        goto out;
    int port = wait_port(&gw, "listening api=");
    int admin = wait_port(&gw, " admin=");
    if (port <= 0) {
        fprintf(stderr, "keel demo: keel did not start (see %s)\n", gw.log);
        goto out;
    }

    printf("\nkeel demo: an agent talks to keel (127.0.0.1:%d). keel's providers are `keel sim`\n"
           "(127.0.0.1:%d), told by the model name how to misbehave. Every model has a primary\n"
           "that fails the way a real incident (a seed, numbered) did, and a backup behind it.\n"
           "Deadlines here: first_byte 3s, stall 3s, total 30s.\n\n",
           port, sim_port);
    printf("  %-37s %-6s %-34s %7s  %-16s %s\n", "provider failure (seed)", "mode", "what keel did", "time",
           "answered by", "without keel");
    printf("  %-37s %-6s %-34s %7s  %-16s %s\n", "-----------------------", "----", "-------------", "----",
           "-----------", "------------");
    int ok = 1;
    double total = 0;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        const struct scenario *s = &scenarios[i];
        struct answer a;
        ask_as(port, s->model, s->stream, s->claude, &a);
        char did[256], who[160];
        int this_ok = 0;
        describe(s, &a, did, sizeof(did), &this_ok);
        snprintf(who, sizeof(who), "%ld %s", a.status, a.upstream);
        printf("  %-37s %-6s %-34s %6.2fs  %-16s %s%s\n", s->failure, s->stream ? "stream" : "json", did, a.secs,
               who, s->without, this_ok ? "" : "   <-- UNEXPECTED");
        fflush(stdout);
        ok &= this_ok;
        total += a.secs;
    }
    printf("\n  %zu agent turns, %.1f s in all. Without keel the first four alone cost the agent\n"
           "  10 to 15 minutes each; with it, each cost one first_byte deadline and the backup answered\n"
           "  (the Claude client's in Anthropic's events, translated from the OpenAI backup's).\n\n",
           sizeof(scenarios) / sizeof(scenarios[0]), total);
    ok &= storm(port, admin);
    ok &= eviction(port, admin);
    ok &= control_plane(port, admin, ctl_port);
    ok &= drift(port, admin);
    printf("  Logs: %s\n\n", dir);
    rc = ok ? 0 : 1;
    if (!ok)
        fprintf(stderr, "keel demo: an answer was not what keel promises (see the table and %s)\n", gw.log);
out:
    stop(&gw);
    stop(&ctl);
    stop(&sim);
    curl_global_cleanup();
    return rc;
}
