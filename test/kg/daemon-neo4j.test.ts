/**
 * kg:* through the real socket on the Neo4j backend: the shared test Neo4j for the happy path, raw
 * Cypher and moving a graph over from the embedded backend; and a Neo4j of this file's own (another
 * port) that is absent at start, started, stopped mid-run and started again, to see UNAVAILABLE and
 * recovery without a daemon restart. Skipped without Neo4j locally, failing in CI.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonError } from '../../client/errors.js';
import type { EventClient } from '../../client/event-client.js';
import { ROOT, startDaemon, type DaemonHandle } from '../helpers/daemon-process.js';
import { NEO4J_TEST, neo4jGate } from './neo4j-env.js';
import { lockNeo4j } from './neo4j-lock.js';

const run = promisify(execFile);
const gate = await neo4jGate('kg daemon neo4j');
/** A free loopback port, so a second run on the same machine (or anything on 7688) cannot collide. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}
const OUTAGE_PORT = process.env.NEO4J_OUTAGE_PORT ? Number(process.env.NEO4J_OUTAGE_PORT) : await freePort();

const neo4jEnv = (uri: string): Record<string, string> => ({
  AGENTD_KG_BACKEND: 'neo4j',
  AGENTD_KG_NEO4J__URI: uri,
  AGENTD_KG_NEO4J__USER: NEO4J_TEST.user,
  AGENTD_KG_NEO4J__PASSWORD: NEO4J_TEST.password,
  // Short backoff so recovery is seen within seconds of Neo4j coming back.
  AGENTD_KG_NEO4J__PROBE_MAX_MS: '2000',
  AGENTD_KG_NEO4J__MAX_RETRY_TIME_MS: '2000',
});

async function error(c: EventClient, event: string, data: Record<string, unknown>): Promise<DaemonError> {
  try {
    await c.request(event, data, { timeoutMs: 30_000 });
  } catch (e) {
    expect(e).toBeInstanceOf(DaemonError);
    return e as DaemonError;
  }
  throw new Error(`${event} should have failed`);
}

async function kgStatus(
  c: EventClient,
): Promise<{ status: string; reason: string | null; reason_code: string | null }> {
  const r = (await c.request('plugin:list', {})) as {
    plugins: Array<{ name: string; status: string; reason: string | null; reason_code: string | null }>;
  };
  return r.plugins.find((p) => p.name === 'kg')!;
}

/** Poll until `probe` resolves truthy, bounded. */
async function eventually<T>(probe: () => Promise<T | null | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}; last error: ${String(last)}`);
}

const neo4jScript = (cmd: string, port: number) =>
  run('bash', [path.join(ROOT, 'scripts', 'neo4j.sh'), cmd], {
    env: { ...process.env, NEO4J_TEST_PORT: String(port), NEO4J_TEST_PASSWORD: NEO4J_TEST.password },
    timeout: 300_000,
  });

describe.skipIf(!gate.run)('kg on Neo4j through the socket', () => {
  let release: (() => void) | null = null;
  let neo: DaemonHandle;
  let emb: DaemonHandle;

  beforeAll(async () => {
    if (gate.reason) throw new Error(`CI requires Neo4j: ${gate.reason}`);
    release = await lockNeo4j();
    // One at a time, with room: a busy two-core machine starts a daemon slowly.
    neo = await startDaemon({ env: neo4jEnv(NEO4J_TEST.uri), readyTimeoutMs: 60_000 });
    emb = await startDaemon({ config: 'kg:\n  backend: embedded\n', readyTimeoutMs: 60_000 });
    await neo.client.request('kg:query', { cypher: 'MATCH (n) DETACH DELETE n', write: true });
  }, 400_000);

  afterAll(async () => {
    await neo?.client.request('kg:query', { cypher: 'MATCH (n) DETACH DELETE n', write: true }).catch(() => undefined);
    await Promise.all([neo?.stop(), emb?.stop()]);
    release?.();
  });

  it('reports ok and serves the kg events', async () => {
    expect(await kgStatus(neo.client)).toMatchObject({ status: 'ok' });
    await neo.client.request('kg:add_nodes', {
      nodes: [
        { id: 'a', label: 'Paper', properties: { year: 2024 } },
        { id: 'b', label: 'Concept' },
      ],
    });
    await neo.client.request('kg:add_edges', { edges: [{ from: 'a', to: 'b', type: 'MENTIONS' }] });
    expect(await neo.client.request('kg:stats', {})).toEqual({
      nodes: 2,
      edges: 1,
      labels: { Concept: 1, Paper: 1 },
      types: { MENTIONS: 1 },
    });
    expect((await error(neo.client, 'kg:add_edges', { edges: [{ from: 'a', to: 'zz', type: 'CITES' }] })).code).toBe(
      'NOT_FOUND',
    );
    expect((await error(neo.client, 'kg:delete', { id: 'a' })).code).toBe('CONFLICT');
    expect((await error(neo.client, 'kg:add_nodes', { nodes: [{ label: 'X`) DETACH DELETE (n' }] })).code).toBe(
      'INVALID_DATA',
    );
  });

  it('runs Cypher: read by default, writes only with write: true, values as params', async () => {
    const r = await neo.client.request('kg:query', {
      cypher: 'MATCH (n:Paper {id: $id}) RETURN n.year AS year',
      params: { id: 'a' },
    });
    expect(r).toEqual({ columns: ['year'], rows: [{ year: 2024 }], truncated: false });
    expect((await error(neo.client, 'kg:query', { cypher: "CREATE (:KgNode:Concept {id: 'w'})" })).code).toBe(
      'CONFLICT',
    );
    expect((await error(neo.client, 'kg:query', { cypher: 'MATCH (n RETURN n' })).code).toBe('INVALID_DATA');
    // An injection attempt through a parameter stays a value.
    const inj = await neo.client.request('kg:query', {
      cypher: 'MATCH (n:KgNode) WHERE n.id = $id RETURN count(n) AS c',
      params: { id: "a' OR 1=1 //" },
    });
    expect(inj).toMatchObject({ rows: [{ c: 0 }] });
  });

  it('never logs the password', () => {
    expect(neo.output()).not.toContain(NEO4J_TEST.password);
  });

  it('moves a graph from the embedded backend to Neo4j with export/import', async () => {
    await neo.client.request('kg:query', { cypher: 'MATCH (n) DETACH DELETE n', write: true });
    const nodes = Array.from({ length: 300 }, (_, i) => ({
      id: `n${i}`,
      label: i % 3 === 0 ? 'Paper' : 'Concept',
      properties: { i, tags: [`t${i % 7}`] },
    }));
    const edges = Array.from({ length: 600 }, (_, i) => ({
      from: `n${i % 300}`,
      to: `n${(i * 7 + 1) % 300}`,
      type: i % 2 ? 'CITES' : 'RELATES_TO',
      properties: { w: i / 10 },
    })).filter((e, i, all) => all.findIndex((x) => x.from === e.from && x.to === e.to && x.type === e.type) === i);
    await emb.client.request('kg:add_nodes', { nodes });
    await emb.client.request('kg:add_edges', { edges });
    const file = path.join(emb.home, 'move.jsonl');
    await emb.client.request('kg:export', { path: file });
    expect(await neo.client.request('kg:import', { path: file })).toEqual({
      nodes_created: 300,
      nodes_updated: 0,
      edges_created: edges.length,
      edges_updated: 0,
    });
    expect(await neo.client.request('kg:stats', {})).toEqual(await emb.client.request('kg:stats', {}));
    for (const q of [
      { id: 'n0', depth: 2 },
      { id: 'n5', depth: 3, direction: 'out', types: ['CITES'] },
      { id: 'n9', depth: 1, include_edges: true },
    ]) {
      expect(await neo.client.request<Record<string, unknown>>('kg:neighbors', q)).toEqual(
        await emb.client.request<Record<string, unknown>>('kg:neighbors', q),
      );
    }
    expect(await neo.client.request('kg:get', { id: 'n42' })).toEqual(
      await emb.client.request('kg:get', { id: 'n42' }),
    );
  });
});

