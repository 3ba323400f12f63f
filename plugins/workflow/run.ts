/**
 * One run's scheduler: which steps are ready (needs finished, `when` true), the tasks they start (one,
 * or one per foreach item within the step's concurrency and the engine's slots), retries with
 * backoff, timeouts, waits for a signal, and what a failure does (fail the run, continue, replan).
 *
 * Every transition is written to the journal before it is acted on: a task is journaled `running`
 * (with its attempt, hence its idempotency key) before it is performed, and its outcome is journaled
 * before anything depends on it. `fromJournal` rebuilds the same state after a crash: finished tasks
 * are kept, tasks that were running are performed again with the same attempt and key.
 */
import type { EventContext } from '../../client/protocol.js';
import { DaemonError } from '../../client/errors.js';
import { kindOf, type Definition, type StepDef } from './definition.js';
import type { EngineDeps, RunHost } from './deps.js';
import {
  stepFromTask,
  type RunRow,
  type RunStatus,
  type StepError,
  type StepRow,
  type StepStatus,
  type TaskRow,
  type TaskStatus,
} from './store.js';
import { backoffMs, errorOf, jsonInReply, KEY_FIELDS, retryable, taskKey, type TaskSpec } from './task.js';
import { render, renderString, truthy } from './template.js';

interface TaskState {
  idx: number;
  attempt: number;
  status: TaskStatus | 'queued';
  output: unknown;
  error: StepError | null;
  startedAt: number;
  finishedAt: number | null;
  nextAt: number | null;
  controller: AbortController | null;
  timer: NodeJS.Timeout | null;
  spec: TaskSpec | null;
  /** Settles the attempt now (a cancel): set while it is performed. */
  interrupt: ((reason: unknown) => void) | null;
}

interface StepState {
  def: StepDef;
  /** Its position in the definition (the order steps are begun and launched in). */
  index: number;
  /** Read and set through the run, which keeps its sets of running and finished steps with it. */
  status: StepStatus;
  /**
   * Whether the journal holds a row of the step's own. A step with a single task has none while its
   * task's row says the same (see store.ts); once written, it is kept up to date.
   */
  ownRow: boolean;
  /** The last row written for a single-task step's task (what the journal derives the step from). */
  lastTask: TaskRow | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: StepError | null;
  /** The foreach list (null for a step without foreach). */
  items: unknown[] | null;
  total: number;
  tasks: Map<number, TaskState>;
  /** Item indexes ready to be performed (again): after a retry's backoff, or found running after a crash. */
  queue: number[];
  /** The next item index never started. */
  next: number;
  inflight: number;
  done: number;
  failed: number;
  waitTimer: NodeJS.Timeout | null;
}

type HaltStatus = 'failed' | 'cancelled' | 'budget_exhausted' | 'replanning';

const isDone = (s: StepStatus): boolean => s === 'succeeded' || s === 'skipped' || s === 'failed' || s === 'cancelled';

/** A step carried out by one task: its state can live in the task's journal row alone. */
const singleTask = (s: StepDef): boolean => s.foreach === undefined && s.wait === undefined;

const sameRow = (a: StepRow, b: StepRow): boolean =>
  a.status === b.status &&
  a.items_total === b.items_total &&
  a.error === b.error &&
  a.started_at === b.started_at &&
  a.finished_at === b.finished_at;

export interface RunInit {
  runId: string;
  workflow: string;
  definition: Definition;
  version: number;
  inputs: Record<string, unknown>;
  context: EventContext;
  budgetUsd: number | null;
  createdAt: number;
  replans: number;
}

export class RunExecutor {
  readonly runId: string;
  readonly workflow: string;
  def: Definition;
  version: number;
  readonly inputs: Record<string, unknown>;
  readonly context: EventContext;
  readonly budgetUsd: number | null;
  readonly createdAt: number;
  replans: number;
  private steps = new Map<string, StepState>();
  /** The steps that need each step (readiness is checked only where a need just finished). */
  private dependents = new Map<string, StepState[]>();
  /** Pending steps to check for readiness at the next pass. */
  private candidates = new Set<StepState>();
  /** Steps whose status is running (their tasks are launched at each pass). */
  private active = new Set<StepState>();
  /** Steps whose status is done (succeeded, skipped, failed, cancelled). */
  private doneCount = 0;
  /** Task and step rows to journal in this moment's batch, in the order they changed. */
  private dirtyTasks = new Map<TaskState, StepState>();
  private dirtySteps = new Set<StepState>();
  /** What templates see under `steps`. */
  private view: Record<string, { status: StepStatus; output: unknown; error: StepError | null }> = {};
  private halt: { status: HaltStatus; error: StepError | null; step: string | null } | null = null;
  private running = 0;
  private pumping = false;
  private again = false;
  private replanning = false;
  private finished: RunStatus | null = null;
  private readonly waiters: Array<{ resolve: (s: RunStatus) => void; reject: (e: unknown) => void }> = [];

