// recovery.test.mjs - prompt recovery (issue 17): with `breaker: { probe: background }` (the
// default) keel probes an open target itself at the base cooldown with jitter, so a target that
// comes back is in service again within about one cooldown, no client request is ever the probe,
// and a target that stays down costs clients nothing. Against real keel and keel sim processes
// (sim `down-for:MS`: the API's 503/529 for MS ms from the name's first request, then healthy),
// with a webhook of the test's own for the events.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { attemptsOf, chat, eventually, post, simStats, sleep, startKeel, startSim, startWebhook, stop } from './lib.mjs';

let sim;
let keel;
let hook;
const events = [];

const DOWN_MS = 6000;
const COOLDOWN_MS = 2000;
const FAILURES = 2;
const PRIMARY = `down-for:${DOWN_MS}#rec`;

const CONFIG = (hookPort) => `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
events: { webhook: "http://127.0.0.1:${hookPort}/hook" }
defaults:
  timeouts: { first_byte: 2s, stall: 2s, total: 20s }
  breaker: { failures: ${FAILURES}, cooldown: ${COOLDOWN_MS}ms }
upstreams:
  - { name: primary, base_url: "{SIM}", api_key: sk-probe-canary, headers: { x-title: probe-test } }
  - { name: backup, base_url: "{SIM}" }
  - { name: claude, kind: anthropic, base_url: "{SIM}", api_key: sk-ant-probe-canary }
models:
  - { name: rec, targets: [ { upstream: primary, model: "${PRIMARY}" }, { upstream: backup, model: "healthy#rec" } ] }
  - name: msg
    targets:
      - { upstream: claude, model: "down-for:2000#msg", breaker: { failures: 1, cooldown: 1s } }
      - { upstream: backup, model: "healthy#msg" }
  - name: emb
    api: embeddings
    targets:
      - { upstream: primary, model: "down-for:2000#emb", breaker: { failures: 1, cooldown: 1s } }
      - { upstream: backup, model: "healthy#emb" }
  - name: stuck
    targets:
      - { upstream: primary, model: "hang#stuck", timeouts: { first_byte: 1s }, breaker: { failures: 1, cooldown: 300ms } }
      - { upstream: backup, model: "healthy#stuck" }
`;

