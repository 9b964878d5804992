/* test_anthropic_msg.c - an Anthropic Messages stream gathered into its Message
 * (core/anthropic_msg.h): whole streams through the SSE parser into the builder, fed whole, cut
 * in two at every byte and one byte per feed, each run's failure (which frame, which code), its
 * finished() after every frame and the Message written compared with what is written here by
 * hand. JSON is written with ' for " to stay readable; \' is an escaped quote. */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/anthropic_msg.h"
#include "core/sse_parse.h"
#include "texts.h"

#define BIG (1 << 20)

/* an SSE event of a named type (Anthropic names every event) */
#define EVENT(name, data) "event: " name "\ndata: " data "\n\n"

#define START(content, usage)                                                                                          \
    EVENT("message_start", "{'type':'message_start','message':{'id':'msg_01XFDUDYJgAACzvnptvVoYEL','type':'message',"  \
                           "'role':'assistant','model':'claude-sonnet-4-5-20250929','content':" content ","            \
                           "'stop_reason':null,'stop_sequence':null,'usage':" usage "}}")
#define MSG_HEAD                                                                                                       \
    "{'id':'msg_01XFDUDYJgAACzvnptvVoYEL','type':'message','role':'assistant','model':'claude-sonnet-4-5-20250929',"
#define BLOCK(i, block)                                                                                                \
    EVENT("content_block_start", "{'type':'content_block_start','index':" #i ",'content_block':" block "}")
#define DELTA(i, delta) EVENT("content_block_delta", "{'type':'content_block_delta','index':" #i ",'delta':" delta "}")
#define TEXT(i, s) DELTA(i, "{'type':'text_delta','text':'" s "'}")
#define THINK(i, s) DELTA(i, "{'type':'thinking_delta','thinking':'" s "'}")
#define JSON(i, s) DELTA(i, "{'type':'input_json_delta','partial_json':'" s "'}")
#define STOP(i) EVENT("content_block_stop", "{'type':'content_block_stop','index':" #i "}")
#define MESSAGE_DELTA(delta, usage)                                                                                    \
    EVENT("message_delta", "{'type':'message_delta','delta':" delta ",'usage':" usage "}")
#define MESSAGE_STOP EVENT("message_stop", "{'type':'message_stop'}")
#define PING EVENT("ping", "{'type': 'ping'}")
#define USAGE1 "{'input_tokens':12,'output_tokens':1}"

/* ---- streams, fed every way ---- */

struct run {
    struct keel_anthropic_msg m;
    int rv;              /* the first frame's failure */
    size_t frames;       /* frames fed */
    size_t failed_at;    /* the failing frame, from 1 (0: none failed) */
    char finished[128];  /* per frame: '1' when finished() after it */
    size_t most;         /* the most held after any frame */
};

static int on_frame(void *ctx, const char *event, const char *data, size_t len)
{
    struct run *r = ctx;
    int rv = keel_anthropic_msg_frame(&r->m, event, data, len);
    assert_true(r->m.held <= r->m.max);
    r->most = r->m.held > r->most ? r->m.held : r->most;
    if (r->rv != 0)
        assert_int_equal(rv, r->rv); /* a failure is final */
    if (rv != 0 && r->rv == 0) {
        r->rv = rv;
        r->failed_at = r->frames + 1;
    }
    assert_true(r->frames + 1 < sizeof(r->finished));
    r->finished[r->frames++] = keel_anthropic_msg_finished(&r->m) ? '1' : '0';
    return 0; /* the parser goes on: every frame reaches the builder */
}

/* sse[0..len) cut at cuts[0..ncuts) into a fresh builder capped at max; r left to read and release */
static void run_cut(struct run *r, size_t max, const char *sse, size_t len, const size_t *cuts, size_t ncuts)
{
    struct keel_sse_parser p;
    memset(r, 0, sizeof(*r));
    keel_anthropic_msg_init(&r->m, max);
    keel_sse_parser_init(&p, 1 << 16, on_frame, NULL, r);
    feed_pieces(&p, sse, len, cuts, ncuts);
    keel_sse_parser_release(&p);
}

/* out holds exactly want[0..n) */
static void assert_wrote(const struct keel_buf *out, const char *want, size_t n)
{
    if (out->len != n || (n > 0 && memcmp(out->base, want, n) != 0))
        fail_msg("wrote\n%.*s\nwanted\n%.*s", (int)out->len, out->len > 0 ? out->base : "", (int)n, want);
}

/* what a run wrote: exactly want[0..wlen), or -EPROTO when want is NULL (no message_start) */
static void assert_run(struct run *r, int rv, size_t failed_at, const char *finished, const char *want, size_t wlen)
{
    struct keel_buf out;
    assert_int_equal(r->rv, rv);
    assert_int_equal(r->failed_at, failed_at);
    assert_string_equal(r->finished, finished);
    keel_buf_init(&out, BIG);
    if (want == NULL) {
        assert_int_equal(keel_anthropic_msg_write(&r->m, &out), -EPROTO);
        assert_int_equal(out.len, 0);
    } else {
        assert_int_equal(keel_anthropic_msg_write(&r->m, &out), 0);
        assert_wrote(&out, want, wlen);
    }
    keel_buf_release(&out);
    keel_anthropic_msg_release(&r->m);
    assert_int_equal(r->m.held, 0);
    keel_anthropic_msg_release(&r->m); /* idempotent */
}

/* a Message written: JSON to jansson, a NUL in a string allowed (texts.h's assert_json has none) */
static void assert_message(const char *text, size_t len)
{
    json_error_t err;
    json_t *v = json_loadb(text, len, JSON_ALLOW_NUL, &err);
    if (!json_is_object(v))
        fail_msg("no JSON object (%s at %d): %.*s", err.text, err.position, (int)len, text);
    json_decref(v);
}

/* Stream sse_q (' for ") whole, cut in two anywhere and byte by byte: the first failure rv at
 * frame failed_at (0, 0: none), finished() after each frame as `finished` says, and exactly want_q
 * written (NULL: nothing to write). */
static void check(const char *sse_q, int rv, size_t failed_at, const char *finished, const char *want_q)
{
    static char sse[16384], want[16384];
    static size_t cuts[16384];
    static struct run r;
    size_t len = dq(sse_q, sse, sizeof(sse));
    size_t wlen = want_q != NULL ? dq(want_q, want, sizeof(want)) : 0;
    const char *w = want_q != NULL ? want : NULL;
    if (w != NULL)
        assert_message(w, wlen);
    run_cut(&r, BIG, sse, len, NULL, 0);
    assert_run(&r, rv, failed_at, finished, w, wlen);
    for (size_t cut = 0; cut <= len; cut++) {
        run_cut(&r, BIG, sse, len, &cut, 1);
        assert_run(&r, rv, failed_at, finished, w, wlen);
    }
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    run_cut(&r, BIG, sse, len, cuts, len);
    assert_run(&r, rv, failed_at, finished, w, wlen);
}

/* ---- whole answers ---- */

/* thinking with its signature, text with a citation, a tool call's input in fragments, the
 * usage with the cache's counts: everything as Anthropic sent it */
static const char full_stream[] =
    START("[]", "{'input_tokens':472,'cache_creation_input_tokens':1024,'cache_read_input_tokens':2048,"
                "'cache_creation':{'ephemeral_5m_input_tokens':1024,'ephemeral_1h_input_tokens':0},'output_tokens':2,"
                "'service_tier':'standard'}")
    BLOCK(0, "{'type':'thinking','thinking':'','signature':''}")
    THINK(0, "The user wants the weather")
    THINK(0, " in Paris.\\nI will call the tool.")
    DELTA(0, "{'type':'signature_delta','signature':'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds/Zv+q'}")
    STOP(0)
    BLOCK(1, "{'type':'text','text':''}")
    TEXT(1, "Per the forecast")
    DELTA(1, "{'type':'citations_delta','citation':{'type':'char_location','cited_text':'Paris: sunny, 21\\u00b0C',"
             "'document_index':0,'document_title':'Forecast','start_char_index':0,'end_char_index':18}}")
    PING
    TEXT(1, ", it is sunny \\u2014 \\'let me check\\'.")
    STOP(1)
    BLOCK(2, "{'type':'tool_use','id':'toolu_01T1x1fJ34qAmk2tNTrN7Up6','name':'get_weather','input':{}}")
    JSON(2, "")
    JSON(2, "{\\'city\\': \\'Pa")
    JSON(2, "ris\\', \\'unit\\'")
    JSON(2, ": \\'celsius\\', \\'days\\': [1, 2.5]}")
    STOP(2)
    MESSAGE_DELTA("{'stop_reason':'tool_use','stop_sequence':null}",
                  "{'input_tokens':472,'cache_creation_input_tokens':1024,'cache_read_input_tokens':2048,"
                  "'output_tokens':89}")
    MESSAGE_STOP;

static const char full_message[] =
    MSG_HEAD "'content':[{'type':'thinking','thinking':'The user wants the weather in Paris.\\nI will call the tool.',"
    "'signature':'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds/Zv+q'},"
    "{'type':'text','text':'Per the forecast, it is sunny \xe2\x80\x94 \\'let me check\\'.','citations':["
    "{'type':'char_location','cited_text':'Paris: sunny, 21\xc2\xb0" "C','document_index':0,'document_title':"
    "'Forecast','start_char_index':0,'end_char_index':18}]},"
    "{'type':'tool_use','id':'toolu_01T1x1fJ34qAmk2tNTrN7Up6','name':'get_weather','input':{'city':'Paris',"
    "'unit':'celsius','days':[1,2.5]}}],'stop_reason':'tool_use','stop_sequence':null,'usage':{'input_tokens':472,"
    "'cache_creation_input_tokens':1024,'cache_read_input_tokens':2048,'cache_creation':"
    "{'ephemeral_5m_input_tokens':1024,'ephemeral_1h_input_tokens':0},'output_tokens':89,"
    "'service_tier':'standard'}}";

static void test_full(void **state)
{
    check(full_stream, 0, 0, "00000000000000000001", full_message);
}

static void test_stop_sequence(void **state)
{
    check(START("[]", USAGE1)
          BLOCK(0, "{'type':'text','text':''}")
          TEXT(0, "1, 2, 3")
          STOP(0)
          MESSAGE_DELTA("{'stop_reason':'stop_sequence','stop_sequence':'\\n4'}", "{'output_tokens':7}")
          MESSAGE_STOP,
          0, 0, "000001",
          MSG_HEAD "'content':[{'type':'text','text':'1, 2, 3'}],'stop_reason':'stop_sequence','stop_sequence':'\\n4',"
          "'usage':{'input_tokens':12,'output_tokens':7}}");
}

/* a redacted_thinking block has no delta: it goes on as it started; a text block started with
 * text keeps it ahead of its deltas */
static void test_redacted_thinking(void **state)
{
    check(START("[]", USAGE1)
          BLOCK(0, "{'type':'redacted_thinking','data':"
                   "'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP'}")
          STOP(0)
          BLOCK(1, "{'type':'text','text':'Hel'}")
          TEXT(1, "lo")
          STOP(1)
          MESSAGE_DELTA("{'stop_reason':'end_turn','stop_sequence':null}", "{'output_tokens':30}")
          MESSAGE_STOP,
          0, 0, "00000001",
          MSG_HEAD "'content':[{'type':'redacted_thinking','data':"
          "'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP'},{'type':'text','text':'Hello'}],"
          "'stop_reason':'end_turn','stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':30}}");
}

/* pings anywhere (before message_start and after message_stop too), error frames, and types
 * to come change nothing */
static void test_ignored(void **state)
{
    check(PING
          EVENT("error", "not json at all")
          START("[]", USAGE1)
          PING
          BLOCK(0, "{'type':'text','text':''}")
          PING
          TEXT(0, "Hi")
          DELTA(0, "{'type':'sparkle_delta','sparkle':'*'}")
          DELTA(0, "{'note':'no type'}")
          EVENT("content_block_flash", "{'type':'content_block_flash','index':0}")
          EVENT("message", "{'type':'error','error':{'type':'overloaded_error','message':'Overloaded'}}")
          STOP(0)
          MESSAGE_DELTA("{'stop_reason':'end_turn','stop_sequence':null}", "{'output_tokens':2}")
          MESSAGE_STOP
          PING
          EVENT("error", "{'type':'error','error':{'type':'api_error','message':'late'}}")
          EVENT("content_block_flash", "{'type':'content_block_flash','index':0}"),
          0, 0, "00000000000001111",
          MSG_HEAD "'content':[{'type':'text','text':'Hi'}],'stop_reason':'end_turn','stop_sequence':null,"
          "'usage':{'input_tokens':12,'output_tokens':2}}");
}

/* web search: the server tool's call (input in fragments), its result block as started, text
 * citing it; the usage's server tool count */
static void test_server_tools(void **state)
{
    check(START("[]", "{'input_tokens':2679,'cache_creation_input_tokens':0,'cache_read_input_tokens':0,"
                      "'output_tokens':3}")
          BLOCK(0, "{'type':'server_tool_use','id':'srvtoolu_014hJH82Qum7Td6UV8gDXThB','name':'web_search','input':{}}")
          JSON(0, "")
          JSON(0, "{\\'query\\'")
          JSON(0, ": \\'weather NYC today\\'}")
          STOP(0)
          BLOCK(1, "{'type':'web_search_tool_result','tool_use_id':'srvtoolu_014hJH82Qum7Td6UV8gDXThB','content':["
                   "{'type':'web_search_result','title':'NYC Weather','url':'https://weather.example/nyc',"
                   "'encrypted_content':'Ev0DCioIAxgCIiQ3NmU4ZmI4OC1k','page_age':null}]}")
          STOP(1)
          BLOCK(2, "{'type':'text','text':'','citations':null}")
          DELTA(2, "{'type':'citations_delta','citation':{'type':'web_search_result_location','cited_text':'Sunny',"
                   "'url':'https://weather.example/nyc','title':'NYC Weather','encrypted_index':'Eo8BCioIAhgBIiQ'}}")
          TEXT(2, "It is sunny.")
          DELTA(2, "{'type':'citations_delta','citation':{'type':'web_search_result_location','cited_text':'Warm',"
                   "'url':'https://weather.example/nyc','title':'NYC Weather','encrypted_index':'Eo8BCioIAhgBIiR'}}")
          STOP(2)
          MESSAGE_DELTA("{'stop_reason':'end_turn','stop_sequence':null}",
                        "{'input_tokens':10682,'cache_creation_input_tokens':0,'cache_read_input_tokens':0,"
                        "'output_tokens':510,'server_tool_use':{'web_search_requests':1}}")
          MESSAGE_STOP,
          0, 0, "000000000000001",
          MSG_HEAD "'content':[{'type':'server_tool_use','id':'srvtoolu_014hJH82Qum7Td6UV8gDXThB','name':'web_search',"
          "'input':{'query':'weather NYC today'}},{'type':'web_search_tool_result','tool_use_id':"
          "'srvtoolu_014hJH82Qum7Td6UV8gDXThB','content':[{'type':'web_search_result','title':'NYC Weather','url':"
          "'https://weather.example/nyc','encrypted_content':'Ev0DCioIAxgCIiQ3NmU4ZmI4OC1k','page_age':null}]},"
          "{'type':'text','text':'It is sunny.','citations':[{'type':'web_search_result_location','cited_text':'Sunny',"
          "'url':'https://weather.example/nyc','title':'NYC Weather','encrypted_index':'Eo8BCioIAhgBIiQ'},"
          "{'type':'web_search_result_location','cited_text':'Warm','url':'https://weather.example/nyc','title':"
          "'NYC Weather','encrypted_index':'Eo8BCioIAhgBIiR'}]}],"
          "'stop_reason':'end_turn','stop_sequence':null,'usage':{'input_tokens':10682,"
          "'cache_creation_input_tokens':0,'cache_read_input_tokens':0,'output_tokens':510,"
          "'server_tool_use':{'web_search_requests':1}}}");
}

/* a tool call without arguments: only "" fragments make {}; no fragment at all leaves the input
 * as it started (none when it started with none) */
static void test_empty_input(void **state)
{
    check(START("[]", USAGE1)
          BLOCK(0, "{'type':'tool_use','id':'toolu_1','name':'now','input':{}}")
          JSON(0, "")
          STOP(0)
          BLOCK(1, "{'type':'tool_use','id':'toolu_2','name':'now','input':{'keep':1}}")
          STOP(1)
          BLOCK(2, "{'type':'tool_use','id':'toolu_3','name':'now'}")
          STOP(2)
          BLOCK(3, "{'type':'tool_use','id':'toolu_4','name':'now','input':{'was':1}}")
          JSON(3, "")
          JSON(3, "")
          STOP(3)
          MESSAGE_DELTA("{'stop_reason':'tool_use','stop_sequence':null}", "{'output_tokens':40}")
          MESSAGE_STOP,
          0, 0, "00000000000001",
          MSG_HEAD "'content':[{'type':'tool_use','id':'toolu_1','name':'now','input':{}},"
          "{'type':'tool_use','id':'toolu_2','name':'now','input':{'keep':1}},"
          "{'type':'tool_use','id':'toolu_3','name':'now'},"
          "{'type':'tool_use','id':'toolu_4','name':'now','input':{}}],"
          "'stop_reason':'tool_use','stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':40}}");
}

/* message_delta: every member of its delta (container, to come) and its own others
 * (context_management) on the message, new keys last; usage counts overwritten, a null kept
 * out, a new count last; a message_start without usage gets one */
static void test_message_delta(void **state)
{
    check(EVENT("message_start", "{'type':'message_start','message':{'id':'msg_2','type':'message','role':'assistant',"
                                 "'model':'claude-opus-4-1','content':[],'stop_reason':null,'stop_sequence':null}}")
          MESSAGE_DELTA("{'stop_reason':'pause_turn','stop_sequence':null,'container':{'id':'cntr_1','expires_at':"
                        "'2025-10-01T00:00:00Z'}}",
                        "{'input_tokens':5,'output_tokens':1}")
          EVENT("message_delta", "{'type':'message_delta','delta':{'stop_reason':'end_turn'},'usage':"
                                 "{'input_tokens':null,'output_tokens':9,'cache_read_input_tokens':null},"
                                 "'context_management':{'applied_edits':[]}}")
          EVENT("message_delta", "{'type':'message_delta','delta':{'stop_sequence':'END'}}")
          MESSAGE_STOP,
          0, 0, "00001",
          "{'id':'msg_2','type':'message','role':'assistant','model':'claude-opus-4-1','content':[],"
          "'stop_reason':'end_turn','stop_sequence':'END','container':{'id':'cntr_1','expires_at':"
          "'2025-10-01T00:00:00Z'},'usage':{'input_tokens':5,'output_tokens':9,'cache_read_input_tokens':null},"
          "'context_management':{'applied_edits':[]}}");
}

/* the frame's type is its data's "type", else the SSE event's name; content made when the
 * message has none */
static void test_type_from_name(void **state)
{
    check("data: {'type':'message_start','message':{'id':'msg_3','usage':{'output_tokens':0}}}\n\n"
          "event: content_block_start\ndata: {'index':0,'content_block':{'type':'text','text':'A'}}\n\n"
          "event: ping\ndata: {'type':'content_block_stop','index':0}\n\n"
          "event: message_stop\ndata: {}\n\n",
          0, 0, "0001", "{'id':'msg_3','usage':{'output_tokens':0},'content':[{'type':'text','text':'A'}]}");
}

/* text keeps every character: escapes decoded and written as jansson writes them, a NUL
 * included */
static void test_text_bytes(void **state)
{
    check(START("[]", USAGE1)
          BLOCK(0, "{'type':'text','text':''}")
          TEXT(0, "a\\u0000b \\u00e9\\ud83d\\ude00 \\/ \\t")
          TEXT(0, "\\\\")
          STOP(0)
          MESSAGE_STOP,
          0, 0, "000001",
          MSG_HEAD "'content':[{'type':'text','text':'a\\u0000b \xc3\xa9\xf0\x9f\x98\x80 / \\t\\\\'}],"
          "'stop_reason':null,'stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':1}}");
}

/* message_stop ends the blocks still open: their text set, their input parsed */
static void test_stop_ends_blocks(void **state)
{
    check(START("[]", USAGE1)
          BLOCK(0, "{'type':'text','text':''}")
          TEXT(0, "Calling.")
          BLOCK(1, "{'type':'tool_use','id':'toolu_1','name':'f','input':{}}")
          JSON(1, "{\\'x\\':")
          JSON(1, "1}")
          MESSAGE_STOP,
          0, 0, "0000001",
          MSG_HEAD "'content':[{'type':'text','text':'Calling.'},{'type':'tool_use','id':'toolu_1','name':'f',"
          "'input':{'x':1}}],'stop_reason':null,'stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':1}}");
}

/* not finished: what it has is written, a block still open with its text so far, its input as it
 * started until its JSON is whole */
static void test_unfinished(void **state)
{
    check(START("[]", USAGE1)
          BLOCK(0, "{'type':'thinking','thinking':'','signature':''}")
          THINK(0, "Hmm")
          BLOCK(1, "{'type':'tool_use','id':'toolu_1','name':'f','input':{}}")
          JSON(1, "{\\'x\\':")
          BLOCK(2, "{'type':'tool_use','id':'toolu_2','name':'g','input':{}}")
          JSON(2, "{\\'y\\':2}")
          BLOCK(3, "{'type':'text','text':''}")
          TEXT(3, "Done")
          STOP(3),
          0, 0, "0000000000",
          MSG_HEAD "'content':[{'type':'thinking','thinking':'Hmm','signature':''},{'type':'tool_use','id':'toolu_1',"
          "'name':'f','input':{}},{'type':'tool_use','id':'toolu_2','name':'g','input':{'y':2}},"
          "{'type':'text','text':'Done'}],"
          "'stop_reason':null,'stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':1}}");
}

/* ---- refused ---- */

#define TOOL0 BLOCK(0, "{'type':'tool_use','id':'toolu_1','name':'f','input':{}}")
#define EMPTY_MSG                                                                                                      \
    MSG_HEAD "'content':[],'stop_reason':null,'stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':1}}"
#define TOOL_MSG                                                                                                       \
    MSG_HEAD "'content':[{'type':'tool_use','id':'toolu_1','name':'f','input':{}}],'stop_reason':null," \
             "'stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':1}}"

/* a tool's input JSON that is no whole object fails its block's stop (or message_stop); the
 * failure is final, and what was gathered before it is still written */
static void test_bad_input(void **state)
{
    check(START("[]", USAGE1) TOOL0 JSON(0, "{\\'a\\':") STOP(0) MESSAGE_STOP, -EPROTO, 4, "00000", TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 JSON(0, "{\\'a\\':") MESSAGE_STOP, -EPROTO, 4, "0000", TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 JSON(0, "[1, 2]") STOP(0), -EPROTO, 4, "0000", TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 JSON(0, "{} {}") STOP(0), -EPROTO, 4, "0000", TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 JSON(0, "{\\'n\\': 123456789012345678901234567890}") STOP(0), -EPROTO, 4, "0000",
          TOOL_MSG);
    /* a delta's string of another type */
    check(START("[]", USAGE1) TOOL0 DELTA(0, "{'type':'input_json_delta','partial_json':5}"), -EPROTO, 3, "000",
          TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 DELTA(0, "{'type':'input_json_delta'}"), -EPROTO, 3, "000", TOOL_MSG);
    check(START("[]", USAGE1) BLOCK(0, "{'type':'text','text':7}") TEXT(0, "a"), -EPROTO, 3, "000",
          MSG_HEAD "'content':[{'type':'text','text':7}],'stop_reason':null,'stop_sequence':null,'usage':"
          "{'input_tokens':12,'output_tokens':1}}");
    check(START("[]", USAGE1) TOOL0 DELTA(0, "{'type':'signature_delta','signature':null}"), -EPROTO, 3, "000",
          TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 DELTA(0, "{'type':'citations_delta','citation':'x'}"), -EPROTO, 3, "000", TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 DELTA(0, "'text_delta'"), -EPROTO, 3, "000", TOOL_MSG);
}

/* blocks come in order: a start at any index but the content's length, a delta or stop for a
 * block that never started or already stopped */
static void test_out_of_order(void **state)
{
    check(START("[]", USAGE1) BLOCK(1, "{'type':'text','text':''}"), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) TOOL0 TOOL0, -EPROTO, 3, "000", TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 BLOCK(-1, "{'type':'text','text':''}"), -EPROTO, 3, "000", TOOL_MSG);
    check(START("[]", USAGE1) BLOCK('0', "{'type':'text','text':''}"), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) BLOCK(0, "[]"), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) TOOL0 JSON(1, "{}"), -EPROTO, 3, "000", TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 STOP(1), -EPROTO, 3, "000", TOOL_MSG);
    check(START("[]", USAGE1) TEXT(0, "a"), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) TOOL0 STOP(0) JSON(0, "{}"), -EPROTO, 4, "0000", TOOL_MSG);
    check(START("[]", USAGE1) TOOL0 STOP(0) STOP(0), -EPROTO, 4, "0000", TOOL_MSG);
    /* a message_start's content that is there already counts, however long */
    check(START("[{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}]", USAGE1) TEXT(17, "a") STOP(17) STOP(17),
          -EPROTO, 4, "0000",
          MSG_HEAD "'content':[{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{'text':'a'}],'stop_reason':null,"
          "'stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':1}}");
    check(START("[{'type':'text','text':'x'}]", USAGE1) BLOCK(0, "{'type':'text','text':''}"), -EPROTO, 2, "00",
          MSG_HEAD "'content':[{'type':'text','text':'x'}],'stop_reason':null,'stop_sequence':null,'usage':"
          "{'input_tokens':12,'output_tokens':1}}");
    check(START("[{'type':'text','text':'x'}]", USAGE1) TEXT(0, "y") STOP(0) BLOCK(1, "{'type':'text','text':''}")
          MESSAGE_STOP,
          0, 0, "00001",
          MSG_HEAD "'content':[{'type':'text','text':'xy'},{'type':'text','text':''}],'stop_reason':null,"
          "'stop_sequence':null,'usage':{'input_tokens':12,'output_tokens':1}}");
}

