/**
 * The Neo4j connection manager on its own: degraded with a reason when Neo4j is absent or not
 * configured, UNAVAILABLE answers that do not each pay a connection attempt, and recovery without a
 * restart. Recovery runs through a loopback TCP relay in front of the test Neo4j, so "gone" and
 * "back" take milliseconds (daemon-neo4j.test.ts does the same with a real server stop and start).
 */
import net from 'node:net';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DaemonError } from '../../client/errors.js';
import { Neo4jConnection, type Neo4jSettings } from '../../plugins/kg/neo4j-connection.js';
import { NEO4J_TEST, neo4jGate } from './neo4j-env.js';
import { lockNeo4j } from './neo4j-lock.js';

const gate = await neo4jGate('kg neo4j connection');
const log = pino({ level: 'silent' });

function settings(uri: string, over: Partial<Neo4jSettings> = {}): Neo4jSettings {
  return {
    uri,
    user: NEO4J_TEST.user,
    password: NEO4J_TEST.password,
    connection_timeout_ms: 1000,
    max_retry_time_ms: 1000,
    probe_min_ms: 100,
    probe_max_ms: 400,
    ...over,
  };
}

/** A port nobody listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Forwards a loopback port to the test Neo4j; `down()` refuses and cuts every connection. */
class Relay {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  constructor(readonly port: number) {}
  async up(): Promise<void> {
    const target = new URL(NEO4J_TEST.uri.replace(/^bolt:/, 'http:'));
    this.server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 7687), target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }
  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => (this.server ? this.server.close(r) : r(undefined)));
    this.server = null;
  }
}

async function until(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const statuses: Array<[boolean, string | undefined]> = [];
let conn: Neo4jConnection | null = null;
afterEach(async () => {
  await conn?.close();
  conn = null;
  statuses.length = 0;
});

describe('Neo4jConnection without a server', () => {
  it('starts degraded with the reason, and UNAVAILABLE answers cost no new attempt within the backoff', async () => {
    const port = await closedPort();
    conn = new Neo4jConnection(
      settings(`bolt://127.0.0.1:${port}`, { probe_min_ms: 5000, probe_max_ms: 5000 }),
      log,
      (ok, reason) => statuses.push([ok, reason]),
    );
    await conn.start();
    expect(statuses).toHaveLength(1);
    expect(statuses[0]![0]).toBe(false);
    expect(statuses[0]![1]).toMatch(new RegExp(`neo4j unreachable at bolt://127.0.0.1:${port}`));
    const t = Date.now();
    for (let i = 0; i < 20; i++) {
      const e = await conn.acquire().then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(DaemonError);
      expect((e as DaemonError).code).toBe('UNAVAILABLE');
    }
    expect(Date.now() - t).toBeLessThan(500);
    expect(conn.status).toMatchObject({ ready: false });
  });

  it('without a password it says how to configure one, and never tries', async () => {
    conn = new Neo4jConnection(settings('bolt://127.0.0.1:1', { password: undefined }), log, (ok, reason) =>
      statuses.push([ok, reason]),
    );
    await conn.start();
    expect(statuses).toEqual([[false, expect.stringMatching(/no password configured.*AGENTD_KG_NEO4J__PASSWORD/)]]);
    await expect(conn.acquire()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('a wrong password is UNAVAILABLE with the reason, and the password is not in it', async () => {
    if (!gate.run) return;
    conn = new Neo4jConnection(settings(NEO4J_TEST.uri, { password: 'wrong-password-123' }), log, (ok, reason) =>
      statuses.push([ok, reason]),
    );
    await conn.start();
    expect(statuses[0]![0]).toBe(false);
    expect(statuses[0]![1]).not.toContain('wrong-password-123');
    await expect(conn.acquire()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

describe.skipIf(!gate.run)('Neo4jConnection recovering through a relay', () => {
  let release: (() => void) | null = null;
  // Other files hold the shared-Neo4j lock for a minute or two: wait for it outside the test's own time.
  beforeAll(async () => {
    if (gate.reason) throw new Error(`CI requires Neo4j: ${gate.reason}`);
    release = await lockNeo4j();
  }, 400_000);
  afterAll(() => release?.());

  it('absent → ok when it appears → UNAVAILABLE when cut mid-run → ok again, without a restart', async () => {
    const relay = new Relay(await closedPort());
    try {
      conn = new Neo4jConnection(settings(`bolt://127.0.0.1:${relay.port}`), log, (ok, reason) =>
        statuses.push([ok, reason]),
      );
      await conn.start();
      expect(statuses.at(-1)?.[0]).toBe(false);

      await relay.up();
      await until(() => statuses.at(-1)?.[0] === true, 10_000);
      const store = await conn.acquire();
      await store.addNodes([{ id: 'relay-node', label: 'Finding' }]);

      await relay.down();
      const e = await store.getNode('relay-node').then(
        () => null,
        (x: unknown) => x,
      );
      expect((e as DaemonError).code).toBe('UNAVAILABLE');
      expect(statuses.at(-1)?.[0]).toBe(false);
      await expect(conn.acquire()).rejects.toMatchObject({ code: 'UNAVAILABLE' });

      await relay.up();
      await until(() => statuses.at(-1)?.[0] === true, 10_000);
      expect(await (await conn.acquire()).getNode('relay-node')).toEqual({
        id: 'relay-node',
        label: 'Finding',
        properties: {},
      });
      await (await conn.acquire()).deleteNode('relay-node', true);
    } finally {
      await relay.down();
    }
  }, 60_000);
});
