// sim.test.mjs - keel sim's answers, talked to directly: the `+sse` modifier streams whatever
// the request asked; the non-stream answer has OpenAI's keys in OpenAI's order; and the stream
// of each behaviour (healthy, tools, rich, refusal, unicode), joined by this file's own
// assembler, gives the non-stream answer back byte for byte. keel's own assembler is tested
// elsewhere; here the sim, its fixture, is.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { chat, sseData, startSim, stop } from './lib.mjs';

let sim;

before(async () => {
  sim = await startSim();
});

after(async () => {
  await stop(sim);
});

// POSTs body to the sim and resolves to {status, type, text} when the answer ends, the
// connection drops (dropped: true), or `until(text)` holds (the rest is not waited for).
function ask(body, until = () => false) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    const timer = setTimeout(() => req.destroy(new Error('no answer within 10 s')), 10000);
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      const done = (dropped) => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, type: res.headers['content-type'], text, dropped });
      };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
        if (until(text)) {
          req.destroy();
          done(false);
        }
      });
      res.on('end', () => done(false));
      res.on('aborted', () => done(true));
      res.on('error', () => done(true));
    });
    req.end(JSON.stringify(body));
  });
}

const events = (n) => (text) => sseData(text).length >= n;
const USAGE = { stream_options: { include_usage: true } };

// Joins a stream's chunks into the chat.completion they stand for, keys in OpenAI's order: what
// keel's event pipeline is to do for a client that asked for no stream.
function assemble(text) {
  let head = null;
  let usage;
  let fingerprint;
  const choices = [];
  for (const d of sseData(text)) {
    if (d === '[DONE]') continue;
    const j = JSON.parse(d);
    head ??= { id: j.id, object: 'chat.completion', created: j.created, model: j.model };
    if (j.system_fingerprint !== undefined) fingerprint = j.system_fingerprint;
    if (j.usage) usage = j.usage;
    for (const c of j.choices) {
      const s = (choices[c.index] ??= { content: null, reasoning: null, refusal: null, calls: [], logprobs: null });
      const delta = c.delta;
      if (typeof delta.content === 'string') s.content = (s.content ?? '') + delta.content;
      if (typeof delta.reasoning_content === 'string') s.reasoning = (s.reasoning ?? '') + delta.reasoning_content;
      if (typeof delta.refusal === 'string') s.refusal = (s.refusal ?? '') + delta.refusal;
      for (const t of delta.tool_calls || []) {
        const call = (s.calls[t.index] ??= { id: '', type: '', name: '', args: '' });
        if (t.id) call.id = t.id;
        if (t.type) call.type = t.type;
        if (t.function?.name) call.name = t.function.name;
        call.args += t.function?.arguments ?? '';
      }
      if (c.logprobs) {
        s.logprobs ??= { content: [], refusal: null };
        s.logprobs.content.push(...c.logprobs.content);
      }
      if (c.finish_reason) s.finish = c.finish_reason;
    }
  }
  const out = {
    ...head,
    choices: choices.map((s, index) => ({
      index,
      message: {
        role: 'assistant',
        content: s.content,
        ...(s.reasoning !== null ? { reasoning_content: s.reasoning } : {}),
        refusal: s.refusal,
        ...(s.calls.length > 0
          ? { tool_calls: s.calls.map((k) => ({ id: k.id, type: k.type, function: { name: k.name, arguments: k.args } })) }
          : {}),
      },
      logprobs: s.logprobs,
      finish_reason: s.finish,
    })),
    usage,
  };
  if (fingerprint !== undefined) out.system_fingerprint = fingerprint;
  return out;
}

// The whole answer's bytes as the sim writes them: compact JSON, non-ASCII as is, but a character
// past the BMP (the emoji) as its escaped surrogate pair.
const asWritten = (o) =>
  JSON.stringify(o).replace(/[\u{10000}-\u{10ffff}]/gu, (c) =>
    `\\u${c.charCodeAt(0).toString(16)}\\u${c.charCodeAt(1).toString(16)}`);

async function both(model, extra = {}) {
  const whole = await ask(chat(model, extra));
  const stream = await ask(chat(model, { ...extra, stream: true, ...USAGE }));
  assert.equal(whole.status, 200, whole.text);
  assert.equal(whole.type, 'application/json');
  assert.equal(stream.status, 200, stream.text);
  assert.equal(stream.type, 'text/event-stream');
  assert.equal(sseData(stream.text).at(-1), '[DONE]');
  return { whole: whole.text, json: JSON.parse(whole.text), stream: stream.text };
}

const MESSAGE_KEYS = ['role', 'content', 'refusal'];
const CHOICE_KEYS = ['index', 'message', 'logprobs', 'finish_reason'];
const TOP_KEYS = ['id', 'object', 'created', 'model', 'choices', 'usage'];

