/* test_translate_responses.c - Responses API request bodies as OpenAI chat bodies: each mapping
 * rule with the exact bytes expected, what is dropped, every refusal with its message, the
 * bodies the openai SDK, the AI SDK and LangChain send, and bodies cut at every byte. JSON here
 * is written with ' for " (swapped before use) so that it stays readable. */
#include "unit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/translate.h"

#define CAP 8192

static const struct keel_translate_responses_opts OPTS = {.model = "gpt-x", .stream = 0};

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
static void check(const struct keel_translate_responses_opts *o, const char *body, const char *want,
                  const char *want_dropped)
{
    char in[CAP], exp[CAP], err[256] = "x", dropped[512] = "x";
    size_t n = 12345;
    q(body, in);
    q(want, exp);
    char *out = keel_translate_responses_to_chat(in, strlen(in), o, &n, err, sizeof(err), dropped, sizeof(dropped));
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
    char *out = keel_translate_responses_to_chat(in, strlen(in), &OPTS, &n, err, sizeof(err), dropped, sizeof(dropped));
    if (out != NULL)
        fail_msg("translated, expected \"%s\": %s", want_err, out);
    assert_string_equal(err, want_err);
    assert_int_equal(n, 0);
}

/* a body whose input is the user text "Hi", with extra top-level members */
#define HI "'input':'Hi'"
#define HI_OUT "'messages':[{'role':'user','content':'Hi'}]"
#define HI_ITEM "{'role':'user','content':'Hi'}"
#define HI_MSG "{'role':'user','content':'Hi'}"

/* ---- the frame: model, input as a string, stream ---------------------------------------------- */

static void test_minimal(void **state)
{
    CHECK("{'model':'gpt-4o'," HI "}", "{'model':'gpt-x'," HI_OUT "}", "");
    CHECK("{'input':''}", "{'model':'gpt-x','messages':[{'role':'user','content':''}]}", "");
    /* the client's stream and stream_options are replaced by the options' */
    CHECK("{'stream':true,'stream_options':{'include_obfuscation':false}," HI "}", "{'model':'gpt-x'," HI_OUT "}", "");
    struct keel_translate_responses_opts o = OPTS;
    o.stream = 1;
    check(&o, "{'stream':false," HI "}",
          "{'model':'gpt-x'," HI_OUT ",'stream':true,'stream_options':{'include_usage':true}}", "");
    /* null is absent */
    CHECK("{" HI ",'instructions':null,'tools':null,'tool_choice':null,'text':null,'reasoning':null,"
          "'previous_response_id':null,'conversation':null,'prompt':null,'store':null,'background':null,"
          "'max_output_tokens':null,'temperature':null,'top_logprobs':null,'user':null,'metadata':null}",
          "{'model':'gpt-x'," HI_OUT "}", "");
}

/* ---- instructions, system and developer --------------------------------------------------------- */

static void test_instructions(void **state)
{
    CHECK("{'instructions':'Be brief.'," HI "}",
          "{'model':'gpt-x','messages':[{'role':'system','content':'Be brief.'}," HI_MSG "]}", "");
    CHECK("{'instructions':''," HI "}", "{'model':'gpt-x'," HI_OUT "}", "");
    /* developer is sent as system; parts concatenated into one string; type "message" optional;
     * extras in parts go unlisted */
    CHECK("{'instructions':'I','input':[{'role':'developer','content':'D'},"
          "{'type':'message','role':'system','content':[{'type':'input_text','text':'S1'},"
          "{'type':'input_text','text':'S2','prompt_cache_breakpoint':{'mode':'explicit'}}]},"
          "{'role':'developer','content':[]},{'role':'developer','content':[{'type':'input_text','text':''}]},"
          "{'role':'user','content':'U'},{'role':'system','content':'late'}]}",
          "{'model':'gpt-x','messages':[{'role':'system','content':'I'},{'role':'system','content':'D'},"
          "{'role':'system','content':'S1S2'},{'role':'system','content':''},{'role':'user','content':'U'},"
          "{'role':'system','content':'late'}]}",
          "");
    /* instructions alone make a conversation */
    CHECK("{'instructions':'I','input':[]}", "{'model':'gpt-x','messages':[{'role':'system','content':'I'}]}", "");
}

/* ---- user ------------------------------------------------------------------------------------- */

static void test_user_parts(void **state)
{
    CHECK("{'input':[{'role':'user','content':[{'type':'input_text','text':'What is this?'},"
          "{'type':'input_image','image_url':'https://example.com/cat.jpg','detail':'high'},"
          "{'type':'input_image','image_url':'data:image/png;base64,iVBORw0KGgo=','detail':null,"
          "'prompt_cache_breakpoint':{'mode':'x'}},"
          "{'type':'input_image','image_url':'https://x/y.png','file_id':'file_1','detail':'auto'},"
          "{'type':'input_image','image_url':'https://x/z.png','detail':7}]}]}",
          "{'model':'gpt-x','messages':[{'role':'user','content':[{'type':'text','text':'What is this?'},"
          "{'type':'image_url','image_url':{'url':'https://example.com/cat.jpg','detail':'high'}},"
          "{'type':'image_url','image_url':{'url':'data:image/png;base64,iVBORw0KGgo='}},"
          "{'type':'image_url','image_url':{'url':'https://x/y.png','detail':'auto'}},"
          "{'type':'image_url','image_url':{'url':'https://x/z.png'}}]}]}",
          "");
    /* all text parts stay parts; an empty array sends no message */
    CHECK("{'input':[{'role':'user','content':[{'type':'input_text','text':'a'},{'type':'input_text','text':'b'}]},"
          "{'type':'message','role':'user','content':[]}]}",
          "{'model':'gpt-x','messages':[{'role':'user','content':[{'type':'text','text':'a'},"
          "{'type':'text','text':'b'}]}]}",
          "");
}

static void test_strings_kept(void **state)
{
    /* escapes decode to the same string; jansson writes non-ASCII as UTF-8 and escapes what JSON
     * needs */
    CHECK("{'input':'caf\\u00e9 \\'quoted\\' \\\\ \\/ \\t \\u0000 \\ud83d\\ude00'}",
          "{'model':'gpt-x','messages':[{'role':'user','content':"
          "'caf\xc3\xa9 \\'quoted\\' \\\\ / \\t \\u0000 \xf0\x9f\x98\x80'}]}",
          "");
}

/* ---- assistant -------------------------------------------------------------------------------- */

