// ui.test.mjs - the status page (GET /ui) and `keel audit --html`, rendered by headless Chromium
// (Debian's package, driven over the DevTools pipe: browser.mjs) against a live keel whose models
// are in the states an operator must tell apart: healthy, failing everything (both breakers
// open), failing over, near its cliff, idle, and one whose breaker is half-open with its probe
// out. What the page says and how it colours each is read from the rendered DOM and checked
// against /admin/status and `keel audit --json`; it must fit 1280 px and a 390 px phone without
// sideways scrolling. Screenshots at both widths go to tests/e2e/artifacts/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openBrowser } from './browser.mjs';
import { KEEL, chat, eventually, post, sleep, startKeel, startSim, stop, tmpdir } from './lib.mjs';

const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;
const COLOURS = { failing: 'rgb(220, 38, 38)', degraded: 'rgb(217, 119, 6)', healthy: 'rgb(22, 163, 74)',
  idle: 'rgb(107, 114, 128)' };
const sha = (k) => createHash('sha256').update(k).digest('hex');
const AGENT = { authorization: 'Bearer sk-ui-agent' };

let sim;
let keel;
let dir;
let browser;
let hold; // an upstream that fails twice, then holds every request: a probe that stays out
const held = [];

function dur(ms) { // as the page writes a duration
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}
const share = (x) => (x == null ? '–' : `${(x * 100).toFixed(x >= 0.9995 || x === 0 ? 0 : 1)}%`);

// what the page shows of each model, target, key and backend, read in the page
function readPage() {
  const text = (e) => (e ? e.textContent.trim() : null);
  const colour = (e) => (e ? getComputedStyle(e).backgroundColor : null);
  const cells = (tr) => Object.fromEntries([...tr.querySelectorAll('[data-k]')].map((c) => [c.dataset.k, text(c)]));
  const models = {};
  for (const tr of document.querySelectorAll('#models-table tr.model-row')) {
    const name = tr.id.slice('row-'.length);
    const card = document.getElementById(`model-${name}`);
    models[name] = {
      row: { state: tr.dataset.state, badge: text(tr.querySelector('.badge')), colour: colour(tr.querySelector('.badge')),
        bar: getComputedStyle(tr.firstElementChild).borderLeftColor, ...cells(tr) },
      card: card && { state: card.dataset.state, badge: text(document.getElementById(`state-${name}`)),
        reasons: text(document.getElementById(`reasons-${name}`)), reasonsColour: getComputedStyle(document.getElementById(`reasons-${name}`)).color,
        facts: text(document.getElementById(`facts-${name}`)), cliff: text(document.getElementById(`cliff-${name}`)),
        cliffLine: !!card.querySelector(`#chart-${name}-duration .cliff-line`),
        ticks: [...card.querySelectorAll(`#chart-${name}-duration .tick`)].map(text),
        series: card.querySelectorAll(`#chart-${name}-duration path`).length,
        targets: [...card.querySelectorAll('tr[id^="t-"]')].map((t) => ({ ...cells(t), state: t.dataset.breaker,
          badge: text(t.querySelector('.badge')), colour: colour(t.querySelector('.badge')) })) },
    };
  }
  const rows = (sel) => Object.fromEntries([...document.querySelectorAll(sel)].map((tr) => [tr.id, cells(tr)]));
  const overflowing = [...document.querySelectorAll('.card, .scroll')].filter((e) => e.scrollWidth > e.clientWidth + 1)
    .map((e) => e.id || e.firstElementChild?.id || e.className);
  return {
    mode: text(document.getElementById('mode')), summary: text(document.querySelector('#summary h2')),
    chips: [...document.querySelectorAll('#summary .chip')].map(text),
    problems: [...document.querySelectorAll('#problems li')].map((li) => li.dataset.model || li.dataset.backend || li.dataset.shared),
    none: text(document.getElementById('problems-none')), local: text(document.getElementById('local')),
    models, keys: rows('#keys-table tr[id]'), backends: rows('#backends-table tr[id]'),
    events: [...document.querySelectorAll('#events li')].map((li) => li.dataset.type),
    width: document.documentElement.scrollWidth, overflowing,
  };
}

