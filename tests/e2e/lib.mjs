// lib.mjs - helpers for keel's end-to-end tests: start real `keel sim` and `keel serve`
// processes on 127.0.0.1 with kernel-chosen ports (two runs never collide), talk to them, and
// make sure no child outlives the test run.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';

export const KEEL = process.env.KEEL_BIN || new URL('../../build/keel', import.meta.url).pathname;

const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'keel-e2e-'));
}

// Starts a child and resolves once its log shows `re` (bounded by `ms`); returns {proc, match, log()}.
function startChild(args, re, { ms = 10000, env } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(KEEL, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env || process.env });
    children.add(proc);
    let log = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) {
        done = true;
        proc.kill('SIGKILL');
        reject(new Error(`keel ${args[0]} did not start within ${ms} ms:\n${log}`));
      }
    }, ms);
    const onData = (d) => {
      log += d.toString();
      const m = log.match(re);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        resolve({ proc, match: m, log: () => log });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code, sig) => {
      children.delete(proc);
      proc.exitCode_ = code;
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`keel ${args[0]} exited (${code ?? sig}) before starting:\n${log}`));
      }
    });
  });
}

export async function startSim() {
  const c = await startChild(['sim', '--listen', '127.0.0.1:0'], /sim listening on 127\.0\.0\.1:(\d+)/);
  const port = Number(c.match[1]);
  return { ...c, port, url: `http://127.0.0.1:${port}` };
}

// `yaml` may use {SIM} for the simulator's base url.
export async function startKeel(yaml, sim, { env } = {}) {
  const dir = tmpdir();
  const file = path.join(dir, 'keel.yaml');
  fs.writeFileSync(file, yaml.replaceAll('{SIM}', sim ? `${sim.url}/v1` : ''));
  const c = await startChild(['serve', '-c', file], /listening api=127\.0\.0\.1:(\d+) admin=127\.0\.0\.1:(\d+)/, { env });
  const port = Number(c.match[1]);
  const admin = Number(c.match[2]);
  return { ...c, port, admin, file, url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${admin}` };
}

// Sends SIGTERM and waits (bounded) for the exit; resolves to the exit code. Rejects if the
// child's log holds a sanitizer report (the suite also runs on an ASan+UBSan build).
// Stops a child started above; nothing for one that never started (a failed before() must not
// leave its other children running and the runner waiting on them).
export function stop(c, ms = 10000) {
  if (c == null) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const done = (code) => {
      if (/Sanitizer|runtime error:/.test(c.log())) reject(new Error(`sanitizer report:\n${c.log()}`));
      else resolve(code);
    };
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return done(c.proc.exitCode);
    const t = setTimeout(() => c.proc.kill('SIGKILL'), ms);
    c.proc.once('exit', (code) => {
      clearTimeout(t);
      // give the last stderr bytes a moment to arrive
      setTimeout(() => done(code), 50);
    });
    c.proc.kill('SIGTERM');
  });
}

export function check(file) {
  return spawnSync(KEEL, ['check', '-c', file], { encoding: 'utf8' });
}

export async function simStats(sim) {
  const r = await fetch(`${sim.url}/sim/stats`);
  return r.json();
}

export function hits(stats, model) {
  return stats.hits[model] ?? 0;
}

// POST /v1/chat/completions with a raw body; resolves to {status, headers, text}.
export async function post(keel, body, { headers = {}, path: p = '/v1/chat/completions' } = {}) {
  const r = await fetch(`${keel.url}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(20000),
  });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

export function chat(model, extra = {}) {
  return { model, messages: [{ role: 'user', content: 'Say hello' }], ...extra };
}

// Parses an SSE body into the list of data payloads.
export function sseData(text) {
  return text
    .split('\n\n')
    .map((ev) => ev.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'))
    .filter((d) => d.length > 0);
}

export function streamedText(text) {
  let s = '';
  for (const d of sseData(text)) {
    if (d === '[DONE]') continue;
    const j = JSON.parse(d);
    for (const c of j.choices || []) s += c.delta?.content || '';
  }
  return s;
}

// Starts a request with node:http and destroys the socket after `ms`; resolves when destroyed.
export function abandon(keel, body, ms) {
  return new Promise((resolve) => {
    const req = http.request(`${keel.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => {});
    req.on('response', (res) => res.on('data', () => {}));
    req.end(JSON.stringify(body));
    setTimeout(() => {
      req.destroy();
      resolve();
    }, ms);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `fn` until it returns truthy (bounded); returns the last value.
export async function eventually(fn, { ms = 5000, every = 50 } = {}) {
  const end = Date.now() + ms;
  let v;
  while (Date.now() < end) {
    v = await fn();
    if (v) return v;
    await sleep(every);
  }
  return v;
}

export function rssKiB(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(s.match(/VmRSS:\s+(\d+)/)[1]);
}

// CPU time (user + system) the process has used, in ms
export function cpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // utime, stime: fields 14, 15, in 1/100 s
}

// x-keel-attempts "up/model;class=C;status=S;ms=M, ..." -> [{who, class, status, ms}]
export function attemptsOf(res) {
  return (res.headers.get('x-keel-attempts') || '').split(', ').filter(Boolean).map((a) => {
    const [who, ...kv] = a.split(';');
    return { who, ...Object.fromEntries(kv.map((x) => x.split('='))) };
  });
}

// Starts `keel sim --control`, the Lemonade-like control plane (its loads spawn one `keel sim`
// each, which die with it), on a kernel-chosen port; returns {proc, port, url, log()}.
export async function startSimControl() {
  const c = await startChild(['sim', '--control', '--listen', '127.0.0.1:0'],
    /sim control plane listening on 127\.0\.0\.1:(\d+)/);
  const port = Number(c.match[1]);
  return { ...c, port, url: `http://127.0.0.1:${port}` };
}

// Starts Debian's redis-server on a free loopback port (no persistence); resolves to {proc, port,
// url, log()} once it accepts connections. `port` reuses a port (a restart after a kill).
export async function startRedis(port, args = []) {
  if (port === undefined) {
    port = await new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
  }
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let log = '';
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`redis-server did not start:\n${log}`)), 10000);
    const on = (d) => {
      log += d.toString();
      if (/Ready to accept connections/.test(log)) {
        clearTimeout(t);
        resolve();
      }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.on('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${log}`)));
  });
  return { proc, port, url: `redis://127.0.0.1:${port}/0`, log: () => log };
}

// Parses Prometheus text format 0.0.4 strictly (a TYPE before its samples, each family once,
// well-formed sample lines); throws on the first violation. -> {declared: Map(name -> type),
// samples: [{name, labels, value}], find(name, labels)}
export function metricsOf(text) {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const declared = new Map();
  const samples = [];
  for (const line of text.trimEnd().split('\n')) {
    let m = line.match(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/);
    if (m) {
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram'].includes(m[3])) throw new Error(`bad type: ${line}`);
        if (declared.has(m[2])) throw new Error(`TYPE twice: ${line}`);
        declared.set(m[2], m[3]);
      }
      continue;
    }
    m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$/);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, (s) => (declared.get(m[1]) ? s : ''));
    if (!declared.has(family) && !declared.has(m[1])) throw new Error(`sample before its TYPE: ${line}`);
    samples.push({ name: m[1], labels: Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]])), value: Number(m[3]) });
  }
  const find = (name, labels) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return { declared, samples, find };
}

// A webhook receiver on a free loopback port: each POSTed JSON body pushed onto `events`, 204.
// Resolves to the server (its .address().port; close() it after).
export async function startWebhook(events) {
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      events.push(JSON.parse(body));
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  return hook;
}
