/**
 * A full garbage collection when the daemon goes idle after a burst. V8 collects its old generation
 * when that generation grows, not when the program goes quiet: after a burst (a fan-out to a thousand
 * subscribers, a drain of queued calls) an idle daemon can hold what the burst left behind, and the
 * memory of the buffers it wrote, for as long as nothing allocates. Checked once a second: when the
 * last second was idle, the one before it was not, and the process holds clearly more than after the
 * last collection, one full collection runs (a few ms at idle, when nobody waits).
 */
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

/** Checked this often. */
const CHECK_MS = 1000;
/** Event-loop utilisation under which a second counts as idle. */
const IDLE_UTILISATION = 0.05;
/** Memory (RSS) grown by this factor since the last collection is worth collecting. */
const GROWN = 1.25;

type Collect = () => void;

/** V8's own full collection, made reachable without starting node with --expose-gc. */
export function fullCollection(): Collect | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    return null;
  }
}

export class IdleCollector {
  private timer: NodeJS.Timeout | null = null;
  private elu = performance.eventLoopUtilization();
  private busy = false;
  private rssAfter: number;
  readonly stats = { collections: 0, last_ms: 0, freed_mb: 0 };

  constructor(
    private readonly collect: Collect | null = fullCollection(),
    private readonly rss: () => number = () => process.memoryUsage.rss(),
  ) {
    this.rssAfter = rss();
  }

  start(): void {
    if (!this.collect || this.timer) return;
    this.timer = setInterval(() => this.check(), CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look: collect when a busy period has just ended and memory grew since the last collection. */
  check(utilisation = this.sinceLast()): void {
    if (utilisation > IDLE_UTILISATION) {
      this.busy = true;
      return;
    }
    if (!this.busy) return;
    this.busy = false;
    const before = this.rss();
    if (before < this.rssAfter * GROWN) return;
    const t0 = performance.now();
    this.collect!();
    const after = this.rss();
    this.stats.collections++;
    this.stats.last_ms = Math.round((performance.now() - t0) * 10) / 10;
    this.stats.freed_mb = Math.round((before - after) / 1048576);
    this.rssAfter = after;
  }

  private sinceLast(): number {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, this.elu).utilization;
    this.elu = now;
    return u;
  }
}
