// failure.test.mjs - the failure policy (issue 4) against real keel and keel sim processes, each
// case stream and non-stream: deadlines (first_byte, stall, total, the client's x-keel-timeout),
// same-target retries, Retry-After, context_length routing. Every case asserts the status, who
// answered, how often each target was hit, and that the answer came within the configured
// deadline plus a generous margin (exact timing accuracy is measured in bench/, not here).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, beforeEach, describe, test } from 'node:test';
import { attemptsOf, chat, eventually, hits, post, simStats, sseData, startKeel, startSim, stop, streamedText, tmpdir } from './lib.mjs';

const MARGIN = 1500; // ms on top of a deadline: generous for a loaded CI machine and sanitizers

const CONFIG = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults:
  timeouts: { connect: 1s, first_byte: 1s, stall: 1s, total: 20s }
  retry: { same_target: 0, backoff: 10ms, max_wait: 2s }
  breaker: { failures: 1000 } # the same targets fail in every case; breakers are tested apart
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
  - { name: c, base_url: "{SIM}" }
models:
  # seed 000: an upstream that accepts and never answers
  - { name: hang, targets: [ { upstream: a, model: hang }, { upstream: b, model: healthy } ] }
  - { name: silence, targets: [ { upstream: a, model: headers-then-silence }, { upstream: b, model: healthy } ] }
  # seed 001: kept alive by heartbeats, no tokens
  - { name: heartbeat, targets: [ { upstream: a, model: "heartbeat-only:200" }, { upstream: b, model: healthy } ] }
  - { name: slowfirst, targets: [ { upstream: a, model: "slow-first-token:4000" }, { upstream: b, model: healthy } ] }
  - { name: stall, targets: [ { upstream: a, model: "stall-after:2" }, { upstream: b, model: healthy } ] }
  # seed 000: retry-same-then-die becomes retry-then-fail-over
  - { name: storm, targets: [ { upstream: a, model: "503", retry: { same_target: 2 } }, { upstream: b, model: healthy } ] }
  - { name: heal, targets: [ { upstream: a, model: "fail-then-heal:1", retry: { same_target: 1 } }, { upstream: b, model: healthy } ] }
  - { name: ratewait, targets: [ { upstream: a, model: "rate-limit-then-heal:1" }, { upstream: b, model: healthy } ] }
  # a 429 cools its target for Retry-After, so each mode gets targets of its own (#s)
  - { name: ratelong, targets: [ { upstream: a, model: "429:10" }, { upstream: b, model: healthy } ] }
  - { name: ratelong-s, targets: [ { upstream: a, model: "429:10#s" }, { upstream: b, model: healthy } ] }
  - name: rateall
    targets:
      - { upstream: a, model: "429:3", retry: { max_wait: 1s } }
      - { upstream: b, model: "429:2", retry: { max_wait: 1s } }
  - name: rateall-s
    targets:
      - { upstream: a, model: "429:3#s", retry: { max_wait: 1s } }
      - { upstream: b, model: "429:2#s", retry: { max_wait: 1s } }
  - { name: total, targets: [ { upstream: a, model: hang, timeouts: { first_byte: 10s, total: 1500ms } }, { upstream: b, model: healthy } ] }
  - { name: long, targets: [ { upstream: a, model: hang, timeouts: { first_byte: 15s } }, { upstream: b, model: healthy } ] }
  - { name: slowtotal, targets: [ { upstream: a, model: "slow-tokens:400", timeouts: { total: 1200ms } } ] }
  - name: bigctx
    targets:
      - { upstream: a, model: context-length, context_window: 8k }
      - { upstream: b, model: healthy }
      - { upstream: c, model: "slow-first-token:10", context_window: 128k }
  - { name: smallctx, targets: [ { upstream: a, model: context-length, context_window: 8k }, { upstream: b, model: healthy } ] }
  - { name: garbage, targets: [ { upstream: a, model: malformed-chunk, stream_upstream: false }, { upstream: b, model: healthy } ] }
