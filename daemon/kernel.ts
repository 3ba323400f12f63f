/**
 * The kernel: wires config, logging, persistence, router, plugin host and socket together, and owns
 * the lifecycle — ordered start, and a coordinated shutdown that runs exactly once.
 */
import fs from 'node:fs';
import net from 'node:net';
import v8 from 'node:v8';
import type { Logger } from 'pino';
import type Database from 'better-sqlite3';
import type { ErrorPayload } from '../client/errors.js';
import { Admission } from './admission.js';
import { sharedCommitMs } from './group-commit.js';
import { ClientAdmission } from './client-admission.js';
import { EventFlush } from './event-flush.js';
import { IdleCollector } from './idle-gc.js';
import { ConfigError, unknownSections, type Config } from './config.js';
import { Connection } from './connection.js';
import { errorFrame } from './frames.js';
import { KERNEL_NAMESPACES, internalEvents, kernelPlugin } from './kernel-events.js';
import { openDatabase } from './persistence.js';
import { bindEvent, PluginHost } from './plugin-host.js';
import { redactDeep } from './redact.js';
import { LATENCY_BUCKETS_S } from './request-metrics.js';
import { Router } from './router.js';
import { listen, prepareSocketPath } from './server.js';
import { withTimeout } from '../client/timing.js';
import type { FSWatcher } from 'chokidar';

export const VERSION = '0.1.0';

