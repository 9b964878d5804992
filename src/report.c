/* report.c - `keel audit [FILE...] [--since DUR] [--model M] [--key K] [--json] [--hang DUR]
 * [--cliff DUR] [--margin DUR]`: per-model latency percentiles (p50/p90/p99/max of total time and
 * of TTFT), errors by class, hangs, failovers and who served, from the audit log and its rotated
 * files (FILE.1, FILE.2, ...). Models whose p99 or max comes within --margin of --cliff are marked
 * (seed 000: latency, not error rate, is the early warning). Records with a client key's name
 * ("key") are also summed per key: answered, refused by keel, failed, tokens, latency. */
#include "report.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/classify.h"
#include "core/health.h"
#include "core/stats.h"
#include "core/units.h"
#include "log.h"
#include "ui.h"

struct samples {
    uint32_t *v;
    int64_t *at; /* when each sample's request arrived (ms), for the report's charts */
    size_t n, cap;
};

struct named_count {
    char *name;
    uint64_t n;
};

struct named_cost {
    char *name;
    double cost;
};

/* Both kinds of row start with their name (owned, freed with the row), so that one lookup
 * serves both (entry()) */
struct model_report {
    char *name;
    uint64_t requests, errors, hangs, failovers;
    uint64_t by_class[KEEL_CLASS_COUNT + 1]; /* +1: a class this build does not know */
    struct samples ms, ttft;
    struct named_count *served; /* ok answers by upstream */
    size_t nserved;
    double cost;                /* sum of the records' "cost" (targets with a price) */
    struct named_cost *costs;   /* the same by answering upstream, [ncosts] */
    size_t ncosts;
};

/* one client key's records (their "key" member): requests = ok + refused + errors */
struct key_report {
    char *name;
    uint64_t requests, ok;
    uint64_t refused;                        /* turned away by keel itself (is_refusal()) */
    uint64_t errors;                         /* every other class but ok */
    uint64_t tokens;                         /* sum of usage.total_tokens */
    double cost;                             /* sum of "cost" */
    uint64_t by_class[KEEL_CLASS_COUNT + 1]; /* +1: a class this build does not know */
    struct samples ms;
};

struct report {
    struct model_report *models;
    size_t n;
    struct key_report *keys; /* in order of first appearance; sorted by name before printing */
    size_t nkeys;
    uint64_t lines, skipped_lines;
    int64_t first_ms, last_ms; /* the span the counted records cover (their "ts"); 0: none */
};

static void push(struct samples *s, uint32_t v, int64_t at)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint32_t *nv = realloc(s->v, cap * sizeof(*nv));
        if (nv == NULL)
            return;
        s->v = nv;
        int64_t *na = realloc(s->at, cap * sizeof(*na));
        if (na == NULL)
            return;
        s->at = na;
        s->cap = cap;
    }
    s->at[s->n] = at;
    s->v[s->n++] = v;
}

/* The row named name in *rows (n rows of size bytes, each starting with its char *name), added
 * zeroed at the end if missing; NULL when out of memory. Adding may move *rows: earlier
 * pointers into it go stale. */
static void *entry(void **rows, size_t *n, size_t size, const char *name)
{
    char *base = *rows;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(*(char **)(void *)(base + i * size), name) == 0)
            return base + i * size;
    char *grown = realloc(*rows, (*n + 1) * size);
    if (grown == NULL)
        return NULL;
    *rows = grown;
    char *row = grown + *n * size;
    memset(row, 0, size);
    *(char **)(void *)row = strdup(name);
    (*n)++;
    return row;
}

static struct model_report *model(struct report *r, const char *name)
{
    return entry((void **)&r->models, &r->n, sizeof(*r->models), name);
}

static struct key_report *key_row(struct report *r, const char *name)
{
    return entry((void **)&r->keys, &r->nkeys, sizeof(*r->keys), name);
}

