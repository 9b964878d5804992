/* translate.h - an OpenAI chat completions request body as an Anthropic Messages request body,
 * for a target whose upstream is `kind: anthropic` (translate.c), and the other way round, for an
 * OpenAI target serving an Anthropic client (translate_messages.c); an OpenAI Responses API body
 * as a chat body, for any target of a /v1/responses client (translate_responses.c; chained with
 * translate.c for an Anthropic one). Pure: parses and builds with
 * jansson (the translated path re-serialises anyway; the pass-through path splices, see
 * reqbody.h). Sending it and translating the answer back are left to others. */
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

/* ---- the other direction: an Anthropic Messages request body as an OpenAI chat body --------- */

struct keel_translate_chat_opts {
    const char *model; /* the target's model name; never NULL */
    int stream;        /* nonzero: "stream": true and "stream_options": {"include_usage": true} */
};

/* thinking.budget_tokens up to these becomes reasoning_effort "low", then "medium"; above, "high" */
#define KEEL_TRANSLATE_EFFORT_LOW_MAX 1024
#define KEEL_TRANSLATE_EFFORT_MEDIUM_MAX 8192

/* What becomes what (Anthropic -> OpenAI):
 *  - system, a string or text blocks -> a first system message, one string, the non-empty texts
 *    joined with "\n\n" (none: no system message); a system block that is not text is refused;
 *  - user: a string -> a string content, as is; blocks -> one user message whose content is
 *    always an array of parts: text -> text parts, image with a base64 source -> an image_url
 *    part with a data:MEDIA;base64,DATA URL, with a url source -> that URL (a file source is
 *    refused); each tool_result -> a tool message (tool_call_id, content: its string, or its text
 *    blocks' non-empty texts joined with "\n\n", "" when it has none; an image or any other block
 *    in it is refused), the turn's tool messages first in their order, then the user message
 *    when blocks are left (none left: no user message);
 *  - assistant: a string -> a string content, as is; blocks: text -> their texts concatenated as
 *    the string content; tool_use -> tool_calls (id, name, arguments: the input object as
 *    compact JSON text) in order; content is null when the texts are empty and there are tool
 *    calls, "" when there is neither; thinking and redacted_thinking blocks are dropped;
 *  - document, search_result, server_tool_use, the server *_tool_result blocks and any other
 *    block type are refused; cache_control, citations and other extras inside blocks go
 *    unlisted. Messages are not merged (OpenAI takes consecutive messages of one role); roles
 *    other than user and assistant are refused, and so is a request left with no message;
 *  - max_tokens -> max_completion_tokens (absent: left out); stop_sequences -> stop (an empty
 *    array is left out); temperature, top_p as they are; top_k dropped;
 *  - thinking enabled -> reasoning_effort by budget_tokens (the limits above), adaptive ->
 *    "medium", disabled -> nothing; any other thinking is dropped;
 *  - tools (type absent or "custom") -> function tools (name, description, parameters: the
 *    input_schema); Anthropic's own tool types (web_search_..., bash_..., text_editor_...) are
 *    refused; an empty tools array sends no tools; tool_choice auto/any/none/tool ->
 *    "auto"/"required"/"none"/a named function, disable_parallel_tool_use true ->
 *    parallel_tool_calls false; both dropped without tools;
 *  - metadata.user_id -> user; the request's stream is replaced by o->stream;
 *  - everything else is dropped: top-level keys by name (service_tier, container, mcp_servers,
 *    unknown...), the other metadata keys as "metadata.KEY", per-message extras as
 *    "messages[].KEY", per-tool extras as "tools[].KEY", dropped blocks by their type
 *    ("messages[].content[].thinking", "messages[].content[].redacted_thinking") and a
 *    tool_result's is_error when true ("messages[].content[].is_error": OpenAI has no flag).
 * Strings keep their decoded value (jansson re-escapes them); a real is written with 17
 * significant digits (0.7 -> 0.69999999999999996, the same double), in tool arguments too. */

/* The OpenAI chat body for the Anthropic Messages body [body, body+len): compact JSON, keys
 * model, messages, max_completion_tokens, stop, temperature, top_p, reasoning_effort, tools,
 * tool_choice, parallel_tool_calls, user, stream, stream_options in that order (absent ones left
 * out). malloc'd and NUL-terminated, the caller frees it; its length in *out_len (0 on failure).
 *
 * NULL when the request cannot be translated, with a client-facing message in err[0..errlen)
 * (e.g. "messages[1].content[0]: document blocks cannot be sent to an OpenAI target"): the
 * client's request is at fault, never the upstream. NULL with err "" when out of memory (keel's
 * own failure, not the client's).
 *
 * dropped[0..droppedlen) (may be NULL/0) gets the Anthropic fields that were not sent, as for
 * keel_translate_chat_to_messages (e.g. "top_k,messages[].content[].thinking"). */
