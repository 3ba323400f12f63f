import React from 'react';
import { Box } from 'ink';
import { Line, Panel, windowOf } from './panel.js';
import { EmptyNote } from './agents-panel.js';
import { useTheme } from '../theme.js';
import { fit } from '../state/format.js';
import { runLine, runTone, stepsView, type RunRow } from '../state/workflows.js';
import type { WorkflowsSnapshot } from '../hooks/use-workflows.js';

export interface WorkflowsPanelProps {
  runs: RunRow[];
  snap: WorkflowsSnapshot;
  width: number;
  height: number;
  focused: boolean;
  selected: number;
}

/** Runs on the left (↑↓ selects one), the shown run's DAG on the right: each step, its state and what it needs. */
export function WorkflowsPanel({
  runs,
  snap,
  width,
  height,
  focused,
  selected,
}: WorkflowsPanelProps): React.JSX.Element {
  const theme = useTheme();
  const rows = height - 2;
  const inner = width - 2;
  const left = Math.max(20, Math.floor(inner * 0.4));
  const right = inner - left - 1;
  const win = windowOf(runs, selected, rows);
  const view = stepsView(snap.status.data);
  const active = runs.filter((r) => r.status === 'running' || r.status === 'waiting' || r.status === 'queued').length;
  // Steps: the first that is not finished stays in view.
  const firstOpen = view
    ? Math.max(
        0,
        view.steps.findIndex((s) => s.status === 'running' || s.status === 'waiting' || s.status === 'pending'),
      )
    : 0;
  const steps = view ? windowOf(view.steps, firstOpen, rows - 1) : { start: 0, items: [] };
  return (
    <Panel
      title="Workflows"
      note={runs.length ? `${active} active` : undefined}
      width={width}
      height={height}
      focused={focused}
    >
      {runs.length === 0 ? (
        <EmptyNote probe={snap.runs} plugin="workflow" what="no runs: daemon-control run <workflow>" />
      ) : (
        <Box flexDirection="row">
          <Box flexDirection="column" width={left}>
            {win.items.map((r, i) => (
              <Line
                key={r.runId}
                selected={focused && win.start + i === selected}
                tone={theme.color(runTone(r.status))}
              >
                {fit(runLine(r), left)}
              </Line>
            ))}
          </Box>
          <Box flexDirection="column" width={right} marginLeft={1}>
            {view && (
              <Line tone={theme.color(runTone(view.status))}>
                {fit(`${view.runId} ${view.status} ${view.done}/${view.total} steps`, right)}
              </Line>
            )}
            {steps.items.map((s) => (
              <Line key={s.id} tone={theme.color(s.tone)} dim={s.status === 'pending'}>
                {fit(s.text, right)}
              </Line>
            ))}
          </Box>
        </Box>
      )}
    </Panel>
  );
}
