// embeddings.test.mjs - POST /v1/embeddings along an alias's chain (deadlines, classification,
// breakers, failover as for chat; nothing streams), the answer as the target sent it. The
// official openai SDK (base64 by default), the Vercel AI SDK's embed and LangChain's
// OpenAIEmbeddings; real keel and keel sim.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { embed, embedMany } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { OpenAIEmbeddings } from '@langchain/openai';
import { attemptsOf, post, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;
let client;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults: { timeouts: { first_byte: 1s, total: 20s }, breaker: { failures: 1000 } }
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
models:
  - { name: embed, api: embeddings, targets: [ { upstream: a, model: "503" }, { upstream: b, model: healthy } ] }
  - { name: slow, api: embeddings, targets: [ { upstream: a, model: hang }, { upstream: b, model: healthy } ] }
  - { name: empty, api: embeddings, targets: [ { upstream: a, model: empty }, { upstream: b, model: healthy } ] }
  - { name: bad, api: embeddings, targets: [ { upstream: a, model: "400" }, { upstream: b, model: healthy } ] }
  - { name: chat, targets: [ { upstream: b, model: healthy } ] }
`, sim);
  client = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'k', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const classes = (r) => attemptsOf(r).map((a) => a.class);
const direct = async (body) => (await fetch(`${sim.url}/v1/embeddings`, { method: 'POST', body: JSON.stringify(body) })).json();

test('the openai SDK: vectors through a failing primary, exactly the target\'s', async () => {
  const { data, response } = await client.embeddings.create({ model: 'embed', input: ['hello world', 'keel'] }).withResponse();
  assert.equal(data.data.length, 2);
  assert.deepEqual(classes({ headers: response.headers }), ['server_error', 'ok']);
  const want = await direct({ model: 'healthy', input: ['hello world', 'keel'] });
  for (let i = 0; i < 2; i++)
    assert.deepEqual(data.data[i].embedding.map((x) => Math.fround(x)), want.data[i].embedding.map((x) => Math.fround(x)));
  assert.equal(data.usage.prompt_tokens, 3);
});

test('a hung primary costs first_byte; an empty list fails over; the client\'s 400 comes back as is', async () => {
  const t0 = performance.now();
  let r = await post(keel, { model: 'slow', input: 'x' }, { path: '/v1/embeddings' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(classes(r), ['first_byte_timeout', 'ok']);
  assert.ok(performance.now() - t0 < 3000);
  r = await post(keel, { model: 'empty', input: 'x' }, { path: '/v1/embeddings' });
  assert.deepEqual(classes(r), ['empty_response', 'ok']);
  r = await post(keel, { model: 'bad', input: 'x' }, { path: '/v1/embeddings' });
  assert.equal(r.status, 400);
  assert.deepEqual(classes(r), ['bad_request']);
});

test('an alias serves one API', async () => {
  let r = await post(keel, { model: 'chat', input: 'x' }, { path: '/v1/embeddings' });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error.message, /api: embeddings/);
  r = await post(keel, { model: 'embed', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error.message, /embeddings model/);
});

test('the AI SDK\'s embed and embedMany', async () => {
  const openai = createOpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'k' });
  const one = await embed({ model: openai.embedding('embed'), value: 'hello world', maxRetries: 0 });
  assert.equal(one.embedding.length, 8);
  const many = await embedMany({ model: openai.embedding('embed'), values: ['a', 'b', 'c'], maxRetries: 0 });
  assert.equal(many.embeddings.length, 3);
});

test('LangChain\'s OpenAIEmbeddings', async () => {
  const e = new OpenAIEmbeddings({ model: 'embed', apiKey: 'k', maxRetries: 0, configuration: { baseURL: `${keel.url}/v1` } });
  const v = await e.embedQuery('hello world');
  assert.equal(v.length, 8);
  const vs = await e.embedDocuments(['a', 'b']);
  assert.equal(vs.length, 2);
});
