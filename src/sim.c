/* sim.c - `keel sim`: a fault simulator speaking OpenAI (POST /v1/chat/completions; POST
 * /v1/responses, the Responses API's Response objects and typed events; POST /v1/embeddings: a
 * deterministic unit vector per input, floats or base64) and Anthropic Messages (POST
 * /v1/messages), keel's demo provider and its test fixture. The requested model name
 * picks the behaviour, "NAME" or "NAME:PARAM", "+sse" to stream whatever the request asked (see the
 * README), the same names on every API where they mean something; "chaos[:rate]" (chat) picks one
 * of the others at random per request (the soak, bench/soak.mjs). Each request runs a short script
 * of actions (wait, write, abort, stay silent...). GET /sim/stats counts hits, client disconnects,
 * assistant prefills, down-for errors and chaos faults per model name. Answers are each API's shapes, key for key; a stream joins into
 * its whole answer. */
#include "sim.h"

#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "core/units.h"
#include "io/server.h"
#include "log.h"

#define MAX_COUNTERS 512
#define MAX_ACTIONS 64 /* rich with n 4 takes 47: head, 43 chunks, usage, [DONE], end */
#define MAX_TOKENS 4000000 /* chaos: the most words a healthy answer carries (max_tokens; ~20 MB) */
#define TOKEN_WRITES 16    /* chaos: a long healthy stream's words go out in this many writes */
#define MAX_WORDS 4000     /* cut-after, stall-after: the most words before the cut; prefill: in its answer */

/* What "chaos" injects, one drawn uniformly per faulty request: the behaviour of that name.
 * The two slow ones stay within keel's usual soak deadlines (first_byte 1s, stall 500ms): a
 * slow answer, not a failure. Index 0 is a healthy answer (no fault). */
static const char *const faults[] = {
    "none",
    "hang",
    "headers-then-silence",
    "heartbeat-only",
    "stall-after",
    "slow-first-token:700",
    "slow-tokens:150",
    "500",
    "502",
    "503",
    "529",
    "429",
    "quota",
    "401",
    "404",
    "reset-before-headers",
    "reset-mid-stream",
    "error-before-content",
    "error-after-content",
    "empty-choices",
    "malformed-chunk",
    "no-done",
};
#define NFAULTS (sizeof(faults) / sizeof(faults[0]))

struct counter {
    char name[128]; /* the model name as asked */
    uint64_t hits;  /* requests received */
    uint64_t gone;  /* requests whose client disconnected before the answer ended */
    uint64_t writes; /* streamed writes the client's socket has taken (backpressure shows here) */
    char auth[128]; /* the last Authorization header seen (test keys only) */
    char api_key[128]; /* the last x-api-key header seen (test keys only) */
    char version[64];  /* the last anthropic-version header seen */
    char beta[128];    /* the last anthropic-beta header seen */
    char passed[512];  /* the last request's headers a gateway passes on (PASSED), "name: value\n" each */
    uint64_t chaos[NFAULTS]; /* chaos requests by the fault drawn (index into faults[]) */
    int is_chaos;            /* a chaos name: /sim/stats lists its faults */
    uint64_t prefills;       /* chat, messages: requests whose last message was the assistant's */
    char *last_prefill;      /* the last such message's text (heap, owned: freed when replaced or the
                              * slot is reused); NULL before the first */
    size_t last_prefill_len; /* its length (the text may hold NULs) */
    uint64_t first_ms;       /* the loop clock at the name's first request: down-for counts from it */
    uint64_t down_hits;      /* down-for: requests answered with the error while down */
};

struct sim {
    uv_loop_t *loop;
    struct keel_server *srv;
    struct counter counters[MAX_COUNTERS];
    size_t ncounters;
    uint64_t seed;   /* chaos draws: KEEL_SIM_SEED, default 1 */
    uint64_t chaoses; /* chaos requests so far: each answer's id is chatcmpl-sim-N, unique */
};

enum action_kind {
    ACT_HEAD,      /* start a streamed response: status, content type */
    ACT_WRITE,     /* write text */
    ACT_END,       /* the final (empty) write */
    ACT_RESPOND,   /* the whole response at once: status, body */
    ACT_ABORT,     /* drop the connection */
    ACT_SILENCE,   /* do nothing, ever */
    ACT_HEARTBEAT, /* write text every `delay` ms, forever */
    ACT_TICK,      /* write a chunk carrying the wall clock (µs) every `delay` ms, forever */
};

struct action {
    enum action_kind kind;
    uint64_t delay_ms; /* wait before the action */
    int status;
    char *text; /* owned */
    const char *content_type;
    uint64_t retry_after; /* seconds, for ACT_RESPOND; 0 = no header */
    uint64_t repeat;      /* ACT_WRITE: times left to write text (0 and 1 both mean once) */
};

struct sim_req {
    struct sim *sim;
    struct keel_http *h; /* NULL once answered or gone */
    struct counter *counter;
    const char *fault; /* chaos: the fault drawn (a faults[] entry), sent as x-sim-fault; or NULL */
    uint64_t asked_tokens; /* the request's max_tokens, 0 = none */
    uint64_t tokens;   /* chaos: words in a healthy answer (asked_tokens); 0 = the usual 5 */
    char cid[40];      /* the answer's "id": chatcmpl-sim, chaos's own per request (chatcmpl-sim-N) */
    unsigned choices;  /* rich: the request's n, 1 to MAX_CHOICES */
    int logprobs;      /* rich: the request's logprobs is true */
    int anthropic;     /* asked on /v1/messages */
    char *prefill;     /* chat, messages: the text of the request's last message if the assistant's
                        * (owned, freed with sr), else NULL */
    size_t prefill_len;
    int vllm_continue; /* chat: the body says continue_final_message true, add_generation_prompt false */
    char rid[64];      /* its request id header's value: req_sim_<hits> */
    uv_timer_t timer; /* freed with sr in its close callback (STACK trap 6) */
    struct action acts[MAX_ACTIONS];
    size_t nacts, next;
};

/* ------------------------------------------------------------------ script building */

static void add(struct sim_req *sr, enum action_kind kind, uint64_t delay, int status, char *text)
{
    if (sr->nacts == MAX_ACTIONS) {
        free(text);
        return;
    }
    sr->acts[sr->nacts++] = (struct action){.kind = kind, .delay_ms = delay, .status = status, .text = text,
                                            .content_type = "application/json"};
}

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static char *sse(char *json)
{
    size_t l = strlen(json) + 9;
    char *s = malloc(l);
    snprintf(s, l, "data: %s\n\n", json);
    free(json);
    return s;
}

/* ------------------------------------------------------------------ answers, in OpenAI's shapes */

/* An answer is its parts in stream order, one chunk's delta each. The whole (non-stream)
 * answer joins them per choice (and per tool call) into OpenAI's key order, so an assembler
 * that joins the stream's deltas gets the whole answer back byte for byte. Both are written by
 * hand: a part's text is a JSON string's body as sent, which may hold a lone surrogate. */
enum part_kind {
    PART_EMPTY,     /* a delta of no more than the flags say */
    PART_CONTENT,   /* text: more content */
    PART_REASONING, /* text: more reasoning_content */
    PART_REFUSAL,   /* text: more refusal */
    PART_CALL,      /* a tool call begins: id, text the function's name, arguments "" */
    PART_ARGS,      /* text: more of a tool call's arguments */
    PART_FINISH,    /* the choice ends: an empty delta with the answer's finish_reason */
};

enum part_flags {
    PART_ROLE = 1 << 0,         /* the delta opens with "role":"assistant" */
    PART_NULL_CONTENT = 1 << 1, /* then "content":null (the choice has no content part) */
};

struct part {
    enum part_kind kind;
    unsigned flags;   /* enum part_flags */
    unsigned choice;  /* the choice's index, < answer.nchoices */
    unsigned call;    /* PART_CALL, PART_ARGS: the call's index; a choice's calls begin 0, 1, ... */
    const char *text; /* a JSON string's body, escaped; static or the builder's caller's */
    const char *id;   /* PART_CALL: the call's id (needs no escaping) */
};

struct answer {
    const struct part *parts; /* the caller's, read only while a builder runs */
    size_t nparts;
    unsigned nchoices;
    const char *finish;      /* every choice's finish_reason */
    const char *fingerprint; /* system_fingerprint, or NULL for none */
    int logprobs;            /* content parts carry a logprobs entry (their text needs no escaping) */
    uint64_t tokens;         /* usage.completion_tokens */
};

/* the usual answer's envelope: one choice that stops, 4 completion tokens */
static const struct answer plain = {.nchoices = 1, .finish = "stop", .tokens = 4};

/* s as a JSON string's body (escaped, unquoted), heap; "" if s is not UTF-8; NULL if out of memory */
static char *escape(const char *s)
{
    json_t *j = json_string(s);
    char *q = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : strdup("\"\"");
    json_decref(j);
    if (q == NULL)
        return NULL;
    size_t l = strlen(q);
    memmove(q, q + 1, l - 2);
    q[l - 2] = '\0';
    return q;
}

static void put_string(FILE *f, const char *s)
{
    char *e = escape(s);
    fprintf(f, "\"%s\"", e ? e : "");
    free(e);
}

/* the text written to f, opened by open_memstream(s, ...): heap, the caller frees it; or NULL */
static char *closed(FILE *f, char **s)
{
    if (fclose(f) == 0)
        return *s;
    free(*s);
    return NULL;
}

/* an object's opening keys, up to the model */
static void put_head(FILE *f, const struct sim_req *sr, const char *model, const char *object)
{
    fputs("{\"id\":", f);
    put_string(f, sr->cid);
    fprintf(f, ",\"object\":\"%s\",\"created\":0,\"model\":", object);
    put_string(f, model);
}

static void put_usage(FILE *f, const struct answer *a)
{
    fprintf(f, "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":%llu,\"total_tokens\":%llu}",
            (unsigned long long)a->tokens, (unsigned long long)a->tokens + 5);
}

/* a logprobs entry for a token that needs no escaping */
static void put_logprob(FILE *f, const char *token)
{
    fprintf(f, "{\"token\":\"%s\",\"logprob\":-0.5,\"bytes\":[", token);
    for (const char *p = token; *p; p++)
        fprintf(f, "%s%u", p == token ? "" : ",", (unsigned)(unsigned char)*p);
    fputs("],\"top_logprobs\":[]}", f);
}

/* a memory stream on *s (see closed()) holding a chunk's SSE event up to its choices; or NULL */
static FILE *chunk_open(char **s, size_t *len, const struct sim_req *sr, const char *model, const struct answer *a)
{
    FILE *f = open_memstream(s, len);
    if (f == NULL)
        return NULL;
    fputs("data: ", f);
    put_head(f, sr, model, "chat.completion.chunk");
    if (a->fingerprint != NULL)
        fprintf(f, ",\"system_fingerprint\":\"%s\"", a->fingerprint);
    return f;
}

/* one part's chunk, an SSE event (heap, the caller frees it) */
static char *part_chunk(const struct sim_req *sr, const char *model, const struct answer *a, const struct part *p)
{
    static const char *const field[] = {
        [PART_CONTENT] = "content", [PART_REASONING] = "reasoning_content", [PART_REFUSAL] = "refusal"};
    char *s = NULL;
    size_t len;
    FILE *f = chunk_open(&s, &len, sr, model, a);
    if (f == NULL)
        return NULL;
    fprintf(f, ",\"choices\":[{\"index\":%u,\"delta\":{", p->choice);
    const char *sep = "";
    if (p->flags & PART_ROLE) {
        fputs("\"role\":\"assistant\"", f);
        sep = ",";
    }
    if (p->flags & PART_NULL_CONTENT) {
        fprintf(f, "%s\"content\":null", sep);
        sep = ",";
    }
    if (p->kind == PART_CONTENT || p->kind == PART_REASONING || p->kind == PART_REFUSAL)
        fprintf(f, "%s\"%s\":\"%s\"", sep, field[p->kind], p->text);
    else if (p->kind == PART_CALL)
        fprintf(f,
                "%s\"tool_calls\":[{\"index\":%u,\"id\":\"%s\",\"type\":\"function\","
                "\"function\":{\"name\":\"%s\",\"arguments\":\"\"}}]",
                sep, p->call, p->id, p->text);
    else if (p->kind == PART_ARGS)
        fprintf(f, "%s\"tool_calls\":[{\"index\":%u,\"function\":{\"arguments\":\"%s\"}}]", sep, p->call, p->text);
    fputs("},\"logprobs\":", f);
    if (a->logprobs && p->kind == PART_CONTENT) {
        fputs("{\"content\":[", f);
        put_logprob(f, p->text);
        fputs("],\"refusal\":null}", f);
    } else {
        fputs("null", f);
    }
    if (p->kind == PART_FINISH)
        fprintf(f, ",\"finish_reason\":\"%s\"}]}\n\n", a->finish);
    else
        fputs(",\"finish_reason\":null}]}\n\n", f);
    return closed(f, &s);
}

/* the stream's usage chunk (heap) */
static char *usage_chunk(const struct sim_req *sr, const char *model, const struct answer *a)
{
    char *s = NULL;
    size_t len;
    FILE *f = chunk_open(&s, &len, sr, model, a);
    if (f == NULL)
        return NULL;
    fputs(",\"choices\":[],", f);
    put_usage(f, a);
    fputs("}\n\n", f);
    return closed(f, &s);
}

static int is_part(const struct part *p, unsigned choice, enum part_kind kind, unsigned call)
{
    return p->choice == choice && p->kind == kind && ((kind != PART_CALL && kind != PART_ARGS) || p->call == call);
}

/* the first part of that choice, kind (and call, for PART_CALL and PART_ARGS); or NULL */
static const struct part *find(const struct answer *a, unsigned choice, enum part_kind kind, unsigned call)
{
    for (size_t i = 0; i < a->nparts; i++)
        if (is_part(&a->parts[i], choice, kind, call))
            return &a->parts[i];
    return NULL;
}

/* those parts' texts joined, as a JSON string; `none` if there are none */
static void put_joined(FILE *f, const struct answer *a, unsigned choice, enum part_kind kind, unsigned call,
                       const char *none)
{
    if (find(a, choice, kind, call) == NULL) {
        fputs(none, f);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < a->nparts; i++)
        if (is_part(&a->parts[i], choice, kind, call))
            fputs(a->parts[i].text, f);
    fputc('"', f);
}

