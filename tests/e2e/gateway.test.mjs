// gateway.test.mjs - keel serve in front of keel sim, both real processes on 127.0.0.1:
// pass-through, failover, the client's own errors, invalid requests, disconnects, headers,
// secrets, the commit point, admin endpoints, config checks and the SIGTERM drain.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  abandon, attemptsOf, chat, check, eventually, hits, post, simStats, sleep, sseData, startKeel, startSim, stop,
  streamedText, tmpdir,
} from './lib.mjs';

const CONFIG = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
max_body: 64k
defaults:
  breaker: { failures: 1000 } # these tests fail the same targets again and again; breakers have their own
upstreams:
  - { name: a, kind: openai, base_url: "{SIM}", api_key: sk-upstream-canary-a }
  - { name: b, kind: openai, base_url: "{SIM}", api_key: sk-upstream-canary-b }
  - { name: dead, kind: openai, base_url: "http://127.0.0.1:1/v1" }
models:
  - { name: healthy, targets: [ { upstream: a, model: healthy } ] }
  - { name: storm, targets: [ { upstream: a, model: "503" }, { upstream: b, model: healthy } ] }
  - { name: bad, targets: [ { upstream: a, model: "400" }, { upstream: b, model: healthy } ] }
  - { name: policy, targets: [ { upstream: a, model: content-policy }, { upstream: b, model: healthy } ] }
  - { name: hang, targets: [ { upstream: a, model: hang }, { upstream: b, model: healthy } ] }
  - { name: refused, targets: [ { upstream: dead, model: x }, { upstream: b, model: healthy } ] }
  - { name: allbad, targets: [ { upstream: a, model: "500" }, { upstream: b, model: "503" } ] }
  - { name: empty, targets: [ { upstream: a, model: empty-choices }, { upstream: b, model: healthy } ] }
  - { name: crash, targets: [ { upstream: a, model: error-before-content }, { upstream: b, model: healthy } ] }
  - { name: drop, targets: [ { upstream: a, model: reset-before-headers }, { upstream: b, model: healthy } ] }
  - { name: auth, targets: [ { upstream: a, model: "401" }, { upstream: b, model: healthy } ] }
  - { name: missing, targets: [ { upstream: a, model: "404" }, { upstream: b, model: healthy } ] }
  - { name: overloaded, targets: [ { upstream: a, model: "529" }, { upstream: b, model: healthy } ] }
  - { name: limited, targets: [ { upstream: a, model: "429", retry: { max_wait: 0s } }, { upstream: b, model: healthy } ] }
  - { name: limited-s, targets: [ { upstream: a, model: "429#s", retry: { max_wait: 0s } }, { upstream: b, model: healthy } ] }
  - { name: badgw, targets: [ { upstream: a, model: "502" }, { upstream: b, model: healthy } ] }
  - { name: broke, targets: [ { upstream: a, model: quota }, { upstream: b, model: healthy } ] }
  - { name: garbled, targets: [ { upstream: a, model: malformed-chunk }, { upstream: b, model: healthy } ] }
  - { name: cut, targets: [ { upstream: a, model: reset-mid-stream }, { upstream: b, model: healthy } ] }
  - { name: late-error, targets: [ { upstream: a, model: error-after-content }, { upstream: b, model: healthy } ] }
  - { name: nodone, targets: [ { upstream: a, model: no-done }, { upstream: b, model: healthy } ] }
  - { name: heal, targets: [ { upstream: a, model: "fail-then-heal:1" }, { upstream: b, model: healthy } ] }
  - { name: mirror, targets: [ { upstream: a, model: "503#m" }, { upstream: b, model: echo, stream_upstream: false } ] }
  - { name: mirror-stream, targets: [ { upstream: b, model: echo } ] }
