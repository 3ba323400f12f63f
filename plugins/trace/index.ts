/**
 * trace: learned procedures, after LLM OS. A run for a goal that succeeded is kept as a trace — the
 * goal (normalised, with its signature), the plan, and every event its agents' tool calls made, with
 * data and results, in order — and when the goal comes back, in the same or other words, the trace is
 * replayed as events with no model call. A replayed step whose result differs in a way that matters
 * falls back to the model, and the trace is repaired with what it did (or demoted when that fails).
 * `workflow:run_goal` drives it; this plugin records, finds, replays and settles, through events only.
 */
import { z } from 'zod';
import { definePlugin } from '../../daemon/plugin-api.js';
import {
  beginSchema,
  beginTurnSchema,
  configSchema,
  deleteSchema,
  findSchema,
  getSchema,
  listSchema,
  PUBLISHES,
  replayStepSchema,
  runSchema,
  runsSchema,
} from './schemas.js';
import { MIGRATIONS } from './store.js';
import { TraceService } from './service.js';

export default definePlugin({
  name: 'trace',
  version: 1,
  namespaces: ['trace'],
  description:
    'Learned traces: a goal solved once is replayed as events with no model call; divergences fall back to the model and repair the trace.',
  configSchema,
  publishes: PUBLISHES,

  start(ctx): TraceService {
    ctx.migrate(MIGRATIONS);
    const svc = new TraceService({
      db: ctx.db,
      log: ctx.log,
      config: ctx.config,
      request: ctx.request,
      emit: ctx.emit,
    });
    svc.recover();
    ctx.log.info({ traces: svc.store.count(), recording: svc.recorder.open.size }, 'trace started');
    return svc;
  },

  stop(svc) {
    svc.stop();
  },

  health: (svc) => svc.health(),

  // Traces learned after a full checkpoint are forgotten by its restore, like the runs that taught them.
  fullState: {
    tables: ['trace_*'],
    entities: { traces: { table: 'trace_traces', key: 'trace_id' } },
  },

  // Synchronous listeners: each sees the events in the order they were emitted.
  subscriptions: {
    'workflow:step_started': (ev, svc) => svc.recorder.stepStarted(ev),
    'agent:turn_started': (ev, svc) => svc.recorder.turnStarted(ev),
    'agent:spawned': (ev, svc) => svc.recorder.spawned(ev),
    'agent:tool_result': (ev, svc) => svc.recorder.toolResult(ev),
    'agent:reply': (ev, svc) => {
      svc.recorder.reply(ev);
      const turnId = typeof ev.data.turn_id === 'string' ? ev.data.turn_id : null;
      if (turnId && svc.recorder.isGoalTurn(turnId)) {
        svc.turnEnded(turnId, {
          status: 'succeeded',
          reply: typeof ev.data.text === 'string' ? ev.data.text : '',
          stop_reason: typeof ev.data.stop_reason === 'string' ? ev.data.stop_reason : null,
          cost_usd: typeof ev.data.cost_usd === 'number' ? ev.data.cost_usd : 0,
          tool_calls: typeof ev.data.tool_calls === 'number' ? ev.data.tool_calls : 0,
        });
      }
    },
    'agent:error': (ev, svc) => {
      const turnId = typeof ev.data.turn_id === 'string' ? ev.data.turn_id : null;
      if (turnId && svc.recorder.isGoalTurn(turnId)) {
        svc.turnEnded(turnId, {
          status: ev.data.code === 'CANCELLED' ? 'cancelled' : 'failed',
          reply: null,
          stop_reason: null,
          cost_usd: 0,
          tool_calls: 0,
        });
      }
    },
    'workflow:finished': (ev, svc, ctx) => {
      const runId = typeof ev.data.run_id === 'string' ? ev.data.run_id : null;
      if (runId && svc.recorder.open.has(runId))
        void svc
          .settle(runId)
          .catch((err: unknown) => ctx.log.warn({ err, run_id: runId }, 'settling a goal run failed'));
    },
  },

  events: {
    'trace:find': {
      summary:
        'The traces of a goal, best first: the same normalised text (match exact, score 1), else goals alike above the threshold (match similar).',
      description:
        "Similar: FTS5 picks candidates sharing terms; each is scored by the IDF-weighted cosine of the two goals' terms, and scores 0 when a number, quoted string, file name, direction word or action differs. lookup_us is the time the lookup took.",
      schema: findSchema,
      response: z.looseObject({}),
      handler: (d, svc) => svc.find(d),
    },
    'trace:list': {
      summary:
        'Traces with goal, status (active, demoted), version, usage_count, success_rate, saved_usd, created and last_used.',
      schema: listSchema,
      response: z.looseObject({}),
      handler: (d, svc) => svc.list(d),
    },
    'trace:get': {
      summary:
        'One trace: its plan and, in recorded, per step (and foreach item) the events made in order with data and results, and the output.',
      schema: getSchema,
      errors: ['NOT_FOUND'],
      response: z.looseObject({}),
      handler: (d, svc) => svc.get(d),
    },
    'trace:delete': {
      summary: 'Delete a trace; the goal is learned anew the next time it is run.',
      schema: deleteSchema,
      errors: ['NOT_FOUND'],
      response: z.looseObject({}),
      handler: (d, svc) => svc.delete(d),
    },
    'trace:begin': {
      summary:
        "Record a run for a goal before it starts (workflow:run_goal, workflow:plan and workflow:start with a goal call it); for follow, answers the trace's plan, the inputs it was learned with and the definition that replays it.",
      schema: beginSchema,
      errors: ['NOT_FOUND', 'CONFLICT', 'SHUTTING_DOWN'],
      response: z.looseObject({}),
      handler: (d, svc) => svc.begin(d),
    },
    'trace:begin_turn': {
      summary:
        "An agent turn given a goal is about to run (agent:send {goal} asks): learn records it; follow replays a trace's recorded events with no model call and answers its reply, or says where the replay diverged.",
      description:
        'Answers {run_id, mode, trace_id, match, score, replayed, reply?, events?, diverged?, note?}. With replayed the turn answers reply; else, in follow, the turn goes on with the model and note (the calls made and what they returned) is appended to its message. Asked again for the same turn, it answers the same mode. Emits trace:diverged.',
      schema: beginTurnSchema,
      emits: ['trace:diverged'],
      errors: ['NOT_FOUND', 'CONFLICT', 'SHUTTING_DOWN'],
      response: z.looseObject({}),
      defaultTimeoutMs: 1_800_000,
      handler: (d, svc, call) => svc.beginTurn(d, call),
    },
    'trace:replay_step': {
      summary:
        'One step of a followed run: replay the recorded events (no model call) and answer the recorded output, or fall back to the model from the step that diverged.',
      description:
        "A step of the definition trace:begin answers; the workflow fills in key (the attempt's idempotency key). Emits trace:diverged when a replayed result differs in a way that matters (an error, an exit code, a timeout).",
      schema: replayStepSchema,
      emits: ['trace:diverged'],
      errors: ['NOT_FOUND', 'INVALID_DATA'],
      defaultTimeoutMs: 1_800_000,
      response: z.looseObject({}),
      handler: (d, svc, call) => svc.replayStep(d, call),
    },
    'trace:run': {
      summary:
        'A run for a goal: mode (learn, follow), its trace, status, cost_usd, saved_usd, the steps that diverged; with wait, once it has ended and settled.',
      schema: runSchema,
      errors: ['NOT_FOUND', 'TIMEOUT'],
      defaultTimeoutMs: 1_800_000,
      response: z.looseObject({}),
      handler: (d, svc, call) => svc.run(d, call),
    },
    'trace:runs': {
      summary:
        'Runs for goals (newest first, or the ones named) with mode, cost_usd and saved_usd; daemon-control runs and the TUI show them beside the workflow runs.',
      schema: runsSchema,
      response: z.looseObject({}),
      handler: (d, svc) => svc.runs(d),
    },
  },
});
