// h1client.test.mjs - keel's own HTTP/1.1 client (src/io/h1client.c), which carries every
// http:// upstream, against a raw TCP upstream scripted per model: what keel sends (one request
// head, the body, the key), and the answers it must frame or refuse: chunked with extensions and
// trailers, a body that ends when the connection closes, 1xx heads before the answer, a head
// trickled a byte at a time, a head too large, a status line that is no HTTP; a reused connection
// that the upstream drops as keel takes it (retried once, on a new connection); a name that
// resolves to several addresses (each tried until one answers).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { attemptsOf, chat, post, sleep, startKeel, startSim, stop } from './lib.mjs';

const ANSWER = JSON.stringify({ id: 'chatcmpl-raw', object: 'chat.completion', created: 0, model: 'raw',
  choices: [{ index: 0, message: { role: 'assistant', content: 'framed right' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } });

let sim;
let keel;
let raw;
const seen = []; // every request raw received: { head, body, conn }
let conns = 0;

// reads one request off the socket's buffered bytes: { head, body, rest } or null if incomplete
function takeRequest(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1');
  const len = Number((/\r\ncontent-length: *(\d+)/i.exec(head) || [0, 0])[1]);
  if (buf.length < end + 4 + len) return null;
  return { head, body: buf.subarray(end + 4, end + 4 + len).toString('utf8'), rest: buf.subarray(end + 4 + len) };
}

const ok = (extra = '') => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(ANSWER)}\r\n${extra}\r\n${ANSWER}`;

async function answer(sock, req, served) {
  const model = JSON.parse(req.body).model;
  if (model === 'plain') return sock.write(ok());
  if (model === 'chunked') {
    const parts = [ANSWER.slice(0, 7), ANSWER.slice(7, 8), ANSWER.slice(8)];
    sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    for (const [i, p] of parts.entries()) {
      sock.write(`${Buffer.byteLength(p).toString(16)}${i === 1 ? ';ext=1' : ''}\r\n${p}\r\n`);
      await sleep(5);
    }
    return sock.write('0\r\nx-trailer: yes\r\n\r\n');
  }
  if (model === 'until-close') {
    sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${ANSWER.slice(0, 20)}`);
    await sleep(20);
    return sock.end(ANSWER.slice(20));
  }
  if (model === 'early-hints')
    return sock.write(`HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\nContent-Length: 999\r\n\r\n${ok()}`);
  if (model === 'trickle') {
    for (const ch of ok()) {
      sock.write(ch);
      if (ch === '\n') await sleep(1);
    }
    return undefined;
  }
  if (model === 'huge-head')
    return sock.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70000)}\r\nContent-Length: 2\r\n\r\n{}`);
  if (model === 'not-http') return sock.end('SSH-2.0-OpenSSH_9.2\r\n');
  if (model === 'big-stream') { // a stream's head and an event each larger than a stream's 1 KiB read buffer
    const chunk = (o) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model: 'raw', ...o })}\n\n`;
    const events = chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: 'x'.repeat(3000) }, finish_reason: null }] }) +
      chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) + 'data: [DONE]\n\n';
    sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Big: ${'b'.repeat(5000)}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    return sock.write(`${Buffer.byteLength(events).toString(16)}\r\n${events}\r\n0\r\n\r\n`);
  }
  if (model === 'race') { // the first request on a connection is answered; a later one finds it dropped
    if (served === 0) return sock.write(ok());
    return sock.destroy();
  }
  return sock.end('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n');
}