/* what a record's answer cost, to the model and the upstream that answered */
static void add_cost(struct model_report *m, const char *upstream, double cost)
{
    m->cost += cost;
    for (size_t i = 0; i < m->ncosts; i++) {
        if (strcmp(m->costs[i].name, upstream) == 0) {
            m->costs[i].cost += cost;
            return;
        }
    }
    struct named_cost *nc = realloc(m->costs, (m->ncosts + 1) * sizeof(*nc));
    if (nc == NULL)
        return;
    m->costs = nc;
    char *name = strdup(upstream);
    if (name != NULL)
        nc[m->ncosts++] = (struct named_cost){name, cost};
}

static void served(struct model_report *m, const char *upstream)
{
    for (size_t i = 0; i < m->nserved; i++) {
        if (strcmp(m->served[i].name, upstream) == 0) {
            m->served[i].n++;
            return;
        }
    }
    struct named_count *ns = realloc(m->served, (m->nserved + 1) * sizeof(*ns));
    if (ns == NULL)
        return;
    m->served = ns;
    ns[m->nserved++] = (struct named_count){strdup(upstream), 1};
}

static int class_index(const char *name)
{
    for (int c = 0; c < KEEL_CLASS_COUNT; c++)
        if (strcmp(keel_class_name((enum keel_class)c), name) == 0)
            return c;
    return KEEL_CLASS_COUNT;
}

/* a by_class index as printed: the class's name, "other" for one this build does not know */
static const char *class_label(int k)
{
    return k < KEEL_CLASS_COUNT ? keel_class_name((enum keel_class)k) : "other";
}

/* a by_class index keel turned away itself (core/classify.h); "other" (a class this build does
 * not know) is not */
static int is_refusal(int k)
{
    return k < KEEL_CLASS_COUNT && keel_class_refused((enum keel_class)k);
}

/* a model's errors: every class but ok */
static int not_ok(int k)
{
    return k != KEEL_CLASS_OK;
}

/* a key's errors: not ok, and not refused by keel (those have their own column) */
static int failed(int k)
{
    return k != KEEL_CLASS_OK && !is_refusal(k);
}

/* "2026-11-23T12:25:26.704Z" -> ms since the epoch; -1 if malformed */
static int64_t parse_ts(const char *s)
{
    struct tm tm = {0};
    int ms = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                            &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

struct filter {
    int64_t since_ms; /* 0 = everything */
    const char *model;
    const char *key; /* only records whose "key" is this; NULL = every record, with a key or not */
    uint64_t hang_ms;
};

/* sums record rec of class ci into the row of its key, name (NULL: the record is in no row) */
static void add_key(struct report *r, const char *name, json_t *rec, int ci, uint32_t ms)
{
    struct key_report *k = name ? key_row(r, name) : NULL;
    if (k == NULL)
        return;
    k->requests++;
    k->by_class[ci]++;
    if (ci == KEEL_CLASS_OK)
        k->ok++;
    else if (is_refusal(ci))
        k->refused++;
    else
        k->errors++;
    json_int_t tokens = json_integer_value(json_object_get(json_object_get(rec, "usage"), "total_tokens"));
    k->tokens += tokens > 0 ? (uint64_t)tokens : 0;
    k->cost += json_number_value(json_object_get(rec, "cost"));
    push(&k->ms, ms, 0);
}

static void add_line(struct report *r, const struct filter *f, const char *line, size_t len)
{
    json_t *rec = json_loadb(line, len, 0, NULL);
    const char *name = json_string_value(json_object_get(rec, "model"));
    if (name != NULL && name[0] == '\0')
        name = "(no model)"; /* a request keel refused before it named one: no unnamed row */
    if (name == NULL) {
        r->skipped_lines++;
        json_decref(rec);
        return;
    }
    r->lines++;
    const char *key = json_string_value(json_object_get(rec, "key"));
    if ((f->model && strcmp(f->model, name) != 0) || (f->key && (key == NULL || strcmp(f->key, key) != 0)) ||
        (f->since_ms && parse_ts(json_string_value(json_object_get(rec, "ts"))) < f->since_ms)) {
        json_decref(rec);
        return;
    }
    struct model_report *m = model(r, name);
    if (m == NULL) {
        json_decref(rec);
        return;
    }
    int64_t at = parse_ts(json_string_value(json_object_get(rec, "ts")));
    if (at > 0 && (r->first_ms == 0 || at < r->first_ms))
        r->first_ms = at;
    if (at > r->last_ms)
        r->last_ms = at;
    m->requests++;
    const char *cls = json_string_value(json_object_get(rec, "class"));
    int ci = class_index(cls ? cls : "");
    m->by_class[ci]++;
    if (ci != KEEL_CLASS_OK)
        m->errors++;
    json_int_t ms = json_integer_value(json_object_get(rec, "ms"));
    push(&m->ms, (uint32_t)(ms > 0 ? ms : 0), at);
    add_key(r, key, rec, ci, (uint32_t)(ms > 0 ? ms : 0));
    if ((uint64_t)ms >= f->hang_ms)
        m->hangs++;
    json_t *ttft = json_object_get(rec, "ttft_ms");
    if (json_is_integer(ttft))
        push(&m->ttft, (uint32_t)json_integer_value(ttft), at);
    const char *up = json_string_value(json_object_get(rec, "upstream"));
    if (ci == KEEL_CLASS_OK && up != NULL)
        served(m, up);
    json_t *cost = json_object_get(rec, "cost");
    if (json_is_number(cost) && up != NULL)
        add_cost(m, up, json_number_value(cost));
    size_t i, tried = 0;
    json_t *a;
    json_array_foreach(json_object_get(rec, "attempts"), i, a)
    {
        const char *ac = json_string_value(json_object_get(a, "class"));
        tried += ac == NULL || strcmp(ac, "skipped") != 0;
    }
    if (tried > 1)
        m->failovers++;
    json_decref(rec);
}

static int read_file(struct report *r, const struct filter *f, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, fp)) > 0)
        add_line(r, f, line, (size_t)n);
    free(line);
    fclose(fp);
    return 0;
}

