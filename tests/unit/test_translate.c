/* test_translate.c - OpenAI chat bodies as Anthropic Messages bodies: each mapping rule with the
 * exact bytes expected, the merges, what is dropped, and every refusal with its message.
 * JSON here is written with ' for " (swapped before use) so that it stays readable. */
#include "unit.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/translate.h"

#define CAP 8192

static const struct keel_translate_opts OPTS = {.model = "claude-x", .stream = 0, .default_max_tokens = 1000};

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
static void check(const struct keel_translate_opts *o, const char *body, const char *want, const char *want_dropped)
{
    char in[CAP], exp[CAP], err[256] = "x", dropped[512] = "x";
    size_t n = 12345;
    q(body, in);
    q(want, exp);
    char *out = keel_translate_chat_to_messages(in, strlen(in), o, &n, err, sizeof(err), dropped, sizeof(dropped));
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
    char *out = keel_translate_chat_to_messages(in, strlen(in), &OPTS, &n, err, sizeof(err), dropped, sizeof(dropped));
    if (out != NULL)
        fail_msg("translated, expected \"%s\": %s", want_err, out);
    assert_string_equal(err, want_err);
    assert_int_equal(n, 0);
}

/* a body whose only message is user text "Hi", with extra top-level members */
#define HI_MSG "{'role':'user','content':'Hi'}"
#define HI "'messages':[" HI_MSG "]"
#define HI_OUT "'messages':[{'role':'user','content':[{'type':'text','text':'Hi'}]}]"

/* ---- the frame: model, max_tokens, stream ---------------------------------------------------- */

static void test_minimal(void **state)
{
    CHECK("{'model':'desk'," HI "}", "{'model':'claude-x','max_tokens':1000," HI_OUT "}", "");
    /* the client's stream and model are replaced by the options' */
    struct keel_translate_opts o = OPTS;
    o.stream = 1;
    CHECK("{'model':'desk','stream':false," HI "}", "{'model':'claude-x','max_tokens':1000," HI_OUT "}", "");
    check(&o, "{'model':'desk','stream':false," HI "}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'stream':true}",
          "");
    check(&o, "{" HI ",'stream':true,'stream_options':{'include_usage':true}}",
          "{'model':'claude-x','max_tokens':1000," HI_OUT ",'stream':true}", "stream_options");
}

static void test_max_tokens(void **state)
{
    CHECK("{" HI ",'max_tokens':50}", "{'model':'claude-x','max_tokens':50," HI_OUT "}", "");
    CHECK("{" HI ",'max_completion_tokens':70}", "{'model':'claude-x','max_tokens':70," HI_OUT "}", "");
    /* both: the newer max_completion_tokens wins */
    CHECK("{'max_tokens':50," HI ",'max_completion_tokens':70}", "{'model':'claude-x','max_tokens':70," HI_OUT "}",
          "max_tokens");
    CHECK("{" HI ",'max_tokens':null}", "{'model':'claude-x','max_tokens':1000," HI_OUT "}", "");
}

/* ---- system ----------------------------------------------------------------------------------- */

static void test_system_and_developer(void **state)
{
    /* anywhere in the conversation, string or text parts, joined with a blank line; the user
     * messages on each side of the developer message become one turn */
    CHECK("{'messages':["
          "{'role':'system','content':'Be brief.'},"
          "{'role':'user','content':'Hi'},"
          "{'role':'developer','content':[{'type':'text','text':'Use tools.'},{'type':'text','text':'Be kind.'}]},"
          "{'role':'user','content':'Again'}]}",
          "{'model':'claude-x','max_tokens':1000,'system':'Be brief.\\n\\nUse tools.\\n\\nBe kind.',"
          "'messages':[{'role':'user','content':[{'type':'text','text':'Hi'},{'type':'text','text':'Again'}]}]}",
          "");
    /* a blank system message adds nothing; a name is dropped */
    CHECK("{'messages':[{'role':'system','content':'','name':'x'}," HI_MSG "]}",
          "{'model':'claude-x','max_tokens':1000," HI_OUT "}", "messages[].name");
}

/* ---- user ------------------------------------------------------------------------------------- */

