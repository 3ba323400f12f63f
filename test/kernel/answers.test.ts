/**
 * Answers speak one language: every time is Unix seconds as a float (the wire protocol's
 * `timestamp`), every dollar amount is rounded to the nano-dollar, aliases are priced like the
 * model they stand for, and a terminated agent can be deleted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { dockerReason } from '../sandbox/docker-env.js';
import { errorOf } from '../helpers/events.js';
import { roundUsd } from '../../client/units.js';

let api: MessagesApiServer;
let d: DaemonHandle;

beforeAll(async () => {
  api = await startMessagesApiServer();
  d = await startDaemon({
    env: { ANTHROPIC_API_KEY: 'sk-ant-answers', ANTHROPIC_BASE_URL: api.url },
    // Prices that make float sums noisy: $0.7/M in, $3.3/M out.
    config:
      'daemon:\n  disabled_plugins: [bridge]\nbudget:\n  prices:\n    odd-model: {input: 0.7, output: 3.3}\nsandbox:\n  pool_size: 0\nagent:\n  watch_profiles: false\n',
  });
}, 120_000);

afterAll(async () => {
  await d?.kill('SIGTERM');
  await api?.close();
});

// Bare `created`, `finished`, ... are times too (the trace plugin's names).
const TIME_KEY =
  /(_at|^ts|^since|^until|^last_seen|^timestamp|^created|^updated|^started|^finished|^last_used|^saved)$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;

/** Every place in an answer that breaks the conventions, as `path: value`. */
function violations(v: unknown, at = ''): string[] {
  if (typeof v === 'string') return ISO.test(v) ? [`${at}: ISO time ${v}`] : [];
  if (Array.isArray(v)) return v.flatMap((x, i) => violations(x, `${at}.${i}`));
  if (v === null || typeof v !== 'object') return [];
  const out: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    const p = `${at}.${k}`;
    if (typeof x === 'number') {
      // 1e9 s is 2001, 1e10 s is 2286: epoch milliseconds fall far outside.
      if (TIME_KEY.test(k) && (x < 1e9 || x > 1e10)) out.push(`${p}: not Unix seconds ${x}`);
      if (k.endsWith('_usd') && x !== roundUsd(x)) out.push(`${p}: not rounded to the nano-dollar ${x}`);
    }
    out.push(...violations(x, p));
  }
  return out;
}

