/**
 * The monitor's pure parts: the filter patterns, the event-stream reducer, the layout.
 */
import { describe, expect, it, vi } from 'vitest';
import { compile, parseFilter } from '../../interfaces/monitor/state/patterns.js';
import {
  initialStream,
  streamReducer,
  visibleLog,
  type StreamEvent,
  type StreamState,
} from '../../interfaces/monitor/state/stream.js';
import { computeLayout, focusable } from '../../interfaces/monitor/state/layout.js';
import { FrameClock } from '../../interfaces/monitor/frame-clock.js';

let seq = 0;
const ev = (event: string, data: Record<string, unknown> = {}, extra: Partial<StreamEvent> = {}): StreamEvent => ({
  event,
  data,
  seq: ++seq,
  timestamp: 1000 + seq / 1000,
  ...extra,
});
const run = (s: StreamState, events: StreamEvent[], now = 1000): StreamState =>
  streamReducer(s, { type: 'events', events, now });

describe('filter patterns', () => {
  const table: Array<[string, string, boolean]> = [
    ['*', 'completion:result', true],
    ['completion:result', 'completion:result', true],
    ['completion:result', 'completion:error', false],
    ['agent:*', 'agent:spawned', true],
    ['agent:*', 'agent:tool:call', false],
    ['agent:**', 'agent:tool:call', true],
    ['agent:**', 'agents:x', false],
    ['agent:*', 'agentx:spawned', false],
  ];
  it.each(table)('%s matches %s: %s', (pattern, event, expected) => {
    expect(compile([pattern])(event)).toBe(expected);
  });

  it('reads a bare namespace as ns:** and ! as exclusion', () => {
    const f = parseFilter('agent, completion:error !agent:heartbeat');
    expect(f.include).toEqual(['agent:**', 'completion:error']);
    expect(f.exclude).toEqual(['agent:heartbeat']);
    expect(f.match('agent:spawned')).toBe(true);
    expect(f.match('agent:heartbeat')).toBe(false);
    expect(f.match('completion:error')).toBe(true);
    expect(f.match('completion:result')).toBe(false);
    expect(parseFilter('!budget:*').match('kg:stats')).toBe(true);
    expect(parseFilter('   ').text).toBe('');
  });

  it('rejects what the daemon would reject', () => {
    expect(() => parseFilter('Agent:*')).toThrow(/bad pattern "Agent:\*"/);
    expect(() => parseFilter('a:*:b')).toThrow(/bad pattern/);
  });
});

