/* test_translate_messages.c - Anthropic Messages bodies as OpenAI chat bodies: each mapping rule
 * with the exact bytes expected, what is dropped, every refusal with its message, and bodies cut
 * at every byte. JSON here is written with ' for " (swapped before use) so that it stays
 * readable. */
#include "unit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/translate.h"

#define CAP 8192

static const struct keel_translate_chat_opts OPTS = {.model = "gpt-x", .stream = 0};

/* s with ' and " swapped */
static const char *q(const char *s, char *out)
{
    size_t i;
    for (i = 0; s[i] != '\0'; i++) {
        assert_true(i < CAP - 1);
        out[i] = s[i] == '\'' ? '"' : s[i] == '"' ? '\'' : s[i];
    }
    out[i] = '\0';
    return out;
}

/* body translated with o is exactly want, with want_dropped listed */
static void check(const struct keel_translate_chat_opts *o, const char *body, const char *want, const char *want_dropped)
{
    char in[CAP], exp[CAP], err[256] = "x", dropped[512] = "x";
    size_t n = 12345;
    q(body, in);
    q(want, exp);
    char *out = keel_translate_messages_to_chat(in, strlen(in), o, &n, err, sizeof(err), dropped, sizeof(dropped));
    if (out == NULL)
        fail_msg("not translated: %s", err);
    assert_string_equal(out, exp);
    assert_int_equal(n, strlen(exp));
    assert_string_equal(err, "");
    assert_string_equal(dropped, want_dropped);
    free(out);
}

#define CHECK(body, want, dropped) check(&OPTS, body, want, dropped)

/* body is refused with exactly want_err (written as is, not swapped) */
static void check_error(const char *body, const char *want_err)
{
    char in[CAP], err[256] = "x", dropped[512];
    size_t n = 12345;
    q(body, in);
    char *out = keel_translate_messages_to_chat(in, strlen(in), &OPTS, &n, err, sizeof(err), dropped, sizeof(dropped));
    if (out != NULL)
        fail_msg("translated, expected \"%s\": %s", want_err, out);
    assert_string_equal(err, want_err);
    assert_int_equal(n, 0);
}

/* a body whose only message is user text "Hi", with extra top-level members */
#define HI_MSG "{'role':'user','content':'Hi'}"
#define HI "'messages':[" HI_MSG "]"
#define HI_OUT "'messages':[{'role':'user','content':'Hi'}]"

/* ---- the frame: model, max_tokens, stream ---------------------------------------------------- */

static void test_minimal(void **state)
{
    CHECK("{'model':'claude-x','max_tokens':1024," HI "}",
          "{'model':'gpt-x'," HI_OUT ",'max_completion_tokens':1024}", "");
    /* max_tokens is Anthropic's required field, but a body without it still goes */
    CHECK("{" HI "}", "{'model':'gpt-x'," HI_OUT "}", "");
    CHECK("{" HI ",'max_tokens':null}", "{'model':'gpt-x'," HI_OUT "}", "");
    /* the client's stream and model are replaced by the options' */
    struct keel_translate_chat_opts o = OPTS;
    o.stream = 1;
    CHECK("{'model':'claude-x','stream':true," HI "}", "{'model':'gpt-x'," HI_OUT "}", "");
    check(&o, "{'model':'claude-x','stream':false," HI "}",
          "{'model':'gpt-x'," HI_OUT ",'stream':true,'stream_options':{'include_usage':true}}", "");
    check(&o, "{" HI ",'max_tokens':5}",
          "{'model':'gpt-x'," HI_OUT ",'max_completion_tokens':5,'stream':true,'stream_options':{'include_usage':true}}",
          "");
}

/* ---- system ----------------------------------------------------------------------------------- */

static void test_system(void **state)
{
    CHECK("{'system':'Be brief.'," HI "}",
          "{'model':'gpt-x','messages':[{'role':'system','content':'Be brief.'},{'role':'user','content':'Hi'}]}", "");
    /* text blocks joined with a blank line; cache_control and empty texts go unlisted */
    CHECK("{'system':[{'type':'text','text':'You are Claude Code.'},{'type':'text','text':''},"
          "{'type':'text','text':'Use tools.','cache_control':{'type':'ephemeral'}}]," HI "}",
          "{'model':'gpt-x','messages':[{'role':'system','content':'You are Claude Code.\\n\\nUse tools.'},"
          "{'role':'user','content':'Hi'}]}",
          "");
    /* no text: no system message */
    CHECK("{'system':''," HI "}", "{'model':'gpt-x'," HI_OUT "}", "");
    CHECK("{'system':[]," HI "}", "{'model':'gpt-x'," HI_OUT "}", "");
    CHECK("{'system':[{'type':'text','text':''}]," HI "}", "{'model':'gpt-x'," HI_OUT "}", "");
    CHECK("{'system':null," HI "}", "{'model':'gpt-x'," HI_OUT "}", "");
}

/* ---- user ------------------------------------------------------------------------------------- */

