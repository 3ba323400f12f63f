import React from 'react';
import { Line, Panel, windowOf } from './panel.js';
import { EmptyNote } from './agents-panel.js';
import { useTheme } from '../theme.js';
import { fit, fitMiddle, fitParts, shortId } from '../state/format.js';
import type { SandboxView } from '../state/views.js';
import type { Probe } from '../hooks/use-daemon-poll.js';

export interface SandboxPanelProps {
  view: SandboxView;
  probe: Probe;
  width: number;
  height: number;
  focused: boolean;
  selected: number;
}

/** Engine, warm pool, running execs and the latest runs. */
export function SandboxPanel({ view, probe, width, height, focused, selected }: SandboxPanelProps): React.JSX.Element {
  const theme = useTheme();
  const inner = width - 2;
  const rows = height - 3;
  const win = windowOf(view.rows, selected, rows);
  const head = view.engine
    ? view.engine.reachable
      ? fitParts(
          [
            `run ${view.running ?? 0}`,
            `pool ${view.pool?.ready ?? '?'}/${view.pool?.size ?? '?'}`,
            `sess ${view.sessions ?? 0}`,
            view.queued ? `q ${view.queued}` : '',
          ],
          inner,
          ' · ',
        )
      : `engine down: ${view.engine.reason ?? 'unreachable'}`
    : null;
  return (
    <Panel
      title="Sandbox"
      note={view.engine ? (view.engine.reachable ? 'docker ok' : 'degraded') : undefined}
      width={width}
      height={height}
      focused={focused}
    >
      {!head && view.rows.length === 0 ? (
        <EmptyNote probe={probe} plugin="sandbox" what="" />
      ) : (
        <>
          <Line tone={view.engine && !view.engine.reachable ? theme.color('warn') : undefined}>
            {fit(head ?? '', inner)}
          </Line>
          {win.items.map((r, i) => {
            const state = r.running ? 'running' : r.timedOut ? 'timeout' : `exit ${r.exitCode ?? '?'}`;
            const id = shortId(r.execId);
            const text = fitParts(
              [fitMiddle(id, 10), r.language ?? '', state, r.durationMs !== undefined ? `${r.durationMs}ms` : ''],
              inner,
              ' ',
            );
            const tone = r.running ? 'info' : r.exitCode === 0 && !r.timedOut ? 'ok' : 'bad';
            return (
              <Line key={r.execId} selected={focused && win.start + i === selected} tone={theme.color(tone)}>
                {fit(text, inner)}
              </Line>
            );
          })}
        </>
      )}
    </Panel>
  );
}
