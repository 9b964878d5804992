// sim-control.test.mjs - `keel sim --control`, the stand-in for Lemonade's lemond (seed 002),
// talked to directly: a load spawns a child sim on a port of its own; a child evicted behind its
// back stays in loaded[] and a load of it answers success without spawning (the trap); unload then
// load brings it back on another port; the failure injection (fail_unloads, down); one spawn for
// concurrent loads; and no child outlives the control plane, stopped or killed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chat, eventually, startSimControl, stop } from './lib.mjs';

let ctl;

before(async () => {
  ctl = await startSimControl();
});

after(async () => {
  await stop(ctl);
});

// A JSON request to a control plane; resolves to {status, json}.
async function api(c, method, path, body) {
  const r = await fetch(`${c.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(20000),
  });
  return { status: r.status, json: await r.json() };
}

const load = (m, c = ctl) => api(c, 'POST', '/api/v1/load', { model_name: m });
const unload = (m, c = ctl) => api(c, 'POST', '/api/v1/unload', { model_name: m });
const evict = (m, c = ctl) => api(c, 'POST', '/sim/evict', { model_name: m });
const health = (c = ctl) => api(c, 'GET', '/api/v1/health');
const control = (body) => api(ctl, 'POST', '/sim/control', body);
const state = async (c = ctl) => (await api(c, 'GET', '/sim/control')).json;

// m's entry in health's all_models_loaded, or undefined
async function entry(m, c = ctl) {
  return (await health(c)).json.all_models_loaded.find((e) => e.model_name === m);
}

const portOf = (url) => Number(new URL(url).port);

// A chat completion for "healthy" from a child's backend_url: {status, content}, or {error: code}
// when the connection is refused or dropped.
async function ask(backendUrl) {
  try {
    const r = await fetch(`${backendUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat('healthy')),
      signal: AbortSignal.timeout(10000),
    });
    const j = await r.json();
    return { status: r.status, content: j.choices?.[0]?.message?.content };
  } catch (e) {
    return { error: e.cause?.code ?? String(e) };
  }
}

// Whether pid is a live process: a zombie (dead, its parent gone, not yet reaped by init) is not.
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z';
  } catch {
    return false;
  }
}

describe('loads', () => {
  test('a load spawns a child whose port answers chat; a second load spawns nothing', async () => {
    const before = await state();
    const r = await load('m1');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'success', message: 'Loaded model: m1' });
    const h = await health();
    assert.equal(h.status, 200);
    assert.equal(h.json.status, 'ok');
    assert.equal(h.json.model_loaded, 'm1');
    const e = await entry('m1');
    assert.match(e.backend_url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    assert.ok(Number.isInteger(e.pid) && e.pid > 0);
    assert.notEqual(portOf(e.backend_url), ctl.port);
    assert.deepEqual(await ask(e.backend_url), { status: 200, content: 'Hello from the keel simulator.' });
    assert.match(ctl.log(), new RegExp(`m1\\[${e.pid}\\]: .*sim listening on 127\\.0\\.0\\.1:${portOf(e.backend_url)}`));

    const again = await load('m1');
    assert.equal(again.status, 200);
    assert.deepEqual(again.json, { status: 'success', message: 'Model already loaded: m1' });
    const after = await state();
    assert.equal(after.spawns, before.spawns + 1);
    assert.equal(after.loads, before.loads + 2);
    assert.deepEqual(await entry('m1'), e);
  });

  test('two concurrent loads of a new model: one spawn, both answered once it listens', async () => {
    const before = await state();
    const rs = await Promise.all([load('m4'), load('m4')]);
    for (const r of rs) assert.deepEqual(r, { status: 200, json: { status: 'success', message: 'Loaded model: m4' } });
    const after = await state();
    assert.equal(after.spawns, before.spawns + 1);
    assert.equal(after.loaded.filter((e) => e.model_name === 'm4').length, 1);
    assert.equal((await ask((await entry('m4')).backend_url)).status, 200);
    assert.equal((await health()).json.model_loaded, 'm4');
  });

  test('a body without a string model_name: 400, nothing spawned', async () => {
    const before = await state();
    for (const body of [{}, { model_name: 7 }, { model_name: '' }, { model_name: 'x'.repeat(257) }, { model: 'm1' }]) {
      const r = await api(ctl, 'POST', '/api/v1/load', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.status, 'error');
      assert.equal(typeof r.json.message, 'string');
    }
    assert.equal((await state()).spawns, before.spawns);
  });
});