`;

let sim;
let keel;

before(async () => {
  sim = await startSim();
  keel = await startKeel(CONFIG, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

// every test starts from zero hits (node:test runs root-level hooks only for root-level tests)
const reset = () => fetch(`${sim.url}/sim/reset`, { method: 'POST' });

const attempts = attemptsOf;

for (const stream of [false, true]) {
  const mode = stream ? 'stream' : 'non-stream';

  describe(`${mode}`, () => {
  beforeEach(reset);
    test('healthy pass-through carries the answer and the x-keel headers', async () => {
      const r = await post(keel, chat('healthy', { stream }));
      assert.equal(r.status, 200);
      assert.match(r.headers.get('x-keel-request-id'), /^[0-9a-f]{16}$/);
      assert.equal(r.headers.get('x-keel-upstream'), 'a');
      assert.equal(r.headers.get('x-keel-model'), 'healthy');
      assert.deepEqual(attempts(r).map((a) => a.class), ['ok']);
      if (stream) {
        assert.match(r.headers.get('content-type'), /^text\/event-stream/);
        assert.equal(streamedText(r.text), 'Hello from the keel simulator.');
        assert.equal(sseData(r.text).at(-1), '[DONE]');
        assert.equal(JSON.parse(sseData(r.text)[1]).model, 'healthy');
      } else {
        const j = JSON.parse(r.text);
        assert.equal(j.choices[0].message.content, 'Hello from the keel simulator.');
        assert.equal(j.model, 'healthy'); // the target model that answered
      }
      assert.equal(hits(await simStats(sim), 'healthy'), 1);
    });

    test('503 on the first target is answered by the second', async () => {
      const r = await post(keel, chat('storm', { stream }));
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-keel-upstream'), 'b');
      const a = attempts(r);
      assert.deepEqual(a.map((x) => [x.who, x.class, x.status]), [['a/503', 'server_error', '503'], ['b/healthy', 'ok', '200']]);
      const s = await simStats(sim);
      assert.equal(hits(s, '503'), 1);
      assert.equal(hits(s, 'healthy'), 1);
      assert.equal(stream ? streamedText(r.text) : JSON.parse(r.text).choices[0].message.content, 'Hello from the keel simulator.');
    });

    test("a 400 from the upstream is returned as is and the second target is never hit", async () => {
      for (const [alias, sim_model, code] of [['bad', '400', 'invalid_value'], ['policy', 'content-policy', 'content_policy_violation']]) {
        const r = await post(keel, chat(alias, { stream }));
        assert.equal(r.status, 400);
        const j = JSON.parse(r.text);
        assert.equal(j.error.code, code);
        assert.equal(r.headers.get('x-keel-upstream'), 'a');
        assert.deepEqual(attempts(r).map((x) => x.class), ['bad_request']);
        const s = await simStats(sim);
        assert.equal(hits(s, sim_model), 1);
        assert.equal(hits(s, 'healthy'), 0);
      }
    });

    test('an unknown alias is a 400 in the OpenAI envelope and reaches no upstream', async () => {
      const r = await post(keel, chat('no-such-model', { stream }));
      assert.equal(r.status, 400);
      const j = JSON.parse(r.text);
      assert.equal(j.error.code, 'model_not_found');
      assert.equal(j.error.type, 'invalid_request_error');
      assert.equal(j.error.param, null);
      assert.match(j.error.message, /no-such-model/);
      assert.ok(r.headers.get('x-keel-request-id'));
      assert.deepEqual((await simStats(sim)).hits, {});
    });

    test('a client that disconnects cancels its upstream transfer and triggers no failover', async () => {
      await abandon(keel, chat('hang', { stream }), 300);
      const s = await eventually(async () => {
        const st = await simStats(sim);
        return st.gone.hang === 1 ? st : null;
      });
      assert.ok(s, 'the simulator saw keel drop the hung request');
      assert.equal(hits(s, 'hang'), 1);
      await sleep(300);
      assert.equal(hits(await simStats(sim), 'healthy'), 0, 'no failover for a client that left');
    });

    test('connection refused fails over', async () => {
      const r = await post(keel, chat('refused', { stream }));
      assert.equal(r.status, 200);
      assert.deepEqual(attempts(r).map((x) => x.class), ['connect_error', 'ok']);
    });

    test('every target failing gives a 502 envelope listing the attempts', async () => {
      const r = await post(keel, chat('allbad', { stream }));
      assert.equal(r.status, 502);
      const j = JSON.parse(r.text);
      assert.equal(j.error.code, 'all_targets_failed');
      assert.deepEqual(j.error.attempts.map((a) => [a.upstream, a.model, a.class, a.status]), [
        ['a', '500', 'server_error', 500], ['b', '503', 'server_error', 503],
      ]);
      for (const a of j.error.attempts) assert.equal(typeof a.ms, 'number');
    });

    for (const [alias, sim_model, cls] of [
      ['empty', 'empty-choices', 'empty_response'],
      ['crash', 'error-before-content', 'stream_error'],
      ['drop', 'reset-before-headers', 'reset'],
      ['auth', '401', 'auth'],
      ['missing', '404', 'not_found'],
      ['overloaded', '529', 'overloaded'],
      // a 429 cools its target for Retry-After: each mode gets a target of its own
      [stream ? 'limited-s' : 'limited', stream ? '429#s' : '429', 'rate_limited'],
      ['badgw', '502', 'server_error'],
      ['broke', 'quota', 'quota'],
      ['heal', 'fail-then-heal:1', 'server_error'],
    ]) {
      test(`${sim_model} on the first target fails over as ${cls}`, async () => {
        const r = await post(keel, chat(alias, { stream }));
        assert.equal(r.status, 200);
        assert.deepEqual(attempts(r).map((x) => x.class), [cls, 'ok']);
        assert.equal(r.headers.get('x-keel-upstream'), 'b');
        const s = await simStats(sim);
        if (sim_model === 'reset-before-headers') {
          // a pooled connection that dies before any byte looks like an idle keep-alive the peer
          // closed: libcurl retries it once on a fresh connection, which is right for stale pools
          assert.ok(hits(s, sim_model) >= 1 && hits(s, sim_model) <= 2);
        } else {
          assert.equal(hits(s, sim_model), 1);
        }
        assert.equal(hits(s, 'healthy'), 1);
      });
    }

    test("the upstream's api_key goes upstream; the client's Authorization never does", async () => {
      const r = await post(keel, chat('storm', { stream }), { headers: { authorization: 'Bearer sk-client-canary' } });
      assert.equal(r.status, 200);
      const s = await simStats(sim);
      assert.equal(s.auth['503'], 'Bearer sk-upstream-canary-a');
      assert.equal(s.auth.healthy, 'Bearer sk-upstream-canary-b');
      assert.ok(!JSON.stringify(s).includes('sk-client-canary'));
      assert.ok(!r.text.includes('canary'));
    });
  });
}

describe('after the commit point', () => {
  beforeEach(reset);
  test('a stream cut mid-way ends with an error event and no [DONE]', async () => {
    for (const alias of ['cut', 'late-error']) {
      const r = await post(keel, chat(alias, { stream: true }));
      assert.equal(r.status, 200);
      const data = sseData(r.text);
      assert.ok(!data.includes('[DONE]'), `${alias}: no [DONE] after a failure`);
      const last = JSON.parse(data.at(-1));
      assert.equal(last.error.type, 'upstream_error');
      assert.equal(streamedText(data.slice(0, -1).map((d) => `data: ${d}`).join('\n\n')), 'Hello from');
      assert.equal(hits(await simStats(sim), 'healthy'), 0, 'nothing fails over once the client has content');
    }
  });

  test('a stream that ends without [DONE] is finalised with one', async () => {
    const r = await post(keel, chat('nodone', { stream: true }));
    assert.equal(streamedText(r.text), 'Hello from the keel simulator.');
    assert.equal(sseData(r.text).at(-1), '[DONE]');
  });

  test('a malformed chunk is skipped, the rest relayed', async () => {
    const r = await post(keel, chat('garbled', { stream: true }));
    assert.equal(r.status, 200);
    for (const d of sseData(r.text)) if (d !== '[DONE]') JSON.parse(d); // every relayed chunk parses
    assert.equal(streamedText(r.text), 'Hello from the keel simulator.');
  });
});

describe('the body upstream', () => {
  beforeEach(reset);
  test("is the client's bytes with only the model's value replaced, on every attempt", async () => {
    // numbers, escapes, spacing, key order and a nested "model" a re-serialiser would change
    const tail = ` "temperature" : 0.70, "top_p":1e-3,"seed":42,\n` +
      `"messages":[{"role":"user","content":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\/"}],` +
      `"metadata":{"model":"keep-me"} }`;
    const sent = `{ "model" :"mirror",${tail}`;
    const r = await post(keel, sent);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(attempts(r).map((x) => x.class), ['server_error', 'ok']);
    assert.equal(JSON.parse(r.text).choices[0].message.content, `{ "model" :"echo",${tail}`);
  });

  test('asks a stream_upstream target for a stream and usage, for a client that did not ask for one', async () => {
    // an absent member goes first; a present one has its value replaced; all else as sent
    const tail = ` "temperature" : 0.70, "messages":[{"role":"user","content":"caf\\u00e9"}] }`;
    let r = await post(keel, `{ "model" :"mirror-stream",${tail}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(JSON.parse(r.text).choices[0].message.content,
      `{"stream":true,"stream_options":{"include_usage":true}, "model" :"echo",${tail}`);
    r = await post(keel, `{"stream": false, "model":"mirror-stream","stream_options":{"include_usage":false},"n":1}`);
    assert.equal(JSON.parse(r.text).choices[0].message.content,
      '{"stream": true, "model":"echo","stream_options":{"include_usage":true},"n":1}');
    // a client that asked for a stream: its body as sent
    r = await post(keel, '{"model":"mirror-stream","stream":true}');
    assert.equal(JSON.parse(r.text).choices[0].message.content, '{"model":"echo","stream":true}');
  });

  test('a malformed body is refused whole, whatever its prefix', async () => {
    for (const body of ['{"model":"healthy","messages":[1,]}', '{"model":"healthy"} trailing', '{"model":"healthy","x":"\\ud800"}',
      '{"model":"healthy","x":01}', `{"model":"healthy","x":"${String.fromCharCode(1)}"}`]) {
      const r = await post(keel, body);
      assert.equal(r.status, 400, body);
      assert.equal(JSON.parse(r.text).error.code, 'invalid_json', body);
    }
    assert.deepEqual((await simStats(sim)).hits, {});
  });
});

describe('invalid requests', () => {
  beforeEach(reset);
  test('an unknown model whose name is cut mid-character in the message still gets its envelope', async () => {
    const r = await post(keel, { model: `${'m'.repeat(99)}é-and-more`, messages: [] });
    assert.equal(r.status, 400);
    const e = JSON.parse(r.text).error;
    assert.equal(e.code, 'model_not_found');
    assert.match(e.message, /^unknown model "m{99}/);
  });

  test('a body that is not JSON, or lacks a model, is a 400 that reaches no upstream', async () => {
    for (const [body, code] of [['{not json', 'invalid_json'], ['[1,2]', 'invalid_json'], ['{"messages":[]}', 'missing_model'], ['{"model":42}', 'missing_model']]) {
      const r = await post(keel, body);
      assert.equal(r.status, 400, body);
      assert.equal(JSON.parse(r.text).error.code, code);
    }
    assert.deepEqual((await simStats(sim)).hits, {});
  });

  test('a body over max_body gets 413', async () => {
    const r = await post(keel, chat('healthy', { pad: 'x'.repeat(70 * 1024) }));
    assert.equal(r.status, 413);
    assert.deepEqual((await simStats(sim)).hits, {});
  });

  test('unknown paths and methods get an envelope', async () => {
    const r = await post(keel, '{}', { path: '/v1/nope' });
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.text).error.code, 'unknown_url');
    const g = await fetch(`${keel.url}/v1/chat/completions`);
    assert.equal(g.status, 405);
  });
});

describe('surface', () => {
  beforeEach(reset);
  test('GET /v1/models lists the configured aliases', async () => {
    const j = await (await fetch(`${keel.url}/v1/models`)).json();
    assert.equal(j.object, 'list');
    assert.ok(j.data.some((m) => m.id === 'storm' && m.object === 'model'));
    assert.equal(j.data.length, 24);
  });

  test('GET /healthz on the admin listener', async () => {
    const r = await fetch(`${keel.adminUrl}/healthz`);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).status, 'ok');
  });

  test('no secret reaches the log', async () => {
    await post(keel, chat('storm'), { headers: { authorization: 'Bearer sk-client-canary' } });
    assert.ok(!keel.log().includes('canary'), 'keys stay out of the log');
  });
});

describe('config', () => {
  beforeEach(reset);
  test('keel check accepts a good file and names FILE:LINE: key for a bad one', () => {
    const dir = tmpdir();
    const good = path.join(dir, 'good.yaml');
    fs.writeFileSync(good, CONFIG.replaceAll('{SIM}', 'http://127.0.0.1:9/v1'));
    const ok = check(good);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /ok \(3 upstreams, 24 models\)/);
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'upstreams:\n  - { name: a, base_url: "http://x" }\nmodels:\n  - name: m\n    targets:\n      - { upstream: nope, model: x }\n');
    const r = check(bad);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim(), `${bad}:6: models[0].targets[0].upstream: unknown upstream "nope"`);
  });

  test('keel serve refuses to start on a bad config', async () => {
    const dir = tmpdir();
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'listen: 127.0.0.1:0\ndefaults:\n  timeouts: { stall: forever }\n');
    const { spawnSync } = await import('node:child_process');
    const { KEEL } = await import('./lib.mjs');
    const r = spawnSync(KEEL, ['serve', '-c', bad], { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.yaml:3: defaults\.timeouts\.stall: bad duration "forever"/);
  });
});

describe('start-up', () => {
  test('keel serve raises its soft open-file limit to the hard one (two descriptors a stream)', async () => {
    const { spawn } = await import('node:child_process');
    const { KEEL } = await import('./lib.mjs');
    const file = path.join(tmpdir(), 'keel.yaml');
    fs.writeFileSync(file, CONFIG.replaceAll('{SIM}', 'http://127.0.0.1:9/v1'));
    const p = spawn('sh', ['-c', 'ulimit -Sn 256 && exec "$0" serve -c "$1"', KEEL, file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    p.stderr.on('data', (d) => { log += d; });
    try {
      await eventually(() => /listening api=/.test(log));
      assert.match(log, /listening api=/);
      const limits = fs.readFileSync(`/proc/${p.pid}/limits`, 'utf8');
      const [, soft, hard] = limits.match(/Max open files\s+(\S+)\s+(\S+)/);
      assert.equal(soft, hard);
      assert.notEqual(soft, '256');
      assert.match(log, new RegExp(`open file limit ${soft}: room for about \\d+ concurrent streams`));
    } finally {
      p.kill('SIGKILL');
    }
  });
});

describe('keel sim for the bench', () => {
  test('ticks streams chunks stamped with the wall clock in µs until the client leaves', async () => {
    const r = await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat('ticks:50', { stream: true })), signal: AbortSignal.timeout(10000),
    });
    assert.equal(r.status, 200);
    const reader = r.body.getReader();
    let text = '';
    const stamps = () => [...text.matchAll(/"content":"T(\d+)"/g)].map((m) => Number(m[1]));
    while (stamps().length < 3) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const t = stamps();
    for (const x of t) assert.ok(Math.abs(x / 1000 - Date.now()) < 5000, `${x} is the wall clock in µs`);
    assert.ok(t[1] - t[0] >= 40000 && t[2] - t[1] >= 40000, `a chunk every 50 ms: ${t}`);
    // the sim stops ticking when the client leaves
    await eventually(async () => (await simStats(sim)).gone['ticks:50'] === 1);
    assert.equal((await simStats(sim)).gone['ticks:50'], 1);
  });
});

describe('SIGTERM', () => {
  beforeEach(reset);
  test('stops accepting, lets the request in flight finish, exits 0', async () => {
    const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: slow, targets: [ { upstream: a, model: "slow-first-token:1200" } ] } ]
`, sim);
    const inflight = post(k, chat('slow', { stream: true }));
    await sleep(300);
    const exited = stop(k);
    await sleep(200);
    await assert.rejects(fetch(`${k.url}/v1/models`), 'no new connections while draining');
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(streamedText(r.text), 'Hello from the keel simulator.');
    assert.equal(await exited, 0);
  });
});
