// control.test.mjs - seed 002 as it happened: a control plane (here `keel sim --control`, which
// behaves like Lemonade's lemond) runs one inference server per loaded model on a port of its
// own choosing, evicts it behind keel's back and keeps listing it. keel sends chat straight to
// the data plane, reads its URL back after every load, and recovers a dead one with unload ->
// load -> URL read back -> probe, then retries the request once: the chat never sees the
// eviction, even when the server comes back on another port.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, post, sleep, startKeel, startSim, startSimControl, stop, streamedText } from './lib.mjs';

let sim;
let ctl;
let ctl2;
let keel;

before(async () => {
  sim = await startSim();
  ctl = await startSimControl();
  ctl2 = await startSimControl();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults: { timeouts: { first_byte: 3s, stall: 2s, total: 20s } }
upstreams:
  - name: lem
    control: { url: "${ctl.url}/api/v1", load_timeout: 10s }
  - name: gone
    control: { url: "${ctl2.url}/api/v1", load_timeout: 5s }
  - { name: backup, base_url: "{SIM}" }
models:
  - name: chat
    targets: [ { upstream: lem, model: healthy } ]
  - name: slow
    targets: [ { upstream: lem, model: "slow-first-token:1500" } ]
  - name: many
    targets: [ { upstream: lem, model: "healthy#many" } ]
  - name: visible
    targets: [ { upstream: lem, model: "healthy#visible" } ]
  - name: down
    targets:
      - { upstream: gone, model: healthy, breaker: { failures: 2, cooldown: 30s } }
      - { upstream: backup, model: "healthy#backup" }
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(ctl);
  await stop(ctl2);
  await stop(sim);
});

const HELLO = 'Hello from the keel simulator.';
const ask = (model, extra = {}) => ({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });
const control = async (c) => (await fetch(`${c.url}/sim/control`)).json();
const loaded = async (c, model) => (await control(c)).loaded.find((m) => m.model_name === model);
const evict = (c, model) => fetch(`${c.url}/sim/evict`, { method: 'POST', body: JSON.stringify({ model_name: model }) });
async function backend(model) {
  const s = await (await fetch(`${keel.adminUrl}/admin/status`)).json();
  return s.backends.find((b) => b.upstream === 'lem' && b.model === model);
}
const portOf = (url) => Number(new URL(url).port);

