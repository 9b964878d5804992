// anthropic-clients.test.mjs - Anthropic Messages clients (POST /v1/messages) served by keel:
// by an Anthropic target (bytes through, only model replaced; a non-stream answer rebuilt from
// the stream's frames as sent), by an OpenAI target (the request translated, the answer
// re-encoded in Anthropic's events), and by a chain that crosses them (seed 001 from the Claude
// side). Errors in Anthropic's envelope with keel's attempts. Real keel, keel sim on both APIs,
// and the official @anthropic-ai/sdk.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import fs from 'node:fs';
import path from 'node:path';
import { attemptsOf, eventually, post, startKeel, startSim, stop, tmpdir } from './lib.mjs';

let sim;
let keel;
let client;
const auditFile = path.join(tmpdir(), 'audit.jsonl');

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${auditFile}
defaults: { timeouts: { first_byte: 1s, stall: 600ms, total: 20s } }
upstreams:
  - { name: claude, kind: anthropic, base_url: "{SIM}", api_key: sk-ant-test-key }
  - { name: oai, base_url: "{SIM}", api_key: sk-oai-test-key }
models:
  - { name: c, targets: [ { upstream: claude, model: healthy } ] }
  - { name: c-plain, targets: [ { upstream: claude, model: healthy, stream_upstream: false } ] }
  - { name: c-thinking, targets: [ { upstream: claude, model: thinking } ] }
  - { name: c-tools, targets: [ { upstream: claude, model: tools } ] }
  - { name: c-echo, targets: [ { upstream: claude, model: echo, stream_upstream: false } ] }
  - { name: o, targets: [ { upstream: oai, model: healthy } ] }
  - { name: o-plain, targets: [ { upstream: oai, model: healthy, stream_upstream: false } ] }
  - { name: o-tools, targets: [ { upstream: oai, model: "tools:seq" } ] }
  - { name: o-tools-interleaved, targets: [ { upstream: oai, model: tools } ] }
  - { name: o-rich, targets: [ { upstream: oai, model: rich } ] }
  - { name: o-echo, targets: [ { upstream: oai, model: echo, stream_upstream: false } ] }
  - { name: o-cut, targets: [ { upstream: oai, model: "cut-after:2" } ] }
  - { name: o-bad, targets: [ { upstream: oai, model: "400" } ] }
  # seed 001 from the Claude side: the Anthropic primary keeps its stream alive with pings only
  - { name: seed001, targets: [ { upstream: claude, model: pings-only }, { upstream: oai, model: healthy } ] }
  - { name: down, targets: [ { upstream: claude, model: "529" }, { upstream: oai, model: "503" } ] }
  - { name: err-mid, targets: [ { upstream: claude, model: error-after-content }, { upstream: oai, model: healthy } ] }
  - { name: cut, targets: [ { upstream: claude, model: "cut-after:2" }, { upstream: oai, model: healthy } ] }
