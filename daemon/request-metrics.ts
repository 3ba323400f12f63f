/**
 * What the router answered: every request it dispatched, by event, origin (an outside client's, or a
 * plugin's own nested request) and code, with a latency histogram per event and origin. Counted on
 * the hot path, so recording allocates nothing once an event has been seen: two clock reads (the
 * caller's and this one's), a Map lookup, a bucket scan and a few additions. Read by `system:metrics`
 * (the gateway turns it into Prometheus series).
 */
import { performance } from 'node:perf_hooks';

/** Upper bounds of the latency buckets, in seconds (the last bucket, +Inf, is the count). */
export const LATENCY_BUCKETS_S = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];
const BOUNDS_MS = LATENCY_BUCKETS_S.map((s) => s * 1000);

/** The label of requests for events with no local route (unknown ones, or forwarded to the fleet): their names are the client's to invent. */
export const OTHER_EVENT = 'other';

export type Origin = 'client' | 'plugin';

class EventStats {
  readonly codes = new Map<string, number>();
  /** Observations per bucket (not cumulative); the last one is above every bound. */
  readonly buckets: number[] = new Array<number>(BOUNDS_MS.length + 1).fill(0);
  sumMs = 0;
  count = 0;
}

export interface RequestStats {
  event: string;
  origin: Origin;
  count: number;
  /** Answers by code: `OK`, or the error's code. */
  codes: Record<string, number>;
  sum_s: number;
  /** Cumulative counts, one per bound of `latency_buckets_s` (requests answered within it). */
  buckets: number[];
}

export class RequestMetrics {
  private readonly client = new Map<string, EventStats>();
  private readonly plugin = new Map<string, EventStats>();

  /**
   * One answered request. `event` is a route's own name or OTHER_EVENT, so the series stay bounded
   * by the routes; `t0` is when dispatch began (performance.now()).
   */
  record(event: string, external: boolean, code: string, t0: number): void {
    const ms = performance.now() - t0;
    const map = external ? this.client : this.plugin;
    let s = map.get(event);
    if (s === undefined) {
      s = new EventStats();
      map.set(event, s);
    }
    s.count++;
    s.sumMs += ms;
    let i = 0;
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
    s.buckets[i]!++;
    s.codes.set(code, (s.codes.get(code) ?? 0) + 1);
  }

  snapshot(): RequestStats[] {
    const out: RequestStats[] = [];
    for (const [origin, map] of [
      ['client', this.client],
      ['plugin', this.plugin],
    ] as const) {
      for (const [event, s] of map) {
        const buckets: number[] = [];
        let n = 0;
        for (let i = 0; i < BOUNDS_MS.length; i++) buckets.push((n += s.buckets[i]!));
        out.push({ event, origin, count: s.count, codes: Object.fromEntries(s.codes), sum_s: s.sumMs / 1000, buckets });
      }
    }
    return out;
  }
}
