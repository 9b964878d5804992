/* assemble.h - one answer gathered from its events (core/event.h), whatever protocol they were
 * decoded from, and written out whole in a client protocol's JSON: what a client that did not
 * ask for a stream gets when the upstream streamed (DESIGN.md "Non-stream clients"). Choices by
 * index, each with its text, reasoning, refusal, tool calls (fragments joined by index),
 * logprobs and finish reason; the answer's id, model, created, system fingerprint and usage.
 * Bounded: an event that would need more than `max` bytes allocated in all is refused with
 * -ENOBUFS. Also the stream a stream client gets from events of another protocol, re-encoded
 * event by event (struct keel_stream_enc). The OpenAI chat writers live in assemble.c, the
 * Anthropic Messages ones in anthropic_enc.c, the OpenAI Responses ones in responses_enc.c
 * (reading the assembly through the accessors below). Pure. */
#ifndef KEEL_ASSEMBLE_H
#define KEEL_ASSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/event.h"

struct keel_asm_choice;

struct keel_asm {
    const char *kind;                /* the decoder's kind the events come from (static storage) */
    struct keel_buf meta;            /* the META spans copied: id, model, created, fingerprint, tier */
    size_t meta_at[5][2];            /* each one's offset and length in meta (length 0: absent) */
    struct keel_buf usage;           /* kind "openai": the last usage object as sent ("" when none) */
    struct keel_usage counts;        /* the last usage's counts (present 0 until one came) */
    struct keel_asm_choice *choices; /* [nchoices], by index */
    size_t nchoices;
    size_t held; /* bytes allocated: buffers (their growth slack too) and choice/tool-call slots; the
                  * figure for keel's max_memory, never past max */
    size_t max;
    long long created_at; /* the caller's clock (Unix seconds), for a protocol that dates its answer
                           * when the upstream sent no created (the Responses API's created_at):
                           * core reads no clock. 0 until set after keel_asm_init (release clears it) */
};

/* kind: the kind of the decoder whose events it gets (keel_decoder_ops.kind), static storage */
void keel_asm_init(struct keel_asm *a, size_t max, const char *kind);
void keel_asm_release(struct keel_asm *a);

/* a keel_ev_cb (ctx = the assembler): 0, -ENOBUFS past max or for a choice or tool call index of
 * 128 or more, -ENOMEM. ERROR events are ignored: acting on them is the caller's. */
int keel_asm_event(void *a, const struct keel_ev *ev);

/* true once any choice holds text, reasoning, a refusal or a tool call */
int keel_asm_has_content(const struct keel_asm *a);

/* true when there is a choice and every choice has its finish reason: the answer is whole */
int keel_asm_finished(const struct keel_asm *a);

/* Appends the OpenAI chat.completion for everything assembled to out: 0, or -ENOBUFS, -ENOMEM
 * (out then as it was). No whitespace; keys in the order OpenAI writes them: id, object, created,
 * model, choices (index, message (role, content, reasoning_content or reasoning, refusal,
 * tool_calls), logprobs, finish_reason), usage, service_tier, system_fingerprint. Fields the
 * stream never carried are left out (id, created, model, usage, service_tier,
 * system_fingerprint: each the first non-null value sent; usage the last object, as sent when
 * the kind is "openai", else {"prompt_tokens","completion_tokens","total_tokens"} from its
 * counts), except:
 * message.content and message.refusal, null; logprobs, null (else {"content","refusal"}, each
 * the arrays sent joined, or null when only null came); finish_reason, null; role,
 * "assistant". Every choice index from 0 to the highest seen is written, one never seen as an
 * empty message. Reasoning goes under the key its first fragment came in. A tool call is written
 * per index seen, in index order: its id left out when none came, type "function" and name ""
 * when none came, arguments joined (raw ones, core/event.h's args_raw, escaped into the
 * string). Role, finish reason and a tool call's id, type and name are the first non-empty value
 * sent (some servers repeat them in every fragment); a tool call's type only from kind "openai",
 * else "function". */
int keel_asm_openai_chat(const struct keel_asm *a, struct keel_buf *out);

/* ---- reading an assembly, for the answer writers of other files ----
 * What they return points into the assembler's buffers: stale at its next event or release. */

enum keel_asm_text { KEEL_ASM_CONTENT, KEEL_ASM_REASONING, KEEL_ASM_REFUSAL };

/* META's first id and model that were not null (a string unless the server erred); absent when
 * none came */
