/**
 * What the stream does not carry, polled as the TUI polls it (interfaces/monitor/hooks/use-daemon-poll.ts):
 * health every second, each present plugin's status event every two (sandbox: four), and the
 * workflow runs when the workflow plugin is there. A plugin that is not loaded is `absent`.
 */
import { useEffect, useState } from 'react';
import type { Health, Probe } from '../monitor/hooks/use-daemon-poll.js';
import { Api, ApiError } from './api.js';

export const PROBES = {
  agent: ['agent:list', {}],
  completion: ['completion:status', {}],
  budget: ['budget:status', {}],
  sandbox: ['sandbox:status', {}],
  kg: ['kg:stats', {}],
  workflow: ['workflow:runs', { limit: 20 }],
} as const;

export type ProbeName = keyof typeof PROBES;
const EVERY: Record<ProbeName, number> = { agent: 2, completion: 2, budget: 2, sandbox: 4, kg: 2, workflow: 2 };

export interface Snapshot {
  health: Probe<Health>;
  plugins: Record<ProbeName, Probe>;
  /** Set when the token is refused: the page goes back to its form. */
  unauthorized?: boolean;
}

const EMPTY: Snapshot = {
  health: {},
  plugins: { agent: {}, completion: {}, budget: {}, sandbox: {}, kg: {}, workflow: {} },
};

async function probe<T>(api: Api, event: string, data: Record<string, unknown>, previous: Probe<T>): Promise<Probe<T>> {
  try {
    return { data: await api.request<T>(event, data, 3000), at: Date.now() / 1000 };
  } catch (e) {
    const code = e instanceof ApiError ? e.code : 'ERROR';
    if (code === 'UNKNOWN_EVENT') return { absent: true };
    if (code === 'UNAUTHORIZED') throw e;
    return { ...previous, error: { code, message: (e as Error).message } };
  }
}

/** Poll; `bump` forces the plugin probes now (an event said something changed). */
export function usePolls(api: Api, bump: number): Snapshot {
  const [snap, setSnap] = useState<Snapshot>(EMPTY);
  useEffect(() => {
    let disposed = false;
    let round = 0;
    let last = EMPTY;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (): Promise<void> => {
      try {
        const health = await probe<Health>(api, 'system:health', {}, last.health);
        const plugins = { ...last.plugins };
        const loaded = health.data?.plugins;
        await Promise.all(
          (Object.keys(PROBES) as ProbeName[])
            .filter((n) => round % EVERY[n] === 0)
            .map(async (n) => {
              // Workflow is a newer plugin: asked for by its event, whoever serves it, and absent on UNKNOWN_EVENT.
              if (loaded && !(n in loaded) && n !== 'workflow') return void (plugins[n] = { absent: true });
              plugins[n] = await probe(api, PROBES[n][0], PROBES[n][1], last.plugins[n]);
            }),
        );
        round++;
        last = { health, plugins };
      } catch (e) {
        if (e instanceof ApiError && e.code === 'UNAUTHORIZED') last = { ...last, unauthorized: true };
      }
      if (!disposed) setSnap(last);
    };
    const loop = (): void => {
      void run().finally(() => {
        if (!disposed && !last.unauthorized) timer = setTimeout(loop, 1000);
      });
    };
    loop();
    return () => {
      disposed = true;
      clearTimeout(timer);
    };
  }, [api, bump]);
  return snap;
}
