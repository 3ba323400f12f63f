/**
 * What the scheduler needs from outside, as interfaces: the plugin supplies them through the router,
 * a test supplies plain functions. Nothing here imports the kernel.
 */
import type { Logger } from 'pino';
import type { EventContext } from '../../client/protocol.js';
import type { Definition } from './definition.js';
import type { RunExecutor } from './run.js';
import type { RunStatus, StepError, StepStatus, WorkflowStore } from './store.js';
import type { TaskSpec } from './task.js';

export interface EngineConfig {
  /** Tasks running at once across all runs. */
  max_running_tasks: number;
  /** Runs executing at once; more wait as `queued`. */
  max_active_runs: number;
  /** A foreach's items running at once when the step sets no concurrency. */
  default_concurrency: number;
  max_items: number;
  max_output_bytes: number;
  max_replans: number;
  /** Time limit of an attempt when the step sets no timeout_s. */
  event_timeout_s: number;
  agent_timeout_s: number;
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  max_running_tasks: 256,
  max_active_runs: 1000,
  default_concurrency: 8,
  max_items: 10_000,
  max_output_bytes: 1_048_576,
  max_replans: 3,
  event_timeout_s: 600,
  agent_timeout_s: 1800,
};

export interface ReplanRequest {
  run_id: string;
  workflow: string;
  version: number;
  definition: Definition;
  inputs: Record<string, unknown>;
  context: EventContext;
  failed_step: string;
  error: StepError;
  /** Steps that finished and stay as they are. */
  kept: string[];
  state: Record<string, { status: StepStatus; output: unknown; error: StepError | null }>;
}

export interface EngineDeps {
  store: WorkflowStore;
  /** A journal write that a process crash never loses (committed at once, without waiting for the disk). */
  journal(op: () => void): void;
  /** A journal write that is on disk when the promise resolves. */
  durable(op: () => void): Promise<void>;
  /** Carry out one task: the event's answer, or the agent turn's {reply, turn_id, cost_usd}. */
  perform(task: TaskSpec, signal: AbortSignal): Promise<unknown>;
  /** Stop work a task left behind elsewhere (an agent's turn, a queued completion) after a cancel or timeout. */
  abandon(task: TaskSpec): void;
  emit(event: string, data: Record<string, unknown>, context: EventContext): void;
  /** Is this BUDGET_EXCEEDED the run's own budget running out (rather than another scope's)? */
  isRunBudget(runId: string, err: StepError): boolean;
  /** A new definition for the rest of the run: the kept steps unchanged, the others replaced. */
  replan(req: ReplanRequest): Promise<Definition>;
  /** What the run has spent (its budget scope), or null when unknown. */
  cost(runId: string): Promise<number | null>;
  /** A run ended (clean up what it spawned). */
  ended?(run: RunExecutor, status: RunStatus): void;
  isStopping(): boolean;
  now(): number;
  log: Logger;
  config: EngineConfig;
}

/** The engine, as a run sees it: shared task slots, the journal batch, and word that the run ended. */
export interface RunHost {
  /**
   * A journal write. Writes made in one turn of the event loop (by every run) are one transaction,
   * committed before any action queued with `later` in that turn runs. With `once`, the op is added
   * only if none with the same key is in this batch yet (a run's one write of its changed rows).
   */
  write(op: () => void, once?: unknown): void;
  /** An action (an event emitted, a task performed) to take once the writes before it are committed. */
  later(fn: () => void): void;
  /** Take a task slot, or register the run to be pumped when one frees. */
  acquire(run: RunExecutor): boolean;
  release(): void;
  finished(run: RunExecutor, status: RunStatus): void;
}
