/**
 * The plugin host: loads discovered plugins, gives each its context, registers its events and
 * listeners with the router, starts them in dependency order and stops them in reverse, each step
 * with a deadline. `start(ctx)` returns the plugin's instance, which the host hands to every
 * handler, listener and hook; a plugin's events answer UNAVAILABLE until its start resolved and
 * again once it stopped. A plugin that fails is contained: it is reported with a coded reason and
 * its events answer UNAVAILABLE; the daemon keeps running.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type Database from 'better-sqlite3';
import { DaemonError } from '../client/errors.js';
import type { PluginReasonCode, PluginStatus } from '../client/plugin-status.js';
import { rootContext } from './call-context.js';
import { findPlugins, importPlugin, planStart, PluginLoadError, type FoundPlugin } from './plugin-loader.js';
import type { z } from 'zod';
import type {
  AnyEventDef,
  AnyPluginDef,
  BoundEventDef,
  EmittedEvent,
  EventContext,
  Listener,
  PluginContext,
  PluginListener as ListenerFn,
  RequestOptions,
} from './plugin-api.js';
import { migrate } from './persistence.js';
import { parseSection } from './config.js';
import type { Route, Router, Subscriber } from './router.js';
import { TimeoutError, withTimeout } from '../client/timing.js';
import { formatIssues, listIssues } from '../client/issues.js';

/** What a plugin's routes answer (as UNAVAILABLE) while it is not serving. */
const NOT_STARTED = 'it has not finished starting';
const STOPPED = 'it has stopped';

export interface PluginRecord {
  name: string;
  found: FoundPlugin | null;
  def: AnyPluginDef | null;
  status: PluginStatus;
  reason?: string;
  reasonCode?: PluginReasonCode;
  /** Typed by each plugin's own config schema, which the host does not know. */
  ctx: PluginContext<any> | null;
  /** What this incarnation's `start` returned; kept after stop, for the final snapshot. */
  instance: unknown;
  /** `start` resolved in this incarnation (the instance exists, though it may have stopped since). */
  started: boolean;
  /** State to start from (`ctx.restored`): a checkpoint's part at boot, or the previous incarnation's across a reload. */
  pending: { state: unknown } | null;
  routes: Route[];
  listeners: Subscriber[];
  startedAt?: number;
  dirty: boolean;
  reloads: number;
}

export interface HostOptions {
  router: Router;
  db: Database.Database;
  log: Logger;
  rawConfig: Record<string, Record<string, unknown>>;
  home: string;
  root: string;
  runDir: string;
  logsDir: string;
  dbDir: string;
  pluginDirs: string[];
  disabled: string[];
  startTimeoutMs: number;
  /** Check every answer against its event's response schema (development and tests). */
  checkResponses?: boolean;
  reservedNamespaces: string[];
  isShuttingDown: () => boolean;
}

/**
 * An event as the router holds it: its handler called with the instance `instanceOf` gives at call
 * time. With `checkResponses`, an answer outside the event's `response` schema is a HANDLER_ERROR
 * naming the failing paths (development and tests: the daemon's own answers are what is checked).
 */
export function bindEvent(
  event: string,
  def: AnyEventDef,
  instanceOf: () => unknown,
  checkResponses = false,
): BoundEventDef {
  const handler = def.handler;
  const response = def.response as z.ZodType | undefined;
  if (!checkResponses || !response) return { ...def, handler: (data, call) => handler(data, instanceOf(), call) };
  const check = (out: unknown): unknown => {
    const r = response.safeParse(out ?? {});
    if (r.success) return out;
    throw new DaemonError(
      'HANDLER_ERROR',
      `${event} answered outside its response schema: ${formatIssues(r.error.issues, { root: '(answer)', max: 3 })}`,
      {
        issues: listIssues(r.error.issues, '(answer)'),
      },
    );
  };
  return {
    ...def,
    handler: (data, call) => {
      const out = handler(data, instanceOf(), call);
      return out instanceof Promise ? out.then(check) : check(out);
    },
  };
}

let listenerSeq = 0;

