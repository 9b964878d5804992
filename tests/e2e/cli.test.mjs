// cli.test.mjs - keel's command line: --help names every subcommand and every flag, an unknown
// flag prints the usage and exits 2, `keel check` reports every config error (not only the
// first), and `check` and `serve` agree on what they accept (a host name in listen) and refuse.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { KEEL, check, stop, tmpdir } from './lib.mjs';

const run = (...args) => spawnSync(KEEL, args, { encoding: 'utf8', timeout: 10000 });

const SUBCOMMANDS = ['serve', 'check', 'sim', 'demo', 'audit', 'key', 'help'];
// main.c (serve, check, sim), report.c (audit)
const FLAGS = ['-c', '--config', '-v', '-l', '--listen', '--control', '--since', '--model', '--key', '--json', '--html',
  '--hang', '--cliff', '--margin', '-h', '--help'];

const UPSTREAMS = 'upstreams:\n  - { name: a, base_url: "http://127.0.0.1:9/v1" }\n' +
  'models:\n  - { name: m, targets: [ { upstream: a, model: x } ] }\n';

function writeConfig(text) {
  const file = path.join(tmpdir(), 'keel.yaml');
  fs.writeFileSync(file, text);
  return file;
}

// Starts `keel serve -c file`; resolves with {proc, match, log()} once it logs its listeners.
function startServe(file) {
  return new Promise((resolve, reject) => {
    const proc = spawn(KEEL, ['serve', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    process.on('exit', () => proc.kill('SIGKILL'));
    let log = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) {
        done = true;
        proc.kill('SIGKILL');
        reject(new Error(`keel serve did not start within 10 s:\n${log}`));
      }
    }, 10000);
    const onData = (d) => {
      log += d.toString();
      const m = log.match(/listening api=(\S+):(\d+) admin=127\.0\.0\.1:(\d+)/);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        resolve({ proc, match: m, log: () => log });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code, sig) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`keel serve exited (${code ?? sig}) before starting:\n${log}`));
      }
    });
  });
}

describe('usage', () => {
  for (const how of [['--help'], ['-h'], ['help'], ['serve', '--help'], ['audit', '-h']]) {
    test(`keel ${how.join(' ')} lists every subcommand and flag, and exits 0`, () => {
      const r = run(...how);
      assert.equal(r.status, 0, r.stderr);
      for (const cmd of SUBCOMMANDS) assert.match(r.stdout, new RegExp(`keel ${cmd}\\b`), `names ${cmd}`);
      for (const flag of FLAGS) assert.ok(new RegExp(`(^|[\\s,\\[])${flag}\\b`, 'm').test(r.stdout), `names ${flag}`);
      assert.match(r.stdout, /KEEL_SIM_SEED/);
    });
  }

  test('an unknown flag prints the usage and exits 2', () => {
    const file = writeConfig(`listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n${UPSTREAMS}`);
    for (const args of [['serve', '-c', file, '--bogus'], ['check', '--bogus', '-c', file], ['check', '-c', file, '-v'],
      ['sim', '--bogus'], ['demo', '--bogus'], ['serve', '-c', file, 'extra']]) {
      const r = run(...args);
      assert.equal(r.status, 2, `keel ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`keel ${args[0]}: unknown (flag|argument) "(--bogus|-v|extra)"`));
      assert.match(r.stderr, /usage: keel/);
      assert.equal(r.stdout, '');
    }
    const a = run('audit', '--bogus'); // report.c's own usage line
    assert.equal(a.status, 2);
    assert.match(a.stderr, /unknown option --bogus\nusage: keel audit/);
    for (const args of [[], ['bogus'], ['check'], ['check', '-c'], ['key'], ['key', 'new'], ['key', 'old', 'x'],
      ['key', 'new', 'a', 'b']]) {
      const r = run(...args);
      assert.equal(r.status, 2, `keel ${args.join(' ')}`);
      assert.match(r.stderr, /usage: keel/);
    }
  });
});

describe('check and serve agree', () => {
  test('keel check prints every error, one a line in file order, and exits 1', () => {
    const file = writeConfig('listen: 127.0.0.1\n' + // 1: no port
      'upstreams:\n' +
      '  - { name: a, base_url: "http://127.0.0.1:9/v1" }\n' +
      'models:\n' +
      '  - { name: m, targets: [ { upstream: nope, model: x } ] }\n'); // 5: unknown upstream
    const r = check(file);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `${file}:1: listen: expected HOST:PORT, got "127.0.0.1"`,
      `${file}:5: models[0].targets[0].upstream: unknown upstream "nope"`,
    ]);
    // serve refuses the same file with the same list
    const s = run('serve', '-c', file);
    assert.equal(s.status, 1);
    assert.equal(s.stderr, r.stderr);
  });

  test('past 20 errors: the first 20, then how many more', () => {
    let text = UPSTREAMS;
    for (let i = 0; i < 23; i++) text += `bad${i}: 1\n`;
    const r = check(writeConfig(text));
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 21);
    assert.match(lines[0], /:5: bad0: unknown key/);
    assert.match(lines[19], /:24: bad19: unknown key/);
    assert.equal(lines[20], '... and 3 more errors');
  });

  test('a host name in listen: check accepts it and serve binds what it resolves to', async () => {
    const file = writeConfig(`listen: localhost:0\nadmin_listen: 127.0.0.1:0\n${UPSTREAMS}`);
    const r = check(file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok \(1 upstreams, 1 models\)/);
    const keel = await startServe(file);
    try {
      const [, addr, port, admin] = keel.match;
      assert.match(addr, /^(127\.0\.0\.1|::1)$/); // the address, not the name
      const host = addr.includes(':') ? `[${addr}]` : addr;
      const models = await fetch(`http://${host}:${port}/v1/models`, { signal: AbortSignal.timeout(5000) });
      assert.equal(models.status, 200);
      const health = await fetch(`http://127.0.0.1:${admin}/healthz`, { signal: AbortSignal.timeout(5000) });
      assert.equal(health.status, 200);
    } finally {
      assert.equal(await stop(keel), 0);
    }
  });

  test('a host name that does not resolve: both refuse it, naming the key and line', () => {
    const file = writeConfig(`listen: 127.0.0.1:0\nadmin_listen: no-such-host.invalid:0\n${UPSTREAMS}`);
    for (const cmd of ['check', 'serve']) {
      const r = run(cmd, '-c', file);
      assert.equal(r.status, 1, `${cmd}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^${file}:2: admin_listen: cannot resolve "no-such-host\\.invalid"`));
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  });
});
