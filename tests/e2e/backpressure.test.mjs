// backpressure.test.mjs - a client that stops reading must not make keel buffer the stream:
// keel pauses the upstream transfer, its memory stays flat, and the whole answer arrives intact
// once the client reads again.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { rssKiB, sleep, startKeel, startSim, stop, streamedText } from './lib.mjs';

let sim;
let keel;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: big, targets: [ { upstream: a, model: "big-stream:30000" } ] } ]
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

test('a paused client pauses the upstream; keel does not buffer 30 MB', async () => {
  const before = rssKiB(keel.proc.pid);
  const chunks = [];
  let res;
  await new Promise((resolve, reject) => {
    const req = http.request(`${keel.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    req.on('error', reject);
    req.on('response', (r) => {
      res = r;
      r.once('data', (d) => {
        chunks.push(d);
        r.pause(); // stop reading: the socket buffers fill, then keel must stop pulling
        resolve();
      });
    });
    req.end(JSON.stringify({ model: 'big', stream: true, messages: [] }));
  });
  await sleep(1500);
  const paused = rssKiB(keel.proc.pid);
  const body = await new Promise((resolve) => {
    res.on('data', (d) => chunks.push(d));
    res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    res.resume();
  });
  const text = streamedText(body);
  assert.equal(text.length, 30000 * 1000);
  assert.ok(body.endsWith('data: [DONE]\n\n'));
  // 30 MB went through; while the client was paused keel grew by far less than that
  assert.ok(paused - before < 8 * 1024, `RSS grew ${paused - before} KiB while the client was paused`);
});