`, sim);
  client = new Anthropic({ baseURL: keel.url, apiKey: 'sk-client-key', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const HELLO = 'Hello from the keel simulator.';
const hi = { max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };
const classes = (r) => attemptsOf(r).map((a) => a.class);
const messages = (model, extra = {}) => ({ model, ...hi, ...extra });

// the named events of an SSE text, in order: [name, data]
function events(text) {
  return text.split('\n\n').filter((f) => f.trim() !== '').map((f) => {
    const name = /^event: (.*)$/m.exec(f)?.[1] ?? null;
    const data = f.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    return [name, data];
  });
}

const ORDER = /^message_start (content_block_start (content_block_delta )*content_block_stop )*message_delta message_stop $/;

describe('Anthropic clients, Anthropic targets: the same protocol', () => {
  test('messages.create: one Message, whether keel streamed it from the target or not', async () => {
    for (const model of ['c', 'c-plain']) {
      const { data, response } = await client.messages.create(messages(model)).withResponse();
      assert.equal(response.headers.get('content-type'), 'application/json', model);
      assert.equal(data.type, 'message');
      assert.equal(data.role, 'assistant');
      assert.deepEqual(data.content, [{ type: 'text', text: HELLO }]);
      assert.equal(data.stop_reason, 'end_turn');
      assert.equal(data.usage.output_tokens, 4);
      assert.equal(response.headers.get('x-keel-upstream'), 'claude');
    }
  });

  test('messages.stream: the target\'s events as sent, named, in order; finalMessage()', async () => {
    const s = client.messages.stream(messages('c'));
    let text = '';
    s.on('text', (t) => { text += t; });
    const m = await s.finalMessage();
    assert.equal(text, HELLO);
    assert.deepEqual(m.content.map((b) => [b.type, b.text]), [['text', HELLO]]);
    assert.equal(m.stop_reason, 'end_turn');
    const r = await post(keel, messages('c', { stream: true }), { path: '/v1/messages' });
    const names = events(r.text).map(([n]) => n).filter((n) => n !== 'ping');
    assert.match(names.join(' ') + ' ', ORDER);
  });

  test('thinking keeps its signature, non-stream too (a multi-turn tool loop needs it back)', async () => {
    const m = await client.messages.create(messages('c-thinking'));
    assert.equal(m.content[0].type, 'thinking');
    assert.equal(m.content[0].signature, 'sig_sim');
    assert.equal(m.content[1].text, HELLO);
    const f = await client.messages.stream(messages('c-thinking')).finalMessage();
    assert.deepEqual(f.content, m.content);
  });

  test('tool use round trip: tool_use blocks with their input; the request goes byte for byte', async () => {
    const tools = [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
    const m = await client.messages.create(messages('c-tools', { tools }));
    assert.equal(m.stop_reason, 'tool_use');
    assert.deepEqual(m.content.filter((b) => b.type === 'tool_use').map((b) => [b.id, b.name, b.input]), [
      ['toolu_sim_1', 'get_weather', { city: 'Paris', unit: 'c' }], ['toolu_sim_2', 'get_time', { tz: 'Europe/Paris' }]]);
    const body = JSON.stringify({ model: 'c-echo', max_tokens: 7, temperature: 0.70, messages: [
      { role: 'user', content: 'weather?' }, { role: 'assistant', content: m.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_sim_1', content: '18C' }] }] });
    const r = await fetch(`${keel.url}/v1/messages?beta=true`, { method: 'POST', body, headers: {
      'content-type': 'application/json', 'x-api-key': 'sk-client-secret', 'anthropic-beta': 'interleaved-thinking-2025-05-14' } });
    const echoed = (await r.json()).content[0].text;
    assert.equal(echoed, body.replace('"model":"c-echo"', '"model":"echo"'), 'only model replaced');
    const stats = await (await fetch(`${sim.url}/sim/stats`)).json();
    assert.equal(stats.x_api_key.echo, 'sk-ant-test-key', 'the target\'s key, never the client\'s');
    assert.doesNotMatch(JSON.stringify(stats), /sk-client-secret/);
    // the features the client opted into go with its request to an Anthropic target
    assert.equal(stats.anthropic_beta.echo, 'interleaved-thinking-2025-05-14');
    await client.messages.create(messages('o-echo'), { headers: { 'anthropic-beta': 'x-feature' } });
    assert.equal((await (await fetch(`${sim.url}/sim/stats`)).json()).anthropic_beta.echo, '', 'never to an OpenAI one');
  });

  test('a committed stream that fails: Anthropic\'s error event, which the SDK throws', async () => {
    const r = await post(keel, messages('err-mid', { stream: true }), { path: '/v1/messages' });
    const ev = events(r.text);
    assert.equal(ev.at(-1)[0], 'error');
    assert.equal(JSON.parse(ev.at(-1)[1]).type, 'error');
    assert.ok(!ev.some(([n]) => n === 'message_stop'));
    await assert.rejects(client.messages.stream(messages('err-mid')).finalMessage(), /overloaded|error/i);
  });

  test('a Messages stream that ends before message_stop: failed over unseen, or cut with an error event', async () => {
    let r = await post(keel, messages('cut'), { path: '/v1/messages' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(classes(r), ['reset', 'ok']);
    assert.equal(JSON.parse(r.text).content[0].text, HELLO);
    r = await post(keel, messages('cut', { stream: true }), { path: '/v1/messages' });
    const ev = events(r.text);
    assert.equal(ev.at(-1)[0], 'error');
    assert.equal(JSON.parse(ev.at(-1)[1]).error.code, 'reset');
  });
});

describe('Anthropic clients, OpenAI targets: translated both ways', () => {
  test('messages.create and messages.stream with finalMessage()', async () => {
    for (const model of ['o', 'o-plain']) {
      const m = await client.messages.create(messages(model));
      assert.equal(m.type, 'message');
      assert.deepEqual(m.content, [{ type: 'text', text: HELLO }], model);
      assert.equal(m.stop_reason, 'end_turn');
      assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, JSON.stringify(m.usage));
    }
    const s = client.messages.stream(messages('o'));
    let text = '';
    s.on('text', (t) => { text += t; });
    const f = await s.finalMessage();
    assert.equal(text, HELLO);
    assert.equal(f.content[0].text, HELLO);
    assert.equal(f.stop_reason, 'end_turn');
    assert.ok(f.usage.output_tokens > 0);
    const r = await post(keel, messages('o', { stream: true }), { path: '/v1/messages' });
    assert.match(events(r.text).map(([n]) => n).join(' ') + ' ', ORDER);
  });

  test('the request as the OpenAI target gets it', async () => {
    const m = await client.messages.create({
      model: 'o-echo', max_tokens: 321, system: 'be brief', temperature: 0.5, stop_sequences: ['END'],
      messages: [{ role: 'user', content: 'hi' }],
    });
    const sent = JSON.parse(m.content[0].text);
    assert.equal(sent.model, 'echo');
    assert.deepEqual(sent.messages, [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]);
    assert.equal(sent.max_completion_tokens, 321);
    assert.deepEqual(sent.stop, ['END']);
    assert.equal(sent.temperature, 0.5);
  });

  test('tool use round trip: tool_calls become tool_use blocks, tool_result blocks tool messages', async () => {
    const tools = [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
    for (const stream of [false, true]) {
      const m = stream ? await client.messages.stream(messages('o-tools', { tools })).finalMessage()
        : await client.messages.create(messages('o-tools', { tools }));
      assert.equal(m.stop_reason, 'tool_use', `stream ${stream}`);
      assert.deepEqual(m.content.map((b) => [b.type, b.id, b.name, b.input]), [
        ['tool_use', 'call_sim_1', 'get_weather', { city: 'Paris', unit: 'c' }],
        ['tool_use', 'call_sim_2', 'get_time', { tz: 'Europe/Paris' }]], `stream ${stream}`);
    }
    const m = await client.messages.create(messages('o-tools', { tools }));
    const back = await client.messages.create({ model: 'o-echo', max_tokens: 50, tools, messages: [
      { role: 'user', content: 'weather?' }, { role: 'assistant', content: m.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_sim_1', content: '18C' },
        { type: 'tool_result', tool_use_id: 'call_sim_2', content: [{ type: 'text', text: '14:00' }] },
        { type: 'text', text: 'and now?' }] }] });
    const sent = JSON.parse(back.content[0].text);
    assert.deepEqual(sent.messages.map((x) => x.role), ['user', 'assistant', 'tool', 'tool', 'user']);
    assert.deepEqual(sent.messages[1].tool_calls.map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)]), [
      ['call_sim_1', 'get_weather', { city: 'Paris', unit: 'c' }], ['call_sim_2', 'get_time', { tz: 'Europe/Paris' }]]);
    assert.deepEqual(sent.messages.slice(2, 4).map((x) => [x.tool_call_id, x.content]), [['call_sim_1', '18C'], ['call_sim_2', '14:00']]);
    assert.deepEqual(sent.tools, [{ type: 'function', function: { name: 'get_weather', parameters: tools[0].input_schema } }]);
  });

  test('reasoning becomes a thinking block', async () => {
    const m = await client.messages.create(messages('o-rich'));
    assert.deepEqual(m.content.map((b) => b.type), ['thinking', 'text']);
    assert.equal(m.content[0].thinking, 'Thinking it over.');
    const f = await client.messages.stream(messages('o-rich')).finalMessage();
    assert.deepEqual(f.content.map((b) => [b.type, b.thinking ?? b.text]), m.content.map((b) => [b.type, b.thinking ?? b.text]));
  });

  test('parallel tool calls whose fragments interleave: one answer whole; a stream cannot reopen a block', async () => {
    const m = await client.messages.create(messages('o-tools-interleaved'));
    assert.deepEqual(m.content.map((b) => b.input), [{ city: 'Paris', unit: 'c' }, { tz: 'Europe/Paris' }]);
    const r = await post(keel, messages('o-tools-interleaved', { stream: true }), { path: '/v1/messages' });
    assert.equal(events(r.text).at(-1)[0], 'error', 'never a stream that looks whole');
  });

  test('a translated stream cut after content: an error event, never message_stop', async () => {
    const r = await post(keel, messages('o-cut', { stream: true }), { path: '/v1/messages' });
    const ev = events(r.text);
    assert.equal(ev.at(-1)[0], 'error');
    assert.ok(!ev.some(([n]) => n === 'message_stop'));
  });

  test('the target\'s own 400 comes back in Anthropic\'s envelope', async () => {
    await assert.rejects(client.messages.create(messages('o-bad')), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'invalid_request_error');
      return true;
    });
  });
});

describe('a chain that crosses protocols, and keel\'s own errors', () => {
  test('seed 001: the pings-only Anthropic primary fails over after first_byte', async () => {
    for (const stream of [false, true]) {
      const t0 = performance.now();
      const r = await post(keel, messages('seed001', { stream }), { path: '/v1/messages' });
      const ms = performance.now() - t0;
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(classes(r), ['first_byte_timeout', 'ok']);
      assert.ok(ms >= 950 && ms < 3000, `${ms} ms: first_byte (1 s), not total`);
      const text = stream ? events(r.text).filter(([n]) => n === 'content_block_delta').map(([, d]) => JSON.parse(d).delta.text).join('')
        : JSON.parse(r.text).content[0].text;
      assert.equal(text, HELLO);
    }
    const m = await client.messages.stream(messages('seed001')).finalMessage();
    assert.equal(m.content[0].text, HELLO);
  });

  test('every target failed: a 502 in Anthropic\'s envelope with keel\'s attempts', async () => {
    await assert.rejects(client.messages.create(messages('down')), (e) => {
      assert.equal(e.status, 502);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'api_error');
      assert.equal(e.error.error.code, 'all_targets_failed');
      assert.deepEqual(e.error.error.attempts.map((a) => a.class), ['overloaded', 'server_error']);
      return true;
    });
  });

  test('bad requests: 400s in Anthropic\'s envelope', async () => {
    await assert.rejects(client.messages.create(messages('no-such-model')), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.error.error.type, 'invalid_request_error');
      assert.equal(e.error.error.code, 'model_not_found');
      return true;
    });
    const r = await post(keel, '{"model":', { path: '/v1/messages' });
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.text).type, 'error');
  });

  test('the audit says which protocol each client spoke, and each target\'s kind', async () => {
    // seed 001's Claude requests above: their primary failed, the OpenAI fallback answered
    await post(keel, { model: 'o', messages: [{ role: 'user', content: 'hi' }] });
    const lines = () => (fs.existsSync(auditFile) ? fs.readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    assert.ok(await eventually(() => lines().some((x) => x.protocol === 'openai-chat'), { ms: 5000 }));
    const rec = lines().find((x) => x.model === 'seed001' && x.attempts[0].class === 'first_byte_timeout');
    assert.equal(rec.protocol, 'anthropic-messages');
    assert.deepEqual(rec.attempts.map((a) => [a.kind, a.class]), [['anthropic', 'first_byte_timeout'], ['openai', 'ok']]);
    assert.ok(rec.usage.completion_tokens > 0);
    const rejected = lines().find((x) => x.error === 'model_not_found');
    assert.equal(rejected.protocol, 'anthropic-messages');
  });

  test('models.list through the Anthropic SDK: the aliases', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push([m.id, m.type]);
    assert.ok(ids.length > 10);
    assert.deepEqual(ids[0], ['c', 'model']);
    assert.ok(ids.some(([id]) => id === 'seed001'));
    const m = await client.models.retrieve('seed001');
    assert.deepEqual([m.id, m.type, m.display_name], ['seed001', 'model', 'seed001']);
    await assert.rejects(client.models.retrieve('nope'), (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.error.error.type, 'not_found_error');
      return true;
    });
  });

  test('count_tokens: 501, and the SDK is told not to retry it', async () => {
    const r = await fetch(`${keel.url}/v1/messages/count_tokens`, { method: 'POST', body: JSON.stringify(messages('c')), headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 501);
    assert.equal(r.headers.get('x-should-retry'), 'false');
    assert.equal((await r.json()).error.code, 'not_implemented');
    const retrying = new Anthropic({ baseURL: keel.url, apiKey: 'k', maxRetries: 2 });
    const t0 = performance.now();
    await assert.rejects(retrying.messages.countTokens({ model: 'c', messages: hi.messages }), (e) => e.status === 501);
    assert.ok(performance.now() - t0 < 400, 'no retry backoff');
  });
});