/* FILE, then its rotated FILE.1, FILE.2, ... while they exist */
static int read_all(struct report *r, const struct filter *f, const char *path)
{
    if (read_file(r, f, path) != 0) {
        fprintf(stderr, "keel audit: cannot read %s\n", path);
        return -1;
    }
    size_t n = strlen(path) + 16;
    char rotated[n];
    for (unsigned i = 1; i < 10000; i++) {
        snprintf(rotated, n, "%s.%u", path, i);
        if (access(rotated, R_OK) != 0)
            break;
        read_file(r, f, rotated);
    }
    return 0;
}

static void fmt_ms(uint32_t ms, char *dst, size_t n)
{
    if (ms < 1000)
        snprintf(dst, n, "%ums", ms);
    else if (ms < 600000)
        snprintf(dst, n, "%.1fs", ms / 1000.0);
    else
        snprintf(dst, n, "%.1fm", ms / 60000.0);
}

/* a span of time in the unit that reads best: 45s, 90 min, 36h, 12.5 days */
static void fmt_span(int64_t ms, char *dst, size_t n)
{
    double s = (double)ms / 1000.0;
    if (s < 120)
        snprintf(dst, n, "%.0fs", s);
    else if (s < 7200)
        snprintf(dst, n, "%.0f min", s / 60);
    else if (s < 172800)
        snprintf(dst, n, "%.0fh", s / 3600);
    else
        snprintf(dst, n, "%.1f days", s / 86400);
}

static int near_cliff(const struct keel_pcts *p, uint64_t cliff, uint64_t margin)
{
    uint64_t worst = p->p99 > p->max ? p->p99 : p->max;
    return p->count > 0 && worst + margin >= cliff;
}

/* the line under a row: label, then " CLASS N" for each class keep() takes that was seen */
static void print_classes(const char *label, const uint64_t *by_class, int (*keep)(int k))
{
    printf("%-20s %s", "", label);
    for (int k = 0; k <= KEEL_CLASS_COUNT; k++)
        if (keep(k) && by_class[k] > 0)
            printf(" %s %llu", class_label(k), (unsigned long long)by_class[k]);
    printf("\n");
}