/* before message_start only ping and error frames; one message_start; after message_stop,
 * nothing but ping, error and types to come */
static void test_order(void **state)
{
    check(PING BLOCK(0, "{'type':'text','text':''}") START("[]", USAGE1), -EPROTO, 2, "000", NULL);
    check(MESSAGE_DELTA("{'stop_reason':'end_turn'}", "{}"), -EPROTO, 1, "0", NULL);
    check(MESSAGE_STOP, -EPROTO, 1, "0", NULL);
    check(EVENT("content_block_flash", "{}"), -EPROTO, 1, "0", NULL);
    check(EVENT("message", "{'type':7}"), -EPROTO, 1, "0", NULL);
    check(START("[]", USAGE1) START("[]", USAGE1), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) MESSAGE_STOP START("[]", USAGE1), -EPROTO, 3, "011", EMPTY_MSG);
    check(START("[]", USAGE1) MESSAGE_STOP TOOL0, -EPROTO, 3, "011", EMPTY_MSG);
    check(START("[]", USAGE1) MESSAGE_STOP MESSAGE_DELTA("{'stop_reason':'end_turn'}", "{}"), -EPROTO, 3, "011",
          EMPTY_MSG);
    check(START("[]", USAGE1) MESSAGE_STOP MESSAGE_STOP, -EPROTO, 3, "011", EMPTY_MSG);
    /* message_delta may not replace the content, nor be of the wrong shape */
    check(START("[]", USAGE1) MESSAGE_DELTA("{'content':[]}", "{}"), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) EVENT("message_delta", "{'type':'message_delta','delta':{},'content':[]}"), -EPROTO, 2,
          "00", EMPTY_MSG);
    check(START("[]", USAGE1) MESSAGE_DELTA("[]", "{}"), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) MESSAGE_DELTA("{}", "3"), -EPROTO, 2, "00", EMPTY_MSG);
    /* a message_start without a message object, or its content no array */
    check(EVENT("message_start", "{'type':'message_start','message':[]}"), -EPROTO, 1, "0", NULL);
    check(EVENT("message_start", "{'type':'message_start'}"), -EPROTO, 1, "0", NULL);
    check(EVENT("message_start", "{'type':'message_start','message':{'content':{}}}"), -EPROTO, 1, "0", NULL);
}

