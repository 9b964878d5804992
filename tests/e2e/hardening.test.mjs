// hardening.test.mjs - no client, resource shortage or ambiguous request can wedge keel, open a
// healthy target's breaker, or slip past the model list (issue 13). Each test reproduces one
// finding against a real keel and keel sim; each fails on the code before its fix.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KEEL, chat, eventually, hits, post, simStats, sleep, startKeel, startSim, stop, tmpdir } from './lib.mjs';

let sim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await stop(sim);
});

// Raw bytes over one TCP connection. Resolves once the server closes (or `ms` passes) with what it
// sent, whether it closed, and when (ms after connecting). `pace` writes the parts apart.
function raw(port, parts, { ms = 5000, pace = 0 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data, closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), ms);
    sock.on('data', (d) => (data += d.toString()));
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    sock.on('connect', async () => {
      for (const p of [].concat(parts)) {
        if (done) return;
        sock.write(p);
        if (pace) await sleep(pace);
      }
    });
  });
}

function body(text) {
  const i = text.indexOf('\r\n\r\n');
  return i < 0 ? '' : text.slice(i + 4);
}

async function metric(keel, name) {
  const text = await (await fetch(`${keel.adminUrl}/metrics`)).text();
  const m = text.match(new RegExp(`^${name.replace(/[{}"=]/g, '\\$&')} (\\d+)`, 'm'));
  return m ? Number(m[1]) : null;
}

async function breakers(keel) {
  const st = await (await fetch(`${keel.adminUrl}/admin/status`)).json();
  return st.models.flatMap((m) => m.targets.map((t) => `${t.upstream}/${t.model}=${t.breaker}`));
}

describe('a client that stops reading', () => {
  let keel;
  before(async () => {
    keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
max_inflight: 4
send_timeout: 1s
upstreams: [ { name: a, base_url: "{SIM}" } ]
models:
  - { name: big, targets: [ { upstream: a, model: "big-stream:60000" } ] }
  - { name: echo, targets: [ { upstream: a, model: echo } ] }
  - { name: ok, targets: [ { upstream: a, model: healthy } ] }
`, sim);
  });
  after(async () => {
    await stop(keel);
  });

  // sends a request, reads the answer's first bytes, then stops reading; resolves once the first
  // bytes are in. A paused socket sees no EOF: `closed` resolves once the test resumes reading
  // and finds the connection closed.
  function stuckReader(model, extra = { stream: true }) {
    return new Promise((resolve) => {
      const sock = net.connect(keel.port, '127.0.0.1');
      const req = JSON.stringify(chat(model, extra));
      let closed;
      const closedP = new Promise((r) => (closed = r));
      const t0 = Date.now();
      sock.on('connect', () =>
        sock.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${req.length}\r\n\r\n${req}`));
      sock.once('data', () => {
        sock.pause(); // the kernel buffers fill, then keel's write never completes
        resolve({ sock, closed: closedP, t0 });
      });
      sock.on('close', () => closed(Date.now() - t0));
      sock.on('error', () => {});
    });
  }

  test('gives its request slot back within send_timeout: others are not shed with 503', async () => {
    const stuck = await Promise.all([1, 2, 3, 4].map(() => stuckReader('big')));
    // all four slots are taken by the stuck readers right now
    const busy = await post(keel, chat('ok'));
    assert.equal(busy.status, 503, 'max_inflight holds while the readers are within send_timeout');
    // keel drops them once a write has waited send_timeout (1 s), and sheds nothing after that
    const res = await eventually(async () => {
      const r = await post(keel, chat('ok'));
      return r.status === 200 ? r : null;
    }, { ms: 6000, every: 200 });
    assert.ok(res, 'a normal request is answered once the stuck readers are dropped');
    assert.ok(await eventually(async () => (await metric(keel, 'keel_client_timeouts_total{phase="send"}')) >= 4),
      'all four dropped by send_timeout');
    // reading again drains what the kernel buffered, then finds the connection closed
    for (const s of stuck) s.sock.resume();
    const closedAfter = await Promise.all(stuck.map((s) => Promise.race([s.closed, sleep(5000).then(() => -1)])));
    for (const ms of closedAfter) assert.ok(ms > 0, 'stuck connection closed by keel');
    assert.equal(await metric(keel, 'keel_inflight{upstream="a"}'), 0, 'their upstream transfers were cancelled');
  });

  test('a finished answer the client never reads does not hold the connection', async () => {
    // a 7 MB answer (the echoed body) is complete on keel's side: its one write waits on the client
    const before = await metric(keel, 'keel_client_timeouts_total{phase="send"}');
    const s = await stuckReader('echo', { pad: 'x'.repeat(7 << 20) });
    assert.ok(await eventually(async () => (await metric(keel, 'keel_client_timeouts_total{phase="send"}')) > before,
      { ms: 5000, every: 200 }), 'dropped by send_timeout');
    s.sock.resume();
    const ms = await Promise.race([s.closed, sleep(5000).then(() => -1)]);
    assert.ok(ms > 0, 'keel closed the connection of a client that never read the end of its answer');
  });
});

