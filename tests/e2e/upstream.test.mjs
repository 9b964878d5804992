// upstream.test.mjs - keel's side towards upstreams: connections are reused, TLS certificates
// are verified (a self-signed upstream is a connect_error and is failed over, never trusted),
// an idle connection the upstream closes is noticed without cost and replaced.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { after, before, test } from 'node:test';
import http from 'node:http';
import { chat, cpuMs, eventually, hits, post, simStats, sleep, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;
let tls;
let tlsRequests = 0;
let brief; // closes an idle keep-alive connection after 100 ms
const briefConns = [];

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
  brief = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"choices":[{"message":{"role":"assistant","content":"brief"},"finish_reason":"stop"}]}');
    });
  });
  brief.keepAliveTimeout = 100;
  brief.on('connection', (s) => {
    briefConns.push(s);
    s.on('close', () => briefConns.splice(briefConns.indexOf(s), 1));
  });
  await new Promise((r) => brief.listen(0, '127.0.0.1', r));
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 1 # upstream connections are pooled per worker: one pool, so the reuse counts are exact
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: selfsigned, base_url: "https://127.0.0.1:${tls.address().port}/v1", api_key: sk-tls-canary }
  - { name: brief, base_url: "http://127.0.0.1:${brief.address().port}/v1" }
models:
  - { name: b, targets: [ { upstream: brief, model: x } ] }
  - { name: m, targets: [ { upstream: a, model: healthy } ] }
  - { name: t, targets: [ { upstream: selfsigned, model: x }, { upstream: a, model: healthy } ] }
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
  tls.close();
  brief.close();
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

// keel keeps a kept-alive upstream socket's poll between transfers (upstream.c); when the
// upstream closes the idle connection, that poll must stop, not spin the loop, and the next
// request must get a fresh connection.
test('an idle connection the upstream closes costs no CPU, and the next request reconnects', async () => {
  let opened = 0;
  const count = () => opened++;
  brief.on('connection', count);
  try {
    assert.equal((await post(keel, chat('b'))).status, 200);
    // brief closes the idle connection after 100 ms
    assert.ok(await eventually(() => briefConns.length === 0), 'the upstream closed its side');
    await sleep(100);
    const cpu0 = cpuMs(keel.proc.pid);
    await sleep(1000);
    const spent = cpuMs(keel.proc.pid) - cpu0;
    assert.ok(spent < 300, `keel used ${spent} ms of CPU in 1 s of idling (a spinning loop uses ~1000)`);
    for (let i = 0; i < 3; i++) {
      const r = await post(keel, chat('b'));
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.text).choices[0].message.content, 'brief');
    }
    assert.equal(opened, 2, 'one connection before the close, one after');
  } finally {
    brief.off('connection', count);
  }
});