static void test_user_blocks(void **state)
{
    /* blocks always become an array of parts, even all text; extras inside blocks go unlisted */
    CHECK("{'messages':[{'role':'user','content':[{'type':'text','text':'a'},"
          "{'type':'text','text':'b','cache_control':{'type':'ephemeral'},'citations':[]}]}]}",
          "{'model':'gpt-x','messages':[{'role':'user','content':[{'type':'text','text':'a'},{'type':'text','text':'b'}]}]}",
          "");
    CHECK("{'messages':[{'role':'user','content':["
          "{'type':'text','text':'What is this?'},"
          "{'type':'image','source':{'type':'base64','media_type':'image/png','data':'iVBORw0KGgo='}},"
          "{'type':'image','source':{'type':'url','url':'https://example.com/cat.jpg'},'cache_control':{'type':'ephemeral'}}]}]}",
          "{'model':'gpt-x','messages':[{'role':'user','content':["
          "{'type':'text','text':'What is this?'},"
          "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0KGgo='}},"
          "{'type':'image_url','image_url':{'url':'https://example.com/cat.jpg'}}]}]}",
          "");
    /* a string content is sent as it is, empty too; a content of no blocks sends nothing */
    CHECK("{'messages':[{'role':'user','content':''},{'role':'user','content':[]}]}",
          "{'model':'gpt-x','messages':[{'role':'user','content':''}]}", "");
}

static void test_strings_kept(void **state)
{
    /* escapes decode to the same string; jansson writes non-ASCII as UTF-8 and escapes what JSON
     * needs */
    CHECK("{'messages':[{'role':'user','content':'caf\\u00e9 \\'quoted\\' \\\\ \\/ \\t \\u0000 \\ud83d\\ude00'}]}",
          "{'model':'gpt-x','messages':[{'role':'user','content':"
          "'caf\xc3\xa9 \\'quoted\\' \\\\ / \\t \\u0000 \xf0\x9f\x98\x80'}]}",
          "");
}

/* ---- tool results ------------------------------------------------------------------------------ */

static void test_tool_results(void **state)
{
    /* tool messages first, in their order, then the turn's other blocks as one user message */
    CHECK("{'messages':[{'role':'user','content':["
          "{'type':'text','text':'Thanks.'},"
          "{'type':'tool_result','tool_use_id':'toolu_1','content':'Sunny'},"
          "{'type':'image','source':{'type':'url','url':'https://x/y.png'}},"
          "{'type':'tool_result','tool_use_id':'toolu_2','content':[{'type':'text','text':'Rain'},"
          "{'type':'text','text':''},{'type':'text','text':'Wind','cache_control':{'type':'ephemeral'}}]},"
          "{'type':'tool_result','tool_use_id':'toolu_3'},"
          "{'type':'tool_result','tool_use_id':'toolu_4','content':[]},"
          "{'type':'tool_result','tool_use_id':'toolu_5','content':null,'is_error':false}]}]}",
          "{'model':'gpt-x','messages':["
          "{'role':'tool','tool_call_id':'toolu_1','content':'Sunny'},"
          "{'role':'tool','tool_call_id':'toolu_2','content':'Rain\\n\\nWind'},"
          "{'role':'tool','tool_call_id':'toolu_3','content':''},"
          "{'role':'tool','tool_call_id':'toolu_4','content':''},"
          "{'role':'tool','tool_call_id':'toolu_5','content':''},"
          "{'role':'user','content':[{'type':'text','text':'Thanks.'},"
          "{'type':'image_url','image_url':{'url':'https://x/y.png'}}]}]}",
          "");
    /* a turn of tool results only: no user message; is_error true is dropped (and listed once) */
    CHECK("{'messages':[{'role':'user','content':["
          "{'type':'tool_result','tool_use_id':'a','content':'boom','is_error':true},"
          "{'type':'tool_result','tool_use_id':'b','content':'bang','is_error':true}]}]}",
          "{'model':'gpt-x','messages':["
          "{'role':'tool','tool_call_id':'a','content':'boom'},{'role':'tool','tool_call_id':'b','content':'bang'}]}",
          "messages[].content[].is_error");
}

/* ---- assistant -------------------------------------------------------------------------------- */

