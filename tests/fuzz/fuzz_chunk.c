/* fuzz_chunk.c - libFuzzer driver for answer inspection: stream chunks, non-stream answers and
 * provider error bodies, on any bytes. */
#include <stdint.h>

#include "core/chunk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct keel_chunk_info info;
    char code[64];
    struct keel_usage usage;
    keel_chunk_inspect(size && data[0] == 'e' ? "error" : "message", (const char *)data, size, &info);
    keel_answer_inspect((const char *)data, size, code, sizeof(code), &usage);
    keel_error_code((const char *)data, size, code, sizeof(code));
    return 0;
}
