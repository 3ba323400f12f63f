/**
 * Traces beyond workflow:run_goal, in a real daemon against the local Messages API server:
 * workflow:plan answers a goal's trace with no model call (and with start follows it); a
 * workflow:start run given a goal, and a workflow:plan run, are learned; an agent turn given a goal
 * (agent:send {goal}) is learned as a one-step trace, which another agent's turn and
 * workflow:run_goal follow with no model call and $0; a followed turn whose replayed event now fails
 * falls back to the model, and the repaired trace is then followed for free.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { codeOf } from '../helpers/events.js';
import { KEY, workflowConfig } from '../workflow/helpers.js';
import { SOLVER_SYSTEM, traceModel, type Task } from './model.js';

const PRIMES: Task = {
  tools: ['kg_add'],
  message: 'Count the prime numbers below 100 and record the count in the graph as node primes-100.',
  call: { name: 'kg_add', input: { nodes: [{ id: 'primes-100', label: 'Finding', properties: { count: 25 } }] } },
  answer: 'There are 25 prime numbers below 100; recorded as node primes-100.',
};
const FIBS: Task = {
  tools: ['kg_add'],
  message: 'Find the tenth Fibonacci number and record it in the graph as node fib-10.',
  call: { name: 'kg_add', input: { nodes: [{ id: 'fib-10', label: 'Finding', properties: { value: 55 } }] } },
  answer: 'The tenth Fibonacci number is 55; recorded as node fib-10.',
};
const SQUARE: Task = {
  tools: ['kg_add'],
  message: 'Record the square of the number in the graph as node square.',
  call: { name: 'kg_add', input: { nodes: [{ id: 'square-12', label: 'Finding', properties: { value: 144 } }] } },
  answer: 'Recorded the square as node square-12.',
};
const CUBE: Task = {
  tools: ['kg_add'],
  message: 'Compute the cube of 3 and record it in the graph as node cube-3.',
  call: { name: 'kg_add', input: { nodes: [{ id: 'cube-3', label: 'Finding', properties: { value: 27 } }] } },
  answer: 'The cube of 3 is 27; recorded as node cube-3.',
};
/** Links two nodes; when the link fails on a replay, the fallback creates the missing node first. */
const LINK: Task = {
  tools: ['kg_add'],
  message: 'Link the node cube-3 to the node number-3 in the graph.',
  call: { name: 'kg_add', input: { edges: [{ from: 'cube-3', to: 'number-3', type: 'DERIVED_FROM' }] } },
  repair: {
    name: 'kg_add',
    input: {
      nodes: [{ id: 'number-3', label: 'Concept', properties: { value: 3 } }],
      edges: [{ from: 'cube-3', to: 'number-3', type: 'DERIVED_FROM' }],
    },
  },
  answer: 'cube-3 is linked to number-3.',
};

const POWER: Task = {
  tools: ['kg_add'],
  message: 'Compute 2 to the power of 10 and record it in the graph as node pow-2-10.',
  call: { name: 'kg_add', input: { nodes: [{ id: 'pow-2-10', label: 'Finding', properties: { value: 1024 } }] } },
  answer: '2 to the power of 10 is 1024; recorded as node pow-2-10.',
};

const tasks = (s: string): Task | undefined => {
  if (/power/i.test(s)) return POWER;
  if (/link/i.test(s)) return LINK;
  if (/prime/i.test(s)) return PRIMES;
  if (/fibonacci/i.test(s)) return FIBS;
  if (/square/i.test(s)) return SQUARE;
  if (/cube/i.test(s)) return CUBE;
  return undefined;
};

let api: MessagesApiServer;
let d: DaemonHandle;
const home = tempHome('agentd-trace-goals-');

function fresh(): void {
  api.reset();
  api.setHandler(traceModel(tasks));
}

const boot = (): Promise<DaemonHandle> =>
  startDaemon({
    home,
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: workflowConfig(),
    readyTimeoutMs: 60_000,
  });

