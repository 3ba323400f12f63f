/** budget:* through the socket of a real daemon, alone and as the completion plugin uses it. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { codeOf, collect, errorOf, testConfig, waitFor } from '../completion/helpers.js';
import { exceededEvent, spentEvent, warningEvent } from '../../plugins/budget/schemas.js';
import type { EventFrame } from '../../client/protocol.js';

interface Scope {
  scope: string;
  id: string | null;
  period: string;
  spent_usd: number;
  reserved_usd: number;
  limit_usd: number | null;
  remaining_usd: number | null;
  percent: number | null;
  spent_tokens: number;
  limit_tokens: number | null;
}

let api: MessagesApiServer;
let d: DaemonHandle;
let events: EventFrame[];
const home = tempHome('agentd-budget-');

beforeAll(async () => {
  api = await startMessagesApiServer();
  d = await startDaemon({
    readyTimeoutMs: 90_000,
    home,
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: 'test' },
    config: testConfig({
      completion: { max_concurrency: 50 },
      budget: { prices: { 'test-model': { input: 1, output: 2 }, 'my-model': { input: 10, output: 20 } } },
    }),
  });
  events = await collect(d.client, ['budget:*']);
}, 120_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

beforeEach(() => {
  api.reset();
  events.length = 0;
});

const status = async (data: Record<string, unknown> = {}): Promise<Scope[]> =>
  ((await d.client.request<Record<string, unknown>>('budget:status', data)) as { scopes: Scope[] }).scopes;
const usage = (input: number, output: number) => ({ input_tokens: input, output_tokens: output });

describe('limits and status', () => {
  it('a limit covers spend from before it was set; status reports spent, reserved, remaining and percent', async () => {
    await d.client.request('budget:reserve', {
      request_id: 'pre-1',
      model: 'test-model',
      input_tokens: 100,
      max_tokens: 1000,
      agent_id: 'early',
    });
    await d.client.request('budget:commit', { request_id: 'pre-1', usage: usage(1000, 1000) }); // $0.003
    const set = (await d.client.request<Record<string, unknown>>('budget:set', {
      scope: 'agent',
      id: 'early',
      limit_usd: 0.01,
    })) as { status: Scope[] };
    expect(set.status[0]).toMatchObject({
      scope: 'agent',
      id: 'early',
      period: 'total',
      limit_usd: 0.01,
      spent_usd: 0.003,
      remaining_usd: 0.007,
      percent: 30,
    });
    await d.client.request('budget:reserve', {
      request_id: 'pre-2',
      model: 'test-model',
      input_tokens: 0,
      max_tokens: 1000,
      agent_id: 'early',
    }); // $0.002
    const [s] = await status({ scope: 'agent', id: 'early' });
    expect(s).toMatchObject({ reserved_usd: 0.002, remaining_usd: 0.005 });
    await d.client.request('budget:release', { request_id: 'pre-2' });
    // token limits too
    await d.client.request('budget:set', { scope: 'agent', id: 'early', limit_tokens: 5000, period: 'daily' });
    const all = await status({ scope: 'agent', id: 'early' });
    expect(all.map((x) => x.period).sort()).toEqual(['daily', 'total']);
    expect(all.find((x) => x.period === 'daily')).toMatchObject({
      limit_tokens: 5000,
      spent_tokens: 2000,
      limit_usd: null,
    });
    // null removes a limit
    await d.client.request('budget:set', { scope: 'agent', id: 'early', limit_tokens: null, period: 'daily' });
    expect((await status({ scope: 'agent', id: 'early' })).map((x) => x.period)).toEqual(['total']);
  });

  it.each([
    ['negative USD', { scope: 'global', limit_usd: -1 }],
    ['USD as a string', { scope: 'global', limit_usd: '5' }],
    ['tokens fractional', { scope: 'global', limit_tokens: 1.5 }],
    ['tokens negative', { scope: 'global', limit_tokens: -10 }],
    ['no limit given', { scope: 'global' }],
    ['global with an id', { scope: 'global', id: 'x', limit_usd: 1 }],
    ['agent without an id', { scope: 'agent', limit_usd: 1 }],
    ['unknown scope', { scope: 'planet', id: 'x', limit_usd: 1 }],
    ['unknown period', { scope: 'global', limit_usd: 1, period: 'weekly' }],
  ])('budget:set with %s is INVALID_DATA and changes nothing', async (_n, data) => {
    const before = await status();
    expect(await codeOf(d.client.request<Record<string, unknown>>('budget:set', data))).toBe('INVALID_DATA');
    expect(await status()).toEqual(before);
  });

  it('bad reserve/commit/status input is INVALID_DATA', async () => {
    expect(
      await codeOf(
        d.client.request('budget:reserve', { request_id: 'x', model: 'test-model', input_tokens: -1, max_tokens: 10 }),
      ),
    ).toBe('INVALID_DATA');
    expect(
      await codeOf(
        d.client.request('budget:reserve', { request_id: 'x', model: 'test-model', input_tokens: 1, max_tokens: 0 }),
      ),
    ).toBe('INVALID_DATA');
    expect(
      await codeOf(
        d.client.request<Record<string, unknown>>('budget:commit', {
          request_id: 'x',
          usage: { input_tokens: 'a', output_tokens: 1 },
        }),
      ),
    ).toBe('INVALID_DATA');
    expect(await codeOf(d.client.request('budget:status', { scope: 'agent' }))).toBe('INVALID_DATA');
    expect(await codeOf(d.client.request('budget:ledger', { limit: 0 }))).toBe('INVALID_DATA');
  });
});

describe('prices', () => {
  it('ships current Anthropic prices, merges the user table, and refuses an unpriced model clearly', async () => {
    const p = (await d.client.request('budget:prices', {})) as {
      prices: Record<string, { input: number; output: number; cache_write: number; cache_read: number }>;
    };
    expect(p.prices['claude-sonnet-4-6']).toMatchObject({ input: 3, output: 15, cache_write: 3.75, cache_read: 0.3 });
    expect(p.prices['my-model']).toMatchObject({ input: 10, output: 20, cache_write: 12.5, cache_read: 1 });
    expect(await codeOf(d.client.request('budget:prices', { model: 'gpt-nope' }))).toBe('NOT_FOUND');
    const e = await errorOf(
      d.client.request('budget:reserve', { request_id: 'unpriced', model: 'gpt-nope', input_tokens: 1, max_tokens: 1 }),
    );
    expect(e.code).toBe('INVALID_DATA');
    expect(e.message).toMatch(/no price.*budget\.prices/);
  });
});

describe('reservations under concurrency', () => {
  it('50 parallel budget:reserve calls never exceed the limit', async () => {
    await d.client.request('budget:set', { scope: 'session', id: 'par-reserve', limit_usd: 0.01 });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        d.client.request('budget:reserve', {
          request_id: `pr-${i}`,
          model: 'test-model',
          input_tokens: 0,
          max_tokens: 1000,
          session_id: 'par-reserve',
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5); // $0.002 each, $0.01 limit
    const [s] = await status({ scope: 'session', id: 'par-reserve' });
    expect(s!.reserved_usd).toBe(0.01);
    for (let i = 0; i < 50; i++) await d.client.request('budget:release', { request_id: `pr-${i}` });
  });

  it('50 parallel completion calls against a small budget never overspend', async () => {
    // Every call really uses its whole max_tokens, so worst case and actual cost are nearly equal.
    api.setHandler(() => ({ text: 'spent', delayMs: 300, usage: { output_tokens: 1000 } }));
    await d.client.request('budget:set', { scope: 'agent', id: 'spender', limit_usd: 0.01 });
    const calls = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        d.client.request(
          'completion:request',
          { prompt: `p-${i}`, agent_id: 'spender', max_tokens: 1000, request_id: `spend-${i}` },
          { timeoutMs: 30_000 },
        ),
      ),
    );
    const ok = calls.filter((c) => c.status === 'fulfilled');
    const refused = calls.filter((c): c is PromiseRejectedResult => c.status === 'rejected');
    expect(ok.length).toBe(4);
    expect(refused.every((r) => r.reason.code === 'BUDGET_EXCEEDED')).toBe(true);
    // refused calls never reached the API
    expect(api.messageRequests()).toHaveLength(4);
    const [s] = await status({ scope: 'agent', id: 'spender' });
    expect(s!.spent_usd).toBeLessThanOrEqual(0.01);
    expect(s!.reserved_usd).toBe(0);
    const paid = ok.reduce((a, c) => a + Number(c.value.cost_usd), 0);
    expect(s!.spent_usd).toBeCloseTo(paid, 9);
    await waitFor(() => events.some((e) => e.event === 'budget:exceeded'));
    for (const e of events.filter((x) => x.event === 'budget:exceeded')) exceededEvent.parse(e.data);
    for (const e of events.filter((x) => x.event === 'budget:spent')) spentEvent.parse(e.data);
    // completion:status of a refused call shows the budget error
    const st = await d.client
      .request('completion:status', { request_id: String(refused[0]!.reason.details?.request_id ?? '') })
      .catch(() => null);
    if (st) expect(st).toMatchObject({ status: 'failed', error: { code: 'BUDGET_EXCEEDED' } });
  }, 180_000);

  it('a used-up budget refuses completion:async at once, before queueing', async () => {
    await d.client.request('budget:set', { scope: 'session', id: 'broke', limit_usd: 0 });
    expect(await codeOf(d.client.request('completion:async', { prompt: 'x', session_id: 'broke' }))).toBe(
      'BUDGET_EXCEEDED',
    );
    expect(api.messageRequests()).toHaveLength(0);
  });

  it('a token limit refuses a call whose max_tokens cannot fit, before any token is spent', async () => {
    await d.client.request('budget:set', { scope: 'session', id: 'tok', limit_tokens: 500 });
    const e = await errorOf(
      d.client.request('completion:request', { prompt: 'x', session_id: 'tok', max_tokens: 1000 }),
    );
    expect(e.code).toBe('BUDGET_EXCEEDED');
    expect(e.details).toMatchObject({ scope: 'session', id: 'tok', dimension: 'tokens' });
    expect(api.messageRequests()).toHaveLength(0);
    // a smaller call fits
    const r = await d.client.request('completion:request', { prompt: 'x', session_id: 'tok', max_tokens: 100 });
    expect(r.text).toBe('echo: x');
  });

  it('a tight budget asks the API for the exact input count instead of refusing on the byte bound', async () => {
    const prompt = 'word '.repeat(2000); // ~10 KB: bound ~10k tokens, mock count ~2.5k
    await d.client.request('budget:set', { scope: 'session', id: 'tight', limit_tokens: 4000 });
    const r = await d.client.request('completion:request', { prompt, session_id: 'tight', max_tokens: 100 });
    expect(r.text).toContain('echo:');
    expect(api.requests.filter((q) => q.path === '/v1/messages/count_tokens')).toHaveLength(1);
    expect(events.filter((e) => e.event === 'budget:exceeded')).toHaveLength(0); // the first, loose try is silent
  });
});

describe('warnings', () => {
  it('emits budget:warning at 50/75/90 % once each, and budget:exceeded at 100 %', async () => {
    await d.client.request('budget:set', { scope: 'agent', id: 'warned', limit_usd: 0.001 });
    const spend = async (id: string, out: number) => {
      await d.client.request('budget:reserve', {
        request_id: id,
        model: 'test-model',
        input_tokens: 0,
        max_tokens: out,
        agent_id: 'warned',
      });
      await d.client.request('budget:commit', { request_id: id, usage: usage(0, out) });
    };
    await spend('w1', 260); // 52 %
    await spend('w2', 120); // 76 %
    await spend('w3', 10); // 78 %: nothing new
    await spend('w4', 100); // 98 %
    await spend('w5', 10); // 100 %
    const warnings = events.filter((e) => e.event === 'budget:warning' && e.data.id === 'warned');
    expect(warnings.map((w) => w.data.threshold)).toEqual([50, 75, 90]);
    for (const w of warnings) warningEvent.parse(w.data);
    const exceeded = events.filter((e) => e.event === 'budget:exceeded' && e.data.id === 'warned');
    expect(exceeded.map((e) => e.data.reason)).toEqual(['limit_reached']);
  });
});

describe('ledger', () => {
  it('is filterable and paginated, newest first', async () => {
    for (let i = 0; i < 7; i++) {
      await d.client.request('budget:reserve', {
        request_id: `lg-${i}`,
        model: 'my-model',
        input_tokens: 10,
        max_tokens: 10,
        session_id: 'ledger-s',
      });
      await d.client.request('budget:commit', { request_id: `lg-${i}`, usage: usage(10, 10) });
    }
    const p1 = (await d.client.request<Record<string, unknown>>('budget:ledger', {
      session_id: 'ledger-s',
      kind: 'commit',
      limit: 5,
    })) as { entries: Array<Record<string, unknown>>; next_cursor: number | null };
    expect(p1.entries.map((e) => e.request_id)).toEqual(['lg-6', 'lg-5', 'lg-4', 'lg-3', 'lg-2']);
    expect(p1.entries[0]).toMatchObject({
      kind: 'commit',
      model: 'my-model',
      input_tokens: 10,
      output_tokens: 10,
      usd: 0.0003,
      estimated: false,
    });
    const p2 = (await d.client.request<Record<string, unknown>>('budget:ledger', {
      session_id: 'ledger-s',
      kind: 'commit',
      limit: 5,
      cursor: p1.next_cursor,
    })) as { entries: Array<Record<string, unknown>>; next_cursor: number | null };
    expect(p2.entries.map((e) => e.request_id)).toEqual(['lg-1', 'lg-0']);
    expect(p2.next_cursor).toBeNull();
    const one = (await d.client.request('budget:ledger', { request_id: 'lg-3' })) as {
      entries: Array<Record<string, unknown>>;
    };
    expect(one.entries.map((e) => e.kind)).toEqual(['commit', 'reserve']);
  });
});

describe('durability', () => {
  it('the ledger and limits survive a restart; a reservation lost in a crash is reconciled at start', async () => {
    await d.client.request('budget:set', { scope: 'agent', id: 'durable', limit_usd: 5 });
    await d.client.request('budget:reserve', {
      request_id: 'dur-1',
      model: 'test-model',
      input_tokens: 0,
      max_tokens: 500,
      agent_id: 'durable',
    });
    await d.client.request('budget:commit', { request_id: 'dur-1', usage: usage(0, 500) });
    api.setHandler(() => ({ kind: 'hang' }));
    await d.client.request('completion:async', {
      prompt: 'lost',
      request_id: 'dur-lost',
      agent_id: 'durable',
      max_tokens: 1000,
    });
    await waitFor(() => api.inFlight() === 1, 5000);
    const [held] = await status({ scope: 'agent', id: 'durable' });
    expect(held!.reserved_usd).toBeGreaterThan(0);
    await d.kill('SIGKILL');
    api.setHandler(() => ({ text: 'again', usage: { output_tokens: 1 } }));
    d = await startDaemon({
      readyTimeoutMs: 90_000,
      home,
      env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: 'test' },
      config: testConfig({
        completion: { max_concurrency: 50 },
        budget: { prices: { 'test-model': { input: 1, output: 2 }, 'my-model': { input: 10, output: 20 } } },
      }),
    });
    await waitFor(
      async () => (await d.client.request('completion:status', { request_id: 'dur-lost' })).status === 'completed',
      10_000,
    );
    const [after] = await status({ scope: 'agent', id: 'durable' });
    expect(after!.limit_usd).toBe(5);
    expect(after!.reserved_usd).toBe(0);
    const led = (await d.client.request<Record<string, unknown>>('budget:ledger', { request_id: 'dur-lost' })) as {
      entries: Array<{ kind: string; attempt: number; estimated: boolean; reason: string | null }>;
    };
    // attempt 1 was lost with the process; the call runs once more, so its reservation is released and
    // attempt 2's settlement is the one charge
    expect(led.entries.map((e) => [e.kind, e.attempt])).toEqual([
      ['commit', 2],
      ['reserve', 2],
      ['release', 1],
      ['reserve', 1],
    ]);
    expect(led.entries[2]).toMatchObject({ estimated: false, reason: 'daemon_restart_retried' });
    const [dur1] = (
      (await d.client.request<Record<string, unknown>>('budget:ledger', { request_id: 'dur-1', kind: 'commit' })) as {
        entries: Array<{ usd: number }>;
      }
    ).entries;
    expect(dur1!.usd).toBeCloseTo(0.001, 9);
  }, 180_000);
});
