// sim-anthropic.test.mjs - keel sim's Anthropic Messages side (POST /v1/messages), talked to
// directly: the answers in api.anthropic.com's shapes and key order, the event order of a stream,
// the same behaviour names as the OpenAI side, Anthropic's error envelope, the request checks the
// real API makes (max_tokens, messages), the credentials recorded in /sim/stats, and that each
// stream, joined by this file's own assembler, gives the non-stream answer back byte for byte.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { simStats, startSim, stop } from './lib.mjs';

let sim;

before(async () => {
  sim = await startSim();
});

after(async () => {
  await stop(sim);
});

const HEADERS = { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' };

function msg(model, extra = {}) {
  return { model, max_tokens: 64, messages: [{ role: 'user', content: 'Say hello' }], ...extra };
}

// POSTs body (an object, or a string sent as is) to the sim's Messages endpoint and resolves to
// {status, headers, type, text, dropped} when the answer ends, the connection drops, or
// `until(text)` holds (the rest is not waited for); rejects when no response comes.
function ask(body, { until = () => false, headers = HEADERS, path = '/v1/messages', ms = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${sim.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
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
        resolve({ status: res.statusCode, headers: res.headers, type: res.headers['content-type'], text, dropped });
      };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
        if (until(text)) {
          finish(false);
          req.destroy();
        }
      });
      res.on('end', () => finish(false));
      res.on('aborted', () => finish(true));
      res.on('error', () => finish(true));
    });
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

// An SSE body as its events, [{event, data}] with data parsed; every event must be whole.
function events(text) {
  return text
    .split('\n\n')
    .filter((e) => e.length > 0)
    .map((e) => {
      const m = e.match(/^event: ([a-z_]+)\ndata: (.*)$/);
      assert.ok(m, `not an event: ${JSON.stringify(e)}`);
      return { event: m[1], data: JSON.parse(m[2]) };
    });
}

const names = (text) => events(text).map((e) => e.event);
const atLeast = (n) => (text) => text.split('\n\n').length > n;

// Joins a stream's events into the message they stand for, the way an Anthropic client does.
function assemble(text) {
  let message = null;
  const partial = [];
  for (const { event, data } of events(text)) {
    assert.equal(data.type, event, 'the event name is the data type');
    if (event === 'message_start') {
      message = structuredClone(data.message);
    } else if (event === 'content_block_start') {
      assert.equal(data.index, message.content.length, 'blocks open in order');
      message.content.push(structuredClone(data.content_block));
      partial[data.index] = '';
    } else if (event === 'content_block_delta') {
      const block = message.content[data.index];
      const d = data.delta;
      if (d.type === 'text_delta') block.text += d.text;
      else if (d.type === 'thinking_delta') block.thinking += d.thinking;
      else if (d.type === 'signature_delta') block.signature += d.signature;
      else if (d.type === 'input_json_delta') partial[data.index] += d.partial_json;
      else assert.fail(`unknown delta ${d.type}`);
    } else if (event === 'content_block_stop') {
      const block = message.content[data.index];
      if (block.type === 'tool_use') block.input = JSON.parse(partial[data.index]);
    } else if (event === 'message_delta') {
      Object.assign(message, data.delta);
      Object.assign(message.usage, data.usage);
    }
  }
  return message;
}

async function both(model) {
  const whole = await ask(msg(model));
  const stream = await ask(msg(model, { stream: true }));
  assert.equal(whole.status, 200, whole.text);
  assert.equal(whole.type, 'application/json');
  assert.equal(stream.status, 200, stream.text);
  assert.equal(stream.type, 'text/event-stream');
  return { whole: whole.text, json: JSON.parse(whole.text), stream: stream.text };
}

const TOP_KEYS = ['id', 'type', 'role', 'model', 'content', 'stop_reason', 'stop_sequence', 'usage'];
const HELLO = ['Hello', ' from', ' the', ' keel', ' simulator.'];
const overloaded = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };

