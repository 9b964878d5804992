/* shared.c - breakers and cool-downs shared through Redis; see shared.h. Two connections: one for
 * commands, one subscribed to PREFIXbreakers. A change here is written to the hash
 * PREFIXbreakers (field "UPSTREAM\x1fMODEL", the target's snapshot as JSON: state, when its
 * opening and its 429 cool-down end, in wall-clock ms) and published on the channel of the same
 * name; every instance applies the others' snapshots to its local breakers (core/breaker.h's
 * keel_breaker_shared_*), and reads the whole hash when it (re)connects. The background probe of
 * a target is claimed with SET PREFIXprobe:UPSTREAM\x1fMODEL INSTANCE NX PX ttl. */
#include "shared.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/units.h"
#include "events.h"
#include "gateway_t.h"
#include "log.h"
#include "state.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define KEY_FLUSH_MS 5 /* key use is batched this long: one message per key, not per request */
#define TICK_MS 1000   /* the watchdog: claims unanswered this long follow local rules; a PING */
#define PING_LIMIT_MS 3000 /* a Redis that answers no PING this long is down, connection or not */

struct claim;

/* a client key's use here not yet sent */
struct key_use {
    char *name;
    uint64_t requests, tokens;
};

struct keel_shared {
    struct keel_gateway *gw;
    char *host, *password, *prefix;
    int port, db;
    char instance[17];           /* this process, random: its own messages are not applied */
    redisAsyncContext *cmd, *sub; /* NULL when not connected */
    int cmd_up, sub_up;          /* connected */
    int up;                      /* both: keel_state_redis_up */
    int ever_up;
    int said_down;               /* the outage was logged and evented (once per outage) */
    int stopping;
    uv_timer_t retry;
    uv_timer_t flush;            /* sends the key uses gathered (KEY_FLUSH_MS) */
    uv_timer_t tick;             /* the watchdog (TICK_MS) */
    int closing;                 /* handles keel_shared_stop closed and not yet called back */
    struct claim *claims;        /* sent and not answered to the prober yet */
    uint64_t ping_at;            /* a PING is out since then (loop ms); 0: none */
    int said_refused;            /* AUTH or SELECT was refused: said once */
    struct key_use *uses;        /* [nuses] pending, by key name */
    size_t nuses, capuses;
    uint64_t backoff_ms;
    uint64_t published, applied, claims_won, claims_lost, outages;
    void (*opened)(void *ctx); /* keel_shared_new's: a breaker here opened by another's message */
    void *opened_ctx;
};

static void connect_both(struct keel_shared *s);

static void event(struct keel_shared *s, const char *what)
{
    keel_events_emit(&s->gw->events, json_pack("{s:s, s:s}", "type", "state", "redis", what));
}

/* ------------------------------------------------------------------ snapshots */

/* loop ms <-> wall ms, for times that cross instances (each has its own loop clock) */
static int64_t to_wall(struct keel_shared *s, uint64_t loop_ms)
{
    uint64_t now = uv_now(s->gw->loop);
    return keel_time_now_ms() + (int64_t)loop_ms - (int64_t)now;
}

static uint64_t to_loop(struct keel_shared *s, int64_t wall_ms)
{
    int64_t d = wall_ms - keel_time_now_ms();
    uint64_t now = uv_now(s->gw->loop);
    return d <= 0 ? now : now + (uint64_t)d;
}

static void field_of(const char *upstream, const char *model, char *dst, size_t n)
{
    snprintf(dst, n, "%s\x1f%s", upstream, model);
}

/* ts's breaker as the others need it: open (until when, its cooldown) or closed, and its 429
 * cool-down's end (0 none) */
static char *snapshot(struct keel_shared *s, const struct keel_target_state *ts, int *closed)
{
    const struct keel_breaker *b = &ts->breaker;
    uint64_t now = uv_now(s->gw->loop);
    int open = b->state != KEEL_BREAKER_CLOSED;
    uint64_t until = b->background ? (b->probe_at ? b->probe_at : b->open_until) : b->open_until;
    if (open && until <= now)
        until = now + 1;
    *closed = !open && b->cool_until <= now;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "i", s->instance, "u", ts->upstream, "m", ts->model,
                          "s", open ? "open" : "closed", "until", (json_int_t)(open ? to_wall(s, until) : 0), "cool",
                          (json_int_t)(b->cool_until > now ? to_wall(s, b->cool_until) : 0), "cd",
                          (json_int_t)b->cooldown_ms);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