/** Delivers to a plugin's listener off the emitter's stack, with failures contained and in-flight bounded. */
class PluginListener implements Subscriber {
  readonly id: string;
  private inflight = 0;
  dropped = 0;
  constructor(
    private readonly rec: PluginRecord,
    private readonly pattern: string,
    private readonly fn: ListenerFn,
    private readonly log: Logger,
    private readonly report: (plugin: string, ev: EmittedEvent, err: Error) => void,
  ) {
    this.id = `plugin:${rec.name}:${pattern}:${++listenerSeq}`;
  }
  deliver(ev: EmittedEvent): void {
    if (this.inflight >= 1000) {
      // A listener that cannot keep up must not grow the daemon's memory; say so once per thousand.
      if (this.dropped++ % 1000 === 0)
        this.log.warn(
          { plugin: this.rec.name, pattern: this.pattern, dropped: this.dropped },
          'listener behind, events dropped',
        );
      return;
    }
    this.inflight++;
    queueMicrotask(() => {
      let out: void | Promise<void>;
      try {
        out = this.fn(ev, this.rec.instance, this.rec.ctx!);
      } catch (e) {
        this.inflight--;
        this.report(this.rec.name, ev, e as Error);
        return;
      }
      if (out && typeof (out as Promise<void>).then === 'function') {
        (out as Promise<void>).then(
          () => void this.inflight--,
          (e: Error) => (this.inflight--, this.report(this.rec.name, ev, e)),
        );
      } else this.inflight--;
    });
  }
}

export class PluginHost {
  readonly records = new Map<string, PluginRecord>();
  private order: string[] = [];
  /** PluginContext.processState, by plugin name: outlives every incarnation of a plugin in this process. */
  private readonly processStates = new Map<string, Record<string, unknown>>();

  constructor(private readonly opts: HostOptions) {}

  /** Discover, import and check every plugin; register events (answering UNAVAILABLE until each plugin has started). */
  async load(): Promise<void> {
    const roots = [
      path.join(this.opts.root, 'plugins'),
      ...this.opts.pluginDirs.map((d) => path.resolve(this.opts.root, d)),
    ];
    const { found, errors } = findPlugins(roots);
    for (const e of errors) this.opts.log.warn({ dir: e.dir, reason: e.reason }, 'plugin directory skipped');
    const imports: Array<Promise<void>> = [];
    for (const f of found) {
      const rec: PluginRecord = {
        name: f.dirName,
        found: f,
        def: null,
        status: 'loading',
        ctx: null,
        instance: undefined,
        started: false,
        pending: null,
        routes: [],
        listeners: [],
        dirty: false,
        reloads: 0,
      };
      this.records.set(f.dirName, rec);
      if (this.opts.disabled.includes(f.dirName)) {
        rec.status = 'stopped';
        rec.reason = 'disabled in config';
        rec.reasonCode = 'DISABLED';
        continue;
      }
      imports.push(
        importPlugin(f).then(
          (def) => void (rec.def = def),
          (e: Error) => {
            this.fail(rec, e instanceof PluginLoadError ? e.code : 'LOAD_FAILED', e.message);
            this.opts.router.unavailableNamespaces.set(f.dirName, rec.reason!);
          },
        ),
      );
    }
    // Concurrently: one plugin's file reads overlap another's evaluation.
    await Promise.all(imports);
    const loaded = [...this.records.values()].filter((r) => r.def && r.status === 'loading');
    const plan = planStart(
      loaded.map((r) => ({
        name: r.name,
        namespaces: r.def!.namespaces,
        dependsOn: r.def!.dependsOn ?? [],
        optionalDependsOn: r.def!.optionalDependsOn ?? [],
        early: r.def!.early ?? false,
      })),
      this.opts.reservedNamespaces,
    );
    this.order = plan.order;
    for (const name of plan.order) {
      const rec = this.records.get(name)!;
      const why = plan.failed.get(name);
      if (why) this.fail(rec, why.code, why.reason);
      this.registerEvents(rec);
      if (!why) this.makeContext(rec);
    }
  }

  private fail(rec: PluginRecord, code: PluginReasonCode, reason: string): void {
    rec.status = 'failed';
    rec.reason = reason;
    rec.reasonCode = code;
    this.opts.log.error({ plugin: rec.name, code, reason }, 'plugin failed');
    this.setAvailable(rec, reason);
  }

  /** Open the plugin's routes (`undefined`) or have them answer UNAVAILABLE with `why`. */
  private setAvailable(rec: PluginRecord, why: string | undefined): void {
    for (const r of rec.routes) r.unavailable = why;
  }

