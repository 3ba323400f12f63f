/**
 * The engine: every run in memory that is not finished, the task slots they share, queued runs
 * promoted as others end, recovery from the journal at start, and the reads (status, runs) that the
 * events answer with. A plain class: the plugin gives it its dependencies, a test gives it fakes.
 */
import { randomBytes } from 'node:crypto';
import { DaemonError } from '../../client/errors.js';
import type { EventContext } from '../../client/protocol.js';
import type { Definition } from './definition.js';
import type { EngineDeps, RunHost } from './deps.js';
import { RunExecutor } from './run.js';
import { TERMINAL_RUN, type RunRow, type RunStatus, type StepError, type TaskRow } from './store.js';

/** Where a run's definition came from; learn and follow are runs for a goal (workflow:run_goal). */
export type RunSource = 'file' | 'inline' | 'plan' | 'learn' | 'follow';

export interface StartOptions {
  definition: Definition;
  inputs: Record<string, unknown>;
  run_id?: string | undefined;
  budget_usd: number | null;
  /** The causality of the request that started it; the run's events and work descend from it. */
  context: EventContext;
  source: RunSource;
  /**
   * The caller is answered only when the run ends (`wait`): the run's row is journaled without a disk
   * sync of its own, as every step's transition is; the sync of the outcome, before that answer,
   * puts it on disk with everything before it. A run answered at once is on disk before the answer.
   */
  answeredAtEnd?: boolean;
}

/** A run id: time-ordered and short (it goes into every key the run makes). */
export function newRunId(now = Date.now()): string {
  return `r${now.toString(36)}${randomBytes(4).toString('hex')}`;
}

const secs = (ms: number | null): number | null => (ms === null ? null : ms / 1000);
const parse = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

export class Engine implements RunHost {
  private readonly live = new Map<string, RunExecutor>();
  private used = 0;
  private readonly starving = new Set<RunExecutor>();

  constructor(private readonly deps: EngineDeps) {}

  /** Journal a new run (durably when the answer acknowledges it) and start it, or queue it when too many run. */
  async start(o: StartOptions): Promise<{ run_id: string; status: RunStatus; existing: boolean }> {
    const runId = o.run_id ?? newRunId(this.deps.now());
    const prior = this.deps.store.run(runId);
    if (prior) return { run_id: runId, status: this.statusOfRow(prior), existing: true };
    const status: RunStatus = this.live.size >= this.deps.config.max_active_runs ? 'queued' : 'running';
    const context: EventContext = { ...o.context, workflow_id: runId };
    const insert = (): void =>
      this.deps.store.insertRun({
        run_id: runId,
        workflow: o.definition.name,
        status,
        inputs: o.inputs,
        budget_usd: o.budget_usd,
        context,
        source: o.source,
        definition: o.definition,
        created_at: this.deps.now(),
      });
    try {
      if (o.answeredAtEnd) this.deps.journal(insert);
      else await this.deps.durable(insert);
    } catch (e) {
      // The same run_id started twice at once: the first insert won, this is that run.
      const again = this.deps.store.run(runId);
      if (again) return { run_id: runId, status: this.statusOfRow(again), existing: true };
      throw e;
    }
    if (status === 'running') this.launch(this.deps.store.run(runId)!, false);
    return { run_id: runId, status, existing: false };
  }

  /** After a start: resume every run the journal says was running, then the queued ones that fit. */
  recover(): { resumed: number; queued: number } {
    let resumed = 0;
    let queued = 0;
    for (const row of this.deps.store.activeRuns()) {
      if (row.status === 'running') {
        this.launch(row, true);
        resumed++;
      } else {
        queued++;
      }
    }
    this.promote();
    return { resumed, queued };
  }

  private launch(row: RunRow, resumed: boolean): RunExecutor {
    const v = this.deps.store.version(row.run_id, row.version)!;
    const def = JSON.parse(v.definition) as Definition;
    const run = resumed
      ? RunExecutor.fromJournal(
          this.deps,
          this,
          row,
          def,
          this.deps.store.steps(row.run_id),
          this.deps.store.tasks(row.run_id),
        )
      : new RunExecutor(this.deps, this, {
          runId: row.run_id,
          workflow: row.workflow,
          definition: def,
          version: row.version,
          inputs: JSON.parse(row.inputs) as Record<string, unknown>,
          context: JSON.parse(row.context) as EventContext,
          budgetUsd: row.budget_usd,
          createdAt: row.created_at,
          replans: row.replans,
        });
    this.live.set(row.run_id, run);
    if (row.status !== 'running' || row.started_at === null) {
      this.deps.journal(() => this.deps.store.setRunStatus(row.run_id, 'running', this.deps.now()));
    }
    this.deps.emit(
      'workflow:started',
      {
        run_id: row.run_id,
        workflow: row.workflow,
        version: row.version,
        steps: def.steps.map((s) => s.id),
        inputs: run.inputs,
        budget_usd: row.budget_usd,
        resumed,
      },
      run.context,
    );
    run.pump();
    return run;
  }

