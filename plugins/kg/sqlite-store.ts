/**
 * The embedded backend: one SQLite file (var/db/kg.db) through better-sqlite3. Nodes and edges are two
 * WITHOUT ROWID tables clustered on the keys traversals use: edges by (src, type, dst) with a second
 * index on (dst, type, src), so expanding a frontier in either direction is an index range scan per node.
 * Traversals are breadth-first in JS with one query per level (see traversal.ts) rather than one
 * recursive CTE: the CTE is a little faster for a small depth-2 neighbourhood (bench/kg.ts measures
 * both side by side), but the BFS gives both backends the same ordering, the same truncation at
 * `limit`, the walked edges, and a bidirectional shortest path, and it stays well under a millisecond.
 */
import crypto from 'node:crypto';
import Database from 'better-sqlite3';
import type { EdgeInput, KgEdge, KgNode, NodeInput, Properties } from './model.js';
import { edgeKey } from './model.js';
import {
  assertIdentifiers,
  assertPropertyKeys,
  connectedError,
  decodeCursor,
  encodeCursor,
  labelConflictError,
  missingEndpointError,
  missingEndpoints,
  needsNeo4j,
  notFound,
  type AddEdgesResult,
  type AddNodesResult,
  type DeleteResult,
  type Direction,
  type FindQuery,
  type FindResult,
  type GraphStats,
  type GraphStore,
  type ImportResult,
  type NeighborsQuery,
  type NeighborsResult,
  type PathQuery,
  type PathResult,
  type QueryResult,
} from './store.js';
import { bfs, compareEdges, compareIds, shortestPath, type Step } from './traversal.js';

/** Index i is schema version i+1; append, never edit. */
const MIGRATIONS = [
  `CREATE TABLE kg_nodes (id TEXT PRIMARY KEY, label TEXT NOT NULL, props TEXT NOT NULL) WITHOUT ROWID;
   CREATE INDEX kg_nodes_label ON kg_nodes(label, id);
   CREATE TABLE kg_edges (src TEXT NOT NULL, type TEXT NOT NULL, dst TEXT NOT NULL, props TEXT NOT NULL,
                          PRIMARY KEY (src, type, dst)) WITHOUT ROWID;
   CREATE INDEX kg_edges_in ON kg_edges(dst, type, src);`,
  // Counts per label and per type kept by triggers, so kg:stats reads a few rows instead of grouping
  // the whole graph (tens of ms on a graph of 40k nodes, all of it on the daemon's event loop).
  `CREATE TABLE kg_label_counts (label TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE kg_type_counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
   INSERT INTO kg_label_counts (label, n) SELECT label, count(*) FROM kg_nodes GROUP BY label;
   INSERT INTO kg_type_counts (type, n) SELECT type, count(*) FROM kg_edges GROUP BY type;
   CREATE TRIGGER kg_nodes_counted AFTER INSERT ON kg_nodes BEGIN
     INSERT INTO kg_label_counts (label, n) VALUES (NEW.label, 1) ON CONFLICT (label) DO UPDATE SET n = n + 1;
   END;
   CREATE TRIGGER kg_nodes_uncounted AFTER DELETE ON kg_nodes BEGIN
     UPDATE kg_label_counts SET n = n - 1 WHERE label = OLD.label;
     DELETE FROM kg_label_counts WHERE label = OLD.label AND n <= 0;
   END;
   CREATE TRIGGER kg_nodes_recounted AFTER UPDATE OF label ON kg_nodes WHEN OLD.label IS NOT NEW.label BEGIN
     UPDATE kg_label_counts SET n = n - 1 WHERE label = OLD.label;
     DELETE FROM kg_label_counts WHERE label = OLD.label AND n <= 0;
     INSERT INTO kg_label_counts (label, n) VALUES (NEW.label, 1) ON CONFLICT (label) DO UPDATE SET n = n + 1;
   END;
   CREATE TRIGGER kg_edges_counted AFTER INSERT ON kg_edges BEGIN
     INSERT INTO kg_type_counts (type, n) VALUES (NEW.type, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1;
   END;
   CREATE TRIGGER kg_edges_uncounted AFTER DELETE ON kg_edges BEGIN
     UPDATE kg_type_counts SET n = n - 1 WHERE type = OLD.type;
     DELETE FROM kg_type_counts WHERE type = OLD.type AND n <= 0;
   END;
   CREATE TRIGGER kg_edges_recounted AFTER UPDATE OF type ON kg_edges WHEN OLD.type IS NOT NEW.type BEGIN
     UPDATE kg_type_counts SET n = n - 1 WHERE type = OLD.type;
     DELETE FROM kg_type_counts WHERE type = OLD.type AND n <= 0;
     INSERT INTO kg_type_counts (type, n) VALUES (NEW.type, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1;
   END;`,
];

