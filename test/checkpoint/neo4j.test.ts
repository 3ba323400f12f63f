/**
 * Full checkpoints of a graph kept in Neo4j: exported by the kg plugin when small (so diff, restore
 * and fork work as for the embedded graph), refused with Neo4j's own tools named when large.
 * Skipped without Neo4j locally, failing in CI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonHandle } from '../helpers/daemon-process.js';
import { NEO4J_TEST, neo4jGate } from '../kg/neo4j-env.js';
import { lockNeo4j } from '../kg/neo4j-lock.js';
import { startDaemon, testConfig } from './helpers.js';

const gate = await neo4jGate('checkpoint-neo4j');

interface EntityDiff {
  added: number;
  removed: number;
  changed: number;
  ids: { added: unknown[]; removed: unknown[]; changed: unknown[] };
}

describe.skipIf(!gate.run)('full checkpoints of a Neo4j graph', () => {
  let release: (() => void) | null = null;
  let d: DaemonHandle;
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-neo-fork-'));
  const rq = <T = Record<string, unknown>>(event: string, data: Record<string, unknown> = {}) =>
    d.client.request<T>(event, data, { timeoutMs: 120_000 });
  const ids = async () => (await rq<{ nodes: Array<{ id: string }> }>('kg:export')).nodes.map((n) => n.id).sort();

  beforeAll(async () => {
    if (gate.reason) throw new Error(`CI requires Neo4j: ${gate.reason}`);
    release = await lockNeo4j();
    d = await startDaemon({
      config: testConfig({ keep: ['kg'], disableFixtures: ['hang'] }),
      env: {
        AGENTD_KG_BACKEND: 'neo4j',
        AGENTD_KG_NEO4J__URI: NEO4J_TEST.uri,
        AGENTD_KG_NEO4J__USER: NEO4J_TEST.user,
        AGENTD_KG_NEO4J__PASSWORD: NEO4J_TEST.password,
        AGENTD_KG_FULL_CHECKPOINT_MAX_ITEMS: '50',
      },
    });
    await rq('kg:query', { cypher: 'MATCH (n) DETACH DELETE n', write: true });
  }, 400_000);

  afterAll(async () => {
    await d?.client.request('kg:query', { cypher: 'MATCH (n) DETACH DELETE n', write: true }).catch(() => undefined);
    await d?.stop();
    release?.();
    fs.rmSync(parent, { recursive: true, force: true });
  });

  it('exports a small graph, diffs, restores and forks it', async () => {
    await rq('kg:add_nodes', {
      nodes: [
        { id: 'a', label: 'Paper', properties: { year: 2024 } },
        { id: 'b', label: 'Concept' },
      ],
    });
    await rq('kg:add_edges', { edges: [{ from: 'a', to: 'b', type: 'MENTIONS' }] });
    const first = await rq<{
      checkpoint_id: number;
      full: { covered: Record<string, { files: string[]; external: string[] }> };
    }>('checkpoint:save', { scope: 'full' });
    expect(first.full.covered.kg).toMatchObject({ files: [], external: ['kg'] });

    await rq('kg:add_nodes', {
      nodes: [
        { id: 'c', label: 'Finding' },
        { id: 'a', label: 'Paper', properties: { year: 2025 } },
      ],
    });
    await rq('kg:delete', { edge: { from: 'a', to: 'b', type: 'MENTIONS' } });
    const second = await rq<{ checkpoint_id: number }>('checkpoint:save', { scope: 'full' });
    const diff = await rq<{ changes: Record<string, EntityDiff> }>('checkpoint:diff', {
      from: first.checkpoint_id,
      to: second.checkpoint_id,
    });
    expect(diff.changes.nodes).toMatchObject({
      added: 1,
      removed: 0,
      changed: 1,
      ids: { added: ['c'], changed: ['a'] },
    });
    expect(diff.changes.edges).toMatchObject({
      added: 0,
      removed: 1,
      ids: { removed: [{ from: 'a', type: 'MENTIONS', to: 'b' }] },
    });

    const r = await rq<{ restarted: string[]; put_back: string[] }>('checkpoint:restore', {
      checkpoint_id: first.checkpoint_id,
    });
    expect(r.restarted).toContain('kg');
    expect(r.put_back).toEqual(['kg']);
    expect(await ids()).toEqual(['a', 'b']);
    expect(await rq('kg:get', { id: 'a' })).toMatchObject({ node: { properties: { year: 2024 } } });
    expect(await rq('kg:stats')).toMatchObject({ nodes: 2, edges: 1 });

    const home = path.join(parent, 'branch');
    const f = await rq<{ notes: string[] }>('checkpoint:fork', { checkpoint_id: second.checkpoint_id, home });
    expect(fs.existsSync(path.join(home, 'db', 'kg.db'))).toBe(true);
    expect(f.notes.join(' ')).toMatch(/embedded/);
    const branch = await startDaemon({
      home,
      config: testConfig({ keep: ['kg'], disableFixtures: ['hang'] }),
      env: { AGENTD_KG_BACKEND: 'embedded' },
    });
    try {
      expect(
        (await branch.client.request<{ nodes: Array<{ id: string }> }>('kg:export')).nodes.map((n) => n.id).sort(),
      ).toEqual(['a', 'b', 'c']);
    } finally {
      await branch.stop();
    }
  }, 300_000);

  it("refuses a graph over the limit, naming Neo4j's own tools, and saves nothing", async () => {
    await rq('kg:add_nodes', { nodes: Array.from({ length: 60 }, (_, i) => ({ id: `x${i}`, label: 'Concept' })) });
    const before = (await rq<{ total: number }>('checkpoint:list')).total;
    const err = await rq('checkpoint:save', { scope: 'full' }).then(
      () => null,
      (e: { code: string; message: string }) => e,
    );
    expect(err?.code).toBe('CONFLICT');
    expect(err?.message).toMatch(/neo4j-admin database dump/);
    expect((await rq<{ total: number }>('checkpoint:list')).total).toBe(before);
    // Writes were held during the attempt and flow again.
    await rq('kg:add_nodes', { nodes: [{ id: 'after', label: 'Concept' }] });
  }, 120_000);
});