describe('+sse: a stream whatever the request asked', () => {
  for (const model of ['healthy+sse', 'healthy+sse#b', 'error-after-content+sse']) {
    test(`${model}: stream: false gets the very bytes stream: true gets`, async () => {
      const asked = await ask(chat(model, { stream: false }));
      const unasked = await ask(chat(model));
      const streamed = await ask(chat(model, { stream: true }));
      for (const r of [asked, unasked]) {
        assert.equal(r.status, 200);
        assert.equal(r.type, 'text/event-stream');
        assert.equal(r.text, streamed.text);
      }
      assert.equal(JSON.parse(sseData(asked.text)[0]).choices[0].delta.role, 'assistant');
    });
  }

  test('healthy+sse: the usage chunk only with stream_options.include_usage', async () => {
    const plain = sseData((await ask(chat('healthy+sse', { stream: false }))).text);
    const counted = sseData((await ask(chat('healthy+sse', { stream: false, ...USAGE }))).text);
    assert.ok(plain.every((d) => d === '[DONE]' || JSON.parse(d).usage === undefined));
    assert.equal(counted.length, plain.length + 1);
    assert.deepEqual(JSON.parse(counted.at(-2)), {
      id: 'chatcmpl-sim', object: 'chat.completion.chunk', created: 0, model: 'healthy+sse', choices: [],
      usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
    });
  });

  test('reset-mid-stream+sse: two tokens as events, then the connection drops', async () => {
    const r = await ask(chat('reset-mid-stream+sse', { stream: false }));
    assert.equal(r.type, 'text/event-stream');
    assert.equal(r.dropped, true);
    assert.deepEqual(sseData(r.text).map((d) => JSON.parse(d).choices[0].delta.content), [undefined, 'Hello', ' from']);
  });

  test('stall-after:2+sse: two tokens as events, then silence', async () => {
    const r = await ask(chat('stall-after:2+sse', { stream: false }), events(3));
    assert.equal(r.type, 'text/event-stream');
    assert.deepEqual(sseData(r.text).map((d) => JSON.parse(d).choices[0].delta.content), [undefined, 'Hello', ' from']);
  });

  test('heartbeat-only:50+sse: SSE keep-alive comments, not the non-stream spaces', async () => {
    const r = await ask(chat('heartbeat-only:50+sse', { stream: false }), (t) => t.split(': keep-alive').length > 3);
    assert.equal(r.type, 'text/event-stream');
    assert.match(r.text, /^: connected\n\n/);
  });
});

describe('the non-stream answer: OpenAI keys in OpenAI order', () => {
  test('healthy', async () => {
    const r = await ask(chat('healthy'));
    assert.equal(
      r.text,
      '{"id":"chatcmpl-sim","object":"chat.completion","created":0,"model":"healthy","choices":[{"index":0,' +
        '"message":{"role":"assistant","content":"Hello from the keel simulator.","refusal":null},' +
        '"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}',
    );
  });

  test('echo: the content is still the request body as received', async () => {
    const body = '{"model":"echo","messages":[{"role":"user","content":"q\\"é\\n"}]}';
    const r = await new Promise((resolve, reject) => {
      const req = http.request(`${sim.url}/v1/chat/completions`, { method: 'POST' }, (res) => {
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (t += d));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.end(body);
    });
    const j = JSON.parse(r);
    assert.deepEqual(Object.keys(j.choices[0].message), MESSAGE_KEYS);
    assert.equal(j.choices[0].message.content, body);
  });

  test('tools: content null, two tool calls, finish_reason tool_calls', async () => {
    const j = JSON.parse((await ask(chat('tools'))).text);
    assert.deepEqual(Object.keys(j), TOP_KEYS);
    assert.deepEqual(Object.keys(j.choices[0]), CHOICE_KEYS);
    assert.deepEqual(j.choices[0].message, {
      role: 'assistant',
      content: null,
      refusal: null,
      tool_calls: [
        { id: 'call_sim_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' } },
        { id: 'call_sim_2', type: 'function', function: { name: 'get_time', arguments: '{"tz":"Europe/Paris"}' } },
      ],
    });
    assert.deepEqual(Object.keys(j.choices[0].message), [...MESSAGE_KEYS, 'tool_calls']);
    assert.equal(j.choices[0].finish_reason, 'tool_calls');
    assert.equal(j.choices[0].logprobs, null);
  });

  test('refusal: content null, the refusal, finish_reason stop', async () => {
    const j = JSON.parse((await ask(chat('refusal'))).text);
    assert.deepEqual(Object.keys(j), TOP_KEYS);
    assert.deepEqual(j.choices[0].message, { role: 'assistant', content: null, refusal: "I can't help with that." });
    assert.equal(j.choices[0].finish_reason, 'stop');
  });

  test('unicode: the content, the emoji written as an escaped surrogate pair', async () => {
    const r = await ask(chat('unicode'));
    const j = JSON.parse(r.text);
    assert.equal(j.choices[0].message.content, 'héllo 😀 "quoted"\n');
    assert.ok(r.text.includes('"content":"héllo \\ud83d\\ude00 \\"quoted\\"\\n"'), r.text);
  });

  test('rich: one choice by default, reasoning after content, fingerprint last, no logprobs', async () => {
    const j = JSON.parse((await ask(chat('rich'))).text);
    assert.deepEqual(Object.keys(j), [...TOP_KEYS, 'system_fingerprint']);
    assert.equal(j.system_fingerprint, 'fp_sim');
    assert.equal(j.choices.length, 1);
    assert.deepEqual(Object.keys(j.choices[0].message), ['role', 'content', 'reasoning_content', 'refusal']);
    assert.deepEqual(j.choices[0].message, {
      role: 'assistant', content: 'Hello from the keel simulator.', reasoning_content: 'Thinking it over.', refusal: null,
    });
    assert.equal(j.choices[0].logprobs, null);
    assert.deepEqual(j.usage, { prompt_tokens: 5, completion_tokens: 8, total_tokens: 13 });
  });

  test('rich: n choices (at most 4), logprobs per content token', async () => {
    const j = JSON.parse((await ask(chat('rich', { n: 3, logprobs: true }))).text);
    assert.deepEqual(j.choices.map((c) => c.message.content), [
      'Hello from the keel simulator.', 'Hello from the keel simulator. (2)', 'Hello from the keel simulator. (3)',
    ]);
    for (const c of j.choices) {
      assert.equal(c.logprobs.refusal, null);
      assert.equal(c.logprobs.content.map((e) => e.token).join(''), c.message.content);
      for (const e of c.logprobs.content) {
        assert.deepEqual(Object.keys(e), ['token', 'logprob', 'bytes', 'top_logprobs']);
        assert.deepEqual(e.bytes, [...Buffer.from(e.token)]);
        assert.equal(e.logprob, -0.5);
        assert.deepEqual(e.top_logprobs, []);
      }
    }
    assert.equal(j.usage.completion_tokens, 3 * 8 + 2);
    assert.equal(JSON.parse((await ask(chat('rich', { n: 9 }))).text).choices.length, 4);
  });
});

