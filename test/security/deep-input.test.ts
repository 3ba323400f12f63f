/**
 * The issue's reproduction: agent:spawn with metadata nested 20,000 deep answered CONFLICT ("Maximum
 * call stack size exceeded") after holding the loop ~34 ms. Now it is INVALID_DATA naming the path,
 * refused from a byte scan before parsing, nothing is created, and the daemon answers at once; the
 * agent's own schema refuses deep metadata from callers inside the daemon as well.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSchema } from '../../plugins/agent/schemas.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { RawConn } from '../helpers/raw-socket.js';

const nest = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

let d: DaemonHandle;
afterAll(async () => {
  await d?.stop();
});

describe('deeply nested input', () => {
  it('agent:spawn with 20,000-deep metadata over the socket: INVALID_DATA with the path, nothing created', async () => {
    d = await startDaemon({
      config: 'daemon:\n  disabled_plugins: [sandbox, bridge, kg, checkpoint]\n',
      readyTimeoutMs: 60_000,
    });
    const c = await RawConn.connect(d.socketPath);
    const frame = `{"event":"agent:spawn","correlation_id":"deep","data":{"agent_id":"deep-one","metadata":${nest(20_000)}}}\n`;
    const t0 = performance.now();
    c.send(frame);
    const r = await c.one();
    const ms = performance.now() - t0;
    expect(r).toMatchObject({
      correlation_id: 'deep',
      event: 'agent:spawn',
      error: { code: 'INVALID_DATA', details: { max_json_depth: 64 } },
    });
    expect(r.error.message).toMatch(/^agent:spawn: metadata\.a\.a\..*nested deeper than 64 levels/);
    expect(ms).toBeLessThan(1000);
    c.request('agent:list', {}, 'list');
    expect((await c.one()).data.agents).toEqual([]);
    c.close();
  }, 90_000);

  it('the spawn schema refuses deep metadata from callers inside the daemon too, and keeps ordinary metadata', () => {
    const deep = JSON.parse(nest(40)) as Record<string, unknown>;
    const r = spawnSchema.safeParse({ metadata: deep });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]).toMatchObject({
      path: ['metadata'],
      message: expect.stringMatching(/deeper than 32 levels/),
    });
    expect(spawnSchema.safeParse({ metadata: { team: 'x', tags: ['a', { b: [1, 2] }] } }).success).toBe(true);
  });
});
