/** Event schemas of the agent plugin: requests (validated by the router) and emitted events (documentation and tests). */
import { z } from 'zod';
import { partialLimitsSchema, TOOL_NAMES } from './config.js';
import { toolRefSchema } from './mcp-tools.js';

export const AGENT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
export const agentId = z.string().regex(AGENT_ID_RE, 'letters, digits and ._:@- (1-128, starting alphanumeric)');
const toolName = toolRefSchema;
const content = z
  .string()
  .min(1)
  .max(1_000_000)
  .refine((s) => s.trim().length > 0, 'message is blank');

/**
 * Metadata is stored as JSON, and JSON.stringify recurses: a value nested thousands deep overflows the
 * stack. The socket refuses such frames before parsing them; this holds for callers inside the daemon
 * (an agent's spawn_agent tool) too.
 */
const MAX_METADATA_DEPTH = 32;

function nestsDeeper(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

export const spawnSchema = z.object({
  agent_id: agentId.optional().register(z.globalRegistry, {
    description: 'Your own id for the agent (generated when absent); an id in use is CONFLICT',
  }),
  profile: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .register(z.globalRegistry, { description: 'A profile name (agent:profiles); the fields below override it' }),
  model: z.string().min(1).max(200).optional().register(z.globalRegistry, {
    description: "Model id or alias (default: the profile's, else agent.default_model, else completion.default_model)",
  }),
  system: z.string().max(200_000).optional().register(z.globalRegistry, { description: 'System prompt' }),
  tools: z
    .array(toolName)
    .max(100)
    .optional()
    .register(z.globalRegistry, {
      description: `Tools it may call: ${TOOL_NAMES.join(', ')}, mcp:<server> (every tool of an MCP server in mcp.servers) or mcp:<server>/<tool>`,
    }),
  limits: partialLimitsSchema.optional().register(z.globalRegistry, {
    description: 'max_turns, max_tool_calls, max_children, max_depth, max_tokens (bounded by agent.caps)',
  }),
  budget_usd: z
    .number()
    .positive()
    .max(1_000_000)
    .optional()
    .register(z.globalRegistry, { description: 'Spend limit of this agent, kept by the budget plugin (scope agent)' }),
  metadata: z
    .record(z.string(), z.unknown())
    .refine(
      (m) => !nestsDeeper(m, MAX_METADATA_DEPTH),
      `nests deeper than ${MAX_METADATA_DEPTH} levels of objects and arrays`,
    )
    .optional()
    .register(z.globalRegistry, {
      description: `Free-form data kept with the agent (at most ${MAX_METADATA_DEPTH} levels deep)`,
    }),
  parent_id: agentId.optional().register(z.globalRegistry, {
    description: 'Spawn as a child of this agent (its caps on children and depth apply)',
  }),
  stream: z.boolean().optional().register(z.globalRegistry, {
    description: "Stream its model calls' text as completion:token events (with its agent_id), for live front ends",
  }),
});
export type SpawnInput = z.output<typeof spawnSchema>;

export const sendSchema = z.object({
  agent_id: agentId.describe('The agent'),
  message: content.describe('The user message for this turn'),
  wait: z.boolean().default(true).register(z.globalRegistry, {
    description: 'Answer with the turn\'s outcome (true) or at once with {turn_id, status: "queued"} (false)',
  }),
  turn_id: z.string().regex(AGENT_ID_RE).max(100).optional().register(z.globalRegistry, {
    description:
      'Your own id for the turn; sending the same message with it again returns that turn instead of a new one',
  }),
  goal: z.string().min(1).max(20_000).optional().register(z.globalRegistry, {
    description:
      'The goal this turn works on: a trace of it (or of a goal alike) is followed with no model call, and a turn that succeeds is kept as a trace (needs the trace plugin; docs/traces.md)',
  }),
  goal_mode: z.enum(['auto', 'learn', 'follow']).default('auto').register(z.globalRegistry, {
    description:
      "With goal: auto follows a trace when one is found, else learns; learn always asks the model (and keeps the turn as the goal's trace); follow answers NOT_FOUND without a trace",
  }),
});

export const messageSchema = z.object({
  from: agentId.describe('The sending agent'),
  to: agentId.describe('The receiving agent'),
  content: content.describe('The message; the receiver takes a turn on it'),
  message_id: agentId
    .optional()
    .register(z.globalRegistry, { description: 'Your own id for the message; a repeated id is delivered once' }),
});

export const listSchema = z.object({
  status: z
    .enum(['idle', 'running', 'terminated', 'live'])
    .optional()
    .register(z.globalRegistry, { description: 'Only agents in this state (live: not terminated)' }),
  parent_id: agentId.optional().register(z.globalRegistry, { description: 'Only children of this agent' }),
  limit: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(1000)
    .register(z.globalRegistry, { description: 'Most agents returned, newest first' }),
});

export const infoSchema = z.object({
  agent_id: agentId.describe('The agent'),
  history_limit: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(50)
    .register(z.globalRegistry, { description: 'Most recent history messages returned' }),
  turns_limit: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(20)
    .register(z.globalRegistry, { description: 'Most recent turns returned' }),
});

export const terminateSchema = z.object({
  agent_id: agentId.describe('The agent'),
  cascade: z.boolean().default(false).register(z.globalRegistry, { description: 'Also terminate its descendants' }),
  reason: z.string().max(500).optional().register(z.globalRegistry, { description: 'Why, kept with the agent' }),
});

export const deleteSchema = z.object({
  agent_id: agentId.describe('The agent (terminated)'),
});

export const pruneSchema = z.object({
  older_than_s: z.number().min(0).default(0).register(z.globalRegistry, {
    description: 'Only agents terminated at least this many seconds ago (default 0: every terminated agent)',
  }),
});

export const cancelSchema = z.object({
  agent_id: agentId.describe('The agent'),
  turn_id: z
    .string()
    .regex(AGENT_ID_RE)
    .max(100)
    .optional()
    .register(z.globalRegistry, { description: 'The turn (default: the one running now)' }),
});

export const profilesSchema = z.object({});

export const converseSchema = z
  .object({
    agents: z
      .array(agentId)
      .min(2)
      .max(16)
      .optional()
      .register(z.globalRegistry, { description: 'Existing agents, in speaking order (give this or profiles)' }),
    profiles: z
      .array(z.string().min(1).max(128))
      .min(2)
      .max(16)
      .optional()
      .register(z.globalRegistry, { description: 'Profiles to spawn one agent each from, in speaking order' }),
    model: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .register(z.globalRegistry, { description: "Model for agents spawned from profiles (overrides the profiles')" }),
    opening: content.describe('The topic or opening statement the first speaker answers'),
    rounds: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(3)
      .register(z.globalRegistry, { description: 'Rounds; in each, every agent speaks once' }),
    keep_agents: z.boolean().default(false).register(z.globalRegistry, {
      description: 'Keep agents spawned from profiles after the conversation (default: terminate them)',
    }),
  })
  .superRefine((v, ctx) => {
    if ((v.agents === undefined) === (v.profiles === undefined))
      ctx.addIssue({ code: 'custom', path: ['agents'], message: 'give agents or profiles (exactly one)' });
    if (v.agents && new Set(v.agents).size !== v.agents.length)
      ctx.addIssue({ code: 'custom', path: ['agents'], message: 'an agent is named twice' });
  });

export const conversationSchema = z.object({
  conversation_id: z.string().min(1).max(200).register(z.globalRegistry, { description: 'The conversation' }),
});

/** A profile file's content. */
export const profileFileSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,63}$/, 'lowercase letters, digits, _ and -')
    .optional()
    .register(z.globalRegistry, { description: 'Default: the file name' }),
  description: z.string().max(2000).optional(),
  model: z.string().min(1).max(200).optional(),
  system: z.string().max(200_000).default(''),
  tools: z.array(toolName).max(100).default([]),
  limits: partialLimitsSchema.strict().default({}),
  budget_usd: z.number().positive().max(1_000_000).optional(),
});
export type ProfileFile = z.output<typeof profileFileSchema>;

