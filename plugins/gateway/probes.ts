/**
 * What /metrics asks the daemon at scrape time: `system:health`, `system:metrics` (the router's
 * request counters and latency histograms) and each present plugin's status
 * event, all at once, each with a short deadline, answers reused for `probe_cache_ms` so that
 * several scrapers (or a tight interval) cost the daemon one round. A plugin that is absent or
 * does not answer leaves its series out; `agentd_probe_success` says which answered.
 */
import type { PluginContext } from '../../daemon/plugin-api.js';

export type Obj = Record<string, unknown>;

export const PROBES = {
  health: 'system:health',
  metrics: 'system:metrics',
  completion: 'completion:status',
  budget: 'budget:status',
  sandbox: 'sandbox:status',
  kg: 'kg:stats',
  agent: 'agent:list',
  workflow: 'workflow:runs',
} as const;

export type ProbeName = keyof typeof PROBES;

const KERNEL_PROBES = new Set<ProbeName>(['health', 'metrics']);

/** Arguments that keep each answer small. */
const ARGS: Partial<Record<ProbeName, Obj>> = { agent: { limit: 1000 }, workflow: { limit: 1000 } };

export interface Snapshot {
  at: number;
  answers: Partial<Record<ProbeName, Obj>>;
  ok: Partial<Record<ProbeName, boolean>>;
}

export class Probes {
  private last: Snapshot | null = null;
  private pending: Promise<Snapshot> | null = null;

  constructor(
    private readonly ctx: Pick<PluginContext, 'request'>,
    private readonly cacheMs: number,
    private readonly timeoutMs = 3000,
  ) {}

  snapshot(): Promise<Snapshot> {
    if (this.last && Date.now() - this.last.at < this.cacheMs) return Promise.resolve(this.last);
    this.pending ??= this.take().finally(() => (this.pending = null));
    return this.pending;
  }

  private async take(): Promise<Snapshot> {
    const answers: Snapshot['answers'] = {};
    const ok: Snapshot['ok'] = {};
    const health = await this.ask('health');
    if (health) answers.health = health;
    ok.health = health !== null;
    const plugins = (health?.plugins ?? {}) as Record<string, { status?: string }>;
    const names = (Object.keys(PROBES) as ProbeName[]).filter((n) => n !== 'health');
    await Promise.all(
      names.map(async (n) => {
        const st = plugins[n]?.status;
        // The kernel's own events are always there; a plugin's only while it serves.
        if (!KERNEL_PROBES.has(n) && st !== 'ok' && st !== 'degraded') return;
        const a = await this.ask(n);
        ok[n] = a !== null;
        if (a) answers[n] = a;
      }),
    );
    this.last = { at: Date.now(), answers, ok };
    return this.last;
  }

  private async ask(n: ProbeName): Promise<Obj | null> {
    try {
      return await this.ctx.request<Obj>(PROBES[n], ARGS[n] ?? {}, { timeoutMs: this.timeoutMs });
    } catch {
      return null;
    }
  }
}

export const obj = (v: unknown): Obj | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
export const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
export const list = (v: unknown, key: string): unknown[] =>
  Array.isArray(v) ? v : Array.isArray(obj(v)?.[key]) ? (obj(v)![key] as unknown[]) : [];
