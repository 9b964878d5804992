/* intake.c - the client's request read and checked; see intake.h. The body goes upstream byte
 * for byte but for a few members (core/reqbody.h): only what routing needs is read, and no tree
 * is built (core/json.h). */
#include "intake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "audit.h"
#include "core/fmt.h"
#include "core/json.h"
#include "core/units.h"
#include "gateway_t.h"
#include "io/server.h"
#include "keys.h"
#include "log.h"
#include "request_t.h"
#include "state.h"

static void new_id(struct keel_worker *w, char *dst, size_t n)
{
    /* splitmix64 over a random seed and a counter: unique per process, unguessable across runs */
    uint64_t seq = __atomic_add_fetch(&w->gw->id_next, 1, __ATOMIC_RELAXED); /* every worker draws */
    uint64_t z = w->gw->id_seed + 0x9e3779b97f4a7c15ULL * seq;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    struct keel_fmt f;
    keel_fmt_init(&f, dst, n);
    keel_fmt_hex(&f, z, 16);
}

/* an alias as a model object both SDKs read: OpenAI's keys and Anthropic's (type, display_name,
 * created_at) */
static json_t *model_json(const char *name)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s}", "id", name, "object", "model", "created", 0, "owned_by",
                     "keel", "type", "model", "display_name", name, "created_at", "1970-01-01T00:00:00Z");
}

static void respond_json(struct keel_http *h, json_t *root)
{
    char *body = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    struct keel_header hdrs[] = {{"content-type", "application/json"}};
    if (body != NULL)
        keel_http_respond(h, 200, hdrs, 1, body, strlen(body));
    else
        keel_respond_error(h, 503, "server_error", "local_error", "out of memory");
    free(body);
}

/* A refused request counted and audited like any request, under the model it asked for (NULL:
 * none could be read); counted under model "": what was asked may be anything, and must not grow
 * the metrics. key: the client key it presented, NULL for none (or one not configured). */
static void record_refusal(struct keel_worker *w, const struct keel_encoder_ops *enc, const char *id,
                           const char *model, const struct keel_key_conf *key, int status, const char *code)
{
    enum keel_class cls = status == 503   ? KEEL_CLASS_GATEWAY_BUSY
                          : status == 429 ? KEEL_CLASS_KEY_LIMITED
                                          : KEEL_CLASS_INVALID_REQUEST;
    keel_gw_lock(w->gw);
    struct keel_model_state *ms = keel_state_model(&w->gw->state, "");
    struct keel_route_stats *rs = ms ? keel_state_route(ms, "") : NULL;
    if (rs != NULL)
        rs->requests[cls]++;
    struct keel_key_state *ks = key ? keel_state_key(&w->gw->state, key->name) : NULL;
    if (ks != NULL)
        ks->requests[cls]++;
    keel_info("req %s: rejected: %d %s%s%s", id, status, code, key ? " key " : "", key ? key->name : "");
    keel_audit_record(w->gw->audit, &(struct keel_audit_record){.start_wall_ms = keel_time_now_ms(),
                                                             .id = id,
                                                             .model = model ? model : "",
                                                             .status = status,
                                                             .cls = keel_class_name(cls),
                                                             .error = code,
                                                             .protocol = enc->protocol,
                                                             .key = key ? key->name : NULL});
    keel_gw_unlock(w->gw);
}

/* A request refused here, before any upstream is chosen or touched: invalid_request,
 * gateway_busy (503, Retry-After 1), a client key's 401/403, or its 429 key_limited
 * (retry_after: seconds) */
static void refuse(struct keel_worker *w, struct keel_http *h, const struct keel_encoder_ops *enc,
                   const char *model, const struct keel_key_conf *key, int status, const char *code,
                   const char *message, uint64_t retry_after)
{
    char id[24], secs[24];
    new_id(w, id, sizeof(id));
    int busy = status == 503;
    if (busy)
        retry_after = 1;
    const char *type = busy ? "server_error" : status == 429 ? "rate_limit_error" : "invalid_request_error";
    char *body = keel_answer_envelope(enc, NULL, status, type, code, message, retry_after);
    struct keel_header hdrs[6] = {{"content-type", "application/json"}, {"x-keel-request-id", id},
                                  {"x-keel-upstream", "none"}, {"x-keel-model", "none"}, {"x-keel-attempts", ""}};
    size_t n = 5;
    snprintf(secs, sizeof(secs), "%llu", (unsigned long long)retry_after);
    if (retry_after > 0)
        hdrs[n++] = (struct keel_header){"retry-after", secs};
    else if (!keel_answer_should_retry(status))
        hdrs[n++] = (struct keel_header){"x-should-retry", "false"};
    keel_http_respond(h, status, hdrs, n, body ? body : "", body ? strlen(body) : 0);
    free(body);
    record_refusal(w, enc, id, model, key, status, code);
}

