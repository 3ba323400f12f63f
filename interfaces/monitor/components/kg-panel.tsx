import React from 'react';
import { Line, Panel, windowOf } from './panel.js';
import { EmptyNote } from './agents-panel.js';
import { compact, fit } from '../state/format.js';
import type { KgView } from '../state/views.js';
import type { Probe } from '../hooks/use-daemon-poll.js';

export interface KgPanelProps {
  view: KgView;
  probe: Probe;
  width: number;
  height: number;
  focused: boolean;
  selected: number;
}

/** Knowledge graph counts: nodes, edges, then labels and edge types by size. */
export function KgPanel({ view, probe, width, height, focused, selected }: KgPanelProps): React.JSX.Element {
  const inner = width - 2;
  const rows = height - 3;
  const win = windowOf(view.rows, selected, rows);
  const known = view.nodes !== undefined;
  return (
    <Panel title="Knowledge graph" width={width} height={height} focused={focused}>
      {!known ? (
        <EmptyNote probe={probe} plugin="kg" what="" />
      ) : (
        <>
          <Line>{fit(`nodes ${compact(view.nodes ?? 0)} · edges ${compact(view.edges ?? 0)}`, inner)}</Line>
          {win.items.map((r, i) => (
            <Line key={r.key} selected={focused && win.start + i === selected} dim={r.kind === 'type'}>
              {fit(`${r.kind === 'type' ? '→' : '•'} ${r.name} ${compact(r.count)}`, inner)}
            </Line>
          ))}
        </>
      )}
    </Panel>
  );
}