/** A connection the daemon will not serve: one error frame, then close (destroyed if it never reads). */
function refuse(socket: net.Socket, error: ErrorPayload): void {
  socket.on('error', () => undefined);
  socket.end(errorFrame(null, null, error));
  setTimeout(() => socket.destroy(), 1000).unref();
}

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
  /** Connections refused for being past daemon.max_connections, since start. */
  private refused = 0;
  /** Connections closed for leaving too many answers unread (connection_buffer_max_bytes), since start. */
  private cutOff = 0;
  readonly eventFlush = new EventFlush();
  /** Closed connections' dropped events and monitor:dropped notices (open ones count their own). */
  private droppedClosed = { events: 0, notices: 0 };
  readonly admission = new Admission(
    (err) => this.log.error({ err }, 'admission: a request failed outside its handler'),
    { sharedMs: sharedCommitMs, queued: (event) => this.router.route(event)?.def.queued === true },
  );
  private readonly idleGc = new IdleCollector();
  private watcher: FSWatcher | null = null;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    private readonly exit: (code: number) => void,
  ) {
    this.router = new Router({
      log,
      maxDepth: config.router.max_depth,
      historySize: config.router.history_size,
      defaultTimeoutMs: config.router.default_timeout_ms,
    });
    // The gateway's HTTP and WebSocket clients take their turns with the socket's connections.
    const d = config.daemon;
    this.router.clients = new ClientAdmission(
      this.admission,
      this.router,
      d.max_inflight_per_connection,
      d.max_inflight_per_connection,
    );
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
      checkResponses: config.daemon.check_responses,
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
    const check = this.config.daemon.check_responses;
    for (const [event, def] of Object.entries(kp.events ?? {}))
      this.router.register({ event, plugin: 'kernel', def: bindEvent(event, def, none, check) });
    for (const [event, def] of Object.entries(internalEvents(this).events ?? {})) {
      this.router.register({ event, plugin: 'kernel', def: bindEvent(event, def, none, check), internal: true });
    }
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
      throw new ConfigError(
        `${this.config.paths.configFile}: unknown section${stray.length > 1 ? 's' : ''} ${stray.map((u) => `"${u.section}" (did you mean ${u.suggestion}?)`).join(', ')}`,
      );
    }
    // Early plugins (checkpoint) start first so every other plugin is restored before it serves.
    await this.host.startAll(true);
    await this.host.startAll(false);
    // Dev mode watches plugin folders before anyone can connect, so no edit made after that is missed.
    if (this.config.daemon.dev)
      this.watcher = await (await import('./hot-reload.js')).watchPlugins(this.host, this.log);
    // No server.maxConnections: past it Node closes a connection without a word. accept() answers instead.
    this.server = net.createServer({ allowHalfOpen: false }, (socket) => this.accept(socket));
    await listen(
      this.server,
      this.config.paths.socket,
      Math.min(65_535, Math.max(4096, 2 * this.config.daemon.max_connections)),
    );
    // The run directory holds the pid file even when daemon.socket puts the socket elsewhere.
    fs.mkdirSync(this.config.paths.run, { recursive: true, mode: 0o700 });
    fs.writeFileSync(this.config.paths.pidFile, `${process.pid}\n`, { mode: 0o600 });
    this.rateTimer = setInterval(() => this.sampleRate(), 1000);
    this.rateTimer.unref();
    this.idleGc.start();
    const startupMs = Date.now() - t0;
    const plugins = Object.fromEntries(this.host.list().map((p) => [p.name, p.status]));
    // performance.now() counts from process start: Node's own boot and module loading included.
    this.log.info(
      {
        socket: this.config.paths.socket,
        plugins,
        startup_ms: startupMs,
        since_exec_ms: Math.round(performance.now()),
      },
      'daemon ready',
    );
    this.router.emit(
      'system:ready',
      { pid: process.pid, socket: this.config.paths.socket, plugins, startup_ms: startupMs },
      null,
    );
  }

  private accept(socket: net.Socket): void {
    if (this.shuttingDown) {
      refuse(socket, { code: 'SHUTTING_DOWN', message: 'the daemon is shutting down' });
      return;
    }
    const max = this.config.daemon.max_connections;
    if (this.connections.size >= max) {
      this.refused++;
      // Said once per burst, not once per connection: a flood must not flood the log too.
      if (this.refused === 1 || this.refused % 1000 === 0)
        this.log.warn({ max_connections: max, refused: this.refused }, 'connection refused: too many connections');
      refuse(socket, {
        code: 'OVERLOADED',
        message: `too many connections (daemon.max_connections is ${max}); retry later`,
        details: { max_connections: max },
      });
      return;
    }
    const d = this.config.daemon;
    const conn = new Connection(
      socket,
      this.router,
      this.admission,
      this.eventFlush,
      {
        maxFrameBytes: d.max_frame_bytes,
        maxInflight: d.max_inflight_per_connection,
        subscriberQueue: d.subscriber_queue,
        defaultTimeoutMs: this.config.router.default_timeout_ms,
        maxJsonDepth: d.max_json_depth,
        bufferBytes: d.connection_buffer_bytes,
        bufferMaxBytes: d.connection_buffer_max_bytes,
        maxAnswerBytes: d.max_answer_bytes,
      },
      this.log,
      (c) => {
        this.requestsClosed += c.requests;
        this.droppedClosed.events += c.eventsDropped;
        this.droppedClosed.notices += c.dropNotices;
        if (c.overflowed) this.cutOff++;
        this.connections.delete(c.id);
      },
    );
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
      status: this.shuttingDown
        ? 'shutting_down'
        : failed.length
          ? 'unhealthy'
          : degraded.length
            ? 'degraded'
            : 'healthy',
      // Degraded means a backend is absent (no Docker, no Neo4j): the daemon still works. Failed plugins do not.
      healthy: !this.shuttingDown && failed.length === 0,
      version: VERSION,
      pid: process.pid,
      uptime_s: Math.round((Date.now() - this.startedAt) / 100) / 10,
      socket: this.config.paths.socket,
      home: this.config.paths.home,
      // A plugin's reason or details may quote a URL with its credentials (a Neo4j or NATS address).
      plugins: Object.fromEntries(
        plugins.map((p) => [
          p.name,
          redactDeep({
            status: p.status,
            reason: p.reason,
            reason_code: p.reason_code,
            ...(p.details ? { details: p.details } : {}),
          }),
        ]),
      ),
      connections: this.connections.size,
      connections_refused: this.refused,
      connections_cut_off: this.cutOff + [...this.connections.values()].filter((c) => c.overflowed).length,
      // Answers and events waiting for clients to read them, in all connections.
      connections_buffered_bytes: [...this.connections.values()].reduce((n, c) => n + c.bufferedBytes, 0),
      subscribers: this.router.subscriberCount,
      events: { seq: this.router.lastSeq, per_s: Math.round(rate * 10) / 10 },
      requests,
      memory: {
        rss_mb: Math.round(mem.rss / 1048576),
        heap_mb: Math.round(mem.heapUsed / 1048576),
        // The bound on V8's heap the daemon runs with (see docs/performance.md), and the collections
        // run when it went idle after a burst.
        heap_limit_mb: Math.round(v8.getHeapStatistics().heap_size_limit / 1048576),
        idle_collections: this.idleGc.stats.collections,
      },
    };
  }

  /**
   * Counters for monitoring (system:metrics): every request the router answered, by event, origin
   * and code, with latency histograms; what socket subscribers lost; admission's work.
   */
  metrics(): Record<string, unknown> {
    let requests = this.requestsClosed;
    let events = this.droppedClosed.events;
    let notices = this.droppedClosed.notices;
    for (const c of this.connections.values()) {
      requests += c.requests;
      events += c.eventsDropped;
      notices += c.dropNotices;
    }
    return {
      latency_buckets_s: LATENCY_BUCKETS_S,
      requests: this.router.metrics.snapshot(),
      socket: {
        connections: this.connections.size,
        requests,
        events_dropped: events,
        dropped_notices: notices,
        connections_refused: this.refused,
        connections_cut_off: this.cutOff + [...this.connections.values()].filter((c) => c.overflowed).length,
      },
      admission: {
        rounds: this.admission.stats.rounds,
        admitted: this.admission.stats.admitted,
        plugin_clients: (this.router.clients as ClientAdmission).active,
      },
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
      unfinished.push(
        ...(await this.host.stopAll(Math.max(deadline, Date.now() + 2000), (r) => Boolean(r.def?.early))),
      );
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
    this.idleGc.stop();
    const server = this.server;
    // Let queued frames (the shutdown notices) reach clients, bounded.
    const flushes = [...this.connections.values()].map(
      (c) =>
        new Promise<void>((resolve) => {
          this.eventFlush.now(c);
          c.socket.end(() => resolve());
        }),
    );
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
