// pipeline.test.mjs - answers read as events: a client that did not ask for a stream gets one
// JSON answer whatever the upstream sent, assembled byte-compatible with the upstream's own
// non-stream answer; a stream that fails before its end fails over unseen; stream_upstream makes
// first_byte and stall watch a non-stream request's generation. Real keel, keel sim, and the
// official openai client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { attemptsOf, chat, post, simStats, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;
let client;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults: { timeouts: { first_byte: 1500ms, stall: 600ms, total: 20s } }
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
models:
  # upstreams that stream whatever they were asked (keel asks them plainly: stream_upstream off)
  - { name: forced, targets: [ { upstream: a, model: "healthy+sse", stream_upstream: false } ] }
  - { name: forced-tools, targets: [ { upstream: a, model: "tools+sse", stream_upstream: false } ] }
  - { name: err-mid, targets: [ { upstream: a, model: "error-after-content+sse", stream_upstream: false }, { upstream: b, model: healthy } ] }
  - { name: reset-mid, targets: [ { upstream: a, model: "reset-mid-stream+sse", stream_upstream: false }, { upstream: b, model: healthy } ] }
  - { name: beats, targets: [ { upstream: a, model: "heartbeat-only+sse", stream_upstream: false }, { upstream: b, model: healthy } ] }
  - { name: stalls, targets: [ { upstream: a, model: "stall-after:2+sse", stream_upstream: false }, { upstream: b, model: healthy } ] }
  - { name: empty, targets: [ { upstream: a, model: "empty-choices+sse", stream_upstream: false }, { upstream: b, model: healthy } ] }
  - { name: garbled, targets: [ { upstream: a, model: malformed-chunk }, { upstream: b, model: healthy } ] }
  - { name: cut, targets: [ { upstream: a, model: "cut-after:2" }, { upstream: b, model: healthy } ] }
  - { name: no-done, targets: [ { upstream: a, model: no-done } ] }
  # stream_upstream (the default): keel itself asks for a stream for a non-stream client
  - { name: tools, targets: [ { upstream: a, model: tools } ] }
  - { name: rich, targets: [ { upstream: a, model: rich } ] }
  - { name: refusal, targets: [ { upstream: a, model: refusal } ] }
  - { name: unicode, targets: [ { upstream: a, model: unicode } ] }
  - { name: healthy, targets: [ { upstream: a, model: healthy } ] }
  - { name: err-mid-default, targets: [ { upstream: a, model: error-after-content }, { upstream: b, model: healthy } ] }
  - { name: stall-default, targets: [ { upstream: a, model: "stall-after:2" }, { upstream: b, model: healthy } ] }
  # a long, slow but healthy generation: 6 x 400 ms of tokens, longer than first_byte
  - { name: slow-streamed, targets: [ { upstream: a, model: "slow-tokens:400" } ] }
  - { name: slow-plain, targets: [ { upstream: a, model: "slow-tokens:400", stream_upstream: false } ] }
`, sim);
  client = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'sk-client-key', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

// the sim's own non-stream answer for a body, asked directly
async function direct(body) {
  const r = await fetch(`${sim.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(r.headers.get('content-type'), 'application/json');
  return r.text();
}

function classes(r) {
  return attemptsOf(r).map((a) => a.class);
}

