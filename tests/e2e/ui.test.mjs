// ui.test.mjs - the status page (GET /ui) loaded in headless Chromium (Debian's package) against
// a live keel: its numbers are checked against /admin/status in the rendered DOM, and a
// screenshot is kept in tests/e2e/artifacts/. The same page as a `keel audit --html` report.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { KEEL, chat, post, startKeel, startSim, stop, tmpdir } from './lib.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;

let sim;
let keel;
let dir;

// the page after its script ran, as Chromium rendered it
function browse(url, extra = []) {
  const profile = fs.mkdtempSync(path.join(dir, 'chromium-'));
  const r = spawnSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`,
    '--virtual-time-budget=4000', ...(extra.length ? extra : ['--dump-dom']), url], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const byId = (dom, id) => {
  const m = dom.match(new RegExp(`id="${id}"[^>]*>([^<]*)<`));
  return m ? m[1] : undefined;
};

function fmt(ms) { // as the page writes durations
  if (ms < 1000) return `${ms}ms`;
  if (ms < 600000) return `${(ms / 1000).toFixed(1)}s`;
  return `${(ms / 60000).toFixed(1)}m`;
}

before(async () => {
  dir = tmpdir();
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${path.join(dir, 'audit.jsonl')}
cliff: 5s
cliff_margin: 1s
defaults: { breaker: { failures: 2, cooldown: 60s } }
upstreams: [ { name: a, base_url: "{SIM}" }, { name: b, base_url: "{SIM}" } ]
models:
  - { name: desk, targets: [ { upstream: a, model: "503" }, { upstream: b, model: "slow-first-token:200" } ] }
  - { name: chat, targets: [ { upstream: a, model: healthy } ] }
`, sim);
  for (let i = 0; i < 5; i++) {
    await post(keel, chat('desk'));
    await post(keel, chat('chat', { stream: true }));
  }
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

test('GET /ui in headless Chromium shows the live numbers, breakers and the cliff', async () => {
  const page = await fetch(`${keel.adminUrl}/ui`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  const html = await page.text();
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=["']?https?:/, 'self-contained: no CDN');
  const dom = browse(`${keel.adminUrl}/ui`);
  const status = await (await fetch(`${keel.adminUrl}/admin/status`)).json();
  const desk = status.models.find((m) => m.name === 'desk');
  for (const q of ['p50', 'p90', 'p99', 'max']) {
    assert.equal(byId(dom, `m-desk-${q}`), fmt(desk.cliff.duration_ms[q]), q);
  }
  assert.ok(desk.cliff.duration_ms.p50 >= 200);
  assert.equal(byId(dom, 'm-desk-failovers'), String(desk.failovers));
  assert.equal(byId(dom, 't-desk-0-breaker'), 'open');
  assert.equal(byId(dom, 't-desk-1-breaker'), 'closed');
  assert.equal(byId(dom, 'cliff-desk'), 'clear of its cliff (5.0s)');
  assert.match(dom, /<svg[^>]*id="chart-desk-duration"/);
  assert.match(dom, /class="cliff-line"/, 'the cliff is drawn on the chart');
  assert.match(dom, /class="series-p99"/);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const shot = path.join(ARTIFACTS, 'ui.png');
  browse(`${keel.adminUrl}/ui`, ['--window-size=1280,1000', `--screenshot=${shot}`]);
  assert.ok(fs.statSync(shot).size > 10000, 'a screenshot was taken');
});

test('keel audit --html writes the same page from the audit log', async () => {
  await stop(keel);
  const out = path.join(dir, 'report.html');
  const r = spawnSync(KEEL, ['audit', path.join(dir, 'audit.jsonl'), '--html', out, '--cliff', '5s', '--margin', '1s'],
    { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(spawnSync(KEEL, ['audit', path.join(dir, 'audit.jsonl'), '--json'], { encoding: 'utf8' }).stdout);
  const dom = browse(`file://${out}`);
  assert.match(dom, /audit report: \d+ lines/);
  const desk = json.models.find((m) => m.model === 'desk');
  assert.equal(byId(dom, 'm-desk-p99'), fmt(desk.ms.p99));
  assert.equal(byId(dom, 'm-desk-failovers'), String(desk.failovers));
  assert.match(dom, /id="chart-chat-duration"/);
  assert.match(dom, /class="cliff-line"/);
  browse(`file://${out}`, ['--window-size=1280,1000', `--screenshot=${path.join(ARTIFACTS, 'report.png')}`]);
});