describe('a control plane\'s model', () => {
  test('the first chat loads it and goes straight to the data plane the control plane reports', async () => {
    const r = await post(keel, ask('chat'));
    assert.equal(r.status, 200, r.text);
    assert.equal(JSON.parse(r.text).choices[0].message.content, HELLO);
    const m = await loaded(ctl, 'healthy');
    assert.ok(m?.alive, 'loaded by the control plane');
    const b = await backend('healthy');
    assert.equal(b.state, 'ready');
    assert.equal(b.url, m.backend_url);
    assert.equal((await control(ctl)).spawns, 1);
  });

  test('evicted between two chats: unload + load, the new URL read back, the chat answered', async () => {
    const before = await loaded(ctl, 'healthy');
    await evict(ctl, 'healthy');
    const c0 = await control(ctl);
    const r = await post(keel, ask('chat'));
    assert.equal(r.status, 200, r.text);
    assert.equal(JSON.parse(r.text).choices[0].message.content, HELLO);
    const c1 = await control(ctl);
    assert.equal(c1.spawns - c0.spawns, 1, 'respawned: the stale loaded[] entry was unloaded first');
    assert.equal(c1.unloads - c0.unloads, 1);
    const after = await loaded(ctl, 'healthy');
    assert.notEqual(portOf(after.backend_url), portOf(before.backend_url), 'a fresh port');
    const b = await backend('healthy');
    assert.equal(b.url, after.backend_url, 'keel uses the URL read back, never the old port');
    assert.equal(b.recoveries, 1);
    assert.equal(b.url_changes, 1);
    const attempts = r.headers.get('x-keel-attempts');
    assert.match(attempts, /class=connect_error.*class=ok/, attempts);
  });

  test('the URL changes on every reload, and keel follows it each time', async () => {
    const ports = new Set([portOf((await loaded(ctl, 'healthy')).backend_url)]);
    for (let i = 0; i < 3; i++) {
      await evict(ctl, 'healthy');
      const r = await post(keel, ask('chat'));
      assert.equal(r.status, 200, r.text);
      ports.add(portOf((await loaded(ctl, 'healthy')).backend_url));
    }
    assert.equal(ports.size, 4);
    const b = await backend('healthy');
    assert.equal(b.url_changes, 4);
  });

  test('killed during a stream before its first content: answered on the new server', async () => {
    assert.equal((await post(keel, ask('slow', { stream: true }))).status, 200); // loaded
    const c0 = await control(ctl);
    const pending = post(keel, ask('slow', { stream: true }));
    await sleep(400);
    await evict(ctl, 'slow-first-token:1500');
    const r = await pending;
    assert.equal(r.status, 200, r.text);
    assert.equal(streamedText(r.text), HELLO);
    const c1 = await control(ctl);
    assert.equal(c1.spawns - c0.spawns, 1);
    assert.match(r.headers.get('x-keel-attempts'), /class=reset.*class=ok/);
  });

  test('20 concurrent requests meet one dead server: one recovery, all answered', async () => {
    assert.equal((await post(keel, ask('many'))).status, 200);
    await evict(ctl, 'healthy#many');
    const c0 = await control(ctl);
    const rs = await Promise.all(Array.from({ length: 20 }, () => post(keel, ask('many'))));
    for (const r of rs) assert.equal(r.status, 200, r.text);
    const c1 = await control(ctl);
    assert.equal(c1.spawns - c0.spawns, 1, 'one respawn');
    assert.equal(c1.loads - c0.loads, 1, 'one load');
    assert.equal((await backend('healthy#many')).recoveries, 1);
    // the failures that showed the server dead are not held against the target while it is
    // healed: its breaker stayed closed (three of them used to open it, and the requests
    // arriving behind them found it skipped)
    const st = await (await fetch(`${keel.adminUrl}/admin/status`)).json();
    const t = st.models.find((m) => m.name === 'many').targets[0];
    assert.equal(t.breaker, 'closed');
    assert.equal(t.consecutive_failures, 0);
  });

  test('an unload that fails does not stop the load', async () => {
    assert.equal((await post(keel, ask('visible'))).status, 200);
    // the control plane drops the model itself, then its next unload fails
    await fetch(`${ctl.url}/api/v1/unload`, { method: 'POST', body: JSON.stringify({ model_name: 'healthy#visible' }) });
    await fetch(`${ctl.url}/sim/control`, { method: 'POST', body: JSON.stringify({ fail_unloads: 1 }) });
    const c0 = await control(ctl);
    const r = await post(keel, ask('visible'));
    assert.equal(r.status, 200, r.text);
    const c1 = await control(ctl);
    assert.equal(c1.unload_failures - c0.unload_failures, 1, 'keel\'s unload failed');
    assert.equal(c1.spawns - c0.spawns, 1, 'and its load spawned the server all the same');
  });

  test('a control plane that is down: connect_error, failover, and its breaker opens', async () => {
    await stop(ctl2);
    for (let i = 0; i < 2; i++) {
      const r = await post(keel, ask('down'));
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers.get('x-keel-attempts'), /^gone\/healthy;class=connect_error.*backup\/healthy#backup;class=ok/);
    }
    const s = await eventually(async () => {
      const st = await (await fetch(`${keel.adminUrl}/admin/status`)).json();
      const t = st.models.find((m) => m.name === 'down').targets[0];
      return t.breaker === 'open' ? st : null;
    });
    assert.ok(s, 'the breaker opened');
    const r = await post(keel, ask('down'));
    assert.match(r.headers.get('x-keel-attempts'), /^gone\/healthy;class=skipped/);
  });

  test('metrics count recoveries and URL changes per model', async () => {
    const m = await (await fetch(`${keel.adminUrl}/metrics`)).text();
    assert.match(m, /keel_backend_recoveries_total\{upstream="lem",model="healthy"\} 4/);
    assert.match(m, /keel_backend_url_changes_total\{upstream="lem",model="healthy"\} 4/);
    assert.match(m, /keel_backend_up\{upstream="lem",model="healthy"\} 1/);
  });
});
