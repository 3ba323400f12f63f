/**
 * The edge between agentd's one history format (Messages API content blocks, as conversations and
 * agents store them) and the chat completions wire format. Requests go out converted; answers come
 * back as content blocks, so a session can move between providers (a fallback) without a second
 * history. Pure functions, tested on their own.
 */
import { randomBytes } from 'node:crypto';
import { DaemonError } from '../../../daemon/plugin-api.js';
import type { ProviderMessage, ProviderRequest, ProviderUsage } from './types.js';

type Block = Record<string, unknown>;
type ChatMessage = Record<string, unknown>;

/** Options the target server needs to be told differently. */
export interface ChatRequestOptions {
  maxTokensParam: 'max_tokens' | 'max_completion_tokens';
}

const unsupported = (what: string): DaemonError =>
  new DaemonError('INVALID_DATA', `${what} cannot be sent to an OpenAI-compatible provider`, {
    issues: [{ path: ['messages'], message: what }],
  });

function textOfBlocks(blocks: Block[]): string {
  return blocks
    .filter((b) => b.type === 'text')
    .map((b) => String(b.text ?? ''))
    .join('\n');
}

/** A tool result's content (a string or blocks) as the text a tool message carries. */
function toolResultText(content: unknown): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return (content as Block[]).map((b) => (b.type === 'text' ? String(b.text ?? '') : JSON.stringify(b))).join('\n');
  }
  return JSON.stringify(content);
}

function imagePart(b: Block): Record<string, unknown> {
  const src = b.source as { type?: string; media_type?: string; data?: string; url?: string } | undefined;
  if (src?.type === 'base64')
    return { type: 'image_url', image_url: { url: `data:${src.media_type};base64,${src.data}` } };
  if (src?.type === 'url') return { type: 'image_url', image_url: { url: src.url } };
  throw unsupported(`an image with source type ${String(src?.type)}`);
}

/** Tool call ids must survive both ways; Anthropic accepts only [A-Za-z0-9_-]. */
export function toolCallId(id: unknown): string {
  const s = typeof id === 'string' ? id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) : '';
  return s || `call_${randomBytes(9).toString('hex')}`;
}

function userMessages(content: ProviderMessage['content']): ChatMessage[] {
  if (typeof content === 'string') return [{ role: 'user', content }];
  // Tool results must follow the assistant message that called the tools, so they go first.
  const out: ChatMessage[] = [];
  const parts: Array<Record<string, unknown>> = [];
  for (const b of content) {
    switch (b.type) {
      case 'tool_result':
        out.push({ role: 'tool', tool_call_id: toolCallId(b.tool_use_id), content: toolResultText(b.content) });
        break;
      case 'text':
        parts.push({ type: 'text', text: String(b.text ?? '') });
        break;
      case 'image':
        parts.push(imagePart(b));
        break;
      default:
        throw unsupported(`a user content block of type ${String(b.type)}`);
    }
  }
  if (parts.length > 0) {
    // Plain text as a string: several local servers read only string content.
    const allText = parts.every((p) => p.type === 'text');
    out.push({ role: 'user', content: allText ? parts.map((p) => p.text).join('\n') : parts });
  }
  return out;
}

function assistantMessage(content: ProviderMessage['content']): ChatMessage {
  if (typeof content === 'string') return { role: 'assistant', content };
  const calls: Array<Record<string, unknown>> = [];
  for (const b of content) {
    if (b.type === 'tool_use') {
      const input = b.input as Record<string, unknown> | undefined;
      // An unparseable call is kept as the model wrote it (see assembleToolCall).
      const args =
        input && typeof input[RAW_ARGUMENTS] === 'string' && Object.keys(input).length === 1
          ? String(input[RAW_ARGUMENTS])
          : JSON.stringify(input ?? {});
      calls.push({ id: toolCallId(b.id), type: 'function', function: { name: String(b.name), arguments: args } });
    }
    // thinking and redacted_thinking blocks are Anthropic's own; another provider cannot read them.
  }
  const text = textOfBlocks(content);
  const m: ChatMessage = { role: 'assistant', content: text.length > 0 ? text : null };
  if (calls.length > 0) m.tool_calls = calls;
  else if (m.content === null) m.content = '';
  return m;
}

function toolsOf(tools: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  return tools.map((t) => {
    // Anthropic's server tools (web search, code execution, ...) have a type; custom tools have input_schema.
    if (t.type !== undefined && t.type !== 'custom') throw unsupported(`the server tool ${String(t.type)}`);
    const fn: Record<string, unknown> = {
      name: t.name,
      parameters: t.input_schema ?? { type: 'object', properties: {} },
    };
    if (t.description !== undefined) fn.description = t.description;
    return { type: 'function', function: fn };
  });
}

function toolChoiceOf(tc: Record<string, unknown>): { choice: unknown; parallel?: boolean } {
  const parallel = tc.disable_parallel_tool_use === true ? false : undefined;
  const at = (choice: unknown) => (parallel === undefined ? { choice } : { choice, parallel });
  switch (tc.type) {
    case 'auto':
      return at('auto');
    case 'any':
      return at('required');
    case 'none':
      return at('none');
    case 'tool':
      return at({ type: 'function', function: { name: tc.name } });
    default:
      throw unsupported(`tool_choice ${String(tc.type)}`);
  }
}

/**
 * The chat completions body for a request in the Messages API's shape. Dropped, for want of a
 * counterpart: top_k, thinking, metadata and cache_control markers (OpenAI caches prompts by itself).
 */