struct keel_json keel_asm_id(const struct keel_asm *a);
struct keel_json keel_asm_model(const struct keel_asm *a);

/* META's first created that was not null (an integer unless the server erred), absent when none
 * came: meta_at's third span (meta's order: id, model, created, fingerprint, tier) */
static inline struct keel_json keel_asm_created(const struct keel_asm *a)
{
    if (a->meta_at[2][1] == 0)
        return (struct keel_json){NULL, 0};
    return (struct keel_json){a->meta.base + a->meta_at[2][0], a->meta_at[2][1]};
}

/* Choice i's text of kind k: its literals' inner bytes joined, escapes as sent (what goes between
 * a literal's quotes), *len long; NULL with *len 0 when no event of that kind came or there is no
 * choice i ("" when only empty ones came). */
const char *keel_asm_text(const struct keel_asm *a, size_t i, enum keel_asm_text k, size_t *len);

/* choice i's finish reason, a string literal: the first non-empty one sent; absent when none came
 * or there is no choice i */
struct keel_json keel_asm_finish(const struct keel_asm *a, size_t i);

/* choice i's tool-call slots: one past the highest tool-call index seen (0: none, or no choice i) */
size_t keel_asm_ntools(const struct keel_asm *a, size_t i);

/* a tool call as assembled */
struct keel_asm_tool {
    struct keel_json id, name; /* string literals: the first non-empty ones sent; absent when none came */
    const char *args;          /* its arguments fragments' inner bytes joined, raw ones escaped ("" when
                                * none came): a literal's inside */
    size_t args_len;
};

/* tool call k of choice i (k < keel_asm_ntools): 0 with *t, or -1 when no fragment of index k came
 * (a gap below a higher index) */
int keel_asm_tool_at(const struct keel_asm *a, size_t i, size_t k, struct keel_asm_tool *t);

/* Appends the Anthropic Message for choice 0 of everything assembled to out (other choices are
 * left out: the protocol has one): {"id","type":"message","role":"assistant","model","content",
 * "stop_reason","stop_sequence":null,"usage":{"input_tokens","output_tokens"}}, no whitespace.
 * id and model as META first sent them ("" when none came or not a string). content's blocks:
 * {"type":"thinking","thinking","signature":""} when reasoning came, {"type":"text","text"} for
 * the content, then for a refusal's text (each only when not empty), then {"type":"tool_use",
 * "id","name","input"} per tool call in index order: id "toolu_keel_<index>" when none came
 * (core reads no clock nor randomness), name "" when none came, input the joined arguments' JSON
 * text with the whitespace between its tokens dropped ({} when blank). stop_reason from the
 * finish reason: stop "end_turn", length "max_tokens", tool_calls and function_call "tool_use",
 * content_filter "refusal"; none or another "end_turn". usage: prompt_tokens and
 * completion_tokens of the last USAGE (0 when none came). Returns 0; -EPROTO when a tool call's
 * arguments are not one JSON object (nothing to put in "input" without losing or inventing
 * data: the caller treats the answer as malformed); -ENOBUFS (out's cap), -ENOMEM. out is as it
 * was on failure. */
int keel_asm_anthropic_message(const struct keel_asm *a, struct keel_buf *out);

/* Appends the OpenAI Responses API Response for choice 0 of everything assembled to out (other
 * choices are left out: the protocol has one), no whitespace (responses_enc.c):
 * {"id","object":"response","created_at","status","error":null,"incomplete_details",
 * "instructions":null,"metadata":{},"model","output","parallel_tool_calls":true,
 * "temperature":null,"tool_choice":"auto","tools":[],"top_p":null,"usage"}: the keys the openai
 * SDK's Response type requires (keel knows none of the request's: they say null or the default).
 * id "resp_" and META's id kept to [A-Za-z0-9_-] (64 of them at most), "resp_keel" when none
 * came (or none is left); created_at META's created when an integer came, else a->created_at;
 * model META's ("" when none came or not a string). output: a reasoning item
 * {"type":"reasoning","id","summary":[{"type":"summary_text","text"}]} when reasoning came, a
 * message item {"type":"message","id","status","role":"assistant","content"} when text or a
 * refusal came (its parts {"type":"output_text","text","annotations":[]} and
 * {"type":"refusal","refusal"}, each only when not empty), then {"type":"function_call","id",
 * "call_id","name","arguments","status"} per tool call in index order (call_id the one sent,
 * else "call_<index>_<tail>"; name "" when none came; arguments joined, raw ones escaped into
 * the string). Item ids: "rs_", "msg_" or "fc_", the output index, "_", and the response id's
 * tail (what follows "resp_"): deterministic, core reads no clock nor randomness. status
 * "completed", or "incomplete" with incomplete_details {"reason":"max_output_tokens"} when the
 * finish reason was length, {"reason":"content_filter"} when content_filter (else null); the
 * last item's status says the same (the one cut), the others "completed". usage:
 * {"input_tokens","input_tokens_details":{"cached_tokens":0},"output_tokens",
 * "output_tokens_details":{"reasoning_tokens":0},"total_tokens"} from the last USAGE's counts
 * (each 0 when none came or negative; total their sum). Returns 0, -ENOBUFS (out's cap),
 * -ENOMEM; out is as it was on failure. */
