/* admin.c - the admin listener: GET /healthz, GET /metrics (Prometheus text format 0.0.4, the
 * names docs/reference.md lists; label values are configured names only, so cardinality is
 * bounded),
 * GET /admin/status (JSON: per model and target the breaker, cooldown left, its probes (rule,
 * next, last), recent failure classes, in-flight, and live latency percentiles over a sliding
 * window). Read-only views of gw->state; nothing here changes it. */
#include "admin.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "core/buf.h"
#include "gateway_t.h"
#include "io/server.h"
#include "keys.h"
#include "managed.h"
#include "log.h"
#include "answer.h"
#include "cliff.h"
#include "state.h"
#include "ui.h"

#define STATUS_WINDOW_MS (5 * 60 * 1000)
#define MAX_METRICS (16u << 20)

/* ------------------------------------------------------------------ /metrics */

static void appendf(struct keel_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void appendf(struct keel_buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        keel_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* a label value with \, " and newline escaped, into dst */
static const char *esc(const char *v, char *dst, size_t n)
{
    size_t o = 0;
    for (; *v != '\0' && o + 3 < n; v++) {
        if (*v == '\\' || *v == '"') {
            dst[o++] = '\\';
            dst[o++] = *v;
        } else if (*v == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else {
            dst[o++] = *v;
        }
    }
    dst[o] = '\0';
    return dst;
}

static void append_line(void *ctx, const char *line)
{
    keel_buf_appends(ctx, line);
}

static void family(struct keel_buf *b, const char *name, const char *type, const char *help)
{
    appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct keel_buf *b, const char *name, const char *labels, const struct keel_hist *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < KEEL_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        appendf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, keel_hist_bounds[i], (unsigned long long)cum);
    }
    appendf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)h->count);
    appendf(b, "%s_sum{%s} %.6f\n", name, labels, h->sum);
    appendf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

/* the target states the running config names, each once */
static size_t current_targets(struct keel_gateway *gw, struct keel_target_state **out, size_t cap)
{
    size_t n = 0;
    const struct keel_config *c = gw->config;
    for (size_t i = 0; i < c->nmodels; i++) {
        for (size_t j = 0; j < c->models[i].ntargets; j++) {
            const struct keel_target_conf *t = &c->models[i].targets[j];
            struct keel_target_state *ts = keel_state_target(&gw->state, t->upstream->name, t->model);
            int seen = ts == NULL;
            for (size_t k = 0; k < n && !seen; k++)
                seen = out[k] == ts;
            if (!seen && n < cap)
                out[n++] = ts;
        }
    }
    return n;
}