// ---- emitted events -------------------------------------------------------------------------------

const who = {
  agent_id: z.string().register(z.globalRegistry, { description: 'The agent' }),
};
const turnWho = { ...who, turn_id: z.string().register(z.globalRegistry, { description: 'The turn' }) };
const usage = z
  .object({
    input_tokens: z
      .number()
      .register(z.globalRegistry, { description: 'Input tokens (uncached) over the model calls' }),
    output_tokens: z.number().register(z.globalRegistry, { description: 'Output tokens' }),
    cache_read_input_tokens: z.number().register(z.globalRegistry, { description: 'Cache reads' }),
    cache_creation_input_tokens: z.number().register(z.globalRegistry, { description: 'Cache writes' }),
  })
  .register(z.globalRegistry, { description: "Token usage summed over the turn's model calls" });

export const spawnedEvent = z.object({
  ...who,
  profile: z.string().nullable().register(z.globalRegistry, { description: 'Profile it was spawned from' }),
  model: z
    .string()
    .nullable()
    .register(z.globalRegistry, { description: 'Its model (null: completion.default_model)' }),
  tools: z.array(z.string()).register(z.globalRegistry, { description: 'Tools it may call' }),
  parent_id: z.string().nullable().register(z.globalRegistry, { description: 'Its parent agent' }),
  depth: z.number().register(z.globalRegistry, { description: '0 for a root agent, parent depth + 1 for a child' }),
  budget_usd: z.number().nullable().register(z.globalRegistry, { description: 'Its spend limit' }),
});
export const turnStartedEvent = z.object({
  ...turnWho,
  source: z.enum(['send', 'message', 'converse']).register(z.globalRegistry, { description: 'What started it' }),
  from: z.string().nullable().register(z.globalRegistry, { description: 'The sending agent of a message' }),
  resumed: z.boolean().register(z.globalRegistry, { description: 'True when resumed after a daemon restart' }),
  goal: z
    .string()
    .optional()
    .register(z.globalRegistry, { description: 'The goal of a turn given one (agent:send {goal})' }),
});
export const toolCallEvent = z.object({
  ...turnWho,
  tool_use_id: z.string().register(z.globalRegistry, { description: "The model's id for the call" }),
  name: z.string().register(z.globalRegistry, { description: 'Tool name' }),
  input: z.unknown().register(z.globalRegistry, { description: 'Tool input as the model gave it' }),
});
export const toolResultEvent = z.object({
  ...turnWho,
  tool_use_id: z.string().register(z.globalRegistry, { description: "The model's id for the call" }),
  name: z.string().register(z.globalRegistry, { description: 'Tool name' }),
  is_error: z
    .boolean()
    .register(z.globalRegistry, { description: 'The call failed or was refused; the model was told why' }),
  error_code: z.string().nullable().register(z.globalRegistry, {
    description: 'Error code when is_error (e.g. NOT_ALLOWED, INVALID_INPUT, UNAVAILABLE)',
  }),
  duration_ms: z.number().register(z.globalRegistry, { description: 'How long the call took' }),
});
export const replyEvent = z.object({
  ...turnWho,
  text: z.string().register(z.globalRegistry, { description: 'The final text of the turn' }),
  stop_reason: z
    .string()
    .register(z.globalRegistry, { description: 'end_turn, max_tokens, turn_limit, tool_call_limit, ...' }),
  steps: z.number().register(z.globalRegistry, { description: 'Model calls made' }),
  tool_calls: z.number().register(z.globalRegistry, { description: 'Tool calls made' }),
  usage,
  cost_usd: z.number().register(z.globalRegistry, { description: "Cost of the turn's model calls" }),
});
export const terminatedEvent = z.object({
  ...who,
  reason: z.string().nullable().register(z.globalRegistry, { description: 'Why' }),
  cascade_from: z
    .string()
    .nullable()
    .register(z.globalRegistry, { description: 'The ancestor whose cascade terminated it' }),
});
export const errorEvent = z.object({
  ...who,
  turn_id: z.string().nullable().register(z.globalRegistry, { description: 'The turn, when one failed' }),
  code: z.string().register(z.globalRegistry, { description: 'Error code from the catalogue' }),
  message: z.string().register(z.globalRegistry, { description: 'What happened' }),
  reason: z.string().nullable().register(z.globalRegistry, { description: 'e.g. daemon_restart' }),
  agents: z
    .array(z.string())
    .optional()
    .register(z.globalRegistry, { description: 'For LOOP_DETECTED: the agents of the message chain, oldest first' }),
});
export const utteranceEvent = z.object({
  conversation_id: z.string().register(z.globalRegistry, { description: 'The conversation' }),
  round: z.number().register(z.globalRegistry, { description: 'Round, from 1' }),
  index: z.number().register(z.globalRegistry, { description: 'Utterance number in the conversation, from 0' }),
  agent_id: z.string().register(z.globalRegistry, { description: 'The speaker' }),
  text: z.string().register(z.globalRegistry, { description: 'What it said' }),
});
export const conversationEndedEvent = z.object({
  conversation_id: z.string().register(z.globalRegistry, { description: 'The conversation' }),
  status: z.enum(['completed', 'failed']).register(z.globalRegistry, { description: 'How it ended' }),
  utterances: z.number().register(z.globalRegistry, { description: 'Utterances made' }),
  error: z
    .object({ code: z.string(), message: z.string() })
    .nullable()
    .register(z.globalRegistry, { description: 'Why it failed' }),
});
export const profilesChangedEvent = z.object({
  file: z.string().register(z.globalRegistry, { description: 'The profile file that changed' }),
  change: z.enum(['loaded', 'removed', 'invalid']).register(z.globalRegistry, { description: 'What happened to it' }),
  name: z.string().nullable().register(z.globalRegistry, { description: 'The profile name' }),
  error: z.string().nullable().register(z.globalRegistry, { description: 'Why an invalid profile was not loaded' }),
});