static void test_user_parts(void **state)
{
    CHECK("{'messages':[{'role':'user','content':["
          "{'type':'text','text':'What is this?'},"
          "{'type':'text','text':' \\n'},"
          "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0KGgo=','detail':'high'}},"
          "{'type':'image_url','image_url':{'url':'https://example.com/cat.jpg'}},"
          "{'type':'image_url','image_url':{'url':'http://example.com/dog.gif'}},"
          "{'type':'image_url','image_url':{'url':'data:image/jpg;base64,/9j/4AAQ'}}]}]}",
          "{'model':'claude-x','max_tokens':1000,'messages':[{'role':'user','content':["
          "{'type':'text','text':'What is this?'},"
          "{'type':'image','source':{'type':'base64','media_type':'image/png','data':'iVBORw0KGgo='}},"
          "{'type':'image','source':{'type':'url','url':'https://example.com/cat.jpg'}},"
          "{'type':'image','source':{'type':'url','url':'http://example.com/dog.gif'}},"
          "{'type':'image','source':{'type':'base64','media_type':'image/jpeg','data':'/9j/4AAQ'}}]}]}",
          "");
    /* image_url as a bare string (some clients) */
    CHECK("{'messages':[{'role':'user','content':[{'type':'image_url','image_url':'data:image/webp;base64,UklG'}]}]}",
          "{'model':'claude-x','max_tokens':1000,'messages':[{'role':'user','content':["
          "{'type':'image','source':{'type':'base64','media_type':'image/webp','data':'UklG'}}]}]}",
          "");
}

static void test_strings_kept(void **state)
{
    /* escapes decode to the same string; jansson writes non-ASCII as UTF-8 and escapes what JSON
     * needs */
    CHECK("{'messages':[{'role':'user','content':'caf\\u00e9 \\'quoted\\' \\\\ \\/ \\t \\u0000 \\ud83d\\ude00'}]}",
          "{'model':'claude-x','max_tokens':1000,'messages':[{'role':'user','content':[{'type':'text','text':"
          "'caf\xc3\xa9 \\'quoted\\' \\\\ / \\t \\u0000 \xf0\x9f\x98\x80'}]}]}",
          "");
}

/* ---- assistant -------------------------------------------------------------------------------- */

static void test_assistant(void **state)
{
    CHECK("{'messages':[" "{'role':'user','content':'Weather in Oslo and Bergen?'},"
          "{'role':'assistant','content':'Checking.','reasoning_content':'hmm','name':'bot','tool_calls':["
          "{'id':'call_1','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'}},"
          "{'id':'call_2','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Bergen\\',\\'days\\':2}'}},"
          "{'id':'call_3','type':'function','function':{'name':'now','arguments':''}}]}]}",
          "{'model':'claude-x','max_tokens':1000,'messages':["
          "{'role':'user','content':[{'type':'text','text':'Weather in Oslo and Bergen?'}]},"
          "{'role':'assistant','content':[{'type':'text','text':'Checking.'},"
          "{'type':'tool_use','id':'call_1','name':'weather','input':{'city':'Oslo'}},"
          "{'type':'tool_use','id':'call_2','name':'weather','input':{'city':'Bergen','days':2}},"
          "{'type':'tool_use','id':'call_3','name':'now','input':{}}]}]}",
          "messages[].reasoning_content,messages[].name");
    /* content null with tool calls; a refusal and refusal parts as text; empty text left out */
    CHECK("{'messages':[" "{'role':'user','content':'Hi'},"
          "{'role':'assistant','content':null,'tool_calls':[{'id':'c','type':'function','function':{'name':'f','arguments':'{}'}}]},"
          "{'role':'assistant','content':[{'type':'text','text':''},{'type':'refusal','refusal':'No.'}],'refusal':'Sorry.'}]}",
          "{'model':'claude-x','max_tokens':1000,'messages':[" "{'role':'user','content':[{'type':'text','text':'Hi'}]},"
          "{'role':'assistant','content':[{'type':'tool_use','id':'c','name':'f','input':{}},"
          "{'type':'text','text':'No.'},{'type':'text','text':'Sorry.'}]}]}",
          "");
}

static void test_starts_with_assistant(void **state)
{
    /* nothing is prepended: Anthropic answers a conversation that opens with the assistant */
    CHECK("{'messages':[{'role':'assistant','content':'Hello, how can I help?'}," HI_MSG "]}",
          "{'model':'claude-x','max_tokens':1000,'messages':["
          "{'role':'assistant','content':[{'type':'text','text':'Hello, how can I help?'}]},"
          "{'role':'user','content':[{'type':'text','text':'Hi'}]}]}",
          "");
}

/* ---- tool results and merging ----------------------------------------------------------------- */

