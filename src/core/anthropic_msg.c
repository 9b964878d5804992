/* anthropic_msg.c - an Anthropic Messages stream gathered into its Message; see anthropic_msg.h.
 * The message is a jansson tree; text, thinking and a tool's input JSON are joined in side
 * buffers (amortized growth) and set on their block once, at its stop: appending to a jansson
 * string copies it whole, quadratic over a long answer. What is held is an estimate charged
 * before each change (weight()), so the cap is checked before anything is kept. */
#include "core/anthropic_msg.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

/* what jansson (2.14, on glibc's malloc) allocates for a value, about, measured: a number's
 * json_t (true, false and null are static, but count as one); a string's json_t and its bytes'
 * own allocation, beyond the bytes; an object's json_t and its first hashtable buckets, and
 * each member's pair beyond the key's bytes; an array's json_t and its first 8 slots (a pointer
 * per element beyond those is counted with the element) */
#define SCALAR_COST 32
#define STRING_COST 64
#define OBJECT_COST 224
#define MEMBER_COST 72
#define ARRAY_COST 128

/* the members a block's deltas gather aside, by the delta that feeds them */
enum acc { ACC_TEXT, ACC_THINKING, ACC_INPUT, ACC_N };
static const char *const acc_keys[ACC_N] = {"text", "thinking", "input"};

struct keel_anthropic_msg_block {
    struct keel_buf acc[ACC_N]; /* text, thinking: the block's string as it started, then every
                                 * delta's; input: the partial_json fragments joined */
    unsigned char open[ACC_N];  /* acc[k] gathers: a delta came, and the block has not stopped */
    unsigned char stopped;      /* content_block_stop (or message_stop) came: no more deltas */
};

/* the stream's event types (the data's "type", else the SSE event's name) */
enum type { T_MESSAGE_START, T_BLOCK_START, T_BLOCK_DELTA, T_BLOCK_STOP, T_MESSAGE_DELTA, T_MESSAGE_STOP, T_PING,
            T_ERROR, T_OTHER };
static const char *const types[T_OTHER] = {
    [T_MESSAGE_START] = "message_start", [T_BLOCK_START] = "content_block_start",
    [T_BLOCK_DELTA] = "content_block_delta", [T_BLOCK_STOP] = "content_block_stop",
    [T_MESSAGE_DELTA] = "message_delta", [T_MESSAGE_STOP] = "message_stop", [T_PING] = "ping", [T_ERROR] = "error",
};

/* ---- what is held ---- */

/* v's bytes as jansson holds them, estimated: the figure held counts for every value kept */
static size_t weight(json_t *v)
{
    size_t w, i;
    const char *key;
    json_t *el;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        w = OBJECT_COST;
        json_object_foreach(v, key, el)
            w += MEMBER_COST + strlen(key) + weight(el);
        return w;
    case JSON_ARRAY:
        w = ARRAY_COST;
        json_array_foreach(v, i, el)
            w += sizeof(json_t *) + weight(el);
        return w;
    case JSON_STRING:
        return STRING_COST + json_string_length(v);
    default:
        return SCALAR_COST;
    }
}

/* n bytes more: -ENOBUFS, nothing charged, when they would take held past max */
static int charge(struct keel_anthropic_msg *m, size_t n)
{
    assert(m->held <= m->max);
    if (n > m->max - m->held)
        return -ENOBUFS;
    m->held += n;
    return 0;
}

static void credit(struct keel_anthropic_msg *m, size_t n)
{
    assert(n <= m->held);
    m->held -= n;
}

/* Appends n bytes to side buffer b, what it allocates charged: b may grow by what the cap has
 * left and no more (keel_buf clamps its growth to its max), so held counts its slack too. */
static int put(struct keel_anthropic_msg *m, struct keel_buf *b, const char *p, size_t n)
{
    size_t cap = b->cap;
    assert(m->held <= m->max && cap <= m->held);
    b->max = cap + (m->max - m->held);
    int rv = keel_buf_append(b, p, n);
    m->held += b->cap - cap;
    return rv;
}

static void drop(struct keel_anthropic_msg *m, struct keel_buf *b)
{
    credit(m, b->cap);
    keel_buf_release(b);
}

/* obj[key] = v, a reference the call takes (NULL: jansson failed to make it). A member already
 * there keeps its place; a new one goes last. What v adds is charged before; what it replaces
 * is credited after (both are held a moment). */