async function look(url, width, shot) {
  const page = await browser.open(url, { width, height: 900 });
  try {
    await page.waitFor('document.body.dataset.rendered');
    const seen = await page.evaluate(readPage);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot(path.join(ARTIFACTS, shot));
    return seen;
  } finally {
    await page.close();
  }
}

before(async () => {
  dir = tmpdir();
  sim = await startSim();
  let n = 0;
  hold = http.createServer((req, res) => {
    req.resume();
    if (++n <= 2) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"down","type":"server_error"}}');
    } else {
      held.push(res);
    }
  });
  await new Promise((r) => hold.listen(0, '127.0.0.1', r));
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${path.join(dir, 'audit.jsonl')}
drain_timeout: 1s
cliff: 3s
cliff_margin: 1s
defaults: { breaker: { failures: 2, cooldown: 60s } }
keys:
  - { name: agent, sha256: ${sha('sk-ui-agent')} }
  - { name: tight, sha256: ${sha('sk-ui-tight')}, rpm: 1 }
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
  - { name: hold, base_url: "http://127.0.0.1:${hold.address().port}/v1" }
  - name: local
    base_url: "http://127.0.0.1:{port}/v1"
    managed: { command: ["${KEEL}", sim, --listen, "127.0.0.1:{port}"], start_timeout: 10s }
models:
  - { name: steady, targets: [ { upstream: a, model: healthy } ] }
  - { name: broken, targets: [ { upstream: a, model: "503" }, { upstream: b, model: "500" } ] }
  - { name: fallback, targets: [ { upstream: a, model: "502" }, { upstream: b, model: healthy } ] }
  - { name: slowpoke, targets: [ { upstream: a, model: "slow-first-token:2500" } ] }
  - name: probing
    targets: [ { upstream: hold, model: m, timeouts: { first_byte: 60s }, breaker: { cooldown: 300ms, probe: request } } ]
  - { name: onbox, targets: [ { upstream: local, model: healthy } ] }
  - { name: quiet, targets: [ { upstream: a, model: healthy } ] }
