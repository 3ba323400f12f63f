/**
 * The client-side record of what the daemon acknowledged, for the crash-durability suite. Every
 * operation is written down when it is sent and marked when its answer arrives; after a kill -9 and
 * a restart, the daemon's state is checked against it: what was acknowledged must be there, what
 * was in flight may or may not be, but never half of it.
 */

/** Deterministic PRNG (mulberry32) so a failing seed can be replayed. */
export function rng(seed: number): {
  next(): number;
  int(lo: number, hi: number): number;
  pick<T>(xs: T[]): T;
  chance(p: number): boolean;
} {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
  };
}

/** "1,2,5" or "1-8" or "1-4,9" → seeds. */
export function parseSeeds(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(\d+)-(\d+)$/.exec(part);
    if (m) for (let i = Number(m[1]); i <= Number(m[2]); i++) out.push(i);
    else if (/^\d+$/.test(part)) out.push(Number(part));
    else throw new Error(`bad seed spec "${part}"`);
  }
  return out;
}

export interface Op<T> {
  value: T;
  acked: boolean;
  round: number;
}

export class AckModel {
  /** completion:async sends by request_id. */
  readonly completions = new Map<string, Op<null>>();
  /** kg:add_nodes batches (node ids). */
  readonly kgBatches: Array<Op<string[]>> = [];
  /** agent:spawn sends by agent id. */
  readonly agents = new Map<string, Op<null>>();
  /** agent:terminate sends by agent id. */
  readonly terminations = new Map<string, Op<null>>();
  /** agent:send (wait: false) turn ids → agent id. */
  readonly turns = new Map<string, Op<string>>();
  /** budget:set limit_usd per agent, in send order. */
  readonly limits = new Map<string, Array<Op<number>>>();
  /** memo:put keys in send order. */
  readonly puts: Array<Op<string>> = [];
  /** Keys the daemon holds now, as far as the client knows (reset from the daemon after each restart). */
  readonly memoLive = new Set<string>();
  /** Keys the daemon held when a checkpoint:save that was acknowledged was sent. */
  readonly durableKeys = new Set<string>();
  /** API request count (messageRequests().length) at which each request was first seen completed. */
  readonly completedAt = new Map<string, number>();
  /** completion:result events per request id, over every run. */
  readonly resultEvents = new Map<string, number>();

  send<T>(list: Array<Op<T>>, value: T, round: number): Op<T> {
    const op = { value, acked: false, round };
    list.push(op);
    return op;
  }

  limitOps(agent: string): Array<Op<number>> {
    let l = this.limits.get(agent);
    if (!l) this.limits.set(agent, (l = []));
    return l;
  }

  /** The limits an agent may have now: the last acknowledged one, or any sent after it. */
  allowedLimits(agent: string): Array<number | null> {
    const ops = this.limitOps(agent);
    let last = -1;
    ops.forEach((o, i) => void (o.acked && (last = i)));
    const allowed: Array<number | null> = last >= 0 ? [ops[last].value] : [null];
    for (const o of ops.slice(last + 1)) allowed.push(o.value);
    return allowed;
  }
}
