// bench/soak.mjs - the soak (`make soak`, bench/soak.sh; issue 13). Starts `keel sim` and
// `keel serve` on free loopback ports, sends SOAK_REQUESTS requests (half streaming) at
// SOAK_RATE per second through 3-deep chains whose every target is the sim's `chaos` model
// (a fault drawn at random per attempt, SOAK_FAULT_RATE of them), with clients that read
// normally, slowly, stop reading, or vanish; then checks each request against what the client
// saw, keel's audit log and the sim's own count of the faults it injected, and keel's file
// descriptors and RSS against a baseline taken after a warm-up. Prints every violation and a
// summary (markdown, for bench/RESULTS.md); exits 1 on any violation. Speed is not asserted.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const env = process.env;
const KEEL = env.KEEL_BIN || new URL('../build/keel', import.meta.url).pathname;
const SAN = env.SOAK_SAN === '1';
const N = Number(env.SOAK_REQUESTS || (SAN ? 10000 : 100000));
const RATE = Number(env.SOAK_RATE || (SAN ? 100 : 200)); // requests started per second
const WARMUP = Number(env.SOAK_WARMUP || Math.min(2000, Math.ceil(N / 20)));
const SEED = Number(env.SOAK_SEED || 1);
const FAULT_RATE = env.SOAK_FAULT_RATE || '0.2';
const SEND_TIMEOUT_MS = 2000; // keel's send_timeout in this config, when the build has the key
const DIR = env.SOAK_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'keel-soak-'));
fs.mkdirSync(DIR, { recursive: true });

// ---------------------------------------------------------------- the limits the soak holds keel to

const TOTAL_MS = 3000; // timeouts.total of every target
const LATE_SLACK_MS = 100; // an answer may end at most this long after its deadline
// keel's audit must end a vanished client's request this soon: a client waiting for its first
// token is peeked every 100 ms, a committed stream whose upstream is quiet every 500 ms (README),
// plus the sweep's tick and the loop's scheduling
const GONE_NOTICE_MS = 700;
const FD_SLACK = 0; // file descriptors after the load vs the baseline
// RSS after the load may exceed the baseline by this much: malloc keeps some of what the peak
// took (freed chunks it does not return), which is not a leak; a leak grows with the requests
// (100k requests leaking 100 bytes each is 10 MB). Not checked on the ASan build (quarantine).
const RSS_SLACK_KB = 8 * 1024;
// ... and, a sharper test for a leak, RSS at rest after the load may exceed RSS mid-load (half the
// requests sent, every fixed-size latency window long since full) by at most this much: over 50k
// requests that is 40 bytes a request
const RSS_GROWTH_KB = 2 * 1024;
const ERROR_CODES = new Set([
  'all_targets_failed', 'all_targets_open', 'rate_limited', 'deadline_exceeded', 'gateway_busy',
]);

// ---------------------------------------------------------------- a seeded PRNG (mulberry32)

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const between = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

// ---------------------------------------------------------------- the sim's answers, as expected

const WORDS = ['Hello', ' from', ' the', ' keel', ' simulator.'];
const SENTENCE = WORDS.join('');
function answerText(n) {
  return SENTENCE.repeat(Math.floor(n / WORDS.length)) + WORDS.slice(0, n % WORDS.length).join('');
}

// ---------------------------------------------------------------- processes

const procs = [];
process.on('exit', () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

async function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function startChild(name, args, re, extraEnv = {}) {
  const log = path.join(DIR, `${name}.log`);
  const fd = fs.openSync(log, 'w');
  const proc = spawn(KEEL, args, { stdio: ['ignore', fd, fd], env: { ...env, ...extraEnv } });
  fs.closeSync(fd);
  procs.push(proc);
  for (let i = 0; i < 200; i++) {
    const m = fs.readFileSync(log, 'utf8').match(re);
    if (m) return { proc, log, match: m };
    if (proc.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(`keel ${args[0]} did not start:\n${fs.readFileSync(log, 'utf8')}`);
}

function stopChild(c, ms = 30000) {
  return new Promise((resolve) => {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve(c.proc.exitCode ?? c.proc.signalCode);
    const t = setTimeout(() => c.proc.kill('SIGKILL'), ms);
    c.proc.once('exit', (code, sig) => {
      clearTimeout(t);
      resolve(code ?? sig);
    });
    c.proc.kill('SIGTERM');
  });
}

function fds(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}
// what each descriptor is ("socket:[123]", a path...), and for sockets their TCP state and ports
function fdList(pid) {
  const tcp = new Map();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(f)) continue;
    for (const l of fs.readFileSync(f, 'utf8').split('\n').slice(1)) {
      const c = l.trim().split(/\s+/);
      if (c.length < 10) continue;
      const port = (a) => parseInt(a.split(':')[1], 16);
      const st = { '01': 'ESTABLISHED', '06': 'TIME_WAIT', '08': 'CLOSE_WAIT', '0A': 'LISTEN', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '09': 'LAST_ACK' }[c[3]] || c[3];
      tcp.set(c[9], `${st} ${port(c[1])}->${port(c[2])}`);
    }
  }
  return fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    let t;
    try {
      t = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return `${fd}: gone`;
    }
    const m = t.match(/^socket:\[(\d+)\]$/);
    return `${fd}: ${t}${m && tcp.has(m[1]) ? ` ${tcp.get(m[1])}` : ''}`;
  });
}
function status(pid, key) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
}
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ = 100
}

// ---------------------------------------------------------------- config

const ALIASES = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
// m1-m3 take keel's default for non-stream clients (stream_upstream: the answer streamed
// upstream and assembled); m4-m6 ask plainly (the bytes pass through). A non-stream answer of
// 2.4M tokens (the stalled readers' 12 MB) is 2.4M events and 400 MB of SSE when streamed:
// seconds of keel's CPU each, far past any real answer, so those go to m4-m6 only
const PLAIN = new Set(['m4', 'm5', 'm6']);
const UPSTREAMS = ['p1', 'p2', 'p3'];
function config(simPort, audit, withSendTimeout) {
  const target = (alias, i) =>
    `      - { upstream: ${UPSTREAMS[i]}, model: "chaos:${FAULT_RATE}#${alias}${'abc'[i]}"` +
    `${PLAIN.has(alias) ? ', stream_upstream: false' : ''} }`;
  return `# the soak's keel (bench/soak.mjs): every target a chaos model of its own
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${audit}
audit_max_size: 4g
${withSendTimeout ? `send_timeout: ${SEND_TIMEOUT_MS}ms\n` : ''}defaults:
  timeouts: { connect: 1s, first_byte: 1s, stall: 500ms, total: ${TOTAL_MS}ms }
  retry: { same_target: 1, backoff: 50ms, max_wait: 1s }
  breaker: { failures: 3, cooldown: 2s, max_cooldown: 10s }
upstreams:
${UPSTREAMS.map((u) => `  - { name: ${u}, base_url: "http://127.0.0.1:${simPort}/v1" }`).join('\n')}
models:
${ALIASES.map((a) => `  - name: ${a}\n    targets:\n${[0, 1, 2].map((i) => target(a, i)).join('\n')}`).join('\n')}
  - { name: settle, targets: [ { upstream: p1, model: "healthy#settle" } ] }
`;
}

