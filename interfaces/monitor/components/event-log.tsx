import React from 'react';
import { Text } from 'ink';
import { Line, Panel } from './panel.js';
import { statusTone, useTheme, type Tone } from '../theme.js';
import { clock, compact, fit, summarize } from '../state/format.js';
import type { LogEntry, StreamState } from '../state/stream.js';

export interface EventLogProps {
  stream: StreamState;
  entries: LogEntry[];
  width: number;
  height: number;
  focused: boolean;
  /** Selected entry, counted from the newest (0); null follows the tail. */
  selected: number | null;
}

function toneOf(e: LogEntry): Tone | undefined {
  if (e.kind === 'dropped') return 'warn';
  if (e.kind === 'notice') return 'info';
  if (e.event.endsWith(':error') || e.event.endsWith(':exceeded') || e.event === 'plugin:error') return 'bad';
  if (e.event.endsWith(':warning')) return 'warn';
  if (e.event === 'plugin:status') return statusTone(e.data.status);
  return undefined;
}

export function entryText(e: LogEntry, width: number): string {
  if (e.kind === 'dropped')
    return fit(
      `${clock(e.ts)} ⚠ ${String(e.data.count)} events dropped by the daemon (this monitor read too slowly)`,
      width,
    );
  if (e.kind === 'notice') return fit(`${clock(e.ts)} ‣ ${String(e.data.message)}`, width);
  const head = `${clock(e.ts)} ${e.event}`;
  const agent = e.agentId && !('agent_id' in e.data) ? ` @${e.agentId}` : '';
  return fit(`${head}${agent} ${summarize(e.data, Math.max(0, width - head.length - agent.length - 1))}`, width);
}

/** The live log: newest at the bottom; the filter, pause and sampling state in the title. */
export function EventLog({ stream, entries, width, height, focused, selected }: EventLogProps): React.JSX.Element {
  const theme = useTheme();
  const rows = Math.max(0, height - 2);
  const inner = width - 2;
  const sel = selected === null ? null : Math.min(selected, Math.max(0, entries.length - 1));
  // Keep the selected entry in view: the window ends at the newest unless the selection is older.
  const endOffset = sel === null ? 0 : Math.max(0, sel - rows + 1);
  const end = entries.length - endOffset;
  const shown = entries.slice(Math.max(0, end - rows), end);
  const title = `Events${stream.filter.text ? ` [${stream.filter.text}]` : ''}`;
  const parts = [`${compact(stream.perSecond)}/s`, `${compact(stream.received)} seen`];
  // The daemon sends the log only a sample under a flood; say so, and how much of what matches it lacks.
  if (stream.sampling) parts.push(`sampled, ${compact(stream.skipped)} skipped`);
  else if (stream.skipped) parts.push(`${compact(stream.skipped)} skipped`);
  if (stream.dropped) parts.push(`${compact(stream.dropped)} dropped`);
  if (stream.frozen) parts.unshift(`PAUSED +${compact(stream.missed)}`);
  return (
    <Panel title={title} note={parts.join(' · ')} width={width} height={height} focused={focused}>
      {shown.length === 0 && <Line dim>{stream.filter.text ? 'no events match the filter yet' : 'no events yet'}</Line>}
      {shown.map((e, i) => {
        const fromNewest = end - 1 - (Math.max(0, end - rows) + i);
        const isSel = focused && sel !== null && fromNewest === sel;
        const tone = toneOf(e);
        return (
          <Line key={`${e.epoch}:${e.seq}:${e.kind}:${i}`} selected={isSel}>
            <Text color={tone ? theme.color(tone) : undefined}>{entryText(e, inner)}</Text>
          </Line>
        );
      })}
    </Panel>
  );
}
