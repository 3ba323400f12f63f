/**
 * A followed step whose sandbox output changed but whose exit code did not: by default the recorded
 * reply stands (a replay is of the procedure, not of its every byte); with trace.output_matters the
 * changed stdout is a divergence, and the model writes a fresh reply from what the replay printed.
 * Needs Docker (skipped without it, failing under CI=true).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMessagesApiServer, type MessagesApiServer } from '../fixtures/messages-api-server.js';
import { startDaemon, tempHome, type DaemonHandle } from '../helpers/daemon-process.js';
import { KEY, workflowConfig } from '../workflow/helpers.js';
import { traceModel, type Task } from './model.js';

const docker = ((): boolean => {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
})();
if (process.env.CI === 'true' && !docker) throw new Error('CI=true but Docker is not reachable');

const CLOCK: Task = {
  tools: ['sandbox_exec'],
  message: 'Print the clock of the sandbox in nanoseconds and tell me what it said.',
  call: { name: 'sandbox_exec', input: { language: 'bash', code: 'date +%s%N' } },
  answer: 'The sandbox clock said what it said.',
};
const GOAL = 'Read the sandbox clock in nanoseconds';

let api: MessagesApiServer;
let d: DaemonHandle | undefined;
const home = tempHome('agentd-trace-output-');

const boot = (outputMatters: boolean): Promise<DaemonHandle> =>
  startDaemon({
    home,
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: workflowConfig({ sandbox: { pool_size: 0 }, trace: { output_matters: outputMatters } }, { sandbox: true }),
    readyTimeoutMs: 60_000,
  });

function fresh(): void {
  api.reset();
  api.setHandler(traceModel((s) => (/clock/i.test(s) ? CLOCK : undefined)));
}

beforeAll(async () => {
  api = await startMessagesApiServer();
  fresh();
}, 30_000);

afterAll(async () => {
  await d?.stop();
  await api?.close();
});

interface GoalAnswer {
  mode: string;
  status: string;
  cost_usd: number;
  trace_id: string;
  diverged: Array<{ step: string; at: number; reason: string }>;
  repaired: number;
}

const runGoal = (): Promise<GoalAnswer> =>
  d!.client.request<GoalAnswer>('workflow:run_goal', { goal: GOAL }, { timeoutMs: 180_000 });

describe.skipIf(!docker)('a replayed step whose stdout changed', () => {
  it('keeps the recorded reply by default, and with trace.output_matters falls back to the model', async () => {
    d = await boot(false);
    const learned = await runGoal();
    expect(learned).toMatchObject({ mode: 'learn', status: 'succeeded' });

    // The clock has moved on: stdout differs, the exit code does not. Not a divergence by default.
    fresh();
    const followed = await runGoal();
    expect(followed).toMatchObject({ mode: 'follow', status: 'succeeded', cost_usd: 0, diverged: [] });
    expect(api.messageRequests()).toHaveLength(0);

    await d.stop();
    d = await boot(true);
    fresh();
    const strict = await runGoal();
    expect(strict).toMatchObject({ mode: 'follow', status: 'succeeded', repaired: 1 });
    expect(strict.diverged).toEqual([
      { step: 'work', index: 0, at: 0, reason: expect.stringContaining('sandbox:exec stdout changed') },
    ]);
    // The model was shown what the replay printed now, and answered from it.
    const calls = api.messageRequests();
    expect(calls).toHaveLength(1);
    expect(JSON.stringify(calls[0]!.body.messages)).toContain(
      "The last one's result differs from when the task was recorded",
    );
  }, 240_000);
});