describe('stream reducer', () => {
  it('keeps a bounded, filtered log and counts everything', () => {
    let s = initialStream(5, parseFilter('burst:*'));
    // Pushed frames carry kind and subscription too.
    const batch = [
      ...Array.from({ length: 8 }, (_, i) => ({ ...ev('burst:tick', { i }), kind: 'event', subscription: 's-1' })),
      ev('kg:stats'),
    ];
    s = run(s, batch);
    expect(s.received).toBe(9);
    expect(s.byNamespace).toEqual({ burst: 8, kg: 1 });
    expect(s.log.map((e) => e.data.i)).toEqual([3, 4, 5, 6, 7]);
    expect(s.log.every((e) => e.kind === 'event' && e.epoch === 0 && e.ts > 1000)).toBe(true);
    expect(s.lastSeq).toBe(batch[batch.length - 1].seq);
  });

  it('ignores events it has already seen (history overlapping the live stream)', () => {
    const a = ev('x:a');
    const b = ev('x:b');
    let s = streamReducer(initialStream(), { type: 'backfill', events: [a, b], now: 1000 });
    s = run(s, [b, ev('x:c')]);
    expect(s.log.map((e) => e.event)).toEqual(['x:a', 'x:b', 'x:c']);
    expect(s.received).toBe(3);
  });

  it('does not count history as arrival rate', () => {
    let s = streamReducer(initialStream(), {
      type: 'backfill',
      events: Array.from({ length: 100 }, () => ev('x:a')),
      now: 1000,
    });
    expect(s.perSecond).toBe(0);
    s = run(
      s,
      Array.from({ length: 20 }, () => ev('x:a')),
      1002,
    );
    expect(s.perSecond).toBe(10);
    s = streamReducer(s, { type: 'tick', now: 1010 });
    expect(s.perSecond).toBe(0);
  });

  it('pauses the visible log while counting what it missed', () => {
    let s = run(initialStream(), [ev('x:a')]);
    s = streamReducer(s, { type: 'pause' });
    s = run(s, [ev('x:b'), ev('x:c')]);
    expect(visibleLog(s).map((e) => e.event)).toEqual(['x:a']);
    expect(s.missed).toBe(2);
    s = streamReducer(s, { type: 'resume' });
    expect(visibleLog(s).map((e) => e.event)).toEqual(['x:a', 'x:b', 'x:c']);
    expect(s.missed).toBe(0);
  });

  it('reports monitor:dropped in the log and the counts, even with a filter', () => {
    let s = initialStream(10, parseFilter('completion:*'));
    const last = ev('burst:tick');
    s = run(s, [
      last,
      {
        event: 'monitor:dropped',
        data: { count: 1234, first_seq: 2, last_seq: last.seq },
        seq: last.seq,
        timestamp: 1,
      },
    ]);
    expect(s.dropped).toBe(1234);
    expect(s.log).toHaveLength(1);
    expect(s.log[0].kind).toBe('dropped');
  });

  it('starts seq over when the daemon restarted', () => {
    let s = run(initialStream(), [ev('x:a', {}, { seq: 500 })]);
    s = run(s, [ev('x:b', {}, { seq: 3 })]);
    expect(s.log).toHaveLength(1); // taken for a duplicate: that is why the restart must be told
    s = streamReducer(s, { type: 'daemon-restarted', now: 1 });
    s = run(s, [ev('x:b', {}, { seq: 3 })]);
    expect(s.log.map((e) => [e.event, e.epoch])).toEqual([
      ['x:a', 0],
      ['x:b', 1],
    ]);
    expect(s.restarts).toBe(1);
  });

  it('follows completions from their events', () => {
    let s = run(initialStream(), [
      ev('completion:started', { request_id: 'r1', session_id: 's1', model: 'm' }),
      ev('completion:token', { request_id: 'r1', text: 'a' }),
      ev('completion:token', { request_id: 'r1', text: 'b' }),
      ev('completion:started', { request_id: 'r2' }),
      ev('completion:error', { request_id: 'r2', error: { code: 'TIMEOUT', message: 'too slow' } }),
    ]);
    expect(s.completions.r1).toMatchObject({ status: 'running', tokens: 2, sessionId: 's1', model: 'm' });
    expect(s.completions.r2).toMatchObject({ status: 'failed', error: 'too slow' });
    s = run(s, [ev('completion:result', { request_id: 'r1', usage: { output_tokens: 10 }, cost_usd: 0.5 })]);
    expect(s.completions.r1).toMatchObject({ status: 'completed', tokens: 10, costUsd: 0.5 });
    expect(s.completionTotals).toEqual({ started: 2, completed: 1, failed: 1, cancelled: 0, tokens: 10 });
  });

  it('follows sandbox execs, agents and budget alerts', () => {
    const s = run(initialStream(), [
      ev('sandbox:exec_started', { exec_id: 'e1', language: 'python' }),
      ev('sandbox:exec_started', { exec_id: 'e2', language: 'bash' }),
      ev('sandbox:exec_finished', { exec_id: 'e2', exit_code: 1, duration_ms: 30, timed_out: false }),
      ev('agent:tool_call', { agent_id: 'a1', tool: 'kg_query', turn: 3 }),
      ev('kg:nodes_added', { count: 1 }, { context: { agent_id: 'a2' } }),
      ev('budget:warning', { scope: 'global', percent: 75 }),
    ]);
    expect(s.execs.e1.running).toBe(true);
    expect(s.execs.e2).toMatchObject({ running: false, exitCode: 1, durationMs: 30 });
    expect(s.execTotals).toEqual({ started: 2, finished: 1, failed: 1, timedOut: 0 });
    expect(s.agents.a1).toMatchObject({ tool: 'kg_query', turn: 3, lastEvent: 'agent:tool_call' });
    expect(s.agents.a2.lastEvent).toBe('kg:nodes_added');
    expect(s.alerts.map((a) => a.event)).toEqual(['budget:warning']);
  });

  it('a new filter brings back history the old one hid, in seq order', () => {
    const a = ev('completion:error', { request_id: 'r' });
    const b = ev('burst:tick');
    const c = ev('completion:error', { request_id: 's' });
    let s = run(initialStream(10, parseFilter('burst:*')), [a, b, c]);
    const f = parseFilter('completion:error');
    s = streamReducer(s, { type: 'filter', filter: f });
    expect(s.log).toHaveLength(0);
    s = streamReducer(s, { type: 'merge', events: [a, c] });
    expect(s.log.map((e) => e.seq)).toEqual([a.seq, c.seq]);
    s = streamReducer(s, { type: 'merge', events: [a, c] });
    expect(s.log).toHaveLength(2);
  });

  it('copies state once per batch, not per event', () => {
    const s0 = initialStream();
    const s1 = run(
      s0,
      Array.from({ length: 1000 }, () => ev('burst:tick')),
    );
    expect(s1).not.toBe(s0);
    expect(s0.log).toHaveLength(0); // the old state is untouched
    expect(streamReducer(s1, { type: 'tick', now: 1000 })).toBe(s1); // nothing changed, no new state
  });
});

