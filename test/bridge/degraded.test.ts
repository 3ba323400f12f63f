/**
 * The bridge is off unless configured, and a misconfigured or unreachable NATS leaves the daemon up
 * with the bridge degraded and saying why — then recovers by itself when the server appears.
 */
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { DaemonError } from '../../client/errors.js';
import { startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { natsMissing, startNats, type NatsServer } from './nats.js';
import { OTHERS, stopAndClean, until } from './fleet.js';

const skip = natsMissing();

/** A free port below the ephemeral range, so the servers other test files start on `-p -1` cannot take it meanwhile. */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const srv = net.createServer();
    const ok = await new Promise<boolean>((r) => {
      srv.once('error', () => r(false));
      srv.listen(port, '127.0.0.1', () => r(true));
    });
    if (ok) {
      await new Promise((r) => srv.close(r));
      return port;
    }
  }
}

type Health = {
  status: string;
  healthy: boolean;
  plugins: Record<
    string,
    { status: string; reason: string | null; reason_code: string | null; details?: Record<string, unknown> }
  >;
};

describe('bridge: off, misconfigured, unreachable', () => {
  const daemons: DaemonHandle[] = [];
  let nats: NatsServer | null = null;
  afterAll(async () => {
    await stopAndClean(daemons);
    await nats?.stop();
  });

  it('is off without a URL: unowned namespaces stay UNKNOWN_EVENT, status says disabled', async () => {
    const d = await startDaemon({
      config: JSON.stringify({ daemon: { disabled_plugins: OTHERS } }),
      env: { AGENTD_BRIDGE_URL: '', AGENTD_BRIDGE_NODE: '' },
      readyTimeoutMs: 30_000,
    });
    daemons.push(d);
    expect(await d.client.request('bridge:status')).toMatchObject({ enabled: false, state: 'disabled' });
    const e = await d.client.request('sandbox:exec', { language: 'bash', code: 'true' }).catch((x: DaemonError) => x);
    expect((e as DaemonError).code).toBe('UNKNOWN_EVENT');
    const h = (await d.client.request('system:health')) as unknown as Health;
    expect(h.plugins.bridge).toMatchObject({ status: 'ok', details: { enabled: false } });
  });

  it('a malformed URL: daemon up and healthy, bridge degraded with the reason, forwarded requests UNAVAILABLE', async () => {
    const d = await startDaemon({
      config: JSON.stringify({
        daemon: { disabled_plugins: OTHERS },
        bridge: { url: 'this is :: not a url', node: 'x' },
      }),
      readyTimeoutMs: 30_000,
    });
    daemons.push(d);
    const h = await until('degraded', async () => {
      const x = (await d.client.request('system:health')) as unknown as Health;
      return x.plugins.bridge.status === 'degraded' ? x : null;
    });
    expect(h.healthy).toBe(true);
    expect(h.plugins.bridge.reason_code).toBe('BACKEND_UNAVAILABLE');
    const e = await d.client.request('sandbox:exec', { language: 'bash', code: 'true' }).catch((x: DaemonError) => x);
    expect((e as DaemonError).code).toBe('UNAVAILABLE');
    expect((await d.client.request('system:ping')).pong).toBe(true);
  });

  it.skipIf(skip)(
    'an unreachable server: degraded until nats-server starts, then connected without a restart',
    async () => {
      const port = await freePort();
      const d = await startDaemon({
        config: JSON.stringify({
          daemon: { disabled_plugins: OTHERS },
          bridge: { url: `nats://127.0.0.1:${port}`, node: 'y' },
        }),
        readyTimeoutMs: 30_000,
      });
      daemons.push(d);
      await until(
        'degraded',
        async () =>
          ((await d.client.request('system:health')) as unknown as Health).plugins.bridge.status === 'degraded',
      );
      expect(await d.client.request('bridge:status')).toMatchObject({
        enabled: true,
        state: 'disconnected',
        error: expect.stringMatching(/127\.0\.0\.1/),
      });
      nats = await startNats({ port });
      await until(
        'connected',
        async () => ((await d.client.request('system:health')) as unknown as Health).plugins.bridge.status === 'ok',
        20_000,
      );
      expect(await d.client.request('bridge:status')).toMatchObject({ state: 'connected', error: null });
      await until(
        'jetstream ready',
        async () =>
          ((await d.client.request<Record<string, unknown>>('bridge:status')) as { jetstream: { state: string } })
            .jetstream.state === 'ready',
      );
    },
  );
});
