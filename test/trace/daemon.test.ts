/**
 * Learned traces in a real daemon, the model side against the local Messages API server: a goal
 * learned, then followed with no Messages API call and nothing in the budget ledger; a paraphrase
 * followed; follow without a trace; traces and their counters surviving a restart. The sandbox case
 * (a replayed step that now fails falls back to the model and repairs the trace) is in sandbox.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { codeOf } from '../helpers/events.js';
import { KEY, workflowConfig } from '../workflow/helpers.js';
import { traceModel, type Task } from './model.js';

const PRIMES: Task = {
  tools: ['kg_add'],
  message: 'Count the prime numbers below 100 and record the count in the graph as node primes-100.',
  call: {
    name: 'kg_add',
    input: {
      nodes: [
        { id: 'primes-100', label: 'Finding', properties: { statement: 'there are 25 primes below 100', count: 25 } },
      ],
    },
  },
  answer: 'There are 25 prime numbers below 100; recorded as node primes-100.',
};

let api: MessagesApiServer;
let d: DaemonHandle;
const home = tempHome('agentd-trace-daemon-');

const boot = (): Promise<DaemonHandle> =>
  startDaemon({
    home,
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: workflowConfig(),
    readyTimeoutMs: 60_000,
  });

/** Forget the requests seen so far (reset also drops the handler, so it is set again). */
function fresh(): void {
  api.reset();
  api.setHandler(traceModel((s) => (/prime/i.test(s) ? PRIMES : undefined)));
}

