/**
 * What `daemon-control mcp` tells an MCP client while a long call runs: one line per event the call
 * caused (sandbox output as it streams, a turn's tokens and tool calls, a workflow's steps).
 */
import type { EventFrame } from '../../client/protocol.js';

export const PROGRESS_PATTERNS = [
  'sandbox:output',
  'completion:token',
  'agent:tool_call',
  'agent:tool_result',
  'mcp:call_started',
  'workflow:step_started',
  'workflow:step_finished',
  'workflow:step_failed',
  'workflow:waiting',
];

const MAX = 2000;
const cut = (s: string): string => (s.length <= MAX ? s : `${s.slice(0, MAX)}…`);
const brief = (v: unknown): string => {
  const s = JSON.stringify(v) ?? '';
  return s.length <= 200 ? s : `${s.slice(0, 200)}…`;
};

/** The progress message for one event, or null for an event that says nothing worth sending. */
export function progressLine(ev: EventFrame): string | null {
  const d = ev.data;
  switch (ev.event) {
    case 'sandbox:output':
      return typeof d.chunk === 'string' && d.chunk.length ? cut(d.chunk) : null;
    case 'completion:token':
      return typeof d.text === 'string' && d.text.length ? cut(d.text) : null;
    case 'agent:tool_call':
      return `→ ${String(d.name)} ${brief(d.input)}`;
    case 'agent:tool_result':
      return `← ${String(d.name)} ${d.is_error ? `failed (${String(d.error_code)})` : 'done'} in ${String(d.duration_ms)} ms`;
    case 'mcp:call_started':
      return `→ ${String(d.server)}/${String(d.tool)}`;
    default: {
      // workflow:step_started|step_finished|step_failed|waiting
      const step = d.step ?? d.step_id;
      return `${ev.event.slice(ev.event.indexOf(':') + 1).replace(/_/g, ' ')}${step !== undefined ? ` ${String(step)}` : ''}`;
    }
  }
}