describe('an ambiguous request is refused before routing', () => {
  let keel;
  before(async () => {
    keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
max_headers: 20
max_header_size: 4k
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: desk, targets: [ { upstream: a, model: echo } ] } ]
`, sim);
  });
  after(async () => {
    await stop(keel);
  });

  test('a duplicate top-level "model" (either spelling) or "stream" key: 400 duplicate_key, no upstream touched', async () => {
    await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
    for (const b of [
      '{"model":"gpt-unlisted","model":"desk","messages":[]}',
      '{"model":"desk","messages":[],"model":"gpt-unlisted"}',
      '{"mod\\u0065l":"gpt-unlisted","model":"desk","messages":[]}',
      '{"model":"desk","stream":false,"messages":[],"stream":true}',
    ]) {
      const r = await post(keel, b);
      assert.equal(r.status, 400, b);
      assert.equal(JSON.parse(r.text).error.code, 'duplicate_key', b);
    }
    assert.equal(hits(await simStats(sim), 'echo'), 0);
    // a "model" nested deeper is the client's business and goes through
    const ok = await post(keel, '{"model":"desk","messages":[{"role":"user","content":"hi","model":"x"}]}');
    assert.equal(ok.status, 200);
  });

  const req = (extra, b = '{"model":"desk","messages":[]}') =>
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${extra}\r\n${b}`;

  test('Content-Length with Transfer-Encoding, or two different Content-Lengths: 400 and the connection closed', async () => {
    await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
    const b = '{"model":"desk","messages":[]}';
    const chunked = `${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`;
    // each carries a second, smuggled request behind the first one's body
    const smuggled = req('content-length: 30\r\n', b);
    for (const [name, bytes] of [
      ['CL + TE', req(`content-length: ${chunked.length}\r\ntransfer-encoding: chunked\r\n`, chunked) + smuggled],
      ['TE + CL', req(`transfer-encoding: chunked\r\ncontent-length: 5\r\n`, chunked) + smuggled],
      ['CL, CL', req(`content-length: ${b.length}\r\ncontent-length: 5\r\n`, b) + smuggled],
      ['TE, TE', req(`transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n`, chunked) + smuggled],
    ]) {
      const r = await raw(keel.port, bytes);
      assert.match(r.data, /^HTTP\/1\.1 400 /, name);
      assert.equal(JSON.parse(body(r.data)).error.code, 'ambiguous_request_length', name);
      assert.equal((r.data.match(/HTTP\/1\.1 /g) || []).length, 1, `${name}: the smuggled request got no answer`);
      assert.ok(r.closed, `${name}: connection closed`);
    }
    assert.equal(hits(await simStats(sim), 'echo'), 0, 'nothing reached the upstream');
    // the same Content-Length twice is not ambiguous (RFC 9110 8.6)
    const same = await raw(keel.port, req(`content-length: ${b.length}\r\ncontent-length: ${b.length}\r\nconnection: close\r\n`, b));
    assert.match(same.data, /^HTTP\/1\.1 200 /);
    assert.ok((await metric(keel, 'keel_client_rejected_total{reason="ambiguous_length"}')) >= 4);
  });

  test('too many header fields or too large a head: 431 in the OpenAI envelope', async () => {
    const many = Array.from({ length: 30 }, (_, i) => `x-h${i}: v\r\n`).join('');
    let r = await raw(keel.port, req(`content-length: 30\r\n${many}`));
    assert.match(r.data, /^HTTP\/1\.1 431 /);
    assert.equal(JSON.parse(body(r.data)).error.code, 'request_header_fields_too_large');
    r = await raw(keel.port, req(`content-length: 30\r\nx-big: ${'a'.repeat(5000)}\r\n`));
    assert.match(r.data, /^HTTP\/1\.1 431 /);
    // a refusal on the Anthropic path is in Anthropic's envelope
    r = await raw(keel.port, req(`content-length: 30\r\n${many}`).replace('/v1/chat/completions', '/v1/messages'));
    assert.match(r.data, /^HTTP\/1\.1 431 /);
    const e = JSON.parse(body(r.data));
    assert.equal(e.type, 'error');
    assert.equal(e.error.code, 'request_header_fields_too_large');
    assert.equal(e.error.type, 'invalid_request_error');
    assert.ok((await metric(keel, 'keel_client_rejected_total{reason="headers_too_large"}')) >= 2);
  });

  test('a body nested deeper than max_json_depth: 400 invalid_json naming the limit', async () => {
    const deep = (n) => `{"model":"desk","messages":[],"x":${'['.repeat(n)}${']'.repeat(n)}}`;
    const r = await post(keel, deep(200));
    assert.equal(r.status, 400);
    assert.match(JSON.parse(r.text).error.message, /deeper than 128/);
    assert.equal((await post(keel, deep(100))).status, 200);
  });
});