/* the whole answer, a chat.completion (heap, the caller frees it) */
static char *whole(const struct sim_req *sr, const char *model, const struct answer *a)
{
    char *s = NULL;
    size_t len;
    FILE *f = open_memstream(&s, &len);
    if (f == NULL)
        return NULL;
    put_head(f, sr, model, "chat.completion");
    fputs(",\"choices\":[", f);
    for (unsigned c = 0; c < a->nchoices; c++) {
        fprintf(f, "%s{\"index\":%u,\"message\":{\"role\":\"assistant\",\"content\":", c > 0 ? "," : "", c);
        put_joined(f, a, c, PART_CONTENT, 0, "null");
        if (find(a, c, PART_REASONING, 0) != NULL) {
            fputs(",\"reasoning_content\":", f);
            put_joined(f, a, c, PART_REASONING, 0, "null");
        }
        fputs(",\"refusal\":", f);
        put_joined(f, a, c, PART_REFUSAL, 0, "null");
        for (unsigned k = 0; find(a, c, PART_CALL, k) != NULL; k++) {
            const struct part *call = find(a, c, PART_CALL, k);
            fprintf(f, "%s{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":\"%s\",\"arguments\":",
                    k > 0 ? "," : ",\"tool_calls\":[", call->id, call->text);
            put_joined(f, a, c, PART_ARGS, k, "\"\"");
            fputs("}}", f);
        }
        if (find(a, c, PART_CALL, 0) != NULL)
            fputc(']', f);
        fputs("},\"logprobs\":", f);
        if (a->logprobs) {
            fputs("{\"content\":[", f);
            const char *sep = "";
            for (size_t i = 0; i < a->nparts; i++) {
                if (!is_part(&a->parts[i], c, PART_CONTENT, 0))
                    continue;
                fputs(sep, f);
                put_logprob(f, a->parts[i].text);
                sep = ",";
            }
            fputs("],\"refusal\":null}", f);
        } else {
            fputs("null", f);
        }
        fprintf(f, ",\"finish_reason\":\"%s\"}", a->finish);
    }
    fputs("],", f);
    put_usage(f, a);
    if (a->fingerprint != NULL)
        fprintf(f, ",\"system_fingerprint\":\"%s\"", a->fingerprint);
    fputc('}', f);
    return closed(f, &s);
}

/* one chunk of the usual answer: content (a JSON string's body: it must need no escaping) or
 * NULL; role "assistant" to open the choice, or NULL; a finish_reason, or NULL */
static char *chunk(const struct sim_req *sr, const char *model, const char *content, const char *role,
                   const char *finish)
{
    struct part p = {.kind = content ? PART_CONTENT : finish ? PART_FINISH : PART_EMPTY,
                     .flags = role ? PART_ROLE : 0, .text = content};
    struct answer a = plain;
    a.finish = finish;
    return part_chunk(sr, model, &a, &p);
}

/* the usual whole answer whose content is text (any UTF-8) */
static char *completion(const struct sim_req *sr, const char *model, const char *text)
{
    char *body = escape(text);
    struct part p = {.kind = PART_CONTENT, .text = body ? body : ""};
    struct answer a = plain;
    a.parts = &p;
    a.nparts = 1;
    char *s = whole(sr, model, &a);
    free(body);
    return s;
}

static char *error_body(const char *message, const char *type, const char *code)
{
    return dump(json_pack("{s:{s:s, s:s, s:s*, s:n}}", "error", "message", message, "type", type, "code", code,
                          "param"));
}

static const char *const words[] = {"Hello", " from", " the", " keel", " simulator."};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* A completion whose content is n words, words[i % NWORDS] for i < n (n = NWORDS: the usual
 * answer), from byte skip on (prefill: what follows the prefill; 0: all of it). The words need no
 * escaping, so they are copied into the JSON built around an empty content, a sentence at a time:
 * a chaos answer of millions of words costs a few ms of the loop, not a hundred (the soak's slow
 * faults must stay on time). */
static char *completion_words(const struct sim_req *sr, const char *model, uint64_t n, size_t skip)
{
    char sentence[64];
    size_t sl = 0, rest = 0;
    for (size_t k = 0; k < NWORDS; k++) {
        size_t l = strlen(words[k]);
        memcpy(sentence + sl, words[k], l);
        sl += l;
        if (k < n % NWORDS)
            rest += l;
    }
    char *shell = completion(sr, model, "");
    const char *at = shell ? strstr(shell, "\"content\":\"\"") : NULL;
    if (at == NULL)
        return shell;
    size_t head = (size_t)(at - shell) + strlen("\"content\":\""), tail = strlen(shell) - head;
    size_t content = (size_t)(n / NWORDS) * sl + rest;
    char *s = malloc(head + content + tail + 1), *p = s;
    if (s != NULL) {
        memcpy(p, shell, head);
        p += head;
        for (uint64_t i = 0; i < n / NWORDS; i++, p += sl)
            memcpy(p, sentence, sl);
        memcpy(p, sentence, rest); /* the first n % NWORDS words */
        p -= (size_t)(n / NWORDS) * sl;
        skip = skip < content ? skip : content;
        memmove(p, p + skip, content - skip);
        memcpy(p + content - skip, shell + head, tail + 1);
    }
    free(shell);
    return s;
}

/* the n-word answer's text (words[i % NWORDS], i < n) from byte skip on: heap, the caller frees
 * it; NULL if out of memory */
static char *words_text(uint64_t n, size_t skip)
{
    char *s = NULL;
    size_t len;
    FILE *f = open_memstream(&s, &len);
    if (f == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++)
        fputs(words[i % NWORDS], f);
    s = closed(f, &s);
    if (s != NULL && skip > 0)
        memmove(s, s + (skip < len ? skip : len), len - (skip < len ? skip : len) + 1);
    return s;
}

/* the texts one[i % NWORDS] (a word's event each) for words [from, to) joined, one write's text
 * (heap); NULL if out of memory */
static char *joined(char *const one[NWORDS], uint64_t from, uint64_t to)
{
    size_t len = 1, l[NWORDS];
    for (size_t k = 0; k < NWORDS; k++)
        l[k] = one[k] ? strlen(one[k]) : 0;
    for (uint64_t i = from; i < to; i++)
        len += l[i % NWORDS];
    char *s = malloc(len), *p = s;
    for (uint64_t i = from; s != NULL && i < to; i++) {
        if (l[i % NWORDS] > 0)
            memcpy(p, one[i % NWORDS], l[i % NWORDS]);
        p += l[i % NWORDS];
    }
    if (s != NULL)
        *p = '\0';
    return s;
}

/* words [from, n) of an n-word answer written, one[i % NWORDS] the event of word i, each write
 * `gap` ms after the previous one (the first `first_gap`): one word per write, but a long answer
 * (more than TOKEN_WRITES words) goes out in TOKEN_WRITES writes of many words. one[] stays the
 * caller's. */
static void word_writes(struct sim_req *sr, char *const one[NWORDS], uint64_t from, uint64_t n, uint64_t first_gap,
                        uint64_t gap)
{
    uint64_t per = n > TOKEN_WRITES ? (n + TOKEN_WRITES - 1) / TOKEN_WRITES : 1;
    for (uint64_t i = from; i < n; i += per)
        add(sr, ACT_WRITE, i == from ? first_gap : gap, 0, joined(one, i, i + per < n ? i + per : n));
}

static void free_words(char *one[NWORDS])
{
    for (size_t k = 0; k < NWORDS; k++)
        free(one[k]);
}

/* words [from, n) as content chunks, written as word_writes() does */
static void chunk_words(struct sim_req *sr, const char *model, uint64_t from, uint64_t n, uint64_t first_gap,
                        uint64_t gap)
{
    char *one[NWORDS]; /* each word's chunk, built once */
    for (size_t k = 0; k < NWORDS; k++)
        one[k] = chunk(sr, model, words[k], NULL, NULL);
    word_writes(sr, one, from, n, first_gap, gap);
    free_words(one);
}

static void stream_start(struct sim_req *sr)
{
    add(sr, ACT_HEAD, 0, 200, NULL);
    sr->acts[sr->nacts - 1].content_type = "text/event-stream";
}

/* after the last content: the usage chunk (if asked), [DONE] (if done), the end */
static void stream_end(struct sim_req *sr, const char *model, const struct answer *a, int usage, int done)
{
    if (usage)
        add(sr, ACT_WRITE, 0, 0, usage_chunk(sr, model, a));
    if (done)
        add(sr, ACT_WRITE, 0, 0, strdup("data: [DONE]\n\n"));
    add(sr, ACT_END, 0, 0, NULL);
}

/* the healthy stream from word `from` on, each write `gap` ms after the previous: one word per
 * write, but a long answer (sr->tokens: chaos, prefill) goes out in TOKEN_WRITES writes of many words */
static void healthy_tail(struct sim_req *sr, const char *model, size_t from, uint64_t first_gap, uint64_t gap,
                         int usage, int done)
{
    chunk_words(sr, model, from, sr->tokens ? sr->tokens : NWORDS, first_gap, gap);
    add(sr, ACT_WRITE, 0, 0, chunk(sr, model, NULL, NULL, "stop"));
    stream_end(sr, model, &plain, usage, done);
}

static void stream_head(struct sim_req *sr, const char *model)
{
    stream_start(sr);
    add(sr, ACT_WRITE, 0, 0, chunk(sr, model, NULL, "assistant", NULL));
}

/* answer a, streamed (usage: with its usage chunk) or whole */
static void answer(struct sim_req *sr, const char *model, const struct answer *a, int stream, int usage)
{
    if (!stream) {
        add(sr, ACT_RESPOND, 0, 200, whole(sr, model, a));
        return;
    }
    stream_start(sr);
    for (size_t i = 0; i < a->nparts; i++)
        add(sr, ACT_WRITE, 0, 0, part_chunk(sr, model, a, &a->parts[i]));
    stream_end(sr, model, a, usage, 1);
}

/* tools: two calls in parallel, their arguments cut mid-token and interleaved */
static const struct part tool_parts[] = {
    {PART_CALL, PART_ROLE | PART_NULL_CONTENT, 0, 0, "get_weather", "call_sim_1"},
    {PART_ARGS, 0, 0, 0, "{\\\"ci", NULL},
    {PART_CALL, 0, 0, 1, "get_time", "call_sim_2"},
    {PART_ARGS, 0, 0, 0, "ty\\\":\\\"Par", NULL},
    {PART_ARGS, 0, 0, 1, "{\\\"t", NULL},
    {PART_ARGS, 0, 0, 0, "is\\\",\\\"un", NULL},
    {PART_ARGS, 0, 0, 1, "z\\\":\\\"Europe/", NULL},
    {PART_ARGS, 0, 0, 0, "it\\\":\\\"c\\\"}", NULL},
    {PART_ARGS, 0, 0, 1, "Paris\\\"}", NULL},
    {PART_FINISH, 0, 0, 0, NULL, NULL},
};

/* tools:seq: the same calls one after the other, as OpenAI itself sends them */
static const struct part tool_parts_seq[] = {
    {PART_CALL, PART_ROLE | PART_NULL_CONTENT, 0, 0, "get_weather", "call_sim_1"},
    {PART_ARGS, 0, 0, 0, "{\\\"ci", NULL},
    {PART_ARGS, 0, 0, 0, "ty\\\":\\\"Par", NULL},
    {PART_ARGS, 0, 0, 0, "is\\\",\\\"un", NULL},
    {PART_ARGS, 0, 0, 0, "it\\\":\\\"c\\\"}", NULL},
    {PART_CALL, 0, 0, 1, "get_time", "call_sim_2"},
    {PART_ARGS, 0, 0, 1, "{\\\"t", NULL},
    {PART_ARGS, 0, 0, 1, "z\\\":\\\"Europe/", NULL},
    {PART_ARGS, 0, 0, 1, "Paris\\\"}", NULL},
    {PART_FINISH, 0, 0, 0, NULL, NULL},
};

/* cut-in-tool: a little text, then a call whose arguments stop halfway; the stream ends there */
static const struct part cut_tool_parts[] = {
    {PART_CONTENT, PART_ROLE, 0, 0, "Let", NULL},
    {PART_CONTENT, 0, 0, 0, " me", NULL},
    {PART_CONTENT, 0, 0, 0, " check.", NULL},
    {PART_CALL, 0, 0, 0, "get_weather", "call_sim_1"},
    {PART_ARGS, 0, 0, 0, "{\\\"ci", NULL},
    {PART_ARGS, 0, 0, 0, "ty\\\":\\\"Par", NULL},
};

static const struct part refusal_parts[] = {
    {PART_EMPTY, PART_ROLE | PART_NULL_CONTENT, 0, 0, NULL, NULL},
    {PART_REFUSAL, 0, 0, 0, "I", NULL},
    {PART_REFUSAL, 0, 0, 0, " can't", NULL},
    {PART_REFUSAL, 0, 0, 0, " help", NULL},
    {PART_REFUSAL, 0, 0, 0, " with", NULL},
    {PART_REFUSAL, 0, 0, 0, " that.", NULL},
    {PART_FINISH, 0, 0, 0, NULL, NULL},
};

/* unicode: "héllo 😀 \"quoted\"\n": raw UTF-8, the emoji as an escaped surrogate pair (whole in
 * one chunk: each chunk is a JSON text of its own, and a lone surrogate escape is not one keel
 * accepts), escapes at a chunk's edges */
static const struct part unicode_parts[] = {
    {PART_EMPTY, PART_ROLE, 0, 0, NULL, NULL},
    {PART_CONTENT, 0, 0, 0, "h\xc3\xa9llo ", NULL},
    {PART_CONTENT, 0, 0, 0, "\\ud83d\\ude00 \\\"quoted\\\"", NULL},
    {PART_CONTENT, 0, 0, 0, "\\n", NULL},
    {PART_FINISH, 0, 0, 0, NULL, NULL},
};

/* json: a JSON object as the content, in pieces (structured output: response_format) */
static const struct part json_parts[] = {
    {PART_EMPTY, PART_ROLE, 0, 0, NULL, NULL},
    {PART_CONTENT, 0, 0, 0, "{\\\"city\\\":", NULL},
    {PART_CONTENT, 0, 0, 0, "\\\"Paris\\\",\\\"unit\\\"", NULL},
    {PART_CONTENT, 0, 0, 0, ":\\\"c\\\"}", NULL},
    {PART_FINISH, 0, 0, 0, NULL, NULL},
};

