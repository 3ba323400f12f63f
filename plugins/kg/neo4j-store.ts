/**
 * The Neo4j backend through neo4j-driver. Every graph node carries the base label KgNode (one
 * uniqueness constraint on KgNode.id covers the graph, and every lookup by id is an index seek) plus
 * its own label. Writes are UNWIND batches of MERGE in managed transactions (executeWrite retries
 * transient errors; the work functions are idempotent so a retry is safe). Values always travel as
 * parameters; the only text put into queries is labels and types, which are validated identifiers
 * checked again here (writes: neo4j-writes.ts) and quoted with backticks, and integers checked to be integers.
 */
import crypto from 'node:crypto';
import { Neo4jError, type Driver, type ManagedTransaction, type Node, type Session } from 'neo4j-driver';
import { DaemonError } from '../../client/errors.js';
import type { EdgeInput, KgEdge, KgNode, NodeInput } from './model.js';
import { LIMITS, edgeKey } from './model.js';
import {
  BASE_LABEL,
  isConnectivityError,
  nodeFromNeo4j,
  plainProperties,
  queryError,
  toPlain,
} from './neo4j-values.js';
import {
  assertIdentifiers,
  assertPropertyKeys,
  connectedError,
  decodeCursor,
  encodeCursor,
  labelConflictError,
  missingEndpointError,
  missingEndpoints,
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
import { bfs, compareEdges, compareIds, type Step } from './traversal.js';
import { CHUNK, chunks, existingLabels, q, writeEdges, writeNodes } from './neo4j-writes.js';

export interface Neo4jStoreOptions {
  driver: Driver;
  database?: string;
  /** Called when an operation failed because the server is unreachable (so the owner can degrade). */
  onUnavailable?: (reason: string, err: unknown) => void;
}

export class Neo4jGraphStore implements GraphStore {
  readonly backend = 'neo4j' as const;

  constructor(private readonly opts: Neo4jStoreOptions) {}

  private session(mode: 'READ' | 'WRITE'): Session {
    return this.opts.driver.session({
      database: this.opts.database,
      defaultAccessMode: mode === 'READ' ? 'READ' : 'WRITE',
    });
  }

  /** Run work in a managed transaction, translating "server gone" into UNAVAILABLE. */
  private async tx<T>(mode: 'READ' | 'WRITE', work: (tx: ManagedTransaction) => Promise<T>): Promise<T> {
    const s = this.session(mode);
    try {
      return await (mode === 'READ' ? s.executeRead(work) : s.executeWrite(work));
    } catch (e) {
      throw this.translate(e);
    } finally {
      await s.close().catch(() => undefined);
    }
  }

  private translate(e: unknown): unknown {
    if (e instanceof DaemonError) return e;
    if (isConnectivityError(e)) {
      const reason = `neo4j unreachable: ${(e as Neo4jError).message}`;
      this.opts.onUnavailable?.(reason, e);
      return new DaemonError('UNAVAILABLE', reason, { backend: 'neo4j', neo4j_code: (e as Neo4jError).code });
    }
    return e;
  }

  async init(): Promise<void> {
    const s = this.session('WRITE');
    try {
      await s.run(`CREATE CONSTRAINT kg_node_id IF NOT EXISTS FOR (n:${BASE_LABEL}) REQUIRE n.id IS UNIQUE`);
    } catch (e) {
      throw this.translate(e);
    } finally {
      await s.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    /* the driver belongs to the connection manager */
  }

  async addNodes(nodes: NodeInput[]): Promise<AddNodesResult> {
    return this.tx('WRITE', (tx) => writeNodes(tx, nodes));
  }

  async addEdges(edges: EdgeInput[]): Promise<AddEdgesResult> {
    return this.tx('WRITE', (tx) => writeEdges(tx, edges));
  }

  async importGraph(nodes: NodeInput[], edges: EdgeInput[]): Promise<ImportResult> {
    // One transaction for a whole large import would hold all of it in the server's heap, so: check
    // everything first (nothing is written when anything is wrong), then write in chunked transactions.
    // Every write is an idempotent upsert, so an import cut short by a lost connection is simply re-run.
    const ids = nodes.map((n) => n.id ?? crypto.randomUUID());
    await this.tx('READ', async (tx) => {
      const existing = await existingLabels(tx, [...new Set([...ids, ...edges.flatMap((e) => [e.from, e.to])])]);
      const conflicts = nodes.flatMap((n, index) => {
        const old = existing.get(ids[index]!);
        return old !== undefined && old !== n.label ? [{ index, id: ids[index]!, existing: old, label: n.label }] : [];
      });
      if (conflicts.length > 0) throw labelConflictError(conflicts);
      const incoming = new Set(ids);
      const missing = missingEndpoints(edges, (id) => incoming.has(id) || existing.has(id));
      if (missing.length > 0) throw missingEndpointError(missing);
    });
    const result: ImportResult = { nodes: { ids, created: 0, updated: 0 }, edges: { created: 0, updated: 0 } };
    for (let i = 0; i < nodes.length; i += CHUNK) {
      const r = await this.tx('WRITE', (tx) => writeNodes(tx, nodes.slice(i, i + CHUNK), ids.slice(i, i + CHUNK)));
      result.nodes.created += r.created;
      result.nodes.updated += r.updated;
    }
    for (const part of chunks(edges)) {
      const r = await this.tx('WRITE', (tx) => writeEdges(tx, part));
      result.edges.created += r.created;
      result.edges.updated += r.updated;
    }
    return result;
  }

  async getNode(id: string): Promise<KgNode | null> {
    return this.tx('READ', async (tx) => {
      const r = await tx.run(`MATCH (n:${BASE_LABEL} {id: $id}) RETURN n`, { id });
      const rec = r.records[0];
      return rec ? nodeFromNeo4j(rec.get('n') as Node) : null;
    });
  }

  async find(fq: FindQuery): Promise<FindResult> {
    if (fq.label !== undefined) assertIdentifiers([fq.label], 'label');
    assertPropertyKeys(Object.keys(fq.where ?? {}));
    const after = decodeCursor(fq.cursor);
    const conds: string[] = [];
    const params: Record<string, unknown> = { limit: fq.limit + 1 };
    if (after !== null) {
      conds.push('n.id > $after');
      params.after = after;
    }
    Object.entries(fq.where ?? {}).forEach(([key, value], i) => {
      // Dynamic property access by parameter: the key never enters the query text.
      conds.push(`n[$k${i}] = $v${i}`);
      params[`k${i}`] = key;
      params[`v${i}`] = value;
    });
    const label = fq.label === undefined ? '' : `:${q(fq.label)}`;
    const cypher = `MATCH (n:${BASE_LABEL}${label}) ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} RETURN n ORDER BY n.id LIMIT toInteger($limit)`;
    const nodes = await this.tx('READ', async (tx) =>
      (await tx.run(cypher, params)).records.map((r) => nodeFromNeo4j(r.get('n') as Node)),
    );
    const more = nodes.length > fq.limit;
    if (more) nodes.length = fq.limit;
    return { nodes, next_cursor: more ? encodeCursor(nodes[nodes.length - 1]!.id) : null };
  }

  private expander(
    tx: ManagedTransaction,
    direction: Direction,
    types: string[] | undefined,
  ): (frontier: string[]) => Promise<Step[]> {
    const pattern = direction === 'out' ? '-[r]->' : direction === 'in' ? '<-[r]-' : '-[r]-';
    const cypher = `UNWIND $ids AS id MATCH (a:${BASE_LABEL} {id: id})${pattern}(b:${BASE_LABEL})
      WHERE $types IS NULL OR type(r) IN $types
      RETURN a.id AS at, b.id AS next, startNode(r) = a AS outgoing, type(r) AS type`;
    return async (frontier) => {
      const steps: Step[] = [];
      for (const part of chunks(frontier)) {
        const r = await tx.run(cypher, { ids: part, types: types ?? null });
        for (const rec of r.records) {
          const at = rec.get('at') as string;
          const next = rec.get('next') as string;
          const out = rec.get('outgoing') as boolean;
          steps.push({ from: out ? at : next, to: out ? next : at, type: rec.get('type') as string, at, next });
        }
      }
      return steps;
    };
  }

  private async nodesById(tx: ManagedTransaction, ids: string[]): Promise<Map<string, KgNode>> {
    const m = new Map<string, KgNode>();
    for (const part of chunks(ids)) {
      const r = await tx.run(`UNWIND $ids AS id MATCH (n:${BASE_LABEL} {id: id}) RETURN n`, { ids: part });
      for (const rec of r.records) {
        const n = nodeFromNeo4j(rec.get('n') as Node);
        m.set(n.id, n);
      }
    }
    return m;
  }

  private async edgesFor(
    tx: ManagedTransaction,
    steps: Array<{ from: string; type: string; to: string }>,
  ): Promise<KgEdge[]> {
    const unique = [...new Map(steps.map((s) => [edgeKey(s), { from: s.from, type: s.type, to: s.to }])).values()];
    const edges: KgEdge[] = [];
    for (const part of chunks(unique)) {
      const r = await tx.run(
        `UNWIND $keys AS k MATCH (a:${BASE_LABEL} {id: k.from})-[e]->(b:${BASE_LABEL} {id: k.to}) WHERE type(e) = k.type
         RETURN k.from AS from, k.to AS to, k.type AS type, properties(e) AS props`,
        { keys: part },
      );
      for (const rec of r.records) {
        edges.push({
          from: rec.get('from') as string,
          to: rec.get('to') as string,
          type: rec.get('type') as string,
          properties: plainProperties(rec.get('props') as Record<string, unknown>),
        });
      }
    }
    return edges;
  }

  async neighbors(nq: NeighborsQuery): Promise<NeighborsResult> {
    if (nq.types) assertIdentifiers(nq.types, 'types');
    return this.tx('READ', async (tx) => {
      const start = await tx.run(`MATCH (n:${BASE_LABEL} {id: $id}) RETURN count(n) AS c`, { id: nq.id });
      if (Number(start.records[0]!.get('c')) === 0) throw notFound(nq.id);
      const r = await bfs(nq.id, nq.depth, nq.limit, this.expander(tx, nq.direction, nq.types), nq.includeEdges);
      const byId = await this.nodesById(
        tx,
        r.order.map((o) => o.id),
      );
      const nodes = r.order.map((o) => ({ ...byId.get(o.id)!, depth: o.depth }));
      if (!nq.includeEdges) return { nodes, truncated: r.truncated };
      return { nodes, edges: (await this.edgesFor(tx, r.steps)).sort(compareEdges), truncated: r.truncated };
    });
  }

  async path(pq: PathQuery): Promise<PathResult> {
    if (pq.types) assertIdentifiers(pq.types, 'types');
    if (!Number.isInteger(pq.maxDepth) || pq.maxDepth < 1 || pq.maxDepth > LIMITS.pathDepth) {
      throw new DaemonError('INVALID_DATA', `max_depth must be an integer from 1 to ${LIMITS.pathDepth}`, {
        issues: [{ path: ['max_depth'], message: 'out of range' }],
      });
    }
    return this.tx('READ', async (tx) => {
      const ends = await this.nodesById(tx, [...new Set([pq.from, pq.to])]);
      for (const id of [pq.from, pq.to]) if (!ends.has(id)) throw notFound(id);
      if (pq.from === pq.to) return { found: true, nodes: [ends.get(pq.from)!], edges: [] };
      const arrow = pq.direction === 'out' ? '->' : '-';
      // Bounds and types go into the pattern itself (maxDepth checked to be a small integer above,
      // types checked to be identifiers): a WHERE over relationships(p) can make Neo4j give up its
      // bidirectional search for an exhaustive one, seconds instead of milliseconds on a miss.
      const types = pq.types ? `:${pq.types.map(q).join('|')}` : '';
      const r = await tx.run(
        `MATCH (a:${BASE_LABEL} {id: $from}), (b:${BASE_LABEL} {id: $to})
         MATCH p = shortestPath((a)-[${types}*..${pq.maxDepth}]${arrow}(b))
         RETURN nodes(p) AS nodes,
                [r IN relationships(p) | {from: startNode(r).id, to: endNode(r).id, type: type(r), props: properties(r)}] AS rels`,
        { from: pq.from, to: pq.to },
      );
      const rec = r.records[0];
      if (!rec) return { found: false, nodes: [], edges: [] };
      const rels = rec.get('rels') as Array<{ from: string; to: string; type: string; props: Record<string, unknown> }>;
      return {
        found: true,
        nodes: (rec.get('nodes') as Node[]).map(nodeFromNeo4j),
        edges: rels.map((e) => ({ from: e.from, to: e.to, type: e.type, properties: plainProperties(e.props) })),
      };
    });
  }

  async deleteNode(id: string, detach: boolean): Promise<DeleteResult> {
    return this.tx('WRITE', async (tx) => {
      // Grouping by n makes a missing node give no row (a bare count() would answer 0).
      const r = await tx.run(
        `MATCH (n:${BASE_LABEL} {id: $id}) OPTIONAL MATCH (n)-[e]-() RETURN n.id AS id, count(DISTINCT e) AS edges`,
        { id },
      );
      const rec = r.records[0];
      if (!rec) throw notFound(id);
      const edges = Number(rec.get('edges'));
      if (edges > 0 && !detach) throw connectedError(id, edges);
      await tx.run(`MATCH (n:${BASE_LABEL} {id: $id}) DETACH DELETE n`, { id });
      return { deleted: id, edges_deleted: edges };
    });
  }

  async deleteEdge(e: { from: string; type: string; to: string }): Promise<boolean> {
    return this.tx('WRITE', async (tx) => {
      const r = await tx.run(
        `MATCH (:${BASE_LABEL} {id: $from})-[e]->(:${BASE_LABEL} {id: $to}) WHERE type(e) = $type DELETE e RETURN count(*) AS c`,
        e,
      );
      return Number(r.records[0]?.get('c') ?? 0) > 0;
    });
  }

  async stats(): Promise<GraphStats> {
    return this.tx('READ', async (tx) => {
      const labels = await tx.run(
        `MATCH (n:${BASE_LABEL}) UNWIND labels(n) AS l WITH l WHERE l <> '${BASE_LABEL}' RETURN l AS k, count(*) AS n`,
      );
      const types = await tx.run(`MATCH (:${BASE_LABEL})-[r]->(:${BASE_LABEL}) RETURN type(r) AS k, count(*) AS n`);
      const tally = (rs: typeof labels.records) =>
        Object.fromEntries(
          rs.map((x) => [x.get('k') as string, Number(x.get('n'))] as const).sort((a, b) => compareIds(a[0], b[0])),
        );
      const l = tally(labels.records);
      const t = tally(types.records);
      const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
      return { nodes: sum(l), edges: sum(t), labels: l, types: t };
    });
  }

  async *exportPages(pageSize: number): AsyncIterable<{ nodes?: KgNode[]; edges?: KgEdge[] }> {
    let after = '';
    for (;;) {
      const nodes = await this.tx('READ', async (tx) =>
        (
          await tx.run(`MATCH (n:${BASE_LABEL}) WHERE n.id > $after RETURN n ORDER BY n.id LIMIT toInteger($limit)`, {
            after,
            limit: pageSize,
          })
        ).records.map((r) => nodeFromNeo4j(r.get('n') as Node)),
      );
      if (nodes.length === 0) break;
      yield { nodes };
      after = nodes[nodes.length - 1]!.id;
    }
    // Edges page by their source node: the outgoing edges of the next `pageSize` sources in id order.
    after = '';
    for (;;) {
      const page = await this.tx('READ', async (tx) => {
        const r = await tx.run(
          `MATCH (a:${BASE_LABEL}) WHERE a.id > $after AND EXISTS { (a)-->(:${BASE_LABEL}) }
           WITH a ORDER BY a.id LIMIT toInteger($limit)
           MATCH (a)-[e]->(b:${BASE_LABEL})
           RETURN a.id AS from, b.id AS to, type(e) AS type, properties(e) AS props`,
          { after, limit: pageSize },
        );
        return r.records.map((x) => ({
          from: x.get('from') as string,
          to: x.get('to') as string,
          type: x.get('type') as string,
          properties: plainProperties(x.get('props') as Record<string, unknown>),
        }));
      });
      if (page.length === 0) break;
      page.sort(compareEdges);
      yield { edges: page };
      after = page[page.length - 1]!.from;
    }
  }

  async query(cypher: string, params: Record<string, unknown>, write: boolean): Promise<QueryResult> {
    const s = this.session(write ? 'WRITE' : 'READ');
    try {
      const work = async (tx: ManagedTransaction): Promise<QueryResult> => {
        const rows: Record<string, unknown>[] = [];
        let truncated = false;
        const res = tx.run(cypher, params);
        for await (const rec of res) {
          if (rows.length >= LIMITS.queryRows) {
            truncated = true;
            break;
          }
          rows.push(Object.fromEntries(rec.keys.map((k) => [String(k), toPlain(rec.get(k))])));
        }
        const columns = (await res.keys()).map(String);
        return { columns, rows, truncated };
      };
      return await (write ? s.executeWrite(work) : s.executeRead(work));
    } catch (e) {
      const t = this.translate(e);
      if (t instanceof Neo4jError) throw queryError(t);
      throw t;
    } finally {
      await s.close().catch(() => undefined);
    }
  }

  async clear(): Promise<void> {
    // Batches keep one transaction's state bounded on a big graph.
    for (;;) {
      const r = await this.tx('WRITE', (tx) =>
        tx.run('MATCH (n) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS c'),
      );
      if (Number(r.records[0]?.get('c') ?? 0) === 0) break;
    }
  }
}
