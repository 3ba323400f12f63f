/**
 * Peers: every daemon announces itself on `<prefix>.hb.<node>` at an interval (and at once when a
 * newcomer says hello). A peer silent for three intervals is down; up/down changes are emitted
 * locally as bridge:peer_up / bridge:peer_down.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { PluginContext } from '../../daemon/plugin-api.js';
import type { BridgeConfig, Subjects } from './config.js';
import { decode, encode, heartbeatEnvelope, type HeartbeatEnvelope } from './envelope.js';

export interface Peer {
  node: string;
  serves: string[];
  publish: string[];
  pid: number;
  started_at: number;
  interval_ms: number;
  last_seen: number;
  alive: boolean;
}

export class Peers {
  readonly table = new Map<string, Peer>();
  private subs: Subscription[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now() / 1000;
  /** Heartbeats carrying our own node name from another process: a misconfigured fleet. */
  nameConflicts = 0;

  constructor(
    private readonly ctx: PluginContext,
    private readonly cfg: BridgeConfig,
    private readonly subjects: Subjects,
    private readonly node: string,
    private readonly onConflict: (reason: string) => void,
    private readonly serves: () => string[],
  ) {}

  /** Announce now (e.g. when serving has begun) rather than at the next interval. */
  announceNow(nc: NatsConnection): void {
    this.announce(nc);
  }

  start(nc: NatsConnection): void {
    this.stopTimers();
    this.subs.push(nc.subscribe(this.subjects.heartbeats(), { callback: (_e, m) => this.onHeartbeat(m.data) }));
    this.subs.push(nc.subscribe(this.subjects.hello(), { callback: () => this.announce(nc) }));
    this.announce(nc);
    nc.publish(this.subjects.hello(), encode({ v: 1, node: this.node }));
    this.timer = setInterval(() => {
      this.announce(nc);
      this.sweep();
    }, this.cfg.heartbeat_ms);
    this.timer.unref();
  }

  private announce(nc: NatsConnection): void {
    if (nc.isClosed()) return;
    const hb: HeartbeatEnvelope = {
      v: 1,
      node: this.node,
      // Only once requests and the work queues are really served: a peer listed as serving can take work.
      serves: this.serves(),
      publish: this.cfg.publish,
      pid: process.pid,
      started_at: this.startedAt,
      interval_ms: this.cfg.heartbeat_ms,
    };
    try {
      nc.publish(this.subjects.heartbeat(), encode(hb));
    } catch (err) {
      this.ctx.log.debug({ err }, 'heartbeat not sent');
    }
  }

  private onHeartbeat(bytes: Uint8Array): void {
    const d = decode(bytes, heartbeatEnvelope);
    if (!d.ok) return;
    const hb = d.value;
    if (hb.node === this.node) {
      if (hb.pid !== process.pid || hb.started_at !== this.startedAt) {
        this.nameConflicts++;
        this.ctx.log.warn({ node: hb.node, pid: hb.pid }, 'another daemon announces our node name');
        this.onConflict(
          `another daemon (pid ${hb.pid}) uses node name "${hb.node}": events between them are lost and jobs may be misrouted`,
        );
      }
      return;
    }
    const prev = this.table.get(hb.node);
    const peer: Peer = { ...hb, last_seen: Date.now(), alive: true };
    this.table.set(hb.node, peer);
    if (!prev || !prev.alive || prev.started_at !== hb.started_at) {
      this.ctx.emit('bridge:peer_up', {
        node: hb.node,
        serves: hb.serves,
        restarted: Boolean(prev && prev.started_at !== hb.started_at),
      });
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const p of this.table.values()) {
      if (p.alive && now - p.last_seen > 3 * Math.max(p.interval_ms, 100)) {
        p.alive = false;
        this.ctx.emit('bridge:peer_down', { node: p.node, last_seen: p.last_seen / 1000 });
      }
    }
  }

  /** Live peers serving a namespace. */
  serving(ns: string): string[] {
    return [...this.table.values()].filter((p) => p.alive && p.serves.includes(ns)).map((p) => p.node);
  }

  list(): Array<Record<string, unknown>> {
    const now = Date.now();
    return [...this.table.values()].map((p) => ({
      node: p.node,
      alive: p.alive,
      serves: p.serves,
      publish: p.publish,
      pid: p.pid,
      last_seen_ms_ago: now - p.last_seen,
    }));
  }

  private stopTimers(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }

  stop(): void {
    this.stopTimers();
  }
}