#define MAX_CHOICES 4
static const char *const thoughts[] = {"Thinking", " it", " over."};
#define NTHOUGHTS (sizeof(thoughts) / sizeof(thoughts[0]))
static const char *const suffixes[MAX_CHOICES] = {"", " (2)", " (3)", " (4)"};
/* rich's parts at most: per choice a role, the thoughts, the words and a suffix, a finish */
#define MAX_PARTS (MAX_CHOICES * (NTHOUGHTS + NWORDS + 3))

/* rich: n (<= MAX_CHOICES) choices of reasoning then content, choice i > 0's content ending in
 * suffixes[i]; the choices take turns word by word. Fills parts (MAX_PARTS) and returns how many. */
static size_t rich_parts(struct part *parts, unsigned n)
{
    size_t np = 0;
    for (unsigned c = 0; c < n; c++)
        parts[np++] = (struct part){.kind = PART_EMPTY, .flags = PART_ROLE, .choice = c};
    for (size_t w = 0; w < NTHOUGHTS; w++)
        for (unsigned c = 0; c < n; c++)
            parts[np++] = (struct part){.kind = PART_REASONING, .choice = c, .text = thoughts[w]};
    for (size_t w = 0; w <= NWORDS; w++)
        for (unsigned c = 0; c < n; c++)
            if (w < NWORDS || c > 0)
                parts[np++] = (struct part){.kind = PART_CONTENT, .choice = c,
                                            .text = w < NWORDS ? words[w] : suffixes[c]};
    for (unsigned c = 0; c < n; c++)
        parts[np++] = (struct part){.kind = PART_FINISH, .choice = c};
    return np;
}

static void respond_error(struct sim_req *sr, int status, const char *message, const char *type, const char *code)
{
    add(sr, ACT_RESPOND, 0, status, error_body(message, type, code));
}

/* An OpenAI 400, its param named. */
static void respond_invalid(struct sim_req *sr, const char *message, const char *param, const char *code)
{
    add(sr, ACT_RESPOND, 0, 400,
        dump(json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", message, "type", "invalid_request_error",
                       "param", param, "code", code)));
}

/* "0.2", ".05", "1" -> parts per million of requests; -1 unless a number in [0, 1] */
static int parse_rate(const char *s, uint64_t *ppm)
{
    uint64_t v = 0, scale = 1000000;
    const char *p = s;
    if (*p == '0' || *p == '1')
        v = (uint64_t)(*p++ - '0') * scale;
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++) {
            scale /= 10;
            v += (uint64_t)(*p - '0') * scale;
        }
    }
    if (p == s || *p != '\0' || v > 1000000)
        return -1;
    *ppm = v;
    return 0;
}

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL; /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* chaos: the fault for this request, a pure function of the seed, the model name (tag included)
 * and how many requests that name has had, so each name's sequence of faults is the same in
 * every run with the same seed, however requests to different names interleave */
static size_t draw_fault(const struct sim *sim, const struct counter *c, uint64_t ppm)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = c->name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    uint64_t r = mix(sim->seed ^ mix(h ^ mix(c->hits)));
    if (r % 1000000 >= ppm)
        return 0;
    return 1 + (size_t)((r >> 32) % (NFAULTS - 1));
}

/* ------------------------------------------------------------------ behaviour names, both APIs */

/* a behaviour's name, "NAME[:PARAM][+sse][#tag]", read */
struct spec {
    char name[128];  /* NAME alone */
    const char *arg; /* PARAM as written (inside name's storage), or NULL */
    uint64_t param;  /* PARAM as a number: ms for delays ("2s" works too), else a count or seconds */
    int has_param;   /* PARAM is such a number */
    int stream;      /* answer with a stream: the request asked for one, or the name says +sse */
};

static void parse_spec(struct spec *sp, const char *as, int stream)
{
    snprintf(sp->name, sizeof(sp->name), "%s", as);
    char *tag = strchr(sp->name, '#'); /* "503#b": same behaviour, a name of its own (counters, breakers) */
    if (tag != NULL)
        *tag = '\0';
    size_t len = strlen(sp->name);
    sp->stream = stream;
    if (len >= 4 && strcmp(sp->name + len - 4, "+sse") == 0) { /* "healthy+sse": streams, whatever asked */
        sp->name[len - 4] = '\0';
        sp->stream = 1;
    }
    char *colon = strchr(sp->name, ':');
    sp->arg = NULL;
    sp->param = 0;
    sp->has_param = 0;
    if (colon != NULL) {
        *colon = '\0';
        sp->arg = colon + 1;
        sp->has_param = keel_parse_uint(sp->arg, &sp->param) == 0 || keel_parse_duration_ms(sp->arg, &sp->param) == 0;
    }
}

/* in the functions below and in both scripts; sp is the struct spec being answered */
#define P(def) (sp->has_param ? sp->param : (uint64_t)(def))
#define IS(s) (strcmp(sp->name, s) == 0)

/* fail-then-heal[:n], rate-limit-then-heal[:n], down-for[:ms]: 1 while the name's first n (2)
 * requests fail, or (down-for) while less than ms (6000) of the loop clock have passed since the
 * name's first request (counted in down_hits); the caller answers its API's error. Else 0, the
 * behaviour turned healthy. */
static int failing(struct sim_req *sr, struct spec *sp)
{
    if (IS("down-for")) {
        if (uv_now(sr->sim->loop) - sr->counter->first_ms < P(6000)) {
            sr->counter->down_hits++;
            return 1;
        }
    } else if (!IS("fail-then-heal") && !IS("rate-limit-then-heal")) {
        return 0;
    } else if (sr->counter->hits <= P(2)) {
        return 1;
    }
    snprintf(sp->name, sizeof(sp->name), "healthy");
    return 0;
}

/* Where prefill's answer begins. Its whole text T is the healthy answer's words for the
 * request's max_tokens (at most MAX_WORDS; the usual five without max_tokens); it goes on from
 * word `from` of T's n words, after `head`, the rest of the word the prefill ends inside (or NULL),
 * so that T's first `skip` bytes, the prefill, are not said again. */
struct resume {
    uint64_t n, from;
    const char *head; /* static (inside words[]) */
    size_t skip;
};

/* r for this request: the prefill continued when honour and the prefill begins T, else T whole */
static void resume_at(const struct sim_req *sr, int honour, struct resume *r)
{
    uint64_t n = sr->asked_tokens == 0 ? NWORDS : sr->asked_tokens < MAX_WORDS ? sr->asked_tokens : MAX_WORDS;
    *r = (struct resume){.n = n};
    if (!honour || sr->prefill == NULL)
        return;
    const char *p = sr->prefill;
    size_t len = sr->prefill_len, at = 0;
    for (uint64_t i = 0; i <= n; i++) {
        const char *w = i < n ? words[i % NWORDS] : "";
        size_t l = strlen(w), left = len - at;
        if (left > l) {
            if (i == n || memcmp(p + at, w, l) != 0)
                return; /* not a prefix: T whole */
            at += l;
            continue;
        }
        if (memcmp(p + at, w, left) != 0)
            return;
        r->from = left == 0 ? i : i + 1;
        r->head = left > 0 && left < l ? w + left : NULL;
        r->skip = len;
        return;
    }
}

/* the healthy family's delays: before the first token (slow-first-token, drift) and between tokens */
static void delays(const struct sim_req *sr, const struct spec *sp, uint64_t *first, uint64_t *gap)
{
    *first = IS("slow-first-token") ? P(2000) : IS("drift") ? P(200) * sr->counter->hits : 0;
    *gap = IS("slow-tokens") ? P(500) : 0;
}

/* 200 and its headers, then the start of a JSON body that never ends */
static void partial_json(struct sim_req *sr, const char *text)
{
    add(sr, ACT_HEAD, 0, 200, NULL);
    add(sr, ACT_WRITE, 0, 0, strdup(text));
}

/* The faults both APIs show alike, all before any answer: hang, reset-before-headers,
 * headers-then-silence, and (keep_alive, a non-stream request) a space every ms (500) forever.
 * 0 if sp is one of them (the script is built), else -1. */
static int early_fault(struct sim_req *sr, const struct spec *sp, int keep_alive)
{
    if (IS("hang")) {
        add(sr, ACT_SILENCE, 0, 0, NULL);
        return 0;
    }
    if (IS("reset-before-headers")) {
        add(sr, ACT_ABORT, 0, 0, NULL);
        return 0;
    }
    if (!IS("headers-then-silence") && !(keep_alive && !sp->stream))
        return -1;
    add(sr, ACT_HEAD, 0, 200, NULL);
    sr->acts[sr->nacts - 1].content_type = sp->stream ? "text/event-stream" : "application/json";
    add(sr, ACT_WRITE, 0, 0, strdup(sp->stream ? ": connected\n\n" : " "));
    if (keep_alive)
        add(sr, ACT_HEARTBEAT, P(500), 0, strdup(" "));
    else
        add(sr, ACT_SILENCE, 0, 0, NULL);
    return 0;
}

/* fail-then-heal and down-for, rate-limit-then-heal while failing: OpenAI's 503 / 429 (retry-after: 1) */
static void respond_failing(struct sim_req *sr, const struct spec *sp)
{
    if (IS("fail-then-heal") || IS("down-for")) {
        respond_error(sr, 503, "The server is temporarily unavailable", "server_error", "service_unavailable");
        return;
    }
    respond_error(sr, 429, "Rate limit reached for requests", "requests", "rate_limit_exceeded");
    sr->acts[sr->nacts - 1].retry_after = 1;
}

/* The error answers every OpenAI endpoint gives alike: 500 502 503 529 429[:s] quota 401 404.
 * 0 if sp is one of them (the answer is scripted), else -1. */
