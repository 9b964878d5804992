// workers.test.mjs - `workers: N` (README "Many cores"): N loops, each with its own listener on
// the client port (SO_REUSEPORT), sharing breakers, client keys' limits, the connection cap and
// the managed backends; SIGHUP and SIGTERM reach every one. Each request here goes on a
// connection of its own, so the kernel spreads them over the workers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KEEL, check, eventually, hits, metricsOf, simStats, sleep, startKeel, startSim, stop, tmpdir } from './lib.mjs';

// one request on a new connection: { status, text }
function fresh(keel, body, headers = {}) {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: keel.port, method: 'POST', path: '/v1/chat/completions',
      agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers } },
    (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.setTimeout(20000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

const chat = (model) => ({ model, messages: [{ role: 'user', content: 'Say hello' }] });

async function metrics(keel) {
  return metricsOf(await (await fetch(`${keel.adminUrl}/metrics`)).text());
}

function perWorker(m) {
  return m.samples.filter((s) => s.name === 'keel_worker_requests_total').map((s) => s.value);
}

let sim;
let keel;
const KEY = 'kl-workers-test-key-0123456789abcdef';

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 2
defaults:
  timeouts: { first_byte: 5s, stall: 5s, total: 20s }
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
models:
  - name: tripped
    targets:
      - { upstream: a, model: "503#workers", breaker: { failures: 3, cooldown: 1h, probe: request } }
      - { upstream: b, model: healthy }
  - { name: fine, targets: [ { upstream: b, model: "healthy#workers" } ] }
  - { name: slow, targets: [ { upstream: b, model: "slow-first-token:1000#workers" } ] }
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

describe('workers', () => {
  test('each worker takes connections of its own, and the status says how many run', async () => {
    for (let i = 0; i < 40; i++) assert.equal((await fresh(keel, chat('fine'))).status, 200);
    const counts = perWorker(await metrics(keel));
    assert.equal(counts.length, 2);
    assert.ok(counts.every((n) => n > 0), `requests per worker: ${counts}`);
    assert.equal(counts.reduce((a, b) => a + b), 40);
    const status = await (await fetch(`${keel.adminUrl}/admin/status`)).json();
    assert.equal(status.workers, 2);
  });

  test('a breaker opens once for every worker: the dead target sees exactly its failures', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await fresh(keel, chat('tripped'))).status, 200);
    // three failures open it; every later request, whichever worker took it, skips it
    assert.equal(hits(await simStats(sim), '503#workers'), 3);
    const status = await (await fetch(`${keel.adminUrl}/admin/status`)).json();
    const t = status.models.find((m) => m.name === 'tripped').targets[0];
    assert.equal(t.breaker, 'open');
    const counts = perWorker(await metrics(keel));
    assert.ok(counts.every((n) => n > 0), `requests per worker: ${counts}`);
  });

  test('SIGHUP reaches every worker', async () => {
    const text = fs.readFileSync(keel.file, 'utf8');
    fs.writeFileSync(keel.file, `${text}  - { name: later, targets: [ { upstream: b, model: "healthy#later" } ] }\n`);
    keel.proc.kill('SIGHUP');
    await eventually(async () => (await fresh(keel, chat('later'))).status === 200);
    const before = perWorker(await metrics(keel));
    for (let i = 0; i < 20; i++) assert.equal((await fresh(keel, chat('later'))).status, 200);
    const counts = perWorker(await metrics(keel)).map((n, i) => n - before[i]);
    assert.ok(counts.every((n) => n > 0), `requests per worker after the reload: ${counts}`);
  });
});

