/**
 * The kernel's coordinated shutdown with the checkpoint plugin, on real processes: SIGTERM,
 * SIGINT, system:shutdown and mixes of them run it exactly once; phases come as events in order;
 * the final checkpoint is taken after the other plugins stopped; a plugin whose stop() hangs is
 * named in shutdown_complete.unfinished; a second signal forces; idle exit is fast.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventFrame } from '../../client/protocol.js';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { expectCode, record, startDaemon, testConfig, waitFor } from './helpers.js';

const SHUTDOWN_EVENTS = [
  'system:shutdown_begin',
  'system:shutdown_phase',
  'system:shutdown_complete',
  'checkpoint:saved',
];

/** Send a signal; resolve with the exit code (or signal) and the time from signal to exit. */
async function signalAndWait(
  d: DaemonHandle,
  sig: NodeJS.Signals,
): Promise<{ code: number | string | null; ms: number }> {
  const t0 = performance.now();
  d.proc.kill(sig);
  const code = await d.exited;
  return { code, ms: performance.now() - t0 };
}

function filesGone(d: DaemonHandle): boolean {
  return !fs.existsSync(d.socketPath) && !fs.existsSync(path.join(d.home, 'run', 'daemon.pid'));
}

const names = (evs: EventFrame[]) =>
  evs.map((e) => (e.event === 'checkpoint:saved' ? `checkpoint:saved(${String(e.data.reason)})` : e.event));

