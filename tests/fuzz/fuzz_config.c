/* fuzz_config.c - libFuzzer driver for the YAML config loader: any bytes give a config or a
 * FILE:LINE error, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *no_env(const char *name)
{
    return strcmp(name, "K") == 0 ? "v" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct keel_config *c = keel_config_parse("f.yaml", (const char *)data, size, no_env, err, sizeof(err));
    if (c == NULL && strncmp(err, "f.yaml", 6) != 0)
        abort(); /* every error names the file */
    keel_config_free(c);
    return 0;
}