static void print_table(struct report *r, uint64_t hang_ms, uint64_t cliff, uint64_t margin)
{
    char h[16];
    fmt_ms((uint32_t)hang_ms, h, sizeof(h));
    uint64_t requests = 0;
    for (size_t i = 0; i < r->n; i++)
        requests += r->models[i].requests;
    if (r->first_ms > 0) { /* the span first: percentiles over an hour and over a week differ */
        char from[40], to[40];
        keel_time_rfc3339(r->first_ms, from, sizeof(from));
        keel_time_rfc3339(r->last_ms, to, sizeof(to));
        char span[32];
        fmt_span(r->last_ms - r->first_ms, span, sizeof(span));
        printf("%llu requests from %s to %s (%s)\n\n", (unsigned long long)requests, from, to, span);
    }
    printf("%-20s %8s %7s  %8s %8s %8s %8s  %8s %8s %8s %8s  %6s %9s  %s\n", "model", "requests", "errors", "p50",
           "p90", "p99", "max", "ttft p50", "ttft p90", "ttft p99", "ttft max", "hangs", "failovers", "served by");
    for (size_t i = 0; i < r->n; i++) {
        struct model_report *m = &r->models[i];
        struct keel_pcts d, t;
        keel_pcts_of(m->ms.v, m->ms.n, &d);
        keel_pcts_of(m->ttft.v, m->ttft.n, &t);
        char c[8][16];
        const uint32_t v[8] = {d.p50, d.p90, d.p99, d.max, t.p50, t.p90, t.p99, t.max};
        for (int k = 0; k < 8; k++) /* a dash where there is no sample (no answer: no TTFT) */
            if ((k < 4 ? d.count : t.count) > 0)
                fmt_ms(v[k], c[k], 16);
            else
                snprintf(c[k], 16, "-");
        char by[512] = "";
        size_t off = 0;
        uint64_t ok = m->by_class[KEEL_CLASS_OK];
        for (size_t j = 0; j < m->nserved && off < sizeof(by); j++)
            off += (size_t)snprintf(by + off, sizeof(by) - off, "%s%s %.0f%%", j ? ", " : "", m->served[j].name,
                                    100.0 * (double)m->served[j].n / (double)(ok ? ok : 1));
        printf("%-20s %8llu %7llu  %8s %8s %8s %8s  %8s %8s %8s %8s  %6llu %9llu  %s%s\n", m->name,
               (unsigned long long)m->requests, (unsigned long long)m->errors, c[0], c[1], c[2], c[3], c[4], c[5],
               c[6], c[7], (unsigned long long)m->hangs, (unsigned long long)m->failovers, by,
               near_cliff(&d, cliff, margin) ? "   << NEAR CLIFF" : "");
        if (m->errors > 0)
            print_classes("errors:", m->by_class, not_ok);
        if (m->ncosts > 0) { /* per model, and per target that answered */
            printf("%-20s cost: %.6f (", "", m->cost);
            for (size_t j = 0; j < m->ncosts; j++)
                printf("%s%s %.6f", j ? ", " : "", m->costs[j].name, m->costs[j].cost);
            printf(")\n");
        }
    }
    char cl[16];
    fmt_ms((uint32_t)cliff, cl, sizeof(cl));
    printf("\nhangs: requests over %s. NEAR CLIFF: p99 or max within %llus of the %s cliff.\n", h,
           (unsigned long long)(margin / 1000), cl);
}

/* The per-key table, after the models' (none when no record names a key): a row per key, then
 * what was refused and what failed, by class. Sorts each row's samples. */
