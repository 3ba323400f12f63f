/**
 * The event relay: local events selected by `publish` go to `<prefix>.ev.<ns>.<action>` with their
 * envelope and causality; remote events selected by `subscribe` are emitted locally with the
 * sender in `context.origin`. No echo loops: only events born here (no origin) are published, the
 * connection does not receive its own messages, and a remote event that names us as origin is
 * dropped. Kernel events (system, monitor, plugin) and bridge events stay per daemon.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { EmittedEvent, PluginContext } from '../../daemon/plugin-api.js';
import { KERNEL_NS, type BridgeConfig, type Subjects } from './config.js';
import { decode, encode, eventEnvelope, wireContext, type EventEnvelope } from './envelope.js';
import { Gauge, type Stats } from './stats.js';

const LOCAL_ONLY = new Set([...KERNEL_NS, 'bridge']);
const ns = (event: string): string => event.slice(0, event.indexOf(':'));

export class EventRelay {
  private nc: NatsConnection | null = null;
  private subs: Subscription[] = [];
  private unsubs: Array<() => void> = [];
  /** One emitted event reaches every matching local listener as the same object: publish it once. */
  private readonly seen = new WeakSet<EmittedEvent>();
  /** Overlapping subscribe patterns deliver a message once per subscription: keep the last keys. */
  private readonly recent = new Map<string, true>();
  readonly lag = new Gauge();
  private warnedAt = 0;

  constructor(
    private readonly ctx: PluginContext,
    private readonly cfg: BridgeConfig,
    private readonly subjects: Subjects,
    private readonly node: string,
    private readonly stats: Stats,
  ) {}

  /** Local side: listen for the events to publish (before the connection exists; they wait for it). */
  listen(): void {
    for (const p of this.cfg.publish) this.unsubs.push(this.ctx.subscribe(p, (ev) => this.onLocal(ev)));
  }

  attach(nc: NatsConnection): void {
    this.nc = nc;
    // `*` covers every other pattern; subscribing to both would only deliver twice.
    const subjects = [...new Set(this.cfg.subscribe.map((p) => this.subjects.eventPattern(p)))];
    const all = this.subjects.eventPattern('*');
    for (const s of subjects.includes(all) ? [all] : subjects) {
      this.subs.push(nc.subscribe(s, { callback: (_e, m) => this.onRemote(m.subject, m.data) }));
    }
  }

  subscribedSubjects(): string[] {
    return this.subs.map((s) => s.getSubject());
  }

  publishedSubjects(): string[] {
    return this.cfg.publish.map((p) => this.subjects.eventPattern(p));
  }

  private onLocal(ev: EmittedEvent): void {
    if (this.seen.has(ev)) return;
    this.seen.add(ev);
    // Born elsewhere (delivered by us from the bus, or caused by such an event): never sent back.
    if (ev.context.origin !== undefined && ev.context.origin !== this.node) return;
    if (LOCAL_ONLY.has(ns(ev.event))) return;
    const nc = this.nc;
    if (!nc || nc.isClosed()) {
      this.stats.events_publish_failed++;
      return;
    }
    const env: EventEnvelope = {
      v: 1,
      event: ev.event,
      data: ev.data,
      context: wireContext(ev.context, this.node),
      origin: this.node,
      seq: ev.seq,
      timestamp: ev.timestamp,
    };
    try {
      // While reconnecting the client buffers this and sends it once the server is back.
      nc.publish(this.subjects.event(ev.event), encode(env));
      this.stats.events_published++;
    } catch (err) {
      this.stats.events_publish_failed++;
      this.ctx.log.debug({ err, event: ev.event }, 'event not published');
    }
  }

  private onRemote(subject: string, bytes: Uint8Array): void {
    this.stats.events_received++;
    const d = decode(bytes, eventEnvelope);
    if (!d.ok) return this.refuse(subject, d.error.code, d.error.message);
    const env = d.value;
    if (this.subjects.event(env.event) !== subject)
      return this.refuse(subject, 'BAD_FRAME', `event ${env.event} does not match its subject`);
    if (LOCAL_ONLY.has(ns(env.event)))
      return this.refuse(subject, 'BAD_FRAME', `${ns(env.event)} events are per daemon and not relayed`);
    if (env.origin === this.node) {
      this.stats.echoes_dropped++;
      return;
    }
    const key = `${env.origin}:${env.seq}`;
    if (this.recent.has(key)) return;
    this.recent.set(key, true);
    if (this.recent.size > 4096) this.recent.delete(this.recent.keys().next().value!);
    this.lag.add(Math.max(0, Date.now() - env.timestamp * 1000));
    this.ctx.emit(env.event, env.data, { context: { ...env.context, origin: env.origin } });
    this.stats.events_delivered++;
  }

  private refuse(subject: string, code: string, message: string): void {
    this.stats.events_refused++;
    // A flood of bad messages must not flood the log as well.
    const now = Date.now();
    if (now - this.warnedAt > 5000) {
      this.warnedAt = now;
      this.ctx.log.warn(
        { subject, code, reason: message, refused: this.stats.events_refused },
        'event from the bus refused',
      );
    }
  }

  detach(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.nc = null;
  }

  stop(): void {
    this.detach();
    for (const u of this.unsubs) u();
    this.unsubs = [];
  }
}
