// sim-embeddings.test.mjs - keel sim's embeddings side (POST /v1/embeddings), talked to directly:
// OpenAI's answer shape and key order; one deterministic unit vector per input (a string, strings,
// a token array, token arrays), its length the request's dimensions; base64 as the little-endian
// float32s the official openai SDK asks for by default and decodes; the request checks the real
// API makes; the behaviour names shared with chat (faults, errors, heal) and the /sim/stats counts.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { simStats, startSim, stop } from './lib.mjs';

let sim;
let client;

before(async () => {
  sim = await startSim();
  client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 10000 });
});

after(async () => {
  await stop(sim);
});

// POSTs body (an object, or a string sent as is) and resolves to {status, headers, text, json,
// dropped} when the answer ends or the connection drops; rejects when no response comes in ms.
function ask(body, { path = '/v1/embeddings', ms = 10000, to = sim } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${to.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${ms} ms`)), ms);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      let text = '';
      let done = false;
      const finish = (dropped) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        let json;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json, dropped });
      };
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => finish(false));
      res.on('aborted', () => finish(true));
      res.on('error', () => finish(true));
    });
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

const emb = (model, input, extra = {}) => ({ model, input, ...extra });
const vectors = (r) => r.json.data.map((d) => d.embedding);
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

// base64 of little-endian float32s -> numbers
function floats(b64) {
  const buf = Buffer.from(b64, 'base64');
  assert.equal(buf.length % 4, 0);
  return Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(4 * i));
}

function isVector(v, dims) {
  assert.ok(Array.isArray(v), 'an array');
  assert.equal(v.length, dims);
  for (const x of v) {
    assert.equal(typeof x, 'number');
    assert.ok(x >= -1 && x <= 1, `${x} in [-1, 1]`);
    assert.equal(Math.fround(x), x, `${x} is a float32`);
  }
  assert.ok(Math.abs(norm(v) - 1) < 1e-5, `unit length, got ${norm(v)}`);
}

describe('the answer: OpenAI shapes, key for key', () => {
  test('healthy, one string: a list of one embedding of 8 floats, the model as asked, usage in words', async () => {
    const r = await ask(emb('healthy', 'The quick  brown\tfox\n'));
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.match(r.headers['x-request-id'], /^req_sim_\d+$/);
    assert.deepEqual(Object.keys(r.json), ['object', 'data', 'model', 'usage']);
    assert.equal(r.json.object, 'list');
    assert.equal(r.json.model, 'healthy');
    assert.deepEqual(r.json.usage, { prompt_tokens: 4, total_tokens: 4 });
    assert.equal(r.json.data.length, 1);
    assert.deepEqual(Object.keys(r.json.data[0]), ['object', 'index', 'embedding']);
    assert.equal(r.json.data[0].object, 'embedding');
    assert.equal(r.json.data[0].index, 0);
    isVector(r.json.data[0].embedding, 8);
  });

  test('an array of strings: one embedding per input, indexed in input order; usage over all of them', async () => {
    const r = await ask(emb('healthy', ['alpha beta', 'gamma', 'alpha beta', 'delta epsilon zeta']));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.data.map((d) => d.index), [0, 1, 2, 3]);
    for (const v of vectors(r)) isVector(v, 8);
    const [a, g, a2, d] = vectors(r);
    assert.deepEqual(a2, a, 'the same text, the same vector');
    assert.notDeepEqual(g, a);
    assert.notDeepEqual(d, a);
    assert.deepEqual(r.json.usage, { prompt_tokens: 8, total_tokens: 8 });
  });

  test('/embeddings (no /v1) answers the same; the model name carries its tag', async () => {
    const a = await ask(emb('healthy', 'same text'));
    const b = await ask(emb('healthy#b', 'same text'), { path: '/embeddings' });
    assert.equal(b.status, 200);
    assert.equal(b.json.model, 'healthy#b');
    assert.deepEqual(vectors(b), vectors(a));
  });

  test('deterministic: the same input gives the same vector in every request, the model name aside, in another sim too', async () => {
    const first = await ask(emb('healthy', ['hello world', 'other']));
    const again = await ask(emb('slow-first-token:1', ['x', 'hello world']));
    assert.deepEqual(vectors(again)[1], vectors(first)[0]);
    const other = await startSim();
    try {
      const there = await ask(emb('healthy', 'hello world'), { to: other });
      assert.deepEqual(vectors(there)[0], vectors(first)[0]);
    } finally {
      await stop(other);
    }
  });

  test('dimensions: each vector that long (1 to 4096), unit length; the default 8 for none or null', async () => {
    for (const dims of [1, 3, 256, 4096]) {
      const r = await ask(emb('healthy', ['a', 'b'], { dimensions: dims }));
      assert.equal(r.status, 200, `dimensions ${dims}`);
      for (const v of vectors(r)) isVector(v, dims);
    }
    const r = await ask(emb('healthy', 'a', { dimensions: null }));
    isVector(vectors(r)[0], 8);
  });

  test('dimensions out of range or not an integer: 400, param dimensions', async () => {
    for (const dims of [0, 4097, -1, 1.5, '8', true]) {
      const r = await ask(emb('healthy', 'a', { dimensions: dims }));
      assert.equal(r.status, 400, `dimensions ${JSON.stringify(dims)}`);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(r.json.error.param, 'dimensions');
    }
  });

  test('token arrays: one array is one input, an array of arrays one input each; usage counts tokens', async () => {
    const one = await ask(emb('healthy', [15339, 1917, 0]));
    assert.equal(one.status, 200);
    assert.equal(one.json.data.length, 1);
    isVector(vectors(one)[0], 8);
    assert.deepEqual(one.json.usage, { prompt_tokens: 3, total_tokens: 3 });
    const many = await ask(emb('healthy', [[15339, 1917, 0], [42], [15339, 1917, 0]]));
    assert.equal(many.status, 200);
    assert.deepEqual(many.json.data.map((d) => d.index), [0, 1, 2]);
    assert.deepEqual(vectors(many)[0], vectors(one)[0], 'the same tokens, the same vector');
    assert.deepEqual(vectors(many)[2], vectors(one)[0]);
    assert.notDeepEqual(vectors(many)[1], vectors(one)[0]);
    assert.deepEqual(many.json.usage, { prompt_tokens: 7, total_tokens: 7 });
    const other = await ask(emb('healthy', [15339, 1917, 1]));
    assert.notDeepEqual(vectors(other)[0], vectors(one)[0]);
  });

  test('encoding_format base64: each embedding the base64 of its little-endian float32s', async () => {
    const f = await ask(emb('healthy', ['one', 'two three'], { dimensions: 5, encoding_format: 'float' }));
    const b = await ask(emb('healthy', ['one', 'two three'], { dimensions: 5, encoding_format: 'base64' }));
    assert.equal(b.status, 200);
    assert.deepEqual(Object.keys(b.json), ['object', 'data', 'model', 'usage']);
    for (const d of b.json.data) assert.equal(typeof d.embedding, 'string');
    assert.equal(b.json.data[0].embedding.length, 28, '20 bytes: 28 characters with padding');
    assert.deepEqual(b.json.data.map((d) => floats(d.embedding)), vectors(f));
    assert.deepEqual(b.json.usage, f.json.usage);
  });

  test('empty: data [], usage still counted', async () => {
    const r = await ask(emb('empty', ['a b', 'c']));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { object: 'list', data: [], model: 'empty', usage: { prompt_tokens: 3, total_tokens: 3 } });
  });
});

describe('the openai SDK pointed at the sim', () => {
  test('embeddings.create: asks base64 by default and gets the very floats a float request gets', async () => {
    const sent = [];
    const spy = new OpenAI({
      baseURL: `${sim.url}/v1`,
      apiKey: 'sk-test',
      maxRetries: 0,
      fetch: (url, init) => {
        sent.push(JSON.parse(init.body));
        return fetch(url, init);
      },
    });
    const input = ['The food was delicious', 'and the waiter...'];
    const sdk = await spy.embeddings.create({ model: 'healthy', input, dimensions: 16 });
    assert.equal(sent[0].encoding_format, 'base64');
    const raw = await ask(emb('healthy', input, { dimensions: 16, encoding_format: 'float' }));
    assert.equal(sdk.object, 'list');
    assert.equal(sdk.model, 'healthy');
    assert.deepEqual(sdk.usage, { prompt_tokens: 7, total_tokens: 7 });
    assert.deepEqual(sdk.data.map((d) => d.index), [0, 1]);
    assert.deepEqual(sdk.data.map((d) => d.embedding), vectors(raw));
  });

  test('embeddings.create with encoding_format: float or base64 as asked, untouched', async () => {
    const f = await client.embeddings.create({ model: 'healthy', input: 'hi', encoding_format: 'float' });
    isVector(f.data[0].embedding, 8);
    const b = await client.embeddings.create({ model: 'healthy', input: 'hi', encoding_format: 'base64' });
    assert.equal(typeof b.data[0].embedding, 'string');
    assert.deepEqual(floats(b.data[0].embedding), f.data[0].embedding);
  });

  test('token input through the SDK', async () => {
    const r = await client.embeddings.create({ model: 'healthy', input: [[1, 2, 3], [4]] });
    assert.equal(r.data.length, 2);
    for (const d of r.data) isVector(d.embedding, 8);
    assert.equal(r.usage.prompt_tokens, 4);
  });

  test('the SDK\'s error classes: 404 NotFoundError, 429 RateLimitError, 400 BadRequestError', async () => {
    await assert.rejects(client.embeddings.create({ model: '404', input: 'x' }), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError);
      assert.equal(e.code, 'model_not_found');
      return true;
    });
    await assert.rejects(client.embeddings.create({ model: '429', input: 'x' }), OpenAI.RateLimitError);
    await assert.rejects(client.embeddings.create({ model: 'healthy', input: '' }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.param, 'input');
      return true;
    });
  });
});

describe('requests the real API refuses: 400 in OpenAI\'s envelope', () => {
  const envelope = (r, param, code) => {
    assert.equal(r.status, 400);
    assert.deepEqual(Object.keys(r.json), ['error']);
    assert.deepEqual(Object.keys(r.json.error), ['message', 'type', 'param', 'code']);
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.equal(r.json.error.param, param);
    assert.equal(r.json.error.code, code);
  };

  test('no input: missing_required_parameter', async () => {
    const r = await ask({ model: 'healthy' });
    envelope(r, 'input', 'missing_required_parameter');
    assert.equal(r.json.error.message, "Missing required parameter: 'input'.");
  });

  test('an input the API does not take: invalid_value', async () => {
    for (const input of ['', [], [''], [[]], [-1], ['a', [1]], [[1], 'a'], [[1, 'x']], 42, { text: 'a' }, null,
      Array(2049).fill('a')]) {
      envelope(await ask(emb('healthy', input)), 'input', 'invalid_value');
    }
    assert.equal((await ask(emb('healthy', Array(2048).fill('a')))).status, 200, '2048 inputs are fine');
  });

  test('encoding_format other than float or base64', async () => {
    envelope(await ask(emb('healthy', 'a', { encoding_format: 'hex' })), 'encoding_format', 'invalid_value');
    assert.equal((await ask(emb('healthy', 'a', { encoding_format: null }))).status, 200);
  });

  test('no model, or no JSON: 400, not counted', async () => {
    await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
    envelope(await ask({ input: 'a' }), 'model', 'missing_required_parameter');
    envelope(await ask('not json'), null, null);
    assert.deepEqual((await simStats(sim)).hits, {});
  });
});

describe('behaviour names, as on chat', () => {
  for (const [model, status, code] of [
    ['500', 500, undefined],
    ['502', 502, 502],
    ['503', 503, 'service_unavailable'],
    ['429', 429, 'rate_limit_exceeded'],
    ['quota', 429, 'insufficient_quota'],
    ['401', 401, 'invalid_api_key'],
    ['403', 403, 'model_not_found'],
    ['404', 404, 'model_not_found'],
    ['400', 400, null],
    ['no-such-behaviour', 404, 'model_not_found'],
    ['echo', 404, 'model_not_found'],
  ]) {
    test(`${model}: ${status} in OpenAI's envelope`, async () => {
      const r = await ask(emb(model, 'a'));
      assert.equal(r.status, status);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(typeof r.json.error.message, 'string');
      assert.equal(r.json.error.code, code);
    });
  }

  test('529: Anthropic-style overloaded_error', async () => {
    const r = await ask(emb('529', 'a'));
    assert.equal(r.status, 529);
    assert.deepEqual(r.json, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  });

  test('429[:s]: retry-after in seconds, 1 by default', async () => {
    assert.equal((await ask(emb('429', 'a'))).headers['retry-after'], '1');
    assert.equal((await ask(emb('429:7', 'a'))).headers['retry-after'], '7');
    assert.equal((await ask(emb('503', 'a'))).headers['retry-after'], undefined);
  });

  test('fail-then-heal:1: one 503, then healthy embeddings', async () => {
    assert.equal((await ask(emb('fail-then-heal:1', 'a'))).status, 503);
    const r = await ask(emb('fail-then-heal:1', 'a'));
    assert.equal(r.status, 200);
    isVector(vectors(r)[0], 8);
  });

  test('rate-limit-then-heal:1: one 429 with retry-after 1, then healthy', async () => {
    const first = await ask(emb('rate-limit-then-heal:1', 'a'));
    assert.equal(first.status, 429);
    assert.equal(first.headers['retry-after'], '1');
    assert.equal((await ask(emb('rate-limit-then-heal:1', 'a'))).status, 200);
  });

  test('slow-first-token:300: the answer waits 300 ms; the vectors are healthy\'s', async () => {
    const t0 = Date.now();
    const r = await ask(emb('slow-first-token:300', 'wait for it'));
    const ms = Date.now() - t0;
    assert.ok(ms >= 290, `answered after ${ms} ms`);
    assert.equal(r.status, 200);
    assert.deepEqual(vectors(r), vectors(await ask(emb('healthy', 'wait for it'))));
  });

  test('hang: no response at all', async () => {
    await assert.rejects(ask(emb('hang', 'a'), { ms: 300 }), /no answer within 300 ms/);
  });

  test('headers-then-silence: 200 application/json, then nothing', async () => {
    const res = await new Promise((resolve, reject) => {
      const req = http.request(`${sim.url}/v1/embeddings`, { method: 'POST' }, (r) => {
        setTimeout(() => {
          req.destroy();
          resolve(r);
        }, 200);
      });
      req.on('error', () => {});
      setTimeout(() => reject(new Error('no headers')), 5000);
      req.end(JSON.stringify(emb('headers-then-silence', 'a')));
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/json');
  });

  test('reset-before-headers: the connection drops before any byte', async () => {
    await assert.rejects(ask(emb('reset-before-headers', 'a')), /socket hang up|ECONNRESET/);
  });
});

describe('/sim/stats', () => {
  beforeEach(async () => {
    await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
  });

  test('hits per name, tags apart, refused bodies counted; a client that leaves is gone', async () => {
    await ask(emb('healthy', 'a'));
    await ask(emb('healthy', ['a', 'b']));
    await ask(emb('healthy#b', 'a'));
    await ask(emb('503', 'a'));
    await ask({ model: '503' }); // no input: a 400, still a hit
    await assert.rejects(ask(emb('hang', 'a'), { ms: 100 }));
    let s;
    for (let i = 0; i < 50; i++) {
      s = await simStats(sim);
      if (s.gone.hang === 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(s.hits, { healthy: 2, 'healthy#b': 1, 503: 2, hang: 1 });
    assert.equal(s.gone.hang, 1);
    assert.equal(s.gone.healthy, 0);
  });

  test('chat and embeddings on one name share its counter', async () => {
    await ask(emb('healthy', 'a'));
    await ask({ model: 'healthy', messages: [{ role: 'user', content: 'hi' }] }, { path: '/v1/chat/completions' });
    assert.equal((await simStats(sim)).hits.healthy, 2);
  });
});