static void test_assistant(void **state)
{
    CHECK("{'messages':[" HI_MSG ",{'role':'assistant','content':'Hello.'}]}",
          "{'model':'gpt-x','messages':[{'role':'user','content':'Hi'},{'role':'assistant','content':'Hello.'}]}", "");
    /* texts concatenated as they are, tool_use as tool calls (input as compact JSON text, numbers
     * as jansson writes them), thinking dropped */
    CHECK("{'messages':[" HI_MSG ",{'role':'assistant','content':["
          "{'type':'thinking','thinking':'hmm','signature':'sig'},"
          "{'type':'text','text':'Checking '},{'type':'text','text':'both.'},"
          "{'type':'tool_use','id':'toolu_1','name':'weather','input':{'city':'Oslo'},'cache_control':{'type':'ephemeral'}},"
          "{'type':'redacted_thinking','data':'xxx'},"
          "{'type':'tool_use','id':'toolu_2','name':'weather','input':"
          "{'city':'Bergen','days':2,'t':0.5,'r':0.7,'x':[true,null,{}],'s':'\\'\\u00e9'}},"
          "{'type':'tool_use','id':'toolu_3','name':'now','input':{}}]}]}",
          "{'model':'gpt-x','messages':[{'role':'user','content':'Hi'},{'role':'assistant','content':'Checking both.',"
          "'tool_calls':["
          "{'id':'toolu_1','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'}},"
          "{'id':'toolu_2','type':'function','function':{'name':'weather','arguments':"
          "'{\\'city\\':\\'Bergen\\',\\'days\\':2,\\'t\\':0.5,\\'r\\':0.69999999999999996,\\'x\\':[true,null,{}],"
          "\\'s\\':\\'\\\\\\'\xc3\xa9\\'}'}},"
          "{'id':'toolu_3','type':'function','function':{'name':'now','arguments':'{}'}}]}]}",
          "messages[].content[].thinking,messages[].content[].redacted_thinking");
    /* tool calls and no text: content null; neither: content "" */
    CHECK("{'messages':[" HI_MSG ",{'role':'assistant','content':[{'type':'text','text':''},"
          "{'type':'tool_use','id':'t','name':'f','input':{}}]},"
          "{'role':'assistant','content':[{'type':'thinking','thinking':'x'}]},{'role':'assistant','content':[]}]}",
          "{'model':'gpt-x','messages':[{'role':'user','content':'Hi'},"
          "{'role':'assistant','content':null,'tool_calls':[{'id':'t','type':'function','function':{'name':'f','arguments':'{}'}}]},"
          "{'role':'assistant','content':''},{'role':'assistant','content':''}]}",
          "messages[].content[].thinking");
}

/* a conversation as Claude Code sends it: a tool round trip */
static void test_tool_round_trip(void **state)
{
    CHECK("{'model':'claude-sonnet-4-5','max_tokens':32000,'messages':["
          "{'role':'user','content':[{'type':'text','text':'List files'}]},"
          "{'role':'assistant','content':[{'type':'text','text':'Running ls.'},"
          "{'type':'tool_use','id':'toolu_01','name':'Bash','input':{'command':'ls'}}]},"
          "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_01','content':'a.c\\nb.c'},"
          "{'type':'text','text':'Now count them.','cache_control':{'type':'ephemeral'}}]}]}",
          "{'model':'gpt-x','messages':["
          "{'role':'user','content':[{'type':'text','text':'List files'}]},"
          "{'role':'assistant','content':'Running ls.','tool_calls':[{'id':'toolu_01','type':'function','function':"
          "{'name':'Bash','arguments':'{\\'command\\':\\'ls\\'}'}}]},"
          "{'role':'tool','tool_call_id':'toolu_01','content':'a.c\\nb.c'},"
          "{'role':'user','content':[{'type':'text','text':'Now count them.'}]}],'max_completion_tokens':32000}",
          "");
}

static void test_no_merge(void **state)
{
    /* OpenAI takes consecutive messages of one role: they stay as they are; the conversation may
     * open with the assistant */
    CHECK("{'messages':[{'role':'assistant','content':'a'},{'role':'assistant','content':'b'},"
          "{'role':'user','content':'c'},{'role':'user','content':[{'type':'text','text':'d'}]}]}",
          "{'model':'gpt-x','messages':[{'role':'assistant','content':'a'},{'role':'assistant','content':'b'},"
          "{'role':'user','content':'c'},{'role':'user','content':[{'type':'text','text':'d'}]}]}",
          "");
}

/* ---- sampling --------------------------------------------------------------------------------- */

static void test_sampling(void **state)
{
    CHECK("{" HI ",'stop_sequences':['END','\\n\\nHuman:'],'temperature':0.5,'top_p':0.25,'top_k':40}",
          "{'model':'gpt-x'," HI_OUT ",'stop':['END','\\n\\nHuman:'],'temperature':0.5,'top_p':0.25}", "top_k");
    /* numbers as jansson writes them: an integer as it is, a real with 17 significant digits */
    CHECK("{" HI ",'temperature':1}", "{'model':'gpt-x'," HI_OUT ",'temperature':1}", "");
    CHECK("{" HI ",'temperature':0.7}", "{'model':'gpt-x'," HI_OUT ",'temperature':0.69999999999999996}", "");
    CHECK("{" HI ",'temperature':1e0,'top_p':0}", "{'model':'gpt-x'," HI_OUT ",'temperature':1.0,'top_p':0}", "");
    /* an empty stop_sequences says nothing */
    CHECK("{" HI ",'stop_sequences':[]}", "{'model':'gpt-x'," HI_OUT "}", "");
}

/* thinking `t` becomes reasoning_effort want (NULL: none), want_dropped listed */
static void check_thinking(const char *t, const char *want, const char *want_dropped)
{
    char body[CAP], out[CAP];
    snprintf(body, sizeof(body), "{" HI ",'thinking':%s}", t);
    snprintf(out, sizeof(out), "{'model':'gpt-x'," HI_OUT "%s%s%s}", want != NULL ? ",'reasoning_effort':'" : "",
             want != NULL ? want : "", want != NULL ? "'" : "");
    CHECK(body, out, want_dropped);
}

