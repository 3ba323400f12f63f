/** Render a conversation for `conversation:export`. */
import type { ConversationRow } from './journal.js';

interface Msg {
  role: string;
  content: unknown;
  request_id: string | null;
  created_at: number;
}

function blockText(b: Record<string, unknown>): string {
  switch (b.type) {
    case 'text':
      return String(b.text ?? '');
    case 'tool_use':
      return `**tool_use** \`${String(b.name)}\` (${String(b.id)})\n\n\`\`\`json\n${JSON.stringify(b.input, null, 2)}\n\`\`\``;
    case 'tool_result': {
      const c = b.content;
      const body =
        typeof c === 'string'
          ? c
          : Array.isArray(c)
            ? c.map((x) => blockText(x as Record<string, unknown>)).join('\n')
            : '';
      return `**tool_result** (${String(b.tool_use_id)})${b.is_error ? ' — error' : ''}\n\n\`\`\`\n${body}\n\`\`\``;
    }
    case 'thinking':
      return `<details><summary>thinking</summary>\n\n${String(b.thinking ?? '')}\n\n</details>`;
    default:
      return `*[${String(b.type)} block]*`;
  }
}

export function exportConversation(c: ConversationRow, msgs: Msg[], format: 'markdown' | 'json'): string {
  if (format === 'json') return JSON.stringify({ ...c, messages: msgs }, null, 2);
  const out: string[] = [`# Conversation ${c.session_id}`, ''];
  if (c.model) out.push(`- model: ${c.model}`);
  if (c.agent_id) out.push(`- agent: ${c.agent_id}`);
  out.push(`- turns: ${c.turns}`, `- started: ${new Date(c.created_at * 1000).toISOString()}`, '');
  if (c.system) out.push('## System', '', c.system, '');
  for (const m of msgs) {
    out.push(`## ${m.role === 'user' ? 'User' : 'Assistant'}`, '');
    out.push(
      typeof m.content === 'string'
        ? m.content
        : (m.content as Array<Record<string, unknown>>).map(blockText).join('\n\n'),
      '',
    );
  }
  return out.join('\n');
}