describe('slow clients are dropped within their read timeouts', () => {
  let keel;
  before(async () => {
    keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
header_timeout: 1s
body_timeout: 1s
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: ok, targets: [ { upstream: a, model: healthy } ] } ]
`, sim);
  });
  after(async () => {
    await stop(keel);
  });

  test('a trickled head (slowloris), a trickled body and a silent connection', async () => {
    const head = 'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n';
    const [loris, slowBody, silent] = await Promise.all([
      raw(keel.port, head.split(''), { pace: 100, ms: 8000 }), // a byte every 100 ms: never done
      raw(keel.port, [`${head}content-length: 100\r\n\r\n`, ...'{"model":"ok",'.split('')], { pace: 200, ms: 8000 }),
      raw(keel.port, [], { ms: 8000 }),
    ]);
    for (const [name, r] of [['slowloris', loris], ['slow body', slowBody], ['silent', silent]]) {
      assert.ok(r.closed, `${name}: closed`);
      assert.ok(r.ms >= 900 && r.ms < 3000, `${name}: closed after ${r.ms} ms (timeouts 1 s)`);
    }
    assert.ok((await metric(keel, 'keel_client_timeouts_total{phase="header"}')) >= 2);
    assert.ok((await metric(keel, 'keel_client_timeouts_total{phase="body"}')) >= 1);
    // a kept-alive connection may idle between requests: only its next head is timed
    const r = await raw(keel.port, [`${head}content-length: 30\r\n\r\n{"model":"ok","messages":[]}  `], { ms: 2500 });
    assert.match(r.data, /^HTTP\/1\.1 200 /);
    assert.equal(r.closed, false, 'an idle kept-alive connection outlives header_timeout');
  });
});

// keel serve under a hard open-file limit of `nofile` (bash's ulimit sets soft and hard)
async function startKeelLimited(yaml, nofile) {
  const dir = tmpdir();
  const file = path.join(dir, 'keel.yaml');
  fs.writeFileSync(file, yaml.replaceAll('{SIM}', `${sim.url}/v1`));
  const proc = spawn('sh', ['-c', `ulimit -n ${nofile} && exec "${KEEL}" serve -c "${file}"`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const m = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`keel did not start:\n${log}`)), 10000);
    const on = (d) => {
      log += d;
      const mm = log.match(/listening api=127\.0\.0\.1:(\d+) admin=127\.0\.0\.1:(\d+)/);
      if (mm) {
        clearTimeout(t);
        resolve(mm);
      }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
  });
  return { proc, log: () => log, port: Number(m[1]), adminUrl: `http://127.0.0.1:${m[2]}`, url: `http://127.0.0.1:${m[1]}` };
}

const CHAIN = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults: { breaker: { failures: 1, cooldown: 60s } }
upstreams: [ { name: a, base_url: "{SIM}" }, { name: b, base_url: "{SIM}" } ]
models: [ { name: desk, targets: [ { upstream: a, model: "healthy#fa" }, { upstream: b, model: "healthy#fb" } ] } ]
`;

describe('keel running out of its own resources never blames a provider', () => {
  test('out of descriptors at the upstream socket: 503 local_error, no failover, no breaker', async () => {
    const keel = await startKeelLimited(`${CHAIN}max_connections: 1000\nheader_timeout: 30s\nbody_timeout: 30s\n`, 40);
    const socks = [];
    try {
      await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
      // one client is accepted and has sent all but the last byte of its request
      const req = JSON.stringify(chat('desk'));
      const client = net.connect(keel.port, '127.0.0.1');
      let answer = '';
      const closed = new Promise((r) => client.on('close', r));
      client.on('data', (d) => (answer += d));
      client.on('error', () => {});
      await new Promise((r) => client.on('connect', r));
      client.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${req.length}\r\n\r\n${req.slice(0, -1)}`);
      await sleep(200);
      // then idle connections take every descriptor keel has left: once keel is out, libuv
      // accepts and closes each new one at once
      let shut = 0;
      for (let i = 0; i < 200 && shut < 3; i++) {
        const s = net.connect(keel.port, '127.0.0.1');
        s.on('error', () => {});
        const gone = await new Promise((r) => {
          s.on('close', () => r(true));
          setTimeout(() => r(false), 150);
        });
        if (gone) shut++;
        else socks.push(s);
      }
      assert.equal(shut, 3, 'keel ran out of descriptors');
      client.write(req.slice(-1));
      await Promise.race([closed, sleep(5000)]);
      assert.match(answer, /^HTTP\/1\.1 503 /, answer.slice(0, 300));
      const err = JSON.parse(body(answer)).error;
      assert.equal(err.code, 'local_error');
      assert.deepEqual(err.attempts.map((a) => a.class), ['local_error'], 'the chain was not walked');
      assert.match(answer, /\r\nretry-after: 1\r\n/i);
      for (const s of socks) s.destroy();
      socks.length = 0;
      await sleep(300);
      assert.deepEqual(await breakers(keel), ['a/healthy#fa=closed', 'b/healthy#fb=closed']);
      const ok = await post(keel, chat('desk'));
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('x-keel-upstream'), 'a');
      assert.equal(hits(await simStats(sim), 'healthy#fb'), 0, 'the fallback was never tried');
    } finally {
      for (const s of socks) s.destroy();
      keel.proc.kill('SIGKILL');
    }
  });

  test('200 idle connections under ulimit -n 64 (the review\'s reproduction): refused at the cap, breakers stay closed', async () => {
    const keel = await startKeelLimited(`${CHAIN.replace('healthy#fa', 'slow-first-token:300#fa').replace('healthy#fb', 'slow-first-token:300#fb')}header_timeout: 30s\n`, 64);
    const socks = [];
    try {
      await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
      // five clients connect first; then 200 more connect and send nothing
      const clients = [];
      for (let i = 0; i < 5; i++) {
        const c = net.connect(keel.port, '127.0.0.1');
        c.on('error', () => {});
        await new Promise((r) => c.on('connect', r));
        clients.push(c);
      }
      for (let i = 0; i < 200; i++) {
        const s = net.connect(keel.port, '127.0.0.1');
        s.on('error', () => {});
        socks.push(s);
      }
      await sleep(300);
      // the five ask at once: each needs an upstream socket while the idle ones hold theirs
      const req = JSON.stringify(chat('desk'));
      const answers = await Promise.all(clients.map((c) => new Promise((resolve) => {
        let data = '';
        c.on('data', (d) => (data += d));
        c.on('close', () => resolve(data));
        setTimeout(() => resolve(data), 5000);
        c.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${req.length}\r\n\r\n${req}`);
      })));
      for (const a of answers) {
        const status = Number((a.match(/^HTTP\/1\.1 (\d+)/) || [])[1] || 0);
        assert.ok(status === 200 || status === 503, a.slice(0, 300));
        if (status === 503) assert.match(JSON.parse(body(a)).error.code, /^(gateway_busy|local_error)$/, a);
      }
      for (const s of socks) s.destroy();
      socks.length = 0;
      const ok = await eventually(async () => {
        const r = await post(keel, chat('desk')).catch(() => null);
        return r && r.status === 200 ? r : null;
      });
      assert.ok(ok, 'answered once the idle connections are gone');
      assert.equal(ok.headers.get('x-keel-upstream'), 'a');
      assert.deepEqual(await breakers(keel), ['a/slow-first-token:300#fa=closed', 'b/slow-first-token:300#fb=closed']);
    } finally {
      for (const s of socks) s.destroy();
      keel.proc.kill('SIGKILL');
    }
  });
});

describe('max_memory bounds what requests in flight hold', () => {
  let keel;
  before(async () => {
    keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
max_memory: 1m
upstreams: [ { name: a, base_url: "{SIM}" }, { name: b, base_url: "{SIM}" } ]
models: [ { name: echo, targets: [ { upstream: a, model: "echo#ma" }, { upstream: b, model: "echo#mb" } ] } ]
`, sim);
  });
  after(async () => {
    await stop(keel);
  });

  test('a body that would pass it: 503 gateway_busy before anything is copied', async () => {
    const r = await post(keel, chat('echo', { pad: 'x'.repeat(400000) }));
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.text).error.code, 'gateway_busy');
    assert.equal(r.headers.get('retry-after'), '1');
  });

  test('an answer that would pass it while buffered: 503 local_error, the chain not walked', async () => {
    await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
    const r = await post(keel, chat('echo', { pad: 'x'.repeat(300000) })); // echoed back: 3 x 300 KB + 300 KB
    assert.equal(r.status, 503, r.text.slice(0, 200));
    const err = JSON.parse(r.text).error;
    assert.equal(err.code, 'local_error');
    assert.equal(hits(await simStats(sim), 'echo#mb'), 0);
    // given back once the server has told keel the answer went out (the loop's next turn, on
    // the worker's own thread: the client may ask for the gauge before)
    assert.ok(await eventually(async () => (await metric(keel, 'keel_memory_held_bytes')) === 0),
      'everything charged was given back');
    assert.deepEqual(await breakers(keel), ['a/echo#ma=closed', 'b/echo#mb=closed']);
    assert.equal((await post(keel, chat('echo'))).status, 200);
  });
});

