/** The TUI's Workflows panel shows a run for a goal with its mode and what following its trace saved. */
import { describe, expect, it } from 'vitest';
import { runLine, runRows } from '../../interfaces/monitor/state/workflows.js';

describe('runs for a goal in the Workflows panel', () => {
  it('shows learn or follow, and the cost saved when the trace plugin said it', () => {
    const rows = runRows({
      runs: [
        { run_id: 'r2', workflow: 'goal', status: 'succeeded', cost_usd: 0, source: 'follow', saved_usd: 0.00343 },
        { run_id: 'r1', workflow: 'goal', status: 'succeeded', cost_usd: 0.00343, source: 'learn', saved_usd: null },
        { run_id: 'r0', workflow: 'debate', status: 'failed', cost_usd: 0.01, source: 'file' },
      ],
    });
    expect(rows.map((r) => [r.mode, r.savedUsd])).toEqual([
      ['follow', 0.00343],
      ['learn', null],
      [null, null],
    ]);
    expect(runLine(rows[0]!)).toBe('✓ goal succeeded follow saved $0.0034 $0.00 r2');
    expect(runLine(rows[1]!)).toBe('✓ goal succeeded learn $0.0034 r1');
    expect(runLine(rows[2]!)).not.toMatch(/learn|follow|saved/);
  });

  it('takes the mode from trace:runs, so a run workflow:plan or workflow:start {goal} learned shows it', () => {
    const rows = runRows({
      runs: [
        {
          run_id: 'r3',
          workflow: 'square',
          status: 'succeeded',
          cost_usd: 0.002,
          source: 'inline',
          trace_mode: 'learn',
          saved_usd: null,
        },
      ],
    });
    expect(rows[0]!.mode).toBe('learn');
    expect(runLine(rows[0]!)).toBe('✓ square succeeded learn $0.0020 r3');
  });
});
