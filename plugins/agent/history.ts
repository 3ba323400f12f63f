/** Building the messages of a model call from an agent's stored history. */
import type { StoredMessage } from './store.js';

type Block = Record<string, unknown>;

const blocksOf = (c: StoredMessage['content']): Block[] => (typeof c === 'string' ? [{ type: 'text', text: c }] : c);

/** True for a user message that only carries tool results (it cannot open a window: its tool_use is gone). */
function onlyToolResults(m: StoredMessage): boolean {
  return m.role === 'user' && typeof m.content !== 'string' && m.content.length > 0 && m.content.every((b) => b.type === 'tool_result');
}

/**
 * The messages to send: the stored window, starting at a user message that is not a bare tool
 * result, with consecutive messages of one role merged (a turn that stopped at a tool limit leaves
 * tool results that the next user message joins).
 */
export function buildMessages(window: StoredMessage[]): StoredMessage[] {
  let start = 0;
  while (start < window.length && (window[start]!.role !== 'user' || onlyToolResults(window[start]!))) start++;
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
  return content.filter((b) => b.type === 'tool_use').map((b) => ({ id: String(b.id), name: String(b.name), input: b.input }));
}

export function textOf(content: StoredMessage['content']): string {
  if (typeof content === 'string') return content;
  return content.filter((b) => b.type === 'text').map((b) => String(b.text ?? '')).join('');
}
