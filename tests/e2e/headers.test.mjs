// headers.test.mjs - headers both ways, by allowlist (README "Headers both ways"): the answering
// attempt's request id and rate-limit headers back to the client (the SDKs' _request_id), the
// client's idempotency, tracing and organization headers up to the target; nothing else crosses.
// Real keel, keel sim, the official openai and @anthropic-ai/sdk clients.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { post, simStats, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:
  - { name: a, base_url: "{SIM}", api_key: sk-a }
  - { name: c, kind: anthropic, base_url: "{SIM}", api_key: sk-c }
  - name: d
    base_url: "{SIM}"
    headers: { x-title: "\${KEEL_TEST_TITLE}", openai-project: proj-config }
models:
  - { name: m, targets: [ { upstream: a, model: "503#h1" }, { upstream: a, model: "healthy#h2" } ] }
  - { name: s, targets: [ { upstream: a, model: "healthy#h3" } ] }
  - { name: claude, targets: [ { upstream: c, model: "healthy#h4" } ] }
  - { name: down, targets: [ { upstream: a, model: "503#h5" } ] }
  - { name: conf, targets: [ { upstream: d, model: "healthy#h6" } ] }
`, sim, { env: { ...process.env, KEEL_TEST_TITLE: 'From the config' } });
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

test('the answering attempt\'s request id and rate-limit headers reach the client, keel\'s id too', async () => {
  const client = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'k', maxRetries: 0 });
  const { data, response } = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal(data._request_id, 'req_sim_1', 'the SDK reads x-request-id');
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '99');
  assert.match(response.headers.get('x-keel-request-id'), /^[0-9a-f]{16}$/);
  // the failed 503 attempt's own id does not leak into the answer: one x-request-id, the answerer's
  assert.equal(response.headers.get('x-request-id'), 'req_sim_1');
  assert.equal((await simStats(sim)).hits['503#h1'], 1);
  // a stream: at the commit point
  const r = await post(keel, { model: 's', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.headers.get('x-request-id'), 'req_sim_1');
  assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '99');
});

test('Anthropic\'s request-id reaches the Anthropic SDK', async () => {
  const client = new Anthropic({ baseURL: keel.url, apiKey: 'k', maxRetries: 0 });
  const { data, response } = await client.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal(data._request_id, 'req_sim_1');
  assert.equal(response.headers.get('anthropic-ratelimit-requests-remaining'), '99');
});

test('keel\'s own error carries no upstream id', async () => {
  const r = await post(keel, { model: 'down', messages: [] });
  assert.equal(r.status, 502);
  assert.equal(r.headers.get('x-request-id'), null);
});

test('the client\'s idempotency, tracing and attribution headers go up; its credentials never', async () => {
  const sent = { 'idempotency-key': 'idem-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tracestate: 'k=v', 'openai-organization': 'org-1', 'openai-project': 'proj-1', 'http-referer': 'https://agent.example',
    'x-title': 'Agent', authorization: 'Bearer sk-client-secret', 'x-api-key': 'sk-client-secret', cookie: 'c=1' };
  await post(keel, { model: 's', messages: [{ role: 'user', content: 'hi' }] }, { headers: sent });
  await post(keel, { model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, { headers: sent, path: '/v1/messages' });
  const stats = await simStats(sim);
  const { authorization, 'x-api-key': key, cookie, ...allowed } = sent;
  assert.deepEqual(stats.passed['healthy#h3'], allowed);
  // an Anthropic target gets what is not OpenAI's own
  assert.deepEqual(stats.passed['healthy#h4'], { 'idempotency-key': 'idem-1', traceparent: sent.traceparent, tracestate: 'k=v' });
  assert.equal(stats.auth['healthy#h3'], 'Bearer sk-a');
  assert.equal(stats.x_api_key['healthy#h4'], 'sk-c');
  assert.doesNotMatch(JSON.stringify(stats), /sk-client-secret|c=1/);
});

test('an upstream\'s own headers (config headers:, ${VAR} expanded) go with every request to it, over the client\'s', async () => {
  await post(keel, { model: 'conf', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-title': 'From the client', traceparent: 'tp' } });
  const passed = (await simStats(sim)).passed['healthy#h6'];
  assert.deepEqual(passed, { traceparent: 'tp', 'openai-project': 'proj-config', 'x-title': 'From the config' });
});
