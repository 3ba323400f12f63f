/**
 * The router: one handler per request event, dispatch through a chain of small steps
 * (availability, loop guard, validation, deadline), and fan-out of emitted events to subscribers
 * matched through the pattern index. Plugins and socket clients subscribe the same way.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';
import { DaemonError, isErrorCode } from '../client/errors.js';
import { EVENT_NAME_RE, nowSeconds, type EventContext } from '../client/protocol.js';
import { Call, childContext, rootContext, type CallHost } from './call-context.js';
import { PatternIndex } from '../client/pattern-index.js';
import { RingBuffer } from './ring-buffer.js';
import { OTHER_EVENT, RequestMetrics } from './request-metrics.js';
import type { BoundEventDef, CallContext, EmitOptions, EmittedEvent, RequestOptions } from './plugin-api.js';
import { formatIssues, listIssues } from '../client/issues.js';

export interface Route {
  event: string;
  plugin: string;
  def: BoundEventDef;
  /** Set when the owning plugin failed: the event answers UNAVAILABLE with this reason. */
  unavailable?: string;
  /** Kernel-internal: refused to socket clients. */
  internal?: boolean;
}

/** One delivery target: a plugin listener or a socket subscription. */
export interface Subscriber {
  readonly id: string;
  deliver(ev: EmittedEvent): void;
}

export interface DispatchRequest {
  event: string;
  data: unknown;
  context: EventContext;
  deadline: number;
  connectionId: string | null;
  /** From a socket client (internal events refused, SHUTTING_DOWN applies). */
  external: boolean;
  /** Holds async calls while they run, so the caller can abort them (a client disconnected). */
  track?: { add(c: Call): void; delete(c: Call): void };
}

/**
 * Answers requests for namespaces no local plugin owns (the bridge forwards them to the fleet).
 * It runs through the same dispatch steps as a route: loop guard, deadline, tracking, error mapping.
 */
export interface FallbackRoute {
  plugin: string;
  handler: (data: Record<string, unknown>, call: CallContext) => Promise<unknown>;
}

/**
 * Admits requests made on behalf of outside clients (`RequestOptions.client`) with the socket's
 * connections, one participant per client.
 */
export interface ClientGate {
  request(client: string, req: DispatchRequest, signal?: AbortSignal): Promise<unknown>;
}

type Next = (req: DispatchRequest, route: Route, call: Call) => unknown;
type Step = (next: Next) => Next;

export interface RouterOptions {
  log: Logger;
  maxDepth: number;
  historySize: number;
  defaultTimeoutMs: number;
}

/** Forwarded data is validated by the remote owner; here it only has to be an object. */
const ANY_DATA = z.record(z.string(), z.unknown());

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

/** Duck-typed: a plugin loaded in a fresh module namespace (hot reload) has its own DaemonError class. */
export function toDaemonError(e: unknown): DaemonError | null {
  if (e instanceof DaemonError) return e;
  if (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'DaemonError' &&
    isErrorCode((e as { code?: unknown }).code)
  ) {
    const x = e as DaemonError;
    return new DaemonError(x.code, x.message, x.details);
  }
  return null;
}

export class Router implements CallHost {
  private readonly routes = new Map<string, Route>();
  private readonly subs = new PatternIndex<Subscriber>();
  private readonly subPatterns = new Map<Subscriber, string[]>();
  readonly history: RingBuffer<EmittedEvent>;
  private seq = 0;
  private readonly chain: Next;
  shuttingDown = false;
  /** Namespaces of plugins that could not even be loaded: their events answer UNAVAILABLE. */
  readonly unavailableNamespaces = new Map<string, string>();
  private fallback: FallbackRoute | null = null;
  /** Every answered request, by event, origin and code, with latency (read by system:metrics). */
  readonly metrics = new RequestMetrics();
  /** Set by the kernel: where requests made for outside clients wait for their turn. */
  clients: ClientGate | null = null;
  /** Namespaces that have at least one route; rebuilt lazily after (un)registration. */
  private ownedNs: Set<string> | null = null;

