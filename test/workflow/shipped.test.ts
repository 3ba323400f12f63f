/**
 * The shipped workflows run end to end in a real daemon: the models are the local Messages API server
 * answering each role by its prompt, the sandbox is Docker, the graph is the embedded one. research is
 * the fan-out/fan-in over agent, sandbox and graph steps: hypotheses in parallel, an experiment per
 * hypothesis run on the dataset in the sandbox, findings and their edges in the graph, two cycles
 * (the critic asks for a second), a report whose citations the graph accepts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFrame } from '../../client/protocol.js';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { IN_CI, startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { dockerReason } from '../sandbox/docker-env.js';
import { collect, KEY, runToEnd, workflowConfig } from './helpers.js';
import { scriptedModel } from './scripted-model.js';

if (dockerReason && !IN_CI) console.warn(`[skip] shipped workflows: ${dockerReason}`);

describe.skipIf(dockerReason !== null && !IN_CI)('the shipped workflows', () => {
  let api: MessagesApiServer;
  let d: DaemonHandle;
  let events: EventFrame[];

  beforeAll(async () => {
    if (dockerReason) throw new Error(`CI=true and ${dockerReason}`);
    api = await startMessagesApiServer();
    api.setHandler((r) => scriptedModel(r));
    d = await startDaemon({
      env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
      config: workflowConfig({ sandbox: { pool_size: 0 } }, { sandbox: true }),
      readyTimeoutMs: 60_000,
    });
    events = await collect(d.client, ['workflow:*', 'sandbox:exec_finished']);
  }, 90_000);

  afterAll(async () => {
    await d?.stop();
    await api?.close();
  });

  it('lists the three, all valid', async () => {
    const l = await d.client.request<{ workflows: Array<{ name: string }>; invalid: unknown[] }>('workflow:list', {});
    expect(l.workflows.map((w) => w.name)).toEqual(
      expect.arrayContaining(['debate', 'plan-execute-critic', 'research']),
    );
    expect(l.invalid).toEqual([]);
  });

  it('research: two cycles of hypotheses, sandbox experiments on the dataset and findings in the graph, then a cited report', async () => {
    const dataset = [{ path: 'data.csv', content: 'a,b,c\n1,5,2\n2,6,9\n3,7,1\n' }];
    const papers = [{ path: 'means-of-small-tables.md', content: 'Column b tends to exceed column a.' }];
    const st = await runToEnd(
      d.client,
      { workflow: 'research', inputs: { question: 'Which column means are large?', dataset, papers, hypotheses: 3 } },
      300_000,
    );
    expect(st.status, JSON.stringify(st.error)).toBe('succeeded');
    const runId = st.run_id as string;
    const steps = st.steps as Record<string, { status: string; output: unknown }>;
    // Cycle 1 and 2 ran (the critic asked for a second), cycle 3 was skipped.
    expect(steps.hypothesize_2!.status).toBe('succeeded');
    expect(steps.hypothesize_3!.status).toBe('skipped');
    // Each experiment really ran in the sandbox, on the dataset: column means 2, 6 and 4.
    const exp = steps.experiment_1!.output as Array<{ exit_code: number; stdout: string }>;
    expect(exp.map((e) => e.exit_code)).toEqual([0, 0, 0]);
    expect(exp.map((e) => e.stdout.split('\n')[0])).toEqual(['mean 2.0', 'mean 6.0', 'mean 4.0']);
    expect(
      events.filter(
        (e) =>
          e.event === 'sandbox:exec_finished' &&
          e.context?.root_id ===
            events.find((x) => x.event === 'workflow:started' && x.data.run_id === runId)!.context!.root_id,
      ),
    ).toHaveLength(6);
    // The graph: Paper, Hypotheses citing it, Findings with SUPPORTS/REFUTES, the report citing findings.
    const paper = await d.client.request<{ nodes: Array<{ id: string; depth: number }> }>('kg:neighbors', {
      id: `${runId}-paper-0`,
      direction: 'in',
      types: ['CITES'],
    });
    expect(paper.nodes.filter((n) => /-h\d$/.test(n.id))).toHaveLength(6);
    // h1: the mean of column a (2) exceeds 1, supported; h3: the mean of column c (4) exceeds 7, refuted.
    const edgesTo = async (h: string) =>
      await d.client.request<{ nodes: Array<{ id: string }>; edges: Array<{ type: string }> }>('kg:neighbors', {
        id: h,
        direction: 'in',
        include_edges: true,
        types: ['SUPPORTS', 'REFUTES'],
      });
    const h1 = await edgesTo(`${runId}-c1-h1`);
    expect(h1.nodes.map((n) => n.id)).toEqual([`${runId}-c1-f0`]);
    expect(h1.edges.map((e) => e.type)).toEqual(['SUPPORTS']);
    expect((await edgesTo(`${runId}-c1-h3`)).edges.map((e) => e.type)).toEqual(['REFUTES']);
    const report = (
      st.outputs as { report: { claims: Array<{ nodes: string[]; sandbox_runs: string[] }> }; citations: string }
    ).report;
    expect(report.claims).toHaveLength(6);
    expect(
      report.claims.every(
        (c) => c.nodes.length > 0 && c.sandbox_runs.every((r) => r.startsWith(`${runId}/experiment_`)),
      ),
    ).toBe(true);
    expect((st.outputs as { citations: string }).citations).toBe('succeeded');
    const cited = await d.client.request<{ nodes: unknown[] }>('kg:neighbors', {
      id: `${runId}-report`,
      direction: 'out',
      types: ['CITES'],
    });
    expect(cited.nodes).toHaveLength(6);
    expect(st.cost_usd).toBeGreaterThan(0);
  }, 300_000);

  it('debate: three rounds and a verdict', async () => {
    const st = await runToEnd(d.client, {
      workflow: 'debate',
      inputs: { motion: 'Peer review should be double-blind' },
    });
    expect(st.status).toBe('succeeded');
    const out = st.outputs as { verdict: { winner: string }; transcript: string[] };
    expect(out.verdict.winner).toBe('for');
    expect(out.transcript).toHaveLength(6);
    expect(out.transcript[0]).toMatch(/^FOR say/);
  });

  it('plan-execute-critic: tasks in parallel, a critique asking for a revision, the answer', async () => {
    const st = await runToEnd(d.client, {
      workflow: 'plan-execute-critic',
      inputs: { goal: 'Sum the primes below 100' },
    });
    expect(st.status).toBe('succeeded');
    const steps = st.steps as Record<string, { status: string; output: unknown }>;
    expect((steps.execute!.output as unknown[]).length).toBe(2);
    expect(steps.revise!.status).toBe('succeeded');
    expect((st.outputs as { answer: string }).answer).toMatch(/^done: Goal: Sum the primes/);
  });
});