static void metrics(struct keel_gateway *gw, struct keel_http *h)
{
    struct keel_buf b;
    keel_buf_init(&b, MAX_METRICS);
    struct keel_state *st = &gw->state;
    char m[256], u[256], x[256], labels[1024];

    family(&b, "keel_requests_total", "counter",
           "Client requests by alias, the upstream that answered or was tried last, and final class.");
    for (size_t i = 0; i < st->nmodels; i++)
        for (size_t r = 0; r < st->models[i]->nroutes; r++)
            for (int c = 0; c < KEEL_CLASS_COUNT; c++)
                if (st->models[i]->routes[r]->requests[c] > 0)
                    appendf(&b, "keel_requests_total{model=\"%s\",upstream=\"%s\",class=\"%s\"} %llu\n",
                            esc(st->models[i]->name, m, sizeof(m)), esc(st->models[i]->routes[r]->upstream, u, sizeof(u)),
                            keel_class_name((enum keel_class)c),
                            (unsigned long long)st->models[i]->routes[r]->requests[c]);

    static const char *const hist_names[] = {"keel_request_duration_seconds", "keel_ttft_seconds"};
    static const char *const hist_help[] = {"Client request duration, from arrival to the last byte.",
                                            "Time from a request's arrival to the first content of its answer."};
    for (int k = 0; k < 2; k++) {
        family(&b, hist_names[k], "histogram", hist_help[k]);
        for (size_t i = 0; i < st->nmodels; i++) {
            for (size_t r = 0; r < st->models[i]->nroutes; r++) {
                const struct keel_route_stats *rs = st->models[i]->routes[r];
                if (rs->upstream[0] == '\0')
                    continue; /* requests that reached no upstream have no latency worth a series */
                snprintf(labels, sizeof(labels), "model=\"%s\",upstream=\"%s\"", esc(st->models[i]->name, m, sizeof(m)),
                         esc(rs->upstream, u, sizeof(u)));
                histogram(&b, hist_names[k], labels, k == 0 ? &rs->duration : &rs->ttft);
            }
        }
    }

    /* tokens and what they cost, attributed to the upstream that answered */
    family(&b, "keel_tokens_total", "counter",
           "Tokens the answers reported, by alias and answering upstream: prompt (cached ones included), completion, "
           "and cached (prompt tokens read from the provider's cache).");
    for (size_t i = 0; i < st->nmodels; i++)
        for (size_t r = 0; r < st->models[i]->nroutes; r++) {
            const struct keel_route_stats *rs = st->models[i]->routes[r];
            if (rs->upstream[0] == '\0')
                continue;
            const char *types[] = {"prompt", "completion", "cached"};
            const uint64_t v[] = {rs->prompt_tokens, rs->completion_tokens, rs->cached_tokens};
            for (int k = 0; k < 3; k++)
                appendf(&b, "keel_tokens_total{model=\"%s\",upstream=\"%s\",type=\"%s\"} %llu\n",
                        esc(st->models[i]->name, m, sizeof(m)), esc(rs->upstream, u, sizeof(u)), types[k],
                        (unsigned long long)v[k]);
        }
    family(&b, "keel_cost_total", "counter",
           "What the answers' tokens cost at their target's price (targets[].price, per million tokens).");
    for (size_t i = 0; i < st->nmodels; i++)
        for (size_t r = 0; r < st->models[i]->nroutes; r++) {
            const struct keel_route_stats *rs = st->models[i]->routes[r];
            if (rs->upstream[0] != '\0')
                appendf(&b, "keel_cost_total{model=\"%s\",upstream=\"%s\"} %.9g\n", esc(st->models[i]->name, m, sizeof(m)),
                        esc(rs->upstream, u, sizeof(u)), rs->cost);
        }
    family(&b, "keel_time_per_output_token_seconds", "histogram",
           "A streamed answer's time per output token after its first (from the first content to the end).");
    for (size_t i = 0; i < st->nmodels; i++)
        for (size_t r = 0; r < st->models[i]->nroutes; r++) {
            const struct keel_route_stats *rs = st->models[i]->routes[r];
            if (rs->upstream[0] == '\0')
                continue;
            snprintf(labels, sizeof(labels), "model=\"%s\",upstream=\"%s\"", esc(st->models[i]->name, m, sizeof(m)),
                     esc(rs->upstream, u, sizeof(u)));
            histogram(&b, "keel_time_per_output_token_seconds", labels, &rs->tpot);
        }

    family(&b, "keel_attempts_total", "counter", "Attempts on each target by class (skipped: breaker open or cooling).");
    for (size_t i = 0; i < st->ntargets; i++) {
        const struct keel_target_state *t = st->targets[i];
        for (int c = 0; c < KEEL_CLASS_COUNT; c++) {
            uint64_t v = c == KEEL_CLASS_SKIPPED ? t->skipped : t->attempts[c];
            if (v > 0)
                appendf(&b, "keel_attempts_total{upstream=\"%s\",model=\"%s\",class=\"%s\"} %llu\n",
                        esc(t->upstream, u, sizeof(u)), esc(t->model, m, sizeof(m)), keel_class_name((enum keel_class)c),
                        (unsigned long long)v);
        }
    }

    family(&b, "keel_failovers_total", "counter", "Moves from one upstream to another after a failure.");
    for (size_t i = 0; i < st->nmodels; i++)
        for (size_t f = 0; f < st->models[i]->nfailovers; f++) {
            const struct keel_failover_stats *fo = st->models[i]->failovers[f];
            appendf(&b, "keel_failovers_total{model=\"%s\",from=\"%s\",to=\"%s\",class=\"%s\"} %llu\n",
                    esc(st->models[i]->name, m, sizeof(m)), esc(fo->from, u, sizeof(u)), esc(fo->to, x, sizeof(x)),
                    keel_class_name(fo->cls), (unsigned long long)fo->n);
        }

    family(&b, "keel_probes_total", "counter",
           "Background probes of open targets (breaker probe: background) by outcome class.");
    for (size_t i = 0; i < st->ntargets; i++) {
        const struct keel_target_state *t = st->targets[i];
        for (int c = 0; c < KEEL_CLASS_COUNT; c++)
            if (t->probes[c] > 0)
                appendf(&b, "keel_probes_total{upstream=\"%s\",model=\"%s\",outcome=\"%s\"} %llu\n",
                        esc(t->upstream, u, sizeof(u)), esc(t->model, m, sizeof(m)),
                        keel_class_name((enum keel_class)c), (unsigned long long)t->probes[c]);
    }

    struct keel_target_state *cur[1024];
    size_t ncur = current_targets(gw, cur, 1024);
    family(&b, "keel_breaker_state", "gauge", "Circuit breaker of each target: 0 closed, 1 half-open, 2 open.");
    for (size_t i = 0; i < ncur; i++)
        appendf(&b, "keel_breaker_state{upstream=\"%s\",model=\"%s\"} %d\n", esc(cur[i]->upstream, u, sizeof(u)),
                esc(cur[i]->model, m, sizeof(m)), (int)cur[i]->breaker.state);

    family(&b, "keel_inflight", "gauge", "Attempts under way on each upstream.");
    const struct keel_config *c = gw->config;
    for (size_t i = 0; i < c->nupstreams; i++) {
        uint64_t n = 0;
        for (size_t j = 0; j < st->ntargets; j++)
            if (strcmp(st->targets[j]->upstream, c->upstreams[i].name) == 0)
                n += st->targets[j]->inflight;
        appendf(&b, "keel_inflight{upstream=\"%s\"} %llu\n", esc(c->upstreams[i].name, u, sizeof(u)),
                (unsigned long long)n);
    }

    family(&b, "keel_upstream_info", "gauge", "Each configured upstream and the protocol it speaks (kind).");
    for (size_t i = 0; i < c->nupstreams; i++)
        appendf(&b, "keel_upstream_info{upstream=\"%s\",kind=\"%s\"} 1\n", esc(c->upstreams[i].name, u, sizeof(u)),
                c->upstreams[i].kind);

    family(&b, "keel_cliff_margin_seconds", "gauge",
           "Distance from a model's worst latency (max over 5 minutes) to its cliff; small means danger.");
    for (size_t i = 0; i < c->nmodels; i++) {
        struct keel_model_state *ms = keel_state_model(st, c->models[i].name);
        struct keel_pcts p;
        keel_window_pcts(&ms->answers, uv_now(gw->loop), KEEL_CLIFF_WINDOW_MS, &p);
        appendf(&b, "keel_cliff_margin_seconds{model=\"%s\"} %.3f\n", esc(c->models[i].name, m, sizeof(m)),
                ((double)c->models[i].cliff_ms - (double)p.max) / 1000.0);
    }
    /* the client side's limits (README "Limits"): what they cost clients, by which limit */
    struct keel_server_stats sum = {0}, *ss = &sum;
    for (size_t i = 0; i < gw->nworkers; i++)
        keel_server_stats_add(gw->workers[i].api, &sum);
    family(&b, "keel_client_connections", "gauge", "Client connections open now.");
    appendf(&b, "keel_client_connections %llu\n", (unsigned long long)ss->open);
    family(&b, "keel_client_connections_max", "gauge", "The client connection cap in force (max_connections).");
    appendf(&b, "keel_client_connections_max %llu\n", (unsigned long long)gw->max_connections);
    family(&b, "keel_client_refused_total", "counter", "Client connections answered 503 at max_connections.");
    appendf(&b, "keel_client_refused_total %llu\n", (unsigned long long)ss->refused);
    family(&b, "keel_client_timeouts_total", "counter",
           "Client connections dropped by a read or send limit (header_timeout, body_timeout, send_timeout).");
    appendf(&b, "keel_client_timeouts_total{phase=\"header\"} %llu\n", (unsigned long long)ss->header_timeouts);
    appendf(&b, "keel_client_timeouts_total{phase=\"body\"} %llu\n", (unsigned long long)ss->body_timeouts);
    appendf(&b, "keel_client_timeouts_total{phase=\"send\"} %llu\n", (unsigned long long)ss->send_timeouts);
    family(&b, "keel_client_rejected_total", "counter",
           "Requests refused by the HTTP layer before routing: 431 (max_headers, max_header_size) and 400 "
           "(ambiguous length: request smuggling).");
    appendf(&b, "keel_client_rejected_total{reason=\"headers_too_large\"} %llu\n",
            (unsigned long long)ss->headers_too_large);
    appendf(&b, "keel_client_rejected_total{reason=\"ambiguous_length\"} %llu\n", (unsigned long long)ss->ambiguous);
    family(&b, "keel_audit_dropped_total", "counter",
           "Audit lines lost: the disk could not keep up (past 16 MiB pending) or a write failed.");
    appendf(&b, "keel_audit_dropped_total %llu\n",
            (unsigned long long)(gw->audit != NULL ? keel_audit_dropped(gw->audit) : 0));
    family(&b, "keel_memory_held_bytes", "gauge",
           "Bytes requests in flight hold in bodies and buffered answers (bounded by max_memory).");
    appendf(&b, "keel_memory_held_bytes %zu\n", __atomic_load_n(&gw->mem_held, __ATOMIC_RELAXED));
    family(&b, "keel_worker_requests_total", "counter", "Client requests each worker's loop took (workers:).");
    for (size_t i = 0; i < gw->nworkers; i++)
        appendf(&b, "keel_worker_requests_total{worker=\"%zu\"} %llu\n", i,
                (unsigned long long)__atomic_load_n(&gw->workers[i].requests, __ATOMIC_RELAXED));
    family(&b, "keel_worker_lock_total", "counter",
           "Times a worker took the lock over what the workers share (breakers, counters, the audit log), "
           "by whether it had to wait.");
    appendf(&b, "keel_worker_lock_total{waited=\"no\"} %llu\n", (unsigned long long)(gw->lock_taken - gw->lock_waited));
    appendf(&b, "keel_worker_lock_total{waited=\"yes\"} %llu\n", (unsigned long long)gw->lock_waited);
    if (gw->lock_timing) {
        family(&b, "keel_worker_lock_held_seconds_total", "counter",
               "Time the workers held that lock (KEEL_LOCK_TIMING=1 only).");
        appendf(&b, "keel_worker_lock_held_seconds_total %.6f\n", (double)gw->lock_held_ns / 1e9);
    }
    keel_managed_metrics(gw->managed, append_line, &b);
    keel_shared_metrics(gw->shared, append_line, &b);
    /* client keys, by name (never the key): what they asked and what their answers cost */
    family(&b, "keel_key_requests_total", "counter", "Client requests by the key they presented and their final class.");
    char kname[256];
    for (size_t i = 0; i < gw->state.nkeys; i++)
        for (int c = 0; c < KEEL_CLASS_COUNT; c++)
            if (gw->state.keys[i]->requests[c] > 0)
                appendf(&b, "keel_key_requests_total{key=\"%s\",class=\"%s\"} %llu\n",
                        esc(gw->state.keys[i]->name, kname, sizeof(kname)), keel_class_name((enum keel_class)c),
                        (unsigned long long)gw->state.keys[i]->requests[c]);
    family(&b, "keel_key_tokens_total", "counter", "Tokens the answers to a key's requests reported (its tpm counts them).");
    for (size_t i = 0; i < gw->state.nkeys; i++)
        appendf(&b, "keel_key_tokens_total{key=\"%s\"} %llu\n", esc(gw->state.keys[i]->name, kname, sizeof(kname)),
                (unsigned long long)gw->state.keys[i]->tokens);
    struct keel_header hdrs[] = {{"content-type", "text/plain; version=0.0.4; charset=utf-8"}};
    keel_http_respond(h, 200, hdrs, 1, b.base ? b.base : "", b.len);
    keel_buf_release(&b);
}

