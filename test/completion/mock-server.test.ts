/** The mock Messages API must satisfy the real SDK, or every test built on it proves nothing. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import Anthropic from '@anthropic-ai/sdk';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';

let api: MessagesApiServer;
let sdk: Anthropic;
beforeAll(async () => {
  api = await startMessagesApiServer();
  sdk = new Anthropic({ apiKey: 'test', baseURL: api.url, maxRetries: 2, timeout: 5000 });
});
afterAll(() => api.close());

const params = {
  model: 'claude-haiku-4-5',
  max_tokens: 64,
  messages: [{ role: 'user' as const, content: 'hello there' }],
};

describe('messages-api-server', () => {
  it('answers JSON with usage including cache fields', async () => {
    api.enqueue({ text: 'hi!', usage: { cache_read_input_tokens: 7, cache_creation_input_tokens: 3 } });
    const m = await sdk.messages.create(params);
    expect(m.content).toEqual([{ type: 'text', text: 'hi!' }]);
    expect(m.usage.cache_read_input_tokens).toBe(7);
    expect(m.usage.cache_creation_input_tokens).toBe(3);
    expect(m.stop_reason).toBe('end_turn');
    expect(api.messageRequests().at(-1)?.body.model).toBe('claude-haiku-4-5');
  });

  it('streams text deltas the SDK accumulates', async () => {
    api.enqueue({ text: 'a fairly long streamed answer', chunkChars: 3, eventDelayMs: 1 });
    const deltas: string[] = [];
    const s = sdk.messages.stream(params);
    s.on('text', (t) => deltas.push(t));
    const m = await s.finalMessage();
    expect(deltas.length).toBeGreaterThan(5);
    expect(deltas.join('')).toBe('a fairly long streamed answer');
    expect(m.usage.output_tokens).toBeGreaterThan(1);
  });

  it('streams tool_use with input_json_delta', async () => {
    api.enqueue({
      content: [
        { type: 'text', text: 'let me run it' },
        { type: 'tool_use', name: 'sandbox_exec', input: { language: 'python', code: 'print(1)' } },
      ],
    });
    const m = await sdk.messages.stream(params).finalMessage();
    expect(m.stop_reason).toBe('tool_use');
    const tool = m.content.find((b) => b.type === 'tool_use');
    expect(tool && tool.type === 'tool_use' && tool.input).toEqual({ language: 'python', code: 'print(1)' });
  });

  it('never produces more than max_tokens', async () => {
    api.enqueue({ text: 'a long answer that goes on and on and on' });
    const m = await sdk.messages.create({ ...params, max_tokens: 2 });
    expect(m.stop_reason).toBe('max_tokens');
    expect(m.usage.output_tokens).toBe(2);
    expect(m.content[0]).toEqual({ type: 'text', text: 'a long a' });
  });

  it('counts tokens', async () => {
    const r = await sdk.messages.countTokens({ model: params.model, messages: params.messages });
    expect(r.input_tokens).toBeGreaterThan(0);
  });

  it('429 with retry-after is retried by the SDK itself', async () => {
    api.reset();
    api.enqueue({ kind: 'error', status: 429, retryAfterMs: 10 }, { text: 'after retry' });
    const m = await sdk.messages.create(params);
    expect(m.content[0]).toEqual({ type: 'text', text: 'after retry' });
    expect(api.messageRequests()).toHaveLength(2);
  });

  it('529 overloaded beyond the retries surfaces as an APIError with status', async () => {
    const one = new Anthropic({ apiKey: 'test', baseURL: api.url, maxRetries: 0 });
    api.enqueue({ kind: 'error', status: 529 });
    await expect(one.messages.create(params)).rejects.toMatchObject({
      status: 529,
      error: { type: 'error', error: { type: 'overloaded_error' } },
    });
  });

  it('a connection dropped mid-stream rejects the stream', async () => {
    api.enqueue({ text: 'x'.repeat(200), dropAfterEvents: 4, eventDelayMs: 1 });
    await expect(sdk.messages.stream(params).finalMessage()).rejects.toThrow();
  });

  it('an SSE error event mid-stream rejects with the error type', async () => {
    api.enqueue({
      text: 'x'.repeat(50),
      errorAfterEvents: { after: 3, type: 'overloaded_error', message: 'Overloaded' },
    });
    await expect(sdk.messages.stream(params).finalMessage()).rejects.toThrow(/Overloaded/);
  });

  it('a hung request is aborted by the caller and the server sees the socket close', async () => {
    api.enqueue({ kind: 'hang' });
    const ac = new AbortController();
    const p = sdk.messages.create(params, { signal: ac.signal });
    // Waits for the server to hold the request, however slow the machine, rather than for a fixed time.
    await vi.waitFor(() => expect(api.inFlight()).toBe(1), { timeout: 10_000, interval: 5 });
    ac.abort();
    await expect(p).rejects.toThrow();
    await vi.waitFor(() => expect(api.inFlight()).toBe(0), { timeout: 10_000, interval: 5 });
  });

  it('rejects a missing key like the API', async () => {
    const res = await fetch(`${api.url}/v1/messages`, { method: 'POST', body: JSON.stringify(params) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });

  it('a handler decides per request', async () => {
    api.setHandler((r) => ({ text: `model=${String(r.body.model)}` }));
    const m = await sdk.messages.create(params);
    expect(m.content[0]).toEqual({ type: 'text', text: 'model=claude-haiku-4-5' });
    api.setHandler(null);
  });
});
