/** The completion plugin's pure parts: the session queue, token coalescing, the input bound. */
import { describe, expect, it, vi } from 'vitest';
import { SessionQueue } from '../../plugins/completion/queue.js';
import { TokenCoalescer } from '../../plugins/completion/tokens.js';
import { cacheTtlOf, inputShape, inputTokenBound } from '../../plugins/completion/input-bound.js';

interface It {
  id: string;
  key: string;
}

function harness(concurrency: number) {
  const started: string[] = [];
  const finishers = new Map<string, () => void>();
  const q = new SessionQueue<It>(
    concurrency,
    (it) =>
      new Promise<void>((r) => {
        started.push(it.id);
        finishers.set(it.id, r);
      }),
  );
  const finish = async (id: string) => {
    finishers.get(id)!();
    await new Promise((r) => setImmediate(r));
  };
  return { q, started, finish };
}

describe('SessionQueue', () => {
  it('runs one request per session at a time, in order', async () => {
    const { q, started, finish } = harness(10);
    expect(q.enqueue({ id: 'a1', key: 'a' })).toBe(1);
    expect(q.enqueue({ id: 'a2', key: 'a' })).toBe(2);
    expect(q.enqueue({ id: 'a3', key: 'a' })).toBe(3);
    expect(started).toEqual(['a1']);
    await finish('a1');
    expect(started).toEqual(['a1', 'a2']);
    await finish('a2');
    await finish('a3');
    expect(started).toEqual(['a1', 'a2', 'a3']);
    expect(q.size).toBe(0);
    expect(q.inFlight).toBe(0);
  });

  it('runs sessions in parallel up to the limit, taking turns', async () => {
    const { q, started, finish } = harness(2);
    for (const id of ['a1', 'a2', 'a3']) q.enqueue({ id, key: 'a' });
    q.enqueue({ id: 'b1', key: 'b' });
    q.enqueue({ id: 'c1', key: 'c' });
    expect(started).toEqual(['a1', 'b1']);
    await finish('a1'); // c has waited longer than a's next: c goes first
    expect(started).toEqual(['a1', 'b1', 'c1']);
    await finish('b1');
    expect(started).toEqual(['a1', 'b1', 'c1', 'a2']);
  });

  it('remove takes a queued item out; a running one is not removable', async () => {
    const { q, started, finish } = harness(1);
    q.enqueue({ id: 'a1', key: 'a' });
    q.enqueue({ id: 'a2', key: 'a' });
    q.enqueue({ id: 'b1', key: 'b' });
    expect(q.remove('a1', 'a')).toBe(false);
    expect(q.remove('b1', 'b')).toBe(true);
    expect(q.remove('b1', 'b')).toBe(false);
    await finish('a1');
    await finish('a2');
    expect(started).toEqual(['a1', 'a2']);
  });

  it('pause keeps queued items; resume continues', async () => {
    const { q, started, finish } = harness(4);
    q.enqueue({ id: 'a1', key: 'a' });
    q.pause();
    q.enqueue({ id: 'b1', key: 'b' });
    await finish('a1');
    expect(started).toEqual(['a1']);
    expect(q.queuedItems().map((i) => i.id)).toEqual(['b1']);
    q.resume();
    expect(started).toEqual(['a1', 'b1']);
  });

  it('a thousand items over fifty sessions all run exactly once', async () => {
    const ran: string[] = [];
    let peak = 0;
    let live = 0;
    const q = new SessionQueue<It>(8, async (it) => {
      live++;
      peak = Math.max(peak, live);
      ran.push(it.id);
      await new Promise((r) => setImmediate(r));
      live--;
    });
    for (let i = 0; i < 1000; i++) q.enqueue({ id: `r${i}`, key: `s${i % 50}` });
    await vi.waitFor(() => expect(ran).toHaveLength(1000), { timeout: 5000 });
    expect(new Set(ran).size).toBe(1000);
    expect(peak).toBe(8);
    // per session, in order
    for (let s = 0; s < 50; s++) {
      const mine = ran.filter((id) => Number(id.slice(1)) % 50 === s).map((id) => Number(id.slice(1)));
      expect(mine).toEqual([...mine].sort((a, b) => a - b));
    }
  });
});