int keel_asm_responses(const struct keel_asm *a, struct keel_buf *out);

/* ---- a stream for a stream client, from events of another kind ---- */

/* choices, and tool calls per choice, a stream encoder follows: an index at or past this is
 * refused with -ENOBUFS (the assembler's limit too) */
#define KEEL_STREAM_MAX_INDEX 128

/* An Anthropic stream client's message so far (anthropic_enc.c): its content blocks are numbered
 * in the order they started, one open at a time, and a closed one cannot take more. */
struct keel_stream_anthropic {
    int started;             /* message_start went out */
    int open;                /* the open block's kind (anthropic_enc.c's enum block; 0: none open) */
    uint32_t nblocks;        /* blocks started: the open one is nblocks - 1 */
    uint32_t tool;           /* the open block's tool-call index, when it is a tool_use block */
    unsigned char tool_started[KEEL_STREAM_MAX_INDEX / 8]; /* bit t: tool call t's block started */
    const char *stop_reason; /* choice 0's first non-empty finish reason, mapped: a JSON string
                              * literal in static storage; NULL until one came */
};

/* what a stream encoder that keeps what it said (the Responses one) may hold unless the caller
 * sets less (struct keel_stream_enc's max) */
#define KEEL_STREAM_MAX_HELD (64u << 20)

/* one output item of a Responses stream (responses_enc.c) */
struct keel_stream_item;

/* What a Responses stream client was told (responses_enc.c): its output items are numbered in the
 * order they started, one open at a time, and a closed one cannot take more. Copied, moved and put
 * back by each call only when all it wrote went out. */
struct keel_stream_told {
    size_t nitems; /* items started: the open one is nitems - 1 */
    uint64_t seq;  /* the next frame's sequence_number (from 0; the caller's own error frame takes
                    * it too) */
    int started;   /* response.created and response.in_progress went out */
    int open;      /* the last item is open */
    unsigned head; /* which of META's id, model and created (bits 0, 1, 2) response.created said,
                    * from the first event: the Response says the same to the end */
    unsigned char tool_started[KEEL_STREAM_MAX_INDEX / 8]; /* bit t: tool call t's item started */
};

/* A Responses stream client's answer so far: its .done events and its final Response repeat
 * what went out whole, so it is kept (bounded by keel_stream_enc's max, counted in its held). */
struct keel_stream_responses {
    struct keel_asm a; /* choice 0's events (and META, USAGE): everything said so far; its max kept
                        * at the state's max less the items' bytes */
    struct keel_stream_item *items; /* owned, [cap], the first told.nitems in use; NULL until an
                                     * item started; freed by stream_release */
    size_t cap;
    struct keel_stream_told told;
};

/* A stream encoder's state: what the client was told so far. Set up by the encoder's stream_init;
 * given back by its stream_release (when it has one) once the stream is over, whatever happened,
 * before another stream_init of the same state. usage and include_usage are every protocol's,
 * anthropic the Anthropic encoder's, max, held, created_at and responses the Responses one's, the
 * rest the OpenAI one's. */
