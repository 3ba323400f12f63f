/**
 * One clock for every state change that is not a key press: the event stream's batches and the
 * polled snapshots commit on the same tick, so React batches them into one render. The tick is
 * quick while the daemon is quiet (the log feels live) and slows down under a flood (nobody reads
 * thousands of lines a second; the counts say what happened).
 */
export interface FrameClockOptions {
  /** Tick while quiet (default 250 ms). */
  fastMs?: number;
  /** Tick under load (default 1000 ms). */
  slowMs?: number;
  /** Events in one tick above which the clock slows down (default 200). */
  busyEvents?: number;
  /**
   * Quiet ticks in a row before it speeds up again (default 2). Under a flood the daemon's counts
   * of skipped events arrive once a second, out of step with this clock: a one-second tick that
   * happens to hold none must not bring back four renders a second.
   */
  calmTicks?: number;
}

export class FrameClock {
  private readonly commits = new Set<() => number | void>();
  private timer: NodeJS.Timeout | null = null;
  private readonly fastMs: number;
  private readonly slowMs: number;
  private readonly busyEvents: number;
  private readonly calmTicks: number;
  private calm = 0;
  /** The current tick length. */
  intervalMs: number;

  constructor(opts: FrameClockOptions = {}) {
    this.fastMs = opts.fastMs ?? 250;
    this.slowMs = opts.slowMs ?? 1000;
    this.busyEvents = opts.busyEvents ?? 200;
    this.calmTicks = opts.calmTicks ?? 2;
    this.intervalMs = this.fastMs;
  }

  /**
   * Register a commit; it may return how many events it applied (or stood for: a count of events
   * the daemon skipped is a flood as much as the events themselves). Returns the unregister function.
   */
  add(commit: () => number | void): () => void {
    this.commits.add(commit);
    if (!this.timer) this.schedule();
    return () => {
      this.commits.delete(commit);
      if (this.commits.size === 0) this.stop();
    };
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      let events = 0;
      for (const c of this.commits) events += c() || 0;
      this.calm = events > this.busyEvents ? 0 : this.calm + 1;
      this.intervalMs =
        this.calm === 0 || (this.intervalMs === this.slowMs && this.calm < this.calmTicks) ? this.slowMs : this.fastMs;
      if (this.commits.size) this.schedule();
      else this.timer = null;
    }, this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