void keel_shared_publish(struct keel_shared *s, const struct keel_target_state *ts)
{
    if (s == NULL || !s->up)
        return;
    int closed;
    char *text = snapshot(s, ts, &closed);
    if (text == NULL)
        return;
    char field[512], key[256];
    field_of(ts->upstream, ts->model, field, sizeof(field));
    snprintf(key, sizeof(key), "%sbreakers", s->prefix);
    if (closed)
        redisAsyncCommand(s->cmd, NULL, NULL, "HDEL %s %s", key, field);
    else
        redisAsyncCommand(s->cmd, NULL, NULL, "HSET %s %s %s", key, field, text);
    redisAsyncCommand(s->cmd, NULL, NULL, "PUBLISH %s %s", key, text);
    s->published++;
    free(text);
}

/* the target state named upstream/model, NULL when this instance has none */
static struct keel_target_state *find(struct keel_shared *s, const char *upstream, const char *model)
{
    for (size_t i = 0; i < s->gw->state.ntargets; i++) {
        struct keel_target_state *ts = s->gw->state.targets[i];
        if (strcmp(ts->upstream, upstream) == 0 && strcmp(ts->model, model) == 0)
            return ts;
    }
    return NULL;
}

/* another instance's snapshot, applied to the local breaker */
static void apply(struct keel_shared *s, const char *text, size_t len)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    const char *inst = json_string_value(json_object_get(o, "i"));
    const char *u = json_string_value(json_object_get(o, "u")), *m = json_string_value(json_object_get(o, "m"));
    const char *st = json_string_value(json_object_get(o, "s"));
    struct keel_target_state *ts = inst && u && m && st && strcmp(inst, s->instance) != 0 ? find(s, u, m) : NULL;
    if (ts == NULL) {
        json_decref(o);
        return;
    }
    uint64_t now = uv_now(s->gw->loop);
    enum keel_breaker_state was = ts->breaker.state;
    enum keel_breaker_change change = KEEL_BREAKER_SAME;
    if (strcmp(st, "open") == 0)
        change = keel_breaker_shared_open(&ts->breaker, &ts->params,
                                          to_loop(s, json_integer_value(json_object_get(o, "until"))),
                                          (uint64_t)json_integer_value(json_object_get(o, "cd")), now);
    else if (strcmp(st, "closed") == 0)
        change = keel_breaker_shared_close(&ts->breaker);
    json_int_t cool = json_integer_value(json_object_get(o, "cool"));
    if (cool > 0)
        keel_breaker_shared_cool(&ts->breaker, to_loop(s, cool));
    s->applied++;
    if (change != KEEL_BREAKER_SAME) {
        keel_info("breaker %s/%s: %s -> %s, as instance %s says through redis", u, m, keel_breaker_state_name(was),
                  keel_breaker_state_name(ts->breaker.state), inst);
        keel_events_emit(&s->gw->events,
                         json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "breaker", "upstream", u, "model", m, "from",
                                   keel_breaker_state_name(was), "to", keel_breaker_state_name(ts->breaker.state),
                                   "via", "state"));
        if (s->opened != NULL)
            s->opened(s->opened_ctx); /* an opened target gets its probe planned (whoever claims it) */
    }
    json_decref(o);
}

/* another instance's use of a client key, counted here: {"i","k","r","t"} */
static void apply_use(struct keel_shared *s, const char *text, size_t len)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    const char *inst = json_string_value(json_object_get(o, "i")), *name = json_string_value(json_object_get(o, "k"));
    const struct keel_config *c = s->gw->config;
    const struct keel_key_conf *k = NULL;
    for (size_t i = 0; inst != NULL && name != NULL && strcmp(inst, s->instance) != 0 && i < c->nkeys; i++)
        if (strcmp(c->keys[i].name, name) == 0)
            k = &c->keys[i];
    struct keel_key_state *ks = k ? keel_state_key(&s->gw->state, k->name) : NULL;
    if (ks != NULL) {
        uint64_t now = uv_now(s->gw->loop);
        json_int_t req = json_integer_value(json_object_get(o, "r")), tok = json_integer_value(json_object_get(o, "t"));
        keel_quota_charge(&ks->quota, k->rpm, req > 0 ? (uint64_t)req : 0, now); /* quota.c clamps the rest */
        keel_quota_spend(&ks->quota, k->tpm, tok > 0 ? (uint64_t)tok : 0, now);
        s->applied++;
    }
    json_decref(o);
}

