/**
 * The tools an agent may call, each executed by routing an event: their input schemas (zod, also
 * sent to the model as JSON Schema), and the executors. Every executor is idempotent for a given
 * (turn, tool_use_id), so a turn resumed after a crash may run an unfinished call again safely:
 * generated node ids, message ids and child ids are derived from it.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DaemonError } from '../../daemon/plugin-api.js';
import { TOOL_NAMES, type ToolName } from './config.js';
import { formatIssues } from '../../client/issues.js';
import { runMcpTool, splitModelName, toolRefSchema, type AgentTool } from './mcp-tools.js';

const short = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 12);

export const toolInputSchemas = {
  sandbox_exec: z.strictObject({
    language: z.enum(['python', 'bash', 'node', 'r']).register(z.globalRegistry, { description: 'Interpreter' }),
    code: z.string().min(1).max(200_000).register(z.globalRegistry, {
      description: 'Source code to run in an isolated container with no network; print what you need to see',
    }),
    timeout_s: z
      .number()
      .positive()
      .max(600)
      .optional()
      .register(z.globalRegistry, { description: 'Wall-clock limit in seconds' }),
  }),
  kg_add: z
    .strictObject({
      nodes: z
        .array(
          z.strictObject({
            id: z.string().min(1).max(256).optional().register(z.globalRegistry, {
              description: 'Stable id (re-adding it replaces the properties); generated when absent',
            }),
            label: z.string().min(1).max(64).register(z.globalRegistry, {
              description: 'Label such as Finding, Hypothesis, Experiment, Concept, Paper, Dataset, Method',
            }),
            properties: z
              .record(z.string(), z.unknown())
              .optional()
              .register(z.globalRegistry, { description: 'Scalar (or list of scalar) properties' }),
          }),
        )
        .max(500)
        .optional()
        .register(z.globalRegistry, { description: 'Nodes to add' }),
      edges: z
        .array(
          z.strictObject({
            from: z.string().min(1).max(256).register(z.globalRegistry, { description: 'Source node id' }),
            to: z.string().min(1).max(256).register(z.globalRegistry, { description: 'Target node id' }),
            type: z.string().min(1).max(64).register(z.globalRegistry, {
              description: 'Relationship type such as SUPPORTS, REFUTES, TESTS, DERIVED_FROM, RELATES_TO',
            }),
            properties: z
              .record(z.string(), z.unknown())
              .optional()
              .register(z.globalRegistry, { description: 'Edge properties' }),
          }),
        )
        .max(500)
        .optional()
        .register(z.globalRegistry, { description: 'Edges to add (their endpoints must exist)' }),
    })
    .refine((v) => (v.nodes?.length ?? 0) + (v.edges?.length ?? 0) > 0, 'give nodes or edges'),
  kg_query: z.strictObject({
    id: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .register(z.globalRegistry, { description: 'Return the neighbours of this node' }),
    depth: z
      .number()
      .int()
      .min(1)
      .max(5)
      .optional()
      .register(z.globalRegistry, { description: 'Hops from id (default 1)' }),
    label: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .register(z.globalRegistry, { description: 'Without id: nodes with this label' }),
    where: z
      .record(z.string(), z.unknown())
      .optional()
      .register(z.globalRegistry, { description: 'Without id: property equality filter' }),
    limit: z
      .number()
      .int()
      .min(1)
      .max(200)
      .optional()
      .register(z.globalRegistry, { description: 'Most nodes (default 50)' }),
  }),
  message_agent: z.strictObject({
    to: z.string().min(1).max(128).register(z.globalRegistry, { description: 'The receiving agent id' }),
    content: z
      .string()
      .min(1)
      .max(100_000)
      .register(z.globalRegistry, { description: 'The message; the receiver takes a turn on it' }),
  }),
  spawn_agent: z.strictObject({
    profile: z.string().min(1).max(128).optional().register(z.globalRegistry, { description: 'Profile to spawn from' }),
    system: z
      .string()
      .max(100_000)
      .optional()
      .register(z.globalRegistry, { description: 'System prompt (overrides the profile)' }),
    model: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .register(z.globalRegistry, { description: 'Model (overrides the profile)' }),
    tools: z
      .array(toolRefSchema)
      .optional()
      .register(z.globalRegistry, { description: 'Tools for the child; only tools you have yourself' }),
    budget_usd: z
      .number()
      .positive()
      .optional()
      .register(z.globalRegistry, { description: 'Spend limit of the child' }),
    task: z
      .string()
      .min(1)
      .max(100_000)
      .optional()
      .register(z.globalRegistry, { description: "A first message; the call then waits for the child's reply" }),
  }),
} satisfies Record<ToolName, z.ZodType>;

const DESCRIPTIONS: Record<ToolName, string> = {
  sandbox_exec:
    'Run code (python, bash, node or r) in an isolated sandbox without network. Returns exit_code, stdout and stderr.',
  kg_add: 'Record nodes and typed edges in the shared knowledge graph. Returns the node ids.',
  kg_query: 'Read the knowledge graph: the neighbours of a node (id, depth), or nodes by label and property equality.',
  message_agent:
    'Send a message to another agent; it takes a turn on it later (this call does not wait for its answer).',
  spawn_agent: 'Create a child agent (optionally from a profile) and, with task, have it answer one message.',
};

/** Tool definitions for the Messages API. */
export function toolDefinitions(names: readonly ToolName[]): Array<Record<string, unknown>> {
  return names.map((name) => {
    const { $schema: _s, ...schema } = z.toJSONSchema(toolInputSchemas[name], { io: 'input' }) as Record<
      string,
      unknown
    >;
    return { name, description: DESCRIPTIONS[name], input_schema: schema };
  });
}

