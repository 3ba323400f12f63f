/**
 * The request schemas of the kg:* events. The router validates against them before a handler runs,
 * and the catalogue and system:discover are generated from them, so every field says what it is.
 */
import { z } from 'zod';
import {
  LIMITS,
  duplicateIssues,
  edgeInputSchema,
  edgeKey,
  labelSchema,
  nodeIdSchema,
  nodeInputSchema,
  typeSchema,
  whereSchema,
} from './model.js';

const batch = <T extends z.ZodType>(item: T, what: string) =>
  z
    .array(item)
    .min(1, { error: `at least one ${what}` })
    .max(LIMITS.batch, { error: `at most ${LIMITS.batch} ${what}s per request; split the batch` });

export const addNodesSchema = z
  .strictObject({
    nodes: batch(nodeInputSchema, 'node').register(z.globalRegistry, {
      description: `Nodes to add or replace, at most ${LIMITS.batch}: [{id?, label, properties?}]`,
    }),
  })
  .superRefine((d, ctx) => {
    const ids = d.nodes.flatMap((n, i) => (n.id === undefined ? [] : [[n.id, i] as const]));
    for (const issue of duplicateIssues(
      ids.map(([id]) => id),
      'nodes',
    )) {
      ctx.addIssue({ code: 'custom', path: ['nodes', ids[issue.path[1] as number]![1], 'id'], message: issue.message });
    }
  });

export const addEdgesSchema = z
  .strictObject({
    edges: batch(edgeInputSchema, 'edge').register(z.globalRegistry, {
      description: `Edges to add or replace, at most ${LIMITS.batch}: [{from, to, type, properties?}]; one edge per (from, type, to)`,
    }),
  })
  .superRefine((d, ctx) => {
    for (const issue of duplicateIssues(d.edges.map(edgeKey), 'edges'))
      ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  });

export const getSchema = z.strictObject({ id: nodeIdSchema.describe('Node id') });

export const findSchema = z.strictObject({
  label: labelSchema.optional().register(z.globalRegistry, { description: 'Only nodes with this label' }),
  where: whereSchema.optional(),
  limit: z
    .number()
    .int()
    .min(1)
    .max(LIMITS.findLimit)
    .default(100)
    .register(z.globalRegistry, { description: `Most nodes per page (1–${LIMITS.findLimit}, default 100)` }),
  cursor: z
    .string()
    .max(2048)
    .optional()
    .register(z.globalRegistry, { description: 'next_cursor of the previous page' }),
});

const typesSchema = z
  .array(typeSchema)
  .min(1)
  .max(32)
  .optional()
  .register(z.globalRegistry, { description: 'Follow only these relationship types' });

export const neighborsSchema = z.strictObject({
  id: nodeIdSchema.describe('Start node id'),
  depth: z
    .number()
    .int()
    .min(1)
    .max(LIMITS.neighborsDepth)
    .default(1)
    .register(z.globalRegistry, { description: `Hops to follow (1–${LIMITS.neighborsDepth}, default 1)` }),
  types: typesSchema,
  direction: z
    .enum(['out', 'in', 'both'])
    .default('both')
    .register(z.globalRegistry, { description: 'Edge direction to follow: out, in or both (default both)' }),
  include_edges: z
    .boolean()
    .default(false)
    .register(z.globalRegistry, { description: 'Also return the edges walked (default false)' }),
  limit: z
    .number()
    .int()
    .min(1)
    .max(LIMITS.neighborsLimit)
    .default(1000)
    .register(z.globalRegistry, {
      description: `Most nodes returned (1–${LIMITS.neighborsLimit}, default 1000); truncated says when reached`,
    }),
});

export const pathSchema = z.strictObject({
  from: nodeIdSchema.describe('Start node id'),
  to: nodeIdSchema.describe('End node id'),
  max_depth: z
    .number()
    .int()
    .min(1)
    .max(LIMITS.pathDepth)
    .default(6)
    .register(z.globalRegistry, { description: `Longest path considered, in hops (1–${LIMITS.pathDepth}, default 6)` }),
  direction: z
    .enum(['out', 'both'])
    .default('out')
    .register(z.globalRegistry, { description: 'Follow edges forwards only (out, default) or either way (both)' }),
  types: typesSchema,
});

export const deleteSchema = z
  .strictObject({
    id: nodeIdSchema.optional().register(z.globalRegistry, { description: 'Node to delete' }),
    detach: z
      .boolean()
      .default(false)
      .register(z.globalRegistry, { description: 'Also delete its edges (without it a connected node is CONFLICT)' }),
    edge: z
      .strictObject({ from: nodeIdSchema, to: nodeIdSchema, type: typeSchema })
      .optional()
      .register(z.globalRegistry, { description: 'Delete this edge {from, to, type} instead of a node' }),
  })
  .refine((d) => (d.id === undefined) !== (d.edge === undefined), {
    error: 'give id (a node) or edge (an edge), not both and not neither',
    path: ['id'],
  });