/* data that is no JSON object */
static void test_not_json(void **state)
{
    check(START("[]", USAGE1) EVENT("content_block_start", "{'type':'content_block_start'"), -EPROTO, 2, "00",
          EMPTY_MSG);
    check(START("[]", USAGE1) EVENT("ping", "[1]"), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) EVENT("ping", "ping"), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) EVENT("ping", ""), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) EVENT("ping", "{'a':'\xff'}"), -EPROTO, 2, "00", EMPTY_MSG);
    check(START("[]", USAGE1) EVENT("ping", "{'a\\u0000':1}"), -EPROTO, 2, "00", EMPTY_MSG);
    check(EVENT("message_start", "{'type':'message_start','message':{}} x"), -EPROTO, 1, "0", NULL);
}

/* ---- memory ---- */

/* Every cap from 0 up: the stream is either gathered whole, written exactly as with room to
 * spare, or refused with -ENOBUFS at some frame; held never passes the cap (on_frame), and the
 * refusals come at many frames, the side buffers' included. */
static void test_cap(void **state)
{
    static char sse[16384], want[16384];
    static struct run r;
    size_t len = dq(full_stream, sse, sizeof(sse));
    size_t wlen = dq(full_message, want, sizeof(want));
    char at[64] = {0};
    size_t distinct = 0, need, least = 0, most_fail = 0;
    assert_json(want, wlen);
    run_cut(&r, BIG, sse, len, NULL, 0);
    need = r.most;
    assert_int_equal(r.rv, 0);
    assert_true(need > len); /* jansson's nodes cost more than the text */
    keel_anthropic_msg_release(&r.m);
    for (size_t max = 0; max <= need + 600; max++) {
        run_cut(&r, max, sse, len, NULL, 0);
        if (r.rv == 0) {
            least = least ? least : max;
            assert_run(&r, 0, 0, "00000000000000000001", want, wlen);
            continue;
        }
        assert_int_equal(r.rv, -ENOBUFS);
        most_fail = max;
        assert_true(r.failed_at > 0 && r.failed_at < sizeof(at));
        distinct += at[r.failed_at] == 0;
        at[r.failed_at] = 1;
        keel_anthropic_msg_release(&r.m);
    }
    assert_true(distinct >= 10);
    /* here the refusals stop at one cap: a change is charged whole before what it replaces is
     * credited, so the least cap passes the most held after a frame by what a change replaces
     * (at most the tool's input as it started, {}) */
    assert_true(most_fail + 1 == least && least >= need && least <= need + 256);
    /* a cap too small for the message_start */
    run_cut(&r, 100, sse, len, NULL, 0);
    assert_int_equal(r.rv, -ENOBUFS);
    assert_int_equal(r.failed_at, 1);
    assert_int_equal(r.m.held, 0);
    keel_anthropic_msg_release(&r.m);
}