static void test_assistant(void **state)
{
    CHECK("{'input':[" HI_ITEM ",{'role':'assistant','content':'Hello.'}]}",
          "{'model':'gpt-x','messages':[" HI_MSG ",{'role':'assistant','content':'Hello.'}]}", "");
    /* an output message as the API returned it: texts concatenated, annotations and logprobs
     * unlisted, id and status unlisted */
    CHECK("{'input':[" HI_ITEM ",{'type':'message','role':'assistant','id':'msg_1','status':'completed','content':["
          "{'type':'output_text','text':'Hel','annotations':[],'logprobs':[]},{'type':'input_text','text':'lo.'}]}]}",
          "{'model':'gpt-x','messages':[" HI_MSG ",{'role':'assistant','content':'Hello.'}]}", "");
    /* refusal parts: the message's refusal; no parts: content "" */
    CHECK("{'input':[" HI_ITEM ",{'role':'assistant','content':[{'type':'refusal','refusal':'No.'}]},"
          "{'role':'assistant','content':[{'type':'output_text','text':'I cannot'},"
          "{'type':'refusal','refusal':'Sorry'},"
          "{'type':'refusal','refusal':', no.'}]},{'role':'assistant','content':[]}]}",
          "{'model':'gpt-x','messages':[" HI_MSG ",{'role':'assistant','content':'','refusal':'No.'},"
          "{'role':'assistant','content':'I cannot','refusal':'Sorry, no.'},{'role':'assistant','content':''}]}",
          "");
    /* extras of an item are listed */
    CHECK("{'input':[" HI_ITEM ",{'role':'assistant','content':'x','phase':'final_answer'}]}",
          "{'model':'gpt-x','messages':[" HI_MSG ",{'role':'assistant','content':'x'}]}", "input[].phase");
    /* consecutive assistant messages stay apart */
    CHECK("{'input':[{'role':'assistant','content':'a'},{'role':'assistant','content':'b'}]}",
          "{'model':'gpt-x','messages':[{'role':'assistant','content':'a'},{'role':'assistant','content':'b'}]}", "");
}

/* ---- function calls --------------------------------------------------------------------------- */

#define FC(id, args) "{'type':'function_call','call_id':'" id "','name':'f','arguments':'" args "'}"
#define CALL(id, args) "{'id':'" id "','type':'function','function':{'name':'f','arguments':'" args "'}}"
#define FCO(id, out) "{'type':'function_call_output','call_id':'" id "','output':" out "}"
#define TOOL(id, text) "{'role':'tool','tool_call_id':'" id "','content':'" text "'}"

static void test_function_calls(void **state)
{
    /* a call alone: an assistant message with no text */
    CHECK("{'input':[" HI_ITEM "," FC("call_a", "{}") "]}",
          "{'model':'gpt-x','messages':[" HI_MSG ",{'role':'assistant','content':null,'tool_calls':["
          CALL("call_a", "{}") "]}]}",
          "");
    /* the assistant message and the calls after it are one message, reasoning between them
     * dropped; outputs as tool messages (a string, input_text parts concatenated) */
    CHECK("{'input':[" HI_ITEM ",{'role':'assistant','content':[{'type':'output_text','text':'Checking.'}]},"
          "{'type':'reasoning','id':'rs_1','summary':[],'encrypted_content':'gAAA'},"
          "{'type':'function_call','id':'fc_1','status':'completed','call_id':'call_a','name':'weather',"
          "'arguments':'{\\'city\\':\\'Oslo\\'}'},"
          "{'type':'reasoning','id':'rs_2','summary':[{'type':'summary_text','text':'t'}]}," FC("call_b", "") ","
          FCO("call_a", "'Sunny'") ","
          FCO("call_b", "[{'type':'input_text','text':'Ra'},{'type':'input_text','text':'in'}]")
          ",{'role':'user','content':'Thanks'}]}",
          "{'model':'gpt-x','messages':[" HI_MSG ",{'role':'assistant','content':'Checking.','tool_calls':["
          "{'id':'call_a','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'}},"
          CALL("call_b", "") "]}," TOOL("call_a", "Sunny") "," TOOL("call_b", "Rain")
          ",{'role':'user','content':'Thanks'}]}",
          "input[].reasoning");
    /* an empty text becomes null once calls join; a refusal stays */
    CHECK("{'input':[{'role':'assistant','content':''}," FC("a", "{}") ","
          "{'role':'assistant','content':[{'type':'refusal','refusal':'r'}]}," FC("b", "{}") "]}",
          "{'model':'gpt-x','messages':[{'role':'assistant','content':null,'tool_calls':[" CALL("a", "{}") "]},"
          "{'role':'assistant','content':null,'refusal':'r','tool_calls':[" CALL("b", "{}") "]}]}",
          "");
    /* outputs, user and system messages end the turn; an assistant message after calls is its own */
    CHECK("{'input':[" FC("a", "1") "," FCO("a", "''") "," FC("b", "2") ",{'role':'user','content':'u'}," FC("c", "3")
          ",{'role':'system','content':'s'}," FC("d", "4") ",{'role':'assistant','content':'t'}," FC("e", "5") "]}",
          "{'model':'gpt-x','messages':[{'role':'assistant','content':null,'tool_calls':[" CALL("a", "1") "]},"
          TOOL("a", "") ",{'role':'assistant','content':null,'tool_calls':[" CALL("b", "2") "]},"
          "{'role':'user','content':'u'},{'role':'assistant','content':null,'tool_calls':[" CALL("c", "3") "]},"
          "{'role':'system','content':'s'},{'role':'assistant','content':null,'tool_calls':[" CALL("d", "4") "]},"
          "{'role':'assistant','content':'t','tool_calls':[" CALL("e", "5") "]}]}",
          "");
    /* a reasoning item alone changes nothing; extras are listed, id and status not */
    CHECK("{'input':[{'type':'reasoning','summary':[]}," HI_ITEM ","
          "{'type':'function_call','call_id':'a','name':'f','arguments':'{}','namespace':'ns','id':'fc_1'},"
          "{'type':'function_call_output','call_id':'a','output':[],'status':'completed','id':'fco_1','extra':1}]}",
          "{'model':'gpt-x','messages':[" HI_MSG ",{'role':'assistant','content':null,'tool_calls':[" CALL("a", "{}")
          "]}," TOOL("a", "") "]}",
          "input[].reasoning,input[].namespace,input[].extra");
}

/* ---- tools ------------------------------------------------------------------------------------ */

#define SCHEMA "{'type':'object','properties':{'city':{'type':'string'}},'required':['city']}"
#define TOOLS                                                                                                  \
    "'tools':[{'type':'function','name':'weather','description':'Get the weather','parameters':" SCHEMA        \
    ",'strict':true},{'type':'function','name':'now','parameters':null,'strict':null}]"
#define TOOLS_OUT                                                                                              \
    "'tools':[{'type':'function','function':{'name':'weather','description':'Get the weather','parameters':"   \
    SCHEMA ",'strict':true}},{'type':'function','function':{'name':'now'}}]"

static void test_tools(void **state)
{
    CHECK("{" HI "," TOOLS "}", "{'model':'gpt-x'," HI_OUT "," TOOLS_OUT "}", "");
    /* key order of the input does not matter; strict false is kept */
    CHECK("{" HI ",'tools':[{'parameters':{},'strict':false,'description':'d','name':'f','type':'function'}]}",
          "{'model':'gpt-x'," HI_OUT ",'tools':[{'type':'function','function':{'name':'f','description':'d',"
          "'parameters':{},'strict':false}}]}",
          "");
    /* a tool's extras are listed */
    CHECK("{" HI ",'tools':[{'type':'function','name':'f','defer_loading':true,'async':false}]}",
          "{'model':'gpt-x'," HI_OUT ",'tools':[{'type':'function','function':{'name':'f'}}]}",
          "tools[].defer_loading,tools[].async");
    /* an empty tools array sends no tools; tool_choice and parallel_tool_calls without tools go */
    CHECK("{" HI ",'tools':[],'tool_choice':'required','parallel_tool_calls':false}", "{'model':'gpt-x'," HI_OUT "}",
          "tool_choice,parallel_tool_calls");
    CHECK("{" HI ",'tool_choice':{'type':'web_search'},'parallel_tool_calls':'x'}", "{'model':'gpt-x'," HI_OUT "}",
          "tool_choice,parallel_tool_calls");
}

