/**
 * One suite, both backends: every case runs against the embedded SQLite store and against a real
 * Neo4j (scripts/neo4j.sh start). Neo4j unreachable: its half is skipped locally with a one-line
 * reason and fails in CI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DaemonError } from '../../client/errors.js';
import type { Driver } from 'neo4j-driver';
import { Neo4jGraphStore } from '../../plugins/kg/neo4j-store.js';
import { SqliteGraphStore } from '../../plugins/kg/sqlite-store.js';
import type { GraphStore, NeighborsQuery } from '../../plugins/kg/store.js';
import type { EdgeInput, NodeInput } from '../../plugins/kg/model.js';
import { neo4jGate, testDriver } from './neo4j-env.js';
import { lockNeo4j } from './neo4j-lock.js';

const gate = await neo4jGate('kg conformance');

interface Backend {
  name: string;
  run: boolean;
  open(): Promise<{ store: GraphStore; close(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'embedded',
    run: true,
    async open() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-conf-'));
      const store = new SqliteGraphStore({ file: path.join(dir, 'kg.db') });
      await store.init();
      return {
        store,
        async close() {
          await store.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'neo4j',
    run: gate.run,
    async open() {
      if (gate.reason) throw new Error(`CI requires Neo4j: ${gate.reason}`);
      const release = await lockNeo4j();
      let driver: Driver | null = null;
      try {
        driver = testDriver();
        const store = new Neo4jGraphStore({ driver });
        await store.init();
        return {
          store,
          async close() {
            await store.clear().catch(() => undefined);
            await driver!.close();
            release();
          },
        };
      } catch (e) {
        await driver?.close();
        release();
        throw e;
      }
    },
  },
];

/** The error a promise rejects with, checked to be a DaemonError. */
async function failure(p: Promise<unknown>): Promise<DaemonError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DaemonError);
    return e as DaemonError;
  }
  throw new Error('expected the call to fail');
}

const ids = (xs: Array<{ id: string }>) => xs.map((x) => x.id);

/*
 * The fixture, chosen so every shortest path asked about is unique:
 *   p1 -CITES-> p2 -CITES-> p3 -CITES-> p4
 *   p1 -MENTIONS-> c1 <-MENTIONS- p3        c1 -RELATES_TO-> c2
 *   h1 -SUPPORTS-> c2                       f1 (isolated)
 */
const FIXTURE_NODES: NodeInput[] = [
  {
    id: 'p1',
    label: 'Paper',
    properties: { title: 'Attention', year: 2017, open: true, tags: ['nlp', 'transformers'] },
  },
  { id: 'p2', label: 'Paper', properties: { title: 'BERT', year: 2018, open: false } },
  { id: 'p3', label: 'Paper', properties: { title: 'GPT-3', year: 2020, open: false, scores: [0.5, 1.25] } },
  { id: 'p4', label: 'Paper', properties: { title: 'Scaling', year: 2020 } },
  { id: 'c1', label: 'Concept', properties: { name: 'attention' } },
  { id: 'c2', label: 'Concept', properties: { name: 'memory' } },
  { id: 'h1', label: 'Hypothesis', properties: { text: 'memory helps', confidence: 0.7 } },
  { id: 'f1', label: 'Finding', properties: {} },
];
const FIXTURE_EDGES: EdgeInput[] = [
  { from: 'p1', to: 'p2', type: 'CITES', properties: { weight: 1 } },
  { from: 'p2', to: 'p3', type: 'CITES' },
  { from: 'p3', to: 'p4', type: 'CITES' },
  { from: 'p1', to: 'c1', type: 'MENTIONS', properties: { count: 12 } },
  { from: 'p3', to: 'c1', type: 'MENTIONS' },
  { from: 'c1', to: 'c2', type: 'RELATES_TO' },
  { from: 'h1', to: 'c2', type: 'SUPPORTS' },
];

const nbr = (id: string, over: Partial<NeighborsQuery> = {}): NeighborsQuery => ({
  id,
  depth: 1,
  direction: 'both',
  includeEdges: false,
  limit: 1000,
  ...over,
});

