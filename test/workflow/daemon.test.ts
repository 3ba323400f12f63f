/**
 * Workflows in a real daemon, the model side against the local Messages API server: fan-out and fan-in
 * over agent and graph steps, validation against the daemon's events and profiles, budget exhaustion
 * mid fan-out with nothing overspent, cancel, a signal wait surviving kill -9, planning and replanning
 * with a scripted planner, and the library picking up files without a restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFrame } from '../../client/protocol.js';
import {
  startMessagesApiServer,
  type MessagesApiServer,
  type MockReply,
  type RecordedRequest,
} from '../fixtures/messages-api-server.js';
import { startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { codeOf, errorOf } from '../helpers/events.js';
import { collect, firstUserText, KEY, lastUserText, runToEnd, systemOf, waitFor, workflowConfig } from './helpers.js';

let api: MessagesApiServer;
let d: DaemonHandle;
let events: EventFrame[];
const home = tempHome('agentd-wf-daemon-');
const library = path.join(home, 'workflows');
/** Per test: how the model answers, by the request. */
let reply: (r: RecordedRequest) => MockReply | undefined = () => undefined;

const boot = async (): Promise<DaemonHandle> =>
  startDaemon({
    home,
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: workflowConfig({ workflow: { workflows_dir: library, watch: true } }),
    readyTimeoutMs: 60_000,
  });

