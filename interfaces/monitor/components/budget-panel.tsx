import React from 'react';
import { Text } from 'ink';
import { Line, Panel, windowOf } from './panel.js';
import { budgetLines, budgetNote } from './budget-lines.js';
import { EmptyNote } from './agents-panel.js';
import { percentTone, useTheme } from '../theme.js';
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
export function BudgetPanel({
  scopes,
  alerts,
  probe,
  width,
  height,
  focused,
  selected,
}: BudgetPanelProps): React.JSX.Element {
  const theme = useTheme();
  const inner = width - 2;
  const rows = height - 2;
  // Two lines per scope (gauge, then amounts) when they fit, else one.
  const perScope = scopes.length * 2 <= rows ? 2 : 1;
  const win = windowOf(scopes, selected, Math.max(1, Math.floor(rows / perScope)));
  const lines = win.items.flatMap((b, i) => budgetLines(b, win.start + i, inner, perScope));
  const note = budgetNote(alerts, scopes, Date.now() / 1000);
  return (
    <Panel title="Budget" note={note} width={width} height={height} focused={focused}>
      {scopes.length === 0 && <EmptyNote probe={probe} plugin="budget" what="no spend yet" />}
      {lines.map((l) => (
        <Line key={l.key} selected={focused && l.index === selected} dim={l.dim}>
          {l.gauge ? (
            <>
              {l.text}
              <Text color={theme.color(percentTone(l.gauge.percent))}>{l.gauge.bar}</Text>
              {l.tail}
            </>
          ) : (
            l.text
          )}
        </Line>
      ))}
    </Panel>
  );
}
