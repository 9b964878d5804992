// anthropic.test.mjs - upstreams of kind: anthropic behind keel's OpenAI surface: requests
// translated, answers (stream or not) decoded and re-encoded, errors classified; a mixed chain
// that is seed 001's own (an Anthropic primary kept alive by pings, an OpenAI fallback). Real
// keel, keel sim on /v1/messages, and the official openai client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import fs from 'node:fs';
import path from 'node:path';
import { attemptsOf, chat, eventually, post, sseData, startKeel, startSim, stop, tmpdir } from './lib.mjs';

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
  - { name: claude, targets: [ { upstream: claude, model: healthy } ] }
  - { name: claude-plain, targets: [ { upstream: claude, model: healthy, stream_upstream: false } ] }
  - { name: claude-tools, targets: [ { upstream: claude, model: tools } ] }
  - { name: claude-thinking, targets: [ { upstream: claude, model: thinking } ] }
  - { name: claude-echo, targets: [ { upstream: claude, model: echo, stream_upstream: false, max_tokens: 1234 } ] }
  # seed 001: the primary answers, then keeps the stream alive with pings and no tokens
  - { name: seed001, targets: [ { upstream: claude, model: pings-only }, { upstream: oai, model: healthy } ] }
  - { name: overloaded, targets: [ { upstream: claude, model: "529" }, { upstream: oai, model: healthy } ] }
  - { name: limited, targets: [ { upstream: claude, model: "429" }, { upstream: oai, model: healthy } ] }
  - { name: too-long, targets: [ { upstream: claude, model: prompt-too-long } ] }
  - { name: denied, targets: [ { upstream: claude, model: "401" }, { upstream: oai, model: healthy } ] }
  - { name: missing, targets: [ { upstream: claude, model: "404" }, { upstream: oai, model: healthy } ] }
  - { name: err-mid, targets: [ { upstream: claude, model: error-after-content }, { upstream: oai, model: healthy } ] }
  - { name: err-early, targets: [ { upstream: claude, model: error-before-content }, { upstream: oai, model: healthy } ] }
  - { name: back, targets: [ { upstream: oai, model: "503" }, { upstream: claude, model: healthy } ] }
  - { name: cut, targets: [ { upstream: claude, model: "cut-after:2" }, { upstream: oai, model: healthy } ] }
