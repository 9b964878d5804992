// retries.test.mjs - no retry storms: the SDKs retry 408, 409, 429 and every 5xx on their own
// (twice by default), which on top of keel's own attempts multiplied the providers' load. Every
// terminal answer of keel's says whether a client retry can help (x-should-retry, which both
// SDKs obey; Retry-After where waiting helps), so one client call costs the providers at most
// keel's own attempts. The official SDKs at their default maxRetries, against keel sim.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { hits, simStats, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults: { retry: { max_wait: 0s }, breaker: { failures: 100, rejections: 100 } }
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
  - { name: c, kind: anthropic, base_url: "{SIM}" }
models:
  - { name: down, targets: [ { upstream: a, model: "503#a" }, { upstream: b, model: "503#b" } ] }
  - { name: limited, targets: [ { upstream: a, model: "429:2#a" }, { upstream: b, model: "429:2#b" } ] }
  - { name: bad, targets: [ { upstream: a, model: "400#a" }, { upstream: b, model: "healthy#b" } ] }
  - { name: claude-down, targets: [ { upstream: c, model: "529#c" }, { upstream: a, model: "503#ca" } ] }
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const total = (stats, names) => names.reduce((n, m) => n + hits(stats, m), 0);

test('the openai SDK at its default retries: a 503-ing chain costs keel\'s two attempts, not six', async () => {
  const client = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'k', timeout: 20000 }); // maxRetries 2
  await assert.rejects(client.chat.completions.create({ model: 'down', messages: [{ role: 'user', content: 'hi' }] }), (e) => {
    assert.equal(e.status, 502);
    assert.equal(e.headers.get('x-should-retry'), 'false');
    return true;
  });
  assert.equal(total(await simStats(sim), ['503#a', '503#b']), 2);
});

test('a 429-ing chain: the 429 with Retry-After, and no SDK retry on top', async () => {
  const client = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'k', timeout: 20000 });
  const t0 = performance.now();
  await assert.rejects(client.chat.completions.create({ model: 'limited', messages: [{ role: 'user', content: 'hi' }] }), (e) => {
    assert.equal(e.status, 429);
    assert.equal(e.headers.get('retry-after'), '2');
    assert.equal(e.headers.get('x-should-retry'), 'false');
    return true;
  });
  assert.ok(performance.now() - t0 < 1500, 'the SDK did not wait out a Retry-After to ask again');
  assert.equal(total(await simStats(sim), ['429:2#a', '429:2#b']), 2);
});

test('the client\'s own 400: no retry', async () => {
  const r = await fetch(`${keel.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bad', messages: [] }) });
  assert.equal(r.status, 400);
  assert.equal(r.headers.get('x-should-retry'), 'false');
  const unknown = await fetch(`${keel.url}/v1/chat/completions`, { method: 'POST', body: '{"model":"nope","messages":[]}' });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.headers.get('x-should-retry'), 'false');
});

test('the Anthropic SDK at its default retries: keel\'s attempts only', async () => {
  const client = new Anthropic({ baseURL: keel.url, apiKey: 'k', timeout: 20000 }); // maxRetries 2
  await assert.rejects(client.messages.create({ model: 'claude-down', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }), (e) => {
    assert.equal(e.status, 502);
    return true;
  });
  assert.equal(total(await simStats(sim), ['529#c', '503#ca']), 2);
});

test('waiting helps with a 503 keel answers itself: Retry-After, and the SDK may ask again', async () => {
  const r = await fetch(`${keel.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'down', messages: [] }) });
  assert.equal(r.status, 502);
  // every breaker open is a 503 with Retry-After and no x-should-retry: false
  const open = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults: { breaker: { failures: 1, cooldown: 30s } }
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: m, targets: [ { upstream: a, model: "503#open" } ] } ]
`, sim);
  try {
    const body = JSON.stringify({ model: 'm', messages: [] });
    await fetch(`${open.url}/v1/chat/completions`, { method: 'POST', body });
    const again = await fetch(`${open.url}/v1/chat/completions`, { method: 'POST', body });
    assert.equal(again.status, 503);
    assert.ok(Number(again.headers.get('retry-after')) > 0);
    assert.equal(again.headers.get('x-should-retry'), null);
  } finally {
    await stop(open);
  }
});
