/* test_config.c - the config loader: one test per kind of error (each must name FILE:LINE: key,
 * and come alone: no error that only follows from another), every error of a file reported in
 * file order up to the cap, the merging of defaults, overrides and ${VAR}s in a valid file, and
 * the api a model serves (chat, embeddings: never on an anthropic upstream). */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *fake_env(const char *name)
{
    if (strcmp(name, "TEST_KEY") == 0)
        return "sk-test-123";
    if (strcmp(name, "TEST_HOST") == 0)
        return "127.0.0.1:9";
    return NULL;
}

static struct keel_config_errors errs; /* 10 KiB: off the stack */

static struct keel_config *parse(const char *yaml, char *err, size_t n)
{
    err[0] = '\0';
    return keel_config_parse("t.yaml", yaml, strlen(yaml), fake_env, err, n);
}

/* the config must be refused with this many errors; they are in errs */
static void refused_n(const char *yaml, size_t n)
{
    struct keel_config *c = keel_config_parse_all("t.yaml", yaml, strlen(yaml), fake_env, &errs);
    if (c != NULL) {
        keel_config_free(c);
        fail_msg("accepted, expected %zu errors", n);
    }
    if (errs.n + errs.more != n) {
        for (size_t i = 0; i < errs.n; i++)
            print_error("  %s\n", errs.msg[i]);
        fail_msg("got %zu errors (%zu more), expected %zu", errs.n, errs.more, n);
    }
}

/* errs.msg[i] starts with want */
static void error_is(size_t i, const char *want)
{
    assert_true(i < errs.n);
    if (strstr(errs.msg[i], want) != errs.msg[i])
        fail_msg("error %zu is \"%s\", expected it to start with \"%s\"", i, errs.msg[i], want);
}

/* the config must be refused with exactly this error, and no other */
static void refused(const char *yaml, const char *want)
{
    refused_n(yaml, 1);
    error_is(0, want);
}

#define UP "upstreams:\n  - { name: a, kind: openai, base_url: \"http://127.0.0.1:9/v1\" }\n"
#define MODELS "models:\n  - { name: m, targets: [ { upstream: a, model: x } ] }\n"

static void test_valid_merges_defaults_and_overrides(void **state)
{
    const char *yaml = "listen: 127.0.0.1:0\n"
                       "admin_listen: \"[::1]:4001\"\n"
                       "max_body: 1m\n"
                       "defaults:\n"
                       "  timeouts: { connect: 250ms, first_byte: 5s, stall: 2m, total: 1h }\n"
                       "  retry: { same_target: 2, backoff: 100ms }\n"
                       "  breaker: { failures: 4, cooldown: 10s, max_cooldown: 1m }\n"
                       "upstreams:\n"
                       "  - name: a\n"
                       "    kind: openai\n"
                       "    base_url: http://${TEST_HOST}/v1/\n"
                       "    api_key: ${TEST_KEY}\n"
                       "models:\n"
                       "  - name: desk\n"
                       "    targets:\n"
                       "      - { upstream: a, model: big, timeouts: { first_byte: 90s }, context_window: 32k }\n"
                       "      - { upstream: a, model: small, breaker: { failures: 1 } }\n";
    char err[512];
    struct keel_config *c = parse(yaml, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->listen_port, 0);
    assert_string_equal(c->admin_host, "::1");
    assert_int_equal(c->max_body, 1 << 20);
    assert_string_equal(c->upstreams[0].base_url, "http://127.0.0.1:9/v1");
    assert_string_equal(c->upstreams[0].api_key, "sk-test-123");
    const struct keel_model_conf *m = keel_config_model(c, "desk");
    assert_non_null(m);
    assert_int_equal(m->ntargets, 2);
    assert_int_equal(m->targets[0].timeouts.first_byte_ms, 90000);
    assert_int_equal(m->targets[0].timeouts.connect_ms, 250);
    assert_int_equal(m->targets[0].timeouts.stall_ms, 120000);
    assert_int_equal(m->targets[0].timeouts.total_ms, 3600000);
    assert_int_equal(m->targets[0].context_window, 32000);
    assert_int_equal(m->targets[0].retry.same_target, 2);
    assert_int_equal(m->targets[1].timeouts.first_byte_ms, 5000);
    assert_int_equal(m->targets[1].breaker.failures, 1);
    assert_int_equal(m->targets[1].breaker.cooldown_ms, 10000);
    assert_ptr_equal(m->targets[1].upstream, &c->upstreams[0]);
    assert_null(keel_config_model(c, "nope"));
    keel_config_free(c);
}

static void test_defaults_when_absent(void **state)
{
    char err[512];
    struct keel_config *c = parse(UP MODELS, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->listen_port, 4000);
    assert_int_equal(c->admin_port, 4001);
    assert_int_equal(c->models[0].targets[0].timeouts.first_byte_ms, 60000);
    assert_int_equal(c->models[0].targets[0].breaker.failures, 3);
    assert_null(c->upstreams[0].api_key);
    keel_config_free(c);
}

static void test_unknown_key(void **state)
{
    refused(UP MODELS "colour: blue\n", "t.yaml:5: colour: unknown key");
    refused("defaults:\n  timeouts:\n    frist_byte: 5s\n" UP MODELS,
            "t.yaml:3: defaults.timeouts.frist_byte: unknown key");
    refused("upstreams:\n  - { name: a, base_url: \"http://x\", apikey: k }\n" MODELS,
            "t.yaml:2: upstreams[0].apikey: unknown key");
}

