/**
 * workflow: durable multi-step, multi-agent work. Definitions are DAGs of steps (events, agent turns,
 * waits for a signal) from YAML files in workflows/ or given inline; runs are journaled transition by
 * transition and resume after any crash; a run is its own budget scope; a planner agent writes
 * definitions from a goal and replaces the rest of a run when a step fails with on_failure: replan.
 *
 * All state lives in the WorkflowService that `start` returns: the instance every handler receives.
 */
import { z } from 'zod';
import { definePlugin, DaemonError } from '../../daemon/plugin-api.js';
import { MIGRATIONS } from './store.js';
import {
  cancelSchema,
  configSchema,
  listSchema,
  planSchema,
  PUBLISHES,
  runGoalSchema,
  runsSchema,
  signalSchema,
  startSchema,
  statusSchema,
} from './schemas.js';
import { WorkflowService } from './service.js';

/** While it stops, the plugin still answers reads, but takes no new work. */
function serving(svc: WorkflowService): WorkflowService {
  if (svc.isStopping())
    throw new DaemonError('SHUTTING_DOWN', 'the workflow plugin is stopping; runs resume at the next start');
  return svc;
}

const PROGRESS = [
  'workflow:started',
  'workflow:step_started',
  'workflow:step_finished',
  'workflow:step_failed',
  'workflow:waiting',
  'workflow:replanned',
  'workflow:finished',
];

export default definePlugin({
  name: 'workflow',
  version: 1,
  namespaces: ['workflow'],
  // Everything a step may call is optional: a definition naming an event no plugin answers is refused.
  optionalDependsOn: ['budget', 'completion', 'agent', 'sandbox', 'kg', 'bridge'],
  description:
    'Durable workflows: DAGs of event, agent and wait steps, journaled before every transition, resumed after a crash, budgeted per run, planned and replanned by a planner agent.',
  configSchema,
  publishes: PUBLISHES,

  async start(ctx): Promise<WorkflowService> {
    ctx.migrate(MIGRATIONS);
    const svc = new WorkflowService({
      db: ctx.db,
      log: ctx.log,
      config: ctx.config,
      root: ctx.paths.root,
      request: (event, data, opts) => ctx.request(event, data, opts),
      emit: (event, data, opts) => ctx.emit(event, data, opts),
    });
    await svc.start();
    return svc;
  },

  async stop(svc) {
    await svc.stop();
  },

  health: (svc) => svc.health(),

  // Runs roll back with a full checkpoint; what they spent stays in the budget (a run is a budget scope).
  fullState: {
    tables: ['workflow_*'],
    entities: { runs: { table: 'workflow_runs', key: 'run_id' } },
  },

  events: {
    'workflow:list': {
      summary:
        'The workflows of the library (name, description, file, inputs, steps, budget) and the invalid files with the reason each is not loaded.',
      description:
        "A file is invalid when it does not parse, fails the definition's shape, or names an event or agent profile the daemon does not have now.",
      schema: listSchema,
      response: z.looseObject({ workflows: z.array(z.unknown()), invalid: z.array(z.unknown()) }),
      handler: (_d, svc) => svc.list(),
    },

    'workflow:start': {
      summary:
        'Start a run of a workflow from the library or of an inline definition; answers {run_id, workflow, status} once it is journaled (with wait, when it ends).',
      description:
        "The definition is validated first: a cycle, an unknown need, event or profile, or a bad template is INVALID_DATA naming the step. A repeated run_id answers with that run. budget_usd makes the run a budget scope (workflow, id = run_id): at its limit the run ends budget_exhausted, keeping its outputs. With goal, the run is recorded and becomes the goal's trace when it succeeds.",
      schema: startSchema,
      emits: PROGRESS,
      errors: ['INVALID_DATA', 'NOT_FOUND', 'UNAVAILABLE', 'SHUTTING_DOWN'],
      defaultTimeoutMs: 1_800_000,
      response: z.looseObject({ run_id: z.string(), status: z.string() }),
      handler: (d, svc, call) => serving(svc).startRun(d, call.context),
    },

    'workflow:status': {
      summary:
        "A run: status (queued, running, waiting, succeeded, failed, cancelled, budget_exhausted), each step's status, attempts, output and error, the outputs and the cost so far.",
      schema: statusSchema,
      errors: ['NOT_FOUND'],
      response: z.looseObject({ run_id: z.string(), status: z.string(), steps: z.record(z.string(), z.unknown()) }),
      handler: (d, svc) => svc.status(d),
    },

    'workflow:runs': {
      summary: 'Runs, newest first, optionally of one status or workflow.',
      schema: runsSchema,
      response: z.looseObject({}),
      handler: (d, svc) => svc.runs(d),
    },

    'workflow:cancel': {
      summary:
        'Cancel a run: running steps are stopped (their agents terminated, their model calls cancelled), finished outputs are kept. Answers when it has stopped.',
      schema: cancelSchema,
      emits: ['workflow:finished'],
      errors: ['NOT_FOUND', 'CONFLICT'],
      response: z.looseObject({}),
      handler: (d, svc) => svc.cancel(d.run_id),
    },

    'workflow:signal': {
      summary: "Release a wait step of a running run: its output is the signal's data. Journaled before the answer.",
      schema: signalSchema,
      emits: ['workflow:step_finished'],
      errors: ['NOT_FOUND', 'CONFLICT'],
      response: z.looseObject({}),
      handler: (d, svc) => serving(svc).signal(d),
    },

    'workflow:plan': {
      summary:
        "A definition for a goal: a learned trace's plan when the goal has one (no model call; from_trace says which, with its score), else the planner agent's (validated; an invalid answer is sent back with its problems, a bounded number of times); with start, run it.",
      description:
        "mode auto (default) consults the trace plugin; learn always asks the planner; follow answers NOT_FOUND without a trace. With start, a run of a trace's plan follows it (replayed, no model call, like workflow:run_goal), and a run of a planned definition is recorded and becomes the goal's trace when it succeeds.",
      schema: planSchema,
      emits: PROGRESS,
      errors: ['INVALID_DATA', 'NOT_FOUND', 'UNAVAILABLE', 'BUDGET_EXCEEDED', 'SHUTTING_DOWN'],
      defaultTimeoutMs: 1_800_000,
      response: z.looseObject({ definition: z.unknown() }),
      handler: (d, svc, call) => serving(svc).plan(d, call.context),
    },

    'workflow:run_goal': {
      summary:
        'Run a goal: follow its learned trace when there is one (no model call, $0), else plan it, run it and learn a trace; answers which mode ran, what it cost and what it saved.',
      description:
        'Traces are found by the trace plugin (the same normalised goal, or one alike above trace.threshold). A followed run replays the recorded events; a step whose result differs in a way that matters (an error, an exit code) falls back to the model from there and the trace is repaired, or demoted when the run fails. The run is listed by workflow:runs with source learn or follow.',
      schema: runGoalSchema,
      emits: PROGRESS,
      errors: ['NOT_FOUND', 'INVALID_DATA', 'UNAVAILABLE', 'BUDGET_EXCEEDED', 'SHUTTING_DOWN'],
      defaultTimeoutMs: 1_800_000,
      response: z.looseObject({}),
      handler: (d, svc, call) => serving(svc).runGoal(d, call.context),
    },
  },
});