static void resync(struct keel_shared *s);

static void on_message(redisAsyncContext *c, void *r, void *priv)
{
    struct keel_shared *s = priv;
    redisReply *reply = r;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return;
    redisReply *kind = reply->element[0], *channel = reply->element[1], *payload = reply->element[2];
    if (kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "subscribe") == 0 && payload->type == REDIS_REPLY_INTEGER &&
        payload->integer == 2 && s->up && s->cmd != NULL) {
        resync(s); /* both channels confirmed */
        return;
    }
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 || payload->type != REDIS_REPLY_STRING ||
        channel->type != REDIS_REPLY_STRING)
        return;
    size_t pl = strlen(s->prefix);
    if (strncmp(channel->str, s->prefix, pl) == 0 && strcmp(channel->str + pl, "keys") == 0)
        apply_use(s, payload->str, payload->len);
    else
        apply(s, payload->str, payload->len);
}

/* ------------------------------------------------------------------ client keys */

static void on_flush(uv_timer_t *t)
{
    struct keel_shared *s = t->data;
    char channel[256];
    snprintf(channel, sizeof(channel), "%skeys", s->prefix);
    for (size_t i = 0; i < s->nuses; i++) {
        struct key_use *u = &s->uses[i];
        if (s->up && (u->requests > 0 || u->tokens > 0)) {
            json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "i", s->instance, "k", u->name, "r", (json_int_t)u->requests,
                                  "t", (json_int_t)u->tokens);
            char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
            if (text != NULL) {
                redisAsyncCommand(s->cmd, NULL, NULL, "PUBLISH %s %s", channel, text);
                s->published++;
            }
            free(text);
            json_decref(o);
        }
        u->requests = u->tokens = 0;
    }
}

void keel_shared_key_use(struct keel_shared *s, const char *key, uint64_t requests, uint64_t tokens)
{
    if (s == NULL || !s->up || (requests == 0 && tokens == 0))
        return;
    struct key_use *u = NULL;
    for (size_t i = 0; i < s->nuses && u == NULL; i++)
        if (strcmp(s->uses[i].name, key) == 0)
            u = &s->uses[i];
    if (u == NULL) {
        if (s->nuses == s->capuses) {
            size_t cap = s->capuses ? s->capuses * 2 : 8;
            struct key_use *nu = realloc(s->uses, cap * sizeof(*nu));
            if (nu == NULL)
                return;
            s->uses = nu;
            s->capuses = cap;
        }
        char *name = strdup(key);
        if (name == NULL)
            return;
        u = &s->uses[s->nuses++];
        *u = (struct key_use){name, 0, 0};
    }
    u->requests += requests;
    u->tokens += tokens;
    if (!uv_is_active((uv_handle_t *)&s->flush))
        uv_timer_start(&s->flush, on_flush, KEY_FLUSH_MS, 0);
}

/* the whole hash at (re)connect: what was decided while this instance was away */
static void on_resync(redisAsyncContext *c, void *r, void *priv)
{
    struct keel_shared *s = priv;
    redisReply *reply = r;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 1; i < reply->elements; i += 2)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            apply(s, reply->element[i]->str, reply->element[i]->len);
}

/* ------------------------------------------------------------------ claims */

struct claim {
    struct keel_shared *s;
    keel_shared_claim_cb cb;
    void *ctx;
    uint64_t sent;       /* loop ms */
    int answered;        /* the prober has its answer (the watchdog gave it): the reply is ignored */
    struct claim *next;  /* s->claims, while not answered */
};

/* the prober's answer, once; the claim stays until its reply (or the context's end) frees it */
static void answer(struct claim *cl, int granted)
{
    struct keel_shared *s = cl->s;
    for (struct claim **p = &s->claims; *p != NULL; p = &(*p)->next)
        if (*p == cl) {
            *p = cl->next;
            break;
        }
    cl->answered = 1;
    cl->cb(cl->ctx, granted);
}

