/**
 * A followed run whose sandbox step now fails: the goal is learned with a step that writes 20 MiB to
 * the sandbox's workspace; the daemon restarts with a workspace too small for it, so the replayed
 * exec exits non-zero; the step falls back to the model, which is told what came back and adapts; the
 * trace is repaired, and the next follow replays the repaired trace with no model call. Needs Docker
 * (skipped without it, failing under CI=true).
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

const WRITE: Task = {
  tools: ['sandbox_exec'],
  message: 'Write a 20 MiB scratch file into /workspace and report its size.',
  call: {
    name: 'sandbox_exec',
    input: {
      language: 'bash',
      code: 'head -c 20971520 /dev/zero > /workspace/scratch && stat -c %s /workspace/scratch',
    },
  },
  repair: {
    name: 'sandbox_exec',
    input: {
      language: 'bash',
      code: 'head -c 1048576 /dev/zero > /workspace/scratch && stat -c %s /workspace/scratch',
    },
  },
  answer: 'The scratch file is written.',
};

let api: MessagesApiServer;
let d: DaemonHandle | undefined;
const home = tempHome('agentd-trace-sandbox-');

const boot = (workspaceMb: number): Promise<DaemonHandle> =>
  startDaemon({
    home,
    env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    config: workflowConfig({ sandbox: { pool_size: 0, limits: { workspace_mb: workspaceMb } } }, { sandbox: true }),
    readyTimeoutMs: 60_000,
  });

function fresh(): void {
  api.reset();
  api.setHandler(traceModel((s) => (/scratch file|20 MiB/i.test(s) ? WRITE : undefined)));
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
  run_id: string;
  mode: string;
  status: string;
  cost_usd: number;
  trace_id: string;
  diverged: Array<{ step: string; index: number; at: number; reason: string }>;
  repaired: number;
}

const runGoal = (goal: string): Promise<GoalAnswer> =>
  d!.client.request<GoalAnswer>('workflow:run_goal', { goal }, { timeoutMs: 180_000 });
const GOAL = 'Write a 20 MiB scratch file into the sandbox workspace';

describe.skipIf(!docker)('a replayed sandbox step that now fails', () => {
  it('falls back to the model from that step, repairs the trace, and the next follow replays the repair for free', async () => {
    d = await boot(64);
    const learned = await runGoal(GOAL);
    expect(learned).toMatchObject({ mode: 'learn', status: 'succeeded' });
    const before = await d.client.request<{
      version: number;
      recorded: Array<{ events: Array<{ event: string; result: { exit_code: number } }> }>;
    }>('trace:get', { trace_id: learned.trace_id });
    expect(before.recorded[0]!.events.map((e) => [e.event, e.result.exit_code])).toEqual([['sandbox:exec', 0]]);

    // The world changes: the workspace no longer holds 20 MiB.
    await d.stop();
    d = await boot(8);
    fresh();
    const followed = await runGoal(GOAL);
    expect(followed).toMatchObject({ mode: 'follow', status: 'succeeded', repaired: 1 });
    expect(followed.diverged).toEqual([
      { step: 'work', index: 0, at: 0, reason: expect.stringContaining('exit_code 1 (0 when recorded)') },
    ]);
    // The model was asked from the diverged step on: one turn with a tool call and an answer, no planner.
    const calls = api.messageRequests();
    expect(calls).toHaveLength(2);
    expect(JSON.stringify(calls[0]!.body.messages)).toContain(
      "The last one's result differs from when the task was recorded",
    );
    expect(followed.cost_usd).toBeGreaterThan(0);
    expect(followed.cost_usd).toBeLessThan(learned.cost_usd);

    const after = await d.client.request<{
      version: number;
      repairs: number;
      recorded: Array<{ events: Array<{ event: string; result: { exit_code: number } }> }>;
    }>('trace:get', { trace_id: learned.trace_id });
    expect(after.version).toBe(before.version + 1);
    expect(after.repairs).toBe(1);
    expect(after.recorded[0]!.events.map((e) => [e.event, e.result.exit_code])).toEqual([
      ['sandbox:exec', 1],
      ['sandbox:exec', 0],
    ]);

    // The repaired trace is what the next follow replays: no model call, nothing spent.
    fresh();
    const again = await runGoal(GOAL);
    expect(again).toMatchObject({ mode: 'follow', status: 'succeeded', cost_usd: 0, diverged: [] });
    expect(api.messageRequests()).toHaveLength(0);
  }, 240_000);
});