`;

let sim;
let keel;
const reset = () => fetch(`${sim.url}/sim/reset`, { method: 'POST' });

before(async () => {
  sim = await startSim();
  keel = await startKeel(CONFIG, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

async function timed(model, opts = {}, headers = {}) {
  const t0 = performance.now();
  const r = await post(keel, chat(model, opts), { headers });
  r.ms = performance.now() - t0;
  r.attempts = attemptsOf(r);
  return r;
}

function answeredBy(r, stream, upstream) {
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('x-keel-upstream'), upstream);
  const text = stream ? streamedText(r.text) : JSON.parse(r.text).choices[0].message.content;
  assert.equal(text, 'Hello from the keel simulator.');
}

for (const stream of [false, true]) {
  describe(stream ? 'stream' : 'non-stream', () => {
    beforeEach(reset);

    for (const [alias, simModel] of [
      ['hang', 'hang'], ['silence', 'headers-then-silence'], ['heartbeat', 'heartbeat-only:200'],
      ['slowfirst', 'slow-first-token:4000'],
    ]) {
      test(`${simModel}: first_byte fails over at once, the target is not retried`, async () => {
        const r = await timed(alias, { stream });
        answeredBy(r, stream, 'b');
        assert.deepEqual(r.attempts.map((a) => a.class), ['first_byte_timeout', 'ok']);
        assert.ok(r.ms >= 900 && r.ms < 1000 + MARGIN, `${r.ms} ms`);
        const s = await simStats(sim);
        assert.equal(hits(s, simModel), 1);
        assert.equal(hits(s, 'healthy'), 1);
      });
    }

    test('503 is retried on the same target up to same_target, then failed over', async () => {
      const r = await timed('storm', { stream });
      answeredBy(r, stream, 'b');
      assert.deepEqual(r.attempts.map((a) => a.class), ['server_error', 'server_error', 'server_error', 'ok']);
      assert.equal(hits(await simStats(sim), '503'), 3);
      assert.ok(r.ms < MARGIN);
    });

    test('a target that heals within its retries answers itself', async () => {
      const r = await timed('heal', { stream });
      answeredBy(r, stream, 'a');
      const s = await simStats(sim);
      assert.equal(hits(s, 'fail-then-heal:1'), 2);
      assert.equal(hits(s, 'healthy'), 0);
    });

    test('429 with a Retry-After that fits is waited for on the same target', async () => {
      const r = await timed('ratewait', { stream });
      answeredBy(r, stream, 'a');
      assert.deepEqual(r.attempts.map((a) => a.class), ['rate_limited', 'ok']);
      assert.ok(r.ms >= 900 && r.ms < 1000 + MARGIN, `${r.ms} ms`);
      assert.equal(hits(await simStats(sim), 'healthy'), 0);
    });

    test('429 with a Retry-After past max_wait moves on at once', async () => {
      const r = await timed(stream ? 'ratelong-s' : 'ratelong', { stream });
      answeredBy(r, stream, 'b');
      assert.deepEqual(r.attempts.map((a) => a.class), ['rate_limited', 'ok']);
      assert.ok(r.ms < 800, `${r.ms} ms`);
      assert.equal(hits(await simStats(sim), stream ? '429:10#s' : '429:10'), 1);
    });

    test('every target rate-limited: 429 with the smallest Retry-After', async () => {
      const r = await timed(stream ? 'rateall-s' : 'rateall', { stream });
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), '2');
      const j = JSON.parse(r.text);
      assert.equal(j.error.code, 'rate_limited');
      assert.ok(j.error.attempts.every((a) => a.class === 'rate_limited'));
      assert.ok(r.ms < 1000 + MARGIN, `${r.ms} ms`);
    });

    test('total runs out: 504 in the envelope, never much later than total', async () => {
      const r = await timed('total', { stream });
      assert.equal(r.status, 504);
      const j = JSON.parse(r.text);
      assert.equal(j.error.code, 'deadline_exceeded');
      // a, still within its own first_byte, is not blamed for the spent budget
      assert.deepEqual(j.error.attempts.map((a) => [a.upstream, a.class]), [['a', 'deadline_exceeded']]);
      assert.ok(r.ms >= 1400 && r.ms < 1500 + MARGIN, `${r.ms} ms`);
      assert.equal(hits(await simStats(sim), 'healthy'), 0);
    });

    test('x-keel-timeout shortens the budget, never lengthens it', async () => {
      let r = await timed('long', { stream }, { 'x-keel-timeout': '800ms' });
      assert.equal(r.status, 504);
      assert.ok(r.ms >= 700 && r.ms < 800 + MARGIN, `${r.ms} ms`);
      r = await timed('total', { stream }, { 'x-keel-timeout': '60' }); // 60 s asked, 1.5 s configured
      assert.equal(r.status, 504);
      assert.ok(r.ms < 1500 + MARGIN, `${r.ms} ms`);
      // a value too long to be a duration is refused whole, never read cut short (the first 31
      // bytes of this one say 5 s)
      for (const v of ['soon', `${'0'.repeat(30)}5ms`]) {
        r = await timed('long', { stream }, { 'x-keel-timeout': v });
        assert.equal(r.status, 400, v);
        assert.equal(JSON.parse(r.text).error.code, 'invalid_timeout');
      }
    });

    test('context_length fails over only to a target with a larger declared window', async () => {
      const r = await timed('bigctx', { stream });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-keel-upstream'), 'c');
      assert.deepEqual(r.attempts.map((a) => a.class), ['context_length', 'ok']);
      const s = await simStats(sim);
      assert.equal(hits(s, 'healthy'), 0, 'the target without a larger window is skipped');
      const small = await timed('smallctx', { stream });
      assert.equal(small.status, 400);
      assert.equal(JSON.parse(small.text).error.code, 'context_length_exceeded');
      assert.equal(hits(await simStats(sim), 'healthy'), 0);
    });
  });
}

describe('stall', () => {
  beforeEach(reset);

  test('stream: a stall after the commit point ends with an error event, no [DONE], no failover', async () => {
    const r = await timed('stall', { stream: true });
    assert.equal(r.status, 200);
    const data = sseData(r.text);
    assert.ok(!data.includes('[DONE]'));
    assert.equal(JSON.parse(data.at(-1)).error.code, 'stall_timeout');
    assert.equal(streamedText(data.slice(0, -1).map((d) => `data: ${d}`).join('\n\n')), 'Hello from');
    assert.ok(r.ms < 1000 + MARGIN, `${r.ms} ms`);
    assert.equal(hits(await simStats(sim), 'healthy'), 0);
  });

  test('non-stream: a body that stops mid-way is a stall_timeout, failed over invisibly', async () => {
    const r = await timed('stall', { stream: false });
    answeredBy(r, false, 'b');
    assert.deepEqual(r.attempts.map((a) => a.class), ['stall_timeout', 'ok']);
    assert.ok(r.ms < 1000 + MARGIN, `${r.ms} ms`);
  });

  test('stream: total runs out after the commit point: an error event, not a truncated answer', async () => {
    const r = await timed('slowtotal', { stream: true });
    assert.equal(r.status, 200);
    const data = sseData(r.text);
    assert.ok(!data.includes('[DONE]'));
    assert.equal(JSON.parse(data.at(-1)).error.code, 'deadline_exceeded');
    assert.ok(r.ms >= 1100 && r.ms < 1200 + MARGIN, `${r.ms} ms`);
    // the upstream was streaming within its own stall: the spent budget is not held against it
    const metrics = await (await fetch(`${keel.adminUrl}/metrics`)).text();
    assert.match(metrics, /^keel_attempts_total\{upstream="a",model="slow-tokens:400",class="deadline_exceeded"\} 1$/m);
    assert.doesNotMatch(metrics, /model="slow-tokens:400",class="stall_timeout"/);
  });

  test('non-stream: a malformed body is a failure of that attempt', async () => {
    const r = await timed('garbage', { stream: false });
    answeredBy(r, false, 'b');
    assert.deepEqual(r.attempts.map((a) => a.class), ['empty_response', 'ok']);
  });
});

describe('gateway_busy', () => {
  test('past max_inflight a request gets an immediate 503 and reaches no upstream', async () => {
    const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
max_inflight: 2
defaults: { timeouts: { first_byte: 3s } }
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: m, targets: [ { upstream: a, model: "hang#busy" } ] } ]
`, sim);
    try {
      const held = [post(k, chat('m')), post(k, chat('m'))];
      await eventually(async () => hits(await simStats(sim), 'hang#busy') === 2);
      const t0 = performance.now();
      const r = await post(k, chat('m'));
      assert.equal(r.status, 503);
      assert.equal(JSON.parse(r.text).error.code, 'gateway_busy');
      assert.equal(r.headers.get('retry-after'), '1');
      assert.ok(performance.now() - t0 < 500);
      assert.equal(hits(await simStats(sim), 'hang#busy'), 2, 'the third never reached the upstream');
      for (const h of await Promise.all(held)) assert.equal(h.status, 502); // first_byte on the only target
    } finally {
      await stop(k);
    }
  });
});

test('a long chain: every attempt is listed, in the header and the audit line, past the first few', async () => {
  const log = `${tmpdir()}/audit.jsonl`;
  const bad = ['503#c1', '500#c2', '502#c3', '503#c4', '500#c5', '502#c6'];
  const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${log}
defaults: { breaker: { failures: 1000 } }
upstreams: [ { name: a, base_url: "{SIM}" } ]
models:
  - name: long
    targets: [ ${bad.map((m) => `{ upstream: a, model: "${m}" }`).join(', ')}, { upstream: a, model: healthy } ]
`, sim);
  try {
    const r = await post(k, chat('long'));
    assert.equal(r.status, 200, r.text);
    const want = ['server_error', 'server_error', 'server_error', 'server_error', 'server_error', 'server_error', 'ok'];
    assert.deepEqual(attemptsOf(r).map((a) => a.class), want);
    await stop(k);
    const rec = JSON.parse(fs.readFileSync(log, 'utf8').trim().split('\n').at(-1));
    assert.deepEqual(rec.attempts.map((a) => a.class), want);
    assert.deepEqual(rec.attempts.map((a) => a.model), [...bad, 'healthy']);
  } finally {
    await stop(k);
  }
});
