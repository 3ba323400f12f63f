/** Panels on their own (no daemon): what a row says at 80 columns, and focus changes. */
import React from 'react';
import { describe, expect, it, vi } from 'vitest';
import { render } from 'ink-testing-library';
import { HealthPanel } from '../../interfaces/monitor/components/health-panel.js';
import { completionRowText } from '../../interfaces/monitor/components/completions-panel.js';
import { budgetLines, budgetNote } from '../../interfaces/monitor/components/budget-lines.js';
import { ThemeContext, plainTheme } from '../../interfaces/monitor/theme.js';
import { fitMiddle, summarize, shortId } from '../../interfaces/monitor/state/format.js';
import { stripAnsi } from './helpers.js';

describe('panels', () => {
  it('keeps rows in place when the focus moves (no phantom border row)', async () => {
    const el = (focused: boolean): React.JSX.Element => (
      <ThemeContext.Provider value={plainTheme}>
        <HealthPanel
          plugins={[
            { name: 'bridge', status: 'ok' },
            { name: 'budget', status: 'ok' },
          ]}
          width={30}
          height={6}
          focused={focused}
          selected={0}
          waiting={false}
        />
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
    const base = {
      requestId: 't-47f62bcb-1111-2222-3333-444455556666.s1',
      agentId: 'bob',
      tokens: 1234,
      costUsd: 0.0123,
      started: 1,
      updated: 2,
    };
    expect(completionRowText({ ...base, status: 'completed' }, 24)).toBe('bob t-…556666.s1 done'); // whole extras or none
    expect(completionRowText({ ...base, status: 'completed' }, 40)).toBe('bob t-…556666.s1 done 1.2ktok $0.01');
    expect(completionRowText({ ...base, status: 'failed', error: 'BUDGET_EXCEEDED' }, 30)).toBe(
      'bob t-…556666.s1 failed BUDGE…',
    );
  });

  it('keeps time-ordered ids and shared-prefix names distinguishable', () => {
    // Two requests made in the same millisecond share the whole time part of their UUIDv7.
    const a = {
      requestId: 'cmp_019ae3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b',
      agentId: 'debate-1a2b-researcher',
      status: 'running' as const,
      tokens: 0,
      started: 1,
      updated: 2,
    };
    const b = { ...a, requestId: 'cmp_019ae3c4-5d6e-7f80-8c9d-0e1f2a3b4c5d', agentId: 'debate-1a2b-critic' };
    const [ra, rb] = [completionRowText(a, 40), completionRowText(b, 40)];
    expect(ra).toBe('deb…cher cmp_…5f6a7b running');
    expect(rb).toBe('deb…itic cmp_…3b4c5d running');
    expect(fitMiddle('debate-1a2b-critic', 10)).toBe('deb…critic');
    expect(fitMiddle('short', 10)).toBe('short');
  });

  it('says EXCEEDED only while a limit is reached; a refusal shows its age, for a minute', () => {
    const gauge = { key: 'g', label: 'global', period: 'daily', spentUsd: 0.2, limitUsd: 1, percent: 20, raw: {} };
    const refused = [{ event: 'budget:exceeded', ts: 1000, data: { reason: 'reservation_refused' } }];
    expect(budgetNote(refused, [gauge], 1005)).toBe('refused 5s ago');
    expect(budgetNote(refused, [gauge], 1000 + 3600)).toBeUndefined();
    expect(budgetNote(refused, [{ ...gauge, spentUsd: 1, percent: 100 }], 1000 + 3600)).toBe('EXCEEDED');
    expect(budgetNote([{ event: 'budget:warning', ts: 1000, data: { threshold: 75 } }], [gauge], 1010)).toBe(
      'warning 75% 10s ago',
    );
  });

  it('draws budget gauges with amounts when there is room', () => {
    const b = { key: 'g', label: 'global', period: 'total', spentUsd: 7.5, limitUsd: 10, percent: 75, raw: {} };
    const [one] = budgetLines(b, 0, 22, 1);
    expect(one.text + one.gauge!.bar + one.tail).toHaveLength(22);
    expect(one.gauge!.bar).toMatch(/^█+░+$/);
    expect(one.tail).toBe('  75%');
    const two = budgetLines(b, 0, 40, 2);
    expect(two.map((l) => l.text.trim())).toEqual(['global', '$7.50 of $10.00']);
    expect(budgetLines({ ...b, limitUsd: null, percent: null }, 0, 32, 1)[0].text).toBe(
      'global     $7.50 spent, no limit',
    );
  });

  it('summarises events with the telling keys first and short ids', () => {
    expect(shortId('t-47f62bcb-1111-2222-3333-444455556666.s1')).toBe('t-…556666.s1');
    expect(summarize({ turn_id: 't-1', name: 'kg_add', agent_id: 'ada', text: 'two words' })).toBe(
      'agent_id=ada name=kg_add text="two words" turn_id=t-1',
    );
    expect(summarize({ a: 'x'.repeat(100) }, 20)).toHaveLength(20);
  });
});
