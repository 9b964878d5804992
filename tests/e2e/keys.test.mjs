// keys.test.mjs - only the keys keel issued spend its providers (DESIGN.md "Client keys"): a
// request without a valid key is 401, one for a model outside its key's list 403, one over its
// rpm or tpm 429 key_limited with Retry-After, each in the client protocol's envelope and before
// any upstream is touched; the audit and metrics carry the key's name, never the key; SIGHUP
// reloads keys; the admin listener asks for its admin_token; serve warns when it listens beyond
// loopback with no keys. Real keel and keel sim, the official openai and Anthropic SDKs.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { KEEL, eventually, post, sleep, startKeel, startSim, stop, tmpdir } from './lib.mjs';

const sha = (k) => createHash('sha256').update(k).digest('hex');
const dir = tmpdir();
const auditFile = path.join(dir, 'audit.jsonl');
let sim;
let keel;

const config = (extra = '') => `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${auditFile}
admin_token: adm-secret-token
keys_file: ${path.join(dir, 'keys.yaml')}
keys:
  - { name: alice, sha256: ${sha('sk-alice')}, models: [desk] }
  - { name: dave, sha256: ${sha('sk-dave')}, rpm: 2 }
  - { name: bob, sha256: ${sha('sk-bob')}, tpm: 10 }
${extra}
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: c, kind: anthropic, base_url: "{SIM}", api_key: sk-ant-upstream }
models:
  - { name: desk, targets: [ { upstream: a, model: "healthy#desk" } ] }
  - { name: other, targets: [ { upstream: a, model: "healthy#other" } ] }
`;