describe('the non-stream answer: a message, keys in Anthropic\'s order', () => {
  test('healthy: byte for byte', async () => {
    const r = await ask(msg('healthy'));
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    assert.equal(
      r.text,
      '{"id":"msg_sim","type":"message","role":"assistant","model":"healthy","content":[{"type":"text",' +
        '"text":"Hello from the keel simulator."}],"stop_reason":"end_turn","stop_sequence":null,' +
        '"usage":{"input_tokens":5,"output_tokens":4}}',
    );
  });

  test('/messages (no /v1) answers the same, the model name carries the tag', async () => {
    const r = await ask(msg('healthy#b'), { path: '/messages' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).model, 'healthy#b');
  });

  test('tools: a text block, then two tool_use blocks with their inputs as objects', async () => {
    const j = JSON.parse((await ask(msg('tools'))).text);
    assert.deepEqual(Object.keys(j), TOP_KEYS);
    assert.deepEqual(j.content, [
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', id: 'toolu_sim_1', name: 'get_weather', input: { city: 'Paris', unit: 'c' } },
      { type: 'tool_use', id: 'toolu_sim_2', name: 'get_time', input: { tz: 'Europe/Paris' } },
    ]);
    assert.deepEqual(Object.keys(j.content[1]), ['type', 'id', 'name', 'input']);
    assert.equal(j.stop_reason, 'tool_use');
    assert.deepEqual(j.usage, { input_tokens: 5, output_tokens: 10 });
  });

  test('thinking: a thinking block with its signature, then the text', async () => {
    const j = JSON.parse((await ask(msg('thinking'))).text);
    assert.deepEqual(j.content, [
      { type: 'thinking', thinking: 'Thinking it over.', signature: 'sig_sim' },
      { type: 'text', text: 'Hello from the keel simulator.' },
    ]);
    assert.deepEqual(Object.keys(j.content[0]), ['type', 'thinking', 'signature']);
    assert.equal(j.stop_reason, 'end_turn');
    assert.deepEqual(j.usage, { input_tokens: 5, output_tokens: 8 });
  });

  test('empty: no content', async () => {
    const j = JSON.parse((await ask(msg('empty'))).text);
    assert.deepEqual(j.content, []);
    assert.equal(j.stop_reason, 'end_turn');
    assert.deepEqual(j.usage, { input_tokens: 5, output_tokens: 0 });
  });

  test('echo: the text is the request body exactly as received', async () => {
    const body = '{"model":"echo","max_tokens":9,"messages":[{"role":"user","content":"q\\"é\\n"}]}';
    const j = JSON.parse((await ask(body)).text);
    assert.deepEqual(j.content, [{ type: 'text', text: body }]);
    const streamed = '{"model":"echo","max_tokens":9,"stream":true,"messages":[]}';
    assert.equal(assemble((await ask(streamed)).text).content[0].text, streamed);
  });
});

