// cost.test.mjs - tokens and what they cost (issue 20, part 3): keel_tokens_total by type, a
// time-per-output-token histogram for streamed answers, per-target `price:` giving
// keel_cost_total and a `cost` in the audit record, attributed to the upstream that answered
// (the fallback's cost is the fallback's). Real keel and keel sim; the exposition parsed
// strictly.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { KEEL, eventually, metricsOf, post, startKeel, startSim, stop, tmpdir } from './lib.mjs';

let sim;
let keel;
const auditFile = path.join(tmpdir(), 'audit.jsonl');

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${auditFile}
upstreams:
  - { name: cheap, base_url: "{SIM}" }
  - { name: dear, base_url: "{SIM}" }
  - { name: claude, kind: anthropic, base_url: "{SIM}", api_key: k }
models:
  - name: desk
    targets:
      - { upstream: cheap, model: "503#c", price: { input: 0.5, output: 1.5 } }
      - { upstream: dear, model: "healthy#d", price: { input: 3, output: 15, cached: 0.3 } }
  - name: unpriced
    targets: [ { upstream: cheap, model: "healthy#u" } ]
  - name: slow
    targets: [ { upstream: cheap, model: "slow-tokens:40#s" } ]
  - name: claude
    targets: [ { upstream: claude, model: healthy, price: { input: 3, output: 15 } } ]
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const ask = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });
const metrics = async () => metricsOf(await (await fetch(`${keel.adminUrl}/metrics`)).text());
// The metrics once n requests of model are recorded: keel records a request when the server
// says its answer went out, which a client can see before (the loop's next turn, on a worker).
const recorded = (model, n) => eventually(async () => {
  const m = await metrics();
  const total = m.samples.filter((s) => s.name === 'keel_requests_total' && s.labels.model === model)
    .reduce((a, s) => a + s.value, 0);
  return total >= n ? m : null;
});

describe('tokens and cost', () => {
  test('the fallback\'s tokens at the fallback\'s price, in the metrics and the audit', async () => {
    // the sim reports prompt 5, completion 4 for its usual answer
    for (let i = 0; i < 3; i++) assert.equal((await post(keel, ask('desk'))).status, 200);
    const m = await recorded('desk', 3);
    assert.equal(m.find('keel_tokens_total', { model: 'desk', upstream: 'dear', type: 'prompt' }).value, 15);
    assert.equal(m.find('keel_tokens_total', { model: 'desk', upstream: 'dear', type: 'completion' }).value, 12);
    assert.equal(m.find('keel_tokens_total', { model: 'desk', upstream: 'dear', type: 'cached' }).value, 0);
    const cost = m.find('keel_cost_total', { model: 'desk', upstream: 'dear' }).value;
    assert.ok(Math.abs(cost - 3 * (5 * 3 + 4 * 15) / 1e6) < 1e-12, `cost ${cost}`);
    assert.equal(m.find('keel_tokens_total', { model: 'desk', upstream: 'cheap', type: 'prompt' }), undefined,
      'the failed attempt billed nothing keel knows of');
    const recs = await eventually(() => {
      const l = fs.existsSync(auditFile) ? fs.readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((x) => JSON.parse(x)) : [];
      return l.filter((r) => r.model === 'desk').length >= 3 ? l : null;
    });
    const rec = recs.find((r) => r.model === 'desk');
    assert.ok(Math.abs(rec.cost - (5 * 3 + 4 * 15) / 1e6) < 1e-12, `audit cost ${rec.cost}`);
  });

  test('no price, no cost: tokens are still counted', async () => {
    assert.equal((await post(keel, ask('unpriced'))).status, 200);
    const m = await recorded('unpriced', 1);
    assert.equal(m.find('keel_tokens_total', { model: 'unpriced', upstream: 'cheap', type: 'completion' }).value, 4);
    assert.equal(m.find('keel_cost_total', { model: 'unpriced', upstream: 'cheap' }).value, 0);
    const u = await eventually(() => fs.readFileSync(auditFile, 'utf8').trim().split('\n').map((x) => JSON.parse(x))
      .find((r) => r.model === 'unpriced') ?? null);
    assert.ok(u, 'audited');
    assert.equal(u.cost, undefined, 'no price: no cost member');
    assert.deepEqual(u.usage, { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
  });

  test('an Anthropic answer: its input and output tokens, at its price', async () => {
    assert.equal((await post(keel, ask('claude'))).status, 200);
    const m = await recorded('claude', 1);
    const p = m.find('keel_tokens_total', { model: 'claude', upstream: 'claude', type: 'prompt' }).value;
    const c = m.find('keel_tokens_total', { model: 'claude', upstream: 'claude', type: 'completion' }).value;
    assert.ok(p > 0 && c > 0);
    const cost = m.find('keel_cost_total', { model: 'claude', upstream: 'claude' }).value;
    assert.ok(Math.abs(cost - (p * 3 + c * 15) / 1e6) < 1e-12);
  });

  test('keel audit: cost per model, per answering target (text and --json)', async () => {
    await eventually(() => fs.readFileSync(auditFile, 'utf8').includes('"model":"claude"'));
    const t = spawnSync(KEEL, ['audit', auditFile], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stderr);
    const per = 3 * (5 * 3 + 4 * 15) / 1e6;
    assert.match(t.stdout, new RegExp(`^ +cost: ${per.toFixed(6)} \\(dear ${per.toFixed(6)}\\)$`, 'm'));
    const j = JSON.parse(spawnSync(KEEL, ['audit', auditFile, '--json'], { encoding: 'utf8' }).stdout);
    const desk = j.models.find((m) => m.model === 'desk');
    assert.ok(Math.abs(desk.cost - per) < 1e-12);
    assert.deepEqual(Object.keys(desk.cost_by_upstream), ['dear']);
    assert.equal(j.models.find((m) => m.model === 'unpriced').cost, 0);
  });

  test('a streamed answer\'s time per output token', async () => {
    // slow-tokens:40 waits 40 ms between tokens: about 40 ms per token after the first
    const r = await post(keel, ask('slow', { stream: true, stream_options: { include_usage: true } }));
    assert.equal(r.status, 200);
    const m = await recorded('slow', 1);
    assert.equal(m.declared.get('keel_time_per_output_token_seconds'), 'histogram');
    const count = m.find('keel_time_per_output_token_seconds_count', { model: 'slow', upstream: 'cheap' }).value;
    const sum = m.find('keel_time_per_output_token_seconds_sum', { model: 'slow', upstream: 'cheap' }).value;
    assert.equal(count, 1);
    assert.ok(sum > 0.02 && sum < 0.5, `${sum} s per token`);
    const le01 = m.find('keel_time_per_output_token_seconds_bucket', { model: 'slow', upstream: 'cheap', le: '0.1' }).value;
    const inf = m.find('keel_time_per_output_token_seconds_bucket', { model: 'slow', upstream: 'cheap', le: '+Inf' }).value;
    assert.ok(le01 <= inf && inf === count);
  });
});