describe('coordinated shutdown', () => {
  it('on SIGTERM: phases in order, final checkpoint after the plugins stopped, files removed, exit 0 fast', async () => {
    const d = await startDaemon({ config: testConfig() });
    const evs = await record(d.client, SHUTDOWN_EVENTS);
    await d.client.request('memo:put', { values: { x: 1 } });
    const { code, ms } = await signalAndWait(d, 'SIGTERM');
    expect(code).toBe(0);
    // The ≤ 500 ms target is the bench's; here only a stall fails (the machine is shared).
    expect(ms).toBeLessThan(3000);
    expect(names(evs)).toEqual([
      'system:shutdown_begin',
      'system:shutdown_phase',
      'checkpoint:saved(shutdown)',
      'system:shutdown_complete',
    ]);
    expect(evs[0].data.reason).toBe('SIGTERM');
    expect(evs[1].data).toEqual({ phase: 'plugins_stopped', unfinished: [] });
    expect(evs[3].data).toMatchObject({ reason: 'SIGTERM', unfinished: [] });
    expect(evs.map((e) => e.seq)).toEqual([...evs.map((e) => e.seq)].sort((a, b) => a - b));
    expect(filesGone(d)).toBe(true);
    // Taken after memo's stop(): the restored state counts that stop.
    const again = await startDaemon({ home: d.home });
    expect(await again.client.request('memo:dump', { keys_only: true })).toMatchObject({ keys: ['x'], stops: 1 });
    await again.stop();
  });

  it('runs once whatever the mix: system:shutdown twice, then SIGTERM, then it is over', async () => {
    const d = await startDaemon({ config: testConfig() });
    const evs = await record(d.client, SHUTDOWN_EVENTS);
    const other = await d.connect();
    const [a, b] = await Promise.all([
      d.client.request<{ already_shutting_down: boolean }>('system:shutdown', { reason: 'first' }),
      other
        .request<{ already_shutting_down: boolean }>('system:shutdown', { reason: 'second' })
        .catch((e: { code: string }) => ({ code: e.code })),
    ]);
    expect(a).toMatchObject({ accepted: true });
    // The second was accepted (already under way or not yet), refused as SHUTTING_DOWN, or met a
    // connection the daemon had already closed (UNAVAILABLE): whichever, never a second shutdown.
    expect(b).toSatisfy(
      (x: Record<string, unknown>) => x.accepted === true || x.code === 'SHUTTING_DOWN' || x.code === 'UNAVAILABLE',
    );
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    await other.close();
    expect(names(evs).filter((n) => n === 'system:shutdown_begin')).toHaveLength(1);
    expect(names(evs).filter((n) => n === 'system:shutdown_complete')).toHaveLength(1);
    expect(names(evs).filter((n) => n === 'checkpoint:saved(shutdown)')).toHaveLength(1);
    expect(evs.find((e) => e.event === 'system:shutdown_complete')?.data.reason).toBe('first');
    const again = await startDaemon({ home: d.home });
    const l = await again.client.request<{ checkpoints: Array<{ reason: string }> }>('checkpoint:list');
    expect(l.checkpoints.map((c) => c.reason)).toEqual(['shutdown']);
    await again.kill('SIGINT');
    expect(await again.exited).toBe(0);
  });

  it('names a plugin whose stop() hangs, still takes the final checkpoint, refuses work meanwhile', async () => {
    const d = await startDaemon({
      env: { HANG_STOP: '1' },
      config: testConfig({ daemon: { shutdown_timeout_ms: 1500 } }),
    });
    const evs = await record(d.client, SHUTDOWN_EVENTS);
    await d.client.request('memo:put', { values: { kept: true } });
    const id = (await d.client.request<{ checkpoint_id: number }>('checkpoint:save')).checkpoint_id;
    // A save in progress and a restore queued behind it when shutdown begins: the accepted save
    // finishes, the restore is refused when its turn comes (it would be lost anyway).
    await d.client.request('memo:slow_snapshot', { ms: 600 });
    const begun = async () =>
      (await d.client.request<{ snapshots_begun: number }>('memo:dump', { keys_only: true })).snapshots_begun;
    const before = await begun();
    const inflightSave = d.client.request<{ checkpoint_id: number }>('checkpoint:save', { label: 'inflight' });
    const queuedRestore = expectCode(d.client.request('checkpoint:restore', { checkpoint_id: id }));
    await waitFor(async () => (await begun()) > before, 5_000, 'the slow snapshot to be under way');
    const t0 = performance.now();
    d.proc.kill('SIGTERM');
    await waitFor(() => evs.some((e) => e.event === 'system:shutdown_begin'), 15_000, 'shutdown_begin');
    expect((await inflightSave).checkpoint_id).toBeGreaterThan(id);
    expect(await queuedRestore).toBe('SHUTTING_DOWN');
    // While the hung plugin holds shutdown up, nothing new is accepted, a restore least of all.
    expect(await expectCode(d.client.request('checkpoint:restore', { checkpoint_id: id }))).toBe('SHUTTING_DOWN');
    expect(await expectCode(d.client.request('checkpoint:save', {}))).toBe('SHUTTING_DOWN');
    expect(await expectCode(d.client.request('memo:put', { values: { lost: true } }))).toBe('SHUTTING_DOWN');
    expect(await d.exited).toBe(0);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(1400);
    expect(ms).toBeLessThan(8000);
    const complete = evs.find((e) => e.event === 'system:shutdown_complete')!;
    expect(complete.data.unfinished).toEqual(['hang']);
    expect(evs.find((e) => e.event === 'system:shutdown_phase')?.data.unfinished).toEqual(['hang']);
    expect(names(evs)).toContain('checkpoint:saved(shutdown)');
    const log = fs.readFileSync(path.join(d.home, 'logs', 'daemon', 'daemon.log'), 'utf8');
    expect(log).toMatch(/"unfinished":\["hang"\].*plugins did not finish stopping in time/);
    const again = await startDaemon({ home: d.home });
    expect((await again.client.request<{ keys: string[] }>('memo:dump', { keys_only: true })).keys).toEqual(['kept']);
    await again.stop();
  });

  it('forces exit on a second SIGTERM while a plugin will not stop', async () => {
    const d = await startDaemon({
      env: { HANG_STOP: '1' },
      config: testConfig({ daemon: { shutdown_timeout_ms: 30_000 } }),
    });
    const evs = await record(d.client, SHUTDOWN_EVENTS);
    d.proc.kill('SIGTERM');
    await waitFor(() => evs.some((e) => e.event === 'system:shutdown_begin'), 15_000, 'shutdown_begin');
    const { code, ms } = await signalAndWait(d, 'SIGTERM');
    expect(code).toBe(1);
    expect(ms).toBeLessThan(3000);
    expect(evs.some((e) => e.event === 'system:shutdown_complete')).toBe(false);
    expect(filesGone(d)).toBe(true);
  });
});
