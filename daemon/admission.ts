/**
 * Admission: which connection's next request runs now. One client pipelining expensive requests
 * must not take the event loop from the others, so requests are admitted in rounds, one round per
 * event-loop turn, round-robin across the connections that have work, each connection taking a share
 * of the round's time. Between rounds the loop reads every socket, so a request that arrives while a
 * client floods the daemon waits at most about one round, not behind that client's whole pipeline.
 *
 * What a request costs is learned per event name: its synchronous part is timed when it is
 * dispatched, and the rest of the turn (the handler's continuations, its answer, its commit) is the
 * time until the next round begins, shared among the round's asynchronous requests by their
 * estimates. An event whose estimate is above HEAVY_MS runs at most once per round, in a round of its
 * own as far as heavy events go; an event never seen is taken for heavy until measured. Estimates
 * rise at once and fall slowly, so alternating cheap and costly uses of one event cannot game them.
 *
 * Work shared by all the requests of a turn, whatever their number, is not in any request's cost: the
 * group commit's BEGIN/COMMIT and its fsync (`sharedMs`). Charged to them, it made every durable event
 * heavy, one per round, so each got a commit and an fsync of its own, which kept it heavy: a pipelined
 * burst of them went from one shared commit per hundred requests to one per request. Nor is the work
 * a request only queues (EventDef.queued): it runs turns later under its plugin's own bound.
 */
import { performance } from 'node:perf_hooks';

/** One source of requests (a connection), as admission sees it. */
export interface Tenant {
  /** The event of the request that would run next, or null when none may run now (nothing ready, or a limit). */
  peek(): string | null;
  /** Run that request. True when its handler went asynchronous (its work continues after this call). */
  runNext(): boolean;
}

/** Time a round aims to take: about the longest a ready request waits for other clients' work. */
export const ROUND_MS = 2;
/** Events estimated above this run one per round. */
export const HEAVY_MS = 0.5;
/** What an event never measured is assumed to cost: heavy, so its first runs are measured alone. */
const UNKNOWN_MS = 1;
/** Distinct event names whose cost is remembered (unknown names must not grow memory). */
const MAX_NAMES = 4096;

/** A request of the round that went asynchronous: what its continuations cost is learnt after. */
interface Ran {
  event: string;
  syncMs: number;
}

/** A round whose asynchronous requests' continuations are still to be learnt. */
interface LastRound {
  start: number;
  syncMs: number;
  ran: Ran[];
  /** `sharedMs()` when the round ended: shared work after it is not its requests'. */
  shared: number;
}

export class Admission {
  private ring: Tenant[] = [];
  private readonly inRing = new Set<Tenant>();
  private scheduled = false;
  /** A round is running (a tenant woken from inside it waits for the next). */
  private inRound = false;
  /** Estimated cost of one request, by event name, in ms. */
  private readonly cost = new Map<string, number>();
  /** The previous round, kept until the next one starts and can tell how long it really took. */
  private last: LastRound | null = null;
  readonly stats = { rounds: 0, admitted: 0 };

  private readonly sharedMs: () => number;
  private readonly queued: (event: string) => boolean;

  /**
   * `sharedMs`: a running total of the loop time spent on work shared by every request of a turn
   * (the group commits' commits), left out of what requests are learnt to cost. `queued`: the event's
   * handler only hands its work to a queue its plugin bounds (EventDef.queued); such a request is
   * charged its synchronous part, not the turns after it, which are the queue's work.
   */
  constructor(
    private readonly onError: (err: unknown) => void = () => undefined,
    opts: { sharedMs?: () => number; queued?: (event: string) => boolean } = {},
  ) {
    this.sharedMs = opts.sharedMs ?? (() => 0);
    this.queued = opts.queued ?? (() => false);
  }

  /**
   * A tenant may have work now (a line arrived, a request finished, its socket drained). `handedOver`:
   * its requests arrive one by one within a turn (a plugin's clients), so the round waits for the
   * turn's end to see them all, rather than running each alone as it comes.
   */
  wake(t: Tenant, handedOver = false): void {
    if (!this.inRing.has(t)) {
      this.inRing.add(t);
      this.ring.push(t);
    }
    // Nobody else is waiting and nothing is being measured: the round runs now rather than at the end
    // of this turn, which is all a lone client's request costs over the bare dispatch. It is the same
    // round, bounded the same way, so a socket read in this turn after this one waits no longer.
    if (!handedOver && !this.scheduled && !this.inRound && this.last === null && this.ring.length === 1) this.round();
    else this.schedule();
  }

  /** The tenant is gone (connection closed). */
  forget(t: Tenant): void {
    if (this.inRing.delete(t)) this.ring = this.ring.filter((x) => x !== t);
  }