describe('the stream: Anthropic\'s events in Anthropic\'s order', () => {
  test('healthy: every event byte for byte', async () => {
    const r = await ask(msg('healthy', { stream: true }));
    assert.equal(r.type, 'text/event-stream');
    const ev = (name, data) => `event: ${name}\ndata: ${data}\n\n`;
    assert.equal(
      r.text,
      ev('message_start', '{"type":"message_start","message":{"id":"msg_sim","type":"message","role":"assistant",' +
        '"model":"healthy","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}') +
        ev('ping', '{"type":"ping"}') +
        ev('content_block_start', '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}') +
        HELLO.map((w) => ev('content_block_delta',
          `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"${w}"}}`)).join('') +
        ev('content_block_stop', '{"type":"content_block_stop","index":0}') +
        ev('message_delta', '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},' +
          '"usage":{"output_tokens":4}}') +
        ev('message_stop', '{"type":"message_stop"}'),
    );
  });

  for (const model of ['healthy', 'tools', 'thinking', 'empty']) {
    test(`${model}: message_start, ping, blocks (start, deltas, stop), message_delta, message_stop`, async () => {
      const ev = events((await ask(msg(model, { stream: true }))).text);
      assert.deepEqual(ev.slice(0, 2).map((e) => e.event), ['message_start', 'ping']);
      assert.deepEqual(ev.slice(-2).map((e) => e.event), ['message_delta', 'message_stop']);
      let open = -1;
      for (const { event, data } of ev.slice(2, -2)) {
        if (event === 'content_block_start') {
          assert.equal(data.index, open + 1);
          open = data.index;
        } else {
          assert.ok(event === 'content_block_delta' || event === 'content_block_stop', event);
          assert.equal(data.index, open);
        }
      }
    });
  }

  test('tools: input_json_delta fragments cut mid-token, each block closed before the next opens', async () => {
    const ev = events((await ask(msg('tools', { stream: true }))).text);
    const starts = ev.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block);
    assert.deepEqual(starts, [
      { type: 'text', text: '' },
      { type: 'tool_use', id: 'toolu_sim_1', name: 'get_weather', input: {} },
      { type: 'tool_use', id: 'toolu_sim_2', name: 'get_time', input: {} },
    ]);
    const frags = ev.filter((e) => e.data.delta?.type === 'input_json_delta').map((e) => e.data.delta.partial_json);
    assert.ok(frags.length >= 4, frags.join('|'));
    for (const f of frags) assert.throws(() => JSON.parse(f), `a whole JSON text: ${f}`);
    assert.ok(frags.some((f) => /^[a-z]/.test(f)), 'some fragment starts mid-token');
    assert.deepEqual(ev.at(-2).data, {
      type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 10 },
    });
  });

  test('thinking: thinking_delta fragments, then a signature_delta, then the text block', async () => {
    const ev = events((await ask(msg('thinking', { stream: true }))).text);
    assert.deepEqual(ev[2].data.content_block, { type: 'thinking', thinking: '', signature: '' });
    const block0 = ev.filter((e) => e.event === 'content_block_delta' && e.data.index === 0).map((e) => e.data.delta);
    assert.deepEqual(block0, [
      { type: 'thinking_delta', thinking: 'Thinking' },
      { type: 'thinking_delta', thinking: ' it' },
      { type: 'thinking_delta', thinking: ' over.' },
      { type: 'signature_delta', signature: 'sig_sim' },
    ]);
  });

  test('empty: no content block at all', async () => {
    assert.deepEqual(names((await ask(msg('empty', { stream: true }))).text),
      ['message_start', 'ping', 'message_delta', 'message_stop']);
  });

  test('+sse: stream: false gets the very bytes stream: true gets', async () => {
    const unasked = await ask(msg('tools+sse'));
    const streamed = await ask(msg('tools+sse', { stream: true }));
    assert.equal(unasked.type, 'text/event-stream');
    assert.equal(unasked.text, streamed.text);
  });
});

describe('a stream joins into its non-stream answer, byte for byte', () => {
  for (const model of ['healthy', 'tools', 'thinking', 'empty', 'slow-tokens:1#j']) {
    test(model, async () => {
      const { whole, json, stream } = await both(model);
      const joined = assemble(stream);
      assert.deepEqual(joined, json);
      assert.equal(JSON.stringify(joined), whole);
    });
  }
});