static void test_thinking(void **state)
{
    check_thinking("{'type':'enabled','budget_tokens':1024}", "low", "");
    check_thinking("{'type':'enabled','budget_tokens':0}", "low", "");
    check_thinking("{'type':'enabled','budget_tokens':1025}", "medium", "");
    check_thinking("{'type':'enabled','budget_tokens':8192}", "medium", "");
    check_thinking("{'type':'enabled','budget_tokens':8193}", "high", "");
    check_thinking("{'type':'enabled','budget_tokens':63999}", "high", "");
    check_thinking("{'type':'adaptive'}", "medium", "");
    check_thinking("{'type':'disabled'}", NULL, "");
    check_thinking("null", NULL, "");
    /* anything else is dropped */
    check_thinking("{'type':'enabled'}", NULL, "thinking");
    check_thinking("{'type':'enabled','budget_tokens':'2048'}", NULL, "thinking");
    check_thinking("{'type':'enabled','budget_tokens':2048.0}", NULL, "thinking");
    check_thinking("{'type':'deep'}", NULL, "thinking");
    check_thinking("true", NULL, "thinking");
}

/* ---- tools ------------------------------------------------------------------------------------ */

#define TOOLS                                                                                                  \
    "'tools':[{'name':'w','description':'Weather','input_schema':"                                             \
    "{'type':'object','properties':{'city':{'type':'string'}},'required':['city']},"                           \
    "'cache_control':{'type':'ephemeral'}},"                                                                   \
    "{'type':'custom','name':'now','input_schema':{'type':'object'}}]"
#define TOOLS_OUT                                                                                              \
    "'tools':[{'type':'function','function':{'name':'w','description':'Weather','parameters':"                 \
    "{'type':'object','properties':{'city':{'type':'string'}},'required':['city']}}},"                         \
    "{'type':'function','function':{'name':'now','parameters':{'type':'object'}}}]"

static void test_tools(void **state)
{
    CHECK("{" HI "," TOOLS "}", "{'model':'gpt-x'," HI_OUT "," TOOLS_OUT "}", "");
    /* a tool's extras are listed */
    CHECK("{" HI ",'tools':[{'name':'f','input_schema':{'type':'object'},'strict':true,'input_examples':[{}]}]}",
          "{'model':'gpt-x'," HI_OUT ",'tools':[{'type':'function','function':{'name':'f','parameters':{'type':'object'}}}]}",
          "tools[].strict,tools[].input_examples");
    /* an empty tools array sends no tools; tool_choice without tools goes */
    CHECK("{" HI ",'tools':[],'tool_choice':{'type':'auto','disable_parallel_tool_use':true}}",
          "{'model':'gpt-x'," HI_OUT "}", "tool_choice");
    CHECK("{" HI ",'tool_choice':{'type':'any'}}", "{'model':'gpt-x'," HI_OUT "}", "tool_choice");
}

/* one tool, then `extra` members; want: what follows the tools in the output */
static void check_tool_choice(const char *extra, const char *want)
{
    char body[CAP], out[CAP];
    snprintf(body, sizeof(body), "{" HI ",'tools':[{'name':'w','input_schema':{'type':'object'}}]%s}", extra);
    snprintf(out, sizeof(out),
             "{'model':'gpt-x'," HI_OUT ",'tools':[{'type':'function','function':{'name':'w','parameters':{'type':'object'}}}]%s}",
             want);
    CHECK(body, out, "");
}

static void test_tool_choice(void **state)
{
    check_tool_choice(",'tool_choice':{'type':'auto'}", ",'tool_choice':'auto'");
    check_tool_choice(",'tool_choice':{'type':'any'}", ",'tool_choice':'required'");
    check_tool_choice(",'tool_choice':{'type':'none'}", ",'tool_choice':'none'");
    check_tool_choice(",'tool_choice':{'type':'tool','name':'w'}",
                      ",'tool_choice':{'type':'function','function':{'name':'w'}}");
    /* disable_parallel_tool_use: true -> parallel_tool_calls: false; false is the default */
    check_tool_choice(",'tool_choice':{'type':'auto','disable_parallel_tool_use':true}",
                      ",'tool_choice':'auto','parallel_tool_calls':false");
    check_tool_choice(",'tool_choice':{'type':'tool','name':'w','disable_parallel_tool_use':true}",
                      ",'tool_choice':{'type':'function','function':{'name':'w'}},'parallel_tool_calls':false");
    check_tool_choice(",'tool_choice':{'type':'any','disable_parallel_tool_use':false}", ",'tool_choice':'required'");
    check_tool_choice(",'tool_choice':null", "");
}

/* ---- metadata and the rest -------------------------------------------------------------------- */

static void test_metadata(void **state)
{
    CHECK("{" HI ",'metadata':{'user_id':'u1'}}", "{'model':'gpt-x'," HI_OUT ",'user':'u1'}", "");
    CHECK("{" HI ",'metadata':{'team':'x','user_id':'u1','tier':null}}", "{'model':'gpt-x'," HI_OUT ",'user':'u1'}",
          "metadata.team");
    CHECK("{" HI ",'metadata':{'user_id':7}}", "{'model':'gpt-x'," HI_OUT "}", "metadata.user_id");
    CHECK("{" HI ",'metadata':'u1'}", "{'model':'gpt-x'," HI_OUT "}", "metadata");
    CHECK("{" HI ",'metadata':{}}", "{'model':'gpt-x'," HI_OUT "}", "");
}

