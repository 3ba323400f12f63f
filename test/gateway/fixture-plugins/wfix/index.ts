/**
 * Test-only stand-in for the workflow plugin's read side (workflow:runs, workflow:status and its
 * events, in the shapes the workflow plugin answers), so the dashboard's DAG view is tested
 * whether or not the real plugin is loaded (a test that loads this one disables that one).
 * `workflow:advance {run_id, step, status}` moves a step and emits what the real engine would.
 */
import { z } from 'zod';
import { DaemonError, definePlugin } from '../../../../daemon/plugin-api.js';

interface Step {
  status: string;
  needs: string[];
  kind: 'event';
  attempts: number;
}

type Run = { run_id: string; workflow: string; status: string; created_at: number; steps: Record<string, Step> };

export default definePlugin({
  name: 'wfix',
  namespaces: ['workflow'],
  start(ctx) {
    const runs = new Map<string, Run>();
    const steps: Record<string, Step> = {
      fetch: { status: 'succeeded', needs: [], kind: 'event', attempts: 1 },
      parse: { status: 'succeeded', needs: ['fetch'], kind: 'event', attempts: 1 },
      summarize: { status: 'running', needs: ['parse'], kind: 'event', attempts: 1 },
      cite: { status: 'pending', needs: ['parse'], kind: 'event', attempts: 0 },
      report: { status: 'pending', needs: ['summarize', 'cite'], kind: 'event', attempts: 0 },
    };
    runs.set('run-1', {
      run_id: 'run-1',
      workflow: 'literature-review',
      status: 'running',
      created_at: Date.now() / 1000,
      steps,
    });
    return { ctx, runs };
  },
  events: {
    'workflow:runs': {
      summary: 'Runs, newest first.',
      schema: z.object({ limit: z.number().int().default(50), status: z.string().optional() }),
      handler: ({ limit }, { runs }) => ({ runs: [...runs.values()].slice(0, limit).map(({ steps: _s, ...r }) => r) }),
    },
    'workflow:status': {
      summary: 'One run with its steps.',
      schema: z.object({ run_id: z.string() }),
      handler: ({ run_id }, { runs }) => {
        const r = runs.get(run_id);
        if (!r) throw new DaemonError('NOT_FOUND', `no run ${run_id}`);
        return { ...r, outputs: {}, cost_usd: 0 };
      },
    },
    'workflow:advance': {
      summary: 'Move a step to a state and emit the event the engine would.',
      schema: z.object({ run_id: z.string(), step: z.string(), status: z.enum(['running', 'succeeded', 'failed']) }),
      handler: ({ run_id, step, status }, { ctx, runs }) => {
        const r = runs.get(run_id)!;
        r.steps[step].status = status;
        const event =
          status === 'running'
            ? 'workflow:step_started'
            : status === 'succeeded'
              ? 'workflow:step_finished'
              : 'workflow:step_failed';
        ctx.emit(event, { run_id, workflow: r.workflow, step, status });
        return { ok: true };
      },
    },
  },
});