beforeAll(async () => {
  api = await startMessagesApiServer();
  fresh();
  d = await boot();
}, 90_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

const req = <T = Record<string, unknown>>(event: string, data: Record<string, unknown>): Promise<T> =>
  d.client.request<T>(event, data, { timeoutMs: 120_000 });

/** What the budget ledger holds for a workflow run, or for an agent. */
async function ledger(q: { workflow_id: string } | { agent_id: string }): Promise<{ entries: number; spent: number }> {
  const l = await req<{ entries: unknown[] }>('budget:ledger', { ...q, limit: 100 });
  if ('agent_id' in q) return { entries: l.entries.length, spent: 0 };
  const st = await req<{ scopes: Array<{ spent_usd: number }> }>('budget:status', {
    scope: 'workflow',
    id: q.workflow_id,
  });
  return { entries: l.entries.length, spent: st.scopes[0]?.spent_usd ?? 0 };
}

interface TraceView {
  trace_id: string;
  version: number;
  inputs: Record<string, unknown>;
  plan: { steps: Array<{ id: string; agent?: Record<string, unknown> }> };
  repairs: number;
  recorded: Array<{
    step: string;
    events: Array<{ event: string; error?: { code: string } }>;
    output: { reply?: string };
  }>;
}

describe('workflow:plan consults traces', () => {
  let traceId: string;

  it("answers the plan of a similar goal's trace with no model call, saying which trace and its score", async () => {
    fresh();
    const learned = await req<{ trace_id: string; mode: string }>('workflow:run_goal', {
      goal: 'Count the prime numbers below 100',
    });
    expect(learned.mode).toBe('learn');
    traceId = learned.trace_id;
    const t = await req<TraceView>('trace:get', { trace_id: traceId, steps: false });

    fresh();
    const plan = await req<{
      definition: unknown;
      attempts: number;
      from_trace: { trace_id: string; match: string; score: number; version: number };
    }>('workflow:plan', { goal: 'How many primes are there under 100?' });
    expect(plan.from_trace).toMatchObject({ trace_id: traceId, match: 'similar', version: 1 });
    expect(plan.from_trace.score).toBeGreaterThanOrEqual(0.75);
    expect(plan.attempts).toBe(0);
    expect(plan.definition).toEqual(t.plan);
    expect(api.messageRequests()).toHaveLength(0);
  });

  it('with start, follows the trace: no Messages API call and nothing in the ledger', async () => {
    await req('kg:delete', { id: 'primes-100', detach: true });
    fresh();
    const run = await req<{
      run_id: string;
      status: string;
      outputs: { work: { reply: string; replayed: boolean; cost_usd: number } };
      cost_usd: number;
      from_trace: { trace_id: string };
    }>('workflow:plan', {
      goal: 'count the prime numbers below 100.',
      start: true,
      wait: true,
    });
    expect(run).toMatchObject({ status: 'succeeded', cost_usd: 0, from_trace: { trace_id: traceId } });
    expect(run.outputs.work).toMatchObject({ reply: PRIMES.answer, replayed: true, cost_usd: 0 });
    expect(api.messageRequests()).toHaveLength(0);
    expect(await ledger({ workflow_id: run.run_id })).toEqual({ entries: 0, spent: 0 });
    // The recorded graph write was replayed.
    expect(
      (await req<{ node: { properties: { count: number } } }>('kg:get', { id: 'primes-100' })).node.properties.count,
    ).toBe(25);
    const g = await req<{ mode: string; origin: string; trace_id: string; saved_usd: number }>('trace:run', {
      run_id: run.run_id,
      wait: true,
    });
    expect(g).toMatchObject({ mode: 'follow', origin: 'plan', trace_id: traceId });
    expect(g.saved_usd).toBeGreaterThan(0);
  });

  it('mode learn forces the planner; mode follow without a trace is NOT_FOUND', async () => {
    fresh();
    const plan = await req<{ from_trace: unknown; attempts: number }>('workflow:plan', {
      goal: 'Count the prime numbers below 100',
      mode: 'learn',
    });
    expect(plan).toMatchObject({ from_trace: null, attempts: 1 });
    expect(api.messageRequests()).toHaveLength(1);
    fresh();
    expect(await codeOf(req('workflow:plan', { goal: 'Translate "good morning" into French', mode: 'follow' }))).toBe(
      'NOT_FOUND',
    );
    expect(api.messageRequests()).toHaveLength(0);
  });

  it('a planned run started by workflow:plan is learned, and the goal is then followed', async () => {
    fresh();
    const run = await req<{ run_id: string; status: string; from_trace: unknown }>('workflow:plan', {
      goal: 'Find the tenth Fibonacci number',
      start: true,
      wait: true,
    });
    expect(run).toMatchObject({ status: 'succeeded', from_trace: null });
    expect(api.messageRequests()).toHaveLength(3);
    const g = await req<{ mode: string; origin: string; learned: boolean; trace_id: string }>('trace:run', {
      run_id: run.run_id,
      wait: true,
    });
    expect(g).toMatchObject({ mode: 'learn', origin: 'plan', learned: true });

    fresh();
    const followed = await req<{ mode: string; status: string; cost_usd: number; trace_id: string }>(
      'workflow:run_goal',
      { goal: 'find the tenth fibonacci number' },
    );
    expect(followed).toMatchObject({ mode: 'follow', status: 'succeeded', cost_usd: 0, trace_id: g.trace_id });
    expect(api.messageRequests()).toHaveLength(0);
  });
});

describe('workflow:start with a goal', () => {
  const definition = {
    name: 'square',
    inputs: { n: { type: 'integer', required: true } },
    steps: [
      {
        id: 'work',
        agent: {
          model: 'test-model',
          system: SOLVER_SYSTEM,
          tools: ['kg_add'],
          message: 'Record the square of the number in the graph as node square. The number: {{ inputs.n }}',
        },
      },
    ],
  };
  const GOAL = 'Record the square of 12 in the graph';

  it("is recorded with its inputs and becomes the goal's trace, which run_goal follows with those inputs for free", async () => {
    fresh();
    const run = await req<{ run_id: string; status: string }>('workflow:start', {
      definition,
      inputs: { n: 12 },
      goal: GOAL,
      wait: true,
    });
    expect(run.status).toBe('succeeded');
    expect(api.messageRequests()).toHaveLength(2);
    const g = await req<{ mode: string; origin: string; learned: boolean; trace_id: string }>('trace:run', {
      run_id: run.run_id,
      wait: true,
    });
    expect(g).toMatchObject({ mode: 'learn', origin: 'start', learned: true });
    const t = await req<TraceView>('trace:get', { trace_id: g.trace_id });
    expect(t.inputs).toEqual({ n: 12 });
    expect(t.recorded[0]!.events.map((e) => e.event)).toEqual(['kg:add_nodes']);

    fresh();
    const followed = await req<{ run_id: string; mode: string; status: string; cost_usd: number }>(
      'workflow:run_goal',
      { goal: GOAL },
    );
    expect(followed).toMatchObject({ mode: 'follow', status: 'succeeded', cost_usd: 0 });
    expect(api.messageRequests()).toHaveLength(0);
    const st = await req<{ inputs: Record<string, unknown> }>('workflow:status', { run_id: followed.run_id });
    expect(st.inputs).toEqual({ n: 12 });
  });

  it('workflow:plan with other inputs does not follow it (the trace was learned with n = 12)', async () => {
    fresh();
    const plan = await req<{ from_trace: unknown }>('workflow:plan', { goal: GOAL, inputs: { n: 13 } });
    expect(plan.from_trace).toBeNull();
    expect(api.messageRequests()).toHaveLength(1);
    fresh();
    const same = await req<{ from_trace: { match: string } }>('workflow:plan', { goal: GOAL, inputs: { n: 12 } });
    expect(same.from_trace).toMatchObject({ match: 'exact' });
    expect(api.messageRequests()).toHaveLength(0);
  });
});

describe('an agent turn given a goal', () => {
  const spawn = (agentId: string): Promise<unknown> =>
    req('agent:spawn', { agent_id: agentId, model: 'test-model', system: SOLVER_SYSTEM, tools: ['kg_add'] });
  const GOAL = 'Compute the cube of 3 and record it in the graph';
  let traceId: string;

  it("is learned as a one-step trace: the agent's spec and message, its tool calls' events, its reply", async () => {
    await spawn('cube-learner');
    fresh();
    const r = await req<{ turn_id: string; reply: string; cost_usd: number; trace: { mode: string } }>('agent:send', {
      agent_id: 'cube-learner',
      message: CUBE.message,
      goal: GOAL,
    });
    expect(r).toMatchObject({ reply: CUBE.answer, trace: { mode: 'learn' } });
    expect(api.messageRequests()).toHaveLength(2);
    const g = await req<{
      kind: string;
      mode: string;
      origin: string;
      learned: boolean;
      trace_id: string;
      cost_usd: number;
    }>('trace:run', { run_id: r.turn_id, wait: true });
    expect(g).toMatchObject({ kind: 'turn', mode: 'learn', origin: 'send', learned: true });
    expect(g.cost_usd).toBeCloseTo(r.cost_usd, 9);
    traceId = g.trace_id;
    const t = await req<TraceView>('trace:get', { trace_id: traceId });
    expect(t.plan.steps).toEqual([
      { id: 'turn', agent: { model: 'test-model', system: SOLVER_SYSTEM, tools: ['kg_add'], message: CUBE.message } },
    ]);
    expect(t.recorded).toHaveLength(1);
    expect(t.recorded[0]!.events.map((e) => e.event)).toEqual(['kg:add_nodes']);
    expect(t.recorded[0]!.output.reply).toBe(CUBE.answer);
  });

  it("another agent's turn with the goal in other words replays it: no Messages API call, $0, the recorded reply", async () => {
    await req('kg:delete', { id: 'cube-3', detach: true });
    await spawn('cube-follower');
    fresh();
    const r = await req<{
      turn_id: string;
      reply: string;
      cost_usd: number;
      steps: number;
      trace: Record<string, unknown>;
    }>('agent:send', {
      agent_id: 'cube-follower',
      message: 'What is 3 cubed? Put it in the graph.',
      goal: 'compute the cube of 3, and record it in the graph.',
    });
    expect(r).toMatchObject({
      reply: CUBE.answer,
      cost_usd: 0,
      steps: 0,
      trace: { mode: 'follow', replayed: true, trace_id: traceId, match: 'exact', events: 1 },
    });
    expect(api.messageRequests()).toHaveLength(0);
    expect(await ledger({ agent_id: 'cube-follower' })).toMatchObject({ entries: 0 });
    expect(
      (await req<{ node: { properties: { value: number } } }>('kg:get', { id: 'cube-3' })).node.properties.value,
    ).toBe(27);
    // The agent's history holds the exchange like any other turn's.
    const info = await req<{ history: Array<{ role: string; content: unknown }> }>('agent:info', {
      agent_id: 'cube-follower',
    });
    expect(info.history.map((m) => m.role)).toEqual(['user', 'assistant']);
    const g = await req<{ mode: string; status: string; saved_usd: number }>('trace:run', {
      run_id: r.turn_id,
      wait: true,
    });
    expect(g).toMatchObject({ mode: 'follow', status: 'succeeded' });
    expect(g.saved_usd).toBeGreaterThan(0);
    const list = await req<{ traces: Array<{ trace_id: string; usage_count: number }> }>('trace:list', {});
    expect(list.traces.find((x) => x.trace_id === traceId)?.usage_count).toBe(1);
  });

  it("workflow:run_goal follows the turn's trace for free", async () => {
    fresh();
    const r = await req<{
      run_id: string;
      mode: string;
      status: string;
      cost_usd: number;
      outputs: { turn: { reply: string; replayed: boolean } };
    }>('workflow:run_goal', { goal: GOAL });
    expect(r).toMatchObject({
      mode: 'follow',
      status: 'succeeded',
      cost_usd: 0,
      outputs: { turn: { reply: CUBE.answer, replayed: true } },
    });
    expect(api.messageRequests()).toHaveLength(0);
    expect(await ledger({ workflow_id: r.run_id })).toEqual({ entries: 0, spent: 0 });
  });

  it('goal_mode learn asks the model even with a trace; goal_mode follow without a trace fails NOT_FOUND', async () => {
    await spawn('cube-relearner');
    fresh();
    const r = await req<{ trace: { mode: string } }>('agent:send', {
      agent_id: 'cube-relearner',
      message: CUBE.message,
      goal: GOAL,
      goal_mode: 'learn',
    });
    expect(r.trace.mode).toBe('learn');
    expect(api.messageRequests()).toHaveLength(2);
    fresh();
    expect(
      await codeOf(
        req('agent:send', {
          agent_id: 'cube-relearner',
          message: 'Say hello.',
          goal: 'Greet the user in Klingon',
          goal_mode: 'follow',
        }),
      ),
    ).toBe('NOT_FOUND');
    expect(api.messageRequests()).toHaveLength(0);
  });

  it('a followed turn whose replayed event now fails falls back to the model, and the repaired trace is followed for free', async () => {
    const LINK_GOAL = 'Link the cube-3 node to the number-3 node in the graph';
    await req('kg:add_nodes', { nodes: [{ id: 'number-3', label: 'Concept', properties: { value: 3 } }] });
    await spawn('link-learner');
    fresh();
    const learned = await req<{ turn_id: string }>('agent:send', {
      agent_id: 'link-learner',
      message: LINK.message,
      goal: LINK_GOAL,
    });
    const g = await req<{ trace_id: string }>('trace:run', { run_id: learned.turn_id, wait: true });
    const before = await req<TraceView>('trace:get', { trace_id: g.trace_id });
    expect(before.recorded[0]!.events.map((e) => e.event)).toEqual(['kg:add_edges']);

    // The world changes: number-3 is gone, so the recorded kg:add_edges now fails.
    await req('kg:delete', { id: 'number-3', detach: true });
    await spawn('link-follower');
    fresh();
    const r = await req<{
      turn_id: string;
      reply: string;
      cost_usd: number;
      trace: { mode: string; replayed: boolean; diverged: { at: number; reason: string } };
    }>('agent:send', {
      agent_id: 'link-follower',
      message: LINK.message,
      goal: LINK_GOAL,
    });
    expect(r.trace).toMatchObject({
      mode: 'follow',
      replayed: false,
      diverged: { at: 0, reason: expect.stringContaining('kg:add_edges failed with NOT_FOUND') },
    });
    expect(r.reply).toBe(LINK.answer);
    expect(r.cost_usd).toBeGreaterThan(0);
    // One model turn: the repairing tool call, then the answer; the model was told what was replayed.
    const calls = api.messageRequests();
    expect(calls).toHaveLength(2);
    expect(JSON.stringify(calls[0]!.body.messages)).toContain(
      "The last one's result differs from when the task was recorded",
    );
    const settled = await req<{ repaired: number; diverged: unknown[] }>('trace:run', {
      run_id: r.turn_id,
      wait: true,
    });
    expect(settled).toMatchObject({ repaired: 1, diverged: [{ step: 'turn', index: 0, at: 0 }] });
    const after = await req<TraceView>('trace:get', { trace_id: g.trace_id });
    expect(after).toMatchObject({ version: before.version + 1, repairs: 1 });
    expect(after.recorded[0]!.events.map((e) => [e.event, e.error?.code ?? null])).toEqual([
      ['kg:add_edges', 'NOT_FOUND'],
      ['kg:add_nodes', null],
      ['kg:add_edges', null],
    ]);

    // The repaired procedure, in the world it was repaired in: replayed with no model call.
    await req('kg:delete', { id: 'number-3', detach: true });
    await spawn('link-follower-2');
    fresh();
    const again = await req<{ reply: string; cost_usd: number; trace: { replayed: boolean } }>('agent:send', {
      agent_id: 'link-follower-2',
      message: LINK.message,
      goal: LINK_GOAL,
    });
    expect(again).toMatchObject({ reply: LINK.answer, cost_usd: 0, trace: { replayed: true } });
    expect(api.messageRequests()).toHaveLength(0);
    expect((await req<{ node: unknown }>('kg:get', { id: 'number-3' })).node).toBeTruthy();
  });
});

describe('an agent turn given a goal, across a restart', () => {
  it('is still recorded when the daemon is killed mid-turn, and learned once the resumed turn succeeds', async () => {
    await req('agent:spawn', {
      agent_id: 'power-learner',
      model: 'test-model',
      system: SOLVER_SYSTEM,
      tools: ['kg_add'],
    });
    api.reset();
    // The first model call never answers: the daemon is killed (-9) while the turn waits for it.
    api.setHandler(() => ({ kind: 'hang' }));
    const q = await req<{ turn_id: string }>('agent:send', {
      agent_id: 'power-learner',
      message: POWER.message,
      goal: 'Compute 2 to the power of 10',
      wait: false,
    });
    await vi.waitFor(() => expect(api.messageRequests().length).toBeGreaterThanOrEqual(1), { timeout: 30_000 });
    fresh();
    await d.kill('SIGKILL');
    d = await boot();
    const g = await req<{ kind: string; mode: string; learned: boolean; trace_id: string }>('trace:run', {
      run_id: q.turn_id,
      wait: true,
    });
    expect(g).toMatchObject({ kind: 'turn', mode: 'learn', learned: true });
    const t = await req<TraceView>('trace:get', { trace_id: g.trace_id });
    expect(t.recorded[0]!.events.map((e) => e.event)).toEqual(['kg:add_nodes']);
    expect(t.recorded[0]!.output.reply).toBe(POWER.answer);
  }, 120_000);
});
