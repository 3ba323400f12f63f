/** The budget arithmetic and its atomicity, on a real SQLite database without the kernel. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BudgetLedger } from '../../plugins/budget/ledger.js';
import { GroupCommit } from '../../daemon/group-commit.js';
import { migrate, openDatabase } from '../../daemon/persistence.js';
import { PriceTable } from '../../plugins/budget/prices.js';
import { MIGRATIONS } from '../../plugins/budget/store.js';
import { DaemonError } from '../../client/errors.js';

const SHIPPED = path.resolve(import.meta.dirname, '../../plugins/budget/prices.yaml');
let dir: string;
let db: Database.Database;
let now = Date.UTC(2026, 10, 24, 12);
let ledger: BudgetLedger;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'budget-ledger-'));
  db = openDatabase(dir);
  migrate(db, 'budget', MIGRATIONS);
  now = Date.UTC(2026, 10, 24, 12);
  ledger = new BudgetLedger(db, PriceTable.load([SHIPPED], { 'test-model': { input: 1, output: 2 } }), {
    reservationTtlS: 60,
    now: () => now,
  });
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as DaemonError).code;
  }
  return undefined;
};

describe('prices', () => {
  it('ships every model the SDK knows as current, with all four rates', () => {
    const t = PriceTable.load([SHIPPED]);
    for (const m of [
      'claude-opus-4-8',
      'claude-sonnet-4-6',
      'claude-haiku-4-5',
      'claude-opus-5-5',
      'claude-sonnet-5-5',
      'claude-haiku-5-5',
      'claude-fable-5-2',
    ]) {
      const p = t.get(m);
      expect(p, m).toBeDefined();
      expect(p!.input).toBeGreaterThan(0);
      expect(p!.cache_write).toBeGreaterThan(p!.input);
      expect(p!.cache_read).toBeLessThan(p!.input);
    }
    expect(t.get('claude-haiku-4-5-20251001')).toEqual(t.get('claude-haiku-4-5'));
    expect(t.get('gpt-9')).toBeUndefined();
  });

  it('costs usage exactly, cache fields included', () => {
    const t = PriceTable.load([SHIPPED]);
    const p = t.get('claude-sonnet-4-6')!; // 3 / 15 / 3.75 / 0.30
    const nanos = t.costNanos(p, {
      input_tokens: 1_000_000,
      output_tokens: 1_000_000,
      cache_creation_input_tokens: 1_000_000,
      cache_read_input_tokens: 1_000_000,
    });
    expect(nanos / 1e9).toBeCloseTo(3 + 15 + 3.75 + 0.3, 9);
    // 1h cache writes are priced at their own rate when the API reports the split
    const split = t.costNanos(p, {
      input_tokens: 0,
      output_tokens: 0,
      cache_creation_input_tokens: 1_000_000,
      cache_creation: { ephemeral_1h_input_tokens: 1_000_000 },
    });
    expect(split / 1e9).toBeCloseTo(6, 9);
  });

  it('uses the long-context band above the threshold', () => {
    const t = PriceTable.load([SHIPPED]);
    const p = t.get('claude-haiku-5-5')!;
    expect(t.costNanos(p, { input_tokens: 100_000, output_tokens: 0 })).toBe(100_000 * 0.1 * 1000);
    expect(t.costNanos(p, { input_tokens: 100_001, output_tokens: 0 })).toBe(100_001 * 0.5 * 1000);
  });

  it('worst case prices input at the cache-write rate when caching is asked for', () => {
    const t = PriceTable.load([SHIPPED]);
    const p = t.get('claude-opus-4-8')!;
    expect(t.worstCaseNanos(p, 1000, 100, 'none')).toBe(1000 * 5000 + 100 * 25000);
    expect(t.worstCaseNanos(p, 1000, 100, '1h')).toBe(1000 * 10000 + 100 * 25000);
  });
});

describe('reservations', () => {
  it('refuses an unpriced model clearly', () => {
    expect(codeOf(() => ledger.reserve({ request_id: 'r', model: 'nope', input_tokens: 1, max_tokens: 1 }))).toBe(
      'INVALID_DATA',
    );
    expect(codeOf(() => ledger.check('nope', {}))).toBe('INVALID_DATA');
  });

  it('a limit counts spend from before it was set, and refuses what does not fit', () => {
    // test-model: $1 in, $2 out per MTok → 1000 in + 1000 out = $0.003
    ledger.reserve({ request_id: 'a', model: 'test-model', input_tokens: 1000, max_tokens: 1000, agent_id: 'x' });
    ledger.commit({ request_id: 'a', usage: { input_tokens: 1000, output_tokens: 1000 } });
    ledger.setLimit('agent', 'x', 'total', 0.004, undefined);
    const st = ledger.status({ scope: 'agent', id: 'x' })[0]!;
    expect(st.spent_usd).toBeCloseTo(0.003, 9);
    expect(st.remaining_usd).toBeCloseTo(0.001, 9);
    expect(st.percent).toBe(75);
    expect(
      codeOf(() =>
        ledger.reserve({ request_id: 'b', model: 'test-model', input_tokens: 1000, max_tokens: 1000, agent_id: 'x' }),
      ),
    ).toBe('BUDGET_EXCEEDED');
    // another agent is not limited
    expect(
      codeOf(() =>
        ledger.reserve({ request_id: 'c', model: 'test-model', input_tokens: 1000, max_tokens: 1000, agent_id: 'y' }),
      ),
    ).toBeUndefined();
    expect(ledger.reservationCount()).toBe(1);
  });

  it('50 concurrent reservations through the group commit never exceed the limit', async () => {
    const gc = new GroupCommit(db);
    ledger.setLimit('global', null, 'total', 0.01, undefined); // each needs $0.003 → at most 3 fit
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        gc.run(() =>
          ledger.reserve({ request_id: `r${i}`, model: 'test-model', input_tokens: 1000, max_tokens: 1000 }),
        ),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    expect(ok).toBe(3);
    expect(
      results
        .filter((r) => r.status === 'rejected')
        .every((r) => (r as PromiseRejectedResult).reason.code === 'BUDGET_EXCEEDED'),
    ).toBe(true);
    expect(gc.stats.commits).toBe(1); // one fsync for the lot
    const st = ledger.status({ scope: 'global' })[0]!;
    expect(st.reserved_usd).toBeCloseTo(0.009, 9);
    expect(st.reserved_usd + st.spent_usd).toBeLessThanOrEqual(0.01);
  });

  it('a token limit is enforced like a USD limit', () => {
    ledger.setLimit('session', 's1', 'daily', undefined, 1500);
    expect(
      codeOf(() =>
        ledger.reserve({
          request_id: 'a',
          model: 'test-model',
          input_tokens: 1000,
          max_tokens: 1000,
          session_id: 's1',
        }),
      ),
    ).toBe('BUDGET_EXCEEDED');
    expect(
      codeOf(() =>
        ledger.reserve({ request_id: 'b', model: 'test-model', input_tokens: 500, max_tokens: 1000, session_id: 's1' }),
      ),
    ).toBeUndefined();
  });

  it('commit replaces the reservation with actual spend, once', () => {
    ledger.reserve({ request_id: 'a', model: 'test-model', input_tokens: 1000, max_tokens: 1000 });
    const c1 = ledger.commit({ request_id: 'a', usage: { input_tokens: 10, output_tokens: 10 } });
    const c2 = ledger.commit({ request_id: 'a', usage: { input_tokens: 10, output_tokens: 10 } });
    expect(c1.already).toBe(false);
    expect(c2.already).toBe(true);
    expect(c1.cost_usd).toBeCloseTo(0.00003, 12);
    const st = ledger.status({})[0]!;
    expect(st.reserved_usd).toBe(0);
    expect(st.spent_usd).toBeCloseTo(0.00003, 12);
    expect(codeOf(() => ledger.reserve({ request_id: 'a', model: 'test-model', input_tokens: 1, max_tokens: 1 }))).toBe(
      'CONFLICT',
    );
  });

  it('release frees the reservation and spends nothing', () => {
    ledger.reserve({ request_id: 'a', model: 'test-model', input_tokens: 1000, max_tokens: 1000 });
    expect(ledger.release('a', undefined, 'cancelled').released).toBe(1);
    expect(ledger.release('a', undefined, 'cancelled').released).toBe(0);
    expect(ledger.status({})[0]).toMatchObject({ spent_usd: 0, reserved_usd: 0 });
  });

  it('warns once at 50/75/90 % and reports exceeded at 100 %', () => {
    ledger.setLimit('global', null, 'total', 0.001, undefined);
    const spend = (id: string, out: number) => {
      ledger.reserve({ request_id: id, model: 'test-model', input_tokens: 0, max_tokens: out });
      return ledger.commit({ request_id: id, usage: { input_tokens: 0, output_tokens: out } }).alerts;
    };
    expect(spend('a', 200)).toEqual([]); // 40 %
    expect(spend('b', 80).map((a) => a.data.threshold)).toEqual([50]); // 56 %
    expect(spend('c', 180).map((a) => a.data.threshold)).toEqual([75, 90]); // 92 %
    const last = spend('d', 40); // 100 %
    expect(last.map((a) => a.event)).toEqual(['budget:exceeded']);
    expect(codeOf(() => ledger.check('test-model', {}))).toBe('BUDGET_EXCEEDED');
  });

  it('daily limits start afresh the next UTC day; total keeps counting', () => {
    ledger.setLimit('global', null, 'daily', 0.004, undefined);
    ledger.reserve({ request_id: 'a', model: 'test-model', input_tokens: 1000, max_tokens: 1000 });
    ledger.commit({ request_id: 'a', usage: { input_tokens: 1000, output_tokens: 1000 } });
    expect(
      codeOf(() => ledger.reserve({ request_id: 'b', model: 'test-model', input_tokens: 1000, max_tokens: 1000 })),
    ).toBe('BUDGET_EXCEEDED');
    now += 86_400_000;
    expect(
      codeOf(() => ledger.reserve({ request_id: 'b', model: 'test-model', input_tokens: 1000, max_tokens: 1000 })),
    ).toBeUndefined();
    ledger.setLimit('global', null, 'total', 1, undefined);
    const total = ledger.status({ scope: 'global' }).find((s) => s.period === 'total')!;
    expect(total.spent_usd).toBeCloseTo(0.003, 9);
  });

  it('reconcile charges (or releases) reservations of requests no longer in flight', () => {
    ledger.reserve({
      request_id: 'lost',
      holder: 'completion',
      model: 'test-model',
      input_tokens: 1000,
      max_tokens: 1000,
    });
    ledger.reserve({
      request_id: 'alive',
      holder: 'completion',
      model: 'test-model',
      input_tokens: 1000,
      max_tokens: 1000,
    });
    ledger.reserve({ request_id: 'other', holder: 'agent', model: 'test-model', input_tokens: 1000, max_tokens: 1000 });
    const r = ledger.reconcile('completion', new Set(['alive']), 'charge', 'daemon_restart');
    expect(r).toMatchObject({ charged: 1, released: 0 });
    const st = ledger.status({})[0]!;
    expect(st.spent_usd).toBeCloseTo(0.003, 9);
    expect(st.reserved_usd).toBeCloseTo(0.006, 9);
    const page = ledger.ledgerPage({ kind: 'charge', limit: 10 });
    expect(page.entries).toHaveLength(1);
    expect(page.entries[0]).toMatchObject({ request_id: 'lost', estimated: true, reason: 'daemon_restart' });
    expect(ledger.reconcile('agent', new Set(), 'release', 'x')).toMatchObject({ released: 1 });
  });

  it('expired reservations are reconciled', () => {
    ledger.reserve({ request_id: 'a', model: 'test-model', input_tokens: 1000, max_tokens: 1000 });
    expect(ledger.expire('release').released).toBe(0);
    now += 61_000;
    expect(ledger.expire('release').released).toBe(1);
  });

  it('the ledger pages newest first and filters', () => {
    for (let i = 0; i < 25; i++) {
      ledger.reserve({
        request_id: `r${i}`,
        model: 'test-model',
        input_tokens: 1,
        max_tokens: 1,
        session_id: i % 2 ? 'odd' : 'even',
      });
    }
    const p1 = ledger.ledgerPage({ limit: 10 });
    expect(p1.entries).toHaveLength(10);
    expect(p1.entries[0]!.request_id).toBe('r24');
    const p2 = ledger.ledgerPage({ limit: 10, cursor: p1.next_cursor! });
    expect(p2.entries[0]!.request_id).toBe('r14');
    const p3 = ledger.ledgerPage({
      limit: 10,
      cursor: ledger.ledgerPage({ limit: 10, cursor: p1.next_cursor! }).next_cursor!,
    });
    expect(p3.entries).toHaveLength(5);
    expect(p3.next_cursor).toBeNull();
    expect(ledger.ledgerPage({ limit: 100, session_id: 'odd' }).entries).toHaveLength(12);
  });
});
