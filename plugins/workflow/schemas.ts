/** The workflow plugin's config and event schemas; the catalog and system:discover are generated from them. */
import { z } from 'zod';
import { DEFAULT_ENGINE_CONFIG as D } from './deps.js';

const doc = <T extends z.ZodType>(s: T, description: string): T =>
  (s as z.ZodType).register(z.globalRegistry, { description }) as T;
const int = (min: number, max: number, def: number) => z.coerce.number().int().min(min).max(max).default(def);

export const configSchema = z.object({
  workflows_dir: doc(
    z.string().default('workflows'),
    'Directory of workflow YAML files (relative to the repository root), picked up without a restart',
  ),
  extra_dirs: doc(z.array(z.string()).default([]), 'More workflow directories; a later one wins a name clash'),
  watch: doc(z.coerce.boolean().default(true), 'Pick up edits to workflow files without a restart (chokidar)'),
  max_running_tasks: doc(
    int(1, 100_000, D.max_running_tasks),
    'Steps (and foreach items) running at once across all runs',
  ),
  max_active_runs: doc(int(1, 100_000, D.max_active_runs), 'Runs executing at once; more wait as queued'),
  default_concurrency: doc(
    int(1, 10_000, D.default_concurrency),
    'Items of a foreach running at once when the step sets no concurrency',
  ),
  max_items: doc(int(1, 1_000_000, D.max_items), 'Most items one foreach may have'),
  max_output_bytes: doc(
    int(1024, 64 * 1024 * 1024, D.max_output_bytes),
    'Largest output (JSON) a step may keep; past it the step fails',
  ),
  max_replans: doc(int(0, 100, D.max_replans), 'Replans one run may make (on_failure: replan)'),
  event_timeout_s: doc(
    int(1, 7 * 86_400, D.event_timeout_s),
    "Time limit of an event step's attempt when it sets no timeout_s",
  ),
  agent_timeout_s: doc(
    int(1, 7 * 86_400, D.agent_timeout_s),
    "Time limit of an agent step's attempt when it sets no timeout_s",
  ),
  planner_profile: doc(
    z.string().min(1).default('planner'),
    'The agent profile that plans (workflow:plan, on_failure: replan)',
  ),
  planner_model: doc(z.string().min(1).optional(), "Model for the planner (default: the profile's)"),
  plan_attempts: doc(
    int(1, 20, 3),
    'Answers the planner may give before a plan fails: an invalid one is sent back with its problems',
  ),
  plan_timeout_s: doc(int(10, 86_400, 600), 'Time limit of one planner turn'),
});
export type WorkflowConfig = z.infer<typeof configSchema>;

export const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;
const runId = z.string().regex(RUN_ID_RE, 'letters, digits, _ and - (1-40, starting alphanumeric)');
const inputs = doc(
  z.record(z.string(), z.unknown()).default({}),
  "The run's inputs by name (checked against the definition's inputs; strings are converted where the type asks)",
);
const budget = doc(
  z.number().positive().max(1_000_000).optional(),
  "The run's spend limit in USD (budget scope workflow, id = run_id); overrides the definition's",
);

export const listSchema = z.object({});

export const startSchema = z
  .object({
    workflow: doc(z.string().min(1).max(64).optional(), 'A workflow from the library (workflow:list)'),
    definition: doc(z.record(z.string(), z.unknown()).optional(), 'Or a definition given inline'),
    inputs,
    run_id: doc(runId.optional(), 'Your own id for the run; starting the same run_id again answers with that run'),
    budget_usd: budget,
    wait: doc(
      z.boolean().default(false),
      'Answer when the run ends, with its status (default: at once, with run_id and status)',
    ),
    goal: doc(
      z.string().min(1).max(20_000).optional(),
      "The goal the run achieves: it is recorded, and when it succeeds it becomes the goal's trace (with its inputs), followed by workflow:run_goal and workflow:plan from then on",
    ),
  })
  .superRefine((v, ctx) => {
    if ((v.workflow === undefined) === (v.definition === undefined))
      ctx.addIssue({ code: 'custom', path: ['workflow'], message: 'give workflow or definition (exactly one)' });
  });