/* YAML leaves a repeated key undefined; a second managed env: list once overflowed the first's
 * count (found by fuzz_config) */
static void test_duplicate_key(void **state)
{
    refused(UP MODELS "max_body: 1m\nmax_body: 2m\n", "t.yaml:6: max_body: duplicate key (already given on line 5)");
    refused("upstreams:\n  - name: a\n    base_url: \"http://x\"\n    name: b\n" MODELS,
            "t.yaml:4: upstreams[0].name: duplicate key (already given on line 2)");
    refused("defaults: { breaker: { failures: 2, failures: 3 } }\n" UP MODELS,
            "t.yaml:1: defaults.breaker.failures: duplicate key");
}

/* an upstream's headers: kept as lines, ${VAR}s expanded; keel's own, bad names, line breaks and
 * unset variables refused, the value never echoed */
/* the bound the error states is one a value can be written as (k is 1024: 400k is past 400000) */
static void test_max_header_size_bound(void **state)
{
    char err[512];
    struct keel_config *c = parse(UP MODELS "max_header_size: 390k\n", err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    keel_config_free(c);
    refused(UP MODELS "max_header_size: 400k\n", "t.yaml:5: max_header_size: expected 1k to 390k");
}

/* responses: true on an openai upstream; refused on an anthropic one, with its line */
static void test_upstream_responses(void **state)
{
    char err[512];
    struct keel_config *c = parse("upstreams:\n  - { name: a, base_url: \"http://x\", responses: true }\n" MODELS, err,
                                  sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_int_equal(c->upstreams[0].responses, 1);
    keel_config_free(c);
    refused("upstreams:\n  - name: a\n    kind: anthropic\n    base_url: \"http://x\"\n    responses: true\n" MODELS,
            "t.yaml:5: upstreams[0].responses: only a kind openai upstream serves the Responses API");
    refused("upstreams:\n  - { name: a, base_url: \"http://x\", responses: yes }\n" MODELS,
            "t.yaml:2: upstreams[0].responses: expected true or false");
}

/* continuation: prefill, its body's members from YAML, and every refusal */
static void test_target_continuation(void **state)
{
    char err[512];
    struct keel_config *c = parse(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x }\n"
                                     "      - upstream: a\n        model: y\n        continuation: prefill\n"
                                     "        continuation_body: { continue_final_message: true, n: 2, f: 0.5, s: \"true\","
                                     " z: null, l: [1, two], o: { k: v } }\n",
                                  err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_int_equal(c->models[0].targets[0].continuation, 0);
    assert_null(c->models[0].targets[0].continuation_body);
    assert_int_equal(c->models[0].targets[1].continuation, 1);
    assert_string_equal(c->models[0].targets[1].continuation_body,
                        "{\"continue_final_message\":true,\"n\":2,\"f\":0.5,\"s\":\"true\",\"z\":null,"
                        "\"l\":[1,\"two\"],\"o\":{\"k\":\"v\"}}");
    keel_config_free(c);
    refused(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x, continuation: maybe }\n",
            "t.yaml:6: models[0].targets[0].continuation: expected prefill or none, got \"maybe\"");
    refused(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x, continuation: prefill, continuation_body: 3 }\n",
            "t.yaml:6: models[0].targets[0].continuation_body: expected a mapping of body members");
    refused(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x, continuation_body: { a: 1 } }\n",
            "t.yaml:6: models[0].targets[0]: continuation_body without continuation: prefill");
    refused(UP "models:\n  - name: m\n    api: embeddings\n    targets:\n      - { upstream: a, model: x, continuation: prefill }\n",
            "t.yaml:7: models[0].targets[0]: continuation: prefill on an embeddings model");
    refused(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x, breaker: { probe: sometimes } }\n",
            "t.yaml:6: models[0].targets[0].breaker.probe: expected background or request, got \"sometimes\"");
}

