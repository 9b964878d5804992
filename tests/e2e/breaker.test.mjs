// breaker.test.mjs - circuit breakers (seed 004), rejections (issue 13), /metrics, /admin/status,
// events and SIGHUP, against real keel and keel sim processes (and a moderating upstream of the
// test's own). Each test uses targets of its own (sim "#tag" names), because breaker state
// outlives a test by design. The rule here is `probe: request` (the first client request after
// the cooldown is the probe, the cooldown doubled after each failed one); recovery.test.mjs tests
// the default, keel's own background probes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { attemptsOf, chat, eventually, hits, metricsOf, post, simStats, sleep, startKeel, startSim, startWebhook, stop, streamedText } from './lib.mjs';

let sim;
let keel;
let hook;
const events = [];
// an upstream that moderates: 403 to any prompt containing FLAGGED, a completion otherwise
let moderator;
let moderated = 0;

const CONFIG = (hookPort, modPort) => `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
events: { webhook: "http://127.0.0.1:${hookPort}/hook" }
defaults:
  timeouts: { first_byte: 2s, stall: 2s, total: 20s }
  breaker: { failures: 3, cooldown: 1s, max_cooldown: 4s, probe: request }
upstreams:
  - { name: a, base_url: "{SIM}", api_key: sk-breaker-canary }
  - { name: b, base_url: "{SIM}" }
  - { name: mod, base_url: "http://127.0.0.1:${modPort}/v1" }
models:
  - { name: dead, targets: [ { upstream: a, model: "503#dead" }, { upstream: b, model: healthy } ] }
  - { name: crowd, targets: [ { upstream: a, model: "503#crowd" }, { upstream: b, model: healthy } ] }
  - name: flap
    targets:
      - { upstream: a, model: "fail-then-heal:5#flap", breaker: { failures: 2, cooldown: 300ms, max_cooldown: 600ms } }
      - { upstream: b, model: healthy }
  - name: allopen
    targets:
      - { upstream: a, model: "503#x", breaker: { failures: 1, cooldown: 5s } }
      - { upstream: b, model: "503#y", breaker: { failures: 1, cooldown: 3s } }
  - { name: fine, targets: [ { upstream: a, model: "healthy#fine" } ] }
  - { name: picky, targets: [ { upstream: a, model: "400#picky" }, { upstream: b, model: healthy } ] }
  - { name: lazy, targets: [ { upstream: b, model: "slow-first-token:800" } ] }
  - name: patient
    targets:
      - { upstream: a, model: "slow-first-token:600#patient", breaker: { failures: 1, cooldown: 1h } }
      - { upstream: b, model: healthy }
  - { name: moderated, targets: [ { upstream: mod, model: gpt-mod }, { upstream: b, model: healthy } ] }
  - { name: revoked, targets: [ { upstream: a, model: "401#revoked" }, { upstream: b, model: healthy } ] }
  - { name: removed, targets: [ { upstream: a, model: "404#removed" }, { upstream: b, model: healthy } ] }
`;

before(async () => {
  hook = await startWebhook(events);
  moderator = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      moderated++;
      const j = JSON.parse(body);
      res.setHeader('content-type', 'application/json');
      if (j.messages.some((m) => m.content.includes('FLAGGED'))) {
        res.writeHead(403);
        res.end(JSON.stringify({ error: { message: 'Your request was flagged by our moderation system',
          type: 'invalid_request_error', code: 'content_flagged', param: null } }));
        return;
      }
      res.writeHead(200);
      res.end(JSON.stringify({ id: 'chatcmpl-mod', object: 'chat.completion', created: 0, model: j.model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'fine' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 } }));
    });
  });
  await new Promise((r) => moderator.listen(0, '127.0.0.1', r));
  sim = await startSim();
  keel = await startKeel(CONFIG(hook.address().port, moderator.address().port), sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
  hook.close();
  moderator.close();
});

const status = async () => (await fetch(`${keel.adminUrl}/admin/status`)).json();
const targetStatus = (st, alias, model) =>
  st.models.find((m) => m.name === alias).targets.find((t) => t.model === model);

