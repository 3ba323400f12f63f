/**
 * The Workflows panel's own poll: workflow:runs, and workflow:status of the run it shows (the one
 * selected, else the newest that is not finished, else the newest). Committed on the frame clock's
 * tick like every other state change. An absent workflow plugin leaves the panel saying so.
 */
import { useEffect, useRef, useState } from 'react';
import type { EventClient } from '../../../client/index.js';
import { isDaemonError } from '../../../client/index.js';
import type { EventData } from '../../../client/event-types.js';
import type { FrameClock } from '../frame-clock.js';
import type { Probe } from './use-daemon-poll.js';
import { runRows } from '../state/workflows.js';

export interface WorkflowsSnapshot {
  runs: Probe;
  status: Probe;
}

const LIVE = new Set(['running', 'waiting', 'queued']);

/** Runs for a goal learned or followed a trace: the trace plugin says which and what each saved (written into the runs' data). */
async function withSaved(data: unknown, ask: (ids: string[]) => Promise<Probe>): Promise<void> {
  const runs = (data as { runs?: Array<Record<string, unknown>> } | undefined)?.runs ?? [];
  const ids = runs.map((r) => String(r.run_id));
  if (!ids.length) return;
  const got = (await ask(ids)).data as
    { runs?: Array<{ run_id: string; mode: string; saved_usd: number | null }> } | undefined;
  const byId = new Map((got?.runs ?? []).map((r) => [r.run_id, r]));
  for (const r of runs) {
    const g = byId.get(String(r.run_id));
    if (!g) continue;
    r.saved_usd = g.saved_usd;
    r.trace_mode = g.mode;
  }
}

export function useWorkflows(
  client: EventClient,
  clock: FrameClock,
  selectedRunId: string | null,
  intervalMs = 1000,
): WorkflowsSnapshot {
  const [snap, setSnap] = useState<WorkflowsSnapshot>({ runs: {}, status: {} });
  const selected = useRef(selectedRunId);
  selected.current = selectedRunId;
  useEffect(() => {
    let disposed = false;
    let ready: WorkflowsSnapshot | null = null;
    let last: WorkflowsSnapshot = { runs: {}, status: {} };
    const stopClock = clock.add(() => {
      if (ready) setSnap(ready);
      ready = null;
    });
    const ask = async <E extends 'workflow:runs' | 'workflow:status' | 'trace:runs'>(
      event: E,
      data: EventData<E>,
      prev: Probe,
    ): Promise<Probe> => {
      try {
        return { data: await client.request(event, data, { timeoutMs: 3000 }), at: Date.now() / 1000 };
      } catch (e) {
        const code = isDaemonError(e) ? e.code : 'ERROR';
        if (code === 'UNKNOWN_EVENT') return { absent: true };
        return { ...prev, error: { code, message: (e as Error).message } };
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const run = async (): Promise<void> => {
      const runs = await ask('workflow:runs', { limit: 50 }, last.runs);
      await withSaved(runs.data, (ids) => ask('trace:runs', { run_ids: ids }, {}));
      const rows = runRows(runs.data);
      const shown = selected.current ?? rows.find((r) => LIVE.has(r.status))?.runId ?? rows[0]?.runId ?? null;
      const status = shown ? await ask('workflow:status', { run_id: shown }, last.status) : {};
      if (disposed) return;
      last = { runs, status };
      ready = last;
    };
    const loop = (): void => {
      void run().finally(() => {
        if (!disposed) timer = setTimeout(loop, intervalMs);
      });
    };
    loop();
    return () => {
      disposed = true;
      clearTimeout(timer);
      stopClock();
    };
  }, [client, clock, intervalMs]);
  return snap;
}
