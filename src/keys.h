/* keys.h - client keys (DESIGN.md "Client keys"): which configured key a request presents, and
 * what it may do. Only hashes are configured; a presented key is hashed and compared in constant
 * time against every one, and never kept, logged or passed on. */
#ifndef KEEL_KEYS_H
#define KEEL_KEYS_H

#include <stddef.h>

#include "config.h"
#include "io/server.h"

/* the key a request presents (Authorization: Bearer KEY, else x-api-key: KEY) among c's, NULL
 * when it presents none or one that is not configured */
const struct keel_key_conf *keel_keys_match(const struct keel_config *c, struct keel_http *h);

/* whether key k may use alias `model` */
int keel_key_allows(const struct keel_key_conf *k, const char *model);

/* Whether an admin request may go on: no admin_token configured, or the request carries it as
 * Authorization: Bearer TOKEN or ?token=TOKEN (the status page passes its own on). Constant
 * time. */
int keel_admin_allowed(const struct keel_config *c, struct keel_http *h);

/* `keel key new NAME`: prints a fresh key and the config line with its hash; 0, or 1 */
int keel_key_new(const char *name);

#endif
