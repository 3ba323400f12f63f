/**
 * The one interface both graph backends implement. The conformance suite (test/kg/conformance.test.ts)
 * runs the same cases against each, so callers never need to know which one is behind it.
 *
 * Errors are DaemonErrors with the catalogue's codes: NOT_FOUND (unknown id, missing edge endpoint),
 * CONFLICT (label change, deleting a connected node without detach, Cypher on the embedded backend),
 * INVALID_DATA (a value that slipped past the event schema), UNAVAILABLE (the backend is unreachable).
 * A write that fails changes nothing.
 */
import { DaemonError } from '../../client/errors.js';
import type { EdgeInput, KgEdge, KgNode, NodeInput } from './model.js';
import { PROPERTY_KEY_RE, isIdentifier } from './model.js';

export type BackendName = 'embedded' | 'neo4j';
export type Direction = 'out' | 'in' | 'both';

export interface AddNodesResult {
  /** The ids of the batch's nodes, in input order (generated ones included). */
  ids: string[];
  created: number;
  updated: number;
}

export interface AddEdgesResult {
  created: number;
  updated: number;
}

export interface FindQuery {
  label?: string;
  where?: Record<string, string | number | boolean>;
  limit: number;
  /** Opaque, from a previous page's `next_cursor`. */
  cursor?: string;
}

export interface FindResult {
  nodes: KgNode[];
  /** Present when more nodes match: pass it back as `cursor`. */
  next_cursor: string | null;
}

export interface NeighborsQuery {
  id: string;
  depth: number;
  types?: string[];
  direction: Direction;
  includeEdges: boolean;
  /** Most nodes returned; reaching it sets `truncated`. */
  limit: number;
}

export type NeighborNode = KgNode & { depth: number };

export interface NeighborsResult {
  /** Ordered by depth, then id. The start node is not included. */
  nodes: NeighborNode[];
  /** Matching edges with both ends in {start} ∪ nodes, ordered by (from, type, to); only when asked. */
  edges?: KgEdge[];
  truncated: boolean;
}

export interface PathQuery {
  from: string;
  to: string;
  maxDepth: number;
  direction: 'out' | 'both';
  types?: string[];
}

export interface PathResult {
  found: boolean;
  /** The shortest path's nodes in order, endpoints included; empty when not found. */
  nodes: KgNode[];
  /** The edges along it, in order (an edge walked backwards keeps its own from/to). */
  edges: KgEdge[];
}

export interface DeleteResult {
  deleted: string;
  edges_deleted: number;
}

export interface GraphStats {
  nodes: number;
  edges: number;
  labels: Record<string, number>;
  types: Record<string, number>;
}

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

export interface ImportResult {
  nodes: AddNodesResult;
  edges: AddEdgesResult;
}

export interface GraphStore {
  readonly backend: BackendName;
  /** Create tables/constraints; idempotent. */
  init(): Promise<void>;
  close(): Promise<void>;
  /** Upsert by id: an existing node keeps its label (a different one is CONFLICT) and gets exactly these properties. */
  addNodes(nodes: NodeInput[]): Promise<AddNodesResult>;
  /** Upsert by (from, type, to); any missing endpoint fails the whole batch with NOT_FOUND. */
  addEdges(edges: EdgeInput[]): Promise<AddEdgesResult>;
  getNode(id: string): Promise<KgNode | null>;
  find(q: FindQuery): Promise<FindResult>;
  neighbors(q: NeighborsQuery): Promise<NeighborsResult>;
  path(q: PathQuery): Promise<PathResult>;
  deleteNode(id: string, detach: boolean): Promise<DeleteResult>;
  deleteEdge(e: { from: string; type: string; to: string }): Promise<boolean>;
  stats(): Promise<GraphStats>;
  /** Every node, then every edge, in pages of at most `pageSize` (ordered by id / by edge key). */
  exportPages(pageSize: number): AsyncIterable<{ nodes?: KgNode[]; edges?: KgEdge[] }>;
  /** Nodes then edges in one transaction: all or nothing. Endpoints may be in `nodes` or already stored. */
  importGraph(nodes: NodeInput[], edges: EdgeInput[]): Promise<ImportResult>;
  /** Raw Cypher (Neo4j only); read-only unless `write`. */
  query(cypher: string, params: Record<string, unknown>, write: boolean): Promise<QueryResult>;
  /** Remove everything (tests, benchmarks). */
  clear(): Promise<void>;
}