describe('a body over max_body', () => {
  let keel;
  const auditFile = path.join(tmpdir(), 'audit-413.jsonl');
  before(async () => {
    keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${auditFile}
max_body: 64k
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: ok, targets: [ { upstream: a, model: healthy } ] } ]
`, sim);
  });
  after(async () => {
    await stop(keel);
  });

  test('is a 413 in the OpenAI envelope the SDK reads, not a reset it retries with the whole body again', async () => {
    const { default: OpenAI } = await import('openai');
    let connections = 0;
    // count the SDK's connections (a reset makes it upload the body again, up to maxRetries times)
    const countingFetch = async (url, init) => {
      connections++;
      return fetch(url, init);
    };
    const client = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'k', maxRetries: 2, timeout: 10000, fetch: countingFetch });
    const big = 'x'.repeat(4 << 20); // 4 MB: the SDK is still uploading when keel answers
    const err = await client.chat.completions.create({ model: 'ok', messages: [{ role: 'user', content: big }] }).then(
      () => null,
      (e) => e,
    );
    assert.ok(err, 'the call failed');
    assert.equal(err.status, 413, `${err.constructor.name}: ${err.message}`);
    assert.equal(err.code, 'request_too_large');
    assert.equal(connections, 1, 'the SDK did not retry');
    assert.equal((await post(keel, chat('ok'))).status, 200);
  });

  test('on /v1/messages, a 413 in Anthropic\'s envelope, which its SDK reads', async () => {
    const { default: Anthropic } = await import('@anthropic-ai/sdk');
    const client = new Anthropic({ baseURL: keel.url, apiKey: 'k', maxRetries: 0, timeout: 10000 });
    const big = 'x'.repeat(1 << 20);
    const err = await client.messages.create({ model: 'ok', max_tokens: 10, messages: [{ role: 'user', content: big }] }).then(() => null, (e) => e);
    assert.ok(err, 'the call failed');
    assert.equal(err.status, 413, `${err.constructor.name}: ${err.message}`);
    assert.equal(err.error.type, 'error');
    assert.equal(err.error.error.type, 'request_too_large');
    assert.equal(err.error.error.code, 'request_too_large');
  });

  test('every refusal is audited like any rejected request, with the protocol it came in', async () => {
    const lines = () => (fs.existsSync(auditFile) ? fs.readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    assert.ok(await eventually(() => lines().filter((x) => x.status === 413).length >= 2, { ms: 5000 }), JSON.stringify(lines()));
    const refused = lines().filter((x) => x.status === 413);
    assert.deepEqual(refused.map((x) => [x.error, x.class, x.model]).slice(0, 2), [
      ['request_too_large', 'invalid_request', ''], ['request_too_large', 'invalid_request', '']]);
    assert.deepEqual(refused.map((x) => x.protocol).sort(), ['anthropic-messages', 'openai-chat']);
  });
});

describe('max_connections', () => {
  test('a connection past the cap gets an immediate 503 gateway_busy it can read, then close', async () => {
    const keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
max_connections: 3
header_timeout: 30s
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: ok, targets: [ { upstream: a, model: healthy } ] } ]
`, sim);
    const idle = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = net.connect(keel.port, '127.0.0.1');
        s.on('error', () => {});
        await new Promise((r) => s.on('connect', r));
        idle.push(s);
      }
      await sleep(100);
      const b = JSON.stringify(chat('ok'));
      const r = await raw(keel.port, `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${b.length}\r\n\r\n${b}`);
      assert.match(r.data, /^HTTP\/1\.1 503 /);
      assert.match(r.data, /\r\nRetry-After: 1\r\n/);
      assert.equal(JSON.parse(body(r.data)).error.code, 'gateway_busy');
      assert.ok(r.closed && r.ms < 2000);
      for (const s of idle) s.destroy();
      await sleep(200);
      assert.equal((await post(keel, chat('ok'))).status, 200, 'a place is free again');
      assert.equal(await metric(keel, 'keel_client_refused_total'), 1);
      assert.equal(await metric(keel, 'keel_client_connections_max'), 3);
    } finally {
      for (const s of idle) s.destroy();
      await stop(keel);
    }
  });
});