/* every member, in the order the output writes them */
static void test_everything(void **state)
{
    struct keel_translate_chat_opts o = {.model = "gpt-5", .stream = 1};
    check(&o,
          "{'model':'claude-opus-4-1','stream':false,'metadata':{'user_id':'u'},"
          "'tool_choice':{'type':'any','disable_parallel_tool_use':true}," TOOLS ","
          "'thinking':{'type':'enabled','budget_tokens':4096},'top_p':0.5,'temperature':1,'stop_sequences':['X'],"
          "'max_tokens':300,'system':'S'," HI "}",
          "{'model':'gpt-5','messages':[{'role':'system','content':'S'},{'role':'user','content':'Hi'}],"
          "'max_completion_tokens':300,'stop':['X'],'temperature':1,'top_p':0.5,'reasoning_effort':'medium',"
          TOOLS_OUT ",'tool_choice':'required','parallel_tool_calls':false,'user':'u','stream':true,"
          "'stream_options':{'include_usage':true}}",
          "");
}

static void test_dropped(void **state)
{
    CHECK("{'top_k':5,'service_tier':'auto','container':'c','mcp_servers':[],'anthropic_beta':['x'],"
          "'context_management':{},'x-odd key!':1,'nothing':null,"
          "'messages':[{'role':'user','content':'Hi','name':'bob','id':null}]}",
          "{'model':'gpt-x'," HI_OUT "}",
          "top_k,service_tier,container,mcp_servers,anthropic_beta,context_management,x-odd?key?,messages[].name");

    /* a small buffer keeps whole names only; NULL takes nothing */
    char in[CAP], dropped[16], err[64];
    size_t n;
    q("{'top_k':1,'container':'c','service_tier':'x'," HI "}", in);
    char *out = keel_translate_messages_to_chat(in, strlen(in), &OPTS, &n, err, sizeof(err), dropped, sizeof(dropped));
    assert_non_null(out);
    assert_string_equal(dropped, "top_k,container");
    free(out);
    out = keel_translate_messages_to_chat(in, strlen(in), &OPTS, &n, NULL, 0, NULL, 0);
    assert_non_null(out);
    free(out);
    /* filled on failure too, up to the failure */
    char d2[64];
    q("{'top_k':1,'messages':[{'role':'assistant','content':[{'type':'thinking','thinking':''},"
      "{'type':'document','source':{}}]}]}",
      in);
    assert_null(keel_translate_messages_to_chat(in, strlen(in), &OPTS, &n, err, sizeof(err), d2, sizeof(d2)));
    assert_string_equal(d2, "top_k,messages[].content[].thinking");
}

