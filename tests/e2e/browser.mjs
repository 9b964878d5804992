// browser.mjs - a small driver for headless Chromium (Debian's package) over the DevTools
// protocol, for the tests that look at keel's pages as a browser renders them: open a page at a
// given viewport, evaluate script in it, wait for a condition, take a screenshot. No
// dependencies: Chromium runs with --remote-debugging-pipe, reads NUL-terminated JSON commands
// on its fd 3 and writes NUL-terminated JSON replies and events on its fd 4.
//
//   const browser = await openBrowser();
//   const page = await browser.open(url, { width: 390 });
//   await page.waitFor(() => document.querySelector('#ready'));
//   const text = await page.evaluate((sel) => document.querySelector(sel).textContent, '#total');
//   await page.screenshot(path.join(ARTIFACTS, 'page-390.png'));
//   await browser.close();
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const COMMAND_MS = 20000; // bound on every protocol command and on a page's load

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Chromium and its helpers run in a process group of their own, killed whole (and the profile
// removed, as far as it can be) if the test process exits with a browser still open.
const running = new Map(); // pid -> profile dir
process.on('exit', () => {
  for (const [pid, profile] of running) {
    killGroup(pid);
    fs.rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
  }
});

function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export async function openBrowser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-chromium-'));
  const proc = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    '--hide-scrollbars', `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank'],
  {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], // our end of its fd 3 and fd 4
    detached: true, // a process group of its own
    // crashpad's database would go to ~/.config/chromium otherwise, whatever --user-data-dir says
    env: { ...process.env, XDG_CONFIG_HOME: profile },
  });
  if (proc.pid) running.set(proc.pid, profile);

  // the last lines Chromium wrote to stderr, for the message when it dies
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const tail = () => stderr.trim().split('\n').slice(-10).join('\n');
  const deadError = (what) => new Error(`${what}: ${dead}${stderr.trim() ? `\n${tail()}` : ''}`);

  let nextId = 1;
  const pending = new Map(); // command id -> {done(msg), fail()}
  const waiters = new Set(); // {event(msg), fail()}: who wants events
  const pages = new Map(); // sessionId -> page, for its errors

  let dead = null; // why no command can be answered any more, once Chromium is gone
  const exited = new Promise((resolve) => {
    const gone = (why) => {
      if (dead) return;
      dead = why;
      running.delete(proc.pid);
      for (const p of pending.values()) p.fail();
      for (const w of waiters) w.fail();
      resolve();
    };
    proc.on('error', (e) => gone(`chromium (${CHROMIUM}) could not run: ${e.message}`));
    proc.on('exit', (code, sig) => {
      killGroup(proc.pid); // a helper that outlived the browser
      // its last stderr lines come with 'close'; that waits for every helper holding stderr
      setTimeout(() => gone(`chromium exited (${code ?? sig})`), 200);
      proc.once('close', () => gone(`chromium exited (${code ?? sig})`));
    });
  });
  // every process holding Chromium's stderr has ended: crashpad's handlers too, which leave
  // the process group
  const closed = new Promise((resolve) => proc.once('close', resolve));

  // Chromium alone does not keep node running: a command or a wait holds a timer meanwhile, and
  // a test that forgets close() still ends (and the exit handler above cleans up)
  proc.unref();
  for (const s of proc.stdio) s?.unref?.();

  const [toChromium, fromChromium] = [proc.stdio[3], proc.stdio[4]];
  toChromium.on('error', () => {}); // EPIPE once Chromium is gone; its exit is what gets reported
  fromChromium.on('error', () => {});
  let parts = []; // a message split across reads
  fromChromium.on('data', (chunk) => {
    let start = 0;
    let nul;
    while ((nul = chunk.indexOf(0, start)) !== -1) {
      parts.push(chunk.subarray(start, nul));
      const text = Buffer.concat(parts).toString('utf8');
      parts = [];
      start = nul + 1;
      dispatch(JSON.parse(text));
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  });

  function dispatch(msg) {
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      if (p) p.done(msg);
      return;
    }
    for (const w of waiters) w.event(msg);
  }

  // Sends one command (to a page when sessionId is given); resolves to its result.
  function send(method, params = {}, sessionId) {
    return new Promise((resolve, reject) => {
      if (dead) return reject(deadError(method));
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${method}: no answer from chromium in ${COMMAND_MS} ms`));
      }, COMMAND_MS);
      pending.set(id, {
        done: (msg) => {
          clearTimeout(timer);
          pending.delete(id);
          if (!msg.error) return resolve(msg.result);
          reject(new Error(`${method}: ${msg.error.message}${msg.error.data ? ` (${msg.error.data})` : ''}`));
        },
        fail: () => {
          clearTimeout(timer);
          pending.delete(id);
          reject(deadError(method));
        },
      });
      toChromium.write(JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) }) + '\0');
    });
  }

  // Resolves to the next event `method` from the session (bounded); call it before the command
  // that causes the event.
  function nextEvent(method, sessionId) {
    return new Promise((resolve, reject) => {
      const w = {
        event: (msg) => {
          if (msg.method === method && msg.sessionId === sessionId) finish(null, msg.params);
        },
        fail: () => finish(deadError(`waiting for ${method}`)),
      };
      const timer = setTimeout(() => finish(new Error(`${method} did not come within ${COMMAND_MS} ms`)), COMMAND_MS);
      function finish(err, value) {
        clearTimeout(timer);
        waiters.delete(w);
        if (err) reject(err);
        else resolve(value);
      }
      waiters.add(w);
      if (dead) w.fail();
    });
  }

  // Opens `url` in a new tab with a viewport of width x height CSS pixels (a mobile one under
  // 600 wide: the page's <meta name=viewport> then applies) and resolves once it has loaded.
  async function open(url, { width = 1280, height = 900 } = {}) {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const cmd = (method, params) => send(method, params, sessionId);
    const page = { targetId, errors: [] }; // errors: exceptions the page's scripts did not catch
    pages.set(sessionId, page);

    // Runs a function (with JSON-able args) or an expression in the page; resolves to its value
    // (awaited if a promise). Throws what the page threw.
    page.evaluate = async (fn, ...args) => {
      const expression = typeof fn === 'function'
        ? `(${fn})(${args.map((a) => (a === undefined ? 'undefined' : JSON.stringify(a))).join(', ')})`
        : String(fn);
      const r = await cmd('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) {
        const d = r.exceptionDetails;
        const err = new Error(`page threw: ${d.exception?.description || d.text}`);
        err.exceptionDetails = d;
        throw err;
      }
      return r.result.value;
    };

    // Polls evaluate(fn) every 50 ms until it is truthy and returns that value. A throw in the
    // page counts as not yet (the element may not exist yet); the last one is in the timeout error.
    page.waitFor = async (fn, { ms = 10000 } = {}) => {
      const end = Date.now() + ms;
      let last;
      for (;;) {
        try {
          const v = await page.evaluate(fn);
          if (v) return v;
          last = `last value ${JSON.stringify(v)}`;
        } catch (e) {
          if (!e.exceptionDetails) throw e;
          last = e.message;
        }
        if (Date.now() >= end) throw new Error(`waitFor: not true within ${ms} ms (${last}): ${fn}`);
        await sleep(50);
      }
    };

    // Writes a PNG of the page (the whole document unless fullPage is false, the viewport then).
    page.screenshot = async (file, { fullPage = true } = {}) => {
      const params = { format: 'png' };
      if (fullPage) {
        const { width: w, height: h } = await page.evaluate(() => ({
          width: document.documentElement.scrollWidth,
          height: document.documentElement.scrollHeight,
        }));
        params.captureBeyondViewport = true;
        params.clip = { x: 0, y: 0, width: w, height: h, scale: 1 };
      }
      const { data } = await cmd('Page.captureScreenshot', params);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, Buffer.from(data, 'base64'));
      return file;
    };

    page.close = async () => {
      pages.delete(sessionId);
      await send('Target.closeTarget', { targetId });
    };

    try {
      await cmd('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: width < 600 });
      await cmd('Page.enable');
      await cmd('Runtime.enable');
      const loaded = nextEvent('Page.loadEventFired', sessionId);
      loaded.catch(() => {}); // when navigate itself fails, that error is the one reported
      const nav = await cmd('Page.navigate', { url });
      if (nav.errorText) throw new Error(`Page.navigate ${url}: ${nav.errorText}`);
      await loaded;
    } catch (e) {
      await page.close().catch(() => {});
      throw e;
    }
    return page;
  }

  // Runtime.exceptionThrown, kept on the page it came from
  waiters.add({
    event: (msg) => {
      if (msg.method === 'Runtime.exceptionThrown') {
        const d = msg.params.exceptionDetails;
        pages.get(msg.sessionId)?.errors.push(d.exception?.description || d.text);
      }
    },
    fail: () => {},
  });

  // Asks Chromium to quit; kills it if it is still there after 2 s; removes the profile.
  async function close() {
    if (!dead) {
      send('Browser.close').catch(() => {}); // the answer may not come before the exit
      await Promise.race([exited, sleep(2000)]);
      if (!dead) {
        killGroup(proc.pid);
        await exited;
      }
    }
    await Promise.race([closed, sleep(2000)]);
    fs.rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
  }

  try {
    const version = await send('Browser.getVersion');
    return { version: version.product, pid: proc.pid, open, close };
  } catch (e) {
    await close();
    throw e;
  }
}