static void on_claim(redisAsyncContext *c, void *r, void *priv)
{
    struct claim *cl = priv;
    redisReply *reply = r;
    struct keel_shared *s = cl->s;
    if (!cl->answered) {
        /* OK: ours. nil: another instance's. An error (a read-only replica, out of memory, ACL)
         * or no reply (Redis went away): local rules, this instance probes; keel stopping: no */
        int granted = reply == NULL ? !s->stopping : reply->type != REDIS_REPLY_NIL;
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
            keel_warn("state: redis refused a probe claim (%.*s): probing by local rules", (int)reply->len, reply->str);
        if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
            granted ? s->claims_won++ : s->claims_lost++;
        answer(cl, granted);
    }
    free(cl);
}

void keel_shared_claim(struct keel_shared *s, const struct keel_target_state *ts, uint64_t ttl_ms,
                       keel_shared_claim_cb cb, void *ctx)
{
    struct claim *cl = s != NULL && s->up ? malloc(sizeof(*cl)) : NULL;
    if (cl == NULL) {
        cb(ctx, 1);
        return;
    }
    *cl = (struct claim){.s = s, .cb = cb, .ctx = ctx, .sent = uv_now(s->gw->loop), .next = s->claims};
    s->claims = cl;
    char key[768];
    snprintf(key, sizeof(key), "%sprobe:%s\x1f%s", s->prefix, ts->upstream, ts->model);
    if (redisAsyncCommand(s->cmd, on_claim, cl, "SET %s %s NX PX %llu", key, s->instance,
                          (unsigned long long)(ttl_ms ? ttl_ms : 1)) != REDIS_OK) {
        answer(cl, 1);
        free(cl);
    }
}

/* ------------------------------------------------------------------ the connections */

static void on_retry(uv_timer_t *t)
{
    connect_both(t->data);
}

static void lost(struct keel_shared *s);

static void on_setup(redisAsyncContext *c, void *r, void *priv);

/* PING's answer; an error (NOAUTH: a password is needed) is a refusal, as AUTH's */
static void on_pong(redisAsyncContext *c, void *r, void *priv)
{
    struct keel_shared *s = priv;
    if (r != NULL)
        s->ping_at = 0;
    on_setup(c, r, priv);
}

/* The watchdog: a Redis that stops answering without closing (a partition, a frozen host) must
 * not hold the probes: claims unanswered for TICK_MS follow local rules, and a PING unanswered
 * for PING_LIMIT_MS counts as down */
static void on_tick(uv_timer_t *t)
{
    struct keel_shared *s = t->data;
    uint64_t now = uv_now(s->gw->loop);
    while (s->claims != NULL) {
        struct claim *late = NULL;
        for (struct claim *c = s->claims; c != NULL && late == NULL; c = c->next)
            if (now - c->sent >= TICK_MS)
                late = c;
        if (late == NULL)
            break;
        answer(late, 1); /* freed when its reply, or the context's end, comes */
    }
    if (!s->up)
        return;
    if (s->ping_at != 0 && now - s->ping_at >= PING_LIMIT_MS) {
        keel_warn("state: redis %s:%d answers nothing for %d ms", s->host, s->port, PING_LIMIT_MS);
        s->ping_at = 0;
        lost(s);
        return;
    }
    if (s->ping_at == 0 && redisAsyncCommand(s->cmd, on_pong, s, "PING") == REDIS_OK)
        s->ping_at = now;
}

/* one connection is gone (or never came): both go, and come back after a backoff */
static void lost(struct keel_shared *s)
{
    if (s->up || !s->said_down) {
        s->outages += s->up;
        keel_warn("state: redis %s:%d %s: going on with this instance's local state, retrying", s->host, s->port,
                  s->said_refused ? "refuses this instance" : "unreachable");
        event(s, "down");
        s->said_down = 1;
    }
    s->up = 0;
    s->ping_at = 0;
    if (s->cmd != NULL) {
        redisAsyncContext *c = s->cmd;
        s->cmd = NULL;
        redisAsyncFree(c);
    }
    if (s->sub != NULL) {
        redisAsyncContext *c = s->sub;
        s->sub = NULL;
        redisAsyncFree(c);
    }
    if (s->stopping)
        return;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (s->backoff_ms > BACKOFF_MAX_MS)
        s->backoff_ms = BACKOFF_MAX_MS;
    uv_timer_start(&s->retry, on_retry, s->backoff_ms, 0);
}

