/**
 * The run journal, in the shared agentd.db. A run, the versions of its definition (a replan adds one),
 * each step's state, and each task (a step's execution, or one foreach item's) with its attempt,
 * output and error. The scheduler writes a transition here before it acts on it, so after a crash the
 * journal says exactly which tasks finished (never run again) and which were in flight (run again,
 * with the same attempt and so the same idempotency key).
 *
 * One row per transition where one says it all: a step with a single task (no foreach, no wait) has
 * no row of its own while its task's row says what it is (running, succeeded, failed, cancelled, with
 * the same times and error); `steps()` derives it from the task row. The scheduler writes the step's
 * own row as soon as the two would differ (a retry's later attempt, a step waiting for a task slot, a
 * budget stop), and from then on keeps it. Statements bind positionally: binding named parameters
 * from an object costs several times as much, on every transition.
 */
import type Database from 'better-sqlite3';

export const MIGRATIONS: Array<string | ((db: Database.Database) => void)> = [
  `CREATE TABLE workflow_runs (
     run_id TEXT PRIMARY KEY,
     workflow TEXT NOT NULL,
     version INTEGER NOT NULL DEFAULT 1,
     status TEXT NOT NULL,
     inputs TEXT NOT NULL,
     budget_usd REAL,
     context TEXT NOT NULL,
     source TEXT NOT NULL,
     error TEXT,
     outputs TEXT,
     cost_usd REAL,
     replans INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     started_at INTEGER,
     finished_at INTEGER
   );
   CREATE INDEX workflow_runs_status ON workflow_runs (status, created_at);
   CREATE INDEX workflow_runs_created ON workflow_runs (created_at);
   CREATE TABLE workflow_versions (
     run_id TEXT NOT NULL, version INTEGER NOT NULL,
     definition TEXT NOT NULL, reason TEXT NOT NULL, failed_step TEXT, error TEXT, replaced TEXT,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (run_id, version)
   ) WITHOUT ROWID;
   CREATE TABLE workflow_steps (
     run_id TEXT NOT NULL, step_id TEXT NOT NULL,
     status TEXT NOT NULL,
     items_total INTEGER,
     error TEXT,
     started_at INTEGER, finished_at INTEGER,
     PRIMARY KEY (run_id, step_id)
   ) WITHOUT ROWID;
   CREATE TABLE workflow_tasks (
     run_id TEXT NOT NULL, step_id TEXT NOT NULL, idx INTEGER NOT NULL,
     attempt INTEGER NOT NULL,
     status TEXT NOT NULL,
     output TEXT, error TEXT,
     started_at INTEGER NOT NULL, finished_at INTEGER, next_at INTEGER,
     PRIMARY KEY (run_id, step_id, idx)
   ) WITHOUT ROWID;`,
];

export type RunStatus = 'queued' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled' | 'budget_exhausted';
export const TERMINAL_RUN: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled', 'budget_exhausted']);
export type StepStatus = 'pending' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';
export type TaskStatus = 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled';

export interface StepError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface RunRow {
  run_id: string;
  workflow: string;
  version: number;
  status: RunStatus;
  inputs: string;
  budget_usd: number | null;
  context: string;
  source: string;
  error: string | null;
  outputs: string | null;
  cost_usd: number | null;
  replans: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface StepRow {
  run_id: string;
  step_id: string;
  status: StepStatus;
  items_total: number | null;
  error: string | null;
  started_at: number | null;
  finished_at: number | null;
  /** Read back only: true when the step has no row of its own and this one was derived from its task's row. */
  derived?: boolean;
}

export interface TaskRow {
  run_id: string;
  step_id: string;
  idx: number;
  attempt: number;
  status: TaskStatus;
  output: string | null;
  error: string | null;
  started_at: number;
  finished_at: number | null;
  next_at: number | null;
}

export interface VersionRow {
  run_id: string;
  version: number;
  definition: string;
  reason: string;
  failed_step: string | null;
  error: string | null;
  replaced: string | null;
  created_at: number;
}

/**
 * The step row the journal derives from a single-task step's task row when the step has none of its
 * own: the same rule as the `steps` query. The scheduler skips writing a step's row only when this
 * gives exactly the row it would write.
 */
export function stepFromTask(t: TaskRow): StepRow {
  const open = t.status === 'running' || t.status === 'retrying';
  return {
    run_id: t.run_id,
    step_id: t.step_id,
    status: open ? 'running' : (t.status as Exclude<TaskStatus, 'retrying'>),
    items_total: null,
    error: t.status === 'failed' ? t.error : null,
    started_at: t.started_at,
    finished_at: open ? null : t.finished_at,
  };
}

export class WorkflowStore {
  private readonly st;

