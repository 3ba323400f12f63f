/**
 * Keeps the Neo4j backend usable across outages. The daemon never waits for Neo4j: when it is absent
 * at start or goes away later, the plugin reports `degraded` with the reason, kg:* answer UNAVAILABLE
 * at once, and a probe with exponential backoff (plus an immediate try on demand once the backoff has
 * passed) brings it back to `ok` without a restart.
 */
import fs from 'node:fs';
import neo4j, { type Driver } from 'neo4j-driver';
import type { Logger } from 'pino';
import { DaemonError } from '../../client/errors.js';
import { Backoff } from '../../client/timing.js';
import { redactSecrets } from '../../daemon/plugin-api.js';
import { Neo4jGraphStore } from './neo4j-store.js';
import type { GraphStore } from './store.js';

export interface Neo4jSettings {
  uri: string;
  user: string;
  password?: string;
  password_file?: string;
  database?: string;
  connection_timeout_ms: number;
  max_retry_time_ms: number;
  probe_min_ms: number;
  probe_max_ms: number;
}

export type StatusListener = (ok: boolean, reason?: string) => void;

export class Neo4jConnection {
  private driver: Driver | null = null;
  private store: Neo4jGraphStore | null = null;
  private ready = false;
  private reason = 'neo4j: not connected yet';
  private readonly backoff: Backoff;
  private nextAttemptAt = 0;
  private attempt: Promise<boolean> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly cfg: Neo4jSettings,
    private readonly log: Logger,
    private readonly onStatus: StatusListener,
  ) {
    this.backoff = new Backoff({ initialMs: cfg.probe_min_ms, maxMs: cfg.probe_max_ms });
  }

  /** Try once; never throws. On failure the probe keeps trying in the background. */
  async start(): Promise<void> {
    let password: string;
    try {
      password = this.readPassword();
    } catch (e) {
      this.down((e as Error).message, false);
      return;
    }
    this.driver = neo4j.driver(this.cfg.uri, neo4j.auth.basic(this.cfg.user, password), {
      disableLosslessIntegers: true,
      connectionTimeout: this.cfg.connection_timeout_ms,
      connectionAcquisitionTimeout: this.cfg.connection_timeout_ms + 2000,
      // Managed transactions retry transient errors, "server unavailable" included, for this long;
      // bounded so a request during an outage answers UNAVAILABLE within seconds, not half a minute.
      maxTransactionRetryTime: this.cfg.max_retry_time_ms,
      logging: {
        level: 'warn',
        logger: (level, message) => this.log.warn({ driver_level: level, msg_text: message }, 'neo4j driver'),
      },
    });
    this.store = new Neo4jGraphStore({
      driver: this.driver,
      ...(this.cfg.database === undefined ? {} : { database: this.cfg.database }),
      onUnavailable: (reason) => this.down(reason, true),
    });
    await this.connect();
  }

  private readPassword(): string {
    if (this.cfg.password !== undefined && this.cfg.password !== '') return this.cfg.password;
    if (this.cfg.password_file !== undefined) {
      try {
        return fs.readFileSync(this.cfg.password_file, 'utf8').trim();
      } catch (e) {
        throw new Error(`neo4j: cannot read kg.neo4j.password_file (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    throw new Error(
      'neo4j: no password configured (kg.neo4j.password, kg.neo4j.password_file or AGENTD_KG_NEO4J__PASSWORD)',
    );
  }

  /** One connection attempt at a time; concurrent callers share it. */
  private connect(): Promise<boolean> {
    if (!this.driver || !this.store) return Promise.resolve(false);
    this.attempt ??= (async () => {
      try {
        await this.driver!.verifyConnectivity(this.cfg.database === undefined ? {} : { database: this.cfg.database });
        await this.store!.init();
        this.up();
        return true;
      } catch (e) {
        const msg =
          e instanceof DaemonError ? e.message : `neo4j unreachable at ${this.cfg.uri}: ${(e as Error).message}`;
        // The reason is shown (health, plugin:list, every UNAVAILABLE answer): no password from the URI in it.
        this.down(redactSecrets(msg.startsWith('neo4j') ? msg : `neo4j: ${msg}`), true);
        return false;
      } finally {
        this.attempt = null;
      }
    })();
    return this.attempt;
  }

  private up(): void {
    const was = this.ready;
    this.ready = true;
    this.backoff.reset();
    this.clearTimer();
    if (!was) {
      this.log.info(
        { uri: redactSecrets(this.cfg.uri), user: this.cfg.user, database: this.cfg.database ?? null },
        'neo4j connected',
      );
      this.onStatus(true);
    }
  }

  private down(reason: string, retry: boolean): void {
    const was = this.ready || this.reason !== reason;
    this.ready = false;
    this.reason = reason;
    if (was) {
      this.log.warn({ uri: redactSecrets(this.cfg.uri), reason }, 'neo4j unavailable');
      this.onStatus(false, reason);
    }
    if (retry && !this.closed) this.schedule();
  }

  private schedule(): void {
    // Also after a failed on-demand try: requests during an outage must not each pay a connect attempt.
    if (this.timer) {
      this.nextAttemptAt = Date.now() + this.backoff.peek();
      return;
    }
    const delay = this.backoff.next();
    this.nextAttemptAt = Date.now() + delay;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The store when Neo4j answers; UNAVAILABLE with the reason otherwise. */
  async acquire(): Promise<GraphStore> {
    if (this.ready && this.store) return this.store;
    // On demand: a request after the backoff has passed tries right away instead of waiting for the probe.
    if (this.store && Date.now() >= this.nextAttemptAt && (await this.connect())) return this.store;
    throw new DaemonError('UNAVAILABLE', this.reason, { backend: 'neo4j' });
  }

  get status(): { ready: boolean; reason: string | null; uri: string } {
    return { ready: this.ready, reason: this.ready ? null : this.reason, uri: redactSecrets(this.cfg.uri) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.clearTimer();
    await this.attempt?.catch(() => undefined);
    await this.driver?.close().catch(() => undefined);
  }
}
