/**
 * Writing pushed events to subscribed connections, off the path of the request that emitted them. An
 * event is queued on each subscribed connection (a reference to its one serialised body), and the
 * connections with something queued are written a slice at a time, with the event loop reading
 * sockets between slices: a request that arrives during a fan-out to a thousand subscribers waits
 * for one slice, not for the thousand writes, and the events that arrive meanwhile leave in the same
 * write as those already queued (one write per connection per slice, however many events it holds).
 *
 * A pass (from the first slice to the one that leaves nothing to write) that wrote to many connections
 * and took longer than a slice is followed by a pause as long as the pass, at most MAX_PAUSE_MS: under a steady stream of events
 * to many subscribers, writing them takes at most about half the daemon's time, and the events that
 * arrive meanwhile leave together, one write per connection for several events instead of one each.
 * The events wait in their connections' bounded queues meanwhile, so a pause never holds more than
 * those bounds allow. A frame sent to a connection still writes its queued events first (now()).
 */
import { performance } from 'node:perf_hooks';

/** A connection with events queued for its client. */
export interface EventSink {
  /** Write what is queued, as far as the socket takes it now. */
  flushEvents(): void;
}

/** Time a slice of writes may take before the loop reads sockets again. */
export const SLICE_MS = 0.25;
/** Longest pause between two passes. */
export const MAX_PAUSE_MS = 10;
/**
 * Connections a pass must have written to be followed by a pause: gathering pays where one event
 * costs many writes, and a pass made long only by the machine's load (a few connections, the process
 * descheduled) must not delay the next events.
 */
export const PAUSE_FROM_WRITES = 16;
/** Connections written between two looks at the clock. */
const CLOCK_EVERY = 16;

export class EventFlush {
  /** In the order they were marked: the first to get an event is the first written. */
  private readonly dirty = new Set<EventSink>();
  /** A slice is due (immediate) or a pause is running (its timer will start the next pass). */
  private scheduled = false;
  /** Time spent in slices, and connections written, since the current pass began. */
  private passMs = 0;
  private passWrites = 0;
  readonly stats = { slices: 0, writes: 0, pauses: 0 };

  constructor(
    private readonly sliceMs = SLICE_MS,
    private readonly maxPauseMs = MAX_PAUSE_MS,
  ) {}

  /** `sink` has queued events: write them in a coming slice. */
  mark(sink: EventSink): void {
    this.dirty.add(sink);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.slice);
    }
  }

  /** Write `sink`'s events now (before something else it sends, so they keep their order), and forget it. */
  now(sink: EventSink): void {
    if (this.dirty.delete(sink)) sink.flushEvents();
  }

  /** The sink is gone: nothing of its may be written. */
  forget(sink: EventSink): void {
    this.dirty.delete(sink);
  }

  private readonly slice = (): void => {
    this.scheduled = false;
    this.stats.slices++;
    const start = performance.now();
    const end = start + this.sliceMs;
    let n = 0;
    for (const sink of this.dirty) {
      this.dirty.delete(sink);
      try {
        sink.flushEvents();
      } catch {
        // A socket that throws on write is closing: its own error handler reports it.
      }
      n++;
      if (n % CLOCK_EVERY === 0 && performance.now() > end) break;
    }
    this.stats.writes += n;
    this.passMs += performance.now() - start;
    this.passWrites += n;
    if (this.dirty.size > 0) {
      this.scheduled = true;
      setImmediate(this.slice);
      return;
    }
    // The pass is over: one longer than a slice is followed by a pause as long, in which events gather.
    const pause = Math.min(this.maxPauseMs, this.passMs);
    const writes = this.passWrites;
    this.passMs = 0;
    this.passWrites = 0;
    if (pause >= this.sliceMs && writes >= PAUSE_FROM_WRITES) {
      this.stats.pauses++;
      this.scheduled = true;
      setTimeout(this.resume, pause);
    }
  };

  private readonly resume = (): void => {
    this.scheduled = false;
    if (this.dirty.size > 0) this.slice();
  };
}
