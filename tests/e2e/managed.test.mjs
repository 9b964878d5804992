// managed.test.mjs - managed local backends (seed 002) with `keel sim` as the backend keel runs:
// eviction healed on the same port, a death mid-request retried once, a hung server failed over
// without a restart storm, a crash loop backing off, idle unload, the environment, and no
// backend or zombie left behind, no descriptor of keel's reaching the backend, a probe_model that
// needs JSON escaping. Each test has a backend of its own: restarts are counted.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KEEL, attemptsOf, chat, eventually, post, sleep, startKeel, startSim, stop, streamedText, tmpdir } from './lib.mjs';

let sim;
let keel;

const managed = (name, extra = '') => `
  - name: ${name}
    base_url: "http://127.0.0.1:{port}/v1"
    managed:
      command: ["${KEEL}", sim, --listen, "127.0.0.1:{port}"]
      env: { KEEL_TEST_VAR: "${name}" }
      start_timeout: 10s
      ready_probe: true${extra}`;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
defaults:
  timeouts: { first_byte: 1500ms, total: 15s }
  breaker: { failures: 1000 }
upstreams:
  - { name: remote, base_url: "{SIM}" }${managed('evict')}${managed('midway')}${managed('frozen')}${managed('idle', '\n      idle_unload: 1s')}
  - name: broken
    base_url: "http://127.0.0.1:{port}/v1"
    managed: { command: ["false"], start_timeout: 5s }
models:
  - { name: evict, targets: [ { upstream: evict, model: healthy }, { upstream: remote, model: "healthy#fallback" } ] }
  - { name: midway, targets: [ { upstream: midway, model: "slow-first-token:1000" }, { upstream: remote, model: "healthy#fallback" } ] }
  - { name: frozen, targets: [ { upstream: frozen, model: healthy }, { upstream: remote, model: "healthy#fallback" } ] }
  - { name: idle, targets: [ { upstream: idle, model: healthy }, { upstream: remote, model: "healthy#fallback" } ] }
  - { name: broken, targets: [ { upstream: broken, model: healthy }, { upstream: remote, model: "healthy#fallback" } ] }
