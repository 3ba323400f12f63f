/**
 * The plugin contract. A plugin's `index.ts` default-exports `definePlugin({...})`; importing it has
 * no side effects. Everything a plugin may touch of the kernel comes through `PluginContext` (at
 * start) and `CallContext` (per request).
 */
import type { Logger } from 'pino';
import type Database from 'better-sqlite3';
import type { z } from 'zod';
import type { EventContext } from '../client/protocol.js';
import type { ErrorCode } from '../client/errors.js';

export type { EventContext } from '../client/protocol.js';
export { DaemonError } from '../client/errors.js';
export { redactSecrets } from './redact.js';
export type { ErrorCode } from '../client/errors.js';

/** Options for a request made from inside the daemon. */
export interface RequestOptions {
  /** Cap on this request's time; never more than the caller's remaining time. */
  timeoutMs?: number;
  /** Acting on behalf of an agent: recorded in the causality context. */
  agentId?: string;
  signal?: AbortSignal;
}

export interface EmitOptions {
  agentId?: string;
  /** Emit under this context (e.g. work resumed after a restart) instead of the caller's. */
  context?: EventContext;
}

/** An event as delivered to subscribers (plugins and socket clients alike). */
export interface EmittedEvent {
  event: string;
  data: Record<string, unknown>;
  seq: number;
  timestamp: number;
  context: EventContext;
}

export type Listener = (ev: EmittedEvent) => void | Promise<void>;

/** Per-request view handed to a handler: nested work made through it inherits causality and deadline. */
export interface CallContext {
  readonly event: string;
  readonly context: EventContext;
  /** Epoch ms by which the answer is due. */
  readonly deadline: number;
  /** Aborted when the deadline passes or the requesting client disconnects. */
  readonly signal: AbortSignal;
  /** Identifies the socket connection that sent the request, if any (for per-connection state). */
  readonly connectionId: string | null;
  request<T = Record<string, unknown>>(event: string, data?: Record<string, unknown>, opts?: RequestOptions): Promise<T>;
  emit(event: string, data: Record<string, unknown>, opts?: EmitOptions): void;
  remainingMs(): number;
}

export interface PluginPaths {
  /** AGENTD_HOME, default ./var */
  home: string;
  run: string;
  logs: string;
  db: string;
  /** A directory of the plugin's own under home (created on demand by the plugin). */
  data: string;
  /** The repository root (where plugins/ and profiles live). */
  root: string;
}

export type PluginStatus = 'ok' | 'degraded' | 'failed' | 'stopped' | 'loading';

/** Handed to `start`, `stop`, and subscription listeners. */
export interface PluginContext {
  readonly name: string;
  readonly log: Logger;
  /** The plugin's config section (parsed by `configSchema` when given). */
  readonly config: Record<string, unknown>;
  readonly paths: PluginPaths;
  /** The shared agentd.db (better-sqlite3, WAL). Prefix tables with the plugin name. */
  readonly db: Database.Database;
  /**
   * Apply the plugin's migrations in order, each at most once (tracked per plugin). Index i of the
   * array is version i+1; never edit a migration that has shipped, append a new one.
   */
  migrate(migrations: Array<string | ((db: Database.Database) => void)>): void;
  request<T = Record<string, unknown>>(event: string, data?: Record<string, unknown>, opts?: RequestOptions & { context?: EventContext }): Promise<T>;
  emit(event: string, data: Record<string, unknown>, opts?: EmitOptions): void;
  /** Subscribe at run time (static ones go in `subscriptions`). Returns an unsubscribe function. */
  subscribe(pattern: string, listener: Listener): () => void;
  /**
   * Answer requests for namespaces no local plugin owns (federation: the bridge forwards them to
   * the fleet). One plugin at a time; removed when the plugin stops. Returns a function that removes it.
   */
  serveUnowned?(handler: (data: Record<string, unknown>, call: CallContext) => Promise<unknown>): () => void;
  /** Report degraded (backend absent) or back to ok; shows in `plugin:list` and `system:health`. */
  setStatus(status: 'ok' | 'degraded', reason?: string): void;
  /** Ask the checkpoint plugin for a snapshot soon (state changed). Cheap; coalesced. */
  markDirty(): void;
  /** True once shutdown has begun. */
  readonly shuttingDown: boolean;
}

export interface EventDef<S extends z.ZodType = z.ZodType> {
  summary: string;
  /** Longer help shown by `system:help` and in EVENT_CATALOG.md. */
  description?: string;
  schema: S;
  handler: (data: z.output<S>, call: CallContext) => unknown | Promise<unknown>;
  /** Events this handler may emit (documentation). */
  emits?: string[];
  /** Error codes this handler may answer with, beyond the router's own (documentation). */
  errors?: ErrorCode[];
  /** Default timeout for this event when the client gives none. */
  defaultTimeoutMs?: number;
}

export interface PluginDef {
  name: string;
  /** Bump when the snapshot format changes incompatibly; restore of another version is skipped. */
  version?: number;
  namespaces: string[];
  dependsOn?: string[];
  /** Declared but optional: started first when present, no error when absent. */
  optionalDependsOn?: string[];
  description?: string;
  /**
   * Started before every other plugin and stopped after them all: for the checkpoint plugin, which
   * restores everyone's state before anyone serves and takes the last checkpoint after all stopped.
   */
  early?: boolean;
  configSchema?: z.ZodType;
  events?: Record<string, EventDef<any>>;
  /** Emitted-only events this plugin publishes (documentation for the catalog). */
  publishes?: Record<string, string>;
  subscriptions?: Record<string, (ev: EmittedEvent, ctx: PluginContext) => void | Promise<void>>;
  start?(ctx: PluginContext): void | Promise<void>;
  /** Finish or hand over in-flight work before `deadline` (epoch ms). */
  stop?(ctx: PluginContext, deadline: number): void | Promise<void>;
  /**
   * The plugin's state for a checkpoint (JSON-serialisable). Must keep working after `stop()`: the
   * final checkpoint is taken once every plugin has stopped, so keep what stop() would drop.
   */
  snapshot?(): unknown | Promise<unknown>;
  /**
   * Take back a snapshot. At boot it is called before `start()` (the plugin serves restored state
   * from its first request); `checkpoint:restore` also calls it on a running plugin.
   */
  restore?(state: unknown, ctx: PluginContext): void | Promise<void>;
  /** Extra details for `system:health`. */
  health?(): Record<string, unknown>;
}

/** Identity helper that keeps the handler data types inferred from each schema. */
export function definePlugin<P extends PluginDef>(def: P): P {
  return def;
}

/** Define one event with its handler's data type inferred from the schema. */
export function defineEvent<S extends z.ZodType>(def: EventDef<S>): EventDef<S> {
  return def;
}
