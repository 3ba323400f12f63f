/**
 * The kernel: wires config, logging, persistence, router, plugin host and socket together, and owns
 * the lifecycle — ordered start, and a coordinated shutdown that runs exactly once.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import type Database from 'better-sqlite3';
import { ConfigError, unknownSections, type Config } from './config.js';
import { Connection } from './connection.js';
import { KERNEL_NAMESPACES, internalEvents, kernelPlugin } from './kernel-events.js';
import { openDatabase } from './persistence.js';
import { bindEvent, PluginHost } from './plugin-host.js';
import { Router } from './router.js';
import { listen, prepareSocketPath } from './server.js';
import { withTimeout } from './timeouts.js';
import type { FSWatcher } from 'chokidar';

export const VERSION = '0.1.0';

export class Kernel {
  readonly router: Router;
  readonly host: PluginHost;
  readonly db: Database.Database;
  readonly connections = new Map<string, Connection>();
  private server: net.Server | null = null;
  private startedAt = Date.now();
  private shutdownPromise: Promise<number> | null = null;
  private rateWindow: Array<{ t: number; seq: number }> = [];
  private rateTimer: NodeJS.Timeout | null = null;
  private requestsClosed = 0;
  private watcher: FSWatcher | null = null;

  constructor(readonly config: Config, readonly log: Logger, private readonly exit: (code: number) => void) {
    this.router = new Router({ log, maxDepth: config.router.max_depth, historySize: config.router.history_size, defaultTimeoutMs: config.router.default_timeout_ms });
    this.db = openDatabase(config.paths.db);
    this.host = new PluginHost({
      router: this.router,
      db: this.db,
      log,
      rawConfig: config.raw,
      home: config.paths.home,
      root: config.paths.root,
      runDir: config.paths.run,
      logsDir: config.paths.logs,
      dbDir: config.paths.db,
      pluginDirs: config.daemon.plugin_dirs,
      disabled: config.daemon.disabled_plugins,
      startTimeoutMs: config.daemon.plugin_start_timeout_ms,
      reservedNamespaces: KERNEL_NAMESPACES,
      isShuttingDown: () => this.shuttingDown,
    });
  }

  get shuttingDown(): boolean {
    return this.shutdownPromise !== null;
  }

  /** Register kernel events without starting anything (the catalog generator uses this). */
  registerKernelEvents(): void {
    const kp = kernelPlugin(this);
    const none = (): undefined => undefined;
    for (const [event, def] of Object.entries(kp.events ?? {})) this.router.register({ event, plugin: 'kernel', def: bindEvent(def, none) });
    for (const [event, def] of Object.entries(internalEvents(this).events ?? {})) this.router.register({ event, plugin: 'kernel', def: bindEvent(def, none), internal: true });
  }

  /** load config → persistence → discover plugins → restore (early plugins) → start in order → listen → system:ready */
  async start(): Promise<void> {
    const t0 = Date.now();
    this.log.debug({ since_exec_ms: Math.round(performance.now()) }, 'kernel start');
    await prepareSocketPath(this.config.paths.socket);
    this.registerKernelEvents();
    await this.host.load();
    // A section no plugin owns is a typo or a plugin that is not there: either way, its settings would be ignored.
    const stray = unknownSections(this.config, [...this.host.records.keys()]);
    if (stray.length > 0) {
      throw new ConfigError(`${this.config.paths.configFile}: unknown section${stray.length > 1 ? 's' : ''} ${stray.map((u) => `"${u.section}" (did you mean ${u.suggestion}?)`).join(', ')}`);
    }
    // Early plugins (checkpoint) start first so every other plugin is restored before it serves.
    await this.host.startAll(true);
    await this.host.startAll(false);
    // Dev mode watches plugin folders before anyone can connect, so no edit made after that is missed.
    if (this.config.daemon.dev) this.watcher = await (await import('./hot-reload.js')).watchPlugins(this.host, this.log);
    this.server = net.createServer({ allowHalfOpen: false }, (socket) => this.accept(socket));
    this.server.maxConnections = this.config.daemon.max_connections;
    await listen(this.server, this.config.paths.socket);
    fs.writeFileSync(this.config.paths.pidFile, `${process.pid}\n`, { mode: 0o600 });
    this.rateTimer = setInterval(() => this.sampleRate(), 1000);
    this.rateTimer.unref();
    const startupMs = Date.now() - t0;
    const plugins = Object.fromEntries(this.host.list().map((p) => [p.name, p.status]));
    // performance.now() counts from process start: Node's own boot and module loading included.
    this.log.info({ socket: this.config.paths.socket, plugins, startup_ms: startupMs, since_exec_ms: Math.round(performance.now()) }, 'daemon ready');
    this.router.emit('system:ready', { pid: process.pid, socket: this.config.paths.socket, plugins, startup_ms: startupMs }, null);
  }

  private accept(socket: net.Socket): void {
    if (this.shuttingDown) {
      socket.end(JSON.stringify({ kind: 'response', event: null, correlation_id: null, error: { code: 'SHUTTING_DOWN', message: 'the daemon is shutting down' }, timestamp: Date.now() / 1000 }) + '\n');
      return;
    }
    const conn = new Connection(socket, this.router, {
      maxFrameBytes: this.config.daemon.max_frame_bytes,
      maxInflight: this.config.daemon.max_inflight_per_connection,
      subscriberQueue: this.config.daemon.subscriber_queue,
      defaultTimeoutMs: this.config.router.default_timeout_ms,
    }, this.log, (c) => {
      this.requestsClosed += c.requests;
      this.connections.delete(c.id);
    });
    this.connections.set(conn.id, conn);
    this.log.debug({ conn: conn.id }, 'client connected');
  }

  private sampleRate(): void {
    this.rateWindow.push({ t: Date.now(), seq: this.router.lastSeq });
    if (this.rateWindow.length > 10) this.rateWindow.shift();
  }

  health(): Record<string, unknown> {
    const plugins = this.host.list();
    const failed = plugins.filter((p) => p.status === 'failed');
    const degraded = plugins.filter((p) => p.status === 'degraded');
    const w = this.rateWindow;
    const rate = w.length >= 2 ? ((w[w.length - 1].seq - w[0].seq) * 1000) / (w[w.length - 1].t - w[0].t) : 0;
    const mem = process.memoryUsage();
    let requests = this.requestsClosed;
    for (const c of this.connections.values()) requests += c.requests;
    return {
      status: this.shuttingDown ? 'shutting_down' : failed.length ? 'unhealthy' : degraded.length ? 'degraded' : 'healthy',
      // Degraded means a backend is absent (no Docker, no Neo4j): the daemon still works. Failed plugins do not.
      healthy: !this.shuttingDown && failed.length === 0,
      version: VERSION,
      pid: process.pid,
      uptime_s: Math.round((Date.now() - this.startedAt) / 100) / 10,
      socket: this.config.paths.socket,
      home: this.config.paths.home,
      plugins: Object.fromEntries(plugins.map((p) => [p.name, { status: p.status, reason: p.reason, reason_code: p.reason_code, ...(p.details ? { details: p.details } : {}) }])),
      connections: this.connections.size,
      subscribers: this.router.subscriberCount,
      events: { seq: this.router.lastSeq, per_s: Math.round(rate * 10) / 10 },
      requests,
      memory: { rss_mb: Math.round(mem.rss / 1048576), heap_mb: Math.round(mem.heapUsed / 1048576) },
    };
  }

  /**
   * Coordinated shutdown, at most once whatever asks for it: stop accepting requests, announce,
   * stop plugins in reverse order within the deadline (the early checkpoint plugin last, so it
   * takes the final checkpoint after everyone stopped accepting work), tell subscribers, close.
   */
  shutdown(reason: string): Promise<number> {
    if (this.shutdownPromise) return this.shutdownPromise;
    this.shutdownPromise = this.doShutdown(reason);
    return this.shutdownPromise;
  }

  private async doShutdown(reason: string): Promise<number> {
    const t0 = Date.now();
    const deadline = t0 + this.config.daemon.shutdown_timeout_ms;
    this.router.shuttingDown = true;
    void this.watcher?.close();
    this.log.info({ reason }, 'shutdown begin');
    this.router.emit('system:shutdown_begin', { reason, deadline: deadline / 1000 }, null);
    let unfinished: string[] = [];
    try {
      unfinished = await this.host.stopAll(deadline, (r) => !r.def?.early);
      this.router.emit('system:shutdown_phase', { phase: 'plugins_stopped', unfinished }, null);
      // Early plugins get a little time of their own even when the others used it all up: the final checkpoint matters most.
      unfinished.push(...(await this.host.stopAll(Math.max(deadline, Date.now() + 2000), (r) => Boolean(r.def?.early))));
    } catch (err) {
      this.log.error({ err }, 'shutdown: stopping plugins failed');
    }
    const durationMs = Date.now() - t0;
    if (unfinished.length) this.log.warn({ unfinished }, 'plugins did not finish stopping in time');
    this.router.emit('system:shutdown_complete', { reason, unfinished, duration_ms: durationMs }, null);
    await this.closeSocket();
    this.cleanupFiles();
    try {
      this.db.close();
    } catch (err) {
      this.log.error({ err }, 'closing database failed');
    }
    this.log.info({ reason, duration_ms: Date.now() - t0, unfinished }, 'shutdown complete');
    this.exit(0);
    return 0;
  }

  private async closeSocket(): Promise<void> {
    if (this.rateTimer) clearInterval(this.rateTimer);
    const server = this.server;
    // Let queued frames (the shutdown notices) reach clients, bounded.
    const flushes = [...this.connections.values()].map((c) => new Promise<void>((resolve) => {
      c.socket.end(() => resolve());
    }));
    await withTimeout(Promise.all(flushes), 1000, 'flushing clients').catch(() => undefined);
    for (const c of this.connections.values()) c.socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Remove socket and pid files, only if they are still ours. */
  cleanupFiles(): void {
    try {
      const pid = fs.readFileSync(this.config.paths.pidFile, 'utf8').trim();
      if (pid === String(process.pid)) fs.unlinkSync(this.config.paths.pidFile);
    } catch {
      /* already gone */
    }
    try {
      if (this.server) fs.unlinkSync(this.config.paths.socket);
    } catch {
      /* already gone */
    }
  }
}