/* one tool, then `extra` members; want: what follows the tools in the output */
static void check_tool_choice(const char *extra, const char *want)
{
    char body[CAP], out[CAP];
    snprintf(body, sizeof(body), "{" HI ",'tools':[{'type':'function','name':'w'}]%s}", extra);
    snprintf(out, sizeof(out), "{'model':'gpt-x'," HI_OUT ",'tools':[{'type':'function','function':{'name':'w'}}]%s}",
             want);
    CHECK(body, out, "");
}

static void test_tool_choice(void **state)
{
    check_tool_choice(",'tool_choice':'auto'", ",'tool_choice':'auto'");
    check_tool_choice(",'tool_choice':'none'", ",'tool_choice':'none'");
    check_tool_choice(",'tool_choice':'required'", ",'tool_choice':'required'");
    check_tool_choice(",'tool_choice':{'type':'function','name':'w'}",
                      ",'tool_choice':{'type':'function','function':{'name':'w'}}");
    check_tool_choice(",'parallel_tool_calls':false,'tool_choice':'auto'",
                      ",'tool_choice':'auto','parallel_tool_calls':false");
    check_tool_choice(",'parallel_tool_calls':true", ",'parallel_tool_calls':true");
    check_tool_choice(",'tool_choice':null,'parallel_tool_calls':null", "");
}

/* ---- text: structured output and verbosity ---------------------------------------------------- */

static void test_text(void **state)
{
    CHECK("{" HI ",'text':{'format':{'type':'json_schema','description':'A person','strict':true,'name':'person',"
          "'schema':" SCHEMA "}}}",
          "{'model':'gpt-x'," HI_OUT ",'response_format':{'type':'json_schema','json_schema':{'name':'person','schema':"
          SCHEMA ",'strict':true,'description':'A person'}}}",
          "");
    CHECK("{" HI ",'text':{'format':{'type':'json_schema','name':'p','schema':{},'strict':null,'extra':1}}}",
          "{'model':'gpt-x'," HI_OUT ",'response_format':{'type':'json_schema',"
          "'json_schema':{'name':'p','schema':{}}}}",
          "text.format.extra");
    CHECK("{" HI ",'text':{'format':{'type':'json_object'}}}",
          "{'model':'gpt-x'," HI_OUT ",'response_format':{'type':'json_object'}}", "");
    CHECK("{" HI ",'text':{'format':{'type':'text'}}}", "{'model':'gpt-x'," HI_OUT "}", "");
    CHECK("{" HI ",'text':{}}", "{'model':'gpt-x'," HI_OUT "}", "");
    /* verbosity: chat's own, before response_format */
    CHECK("{" HI ",'text':{'format':{'type':'json_object'},'verbosity':'low'}}",
          "{'model':'gpt-x'," HI_OUT ",'verbosity':'low','response_format':{'type':'json_object'}}", "");
    CHECK("{" HI ",'text':{'verbosity':'high','format':null,'other':1}}",
          "{'model':'gpt-x'," HI_OUT ",'verbosity':'high'}", "text.other");
}

/* ---- sampling and the rest -------------------------------------------------------------------- */

static void test_params(void **state)
{
    CHECK("{" HI ",'service_tier':'flex','prompt_cache_retention':'24h','prompt_cache_key':'k','safety_identifier':'s',"
          "'user':'u','top_logprobs':3,'top_p':1,'temperature':0.7,'max_output_tokens':256}",
          "{'model':'gpt-x'," HI_OUT ",'max_completion_tokens':256,'temperature':0.69999999999999996,'top_p':1,"
          "'logprobs':true,'top_logprobs':3,'user':'u','safety_identifier':'s','prompt_cache_key':'k',"
          "'prompt_cache_retention':'24h','service_tier':'flex'}",
          "");
    CHECK("{" HI ",'top_logprobs':0,'temperature':1e0}",
          "{'model':'gpt-x'," HI_OUT ",'temperature':1.0,'logprobs':true,'top_logprobs':0}", "");
}

/* reasoning `r` becomes reasoning_effort want (NULL: none), want_dropped listed */
static void check_reasoning(const char *r, const char *want, const char *want_dropped)
{
    char body[CAP], out[CAP];
    snprintf(body, sizeof(body), "{" HI ",'reasoning':%s}", r);
    snprintf(out, sizeof(out), "{'model':'gpt-x'," HI_OUT "%s%s%s}", want != NULL ? ",'reasoning_effort':'" : "",
             want != NULL ? want : "", want != NULL ? "'" : "");
    CHECK(body, out, want_dropped);
}

static void test_reasoning(void **state)
{
    /* the effort as sent: the target knows its levels */
    check_reasoning("{'effort':'minimal'}", "minimal", "");
    check_reasoning("{'effort':'low'}", "low", "");
    check_reasoning("{'effort':'medium','summary':'auto'}", "medium", "reasoning.summary");
    check_reasoning("{'effort':'high','summary':null}", "high", "");
    check_reasoning("{'effort':'none'}", "none", "");
    check_reasoning("{'effort':'xhigh'}", "xhigh", "");
    check_reasoning("{'summary':'detailed','generate_summary':'concise'}", NULL,
                    "reasoning.summary,reasoning.generate_summary");
    check_reasoning("{'effort':null}", NULL, "");
    check_reasoning("{}", NULL, "");
}

/* every member, in the order the output writes them */
static void test_everything(void **state)
{
    struct keel_translate_responses_opts o = {.model = "gpt-5", .stream = 1};
    check(&o,
          "{'model':'gpt-5-mini','stream':false,'service_tier':'auto','prompt_cache_retention':'in-memory',"
          "'prompt_cache_key':'k','safety_identifier':'s','user':'u','top_logprobs':2,'parallel_tool_calls':false,"
          "'tool_choice':'required'," TOOLS ",'text':{'format':{'type':'json_object'},'verbosity':'medium'},"
          "'reasoning':{'effort':'low'},'top_p':0.5,'temperature':1,'max_output_tokens':300,'instructions':'S'," HI "}",
          "{'model':'gpt-5','messages':[{'role':'system','content':'S'}," HI_MSG "],'max_completion_tokens':300,"
          "'temperature':1,'top_p':0.5,'reasoning_effort':'low','verbosity':'medium',"
          "'response_format':{'type':'json_object'}," TOOLS_OUT ",'tool_choice':'required','parallel_tool_calls':false,"
          "'logprobs':true,'top_logprobs':2,'user':'u','safety_identifier':'s','prompt_cache_key':'k',"
          "'prompt_cache_retention':'in-memory','service_tier':'auto','stream':true,"
          "'stream_options':{'include_usage':true}}",
          "");
}