static void reject(struct keel_worker *w, struct keel_http *h, const struct keel_encoder_ops *enc,
                   const char *model, int status, const char *code, const char *message)
{
    refuse(w, h, enc, model, NULL, status, code, message, 0);
}

/* With client keys configured: the key the request presents, else NULL after a 401 (the key
 * is never echoed: a wrong one may be someone's real key with a typo). Without keys: the empty
 * key (every client is let in). */
static const struct keel_key_conf open_door = {.name = NULL};
static const struct keel_key_conf *authenticate(struct keel_worker *w, struct keel_http *h,
                                                const struct keel_encoder_ops *enc)
{
    if (w->config->nkeys == 0)
        return &open_door;
    const struct keel_key_conf *k = keel_keys_match(w->config, h);
    if (k == NULL)
        refuse(w, h, enc, NULL, NULL, 401, "invalid_api_key",
               "a valid key is required: Authorization: Bearer KEY (or x-api-key: KEY), one issued by this keel", 0);
    return k;
}

/* GET /v1/models: the aliases, in one list both SDKs read (with Anthropic's has_more, first_id,
 * last_id) */
static void models_list(struct keel_worker *w, struct keel_http *h)
{
    const struct keel_key_conf *key = authenticate(w, h, &keel_openai_chat_encoder);
    if (key == NULL)
        return;
    json_t *data = json_array();
    const struct keel_config *c = w->config;
    for (size_t i = 0; i < c->nmodels; i++) /* with keys: the ones this key may use */
        if (key == &open_door || keel_key_allows(key, c->models[i].name))
            json_array_append_new(data, model_json(c->models[i].name));
    respond_json(h, json_pack("{s:s, s:o, s:b, s:s?, s:s?}", "object", "list", "data", data, "has_more", 0,
                              "first_id", c->nmodels ? c->models[0].name : NULL, "last_id",
                              c->nmodels ? c->models[c->nmodels - 1].name : NULL));
}

/* The top-level "model", "stream" and "stream_options" members of a parsed object; -1 when
 * "model" or "stream" is there twice. One pass, keys decoded as keel_json_get does. */
static int top_level_keys(struct keel_json root, struct keel_json *model, struct keel_json *stream,
                          struct keel_json *options)
{
    *model = *stream = *options = (struct keel_json){NULL, 0};
    struct keel_json k, v;
    size_t pos = 0;
    while (keel_json_next(root, &pos, &k, &v)) {
        char key[16];
        long n = keel_json_string(k, key, sizeof(key));
        if (n == 14 && memcmp(key, "stream_options", 14) == 0) {
            *options = v; /* the last one: the one keel replaces */
            continue;
        }
        struct keel_json *slot = n == 5 && memcmp(key, "model", 5) == 0    ? model
                                 : n == 6 && memcmp(key, "stream", 6) == 0 ? stream
                                                                           : NULL;
        if (slot == NULL)
            continue;
        if (slot->p != NULL)
            return -1;
        *slot = v;
    }
    return 0;
}

/* the client may shorten its own budget (x-keel-timeout), never lengthen it past the config:
 * 0 and *budget (0 = none), or -1 */
static int client_budget(struct keel_http *h, uint64_t *budget)
{
    size_t len;
    const char *tv = keel_http_header(h, "x-keel-timeout", &len);
    *budget = 0;
    if (tv == NULL)
        return 0;
    char v[32];
    if (len >= sizeof(v))
        return -1; /* no duration is that long: refused whole, never read cut short */
    snprintf(v, sizeof(v), "%.*s", (int)len, tv);
    int bad = keel_parse_duration_ms(v, budget) != 0;
    if (bad && keel_parse_uint(v, budget) == 0 && *budget < UINT64_MAX / 1000) {
        *budget *= 1000; /* a bare number is seconds */
        bad = 0;
    }
    return bad || *budget == 0 ? -1 : 0;
}

