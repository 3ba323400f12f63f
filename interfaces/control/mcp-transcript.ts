/** An agent's history (agent:info) as a Markdown transcript, for the MCP resource and the chat. */

type Block = Record<string, unknown>;
interface Message {
  role: 'user' | 'assistant';
  content: string | Block[];
}

const MAX_RESULT = 4000;
const clip = (s: string): string =>
  s.length <= MAX_RESULT ? s : `${s.slice(0, MAX_RESULT)}… (${s.length - MAX_RESULT} more characters)`;

function resultText(b: Block): string {
  const c = b.content;
  if (typeof c === 'string') return c;
  if (Array.isArray(c))
    return (c as Block[]).map((x) => (x.type === 'text' ? String(x.text ?? '') : `[${String(x.type)}]`)).join('\n');
  return '';
}

/** Markdown of one message's blocks: text as is, tool calls and results as short quoted lines. */
export function messageMarkdown(m: Message): string {
  if (typeof m.content === 'string') return m.content;
  const out: string[] = [];
  for (const b of m.content) {
    if (b.type === 'text') out.push(String(b.text ?? ''));
    else if (b.type === 'tool_use') out.push(`> **tool call** \`${String(b.name)}\` \`${JSON.stringify(b.input)}\``);
    else if (b.type === 'tool_result')
      out.push(`> **tool result**${b.is_error ? ' (error)' : ''}\n>\n> ${clip(resultText(b)).replace(/\n/g, '\n> ')}`);
  }
  return out.join('\n\n');
}

export function transcript(info: Record<string, unknown>): string {
  const history = (info.history ?? []) as Message[];
  const head = [
    `# Agent ${String(info.agent_id)}`,
    '',
    `profile: ${String(info.profile ?? '-')} · model: ${String(info.model ?? 'default')} · status: ${String(info.status)} · messages: ${String(info.history_length ?? history.length)}`,
  ];
  if (Number(info.history_length ?? 0) > history.length)
    head.push('', `(the oldest ${Number(info.history_length) - history.length} messages are not shown)`);
  const body = history.map((m) => `## ${m.role}\n\n${messageMarkdown(m)}`);
  return [...head, '', ...body].join('\n') + '\n';
}