  constructor(private readonly opts: RouterOptions) {
    this.history = new RingBuffer(opts.historySize);
    const steps: Step[] = [this.availability, this.loopGuard, this.validate, this.deadline];
    const invoke: Next = (req, route, call) => route.def.handler(req.data, call);
    this.chain = steps.reduceRight<Next>((next, step) => step(next), invoke);
  }

  get lastSeq(): number {
    return this.seq;
  }

  // ---- registration -------------------------------------------------------------------------

  register(route: Route): void {
    if (!EVENT_NAME_RE.test(route.event)) throw new Error(`invalid event name "${route.event}"`);
    const existing = this.routes.get(route.event);
    if (existing && existing.plugin !== route.plugin) {
      throw new Error(`event "${route.event}" is already handled by plugin "${existing.plugin}"`);
    }
    this.routes.set(route.event, route);
    this.ownedNs = null;
  }

  unregisterPlugin(plugin: string): void {
    for (const [name, r] of this.routes) if (r.plugin === plugin) this.routes.delete(name);
    this.ownedNs = null;
  }

  /** Install the handler for unowned namespaces (one plugin at a time). */
  setFallback(fb: FallbackRoute): void {
    if (this.fallback && this.fallback.plugin !== fb.plugin)
      throw new Error(`unowned namespaces are already served by plugin "${this.fallback.plugin}"`);
    this.fallback = fb;
  }

  clearFallback(plugin: string): void {
    if (this.fallback?.plugin === plugin) this.fallback = null;
  }

  /** A route to the fallback when no local plugin owns (or failed to load) the event's namespace. */
  private fallbackRoute(event: string): Route | undefined {
    if (!this.fallback) return undefined;
    const ns = event.slice(0, event.indexOf(':'));
    if (this.unavailableNamespaces.has(ns)) return undefined;
    this.ownedNs ??= new Set([...this.routes.keys()].map((e) => e.slice(0, e.indexOf(':'))));
    if (this.ownedNs.has(ns)) return undefined;
    const fb = this.fallback;
    return {
      event,
      plugin: fb.plugin,
      def: {
        summary: 'forwarded',
        schema: ANY_DATA,
        handler: (d, call) => fb.handler(d as Record<string, unknown>, call),
      },
    };
  }

  route(event: string): Route | undefined {
    return this.routes.get(event);
  }

  allRoutes(): Route[] {
    return [...this.routes.values()];
  }

  // ---- requests -----------------------------------------------------------------------------

  /**
   * Dispatch one request. Returns the response data (sync when the handler was) or throws/rejects a
   * DaemonError. Every answer is counted in `metrics`, by the route's event name (OTHER_EVENT for
   * events no local route answers) and code.
   */
  dispatch(req: DispatchRequest): unknown {
    const t0 = performance.now();
    const local = this.routes.get(req.event);
    const route = local ?? this.fallbackRoute(req.event);
    const external = req.external;
    const label = local !== undefined && !(local.internal && external) ? local.event : OTHER_EVENT;
    if (!route || (route.internal && external)) throw this.counted(this.unknownEvent(req.event), label, external, t0);
    if (this.shuttingDown && external) {
      throw this.counted(
        new DaemonError('SHUTTING_DOWN', 'the daemon is shutting down and accepts no new requests'),
        label,
        external,
        t0,
      );
    }
    const call = new Call(this, req.event, req.context, req.deadline, req.connectionId);
    try {
      const out = this.chain(req, route, call);
      if (isThenable(out)) {
        const track = req.track;
        track?.add(call);
        return Promise.resolve(out).then(
          (v) => {
            track?.delete(call);
            this.metrics.record(label, external, 'OK', t0);
            return normalizeData(v);
          },
          (e) => {
            track?.delete(call);
            return Promise.reject(this.counted(this.normalizeError(e, route), label, external, t0));
          },
        );
      }
      this.metrics.record(label, external, 'OK', t0);
      return normalizeData(out);
    } catch (e) {
      throw this.counted(this.normalizeError(e, route), label, external, t0);
    }
  }