/* control: Lemonade's API by default, its keys, and each refusal */
static void test_upstream_control(void **state)
{
    char err[512];
    struct keel_config *c = parse("upstreams:\n  - name: lem\n    control: { url: \"http://127.0.0.1:13305/api/v1/\" }\n"
                                  "models:\n  - { name: m, targets: [ { upstream: lem, model: x } ] }\n",
                                  err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    const struct keel_control_conf *k = c->upstreams[0].control;
    assert_non_null(k);
    assert_null(c->upstreams[0].base_url);
    assert_string_equal(k->url, "http://127.0.0.1:13305/api/v1");
    assert_string_equal(k->load, "/load");
    assert_string_equal(k->unload, "/unload");
    assert_string_equal(k->health, "/health");
    assert_string_equal(k->body, "{\"model_name\": \"{model}\"}");
    assert_string_equal(k->url_at, "all_models_loaded[model_name={model}].backend_url");
    assert_string_equal(k->base_path, "");
    assert_int_equal(k->load_timeout_ms, 120000);
    assert_int_equal(k->ready_probe, 1);
    assert_true(keel_upstream_backed(&c->upstreams[0]));
    keel_config_free(c);
    refused("upstreams:\n  - { name: a, base_url: \"http://x\", control: { url: \"http://y\" } }\n" MODELS,
            "t.yaml:2: upstreams[0]: base_url with control:");
    refused("upstreams:\n  - { name: a, control: { load: /l } }\n" MODELS,
            "t.yaml:2: upstreams[0].control: missing url");
    refused("upstreams:\n  - { name: a, control: { url: \"http://y\", url_at: \"a[b\" } }\n" MODELS,
            "t.yaml:2: upstreams[0].control.url_at: expected a path");
    refused("upstreams:\n  - { name: a, control: { url: \"http://y\", load: load } }\n" MODELS,
            "t.yaml:2: upstreams[0].control.load: must be a path starting with /");
    refused("upstreams:\n  - name: a\n    control: { url: \"http://y\" }\n    managed: { command: [sh] }\n" MODELS,
            "t.yaml:2: upstreams[0]: control: and managed: exclude each other");
}

/* keys: names, hashes, model lists, limits, keys_file, admin_token, and each refusal */
static void test_client_keys(void **state)
{
    char err[512];
    static const char h1[] = "932d31694d33f648ca1c3b78eae2d46839f314a48c955ae18d02c3754b5c5d2d";
    struct keel_config *c = parse(UP MODELS "keys:\n  - { name: alice, sha256: 932D31694D33F648CA1C3B78EAE2D46839F314A48C955AE18D02C3754B5C5D2D, models: [m], rpm: 60, tpm: 100k }\n"
                                  "  - { name: bob, sha256: 0000000000000000000000000000000000000000000000000000000000000001 }\n"
                                  "admin_token: tok\n",
                                  err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_int_equal(c->nkeys, 2);
    assert_string_equal(c->keys[0].name, "alice");
    assert_int_equal(c->keys[0].sha256[0], 0x93);
    assert_int_equal(c->keys[0].sha256[31], 0x2d);
    assert_int_equal(c->keys[0].nmodels, 1);
    assert_string_equal(c->keys[0].models[0], "m");
    assert_int_equal(c->keys[0].rpm, 60);
    assert_int_equal(c->keys[0].tpm, 100000);
    assert_null(c->keys[1].models);
    assert_int_equal(c->keys[1].rpm, 0);
    assert_string_equal(c->admin_token, "tok");
    keel_config_free(c);
    (void)h1;
    refused(UP MODELS "keys:\n  - { name: a, sha256: abc }\n", "t.yaml:6: keys[0].sha256: expected the key's SHA-256 as 64 hex digits");
    refused(UP MODELS "keys:\n  - { sha256: 932d31694d33f648ca1c3b78eae2d46839f314a48c955ae18d02c3754b5c5d2d }\n",
            "t.yaml:6: keys[0]: missing name");
    refused(UP MODELS "keys:\n  - { name: a }\n", "t.yaml:6: keys[0]: missing sha256");
    refused(UP MODELS "keys:\n  - { name: a, sha256: 932d31694d33f648ca1c3b78eae2d46839f314a48c955ae18d02c3754b5c5d2d, models: [nope] }\n",
            "t.yaml:6: keys[0].models: unknown model \"nope\"");
    refused(UP MODELS "keys:\n  - { name: a, sha256: 932d31694d33f648ca1c3b78eae2d46839f314a48c955ae18d02c3754b5c5d2d }\n"
                      "  - { name: a, sha256: 0000000000000000000000000000000000000000000000000000000000000001 }\n",
            "t.yaml:7: keys[1]: duplicate key name \"a\"");
    refused(UP MODELS "keys:\n  - { name: a, sha256: 932d31694d33f648ca1c3b78eae2d46839f314a48c955ae18d02c3754b5c5d2d }\n"
                      "  - { name: b, sha256: 932d31694d33f648ca1c3b78eae2d46839f314a48c955ae18d02c3754b5c5d2d }\n",
            "t.yaml:7: keys[1]: the same key as \"a\"");
    refused(UP MODELS "keys:\n  - { name: a, sha256: 932d31694d33f648ca1c3b78eae2d46839f314a48c955ae18d02c3754b5c5d2d, rpm: x }\n",
            "t.yaml:6: keys[0].rpm: expected a non-negative integer");
    refused(UP MODELS "keys_file: /nonexistent/keel-keys.yaml\n", "/nonexistent/keel-keys.yaml: cannot open");
}

/* state: the Redis URL's parts, the prefix, and each refusal (the URL, a password in it, never echoed) */
static void test_shared_state(void **state)
{
    char err[512];
    struct keel_config *c = parse(UP MODELS "state: { redis: \"redis://:s3cret@cache.local:6380/2\", prefix: \"k1:\" }\n", err,
                                  sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_string_equal(c->state->host, "cache.local");
    assert_int_equal(c->state->port, 6380);
    assert_int_equal(c->state->db, 2);
    assert_string_equal(c->state->password, "s3cret");
    assert_string_equal(c->state->prefix, "k1:");
    keel_config_free(c);
    c = parse(UP MODELS "state: { redis: \"redis://127.0.0.1\" }\n", err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_int_equal(c->state->port, 6379);
    assert_int_equal(c->state->db, 0);
    assert_null(c->state->password);
    assert_string_equal(c->state->prefix, "keel:");
    keel_config_free(c);
    refused(UP MODELS "state: { redis: \"http://:pw@x\" }\n", "t.yaml:5: state.redis: expected redis://[:PASSWORD@]HOST[:PORT][/DB]");
    assert_null(strstr(errs.msg[0], "pw"));
    refused(UP MODELS "state: { redis: \"redis://x:99999\" }\n", "t.yaml:5: state.redis: expected redis://");
    refused(UP MODELS "state: { prefix: a }\n", "t.yaml:5: state: missing redis");
    refused(UP MODELS "state: { redis: \"redis://x\", db: 1 }\n", "t.yaml:5: state.db: unknown key (expected redis, prefix)");
}

/* price: input and output per million tokens, cached defaulting to input; each refusal */
static void test_target_price(void **state)
{
    char err[512];
    struct keel_config *c = parse(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x, price: { input: 3, output: 15 } }\n"
                                     "      - { upstream: a, model: y, price: { input: 0.5, output: 1.5, cached: 0.05 } }\n"
                                     "      - { upstream: a, model: z }\n",
                                  err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    const struct keel_target_conf *t = c->models[0].targets;
    assert_true(t[0].priced);
    assert_true(t[0].price_input == 3.0 && t[0].price_output == 15.0 && t[0].price_cached == 3.0);
    assert_true(t[1].price_cached == 0.05);
    assert_false(t[2].priced);
    keel_config_free(c);
    refused(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x, price: { input: 3 } }\n",
            "t.yaml:6: models[0].targets[0].price: needs both input and output");
    refused(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x, price: { input: -1, output: 2 } }\n",
            "t.yaml:6: models[0].targets[0].price.input: expected a price per million tokens");
    refused(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x, price: { input: 1, output: 2, per: k } }\n",
            "t.yaml:6: models[0].targets[0].price.per: unknown key (expected input, output, cached)");
}

static void test_upstream_headers(void **state)
{
    char err[512];
    struct keel_config *c = parse("upstreams:\n  - name: a\n    base_url: \"http://x\"\n    headers:\n"
                                  "      X-Title: my agent\n      x-org-key: \"Bearer ${TEST_KEY}\"\n" MODELS,
                                  err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    assert_int_equal(c->upstreams[0].nheaders, 2);
    assert_string_equal(c->upstreams[0].headers[0], "X-Title: my agent");
    assert_string_equal(c->upstreams[0].headers[1], "x-org-key: Bearer sk-test-123");
    keel_config_free(c);
    refused("upstreams:\n  - name: a\n    base_url: \"http://x\"\n    headers: { Authorization: x }\n" MODELS,
            "t.yaml:4: upstreams[0].headers.Authorization: keel sets this header itself");
    refused("upstreams:\n  - name: a\n    base_url: \"http://x\"\n    headers: { \"a b\": x }\n" MODELS,
            "t.yaml:4: upstreams[0].headers.a b: not a header name");
    refused("upstreams:\n  - name: a\n    base_url: \"http://x\"\n    headers: { x-a: \"1\\n2\" }\n" MODELS,
            "t.yaml:4: upstreams[0].headers.x-a: a header value cannot hold a line break");
    refused("upstreams:\n  - name: a\n    base_url: \"http://x\"\n    headers: { x-a: \"${NOPE}\" }\n" MODELS,
            "t.yaml:4: upstreams[0].headers.x-a: environment variable NOPE is not set");
    refused("upstreams:\n  - name: a\n    base_url: \"http://x\"\n    headers: [ x ]\n" MODELS,
            "t.yaml:4: upstreams[0].headers: expected a mapping");
}

static void test_wrong_type(void **state)
{
    refused("upstreams: a\n" MODELS, "t.yaml:1: upstreams: expected a list, got a scalar");
    refused(UP "models:\n  - { name: m, targets: { upstream: a } }\n", "t.yaml:4: models[0].targets: expected a list");
    refused("defaults:\n  timeouts: [1, 2]\n" UP MODELS, "t.yaml:2: defaults.timeouts: expected a mapping, got a list");
    refused("defaults: { breaker: { failures: many } }\n" UP MODELS,
            "t.yaml:1: defaults.breaker.failures: expected a non-negative integer");
}

static void test_bad_duration(void **state)
{
    refused("defaults:\n  timeouts: { stall: 30 }\n" UP MODELS, "t.yaml:2: defaults.timeouts.stall: bad duration \"30\"");
    refused(UP "models:\n  - name: m\n    targets:\n      - { upstream: a, model: x, timeouts: { total: 5 minutes } }\n",
            "t.yaml:6: models[0].targets[0].timeouts.total: bad duration");
    refused("defaults: { timeouts: { connect: 0s } }\n" UP MODELS, "t.yaml:1: defaults.timeouts.connect: must be greater than zero");
}

static void test_unknown_upstream(void **state)
{
    refused(UP "models:\n  - { name: m, targets: [ { upstream: b, model: x } ] }\n",
            "t.yaml:4: models[0].targets[0].upstream: unknown upstream \"b\"");
}

static void test_duplicate_names(void **state)
{
    refused("upstreams:\n  - { name: a, base_url: \"http://x\" }\n  - { name: a, base_url: \"http://y\" }\n" MODELS,
            "t.yaml:3: upstreams[1]: duplicate upstream name \"a\"");
    refused(UP "models:\n  - { name: m, targets: [ { upstream: a, model: x } ] }\n"
               "  - { name: m, targets: [ { upstream: a, model: y } ] }\n",
            "t.yaml:5: models[1]: duplicate model name \"m\"");
}

static void test_unset_variable(void **state)
{
    refused("upstreams:\n  - { name: a, base_url: \"http://x\", api_key: \"${NOT_SET_ANYWHERE}\" }\n" MODELS,
            "t.yaml:2: upstreams[0].api_key: environment variable NOT_SET_ANYWHERE is not set");
    refused("upstreams:\n  - { name: a, base_url: \"http://x\", api_key: \"${OOPS\" }\n" MODELS,
            "t.yaml:2: upstreams[0].api_key: malformed ${VAR} reference");
}

static void test_empty_or_missing_targets(void **state)
{
    refused(UP "models:\n  - { name: m, targets: [] }\n", "t.yaml:4: models[0].targets: empty");
    refused(UP "models:\n  - { name: m }\n", "t.yaml:4: models[0].targets: missing");
    refused(UP "models:\n  - { name: m, targets: [ { upstream: a } ] }\n", "t.yaml:4: models[0].targets[0]: missing model");
}

static void test_missing_sections(void **state)
{
    refused(MODELS, "t.yaml:1: upstreams: missing");
    refused(UP, "t.yaml:1: models: missing");
    refused("", "t.yaml:1: (top level): the file is empty");
    refused("- a\n- b\n", "t.yaml:1: (top level): expected a mapping");
    refused("upstreams:\n  - { kind: openai, base_url: \"http://x\" }\n" MODELS, "t.yaml:2: upstreams[0]: missing name");
}

static void test_bad_values(void **state)
{
    refused("listen: localhost\n" UP MODELS, "t.yaml:1: listen: expected HOST:PORT");
    refused("listen: 127.0.0.1:99999\n" UP MODELS, "t.yaml:1: listen: expected HOST:PORT");
    refused("upstreams:\n  - { name: a, kind: grpc, base_url: \"http://x\" }\n" MODELS, "t.yaml:2: upstreams[0].kind: unknown kind \"grpc\"");
    refused("upstreams:\n  - { name: a, base_url: \"ftp://x\" }\n" MODELS, "t.yaml:2: upstreams[0].base_url: must start with http");
    refused("upstreams:\n  - { name: a, base_url: \"http://x:{port}\", managed: { command: [no-such-binary-xyz] } }\n" MODELS,
            "t.yaml:2: upstreams[0].managed.command: \"no-such-binary-xyz\" is not an executable file");
    refused("upstreams:\n  - { name: a, base_url: \"http://x:{port}\", managed: { health: /h } }\n" MODELS,
            "t.yaml:2: upstreams[0].managed: missing command");
    refused("upstreams:\n  - { name: a, base_url: \"http://x:{port}\" }\n" MODELS,
            "t.yaml:2: upstreams[0]: base_url has {port} but no managed: block");
    refused("upstreams:\n  - { name: a, base_url: \"http://x:9\", managed: { command: [sh] } }\n" MODELS,
            "t.yaml:2: upstreams[0]: managed: base_url needs {port}");
    refused("upstreams:\n  - { name: a, base_url: \"http://x:{port}\", managed: { command: [sh], port: 70000 } }\n" MODELS,
            "t.yaml:2: upstreams[0].managed.port: expected a port");
    refused("upstreams:\n  - { name: a, base_url: \"http://x:{port}\", managed: { command: [sh], ready_probe: maybe } }\n" MODELS,
            "t.yaml:2: upstreams[0].managed.ready_probe: expected true or false");
    refused(UP "models:\n  - { name: m, targets: [ { upstream: a, model: x, context_window: lots } ] }\n",
            "t.yaml:4: models[0].targets[0].context_window: expected a token count");
    refused("max_body: 0\n" UP MODELS, "t.yaml:1: max_body: must be greater than zero");
    refused("listen: 127.0.0.1:5000\nadmin_listen: 127.0.0.1:5000\n" UP MODELS, "t.yaml:1: admin_listen: must differ");
}

static void test_managed_block(void **state)
{
    char err[512];
    struct keel_config *c = parse("upstreams:\n"
                                  "  - name: a\n"
                                  "    base_url: \"http://127.0.0.1:{port}/v1\"\n"
                                  "    managed:\n"
                                  "      command: [sh, -c, \"exec server --port {port}\"]\n"
                                  "      env: { KEY: \"${TEST_KEY}\", MODE: fast }\n"
                                  "      start_timeout: 5s\n"
                                  "      idle_unload: 10m\n"
                                  "      ready_probe: true\n" MODELS,
                                  err, sizeof(err));
    assert_non_null(c);
    const struct keel_managed_conf *m = c->upstreams[0].managed;
    assert_non_null(m);
    assert_int_equal(m->argc, 3);
    assert_true(m->argv[0][0] == '/'); /* resolved in PATH at load */
    assert_string_equal(m->argv[2], "exec server --port {port}");
    assert_null(m->argv[3]);
    assert_int_equal(m->nenv, 2);
    assert_string_equal(m->env[0], "KEY=sk-test-123");
    assert_string_equal(m->env[1], "MODE=fast");
    assert_string_equal(m->health, "/health");
    assert_int_equal(m->start_timeout_ms, 5000);
    assert_int_equal(m->idle_unload_ms, 600000);
    assert_true(m->ready_probe);
    assert_int_equal(m->port, 0);
    keel_config_free(c);
}

static void test_yaml_syntax_error(void **state)
{
    refused("upstreams:\n  - { name: a\n", "t.yaml:3: (yaml):");
}

static void test_secret_never_in_errors(void **state)
{
    refused_n("upstreams:\n  - { name: a, base_url: \"ftp://x\", api_key: sk-canary-999 }\n" MODELS, 1);
    assert_null(strstr(errs.msg[0], "sk-canary"));
    refused_n("upstreams:\n  - { name: a, base_url: \"http://x\", api_key: [sk-canary-999] }\n"
              "  - { name: b, base_url: \"http://${NOPE}\", api_key: \"\" }\n" MODELS,
              3);
    for (size_t i = 0; i < errs.n; i++)
        assert_null(strstr(errs.msg[i], "sk-canary"));
}

static void test_load_missing_file(void **state)
{
    char err[512];
    assert_null(keel_config_load("/nonexistent/keel.yaml", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/keel.yaml: cannot open"));
    assert_null(keel_config_load_all("/nonexistent/keel.yaml", &errs));
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.more, 0);
    assert_non_null(strstr(errs.msg[0], "/nonexistent/keel.yaml: cannot open"));
}

/* ------------------------------------------------------------------ every error */

/* independent mistakes in one file: each reported with its own line, in file order */
static void test_every_error_in_file_order(void **state)
{
    refused_n("listen: 127.0.0.1\n"                                         /* 1 */
              "max_body: 0\n"                                               /* 2 */
              "upstreams:\n"                                                /* 3 */
              "  - { name: a, base_url: \"ftp://x\" }\n"                  /* 4 */
              "models:\n"                                                   /* 5 */
              "  - { name: m, targets: [ { upstream: a, model: x } ] }\n",  /* 6 */
              3);
    error_is(0, "t.yaml:1: listen: expected HOST:PORT");
    error_is(1, "t.yaml:2: max_body: must be greater than zero");
    error_is(2, "t.yaml:4: upstreams[0].base_url: must start with http");
    assert_int_equal(errs.more, 0);

    /* defaults are read first, the names checked last: the list is still in file order */
    refused_n(UP                                                             /* 1, 2 */
              "models:\n"                                                   /* 3 */
              "  - { name: m, targets: [ { upstream: b, model: x } ] }\n"   /* 4 */
              "  - { name: m, targets: [ { upstream: a, model: y } ] }\n"   /* 5 */
              "defaults: { timeouts: { stall: soon } }\n"                   /* 6 */
              "colour: blue\n",                                             /* 7 */
              4);
    error_is(0, "t.yaml:4: models[0].targets[0].upstream: unknown upstream \"b\"");
    error_is(1, "t.yaml:5: models[1]: duplicate model name \"m\"");
    error_is(2, "t.yaml:6: defaults.timeouts.stall: bad duration \"soon\"");
    error_is(3, "t.yaml:7: colour: unknown key");

    /* inside one mapping too: a bad key does not hide the next one */
    refused_n("upstreams:\n"
              "  - name: a\n"
              "    kind: grpc\n"
              "    base_url: \"http://x\"\n"
              "    api_key: \"${NOT_SET_ANYWHERE}\"\n"
              "  - { name: a, base_url: \"http://y\" }\n"
              "models:\n"
              "  - name: m\n"
              "    targets:\n"
              "      - { upstream: a, model: x, timeouts: { connect: 0s, total: never }, retry: { tries: 2 } }\n"
              "      - { model: y }\n",
              7);
    error_is(0, "t.yaml:3: upstreams[0].kind: unknown kind \"grpc\"");
    error_is(1, "t.yaml:5: upstreams[0].api_key: environment variable NOT_SET_ANYWHERE is not set");
    error_is(2, "t.yaml:6: upstreams[1]: duplicate upstream name \"a\"");
    error_is(3, "t.yaml:10: models[0].targets[0].timeouts.connect: must be greater than zero");
    error_is(4, "t.yaml:10: models[0].targets[0].timeouts.total: bad duration \"never\"");
    error_is(5, "t.yaml:10: models[0].targets[0].retry.tries: unknown key");
    error_is(6, "t.yaml:11: models[0].targets[1]: missing upstream");

    /* every repeated key, and the rest of that mapping still read */
    refused_n("max_body: 1m\nmax_body: 2m\nmax_body: 3m\ndrain_timeout: later\n" UP MODELS, 3);
    error_is(0, "t.yaml:2: max_body: duplicate key (already given on line 1)");
    error_is(1, "t.yaml:3: max_body: duplicate key (already given on line 1)");
    error_is(2, "t.yaml:4: drain_timeout: bad duration");
}

/* a value refused is not checked again by what depends on it: one mistake, one error */
static void test_no_error_follows_from_another(void **state)
{
    /* an upstream whose name is refused may be the one a target names */
    refused(UP "  - { name: \"${NOT_SET_ANYWHERE}\", base_url: \"http://y\" }\n"
               "models:\n  - { name: m, targets: [ { upstream: b, model: x } ] }\n",
            "t.yaml:3: upstreams[1].name: environment variable");
    refused(MODELS, "t.yaml:1: upstreams: missing");
    /* a refused base_url is not also "missing", nor checked for {port} */
    refused("upstreams:\n  - { name: a, base_url: \"\" }\n" MODELS, "t.yaml:2: upstreams[0].base_url: must not be empty");
    /* a refused managed block is not also "no managed: block" */
    refused("upstreams:\n  - { name: a, base_url: \"http://x:{port}\", managed: [sh] }\n" MODELS,
            "t.yaml:2: upstreams[0].managed: expected a mapping");
    /* a refused command is not also "missing" */
    refused("upstreams:\n  - { name: a, base_url: \"http://x:{port}\", managed: { command: sh } }\n" MODELS,
            "t.yaml:2: upstreams[0].managed.command: expected a list");
    /* a refused listen is not compared with admin_listen */
    refused("listen: nope.invalid:4001\nadmin_listen: 127.0.0.1:4001\n" UP MODELS, "t.yaml:1: listen: cannot resolve");
}

/* past the cap, the first ones in the file are kept and the rest counted */
static void test_error_cap(void **state)
{
    char yaml[4096];
    size_t len = 0;
    /* 25 unknown keys, the first 20 lines after the models: all found after the models' lines */
    len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "%s%s", UP, MODELS);
    for (int i = 0; i < 25; i++)
        len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "bad%02d: 1\n", i);
    refused_n(yaml, 25);
    assert_int_equal(errs.n, KEEL_CONFIG_MAX_ERRORS);
    assert_int_equal(errs.more, 25 - KEEL_CONFIG_MAX_ERRORS);
    for (size_t i = 0; i < errs.n; i++) {
        char want[64];
        snprintf(want, sizeof(want), "t.yaml:%zu: bad%02zu: unknown key", i + 5, i);
        error_is(i, want);
    }
    /* found last but first in the file: it displaces the last one kept */
    len = 0;
    len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "%s",
                            "upstreams:\n  - { name: a, base_url: \"ftp://x\" }\n");
    for (int i = 0; i < 25; i++)
        len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "bad%02d: 1\n", i);
    len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "%s", MODELS);
    refused_n(yaml, 26);
    assert_int_equal(errs.n, KEEL_CONFIG_MAX_ERRORS);
    assert_int_equal(errs.more, 26 - KEEL_CONFIG_MAX_ERRORS);
    error_is(0, "t.yaml:2: upstreams[0].base_url: must start with http");
    error_is(1, "t.yaml:3: bad00: unknown key");
    error_is(KEEL_CONFIG_MAX_ERRORS - 1, "t.yaml:21: bad18: unknown key");
}

