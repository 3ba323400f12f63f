/**
 * Requests across the fleet over core NATS request/reply. Serving: each namespace in `serve` is a
 * queue-group subscription on `<prefix>.req.<ns>.>` (several daemons share the load), plus
 * `<prefix>.node.<node>.>` for requests addressed to this daemon. Forwarding: a request for a
 * namespace no local plugin owns goes to its subject with the caller's remaining time; nobody
 * listening is UNAVAILABLE, no answer in time is TIMEOUT, a remote error comes back with its code.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { DaemonError } from '../../client/errors.js';
import type { EventContext } from '../../client/protocol.js';
import type { CallContext, PluginContext } from '../../daemon/plugin-api.js';
import { DIRECT_KERNEL_EVENTS, type BridgeConfig, type Subjects } from './config.js';
import {
  decodeReply,
  decodeRequest,
  encode,
  errorReply,
  replyError,
  wireContext,
  type RequestEnvelope,
} from './envelope.js';
import { Inbox, InboxError } from './inbox.js';
import { Gauge, type Stats } from './stats.js';

const nsOf = (event: string): string => event.slice(0, event.indexOf(':'));

/** Map a daemon-side failure to the typed error it answers with. */
export function asDaemonError(e: unknown): DaemonError {
  if (e instanceof DaemonError) return e;
  const x = e as { name?: unknown; code?: unknown; message?: unknown; details?: unknown };
  if (x && x.name === 'DaemonError' && typeof x.code === 'string')
    return DaemonError.fromPayload({
      code: x.code as DaemonError['code'],
      message: String(x.message),
      details: x.details as Record<string, unknown> | undefined,
    });
  return new DaemonError('HANDLER_ERROR', (e as Error)?.message ?? String(e));
}

export class RequestService {
  private subs: Subscription[] = [];
  /** Contexts of requests being served for the fleet: what they ask of unowned namespaces is not forwarded again. */
  private readonly serving = new Map<string, number>();
  readonly rtt = new Gauge();
  inflight = 0;
  /** Where forwarded requests wait for their answers, for the current connection. */
  private inbox: Inbox | null = null;

  constructor(
    private readonly ctx: PluginContext,
    private readonly cfg: BridgeConfig,
    private readonly subjects: Subjects,
    readonly node: string,
    private readonly stats: Stats,
  ) {}

  /** Start answering the fleet (only once the local daemon is ready). */
  serve(nc: NatsConnection): void {
    for (const ns of this.cfg.serve) {
      this.subs.push(
        nc.subscribe(this.subjects.serve(ns), {
          queue: this.subjects.queue(ns),
          callback: (_e, m) => void this.handle(m, 'queue'),
        }),
      );
    }
    this.subs.push(nc.subscribe(this.subjects.directAll(), { callback: (_e, m) => void this.handle(m, 'direct') }));
  }

  servedSubjects(): string[] {
    return this.subs.map((s) => s.getSubject());
  }

  /** The subject a request for `event` arrives on: `<prefix>.req.ns.action` or `<prefix>.node.<node>.ns.action`. */
  private subjectOf(event: string, kind: 'queue' | 'direct'): string {
    return kind === 'queue' ? this.subjects.request(event) : this.subjects.direct(this.node, event);
  }

  allowed(event: string): boolean {
    return this.cfg.serve.includes(nsOf(event)) || DIRECT_KERNEL_EVENTS.has(event);
  }

  private async handle(m: Msg, kind: 'queue' | 'direct'): Promise<void> {
    const d = decodeRequest(m.data);
    if (!d.ok) return this.refuse(m, d.error);
    const env = d.value;
    if (this.subjectOf(env.event, kind) !== m.subject)
      return this.refuse(m, new DaemonError('BAD_FRAME', `event ${env.event} does not match subject ${m.subject}`));
    if (!this.allowed(env.event))
      return this.refuse(
        m,
        new DaemonError('UNKNOWN_EVENT', `node ${this.node} does not serve "${env.event}" to the fleet`, {
          event: env.event,
          serves: this.cfg.serve,
        }),
      );
    // The bus must not be able to grow this daemon without bound.
    if (this.inflight >= this.cfg.serve_max_inflight)
      return this.refuse(
        m,
        new DaemonError('OVERLOADED', `node ${this.node} has ${this.inflight} fleet requests in flight`, {
          node: this.node,
        }),
      );
    this.inflight++;
    try {
      const data = await this.run(env);
      this.stats.requests_served++;
      this.reply(m, { ok: true, node: this.node, data });
    } catch (e) {
      this.stats.requests_serve_failed++;
      this.reply(m, errorReply(this.node, asDaemonError(e)));
    } finally {
      this.inflight--;
    }
  }

