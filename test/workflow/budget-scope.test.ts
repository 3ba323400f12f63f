/** The budget's workflow scope, on the ledger itself: a run's calls reserve against the run's limit, together. */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { migrate, openDatabase } from '../../daemon/persistence.js';
import { BudgetLedger } from '../../plugins/budget/ledger.js';
import { PriceTable } from '../../plugins/budget/prices.js';
import { MIGRATIONS } from '../../plugins/budget/store.js';
import { tempHome } from '../helpers/daemon-process.js';

describe('budget scope workflow', () => {
  it('reservations of one run share its limit; spend counts to the run and to no other run', () => {
    const db = openDatabase(path.join(tempHome('agentd-wf-budget-'), 'db'));
    migrate(db, 'budget', MIGRATIONS);
    // $1 per million input and output tokens: a call of 1,000 in + 1,000 out costs at most $0.002.
    const l = new BudgetLedger(db, new PriceTable({ m: { input: 1, output: 1 } }));
    l.setLimit('workflow', 'run-a', 'total', 0.01, null);
    const reserved: string[] = [];
    for (let i = 0; i < 10; i++) {
      try {
        l.reserve({
          request_id: `a${i}`,
          model: 'm',
          input_tokens: 1000,
          max_tokens: 1000,
          workflow_id: 'run-a',
          agent_id: `ag${i}`,
        });
        reserved.push(`a${i}`);
      } catch (e) {
        expect(e as { code: string; details: Record<string, unknown> }).toMatchObject({
          code: 'BUDGET_EXCEEDED',
          details: { scope: 'workflow', id: 'run-a' },
        });
      }
    }
    expect(reserved).toHaveLength(5);
    // Another run, and calls outside any run, are not held by run-a's limit.
    l.reserve({ request_id: 'b0', model: 'm', input_tokens: 1000, max_tokens: 1000, workflow_id: 'run-b' });
    l.reserve({ request_id: 'c0', model: 'm', input_tokens: 1000, max_tokens: 1000 });
    for (const id of reserved) l.commit({ request_id: id, usage: { input_tokens: 500, output_tokens: 500 } });
    const st = l.status({ scope: 'workflow', id: 'run-a' })[0]!;
    expect(st).toMatchObject({
      scope: 'workflow',
      id: 'run-a',
      spent_usd: 0.005,
      reserved_usd: 0,
      limit_usd: 0.01,
      remaining_usd: 0.005,
    });
    expect(l.status({ scope: 'workflow', id: 'run-b' })[0]).toMatchObject({ spent_usd: 0, reserved_usd: 0.002 });
    expect(l.ledgerPage({ workflow_id: 'run-a', kind: 'commit', limit: 100 }).entries).toHaveLength(5);
  });
});
