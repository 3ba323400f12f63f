/** Provider routing, aliases with fallbacks, the per-provider limiter and the queue's lanes, without a daemon. */
import { describe, expect, it } from 'vitest';
import { DaemonError } from '../../daemon/plugin-api.js';
import { SessionQueue } from '../../plugins/completion/queue.js';
import { isProviderFailure, Limiter, Providers } from '../../plugins/completion/providers/registry.js';
import type { Provider } from '../../plugins/completion/providers/types.js';
import { PriceTable } from '../../plugins/budget/prices.js';

const fake = (name: string, configured = true): Provider => ({
  name,
  kind: name === 'anthropic' ? 'anthropic' : 'openai',
  baseURL: `http://u:secret@127.0.0.1/${name}`,
  status: () => (configured ? { configured: true } : { configured: false, reason: `${name} has no key` }),
  complete: () => Promise.reject(new Error('not called')),
  mapError: (e) => (e instanceof DaemonError ? e : new DaemonError('UNAVAILABLE', String(e))),
});

function registry(aliases: Record<string, string | { model: string; fallbacks: string[] }> = {}) {
  return new Providers([fake('anthropic'), fake('oa'), fake('off', false)], { anthropic: 8, oa: 2, off: 1 }, aliases);
}

describe('routing and aliases', () => {
  it.each([
    ['sonnet', 'anthropic', 'claude-sonnet-5-5'],
    ['claude-haiku-5-5', 'anthropic', 'claude-haiku-5-5'],
    ['anthropic/claude-haiku-5-5', 'anthropic', 'claude-haiku-5-5'],
    ['oa/gpt-4.1', 'oa', 'gpt-4.1'],
    ['oa/meta-llama/Llama-3.1-8B', 'oa', 'meta-llama/Llama-3.1-8B'],
  ])('%s → provider %s, model %s', (name, provider, model) => {
    const p = registry();
    const { model: resolved } = p.resolve(name);
    const r = p.route(resolved);
    expect([r.provider.name, r.model]).toEqual([provider, model]);
  });

  it('an alias with fallbacks; the first usable model skips an unconfigured provider', () => {
    const p = registry({ smart: { model: 'off/m', fallbacks: ['oa/x', 'sonnet'] }, plain: 'oa/y' });
    expect(p.resolve('smart')).toEqual({ model: 'off/m', fallbacks: ['oa/x', 'sonnet'] });
    expect(p.resolve('plain')).toEqual({ model: 'oa/y', fallbacks: [] });
    expect(p.firstUsable(['off/m', 'oa/x'])).toBe('oa/x');
    expect(p.firstUsable(['off/m'])).toBeNull();
  });

  it('an unknown provider is INVALID_DATA; an alias naming one fails at start', () => {
    expect(() => registry().route('nope/m')).toThrow(expect.objectContaining({ code: 'INVALID_DATA' }));
    expect(() => registry({ bad: { model: 'sonnet', fallbacks: ['nope/m'] } })).toThrow(/completion\.providers\.nope/);
  });

  it('states: base URLs without credentials, state by the last call', () => {
    const p = registry();
    expect(p.states().oa).toMatchObject({ state: 'idle', base_url: 'http://127.0.0.1/oa', max_concurrency: 2 });
    expect(p.states().off).toMatchObject({ state: 'unconfigured', reason: 'off has no key' });
    p.record('oa', 'failure', new DaemonError('OVERLOADED', 'busy'));
    expect(p.states().oa).toMatchObject({ state: 'failing', failures: 1, last_error: { code: 'OVERLOADED' } });
    p.record('oa', 'ok');
    expect(p.states().oa).toMatchObject({ state: 'ok', calls: 2 });
  });

  it.each([
    [new DaemonError('OVERLOADED', ''), true],
    [new DaemonError('TIMEOUT', ''), true],
    [new DaemonError('UNAVAILABLE', '', { status: 502 }), true],
    [new DaemonError('UNAVAILABLE', '', {}), true],
    [new DaemonError('UNAVAILABLE', '', { status: 401 }), false],
    [new DaemonError('INVALID_DATA', '', { status: 400 }), false],
    [new DaemonError('BUDGET_EXCEEDED', ''), false],
    [new DaemonError('CANCELLED', ''), false],
  ])('%s falls back: %s', (e, want) => {
    expect(isProviderFailure(e)).toBe(want);
  });
});

