import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type Database from 'better-sqlite3';
import { migrate, openDatabase } from '../../daemon/persistence.js';
import { BudgetLedger } from '../../plugins/budget/ledger.js';
import { PriceTable } from '../../plugins/budget/prices.js';
import { MIGRATIONS as BUDGET, statements } from '../../plugins/budget/store.js';
import { Journal, MIGRATIONS as COMPLETION } from '../../plugins/completion/journal.js';

const plan = (db: Database.Database, sql: string, ...args: unknown[]): string =>
  (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');

describe('indexes of the budget and completion tables', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const fresh = (): Database.Database => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-idx-'));
    dirs.push(dir);
    return openDatabase(dir);
  };

  it('an older database migrates, keeping its rows and numbering, and lookups by agent, session and age go through an index', () => {
    const db = fresh();
    // The schema as the first release left it, with rows in it.
    migrate(db, 'budget', BUDGET.slice(0, 1));
    // Today's ledger writes the workflow_id column a later migration adds: given it, it can write the old rows.
    db.exec(
      'ALTER TABLE budget_reservations ADD COLUMN workflow_id TEXT; ALTER TABLE budget_ledger ADD COLUMN workflow_id TEXT;',
    );
    migrate(db, 'completion', COMPLETION.slice(0, 2));
    const prices = new PriceTable({ m: { input: 3, output: 15 } });
    const old = new BudgetLedger(db, prices);
    old.reserve({ request_id: 'r1', model: 'm', input_tokens: 10, max_tokens: 10, agent_id: 'a1', session_id: 's1' });
    old.reserve({ request_id: 'r2', model: 'm', input_tokens: 10, max_tokens: 10 });
    old.reserve({ request_id: 'r0', model: 'm', input_tokens: 10, max_tokens: 10, session_id: 's1' });
    old.commit({ request_id: 'r0', usage: { input_tokens: 1_000_000, output_tokens: 0 } });
    const spentBefore = old.status({ scope: 'session', id: 's1' });
    const j = new Journal(db);
    j.insert({
      request_id: 'c1',
      session_id: null,
      agent_id: null,
      model: 'm',
      params: '{}',
      params_hash: 'h',
      context: null,
      created_at: 1,
      attempts: 0,
    });
    j.finish('c1', 'completed', { result: {}, settled: true }, 1000);
    j.insert({
      request_id: 'c2',
      session_id: null,
      agent_id: null,
      model: 'm',
      params: '{}',
      params_hash: 'h',
      context: null,
      created_at: 2,
      attempts: 0,
    });

    migrate(db, 'budget', BUDGET);
    migrate(db, 'completion', COMPLETION);
    const ledger = new BudgetLedger(db, prices);
    ledger.reserve({ request_id: 'r3', model: 'm', input_tokens: 10, max_tokens: 10, agent_id: 'a1' });

    expect(ledger.ledgerPage({ agent_id: 'a1', limit: 10 }).entries.map((e) => e.request_id)).toEqual(['r3', 'r1']);
    expect(ledger.ledgerPage({ session_id: 's1', limit: 10 }).entries.map((e) => [e.request_id, e.kind])).toEqual([
      ['r0', 'commit'],
      ['r0', 'reserve'],
      ['r1', 'reserve'],
    ]);
    expect(ledger.ledgerPage({ limit: 10 }).entries.map((e) => e.request_id)).toEqual(['r3', 'r0', 'r0', 'r2', 'r1']);
    expect(ledger.status({ scope: 'agent', id: 'a1' })[0]!.reserved_tokens).toBe(40);
    expect(ledger.status({})[0]!.reserved_tokens).toBe(60);
    // Spend recorded before the migration still counts, and settling after it adds to the same totals.
    expect(ledger.status({ scope: 'session', id: 's1' })).toEqual(spentBefore);
    expect(spentBefore[0]!.reserved_tokens).toBe(20);
    expect(ledger.status({ scope: 'session', id: 's1' })[0]!.spent_usd).toBe(3);
    ledger.commit({ request_id: 'r1', usage: { input_tokens: 1_000_000, output_tokens: 0 } });
    expect(ledger.status({ scope: 'session', id: 's1' })[0]).toMatchObject({ spent_usd: 6, reserved_tokens: 0 });
    expect(ledger.status({ scope: 'agent', id: 'a1' })[0]!.reserved_tokens).toBe(20);

    expect(plan(db, 'SELECT * FROM budget_ledger WHERE agent_id = ? ORDER BY seq DESC LIMIT 10', 'a1')).toContain(
      'INDEX budget_ledger_agent',
    );
    expect(plan(db, 'SELECT * FROM budget_ledger WHERE session_id = ? ORDER BY seq DESC LIMIT 10', 's1')).toContain(
      'INDEX budget_ledger_session',
    );
    const st = statements(db);
    expect(plan(db, st.reservedAgent.source, 'a1')).toContain('INDEX budget_reservations_agent');
    expect(plan(db, st.reservedSession.source, 's1')).toContain('INDEX budget_reservations_session');

    // Pruning goes by age through the finished index, and removes only finished rows old enough.
    const prune = (j as unknown as { stmts: { prune: { source: string } } }).stmts.prune.source;
    expect(plan(db, prune, 5000)).toContain('INDEX completion_requests_finished');
    expect(j.prune(5000)).toBe(1);
    expect(j.get('c1')).toBeUndefined();
    expect(j.get('c2')?.status).toBe('queued');

    // The rebuilt tables kept their rows and numbering, and number on from there.
    const seqs = ledger.ledgerPage({ limit: 10 }).entries.map((e) => e.seq as number);
    expect(seqs).toEqual([6, 5, 4, 3, 2, 1]);
    j.insert({
      request_id: 'c3',
      session_id: null,
      agent_id: null,
      model: 'm',
      params: '{}',
      params_hash: 'h',
      context: null,
      created_at: 3,
      attempts: 0,
    });
    expect(j.get('c3')!.seq).toBeGreaterThan(j.get('c2')!.seq);
    expect(j.get('c2')!.first_attempt).toBe(1);
    expect(
      db.prepare("SELECT name FROM sqlite_sequence WHERE name IN ('budget_ledger', 'completion_requests')").all(),
    ).toEqual([]);
  });
});
