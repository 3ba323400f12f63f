/**
 * OpenAI-compatible providers through a real daemon: the `openai` SDK against local chat completions
 * servers (test/fixtures/openai-chat-server.ts), beside the Messages API double for Anthropic.
 * Streaming, usage, stop reasons, tool calls, errors and retries, cancel, pricing (known and not),
 * per-provider concurrency, fallbacks and what status and health say.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { startOpenAIChatServer, type OpenAIChatServer } from '../fixtures/openai-chat-server.js';
import { fallbackEvent, resultEvent, startedEvent } from '../../plugins/completion/schemas.js';
import { codeOf, collect, errorOf, testConfig, waitFor } from './helpers.js';
import type { EventFrame } from '../../client/protocol.js';

const OA_KEY = 'sk-oa-test-DO-NOT-LOG-77c1';
let anthropic: MessagesApiServer;
let oa: OpenAIChatServer;
let local: OpenAIChatServer;
let d: DaemonHandle;
let events: EventFrame[];

beforeAll(async () => {
  anthropic = await startMessagesApiServer();
  oa = await startOpenAIChatServer({ apiKey: OA_KEY });
  local = await startOpenAIChatServer();
  d = await startDaemon({
    readyTimeoutMs: 90_000,
    env: { ANTHROPIC_BASE_URL: anthropic.url, ANTHROPIC_API_KEY: 'test', OA_TEST_KEY: OA_KEY },
    config: testConfig({
      completion: {
        max_concurrency: 8,
        token_flush_ms: 20,
        providers: {
          oa: { kind: 'openai', base_url: oa.url, api_key_env: 'OA_TEST_KEY', max_concurrency: 2 },
          local: { kind: 'openai', base_url: local.url },
          keyless: { kind: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key_env: 'AGENTD_TEST_UNSET_KEY' },
        },
        models: {
          gpt: 'oa/gpt-test',
          smart: { model: 'test-model', fallbacks: ['oa/gpt-test', 'local/llama'] },
          thrifty: { model: 'local/llama', fallbacks: ['oa/gpt-dear'] },
          keyfirst: { model: 'keyless/m', fallbacks: ['local/llama'] },
        },
      },
      budget: {
        prices: {
          'test-model': { input: 1, output: 2 },
          'oa/gpt-test': { input: 2, output: 8, cache_read: 0.5 },
          'oa/gpt-dear': { input: 1000, output: 1000 },
        },
      },
    }),
  });
  events = await collect(d.client, ['completion:*', 'budget:*']);
}, 120_000);

afterAll(async () => {
  await d?.stop();
  await Promise.all([anthropic?.close(), oa?.close(), local?.close()]);
});

beforeEach(() => {
  anthropic.reset();
  oa.reset();
  local.reset();
  events.length = 0;
});

const req = (data: Record<string, unknown>, timeoutMs = 20_000) =>
  d.client.request('completion:request', data, { timeoutMs });
const of = (name: string, id: string) => events.filter((e) => e.event === name && e.data.request_id === id);
const ledger = async (id: string) =>
  ((await d.client.request('budget:ledger', { request_id: id })) as { entries: Array<Record<string, unknown>> })
    .entries;

describe('an OpenAI-compatible model', () => {
  it('answers through the SDK with usage, cost and the model that answered', async () => {
    oa.enqueue({
      text: 'four',
      usage: { prompt_tokens: 1000, completion_tokens: 500, cached_tokens: 600 },
      model: 'gpt-test-2026-01-01',
    });
    const r = await req({
      prompt: 'two plus two?',
      model: 'gpt',
      system: 'be brief',
      max_tokens: 800,
      request_id: 'oa-1',
    });
    expect(r).toMatchObject({
      request_id: 'oa-1',
      text: 'four',
      content: [{ type: 'text', text: 'four' }],
      stop_reason: 'end_turn',
      model: 'oa/gpt-test',
      provider: 'oa',
      provider_model: 'gpt-test-2026-01-01',
      price_known: true,
      attempt: 1,
      usage: { input_tokens: 400, output_tokens: 500, cache_read_input_tokens: 600, cache_creation_input_tokens: 0 },
    });
    // $2/MTok in, $8 out, $0.5 cached
    expect(r.cost_usd).toBeCloseTo((400 * 2 + 500 * 8 + 600 * 0.5) / 1e6, 12);
    resultEvent.parse(r);
    const sent = oa.chatRequests()[0]!;
    expect(sent.headers.authorization).toBe(`Bearer ${OA_KEY}`);
    expect(sent.body).toMatchObject({
      model: 'gpt-test',
      max_tokens: 800,
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'two plus two?' },
      ],
    });
    expect(anthropic.messageRequests()).toHaveLength(0);
    startedEvent.parse(of('completion:started', 'oa-1')[0]!.data);
    expect(of('completion:started', 'oa-1')[0]!.data).toMatchObject({ model: 'oa/gpt-test', provider: 'oa' });
    // reserved under the provider's model name, settled at its price
    expect((await ledger('oa-1')).map((e) => [e.kind, e.model])).toEqual([
      ['commit', 'oa/gpt-test'],
      ['reserve', 'oa/gpt-test'],
    ]);
  });

  it('streams completion:token events that add up to the text', async () => {
    const text = 'The quick brown fox jumps over the lazy dog, twice over.';
    oa.enqueue({ text, chunkChars: 3, chunkDelayMs: 5 });
    const r = await req({ prompt: 'fox', model: 'oa/gpt-test', stream: true, request_id: 'oa-stream' });
    expect(r.text).toBe(text);
    await waitFor(() => of('completion:result', 'oa-stream').length === 1);
    const tokens = of('completion:token', 'oa-stream');
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.map((t) => t.data.text).join('')).toBe(text);
    expect(tokens.map((t) => t.data.index)).toEqual(tokens.map((_, i) => i));
  });

  it('tool calls split across chunks come back as tool_use blocks; the results go back as tool messages in the session', async () => {
    oa.enqueue({
      text: 'Checking.',
      tool_calls: [{ id: 'call_x1', name: 'lookup', arguments: { query: 'primes below one hundred', limit: 25 } }],
      chunkChars: 4,
    });
    const tools = [
      {
        name: 'lookup',
        description: 'look it up',
        input_schema: { type: 'object', properties: { query: { type: 'string' }, limit: { type: 'integer' } } },
      },
    ];
    const r = await req({ prompt: 'how many primes?', model: 'gpt', session_id: 'oa-tools', tools });
    expect(r).toMatchObject({
      stop_reason: 'tool_use',
      content: [
        { type: 'text', text: 'Checking.' },
        { type: 'tool_use', id: 'call_x1', name: 'lookup', input: { query: 'primes below one hundred', limit: 25 } },
      ],
    });
    expect(oa.chatRequests()[0]!.body.tools).toEqual([
      { type: 'function', function: { name: 'lookup', description: 'look it up', parameters: tools[0]!.input_schema } },
    ]);
    oa.enqueue({ text: '25.' });
    const r2 = await req({
      messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_x1', content: '{"count":25}' }] }],
      model: 'gpt',
      session_id: 'oa-tools',
      tools,
    });
    expect(r2).toMatchObject({ text: '25.', stop_reason: 'end_turn' });
    // the one history, converted at the edge
    expect(oa.chatRequests()[1]!.body.messages).toEqual([
      { role: 'user', content: 'how many primes?' },
      {
        role: 'assistant',
        content: 'Checking.',
        tool_calls: [
          {
            id: 'call_x1',
            type: 'function',
            function: { name: 'lookup', arguments: '{"query":"primes below one hundred","limit":25}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_x1', content: '{"count":25}' },
    ]);
    const conv = (await d.client.request<Record<string, unknown>>('conversation:get', { session_id: 'oa-tools' })) as {
      messages: Array<{ role: string; content: unknown }>;
    };
    expect(conv.messages[1]!.content).toEqual(r.content);
  });

  it.each([
    ['length', { text: 'x'.repeat(400) }, { max_tokens: 10 }, 'max_tokens'],
    [
      'a server ending tool calls with "stop"',
      { tool_calls: [{ name: 'f', arguments: { a: 1 } }], toolCallsFinishStop: true, omitToolIndex: true },
      {},
      'tool_use',
    ],
    ['content_filter', { text: 'no', finish_reason: 'content_filter' as const }, {}, 'refusal'],
  ])('stop reason: %s', async (_n, reply, extra, want) => {
    local.enqueue(reply);
    const r = await req({ prompt: 'x', model: 'local/llama', ...extra });
    expect(r.stop_reason).toBe(want);
  });

  it('a server that reports no usage: the reserved input and the answer size are charged, marked as estimated', async () => {
    local.enqueue({ text: 'hello there', noUsage: true });
    const r = await req({ prompt: 'hi', model: 'local/llama', request_id: 'nousage' });
    expect(r).toMatchObject({ text: 'hello there', usage_estimated: true, price_known: false, cost_usd: 0 });
    const commit = (await ledger('nousage')).find((e) => e.kind === 'commit')!;
    const reserve = (await ledger('nousage')).find((e) => e.kind === 'reserve')!;
    expect(commit).toMatchObject({ estimated: true, input_tokens: reserve.input_tokens });
    expect(Number(commit.output_tokens)).toBeGreaterThanOrEqual('hello there'.length);
  });
});

describe('pricing', () => {
  it('a model without a price costs 0 and says so; a token limit still counts its tokens', async () => {
    await d.client.request('budget:set', { scope: 'session', id: 'free-s', limit_tokens: 3000 });
    local.setHandler(() => ({ text: 'free', usage: { prompt_tokens: 1200, completion_tokens: 300 } }));
    const r = await req({ prompt: 'a', model: 'local/llama', session_id: 'free-s', max_tokens: 300 });
    expect(r).toMatchObject({ cost_usd: 0, price_known: false, usage: { input_tokens: 1200, output_tokens: 300 } });
    await waitFor(() => events.some((e) => e.event === 'budget:spent' && e.data.price_known === false));
    const st = (await d.client.request('budget:status', { scope: 'session', id: 'free-s' })) as {
      scopes: Array<Record<string, unknown>>;
    };
    expect(st.scopes[0]).toMatchObject({ spent_tokens: 1500, spent_usd: 0 });
    await req({ prompt: 'b', model: 'local/llama', session_id: 'free-s', max_tokens: 300 });
    // 3000 spent: the limit stops the next call before it reaches the server
    const n = local.chatRequests().length;
    expect(await codeOf(req({ prompt: 'c', model: 'local/llama', session_id: 'free-s', max_tokens: 300 }))).toBe(
      'BUDGET_EXCEEDED',
    );
    expect(local.chatRequests()).toHaveLength(n);
  });

  it("budget:prices shows each model's provider, and an unpriced one at 0", async () => {
    const all = (await d.client.request('budget:prices', {})) as { prices: Record<string, Record<string, unknown>> };
    expect(all.prices['oa/gpt-test']).toMatchObject({ input: 2, output: 8, provider: 'oa', price_known: true });
    expect(all.prices['claude-sonnet-5-5']).toMatchObject({ provider: 'anthropic' });
    expect(all.prices['openai/gpt-4.1']).toMatchObject({ input: 2, output: 8, cache_read: 0.5, provider: 'openai' });
    const one = (await d.client.request('budget:prices', { model: 'local/llama' })) as {
      prices: Record<string, Record<string, unknown>>;
    };
    expect(one.prices['local/llama']).toMatchObject({ input: 0, output: 0, provider: 'local', price_known: false });
    // an Anthropic model without a price is still refused
    expect(await codeOf(d.client.request('budget:prices', { model: 'claude-nope' }))).toBe('NOT_FOUND');
  });
});

describe('errors, retries and cancel', () => {
  it('429 with retry-after is retried by the SDK', async () => {
    oa.enqueue({ kind: 'error', status: 429, retryAfter: 1 }, { text: 'ok after 429' });
    const t0 = Date.now();
    expect((await req({ prompt: 'rl', model: 'gpt' })).text).toBe('ok after 429');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(oa.chatRequests()).toHaveLength(2);
  });

  it.each([
    [500, 'UNAVAILABLE', 2],
    [503, 'UNAVAILABLE', 2],
    [429, 'OVERLOADED', 2],
    [400, 'INVALID_DATA', 1],
    [404, 'INVALID_DATA', 1],
  ] as const)('%i beyond the retries fails as %s', async (status, code, calls) => {
    oa.setHandler(() => ({ kind: 'error', status, retryAfterMs: 1 }));
    const e = await errorOf(req({ prompt: `e${status}`, model: 'gpt', request_id: `oa-err-${status}` }));
    expect(e.code).toBe(code);
    expect(e.details).toMatchObject({ provider: 'oa', status });
    expect(oa.chatRequests()).toHaveLength(calls); // max_retries 1
    expect(await d.client.request('completion:status', { request_id: `oa-err-${status}` })).toMatchObject({
      status: 'failed',
      error: { code },
    });
    expect((await ledger(`oa-err-${status}`)).map((e) => e.kind)).toEqual(['release', 'reserve']);
  });

  it.each([
    ['dropped', { dropAfterChunks: 4 }],
    ['ended early without a finish reason', { endAfterChunks: 4 }],
    [
      'an error object mid-stream',
      { errorAfterChunks: { after: 4, message: 'The server had an error while processing your request.' } },
    ],
  ])('a stream %s fails UNAVAILABLE and bills what was started', async (_n, how) => {
    const id = `oa-cut-${_n.length}`;
    oa.enqueue({ text: 'y'.repeat(200), chunkDelayMs: 2, ...how });
    const e = await errorOf(req({ prompt: 'cut', model: 'gpt', request_id: id, max_tokens: 1000 }));
    expect(e.code).toBe('UNAVAILABLE');
    const l = await ledger(id);
    expect(l[0]).toMatchObject({ kind: 'commit', estimated: true });
    expect(Number(l[0]!.input_tokens)).toBe(Number(l[1]!.input_tokens)); // the reserved bound, never below the count
    expect(Number(l[0]!.output_tokens)).toBeGreaterThan(0);
  });

  it('cancel aborts a hung call; the server sees the connection closed; nothing stays reserved', async () => {
    oa.setHandler(() => ({ kind: 'hang' }));
    const waiting = errorOf(req({ prompt: 'hang', model: 'gpt', request_id: 'oa-cancel' }));
    await waitFor(() => oa.inFlight() === 1, 5000, 'the call reached the server');
    expect(await d.client.request('completion:cancel', { request_id: 'oa-cancel' })).toMatchObject({
      status: 'cancelled',
      was: 'running',
    });
    expect((await waiting).code).toBe('CANCELLED');
    await waitFor(() => oa.inFlight() === 0, 5000, 'the server saw the abort');
    expect((await ledger('oa-cancel')).map((e) => e.kind)).toEqual(['release', 'reserve']);
  });

  it('cancel is prompt even while the SDK waits out a retry-after', async () => {
    oa.setHandler(() => ({ kind: 'error', status: 429, retryAfter: 30 }));
    const waiting = errorOf(req({ prompt: 'wait', model: 'gpt', request_id: 'oa-cancel-ra' }));
    await waitFor(() => oa.chatRequests().length === 1, 5000);
    const t0 = Date.now();
    await d.client.request('completion:cancel', { request_id: 'oa-cancel-ra' });
    expect((await waiting).code).toBe('CANCELLED');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a provider without its key, an unknown provider: typed errors naming the fix', async () => {
    const e = await errorOf(req({ prompt: 'x', model: 'keyless/m' }));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/AGENTD_TEST_UNSET_KEY/);
    const u = await errorOf(req({ prompt: 'x', model: 'nowhere/m' }));
    expect(u.code).toBe('INVALID_DATA');
    expect(u.message).toMatch(/completion\.providers\.nowhere/);
  });
});

describe('per-provider concurrency', () => {
  it("a provider at its max_concurrency holds its own calls back, not other providers'", async () => {
    oa.setHandler(() => ({ text: 'slow', delayMs: 400 }));
    const ids = Array.from({ length: 5 }, (_, i) => `oa-lane-${i}`);
    for (const id of ids) await d.client.request('completion:async', { prompt: id, model: 'gpt', request_id: id });
    await waitFor(() => oa.inFlight() === 2, 5000, 'two calls in flight');
    // an Anthropic call queued behind them runs at once
    const t0 = Date.now();
    expect((await req({ prompt: 'meanwhile', request_id: 'anth-lane' })).text).toBe('echo: meanwhile');
    expect(Date.now() - t0).toBeLessThan(1500);
    let peak = 0;
    await waitFor(
      async () => {
        peak = Math.max(peak, oa.inFlight());
        const st = await Promise.all(ids.map((id) => d.client.request('completion:status', { request_id: id })));
        return st.every((s) => s.status === 'completed');
      },
      20_000,
      'all five done',
    );
    expect(peak).toBeLessThanOrEqual(2);
    expect(oa.chatRequests()).toHaveLength(5);
  });
});

describe('fallbacks', () => {
  it('an alias tries the next model when one is overloaded or failing; the result names who answered', async () => {
    anthropic.setHandler(() => ({ kind: 'error', status: 529, retryAfterMs: 1 }));
    oa.setHandler(() => ({ kind: 'error', status: 502, retryAfterMs: 1 }));
    local.enqueue({ text: 'from the local model' });
    const r = await req({ prompt: 'anyone?', model: 'smart', request_id: 'fb-1' });
    expect(r).toMatchObject({
      text: 'from the local model',
      model: 'local/llama',
      provider: 'local',
      price_known: false,
      fallback_from: [
        { model: 'test-model', code: 'OVERLOADED' },
        { model: 'oa/gpt-test', code: 'UNAVAILABLE' },
      ],
    });
    // each provider had its SDK retries (max_retries 1) before the next was asked
    expect(anthropic.messageRequests()).toHaveLength(2);
    expect(oa.chatRequests()).toHaveLength(2);
    expect(local.chatRequests()).toHaveLength(1);
    await waitFor(() => of('completion:fallback', 'fb-1').length === 2);
    expect(
      of('completion:fallback', 'fb-1')
        .map((e) => fallbackEvent.parse(e.data))
        .map((e) => [e.from, e.to]),
    ).toEqual([
      ['test-model', 'oa/gpt-test'],
      ['oa/gpt-test', 'local/llama'],
    ]);
    // one reservation at a time, each model's released before the next one's
    expect((await ledger('fb-1')).map((e) => [e.kind, e.model]).reverse()).toEqual([
      ['reserve', 'test-model'],
      ['release', 'test-model'],
      ['reserve', 'oa/gpt-test'],
      ['release', 'oa/gpt-test'],
      ['reserve', 'local/llama'],
      ['commit', 'local/llama'],
    ]);
    // status and health show who is failing
    const st = (await d.client.request<Record<string, unknown>>('completion:status', {})) as {
      providers: Record<string, Record<string, unknown>>;
    };
    expect(st.providers.oa).toMatchObject({
      kind: 'openai',
      configured: true,
      state: 'failing',
      max_concurrency: 2,
      last_error: { code: 'UNAVAILABLE' },
    });
    expect(st.providers.local).toMatchObject({ state: 'ok', base_url: local.url });
    expect(st.providers.keyless).toMatchObject({ state: 'unconfigured', configured: false });
    const health = await d.client.request('system:health', {});
    expect(JSON.stringify(health)).toContain('"failing"');
    const plugins = (
      health as { plugins: Record<string, { details?: { providers?: Record<string, { state: string }> } }> }
    ).plugins;
    expect(plugins.completion!.details!.providers).toMatchObject({
      anthropic: { state: 'failing' },
      local: { state: 'ok' },
      keyless: { state: 'unconfigured' },
    });
  });

  it('a provider that cannot be used (no key) is skipped; one that rejects the request (4xx) is not', async () => {
    local.enqueue({ text: 'skipped to me' });
    expect(await req({ prompt: 'x', model: 'keyfirst' })).toMatchObject({
      model: 'local/llama',
      fallback_from: [{ model: 'keyless/m', code: 'UNAVAILABLE' }],
    });
    anthropic.enqueue({ kind: 'error', status: 400, message: 'bad request' });
    expect(await codeOf(req({ prompt: 'x', model: 'smart' }))).toBe('INVALID_DATA');
    expect(oa.chatRequests()).toHaveLength(0);
  });

  it('a fallback that would exceed the budget is refused like any call', async () => {
    await d.client.request('budget:set', { scope: 'session', id: 'thrift-s', limit_usd: 0.01 });
    local.setHandler(() => ({ kind: 'error', status: 503, retryAfterMs: 1 }));
    const e = await errorOf(
      req({ prompt: 'x', model: 'thrifty', session_id: 'thrift-s', max_tokens: 100, request_id: 'fb-budget' }),
    );
    expect(e.code).toBe('BUDGET_EXCEEDED');
    expect(oa.chatRequests()).toHaveLength(0);
    expect((await ledger('fb-budget')).map((x) => x.kind)).toEqual(['release', 'reserve']);
    const st = (await d.client.request('budget:status', { scope: 'session', id: 'thrift-s' })) as {
      scopes: Array<Record<string, unknown>>;
    };
    expect(st.scopes[0]).toMatchObject({ spent_usd: 0, reserved_usd: 0 });
  });
});

describe('secrets', () => {
  it('the provider key never appears in the output or an answer', async () => {
    const st = await d.client.request('completion:status', {});
    const health = await d.client.request('system:health', {});
    expect(JSON.stringify([st, health])).not.toContain(OA_KEY);
    expect(d.output()).not.toContain(OA_KEY);
  });
});
