/**
 * The Neo4j backend's writes, as functions of a managed transaction so a whole batch (or a whole
 * import chunk) is one transaction. Labels and types are the only text put into the queries: they are
 * checked to be identifiers here and quoted with backticks; every value is a parameter. Each function
 * is idempotent, so executeWrite may retry it after a transient error.
 */
import crypto from 'node:crypto';
import type { ManagedTransaction } from 'neo4j-driver';
import type { EdgeInput, NodeInput } from './model.js';
import { BASE_LABEL } from './neo4j-values.js';
import {
  assertIdentifiers,
  labelConflictError,
  missingEndpointError,
  missingEndpoints,
  type AddEdgesResult,
  type AddNodesResult,
} from './store.js';

/** Rows per UNWIND: big enough to amortise round trips, small enough to keep transaction state modest. */
export const CHUNK = 5_000;

/** A validated identifier, quoted for Cypher. */
export const q = (name: string): string => `\`${name}\``;

export function chunks<T>(xs: T[], n = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const g = m.get(k);
    if (g) g.push(x);
    else m.set(k, [x]);
  }
  return m;
}

/** id → label of those of `ids` that exist. */
export async function existingLabels(tx: ManagedTransaction, ids: string[]): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const part of chunks(ids)) {
    const r = await tx.run(
      `UNWIND $ids AS id MATCH (n:${BASE_LABEL} {id: id}) RETURN n.id AS id, [l IN labels(n) WHERE l <> '${BASE_LABEL}'][0] AS label`,
      { ids: part },
    );
    for (const rec of r.records) m.set(rec.get('id') as string, rec.get('label') as string);
  }
  return m;
}

export async function writeNodes(
  tx: ManagedTransaction,
  nodes: NodeInput[],
  preset?: string[],
): Promise<AddNodesResult> {
  assertIdentifiers(new Set(nodes.map((n) => n.label)), 'labels');
  const ids = preset ?? nodes.map((n) => n.id ?? crypto.randomUUID());
  const existing = await existingLabels(tx, ids);
  const conflicts = nodes.flatMap((n, index) => {
    const old = existing.get(ids[index]!);
    return old !== undefined && old !== n.label ? [{ index, id: ids[index]!, existing: old, label: n.label }] : [];
  });
  if (conflicts.length > 0) throw labelConflictError(conflicts);
  const rows = nodes.map((n, i) => ({ label: n.label, props: { ...(n.properties ?? {}), id: ids[i]! } }));
  for (const [label, group] of groupBy(rows, (r) => r.label)) {
    for (const part of chunks(group)) {
      // SET n = map replaces every property, so the map carries the id too.
      await tx.run(
        `UNWIND $rows AS r MERGE (n:${BASE_LABEL} {id: r.props.id}) ON CREATE SET n:${q(label)} SET n = r.props`,
        { rows: part },
      );
    }
  }
  return { ids, created: ids.filter((id) => !existing.has(id)).length, updated: existing.size };
}

export async function writeEdges(tx: ManagedTransaction, edges: EdgeInput[]): Promise<AddEdgesResult> {
  assertIdentifiers(new Set(edges.map((e) => e.type)), 'types');
  const endpoints = [...new Set(edges.flatMap((e) => [e.from, e.to]))];
  const found = new Set(await existingLabels(tx, endpoints).then((m) => m.keys()));
  const missing = missingEndpoints(edges, (id) => found.has(id));
  if (missing.length > 0) throw missingEndpointError(missing);
  let updated = 0;
  for (const [type, group] of groupBy(edges, (e) => e.type)) {
    for (const part of chunks(group)) {
      const rows = part.map((e) => ({ from: e.from, to: e.to, props: e.properties ?? {} }));
      const r = await tx.run(
        `UNWIND $rows AS r
         MATCH (a:${BASE_LABEL} {id: r.from}), (b:${BASE_LABEL} {id: r.to})
         OPTIONAL MATCH (a)-[old:${q(type)}]->(b)
         WITH a, b, r, count(old) > 0 AS existed
         MERGE (a)-[e:${q(type)}]->(b)
         SET e = r.props
         RETURN sum(CASE WHEN existed THEN 1 ELSE 0 END) AS updated`,
        { rows },
      );
      updated += Number(r.records[0]?.get('updated') ?? 0);
    }
  }
  return { created: edges.length - updated, updated };
}