  constructor(
    private readonly deps: EngineDeps,
    private readonly host: RunHost,
    init: RunInit,
  ) {
    this.runId = init.runId;
    this.workflow = init.workflow;
    this.def = init.definition;
    this.version = init.version;
    this.inputs = init.inputs;
    this.context = init.context;
    this.budgetUsd = init.budgetUsd;
    this.createdAt = init.createdAt;
    this.replans = init.replans;
    const steps = new Map<string, StepState>();
    for (const s of this.def.steps) steps.set(s.id, this.freshStep(s));
    this.adopt(steps);
  }

  private freshStep(def: StepDef): StepState {
    // The status lives in a closure with accessors, so that every change of it (recovery, replan,
    // a settlement, a cancel) keeps the run's sets right without each site having to.
    let status: StepStatus = 'pending';
    const st = {
      def,
      index: 0,
      ownRow: false,
      lastTask: null,
      startedAt: null,
      finishedAt: null,
      error: null,
      items: null,
      total: 0,
      tasks: new Map(),
      queue: [],
      next: 0,
      inflight: 0,
      done: 0,
      failed: 0,
      waitTimer: null,
    } as unknown as StepState;
    Object.defineProperty(st, 'status', {
      enumerable: true,
      get: () => status,
      set: (v: StepStatus) => {
        const was = status;
        status = v;
        // A step a replan dropped is no longer the run's.
        if (this.steps.get(def.id) !== st) return;
        if (v === 'running') this.active.add(st);
        else if (was === 'running') this.active.delete(st);
        if (isDone(v) !== isDone(was)) this.doneChanged(st, isDone(v));
      },
    });
    return st;
  }

  /** Take `steps` as the run's steps (at construction and after a replan): every set rebuilt from them. */
  private adopt(steps: Map<string, StepState>): void {
    this.steps = steps;
    this.dependents = new Map();
    this.candidates = new Set();
    this.active = new Set();
    this.doneCount = 0;
    let i = 0;
    for (const st of steps.values()) {
      st.index = i++;
      for (const n of st.def.needs) {
        const list = this.dependents.get(n);
        if (list) list.push(st);
        else this.dependents.set(n, [st]);
      }
      if (st.status === 'running') this.active.add(st);
      if (isDone(st.status)) this.doneCount++;
      else if (st.status === 'pending') this.candidates.add(st);
    }
  }

  private doneChanged(st: StepState, done: boolean): void {
    this.doneCount += done ? 1 : -1;
    if (!done) return;
    for (const dep of this.dependents.get(st.def.id) ?? []) if (dep.status === 'pending') this.candidates.add(dep);
  }

  // ---- recovery ------------------------------------------------------------------------------------

