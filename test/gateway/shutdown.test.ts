/**
 * A daemon shutting down tells its web clients before the gateway goes: SSE streams and WebSockets
 * subscribed to system events get system:shutdown_begin, every stream and WebSocket then gets a last
 * frame, gateway:closing (with what shutdown_begin said), and ends cleanly: the SSE response ends,
 * the WebSocket closes with 1001. Streams asked for meanwhile answer 503 SHUTTING_DOWN.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { openStream, type StreamFrame } from '../../interfaces/dashboard/sse-client.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { PluginPaths } from '../../daemon/plugin-api.js';
import { gatewayConfigSchema } from '../../plugins/gateway/config.js';
import { GatewayService, type GatewayContext } from '../../plugins/gateway/service.js';
import { ROOT } from '../helpers/daemon-process.js';
import { TOKEN, startGateway, type Gateway } from './helpers.js';

const sections = {
  daemon: {
    disabled_plugins: ['wfix', 'completion', 'budget', 'sandbox', 'kg', 'agent', 'bridge', 'trace', 'workflow', 'mcp'],
  },
};

let g: Gateway;
afterAll(async () => {
  await g?.daemon.stop();
});

/** An SSE stream that does not reconnect, recording its frames and why it ended. */
function stream(patterns: string[]) {
  const frames: StreamFrame[] = [];
  const states: Array<{ up: boolean; why?: string }> = [];
  const h = openStream({
    base: g.base,
    token: g.token,
    patterns,
    onFrame: (f) => frames.push(f),
    onState: (up, why) => states.push({ up, ...(why ? { why } : {}) }),
    fatal: () => true,
  });
  return { frames, states, close: () => h.close() };
}

function socket(patterns: string[]) {
  const ws = new WebSocket(`ws://127.0.0.1:${g.port}/v1/ws`, { headers: { authorization: `Bearer ${g.token}` } });
  const frames: Array<Record<string, any>> = [];
  ws.on('message', (m) => frames.push(JSON.parse(m.toString())));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.once('open', () =>
    ws.send(JSON.stringify({ event: 'monitor:subscribe', data: { patterns }, correlation_id: 'sub' })),
  );
  return { frames, closed };
}

describe('shutdown, as web clients see it', () => {
  it('delivers system:shutdown_begin, then a last gateway:closing, then ends every stream cleanly', async () => {
    g = await startGateway({ sections });
    const system = stream(['system:*']);
    const other = stream(['fix:*']);
    const ws = socket(['system:*']);
    const wsOther = socket(['fix:*']);
    await vi.waitFor(() => {
      for (const s of [system, other]) expect(s.frames[0]?.event).toBe('monitor:subscribe');
      for (const w of [ws, wsOther])
        expect(w.frames.find((f) => f.correlation_id === 'sub')?.data?.subscription_id).toBeDefined();
    });

    await g.daemon.client.request('system:shutdown', { reason: 'maintenance' });
    expect(await g.daemon.exited).toBe(0);

    // SSE: the stream subscribed to system events got shutdown_begin, then the last frame; the other only the last frame.
    await vi.waitFor(() => expect(system.states.at(-1)).toEqual({ up: false, why: 'the daemon is shutting down' }));
    await vi.waitFor(() => expect(other.states.at(-1)).toEqual({ up: false, why: 'the daemon is shutting down' }));
    system.close();
    other.close();
    const names = system.frames.map((f) => f.event);
    expect(names).toContain('system:shutdown_begin');
    expect(names.at(-1)).toBe('gateway:closing');
    expect(names.indexOf('system:shutdown_begin')).toBeLessThan(names.indexOf('gateway:closing'));
    const last = system.frames.at(-1)!;
    const begin = system.frames.find((f) => f.event === 'system:shutdown_begin')!;
    expect(last.data).toEqual({
      reason: 'shutdown',
      shutdown: { reason: 'maintenance', deadline: begin.data.deadline },
    });
    expect(last.seq).toBe(begin.seq);
    expect(other.frames.map((f) => f.event)).toEqual(['monitor:subscribe', 'gateway:closing']);

    // WebSocket: the same frames, then a close with 1001 (going away).
    for (const [w, expected] of [
      [ws, ['system:shutdown_begin', 'gateway:closing']],
      [wsOther, ['gateway:closing']],
    ] as const) {
      expect(await w.closed).toEqual({ code: 1001, reason: 'gateway closing' });
      expect(w.frames.filter((f) => f.kind === 'event').map((f) => f.event)).toEqual(expected);
    }
  }, 60_000);
});

/** The service alone, on a context that answers what it asks at start: shutdown can be set at will. */
describe('the gateway service closing', () => {
  async function service(shutting: { now: boolean }) {
    const ctx = {
      request: async (event: string) =>
        event === 'system:discover' ? { events: {} } : { events: [], last_seq: 7, oldest_seq: 1, truncated: false },
      subscribe: () => () => undefined,
      log: pino({ level: 'silent' }),
      paths: { run: fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-gw-')), root: ROOT } as PluginPaths,
      get shuttingDown() {
        return shutting.now;
      },
    } as unknown as GatewayContext;
    const s = new GatewayService(
      ctx,
      gatewayConfigSchema.parse({ listen: '127.0.0.1:0', token: TOKEN, dashboard: false }),
      'test',
    );
    await s.start();
    return { s, base: `http://127.0.0.1:${s.address!.port}` };
  }
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('answers 503 SHUTTING_DOWN to a new stream or WebSocket once shutdown has begun', async () => {
    const shutting = { now: false };
    const { s, base } = await service(shutting);
    try {
      shutting.now = true;
      const r = await fetch(`${base}/v1/stream`, { headers: auth });
      expect(r.status).toBe(503);
      expect((await r.json()).error.code).toBe('SHUTTING_DOWN');
      const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`, { headers: auth });
      await expect(
        new Promise(
          (resolve, reject) => (
            ws.once('open', resolve),
            ws.once('unexpected-response', (_q, res) => reject(new Error(`status ${res.statusCode}`)))
          ),
        ),
      ).rejects.toThrow(/503/);
    } finally {
      await s.stop();
    }
  });

  it('says "stopped" when the gateway alone stops (a reload), and ends the stream', async () => {
    const { s, base } = await service({ now: false });
    const frames: StreamFrame[] = [];
    const states: Array<string | undefined> = [];
    const h = openStream({
      base,
      token: TOKEN,
      patterns: ['*'],
      onFrame: (f) => frames.push(f),
      onState: (up, why) => void (up || states.push(why)),
      fatal: () => true,
    });
    await vi.waitFor(() => expect(frames[0]?.event).toBe('monitor:subscribe'));
    await s.stop();
    await vi.waitFor(() => expect(states[0]).toBe('the gateway stopped'));
    h.close();
    expect(frames.at(-1)).toMatchObject({ event: 'gateway:closing', data: { reason: 'stopped', shutdown: null } });
  });
});
