/* config.c - YAML config loader; see config.h. Walks libyaml's document tree so every node
 * still knows its line; every problem found is reported (a key whose value is refused is skipped,
 * and whatever depends on it is not checked, so one mistake gives one error), and a config with
 * any error is refused whole: nothing is half-applied. */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <jansson.h>
#include <yaml.h>

#include "core/jpath.h"
#include "core/json.h"
#include "core/units.h"

struct ctx {
    const char *file;
    yaml_document_t *doc;
    const char *(*getenv_fn)(const char *);
    struct keel_config_errors *errs;
    size_t nerr;        /* errors reported so far, kept or not */
    int upstreams_vague; /* some upstream has no name (or the list none): "unknown upstream" is a guess */
};

/* ------------------------------------------------------------------ errors */

/* Keeps errs sorted by line, the first KEEL_CONFIG_MAX_ERRORS in the file; an equal line goes
 * after the ones already there (the order found). */
static void add_error(struct keel_config_errors *e, unsigned long line, const char *msg)
{
    size_t i = e->n;
    while (i > 0 && e->_line[i - 1] > line)
        i--;
    if (i == KEEL_CONFIG_MAX_ERRORS) {
        e->more++;
        return;
    }
    if (e->n == KEEL_CONFIG_MAX_ERRORS) { /* the last one in the file gives way */
        e->more++;
        e->n--;
    }
    memmove(&e->msg[i + 1], &e->msg[i], (e->n - i) * sizeof(e->msg[0]));
    memmove(&e->_line[i + 1], &e->_line[i], (e->n - i) * sizeof(e->_line[0]));
    snprintf(e->msg[i], sizeof(e->msg[i]), "%s", msg);
    e->_line[i] = line;
    e->n++;
}

/* Reports "FILE:LINE: key: problem" (LINE: n's) and returns -1, for `return fail(...)`. */
static int fail(struct ctx *x, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char msg[256], line[sizeof(x->errs->msg[0])];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    unsigned long lineno = n ? (unsigned long)n->start_mark.line + 1 : 0UL;
    snprintf(line, sizeof(line), "%s:%lu: %s: %s", x->file, lineno, key, msg);
    add_error(x->errs, lineno, line);
    x->nerr++;
    return -1;
}

/* errors that concern no line: the file itself, memory */
static void fail_file(struct keel_config_errors *e, const char *file, const char *fmt, ...)
{
    char msg[256], line[sizeof(e->msg[0])];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "%s: %s", file, msg);
    add_error(e, 0, line);
}

/* -1 if anything was reported since `before` (x->nerr then), else 0 */
static int failed_since(const struct ctx *x, size_t before)
{
    return x->nerr > before ? -1 : 0;
}

static const char *type_name(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "empty";
    }
}

static yaml_node_t *node(struct ctx *x, int i)
{
    return yaml_document_get_node(x->doc, i);
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* The earlier pair of map whose key repeats p's, or NULL. */
static const yaml_node_pair_t *earlier_same_key(struct ctx *x, const yaml_node_t *map, const yaml_node_pair_t *p)
{
    const yaml_node_t *k = node(x, p->key);
    if (k == NULL || k->type != YAML_SCALAR_NODE)
        return NULL;
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
        const yaml_node_t *e = node(x, q->key);
        if (e != NULL && e->type == YAML_SCALAR_NODE && e->data.scalar.length == k->data.scalar.length &&
            memcmp(e->data.scalar.value, k->data.scalar.value, k->data.scalar.length) == 0)
            return q;
    }
    return NULL;
}

/* A key given twice in one mapping is an error, as an unknown one is: YAML leaves it undefined,
 * and which one "wins" would be a silent choice (the second env: list also overflowed the first's
 * count, found by fuzz_config). Each repeat is reported here, and FOREACH_PAIR skips it. */
static void unique_keys(struct ctx *x, const yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const yaml_node_pair_t *q = earlier_same_key(x, map, p);
        if (q == NULL)
            continue;
        const yaml_node_t *k = node(x, p->key), *e = node(x, q->key);
        char path[256];
        if (key[0] == '\0' || strcmp(key, "(top level)") == 0)
            snprintf(path, sizeof(path), "%s", (const char *)k->data.scalar.value);
        else
            snprintf(path, sizeof(path), "%s.%s", key, (const char *)k->data.scalar.value);
        fail(x, k, path, "duplicate key (already given on line %lu)", (unsigned long)e->start_mark.line + 1);
    }
}

/* A mapping with a repeated key is still walked (FOREACH_PAIR skips the repeats), so the errors
 * in the rest of it are found too: only a wrong type returns -1. */
static int expect(struct ctx *x, const yaml_node_t *n, yaml_node_type_t t, const char *key)
{
    if (n->type == t) {
        if (t == YAML_MAPPING_NODE)
            unique_keys(x, n, key);
        return 0;
    }
    const char *want = t == YAML_SCALAR_NODE ? "a scalar" : t == YAML_SEQUENCE_NODE ? "a list" : "a mapping";
    return fail(x, n, key, "expected %s, got %s", want, type_name(n));
}

/* ------------------------------------------------------------------ scalars */

/* ${VAR} from the environment; an unset variable is an error, never an empty secret */
static int expand(struct ctx *x, const yaml_node_t *n, const char *key, char **out)
{
    if (expect(x, n, YAML_SCALAR_NODE, key) != 0)
        return -1;
    const char *s = scalar(n);
    size_t cap = strlen(s) + 1, len = 0;
    char *r = malloc(cap);
    if (r == NULL)
        return fail(x, n, key, "out of memory");
    while (*s != '\0') {
        if (s[0] == '$' && s[1] == '{') {
            const char *end = strchr(s + 2, '}');
            char var[128];
            size_t vlen = end ? (size_t)(end - s - 2) : 0;
            if (end == NULL || vlen == 0 || vlen >= sizeof(var)) {
                free(r);
                return fail(x, n, key, "malformed ${VAR} reference");
            }
            memcpy(var, s + 2, vlen);
            var[vlen] = '\0';
            const char *val = x->getenv_fn(var);
            if (val == NULL) {
                free(r);
                return fail(x, n, key, "environment variable %s is not set", var);
            }
            size_t l = strlen(val);
            char *nr = realloc(r, cap + l);
            if (nr == NULL) {
                free(r);
                return fail(x, n, key, "out of memory");
            }
            r = nr;
            cap += l;
            memcpy(r + len, val, l);
            len += l;
            s = end + 1;
        } else {
            r[len++] = *s++;
        }
    }
    r[len] = '\0';
    *out = r;
    return 0;
}

static int get_bool(struct ctx *x, const yaml_node_t *n, const char *key, int *out)
{
    if (expect(x, n, YAML_SCALAR_NODE, key) != 0)
        return -1;
    if (strcmp(scalar(n), "true") != 0 && strcmp(scalar(n), "false") != 0)
        return fail(x, n, key, "expected true or false");
    *out = strcmp(scalar(n), "true") == 0;
    return 0;
}

static int get_string(struct ctx *x, const yaml_node_t *n, const char *key, char **out)
{
    char *s = NULL;
    if (expand(x, n, key, &s) != 0)
        return -1;
    if (s[0] == '\0') {
        free(s);
        return fail(x, n, key, "must not be empty");
    }
    free(*out);
    *out = s;
    return 0;
}

static int get_duration(struct ctx *x, const yaml_node_t *n, const char *key, uint64_t *out)
{
    if (expect(x, n, YAML_SCALAR_NODE, key) != 0)
        return -1;
    if (keel_parse_duration_ms(scalar(n), out) != 0)
        return fail(x, n, key, "bad duration \"%s\" (use e.g. 250ms, 5s, 2m, 1h)", scalar(n));
    return 0;
}

static int get_positive_duration(struct ctx *x, const yaml_node_t *n, const char *key, uint64_t *out)
{
    if (get_duration(x, n, key, out) != 0)
        return -1;
    return *out > 0 ? 0 : fail(x, n, key, "must be greater than zero");
}

static int get_uint(struct ctx *x, const yaml_node_t *n, const char *key, uint64_t *out)
{
    if (expect(x, n, YAML_SCALAR_NODE, key) != 0)
        return -1;
    if (keel_parse_uint(scalar(n), out) != 0)
        return fail(x, n, key, "expected a non-negative integer, got \"%s\"", scalar(n));
    return 0;
}

