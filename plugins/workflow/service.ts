/**
 * The workflow service: the library, the engine and the planner wired to the router. One instance per
 * plugin start, holding all of the plugin's state; the plugin's handlers call its methods.
 */
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { DaemonError } from '../../client/errors.js';
import type { EventContext } from '../../client/protocol.js';
import { GroupCommit, runLazy } from '../../daemon/plugin-api.js';
import type { Definition } from './definition.js';
import type { EngineDeps } from './deps.js';
import { Engine, newRunId, type RunSource } from './engine.js';
import {
  beginFollow,
  beginLearn,
  findTrace,
  fromTrace,
  runGoal,
  type GoalMode,
  type GoalOrigin,
  type GoalRequest,
} from './goal.js';
import { issueLine, WorkflowLibrary, type LibraryChange } from './library.js';
import { abandon, perform, retireAll, type PerformerDeps, type Request } from './performer.js';
import { catalogText, planDefinition, replanDefinition, type PlannerDeps } from './planner.js';
import type { WorkflowConfig } from './schemas.js';
import { WorkflowStore } from './store.js';
import { checkDefinition, invalid, resolveInputs, type ValidationEnv } from './validate.js';

export interface ServiceDeps {
  db: Database.Database;
  log: Logger;
  config: WorkflowConfig;
  root: string;
  request: Request;
  emit: (event: string, data: Record<string, unknown>, opts: { context: EventContext }) => void;
}

interface EventDoc {
  event: string;
  summary: string;
  parameters?: Record<string, { required?: boolean }>;
}

/** How long the daemon's list of events and profiles is trusted before it is asked again. */
const KNOWN_TTL_MS = 2000;

export class WorkflowService {
  readonly store: WorkflowStore;
  readonly engine: Engine;
  readonly library: WorkflowLibrary;
  private readonly gc: GroupCommit;
  private stopping = false;
  private known: {
    at: number;
    events: EventDoc[];
    names: Set<string>;
    profiles: Array<{ name: string; description: string | null }>;
  } | null = null;
  private knownLoading: Promise<NonNullable<WorkflowService['known']>> | null = null;
  private readonly performer: PerformerDeps;

  constructor(private readonly deps: ServiceDeps) {
    this.store = new WorkflowStore(deps.db);
    this.gc = GroupCommit.for(deps.db);
    const dirs = [deps.config.workflows_dir, ...deps.config.extra_dirs].map((x) => path.resolve(deps.root, x));
    this.library = new WorkflowLibrary(dirs, (c: LibraryChange) => {
      deps.log.info({ file: c.file, change: c.change, name: c.name, error: c.error }, 'workflow file changed');
      deps.emit(
        'workflow:library_changed',
        { ...c },
        { context: { id: 'workflow-library', parent_id: null, root_id: 'workflow-library', depth: 0 } },
      );
    });
    this.performer = {
      request: deps.request,
      isStopping: () => this.stopping,
    };
    const engineDeps: EngineDeps = {
      store: this.store,
      journal: (op) => void runLazy(deps.db, op),
      durable: (op) => this.gc.run(op),
      perform: (t, signal) => perform(this.performer, t, signal),
      abandon: (t) => abandon(this.performer, t),
      emit: (event, data, context) => deps.emit(event, data, { context }),
      isRunBudget: (runId, err) => err.details?.scope === 'workflow' && err.details?.id === runId,
      replan: async (r) => replanDefinition(await this.planner(), r),
      cost: (runId) => this.cost(runId),
      ended: (run) => retireAll(this.performer, run.spawnedKeys(), run.context),
      isStopping: () => this.stopping,
      now: () => Date.now(),
      log: deps.log,
      config: deps.config,
    };
    this.engine = new Engine(engineDeps);
  }

  async start(): Promise<void> {
    await this.library.loadAll();
    for (const bad of this.library.invalid())
      this.deps.log.warn({ file: bad.file, error: bad.error }, 'invalid workflow not loaded');
    // Not awaited: the watcher's first scan takes a while, and it catches up on what changed meanwhile.
    if (this.deps.config.watch)
      void this.library.watch().catch((err: unknown) => this.deps.log.warn({ err }, 'watching workflows failed'));
    const r = this.engine.recover();
    this.deps.log.info(
      { ...r, workflows: this.library.list().length, invalid: this.library.invalid().length },
      'workflow started',
    );
  }