  /** Start queued runs, oldest first, while there is room. */
  private promote(): void {
    if (this.deps.isStopping()) return;
    for (const row of this.deps.store.activeRuns()) {
      if (this.live.size >= this.deps.config.max_active_runs) return;
      if (row.status === 'queued' && !this.live.has(row.run_id)) this.launch(row, false);
    }
  }

  // ---- RunHost --------------------------------------------------------------------------------------

  private batch: { ops: Array<() => void>; after: Array<() => void>; keys: Set<unknown> } | null = null;

  write(op: () => void, once?: unknown): void {
    const b = this.open();
    if (once !== undefined) {
      if (b.keys.has(once)) return;
      b.keys.add(once);
    }
    b.ops.push(op);
  }

  later(fn: () => void): void {
    this.open().after.push(fn);
  }

  /**
   * The batch of this moment, committed in a microtask: the settlements that arrive together (a
   * foreach's items, many runs' steps) share one transaction, and a chain's step shares one with the
   * next step's start. Nothing it decided is acted on before it commits.
   */
  private open(): { ops: Array<() => void>; after: Array<() => void>; keys: Set<unknown> } {
    if (!this.batch) {
      this.batch = { ops: [], after: [], keys: new Set() };
      queueMicrotask(() => this.flush());
    }
    return this.batch;
  }

  private flush(): void {
    const b = this.batch;
    this.batch = null;
    if (!b) return;
    if (b.ops.length) {
      try {
        this.deps.journal(() => {
          for (const op of b.ops) op();
        });
      } catch (err) {
        // Nothing decided in this batch is acted on: its tasks stay as the journal last had them.
        this.deps.log.error({ err }, 'workflow journal write failed');
        return;
      }
    }
    for (const a of b.after) a();
  }

  acquire(run: RunExecutor): boolean {
    if (this.used < this.deps.config.max_running_tasks) {
      this.used++;
      return true;
    }
    this.starving.add(run);
    return false;
  }

  release(): void {
    this.used--;
    const next = this.starving.values().next();
    if (!next.done) {
      this.starving.delete(next.value);
      next.value.pump();
    }
  }

  finished(run: RunExecutor, status: RunStatus): void {
    this.live.delete(run.runId);
    this.starving.delete(run);
    this.deps.ended?.(run, status);
    this.promote();
  }

  // ---- requests -------------------------------------------------------------------------------------

  async cancel(runId: string): Promise<{ run_id: string; status: RunStatus }> {
    const row = this.deps.store.run(runId);
    if (!row) throw new DaemonError('NOT_FOUND', `no run ${runId}`, { run_id: runId });
    if (TERMINAL_RUN.has(row.status))
      throw new DaemonError('CONFLICT', `run ${runId} already ended (${row.status})`, {
        run_id: runId,
        status: row.status,
      });
    const run = this.live.get(runId);
    // Journaled first: a crash from here on never resumes the run.
    await this.deps.durable(() => this.deps.store.setRunStatus(runId, 'cancelled', this.deps.now()));
    if (!run) {
      const cost = await this.deps.cost(runId).catch(() => null);
      await this.deps.durable(() =>
        this.deps.store.finishRun(
          runId,
          'cancelled',
          { code: 'CANCELLED', message: 'the run was cancelled' },
          {},
          cost,
          this.deps.now(),
        ),
      );
      this.deps.emit(
        'workflow:finished',
        {
          run_id: runId,
          workflow: row.workflow,
          status: 'cancelled',
          error: { code: 'CANCELLED', message: 'the run was cancelled' },
          outputs: {},
          cost_usd: cost,
          duration_ms: this.deps.now() - row.created_at,
        },
        JSON.parse(row.context) as EventContext,
      );
      return { run_id: runId, status: 'cancelled' };
    }
    run.cancel();
    const status = await run.whenFinished();
    return { run_id: runId, status };
  }

  async signal(
    runId: string,
    step: string,
    data: unknown,
  ): Promise<{ run_id: string; step: string; status: RunStatus }> {
    const run = this.live.get(runId);
    if (!run) {
      const row = this.deps.store.run(runId);
      if (!row) throw new DaemonError('NOT_FOUND', `no run ${runId}`, { run_id: runId });
      throw new DaemonError('CONFLICT', `run ${runId} is ${row.status}; only a running run takes signals`, {
        run_id: runId,
        status: row.status,
      });
    }
    await run.signal(step, data);
    return { run_id: runId, step, status: run.liveStatus() };
  }

  /** Resolves when the run ends (at once if it has). */
  async wait(runId: string): Promise<RunStatus> {
    const run = this.live.get(runId);
    if (run) return run.whenFinished();
    const row = this.deps.store.run(runId);
    if (!row) throw new DaemonError('NOT_FOUND', `no run ${runId}`, { run_id: runId });
    return row.status;
  }

  private statusOfRow(row: RunRow): RunStatus {
    return this.live.get(row.run_id)?.liveStatus() ?? row.status;
  }

