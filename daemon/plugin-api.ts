/**
 * The plugin contract, and the one door from a plugin into the kernel: a plugin imports this module
 * and `client/*`, nothing else of the kernel. A plugin's `index.ts` default-exports
 * `definePlugin({...})`; importing it has no side effects. `start(ctx)` builds the plugin's instance
 * and returns it; the host hands that instance to every handler, listener and lifecycle hook, so a
 * plugin keeps no state at module level.
 */
import type { Logger } from 'pino';
import type Database from 'better-sqlite3';
import type { z } from 'zod';
import type { EventContext } from '../client/protocol.js';
import type { ErrorCode } from '../client/errors.js';
import type { PluginReasonCode } from '../client/plugin-status.js';
import type { EventData, EventMap, EventResponse } from '../client/event-types.js';
import type { UntypedEvent } from '../client/event-client.js';

export type { EventContext } from '../client/protocol.js';
export { DaemonError, isDaemonError } from '../client/errors.js';
export type { ErrorCode } from '../client/errors.js';
export { PLUGIN_REASON_CODES, type PluginReasonCode, type PluginStatus } from '../client/plugin-status.js';

// The kernel's helpers a plugin may use, offered here so that this module stays the only door.
export { GroupCommit, runLazy } from './group-commit.js';
export { rebuildTable, type Migration } from './persistence.js';
export { timeOrderedId } from './time-ordered-id.js';
export { redactSecrets } from './redact.js';
export { loadYamlParser, parseYamlText, prepareYaml, prepareYamlFiles } from './yaml-text.js';
export { isYamlFile, watchYamlDirs, type YamlDirTarget, type YamlDirWatcher } from './yaml-dir-watch.js';
export { byCodePoint } from './text-order.js';
export type { FullStateDescription } from './full-state.js';
export { Backoff, drainUntil, settledWithin, sleep, TimeoutError, withTimeout } from '../client/timing.js';
export { matchPatterns } from '../client/pattern-index.js';
export { formatIssues, listIssues, type Issue } from '../client/issues.js';
export { addUsage, totalTokens, ZERO_USAGE, type ReportedUsage, type TokenUsage } from '../client/usage.js';
// Rate-bounded delivery as socket subscriptions have it, for plugins that serve subscriptions of their own (the gateway).
export { RateBound, type SkippedTally } from './rate-bound.js';