static void test_tool_results_merge(void **state)
{
    CHECK("{'messages':[" "{'role':'user','content':'Weather?'},"
          "{'role':'assistant','tool_calls':["
          "{'id':'a','type':'function','function':{'name':'w','arguments':'{}'}},"
          "{'id':'b','type':'function','function':{'name':'w','arguments':'{}'}},"
          "{'id':'c','type':'function','function':{'name':'w','arguments':'{}'}}]},"
          "{'role':'tool','tool_call_id':'a','content':'Sunny'},"
          "{'role':'tool','tool_call_id':'b','content':[{'type':'text','text':'Rain'},{'type':'text','text':'Wind'}]},"
          "{'role':'tool','tool_call_id':'c','content':''},"
          "{'role':'user','content':'Thanks. Which is best?'}]}",
          "{'model':'claude-x','max_tokens':1000,'messages':[" "{'role':'user','content':[{'type':'text','text':'Weather?'}]},"
          "{'role':'assistant','content':["
          "{'type':'tool_use','id':'a','name':'w','input':{}},"
          "{'type':'tool_use','id':'b','name':'w','input':{}},"
          "{'type':'tool_use','id':'c','name':'w','input':{}}]},"
          "{'role':'user','content':["
          "{'type':'tool_result','tool_use_id':'a','content':'Sunny'},"
          "{'type':'tool_result','tool_use_id':'b','content':[{'type':'text','text':'Rain'},{'type':'text','text':'Wind'}]},"
          "{'type':'tool_result','tool_use_id':'c'},"
          "{'type':'text','text':'Thanks. Which is best?'}]}]}",
          "");
}

static void test_same_roles_merge(void **state)
{
    /* consecutive same roles become one turn; a message with nothing to send is left out, so its
     * neighbours merge */
    CHECK("{'messages':[" "{'role':'user','content':'a'},{'role':'user','content':[{'type':'text','text':'b'}]},"
          "{'role':'assistant','content':'c'},{'role':'assistant','content':'d'},"
          "{'role':'user','content':'e'},{'role':'assistant','content':''},{'role':'user','content':'f'}]}",
          "{'model':'claude-x','max_tokens':1000,'messages':["
          "{'role':'user','content':[{'type':'text','text':'a'},{'type':'text','text':'b'}]},"
          "{'role':'assistant','content':[{'type':'text','text':'c'},{'type':'text','text':'d'}]},"
          "{'role':'user','content':[{'type':'text','text':'e'},{'type':'text','text':'f'}]}]}",
          "");
}

/* ---- tools ------------------------------------------------------------------------------------ */

#define TOOLS                                                                                                  \
    "'tools':[{'type':'function','function':{'name':'w','description':'Weather','parameters':"                 \
    "{'type':'object','properties':{'city':{'type':'string'}},'required':['city']},'strict':true}},"           \
    "{'type':'function','function':{'name':'now'}}]"
#define TOOLS_OUT                                                                                              \
    "'tools':[{'name':'w','description':'Weather','input_schema':"                                             \
    "{'type':'object','properties':{'city':{'type':'string'}},'required':['city']}},"                          \
    "{'name':'now','input_schema':{'type':'object'}}]"

static void test_tools(void **state)
{
    CHECK("{" HI "," TOOLS "}", "{'model':'claude-x','max_tokens':1000," HI_OUT "," TOOLS_OUT "}",
          "tools[].function.strict");
    /* an empty tools array sends no tools; tool_choice and parallel_tool_calls without tools go */
    CHECK("{" HI ",'tools':[],'tool_choice':'auto','parallel_tool_calls':false}",
          "{'model':'claude-x','max_tokens':1000," HI_OUT "}", "tool_choice,parallel_tool_calls");
}

/* one function tool, `extra` members after it; want_choice: the tool_choice sent, NULL for none */
static void check_tool_choice(const char *extra, const char *want_choice)
{
    char body[CAP], want[CAP];
    snprintf(body, sizeof(body), "{" HI ",'tools':[{'type':'function','function':{'name':'w'}}]%s}", extra);
    snprintf(want, sizeof(want),
             "{'model':'claude-x','max_tokens':1000," HI_OUT ",'tools':[{'name':'w','input_schema':{'type':'object'}}]%s%s}",
             want_choice != NULL ? ",'tool_choice':" : "", want_choice != NULL ? want_choice : "");
    CHECK(body, want, "");
}

static void test_tool_choice(void **state)
{
    check_tool_choice(",'tool_choice':'auto'", "{'type':'auto'}");
    check_tool_choice(",'tool_choice':'required'", "{'type':'any'}");
    check_tool_choice(",'tool_choice':'none'", "{'type':'none'}");
    check_tool_choice(",'tool_choice':{'type':'function','function':{'name':'w'}}", "{'type':'tool','name':'w'}");
    /* parallel_tool_calls: false disables parallel use, alone or with a choice; none takes no flag */
    check_tool_choice(",'parallel_tool_calls':false", "{'type':'auto','disable_parallel_tool_use':true}");
    check_tool_choice(",'parallel_tool_calls':false,'tool_choice':'required'",
                      "{'type':'any','disable_parallel_tool_use':true}");
    check_tool_choice(",'tool_choice':{'type':'function','function':{'name':'w'}},'parallel_tool_calls':false",
                      "{'type':'tool','name':'w','disable_parallel_tool_use':true}");
    check_tool_choice(",'parallel_tool_calls':false,'tool_choice':'none'", "{'type':'none'}");
    /* parallel_tool_calls: true is the default: nothing to send */
    check_tool_choice(",'parallel_tool_calls':true", NULL);
}