// ---------------------------------------------------------------- the plan: one entry per request

// behaviours: normal (reads at once), slow (pauses 50 ms after each read of a long answer),
// stall (reads the headers, then nothing for send_timeout + 2 s, then the rest), vanish (drops
// the connection 1 ms to 1.5 s after the request is sent), stall-vanish (stops reading after
// the headers and drops the connection 0.3 to 1.5 s after the request was sent)
function plan(n, seqBase) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = rand();
    const behaviour = r < 0.86 ? 'normal' : r < 0.89 ? 'slow' : r < 0.9 ? 'stall' : r < 0.91 ? 'stall-vanish' : 'vanish';
    const p = {
      seq: seqBase + i,
      alias: pick(ALIASES),
      stream: rand() < 0.5,
      behaviour,
      tokens: between(1, 200),
      usage: rand() < 0.5,
      budget: 0, // x-keel-timeout, ms; 0 = none (the deadline is total)
      vanishAfter: 0,
    };
    if (behaviour === 'slow') p.tokens = between(1500, 6000); // 0.25 to 1 MB
    // ~12 MB: far more than the socket buffers on the way hold (keel's send buffer, 256 KiB,
    // and the client's receive buffer), so that keel's write to this client really blocks
    // (a non-stream answer is about 5 bytes a token, a streamed one 170)
    if (behaviour === 'stall' || behaviour === 'stall-vanish') p.tokens = p.stream ? 72000 : 2400000;
    if ((behaviour === 'stall' || behaviour === 'stall-vanish') && !p.stream && !PLAIN.has(p.alias))
      p.alias = ['m4', 'm5', 'm6'][Number(p.alias.slice(1)) - 1];
    if (behaviour === 'vanish') p.vanishAfter = between(1, 1500);
    if (behaviour === 'stall-vanish') p.vanishAfter = between(300, 1500);
    if (behaviour === 'normal' && rand() < 0.15) p.budget = between(800, 2500);
    out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------- one request

let api; // {host, port}
let agent;
let vanishers = 0; // index for the body length that identifies a vanished client's audit line
const VANISH_LEN = 8192; // vanishing clients' bodies are VANISH_LEN + their index bytes long
const records = [];
let inflight = 0;
let peakInflight = 0;

function body(p) {
  const o = { model: p.alias, messages: [{ role: 'user', content: `soak #${p.seq}` }], max_tokens: p.tokens };
  if (p.stream) o.stream = true;
  if (p.stream && p.usage) o.stream_options = { include_usage: true };
  let s = JSON.stringify(o);
  if (p.vanishAfter) {
    p.vanishIdx = vanishers++;
    const want = VANISH_LEN + p.vanishIdx;
    o.messages[0].content += ' ' + 'x'.repeat(want - Buffer.byteLength(s) - 1);
    s = JSON.stringify(o);
  }
  return s;
}

// Parses SSE bytes as they come: data events and comments; notes what a check needs.
// light: for the multi-megabyte answers of clients that stop reading, only the last events are
// parsed (the terminal one and the one before it); the checks of content and models are left to
// the other clients
class Sse {
  constructor(light) {
    this.light = light;
    this.bytes = 0;
    this.tail = '';
    this.buf = '';
    this.content = '';
    this.models = new Set(); // the chunks' "model": the target's (each target has a name of its own)
    this.ids = new Set(); // the chunks' "id": the sim's answer (chaos gives each its own)
    this.done = 0; // [DONE] events
    this.errors = []; // error events
    this.afterEnd = 0; // data events after the first [DONE] or error event
    this.bad = []; // data that is not JSON
    this.events = 0;
  }
  feed(s) {
    if (this.light) {
      this.bytes += s.length;
      this.tail = (this.tail + s).slice(-8192);
      return;
    }
    this.buf += s;
    let i;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const ev = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const data = ev.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (data.length > 0) this.event(data);
    }
  }
  // light mode, at the end: the last two events of the tail, as if they were all there was
  finish() {
    if (!this.light) return;
    const evs = this.tail.split('\n\n');
    this.buf = evs.pop(); // what follows the last blank line: nothing, if the stream ended well
    for (const ev of evs.slice(-2)) {
      const data = ev.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (data.length > 0) this.event(data);
    }
    this.models.clear();
    this.ids.clear();
    this.content = '';
  }
  event(data) {
    this.events++;
    if (this.done || this.errors.length) this.afterEnd++;
    if (data === '[DONE]') {
      this.done++;
      return;
    }
    let j;
    try {
      j = JSON.parse(data);
    } catch {
      this.bad.push(data.slice(0, 80));
      return;
    }
    if (j.error) {
      this.errors.push(j.error);
      return;
    }
    if (j.model !== undefined) this.models.add(j.model);
    if (j.id !== undefined) this.ids.add(j.id);
    for (const c of j.choices || []) this.content += c.delta?.content || '';
  }
}