`, sim);
  for (let i = 0; i < 6; i++)
    for (const m of ['steady', 'broken', 'fallback', 'onbox']) await post(keel, chat(m), { headers: AGENT });
  await post(keel, chat('slowpoke'), { headers: AGENT });
  await post(keel, chat('steady'), { headers: { authorization: 'Bearer sk-ui-tight' } });
  const limited = await post(keel, chat('steady'), { headers: { authorization: 'Bearer sk-ui-tight' } });
  assert.equal(limited.status, 429, 'the tight key is over its rpm: refused by keel, not the model\'s fault');
  for (let i = 0; i < 2; i++) await post(keel, chat('probing'), { headers: AGENT });
  await sleep(400);
  post(keel, chat('probing'), { headers: AGENT }).catch(() => {}); // the probe, held
  const status = async () => (await fetch(`${keel.adminUrl}/admin/status`)).json();
  assert.ok(await eventually(async () => (await status()).models.find((m) => m.name === 'probing').targets[0].probe.in_flight));
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  for (const res of held) res.destroy();
  await stop(keel);
  await stop(sim);
  hold.close();
});

test('GET /ui: what is wrong right now, worded and coloured, equal to /admin/status, at 1280 and 390 px', async () => {
  const html = await (await fetch(`${keel.adminUrl}/ui`)).text();
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=["']?https?:|@import|url\(/, 'self-contained: nothing to fetch');
  const wide = await look(`${keel.adminUrl}/ui`, 1280, 'ui-1280.png');
  const status = await (await fetch(`${keel.adminUrl}/admin/status`)).json();
  const by = Object.fromEntries(status.models.map((m) => [m.name, m]));
  const want = { steady: 'healthy', broken: 'failing', fallback: 'degraded', slowpoke: 'degraded', probing: 'failing',
    onbox: 'healthy', quiet: 'idle' };
  for (const [name, state] of Object.entries(want)) {
    const seen = wide.models[name], m = by[name];
    assert.equal(m.health.state, state, `${name}: keel's own verdict`);
    assert.equal(seen.row.state, state, name);
    assert.equal(seen.row.badge, state, `${name}: worded`);
    assert.equal(seen.row.colour, COLOURS[state], `${name}: coloured`);
    assert.equal(seen.row.bar, COLOURS[state], `${name}: the row's bar`);
    assert.equal(seen.row.requests, String(m.health.requests), name);
    assert.equal(seen.row.share, share(m.health.success_share), name);
    assert.equal(seen.row.errors, String(m.health.requests - m.health.ok - m.health.local), name);
    assert.equal(seen.row.failovers, String(m.health.failovers), name);
    assert.equal(seen.row.p99, m.cliff.count ? dur(m.cliff.duration_ms.p99) : '–', name);
    if (state === 'idle') {
      assert.equal(seen.card, null, 'an idle model with nothing open has a row, no card');
      continue;
    }
    assert.equal(seen.card.badge, state);
    assert.equal(seen.card.reasons, m.health.reasons);
    assert.equal(seen.card.reasonsColour, COLOURS[state]);
  }
  // the model that answers nothing is red and says why, whatever its latency
  assert.match(wide.models.broken.card.reasons, /^6 of 6 requests failed \(.*\); every target's breaker is open/);
  assert.equal(wide.models.broken.row.share, '0%');
  assert.match(wide.models.fallback.card.reasons, /6 requests failed over|failed over/);
  assert.equal(wide.models.fallback.row.share, '100%');
  assert.match(wide.models.slowpoke.card.reasons, /near its cliff/);
  assert.equal(wide.models.slowpoke.card.cliff, `near its cliff: worst ${dur(by.slowpoke.cliff.duration_ms.max)}, cliff 3.0 s`);
  assert.ok(wide.models.slowpoke.card.cliffLine, 'a cliff within view is drawn');
  assert.ok(wide.models.slowpoke.card.ticks.every((t) => / s$/.test(t)), `one unit: ${wide.models.slowpoke.card.ticks}`);
  // a fast model's chart is scaled to its data: no cliff line flattening it, the margin in words
  assert.equal(wide.models.steady.card.cliffLine, false);
  assert.ok(wide.models.steady.card.ticks.every((t) => / ms$/.test(t)), `one unit: ${wide.models.steady.card.ticks}`);
  assert.match(wide.models.steady.card.cliff, /^\d+(\.\d)? s below its 3\.0 s cliff$/);
  assert.equal(wide.models.steady.card.series, 4, 'p50, p90, p99, max');
  // breakers and what comes next; skipped apart from failed
  const [p503, p500] = wide.models.broken.card.targets;
  const [t503] = by.broken.targets;
  assert.equal(p503.badge, 'open');
  assert.equal(p503.colour, COLOURS.failing);
  assert.match(p503.next, /^probing in \d+ s$/, 'keel probes it itself when its cooldown is over');
  assert.equal(p503.sent, String(t503.counts.sent));
  assert.equal(p503.failed, String(t503.counts.failed));
  assert.equal(p503.skipped, String(t503.counts.skipped));
  assert.ok(t503.counts.skipped > 0 && t503.counts.failed === 2, JSON.stringify(t503.counts));
  assert.equal(p500.badge, 'open');
  assert.equal(p503.p99, '–', 'no answer: a dash, not 0 ms');
  const [probe] = wide.models.probing.card.targets;
  assert.equal(probe.state, 'half_open');
  assert.equal(probe.badge, 'half-open');
  assert.equal(probe.colour, COLOURS.degraded);
  assert.equal(probe.next, 'probe in flight');
  const [fb, fbOk] = wide.models.fallback.card.targets;
  assert.equal(fb.badge, 'open');
  assert.equal(fbOk.badge, 'closed');
  assert.equal(fbOk.next, 'taking traffic');
  // the summary: counts, then what is wrong, worst first (the key's refusal is no model's fault:
  // steady stays healthy)
  assert.equal(wide.summary.startsWith('What is wrong right now'), true);
  assert.deepEqual(wide.chips, ['2 failing', '2 degraded', '2 healthy', '1 idle']);
  assert.deepEqual(wide.problems, ['broken', 'probing', 'fallback', 'slowpoke']);
  // keys, the managed backend, the latest events
  assert.equal(wide.keys['k-agent'].requests, String(status.keys.find((k) => k.name === 'agent').requests));
  assert.equal(wide.keys['k-tight'].refused, '1');
  assert.equal(wide.backends['b-local'].state, 'ready');
  assert.match(wide.backends['b-local'].where, /^port \d+, pid \d+$/);
  assert.equal(wide.events.length, status.events.recent.length);
  assert.ok(wide.events.includes('breaker'));
  // it fits: no sideways scrolling at 1280, nor on a phone
  assert.ok(wide.width <= 1280, `page ${wide.width} px wide at 1280`);
  assert.deepEqual(wide.overflowing, [], 'nothing overflows its card at 1280');
  const phone = await look(`${keel.adminUrl}/ui`, 390, 'ui-390.png');
  assert.ok(phone.width <= 390, `page ${phone.width} px wide at 390`);
  assert.deepEqual(phone.overflowing, [], 'nothing overflows its card at 390');
  assert.equal(phone.models.broken.row.badge, 'failing');
  assert.deepEqual(phone.chips, wide.chips);
});