describe('breakers', () => {
  test('a 503 target is hit exactly `failures` times, then not until the cooldown, then once', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await post(keel, chat('dead'))).status, 200);
    assert.equal(hits(await simStats(sim), '503#dead'), 3);
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await post(keel, chat('dead', { stream: i % 2 === 1 }));
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-keel-upstream'), 'b');
      assert.deepEqual(attemptsOf(r).map((a) => [a.who, a.class]), [['a/503#dead', 'skipped'], ['b/healthy', 'ok']]);
      assert.ok(performance.now() - t0 < 500, 'an open target costs nothing');
    }
    assert.equal(hits(await simStats(sim), '503#dead'), 3, 'not hit while open');
    const st = targetStatus(await status(), 'dead', '503#dead');
    assert.equal(st.breaker, 'open');
    assert.ok(st.cooldown_left_ms > 0 && st.cooldown_left_ms <= 1000);
    assert.deepEqual(st.recent_failures, ['server_error', 'server_error', 'server_error']);
    await sleep(1100);
    const r = await post(keel, chat('dead'));
    assert.equal(r.status, 200);
    assert.equal(hits(await simStats(sim), '503#dead'), 4, 'exactly one probe after the cooldown');
    const again = targetStatus(await status(), 'dead', '503#dead');
    assert.equal(again.breaker, 'open', 'the failed probe reopened it');
    assert.ok(again.cooldown_left_ms > 1000, 'with the cooldown doubled');
  });

  test('many concurrent requests at half-open send exactly one probe', async () => {
    for (let i = 0; i < 3; i++) await post(keel, chat('crowd'));
    await sleep(1100);
    const rs = await Promise.all(Array.from({ length: 20 }, () => post(keel, chat('crowd'))));
    assert.ok(rs.every((r) => r.status === 200));
    assert.equal(hits(await simStats(sim), '503#crowd'), 4);
    assert.equal(rs.filter((r) => attemptsOf(r)[0].class === 'server_error').length, 1);
  });

  test('a flapping target is served by the fallback while down and gets traffic back once healed', async () => {
    const seen = [];
    const end = Date.now() + 6000;
    while (Date.now() < end) {
      const r = await post(keel, chat('flap'));
      assert.equal(r.status, 200, 'every request is answered, down or not');
      seen.push(r.headers.get('x-keel-upstream'));
      if (seen.slice(-3).join() === 'a,a,a') break;
      await sleep(50);
    }
    assert.ok(seen.includes('b'), 'served by the fallback while down');
    assert.deepEqual(seen.slice(-3), ['a', 'a', 'a'], `traffic back on the healed target: ${seen.join(' ')}`);
    // down for 5 requests: 2 to open it, then probes at 300 ms and 600 ms cooldowns
    assert.ok(hits(await simStats(sim), 'fail-then-heal:5#flap') <= 9);
  });

  test('every target open: an immediate 503 with Retry-After, no upstream touched', async () => {
    const first = await post(keel, chat('allopen'));
    assert.equal(first.status, 502);
    const before = await simStats(sim);
    const t0 = performance.now();
    const r = await post(keel, chat('allopen', { stream: true }));
    const ms = performance.now() - t0;
    assert.equal(r.status, 503);
    const j = JSON.parse(r.text);
    assert.equal(j.error.code, 'all_targets_open');
    assert.deepEqual(j.error.attempts.map((a) => a.class), ['skipped', 'skipped']);
    assert.ok(j.error.retry_after >= 2 && j.error.retry_after <= 3, `retry_after ${j.error.retry_after}`);
    assert.equal(r.headers.get('retry-after'), String(j.error.retry_after));
    assert.ok(ms < 300, `${ms} ms`);
    const after = await simStats(sim);
    assert.equal(hits(after, '503#x'), hits(before, '503#x'));
    assert.equal(hits(after, '503#y'), hits(before, '503#y'));
  });

  test("the client's own 400 never opens a breaker (seed 003)", async () => {
    for (let i = 0; i < 6; i++) assert.equal((await post(keel, chat('picky'))).status, 400);
    assert.equal(hits(await simStats(sim), '400#picky'), 6);
    assert.equal(targetStatus(await status(), 'picky', '400#picky').breaker, 'closed');
  });

  test('every transition is an event: a log line and a webhook POST', async () => {
    const got = await eventually(() => events.some((e) => e.model === '503#dead' && e.to === 'open'));
    assert.ok(got, JSON.stringify(events));
    const opened = events.find((e) => e.model === '503#dead' && e.from === 'closed' && e.to === 'open');
    assert.equal(opened.type, 'breaker');
    assert.equal(opened.upstream, 'a');
    assert.equal(opened.cause, 'server_error');
    assert.equal(opened.cooldown_ms, 1000);
    assert.ok(events.some((e) => e.model === '503#dead' && e.from === 'open' && e.to === 'half_open'));
    assert.ok(events.some((e) => e.model === 'fail-then-heal:5#flap' && e.from === 'half_open' && e.to === 'closed'));
    assert.match(keel.log(), /event \{.*"type":"breaker"/);
    assert.ok(!JSON.stringify(events).includes('canary'));
  });
});