/* ---- sampling and the rest -------------------------------------------------------------------- */

static void test_sampling(void **state)
{
    CHECK("{" HI ",'temperature':0.5,'stop':'END'}",
          "{'model':'claude-x','max_tokens':1000," HI_OUT ",'stop_sequences':['END'],'temperature':0.5}", "");
    /* clamped to Anthropic's [0, 1] */
    CHECK("{" HI ",'temperature':1.5}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'temperature':1.0}", "");
    CHECK("{" HI ",'temperature':2}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'temperature':1.0}", "");
    CHECK("{" HI ",'temperature':-1}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'temperature':0.0}", "");
    CHECK("{" HI ",'temperature':1}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'temperature':1}", "");
    /* a real is written with 17 significant digits: the same double */
    CHECK("{" HI ",'temperature':0.7}",
          "{'model':'claude-x','max_tokens':1000," HI_OUT ",'temperature':0.69999999999999996}", "");
    CHECK("{" HI ",'top_p':0.25}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'top_p':0.25}", "");
    /* newer models refuse both: temperature wins */
    CHECK("{" HI ",'top_p':0.25,'temperature':0}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'temperature':0}",
          "top_p");
    /* stop: arrays as they are, empty strings left out */
    CHECK("{" HI ",'stop':['a','','b']}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'stop_sequences':['a','b']}",
          "");
    CHECK("{" HI ",'stop':[]}", "{'model':'claude-x','max_tokens':1000," HI_OUT "}", "");
    CHECK("{" HI ",'stop':''}", "{'model':'claude-x','max_tokens':1000," HI_OUT "}", "");
}

static void test_reasoning_effort(void **state)
{
    /* max_tokens must exceed the budget: raised to budget + 1024; no temperature while thinking */
    CHECK("{" HI ",'reasoning_effort':'low','max_tokens':1000,'temperature':0.5}",
          "{'model':'claude-x','max_tokens':2048," HI_OUT ",'thinking':{'type':'enabled','budget_tokens':1024}}",
          "temperature");
    CHECK("{" HI ",'reasoning_effort':'minimal'}",
          "{'model':'claude-x','max_tokens':2048," HI_OUT ",'thinking':{'type':'enabled','budget_tokens':1024}}", "");
    CHECK("{" HI ",'reasoning_effort':'medium','max_completion_tokens':4096}",
          "{'model':'claude-x','max_tokens':5120," HI_OUT ",'thinking':{'type':'enabled','budget_tokens':4096}}", "");
    CHECK("{" HI ",'reasoning_effort':'medium','max_completion_tokens':4097}",
          "{'model':'claude-x','max_tokens':4097," HI_OUT ",'thinking':{'type':'enabled','budget_tokens':4096}}", "");
    CHECK("{" HI ",'reasoning_effort':'high','max_tokens':32000}",
          "{'model':'claude-x','max_tokens':32000," HI_OUT ",'thinking':{'type':'enabled','budget_tokens':16384}}", "");
    CHECK("{" HI ",'reasoning_effort':'xhigh'}",
          "{'model':'claude-x','max_tokens':33792," HI_OUT ",'thinking':{'type':'enabled','budget_tokens':32768}}", "");
    CHECK("{" HI ",'reasoning_effort':'none','temperature':0.5}",
          "{'model':'claude-x','max_tokens':1000," HI_OUT ",'temperature':0.5}", "");
    /* top_p only from 0.95 up while thinking */
    CHECK("{" HI ",'reasoning_effort':'high','max_tokens':20000,'top_p':0.5}",
          "{'model':'claude-x','max_tokens':20000," HI_OUT ",'thinking':{'type':'enabled','budget_tokens':16384}}",
          "top_p");
    CHECK("{" HI ",'reasoning_effort':'high','max_tokens':20000,'top_p':0.96875}",
          "{'model':'claude-x','max_tokens':20000," HI_OUT
          ",'top_p':0.96875,'thinking':{'type':'enabled','budget_tokens':16384}}",
          "");
    /* thinking with tools left to choose */
    CHECK("{" HI ",'reasoning_effort':'low','tools':[{'type':'function','function':{'name':'w'}}],'tool_choice':'auto'}",
          "{'model':'claude-x','max_tokens':2048," HI_OUT
          ",'thinking':{'type':'enabled','budget_tokens':1024},'tools':[{'name':'w','input_schema':{'type':'object'}}],"
          "'tool_choice':{'type':'auto'}}",
          "");
}