static void test_dropped(void **state)
{
    CHECK("{'metadata':{'k':'v'},'include':['reasoning.encrypted_content'],'truncation':'auto','max_tool_calls':3,"
          "'context_management':[],'seed':1,'x-odd key!':1,'nothing':null,'store':false,'background':false," HI "}",
          "{'model':'gpt-x'," HI_OUT "}",
          "metadata,include,truncation,max_tool_calls,context_management,seed,x-odd?key?,store,background");

    /* a small buffer keeps whole names only; NULL takes nothing */
    char in[CAP], dropped[16], err[64];
    size_t n;
    q("{'seed':1,'include':[],'truncation':'x'," HI "}", in);
    char *out = keel_translate_responses_to_chat(in, strlen(in), &OPTS, &n, err, sizeof(err), dropped, sizeof(dropped));
    assert_non_null(out);
    assert_string_equal(dropped, "seed,include");
    free(out);
    out = keel_translate_responses_to_chat(in, strlen(in), &OPTS, &n, NULL, 0, NULL, 0);
    assert_non_null(out);
    free(out);
    /* filled on failure too, up to the failure */
    char d2[64];
    q("{'include':[],'input':[{'type':'reasoning','summary':[]},{'type':'web_search_call','id':'ws_1'}]}", in);
    assert_null(keel_translate_responses_to_chat(in, strlen(in), &OPTS, &n, err, sizeof(err), d2, sizeof(d2)));
    assert_string_equal(d2, "include,input[].reasoning");
    assert_string_equal(err, "input[1]: web_search_call items need a Responses target");
}

/* ---- what the clients send -------------------------------------------------------------------- */

/* the AI SDK's tool definition, zod's JSON Schema */
#define AI_TOOLS                                                                                               \
    "'tools':[{'type':'function','name':'weather','description':'Get the weather','parameters':{'type':'object'," \
    "'properties':{'city':{'type':'string'}},'required':['city'],'additionalProperties':false,"                   \
    "'$schema':'http://json-schema.org/draft-07/schema#'}}],'tool_choice':'auto'"
#define AI_TOOLS_OUT                                                                                           \
    "'tools':[{'type':'function','function':{'name':'weather','description':'Get the weather','parameters':"      \
    "{'type':'object','properties':{'city':{'type':'string'}},'required':['city'],'additionalProperties':false,"  \
    "'$schema':'http://json-schema.org/draft-07/schema#'}}}],'tool_choice':'auto'"

/* captured from openai 6.30.1, @ai-sdk/openai 3.0.141 (ai 6.0.326) and @langchain/openai 0.6.17
 * talking to a local server */
static void test_clients(void **state)
{
    struct keel_translate_responses_opts stream = OPTS;
    stream.stream = 1;
    /* openai: client.responses.create({model, input: 'hi'}), then with stream: true */
    CHECK("{'model':'gpt-4o-mini','input':'hi'}", "{'model':'gpt-x','messages':[{'role':'user','content':'hi'}]}", "");
    check(&stream, "{'model':'gpt-4o-mini','input':'hi','stream':true}",
          "{'model':'gpt-x','messages':[{'role':'user','content':'hi'}],'stream':true,"
          "'stream_options':{'include_usage':true}}",
          "");
    /* openai: the documented function-calling loop, response.output pushed back into input */
    CHECK("{'model':'gpt-4.1','instructions':'Use tools.','input':[{'role':'user','content':'Weather in Paris?'},"
          "{'id':'rs_1','type':'reasoning','summary':[]},"
          "{'id':'fc_1','type':'function_call','status':'completed','arguments':'{\\'city\\':\\'Paris\\'}',"
          "'call_id':'call_1','name':'weather'},"
          "{'type':'function_call_output','call_id':'call_1','output':'{\\'temp\\':14}'}],"
          "'tools':[{'type':'function','name':'weather','description':'Get the weather','parameters':" SCHEMA
          ",'strict':true}]}",
          "{'model':'gpt-x','messages':[{'role':'system','content':'Use tools.'},"
          "{'role':'user','content':'Weather in Paris?'},{'role':'assistant','content':null,'tool_calls':["
          "{'id':'call_1','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Paris\\'}'}}]},"
          "{'role':'tool','tool_call_id':'call_1','content':'{\\'temp\\':14}'}],"
          "'tools':[{'type':'function','function':{'name':'weather','description':'Get the weather','parameters':"
          SCHEMA ",'strict':true}}]}",
          "input[].reasoning");
    /* AI SDK: generateText with a tool, step 2 (two parallel calls and their results) */
    CHECK("{'model':'gpt-4o-mini','input':[{'role':'system','content':'You are a weather bot.'},"
          "{'role':'user','content':[{'type':'input_text','text':'Weather in Oslo and Bergen?'}]},"
          "{'type':'function_call','call_id':'call_abc','name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'},"
          "{'type':'function_call','call_id':'call_def','name':'weather','arguments':'{\\'city\\':\\'Bergen\\'}'},"
          "{'type':'function_call_output','call_id':'call_abc','output':'{\\'city\\':\\'Oslo\\',\\'temp\\':21}'},"
          "{'type':'function_call_output','call_id':'call_def','output':'{\\'city\\':\\'Bergen\\',\\'temp\\':21}'}],"
          AI_TOOLS "}",
          "{'model':'gpt-x','messages':[{'role':'system','content':'You are a weather bot.'},"
          "{'role':'user','content':[{'type':'text','text':'Weather in Oslo and Bergen?'}]},"
          "{'role':'assistant','content':null,'tool_calls':["
          "{'id':'call_abc','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'}},"
          "{'id':'call_def','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Bergen\\'}'}}]},"
          "{'role':'tool','tool_call_id':'call_abc','content':'{\\'city\\':\\'Oslo\\',\\'temp\\':21}'},"
          "{'role':'tool','tool_call_id':'call_def','content':'{\\'city\\':\\'Bergen\\',\\'temp\\':21}'}]," AI_TOOLS_OUT
          "}",
          "");
    /* AI SDK: a step whose answer had text before the call refers to that text by id unless
     * store is false (its default is true); with store: false it sends the item */
    check_error("{'model':'gpt-4o-mini','input':[{'role':'user','content':[{'type':'input_text','text':'Weather?'}]},"
                "{'type':'item_reference','id':'msg_1'},"
                "{'type':'function_call','call_id':'call_abc','name':'weather','arguments':'{}'}]," AI_TOOLS "}",
                "input[1]: item_reference needs server-side state: keel keeps no conversation state; send the item "
                "itself (clients do with store: false)");
    CHECK("{'model':'gpt-4o-mini','input':[{'role':'user','content':[{'type':'input_text','text':'Weather in Oslo?'}]},"
          "{'role':'assistant','content':[{'type':'output_text','text':'Let me check.'}],'id':'msg_1'},"
          "{'type':'function_call','call_id':'call_abc','name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'},"
          "{'type':'function_call_output','call_id':'call_abc','output':'{\\'city\\':\\'Oslo\\',\\'temp\\':21}'}],"
          "'store':false," AI_TOOLS "}",
          "{'model':'gpt-x','messages':[{'role':'user','content':[{'type':'text','text':'Weather in Oslo?'}]},"
          "{'role':'assistant','content':'Let me check.','tool_calls':["
          "{'id':'call_abc','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'}}]},"
          "{'role':'tool','tool_call_id':'call_abc','content':'{\\'city\\':\\'Oslo\\',\\'temp\\':21}'}]," AI_TOOLS_OUT
          "}",
          "store");
    /* AI SDK: generateObject (structured output) */
    CHECK("{'model':'gpt-4o-mini','input':[{'role':'user','content':["
          "{'type':'input_text','text':'Invent a person.'}]}],"
          "'temperature':0.3,'max_output_tokens':200,'text':{'format':{'type':'json_schema','strict':true,"
          "'name':'response','schema':{'type':'object','properties':{'name':{'type':'string'},'age':{'type':'number'}},"
          "'required':['name','age'],'additionalProperties':false,"
          "'$schema':'http://json-schema.org/draft-07/schema#'}}}}",
          "{'model':'gpt-x','messages':[{'role':'user','content':[{'type':'text','text':'Invent a person.'}]}],"
          "'max_completion_tokens':200,'temperature':0.29999999999999999,'response_format':{'type':'json_schema',"
          "'json_schema':{'name':'response','schema':{'type':'object','properties':{'name':{'type':'string'},"
          "'age':{'type':'number'}},'required':['name','age'],'additionalProperties':false,"
          "'$schema':'http://json-schema.org/draft-07/schema#'},'strict':true}}}",
          "");
    /* LangChain, useResponsesApi: a tool round trip (strict null, text {}, stream false) */
    CHECK("{'input':[{'type':'message','role':'system','content':'You are a weather bot.'},"
          "{'type':'message','role':'user','content':'Weather in Oslo?'},"
          "{'type':'function_call','name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}','call_id':'call_abc'},"
          "{'type':'function_call_output','call_id':'call_abc','output':'{\\'temp\\':21}'}],'model':'gpt-4o-mini',"
          "'stream':false,'tools':[{'type':'function','name':'weather','parameters':" SCHEMA
          ",'description':'Get the weather','strict':null}],'text':{}}",
          "{'model':'gpt-x','messages':[{'role':'system','content':'You are a weather bot.'},"
          "{'role':'user','content':'Weather in Oslo?'},{'role':'assistant','content':null,'tool_calls':["
          "{'id':'call_abc','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'}}]},"
          "{'role':'tool','tool_call_id':'call_abc','content':'{\\'temp\\':21}'}],"
          "'tools':[{'type':'function','function':{'name':'weather','description':'Get the weather','parameters':"
          SCHEMA "}}]}",
          "");
    /* LangChain: withStructuredOutput(zod, {method: 'jsonSchema'}) */
    CHECK("{'input':[{'type':'message','role':'user','content':'Invent a person.'}],'model':'gpt-4o-mini',"
          "'stream':false,'text':{'format':{'type':'json_schema','schema':" SCHEMA ",'name':'person','strict':true}}}",
          "{'model':'gpt-x','messages':[{'role':'user','content':'Invent a person.'}],'response_format':"
          "{'type':'json_schema','json_schema':{'name':'person','schema':" SCHEMA ",'strict':true}}}",
          "");
    /* LangChain: an earlier answer reused from response_metadata.output, and a multimodal turn */
    CHECK("{'input':[{'type':'message','role':'user','content':[{'type':'input_text','text':'Describe'},"
          "{'type':'input_image','image_url':'data:image/jpeg;base64,/9j/4A==','detail':'auto'}]},"
          "{'type':'message','id':'msg_1','role':'assistant','status':'completed','content':[{'type':'output_text',"
          "'text':'A cat.','annotations':[]}]},{'type':'message','role':'user','content':'More?'}],"
          "'model':'gpt-4o-mini','stream':false,'text':{}}",
          "{'model':'gpt-x','messages':[{'role':'user','content':[{'type':'text','text':'Describe'},"
          "{'type':'image_url','image_url':{'url':'data:image/jpeg;base64,/9j/4A==','detail':'auto'}}]},"
          "{'role':'assistant','content':'A cat.'},{'role':'user','content':'More?'}]}",
          "");
}