// Issue 13: auth and not_found are rejections. They may be the request's own (a provider that
// answers 403 to a moderation-flagged prompt) and every request walks the chain, so with
// `failures: 3` three flagged prompts used to open the target for every client. Rejections
// have a count of their own (`rejections`, default 10, reset by an ok): flagged prompts among
// normal traffic never open the target, a revoked key or a removed model still does.
describe('rejections', () => {
  const flagged = (alias) => chat(alias, { messages: [{ role: 'user', content: 'FLAGGED: something a filter dislikes' }] });

  test('flagged prompts among normal traffic never open the breaker', async () => {
    const seen = moderated;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 9; i++) { // rejections - 1 in a row, then a normal prompt
        const r = await post(keel, flagged('moderated'));
        assert.equal(r.status, 200, 'the fallback answers a flagged prompt');
        assert.deepEqual(attemptsOf(r).map((a) => [a.who, a.class, a.status]),
          [['mod/gpt-mod', 'auth', '403'], ['b/healthy', 'ok', '200']], `round ${round}, flagged prompt ${i}`);
      }
      const r = await post(keel, chat('moderated'));
      assert.equal(r.status, 200);
      assert.deepEqual(attemptsOf(r).map((a) => [a.who, a.class]), [['mod/gpt-mod', 'ok']], `round ${round}: still served by mod`);
    }
    assert.equal(moderated - seen, 30, 'the moderating target was tried by every request');
    const st = targetStatus(await status(), 'moderated', 'gpt-mod');
    assert.equal(st.breaker, 'closed');
    assert.equal(st.consecutive_failures, 0);
    assert.equal(st.consecutive_rejections, 0, 'the last answer (ok) reset the count');
    assert.ok(st.recent_failures.includes('auth'), 'rejections still show among recent failures');
    assert.ok(!events.some((e) => e.model === 'gpt-mod'), 'no transition');
  });

  for (const [alias, model, cls, code] of [['revoked', '401#revoked', 'auth', '401'], ['removed', '404#removed', 'not_found', '404']]) {
    test(`every request rejected (${code}): ${alias} opens after \`rejections\` (10) in a row, and a rejected probe reopens it`, async () => {
      for (let i = 0; i < 10; i++) {
        if (i === 9) assert.equal(targetStatus(await status(), alias, model).breaker, 'closed', '9 rejections: still closed');
        const r = await post(keel, chat(alias));
        assert.equal(r.status, 200);
        assert.deepEqual(attemptsOf(r).map((a) => [a.who, a.class, a.status]),
          [[`a/${model}`, cls, code], ['b/healthy', 'ok', '200']], `request ${i}: the target was tried`);
      }
      assert.equal(hits(await simStats(sim), model), 10);
      const st = targetStatus(await status(), alias, model);
      assert.equal(st.breaker, 'open', 'the 10th rejection opened it');
      assert.ok(st.cooldown_left_ms > 0 && st.cooldown_left_ms <= 1000);
      const opened = await eventually(() => events.find((e) => e.model === model && e.from === 'closed' && e.to === 'open'));
      assert.ok(opened, JSON.stringify(events));
      assert.equal(opened.cause, cls);
      assert.equal(opened.cooldown_ms, 1000);
      const r = await post(keel, chat(alias));
      assert.deepEqual(attemptsOf(r).map((a) => [a.who, a.class]), [[`a/${model}`, 'skipped'], ['b/healthy', 'ok']]);
      assert.equal(hits(await simStats(sim), model), 10, 'not hit while open');
      // the probe after the cooldown is rejected too: open again, with the cooldown doubled
      await sleep(1100);
      const probe = await post(keel, chat(alias));
      assert.equal(probe.status, 200);
      assert.deepEqual(attemptsOf(probe).map((a) => [a.who, a.class]), [[`a/${model}`, cls], ['b/healthy', 'ok']]);
      assert.equal(hits(await simStats(sim), model), 11, 'exactly one probe');
      const again = targetStatus(await status(), alias, model);
      assert.equal(again.breaker, 'open', 'the rejected probe reopened it');
      assert.ok(again.cooldown_left_ms > 1000, `cooldown doubled: ${again.cooldown_left_ms} ms left`);
      const reopened = await eventually(() => events.find((e) => e.model === model && e.from === 'half_open' && e.to === 'open'));
      assert.ok(reopened, JSON.stringify(events));
      assert.equal(reopened.cause, cls);
    });
  }
});

