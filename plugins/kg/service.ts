/**
 * The kg plugin's work, independent of the kernel: picks the backend from config, hands each request
 * to the store, and reports what changed. index.ts only binds these methods to events.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DaemonError } from '../../client/errors.js';
import { captureGraph, putBackGraph } from './full-state.js';
import { exportToFile, readGraphFile } from './graph-file.js';
import type { Neo4jConnection, StatusListener } from './neo4j-connection.js';
import type { ChangedEvent } from './schemas.js';
import { SqliteGraphStore } from './sqlite-store.js';
import type { GraphStore } from './store.js';
import type { EdgeInput, KgEdge, KgNode, NodeInput } from './model.js';

export const configSchema = z.object({
  backend: z
    .enum(['embedded', 'neo4j'])
    .default('embedded')
    .register(z.globalRegistry, { description: 'Where the graph lives: embedded (SQLite, default) or neo4j' }),
  file: z
    .string()
    .optional()
    .register(z.globalRegistry, { description: 'Embedded database file (default <AGENTD_HOME>/db/kg.db)' }),
  export_inline_max: z.coerce.number().int().min(0).default(50_000).register(z.globalRegistry, {
    description: 'Largest graph (nodes + edges) kg:export returns inline; bigger ones need path',
  }),
  full_checkpoint_max_items: z.coerce.number().int().min(0).default(100_000).register(z.globalRegistry, {
    description:
      "Largest Neo4j graph (nodes + edges) a full checkpoint exports; a bigger one is refused with Neo4j's own backup tools named (the embedded graph is always copied)",
  }),
  neo4j: z
    .object({
      uri: z.string().default('bolt://127.0.0.1:7687'),
      user: z.coerce.string().default('neo4j'),
      password: z.coerce
        .string()
        .optional()
        .register(z.globalRegistry, { description: 'Prefer AGENTD_KG_NEO4J__PASSWORD or password_file; never logged' }),
      password_file: z.string().optional(),
      database: z.coerce
        .string()
        .optional()
        .register(z.globalRegistry, { description: 'Database name (default: the server default)' }),
      connection_timeout_ms: z.coerce.number().int().min(100).default(3000),
      max_retry_time_ms: z.coerce.number().int().min(0).default(5000),
      probe_min_ms: z.coerce.number().int().min(50).default(500),
      probe_max_ms: z.coerce.number().int().min(100).default(30_000),
    })
    .prefault({}),
});
export type KgConfig = z.infer<typeof configSchema>;

const ZERO: Omit<ChangedEvent, 'op' | 'backend'> = {
  nodes_created: 0,
  nodes_updated: 0,
  nodes_deleted: 0,
  edges_created: 0,
  edges_updated: 0,
  edges_deleted: 0,
};

export interface ServiceOptions {
  config: KgConfig;
  dbDir: string;
  log: Logger;
  emit: (event: 'kg:changed', data: ChangedEvent) => void;
  onStatus: StatusListener;
}

export class KgService {
  private embedded: SqliteGraphStore | null = null;
  private neo: Neo4jConnection | null = null;
  /** Set while a full checkpoint takes the Neo4j graph: writes wait for it. */
  private frozen: { done: Promise<void>; release: () => void } | null = null;
  private readonly writing = new Set<Promise<unknown>>();

  constructor(private readonly opts: ServiceOptions) {}

  get backend(): 'embedded' | 'neo4j' {
    return this.opts.config.backend;
  }

  async start(): Promise<void> {
    const { config, log } = this.opts;
    if (config.backend === 'embedded') {
      const file = config.file ?? path.join(this.opts.dbDir, 'kg.db');
      this.embedded = new SqliteGraphStore({ file });
      log.info({ backend: 'embedded', file }, 'kg store open');
    } else {
      // The kernel parses environment overrides as YAML, which would turn a password like 0123 into
      // the number 123; a secret is taken from the environment verbatim.
      const rawPassword = process.env.AGENTD_KG_NEO4J__PASSWORD;
      const neo4jConfig = rawPassword === undefined ? config.neo4j : { ...config.neo4j, password: rawPassword };
      // neo4j-driver is imported only for this backend: the embedded default never pays its ~20 MB.
      const { Neo4jConnection } = await import('./neo4j-connection.js');
      this.neo = new Neo4jConnection(neo4jConfig, log, this.opts.onStatus);
      await this.neo.start();
    }
  }

  async stop(): Promise<void> {
    await this.embedded?.close();
    await this.neo?.close();
    this.embedded = null;
    this.neo = null;
  }

  async store(): Promise<GraphStore> {
    if (this.embedded) return this.embedded;
    if (this.neo) return this.neo.acquire();
    throw new DaemonError('UNAVAILABLE', 'kg store is not started');
  }

  health(): Record<string, unknown> {
    return { backend: this.backend, ...(this.neo ? { neo4j: this.neo.status } : {}) };
  }

  /** A write: held while a full checkpoint copies the Neo4j graph, and tracked so the copy waits for it. */
  private async write<T>(fn: () => Promise<T>): Promise<T> {
    while (this.frozen) await this.frozen.done;
    const p = fn();
    this.writing.add(p);
    try {
      return await p;
    } finally {
      this.writing.delete(p);
    }
  }

  /** Hold writes to a Neo4j graph (and let those in flight finish); false for the embedded one, copied as a file. */
  async freeze(): Promise<boolean> {
    if (this.backend !== 'neo4j') return false;
    if (!this.frozen) {
      let release!: () => void;
      const done = new Promise<void>((r) => (release = r));
      this.frozen = { done, release };
    }
    await Promise.allSettled([...this.writing]);
    return true;
  }

  thaw(): void {
    const f = this.frozen;
    this.frozen = null;
    f?.release();
  }

  async captureFull(dir: string): Promise<Record<string, string>> {
    return captureGraph(await this.store(), dir, this.opts.config.full_checkpoint_max_items);
  }

  async putBackFull(dir: string): Promise<void> {
    await putBackGraph(await this.store(), dir);
    this.changed('import', {});
  }

  private changed(op: ChangedEvent['op'], counts: Partial<typeof ZERO>): void {
    this.opts.emit('kg:changed', { op, backend: this.backend, ...ZERO, ...counts });
  }

  async addNodes(nodes: NodeInput[]) {
    const r = await this.write(async () => (await this.store()).addNodes(nodes));
    this.changed('add_nodes', { nodes_created: r.created, nodes_updated: r.updated });
    return r;
  }

  async addEdges(edges: EdgeInput[]) {
    const r = await this.write(async () => (await this.store()).addEdges(edges));
    this.changed('add_edges', { edges_created: r.created, edges_updated: r.updated });
    return r;
  }

  async get(id: string): Promise<{ node: KgNode }> {
    const node = await (await this.store()).getNode(id);
    if (!node) throw new DaemonError('NOT_FOUND', `node not found: ${id}`, { id });
    return { node };
  }

  async deleteNode(id: string, detach: boolean) {
    const r = await this.write(async () => (await this.store()).deleteNode(id, detach));
    this.changed('delete', { nodes_deleted: 1, edges_deleted: r.edges_deleted });
    return r;
  }

  async deleteEdge(e: { from: string; type: string; to: string }) {
    if (!(await this.write(async () => (await this.store()).deleteEdge(e))))
      throw new DaemonError('NOT_FOUND', `edge not found: (${e.from})-[${e.type}]->(${e.to})`, { edge: e });
    this.changed('delete', { edges_deleted: 1 });
    return { deleted: e, edges_deleted: 1 };
  }

  async export(file: string | undefined, overwrite = false) {
    const store = await this.store();
    if (file !== undefined) return { format: 'json', ...(await exportToFile(store, file, { overwrite })) };
    const stats = await store.stats();
    if (stats.nodes + stats.edges > this.opts.config.export_inline_max) {
      throw new DaemonError(
        'CONFLICT',
        `the graph (${stats.nodes} nodes, ${stats.edges} edges) is too large to export inline; pass path to write a file`,
        {
          nodes: stats.nodes,
          edges: stats.edges,
          inline_max: this.opts.config.export_inline_max,
        },
      );
    }
    const nodes: KgNode[] = [];
    const edges: KgEdge[] = [];
    for await (const page of store.exportPages(5_000)) {
      nodes.push(...(page.nodes ?? []));
      edges.push(...(page.edges ?? []));
    }
    return { format: 'json', backend: store.backend, nodes, edges };
  }

  async import(source: { path?: string; graph?: { nodes: NodeInput[]; edges: EdgeInput[] } }) {
    const graph = source.graph ?? (await readGraphFile(source.path!));
    const r = await this.write(async () => (await this.store()).importGraph(graph.nodes, graph.edges));
    this.changed('import', {
      nodes_created: r.nodes.created,
      nodes_updated: r.nodes.updated,
      edges_created: r.edges.created,
      edges_updated: r.edges.updated,
    });
    return {
      nodes_created: r.nodes.created,
      nodes_updated: r.nodes.updated,
      edges_created: r.edges.created,
      edges_updated: r.edges.updated,
    };
  }

  async query(cypher: string, params: Record<string, unknown>, write: boolean) {
    const r = write
      ? await this.write(async () => (await this.store()).query(cypher, params, true))
      : await (await this.store()).query(cypher, params, false);
    // Raw Cypher reports no counts we could trust as kg semantics; subscribers still learn it may have changed.
    if (write) this.changed('query', {});
    return r;
  }
}
