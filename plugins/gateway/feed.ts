/**
 * One subscription of a web client: the router delivers matching events to it through
 * `ctx.subscribe` like to any plugin, and it passes each on once (an event matching two of its
 * patterns arrives twice, back to back, with the same seq), optionally rate-bounded as a socket
 * subscription with `max_rate` is. Until `open(seq)` it holds what arrives, so that the answer (or
 * the replayed history) goes first and nothing at or below `seq` is sent twice.
 */
import type { EmittedEvent, PluginContext } from '../../daemon/plugin-api.js';
import { RateBound } from '../../daemon/plugin-api.js';
import type { ClientQueue } from './client-queue.js';
import { eventFrame, noticeFrame } from './envelope.js';

let feedCounter = 0;

export class Feed {
  readonly id: string;
  private readonly unsubscribers: Array<() => void> = [];
  private held: EmittedEvent[] | null = [];
  private heldOverflow = false;
  lastSeq = 0;
  readonly bound: RateBound | null;

  constructor(
    ctx: Pick<PluginContext, 'subscribe'>,
    readonly patterns: string[],
    private readonly queue: ClientQueue,
    private readonly holdLimit: number,
    maxRate?: number,
    prefix = 'g',
  ) {
    this.id = `${prefix}-${++feedCounter}`;
    this.bound = maxRate === undefined ? null : new RateBound(maxRate);
    for (const p of patterns) this.unsubscribers.push(ctx.subscribe(p, this.receive));
  }

  private readonly receive = (ev: EmittedEvent): void => {
    if (this.held) {
      if (this.held.length < this.holdLimit) this.held.push(ev);
      else this.heldOverflow = true;
      return;
    }
    this.deliver(ev);
  };

  /** Send one event (live or replayed) unless already sent, through the rate bound if any. */
  deliver(ev: EmittedEvent): void {
    if (ev.seq <= this.lastSeq) return;
    this.lastSeq = ev.seq;
    if (this.bound && !this.bound.admit(ev.event, ev.seq)) return;
    this.queue.push({ seq: ev.seq, text: eventFrame(ev, this.id) });
  }

  /** Start passing events on: everything at or below `seq` was accounted for by the caller. */
  open(seq: number): void {
    this.lastSeq = Math.max(this.lastSeq, seq);
    const held = this.held ?? [];
    this.held = null;
    if (this.heldOverflow) {
      // More arrived during the start than the client could have been sent: say so as the queue would.
      const lost = held.length ? held[0].seq : this.lastSeq;
      this.queue.push({
        seq: null,
        text: noticeFrame(
          'monitor:dropped',
          { count: null, first_seq: lost, last_seq: lost, reason: 'start_overflow' },
          lost,
          this.id,
        ),
      });
    }
    for (const ev of held) this.deliver(ev);
  }

  /** The once-a-second report of what the rate bound skipped (nothing when nothing was). */
  reportSkipped(): void {
    const tally = this.bound?.take();
    if (tally)
      this.queue.push({
        seq: null,
        text: noticeFrame('monitor:skipped', { subscription: this.id, ...tally }, tally.last_seq, this.id),
      });
  }

  close(): void {
    for (const u of this.unsubscribers.splice(0)) u();
    this.held = null;
  }
}
