/**
 * Knowledge-graph benchmark: batch insert (nodes/s, edges/s), neighbours at depth 1 and 2 (p50/p99)
 * and shortest path (p50) on a random graph of 100k nodes and 200k edges (5k/10k with --quick), for
 * the embedded backend and, when the test Neo4j answers, for Neo4j in the same run.
 *
 * Baselines beside them: a primary-key lookup (the floor of any SQLite query) and the same depth-2
 * neighbourhood as one recursive CTE, which is how the BFS-in-JS choice in sqlite-store.ts was made.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import neo4j from 'neo4j-driver';
import { addEdgesSchema, addNodesSchema } from '../plugins/kg/schemas.js';
import { Neo4jGraphStore } from '../plugins/kg/neo4j-store.js';
import { SqliteGraphStore } from '../plugins/kg/sqlite-store.js';
import type { GraphStore } from '../plugins/kg/store.js';
import type { EdgeInput, NodeInput } from '../plugins/kg/model.js';
import { round, summarize } from './stats.js';

const LABELS = ['Paper', 'Concept', 'Hypothesis', 'Experiment', 'Finding', 'Dataset', 'Method'];
const TYPES = ['SUPPORTS', 'REFUTES', 'CITES', 'TESTS', 'DERIVED_FROM', 'MENTIONS', 'RELATES_TO'];
const BATCH = 5_000;

/** Deterministic PRNG (mulberry32) so both backends get the same graph and the same queries. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeGraph(n: number, m: number): { nodes: NodeInput[]; edges: EdgeInput[] } {
  const r = rng(42);
  const nodes: NodeInput[] = Array.from({ length: n }, (_, i) => ({
    id: `n${i}`,
    label: LABELS[i % LABELS.length]!,
    properties: { name: `node ${i}`, score: round(r() * 100, 2), tags: [`t${i % 13}`, `t${i % 17}`] },
  }));
  const seen = new Set<string>();
  const edges: EdgeInput[] = [];
  while (edges.length < m) {
    const from = `n${Math.floor(r() * n)}`;
    const to = `n${Math.floor(r() * n)}`;
    const type = TYPES[Math.floor(r() * TYPES.length)]!;
    const k = `${from}|${type}|${to}`;
    if (from === to || seen.has(k)) continue;
    seen.add(k);
    edges.push({ from, to, type, properties: { w: round(r(), 3) } });
  }
  return { nodes, edges };
}

/** Insert through the same validation the router applies, in event-sized batches. */
async function insert(
  store: GraphStore,
  g: { nodes: NodeInput[]; edges: EdgeInput[] },
): Promise<{ nodes_per_s: number; edges_per_s: number }> {
  let t = performance.now();
  for (let i = 0; i < g.nodes.length; i += BATCH)
    await store.addNodes(addNodesSchema.parse({ nodes: g.nodes.slice(i, i + BATCH) }).nodes);
  const nodesS = (performance.now() - t) / 1000;
  t = performance.now();
  for (let i = 0; i < g.edges.length; i += BATCH)
    await store.addEdges(addEdgesSchema.parse({ edges: g.edges.slice(i, i + BATCH) }).edges);
  const edgesS = (performance.now() - t) / 1000;
  return { nodes_per_s: Math.round(g.nodes.length / nodesS), edges_per_s: Math.round(g.edges.length / edgesS) };
}

async function timeEach<T>(items: T[], fn: (x: T) => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = [];
  for (const x of items) {
    const t = performance.now();
    await fn(x);
    out.push(performance.now() - t);
  }
  return out;
}

async function queries(
  store: GraphStore,
  n: number,
  samples: number,
  pathSamples: number,
): Promise<Record<string, unknown>> {
  const r = rng(7);
  const starts = Array.from({ length: samples }, () => `n${Math.floor(r() * n)}`);
  const pairs = Array.from(
    { length: pathSamples },
    () => [`n${Math.floor(r() * n)}`, `n${Math.floor(r() * n)}`] as const,
  );
  // Warm caches and query plans so the first samples do not measure compilation.
  for (const id of starts.slice(0, 20))
    await store.neighbors({ id, depth: 2, direction: 'both', includeEdges: false, limit: 10_000 });
  let nodesD2 = 0;
  const d1 = await timeEach(starts, (id) =>
    store.neighbors({ id, depth: 1, direction: 'both', includeEdges: false, limit: 10_000 }),
  );
  const d2 = await timeEach(starts, async (id) => {
    nodesD2 += (await store.neighbors({ id, depth: 2, direction: 'both', includeEdges: false, limit: 10_000 })).nodes
      .length;
  });
  let found = 0;
  const p = await timeEach(pairs, async ([from, to]) => {
    if ((await store.path({ from, to, maxDepth: 10, direction: 'both' })).found) found++;
  });
  return {
    neighbors_depth1: summarize(d1),
    neighbors_depth2: { ...summarize(d2), avg_nodes: Math.round(nodesD2 / samples) },
    shortest_path: { ...summarize(p), found_ratio: round(found / pathSamples, 2), max_depth: 10, direction: 'both' },
  };
}