describe('silent eviction (seed 002)', () => {
  test('an evicted child stays in loaded[]; load answers success and spawns nothing; unload + load: a new port', async () => {
    assert.equal((await load('m2')).status, 200);
    const e = await entry('m2');
    assert.equal((await ask(e.backend_url)).status, 200);

    const ev = await evict('m2');
    assert.deepEqual(ev, { status: 200, json: { evicted: e.pid } });
    assert.equal((await ask(e.backend_url)).error, 'ECONNREFUSED');
    assert.deepEqual(await entry('m2'), e, 'health still lists the dead child');
    const st = await state();
    assert.equal(st.loaded.find((x) => x.model_name === 'm2').alive, false);
    assert.equal(st.loaded.find((x) => x.model_name === 'm1').alive, true);

    const r = await load('m2'); // the trap: success, no spawn, still the dead port
    assert.deepEqual(r, { status: 200, json: { status: 'success', message: 'Model already loaded: m2' } });
    assert.equal((await state()).spawns, st.spawns);
    assert.equal((await ask(e.backend_url)).error, 'ECONNREFUSED');

    const u = await unload('m2');
    assert.deepEqual(u, { status: 200, json: { status: 'success', message: 'Unloaded model: m2' } });
    assert.equal(await entry('m2'), undefined);
    assert.deepEqual(await load('m2'), { status: 200, json: { status: 'success', message: 'Loaded model: m2' } });
    const back = await entry('m2');
    assert.equal((await state()).spawns, st.spawns + 1);
    assert.notEqual(back.pid, e.pid);
    // the kernel picks each child's port: the same one again is possible but about 1 in 14,000
    assert.notEqual(portOf(back.backend_url), portOf(e.backend_url));
    assert.deepEqual(await ask(back.backend_url), { status: 200, content: 'Hello from the keel simulator.' });
  });

  test('evict of a model not loaded: 404', async () => {
    const r = await evict('nope');
    assert.equal(r.status, 404);
  });
});

describe('unloads', () => {
  test('unload kills the child: its port refuses, the model is gone from health', async () => {
    assert.equal((await load('m5')).status, 200);
    const e = await entry('m5');
    assert.equal((await unload('m5')).status, 200);
    assert.equal((await ask(e.backend_url)).error, 'ECONNREFUSED');
    assert.equal(await entry('m5'), undefined);
    assert.equal(alive(e.pid), false);
  });

  test('unload of a model not loaded: 404', async () => {
    const r = await unload('never-loaded');
    assert.deepEqual(r, { status: 404, json: { status: 'error', message: 'Model not loaded: never-loaded' } });
  });

  test('fail_unloads 1: one unload answers 500 and changes nothing; the next one works', async () => {
    assert.equal((await load('m3')).status, 200);
    const e = await entry('m3');
    const before = await state();
    const set = await control({ fail_unloads: 1 });
    assert.equal(set.status, 200);
    assert.equal(set.json.fail_unloads, 1);

    const r = await unload('m3');
    assert.deepEqual(r, { status: 500, json: { status: 'error', message: 'unload failed' } });
    assert.deepEqual(await entry('m3'), e);
    assert.equal((await ask(e.backend_url)).status, 200);
    const mid = await state();
    assert.equal(mid.unload_failures, before.unload_failures + 1);
    assert.equal(mid.unloads, before.unloads + 1);
    assert.equal(mid.fail_unloads, 0);
    assert.equal(mid.loaded.find((x) => x.model_name === 'm3').alive, true);

    assert.equal((await unload('m3')).status, 200);
    assert.equal(await entry('m3'), undefined);
    assert.equal((await ask(e.backend_url)).error, 'ECONNREFUSED');
  });
});

describe('down', () => {
  test('down: every /api/v1 request answers 503 until set false; the hooks still answer', async () => {
    assert.equal((await control({ down: true })).json.down, true);
    const down = { status: 'error', message: 'control plane down' };
    try {
      assert.deepEqual(await health(), { status: 503, json: down });
      assert.deepEqual(await load('m1'), { status: 503, json: down });
      assert.deepEqual(await unload('m1'), { status: 503, json: down });
      assert.equal((await state()).down, true);
    } finally {
      assert.equal((await control({ down: false })).json.down, false);
    }
    assert.equal((await health()).status, 200);
    assert.ok(await entry('m1'), 'an unload while down changed nothing');
  });

  test('POST /sim/control refuses a body it does not know: 400', async () => {
    for (const body of [{ fail_unloads: -1 }, { down: 'yes' }, { fail_unload: 1 }, [1]]) {
      const r = await control(body);
      assert.equal(r.status, 400, JSON.stringify(body));
    }
    const s = await state();
    assert.equal(s.fail_unloads, 0);
    assert.equal(s.down, false);
  });
});

describe('no orphans', () => {
  test('SIGTERM: the control plane exits 0 and no child is left, evicted or not', async () => {
    const c = await startSimControl();
    let code;
    const pids = [];
    try {
      for (const m of ['x', 'y']) assert.equal((await load(m, c)).status, 200);
      assert.equal((await evict('y', c)).status, 200);
      for (const m of ['x', 'y']) pids.push((await entry(m, c)).pid);
      assert.ok(alive(pids[0]));
    } finally {
      code = await stop(c);
    }
    assert.equal(code, 0);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `pid ${pid}`);
  });

  test('SIGKILL of the control plane: its children die with it (PR_SET_PDEATHSIG)', async () => {
    const c = await startSimControl();
    let pid;
    try {
      assert.equal((await load('z', c)).status, 200);
      pid = (await entry('z', c)).pid;
      assert.ok(alive(pid));
    } finally {
      c.proc.kill('SIGKILL');
    }
    assert.equal(await eventually(() => !alive(pid), { ms: 5000 }), true, `pid ${pid} outlived its control plane`);
  });
});