/* the written Message must fit out's cap: all or nothing, out as it was on failure */
static void test_out_cap(void **state)
{
    static char sse[16384], want[16384];
    static struct run r;
    struct keel_buf out;
    size_t len = dq(full_stream, sse, sizeof(sse));
    size_t wlen = dq(full_message, want, sizeof(want));
    run_cut(&r, BIG, sse, len, NULL, 0);
    keel_buf_init(&out, 3 + wlen - 1);
    assert_int_equal(keel_buf_append(&out, "ab:", 3), 0);
    assert_int_equal(keel_anthropic_msg_write(&r.m, &out), -ENOBUFS);
    assert_wrote(&out, "ab:", 3);
    out.max = 3 + wlen;
    assert_int_equal(keel_anthropic_msg_write(&r.m, &out), 0);
    assert_int_equal(out.len, 3 + wlen);
    assert_memory_equal(out.base + 3, want, wlen);
    keel_buf_release(&out);
    keel_anthropic_msg_release(&r.m);
}

/* jansson's allocations (the test's own allocator, test_nomem only): from the fail_at-th on,
 * every one fails. Not the fail_at-th alone: jansson's lexer ignores a failure to grow its
 * buffer (lex_save), so one failure followed by successes drops a byte of a string silently. */
static size_t allocs, fail_at;