static void print_keys(struct report *r)
{
    if (r->nkeys == 0)
        return;
    printf("\n%-20s %8s %8s %8s %7s %10s %12s  %8s %8s\n", "key", "requests", "ok", "refused", "errors", "tokens",
           "cost", "p50", "p99");
    for (size_t i = 0; i < r->nkeys; i++) {
        struct key_report *k = &r->keys[i];
        struct keel_pcts d;
        keel_pcts_of(k->ms.v, k->ms.n, &d);
        char p50[16], p99[16];
        fmt_ms(d.p50, p50, sizeof(p50));
        fmt_ms(d.p99, p99, sizeof(p99));
        printf("%-20s %8llu %8llu %8llu %7llu %10llu %12.6f  %8s %8s\n", k->name, (unsigned long long)k->requests,
               (unsigned long long)k->ok, (unsigned long long)k->refused, (unsigned long long)k->errors,
               (unsigned long long)k->tokens, k->cost, p50, p99);
        if (k->refused > 0)
            print_classes("refused:", k->by_class, is_refusal);
        if (k->errors > 0)
            print_classes("errors:", k->by_class, failed);
    }
}

static json_t *pcts_json(const struct keel_pcts *p)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "p50", (json_int_t)p->p50, "p90", (json_int_t)p->p90, "p99",
                     (json_int_t)p->p99, "max", (json_int_t)p->max, "count", (json_int_t)p->count);
}

/* {CLASS: N} for each class keep() takes that was seen; the caller owns the object */
static json_t *classes_json(const uint64_t *by_class, int (*keep)(int k))
{
    json_t *o = json_object();
    for (int k = 0; k <= KEEL_CLASS_COUNT; k++)
        if (keep(k) && by_class[k] > 0)
            json_object_set_new(o, class_label(k), json_integer((json_int_t)by_class[k]));
    return o;
}

/* --json's "keys": {NAME: {...}} in name order, the figures of print_keys(); the caller owns it */
static json_t *keys_json(struct report *r)
{
    json_t *keys = json_object();
    for (size_t i = 0; i < r->nkeys; i++) {
        struct key_report *k = &r->keys[i];
        struct keel_pcts d;
        keel_pcts_of(k->ms.v, k->ms.n, &d);
        json_object_set_new(keys, k->name,
                            json_pack("{s:I, s:I, s:I, s:o, s:I, s:o, s:I, s:o}", "requests",
                                      (json_int_t)k->requests, "ok", (json_int_t)k->ok, "refused",
                                      (json_int_t)k->refused, "refused_by_class", classes_json(k->by_class, is_refusal),
                                      "errors", (json_int_t)k->errors, "errors_by_class",
                                      classes_json(k->by_class, failed), "tokens", (json_int_t)k->tokens, "ms",
                                      pcts_json(&d)));
        json_object_set_new(json_object_get(keys, k->name), "cost", json_real(k->cost));
    }
    return keys;
}

/* the percentiles of the samples taken in [from, to) */
static void bucket(const struct samples *s, int64_t from, int64_t to, struct keel_pcts *out)
{
    uint32_t *v = malloc((s->n ? s->n : 1) * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v != NULL && i < s->n; i++)
        if (s->at[i] >= from && s->at[i] < to)
            v[n++] = s->v[i];
    keel_pcts_of(v, n, out);
    free(v);
}

/* a model's latency over the log: up to 60 points over the span its samples cover */
static json_t *history_json(const struct model_report *m)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t k = 0; k < m->ms.n; k++) {
        lo = m->ms.at[k] < lo ? m->ms.at[k] : lo;
        hi = m->ms.at[k] > hi ? m->ms.at[k] : hi;
    }
    json_t *history = json_array();
    int64_t step = hi > lo ? (hi - lo) / 60 + 1 : 1;
    for (int64_t t = lo; m->ms.n > 0 && t <= hi; t += step) {
        struct keel_pcts d, tt;
        bucket(&m->ms, t, t + step, &d);
        bucket(&m->ttft, t, t + step, &tt);
        if (d.count > 0)
            json_array_append_new(history, json_pack("{s:I, s:o, s:o}", "t", (json_int_t)(t + step / 2), "d",
                                                     pcts_json(&d), "ttft", pcts_json(&tt)));
    }
    return history;
}

/* A model's health over the log, the live page's verdict (core/health.c) on its records: no
 * breaker is known from a log, so only outcomes, failovers and the cliff count. local: the
 * requests keel refused itself or whose client left, which say nothing of the providers. */