before(async () => {
  sim = await startSim();
  fs.writeFileSync(path.join(dir, 'keys.yaml'), `- { name: carol, sha256: ${sha('sk-carol')} }\n`);
  keel = await startKeel(config(), sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const ask = (model) => ({ model, messages: [{ role: 'user', content: 'hi' }] });
const as = (key) => ({ headers: { authorization: `Bearer ${key}` } });
const hits = async (name) => ((await (await fetch(`${sim.url}/sim/stats`)).json()).hits[name] ?? 0);
const auditLines = () => (fs.existsSync(auditFile) ? fs.readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);

describe('client keys', () => {
  test('no key, or a key keel did not issue: 401 invalid_api_key, no upstream touched', async () => {
    const before = await hits('healthy#desk');
    for (const headers of [{}, { authorization: 'Bearer sk-nobody' }, { 'x-api-key': 'sk-nobody' }, { authorization: 'Basic sk-alice' }]) {
      const r = await post(keel, ask('desk'), { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(JSON.parse(r.text).error.code, 'invalid_api_key');
      assert.equal(r.headers.get('x-should-retry'), 'false');
      assert.ok(!r.text.includes('sk-nobody'), 'the key is never echoed');
    }
    // in Anthropic's envelope on /v1/messages
    const r = await post(keel, { model: 'desk', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] },
      { path: '/v1/messages', headers: { 'x-api-key': 'sk-nobody', 'anthropic-version': '2023-06-01' } });
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.text).type, 'error');
    assert.equal(JSON.parse(r.text).error.type, 'authentication_error');
    assert.equal(await hits('healthy#desk'), before);
  });

  test('a valid key, as Bearer (openai SDK) or x-api-key (Anthropic SDK); keys_file\'s too', async () => {
    const openai = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'sk-alice', maxRetries: 0 });
    const c = await openai.chat.completions.create(ask('desk'));
    assert.equal(c.choices[0].message.content, 'Hello from the keel simulator.');
    const claude = new Anthropic({ baseURL: keel.url, apiKey: 'sk-alice', maxRetries: 0 });
    const m = await claude.messages.create({ model: 'desk', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(m.content[0].text, 'Hello from the keel simulator.');
    assert.equal((await post(keel, ask('other'), as('sk-carol'))).status, 200);
    const bad = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create(ask('desk')), (e) => e.status === 401);
  });

  test('a model outside the key\'s list: 403 model_not_allowed; /v1/models lists only its own', async () => {
    const before = await hits('healthy#other');
    const r = await post(keel, ask('other'), as('sk-alice'));
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.text).error.code, 'model_not_allowed');
    assert.equal(await hits('healthy#other'), before);
    const list = await (await fetch(`${keel.url}/v1/models`, as('sk-alice'))).json();
    assert.deepEqual(list.data.map((m) => m.id), ['desk']);
    assert.equal((await fetch(`${keel.url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${keel.url}/v1/models/other`, as('sk-alice'))).status, 404);
  });

  test('over rpm: 429 key_limited with Retry-After, never a breaker\'s business', async () => {
    assert.equal((await post(keel, ask('desk'), as('sk-dave'))).status, 200);
    assert.equal((await post(keel, ask('desk'), as('sk-dave'))).status, 200);
    const before = await hits('healthy#desk');
    const r = await post(keel, ask('desk'), as('sk-dave'));
    assert.equal(r.status, 429);
    const err = JSON.parse(r.text).error;
    assert.equal(err.code, 'key_limited');
    assert.match(err.message, /requests per minute/);
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 30, `Retry-After ${ra}: one request's share of a minute (2 rpm)`);
    assert.equal(await hits('healthy#desk'), before, 'no upstream touched');
    // the others are not limited by dave's limit
    assert.equal((await post(keel, ask('desk'), as('sk-alice'))).status, 200);
  });

  test('over tpm, counted from the answers\' usage: 429 key_limited', async () => {
    // the sim's answer reports 9 tokens: the second takes bob past a minute's worth of 10
    assert.equal((await post(keel, ask('desk'), as('sk-bob'))).status, 200);
    assert.equal((await post(keel, ask('desk'), as('sk-bob'))).status, 200);
    const r = await post(keel, ask('desk'), as('sk-bob'));
    assert.equal(r.status, 429);
    assert.match(JSON.parse(r.text).error.message, /tokens per minute/);
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
  });

  test('the audit and the metrics name the key, never show it', async () => {
    const lines = await eventually(() => {
      const l = auditLines();
      return l.some((x) => x.class === 'key_limited') && l.some((x) => x.key === 'carol') ? l : null;
    });
    assert.ok(lines, 'audit lines written');
    assert.ok(lines.some((x) => x.key === 'alice' && x.class === 'ok'));
    const limited = lines.find((x) => x.key === 'dave' && x.class === 'key_limited');
    assert.equal(limited.status, 429);
    assert.equal(limited.error, 'key_limited');
    const refused = lines.filter((x) => x.error === 'invalid_api_key');
    assert.ok(refused.length >= 4 && refused.every((x) => x.key === undefined));
    const text = fs.readFileSync(auditFile, 'utf8') + keel.log();
    for (const secret of ['sk-alice', 'sk-dave', 'sk-bob', 'sk-carol', 'sk-nobody', 'adm-secret-token'])
      assert.ok(!text.includes(secret), `${secret} written somewhere`);
    const m = await (await fetch(`${keel.adminUrl}/metrics`, as('adm-secret-token'))).text();
    assert.match(m, /keel_key_requests_total\{key="alice",class="ok"\} [1-9]/);
    assert.match(m, /keel_key_requests_total\{key="dave",class="key_limited"\} 1/);
    assert.match(m, /keel_key_tokens_total\{key="bob"\} 18/);
  });

  test('the admin listener asks for admin_token, but for /healthz', async () => {
    assert.equal((await fetch(`${keel.adminUrl}/healthz`)).status, 200);
    for (const p of ['/metrics', '/admin/status', '/ui']) {
      const r = await fetch(`${keel.adminUrl}${p}`);
      assert.equal(r.status, 401, p);
      assert.equal((await fetch(`${keel.adminUrl}${p}`, as('adm-secret-token'))).status, 200, p);
    }
    assert.equal((await fetch(`${keel.adminUrl}/admin/status?token=adm-secret-token`)).status, 200);
    assert.equal((await fetch(`${keel.adminUrl}/admin/status?token=wrong`)).status, 401);
  });

  test('keel key new prints a key and the line for it; SIGHUP takes it', async () => {
    const out = spawnSync(KEEL, ['key', 'new', 'erin'], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    const key = out.stdout.match(/^key: (sk-keel-[0-9a-f]{48})$/m)[1];
    const line = out.stdout.match(/^ {2}- \{ name: "erin", sha256: ([0-9a-f]{64}) \}$/m);
    assert.equal(line[1], sha(key));
    assert.equal((await post(keel, ask('desk'), as(key))).status, 401);
    fs.writeFileSync(keel.file, config().replace('keys:\n', `keys:\n  - { name: erin, sha256: ${line[1]} }\n`)
      .replaceAll('{SIM}', `${sim.url}/v1`));
    keel.proc.kill('SIGHUP');
    const ok = await eventually(async () => (await post(keel, ask('desk'), as(key))).status === 200, { ms: 5000 });
    assert.ok(ok, 'the new key works after SIGHUP');
    assert.ok(!keel.log().includes(key));
  });
});

test('serve warns when it listens beyond loopback and no keys are configured', async () => {
  const d = tmpdir();
  const file = path.join(d, 'keel.yaml');
  fs.writeFileSync(file, `listen: 0.0.0.0:0\nadmin_listen: 127.0.0.1:0\nupstreams:\n  - { name: a, base_url: "${sim.url}/v1" }\nmodels:\n  - { name: m, targets: [ { upstream: a, model: healthy } ] }\n`);
  const p = spawn(KEEL, ['serve', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  p.stderr.on('data', (b) => { log += b; });
  p.stdout.on('data', (b) => { log += b; });
  const seen = await eventually(() => /not a loopback address, and no client keys/.test(log), { ms: 5000 });
  p.kill('SIGTERM');
  await new Promise((r) => p.once('exit', r));
  assert.ok(seen, log);
  await sleep(10);
});