  /**
   * Nothing new starts; tasks in flight stay journaled as running and are performed again (same key)
   * at the next start. Their callers are told the daemon is stopping.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.engine.stop();
    await this.library.close();
    this.gc.flush();
  }

  isStopping(): boolean {
    return this.stopping;
  }

  private async planner(): Promise<PlannerDeps> {
    const c = this.deps.config;
    const env = await this.env();
    return {
      request: this.deps.request,
      catalog: async () => {
        const k = await this.knownNow();
        return catalogText(k.events, k.profiles);
      },
      check: (raw) => checkDefinition(raw, env),
      profile: c.planner_profile,
      model: c.planner_model,
      attempts: c.plan_attempts,
      timeoutMs: c.plan_timeout_s * 1000,
    };
  }

  // ---- what the daemon answers ---------------------------------------------------------------------

  private async knownNow(): Promise<NonNullable<WorkflowService['known']>> {
    if (this.known && Date.now() - this.known.at < KNOWN_TTL_MS) return this.known;
    this.knownLoading ??= (async () => {
      const ctx: EventContext = { id: 'workflow-discover', parent_id: null, root_id: 'workflow-discover', depth: 0 };
      const disc = await this.deps.request<{ events: Record<string, EventDoc[]> }>(
        'system:discover',
        {},
        { context: ctx, timeoutMs: 10_000 },
      );
      const events = Object.values(disc.events).flat();
      const profiles = await this.deps
        .request<{ profiles: Array<{ name: string; description: string | null }> }>(
          'agent:profiles',
          {},
          { context: ctx, timeoutMs: 10_000 },
        )
        .then(
          (r) => r.profiles,
          () => [],
        );
      this.known = { at: Date.now(), events, names: new Set(events.map((e) => e.event)), profiles };
      return this.known;
    })().finally(() => {
      this.knownLoading = null;
    });
    return this.knownLoading;
  }

  private async env(): Promise<ValidationEnv> {
    const k = await this.knownNow();
    const profiles = new Set(k.profiles.map((p) => p.name));
    return { hasEvent: (e) => k.names.has(e), hasProfile: (p) => profiles.has(p) };
  }

  private async cost(runId: string): Promise<number | null> {
    const ctx: EventContext = { id: `cost-${runId}`, parent_id: null, root_id: `cost-${runId}`, depth: 0 };
    const r = await this.deps.request<{ scopes: Array<{ spent_usd: number }> }>(
      'budget:status',
      { scope: 'workflow', id: runId },
      { context: ctx, timeoutMs: 5000 },
    );
    return r.scopes[0]?.spent_usd ?? 0;
  }

  // ---- events --------------------------------------------------------------------------------------

  async list(): Promise<Record<string, unknown>> {
    const env = await this.env();
    const workflows: Array<Record<string, unknown>> = [];
    const bad = [...this.library.invalid()];
    for (const e of this.library.list()) {
      const c = checkDefinition(e.definition, env);
      if (!c.ok) {
        bad.push({ file: e.file, error: issueLine(c.issues) });
        continue;
      }
      workflows.push({
        name: e.name,
        description: e.definition.description ?? null,
        file: e.file,
        steps: e.definition.steps.length,
        inputs: e.definition.inputs,
        budget_usd: e.definition.budget_usd ?? null,
      });
    }
    return { workflows, invalid: bad };
  }

  /** The definition a start names: from the library (re-checked against the daemon now) or inline. */
  private async definitionOf(d: {
    workflow?: string | undefined;
    definition?: Record<string, unknown> | undefined;
  }): Promise<{ def: Definition; source: 'file' | 'inline' }> {
    const env = await this.env();
    if (d.definition) {
      const c = checkDefinition(d.definition, env);
      if (!c.ok) throw invalid(c.issues);
      return { def: c.definition, source: 'inline' };
    }
    const entry = this.library.get(d.workflow!);
    if (!entry) {
      const broken = this.library.invalid().find((i) => path.basename(i.file).replace(/\.ya?ml$/i, '') === d.workflow);
      if (broken)
        throw new DaemonError('INVALID_DATA', `workflow ${d.workflow} is invalid and not loaded: ${broken.error}`, {
          file: broken.file,
        });
      throw new DaemonError('NOT_FOUND', `no workflow ${d.workflow} (workflow:list shows them)`, {
        workflow: d.workflow,
        known: this.library.list().map((e) => e.name),
      });
    }
    const c = checkDefinition(entry.definition, env);
    if (!c.ok) throw invalid(c.issues, `workflow ${entry.name}`);
    return { def: c.definition, source: 'file' };
  }

