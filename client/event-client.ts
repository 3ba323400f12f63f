/**
 * The event-client library: one connection to the daemon's socket, concurrent requests matched by
 * correlation id, subscriptions as async iterators or callbacks, automatic reconnect with
 * re-subscription. Used by daemon-control, the TUI and the tests.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { DaemonError, type ErrorPayload } from './errors.js';
import type { EventFrame, ResponseFrame, ServerFrame } from './protocol.js';
import { DEFAULT_TIMEOUT_MS } from './protocol.js';
import { defaultSocketPath } from './socket-path.js';
import type { KnownEvent } from './event-names.js';
import type { EventData, EventMap, EventResponse } from './event-types.js';

/** A known event name (autocompleted), or any other string. */
export type EventName = KnownEvent | (string & {});

/**
 * An event name the loose `request` overload takes: any name when the caller names a type, but not
 * one of the daemon's own events with inferred types (those must match the typed overload).
 */
export type UntypedEvent<E extends string> = string extends E ? unknown : E extends keyof EventMap ? never : unknown;

export interface ConnectOptions {
  socketPath?: string;
  /** Reconnect after the daemon goes away (default true). Requests in flight then fail with UNAVAILABLE. */
  reconnect?: boolean;
  /** Give up connecting after this long (default 5 s); reconnects keep trying until close(). */
  connectTimeoutMs?: number;
}

export interface RequestOpts {
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  event: string;
}

type EventCallback = (ev: EventFrame) => void;

export interface SubscribeOptions {
  /**
   * Deliver at most this many events a second (an integer ≥ 1; bursts up to the same number).
   * The daemon does not send the rest; once a second it sends this subscription a
   * `monitor:skipped` frame counting them by name. Absent: every matching event.
   */
  maxRate?: number;
}

/** A live subscription: iterate it, or pass a callback to `subscribe`. */
export class Subscription implements AsyncIterable<EventFrame> {
  id: string | null = null;
  /**
   * The daemon's last seq when this subscription last started (renewed after a reconnect): every
   * matching event after it is delivered (or, with `maxRate`, delivered or counted as skipped).
   */
  startSeq: number | null = null;
  private queue: EventFrame[] = [];
  private waiters: Array<(r: IteratorResult<EventFrame>) => void> = [];
  private ended = false;

  constructor(
    readonly patterns: string[],
    private readonly client: EventClient,
    private readonly callback?: EventCallback,
    readonly maxRate?: number,
    private readonly maxQueued = 10_000,
  ) {}

  /** @internal The `monitor:subscribe` request that (re)creates it. */
  request(): { patterns: string[]; max_rate?: number } {
    return this.maxRate === undefined
      ? { patterns: this.patterns }
      : { patterns: this.patterns, max_rate: this.maxRate };
  }

  /** @internal Record the daemon's answer to `monitor:subscribe`; returns the new id. */
  started(r: Record<string, unknown>): string {
    this.id = String(r.subscription_id);
    this.startSeq = typeof r.seq === 'number' ? r.seq : null;
    return this.id;
  }

  /** @internal */
  push(ev: EventFrame): void {
    if (this.ended) return;
    if (this.callback) {
      this.callback(ev);
      return;
    }
    const w = this.waiters.shift();
    if (w) w({ value: ev, done: false });
    else {
      this.queue.push(ev);
      // A consumer that stopped iterating must not grow the client without limit.
      if (this.queue.length > this.maxQueued) this.queue.shift();
    }
  }

