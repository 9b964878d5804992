// events.test.mjs - a webhook that is down never slows or fails a request: deliveries that fail
// are logged and dropped.
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
events: { webhook: "http://127.0.0.1:1/down" }
defaults: { breaker: { failures: 1, cooldown: 200ms, max_cooldown: 400ms } }
upstreams: [ { name: a, base_url: "{SIM}" }, { name: b, base_url: "{SIM}" } ]
models: [ { name: m, targets: [ { upstream: a, model: "503" }, { upstream: b, model: healthy } ] } ]
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

test('a webhook that is down costs requests nothing; failures are logged', async () => {
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const r = await post(keel, chat('m'));
    assert.equal(r.status, 200);
    assert.ok(performance.now() - t0 < 500);
    await new Promise((res) => setTimeout(res, 30));
  }
  assert.ok(await eventually(() => /event webhook delivery failed/.test(keel.log())), keel.log());
  const st = await (await fetch(`${keel.adminUrl}/admin/status`)).json();
  assert.ok(st.events.webhook);
  assert.ok(st.events.failed >= 1);
  assert.equal(st.events.sent, 0);
});
