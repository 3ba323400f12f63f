/** The monitor's Workflows panel on rendered frames, against a real daemon running workflows. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { mountApp } from '../monitor/mount.js';
import { waitFor, workflowConfig } from './helpers.js';
import { computeLayout, focusable } from '../../interfaces/monitor/state/layout.js';
import { stepsView } from '../../interfaces/monitor/state/workflows.js';

let d: DaemonHandle;
beforeAll(async () => {
  d = await startDaemon({ config: workflowConfig(), readyTimeoutMs: 60_000 });
}, 90_000);
afterAll(async () => {
  await d?.stop();
});

describe('the Workflows panel', () => {
  it('appears on a tall terminal, below the panels and above the log', () => {
    expect(computeLayout(80, 24).flow).toBe(0);
    const l = computeLayout(100, 40);
    expect(l.flow).toBeGreaterThanOrEqual(6);
    expect(l.log).toBeGreaterThanOrEqual(6);
    expect(focusable(l)).toContain('workflows');
  });

  it("lists runs and shows the running one's steps with their states; enter opens its status", async () => {
    const { run_id: runId } = await d.client.request<{ run_id: string }>('workflow:start', {
      run_id: 'tui-run',
      definition: {
        name: 'shown',
        inputs: { l: { type: 'array', default: [1, 2, 3, 4] }, nothing: { type: 'boolean', default: false } },
        steps: [
          { id: 'pings', event: 'system:ping', foreach: '{{ inputs.l }}' },
          { id: 'skipme', needs: ['pings'], event: 'system:ping', when: '{{ inputs.nothing }}' },
          { id: 'approve', needs: ['pings'], wait: { prompt: 'go?' } },
          { id: 'after', needs: ['approve', 'skipme'], event: 'system:ping' },
        ],
      },
    });
    await waitFor(
      async () =>
        (await d.client.request<{ status: string }>('workflow:status', { run_id: runId })).status === 'waiting',
      10_000,
      'waiting',
    );
    const m = mountApp(d.client);
    try {
      const out = m.stdout as unknown as { rows: number; emit(e: string): void };
      out.rows = 40;
      out.emit('resize');
      const f = await m.until(
        (x) => x.includes('Workflows') && x.includes('⏸ approve') && x.includes('✓ pings 4/4'),
        'the run and its steps',
      );
      expect(f).toMatch(/⏸ shown waiting tui-run/);
      expect(f).toMatch(/tui-run waiting 2\/4 steps/);
      expect(f).toMatch(/– skipme/);
      expect(f).toMatch(/· after ← approve,skipme/);
      // Tab to the panel (it comes after the knowledge graph), enter: the run's full status.
      for (let i = 0; i < 7; i++) m.stdin.write('\t');
      await m.until((x) => /▶ Workflows/.test(x), 'focus on Workflows');
      m.stdin.write('\r');
      await m.until((x) => x.includes('Run tui-run') && x.includes('"status": "waiting"'), 'details');
      m.stdin.write('\x1b');
      await d.client.request('workflow:signal', { run_id: runId, step: 'approve', data: { ok: true } });
      await m.until((x) => /✓ shown succeeded/.test(x), 'the run finished');
    } finally {
      m.unmount();
    }
  });

  it('reads a status into rows: glyphs, foreach progress, attempts, needs', () => {
    const v = stepsView({
      run_id: 'r',
      status: 'running',
      steps: {
        a: { status: 'succeeded', attempts: 1, needs: [] },
        b: { status: 'running', attempts: 2, needs: ['a'], items: { total: 10, done: 4, failed: 1 } },
        c: { status: 'pending', attempts: 0, needs: ['b'] },
      },
    })!;
    expect(v.steps.map((s) => s.text)).toEqual(['✓ a', '▶ b 4/10 (1 failed) attempt 2 ← a', '· c ← b']);
    expect([v.done, v.total]).toEqual([1, 3]);
  });
});
