import React from 'react';
import { Line, Panel, windowOf } from './panel.js';
import { useTheme, statusTone } from '../theme.js';
import { fit } from '../state/format.js';
import type { PluginView } from '../state/views.js';

export interface HealthPanelProps {
  plugins: PluginView[];
  width: number;
  height: number;
  focused: boolean;
  selected: number;
  /** The daemon has not answered yet. */
  waiting: boolean;
}

/** Plugins and their status (ok | degraded | failed | stopped) with the reason when not ok. */
export function HealthPanel({
  plugins,
  width,
  height,
  focused,
  selected,
  waiting,
}: HealthPanelProps): React.JSX.Element {
  const theme = useTheme();
  const rows = height - 2;
  const inner = width - 2;
  const bad = plugins.filter((p) => p.status !== 'ok').length;
  const win = windowOf(plugins, selected, rows);
  return (
    <Panel
      title="Plugins"
      note={plugins.length ? `${plugins.length - bad}/${plugins.length} ok` : undefined}
      width={width}
      height={height}
      focused={focused}
    >
      {plugins.length === 0 && <Line dim>{waiting ? 'waiting for the daemon…' : 'no plugins loaded'}</Line>}
      {win.items.map((p, i) => {
        const nameW = Math.min(12, Math.max(6, inner - 10));
        const text = `${fit(p.name, nameW).padEnd(nameW)} ${p.status}${p.reason ? ` ${p.reason}` : ''}`;
        return (
          <Line key={p.name} selected={focused && win.start + i === selected} tone={theme.color(statusTone(p.status))}>
            {fit(text, inner)}
          </Line>
        );
      })}
    </Panel>
  );
}