/* keel_config_parse, for one log line: the first error, and how many more */
static void test_one_line_form(void **state)
{
    char err[512];
    assert_null(parse("listen: 127.0.0.1\nmax_body: 0\n" UP MODELS, err, sizeof(err)));
    assert_string_equal(err, "t.yaml:1: listen: expected HOST:PORT, got \"127.0.0.1\" (and 1 more error)");
    assert_null(parse("max_body: 0\n" UP MODELS, err, sizeof(err)));
    assert_string_equal(err, "t.yaml:1: max_body: must be greater than zero");
}

/* ------------------------------------------------------------------ listen addresses */

/* check refuses what serve could not bind: a host name is resolved at load (no network needed:
 * localhost is the loopback without asking, and .invalid never resolves, RFC 6761) */
static void test_listen_host_names(void **state)
{
    char err[512];
    struct keel_config *c = parse("listen: localhost:0\nadmin_listen: localhost:4001\n" UP MODELS, err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->listen_host, "localhost");
    assert_string_equal(c->listen_addr, "127.0.0.1");
    assert_string_equal(c->admin_host, "localhost");
    assert_string_equal(c->admin_addr, c->listen_addr);
    assert_int_equal(c->listen_port, 0);
    assert_int_equal(c->admin_port, 4001);
    keel_config_free(c);

    /* IP literals stay as written, not resolved */
    c = parse("listen: 0.0.0.0:4000\nadmin_listen: \"[::1]:4001\"\n" UP MODELS, err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->listen_addr, "0.0.0.0");
    assert_string_equal(c->admin_host, "::1");
    assert_string_equal(c->admin_addr, "::1");
    keel_config_free(c);
    c = parse(UP MODELS, err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->listen_addr, "127.0.0.1");
    assert_string_equal(c->admin_addr, "127.0.0.1");
    keel_config_free(c);

    refused(UP MODELS "admin_listen: no-such-host.invalid:4001\n",
            "t.yaml:5: admin_listen: cannot resolve \"no-such-host.invalid\"");
    refused_n("listen: no-such-host.invalid:4000\nadmin_listen: also-not.invalid:4001\n" UP MODELS, 2);
    error_is(0, "t.yaml:1: listen: cannot resolve \"no-such-host.invalid\"");
    error_is(1, "t.yaml:2: admin_listen: cannot resolve \"also-not.invalid\"");

    /* the same address under two spellings is the same listener */
    c = parse("listen: localhost:5000\n" UP MODELS, err, sizeof(err));
    assert_non_null(c);
    int v6 = strchr(c->listen_addr, ':') != NULL;
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "listen: localhost:5000\nadmin_listen: \"%s%s%s:5000\"\n" UP MODELS, v6 ? "[" : "",
             c->listen_addr, v6 ? "]" : "");
    keel_config_free(c);
    refused(yaml, "t.yaml:1: admin_listen: must differ from listen");
}

