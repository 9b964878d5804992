/* headers.c - the allowlists; see headers.h. */
#include "core/headers.h"

#include <string.h>
#include <strings.h>

struct rule {
    const char *name;
    int prefix; /* name is a prefix: a family of headers */
    const char *kind; /* NULL: any kind */
};

static int match(const struct rule *rules, size_t nrules, const char *name, size_t n, const char *kind)
{
    for (size_t i = 0; i < nrules; i++) {
        size_t l = strlen(rules[i].name);
        if ((rules[i].prefix ? n > l : n == l) && strncasecmp(name, rules[i].name, l) == 0 &&
            (rules[i].kind == NULL || (kind != NULL && strcmp(rules[i].kind, kind) == 0)))
            return 1;
    }
    return 0;
}

static const struct rule up[] = {
    {"idempotency-key", 0, NULL},         {"traceparent", 0, NULL},
    {"tracestate", 0, NULL},              {"openai-organization", 0, "openai"},
    {"openai-project", 0, "openai"},      {"http-referer", 0, "openai"},
    {"x-title", 0, "openai"},             {"anthropic-beta", 0, "anthropic"},
};

static const struct rule back[] = {
    {"x-request-id", 0, NULL},   {"request-id", 0, NULL},         {"openai-processing-ms", 0, NULL},
    {"retry-after", 0, NULL},    {"x-ratelimit-", 1, NULL},       {"anthropic-ratelimit-", 1, NULL},
};

int keel_header_up(const char *name, size_t n, const char *kind)
{
    return match(up, sizeof(up) / sizeof(up[0]), name, n, kind);
}

int keel_header_back(const char *name, size_t n)
{
    return match(back, sizeof(back) / sizeof(back[0]), name, n, NULL);
}
