// audit.test.mjs - the audit log from a real run: one line per request with DESIGN.md's fields,
// rotation by size, no secret anywhere (canary keys in the config and in client headers), and
// `keel audit` reading it back (rotated files too) into per-model numbers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KEEL, abandon, chat, eventually, post, sleep, startKeel, startSim, stop, tmpdir } from './lib.mjs';

const FIELDS = ['ts', 'id', 'model', 'stream', 'status', 'ms', 'ttft_ms', 'upstream', 'target_model', 'attempts',
  'prompt_bytes', 'usage', 'client_gone', 'class'];
const ATTEMPT_FIELDS = ['upstream', 'model', 'class', 'status', 'ms', 'ttft_ms'];
const CLASSES = new Set(['ok', 'connect_error', 'reset', 'first_byte_timeout', 'stall_timeout', 'server_error',
  'overloaded', 'rate_limited', 'quota', 'auth', 'not_found', 'context_length', 'bad_request', 'stream_error',
  'empty_response', 'client_gone', 'invalid_request', 'gateway_busy', 'deadline_exceeded', 'skipped']);

let sim;
let keel;
let dir;
let file;

const audit = (...args) => spawnSync(KEEL, ['audit', ...args], { encoding: 'utf8', timeout: 30000 });
const lines = () => [file, ...[1, 2, 3, 4].map((i) => `${file}.${i}`)].filter((f) => fs.existsSync(f))
  .flatMap((f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));

before(async () => {
  sim = await startSim();
  dir = tmpdir();
  file = path.join(dir, 'audit.jsonl');
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${file}
audit_max_size: 4k
audit_keep: 3
defaults: { timeouts: { first_byte: 1s }, breaker: { failures: 1000 } }
upstreams:
  - { name: a, base_url: "{SIM}", api_key: sk-audit-canary-a }
  - { name: b, base_url: "{SIM}", api_key: sk-audit-canary-b }
models:
  - { name: steady, targets: [ { upstream: a, model: healthy } ] }
  - { name: flaky, targets: [ { upstream: a, model: "503" }, { upstream: b, model: healthy } ] }
  - { name: slow, targets: [ { upstream: a, model: "slow-first-token:300" } ] }
  - { name: hung, targets: [ { upstream: a, model: hang } ] }
`, sim);
  const headers = { authorization: 'Bearer sk-client-canary-z' };
  for (let i = 0; i < 10; i++) await post(keel, chat('steady', { stream: i % 2 === 1 }), { headers });
  for (let i = 0; i < 6; i++) await post(keel, chat('flaky', { stream: true, stream_options: { include_usage: true } }), { headers });
  for (let i = 0; i < 4; i++) await post(keel, chat('slow'), { headers });
  await post(keel, chat('hung'), { headers });
  await post(keel, chat('nope'), { headers });
  await abandon(keel, chat('slow'), 100);
  await sleep(500);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

describe('audit log', () => {
  test('one line per request, with every field of the record', async () => {
    const got = await eventually(() => lines().length >= 22, { ms: 5000 });
    assert.ok(got, `${lines().length} lines`);
    const recs = lines();
    const ids = new Set(recs.map((r) => r.id));
    assert.equal(ids.size, recs.length, 'one line per request');
    for (const r of recs.filter((x) => x.model !== '')) {
      for (const f of FIELDS) assert.ok(f in r, `field ${f} in ${JSON.stringify(r)}`);
      assert.match(r.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(CLASSES.has(r.class), r.class);
      for (const a of r.attempts) for (const f of ATTEMPT_FIELDS) assert.ok(f in a, `attempt field ${f}`);
    }
    const flaky = recs.filter((r) => r.model === 'flaky');
    assert.equal(flaky.length, 6);
    for (const r of flaky) {
      assert.equal(r.upstream, 'b');
      assert.equal(r.target_model, 'healthy');
      assert.deepEqual(r.attempts.map((a) => a.class), ['server_error', 'ok']);
      assert.equal(r.usage.total_tokens, 9);
      assert.equal(r.stream, true);
    }
    const slow = recs.filter((r) => r.model === 'slow' && !r.client_gone);
    for (const r of slow) assert.ok(r.ms >= 250 && r.ttft_ms >= 250, JSON.stringify(r));
    const gone = recs.find((r) => r.client_gone);
    assert.ok(gone, 'the abandoned request is in the log');
    assert.equal(gone.class, 'client_gone');
    const hung = recs.find((r) => r.model === 'hung');
    assert.equal(hung.class, 'first_byte_timeout');
    assert.equal(hung.status, 502);
    assert.equal(hung.ttft_ms, null);
    // a request refused before routing records the model it asked for
    const nope = recs.find((r) => r.model === 'nope');
    assert.ok(nope, 'the unknown model is named');
    assert.equal(nope.class, 'invalid_request');
    assert.equal(nope.error, 'model_not_found');
    // non-stream requests were streamed upstream (stream_upstream): usage and TTFT for every one
    const steady = recs.filter((r) => r.model === 'steady');
    assert.equal(steady.length, 10);
    for (const r of steady.filter((x) => !x.stream)) {
      assert.equal(r.usage.total_tokens, 9, JSON.stringify(r));
      assert.equal(typeof r.ttft_ms, 'number');
      assert.ok(r.ttft_ms <= r.ms);
    }
  });

  test('lines lost are counted in /metrics (none here: the disk keeps up)', async () => {
    const m = await (await fetch(`${keel.adminUrl}/metrics`)).text();
    assert.match(m, /# TYPE keel_audit_dropped_total counter\nkeel_audit_dropped_total 0\n/);
  });

  test('rotation keeps at most audit_keep files, each of whole lines', () => {
    assert.ok(fs.existsSync(`${file}.1`), 'rotated');
    assert.ok(!fs.existsSync(`${file}.4`), 'no more than audit_keep');
    for (const f of [file, `${file}.1`, `${file}.2`, `${file}.3`].filter((x) => fs.existsSync(x))) {
      const text = fs.readFileSync(f, 'utf8');
      assert.ok(text === '' || text.endsWith('\n'), 'no torn line');
      assert.ok(fs.statSync(f).size <= 4096 + 2048, `${f} is ${fs.statSync(f).size} bytes`);
    }
  });

  test('no secret in any audit file or log', () => {
    for (const f of fs.readdirSync(dir)) {
      const text = fs.readFileSync(path.join(dir, f), 'utf8');
      assert.ok(!text.includes('canary'), `a secret in ${f}`);
    }
    assert.ok(!keel.log().includes('canary'), 'a secret in the log');
  });
});

// A rotation that cannot open a fresh file (here its directory is gone) says so, and the log
// resumes by itself once the file can be opened again: no restart, no silent end of the record.
test('audit: a rotation that cannot reopen says so, and the log resumes when it can', async () => {
  const sub = path.join(tmpdir(), 'logs');
  const f = path.join(sub, 'audit.jsonl');
  fs.mkdirSync(sub);
  const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${f}
audit_max_size: 1k
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: m, targets: [ { upstream: a, model: healthy } ] } ]
`, sim);
  try {
    const read = () => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    assert.equal((await post(k, chat('m'))).status, 200);
    assert.ok(await eventually(() => read().length === 1), 'the first line is written');
    fs.rmSync(sub, { recursive: true });
    for (let i = 0; i < 4; i++) assert.equal((await post(k, chat('m'))).status, 200); // past 1k: a rotation
    assert.ok(await eventually(() => /audit log .*: write failed: No such file or directory/.test(k.log())), k.log());
    fs.mkdirSync(sub);
    const r = await post(k, chat('m'));
    const id = r.headers.get('x-keel-request-id');
    assert.ok(await eventually(() => read().some((l) => l.id === id), { ms: 8000 }), 'the log resumed');
    assert.match(k.log(), /audit log .*: writing again/);
  } finally {
    await stop(k);
  }
});