/* ---- refusals --------------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    static const char *const cases[][2] = {
        /* messages */
        {"{}", "messages: must be an array"},
        {"{'messages':null}", "messages: must be an array"},
        {"{'messages':{}}", "messages: must be an array"},
        {"{'messages':'Hi'}", "messages: must be an array"},
        {"{'messages':[]}", "messages: must not be empty"},
        {"{'system':'S','messages':[{'role':'user','content':[]}]}", "messages: no message with content"},
        {"{'messages':['hi']}", "messages[0]: must be an object"},
        {"{'messages':[" HI_MSG ",{'content':'x'}]}", "messages[1].role: must be a string"},
        {"{'messages':[{'role':'system','content':'x'}]}",
         "messages[0].role: must be \"user\" or \"assistant\", not \"system\""},
        {"{'messages':[{'role':'user'}]}", "messages[0].content: must be a string or an array of content blocks"},
        {"{'messages':[{'role':'user','content':null}]}",
         "messages[0].content: must be a string or an array of content blocks"},
        {"{'messages':[{'role':'user','content':7}]}", "messages[0].content: must be a string or an array of content blocks"},
        {"{'messages':[{'role':'assistant','content':{'type':'text','text':'x'}}]}",
         "messages[0].content: must be a string or an array of content blocks"},
        /* user blocks */
        {"{'messages':[{'role':'user','content':['x']}]}", "messages[0].content[0]: must be an object with a string type"},
        {"{'messages':[{'role':'user','content':[{'text':'x'}]}]}",
         "messages[0].content[0]: must be an object with a string type"},
        {"{'messages':[{'role':'user','content':[{'type':'text','text':1}]}]}",
         "messages[0].content[0].text: must be a string"},
        {"{'messages':[" HI_MSG ",{'role':'user','content':[{'type':'document','source':{'type':'text','data':'x',"
         "'media_type':'text/plain'}}]}]}",
         "messages[1].content[0]: document blocks cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'user','content':[{'type':'search_result','source':'s','title':'t','content':[]}]}]}",
         "messages[0].content[0]: search_result blocks cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'user','content':[{'type':'video'}]}]}",
         "messages[0].content[0]: video blocks cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'user','content':[{'type':'tool_use','id':'t','name':'f','input':{}}]}]}",
         "messages[0].content[0]: tool_use blocks in user messages cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'user','content':[{'type':'thinking','thinking':'x'}]}]}",
         "messages[0].content[0]: thinking blocks in user messages cannot be sent to an OpenAI target"},
        /* images */
        {"{'messages':[{'role':'user','content':[{'type':'text','text':'x'},{'type':'image','source':{'type':'file',"
         "'file_id':'file_1'}}]}]}",
         "messages[0].content[1].source: file image sources cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'user','content':[{'type':'image'}]}]}",
         "messages[0].content[0].source: must be an object with a string type"},
        {"{'messages':[{'role':'user','content':[{'type':'image','source':{'type':'base64','data':'AAAA'}}]}]}",
         "messages[0].content[0].source.media_type: must be a string"},
        {"{'messages':[{'role':'user','content':[{'type':'image','source':{'type':'base64','media_type':'image/png'}}]}]}",
         "messages[0].content[0].source.data: must be a string"},
        {"{'messages':[{'role':'user','content':[{'type':'image','source':{'type':'url','url':5}}]}]}",
         "messages[0].content[0].source.url: must be a string"},
        /* tool results */
        {"{'messages':[{'role':'user','content':[{'type':'tool_result','content':'x'}]}]}",
         "messages[0].content[0].tool_use_id: must be a non-empty string"},
        {"{'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'','content':'x'}]}]}",
         "messages[0].content[0].tool_use_id: must be a non-empty string"},
        {"{'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'t','content':5}]}]}",
         "messages[0].content[0].content: must be a string or an array of text blocks"},
        {"{'messages':[{'role':'user','content':[{'type':'text','text':'x'},{'type':'tool_result','tool_use_id':'t',"
         "'content':[{'type':'text','text':'ok'},{'type':'image','source':{'type':'url','url':'https://x/y.png'}}]}]}]}",
         "messages[0].content[1].content[1]: image blocks in a tool_result cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'t','content':[5]}]}]}",
         "messages[0].content[0].content[0]: must be an object with a string type"},
        {"{'messages':[{'role':'user','content':[{'type':'tool_result','tool_use_id':'t','content':[{'type':'text'}]}]}]}",
         "messages[0].content[0].content[0].text: must be a string"},
        /* assistant blocks */
        {"{'messages':[" HI_MSG ",{'role':'assistant','content':[{'type':'server_tool_use','id':'srvtoolu_1',"
         "'name':'web_search','input':{'query':'x'}}]}]}",
         "messages[1].content[0]: server_tool_use blocks cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'assistant','content':[{'type':'text','text':'x'},{'type':'web_search_tool_result',"
         "'tool_use_id':'srvtoolu_1','content':[]}]}]}",
         "messages[0].content[1]: web_search_tool_result blocks cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'assistant','content':[{'type':'code_execution_tool_result','tool_use_id':'s','content':{}}]}]}",
         "messages[0].content[0]: code_execution_tool_result blocks cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'assistant','content':[{'type':'tool_result','tool_use_id':'t','content':'x'}]}]}",
         "messages[0].content[0]: tool_result blocks in assistant messages cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'assistant','content':[{'type':'image','source':{'type':'url','url':'https://x/y'}}]}]}",
         "messages[0].content[0]: image blocks in assistant messages cannot be sent to an OpenAI target"},
        {"{'messages':[{'role':'assistant','content':[{'type':'text','text':null}]}]}",
         "messages[0].content[0].text: must be a string"},
        {"{'messages':[{'role':'assistant','content':[{'type':'tool_use','name':'f','input':{}}]}]}",
         "messages[0].content[0].id: must be a non-empty string"},
        {"{'messages':[{'role':'assistant','content':[{'type':'tool_use','id':'t','name':'','input':{}}]}]}",
         "messages[0].content[0].name: must be a non-empty string"},
        {"{'messages':[{'role':'assistant','content':[{'type':'tool_use','id':'t','name':'f'}]}]}",
         "messages[0].content[0].input: must be an object"},
        {"{'messages':[{'role':'assistant','content':[{'type':'tool_use','id':'t','name':'f','input':'{}'}]}]}",
         "messages[0].content[0].input: must be an object"},
        /* system */
        {"{'system':5," HI "}", "system: must be a string or an array of text blocks"},
        {"{'system':{'type':'text','text':'S'}," HI "}", "system: must be a string or an array of text blocks"},
        {"{'system':['S']," HI "}", "system[0]: must be a text block"},
        {"{'system':[{'type':'text','text':'S'},{'type':'image','source':{'type':'url','url':'https://x/y'}}]," HI "}",
         "system[1]: must be a text block"},
        {"{'system':[{'type':'text'}]," HI "}", "system[0].text: must be a string"},
        /* parameters */
        {"{" HI ",'max_tokens':0}", "max_tokens: must be a positive integer"},
        {"{" HI ",'max_tokens':-5}", "max_tokens: must be a positive integer"},
        {"{" HI ",'max_tokens':10.0}", "max_tokens: must be a positive integer"},
        {"{" HI ",'max_tokens':'10'}", "max_tokens: must be a positive integer"},
        {"{" HI ",'stop_sequences':'END'}", "stop_sequences: must be an array of strings"},
        {"{" HI ",'stop_sequences':['a',1]}", "stop_sequences[1]: must be a string"},
        {"{" HI ",'temperature':'hot'}", "temperature: must be a number"},
        {"{" HI ",'top_p':true}", "top_p: must be a number"},
        /* tools */
        {"{" HI ",'tools':{}}", "tools: must be an array"},
        {"{" HI ",'tools':[5]}", "tools[0]: must be an object"},
        {"{" HI ",'tools':[{'name':'f','input_schema':{}},{'type':'web_search_20250305','name':'web_search','max_uses':5}]}",
         "tools[1]: web_search_20250305 is an Anthropic tool; an OpenAI target has no equivalent"},
        {"{" HI ",'tools':[{'type':'bash_20250124','name':'bash'}]}",
         "tools[0]: bash_20250124 is an Anthropic tool; an OpenAI target has no equivalent"},
        {"{" HI ",'tools':[{'type':'text_editor_20250728','name':'str_replace_based_edit_tool'}]}",
         "tools[0]: text_editor_20250728 is an Anthropic tool; an OpenAI target has no equivalent"},
        {"{" HI ",'tools':[{'type':'computer_20250124','name':'computer','display_width_px':1024}]}",
         "tools[0]: computer_20250124 is an Anthropic tool; an OpenAI target has no equivalent"},
        {"{" HI ",'tools':[{'type':1,'name':'f','input_schema':{}}]}", "tools[0].type: must be a string"},
        {"{" HI ",'tools':[{'input_schema':{}}]}", "tools[0].name: must be a non-empty string"},
        {"{" HI ",'tools':[{'name':'f','description':1,'input_schema':{}}]}", "tools[0].description: must be a string"},
        {"{" HI ",'tools':[{'name':'f'}]}", "tools[0].input_schema: must be a JSON Schema object"},
        {"{" HI ",'tools':[{'name':'f','input_schema':'{}'}]}", "tools[0].input_schema: must be a JSON Schema object"},
        {"{" HI ",'tools':[{'name':'f','input_schema':{}}],'tool_choice':'auto'}",
         "tool_choice: must be {\"type\": \"auto\"}, {\"type\": \"any\"}, {\"type\": \"none\"} or {\"type\": \"tool\", "
         "\"name\": ...}"},
        {"{" HI ",'tools':[{'name':'f','input_schema':{}}],'tool_choice':{'type':'tool'}}",
         "tool_choice: must be {\"type\": \"auto\"}, {\"type\": \"any\"}, {\"type\": \"none\"} or {\"type\": \"tool\", "
         "\"name\": ...}"},
        {"{" HI ",'tools':[{'name':'f','input_schema':{}}],'tool_choice':{'type':'function','function':{'name':'f'}}}",
         "tool_choice: must be {\"type\": \"auto\"}, {\"type\": \"any\"}, {\"type\": \"none\"} or {\"type\": \"tool\", "
         "\"name\": ...}"},
        {"{" HI ",'tools':[{'name':'f','input_schema':{}}],'tool_choice':{'type':'auto','disable_parallel_tool_use':1}}",
         "tool_choice.disable_parallel_tool_use: must be a boolean"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        check_error(cases[k][0], cases[k][1]);
}

