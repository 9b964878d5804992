// shared.test.mjs - three keel instances behind one Redis (Debian's redis-server, started on a
// free port) act as one: a breaker opened through one is skipped by the others without a failed
// request of theirs, one background probe goes out per cooldown across all of them, a 429's
// cool-down holds everywhere; with Redis killed they keep answering on their own (the gauge
// drops to 0), and when it is back they reconnect and resync; an instance SIGKILLed after its
// probe claim leaves the probing to the others.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { attemptsOf, eventually, post, sleep, startKeel, startRedis, startSim, stop } from './lib.mjs';

const sha = (k) => createHash('sha256').update(k).digest('hex');
let sim;
let redis;
const keels = [];

const yaml = (url) => `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
state: { redis: "${url}", prefix: "t:" }
keys:
  - { name: ops, sha256: ${sha('sk-ops')} }
  - { name: dave, sha256: ${sha('sk-dave')}, rpm: 2 }
  - { name: bob, sha256: ${sha('sk-bob')}, tpm: 10 }
defaults: { timeouts: { first_byte: 2s, stall: 1s, total: 10s } }
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
models:
  - name: trip
    targets:
      - { upstream: a, model: "503#trip", breaker: { failures: 2, cooldown: 2s } }
      - { upstream: b, model: "healthy#trip-b" }
  - name: cool
    targets:
      - { upstream: a, model: "429:10#cool" }
      - { upstream: b, model: "healthy#cool-b" }
  - name: plain
    targets: [ { upstream: b, model: "healthy#plain" } ]
  - name: away
    targets:
      - { upstream: a, model: "503#away", breaker: { failures: 1, cooldown: 20s } }
      - { upstream: b, model: "healthy#away-b" }
  - name: orphan
    targets:
      - { upstream: a, model: "503#orphan", breaker: { failures: 1, cooldown: 1500ms } }
      - { upstream: b, model: "healthy#orphan-b" }
`;

before(async () => {
  sim = await startSim();
  redis = await startRedis();
  for (let i = 0; i < 3; i++) keels.push(await startKeel(yaml(redis.url), sim));
  // every instance connected
  for (const k of keels) assert.ok(await eventually(async () => (await status(k)).state?.up === true), k.log());
});

after(async () => {
  for (const k of keels) await stop(k);
  await stop(sim);
  if (redis) redis.proc.kill('SIGKILL');
});

const ask = (model) => ({ model, messages: [{ role: 'user', content: 'hi' }] });
const send = (k, model, key = 'sk-ops') => post(k, ask(model), { headers: { authorization: `Bearer ${key}` } });
const status = async (k) => (await fetch(`${k.adminUrl}/admin/status`)).json();
const target = async (k, model) => (await status(k)).models.find((m) => m.name === model).targets[0];
const hits = async (name) => ((await (await fetch(`${sim.url}/sim/stats`)).json()).hits[name] ?? 0);
const metric = async (k, re) => re.exec(await (await fetch(`${k.adminUrl}/metrics`)).text());