/* ------------------------------------------------------------------ the api a model serves */

#define UP2 "upstreams:\n"                                                               \
            "  - { name: a, kind: openai, base_url: \"http://127.0.0.1:9/v1\" }\n"       \
            "  - { name: b, kind: anthropic, base_url: \"http://127.0.0.1:9/v1\" }\n"

static void test_api_default_chat(void **state)
{
    char err[512];
    struct keel_config *c = parse(UP MODELS, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->models[0].api, KEEL_API_CHAT);
    keel_config_free(c);
    /* said outright, on a chat model an anthropic target is fine */
    c = parse(UP2 "models:\n  - { name: m, api: chat, targets: [ { upstream: b, model: x } ] }\n", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->models[0].api, KEEL_API_CHAT);
    keel_config_free(c);
}

static void test_api_embeddings(void **state)
{
    char err[512];
    /* stream_upstream and max_tokens mean nothing to embeddings: read, not refused */
    struct keel_config *c = parse(UP2 "models:\n"
                                      "  - name: embed\n"
                                      "    api: embeddings\n"
                                      "    targets:\n"
                                      "      - { upstream: a, model: text-embedding-3-small, stream_upstream: false }\n"
                                      "      - { upstream: a, model: other, max_tokens: 8k }\n"
                                      "  - { name: chat, targets: [ { upstream: b, model: claude } ] }\n",
                                  err, sizeof(err));
    if (c == NULL)
        fail_msg("refused: %s", err);
    const struct keel_model_conf *m = keel_config_model(c, "embed");
    assert_non_null(m);
    assert_int_equal(m->api, KEEL_API_EMBEDDINGS);
    assert_int_equal(m->ntargets, 2);
    assert_string_equal(m->targets[0].model, "text-embedding-3-small");
    assert_int_equal(keel_config_model(c, "chat")->api, KEEL_API_CHAT);
    keel_config_free(c);
}