static int set_member(struct keel_anthropic_msg *m, json_t *obj, const char *key, json_t *v)
{
    json_t *old = json_object_get(obj, key);
    if (v == NULL)
        return -ENOMEM;
    size_t add = weight(v) + (old == NULL ? MEMBER_COST + strlen(key) : 0);
    size_t sub = old != NULL ? weight(old) : 0;
    int rv = charge(m, add);
    if (rv != 0) {
        json_decref(v);
        return rv;
    }
    if (json_object_set_new(obj, key, v) != 0) {
        credit(m, add);
        return -ENOMEM;
    }
    credit(m, sub);
    return 0;
}

/* arr gets v last, a reference the call takes */
static int append(struct keel_anthropic_msg *m, json_t *arr, json_t *v)
{
    size_t add = weight(v) + sizeof(json_t *);
    int rv = charge(m, add);
    if (rv != 0) {
        json_decref(v);
        return rv;
    }
    if (json_array_append_new(arr, v) != 0) {
        credit(m, add);
        return -ENOMEM;
    }
    return 0;
}

/* room for n blocks' slots, the new ones zeroed (an all-zero keel_buf is an empty one) */
static int grow_blocks(struct keel_anthropic_msg *m, size_t n)
{
    size_t cap = m->_blocks_cap > 0 ? m->_blocks_cap : 8;
    if (n <= m->_blocks_cap)
        return 0;
    while (cap < n)
        cap *= 2;
    assert(cap < SIZE_MAX / sizeof(*m->_blocks));
    int rv = charge(m, (cap - m->_blocks_cap) * sizeof(*m->_blocks));
    if (rv != 0)
        return rv;
    struct keel_anthropic_msg_block *nb = realloc(m->_blocks, cap * sizeof(*nb));
    if (nb == NULL) {
        credit(m, (cap - m->_blocks_cap) * sizeof(*m->_blocks));
        return -ENOMEM;
    }
    memset(nb + m->_blocks_cap, 0, (cap - m->_blocks_cap) * sizeof(*nb));
    m->_blocks = nb;
    m->_blocks_cap = cap;
    return 0;
}

/* held is exactly the message's weight and the side allocations (whenever no change is under
 * way); walks everything: asserted once per message, at its stop */
static int check(const struct keel_anthropic_msg *m)
{
    size_t sum = m->_blocks_cap * sizeof(*m->_blocks) + (m->_msg != NULL ? weight(m->_msg) : 0);
    for (size_t i = 0; i < m->_nblocks; i++)
        for (size_t k = 0; k < ACC_N; k++)
            sum += m->_blocks[i].acc[k].cap;
    return m->held == sum && m->held <= m->max &&
           m->_nblocks == json_array_size(json_object_get(m->_msg, "content"));
}

/* ---- reading JSON ---- */

/* *out = the object in text[0..len) (a new reference): 0, or -EPROTO when the text is no JSON
 * object, -ENOMEM. jansson reports running out of memory as a syntax error, so its failure on
 * an object or array keel's own scanner accepts is taken for that, unless jansson said why it
 * refuses valid JSON (a number past 64 bits, a NUL in a key, nesting too deep). */
static int parse_object(const char *text, size_t len, json_t **out)
{
    json_error_t err;
    struct keel_json root;
    memset(&err, 0, sizeof(err)); /* a failure jansson never reported leaves its code unset */
    *out = len > 0 ? json_loadb(text, len, JSON_ALLOW_NUL, &err) : NULL;
    if (*out != NULL && json_is_object(*out))
        return 0;
    if (*out != NULL) {
        json_decref(*out);
        *out = NULL;
        return -EPROTO;
    }
    if (len == 0)
        return -EPROTO;
    enum json_error_code code = json_error_code(&err);
    if (code == json_error_numeric_overflow || code == json_error_null_byte_in_key ||
        code == json_error_stack_overflow || keel_json_parse(text, len, &root) != 0)
        return -EPROTO;
    enum keel_json_type type = keel_json_type(root);
    return type == KEEL_JSON_OBJECT || type == KEEL_JSON_ARRAY ? -ENOMEM : -EPROTO;
}

/* a "type" member's string; NULL when it is none, or holds a NUL (\u0000), which no type does:
 * read up to the NUL it would pass for another type the decoder does not take it for (fuzz) */
static const char *type_string(json_t *t)
{
    const char *s = json_string_value(t);
    return s != NULL && strlen(s) == json_string_length(t) ? s : NULL;
}

