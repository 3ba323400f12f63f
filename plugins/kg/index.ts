/**
 * kg: the knowledge graph. Nodes {id, label, properties} and typed edges {from, to, type, properties}
 * in an embedded SQLite file (default) or in Neo4j. The work lives in service.ts and the stores; this
 * file only declares the events and binds them.
 */
import path from 'node:path';
import { definePlugin } from '../../daemon/plugin-api.js';
import {
  addEdgesSchema,
  addNodesSchema,
  changedSchema,
  deleteSchema,
  exportSchema,
  findSchema,
  getSchema,
  importSchema,
  neighborsSchema,
  pathSchema,
  querySchema,
  responses,
  statsSchema,
  type ChangedEvent,
} from './schemas.js';
import { KgService, configSchema } from './service.js';

export default definePlugin({
  name: 'kg',
  namespaces: ['kg'],
  description: 'Knowledge graph: typed nodes and edges, embedded SQLite by default or Neo4j (kg.backend: neo4j).',
  configSchema,
  publishes: {
    'kg:changed':
      'The graph changed: {op, backend, nodes_created, nodes_updated, nodes_deleted, edges_created, edges_updated, edges_deleted}',
  },

  async start(ctx) {
    const kg = new KgService({
      config: ctx.config,
      dbDir: ctx.paths.db,
      log: ctx.log,
      emit: (event, data: ChangedEvent) => ctx.emit(event, changedSchema.parse(data)),
      onStatus: (ok, reason) => ctx.setStatus(ok ? 'ok' : 'degraded', reason, 'BACKEND_UNAVAILABLE'),
    });
    await kg.start();
    return kg;
  },

  stop: (kg) => kg.stop(),

  health: (kg) => kg.health(),

  // The embedded graph is a file of its own, copied in the same cut as agentd.db; a Neo4j graph is
  // exported by the plugin itself when small enough (kg.full_checkpoint_max_items), refused otherwise.
  fullState: {
    files: (kg, ctx): Record<string, string> =>
      kg.backend === 'embedded' ? { kg: path.resolve(ctx.config.file ?? path.join(ctx.paths.db, 'kg.db')) } : {},
    entities: {
      nodes: { file: 'kg', table: 'kg_nodes', key: 'id' },
      edges: { file: 'kg', table: 'kg_edges', key: { from: 'src', type: 'type', to: 'dst' } },
    },
    external: {
      freeze: (kg) => kg.freeze(),
      thaw: (kg) => kg.thaw(),
      capture: (kg, dir) => kg.captureFull(dir),
      putBack: (kg, dir) => kg.putBackFull(dir),
    },
  },

  events: {
    'kg:add_nodes': {
      summary: 'Add or replace nodes in one all-or-nothing batch; returns their ids',
      description:
        'Idempotent by id: re-adding an id replaces its properties (its label cannot change: CONFLICT). Ids are generated when absent. Answers {ids, created, updated}.',
      schema: addNodesSchema,
      emits: ['kg:changed'],
      errors: ['CONFLICT', 'UNAVAILABLE'],
      response: responses.addNodes,
      handler: (d, kg) => kg.addNodes(d.nodes),
    },
    'kg:add_edges': {
      summary: 'Add or replace typed edges in one all-or-nothing batch',
      description:
        'One edge per (from, type, to); re-adding it replaces its properties. An edge whose endpoint does not exist fails the whole batch with NOT_FOUND (details.missing names each). Answers {created, updated}.',
      schema: addEdgesSchema,
      emits: ['kg:changed'],
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
      response: responses.addEdges,
      handler: (d, kg) => kg.addEdges(d.edges),
    },
    'kg:get': {
      summary: 'One node by id: {node}',
      schema: getSchema,
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
      response: responses.get,
      handler: (d, kg) => kg.get(d.id),
    },
    'kg:find': {
      summary: 'Nodes by label and property equality, paged by cursor: {nodes, next_cursor}',
      schema: findSchema,
      errors: ['UNAVAILABLE'],
      response: responses.find,
      handler: async (d, kg) => (await kg.store()).find(d),
    },
    'kg:neighbors': {
      summary: 'Nodes within depth hops of a node, each with its depth: {nodes, edges?, truncated}',
      description:
        'Breadth-first; nodes ordered by (depth, id), the start node excluded. With include_edges, the matching edges walked between returned nodes.',
      schema: neighborsSchema,
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
      response: responses.neighbors,
      handler: async (d, kg) =>
        (await kg.store()).neighbors({
          id: d.id,
          depth: d.depth,
          direction: d.direction,
          includeEdges: d.include_edges,
          limit: d.limit,
          ...(d.types ? { types: d.types } : {}),
        }),
    },
    'kg:path': {
      summary: 'Shortest path between two nodes: {found, nodes, edges}',
      description:
        'nodes are the path in order, endpoints included; found is false when no path of at most max_depth hops exists.',
      schema: pathSchema,
      errors: ['NOT_FOUND', 'UNAVAILABLE'],
      response: responses.path,
      handler: async (d, kg) =>
        (await kg.store()).path({
          from: d.from,
          to: d.to,
          maxDepth: d.max_depth,
          direction: d.direction,
          ...(d.types ? { types: d.types } : {}),
        }),
    },
    'kg:delete': {
      summary: 'Delete a node ({id, detach?}) or an edge ({edge: {from, to, type}})',
      description:
        'A node with edges is CONFLICT unless detach: true, which deletes its edges too. Answers {deleted, edges_deleted}.',
      schema: deleteSchema,
      emits: ['kg:changed'],
      errors: ['NOT_FOUND', 'CONFLICT', 'UNAVAILABLE'],
      response: responses.delete,
      handler: (d, kg) => (d.edge ? kg.deleteEdge(d.edge) : kg.deleteNode(d.id!, d.detach)),
    },
    'kg:stats': {
      summary: 'Counts: {nodes, edges, labels: {Label: n}, types: {TYPE: n}}',
      schema: statsSchema,
      errors: ['UNAVAILABLE'],
      response: responses.stats,
      handler: async (_d, kg) => (await kg.store()).stats(),
    },
    'kg:export': {
      summary: 'The whole graph as JSON: inline {nodes, edges}, or written to a file with path',
      description:
        'With path (absolute, on the daemon host) writes JSON Lines (0600) and answers {path, nodes, edges, bytes}; a file already there is CONFLICT unless overwrite: true, and a symbolic link is never written through. Inline is refused (CONFLICT) above kg.export_inline_max items.',
      schema: exportSchema,
      errors: ['CONFLICT', 'NOT_FOUND', 'UNAVAILABLE'],
      defaultTimeoutMs: 300_000,
      response: responses.export,
      handler: (d, kg) => kg.export(d.path, d.overwrite),
    },
    'kg:import': {
      summary: 'Load a graph from kg:export output (inline graph or file path); upserts, all checked first',
      description:
        'Everything is validated (and every edge endpoint found) before anything is written; nodes and edges are upserted, so re-running an import is harmless.',
      schema: importSchema,
      emits: ['kg:changed'],
      errors: ['NOT_FOUND', 'CONFLICT', 'UNAVAILABLE'],
      defaultTimeoutMs: 300_000,
      response: responses.import,
      handler: (d, kg) => kg.import(d.graph ? { graph: d.graph } : { path: d.path! }),
    },
    'kg:query': {
      summary: 'Run Cypher on the Neo4j backend: {columns, rows, truncated}',
      description: `Read-only unless write: true. Always pass values as params. The embedded backend answers CONFLICT (it has no Cypher). Rows are capped.`,
      schema: querySchema,
      emits: ['kg:changed'],
      errors: ['CONFLICT', 'UNAVAILABLE'],
      response: responses.query,
      handler: (d, kg) => kg.query(d.cypher, d.params, d.write),
    },
  },
});