/* ------------------------------------------------------------------ /admin/status */

static json_t *pcts_of(const struct keel_pcts *p)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "p50", (json_int_t)p->p50, "p90", (json_int_t)p->p90, "p99",
                     (json_int_t)p->p99, "max", (json_int_t)p->max, "count", (json_int_t)p->count);
}

static json_t *pcts_json(const struct keel_window *w, uint64_t now)
{
    struct keel_pcts p;
    keel_window_pcts(w, now, STATUS_WINDOW_MS, &p);
    return pcts_of(&p);
}

/* A target's probes: the rule (for an open target the one it opened under), when the next one
 * may go (ms from now; null when closed or one is out), whether one is out, and how the last
 * background probe ended. */
static json_t *probe_json(const struct keel_target_state *ts, uint64_t now)
{
    const struct keel_breaker *b = &ts->breaker;
    int background = b->state == KEEL_BREAKER_CLOSED ? ts->params.probe == KEEL_BREAKER_PROBE_BACKGROUND
                                                     : b->background;
    uint64_t next = keel_breaker_next_probe(b);
    json_t *o = json_pack("{s:s, s:b}", "mode", background ? "background" : "request", "in_flight", b->probing);
    json_object_set_new(o, "next_in_ms", next == UINT64_MAX ? json_null()
                                                            : json_integer((json_int_t)(next > now ? next - now : 0)));
    uint64_t total = 0;
    for (int c = 0; c < KEEL_CLASS_COUNT; c++)
        total += ts->probes[c];
    json_object_set_new(o, "count", json_integer((json_int_t)total));
    const struct keel_probe_record *r = &ts->last_probe;
    if (r->at == 0) {
        json_object_set_new(o, "last", json_null());
    } else {
        char at[40];
        keel_time_rfc3339(r->at, at, sizeof(at));
        json_object_set_new(o, "last", json_pack("{s:s, s:s, s:I, s:i}", "outcome", keel_class_name(r->cls), "at", at,
                                                 "ms", (json_int_t)r->ms, "status", r->status));
    }
    return o;
}