static int get_size(struct ctx *x, const yaml_node_t *n, const char *key, uint64_t *out)
{
    if (expect(x, n, YAML_SCALAR_NODE, key) != 0)
        return -1;
    if (keel_parse_size(scalar(n), out) != 0)
        return fail(x, n, key, "bad size \"%s\" (use e.g. 65536, 512k, 8m)", scalar(n));
    return 0;
}

int keel_parse_hostport(const char *s, char **host, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -EINVAL;
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -EINVAL;
        hlen = (size_t)(colon - s);
    }
    uint64_t p;
    if (hlen == 0 || keel_parse_uint(colon + 1, &p) != 0 || p > 65535)
        return -EINVAL;
    *host = strndup(h, hlen);
    if (*host == NULL)
        return -ENOMEM;
    *port = (int)p;
    return 0;
}

/* An IP literal as the listener's uv_ip4_addr/uv_ip6_addr read it: with a ':' IPv6 (a "%zone"
 * suffix allowed), else dotted IPv4. */
static int ip_literal(const char *host)
{
    unsigned char bin[sizeof(struct in6_addr)];
    if (strchr(host, ':') == NULL)
        return inet_pton(AF_INET, host, bin) == 1;
    char v6[INET6_ADDRSTRLEN];
    size_t len = strcspn(host, "%");
    if (len >= sizeof(v6))
        return 0;
    memcpy(v6, host, len);
    v6[len] = '\0';
    return inet_pton(AF_INET6, v6, bin) == 1;
}

/* The numeric address a listener binds for host: a literal as written; a name resolved now, so
 * `keel check` refuses what `keel serve` could not bind, to its first IPv4 address if it has one
 * (a client of "localhost" may well try 127.0.0.1 only), else its first IPv6 one. 0 and *addr
 * (malloc'd), or -1 with why. */
static int bind_address(const char *host, int port, char **addr, char *why, size_t whylen)
{
    /* localhost is the loopback whatever the resolver says (RFC 6761): a system without
     * /etc/hosts (a minimal container) must not refuse it */
    const char *literal = strcasecmp(host, "localhost") == 0 ? "127.0.0.1" : ip_literal(host) ? host : NULL;
    if (literal != NULL) {
        *addr = strdup(literal);
        return *addr != NULL ? 0 : (snprintf(why, whylen, "out of memory"), -1);
    }
    char service[8];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rv = getaddrinfo(host, service, &hints, &res);
    if (rv != 0) {
        snprintf(why, whylen, "cannot resolve \"%s\": %s", host,
                 rv == EAI_SYSTEM ? strerror(errno) : gai_strerror(rv));
        return -1;
    }
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
        if (a->ai_family == AF_INET6 && pick == NULL)
            pick = a;
    }
    char buf[NI_MAXHOST];
    rv = pick == NULL ? EAI_FAMILY
                      : getnameinfo(pick->ai_addr, pick->ai_addrlen, buf, sizeof(buf), NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rv != 0) {
        snprintf(why, whylen, "cannot resolve \"%s\": %s", host,
                 pick == NULL ? "no IPv4 or IPv6 address" : gai_strerror(rv));
        return -1;
    }
    *addr = strdup(buf);
    return *addr != NULL ? 0 : (snprintf(why, whylen, "out of memory"), -1);
}

/* HOST:PORT into *host (as written), *addr (what to bind) and *port; all three or none change */
static int get_hostport(struct ctx *x, const yaml_node_t *n, const char *key, char **host, char **addr, int *port)
{
    if (expect(x, n, YAML_SCALAR_NODE, key) != 0)
        return -1;
    char *h, *a, why[256];
    int p;
    if (keel_parse_hostport(scalar(n), &h, &p) != 0)
        return fail(x, n, key, "expected HOST:PORT, got \"%s\"", scalar(n));
    if (bind_address(h, p, &a, why, sizeof(why)) != 0) {
        free(h);
        return fail(x, n, key, "%s", why);
    }
    free(*host);
    free(*addr);
    *host = h;
    *addr = a;
    *port = p;
    return 0;
}

/* ------------------------------------------------------------------ mappings */

/* Iterates a mapping's pairs but a repeated key's (expect reported it); unknown keys are an error
 * naming the known ones. `continue` goes on with the next pair. */
#define FOREACH_PAIR(x, map, k, v)                                                                 \
    for (yaml_node_pair_t *_p = (map)->data.mapping.pairs.start; _p < (map)->data.mapping.pairs.top; _p++) \
        if (earlier_same_key(x, map, _p) == NULL)                                                  \
            for (yaml_node_t *k = node(x, _p->key), *v = node(x, _p->value); k != NULL; k = NULL)

static void join(char *dst, size_t n, const char *prefix, const char *key)
{
    if (prefix[0] == '\0')
        snprintf(dst, n, "%s", key);
    else
        snprintf(dst, n, "%s.%s", prefix, key);
}

static int key_name(struct ctx *x, const yaml_node_t *k, const char *prefix, char *path, size_t n)
{
    if (k->type != YAML_SCALAR_NODE) {
        join(path, n, prefix, "?");
        return fail(x, k, path, "a key must be a scalar");
    }
    join(path, n, prefix, scalar(k));
    return 0;
}

static int timeouts(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_timeouts *t)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    size_t before = x->nerr;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        const char *name = scalar(k);
        uint64_t *dst = strcmp(name, "connect") == 0      ? &t->connect_ms
                        : strcmp(name, "first_byte") == 0 ? &t->first_byte_ms
                        : strcmp(name, "stall") == 0      ? &t->stall_ms
                        : strcmp(name, "total") == 0      ? &t->total_ms
                                                          : NULL;
        if (dst == NULL)
            fail(x, k, path, "unknown key (expected connect, first_byte, stall, total)");
        else
            get_positive_duration(x, v, path, dst);
    }
    return failed_since(x, before);
}

static int retry(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_retry *r)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    size_t before = x->nerr;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        if (strcmp(scalar(k), "same_target") == 0)
            get_uint(x, v, path, &r->same_target);
        else if (strcmp(scalar(k), "backoff") == 0)
            get_duration(x, v, path, &r->backoff_ms);
        else if (strcmp(scalar(k), "max_wait") == 0)
            get_duration(x, v, path, &r->max_wait_ms);
        else
            fail(x, k, path, "unknown key (expected same_target, backoff, max_wait)");
    }
    return failed_since(x, before);
}

/* A YAML value as JSON (continuation_body): a mapping an object (string keys), a sequence an
 * array, a plain scalar true, false, null or a number when it reads as one, else a string (a
 * quoted one always). NULL, the error reported, for a key that is no scalar or a nesting past 16. */