function send(p) {
  const payload = body(p);
  const rec = {
    p, id: null, status: 0, t0: 0, tHead: 0, tEnd: 0, wall0: 0, vanishWall: 0, vanished: false,
    outcome: null, problems: [], pausedAfterDeadline: 0, len: Buffer.byteLength(payload),
  };
  records.push(rec);
  inflight++;
  if (inflight > peakInflight) peakInflight = inflight;
  const headers = { 'content-type': 'application/json', 'content-length': rec.len };
  if (p.budget) headers['x-keel-timeout'] = `${p.budget}ms`;
  const deadline = p.budget ? Math.min(p.budget, TOTAL_MS) : TOTAL_MS;
  rec.deadline = deadline;
  let settled = false;
  const settle = (outcome) => {
    if (settled) return;
    settled = true;
    rec.outcome = outcome;
    rec.tEnd = performance.now();
    inflight--;
    judge(rec);
    rec.sse = rec.chunks = null; // judged: the answer's text is no longer needed
  };
  const req = http.request({ ...api, path: '/v1/chat/completions', method: 'POST', headers, agent });
  rec.t0 = performance.now();
  rec.wall0 = Date.now();
  let pausedAt = 0; // the client itself is not reading since (slow, stall)
  const pause = (res) => {
    pausedAt = performance.now();
    res.pause();
  };
  const resume = (res) => {
    const now = performance.now();
    const dl = rec.t0 + deadline;
    if (now > dl) rec.pausedAfterDeadline += now - Math.max(pausedAt, dl);
    pausedAt = 0;
    res.resume();
  };
  req.on('error', (e) => {
    if (rec.vanished) return settle('vanished');
    rec.error = `${e.code || ''} ${e.message}`;
    settle('error');
  });
  req.on('response', (res) => {
    rec.tHead = performance.now();
    rec.status = res.statusCode;
    rec.id = res.headers['x-keel-request-id'] || null;
    rec.kmodel = res.headers['x-keel-model'];
    rec.attemptsHdr = res.headers['x-keel-attempts'];
    rec.ctype = res.headers['content-type'] || '';
    const sse = rec.ctype.startsWith('text/event-stream');
    const stall = p.behaviour === 'stall' || p.behaviour === 'stall-vanish';
    if (sse) rec.sse = new Sse(stall);
    else rec.chunks = [];
    res.setEncoding('utf8');
    if (p.behaviour === 'stall-vanish') pause(res);
    if (p.behaviour === 'stall') {
      pause(res);
      setTimeout(() => resume(res), SEND_TIMEOUT_MS + 2000);
    }
    res.on('data', (d) => {
      if (sse) rec.sse.feed(d);
      else rec.chunks.push(d);
      if (p.behaviour === 'slow') {
        pause(res);
        setTimeout(() => resume(res), 50);
      }
    });
    res.on('end', () => settle(rec.vanished ? 'vanished' : 'answer'));
    res.on('close', () => {
      if (!res.complete) {
        if (rec.vanished) return settle('vanished');
        rec.error = 'the connection closed before the answer was complete';
        settle('cut');
      }
    });
    res.on('error', () => {});
  });
  if (p.vanishAfter) {
    req.on('finish', () => {
      setTimeout(() => {
        if (settled) return;
        rec.vanished = true;
        rec.vanishWall = Date.now();
        rec.vanishedAt = rec.tHead ? 'after the headers' : 'before the headers';
        req.destroy();
        settle('vanished');
      }, p.vanishAfter);
    });
  }
  req.end(payload);
}

// ---------------------------------------------------------------- checks on what the client saw

const violations = [];
function violation(rec, what) {
  rec.problems.push(what);
  violations.push({ seq: rec.p.seq, id: rec.id, what });
}

