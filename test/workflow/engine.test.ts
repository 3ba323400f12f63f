/**
 * The scheduler on its own (a real SQLite journal, a scripted performer): ordering by needs, fan-out
 * and fan-in, foreach within its concurrency, when, retry with backoff, timeouts, on_failure, waits
 * and signals, cancel, replan, the run's budget, and recovery from the journal after a "crash".
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DaemonError } from '../../client/errors.js';
import type { TaskSpec } from '../../plugins/workflow/task.js';
import { harness, named, sleep, type Harness } from './harness.js';

let open: Harness[] = [];
const make = (...a: Parameters<typeof harness>): Harness => {
  const h = harness(...a);
  open.push(h);
  return h;
};
afterEach(() => {
  for (const h of open) h.close();
  open = [];
});

const ev = (id: string, extra: Record<string, unknown> = {}) => ({ id, event: 'test:op', data: { id }, ...extra });

describe('scheduling', () => {
  it('runs a DAG in needs order: fan-out in parallel, fan-in after all, outputs flowing through templates', async () => {
    const h = make();
    const started: string[] = [];
    let inflight = 0;
    let peak = 0;
    h.perform.fn = async (t) => {
      started.push(t.step.id);
      inflight++;
      peak = Math.max(peak, inflight);
      await sleep(20);
      inflight--;
      if (t.step.id === 'root') return { items: [1, 2, 3] };
      return { got: t.data };
    };
    const id = await h.start({
      name: 'dag',
      steps: [
        ev('root'),
        { id: 'a', needs: ['root'], event: 'test:op', data: { n: '{{ steps.root.output.items[0] }}' } },
        { id: 'b', needs: ['root'], event: 'test:op', data: { n: '{{ steps.root.output.items.1 }}' } },
        {
          id: 'c',
          needs: ['root'],
          event: 'test:op',
          data: { all: '{{ steps.root.output.items }}', text: 'n={{ steps.root.output.items }}' },
        },
        {
          id: 'join',
          needs: ['a', 'b', 'c'],
          event: 'test:op',
          data: { a: '{{ steps.a.output.got.n }}', c: '{{ steps.c.output.got.all }}' },
        },
      ],
    });
    expect(await h.engine.wait(id)).toBe('succeeded');
    expect(started[0]).toBe('root');
    expect(started.slice(1, 4).sort()).toEqual(['a', 'b', 'c']);
    expect(started[4]).toBe('join');
    expect(peak).toBe(3);
    const st = await h.engine.status(id);
    const steps = st.steps as Record<string, { output: unknown; status: string }>;
    expect(steps.c!.output).toEqual({ got: { all: [1, 2, 3], text: 'n=[1,2,3]' } });
    expect(steps.join!.output).toEqual({ got: { a: 1, c: [1, 2, 3] } });
    expect(st.outputs).toEqual({ join: { got: { a: 1, c: [1, 2, 3] } } });
    // Progress events carry the run's causality: the same root as the request that started it.
    const evs = h.events.filter((e) => e.event.startsWith('workflow:'));
    expect(evs.every((e) => e.context.root_id === 'c-root' && e.context.workflow_id === id)).toBe(true);
    expect(named(h, 'workflow:step_finished').map((e) => e.step)).toContain('join');
    // Every task ran with a context whose parent is the run's, carrying the run as its budget scope.
    expect(
      h.performed.every((t) => t.context.root_id === 'c-root' && t.context.workflow_id === id && t.context.depth === 2),
    ).toBe(true);
  });

  it("runs foreach items within the step's concurrency, output in item order, with item and index in templates", async () => {
    const h = make();
    let inflight = 0;
    let peak = 0;
    h.perform.fn = async (t) => {
      inflight++;
      peak = Math.max(peak, inflight);
      await sleep(5 + ((t.idx * 7) % 11));
      inflight--;
      return { square: (t.data!.n as number) ** 2, i: t.data!.i };
    };
    const id = await h.start(
      {
        name: 'fe',
        inputs: { nums: { type: 'array', required: true } },
        steps: [
          {
            id: 'sq',
            event: 'test:op',
            foreach: '{{ inputs.nums }}',
            concurrency: 3,
            data: { n: '{{ item }}', i: '{{ index }}' },
          },
        ],
      },
      { nums: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
    );
    expect(await h.engine.wait(id)).toBe('succeeded');
    expect(peak).toBe(3);
    const out = ((await h.engine.status(id)).steps as Record<string, { output: unknown }>).sq!.output;
    expect(out).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n, i) => ({ square: n * n, i })));
    const progress = named(h, 'workflow:step_finished')
      .filter((e) => e.item !== null)
      .map((e) => (e.progress as { done: number }).done);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('bounds tasks across all runs by max_running_tasks', async () => {
    const h = make({ max_running_tasks: 4 });
    let inflight = 0;
    let peak = 0;
    h.perform.fn = async () => {
      inflight++;
      peak = Math.max(peak, inflight);
      await sleep(10);
      inflight--;
      return {};
    };
    const ids = await Promise.all(
      [1, 2, 3].map((i) =>
        h.start({
          name: `b${i}`,
          steps: [{ id: 'x', event: 'test:op', foreach: '{{ inputs.l }}', concurrency: 10 }],
          inputs: { l: { type: 'array', default: Array.from({ length: 10 }, (_, k) => k) } },
        }),
      ),
    );
    expect(await Promise.all(ids.map((i) => h.engine.wait(i)))).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(peak).toBe(4);
  });

  it('skips a step whose when is false; dependents still run and see null', async () => {
    const h = make();
    h.perform.fn = async (t) => (t.step.id === 'check' ? { go: false, also: 'yes' } : { ran: t.step.id, saw: t.data });
    const id = await h.start({
      name: 'when',
      steps: [
        ev('check'),
        { id: 'no', needs: ['check'], event: 'test:op', when: '{{ steps.check.output.go }}' },
        { id: 'yes', needs: ['check'], event: 'test:op', when: '{{ steps.check.output.also }}' },
        {
          id: 'after',
          needs: ['no'],
          event: 'test:op',
          data: { prev: '{{ steps.no.output }}', status: '{{ steps.no.status }}' },
        },
      ],
    });
    expect(await h.engine.wait(id)).toBe('succeeded');
    const steps = (await h.engine.status(id)).steps as Record<string, { status: string; output?: unknown }>;
    expect(steps.no!.status).toBe('skipped');
    expect(steps.yes!.status).toBe('succeeded');
    expect(steps.after!.output).toEqual({ ran: 'after', saw: { prev: null, status: 'skipped' } });
    expect(h.performed.map((t) => t.step.id)).not.toContain('no');
  });

  it('fills in the idempotency key of events that take one, and keys differ per item and attempt', async () => {
    const h = make();
    let n = 0;
    h.perform.fn = async (t) => {
      if (t.step.id === 'c' && n++ === 0) throw new DaemonError('UNAVAILABLE', 'flaky');
      return {};
    };
    const id = await h.start({
      name: 'keys',
      inputs: { l: { type: 'array', default: ['x', 'y'] } },
      steps: [
        { id: 'c', event: 'completion:request', data: { prompt: 'hi' }, retry: { max_attempts: 2, backoff_s: 0 } },
        { id: 's', event: 'agent:send', foreach: '{{ inputs.l }}', data: { agent_id: 'a', message: '{{ item }}' } },
        { id: 'own', event: 'completion:request', data: { prompt: 'x', request_id: 'mine-{{ run.id }}' } },
      ],
    });
    expect(await h.engine.wait(id)).toBe('succeeded');
    const by = (s: string) => h.performed.filter((t) => t.step.id === s).map((t) => t.data);
    expect(by('c').map((d) => d!.request_id)).toEqual([`${id}.c.a1`, `${id}.c.a2`]);
    expect(
      by('s')
        .map((d) => d!.turn_id)
        .sort(),
    ).toEqual([`${id}.s.0.a1`, `${id}.s.1.a1`]);
    expect(by('own')[0]!.request_id).toBe(`mine-${id}`);
  });
});

describe('failures', () => {
  it('retries with doubling backoff, then succeeds; the failures are reported with will_retry', async () => {
    const h = make();
    const at: number[] = [];
    h.perform.fn = async () => {
      at.push(Date.now());
      if (at.length < 3) throw new DaemonError('UNAVAILABLE', `fail ${at.length}`);
      return { ok: true };
    };
    const id = await h.start({ name: 'retry', steps: [{ ...ev('x'), retry: { max_attempts: 3, backoff_s: 0.05 } }] });
    expect(await h.engine.wait(id)).toBe('succeeded');
    expect(at).toHaveLength(3);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(45);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(95);
    const fails = named(h, 'workflow:step_failed');
    expect(fails.map((f) => [f.attempt, f.will_retry, f.retry_in_s])).toEqual([
      [1, true, 0.05],
      [2, true, 0.1],
    ]);
    expect(((await h.engine.status(id)).steps as Record<string, { attempts: number }>).x!.attempts).toBe(3);
  });

  it('fails the run when retries run out, cancelling what runs beside it and keeping finished outputs', async () => {
    const h = make();
    h.perform.fn = async (t, signal) => {
      if (t.step.id === 'bad') throw new DaemonError('UNAVAILABLE', 'down');
      if (t.step.id === 'slow')
        return new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason)));
      return { fine: true };
    };
    const id = await h.start({
      name: 'f',
      steps: [
        ev('good'),
        { ...ev('slow') },
        { ...ev('bad'), needs: ['good'], retry: { max_attempts: 2, backoff_s: 0 } },
        { ...ev('never'), needs: ['bad'] },
      ],
    });
    expect(await h.engine.wait(id)).toBe('failed');
    const st = await h.engine.status(id);
    const steps = st.steps as Record<string, { status: string; output?: unknown; error?: { code: string } }>;
    expect(steps.good).toMatchObject({ status: 'succeeded', output: { fine: true } });
    expect(steps.bad).toMatchObject({ status: 'failed', error: { code: 'UNAVAILABLE' } });
    expect(steps.slow!.status).toBe('cancelled');
    expect(steps.never!.status).toBe('pending');
    expect(st.error).toMatchObject({ code: 'UNAVAILABLE', details: { step: 'bad' } });
    expect(h.abandoned.map((t) => t.step.id)).toEqual(['slow']);
  });

  it('on_failure continue: the run goes on, dependents see the error; a foreach runs every item and keeps nulls', async () => {
    const h = make();
    h.perform.fn = async (t) => {
      if (t.step.id === 'bad' || (t.step.id === 'fe' && t.idx === 1)) throw new DaemonError('INVALID_DATA', 'nope');
      return { v: t.data };
    };
    const id = await h.start({
      name: 'cont',
      inputs: { l: { type: 'array', default: [0, 1, 2] } },
      steps: [
        { ...ev('bad'), on_failure: 'continue' },
        { id: 'next', needs: ['bad'], event: 'test:op', data: { code: '{{ steps.bad.error.code }}' } },
        { id: 'fe', event: 'test:op', foreach: '{{ inputs.l }}', data: { i: '{{ item }}' }, on_failure: 'continue' },
      ],
    });
    expect(await h.engine.wait(id)).toBe('succeeded');
    const steps = (await h.engine.status(id)).steps as Record<
      string,
      { status: string; output?: unknown; items?: unknown }
    >;
    expect(steps.next!.output).toEqual({ v: { code: 'INVALID_DATA' } });
    expect(steps.fe).toMatchObject({
      status: 'failed',
      output: [{ v: { i: 0 } }, null, { v: { i: 2 } }],
      items: { total: 3, done: 2, failed: 1 },
    });
  });

  it('times an attempt out (timeout_s), abandons its work, and retries', async () => {
    const h = make();
    let n = 0;
    h.perform.fn = async () => (n++ === 0 ? new Promise(() => undefined) : { late: false });
    const id = await h.start({
      name: 't',
      steps: [{ ...ev('x'), timeout_s: 0.1, retry: { max_attempts: 2, backoff_s: 0 } }],
    });
    expect(await h.engine.wait(id)).toBe('succeeded');
    expect(named(h, 'workflow:step_failed')[0]).toMatchObject({ error: { code: 'TIMEOUT' }, will_retry: true });
    expect(h.abandoned).toHaveLength(1);
  });

  it('a foreach over something that is not a list fails the step without running it', async () => {
    const h = make();
    const id = await h.start({
      name: 'nl',
      inputs: { x: { type: 'string', default: 'abc' } },
      steps: [{ ...ev('fe'), foreach: '{{ inputs.x }}' }],
    });
    expect(await h.engine.wait(id)).toBe('failed');
    expect(h.performed).toHaveLength(0);
    expect((await h.engine.status(id)).error).toMatchObject({ code: 'INVALID_DATA' });
  });

  it('an agent step with output: json fails (and retries) when the reply holds no JSON', async () => {
    const h = make();
    let n = 0;
    h.perform.fn = async () => ({
      reply: n++ === 0 ? 'I think so.' : 'Here: ```json\n{"ok": true}\n```',
      turn_id: 't',
      cost_usd: 0,
    });
    const id = await h.start({
      name: 'j',
      steps: [
        { id: 'a', agent: { profile: 'p', message: 'go' }, output: 'json', retry: { max_attempts: 2, backoff_s: 0 } },
      ],
    });
    expect(await h.engine.wait(id)).toBe('succeeded');
    expect(((await h.engine.status(id)).steps as Record<string, { output: unknown }>).a!.output).toEqual({ ok: true });
  });
});

describe('waits, cancel, budget, replan', () => {
  it('waits for a signal, whose data becomes the output; a signal for a step not waiting is CONFLICT', async () => {
    const h = make();
    h.perform.fn = async (t) => ({ approved: t.data });
    const id = await h.start({
      name: 'w',
      steps: [
        { id: 'ok', wait: { prompt: 'approve run {{ run.id }}?' } },
        { id: 'go', needs: ['ok'], event: 'test:op', data: { who: '{{ steps.ok.output.by }}' } },
      ],
    });
    await vi.waitFor(() => expect(named(h, 'workflow:waiting')).toHaveLength(1));
    expect(named(h, 'workflow:waiting')[0]!.prompt).toBe(`approve run ${id}?`);
    expect((await h.engine.status(id)).status).toBe('waiting');
    await expect(h.engine.signal(id, 'go', {})).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(h.engine.signal(id, 'nope', {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await h.engine.signal(id, 'ok', { by: 'ann' });
    expect(await h.engine.wait(id)).toBe('succeeded');
    expect(((await h.engine.status(id)).steps as Record<string, { output: unknown }>).go!.output).toEqual({
      approved: { who: 'ann' },
    });
    await expect(h.engine.signal(id, 'ok', {})).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('cancel stops running tasks and keeps the outputs made so far', async () => {
    const h = make();
    h.perform.fn = async (t, signal) =>
      t.step.id === 'fast'
        ? { done: 1 }
        : new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason)));
    const id = await h.start({ name: 'c', steps: [ev('fast'), { ...ev('slow'), needs: ['fast'] }] });
    await vi.waitFor(() => expect(h.performed.map((t) => t.step.id)).toContain('slow'));
    expect(await h.engine.cancel(id)).toEqual({ run_id: id, status: 'cancelled' });
    const st = await h.engine.status(id);
    expect(st.status).toBe('cancelled');
    expect((st.steps as Record<string, unknown>).fast).toMatchObject({ status: 'succeeded', output: { done: 1 } });
    expect((st.steps as Record<string, unknown>).slow).toMatchObject({ status: 'cancelled' });
    expect(h.abandoned.map((t) => t.step.id)).toEqual(['slow']);
    await expect(h.engine.cancel(id)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(named(h, 'workflow:finished')).toMatchObject([{ status: 'cancelled', outputs: {} }]);
  });

  it("the run's own budget refusing a call ends it budget_exhausted: running items drain, nothing new starts, outputs kept", async () => {
    const h = make();
    let calls = 0;
    h.perform.fn = async (t) => {
      const n = ++calls;
      await sleep(10);
      if (n === 4) throw new DaemonError('BUDGET_EXCEEDED', 'out', { scope: 'workflow', id: t.run_id });
      return { n };
    };
    const id = await h.start({
      name: 'b',
      inputs: { l: { type: 'array', default: Array.from({ length: 20 }, (_, i) => i) } },
      steps: [{ ...ev('fe'), foreach: '{{ inputs.l }}', concurrency: 3 }],
    });
    expect(await h.engine.wait(id)).toBe('budget_exhausted');
    const fe = ((await h.engine.status(id)).steps as Record<string, { items: { done: number }; output: unknown[] }>)
      .fe!;
    expect(calls).toBeLessThanOrEqual(6);
    expect(fe.items.done).toBe(calls - 1);
    expect(fe.output.filter((x) => x !== null)).toHaveLength(calls - 1);
  });

  it('replans: the failed step and the rest are replaced, finished steps kept, versions recorded', async () => {
    const h = make();
    h.perform.fn = async (t) => {
      if (t.step.id === 'b') throw new DaemonError('UNAVAILABLE', 'b broke');
      return { from: t.step.id, a: t.data?.a ?? null };
    };
    h.replan.fn = async (r) =>
      ({
        ...r.definition,
        steps: [
          ...r.definition.steps.filter((s) => r.kept.includes(s.id)),
          { id: 'b2', needs: ['a'], event: 'test:op', data: { a: '{{ steps.a.output.from }}' }, on_failure: 'fail' },
        ],
      }) as never;
    const id = await h.start({
      name: 'rp',
      steps: [ev('a'), { ...ev('b'), needs: ['a'], on_failure: 'replan' }, { ...ev('c'), needs: ['b'] }],
    });
    expect(await h.engine.wait(id)).toBe('succeeded');
    const st = await h.engine.status(id);
    expect(st.version).toBe(2);
    expect(Object.keys(st.steps as object)).toEqual(['a', 'b2']);
    expect((st.steps as Record<string, unknown>).b2).toMatchObject({ output: { from: 'b2', a: 'a' } });
    expect(named(h, 'workflow:replanned')).toMatchObject([
      { version: 2, failed_step: 'b', replaced: ['b', 'c'], added: ['b2'], error: { code: 'UNAVAILABLE' } },
    ]);
    expect(h.engine.versions(id).map((v) => [v.version, v.reason])).toEqual([
      [1, 'start'],
      [2, 'replan'],
    ]);
    expect(h.performed.filter((t) => t.step.id === 'a')).toHaveLength(1);
  });

  it('a replan that fails, or one past max_replans, fails the run', async () => {
    const h = make({ max_replans: 1 });
    h.perform.fn = async (t) => {
      if (t.step.id.startsWith('b')) throw new DaemonError('UNAVAILABLE', 'broke');
      return {};
    };
    h.replan.fn = async (r) =>
      ({ ...r.definition, steps: [{ id: 'b2', event: 'test:op', on_failure: 'replan', needs: [] }] }) as never;
    const id = await h.start({ name: 'rp2', steps: [{ ...ev('b'), on_failure: 'replan' }] });
    expect(await h.engine.wait(id)).toBe('failed');
    expect((await h.engine.status(id)).error).toMatchObject({ message: expect.stringContaining('max_replans') });
  });
});

describe('recovery from the journal', () => {
  it('after a crash, finished tasks never run again and those in flight run again with the same key', async () => {
    const h = make();
    const hang = new Set<string>();
    h.perform.fn = async (t) => {
      if (hang.has(t.step.id)) return new Promise(() => undefined); // in flight when the process "dies"
      return { from: t.key };
    };
    hang.add('b');
    hang.add('fe');
    const id = await h.start({
      name: 'crash',
      inputs: { l: { type: 'array', default: [0, 1, 2, 3] } },
      steps: [
        ev('a'),
        { ...ev('b'), needs: ['a'] },
        { ...ev('fe'), needs: ['a'], foreach: '{{ inputs.l }}', concurrency: 2 },
        { ...ev('z'), needs: ['b', 'fe'] },
      ],
    });
    await vi.waitFor(() => expect(h.performed.filter((t) => t.step.id === 'fe')).toHaveLength(2));
    const before = h.performed.map((t) => t.key);
    hang.clear();
    const h2 = h.restart();
    open.push(h2);
    expect(h2.engine.recover()).toEqual({ resumed: 1, queued: 0 });
    expect(await h2.engine.wait(id)).toBe('succeeded');
    const after = h2.performed.slice(before.length).map((t) => t.key);
    expect(after.filter((k) => k.endsWith('.a.a1'))).toEqual([]); // a finished before the crash
    expect(after).toContain(`${id}.b.a1`); // in flight: again, same key
    expect(after.filter((k) => k.startsWith(`${id}.fe.`)).sort()).toEqual([
      `${id}.fe.0.a1`,
      `${id}.fe.1.a1`,
      `${id}.fe.2.a1`,
      `${id}.fe.3.a1`,
    ]);
    expect(named(h2, 'workflow:started').at(-1)).toMatchObject({ run_id: id, resumed: true });
    const fe = ((await h2.engine.status(id)).steps as Record<string, { output: unknown }>).fe!.output;
    expect(fe).toEqual([0, 1, 2, 3].map((i) => ({ from: `${id}.fe.${i}.a1` })));
  });

  it("reads each step back from the journal as it was: outputs, attempts, a retried step's first start, the one in flight", async () => {
    const h = make();
    let failB = 1;
    const firstTry: Record<string, number> = {};
    const hang = new Set(['c']);
    h.perform.fn = async (t) => {
      firstTry[t.step.id] ??= Date.now();
      if (t.step.id === 'b' && failB-- > 0) throw new DaemonError('UNAVAILABLE', 'once');
      if (hang.has(t.step.id)) return new Promise(() => undefined);
      return { k: t.key };
    };
    const id = await h.start({
      name: 'rows',
      steps: [
        ev('a'),
        { ...ev('b'), needs: ['a'], retry: { max_attempts: 2, backoff_s: 0.05 } },
        { ...ev('c'), needs: ['b'] },
        { ...ev('d'), needs: ['c'] },
      ],
    });
    await vi.waitFor(() => expect(h.performed.map((t) => t.step.id)).toContain('c'));
    type S = {
      status: string;
      attempts: number;
      output?: unknown;
      started_at: number | null;
      finished_at: number | null;
    };
    const steps = (await h.engine.status(id)).steps as Record<string, S>;
    expect(steps.a).toMatchObject({ status: 'succeeded', attempts: 1, output: { k: `${id}.a.a1` } });
    expect(steps.b).toMatchObject({ status: 'succeeded', attempts: 2, output: { k: `${id}.b.a2` } });
    expect(steps.b!.started_at! * 1000).toBeLessThanOrEqual(firstTry.b!); // the step's start, not its second attempt's
    expect(steps.c).toMatchObject({ status: 'running', attempts: 1, finished_at: null });
    expect(steps.d).toMatchObject({ status: 'pending', attempts: 0, started_at: null });

    // What a restart reads from the journal is what the run had.
    hang.clear();
    const h2 = h.restart();
    open.push(h2);
    const performedBefore = h.performed.length;
    h2.engine.recover();
    expect(await h2.engine.wait(id)).toBe('succeeded');
    const again = h2.performed.slice(performedBefore).map((t) => t.key);
    expect(again).toEqual([`${id}.c.a1`, `${id}.d.a1`]); // c was in flight (same key); a and b finished
    const after = (await h2.engine.status(id)).steps as Record<string, S>;
    expect(after.a).toEqual(steps.a);
    expect(after.b).toEqual(steps.b);
    expect(after.c).toMatchObject({ status: 'succeeded', attempts: 1, output: { k: `${id}.c.a1` } });
  });

  it('a signal wait survives a restart; a retry waiting on its backoff resumes with the next attempt', async () => {
    const h = make();
    let fails = 1;
    h.perform.fn = async (t: TaskSpec) => {
      if (t.step.id === 'r' && fails-- > 0) throw new DaemonError('UNAVAILABLE', 'once');
      return { k: t.key };
    };
    const id = await h.start({
      name: 'ws',
      steps: [
        { id: 'w', wait: { prompt: 'go?' } },
        { ...ev('r'), retry: { max_attempts: 3, backoff_s: 0.2 } },
        { ...ev('z'), needs: ['w', 'r'] },
      ],
    });
    await vi.waitFor(() => expect(named(h, 'workflow:step_failed')).toHaveLength(1));
    const h2 = h.restart();
    open.push(h2);
    h2.engine.recover();
    await vi.waitFor(() => expect(h2.performed.map((t) => t.key)).toContain(`${id}.r.a2`));
    expect((await h2.engine.status(id)).status).toBe('waiting');
    await h2.engine.signal(id, 'w', { ok: true });
    expect(await h2.engine.wait(id)).toBe('succeeded');
  });

  it('at a stop, whoever waits for a run is told SHUTTING_DOWN; the run stays journaled as running', async () => {
    const h = make();
    h.perform.fn = async () => new Promise(() => undefined);
    const id = await h.start({ name: 'st', steps: [ev('a')] });
    const waiting = h.engine.wait(id);
    await vi.waitFor(() => expect(h.performed).toHaveLength(1));
    h.stopping.value = true;
    h.engine.stop();
    await expect(waiting).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    expect(h.db.prepare('SELECT status FROM workflow_runs WHERE run_id = ?').get(id)).toEqual({ status: 'running' });
  });

  it('a cancelled run is not resumed', async () => {
    const h = make();
    h.perform.fn = async () => new Promise(() => undefined);
    const id = await h.start({ name: 'cx', steps: [ev('a')] });
    await vi.waitFor(() => expect(h.performed).toHaveLength(1));
    const p = h.engine.cancel(id);
    await p;
    const h2 = h.restart();
    open.push(h2);
    expect(h2.engine.recover()).toEqual({ resumed: 0, queued: 0 });
    expect((await h2.engine.status(id)).status).toBe('cancelled');
  });

  it('queues runs beyond max_active_runs and starts them as others end', async () => {
    const h = make({ max_active_runs: 2 });
    h.perform.fn = async () => (await sleep(20), {});
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await h.start({ name: 'q', steps: [ev('a')] }));
    expect((await h.engine.status(ids[4]!)).status).toBe('queued');
    for (const id of ids) await vi.waitFor(async () => expect((await h.engine.status(id)).status).toBe('succeeded'));
    const recent = h.engine.runs({ status: 'succeeded', limit: 3 });
    expect(recent).toHaveLength(3);
    expect(recent.every((r) => ids.includes(r.run_id as string) && r.status === 'succeeded')).toBe(true);
    expect(h.engine.runs({ workflow: 'nope', limit: 10 })).toEqual([]);
  });
});
