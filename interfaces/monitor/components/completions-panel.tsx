import React from 'react';
import { Line, Panel, windowOf } from './panel.js';
import { EmptyNote } from './agents-panel.js';
import { statusTone, useTheme } from '../theme.js';
import { compact, fit } from '../state/format.js';
import type { CompletionsView } from '../state/views.js';
import type { StreamState } from '../state/stream.js';
import type { Probe } from '../hooks/use-daemon-poll.js';

export interface CompletionsPanelProps {
  view: CompletionsView;
  stream: StreamState;
  probe: Probe;
  width: number;
  height: number;
  focused: boolean;
  selected: number;
}

/** Completions: in flight, queued (per session when known), tokens/s, errors, then the requests. */
export function CompletionsPanel({ view, stream, probe, width, height, focused, selected }: CompletionsPanelProps): React.JSX.Element {
  const theme = useTheme();
  const inner = width - 2;
  const t = stream.completionTotals;
  const summary = `run ${view.inFlight} · q ${view.queued} · ${compact(stream.tokensPerSecond)} tok/s`;
  const sessions = view.sessions.length ? `sessions: ${view.sessions.map((s) => `${s.session}=${s.queued}`).join(' ')}` : null;
  const rows = height - 3 - (sessions ? 1 : 0);
  const win = windowOf(view.rows, selected, rows);
  const absent = probe.absent && view.rows.length === 0;
  return (
    <Panel title="Completions" note={t.failed ? `${t.failed} err` : t.completed ? `${t.completed} done` : undefined} width={width} height={height} focused={focused}>
      {absent ? (
        <EmptyNote probe={probe} plugin="completion" what="" />
      ) : (
        <>
          <Line tone={t.failed ? theme.color('warn') : undefined}>{fit(summary, inner)}</Line>
          {sessions && <Line dim>{fit(sessions, inner)}</Line>}
          {view.rows.length === 0 && <Line dim>no requests yet</Line>}
          {win.items.map((r, i) => {
            const parts = [fit(r.requestId, 12).padEnd(12), r.status];
            if (r.tokens) parts.push(`${compact(r.tokens)}tok`);
            if (r.error) parts.push(r.error);
            return (
              <Line key={r.requestId} selected={focused && win.start + i === selected} tone={theme.color(statusTone(r.status === 'failed' ? 'failed' : r.status))}>
                {fit(parts.join(' '), inner)}
              </Line>
            );
          })}
        </>
      )}
    </Panel>
  );
}