describe('faults before content, and mid-stream', () => {
  test('pings-only:50: message_start, then only pings; non-stream: spaces', async () => {
    for (const model of ['pings-only:50', 'heartbeat-only:50']) {
      const r = await ask(msg(model, { stream: true }), { until: atLeast(4) });
      assert.equal(r.type, 'text/event-stream');
      const ev = names(r.text.slice(0, r.text.lastIndexOf('\n\n') + 2));
      assert.equal(ev[0], 'message_start');
      assert.ok(ev.length >= 4 && ev.slice(1).every((e) => e === 'ping'), ev.join(','));
      const whole = await ask(msg(model), { until: (t) => t.length >= 3 });
      assert.equal(whole.type, 'application/json');
      assert.match(whole.text, /^ +$/);
    }
  });

  test('hang: no response at all', async () => {
    await assert.rejects(ask(msg('hang'), { ms: 300 }), /no answer within 300 ms/);
  });

  test('headers-then-silence: 200, then nothing', async () => {
    const r = await new Promise((resolve, reject) => {
      const req = http.request(`${sim.url}/v1/messages`, { method: 'POST', headers: HEADERS }, (res) => {
        setTimeout(() => {
          req.destroy();
          resolve(res);
        }, 200);
      });
      req.on('error', () => {});
      setTimeout(() => reject(new Error('no headers')), 5000);
      req.end(JSON.stringify(msg('headers-then-silence', { stream: true })));
    });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'text/event-stream');
  });

  test('stall-after:2: two text deltas, then silence', async () => {
    const r = await ask(msg('stall-after:2', { stream: true }), { until: (t) => t.includes('" from"') });
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(names(r.text), ['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_delta']);
  });

  test('cut-after:3: three text deltas, then a clean end with no message_delta or message_stop', async () => {
    const r = await ask(msg('cut-after:3', { stream: true }));
    assert.equal(r.dropped, false);
    const ev = events(r.text);
    assert.deepEqual(ev.map((e) => e.event), ['message_start', 'ping', 'content_block_start',
      'content_block_delta', 'content_block_delta', 'content_block_delta']);
    assert.deepEqual(ev.slice(3).map((e) => e.data.delta.text), HELLO.slice(0, 3));
  });

  test('reset-mid-stream: two text deltas, then the connection drops', async () => {
    const r = await ask(msg('reset-mid-stream', { stream: true }));
    assert.equal(r.dropped, true);
    assert.deepEqual(events(r.text).filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text),
      ['Hello', ' from']);
  });

  test('reset-before-headers: the connection drops before any byte', async () => {
    await assert.rejects(ask(msg('reset-before-headers')), /socket hang up|ECONNRESET/);
  });

  test('error-after-content: two text deltas, then an error event (overloaded_error), nothing after', async () => {
    const ev = events((await ask(msg('error-after-content', { stream: true }))).text);
    assert.deepEqual(ev.map((e) => e.event), ['message_start', 'ping', 'content_block_start',
      'content_block_delta', 'content_block_delta', 'error']);
    assert.deepEqual(ev.at(-1).data, overloaded);
  });

  test('error-before-content: the error event right after message_start', async () => {
    const ev = events((await ask(msg('error-before-content', { stream: true }))).text);
    assert.deepEqual(ev.map((e) => e.event), ['message_start', 'error']);
    assert.deepEqual(ev[1].data, overloaded);
  });

  test('error-before-content, error-after-content without a stream: a 529', async () => {
    for (const model of ['error-before-content', 'error-after-content']) {
      const r = await ask(msg(model));
      assert.equal(r.status, 529);
      assert.deepEqual(JSON.parse(r.text), overloaded);
    }
  });

  test('slow-first-token:300: the first delta waits', async () => {
    // the sim's delay is a floor. Whether the head arrives before it is not asserted: on a
    // loaded machine it was seen to arrive with the first delta (2 runs in 5, cause not found)
    const t0 = Date.now();
    let head = 0;
    let delta = 0;
    const r = await ask(msg('slow-first-token:300', { stream: true }), {
      until: (t) => {
        if (!head && t.includes('event: ping')) head = Date.now() - t0;
        if (!delta && t.includes('event: content_block_delta')) delta = Date.now() - t0;
        return false;
      },
    });
    assert.ok(delta >= 290, `first delta after ${delta} ms`);
    assert.ok(head > 0 && head <= delta, `head after ${head} ms, first delta after ${delta} ms`);
    assert.equal(assemble(r.text).content[0].text, 'Hello from the keel simulator.');
  });
});

