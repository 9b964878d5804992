// upstream.test.mjs - keel's side towards upstreams: connections are reused, TLS certificates
// are verified (a self-signed upstream is a connect_error and is failed over, never trusted).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { chat, hits, post, simStats, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;
let tls;
let tlsRequests = 0;

before(async () => {
  sim = await startSim();
  const dir = new URL('./fixtures/', import.meta.url);
  tls = https.createServer({
    key: fs.readFileSync(new URL('selfsigned-key.pem', dir)),
    cert: fs.readFileSync(new URL('selfsigned-cert.pem', dir)),
  }, (req, res) => {
    tlsRequests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"choices":[{"message":{"content":"should never be trusted"}}]}');
  });
  await new Promise((r) => tls.listen(0, '127.0.0.1', r));
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: selfsigned, base_url: "https://127.0.0.1:${tls.address().port}/v1", api_key: sk-tls-canary }
models:
  - { name: m, targets: [ { upstream: a, model: healthy } ] }
  - { name: t, targets: [ { upstream: selfsigned, model: x }, { upstream: a, model: healthy } ] }
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
  tls.close();
});

test('sequential requests reuse one upstream connection', async () => {
  const before = (await simStats(sim)).connections;
  for (let i = 0; i < 20; i++) {
    const r = await post(keel, chat('m', { stream: i % 2 === 1 }));
    assert.equal(r.status, 200);
  }
  const s = await simStats(sim);
  assert.equal(hits(s, 'healthy'), 20);
  // + 1 for the stats request itself, which does not go through keel
  assert.ok(s.connections - before <= 2, `${s.connections - before} connections for 20 requests`);
});

test('an upstream whose certificate does not verify is a connect_error, failed over', async () => {
  const r = await post(keel, chat('t'));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-keel-upstream'), 'a');
  assert.match(r.headers.get('x-keel-attempts'), /^selfsigned\/x;class=connect_error;status=0;/);
  assert.equal(tlsRequests, 0, 'no request was sent over the unverified connection');
  assert.ok(!keel.log().includes('canary'));
});
