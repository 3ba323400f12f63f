/** kg:stats reads counts kept by triggers: right after every kind of write, and for a graph made before the counts existed. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteGraphStore } from '../../plugins/kg/sqlite-store.js';

describe('embedded kg counts', () => {
  it('counts a graph written before the count tables existed, then keeps them through every write', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kg-counts-')), 'kg.db');
    // A file at schema version 1, as an older agentd left it.
    const old = new Database(file);
    old.exec(`CREATE TABLE kg_nodes (id TEXT PRIMARY KEY, label TEXT NOT NULL, props TEXT NOT NULL) WITHOUT ROWID;
      CREATE INDEX kg_nodes_label ON kg_nodes(label, id);
      CREATE TABLE kg_edges (src TEXT NOT NULL, type TEXT NOT NULL, dst TEXT NOT NULL, props TEXT NOT NULL, PRIMARY KEY (src, type, dst)) WITHOUT ROWID;
      CREATE INDEX kg_edges_in ON kg_edges(dst, type, src);
      INSERT INTO kg_nodes VALUES ('a', 'Paper', '{}'), ('b', 'Paper', '{}'), ('c', 'Concept', '{}');
      INSERT INTO kg_edges VALUES ('a', 'CITES', 'b', '{}');
      PRAGMA user_version = 1;`);
    old.close();
    const store = new SqliteGraphStore({ file });
    expect(await store.stats()).toEqual({ nodes: 3, edges: 1, labels: { Concept: 1, Paper: 2 }, types: { CITES: 1 } });
    await store.addNodes([
      { id: 'd', label: 'Finding', properties: {} },
      { id: 'a', label: 'Paper', properties: { x: 1 } },
    ]);
    await store.addEdges([
      { from: 'b', to: 'c', type: 'MENTIONS', properties: {} },
      { from: 'a', to: 'b', type: 'CITES', properties: { w: 1 } },
    ]);
    expect(await store.stats()).toEqual({
      nodes: 4,
      edges: 2,
      labels: { Concept: 1, Finding: 1, Paper: 2 },
      types: { CITES: 1, MENTIONS: 1 },
    });
    await store.deleteEdge({ from: 'a', type: 'CITES', to: 'b' });
    await store.deleteNode('b', true);
    expect(await store.stats()).toEqual({
      nodes: 3,
      edges: 0,
      labels: { Concept: 1, Finding: 1, Paper: 1 },
      types: {},
    });
    await store.clear();
    expect(await store.stats()).toEqual({ nodes: 0, edges: 0, labels: {}, types: {} });
    await store.close();
  });
});