static json_t *yaml_json_at(struct ctx *x, const yaml_node_t *n, const char *key, int depth)
{
    if (n == NULL || depth > 16) {
        fail(x, n, key, "nested too deeply");
        return NULL;
    }
    if (n->type == YAML_SCALAR_NODE) {
        const char *s = scalar(n);
        if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
            return json_string(s);
        if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
            return json_boolean(s[0] == 't');
        if (strcmp(s, "null") == 0 || strcmp(s, "~") == 0)
            return json_null();
        json_t *num = s[0] != '\0' && strspn(s, "0123456789+-.eE") == strlen(s) ? json_loads(s, JSON_DECODE_ANY, NULL)
                                                                             : NULL;
        return num != NULL && json_is_number(num) ? num : (json_decref(num), json_string(s));
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *i = n->data.sequence.items.start; a != NULL && i < n->data.sequence.items.top; i++) {
            json_t *e = yaml_json_at(x, node(x, *i), key, depth + 1);
            if (e == NULL || json_array_append_new(a, e) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    json_t *o = json_object();
    FOREACH_PAIR(x, n, k, v)
    {
        char path[256];
        json_t *e = NULL;
        if (o == NULL || key_name(x, k, key, path, sizeof(path)) != 0 || (e = yaml_json_at(x, v, path, depth + 1)) == NULL ||
            json_object_set_new(o, scalar(k), e) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *yaml_json(struct ctx *x, const yaml_node_t *n, const char *key)
{
    return yaml_json_at(x, n, key, 0);
}

static int breaker(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_breaker_conf *b)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    size_t before = x->nerr;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        if (strcmp(scalar(k), "failures") == 0) {
            if (get_uint(x, v, path, &b->failures) == 0 && b->failures == 0)
                fail(x, v, path, "must be at least 1");
        } else if (strcmp(scalar(k), "cooldown") == 0) {
            get_duration(x, v, path, &b->cooldown_ms);
        } else if (strcmp(scalar(k), "max_cooldown") == 0) {
            get_duration(x, v, path, &b->max_cooldown_ms);
        } else if (strcmp(scalar(k), "rejections") == 0) {
            if (get_uint(x, v, path, &b->rejections) == 0 && b->rejections == 0)
                fail(x, v, path, "must be at least 1");
        } else if (strcmp(scalar(k), "probe") == 0) {
            if (expect(x, v, YAML_SCALAR_NODE, path) != 0)
                continue;
            if (strcmp(scalar(v), "background") == 0)
                b->probe = KEEL_PROBE_BACKGROUND;
            else if (strcmp(scalar(v), "request") == 0)
                b->probe = KEEL_PROBE_REQUEST;
            else
                fail(x, v, path, "expected background or request, got \"%s\"", scalar(v));
        } else {
            fail(x, k, path, "unknown key (expected failures, rejections, cooldown, max_cooldown, probe)");
        }
    }
    return failed_since(x, before);
}

static int defaults(struct ctx *x, const yaml_node_t *map, struct keel_config *c)
{
    if (expect(x, map, YAML_MAPPING_NODE, "defaults") != 0)
        return -1;
    size_t before = x->nerr;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, "defaults", path, sizeof(path)) != 0)
            continue;
        if (strcmp(scalar(k), "timeouts") == 0)
            timeouts(x, v, path, &c->timeouts);
        else if (strcmp(scalar(k), "retry") == 0)
            retry(x, v, path, &c->retry);
        else if (strcmp(scalar(k), "breaker") == 0)
            breaker(x, v, path, &c->breaker);
        else
            fail(x, k, path, "unknown key (expected timeouts, retry, breaker)");
    }
    return failed_since(x, before);
}

static int events(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_config *c)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    size_t before = x->nerr;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        if (strcmp(scalar(k), "webhook") != 0)
            fail(x, k, path, "unknown key (expected webhook)");
        else if (get_string(x, v, path, &c->webhook) == 0 && strncmp(c->webhook, "http://", 7) != 0 &&
                 strncmp(c->webhook, "https://", 8) != 0)
            fail(x, v, path, "must start with http:// or https://");
    }
    return failed_since(x, before);
}

/* ------------------------------------------------------------------ upstreams */

/* argv[0] without a '/' is looked up in keel's PATH now, so the child needs no PATH of its own */
static char *resolve(const char *cmd)
{
    if (strchr(cmd, '/') != NULL)
        return access(cmd, X_OK) == 0 ? strdup(cmd) : NULL;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path != '\0') {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        char buf[4096];
        if (len > 0 && len + strlen(cmd) + 2 < sizeof(buf)) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, cmd);
            if (access(buf, X_OK) == 0)
                return strdup(buf);
        }
        path += len + (end != NULL);
    }
    return NULL;
}

static void managed_free(struct keel_managed_conf *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->argc; i++)
        free(m->argv[i]);
    for (size_t i = 0; i < m->nenv; i++)
        free(m->env[i]);
    free(m->argv);
    free(m->env);
    free(m->health);
    free(m->probe_model);
    free(m);
}

/* the command's words; all of them or -1 (an error for each that is refused) */
static int command(struct ctx *x, const yaml_node_t *seq, const char *path, struct keel_managed_conf *m)
{
    if (expect(x, seq, YAML_SEQUENCE_NODE, path) != 0)
        return -1;
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n == 0)
        return fail(x, seq, path, "empty: the command to run is needed");
    m->argv = calloc(n + 1, sizeof(*m->argv));
    if (m->argv == NULL)
        return fail(x, seq, path, "out of memory");
    m->argc = n; /* argv[i] stays NULL where a word is refused: managed_free takes that */
    size_t before = x->nerr;
    for (size_t i = 0; i < n; i++)
        expand(x, node(x, seq->data.sequence.items.start[i]), path, &m->argv[i]);
    if (failed_since(x, before) != 0)
        return -1;
    char *exe = resolve(m->argv[0]);
    if (exe == NULL)
        return fail(x, seq, path, "\"%s\" is not an executable file (nor found in PATH)", m->argv[0]);
    free(m->argv[0]);
    m->argv[0] = exe;
    return 0;
}

static int env(struct ctx *x, const yaml_node_t *map, const char *path, struct keel_managed_conf *m)
{
    if (expect(x, map, YAML_MAPPING_NODE, path) != 0)
        return -1;
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    m->env = calloc(n + 1, sizeof(*m->env));
    if (m->env == NULL)
        return fail(x, map, path, "out of memory");
    size_t before = x->nerr;
    FOREACH_PAIR(x, map, k, v)
    {
        char epath[300];
        if (key_name(x, k, path, epath, sizeof(epath)) != 0)
            continue;
        char *val = NULL;
        if (expand(x, v, epath, &val) != 0)
            continue;
        assert(m->nenv < n); /* FOREACH_PAIR visits each pair at most once */
        size_t l = strlen(scalar(k)) + strlen(val) + 2;
        m->env[m->nenv] = malloc(l);
        if (m->env[m->nenv] != NULL)
            snprintf(m->env[m->nenv++], l, "%s=%s", scalar(k), val);
        else
            fail(x, v, epath, "out of memory");
        free(val);
    }
    return failed_since(x, before);
}

/* a non-negative price per million tokens */
static int get_price(struct ctx *x, const yaml_node_t *v, const char *path, double *out)
{
    if (expect(x, v, YAML_SCALAR_NODE, path) != 0)
        return -1;
    char *end;
    double d = strtod(scalar(v), &end);
    if (end == scalar(v) || *end != '\0' || !(d >= 0) || d > 1e9)
        return fail(x, v, path, "expected a price per million tokens such as 2.5, got \"%s\"", scalar(v));
    *out = d;
    return 0;
}

/* a target's `price: { input, output, cached }`, per million tokens */
static int price(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_target_conf *t)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    size_t before = x->nerr;
    int has_in = 0, has_out = 0, has_cached = 0;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        if (strcmp(scalar(k), "input") == 0)
            has_in = 1, get_price(x, v, path, &t->price_input);
        else if (strcmp(scalar(k), "output") == 0)
            has_out = 1, get_price(x, v, path, &t->price_output);
        else if (strcmp(scalar(k), "cached") == 0)
            has_cached = 1, get_price(x, v, path, &t->price_cached);
        else
            fail(x, k, path, "unknown key (expected input, output, cached)");
    }
    if (!has_in || !has_out)
        fail(x, map, prefix, "needs both input and output (per million tokens)");
    if (!has_cached)
        t->price_cached = t->price_input;
    t->priced = failed_since(x, before) == 0;
    return failed_since(x, before);
}

static void control_free(struct keel_control_conf *c)
{
    if (c == NULL)
        return;
    free(c->url);
    free(c->load);
    free(c->unload);
    free(c->health);
    free(c->body);
    free(c->url_at);
    free(c->base_path);
    free(c);
}

/* a path under the control URL: starts with '/' */
static void control_path(struct ctx *x, const yaml_node_t *v, const char *path, char **out)
{
    if (get_string(x, v, path, out) == 0 && (*out)[0] != '/')
        fail(x, v, path, "must be a path starting with /");
}