describe('workers: shared limits', () => {
  let k;
  let held = [];
  before(async () => {
    const sha = (await import('node:crypto')).createHash('sha256').update(KEY).digest('hex');
    k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 2
max_connections: 6
upstreams:
  - { name: b, base_url: "{SIM}" }
models:
  - { name: fine, targets: [ { upstream: b, model: healthy } ] }
keys:
  - { name: team, sha256: "${sha}", rpm: 5 }
`, sim);
  });
  after(async () => {
    for (const s of held) s.destroy();
    await stop(k);
  });

  test("a key's rpm counts its requests on every worker", async () => {
    const statuses = [];
    for (let i = 0; i < 9; i++) statuses.push((await fresh(k, chat('fine'), { authorization: `Bearer ${KEY}` })).status);
    assert.deepEqual(statuses.filter((s) => s === 200).length, 5, `statuses: ${statuses}`);
    assert.deepEqual(statuses.filter((s) => s === 429).length, 4, `statuses: ${statuses}`);
    const counts = perWorker(await metrics(k));
    assert.ok(counts.every((n) => n > 0), `requests per worker: ${counts}`);
  });

  test('max_connections counts the connections open on every worker', async () => {
    // six idle connections, wherever the kernel puts them, fill the cap
    held = await Promise.all(Array.from({ length: 6 }, () => new Promise((resolve, reject) => {
      const s = net.connect(k.port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    })));
    await eventually(async () => (await metrics(k)).find('keel_client_connections', {}).value === 6);
    // a seventh is refused, whichever worker takes it (each holds fewer than six alone)
    for (let i = 0; i < 4; i++) {
      const answer = await new Promise((resolve, reject) => {
        const s = net.connect(k.port, '127.0.0.1');
        let text = '';
        s.on('data', (d) => { text += d; });
        s.on('end', () => resolve(text));
        s.on('error', reject);
      });
      assert.match(answer, /^HTTP\/1\.1 503 /);
      assert.match(answer, /max_connections/);
    }
    for (const s of held) s.destroy();
    held = [];
    await eventually(async () => (await metrics(k)).find('keel_client_connections', {}).value === 0);
    assert.equal((await fresh(k, chat('fine'))).status, 401, 'a new connection is taken again');
  });
});

describe('workers: managed backends and drain', () => {
  test("requests on every worker wait for a starting backend and are answered on their own loops", async () => {
    const dir = tmpdir();
    const go = path.join(dir, 'go');
    const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 3
upstreams:
  - name: local
    base_url: "http://127.0.0.1:{port}/v1"
    managed:
      command: ["/bin/sh", "-c", "while [ ! -e ${go} ]; do /bin/sleep 0.02; done; exec ${KEEL} sim --listen 127.0.0.1:{port}"]
      start_timeout: 20s
models:
  - { name: onbox, targets: [ { upstream: local, model: healthy } ] }
`, null);
    try {
      const pending = Array.from({ length: 12 }, () => fresh(k, chat('onbox')));
      await eventually(async () => (await (await fetch(`${k.adminUrl}/admin/status`)).json()).inflight === 12);
      fs.writeFileSync(go, '');
      const answers = await Promise.all(pending);
      assert.deepEqual(answers.map((a) => a.status), Array(12).fill(200));
      const counts = perWorker(await metrics(k));
      assert.equal(counts.length, 3);
      assert.ok(counts.filter((n) => n > 0).length >= 2, `requests per worker: ${counts}`);
    } finally {
      assert.equal(await stop(k), 0);
    }
  });

  test('SIGTERM drains the requests in flight on every worker, then exits 0', async () => {
    const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 2
drain_timeout: 10s
upstreams:
  - { name: b, base_url: "{SIM}" }
models:
  - { name: slow, targets: [ { upstream: b, model: "slow-first-token:1000#drain" } ] }
`, sim);
    const pending = Array.from({ length: 8 }, () => fresh(k, chat('slow')));
    await eventually(async () => (await (await fetch(`${k.adminUrl}/admin/status`)).json()).inflight === 8);
    const counts = perWorker(await metrics(k));
    assert.ok(counts.every((n) => n > 0), `requests per worker: ${counts}`);
    const exited = stop(k);
    const answers = await Promise.all(pending);
    assert.deepEqual(answers.map((a) => a.status), Array(8).fill(200));
    assert.equal(await exited, 0);
    assert.match(k.log(), /drained: exiting/);
  });

  test('workers: out of range is a config error naming the line', () => {
    const dir = tmpdir();
    const file = path.join(dir, 'keel.yaml');
    fs.writeFileSync(file, `listen: 127.0.0.1:0\nworkers: 65\nupstreams:\n  - { name: b, base_url: "http://127.0.0.1:1/v1" }\nmodels:\n  - { name: m, targets: [ { upstream: b, model: x } ] }\n`);
    const r = check(file);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr + r.stdout, /keel\.yaml:2.*workers.*expected 1 to 64/);
  });
});