export const statusSchema = z.object({
  run_id: runId.describe('The run'),
  versions: doc(z.boolean().default(false), 'Also every version of its definition (a replan adds one)'),
});

export const runsSchema = z.object({
  status: doc(
    z.enum(['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled', 'budget_exhausted']).optional(),
    'Only runs in this state',
  ),
  workflow: doc(z.string().min(1).max(64).optional(), 'Only runs of this workflow'),
  limit: doc(z.number().int().min(1).max(1000).default(50), 'Most runs, newest first'),
});

export const cancelSchema = z.object({ run_id: runId.describe('The run') });

export const signalSchema = z.object({
  run_id: runId.describe('The run'),
  step: doc(z.string().min(1).max(40), 'The wait step to release'),
  data: doc(z.unknown().optional(), 'What the step outputs (e.g. {approved: true, by: "ann"})'),
});

export const planSchema = z.object({
  goal: doc(z.string().min(1).max(20_000), 'What the workflow should achieve'),
  budget_usd: budget,
  start: doc(
    z.boolean().default(false),
    'Start a run of the planned definition (the answer then has run_id and status)',
  ),
  inputs,
  run_id: doc(runId.optional(), "With start: the run's id (planning is charged to it)"),
  wait: doc(z.boolean().default(false), 'With start: answer when the run ends'),
  mode: doc(
    z.enum(['auto', 'learn', 'follow']).default('auto'),
    'auto: a trace of the goal (the same or a similar goal, learned with the same inputs when inputs are given) is the plan, with no model call; learn: always the planner; follow: the trace, NOT_FOUND without one. With start the run follows the trace, or is learned',
  ),
});

export const runGoalSchema = z.object({
  goal: doc(z.string().min(1).max(20_000), 'What to achieve, in any wording'),
  mode: doc(
    z.enum(['auto', 'learn', 'follow']).default('auto'),
    'auto: follow a trace of the goal when one is found, else learn; learn: plan and run, keeping a trace when it succeeds; follow: replay a trace (NOT_FOUND without one)',
  ),
  budget_usd: budget,
  run_id: doc(runId.optional(), 'Your own id for the run; the same id again answers with that run'),
  wait: doc(
    z.boolean().default(true),
    'Answer when the run has ended (default), with its mode, outputs, cost_usd and saved_usd',
  ),
});

export const PUBLISHES = {
  'workflow:started':
    'A run began, or resumed after a restart: {run_id, workflow, version, steps, inputs, budget_usd, resumed}.',
  'workflow:step_started':
    "A step (or one foreach item) began an attempt: {run_id, workflow, step, kind, item, attempt, key}; key is the attempt's idempotency key.",
  'workflow:step_finished':
    'A step ended (status succeeded, failed for a continue-foreach with failed items, or skipped), or one foreach item succeeded (item set, with progress {done, total}): {run_id, workflow, step, status, item, attempt, duration_ms, progress}.',
  'workflow:step_failed': 'An attempt failed: {run_id, workflow, step, item, attempt, error, will_retry, retry_in_s}.',
  'workflow:waiting': 'A wait step waits for workflow:signal: {run_id, workflow, step, prompt}.',
  'workflow:replanned':
    "A failed step's on_failure: replan replaced the rest of the DAG: {run_id, workflow, version, failed_step, error, replaced, added}.",
  'workflow:finished':
    'A run ended: {run_id, workflow, status (succeeded, failed, cancelled, budget_exhausted), error, outputs, cost_usd, duration_ms}.',
  'workflow:library_changed':
    'A workflow file was loaded, removed or found invalid (then not loaded): {file, change, name, error}.',
} as const;
