/**
 * One client cannot take the event loop from the others. A client pipelines expensive requests flat
 * out (kg:stats on a 40k-node graph for a quarter of them; or agent:spawn frames nesting 20,000 deep)
 * while another pings. What a ping waits for is the work the daemon's loop does before answering it:
 * measured as that thread's CPU time (/proc/<pid>/schedstat), it stays within the targets,
 * p50 ≤ 5 ms and p99 ≤ 50 ms, however loaded the machine is. In wall time, next to the same pinger
 * at the same moment against a second daemon doing nothing (the machine's floor), the ping stays
 * within tens of ms of it; the exact wall-clock targets are measured in bench/fairness.ts. The unfair
 * kernel gave the pinger 0.9–1 s at p50 here, behind hundreds of the pipeliner's requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { loadGraph, runLoad, type LoadResult } from '../helpers/fairness-load.js';
import { REAL_PLUGINS } from './kit.js';

const NODES = 40_000;
const only = (...keep: string[]) =>
  `daemon:\n  disabled_plugins: ${JSON.stringify(REAL_PLUGINS.filter((p) => !keep.includes(p)))}\n`;

let d: DaemonHandle;
let idle: DaemonHandle;

afterAll(async () => {
  await d?.stop();
  await idle?.stop();
});

function expectFair(loaded: LoadResult): void {
  const figures = JSON.stringify(loaded);
  const floor = loaded.reference!;
  expect(loaded.ping.n, figures).toBeGreaterThan(100);
  expect(loaded.hog.n, figures).toBeGreaterThan(100);
  expect(loaded.loop_cpu!.p50_ms, figures).toBeLessThanOrEqual(5);
  expect(loaded.loop_cpu!.p99_ms, figures).toBeLessThanOrEqual(50);
  expect(loaded.ping.p50_ms, figures).toBeLessThanOrEqual(floor.p50_ms + 50);
  expect(loaded.ping.p99_ms, figures).toBeLessThanOrEqual(floor.p99_ms + 500);
}

describe('fairness between clients', () => {
  beforeAll(async () => {
    idle = await startDaemon({ config: only(), readyTimeoutMs: 60_000 });
    d = await startDaemon({ config: only('kg'), readyTimeoutMs: 60_000 });
    await loadGraph(d.socketPath, NODES);
  }, 120_000);

  it("a client pipelining kg:stats on a 40k-node graph does not hold up another client's pings", async () => {
    const loaded = await runLoad(d.socketPath, {
      mix: 'kg',
      nodes: NODES,
      seconds: 5,
      referenceSocket: idle.socketPath,
      daemonPid: d.proc.pid,
    });
    expect(loaded.hog.errors).toEqual({});
    expectFair(loaded);
  }, 120_000);

  it('agent:spawn frames nesting 20,000 deep are refused as INVALID_DATA without holding the loop', async () => {
    await d.stop();
    d = await startDaemon({ config: only('agent', 'completion', 'budget'), readyTimeoutMs: 60_000 });
    const loaded = await runLoad(d.socketPath, {
      mix: 'deep',
      nodes: 0,
      seconds: 4,
      window: 64,
      referenceSocket: idle.socketPath,
      daemonPid: d.proc.pid,
    });
    expect(Object.keys(loaded.hog.errors)).toEqual(['INVALID_DATA']);
    expectFair(loaded);
  }, 120_000);
});