beforeAll(async () => {
  fs.mkdirSync(library, { recursive: true });
  api = await startMessagesApiServer();
  api.setHandler((r) => reply(r));
  d = await boot();
  events = await collect(d.client, ['workflow:*']);
}, 90_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

const agentStep = (id: string, message: string, extra: Record<string, unknown> = {}) => ({
  id,
  agent: { model: 'test-model', system: 'You answer briefly.', message },
  ...extra,
});

describe('workflows in the daemon', () => {
  it('fans out over agent steps and fans in over graph steps; each agent step calls the model once, with its key', async () => {
    reply = (r) => {
      const t = firstUserText(r);
      const topic = /^Topic: (.*)$/m.exec(t)?.[1];
      if (topic) return { text: `Here you go: {"topic": "${topic}", "len": ${topic.length}}` };
      if (t.startsWith('Summarise')) return { text: 'Summary: all measured.' };
      return { text: 'unexpected' };
    };
    api.reset();
    api.setHandler((r) => reply(r));
    const st = await runToEnd(d.client, {
      definition: {
        name: 'fan',
        inputs: { topics: { type: 'array', required: true } },
        steps: [
          { ...agentStep('ask', 'Topic: {{ item }}'), foreach: '{{ inputs.topics }}', concurrency: 2, output: 'json' },
          {
            id: 'record',
            needs: ['ask'],
            event: 'kg:add_nodes',
            foreach: '{{ steps.ask.output }}',
            data: {
              nodes: [
                {
                  id: '{{ run.id }}-{{ item.topic }}',
                  label: 'Finding',
                  properties: { topic: '{{ item.topic }}', len: '{{ item.len }}' },
                },
              ],
            },
          },
          { id: 'count', needs: ['record'], event: 'kg:find', data: { label: 'Finding', limit: 100 } },
          { ...agentStep('sum', 'Summarise {{ steps.ask.output }}'), needs: ['record'] },
        ],
      },
      inputs: { topics: ['alpha', 'be', 'gamma'] },
    });
    expect(st.status).toBe('succeeded');
    const steps = st.steps as Record<string, { status: string; output: unknown }>;
    expect(steps.ask!.output).toEqual([
      { topic: 'alpha', len: 5 },
      { topic: 'be', len: 2 },
      { topic: 'gamma', len: 5 },
    ]);
    expect(
      (steps.count!.output as { nodes: Array<{ properties: { topic: string } }> }).nodes
        .map((n) => n.properties.topic)
        .sort(),
    ).toEqual(['alpha', 'be', 'gamma']);
    expect(steps.sum!.output).toMatchObject({ reply: 'Summary: all measured.' });
    const runId = st.run_id as string;
    const calls = api.messageRequests();
    expect(calls).toHaveLength(4);
    // The model calls were made for the run: the completions' request ids derive from the attempts' keys.
    const ledger = await d.client.request<{ entries: Array<{ request_id: string; kind: string }> }>('budget:ledger', {
      workflow_id: runId,
      kind: 'commit',
      limit: 100,
    });
    expect(ledger.entries.map((e) => e.request_id).sort()).toEqual([
      `${runId}.ask.0.a1.s0`,
      `${runId}.ask.1.a1.s0`,
      `${runId}.ask.2.a1.s0`,
      `${runId}.sum.a1.s0`,
    ]);
    expect(st.cost_usd).toBeGreaterThan(0);
    // Progress events carry the run id and the causality of the start request.
    const mine = events.filter((e) => e.data.run_id === runId);
    expect(new Set(mine.map((e) => e.context?.root_id)).size).toBe(1);
    expect(mine.map((e) => e.event)).toEqual(
      expect.arrayContaining([
        'workflow:started',
        'workflow:step_started',
        'workflow:step_finished',
        'workflow:finished',
      ]),
    );
    // The agents each step spawned are terminated when it ends.
    const agents = await d.client.request<{ agents: Array<{ agent_id: string; status: string }> }>('agent:list', {
      limit: 100,
    });
    const spawned = agents.agents.filter((a) => a.agent_id.startsWith(`wf.${runId}.`));
    expect(spawned).toHaveLength(4);
    await waitFor(
      async () =>
        (
          await d.client.request<{ agents: Array<{ agent_id: string; status: string }> }>('agent:list', { limit: 100 })
        ).agents
          .filter((a) => a.agent_id.startsWith(`wf.${runId}.`))
          .every((a) => a.status === 'terminated'),
      10_000,
      'agents terminated',
    );
  });

  it('refuses definitions naming an unknown event or profile, and bad inputs, with INVALID_DATA naming the step', async () => {
    const e1 = await errorOf(
      d.client.request('workflow:start', { definition: { name: 'x', steps: [{ id: 'go', event: 'nosuch:thing' }] } }),
    );
    expect(e1.code).toBe('INVALID_DATA');
    expect(e1.message).toMatch(/step "go": unknown event "nosuch:thing"/);
    const e2 = await errorOf(
      d.client.request('workflow:start', {
        definition: { name: 'x', steps: [{ id: 'ag', agent: { profile: 'nobody', message: 'hi' } }] },
      }),
    );
    expect(e2.message).toMatch(/step "ag": unknown agent profile "nobody"/);
    const e3 = await errorOf(
      d.client.request('workflow:start', {
        definition: {
          name: 'x',
          inputs: { n: { type: 'integer', required: true } },
          steps: [{ id: 'a', event: 'system:ping' }],
        },
        inputs: { n: 'many' },
      }),
    );
    expect(e3.message).toMatch(/input "n" must be an integer/);
    expect(await codeOf(d.client.request('workflow:start', { workflow: 'nope' }))).toBe('NOT_FOUND');
    expect(await codeOf(d.client.request('workflow:start', {}))).toBe('INVALID_DATA');
  });

  it('ends a run budget_exhausted mid fan-out: nothing overspent, finished outputs kept', async () => {
    // Each call reports 1,000 output tokens ($0.002) and reserves its worst case first.
    reply = (r) => ({ text: `done ${firstUserText(r)}`, usage: { output_tokens: 1000 }, delayMs: 30 });
    const limit = 0.012;
    const st = await runToEnd(d.client, {
      definition: {
        name: 'spend',
        inputs: { n: { type: 'array', default: Array.from({ length: 20 }, (_, i) => i) } },
        steps: [{ ...agentStep('work', 'item {{ item }}'), foreach: '{{ inputs.n }}', concurrency: 6 }],
      },
      budget_usd: limit,
    });
    expect(st.status).toBe('budget_exhausted');
    const runId = st.run_id as string;
    const b = await d.client.request<{ scopes: Array<{ spent_usd: number; reserved_usd: number; limit_usd: number }> }>(
      'budget:status',
      { scope: 'workflow', id: runId },
    );
    expect(b.scopes[0]!.spent_usd).toBeLessThanOrEqual(limit);
    expect(b.scopes[0]!.reserved_usd).toBe(0);
    const work = (st.steps as Record<string, { output: unknown[]; items: { done: number } }>).work!;
    const done = work.output.filter((o) => o !== null);
    expect(done.length).toBeGreaterThan(0);
    expect(done.length).toBeLessThan(20);
    expect(work.items.done).toBe(done.length);
    expect(st.cost_usd).toBeCloseTo(b.scopes[0]!.spent_usd, 9);
  });

  it('cancel stops a running agent step (its agent terminated, its model call cancelled) and keeps outputs', async () => {
    reply = (r) => (firstUserText(r).startsWith('slow') ? { kind: 'hang' } : { text: 'quick answer' });
    const { run_id: runId } = await d.client.request<{ run_id: string }>('workflow:start', {
      definition: {
        name: 'cx',
        steps: [agentStep('fast', 'fast one'), { ...agentStep('slow', 'slow one'), needs: ['fast'] }],
      },
    });
    await waitFor(
      () =>
        events.some((e) => e.event === 'workflow:step_started' && e.data.run_id === runId && e.data.step === 'slow'),
      20_000,
      'slow started',
    );
    await waitFor(() => api.inFlight() > 0, 10_000, 'the model call in flight');
    const r = await d.client.request('workflow:cancel', { run_id: runId });
    expect(r).toEqual({ run_id: runId, status: 'cancelled' });
    const st = await d.client.request<Record<string, unknown>>('workflow:status', { run_id: runId });
    expect((st.steps as Record<string, unknown>).fast).toMatchObject({
      status: 'succeeded',
      output: { reply: 'quick answer' },
    });
    expect((st.steps as Record<string, unknown>).slow).toMatchObject({ status: 'cancelled' });
    await waitFor(
      async () =>
        (await d.client.request<{ status: string }>('agent:info', { agent_id: `wf.${runId}.slow.a1` })).status ===
        'terminated',
      10_000,
      'agent terminated',
    );
    await waitFor(() => api.inFlight() === 0, 10_000, 'the model call closed');
    expect(await codeOf(d.client.request('workflow:cancel', { run_id: runId }))).toBe('CONFLICT');
  });

  it('cancel stops the turn it gave an existing agent, which stays live', async () => {
    reply = () => ({ kind: 'hang' });
    await d.client.request('agent:spawn', { agent_id: 'keeper', model: 'test-model' });
    const { run_id: runId } = await d.client.request<{ run_id: string }>('workflow:start', {
      definition: {
        name: 'ask-keeper',
        steps: [{ id: 'talk', agent: { agent_id: 'keeper', message: 'hello keeper' } }],
      },
    });
    await waitFor(() => api.inFlight() > 0, 10_000, 'the model call in flight');
    expect(await d.client.request('workflow:cancel', { run_id: runId })).toEqual({
      run_id: runId,
      status: 'cancelled',
    });
    await waitFor(
      async () => {
        const info = await d.client.request<{ status: string; turns: Array<{ turn_id: string; status: string }> }>(
          'agent:info',
          { agent_id: 'keeper' },
        );
        return (
          info.status !== 'terminated' &&
          info.turns.find((t) => t.turn_id === `${runId}.talk.a1`)?.status === 'cancelled'
        );
      },
      15_000,
      'the turn cancelled, the agent live',
    );
  });

  it('plans from a goal: an invalid answer is sent back with its problems, then the valid one runs', async () => {
    let planTurns = 0;
    reply = (r) => {
      if (systemOf(r).includes('You plan work for agentd')) {
        planTurns++;
        if (planTurns === 1)
          return { text: JSON.stringify({ name: 'bad-plan', steps: [{ id: 'a', event: 'nosuch:op' }] }) };
        return {
          text:
            '```json\n' +
            JSON.stringify({
              name: 'pinger',
              steps: [
                { id: 'p', event: 'system:ping' },
                { id: 'q', needs: ['p'], event: 'kg:stats' },
              ],
            }) +
            '\n```',
        };
      }
      return { text: 'x' };
    };
    const r = await d.client.request<{
      definition: { name: string };
      attempts: number;
      run_id: string;
      status: string;
    }>('workflow:plan', { goal: 'check the daemon is alive', start: true, wait: true }, { timeoutMs: 60_000 });
    expect(r.attempts).toBe(2);
    expect(r.definition.name).toBe('pinger');
    expect(r.status).toBe('succeeded');
    const second = api
      .messageRequests()
      .filter((x) => systemOf(x).includes('You plan work for agentd'))
      .at(-1)!;
    expect(lastUserText(second)).toMatch(/invalid:[\s\S]*step "a": unknown event "nosuch:op"/);
    // The catalog the planner saw names the daemon's events and profiles.
    expect(firstUserText(second)).toMatch(/kg:add_nodes/);
    expect(firstUserText(second)).toMatch(/researcher/);
  });

  it('a planner that never gives a valid definition fails the plan after plan_attempts, with the problems', async () => {
    reply = () => ({ text: 'I would rather not.' });
    const e = await errorOf(d.client.request('workflow:plan', { goal: 'anything' }, { timeoutMs: 60_000 }));
    expect(e.code).toBe('INVALID_DATA');
    expect(e.details).toMatchObject({ attempts: 3 });
  });

  it('replans when a step with on_failure: replan fails: the rest of the DAG is replaced, versions kept', async () => {
    reply = (r) => {
      if (systemOf(r).includes('You plan work for agentd')) {
        const t = firstUserText(r);
        expect(t).toMatch(/failed at step "fetch": NOT_FOUND/);
        return {
          text: JSON.stringify({
            steps: [
              {
                id: 'fallback',
                needs: ['first'],
                event: 'kg:add_nodes',
                data: {
                  nodes: [
                    { id: '{{ run.id }}-fb', label: 'Concept', properties: { from: '{{ steps.first.output.nodes }}' } },
                  ],
                },
              },
            ],
          }),
        };
      }
      return { text: 'x' };
    };
    const st = await runToEnd(d.client, {
      definition: {
        name: 'rp',
        steps: [
          { id: 'first', event: 'kg:add_nodes', data: { nodes: [{ id: '{{ run.id }}-first', label: 'Concept' }] } },
          { id: 'fetch', needs: ['first'], event: 'kg:get', data: { id: 'does-not-exist' }, on_failure: 'replan' },
          { id: 'use', needs: ['fetch'], event: 'system:ping' },
        ],
      },
    });
    expect(st.status).toBe('succeeded');
    expect(st.version).toBe(2);
    expect(Object.keys(st.steps as object)).toEqual(['first', 'fallback']);
    const runId = st.run_id as string;
    const full = await d.client.request<{
      versions: Array<{ version: number; reason: string; failed_step: string | null; replaced: string[] }>;
    }>('workflow:status', { run_id: runId, versions: true });
    expect(full.versions.map((v) => [v.version, v.reason, v.failed_step, v.replaced])).toEqual([
      [1, 'start', null, []],
      [2, 'replan', 'fetch', ['fetch', 'use']],
    ]);
    expect(events.find((e) => e.event === 'workflow:replanned' && e.data.run_id === runId)?.data).toMatchObject({
      added: ['fallback'],
    });
  });

  it('picks up workflow files without a restart; invalid ones are listed with the reason and never loaded', async () => {
    fs.writeFileSync(
      path.join(library, 'hello.yaml'),
      'description: says hello\nsteps:\n  - id: ping\n    event: system:ping\n',
    );
    fs.writeFileSync(path.join(library, 'broken.yaml'), 'steps:\n  - id: a\n    event: system:ping\n    needs: [zz]\n');
    fs.writeFileSync(path.join(library, 'ghost.yaml'), 'steps:\n  - id: a\n    event: ghost:walk\n');
    const l = await waitFor(
      async () => {
        const r = await d.client.request<{
          workflows: Array<{ name: string }>;
          invalid: Array<{ file: string; error: string }>;
        }>('workflow:list', {});
        return r.workflows.some((w) => w.name === 'hello') && r.invalid.length >= 2 ? r : null;
      },
      15_000,
      'library picked up',
    );
    expect(l.invalid.find((i) => i.file.endsWith('broken.yaml'))!.error).toMatch(/step "a": needs unknown step "zz"/);
    expect(l.invalid.find((i) => i.file.endsWith('ghost.yaml'))!.error).toMatch(/unknown event "ghost:walk"/);
    expect((await runToEnd(d.client, { workflow: 'hello' })).status).toBe('succeeded');
    expect((await errorOf(d.client.request('workflow:start', { workflow: 'broken' }))).message).toMatch(
      /invalid and not loaded/,
    );
    fs.unlinkSync(path.join(library, 'hello.yaml'));
    await waitFor(
      async () =>
        !(await d.client.request<{ workflows: Array<{ name: string }> }>('workflow:list', {})).workflows.some(
          (w) => w.name === 'hello',
        ),
      15_000,
      'removed',
    );
  });

  // Last: it restarts the daemon.
  it('a signal wait survives kill -9: after the restart the run waits still, and the signal finishes it', async () => {
    reply = () => ({ text: 'ok' });
    const { run_id: runId } = await d.client.request<{ run_id: string }>('workflow:start', {
      definition: {
        name: 'approve',
        steps: [
          { id: 'before', event: 'system:ping' },
          { id: 'ok', needs: ['before'], wait: { prompt: 'ship it?' } },
          { id: 'after', needs: ['ok'], event: 'kg:stats' },
        ],
      },
    });
    await waitFor(
      () => events.some((e) => e.event === 'workflow:waiting' && e.data.run_id === runId),
      10_000,
      'waiting',
    );
    expect((await d.client.request<{ status: string }>('workflow:status', { run_id: runId })).status).toBe('waiting');
    await d.kill('SIGKILL');
    d = await boot();
    events = await collect(d.client, ['workflow:*']);
    const st = await d.client.request<{ status: string; steps: Record<string, { status: string }> }>(
      'workflow:status',
      { run_id: runId },
    );
    expect(st.status).toBe('waiting');
    expect(st.steps.before!.status).toBe('succeeded');
    const done = d.client.request<{ status: string }>('workflow:start', {
      run_id: runId,
      wait: true,
      workflow: 'approve',
    });
    await d.client.request('workflow:signal', { run_id: runId, step: 'ok', data: { by: 'ann' } });
    const fin = await done;
    expect(fin.status).toBe('succeeded');
    expect((fin as unknown as { steps: Record<string, { output: unknown }> }).steps.ok!.output).toEqual({ by: 'ann' });
  });
});
