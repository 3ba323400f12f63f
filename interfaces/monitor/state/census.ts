/**
 * Counting every event while receiving only a sample of them. The census subscription (`*`,
 * rate-bounded) delivers each event or counts it in its next `monitor:skipped`, exactly once, so
 * "seen", the per-namespace counts and the rate are census frames + census skips (+ history up to
 * where the census began, + what the daemon dropped). Other subscriptions' frames are shown and
 * feed the panels but are never counted, so overlapping subscriptions count nothing twice.
 *
 * What the log lacks: the daemon writes one frame per matching subscription, back to back, for
 * each event, and a report only between events, behind every frame of the events it counts. So an
 * event shown without a census frame is one the census skipped but another subscription brought;
 * subtracting those from a report's counts leaves exactly the events nobody brought.
 */
import type { SkippedData } from '../../../client/protocol.js';
import type { StreamState } from './stream.js';

/** The daemon folds names beyond its cap under this key (never an event name: no colon). */
const OTHER = 'other';
const MAX_NAMES = 200;

export interface CurrentEvent {
  seq: number;
  event: string;
  /** A census frame (or history) for it arrived: it is counted. */
  counted: boolean;
  /** A frame of the token subscription arrived: its tokens are counted. */
  tokens: boolean;
}

const nsOf = (name: string): string => {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(0, i);
};

/** One batch's view of the counts, copying each map at most once. */
export class CensusBatch {
  received: number;
  countedSeq: number;
  current: CurrentEvent | null;
  byNamespace: Record<string, number>;
  orphans: Record<string, number>;
  private copied = { ns: false, orphans: false };

  constructor(s: StreamState) {
    this.received = s.received;
    this.countedSeq = s.countedSeq;
    // A copy: the previous state's object must stay as it was.
    this.current = s.current ? { ...s.current } : null;
    this.byNamespace = s.byNamespace;
    this.orphans = s.orphans;
  }

  /** The first frame of a new event: settle the previous one. History is never an orphan (`counted`). */
  begin(seq: number, event: string, counted: boolean): CurrentEvent {
    this.settle();
    this.current = { seq, event, counted, tokens: false };
    return this.current;
  }

  /** Count one event (a census frame, or history), once. */
  count(seq: number, event: string): void {
    if (seq <= this.countedSeq) return;
    this.countedSeq = seq;
    this.received++;
    this.addNs(nsOf(event), 1);
    if (this.current?.seq === seq) this.current.counted = true;
  }

  /**
   * A census report: count what it skipped; returns how many of those matching the log's filter
   * no other subscription brought either (the log's gap).
   */
  skipped(d: SkippedData, matches: (event: string) => boolean): number {
    this.settle();
    this.current = null;
    let gap = 0;
    for (const [name, n] of Object.entries(d.by_event ?? {})) {
      if (!(n > 0)) continue;
      this.received += n;
      this.addNs(nsOf(name), n);
      if (matches(name)) gap += Math.max(0, n - (this.orphans[name] ?? 0));
    }
    if (Object.keys(this.orphans).length) {
      this.orphans = {};
      this.copied.orphans = true;
    }
    if (typeof d.last_seq === 'number') this.countedSeq = Math.max(this.countedSeq, d.last_seq);
    return gap;
  }

  /** After history: the counts account for everything up to `countedSeq`; no event is in progress. */
  reset(countedSeq: number): void {
    this.current = null;
    this.countedSeq = countedSeq;
  }

  /** An event shown but not counted by the census was skipped by it: remember it against the next report. */
  private settle(): void {
    const c = this.current;
    if (!c || c.counted) return;
    if (!this.copied.orphans) {
      this.orphans = { ...this.orphans };
      this.copied.orphans = true;
    }
    const key = c.event in this.orphans || Object.keys(this.orphans).length < MAX_NAMES ? c.event : OTHER;
    this.orphans[key] = (this.orphans[key] ?? 0) + 1;
  }

  private addNs(ns: string, n: number): void {
    if (!this.copied.ns) {
      this.byNamespace = { ...this.byNamespace };
      this.copied.ns = true;
    }
    this.byNamespace[ns] = (this.byNamespace[ns] ?? 0) + n;
  }

  result(): Pick<StreamState, 'received' | 'countedSeq' | 'current' | 'byNamespace' | 'orphans'> {
    return {
      received: this.received,
      countedSeq: this.countedSeq,
      current: this.current,
      byNamespace: this.byNamespace,
      orphans: this.orphans,
    };
  }
}

/** Whether a name from a report matches the filter ("other" stands for names the daemon did not list). */
export function reportNameMatches(name: string, filter: { include: string[]; match: (e: string) => boolean }): boolean {
  return name === OTHER ? filter.include.length === 0 : filter.match(name);
}