static int openai_error(struct sim_req *sr, const struct spec *sp)
{
    if (IS("500")) {
        respond_error(sr, 500, "Internal server error", "server_error", NULL);
    } else if (IS("502")) {
        add(sr, ACT_RESPOND, 0, 502, strdup("{\"error\":{\"message\":\"Bad gateway\",\"type\":\"api_error\",\"code\":502}}"));
    } else if (IS("503")) {
        respond_error(sr, 503, "The server is overloaded or not ready yet.", "server_error", "service_unavailable");
    } else if (IS("529")) {
        add(sr, ACT_RESPOND, 0, 529, strdup("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"));
    } else if (IS("429")) {
        respond_error(sr, 429, "Rate limit reached for requests", "requests", "rate_limit_exceeded");
        sr->acts[sr->nacts - 1].retry_after = P(1) ? P(1) : 1; /* seconds */
    } else if (IS("quota")) {
        respond_error(sr, 429, "You exceeded your current quota, please check your plan and billing details",
                      "insufficient_quota", "insufficient_quota");
    } else if (IS("401")) {
        respond_error(sr, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key");
    } else if (IS("404")) {
        respond_error(sr, 404, "The model does not exist", "invalid_request_error", "model_not_found");
    } else {
        return -1;
    }
    return 0;
}

static int script(struct sim_req *sr, const char *as, const char *model, int stream, int usage, const char *body,
                  size_t body_len);

/* chaos[:rate]: with probability rate (0.2) one fault drawn uniformly from faults[], else healthy
 * with the request's max_tokens words; each answer has an id of its own (chatcmpl-sim-N) */
static int chaos(struct sim_req *sr, const char *rate, const char *model, int stream, int usage)
{
    uint64_t ppm = 200000;
    if (rate != NULL && parse_rate(rate, &ppm) != 0)
        return -1;
    size_t f = draw_fault(sr->sim, sr->counter, ppm);
    sr->counter->is_chaos = 1;
    sr->counter->chaos[f]++;
    sr->fault = faults[f];
    snprintf(sr->cid, sizeof(sr->cid), "chatcmpl-sim-%llu", (unsigned long long)++sr->sim->chaoses);
    if (f != 0)
        return script(sr, faults[f], model, stream, usage, "", 0);
    sr->tokens = sr->asked_tokens > MAX_TOKENS ? MAX_TOKENS : sr->asked_tokens;
    return script(sr, "healthy", model, stream, usage, "", 0);
}

/* Builds the script for one request: `as` names the behaviour ("NAME[:PARAM][+sse][#tag]"), `model` is
 * the name the answer carries (the one asked for; chaos passes the behaviour it drew as `as`).
 * Returns 0, or -1 for an unknown behaviour. */
static int script(struct sim_req *sr, const char *as, const char *model, int stream, int usage, const char *body,
                  size_t body_len)
{
    struct spec spec, *sp = &spec;
    parse_spec(sp, as, stream);
    stream = sp->stream;
    if (IS("chaos"))
        return chaos(sr, sp->arg, model, stream, usage);
    if (failing(sr, sp)) {
        respond_failing(sr, sp);
        return 0;
    }
    if (early_fault(sr, sp, IS("heartbeat-only")) == 0)
        return 0;
    if (openai_error(sr, sp) == 0)
        return 0;
    if (IS("prefill-reject")) {
        if (sr->prefill != NULL) {
            respond_invalid(sr,
                            "Invalid value for 'messages': assistant prefill is not supported by this model; "
                            "the last message must not be the assistant's.",
                            "messages", "invalid_value");
            return 0;
        }
        snprintf(sp->name, sizeof(sp->name), "healthy");
    }
    if (IS("prefill")) {
        /* prefill:vllm continues the final message only when the body asks vLLM to */
        if (sp->arg != NULL && strcmp(sp->arg, "vllm") != 0)
            return -1;
        struct resume r;
        resume_at(sr, sp->arg == NULL || sr->vllm_continue, &r);
        sr->tokens = r.n;
        if (!stream) {
            add(sr, ACT_RESPOND, 0, 200, completion_words(sr, model, r.n, r.skip));
            return 0;
        }
        stream_head(sr, model);
        if (r.head != NULL)
            add(sr, ACT_WRITE, 0, 0, chunk(sr, model, r.head, NULL, NULL));
        healthy_tail(sr, model, r.from, 0, 0, usage, 1);
        return 0;
    }
    if (IS("cut-in-tool") && stream) {
        /* text, half a call's arguments, then a clean end: no finish reason, no [DONE] */
        struct answer a = plain;
        a.finish = "tool_calls";
        stream_start(sr);
        for (size_t i = 0; i < sizeof(cut_tool_parts) / sizeof(cut_tool_parts[0]); i++)
            add(sr, ACT_WRITE, 0, 0, part_chunk(sr, model, &a, &cut_tool_parts[i]));
        add(sr, ACT_END, 0, 0, NULL);
        return 0;
    }
    if (IS("healthy") || IS("slow-first-token") || IS("slow-tokens") || IS("no-done") || IS("drift")) {
        uint64_t first, gap;
        delays(sr, sp, &first, &gap);
        if (!stream) {
            uint64_t n = sr->tokens ? sr->tokens : NWORDS;
            add(sr, ACT_RESPOND, first + gap * NWORDS, 200, completion_words(sr, model, n, 0));
            return 0;
        }
        stream_head(sr, model);
        healthy_tail(sr, model, 0, first, gap, usage, !IS("no-done"));
        return 0;
    }
    if (IS("big-stream")) {
        /* n (1000) chunks of 1000 characters, written as fast as the client reads */
        char word[1001];
        memset(word, 'x', 1000);
        word[1000] = '\0';
        if (!stream) {
            add(sr, ACT_RESPOND, 0, 200, completion(sr, model, word));
            return 0;
        }
        stream_head(sr, model);
        add(sr, ACT_WRITE, 0, 0, chunk(sr, model, word, NULL, NULL));
        sr->acts[sr->nacts - 1].repeat = P(1000);
        healthy_tail(sr, model, NWORDS, 0, 0, usage, 1);
        return 0;
    }
    if (IS("tools") || IS("cut-in-tool") || IS("refusal") || IS("unicode") || IS("rich") || IS("json")) {
        struct part parts[MAX_PARTS];
        struct answer a = plain;
        if (IS("tools") && sp->arg != NULL && strcmp(sp->arg, "seq") == 0) {
            a.parts = tool_parts_seq;
            a.nparts = sizeof(tool_parts_seq) / sizeof(tool_parts_seq[0]);
            a.finish = "tool_calls";
        } else if (IS("tools") || IS("cut-in-tool")) { /* cut-in-tool: a non-stream request */
            a.parts = tool_parts;
            a.nparts = sizeof(tool_parts) / sizeof(tool_parts[0]);
            a.finish = "tool_calls";
        } else if (IS("refusal")) {
            a.parts = refusal_parts;
            a.nparts = sizeof(refusal_parts) / sizeof(refusal_parts[0]);
        } else if (IS("json")) {
            a.parts = json_parts;
            a.nparts = sizeof(json_parts) / sizeof(json_parts[0]);
        } else if (IS("unicode")) {
            a.parts = unicode_parts;
            a.nparts = sizeof(unicode_parts) / sizeof(unicode_parts[0]);
        } else {
            a.parts = parts;
            a.nparts = rich_parts(parts, sr->choices);
            a.nchoices = sr->choices;
            a.fingerprint = "fp_sim";
            a.logprobs = sr->logprobs;
            a.tokens = a.nparts - 2 * sr->choices; /* every word: all parts but the roles and finishes */
        }
        answer(sr, model, &a, stream, usage);
        return 0;
    }
    if (IS("echo")) {
        /* the answer's content is the request body exactly as it arrived */
        char *raw = strndup(body, body_len);
        add(sr, ACT_RESPOND, 0, 200, completion(sr, model, raw ? raw : ""));
        free(raw);
        return 0;
    }
    if (IS("ticks") && stream) {
        stream_head(sr, model);
        add(sr, ACT_TICK, P(500), 0, NULL);
        return 0;
    }
    if (IS("heartbeat-only")) { /* a stream: early_fault() answered the others */
        stream_start(sr);
        add(sr, ACT_WRITE, 0, 0, strdup(": connected\n\n"));
        add(sr, ACT_WRITE, 0, 0, chunk(sr, model, NULL, "assistant", NULL));
        add(sr, ACT_WRITE, 0, 0, chunk(sr, model, "", NULL, NULL));
        add(sr, ACT_HEARTBEAT, P(500), 0, strdup(": keep-alive\n\n"));
        return 0;
    }
    if (IS("cut-after") && stream) {
        /* n tokens (at most MAX_WORDS), the healthy answer's first n, then the response ends
         * cleanly: no finish reason, no [DONE] */
        stream_head(sr, model);
        chunk_words(sr, model, 0, P(2) < MAX_WORDS ? P(2) : MAX_WORDS, 0, 0);
        add(sr, ACT_END, 0, 0, NULL);
        return 0;
    }
    if (IS("stall-after")) {
        if (!stream) {
            partial_json(sr, "{\"id\":\"chatcmpl-sim\",");
            add(sr, ACT_SILENCE, 0, 0, NULL);
            return 0;
        }
        stream_head(sr, model);
        chunk_words(sr, model, 0, P(3) < MAX_WORDS ? P(3) : MAX_WORDS, 0, 0);
        add(sr, ACT_SILENCE, 0, 0, NULL);
        return 0;
    }
    if (IS("400")) {
        respond_error(sr, 400, "Invalid value for 'messages': expected an array", "invalid_request_error",
                      "invalid_value");
    } else if (IS("context-length")) {
        respond_error(sr, 400, "This model's maximum context length is 8192 tokens", "invalid_request_error",
                      "context_length_exceeded");
    } else if (IS("content-policy")) {
        respond_error(sr, 400, "Your request was rejected by the safety system", "invalid_request_error",
                      "content_policy_violation");
    } else if (IS("empty-choices")) {
        if (!stream) {
            add(sr, ACT_RESPOND, 0, 200, strdup("{\"id\":\"chatcmpl-sim\",\"object\":\"chat.completion\",\"choices\":[]}"));
            return 0;
        }
        stream_head(sr, model);
        add(sr, ACT_WRITE, 0, 0, chunk(sr, model, NULL, NULL, "stop"));
        add(sr, ACT_WRITE, 0, 0, strdup("data: [DONE]\n\n"));
        add(sr, ACT_END, 0, 0, NULL);
    } else if (IS("error-before-content") || IS("error-after-content")) {
        char *err = error_body("INTERNAL_ERROR: upstream model crashed", "server_error", "internal_error");
        if (!stream) {
            add(sr, ACT_RESPOND, 0, 200, err);
            return 0;
        }
        stream_head(sr, model);
        if (IS("error-after-content")) {
            add(sr, ACT_WRITE, 0, 0, chunk(sr, model, words[0], NULL, NULL));
            add(sr, ACT_WRITE, 0, 0, chunk(sr, model, words[1], NULL, NULL));
        }
        add(sr, ACT_WRITE, 0, 0, sse(err));
        add(sr, ACT_END, 0, 0, NULL);
    } else if (IS("malformed-chunk")) {
        if (!stream) {
            add(sr, ACT_RESPOND, 0, 200, strdup("{\"id\":\"chatcmpl-sim\",\"choices\":[{\"message\":"));
            return 0;
        }
        stream_head(sr, model);
        add(sr, ACT_WRITE, 0, 0, chunk(sr, model, words[0], NULL, NULL));
        add(sr, ACT_WRITE, 0, 0, strdup("data: {\"choices\":[{\"delta\":{\"content\":\n\n"));
        healthy_tail(sr, model, 1, 0, 0, usage, 1);
    } else if (IS("reset-mid-stream")) {
        if (stream) {
            stream_head(sr, model);
            add(sr, ACT_WRITE, 0, 0, chunk(sr, model, words[0], NULL, NULL));
            add(sr, ACT_WRITE, 0, 0, chunk(sr, model, words[1], NULL, NULL));
        } else {
            partial_json(sr, "{\"id\":\"chatcmpl-sim\",\"object\":");
        }
        add(sr, ACT_ABORT, 50, 0, NULL);
    } else {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ answers, in Anthropic's shapes */

/* A Messages answer is its content blocks in order, each the fragments its deltas carry. The
 * whole (non-stream) answer joins each block's fragments; a stream sends them one delta each,
 * block after block, so joining a stream's deltas gives the whole answer back byte for byte. */
enum block_kind {
    BLOCK_TEXT,     /* fragments: text */
    BLOCK_THINKING, /* fragments: thinking; then its signature */
    BLOCK_TOOL_USE, /* fragments: the input's JSON text, cut anywhere */
};

static const struct {
    const char *type;  /* the block's type */
    const char *field; /* the key its fragments join into */
    const char *empty; /* that key's value in content_block_start */
    const char *delta; /* a delta's type */
    const char *key;   /* a delta's key for its fragment */
} kinds[] = {
    [BLOCK_TEXT] = {"text", "text", "\"\"", "text_delta", "text"},
    [BLOCK_THINKING] = {"thinking", "thinking", "\"\"", "thinking_delta", "thinking"},
    [BLOCK_TOOL_USE] = {"tool_use", "input", "{}", "input_json_delta", "partial_json"},
};

struct block {
    enum block_kind kind;
    const char *const *frags; /* raw UTF-8, each whole characters; static or the builder's caller's */
    size_t nfrags;
    const char *id;   /* BLOCK_TOOL_USE: the tool_use id; needs no escaping, as name and signature */
    const char *name; /* BLOCK_TOOL_USE: the tool's name */
    const char *signature; /* BLOCK_THINKING */
};

struct message {
    const struct block *blocks; /* the caller's, read only while a builder runs */
    size_t nblocks;
    const char *stop_reason; /* NULL: null (message_start's message) */
    uint64_t tokens;         /* usage.output_tokens */
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define FRAGS(a) (a), COUNT(a) /* a block's frags and nfrags */

static const struct block hello_blocks[] = {{BLOCK_TEXT, FRAGS(words)}};
/* the usual answer: 4 output tokens for its five words, as completion_tokens on the OpenAI side */
static const struct message hello = {hello_blocks, 1, "end_turn", 4};

static const char *const check_words[] = {"Let", " me", " check."};
static const char *const weather_input[] = {"{\"ci", "ty\":\"Par", "is\",\"un", "it\":\"c\"}"};
static const char *const time_input[] = {"{\"t", "z\":\"Europe/", "Paris\"}"};
static const struct block tool_blocks[] = {
    {BLOCK_TEXT, FRAGS(check_words)},
    {BLOCK_TOOL_USE, FRAGS(weather_input), "toolu_sim_1", "get_weather"},
    {BLOCK_TOOL_USE, FRAGS(time_input), "toolu_sim_2", "get_time"},
};
static const struct message tools_message = {tool_blocks, COUNT(tool_blocks), "tool_use",
                                             COUNT(check_words) + COUNT(weather_input) + COUNT(time_input)};

static const struct block thinking_blocks[] = {
    {BLOCK_THINKING, FRAGS(thoughts), NULL, NULL, "sig_sim"},
    {BLOCK_TEXT, FRAGS(words)},
};
static const struct message thinking_message = {thinking_blocks, COUNT(thinking_blocks), "end_turn",
                                                NTHOUGHTS + NWORDS};

static const struct message empty_message = {NULL, 0, "end_turn", 0};

/* message_start's message: no content yet, one output token */
static const struct message opening = {NULL, 0, NULL, 1};

/* the text of an SSE event named type whose data, a JSON object, opens with "type":type and
 * goes on with fmt's text (which closes the object); heap, the caller frees it; or NULL */
static char *event(const char *type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *event(const char *type, const char *fmt, ...)
{
    char *s = NULL;
    size_t len;
    FILE *f = open_memstream(&s, &len);
    if (f == NULL)
        return NULL;
    fprintf(f, "event: %s\ndata: {\"type\":\"%s\"", type, type);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputs("\n\n", f);
    return closed(f, &s);
}

/* n fragments (raw UTF-8) joined as one JSON string, escaped fragment by fragment: each is whole
 * characters, so as if joined first */
static void put_text(FILE *f, const char *const *frags, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        char *e = escape(frags[i]);
        fputs(e ? e : "", f);
        free(e);
    }
    fputc('"', f);
}

/* a block's fragments joined as its field's value: the input's JSON text as is, else a string */
static void put_frags(FILE *f, const struct block *b)
{
    if (b->kind == BLOCK_TOOL_USE) {
        for (size_t i = 0; i < b->nfrags; i++)
            fputs(b->frags[i], f);
        return;
    }
    put_text(f, b->frags, b->nfrags);
}

/* a content block: whole, or as content_block_start opens it (its field empty) */
static void put_block(FILE *f, const struct block *b, int whole)
{
    fprintf(f, "{\"type\":\"%s\"", kinds[b->kind].type);
    if (b->kind == BLOCK_TOOL_USE)
        fprintf(f, ",\"id\":\"%s\",\"name\":\"%s\"", b->id, b->name);
    fprintf(f, ",\"%s\":", kinds[b->kind].field);
    if (whole)
        put_frags(f, b);
    else
        fputs(kinds[b->kind].empty, f);
    if (b->kind == BLOCK_THINKING)
        fprintf(f, ",\"signature\":\"%s\"", whole ? b->signature : "");
    fputc('}', f);
}

static void put_message(FILE *f, const char *model, const struct message *m)
{
    fputs("{\"id\":\"msg_sim\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", f);
    put_string(f, model);
    fputs(",\"content\":[", f);
    for (size_t i = 0; i < m->nblocks; i++) {
        if (i > 0)
            fputc(',', f);
        put_block(f, &m->blocks[i], 1);
    }
    if (m->stop_reason != NULL)
        fprintf(f, "],\"stop_reason\":\"%s\"", m->stop_reason);
    else
        fputs("],\"stop_reason\":null", f);
    fprintf(f, ",\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":%llu}}",
            (unsigned long long)m->tokens);
}

/* the whole answer, a message (heap, the caller frees it) */
static char *message_whole(const char *model, const struct message *m)
{
    char *s = NULL;
    size_t len;
    FILE *f = open_memstream(&s, &len);
    if (f == NULL)
        return NULL;
    put_message(f, model, m);
    return closed(f, &s);
}

/* the message_start event (heap) */
static char *message_start(const char *model)
{
    char *s = NULL;
    size_t len;
    FILE *f = open_memstream(&s, &len);
    if (f == NULL)
        return NULL;
    fputs("event: message_start\ndata: {\"type\":\"message_start\",\"message\":", f);
    put_message(f, model, &opening);
    fputs("}\n\n", f);
    return closed(f, &s);
}

static char *block_start(const struct block *b, size_t index)
{
    char *s = NULL;
    size_t len;
    FILE *f = open_memstream(&s, &len);
    if (f == NULL)
        return NULL;
    fprintf(f, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":%zu,\"content_block\":",
            index);
    put_block(f, b, 0);
    fputs("}\n\n", f);
    return closed(f, &s);
}

/* a content_block_delta of that type carrying text (raw) under key */
static char *block_delta(size_t index, const char *type, const char *key, const char *text)
{
    char *e = escape(text);
    char *s = event("content_block_delta", ",\"index\":%zu,\"delta\":{\"type\":\"%s\",\"%s\":\"%s\"}}", index, type,
                    key, e ? e : "");
    free(e);
    return s;
}

static char *anthropic_error(const char *type, const char *message)
{
    return dump(json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type, "message", message));
}

static void respond_anthropic(struct sim_req *sr, int status, const char *type, const char *message)
{
    add(sr, ACT_RESPOND, 0, status, anthropic_error(type, message));
}

/* the stream's head: its headers and message_start */
static void message_head(struct sim_req *sr, const char *model)
{
    stream_start(sr);
    add(sr, ACT_WRITE, 0, 0, message_start(model));
}

/* m streamed: message_start, a ping, each block's start, deltas and stop, message_delta,
 * message_stop; the first delta `first` ms late, each later one `gap` ms after the one before.
 * After `cut` deltas (fewer than m has) it stops at once, for the caller to end the script. */
static void message_stream(struct sim_req *sr, const char *model, const struct message *m, uint64_t first,
                           uint64_t gap, uint64_t cut)
{
    uint64_t sent = 0;
    message_head(sr, model);
    add(sr, ACT_WRITE, 0, 0, event("ping", "}"));
    for (size_t i = 0; i < m->nblocks; i++) {
        const struct block *b = &m->blocks[i];
        add(sr, ACT_WRITE, 0, 0, block_start(b, i));
        for (size_t k = 0; k < b->nfrags && sent < cut; k++, sent++)
            add(sr, ACT_WRITE, sent == 0 ? first : gap, 0,
                block_delta(i, kinds[b->kind].delta, kinds[b->kind].key, b->frags[k]));
        if (sent == cut)
            return;
        if (b->kind == BLOCK_THINKING)
            add(sr, ACT_WRITE, 0, 0, block_delta(i, "signature_delta", "signature", b->signature));
        add(sr, ACT_WRITE, 0, 0, event("content_block_stop", ",\"index\":%zu}", i));
    }
    add(sr, ACT_WRITE, 0, 0,
        event("message_delta",
              ",\"delta\":{\"stop_reason\":\"%s\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":%llu}}",
              m->stop_reason, (unsigned long long)m->tokens));
    add(sr, ACT_WRITE, 0, 0, event("message_stop", "}"));
    add(sr, ACT_END, 0, 0, NULL);
}