  private counted(e: DaemonError, label: string, external: boolean, t0: number): DaemonError {
    this.metrics.record(label, external, e.code, t0);
    return e;
  }

  /** Nested request from inside the daemon: inherits causality and the parent's remaining time. */
  request(
    event: string,
    data: Record<string, unknown>,
    parent: EventContext,
    parentDeadline: number,
    opts: RequestOptions = {},
    connectionId: string | null = null,
  ): Promise<unknown> {
    const cap = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Infinity;
    const deadline = Math.min(parentDeadline, cap);
    try {
      const signal = opts.signal;
      // On behalf of an outside client: answered as the socket answers its clients, in its turn.
      const external = opts.client !== undefined;
      const req: DispatchRequest = {
        event,
        data,
        context: childContext(parent, opts.agentId),
        deadline,
        connectionId,
        external,
        ...(signal ? { track: abortedBy(signal) } : {}),
      };
      if (external && this.clients) {
        const p = this.clients.request(opts.client!, req, signal);
        return signal ? cancellable(p, signal, event) : p;
      }
      const out = this.dispatch(req);
      return signal ? cancellable(Promise.resolve(out), signal, event) : (Promise.resolve(out) as Promise<unknown>);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  unknownEvent(event: string): DaemonError {
    const ns = event.slice(0, event.indexOf(':'));
    const down = this.unavailableNamespaces.get(ns);
    if (down !== undefined)
      return new DaemonError('UNAVAILABLE', `plugin for "${ns}" is unavailable: ${down}`, { namespace: ns });
    const names = [...this.routes.values()].filter((r) => !r.internal).map((r) => r.event);
    const limit = Math.max(2, Math.floor(event.length / 3));
    const suggestions = names
      .map((n) => ({ n, d: distance(event, n) }))
      .filter((x) => x.d <= limit)
      .sort((a, b) => a.d - b.d)
      .slice(0, 3)
      .map((x) => x.n);
    // A wrong action in a known namespace still deserves the namespace's closest event.
    const sameNs = names.filter((m) => m.startsWith(ns + ':'));
    if (suggestions.length === 0 && sameNs.length > 0) suggestions.push(closest(event, sameNs));
    const hint = suggestions.length ? ` (did you mean ${suggestions.join(', ')}?)` : '';
    return new DaemonError('UNKNOWN_EVENT', `no handler for "${event}"${hint}`, { event, suggestions });
  }

  private normalizeError(e: unknown, route: Route): DaemonError {
    const de = toDaemonError(e);
    if (de) return de;
    const err = e instanceof Error ? e : new Error(String(e));
    this.opts.log.error({ err, event: route.event, plugin: route.plugin }, 'handler threw');
    return new DaemonError('HANDLER_ERROR', `${route.event} failed: ${err.message}`, { plugin: route.plugin });
  }

  // ---- dispatch steps -----------------------------------------------------------------------

  private readonly availability: Step = (next) => (req, route, call) => {
    if (route.unavailable !== undefined) {
      throw new DaemonError('UNAVAILABLE', `plugin "${route.plugin}" is unavailable: ${route.unavailable}`, {
        plugin: route.plugin,
      });
    }
    return next(req, route, call);
  };

  private readonly loopGuard: Step = (next) => (req, route, call) => {
    if (req.context.depth > this.opts.maxDepth) {
      throw new DaemonError('LOOP_DETECTED', `causal chain deeper than ${this.opts.maxDepth} at ${req.event}`, {
        depth: req.context.depth,
        max_depth: this.opts.maxDepth,
        root_id: req.context.root_id,
        agent_id: req.context.agent_id,
      });
    }
    return next(req, route, call);
  };

  private readonly validate: Step = (next) => (req, route, call) => {
    const parsed = route.def.schema.safeParse(req.data ?? {});
    if (!parsed.success) {
      throw new DaemonError('INVALID_DATA', `${req.event}: ${formatIssues(parsed.error.issues, { max: 1 })}`, {
        issues: listIssues(parsed.error.issues),
      });
    }
    return next({ ...req, data: parsed.data }, route, call);
  };

  private readonly deadline: Step = (next) => (req, route, call) => {
    const remaining = req.deadline - Date.now();
    if (remaining <= 0) throw new DaemonError('TIMEOUT', `${req.event}: deadline passed before it could run`);
    const out = next(req, route, call);
    if (!isThenable(out)) return out;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new DaemonError('TIMEOUT', `${req.event}: no answer within ${remaining} ms`, {
          timeout_ms: remaining,
        });
        call.abort(err);
        reject(err);
      }, remaining);
      out.then(
        (v) => (clearTimeout(timer), resolve(v)),
        (e) => (clearTimeout(timer), reject(e)),
      );
    });
  };

  /** The event's own default timeout, when its definition sets one. */
  defaultTimeoutFor(event: string): number | undefined {
    return this.routes.get(event)?.def.defaultTimeoutMs;
  }

  // ---- events -------------------------------------------------------------------------------

  emit(event: string, data: Record<string, unknown>, parent: EventContext | null, opts: EmitOptions = {}): void {
    if (!EVENT_NAME_RE.test(event)) throw new Error(`invalid event name "${event}"`);
    // Emitted with no cause (timers, start-up): a fresh root.
    const context = parent ? childContext(parent, opts.agentId) : rootContext(opts.agentId);
    const ev: EmittedEvent = { event, data, seq: ++this.seq, timestamp: nowSeconds(), context };
    this.history.push(ev);
    for (const sub of this.subs.match(event)) {
      try {
        sub.deliver(ev);
      } catch (err) {
        this.opts.log.error({ err, event, subscriber: sub.id }, 'subscriber failed');
      }
    }
  }

  subscribe(patterns: string[], sub: Subscriber): void {
    for (const p of patterns) this.subs.add(p, sub);
    this.subPatterns.set(sub, [...(this.subPatterns.get(sub) ?? []), ...patterns]);
  }

  unsubscribe(sub: Subscriber): void {
    for (const p of this.subPatterns.get(sub) ?? []) this.subs.remove(p, sub);
    this.subPatterns.delete(sub);
  }

  get subscriberCount(): number {
    return this.subPatterns.size;
  }
}

function normalizeData(v: unknown): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  return { value: v };
}

/** RequestOptions.signal: the nested call's own signal is aborted with the caller's (its handler may stop early). */
function abortedBy(signal: AbortSignal): NonNullable<DispatchRequest['track']> {
  const calls = new Map<Call, () => void>();
  return {
    add(c) {
      if (signal.aborted) return void c.abort(signal.reason);
      const on = (): void => c.abort(signal.reason);
      signal.addEventListener('abort', on, { once: true });
      calls.set(c, on);
    },
    delete(c) {
      const on = calls.get(c);
      if (on) signal.removeEventListener('abort', on);
      calls.delete(c);
    },
  };
}

/** The caller stops waiting when its signal aborts, whether or not the handler honours it. */
function cancellable(p: Promise<unknown>, signal: AbortSignal, event: string): Promise<unknown> {
  const reason = (): DaemonError =>
    toDaemonError(signal.reason) ?? new DaemonError('CANCELLED', `${event}: cancelled by the caller`);
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(reason());
  }
  return new Promise((resolve, reject) => {
    const on = (): void => reject(reason());
    signal.addEventListener('abort', on, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', on), resolve(v)),
      (e) => (signal.removeEventListener('abort', on), reject(e)),
    );
  });
}
