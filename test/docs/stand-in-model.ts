/**
 * What the documentation's model says, through the tests' Messages API server: deterministic, so
 * a page's expected output can be checked, and still doing what a reader expects of an agent.
 * A request that offers `sandbox_exec` and carries a fenced python block gets that code as a tool
 * call; a tool result gets a reply quoting it; everything else is echoed by the server.
 */
import type { MockHandler, MockReply } from '../fixtures/messages-api-server.js';

type Block = { type?: string; text?: string; content?: unknown; name?: string };
type Message = { role?: string; content?: string | Block[] };

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content))
    return (content as Block[]).map((b) => (b.type === 'text' ? (b.text ?? '') : textOf(b.content))).join('');
  return '';
}

export const standInModel: MockHandler = (req): MockReply | undefined => {
  if (req.path !== '/v1/messages') return undefined;
  const messages = (req.body.messages ?? []) as Message[];
  const last = messages[messages.length - 1];
  if (!last || last.role !== 'user') return undefined;
  const blocks = Array.isArray(last.content) ? last.content : [];
  const result = blocks.find((b) => b.type === 'tool_result');
  if (result) return { text: `The tool answered: ${textOf(result.content).slice(0, 300)}` };
  const tools = (req.body.tools ?? []) as Block[];
  const code = /```python\n([\s\S]*?)```/.exec(textOf(last.content))?.[1];
  if (code && tools.some((t) => t.name === 'sandbox_exec')) {
    return {
      content: [{ type: 'tool_use', name: 'sandbox_exec', input: { language: 'python', code } }],
      stop_reason: 'tool_use',
    };
  }
  return undefined;
};