/* the frame's type: its data's "type" when it has one (a string, else T_OTHER), else the name */
static enum type type_of(const char *event, json_t *root)
{
    json_t *t = json_object_get(root, "type");
    const char *name = t != NULL ? type_string(t) : event;
    size_t i = 0;
    if (name == NULL)
        return T_OTHER;
    while (i < T_OTHER && strcmp(types[i], name) != 0)
        i++;
    return (enum type)i;
}

/* ---- content blocks ---- */

/* content[index] for a delta or a stop: a block that started and has not stopped */
static int block_at(struct keel_anthropic_msg *m, json_t *index, json_t **block,
                    struct keel_anthropic_msg_block **b)
{
    if (!json_is_integer(index) || json_integer_value(index) < 0 ||
        (unsigned long long)json_integer_value(index) >= m->_nblocks)
        return -EPROTO;
    size_t i = (size_t)json_integer_value(index);
    *block = json_array_get(json_object_get(m->_msg, "content"), i);
    *b = &m->_blocks[i];
    return json_is_object(*block) && !(*b)->stopped ? 0 : -EPROTO;
}

static int block_start(struct keel_anthropic_msg *m, json_t *index, json_t *block)
{
    json_t *content = json_object_get(m->_msg, "content");
    if (!json_is_integer(index) || json_integer_value(index) < 0 ||
        (unsigned long long)json_integer_value(index) != m->_nblocks || !json_is_object(block))
        return -EPROTO;
    int rv = grow_blocks(m, m->_nblocks + 1);
    if (rv == 0)
        rv = append(m, content, json_incref(block));
    if (rv == 0)
        m->_nblocks++;
    return rv;
}

/* a text, thinking or input_json delta's string s after what member k gathered; text and
 * thinking start from the block's own string ("" when it has none) */
static int gather(struct keel_anthropic_msg *m, json_t *block, struct keel_anthropic_msg_block *b, enum acc k,
                  json_t *s)
{
    int rv = 0;
    if (!json_is_string(s))
        return -EPROTO;
    if (!b->open[k] && k != ACC_INPUT) {
        json_t *was = json_object_get(block, acc_keys[k]);
        if (was != NULL && !json_is_string(was))
            return -EPROTO;
        if (was != NULL)
            rv = put(m, &b->acc[k], json_string_value(was), json_string_length(was));
    }
    b->open[k] = 1;
    return rv == 0 ? put(m, &b->acc[k], json_string_value(s), json_string_length(s)) : rv;
}

/* citations_delta: its citation last in the block's citations (made when absent or null) */
static int cite(struct keel_anthropic_msg *m, json_t *block, json_t *citation)
{
    json_t *list = json_object_get(block, "citations");
    if (!json_is_object(citation) || (list != NULL && !json_is_array(list) && !json_is_null(list)))
        return -EPROTO;
    if (json_is_array(list))
        return append(m, list, json_incref(citation));
    list = json_array();
    if (list == NULL || json_array_append(list, citation) != 0) {
        json_decref(list);
        return -ENOMEM;
    }
    return set_member(m, block, "citations", list);
}

static int block_delta(struct keel_anthropic_msg *m, json_t *index, json_t *delta)
{
    json_t *block;
    struct keel_anthropic_msg_block *b;
    int rv = block_at(m, index, &block, &b);
    if (rv != 0 || !json_is_object(delta))
        return rv != 0 ? rv : -EPROTO;
    const char *type = type_string(json_object_get(delta, "type"));
    if (type == NULL)
        return 0;
    if (strcmp(type, "text_delta") == 0)
        return gather(m, block, b, ACC_TEXT, json_object_get(delta, "text"));
    if (strcmp(type, "thinking_delta") == 0)
        return gather(m, block, b, ACC_THINKING, json_object_get(delta, "thinking"));
    if (strcmp(type, "input_json_delta") == 0)
        return gather(m, block, b, ACC_INPUT, json_object_get(delta, "partial_json"));
    if (strcmp(type, "signature_delta") == 0) {
        json_t *sig = json_object_get(delta, "signature");
        return json_is_string(sig) ? set_member(m, block, "signature", json_incref(sig)) : -EPROTO;
    }
    if (strcmp(type, "citations_delta") == 0)
        return cite(m, block, json_object_get(delta, "citation"));
    return 0; /* a delta type to come */
}

/* *v = what member k gathered, as its value (a new reference): a string, or the input parsed
 * ("" is {}): -EPROTO when that is no JSON object, -ENOMEM */
