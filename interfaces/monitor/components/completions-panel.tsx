import React from 'react';
import { Line, Panel, windowOf } from './panel.js';
import { EmptyNote } from './agents-panel.js';
import { statusTone, useTheme } from '../theme.js';
import { compact, fit, fitMiddle, shortId, usd } from '../state/format.js';
import type { CompletionsView } from '../state/views.js';
import type { CompletionRow, StreamState } from '../state/stream.js';
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
export function CompletionsPanel({
  view,
  stream,
  probe,
  width,
  height,
  focused,
  selected,
}: CompletionsPanelProps): React.JSX.Element {
  const theme = useTheme();
  const inner = width - 2;
  const t = stream.completionTotals;
  const summary = `run ${view.inFlight} · q ${view.queued} · ${compact(stream.tokensPerSecond)} tok/s`;
  const sessions = view.sessions.length
    ? `sessions: ${view.sessions.map((s) => `${s.session}=${s.queued}`).join(' ')}`
    : null;
  const rows = height - 3 - (sessions ? 1 : 0);
  const win = windowOf(view.rows, selected, rows);
  const absent = probe.absent && view.rows.length === 0;
  return (
    <Panel
      title="Completions"
      note={t.failed ? `${t.failed} err` : t.completed ? `${t.completed} done` : undefined}
      width={width}
      height={height}
      focused={focused}
    >
      {absent ? (
        <EmptyNote probe={probe} plugin="completion" what="" />
      ) : (
        <>
          <Line tone={t.failed ? theme.color('warn') : undefined}>{fit(summary, inner)}</Line>
          {sessions && <Line dim>{fit(sessions, inner)}</Line>}
          {view.rows.length === 0 && <Line dim>no requests yet</Line>}
          {win.items.map((r, i) => {
            const text = completionRowText(r, inner);
            return (
              <Line
                key={r.requestId}
                selected={focused && win.start + i === selected}
                tone={theme.color(statusTone(r.status === 'failed' ? 'failed' : r.status))}
              >
                {text}
              </Line>
            );
          })}
        </>
      )}
    </Panel>
  );
}

/** `ada t-…9f3c2a.s1 done 60tok $0.0024`: who asked, a short id, state, then what fits of error, tokens, cost. */
export function completionRowText(r: CompletionRow, width: number): string {
  const short = fitMiddle(shortId(r.requestId), 13);
  const who = r.agentId ?? r.sessionId;
  let out = `${who ? `${fitMiddle(who, 8)} ` : ''}${short} ${r.status === 'completed' ? 'done' : r.status}`;
  // Why it failed matters more than anything else on the row: always shown, cut to fit.
  if (r.error) return fit(`${out} ${r.error}`, width);
  const extra = [r.tokens ? `${compact(r.tokens)}tok` : '', r.costUsd !== undefined ? usd(r.costUsd) : ''].filter(
    Boolean,
  );
  for (const x of extra) {
    if (out.length + 1 + x.length > width) break;
    out += ` ${x}`;
  }
  return fit(out, width);
}