static void test_metadata(void **state)
{
    CHECK("{" HI ",'metadata':{'user_id':'u1'}}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'metadata':{'user_id':'u1'}}",
          "");
    CHECK("{" HI ",'user':'u2'}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'metadata':{'user_id':'u2'}}", "");
    CHECK("{" HI ",'safety_identifier':'u3'}", "{'model':'claude-x','max_tokens':1000," HI_OUT ",'metadata':{'user_id':'u3'}}",
          "");
    CHECK("{" HI ",'metadata':{'user_id':'u1','team':'x'},'user':'u2'}",
          "{'model':'claude-x','max_tokens':1000," HI_OUT ",'metadata':{'user_id':'u1'}}", "metadata,user");
    CHECK("{" HI ",'metadata':{'team':'x'},'user':'u2'}",
          "{'model':'claude-x','max_tokens':1000," HI_OUT ",'metadata':{'user_id':'u2'}}", "metadata");
}

/* every member, in the order the output writes them */
static void test_everything(void **state)
{
    struct keel_translate_opts o = {.model = "claude-sonnet-4-5", .stream = 1, .default_max_tokens = 8192};
    check(&o,
          "{'model':'desk','stream':true,'user':'u','stop':['X'],'temperature':0.25,'max_tokens':300,"
          "'tool_choice':'required'," TOOLS ",'messages':[{'role':'system','content':'S'}," HI_MSG "]}",
          "{'model':'claude-sonnet-4-5','max_tokens':300,'system':'S'," HI_OUT ",'stop_sequences':['X'],'temperature':0.25,"
          TOOLS_OUT ",'tool_choice':{'type':'any'},'metadata':{'user_id':'u'},'stream':true}",
          "tools[].function.strict");
}

/* ---- dropped ---------------------------------------------------------------------------------- */

static void test_dropped(void **state)
{
    CHECK("{'n':1,'logprobs':true,'top_logprobs':2,'frequency_penalty':0.5,'presence_penalty':0.5,"
          "'logit_bias':{'50256':-100},'seed':7,'response_format':{'type':'json_schema','json_schema':{'name':'x'}},"
          "'stream_options':{'include_usage':true},'service_tier':'auto','store':false,'modalities':['text'],"
          "'audio':{'voice':'x'},'prediction':{'type':'content','content':'x'},'web_search_options':{},"
          "'x-odd key!':1,'nothing':null," HI "}",
          "{'model':'claude-x','max_tokens':1000," HI_OUT "}",
          "n,logprobs,top_logprobs,frequency_penalty,presence_penalty,logit_bias,seed,response_format,"
          "stream_options,service_tier,store,modalities,audio,prediction,web_search_options,x-odd?key?");

    /* a small buffer keeps whole names only; NULL takes nothing */
    char in[CAP], dropped[16], err[64];
    size_t n;
    q("{'seed':1,'logprobs':true,'store':true," HI "}", in);
    char *out = keel_translate_chat_to_messages(in, strlen(in), &OPTS, &n, err, sizeof(err), dropped, sizeof(dropped));
    assert_non_null(out);
    assert_string_equal(dropped, "seed,logprobs");
    free(out);
    out = keel_translate_chat_to_messages(in, strlen(in), &OPTS, &n, NULL, 0, NULL, 0);
    assert_non_null(out);
    free(out);
}

