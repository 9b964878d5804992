// audit-keys.test.mjs - `keel audit` and client keys: --key NAME keeps the records of one key,
// the text report ends with a table per key (answered, refused by keel, failed, tokens, p50/p99)
// and --json carries the same under "keys". First from a log written by hand, so every number
// is known; then from a real run, where the key's name is in the log and the key itself is not.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { KEEL, chat, eventually, post, startKeel, startSim, stop, tmpdir } from './lib.mjs';

const audit = (...args) => spawnSync(KEEL, ['audit', ...args], { encoding: 'utf8', timeout: 30000 });

// One audit record shaped as docs/reference.md's "Audit record"; `over` replaces members.
function rec(over) {
  const ok = (over.class ?? 'ok') === 'ok';
  return {
    ts: '2026-11-29T04:46:20.068Z', id: crypto.randomBytes(8).toString('hex'), model: 'm', stream: false,
    status: 200, ms: 1, ttft_ms: ok ? 1 : null, upstream: 'a', target_model: 'healthy',
    attempts: [{ upstream: 'a', model: 'healthy', class: 'ok', status: 200, ms: 1, ttft_ms: 1, kind: 'openai' }],
    prompt_bytes: 60, usage: null, client_gone: false, class: 'ok', protocol: 'openai-chat', ...over,
  };
}

const refusal = { upstream: null, target_model: null, attempts: [], ttft_ms: null, usage: null };
const usage = (n) => ({ prompt_tokens: n - 4, completion_tokens: 4, total_tokens: n });

// bob first: the table is sorted by name, not by first appearance
const RECORDS = [
  rec({ key: 'bob', ms: 20, usage: usage(5) }),
  rec({ key: 'alice', ms: 10, usage: usage(9) }),
  rec({ key: 'alice', ms: 30, stream: true, usage: usage(12) }),
  rec({ key: 'alice', ms: 0, status: 429, class: 'key_limited', error: 'key_limited', ...refusal }),
  rec({ key: 'alice', model: 'other', ms: 1, status: 403, class: 'invalid_request', error: 'model_not_allowed',
    ...refusal }),
  rec({ key: 'bob', ms: 40, status: 502, class: 'server_error',
    attempts: [{ upstream: 'a', model: 'healthy', class: 'server_error', status: 503, ms: 40, ttft_ms: 0, kind: 'openai' }],
    ttft_ms: null }),
  rec({ ms: 0, status: 401, class: 'invalid_request', error: 'invalid_api_key', ...refusal }), // no key: in no row
  rec({ ms: 5, usage: usage(7) }), // a record of a keel without keys
];

