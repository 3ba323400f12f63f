/**
 * The shape of a workflow definition (DESIGN.md "workflow"): a DAG of steps, each running an event,
 * an agent turn, or waiting for a signal. Strict objects, so a misspelt key is an error rather than a
 * step that silently does less. Semantic checks (cycles, unknown needs or events, templates) are in
 * validate.ts.
 */
import { z } from 'zod';

export const STEP_ID_RE = /^[A-Za-z][A-Za-z0-9_-]{0,39}$/;
export const WORKFLOW_NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
export const INPUT_TYPES = ['string', 'number', 'integer', 'boolean', 'array', 'object'] as const;
export const ON_FAILURE = ['fail', 'continue', 'replan'] as const;

const describe = <T extends z.ZodType>(s: T, description: string): T =>
  (s as z.ZodType).register(z.globalRegistry, { description }) as T;

export const inputSpecSchema = z.strictObject({
  type: describe(z.enum(INPUT_TYPES).default('string'), 'string, number, integer, boolean, array or object'),
  required: describe(z.boolean().default(false), 'The run cannot start without it'),
  default: describe(z.unknown().optional(), 'Used when the input is not given'),
  description: z.string().max(2000).optional(),
});
export type InputSpec = z.output<typeof inputSpecSchema>;

export const agentSpecSchema = z.strictObject({
  profile: describe(
    z.string().min(1).max(128).optional(),
    'Spawn a fresh agent from this profile for the step (terminated when the step ends)',
  ),
  agent_id: describe(z.string().min(1).max(200).optional(), 'Or give the turn to this existing agent'),
  message: describe(z.string().min(1).max(1_000_000), "The turn's message (templates allowed)"),
  model: z.string().min(1).max(200).optional(),
  system: z.string().max(200_000).optional(),
  tools: z.array(z.string().min(1).max(64)).max(16).optional(),
  budget_usd: z.number().positive().max(1_000_000).optional(),
});
export type AgentSpec = z.output<typeof agentSpecSchema>;

export const retrySchema = z.strictObject({
  max_attempts: describe(z.number().int().min(1).max(100), 'Attempts in all, the first included'),
  backoff_s: describe(
    z.number().min(0).max(86_400).default(1),
    'Wait before the second attempt; doubled before each later one',
  ),
  max_backoff_s: describe(z.number().min(0).max(86_400).optional(), 'Cap on the wait between attempts'),
});

export const stepSchema = z.strictObject({
  id: describe(
    z.string().regex(STEP_ID_RE, 'a letter, then letters, digits, _ or - (at most 40)'),
    "The step's name, unique in the workflow",
  ),
  description: z.string().max(2000).optional(),
  needs: describe(z.array(z.string().min(1).max(40)).max(1000).default([]), 'Steps that must finish first'),
  event: describe(z.string().min(3).max(200).optional(), 'Run this event; the output is its answer'),
  data: describe(z.record(z.string(), z.unknown()).optional(), "The event's data (templates allowed in strings)"),
  agent: describe(agentSpecSchema.optional(), 'Run an agent turn; the output is {reply, turn_id, cost_usd}'),
  wait: describe(
    z.strictObject({ prompt: z.string().min(1).max(10_000) }).optional(),
    "Wait for workflow:signal; the output is the signal's data",
  ),
  output: describe(
    z.enum(['json', 'text']).optional(),
    "json: an agent step's output is the JSON value in its reply (else it fails, and may retry)",
  ),
  foreach: describe(
    z.string().min(1).max(1000).optional(),
    'A template naming a list: the step runs once per item ({{ item }}, {{ index }}); its output is the list of outputs',
  ),
  concurrency: describe(z.number().int().min(1).max(10_000).optional(), 'Items of a foreach running at once'),
  when: describe(
    z.string().min(1).max(1000).optional(),
    'A template: the step is skipped (output null) when it is false, null, empty or missing',
  ),
  retry: retrySchema.optional(),
  timeout_s: describe(
    z
      .number()
      .positive()
      .max(7 * 86_400)
      .optional(),
    "Each attempt's limit (a wait step's whole wait)",
  ),
  on_failure: describe(
    z.enum(ON_FAILURE).default('fail'),
    "fail the run, continue without this step's output, or replan the rest of the DAG",
  ),
});
export type StepDef = z.output<typeof stepSchema>;
export type StepInput = z.input<typeof stepSchema>;

export const definitionSchema = z.strictObject({
  name: describe(
    z.string().regex(WORKFLOW_NAME_RE, 'lowercase letters, digits, _ and - (at most 64)'),
    "The workflow's name",
  ),
  description: z.string().max(10_000).optional(),
  inputs: describe(
    z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'a name of letters, digits and _'), inputSpecSchema)
      .default({}),
    'Inputs by name: {type, required?, default?}',
  ),
  budget_usd: describe(
    z.number().positive().max(1_000_000).optional(),
    "The run's spend limit (workflow:start may override it)",
  ),
  outputs: describe(
    z.record(z.string().min(1).max(64), z.unknown()).optional(),
    "The run's outputs, as templates over steps and inputs (default: the output of every step no other step needs)",
  ),
  steps: describe(z.array(stepSchema).min(1).max(1000), 'The steps'),
});
export type Definition = z.output<typeof definitionSchema>;
export type DefinitionInput = z.input<typeof definitionSchema>;

/** What a step does. */
export const kindOf = (s: StepDef): 'event' | 'agent' | 'wait' => (s.event ? 'event' : s.agent ? 'agent' : 'wait');