/** Options for a request made from inside the daemon. */
export interface RequestOptions {
  /** Cap on this request's time; never more than the caller's remaining time. */
  timeoutMs?: number;
  /** Acting on behalf of an agent: recorded in the causality context. */
  agentId?: string;
  signal?: AbortSignal;
  /**
   * Made on behalf of this outside client (an id unique in the daemon: prefix it with the plugin's
   * name). The request takes its turn in admission with the socket's connections, one participant
   * per client, and is answered as a socket client's would be (kernel-internal events refused,
   * SHUTTING_DOWN once shutdown begins). For plugins that serve clients of their own (the gateway).
   */
  client?: string;
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
  /** Typed like `EventClient.request`: the daemon's own events by their schemas; `request<T>` opts out. */
  request<E extends keyof EventMap>(event: E, data?: EventData<E>, opts?: RequestOptions): Promise<EventResponse<E>>;
  request<T = Record<string, unknown>, E extends string = string>(
    event: E & UntypedEvent<E>,
    data?: Record<string, unknown>,
    opts?: RequestOptions,
  ): Promise<T>;
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

/** A plugin's config section when it declares no `configSchema`. */
export type UntypedConfig = Record<string, unknown>;

/** Handed to `start`, `stop`, `restore` and subscription listeners. `C` is the parsed config's type. */
export interface PluginContext<C = UntypedConfig> {
  readonly name: string;
  readonly log: Logger;
  /** The plugin's config section, already parsed by its `configSchema` (defaults applied). */
  readonly config: C;
  readonly paths: PluginPaths;
  /**
   * The state this incarnation starts from, read in `start`: the plugin's part of the checkpoint
   * restored at boot, or what the previous incarnation's `snapshot` returned across a hot reload.
   * `undefined` when there is none (or the plugin declares no `restore`).
   */
  readonly restored: unknown;
  /**
   * An object the host keeps for this plugin as long as the daemon process lives: the same object
   * to every incarnation across hot reloads, a new one after a restart. For facts about this process
   * (an action done once per process), never for state a checkpoint should hold.
   */
  readonly processState: Record<string, unknown>;
  /** The shared agentd.db (better-sqlite3, WAL). Prefix tables with the plugin name. */
  readonly db: Database.Database;
  /**
   * Apply the plugin's migrations in order, each at most once (tracked per plugin). Index i of the
   * array is version i+1; never edit a migration that has shipped, append a new one.
   */
  migrate(migrations: Array<string | ((db: Database.Database) => void)>): void;
  /** Typed like `EventClient.request`: the daemon's own events by their schemas; `request<T>` opts out. */
  request<E extends keyof EventMap>(
    event: E,
    data?: EventData<E>,
    opts?: RequestOptions & { context?: EventContext },
  ): Promise<EventResponse<E>>;
  request<T = Record<string, unknown>, E extends string = string>(
    event: E & UntypedEvent<E>,
    data?: Record<string, unknown>,
    opts?: RequestOptions & { context?: EventContext },
  ): Promise<T>;
  emit(event: string, data: Record<string, unknown>, opts?: EmitOptions): void;
  /** Subscribe at run time (static ones go in `subscriptions`). Returns an unsubscribe function. */
  subscribe(pattern: string, listener: Listener): () => void;
  /**
   * Answer requests for namespaces no local plugin owns (federation: the bridge forwards them to
   * the fleet). One plugin at a time; removed when the plugin stops. Returns a function that removes it.
   */
  serveUnowned?(handler: (data: Record<string, unknown>, call: CallContext) => Promise<unknown>): () => void;
  /**
   * Report degraded (backend absent) or back to ok; shows in `plugin:list` and `system:health`,
   * with `code` beside the text (default `DEGRADED`).
   */
  setStatus(status: 'ok' | 'degraded', reason?: string, code?: PluginReasonCode): void;
  /** Ask the checkpoint plugin for a snapshot soon (state changed). Cheap; coalesced. */
  markDirty(): void;
  /** True once shutdown has begun. */
  readonly shuttingDown: boolean;
}

/**
 * One request event. `I` is the plugin's instance (what `start` returned), handed to the handler
 * beside the validated data: `handler: (data, plugin, call) => …`.
 */
export interface EventDef<S extends z.ZodType = z.ZodType, I = unknown> {
  summary: string;
  /** Longer help shown by `system:help` and in EVENT_CATALOG.md. */
  description?: string;
  schema: S;
  /**
   * The shape of the answer. Documents it (EVENT_CATALOG.md, the generated client types) and, with
   * `daemon.check_responses`, every answer is checked against it (a mismatch is a HANDLER_ERROR).
   */
  response?: z.ZodType;
  handler: (data: z.output<S>, plugin: I, call: CallContext) => unknown;
  /** Events this handler may emit (documentation). */
  emits?: string[];
  /** Error codes this handler may answer with, beyond the router's own (documentation). */
  errors?: ErrorCode[];
  /** Default timeout for this event when the client gives none. */
  defaultTimeoutMs?: number;
  /**
   * The handler records the request and hands its work to a queue the plugin bounds itself (as
   * `completion:async` does: the call runs later, at most `completion.max_concurrency` at a time).
   * Admission then charges a request of this event the synchronous part of its handler only: the
   * queued work runs turns later, whatever admission does, so charging it to the requests that happen
   * to be admitted meanwhile would only hold them back, one a round, each with a commit of its own.
   */
  queued?: boolean;
}

/** An event as the router holds it: the handler already bound to its plugin's instance. */
export interface BoundEventDef<S extends z.ZodType = z.ZodType> extends Omit<EventDef<S>, 'handler'> {
  handler: (data: z.output<S>, call: CallContext) => unknown;
}

/** A subscription listener: the event, the plugin's instance, its context. */
export type PluginListener<I = unknown, C = UntypedConfig> = (
  ev: EmittedEvent,
  plugin: I,
  ctx: PluginContext<C>,
) => void | Promise<void>;

/** The config type a schema yields (a plugin without a schema sees its raw section). */
type ConfigOf<C extends z.ZodType> = z.output<C>;

/**
 * A plugin definition. `C` is its config schema, `I` its instance (what `start` returns), `E` the
 * schema of each of its events. All three are inferred by `definePlugin`; write `start` before
 * `events`, `subscriptions` and the hooks that take the instance, since TypeScript infers from
 * left to right.
 */
export interface PluginDef<
  C extends z.ZodType = z.ZodType,
  I = unknown,
  E extends Record<string, z.ZodType> = Record<string, z.ZodType>,
> {
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
  configSchema?: C;
  /** Emitted-only events this plugin publishes (documentation for the catalog). */
  publishes?: Record<string, string>;
  /**
   * Build and start the plugin; what it returns is the instance every handler and hook receives.
   * Until it resolves (and again once `stop` has), the plugin's events answer UNAVAILABLE.
   */
  start?(ctx: PluginContext<ConfigOf<C>>): I | Promise<I>;
  events?: { [K in keyof E]: EventDef<E[K], I> };
  subscriptions?: Record<string, PluginListener<I, ConfigOf<C>>>;
  /** Finish or hand over in-flight work before `deadline` (epoch ms). */
  stop?(plugin: I, ctx: PluginContext<ConfigOf<C>>, deadline: number): void | Promise<void>;
  /**
   * The plugin's state for a checkpoint (JSON-serialisable). Must keep working after `stop()`: the
   * final checkpoint is taken once every plugin has stopped, so keep what stop() would drop.
   */
  snapshot?(plugin: I): unknown;
  /**
   * Take back a snapshot into the running instance (`checkpoint:restore`). At boot and across a hot
   * reload the state is handed to `start` as `ctx.restored` instead, so the instance is built from it.
   */
  restore?(plugin: I, state: unknown, ctx: PluginContext<ConfigOf<C>>): void | Promise<void>;
  /** Extra details for `system:health`. */
  health?(plugin: I): Record<string, unknown>;
  /**
   * What a full checkpoint (`checkpoint:save {scope: "full"}`) holds of this plugin and what a full
   * restore puts back. Tables and files not declared here are copied with the database but never
   * rolled back, and the save's answer says so.
   */
  fullState?: FullStateSpec<I, ConfigOf<C>>;
}

/** One kind of thing `checkpoint:diff` compares between two full checkpoints (agents, nodes, runs…). */
export interface FullStateEntity {
  /** The table holding it: in agentd.db, or in the plugin's file named by `file`. */
  table: string;
  /** Its key column, or output name → column for a composite key. */
  key: string | Record<string, string>;
  /** One of the names `files` (or `external.capture`) gives; default agentd.db. */
  file?: string;
}

/**
 * A plugin's part of a full checkpoint. A full restore stops the plugin (as shutdown does: its
 * `stop` finishes or hands over work in flight), puts these back, and starts it again from them.
 */
export interface FullStateSpec<I = unknown, C = UntypedConfig> {
  /** Tables of agentd.db a full restore puts back as they were at the save (`agent_*` matches by prefix). */
  tables?: string[];
  /** Tables of agentd.db copied with the checkpoint but never rolled back, and why (said in every full save's answer). */
  kept?: { tables: string[]; reason: string };
  /** SQLite files of the plugin's own (name → absolute path), copied in the same consistent cut as agentd.db and put back whole. */
  files?(plugin: I, ctx: PluginContext<C>): Record<string, string>;
  /** Directories of the plugin's own (name → absolute path), copied at the save and put back whole. */
  dirs?(plugin: I, ctx: PluginContext<C>): Record<string, string>;
  /** What `checkpoint:diff` compares for this plugin, by name. */
  entities?: Record<string, FullStateEntity>;
  /** State that lives outside SQLite files (a Neo4j graph): captured and put back by the plugin itself. */
  external?: {
    /** Hold writes (and wait for those in flight) until `thaw`, so the save's cut holds; false when nothing is external now. */
    freeze(plugin: I): Promise<boolean>;
    thaw(plugin: I): void;
    /**
     * Write the state into `dir` as SQLite files (name → path, read by diff and fork like `files`),
     * or throw a DaemonError saying why not (e.g. too large) and the backend's own way to do it.
     */
    capture(plugin: I, dir: string): Promise<Record<string, string>>;
    /** Put captured state back (on the restarted instance); done again after a crash until it finished. */
    putBack(plugin: I, dir: string): Promise<void>;
  };
}

/** A definition whose types have been forgotten: what the host and the tools handle. */
export type AnyPluginDef = PluginDef<any, any, any>;
/** An event definition of any plugin. */
export type AnyEventDef = EventDef<any, any>;

/**
 * Identity helper that infers the config type from `configSchema`, the instance type from what
 * `start` returns, and each handler's data type from its event's schema.
 */
export function definePlugin<
  C extends z.ZodType = z.ZodType<UntypedConfig>,
  I = void,
  E extends Record<string, z.ZodType> = Record<string, never>,
>(def: PluginDef<C, I, E>): PluginDef<C, I, E> {
  return def;
}