interface NodeRow {
  id: string;
  label: string;
  props: string;
}
interface EdgeRow {
  src: string;
  type: string;
  dst: string;
  props: string;
}

const toNode = (r: NodeRow): KgNode => ({ id: r.id, label: r.label, properties: JSON.parse(r.props) as Properties });
const toEdge = (r: EdgeRow): KgEdge => ({
  from: r.src,
  to: r.dst,
  type: r.type,
  properties: JSON.parse(r.props) as Properties,
});

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for tests. */
  file: string;
}

export class SqliteGraphStore implements GraphStore {
  readonly backend = 'embedded' as const;
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<SqliteGraphStore['prepare']>;
  private readonly expandCache = new Map<string, Database.Statement>();

  constructor(opts: SqliteStoreOptions) {
    this.db = new Database(opts.file);
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL survives a process crash (kill -9); only an OS crash can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('cache_size = -65536');
    this.db.pragma('temp_store = MEMORY');
    this.migrate();
    this.stmts = this.prepare();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  private prepare() {
    const db = this.db;
    return {
      existing: db.prepare<[string], { id: string; label: string }>(
        'SELECT id, label FROM kg_nodes WHERE id IN (SELECT value FROM json_each(?))',
      ),
      insertNode: db.prepare<[string, string, string]>(
        'INSERT OR IGNORE INTO kg_nodes (id, label, props) VALUES (?, ?, ?)',
      ),
      labelOf: db.prepare<[string], { label: string }>('SELECT label FROM kg_nodes WHERE id = ?'),
      updateNode: db.prepare<[string, string]>('UPDATE kg_nodes SET props = ? WHERE id = ?'),
      insertEdge: db.prepare<[string, string, string, string]>(
        'INSERT OR IGNORE INTO kg_edges (src, type, dst, props) VALUES (?, ?, ?, ?)',
      ),
      updateEdge: db.prepare<[string, string, string, string]>(
        'UPDATE kg_edges SET props = ? WHERE src = ? AND type = ? AND dst = ?',
      ),
      getNode: db.prepare<[string], NodeRow>('SELECT id, label, props FROM kg_nodes WHERE id = ?'),
      getNodes: db.prepare<[string], NodeRow>(
        'SELECT id, label, props FROM kg_nodes WHERE id IN (SELECT value FROM json_each(?))',
      ),
      getEdge: db.prepare<[string, string, string], EdgeRow>(
        'SELECT src, type, dst, props FROM kg_edges WHERE src = ? AND type = ? AND dst = ?',
      ),
      degree: db.prepare<[{ id: string }], { n: number }>(
        `SELECT (SELECT count(*) FROM kg_edges WHERE src = @id) + (SELECT count(*) FROM kg_edges WHERE dst = @id)
              - (SELECT count(*) FROM kg_edges WHERE src = @id AND dst = @id) AS n`,
      ),
      deleteEdgesOf: db.prepare<[string, string]>('DELETE FROM kg_edges WHERE src = ? OR dst = ?'),
      deleteNode: db.prepare<[string]>('DELETE FROM kg_nodes WHERE id = ?'),
      deleteEdge: db.prepare<[string, string, string]>('DELETE FROM kg_edges WHERE src = ? AND type = ? AND dst = ?'),
      labels: db.prepare<[], { k: string; n: number }>('SELECT label AS k, n FROM kg_label_counts'),
      types: db.prepare<[], { k: string; n: number }>('SELECT type AS k, n FROM kg_type_counts'),
      nodePage: db.prepare<[string, number], NodeRow>(
        'SELECT id, label, props FROM kg_nodes WHERE id > ? ORDER BY id LIMIT ?',
      ),
      edgePage: db.prepare<[string, string, string, number], EdgeRow>(
        'SELECT src, type, dst, props FROM kg_edges WHERE (src, type, dst) > (?, ?, ?) ORDER BY src, type, dst LIMIT ?',
      ),
    };
  }

  async init(): Promise<void> {
    /* the constructor migrated; nothing to wait for */
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async addNodes(nodes: NodeInput[]): Promise<AddNodesResult> {
    return this.db.transaction(() => this.writeNodes(nodes))();
  }

  async addEdges(edges: EdgeInput[]): Promise<AddEdgesResult> {
    return this.db.transaction(() => this.writeEdges(edges))();
  }

  async importGraph(nodes: NodeInput[], edges: EdgeInput[]): Promise<ImportResult> {
    return this.db.transaction(() => ({ nodes: this.writeNodes(nodes), edges: this.writeEdges(edges) }))();
  }

  /** Runs inside a transaction: a thrown error leaves the database as it was. */
  private writeNodes(nodes: NodeInput[]): AddNodesResult {
    // Same guard as the Neo4j backend (where labels enter query text), so both answer alike.
    assertIdentifiers(new Set(nodes.map((n) => n.label)), 'labels');
    const ids = nodes.map((n) => n.id ?? crypto.randomUUID());
    const conflicts: Array<{ index: number; id: string; existing: string; label: string }> = [];
    let updated = 0;
    // Insert-or-ignore first: new nodes (the bulk case) cost one statement. An existing one is checked
    // for a label change; any conflict throws after the loop, which rolls the whole batch back.
    nodes.forEach((n, i) => {
      const props = JSON.stringify(n.properties ?? {});
      if (this.stmts.insertNode.run(ids[i]!, n.label, props).changes > 0) return;
      const old = this.stmts.labelOf.get(ids[i]!)!.label;
      if (old !== n.label) conflicts.push({ index: i, id: ids[i]!, existing: old, label: n.label });
      else this.stmts.updateNode.run(props, ids[i]!);
      updated++;
    });
    if (conflicts.length > 0) throw labelConflictError(conflicts);
    return { ids, created: nodes.length - updated, updated };
  }

  private writeEdges(edges: EdgeInput[]): AddEdgesResult {
    assertIdentifiers(new Set(edges.map((e) => e.type)), 'types');
    const endpoints = [...new Set(edges.flatMap((e) => [e.from, e.to]))];
    const found = new Set<string>();
    for (const r of this.stmts.existing.iterate(JSON.stringify(endpoints))) found.add(r.id);
    const missing = missingEndpoints(edges, (id) => found.has(id));
    if (missing.length > 0) throw missingEndpointError(missing);
    let updated = 0;
    // Writing in key order turns random B-tree inserts into mostly appends within each page.
    const ordered = edges.length > 64 ? [...edges].sort(compareEdges) : edges;
    for (const e of ordered) {
      // Insert-or-ignore then update tells new from existing in one statement for the common (new) case.
      const props = JSON.stringify(e.properties ?? {});
      if (this.stmts.insertEdge.run(e.from, e.type, e.to, props).changes === 0) {
        this.stmts.updateEdge.run(props, e.from, e.type, e.to);
        updated++;
      }
    }
    return { created: edges.length - updated, updated };
  }

  async getNode(id: string): Promise<KgNode | null> {
    const r = this.stmts.getNode.get(id);
    return r ? toNode(r) : null;
  }

  async find(q: FindQuery): Promise<FindResult> {
    if (q.label !== undefined) assertIdentifiers([q.label], 'label');
    assertPropertyKeys(Object.keys(q.where ?? {}));
    const after = decodeCursor(q.cursor);
    const conds: string[] = [];
    const params: unknown[] = [];
    if (q.label !== undefined) {
      conds.push('label = ?');
      params.push(q.label);
    }
    if (after !== null) {
      conds.push('id > ?');
      params.push(after);
    }
    for (const [key, value] of Object.entries(q.where ?? {})) {
      // Keys are validated identifiers, but they still travel as parameters; json_type keeps
      // true from matching 1 and "1" from matching 1, as in Neo4j.
      const path = `$.${key}`;
      if (typeof value === 'boolean') {
        conds.push('json_type(props, ?) = ?');
        params.push(path, value ? 'true' : 'false');
      } else if (typeof value === 'number') {
        conds.push("json_type(props, ?) IN ('integer', 'real') AND json_extract(props, ?) = ?");
        params.push(path, path, value);
      } else {
        conds.push("json_type(props, ?) = 'text' AND json_extract(props, ?) = ?");
        params.push(path, path, value);
      }
    }
    const sql = `SELECT id, label, props FROM kg_nodes ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY id LIMIT ?`;
    const rows = this.db.prepare<unknown[], NodeRow>(sql).all(...params, q.limit + 1);
    const more = rows.length > q.limit;
    const nodes = rows.slice(0, q.limit).map(toNode);
    return { nodes, next_cursor: more ? encodeCursor(nodes[nodes.length - 1]!.id) : null };
  }

  /** A statement that expands a frontier one hop in one direction (optionally restricted to types). */
  private expandStmt(
    dir: 'out' | 'in',
    typed: boolean,
  ): Database.Statement<unknown[], { src: string; type: string; dst: string }> {
    const key = `${dir}:${typed}`;
    let s = this.expandCache.get(key);
    if (!s) {
      const col = dir === 'out' ? 'src' : 'dst';
      s = this.db.prepare(
        `SELECT src, type, dst FROM kg_edges WHERE ${col} IN (SELECT value FROM json_each(?))${typed ? ' AND type IN (SELECT value FROM json_each(?))' : ''}`,
      );
      this.expandCache.set(key, s);
    }
    return s as Database.Statement<unknown[], { src: string; type: string; dst: string }>;
  }

  private expander(direction: Direction, types: string[] | undefined): (frontier: string[]) => Step[] {
    const typed = types !== undefined;
    const typesJson = typed ? JSON.stringify(types) : undefined;
    const dirs: Array<'out' | 'in'> = direction === 'both' ? ['out', 'in'] : [direction];
    return (frontier) => {
      const arg = JSON.stringify(frontier);
      const steps: Step[] = [];
      for (const d of dirs) {
        const stmt = this.expandStmt(d, typed);
        const rows = typed ? stmt.all(arg, typesJson) : stmt.all(arg);
        for (const r of rows) {
          steps.push(
            d === 'out'
              ? { from: r.src, type: r.type, to: r.dst, at: r.src, next: r.dst }
              : { from: r.src, type: r.type, to: r.dst, at: r.dst, next: r.src },
          );
        }
      }
      return steps;
    };
  }

  private nodesById(ids: string[]): Map<string, KgNode> {
    const m = new Map<string, KgNode>();
    for (const r of this.stmts.getNodes.iterate(JSON.stringify(ids))) m.set(r.id, toNode(r));
    return m;
  }

  private edgesFor(steps: Step[]): KgEdge[] {
    const seen = new Set<string>();
    const edges: KgEdge[] = [];
    for (const s of steps) {
      const k = edgeKey(s);
      if (seen.has(k)) continue;
      seen.add(k);
      const r = this.stmts.getEdge.get(s.from, s.type, s.to);
      if (r) edges.push(toEdge(r));
    }
    return edges.sort(compareEdges);
  }

  async neighbors(q: NeighborsQuery): Promise<NeighborsResult> {
    if (q.types) assertIdentifiers(q.types, 'types');
    if (!this.stmts.getNode.get(q.id)) throw notFound(q.id);
    const r = await bfs(q.id, q.depth, q.limit, this.expander(q.direction, q.types), q.includeEdges);
    const byId = this.nodesById(r.order.map((o) => o.id));
    const nodes = r.order.map((o) => ({ ...byId.get(o.id)!, depth: o.depth }));
    return q.includeEdges
      ? { nodes, edges: this.edgesFor(r.steps), truncated: r.truncated }
      : { nodes, truncated: r.truncated };
  }

  async path(q: PathQuery): Promise<PathResult> {
    if (q.types) assertIdentifiers(q.types, 'types');
    for (const id of [q.from, q.to]) if (!this.stmts.getNode.get(id)) throw notFound(id);
    const fwd = this.expander(q.direction === 'out' ? 'out' : 'both', q.types);
    const bwd = this.expander(q.direction === 'out' ? 'in' : 'both', q.types);
    const p = await shortestPath(q.from, q.to, q.maxDepth, fwd, bwd);
    if (!p) return { found: false, nodes: [], edges: [] };
    const byId = this.nodesById(p.ids);
    const edges = p.steps.map((s) => toEdge(this.stmts.getEdge.get(s.from, s.type, s.to)!));
    return { found: true, nodes: p.ids.map((id) => byId.get(id)!), edges };
  }

  async deleteNode(id: string, detach: boolean): Promise<DeleteResult> {
    return this.db.transaction(() => {
      if (!this.stmts.getNode.get(id)) throw notFound(id);
      const n = this.stmts.degree.get({ id })!.n;
      if (n > 0 && !detach) throw connectedError(id, n);
      const edges = n > 0 ? this.stmts.deleteEdgesOf.run(id, id).changes : 0;
      this.stmts.deleteNode.run(id);
      return { deleted: id, edges_deleted: edges };
    })();
  }

  async deleteEdge(e: { from: string; type: string; to: string }): Promise<boolean> {
    return this.stmts.deleteEdge.run(e.from, e.type, e.to).changes > 0;
  }

  async stats(): Promise<GraphStats> {
    const tally = (rows: Array<{ k: string; n: number }>) =>
      Object.fromEntries(rows.sort((a, b) => compareIds(a.k, b.k)).map((r) => [r.k, r.n]));
    const sum = (rows: Array<{ n: number }>) => rows.reduce((n, r) => n + r.n, 0);
    // One read transaction, so the four figures agree with each other.
    return this.db.transaction(() => {
      const labels = this.stmts.labels.all();
      const types = this.stmts.types.all();
      return { nodes: sum(labels), edges: sum(types), labels: tally(labels), types: tally(types) };
    })();
  }

  async *exportPages(pageSize: number): AsyncIterable<{ nodes?: KgNode[]; edges?: KgEdge[] }> {
    let after = '';
    for (;;) {
      const rows = this.stmts.nodePage.all(after, pageSize);
      if (rows.length === 0) break;
      yield { nodes: rows.map(toNode) };
      after = rows[rows.length - 1]!.id;
    }
    let key: [string, string, string] = ['', '', ''];
    for (;;) {
      const rows = this.stmts.edgePage.all(...key, pageSize);
      if (rows.length === 0) break;
      yield { edges: rows.map(toEdge) };
      const last = rows[rows.length - 1]!;
      key = [last.src, last.type, last.dst];
    }
  }

  async query(): Promise<QueryResult> {
    throw needsNeo4j();
  }

  async clear(): Promise<void> {
    this.db.exec('DELETE FROM kg_edges; DELETE FROM kg_nodes;');
  }
}