static void *failing_malloc(size_t n)
{
    return fail_at != 0 && ++allocs >= fail_at ? NULL : malloc(n);
}

/* memory running out at each of jansson's allocations in turn (keel_buf's realloc never):
 * every frame's failure is -ENOMEM, final, and leaks nothing; a run it spared writes the
 * Message exactly. Then while writing, finished and unfinished (its view copies the message):
 * -ENOMEM and out as it was, or the Message exactly. */
static void test_nomem(void **state)
{
    static const char unfinished[] = START("[]", USAGE1) BLOCK(0, "{'type':'text','text':''}") TEXT(0, "So far");
    static const char unfinished_want[] =
        MSG_HEAD "'content':[{'type':'text','text':'So far'}],'stop_reason':null,'stop_sequence':null,"
        "'usage':{'input_tokens':12,'output_tokens':1}}";
    static char sse[16384], want[16384];
    static struct run r;
    struct keel_buf out;
    size_t len = dq(full_stream, sse, sizeof(sse)), wlen = dq(full_message, want, sizeof(want)), failed = 0;
    json_set_alloc_funcs(failing_malloc, free);
    for (size_t at = 1;; at++) {
        allocs = 0;
        fail_at = at;
        run_cut(&r, BIG, sse, len, NULL, 0);
        fail_at = 0;
        if (r.rv != 0) {
            assert_int_equal(r.rv, -ENOMEM);
            failed++;
            keel_anthropic_msg_release(&r.m);
            continue;
        }
        assert_run(&r, 0, 0, "00000000000000000001", want, wlen);
        if (allocs < at)
            break; /* no allocation failed */
    }
    assert_true(failed > 50);
    for (int pass = 0; pass < 2; pass++) {
        size_t n = pass == 0 ? len : dq(unfinished, sse, sizeof(sse));
        size_t wn = pass == 0 ? wlen : dq(unfinished_want, want, sizeof(want));
        run_cut(&r, BIG, sse, n, NULL, 0);
        assert_int_equal(r.rv, 0);
        size_t wfailed = 0;
        keel_buf_init(&out, BIG);
        for (size_t at = 1;; at++) {
            assert_int_equal(keel_buf_append(&out, "x", 1), 0);
            allocs = 0;
            fail_at = at;
            int rv = keel_anthropic_msg_write(&r.m, &out);
            fail_at = 0;
            if (rv == 0) {
                assert_int_equal(out.len, 1 + wn);
                assert_memory_equal(out.base + 1, want, wn);
                if (allocs < at)
                    break;
            } else {
                assert_int_equal(rv, -ENOMEM);
                assert_int_equal(out.len, 1);
                wfailed++;
            }
            keel_buf_reset(&out);
        }
        assert_true(wfailed >= (pass == 0 ? 1 : 4)); /* the view's copies fail too */
        keel_buf_release(&out);
        keel_anthropic_msg_release(&r.m);
    }
    json_set_alloc_funcs(malloc, free);
}