static size_t at(const char *text, struct keel_json v)
{
    return v.p ? (size_t)(v.p - text) : 0;
}

static void chat(struct keel_worker *w, struct keel_http *h, const struct keel_encoder_ops *enc)
{
    const struct keel_key_conf *key = authenticate(w, h, enc);
    if (key == NULL)
        return;
    if (key == &open_door)
        key = NULL;
    if (__atomic_load_n(&w->gw->inflight, __ATOMIC_RELAXED) >= w->config->max_inflight) {
        /* shed load before parsing anything: keel's own limit, never an upstream's fault */
        reject(w, h, enc, NULL, 503, "gateway_busy", "keel is at max_inflight: retry shortly");
        return;
    }
    size_t len;
    const char *text = keel_http_body(h, &len);
    /* the body is held three times while the request lives: the server's copy, r->body and the
     * attempt's; all requests together stay within max_memory, checked before anything is copied */
    if (__atomic_load_n(&w->gw->mem_held, __ATOMIC_RELAXED) + 3 * len > w->config->max_memory) {
        reject(w, h, enc, NULL, 503, "gateway_busy", "keel is at max_memory: retry shortly");
        return;
    }
    struct keel_json root, m, stream, options;
    int rv = keel_json_parse_depth(text, len, w->config->max_json_depth, &root);
    if (rv == -2) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request body is nested deeper than %llu levels (max_json_depth)",
                 (unsigned long long)w->config->max_json_depth);
        reject(w, h, enc, NULL, 400, "invalid_json", msg);
        return;
    }
    if (rv != 0 || keel_json_type(root) != KEEL_JSON_OBJECT) {
        reject(w, h, enc, NULL, 400, "invalid_json", "request body is not a JSON object");
        return;
    }
    /* keel routes on "model" and reads "stream"; a body that names either twice is refused, as an
     * upstream's parser may take the other one and serve a model the operator never listed */
    if (top_level_keys(root, &m, &stream, &options) != 0) {
        reject(w, h, enc, NULL, 400, "duplicate_key", "request body names \"model\" or \"stream\" more than once");
        return;
    }
    char name[256];
    long namelen = keel_json_string(m, name, sizeof(name));
    if (namelen <= 0) {
        reject(w, h, enc, NULL, 400, "missing_model", "request body has no \"model\"");
        return;
    }
    struct keel_config *config = w->config;
    const struct keel_model_conf *model = (size_t)namelen < sizeof(name) ? keel_config_model(config, name) : NULL;
    if (model == NULL) {
        char msg[256];
        snprintf(msg, sizeof(msg), "unknown model \"%.100s\": GET /v1/models lists the configured ones", name);
        refuse(w, h, enc, name, key, 400, "model_not_found", msg, 0);
        return;
    }
    /* an alias serves one API: embeddings, or the chat ones in any of their protocols */
    int embeddings = enc == &keel_openai_embeddings_encoder;
    if ((model->api == KEEL_API_EMBEDDINGS) != embeddings) {
        char msg[256];
        snprintf(msg, sizeof(msg), "model \"%.100s\" is %s model: %s", model->name,
                 embeddings ? "a chat" : "an embeddings",
                 embeddings ? "POST /v1/embeddings needs an alias with api: embeddings"
                            : "use POST /v1/embeddings");
        refuse(w, h, enc, model->name, key, 400, "model_not_found", msg, 0);
        return;
    }
    uint64_t budget;
    if (client_budget(h, &budget) != 0) {
        refuse(w, h, enc, model->name, key, 400, "invalid_timeout", "x-keel-timeout: expected a duration such as 90s or 500ms", 0);
        return;
    }
    struct keel_key_state *ks = NULL;
    if (key != NULL) {
        if (!keel_key_allows(key, model->name)) {
            char msg[256];
            snprintf(msg, sizeof(msg), "key \"%.64s\" may not use model \"%.100s\"", key->name, model->name);
            refuse(w, h, enc, model->name, key, 403, "model_not_allowed", msg, 0);
            return;
        }
        keel_gw_lock(w->gw);
        ks = keel_state_key(&w->gw->state, key->name);
        uint64_t wait = ks ? keel_quota_admit(&ks->quota, key->rpm, key->tpm, uv_now(w->loop)) : 0;
        int tokens = wait > 0 && key->tpm && ks->quota.tok_tat > uv_now(w->loop) * 1000 + 60000000;
        if (wait == 0 && w->gw->shared != NULL) {
            keel_gw_touch(w->gw);
            keel_shared_key_use(w->gw->shared, key->name, 1, 0); /* the other instances count it too */
        }
        keel_gw_unlock(w->gw);
        if (wait > 0) {
            char msg[256];
            snprintf(msg, sizeof(msg), "key \"%.64s\" is over its %s: retry in %llu ms", key->name,
                     tokens ? "tokens per minute (tpm)" : "requests per minute (rpm)", (unsigned long long)wait);
            refuse(w, h, enc, model->name, key, 429, "key_limited", msg, (wait + 999) / 1000);
            return;
        }
    }
    struct keel_request *r = calloc(1, sizeof(*r) + model->ntargets * sizeof(r->route[0]));
    char *body = malloc(len);
    uv_timer_t *timer = malloc(sizeof(*timer));
    struct keel_target_state **tstate = calloc(model->ntargets, sizeof(*tstate));
    keel_gw_lock(w->gw);
    struct keel_model_state *mstate = keel_state_model(&w->gw->state, model->name);
    for (size_t i = 0; tstate != NULL && i < model->ntargets; i++) {
        tstate[i] = keel_state_target(&w->gw->state, model->targets[i].upstream->name, model->targets[i].model);
        if (tstate[i] == NULL)
            mstate = NULL;
    }
    keel_gw_unlock(w->gw);
    if (r == NULL || body == NULL || timer == NULL || tstate == NULL || mstate == NULL) {
        free(r);
        free(body);
        free(timer);
        free(tstate);
        keel_respond_error(h, 503, "server_error", "gateway_busy", "out of memory");
        return;
    }
    r->gw = w->gw;
    r->w = w;
    r->http = h;
    r->body = memcpy(body, text, len);
    r->body_len = len;
    r->spans = (struct keel_reqbody){.root_at = at(text, root),
                                     .model_at = at(text, m),
                                     .model_len = m.len,
                                     .stream_at = at(text, stream),
                                     .stream_len = stream.p ? stream.len : 0,
                                     .options_at = at(text, options),
                                     .options_len = options.p ? options.len : 0};
    r->stream = keel_json_type(stream) == KEEL_JSON_TRUE;
    r->enc = enc;
    r->include_usage = keel_json_type(keel_json_get(options, "include_usage")) == KEEL_JSON_TRUE;
    r->config = keel_config_hold(config);
    r->model = model;
    r->mstate = mstate;
    r->tstate = tstate;
    r->timer = timer;
    r->client_budget_ms = budget;
    r->key = key;
    r->kstate = ks;
    new_id(w, r->id, sizeof(r->id));
    keel_req_begin(r);
}