describe('Limiter and the queue lanes', () => {
  it("a full provider parks its sessions; other providers' requests run; a free slot wakes the oldest", async () => {
    const freed: string[] = [];
    const lim = new Limiter(1, () => freed.push('oa'));
    const started: string[] = [];
    const finish = new Map<string, () => void>();
    type It = { id: string; key: string; provider: string };
    const q = new SessionQueue<It>(
      10,
      (it) => {
        started.push(it.id);
        if (it.provider === 'oa') lim.tryAcquire();
        return new Promise<void>((r) =>
          finish.set(it.id, () => {
            if (it.provider === 'oa') lim.release();
            r();
          }),
        );
      },
      (it) => (it.provider === 'oa' && lim.full ? 'oa' : null),
    );
    q.enqueue({ id: 'o1', key: 's1', provider: 'oa' });
    q.enqueue({ id: 'o2', key: 's2', provider: 'oa' });
    q.enqueue({ id: 'o3', key: 's3', provider: 'oa' });
    q.enqueue({ id: 'a1', key: 's4', provider: 'anthropic' });
    expect(started).toEqual(['o1', 'a1']);
    expect(q.size).toBe(2);
    finish.get('o1')!();
    await new Promise((r) => setImmediate(r));
    expect(freed).toEqual(['oa']);
    q.wake('oa');
    expect(started).toEqual(['o1', 'a1', 'o2']);
    finish.get('o2')!();
    await new Promise((r) => setImmediate(r));
    q.wake('oa');
    expect(started).toEqual(['o1', 'a1', 'o2', 'o3']);
  });

  it('acquire waits in order and gives up on abort', async () => {
    const lim = new Limiter(1, () => undefined);
    expect(lim.tryAcquire()).toBe(true);
    const ac = new AbortController();
    const order: string[] = [];
    const a = lim.acquire(ac.signal).then(
      () => order.push('a'),
      () => order.push('a aborted'),
    );
    const b = lim.acquire(new AbortController().signal).then(() => order.push('b'));
    ac.abort();
    lim.release();
    await Promise.all([a, b]);
    expect(order).toEqual(['a aborted', 'b']);
    expect(lim.active).toBe(1);
  });
});

describe('prices of other providers', () => {
  const t = new PriceTable({ 'claude-x': { input: 1, output: 2 }, 'openai/gpt-4o': { input: 2.5, output: 10 } });
  it.each([
    ['claude-x', true, 1],
    ['openai/gpt-4o-2024-08-06', true, 2.5],
    ['ollama/llama3.1:8b', false, 0],
  ])('%s: known %s, input %s', (m, known, input) => {
    const p = t.lookup(m)!;
    expect([p.known, p.price.input]).toEqual([known, input]);
  });
  it('an unprefixed model without a price has none (refused by the budget)', () => {
    expect(t.lookup('claude-nope')).toBeUndefined();
  });
});

describe('the OpenAI-compatible provider', () => {
  it('reserves more than the byte bound for chat templates, tools and images', async () => {
    const { OpenAIProvider } = await import('../../plugins/completion/providers/openai.js');
    const { default: pino } = await import('pino');
    const p = await OpenAIProvider.create({
      name: 'x',
      config: { kind: 'openai', base_url: 'http://127.0.0.1:9/v1' },
      maxRetries: 0,
      timeoutMs: 1000,
      env: {},
      log: pino({ level: 'silent' }),
    });
    expect(p.status()).toEqual({ configured: true });
    const req = {
      model: 'm',
      max_tokens: 1,
      messages: [
        {
          role: 'user' as const,
          content: [
            { type: 'text', text: 'what is it' },
            { type: 'image', source: { type: 'url', url: 'https://x/y.png' } },
          ],
        },
      ],
      tools: [
        { name: 'a', input_schema: {} },
        { name: 'b', input_schema: {} },
      ],
    };
    expect(p.inputAllowance(req)).toBe(512 + 2 * 32 + 1500);
    const keyed = await OpenAIProvider.create({
      name: 'y',
      config: { kind: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key_env: 'NOPE_UNSET' },
      maxRetries: 0,
      timeoutMs: 1000,
      env: {},
      log: pino({ level: 'silent' }),
    });
    expect(keyed.status()).toMatchObject({ configured: false, reason: expect.stringContaining('NOPE_UNSET') });
  });
});

describe('completion config', () => {
  it('providers and aliases: a mistyped key or a bad name fails with its path', async () => {
    const { configSchema } = await import('../../plugins/completion/config.js');
    const ok = configSchema.safeParse({
      providers: { ollama: { kind: 'openai', base_url: 'http://127.0.0.1:11434/v1', max_concurrency: 1 } },
      models: { a: 'ollama/x', b: { model: 'sonnet', fallbacks: ['ollama/x'] } },
    });
    expect(ok.success).toBe(true);
    const typo = configSchema.safeParse({ providers: { ollama: { kind: 'openai', base_ur1: 'http://x/v1' } } });
    expect(typo.success).toBe(false);
    expect(JSON.stringify(typo.error!.issues)).toContain('base_ur1');
    expect(configSchema.safeParse({ providers: { Ollama: { kind: 'openai', base_url: 'http://x/v1' } } }).success).toBe(
      false,
    );
    expect(configSchema.safeParse({ providers: { x: { kind: 'gemini', base_url: 'http://x/v1' } } }).success).toBe(
      false,
    );
    expect(configSchema.safeParse({ models: { b: { model: 'sonnet', fallback: ['x'] } } }).success).toBe(false);
  });
});