describe('TokenCoalescer', () => {
  it('gathers deltas over the window and flushes the rest at the end, in order', () => {
    vi.useFakeTimers();
    try {
      const out: Array<[number, string]> = [];
      const c = new TokenCoalescer((i, t) => out.push([i, t]), 20, 1000);
      c.push('a');
      c.push('b');
      vi.advanceTimersByTime(19);
      expect(out).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(out).toEqual([[0, 'ab']]);
      c.push('c');
      c.end();
      c.push('ignored');
      expect(out).toEqual([
        [0, 'ab'],
        [1, 'c'],
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('flushes at once when the size limit is reached', () => {
    const out: string[] = [];
    const c = new TokenCoalescer((_i, t) => out.push(t), 10_000, 4);
    c.push('ab');
    c.push('cd');
    c.push('e');
    expect(out).toEqual(['abcd']);
    c.end();
    expect(out).toEqual(['abcd', 'e']);
  });
});

describe('input bound', () => {
  it('is never below a byte-per-token count, and grows with tools and system', () => {
    const base = { messages: [{ role: 'user' as const, content: 'héllo wörld' }] };
    const b = inputTokenBound(base);
    expect(b).toBeGreaterThanOrEqual(Buffer.byteLength('héllo wörld'));
    expect(inputTokenBound({ ...base, system: 'x'.repeat(1000) })).toBeGreaterThan(b + 999);
    expect(inputTokenBound({ ...base, tools: [{ name: 't', input_schema: { type: 'object' } }] })).toBeGreaterThan(b);
  });

  it('counts a conversation that grows call after call as the bytes of its whole JSON, every time', () => {
    const history: Array<{ role: 'user' | 'assistant'; content: string | Array<Record<string, unknown>> }> = [];
    for (let turn = 0; turn < 5; turn++) {
      const next = { role: 'user' as const, content: `question ${turn} ✓` };
      const req = { system: 'be brief', messages: [...history, next] };
      const whole = Buffer.byteLength(JSON.stringify(req.messages)) + Buffer.byteLength(req.system);
      expect(inputTokenBound(req)).toBe(whole + 8 * req.messages.length + 64);
      history.push(next, { role: 'assistant', content: [{ type: 'text', text: `answer ${turn}` }] });
    }
    // A cached block anywhere in the reused history still asks for the cache's price.
    history.push({ role: 'user', content: [{ type: 'text', text: 'doc', cache_control: { type: 'ephemeral' } }] });
    expect(inputShape({ messages: history }).cacheTtl).toBe('5m');
    expect(inputShape({ messages: [...history, { role: 'user', content: 'more' }] }).cacheTtl).toBe('5m');
  });

  it.each([
    [{ messages: [{ role: 'user', content: 'x' }] }, 'none'],
    [{ system: [{ type: 'text', text: 's', cache_control: { type: 'ephemeral' } }], messages: [] }, '5m'],
    [
      {
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'x', cache_control: { type: 'ephemeral', ttl: '1h' } }] },
        ],
      },
      '1h',
    ],
    // The words in a message's text are not a cache_control block.
    [{ messages: [{ role: 'user', content: 'set "cache_control": {"ttl": "1h"} on it' }] }, 'none'],
  ])('cache ttl of %j is %s (walked, and through inputShape)', (req, ttl) => {
    expect(cacheTtlOf(req as Parameters<typeof cacheTtlOf>[0])).toBe(ttl);
    const shape = inputShape(req as Parameters<typeof inputShape>[0]);
    expect(shape.cacheTtl).toBe(ttl);
    expect(shape.bound).toBe(inputTokenBound(req as Parameters<typeof inputTokenBound>[0]));
  });
});