static void test_api_embeddings_refuses_anthropic(void **state)
{
    /* the line is the target's upstream, wherever api: comes in the model's mapping */
    refused(UP2 "models:\n"                                /* 4 */
                "  - name: embed\n"                        /* 5 */
                "    targets:\n"                           /* 6 */
                "      - { upstream: a, model: e1 }\n"     /* 7 */
                "      - model: e2\n"                      /* 8 */
                "        upstream: b\n"                    /* 9 */
                "    api: embeddings\n",                   /* 10 */
            "t.yaml:9: models[0].targets[1]: upstream \"b\" is kind anthropic, which has no embeddings API");
    /* each such target, each model, with the file's other errors, in file order */
    refused_n(UP2 "models:\n"
                  "  - { name: e, api: embeddings, targets: [ { upstream: b, model: x } ] }\n" /* 5 */
                  "  - { name: f, api: embeddings, targets: [ { upstream: b, model: y } ] }\n" /* 6 */
                  "colour: blue\n",                                                         /* 7 */
              3);
    error_is(0, "t.yaml:5: models[0].targets[0]: upstream \"b\" is kind anthropic");
    error_is(1, "t.yaml:6: models[1].targets[0]: upstream \"b\" is kind anthropic");
    error_is(2, "t.yaml:7: colour: unknown key");
}

