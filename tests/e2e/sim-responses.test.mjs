// sim-responses.test.mjs - keel sim's Responses side (POST /v1/responses), talked to directly:
// the Response object in OpenAI's key order, the typed events of a stream (each `event: TYPE`,
// its data's type the same, sequence_number counting up from 0) and that they join into the
// non-stream answer; the official openai SDK pointed straight at the sim (create, stream, tools);
// the behaviour names shared with chat (faults, errors in OpenAI's envelope, heal); the request
// checks (model, input) and the /sim/stats counts.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { simStats, startSim, stop } from './lib.mjs';

let sim;
let client;

before(async () => {
  sim = await startSim();
  client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'k', maxRetries: 0, timeout: 10000 });
});

after(async () => {
  await stop(sim);
});

const req = (model, extra = {}) => ({ model, input: 'Say hello', ...extra });

// POSTs body (an object, or a string sent as is) and resolves to {status, headers, type, text,
// json, dropped} when the answer ends, the connection drops, or `until(text)` holds (the rest is
// not waited for); rejects when no response comes in ms.
function ask(body, { until = () => false, path = '/v1/responses', ms = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const r = http.request(`${sim.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    const timer = setTimeout(() => r.destroy(new Error(`no answer within ${ms} ms`)), ms);
    r.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    r.on('response', (res) => {
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
        resolve({ status: res.statusCode, headers: res.headers, type: res.headers['content-type'], text, json, dropped });
      };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
        if (until(text)) {
          finish(false);
          r.destroy();
        }
      });
      res.on('end', () => finish(false));
      res.on('aborted', () => finish(true));
      res.on('error', () => finish(true));
    });
    r.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

// An SSE body as its events, [{event, data}] with data parsed; every event whole, its name its
// data's type, sequence_number 0, 1, 2, ...
function events(text) {
  const ev = text
    .split('\n\n')
    .filter((e) => e.length > 0)
    .map((e) => {
      const m = e.match(/^event: ([a-z_.]+)\ndata: (.*)$/);
      assert.ok(m, `not an event: ${JSON.stringify(e)}`);
      return { event: m[1], data: JSON.parse(m[2]) };
    });
  ev.forEach((e, i) => {
    assert.equal(e.data.type, e.event, 'the event name is the data type');
    assert.equal(e.data.sequence_number, i, `${e.event}: sequence_number`);
  });
  return ev;
}

const names = (text) => events(text).map((e) => e.event);
const deltas = (text) => events(text).filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta);

// Joins a stream's events into the Response they stand for, the way the SDK's ResponseStream
// does (but strictly: each event must fit where it comes).
function assemble(text) {
  let response = null;
  for (const { event, data } of events(text)) {
    if (event === 'response.created') {
      assert.equal(response, null);
      response = structuredClone(data.response);
      assert.equal(response.status, 'in_progress');
      assert.deepEqual(response.output, []);
      assert.equal(response.usage, null);
    } else if (event === 'response.in_progress') {
      assert.deepEqual(data.response, response);
    } else if (event === 'response.output_item.added') {
      assert.equal(data.output_index, response.output.length, 'items open in order');
      assert.equal(data.item.status, 'in_progress');
      response.output.push(structuredClone(data.item));
    } else if (event === 'response.content_part.added') {
      const item = response.output[data.output_index];
      assert.equal(data.item_id, item.id);
      assert.equal(data.content_index, item.content.length);
      item.content.push(structuredClone(data.part));
    } else if (event === 'response.output_text.delta') {
      const item = response.output[data.output_index];
      assert.equal(data.item_id, item.id);
      assert.deepEqual(data.logprobs, []);
      item.content[data.content_index].text += data.delta;
    } else if (event === 'response.output_text.done') {
      assert.equal(data.text, response.output[data.output_index].content[data.content_index].text);
    } else if (event === 'response.content_part.done') {
      assert.deepEqual(data.part, response.output[data.output_index].content[data.content_index]);
    } else if (event === 'response.function_call_arguments.delta') {
      const item = response.output[data.output_index];
      assert.equal(data.item_id, item.id);
      item.arguments += data.delta;
    } else if (event === 'response.function_call_arguments.done') {
      assert.equal(data.arguments, response.output[data.output_index].arguments);
    } else if (event === 'response.output_item.done') {
      const item = response.output[data.output_index];
      item.status = 'completed';
      assert.deepEqual(data.item, item);
    } else if (event === 'response.completed') {
      const { output: _, usage, status } = data.response;
      assert.deepEqual({ ...data.response, output: response.output }, data.response, 'the joined output');
      Object.assign(response, { status, usage });
      assert.deepEqual(response, data.response);
    } else {
      assert.fail(`unexpected event ${event}`);
    }
  }
  return response;
}

const HELLO = ['Hello', ' from', ' the', ' keel', ' simulator.'];
const TOP_KEYS = ['id', 'object', 'created_at', 'status', 'error', 'incomplete_details', 'instructions', 'model',
  'output', 'parallel_tool_calls', 'tool_choice', 'tools', 'usage'];
const HEALTHY = (model) =>
  `{"id":"resp_sim","object":"response","created_at":0,"status":"completed","error":null,"incomplete_details":null,` +
  `"instructions":null,"model":"${model}","output":[{"type":"message","id":"msg_sim","status":"completed",` +
  `"role":"assistant","content":[{"type":"output_text","text":"Hello from the keel simulator.","annotations":[]}]}],` +
  `"parallel_tool_calls":true,"tool_choice":"auto","tools":[],"usage":{"input_tokens":5,"input_tokens_details":` +
  `{"cached_tokens":0},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":9}}`;
const CALLS = [
  { type: 'function_call', id: 'fc_sim_1', call_id: 'call_sim_1', name: 'get_weather',
    arguments: '{"city":"Paris","unit":"c"}', status: 'completed' },
  { type: 'function_call', id: 'fc_sim_2', call_id: 'call_sim_2', name: 'get_time',
    arguments: '{"tz":"Europe/Paris"}', status: 'completed' },
];

describe('the non-stream answer: a Response, keys in OpenAI\'s order', () => {
  test('healthy: byte for byte, with a request id', async () => {
    const r = await ask(req('healthy'));
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    assert.match(r.headers['x-request-id'], /^req_sim_\d+$/);
    assert.equal(r.text, HEALTHY('healthy'));
    assert.deepEqual(Object.keys(r.json), TOP_KEYS);
  });

  test('/responses (no /v1) answers the same; input may be an array; the model carries its tag', async () => {
    const r = await ask(req('healthy#b', { input: [{ role: 'user', content: 'hi' }] }), { path: '/responses' });
    assert.equal(r.status, 200);
    assert.equal(r.text, HEALTHY('healthy#b'));
  });

  test('tools: two function_call items, arguments as JSON strings', async () => {
    const r = await ask(req('tools'));
    assert.deepEqual(r.json.output, CALLS);
    assert.deepEqual(Object.keys(r.json.output[0]), ['type', 'id', 'call_id', 'name', 'arguments', 'status']);
    assert.equal(r.json.usage.output_tokens, 7);
  });

  test('empty: no output', async () => {
    const r = await ask(req('empty'));
    assert.equal(r.json.status, 'completed');
    assert.deepEqual(r.json.output, []);
    assert.equal(r.json.usage.output_tokens, 0);
  });

  test('echo: the output_text is the request body exactly as received', async () => {
    const raw = '{"model":"echo","input":"h\u00e9llo \\"q\\"\\n",  "x":[1, 2]}';
    const r = await ask(raw);
    assert.equal(r.json.output[0].content[0].text, raw);
  });
});

describe('the stream: the typed events in OpenAI\'s order', () => {
  test('healthy: created, in_progress, the item, its part, a delta per word, the dones, completed', async () => {
    const r = await ask(req('healthy', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.type, 'text/event-stream');
    assert.match(r.headers['x-request-id'], /^req_sim_\d+$/);
    assert.deepEqual(names(r.text), [
      'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
      ...HELLO.map(() => 'response.output_text.delta'),
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed',
    ]);
    assert.deepEqual(deltas(r.text), HELLO);
    const ev = events(r.text);
    assert.deepEqual(ev[2].data.item, { type: 'message', id: 'msg_sim', status: 'in_progress', role: 'assistant', content: [] });
    assert.deepEqual(Object.keys(ev[4].data), ['type', 'item_id', 'output_index', 'content_index', 'delta', 'logprobs',
      'sequence_number']);
    assert.equal(ev.find((e) => e.event === 'response.output_text.done').data.text, HELLO.join(''));
    assert.equal(JSON.stringify(ev.at(-1).data.response), HEALTHY('healthy'));
  });

  test('tools: each call opened, its arguments in fragments cut mid-token, closed before the next', async () => {
    const r = await ask(req('tools', { stream: true }));
    const ev = events(r.text);
    const frags = ev.filter((e) => e.event === 'response.function_call_arguments.delta');
    assert.ok(frags.length >= 4);
    assert.ok(frags.some((f) => /^[a-z]/.test(f.data.delta)), 'some fragment starts mid-token');
    assert.deepEqual(ev.filter((e) => e.event === 'response.function_call_arguments.done').map((e) => e.data.arguments),
      CALLS.map((c) => c.arguments));
    assert.deepEqual(ev.filter((e) => e.event === 'response.output_item.added').map((e) => e.data.item.arguments), ['', '']);
    assert.ok(!names(r.text).includes('response.content_part.added'));
  });

  test('empty: created, in_progress, completed', async () => {
    assert.deepEqual(names((await ask(req('empty', { stream: true }))).text),
      ['response.created', 'response.in_progress', 'response.completed']);
  });

  test('echo: one delta, the request body', async () => {
    const body = JSON.stringify(req('echo', { stream: true }));
    assert.deepEqual(deltas((await ask(body)).text), [body]);
  });

  test('+sse: stream: false gets the very bytes stream: true gets', async () => {
    const a = await ask(req('healthy+sse'));
    const b = await ask(req('healthy+sse', { stream: true }));
    assert.equal(a.type, 'text/event-stream');
    assert.equal(a.text, b.text);
  });
});

describe('a stream joins into its non-stream answer', () => {
  for (const model of ['healthy', 'tools', 'empty', 'slow-tokens:5']) {
    test(model, async () => {
      const whole = await ask(req(model));
      const stream = await ask(req(model, { stream: true }));
      assert.deepEqual(assemble(stream.text), whole.json);
    });
  }
});

describe('the official openai SDK, pointed straight at the sim', () => {
  test('responses.create: output_text', async () => {
    const r = await client.responses.create({ model: 'healthy', input: 'Say hello' });
    assert.equal(r.output_text, 'Hello from the keel simulator.');
    assert.equal(r.usage.total_tokens, 9);
  });

  test('responses.stream(...).finalResponse(), and the deltas it emits', async () => {
    const s = client.responses.stream({ model: 'healthy', input: 'Say hello' });
    const seen = [];
    s.on('response.output_text.delta', (e) => seen.push(e.delta));
    const r = await s.finalResponse();
    // the SDK adds its output_text convenience only to create()'s answers (and parsed streams)
    assert.equal(r.output[0].content[0].text, 'Hello from the keel simulator.');
    assert.equal(r.status, 'completed');
    assert.deepEqual(seen, HELLO);
  });

  test('responses.create with stream: true iterates the events', async () => {
    const stream = await client.responses.create({ model: 'healthy', input: 'Say hello', stream: true });
    let text = '';
    let last;
    for await (const e of stream) {
      if (e.type === 'response.output_text.delta') text += e.delta;
      last = e;
    }
    assert.equal(text, 'Hello from the keel simulator.');
    assert.equal(last.type, 'response.completed');
  });

  test('tools: two function_call items, whole and streamed', async () => {
    const tools = [
      { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} } },
      { type: 'function', name: 'get_time', parameters: { type: 'object', properties: {} } },
    ];
    const whole = await client.responses.create({ model: 'tools', input: 'Weather?', tools });
    assert.deepEqual(whole.output.map(({ type, call_id, name, arguments: a }) => ({ type, call_id, name, a })), [
      { type: 'function_call', call_id: 'call_sim_1', name: 'get_weather', a: '{"city":"Paris","unit":"c"}' },
      { type: 'function_call', call_id: 'call_sim_2', name: 'get_time', a: '{"tz":"Europe/Paris"}' },
    ]);
    const streamed = await client.responses.stream({ model: 'tools', input: 'Weather?', tools }).finalResponse();
    assert.deepEqual(streamed.output.map((o) => JSON.parse(o.arguments)), [{ city: 'Paris', unit: 'c' }, { tz: 'Europe/Paris' }]);
  });

  test('errors come back as the SDK\'s APIError with status and code', async () => {
    await assert.rejects(client.responses.create({ model: '503', input: 'x' }), (e) => {
      assert.equal(e.status, 503);
      assert.equal(e.code, 'service_unavailable');
      return true;
    });
    await assert.rejects(client.responses.create({ model: 'healthy' }), (e) => e.status === 400 &&
      e.code === 'missing_required_parameter');
  });
});

describe('faults before content, and mid-stream', () => {
  test('heartbeat-only:50, pings-only:50: created, in_progress, then only keep-alive comments; non-stream: spaces', async () => {
    for (const model of ['heartbeat-only:50', 'pings-only:50']) {
      const r = await ask(req(model, { stream: true }), { until: (t) => t.split(': keep-alive\n\n').length > 4 });
      assert.equal(r.type, 'text/event-stream');
      const head = r.text.slice(0, r.text.indexOf(': keep-alive'));
      assert.deepEqual(names(head), ['response.created', 'response.in_progress']);
      assert.match(r.text.slice(head.length), /^(: keep-alive\n\n)+/);
      const whole = await ask(req(model), { until: (t) => t.length >= 3 });
      assert.equal(whole.type, 'application/json');
      assert.match(whole.text, /^ +$/);
    }
  });

  test('hang: no response at all', async () => {
    await assert.rejects(ask(req('hang'), { ms: 300 }), /no answer within 300 ms/);
  });

  test('headers-then-silence: 200, then nothing', async () => {
    const r = await ask(req('headers-then-silence', { stream: true }), { until: (t) => t.length > 0 });
    assert.equal(r.status, 200);
    assert.equal(r.type, 'text/event-stream');
    assert.equal(r.text, ': connected\n\n');
  });

  test('reset-before-headers: the connection drops before any byte', async () => {
    await assert.rejects(ask(req('reset-before-headers')), /socket hang up|ECONNRESET/);
  });

  test('stall-after:2: two deltas, then silence', async () => {
    const r = await ask(req('stall-after:2', { stream: true }), { until: (t) => t.includes('" from"') });
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(deltas(r.text), HELLO.slice(0, 2));
    assert.equal(names(r.text).at(-1), 'response.output_text.delta');
  });

  test('cut-after:3: three deltas, then a clean end with no response.completed', async () => {
    const r = await ask(req('cut-after:3', { stream: true }));
    assert.equal(r.dropped, false);
    assert.deepEqual(names(r.text), ['response.created', 'response.in_progress', 'response.output_item.added',
      'response.content_part.added', 'response.output_text.delta', 'response.output_text.delta',
      'response.output_text.delta']);
    assert.deepEqual(deltas(r.text), HELLO.slice(0, 3));
  });

  test('reset-mid-stream: two deltas, then the connection drops', async () => {
    const r = await ask(req('reset-mid-stream', { stream: true }));
    assert.equal(r.dropped, true);
    assert.deepEqual(deltas(r.text), HELLO.slice(0, 2));
  });

  test('error-after-content: two deltas, then an error event, nothing after', async () => {
    const ev = events((await ask(req('error-after-content', { stream: true }))).text);
    assert.deepEqual(ev.slice(4).map((e) => e.event), ['response.output_text.delta', 'response.output_text.delta', 'error']);
    assert.deepEqual(ev.at(-1).data, { type: 'error', code: 'server_error', message: 'The server had an error',
      param: null, sequence_number: 6 });
  });

  test('error-before-content: the error event right after in_progress; without a stream a 500', async () => {
    const ev = events((await ask(req('error-before-content', { stream: true }))).text);
    assert.deepEqual(ev.map((e) => e.event), ['response.created', 'response.in_progress', 'error']);
    const r = await ask(req('error-after-content'));
    assert.equal(r.status, 500);
    assert.equal(r.json.error.type, 'server_error');
  });

  test('slow-first-token:300: the first delta waits; non-stream waits too', async () => {
    const t0 = Date.now();
    let delta = 0;
    const r = await ask(req('slow-first-token:300', { stream: true }), {
      until: (t) => {
        if (!delta && t.includes('response.output_text.delta')) delta = Date.now() - t0;
        return false;
      },
    });
    assert.ok(delta >= 290, `first delta after ${delta} ms`);
    assert.equal(assemble(r.text).output[0].content[0].text, HELLO.join(''));
    const t1 = Date.now();
    await ask(req('slow-first-token:300'));
    assert.ok(Date.now() - t1 >= 290);
  });
});

describe('errors: OpenAI\'s envelope and status', () => {
  for (const [model, status, code] of [
    ['500', 500, null],
    ['503', 503, 'service_unavailable'],
    ['429', 429, 'rate_limit_exceeded'],
    ['quota', 429, 'insufficient_quota'],
    ['401', 401, 'invalid_api_key'],
    ['404', 404, 'model_not_found'],
    ['400', 400, 'invalid_type'],
    ['no-such-behaviour', 404, 'model_not_found'],
  ]) {
    test(`${model}: ${status} ${code}`, async () => {
      for (const stream of [false, true]) {
        const r = await ask(req(model, { stream }));
        assert.equal(r.status, status);
        assert.equal(r.type, 'application/json');
        assert.deepEqual(Object.keys(r.json), ['error']);
        assert.equal(r.json.error.code ?? null, code); // 500: no code, as the chat side
        assert.ok(r.json.error.message.length > 0);
        assert.ok('param' in r.json.error);
      }
    });
  }

  test('502 and 529: their upstream-ish bodies', async () => {
    assert.equal((await ask(req('502'))).status, 502);
    const r = await ask(req('529'));
    assert.equal(r.status, 529);
    assert.equal(r.json.error.type, 'overloaded_error');
  });

  test('429: retry-after in seconds, 1 by default', async () => {
    assert.equal((await ask(req('429'))).headers['retry-after'], '1');
    assert.equal((await ask(req('429:7'))).headers['retry-after'], '7');
    assert.equal((await ask(req('503'))).headers['retry-after'], undefined);
  });

  test('fail-then-heal:1: one 503, then healthy; rate-limit-then-heal:1: one 429', async () => {
    assert.equal((await ask(req('fail-then-heal:1'))).status, 503);
    assert.equal((await ask(req('fail-then-heal:1'))).text, HEALTHY('fail-then-heal:1'));
    const r = await ask(req('rate-limit-then-heal:1'));
    assert.equal(r.status, 429);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal((await ask(req('rate-limit-then-heal:1'))).status, 200);
  });
});

describe('requests: what the real API checks, what the sim counts', () => {
  beforeEach(async () => {
    await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
  });

  test('no input: 400 missing_required_parameter, counted as a hit', async () => {
    const r = await ask({ model: 'healthy' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { error: { message: "Missing required parameter: 'input'.", type: 'invalid_request_error',
      param: 'input', code: 'missing_required_parameter' } });
    const bad = await ask({ model: 'healthy', input: 42 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'invalid_type');
    assert.equal((await simStats(sim)).hits.healthy, 2);
  });

  test('no model, no JSON: 400, not counted', async () => {
    const r = await ask({ input: 'x' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, 'model');
    assert.equal(r.json.error.code, 'missing_required_parameter');
    const j = await ask('{"model":');
    assert.equal(j.status, 400);
    assert.deepEqual((await simStats(sim)).hits, {});
  });

  test('hits counted per name, one counter across endpoints; Authorization recorded', async () => {
    await ask(req('healthy#r'));
    await ask(req('healthy#r', { stream: true }), { path: '/responses' });
    await fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'healthy#r', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await client.responses.create({ model: 'healthy#r', input: 'x' });
    const s = await simStats(sim);
    assert.equal(s.hits['healthy#r'], 4);
    assert.equal(s.auth['healthy#r'], 'Bearer k');
    assert.ok(s.writes['healthy#r'] > 0, 'the stream\'s writes counted');
  });
});
