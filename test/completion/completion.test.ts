/** completion:* and conversation:* through the socket of a real daemon, against the mock Messages API. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { cancelledEvent, errorEvent, resultEvent, startedEvent, tokenEvent } from '../../plugins/completion/schemas.js';
import { codeOf, collect, errorOf, SECRET_KEY, testConfig, waitFor } from './helpers.js';
import type { EventFrame } from '../../client/protocol.js';

let api: MessagesApiServer;
let d: DaemonHandle;
let events: EventFrame[];

beforeAll(async () => {
  api = await startMessagesApiServer();
  d = await startDaemon({
    readyTimeoutMs: 90_000,
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: SECRET_KEY },
    config: testConfig({ completion: { max_concurrency: 4, token_flush_ms: 30, max_tokens_limit: 64000 } }),
  });
  events = await collect(d.client, ['completion:*', 'budget:*']);
}, 120_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

beforeEach(() => {
  api.reset();
  events.length = 0;
});

const req = (data: Record<string, unknown>, timeoutMs = 15_000) =>
  d.client.request('completion:request', data, { timeoutMs });
const of = (name: string, id: string) => events.filter((e) => e.event === name && e.data.request_id === id);

describe('completion:request and completion:async', () => {
  it('returns the full result and records it for completion:status', async () => {
    api.enqueue({
      text: 'four',
      usage: {
        input_tokens: 1000,
        output_tokens: 500,
        cache_read_input_tokens: 2000,
        cache_creation_input_tokens: 100,
      },
    });
    const r = await req({ prompt: 'two plus two?', request_id: 'mine-1', system: 'be brief', max_tokens: 1000 });
    expect(r).toMatchObject({
      request_id: 'mine-1',
      session_id: null,
      agent_id: null,
      text: 'four',
      stop_reason: 'end_turn',
      model: 'test-model',
      attempt: 1,
      content: [{ type: 'text', text: 'four' }],
      usage: {
        input_tokens: 1000,
        output_tokens: 500,
        cache_read_input_tokens: 2000,
        cache_creation_input_tokens: 100,
      },
    });
    // $1/MTok in, $2 out, cache write 1.25x, cache read 0.1x
    expect(r.cost_usd).toBeCloseTo((1000 * 1 + 500 * 2 + 2000 * 0.1 + 100 * 1.25) / 1e6, 12);
    expect(typeof r.duration_ms).toBe('number');
    const sent = api.messageRequests()[0]!.body;
    expect(sent).toMatchObject({
      model: 'test-model',
      max_tokens: 1000,
      system: 'be brief',
      stream: true,
      messages: [{ role: 'user', content: 'two plus two?' }],
    });
    // Asked right away, the stored result already carries the cost (its settlement may still be pending).
    const st = await d.client.request('completion:status', { request_id: 'mine-1' });
    expect(st).toMatchObject({
      request_id: 'mine-1',
      status: 'completed',
      attempts: 1,
      result: { text: 'four', cost_usd: r.cost_usd },
    });
    await waitFor(() => of('completion:result', 'mine-1').length === 1);
    resultEvent.parse(of('completion:result', 'mine-1')[0]!.data);
    startedEvent.parse(of('completion:started', 'mine-1')[0]!.data);
  });

  it('async answers at once with position; the result comes as an event', async () => {
    api.setHandler(() => ({ text: 'later', delayMs: 150 }));
    const a = await d.client.request('completion:async', { prompt: 'x', session_id: 'async-s' });
    const b = await d.client.request('completion:async', { prompt: 'y', session_id: 'async-s' });
    expect(a).toMatchObject({ status: 'queued', position: 1 });
    expect(b).toMatchObject({ status: 'queued', position: 2 });
    expect(String(a.request_id)).toMatch(/^cmp_/);
    await waitFor(() => of('completion:result', String(b.request_id)).length === 1, 10_000, 'second result');
    expect(of('completion:result', String(a.request_id))[0]!.data.text).toBe('later');
  });

  it('the same active request joins it, a different one under its id is CONFLICT; the same finished request replays', async () => {
    api.setHandler(() => ({ text: 'slow', delayMs: 300 }));
    const before = api.messageRequests().length;
    await d.client.request('completion:async', { prompt: 'dup', request_id: 'dup-1' });
    expect(await d.client.request('completion:async', { prompt: 'dup', request_id: 'dup-1' })).toMatchObject({
      request_id: 'dup-1',
      replayed: true,
    });
    expect(await codeOf(d.client.request('completion:async', { prompt: 'not dup', request_id: 'dup-1' }))).toBe(
      'CONFLICT',
    );
    // completion:request with the id of a call in flight waits for that call's result
    expect(await req({ prompt: 'dup', request_id: 'dup-1' })).toMatchObject({ request_id: 'dup-1', text: 'slow' });
    expect(api.messageRequests().length - before).toBe(1);
    const r = await req({ prompt: 'other', request_id: 'dup-2' });
    expect(r.text).toBe('slow');
    await waitFor(
      async () => (await d.client.request('completion:status', { request_id: 'dup-1' })).status === 'completed',
    );
    const n = api.messageRequests().length;
    const again = await req({ prompt: 'dup', request_id: 'dup-1' });
    expect(again).toMatchObject({ request_id: 'dup-1', text: 'slow' });
    expect(api.messageRequests().length).toBe(n); // not run again
    expect(await codeOf(req({ prompt: 'something else', request_id: 'dup-1' }))).toBe('CONFLICT');
  });
});

describe('ordering', () => {
  it('one request at a time per session, FIFO, with the history carried over', async () => {
    api.setHandler((r) => ({ text: `re:${(r.body.messages as Array<{ content: unknown }>).length}`, delayMs: 40 }));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(
        String((await d.client.request('completion:async', { prompt: `turn ${i}`, session_id: 'fifo' })).request_id),
      );
    await waitFor(() => of('completion:result', ids[4]!).length === 1, 10_000);
    const reqs = api.messageRequests();
    expect(reqs).toHaveLength(5);
    // each call saw all previous turns: 1, 3, 5, 7, 9 messages
    expect(reqs.map((r) => (r.body.messages as unknown[]).length)).toEqual([1, 3, 5, 7, 9]);
    expect((reqs[4]!.body.messages as Array<{ content: unknown }>)[0]!.content).toBe('turn 0');
    // never overlapping: each started after the previous result
    const results = ids.map((id) => of('completion:result', id)[0]!.data.text);
    expect(results).toEqual(['re:1', 're:3', 're:5', 're:7', 're:9']);
  });

  it('different sessions run in parallel under the global limit (4)', async () => {
    let peak = 0;
    api.setHandler(() => {
      peak = Math.max(peak, api.inFlight());
      return { text: 'p', delayMs: 600 };
    });
    const ids = await Promise.all(
      Array.from({ length: 10 }, async (_, i) =>
        String((await d.client.request('completion:async', { prompt: 'par', session_id: `par-${i}` })).request_id),
      ),
    );
    await waitFor(() => ids.every((id) => of('completion:result', id).length === 1), 10_000);
    expect(peak).toBe(4); // four calls at the API at once: parallel, and never more than the limit
    const st = await d.client.request('completion:status', {});
    expect(st).toMatchObject({ queued: 0, running: 0, max_concurrency: 4 });
  });
});

describe('streaming', () => {
  it('emits coalesced completion:token events that add up to the text', async () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
    api.enqueue({ text, chunkChars: 4, eventDelayMs: 1 });
    const r = await req({ prompt: 'stream please', stream: true, request_id: 'stream-1' });
    const tokens = of('completion:token', 'stream-1');
    expect(r.text).toBe(text);
    expect(tokens.map((t) => t.data.text).join('')).toBe(text);
    expect(tokens.map((t) => t.data.index)).toEqual(tokens.map((_, i) => i));
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.length).toBeLessThan(text.length / 4 / 3); // far fewer events than deltas
    tokenEvent.parse(tokens[0]!.data);
    // all tokens arrive before the result
    const resultSeq = of('completion:result', 'stream-1')[0]!.seq;
    expect(tokens.every((t) => t.seq < resultSeq)).toBe(true);
  });

  it('no token events without stream: true', async () => {
    await req({ prompt: 'quiet', request_id: 'nostream-1' });
    expect(of('completion:token', 'nostream-1')).toHaveLength(0);
  });
});

describe('tools', () => {
  it('passes tools through and returns tool_use blocks', async () => {
    api.enqueue({
      content: [
        { type: 'text', text: 'running it' },
        { type: 'tool_use', id: 'toolu_1', name: 'sandbox_exec', input: { language: 'python', code: 'print(2+2)' } },
      ],
    });
    const tools = [
      {
        name: 'sandbox_exec',
        description: 'run code',
        input_schema: { type: 'object', properties: { language: { type: 'string' }, code: { type: 'string' } } },
      },
    ];
    const r = await req({ prompt: 'compute', session_id: 'tools-s', tools });
    expect(r.stop_reason).toBe('tool_use');
    expect((r.content as unknown[])[1]).toEqual({
      type: 'tool_use',
      id: 'toolu_1',
      name: 'sandbox_exec',
      input: { language: 'python', code: 'print(2+2)' },
    });
    expect(api.messageRequests()[0]!.body.tools).toEqual(tools);
    // the tool result continues the session
    api.enqueue({ text: 'it is 4' });
    const r2 = await req({
      session_id: 'tools-s',
      tools,
      messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '4' }] }],
    });
    expect(r2.text).toBe('it is 4');
    const sent = api.messageRequests()[1]!.body.messages as Array<{ role: string; content: unknown }>;
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect((sent[1]!.content as Array<{ type: string }>)[1]!.type).toBe('tool_use');
  });
});

describe('cancel', () => {
  it('a queued request is removed and never sent', async () => {
    api.setHandler(() => ({ text: 'first', delayMs: 300 }));
    await d.client.request('completion:async', { prompt: 'a', session_id: 'cq', request_id: 'cq-1' });
    await d.client.request('completion:async', { prompt: 'b', session_id: 'cq', request_id: 'cq-2' });
    const c = await d.client.request('completion:cancel', { request_id: 'cq-2' });
    expect(c).toMatchObject({ status: 'cancelled', was: 'queued' });
    await waitFor(() => of('completion:result', 'cq-1').length === 1);
    // The session runs in order: had the cancelled request been sent, it would have gone before this one.
    api.setHandler(() => ({ text: 'third' }));
    await d.client.request('completion:async', { prompt: 'c', session_id: 'cq', request_id: 'cq-3' });
    await waitFor(() => of('completion:result', 'cq-3').length === 1);
    expect(api.messageRequests()).toHaveLength(2);
    expect((await d.client.request('completion:status', { request_id: 'cq-2' })).status).toBe('cancelled');
    cancelledEvent.parse(of('completion:cancelled', 'cq-2')[0]!.data);
    expect(await codeOf(d.client.request('completion:cancel', { request_id: 'cq-2' }))).toBe('CONFLICT');
    expect(await codeOf(d.client.request('completion:cancel', { request_id: 'cq-1' }))).toBe('CONFLICT');
    expect(await codeOf(d.client.request('completion:cancel', { request_id: 'nobody' }))).toBe('NOT_FOUND');
  });

  it('a running request is aborted at the HTTP level and its reservation released', async () => {
    api.enqueue({ kind: 'hang' });
    const waiting = errorOf(req({ prompt: 'hang', request_id: 'cr-1', max_tokens: 1000 }));
    await waitFor(() => api.inFlight() === 1, 5000, 'call in flight');
    const reserved = (await d.client.request('budget:status', {})) as { scopes: Array<{ reserved_usd: number }> };
    expect(reserved.scopes[0]!.reserved_usd).toBeGreaterThan(0);
    const c = await d.client.request('completion:cancel', { request_id: 'cr-1' });
    expect(c).toMatchObject({ status: 'cancelled', was: 'running' });
    expect((await waiting).code).toBe('CANCELLED');
    await waitFor(() => api.inFlight() === 0, 2000, 'server saw the abort');
    const after = (await d.client.request('budget:status', {})) as { scopes: Array<{ reserved_usd: number }> };
    expect(after.scopes[0]!.reserved_usd).toBe(0);
    const ledger = (await d.client.request<Record<string, unknown>>('budget:ledger', { request_id: 'cr-1' })) as {
      entries: Array<{ kind: string; reason: string }>;
    };
    expect(ledger.entries.map((e) => e.kind)).toEqual(['release', 'reserve']);
    expect(of('completion:cancelled', 'cr-1')[0]!.data.was).toBe('running');
  });
});

describe('provider errors (the SDK retries; agentd adds no loop)', () => {
  it('429 with retry-after is retried by the SDK and succeeds', async () => {
    api.enqueue({ kind: 'error', status: 429, retryAfter: 0 }, { text: 'ok after 429' });
    const r = await req({ prompt: 'rl' });
    expect(r.text).toBe('ok after 429');
    expect(api.messageRequests()).toHaveLength(2);
  });

  it.each([
    [529, 'OVERLOADED', true],
    [500, 'UNAVAILABLE', true],
    [400, 'INVALID_DATA', false],
  ] as const)('%i beyond the retries fails as %s', async (status, code, retryable) => {
    api.setHandler(() => ({ kind: 'error', status, retryAfterMs: 1 }));
    const e = await errorOf(req({ prompt: `err ${status}`, request_id: `err-${status}` }));
    expect(e.code).toBe(code);
    // max_retries: 1 → 2 attempts for retryable statuses, 1 for 400
    expect(api.messageRequests()).toHaveLength(status === 400 ? 1 : 2);
    await waitFor(() => of('completion:error', `err-${status}`).length === 1);
    const ev = errorEvent.parse(of('completion:error', `err-${status}`)[0]!.data);
    expect(ev.error).toMatchObject({ code, retryable });
    const st = await d.client.request('completion:status', { request_id: `err-${status}` });
    expect(st).toMatchObject({ status: 'failed', error: { code } });
  });

  it('a failed request asked again with the same request_id runs again as the next attempt', async () => {
    api.enqueue({ kind: 'error', status: 400, message: 'bad thing' });
    expect(await codeOf(req({ prompt: 'again', request_id: 'again-1' }))).toBe('INVALID_DATA');
    const r = await req({ prompt: 'again', request_id: 'again-1' });
    expect(r).toMatchObject({ text: 'echo: again', attempt: 2 });
    const led = (await d.client.request<Record<string, unknown>>('budget:ledger', { request_id: 'again-1' })) as {
      entries: Array<{ kind: string; attempt: number }>;
    };
    expect(led.entries.map((e) => [e.kind, e.attempt])).toEqual([
      ['commit', 2],
      ['reserve', 2],
      ['release', 1],
      ['reserve', 1],
    ]);
  });

  it('a connection dropped mid-stream fails UNAVAILABLE and bills what was started', async () => {
    api.enqueue({ text: 'x'.repeat(400), dropAfterEvents: 5, eventDelayMs: 2, usage: { input_tokens: 50 } });
    const e = await errorOf(req({ prompt: 'drop', request_id: 'drop-1', max_tokens: 1000 }));
    expect(e.code).toBe('UNAVAILABLE');
    const ledger = (await d.client.request<Record<string, unknown>>('budget:ledger', { request_id: 'drop-1' })) as {
      entries: Array<{ kind: string; estimated: boolean; input_tokens: number }>;
    };
    expect(ledger.entries[0]).toMatchObject({ kind: 'commit', estimated: true, input_tokens: 50 });
  });

  it('a slow API is waited for (no client-side cut below the SDK timeout)', async () => {
    api.enqueue({ text: 'slow but fine', delayMs: 1500 });
    expect((await req({ prompt: 'slow' })).text).toBe('slow but fine');
  });
});

describe('conversations', () => {
  it('list, get, export (markdown, json), delete', async () => {
    await req({ prompt: 'hello convo', session_id: 'conv-1', agent_id: 'ag-1', system: 'You are terse.' });
    await req({ prompt: 'and again', session_id: 'conv-1', agent_id: 'ag-1' });
    const list = (await d.client.request('conversation:list', { agent_id: 'ag-1' })) as {
      conversations: Array<Record<string, unknown>>;
    };
    expect(list.conversations).toHaveLength(1);
    expect(list.conversations[0]).toMatchObject({
      session_id: 'conv-1',
      turns: 2,
      model: 'test-model',
      system: 'You are terse.',
    });
    const got = (await d.client.request<Record<string, unknown>>('conversation:get', { session_id: 'conv-1' })) as {
      messages: Array<{ role: string; content: unknown }>;
    };
    expect(got.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(got.messages[1]!.content).toEqual([{ type: 'text', text: 'echo: hello convo' }]);
    const md = await d.client.request('conversation:export', { session_id: 'conv-1', format: 'markdown' });
    expect(md.content).toContain('# Conversation conv-1');
    expect(md.content).toContain('echo: and again');
    const js = await d.client.request('conversation:export', { session_id: 'conv-1', format: 'json' });
    expect(JSON.parse(String(js.content)).messages).toHaveLength(4);
    await d.client.request('conversation:get', { session_id: 'conv-1' });
    api.setHandler(() => ({ text: 'busy', delayMs: 300 }));
    await d.client.request('completion:async', { prompt: 'busy now', session_id: 'conv-1', request_id: 'conv-busy' });
    expect(await codeOf(d.client.request('conversation:delete', { session_id: 'conv-1' }))).toBe('CONFLICT');
    await waitFor(
      async () => (await d.client.request('completion:status', { request_id: 'conv-busy' })).status === 'completed',
    );
    expect(await d.client.request('conversation:delete', { session_id: 'conv-1' })).toMatchObject({ deleted: true });
    expect(await codeOf(d.client.request('conversation:get', { session_id: 'conv-1' }))).toBe('NOT_FOUND');
    expect(await codeOf(d.client.request('conversation:delete', { session_id: 'conv-1' }))).toBe('NOT_FOUND');
    expect(await codeOf(d.client.request('conversation:export', { session_id: 'nope', format: 'json' }))).toBe(
      'NOT_FOUND',
    );
  });
});

describe('bad input: a typed error and nothing changed', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['no prompt and no messages', {}, 'INVALID_DATA'],
    ['empty prompt', { prompt: '' }, 'INVALID_DATA'],
    ['blank prompt', { prompt: '   ' }, 'INVALID_DATA'],
    ['both prompt and messages', { prompt: 'a', messages: [{ role: 'user', content: 'b' }] }, 'INVALID_DATA'],
    ['empty messages', { messages: [] }, 'INVALID_DATA'],
    ['messages not a list', { messages: 'hi' }, 'INVALID_DATA'],
    ['bad role', { messages: [{ role: 'system', content: 'x' }] }, 'INVALID_DATA'],
    ['empty content', { messages: [{ role: 'user', content: '' }] }, 'INVALID_DATA'],
    ['content blocks without type', { messages: [{ role: 'user', content: [{ text: 'x' }] }] }, 'INVALID_DATA'],
    ['first message from the assistant', { messages: [{ role: 'assistant', content: 'x' }] }, 'INVALID_DATA'],
    ['negative max_tokens', { prompt: 'a', max_tokens: -5 }, 'INVALID_DATA'],
    ['zero max_tokens', { prompt: 'a', max_tokens: 0 }, 'INVALID_DATA'],
    ['fractional max_tokens', { prompt: 'a', max_tokens: 1.5 }, 'INVALID_DATA'],
    ['huge max_tokens', { prompt: 'a', max_tokens: 5_000_000 }, 'INVALID_DATA'],
    ['max_tokens as a string', { prompt: 'a', max_tokens: '100' }, 'INVALID_DATA'],
    ['unknown (unpriced) model', { prompt: 'a', model: 'gpt-nope' }, 'INVALID_DATA'],
    ['bad request_id', { prompt: 'a', request_id: 'has space' }, 'INVALID_DATA'],
    ['stream not a boolean', { prompt: 'a', stream: 'yes' }, 'INVALID_DATA'],
  ];
  it.each(cases)('%s', async (_name, data, code) => {
    const before = await d.client.request('completion:status', {});
    for (const ev of ['completion:request', 'completion:async']) {
      expect(await codeOf(d.client.request(ev, data))).toBe(code);
    }
    expect(api.messageRequests()).toHaveLength(0);
    expect(await d.client.request('completion:status', {})).toEqual(before);
  });

  it('the unknown-model error says how to price it', async () => {
    const e = await errorOf(req({ prompt: 'a', model: 'gpt-nope' }));
    expect(e.message).toMatch(/budget\.prices/);
  });

  it('unknown request ids are NOT_FOUND', async () => {
    expect(await codeOf(d.client.request('completion:status', { request_id: 'never-seen' }))).toBe('NOT_FOUND');
    expect(await codeOf(d.client.request('completion:cancel', { request_id: 'never-seen' }))).toBe('NOT_FOUND');
    expect(await codeOf(d.client.request('conversation:get', { session_id: 'never-seen' }))).toBe('NOT_FOUND');
  });
});

describe('secrets', () => {
  it('the API key never appears in the daemon output or any answer', async () => {
    const st = await d.client.request('completion:status', {});
    const health = await d.client.request('system:health', {});
    expect(JSON.stringify([st, health])).not.toContain(SECRET_KEY);
    expect(d.output()).not.toContain(SECRET_KEY);
  });
});