describe.skipIf(!gate.run)('kg when Neo4j goes away and comes back', () => {
  const uri = `bolt://127.0.0.1:${OUTAGE_PORT}`;
  let d: DaemonHandle;

  beforeAll(async () => {
    if (gate.reason) throw new Error(`CI requires Neo4j: ${gate.reason}`);
    await neo4jScript('stop', OUTAGE_PORT);
  });

  afterAll(async () => {
    await d?.stop();
    // wipe = stop and delete this port's data directory, so runs leave nothing behind.
    await neo4jScript('wipe', OUTAGE_PORT).catch(() => undefined);
  });

  it('starts degraded, recovers when Neo4j starts, answers UNAVAILABLE when it stops, recovers again', async () => {
    // Absent at start: the daemon comes up anyway, kg is degraded and says why.
    d = await startDaemon({ env: neo4jEnv(uri), readyTimeoutMs: 60_000 });
    expect(await d.client.request('system:health', {})).toBeTruthy();
    const st = await kgStatus(d.client);
    expect(st).toMatchObject({ status: 'degraded', reason_code: 'BACKEND_UNAVAILABLE' });
    const t0 = Date.now();
    const e = await error(d.client, 'kg:stats', {});
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/neo4j/i);
    expect(Date.now() - t0).toBeLessThan(15_000);

    // Neo4j arrives: no restart needed.
    await neo4jScript('start', OUTAGE_PORT);
    await eventually(async () => (await kgStatus(d.client)).status === 'ok', 30_000, 'kg ok after neo4j start');
    await d.client.request('kg:query', { cypher: 'MATCH (n) DETACH DELETE n', write: true });
    await d.client.request('kg:add_nodes', { nodes: [{ id: 'kept', label: 'Finding', properties: { v: 1 } }] });

    // Taken away mid-run.
    await neo4jScript('stop', OUTAGE_PORT);
    const t1 = Date.now();
    const e2 = await error(d.client, 'kg:get', { id: 'kept' });
    expect(e2.code).toBe('UNAVAILABLE');
    expect(Date.now() - t1).toBeLessThan(20_000);
    expect(await kgStatus(d.client)).toMatchObject({ status: 'degraded' });
    expect((await error(d.client, 'kg:add_nodes', { nodes: [{ label: 'Finding' }] })).code).toBe('UNAVAILABLE');

    // Back again: the same daemon serves the data that was there.
    await neo4jScript('start', OUTAGE_PORT);
    const got = await eventually(
      () => d.client.request('kg:get', { id: 'kept' }),
      30_000,
      'kg:get after neo4j restart',
    );
    expect(got).toEqual({ node: { id: 'kept', label: 'Finding', properties: { v: 1 } } });
    await eventually(async () => (await kgStatus(d.client)).status === 'ok', 10_000, 'kg ok again');
    expect(d.proc.exitCode).toBeNull();
  }, 600_000);
});

if (!gate.run) {
  describe('kg on Neo4j through the socket', () => {
    it.skip(`skipped: ${gate.reason}`, () => undefined);
  });
}
