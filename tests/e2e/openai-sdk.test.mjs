// openai-sdk.test.mjs - the official `openai` npm client, pointed at keel, stream and
// non-stream: answers through a failing first target, and keel's errors as the SDK sees them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { hits, simStats, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;
let client;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:
  - { name: flaky, base_url: "{SIM}", api_key: sk-sim-a }
  - { name: backup, base_url: "{SIM}", api_key: sk-sim-b }
models:
  - { name: desk, targets: [ { upstream: flaky, model: "503" }, { upstream: backup, model: healthy } ] }
  - { name: strict, targets: [ { upstream: flaky, model: "400" }, { upstream: backup, model: healthy } ] }
  - { name: down, targets: [ { upstream: flaky, model: "500" }, { upstream: backup, model: "502" } ] }
`, sim);
  client = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'sk-client-key', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

test('non-stream: chat.completions.create through a failing first target', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'desk', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.equal(data.choices[0].message.content, 'Hello from the keel simulator.');
  assert.equal(data.model, 'healthy');
  assert.equal(response.headers.get('x-keel-upstream'), 'backup');
});

test('stream: the SDK iterates chunks relayed through a failover', async () => {
  const stream = await client.chat.completions.create({
    model: 'desk', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }],
  });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'Hello from the keel simulator.');
  assert.equal(usage.total_tokens, 9); // the usage-only final chunk is relayed
  assert.ok(hits(await simStats(sim), '503') >= 2);
});

test("errors: the upstream's 400, keel's own 400 and 502 surface as SDK errors", async () => {
  await assert.rejects(client.chat.completions.create({ model: 'strict', messages: [] }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'invalid_value');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [] }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model: 'down', stream: true, messages: [] }), (e) => {
    assert.equal(e.status, 502);
    assert.equal(e.code, 'all_targets_failed');
    assert.equal(e.error.attempts.length, 2);
    return true;
  });
});

test('models.list shows the aliases', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['desk', 'strict', 'down']);
});

test('models.retrieve finds an alias; an unknown one is a 404 model_not_found', async () => {
  const m = await client.models.retrieve('strict');
  assert.equal(m.id, 'strict');
  assert.equal(m.object, 'model');
  await assert.rejects(client.models.retrieve('nope'), (e) => {
    assert.equal(e.status, 404);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
});