/* `control:` (README "Backends run by their own control plane"); Lemonade's API by default */
static int control(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_upstream_conf *u)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    struct keel_control_conf *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return fail(x, map, prefix, "out of memory");
    u->control = c;
    c->load_timeout_ms = 120000;
    c->ready_probe = 1;
    size_t before = x->nerr;
    int has_url = 0;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        const char *name = scalar(k);
        if (strcmp(name, "url") == 0) {
            has_url = 1;
            if (get_string(x, v, path, &c->url) != 0)
                continue;
            if (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0) {
                fail(x, v, path, "must start with http:// or https://");
                continue;
            }
            size_t l = strlen(c->url);
            while (l > 0 && c->url[l - 1] == '/')
                c->url[--l] = '\0';
        } else if (strcmp(name, "load") == 0) {
            control_path(x, v, path, &c->load);
        } else if (strcmp(name, "unload") == 0) {
            control_path(x, v, path, &c->unload);
        } else if (strcmp(name, "health") == 0) {
            control_path(x, v, path, &c->health);
        } else if (strcmp(name, "body") == 0) {
            get_string(x, v, path, &c->body);
        } else if (strcmp(name, "url_at") == 0) {
            if (get_string(x, v, path, &c->url_at) == 0 && keel_jpath_check(c->url_at) != 0)
                fail(x, v, path, "expected a path such as all_models_loaded[model_name={model}].backend_url");
        } else if (strcmp(name, "base_path") == 0) {
            if (expect(x, v, YAML_SCALAR_NODE, path) == 0 && (c->base_path = strdup(scalar(v))) != NULL &&
                c->base_path[0] != '\0' && c->base_path[0] != '/')
                fail(x, v, path, "must be empty or a path starting with /");
        } else if (strcmp(name, "load_timeout") == 0) {
            get_positive_duration(x, v, path, &c->load_timeout_ms);
        } else if (strcmp(name, "ready_probe") == 0) {
            get_bool(x, v, path, &c->ready_probe);
        } else {
            fail(x, k, path,
                 "unknown key (expected url, load, unload, health, body, url_at, base_path, load_timeout, ready_probe)");
        }
    }
    if (!has_url)
        fail(x, map, prefix, "missing url (the control API's base, e.g. http://127.0.0.1:13305/api/v1)");
    /* Lemonade's API (lemond): POST /load and /unload {"model_name": M}, GET /health listing
     * all_models_loaded[] with each model's backend_url */
    const char *dflt[][2] = {{"/load", NULL}, {"/unload", NULL}, {"/health", NULL}, {"{\"model_name\": \"{model}\"}", NULL},
                             {"all_models_loaded[model_name={model}].backend_url", NULL}, {"", NULL}};
    char **field[] = {&c->load, &c->unload, &c->health, &c->body, &c->url_at, &c->base_path};
    for (size_t i = 0; i < sizeof(field) / sizeof(field[0]); i++)
        if (*field[i] == NULL && (*field[i] = strdup(dflt[i][0])) == NULL)
            return fail(x, map, prefix, "out of memory");
    return failed_since(x, before);
}

static int managed(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_upstream_conf *u)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    struct keel_managed_conf *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return fail(x, map, prefix, "out of memory");
    u->managed = m;
    m->start_timeout_ms = 60000;
    size_t before = x->nerr;
    int has_command = 0;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        const char *name = scalar(k);
        if (strcmp(name, "command") == 0) {
            has_command = 1;
            command(x, v, path, m);
        } else if (strcmp(name, "env") == 0) {
            env(x, v, path, m);
        } else if (strcmp(name, "health") == 0) {
            if (get_string(x, v, path, &m->health) == 0 && m->health[0] != '/')
                fail(x, v, path, "must be a path starting with /");
        } else if (strcmp(name, "start_timeout") == 0) {
            get_duration(x, v, path, &m->start_timeout_ms);
        } else if (strcmp(name, "idle_unload") == 0) {
            get_duration(x, v, path, &m->idle_unload_ms);
        } else if (strcmp(name, "port") == 0) {
            uint64_t p;
            if (get_uint(x, v, path, &p) != 0)
                continue;
            if (p == 0 || p > 65535)
                fail(x, v, path, "expected a port from 1 to 65535");
            else
                m->port = (int)p;
        } else if (strcmp(name, "ready_probe") == 0) {
            get_bool(x, v, path, &m->ready_probe);
        } else if (strcmp(name, "probe_model") == 0) {
            get_string(x, v, path, &m->probe_model);
        } else {
            fail(x, k, path,
                 "unknown key (expected command, env, health, start_timeout, port, ready_probe, probe_model, "
                 "idle_unload)");
        }
    }
    if (!has_command)
        fail(x, map, prefix, "missing command");
    if (m->health == NULL)
        m->health = strdup("/health");
    return failed_since(x, before);
}

/* the headers keel writes itself, which `headers:` must not replace */
static const char *const own_headers[] = {"authorization", "x-api-key", "content-type", "content-length", "host",
                                          "transfer-encoding", "expect", "connection", "anthropic-version"};

/* `headers:`, a mapping of header names to values (${VAR} expanded) sent with every request to
 * the upstream: each kept as its "Name: value" line */
static int headers(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_upstream_conf *u)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    size_t before = x->nerr;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        const char *name = scalar(k);
        size_t nlen = strlen(name), ok = nlen > 0 && nlen < 64;
        for (size_t i = 0; ok && i < nlen; i++)
            ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
                 (name[i] >= '0' && name[i] <= '9') || name[i] == '-' || name[i] == '_';
        if (!ok) {
            fail(x, k, path, "not a header name (letters, digits, - and _, at most 63)");
            continue;
        }
        int own = 0;
        for (size_t i = 0; i < sizeof(own_headers) / sizeof(own_headers[0]); i++)
            own |= strcasecmp(name, own_headers[i]) == 0;
        if (own) {
            fail(x, k, path, "keel sets this header itself (the key goes in api_key)");
            continue;
        }
        if (u->nheaders == KEEL_MAX_UPSTREAM_HEADERS) {
            fail(x, k, path, "at most %d headers", KEEL_MAX_UPSTREAM_HEADERS);
            continue;
        }
        char *value = NULL;
        if (get_string(x, v, path, &value) != 0) /* never echo the value: it may be a secret */
            continue;
        if (strpbrk(value, "\r\n") != NULL) {
            fail(x, v, path, "a header value cannot hold a line break");
        } else {
            size_t l = nlen + 2 + strlen(value) + 1;
            char **more = realloc(u->headers, (u->nheaders + 1) * sizeof(*more));
            char *line = malloc(l);
            if (more != NULL)
                u->headers = more;
            if (more == NULL || line == NULL) {
                free(line);
                fail(x, v, path, "out of memory");
            } else {
                snprintf(line, l, "%s: %s", name, value);
                u->headers[u->nheaders++] = line;
            }
        }
        explicit_bzero(value, strlen(value));
        free(value);
    }
    return failed_since(x, before);
}

static int upstream(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_upstream_conf *u)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    size_t before = x->nerr;
    int has_name = 0, has_base_url = 0, has_managed = 0, managed_ok = 0, has_control = 0;
    const yaml_node_t *responses_at = NULL; /* `responses: true`, where it was said */
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        const char *name = scalar(k);
        if (strcmp(name, "name") == 0) {
            has_name = 1;
            get_string(x, v, path, &u->name);
        } else if (strcmp(name, "kind") == 0) {
            if (expect(x, v, YAML_SCALAR_NODE, path) != 0)
                continue;
            if (strcmp(scalar(v), "openai") != 0 && strcmp(scalar(v), "anthropic") != 0)
                fail(x, v, path, "unknown kind \"%s\" (supported: openai, anthropic)", scalar(v));
            else /* a static string: the decoders are looked up by it */
                u->kind = strcmp(scalar(v), "openai") == 0 ? "openai" : "anthropic";
        } else if (strcmp(name, "base_url") == 0) {
            has_base_url = 1;
            if (get_string(x, v, path, &u->base_url) != 0)
                continue;
            if (strncmp(u->base_url, "http://", 7) != 0 && strncmp(u->base_url, "https://", 8) != 0) {
                fail(x, v, path, "must start with http:// or https://");
                free(u->base_url); /* refused: nothing below checks it */
                u->base_url = NULL;
                continue;
            }
            size_t l = strlen(u->base_url);
            while (l > 0 && u->base_url[l - 1] == '/')
                u->base_url[--l] = '\0';
        } else if (strcmp(name, "api_key") == 0) {
            /* never echo the value in an error: it may be a secret */
            get_string(x, v, path, &u->api_key);
        } else if (strcmp(name, "managed") == 0) {
            has_managed = 1;
            managed_ok = managed(x, v, path, u) == 0;
        } else if (strcmp(name, "control") == 0) {
            has_control = 1;
            control(x, v, path, u);
        } else if (strcmp(name, "headers") == 0) {
            headers(x, v, path, u);
        } else if (strcmp(name, "responses") == 0) {
            if (get_bool(x, v, path, &u->responses) == 0 && u->responses)
                responses_at = v;
        } else {
            fail(x, k, path,
                 "unknown key (expected name, kind, base_url, api_key, headers, responses, managed, control)");
        }
    }
    if (!has_name)
        fail(x, map, prefix, "missing name");
    if (u->kind == NULL)
        u->kind = "openai";
    if (responses_at != NULL && strcmp(u->kind, "openai") != 0) {
        char path[256];
        join(path, sizeof(path), prefix, "responses");
        fail(x, responses_at, path, "only a kind openai upstream serves the Responses API");
    }
    if (has_control && has_managed)
        fail(x, map, prefix, "control: and managed: exclude each other (keel runs the server, or a control plane does)");
    else if (has_control && has_base_url)
        fail(x, map, prefix, "base_url with control: the data plane's URL is read back from the control plane after "
                             "every load (set control.base_path for a path under it)");
    else if (!has_base_url && !has_control)
        fail(x, map, prefix, "missing base_url");
    /* {port} against the managed block: only when both were read as given */
    if (u->base_url != NULL && !has_managed && strstr(u->base_url, "{port}") != NULL)
        fail(x, map, prefix, "base_url has {port} but no managed: block to give it one");
    if (u->base_url != NULL && managed_ok && u->managed->port == 0 && strstr(u->base_url, "{port}") == NULL)
        fail(x, map, prefix, "managed: base_url needs {port}, or managed.port set");
    return failed_since(x, before);
}