  constructor(readonly db: Database.Database) {
    this.st = {
      insertRun:
        db.prepare(`INSERT INTO workflow_runs (run_id, workflow, version, status, inputs, budget_usd, context, source, created_at)
        VALUES (@run_id, @workflow, 1, @status, @inputs, @budget_usd, @context, @source, @created_at)`),
      run: db.prepare<[string], RunRow>('SELECT * FROM workflow_runs WHERE run_id = ?'),
      setRunStatus: db.prepare(
        'UPDATE workflow_runs SET status = ?, started_at = COALESCE(started_at, ?) WHERE run_id = ?',
      ),
      finishRun: db.prepare(
        'UPDATE workflow_runs SET status = ?, error = ?, outputs = ?, cost_usd = ?, finished_at = ? WHERE run_id = ?',
      ),
      setVersion: db.prepare('UPDATE workflow_runs SET version = ?, replans = replans + 1 WHERE run_id = ?'),
      active: db.prepare<[], RunRow>(
        "SELECT * FROM workflow_runs WHERE status IN ('queued', 'running') ORDER BY created_at, run_id",
      ),
      insertVersion:
        db.prepare(`INSERT INTO workflow_versions (run_id, version, definition, reason, failed_step, error, replaced, created_at)
        VALUES (@run_id, @version, @definition, @reason, @failed_step, @error, @replaced, @created_at)`),
      version: db.prepare<[string, number], VersionRow>(
        'SELECT * FROM workflow_versions WHERE run_id = ? AND version = ?',
      ),
      versions: db.prepare<[string], VersionRow>('SELECT * FROM workflow_versions WHERE run_id = ? ORDER BY version'),
      // The step rows, then a row derived from the task of each single-task step that has none (see above).
      steps: db.prepare<
        [string, string],
        Omit<StepRow, 'derived'> & { derived: number }
      >(`SELECT run_id, step_id, status, items_total, error, started_at, finished_at, 0 AS derived
          FROM workflow_steps WHERE run_id = ?
        UNION ALL
        SELECT t.run_id, t.step_id, CASE t.status WHEN 'retrying' THEN 'running' ELSE t.status END, NULL,
            CASE WHEN t.status = 'failed' THEN t.error END, t.started_at, CASE WHEN t.status IN ('running', 'retrying') THEN NULL ELSE t.finished_at END, 1
          FROM workflow_tasks t
          WHERE t.run_id = ? AND t.idx = 0 AND NOT EXISTS (SELECT 1 FROM workflow_steps s WHERE s.run_id = t.run_id AND s.step_id = t.step_id)`),
      upsertStep:
        db.prepare(`INSERT INTO workflow_steps (run_id, step_id, status, items_total, error, started_at, finished_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (run_id, step_id) DO UPDATE SET status = excluded.status, items_total = excluded.items_total, error = excluded.error,
          started_at = excluded.started_at, finished_at = excluded.finished_at`),
      deleteStep: db.prepare('DELETE FROM workflow_steps WHERE run_id = ? AND step_id = ?'),
      tasks: db.prepare<[string], TaskRow>('SELECT * FROM workflow_tasks WHERE run_id = ? ORDER BY step_id, idx'),
      upsertTask:
        db.prepare(`INSERT INTO workflow_tasks (run_id, step_id, idx, attempt, status, output, error, started_at, finished_at, next_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (run_id, step_id, idx) DO UPDATE SET attempt = excluded.attempt, status = excluded.status, output = excluded.output,
          error = excluded.error, started_at = excluded.started_at, finished_at = excluded.finished_at, next_at = excluded.next_at`),
      deleteTasks: db.prepare('DELETE FROM workflow_tasks WHERE run_id = ? AND step_id = ?'),
      runs: db.prepare<
        [{ status: string | null; workflow: string | null; limit: number }],
        RunRow
      >(`SELECT * FROM workflow_runs
        WHERE (@status IS NULL OR status = @status) AND (@workflow IS NULL OR workflow = @workflow) ORDER BY created_at DESC, run_id DESC LIMIT @limit`),
      counts: db.prepare<[], { status: string; n: number }>(
        'SELECT status, COUNT(*) AS n FROM workflow_runs GROUP BY status',
      ),
    };
  }