  private registerEvents(rec: PluginRecord): void {
    rec.routes = [];
    for (const [event, def] of Object.entries(rec.def!.events ?? {})) {
      const route: Route = {
        event,
        plugin: rec.name,
        def: bindEvent(event, def, () => rec.instance, this.opts.checkResponses),
        unavailable: rec.status === 'failed' ? rec.reason : NOT_STARTED,
      };
      try {
        this.opts.router.register(route);
        rec.routes.push(route);
      } catch (e) {
        this.fail(rec, 'EVENT_CONFLICT', (e as Error).message);
      }
    }
  }

  private makeContext(rec: PluginRecord): void {
    const router = this.opts.router;
    const log = this.opts.log.child({ plugin: rec.name });
    let config: unknown = this.opts.rawConfig[rec.name] ?? {};
    if (rec.def!.configSchema) {
      const r = parseSection(rec.name, rec.def!.configSchema as z.ZodType, config as Record<string, unknown>);
      if (!r.ok) {
        this.fail(rec, 'CONFIG_INVALID', r.reason);
        return;
      }
      config = r.data;
    }
    const opts = this.opts;
    const ctx: PluginContext<unknown> = {
      name: rec.name,
      log,
      config,
      paths: {
        home: opts.home,
        run: opts.runDir,
        logs: opts.logsDir,
        db: opts.dbDir,
        data: path.join(opts.home, rec.name),
        root: opts.root,
      },
      get restored() {
        return rec.pending?.state;
      },
      processState: this.processStateOf(rec.name),
      db: opts.db,
      migrate: (migrations) => void migrate(opts.db, rec.name, migrations),
      // One implementation behind the typed overloads of PluginContext['request'].
      request: ((
        event: string,
        data: Record<string, unknown> = {},
        reqOpts: RequestOptions & { context?: EventContext } = {},
      ) => {
        const parent = reqOpts.context ?? rootContext(reqOpts.agentId);
        const deadline = Date.now() + (reqOpts.timeoutMs ?? 30_000);
        return router.request(event, data, parent, deadline, reqOpts, null);
      }) as PluginContext['request'],
      emit: (event, data, emitOpts = {}) => router.emit(event, data, emitOpts.context ?? null, emitOpts),
      subscribe: (pattern: string, listener: Listener) => {
        const sub = new PluginListener(rec, pattern, (ev) => listener(ev), log, this.reportListenerError);
        rec.listeners.push(sub);
        router.subscribe([pattern], sub);
        return () => {
          router.unsubscribe(sub);
          rec.listeners = rec.listeners.filter((s) => s !== sub);
        };
      },
      serveUnowned: (handler) => {
        router.setFallback({ plugin: rec.name, handler });
        return () => router.clearFallback(rec.name);
      },
      setStatus: (status, reason, code) => {
        if (rec.status === 'failed' || rec.status === 'stopped') return;
        const reasonCode = status === 'ok' ? undefined : (code ?? 'DEGRADED');
        const changed = rec.status !== status || rec.reason !== reason || rec.reasonCode !== reasonCode;
        rec.status = status;
        rec.reason = status === 'ok' ? undefined : reason;
        rec.reasonCode = reasonCode;
        if (changed) {
          log.info({ status, reason, code: reasonCode }, 'plugin status changed');
          router.emit(
            'plugin:status',
            { plugin: rec.name, status, reason: reason ?? null, reason_code: reasonCode ?? null },
            null,
          );
        }
      },
      markDirty: () => void (rec.dirty = true),
      get shuttingDown() {
        return opts.isShuttingDown();
      },
    };
    rec.ctx = ctx;
  }

  private processStateOf(name: string): Record<string, unknown> {
    let state = this.processStates.get(name);
    if (!state) this.processStates.set(name, (state = {}));
    return state;
  }

  private readonly reportListenerError = (plugin: string, ev: EmittedEvent, err: Error): void => {
    this.opts.log.error({ err, plugin, event: ev.event, seq: ev.seq }, 'listener failed');
    // Never report a failure while handling a failure report: that would feed itself.
    if (ev.event !== 'plugin:error')
      this.opts.router.emit('plugin:error', { plugin, event: ev.event, seq: ev.seq, message: err.message }, ev.context);
  };

