// continuation.test.mjs - a stream that breaks after the commit point is finished on the next
// target that declares `continuation: prefill`: the text already relayed goes to it as the
// assistant's prefill, and only its continuation reaches the client, in the same stream. The
// client reads the whole answer exactly once and a normal end. A cut inside a tool call, a
// rejected prefill or no capable target left gives the clean error event; a target without the
// declaration never receives a prefill. Real keel, keel sim (its `prefill` behaviour answers
// only the rest of its canned text), and the official openai and @anthropic-ai/sdk clients.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import fs from 'node:fs';
import path from 'node:path';
import { eventually, post, sseData, startKeel, startSim, stop, streamedText, tmpdir } from './lib.mjs';

let sim;
let keel;
let openai;
let claude;
const auditFile = path.join(tmpdir(), 'audit.jsonl');

before(async () => {
  sim = await startSim();
  keel = await startKeel(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
audit_log: ${auditFile}
defaults: { timeouts: { first_byte: 2s, stall: 500ms, total: 20s } }
upstreams:
  - { name: a, base_url: "{SIM}" }
  - { name: b, base_url: "{SIM}" }
  - { name: c, base_url: "{SIM}" }
  - { name: claude, kind: anthropic, base_url: "{SIM}", api_key: sk-ant-test }
models:
  - name: cut
    targets:
      - { upstream: a, model: "cut-after:40#cut" }
      - { upstream: b, model: "healthy#cut-plain" }
      - { upstream: c, model: "prefill#cut-b", continuation: prefill }
  - name: stall
    targets:
      - { upstream: a, model: "stall-after:20#stall" }
      - { upstream: c, model: "prefill#stall-b", continuation: prefill }
  - name: reset
    targets:
      - { upstream: a, model: "reset-mid-stream#reset" }
      - { upstream: c, model: "prefill#reset-b", continuation: prefill }
  - name: err
    targets:
      - { upstream: a, model: "error-after-content#err" }
      - { upstream: c, model: "prefill#err-b", continuation: prefill }
  - name: rejected
    targets:
      - { upstream: a, model: "cut-after:40#rej" }
      - { upstream: c, model: "prefill-reject#rej-b", continuation: prefill }
      - { upstream: b, model: "prefill#rej-c", continuation: prefill }
  - name: undeclared
    targets:
      - { upstream: a, model: "cut-after:40#und" }
      - { upstream: b, model: "prefill#und-b" }
  - name: tool
    targets:
      - { upstream: a, model: "cut-in-tool#tool" }
      - { upstream: c, model: "prefill#tool-b", continuation: prefill }
  - name: down-then
    targets:
      - { upstream: a, model: "cut-after:40#dt" }
      - { upstream: b, model: "503#dt-b", continuation: prefill }
      - { upstream: c, model: "prefill#dt-c", continuation: prefill }
  - name: to-claude
    targets:
      - { upstream: a, model: "cut-after:40#tc" }
      - { upstream: claude, model: "prefill#tc-b", continuation: prefill }
  - name: vllm
    targets:
      - { upstream: a, model: "cut-after:40#v" }
      - upstream: c
        model: "prefill:vllm#v-b"
        continuation: prefill
        continuation_body: { continue_final_message: true, add_generation_prompt: false }
  - name: from-claude
    targets:
      - { upstream: claude, model: "cut-after:40#fc" }
      - { upstream: c, model: "prefill#fc-b", continuation: prefill }
`, sim);
  openai = new OpenAI({ baseURL: `${keel.url}/v1`, apiKey: 'sk-client', maxRetries: 0, timeout: 20000 });
  claude = new Anthropic({ baseURL: keel.url, apiKey: 'sk-client', maxRetries: 0, timeout: 20000 });
});

after(async () => {
  await stop(keel);
  await stop(sim);
});

const WORDS = ['Hello', ' from', ' the', ' keel', ' simulator.'];
const canned = (n) => Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]).join('');
const FULL = canned(60); // the sim's healthy answer for max_tokens 60
const ask = (model, extra = {}) => ({ model, max_tokens: 60, stream: true, messages: [{ role: 'user', content: 'hi' }], ...extra });

async function stats() {
  return (await fetch(`${sim.url}/sim/stats`)).json();
}
const hitsOf = (s, name) => s.hits[name] ?? 0;
const prefillsOf = (s, name) => s.prefills?.[name] ?? 0;
const reset = () => fetch(`${sim.url}/sim/reset`, { method: 'POST' });

function audit(id) {
  const lines = fs.existsSync(auditFile) ? fs.readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean) : [];
  return lines.map((l) => JSON.parse(l)).filter((r) => r.id === id)[0];
}

// the last error event of an OpenAI stream, null when it ended with [DONE]
function streamError(text) {
  const data = sseData(text);
  if (data.at(-1) === '[DONE]') return null;
  return JSON.parse(data.at(-1)).error;
}

describe('an OpenAI chat stream broken after content is finished on a prefill-capable target', () => {
  beforeEach(reset);

  test('cut after 40 of 60 tokens: the whole text exactly once, a normal end, the continuation named', async () => {
    const r = await post(keel, ask('cut', { stream_options: { include_usage: true } }));
    assert.equal(r.status, 200);
    assert.equal(streamedText(r.text), FULL);
    assert.equal(sseData(r.text).at(-1), '[DONE]');
    const chunks = sseData(r.text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
    assert.ok(chunks.every((c) => c.id === chunks[0].id), 'one stream, one id');
    assert.ok(chunks.some((c) => c.model === 'cut-after:40#cut') && chunks.some((c) => c.model === 'prefill#cut-b'),
      'each chunk names the model that wrote it');
    assert.equal(chunks.filter((c) => c.choices?.[0]?.finish_reason).length, 1);
    assert.equal(chunks.filter((c) => c.choices?.[0]?.delta?.role).length, 1, 'one role, at the start');
    assert.ok(chunks.at(-1).usage?.completion_tokens > 0, 'the answer ends with the continuation\'s usage');
    assert.match(r.text, /^: keel continues the answer on c\/prefill#cut-b after a\/cut-after:40#cut: reset \(\d+ bytes prefilled\)$/m);
    const s = await stats();
    assert.equal(hitsOf(s, 'healthy#cut-plain'), 0, 'the target without the declaration is passed over');
    assert.equal(prefillsOf(s, 'healthy#cut-plain'), 0);
    assert.equal(prefillsOf(s, 'prefill#cut-b'), 1);
    assert.equal(s.last_prefill['prefill#cut-b'], canned(40));
    const rec = await eventually(() => audit(r.headers.get('x-keel-request-id')));
    assert.equal(rec.continued, true);
    assert.equal(rec.class, 'ok');
    assert.deepEqual(rec.attempts.map((a) => [a.upstream, a.class]), [['a', 'reset'], ['c', 'ok']]);
  });

  test('through the openai SDK: the stream reads as one answer', async () => {
    const stream = openai.chat.completions.stream(ask('cut'));
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    const final = await stream.finalChatCompletion();
    assert.equal(text, FULL);
    assert.equal(final.choices[0].message.content, FULL);
    assert.equal(final.choices[0].finish_reason, 'stop');
  });

  for (const [model, cls, b] of [['stall', 'stall_timeout', 'prefill#stall-b'], ['reset', 'reset', 'prefill#reset-b'],
    ['err', 'stream_error', 'prefill#err-b']]) {
    test(`${cls} after content: finished on the backup, exactly once`, async () => {
      const r = await post(keel, ask(model));
      assert.equal(r.status, 200);
      assert.equal(streamError(r.text), null, r.text);
      const s = await stats();
      assert.equal(prefillsOf(s, b), 1);
      const relayed = s.last_prefill[b];
      assert.ok(relayed.length > 0 && FULL.startsWith(relayed), relayed);
      assert.equal(streamedText(r.text), FULL);
      const rec = await eventually(() => audit(r.headers.get('x-keel-request-id')));
      assert.equal(rec.attempts[0].class, cls);
      assert.equal(rec.continued, true);
    });
  }

  test('a backup that failed before content is passed for the next capable one', async () => {
    const r = await post(keel, ask('down-then'));
    assert.equal(streamedText(r.text), FULL);
    const rec = await eventually(() => audit(r.headers.get('x-keel-request-id')));
    assert.deepEqual(rec.attempts.map((a) => a.class), ['reset', 'server_error', 'ok']);
  });

  test('an Anthropic backup continues with its native prefill', async () => {
    const r = await post(keel, ask('to-claude'));
    assert.equal(streamedText(r.text), FULL);
    const s = await stats();
    assert.equal(s.last_prefill['prefill#tc-b'], canned(40));
  });

  test('continuation_body carries what a vLLM server needs to continue the final message', async () => {
    const r = await post(keel, ask('vllm'));
    assert.equal(streamedText(r.text), FULL);
  });
});

describe('what no continuation may mask: the clean error event', () => {
  beforeEach(reset);

  test('a rejected prefill: the error event, no [DONE], no other target asked', async () => {
    const r = await post(keel, ask('rejected'));
    const err = streamError(r.text);
    assert.ok(err, r.text);
    assert.equal(err.code, 'reset');
    assert.match(err.message, /continuation on upstream c was refused/);
    assert.equal(streamedText(r.text), canned(40), 'the text relayed, nothing more');
    const s = await stats();
    assert.equal(prefillsOf(s, 'prefill-reject#rej-b'), 1);
    assert.equal(hitsOf(s, 'prefill#rej-c'), 0);
  });

  test('no target declares continuation: the error event, and the backup never sees a prefill', async () => {
    const r = await post(keel, ask('undeclared'));
    assert.equal(streamError(r.text)?.code, 'reset');
    const s = await stats();
    assert.equal(hitsOf(s, 'prefill#und-b'), 0);
    assert.equal(prefillsOf(s, 'prefill#und-b'), 0);
  });

  test('a cut inside a tool call\'s arguments: the error event, nobody continues it', async () => {
    const r = await post(keel, ask('tool'));
    assert.equal(streamError(r.text)?.code, 'reset');
    const s = await stats();
    assert.equal(hitsOf(s, 'prefill#tool-b'), 0);
  });

  test('a non-stream client fails over unseen: the backup answers anew, no prefill', async () => {
    const r = await post(keel, ask('stall', { stream: false }));
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).choices[0].message.content, FULL);
    const s = await stats();
    assert.equal(hitsOf(s, 'prefill#stall-b'), 1);
    assert.equal(prefillsOf(s, 'prefill#stall-b'), 0);
  });
});

describe('other client protocols', () => {
  beforeEach(reset);

  test('an Anthropic client: message_stop after the continuation, one text block', async () => {
    const stream = claude.messages.stream({ model: 'from-claude', max_tokens: 60, messages: [{ role: 'user', content: 'hi' }] });
    const final = await stream.finalMessage();
    assert.deepEqual(final.content.map((b) => b.type), ['text']);
    assert.equal(final.content[0].text, FULL);
    assert.equal(final.stop_reason, 'end_turn');
    const s = await stats();
    assert.equal(s.last_prefill['prefill#fc-b'], canned(40));
  });

  test('a Responses client: one output_text, response.completed', async () => {
    const stream = openai.responses.stream({ model: 'cut', input: 'hi', max_output_tokens: 60, store: false });
    let text = '';
    stream.on('response.output_text.delta', (e) => { text += e.delta; });
    const final = await stream.finalResponse();
    assert.equal(final.status, 'completed');
    assert.equal(text, FULL);
    const messages = final.output.filter((o) => o.type === 'message');
    assert.equal(messages.length, 1);
    assert.equal(messages[0].content[0].text, FULL, 'the final Response repeats the whole text once');
  });
});