  /** Estimated cost of an event, ms. */
  estimate(event: string): number {
    return this.cost.get(event) ?? UNKNOWN_MS;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.round);
  }

  private readonly round = (): void => {
    this.scheduled = false;
    this.inRound = true;
    try {
      this.runRound();
    } finally {
      this.inRound = false;
    }
  };

  private runRound(): void {
    const start = performance.now();
    if (this.last) this.learn(this.last, start);
    this.last = null;
    if (this.ring.length === 0) return;
    this.stats.rounds++;
    const ran: Ran[] = [];
    // Cheapest next request first: a ping does not wait for another client's share of the round.
    // Held-back tenants keep their place ahead of the others (they lost the previous heavy turn).
    const tenants = this.ring.length > 1 ? this.cheapestFirst(this.ring) : this.ring;
    this.ring = [];
    this.inRing.clear();
    const share = Math.max(ROUND_MS / tenants.length, HEAVY_MS / 4);
    let heavyRan = false;
    // Who was held back for a heavy request goes first next round, so heavy turns alternate.
    const heldBack: Tenant[] = [];
    let syncTotal = 0;
    let admitted = 0;
    // One clock read per request: the end of one is the start of the next.
    let t0 = performance.now();
    for (const t of tenants) {
      let spent = 0;
      let took = 0;
      for (;;) {
        const event = t.peek();
        if (event === null) break;
        const est = this.estimate(event);
        const heavy = est > HEAVY_MS;
        // Every tenant with work gets at least one request a round, unless it is a second heavy one.
        if (heavy && heavyRan) {
          if (took === 0) heldBack.push(t);
          break;
        }
        if (took > 0 && spent + est > share) break;
        let async = false;
        try {
          async = t.runNext();
        } catch (err) {
          // A tenant answers its own failures; one that throws anyway must not end the round for the rest.
          this.onError(err);
        }
        const t1 = performance.now();
        const syncMs = t1 - t0;
        t0 = t1;
        // Nothing continues after a synchronous request, nothing admission could pace after a queued
        // one: its timed part is all it is charged.
        syncTotal += syncMs;
        if (async && !this.queued(event)) ran.push({ event, syncMs });
        else this.update(event, syncMs);
        admitted++;
        spent += Math.max(est, syncMs);
        took++;
        if (heavy) {
          heavyRan = true;
          break;
        }
      }
      // Still has work (its share ran out, or a limit may lift): it goes on in the next round.
      if (t.peek() !== null && !this.inRing.has(t)) {
        this.inRing.add(t);
        this.ring.push(t);
      }
    }
    if (heldBack.length > 0)
      this.ring = [...heldBack.filter((t) => this.inRing.has(t)), ...this.ring.filter((t) => !heldBack.includes(t))];
    this.stats.admitted += admitted;
    if (ran.length > 0) {
      // The next turn starts with a round even when no tenant is left: it measures this one.
      this.last = { start, syncMs: syncTotal, ran, shared: this.sharedMs() };
      this.schedule();
    } else if (this.ring.length > 0) {
      this.schedule();
    }
  }

  /**
   * Tenants whose next request is light, cheapest first; then the heavy ones in ring order (which
   * puts the one held back last round first: ordering heavy ones by cost could starve the costliest).
   */
  private cheapestFirst(ring: Tenant[]): Tenant[] {
    const light: Array<{ t: Tenant; i: number; cost: number }> = [];
    const heavy: Tenant[] = [];
    ring.forEach((t, i) => {
      const event = t.peek();
      const cost = event === null ? Infinity : this.estimate(event);
      if (cost > HEAVY_MS) heavy.push(t);
      else light.push({ t, i, cost });
    });
    light.sort((a, b) => a.cost - b.cost || a.i - b.i);
    return [...light.map((k) => k.t), ...heavy];
  }

  /**
   * The round that started at `r.start` ended when this one began: the time its requests' synchronous
   * parts did not account for is their continuations', shared among the asynchronous ones by estimate.
   */
  private learn(r: LastRound, now: number): void {
    const tail = Math.max(0, now - r.start - r.syncMs - (this.sharedMs() - r.shared));
    let weights = 0;
    for (const x of r.ran) weights += Math.max(this.estimate(x.event) - x.syncMs, 0.001);
    for (const x of r.ran)
      this.update(x.event, x.syncMs + (tail * Math.max(this.estimate(x.event) - x.syncMs, 0.001)) / weights);
  }

  private update(event: string, measured: number): void {
    const prev = this.cost.get(event);
    if (prev === undefined) {
      if (this.cost.size >= MAX_NAMES) this.cost.clear();
      this.cost.set(event, measured);
      return;
    }
    // Up at once (half the way), down slowly: a costly request is believed sooner than a cheap one.
    this.cost.set(event, measured > prev ? prev + (measured - prev) / 2 : prev + (measured - prev) / 8);
  }
}