export interface ToolEnv {
  agentId: string;
  allowed: readonly AgentTool[];
  turnId: string;
  toolUseId: string;
  maxResultChars: number;
  /** A request made for the agent, under the turn's causality. */
  request<T = Record<string, unknown>>(event: string, data: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Whether an agent exists and who its parent is (for idempotent spawns). */
  parentOf(agentId: string): string | null | undefined;
}

export interface ToolOutcome {
  content: string;
  is_error: boolean;
  /** NOT_ALLOWED, UNKNOWN_TOOL, INVALID_INPUT, or the daemon error code of the routed event. */
  error_code: string | null;
  /** The call failed in a way that must end the turn (a loop, the budget). */
  fatal?: DaemonError;
}

const FATAL = new Set(['LOOP_DETECTED', 'BUDGET_EXCEEDED', 'SHUTTING_DOWN']);

function cut(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}… [cut: ${s.length - max} more characters]`;
}

function err(code: string, message: string, extra: Record<string, unknown> = {}): ToolOutcome {
  return { content: JSON.stringify({ error: { code, message, ...extra } }), is_error: true, error_code: code };
}

/** Run one tool call. Never throws: every failure becomes an error result the model can read. */
export async function runTool(name: string, input: unknown, env: ToolEnv): Promise<ToolOutcome> {
  if (splitModelName(name)) return runMcpTool(name, input, env);
  if (!(TOOL_NAMES as readonly string[]).includes(name)) {
    return err('UNKNOWN_TOOL', `there is no tool "${name}"; you may call: ${env.allowed.join(', ') || 'none'}`);
  }
  const tool = name as ToolName;
  if (!env.allowed.includes(tool)) {
    return err(
      'NOT_ALLOWED',
      `tool "${name}" is not allowed for this agent; you may call: ${env.allowed.join(', ') || 'none'}`,
    );
  }
  const parsed = toolInputSchemas[tool].safeParse(input);
  if (!parsed.success) {
    return err(
      'INVALID_INPUT',
      `malformed input for ${name}: ${formatIssues(parsed.error.issues, { root: '(input)' })}`,
    );
  }
  try {
    const out = await EXECUTORS[tool](parsed.data as never, env);
    return { content: cut(JSON.stringify(out), env.maxResultChars), is_error: false, error_code: null };
  } catch (e) {
    let de =
      e instanceof DaemonError ? e : new DaemonError('HANDLER_ERROR', e instanceof Error ? e.message : String(e));
    // No plugin serves the tool's events here (disabled, or not federated): say so plainly.
    if (de.code === 'UNKNOWN_EVENT')
      de = new DaemonError('UNAVAILABLE', `tool ${name} is not available on this daemon (${de.message})`);
    const o = err(de.code, de.message);
    if (FATAL.has(de.code)) o.fatal = de;
    return o;
  }
}

type Exec<N extends ToolName> = (input: z.output<(typeof toolInputSchemas)[N]>, env: ToolEnv) => Promise<unknown>;

const EXECUTORS: { [N in ToolName]: Exec<N> } = {
  async sandbox_exec(input, env) {
    const r = await env.request<Record<string, unknown>>('sandbox:exec', input);
    return {
      exit_code: r.exit_code,
      stdout: r.stdout,
      stderr: r.stderr,
      timed_out: r.timed_out,
      oom_killed: r.oom_killed,
      truncated: r.truncated,
      duration_ms: r.duration_ms,
    };
  },

  async kg_add(input, env) {
    let ids: string[] = [];
    if (input.nodes?.length) {
      const nodes = input.nodes.map((n, i) => ({
        ...n,
        id: n.id ?? `${env.agentId}.${short(`${env.turnId}/${env.toolUseId}`)}.${i}`,
      }));
      const r = await env.request<{ ids: string[] }>('kg:add_nodes', { nodes });
      ids = r.ids;
    }
    let edges: Record<string, unknown> | null = null;
    if (input.edges?.length) edges = await env.request('kg:add_edges', { edges: input.edges });
    return { node_ids: ids, edges };
  },

  async kg_query(input, env) {
    if (input.id !== undefined) {
      return env.request('kg:neighbors', { id: input.id, depth: input.depth ?? 1, limit: input.limit ?? 50 });
    }
    return env.request('kg:find', {
      ...(input.label ? { label: input.label } : {}),
      ...(input.where ? { where: input.where } : {}),
      limit: input.limit ?? 50,
    });
  },

  async message_agent(input, env) {
    if (input.to === env.agentId) throw new DaemonError('CONFLICT', 'an agent cannot message itself');
    const messageId = `m.${short(`${env.turnId}/${env.toolUseId}`)}`;
    const r = await env.request<Record<string, unknown>>('agent:message', {
      from: env.agentId,
      to: input.to,
      content: input.content,
      message_id: messageId,
    });
    return { delivered: true, message_id: r.message_id, to: input.to };
  },

  async spawn_agent(input, env) {
    const childId = `${env.agentId.slice(0, 80)}.${short(`${env.turnId}/${env.toolUseId}`)}`;
    const { task, ...spec } = input;
    const existing = env.parentOf(childId);
    if (existing === undefined)
      await env.request('agent:spawn', { ...spec, agent_id: childId, parent_id: env.agentId });
    else if (existing !== env.agentId)
      throw new DaemonError('CONFLICT', `agent ${childId} exists and is not your child`);
    if (!task) return { agent_id: childId, spawned: true };
    const r = await env.request<Record<string, unknown>>('agent:send', {
      agent_id: childId,
      message: task,
      wait: true,
      turn_id: `${childId}.t1`,
    });
    return { agent_id: childId, reply: r.reply, stop_reason: r.stop_reason };
  },
};
