/**
 * The one way the gateway's clients reach the router: a request goes through `ctx.request` like
 * any plugin's, after the checks the socket's dispatch would make for an outside client (shutdown,
 * kernel-internal events). What the daemon answers is known from `system:discover`, refreshed when
 * a plugin is reloaded; every call is timed and counted for /metrics. Each call is made for one web
 * client, which the kernel's admission treats as it treats a socket connection.
 */
import { DaemonError, type ErrorCode } from '../../client/errors.js';
import type { PluginContext } from '../../daemon/plugin-api.js';
import { toDaemonError } from './errors.js';

export interface EventDoc {
  event: string;
  summary: string;
  description: string | null;
  plugin: string;
  parameters: Record<string, unknown>;
  emits: string[];
  errors: string[];
  available: boolean;
  schema?: Record<string, unknown>;
  default_timeout_ms?: number | null;
}

export interface CallObserver {
  started(): void;
  finished(event: string, code: ErrorCode | 'OK', seconds: number, transport: Transport): void;
}

export type Transport = 'http' | 'ws';

/** Who a call is made for: one admission participant per HTTP connection or WebSocket. */
export interface WebClient {
  /** Unique in the daemon (`gateway:http:<n>`, `gateway:ws:<n>`). */
  id: string;
  /** Aborted when the client goes away: what it asked and has not had answered is cancelled. */
  signal: AbortSignal;
}

let webClients = 0;

/** A fresh participant id for a new HTTP connection or WebSocket. */
export const webClientId = (transport: Transport): string => `gateway:${transport}:${++webClients}`;

type Requester = Pick<PluginContext, 'request' | 'shuttingDown'>;

const DEFAULT_TIMEOUT_MS = 30_000;

export class Door {
  private docs = new Map<string, EventDoc>();
  private namespaces = new Set<string>();
  private loading: Promise<void> | null = null;

  constructor(
    private readonly ctx: Requester,
    private readonly observer: CallObserver,
  ) {}

  /** Re-read what the daemon answers (at start, and after a plugin reload). */
  refresh(): Promise<void> {
    this.loading ??= this.ctx
      .request<{ events: Record<string, EventDoc[]> }>('system:discover', { schemas: true }, { timeoutMs: 10_000 })
      .then((r) => {
        const docs = new Map<string, EventDoc>();
        for (const list of Object.values(r.events)) for (const d of list) docs.set(d.event, d);
        this.docs = docs;
        this.namespaces = new Set([...docs.keys()].map((e) => e.slice(0, e.indexOf(':'))));
      })
      .finally(() => (this.loading = null));
    return this.loading;
  }

  list(): EventDoc[] {
    return [...this.docs.values()];
  }

  has(event: string): boolean {
    return this.docs.has(event);
  }

  /** A label for metrics: names outside the catalogue are folded, so a client cannot grow the series. */
  label(event: string): string {
    return this.docs.has(event) ? event : 'other';
  }

  /**
   * Call one event for a web client; resolves to the response data or rejects with a DaemonError.
   * `client` names the web client (an HTTP connection, a WebSocket): the kernel admits its requests
   * in turn with every other client's, socket or web. `signal` aborts the call when it goes away.
   */
  async call(
    event: string,
    data: Record<string, unknown>,
    timeoutMs: number | undefined,
    transport: Transport,
    client: WebClient,
  ): Promise<Record<string, unknown>> {
    const t0 = performance.now();
    this.observer.started();
    let code: ErrorCode | 'OK' = 'OK';
    try {
      return await this.dispatch(event, data, timeoutMs, client);
    } catch (e) {
      const de = toDaemonError(e);
      code = de.code;
      throw de;
    } finally {
      this.observer.finished(this.label(event), code, (performance.now() - t0) / 1000, transport);
    }
  }

  private async dispatch(
    event: string,
    data: Record<string, unknown>,
    timeoutMs: number | undefined,
    client: WebClient,
  ): Promise<Record<string, unknown>> {
    if (this.ctx.shuttingDown)
      throw new DaemonError('SHUTTING_DOWN', 'the daemon is shutting down and accepts no new requests');
    const doc = this.docs.get(event);
    if (!doc && this.namespaces.has(event.slice(0, event.indexOf(':')))) {
      // A local namespace but no public event: unknown, or kernel-internal. system:help answers the
      // router's own UNKNOWN_EVENT, with its suggestions, for both.
      await this.ctx.request('system:help', { event }, { timeoutMs: 5000 });
      await this.refresh();
      if (!this.docs.has(event))
        throw new DaemonError('UNKNOWN_EVENT', `no handler for "${event}"`, { event, suggestions: [] });
    }
    // Unknown namespaces go to the router as they are: it answers UNKNOWN_EVENT, or the bridge forwards them to the fleet.
    const timeout = timeoutMs ?? this.docs.get(event)?.default_timeout_ms ?? DEFAULT_TIMEOUT_MS;
    return this.ctx.request<Record<string, unknown>>(event, data, {
      timeoutMs: timeout,
      client: client.id,
      signal: client.signal,
    });
  }
}