before(async () => {
  hook = await startWebhook(events);
  sim = await startSim();
  keel = await startKeel(CONFIG(hook.address().port), sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
  hook.close();
});

const status = async () => (await fetch(`${keel.adminUrl}/admin/status`)).json();
const targetStatus = (st, alias, model) =>
  st.models.find((m) => m.name === alias).targets.find((t) => t.model === model);

test('a primary down 6 s is back in service within a cooldown of its recovery; clients never probe it', async () => {
  const seen = []; // {t, upstream, attempts}
  const t0 = performance.now();
  let statusWhileOpen = null;
  while (performance.now() - t0 < DOWN_MS + 8000) {
    const sent = performance.now() - t0;
    const r = await post(keel, chat('rec'));
    assert.equal(r.status, 200, 'every request is answered, down or not');
    seen.push({ t: sent, upstream: r.headers.get('x-keel-upstream'), attempts: attemptsOf(r).map((a) => [a.who, a.class]) });
    if (statusWhileOpen === null && seen.length === 8) statusWhileOpen = targetStatus(await status(), 'rec', PRIMARY);
    if (seen.length > FAILURES && seen.slice(-3).every((s) => s.upstream === 'primary')) break;
    await sleep(200);
  }
  const back = seen.findIndex((s, i) => i >= FAILURES && s.upstream === 'primary');
  assert.ok(back > 0, `traffic never came back: ${JSON.stringify(seen)}`);
  const backAt = seen[back].t;
  const tookMs = backAt - DOWN_MS;
  console.log(`# recovery: traffic back on the primary ${Math.round(tookMs)} ms after its recovery ` +
    `(request ${back + 1}, sent at +${Math.round(backAt)} ms)`);
  assert.ok(tookMs <= COOLDOWN_MS + 1000, `back ${Math.round(tookMs)} ms after the recovery`);
  assert.ok(seen.slice(back).every((s) => s.upstream === 'primary'), 'and it stays there');

  // the primary's breaker opened after FAILURES client requests; from then on every client request
  // skipped it (no client was the probe) until a background probe closed it
  for (let i = 0; i < FAILURES; i++)
    assert.deepEqual(seen[i].attempts, [[`primary/${PRIMARY}`, 'server_error'], ['backup/healthy#rec', 'ok']]);
  for (const s of seen.slice(FAILURES, back))
    assert.deepEqual(s.attempts, [[`primary/${PRIMARY}`, 'skipped'], ['backup/healthy#rec', 'ok']], JSON.stringify(s));
  for (const s of seen.slice(back)) assert.deepEqual(s.attempts, [[`primary/${PRIMARY}`, 'ok']]);

  // while it was down, the primary got the FAILURES requests that opened it, then at most one
  // probe per cooldown: each in [0.9, 1.1] x cooldown after the one before
  const stats = await simStats(sim);
  const down = stats.down_hits[PRIMARY];
  const openedAt = seen[FAILURES - 1].t;
  const probes = down - FAILURES;
  console.log(`# recovery: while down the primary got ${down} requests: ${FAILURES} that opened its breaker, ` +
    `${probes} background probes in ${Math.round(DOWN_MS - openedAt)} ms`);
  assert.ok(probes >= 1, `probed while down: ${down}`);
  assert.ok(probes <= Math.ceil((DOWN_MS - openedAt) / COOLDOWN_MS), `at most one per cooldown: ${probes}`);
  // client requests after the recovery, plus the probe that found it back
  const served = seen.length - back;
  assert.equal(stats.hits[PRIMARY], down + served + 1);

  // /admin/status said when the next probe goes while it was open
  assert.equal(statusWhileOpen.breaker, 'open', JSON.stringify(statusWhileOpen));
  assert.equal(statusWhileOpen.probe.mode, 'background');
  if (!statusWhileOpen.probe.in_flight) {
    assert.equal(typeof statusWhileOpen.probe.next_in_ms, 'number');
    assert.ok(statusWhileOpen.probe.next_in_ms >= 0 && statusWhileOpen.probe.next_in_ms <= 1.1 * COOLDOWN_MS);
  }
  const closed = targetStatus(await status(), 'rec', PRIMARY);
  assert.equal(closed.breaker, 'closed');
  assert.equal(closed.probe.next_in_ms, null);
  assert.equal(closed.probe.last.outcome, 'ok');
  assert.equal(closed.probe.last.status, 200);
  assert.equal(closed.probe.count, probes + 1);

  // events: the opening, each probe (server_error while down, then ok), the close; no half-open
  const mine = () => events.filter((e) => e.model === PRIMARY);
  assert.ok(await eventually(() => mine().some((e) => e.type === 'breaker' && e.to === 'closed')), JSON.stringify(events));
  const ev = mine();
  assert.deepEqual(ev.filter((e) => e.type === 'breaker').map((e) => [e.from, e.to]), [['closed', 'open'], ['open', 'closed']]);
  const probeEvents = ev.filter((e) => e.type === 'probe');
  assert.deepEqual(probeEvents.map((e) => e.outcome), [...Array(probes).fill('server_error'), 'ok']);
  for (const e of probeEvents) {
    assert.equal(e.upstream, 'primary');
    assert.equal(typeof e.ms, 'number');
  }
  assert.ok(ev.findIndex((e) => e.type === 'probe' && e.outcome === 'ok') < ev.findIndex((e) => e.to === 'closed'));
  assert.match(keel.log(), /event \{.*"type":"probe"/);
  assert.ok(!JSON.stringify(events).includes('canary'), 'no key in events');
});

test('/metrics counts the probes by outcome', async () => {
  const text = await (await fetch(`${keel.adminUrl}/metrics`)).text();
  assert.match(text, /# TYPE keel_probes_total counter/);
  const ok = text.match(new RegExp(`^keel_probes_total\\{upstream="primary",model="${PRIMARY}",outcome="ok"\\} (\\d+)$`, 'm'));
  assert.ok(ok, text);
  assert.equal(Number(ok[1]), 1);
  assert.match(text, new RegExp(`^keel_probes_total\\{upstream="primary",model="${PRIMARY}",outcome="server_error"\\} [1-9]`, 'm'));
});

test('an Anthropic target and an embeddings target get probes in their own API, and come back', async () => {
  const probed = {}; // the sim's view of each target right after the probe that closed it
  for (const [alias, model, body, path] of [
    ['msg', 'down-for:2000#msg', chat('msg'), '/v1/chat/completions'],
    ['emb', 'down-for:2000#emb', { model: 'emb', input: 'hello' }, '/v1/embeddings'],
  ]) {
    const r = await post(keel, body, { path });
    assert.equal(r.status, 200);
    assert.deepEqual(attemptsOf(r).map((a) => a.class), [alias === 'msg' ? 'overloaded' : 'server_error', 'ok']);
    assert.equal(targetStatus(await status(), alias, model).breaker, 'open');
    const closed = await eventually(async () => targetStatus(await status(), alias, model).breaker === 'closed', { ms: 6000, every: 100 });
    assert.ok(closed, `${alias}: closed by a probe`);
    probed[alias] = await simStats(sim); // its last request was the probe
    assert.equal(probed[alias].hits[model], probed[alias].down_hits[model] + 1, `${alias}: one probe found it back`);
    const again = await post(keel, body, { path });
    assert.deepEqual(attemptsOf(again).map((a) => a.class), ['ok'], `${alias}: back in service`);
  }
  // the Messages API's key header and version; the OpenAI upstream's bearer and configured headers
  assert.equal(probed.msg.x_api_key['down-for:2000#msg'], 'sk-ant-probe-canary');
  assert.equal(probed.msg.anthropic_version['down-for:2000#msg'], '2023-06-01');
  assert.equal(probed.emb.auth['down-for:2000#emb'], 'Bearer sk-probe-canary');
  assert.equal(probed.emb.passed['down-for:2000#emb']['x-title'], 'probe-test');
  assert.ok(events.some((e) => e.type === 'probe' && e.model === 'down-for:2000#msg' && e.outcome === 'overloaded'));
  assert.ok(events.some((e) => e.type === 'probe' && e.model === 'down-for:2000#emb' && e.outcome === 'ok'));
});

test('a reload and then SIGTERM with a probe in flight: the prober closes cleanly and keel exits 0', async () => {
  const r = await post(keel, chat('stuck'));
  assert.equal(r.status, 200);
  assert.deepEqual(attemptsOf(r).map((a) => a.class), ['first_byte_timeout', 'ok']);
  // the hanging target is probed every ~300 ms, each probe held for its 1 s first_byte
  const probeOut = () => eventually(async () => targetStatus(await status(), 'stuck', 'hang#stuck').probe.in_flight,
    { ms: 3000, every: 50 });
  assert.ok(await probeOut(), 'a probe is out');
  // the config it began under is replaced while it is out; the next probes follow the new one
  fs.writeFileSync(keel.file, fs.readFileSync(keel.file, 'utf8').replace('cooldown: 300ms', 'cooldown: 200ms'));
  keel.proc.kill('SIGHUP');
  assert.ok(await eventually(async () => (await status()).reloads === 1), keel.log());
  const count = targetStatus(await status(), 'stuck', 'hang#stuck').probe.count;
  assert.ok(await eventually(async () => targetStatus(await status(), 'stuck', 'hang#stuck').probe.count > count,
    { ms: 3000, every: 50 }), 'probed on after the reload');
  assert.ok(await probeOut(), 'a probe is out');
  const last = targetStatus(await status(), 'stuck', 'hang#stuck').probe.last;
  assert.equal(last.outcome, 'first_byte_timeout');
  assert.ok(last.ms >= 1000 && last.ms < 1500, `held for its first_byte: ${last.ms} ms`);
  const code = await stop(keel);
  assert.equal(code, 0, keel.log());
  assert.match(keel.log(), /drained: exiting/);
});
