/**
 * The gateway as one object that `start` creates and `stop` ends: token, catalogue of events,
 * metrics, clients, the dashboard's bundle and the HTTP server. Testable with any object that
 * offers the plugin context's request/subscribe/log.
 */
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { PluginContext } from '../../daemon/plugin-api.js';
import { TokenCheck, resolveToken } from './auth.js';
import { Clients } from './clients.js';
import { isLoopback, parseListen, type GatewayConfig, type ListenAddress } from './config.js';
import { dashboardAssets } from './dashboard-build.js';
import { Door } from './door.js';
import { noticeFrame } from './envelope.js';
import { Metrics } from './metrics.js';
import { Probes } from './probes.js';
import { buildServer } from './server.js';

/** How long closing web clients may take to receive their last frame before the server cuts them. */
const FINISH_MS = 1000;

export type GatewayContext = Pick<PluginContext, 'request' | 'subscribe' | 'log' | 'paths' | 'shuttingDown'>;

export class GatewayService {
  private app: FastifyInstance | null = null;
  private readonly unsubscribe: Array<() => void> = [];
  readonly clients: Clients;
  readonly metrics: Metrics;
  readonly door: Door;
  address: ListenAddress | null = null;
  /** What system:shutdown_begin said, passed on in the last frame web clients get. */
  private shutdownBegin: { reason: unknown; deadline: unknown; seq: number } | null = null;
  /** Closing: no new streams or WebSockets. */
  stopping = false;
  tokenFile: string | null = null;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly config: GatewayConfig,
    private readonly version: string,
  ) {
    this.clients = new Clients(config.max_clients, config.heartbeat_s);
    const probes = new Probes(ctx, config.probe_cache_ms);
    this.metrics = new Metrics(probes, this.clients);
    this.door = new Door(ctx, this.metrics);
  }

  async start(): Promise<void> {
    if (this.config.listen === undefined) return;
    const want = parseListen(this.config.listen);
    if (!isLoopback(want.host)) this.ctx.log.warn({ host: want.host }, 'gateway listens beyond loopback');
    const t = resolveToken(this.config.token, this.config.token_file ?? path.join(this.ctx.paths.run, 'gateway.token'));
    this.tokenFile = t.file;
    await this.door.refresh();
    // Refresh what the daemon answers when a plugin comes back with other events.
    this.unsubscribe.push(this.ctx.subscribe('plugin:reloaded', () => void this.door.refresh().catch(() => undefined)));
    this.unsubscribe.push(...this.metrics.watch(this.ctx));
    this.unsubscribe.push(
      this.ctx.subscribe(
        'system:shutdown_begin',
        (ev) =>
          void (this.shutdownBegin = {
            reason: ev.data.reason ?? null,
            deadline: ev.data.deadline ?? null,
            seq: ev.seq,
          }),
      ),
    );
    const assets = this.config.dashboard ? await dashboardAssets(this.ctx.paths.root) : null;
    this.app = await buildServer({
      ctx: this.ctx,
      closing: () => this.stopping || this.ctx.shuttingDown,
      config: this.config,
      token: new TokenCheck(t.token),
      door: this.door,
      clients: this.clients,
      metrics: this.metrics,
      assets,
      version: this.version,
    });
    await this.app.listen({ host: want.host, port: want.port });
    const a = this.app.server.address();
    this.address = a && typeof a === 'object' ? { host: want.host, port: a.port } : want;
    this.ctx.log.info(
      { host: this.address.host, port: this.address.port, token: t.source === 'config' ? 'configured' : t.file },
      'gateway listening',
    );
  }

  /**
   * Web clients are told the gateway is going away before it does: the events already on their way
   * (system:shutdown_begin, emitted just before the plugins stop) reach them, then a last frame,
   * `gateway:closing`, then their streams end cleanly (an SSE response ended, a WebSocket closed with
   * 1001), within FINISH_MS; only then does the server close and cut what is left.
   */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    this.stopping = true;
    // Listeners get their events in a microtask after the emit: let those already emitted land.
    await new Promise((r) => setImmediate(r));
    const shutting = this.ctx.shuttingDown;
    const begin = shutting ? this.shutdownBegin : null;
    const data = {
      reason: shutting ? 'shutdown' : 'stopped',
      shutdown: begin && { reason: begin.reason, deadline: begin.deadline },
    };
    await this.clients.finishAll(
      { seq: null, text: noticeFrame('gateway:closing', data, begin?.seq ?? 0, null) },
      FINISH_MS,
    );
    await this.app?.close();
    this.app = null;
  }

  status(): Record<string, unknown> {
    const depth = this.clients.depth();
    return {
      listening: this.address !== null,
      ...(this.address
        ? {
            host: this.address.host,
            port: this.address.port,
            url: `http://${this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host}:${this.address.port}/`,
          }
        : {}),
      token_file: this.tokenFile,
      clients: { sse: this.clients.count('sse'), ws: this.clients.count('ws') },
      subscriptions: depth.feeds,
      queued_frames: depth.total,
      delivered: this.clients.stats.sse.delivered + this.clients.stats.ws.delivered,
      dropped: this.clients.stats.sse.dropped + this.clients.stats.ws.dropped,
    };
  }
}
