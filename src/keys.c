/* keys.c - client keys; see keys.h. */
#include "keys.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"

/* the key a request presents: Authorization's bearer token, else x-api-key (the Anthropic
 * SDK's); *len 0 when none */
static const char *presented(struct keel_http *h, size_t *len)
{
    size_t n;
    const char *v = keel_http_header(h, "authorization", &n);
    if (v != NULL && n > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
        *len = n - 7;
        return v + 7;
    }
    v = keel_http_header(h, "x-api-key", &n);
    *len = v ? n : 0;
    return v;
}

const struct keel_key_conf *keel_keys_match(const struct keel_config *c, struct keel_http *h)
{
    size_t len;
    const char *key = presented(h, &len);
    if (key == NULL || len == 0)
        return NULL;
    unsigned char hash[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, len, hash);
    /* every configured hash is compared, each in constant time: how long it took says nothing of
     * which key came close */
    const struct keel_key_conf *found = NULL;
    for (size_t i = 0; i < c->nkeys; i++)
        if (CRYPTO_memcmp(hash, c->keys[i].sha256, sizeof(hash)) == 0)
            found = &c->keys[i];
    OPENSSL_cleanse(hash, sizeof(hash));
    return found;
}

int keel_key_allows(const struct keel_key_conf *k, const char *model)
{
    if (k->models == NULL)
        return 1;
    for (size_t i = 0; i < k->nmodels; i++)
        if (strcmp(k->models[i], model) == 0)
            return 1;
    return 0;
}

/* whether [p, p+n) is the token, in time that depends on n alone */
static int token_is(const char *token, const char *p, size_t n)
{
    size_t tl = strlen(token);
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, tl, a);
    SHA256((const unsigned char *)p, n, b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

int keel_admin_allowed(const struct keel_config *c, struct keel_http *h)
{
    if (c->admin_token == NULL)
        return 1;
    size_t n;
    const char *v = keel_http_header(h, "authorization", &n);
    if (v != NULL && n > 7 && strncasecmp(v, "Bearer ", 7) == 0 && token_is(c->admin_token, v + 7, n - 7))
        return 1;
    const char *q = keel_http_query(h, &n);
    for (const char *p = q; p < q + n;) {
        const char *amp = memchr(p, '&', (size_t)(q + n - p)), *end = amp ? amp : q + n;
        if (end - p > 6 && memcmp(p, "token=", 6) == 0 && token_is(c->admin_token, p + 6, (size_t)(end - p - 6)))
            return 1;
        p = end + 1;
    }
    return 0;
}

int keel_key_new(const char *name)
{
    unsigned char raw[24], hash[SHA256_DIGEST_LENGTH];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        fprintf(stderr, "keel key new: no randomness available\n");
        return 1;
    }
    char key[8 + 2 * sizeof(raw) + 1] = "sk-keel-";
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(key + 8 + 2 * i, 3, "%02x", raw[i]);
    SHA256((const unsigned char *)key, strlen(key), hash);
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    for (size_t i = 0; i < sizeof(hash); i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    char quoted[512];
    if (keel_json_quote(name, quoted, sizeof(quoted)) >= sizeof(quoted)) { /* a YAML double-quoted scalar too */
        fprintf(stderr, "keel key new: the name is too long\n");
        return 1;
    }
    printf("key: %s\n"
           "(give it to the client; keel keeps only its hash, so it cannot be shown again)\n\n"
           "add to keys: in the config (then kill -HUP keel):\n"
           "  - { name: %s, sha256: %s }\n",
           key, quoted, hex);
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}