struct keel_stream_enc {
    size_t max;  /* bytes an encoder may hold on the heap (only the Responses one holds any, and
                  * its stream_init sets KEEL_STREAM_MAX_HELD): the caller may set less before the
                  * first event. Past it a call is refused with -ENOBUFS */
    size_t held; /* bytes it holds now, for the caller's memory cap (never past max); 0 after
                  * stream_release */
    long long created_at; /* the caller's clock (Unix seconds) for a protocol that dates its answer
                           * when the first event says no created (Responses): set before the
                           * first event; 0 after stream_init */
    char id[256], model[256]; /* META's first id and model, string literals as sent, quotes included */
    char created[24];         /* META's first created, an integer as sent */
    size_t id_len, model_len, created_len; /* 0: none came (written "", "" and 0: core reads no clock) */
    unsigned char role_sent[KEEL_STREAM_MAX_INDEX / 8]; /* bit c: choice c's first delta went out */
    unsigned char tool_sent[KEEL_STREAM_MAX_INDEX][KEEL_STREAM_MAX_INDEX / 8]; /* [c] bit t: tool call t
                                                                               * of choice c was named */
    struct keel_usage usage; /* the last USAGE's counts (present 0 until one came) */
    int include_usage;       /* the client asked for usage (stream_options.include_usage) */
    struct keel_stream_anthropic anthropic;
    struct keel_stream_responses responses;
};

/* for the encoders: bit i of one of the bit sets above (role_sent, tool_sent[c], tool_started) */
static inline int keel_stream_bit(const unsigned char *set, uint32_t i)
{
    return set[i / 8] >> (i % 8) & 1;
}

static inline void keel_stream_set_bit(unsigned char *set, uint32_t i)
{
    set[i / 8] |= (unsigned char)(1u << (i % 8));
}

/* The OpenAI chat.completion.chunk stream (keel_openai_chat_encoder's stream ops). Every content
 * event is one chunk {"id","object":"chat.completion.chunk","created","model","choices":[{"index",
 * "delta","logprobs":null,"finish_reason":null}]}: TEXT {"content"}, REASONING
 * {"reasoning_content"} (or {"reasoning"}, as it came), REFUSAL {"refusal"}, a choice's first
 * delta with "role":"assistant" before them (a ROLE event: its role alone). A tool call's first
 * fragment {"tool_calls":[{"index","id" (when one came),"type":"function","function":{"name"
 * ("" when none came),"arguments"}}]}, its later ones {"tool_calls":[{"index","function":
 * {"arguments"}}]} (raw arguments escaped into the string). A delta that would say nothing (an
 * empty text or arguments fragment once the role went out) writes no chunk. LOGPROBS: an empty
 * delta with "logprobs":{"content","refusal"}. FINISH: an empty delta with its finish_reason.
 * META (id, model, created: the first non-null of each) and USAGE (the last counts) are kept for
 * the chunks and the end; ERROR is the caller's. Each call appends whole SSE frames
 * ("data: ...\n\n") or nothing: 0, -ENOBUFS (out's cap, an id or model past its room, an index
 * past KEEL_STREAM_MAX_INDEX), -ENOMEM; the state moves only with what went out. */
void keel_openai_stream_init(struct keel_stream_enc *s, int include_usage);
int keel_openai_stream_event(struct keel_stream_enc *s, const struct keel_ev *ev, struct keel_buf *out);
/* after a clean end: the usage chunk (choices [], "usage" from the counts) when the client asked
 * for it and a USAGE came, then "data: [DONE]\n\n"; all or nothing, as above */
int keel_openai_stream_end(struct keel_stream_enc *s, struct keel_buf *out);

/* The Anthropic Messages stream (keel_anthropic_encoder's stream ops), for a client of
 * `POST /v1/messages` served by a target of another kind: named SSE events ("event: NAME\n
 * data: JSON\n\n", JSON's "type" NAME, no whitespace; the SDK ignores frames without a name),
 * in the order Anthropic writes them. message_start goes out first, with the first event of any
 * kind but ERROR: {"type":"message_start","message":{"id","type":"message","role":"assistant",
 * "model","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,
 * "output_tokens":0}}}, id and model as META sent them when it is that first event (each ""
 * when not a string), else "" (OpenAI's first chunk carries them; nothing of them is kept).
 * Choice 0's TEXT and REFUSAL go into a text block, REASONING into a thinking one
 * ({"type":"thinking","thinking":"","signature":""}): when the open block is of another kind it
 * is closed (content_block_stop {"index"}) and one started (content_block_start
 * {"index","content_block"}), then the text goes out as a content_block_delta ({"type":
 * "text_delta","text"} or {"type":"thinking_delta","thinking"}); an empty text writes nothing
 * and starts no block. A tool call's first fragment closes the open block and starts
 * {"type":"tool_use","id","name","input":{}} (id "toolu_keel_<index>" when none came, name ""),
 * its arguments go out as {"type":"input_json_delta","partial_json"} (raw ones escaped into
 * the string). Arguments for a tool call whose block is closed are refused with -EPROTO:
 * Anthropic cannot reopen a block (an OpenAI server interleaving two calls' arguments; the
 * caller treats the attempt as malformed); an empty fragment of it writes nothing. FINISH
 * (the first non-empty: stop_reason, mapped as keel_asm_anthropic_message does) and USAGE (the
 * last counts) are kept for the end; ROLE, LOGPROBS, a later META and events of other choices
 * say nothing more; ERROR is the caller's and writes nothing. Each call appends whole frames or
 * nothing: 0, -ENOBUFS (out's cap, a tool-call index past KEEL_STREAM_MAX_INDEX), -ENOMEM,
 * -EPROTO; the state moves only with what went out.
 * include_usage is kept but changes nothing: an Anthropic stream always carries its usage. */