/* release on a zeroed builder, twice, and after init alone; a failure before message_start
 * leaves nothing held */
static void test_release(void **state)
{
    struct keel_anthropic_msg m;
    struct keel_buf out;
    memset(&m, 0, sizeof(m));
    keel_anthropic_msg_release(&m);
    keel_anthropic_msg_release(&m);
    keel_anthropic_msg_init(&m, 4096);
    assert_false(keel_anthropic_msg_finished(&m));
    keel_anthropic_msg_release(&m);
    assert_int_equal(m.max, 4096);
    keel_anthropic_msg_init(&m, 4096);
    assert_int_equal(keel_anthropic_msg_frame(&m, "message", "{", 1), -EPROTO);
    assert_int_equal(keel_anthropic_msg_frame(&m, "ping", "{}", 2), -EPROTO); /* final */
    assert_int_equal(m.held, 0);
    keel_buf_init(&out, 64);
    assert_int_equal(keel_anthropic_msg_write(&m, &out), -EPROTO);
    assert_int_equal(out.len, 0);
    keel_buf_release(&out);
    keel_anthropic_msg_release(&m);
    keel_anthropic_msg_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_stop_sequence),
        cmocka_unit_test(test_redacted_thinking),
        cmocka_unit_test(test_ignored),
        cmocka_unit_test(test_server_tools),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_message_delta),
        cmocka_unit_test(test_type_from_name),
        cmocka_unit_test(test_text_bytes),
        cmocka_unit_test(test_stop_ends_blocks),
        cmocka_unit_test(test_unfinished),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_out_cap),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