beforeAll(async () => {
  api = await startMessagesApiServer();
  fresh();
  d = await boot();
}, 90_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

interface GoalAnswer {
  run_id: string;
  mode: string;
  status: string;
  cost_usd: number;
  saved_usd: number | null;
  trace_id: string | null;
  match: string | null;
  score: number | null;
  outputs: Record<string, { reply?: string; cost_usd?: number }>;
}

const runGoal = (goal: string, extra: Record<string, unknown> = {}): Promise<GoalAnswer> =>
  d.client.request<GoalAnswer>('workflow:run_goal', { goal, ...extra }, { timeoutMs: 120_000 });

/** What the budget ledger holds for a run's scope. */
async function spentBy(runId: string): Promise<{ entries: number; spent: number }> {
  const ledger = await d.client.request<{ entries: unknown[] }>('budget:ledger', { workflow_id: runId, limit: 100 });
  const st = await d.client.request<{ scopes: Array<{ spent_usd: number }> }>('budget:status', {
    scope: 'workflow',
    id: runId,
  });
  return { entries: ledger.entries.length, spent: st.scopes[0]?.spent_usd ?? 0 };
}

describe('learned traces', () => {
  let learned: GoalAnswer;

  it('learns a goal: the planner plans, the agent calls its tool, and the run is kept as a trace', async () => {
    fresh();
    learned = await runGoal('Count the prime numbers below 100');
    expect(learned).toMatchObject({ mode: 'learn', status: 'succeeded' });
    expect(learned.cost_usd).toBeGreaterThan(0);
    // The planner once, the agent twice (the tool call, then the answer).
    expect(api.messageRequests()).toHaveLength(3);
    const t = await d.client.request<{
      goal: string;
      usage_count: number;
      success_rate: number;
      recorded: Array<{
        step: string;
        kind: string;
        complete: boolean;
        events: Array<{ event: string; data: unknown; result: unknown }>;
      }>;
    }>('trace:get', { trace_id: learned.trace_id });
    expect(t).toMatchObject({ goal: 'Count the prime numbers below 100', usage_count: 0, success_rate: 1 });
    expect(t.recorded).toHaveLength(1);
    expect(t.recorded[0]).toMatchObject({ step: 'work', kind: 'agent', complete: true });
    expect(t.recorded[0]!.events.map((e) => e.event)).toEqual(['kg:add_nodes']);
    expect(t.recorded[0]!.events[0]!.data).toMatchObject({ nodes: [{ id: 'primes-100', label: 'Finding' }] });
  });

  it('follows the same goal with no Messages API call and nothing spent, replaying the recorded events', async () => {
    await d.client.request('kg:delete', { id: 'primes-100', detach: true });
    fresh();
    const followed = await runGoal('count the prime numbers below 100.');
    expect(followed).toMatchObject({
      mode: 'follow',
      status: 'succeeded',
      trace_id: learned.trace_id,
      match: 'exact',
      cost_usd: 0,
    });
    expect(followed.saved_usd).toBeCloseTo(learned.cost_usd, 9);
    expect(followed.outputs.work).toMatchObject({ reply: PRIMES.answer, cost_usd: 0 });
    // The server saw nothing; the ledger holds nothing for the run.
    expect(api.messageRequests()).toHaveLength(0);
    expect(await spentBy(followed.run_id)).toEqual({ entries: 0, spent: 0 });
    // The recorded kg:add_nodes was replayed: the node is back.
    const node = await d.client.request<{ node: { properties: { count: number } } }>('kg:get', { id: 'primes-100' });
    expect(node.node.properties.count).toBe(25);
    const runs = await d.client.request<{ runs: Array<{ run_id: string; source: string }> }>('workflow:runs', {
      limit: 5,
    });
    expect(runs.runs.find((r) => r.run_id === followed.run_id)?.source).toBe('follow');
  });

  it('follows a paraphrase of the goal (a similar match above the threshold)', async () => {
    fresh();
    const followed = await runGoal('How many primes are there under 100?');
    expect(followed).toMatchObject({
      mode: 'follow',
      status: 'succeeded',
      trace_id: learned.trace_id,
      match: 'similar',
      cost_usd: 0,
    });
    expect(followed.score).toBeGreaterThanOrEqual(0.75);
    expect(api.messageRequests()).toHaveLength(0);
  });

  it('does not follow a goal that differs in a number; follow without a trace is NOT_FOUND', async () => {
    const found = await d.client.request<{ matches: unknown[] }>('trace:find', {
      goal: 'Count the prime numbers below 1000',
    });
    expect(found.matches).toEqual([]);
    fresh();
    expect(await codeOf(runGoal('Translate "good morning" into French', { mode: 'follow' }))).toBe('NOT_FOUND');
    expect(api.messageRequests()).toHaveLength(0);
  });

  it('keeps traces and their counters across a restart, and follows after it', async () => {
    await d.stop();
    d = await boot();
    const list = await d.client.request<{
      traces: Array<{
        trace_id: string;
        usage_count: number;
        success_rate: number;
        last_used: number;
        created: number;
      }>;
    }>('trace:list', {});
    const t = list.traces.find((x) => x.trace_id === learned.trace_id)!;
    expect(t).toMatchObject({ usage_count: 2, success_rate: 1 });
    expect(t.last_used).toBeGreaterThanOrEqual(t.created);
    fresh();
    const followed = await runGoal('Count the prime numbers below 100');
    expect(followed).toMatchObject({ mode: 'follow', status: 'succeeded', cost_usd: 0 });
    expect(api.messageRequests()).toHaveLength(0);
    const runs = await d.client.request<{ runs: Array<{ run_id: string; mode: string; saved_usd: number }> }>(
      'trace:runs',
      {},
    );
    expect(runs.runs.filter((r) => r.mode === 'follow')).toHaveLength(3);
    expect(runs.runs.filter((r) => r.mode === 'learn')).toHaveLength(1);
  });

  it('learn mode learns again even with a trace, and trace:delete forgets it', async () => {
    fresh();
    const again = await runGoal('Count the prime numbers below 100', { mode: 'learn' });
    expect(again).toMatchObject({ mode: 'learn', status: 'succeeded', trace_id: learned.trace_id });
    expect(api.messageRequests()).toHaveLength(3);
    const t = await d.client.request<{ version: number }>('trace:get', { trace_id: learned.trace_id, steps: false });
    expect(t.version).toBe(2);
    await d.client.request<Record<string, unknown>>('trace:delete', { trace_id: learned.trace_id });
    expect(await codeOf(d.client.request<Record<string, unknown>>('trace:get', { trace_id: learned.trace_id }))).toBe(
      'NOT_FOUND',
    );
    expect(await codeOf(runGoal('Count the prime numbers below 100', { mode: 'follow' }))).toBe('NOT_FOUND');
  });
});