for (const backend of backends) {
  describe.skipIf(!backend.run)(`GraphStore conformance: ${backend.name}`, () => {
    let store: GraphStore;
    let close: () => Promise<void>;

    // Waiting for the shared-Neo4j lock can take a while when other files hold it.
    beforeAll(async () => {
      ({ store, close } = await backend.open());
    }, 400_000);
    afterAll(async () => {
      await close?.();
    });
    beforeEach(async () => {
      await store.clear();
    });

    const seed = async () => {
      await store.addNodes(FIXTURE_NODES);
      await store.addEdges(FIXTURE_EDGES);
    };

    describe('nodes', () => {
      it('stores and returns nodes exactly, every property type included', async () => {
        const r = await store.addNodes(FIXTURE_NODES);
        expect(r).toEqual({ ids: ids(FIXTURE_NODES as Array<{ id: string }>), created: 8, updated: 0 });
        expect(await store.getNode('p1')).toEqual({
          id: 'p1',
          label: 'Paper',
          properties: FIXTURE_NODES[0]!.properties,
        });
        expect(await store.getNode('p3')).toEqual({
          id: 'p3',
          label: 'Paper',
          properties: FIXTURE_NODES[2]!.properties,
        });
        expect(await store.getNode('f1')).toEqual({ id: 'f1', label: 'Finding', properties: {} });
        expect(await store.getNode('nope')).toBeNull();
      });

      it('generates ids when absent and returns them in input order', async () => {
        const r = await store.addNodes([
          { label: 'Concept', properties: { name: 'a' } },
          { id: 'x', label: 'Concept' },
          { label: 'Concept' },
        ]);
        expect(r.ids).toHaveLength(3);
        expect(r.ids[1]).toBe('x');
        expect(new Set(r.ids).size).toBe(3);
        expect((await store.getNode(r.ids[0]!))?.properties).toEqual({ name: 'a' });
        expect(r.created).toBe(3);
      });

      it('is idempotent by id: re-adding replaces properties and counts as updated', async () => {
        await store.addNodes(FIXTURE_NODES);
        const again = await store.addNodes(FIXTURE_NODES);
        expect(again).toMatchObject({ created: 0, updated: 8 });
        expect((await store.stats()).nodes).toBe(8);
        await store.addNodes([{ id: 'p1', label: 'Paper', properties: { title: 'Attention v2' } }]);
        expect(await store.getNode('p1')).toEqual({ id: 'p1', label: 'Paper', properties: { title: 'Attention v2' } });
      });

      it('refuses a label change with CONFLICT and writes nothing of the batch', async () => {
        await store.addNodes([{ id: 'a', label: 'Concept', properties: { v: 1 } }]);
        const e = await failure(
          store.addNodes([
            { id: 'new', label: 'Concept' },
            { id: 'a', label: 'Paper', properties: { v: 2 } },
          ]),
        );
        expect(e.code).toBe('CONFLICT');
        expect(e.details?.conflicts).toEqual([
          { path: ['nodes', 1, 'label'], id: 'a', existing_label: 'Concept', label: 'Paper' },
        ]);
        expect(await store.getNode('new')).toBeNull();
        expect((await store.getNode('a'))?.properties).toEqual({ v: 1 });
      });

      it('keeps hostile ids and values as plain data (Cypher/SQL injection through values)', async () => {
        const evil = [
          `x"}) DETACH DELETE n //`,
          `'); DROP TABLE kg_nodes; --`,
          '`) MATCH (m) DETACH DELETE m //',
          '$id',
        ];
        const nodes = evil.map((id) => ({
          id,
          label: 'Concept',
          properties: { text: id, list: [id, '\\u0000', '}'] },
        }));
        await store.addNodes(nodes);
        await store.addNodes([{ id: 'bystander', label: 'Concept' }]);
        for (const n of nodes) expect(await store.getNode(n.id)).toEqual(n);
        const found = await store.find({ where: { text: evil[0]! }, limit: 10 });
        expect(ids(found.nodes)).toEqual([evil[0]]);
        await store.addEdges([{ from: evil[0]!, to: evil[1]!, type: 'RELATES_TO', properties: { note: evil[2]! } }]);
        expect((await store.stats()).nodes).toBe(5);
        expect((await store.stats()).edges).toBe(1);
      });

      it('rejects labels, types and where keys that are not identifiers before touching the store', async () => {
        await store.addNodes([{ id: 'keep', label: 'Concept' }]);
        const attempts: Array<() => Promise<unknown>> = [
          () => store.addNodes([{ id: 'a', label: 'Concept`) DETACH DELETE (n' }]),
          () => store.addNodes([{ id: 'a', label: 'Concept:Admin' }]),
          () => store.addEdges([{ from: 'keep', to: 'keep', type: 'R]->() DELETE r //' }]),
          () => store.find({ label: 'X` OR 1=1', limit: 5 }),
          () => store.find({ where: { "a') OR 1=1 --": 1 }, limit: 5 }),
          () => store.neighbors(nbr('keep', { types: ['A|B*'] })),
          () => store.path({ from: 'keep', to: 'keep', maxDepth: 3, direction: 'out', types: ['x` ]'] }),
        ];
        for (const attempt of attempts) expect((await failure(attempt())).code).toBe('INVALID_DATA');
        expect(await store.stats()).toEqual({ nodes: 1, edges: 0, labels: { Concept: 1 }, types: {} });
      });
    });

    describe('edges', () => {
      it('adds edges, idempotent by (from, type, to), replacing properties', async () => {
        await store.addNodes(FIXTURE_NODES);
        expect(await store.addEdges(FIXTURE_EDGES)).toEqual({ created: 7, updated: 0 });
        expect(await store.addEdges(FIXTURE_EDGES)).toEqual({ created: 0, updated: 7 });
        expect((await store.stats()).edges).toBe(7);
        await store.addEdges([
          { from: 'p1', to: 'p2', type: 'CITES', properties: { weight: 5 } },
          { from: 'p1', to: 'p2', type: 'SUPPORTS' },
        ]);
        const n = await store.neighbors(nbr('p1', { direction: 'out', includeEdges: true, types: ['CITES'] }));
        expect(n.edges).toEqual([{ from: 'p1', to: 'p2', type: 'CITES', properties: { weight: 5 } }]);
        expect((await store.stats()).edges).toBe(8);
      });

      it('fails the whole batch with NOT_FOUND naming each missing endpoint, writing nothing', async () => {
        await store.addNodes(FIXTURE_NODES);
        const before = await store.stats();
        const e = await failure(
          store.addEdges([
            { from: 'p1', to: 'p4', type: 'CITES' },
            { from: 'ghost', to: 'p1', type: 'CITES' },
            { from: 'p2', to: 'phantom', type: 'CITES' },
          ]),
        );
        expect(e.code).toBe('NOT_FOUND');
        expect(e.details?.missing).toEqual([
          { path: ['edges', 1, 'from'], id: 'ghost' },
          { path: ['edges', 2, 'to'], id: 'phantom' },
        ]);
        expect(await store.stats()).toEqual(before);
      });

      it('deletes single edges', async () => {
        await seed();
        expect(await store.deleteEdge({ from: 'p1', type: 'CITES', to: 'p2' })).toBe(true);
        expect(await store.deleteEdge({ from: 'p1', type: 'CITES', to: 'p2' })).toBe(false);
        expect((await store.stats()).types.CITES).toBe(2);
      });
    });

    describe('find', () => {
      beforeEach(seed);

      it('filters by label and typed property equality', async () => {
        expect(ids((await store.find({ label: 'Paper', limit: 10 })).nodes)).toEqual(['p1', 'p2', 'p3', 'p4']);
        expect(ids((await store.find({ label: 'Paper', where: { year: 2020 }, limit: 10 })).nodes)).toEqual([
          'p3',
          'p4',
        ]);
        expect(ids((await store.find({ where: { open: true }, limit: 10 })).nodes)).toEqual(['p1']);
        expect(ids((await store.find({ where: { open: false, year: 2018 }, limit: 10 })).nodes)).toEqual(['p2']);
        expect(ids((await store.find({ where: { name: 'memory' }, limit: 10 })).nodes)).toEqual(['c2']);
        expect(ids((await store.find({ where: { confidence: 0.7 }, limit: 10 })).nodes)).toEqual(['h1']);
        // Types do not coerce: "2020" is not 2020, 1 is not true.
        expect((await store.find({ where: { year: '2020' }, limit: 10 })).nodes).toEqual([]);
        expect((await store.find({ where: { open: 1 }, limit: 10 })).nodes).toEqual([]);
        expect((await store.find({ label: 'Dataset', limit: 10 })).nodes).toEqual([]);
      });

      it('pages with a cursor, each node exactly once', async () => {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.find({ limit: 3, ...(cursor ? { cursor } : {}) });
          seen.push(...ids(page.nodes));
          cursor = page.next_cursor ?? undefined;
          pages++;
        } while (cursor);
        expect(pages).toBe(3);
        expect(seen).toEqual(['c1', 'c2', 'f1', 'h1', 'p1', 'p2', 'p3', 'p4']);
      });

      it('rejects a forged cursor', async () => {
        expect((await failure(store.find({ limit: 3, cursor: 'not-a-cursor' }))).code).toBe('INVALID_DATA');
      });
    });

    describe('neighbors', () => {
      beforeEach(seed);

      it('walks both directions by default, with depth, ordered by (depth, id), start excluded', async () => {
        const r = await store.neighbors(nbr('p2', { depth: 2 }));
        expect(r.nodes.map((n) => [n.id, n.depth])).toEqual([
          ['p1', 1],
          ['p3', 1],
          ['c1', 2],
          ['p4', 2],
        ]);
        expect(r.truncated).toBe(false);
        expect(r.edges).toBeUndefined();
        expect(r.nodes[0]).toEqual({ id: 'p1', label: 'Paper', properties: FIXTURE_NODES[0]!.properties, depth: 1 });
      });

      it('follows only the asked direction and types', async () => {
        expect(ids((await store.neighbors(nbr('p1', { direction: 'out' }))).nodes)).toEqual(['c1', 'p2']);
        expect(ids((await store.neighbors(nbr('c1', { direction: 'in' }))).nodes)).toEqual(['p1', 'p3']);
        expect(ids((await store.neighbors(nbr('c1', { direction: 'out' }))).nodes)).toEqual(['c2']);
        expect(ids((await store.neighbors(nbr('p1', { direction: 'out', depth: 5, types: ['CITES'] }))).nodes)).toEqual(
          ['p2', 'p3', 'p4'],
        );
        expect(ids((await store.neighbors(nbr('p1', { depth: 3, types: ['MENTIONS', 'RELATES_TO'] }))).nodes)).toEqual([
          'c1',
          'c2',
          'p3',
        ]);
        expect((await store.neighbors(nbr('f1', { depth: 3 }))).nodes).toEqual([]);
      });

      it('returns the walked edges when asked', async () => {
        const r = await store.neighbors(nbr('c1', { depth: 1, includeEdges: true }));
        expect(ids(r.nodes)).toEqual(['c2', 'p1', 'p3']);
        expect(r.edges).toEqual([
          { from: 'c1', to: 'c2', type: 'RELATES_TO', properties: {} },
          { from: 'p1', to: 'c1', type: 'MENTIONS', properties: { count: 12 } },
          { from: 'p3', to: 'c1', type: 'MENTIONS', properties: {} },
        ]);
      });

      it('truncates at the limit, keeping the first nodes by (depth, id)', async () => {
        const r = await store.neighbors(nbr('p1', { depth: 3, limit: 3 }));
        expect(r.truncated).toBe(true);
        expect(r.nodes.map((n) => [n.id, n.depth])).toEqual([
          ['c1', 1],
          ['p2', 1],
          ['c2', 2],
        ]);
      });

      it('answers NOT_FOUND for an unknown start', async () => {
        expect((await failure(store.neighbors(nbr('ghost')))).code).toBe('NOT_FOUND');
      });
    });

    describe('path', () => {
      beforeEach(seed);

      it('finds the shortest directed path with its nodes and edges in order', async () => {
        const r = await store.path({ from: 'p1', to: 'p4', maxDepth: 6, direction: 'out' });
        expect(r.found).toBe(true);
        expect(ids(r.nodes)).toEqual(['p1', 'p2', 'p3', 'p4']);
        expect(r.nodes[0]!.properties).toEqual(FIXTURE_NODES[0]!.properties);
        expect(r.edges.map((e) => [e.from, e.type, e.to])).toEqual([
          ['p1', 'CITES', 'p2'],
          ['p2', 'CITES', 'p3'],
          ['p3', 'CITES', 'p4'],
        ]);
      });

      it('respects direction: against the arrows only with both', async () => {
        expect((await store.path({ from: 'h1', to: 'p1', maxDepth: 6, direction: 'out' })).found).toBe(false);
        const r = await store.path({ from: 'h1', to: 'p1', maxDepth: 6, direction: 'both' });
        expect(ids(r.nodes)).toEqual(['h1', 'c2', 'c1', 'p1']);
        expect(r.edges.map((e) => [e.from, e.type, e.to])).toEqual([
          ['h1', 'SUPPORTS', 'c2'],
          ['c1', 'RELATES_TO', 'c2'],
          ['p1', 'MENTIONS', 'c1'],
        ]);
      });

      it('respects max_depth and types', async () => {
        expect((await store.path({ from: 'p1', to: 'p4', maxDepth: 2, direction: 'out' })).found).toBe(false);
        expect(ids((await store.path({ from: 'p1', to: 'p4', maxDepth: 3, direction: 'out' })).nodes)).toEqual([
          'p1',
          'p2',
          'p3',
          'p4',
        ]);
        // The shortest p1→c2 goes through MENTIONS; without that type there is no path.
        expect(ids((await store.path({ from: 'p1', to: 'c2', maxDepth: 6, direction: 'out' })).nodes)).toEqual([
          'p1',
          'c1',
          'c2',
        ]);
        expect(
          (await store.path({ from: 'p1', to: 'c2', maxDepth: 6, direction: 'out', types: ['CITES', 'RELATES_TO'] }))
            .found,
        ).toBe(false);
        expect((await store.path({ from: 'p1', to: 'f1', maxDepth: 15, direction: 'both' })).found).toBe(false);
      });

      it('a path from a node to itself is that node', async () => {
        const r = await store.path({ from: 'c1', to: 'c1', maxDepth: 1, direction: 'out' });
        expect(r).toEqual({
          found: true,
          nodes: [{ id: 'c1', label: 'Concept', properties: { name: 'attention' } }],
          edges: [],
        });
      });

      it('answers NOT_FOUND for an unknown endpoint', async () => {
        expect((await failure(store.path({ from: 'p1', to: 'ghost', maxDepth: 3, direction: 'out' }))).code).toBe(
          'NOT_FOUND',
        );
        expect((await failure(store.path({ from: 'ghost', to: 'p1', maxDepth: 3, direction: 'out' }))).code).toBe(
          'NOT_FOUND',
        );
      });
    });

    describe('delete and stats', () => {
      beforeEach(seed);

      it('counts nodes, edges, labels and types', async () => {
        expect(await store.stats()).toEqual({
          nodes: 8,
          edges: 7,
          labels: { Concept: 2, Finding: 1, Hypothesis: 1, Paper: 4 },
          types: { CITES: 3, MENTIONS: 2, RELATES_TO: 1, SUPPORTS: 1 },
        });
      });

      it('refuses to delete a connected node without detach (CONFLICT), changing nothing', async () => {
        const e = await failure(store.deleteNode('c1', false));
        expect(e.code).toBe('CONFLICT');
        expect(e.details).toMatchObject({ id: 'c1', edges: 3 });
        expect((await store.stats()).nodes).toBe(8);
      });

      it('detach deletes the node with its edges; an isolated node needs no detach', async () => {
        expect(await store.deleteNode('c1', true)).toEqual({ deleted: 'c1', edges_deleted: 3 });
        expect(await store.getNode('c1')).toBeNull();
        expect(await store.deleteNode('f1', false)).toEqual({ deleted: 'f1', edges_deleted: 0 });
        expect(await store.stats()).toMatchObject({ nodes: 6, edges: 4 });
        expect((await failure(store.deleteNode('c1', true))).code).toBe('NOT_FOUND');
      });

      it('counts a self-loop once', async () => {
        await store.addEdges([{ from: 'f1', to: 'f1', type: 'RELATES_TO' }]);
        expect((await failure(store.deleteNode('f1', false))).details).toMatchObject({ edges: 1 });
        expect(await store.deleteNode('f1', true)).toEqual({ deleted: 'f1', edges_deleted: 1 });
      });
    });

    describe('export and import', () => {
      it('round-trips the graph through export pages and import', async () => {
        await seed();
        const nodes = [];
        const edges = [];
        for await (const page of store.exportPages(3)) {
          nodes.push(...(page.nodes ?? []));
          edges.push(...(page.edges ?? []));
        }
        expect(nodes).toHaveLength(8);
        expect(edges).toHaveLength(7);
        const before = await store.stats();
        await store.clear();
        expect((await store.stats()).nodes).toBe(0);
        const r = await store.importGraph(nodes, edges);
        expect(r.nodes).toMatchObject({ created: 8, updated: 0 });
        expect(r.edges).toEqual({ created: 7, updated: 0 });
        expect(await store.stats()).toEqual(before);
        expect(await store.getNode('p3')).toEqual({
          id: 'p3',
          label: 'Paper',
          properties: FIXTURE_NODES[2]!.properties,
        });
        // Importing again is harmless.
        expect((await store.importGraph(nodes, edges)).edges).toEqual({ created: 0, updated: 7 });
      });

      it('an import with a dangling edge writes nothing', async () => {
        const e = await failure(
          store.importGraph([{ id: 'a', label: 'Concept' }], [{ from: 'a', to: 'b', type: 'RELATES_TO' }]),
        );
        expect(e.code).toBe('NOT_FOUND');
        expect((await store.stats()).nodes).toBe(0);
      });
    });

    describe('query', () => {
      if (backend.name === 'embedded') {
        it('answers CONFLICT: Cypher needs the Neo4j backend', async () => {
          const e = await failure(store.query('MATCH (n) RETURN n', {}, false));
          expect(e.code).toBe('CONFLICT');
          expect(e.details).toEqual({ backend: 'embedded', needs: 'neo4j' });
        });
        return;
      }
      beforeEach(seed);

      it('runs read queries with parameters and returns plain JSON', async () => {
        const r = await store.query(
          'MATCH (p:Paper) WHERE p.year >= $y RETURN p.id AS id, p.year AS year, p ORDER BY id',
          { y: 2020 },
          false,
        );
        expect(r.columns).toEqual(['id', 'year', 'p']);
        expect(r.rows).toEqual([
          { id: 'p3', year: 2020, p: { id: 'p3', label: 'Paper', properties: FIXTURE_NODES[2]!.properties } },
          { id: 'p4', year: 2020, p: { id: 'p4', label: 'Paper', properties: FIXTURE_NODES[3]!.properties } },
        ]);
        expect(r.truncated).toBe(false);
        const count = await store.query('MATCH (n:KgNode) RETURN count(n) AS n', {}, false);
        expect(count.rows).toEqual([{ n: 8 }]);
      });

      it('refuses writes in a read transaction (CONFLICT) and allows them with write: true', async () => {
        const e = await failure(store.query("CREATE (:KgNode:Concept {id: 'w'})", {}, false));
        expect(e.code).toBe('CONFLICT');
        expect(await store.getNode('w')).toBeNull();
        await store.query('CREATE (:KgNode:Concept {id: $id})', { id: 'w' }, true);
        expect(await store.getNode('w')).toEqual({ id: 'w', label: 'Concept', properties: {} });
      });

      it('maps a syntax error to INVALID_DATA', async () => {
        const e = await failure(store.query('MATCH (n RETURN n', {}, false));
        expect(e.code).toBe('INVALID_DATA');
      });
    });
  });
}

if (!gate.run) {
  describe('GraphStore conformance: neo4j', () => {
    it.skip(`skipped: ${gate.reason}`, () => undefined);
  });
}