static void test_not_an_object(void **state)
{
    static const char *const bodies[] = {"[]", "\"x\"", "12", "null", "", "{", "{\"a\":1}x", "{\"a\":1,}", "[{}]"};
    char err[64], dropped[64];
    size_t n = 1;
    for (size_t k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
        assert_null(keel_translate_messages_to_chat(bodies[k], strlen(bodies[k]), &OPTS, &n, err, sizeof(err), dropped,
                                                     sizeof(dropped)));
        assert_string_equal(err, "request body must be a JSON object");
        assert_int_equal(n, 0);
    }
    assert_null(keel_translate_messages_to_chat(NULL, 0, &OPTS, &n, err, sizeof(err), NULL, 0));
    assert_string_equal(err, "request body must be a JSON object");
    /* valid JSON that jansson cannot hold */
    const char *big = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"top_k\":100000000000000000000}";
    assert_null(keel_translate_messages_to_chat(big, strlen(big), &OPTS, &n, err, sizeof(err), NULL, 0));
    assert_string_equal(err, "request body: a number is out of range");
    const char *nul = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"a\\u0000b\":1}";
    assert_null(keel_translate_messages_to_chat(nul, strlen(nul), &OPTS, &n, err, sizeof(err), NULL, 0));
    assert_string_equal(err, "request body: an object key holds a NUL character");
    /* the length bounds the body: what follows is not read */
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}garbage";
    char *out = keel_translate_messages_to_chat(body, strlen(body) - 7, &OPTS, &n, err, sizeof(err), NULL, 0);
    assert_non_null(out);
    free(out);
    /* a short error buffer gets a truncated, terminated message */
    char tiny[9];
    assert_null(keel_translate_messages_to_chat("[]", 2, &OPTS, &n, tiny, sizeof(tiny), NULL, 0));
    assert_string_equal(tiny, "request ");
}

/* ---- robustness ------------------------------------------------------------------------------- */

