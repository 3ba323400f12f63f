/**
 * Per-session FIFO under a global concurrency limit. A session runs one request at a time, in arrival
 * order; sessions run in parallel up to `maxConcurrency`. Runnable sessions wait in a FIFO of their
 * own, so a session with a thousand queued requests cannot starve one with a single request: each
 * gets the next free slot in turn. All operations are O(1) except `remove` (O(session depth)).
 */
export interface QueueItem {
  id: string;
  /** Requests without a session get a key of their own, so they never wait on each other. */
  key: string;
}

export class SessionQueue<T extends QueueItem> {
  private readonly sessions = new Map<string, { items: T[]; head: number; running: boolean }>();
  private readonly runnable: string[] = [];
  private runnableHead = 0;
  private readonly runningIds = new Map<string, T>();
  /** Sessions whose next item waits for its lane (a provider with no free slot), by lane, in order. */
  private readonly parked = new Map<string, string[]>();
  private queued = 0;
  private paused = false;

  /**
   * `gate`, when given, names the lane an item would wait in (its provider is full, or has no way to
   * run it now), or null when it may start: its session is set aside until `wake(lane)`, so one busy
   * provider never holds up calls to another.
   */
  constructor(
    private maxConcurrency: number,
    private readonly run: (item: T) => Promise<void>,
    private readonly gate?: (item: T) => string | null,
  ) {}

  /** A lane has room for one more: its longest-parked session goes back to the front of the line. */
  wake(lane: string): void {
    const keys = this.parked.get(lane);
    while (keys && keys.length > 0) {
      const key = keys.shift()!;
      const s = this.sessions.get(key);
      if (!s || s.running || s.items.length === s.head) continue; // emptied by a cancel meanwhile
      this.runnable.splice(this.runnableHead, 0, key);
      break;
    }
    if (keys?.length === 0) this.parked.delete(lane);
    this.pump();
  }

  get size(): number {
    return this.queued;
  }

  get inFlight(): number {
    return this.runningIds.size;
  }

  running(): T[] {
    return [...this.runningIds.values()];
  }

  /** Append; returns the 1-based position within its session (1 = next to run there). */
  enqueue(item: T): number {
    let s = this.sessions.get(item.key);
    if (!s) {
      s = { items: [], head: 0, running: false };
      this.sessions.set(item.key, s);
    }
    s.items.push(item);
    this.queued++;
    if (!s.running && s.items.length - s.head === 1) this.runnable.push(item.key);
    this.pump();
    return s.items.length - s.head + (s.running ? 1 : 0);
  }

  /** Take a queued item out (cancel). False when it is not queued (running, finished, unknown). */
  remove(id: string, key: string): boolean {
    const s = this.sessions.get(key);
    if (!s) return false;
    const i = s.items.findIndex((it, idx) => idx >= s.head && it.id === id);
    if (i < 0) return false;
    s.items.splice(i, 1);
    this.queued--;
    // A session left empty stays in `runnable`; pump skips it. Drop an idle empty session.
    if (!s.running && s.items.length === s.head) this.sessions.delete(key);
    return true;
  }

  isRunning(id: string): boolean {
    return this.runningIds.has(id);
  }

  /** Stop starting new work (shutdown); queued items stay where they are. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  setConcurrency(n: number): void {
    this.maxConcurrency = n;
    this.pump();
  }

  /** Per-session depth, for completion:status. */
  depths(): Array<{ key: string; queued: number; running: boolean }> {
    return [...this.sessions].map(([key, s]) => ({ key, queued: s.items.length - s.head, running: s.running }));
  }

  /** Queued items in dispatch order within each session. */
  queuedItems(): T[] {
    const out: T[] = [];
    for (const s of this.sessions.values()) out.push(...s.items.slice(s.head));
    return out;
  }

  private pump(): void {
    while (!this.paused && this.runningIds.size < this.maxConcurrency && this.runnableHead < this.runnable.length) {
      const key = this.runnable[this.runnableHead++]!;
      if (this.runnableHead > 1024 && this.runnableHead * 2 > this.runnable.length) {
        this.runnable.splice(0, this.runnableHead);
        this.runnableHead = 0;
      }
      const s = this.sessions.get(key);
      if (!s || s.running || s.items.length === s.head) continue;
      const lane = this.gate?.(s.items[s.head]!) ?? null;
      if (lane !== null) {
        const list = this.parked.get(lane);
        if (list) list.push(key);
        else this.parked.set(lane, [key]);
        continue;
      }
      const item = s.items[s.head++]!;
      if (s.head > 64 && s.head * 2 > s.items.length) {
        s.items.splice(0, s.head);
        s.head = 0;
      }
      this.queued--;
      s.running = true;
      this.runningIds.set(item.id, item);
      void this.run(item)
        .catch(() => undefined)
        .finally(() => this.done(item));
    }
  }

  private done(item: T): void {
    this.runningIds.delete(item.id);
    const s = this.sessions.get(item.key);
    if (s) {
      s.running = false;
      if (s.items.length > s.head) this.runnable.push(item.key);
      else this.sessions.delete(item.key);
    }
    this.pump();
  }
}