/** Defence in depth: the Neo4j backend puts labels/types into query text, so re-check them there. */
export function assertIdentifiers(values: Iterable<string>, what: string): void {
  const bad = [...values].filter((v) => !isIdentifier(v));
  if (bad.length > 0) {
    throw new DaemonError('INVALID_DATA', `${what} must be identifiers`, {
      issues: bad
        .slice(0, 20)
        .map((v) => ({ path: [what], message: `not an identifier: ${JSON.stringify(v).slice(0, 80)}` })),
    });
  }
}

/** `where` keys reach a JSON path (embedded) or a dynamic property lookup (Neo4j): only identifiers. */
export function assertPropertyKeys(keys: Iterable<string>): void {
  const bad = [...keys].filter((k) => !PROPERTY_KEY_RE.test(k));
  if (bad.length > 0) {
    throw new DaemonError('INVALID_DATA', 'property keys must be identifiers', {
      issues: bad.slice(0, 20).map((k) => ({ path: ['where', k], message: 'not an identifier' })),
    });
  }
}

export function missingEndpoints(
  edges: EdgeInput[],
  exists: (id: string) => boolean,
): Array<{ index: number; field: 'from' | 'to'; id: string }> {
  const missing: Array<{ index: number; field: 'from' | 'to'; id: string }> = [];
  edges.forEach((e, index) => {
    if (!exists(e.from)) missing.push({ index, field: 'from', id: e.from });
    if (!exists(e.to)) missing.push({ index, field: 'to', id: e.to });
  });
  return missing;
}

export function missingEndpointError(missing: Array<{ index: number; field: string; id: string }>): DaemonError {
  const ids = [...new Set(missing.map((m) => m.id))];
  return new DaemonError(
    'NOT_FOUND',
    `edge endpoint${ids.length > 1 ? 's' : ''} not found: ${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', …' : ''}; nothing was written`,
    {
      missing: missing.slice(0, 100).map((m) => ({ path: ['edges', m.index, m.field], id: m.id })),
    },
  );
}

export function labelConflictError(
  conflicts: Array<{ index: number; id: string; existing: string; label: string }>,
): DaemonError {
  return new DaemonError(
    'CONFLICT',
    `node ${conflicts[0]!.id} already exists with label ${conflicts[0]!.existing}; a node's label cannot change (delete it first); nothing was written`,
    {
      conflicts: conflicts
        .slice(0, 100)
        .map((c) => ({ path: ['nodes', c.index, 'label'], id: c.id, existing_label: c.existing, label: c.label })),
    },
  );
}

export function notFound(id: string): DaemonError {
  return new DaemonError('NOT_FOUND', `node not found: ${id}`, { id });
}

export function connectedError(id: string, edges: number): DaemonError {
  return new DaemonError(
    'CONFLICT',
    `node ${id} has ${edges} edge${edges === 1 ? '' : 's'}; pass detach: true to delete them with it`,
    { id, edges },
  );
}

export function needsNeo4j(): DaemonError {
  return new DaemonError(
    'CONFLICT',
    'kg:query runs Cypher and needs the Neo4j backend (kg.backend: neo4j); the embedded backend answers the other kg:* events',
    {
      backend: 'embedded',
      needs: 'neo4j',
    },
  );
}

/** Cursors are opaque to callers; inside they are the last id of the previous page. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ after: lastId }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined) return null;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof v.after === 'string') return v.after;
  } catch {
    /* fall through */
  }
  throw new DaemonError('INVALID_DATA', 'cursor is not one this daemon issued', {
    issues: [{ path: ['cursor'], message: 'invalid cursor' }],
  });
}
