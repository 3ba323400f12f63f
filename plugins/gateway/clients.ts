/**
 * The open SSE and WebSocket clients: their number (bounded), their queues (for /metrics), and
 * one timer for them all — the once-a-second `monitor:skipped` reports of rate-bounded feeds, and
 * heartbeats, which also find dead connections.
 */
import type { ClientQueue, OutFrame, QueueStats } from './client-queue.js';
import type { Feed } from './feed.js';

export interface Client {
  readonly transport: 'sse' | 'ws';
  readonly queue: ClientQueue;
  readonly feeds: Map<string, Feed>;
  heartbeat(): void;
  close(): void;
  /** Send `last` (after what the client can still take), close, and settle once the connection has closed. */
  finish(last: OutFrame): Promise<void>;
}

export class Clients {
  readonly open = new Set<Client>();
  readonly stats: Record<'sse' | 'ws', QueueStats> = {
    sse: { delivered: 0, dropped: 0 },
    ws: { delivered: 0, dropped: 0 },
  };
  private timer: NodeJS.Timeout | null = null;
  private ticks = 0;

  constructor(
    private readonly max: number,
    private readonly heartbeatS: number,
  ) {}

  get full(): boolean {
    return this.open.size >= this.max;
  }

  add(c: Client): void {
    this.open.add(c);
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), 1000);
      this.timer.unref();
    }
  }

  remove(c: Client): void {
    this.open.delete(c);
    if (this.open.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  count(transport: 'sse' | 'ws'): number {
    let n = 0;
    for (const c of this.open) if (c.transport === transport) n++;
    return n;
  }

  /** Frames waiting in clients' queues: total and the deepest one. */
  depth(): { total: number; max: number; feeds: number } {
    let total = 0;
    let max = 0;
    let feeds = 0;
    for (const c of this.open) {
      total += c.queue.depth;
      max = Math.max(max, c.queue.depth);
      feeds += c.feeds.size;
    }
    return { total, max, feeds };
  }

  private tick(): void {
    this.ticks++;
    const beat = this.ticks % Math.max(1, Math.round(this.heartbeatS)) === 0;
    for (const c of this.open) {
      for (const f of c.feeds.values()) if (f.bound) f.reportSkipped();
      if (beat) c.heartbeat();
    }
  }

  closeAll(): void {
    for (const c of [...this.open]) c.close();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * The gateway is closing: every client gets `last` as its final frame and its connection is
   * closed cleanly (an SSE response ended, a WebSocket closed with 1001). Settles when they all
   * have closed or after `withinMs`, whichever is first; the server then cuts what is left.
   */
  async finishAll(last: OutFrame, withinMs: number): Promise<void> {
    const closing = [...this.open].map((c) => c.finish(last));
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closing), new Promise<void>((r) => (timer = setTimeout(r, withinMs)))]);
    clearTimeout(timer);
  }
}