/* how message_words() ends a stream */
enum stream_end {
    ENDS_DONE,  /* content_block_stop, message_delta, message_stop: the whole answer */
    ENDS_CUT,   /* right after the last delta, cleanly: none of those */
    ENDS_STALL, /* right after the last delta: silence until the client leaves */
};

/* An n-word text (words[i % NWORDS], i < n) streamed from word `from` on, after a first delta
 * `head` (the rest of a word a prefill ended inside; NULL: none): message_start, a ping, the text
 * block's start, one text_delta per word (more than TOKEN_WRITES words go out in TOKEN_WRITES
 * writes of many deltas), then as `end` says; message_delta carries `tokens`. */
static void message_words(struct sim_req *sr, const char *model, const char *head, uint64_t from, uint64_t n,
                          uint64_t tokens, enum stream_end end)
{
    static const struct block text = {BLOCK_TEXT, NULL, 0};
    char *one[NWORDS]; /* each word's delta, built once */
    message_head(sr, model);
    add(sr, ACT_WRITE, 0, 0, event("ping", "}"));
    add(sr, ACT_WRITE, 0, 0, block_start(&text, 0));
    if (head != NULL)
        add(sr, ACT_WRITE, 0, 0, block_delta(0, "text_delta", "text", head));
    for (size_t k = 0; k < NWORDS; k++)
        one[k] = block_delta(0, "text_delta", "text", words[k]);
    word_writes(sr, one, from, n, 0, 0);
    free_words(one);
    if (end != ENDS_DONE) {
        add(sr, end == ENDS_CUT ? ACT_END : ACT_SILENCE, 0, 0, NULL);
        return;
    }
    add(sr, ACT_WRITE, 0, 0, event("content_block_stop", ",\"index\":0}"));
    add(sr, ACT_WRITE, 0, 0,
        event("message_delta",
              ",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":%llu}}",
              (unsigned long long)tokens));
    add(sr, ACT_WRITE, 0, 0, event("message_stop", "}"));
    add(sr, ACT_END, 0, 0, NULL);
}

/* m streamed or whole; the whole answer waits as long as its stream would take */
static void message_answer(struct sim_req *sr, const char *model, const struct message *m, int stream,
                           uint64_t first, uint64_t gap)
{
    if (stream) {
        message_stream(sr, model, m, first, gap, UINT64_MAX);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->nblocks; i++)
        n += m->blocks[i].nfrags;
    add(sr, ACT_RESPOND, first + gap * n, 200, message_whole(model, m));
}

/* the errors answered at once, Anthropic's status, type and message for each name */
static const struct {
    const char *name, *type, *message;
    int status;
} anthropic_errors[] = {
    {"529", "overloaded_error", "Overloaded", 529},
    {"429", "rate_limit_error", "Number of requests has exceeded your per-minute rate limit", 429},
    {"500", "api_error", "Internal server error", 500},
    {"401", "authentication_error", "invalid x-api-key", 401},
    {"403", "permission_error", "Your API key does not have permission to use the specified resource.", 403},
    {"400", "invalid_request_error", "messages: roles must alternate between \"user\" and \"assistant\"", 400},
    {"prompt-too-long", "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum", 400},
};

/* answers the error of that name (an anthropic_errors[] entry): 0, or -1 for no such name */
static int respond_named(struct sim_req *sr, const char *name)
{
    for (size_t i = 0; i < COUNT(anthropic_errors); i++) {
        if (strcmp(anthropic_errors[i].name, name) != 0)
            continue;
        respond_anthropic(sr, anthropic_errors[i].status, anthropic_errors[i].type, anthropic_errors[i].message);
        return 0;
    }
    return -1;
}

/* Builds the script for one POST /v1/messages: model names the behaviour as script() reads it and
 * is the name the answer carries; body is the request's. Returns 0, or -1 for an unknown name. */
static int script_messages(struct sim_req *sr, const char *model, int stream, const char *body, size_t body_len)
{
    struct spec spec, *sp = &spec;
    parse_spec(sp, model, stream);
    stream = sp->stream;
    if (failing(sr, sp)) {
        respond_named(sr, IS("rate-limit-then-heal") ? "429" : "529");
        if (IS("rate-limit-then-heal"))
            sr->acts[sr->nacts - 1].retry_after = 1;
        return 0;
    }
    if (early_fault(sr, sp, IS("pings-only") || IS("heartbeat-only")) == 0)
        return 0;
    if (respond_named(sr, sp->name) == 0) {
        if (IS("429"))
            sr->acts[sr->nacts - 1].retry_after = P(1) ? P(1) : 1; /* seconds */
        return 0;
    }
    if (IS("prefill-reject")) {
        if (sr->prefill != NULL) {
            respond_anthropic(sr, 400, "invalid_request_error",
                              "assistant prefill is not supported by this model: the conversation must end with "
                              "a user message");
            return 0;
        }
        snprintf(sp->name, sizeof(sp->name), "healthy");
    }
    if (IS("prefill")) {
        /* the Messages API has no switch for it: prefill:vllm is prefill here */
        if (sp->arg != NULL && strcmp(sp->arg, "vllm") != 0)
            return -1;
        struct resume r;
        resume_at(sr, 1, &r);
        if (stream) {
            message_words(sr, model, r.head, r.from, r.n, hello.tokens, ENDS_DONE);
            return 0;
        }
        char *text = words_text(r.n, r.skip);
        const char *frags[] = {text ? text : ""};
        struct block b = {BLOCK_TEXT, FRAGS(frags)};
        struct message m = {&b, 1, "end_turn", hello.tokens};
        message_answer(sr, model, &m, 0, 0, 0);
        free(text);
        return 0;
    }
    if (IS("cut-in-tool") && stream) {
        /* the text block, then the first call's input cut halfway: a clean end, no
         * content_block_stop, message_delta or message_stop */
        message_stream(sr, model, &tools_message, 0, 0, COUNT(check_words) + COUNT(weather_input) / 2);
        add(sr, ACT_END, 0, 0, NULL);
        return 0;
    }
    if (IS("healthy") || IS("slow-first-token") || IS("slow-tokens") || IS("drift")) {
        uint64_t first, gap;
        delays(sr, sp, &first, &gap);
        message_answer(sr, model, &hello, stream, first, gap);
        return 0;
    }
    /* cut-in-tool: a non-stream request (a stream is above) */
    const struct message *fixed = IS("tools") || IS("cut-in-tool") ? &tools_message
                                : IS("thinking")                    ? &thinking_message
                                : IS("empty")                       ? &empty_message
                                                                    : NULL;
    if (fixed != NULL) {
        message_answer(sr, model, fixed, stream, 0, 0);
        return 0;
    }
    if (IS("echo")) {
        /* the text is the request body exactly as it arrived, one delta in a stream */
        char *raw = strndup(body, body_len);
        const char *frags[] = {raw ? raw : ""};
        struct block b = {BLOCK_TEXT, FRAGS(frags)};
        struct message m = {&b, 1, "end_turn", 1};
        message_answer(sr, model, &m, stream, 0, 0);
        free(raw);
        return 0;
    }
    if (IS("pings-only") || IS("heartbeat-only")) { /* a stream: early_fault() answered the others */
        message_head(sr, model);
        add(sr, ACT_HEARTBEAT, P(500), 0, event("ping", "}"));
        return 0;
    }
    if ((IS("stall-after") || IS("cut-after")) && stream) {
        /* n (3; cut-after 2; at most MAX_WORDS) text deltas, the healthy text's first n words, then
         * silence, or a clean end: no content_block_stop, message_delta or message_stop */
        uint64_t n = P(IS("cut-after") ? 2 : 3);
        message_words(sr, model, NULL, 0, n < MAX_WORDS ? n : MAX_WORDS, 0, IS("cut-after") ? ENDS_CUT : ENDS_STALL);
        return 0;
    }
    if (IS("stall-after")) { /* a non-stream request (a stream is above) */
        partial_json(sr, "{\"id\":\"msg_sim\",");
        add(sr, ACT_SILENCE, 0, 0, NULL);
        return 0;
    }
    if (IS("reset-mid-stream")) {
        if (stream)
            message_stream(sr, model, &hello, 0, 0, 2);
        else
            partial_json(sr, "{\"id\":\"msg_sim\",\"type\":");
        add(sr, ACT_ABORT, 50, 0, NULL);
        return 0;
    }
    if (IS("error-before-content") || IS("error-after-content")) {
        if (!stream)
            return respond_named(sr, "529");
        if (IS("error-after-content"))
            message_stream(sr, model, &hello, 0, 0, 2);
        else
            message_head(sr, model);
        add(sr, ACT_WRITE, 0, 0,
            event("error", ",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"));
        add(sr, ACT_END, 0, 0, NULL);
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------ embeddings, in OpenAI's shapes */

#define MAX_INPUTS 2048     /* inputs in one request, OpenAI's own cap */
#define MAX_DIMENSIONS 4096 /* a vector's length: the request's dimensions, at most this */
#define DIMENSIONS 8        /* without dimensions in the request */

/* one POST /v1/embeddings, read and checked */
struct embed_req {
    json_t *input;     /* the request's input: one input itself (one), or the array of them; the body's */
    int one;           /* input is a single string or token array */
    size_t n;          /* inputs: 1 if one, else input's length, 1 to MAX_INPUTS */
    unsigned dims;     /* each vector's length, 1 to MAX_DIMENSIONS */
    int base64;        /* encoding_format "base64": each vector as its little-endian float32s in base64 */
    uint64_t tokens;   /* usage: whitespace-separated words of the strings, plus the tokens of the arrays */
};

static json_t *embed_input(const struct embed_req *er, size_t i)
{
    return er->one ? er->input : json_array_get(er->input, i);
}

/* a token array: non-empty, integers >= 0 only */
static int is_tokens(json_t *a)
{
    size_t i;
    json_t *t;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return 0;
    json_array_foreach(a, i, t)
        if (!json_is_integer(t) || json_integer_value(t) < 0)
            return 0;
    return 1;
}

static uint64_t words_in(const char *s)
{
    uint64_t n = 0;
    for (int in = 0; *s != '\0'; s++) {
        int space = strchr(" \t\n\r\f\v", *s) != NULL;
        n += !space && !in;
        in = !space;
    }
    return n;
}

/* Reads body's input, dimensions and encoding_format into er as the real API takes them: input a
 * string, an array of strings, a token array or an array of token arrays, none of them empty.
 * 0, or -1 with the 400 it gets scripted. */
static int embed_read(struct sim_req *sr, json_t *body, struct embed_req *er)
{
    json_t *input = json_object_get(body, "input"), *dims = json_object_get(body, "dimensions");
    json_t *format = json_object_get(body, "encoding_format");
    *er = (struct embed_req){.input = input, .dims = DIMENSIONS};
    if (input == NULL) {
        respond_invalid(sr, "Missing required parameter: 'input'.", "input", "missing_required_parameter");
        return -1;
    }
    er->one = json_is_string(input) || is_tokens(input);
    er->n = er->one ? 1 : json_is_array(input) ? json_array_size(input) : 0;
    int ok = er->n > 0 && er->n <= MAX_INPUTS, text = json_is_string(embed_input(er, 0));
    for (size_t i = 0; ok && i < er->n; i++) { /* all strings, or all token arrays */
        json_t *in = embed_input(er, i);
        ok = text ? json_is_string(in) && json_string_length(in) > 0 : is_tokens(in);
        if (ok)
            er->tokens += text ? words_in(json_string_value(in)) : json_array_size(in);
    }
    if (!ok) {
        respond_invalid(sr,
                        "Invalid value for 'input': expected a non-empty string, an array of them (at most 2048), "
                        "an array of integers, or an array of such arrays.",
                        "input", "invalid_value");
        return -1;
    }
    if (dims != NULL && !json_is_null(dims)) {
        json_int_t d = json_integer_value(dims);
        if (!json_is_integer(dims) || d < 1 || d > MAX_DIMENSIONS) {
            respond_invalid(sr, "Invalid value for 'dimensions': expected an integer from 1 to 4096.", "dimensions",
                            "invalid_value");
            return -1;
        }
        er->dims = (unsigned)d;
    }
    const char *f = json_string_value(format);
    int absent = format == NULL || json_is_null(format);
    if (!absent && (f == NULL || (strcmp(f, "float") != 0 && strcmp(f, "base64") != 0))) {
        respond_invalid(sr, "Invalid value for 'encoding_format': expected 'float' or 'base64'.", "encoding_format",
                        "invalid_value");
        return -1;
    }
    er->base64 = f != NULL && strcmp(f, "base64") == 0;
    return 0;
}

/* The input's vector, dims floats into v: a pure function of the input (its text, or its tokens)
 * and dims, each component drawn in [-1, 1] from a hash of the input, then scaled to unit length.
 * One input's vector in two lengths: the shorter is the longer's first components, rescaled. */
static void embed_vector(json_t *in, unsigned dims, float *v)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the text, or splitmix over the tokens */
    if (json_is_string(in)) {
        const unsigned char *p = (const unsigned char *)json_string_value(in);
        for (size_t i = 0; i < json_string_length(in); i++)
            h = (h ^ p[i]) * 1099511628211ULL;
    } else {
        size_t i;
        json_t *t;
        h = mix(h ^ 't');
        json_array_foreach(in, i, t)
            h = mix(h ^ (uint64_t)json_integer_value(t));
    }
    double norm = 0, d[MAX_DIMENSIONS];
    for (unsigned k = 0; k < dims; k++) {
        d[k] = (double)(mix(h ^ mix(k)) >> 11) * 0x1.0p-53 * 2 - 1;
        norm += d[k] * d[k];
    }
    norm = norm > 0 ? 1 / sqrt(norm) : 0;
    for (unsigned k = 0; k < dims; k++)
        v[k] = (float)(d[k] * norm);
}

/* v's dims floats as little-endian float32s in base64 (what the openai SDKs ask for and decode) */
static json_t *base64_floats(const float *v, unsigned dims)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = (size_t)dims * 4;
    unsigned char raw[MAX_DIMENSIONS * 4];
    char out[(MAX_DIMENSIONS * 4 + 2) / 3 * 4 + 1], *o = out;
    for (unsigned k = 0; k < dims; k++) {
        uint32_t u;
        memcpy(&u, &v[k], 4);
        for (unsigned b = 0; b < 4; b++)
            raw[4 * k + b] = (unsigned char)(u >> (8 * b));
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)raw[i] << 16 | (i + 1 < n ? (uint32_t)raw[i + 1] << 8 : 0) |
                     (i + 2 < n ? raw[i + 2] : 0);
        *o++ = abc[w >> 18];
        *o++ = abc[(w >> 12) & 63];
        *o++ = i + 1 < n ? abc[(w >> 6) & 63] : '=';
        *o++ = i + 2 < n ? abc[w & 63] : '=';
    }
    return json_stringn(out, (size_t)(o - out));
}