  private subscribeStatic(rec: PluginRecord): void {
    for (const [pattern, fn] of Object.entries(rec.def!.subscriptions ?? {})) {
      const sub = new PluginListener(rec, pattern, fn as ListenerFn, this.opts.log, this.reportListenerError);
      rec.listeners.push(sub);
      this.opts.router.subscribe([pattern], sub);
    }
  }

  /**
   * Start every loadable plugin, each as soon as the plugins it depends on have started: independent
   * plugins start concurrently (a plugin waiting on Docker does not hold up the knowledge graph), and
   * no plugin starts before its dependencies. Failures are contained and reported.
   */
  async startAll(onlyEarly?: boolean): Promise<void> {
    const starting = new Map<string, Promise<void>>();
    // `order` is topological, so every dependency's promise exists before its dependants look for it.
    for (const name of this.order) {
      const rec = this.records.get(name)!;
      if (rec.status !== 'loading' || !rec.ctx) continue;
      if (onlyEarly !== undefined && (rec.def!.early ?? false) !== onlyEarly) continue;
      const hard = rec.def!.dependsOn ?? [];
      const waits = [...hard, ...(rec.def!.optionalDependsOn ?? [])]
        .map((d) => starting.get(d))
        .filter((p): p is Promise<void> => p !== undefined);
      starting.set(
        name,
        Promise.all(waits).then(async () => {
          const bad = hard.find((d) => this.records.get(d)?.status === 'failed');
          if (bad) {
            this.fail(rec, 'DEPENDENCY_FAILED', `dependency "${bad}" failed`);
            return;
          }
          await this.startOne(rec);
        }),
      );
    }
    await Promise.all(starting.values());
  }

  private async startOne(rec: PluginRecord): Promise<void> {
    const t0 = Date.now();
    try {
      const start = rec.def!.start;
      rec.instance = start
        ? await withTimeout(Promise.resolve(start(rec.ctx!)), this.opts.startTimeoutMs, `start of ${rec.name}`)
        : undefined;
    } catch (e) {
      this.opts.router.clearFallback(rec.name);
      for (const l of rec.listeners) this.opts.router.unsubscribe(l);
      rec.listeners = [];
      if (e instanceof TimeoutError) this.fail(rec, 'START_TIMEOUT', `start did not finish within ${e.ms} ms`);
      else this.fail(rec, 'START_FAILED', `start failed: ${(e as Error).message}`);
      return;
    } finally {
      rec.pending = null;
    }
    rec.started = true;
    // Listeners and routes only once there is an instance to hand them.
    this.subscribeStatic(rec);
    if (rec.status === 'loading') rec.status = 'ok';
    rec.startedAt = Date.now();
    this.setAvailable(rec, undefined);
    rec.ctx!.log.info({ ms: Date.now() - t0, status: rec.status }, 'plugin started');
  }

  /** Stop running plugins in reverse start order, each within what is left of the deadline. Returns those that did not finish. */
  async stopAll(deadline: number, filter: (rec: PluginRecord) => boolean = () => true): Promise<string[]> {
    const unfinished: string[] = [];
    for (const name of [...this.order].reverse()) {
      const rec = this.records.get(name)!;
      if (!filter(rec)) continue;
      if (!(await this.stopOne(rec, deadline))) unfinished.push(name);
    }
    return unfinished;
  }

  private async stopOne(rec: PluginRecord, deadline: number): Promise<boolean> {
    if (!rec.started || !['ok', 'degraded'].includes(rec.status)) return true;
    let finished = true;
    try {
      if (rec.def!.stop)
        await withTimeout(
          Promise.resolve(rec.def!.stop(rec.instance, rec.ctx!, deadline)),
          Math.max(1, deadline - Date.now()),
          `stop of ${rec.name}`,
        );
    } catch (e) {
      finished = false;
      rec.ctx!.log.error({ err: e }, 'plugin did not stop cleanly');
    }
    for (const l of rec.listeners) this.opts.router.unsubscribe(l);
    rec.listeners = [];
    this.opts.router.clearFallback(rec.name);
    rec.status = 'stopped';
    rec.reason = undefined;
    rec.reasonCode = undefined;
    this.setAvailable(rec, STOPPED);
    return finished;
  }