before(async () => {
  sim = await startSim();
  raw = net.createServer((sock) => {
    const conn = ++conns;
    let buf = Buffer.alloc(0);
    let served = 0;
    sock.on('error', () => {});
    sock.on('data', async (d) => {
      buf = Buffer.concat([buf, d]);
      for (let req; (req = takeRequest(buf)) !== null;) {
        buf = req.rest;
        seen.push({ head: req.head, body: req.body, conn });
        await answer(sock, req, served++);
      }
    });
  });
  await new Promise((r) => raw.listen(0, '127.0.0.1', r));
  const port = raw.address().port;
  keel = await startKeel(`
listen: 127.0.0.1:0
workers: 1 # connections are pooled per worker: one, so the reuse tests see one pool
admin_listen: 127.0.0.1:0
defaults: { breaker: { failures: 1000 } }
upstreams:
  - { name: raw, base_url: "http://127.0.0.1:${port}/v1", api_key: sk-raw-key }
  - { name: byname, base_url: "http://localhost:${port}/v1" }
  - { name: sim, base_url: "{SIM}" }
models:
${['plain', 'chunked', 'until-close', 'early-hints', 'trickle', 'race', 'big-stream'].map((m) =>
    `  - { name: ${m}, targets: [ { upstream: raw, model: ${m}, stream_upstream: false } ] }`).join('\n')}
${['huge-head', 'not-http'].map((m) =>
    `  - { name: ${m}, targets: [ { upstream: raw, model: ${m}, stream_upstream: false }, { upstream: sim, model: healthy } ] }`).join('\n')}
  - { name: named, targets: [ { upstream: byname, model: plain, stream_upstream: false } ] }
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
  raw.close();
});

test('one request head: method, path, Host, the key, the length, then the body as sent', async () => {
  const body = chat('plain', { temperature: 0.25 });
  const r = await post(keel, body);
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse(r.text).choices[0].message.content, 'framed right');
  const req = seen.at(-1);
  const lines = req.head.split('\r\n');
  assert.equal(lines[0], 'POST /v1/chat/completions HTTP/1.1');
  const h = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  assert.equal(h.host, `127.0.0.1:${raw.address().port}`);
  assert.equal(h.authorization, 'Bearer sk-raw-key');
  assert.equal(h['content-type'], 'application/json');
  assert.equal(Number(h['content-length']), Buffer.byteLength(req.body));
  assert.equal(JSON.parse(req.body).model, 'plain');
  assert.equal(JSON.parse(req.body).temperature, 0.25);
  assert.equal(new Set(lines.slice(1).map((l) => l.split(':')[0].toLowerCase())).size, lines.length - 1, 'no header twice');
});

test('answers framed every way HTTP/1.1 allows arrive whole', async () => {
  for (const m of ['chunked', 'until-close', 'early-hints', 'trickle']) {
    const r = await post(keel, chat(m));
    assert.equal(r.status, 200, `${m}: ${r.text}`);
    assert.deepEqual(JSON.parse(r.text).choices, JSON.parse(ANSWER).choices, m);
  }
});

test('a stream whose head and events outgrow the read buffer arrives whole', async () => {
  const r = await post(keel, chat('big-stream', { stream: true }));
  assert.equal(r.status, 200, r.text);
  const text = r.text.split('\n').filter((l) => l.startsWith('data: {'))
    .map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content || '').join('');
  assert.equal(text, 'x'.repeat(3000));
  assert.match(r.text, /data: \[DONE\]/);
});

test('a head too large, or no HTTP at all: the attempt is a reset, failed over', async () => {
  for (const m of ['huge-head', 'not-http']) {
    const r = await post(keel, chat(m));
    assert.equal(r.status, 200, `${m}: ${r.text}`);
    assert.deepEqual(attemptsOf(r).map((a) => a.class), ['reset', 'ok'], m);
  }
});

test('a kept connection the upstream drops as keel reuses it: retried once on a new one, never an error', async () => {
  const before = conns;
  for (let i = 0; i < 6; i++) {
    const r = await post(keel, chat('race'));
    assert.equal(r.status, 200, `request ${i}: ${r.text}`);
    assert.deepEqual(attemptsOf(r).map((a) => a.class), ['ok']);
  }
  assert.ok(conns - before >= 6, `each request ended on a fresh connection (${conns - before})`);
});

test('sequential requests share one connection', async () => {
  await post(keel, chat('plain'));
  const from = seen.length;
  for (let i = 0; i < 5; i++) assert.equal((await post(keel, chat('plain'))).status, 200);
  assert.equal(new Set(seen.slice(from).map((s) => s.conn)).size, 1);
});

test('a name is resolved, and each of its addresses tried until one answers (localhost: ::1, 127.0.0.1)', async () => {
  const r = await post(keel, chat('named'));
  assert.equal(r.status, 200, r.text);
  assert.match(seen.at(-1).head, new RegExp(`\\r\\nHost: localhost:${raw.address().port}\\r\\n`));
});
