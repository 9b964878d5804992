/* demo.c - `keel demo`: starts `keel sim` and `keel serve` as child processes on free loopback
 * ports, sends an agent's requests through models whose first target fails in a different way
 * each time, and prints what keel did. Blocking libcurl is fine here: this is a client. */
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
    char body[4096];
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

static void ask(int port, const char *model, int stream, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    char url[128], body[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", port);
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}", model,
             stream ? "true" : "false");
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

/* "up/model;class=C;status=S;ms=M, ..." -> "C, C, ok" */
static void classes(const char *attempts, char *dst, size_t n)
{
    size_t off = 0;
    dst[0] = '\0';
    for (const char *p = strstr(attempts, "class="); p != NULL && off < n; p = strstr(p + 1, "class=")) {
        const char *v = p + 6, *e = strchr(v, ';');
        size_t l = e ? (size_t)(e - v) : strlen(v);
        int w = snprintf(dst + off, n - off, "%s%.*s", off ? " -> " : "", (int)l, v);
        off += w > 0 ? (size_t)w : 0;
    }
}

struct scenario {
    const char *model;     /* the alias the agent asks for */
    int stream;
    const char *failure;   /* what its first target does */
    const char *expect;    /* what keel should do */
};

static const struct scenario scenarios[] = {
    {"chat", 0, "healthy provider", "pass through"},
    {"chat", 1, "healthy provider, streaming", "pass through"},
    {"storm", 0, "503 Service Unavailable", "fail over"},
    {"storm", 1, "503 Service Unavailable, streaming", "fail over"},
    {"empty", 0, "200 with no choices", "fail over"},
    {"crash", 1, "error event before content", "fail over"},
    {"reset", 0, "connection dropped before headers", "fail over"},
    {"gone", 0, "404 model_not_found", "fail over"},
    {"bad", 0, "400 invalid request (client's fault)", "return as is"},
};

static const char config_fmt[] =
    "listen: 127.0.0.1:0\n"
    "admin_listen: 127.0.0.1:0\n"
    "defaults:\n"
    "  timeouts: { connect: 2s }\n"
    "upstreams:\n"
    "  - { name: flaky, kind: openai, base_url: \"http://127.0.0.1:%d/v1\", api_key: demo-key-a }\n"
    "  - { name: backup, kind: openai, base_url: \"http://127.0.0.1:%d/v1\", api_key: demo-key-b }\n"
    "models:\n"
    "  - { name: chat,  targets: [ { upstream: flaky, model: healthy } ] }\n"
    "  - { name: storm, targets: [ { upstream: flaky, model: \"503\" }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: empty, targets: [ { upstream: flaky, model: empty-choices }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: crash, targets: [ { upstream: flaky, model: error-before-content }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: reset, targets: [ { upstream: flaky, model: reset-before-headers }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: gone,  targets: [ { upstream: flaky, model: \"404\" }, { upstream: backup, model: healthy } ] }\n"
    "  - { name: bad,   targets: [ { upstream: flaky, model: \"400\" }, { upstream: backup, model: healthy } ] }\n";

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
    struct child sim = {0}, gw = {0};
    char *sim_argv[] = {(char *)self, "sim", "--listen", "127.0.0.1:0", NULL};
    int rc = 1;
    if (spawn(&sim, self, "sim", sim_argv) != 0)
        goto out;
    int sim_port = wait_port(&sim, "sim listening on ");
    if (sim_port <= 0) {
        fprintf(stderr, "keel demo: the simulator did not start (see %s)\n", sim.log);
        goto out;
    }
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%s/keel.yaml", dir);
    FILE *f = fopen(cfg, "w");
    if (f == NULL)
        goto out;
    fprintf(f, config_fmt, sim_port, sim_port);
    fclose(f);
    char *gw_argv[] = {(char *)self, "serve", "-c", cfg, NULL};
    if (spawn(&gw, self, "keel", gw_argv) != 0)
        goto out;
    int port = wait_port(&gw, "listening api=");
    if (port <= 0) {
        fprintf(stderr, "keel demo: keel did not start (see %s)\n", gw.log);
        goto out;
    }

    printf("\nkeel demo: an agent talks to keel on 127.0.0.1:%d; keel's providers are `keel sim`\n"
           "(127.0.0.1:%d), told by the model name how to misbehave. Each model's first target\n"
           "fails in its own way; a second target stands behind it.\n\n",
           port, sim_port);
    printf("  %-38s %-6s %-6s %-22s %-32s %s\n", "first target does", "mode", "status", "answered by",
           "attempts", "time");
    printf("  %-38s %-6s %-6s %-22s %-32s %s\n", "-----------------", "----", "------", "-----------",
           "--------", "----");
    int ok = 1;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        const struct scenario *s = &scenarios[i];
        struct answer a;
        ask(port, s->model, s->stream, &a);
        char who[160], cls[256];
        snprintf(who, sizeof(who), "%s/%s", a.upstream, a.model);
        classes(a.attempts, cls, sizeof(cls));
        printf("  %-38s %-6s %-6ld %-22s %-32s %.3fs\n", s->failure, s->stream ? "stream" : "json", a.status, who,
               cls, a.secs);
        int want_ok = strcmp(s->expect, "return as is") != 0;
        if ((want_ok && a.status != 200) || (!want_ok && a.status != 400))
            ok = 0;
    }
    printf("\n  Every failure above was absorbed by the fallback chain except the client's own 400,\n"
           "  which keel returned as is without trying the backup (it would fail there too).\n"
           "  Logs: %s\n\n",
           dir);
    rc = ok ? 0 : 1;
    if (!ok)
        fprintf(stderr, "keel demo: an answer was not what keel promises (see the table and %s)\n", gw.log);
out:
    stop(&gw);
    stop(&sim);
    curl_global_cleanup();
    return rc;
}