/* ------------------------------------------------------------------ models */

/* One target of a model serving `api`: an embeddings model's target must not be on a kind
 * anthropic upstream (reported on its upstream line); stream_upstream and max_tokens are read for
 * every api and used by chat only. */
static int target(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_config *c,
                  enum keel_api api, struct keel_target_conf *t)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    t->timeouts = c->timeouts;
    t->retry = c->retry;
    t->breaker = c->breaker;
    t->stream_upstream = 1;
    t->max_tokens = 4096;
    size_t before = x->nerr;
    int has_upstream = 0, has_model = 0;
    const yaml_node_t *upstream_at = NULL; /* the upstream key's value, where t->upstream was named */
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        const char *name = scalar(k);
        if (strcmp(name, "upstream") == 0) {
            has_upstream = 1;
            if (expect(x, v, YAML_SCALAR_NODE, path) != 0)
                continue;
            for (size_t i = 0; i < c->nupstreams; i++)
                if (c->upstreams[i].name != NULL && strcmp(c->upstreams[i].name, scalar(v)) == 0)
                    t->upstream = &c->upstreams[i];
            upstream_at = v;
            /* with an upstream whose name was refused, this one may be it: not a second error */
            if (t->upstream == NULL && !x->upstreams_vague)
                fail(x, v, path, "unknown upstream \"%s\"", scalar(v));
        } else if (strcmp(name, "model") == 0) {
            has_model = 1;
            get_string(x, v, path, &t->model);
        } else if (strcmp(name, "timeouts") == 0) {
            timeouts(x, v, path, &t->timeouts);
        } else if (strcmp(name, "retry") == 0) {
            retry(x, v, path, &t->retry);
        } else if (strcmp(name, "breaker") == 0) {
            breaker(x, v, path, &t->breaker);
        } else if (strcmp(name, "context_window") == 0) {
            if (expect(x, v, YAML_SCALAR_NODE, path) == 0 && keel_parse_count(scalar(v), &t->context_window) != 0)
                fail(x, v, path, "expected a token count such as 32000 or 32k, got \"%s\"", scalar(v));
        } else if (strcmp(name, "stream_upstream") == 0) {
            get_bool(x, v, path, &t->stream_upstream);
        } else if (strcmp(name, "continuation") == 0) {
            if (expect(x, v, YAML_SCALAR_NODE, path) != 0)
                continue;
            if (strcmp(scalar(v), "prefill") == 0)
                t->continuation = 1;
            else if (strcmp(scalar(v), "none") == 0)
                t->continuation = 0;
            else
                fail(x, v, path, "expected prefill or none, got \"%s\"", scalar(v));
        } else if (strcmp(name, "price") == 0) {
            price(x, v, path, t);
        } else if (strcmp(name, "continuation_body") == 0) {
            json_t *o = yaml_json(x, v, path);
            if (o != NULL && !json_is_object(o))
                fail(x, v, path, "expected a mapping of body members, e.g. { continue_final_message: true }");
            else if (o != NULL && (t->continuation_body = json_dumps(o, JSON_COMPACT)) == NULL)
                fail(x, v, path, "out of memory");
            json_decref(o);
        } else if (strcmp(name, "max_tokens") == 0) {
            if (expect(x, v, YAML_SCALAR_NODE, path) == 0 &&
                (keel_parse_count(scalar(v), &t->max_tokens) != 0 || t->max_tokens == 0))
                fail(x, v, path, "expected a token count such as 4096 or 8k, got \"%s\"", scalar(v));
        } else {
            fail(x, k, path,
                 "unknown key (expected upstream, model, timeouts, retry, breaker, context_window, "
                 "stream_upstream, max_tokens, continuation, continuation_body, price)");
        }
    }
    if (t->continuation_body != NULL && !t->continuation)
        fail(x, map, prefix, "continuation_body without continuation: prefill");
    if (t->continuation && api == KEEL_API_EMBEDDINGS)
        fail(x, map, prefix, "continuation: prefill on an embeddings model (nothing streams)");
    if (!has_upstream)
        fail(x, map, prefix, "missing upstream");
    if (!has_model)
        fail(x, map, prefix, "missing model");
    if (api == KEEL_API_EMBEDDINGS && t->upstream != NULL && strcmp(t->upstream->kind, "anthropic") == 0)
        fail(x, upstream_at, prefix, "upstream \"%s\" is kind anthropic, which has no embeddings API",
             t->upstream->name);
    return failed_since(x, before);
}

static int model(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_config *c,
                 struct keel_model_conf *m)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    size_t before = x->nerr;
    const yaml_node_t *targets = NULL; /* a list, once read */
    int has_name = 0, has_targets = 0;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        if (strcmp(scalar(k), "name") == 0) {
            has_name = 1;
            get_string(x, v, path, &m->name);
        } else if (strcmp(scalar(k), "targets") == 0) {
            has_targets = 1;
            if (expect(x, v, YAML_SEQUENCE_NODE, path) == 0)
                targets = v;
        } else if (strcmp(scalar(k), "api") == 0) {
            /* an unknown value leaves chat: its targets are not checked against embeddings */
            if (expect(x, v, YAML_SCALAR_NODE, path) != 0)
                continue;
            if (strcmp(scalar(v), "chat") == 0)
                m->api = KEEL_API_CHAT;
            else if (strcmp(scalar(v), "embeddings") == 0)
                m->api = KEEL_API_EMBEDDINGS;
            else
                fail(x, v, path, "unknown api \"%s\" (supported: chat, embeddings)", scalar(v));
        } else if (strcmp(scalar(k), "cliff") == 0) {
            get_duration(x, v, path, &m->cliff_ms);
        } else {
            fail(x, k, path, "unknown key (expected name, api, targets, cliff)");
        }
    }
    if (!has_name)
        fail(x, map, prefix, "missing name");
    if (m->cliff_ms == 0)
        m->cliff_ms = c->cliff_ms;
    char path[256];
    join(path, sizeof(path), prefix, "targets");
    if (!has_targets)
        return fail(x, map, path, "missing: a model needs at least one target");
    if (targets == NULL) /* refused above */
        return -1;
    size_t n = (size_t)(targets->data.sequence.items.top - targets->data.sequence.items.start);
    if (n == 0)
        return fail(x, targets, path, "empty: a model needs at least one target");
    m->targets = calloc(n, sizeof(*m->targets));
    if (m->targets == NULL)
        return fail(x, targets, path, "out of memory");
    m->ntargets = n; /* a refused target's fields stay NULL: keel_config_free takes that */
    for (size_t i = 0; i < n; i++) {
        char tpath[256];
        snprintf(tpath, sizeof(tpath), "%s[%zu]", path, i);
        target(x, node(x, targets->data.sequence.items.start[i]), tpath, c, m->api, &m->targets[i]);
    }
    return failed_since(x, before);
}

