// cliff.test.mjs - seed 000's early warning: a model whose latency drifts toward the clients'
// cancel deadline (its cliff) is warned about (log, event, metric, status) while every answer is
// still a 200; a steady model is not.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chat, eventually, post, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
cliff: 10m
cliff_margin: 700ms
upstreams: [ { name: a, base_url: "{SIM}" } ]
models:
  - { name: drifting, cliff: 1500ms, targets: [ { upstream: a, model: "drift:200" } ] }
  - { name: steady, cliff: 1500ms, targets: [ { upstream: a, model: healthy } ] }
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const cliffOf = async (name) => (await (await fetch(`${keel.adminUrl}/admin/status`)).json())
  .models.find((m) => m.name === name).cliff;

test('a model drifting toward its cliff is warned about before any request reaches it', async () => {
  const seen = [];
  for (let i = 0; i < 4; i++) {
    const r = await post(keel, chat('drifting'));
    assert.equal(r.status, 200, 'every answer still a 200: latency is the only signal');
    await post(keel, chat('steady'));
    seen.push((await cliffOf('drifting')).near);
  }
  // 200, 400, 600 ms are safe; 800 ms is within 700 ms of the 1500 ms cliff
  assert.deepEqual(seen, [false, false, false, true]);
  assert.match(keel.log(), /warn cliff: model drifting: .*within 700ms of its 1500ms cliff/);
  assert.match(keel.log(), /event \{"cliff_ms":1500,.*"model":"drifting".*"state":"near".*"type":"cliff"/);
  const c = await cliffOf('drifting');
  assert.equal(c.cliff_ms, 1500);
  assert.ok(c.duration_ms.max >= 800);
  assert.equal((await cliffOf('steady')).near, false);
  const metrics = await (await fetch(`${keel.adminUrl}/metrics`)).text();
  const margin = Number(metrics.match(/keel_cliff_margin_seconds\{model="drifting"\} ([0-9.]+)/)[1]);
  assert.ok(margin > 0 && margin <= 0.7, `margin ${margin}`);
  const steady = Number(metrics.match(/keel_cliff_margin_seconds\{model="steady"\} ([0-9.]+)/)[1]);
  assert.ok(steady > 1.4);
});