// Answers. Loose objects: fields may be added, never removed or retyped.
const agentView = z.looseObject({
  agent_id: z.string(),
  status: z.enum(['idle', 'running', 'terminated']),
  tools: z.array(z.string()),
  parent_id: z.string().nullable(),
  depth: z.number().int(),
});
const turnAnswer = z.looseObject({ agent_id: z.string(), turn_id: z.string(), status: z.string() });
export const responses = {
  spawn: agentView,
  send: turnAnswer,
  message: z.looseObject({
    message_id: z.string(),
    to: z.string(),
    turn_id: z.string().nullable(),
    status: z.string(),
  }),
  list: z.looseObject({ agents: z.array(agentView), count: z.number().int() }),
  info: agentView,
  cancel: z.looseObject({
    agent_id: z.string(),
    turn_id: z.string().nullable(),
    cancelled: z.boolean(),
    status: z.string(),
  }),
  terminate: z.looseObject({
    agent_id: z.string(),
    status: z.literal('terminated'),
    already_terminated: z.boolean(),
    terminated: z.array(z.string()),
    cancelled_turns: z.number().int(),
  }),
  delete: z.looseObject({
    agent_id: z.string(),
    deleted: z.literal(true),
    messages: z.number().int(),
    turns: z.number().int(),
  }),
  prune: z.looseObject({
    deleted: z.array(z.string()),
    kept: z.array(z.looseObject({ agent_id: z.string(), reason: z.string() })),
  }),
  profiles: z.looseObject({
    profiles: z.array(z.looseObject({ name: z.string(), file: z.string(), tools: z.array(z.string()) })),
    invalid: z.array(z.looseObject({ file: z.string() })),
  }),
  converse: z.looseObject({ conversation_id: z.string(), status: z.string() }),
  conversation: z.looseObject({ conversation_id: z.string(), status: z.string() }),
};