/* ------------------------------------------------------------------ top level */

static int list(struct ctx *x, const yaml_node_t *seq, const char *key, size_t elem, void **out, size_t *n)
{
    if (expect(x, seq, YAML_SEQUENCE_NODE, key) != 0)
        return -1;
    size_t cnt = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    *out = calloc(cnt ? cnt : 1, elem);
    if (*out == NULL)
        return fail(x, seq, key, "out of memory");
    *n = cnt;
    return 0;
}

/* ------------------------------------------------------------------ shared state */

/* redis://[:PASSWORD@]HOST[:PORT][/DB] into st; 0, or -1 (reported; the URL is not echoed: it
 * may hold a password) */
static int redis_url(struct ctx *x, const yaml_node_t *v, const char *path, struct keel_state_conf *st)
{
    char *url = NULL;
    if (get_string(x, v, path, &url) != 0)
        return -1;
    const char *p = url;
    int rv = -1;
    if (strncmp(p, "redis://", 8) != 0)
        goto out;
    p += 8;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        st->password = strndup(pw, (size_t)(at - pw));
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0)
        goto out;
    st->host = strndup(p, hl);
    p += hl;
    st->port = 6379;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            goto out;
        st->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (*end != '\0' || db < 0 || db > 1000)
            goto out;
        st->db = (int)db;
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        goto out;
    }
    rv = 0;
out:
    if (url != NULL) {
        explicit_bzero(url, strlen(url));
        free(url);
    }
    if (rv != 0)
        fail(x, v, path, "expected redis://[:PASSWORD@]HOST[:PORT][/DB]");
    return rv;
}

static void state_conf_free(struct keel_state_conf *st)
{
    if (st == NULL)
        return;
    free(st->host);
    if (st->password != NULL) {
        explicit_bzero(st->password, strlen(st->password));
        free(st->password);
    }
    free(st->prefix);
    free(st);
}

static int shared_state(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_config *c)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    struct keel_state_conf *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return fail(x, map, prefix, "out of memory");
    c->state = st;
    size_t before = x->nerr;
    int has_redis = 0;
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, prefix, path, sizeof(path)) != 0)
            continue;
        if (strcmp(scalar(k), "redis") == 0) {
            has_redis = 1;
            redis_url(x, v, path, st);
        } else if (strcmp(scalar(k), "prefix") == 0) {
            get_string(x, v, path, &st->prefix);
        } else {
            fail(x, k, path, "unknown key (expected redis, prefix)");
        }
    }
    if (!has_redis)
        fail(x, map, prefix, "missing redis (e.g. redis://127.0.0.1:6379/0)");
    if (st->prefix == NULL && (st->prefix = strdup("keel:")) == NULL)
        fail(x, map, prefix, "out of memory");
    return failed_since(x, before);
}

/* ------------------------------------------------------------------ client keys */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int client_key(struct ctx *x, const yaml_node_t *map, const char *prefix, struct keel_key_conf *k)
{
    if (expect(x, map, YAML_MAPPING_NODE, prefix) != 0)
        return -1;
    size_t before = x->nerr;
    int has_hash = 0;
    FOREACH_PAIR(x, map, kk, v)
    {
        char path[256];
        if (key_name(x, kk, prefix, path, sizeof(path)) != 0)
            continue;
        const char *name = scalar(kk);
        if (strcmp(name, "name") == 0) {
            get_string(x, v, path, &k->name);
        } else if (strcmp(name, "sha256") == 0) {
            has_hash = 1;
            if (expect(x, v, YAML_SCALAR_NODE, path) != 0)
                continue;
            const char *h = scalar(v);
            int ok = strlen(h) == 64;
            for (size_t i = 0; ok && i < 32; i++) {
                int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
                ok = hi >= 0 && lo >= 0;
                k->sha256[i] = (unsigned char)(hi << 4 | (lo & 15));
            }
            if (!ok) /* the hash is no secret, but a key pasted here by mistake would be: not echoed */
                fail(x, v, path, "expected the key's SHA-256 as 64 hex digits (keel key new NAME prints it)");
        } else if (strcmp(name, "models") == 0) {
            if (expect(x, v, YAML_SEQUENCE_NODE, path) != 0)
                continue;
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            k->models = calloc(n + 1, sizeof(*k->models));
            if (k->models == NULL) {
                fail(x, v, path, "out of memory");
                continue;
            }
            for (size_t i = 0; i < n; i++) {
                const yaml_node_t *m = node(x, v->data.sequence.items.start[i]);
                char mp[280];
                snprintf(mp, sizeof(mp), "%s[%zu]", path, i);
                if (get_string(x, m, mp, &k->models[k->nmodels]) == 0)
                    k->nmodels++;
            }
        } else if (strcmp(name, "rpm") == 0) {
            get_uint(x, v, path, &k->rpm);
        } else if (strcmp(name, "tpm") == 0) {
            if (expect(x, v, YAML_SCALAR_NODE, path) == 0 && keel_parse_count(scalar(v), &k->tpm) != 0)
                fail(x, v, path, "expected a token count such as 100000 or 100k, got \"%s\"", scalar(v));
        } else {
            fail(x, kk, path, "unknown key (expected name, sha256, models, rpm, tpm)");
        }
    }
    if (k->name == NULL)
        fail(x, map, prefix, "missing name");
    if (!has_hash)
        fail(x, map, prefix, "missing sha256");
    return failed_since(x, before);
}

/* a list of client keys (`keys:`, or a keys_file's top level), appended to c's */
static void client_keys(struct ctx *x, const yaml_node_t *seq, const char *prefix, struct keel_config *c)
{
    if (expect(x, seq, YAML_SEQUENCE_NODE, prefix) != 0)
        return;
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    struct keel_key_conf *nk = realloc(c->keys, (c->nkeys + n) * sizeof(*nk));
    if (nk == NULL && n > 0) {
        fail(x, seq, prefix, "out of memory");
        return;
    }
    c->keys = nk;
    for (size_t i = 0; i < n; i++) {
        char path[280];
        snprintf(path, sizeof(path), "%s[%zu]", prefix, i);
        struct keel_key_conf *k = &c->keys[c->nkeys++];
        *k = (struct keel_key_conf){0};
        const yaml_node_t *m = node(x, seq->data.sequence.items.start[i]);
        client_key(x, m, path, k);
        for (size_t j = 0; k->name != NULL && j + 1 < c->nkeys; j++) {
            if (c->keys[j].name != NULL && strcmp(c->keys[j].name, k->name) == 0) {
                fail(x, m, path, "duplicate key name \"%s\"", k->name);
                break;
            }
            if (memcmp(c->keys[j].sha256, k->sha256, 32) == 0) {
                fail(x, m, path, "the same key as \"%s\"", c->keys[j].name ? c->keys[j].name : "?");
                break;
            }
        }
    }
}

static char *read_file(const char *file, size_t *len, struct keel_config_errors *errs);

/* `keys_file:` (relative to the config file): a YAML list as `keys:` takes, its errors named by
 * its own path and lines */
