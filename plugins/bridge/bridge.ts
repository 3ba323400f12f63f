/**
 * The bridge: one NATS connection per daemon, and the parts that use it — the event relay, request
 * serving/forwarding, durable jobs, peers. The connection is retried in the background: an
 * unreachable or malformed URL leaves the daemon up and the bridge degraded, saying why.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { redactSecrets, type EmittedEvent, type PluginContext } from '../../daemon/plugin-api.js';
import { matchPatterns } from '../../client/pattern-index.js';
import { Backoff, settledWithin, sleep } from '../../client/timing.js';
import { Subjects, type BridgeConfig } from './config.js';
import { EventRelay } from './events.js';
import { JobService } from './jobs.js';
import { Peers } from './peers.js';
import { RequestService } from './requests.js';
import { newStats } from './stats.js';

export type ConnState = 'disabled' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'closed';

/** Credentials in a URL are never logged or reported. */
/** The one redaction every shown URL goes through (kept under this name for the bridge's callers). */
export const redactUrl = (url: string): string => redactSecrets(url);

export class Bridge {
  readonly stats = newStats();
  state: ConnState = 'disabled';
  since = Date.now();
  lastError: string | null = null;
  server: string | null = null;
  private nc: NatsConnection | null = null;
  private stopped = false;
  private ready = false;
  private serving = false;
  private servingReady = false;
  private readonly node: string;
  private readonly subjects: Subjects;
  readonly events: EventRelay;
  readonly requests: RequestService;
  readonly jobs: JobService;
  readonly peers: Peers;
  private readonly durable: (event: string) => boolean;
  private lagTimer: NodeJS.Timeout | null = null;
  private unserve: (() => void) | null = null;
  /** A configuration mistake found at run time: keeps the plugin degraded whatever the connection does. */
  private configProblem: string | null = null;

  constructor(
    private readonly ctx: PluginContext,
    readonly cfg: BridgeConfig,
  ) {
    this.node = cfg.node ?? '';
    this.subjects = new Subjects(cfg.prefix, this.node);
    this.events = new EventRelay(ctx, cfg, this.subjects, this.node, this.stats);
    this.requests = new RequestService(ctx, cfg, this.subjects, this.node, this.stats);
    this.jobs = new JobService(ctx, cfg, this.subjects, this.node, this.stats, this.requests);
    this.peers = new Peers(
      ctx,
      cfg,
      this.subjects,
      this.node,
      (reason) => {
        this.configProblem = reason;
        this.ctx.setStatus('degraded', reason, 'CONFIG_INVALID');
      },
      () => (this.servingReady ? this.cfg.serve : []),
    );
    this.durable = matchPatterns(cfg.durable);
  }

  get enabled(): boolean {
    return Boolean(this.cfg.url);
  }

  get connection(): NatsConnection | null {
    return this.nc && !this.nc.isClosed() ? this.nc : null;
  }

  async start(): Promise<void> {
    if (!this.cfg.url) return; // off unless configured
    if (!this.cfg.node) {
      this.setState('disconnected', 'bridge.url is set but bridge.node is not: every daemon needs its own node name');
      return;
    }
    this.events.listen();
    if (this.cfg.forward && this.ctx.serveUnowned) {
      this.unserve = this.ctx.serveUnowned(
        this.requests.fallback(
          () => this.connection,
          this.durable,
          (e, d, c) => this.jobs.submit(e, d, c),
        ),
      );
    }
    // Serve the fleet only once every local plugin has started.
    this.ctx.subscribe('system:ready', (ev: EmittedEvent) => {
      if (ev.context.origin === undefined) this.markReady();
    });
    // From the moment shutdown begins, take no new work from the fleet: other nodes should get it.
    this.ctx.subscribe('system:shutdown_begin', (ev: EmittedEvent) => {
      if (ev.context.origin !== undefined) return;
      this.requests.stop();
      this.jobs.stopTaking();
    });
    const list = await this.ctx
      .request<{ plugins: Array<{ name: string; status: string }> }>('plugin:list', {}, { timeoutMs: 5000 })
      .catch(() => null);
    if (list && list.plugins.every((p) => p.name === this.ctx.name || p.status !== 'loading')) this.markReady();
    this.state = 'connecting';
    this.connectForever().catch((err: unknown) => this.ctx.log.error({ err }, 'bridge connection loop failed'));
  }