describe('a stream joins into its non-stream answer, byte for byte', () => {
  for (const [model, extra] of [
    ['healthy', {}],
    ['tools', {}],
    ['refusal', {}],
    ['unicode', {}],
    ['rich', {}],
    ['rich', { n: 4, logprobs: true }],
  ]) {
    test(`${model} ${JSON.stringify(extra)}`, async () => {
      const { whole, json, stream } = await both(model, extra);
      const joined = assemble(stream);
      assert.deepEqual(joined, json);
      assert.equal(asWritten(joined), whole);
    });
  }

  test('tools: the first chunk opens the first call, fragments cut mid-token and interleaved', async () => {
    const { stream } = await both('tools');
    const chunks = sseData(stream).slice(0, -2).map((d) => JSON.parse(d)); // without usage, [DONE]
    assert.deepEqual(chunks[0].choices[0].delta, {
      role: 'assistant', content: null,
      tool_calls: [{ index: 0, id: 'call_sim_1', type: 'function', function: { name: 'get_weather', arguments: '' } }],
    });
    const order = chunks.slice(1, -1).map((c) => c.choices[0].delta.tool_calls[0].index);
    assert.ok(order.includes(1) && order.lastIndexOf(0) > order.indexOf(1), `calls not interleaved: ${order}`);
    for (const c of chunks) {
      assert.deepEqual(Object.keys(c), ['id', 'object', 'created', 'model', 'choices']);
      assert.deepEqual(Object.keys(c.choices[0]), ['index', 'delta', 'logprobs', 'finish_reason']);
    }
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
    assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
  });

  test('rich: choices take turns, logprobs on each content chunk, fingerprint on every chunk', async () => {
    const { stream } = await both('rich', { n: 2, logprobs: true });
    const chunks = sseData(stream).slice(0, -1).map((d) => JSON.parse(d));
    assert.ok(chunks.every((c) => Object.keys(c)[4] === 'system_fingerprint' && c.system_fingerprint === 'fp_sim'));
    const content = chunks.filter((c) => typeof c.choices[0]?.delta.content === 'string');
    assert.deepEqual(content.slice(0, 4).map((c) => c.choices[0].index), [0, 1, 0, 1]);
    for (const c of content) {
      assert.deepEqual(c.choices[0].logprobs.content.map((e) => e.token), [c.choices[0].delta.content]);
    }
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 5, completion_tokens: 17, total_tokens: 22 });
  });

  test('unicode: the surrogate pair whole in one chunk, escapes at a chunk\'s start and end', async () => {
    const { stream } = await both('unicode');
    assert.match(stream, /"content":"h\u00e9llo "/, stream);
    assert.match(stream, /"content":"\\ud83d\\ude00 \\"quoted\\""/, stream);
  });
});
