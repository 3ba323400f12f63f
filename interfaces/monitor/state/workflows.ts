/**
 * The Workflows panel's rows, from workflow:runs and one run's workflow:status (pure; no React):
 * a line per run (state, progress through its steps, cost) and a line per step of the run shown,
 * in the definition's order with what it needs, its state and a foreach's progress.
 */
import { usd } from './format.js';
import type { Tone } from '../theme.js';

export interface RunRow {
  runId: string;
  workflow: string;
  status: string;
  costUsd: number | null;
  /** learn or follow for a run for a goal (workflow:run_goal), else null. */
  mode: string | null;
  /** What following a trace saved beside learning it (trace:runs), when known. */
  savedUsd: number | null;
}

export interface StepRow {
  id: string;
  status: string;
  text: string;
  tone: Tone;
}

export interface StepsView {
  runId: string;
  status: string;
  done: number;
  total: number;
  steps: StepRow[];
}

const GLYPH: Record<string, string> = {
  succeeded: '✓',
  failed: '✗',
  skipped: '–',
  cancelled: '⊘',
  running: '▶',
  waiting: '⏸',
  pending: '·',
};

export function runTone(status: string): Tone {
  switch (status) {
    case 'succeeded':
      return 'ok';
    case 'running':
      return 'info';
    case 'waiting':
    case 'queued':
    case 'cancelled':
      return 'warn';
    case 'failed':
    case 'budget_exhausted':
      return 'bad';
    default:
      return 'muted';
  }
}

export function runRows(data: unknown): RunRow[] {
  const runs = (data as { runs?: Array<Record<string, unknown>> } | undefined)?.runs ?? [];
  return runs.map((r) => ({
    runId: String(r.run_id),
    workflow: String(r.workflow),
    status: String(r.status),
    costUsd: typeof r.cost_usd === 'number' ? r.cost_usd : null,
    mode:
      typeof r.trace_mode === 'string' ? r.trace_mode : r.source === 'learn' || r.source === 'follow' ? r.source : null,
    savedUsd: typeof r.saved_usd === 'number' ? r.saved_usd : null,
  }));
}

export function runLine(r: RunRow): string {
  const mode = r.mode ? ` ${r.mode}${r.savedUsd !== null ? ` saved ${usd(r.savedUsd)}` : ''}` : '';
  return `${r.status === 'running' ? '▶' : (GLYPH[r.status] ?? ' ')} ${r.workflow} ${r.status}${mode}${r.costUsd !== null ? ` ${usd(r.costUsd)}` : ''} ${r.runId}`;
}

/** The steps of one run as the panel shows them. */
export function stepsView(status: unknown): StepsView | null {
  const st = status as
    { run_id?: string; status?: string; steps?: Record<string, Record<string, unknown>> } | undefined;
  if (!st?.run_id || !st.steps) return null;
  const steps: StepRow[] = [];
  let done = 0;
  for (const [id, s] of Object.entries(st.steps)) {
    const status = String(s.status);
    if (status === 'succeeded' || status === 'skipped' || status === 'failed') done++;
    const items = s.items as { total: number; done: number; failed: number } | undefined;
    const needs = (s.needs as string[] | undefined) ?? [];
    const parts = [`${GLYPH[status] ?? '?'} ${id}`];
    if (items && items.total > 0)
      parts.push(`${items.done}/${items.total}${items.failed ? ` (${items.failed} failed)` : ''}`);
    if (Number(s.attempts) > 1) parts.push(`attempt ${String(s.attempts)}`);
    if (needs.length) parts.push(`← ${needs.join(',')}`);
    steps.push({ id, status, text: parts.join(' '), tone: runTone(status === 'pending' ? 'other' : status) });
  }
  return { runId: st.run_id, status: String(st.status), done, total: steps.length, steps };
}