test('keel audit --html: the same views over the log, equal to keel audit --json, at 1280 and 390 px', async () => {
  for (const res of held) res.destroy();
  await stop(keel);
  const log = path.join(dir, 'audit.jsonl');
  const out = path.join(dir, 'report.html');
  const r = spawnSync(KEEL, ['audit', log, '--html', out, '--cliff', '3s', '--margin', '1s'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(spawnSync(KEEL, ['audit', log, '--json', '--cliff', '3s', '--margin', '1s'],
    { encoding: 'utf8' }).stdout);
  const wide = await look(`file://${out}`, 1280, 'report-1280.png');
  assert.match(wide.mode, new RegExp(`^audit report: ${json.lines} lines$`));
  const day = json.span.from.slice(0, 10);
  assert.ok(wide.summary.startsWith(`What went wrong, ${day} ${json.span.from.slice(11, 19)} to `), wide.summary);
  assert.equal(Object.keys(wide.models).length, json.models.length);
  for (const m of json.models) {
    const seen = wide.models[m.model];
    assert.ok(seen, m.model);
    assert.equal(seen.row.state, m.health.state, m.model);
    assert.equal(seen.row.colour, COLOURS[m.health.state], m.model);
    assert.equal(seen.row.requests, String(m.requests), m.model);
    assert.equal(seen.row.share, share(m.health.success_share), m.model);
    assert.equal(seen.row.failovers, String(m.failovers), m.model);
    assert.equal(seen.row.p99, dur(m.ms.p99), m.model);
    if (m.health.state !== 'idle') {
      assert.equal(seen.card.reasons, m.health.reasons, m.model);
      assert.match(seen.card.facts, new RegExp(`${m.hangs} hung past 2\\.0 min`), m.model);
    }
  }
  const by = Object.fromEntries(json.models.map((m) => [m.model, m]));
  assert.equal(by.broken.health.state, 'failing');
  assert.equal(by.steady.health.state, 'healthy');
  assert.equal(by.slowpoke.health.state, 'degraded');
  assert.equal(by.steady.health.local, 1, "the tight key's 429 is in steady's records");
  assert.match(wide.local, /^1 request refused by keel .*not counted against any model/);
  assert.match(wide.models.broken.card.facts, /errors: /);
  assert.ok(wide.models.slowpoke.card.cliffLine);
  assert.equal(wide.models.steady.card.cliffLine, false);
  for (const [name, k] of Object.entries(json.keys)) {
    assert.equal(wide.keys[`k-${name}`].requests, String(k.requests), name);
    assert.equal(wide.keys[`k-${name}`].refused, String(k.refused), name);
    assert.equal(wide.keys[`k-${name}`].p99, k.ms.count ? dur(k.ms.p99) : '–', name);
  }
  assert.ok(wide.width <= 1280);
  assert.deepEqual(wide.overflowing, []);
  const phone = await look(`file://${out}`, 390, 'report-390.png');
  assert.ok(phone.width <= 390, `page ${phone.width} px wide at 390`);
  assert.deepEqual(phone.overflowing, []);
});