`, sim);
});

after(async () => {
  if (keel.proc.exitCode === null) await stop(keel);
  await stop(sim);
});

const backends = async () => (await (await fetch(`${keel.adminUrl}/admin/status`)).json()).backends;
const backend = async (name) => (await backends()).find((b) => b.upstream === name);
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
// children of pid in state Z, from /proc (a bare Debian has no ps)
const zombiesOf = (pid) => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
  try {
    const f = fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ');
    return f[0] === 'Z' && Number(f[1]) === pid;
  } catch {
    return false;
  }
});
const ready = (name) => eventually(async () => (await backend(name))?.state === 'ready', { ms: 10000 });

describe('managed backends', () => {
  test('killed between requests: the next request is answered after one restart on the same port', async () => {
    assert.ok(await ready('evict'));
    const b0 = await backend('evict');
    assert.equal((await post(keel, chat('evict'))).headers.get('x-keel-upstream'), 'evict');
    process.kill(b0.pid, 'SIGKILL');
    const r = await post(keel, chat('evict', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-keel-upstream'), 'evict', 'answered by the healed backend, not the fallback');
    assert.equal(streamedText(r.text), 'Hello from the keel simulator.');
    const b1 = await backend('evict');
    assert.equal(b1.restarts, 1);
    assert.equal(b1.port, b0.port, 'no port drift');
    assert.notEqual(b1.pid, b0.pid);
    assert.match(b1.last_exit, /signal 9/);
    // seen first either as the process exit or as a request meeting a dead port: one restart
    assert.match(keel.log(), /"event":"(exited|restart)".*"upstream":"evict"/);
  });

  test('killed during a request: that request is retried once on the restarted backend', async () => {
    assert.ok(await ready('midway'));
    const b0 = await backend('midway');
    const pending = post(keel, chat('midway'));
    await sleep(300);
    process.kill(b0.pid, 'SIGKILL');
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-keel-upstream'), 'midway');
    const classes = attemptsOf(r).map((a) => a.class);
    assert.equal(classes.at(-1), 'ok');
    assert.ok(['reset', 'connect_error'].includes(classes[0]), classes.join());
    assert.equal(classes.length, 2, 'one retry, no more');
    const b1 = await backend('midway');
    assert.equal(b1.restarts, 1, 'one restart');
    assert.equal(b1.port, b0.port);
  });

  test('a hung (SIGSTOPped) backend times out and fails over without a restart storm', async () => {
    assert.ok(await ready('frozen'));
    const b0 = await backend('frozen');
    process.kill(b0.pid, 'SIGSTOP');
    try {
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const r = await post(keel, chat('frozen'));
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('x-keel-upstream'), 'remote');
        assert.deepEqual(attemptsOf(r).map((a) => a.class), ['first_byte_timeout', 'ok']);
        assert.ok(performance.now() - t0 < 1500 + 1500);
      }
      const b1 = await backend('frozen');
      assert.equal(b1.restarts, 0, 'read timeouts are overload, not death');
      assert.equal(b1.pid, b0.pid);
    } finally {
      process.kill(b0.pid, 'SIGCONT');
    }
  });

  test('a command that exits at once: backoff grows, requests fail over at once, no zombies', async () => {
    await sleep(2000); // starts at 0, 0.5 s, 1.5 s: three failed starts
    const b = await backend('broken');
    assert.ok(b.crashes >= 3, JSON.stringify(b));
    assert.ok(b.restarts >= 2);
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await post(keel, chat('broken'));
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-keel-upstream'), 'remote');
      assert.ok(performance.now() - t0 < 1000, 'no waiting on a backend that is backing off');
    }
    const events = keel.log().match(/"event":"backoff"[^\n]*"upstream":"broken"/g) || [];
    assert.ok(events.length >= 2);
    const waits = [...keel.log().matchAll(/backend broken: .*|"reason":"(\d+) failed starts in a row: next start in (\d+) ms"/g)]
      .filter((m) => m[2]).map((m) => Number(m[2]));
    for (let i = 1; i < waits.length; i++) assert.ok(waits[i] >= waits[i - 1], `backoff grows: ${waits}`);
    assert.ok(waits.at(-1) > waits[0]);
    assert.deepEqual(zombiesOf(keel.proc.pid), []);
  });

  test('idle unload stops an idle backend; the next request starts it again', async () => {
    // idle since keel started, it may be unloaded already: a request starts it either way
    assert.equal((await post(keel, chat('idle'))).headers.get('x-keel-upstream'), 'idle');
    const pid = (await backend('idle')).pid;
    assert.ok(await eventually(async () => (await backend('idle')).state === 'stopped', { ms: 4000 }));
    assert.ok(!alive(pid), 'the process is gone');
    const r = await post(keel, chat('idle'));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-keel-upstream'), 'idle', 'it waited for the start, within its deadline');
    assert.equal((await backend('idle')).state, 'ready');
  });

  test('a backend gets only its configured environment, its own process group', async () => {
    const b = await backend('evict');
    const env = fs.readFileSync(`/proc/${b.pid}/environ`, 'utf8').split('\0').filter(Boolean);
    assert.deepEqual(env, ['KEEL_TEST_VAR=evict']);
    const stat = fs.readFileSync(`/proc/${b.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    assert.equal(Number(stat[2]), b.pid, 'process group leader');
    assert.match(keel.log(), /backend evict: .*sim listening on 127\.0\.0\.1:/);
  });

  test("keel's SIGTERM leaves no backend process behind", async () => {
    const pids = (await backends()).filter((b) => b.pid > 0).map((b) => b.pid);
    assert.ok(pids.length >= 3);
    assert.equal(await stop(keel), 0);
    for (const pid of pids) assert.ok(!alive(pid), `backend ${pid} outlived keel`);
  });
});