  /** Every stateful plugin's snapshot; a plugin whose snapshot throws is left out and named. */
  async snapshotAll(onlyDirty = false): Promise<{
    states: Record<string, { version: number; state: unknown }>;
    errors: Record<string, string>;
    dirty: boolean;
  }> {
    const states: Record<string, { version: number; state: unknown }> = {};
    const errors: Record<string, string> = {};
    const anyDirty = [...this.records.values()].some((r) => r.dirty);
    if (onlyDirty && !anyDirty) return { states, errors, dirty: false };
    for (const rec of this.records.values()) {
      if (!rec.def?.snapshot || !rec.ctx || rec.status === 'failed') continue;
      // Restored but not started yet: its state is what it will start from.
      if (!rec.started) {
        if (rec.pending) states[rec.name] = { version: rec.def.version ?? 1, state: rec.pending.state };
        continue;
      }
      try {
        states[rec.name] = { version: rec.def.version ?? 1, state: await rec.def.snapshot(rec.instance) };
        rec.dirty = false;
      } catch (e) {
        errors[rec.name] = (e as Error).message;
        rec.ctx.log.error({ err: e }, 'snapshot failed');
      }
    }
    return { states, errors, dirty: anyDirty };
  }

  /**
   * Hand each plugin its part of a checkpoint: a running plugin takes it through `restore`, one not
   * started yet gets it as `ctx.restored` when it starts. Incompatible versions are skipped and named.
   */
  async restoreAll(
    states: Record<string, { version: number; state: unknown }>,
  ): Promise<{ restored: string[]; skipped: Record<string, string> }> {
    const restored: string[] = [];
    const skipped: Record<string, string> = {};
    for (const [name, part] of Object.entries(states)) {
      const rec = this.records.get(name);
      if (!rec?.def?.restore || !rec.ctx || rec.status === 'failed') {
        skipped[name] = 'plugin not loaded or not stateful';
        continue;
      }
      if ((rec.def.version ?? 1) !== part.version) {
        skipped[name] = `snapshot version ${part.version} does not match plugin version ${rec.def.version ?? 1}`;
        continue;
      }
      if (!rec.started || rec.status === 'stopped') {
        rec.pending = { state: part.state };
        restored.push(name);
        continue;
      }
      try {
        await rec.def.restore(rec.instance, part.state, rec.ctx);
        restored.push(name);
      } catch (e) {
        skipped[name] = `restore failed: ${(e as Error).message}`;
        rec.ctx.log.error({ err: e }, 'restore failed');
      }
    }
    return { restored, skipped };
  }

  /**
   * Stop running plugins for a full restore, in reverse start order within `deadline` (their `stop`
   * finishes or hands over work in flight, as at shutdown); their events answer UNAVAILABLE with `why`
   * until `resume`.
   */
  async hold(names: string[], deadline: number, why: string): Promise<{ held: string[]; unfinished: string[] }> {
    const held: string[] = [];
    const unfinished: string[] = [];
    for (const name of [...this.order].reverse()) {
      const rec = this.records.get(name)!;
      if (!names.includes(name)) continue;
      if (rec.status === 'loading' && !rec.started && rec.ctx) {
        // Not started yet (at boot): it must not start on the state being put back.
        rec.status = 'stopped';
      } else if (rec.status !== 'stopped') {
        if (!rec.started || !['ok', 'degraded'].includes(rec.status)) continue;
        if (!(await this.stopOne(rec, deadline))) unfinished.push(name);
        // Kept to start from again should the restore not happen after all (snapshot works after stop).
        try {
          rec.pending = rec.def!.snapshot ? { state: await rec.def!.snapshot(rec.instance) } : null;
        } catch {
          rec.pending = null;
        }
      }
      rec.reason = why;
      this.setAvailable(rec, why);
      held.push(name);
    }
    return { held, unfinished };
  }

  /**
   * Start held plugins again in start order, each built from its tables and given its part of the
   * restored checkpoint as `ctx.restored` (none when the checkpoint has no compatible part; with
   * `carry`, a plugin without a part starts from the state it had when it was held).
   */
  async resume(
    names: string[],
    states: Record<string, { version: number; state: unknown }>,
    carry = false,
  ): Promise<{ started: string[]; failed: Record<string, string> }> {
    const started: string[] = [];
    const failed: Record<string, string> = {};
    for (const name of this.order) {
      const rec = this.records.get(name)!;
      if (!names.includes(name) || rec.status !== 'stopped' || !rec.ctx) continue;
      const part = states[name];
      if (part || !carry)
        rec.pending =
          part && rec.def!.restore && (rec.def!.version ?? 1) === part.version ? { state: part.state } : null;
      rec.status = 'loading';
      rec.reason = undefined;
      rec.instance = undefined;
      rec.started = false;
      await this.startOne(rec);
      if ((rec.status as PluginStatus) === 'failed') failed[name] = rec.reason ?? 'start failed';
      else started.push(name);
    }
    return { started, failed };
  }

