/**
 * The shipped workflows run end to end in a real daemon: the models are the local Messages API server
 * answering each role by its prompt, the sandbox is Docker, the graph is the embedded one. research is
 * the fan-out/fan-in over agent, sandbox and graph steps: hypotheses in parallel, an experiment per
 * hypothesis run on the dataset in the sandbox, findings and their edges in the graph, two cycles
 * (the critic asks for a second), a report whose citations the graph accepts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFrame } from '../../client/protocol.js';
import { startMessagesApiServer, type MessagesApiServer, type MockReply, type RecordedRequest } from '../fixtures/messages-api-server.js';
import { IN_CI, startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { dockerReason } from '../sandbox/docker-env.js';
import { collect, firstUserText, KEY, runToEnd, systemOf, workflowConfig } from './helpers.js';

if (dockerReason && !IN_CI) console.warn(`[skip] shipped workflows: ${dockerReason}`);

/** The model, by role: what each shipped workflow's prompts ask for, answered as a model would. */
export function scriptedModel(r: RecordedRequest): MockReply {
  const sys = systemOf(r);
  const t = firstUserText(r);
  const json = (v: unknown): MockReply => ({ text: '```json\n' + JSON.stringify(v) + '\n```' });
  if (sys.includes('You propose hypotheses')) {
    const [, base, cycle] = /"id": "(\S+)-c(\d)-h1"/.exec(t)!;
    const n = Number(/Propose (\d+) distinct/.exec(t)![1]);
    const hasPaper = /-paper-0/.test(t) && !/Papers and notes[^:]*: \[\]/.test(t);
    const nodes = Array.from({ length: n }, (_, i) => ({ id: `${base}-c${cycle}-h${i + 1}`, label: 'Hypothesis', properties: { statement: `the mean of column ${i} exceeds ${Number(cycle) + i * 3}`, cycle: Number(cycle) } }));
    return json({ nodes, edges: hasPaper ? nodes.map((x) => ({ from: x.id, to: `${base}-paper-0`, type: 'CITES' })) : [] });
  }
  if (t.includes('Write one self-contained Python 3 program')) {
    const [, col, bound] = /column (\d+) exceeds (\d+)/.exec(t)!;
    const code = `import csv\nrows = [r for r in csv.reader(open('data.csv'))][1:]\nvals = [float(r[${col}]) for r in rows]\nm = sum(vals) / len(vals)\nprint('mean', m)\nprint('VERDICT: supports' if m > ${bound} else 'VERDICT: refutes')`;
    return json({ language: 'python', code });
  }
  if (sys.includes('You state what an experiment')) {
    const fid = /"id": "(\S+-f\d+)"/.exec(t)![1]!;
    const run = /"sandbox_run": "(\S+?)"/.exec(t)![1]!;
    const hyp = /^Hypothesis (\S+):/m.exec(t)![1]!;
    const output = t.slice(t.indexOf('its output:'));
    const supports = /VERDICT: supports/.test(output);
    const mean = /mean ([\d.]+)/.exec(output)?.[1] ?? '?';
    return json({
      nodes: [{ id: fid, label: 'Finding', properties: { statement: `mean ${mean}`, verdict: supports ? 'supports' : 'refutes', sandbox_run: run, cycle: 1 } }],
      edges: [{ from: fid, to: hyp, type: supports ? 'SUPPORTS' : 'REFUTES' }],
    });
  }
  if (t.includes('Score the evidence')) {
    const cycle = Number(/Cycle (\d)/.exec(t)![1]);
    const dims = ['soundness', 'rigor', 'statistical_support', 'reproducibility', 'relevance', 'novelty', 'clarity', 'grounding'];
    return json({ scores: Object.fromEntries(dims.map((d) => [d, cycle + 2])), overall: cycle + 2, satisfied: cycle >= 2, another_cycle: cycle < 2, feedback: 'test the other columns' });
  }
  if (t.includes('Write the report')) {
    const findings = [...new Set([...t.matchAll(/"id":"(\S+?-f\d+)"/g)].map((m) => m[1]!))];
    const runs = [...new Set([...t.matchAll(/"sandbox_run":"(\S+?)"/g)].map((m) => m[1]!))];
    const base = /"from": "(\S+)-report"/.exec(t)![1]!;
    return json({
      title: 'Column means', summary: `${findings.length} findings`,
      claims: findings.map((f, i) => ({ text: `finding ${f}`, nodes: [f], sandbox_runs: [runs[i]] })),
      edges: findings.map((f) => ({ from: `${base}-report`, to: f, type: 'CITES' })),
    });
  }
  // debate and plan-execute-critic
  if (t.includes('Answer with JSON only: {"winner"')) return json({ winner: 'for', score_for: 7, score_against: 6, reasoning: 'better evidence' });
  if (t.includes('{"tasks"')) return json({ tasks: [{ id: 't1', description: 'count primes below 100' }, { id: 't2', description: 'sum them' }] });
  if (t.includes('Review the results against the goal')) return json({ approved: false, needs_revision: true, score: 6, issues: ['t2 unchecked'], feedback: 'verify the sum' });
  if (t.startsWith('Motion:')) return { text: `${/You argue (FOR|AGAINST)/.exec(t)?.[1] ?? 'I'} say: ${t.length} characters considered.` };
  return { text: `done: ${t.split('\n')[0]}` };
}

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
    expect(l.workflows.map((w) => w.name)).toEqual(expect.arrayContaining(['debate', 'plan-execute-critic', 'research']));
    expect(l.invalid).toEqual([]);
  });

  it('research: two cycles of hypotheses, sandbox experiments on the dataset and findings in the graph, then a cited report', async () => {
    const dataset = [{ path: 'data.csv', content: 'a,b,c\n1,5,2\n2,6,9\n3,7,1\n' }];
    const papers = [{ path: 'means-of-small-tables.md', content: 'Column b tends to exceed column a.' }];
    const st = await runToEnd(d.client, { workflow: 'research', inputs: { question: 'Which column means are large?', dataset, papers, hypotheses: 3 } }, 300_000);
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
    expect(events.filter((e) => e.event === 'sandbox:exec_finished' && e.context?.root_id === events.find((x) => x.event === 'workflow:started' && x.data.run_id === runId)!.context!.root_id)).toHaveLength(6);
    // The graph: Paper, Hypotheses citing it, Findings with SUPPORTS/REFUTES, the report citing findings.
    const paper = await d.client.request<{ nodes: Array<{ id: string; depth: number }> }>('kg:neighbors', { id: `${runId}-paper-0`, direction: 'in', types: ['CITES'] });
    expect(paper.nodes.filter((n) => /-h\d$/.test(n.id))).toHaveLength(6);
    // h1: the mean of column a (2) exceeds 1, supported; h3: the mean of column c (4) exceeds 7, refuted.
    const edgesTo = async (h: string) => (await d.client.request<{ nodes: Array<{ id: string }>; edges: Array<{ type: string }> }>('kg:neighbors', { id: h, direction: 'in', include_edges: true, types: ['SUPPORTS', 'REFUTES'] }));
    const h1 = await edgesTo(`${runId}-c1-h1`);
    expect(h1.nodes.map((n) => n.id)).toEqual([`${runId}-c1-f0`]);
    expect(h1.edges.map((e) => e.type)).toEqual(['SUPPORTS']);
    expect((await edgesTo(`${runId}-c1-h3`)).edges.map((e) => e.type)).toEqual(['REFUTES']);
    const report = (st.outputs as { report: { claims: Array<{ nodes: string[]; sandbox_runs: string[] }> }; citations: string }).report;
    expect(report.claims).toHaveLength(6);
    expect(report.claims.every((c) => c.nodes.length > 0 && c.sandbox_runs.every((r) => r.startsWith(`${runId}/experiment_`)))).toBe(true);
    expect((st.outputs as { citations: string }).citations).toBe('succeeded');
    const cited = await d.client.request<{ nodes: unknown[] }>('kg:neighbors', { id: `${runId}-report`, direction: 'out', types: ['CITES'] });
    expect(cited.nodes).toHaveLength(6);
    expect(st.cost_usd).toBeGreaterThan(0);
  }, 300_000);

  it('debate: three rounds and a verdict', async () => {
    const st = await runToEnd(d.client, { workflow: 'debate', inputs: { motion: 'Peer review should be double-blind' } });
    expect(st.status).toBe('succeeded');
    const out = st.outputs as { verdict: { winner: string }; transcript: string[] };
    expect(out.verdict.winner).toBe('for');
    expect(out.transcript).toHaveLength(6);
    expect(out.transcript[0]).toMatch(/^FOR say/);
  });

  it('plan-execute-critic: tasks in parallel, a critique asking for a revision, the answer', async () => {
    const st = await runToEnd(d.client, { workflow: 'plan-execute-critic', inputs: { goal: 'Sum the primes below 100' } });
    expect(st.status).toBe('succeeded');
    const steps = st.steps as Record<string, { status: string; output: unknown }>;
    expect((steps.execute!.output as unknown[]).length).toBe(2);
    expect(steps.revise!.status).toBe('succeeded');
    expect((st.outputs as { answer: string }).answer).toMatch(/^done: Goal: Sum the primes/);
  });
});
