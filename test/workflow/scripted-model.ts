/**
 * A model for the shipped workflows: the local Messages API server answers each role by its prompt,
 * as a model would (hypotheses, experiment code that reads the dataset, findings from the sandbox's
 * output, critiques, a report citing what the graph holds, debate turns, plans). Used by the shipped
 * workflows' test and by the script that makes the documentation's example runs.
 */
import type { MockReply, RecordedRequest } from '../fixtures/messages-api-server.js';
import { firstUserText, systemOf } from './helpers.js';

/** The model, by role: what each shipped workflow's prompts ask for, answered as a model would. */
export function scriptedModel(r: RecordedRequest): MockReply {
  const sys = systemOf(r);
  const t = firstUserText(r);
  const json = (v: unknown): MockReply => ({ text: '```json\n' + JSON.stringify(v) + '\n```' });
  if (sys.includes('You propose hypotheses')) {
    const [, base, cycle] = /"id": "(\S+)-c(\d)-h1"/.exec(t)!;
    const n = Number(/Propose (\d+) distinct/.exec(t)![1]);
    const hasPaper = /-paper-0/.test(t) && !/Papers and notes[^:]*: \[\]/.test(t);
    const nodes = Array.from({ length: n }, (_, i) => ({
      id: `${base}-c${cycle}-h${i + 1}`,
      label: 'Hypothesis',
      properties: { statement: `the mean of column ${i} exceeds ${Number(cycle) + i * 3}`, cycle: Number(cycle) },
    }));
    return json({
      nodes,
      edges: hasPaper ? nodes.map((x) => ({ from: x.id, to: `${base}-paper-0`, type: 'CITES' })) : [],
    });
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
      nodes: [
        {
          id: fid,
          label: 'Finding',
          properties: {
            statement: `mean ${mean}`,
            verdict: supports ? 'supports' : 'refutes',
            sandbox_run: run,
            cycle: Number(/-c(\d+)-f/.exec(fid)?.[1] ?? 1),
          },
        },
      ],
      edges: [{ from: fid, to: hyp, type: supports ? 'SUPPORTS' : 'REFUTES' }],
    });
  }
  if (t.includes('Score the evidence')) {
    const cycle = Number(/Cycle (\d)/.exec(t)![1]);
    const dims = [
      'soundness',
      'rigor',
      'statistical_support',
      'reproducibility',
      'relevance',
      'novelty',
      'clarity',
      'grounding',
    ];
    return json({
      scores: Object.fromEntries(dims.map((d) => [d, cycle + 2])),
      overall: cycle + 2,
      satisfied: cycle >= 2,
      another_cycle: cycle < 2,
      feedback: 'test the other columns',
    });
  }
  if (t.includes('Write the report')) {
    const findings = [...new Set([...t.matchAll(/"id":"(\S+?-f\d+)"/g)].map((m) => m[1]!))];
    const runs = [...new Set([...t.matchAll(/"sandbox_run":"(\S+?)"/g)].map((m) => m[1]!))];
    const base = /"from": "(\S+)-report"/.exec(t)![1]!;
    return json({
      title: 'Column means',
      summary: `${findings.length} findings`,
      claims: findings.map((f, i) => ({ text: `finding ${f}`, nodes: [f], sandbox_runs: [runs[i]] })),
      edges: findings.map((f) => ({ from: `${base}-report`, to: f, type: 'CITES' })),
    });
  }
  // debate and plan-execute-critic
  if (t.includes('Answer with JSON only: {"winner"'))
    return json({ winner: 'for', score_for: 7, score_against: 6, reasoning: 'better evidence' });
  if (t.includes('{"tasks"'))
    return json({
      tasks: [
        { id: 't1', description: 'count primes below 100' },
        { id: 't2', description: 'sum them' },
      ],
    });
  if (t.includes('Review the results against the goal'))
    return json({
      approved: false,
      needs_revision: true,
      score: 6,
      issues: ['t2 unchecked'],
      feedback: 'verify the sum',
    });
  if (t.startsWith('Motion:'))
    return { text: `${/You argue (FOR|AGAINST)/.exec(t)?.[1] ?? 'I'} say: ${t.length} characters considered.` };
  return { text: `done: ${t.split('\n')[0]}` };
}
