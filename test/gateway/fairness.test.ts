/**
 * Web clients take their turns with everyone else's: each HTTP connection and each WebSocket is a
 * participant in the kernel's admission rounds, as a socket connection is. One web client keeps 256
 * requests of 5 ms of event-loop work each in flight (over a WebSocket, or pipelined on one HTTP
 * connection) while another client pings, over HTTP or over the socket. What a ping waits for is
 * measured as the daemon loop's CPU time while it waited, and in wall time next to the same pinger
 * against an idle daemon at the same moment. A ping waits for about one of the hog's requests: the
 * one running when it arrives (and an HTTP answer, which leaves once its round is over, for the one
 * its round runs after it), so p50 ≤ 3 × 5 ms (two requests, and the ping's own turn on a loaded machine),
 * and p99 ≤ 50 ms as the socket's own fairness test
 * holds. Before, web requests skipped admission: a ping waited behind whatever the hog had sent, up
 * to its whole window (256 × 5 ms; loop CPU 1.4–2.0 s at p50 here).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from './helpers.js';
import { httpHog, httpPinger, runWebLoad, socketPinger, wsHog, type WebLoadResult } from './fairness-load.js';

/** Only the kernel, the gateway and the fixture: the daemons stay light. */
const sections = {
  daemon: {
    disabled_plugins: [
      'wfix',
      'completion',
      'budget',
      'sandbox',
      'kg',
      'agent',
      'checkpoint',
      'bridge',
      'trace',
      'workflow',
      'mcp',
    ],
  },
};
const SPIN_MS = 5;
const SPIN = { event: 'fix:spin', data: { ms: SPIN_MS } };
const WINDOW = 256;

let g: Gateway;
let idle: Gateway;

beforeAll(async () => {
  [g, idle] = await Promise.all([startGateway({ sections }), startGateway({ sections })]);
}, 60_000);
afterAll(async () => {
  await Promise.all([g?.daemon.stop(), idle?.daemon.stop()]);
});

function expectFair(r: WebLoadResult): void {
  const figures = JSON.stringify(r);
  const floor = r.reference!;
  expect(r.hog.errors, figures).toEqual({});
  expect(r.hog.n, figures).toBeGreaterThan(100);
  expect(r.ping.n, figures).toBeGreaterThan(50);
  expect(r.loop_cpu!.p50_ms, figures).toBeLessThanOrEqual(3 * SPIN_MS);
  expect(r.loop_cpu!.p99_ms, figures).toBeLessThanOrEqual(50);
  expect(r.ping.p50_ms, figures).toBeLessThanOrEqual(floor.p50_ms + 50);
  expect(r.ping.p99_ms, figures).toBeLessThanOrEqual(floor.p99_ms + 500);
}

describe('fairness for web clients', () => {
  it("a WebSocket pipelining expensive requests does not hold up an HTTP client's pings", async () => {
    const r = await runWebLoad({
      hog: () => wsHog(g.port, g.token, SPIN, WINDOW),
      ping: httpPinger(g.base, g.token),
      reference: httpPinger(idle.base, idle.token),
      seconds: 5,
      daemonPid: g.daemon.proc.pid,
    });
    expectFair(r);
  }, 120_000);

  it("an HTTP connection pipelining expensive requests holds up neither a socket client's pings nor another HTTP client's", async () => {
    const sock = await socketPinger(g.daemon.socketPath);
    const ref = await socketPinger(idle.daemon.socketPath);
    try {
      const bySocket = await runWebLoad({
        hog: () => httpHog(g.port, g.token, SPIN, WINDOW),
        ping: sock.ping,
        reference: ref.ping,
        seconds: 4,
        daemonPid: g.daemon.proc.pid,
      });
      expectFair(bySocket);
    } finally {
      sock.close();
      ref.close();
    }
    const byHttp = await runWebLoad({
      hog: () => httpHog(g.port, g.token, SPIN, WINDOW),
      ping: httpPinger(g.base, g.token),
      reference: httpPinger(idle.base, idle.token),
      seconds: 4,
      daemonPid: g.daemon.proc.pid,
    });
    expectFair(byHttp);
  }, 120_000);

  it("counts the web clients' requests as clients' in the router's metrics", async () => {
    const m = await g.daemon.client.request<{
      requests: Array<{ event: string; origin: string; count: number; codes: Record<string, number> }>;
    }>('system:metrics');
    const spin = m.requests.find((r) => r.event === 'fix:spin' && r.origin === 'client');
    expect(spin?.codes.OK).toBeGreaterThan(200);
    expect(m.requests.find((r) => r.event === 'fix:spin' && r.origin === 'plugin')).toBeUndefined();
  });
});