test('keel killed with SIGKILL: its backends die with it', async () => {
  const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:${managed('orphan')}
models: [ { name: m, targets: [ { upstream: orphan, model: healthy } ] } ]
`, null);
  const pid = await eventually(async () => {
    const b = (await (await fetch(`${k.adminUrl}/admin/status`)).json()).backends[0];
    return b.state === 'ready' ? b.pid : 0;
  }, { ms: 10000 });
  assert.ok(pid > 0);
  k.proc.kill('SIGKILL');
  assert.ok(await eventually(() => !alive(pid), { ms: 3000 }), 'PR_SET_PDEATHSIG took the backend down');
});

test("a backend inherits none of keel's descriptors: only 0, 1 and 2, at its start and at a restart", async () => {
  // The command is a shell that waits for a go-ahead file (and consumes it) before it execs keel
  // sim; meanwhile its descriptors are exactly what `keel _exec` handed over. They are read from
  // outside, in /proc, so that listing them opens none. The first run starts before keel listens;
  // the restart comes while keel holds its listeners, the audit log, a client's connection and
  // curl's sockets: each was a candidate for leaking.
  const dir = tmpdir();
  const go = path.join(dir, 'go');
  const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${path.join(dir, 'audit.jsonl')}
upstreams:
  - name: fds
    base_url: "http://127.0.0.1:{port}/v1"
    managed:
      command: ["/bin/sh", "-c", "while [ ! -e ${go} ]; do /bin/sleep 0.02; done; /bin/rm ${go}; exec ${KEEL} sim --listen 127.0.0.1:{port}"]
      start_timeout: 10s
models: [ { name: m, targets: [ { upstream: fds, model: healthy } ] } ]
`, null);
  // the shell's pid, once `keel _exec` has exec'd it (before, the pid is still keel _exec's)
  const shell = async (notPid) => {
    const s = (await (await fetch(`${k.adminUrl}/admin/status`)).json()).backends[0];
    if (s.state !== 'starting' || s.pid === notPid) return null;
    try {
      return fs.readFileSync(`/proc/${s.pid}/cmdline`, 'utf8').split('\0')[0] === '/bin/sh' ? s : null;
    } catch {
      return null;
    }
  };
  const inherited = async (notPid) => {
    const b = await eventually(() => shell(notPid));
    const dirfd = `/proc/${b.pid}/fd`;
    const open = fs.readdirSync(dirfd).map(Number).sort((x, y) => x - y);
    const what = open.map((fd) => `${fd} -> ${fs.readlinkSync(`${dirfd}/${fd}`)}`).join('\n');
    fs.writeFileSync(go, '');
    return { pid: b.pid, open, what };
  };
  try {
    const first = await inherited(0);
    assert.deepEqual(first.open, [0, 1, 2], `descriptors the backend inherited at its start:\n${first.what}`);
    // a request keeps a client connection open (fetch's keep-alive) and curl's to the backend
    assert.equal((await post(k, chat('m'))).status, 200, 'the backend went on to start and answer');
    const sim = (await (await fetch(`${k.adminUrl}/admin/status`)).json()).backends[0].pid;
    process.kill(sim, 'SIGKILL');
    const again = await inherited(sim);
    assert.deepEqual(again.open, [0, 1, 2], `descriptors the backend inherited at its restart:\n${again.what}`);
    assert.equal((await post(k, chat('m'))).status, 200, 'the restarted backend answers');
  } finally {
    fs.writeFileSync(go, '');
    await stop(k);
  }
});

test('a probe_model with a quote and a backslash: the ready probe is valid JSON naming exactly it', async () => {
  // keel sim takes "healthy#TAG" as healthy and counts hits under the whole name; a body that is
  // not JSON gets a 400 and the backend never becomes ready
  const name = 'healthy#q"uo\\te';
  const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:
  - name: quoted
    base_url: "http://127.0.0.1:{port}/v1"
    managed:
      command: ["${KEEL}", sim, --listen, "127.0.0.1:{port}"]
      start_timeout: 3s
      ready_probe: true
      probe_model: '${name}'
models: [ { name: m, targets: [ { upstream: quoted, model: healthy } ] } ]
`, null);
  try {
    const status = async () => (await (await fetch(`${k.adminUrl}/admin/status`)).json()).backends[0];
    const b = await eventually(async () => ((await status()).state === 'ready' ? status() : null), { ms: 2500 });
    assert.ok(b, `never ready: ${JSON.stringify(await status())}\n${k.log()}`);
    const hits = (await (await fetch(`http://127.0.0.1:${b.port}/sim/stats`)).json()).hits;
    assert.equal(hits[name], 1, `one probe, under exactly the configured name: ${JSON.stringify(hits)}`);
  } finally {
    await stop(k);
  }
});

test('a request whose deadline runs out while its backend starts: 504 deadline_exceeded, never "skipped"', async () => {
  const dir = tmpdir();
  const go = path.join(dir, 'go');
  const audit = path.join(dir, 'audit.jsonl');
  const k = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${audit}
upstreams:
  - name: late
    base_url: "http://127.0.0.1:{port}/v1"
    managed:
      command: ["/bin/sh", "-c", "while [ ! -e ${go} ]; do /bin/sleep 0.02; done; exec ${KEEL} sim --listen 127.0.0.1:{port}"]
      start_timeout: 10s
models: [ { name: m, targets: [ { upstream: late, model: healthy } ] } ]
`, null);
  try {
    const r = await post(k, chat('m'), { headers: { 'x-keel-timeout': '400ms' } });
    assert.equal(r.status, 504, r.text);
    assert.equal(JSON.parse(r.text).error.code, 'deadline_exceeded');
    assert.deepEqual(attemptsOf(r).map((a) => a.class), ['deadline_exceeded']);
    const line = await eventually(() => (fs.existsSync(audit) ? fs.readFileSync(audit, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))[0] : null));
    assert.equal(line.class, 'deadline_exceeded');
  } finally {
    fs.writeFileSync(go, '');
    await stop(k);
  }
});