  /** The answer to workflow:status: the run, every step's state and output, the outputs and cost. */
  async status(runId: string): Promise<Record<string, unknown>> {
    const row = this.deps.store.run(runId);
    if (!row) throw new DaemonError('NOT_FOUND', `no run ${runId}`, { run_id: runId });
    const def = JSON.parse(this.deps.store.version(runId, row.version)!.definition) as Definition;
    const stepRows = new Map(this.deps.store.steps(runId).map((s) => [s.step_id, s]));
    const tasks = new Map<string, TaskRow[]>();
    for (const t of this.deps.store.tasks(runId)) {
      const l = tasks.get(t.step_id) ?? [];
      l.push(t);
      tasks.set(t.step_id, l);
    }
    const steps: Record<string, unknown> = {};
    for (const s of def.steps) {
      const sr = stepRows.get(s.id);
      const ts = tasks.get(s.id) ?? [];
      const attempts = ts.reduce((m, t) => Math.max(m, t.attempt), 0);
      const entry: Record<string, unknown> = {
        status: sr?.status ?? 'pending',
        attempts,
        started_at: secs(sr?.started_at ?? null),
        finished_at: secs(sr?.finished_at ?? null),
        needs: s.needs,
        kind: s.event ? 'event' : s.agent ? 'agent' : 'wait',
      };
      if (s.event) entry.event = s.event;
      if (s.foreach !== undefined) {
        const total = sr?.items_total ?? 0;
        const byIdx = new Map(ts.map((t) => [t.idx, t]));
        entry.items = {
          total,
          done: ts.filter((t) => t.status === 'succeeded').length,
          failed: ts.filter((t) => t.status === 'failed').length,
          running: ts.filter((t) => t.status === 'running' || t.status === 'retrying').length,
        };
        if (sr && sr.status !== 'pending' && sr.status !== 'skipped') {
          entry.output = Array.from({ length: total }, (_, i) => {
            const t = byIdx.get(i);
            return t && t.status === 'succeeded' ? parse(t.output) : null;
          });
        }
      } else {
        const t = ts.find((x) => x.idx === 0);
        if (t && t.status === 'succeeded') entry.output = parse(t.output);
      }
      if (sr?.error) entry.error = parse<StepError>(sr.error);
      else {
        const lastErr = ts.find((t) => t.error && t.status !== 'succeeded');
        if (lastErr) entry.error = parse<StepError>(lastErr.error);
      }
      steps[s.id] = entry;
    }
    const run = this.live.get(runId);
    const cost = row.cost_usd ?? (await this.deps.cost(runId).catch(() => null));
    return {
      run_id: runId,
      workflow: row.workflow,
      status: this.statusOfRow(row),
      version: row.version,
      source: row.source,
      inputs: parse(row.inputs),
      budget_usd: row.budget_usd,
      created_at: secs(row.created_at),
      started_at: secs(row.started_at),
      finished_at: secs(row.finished_at),
      error: parse(row.error),
      steps,
      outputs: run ? run.outputs() : (parse(row.outputs) ?? {}),
      cost_usd: cost,
      replans: row.replans,
    };
  }

  /** The versions of a run's definition (a replan adds one), oldest first. */
  versions(runId: string): Array<Record<string, unknown>> {
    return this.deps.store.versions(runId).map((v) => ({
      version: v.version,
      reason: v.reason,
      failed_step: v.failed_step,
      error: parse(v.error),
      replaced: parse(v.replaced) ?? [],
      created_at: v.created_at / 1000,
      definition: JSON.parse(v.definition) as unknown,
    }));
  }

  runs(q: {
    status?: string | undefined;
    workflow?: string | undefined;
    limit: number;
  }): Array<Record<string, unknown>> {
    // waiting is a live refinement of running: ask the journal for running and keep the waiting ones.
    const dbStatus = q.status === 'waiting' ? 'running' : (q.status ?? null);
    const rows = this.deps.store.runs(dbStatus, q.workflow ?? null, q.status === 'waiting' ? 10_000 : q.limit);
    const out: Array<Record<string, unknown>> = [];
    for (const r of rows) {
      const status = this.statusOfRow(r);
      if (q.status && status !== q.status) continue;
      out.push({
        run_id: r.run_id,
        workflow: r.workflow,
        status,
        version: r.version,
        source: r.source,
        budget_usd: r.budget_usd,
        cost_usd: r.cost_usd,
        created_at: r.created_at / 1000,
        started_at: secs(r.started_at),
        finished_at: secs(r.finished_at),
        error: parse(r.error),
      });
      if (out.length >= q.limit) break;
    }
    return out;
  }

  /** At shutdown: nothing new starts (isStopping), and waiting callers are told. */
  stop(): void {
    this.starving.clear();
    for (const run of this.live.values()) run.releaseWaiters();
  }

  health(): Record<string, unknown> {
    return { active_runs: this.live.size, running_tasks: this.used, runs: this.deps.store.counts() };
  }

  activeRuns(): RunExecutor[] {
    return [...this.live.values()];
  }
}