/* A target's attempts since start: sent to it (ok or failed), and skipped (never sent: its
 * breaker was open or it was cooling down after a 429) */
static json_t *counts_json(const struct keel_target_state *ts)
{
    uint64_t sent = 0;
    for (int c = 0; c < KEEL_CLASS_COUNT; c++)
        sent += c == KEEL_CLASS_SKIPPED ? 0 : ts->attempts[c];
    return json_pack("{s:I, s:I, s:I, s:I}", "sent", (json_int_t)sent, "ok", (json_int_t)ts->attempts[KEEL_CLASS_OK],
                     "failed", (json_int_t)(sent - ts->attempts[KEEL_CLASS_OK]), "skipped", (json_int_t)ts->skipped);
}

/* a model's tokens and their cost since start, over every upstream that answered */
static json_t *usage_json(const struct keel_model_state *ms)
{
    uint64_t p = 0, c = 0, k = 0;
    double cost = 0;
    for (size_t r = 0; r < ms->nroutes; r++) {
        p += ms->routes[r]->prompt_tokens;
        c += ms->routes[r]->completion_tokens;
        k += ms->routes[r]->cached_tokens;
        cost += ms->routes[r]->cost;
    }
    return json_pack("{s:I, s:I, s:I, s:f}", "prompt_tokens", (json_int_t)p, "completion_tokens", (json_int_t)c,
                     "cached_tokens", (json_int_t)k, "cost", cost);
}