test('audit: names with quotes, backslashes, control characters and non-ASCII are escaped; invalid UTF-8 is ""', async () => {
  const own = path.join(tmpdir(), 'audit.jsonl');
  const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${own}
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: steady, targets: [ { upstream: a, model: healthy } ] } ]
`, sim);
  const names = ['q"uote', 'back\\slash', 'line\nbreak\u0001', 'café ☕ 😀'];
  for (const n of names) assert.equal((await post(k, chat(n))).status, 400);
  const raw = Buffer.concat([Buffer.from('{"model":"bad'), Buffer.from([0xff, 0xc3]), Buffer.from('","messages":[]}')]);
  const r = await fetch(`${k.url}/v1/chat/completions`, { method: 'POST', body: raw,
    headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 400);
  await stop(k); // flushes the log
  const recs = fs.readFileSync(own, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(recs.map((x) => x.model), [...names, '']);
  for (const x of recs) assert.deepEqual(x.attempts, []);
});

describe('keel audit', () => {
  test('per-model numbers from the log and its rotated files', () => {
    const r = audit(file, '--json', '--hang', '900ms');
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const recs = lines();
    assert.equal(j.lines, recs.length, 'every line of every rotated file was read');
    const m = Object.fromEntries(j.models.map((x) => [x.model, x]));
    assert.equal(m.flaky.requests, 6);
    assert.equal(m.flaky.failovers, 6);
    assert.deepEqual(m.flaky.served_by, { b: 6 });
    assert.equal(m.steady.requests, 10);
    assert.equal(m.steady.errors, 0);
    assert.equal(m.hung.errors_by_class.first_byte_timeout, 1);
    assert.equal(m.hung.hangs, 1, 'over the 900 ms hang threshold');
    // percentiles agree with the lines themselves
    const slow = recs.filter((x) => x.model === 'slow').map((x) => x.ms).sort((a, b) => a - b);
    assert.equal(m.slow.ms.max, slow.at(-1));
    assert.equal(m.slow.ms.p50, slow[Math.ceil(slow.length * 0.5) - 1]);
    assert.equal(m.nope.errors_by_class.invalid_request, 1);
  });

  test('--model, --since, the table and the cliff mark', () => {
    let r = audit(file, '--json', '--model', 'steady');
    assert.deepEqual(JSON.parse(r.stdout).models.map((x) => x.model), ['steady']);
    r = audit(file, '--json', '--since', '1ms');
    assert.deepEqual(JSON.parse(r.stdout).models, []);
    r = audit(file, '--cliff', '1200ms', '--margin', '300ms');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^\d+ requests from \S+Z to \S+Z \(\d+s\)\n\nmodel\s+requests\s+errors\s+p50/, 'the span, then the table');
    const j = JSON.parse(audit(file, '--json').stdout);
    assert.equal(r.stdout.split(' ')[0], String(j.models.reduce((n, m) => n + m.requests, 0)), 'every record counted');
    assert.ok(r.stdout.includes(` from ${j.span.from} to ${j.span.to} `), 'the span, as --json says');
    assert.match(r.stdout, /\nhung(\s+\S+){6}\s+-\s+-\s+-\s+-\s/, 'no answer: no TTFT, a dash rather than 0ms');
    assert.match(r.stdout, /\nhung .*NEAR CLIFF/, 'a 1 s hang is within 300 ms of a 1.2 s cliff');
    assert.doesNotMatch(r.stdout, /\nsteady .*NEAR CLIFF/);
    assert.match(r.stdout, /errors: first_byte_timeout 1/);
    r = audit(path.join(dir, 'missing.jsonl'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read/);
  });
});