/** The two baselines, on a second connection to the same file. */
function sqliteBaselines(file: string, n: number, samples: number): Record<string, unknown> {
  const db = new Database(file, { readonly: true });
  try {
    const r = rng(7);
    const starts = Array.from({ length: samples }, () => `n${Math.floor(r() * n)}`);
    const pk = db.prepare('SELECT id, label, props FROM kg_nodes WHERE id = ?');
    const cte = db.prepare(`
      WITH RECURSIVE walk(id, d) AS (
        SELECT @id, 0
        UNION SELECT e.dst, w.d + 1 FROM walk w JOIN kg_edges e ON e.src = w.id WHERE w.d < 2
        UNION SELECT e.src, w.d + 1 FROM walk w JOIN kg_edges e ON e.dst = w.id WHERE w.d < 2)
      SELECT n.id, n.label, n.props, min(w.d) AS depth FROM walk w JOIN kg_nodes n ON n.id = w.id
      WHERE w.id <> @id GROUP BY w.id ORDER BY depth, w.id`);
    const pkT: number[] = [];
    const cteT: number[] = [];
    for (const id of starts) {
      let t = performance.now();
      pk.get(id);
      pkT.push(performance.now() - t);
      t = performance.now();
      for (const row of cte.all({ id }) as Array<{ props: string }>) JSON.parse(row.props);
      cteT.push(performance.now() - t);
    }
    return { baseline_pk_lookup: summarize(pkT), baseline_depth2_recursive_cte: summarize(cteT) };
  } finally {
    db.close();
  }
}

async function benchEmbedded(
  g: { nodes: NodeInput[]; edges: EdgeInput[] },
  samples: number,
  pathSamples: number,
): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-bench-'));
  const file = path.join(dir, 'kg.db');
  const store = new SqliteGraphStore({ file });
  try {
    const ins = await insert(store, g);
    const q = await queries(store, g.nodes.length, samples, pathSamples);
    const base = sqliteBaselines(file, g.nodes.length, samples);
    const d2 = q.neighbors_depth2 as { p50_us: number };
    return {
      insert: ins,
      ...q,
      ...base,
      file_mb: round(fs.statSync(file).size / 2 ** 20, 1),
      targets: { nodes_per_s_ge_30000: ins.nodes_per_s >= 30_000, depth2_p50_le_1ms: d2.p50_us <= 1000 },
    };
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function benchNeo4j(
  g: { nodes: NodeInput[]; edges: EdgeInput[] },
  samples: number,
  pathSamples: number,
): Promise<Record<string, unknown>> {
  const uri = process.env.NEO4J_TEST_URI ?? 'bolt://127.0.0.1:7687';
  const driver = neo4j.driver(
    uri,
    neo4j.auth.basic(process.env.NEO4J_TEST_USER ?? 'neo4j', process.env.NEO4J_TEST_PASSWORD ?? 'agentd-test-password'),
    {
      disableLosslessIntegers: true,
      connectionTimeout: 3000,
      logging: { level: 'error', logger: () => undefined },
    },
  );
  try {
    await driver.verifyConnectivity();
  } catch (e) {
    await driver.close();
    return {
      skipped: `neo4j not reachable at ${uri}: ${(e as Error).message.split('\n')[0]} (scripts/neo4j.sh start)`,
    };
  }
  // The test Neo4j is shared with the kg tests, which clear it: take their lock.
  const { lockNeo4j } = await import('../test/kg/neo4j-lock.js');
  const release = await lockNeo4j();
  const store = new Neo4jGraphStore({ driver });
  try {
    await store.init();
    await store.clear();
    const ins = await insert(store, g);
    return { insert: ins, ...(await queries(store, g.nodes.length, samples, pathSamples)) };
  } finally {
    await store.clear().catch(() => undefined);
    await driver.close();
    release();
  }
}

export async function benchKg(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const n = opts.quick ? 5_000 : 100_000;
  const g = makeGraph(n, 2 * n);
  const samples = opts.quick ? 200 : 1_000;
  const pathSamples = opts.quick ? 50 : 200;
  return {
    graph: { nodes: g.nodes.length, edges: g.edges.length, batch: BATCH },
    embedded: await benchEmbedded(g, samples, pathSamples),
    neo4j: await benchNeo4j(g, opts.quick ? 50 : 300, opts.quick ? 20 : 100),
  };
}

// Run directly: `npx tsx bench/kg.ts [--quick]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchKg({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
}