  insertRun(r: {
    run_id: string;
    workflow: string;
    status: RunStatus;
    inputs: unknown;
    budget_usd: number | null;
    context: unknown;
    source: string;
    definition: unknown;
    created_at: number;
  }): void {
    this.st.insertRun.run({ ...r, inputs: JSON.stringify(r.inputs), context: JSON.stringify(r.context) });
    this.st.insertVersion.run({
      run_id: r.run_id,
      version: 1,
      definition: JSON.stringify(r.definition),
      reason: 'start',
      failed_step: null,
      error: null,
      replaced: null,
      created_at: r.created_at,
    });
  }

  run(id: string): RunRow | undefined {
    return this.st.run.get(id);
  }

  setRunStatus(id: string, status: RunStatus, at: number): void {
    this.st.setRunStatus.run(status, at, id);
  }

  finishRun(
    id: string,
    status: RunStatus,
    error: StepError | null,
    outputs: unknown,
    costUsd: number | null,
    at: number,
  ): void {
    this.st.finishRun.run(
      status,
      error ? JSON.stringify(error) : null,
      outputs === undefined ? null : JSON.stringify(outputs),
      costUsd,
      at,
      id,
    );
  }

  addVersion(v: {
    run_id: string;
    version: number;
    definition: unknown;
    reason: string;
    failed_step: string | null;
    error: StepError | null;
    replaced: string[];
    created_at: number;
  }): void {
    this.st.insertVersion.run({
      ...v,
      definition: JSON.stringify(v.definition),
      error: v.error ? JSON.stringify(v.error) : null,
      replaced: JSON.stringify(v.replaced),
    });
    this.st.setVersion.run(v.version, v.run_id);
  }

  version(id: string, version: number): VersionRow | undefined {
    return this.st.version.get(id, version);
  }

  versions(id: string): VersionRow[] {
    return this.st.versions.all(id);
  }

  activeRuns(): RunRow[] {
    return this.st.active.all();
  }

  /** Every step that has begun: its own row, or the one its single task's row implies (`derived`). */
  steps(id: string): StepRow[] {
    return this.st.steps.all(id, id).map((r) => ({ ...r, derived: r.derived === 1 }));
  }

  putStep(r: StepRow): void {
    this.st.upsertStep.run(r.run_id, r.step_id, r.status, r.items_total, r.error, r.started_at, r.finished_at);
  }

  /** A step the replan replaced: it and its tasks are gone from the live run (the version row keeps what it was). */
  dropStep(runId: string, stepId: string): void {
    this.st.deleteStep.run(runId, stepId);
    this.st.deleteTasks.run(runId, stepId);
  }

  tasks(id: string): TaskRow[] {
    return this.st.tasks.all(id);
  }

  putTask(r: TaskRow): void {
    this.st.upsertTask.run(
      r.run_id,
      r.step_id,
      r.idx,
      r.attempt,
      r.status,
      r.output,
      r.error,
      r.started_at,
      r.finished_at,
      r.next_at,
    );
  }

  runs(status: string | null, workflow: string | null, limit: number): RunRow[] {
    return this.st.runs.all({ status, workflow, limit });
  }

  counts(): Record<string, number> {
    return Object.fromEntries(this.st.counts.all().map((r) => [r.status, r.n]));
  }
}
