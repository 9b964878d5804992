// sighup-at-start.test.mjs - a SIGHUP (reload) that reaches `keel serve` while it is starting,
// before the gateway's signal watcher runs, must not kill it (SIGHUP's default action is to
// terminate), must not be lost (it reloads once keel is up), and must not leak into the managed
// backends keel spawns meanwhile (they start with SIGHUP at its default).
//
// When to send: keel's config file is a FIFO, so keel blocks reading it, inside main, until the
// test writes it; signals sent from then on land in the window under test every time. Signals
// sent before main (while the dynamic loader maps keel's libraries, a few ms) kill any process
// whatever it does, so the test does not send those.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { KEEL, sleep, tmpdir } from './lib.mjs';

const RUNS = 20;

const config = (extra = '') => `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams:
  - name: local
    base_url: "http://127.0.0.1:{port}/v1"
    managed:
      command: ${extra || `["${KEEL}", sim, --listen, "127.0.0.1:{port}"]`}
      start_timeout: 10s
models: [ { name: m, targets: [ { upstream: local, model: healthy } ] } ]
`;

// Starts `keel serve` on a FIFO config, waits until keel has opened it, then calls
// during(proc) (keel is blocked reading the config), writes the config (a regular file takes the
// FIFO's place first, for reloads) and calls after(proc) on every turn of node's loop until keel
// logs "listening" or exits. Resolves to {proc, listening, signal, exited, log()}.
async function startOnFifo(yaml, { during = () => {}, after = () => {} } = {}) {
  const dir = tmpdir();
  const file = path.join(dir, 'keel.yaml');
  assert.equal(spawnSync('mkfifo', [file]).status, 0, 'mkfifo');
  fs.writeFileSync(`${file}.real`, yaml);
  const proc = spawn(KEEL, ['serve', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const gone = () => proc.exitCode !== null || proc.signalCode !== null;
  // A non-blocking open for writing succeeds once a reader has the FIFO open (keel, in main,
  // reading its config) and fails with ENXIO before: poll it, so nothing ever blocks here.
  let fd = -1;
  for (const end = Date.now() + 10000; fd < 0 && !gone() && Date.now() < end; ) {
    try {
      fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      if (e.code !== 'ENXIO') throw e;
      await new Promise((r) => setImmediate(r));
    }
  }
  if (fd < 0) {
    if (!gone()) proc.kill('SIGKILL');
    return { proc, listening: false, signal: (await exited).signal, exited, log: () => log };
  }
  during(proc);
  await sleep(5); // keel stays blocked in its read meanwhile
  fs.renameSync(`${file}.real`, file); // keel holds the FIFO open: this changes only the path
  try {
    fs.writeSync(fd, yaml); // far below a pipe's capacity: never EAGAIN
  } catch {} // EPIPE: keel died while blocked
  fs.closeSync(fd);
  const up = await new Promise((resolve) => {
    const turn = () => {
      if (gone()) return resolve(false);
      if (/listening api=/.test(log)) return resolve(true);
      after(proc);
      setImmediate(turn);
    };
    turn();
  });
  const listening = up && !gone();
  return { proc, listening, signal: listening ? null : (await exited).signal, exited, log: () => log };
}

// SIGTERM, bounded wait; the exit code. Fails on a sanitizer report (the suite also runs on an
// ASan+UBSan build), as lib.mjs's stop() does.
async function stopKeel(k) {
  if (k.proc.exitCode === null && k.proc.signalCode === null) {
    const t = setTimeout(() => k.proc.kill('SIGKILL'), 10000);
    k.proc.kill('SIGTERM');
    await k.exited;
    clearTimeout(t);
    await sleep(50); // the last stderr bytes
  }
  assert.doesNotMatch(k.log(), /Sanitizer|runtime error:/, 'sanitizer report');
  return k.proc.exitCode;
}

const hup = (proc) => {
  try {
    proc.kill('SIGHUP');
  } catch {} // already gone
};

test(`SIGHUPs sent all through keel's start never kill it (${RUNS} starts)`, async (t) => {
  const deaths = [];
  let sent = 0;
  for (let i = 0; i < RUNS; i++) {
    const k = await startOnFifo(config(), {
      during: (p) => { hup(p); sent++; },
      after: (p) => { hup(p); sent++; },
    });
    if (!k.listening) {
      deaths.push(`run ${i}: ${k.signal ? `killed by ${k.signal}` : 'exited'}\n${k.log()}`);
      continue;
    }
    assert.equal(await stopKeel(k), 0, `run ${i}: SIGTERM still drains and exits 0\n${k.log()}`);
  }
  t.diagnostic(`${sent} SIGHUPs over ${RUNS} starts, ${deaths.length} deaths`);
  assert.equal(deaths.length, 0, `keel died in ${deaths.length}/${RUNS} starts (${sent} SIGHUPs sent):\n${deaths[0]}`);
});

test('a SIGHUP sent during the start is a reload once keel is up, and backends start with SIGHUP at its default', async () => {
  // The backend is a shell that waits for a go-ahead file before it execs keel sim: its signal
  // dispositions, read in /proc meanwhile, are what keel handed over. It is spawned inside the
  // window (before the watcher starts), while keel itself catches SIGHUP.
  const dir = tmpdir();
  const go = path.join(dir, 'go');
  const cmd = `["/bin/sh", "-c", "while [ ! -e ${go} ]; do /bin/sleep 0.02; done; exec ${KEEL} sim --listen 127.0.0.1:{port}"]`;
  const k = await startOnFifo(config(cmd), { during: (p) => { hup(p); hup(p); hup(p); } });
  try {
    assert.ok(k.listening, `keel did not survive a SIGHUP during its start (${k.signal}):\n${k.log()}`);
    // three SIGHUPs before the watcher: one reload after it, not zero, not three
    const reloads = () => (k.log().match(/SIGHUP: reloaded/g) || []).length;
    const deadline = Date.now() + 3000;
    while (reloads() === 0 && Date.now() < deadline) await sleep(20);
    await sleep(200);
    assert.equal(reloads(), 1, `one reload for the SIGHUPs of the start:\n${k.log()}`);

    const pid = Number(k.log().match(/backend local: started pid (\d+)/)[1]);
    const status = await (async () => {
      for (const end = Date.now() + 3000; Date.now() < end; await sleep(10)) {
        try { // once `keel _exec` has become the shell
          if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === '/bin/sh')
            return fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        } catch {}
      }
      return '';
    })();
    const mask = (name) => BigInt(`0x${status.match(new RegExp(`${name}:\\s+([0-9a-f]+)`))[1]}`);
    for (const name of ['SigIgn', 'SigBlk', 'SigCgt'])
      assert.equal(mask(name) & 1n, 0n, `the backend's SIGHUP is not at its default (${name}):\n${status}`);
    fs.writeFileSync(go, '');
    assert.equal(await stopKeel(k), 0);
  } finally {
    fs.writeFileSync(go, '');
    if (k.proc.exitCode === null && k.proc.signalCode === null) k.proc.kill('SIGKILL');
  }
});