  private markReady(): void {
    this.ready = true;
    this.startServing().catch((err) => {
      this.ctx.log.error({ err }, 'serving the fleet failed');
      this.ctx.setStatus('degraded', `serving the fleet failed: ${(err as Error).message}`);
    });
  }

  private async connectForever(): Promise<void> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 10_000 });
    let nc: NatsConnection | null = null;
    while (!this.stopped && !nc) {
      try {
        nc = await connect({
          servers: this.cfg.url!.split(',').map((s) => s.trim()),
          name: `agentd-${this.node}`,
          noEcho: true,
          timeout: this.cfg.connect_timeout_ms,
          // Once connected, never give up: the client reconnects and restores every subscription.
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          reconnectJitter: 100,
          pingInterval: 5000,
          maxPingOut: 3,
          // Otherwise every request builds two Error objects (stack traces and all) in case it fails;
          // a failure is mapped to a typed error that names the event anyway.
          noAsyncTraces: true,
        });
      } catch (e) {
        this.setState('disconnected', redactUrl(`cannot connect to NATS at ${this.cfg.url!}: ${(e as Error).message}`));
        await sleep(backoff.next(), { unref: true });
      }
    }
    if (!nc) return;
    if (this.stopped) {
      await nc.close().catch(() => undefined);
      return;
    }
    this.nc = nc;
    this.server = nc.getServer();
    this.setState('connected', null);
    this.watch(nc).catch((err) => this.ctx.log.error({ err }, 'connection watch failed'));
    try {
      this.events.attach(nc);
      this.peers.start(nc);
      await this.jobs.attach(nc);
      if (this.jobs.state === 'failed')
        this.ctx.setStatus('degraded', this.jobs.lastError ?? 'JetStream unavailable', 'BACKEND_UNAVAILABLE');
      this.lagTimer = setInterval(
        () => void this.tick(nc).catch((err) => this.ctx.log.debug({ err }, 'bridge tick failed')),
        Math.max(1000, this.cfg.heartbeat_ms),
      );
      this.lagTimer.unref();
      await this.startServing();
    } catch (err) {
      this.lastError = `bridge set-up failed: ${(err as Error).message}`;
      this.ctx.log.error({ err }, 'bridge set-up failed');
      this.ctx.setStatus('degraded', this.lastError, 'BACKEND_UNAVAILABLE');
    }
  }

  /** Periodic: queue depths for lag, and another try at JetStream if it was not there before. */
  private async tick(nc: NatsConnection): Promise<void> {
    if (this.stopped || nc.isClosed()) return;
    if (this.jobs.state === 'failed' && this.state === 'connected') {
      if (await this.jobs.attach(nc)) {
        if (!this.configProblem) this.ctx.setStatus('ok');
        if (this.serving) await this.jobs.startWorkers();
      }
      return;
    }
    await this.jobs.refreshLag();
  }

  private async startServing(): Promise<void> {
    const nc = this.connection;
    if (!nc || !this.ready || this.serving || this.stopped) return;
    this.serving = true;
    this.requests.serve(nc);
    await this.jobs.startWorkers();
    this.servingReady = true;
    this.peers.announceNow(nc);
    // Serving a namespace nobody owns here would only bounce requests: say so.
    const owned = await this.ctx
      .request<{ events: Record<string, unknown[]> }>('system:discover', {}, { timeoutMs: 5000 })
      .catch(() => null);
    const missing = owned ? this.cfg.serve.filter((ns) => !owned.events[ns]) : [];
    if (missing.length) {
      this.configProblem = `bridge.serve names namespaces no local plugin owns: ${missing.join(', ')}`;
      this.ctx.log.warn({ missing }, 'serving namespaces that are not owned here');
      this.ctx.setStatus('degraded', this.configProblem, 'CONFIG_INVALID');
    }
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.stopped) return;
      switch (s.type) {
        case 'disconnect':
          this.setState('reconnecting', `lost NATS at ${redactUrl(s.server)}; reconnecting`);
          break;
        case 'reconnect':
          this.stats.reconnects++;
          this.server = s.server;
          this.setState('connected', null);
          break;
        case 'error':
          this.lastError = s.error.message;
          break;
        default:
          break;
      }
    }
    if (!this.stopped) this.setState('closed', 'the NATS connection closed');
  }

  private setState(state: ConnState, reason: string | null): void {
    const changed = state !== this.state;
    this.state = state;
    if (changed) this.since = Date.now();
    if (reason) this.lastError = reason;
    if (state === 'connected') {
      if (this.configProblem) this.ctx.setStatus('degraded', this.configProblem, 'CONFIG_INVALID');
      else if (this.jobs.state !== 'failed') this.ctx.setStatus('ok');
    } else if (state !== 'connecting') this.ctx.setStatus('degraded', reason ?? state, 'BACKEND_UNAVAILABLE');
    if (changed) {
      this.ctx.log.info({ state, reason }, 'bridge connection state');
      this.ctx.emit('bridge:state', { node: this.node, state, reason });
    }
  }

  /** Forward one request explicitly (bridge:request): to a node, or to whoever serves its namespace. */
  request(
    event: string,
    data: Record<string, unknown>,
    context: Parameters<RequestService['forward']>[3],
    remainingMs: number,
    node?: string,
  ) {
    return this.requests.forward(this.connection, event, data, context, remainingMs, node);
  }

  status(): Record<string, unknown> {
    return {
      enabled: this.enabled,
      node: this.cfg.node ?? null,
      url: this.cfg.url ? redactUrl(this.cfg.url) : null,
      server: this.server,
      state: this.state,
      since: this.since / 1000,
      error: this.state === 'connected' ? this.configProblem : this.lastError,
      ready: this.ready,
      peers: this.peers.list(),
      subjects: {
        publish: this.events.publishedSubjects(),
        subscribe: this.events.subscribedSubjects(),
        serve: this.requests.servedSubjects(),
      },
      serve: this.cfg.serve,
      durable: this.cfg.durable,
      forward: this.cfg.forward,
      jetstream: this.jobs.status(),
      lag: {
        event_ms: this.events.lag.toJSON(),
        request_rtt_ms: this.requests.rtt.toJSON(),
        work_queue: this.jobs.workPending,
        outbound_bytes: this.nc && !this.nc.isClosed() ? this.nc.stats().outBytes : 0,
      },
      stats: { ...this.stats, name_conflicts: this.peers.nameConflicts },
    };
  }

  /** A compact view for system:health. */
  health(): Record<string, unknown> {
    if (!this.enabled) return { enabled: false };
    return {
      enabled: true,
      node: this.cfg.node ?? null,
      state: this.state,
      error: this.state === 'connected' ? null : this.lastError,
      peers: this.peers
        .list()
        .filter((p) => p.alive)
        .map((p) => p.node),
      subjects: this.events.subscribedSubjects().length + this.requests.servedSubjects().length,
      jetstream: this.jobs.state,
      lag_ms: Math.round(this.events.lag.mean * 10) / 10,
      work_pending: Object.values(this.jobs.workPending).reduce((n, q) => n + q.pending, 0),
    };
  }

  async stop(deadline: number): Promise<void> {
    this.stopped = true;
    this.unserve?.();
    this.requests.stop();
    this.peers.stop();
    if (this.lagTimer) clearInterval(this.lagTimer);
    await this.jobs.stop(deadline);
    this.events.stop();
    const nc = this.nc;
    this.nc = null;
    if (nc && !nc.isClosed()) {
      // Drain: replies and results still in flight reach NATS before the connection closes.
      await settledWithin(
        nc.drain().catch(() => nc.close()),
        Math.max(200, Math.min(2000, deadline - Date.now())),
      );
      if (!nc.isClosed()) await nc.close().catch(() => undefined);
    }
    this.state = 'closed';
  }
}