function judge(rec) {
  const p = rec.p;
  if (rec.outcome === 'vanished') return; // no answer to check; its audit line is checked later
  const ms = rec.tEnd - rec.t0;
  rec.ms = ms;
  if (rec.outcome === 'error' || rec.outcome === 'cut') {
    // a client that stopped reading past send_timeout is dropped by keel: that is its answer
    if (p.behaviour === 'stall' && sendTimeout && rec.tHead) {
      rec.kind = 'dropped';
      return;
    }
    return violation(rec, `no clean answer: ${rec.error} (status ${rec.status}, ${ms.toFixed(0)} ms)`);
  }
  if (!rec.id) violation(rec, `no x-keel-request-id (status ${rec.status})`);
  if (rec.sse) {
    const s = rec.sse;
    s.finish();
    if (rec.status !== 200) violation(rec, `an event stream with status ${rec.status}`);
    if (s.buf.length) violation(rec, `the stream ended inside an event: ${JSON.stringify(s.buf.slice(0, 80))}`);
    if (s.bad.length) violation(rec, `non-JSON data event(s): ${s.bad[0]}`);
    if (s.done + s.errors.length !== 1)
      violation(rec, `${s.done} [DONE] and ${s.errors.length} error events: exactly one terminal expected`);
    if (s.afterEnd) violation(rec, `${s.afterEnd} data event(s) after the terminal one`);
    if (s.models.size > 1) violation(rec, `a stream mixing targets: chunks name ${[...s.models].join(', ')}`);
    if (s.ids.size > 1) violation(rec, `a stream mixing upstream answers: chunk ids ${[...s.ids].join(', ')}`);
    if (s.models.size === 1 && rec.kmodel && !s.models.has(rec.kmodel))
      violation(rec, `chunks name ${[...s.models][0]}, x-keel-model says ${rec.kmodel}`);
    const full = answerText(p.tokens), five = answerText(5);
    if (s.done && !s.light) {
      if (s.content !== full && s.content !== five)
        violation(rec, `[DONE] after ${s.content.length} characters of content, not the ${full.length} sent`);
      rec.kind = 'ok';
    } else if (s.done) {
      rec.kind = 'ok';
    } else if (s.errors.length) {
      const e = s.errors[0];
      if (typeof e.code !== 'string' || typeof e.message !== 'string')
        violation(rec, `an error event without code or message: ${JSON.stringify(e).slice(0, 120)}`);
      if (!s.light && !full.startsWith(s.content) && !five.startsWith(s.content))
        violation(rec, `cut stream's content is not a prefix of the answer sent (${s.content.length} chars)`);
      rec.kind = `cut:${e.code}`;
    }
  } else {
    const text = rec.chunks.join('');
    let j;
    try {
      j = JSON.parse(text);
    } catch {
      return violation(rec, `status ${rec.status}, a body that is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
    }
    if (rec.status === 200) {
      const content = j.choices?.[0]?.message?.content;
      if (content !== answerText(p.tokens) && content !== answerText(5))
        violation(rec, `200 with content of ${content?.length} characters, not the answer sent`);
      if (j.model !== rec.kmodel) violation(rec, `body names model ${j.model}, x-keel-model says ${rec.kmodel}`);
      rec.kind = 'ok';
    } else {
      const code = j.error?.code;
      if (typeof code !== 'string' || typeof j.error?.message !== 'string')
        violation(rec, `status ${rec.status} without an OpenAI error envelope: ${text.slice(0, 120)}`);
      else if (!ERROR_CODES.has(code)) violation(rec, `status ${rec.status} with unexpected code ${code}`);
      rec.kind = `${rec.status}:${code}`;
    }
  }
  // deadline: measured by the client from before its request left until the last byte arrived,
  // less the time it chose not to read after the deadline (slow readers)
  if (p.behaviour === 'normal' || p.behaviour === 'slow' || p.behaviour === 'vanish') {
    const late = ms - rec.pausedAfterDeadline - rec.deadline;
    rec.late = late;
    if (late > LATE_SLACK_MS) {
      const lag = lagAround(rec.tEnd, 1000);
      if (late - lag > LATE_SLACK_MS)
        violation(rec, `answered ${late.toFixed(0)} ms after its deadline of ${rec.deadline} ms (${rec.kind}, ` +
          `driver loop lag ${lag.toFixed(0)} ms; attempts: ${rec.attemptsHdr})`);
      else lateExcused.push({ seq: p.seq, late, lag });
    }
  }
}

// ---------------------------------------------------------------- the driver's own loop lag

const lags = []; // [time, lag] where lag > 20 ms
let maxLag = 0;
const lateExcused = [];
function startLagMonitor() {
  let last = performance.now();
  return setInterval(() => {
    const now = performance.now();
    const lag = now - last - 10;
    last = now;
    if (lag > maxLag) maxLag = lag;
    if (lag > 20) lags.push([now, lag]);
  }, 10);
}
function lagAround(t, window) {
  let m = 0;
  for (let i = lags.length - 1; i >= 0 && lags[i][0] >= t - window; i--) if (lags[i][0] <= t + 50) m = Math.max(m, lags[i][1]);
  return m;
}

// ---------------------------------------------------------------- load

async function load(entries, rate) {
  const t0 = performance.now();
  let next = 0;
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(entries.length, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      while (next < due) send(entries[next++]);
      if (next < entries.length) setTimeout(tick, 5);
      else resolve();
    };
    tick();
  });
  while (inflight > 0) await sleep(50);
  return (performance.now() - t0) / 1000;
}

async function getJson(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let s = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (s += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(s));
        } catch (e) {
          reject(e);
        }
      });
    }).on('error', reject);
  });
}

// Lets keel come to rest: the driver's connections closed, nothing in flight, the sim's idle
// keep-alive timeout (10 s) passed, then a few requests a second apart so that curl drops the
// upstream connections the sim has closed from its cache (it looks at most once a second).
async function rest(keel, adminUrl, label) {
  agent.destroy();
  agent = newAgent();
  for (let i = 0; i < 100; i++) {
    const s = await getJson(`${adminUrl}/admin/status`);
    if (s.inflight === 0) break;
    await sleep(100);
  }
  const busy = { fds: fds(keel.proc.pid), rssKB: status(keel.proc.pid, 'VmRSS') };
  await sleep(11000);
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => {
      const req = http.request({ ...api, path: '/v1/chat/completions', method: 'POST', agent: false,
        headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', resolve);
      req.end(JSON.stringify({ model: 'settle', messages: [] }));
    });
    await sleep(1100);
  }
  settleRequests += 3;
  const s = await getJson(`${adminUrl}/admin/status`);
  await sleep(300); // keel closes that admin connection
  return { label, inflight: s.inflight, fds: fds(keel.proc.pid), fdList: fdList(keel.proc.pid),
    rssKB: status(keel.proc.pid, 'VmRSS'), busy };
}
let settleRequests = 0;

function newAgent() {
  // idle client connections are closed by the client after 1 s, long before keel's idle_timeout,
  // so a reused connection never races keel closing it
  return new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, timeout: 1000, scheduling: 'lifo' });
}

// ---------------------------------------------------------------- main

let sendTimeout = false;

async function main() {
  const t0 = Date.now();
  const sim = await startChild('sim', ['sim', '--listen', '127.0.0.1:0'], /sim listening on 127\.0\.0\.1:(\d+)/,
    { KEEL_SIM_SEED: String(SEED) });
  const simPort = Number(sim.match[1]);
  const audit = path.join(DIR, 'audit.jsonl');
  // a SOAK_DIR used before still holds that run's audit lines: they would be counted as this one's
  for (const f of fs.readdirSync(DIR)) if (f.startsWith('audit.jsonl')) fs.rmSync(path.join(DIR, f));
  const cfg = path.join(DIR, 'keel.yaml');
  fs.writeFileSync(cfg, config(simPort, audit, true));
  const chk = spawnSync(KEEL, ['check', '-c', cfg], { encoding: 'utf8' });
  sendTimeout = chk.status === 0;
  if (!sendTimeout) {
    console.log(`soak: this keel has no send_timeout (keel check: ${chk.stderr.trim()}); running without it`);
    fs.writeFileSync(cfg, config(simPort, audit, false));
    const c2 = spawnSync(KEEL, ['check', '-c', cfg], { encoding: 'utf8' });
    if (c2.status !== 0) throw new Error(`keel check refuses the soak's config: ${c2.stderr}`);
  }
  const keel = await startChild('keel', ['serve', '-c', cfg], /listening api=127\.0\.0\.1:(\d+) admin=127\.0\.0\.1:(\d+)/);
  api = { host: '127.0.0.1', port: Number(keel.match[1]) };
  const adminUrl = `http://127.0.0.1:${keel.match[2]}`;
  agent = newAgent();
  const lagTimer = startLagMonitor();
  console.log(`soak: ${WARMUP} warm-up + ${N} requests at ${RATE}/s, fault rate ${FAULT_RATE}, seed ${SEED}, ` +
    `send_timeout ${sendTimeout ? `${SEND_TIMEOUT_MS} ms` : 'absent'}; keel ${KEEL} (pid ${keel.proc.pid}); ` +
    `logs in ${DIR}`);

  const warm = plan(WARMUP, 0);
  await load(warm, RATE);
  const base = await rest(keel, adminUrl, 'baseline');
  console.log(`soak: baseline after warm-up: ${base.fds} fds, RSS ${(base.rssKB / 1024).toFixed(1)} MB`);
  const cpu0 = { keel: cpuSeconds(keel.proc.pid), sim: cpuSeconds(sim.proc.pid), me: process.cpuUsage() };
  const main = plan(N, WARMUP);
  let ticks = 0;
  const progress = setInterval(() => {
    const rss = status(keel.proc.pid, 'VmRSS');
    rssSeries.push([records.length - WARMUP, rss]);
    if (++ticks % 6) return;
    console.log(`soak: ${records.length - WARMUP}/${N} sent, ${inflight} in flight, ${violations.length} violations, ` +
      `keel ${fds(keel.proc.pid)} fds, RSS ${(rss / 1024).toFixed(1)} MB`);
  }, 5000);
  const wall = await load(main, RATE);
  clearInterval(progress);
  const cpu = {
    keel: cpuSeconds(keel.proc.pid) - cpu0.keel,
    sim: cpuSeconds(sim.proc.pid) - cpu0.sim,
    me: (process.cpuUsage(cpu0.me).user + process.cpuUsage(cpu0.me).system) / 1e6,
  };
  const hwmKB = status(keel.proc.pid, 'VmHWM');
  const after = await rest(keel, adminUrl, 'after');
  clearInterval(lagTimer);
  console.log(`soak: after the load: ${after.fds} fds, RSS ${(after.rssKB / 1024).toFixed(1)} MB`);
  const stats = await getJson(`http://127.0.0.1:${simPort}/sim/stats`);
  agent.destroy();

  const keelExit = await stopChild(keel);
  const simExit = await stopChild(sim);
  await sleep(100);
  const breakers = count(fs.readFileSync(keel.log, 'utf8').split('\n').filter((l) => l.includes('"type":"breaker"')),
    (l) => { const j = JSON.parse(l.slice(l.indexOf('{'))); return `${j.from}->${j.to}`; });
  const res = { wall, cpu, base, after, hwmKB, stats, keelExit, simExit, t0, breakers };
  checkResources(res);
  checkSanitizers(keel, sim);
  const auditRep = checkAudit(audit);
  const cross = crossCheck(auditRep, stats);
  const timers = checkTimers(auditRep);
  report(res, auditRep, cross, timers);
  process.exitCode = violations.length ? 1 : 0;
}

// ---------------------------------------------------------------- resources, sanitizers

function sysViolation(what, id = null) {
  violations.push({ seq: '-', id, what });
}

function checkResources(r) {
  if (r.after.fds > r.base.fds + FD_SLACK) {
    const was = new Set(r.base.fdList);
    sysViolation(`keel holds ${r.after.fds} file descriptors after the load, ${r.base.fds} at the baseline; ` +
      `new or changed: ${r.after.fdList.filter((f) => !was.has(f)).join('; ')}; baseline: ${r.base.fdList.join('; ')}`);
  }
  if (!SAN && r.after.rssKB > r.base.rssKB + RSS_SLACK_KB)
    sysViolation(`keel's RSS is ${r.after.rssKB} KB after the load, ${r.base.rssKB} KB at the baseline ` +
      `(tolerance +${RSS_SLACK_KB} KB)`);
  const mid = rssMid();
  if (!SAN && mid[1] && r.after.rssKB > mid[1] + RSS_GROWTH_KB)
    sysViolation(`keel's RSS grew over the second half of the load: ${mid[1]} KB after ${mid[0]} requests, ` +
      `${r.after.rssKB} KB at rest after all of them (tolerance +${RSS_GROWTH_KB} KB)`);
  if (r.after.inflight !== 0) sysViolation(`keel reports ${r.after.inflight} requests in flight after the load`);
  if (r.keelExit !== 0) sysViolation(`keel serve exited with ${r.keelExit} on SIGTERM`);
  if (r.simExit !== 0) sysViolation(`keel sim exited with ${r.simExit} on SIGTERM`);
}

const rssSeries = []; // [requests sent, keel's RSS KB] every 5 s during the load
function rssMid() {
  return rssSeries.find(([sent]) => sent >= N / 2) || rssSeries[rssSeries.length - 1] || [0, 0];
}

const sanitizerReports = { keel: 0, sim: 0 };
function checkSanitizers(keel, sim) {
  for (const [name, c] of [['keel', keel], ['sim', sim]]) {
    const log = fs.readFileSync(c.log, 'utf8');
    const hits = log.split('\n').filter((l) => /Sanitizer|runtime error:/.test(l));
    sanitizerReports[name] = hits.length;
    if (hits.length) sysViolation(`${name}: sanitizer report(s) in ${c.log}: ${hits.slice(0, 3).join(' | ')}`);
  }
}

// ---------------------------------------------------------------- the audit log

function checkAudit(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length);
  const byId = new Map();
  const byLen = new Map();
  const dup = [];
  for (const l of lines) {
    let j;
    try {
      j = JSON.parse(l);
    } catch {
      sysViolation(`an audit line that is not JSON: ${l.slice(0, 100)}`);
      continue;
    }
    if (byId.has(j.id)) dup.push(j.id);
    byId.set(j.id, j);
    if (j.prompt_bytes >= VANISH_LEN) byLen.set(j.prompt_bytes, (byLen.get(j.prompt_bytes) || []).concat([j]));
  }
  for (const id of dup) sysViolation(`audit: request id ${id} has more than one line`);
  const matched = new Set();
  const gone = { noticedMs: [], answeredFirst: 0 };
  const dropped = [];
  for (const rec of records) {
    const p = rec.p;
    let line = rec.id ? byId.get(rec.id) : undefined;
    if (!line && p.vanishAfter) {
      const c = byLen.get(VANISH_LEN + p.vanishIdx) || [];
      if (c.length > 1) violation(rec, `${c.length} audit lines for one vanished client`);
      line = c[0];
    }
    if (!line) {
      violation(rec, `no audit line (${p.behaviour}, ${rec.outcome}${rec.vanishedAt ? ` ${rec.vanishedAt}` : ''}, ` +
        `${rec.len} bytes sent)`);
      continue;
    }
    matched.add(line.id);
    rec.audit = line;
    if (line.model !== p.alias || line.stream !== p.stream)
      violation(rec, `audit says model ${line.model} stream ${line.stream}, the client sent ${p.alias} ${p.stream}`);
    if (line.prompt_bytes !== rec.len) violation(rec, `audit says prompt_bytes ${line.prompt_bytes}, sent ${rec.len}`);
    if (rec.outcome === 'answer') {
      if (line.status !== rec.status) violation(rec, `audit says status ${line.status}, the client got ${rec.status}`);
      if (line.client_gone) violation(rec, `audit says client_gone for a client that read its whole answer`);
      // the deadline from keel's side: arrival to the last byte handed to the socket
      if (p.behaviour === 'normal' && line.ms > rec.deadline + LATE_SLACK_MS)
        violation(rec, `audit: ${line.ms} ms for a deadline of ${rec.deadline} ms (${line.class})`);
    } else if (rec.outcome === 'vanished') {
      if (line.client_gone) {
        // keel noticed: when, against when the client left (both wall clocks, ms)
        const ended = Date.parse(line.ts) + line.ms;
        const noticed = ended - rec.vanishWall;
        gone.noticedMs.push(noticed);
        if (noticed > GONE_NOTICE_MS)
          violation(rec, `keel noticed the vanished client ${noticed} ms after it left (audit ${line.class})`);
      } else {
        // the answer was complete and on its way when the client left: fine if keel ended it
        // before the client left (give or take the clocks' ms)
        // (or within the disconnect probe's reach of it: keel had not seen the FIN yet)
        const ended = Date.parse(line.ts) + line.ms;
        if (ended > rec.vanishWall + GONE_NOTICE_MS) {
          violation(rec, `the client vanished ${ended - rec.vanishWall} ms before keel finished, ` +
            `yet the audit has client_gone false (status ${line.status}, ${line.class})`);
        } else gone.answeredFirst++;
      }
    } else if (rec.kind === 'dropped') {
      if (p.stream) dropped.push(line.ms - (rec.tHead - rec.t0));
      if (!line.client_gone) violation(rec, `dropped by keel (send_timeout) but the audit has client_gone false`);
    }
  }
  const extra = [...byId.values()].filter((l) => !matched.has(l.id) && l.model !== 'settle');
  for (const l of extra.slice(0, 20)) sysViolation(`an audit line for no request the driver sent: ${JSON.stringify(l).slice(0, 200)}`);
  if (extra.length > 20) sysViolation(`... and ${extra.length - 20} more audit lines for no request sent`);
  return { lines: lines.length, byId, gone, dropped };
}

// ---------------------------------------------------------------- the sim's faults vs keel's classes

// what keel may call an attempt whose answer was this fault; an attempt cut short by the
// client leaving or the request's deadline is client_gone or deadline_exceeded whatever it was
// (the two slow ones answer within first_byte and stall, but a sim whose loop or core is busy
// can make them late, and then keel is right to time them out)
const MAY_BE = {
  none: ['ok'], 'no-done': ['ok'], 'malformed-chunk': ['ok', 'empty_response'],
  'slow-tokens:150': ['ok', 'first_byte_timeout', 'stall_timeout'], 'slow-first-token:700': ['ok', 'first_byte_timeout'],
  hang: ['first_byte_timeout'], 'headers-then-silence': ['first_byte_timeout'], 'heartbeat-only': ['first_byte_timeout'],
  'stall-after': ['stall_timeout'],
  500: ['server_error'], 502: ['server_error'], 503: ['server_error'], 529: ['overloaded'], 429: ['rate_limited'],
  quota: ['quota'], 401: ['auth'], 404: ['not_found'],
  'reset-before-headers': ['reset'], 'reset-mid-stream': ['reset'],
  'error-before-content': ['stream_error'], 'error-after-content': ['stream_error'], 'empty-choices': ['empty_response'],
};
const CUT_SHORT = ['client_gone', 'deadline_exceeded'];

// libcurl resends a request whose reused connection dies before any byte of the answer (the
// sim's reset-before-headers), on a fresh connection and unseen by keel: such a draw is in the
// sim's counts but is no attempt of keel's
function crossCheck(auditRep, stats) {
  const perTarget = new Map(); // sim name -> {classes: {cls: n}, attempts}
  for (const line of auditRep.byId.values()) {
    for (const a of line.attempts || []) {
      if (a.class === 'skipped') continue;
      const t = perTarget.get(a.model) || { classes: {}, attempts: 0 };
      t.classes[a.class] = (t.classes[a.class] || 0) + 1;
      t.attempts++;
      perTarget.set(a.model, t);
    }
  }
  const faults = {};
  const classes = {};
  let resent = 0;
  for (const [name, t] of perTarget) {
    if (!name.startsWith('chaos')) continue;
    const f = stats.chaos[name] || {};
    const hits = stats.hits[name] || 0;
    const cut = CUT_SHORT.reduce((n, c) => n + (t.classes[c] || 0), 0);
    for (const [k, n] of Object.entries(f)) faults[k] = (faults[k] || 0) + n;
    for (const [k, n] of Object.entries(t.classes)) classes[k] = (classes[k] || 0) + n;
    // every attempt reached the sim unless cut short first; extra draws are libcurl's resends
    const extra = hits - t.attempts;
    if (extra > (f['reset-before-headers'] || 0) || -extra > cut)
      sysViolation(`${name}: keel made ${t.attempts} attempts (${cut} cut short), the sim saw ${hits} ` +
        `(${f['reset-before-headers'] || 0} reset before the headers)`);
    resent += Math.max(0, extra);
    const unseen = Math.max(0, extra + cut); // draws whose outcome no attempt of keel's shows
    // keel's classes must be ones the sim caused: none invented ...
    for (const [cls, n] of Object.entries(t.classes)) {
      if (CUT_SHORT.includes(cls)) continue;
      const could = Object.entries(f).filter(([k]) => (MAY_BE[k] || []).includes(cls)).reduce((s, [, v]) => s + v, 0);
      if (n > could) sysViolation(`${name}: keel recorded ${n} ${cls} attempts; the sim caused at most ${could}`);
    }
    // ... and none lost
    const sure = {};
    for (const [k, n] of Object.entries(f)) {
      const may = MAY_BE[k];
      if (!may) sysViolation(`${name}: the sim injected ${k}, which the soak does not know`);
      else if (may.length === 1) sure[may[0]] = (sure[may[0]] || 0) + n;
    }
    for (const [cls, n] of Object.entries(sure)) {
      const got = t.classes[cls] || 0;
      const slack = cls === 'reset' ? unseen : cut;
      if (got < n - slack)
        sysViolation(`${name}: the sim injected ${n} faults keel must call ${cls}, keel recorded ${got} ` +
          `(${cut} attempts cut short${cls === 'reset' ? `, ${extra} resent by libcurl` : ''})`);
    }
  }
  return { faults, classes, targets: perTarget.size, resent };
}

// ---------------------------------------------------------------- each attempt's own timers

// first_byte (1 s) and stall (500 ms) fire on time: never early, at most LATE_SLACK_MS late.
// An attempt's ms is its duration, except the one a stream committed to (the last attempt of a
// stream answered 200), whose ms is its time to first content. Every stall timeout here comes
// from the sim's stall-after (first content at once, then silence), so it is due stall after
// the attempt's start (before the commit point) or after the request's first content (after it).
function checkTimers(auditRep) {
  const fb = [];
  const stall = [];
  for (const line of auditRep.byId.values()) {
    const at = line.attempts || [];
    at.forEach((a, i) => {
      if (a.class === 'first_byte_timeout') {
        fb.push(a.ms);
        if (a.ms < 1000 || a.ms > 1000 + LATE_SLACK_MS)
          sysViolation(`a first_byte_timeout (1000 ms) after ${a.ms} ms (${a.model})`, line.id);
      } else if (a.class === 'stall_timeout') {
        const committed = i === at.length - 1 && line.stream && line.status === 200;
        const after = committed ? line.ms - (line.ttft_ms ?? 0) : a.ms;
        stall.push(after);
        if (after > 500 + LATE_SLACK_MS)
          sysViolation(`a stall_timeout (500 ms) ${after} ms after the first content, ` +
            `${committed ? 'after' : 'before'} the commit point (${a.model})`, line.id);
      }
    });
  }
  return { fb, stall };
}

// ---------------------------------------------------------------- report

function pct(xs, q) {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}
function count(xs, f) {
  const m = {};
  for (const x of xs) {
    const k = f(x);
    if (k !== undefined) m[k] = (m[k] || 0) + 1;
  }
  return m;
}
const fmt = (m) => Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');

function report(r, a, cross, timers) {
  const total = records.length;
  const by = count(records, (x) => x.p.behaviour);
  const streams = records.filter((x) => x.p.stream).length;
  const answered = records.filter((x) => x.outcome === 'answer');
  const kinds = count(answered, (x) => x.kind);
  const vanished = records.filter((x) => x.outcome === 'vanished');
  const stalls = records.filter((x) => x.p.behaviour === 'stall');
  const late = answered.filter((x) => x.late !== undefined).map((x) => x.late);
  const times = answered.filter((x) => x.p.behaviour === 'normal').map((x) => x.ms);
  const auditMs = answered.filter((x) => x.audit && x.p.behaviour === 'normal').map((x) => x.audit.ms - x.deadline);
  const injected = Object.entries(cross.faults).filter(([k]) => k !== 'none').reduce((s, [, v]) => s + v, 0);
  const attempts = Object.values(cross.classes).reduce((s, v) => s + v, 0);
  const mb = (kb) => (kb / 1024).toFixed(1);
  const smb = (kb) => `${kb >= 0 ? '+' : ''}${mb(kb)}`; // signed
  const lines = [];
  const out = (s = '') => lines.push(s);
  out(`Generated by \`${SAN ? 'make soak SAN=1' : 'make soak'}\` (bench/soak.mjs) on ${new Date(r.t0).toISOString().slice(0, 10)}: ` +
    `${os.cpus().length} cores, ${SAN ? 'the ASan+UBSan build' : 'the normal build'} (${path.relative(process.cwd(), KEEL)}), seed ${SEED}.`);
  out();
  out('| figure | value |');
  out('|---|---|');
  out(`| requests | ${total} (${WARMUP} warm-up before the baseline, then ${N} at ${RATE}/s), ${streams} streaming (${(100 * streams / total).toFixed(1)}%) |`);
  out(`| clients | ${fmt(by)} |`);
  out(`| wall time of the load | ${r.wall.toFixed(1)} s (${(N / r.wall).toFixed(0)} req/s); whole run ${((Date.now() - r.t0) / 1000).toFixed(0)} s |`);
  out(`| attempts (audit) | ${attempts} over ${cross.targets} chaos targets, ${(attempts / total).toFixed(2)} per request; ` +
    `the sim saw ${cross.resent} more: libcurl's silent resends after a reset before the headers on a reused connection |`);
  out(`| faults injected by the sim | ${injected} of ${attempts} attempts (${(100 * injected / Math.max(1, Object.values(cross.faults).reduce((s, v) => s + v, 0))).toFixed(1)}%): ${fmt(Object.fromEntries(Object.entries(cross.faults).filter(([k]) => k !== 'none')))} |`);
  out(`| attempt classes (audit) | ${fmt(cross.classes)} |`);
  const { fb, stall } = timers;
  out(`| timeouts fired | first_byte (1 s) after ${pct(fb, 0.5)} / ${pct(fb, 0.99)} / ${Math.max(0, ...fb)} ms, ` +
    `stall (500 ms) ${pct(stall, 0.5)} / ${pct(stall, 0.99)} / ${Math.max(0, ...stall)} ms after the content stopped (p50/p99/max); ` +
    `slow faults the sim sent late enough to time out: ${['first_byte_timeout', 'stall_timeout'].map((c) => c + ' ' +
      Math.max(0, (cross.classes[c] || 0) - ['hang', 'headers-then-silence', 'heartbeat-only', 'stall-after']
        .filter((k) => MAY_BE[k][0] === c).reduce((n, k) => n + (cross.faults[k] || 0), 0))).join(', ')} at least |`);
  out(`| answers the clients read | ${answered.length}: ${fmt(kinds)} |`);
  const leavers = records.filter((x) => x.p.vanishAfter);
  out(`| clients that vanished | ${leavers.length} set to leave; ${vanished.length} left mid-request ` +
    `(${fmt(count(vanished, (x) => `${x.p.behaviour} ${x.vanishedAt}`))}), the rest had their whole answer first; ` +
    `keel's audit ended theirs ${pct(a.gone.noticedMs, 0.5)} / ${pct(a.gone.noticedMs, 0.99)} / ${Math.max(0, ...a.gone.noticedMs)} ms ` +
    `(p50/p99/max) after they left, ${a.gone.answeredFirst} had been answered in full before keel could see them go |`);
  out(`| clients that stopped reading | ${stalls.length}: ${fmt(count(stalls, (x) => x.kind || x.outcome))}` +
    (a.dropped.length ? `; keel's audit ended the streams dropped ${pct(a.dropped, 0.5).toFixed(0)} / ${Math.max(...a.dropped).toFixed(0)} ms (p50/max) after they stopped reading` : '') +
    `${sendTimeout ? ` (send_timeout ${SEND_TIMEOUT_MS} ms)` : ' (no send_timeout in this build)'} |`);
  out(`| client time, normal readers | p50 ${pct(times, 0.5).toFixed(0)} ms, p99 ${pct(times, 0.99).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms |`);
  out(`| latest answer vs its deadline | client side ${Math.max(...late).toFixed(0)} ms, keel's audit ${Math.max(...auditMs)} ms (limit +${LATE_SLACK_MS} ms) |`);
  out(`| keel fds | ${r.base.fds} at the baseline, ${r.after.fds} after (${r.after.busy.fds} right after the load, before the sim's idle connections closed) |`);
  const q = (f) => rssSeries.find(([sent]) => sent >= f * N) || [0, 0];
  out(`| keel RSS | ${mb(r.base.rssKB)} MB at the baseline, ${mb(r.after.rssKB)} MB after (${smb(r.after.rssKB - r.base.rssKB)} MB, ` +
    `limit +${mb(RSS_SLACK_KB)}); during the load ${[0.25, 0.5, 0.75].map((f) => `${mb(q(f)[1])}`).join(' / ')} MB at 25/50/75% ` +
    `(after vs 50%: ${smb(r.after.rssKB - rssMid()[1])} MB, limit +${mb(RSS_GROWTH_KB)}); peak ${mb(r.hwmKB)} MB |`);
  out(`| breakers | ${fmt(r.breakers)} |`);
  out(`| CPU during the load | keel ${r.cpu.keel.toFixed(1)} s, sim ${r.cpu.sim.toFixed(1)} s, driver ${r.cpu.me.toFixed(1)} s; peak ${peakInflight} requests in flight; driver loop lag max ${maxLag.toFixed(0)} ms |`);
  out(`| audit lines | ${a.lines} (${settleRequests} of them the settling requests) |`);
  out(`| sanitizer reports | keel ${sanitizerReports.keel}, sim ${sanitizerReports.sim}${SAN ? '' : ' (normal build: see the ASan+UBSan run)'} |`);
  out(`| violations | **${violations.length}** |`);
  if (violations.length) {
    // grouped by what they say, numbers and ids aside, with the first request of each group
    const groups = new Map();
    for (const v of violations) {
      const key = v.what.replace(/chaos:[^ ,;]*/g, 'T').replace(/\d+/g, 'N').slice(0, 90);
      const g = groups.get(key) || { n: 0, first: v };
      g.n++;
      groups.set(key, g);
    }
    out();
    out('| violations (grouped) | count | first |');
    out('|---|---|---|');
    for (const [, g] of [...groups].sort((x, y) => y[1].n - x[1].n))
      out(`| ${g.first.what.slice(0, 300).replace(/\|/g, '/')} | ${g.n} | seq ${g.first.seq}, id ${g.first.id ?? '-'} |`);
  }
  const md = lines.join('\n');
  fs.writeFileSync(path.join(DIR, 'summary.md'), md + '\n');
  console.log('\n' + md + '\n');
  if (lateExcused.length)
    console.log(`soak: ${lateExcused.length} late answers excused by the driver's own loop lag (max ${Math.max(...lateExcused.map((x) => x.lag)).toFixed(0)} ms)`);
  const show = violations.slice(0, 200);
  for (const v of show) console.log(`VIOLATION seq=${v.seq} id=${v.id ?? '-'}: ${v.what}`);
  if (violations.length > show.length) console.log(`... ${violations.length - show.length} more`);
  fs.writeFileSync(path.join(DIR, 'violations.txt'), violations.map((v) => `seq=${v.seq} id=${v.id ?? '-'}: ${v.what}`).join('\n') + '\n');
  console.log(violations.length ? `soak: FAILED, ${violations.length} violations (${DIR})` : `soak: passed (${DIR})`);
  if (env.SOAK_RESULTS) results(env.SOAK_RESULTS, md);
}

// ---------------------------------------------------------------- bench/RESULTS.md

const intro = () => `Each request is checked as it ends and against keel's audit log afterwards:

* **one terminal answer**: a 200 whose content is exactly what the sim sent, or a clean error: an
  OpenAI error envelope with one of keel's codes before the commit point, or, after it, one error
  event and nothing after it; a stream has exactly one \`[DONE]\` or one error event, ends on an
  event boundary and with the chunked terminator; a connection that closes early is a violation
  (except for a client that stopped reading and was dropped by \`send_timeout\`);
* **deadline**: measured by the client from before its request leaves to the last byte, less the
  time a slow reader chose not to read after the deadline: at most deadline + 100 ms (total 3 s,
  or the request's own \`x-keel-timeout\`, 0.8 to 2.5 s for 15% of the normal clients); the
  audit's \`ms\` is held to the same limit;
* **one audit line** per request: by \`x-keel-request-id\`, or, for a client that left before
  the headers, by its body length (each such client's is unique); its model, stream, status and
  \`prompt_bytes\` match, \`client_gone\` is true for a client that left mid-request (ended
  within ${GONE_NOTICE_MS} ms of its leaving), no id twice, no line for a request nobody sent;
* **no mixing**: every chunk of a stream names the same model (each target is a sim name of its
  own, and it is \`x-keel-model\`) and the same id (chaos gives each answer its own);
* **timers**: every first_byte timeout fires 1000 to 1100 ms into its attempt; every stall
  timeout at most 600 ms after the content stopped (each comes from the sim's stall-after, whose
  first content comes at once, then nothing);
* **faults vs classes**: per target, keel's attempt classes against the faults \`/sim/stats\`
  says the sim injected: no class the sim did not cause, none of the sure ones lost (beyond the
  attempts cut short by a client leaving or the deadline);
* **resources**: keel's file descriptors (\`/proc/PID/fd\`) and RSS (\`VmRSS\`) at rest after the
  load against the same at rest after a warm-up. At rest: the driver's connections closed,
  nothing in flight, 11 s for the sim to close its idle keep-alive connections, then three
  requests a second apart so that libcurl drops those from its cache. Descriptors must be back
  exactly; RSS within +8 MB (malloc keeps part of the peak; a leak grows with the requests);
* **sanitizers**: keel's and the sim's stderr hold no ASan/UBSan/LSan report, and both exit 0 on
  SIGTERM (the ASan build reports leaks at that exit).

Setup: 6 models, each a chain of 3 targets \`chaos:0.2#<model><a|b|c>\` on upstreams p1..p3 (the
same \`keel sim\`); timeouts connect 1s, first_byte 1s, stall 500ms, total 3s; retry same_target 1,
backoff 50ms, max_wait 1s; breaker failures 3, cooldown 2s, max_cooldown 10s; ${sendTimeout ? 'send_timeout 2s' : 'no send_timeout (this build has none)'}.
The sim's \`chaos\` draws, per attempt, a fault with probability 0.2, uniformly among 21: hang,
headers-then-silence, heartbeat-only, stall-after, slow-first-token:700, slow-tokens:150, 500,
502, 503, 529, 429, quota, 401, 404, reset-before-headers, reset-mid-stream,
error-before-content, error-after-content, empty-choices, malformed-chunk, no-done. Clients
(the driver, one node process, keep-alive): 86% normal (1 to 200 tokens), 3% slow readers
(0.25 to 1 MB answers, a 50 ms pause after each read), 1% stop reading after the headers
(12 MB answers, streamed or not: far more than the socket buffers on the way hold) and resume
after 4 s, 1% stop reading and vanish 0.3 to 1.5 s in, 9% vanish 1 ms to 1.5 s after sending.
Half the requests stream.`;

function results(file, md) {
  const head = SAN ? '## Soak, ASan+UBSan build' : '## Soak';
  const section = SAN
    ? `${head}\n\nThe same soak (\`make soak SAN=1\`) on \`build-san/keel\` (keel and the sim built with\n` +
      `-fsanitize=address,undefined), fewer requests at a lower rate: ASan costs CPU.\n\n${md}\n`
    : `${head}\n\n\`make soak\` (bench/soak.sh, bench/soak.mjs). ${intro()}\n\n${md}\n`;
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const lines = text.split('\n');
  const at = lines.indexOf(head);
  if (at >= 0) {
    let end = lines.findIndex((l, i) => i > at && /^## /.test(l));
    if (end < 0) end = lines.length;
    lines.splice(at, end - at, ...section.split('\n'));
    text = lines.join('\n');
  } else {
    text = text.replace(/\n*$/, '\n\n') + section;
  }
  fs.writeFileSync(file, text.replace(/\n*$/, '\n'));
  console.log(`soak: ${head} written to ${file}`);
}

main().catch((e) => {
  console.error(`soak: the run broke off: ${e.stack || e}`);
  for (const name of ['keel', 'sim']) {
    const f = path.join(DIR, `${name}.log`);
    if (fs.existsSync(f)) console.error(`--- the end of ${f}:\n${fs.readFileSync(f, 'utf8').split('\n').slice(-30).join('\n')}`);
  }
  process.exit(2);
});
