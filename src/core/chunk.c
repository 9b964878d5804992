/* chunk.c - chunk.h's API over the OpenAI decoder (core/openai.c, core/event.h), which judges
 * chunks, answers and error bodies: a decoder without a callback, so nothing but the verdict. */
#include "core/chunk.h"

#include "core/event.h"

void keel_chunk_inspect(const char *event, const char *data, size_t len, struct keel_chunk_info *out)
{
    struct keel_decoder d;
    keel_decoder_init(&d, &keel_openai_decoder, NULL, NULL);
    keel_openai_decoder.frame(&d, event, data, len, out);
}

enum keel_answer_kind keel_answer_inspect(const char *body, size_t len, char *code, size_t codelen,
                                          struct keel_usage *usage)
{
    struct keel_decoder d;
    keel_decoder_init(&d, &keel_openai_decoder, NULL, NULL);
    return keel_openai_decoder.body(&d, body, len, code, codelen, usage);
}

void keel_error_code(const char *body, size_t len, char *code, size_t codelen)
{
    keel_openai_decoder.error_code(body, len, code, codelen);
}
