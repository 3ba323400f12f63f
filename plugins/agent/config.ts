/** The `agent:` section of agentd.yaml; every key is overridable as AGENTD_AGENT_<KEY>. */
import { z } from 'zod';

/** Tools an agent may be given, by these names in `tools` and in profiles (DESIGN.md). */
export const TOOL_NAMES = ['sandbox_exec', 'kg_add', 'kg_query', 'message_agent', 'spawn_agent'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

const count = (max: number) => z.coerce.number().int().min(0).max(max);

/** Per-agent limits. Every field is optional where given (profile, spawn); config supplies defaults and caps. */
export const limitsShape = {
  max_turns: count(1000).register(z.globalRegistry, {
    description: 'Model calls per message (one turn may call the model again after each round of tool results)',
  }),
  max_tool_calls: count(10_000).register(z.globalRegistry, {
    description: 'Tool calls per message; past it the turn stops cleanly with stop_reason tool_call_limit',
  }),
  max_children: count(10_000).register(z.globalRegistry, { description: 'Live children this agent may spawn' }),
  max_depth: count(100).register(z.globalRegistry, {
    description: 'How deep its line of descendants may go (a child of a child is depth 2)',
  }),
  max_tokens: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .register(z.globalRegistry, { description: 'Output limit of each model call' }),
};
export const limitsSchema = z.object(limitsShape);
export type Limits = z.infer<typeof limitsSchema>;
export const partialLimitsSchema = limitsSchema.partial();

export const configSchema = z.object({
  profiles_dir: z
    .string()
    .default('profiles')
    .register(z.globalRegistry, { description: 'Directory of profile YAML files (relative to the repository root)' }),
  extra_profile_dirs: z
    .array(z.string())
    .default([])
    .register(z.globalRegistry, { description: 'More profile directories; a later one wins on a name clash' }),
  watch_profiles: z.coerce
    .boolean()
    .default(true)
    .register(z.globalRegistry, { description: 'Pick up profile edits without a restart (chokidar)' }),
  default_model: z.string().min(1).optional().register(z.globalRegistry, {
    description: 'Model when neither spawn nor profile names one (default: completion.default_model)',
  }),
  defaults: limitsSchema
    .default({ max_turns: 8, max_tool_calls: 16, max_children: 4, max_depth: 2, max_tokens: 1024 })
    .register(z.globalRegistry, { description: 'Limits of an agent that neither its profile nor its spawn sets' }),
  caps: limitsSchema
    .default({ max_turns: 50, max_tool_calls: 200, max_children: 32, max_depth: 5, max_tokens: 32_000 })
    .register(z.globalRegistry, { description: 'Hard ceilings: a profile or spawn asking for more gets the cap' }),
  max_agents: z.coerce.number().int().min(1).default(10_000).register(z.globalRegistry, {
    description: 'Live (not terminated) agents at once; spawning past it is OVERLOADED',
  }),
  max_queued_turns: z.coerce.number().int().min(1).default(100).register(z.globalRegistry, {
    description: 'Queued messages per agent; past it agent:send/agent:message answer OVERLOADED',
  }),
  max_concurrent_turns: z.coerce
    .number()
    .int()
    .min(1)
    .default(64)
    .register(z.globalRegistry, { description: 'Turns running at once across all agents' }),
  max_message_hops: z.coerce.number().int().min(0).default(0).register(z.globalRegistry, {
    description:
      "Agent-to-agent hops one message chain may take (0: only the router's max_depth bounds it); past it LOOP_DETECTED",
  }),
  history_window: z.coerce.number().int().min(2).max(10_000).default(200).register(z.globalRegistry, {
    description: 'Most history messages sent with each model call (oldest dropped first)',
  }),
  history_max_chars: z.coerce.number().int().min(1000).default(400_000).register(z.globalRegistry, {
    description:
      'Most characters of history content sent with each model call (about 4 per token; oldest dropped first)',
  }),
  step_timeout_ms: z.coerce
    .number()
    .int()
    .min(1000)
    .default(600_000)
    .register(z.globalRegistry, { description: 'Wait for one model call' }),
  tool_timeout_ms: z.coerce
    .number()
    .int()
    .min(1000)
    .default(120_000)
    .register(z.globalRegistry, { description: 'Wait for one tool call' }),
  max_tool_result_chars: z.coerce
    .number()
    .int()
    .min(256)
    .default(16_000)
    .register(z.globalRegistry, { description: 'A tool result longer than this is cut before it reaches the model' }),
  restart_policy: z.enum(['resume', 'fail']).default('resume').register(z.globalRegistry, {
    description: 'A turn a crash interrupted: resume it from its journal, or fail it with reason daemon_restart',
  }),
  max_resumes: z.coerce
    .number()
    .int()
    .min(0)
    .default(2)
    .register(z.globalRegistry, { description: 'Resumes of one turn before it is failed with reason daemon_restart' }),
});
export type AgentConfig = z.infer<typeof configSchema>;