`, sim);
  client = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'sk-client-key', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const HELLO = 'Hello from the keel simulator.';
const classes = (r) => attemptsOf(r).map((a) => a.class);
const msgs = [{ role: 'user', content: 'hi' }];

describe('OpenAI clients, Anthropic targets', () => {
  test('non-stream through the SDK: one chat.completion, assembled from the Messages stream', async () => {
    for (const model of ['claude', 'claude-plain']) {
      const { data, response } = await client.chat.completions.create({ model, messages: msgs }).withResponse();
      assert.equal(response.headers.get('content-type'), 'application/json');
      assert.equal(data.object, 'chat.completion');
      assert.equal(data.choices[0].message.content, HELLO, model);
      assert.equal(data.choices[0].finish_reason, 'stop');
      assert.equal(data.usage.prompt_tokens, 5);
      assert.equal(data.usage.completion_tokens, 4);
      assert.equal(data.usage.total_tokens, 9);
      assert.equal(response.headers.get('x-keel-upstream'), 'claude');
    }
  });

  test('stream through the SDK: chat.completion.chunk frames re-encoded from Anthropic events', async () => {
    const stream = await client.chat.completions.create({
      model: 'claude', stream: true, stream_options: { include_usage: true }, messages: msgs,
    });
    let text = '';
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, HELLO);
    assert.equal(finish, 'stop');
    assert.equal(usage.total_tokens, 9);
    const raw = await post(keel, chat('claude', { stream: true }));
    assert.equal(sseData(raw.text).at(-1), '[DONE]');
  });

  test('tool use round trip: tool_use blocks become tool_calls, parse() reads their arguments', async () => {
    const tools = [
      { type: 'function', function: { name: 'get_weather', strict: true, parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city', 'unit'], additionalProperties: false } } },
      { type: 'function', function: { name: 'get_time', strict: true, parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'], additionalProperties: false } } },
    ];
    const p = await client.chat.completions.parse({ model: 'claude-tools', tools, messages: [{ role: 'user', content: 'weather?' }] });
    assert.equal(p.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual(p.choices[0].message.tool_calls.map((t) => [t.id, t.type, t.function.name, t.function.parsed_arguments]), [
      ['toolu_sim_1', 'function', 'get_weather', { city: 'Paris', unit: 'c' }],
      ['toolu_sim_2', 'function', 'get_time', { tz: 'Europe/Paris' }],
    ]);
    // and back: the assistant's tool_calls and the tool results go to Anthropic as blocks
    const r = await client.chat.completions.create({
      model: 'claude-echo',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: p.choices[0].message.tool_calls.map((t) => ({ id: t.id, type: 'function', function: t.function })) },
        { role: 'tool', tool_call_id: 'toolu_sim_1', content: '18C' },
        { role: 'tool', tool_call_id: 'toolu_sim_2', content: '14:00' },
      ],
    });
    const sent = JSON.parse(r.choices[0].message.content);
    assert.equal(sent.model, 'echo');
    assert.equal(sent.max_tokens, 1234, 'the target\'s max_tokens when the client set none');
    assert.equal(sent.system, 'be brief');
    assert.deepEqual(sent.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    assert.deepEqual(sent.messages[1].content.map((b) => [b.type, b.id, b.input]), [
      ['tool_use', 'toolu_sim_1', { city: 'Paris', unit: 'c' }], ['tool_use', 'toolu_sim_2', { tz: 'Europe/Paris' }]]);
    assert.deepEqual(sent.messages[2].content.map((b) => [b.type, b.tool_use_id]), [
      ['tool_result', 'toolu_sim_1'], ['tool_result', 'toolu_sim_2']]);
  });

  test('thinking becomes reasoning_content', async () => {
    const r = await post(keel, chat('claude-thinking'));
    const m = JSON.parse(r.text).choices[0].message;
    assert.equal(m.reasoning_content, 'Thinking it over.');
    assert.equal(m.content, HELLO);
  });

  test("the target's key goes in x-api-key with anthropic-version; the client's never", async () => {
    await post(keel, chat('claude'), { headers: { authorization: 'Bearer sk-client-secret' } });
    const stats = await (await fetch(`${sim.url}/sim/stats`)).json();
    assert.equal(stats.x_api_key.healthy, 'sk-ant-test-key');
    assert.equal(stats.anthropic_version.healthy, '2023-06-01');
    assert.doesNotMatch(JSON.stringify(stats), /sk-client-secret/);
  });

  test('a request Anthropic cannot carry goes to a target that can; with none, a 400 for the client', async () => {
    const audio = { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }] };
    let r = await post(keel, chat('claude', audio));
    assert.equal(r.status, 400, r.text);
    const e = JSON.parse(r.text).error;
    assert.equal(e.code, 'untranslatable_request');
    assert.match(e.message, /claude/);
    assert.deepEqual(classes(r), ['untranslatable']);
    // the chain's OpenAI target can carry it; nothing is held against the Anthropic one
    r = await post(keel, chat('seed001', audio));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(classes(r), ['untranslatable', 'ok']);
    const m = await (await fetch(`${keel.adminUrl}/metrics`)).text();
    assert.match(m, /keel_attempts_total\{upstream="claude",model="pings-only",class="untranslatable"\} 1/);
  });
});

describe('failures of an Anthropic target fail over as any other', () => {
  // the error events carry overloaded_error, as Anthropic's do: the code names the class; a 429
  // whose Retry-After fits max_wait is waited for once on the same target
  for (const [alias, cls] of [['overloaded', ['overloaded']], ['limited', ['rate_limited', 'rate_limited']],
    ['denied', ['auth']], ['missing', ['not_found']], ['err-early', ['overloaded']], ['err-mid', ['overloaded']]]) {
    test(`${alias}: ${cls.join(', ')}, then the OpenAI target`, async () => {
      for (const stream of [false, true]) {
        if (alias === 'err-mid' && stream) continue; // committed: below
        const r = await post(keel, chat(alias, { stream }));
        assert.equal(r.status, 200, r.text);
        // the second request finds the rate-limited target cooling down (its Retry-After)
        const want = alias === 'limited' && stream ? ['skipped'] : cls;
        assert.deepEqual(classes(r), [...want, 'ok'], `stream ${stream}`);
        const text = stream ? sseData(r.text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d).choices[0]?.delta?.content ?? '').join('')
          : JSON.parse(r.text).choices[0].message.content;
        assert.equal(text, HELLO);
      }
    });
  }

  test('an error event after content, to a stream client: the clean error event, no [DONE]', async () => {
    const r = await post(keel, chat('err-mid', { stream: true }));
    const data = sseData(r.text);
    assert.notEqual(data.at(-1), '[DONE]');
    assert.equal(JSON.parse(data.at(-1)).error.code, 'overloaded');
    assert.deepEqual(classes(r), ['ok']); // the header said ok at the commit; the audit says overloaded
  });

  test('a Messages stream that ends before message_stop: failed over unseen, or cut cleanly once committed', async () => {
    let r = await post(keel, chat('cut'));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(classes(r), ['reset', 'ok']);
    r = await post(keel, chat('cut', { stream: true }));
    const data = sseData(r.text);
    assert.notEqual(data.at(-1), '[DONE]', 'no end written for a stream that had none');
    assert.equal(JSON.parse(data.at(-1)).error.code, 'reset');
  });

  test('prompt is too long: context_length, and the 400 in the OpenAI envelope', async () => {
    const r = await post(keel, chat('too-long'));
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(classes(r), ['context_length']);
    assert.match(JSON.parse(r.text).error.message, /prompt is too long/);
  });

  test('seed 001: an Anthropic stream kept alive by pings fails over after first_byte', async () => {
    for (const stream of [false, true]) {
      const t0 = performance.now();
      const r = await post(keel, chat('seed001', { stream }));
      const ms = performance.now() - t0;
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(classes(r), ['first_byte_timeout', 'ok']);
      assert.ok(ms >= 950 && ms < 3000, `${ms} ms: first_byte (1 s), not total`);
    }
  });

  test('an OpenAI primary failing over to an Anthropic fallback, through the SDK', async () => {
    const c = await client.chat.completions.create({ model: 'back', messages: msgs });
    assert.equal(c.choices[0].message.content, HELLO);
  });

  test('the audit and metrics name each target\'s kind', async () => {
    const m = await (await fetch(`${keel.adminUrl}/metrics`)).text();
    assert.match(m, /keel_upstream_info\{upstream="claude",kind="anthropic"\} 1/);
    assert.match(m, /keel_upstream_info\{upstream="oai",kind="openai"\} 1/);
    const lines = () => (fs.existsSync(auditFile) ? fs.readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    assert.ok(await eventually(() => lines().some((x) => x.model === 'seed001'), { ms: 5000 }));
    const rec = lines().find((x) => x.model === 'seed001' && x.attempts[0].class === 'first_byte_timeout');
    assert.deepEqual(rec.attempts.map((a) => [a.upstream, a.kind, a.class]), [
      ['claude', 'anthropic', 'first_byte_timeout'], ['oai', 'openai', 'ok']]);
  });
});