/* ---- refusals --------------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    static const char *const cases[][2] = {
        {"{}", "messages: must be an array"},
        {"{'messages':{}}", "messages: must be an array"},
        {"{'messages':[]}", "messages: must not be empty"},
        {"{'messages':[{'role':'system','content':'S'}]}", "messages: no user or assistant message with content"},
        {"{'messages':[{'role':'user','content':''}]}", "messages: no user or assistant message with content"},
        {"{'messages':['hi']}", "messages[0]: must be an object"},
        {"{'messages':[{'content':'x'}]}", "messages[0].role: must be a string"},
        {"{'messages':[{'role':'robot','content':'x'}]}", "messages[0].role: unknown role \"robot\""},
        {"{'messages':[{'role':'function','name':'f','content':'x'}]}",
         "messages[0].role: function messages are not supported, send tool messages"},
        {"{'messages':[{'role':'user'}]}", "messages[0].content: must be a string or an array of content parts"},
        {"{'messages':[{'role':'user','content':7}]}", "messages[0].content: must be a string or an array of content parts"},
        {"{'messages':[{'role':'user','content':[{'text':'x'}]}]}",
         "messages[0].content[0]: must be an object with a string type"},
        {"{'messages':[{'role':'user','content':[{'type':'text','text':1}]}]}",
         "messages[0].content[0].text: must be a string"},
        {"{'messages':[{'role':'user','content':[{'type':'input_audio','input_audio':{'data':'x','format':'wav'}}]}]}",
         "messages[0].content[0]: input_audio parts are not supported by an anthropic upstream"},
        {"{'messages':[" "{'role':'user','content':'x'},{'role':'user','content':[{'type':'text','text':'x'},"
         "{'type':'file','file':{'file_id':'f'}}]}]}",
         "messages[1].content[1]: file parts are not supported by an anthropic upstream"},
        {"{'messages':[{'role':'user','content':[{'type':'video','video':{}}]}]}",
         "messages[0].content[0]: unknown content part type \"video\""},
        {"{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{'url':'ftp://x/y.png'}}]}]}",
         "messages[0].content[0]: image_url must be a data: URL or an http(s) URL"},
        {"{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{'url':'https://'}}]}]}",
         "messages[0].content[0]: image_url must be a data: URL or an http(s) URL"},
        {"{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{}}]}]}",
         "messages[0].content[0].image_url.url: must be a string"},
        {"{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:image/png,abc'}}]}]}",
         "messages[0].content[0]: image_url data: URL must be data:<media type>;base64,<data>"},
        {"{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:image/png;base64,'}}]}]}",
         "messages[0].content[0]: image_url data: URL must be data:<media type>;base64,<data>"},
        {"{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:;base64,AAAA'}}]}]}",
         "messages[0].content[0]: image_url data: URL must be data:<media type>;base64,<data>"},
        {"{'messages':[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:image/bmp;base64,Qk0='}}]}]}",
         "messages[0].content[0]: image media type image/bmp is not supported (image/jpeg, image/png, image/gif, "
         "image/webp)"},
        {"{'messages':[{'role':'system','content':[{'type':'image_url','image_url':{'url':'https://x/y'}}]}]}",
         "messages[0].content[0]: system messages hold text parts only"},
        {"{'messages':[{'role':'developer'}]}", "messages[0].content: must be a string or an array of text parts"},
        {"{'messages':[{'role':'assistant','content':5}]}",
         "messages[0].content: must be a string or an array of content parts"},
        {"{'messages':[{'role':'assistant','content':[{'type':'image_url','image_url':{'url':'https://x/y'}}]}]}",
         "messages[0].content[0]: assistant messages hold text and refusal parts only"},
        {"{'messages':[{'role':'assistant','content':[{'type':'refusal'}]}]}",
         "messages[0].content[0].refusal: must be a string"},
        {"{'messages':[{'role':'assistant','refusal':1}]}", "messages[0].refusal: must be a string"},
        {"{'messages':[{'role':'assistant','tool_calls':{}}]}", "messages[0].tool_calls: must be an array"},
        {"{'messages':[{'role':'assistant','tool_calls':[{'id':'c','type':'custom','custom':{'name':'f'}}]}]}",
         "messages[0].tool_calls[0]: only function tool calls are supported"},
        {"{'messages':[{'role':'assistant','tool_calls':[7]}]}",
         "messages[0].tool_calls[0]: only function tool calls are supported"},
        {"{'messages':[{'role':'assistant','tool_calls':[{'type':'function','function':{'name':'f'}}]}]}",
         "messages[0].tool_calls[0].id: must be a non-empty string"},
        {"{'messages':[{'role':'assistant','tool_calls':[{'id':'c','function':{'arguments':'{}'}}]}]}",
         "messages[0].tool_calls[0].function.name: must be a non-empty string"},
        {"{'messages':[{'role':'assistant','tool_calls':[{'id':'c','function':{'name':'f','arguments':'[1]'}}]}]}",
         "messages[0].tool_calls[0].function.arguments: must be a string holding a JSON object"},
        {"{'messages':[{'role':'assistant','tool_calls':[{'id':'c','function':{'name':'f','arguments':'{oops'}}]}]}",
         "messages[0].tool_calls[0].function.arguments: must be a string holding a JSON object"},
        {"{'messages':[{'role':'assistant','tool_calls':[{'id':'c','function':{'name':'f','arguments':{'a':1}}}]}]}",
         "messages[0].tool_calls[0].function.arguments: must be a string holding a JSON object"},
        {"{'messages':[{'role':'assistant','function_call':{'name':'f','arguments':'{}'}}]}",
         "messages[0].function_call: not supported, send tool_calls"},
        {"{'messages':[{'role':'tool','content':'x'}]}", "messages[0].tool_call_id: must be a non-empty string"},
        {"{'messages':[{'role':'tool','tool_call_id':'c','content':[{'type':'image_url','image_url':{'url':'https://x/y'}}]}]}",
         "messages[0].content[0]: tool messages hold text parts only"},
        {"{'messages':[{'role':'tool','tool_call_id':'c'}]}", "messages[0].content: must be a string or an array of text parts"},
        {"{" HI ",'n':2}", "n: only 1 choice is supported by an anthropic upstream"},
        {"{" HI ",'n':'1'}", "n: only 1 choice is supported by an anthropic upstream"},
        {"{" HI ",'functions':[{'name':'f'}]}", "functions: not supported, send tools"},
        {"{" HI ",'function_call':'auto'}", "functions: not supported, send tools"},
        {"{" HI ",'max_tokens':0}", "max_tokens: must be a positive integer"},
        {"{" HI ",'max_tokens':10.0}", "max_tokens: must be a positive integer"},
        {"{" HI ",'max_completion_tokens':-5}", "max_completion_tokens: must be a positive integer"},
        {"{" HI ",'reasoning_effort':'max'}", "reasoning_effort: must be one of none, minimal, low, medium, high, xhigh"},
        {"{" HI ",'reasoning_effort':3}", "reasoning_effort: must be one of none, minimal, low, medium, high, xhigh"},
        {"{" HI ",'stop':5}", "stop: must be a string or an array of strings"},
        {"{" HI ",'stop':['a',1]}", "stop[1]: must be a string"},
        {"{" HI ",'temperature':'hot'}", "temperature: must be a number"},
        {"{" HI ",'top_p':true}", "top_p: must be a number"},
        {"{" HI ",'tools':{}}", "tools: must be an array"},
        {"{" HI ",'tools':[{'type':'web_search'}]}", "tools[0]: only function tools are supported"},
        {"{" HI ",'tools':[{'type':'function','function':{'description':'d'}}]}",
         "tools[0].function.name: must be a non-empty string"},
        {"{" HI ",'tools':[{'type':'function','function':{'name':'f','description':1}}]}",
         "tools[0].function.description: must be a string"},
        {"{" HI ",'tools':[{'type':'function','function':{'name':'f','parameters':'{}'}}]}",
         "tools[0].function.parameters: must be a JSON Schema object"},
        {"{" HI ",'tools':[{'type':'function','function':{'name':'f'}}],'tool_choice':'any'}",
         "tool_choice: must be \"auto\", \"required\", \"none\" or {\"type\": \"function\", \"function\": {\"name\": ...}}"},
        {"{" HI ",'tools':[{'type':'function','function':{'name':'f'}}],'tool_choice':{'type':'function'}}",
         "tool_choice: must be \"auto\", \"required\", \"none\" or {\"type\": \"function\", \"function\": {\"name\": ...}}"},
        {"{" HI ",'tools':[{'type':'function','function':{'name':'f'}}],'tool_choice':{'type':'allowed_tools'}}",
         "tool_choice: must be \"auto\", \"required\", \"none\" or {\"type\": \"function\", \"function\": {\"name\": ...}}"},
        {"{" HI ",'tools':[{'type':'function','function':{'name':'f'}}],'parallel_tool_calls':'no'}",
         "parallel_tool_calls: must be a boolean"},
        {"{" HI ",'reasoning_effort':'low','tools':[{'type':'function','function':{'name':'f'}}],'tool_choice':'required'}",
         "reasoning_effort: an anthropic upstream does not think with tool_choice \"required\" or a named function"},
        {"{" HI ",'reasoning_effort':'low','tools':[{'type':'function','function':{'name':'f'}}],"
         "'tool_choice':{'type':'function','function':{'name':'f'}}}",
         "reasoning_effort: an anthropic upstream does not think with tool_choice \"required\" or a named function"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        check_error(cases[k][0], cases[k][1]);
}

static void test_not_an_object(void **state)
{
    static const char *const bodies[] = {"[]", "\"x\"", "12", "null", "", "{", "{\"a\":1}x", "{\"a\":1,}"};
    char err[64], dropped[64];
    size_t n = 1;
    for (size_t k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
        assert_null(keel_translate_chat_to_messages(bodies[k], strlen(bodies[k]), &OPTS, &n, err, sizeof(err), dropped,
                                                     sizeof(dropped)));
        assert_string_equal(err, "request body must be a JSON object");
        assert_int_equal(n, 0);
    }
    assert_null(keel_translate_chat_to_messages(NULL, 0, &OPTS, &n, err, sizeof(err), NULL, 0));
    assert_string_equal(err, "request body must be a JSON object");
    /* valid JSON that jansson cannot hold */
    const char *big = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"seed\":100000000000000000000}";
    assert_null(keel_translate_chat_to_messages(big, strlen(big), &OPTS, &n, err, sizeof(err), NULL, 0));
    assert_string_equal(err, "request body: a number is out of range");
    const char *nul = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"a\\u0000b\":1}";
    assert_null(keel_translate_chat_to_messages(nul, strlen(nul), &OPTS, &n, err, sizeof(err), NULL, 0));
    assert_string_equal(err, "request body: an object key holds a NUL character");
    /* the length bounds the body: what follows is not read */
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}garbage";
    char *out = keel_translate_chat_to_messages(body, strlen(body) - 7, &OPTS, &n, err, sizeof(err), NULL, 0);
    assert_non_null(out);
    free(out);
    /* a short error buffer gets a truncated, terminated message */
    char tiny[9];
    assert_null(keel_translate_chat_to_messages("[]", 2, &OPTS, &n, tiny, sizeof(tiny), NULL, 0));
    assert_string_equal(tiny, "request ");
}