/* the client keys the config names, with what they did since start (never the key itself) */
static json_t *keys_json(struct keel_gateway *gw)
{
    json_t *a = json_array();
    const struct keel_config *c = gw->config;
    for (size_t i = 0; i < c->nkeys; i++) {
        const struct keel_key_conf *k = &c->keys[i];
        struct keel_key_state *ks = keel_state_key(&gw->state, k->name);
        uint64_t requests = 0, refused = 0, ok = 0;
        for (int cl = 0; ks != NULL && cl < KEEL_CLASS_COUNT; cl++) {
            requests += ks->requests[cl];
            refused += keel_class_refused((enum keel_class)cl) ? ks->requests[cl] : 0;
        }
        ok = ks != NULL ? ks->requests[KEEL_CLASS_OK] : 0;
        json_array_append_new(a, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", k->name, "requests",
                                           (json_int_t)requests, "ok", (json_int_t)ok, "refused", (json_int_t)refused,
                                           "errors", (json_int_t)(requests - ok - refused), "tokens",
                                           (json_int_t)(ks != NULL ? ks->tokens : 0), "rpm", (json_int_t)k->rpm, "tpm",
                                           (json_int_t)k->tpm));
    }
    return a;
}

static void status(struct keel_gateway *gw, struct keel_http *h)
{
    uint64_t now = uv_now(gw->loop);
    const struct keel_config *c = gw->config;
    json_t *models = json_array();
    for (size_t i = 0; i < c->nmodels; i++) {
        const struct keel_model_conf *mc = &c->models[i];
        struct keel_model_state *ms = keel_state_model(&gw->state, mc->name);
        json_t *targets = json_array();
        size_t open = 0; /* targets whose breaker is not closed, for the health */
        for (size_t j = 0; ms != NULL && j < mc->ntargets; j++) {
            const struct keel_target_conf *t = &mc->targets[j];
            struct keel_target_state *ts = keel_state_target(&gw->state, t->upstream->name, t->model);
            struct keel_window_stats *w = keel_state_window(ms, t->upstream->name, t->model);
            if (ts == NULL || w == NULL)
                continue;
            open += ts->breaker.state != KEEL_BREAKER_CLOSED;
            json_t *recent = json_array();
            size_t have = ts->nrecent < KEEL_RECENT ? ts->nrecent : KEEL_RECENT;
            for (size_t k = ts->nrecent - have; k < ts->nrecent; k++)
                json_array_append_new(recent, json_string(keel_class_name(ts->recent[k % KEEL_RECENT])));
            uint64_t ready = keel_breaker_ready_at(&ts->breaker, now);
            struct keel_pcts count;
            keel_window_pcts(&w->duration, now, STATUS_WINDOW_MS, &count);
            json_t *target =
                json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:{s:I, s:I, s:o, s:o}}", "upstream",
                          t->upstream->name, "model", t->model, "breaker",
                          keel_breaker_state_name(ts->breaker.state), "cooldown_left_ms", (json_int_t)(ready - now),
                          "consecutive_failures", (json_int_t)ts->breaker.failures, "consecutive_rejections",
                          (json_int_t)ts->breaker.rejections, "inflight",
                          (json_int_t)ts->inflight, "skipped", (json_int_t)ts->skipped, "recent_failures", recent,
                          "latency", "window_s", (json_int_t)(STATUS_WINDOW_MS / 1000), "count",
                          (json_int_t)count.count, "duration_ms", pcts_json(&w->duration, now), "ttft_ms",
                          pcts_json(&w->ttft, now));
            json_object_set_new(target, "probe", probe_json(ts, now));
            json_object_set_new(target, "counts", counts_json(ts));
            json_array_append_new(targets, target);
        }
        struct keel_pcts all;
        keel_window_pcts(&ms->answers, now, STATUS_WINDOW_MS, &all);
        json_t *history = json_array();
        size_t have = ms->nhistory < KEEL_HISTORY ? ms->nhistory : KEEL_HISTORY;
        for (size_t k = ms->nhistory - have; k < ms->nhistory; k++) {
            const struct keel_snapshot *s = &ms->history[k % KEEL_HISTORY];
            if (s->d.count > 0)
                json_array_append_new(history, json_pack("{s:I, s:o, s:o}", "t", (json_int_t)s->t, "d",
                                                         pcts_of(&s->d), "ttft", pcts_of(&s->ttft)));
        }
        uint64_t failovers = 0;
        for (size_t k = 0; k < ms->nfailovers; k++)
            failovers += ms->failovers[k]->n;
        /* what is wrong right now: the last five minutes' outcomes, the breakers, the cliff */
        struct keel_outcome_counts oc;
        keel_outcomes_count(&ms->outcomes, now, STATUS_WINDOW_MS, &oc);
        char why[512];
        enum keel_health_state hs = keel_health_of(&oc, mc->ntargets, open, ms->near_cliff, why, sizeof(why));
        json_t *hclasses = json_object();
        for (int k = 0; k < KEEL_CLASS_COUNT; k++)
            if (k != KEEL_CLASS_OK && oc.by_class[k] > 0)
                json_object_set_new(hclasses, keel_class_name((enum keel_class)k), json_integer((json_int_t)oc.by_class[k]));
        uint64_t judged = oc.requests - oc.local; /* the share is of what reached a provider */
        uint64_t span = now - gw->started_ms < STATUS_WINDOW_MS ? now - gw->started_ms : STATUS_WINDOW_MS;
        span = span < 1000 ? 1000 : span; /* the rate over the window, or the time since start when shorter */
        json_t *health = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:f, s:I, s:o}", "state",
                                   keel_health_name(hs), "reasons", why, "window_s",
                                   (json_int_t)(STATUS_WINDOW_MS / 1000), "requests", (json_int_t)oc.requests, "ok",
                                   (json_int_t)oc.ok, "local", (json_int_t)oc.local, "success_share",
                                   judged ? json_real((double)oc.ok / (double)judged) : json_null(), "rps",
                                   (double)oc.requests / (double)span * 1000.0, "failovers",
                                   (json_int_t)oc.failovers, "errors_by_class", hclasses);
        json_array_append_new(models, json_pack("{s:s, s:o, s:I, s:o, s:{s:I, s:I, s:b, s:I, s:o}}", "name", mc->name,
                                                "targets", targets, "failovers", (json_int_t)failovers, "history",
                                                history, "cliff", "cliff_ms", (json_int_t)mc->cliff_ms, "margin_ms",
                                                (json_int_t)c->cliff_margin_ms, "near", ms->near_cliff, "count",
                                                (json_int_t)all.count, "duration_ms", pcts_json(&ms->answers, now)));
        json_t *row = json_array_get(models, json_array_size(models) - 1);
        json_object_set_new(row, "health", health);
        json_object_set_new(row, "usage", usage_json(ms));
        json_object_set_new(row, "ttft_ms", pcts_json(&ms->ttfts, now)); /* every answer's, any target */
    }
    json_t *root = json_pack("{s:I, s:I, s:I, s:s, s:I, s:I, s:o, s:o, s:{s:b, s:I, s:I, s:I}}", "now",
                             (json_int_t)keel_time_now_ms(), "uptime_s",
                             (json_int_t)((now - gw->started_ms) / 1000), "inflight", (json_int_t)__atomic_load_n(&gw->inflight, __ATOMIC_RELAXED),
                             "config", c->file, "reloads", (json_int_t)gw->reloads, "reload_failures",
                             (json_int_t)gw->reload_failures, "models", models, "backends",
                             keel_managed_status(gw->managed), "events", "webhook",
                             gw->events.url != NULL, "sent", (json_int_t)gw->events.sent, "failed",
                             (json_int_t)gw->events.failed, "dropped", (json_int_t)gw->events.dropped);
    if (root != NULL) {
        json_object_set_new(root, "workers", json_integer((json_int_t)gw->nworkers));
        json_object_set_new(root, "state", keel_shared_status(gw->shared));
        json_object_set_new(json_object_get(root, "events"), "recent", keel_events_recent(&gw->events));
        json_object_set_new(root, "keys", keys_json(gw));
    }
    char *body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    struct keel_header hdrs[] = {{"content-type", "application/json"}};
    keel_http_respond(h, 200, hdrs, 1, body ? body : "{}", body ? strlen(body) : 2);
    free(body);
}