/* the answer, OpenAI's keys in OpenAI's order: a list of one embedding per input, in input order
 * (none if empty), the model as asked, usage; NULL if out of memory */
static char *embed_answer(const struct embed_req *er, const char *model, int empty)
{
    json_t *data = json_array();
    float v[MAX_DIMENSIONS];
    for (size_t i = 0; !empty && data != NULL && i < er->n; i++) {
        embed_vector(embed_input(er, i), er->dims, v);
        json_t *e = NULL;
        if (er->base64) {
            e = base64_floats(v, er->dims);
        } else {
            e = json_array();
            for (unsigned k = 0; e != NULL && k < er->dims; k++)
                json_array_append_new(e, json_real(v[k]));
        }
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index", (json_int_t)i,
                                               "embedding", e));
    }
    return dump(json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data, "model", model, "usage",
                          "prompt_tokens", (json_int_t)er->tokens, "total_tokens", (json_int_t)er->tokens));
}

/* Builds the script for one POST /v1/embeddings: model names the behaviour as script() reads it
 * ("+sse" means nothing here) and is the name the answer carries. Returns 0, or -1 for an unknown
 * name. */
static int script_embeddings(struct sim_req *sr, const char *model, const struct embed_req *er)
{
    struct spec spec, *sp = &spec;
    parse_spec(sp, model, 0);
    sp->stream = 0;
    if (failing(sr, sp)) {
        respond_failing(sr, sp);
        return 0;
    }
    if (early_fault(sr, sp, 0) == 0 || openai_error(sr, sp) == 0)
        return 0;
    if (IS("healthy") || IS("slow-first-token") || IS("empty")) {
        add(sr, ACT_RESPOND, IS("slow-first-token") ? P(2000) : 0, 200, embed_answer(er, model, IS("empty")));
        return 0;
    }
    if (IS("400")) {
        respond_invalid(sr, "'$.input' is invalid. Please check the API reference: "
                            "https://platform.openai.com/docs/api-reference.", NULL, NULL);
        return 0;
    }
    if (IS("403")) {
        respond_error(sr, 403, "Project does not have access to this model", "invalid_request_error",
                      "model_not_found");
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------ responses, in OpenAI's Responses shapes */

/* A Responses answer is its output items in order, each the fragments its deltas carry: a message's
 * output_text, or a function_call's arguments (its JSON text, cut anywhere). The whole answer
 * joins each item's fragments; a stream sends them one delta each, item after item, every event
 * named by its type and numbered in sequence_number, so its deltas join into the whole answer. */
struct item {
    const char *const *frags; /* raw UTF-8, each whole characters; static or the builder's caller's */
    size_t nfrags;
    const char *id;      /* the item's id; needs no escaping, as call_id and name */
    const char *call_id; /* a function_call's call_id, or NULL: the item is a message */
    const char *name;    /* a function_call's function */
};

struct response {
    const struct item *items; /* the caller's, read only while a builder runs */
    size_t nitems;
    uint64_t tokens; /* usage.output_tokens */
};

static const struct item hello_items[] = {{FRAGS(words), "msg_sim", NULL, NULL}};
/* the usual answer: 4 output tokens for its five words, as on the chat side */
static const struct response hello_response = {hello_items, 1, 4};

static const struct item call_items[] = {
    {FRAGS(weather_input), "fc_sim_1", "call_sim_1", "get_weather"},
    {FRAGS(time_input), "fc_sim_2", "call_sim_2", "get_time"},
};
static const struct response calls_response = {call_items, COUNT(call_items), COUNT(weather_input) + COUNT(time_input)};

static const struct response empty_response = {NULL, 0, 0};

/* a message's output_text part: whole, or as content_part.added opens it (its text "") */
static void put_part(FILE *f, const struct item *it, int whole)
{
    fputs("{\"type\":\"output_text\",\"text\":", f);
    put_text(f, it->frags, whole ? it->nfrags : 0);
    fputs(",\"annotations\":[]}", f);
}

/* an output item: whole (completed), or as output_item.added opens it (in progress, no content) */
static void put_item(FILE *f, const struct item *it, int whole)
{
    const char *status = whole ? "completed" : "in_progress";
    if (it->call_id != NULL) {
        fprintf(f, "{\"type\":\"function_call\",\"id\":\"%s\",\"call_id\":\"%s\",\"name\":\"%s\",\"arguments\":",
                it->id, it->call_id, it->name);
        put_text(f, it->frags, whole ? it->nfrags : 0);
        fprintf(f, ",\"status\":\"%s\"}", status);
        return;
    }
    fprintf(f, "{\"type\":\"message\",\"id\":\"%s\",\"status\":\"%s\",\"role\":\"assistant\",\"content\":[", it->id,
            status);
    if (whole)
        put_part(f, it, 1);
    fputs("]}", f);
}

/* the Response object: done (completed, its output and usage), or as response.created shows it */
static void put_response(FILE *f, const char *model, const struct response *r, int done)
{
    fprintf(f,
            "{\"id\":\"resp_sim\",\"object\":\"response\",\"created_at\":0,\"status\":\"%s\",\"error\":null,"
            "\"incomplete_details\":null,\"instructions\":null,\"model\":",
            done ? "completed" : "in_progress");
    put_string(f, model);
    fputs(",\"output\":[", f);
    for (size_t i = 0; done && i < r->nitems; i++) {
        if (i > 0)
            fputc(',', f);
        put_item(f, &r->items[i], 1);
    }
    fputs("],\"parallel_tool_calls\":true,\"tool_choice\":\"auto\",\"tools\":[],\"usage\":", f);
    if (!done) {
        fputs("null}", f);
        return;
    }
    fprintf(f,
            "{\"input_tokens\":5,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":%llu,"
            "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":%llu}}",
            (unsigned long long)r->tokens, (unsigned long long)r->tokens + 5);
}

/* the whole answer, a Response (heap, the caller frees it) */
static char *response_whole(const char *model, const struct response *r)
{
    char *s = NULL;
    size_t len;
    FILE *f = open_memstream(&s, &len);
    if (f == NULL)
        return NULL;
    put_response(f, model, r, 1);
    return closed(f, &s);
}

/* a Responses stream being scripted, one event after another */
struct rstream {
    struct sim_req *sr;       /* whose script the events are added to */
    const char *model;        /* the name the answer carries; the caller's, while scripting */
    const struct response *r; /* the answer streamed; the caller's, while scripting */
    unsigned seq;             /* the next event's sequence_number: 0 for response.created */
    FILE *batch;              /* non-NULL: events go here, for the caller to script as one write */
};

/* a memory stream on *s (see closed()) holding an event named type up to its data's "type" */
static FILE *ev_open(char **s, size_t *len, const char *type)
{
    FILE *f = open_memstream(s, len);
    if (f != NULL)
        fprintf(f, "event: %s\ndata: {\"type\":\"%s\"", type, type);
    return f;
}

/* the event ev_open() began, its data closed with the stream's next sequence_number and scripted
 * as a write `delay` ms after the previous one */
static void ev_add(struct rstream *rs, FILE *f, char **s, uint64_t delay)
{
    fprintf(f, ",\"sequence_number\":%u}\n\n", rs->seq++);
    char *text = closed(f, s);
    if (rs->batch == NULL) {
        add(rs->sr, ACT_WRITE, delay, 0, text);
        return;
    }
    if (text != NULL)
        fputs(text, rs->batch);
    free(text);
}

