import React from 'react';
import { Text } from 'ink';
import { Line, Panel, windowOf } from './panel.js';
import { EmptyNote } from './agents-panel.js';
import { percentTone, useTheme } from '../theme.js';
import { bar, compact, fit, usd } from '../state/format.js';
import type { BudgetView } from '../state/views.js';
import type { LogEntry } from '../state/stream.js';
import type { Probe } from '../hooks/use-daemon-poll.js';

export interface BudgetPanelProps {
  scopes: BudgetView[];
  alerts: LogEntry[];
  probe: Probe;
  width: number;
  height: number;
  focused: boolean;
  selected: number;
}

/** One gauge per scope and period, coloured at the plugin's 50/75/90 % thresholds. */
export function BudgetPanel({ scopes, alerts, probe, width, height, focused, selected }: BudgetPanelProps): React.JSX.Element {
  const theme = useTheme();
  const inner = width - 2;
  const rows = height - 2;
  const win = windowOf(scopes, selected, rows);
  const last = alerts[alerts.length - 1];
  const note = last ? (last.event === 'budget:exceeded' ? 'EXCEEDED' : 'warning') : undefined;
  return (
    <Panel title="Budget" note={note} width={width} height={height} focused={focused}>
      {scopes.length === 0 && <EmptyNote probe={probe} plugin="budget" what="no spend yet" />}
      {win.items.map((b, i) => {
        const sel = focused && win.start + i === selected;
        const pct = b.percent ?? b.percentTokens ?? null;
        const name = fit(b.period === 'total' ? b.label : `${b.label}/${b.period[0]}`, 9).padEnd(9);
        if (pct === null) {
          return (
            <Line key={b.key} selected={sel}>
              {fit(`${name} ${usd(b.spentUsd)} no limit`, inner)}
            </Line>
          );
        }
        const tail = b.limitUsd !== null ? ` ${Math.round(pct)}% ${usd(b.spentUsd)}/${usd(b.limitUsd)}` : ` ${Math.round(pct)}% ${compact(b.spentTokens ?? 0)}/${compact(b.limitTokens ?? 0)}tok`;
        const gauge = Math.max(3, inner - name.length - 1 - tail.length);
        return (
          <Line key={b.key} selected={sel}>
            {name} <Text color={theme.color(percentTone(pct))}>{bar(pct, gauge)}</Text>
            {fit(tail, Math.max(0, inner - name.length - 1 - gauge))}
          </Line>
        );
      })}
    </Panel>
  );
}