  /** Run a request from the fleet locally: causality carried, at most the caller's remaining time. */
  async run(env: RequestEnvelope): Promise<Record<string, unknown>> {
    // The work is born here (its events are published as ours); root, depth and agent carry over.
    const context: EventContext = {
      id: env.context.id,
      parent_id: env.context.parent_id,
      root_id: env.context.root_id,
      depth: env.context.depth,
    };
    if (env.context.agent_id !== undefined) context.agent_id = env.context.agent_id;
    this.serving.set(context.id, (this.serving.get(context.id) ?? 0) + 1);
    try {
      return await this.ctx.request(env.event, env.data, { context, timeoutMs: env.timeout_ms });
    } finally {
      const n = this.serving.get(context.id)! - 1;
      if (n === 0) this.serving.delete(context.id);
      else this.serving.set(context.id, n);
    }
  }

  private refuse(m: Msg, e: DaemonError): void {
    this.stats.requests_refused++;
    this.reply(m, errorReply(this.node, e));
  }

  private reply(m: Msg, body: unknown): void {
    if (!m.reply) return;
    try {
      m.respond(encode(body));
    } catch (err) {
      // An answer that cannot be serialised is still an answer.
      this.ctx.log.warn({ err, subject: m.subject }, 'reply not sent');
      try {
        m.respond(
          encode(
            errorReply(
              this.node,
              new DaemonError('HANDLER_ERROR', `reply could not be sent: ${(err as Error).message}`),
            ),
          ),
        );
      } catch {
        /* the connection is gone; the caller times out */
      }
    }
  }

  /** Forward one request to the fleet (or to `node`) and wait for the answer. */
  async forward(
    nc: NatsConnection | null,
    event: string,
    data: Record<string, unknown>,
    context: EventContext,
    remainingMs: number,
    node?: string,
  ): Promise<{ node: string; data: Record<string, unknown> }> {
    if (!nc || nc.isClosed())
      throw new DaemonError('UNAVAILABLE', `bridge is not connected to NATS; cannot reach the fleet for "${event}"`, {
        event,
      });
    if (remainingMs <= 0) throw new DaemonError('TIMEOUT', `${event}: deadline passed before it could be forwarded`);
    const subject = node ? this.subjects.direct(node, event) : this.subjects.request(event);
    const env: RequestEnvelope = {
      v: 1,
      event,
      data,
      context: wireContext(context, this.node),
      timeout_ms: Math.max(1, Math.floor(remainingMs)),
      from: this.node,
    };
    this.stats.requests_forwarded++;
    const t0 = performance.now();
    let msg: Msg;
    try {
      if (this.inbox?.nc !== nc) this.inbox = new Inbox(nc);
      msg = await this.inbox.request(subject, encode(env), Math.max(1, Math.floor(remainingMs)));
    } catch (e) {
      this.stats.requests_forward_failed++;
      throw this.natsError(e, event, subject, remainingMs, node);
    }
    this.rtt.add(performance.now() - t0);
    const r = decodeReply(msg.data);
    if (!r.ok) {
      this.stats.requests_forward_failed++;
      throw new DaemonError('HANDLER_ERROR', `${event}: the fleet answered with a malformed reply: ${r.error.message}`);
    }
    if (!r.value.ok) {
      this.stats.requests_forward_failed++;
      throw replyError(r.value);
    }
    return { node: r.value.node, data: r.value.data };
  }

  private natsError(e: unknown, event: string, subject: string, remainingMs: number, node?: string): DaemonError {
    if (e instanceof InboxError && e.kind === 'no_responders') {
      const who = node ? `node "${node}" is not connected` : `no daemon in the fleet serves "${nsOf(event)}"`;
      return new DaemonError('UNAVAILABLE', `${event}: ${who} (nobody answered on ${subject})`, { event, subject });
    }
    if (e instanceof InboxError && e.kind === 'timeout') {
      return new DaemonError('TIMEOUT', `${event}: no answer from the fleet within ${Math.round(remainingMs)} ms`, {
        event,
        timeout_ms: Math.round(remainingMs),
      });
    }
    return new DaemonError('UNAVAILABLE', `${event}: NATS request failed: ${(e as Error).message}`, { event, subject });
  }

  /** The fallback route: called by the router for namespaces no local plugin owns. */
  fallback(
    getNc: () => NatsConnection | null,
    durable: (event: string) => boolean,
    submit: (event: string, data: Record<string, unknown>, call: CallContext) => Promise<Record<string, unknown>>,
  ) {
    return async (data: Record<string, unknown>, call: CallContext): Promise<unknown> => {
      if (call.context.parent_id !== null && this.serving.has(call.context.parent_id)) {
        // Served for the fleet and not owned here either: sending it back out could bounce forever.
        throw new DaemonError('UNKNOWN_EVENT', `no handler for "${call.event}" on node ${this.node}`, {
          event: call.event,
          node: this.node,
        });
      }
      if (durable(call.event)) return submit(call.event, data, call);
      return (await this.forward(getNc(), call.event, data, call.context, call.remainingMs())).data;
    };
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.inbox?.close();
    this.inbox = null;
  }
}