  /** snapshot → stop → re-import (fresh modules) → start from the snapshot (`ctx.restored`), carrying state across. */
  async reload(name: string): Promise<PluginRecord> {
    const rec = this.records.get(name);
    if (!rec || !rec.found)
      throw new DaemonError('NOT_FOUND', `no plugin named "${name}"`, { plugins: [...this.records.keys()] });
    if (!fs.existsSync(rec.found.file)) throw new DaemonError('NOT_FOUND', `plugin file ${rec.found.file} is gone`);
    let next: AnyPluginDef;
    try {
      next = await importPlugin(rec.found, true);
    } catch (e) {
      // The running version keeps serving: a broken edit must not take a working plugin down.
      throw new DaemonError(
        'CONFLICT',
        `reload of ${name} refused, the running version is kept: ${(e as Error).message}`,
        {
          reason_code: e instanceof PluginLoadError ? e.code : 'LOAD_FAILED',
        },
      );
    }
    const oldNs = rec.def?.namespaces ?? [];
    for (const ns of next.namespaces) {
      const owner = [...this.records.values()].find((r) => r !== rec && r.def?.namespaces.includes(ns));
      if (owner || this.opts.reservedNamespaces.includes(ns)) {
        throw new DaemonError(
          'CONFLICT',
          `reload of ${name} refused: namespace "${ns}" belongs to ${owner ? owner.name : 'the kernel'}`,
          { reason_code: 'NAMESPACE_TAKEN' },
        );
      }
    }
    let carried: { state: unknown } | null = null;
    if (rec.def?.snapshot && rec.started && ['ok', 'degraded'].includes(rec.status))
      carried = { state: await rec.def.snapshot(rec.instance) };
    await this.stopOne(rec, Date.now() + this.opts.startTimeoutMs);
    this.opts.router.unregisterPlugin(name);
    for (const ns of oldNs) this.opts.router.unavailableNamespaces.delete(ns);
    this.opts.router.unavailableNamespaces.delete(name);
    rec.def = next;
    rec.status = 'loading';
    rec.reason = undefined;
    rec.reasonCode = undefined;
    rec.instance = undefined;
    rec.started = false;
    rec.pending = carried && next.restore ? carried : null;
    rec.reloads++;
    this.registerEvents(rec);
    if (rec.status === 'loading') this.makeContext(rec);
    if (rec.status === 'loading') await this.startOne(rec);
    this.opts.log.info({ plugin: name, status: rec.status }, 'plugin reloaded');
    this.opts.router.emit(
      'plugin:reloaded',
      { plugin: name, status: rec.status, reason: rec.reason ?? null, reason_code: rec.reasonCode ?? null },
      null,
    );
    return rec;
  }

  list(): Array<{
    name: string;
    status: PluginStatus;
    reason: string | null;
    reason_code: PluginReasonCode | null;
    namespaces: string[];
    events: number;
    depends_on: string[];
    started_at: number | null;
    reloads: number;
    details?: Record<string, unknown>;
  }> {
    return [...this.records.values()].map((r) => {
      let details: Record<string, unknown> | undefined;
      try {
        details =
          r.def?.health && r.started && ['ok', 'degraded'].includes(r.status) ? r.def.health(r.instance) : undefined;
      } catch (e) {
        details = { error: (e as Error).message };
      }
      return {
        name: r.name,
        status: r.status,
        reason: r.reason ?? null,
        reason_code: r.reasonCode ?? null,
        namespaces: r.def?.namespaces ?? [],
        events: Object.keys(r.def?.events ?? {}).length,
        depends_on: r.def?.dependsOn ?? [],
        started_at: r.startedAt ? r.startedAt / 1000 : null,
        reloads: r.reloads,
        ...(details ? { details } : {}),
      };
    });
  }
}