/* an event whose data goes on (after "type") with fmt's keys, each led by a comma */
static void ev(struct rstream *rs, uint64_t delay, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ev(struct rstream *rs, uint64_t delay, const char *type, const char *fmt, ...)
{
    char *s = NULL;
    size_t len;
    FILE *f = ev_open(&s, &len, type);
    if (f == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    ev_add(rs, f, &s, delay);
}

/* response.created, response.in_progress, response.completed: the Response as it stands */
static void ev_response(struct rstream *rs, const char *type, int done)
{
    char *s = NULL;
    size_t len;
    FILE *f = ev_open(&s, &len, type);
    if (f == NULL)
        return;
    fputs(",\"response\":", f);
    put_response(f, rs->model, rs->r, done);
    ev_add(rs, f, &s, 0);
}

/* response.output_item.added (opening) or .done (whole) for item i */
static void ev_item(struct rstream *rs, size_t i, int whole)
{
    char *s = NULL;
    size_t len;
    FILE *f = ev_open(&s, &len, whole ? "response.output_item.done" : "response.output_item.added");
    if (f == NULL)
        return;
    fprintf(f, ",\"output_index\":%zu,\"item\":", i);
    put_item(f, &rs->r->items[i], whole);
    ev_add(rs, f, &s, 0);
}

/* for message item i: response.content_part.added (opening) or .done (whole), or (text)
 * response.output_text.done with the text joined */
static void ev_part(struct rstream *rs, size_t i, const char *type, int whole, int text)
{
    const struct item *it = &rs->r->items[i];
    char *s = NULL;
    size_t len;
    FILE *f = ev_open(&s, &len, type);
    if (f == NULL)
        return;
    fprintf(f, ",\"item_id\":\"%s\",\"output_index\":%zu,\"content_index\":0,", it->id, i);
    if (text) {
        fputs("\"text\":", f);
        put_text(f, it->frags, it->nfrags);
        fputs(",\"logprobs\":[]", f);
    } else {
        fputs("\"part\":", f);
        put_part(f, it, whole);
    }
    ev_add(rs, f, &s, 0);
}

/* response.function_call_arguments.done for function_call item i: its arguments joined */
static void ev_arguments(struct rstream *rs, size_t i)
{
    const struct item *it = &rs->r->items[i];
    char *s = NULL;
    size_t len;
    FILE *f = ev_open(&s, &len, "response.function_call_arguments.done");
    if (f == NULL)
        return;
    fprintf(f, ",\"item_id\":\"%s\",\"output_index\":%zu,\"arguments\":", it->id, i);
    put_text(f, it->frags, it->nfrags);
    ev_add(rs, f, &s, 0);
}

/* item i's k-th delta, `delay` ms after the previous write */
static void ev_delta(struct rstream *rs, size_t i, size_t k, uint64_t delay)
{
    const struct item *it = &rs->r->items[i];
    char *e = escape(it->frags[k]);
    if (it->call_id != NULL)
        ev(rs, delay, "response.function_call_arguments.delta",
           ",\"item_id\":\"%s\",\"output_index\":%zu,\"delta\":\"%s\"", it->id, i, e ? e : "");
    else
        ev(rs, delay, "response.output_text.delta",
           ",\"item_id\":\"%s\",\"output_index\":%zu,\"content_index\":0,\"delta\":\"%s\",\"logprobs\":[]", it->id, i,
           e ? e : "");
    free(e);
}

/* the stream's head: its headers, response.created and response.in_progress */
static void response_head(struct rstream *rs)
{
    stream_start(rs->sr);
    ev_response(rs, "response.created", 0);
    ev_response(rs, "response.in_progress", 0);
}

/* rs->r streamed: the head, each item's events, response.completed; the first delta `first` ms
 * late, each later one `gap` ms after the one before. After `cut` deltas (fewer than the answer
 * has) it stops at once, for the caller to end the script. */
static void response_stream(struct rstream *rs, uint64_t first, uint64_t gap, uint64_t cut)
{
    uint64_t sent = 0;
    response_head(rs);
    for (size_t i = 0; i < rs->r->nitems; i++) {
        const struct item *it = &rs->r->items[i];
        ev_item(rs, i, 0);
        if (it->call_id == NULL)
            ev_part(rs, i, "response.content_part.added", 0, 0);
        for (size_t k = 0; k < it->nfrags && sent < cut; k++, sent++)
            ev_delta(rs, i, k, sent == 0 ? first : gap);
        if (sent == cut)
            return;
        if (it->call_id == NULL) {
            ev_part(rs, i, "response.output_text.done", 1, 1);
            ev_part(rs, i, "response.content_part.done", 1, 0);
        } else {
            ev_arguments(rs, i);
        }
        ev_item(rs, i, 1);
    }
    ev_response(rs, "response.completed", 1);
    add(rs->sr, ACT_END, 0, 0, NULL);
}

/* The usual message item's first n words (words[i % NWORDS], at most MAX_WORDS) streamed: the
 * head, the item and its part opened, one output_text.delta per word (more than TOKEN_WRITES
 * words go out in TOKEN_WRITES writes of many deltas); then it stops, for the caller to end the
 * script (cut-after, stall-after). */
static void response_words(struct rstream *rs, uint64_t n)
{
    uint64_t per = n > TOKEN_WRITES ? (n + TOKEN_WRITES - 1) / TOKEN_WRITES : 1;
    rs->r = &hello_response;
    response_head(rs);
    ev_item(rs, 0, 0);
    ev_part(rs, 0, "response.content_part.added", 0, 0);
    for (uint64_t i = 0; i < n; i += per) {
        char *s = NULL;
        size_t len;
        rs->batch = open_memstream(&s, &len);
        if (rs->batch == NULL)
            return;
        for (uint64_t k = i; k < i + per && k < n; k++)
            ev_delta(rs, 0, k % NWORDS, 0);
        FILE *f = rs->batch;
        rs->batch = NULL;
        add(rs->sr, ACT_WRITE, 0, 0, closed(f, &s));
    }
}

/* r streamed or whole; the whole answer waits as long as its stream would take */
static void response_answer(struct sim_req *sr, const char *model, const struct response *r, int stream,
                            uint64_t first, uint64_t gap)
{
    if (stream) {
        struct rstream rs = {sr, model, r, 0, NULL};
        response_stream(&rs, first, gap, UINT64_MAX);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->nitems; i++)
        n += r->items[i].nfrags;
    add(sr, ACT_RESPOND, first + gap * n, 200, response_whole(model, r));
}

/* Builds the script for one POST /v1/responses: model names the behaviour as script() reads it and
 * is the name the answer carries; body is the request's. Returns 0, or -1 for an unknown name. */
static int script_responses(struct sim_req *sr, const char *model, int stream, const char *body, size_t body_len)
{
    struct spec spec, *sp = &spec;
    parse_spec(sp, model, stream);
    stream = sp->stream;
    if (failing(sr, sp)) {
        respond_failing(sr, sp);
        return 0;
    }
    if (early_fault(sr, sp, IS("heartbeat-only") || IS("pings-only")) == 0 || openai_error(sr, sp) == 0)
        return 0;
    if (IS("healthy") || IS("slow-first-token") || IS("slow-tokens") || IS("drift")) {
        uint64_t first, gap;
        delays(sr, sp, &first, &gap);
        response_answer(sr, model, &hello_response, stream, first, gap);
        return 0;
    }
    const struct response *fixed = IS("tools") ? &calls_response : IS("empty") ? &empty_response : NULL;
    if (fixed != NULL) {
        response_answer(sr, model, fixed, stream, 0, 0);
        return 0;
    }
    if (IS("echo")) {
        /* the text is the request body exactly as it arrived, one delta in a stream */
        char *raw = strndup(body, body_len);
        const char *frags[] = {raw ? raw : ""};
        struct item it = {FRAGS(frags), "msg_sim", NULL, NULL};
        struct response r = {&it, 1, 1};
        response_answer(sr, model, &r, stream, 0, 0);
        free(raw);
        return 0;
    }
    struct rstream rs = {sr, model, &hello_response, 0, NULL};
    if (IS("heartbeat-only") || IS("pings-only")) { /* a stream: early_fault() answered the others */
        response_head(&rs);
        add(sr, ACT_HEARTBEAT, P(500), 0, strdup(": keep-alive\n\n"));
        return 0;
    }
    if ((IS("stall-after") || IS("cut-after")) && stream) {
        /* n (3; cut-after 2) text deltas, then silence, or a clean end: no response.completed */
        uint64_t n = P(IS("cut-after") ? 2 : 3);
        response_words(&rs, n < MAX_WORDS ? n : MAX_WORDS);
        add(sr, IS("cut-after") ? ACT_END : ACT_SILENCE, 0, 0, NULL);
        return 0;
    }
    if (IS("stall-after")) { /* a non-stream request (a stream is above) */
        partial_json(sr, "{\"id\":\"resp_sim\",");
        add(sr, ACT_SILENCE, 0, 0, NULL);
        return 0;
    }
    if (IS("reset-mid-stream")) {
        if (stream)
            response_stream(&rs, 0, 0, 2);
        else
            partial_json(sr, "{\"id\":\"resp_sim\",\"object\":");
        add(sr, ACT_ABORT, 50, 0, NULL);
        return 0;
    }
    if (IS("error-before-content") || IS("error-after-content")) {
        if (!stream) {
            respond_error(sr, 500, "The server had an error while processing your request.", "server_error",
                          "server_error");
            return 0;
        }
        if (IS("error-after-content"))
            response_stream(&rs, 0, 0, 2);
        else
            response_head(&rs);
        ev(&rs, 0, "error", ",\"code\":\"server_error\",\"message\":\"The server had an error\",\"param\":null");
        add(sr, ACT_END, 0, 0, NULL);
        return 0;
    }
    if (IS("400")) {
        respond_invalid(sr, "Invalid type for 'input': expected a string or an array of input items.", "input",
                        "invalid_type");
        return 0;
    }
    return -1;
}

#undef IS
#undef P

/* ------------------------------------------------------------------ running a script */

static void on_timer_closed(uv_handle_t *t)
{
    struct sim_req *sr = t->data;
    for (size_t i = 0; i < sr->nacts; i++)
        free(sr->acts[i].text);
    free(sr->prefill);
    free(sr);
}

static void sr_free(struct sim_req *sr)
{
    uv_close((uv_handle_t *)&sr->timer, on_timer_closed);
}

static void run(struct sim_req *sr);

/* the actions that repeat every delay_ms until the client leaves */
static int forever(const struct action *a)
{
    return a->kind == ACT_HEARTBEAT || a->kind == ACT_TICK;
}

static void on_timer(uv_timer_t *t)
{
    struct sim_req *sr = t->data;
    struct action *a = &sr->acts[sr->next];
    if (a->kind == ACT_HEARTBEAT) {
        keel_http_write(sr->h, a->text, strlen(a->text), 0);
        return;
    }
    if (a->kind == ACT_TICK) { /* bench/streams reads the send time back: one-way delay per chunk */
        struct timespec ts;
        char c[128];
        clock_gettime(CLOCK_REALTIME, &ts);
        int n = snprintf(c, sizeof(c), "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"T%llu\"}}]}\n\n",
                         (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
        keel_http_write(sr->h, c, (size_t)n, 0);
        return;
    }
    a->delay_ms = 0;
    run(sr);
}

static void on_written(void *ctx)
{
    struct sim_req *sr = ctx;
    sr->counter->writes++;
    if (sr->next < sr->nacts && forever(&sr->acts[sr->next])) {
        uv_timer_start(&sr->timer, on_timer, sr->acts[sr->next].delay_ms, 0);
        return;
    }
    run(sr);
}

static void on_gone(void *ctx)
{
    struct sim_req *sr = ctx;
    sr->h = NULL;
    sr->counter->gone++;
    uv_timer_stop(&sr->timer);
    sr_free(sr);
}

/* what each API sends with every answer, as the real ones do: its request id (x-request-id;
 * Anthropic's request-id) and a rate-limit header (keel passes these back to its client) */
static size_t ids(const struct sim_req *sr, struct keel_header *hdrs, size_t n)
{
    hdrs[n++] = (struct keel_header){sr->anthropic ? "request-id" : "x-request-id", sr->rid};
    hdrs[n++] = (struct keel_header){sr->anthropic ? "anthropic-ratelimit-requests-remaining"
                                                   : "x-ratelimit-remaining-requests",
                                     "99"};
    return n;
}

/* runs actions until one has to wait (a delay, a write) or the script ends */
static void run(struct sim_req *sr)
{
    while (sr->next < sr->nacts) {
        struct action *a = &sr->acts[sr->next];
        if (a->delay_ms > 0 && !forever(a)) {
            uv_timer_start(&sr->timer, on_timer, a->delay_ms, 0);
            return;
        }
        switch (a->kind) {
        case ACT_HEAD: {
            struct keel_header hdrs[5] = {{"content-type", a->content_type}};
            size_t n = ids(sr, hdrs, 1);
            if (sr->fault)
                hdrs[n++] = (struct keel_header){"x-sim-fault", sr->fault};
            keel_http_start(sr->h, a->status, hdrs, n, on_written);
            sr->next++;
            break;
        }
        case ACT_WRITE:
            if (a->repeat > 1)
                a->repeat--;
            else
                sr->next++;
            keel_http_write(sr->h, a->text, strlen(a->text), 0);
            return;
        case ACT_END:
            sr->next++;
            keel_http_write(sr->h, "", 0, 1);
            sr->h = NULL;
            sr_free(sr);
            return;
        case ACT_RESPOND: {
            char ra[24];
            struct keel_header hdrs[6] = {{"content-type", "application/json"}};
            size_t n = ids(sr, hdrs, 1);
            snprintf(ra, sizeof(ra), "%llu", (unsigned long long)a->retry_after);
            if (a->retry_after)
                hdrs[n++] = (struct keel_header){"retry-after", ra};
            if (sr->fault)
                hdrs[n++] = (struct keel_header){"x-sim-fault", sr->fault};
            sr->next++;
            keel_http_respond(sr->h, a->status, hdrs, n, a->text, strlen(a->text));
            sr->h = NULL;
            sr_free(sr);
            return;
        }
        case ACT_ABORT:
            sr->next++;
            keel_http_abort(sr->h);
            sr->h = NULL;
            sr_free(sr);
            return;
        case ACT_SILENCE:
            return; /* until the client gives up (on_gone) */
        case ACT_HEARTBEAT:
        case ACT_TICK:
            uv_timer_start(&sr->timer, on_timer, a->delay_ms, 0);
            return;
        }
    }
}

/* ------------------------------------------------------------------ endpoints */

static struct counter *counter(struct sim *sim, const char *name)
{
    for (size_t i = 0; i < sim->ncounters; i++)
        if (strcmp(sim->counters[i].name, name) == 0)
            return &sim->counters[i];
    /* past the table's end every new name shares the last slot; a slot reused (that one, or any
     * after /sim/reset) still owns its last_prefill */
    struct counter *c = &sim->counters[sim->ncounters < MAX_COUNTERS ? sim->ncounters++ : MAX_COUNTERS - 1];
    free(c->last_prefill);
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    return c;
}

static void reply_json(struct keel_http *h, int status, json_t *j)
{
    char *s = dump(j);
    struct keel_header hdrs[] = {{"content-type", "application/json"}};
    keel_http_respond(h, status, hdrs, 1, s, strlen(s));
    free(s);
}

static void stats(struct sim *sim, struct keel_http *h)
{
    json_t *hits = json_object(), *gone = json_object(), *auth = json_object(), *writes = json_object();
    json_t *api_key = json_object(), *version = json_object(), *beta = json_object(), *chaos = json_object();
    json_t *passed = json_object(), *prefills = json_object(), *last_prefill = json_object();
    json_t *down_hits = json_object();
    for (size_t i = 0; i < sim->ncounters; i++) {
        struct counter *c = &sim->counters[i];
        json_object_set_new(prefills, c->name, json_integer((json_int_t)c->prefills));
        json_object_set_new(last_prefill, c->name,
                            json_stringn(c->last_prefill ? c->last_prefill : "", c->last_prefill_len));
        json_object_set_new(down_hits, c->name, json_integer((json_int_t)c->down_hits));
        json_object_set_new(hits, c->name, json_integer((json_int_t)c->hits));
        json_object_set_new(gone, c->name, json_integer((json_int_t)c->gone));
        json_object_set_new(auth, c->name, json_string(c->auth));
        json_object_set_new(api_key, c->name, json_string(c->api_key));
        json_object_set_new(version, c->name, json_string(c->version));
        json_object_set_new(beta, c->name, json_string(c->beta));
        json_t *p = json_object();
        for (const char *l = c->passed; *l != '\0';) {
            const char *colon = strchr(l, ':'), *nl = strchr(l, '\n');
            json_object_setn_new(p, l, (size_t)(colon - l), json_stringn(colon + 2, (size_t)(nl - colon - 2)));
            l = nl + 1;
        }
        json_object_set_new(passed, c->name, p);
        json_object_set_new(writes, c->name, json_integer((json_int_t)c->writes));
        if (!c->is_chaos)
            continue;
        json_t *f = json_object(); /* fault -> requests, "none" for the healthy ones */
        for (size_t k = 0; k < NFAULTS; k++)
            if (c->chaos[k] > 0)
                json_object_set_new(f, faults[k], json_integer((json_int_t)c->chaos[k]));
        json_object_set_new(chaos, c->name, f);
    }
    reply_json(h, 200, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:I, s:o, s:o, s:o}", "hits",
                                 hits, "gone", gone, "auth", auth, "x_api_key", api_key, "anthropic_version",
                                 version, "anthropic_beta", beta, "passed", passed, "writes", writes,
                                 "connections", (json_int_t)keel_server_accepted(sim->srv), "chaos", chaos, "seed",
                                 (json_int_t)sim->seed, "prefills", prefills, "last_prefill", last_prefill,
                                 "down_hits", down_hits));
}

/* the header's value, or "" without one, into dst (cap bytes, cut to fit) */
static void record(char *dst, size_t cap, struct keel_http *h, const char *name)
{
    size_t len;
    const char *v = keel_http_header(h, name, &len);
    snprintf(dst, cap, "%.*s", v ? (int)len : 0, v ? v : "");
}

/* a request for model, counted and its credentials recorded; freed by sr_free() */
/* the headers a gateway is expected to pass on from its client (keel's core/headers.h), which
 * /sim/stats shows under "passed" */
static const char *const PASSED[] = {"idempotency-key", "traceparent", "tracestate", "openai-organization",
                                     "openai-project", "http-referer", "x-title"};

static void record_passed(struct counter *c, struct keel_http *h)
{
    size_t off = 0;
    c->passed[0] = '\0';
    for (size_t i = 0; i < COUNT(PASSED); i++) {
        size_t len;
        const char *v = keel_http_header(h, PASSED[i], &len);
        int w = v ? snprintf(c->passed + off, sizeof(c->passed) - off, "%s: %.*s\n", PASSED[i], (int)len, v) : 0;
        if (w > 0 && (size_t)w < sizeof(c->passed) - off)
            off += (size_t)w;
    }
}

static struct sim_req *sr_new(struct sim *sim, struct keel_http *h, const char *model)
{
    struct sim_req *sr = calloc(1, sizeof(*sr));
    sr->sim = sim;
    sr->h = h;
    sr->counter = counter(sim, model);
    snprintf(sr->cid, sizeof(sr->cid), "chatcmpl-sim");
    sr->counter->hits++;
    if (sr->counter->hits == 1)
        sr->counter->first_ms = uv_now(sim->loop);
    snprintf(sr->rid, sizeof(sr->rid), "req_sim_%llu", (unsigned long long)sr->counter->hits);
    record(sr->counter->auth, sizeof(sr->counter->auth), h, "authorization");
    record(sr->counter->api_key, sizeof(sr->counter->api_key), h, "x-api-key");
    record(sr->counter->version, sizeof(sr->counter->version), h, "anthropic-version");
    record(sr->counter->beta, sizeof(sr->counter->beta), h, "anthropic-beta");
    record_passed(sr->counter, h);
    uv_timer_init(sim->loop, &sr->timer);
    sr->timer.data = sr;
    return sr;
}

/* a script built: run it until the client leaves or it ends */
static void sr_start(struct sim_req *sr)
{
    keel_http_watch(sr->h, on_gone, sr);
    run(sr);
}

/* the script's actions so far dropped, for an error answer instead */
static void sr_unscript(struct sim_req *sr)
{
    for (size_t i = 0; i < sr->nacts; i++)
        free(sr->acts[i].text);
    sr->nacts = 0;
}

/* a message's content as text: a string, or its parts' (blocks') "text" joined; heap, the caller
 * frees it, *len its length (it may hold NULs); "" for content of any other shape; NULL if out of
 * memory */
static char *content_text(json_t *content, size_t *len)
{
    char *s = NULL;
    FILE *f = open_memstream(&s, len);
    if (f == NULL)
        return NULL;
    size_t i;
    json_t *part;
    if (json_is_string(content))
        fwrite(json_string_value(content), 1, json_string_length(content), f);
    json_array_foreach(content, i, part) {
        json_t *text = json_object_get(part, "text");
        const char *type = json_string_value(json_object_get(part, "type"));
        if (type != NULL && strcmp(type, "text") == 0 && json_is_string(text))
            fwrite(json_string_value(text), 1, json_string_length(text), f);
    }
    return closed(f, &s);
}

/* the body's last message if the assistant's (a prefill), else NULL; stale with the body */
static json_t *final_assistant(json_t *body)
{
    json_t *messages = json_object_get(body, "messages");
    json_t *last = json_array_size(messages) > 0 ? json_array_get(messages, json_array_size(messages) - 1) : NULL;
    const char *role = json_string_value(json_object_get(last, "role"));
    return role != NULL && strcmp(role, "assistant") == 0 ? last : NULL;
}

/* A prefill, the body's last message if the assistant's, read: its text becomes sr->prefill, and
 * is counted in the name's prefills and kept as its last_prefill. */
static void read_prefill(struct sim_req *sr, json_t *body)
{
    json_t *last = final_assistant(body);
    if (last == NULL)
        return;
    sr->prefill = content_text(json_object_get(last, "content"), &sr->prefill_len);
    if (sr->prefill == NULL)
        return;
    struct counter *c = sr->counter;
    char *copy = malloc(sr->prefill_len + 1);
    if (copy != NULL)
        memcpy(copy, sr->prefill, sr->prefill_len + 1);
    c->prefills++;
    free(c->last_prefill);
    c->last_prefill = copy;
    c->last_prefill_len = copy != NULL ? sr->prefill_len : 0;
}

/* Anthropic's refusal of a prefill ending in whitespace: whether the final message is the
 * assistant's and its content (a string, or its last text block) ends with a space, tab or
 * line break */
static int trailing_space(json_t *body)
{
    json_t *content = json_object_get(final_assistant(body), "content"), *text = content;
    for (size_t i = json_array_size(content); i > 0; i--) {
        json_t *block = json_array_get(content, i - 1);
        const char *type = json_string_value(json_object_get(block, "type"));
        if (type != NULL && strcmp(type, "text") == 0) {
            text = json_object_get(block, "text");
            break;
        }
    }
    size_t len = json_string_length(text);
    char last = len > 0 ? json_string_value(text)[len - 1] : '\0';
    return last != '\0' && strchr(" \t\n\r\f\v", last) != NULL;
}

/* the request's body parsed (NULL if not JSON; the caller json_decref()s it), and *model in it
 * (NULL if none; stale with the body) */
static json_t *request_body(struct keel_http *h, const char **text, size_t *text_len, const char **model)
{
    *text = keel_http_body(h, text_len);
    json_t *body = json_loadb(*text, *text_len, 0, NULL);
    *model = json_string_value(json_object_get(body, "model"));
    return body;
}

static void chat(struct sim *sim, struct keel_http *h)
{
    size_t text_len;
    const char *text, *model;
    json_t *body = request_body(h, &text, &text_len, &model);
    if (model == NULL) {
        json_decref(body);
        reply_json(h, 400, json_pack("{s:{s:s, s:s, s:s}}", "error", "message", "model is required", "type",
                                     "invalid_request_error", "code", "missing_model"));
        return;
    }
    struct sim_req *sr = sr_new(sim, h, model);
    int stream = json_is_true(json_object_get(body, "stream"));
    int usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
    /* max_completion_tokens, OpenAI's name now (what keel's translators send), else max_tokens */
    json_t *max = json_object_get(body, "max_completion_tokens");
    json_int_t mt = json_integer_value(json_is_integer(max) ? max : json_object_get(body, "max_tokens"));
    sr->asked_tokens = mt > 0 ? (uint64_t)mt : 0;
    json_int_t n = json_integer_value(json_object_get(body, "n"));
    sr->choices = n < 1 ? 1 : n > MAX_CHOICES ? MAX_CHOICES : (unsigned)n;
    sr->logprobs = json_is_true(json_object_get(body, "logprobs"));
    read_prefill(sr, body);
    sr->vllm_continue = json_is_true(json_object_get(body, "continue_final_message")) &&
                        json_is_false(json_object_get(body, "add_generation_prompt"));
    if (script(sr, model, model, stream, usage, text, text_len) != 0) {
        sr_unscript(sr);
        respond_error(sr, 404, "The model does not exist: keel sim knows healthy, hang, 503, ... (see README)",
                      "invalid_request_error", "model_not_found");
    }
    json_decref(body);
    sr_start(sr);
}

/* what the Messages API says of a body it will not take (a field missing), or NULL */
static const char *refused(json_t *body)
{
    json_t *mt = json_object_get(body, "max_tokens"), *messages = json_object_get(body, "messages");
    if (mt == NULL)
        return "max_tokens: Field required";
    if (!json_is_integer(mt))
        return "max_tokens: Input should be a valid integer";
    if (messages == NULL)
        return "messages: Field required";
    if (!json_is_array(messages))
        return "messages: Input should be a valid list";
    return NULL;
}

/* POST /v1/messages, Anthropic's Messages API: counted by model like chat(), its x-api-key and
 * anthropic-version recorded; a body without max_tokens or messages gets 400 */
static void messages(struct sim *sim, struct keel_http *h)
{
    size_t text_len;
    const char *text, *model;
    json_t *body = request_body(h, &text, &text_len, &model);
    if (model == NULL) {
        const char *why = json_is_object(body) ? "model: Field required" : "invalid JSON body";
        json_decref(body);
        reply_json(h, 400, json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", "invalid_request_error",
                                     "message", why));
        return;
    }
    struct sim_req *sr = sr_new(sim, h, model);
    sr->anthropic = 1;
    read_prefill(sr, body);
    json_int_t mt = json_integer_value(json_object_get(body, "max_tokens"));
    sr->asked_tokens = mt > 0 ? (uint64_t)mt : 0;
    const char *why = refused(body);
    if (why == NULL && trailing_space(body))
        why = "messages: final assistant content cannot end with trailing whitespace";
    if (why != NULL) {
        respond_anthropic(sr, 400, "invalid_request_error", why);
    } else if (script_messages(sr, model, json_is_true(json_object_get(body, "stream")), text, text_len) != 0) {
        char message[160];
        snprintf(message, sizeof(message), "model: %s", model);
        sr_unscript(sr);
        respond_anthropic(sr, 404, "not_found_error", message);
    }
    json_decref(body);
    sr_start(sr);
}

/* POST /v1/embeddings (and /embeddings), OpenAI's embeddings API: counted by model like chat();
 * a body whose input, dimensions or encoding_format the real API would refuse gets its 400 (the
 * hit still counts) */
/* OpenAI's 400 for a body without a model (not counted: there is no name to count it under) */
static void reply_no_model(struct keel_http *h, json_t *body)
{
    int object = json_is_object(body);
    reply_json(h, 400, json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message",
                                 object ? "Missing required parameter: 'model'."
                                        : "We could not parse the JSON body of your request.",
                                 "type", "invalid_request_error", "param", object ? "model" : NULL, "code",
                                 object ? "missing_required_parameter" : NULL));
}