/* both connections are there: subscribe, read what the others decided, tell them ours */
static void became_up(struct keel_shared *s)
{
    s->up = 1;
    s->backoff_ms = 0; /* it answered: the next outage starts from the shortest wait */
    s->said_refused = 0;
    if (s->said_down || !s->ever_up)
        keel_info("state: redis %s:%d up: breakers and cool-downs shared (instance %s)", s->host, s->port, s->instance);
    if (s->said_down)
        event(s, "up");
    s->said_down = 0;
    s->ever_up = 1;
    char key[256];
    snprintf(key, sizeof(key), "%sbreakers", s->prefix);
    char keys[256];
    snprintf(keys, sizeof(keys), "%skeys", s->prefix);
    /* the resync waits for the subscription (on_message): what the others write before it is
     * in the hash, what they publish after it reaches us; nothing falls between */
    redisAsyncCommand(s->sub, on_message, s, "SUBSCRIBE %s %s", key, keys);
}

/* Subscribed to both channels: read what the others decided meanwhile, tell them ours. */
static void resync(struct keel_shared *s)
{
    char key[256];
    snprintf(key, sizeof(key), "%sbreakers", s->prefix);
    redisAsyncCommand(s->cmd, on_resync, s, "HGETALL %s", key);
    for (size_t i = 0; i < s->gw->state.ntargets; i++) {
        const struct keel_target_state *ts = s->gw->state.targets[i];
        if (ts->breaker.state != KEEL_BREAKER_CLOSED || ts->breaker.cool_until > uv_now(s->gw->loop))
            keel_shared_publish(s, ts);
    }
}

/* the first PING's answer: Redis takes this instance (up), or refuses it (NOAUTH: said once) */
static void on_hello(redisAsyncContext *c, void *r, void *priv)
{
    struct keel_shared *s = priv;
    redisReply *reply = r;
    if (reply == NULL || s->up)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        on_setup(c, r, priv);
        return;
    }
    became_up(s);
}

static void on_connect(const redisAsyncContext *c, int status)
{
    struct keel_shared *s = c->data;
    if (status != REDIS_OK) { /* hiredis frees c after this */
        if (c == s->cmd)
            s->cmd = NULL;
        if (c == s->sub)
            s->sub = NULL;
        lost(s);
        return;
    }
    if (c == s->cmd)
        s->cmd_up = 1;
    else
        s->sub_up = 1;
    if (s->cmd_up && s->sub_up && s->cmd != NULL && s->sub != NULL)
        redisAsyncCommand(s->cmd, on_hello, s, "PING"); /* up once Redis answers, not once it accepts */
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    struct keel_shared *s = c->data;
    if (c != s->cmd && c != s->sub)
        return; /* one lost() freed: it is handling the outage already */
    if (c == s->cmd) {
        s->cmd = NULL;
        s->cmd_up = 0;
    }
    if (c == s->sub) {
        s->sub = NULL;
        s->sub_up = 0;
    }
    lost(s);
}

/* AUTH's or SELECT's answer: refused, it is said once (the password never is), and the link
 * closed; the retries then wait the longest backoff */
static void on_setup(redisAsyncContext *c, void *r, void *priv)
{
    struct keel_shared *s = priv;
    redisReply *reply = r;
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR)
        return;
    if (!s->said_refused)
        keel_warn("state: redis %s:%d refused this instance (%.*s): check state.redis's password and db", s->host,
                  s->port, (int)reply->len, reply->str);
    s->said_refused = 1;
    s->backoff_ms = BACKOFF_MAX_MS / 2;
    redisAsyncDisconnect(c);
}

static redisAsyncContext *open_one(struct keel_shared *s)
{
    redisAsyncContext *c = redisAsyncConnect(s->host, s->port);
    if (c == NULL)
        return NULL;
    if (c->err) {
        redisAsyncFree(c);
        return NULL;
    }
    c->data = s;
    if (redisLibuvAttach(c, s->gw->loop) != REDIS_OK) {
        redisAsyncFree(c);
        return NULL;
    }
    redisEnableKeepAlive(&c->c); /* a link that dies without a word is noticed */
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    /* queued until connected, in order */
    if (s->password != NULL)
        redisAsyncCommand(c, on_setup, s, "AUTH %s", s->password);
    if (s->db != 0)
        redisAsyncCommand(c, on_setup, s, "SELECT %d", s->db);
    return c;
}