describe('/metrics and /admin/status', () => {
  test('/metrics passes a strict format check and shows the states', async () => {
    await post(keel, chat('fine'));
    await post(keel, chat('no-such-alias'));
    const r = await fetch(`${keel.adminUrl}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const { declared, samples, find } = metricsOf(await r.text());
    for (const name of ['keel_requests_total', 'keel_request_duration_seconds', 'keel_ttft_seconds', 'keel_attempts_total',
      'keel_failovers_total', 'keel_breaker_state', 'keel_inflight']) {
      assert.ok(declared.has(name), `${name} declared`);
    }
    assert.equal(find('keel_breaker_state', { upstream: 'a', model: '503#dead' }).value, 2);
    assert.equal(find('keel_breaker_state', { upstream: 'a', model: 'healthy#fine' }).value, 0);
    assert.ok(find('keel_requests_total', { model: 'fine', upstream: 'a', class: 'ok' }).value >= 1);
    assert.ok(find('keel_requests_total', { model: '', upstream: '', class: 'invalid_request' }).value >= 1);
    assert.equal(find('keel_attempts_total', { upstream: 'a', model: '503#dead', class: 'server_error' }).value, 4);
    assert.ok(find('keel_attempts_total', { upstream: 'a', model: '503#dead', class: 'skipped' }).value >= 5);
    assert.ok(find('keel_failovers_total', { model: 'dead', from: 'a', to: 'b', class: 'server_error' }).value >= 3);
    assert.equal(find('keel_inflight', { upstream: 'a' }).value, 0);
    // histograms: cumulative buckets, +Inf equals _count
    const buckets = samples.filter((s) => s.name === 'keel_request_duration_seconds_bucket' && s.labels.model === 'fine');
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value);
    assert.equal(buckets.at(-1).labels.le, '+Inf');
    assert.equal(buckets.at(-1).value, find('keel_request_duration_seconds_count', { model: 'fine' }).value);
    // no label value that the config did not name
    const names = new Set(['', 'a', 'b', 'mod', 'dead', 'crowd', 'flap', 'allopen', 'fine', 'picky', 'lazy', 'patient',
      'moderated', 'revoked', 'removed']);
    for (const s of samples) for (const k of ['model', 'upstream', 'from', 'to']) {
      if (k in s.labels && !(s.name.startsWith('keel_attempts') || s.name.startsWith('keel_breaker')) ) assert.ok(names.has(s.labels[k]), `${s.name} ${k}=${s.labels[k]}`);
    }
  });

  test('/admin/status shows live percentiles, in-flight and breaker states', async () => {
    for (let i = 0; i < 5; i++) await post(keel, chat('fine'));
    const st = await status();
    const t = targetStatus(st, 'fine', 'healthy#fine');
    assert.equal(t.breaker, 'closed');
    assert.equal(t.inflight, 0);
    assert.ok(t.latency.count >= 5);
    for (const k of ['p50', 'p90', 'p99', 'max']) {
      assert.equal(typeof t.latency.duration_ms[k], 'number');
      assert.ok(t.latency.duration_ms[k] <= t.latency.duration_ms.max);
    }
    assert.ok(t.latency.ttft_ms.max <= t.latency.duration_ms.max);
    assert.equal(targetStatus(st, 'allopen', '503#x').breaker, 'open');
  });
});

describe('SIGHUP', () => {
  test('a good config is taken without dropping in-flight requests; breaker state survives', async () => {
    assert.equal(targetStatus(await status(), 'allopen', '503#x').breaker, 'open');
    const yaml = fs.readFileSync(keel.file, 'utf8');
    assert.equal((await post(keel, chat('slow'))).status, 400, 'unknown before the reload');
    const inflight = post(keel, chat('lazy', { stream: true })); // 800 ms to its first token
    await sleep(200);
    fs.writeFileSync(keel.file, `${yaml}  - { name: slow, targets: [ { upstream: b, model: "slow-first-token:800#new" } ] }\n`);
    keel.proc.kill('SIGHUP');
    const ok = await eventually(async () => {
      const j = await (await fetch(`${keel.url}/v1/models`)).json();
      return j.data.some((m) => m.id === 'slow');
    });
    assert.ok(ok, 'the new alias is served');
    const done = await inflight;
    assert.equal(done.status, 200, 'the request in flight during the reload finished');
    assert.equal(streamedText(done.text), 'Hello from the keel simulator.');
    const r = await post(keel, chat('slow'));
    assert.equal(r.status, 200);
    assert.equal(targetStatus(await status(), 'allopen', '503#x').breaker, 'open', 'breaker state kept');
    assert.equal((await status()).reloads, 1);
  });

  test('a bad config is refused, logged, and the old one kept', async () => {
    const good = fs.readFileSync(keel.file, 'utf8');
    fs.writeFileSync(keel.file, `${good.replace('cooldown: 1s', 'cooldown: soon')}\ncolour: blue\n`);
    keel.proc.kill('SIGHUP');
    // every error of the file, in file order, as keel check lists them
    const logged = await eventually(() => /reload refused, the running config stays: 2 errors\n[^\n]*defaults\.breaker\.cooldown: bad duration "soon"[^\n]*\n[^\n]*colour: unknown key/.test(keel.log()));
    assert.ok(logged, keel.log());
    assert.equal((await post(keel, chat('slow'))).status, 200, 'still serving the old config');
    const st = await status();
    assert.equal(st.reload_failures, 1);
    assert.equal(st.reloads, 1);
    fs.writeFileSync(keel.file, good);
  });
});

// A client that gives itself 200 ms (x-keel-timeout) against a target that needs 600 ms gets
// its 504, but the target did nothing wrong: within its own first_byte, it keeps a closed
// breaker (failures: 1 here, so one blamed attempt would open it for an hour).
test("a client's short x-keel-timeout is not held against the upstream's breaker", async () => {
  const r = await post(keel, chat('patient'), { headers: { 'x-keel-timeout': '200ms' } });
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.text).error.code, 'deadline_exceeded');
  assert.deepEqual(attemptsOf(r).map((a) => [a.who, a.class]), [['a/slow-first-token:600#patient', 'deadline_exceeded']]);
  const again = await post(keel, chat('patient'));
  assert.equal(again.status, 200);
  assert.equal(again.headers.get('x-keel-upstream'), 'a', 'the breaker stayed closed');
  assert.deepEqual(attemptsOf(again).map((a) => a.class), ['ok']);
});
