/* translate.h - an OpenAI chat completions request body as an Anthropic Messages request body,
 * for a target whose upstream is `kind: anthropic`. Pure: parses and builds with jansson (the
 * translated path re-serialises anyway; the pass-through path splices, see reqbody.h). Sending
 * it and translating the answer back are left to others. */
#ifndef KEEL_TRANSLATE_H
#define KEEL_TRANSLATE_H

#include <stddef.h>
#include <stdint.h>

struct keel_translate_opts {
    const char *model;           /* the target's model name; never NULL */
    int stream;                  /* nonzero: "stream": true */
    uint64_t default_max_tokens; /* > 0; when the request has neither max_tokens nor
                                  * max_completion_tokens */
};

/* reasoning_effort's thinking budgets (budget_tokens); max_tokens is raised to budget +
 * KEEL_TRANSLATE_THINKING_MARGIN when it is not above the budget */
#define KEEL_TRANSLATE_BUDGET_LOW 1024
#define KEEL_TRANSLATE_BUDGET_MEDIUM 4096
#define KEEL_TRANSLATE_BUDGET_HIGH 16384
#define KEEL_TRANSLATE_BUDGET_XHIGH 32768
#define KEEL_TRANSLATE_THINKING_MARGIN 1024

/* What becomes what (OpenAI -> Anthropic):
 *  - system and developer messages, anywhere, string or text parts -> `system`, one string, the
 *    texts joined with "\n\n";
 *  - user: a string or text parts -> text blocks; image_url data:image/{jpeg,png,gif,webp};base64,
 *    -> image with a base64 source (image/jpg read as image/jpeg), http(s) -> image with a url
 *    source; input_audio and file parts are refused;
 *  - assistant: content and refusal -> text blocks, tool_calls -> tool_use blocks (id, name, the
 *    arguments string parsed as the input object; absent or blank arguments are {});
 *  - tool: -> a tool_result block (tool_use_id, the content as a string or text blocks) in a user
 *    turn;
 *  - blank text (empty or whitespace only, which Anthropic refuses) is left out, and a message
 *    left with nothing is left out; consecutive turns of one role become one turn (Anthropic
 *    alternates), so tool results and the user message after them are one user turn. A
 *    conversation may open with the assistant: nothing is prepended;
 *  - max_completion_tokens, else max_tokens, else o->default_max_tokens -> max_tokens;
 *    stop -> stop_sequences; temperature clamped to [0, 1]; top_p, dropped when temperature is
 *    also set (newer models take one of them);
 *  - reasoning_effort minimal/low, medium, high, xhigh -> thinking with the budgets below,
 *    max_tokens raised above the budget, temperature dropped, top_p kept only from 0.95; none ->
 *    no thinking; with tool_choice "required" or a named function it is refused;
 *  - tools (function only) -> name, description, input_schema (parameters or {"type":"object"});
 *    tool_choice auto/required/none/function -> auto/any/none/tool; parallel_tool_calls false ->
 *    disable_parallel_tool_use (not with none); both dropped without tools;
 *  - metadata.user_id, else user, else safety_identifier -> metadata.user_id;
 *  - everything else is dropped (n when 1; n > 1, functions and function_call are refused);
 *    per-message extras (name, reasoning_content, audio...) as "messages[].KEY". Inside content
 *    parts, extras (image_url.detail) go unlisted.
 * Strings keep their decoded value (jansson re-escapes them); a real is written with 17
 * significant digits (0.7 -> 0.69999999999999996, the same double). */

/* The Anthropic Messages body for the OpenAI chat body [body, body+len): compact JSON, keys
 * model, max_tokens, system, messages, stop_sequences, temperature, top_p, thinking, tools,
 * tool_choice, metadata, stream in that order (absent ones left out). malloc'd and
 * NUL-terminated, the caller frees it; its length in *out_len.
 *
 * NULL when the request cannot be translated, with a client-facing message in err[0..errlen)
 * (e.g. "messages[2].content[0]: image_url must be a data: URL or an http(s) URL"): the caller
 * answers 400 invalid_request, it is never an upstream failure. NULL with err "" when out of
 * memory (keel's own failure, not the client's).
 *
 * dropped[0..droppedlen) (may be NULL/0) gets the OpenAI fields that were not sent,
 * comma-separated, each once (e.g. "seed,logprobs,messages[].name"); whole names only, those
 * that do not fit are left out. Filled on success and on failure alike (up to the failure). */
char *keel_translate_chat_to_messages(const char *body, size_t len, const struct keel_translate_opts *o,
                                      size_t *out_len, char *err, size_t errlen, char *dropped,
                                      size_t droppedlen);

#endif