static void connect_both(struct keel_shared *s)
{
    s->cmd_up = s->sub_up = 0;
    s->cmd = open_one(s);
    s->sub = open_one(s);
    if (s->cmd == NULL || s->sub == NULL)
        lost(s);
}

/* The host as an address, resolved once at start: hiredis 0.14 resolves a name on the loop,
 * blocking it for as long as the resolver takes, at every reconnect (malloc'd) */
static char *numeric_host(const char *host)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char addr[NI_MAXHOST];
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
        keel_warn("state: cannot resolve redis host %s now: keel will try it as a name", host);
        return strdup(host);
    }
    int rv = getnameinfo(res->ai_addr, res->ai_addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    return strdup(rv == 0 ? addr : host);
}

struct keel_shared *keel_shared_new(struct keel_gateway *gw, const struct keel_state_conf *conf,
                                    void (*opened)(void *ctx), void *ctx)
{
    if (conf == NULL)
        return NULL;
    struct keel_shared *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->gw = gw;
    s->opened = opened;
    s->opened_ctx = ctx;
    s->host = numeric_host(conf->host);
    s->password = conf->password ? strdup(conf->password) : NULL;
    s->prefix = strdup(conf->prefix);
    s->port = conf->port;
    s->db = conf->db;
    snprintf(s->instance, sizeof(s->instance), "%016llx",
             (unsigned long long)(gw->id_seed ^ (uint64_t)keel_time_now_ms() * 0x9e3779b97f4a7c15ULL));
    uv_timer_init(gw->loop, &s->retry);
    s->retry.data = s;
    uv_timer_init(gw->loop, &s->flush);
    s->flush.data = s;
    uv_timer_init(gw->loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&s->tick);
    connect_both(s);
    return s;
}

/* each closed handle's callback: the last frees s (libuv calls them in no order to rely on) */
static void free_shared(uv_handle_t *h)
{
    struct keel_shared *s = h->data;
    if (--s->closing > 0)
        return;
    for (size_t i = 0; i < s->nuses; i++)
        free(s->uses[i].name);
    free(s->uses);
    free(s->host);
    if (s->password != NULL) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->prefix);
    free(s);
}

void keel_shared_stop(struct keel_shared *s)
{
    if (s == NULL)
        return;
    s->stopping = 1;
    s->said_down = 1; /* a stop is no outage to report */
    uv_timer_stop(&s->retry);
    if (s->cmd != NULL || s->sub != NULL)
        lost(s); /* pending claims are answered "not granted" */
    s->closing = 3;
    uv_close((uv_handle_t *)&s->flush, free_shared);
    uv_close((uv_handle_t *)&s->retry, free_shared);
    uv_close((uv_handle_t *)&s->tick, free_shared);
}

/* ------------------------------------------------------------------ status */

json_t *keel_shared_status(const struct keel_shared *s)
{
    if (s == NULL)
        return json_null();
    return json_pack("{s:s, s:i, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:I}", "redis", s->host, "port", s->port, "prefix",
                     s->prefix, "up", s->up, "instance", s->instance, "published", (json_int_t)s->published, "applied",
                     (json_int_t)s->applied, "claims_won", (json_int_t)s->claims_won, "claims_lost",
                     (json_int_t)s->claims_lost, "outages", (json_int_t)s->outages);
}

void keel_shared_metrics(const struct keel_shared *s, void (*line)(void *, const char *), void *ctx)
{
    if (s == NULL)
        return;
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "# HELP keel_state_redis_up Whether the shared state's Redis is reachable (1) or this instance goes on "
             "alone (0).\n# TYPE keel_state_redis_up gauge\nkeel_state_redis_up %d\n"
             "# HELP keel_state_messages_total Breaker snapshots published to the other instances, and applied from "
             "them.\n# TYPE keel_state_messages_total counter\n"
             "keel_state_messages_total{dir=\"published\"} %llu\nkeel_state_messages_total{dir=\"applied\"} %llu\n"
             "# HELP keel_state_probe_claims_total Background probe claims, won (this instance probed) or lost.\n"
             "# TYPE keel_state_probe_claims_total counter\n"
             "keel_state_probe_claims_total{result=\"won\"} %llu\nkeel_state_probe_claims_total{result=\"lost\"} %llu\n",
             s->up, (unsigned long long)s->published, (unsigned long long)s->applied,
             (unsigned long long)s->claims_won, (unsigned long long)s->claims_lost);
    line(ctx, buf);
}
