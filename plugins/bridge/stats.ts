/** Counters the bridge reports in bridge:status and system:health. */
export function newStats() {
  return {
    events_published: 0,
    events_publish_failed: 0,
    events_received: 0,
    events_delivered: 0,
    events_refused: 0,
    /** Remote events relayed back to us (same node name elsewhere, or a loop) and dropped. */
    echoes_dropped: 0,
    requests_forwarded: 0,
    requests_forward_failed: 0,
    requests_served: 0,
    requests_serve_failed: 0,
    requests_refused: 0,
    jobs_submitted: 0,
    jobs_completed: 0,
    jobs_run: 0,
    jobs_redelivered: 0,
    jobs_skipped_done: 0,
    jobs_handed_back: 0,
    results_duplicate: 0,
    /** Results this worker stored that the stream already had from another worker, and dropped. */
    results_deduplicated: 0,
    results_orphaned: 0,
    reconnects: 0,
  };
}

export type Stats = ReturnType<typeof newStats>;

/** A smoothed figure for lag: last, exponentially weighted mean, max since start. */
export class Gauge {
  last = 0;
  mean = 0;
  max = 0;
  samples = 0;
  add(v: number): void {
    this.last = v;
    this.max = Math.max(this.max, v);
    this.mean = this.samples === 0 ? v : this.mean * 0.9 + v * 0.1;
    this.samples++;
  }
  toJSON(): Record<string, number> {
    return {
      last: Math.round(this.last * 10) / 10,
      mean: Math.round(this.mean * 10) / 10,
      max: Math.round(this.max * 10) / 10,
      samples: this.samples,
    };
  }
}