  async startRun(
    d: {
      workflow?: string | undefined;
      definition?: Record<string, unknown> | undefined;
      inputs: Record<string, unknown>;
      run_id?: string | undefined;
      budget_usd?: number | undefined;
      wait: boolean;
      goal?: string | undefined;
    },
    context: EventContext,
  ): Promise<Record<string, unknown>> {
    this.guard();
    if (d.run_id && this.store.run(d.run_id)) return this.answer(d.run_id, d.wait, true);
    const { def, source } = await this.definitionOf(d);
    if (!d.goal) return this.launch(def, source, d, context);
    // A run given a goal is recorded from its first event: when it succeeds it is the goal's trace.
    resolveInputs(def, d.inputs);
    const runId = d.run_id ?? newRunId();
    await beginLearn(this.goalRequest(context), runId, d.goal, d.inputs, 'start');
    return this.launch(def, source, { ...d, run_id: runId }, context);
  }

  /** Requests to the trace plugin, under the caller's causality. */
  private goalRequest(context: EventContext) {
    return <T = Record<string, unknown>>(event: string, data: Record<string, unknown>): Promise<T> =>
      this.deps.request<T>(event, data, { context, timeoutMs: 60_000 });
  }

  private async launch(
    def: Definition,
    source: RunSource,
    d: { inputs: Record<string, unknown>; run_id?: string | undefined; budget_usd?: number | undefined; wait: boolean },
    context: EventContext,
    budgetSet = false,
  ): Promise<Record<string, unknown>> {
    const inputs = resolveInputs(def, d.inputs);
    const runId = d.run_id ?? newRunId();
    const budget = d.budget_usd ?? def.budget_usd ?? null;
    if (budget !== null && !budgetSet) await this.setBudget(runId, budget, context);
    const r = await this.engine.start({
      definition: def,
      inputs,
      run_id: runId,
      budget_usd: budget,
      context,
      source,
      answeredAtEnd: d.wait,
    });
    return this.answer(r.run_id, d.wait, r.existing);
  }

  private async setBudget(id: string, usd: number, context: EventContext): Promise<void> {
    try {
      await this.deps.request('budget:set', { scope: 'workflow', id, limit_usd: usd }, { context, timeoutMs: 10_000 });
    } catch (e) {
      if (e instanceof DaemonError && e.code === 'UNKNOWN_EVENT')
        throw new DaemonError('UNAVAILABLE', 'a run with budget_usd needs the budget plugin, which is not loaded');
      throw e;
    }
  }

  private async answer(runId: string, wait: boolean, existing: boolean): Promise<Record<string, unknown>> {
    if (wait) {
      await this.engine.wait(runId);
      return { ...(await this.engine.status(runId)), existing };
    }
    const row = this.store.run(runId)!;
    const st = await this.engine.status(runId);
    return { run_id: runId, workflow: row.workflow, status: st.status, existing };
  }

  async status(d: { run_id: string; versions: boolean }): Promise<Record<string, unknown>> {
    const st = await this.engine.status(d.run_id);
    return d.versions ? { ...st, versions: this.engine.versions(d.run_id) } : st;
  }

  runs(d: { status?: string | undefined; workflow?: string | undefined; limit: number }): Record<string, unknown> {
    return { runs: this.engine.runs(d) };
  }

  cancel(runId: string): Promise<Record<string, unknown>> {
    return this.engine.cancel(runId);
  }

  signal(d: { run_id: string; step: string; data?: unknown }): Promise<Record<string, unknown>> {
    this.guard();
    return this.engine.signal(d.run_id, d.step, d.data ?? null);
  }

