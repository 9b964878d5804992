// backpressure.test.mjs - a client that stops reading must not make keel read the whole stream
// into memory: keel pauses the upstream transfer, so the upstream's writes stall too, and the
// whole answer arrives intact once the client reads again. (Memory itself is measured in
// bench/, not asserted here.)
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { rssKiB, simStats, sleep, startKeel, startSim, stop, streamedText } from './lib.mjs';

const CHUNKS = 60000; // 60 MB: far more than every socket buffer on the path can hold
const MODEL = `big-stream:${CHUNKS}`;
let sim;
let keel;

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams: [ { name: a, base_url: "{SIM}" } ]
models: [ { name: big, targets: [ { upstream: a, model: "${MODEL}" } ] } ]
`, sim);
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const written = async () => (await simStats(sim)).writes[MODEL] ?? 0;

test('a paused client pauses the upstream, and the stream then arrives whole', async (t) => {
  const rssBefore = rssKiB(keel.proc.pid);
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
  // wait until the upstream's writes have stopped moving, then check they stopped short
  let last = -1;
  let now = await written();
  for (let i = 0; i < 50 && now !== last; i++) {
    await sleep(200);
    last = now;
    now = await written();
  }
  assert.equal(now, last, 'the upstream settled while the client was paused');
  assert.ok(now < CHUNKS / 2, `the upstream wrote ${now} of ${CHUNKS} chunks while the client was paused`);
  t.diagnostic(`paused: upstream wrote ${now}/${CHUNKS} chunks; keel RSS +${rssKiB(keel.proc.pid) - rssBefore} KiB`);
  const body = await new Promise((resolve) => {
    res.on('data', (d) => chunks.push(d));
    res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    res.resume();
  });
  assert.equal(streamedText(body).length, CHUNKS * 1000);
  assert.ok(body.endsWith('data: [DONE]\n\n'));
});
