/* jpath.h - where in a JSON answer one string is (a control plane's data-plane URL in its
 * health answer): a dotted path of member names, each optionally followed by [KEY=VALUE], which
 * takes the first element of that array whose KEY member is the string VALUE; "{model}" in a
 * VALUE stands for the caller's model. "all_models_loaded[model_name={model}].backend_url" reads
 * {"all_models_loaded":[{"model_name":"m","backend_url":"http://..."}]}. Pure. */
#ifndef KEEL_JPATH_H
#define KEEL_JPATH_H

#include <stddef.h>

#include "core/json.h"

/* 0 when path is well formed (non-empty names of [A-Za-z0-9_-], brackets closed, one '=' each),
 * else -1 */
int keel_jpath_check(const char *path);

/* The string at path in root (a value keel_json_parse accepted), decoded into out[0..cap)
 * NUL-terminated: its length; -1 when the path does not lead to a string, the string holds a NUL
 * or does not fit. */
long keel_jpath_string(struct keel_json root, const char *path, const char *model, char *out, size_t cap);

#endif