/* GET /v1/models/{id}: the alias as a model object, else 404 model_not_found (in Anthropic's
 * envelope for a client that sends anthropic-version, as its SDK does) */
static void model_get(struct keel_worker *w, struct keel_http *h, const char *id, size_t len)
{
    size_t vlen;
    const struct keel_encoder_ops *enc =
        keel_http_header(h, "anthropic-version", &vlen) ? &keel_anthropic_encoder : &keel_openai_chat_encoder;
    const struct keel_key_conf *key = authenticate(w, h, enc);
    if (key == NULL)
        return;
    char name[256];
    const struct keel_model_conf *m = NULL;
    if (len < sizeof(name)) {
        memcpy(name, id, len);
        name[len] = '\0';
        m = keel_config_model(w->config, name);
    }
    if (m != NULL && key != &open_door && !keel_key_allows(key, m->name))
        m = NULL; /* not this key's to know about */
    if (m != NULL) {
        respond_json(h, model_json(m->name));
        return;
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "unknown model \"%.*s\": GET /v1/models lists the configured ones",
             (int)(len < 100 ? len : 100), id);
    reject(w, h, enc, len < sizeof(name) ? name : NULL, 404, "model_not_found", msg);
}

/* the client protocols keel speaks, by path (each also without its /v1) */
static const struct {
    const char *path;
    const struct keel_encoder_ops *enc;
} protocols[] = {
    {"/v1/chat/completions", &keel_openai_chat_encoder},
    {"/v1/messages", &keel_anthropic_encoder},
    {"/v1/responses", &keel_responses_encoder},
    {"/v1/embeddings", &keel_openai_embeddings_encoder},
};

