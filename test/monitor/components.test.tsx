/** Panels on their own (no daemon): what a row says at 80 columns, and focus changes. */
import React from 'react';
import { describe, expect, it, vi } from 'vitest';
import { render } from 'ink-testing-library';
import { HealthPanel } from '../../interfaces/monitor/components/health-panel.js';
import { completionRowText } from '../../interfaces/monitor/components/completions-panel.js';
import { budgetLines } from '../../interfaces/monitor/components/budget-lines.js';
import { ThemeContext, plainTheme } from '../../interfaces/monitor/theme.js';
import { summarize, shortId } from '../../interfaces/monitor/state/format.js';
import { stripAnsi } from './helpers.js';

describe('panels', () => {
  it('keeps rows in place when the focus moves (no phantom border row)', async () => {
    const el = (focused: boolean): React.JSX.Element => (
      <ThemeContext.Provider value={plainTheme}>
        <HealthPanel plugins={[{ name: 'bridge', status: 'ok' }, { name: 'budget', status: 'ok' }]} width={30} height={6} focused={focused} selected={0} waiting={false} />
      </ThemeContext.Provider>
    );
    const r = render(el(false));
    for (const focused of [true, false, true]) {
      r.rerender(el(focused));
      await vi.waitFor(() => {
        const lines = stripAnsi(r.lastFrame() ?? '').split('\n');
        expect(lines[0]).toMatch(focused ? /^╔═ ▶ Plugins/ : /^╭─ Plugins/);
        expect(lines[1]).toMatch(/^[│║]bridge\s+ok/);
        expect(lines).toHaveLength(6);
      });
    }
    r.unmount();
  });

  it('writes completion rows that fit and keep the error', () => {
    const base = { requestId: 't-47f62bcb-1111-2222-3333-444455556666.s1', agentId: 'bob', tokens: 1234, costUsd: 0.0123, started: 1, updated: 2 };
    expect(completionRowText({ ...base, status: 'completed' }, 24)).toBe('bob t-47f6…s1 done'); // whole extras or none
    expect(completionRowText({ ...base, status: 'completed' }, 40)).toBe('bob t-47f6…s1 done 1.2ktok $0.01');
    expect(completionRowText({ ...base, status: 'failed', error: 'BUDGET_EXCEEDED' }, 30)).toBe('bob t-47f6…s1 failed BUDGET_E…');
  });

  it('draws budget gauges with amounts when there is room', () => {
    const b = { key: 'g', label: 'global', period: 'total', spentUsd: 7.5, limitUsd: 10, percent: 75, raw: {} };
    const [one] = budgetLines(b, 0, 22, 1);
    expect(one.text + one.gauge!.bar + one.tail).toHaveLength(22);
    expect(one.gauge!.bar).toMatch(/^█+░+$/);
    expect(one.tail).toBe('  75%');
    const two = budgetLines(b, 0, 40, 2);
    expect(two.map((l) => l.text.trim())).toEqual(['global', '$7.50 of $10.00']);
    expect(budgetLines({ ...b, limitUsd: null, percent: null }, 0, 32, 1)[0].text).toBe('global     $7.50 spent, no limit');
  });

  it('summarises events with the telling keys first and short ids', () => {
    expect(shortId('t-47f62bcb-1111-2222-3333-444455556666.s1')).toBe('t-47f62bcb….s1');
    expect(summarize({ turn_id: 't-1', name: 'kg_add', agent_id: 'ada', text: 'two words' })).toBe('agent_id=ada name=kg_add text="two words" turn_id=t-1');
    expect(summarize({ a: 'x'.repeat(100) }, 20)).toHaveLength(20);
  });
});