static json_t *health_json(const struct model_report *m, int near, double span_s)
{
    struct keel_outcome_counts oc = {.requests = m->requests, .ok = m->by_class[KEEL_CLASS_OK],
                                     .failovers = m->failovers};
    for (int k = 0; k < KEEL_CLASS_COUNT; k++) {
        oc.by_class[k] = m->by_class[k];
        oc.local += keel_health_local((enum keel_class)k) ? m->by_class[k] : 0;
    }
    char why[512];
    enum keel_health_state hs = keel_health_of(&oc, 0, 0, near, why, sizeof(why));
    uint64_t judged = oc.requests - oc.local;
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "state", keel_health_name(hs), "reasons", why, "requests",
                     (json_int_t)oc.requests, "ok", (json_int_t)oc.ok, "local", (json_int_t)oc.local,
                     "success_share", judged ? json_real((double)oc.ok / (double)judged) : json_null(), "rps",
                     span_s >= 1 ? json_real((double)oc.requests / span_s) : json_null()); /* none in a blink */
}

/* The report as JSON: what --json prints, and (with history) the data of --html's page, so that
 * both show the same numbers. The caller owns it. */
static json_t *report_json(struct report *r, uint64_t cliff, uint64_t margin, int history)
{
    json_t *models = json_array();
    double span_s = r->last_ms > r->first_ms ? (double)(r->last_ms - r->first_ms) / 1000.0 : 0;
    for (size_t i = 0; i < r->n; i++) {
        struct model_report *m = &r->models[i];
        struct keel_pcts d, t;
        keel_pcts_of(m->ms.v, m->ms.n, &d);
        keel_pcts_of(m->ttft.v, m->ttft.n, &t);
        json_t *errors = classes_json(m->by_class, not_ok), *by = json_object();
        for (size_t j = 0; j < m->nserved; j++)
            json_object_set_new(by, m->served[j].name, json_integer((json_int_t)m->served[j].n));
        int near = near_cliff(&d, cliff, margin);
        json_array_append_new(models, json_pack("{s:s, s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:o, s:b}", "model",
                                                m->name, "requests", (json_int_t)m->requests, "errors",
                                                (json_int_t)m->errors, "errors_by_class", errors, "ms",
                                                pcts_json(&d), "ttft_ms", pcts_json(&t), "hangs",
                                                (json_int_t)m->hangs, "failovers", (json_int_t)m->failovers,
                                                "served_by", by, "near_cliff", near));
        json_t *row = json_array_get(models, json_array_size(models) - 1), *costs = json_object();
        for (size_t j = 0; j < m->ncosts; j++)
            json_object_set_new(costs, m->costs[j].name, json_real(m->costs[j].cost));
        json_object_set_new(row, "cost", json_real(m->cost));
        json_object_set_new(row, "cost_by_upstream", costs);
        json_object_set_new(row, "health", health_json(m, near, span_s));
        if (history)
            json_object_set_new(row, "history", history_json(m));
    }
    char from[40] = "", to[40] = "";
    if (r->first_ms > 0) {
        keel_time_rfc3339(r->first_ms, from, sizeof(from));
        keel_time_rfc3339(r->last_ms, to, sizeof(to));
    }
    return json_pack("{s:o, s:o, s:I, s:I, s:{s:o, s:o, s:f}, s:{s:I, s:I}}", "models", models, "keys", keys_json(r),
                     "lines", (json_int_t)r->lines, "unreadable_lines", (json_int_t)r->skipped_lines, "span", "from",
                     r->first_ms > 0 ? json_string(from) : json_null(), "to",
                     r->first_ms > 0 ? json_string(to) : json_null(), "seconds", span_s, "thresholds", "cliff_ms",
                     (json_int_t)cliff, "margin_ms", (json_int_t)margin);
}

static void print_json(struct report *r, uint64_t cliff, uint64_t margin)
{
    json_t *root = report_json(r, cliff, margin, 0);
    char *out = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (out != NULL)
        puts(out);
    free(out);
}