static int gathered(const struct keel_anthropic_msg_block *b, enum acc k, json_t **v)
{
    const struct keel_buf *a = &b->acc[k];
    if (k == ACC_INPUT && a->len > 0)
        return parse_object(a->base, a->len, v);
    *v = k == ACC_INPUT ? json_object() : json_stringn_nocheck(a->len > 0 ? a->base : "", a->len);
    return *v != NULL ? 0 : -ENOMEM;
}

/* a block's end: what it gathered set on it, the side buffers freed */
static int block_end(struct keel_anthropic_msg *m, json_t *block, struct keel_anthropic_msg_block *b)
{
    b->stopped = 1;
    for (size_t k = 0; k < ACC_N; k++) {
        json_t *v;
        if (!b->open[k])
            continue;
        int rv = gathered(b, (enum acc)k, &v);
        b->open[k] = 0;
        drop(m, &b->acc[k]);
        if (rv == 0)
            rv = set_member(m, block, acc_keys[k], v);
        if (rv != 0)
            return rv;
    }
    return 0;
}

static int block_stop(struct keel_anthropic_msg *m, json_t *index)
{
    json_t *block;
    struct keel_anthropic_msg_block *b;
    int rv = block_at(m, index, &block, &b);
    return rv == 0 ? block_end(m, block, b) : rv;
}

/* ---- the message ---- */

static int message_start(struct keel_anthropic_msg *m, json_t *message)
{
    json_t *content = json_object_get(message, "content");
    if (!json_is_object(message) || (content != NULL && !json_is_array(content)))
        return -EPROTO;
    int rv = charge(m, weight(message));
    if (rv != 0)
        return rv;
    m->_msg = json_incref(message);
    if (content == NULL)
        rv = set_member(m, m->_msg, "content", json_array());
    if (rv == 0)
        rv = grow_blocks(m, json_array_size(json_object_get(m->_msg, "content")));
    if (rv == 0)
        m->_nblocks = json_array_size(json_object_get(m->_msg, "content"));
    return rv;
}

/* message_delta: its delta's members and its others (but type, delta, usage) on the message,
 * its usage's on message.usage; none may replace content, which the blocks' slots mirror */
static int message_delta(struct keel_anthropic_msg *m, json_t *root)
{
    json_t *delta = json_object_get(root, "delta"), *usage = json_object_get(root, "usage"), *v;
    const char *key;
    int rv = 0;
    if ((delta != NULL && !json_is_object(delta)) || (usage != NULL && !json_is_object(usage)) ||
        json_object_get(delta, "content") != NULL || json_object_get(root, "content") != NULL)
        return -EPROTO;
    json_object_foreach(delta, key, v) {
        rv = set_member(m, m->_msg, key, json_incref(v));
        if (rv != 0)
            return rv;
    }
    json_object_foreach(root, key, v) {
        if (strcmp(key, "type") == 0 || strcmp(key, "delta") == 0 || strcmp(key, "usage") == 0)
            continue;
        rv = set_member(m, m->_msg, key, json_incref(v));
        if (rv != 0)
            return rv;
    }
    if (usage == NULL)
        return 0;
    if (!json_is_object(json_object_get(m->_msg, "usage")))
        rv = set_member(m, m->_msg, "usage", json_object());
    json_t *to = json_object_get(m->_msg, "usage");
    json_object_foreach(usage, key, v) {
        if (rv != 0)
            break;
        if (!json_is_null(v) || json_object_get(to, key) == NULL)
            rv = set_member(m, to, key, json_incref(v));
    }
    return rv;
}

/* message_stop: every block still open ends */
static int message_stop(struct keel_anthropic_msg *m)
{
    json_t *content = json_object_get(m->_msg, "content");
    for (size_t i = 0; i < m->_nblocks; i++) {
        struct keel_anthropic_msg_block *b = &m->_blocks[i];
        int rv = b->stopped ? 0 : block_end(m, json_array_get(content, i), b);
        if (rv != 0)
            return rv;
    }
    m->_finished = 1;
    assert(check(m));
    return 0;
}