/* ------------------------------------------------------------------ routing */

void keel_admin_handle(void *app, struct keel_http *h)
{
    struct keel_gateway *gw = app;
    size_t plen, mlen;
    const char *path = keel_http_path(h, &plen);
    const char *method = keel_http_method(h, &mlen);
    int get = mlen == 3 && memcmp(method, "GET", 3) == 0;
#define PATH_IS(s) (plen == sizeof(s) - 1 && memcmp(path, s, plen) == 0)
    if (!PATH_IS("/healthz") && !keel_admin_allowed(gw->config, h)) {
        keel_respond_error(h, 401, "invalid_request_error", "invalid_admin_token",
                           "this admin listener needs its admin_token: Authorization: Bearer TOKEN (or ?token=TOKEN)");
        return;
    }
    if (get && PATH_IS("/healthz")) {
        struct keel_header hdrs[] = {{"content-type", "application/json"}};
        const char *body = gw->draining ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}";
        keel_http_respond(h, gw->draining ? 503 : 200, hdrs, 1, body, strlen(body));
    } else if (get && PATH_IS("/metrics")) {
        metrics(gw, h);
    } else if (get && PATH_IS("/admin/status")) {
        status(gw, h);
    } else if (get && (PATH_IS("/ui") || PATH_IS("/"))) {
        keel_ui_serve(h);
    } else {
        keel_respond_error(h, 404, "invalid_request_error", "unknown_url", "unknown path");
    }
#undef PATH_IS
}