describe('stream reducer with overlapping, rate-bounded subscriptions', () => {
  // Frames as the hook tags them: one per subscription that matched, back to back, in emit order.
  const frame = (
    via: StreamEvent['via'],
    event: string,
    n: number,
    data: Record<string, unknown> = {},
  ): StreamEvent => ({ event, data, seq: n, timestamp: 1000 + n / 1000, via });
  const report = (
    via: StreamEvent['via'],
    byEvent: Record<string, number>,
    first: number,
    last: number,
  ): StreamEvent => ({
    event: 'monitor:skipped',
    data: {
      subscription: 's-x',
      count: Object.values(byEvent).reduce((a, b) => a + b, 0),
      by_event: byEvent,
      first_seq: first,
      last_seq: last,
    },
    seq: last,
    timestamp: 1000,
    via,
  });

  it('counts each event once: by its census frame or the census report, never by the other subscriptions', () => {
    let s = run(initialStream(), [
      frame('lifecycle', 'agent:spawned', 1, { agent_id: 'a' }),
      frame('census', 'agent:spawned', 1, { agent_id: 'a' }), // the same event again: shown once, counted once
      frame('census', 'burst:tick', 2),
      frame('lifecycle', 'agent:reply', 3, { agent_id: 'a' }), // the census skipped this one
    ]);
    expect(s.received).toBe(2);
    expect(s.log.map((e) => e.seq)).toEqual([1, 2, 3]);
    // The report counts seqs 3..7: agent:reply (shown, via lifecycle) and four burst:tick nobody brought.
    s = run(s, [report('census', { 'agent:reply': 1, 'burst:tick': 4 }, 3, 7), frame('census', 'burst:tick', 8)], 1001);
    expect(s.received).toBe(8);
    expect(s.byNamespace).toEqual({ agent: 2, burst: 6 });
    expect(s.skipped).toBe(4); // only what the log lacks
    expect(s.sampling).toBe(true);
    expect(s.agents.a.status).toBe('idle');
    // Reports of the other rate-bounded subscriptions count nothing.
    const t = run(
      s,
      [report('log', { 'burst:tick': 50 }, 9, 58), report('tokens', { 'completion:token': 0 }, 9, 9)],
      1001,
    );
    expect(t.received).toBe(8);
    // Some quiet seconds later the log is no longer a sample; what it lacks stays counted.
    const later = streamReducer(s, { type: 'tick', now: 1010 });
    expect(later.sampling).toBe(false);
    expect(later.skipped).toBe(4);
  });

  it('measures the gap against the filter, and counts it in PAUSED +N', () => {
    let s = initialStream(10, parseFilter('agent:*'));
    s = streamReducer(s, { type: 'pause' });
    s = run(s, [
      frame('census', 'agent:spawned', 1),
      report('census', { 'agent:spawned': 2, 'burst:tick': 100 }, 2, 103),
    ]);
    expect(s.received).toBe(103);
    expect(s.skipped).toBe(2); // the bursts do not match the filter: nothing the log lacks
    expect(s.missed).toBe(3);
    s = streamReducer(s, { type: 'filter', filter: parseFilter('burst:*') });
    expect(s.skipped).toBe(0); // a new filter, a new question
  });

  it('counts history up to where the census began, then the census, without counting twice', () => {
    // History is asked for up to the seq the census subscription began at (monitor:events until_seq).
    const hist = Array.from({ length: 8 }, (_, i) => frame(undefined, i === 7 ? 'agent:spawned' : 'burst:tick', i + 1));
    let s = streamReducer(initialStream(), { type: 'backfill', events: hist, now: 1000, until: 8 });
    expect(s.received).toBe(8);
    // Held meanwhile: the lifecycle subscription (made first) saw seq 8 too; then the census takes over.
    s = run(s, [
      frame('lifecycle', 'agent:spawned', 8),
      frame('census', 'burst:tick', 9),
      frame('lifecycle', 'agent:reply', 10),
      report('census', { 'agent:reply': 1 }, 10, 10),
      frame('census', 'burst:tick', 11),
    ]);
    expect(s.received).toBe(11);
    expect(s.log.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(s.skipped).toBe(0); // seq 10 came through the lifecycle subscription
    // After a reconnect: history since the older of shown and counted; only what is not yet counted counts.
    s = streamReducer(s, {
      type: 'backfill',
      events: [frame(undefined, 'burst:tick', 11), frame(undefined, 'burst:tick', 12)],
      now: 1002,
      until: 12,
    });
    expect(s.received).toBe(12);
    expect(s.log).toHaveLength(12);
  });

  it('scales the tokens of skipped token events and lets the result settle, counting none twice', () => {
    let s = run(initialStream(), [
      frame('lifecycle', 'completion:started', 1, { request_id: 'r' }),
      frame('census', 'completion:token', 2, { request_id: 'r', text: 'abcdefgh' }), // not the token subscription: not counted…
      frame('tokens', 'completion:token', 2, { request_id: 'r', text: 'abcdefgh' }), // …this one is: 2 tokens
      frame('tokens', 'completion:token', 3, { request_id: 'r', text: 'abcdefgh' }),
    ]);
    expect(s.completions.r.tokens).toBe(4);
    s = run(s, [report('tokens', { 'completion:token': 10 }, 4, 13)], 1001);
    expect(s.completionTotals.tokens).toBe(24); // 10 more at the average of 2
    expect(s.completions.r.tokens).toBe(4);
    s = run(s, [frame('lifecycle', 'completion:result', 14, { request_id: 'r', usage: { output_tokens: 25 } })], 1002);
    expect(s.completions.r).toMatchObject({ status: 'completed', tokens: 25 });
    expect(s.completionTotals.tokens).toBe(25);
    expect(s.tokensPerSecond).toBeGreaterThan(0);
  });

  it('keeps what the daemon dropped out of the count when a census counts the events', () => {
    const s = run(initialStream(), [
      frame('census', 'x:a', 1),
      {
        event: 'monitor:dropped',
        data: { count: 40, first_seq: 2, last_seq: 41 },
        seq: 41,
        timestamp: 1,
        via: 'connection',
      },
    ]);
    expect(s.dropped).toBe(40);
    expect(s.received).toBe(1);
    expect(s.log.map((e) => e.kind)).toEqual(['event', 'dropped']);
  });
});

describe('layout', () => {
  it('fits 80×24 with every panel', () => {
    const l = computeLayout(80, 24);
    expect(l.height).toBe(23);
    expect(1 + l.top + l.middle + l.log + 1).toBe(23);
    expect(l.widths.reduce((a, b) => a + b)).toBe(80);
    expect(l.top).toBeGreaterThanOrEqual(6);
    expect(l.middle).toBeGreaterThanOrEqual(5);
    expect(l.log).toBeGreaterThanOrEqual(6);
    expect(focusable(l)).toHaveLength(7);
  });

  it.each([
    [120, 50],
    [100, 30],
    [60, 16],
    [40, 10],
  ])('adapts to %i×%i', (c, r) => {
    const l = computeLayout(c, r);
    expect(1 + l.top + l.middle + l.flow + l.log + 1).toBe(l.height);
    expect(l.height).toBeLessThan(r);
    expect(l.log).toBeGreaterThanOrEqual(4);
    expect(l.widths.reduce((a, b) => a + b)).toBe(Math.max(40, c));
  });

  it('gives extra rows mostly to the log', () => {
    const small = computeLayout(80, 24);
    const tall = computeLayout(80, 60);
    expect(tall.log - small.log).toBeGreaterThan(tall.top - small.top + tall.middle - small.middle);
  });
});

describe('frame clock', () => {
  it('commits on one tick and slows down under load', () => {
    vi.useFakeTimers();
    try {
      const clock = new FrameClock({ fastMs: 10, slowMs: 80, busyEvents: 5 });
      let ticks = 0;
      let load = 100;
      const off = clock.add(() => {
        ticks++;
        return load;
      });
      vi.advanceTimersByTime(10); // the first tick, at the fast pace, sees a flood
      expect(ticks).toBe(1);
      expect(clock.intervalMs).toBe(80);
      vi.advanceTimersByTime(79);
      expect(ticks).toBe(1);
      vi.advanceTimersByTime(1);
      expect(ticks).toBe(2);
      load = 0;
      vi.advanceTimersByTime(80 * 2); // two quiet ticks in a row bring the fast pace back
      expect(ticks).toBe(4);
      expect(clock.intervalMs).toBe(10);
      off();
      vi.advanceTimersByTime(1000);
      expect(ticks).toBe(4);
    } finally {
      vi.useRealTimers();
    }
  });

  it('stays slow through one quiet tick in a flood (the skipped counts come once a second, out of step)', async () => {
    const clock = new FrameClock({ fastMs: 5, slowMs: 20, busyEvents: 5 });
    // Busy, then every other tick quiet: never two quiet ticks in a row.
    const pattern = [100, 100, 0, 100, 0, 100, 0, 100, 0, 0, 0, 0];
    const intervals: number[] = [];
    let i = 0;
    await new Promise<void>((resolve) => {
      const off = clock.add(() => {
        const load = pattern[i++] ?? 0;
        queueMicrotask(() => {
          intervals.push(clock.intervalMs);
          if (i >= pattern.length) {
            off();
            resolve();
          }
        });
        return load;
      });
    });
    // After the first busy tick: slow throughout the alternation, fast after the second quiet tick in a row.
    expect(intervals.slice(0, 9)).toEqual(Array(9).fill(20));
    expect(intervals[9]).toBe(5);
  });
});
