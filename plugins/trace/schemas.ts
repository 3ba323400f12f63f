/** The trace plugin's config and event schemas; the catalog and system:discover are generated from them. */
import { z } from 'zod';

const doc = <T extends z.ZodType>(s: T, description: string): T =>
  (s as z.ZodType).register(z.globalRegistry, { description }) as T;

export const configSchema = z.object({
  threshold: doc(
    z.coerce.number().min(0).max(1).default(0.75),
    'Least similarity (0..1) at which a trace of another wording of a goal is followed; chosen on the paraphrase set (docs/traces.md)',
  ),
  candidates: doc(
    z.coerce.number().int().min(1).max(1000).default(20),
    'Traces the full-text index hands to the similarity score per lookup',
  ),
  demote_below: doc(
    z.coerce.number().min(0).max(1).default(0.5),
    'A trace whose success rate falls below this after a failed follow is demoted: auto mode learns anew instead of following it',
  ),
  fallback_timeout_s: doc(
    z.coerce.number().int().min(10).max(86_400).default(1800),
    'Time limit of the model turn a diverged step falls back to',
  ),
  output_matters: doc(
    z.coerce.boolean().default(false),
    'A replayed event whose stdout or stderr changed diverges too (the model redoes the step and writes a fresh reply); default: only an error, exit code, timeout or OOM does',
  ),
});
export type TraceConfig = z.infer<typeof configSchema>;

const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;
const runId = z.string().regex(RUN_ID_RE, 'a workflow run id');
const traceId = z.string().min(1).max(64);
const goal = z.string().min(1).max(20_000);
const inputs = z.record(z.string(), z.unknown());

export const findSchema = z.object({
  goal: doc(goal, 'The goal, in any wording'),
  threshold: doc(z.number().min(0).max(1).optional(), 'Least similarity (default trace.threshold)'),
  limit: doc(z.number().int().min(1).max(100).default(5), 'Most matches, best first'),
  include_demoted: doc(z.boolean().default(false), 'Also demoted traces'),
  inputs: doc(inputs.optional(), 'Only traces learned with these inputs (when given and not empty)'),
});

export const listSchema = z.object({
  status: doc(z.enum(['active', 'demoted']).optional(), 'Only traces in this state'),
  order: doc(
    z.enum(['last_used', 'created', 'usage']).default('last_used'),
    'Newest use first, newest first, or most used first',
  ),
  limit: doc(z.number().int().min(1).max(1000).default(50), 'Most traces'),
  offset: doc(z.number().int().min(0).default(0), 'Skip this many'),
});

export const getSchema = z.object({
  trace_id: doc(traceId, 'The trace'),
  steps: doc(z.boolean().default(true), "Include each step's recorded events and output"),
});

export const deleteSchema = z.object({ trace_id: doc(traceId, 'The trace') });

export const beginSchema = z
  .object({
    run_id: doc(runId, 'The workflow run about to start'),
    goal: doc(goal, 'The goal it works on'),
    mode: doc(
      z.enum(['learn', 'follow']),
      'learn: record the run and keep it as a trace when it succeeds; follow: replay trace_id',
    ),
    trace_id: doc(traceId.optional(), 'With follow: the trace to replay'),
    match: doc(z.enum(['exact', 'similar']).optional(), 'How the trace was found'),
    score: doc(z.number().min(0).max(1).optional(), 'Its similarity'),
    inputs: doc(inputs.optional(), 'With learn: the inputs the run is given (a followed run gets them again)'),
    origin: doc(
      z.enum(['run_goal', 'plan', 'start']).default('run_goal'),
      'What began the run: workflow:run_goal, workflow:plan or workflow:start',
    ),
  })
  .superRefine((v, ctx) => {
    if (v.mode === 'follow' && !v.trace_id)
      ctx.addIssue({ code: 'custom', path: ['trace_id'], message: 'follow needs trace_id' });
  });

export const beginTurnSchema = z.object({
  agent_id: doc(z.string().min(1).max(128), 'The agent taking the turn'),
  turn_id: doc(z.string().min(1).max(100), "The turn (the run's id in trace:runs)"),
  goal: doc(goal, 'The goal the turn works on'),
  mode: doc(
    z.enum(['auto', 'learn', 'follow']).default('auto'),
    'auto: follow a trace an agent turn can follow when one is found, else learn; learn: record the turn and keep it as a trace when it succeeds; follow: NOT_FOUND without such a trace',
  ),
  message: doc(z.string().min(1).max(1_000_000), "The turn's message"),
  agent: doc(
    z.object({
      profile: z.string().min(1).max(128).optional(),
      model: z.string().min(1).max(200).optional(),
      system: z.string().max(200_000).optional(),
      tools: z.array(z.string().min(1).max(200)).max(100).optional(),
    }),
    "The agent's profile, model, system and tools: the step a trace learned from the turn runs",
  ),
});

export const replayStepSchema = z.object({
  run_id: doc(runId, 'The followed run'),
  step: doc(z.string().min(1).max(40), "The step of the trace's plan"),
  index: doc(z.number().int().min(0).default(0), 'The foreach item'),
  key: doc(z.string().min(1).max(100).optional(), "The attempt's idempotency key (the workflow fills it in)"),
  live: doc(
    z.object({
      event: z.string().min(3).max(200).optional(),
      data: z.record(z.string(), z.unknown()).optional(),
      agent: z.record(z.string(), z.unknown()).optional(),
      output: z.enum(['json', 'text']).optional(),
    }),
    'What the step does when it is not replayed: its event and data, or its agent turn (templates resolved by the run)',
  ),
});

export const runSchema = z.object({
  run_id: doc(runId, 'A run started for a goal (workflow:run_goal)'),
  wait: doc(z.boolean().default(false), 'Answer once the run has ended and its trace is stored or updated'),
});

export const runsSchema = z.object({
  run_ids: doc(z.array(runId).max(1000).optional(), 'These runs (default: the most recent)'),
  limit: doc(z.number().int().min(1).max(1000).default(50), 'Most runs, newest first'),
});

export const PUBLISHES = {
  'trace:learned':
    'A run for a goal (a workflow run, or an agent turn: kind) succeeded and its trace was stored (or a demoted one replaced): {trace_id, goal, run_id, kind, version, items, events, cost_usd}.',
  'trace:followed':
    'A followed run (kind workflow or turn) ended: {trace_id, run_id, kind, status, cost_usd, saved_usd, repaired, diverged: [{step, index, at, reason}]}.',
  'trace:diverged':
    "A replayed step's result differed in a way that matters; the step falls back to the model: {run_id, trace_id, step, index, at, reason}.",
  'trace:demoted': "A trace's success rate fell below trace.demote_below: {trace_id, success_rate}.",
} as const;
