// sim-prefill.test.mjs - keel sim's behaviours for continuing a cut answer, talked to directly
// with fetch on both APIs: prefill (an assistant prefill honoured: only the rest of the healthy
// text), prefill:vllm, prefill-reject (each API's 400), the Messages API's refusal of a prefill
// ending in whitespace, the prefills/last_prefill and down_hits stats, down-for (an outage of a
// given length, then healthy), cut-after beyond 16 words (the healthy text's first n words, so a
// continuation can be checked against it) and cut-in-tool (a stream ending inside a call's
// arguments).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simStats, startSim, stop } from './lib.mjs';

let sim;

before(async () => {
  sim = await startSim();
});

after(async () => {
  await stop(sim);
});

const WORDS = ['Hello', ' from', ' the', ' keel', ' simulator.'];
// the healthy answer's text of n words, the one every behaviour here starts from
const healthy = (n) => Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]).join('');
const HELLO = healthy(5);

// POSTs body to the sim; resolves to {status, text, json} (json: the body parsed, if it is JSON).
async function post(path, body) {
  const r = await fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, text, json };
}

// POSTs body and reads the stream until `until(text)` holds, then leaves; resolves to the text so far.
async function readUntil(path, body, until) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 10000);
  const r = await fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: ac.signal,
  });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  try {
    while (!until(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return text;
}

const chat = (model, messages, extra = {}) => ({ model, messages, ...extra });
const msg = (model, messages, extra = {}) => ({ model, max_tokens: 5, messages, ...extra });
const USER = { role: 'user', content: 'Say hello' };
const prefilled = (content) => [USER, { role: 'assistant', content }];

// A chat stream read: its content deltas, joined text, finish reasons, tool call arguments
// (by index), usage, whether it ended with [DONE].
function chatStream(text) {
  const datas = text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
  const out = { deltas: [], text: '', finish: [], args: {}, names: {}, usage: null, done: false };
  for (const d of datas) {
    if (d === '[DONE]') {
      out.done = true;
      continue;
    }
    const j = JSON.parse(d);
    if (j.usage) out.usage = j.usage;
    for (const c of j.choices) {
      if (typeof c.delta.content === 'string') {
        out.deltas.push(c.delta.content);
        out.text += c.delta.content;
      }
      for (const t of c.delta.tool_calls || []) {
        if (t.function.name) out.names[t.index] = t.function.name;
        out.args[t.index] = (out.args[t.index] || '') + t.function.arguments;
      }
      if (c.finish_reason) out.finish.push(c.finish_reason);
    }
  }
  return out;
}

// A Messages (or Responses) stream as its events, [{event, data}] with data parsed; a last event
// not yet whole is left out.
function events(text) {
  return text
    .slice(0, text.lastIndexOf('\n\n') + 2)
    .split('\n\n')
    .filter((e) => e.length > 0)
    .map((e) => {
      const m = e.match(/^event: ([a-z_.]+)\ndata: (.*)$/);
      assert.ok(m, `not an event: ${JSON.stringify(e)}`);
      return { event: m[1], data: JSON.parse(m[2]) };
    });
}

const textDeltas = (evs) =>
  evs.filter((e) => e.event === 'content_block_delta' && e.data.delta.type === 'text_delta').map((e) => e.data.delta.text);

describe('prefill on /v1/chat/completions', () => {
  test('"Hello fr": only the rest, "om the keel simulator.", finish stop, usage as healthy', async () => {
    const r = await post('/v1/chat/completions', chat('prefill', prefilled('Hello fr')));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'om the keel simulator.');
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    assert.deepEqual(r.json.usage, { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
  });

  test('stream: the cut word\'s rest first, then the remaining words, stop, usage, [DONE]', async () => {
    const r = await post('/v1/chat/completions',
      chat('prefill', prefilled('Hello fr'), { stream: true, stream_options: { include_usage: true } }));
    assert.equal(r.status, 200);
    const s = chatStream(r.text);
    assert.deepEqual(s.deltas, ['om', ' the', ' keel', ' simulator.']);
    assert.deepEqual(s.finish, ['stop']);
    assert.equal(s.usage.completion_tokens, 4);
    assert.ok(s.done);
  });

  test('content parts are joined into the prefill; a prefill ending on a word edge goes on with the next word', async () => {
    const parts = [{ type: 'text', text: 'Hello' }, { type: 'text', text: ' from' }];
    const r = await post('/v1/chat/completions', chat('prefill', prefilled(parts), { stream: true }));
    assert.deepEqual(chatStream(r.text).deltas, [' the', ' keel', ' simulator.']);
    const whole = await post('/v1/chat/completions', chat('prefill', prefilled(parts)));
    assert.equal(whole.json.choices[0].message.content, ' the keel simulator.');
  });

  test('the whole text as prefill: nothing more to say', async () => {
    const r = await post('/v1/chat/completions', chat('prefill', prefilled(HELLO)));
    assert.equal(r.json.choices[0].message.content, '');
    const s = chatStream((await post('/v1/chat/completions', chat('prefill', prefilled(HELLO), { stream: true }))).text);
    assert.deepEqual(s.deltas, []);
    assert.deepEqual(s.finish, ['stop']);
  });

  test('a prefill that does not begin the text (or outruns it): the text whole', async () => {
    for (const p of ['Bonjour', 'Hello fx', `${HELLO} And more`]) {
      const r = await post('/v1/chat/completions', chat('prefill', prefilled(p)));
      assert.equal(r.json.choices[0].message.content, HELLO, p);
      const s = chatStream((await post('/v1/chat/completions', chat('prefill', prefilled(p), { stream: true }))).text);
      assert.deepEqual(s.deltas, WORDS, p);
    }
  });

  test('max_tokens n: the text is the healthy n words, continued after the prefill', async () => {
    const p = `${healthy(8)} ke`; // ends inside word 9 of 12, " keel"
    const r = await post('/v1/chat/completions', chat('prefill', prefilled(p), { max_tokens: 12 }));
    assert.equal(r.json.choices[0].message.content, `el${healthy(12).slice(healthy(9).length)}`);
    assert.equal(p + r.json.choices[0].message.content, healthy(12));
    const s = chatStream((await post('/v1/chat/completions', chat('prefill', prefilled(p), { max_tokens: 12, stream: true }))).text);
    assert.deepEqual(s.deltas, ['el', ' simulator.', 'Hello', ' from']);
    // max_completion_tokens, OpenAI's current name (keel's translators send it), counts first
    const mct = await post('/v1/chat/completions', chat('prefill', prefilled(p), { max_completion_tokens: 12, max_tokens: 3 }));
    assert.equal(p + mct.json.choices[0].message.content, healthy(12));
  });

  test('no trailing assistant message: exactly the healthy answer', async () => {
    for (const stream of [false, true]) {
      const body = (model) => chat(model, [USER], { stream, stream_options: stream ? { include_usage: true } : undefined });
      const a = await post('/v1/chat/completions', body('prefill'));
      const b = await post('/v1/chat/completions', body('healthy'));
      assert.equal(a.text, b.text.replaceAll('"model":"healthy"', '"model":"prefill"'), `stream ${stream}`);
    }
  });

  test('prefill:vllm continues only with continue_final_message: true and add_generation_prompt: false', async () => {
    const ask = async (extra) =>
      (await post('/v1/chat/completions', chat('prefill:vllm', prefilled('Hello fr'), extra))).json.choices[0].message.content;
    assert.equal(await ask({}), HELLO);
    assert.equal(await ask({ continue_final_message: true }), HELLO); // add_generation_prompt is true by default
    assert.equal(await ask({ add_generation_prompt: false }), HELLO);
    assert.equal(await ask({ continue_final_message: true, add_generation_prompt: false }), 'om the keel simulator.');
    const s = chatStream((await post('/v1/chat/completions',
      chat('prefill:vllm', prefilled('Hello fr'), { stream: true, continue_final_message: true, add_generation_prompt: false }))).text);
    assert.deepEqual(s.deltas, ['om', ' the', ' keel', ' simulator.']);
  });
});

describe('prefill on /v1/messages', () => {
  test('"Hello fr": only the rest, end_turn, usage as healthy', async () => {
    const r = await post('/v1/messages', msg('prefill', prefilled('Hello fr')));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.content, [{ type: 'text', text: 'om the keel simulator.' }]);
    assert.equal(r.json.stop_reason, 'end_turn');
    assert.deepEqual(r.json.usage, { input_tokens: 5, output_tokens: 4 });
  });

  test('stream: the cut word\'s rest first, then the remaining words, then a whole ending', async () => {
    const blocks = [{ type: 'text', text: 'Hel' }, { type: 'text', text: 'lo fr' }];
    const r = await post('/v1/messages', msg('prefill', prefilled(blocks), { stream: true }));
    const evs = events(r.text);
    assert.deepEqual(textDeltas(evs), ['om', ' the', ' keel', ' simulator.']);
    assert.deepEqual(evs.map((e) => e.event), ['message_start', 'ping', 'content_block_start',
      'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_delta',
      'content_block_stop', 'message_delta', 'message_stop']);
    const delta = evs.find((e) => e.event === 'message_delta').data;
    assert.equal(delta.delta.stop_reason, 'end_turn');
    assert.equal(delta.usage.output_tokens, 4);
  });

  test('max_tokens n words; a prefill not beginning them, or none: the text whole', async () => {
    const r = await post('/v1/messages', msg('prefill', prefilled(healthy(3)), { max_tokens: 7 }));
    assert.equal(r.json.content[0].text, healthy(7).slice(healthy(3).length));
    const other = await post('/v1/messages', msg('prefill', prefilled('Hi there')));
    assert.equal(other.json.content[0].text, HELLO);
    const a = await post('/v1/messages', msg('prefill', [USER]));
    const b = await post('/v1/messages', msg('healthy', [USER]));
    assert.equal(a.text, b.text.replace('"model":"healthy"', '"model":"prefill"'));
    const sa = await post('/v1/messages', msg('prefill', [USER], { stream: true }));
    const sb = await post('/v1/messages', msg('healthy', [USER], { stream: true }));
    assert.equal(sa.text, sb.text.replace('"model":"healthy"', '"model":"prefill"'));
  });
});

describe('prefill-reject', () => {
  test('chat: 400 invalid_value on messages with a trailing assistant message, else healthy', async () => {
    for (const stream of [false, true]) {
      const r = await post('/v1/chat/completions', chat('prefill-reject', prefilled('Hello'), { stream }));
      assert.equal(r.status, 400);
      assert.deepEqual(Object.keys(r.json.error), ['message', 'type', 'param', 'code']);
      assert.match(r.json.error.message, /assistant prefill is not supported/);
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(r.json.error.param, 'messages');
      assert.equal(r.json.error.code, 'invalid_value');
    }
    const ok = await post('/v1/chat/completions', chat('prefill-reject', [USER]));
    assert.equal(ok.status, 200);
    assert.equal(ok.json.choices[0].message.content, HELLO);
  });

  test('messages: 400 invalid_request_error in Anthropic\'s envelope, else healthy', async () => {
    for (const stream of [false, true]) {
      const r = await post('/v1/messages', msg('prefill-reject', prefilled('Hello'), { stream }));
      assert.equal(r.status, 400);
      assert.deepEqual(Object.keys(r.json), ['type', 'error']);
      assert.equal(r.json.type, 'error');
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.match(r.json.error.message, /assistant prefill is not supported/);
    }
    const ok = await post('/v1/messages', msg('prefill-reject', [USER], { stream: true }));
    assert.equal(ok.status, 200);
    assert.equal(textDeltas(events(ok.text)).join(''), HELLO);
  });
});

describe('/v1/messages: a final assistant message ending in whitespace', () => {
  const WHY = 'messages: final assistant content cannot end with trailing whitespace';

  test('400 for every behaviour, before it acts (even hang answers at once)', async () => {
    for (const model of ['healthy', 'prefill', 'hang', '529', 'cut-after:3', 'no-such-behaviour']) {
      for (const content of ['Hello ', 'Hello\n', [{ type: 'text', text: 'Hi' }, { type: 'text', text: 'there\t' }]]) {
        const r = await post('/v1/messages', msg(model, prefilled(content), { stream: model === 'cut-after:3' }));
        assert.equal(r.status, 400, `${model} ${JSON.stringify(content)}`);
        assert.deepEqual(r.json, { type: 'error', error: { type: 'invalid_request_error', message: WHY } });
      }
    }
  });

  test('only the final assistant content counts: its last text block, not a user message', async () => {
    const blocks = [{ type: 'text', text: 'Hi ' }, { type: 'text', text: 'Hello fr' }];
    const r = await post('/v1/messages', msg('prefill', prefilled(blocks)));
    assert.equal(r.status, 200);
    const user = await post('/v1/messages', msg('healthy', [{ role: 'user', content: 'Say hello ' }]));
    assert.equal(user.status, 200);
    const chatSide = await post('/v1/chat/completions', chat('healthy', prefilled('Hello ')));
    assert.equal(chatSide.status, 200); // an OpenAI-side rule it is not
  });
});

describe('/sim/stats', () => {
  test('prefills and last_prefill per name, "" before any; every other field kept', async () => {
    await post('/v1/chat/completions', chat('prefill#stats', prefilled('Hello')));
    await post('/v1/messages', msg('prefill#stats', prefilled([{ type: 'text', text: 'Hello fr' }])));
    await post('/v1/chat/completions', chat('prefill#stats', [USER]));
    await post('/v1/chat/completions', chat('healthy#stats', [USER]));
    const st = await simStats(sim);
    for (const k of ['hits', 'gone', 'auth', 'x_api_key', 'anthropic_version', 'anthropic_beta', 'passed', 'writes',
      'connections', 'chaos', 'seed', 'prefills', 'last_prefill', 'down_hits']) {
      assert.ok(k in st, k);
    }
    assert.equal(st.hits['prefill#stats'], 3);
    assert.equal(st.prefills['prefill#stats'], 2);
    assert.equal(st.last_prefill['prefill#stats'], 'Hello fr');
    assert.equal(st.prefills['healthy#stats'], 0);
    assert.equal(st.last_prefill['healthy#stats'], '');
    assert.equal(st.down_hits['healthy#stats'], 0);
  });
});

describe('down-for', () => {
  test('down-for:1500: the API\'s 503-class error from the first request for 1.5 s, then healthy', async () => {
    const t0 = Date.now();
    const at = (ms) => new Promise((r) => setTimeout(r, Math.max(0, t0 + ms - Date.now())));
    const round = () =>
      Promise.all([
        post('/v1/chat/completions', chat('down-for:1500', [USER])),
        post('/v1/messages', msg('down-for:1500#m', [USER], { stream: true })),
        post('/v1/responses', { model: 'down-for:1500#r', input: 'hi' }),
        post('/v1/embeddings', { model: 'down-for:1500#e', input: 'hi' }),
      ]);
    const first = await round();
    await at(500);
    const second = await round();
    await at(2000);
    const third = await round();
    for (const [c, m, r, e] of [first, second]) {
      assert.equal(c.status, 503);
      assert.equal(c.json.error.type, 'server_error');
      assert.equal(m.status, 529);
      assert.deepEqual(m.json, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
      assert.equal(r.status, 503);
      assert.equal(e.status, 503);
    }
    const [c, m, r, e] = third;
    assert.equal(c.status, 200);
    assert.equal(c.json.choices[0].message.content, HELLO);
    assert.equal(m.status, 200);
    assert.equal(textDeltas(events(m.text)).join(''), HELLO);
    assert.equal(r.status, 200);
    assert.equal(e.status, 200);
    const st = await simStats(sim);
    for (const name of ['down-for:1500', 'down-for:1500#m', 'down-for:1500#r', 'down-for:1500#e']) {
      assert.equal(st.down_hits[name], 2, name);
      assert.equal(st.hits[name], 3, name);
    }
  });
});

describe('cut-after and stall-after past 16 words', () => {
  test('chat cut-after:40, max_tokens 60: the healthy 60-word text\'s first 40 words, no finish, no [DONE]; prefill continues it', async () => {
    const r = await post('/v1/chat/completions', chat('cut-after:40', [USER], { stream: true, max_tokens: 60 }));
    const s = chatStream(r.text);
    assert.equal(s.deltas.length, 40);
    s.deltas.forEach((d, i) => assert.equal(d, WORDS[i % WORDS.length], `word ${i}`));
    assert.deepEqual(s.finish, []);
    assert.equal(s.done, false);
    // the whole text as the prefill behaviour has it, and the continuation after the cut
    const whole = await post('/v1/chat/completions', chat('prefill', [USER], { max_tokens: 60 }));
    assert.equal(whole.json.choices[0].message.content, healthy(60));
    assert.ok(healthy(60).startsWith(s.text));
    const rest = await post('/v1/chat/completions', chat('prefill', prefilled(s.text), { max_tokens: 60, stream: true }));
    const c = chatStream(rest.text);
    assert.equal(s.text + c.text, healthy(60));
    assert.deepEqual(c.finish, ['stop']);
  });

  test('chat cut-after:4000: all 4000 words', async () => {
    const s = chatStream((await post('/v1/chat/completions', chat('cut-after:4000', [USER], { stream: true }))).text);
    assert.equal(s.deltas.length, 4000);
    assert.equal(s.text, healthy(4000));
    assert.equal(s.done, false);
  });

  test('messages cut-after:40: 40 text_deltas, no content_block_stop, message_delta or message_stop; prefill continues it', async () => {
    const r = await post('/v1/messages', msg('cut-after:40', [USER], { stream: true, max_tokens: 60 }));
    const evs = events(r.text);
    const deltas = textDeltas(evs);
    assert.equal(deltas.length, 40);
    deltas.forEach((d, i) => assert.equal(d, WORDS[i % WORDS.length], `word ${i}`));
    for (const e of ['content_block_stop', 'message_delta', 'message_stop']) assert.ok(!evs.some((x) => x.event === e), e);
    const rest = await post('/v1/messages', msg('prefill', prefilled(deltas.join('')), { max_tokens: 60 }));
    assert.equal(deltas.join('') + rest.json.content[0].text, healthy(60));
  });

  test('responses cut-after:40: 40 deltas, no response.completed', async () => {
    const r = await post('/v1/responses', { model: 'cut-after:40', input: 'hi', stream: true });
    const evs = events(r.text);
    const deltas = evs.filter((e) => e.data.type === 'response.output_text.delta').map((e) => e.data.delta);
    assert.equal(deltas.join(''), healthy(40));
    assert.ok(!evs.some((e) => e.data.type === 'response.completed'));
    evs.forEach((e, i) => assert.equal(e.data.sequence_number, i));
  });

  test('stall-after:30 on both APIs: 30 words, then silence', async () => {
    const c = await readUntil('/v1/chat/completions', chat('stall-after:30', [USER], { stream: true }),
      (t) => chatStream(t.slice(0, t.lastIndexOf('\n\n') + 2)).deltas.length >= 30);
    assert.equal(chatStream(c).text, healthy(30));
    const m = await readUntil('/v1/messages', msg('stall-after:30', [USER], { stream: true }),
      (t) => (t.match(/text_delta/g) || []).length >= 30);
    assert.equal(textDeltas(events(m)).join(''), healthy(30));
  });
});

describe('cut-in-tool', () => {
  test('chat stream: text, a call whose arguments stop halfway, then a clean end without finish or [DONE]', async () => {
    const r = await post('/v1/chat/completions', chat('cut-in-tool', [USER], { stream: true }));
    assert.equal(r.status, 200);
    const s = chatStream(r.text);
    assert.equal(s.text, 'Let me check.');
    assert.deepEqual(s.names, { 0: 'get_weather' });
    assert.equal(s.args[0], '{"city":"Par');
    assert.throws(() => JSON.parse(s.args[0]));
    assert.deepEqual(s.finish, []);
    assert.equal(s.done, false);
  });

  test('messages stream: the text block, then the tool_use input cut halfway, none of the closing events', async () => {
    const r = await post('/v1/messages', msg('cut-in-tool', [USER], { stream: true }));
    assert.equal(r.status, 200);
    const evs = events(r.text);
    assert.equal(textDeltas(evs).join(''), 'Let me check.');
    const start = evs.find((e) => e.event === 'content_block_start' && e.data.index === 1).data.content_block;
    assert.equal(start.type, 'tool_use');
    assert.equal(start.name, 'get_weather');
    const input = evs.filter((e) => e.data.delta?.type === 'input_json_delta').map((e) => e.data.delta.partial_json).join('');
    assert.equal(input, '{"city":"Par');
    assert.equal(evs.at(-1).event, 'content_block_delta');
    assert.ok(!evs.some((e) => e.event === 'content_block_stop' && e.data.index === 1));
    assert.ok(!evs.some((e) => e.event === 'message_delta' || e.event === 'message_stop'));
  });

  test('non-stream: the tools answer on both APIs', async () => {
    const a = await post('/v1/chat/completions', chat('cut-in-tool', [USER]));
    const b = await post('/v1/chat/completions', chat('tools', [USER]));
    assert.equal(a.text, b.text.replace('"model":"tools"', '"model":"cut-in-tool"'));
    const c = await post('/v1/messages', msg('cut-in-tool', [USER]));
    const d = await post('/v1/messages', msg('tools', [USER]));
    assert.equal(c.text, d.text.replace('"model":"tools"', '"model":"cut-in-tool"'));
  });
});
