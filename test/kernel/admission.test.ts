/** Admission rounds, with tenants whose requests cost known amounts of synchronous work. */
import { describe, expect, it } from 'vitest';
import { Admission, type Tenant } from '../../daemon/admission.js';

const spin = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* work */
  }
};

/** A tenant with `n` requests of one event, each costing `ms` of the loop; records when each ran. */
function tenant(name: string, event: string, n: number, ms: number, log: string[]): Tenant & { left: () => number } {
  let left = n;
  return {
    peek: () => (left > 0 ? event : null),
    runNext: () => {
      left--;
      spin(ms);
      log.push(name);
      return false;
    },
    left: () => left,
  };
}

const until = (cond: () => boolean): Promise<void> =>
  new Promise((resolve) => {
    const check = (): void => (cond() ? resolve() : void setImmediate(check));
    check();
  });

describe('admission', () => {
  it('a light tenant is served in the first rounds while another pipelines heavy requests', async () => {
    const a = new Admission();
    const log: string[] = [];
    const hog = tenant('hog', 'test:heavy', 40, 3, log);
    a.wake(hog);
    await until(() => hog.left() < 35); // the hog's cost is known by now
    const pinger = tenant('ping', 'test:light', 5, 0, log);
    a.wake(pinger);
    const at = log.length;
    await until(() => pinger.left() === 0);
    // The pinger's five ran within a few of the hog's heavy requests, not after its 35 others.
    expect(log.slice(at).filter((x) => x === 'hog').length).toBeLessThanOrEqual(10);
    await until(() => hog.left() === 0);
  });

  it('two tenants of heavy requests take turns, the costlier one included', async () => {
    const a = new Admission();
    const log: string[] = [];
    const cheapish = tenant('a', 'test:heavy_a', 30, 1, log);
    const costly = tenant('b', 'test:heavy_b', 30, 3, log);
    a.wake(cheapish);
    a.wake(costly);
    await until(() => cheapish.left() === 0 || costly.left() === 0);
    expect(Math.abs(cheapish.left() - costly.left())).toBeLessThanOrEqual(2);
  });

  it('takes an unknown event for heavy until measured, then runs cheap ones many to a round', async () => {
    const a = new Admission();
    const log: string[] = [];
    const t = tenant('t', 'test:cheap', 200, 0, log);
    a.wake(t);
    await until(() => t.left() === 0);
    expect(a.estimate('test:cheap')).toBeLessThan(0.5);
    // 200 requests in far fewer rounds than requests: one for the unknown, then batches.
    expect(a.stats.rounds).toBeLessThan(100);
  });

  it('a tenant that throws does not end the round for the others', async () => {
    const errors: unknown[] = [];
    const a = new Admission((e) => errors.push(e));
    const log: string[] = [];
    let bad = 3;
    a.wake({
      peek: () => (bad > 0 ? 'test:bad' : null),
      runNext: () => (
        bad--,
        (() => {
          throw new Error('boom');
        })()
      ),
    });
    const good = tenant('good', 'test:good', 3, 0, log);
    a.wake(good);
    await until(() => good.left() === 0 && bad === 0);
    expect(errors).toHaveLength(3);
  });

  /**
   * Requests that go asynchronous and answer next turn, while the loop does `backgroundMs` of other
   * work every turn (the queued calls of earlier requests, say); `commitMs` of each turn's work is a
   * shared commit, reported through `shared`.
   */
  async function burst(
    opts: { queued?: boolean; commit?: boolean },
    n = 200,
  ): Promise<{ a: Admission; rounds: number }> {
    let sharedMs = 0;
    const a = new Admission(undefined, {
      sharedMs: () => sharedMs,
      queued: (e) => opts.queued === true && e === 'test:queued',
    });
    let left = n;
    let stop = false;
    const background = (): void => {
      if (stop) return;
      const t = performance.now();
      spin(3);
      if (opts.commit) sharedMs += performance.now() - t;
      setImmediate(background);
    };
    background();
    a.wake({
      peek: () => (left > 0 ? 'test:queued' : null),
      runNext: () => {
        left--;
        return true;
      },
    });
    await until(() => left === 0);
    stop = true;
    return { a, rounds: a.stats.rounds };
  }

  it("charges a queued event its synchronous part, not the queue's work in the turns after", async () => {
    // Taken for heavy from the loop's other work, one a round: as many rounds as requests.
    const plain = await burst({});
    expect(plain.a.estimate('test:queued')).toBeGreaterThan(0.5);
    expect(plain.rounds).toBeGreaterThanOrEqual(190);
    const queued = await burst({ queued: true });
    expect(queued.a.estimate('test:queued')).toBeLessThan(0.5);
    expect(queued.rounds).toBeLessThan(100);
  });

  it("leaves the turn's shared commit out of what its requests cost", async () => {
    const shared = await burst({ commit: true });
    expect(shared.a.estimate('test:queued')).toBeLessThan(0.5);
    expect(shared.rounds).toBeLessThan(100);
  });
});