function writeLog() {
  const file = path.join(tmpdir(), 'audit.jsonl');
  fs.writeFileSync(file, RECORDS.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return file;
}

describe('keel audit per key, from a log written by hand', () => {
  const file = writeLog();

  test('the text report ends with one row per key, sorted by name', () => {
    const r = audit(file);
    assert.equal(r.status, 0, r.stderr);
    const at = r.stdout.indexOf('\nkey ');
    assert.ok(at > 0, r.stdout);
    assert.ok(r.stdout.indexOf('\nhangs: ') < at, 'after the per-model table and its notes');
    assert.equal(r.stdout.slice(at + 1),
      'key                  requests       ok  refused  errors     tokens         cost       p50      p99\n' +
      'alice                       4        2        2       0         21     0.000000       1ms     30ms\n' +
      '                     refused: invalid_request 1 key_limited 1\n' +
      'bob                         2        1        0       1          5     0.000000      20ms     40ms\n' +
      '                     errors: server_error 1\n');
    // the per-model table still counts every record, with a key or not
    assert.match(r.stdout, /\nm\s+7\s+3\s/);
    assert.match(r.stdout, /\nother\s+1\s+1\s/);
  });

  test('--key NAME keeps that key\'s records only, in every table', () => {
    let r = audit(file, '--key', 'alice');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\nm\s+3\s+1\s/, 'm: two answers and a key_limited');
    assert.match(r.stdout, /\nother\s+1\s+1\s/);
    assert.match(r.stdout, /\nalice\s+4\s+2\s+2\s+0\s+21\s/);
    assert.doesNotMatch(r.stdout, /\nbob /);
    r = audit(file, '--key', 'alice', '--json');
    const j = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(j.keys), ['alice']);
    assert.deepEqual(j.models.map((x) => [x.model, x.requests]), [['m', 3], ['other', 1]]);
    assert.equal(j.lines, RECORDS.length, 'lines counts what was read, filtered or not');
    // a key nobody used: no record, no table
    r = audit(file, '--key', 'carol');
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /\nkey /);
    assert.deepEqual(JSON.parse(audit(file, '--key', 'carol', '--json').stdout).keys, {});
    // --key and --model together
    r = audit(file, '--key', 'alice', '--model', 'other', '--json');
    assert.deepEqual(JSON.parse(r.stdout).keys.alice.refused_by_class, { invalid_request: 1 });
  });

  test('--json: "keys" holds the same figures, every other member as before', () => {
    const r = audit(file, '--json');
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(j), ['models', 'keys', 'lines', 'unreadable_lines', 'span', 'thresholds']);
    assert.deepEqual(Object.keys(j.keys), ['alice', 'bob']);
    assert.deepEqual(j.keys, {
      alice: { requests: 4, ok: 2, refused: 2, refused_by_class: { invalid_request: 1, key_limited: 1 }, errors: 0,
        errors_by_class: {}, tokens: 21, ms: { p50: 1, p90: 30, p99: 30, max: 30, count: 4 }, cost: 0 },
      bob: { requests: 2, ok: 1, refused: 0, refused_by_class: {}, errors: 1, errors_by_class: { server_error: 1 },
        tokens: 5, ms: { p50: 20, p90: 40, p99: 40, max: 40, count: 2 }, cost: 0 },
    });
    const m = Object.fromEntries(j.models.map((x) => [x.model, x]));
    assert.deepEqual(Object.keys(m.m), ['model', 'requests', 'errors', 'errors_by_class', 'ms', 'ttft_ms', 'hangs',
      'failovers', 'served_by', 'near_cliff', 'cost', 'cost_by_upstream', 'health']);
    assert.equal(m.m.requests, 7);
    assert.deepEqual(m.m.errors_by_class, { key_limited: 1, server_error: 1, invalid_request: 1 });
  });

  test('a log without keys: no per-key table, "keys" empty', () => {
    const f = path.join(tmpdir(), 'audit.jsonl');
    fs.writeFileSync(f, `${JSON.stringify(rec({ ms: 3, usage: usage(9) }))}\n`);
    const r = audit(f);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /\nkey /);
    assert.deepEqual(JSON.parse(audit(f, '--json').stdout).keys, {});
  });
});

test('keel audit --key on a real run: the name is logged, never the key', async () => {
  const sim = await startSim();
  const file = path.join(tmpdir(), 'audit.jsonl');
  const sha = crypto.createHash('sha256').update('sk-alice').digest('hex');
  let keel;
  try {
    keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${file}
keys: [ { name: alice, sha256: ${sha} } ]
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: m, targets: [ { upstream: a, model: healthy } ] } ]
`, sim);
    const headers = { authorization: 'Bearer sk-alice' };
    assert.equal((await post(keel, chat('m'), { headers })).status, 200);
    assert.equal((await post(keel, chat('m', { stream: true }), { headers })).status, 200);
    assert.equal((await post(keel, chat('m'))).status, 401);
    const read = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
    assert.ok(await eventually(() => read().split('\n').filter(Boolean).length >= 3, { ms: 5000 }), read());
    const recs = read().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(recs.map((x) => [x.status, x.key ?? null]).sort(), [[200, 'alice'], [200, 'alice'], [401, null]]);
    assert.ok(!read().includes('sk-alice'), 'the key itself is in the audit log');
    const r = audit(file, '--key', 'alice', '--json');
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(j.keys), ['alice']);
    assert.equal(j.keys.alice.requests, 2);
    assert.equal(j.keys.alice.ok, 2);
    assert.equal(j.keys.alice.tokens, recs.filter((x) => x.key).reduce((s, x) => s + (x.usage?.total_tokens ?? 0), 0));
    assert.deepEqual(j.models.map((x) => [x.model, x.requests]), [['m', 2]]);
    const t = audit(file);
    assert.match(t.stdout, /\nalice\s+2\s+2\s+0\s+0\s/);
  } finally {
    await stop(keel);
    await stop(sim);
  }
});