/* ---- refusals --------------------------------------------------------------------------------- */

static void test_state_refused(void **state)
{
    static const char *const cases[][2] = {
        {"{" HI ",'previous_response_id':'resp_1'}",
         "previous_response_id needs server-side state: keel keeps no conversation state; send the whole "
         "conversation in input"},
        {"{" HI ",'conversation':'conv_1'}",
         "conversation needs server-side state: keel keeps no conversation state; send the whole conversation in "
         "input"},
        {"{" HI ",'conversation':{'id':'conv_1'}}",
         "conversation needs server-side state: keel keeps no conversation state; send the whole conversation in "
         "input"},
        {"{'prompt':{'id':'pmpt_1','version':'2','variables':{'x':'y'}}}",
         "prompt needs server-side state: keel keeps no conversation state; send the prompt's text as instructions "
         "and input"},
        {"{" HI ",'store':true}",
         "store needs server-side state: keel keeps no conversation state; send store: false or leave it out"},
        {"{" HI ",'background':true}",
         "background needs server-side state: keel keeps no conversation state; leave background out"},
        {"{" HI ",'store':'no'}", "store: must be a boolean"},
        {"{" HI ",'background':0}", "background: must be a boolean"},
        /* before anything in input is looked at */
        {"{'input':5,'previous_response_id':'resp_1'}",
         "previous_response_id needs server-side state: keel keeps no conversation state; send the whole "
         "conversation in input"},
        {"{'input':[{'type':'item_reference','id':'msg_1'}]}",
         "input[0]: item_reference needs server-side state: keel keeps no conversation state; send the item itself "
         "(clients do with store: false)"},
        /* an item with only an id is a reference (its type is optional) */
        {"{'input':[" HI_ITEM ",{'id':'msg_1'}]}",
         "input[1]: item_reference needs server-side state: keel keeps no conversation state; send the item itself "
         "(clients do with store: false)"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        check_error(cases[k][0], cases[k][1]);
}

static void test_errors(void **state)
{
    static const char *const cases[][2] = {
        /* input */
        {"{}", "input: must be a string or an array of items"},
        {"{'input':null}", "input: must be a string or an array of items"},
        {"{'input':{'role':'user','content':'x'}}", "input: must be a string or an array of items"},
        {"{'input':[]}", "input: no message to send"},
        {"{'instructions':'','input':[{'type':'reasoning','summary':[]},{'role':'user','content':[]}]}",
         "input: no message to send"},
        {"{'instructions':5," HI "}", "instructions: must be a string"},
        {"{'instructions':[{'type':'input_text','text':'x'}]," HI "}", "instructions: must be a string"},
        {"{'input':['hi']}", "input[0]: must be an object"},
        {"{'input':[" HI_ITEM ",{'type':5,'role':'user','content':'x'}]}", "input[1].type: must be a string"},
        {"{'input':[{'content':'x'}]}", "input[0].role: must be a string"},
        {"{'input':[{}]}", "input[0].role: must be a string"},
        {"{'input':[{'type':'message','content':'x'}]}", "input[0].role: must be a string"},
        {"{'input':[{'role':'tool','content':'x'}]}",
         "input[0].role: must be \"user\", \"assistant\", \"system\" or \"developer\", not \"tool\""},
        {"{'input':[{'role':'user'}]}", "input[0].content: must be a string or an array of content parts"},
        {"{'input':[{'role':'user','content':null}]}",
         "input[0].content: must be a string or an array of content parts"},
        {"{'input':[{'role':'assistant','content':{'type':'output_text','text':'x'}}]}",
         "input[0].content: must be a string or an array of content parts"},
        /* other item types */
        {"{'input':[" HI_ITEM ",{'type':'web_search_call','id':'ws_1','status':'completed'}]}",
         "input[1]: web_search_call items need a Responses target"},
        {"{'input':[{'type':'file_search_call','id':'fs_1','queries':[],'status':'completed'}]}",
         "input[0]: file_search_call items need a Responses target"},
        {"{'input':[{'type':'computer_call','id':'cu_1','call_id':'c','action':{},'status':'completed'}]}",
         "input[0]: computer_call items need a Responses target"},
        {"{'input':[{'type':'custom_tool_call','call_id':'c','name':'grammar','input':'x'}]}",
         "input[0]: custom_tool_call items need a Responses target"},
        {"{'input':[{'type':'custom_tool_call_output','call_id':'c','output':'x'}]}",
         "input[0]: custom_tool_call_output items need a Responses target"},
        {"{'input':[{'type':'mcp_approval_response','approval_request_id':'a','approve':true}]}",
         "input[0]: mcp_approval_response items need a Responses target"},
        {"{'input':[{'type':'configuration_update','reasoning':{'effort':'low'}}]}",
         "input[0]: configuration_update items need a Responses target"},
        /* user parts */
        {"{'input':[{'role':'user','content':['x']}]}", "input[0].content[0]: must be an object with a string type"},
        {"{'input':[{'role':'user','content':[{'text':'x'}]}]}",
         "input[0].content[0]: must be an object with a string type"},
        {"{'input':[{'role':'user','content':[{'type':'input_text','text':1}]}]}",
         "input[0].content[0].text: must be a string"},
        {"{'input':[{'role':'user','content':[{'type':'input_text'}]}]}", "input[0].content[0].text: must be a string"},
        {"{'input':[{'role':'user','content':'a'},{'role':'user','content':'b'},{'role':'user','content':["
         "{'type':'input_file','filename':'a.pdf','file_data':'data:application/pdf;base64,JVBE'}]}]}",
         "input[2].content[0]: input_file parts cannot be sent to a chat completions target"},
        {"{'input':[{'role':'user','content':[{'type':'input_text','text':'x'},"
         "{'type':'input_file','file_id':'file_1'}]}]}",
         "input[0].content[1]: input_file parts cannot be sent to a chat completions target"},
        {"{'input':[{'role':'user','content':[{'type':'input_audio','input_audio':{'data':'AAAA','format':'wav'}}]}]}",
         "input[0].content[0]: input_audio parts cannot be sent to a chat completions target"},
        {"{'input':[{'role':'user','content':[{'type':'input_image','file_id':'file_1','detail':'auto'}]}]}",
         "input[0].content[0]: input_image parts with only a file_id cannot be sent to a chat completions target"},
        {"{'input':[{'role':'user','content':[{'type':'input_image','image_url':null,'file_id':'file_1',"
         "'detail':'auto'}]}]}",
         "input[0].content[0]: input_image parts with only a file_id cannot be sent to a chat completions target"},
        {"{'input':[{'role':'user','content':[{'type':'input_image','detail':'auto'}]}]}",
         "input[0].content[0].image_url: must be a non-empty string"},
        {"{'input':[{'role':'user','content':[{'type':'input_image','image_url':''}]}]}",
         "input[0].content[0].image_url: must be a non-empty string"},
        {"{'input':[{'role':'user','content':[{'type':'input_image','image_url':{'url':'https://x/y'}}]}]}",
         "input[0].content[0].image_url: must be a non-empty string"},
        {"{'input':[{'role':'user','content':[{'type':'output_text','text':'x'}]}]}",
         "input[0].content[0]: output_text parts in user messages cannot be sent to a chat completions target"},
        {"{'input':[{'role':'user','content':[{'type':'refusal','refusal':'x'}]}]}",
         "input[0].content[0]: refusal parts in user messages cannot be sent to a chat completions target"},
        {"{'input':[{'role':'user','content':[{'type':'text','text':'x'}]}]}",
         "input[0].content[0]: text parts cannot be sent to a chat completions target"},
        /* system and developer parts */
        {"{'input':[{'role':'developer','content':[{'type':'input_text','text':'x'},{'type':'input_image',"
         "'image_url':'https://x/y'}]}]}",
         "input[0].content[1]: input_image parts in developer messages cannot be sent to a chat completions target"},
        {"{'input':[{'role':'system','content':[{'type':'input_file','file_id':'f'}]}]}",
         "input[0].content[0]: input_file parts cannot be sent to a chat completions target"},
        {"{'input':[{'role':'system','content':[{'type':'input_text','text':null}]}]}",
         "input[0].content[0].text: must be a string"},
        {"{'input':[{'role':'system','content':[7]}]}", "input[0].content[0]: must be an object with a string type"},
        /* assistant parts */
        {"{'input':[{'role':'assistant','content':[{'type':'input_image','image_url':'https://x/y'}]}]}",
         "input[0].content[0]: input_image parts in assistant messages cannot be sent to a chat completions target"},
        {"{'input':[{'role':'assistant','content':[{'type':'output_text','text':'x'},{'type':'reasoning_text',"
         "'text':'y'}]}]}",
         "input[0].content[1]: reasoning_text parts cannot be sent to a chat completions target"},
        {"{'input':[{'role':'assistant','content':[{'type':'output_text'}]}]}",
         "input[0].content[0].text: must be a string"},
        {"{'input':[{'role':'assistant','content':[{'type':'refusal','text':'x'}]}]}",
         "input[0].content[0].refusal: must be a string"},
        {"{'input':[{'role':'assistant','content':[null]}]}",
         "input[0].content[0]: must be an object with a string type"},
        /* function calls */
        {"{'input':[{'type':'function_call','name':'f','arguments':'{}'}]}",
         "input[0].call_id: must be a non-empty string"},
        {"{'input':[{'type':'function_call','call_id':'','name':'f','arguments':'{}'}]}",
         "input[0].call_id: must be a non-empty string"},
        {"{'input':[{'type':'function_call','call_id':'c','arguments':'{}'}]}",
         "input[0].name: must be a non-empty string"},
        {"{'input':[{'type':'function_call','call_id':'c','name':'f'}]}", "input[0].arguments: must be a string"},
        {"{'input':[{'type':'function_call','call_id':'c','name':'f','arguments':{}}]}",
         "input[0].arguments: must be a string"},
        {"{'input':[{'type':'function_call_output','output':'x'}]}", "input[0].call_id: must be a non-empty string"},
        {"{'input':[{'type':'function_call_output','call_id':'c'}]}",
         "input[0].output: must be a string or an array of content parts"},
        {"{'input':[{'type':'function_call_output','call_id':'c','output':{'type':'input_text','text':'x'}}]}",
         "input[0].output: must be a string or an array of content parts"},
        {"{'input':[{'type':'function_call_output','call_id':'c','output':[{'type':'input_text','text':'x'},"
         "{'type':'input_image','image_url':'data:image/png;base64,AAAA'}]}]}",
         "input[0].output[1]: input_image parts in a function_call_output cannot be sent to a chat completions target"},
        {"{'input':[{'type':'function_call_output','call_id':'c','output':[{'type':'input_file','file_id':'f'}]}]}",
         "input[0].output[0]: input_file parts in a function_call_output cannot be sent to a chat completions target"},
        {"{'input':[{'type':'function_call_output','call_id':'c','output':[{'type':'input_text'}]}]}",
         "input[0].output[0].text: must be a string"},
        {"{'input':[{'type':'function_call_output','call_id':'c','output':['x']}]}",
         "input[0].output[0]: must be an object with a string type"},
        /* parameters */
        {"{" HI ",'max_output_tokens':0}", "max_output_tokens: must be a positive integer"},
        {"{" HI ",'max_output_tokens':-5}", "max_output_tokens: must be a positive integer"},
        {"{" HI ",'max_output_tokens':10.0}", "max_output_tokens: must be a positive integer"},
        {"{" HI ",'max_output_tokens':'10'}", "max_output_tokens: must be a positive integer"},
        {"{" HI ",'temperature':'hot'}", "temperature: must be a number"},
        {"{" HI ",'top_p':true}", "top_p: must be a number"},
        {"{" HI ",'top_logprobs':-1}", "top_logprobs: must be a non-negative integer"},
        {"{" HI ",'top_logprobs':2.5}", "top_logprobs: must be a non-negative integer"},
        {"{" HI ",'user':5}", "user: must be a string"},
        {"{" HI ",'safety_identifier':{}}", "safety_identifier: must be a string"},
        {"{" HI ",'prompt_cache_key':1}", "prompt_cache_key: must be a string"},
        {"{" HI ",'prompt_cache_retention':true}", "prompt_cache_retention: must be a string"},
        {"{" HI ",'service_tier':[]}", "service_tier: must be a string"},
        {"{" HI ",'reasoning':'high'}", "reasoning: must be an object"},
        {"{" HI ",'reasoning':{'effort':3}}", "reasoning.effort: must be a string"},
        /* text */
        {"{" HI ",'text':'json'}", "text: must be an object"},
        {"{" HI ",'text':{'verbosity':1}}", "text.verbosity: must be a string"},
        {"{" HI ",'text':{'format':'json_object'}}", "text.format: must be an object with a string type"},
        {"{" HI ",'text':{'format':{}}}", "text.format: must be an object with a string type"},
        {"{" HI ",'text':{'format':{'type':'grammar','syntax':'lark','definition':'x'}}}",
         "text.format: grammar formats cannot be sent to a chat completions target"},
        {"{" HI ",'text':{'format':{'type':'json_schema','schema':{}}}}",
         "text.format.name: must be a non-empty string"},
        {"{" HI ",'text':{'format':{'type':'json_schema','name':'','schema':{}}}}",
         "text.format.name: must be a non-empty string"},
        {"{" HI ",'text':{'format':{'type':'json_schema','name':'p'}}}",
         "text.format.schema: must be a JSON Schema object"},
        {"{" HI ",'text':{'format':{'type':'json_schema','name':'p','schema':'{}'}}}",
         "text.format.schema: must be a JSON Schema object"},
        {"{" HI ",'text':{'format':{'type':'json_schema','name':'p','schema':{},'strict':'yes'}}}",
         "text.format.strict: must be a boolean"},
        {"{" HI ",'text':{'format':{'type':'json_schema','name':'p','schema':{},'description':5}}}",
         "text.format.description: must be a string"},
        /* tools */
        {"{" HI ",'tools':{}}", "tools: must be an array"},
        {"{" HI ",'tools':[5]}", "tools[0]: must be an object with a string type"},
        {"{" HI ",'tools':[{'name':'f'}]}", "tools[0]: must be an object with a string type"},
        {"{" HI ",'tools':[{'type':'function','name':'f'},{'type':'web_search'}]}",
         "tools[1]: web_search tools need a Responses target"},
        {"{" HI ",'tools':[{'type':'web_search_preview'}]}",
         "tools[0]: web_search_preview tools need a Responses target"},
        {"{" HI ",'tools':[{'type':'file_search','vector_store_ids':['vs_1']}]}",
         "tools[0]: file_search tools need a Responses target"},
        {"{" HI ",'tools':[{'type':'code_interpreter','container':{'type':'auto'}}]}",
         "tools[0]: code_interpreter tools need a Responses target"},
        {"{" HI ",'tools':[{'type':'mcp','server_label':'x','server_url':'https://x'}]}",
         "tools[0]: mcp tools need a Responses target"},
        {"{" HI ",'tools':[{'type':'image_generation'}]}", "tools[0]: image_generation tools need a Responses target"},
        {"{" HI ",'tools':[{'type':'custom','name':'grammar'}]}", "tools[0]: custom tools need a Responses target"},
        {"{" HI ",'tools':[{'type':'function','name':''}]}", "tools[0].name: must be a non-empty string"},
        {"{" HI ",'tools':[{'type':'function'}]}", "tools[0].name: must be a non-empty string"},
        {"{" HI ",'tools':[{'type':'function','name':'f','description':1}]}", "tools[0].description: must be a string"},
        {"{" HI ",'tools':[{'type':'function','name':'f','parameters':'{}'}]}",
         "tools[0].parameters: must be a JSON Schema object"},
        {"{" HI ",'tools':[{'type':'function','name':'f','strict':1}]}", "tools[0].strict: must be a boolean"},
        {"{" HI ",'tools':[{'type':'function','name':'f'}],'tool_choice':'any'}",
         "tool_choice: must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}"},
        {"{" HI ",'tools':[{'type':'function','name':'f'}],'tool_choice':{'type':'function','function':{'name':'f'}}}",
         "tool_choice: must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}"},
        {"{" HI ",'tools':[{'type':'function','name':'f'}],'tool_choice':{'type':'allowed_tools','mode':'auto',"
         "'tools':[{'type':'function','name':'f'}]}}",
         "tool_choice: must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}"},
        {"{" HI ",'tools':[{'type':'function','name':'f'}],'tool_choice':{'type':'web_search'}}",
         "tool_choice: must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}"},
        {"{" HI ",'tools':[{'type':'function','name':'f'}],'parallel_tool_calls':'yes'}",
         "parallel_tool_calls: must be a boolean"},
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
        assert_null(keel_translate_responses_to_chat(bodies[k], strlen(bodies[k]), &OPTS, &n, err, sizeof(err),
                                                     dropped, sizeof(dropped)));
        assert_string_equal(err, "request body must be a JSON object");
        assert_int_equal(n, 0);
    }
    assert_null(keel_translate_responses_to_chat(NULL, 0, &OPTS, &n, err, sizeof(err), NULL, 0));
    assert_string_equal(err, "request body must be a JSON object");
    /* valid JSON that jansson cannot hold */
    const char *big = "{\"input\":\"Hi\",\"seed\":100000000000000000000}";
    assert_null(keel_translate_responses_to_chat(big, strlen(big), &OPTS, &n, err, sizeof(err), NULL, 0));
    assert_string_equal(err, "request body: a number is out of range");
    const char *nul = "{\"input\":\"Hi\",\"a\\u0000b\":1}";
    assert_null(keel_translate_responses_to_chat(nul, strlen(nul), &OPTS, &n, err, sizeof(err), NULL, 0));
    assert_string_equal(err, "request body: an object key holds a NUL character");
    /* the length bounds the body: what follows is not read */
    const char *body = "{\"input\":\"Hi\"}garbage";
    char *out = keel_translate_responses_to_chat(body, strlen(body) - 7, &OPTS, &n, err, sizeof(err), NULL, 0);
    assert_non_null(out);
    free(out);
    /* a short error buffer gets a truncated, terminated message */
    char tiny[9];
    assert_null(keel_translate_responses_to_chat("[]", 2, &OPTS, &n, tiny, sizeof(tiny), NULL, 0));
    assert_string_equal(tiny, "request ");
}

/* ---- robustness ------------------------------------------------------------------------------- */

/* a body touching every rule, for the cut and out-of-memory tests */
#define RICH                                                                                                   \
    "{'model':'gpt-5','stream':true,'store':false,'include':['reasoning.encrypted_content'],'metadata':{'k':'v'}," \
    "'max_output_tokens':300,'temperature':0.25,'top_p':0.9,'top_logprobs':2,'user':'u','safety_identifier':'s',"  \
    "'prompt_cache_key':'k','prompt_cache_retention':'24h','service_tier':'auto',"                              \
    "'reasoning':{'effort':'low','summary':'auto'},'text':{'format':{'type':'json_schema','name':'p',"         \
    "'schema':" SCHEMA ",'strict':true,'description':'d'},'verbosity':'low'}," TOOLS ","                        \
    "'tool_choice':{'type':'function','name':'weather'},'parallel_tool_calls':false,'instructions':'I',"       \
    "'input':[{'role':'developer','content':[{'type':'input_text','text':'D'}]},"                              \
    "{'role':'user','content':[{'type':'input_text','text':'a\\u00e9'},"                                       \
    "{'type':'input_image','image_url':'data:image/png;base64,AAAA','detail':'low'}]},"                        \
    "{'type':'message','role':'assistant','id':'msg_1','content':[{'type':'output_text','text':'b'},"          \
    "{'type':'refusal','refusal':'r'}]},{'type':'reasoning','summary':[]},"                                    \
    "{'type':'function_call','call_id':'1','name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'},"           \
    "{'type':'function_call','call_id':'2','name':'now','arguments':'{}','namespace':'n'},"                    \
    "{'type':'function_call_output','call_id':'1','output':'ok'},"                                             \
    "{'type':'function_call_output','call_id':'2','output':[{'type':'input_text','text':'o'},"                 \
    "{'type':'input_text','text':'k'}]},{'role':'assistant','content':'c'},{'role':'user','content':'e'}]}"

/* whatever is translated parses back as an object with the frame's members */
static void test_outputs_are_json(void **state)
{
    static const char *const bodies[] = {
        "{" HI "}",
        RICH,
        "{'input':[{'type':'function_call','call_id':'1','name':'f','arguments':'{\\'k\\':\\'\\\\u0000\\'}'}]}",
    };
    for (size_t k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
        char in[CAP], err[256];
        size_t n;
        q(bodies[k], in);
        char *out = keel_translate_responses_to_chat(in, strlen(in), &OPTS, &n, err, sizeof(err), NULL, 0);
        if (out == NULL)
            fail_msg("body %zu not translated: %s", k, err);
        json_error_t je;
        json_t *v = json_loadb(out, n, JSON_ALLOW_NUL, &je);
        assert_true(json_is_object(v));
        assert_string_equal(json_string_value(json_object_get(v, "model")), "gpt-x");
        assert_true(json_array_size(json_object_get(v, "messages")) > 0);
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
        char *out = keel_translate_responses_to_chat(body, cut, &OPTS, &n, err, sizeof(err), dropped, sizeof(dropped));
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

/* the rich body's exact translation, and what it drops */
static void test_rich(void **state)
{
    struct keel_translate_responses_opts o = OPTS;
    o.stream = 1;
    check(&o, RICH,
          "{'model':'gpt-x','messages':[{'role':'system','content':'I'},{'role':'system','content':'D'},"
          "{'role':'user','content':[{'type':'text','text':'a\xc3\xa9'},"
          "{'type':'image_url','image_url':{'url':'data:image/png;base64,AAAA','detail':'low'}}]},"
          "{'role':'assistant','content':'b','refusal':'r','tool_calls':["
          "{'id':'1','type':'function','function':{'name':'weather','arguments':'{\\'city\\':\\'Oslo\\'}'}},"
          "{'id':'2','type':'function','function':{'name':'now','arguments':'{}'}}]},"
          "{'role':'tool','tool_call_id':'1','content':'ok'},{'role':'tool','tool_call_id':'2','content':'ok'},"
          "{'role':'assistant','content':'c'},{'role':'user','content':'e'}],"
          "'max_completion_tokens':300,'temperature':0.25,'top_p':0.90000000000000002,'reasoning_effort':'low',"
          "'verbosity':'low','response_format':{'type':'json_schema','json_schema':{'name':'p','schema':" SCHEMA
          ",'strict':true,'description':'d'}}," TOOLS_OUT ",'tool_choice':{'type':'function','function':"
          "{'name':'weather'}},'parallel_tool_calls':false,'logprobs':true,'top_logprobs':2,'user':'u',"
          "'safety_identifier':'s','prompt_cache_key':'k','prompt_cache_retention':'24h','service_tier':'auto',"
          "'stream':true,'stream_options':{'include_usage':true}}",
          "include,metadata,store,input[].reasoning,input[].namespace,reasoning.summary");
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
    struct keel_translate_responses_opts o = OPTS;
    o.stream = 1;
    q(RICH, in);
    for (size_t limit = 0;; limit++) {
        allocs_left = limit;
        json_set_alloc_funcs(failing_malloc, free);
        char *out =
            keel_translate_responses_to_chat(in, strlen(in), &o, &n, err, sizeof(err), dropped, sizeof(dropped));
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
        cmocka_unit_test(test_instructions),
        cmocka_unit_test(test_user_parts),
        cmocka_unit_test(test_strings_kept),
        cmocka_unit_test(test_assistant),
        cmocka_unit_test(test_function_calls),
        cmocka_unit_test(test_tools),
        cmocka_unit_test(test_tool_choice),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_reasoning),
        cmocka_unit_test(test_everything),
        cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_clients),
        cmocka_unit_test(test_state_refused),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_outputs_are_json),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_rich),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
