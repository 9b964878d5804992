// responses.test.mjs - the OpenAI Responses API (POST /v1/responses) served by chat targets and
// Anthropic targets, through chains whose primary fails: the request translated, the answer
// written as a Response or its typed event stream. The clients as a user runs them at their
// defaults: the official openai SDK, the Vercel AI SDK 6 (`openai('x')` is the Responses API),
// LangChain with useResponsesApi. Real keel and keel sim.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { generateObject, generateText, jsonSchema, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { ChatOpenAI } from '@langchain/openai';
import { z } from 'zod';
import { attemptsOf, post, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;
let client;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults: { timeouts: { first_byte: 1s, stall: 600ms, total: 20s }, breaker: { failures: 1000 } }
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
  - { name: c, kind: anthropic, base_url: "{SIM}" }
  - { name: n, base_url: "{SIM}", responses: true }
models:
  - { name: desk, targets: [ { upstream: a, model: "503" }, { upstream: b, model: healthy } ] }
  - { name: tools, targets: [ { upstream: a, model: "503" }, { upstream: b, model: "tools:seq" } ] }
  - { name: json, targets: [ { upstream: a, model: hang }, { upstream: b, model: json } ] }
  - { name: thinker, targets: [ { upstream: b, model: rich } ] }
  - { name: claude, targets: [ { upstream: a, model: "503" }, { upstream: c, model: healthy } ] }
  - { name: claude-tools, targets: [ { upstream: c, model: tools } ] }
  - { name: echo, targets: [ { upstream: b, model: echo, stream_upstream: false } ] }
  - { name: cut, targets: [ { upstream: b, model: "cut-after:2" } ] }
  # an upstream that serves the Responses API itself: requests go to it as sent
  - { name: native, targets: [ { upstream: n, model: "503" }, { upstream: n, model: "healthy#n" } ] }
  - { name: native-state, targets: [ { upstream: b, model: healthy }, { upstream: n, model: "echo" } ] }
  - { name: native-pings, targets: [ { upstream: n, model: pings-only }, { upstream: b, model: healthy } ] }
  - { name: native-cut, targets: [ { upstream: n, model: "cut-after:2" } ] }
  - { name: native-tools, targets: [ { upstream: n, model: tools } ] }
`, sim);
  client = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'k', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const HELLO = 'Hello from the keel simulator.';
const classes = (r) => attemptsOf(r).map((a) => a.class);
const weather = { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city', 'unit'] };
const time = { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] };

// the events of an SSE text: [name, data]
function events(text) {
  return text.split('\n\n').filter((f) => f.trim() !== '').map((f) => {
    const name = /^event: (.*)$/m.exec(f)?.[1] ?? null;
    const data = f.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    return [name, data];
  });
}

describe('the openai SDK', () => {
  test('responses.create: a Response with output_text, through a failing primary', async () => {
    const { data, response } = await client.responses.create({ model: 'desk', input: 'hi' }).withResponse();
    assert.equal(data.object, 'response');
    assert.equal(data.status, 'completed');
    assert.equal(data.output_text, HELLO);
    assert.ok(data.usage.input_tokens > 0 && data.usage.output_tokens > 0);
    assert.deepEqual(classes({ headers: response.headers }), ['server_error', 'ok']);
  });

  test('responses.stream: the typed events, finalResponse()', async () => {
    const s = client.responses.stream({ model: 'desk', input: 'hi' });
    let text = '';
    s.on('response.output_text.delta', (e) => { text += e.delta; });
    const r = await s.finalResponse();
    assert.equal(text, HELLO);
    assert.equal(r.status, 'completed');
    assert.deepEqual(r.output.map((o) => [o.type, o.content?.[0]?.text]), [['message', HELLO]]);
    const raw = await post(keel, { model: 'desk', input: 'hi', stream: true }, { path: '/v1/responses' });
    const names = events(raw.text).map(([n]) => n);
    assert.equal(names[0], 'response.created');
    assert.equal(names.at(-1), 'response.completed');
    const seq = events(raw.text).map(([, d]) => JSON.parse(d).sequence_number);
    assert.deepEqual(seq, seq.map((_, i) => i));
  });

  test('function calls and their outputs, round trip', async () => {
    const tools = [{ type: 'function', name: 'get_weather', parameters: weather, strict: true },
      { type: 'function', name: 'get_time', parameters: time, strict: true }];
    const r = await client.responses.create({ model: 'tools', input: 'weather?', tools });
    const calls = r.output.filter((o) => o.type === 'function_call');
    assert.deepEqual(calls.map((c) => [c.call_id, c.name, JSON.parse(c.arguments)]), [
      ['call_sim_1', 'get_weather', { city: 'Paris', unit: 'c' }], ['call_sim_2', 'get_time', { tz: 'Europe/Paris' }]]);
    // the outputs go back as the docs show: the output items, then function_call_output items
    const back = await client.responses.create({ model: 'echo', tools, input: [
      { role: 'user', content: 'weather?' }, ...r.output,
      { type: 'function_call_output', call_id: 'call_sim_1', output: '18C' },
      { type: 'function_call_output', call_id: 'call_sim_2', output: '14:00' }] });
    const sent = JSON.parse(back.output_text);
    assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'tool']);
    assert.deepEqual(sent.messages[1].tool_calls.map((t) => t.id), ['call_sim_1', 'call_sim_2']);
    assert.deepEqual(sent.tools.map((t) => t.function.name), ['get_weather', 'get_time']);
  });

  test('what needs server state is a clear 400', async () => {
    await assert.rejects(client.responses.create({ model: 'desk', input: 'hi', previous_response_id: 'resp_1' }), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.code, 'untranslatable_request');
      assert.match(e.message, /previous_response_id needs server-side state/);
      return true;
    });
  });

  test('a stream cut after content ends with an error event, never response.completed', async () => {
    const raw = await post(keel, { model: 'cut', input: 'hi', stream: true }, { path: '/v1/responses' });
    const ev = events(raw.text);
    assert.equal(ev.at(-1)[0], 'error');
    const e = JSON.parse(ev.at(-1)[1]);
    assert.equal(e.type, 'error');
    assert.equal(e.code, 'reset');
    assert.equal(e.sequence_number, ev.length - 1);
    assert.ok(!ev.some(([n]) => n === 'response.completed'));
  });

  test('an Anthropic target behind the Responses API', async () => {
    const r = await client.responses.create({ model: 'claude', input: 'hi' });
    assert.equal(r.output_text, HELLO);
    const s = await client.responses.stream({ model: 'claude-tools', input: 'weather?' }).finalResponse();
    assert.deepEqual(s.output.filter((o) => o.type === 'function_call').map((c) => [c.call_id, c.name]), [
      ['toolu_sim_1', 'get_weather'], ['toolu_sim_2', 'get_time']]);
  });
});

describe('the Vercel AI SDK 6, default provider (Responses)', () => {
  const openai = () => createOpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'k' });

  test('generateText and streamText', async () => {
    const r = await generateText({ model: openai()('desk'), prompt: 'hi', maxRetries: 0 });
    assert.equal(r.text, HELLO);
    assert.equal(r.finishReason, 'stop');
    assert.ok(r.usage.inputTokens > 0);
    const s = streamText({ model: openai()('desk'), prompt: 'hi', maxRetries: 0 });
    let text = '';
    for await (const t of s.textStream) text += t;
    assert.equal(text, HELLO);
  });

  test('tool calls, stream and not', async () => {
    const tools = { get_weather: tool({ inputSchema: jsonSchema(weather) }), get_time: tool({ inputSchema: jsonSchema(time) }) };
    const r = await generateText({ model: openai()('tools'), prompt: 'weather?', tools, maxRetries: 0 });
    assert.equal(r.finishReason, 'tool-calls');
    assert.deepEqual(r.toolCalls.map((c) => [c.toolCallId, c.toolName, c.input]), [
      ['call_sim_1', 'get_weather', { city: 'Paris', unit: 'c' }], ['call_sim_2', 'get_time', { tz: 'Europe/Paris' }]]);
    const s = streamText({ model: openai()('tools'), prompt: 'weather?', tools, maxRetries: 0 });
    assert.deepEqual((await s.toolCalls).map((c) => c.toolName), ['get_weather', 'get_time']);
  });

  test('structured output (text.format json_schema), the primary hanging', async () => {
    const t0 = performance.now();
    const r = await generateObject({ model: openai()('json'), schema: jsonSchema(weather), prompt: 'weather?', maxRetries: 0 });
    assert.deepEqual(r.object, { city: 'Paris', unit: 'c' });
    assert.ok(performance.now() - t0 < 5000, 'first_byte, not total');
  });

  test('reasoning arrives as reasoning', async () => {
    const r = await generateText({ model: openai()('thinker'), prompt: 'hi', maxRetries: 0 });
    assert.equal(r.reasoningText, 'Thinking it over.');
    assert.equal(r.text, HELLO);
  });
});

describe('LangChain, useResponsesApi', () => {
  const chat = (model) => new ChatOpenAI({ model, apiKey: 'k', useResponsesApi: true, maxRetries: 0,
    configuration: { baseURL: `${keel.url}/v1` } });

  test('invoke and stream', async () => {
    const m = await chat('desk').invoke('hi');
    assert.equal(m.content.map ? m.content.map((c) => c.text ?? '').join('') : m.content, HELLO);
    let text = '';
    for await (const c of await chat('desk').stream('hi')) text += typeof c.content === 'string' ? c.content : c.content.map((p) => p.text ?? '').join('');
    assert.equal(text, HELLO);
  });

  test('tool calls', async () => {
    const m = await chat('tools').bindTools([
      { type: 'function', function: { name: 'get_weather', parameters: weather } },
      { type: 'function', function: { name: 'get_time', parameters: time } }]).invoke('weather?');
    assert.deepEqual(m.tool_calls.map((c) => [c.name, c.args]), [['get_weather', { city: 'Paris', unit: 'c' }], ['get_time', { tz: 'Europe/Paris' }]]);
  });

  test('withStructuredOutput (its json_schema method, with a zod schema)', async () => {
    const o = await chat('json').withStructuredOutput(z.object({ city: z.string(), unit: z.string() }), { name: 'weather' })
      .invoke('weather?');
    assert.deepEqual(o, { city: 'Paris', unit: 'c' });
  });
});

describe('an upstream that serves the Responses API itself (responses: true)', () => {
  test('the request goes as sent, the answer comes back as the target wrote it, through a failover', async () => {
    const { data, response } = await client.responses.create({ model: 'native', input: 'hi' }).withResponse();
    assert.equal(data.output_text, HELLO);
    assert.equal(data.id, 'resp_sim');
    assert.deepEqual(classes({ headers: response.headers }), ['server_error', 'ok']);
    const s = client.responses.stream({ model: 'native', input: 'hi' });
    let text = '';
    s.on('response.output_text.delta', (e) => { text += e.delta; });
    const f = await s.finalResponse();
    assert.equal(text, HELLO);
    assert.equal(f.id, 'resp_sim');
  });

  test('server state goes to the target that has it: previous_response_id skips the chat target', async () => {
    const r = await post(keel, { model: 'native-state', input: 'hi', previous_response_id: 'resp_0', store: true }, { path: '/v1/responses' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(classes(r), ['untranslatable', 'ok']);
    const sent = JSON.parse(JSON.parse(r.text).output[0].content[0].text);
    assert.equal(sent.previous_response_id, 'resp_0');
    assert.equal(sent.model, 'echo');
  });

  test('a native stream kept alive with no content fails over after first_byte, to a chat target', async () => {
    const t0 = performance.now();
    const r = await post(keel, { model: 'native-pings', input: 'hi', stream: true }, { path: '/v1/responses' });
    assert.deepEqual(classes(r), ['first_byte_timeout', 'ok']);
    assert.ok(performance.now() - t0 < 3000);
    assert.equal(events(r.text).at(-1)[0], 'response.completed');
  });

  test('a native stream cut after content: an error event, never response.completed', async () => {
    const r = await post(keel, { model: 'native-cut', input: 'hi', stream: true }, { path: '/v1/responses' });
    const ev = events(r.text);
    assert.equal(ev.at(-1)[0], 'error');
    assert.ok(!ev.some(([n]) => n === 'response.completed'));
  });

  test('tool calls through the AI SDK, stream and not', async () => {
    const openai = createOpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'k' });
    const tools = { get_weather: tool({ inputSchema: jsonSchema(weather) }), get_time: tool({ inputSchema: jsonSchema(time) }) };
    const r = await generateText({ model: openai('native-tools'), prompt: 'weather?', tools, maxRetries: 0 });
    assert.deepEqual(r.toolCalls.map((c) => [c.toolCallId, c.toolName]), [['call_sim_1', 'get_weather'], ['call_sim_2', 'get_time']]);
    const s = streamText({ model: openai('native-tools'), prompt: 'weather?', tools, maxRetries: 0 });
    assert.deepEqual((await s.toolCalls).map((c) => c.input), [{ city: 'Paris', unit: 'c' }, { tz: 'Europe/Paris' }]);
  });
});