static void keys_file(struct ctx *x, const yaml_node_t *v, const char *path, struct keel_config *c)
{
    if (expect(x, v, YAML_SCALAR_NODE, path) != 0)
        return;
    char file[1024];
    const char *slash = strrchr(x->file, '/');
    if (scalar(v)[0] == '/' || slash == NULL)
        snprintf(file, sizeof(file), "%s", scalar(v));
    else
        snprintf(file, sizeof(file), "%.*s/%s", (int)(slash - x->file), x->file, scalar(v));
    size_t len, had = x->errs->n + x->errs->more;
    char *text = read_file(file, &len, x->errs);
    if (text == NULL) {
        x->nerr += x->errs->n + x->errs->more - had;
        return;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        free(text);
        fail(x, v, path, "out of memory");
        return;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        char msg[sizeof(x->errs->msg[0])];
        unsigned long line = (unsigned long)parser.problem_mark.line + 1;
        snprintf(msg, sizeof(msg), "%s:%lu: (yaml): %s", file, line, parser.problem ? parser.problem : "syntax error");
        add_error(x->errs, line, msg);
        x->nerr++;
    } else {
        struct ctx y = *x;
        y.file = file;
        y.doc = &doc;
        yaml_node_t *top = yaml_document_get_root_node(&doc);
        if (top == NULL)
            fail(&y, NULL, "keys", "the file is empty: expected a list of keys");
        else
            client_keys(&y, top, "keys", c);
        x->nerr = y.nerr;
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    free(text);
}

static int root(struct ctx *x, const yaml_node_t *map, struct keel_config *c)
{
    if (expect(x, map, YAML_MAPPING_NODE, "(top level)") != 0)
        return -1;
    size_t before = x->nerr;
    /* defaults first, so targets inherit them wherever they appear in the file */
    const yaml_node_t *ups = NULL, *models = NULL, *keys = NULL, *keys_at = NULL;
    FOREACH_PAIR(x, map, k, v)
    {
        if (k->type == YAML_SCALAR_NODE && strcmp(scalar(k), "defaults") == 0)
            defaults(x, v, c);
    }
    int addr_refused = 0; /* listen or admin_listen: comparing them would be a guess */
    FOREACH_PAIR(x, map, k, v)
    {
        char path[256];
        if (key_name(x, k, "", path, sizeof(path)) != 0)
            continue;
        const char *name = scalar(k);
        int rv = 0;
        if (strcmp(name, "listen") == 0) {
            rv = get_hostport(x, v, path, &c->listen_host, &c->listen_addr, &c->listen_port);
            addr_refused |= rv != 0;
        } else if (strcmp(name, "admin_listen") == 0) {
            rv = get_hostport(x, v, path, &c->admin_host, &c->admin_addr, &c->admin_port);
            addr_refused |= rv != 0;
        } else if (strcmp(name, "audit_log") == 0) {
            rv = get_string(x, v, path, &c->audit_log);
        } else if (strcmp(name, "audit_max_size") == 0) {
            rv = get_size(x, v, path, &c->audit_max_size);
        } else if (strcmp(name, "audit_keep") == 0) {
            rv = get_uint(x, v, path, &c->audit_keep);
            if (rv == 0 && (c->audit_keep == 0 || c->audit_keep > 1000))
                rv = fail(x, v, path, "expected 1 to 1000 files");
        } else if (strcmp(name, "max_body") == 0) {
            rv = get_size(x, v, path, &c->max_body);
            if (rv == 0 && c->max_body == 0)
                rv = fail(x, v, path, "must be greater than zero");
        } else if (strcmp(name, "drain_timeout") == 0) {
            rv = get_duration(x, v, path, &c->drain_ms);
        } else if (strcmp(name, "cliff") == 0) {
            rv = get_duration(x, v, path, &c->cliff_ms);
        } else if (strcmp(name, "cliff_margin") == 0) {
            rv = get_duration(x, v, path, &c->cliff_margin_ms);
        } else if (strcmp(name, "max_inflight") == 0) {
            rv = get_uint(x, v, path, &c->max_inflight);
            if (rv == 0 && c->max_inflight == 0)
                rv = fail(x, v, path, "must be at least 1");
        } else if (strcmp(name, "max_connections") == 0) {
            rv = get_uint(x, v, path, &c->max_connections);
        } else if (strcmp(name, "workers") == 0) {
            rv = get_uint(x, v, path, &c->workers);
            if (rv == 0 && (c->workers == 0 || c->workers > KEEL_MAX_WORKERS))
                rv = fail(x, v, path, "expected 1 to 64 (leave it out for one per core)");
        } else if (strcmp(name, "max_memory") == 0) {
            rv = get_size(x, v, path, &c->max_memory);
            if (rv == 0 && c->max_memory == 0)
                rv = fail(x, v, path, "must be greater than zero");
        } else if (strcmp(name, "max_headers") == 0) {
            rv = get_uint(x, v, path, &c->max_headers);
            if (rv == 0 && (c->max_headers == 0 || c->max_headers > 100))
                rv = fail(x, v, path, "expected 1 to 100 (the HTTP parser's own ceiling)");
        } else if (strcmp(name, "max_header_size") == 0) {
            rv = get_size(x, v, path, &c->max_header_size);
            if (rv == 0 && (c->max_header_size < 1024 || c->max_header_size > 400000))
                rv = fail(x, v, path, "expected 1k to 390k (at most 400000 bytes, the HTTP parser's own ceiling)");
        } else if (strcmp(name, "max_json_depth") == 0) {
            rv = get_uint(x, v, path, &c->max_json_depth);
            if (rv == 0 && (c->max_json_depth == 0 || c->max_json_depth > KEEL_JSON_MAX_DEPTH))
                rv = fail(x, v, path, "expected 1 to 512");
        } else if (strcmp(name, "header_timeout") == 0) {
            rv = get_positive_duration(x, v, path, &c->header_timeout_ms);
        } else if (strcmp(name, "body_timeout") == 0) {
            rv = get_positive_duration(x, v, path, &c->body_timeout_ms);
        } else if (strcmp(name, "idle_timeout") == 0) {
            rv = get_positive_duration(x, v, path, &c->idle_timeout_ms);
        } else if (strcmp(name, "send_timeout") == 0) {
            rv = get_positive_duration(x, v, path, &c->send_timeout_ms);
        } else if (strcmp(name, "events") == 0) {
            rv = events(x, v, path, c);
        } else if (strcmp(name, "defaults") == 0) {
            /* done above */
        } else if (strcmp(name, "upstreams") == 0) {
            ups = v;
        } else if (strcmp(name, "models") == 0) {
            models = v;
        } else if (strcmp(name, "keys") == 0) {
            keys = v;
        } else if (strcmp(name, "keys_file") == 0) {
            keys_at = v;
        } else if (strcmp(name, "admin_token") == 0) {
            rv = get_string(x, v, path, &c->admin_token);
        } else if (strcmp(name, "state") == 0) {
            rv = shared_state(x, v, path, c);
        } else {
            rv = fail(x, k, path,
                      "unknown key (expected listen, admin_listen, audit_log, audit_max_size, audit_keep, "
                      "max_body, drain_timeout, max_inflight, max_connections, workers, max_memory, max_headers, "
                      "max_header_size, max_json_depth, header_timeout, body_timeout, idle_timeout, send_timeout, "
                      "cliff, cliff_margin, events, defaults, upstreams, models, keys, keys_file, admin_token, state)");
        }
    }
    if (keys != NULL)
        client_keys(x, keys, "keys", c);
    if (keys_at != NULL)
        keys_file(x, keys_at, "keys_file", c);
    if (ups == NULL) {
        fail(x, map, "upstreams", "missing: at least one upstream is needed");
        x->upstreams_vague = 1;
    } else if (list(x, ups, "upstreams", sizeof(*c->upstreams), (void **)&c->upstreams, &c->nupstreams) != 0) {
        x->upstreams_vague = 1;
    }
    for (size_t i = 0; i < c->nupstreams; i++) {
        char path[64];
        snprintf(path, sizeof(path), "upstreams[%zu]", i);
        const yaml_node_t *n = node(x, ups->data.sequence.items.start[i]);
        upstream(x, n, path, &c->upstreams[i]);
        if (c->upstreams[i].name == NULL) {
            x->upstreams_vague = 1;
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (c->upstreams[j].name != NULL && strcmp(c->upstreams[j].name, c->upstreams[i].name) == 0) {
                fail(x, n, path, "duplicate upstream name \"%s\"", c->upstreams[i].name);
                break;
            }
    }
    if (models == NULL)
        fail(x, map, "models", "missing: at least one model is needed");
    else if (list(x, models, "models", sizeof(*c->models), (void **)&c->models, &c->nmodels) == 0 &&
             c->nmodels == 0)
        fail(x, models, "models", "empty: at least one model is needed");
    for (size_t i = 0; i < c->nmodels; i++) {
        char path[64];
        snprintf(path, sizeof(path), "models[%zu]", i);
        const yaml_node_t *n = node(x, models->data.sequence.items.start[i]);
        model(x, n, path, c, &c->models[i]);
        for (size_t j = 0; j < i && c->models[i].name != NULL; j++)
            if (c->models[j].name != NULL && strcmp(c->models[j].name, c->models[i].name) == 0) {
                fail(x, n, path, "duplicate model name \"%s\"", c->models[i].name);
                break;
            }
    }
    /* a key's models must be aliases: a typo would refuse its every request */
    for (size_t i = 0; i < c->nkeys; i++)
        for (size_t j = 0; j < c->keys[i].nmodels; j++)
            if (c->nmodels > 0 && keel_config_model(c, c->keys[i].models[j]) == NULL) {
                char path[128];
                snprintf(path, sizeof(path), "keys[%zu].models", i);
                fail(x, keys ? keys : map, path, "unknown model \"%s\"", c->keys[i].models[j]);
            }
    if (!addr_refused && c->listen_port != 0 && c->listen_port == c->admin_port &&
        strcmp(c->listen_addr, c->admin_addr) == 0)
        fail(x, map, "admin_listen", "must differ from listen");
    return failed_since(x, before);
}

static const char *plain_getenv(const char *name)
{
    return getenv(name);
}

struct keel_config *keel_config_parse_all(const char *file, const char *text, size_t len,
                                          const char *(*getenv_fn)(const char *), struct keel_config_errors *errs)
{
    errs->n = 0;
    errs->more = 0;
    struct keel_config *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fail_file(errs, file, "out of memory");
        return NULL;
    }
    c->file = strdup(file);
    c->listen_host = strdup("127.0.0.1");
    c->listen_addr = strdup("127.0.0.1");
    c->listen_port = 4000;
    c->admin_host = strdup("127.0.0.1");
    c->admin_addr = strdup("127.0.0.1");
    c->admin_port = 4001;
    if (c->file == NULL || c->listen_host == NULL || c->listen_addr == NULL || c->admin_host == NULL ||
        c->admin_addr == NULL) {
        fail_file(errs, file, "out of memory");
        keel_config_free(c);
        return NULL;
    }
    c->max_body = 8u << 20;
    c->drain_ms = 30000;
    c->max_inflight = 10000;
    c->max_connections = 0; /* from the open-file limit at start */
    c->max_memory = 1u << 30;
    c->max_headers = 64;
    c->max_header_size = 16u << 10;
    c->max_json_depth = 128;
    c->header_timeout_ms = 5000;
    c->body_timeout_ms = 10000;
    c->idle_timeout_ms = 60000;
    c->send_timeout_ms = 30000;
    c->audit_max_size = 100u << 20;
    c->audit_keep = 5;
    c->cliff_ms = 660000;
    c->cliff_margin_ms = 120000;
    c->timeouts = (struct keel_timeouts){.connect_ms = 5000, .first_byte_ms = 60000, .stall_ms = 30000,
                                         .total_ms = 300000};
    c->retry = (struct keel_retry){.same_target = 0, .backoff_ms = 200, .max_wait_ms = 5000};
    c->breaker = (struct keel_breaker_conf){.failures = 3, .rejections = 10, .cooldown_ms = 30000,
                                            .max_cooldown_ms = 300000};

    yaml_parser_t parser;
    yaml_document_t doc;
    struct ctx x = {.file = file, .doc = &doc, .getenv_fn = getenv_fn ? getenv_fn : plain_getenv, .errs = errs};
    if (!yaml_parser_initialize(&parser)) {
        fail_file(errs, file, "out of memory");
        keel_config_free(c);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) { /* where the syntax breaks, the rest means nothing */
        char msg[sizeof(errs->msg[0])];
        unsigned long line = (unsigned long)parser.problem_mark.line + 1;
        snprintf(msg, sizeof(msg), "%s:%lu: (yaml): %s%s%s", file, line,
                 parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                 parser.context ? parser.context : "");
        add_error(errs, line, msg);
        yaml_parser_delete(&parser);
        keel_config_free(c);
        return NULL;
    }
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    if (top == NULL) {
        char msg[sizeof(errs->msg[0])];
        snprintf(msg, sizeof(msg), "%s:1: (top level): the file is empty", file);
        add_error(errs, 1, msg);
        x.nerr++;
    } else {
        root(&x, top, c);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    assert(x.nerr == errs->n + errs->more); /* every error reported went through fail() */
    if (errs->n > 0) {
        keel_config_free(c);
        return NULL;
    }
    return c;
}

/* the file's text (malloc'd, *len bytes, not NUL-terminated), or NULL with an error in errs */
static char *read_file(const char *file, size_t *len, struct keel_config_errors *errs)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        fail_file(errs, file, "cannot open: %s", strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nt = realloc(text, cap);
            if (nt == NULL) {
                free(text);
                fclose(f);
                fail_file(errs, file, "out of memory");
                return NULL;
            }
            text = nt;
        }
        size_t r = fread(text + *len, 1, cap - *len, f);
        *len += r;
        if (r == 0)
            break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(text);
        fail_file(errs, file, "read failed");
        return NULL;
    }
    return text;
}