describe('answers', () => {
  it('carry times as Unix seconds and money rounded to the nano-dollar, in every plugin', async () => {
    const c = d.client;
    const answers: Record<string, unknown> = {};
    const ask = async (event: string, data: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
      const r = await c.request(event, data, { timeoutMs: 60_000 });
      answers[`${event} ${JSON.stringify(data)}`] = r;
      return r;
    };
    await ask('completion:request', { prompt: 'hi', model: 'odd-model', session_id: 's1', request_id: 'r1' });
    await ask('completion:status', { request_id: 'r1' });
    const list = await ask('conversation:list', { limit: 1 });
    await ask('conversation:get', { session_id: 's1' });
    await ask('budget:set', { scope: 'global', limit_usd: 5, period: 'daily' });
    await ask('budget:status', {});
    await ask('budget:ledger', {});
    await ask('budget:reserve', { request_id: 'x1', model: 'odd-model', input_tokens: 10, max_tokens: 10 });
    await ask('agent:spawn', { agent_id: 'a1', model: 'odd-model' });
    // Several turns, so the agent's spend is a sum of float costs.
    for (const m of ['one', 'two two', 'three three three']) await ask('agent:send', { agent_id: 'a1', message: m });
    await ask('agent:list', {});
    await ask('agent:info', { agent_id: 'a1' });
    // A goal turn is recorded as a trace; a workflow run with a goal too.
    const goalTurn = await ask('agent:send', {
      agent_id: 'a1',
      message: 'four',
      goal: 'Answer the user with a number',
    });
    await ask('workflow:start', {
      run_id: 'w1',
      definition: { name: 'pinger', steps: [{ id: 'p', event: 'system:ping' }] },
      goal: 'Ping the daemon once',
      wait: true,
    });
    await ask('workflow:status', { run_id: 'w1' });
    await ask('workflow:runs', {});
    await ask('workflow:list', {});
    const traces = await ask('trace:list', {});
    for (const t of traces.traces as Array<{ trace_id: string }>)
      await ask('trace:get', { trace_id: t.trace_id, steps: true });
    await ask('trace:run', { run_id: 'w1', wait: true });
    await ask('trace:runs', {});
    const turnTrace = goalTurn.trace as { run_id?: string } | undefined;
    if (turnTrace?.run_id) await ask('trace:run', { run_id: turnTrace.run_id });
    await ask('checkpoint:save', { label: 'answers' });
    const full = await ask('checkpoint:save', { label: 'answers-full', scope: 'full' });
    await ask('checkpoint:diff', { from: full.checkpoint_id as number });
    await ask('checkpoint:list', {});
    await ask('checkpoint:status', {});
    await ask('mcp:servers', {});
    await ask('gateway:status', {});
    await ask('plugin:list', {});
    await ask('sandbox:status', {});
    if (!dockerReason) {
      await ask('sandbox:create', { session_id: 'sb1' });
      await ask('sandbox:list', {});
      await ask('sandbox:destroy', { session_id: 'sb1' });
    }
    const events = await c.request<{ events: Array<{ event: string; data: unknown; timestamp: number }> }>(
      'monitor:events',
      { limit: 10_000 },
    );
    answers['emitted events'] = events.events.map((e) => ({ [e.event]: e.data, timestamp: e.timestamp }));
    expect(Object.entries(answers).flatMap(([k, v]) => violations(v, k))).toEqual([]);

    // A time given back as input is understood in the same unit.
    const conv = (list.conversations as Array<{ updated_at: number }>)[0]!;
    const page = await c.request<{ conversations: unknown[] }>('conversation:list', { before: conv.updated_at });
    expect(page.conversations).toEqual([]);
    const since = await c.request<{ entries: unknown[] }>('budget:ledger', { since: Date.now() / 1000 + 60 });
    expect(since.entries).toEqual([]);
    const until = await c.request<{ entries: unknown[] }>('budget:ledger', { until: Date.now() / 1000 + 60 });
    expect(until.entries.length).toBeGreaterThan(0);
  }, 180_000);

  it('price an alias as the model it stands for', async () => {
    const r = await d.client.request<{ prices: Record<string, { input: number }>; alias: Record<string, string> }>(
      'budget:prices',
      { model: 'haiku' },
    );
    const { aliases } = await d.client.request<{ aliases: Record<string, { model: string }> }>('completion:models');
    expect(r.alias).toEqual({ haiku: aliases.haiku!.model });
    expect(r.prices[aliases.haiku!.model]!.input).toBeGreaterThan(0);
    expect(await errorOf(d.client.request('budget:prices', { model: 'no-such-model' }))).toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('keep the all-time global total in budget:status once a global limit of another period is set', async () => {
    await d.client.request('budget:set', { scope: 'global', limit_usd: 5, period: 'daily' });
    const { scopes } = await d.client.request<{
      scopes: Array<{ scope: string; period: string; limit_usd: number | null; spent_usd: number }>;
    }>('budget:status', {});
    const global = scopes.filter((s) => s.scope === 'global');
    expect(global.map((s) => s.period).sort()).toEqual(['daily', 'total']);
    expect(global.find((s) => s.period === 'total')!.limit_usd).toBeNull();
  });
});

describe('agent:delete and agent:prune', () => {
  it('delete a terminated agent with its history; a live one is CONFLICT', async () => {
    const c = d.client;
    await c.request('agent:spawn', { agent_id: 'gone', model: 'odd-model' });
    await c.request('agent:send', { agent_id: 'gone', message: 'hello' }, { timeoutMs: 60_000 });
    expect(await errorOf(c.request('agent:delete', { agent_id: 'gone' }))).toMatchObject({ code: 'CONFLICT' });
    await c.request('agent:terminate', { agent_id: 'gone' });
    const r = await c.request('agent:delete', { agent_id: 'gone' });
    expect(r).toEqual({ agent_id: 'gone', deleted: true, messages: 2, turns: 1 });
    expect(await errorOf(c.request('agent:info', { agent_id: 'gone' }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(await errorOf(c.request('agent:delete', { agent_id: 'gone' }))).toMatchObject({ code: 'NOT_FOUND' });
    // The name is free again.
    await c.request('agent:spawn', { agent_id: 'gone', model: 'odd-model' });
    expect((await c.request<{ usage: { turns: number } }>('agent:info', { agent_id: 'gone' })).usage.turns).toBe(0);
  }, 120_000);

  it('prune every terminated agent, keeping a parent whose children live', async () => {
    const c = d.client;
    await c.request('agent:spawn', { agent_id: 'p1', model: 'odd-model' });
    await c.request('agent:spawn', { agent_id: 'p2', model: 'odd-model' });
    await c.request('agent:spawn', { agent_id: 'parent', model: 'odd-model' });
    await c.request('agent:spawn', { agent_id: 'child', model: 'odd-model', parent_id: 'parent' });
    for (const id of ['p1', 'p2', 'parent']) await c.request('agent:terminate', { agent_id: id });
    const r = await c.request<{ deleted: string[]; kept: Array<{ agent_id: string; reason: string }> }>(
      'agent:prune',
      {},
    );
    expect(r.deleted).toEqual(expect.arrayContaining(['p1', 'p2']));
    expect(r.kept).toEqual([{ agent_id: 'parent', reason: expect.stringMatching(/live children/) }]);
    const live = await c.request<{ agents: Array<{ agent_id: string }> }>('agent:list', { status: 'terminated' });
    expect(live.agents.map((a) => a.agent_id)).toEqual(['parent']);
  }, 120_000);
});