/* the status page (src/ui.html) with the report's data in it: the same numbers as --json */
static int write_html(struct report *r, const char *path, uint64_t cliff, uint64_t margin, uint64_t hang_ms)
{
    json_t *data = report_json(r, cliff, margin, 1);
    json_object_set_new(data, "report", json_pack("{s:I}", "hang_ms", (json_int_t)hang_ms));
    size_t len = 0;
    char *html = data != NULL ? keel_ui_report(data, &len) : NULL;
    json_decref(data);
    FILE *f = html ? fopen(path, "w") : NULL;
    int ok = f != NULL && fwrite(html, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    free(html);
    if (!ok) {
        fprintf(stderr, "keel audit: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* qsort order of the key rows: by name */
static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct key_report *)a)->name, ((const struct key_report *)b)->name);
}

static int duration_opt(const char *flag, const char *v, uint64_t *out)
{
    if (v == NULL || keel_parse_duration_ms(v, out) != 0) {
        fprintf(stderr, "keel audit: %s: expected a duration such as 1h, 30m, 120s\n", flag);
        return -1;
    }
    return 0;
}

int keel_report_run(int argc, char **argv)
{
    struct filter f = {.hang_ms = 120000};
    uint64_t since = 0, cliff = 660000, margin = 120000;
    int json = 0;
    const char *html = NULL;
    const char *files[256];
    size_t nfiles = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--html") == 0 && v != NULL) {
            html = v;
            i++;
        } else if (strcmp(a, "--model") == 0 && v != NULL) {
            f.model = v;
            i++;
        } else if (strcmp(a, "--key") == 0 && v != NULL) {
            f.key = v;
            i++;
        } else if (strcmp(a, "--since") == 0 || strcmp(a, "--hang") == 0 || strcmp(a, "--cliff") == 0 ||
                   strcmp(a, "--margin") == 0) {
            uint64_t *dst = a[2] == 's' ? &since : a[2] == 'h' ? &f.hang_ms : a[2] == 'c' ? &cliff : &margin;
            if (duration_opt(a, v, dst) != 0)
                return 2;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "keel audit: unknown option %s\n"
                            "usage: keel audit [FILE...] [--since DUR] [--model NAME] [--key NAME]\n"
                            "                  [--json | --html OUT] [--hang DUR] [--cliff DUR] [--margin DUR]\n",
                    a);
            return 2;
        } else if (nfiles < 256) {
            files[nfiles++] = a;
        }
    }
    if (nfiles == 0)
        files[nfiles++] = "keel-audit.jsonl";
    if (since > 0) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        f.since_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 - (int64_t)since;
    }
    struct report r = {0};
    for (size_t i = 0; i < nfiles; i++)
        if (read_all(&r, &f, files[i]) != 0)
            return 1;
    if (r.nkeys > 1)
        qsort(r.keys, r.nkeys, sizeof(*r.keys), by_name);
    int rc = 0;
    if (html != NULL)
        rc = write_html(&r, html, cliff, margin, f.hang_ms) == 0 ? 0 : 1;
    else if (json)
        print_json(&r, cliff, margin);
    else {
        print_table(&r, f.hang_ms, cliff, margin);
        print_keys(&r);
    }
    for (size_t i = 0; i < r.n; i++) {
        free(r.models[i].name);
        free(r.models[i].ms.v);
        free(r.models[i].ms.at);
        free(r.models[i].ttft.v);
        free(r.models[i].ttft.at);
        for (size_t j = 0; j < r.models[i].nserved; j++)
            free(r.models[i].served[j].name);
        free(r.models[i].served);
        for (size_t j = 0; j < r.models[i].ncosts; j++)
            free(r.models[i].costs[j].name);
        free(r.models[i].costs);
    }
    free(r.models);
    for (size_t i = 0; i < r.nkeys; i++) {
        free(r.keys[i].name);
        free(r.keys[i].ms.v);
        free(r.keys[i].ms.at);
    }
    free(r.keys);
    return rc;
}