struct keel_config *keel_config_load_all(const char *file, struct keel_config_errors *errs)
{
    errs->n = 0;
    errs->more = 0;
    size_t len;
    char *text = read_file(file, &len, errs);
    if (text == NULL)
        return NULL;
    struct keel_config *c = keel_config_parse_all(file, text, len, NULL, errs);
    free(text);
    return c;
}

/* errs on one line: the first error, and how many more */
static void first_error(const struct keel_config_errors *errs, char *err, size_t errlen)
{
    assert(errs->n > 0);
    size_t others = errs->n - 1 + errs->more;
    if (others == 0)
        snprintf(err, errlen, "%s", errs->msg[0]);
    else
        snprintf(err, errlen, "%s (and %zu more error%s)", errs->msg[0], others, others == 1 ? "" : "s");
}

struct keel_config *keel_config_parse(const char *file, const char *text, size_t len,
                                      const char *(*getenv_fn)(const char *), char *err, size_t errlen)
{
    struct keel_config_errors errs;
    struct keel_config *c = keel_config_parse_all(file, text, len, getenv_fn, &errs);
    if (c == NULL)
        first_error(&errs, err, errlen);
    return c;
}

struct keel_config *keel_config_load(const char *file, char *err, size_t errlen)
{
    struct keel_config_errors errs;
    struct keel_config *c = keel_config_load_all(file, &errs);
    if (c == NULL)
        first_error(&errs, err, errlen);
    return c;
}

void keel_config_free(struct keel_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nkeys; i++) {
        free(c->keys[i].name);
        for (size_t j = 0; j < c->keys[i].nmodels; j++)
            free(c->keys[i].models[j]);
        free(c->keys[i].models);
    }
    free(c->keys);
    state_conf_free(c->state);
    if (c->admin_token != NULL) {
        explicit_bzero(c->admin_token, strlen(c->admin_token));
        free(c->admin_token);
    }
    for (size_t i = 0; i < c->nupstreams; i++) {
        struct keel_upstream_conf *u = &c->upstreams[i];
        if (u->api_key != NULL) {
            explicit_bzero(u->api_key, strlen(u->api_key));
            free(u->api_key);
        }
        for (size_t j = 0; j < u->nheaders; j++) {
            explicit_bzero(u->headers[j], strlen(u->headers[j]));
            free(u->headers[j]);
        }
        free(u->headers);
        free(u->name);
        free(u->base_url);
        managed_free(u->managed);
        control_free(u->control);
    }
    for (size_t i = 0; i < c->nmodels; i++) {
        for (size_t j = 0; j < c->models[i].ntargets; j++) {
            free(c->models[i].targets[j].model);
            free(c->models[i].targets[j].continuation_body);
        }
        free(c->models[i].targets);
        free(c->models[i].name);
    }
    free(c->upstreams);
    free(c->models);
    free(c->listen_host);
    free(c->listen_addr);
    free(c->admin_host);
    free(c->admin_addr);
    free(c->audit_log);
    free(c->webhook);
    free(c->file);
    free(c);
}

/* atomic: requests on every worker hold and drop the config they began under */
struct keel_config *keel_config_hold(struct keel_config *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void keel_config_drop(struct keel_config *c)
{
    if (c != NULL && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) <= 0)
        keel_config_free(c);
}

const struct keel_model_conf *keel_config_model(const struct keel_config *c, const char *name)
{
    for (size_t i = 0; i < c->nmodels; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return &c->models[i];
    return NULL;
}