void keel_anthropic_stream_init(struct keel_stream_enc *s, int include_usage);
int keel_anthropic_stream_event(struct keel_stream_enc *s, const struct keel_ev *ev, struct keel_buf *out);
/* after a clean end: message_start when nothing went out yet (an answer with no content is still
 * a whole message), the open block's content_block_stop, then message_delta {"delta":
 * {"stop_reason" ("end_turn" when no FINISH came),"stop_sequence":null},"usage":{"input_tokens",
 * "output_tokens"}} (the last USAGE's prompt and completion tokens, 0 when none came) and
 * message_stop; all or nothing, as above */
int keel_anthropic_stream_end(struct keel_stream_enc *s, struct keel_buf *out);

/* The OpenAI Responses API stream (keel_responses_encoder's stream ops), for a client of
 * `POST /v1/responses` served by a target of another kind: named SSE events ("event: TYPE\n
 * data: JSON\n\n", JSON {"type":TYPE,...,"sequence_number":N}, N from 0 and one more per
 * frame; no whitespace), in the order OpenAI writes them. response.created then
 * response.in_progress go out first, with the first event of any kind but ERROR, each with the
 * Response so far (status "in_progress", output [], usage null; id, created_at and model as
 * keel_asm_responses says them, from that first event when it is META, else "resp_keel", the
 * state's created_at and "": they stay so to the end). Choice 0's output is a run of items, one
 * open at a time, a new one started when an event of another kind comes (the open one closed
 * first): REASONING a reasoning item (response.output_item.added {"output_index","item"} with
 * summary [], response.reasoning_summary_part.added, then per fragment
 * response.reasoning_summary_text.delta {"item_id","output_index","summary_index":0,"delta"});
 * TEXT a message item with an output_text part (output_item.added, response.content_part.added
 * {"item_id","output_index","content_index":0,"part"}, response.output_text.delta {...,"delta",
 * "logprobs":[]}); REFUSAL a message item with a refusal part (response.refusal.delta); an empty
 * text writes nothing and starts no item. A tool call's first fragment starts a function_call
 * item (call_id the id sent, else made as keel_asm_responses makes it; name "" when none came;
 * arguments ""), its arguments go out as response.function_call_arguments.delta {"item_id",
 * "output_index","delta"} (raw ones escaped into the string). Arguments for a tool call whose
 * item is closed are refused with -EPROTO (an item cannot reopen: an OpenAI server interleaving
 * two calls' arguments; the caller treats the attempt as malformed); an empty fragment of it
 * writes nothing. An item closes with its whole text: response.reasoning_summary_text.done and
 * response.reasoning_summary_part.done, response.output_text.done (or response.refusal.done) and
 * response.content_part.done, response.function_call_arguments.done {"item_id","output_index",
 * "name","arguments"}; then response.output_item.done with the item whole. Item ids, statuses and
 * parts as keel_asm_responses writes them. META (the first event's only), FINISH and USAGE are
 * kept for the end; ROLE, LOGPROBS and events of other choices say nothing; ERROR is the
 * caller's and writes nothing. Each call appends whole frames or nothing: 0, -ENOBUFS (out's
 * cap, the state's max, a tool-call index past KEEL_STREAM_MAX_INDEX), -ENOMEM, -EPROTO; out
 * as it was on failure and the stream's position unmoved (what is kept may hold part of a
 * refused event: a stream refused is over). */
void keel_responses_stream_init(struct keel_stream_enc *s, int include_usage);
int keel_responses_stream_event(struct keel_stream_enc *s, const struct keel_ev *ev, struct keel_buf *out);
/* after a clean end: response.created and response.in_progress when nothing went out yet, the
 * open item's closing frames, then response.completed (or response.incomplete, when the finish
 * reason was length or content_filter) {"response"}: the whole Response, its output the items in
 * the order they went out, each whole, the last one "incomplete" with it; usage from the last
 * USAGE. All or nothing, as above. */