static void test_api_unknown_value(void **state)
{
    refused(UP "models:\n  - { name: m, api: completions, targets: [ { upstream: a, model: x } ] }\n",
            "t.yaml:4: models[0].api: unknown api \"completions\" (supported: chat, embeddings)");
    refused(UP "models:\n  - { name: m, api: [embeddings], targets: [ { upstream: a, model: x } ] }\n",
            "t.yaml:4: models[0].api: expected a scalar, got a list");
    /* one mistake, one error: a refused api is not then checked against the targets' kinds */
    refused(UP2 "models:\n  - { name: m, api: embedding, targets: [ { upstream: b, model: x } ] }\n",
            "t.yaml:5: models[0].api: unknown api \"embedding\"");
    refused(UP "models:\n  - { name: m, api: embeddings, api: chat, targets: [ { upstream: a, model: x } ] }\n",
            "t.yaml:4: models[0].api: duplicate key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_merges_defaults_and_overrides),
        cmocka_unit_test(test_defaults_when_absent),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_upstream_headers),
        cmocka_unit_test(test_target_continuation),
        cmocka_unit_test(test_upstream_control),
        cmocka_unit_test(test_client_keys),
        cmocka_unit_test(test_shared_state),
        cmocka_unit_test(test_target_price),
        cmocka_unit_test(test_upstream_responses),
        cmocka_unit_test(test_max_header_size_bound),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_bad_duration),
        cmocka_unit_test(test_unknown_upstream),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_unset_variable),
        cmocka_unit_test(test_empty_or_missing_targets),
        cmocka_unit_test(test_missing_sections),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_managed_block),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_secret_never_in_errors),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_every_error_in_file_order),
        cmocka_unit_test(test_no_error_follows_from_another),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_one_line_form),
        cmocka_unit_test(test_listen_host_names),
        cmocka_unit_test(test_api_default_chat),
        cmocka_unit_test(test_api_embeddings),
        cmocka_unit_test(test_api_embeddings_refuses_anthropic),
        cmocka_unit_test(test_api_unknown_value),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