static int apply(struct keel_anthropic_msg *m, enum type type, json_t *root)
{
    if (type == T_PING || type == T_ERROR)
        return 0;
    if (type == T_MESSAGE_START)
        return m->_msg == NULL ? message_start(m, json_object_get(root, "message")) : -EPROTO;
    if (m->_msg == NULL)
        return -EPROTO;
    if (m->_finished)
        return type == T_OTHER ? 0 : -EPROTO;
    switch (type) {
    case T_BLOCK_START:
        return block_start(m, json_object_get(root, "index"), json_object_get(root, "content_block"));
    case T_BLOCK_DELTA:
        return block_delta(m, json_object_get(root, "index"), json_object_get(root, "delta"));
    case T_BLOCK_STOP:
        return block_stop(m, json_object_get(root, "index"));
    case T_MESSAGE_DELTA:
        return message_delta(m, root);
    case T_MESSAGE_STOP:
        return message_stop(m);
    default:
        return 0; /* a type to come */
    }
}

/* ---- the builder ---- */

void keel_anthropic_msg_init(struct keel_anthropic_msg *m, size_t max)
{
    memset(m, 0, sizeof(*m));
    m->max = max;
}

void keel_anthropic_msg_release(struct keel_anthropic_msg *m)
{
    size_t max = m->max;
    json_decref(m->_msg);
    for (size_t i = 0; i < m->_nblocks; i++)
        for (size_t k = 0; k < ACC_N; k++)
            keel_buf_release(&m->_blocks[i].acc[k]);
    free(m->_blocks);
    keel_anthropic_msg_init(m, max);
}

int keel_anthropic_msg_frame(struct keel_anthropic_msg *m, const char *event, const char *data, size_t len)
{
    json_t *root;
    assert(event != NULL);
    if (m->_failed != 0)
        return m->_failed;
    if (strcmp(event, "error") == 0)
        return 0; /* its payload may be anything: the decoder judges it, the caller acts */
    int rv = parse_object(data, len, &root);
    if (rv == 0) {
        rv = apply(m, type_of(event, root), root);
        json_decref(root);
    }
    m->_failed = rv;
    assert(m->held <= m->max);
    return rv;
}

int keel_anthropic_msg_finished(const struct keel_anthropic_msg *m)
{
    return m->_finished;
}

static int pending(const struct keel_anthropic_msg_block *b)
{
    return b->open[ACC_TEXT] || b->open[ACC_THINKING] || b->open[ACC_INPUT];
}

/* The message as written (a new reference, NULL when jansson failed): the tree itself when no
 * block is gathering, else a shallow copy in which each block still gathering holds what it
 * gathered so far (its input as it started until the JSON joined is one whole object). */
static json_t *view(const struct keel_anthropic_msg *m)
{
    size_t i = 0;
    while (i < m->_nblocks && !pending(&m->_blocks[i]))
        i++;
    if (i == m->_nblocks)
        return json_incref(m->_msg);
    json_t *msg = json_copy(m->_msg), *content = json_copy(json_object_get(m->_msg, "content"));
    if (msg == NULL || content == NULL || json_object_set(msg, "content", content) != 0)
        goto out_free;
    for (; i < m->_nblocks; i++) {
        const struct keel_anthropic_msg_block *b = &m->_blocks[i];
        if (!pending(b))
            continue;
        json_t *block = json_copy(json_array_get(content, i));
        if (block == NULL || json_array_set_new(content, i, block) != 0)
            goto out_free;
        for (size_t k = 0; k < ACC_N; k++) {
            json_t *v;
            if (!b->open[k])
                continue;
            int rv = gathered(b, (enum acc)k, &v); /* -EPROTO: an input not whole yet */
            if (rv == -ENOMEM || (rv == 0 && json_object_set_new(block, acc_keys[k], v) != 0))
                goto out_free;
        }
    }
    json_decref(content);
    return msg;
out_free:
    json_decref(content);
    json_decref(msg);
    return NULL;
}

struct sink {
    struct keel_buf *out;
    int rv; /* keel_buf_append's failure */
};

static int dump_to(const char *p, size_t n, void *ctx)
{
    struct sink *s = ctx;
    s->rv = keel_buf_append(s->out, p, n);
    return s->rv == 0 ? 0 : -1;
}

int keel_anthropic_msg_write(const struct keel_anthropic_msg *m, struct keel_buf *out)
{
    struct sink s = {out, 0};
    size_t was = out->len;
    int rv = 0;
    if (m->_msg == NULL)
        return -EPROTO;
    json_t *v = view(m);
    if (v == NULL)
        return -ENOMEM;
    if (json_dump_callback(v, dump_to, &s, JSON_COMPACT) != 0) {
        out->len = was;
        rv = s.rv != 0 ? s.rv : -ENOMEM;
    }
    json_decref(v);
    return rv;
}