int keel_responses_stream_end(struct keel_stream_enc *s, struct keel_buf *out);
/* gives back what the stream kept: held 0 (idempotent) */
void keel_responses_stream_release(struct keel_stream_enc *s);
/* keel's own error after the commit point: `error` {code, message, param null, sequence_number} */
int keel_responses_stream_error(struct keel_stream_enc *s, const char *code, const char *message,
                                struct keel_buf *out);

/* an embeddings answer judged (the embeddings encoder's judge): OK with a non-empty "data",
 * EMPTY without, ERROR for an error body, MALFORMED when no JSON object; its usage */
enum keel_answer_kind keel_openai_embeddings_judge(const char *text, size_t len, char *code, size_t codelen,
                                                   struct keel_usage *usage);

/* An encoder: what clients of one protocol get (STYLE B4; the decoders' counterpart). A stream
 * from an upstream of its native kind reaches a stream client byte for byte (only judged);
 * one of another kind is re-encoded event by event by the stream ops; any answer for a client
 * that asked for no stream is assembled and written by `answer`. */
struct keel_encoder_ops {
    const char *protocol;    /* the client protocol: "openai-chat", "anthropic-messages",
                              * "openai-responses", "openai-embeddings" */
    const char *native_kind; /* the upstream kind it relays untouched: "openai", "anthropic"
                              * ("openai-responses": no upstream kind has it yet) */
    const char *native_end;  /* what keel writes after a native stream's clean end ("data: [DONE]\n\n"),
                              * its end frame swallowed; NULL: the end frame is relayed as sent, and
                              * a native stream without it was cut */
    const char *error_event; /* the SSE event name of keel's own error event (NULL: unnamed) */
    const char *native_path; /* the path under a native target's base_url, when it is not its
                              * kind's chat path (embeddings: "/embeddings"); NULL: that one */
    int native_frames;       /* a non-stream client's answer from a stream of its native kind is
                              * built from the frames as sent (core/anthropic_msg.h), not from
                              * events: Anthropic's blocks carry what events do not (thinking
                              * signatures, citations, server tools) */
    /* the whole answer in the protocol's JSON: 0, -ENOBUFS, -ENOMEM, or -EPROTO when the
     * assembly cannot be said in it (the answer is then malformed); out as it was on failure */
    int (*answer)(const struct keel_asm *a, struct keel_buf *out);
    /* a stream for a stream client from events of another kind (NULL: none) */
    void (*stream_init)(struct keel_stream_enc *s, int include_usage);
    /* appends the event's whole SSE frames in the protocol's framing, or nothing: 0, -ENOBUFS,
     * -ENOMEM, or -EPROTO when the protocol cannot say it (the attempt is then malformed) */
    int (*stream_event)(struct keel_stream_enc *s, const struct keel_ev *ev, struct keel_buf *out);
    /* after a clean end: what closes the protocol's stream (OpenAI: the usage chunk when asked,
     * then [DONE]; Anthropic: message_delta and message_stop); all or nothing, as above */
    int (*stream_end)(struct keel_stream_enc *s, struct keel_buf *out);
    /* called once after stream_init when the stream is over, whatever happened (a clean end, a
     * refused event, an error, a cut), before another stream_init of the same state: gives back
     * what the state holds (held 0). NULL: it holds nothing (OpenAI, Anthropic) */
    void (*stream_release)(struct keel_stream_enc *s);
    /* keel's own error after the commit point, as the protocol's stream says one (Responses:
     * an `error` event with its sequence_number); NULL: the error envelope in an error_event
     * frame. All or nothing, as above */
    int (*stream_error)(struct keel_stream_enc *s, const char *code, const char *message, struct keel_buf *out);
    /* a native whole answer judged by the protocol itself rather than its kind's decoder
     * (embeddings have no choices to read): as keel_decoder_ops.body; NULL: the decoder's */
    enum keel_answer_kind (*judge)(const char *body, size_t len, char *code, size_t codelen,
                                   struct keel_usage *usage);
    /* (a protocol without stream ops never streams: keel asks its targets for no stream) */
};

extern const struct keel_encoder_ops keel_openai_chat_encoder;
extern const struct keel_encoder_ops keel_anthropic_encoder;
extern const struct keel_encoder_ops keel_openai_embeddings_encoder;
extern const struct keel_encoder_ops keel_responses_encoder;

#endif
