/**
 * MCP tools for agents. `tools` may name `mcp:<server>` (every tool of a server in mcp.servers) or
 * `mcp:<server>/<tool>` (one). The model sees each as `<server>__<tool>`, with the description and
 * input schema the server declares (asked of the mcp plugin with `mcp:tools` at each model call,
 * answered from its cache), and a call is routed as `mcp:call` with the turn's causality and
 * deadline. A tool a model API would refuse is left out of the request and reported by the mcp
 * plugin (`mcp:tool_rejected`); at spawn, naming such a tool, or a server that is not configured,
 * is an error.
 */
import { z } from 'zod';
import { DaemonError, type EventContext, type PluginContext } from '../../daemon/plugin-api.js';
import { TOOL_NAMES, type ToolName } from './config.js';
import type { ToolEnv, ToolOutcome } from './tools.js';

export type McpToolRef = `mcp:${string}`;
/** A tool an agent may be given: a built-in one, or MCP tools by server. */
export type AgentTool = ToolName | McpToolRef;

export const MCP_TOOL_REF_RE = /^mcp:[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*(?:\/[^\s/]{1,256})?$/;

export const toolRefSchema = z.union([z.enum(TOOL_NAMES), z.string().regex(MCP_TOOL_REF_RE)], {
  error: `a tool is one of ${TOOL_NAMES.join(', ')}, or mcp:<server> or mcp:<server>/<tool>`,
}) as unknown as z.ZodType<AgentTool, string>;

export const isBuiltinTool = (t: string): t is ToolName => (TOOL_NAMES as readonly string[]).includes(t);

/** `mcp:<server>[/<tool>]` → its parts (tool null: every tool). */
export function parseRef(ref: string): { server: string; tool: string | null } | null {
  if (!ref.startsWith('mcp:')) return null;
  const rest = ref.slice(4);
  const i = rest.indexOf('/');
  return i < 0 ? { server: rest, tool: null } : { server: rest.slice(0, i), tool: rest.slice(i + 1) };
}

/** Whether a set of tools includes `ref` (a parent's `mcp:fs` covers a child's `mcp:fs/read_file`). */
export function covers(tools: readonly string[], ref: string): boolean {
  if (tools.includes(ref)) return true;
  const p = parseRef(ref);
  return p !== null && p.tool !== null && tools.includes(`mcp:${p.server}`);
}

/** `<server>__<tool>` → its parts; null for a name without `__` (a built-in tool). */
export function splitModelName(name: string): { server: string; tool: string } | null {
  const i = name.indexOf('__');
  return i > 0 && i + 2 < name.length ? { server: name.slice(0, i), tool: name.slice(i + 2) } : null;
}

interface ToolView {
  server: string;
  name: string;
  model_name: string;
  description: string | null;
  input_schema: Record<string, unknown>;
  problem: string | null;
}

type Ask = (event: string, data: Record<string, unknown>) => Promise<{ tools: ToolView[] }>;

function byServer(tools: readonly string[]): Map<string, Set<string> | 'all'> {
  const m = new Map<string, Set<string> | 'all'>();
  for (const t of tools) {
    const p = parseRef(t);
    if (!p) continue;
    const cur = m.get(p.server);
    if (p.tool === null || cur === 'all') m.set(p.server, 'all');
    else m.set(p.server, (cur ?? new Set()).add(p.tool));
  }
  return m;
}

/**
 * The Messages API tool definitions of an agent's MCP tools. A server that cannot be listed now is
 * left out of this call (its calls would fail too) and reported through `onError`.
 */
export async function mcpToolDefinitions(
  tools: readonly string[],
  ask: Ask,
  onError: (server: string, e: unknown) => void,
): Promise<Array<Record<string, unknown>>> {
  const wanted = byServer(tools);
  if (wanted.size === 0) return [];
  const lists = await Promise.all(
    [...wanted].map(async ([server, which]) => {
      try {
        const r = await ask('mcp:tools', { server });
        return r.tools.filter((t) => t.problem === null && (which === 'all' || which.has(t.name)));
      } catch (e) {
        onError(server, e);
        return [];
      }
    }),
  );
  return lists
    .flat()
    .map((t) => ({ name: t.model_name, description: t.description ?? t.name, input_schema: t.input_schema }));
}

/**
 * Check an agent's MCP tools at spawn: every server must be configured, and a tool named alone must
 * exist and be usable by a model. Tools of a whole server that a model would refuse, and servers
 * that cannot be reached right now, are warnings (the agent is spawned; the server may come back).
 */
export async function checkMcpTools(
  tools: readonly string[],
  request: PluginContext['request'],
  context: EventContext,
  agentId: string,
): Promise<string[]> {
  const warnings: string[] = [];
  for (const [server, which] of byServer(tools)) {
    let r: { tools: ToolView[] };
    try {
      r = await request<{ tools: ToolView[] }>('mcp:tools', { server }, { context, agentId, timeoutMs: 30_000 });
    } catch (e) {
      const de = e instanceof DaemonError ? e : new DaemonError('HANDLER_ERROR', String(e));
      if (de.code === 'NOT_FOUND')
        throw new DaemonError('NOT_FOUND', `tools: ${de.message}`, { server, ...de.details });
      if (de.code === 'UNKNOWN_EVENT')
        throw new DaemonError('UNAVAILABLE', `tools: mcp:${server} needs the mcp plugin, which is not loaded`, {
          server,
        });
      if (de.details?.server === undefined) throw de;
      warnings.push(`mcp:${server}: ${de.message}`);
      continue;
    }
    if (which === 'all') {
      for (const t of r.tools) if (t.problem) warnings.push(`mcp:${server}/${t.name} left out: ${t.problem}`);
      continue;
    }
    for (const name of which) {
      const t = r.tools.find((x) => x.name === name);
      if (!t)
        throw new DaemonError(
          'NOT_FOUND',
          `tools: MCP server ${server} has no tool "${name}" (it has: ${r.tools.map((x) => x.name).join(', ') || 'none'})`,
          { server, tool: name },
        );
      if (t.problem)
        throw new DaemonError('INVALID_DATA', `tools: mcp:${server}/${name} cannot be given to a model: ${t.problem}`, {
          server,
          tool: name,
        });
    }
  }
  return warnings;
}

interface CallAnswer {
  content?: Array<Record<string, unknown>>;
  structured_content?: unknown;
  is_error?: boolean;
}

/** An MCP result's content as the text of a tool_result. */
export function resultText(r: CallAnswer): string {
  const parts: string[] = [];
  for (const c of r.content ?? []) {
    if (c.type === 'text') parts.push(String(c.text ?? ''));
    else if (c.type === 'resource') {
      const res = (c.resource ?? {}) as Record<string, unknown>;
      parts.push(
        typeof res.text === 'string'
          ? res.text
          : `[resource ${String(res.uri ?? '')} (${String(res.mimeType ?? 'binary')})]`,
      );
    } else if (c.type === 'resource_link')
      parts.push(`[resource link ${String(c.uri ?? '')}${c.name ? ` "${String(c.name)}"` : ''}]`);
    else
      parts.push(
        `[${String(c.type)} ${String(c.mimeType ?? '')}, ${typeof c.data === 'string' ? Math.floor((c.data.length * 3) / 4) : 0} bytes]`,
      );
  }
  if (parts.length === 0 && r.structured_content !== undefined) parts.push(JSON.stringify(r.structured_content));
  return parts.join('\n');
}

/** Run `<server>__<tool>` for the model. Never throws, like every tool. */
export async function runMcpTool(name: string, input: unknown, env: ToolEnv): Promise<ToolOutcome> {
  const fail = (code: string, message: string): ToolOutcome => ({
    content: JSON.stringify({ error: { code, message } }),
    is_error: true,
    error_code: code,
  });
  const p = splitModelName(name)!;
  if (!covers(env.allowed, `mcp:${p.server}/${p.tool}`)) {
    return fail(
      'NOT_ALLOWED',
      `tool "${name}" is not allowed for this agent; you may call: ${env.allowed.join(', ') || 'none'}`,
    );
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return fail('INVALID_INPUT', `the input of ${name} must be an object`);
  try {
    const r = await env.request<CallAnswer>('mcp:call', {
      server: p.server,
      tool: p.tool,
      arguments: input as Record<string, unknown>,
    });
    const text = resultText(r);
    const cut =
      text.length <= env.maxResultChars
        ? text
        : `${text.slice(0, env.maxResultChars)}… [cut: ${text.length - env.maxResultChars} more characters]`;
    return r.is_error
      ? { content: cut, is_error: true, error_code: 'TOOL_ERROR' }
      : { content: cut, is_error: false, error_code: null };
  } catch (e) {
    const de =
      e instanceof DaemonError ? e : new DaemonError('HANDLER_ERROR', e instanceof Error ? e.message : String(e));
    const o = fail(de.code === 'UNKNOWN_EVENT' ? 'UNAVAILABLE' : de.code, de.message);
    if (de.code === 'LOOP_DETECTED' || de.code === 'BUDGET_EXCEEDED' || de.code === 'SHUTTING_DOWN') o.fatal = de;
    return o;
  }
}
