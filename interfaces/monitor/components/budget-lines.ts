import { bar, compact, fit, fitMiddle, usd } from '../state/format.js';
import type { BudgetView } from '../state/views.js';

export interface BudgetLine {
  key: string;
  /** Index of the scope in the list (for selection). */
  index: number;
  text: string;
  gauge?: { bar: string; percent: number };
  tail?: string;
  dim?: boolean;
}

/**
 * The lines of one scope: `name ██████░░░░ 62%` and, when there is room, `  $6.20 of $10.00`.
 * A scope without a limit shows its spend only.
 */
export function budgetLines(b: BudgetView, index: number, width: number, perScope: 1 | 2 | number): BudgetLine[] {
  const pct = b.percent ?? b.percentTokens ?? null;
  // Both ends: `agent:researcher-1/daily` and `…-2/daily` differ in the middle, a period at the end.
  const name = fitMiddle(b.period === 'total' ? b.label : `${b.label}/${b.period}`, 10).padEnd(10);
  const amounts =
    b.limitUsd !== null
      ? `${usd(b.spentUsd)} of ${usd(b.limitUsd)}`
      : b.limitTokens
        ? `${compact(b.spentTokens ?? 0)} of ${compact(b.limitTokens)} tok`
        : `${usd(b.spentUsd)} spent, no limit`;
  if (pct === null) return [{ key: b.key, index, text: fit(`${name} ${amounts}`, width) }];
  const pctText = ` ${Math.round(pct)}%`.padStart(5);
  // On one line the amounts come along only if the gauge keeps some room.
  const inline =
    perScope < 2 && width - name.length - 1 - pctText.length - amounts.length - 1 >= 8 ? ` ${amounts}` : '';
  const gaugeW = Math.max(3, width - name.length - 1 - pctText.length - inline.length);
  const first: BudgetLine = {
    key: b.key,
    index,
    text: `${name} `,
    gauge: { bar: bar(pct, gaugeW), percent: pct },
    tail: fit(pctText + inline, Math.max(0, width - name.length - 1 - gaugeW)),
  };
  return perScope < 2 ? [first] : [first, { key: `${b.key}+`, index, text: fit(`  ${amounts}`, width), dim: true }];
}

/** How long a refusal or a warning stays in the Budget panel's title. */
export const ALERT_SHOWN_S = 60;

/**
 * The Budget panel's title note. `EXCEEDED` while a gauge is at its limit (the state, from the
 * last `budget:status`); otherwise the latest refusal or warning with its age, for a minute: a
 * refused call is an event, not a state, and must not read as one long after it happened.
 */
export function budgetNote(
  alerts: Array<{ event: string; ts: number; data: Record<string, unknown> }>,
  scopes: BudgetView[],
  nowS: number,
): string | undefined {
  if (scopes.some((b) => (b.percent ?? 0) >= 100 || (b.percentTokens ?? 0) >= 100)) return 'EXCEEDED';
  const last = alerts[alerts.length - 1];
  if (!last) return undefined;
  const age = Math.max(0, Math.round(nowS - last.ts));
  if (age > ALERT_SHOWN_S) return undefined;
  if (last.event === 'budget:exceeded')
    return last.data.reason === 'limit_reached' ? `limit reached ${age}s ago` : `refused ${age}s ago`;
  return typeof last.data.threshold === 'number'
    ? `warning ${last.data.threshold}% ${age}s ago`
    : `warning ${age}s ago`;
}
