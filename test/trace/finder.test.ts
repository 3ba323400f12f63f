/**
 * The parts of the trace plugin that need no daemon: goal text (normalised text, signature, slots),
 * the finder measured on the paraphrase set (the default threshold is the one the dev half chooses;
 * the test half's precision and recall stay at least what docs/traces.md reports), what counts as a
 * divergence, and the definition a followed run executes.
 */
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../plugins/trace/schemas.js';
import { analyzeGoal, goalSignature, normalizeGoal, similarity } from '../../plugins/trace/goal-text.js';
import { followDefinition, ancestors } from '../../plugins/trace/follow-plan.js';
import { divergence, jsonInReply } from '../../plugins/trace/replay.js';
import { findTraces } from '../../plugins/trace/finder.js';
import { addTrace, chooseThreshold, loadParaphrases, measure, traceDb, VARIANTS } from './paraphrase-set.js';

describe('goal text', () => {
  it.each([
    ['Count the prime numbers below 100.', 'count the prime numbers below 100'],
    ['  COUNT   the “prime” numbers below 100 ', 'count the "prime" numbers below 100'],
    ['Sort [5, 3,9] please!', 'sort [5,3,9] please'],
    ['Count the words in notes.txt.', 'count the words in notes.txt'],
  ])('normalises %j', (goal, norm) => {
    expect(normalizeGoal(goal)).toBe(norm);
  });

  it('gives the same signature to goals that differ only in case, spaces and punctuation', () => {
    expect(goalSignature('Count the prime numbers below 100.')).toBe(
      goalSignature('count the  prime numbers below 100'),
    );
    expect(goalSignature('Count the prime numbers below 100')).not.toBe(
      goalSignature('Count the prime numbers below 1000'),
    );
  });

  it.each([
    ['Count the primes below 1,000', ['#1000', '~<']],
    ['Find the twentieth Fibonacci number', ['#20']],
    ['Compute the mean of column 2 in data.csv', ['#2', 'data.csv']],
    ['Sort [5, 3] in descending order', ['[5,3]', '~desc']],
    ['Remove the duplicate lines in log.txt', ['!delete', 'log.txt']],
    ['Find the largest file under the workspace directory', ['~max']],
    ['calculate gcd(84, 36)', ['#36', '#84']],
  ])('slots of %j', (goal, slots) => {
    expect(analyzeGoal(goal).slots).toEqual(slots);
  });

  it('never finds alike two goals whose slots or names differ', () => {
    const a = analyzeGoal('Record a Hypothesis node about sleep');
    expect(similarity(a, analyzeGoal('Record a Finding node about sleep'))).toBe(0);
    expect(similarity(a, analyzeGoal('record a hypothesis node about sleep'))).toBe(1);
    expect(similarity(analyzeGoal('Count the primes below 100'), analyzeGoal('Count the primes below 1000'))).toBe(0);
  });
});

describe('the finder on the paraphrase set', () => {
  const set = loadParaphrases();
  const shipped = VARIANTS[0]!;

  it('the default threshold is the one the dev half chooses (best recall at the target precision)', () => {
    expect(chooseThreshold(set, shipped).threshold).toBe(configSchema.parse({}).threshold);
  });

  it('on the test half, at the default threshold: precision 1.0 and recall at least 0.6', () => {
    const s = measure(set, 'test', shipped, configSchema.parse({}).threshold);
    expect(s.false_matches).toEqual([]);
    expect(s.precision).toBe(1);
    expect(s.recall).toBeGreaterThanOrEqual(0.6);
  });

  it('finds the exact goal first, and never a near miss, among other traces', () => {
    const { db, store } = traceDb();
    try {
      const id = addTrace(store, 'Count the prime numbers below 100');
      addTrace(store, 'Count the prime numbers below 1000');
      addTrace(store, 'Sort the list [3, 1, 2] in ascending order');
      const o = { threshold: 0.75, candidates: 20, includeDemoted: false, limit: 5 };
      expect(findTraces(store, 'count the  Prime numbers below 100.', o)[0]).toMatchObject({
        match: 'exact',
        score: 1,
        trace: { trace_id: id },
      });
      const m = findTraces(store, 'How many primes are there under 100?', o);
      expect(m.map((x) => x.trace.trace_id)).toEqual([id]);
      expect(findTraces(store, 'Count the prime numbers above 100', o)).toEqual([]);
    } finally {
      db.close();
    }
  });
});

