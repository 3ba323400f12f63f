/**
 * Rate-bounded delivery for one socket subscription (`monitor:subscribe {max_rate}`): a token
 * bucket that admits at most `maxRate` events a second (bursts up to `maxRate`, refilled
 * continuously), and a tally of what it turned away, by event name, for the once-a-second
 * `monitor:skipped` report. A skipped event is never serialised or written: a watcher that only
 * wants a sample (the TUI's log) costs the daemon almost nothing for the rest of the flood.
 */
import { performance } from 'node:perf_hooks';

/** Distinct names a report lists; further names are folded into OTHER (memory stays bounded). */
export const MAX_SKIPPED_NAMES = 200;
/** Cannot collide with an event name: those always contain a colon. */
export const OTHER_EVENTS = 'other';

/** The data of a `monitor:skipped` frame, less the subscription id. */
export interface SkippedTally {
  count: number;
  by_event: Record<string, number>;
  first_seq: number;
  last_seq: number;
}

export class RateBound {
  private tokens: number;
  private refilledAt: number;
  private count = 0;
  private byEvent = new Map<string, number>();
  private firstSeq = 0;
  private lastSeq = 0;

  constructor(
    readonly maxRate: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = maxRate;
    this.refilledAt = now();
  }

  /** True when the event may be delivered now; otherwise it is counted as skipped. */
  admit(event: string, seq: number): boolean {
    const t = this.now();
    if (t > this.refilledAt) {
      this.tokens = Math.min(this.maxRate, this.tokens + ((t - this.refilledAt) * this.maxRate) / 1000);
      this.refilledAt = t;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    if (this.count === 0) this.firstSeq = seq;
    this.count++;
    this.lastSeq = seq;
    const n = this.byEvent.get(event);
    if (n !== undefined) this.byEvent.set(event, n + 1);
    else if (this.byEvent.size < MAX_SKIPPED_NAMES) this.byEvent.set(event, 1);
    else this.byEvent.set(OTHER_EVENTS, (this.byEvent.get(OTHER_EVENTS) ?? 0) + 1);
    return false;
  }

  /** Events skipped since the last `take`. */
  get pending(): number {
    return this.count;
  }

  /** What was skipped since the last call (null when nothing was), and start a new tally. */
  take(): SkippedTally | null {
    if (this.count === 0) return null;
    const tally: SkippedTally = {
      count: this.count,
      by_event: Object.fromEntries(this.byEvent),
      first_seq: this.firstSeq,
      last_seq: this.lastSeq,
    };
    this.count = 0;
    this.byEvent = new Map();
    return tally;
  }
}