char *keel_translate_messages_to_chat(const char *body, size_t len, const struct keel_translate_chat_opts *o,
                                      size_t *out_len, char *err, size_t errlen, char *dropped,
                                      size_t droppedlen);

/* ---- a Responses API request body as an OpenAI chat body (translate_responses.c) ------------ */

struct keel_translate_responses_opts {
    const char *model; /* the target's model name; never NULL */
    int stream;        /* nonzero: "stream": true and "stream_options": {"include_usage": true} */
};

/* What becomes what (Responses -> chat):
 *  - instructions -> a first system message (an empty one is left out); input as a string -> one
 *    user message;
 *  - input items, in order: messages (type "message" or no type, with a role and a content) ->
 *    chat messages of that role, "developer" sent as "system" (older OpenAI-compatible servers
 *    refuse "developer"). A string content is sent as it is. Parts: user input_text -> text
 *    parts, input_image with an image_url (a URL or a data: URL, sent as it is) -> image_url
 *    parts (detail kept), an empty array sends no message; system and developer input_text ->
 *    one string, the texts concatenated; assistant output_text and input_text -> one string
 *    content, the texts concatenated, refusal -> the message's refusal. input_image with only a
 *    file_id, input_file, input_audio, images outside user messages and any other part are
 *    refused;
 *  - function_call items -> tool_calls (id: call_id, name, arguments as they are) of an assistant
 *    message: consecutive calls, and the assistant message right before them, become one message
 *    (chat wants a turn's parallel calls in one message before their results); content is null
 *    when it has no text; reasoning items between them do not separate them;
 *  - function_call_output -> a tool message (tool_call_id: call_id, content: the output string,
 *    or its input_text parts' texts concatenated; an image or file in it is refused);
 *  - reasoning items are dropped ("input[].reasoning"); item_reference, and an item with only an
 *    id, is refused (it names server-side state); every other item type (web_search_call,
 *    computer_call, custom_tool_call, mcp_call...) is refused by its type;
 *  - tools: function tools (flat: name, description, parameters, strict) -> chat function tools;
 *    any other type (web_search, file_search, mcp, custom...) is refused; an empty array sends no
 *    tools; tool_choice "auto"/"none"/"required" as they are, {"type":"function","name":N} -> a
 *    named function, any other form refused; tool_choice and parallel_tool_calls are dropped
 *    without tools;
 *  - text.format json_schema -> response_format json_schema (name, schema, strict, description),
 *    json_object -> json_object, text -> nothing; text.verbosity -> verbosity;
 *  - max_output_tokens -> max_completion_tokens; reasoning.effort -> reasoning_effort as sent,
 *    reasoning.summary dropped; top_logprobs -> logprobs true and top_logprobs; temperature,
 *    top_p, user, safety_identifier, prompt_cache_key, prompt_cache_retention and service_tier as
 *    they are;
 *  - previous_response_id, conversation, prompt, store true and background true are refused:
 *    keel keeps no conversation state (store and background false are dropped);
 *  - the request's stream and stream_options are replaced by o->stream; everything else is
 *    dropped and listed: top-level keys by name (metadata, which chat takes only with store,
 *    include, truncation, max_tool_calls...), per-item extras as "input[].KEY" (id and status go
 *    unlisted: they only name stored items), per-tool extras as "tools[].KEY", "text.KEY",
 *    "text.format.KEY", "reasoning.KEY". Inside content parts, extras (annotations, logprobs...) go unlisted.
 * Strings keep their decoded value (jansson re-escapes them); a real is written with 17
 * significant digits (0.7 -> 0.69999999999999996, the same double). */

/* The OpenAI chat body for the Responses body [body, body+len): compact JSON, keys model,
 * messages, max_completion_tokens, temperature, top_p, reasoning_effort, verbosity,
 * response_format, tools, tool_choice, parallel_tool_calls, logprobs, top_logprobs, user,
 * safety_identifier, prompt_cache_key, prompt_cache_retention, service_tier, stream,
 * stream_options in that order (absent ones left out). malloc'd and NUL-terminated, the caller
 * frees it; its length in *out_len (0 on failure).
 *
 * NULL when the request cannot be translated, with a client-facing message in err[0..errlen)
 * naming the field (e.g. "input[2].content[0]: input_file parts cannot be sent to a chat
 * completions target", "previous_response_id needs server-side state: ..."): the caller answers
 * 400 invalid_request. NULL with err "" when out of memory (keel's own failure, not the
 * client's).
 *
 * dropped[0..droppedlen) (may be NULL/0) gets the Responses fields that were not sent, as for
 * keel_translate_chat_to_messages (e.g. "include,store,input[].reasoning"). */
char *keel_translate_responses_to_chat(const char *body, size_t len, const struct keel_translate_responses_opts *o,
                                       size_t *out_len, char *err, size_t errlen, char *dropped,
                                       size_t droppedlen);

#endif
