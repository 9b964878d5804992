// demo.test.mjs - `keel demo` is the README's first command: it must run to the end, show each
// seed's failure handled, and exit 0.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { KEEL } from './lib.mjs';

test('keel demo runs every scenario as promised and exits 0', () => {
  const r = spawnSync(KEEL, ['demo'], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.ok(!r.stdout.includes('UNEXPECTED'), r.stdout);
  for (const row of ['hangs, never answers (000)', 'heartbeats, no tokens (001)', 'Anthropic pings, no tokens (001)', '503 storm (000)',
    "the client's own 400 (003)"]) {
    assert.ok(r.stdout.includes(row), `missing row: ${row}`);
  }
  assert.match(r.stdout, /first_byte_timeout > ok\s+3\.\d\ds\s+200 backup/);
  // a stream cut mid-answer is finished on the backup: the client's text whole, exactly once
  assert.match(r.stdout, /cut mid-stream \(000\)\s+stream\s+reset > continued: whole, once\s+\S+\s+200 backup/);
  // seed 001 as it happened: the Anthropic primary's pings bought it nothing
  assert.match(r.stdout, /Anthropic pings, no tokens \(001\)\s+stream\s+.*first_byte_timeout > ok\s+3\.\d\ds\s+200 backup/);
  // and to an agent that speaks Anthropic Messages: the OpenAI backup's answer in Anthropic's events
  assert.match(r.stdout, /the same, to a Claude client \(001\)\s+stream\s+.*first_byte_timeout > ok\s+3\.\d\ds\s+200 backup/);
  // the breaker part: opened, skipped, probed, back
  assert.match(r.stdout, /skipped > ok\s+backup\s+open/);
  assert.match(r.stdout, /back in service after its first good probe/);
  // the eviction part: healed on the same port
  assert.match(r.stdout, /chat 2: 200 from local .*restarts 1/);
  assert.match(r.stdout, /never saw the eviction/);
  // seed 002 as it happened: behind a control plane, the server respawned on another port
  const before = r.stdout.match(/chat 1: 200 from lemonade .* at (http:\/\/127\.0\.0\.1:\d+\/v1)/);
  const after = r.stdout.match(/chat 2: 200 from lemonade .* URL read back: (http:\/\/127\.0\.0\.1:\d+\/v1); recoveries 1/);
  assert.ok(before && after, r.stdout);
  assert.notEqual(before[1], after[1]);
  assert.match(r.stdout, /followed it to its new port, and the chat never saw the eviction/);
  // the cliff part: warned before any request reached it
  assert.match(r.stdout, /NEAR THE CLIFF/);
  assert.match(r.stdout, /The warning fired before any request reached the cliff/);
});