describe('a non-stream client gets JSON, always', () => {
  test('from an upstream that streams anyway', async () => {
    const r = await post(keel, chat('forced', { stream: false }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('content-type'), 'application/json');
    const j = JSON.parse(r.text);
    assert.equal(j.object, 'chat.completion');
    assert.equal(j.choices[0].message.content, 'Hello from the keel simulator.');
    assert.equal(j.choices[0].finish_reason, 'stop');
  });

  for (const [alias, model, extra] of [['tools', 'tools', {}], ['refusal', 'refusal', {}], ['unicode', 'unicode', {}],
    ['healthy', 'healthy', {}], ['rich', 'rich', { n: 3, logprobs: true }], ['rich', 'rich', {}]]) {
    test(`assembled from the stream keel asked for: byte for byte the upstream's own answer (${model} ${JSON.stringify(extra)})`, async () => {
      const want = await direct(chat(model, extra));
      const writes = (await simStats(sim)).writes[model] ?? 0;
      const r = await post(keel, chat(alias, extra));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.equal(r.text, want);
      // keel asked for a stream: the sim wrote chunks (its direct answer above was one body)
      assert.ok((await simStats(sim)).writes[model] > writes + 3, 'the upstream streamed');
    });
  }

  test('the official SDK reads it: create, and parse() with strict tools', async () => {
    let c = await client.chat.completions.create({ model: 'forced', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(c.choices[0].message.content, 'Hello from the keel simulator.');
    c = await client.chat.completions.create({ model: 'healthy', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(c.choices[0].message.content, 'Hello from the keel simulator.');
    assert.equal(c.usage.total_tokens, 9); // keel asked for the usage the client did not know to ask for
    const tools = [
      { type: 'function', function: { name: 'get_weather', strict: true, parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city', 'unit'], additionalProperties: false } } },
      { type: 'function', function: { name: 'get_time', strict: true, parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'], additionalProperties: false } } },
    ];
    for (const model of ['forced-tools', 'tools']) {
      const p = await client.chat.completions.parse({ model, tools, messages: [{ role: 'user', content: 'weather?' }] });
      const calls = p.choices[0].message.tool_calls;
      assert.equal(p.choices[0].finish_reason, 'tool_calls');
      assert.deepEqual(calls.map((t) => [t.id, t.function.name, t.function.parsed_arguments]), [
        ['call_sim_1', 'get_weather', { city: 'Paris', unit: 'c' }],
        ['call_sim_2', 'get_time', { tz: 'Europe/Paris' }],
      ]);
    }
  });
});

describe('a stream that fails before its end fails over, unseen by a non-stream client', () => {
  for (const [alias, cls] of [['err-mid', 'stream_error'], ['reset-mid', 'reset'], ['beats', 'first_byte_timeout'],
    ['stalls', 'stall_timeout'], ['empty', 'empty_response'], ['err-mid-default', 'stream_error'],
    ['stall-default', 'stall_timeout'], ['garbled', 'empty_response'], ['cut', 'reset']]) {
    test(`${alias}: ${cls}, then the backup's answer`, async () => {
      const t0 = performance.now();
      const r = await post(keel, chat(alias));
      const ms = performance.now() - t0;
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.deepEqual(classes(r), [cls, 'ok']);
      assert.equal(JSON.parse(r.text).choices[0].message.content, 'Hello from the keel simulator.');
      assert.ok(ms < 5000, `${ms} ms: deadlines, not total (20 s)`);
    });
  }

  test('a stream that ends with its finish reason but without [DONE] is whole', async () => {
    const r = await post(keel, chat('no-done'));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(classes(r), ['ok']);
    assert.equal(JSON.parse(r.text).choices[0].finish_reason, 'stop');
  });

  test('through the SDK: the answer of the backup, as if nothing had happened', async () => {
    const c = await client.chat.completions.create({ model: 'err-mid', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(c.choices[0].message.content, 'Hello from the keel simulator.');
  });
});

describe('stream_upstream: first_byte is the first token, not the whole generation', () => {
  test('a slow, healthy generation longer than first_byte is answered when streamed', async () => {
    const r = await post(keel, chat('slow-streamed'));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(classes(r), ['ok']);
    assert.equal(JSON.parse(r.text).choices[0].message.content, 'Hello from the keel simulator.');
  });

  test('and times out on first_byte when asked plainly (stream_upstream: false)', async () => {
    const r = await post(keel, chat('slow-plain'));
    assert.equal(r.status, 502, r.text);
    assert.deepEqual(classes(r), ['first_byte_timeout']);
  });
});
