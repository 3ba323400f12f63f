/**
 * The plugin host: loads discovered plugins, gives each its context, registers its events and
 * listeners with the router, starts them in dependency order and stops them in reverse, each step
 * with a deadline. A plugin that fails is contained: it is reported and its events answer
 * UNAVAILABLE; the daemon keeps running.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type Database from 'better-sqlite3';
import { DaemonError } from '../client/errors.js';
import { rootContext } from './call-context.js';
import { findPlugins, importPlugin, planStart, type FoundPlugin } from './plugin-loader.js';
import type { EmittedEvent, Listener, PluginContext, PluginDef, PluginStatus } from './plugin-api.js';
import { migrate } from './persistence.js';
import { parseSection } from './config.js';
import type { Router, Subscriber } from './router.js';
import { withTimeout } from './timeouts.js';

export interface PluginRecord {
  name: string;
  found: FoundPlugin | null;
  def: PluginDef | null;
  status: PluginStatus;
  reason?: string;
  ctx: PluginContext | null;
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
  reservedNamespaces: string[];
  isShuttingDown: () => boolean;
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
    private readonly fn: (ev: EmittedEvent, ctx: PluginContext) => void | Promise<void>,
    private readonly log: Logger,
    private readonly report: (plugin: string, ev: EmittedEvent, err: Error) => void,
  ) {
    this.id = `plugin:${rec.name}:${pattern}:${++listenerSeq}`;
  }
  deliver(ev: EmittedEvent): void {
    if (this.inflight >= 1000) {
      // A listener that cannot keep up must not grow the daemon's memory; say so once per thousand.
      if (this.dropped++ % 1000 === 0) this.log.warn({ plugin: this.rec.name, pattern: this.pattern, dropped: this.dropped }, 'listener behind, events dropped');
      return;
    }
    this.inflight++;
    queueMicrotask(() => {
      let out: void | Promise<void>;
      try {
        out = this.fn(ev, this.rec.ctx!);
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

  constructor(private readonly o: HostOptions) {}

  /** Discover, import and check every plugin; register events (failed plugins' as UNAVAILABLE). */
  async load(): Promise<void> {
    const roots = [path.join(this.o.root, 'plugins'), ...this.o.pluginDirs.map((d) => path.resolve(this.o.root, d))];
    const { found, errors } = findPlugins(roots);
    for (const e of errors) this.o.log.warn({ dir: e.dir, reason: e.reason }, 'plugin directory skipped');
    const imports: Array<Promise<void>> = [];
    for (const f of found) {
      const rec: PluginRecord = { name: f.dirName, found: f, def: null, status: 'loading', ctx: null, listeners: [], dirty: false, reloads: 0 };
      this.records.set(f.dirName, rec);
      if (this.o.disabled.includes(f.dirName)) {
        rec.status = 'stopped';
        rec.reason = 'disabled in config';
        continue;
      }
      imports.push(importPlugin(f).then(
        (def) => void (rec.def = def),
        (e: Error) => {
          this.fail(rec, `load failed: ${e.message}`);
          this.o.router.unavailableNamespaces.set(f.dirName, rec.reason!);
        },
      ));
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
      this.o.reservedNamespaces,
    );
    this.order = plan.order;
    for (const name of plan.order) {
      const rec = this.records.get(name)!;
      const why = plan.failed.get(name);
      if (why) this.fail(rec, why);
      this.registerEvents(rec);
      if (!why) this.makeContext(rec);
    }
  }

  private fail(rec: PluginRecord, reason: string): void {
    rec.status = 'failed';
    rec.reason = reason;
    this.o.log.error({ plugin: rec.name, reason }, 'plugin failed');
    for (const ev of Object.keys(rec.def?.events ?? {})) {
      const r = this.o.router.route(ev);
      if (r && r.plugin === rec.name) r.unavailable = reason;
    }
  }

  private registerEvents(rec: PluginRecord): void {
    for (const [event, def] of Object.entries(rec.def!.events ?? {})) {
      try {
        this.o.router.register({ event, plugin: rec.name, def, unavailable: rec.status === 'failed' ? rec.reason : undefined });
      } catch (e) {
        this.fail(rec, (e as Error).message);
      }
    }
  }

  private makeContext(rec: PluginRecord): void {
    const router = this.o.router;
    const log = this.o.log.child({ plugin: rec.name });
    let config: Record<string, unknown> = this.o.rawConfig[rec.name] ?? {};
    if (rec.def!.configSchema) {
      const r = parseSection(rec.name, rec.def!.configSchema, config);
      if (!r.ok) {
        this.fail(rec, r.reason);
        return;
      }
      config = r.data as Record<string, unknown>;
    }
    const host = this;
    const ctx: PluginContext = {
      name: rec.name,
      log,
      config,
      paths: { home: this.o.home, run: this.o.runDir, logs: this.o.logsDir, db: this.o.dbDir, data: path.join(this.o.home, rec.name), root: this.o.root },
      db: this.o.db,
      migrate: (migrations) => void migrate(this.o.db, rec.name, migrations),
      request: (event, data = {}, opts = {}) => {
        const parent = opts.context ?? rootContext(opts.agentId);
        const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
        return router.request(event, data, parent, deadline, opts, null) as Promise<never>;
      },
      emit: (event, data, opts = {}) => router.emit(event, data, opts.context ?? null, opts),
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
      setStatus: (status, reason) => {
        if (rec.status === 'failed' || rec.status === 'stopped') return;
        const changed = rec.status !== status || rec.reason !== reason;
        rec.status = status;
        rec.reason = status === 'ok' ? undefined : reason;
        if (changed) {
          log.info({ status, reason }, 'plugin status changed');
          router.emit('plugin:status', { plugin: rec.name, status, reason: reason ?? null }, null);
        }
      },
      markDirty: () => void (rec.dirty = true),
      get shuttingDown() {
        return host.o.isShuttingDown();
      },
    };
    rec.ctx = ctx;
  }

  private readonly reportListenerError = (plugin: string, ev: EmittedEvent, err: Error): void => {
    this.o.log.error({ err, plugin, event: ev.event, seq: ev.seq }, 'listener failed');
    // Never report a failure while handling a failure report: that would feed itself.
    if (ev.event !== 'plugin:error') this.o.router.emit('plugin:error', { plugin, event: ev.event, seq: ev.seq, message: err.message }, ev.context);
  };

  private subscribeStatic(rec: PluginRecord): void {
    for (const [pattern, fn] of Object.entries(rec.def!.subscriptions ?? {})) {
      const sub = new PluginListener(rec, pattern, fn, this.o.log, this.reportListenerError);
      rec.listeners.push(sub);
      this.o.router.subscribe([pattern], sub);
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
      const waits = [...hard, ...(rec.def!.optionalDependsOn ?? [])].map((d) => starting.get(d)).filter((p): p is Promise<void> => p !== undefined);
      starting.set(name, Promise.all(waits).then(async () => {
        const bad = hard.find((d) => this.records.get(d)?.status === 'failed');
        if (bad) {
          this.fail(rec, `dependency "${bad}" failed`);
          return;
        }
        await this.startOne(rec);
      }));
    }
    await Promise.all(starting.values());
  }

  private async startOne(rec: PluginRecord): Promise<void> {
    const t0 = Date.now();
    try {
      this.subscribeStatic(rec);
      if (rec.def!.start) await withTimeout(Promise.resolve(rec.def!.start(rec.ctx!)), this.o.startTimeoutMs, `start of ${rec.name}`);
      if (rec.status === 'loading') rec.status = 'ok';
      rec.startedAt = Date.now();
      rec.ctx!.log.info({ ms: Date.now() - t0, status: rec.status }, 'plugin started');
    } catch (e) {
      for (const l of rec.listeners) this.o.router.unsubscribe(l);
      rec.listeners = [];
      this.o.router.clearFallback(rec.name);
      this.fail(rec, `start failed: ${(e as Error).message}`);
    }
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
    if (!rec.ctx || !['ok', 'degraded'].includes(rec.status)) return true;
    let finished = true;
    try {
      if (rec.def!.stop) await withTimeout(Promise.resolve(rec.def!.stop(rec.ctx, deadline)), Math.max(1, deadline - Date.now()), `stop of ${rec.name}`);
    } catch (e) {
      finished = false;
      rec.ctx.log.error({ err: e }, 'plugin did not stop cleanly');
    }
    for (const l of rec.listeners) this.o.router.unsubscribe(l);
    rec.listeners = [];
    this.o.router.clearFallback(rec.name);
    rec.status = 'stopped';
    return finished;
  }

  /** Every stateful plugin's snapshot; a plugin whose snapshot throws is left out and named. */
  async snapshotAll(onlyDirty = false): Promise<{ states: Record<string, { version: number; state: unknown }>; errors: Record<string, string>; dirty: boolean }> {
    const states: Record<string, { version: number; state: unknown }> = {};
    const errors: Record<string, string> = {};
    const anyDirty = [...this.records.values()].some((r) => r.dirty);
    if (onlyDirty && !anyDirty) return { states, errors, dirty: false };
    for (const rec of this.records.values()) {
      if (!rec.def?.snapshot || !rec.ctx || rec.status === 'failed') continue;
      try {
        states[rec.name] = { version: rec.def.version ?? 1, state: await rec.def.snapshot() };
        rec.dirty = false;
      } catch (e) {
        errors[rec.name] = (e as Error).message;
        rec.ctx.log.error({ err: e }, 'snapshot failed');
      }
    }
    return { states, errors, dirty: anyDirty };
  }

  /** Hand each plugin its part of a checkpoint; incompatible versions are skipped and named. */
  async restoreAll(states: Record<string, { version: number; state: unknown }>): Promise<{ restored: string[]; skipped: Record<string, string> }> {
    const restored: string[] = [];
    const skipped: Record<string, string> = {};
    for (const [name, part] of Object.entries(states)) {
      const rec = this.records.get(name);
      if (!rec?.def?.restore || !rec.ctx) {
        skipped[name] = 'plugin not loaded or not stateful';
        continue;
      }
      if ((rec.def.version ?? 1) !== part.version) {
        skipped[name] = `snapshot version ${part.version} does not match plugin version ${rec.def.version ?? 1}`;
        continue;
      }
      try {
        await rec.def.restore(part.state, rec.ctx);
        restored.push(name);
      } catch (e) {
        skipped[name] = `restore failed: ${(e as Error).message}`;
        rec.ctx.log.error({ err: e }, 'restore failed');
      }
    }
    return { restored, skipped };
  }

  /** snapshot → stop → re-import (fresh modules) → restore → start, carrying state across. */
  async reload(name: string): Promise<PluginRecord> {
    const rec = this.records.get(name);
    if (!rec || !rec.found) throw new DaemonError('NOT_FOUND', `no plugin named "${name}"`, { plugins: [...this.records.keys()] });
    if (!fs.existsSync(rec.found.file)) throw new DaemonError('NOT_FOUND', `plugin file ${rec.found.file} is gone`);
    let next: PluginDef;
    try {
      next = await importPlugin(rec.found, true);
    } catch (e) {
      // The running version keeps serving: a broken edit must not take a working plugin down.
      throw new DaemonError('CONFLICT', `reload of ${name} refused, the running version is kept: ${(e as Error).message}`);
    }
    const oldNs = rec.def?.namespaces ?? [];
    for (const ns of next.namespaces) {
      const owner = [...this.records.values()].find((r) => r !== rec && r.def?.namespaces.includes(ns));
      if (owner || this.o.reservedNamespaces.includes(ns)) throw new DaemonError('CONFLICT', `reload of ${name} refused: namespace "${ns}" belongs to ${owner ? owner.name : 'the kernel'}`);
    }
    let state: unknown;
    const hadState = Boolean(rec.def?.snapshot && rec.ctx && ['ok', 'degraded'].includes(rec.status));
    if (hadState) state = await rec.def!.snapshot!();
    await this.stopOne(rec, Date.now() + this.o.startTimeoutMs);
    this.o.router.unregisterPlugin(name);
    for (const ns of oldNs) this.o.router.unavailableNamespaces.delete(ns);
    this.o.router.unavailableNamespaces.delete(name);
    rec.def = next;
    rec.status = 'loading';
    rec.reason = undefined;
    rec.reloads++;
    this.registerEvents(rec);
    if (rec.status === 'loading') this.makeContext(rec);
    if (rec.status === 'loading' && hadState && next.restore) {
      try {
        await next.restore(state, rec.ctx!);
      } catch (e) {
        rec.ctx!.log.error({ err: e }, 'restore after reload failed');
      }
    }
    if (rec.status === 'loading') await this.startOne(rec);
    this.o.log.info({ plugin: name, status: rec.status }, 'plugin reloaded');
    this.o.router.emit('plugin:reloaded', { plugin: name, status: rec.status, reason: rec.reason ?? null }, null);
    return rec;
  }

  list(): Array<{ name: string; status: PluginStatus; reason: string | null; namespaces: string[]; events: number; depends_on: string[]; started_at: number | null; reloads: number; details?: Record<string, unknown> }> {
    return [...this.records.values()].map((r) => {
      let details: Record<string, unknown> | undefined;
      try {
        details = r.def?.health && r.ctx && ['ok', 'degraded'].includes(r.status) ? r.def.health() : undefined;
      } catch (e) {
        details = { error: (e as Error).message };
      }
      return {
        name: r.name,
        status: r.status,
        reason: r.reason ?? null,
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
