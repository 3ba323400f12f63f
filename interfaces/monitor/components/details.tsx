import React from 'react';
import { Line, Panel } from './panel.js';
import { prettyLines } from '../state/format.js';

export interface DetailsProps {
  title: string;
  body: unknown;
  loading?: boolean;
  width: number;
  height: number;
  /** First line shown (↑↓ and PgUp/PgDn scroll). */
  offset: number;
}

/** The details of the selected agent, request, scope, exec or event, as JSON, scrollable. */
export function Details({ title, body, loading, width, height, offset }: DetailsProps): React.JSX.Element {
  const rows = Math.max(1, height - 2);
  const view = prettyLines(body ?? null, width - 2, rows, offset);
  const position =
    view.total > rows ? `${view.offset + 1}–${Math.min(view.total, view.offset + rows)} of ${view.total} · ` : '';
  return (
    <Panel title={title} note={loading ? 'loading…' : `${position}esc to close`} width={width} height={height} focused>
      {view.lines.map((l, i) => (
        <Line key={i}>{l}</Line>
      ))}
    </Panel>
  );
}