describe('three instances, one Redis', () => {
  test('a breaker opened through one is skipped by the others, without a failed request of theirs', async () => {
    assert.equal((await send(keels[0], 'trip')).status, 200);
    assert.equal((await send(keels[0], 'trip')).status, 200);
    const t0 = performance.now();
    for (const k of keels.slice(1)) {
      const open = await eventually(async () => (await target(k, 'trip')).breaker === 'open', { ms: 2000, every: 5 });
      assert.ok(open, 'the trip reached the instance');
    }
    const ms = performance.now() - t0;
    console.log(`# trip reached both other instances in ${ms.toFixed(1)} ms`);
    const before = await hits('503#trip');
    for (const k of keels.slice(1)) {
      const r = await send(k, 'trip');
      assert.equal(r.status, 200);
      assert.equal(attemptsOf(r)[0].class, 'skipped');
    }
    assert.equal(await hits('503#trip'), before, 'no request of theirs went to the open target');
  });

  test('one background probe per cooldown across all three', async () => {
    const start = await hits('503#trip');
    await sleep(5200); // cooldown 2s: probes due at about +2 s and +4 s, claimed by one instance each time
    const probes = (await hits('503#trip')) - start;
    assert.ok(probes >= 1 && probes <= 3, `${probes} probes in 5.2 s (three instances probing alone would send 6)`);
    let won = 0;
    for (const k of keels) won += Number((await metric(k, /keel_state_probe_claims_total\{result="won"\} (\d+)/))[1]);
    assert.ok(won >= probes, `claims won ${won}, probes ${probes}`);
  });

  test('a 429\'s cool-down holds for every instance', async () => {
    const r = await send(keels[0], 'cool');
    assert.equal(r.status, 200);
    assert.equal(attemptsOf(r)[0].class, 'rate_limited');
    await sleep(100);
    for (const k of keels.slice(1)) {
      const r2 = await send(k, 'cool');
      assert.equal(r2.status, 200);
      assert.equal(attemptsOf(r2)[0].class, 'skipped', 'cooling after the other instance\'s 429');
    }
    assert.equal(await hits('429:10#cool'), 1);
  });

  test('Redis killed: every instance keeps answering, says so, and resyncs when it is back', async () => {
    redis.proc.kill('SIGKILL');
    for (const k of keels) {
      assert.equal((await send(k, 'plain')).status, 200);
      const down = await eventually(async () => (await metric(k, /keel_state_redis_up (\d)/))?.[1] === '0');
      assert.ok(down, 'keel_state_redis_up 0');
    }
    assert.match(keels[0].log(), /state: redis 127\.0\.0\.1:\d+ unreachable: going on with this instance's local state/);
    // decided alone while Redis is away: instance 0 opens `away`
    assert.equal((await send(keels[0], 'away')).status, 200);
    assert.equal((await target(keels[0], 'away')).breaker, 'open');
    assert.equal((await target(keels[1], 'away')).breaker, 'closed');
    redis = await startRedis(redis.port);
    for (const k of keels) {
      const up = await eventually(async () => (await metric(k, /keel_state_redis_up (\d)/))?.[1] === '1', { ms: 40000, every: 100 });
      assert.ok(up, 'reconnected');
    }
    // the resync carried instance 0's decision to the others
    for (const k of keels.slice(1))
      assert.ok(await eventually(async () => (await target(k, 'away')).breaker === 'open'), 'resynced');
  });

  test('a client key\'s rpm and tpm count across instances', async () => {
    assert.equal((await send(keels[0], 'plain', 'sk-dave')).status, 200);
    await sleep(50);
    assert.equal((await send(keels[1], 'plain', 'sk-dave')).status, 200);
    await sleep(50);
    const r = await send(keels[2], 'plain', 'sk-dave');
    assert.equal(r.status, 429, 'the minute\'s two requests were spent on the other instances');
    assert.equal(JSON.parse(r.text).error.code, 'key_limited');
    // tokens: the sim's answer reports 9; two answers elsewhere put bob past a minute of 10
    assert.equal((await send(keels[0], 'plain', 'sk-bob')).status, 200);
    assert.equal((await send(keels[1], 'plain', 'sk-bob')).status, 200);
    await sleep(50);
    const t = await send(keels[2], 'plain', 'sk-bob');
    assert.equal(t.status, 429);
    assert.match(JSON.parse(t.text).error.message, /tokens per minute/);
  });

  test('an instance SIGKILLed after claiming the probe: the claim expires, another probes', async () => {
    for (const k of keels) assert.equal((await send(k, 'orphan')).status, 200);
    // wait for the first probe, and see who claimed it
    const claimer = await eventually(async () => {
      for (const k of keels) if ((await target(k, 'orphan')).probe?.count > 0) return k;
      return null;
    }, { ms: 6000, every: 50 });
    assert.ok(claimer, 'someone probed');
    claimer.proc.kill('SIGKILL');
    const others = keels.filter((k) => k !== claimer);
    const before = await hits('503#orphan');
    const probed = await eventually(async () => {
      let n = 0;
      for (const k of others) n += (await target(k, 'orphan')).probe?.count ?? 0;
      return n > 0 && (await hits('503#orphan')) > before;
    }, { ms: 8000, every: 100 });
    assert.ok(probed, 'another instance took the probing over');
    keels.splice(keels.indexOf(claimer), 1);
  });
});

test('a Redis that refuses this instance (password): said once, and keel answers alone', async () => {
  const locked = await startRedis(undefined, ['--requirepass', 'right-password']);
  const ks = [];
  try {
    for (const url of [`redis://:wrong-password@127.0.0.1:${locked.port}/0`, `redis://127.0.0.1:${locked.port}/0`])
      ks.push(await startKeel(yaml(url), sim));
    for (const k of ks) {
      assert.equal((await send(k, 'plain')).status, 200);
      assert.ok(await eventually(() => /refused this instance \((WRONGPASS|NOAUTH|ERR)/.test(k.log()), { ms: 8000 }), k.log());
      await sleep(1500); // retries wait the longest backoff: no flood
      assert.equal((await metric(k, /keel_state_redis_up (\d)/))[1], '0');
      assert.equal(k.log().match(/refused this instance/g)?.length, 1, 'said once');
      assert.equal((await send(k, 'plain')).status, 200);
      assert.ok(!k.log().includes('wrong-password'), 'the password is never logged');
    }
  } finally {
    for (const k of ks) await stop(k);
    locked.proc.kill('SIGKILL');
  }
});
