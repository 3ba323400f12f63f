import React from 'react';
import { Line, Panel } from './panel.js';
import { prettyLines } from '../state/format.js';

export interface DetailsProps {
  title: string;
  body: unknown;
  loading?: boolean;
  width: number;
  height: number;
}

/** The details of the selected agent, request, scope, exec or event, as JSON. */
export function Details({ title, body, loading, width, height }: DetailsProps): React.JSX.Element {
  const lines = prettyLines(body ?? null, width - 2, Math.max(1, height - 2));
  return (
    <Panel title={title} note={loading ? 'loading…' : 'esc to close'} width={width} height={height} focused>
      {lines.map((l, i) => (
        <Line key={i}>{l}</Line>
      ))}
    </Panel>
  );
}
