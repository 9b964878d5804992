// health.test.mjs - /admin/status says at a glance what is wrong with each model right now
// (issue 20): its last five minutes' outcomes, its open breakers and its cliff give a state and
// the reasons in words. A model that answers nothing is failing, whatever its latency says.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { post, startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults: { breaker: { failures: 2, cooldown: 1h, probe: request } }
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
models:
  - { name: good, targets: [ { upstream: a, model: "healthy#g" } ] }
  - { name: down, targets: [ { upstream: a, model: "503#d1" }, { upstream: b, model: "503#d2" } ] }
  - { name: rescued, targets: [ { upstream: a, model: "500#r" , breaker: { failures: 1000 } }, { upstream: b, model: "healthy#r" } ] }
  - { name: quiet, targets: [ { upstream: a, model: "healthy#q" } ] }
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const ask = (model) => ({ model, messages: [{ role: 'user', content: 'hi' }] });
const health = async (name) => (await (await fetch(`${keel.adminUrl}/admin/status`)).json()).models.find((m) => m.name === name).health;

test('healthy, failing, degraded and idle, each with its reasons', async () => {
  for (let i = 0; i < 4; i++) await post(keel, ask('good'));
  for (let i = 0; i < 6; i++) await post(keel, ask('down'));
  for (let i = 0; i < 3; i++) await post(keel, ask('rescued'));

  const good = await health('good');
  assert.equal(good.state, 'healthy');
  assert.equal(good.reasons, '');
  assert.equal(good.requests, 4);
  assert.equal(good.success_share, 1);

  const down = await health('down');
  assert.equal(down.state, 'failing', JSON.stringify(down));
  assert.equal(down.success_share, 0);
  assert.match(down.reasons, /^6 of 6 requests failed \(/);
  assert.match(down.reasons, /every target's breaker is open/);
  assert.ok(down.errors_by_class.server_error >= 2);

  const rescued = await health('rescued');
  assert.equal(rescued.state, 'degraded');
  assert.equal(rescued.success_share, 1);
  assert.equal(rescued.failovers, 3);
  assert.equal(rescued.reasons, '3 of 3 requests failed over');

  const quiet = await health('quiet');
  assert.equal(quiet.state, 'idle');
  assert.equal(quiet.requests, 0);
  assert.equal(quiet.success_share, null);
});