  /** Rebuild the state a crash interrupted, from the journal's step and task rows. */
  static fromJournal(
    d: EngineDeps,
    host: RunHost,
    row: RunRow,
    def: Definition,
    steps: StepRow[],
    tasks: TaskRow[],
  ): RunExecutor {
    const r = new RunExecutor(d, host, {
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
    const byStep = new Map<string, TaskRow[]>();
    for (const t of tasks) {
      const list = byStep.get(t.step_id) ?? [];
      list.push(t);
      byStep.set(t.step_id, list);
    }
    for (const sr of steps) {
      const st = r.steps.get(sr.step_id);
      if (!st) continue;
      st.status = sr.status;
      st.startedAt = sr.started_at;
      st.finishedAt = sr.finished_at;
      st.error = sr.error ? (JSON.parse(sr.error) as StepError) : null;
      st.total = sr.items_total ?? 1;
      st.ownRow = sr.derived !== true;
      for (const t of byStep.get(sr.step_id) ?? []) {
        const ts: TaskState = {
          idx: t.idx,
          attempt: t.attempt,
          status: t.status,
          output: t.output === null ? null : JSON.parse(t.output),
          error: t.error ? (JSON.parse(t.error) as StepError) : null,
          startedAt: t.started_at,
          finishedAt: t.finished_at,
          nextAt: t.next_at,
          controller: null,
          timer: null,
          spec: null,
          interrupt: null,
        };
        st.tasks.set(t.idx, ts);
        if (t.idx === 0 && singleTask(st.def)) st.lastTask = t;
      }
      if (st.def.foreach !== undefined && st.status !== 'skipped' && st.status !== 'pending') {
        const items = r.renderHead(st.def.foreach);
        st.items = Array.isArray(items) ? items : [];
        st.total = st.items.length;
      }
      r.view[st.def.id] = { status: st.status, output: r.outputOf(st), error: st.error };
    }
    for (const st of r.steps.values()) {
      if (st.status === 'running') {
        let fresh = 0;
        for (const ts of st.tasks.values()) {
          if (ts.status === 'succeeded') st.done++;
          else if (ts.status === 'failed') (st.done++, st.failed++);
          // In flight at the crash: performed again with the same attempt, so the same key.
          else if (ts.status === 'running') ((ts.status = 'queued'), st.queue.push(ts.idx));
          else if (ts.status === 'retrying') r.scheduleRetry(st, ts, Math.max(0, (ts.nextAt ?? 0) - d.now()));
          fresh = Math.max(fresh, ts.idx + 1);
        }
        st.next = fresh;
        st.queue.sort((a, b) => a - b);
      } else if (st.status === 'waiting') {
        r.armWaitTimeout(st);
      } else if (st.status === 'failed') {
        r.applyFailure(st, st.error ?? { code: 'HANDLER_ERROR', message: 'failed' }, true);
      }
    }
    return r;
  }

  // ---- templates -----------------------------------------------------------------------------------

  private scope(extra?: { item: unknown; index: number; key: string }): Record<string, unknown> {
    return {
      inputs: this.inputs,
      steps: this.view,
      run: { id: this.runId, workflow: this.workflow, ...(extra ? { key: extra.key } : {}) },
      ...(extra ? { item: extra.item, index: extra.index } : {}),
    };
  }

  private renderHead(t: string): unknown {
    return renderString(t, this.scope());
  }

  private outputOf(st: StepState): unknown {
    if (st.status === 'skipped' || st.status === 'pending') return null;
    if (st.def.foreach !== undefined) {
      const out: unknown[] = [];
      for (let i = 0; i < st.total; i++) {
        const t = st.tasks.get(i);
        out.push(t && t.status === 'succeeded' ? t.output : null);
      }
      return out;
    }
    const t = st.tasks.get(0);
    return t && t.status === 'succeeded' ? t.output : null;
  }

  // ---- the loop ------------------------------------------------------------------------------------

  /** Start whatever is ready. Re-entrant calls fold into one more pass. */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.pass();
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  /** Journal the task's row (its state when this moment's batch commits). */
  private putTask(st: StepState, ts: TaskState): void {
    this.dirtyTasks.set(ts, st);
    this.host.write(this.journalDirty, this);
  }

  /** Journal the step's state (its own row, or nothing while its task's row says the same). */
  private putStep(st: StepState): void {
    this.dirtySteps.add(st);
    this.host.write(this.journalDirty, this);
  }

  /**
   * The run's writes of this moment, in one go: task rows first, then the step rows, each decided
   * against the task rows now written. Runs inside the batch's transaction.
   */
  private readonly journalDirty = (): void => {
    const store = this.deps.store;
    for (const [ts, st] of this.dirtyTasks) {
      const row = this.taskRow(st, ts);
      store.putTask(row);
      if (ts.idx === 0 && singleTask(st.def)) {
        st.lastTask = row;
        if (!st.ownRow) this.dirtySteps.add(st);
      }
    }
    this.dirtyTasks.clear();
    for (const st of this.dirtySteps) {
      const row = this.stepRow(st);
      if (!st.ownRow && singleTask(st.def) && st.lastTask && sameRow(row, stepFromTask(st.lastTask))) continue;
      st.ownRow = true;
      store.putStep(row);
    }
    this.dirtySteps.clear();
  };

  /** An action on what was decided (an event, a task performed): after the writes before it commit. */
  private later(fn: () => void): void {
    this.host.later(fn);
  }

  /** Kept as a name for the places that group a decision: the batching itself is the engine's. */
  private atomically(fn: () => void): void {
    fn();
  }

  private pass(): void {
    if (this.finished || this.deps.isStopping()) return;
    if (this.halt) {
      if (this.running > 0 || this.replanning) return;
      if (this.halt.status === 'replanning') void this.replan();
      else void this.finish(this.halt.status, this.halt.error);
      return;
    }
    // Only steps one of whose needs finished since the last look are candidates, in definition order;
    // those that a begin makes ready are looked at in the next round.
    while (this.candidates.size > 0 && !this.halt) {
      const round = [...this.candidates];
      this.candidates.clear();
      if (round.length > 1) round.sort((a, b) => a.index - b.index);
      for (const st of round) {
        if (this.halt) {
          this.candidates.add(st);
          continue;
        }
        if (st.status === 'pending' && this.ready(st)) this.begin(st);
      }
    }
    if (this.halt) {
      this.again = true;
      return;
    }
    const active = this.active.size > 1 ? [...this.active].sort((a, b) => a.index - b.index) : [...this.active];
    for (const st of active) {
      if (st.status === 'running') this.launch(st);
      if (this.halt) break;
    }
    if (!this.halt && this.doneCount === this.steps.size) void this.finish('succeeded', null);
  }

  private ready(st: StepState): boolean {
    for (const n of st.def.needs) {
      const dep = this.steps.get(n);
      if (!dep || !isDone(dep.status)) return false;
    }
    return true;
  }

  /** A step whose needs are done: skipped, waiting, failed on its foreach, or running. */
  private begin(st: StepState): void {
    const now = this.deps.now();
    const s = st.def;
    if (s.when !== undefined && !truthy(this.renderHead(s.when))) {
      st.status = 'skipped';
      st.startedAt = st.finishedAt = now;
      this.putStep(st);
      this.view[s.id] = { status: 'skipped', output: null, error: null };
      this.emit('workflow:step_finished', {
        step: s.id,
        status: 'skipped',
        item: null,
        attempt: 0,
        duration_ms: 0,
        progress: null,
      });
      return;
    }
    st.startedAt = now;
    if (s.wait) {
      st.status = 'waiting';
      st.total = 1;
      this.putStep(st);
      this.view[s.id] = { status: 'waiting', output: null, error: null };
      this.emit('workflow:waiting', {
        step: s.id,
        prompt: renderString(
          s.wait.prompt,
          this.scope({ item: null, index: 0, key: taskKey(this.runId, s.id, null, 1) }),
        ),
      });
      this.armWaitTimeout(st);
      return;
    }
    if (s.foreach !== undefined) {
      const items = this.renderHead(s.foreach);
      const max = this.deps.config.max_items;
      if (!Array.isArray(items) || items.length > max) {
        st.status = 'failed';
        st.finishedAt = now;
        st.error = {
          code: 'INVALID_DATA',
          message: Array.isArray(items)
            ? `foreach has ${items.length} items, more than workflow.max_items (${max})`
            : `foreach ${s.foreach} is not a list (it is ${items === undefined ? 'missing' : JSON.stringify(items)?.slice(0, 100)})`,
        };
        this.putStep(st);
        this.stepFailed(st, null, 0, st.error);
        return;
      }
      st.items = items;
      st.total = items.length;
    } else {
      st.total = 1;
    }
    st.status = 'running';
    this.putStep(st);
    this.view[s.id] = { status: 'running', output: null, error: null };
    if (st.total === 0) this.completeStep(st);
  }

  /** Start tasks of a running step while its concurrency and the engine's slots allow. */
  private launch(st: StepState): void {
    const limit = st.def.foreach !== undefined ? (st.def.concurrency ?? this.deps.config.default_concurrency) : 1;
    while (st.status === 'running' && st.inflight < limit && !this.halt) {
      const queued = st.queue.length > 0;
      if (!queued && st.next >= st.total) return;
      if (!this.host.acquire(this)) return;
      const idx = queued ? st.queue.shift()! : st.next++;
      const prior = st.tasks.get(idx);
      this.perform(st, idx, prior ? prior.attempt : 1);
    }
  }

  private perform(st: StepState, idx: number, attempt: number): void {
    const s = st.def;
    const foreach = s.foreach !== undefined;
    const key = taskKey(this.runId, s.id, foreach ? idx : null, attempt);
    const now = this.deps.now();
    const ts: TaskState = {
      idx,
      attempt,
      status: 'running',
      output: null,
      error: null,
      startedAt: now,
      finishedAt: null,
      nextAt: null,
      controller: new AbortController(),
      timer: null,
      spec: null,
      interrupt: null,
    };
    st.tasks.set(idx, ts);
    st.inflight++;
    this.running++;
    let spec: TaskSpec;
    try {
      spec = this.specOf(st, idx, attempt, key);
    } catch (e) {
      // A body that cannot be built (an output too large to send, say) fails like the task would.
      this.putTask(st, ts);
      this.settle(st, ts, { ok: false, e });
      return;
    }
    ts.spec = spec;
    // Journaled before it is acted on: after a crash this task is performed again with this attempt's key.
    this.putTask(st, ts);
    this.emit('workflow:step_started', { step: s.id, kind: kindOf(s), item: foreach ? idx : null, attempt, key });
    this.later(() => {
      // The daemon began to stop before the start was committed: the journal has it running, so
      // it is performed at the next start.
      if (this.deps.isStopping()) return;
      const signal = ts.controller?.signal;
      // Cancelled before the transaction that started it committed: settle as cancelled, never perform.
      if (!signal || signal.aborted)
        return void Promise.resolve().then(() =>
          this.settle(st, ts, { ok: false, e: signal?.reason ?? new DaemonError('CANCELLED', 'cancelled') }),
        );
      // The first of the answer, the time limit and a cancel settles the attempt. A cancel calls
      // `interrupt` directly rather than through a listener on the signal: listeners on an
      // AbortSignal cost more than the rest of a short step's scheduling.
      let open = true;
      const end = (r: { ok: true; out: unknown } | { ok: false; e: unknown }): void => {
        if (!open) return;
        open = false;
        ts.interrupt = null;
        this.settle(st, ts, r);
      };
      ts.interrupt = (reason) => void Promise.resolve().then(() => end({ ok: false, e: reason }));
      ts.timer = setTimeout(() => {
        this.deps.abandon(spec);
        end({
          ok: false,
          e: new DaemonError('TIMEOUT', `step ${s.id} took longer than ${spec.timeoutMs / 1000} s`, {
            step: s.id,
            timeout_s: spec.timeoutMs / 1000,
          }),
        });
      }, spec.timeoutMs);
      ts.timer.unref?.();
      this.deps.perform(spec, signal).then(
        (out) => end({ ok: true, out }),
        (e: unknown) => end({ ok: false, e }),
      );
    });
  }

  private specOf(st: StepState, idx: number, attempt: number, key: string): TaskSpec {
    const s = st.def;
    const scope = this.scope({ item: st.items ? st.items[idx] : null, index: idx, key });
    const context: EventContext = {
      id: key,
      parent_id: this.context.id,
      root_id: this.context.root_id,
      depth: this.context.depth + 1,
      workflow_id: this.runId,
      ...(this.context.origin !== undefined ? { origin: this.context.origin } : {}),
    };
    const timeoutMs =
      (s.timeout_s ?? (s.agent ? this.deps.config.agent_timeout_s : this.deps.config.event_timeout_s)) * 1000;
    const spec: TaskSpec = {
      run_id: this.runId,
      workflow: this.workflow,
      step: s,
      idx,
      attempt,
      key,
      context,
      timeoutMs,
    };
    if (s.event) {
      const data = (s.data ? render(s.data, scope) : {}) as Record<string, unknown>;
      const field = KEY_FIELDS[s.event];
      if (field && data[field] === undefined) data[field] = key;
      spec.data = data;
    } else if (s.agent) {
      spec.agent = render(s.agent, scope) as TaskSpec['agent'];
    }
    return spec;
  }

  private settle(st: StepState, ts: TaskState, r: { ok: true; out: unknown } | { ok: false; e: unknown }): void {
    this.atomically(() => this.settleIn(st, ts, r));
  }

  private settleIn(st: StepState, ts: TaskState, r: { ok: true; out: unknown } | { ok: false; e: unknown }): void {
    if (ts.timer) clearTimeout(ts.timer);
    ts.timer = null;
    ts.controller = null;
    st.inflight--;
    this.running--;
    this.host.release();
    // Stopping: a failure is the shutdown's doing, so the task stays journaled as running and is
    // performed again at the next start. A success is a fact and is kept.
    if (this.deps.isStopping() && !r.ok) return;
    const now = this.deps.now();
    if (ts.status === 'cancelled') {
      ts.finishedAt = now;
      ts.error = {
        code: 'CANCELLED',
        message: this.halt?.status === 'cancelled' ? 'the run was cancelled' : 'stopped',
      };
      this.putTask(st, ts);
      this.pump();
      return;
    }
    let out: unknown;
    let err: StepError | null = null;
    if (r.ok) {
      try {
        out = this.outputFrom(st.def, r.out);
      } catch (e) {
        err = errorOf(e);
      }
    } else {
      err = errorOf(r.e);
    }
    const foreach = st.def.foreach !== undefined;
    if (!err) {
      ts.status = 'succeeded';
      ts.output = out;
      ts.finishedAt = now;
      st.done++;
      const complete = st.done >= st.total && st.inflight === 0 && st.queue.length === 0 && st.status === 'running';
      if (complete) {
        st.status = st.failed > 0 ? 'failed' : 'succeeded';
        st.finishedAt = now;
      }
      this.putTask(st, ts);
      if (complete) this.putStep(st);
      if (foreach) {
        this.emit('workflow:step_finished', {
          step: st.def.id,
          status: 'succeeded',
          item: ts.idx,
          attempt: ts.attempt,
          duration_ms: now - ts.startedAt,
          progress: { done: st.done, total: st.total },
        });
      }
      if (complete) this.stepCompleted(st);
      this.pump();
      return;
    }
    ts.error = err;
    if (err.code === 'BUDGET_EXCEEDED' && this.deps.isRunBudget(this.runId, err)) {
      ts.status = 'failed';
      ts.finishedAt = now;
      this.putTask(st, ts);
      this.emit('workflow:step_failed', {
        step: st.def.id,
        item: foreach ? ts.idx : null,
        attempt: ts.attempt,
        error: err,
        will_retry: false,
        retry_in_s: null,
      });
      this.stop('budget_exhausted', err, st.def.id, false);
      this.pump();
      return;
    }
    const max = st.def.retry?.max_attempts ?? 1;
    if (retryable(err) && ts.attempt < max && !this.halt) {
      const wait = backoffMs(st.def.retry!, ts.attempt + 1);
      ts.status = 'retrying';
      ts.nextAt = now + wait;
      this.putTask(st, ts);
      this.emit('workflow:step_failed', {
        step: st.def.id,
        item: foreach ? ts.idx : null,
        attempt: ts.attempt,
        error: err,
        will_retry: true,
        retry_in_s: wait / 1000,
      });
      this.scheduleRetry(st, ts, wait);
      this.pump();
      return;
    }
    ts.status = 'failed';
    ts.finishedAt = now;
    if (foreach && st.def.on_failure === 'continue') {
      st.done++;
      st.failed++;
      const complete = st.done >= st.total && st.inflight === 0 && st.queue.length === 0;
      if (complete) {
        st.status = 'failed';
        st.finishedAt = now;
        st.error = { code: err.code, message: `${st.failed} of ${st.total} items failed; the last: ${err.message}` };
      }
      this.putTask(st, ts);
      if (complete) this.putStep(st);
      this.emit('workflow:step_failed', {
        step: st.def.id,
        item: ts.idx,
        attempt: ts.attempt,
        error: err,
        will_retry: false,
        retry_in_s: null,
      });
      if (complete) this.stepCompleted(st);
      this.pump();
      return;
    }
    st.status = 'failed';
    st.finishedAt = now;
    st.error = err;
    this.putTask(st, ts);
    this.putStep(st);
    this.stepFailed(st, foreach ? ts.idx : null, ts.attempt, err);
    this.pump();
  }

  /** A step's final failure (journaled): what its on_failure says happens next. */
  private stepFailed(st: StepState, item: number | null, attempt: number, err: StepError): void {
    this.view[st.def.id] = { status: 'failed', output: this.outputOf(st), error: err };
    this.emit('workflow:step_failed', {
      step: st.def.id,
      item,
      attempt,
      error: err,
      will_retry: false,
      retry_in_s: null,
    });
    // Items of the same step still running are stopped: the step has failed whatever they return.
    for (const t of st.tasks.values()) if (t.status === 'running' || t.status === 'retrying') this.cancelTask(t);
    st.queue = [];
    this.applyFailure(st, err, false);
  }

  private applyFailure(st: StepState, err: StepError, recovering: boolean): void {
    if (err.code === 'BUDGET_EXCEEDED' && this.deps.isRunBudget(this.runId, err))
      return this.stop('budget_exhausted', err, st.def.id, false);
    const mode = st.def.on_failure;
    if (mode === 'continue') return;
    if (mode === 'replan' && this.replans < this.deps.config.max_replans)
      return this.stop('replanning', err, st.def.id, false);
    const why =
      mode === 'replan'
        ? {
            ...err,
            message: `${err.message} (no replan left: workflow.max_replans is ${this.deps.config.max_replans})`,
          }
        : err;
    this.stop('failed', { ...why, details: { ...why.details, step: st.def.id } }, st.def.id, !recovering);
  }

  private stepCompleted(st: StepState): void {
    const output = this.outputOf(st);
    this.view[st.def.id] = { status: st.status, output, error: st.error };
    this.emit('workflow:step_finished', {
      step: st.def.id,
      status: st.status,
      item: null,
      attempt: Math.max(0, ...[...st.tasks.values()].map((t) => t.attempt)),
      duration_ms: (st.finishedAt ?? this.deps.now()) - (st.startedAt ?? this.deps.now()),
      progress: st.def.foreach !== undefined ? { done: st.done, total: st.total } : null,
    });
  }

  private completeStep(st: StepState): void {
    st.status = 'succeeded';
    st.finishedAt = this.deps.now();
    this.putStep(st);
    this.stepCompleted(st);
  }

  /** An agent step's output: {reply, turn_id, cost_usd}, or with output: json the JSON in the reply. */
  private outputFrom(s: StepDef, out: unknown): unknown {
    let v = out;
    if (s.agent && s.output === 'json') v = jsonInReply(String((out as { reply?: unknown })?.reply ?? ''));
    const size = JSON.stringify(v ?? null).length;
    if (size > this.deps.config.max_output_bytes) {
      throw new DaemonError(
        'INVALID_DATA',
        `the output of step ${s.id} is ${size} bytes, more than workflow.max_output_bytes (${this.deps.config.max_output_bytes})`,
        { retry: false },
      );
    }
    return v ?? null;
  }

  private scheduleRetry(st: StepState, ts: TaskState, waitMs: number): void {
    ts.status = 'retrying';
    ts.timer = setTimeout(() => {
      ts.timer = null;
      if (ts.status !== 'retrying' || this.halt || this.finished) return;
      ts.status = 'queued';
      ts.attempt++;
      st.queue.push(ts.idx);
      this.pump();
    }, waitMs);
    ts.timer.unref?.();
  }

  private cancelTask(t: TaskState): void {
    if (t.status === 'retrying') {
      if (t.timer) clearTimeout(t.timer);
      t.timer = null;
      return;
    }
    if (t.status !== 'running') return;
    t.status = 'cancelled';
    const reason = new DaemonError('CANCELLED', 'cancelled');
    t.controller?.abort(reason);
    t.interrupt?.(reason);
    if (t.spec) this.deps.abandon(t.spec);
  }

  private armWaitTimeout(st: StepState): void {
    const t = st.def.timeout_s;
    if (t === undefined) return;
    const left = Math.max(0, (st.startedAt ?? this.deps.now()) + t * 1000 - this.deps.now());
    st.waitTimer = setTimeout(
      () =>
        this.atomically(() => {
          st.waitTimer = null;
          if (st.status !== 'waiting' || this.finished) return;
          st.status = 'failed';
          st.finishedAt = this.deps.now();
          st.error = { code: 'TIMEOUT', message: `no signal for step ${st.def.id} within ${t} s` };
          this.putStep(st);
          this.stepFailed(st, null, 1, st.error);
          this.pump();
        }),
      left,
    );
    st.waitTimer.unref?.();
  }

  // ---- signals, cancel, halt -----------------------------------------------------------------------

  /** Release a waiting step with the signal's data as its output (durable before it is acted on). */
  async signal(stepId: string, data: unknown): Promise<void> {
    const st = this.steps.get(stepId);
    if (!st)
      throw new DaemonError('NOT_FOUND', `run ${this.runId} has no step ${stepId}`, {
        run_id: this.runId,
        step: stepId,
      });
    if (st.status !== 'waiting') {
      throw new DaemonError('CONFLICT', `step ${stepId} is not waiting for a signal (it is ${st.status})`, {
        run_id: this.runId,
        step: stepId,
        status: st.status,
      });
    }
    if (st.waitTimer) clearTimeout(st.waitTimer);
    const now = this.deps.now();
    st.status = 'succeeded';
    st.finishedAt = now;
    const ts: TaskState = {
      idx: 0,
      attempt: 1,
      status: 'succeeded',
      output: data ?? null,
      error: null,
      startedAt: st.startedAt ?? now,
      finishedAt: now,
      nextAt: null,
      controller: null,
      timer: null,
      spec: null,
      interrupt: null,
    };
    st.tasks.set(0, ts);
    st.done = 1;
    await this.deps.durable(() => {
      this.deps.store.putTask(this.taskRow(st, ts));
      this.deps.store.putStep(this.stepRow(st));
    });
    this.stepCompleted(st);
    this.pump();
  }

  /** Stop the run: cancel running tasks, keep every output. The caller journaled the decision. */
  cancel(): void {
    this.atomically(() => {
      this.stop('cancelled', { code: 'CANCELLED', message: 'the run was cancelled' }, null, true);
      this.pump();
    });
  }

  private stop(status: HaltStatus, error: StepError | null, step: string | null, abort: boolean): void {
    // The first reason stands, except that a cancel overrides a replan or a budget stop in progress.
    if (this.halt && this.halt.status !== 'replanning' && status !== 'cancelled') return;
    this.halt = { status, error, step };
    for (const st of this.steps.values()) {
      if (st.waitTimer) clearTimeout(st.waitTimer);
      for (const t of st.tasks.values()) {
        if (t.status === 'retrying' || (abort && t.status === 'running')) this.cancelTask(t);
      }
    }
  }

  // ---- replan --------------------------------------------------------------------------------------

  private async replan(): Promise<void> {
    this.replanning = true;
    const failedStep = this.halt!.step!;
    const error = this.halt!.error!;
    const keep = [...this.steps.values()].filter(
      (s) =>
        s.status === 'succeeded' ||
        s.status === 'skipped' ||
        (s.status === 'failed' && s.def.on_failure === 'continue'),
    );
    const keptIds = new Set(keep.map((s) => s.def.id));
    let next: Definition;
    try {
      next = await this.deps.replan({
        run_id: this.runId,
        workflow: this.workflow,
        version: this.version,
        definition: this.def,
        inputs: this.inputs,
        context: this.context,
        failed_step: failedStep,
        error,
        kept: [...keptIds],
        state: this.stepsSummary(),
      });
    } catch (e) {
      this.replanning = false;
      if (this.deps.isStopping()) return;
      const err = errorOf(e);
      this.halt = {
        status: 'failed',
        error: {
          ...err,
          message: `replanning after step ${failedStep} failed did not succeed: ${err.message}`,
          details: { ...err.details, step: failedStep },
        },
        step: failedStep,
      };
      this.pump();
      return;
    }
    const replaced = [...this.steps.keys()].filter((id) => !keptIds.has(id));
    const added = next.steps.filter((s) => !keptIds.has(s.id)).map((s) => s.id);
    const version = this.version + 1;
    await this.deps.durable(() => {
      this.deps.store.addVersion({
        run_id: this.runId,
        version,
        definition: next,
        reason: 'replan',
        failed_step: failedStep,
        error,
        replaced,
        created_at: this.deps.now(),
      });
      for (const id of replaced) this.deps.store.dropStep(this.runId, id);
    });
    const steps = new Map<string, StepState>();
    for (const s of next.steps) {
      const old = keptIds.has(s.id) ? this.steps.get(s.id)! : null;
      steps.set(s.id, old ?? this.freshStep(s));
    }
    this.adopt(steps);
    for (const id of replaced) delete this.view[id];
    this.def = next;
    this.version = version;
    this.replans++;
    this.halt = null;
    this.replanning = false;
    this.emit('workflow:replanned', { version, failed_step: failedStep, error, replaced, added });
    this.pump();
  }

  // ---- the end -------------------------------------------------------------------------------------

  private async finish(status: RunStatus, error: StepError | null): Promise<void> {
    if (this.finished) return;
    this.finished = status;
    const now = this.deps.now();
    for (const st of this.steps.values()) {
      if (st.waitTimer) clearTimeout(st.waitTimer);
      const stopped: TaskState[] = [];
      for (const t of st.tasks.values()) {
        if (t.timer) clearTimeout(t.timer);
        if (t.status === 'retrying' || t.status === 'queued' || t.status === 'running') {
          t.status = 'cancelled';
          t.finishedAt = now;
          stopped.push(t);
        }
      }
      const open = st.status === 'running' || st.status === 'waiting';
      if (open) {
        st.status = 'cancelled';
        st.finishedAt = now;
      }
      if (open || stopped.length) {
        for (const t of stopped) this.putTask(st, t);
        this.putStep(st);
      }
    }
    const outputs = this.outputs();
    const cost = await this.deps.cost(this.runId).catch(() => null);
    try {
      await this.deps.durable(() => this.deps.store.finishRun(this.runId, status, error, outputs, cost, now));
    } catch (e) {
      this.deps.log.error({ err: e, run_id: this.runId }, 'run outcome not journaled');
    }
    this.emit('workflow:finished', { status, error, outputs, cost_usd: cost, duration_ms: now - this.createdAt });
    this.host.finished(this, status);
    for (const w of this.waiters.splice(0)) w.resolve(status);
  }

  /** The definition's outputs, or the output of every step no other step needs. */
  outputs(): Record<string, unknown> {
    if (this.def.outputs) return render(this.def.outputs, this.scope()) as Record<string, unknown>;
    const needed = new Set(this.def.steps.flatMap((s) => s.needs));
    const out: Record<string, unknown> = {};
    for (const s of this.def.steps) {
      const v = this.view[s.id];
      if (!needed.has(s.id) && v && v.status === 'succeeded') out[s.id] = v.output;
    }
    return out;
  }

  // ---- reads ---------------------------------------------------------------------------------------

  /** Queued, running or waiting (nothing runs and a step waits for its signal). */
  liveStatus(): RunStatus {
    if (this.finished) return this.finished;
    if (this.running > 0 || this.halt) return 'running';
    let waiting = false;
    for (const st of this.steps.values()) {
      if (st.status === 'running' || st.queue.length) return 'running';
      if (st.status === 'waiting') waiting = true;
    }
    return waiting ? 'waiting' : 'running';
  }

  isFinished(): boolean {
    return this.finished !== null;
  }

  whenFinished(): Promise<RunStatus> {
    if (this.finished) return Promise.resolve(this.finished);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** The daemon is stopping: whoever waits for the end is told; the run resumes at the next start. */
  releaseWaiters(): void {
    const err = new DaemonError(
      'SHUTTING_DOWN',
      `the daemon is stopping; run ${this.runId} resumes at the next start`,
      { run_id: this.runId },
    );
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /** Running tasks' specs (for a shutdown's log, and for cleanup). */
  stepsSummary(): Record<string, { status: StepStatus; output: unknown; error: StepError | null }> {
    const out: Record<string, { status: StepStatus; output: unknown; error: StepError | null }> = {};
    for (const [id, st] of this.steps)
      out[id] = { status: st.status, output: this.view[id]?.output ?? null, error: st.error };
    return out;
  }

  /** The keys of every attempt of the agent steps that spawn their own agent, to terminate those agents at the end. */
  spawnedKeys(): string[] {
    const out: string[] = [];
    for (const st of this.steps.values()) {
      if (!st.def.agent || st.def.agent.agent_id !== undefined) continue;
      for (const t of st.tasks.values()) {
        for (let a = 1; a <= t.attempt; a++)
          out.push(taskKey(this.runId, st.def.id, st.def.foreach !== undefined ? t.idx : null, a));
      }
    }
    return out;
  }

  private stepRow(st: StepState): StepRow {
    return {
      run_id: this.runId,
      step_id: st.def.id,
      status: st.status,
      items_total: st.def.foreach !== undefined ? st.total : null,
      error: st.error ? JSON.stringify(st.error) : null,
      started_at: st.startedAt,
      finished_at: st.finishedAt,
    };
  }

  private taskRow(st: StepState, t: TaskState): TaskRow {
    return {
      run_id: this.runId,
      step_id: st.def.id,
      idx: t.idx,
      attempt: t.attempt,
      status: t.status === 'queued' ? 'running' : t.status,
      output: t.status === 'succeeded' ? JSON.stringify(t.output ?? null) : null,
      error: t.error ? JSON.stringify(t.error) : null,
      started_at: t.startedAt,
      finished_at: t.finishedAt,
      next_at: t.nextAt,
    };
  }

  private emit(event: string, data: Record<string, unknown>): void {
    this.later(() => this.deps.emit(event, { run_id: this.runId, workflow: this.workflow, ...data }, this.context));
  }
}
