// server.test.mjs - keel's own HTTP/1.1 server (src/io/server.c) on raw sockets: what HTTP/1.1
// lets a client send that the SDKs rarely do (a chunked body, Expect: 100-continue, requests
// pipelined on one connection, HTTP/1.0, dot segments in the path), what it must refuse (a
// malformed head, a folded header, whitespace before a colon, a coding other than chunked, a
// length that is no number, a chunked body past max_body), and keep-alive both ways.
// hardening.test.mjs has the limits (431, smuggling, timeouts, 413, max_connections).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startKeel, startSim, stop } from './lib.mjs';

let sim;
let keel;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
max_body: 4k
upstreams:
  - { name: a, base_url: "{SIM}" }
models:
  - { name: m, targets: [ { upstream: a, model: healthy } ] }
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

// Writes each part in turn on one connection; resolves when the socket closes or `until(data)`
// holds, with what came back.
function exchange(parts, { until = () => false, ms = 5000, gap = 0 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(keel.port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => finish(false), ms);
    sock.on('data', (d) => {
      data += d.toString();
      if (until(data)) finish(false);
    });
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    sock.on('connect', async () => {
      for (const p of parts) {
        sock.write(p);
        if (gap) await new Promise((r) => setTimeout(r, gap));
      }
    });
  });
}

const BODY = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
const post = (body = BODY, extra = '', path = '/v1/chat/completions', version = '1.1') =>
  `POST ${path} HTTP/${version}\r\nHost: k\r\ncontent-type: application/json\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const statuses = (data) => [...data.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
const answers = (data) => (data.match(/"chat\.completion"/g) ?? []).length;

describe('what a client may send', () => {
  test('a chunked body (with an extension and a trailer) is read whole', async () => {
    const half = Math.floor(BODY.length / 2);
    const chunked = `${half.toString(16)};ext=1\r\n${BODY.slice(0, half)}\r\n${(BODY.length - half).toString(16)}\r\n${BODY.slice(half)}\r\n0\r\nx-trailer: t\r\n\r\n`;
    const r = await exchange([`POST /v1/chat/completions HTTP/1.1\r\nHost: k\r\ntransfer-encoding: chunked\r\n\r\n`, chunked],
      { until: (d) => answers(d) === 1, gap: 20 });
    assert.deepEqual(statuses(r.data), [200]);
  });

  test('Expect: 100-continue gets 100 Continue before the body is sent, then the answer', async () => {
    const head = post().split('\r\n\r\n')[0];
    const sock = net.connect(keel.port, '127.0.0.1');
    let data = '';
    sock.on('data', (d) => { data += d.toString(); });
    await new Promise((r) => sock.on('connect', r));
    sock.write(`${head.replace('Host: k', 'Host: k\r\nexpect: 100-continue')}\r\n\r\n`);
    for (let i = 0; i < 100 && !data.includes('100 Continue'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(data, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    sock.write(BODY);
    for (let i = 0; i < 300 && answers(data) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    sock.destroy();
    assert.deepEqual(statuses(data), [100, 200]);
  });

  test('requests pipelined on one connection are answered in order, and it stays open', async () => {
    const three = post() + post(BODY, '', '/v1/models-nope') + post();
    const r = await exchange([three], { until: (d) => statuses(d).length === 3 && answers(d) === 2 });
    assert.deepEqual(statuses(r.data), [200, 404, 200]);
    assert.equal(r.closed, false);
  });

  test('keep-alive: one connection serves request after request; Connection: close ends it', async () => {
    const sock = net.connect(keel.port, '127.0.0.1');
    let data = '';
    let closed = false;
    sock.on('data', (d) => { data += d.toString(); });
    sock.on('close', () => { closed = true; });
    await new Promise((r) => sock.on('connect', r));
    for (let i = 1; i <= 5; i++) {
      sock.write(post());
      for (let j = 0; j < 300 && answers(data) < i; j++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(answers(data), i);
    }
    sock.write(post(BODY, 'connection: close\r\n'));
    for (let j = 0; j < 300 && !closed; j++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(closed, true, 'closed after the answer to Connection: close');
    assert.equal(answers(data), 6);
    assert.match(data.split('HTTP/1.1 ').at(-1), /\r\nconnection: close\r\n/i);
  });

  test('an HTTP/1.0 client is answered, and its connection closed after', async () => {
    const r = await exchange([post(BODY, '', '/v1/chat/completions', '1.0')]);
    assert.deepEqual(statuses(r.data), [200]);
    assert.equal(r.closed, true);
    assert.equal(answers(r.data), 1);
  });

  test('an HTTP/1.0 client of a stream gets it unchunked, ended by the close', async () => {
    const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const r = await exchange([post(body, '', '/v1/chat/completions', '1.0')]);
    assert.equal(r.closed, true);
    assert.doesNotMatch(r.data, /transfer-encoding: chunked/i);
    assert.match(r.data, /data: \[DONE\]\n\n$/);
  });

  test('dot segments in the path are resolved; a query is not the path', async () => {
    const r = await exchange([post(BODY, '', '/v1/x/../chat/./completions?trace=1')], { until: (d) => answers(d) === 1 });
    assert.deepEqual(statuses(r.data), [200]);
  });
});

describe('what the server refuses, and closes the connection after', () => {
  const refused = async (text, status, code) => {
    const r = await exchange([text]);
    assert.deepEqual(statuses(r.data), [status], r.data);
    assert.equal(r.closed, true);
    const body = r.data.slice(r.data.indexOf('\r\n\r\n') + 4);
    assert.equal(JSON.parse(body).error.code, code);
  };

  test('a request line that is not HTTP/1.x', () => refused('GET / HTTP/2.0\r\nHost: k\r\n\r\n', 400, 'invalid_request'));
  test('a folded header line (obs-fold)', () => refused(post(BODY, 'x-a: 1\r\n  folded\r\n'), 400, 'invalid_request'));
  test('whitespace before a header\'s colon', () => refused(post(BODY, 'x-a : 1\r\n'), 400, 'invalid_request'));
  test('a Transfer-Encoding other than chunked', () =>
    refused(`POST /v1/chat/completions HTTP/1.1\r\nHost: k\r\ntransfer-encoding: gzip\r\n\r\n`, 400, 'invalid_request'));
  test('a Content-Length that is no number', () =>
    refused(`POST /v1/chat/completions HTTP/1.1\r\nHost: k\r\ncontent-length: 12a\r\n\r\n`, 400, 'invalid_request'));
  test('a malformed chunk size', () =>
    refused(`POST /v1/chat/completions HTTP/1.1\r\nHost: k\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n`, 400, 'invalid_request'));
  test('a chunked body past max_body: 413 in the envelope', () => {
    const big = 'a'.repeat(3000);
    return refused(`POST /v1/chat/completions HTTP/1.1\r\nHost: k\r\ntransfer-encoding: chunked\r\n\r\n${(3000).toString(16)}\r\n${big}\r\n${(3000).toString(16)}\r\n${big}\r\n0\r\n\r\n`,
      413, 'request_too_large');
  });
});