/* a body touching every rule, for the cut and out-of-memory tests */
#define RICH                                                                                                   \
    "{'model':'claude-x','max_tokens':300,'stream':true,'top_k':3,'temperature':0.25,'top_p':0.9,"             \
    "'stop_sequences':['X'],'thinking':{'type':'enabled','budget_tokens':2048},'metadata':{'user_id':'u','k':1}," \
    TOOLS ",'tool_choice':{'type':'tool','name':'w','disable_parallel_tool_use':true},"                         \
    "'system':[{'type':'text','text':'S1'},{'type':'text','text':'S2'}],'messages':["                          \
    "{'role':'user','content':[{'type':'text','text':'a\\u00e9'},"                                             \
    "{'type':'image','source':{'type':'base64','media_type':'image/png','data':'AAAA'}},"                      \
    "{'type':'image','source':{'type':'url','url':'https://x/y.png'}}]},"                                      \
    "{'role':'assistant','content':[{'type':'thinking','thinking':'t'},{'type':'text','text':'b'},"            \
    "{'type':'tool_use','id':'1','name':'w','input':{'city':'Oslo','n':[1,2.5e3,{'b':null}]}},"                \
    "{'type':'tool_use','id':'2','name':'now','input':{}}]},"                                                  \
    "{'role':'user','content':[{'type':'tool_result','tool_use_id':'1','content':'ok','is_error':true},"       \
    "{'type':'tool_result','tool_use_id':'2','content':[{'type':'text','text':'o'},{'type':'text','text':'k'}]}," \
    "{'type':'text','text':'c'}]},{'role':'assistant','content':'d'},{'role':'user','content':'e'}]}"

/* whatever is translated parses back as an object with the frame's members */
static void test_outputs_are_json(void **state)
{
    static const char *const bodies[] = {
        "{" HI "}",
        RICH,
        "{'system':'s','messages':[{'role':'assistant','content':[{'type':'tool_use','id':'1','name':'f',"
        "'input':{'k':'\\u0000\\ud83d\\ude00','q':'\\'\\\\'}}]}]}",
    };
    for (size_t k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
        char in[CAP], err[256];
        size_t n;
        q(bodies[k], in);
        char *out = keel_translate_messages_to_chat(in, strlen(in), &OPTS, &n, err, sizeof(err), NULL, 0);
        if (out == NULL)
            fail_msg("body %zu not translated: %s", k, err);
        json_error_t je;
        json_t *v = json_loadb(out, n, JSON_ALLOW_NUL, &je);
        assert_true(json_is_object(v));
        assert_string_equal(json_string_value(json_object_get(v, "model")), "gpt-x");
        assert_true(json_array_size(json_object_get(v, "messages")) > 0);
        /* every tool call's arguments parse as an object */
        size_t i, j;
        json_t *m, *call;
        json_array_foreach(json_object_get(v, "messages"), i, m) {
            json_array_foreach(json_object_get(m, "tool_calls"), j, call) {
                json_t *args = json_object_get(json_object_get(call, "function"), "arguments");
                json_t *input = json_loadb(json_string_value(args), json_string_length(args), JSON_ALLOW_NUL, &je);
                assert_true(json_is_object(input));
                json_decref(input);
            }
        }
        json_decref(v);
        free(out);
    }
}

/* RICH cut at every byte, each prefix in a buffer of its own size (ASan sees a read past it):
 * translated only whole, else refused with a message, never out of memory */
static void test_every_prefix(void **state)
{
    char in[CAP];
    size_t len = strlen(q(RICH, in)), translated = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        char err[256] = "x", dropped[512] = "x";
        size_t n = 12345;
        char *body = malloc(cut > 0 ? cut : 1);
        assert_non_null(body);
        memcpy(body, in, cut);
        char *out = keel_translate_messages_to_chat(body, cut, &OPTS, &n, err, sizeof(err), dropped, sizeof(dropped));
        free(body);
        assert_true(strlen(dropped) < sizeof(dropped));
        if (out != NULL) {
            assert_int_equal(cut, len);
            assert_int_equal(n, strlen(out));
            translated++;
            free(out);
        } else {
            assert_int_equal(n, 0);
            assert_true(err[0] != '\0');
        }
    }
    assert_int_equal(translated, 1);
}

/* jansson's allocations fail from the nth on: every one of them ends in NULL with an empty
 * err (keel's failure, not the client's), nothing leaks (ASan), until enough succeed */
static size_t allocs_left;

static void *failing_malloc(size_t size)
{
    if (allocs_left == 0)
        return NULL;
    allocs_left--;
    return malloc(size);
}

static void test_out_of_memory(void **state)
{
    char in[CAP], err[256], dropped[512];
    size_t n, runs = 0;
    struct keel_translate_chat_opts o = OPTS;
    o.stream = 1;
    q(RICH, in);
    for (size_t limit = 0;; limit++) {
        allocs_left = limit;
        json_set_alloc_funcs(failing_malloc, free);
        char *out = keel_translate_messages_to_chat(in, strlen(in), &o, &n, err, sizeof(err), dropped, sizeof(dropped));
        json_set_alloc_funcs(malloc, free);
        if (out != NULL) {
            free(out);
            break;
        }
        assert_string_equal(err, "");
        assert_int_equal(n, 0);
        runs++;
    }
    assert_true(runs > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_system),
        cmocka_unit_test(test_user_blocks),
        cmocka_unit_test(test_strings_kept),
        cmocka_unit_test(test_tool_results),
        cmocka_unit_test(test_assistant),
        cmocka_unit_test(test_tool_round_trip),
        cmocka_unit_test(test_no_merge),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_thinking),
        cmocka_unit_test(test_tools),
        cmocka_unit_test(test_tool_choice),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_everything),
        cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_outputs_are_json),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