export const statsSchema = z.strictObject({});

export const exportSchema = z.strictObject({
  format: z.literal('json').default('json').register(z.globalRegistry, { description: 'Export format (json)' }),
  path: z.string().min(1).max(4096).optional().register(z.globalRegistry, {
    description: 'Absolute file path on the daemon host to write (JSON Lines); without it the graph comes back inline',
  }),
  overwrite: z.boolean().default(false).register(z.globalRegistry, {
    description: 'Replace a file already at path (default: CONFLICT); a symbolic link is never written through',
  }),
});

const graphSchema = z.strictObject({
  nodes: z
    .array(nodeInputSchema)
    .max(100_000)
    .default([])
    .register(z.globalRegistry, { description: 'Nodes as kg:export returns them' }),
  edges: z
    .array(edgeInputSchema)
    .max(200_000)
    .default([])
    .register(z.globalRegistry, { description: 'Edges as kg:export returns them' }),
});

export const importSchema = z
  .strictObject({
    format: z.literal('json').default('json').register(z.globalRegistry, { description: 'Import format (json)' }),
    path: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .register(z.globalRegistry, { description: 'Absolute path of a file written by kg:export {path}' }),
    graph: graphSchema
      .optional()
      .register(z.globalRegistry, { description: 'An inline graph {nodes, edges} as kg:export returns it' }),
  })
  .refine((d) => (d.path === undefined) !== (d.graph === undefined), {
    error: 'give exactly one of path or graph',
    path: ['path'],
  });

export const querySchema = z.strictObject({
  cypher: z
    .string()
    .min(1)
    .max(LIMITS.cypher)
    .register(z.globalRegistry, { description: 'Cypher text; pass values through params, never by building the text' }),
  params: z
    .record(z.string(), z.unknown())
    .default({})
    .register(z.globalRegistry, { description: 'Query parameters ($name in the text)' }),
  write: z
    .boolean()
    .default(false)
    .register(z.globalRegistry, { description: 'Run in a write transaction (default: read-only)' }),
});

export const changedSchema = z.object({
  op: z
    .enum(['add_nodes', 'add_edges', 'delete', 'import', 'query'])
    .register(z.globalRegistry, { description: 'What changed the graph' }),
  backend: z.enum(['embedded', 'neo4j']),
  nodes_created: z.number().int(),
  nodes_updated: z.number().int(),
  nodes_deleted: z.number().int(),
  edges_created: z.number().int(),
  edges_updated: z.number().int(),
  edges_deleted: z.number().int(),
});
export type ChangedEvent = z.infer<typeof changedSchema>;

// Answers. Loose objects: fields may be added, never removed or retyped.
const nodeOut = z.looseObject({ id: z.string(), label: z.string(), properties: z.record(z.string(), z.unknown()) });
const edgeOut = z.looseObject({
  from: z.string(),
  to: z.string(),
  type: z.string(),
  properties: z.record(z.string(), z.unknown()).optional(),
});
const counted = { created: z.number().int(), updated: z.number().int() };
export const responses = {
  addNodes: z.looseObject({ ids: z.array(z.string()), ...counted }),
  addEdges: z.looseObject(counted),
  get: z.looseObject({ node: nodeOut }),
  find: z.looseObject({ nodes: z.array(nodeOut), next_cursor: z.string().nullable() }),
  neighbors: z.looseObject({
    nodes: z.array(nodeOut.extend({ depth: z.number().int() })),
    edges: z.array(edgeOut).optional(),
    truncated: z.boolean(),
  }),
  path: z.looseObject({ found: z.boolean(), nodes: z.array(nodeOut) }),
  delete: z.looseObject({ deleted: z.unknown(), edges_deleted: z.number().int() }),
  stats: z.looseObject({
    nodes: z.number().int(),
    edges: z.number().int(),
    labels: z.record(z.string(), z.number()),
    types: z.record(z.string(), z.number()),
  }),
  export: z.looseObject({ format: z.literal('json') }),
  import: z.looseObject({
    nodes_created: z.number().int(),
    nodes_updated: z.number().int(),
    edges_created: z.number().int(),
    edges_updated: z.number().int(),
  }),
  query: z.looseObject({ columns: z.array(z.string()), rows: z.array(z.unknown()), truncated: z.boolean() }),
};