export function toChatRequest(req: ProviderRequest, model: string, o: ChatRequestOptions): Record<string, unknown> {
  const messages: ChatMessage[] = [];
  if (req.system !== undefined) {
    const sys = typeof req.system === 'string' ? req.system : textOfBlocks(req.system);
    if (sys.length > 0) messages.push({ role: 'system', content: sys });
  }
  for (const m of req.messages) {
    if (m.role === 'user') messages.push(...userMessages(m.content));
    else messages.push(assistantMessage(m.content));
  }
  const body: Record<string, unknown> = {
    model,
    messages,
    [o.maxTokensParam]: req.max_tokens,
    stream: true,
    stream_options: { include_usage: true },
  };
  if (req.temperature !== undefined) body.temperature = req.temperature;
  if (req.top_p !== undefined) body.top_p = req.top_p;
  if (req.stop_sequences !== undefined) body.stop = req.stop_sequences;
  if (req.tools !== undefined && req.tools.length > 0) body.tools = toolsOf(req.tools);
  if (req.tool_choice !== undefined && body.tools !== undefined) {
    const { choice, parallel } = toolChoiceOf(req.tool_choice);
    body.tool_choice = choice;
    if (parallel !== undefined) body.parallel_tool_calls = parallel;
  }
  return body;
}

// ---- answers --------------------------------------------------------------------------------------

/** The key under which a tool call whose arguments are not a JSON object keeps them as written. */
export const RAW_ARGUMENTS = '_unparsed_arguments';

interface PartialCall {
  id: string;
  name: string;
  args: string;
}

/** A stream chunk's choice delta, as far as it is read here. */
export interface ChunkDelta {
  content?: string | null;
  refusal?: string | null;
  tool_calls?: Array<{
    index?: number;
    id?: string | null;
    function?: { name?: string | null; arguments?: string | null } | null;
  }> | null;
}

export interface ChunkUsage {
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
}

/**
 * Assembles an answer from stream chunks: text deltas, tool calls whose name and argument fragments
 * arrive over several chunks (by `index`; servers that omit it continue the last call unless a new id
 * starts one), the finish reason, and usage from the last chunk.
 */
export class ChatAssembler {
  text = '';
  refusal = '';
  private readonly calls: PartialCall[] = [];
  private readonly byIndex = new Map<number, PartialCall>();
  finishReason: string | null = null;
  usage: ChunkUsage | null = null;
  model: string | null = null;

  /** Returns the text delta to pass on (empty when the chunk carried none). */
  delta(d: ChunkDelta | undefined): string {
    if (!d) return '';
    for (const tc of d.tool_calls ?? []) {
      let call = tc.index !== undefined ? this.byIndex.get(tc.index) : undefined;
      if (
        !call &&
        tc.index === undefined &&
        this.calls.length > 0 &&
        !(tc.id && tc.id !== this.calls[this.calls.length - 1]!.id)
      ) {
        call = this.calls[this.calls.length - 1];
      }
      if (!call) {
        call = { id: '', name: '', args: '' };
        this.calls.push(call);
        if (tc.index !== undefined) this.byIndex.set(tc.index, call);
      }
      if (tc.id) call.id = tc.id;
      const name = tc.function?.name;
      // The name normally comes whole in the first fragment; a server repeating it must not double it.
      if (name && name !== call.name) call.name += name;
      if (tc.function?.arguments) call.args += tc.function.arguments;
    }
    if (d.refusal) this.refusal += d.refusal;
    if (d.content) {
      this.text += d.content;
      return d.content;
    }
    return '';
  }

  /** The answer as content blocks (text first, then tool calls), and the stop reason in the Messages API's terms. */
  result(): { content: Block[]; text: string; stop_reason: string | null } {
    const content: Block[] = [];
    const text = this.text + (this.refusal && !this.text ? this.refusal : '');
    if (text.length > 0) content.push({ type: 'text', text });
    for (const c of this.calls)
      content.push({ type: 'tool_use', id: toolCallId(c.id), name: c.name, input: parseArguments(c.args) });
    return {
      content,
      text,
      stop_reason: stopReasonOf(this.finishReason, this.calls.length > 0, this.refusal.length > 0),
    };
  }
}

/** Tool arguments as an object; anything else is kept as written so the model can be told what was wrong. */
export function parseArguments(args: string): Record<string, unknown> {
  if (args.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(args);
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { [RAW_ARGUMENTS]: args };
}

/**
 * finish_reason in the Messages API's terms. A server that answers tool calls with "stop" (some
 * local servers do) still ends in tool_use: the calls are what the caller must act on.
 */
export function stopReasonOf(finish: string | null, hasToolCalls: boolean, refused: boolean): string | null {
  if (hasToolCalls && (finish === 'stop' || finish === 'tool_calls' || finish === 'function_call')) return 'tool_use';
  switch (finish) {
    case 'stop':
      return refused ? 'refusal' : 'end_turn';
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    case null:
      return null;
    default:
      return finish;
  }
}

/** Usage in the Messages API's terms: cached prompt tokens are cache reads, the rest plain input. */
export function usageOf(u: ChunkUsage | null): ProviderUsage {
  const prompt = u?.prompt_tokens ?? 0;
  const cached = Math.min(prompt, u?.prompt_tokens_details?.cached_tokens ?? 0);
  return {
    input_tokens: prompt - cached,
    output_tokens: u?.completion_tokens ?? 0,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
  };
}