  /**
   * workflow:plan: a goal with a trace (mode auto or follow) is answered with the trace's plan and no
   * model call, and with start its run follows the trace; otherwise the planner writes a definition,
   * and with start its run is recorded, to be kept as the goal's trace when it succeeds.
   */
  async plan(
    d: {
      goal: string;
      budget_usd?: number | undefined;
      start: boolean;
      inputs: Record<string, unknown>;
      run_id?: string | undefined;
      wait: boolean;
      mode: GoalMode;
    },
    context: EventContext,
    source: RunSource = 'plan',
    origin: GoalOrigin = 'plan',
  ): Promise<Record<string, unknown>> {
    this.guard();
    const req = this.goalRequest(context);
    if (d.start && d.run_id && this.store.run(d.run_id)) {
      const v = this.engine.versions(d.run_id)[0]!;
      const run = await this.answer(d.run_id, d.wait, true);
      const g = await req<{
        mode: string;
        trace_id: string | null;
        match: string | null;
        score: number | null;
        trace_version: number | null;
      }>('trace:run', { run_id: d.run_id }).catch(() => null);
      if (g?.mode !== 'follow' || !g.trace_id) return { definition: v.definition, from_trace: null, ...run };
      const t = await req<{ plan: Record<string, unknown>; inputs: unknown }>('trace:get', {
        trace_id: g.trace_id,
        steps: false,
      }).catch(() => null);
      return {
        definition: t?.plan ?? v.definition,
        attempts: 0,
        from_trace: fromTrace(
          { trace_id: g.trace_id, match: g.match, score: g.score },
          g.trace_version ?? 0,
          t?.inputs ?? null,
        ),
        ...run,
      };
    }
    const runId = d.start ? (d.run_id ?? newRunId()) : null;
    const found = await findTrace(req, d.goal, d.mode, d.inputs);
    if (found && !d.start) {
      const t = await req<{ plan: Record<string, unknown>; version: number; inputs: unknown }>('trace:get', {
        trace_id: found.trace_id,
        steps: false,
      });
      return { definition: t.plan, attempts: 0, from_trace: fromTrace(found, t.version, t.inputs) };
    }
    if (found) {
      const b = await beginFollow(req, runId!, d.goal, found, origin);
      const { def } = await this.definitionOf({ definition: b.definition });
      const run = await this.launch(
        def,
        'follow',
        { inputs: b.inputs, run_id: runId!, budget_usd: d.budget_usd, wait: d.wait },
        context,
      );
      return { definition: b.plan, attempts: 0, from_trace: fromTrace(found, b.version, b.inputs), ...run };
    }
    if (runId) await beginLearn(req, runId, d.goal, d.inputs, origin);
    const key = runId ? `${runId}.plan` : `plan-${newRunId()}`;
    const scope = runId ?? key;
    // Planning is work of the run it starts (or of the plan itself): charged to that workflow scope.
    const ctx: EventContext = { ...context, workflow_id: scope };
    if (d.budget_usd !== undefined) await this.setBudget(scope, d.budget_usd, context);
    const { definition, attempts } = await planDefinition(await this.planner(), { goal: d.goal, key, context: ctx });
    if (!d.start) return { definition, attempts, from_trace: null };
    const run = await this.launch(
      definition,
      source,
      { inputs: d.inputs, run_id: runId!, budget_usd: d.budget_usd, wait: d.wait },
      context,
      true,
    );
    return { definition, attempts, from_trace: null, ...run };
  }

  /** workflow:run_goal: follow a trace of the goal when there is one, else plan and learn (goal.ts). */
  runGoal(d: GoalRequest, context: EventContext): Promise<Record<string, unknown>> {
    this.guard();
    return runGoal(
      {
        request: this.goalRequest(context),
        exists: (runId) => this.store.run(runId) !== undefined,
        newRunId: () => newRunId(),
        start: (goal, mode, runId, budgetUsd) =>
          this.plan(
            { goal, mode, start: true, run_id: runId, budget_usd: budgetUsd, wait: false, inputs: {} },
            context,
            'learn',
            'run_goal',
          ),
        wait: async (runId) => {
          await this.engine.wait(runId);
          return this.engine.status(runId);
        },
      },
      d,
    );
  }

  private guard(): void {
    if (this.stopping)
      throw new DaemonError('SHUTTING_DOWN', 'the workflow plugin is stopping; runs resume at the next start');
  }

  health(): Record<string, unknown> {
    return {
      ...this.engine.health(),
      workflows: this.library.list().length,
      invalid_workflows: this.library.invalid().length,
    };
  }
}
