/** Building the messages of a model call from an agent's stored history. */
import type { StoredMessage } from './store.js';

type Block = Record<string, unknown>;

const sizeOf = (m: StoredMessage): number =>
  typeof m.content === 'string' ? m.content.length : JSON.stringify(m.content).length;

const blocksOf = (c: StoredMessage['content']): Block[] => (typeof c === 'string' ? [{ type: 'text', text: c }] : c);

/** True for a user message that only carries tool results (it cannot open a window: its tool_use is gone). */
function onlyToolResults(m: StoredMessage): boolean {
  return (
    m.role === 'user' &&
    typeof m.content !== 'string' &&
    m.content.length > 0 &&
    m.content.every((b) => b.type === 'tool_result')
  );
}

/**
 * The messages to send: the stored window (cut from the oldest end to at most `maxChars` of content,
 * but never below the newest user message), starting at a user message that is not a bare tool
 * result, with consecutive messages of one role merged (a turn that stopped at a tool limit leaves
 * tool results that the next user message joins).
 */
export function buildMessages(window: StoredMessage[], maxChars = Infinity): StoredMessage[] {
  // Oldest messages go first when the window is too large for the model's context.
  // Never past the newest user message that opens an exchange: the model needs the turn in flight whole.
  let floor = window.length - 1;
  while (floor > 0 && (window[floor]!.role !== 'user' || onlyToolResults(window[floor]!))) floor--;
  let total = window.reduce((n, m) => n + sizeOf(m), 0);
  let start = 0;
  for (;;) {
    while (start < floor && (window[start]!.role !== 'user' || onlyToolResults(window[start]!)))
      total -= sizeOf(window[start++]!);
    if (total <= maxChars || start >= floor) break;
    total -= sizeOf(window[start++]!);
  }
  // Only when one turn is longer than the whole window (history_window below 2 × max_turns).
  while (start < window.length && window[start]!.role !== 'user') start++;
  const out: StoredMessage[] = [];
  for (const m of window.slice(start)) {
    const prev = out[out.length - 1];
    if (prev && prev.role === m.role) prev.content = [...blocksOf(prev.content), ...blocksOf(m.content)];
    else out.push({ role: m.role, content: typeof m.content === 'string' ? m.content : [...m.content] });
  }
  return out;
}

export interface ToolUse {
  id: string;
  name: string;
  input: unknown;
}

export function toolUsesOf(content: StoredMessage['content']): ToolUse[] {
  if (typeof content === 'string') return [];
  return content
    .filter((b) => b.type === 'tool_use')
    .map((b) => ({ id: String(b.id), name: String(b.name), input: b.input }));
}

export function textOf(content: StoredMessage['content']): string {
  if (typeof content === 'string') return content;
  return content
    .filter((b) => b.type === 'text')
    .map((b) => String(b.text ?? ''))
    .join('');
}