/* the protocol a path speaks (its own or under it, e.g. /v1/messages/count_tokens); OpenAI's
 * when none */
static const struct keel_encoder_ops *protocol_of(const char *path, size_t plen)
{
    for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++) {
        const char *p = protocols[i].path;
        for (int bare = 0; bare < 2; bare++, p += 3) { /* with /v1, then without */
            size_t n = strlen(p);
            if (plen >= n && memcmp(path, p, n) == 0 && (plen == n || path[n] == '/'))
                return protocols[i].enc;
        }
    }
    return &keel_openai_chat_encoder;
}

size_t keel_intake_refusal(void *app, const char *path, size_t pathlen, int status, const char *code,
                           const char *message, char *out, size_t cap)
{
    const struct keel_encoder_ops *enc = protocol_of(path, pathlen);
    char id[24];
    new_id(app, id, sizeof(id));
    record_refusal(app, enc, id, NULL, NULL, status, code);
    char *body = keel_answer_envelope(enc, NULL, status, "invalid_request_error", code, message, 0);
    size_t n = body ? strlen(body) : 0;
    if (n >= cap)
        n = 0;
    if (n > 0)
        memcpy(out, body, n);
    free(body);
    return n;
}

/* The config a worker's next request begins under: the one in force (a SIGHUP swaps it on the
 * gateway's loop; each worker takes the new one at its next request, under gw->mu, and holds
 * it while it is its own). */
static void refresh_config(struct keel_worker *w)
{
    struct keel_gateway *gw = w->gw;
    if (__atomic_load_n(&gw->config_gen, __ATOMIC_RELAXED) == w->config_gen)
        return;
    keel_gw_lock(gw);
    keel_config_drop(w->config);
    w->config = keel_config_hold(gw->config);
    w->config_gen = gw->config_gen;
    keel_gw_unlock(gw);
}

void keel_intake_handle(void *app, struct keel_http *h)
{
    struct keel_worker *w = app;
    __atomic_store_n(&w->requests, w->requests + 1, __ATOMIC_RELAXED);
    refresh_config(w);
    size_t mlen, plen;
    const char *method = keel_http_method(h, &mlen);
    const char *path = keel_http_path(h, &plen);
    int post = mlen == 4 && memcmp(method, "POST", 4) == 0;
    int get = mlen == 3 && memcmp(method, "GET", 3) == 0;
    const struct keel_encoder_ops *openai = &keel_openai_chat_encoder;
#define PATH_IS(s) (plen == strlen(s) && memcmp(path, s, plen) == 0)
    for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++) {
        if (PATH_IS(protocols[i].path) || PATH_IS(protocols[i].path + 3)) {
            if (post)
                chat(w, h, protocols[i].enc);
            else
                reject(w, h, protocols[i].enc, NULL, 405, "method_not_allowed", "use POST");
            return;
        }
    }
    if (PATH_IS("/v1/models") || PATH_IS("/models")) {
        if (get)
            models_list(w, h);
        else
            reject(w, h, openai, NULL, 405, "method_not_allowed", "use GET");
    } else if (get && plen > 11 && memcmp(path, "/v1/models/", 11) == 0) {
        model_get(w, h, path + 11, plen - 11);
    } else if (get && plen > 8 && memcmp(path, "/models/", 8) == 0) {
        model_get(w, h, path + 8, plen - 8);
    } else if (PATH_IS("/v1/messages/count_tokens") || PATH_IS("/messages/count_tokens")) {
        /* counting needs the target's tokenizer; keel has none (README "Anthropic clients") */
        reject(w, h, &keel_anthropic_encoder, NULL, 501, "not_implemented",
               "keel does not count tokens: POST /v1/messages/count_tokens is not supported");
    } else {
        reject(w, h, openai, NULL, 404, "unknown_url", "unknown path");
    }
#undef PATH_IS
}