/* whatever is translated parses back as an object with the frame's members */
static void test_outputs_are_json(void **state)
{
    static const char *const bodies[] = {
        "{" HI "}",
        "{'messages':[{'role':'system','content':'s'},{'role':'assistant','content':'a'}],'stop':'x'}",
        "{" HI ",'reasoning_effort':'high'," TOOLS ",'tool_choice':'none','parallel_tool_calls':false}",
        "{'messages':[{'role':'user','content':[{'type':'text','text':'\\u0000\\ud83d\\ude00'},"
        "{'type':'image_url','image_url':{'url':'data:image/gif;base64,R0lG'}}]},"
        "{'role':'assistant','tool_calls':[{'id':'1','function':{'name':'f','arguments':'{\\'a\\':[1,2.5e3,{\\'b\\':null}]}'}}]},"
        "{'role':'tool','tool_call_id':'1','content':'ok'}],'metadata':{'user_id':'u'},'temperature':1e-3}",
    };
    for (size_t k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
        char in[CAP], err[256];
        size_t n;
        q(bodies[k], in);
        char *out = keel_translate_chat_to_messages(in, strlen(in), &OPTS, &n, err, sizeof(err), NULL, 0);
        if (out == NULL)
            fail_msg("body %zu not translated: %s", k, err);
        json_error_t je;
        json_t *v = json_loadb(out, n, JSON_ALLOW_NUL, &je);
        assert_true(json_is_object(v));
        assert_string_equal(json_string_value(json_object_get(v, "model")), "claude-x");
        assert_true(json_integer_value(json_object_get(v, "max_tokens")) >= 1000);
        assert_true(json_array_size(json_object_get(v, "messages")) > 0);
        json_decref(v);
        free(out);
    }
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
    q("{'model':'desk','stream':true,'user':'u','stop':['X'],'temperature':0.25,'max_tokens':300,'seed':1,"
      "'reasoning_effort':'low','parallel_tool_calls':false," TOOLS ",'messages':[{'role':'system','content':'S'},"
      "{'role':'developer','content':'D'},{'role':'user','content':[{'type':'text','text':'a'},"
      "{'type':'image_url','image_url':{'url':'data:image/png;base64,AAAA'}},"
      "{'type':'image_url','image_url':{'url':'https://x/y.png'}}]},"
      "{'role':'assistant','content':'b','tool_calls':[{'id':'1','function':{'name':'w','arguments':'{\\'a\\':1}'}},"
      "{'id':'2','function':{'name':'w','arguments':''}}]},"
      "{'role':'tool','tool_call_id':'1','content':'ok'},"
      "{'role':'tool','tool_call_id':'2','content':[{'type':'text','text':'ok'}]},{'role':'user','content':'c'}]}",
      in);
    for (size_t limit = 0;; limit++) {
        allocs_left = limit;
        json_set_alloc_funcs(failing_malloc, free);
        char *out = keel_translate_chat_to_messages(in, strlen(in), &OPTS, &n, err, sizeof(err), dropped, sizeof(dropped));
        json_set_alloc_funcs(malloc, free);
        if (out != NULL) {
            free(out);
            break;
        }
        assert_string_equal(err, "");
        runs++;
    }
    assert_true(runs > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_max_tokens),
        cmocka_unit_test(test_system_and_developer),
        cmocka_unit_test(test_user_parts),
        cmocka_unit_test(test_strings_kept),
        cmocka_unit_test(test_assistant),
        cmocka_unit_test(test_starts_with_assistant),
        cmocka_unit_test(test_tool_results_merge),
        cmocka_unit_test(test_same_roles_merge),
        cmocka_unit_test(test_tools),
        cmocka_unit_test(test_tool_choice),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_reasoning_effort),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_everything),
        cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_outputs_are_json),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