describe('replay', () => {
  const rec = { event: 'sandbox:exec', data: {}, result: { exit_code: 0, stdout: 'a', timed_out: false } };
  it.each([
    ['the same exit code with other output', { result: { exit_code: 0, stdout: 'b', timed_out: false } }, null],
    [
      'another exit code',
      { result: { exit_code: 1, stdout: 'a', timed_out: false } },
      'sandbox:exec exit_code 1 (0 when recorded)',
    ],
    [
      'a timeout',
      { result: { exit_code: 0, stdout: '', timed_out: true } },
      'sandbox:exec timed_out true (false when recorded)',
    ],
    [
      'an error now',
      { error: { code: 'UNAVAILABLE', message: 'no docker' } },
      'sandbox:exec failed with UNAVAILABLE (it succeeded when recorded)',
    ],
  ])('%s', (_what, now, why) => {
    expect(divergence(rec, now as never)).toBe(why);
  });

  it('with trace.output_matters, other stdout or stderr is a divergence too', () => {
    expect(divergence(rec, { result: { exit_code: 0, stdout: 'b', timed_out: false } }, { output: true })).toBe(
      'sandbox:exec stdout changed ("b"; "a" when recorded)',
    );
    expect(divergence(rec, { result: { exit_code: 0, stdout: 'a', timed_out: false } }, { output: true })).toBeNull();
  });

  it('a failure recorded and seen again is no divergence; another failure is', () => {
    const failed = { event: 'kg:add_edges', data: {}, error: { code: 'NOT_FOUND', message: 'x' } };
    expect(divergence(failed, { error: { code: 'NOT_FOUND', message: 'y' } })).toBeNull();
    expect(divergence(failed, { error: { code: 'CONFLICT', message: 'y' } })).toBe(
      'kg:add_edges failed with CONFLICT (NOT_FOUND when recorded)',
    );
    expect(divergence(failed, { result: {} })).toBe('kg:add_edges succeeded (it failed with NOT_FOUND when recorded)');
  });

  it('reads JSON out of a reply as an output: json step does', () => {
    expect(jsonInReply('Here: ```json\n{"a": 1}\n```')).toEqual({ a: 1 });
    expect(() => jsonInReply('no json')).toThrow(/no JSON/);
  });

  it('turns a plan into replay steps that keep their place in the DAG', () => {
    const plan = {
      name: 'p',
      steps: [
        { id: 'a', agent: { profile: 'coder', message: 'do {{ inputs.x }}' }, output: 'json' as const },
        {
          id: 'b',
          needs: ['a'],
          event: 'kg:find',
          data: { label: 'X' },
          foreach: '{{ steps.a.output }}',
          retry: { max_attempts: 2 },
        },
        { id: 'c', needs: ['b'], wait: { prompt: 'ok?' } },
      ],
    };
    const f = followDefinition(plan);
    expect(f.steps[0]).toEqual({
      id: 'a',
      event: 'trace:replay_step',
      data: { run_id: '{{ run.id }}', step: 'a', live: { agent: plan.steps[0]!.agent, output: 'json' } },
    });
    expect(f.steps[1]).toMatchObject({
      id: 'b',
      needs: ['a'],
      foreach: '{{ steps.a.output }}',
      retry: { max_attempts: 2 },
      event: 'trace:replay_step',
      data: { index: '{{ index }}', live: { event: 'kg:find', data: { label: 'X' } } },
    });
    expect(f.steps[2]).toEqual(plan.steps[2]);
    expect([...ancestors(plan).get('c')!].sort()).toEqual(['a', 'b']);
  });
});
