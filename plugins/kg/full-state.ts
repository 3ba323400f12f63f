/**
 * The graph's part of a full checkpoint when it lives in Neo4j (the embedded file is copied by the
 * checkpoint plugin itself). A small graph is exported into a file of the embedded store's format,
 * so checkpoint:diff and checkpoint:fork read it like an embedded graph, and put back by replacing
 * the kg nodes of the database. A large one is refused: a page-by-page export of millions of items
 * while writes wait is not a checkpoint, and Neo4j has its own tools for that.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DaemonError } from '../../client/errors.js';
import type { EdgeInput, NodeInput } from './model.js';
import { BASE_LABEL } from './neo4j-values.js';
import { SqliteGraphStore } from './sqlite-store.js';
import type { GraphStore } from './store.js';

async function readAll(store: GraphStore): Promise<{ nodes: NodeInput[]; edges: EdgeInput[] }> {
  const nodes: NodeInput[] = [];
  const edges: EdgeInput[] = [];
  for await (const page of store.exportPages(5_000)) {
    nodes.push(...(page.nodes ?? []));
    edges.push(...(page.edges ?? []));
  }
  return { nodes, edges };
}

export async function captureGraph(store: GraphStore, dir: string, maxItems: number): Promise<Record<string, string>> {
  const st = await store.stats();
  if (st.nodes + st.edges > maxItems) {
    throw new DaemonError(
      'CONFLICT',
      `the Neo4j graph (${st.nodes} nodes, ${st.edges} edges) is larger than kg.full_checkpoint_max_items (${maxItems}), so a full checkpoint does not export it; ` +
        "back it up with Neo4j's own tools (neo4j-admin database dump with the database stopped, or neo4j-admin database backup online on Enterprise), " +
        'take the full checkpoint with the embedded backend, or raise the limit',
      { nodes: st.nodes, edges: st.edges, max_items: maxItems, backend: 'neo4j' },
    );
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'kg.db');
  const out = new SqliteGraphStore({ file });
  try {
    const g = await readAll(store);
    await out.importGraph(g.nodes, g.edges);
  } finally {
    await out.close();
  }
  return { kg: file };
}

/** Replace the graph's kg nodes and edges with the captured ones (re-done whole after a crash). */
export async function putBackGraph(store: GraphStore, dir: string): Promise<void> {
  const src = new SqliteGraphStore({ file: path.join(dir, 'kg.db') });
  let g: { nodes: NodeInput[]; edges: EdgeInput[] };
  try {
    g = await readAll(src);
  } finally {
    await src.close();
  }
  // Only kg's own nodes: whatever else the database holds is not the graph's to roll back.
  for (;;) {
    const r = await store.query(
      `MATCH (n:${BASE_LABEL}) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS c`,
      {},
      true,
    );
    if (Number(r.rows[0]?.c ?? 0) === 0) break;
  }
  await store.importGraph(g.nodes, g.edges);
}