describe('errors: Anthropic\'s envelope and status', () => {
  for (const [model, status, type, message] of [
    ['529', 529, 'overloaded_error', 'Overloaded'],
    ['429', 429, 'rate_limit_error', null],
    ['500', 500, 'api_error', null],
    ['401', 401, 'authentication_error', null],
    ['403', 403, 'permission_error', null],
    ['404', 404, 'not_found_error', 'model: 404'],
    ['400', 400, 'invalid_request_error', null],
    ['prompt-too-long', 400, 'invalid_request_error', 'prompt is too long: 250000 tokens > 200000 maximum'],
    ['no-such-behaviour', 404, 'not_found_error', 'model: no-such-behaviour'],
  ]) {
    test(`${model}: ${status} ${type}`, async () => {
      for (const stream of [false, true]) {
        const r = await ask(msg(model, { stream }));
        assert.equal(r.status, status);
        assert.equal(r.type, 'application/json');
        const j = JSON.parse(r.text);
        assert.deepEqual(Object.keys(j), ['type', 'error']);
        assert.equal(j.type, 'error');
        assert.deepEqual(Object.keys(j.error), ['type', 'message']);
        assert.equal(j.error.type, type);
        if (message) assert.equal(j.error.message, message);
        else assert.ok(j.error.message.length > 0);
      }
    });
  }

  test('429: retry-after in seconds, 1 by default', async () => {
    assert.equal((await ask(msg('429'))).headers['retry-after'], '1');
    assert.equal((await ask(msg('429:7'))).headers['retry-after'], '7');
    assert.equal((await ask(msg('529'))).headers['retry-after'], undefined);
  });

  test('fail-then-heal:1: one 529, then healthy', async () => {
    assert.equal((await ask(msg('fail-then-heal:1'))).status, 529);
    const r = await ask(msg('fail-then-heal:1'));
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).content[0].text, 'Hello from the keel simulator.');
  });
});

describe('requests: what the real API checks, what the sim records', () => {
  beforeEach(async () => {
    await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
  });

  test('no max_tokens: 400 invalid_request_error, counted as a hit', async () => {
    const { max_tokens: _, ...body } = msg('healthy');
    const r = await ask(body);
    assert.equal(r.status, 400);
    assert.deepEqual(JSON.parse(r.text), {
      type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' },
    });
    assert.equal((await simStats(sim)).hits.healthy, 1);
  });

  test('no messages, no model, no JSON: 400 invalid_request_error', async () => {
    const { messages: _, ...body } = msg('healthy');
    for (const [b, message] of [
      [body, 'messages: Field required'],
      [{ max_tokens: 5, messages: [] }, 'model: Field required'],
      ['{"model":', 'invalid JSON body'],
    ]) {
      const r = await ask(b);
      assert.equal(r.status, 400);
      assert.deepEqual(JSON.parse(r.text).error, { type: 'invalid_request_error', message });
    }
  });

  test('x-api-key and anthropic-version recorded per model name, hits counted', async () => {
    await ask(msg('healthy#k'));
    await ask(msg('healthy#k', { stream: true }), { headers: { 'x-api-key': 'sk-ant-2', 'anthropic-version': '2023-06-01' } });
    await ask(msg('529#k'), { headers: { authorization: 'Bearer sk-wrong' } });
    const s = await simStats(sim);
    assert.equal(s.hits['healthy#k'], 2);
    assert.equal(s.x_api_key['healthy#k'], 'sk-ant-2');
    assert.equal(s.anthropic_version['healthy#k'], '2023-06-01');
    assert.equal(s.auth['healthy#k'], '');
    assert.equal(s.x_api_key['529#k'], '');
    assert.equal(s.auth['529#k'], 'Bearer sk-wrong');
    assert.equal(s.hits['529#k'], 1);
  });
});