static void embeddings(struct sim *sim, struct keel_http *h)
{
    size_t text_len;
    const char *text, *model;
    json_t *body = request_body(h, &text, &text_len, &model);
    if (model == NULL) {
        reply_no_model(h, body);
        json_decref(body);
        return;
    }
    struct sim_req *sr = sr_new(sim, h, model);
    struct embed_req er;
    if (embed_read(sr, body, &er) == 0 && script_embeddings(sr, model, &er) != 0) {
        sr_unscript(sr);
        respond_error(sr, 404, "The model does not exist: keel sim knows healthy, hang, 503, ... (see README)",
                      "invalid_request_error", "model_not_found");
    }
    json_decref(body);
    sr_start(sr);
}

/* POST /v1/responses (and /responses), OpenAI's Responses API: counted by model like chat(); a
 * body without input, or whose input is neither a string nor an array, gets its 400 (the hit
 * still counts) */
static void responses(struct sim *sim, struct keel_http *h)
{
    size_t text_len;
    const char *text, *model;
    json_t *body = request_body(h, &text, &text_len, &model);
    if (model == NULL) {
        reply_no_model(h, body);
        json_decref(body);
        return;
    }
    struct sim_req *sr = sr_new(sim, h, model);
    json_t *input = json_object_get(body, "input");
    if (input == NULL) {
        respond_invalid(sr, "Missing required parameter: 'input'.", "input", "missing_required_parameter");
    } else if (!json_is_string(input) && !json_is_array(input)) {
        respond_invalid(sr, "Invalid type for 'input': expected a string or an array of input items.", "input",
                        "invalid_type");
    } else if (script_responses(sr, model, json_is_true(json_object_get(body, "stream")), text, text_len) != 0) {
        sr_unscript(sr);
        respond_error(sr, 404, "The model does not exist: keel sim knows healthy, hang, 503, ... (see README)",
                      "invalid_request_error", "model_not_found");
    }
    json_decref(body);
    sr_start(sr);
}

static void on_request(void *app, struct keel_http *h)
{
    struct sim *sim = app;
    size_t plen, mlen;
    const char *path = keel_http_path(h, &plen);
    const char *method = keel_http_method(h, &mlen);
    int post = mlen == 4 && memcmp(method, "POST", 4) == 0;
#define PATH_IS(s) (plen == sizeof(s) - 1 && memcmp(path, s, plen) == 0)
    if (PATH_IS("/v1/chat/completions") && post) {
        chat(sim, h);
    } else if ((PATH_IS("/v1/messages") || PATH_IS("/messages")) && post) {
        messages(sim, h);
    } else if ((PATH_IS("/v1/embeddings") || PATH_IS("/embeddings")) && post) {
        embeddings(sim, h);
    } else if ((PATH_IS("/v1/responses") || PATH_IS("/responses")) && post) {
        responses(sim, h);
    } else if (PATH_IS("/health")) {
        reply_json(h, 200, json_pack("{s:s}", "status", "ok"));
    } else if (PATH_IS("/sim/stats")) {
        stats(sim, h);
    } else if (PATH_IS("/sim/reset") && post) {
        sim->ncounters = 0;
        reply_json(h, 200, json_pack("{s:b}", "reset", 1));
    } else if (PATH_IS("/v1/models")) {
        reply_json(h, 200, json_pack("{s:s, s:[{s:s, s:s}]}", "object", "list", "data", "id", "healthy", "object",
                                     "model"));
    } else {
        reply_json(h, 404, json_pack("{s:{s:s, s:s}}", "error", "message", "unknown path", "type",
                                     "invalid_request_error"));
    }
#undef PATH_IS
}

static void on_signal(uv_signal_t *s, int signum)
{
    uv_stop(s->loop);
}

/* see sim.h */
int keel_sim_listen(const char *listen, char **host, int *port)
{
    if (keel_parse_hostport(listen, host, port) != 0) {
        fprintf(stderr, "keel sim: --listen: expected HOST:PORT, got \"%s\"\n", listen);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error to handle, not a death */
    return 0;
}

int keel_sim_run(const char *listen)
{
    static struct sim sim; /* reachable until exit */
    static uv_signal_t sigterm, sigint;
    char *host;
    int port;
    if (keel_sim_listen(listen, &host, &port) != 0)
        return 2;
    /* chaos's draws: the same seed, the same faults per model name (reproducible soaks) */
    sim.seed = 1;
    const char *seed = getenv("KEEL_SIM_SEED");
    if (seed != NULL && keel_parse_uint(seed, &sim.seed) != 0) {
        fprintf(stderr, "keel sim: KEEL_SIM_SEED: expected a number, got \"%s\"\n", seed);
        free(host);
        return 2;
    }
    char err[256];
    sim.loop = uv_default_loop();
    sim.srv = keel_server_new(sim.loop, host, port, 16u << 20, on_request, &sim, err, sizeof(err));
    if (sim.srv == NULL) {
        keel_error("sim: %s", err);
        free(host);
        return 1;
    }
    uv_signal_init(sim.loop, &sigterm);
    uv_signal_init(sim.loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    keel_info("sim listening on %s:%d (chaos seed %llu)", host, keel_server_port(sim.srv),
              (unsigned long long)sim.seed);
    free(host);
    uv_run(sim.loop, UV_RUN_DEFAULT);
    return 0;
}
