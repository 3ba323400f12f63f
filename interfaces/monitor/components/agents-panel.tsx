import React from 'react';
import { Line, Panel, windowOf } from './panel.js';
import { statusTone, useTheme } from '../theme.js';
import { fit, fitMiddle, usd } from '../state/format.js';
import type { AgentView } from '../state/views.js';
import type { Probe } from '../hooks/use-daemon-poll.js';

export interface AgentsPanelProps {
  agents: AgentView[];
  probe: Probe;
  width: number;
  height: number;
  focused: boolean;
  selected: number;
}

/** Agents: status, current turn, tool in use, spend. */
export function AgentsPanel({ agents, probe, width, height, focused, selected }: AgentsPanelProps): React.JSX.Element {
  const theme = useTheme();
  const rows = height - 2;
  const inner = width - 2;
  const win = windowOf(agents, selected, rows);
  const active = agents.filter((a) => a.status !== 'terminated').length;
  const idW = Math.min(10, Math.max(2, ...win.items.map((a) => a.id.length)));
  return (
    <Panel
      title="Agents"
      note={agents.length ? `${active} active` : undefined}
      width={width}
      height={height}
      focused={focused}
    >
      {agents.length === 0 && <EmptyNote probe={probe} plugin="agent" what="no agents" />}
      {win.items.map((a, i) => {
        const parts = [fitMiddle(a.id, idW).padEnd(idW), a.status ?? '?'];
        // The current turn while running, else the last one.
        if (a.turn !== undefined) parts.push(`t${a.status === 'running' ? a.turn + 1 : a.turn}`);
        if (a.tool) parts.push(`⚙${a.tool}`);
        if (a.spendUsd !== undefined) parts.push(usd(a.spendUsd));
        return (
          <Line key={a.id} selected={focused && win.start + i === selected} tone={theme.color(statusTone(a.status))}>
            {fit(parts.join(' '), inner)}
          </Line>
        );
      })}
    </Panel>
  );
}

/** What an empty panel says: the plugin is absent, unavailable, or simply has nothing yet. */
export function EmptyNote({ probe, plugin, what }: { probe: Probe; plugin: string; what: string }): React.JSX.Element {
  if (probe.absent) return <Line dim>{`${plugin}: not loaded`}</Line>;
  if (probe.error && !probe.data) return <Line dim>{`${probe.error.code}: ${probe.error.message}`}</Line>;
  if (!probe.data && !probe.at) return <Line dim>…</Line>;
  return <Line dim>{what}</Line>;
}