  /** @internal */
  end(): void {
    this.ended = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  async unsubscribe(): Promise<void> {
    await this.client.unsubscribe(this);
  }

  [Symbol.asyncIterator](): AsyncIterator<EventFrame> {
    return {
      next: () => {
        const ev = this.queue.shift();
        if (ev) return Promise.resolve({ value: ev, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
      return: async () => {
        await this.unsubscribe();
        return { value: undefined, done: true };
      },
    };
  }
}

export class EventClient extends EventEmitter {
  private socket: net.Socket | null = null;
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly subs = new Set<Subscription>();
  private readonly byServerId = new Map<string, Subscription>();
  private closed = false;
  /** Why the daemon is closing this connection, when it said so before closing. */
  private closeReason: DaemonError | null = null;
  private reconnecting = false;

  private constructor(private readonly opts: Required<ConnectOptions>) {
    super();
  }

  get socketPath(): string {
    return this.opts.socketPath;
  }

  get connected(): boolean {
    return this.socket !== null && !this.socket.destroyed;
  }

  static async connect(options: ConnectOptions = {}): Promise<EventClient> {
    const c = new EventClient({
      socketPath: options.socketPath ?? defaultSocketPath(),
      reconnect: options.reconnect ?? true,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
    });
    await c.open(c.opts.connectTimeoutMs);
    return c;
  }

  private open(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + timeoutMs;
      const attempt = (): void => {
        const s = net.createConnection(this.opts.socketPath);
        s.setNoDelay?.(true);
        const onErr = (err: NodeJS.ErrnoException): void => {
          s.destroy();
          if (this.closed) return reject(new DaemonError('UNAVAILABLE', 'client closed'));
          if (Date.now() >= deadline) {
            return reject(
              new DaemonError('UNAVAILABLE', `cannot connect to ${this.opts.socketPath}: ${err.code ?? err.message}`),
            );
          }
          // Retry until the deadline, but never sleep past it (a short timeout is a quick probe).
          setTimeout(attempt, Math.max(1, Math.min(50, deadline - Date.now())));
        };
        s.once('error', onErr);
        s.once('connect', () => {
          s.off('error', onErr);
          this.attach(s);
          resolve();
        });
      };
      attempt();
    });
  }

  private attach(s: net.Socket): void {
    this.socket = s;
    this.buf = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => this.onData(chunk));
    s.on('error', () => {
      /* surfaced through 'close' */
    });
    s.on('close', () => this.onClose(s));
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.length === 0) continue;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(line) as ServerFrame;
      } catch {
        this.emit('protocol_error', line);
        continue;
      }
      if (frame.kind === 'event') this.onEvent(frame);
      else this.onResponse(frame);
    }
  }

  private onResponse(f: ResponseFrame): void {
    // OVERLOADED or SHUTTING_DOWN for no request is about the connection (too many connections, answers
    // left unread, shutdown): the daemon closes it next, and the requests still waiting fail with it.
    if (
      (f.correlation_id === null || f.correlation_id === undefined) &&
      (f.error?.code === 'OVERLOADED' || f.error?.code === 'SHUTTING_DOWN')
    ) {
      this.closeReason = DaemonError.fromPayload(f.error);
    }
    const key = String(f.correlation_id);
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    clearTimeout(p.timer);
    if (f.error) p.reject(DaemonError.fromPayload(f.error as ErrorPayload));
    else p.resolve(f.data ?? {});
  }

  private onEvent(f: EventFrame): void {
    const sub = this.byServerId.get(f.subscription);
    if (sub) sub.push(f);
    this.emit('event', f);
  }

  private onClose(s: net.Socket): void {
    if (this.socket !== s) return;
    this.socket = null;
    const reason = this.closeReason;
    this.closeReason = null;
    for (const [key, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(
        reason
          ? new DaemonError(reason.code, `${p.event}: ${reason.message}`, reason.details)
          : new DaemonError('UNAVAILABLE', `connection to daemon lost during ${p.event}`),
      );
      this.pending.delete(key);
    }
    this.byServerId.clear();
    this.emit('disconnect');
    if (this.reconnecting) return; // the running loop notices and starts over
    if (this.closed || !this.opts.reconnect) {
      for (const sub of this.subs) sub.end();
      return;
    }
    void this.reconnectLoop();
  }

  private async reconnectLoop(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      while (!this.closed) {
        if (!this.connected) {
          try {
            await this.open(1000);
          } catch {
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
        }
        // Renew every subscription; if the new connection drops meanwhile, start over.
        let lost = false;
        for (const sub of this.subs) {
          try {
            const r = await this.request('monitor:subscribe', sub.request());
            this.byServerId.set(sub.started(r), sub);
          } catch (e) {
            if (!this.connected || (e as DaemonError).code === 'UNAVAILABLE') {
              lost = true;
              break;
            }
            this.emit('resubscribe_error', e, sub);
          }
        }
        if (lost || !this.connected) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        this.emit('reconnect');
        return;
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /**
   * Send one request; resolves to the response `data` or rejects with a `DaemonError`. For an event
   * the daemon ships, `data` and the answer are typed from its schemas (client/event-types.ts), so a
   * wrong field is a compile error; naming a type (`request<T>(...)`) opts out, for events of your
   * own plugins or deliberately wrong data.
   */
  request<E extends keyof EventMap>(event: E, data?: EventData<E>, opts?: RequestOpts): Promise<EventResponse<E>>;
  request<T = Record<string, unknown>, E extends string = string>(
    event: E & UntypedEvent<E>,
    data?: Record<string, unknown>,
    opts?: RequestOpts,
  ): Promise<T>;
  request<T>(event: string, data: Record<string, unknown> = {}, opts: RequestOpts = {}): Promise<T> {
    const s = this.socket;
    if (!s || s.destroyed) return Promise.reject(new DaemonError('UNAVAILABLE', 'not connected to the daemon'));
    const id = `c${this.nextId++}`;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      // The daemon answers TIMEOUT itself; this local timer is the backstop for a daemon that went silent.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DaemonError('TIMEOUT', `${event}: no response within ${timeoutMs} ms`));
      }, timeoutMs + 2000);
      this.pending.set(id, { resolve: resolve as (v: Record<string, unknown>) => void, reject, timer, event });
      if (opts.signal) {
        opts.signal.addEventListener(
          'abort',
          () => {
            if (this.pending.delete(id)) {
              clearTimeout(timer);
              reject(new DaemonError('CANCELLED', `${event}: aborted by caller`));
            }
          },
          { once: true },
        );
      }
      s.write(JSON.stringify({ event, data, correlation_id: id, timeout_ms: timeoutMs }) + '\n');
    });
  }

  /** Send a raw line (tests of bad input use this). */
  sendRaw(line: string | Buffer): void {
    this.socket?.write(line);
  }

  /**
   * Subscribe to patterns (`ns:action`, `ns:*`, `ns:**`, `*`). Iterate the result, or pass a
   * callback. With `{maxRate}` the daemon sends at most that many events a second and counts the
   * rest in `monitor:skipped` frames delivered to the subscription. The subscription (rate
   * included) is renewed automatically after a reconnect.
   */
  async subscribe(
    patterns: string | string[],
    callback?: EventCallback,
    opts: SubscribeOptions = {},
  ): Promise<Subscription> {
    const list = Array.isArray(patterns) ? patterns : [patterns];
    const sub = new Subscription(list, this, callback, opts.maxRate);
    const r = await this.request('monitor:subscribe', sub.request());
    this.subs.add(sub);
    this.byServerId.set(sub.started(r), sub);
    return sub;
  }

  async unsubscribe(sub: Subscription): Promise<void> {
    this.subs.delete(sub);
    sub.end();
    if (sub.id) {
      this.byServerId.delete(sub.id);
      if (this.connected) await this.request('monitor:unsubscribe', { subscription_id: sub.id }).catch(() => undefined);
    }
  }

  /** Close the connection; pending requests fail with UNAVAILABLE. */
  async close(): Promise<void> {
    this.closed = true;
    for (const sub of this.subs) sub.end();
    const s = this.socket;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end();
      setTimeout(() => s.destroy(), 500).unref();
    });
  }
}