describe('a 2xx is an answer only if it carries one', () => {
  test('204, or 201 with no choices, is empty_response and fails over (seed 000)', async () => {
    const http = await import('node:http');
    let status = 204;
    const odd = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (status === 204) res.writeHead(204).end();
        else res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"x","choices":[]}');
      });
    });
    await new Promise((r) => odd.listen(0, '127.0.0.1', r));
    const keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams: [ { name: odd, base_url: "http://127.0.0.1:${odd.address().port}/v1" }, { name: b, base_url: "{SIM}" } ]
models: [ { name: m, targets: [ { upstream: odd, model: x }, { upstream: b, model: healthy } ] } ]
`, sim);
    try {
      for (const s of [204, 201]) {
        status = s;
        const r = await post(keel, chat('m'));
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get('x-keel-upstream'), 'b', `a ${s} was passed on as the answer`);
        assert.match(r.headers.get('x-keel-attempts'), new RegExp(`^odd/x;class=empty_response;status=${s};`));
      }
    } finally {
      await stop(keel);
      odd.close();
    }
  });
});

describe('found by the soak', () => {
  let keel;
  let dir;
  before(async () => {
    keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: AUDIT
send_timeout: 1s
defaults: { timeouts: { first_byte: 10s, stall: 500ms } }
upstreams: [ { name: a, base_url: "{SIM}" }, { name: b, base_url: "{SIM}" } ]
models:
  - { name: stalls, targets: [ { upstream: a, model: "stall-after:2#soak" }, { upstream: b, model: healthy } ] }
  - { name: slow, targets: [ { upstream: a, model: "slow-tokens:3000" } ], }
  - { name: echo, targets: [ { upstream: a, model: echo } ] }
`.replace('AUDIT', path.join((dir = tmpdir()), 'audit.jsonl')).replace('stall: 500ms } }', 'stall: 500ms } }'), sim);
  });
  after(async () => {
    await stop(keel);
  });
  const audit = () => fs.readFileSync(path.join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

  test('a stall after the first token is cut at stall, not at first_byte', async () => {
    const t0 = Date.now();
    const r = await post(keel, chat('stalls'));
    const ms = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-keel-upstream'), 'b');
    assert.match(r.headers.get('x-keel-attempts'), /^a\/stall-after:2#soak;class=stall_timeout;/);
    assert.ok(ms < 3000, `failed over after ${ms} ms (stall 500 ms, first_byte 10 s)`);
  });

  test('a committed stream whose client leaves while the upstream is quiet is cancelled within a second', async () => {
    await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
    const sock = net.connect(keel.port, '127.0.0.1');
    const req = JSON.stringify(chat('slow', { stream: true }));
    sock.on('error', () => {});
    sock.on('connect', () => sock.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${req.length}\r\n\r\n${req}`));
    let got = '';
    await new Promise((r) => sock.on('data', (d) => { got += d; if (got.includes('"content"')) r(); }));
    const t0 = Date.now();
    sock.destroy(); // the next token is 3 s away: nothing is written meanwhile
    const gone = await eventually(async () => (await simStats(sim)).gone['slow-tokens:3000'] === 1, { ms: 5000, every: 50 });
    const ms = Date.now() - t0;
    assert.ok(gone && ms < 1500, `upstream cancelled ${ms} ms after the client left`);
    const line = await eventually(() => audit().find((l) => l.model === 'slow'), { ms: 3000 });
    assert.equal(line.client_gone, true);
    assert.equal(line.class, 'client_gone');
  });

  test('an answer the client never reads is audited as client_gone, its time as keel\'s', async () => {
    const s = net.connect(keel.port, '127.0.0.1');
    const req = JSON.stringify(chat('echo', { pad: 'x'.repeat(7 << 20) }));
    s.on('error', () => {});
    s.on('connect', () => s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${req.length}\r\n\r\n${req}`));
    await new Promise((r) => s.once('data', () => { s.pause(); r(); }));
    const line = await eventually(() => audit().find((l) => l.model === 'echo'), { ms: 6000, every: 200 });
    assert.ok(line, 'audited once send_timeout dropped the client');
    assert.equal(line.client_gone, true);
    assert.equal(line.class, 'client_gone');
    assert.ok(line.ms < 1000, `ms is keel's time to answer (${line.ms}), not the client's`);
    s.destroy();
  });
});
