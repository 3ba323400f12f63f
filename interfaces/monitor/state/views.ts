/**
 * The rows each panel lists, derived from the polled snapshot and the stream (pure). The panels
 * render them; the app uses the same lists for selection and details. Plugin answers are read
 * tolerantly: a field that is missing is shown as missing, never as a crash.
 */
import type { Probe, Health } from '../hooks/use-daemon-poll.js';
import type { CompletionRow, ExecRow, StreamState } from './stream.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);
const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : undefined;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const first = <T>(o: Obj, keys: string[], pick: (v: unknown) => T | undefined): T | undefined => {
  for (const k of keys) {
    const v = pick(o[k]);
    if (v !== undefined) return v;
  }
  return undefined;
};

export interface PluginView {
  name: string;
  status: string;
  reason?: string;
  details?: Obj;
}

export function pluginViews(health: Probe<Health>): PluginView[] {
  const plugins = health.data?.plugins ?? {};
  return Object.entries(plugins)
    .map(([name, p]) => ({
      name,
      status: p.status,
      ...(p.reason ? { reason: p.reason } : {}),
      ...(p.details ? { details: p.details } : {}),
    }))
    .sort((a, b) => rankOf(a.status) - rankOf(b.status) || a.name.localeCompare(b.name));
}

/** Problems first: a failed plugin must not hide below the fold of a small panel. */
const RANK: Record<string, number> = { failed: 0, degraded: 1, loading: 2, ok: 3, stopped: 4 };
const rankOf = (status: string): number => RANK[status] ?? 2;

export interface AgentView {
  id: string;
  status?: string;
  turn?: number;
  tool?: string;
  spendUsd?: number;
  model?: string;
  lastEvent?: string;
  raw: Obj;
}

/** How long an agent stays listed after it was terminated, so its end is seen. */
export const TERMINATED_SHOWN_S = 30;

/**
 * `agent:list` rows (live agents), with live turn/tool from the stream; agents seen only in events
 * are listed too. A terminated agent leaves the list TERMINATED_SHOWN_S after its termination.
 */
export function agentViews(probe: Probe, stream: StreamState, nowS = Date.now() / 1000): AgentView[] {
  const listed = probe.data
    ? Array.isArray(probe.data.agents)
      ? probe.data.agents
      : Array.isArray(probe.data)
        ? probe.data
        : []
    : [];
  const out = new Map<string, AgentView>();
  for (const a of listed) {
    const o = obj(a);
    if (!o) continue;
    const id = first(o, ['agent_id', 'id', 'name'], str);
    if (!id) continue;
    const spend =
      first(o, ['spent_usd', 'spend_usd', 'cost_usd', 'spent'], num) ??
      num(obj(o.budget)?.spent_usd) ??
      num(obj(o.usage)?.cost_usd);
    out.set(id, {
      id,
      status: first(o, ['status', 'state'], str),
      turn: first(o, ['turn', 'turns'], num) ?? num(obj(o.usage)?.turns),
      tool: first(o, ['tool', 'current_tool', 'tool_in_use'], str),
      spendUsd: spend,
      model: first(o, ['model'], str),
      raw: o,
    });
  }
  for (const act of Object.values(stream.agents)) {
    if (act.status === 'terminated' && nowS - act.updated > TERMINATED_SHOWN_S) {
      out.delete(act.agentId);
      continue;
    }
    const v = out.get(act.agentId) ?? { id: act.agentId, raw: {} };
    out.set(act.agentId, {
      ...v,
      // The stream is fresher than the last poll.
      status: act.status && (!probe.at || act.updated >= probe.at) ? act.status : (v.status ?? act.status),
      turn: act.turn ?? v.turn,
      tool: act.tool ?? v.tool,
      lastEvent: act.lastEvent,
    });
  }
  const rank = (a: AgentView): number =>
    a.tool ? 0 : a.status === 'running' || a.status === 'busy' ? 1 : a.status === 'terminated' ? 3 : 2;
  // A poll of every agent (an older daemon without status: live) still lists no terminated ones for long.
  for (const [id, v] of out) if (v.status === 'terminated' && !stream.agents[id]) out.delete(id);
  return [...out.values()].sort((a, b) => rank(a) - rank(b) || a.id.localeCompare(b.id));
}

export interface CompletionsView {
  inFlight: number;
  queued: number;
  /** Per session queue lengths from `completion:status` when it reports them. */
  sessions: Array<{ session: string; queued: number }>;
  rows: CompletionRow[];
}

/** Rows from the stream; queue figures from `completion:status` when it has them, else from the stream. */
export function completionsView(probe: Probe, stream: StreamState): CompletionsView {
  const rows = Object.values(stream.completions).sort((a, b) => {
    const live = (r: CompletionRow): number => (r.status === 'running' ? 0 : r.status === 'queued' ? 1 : 2);
    return live(a) - live(b) || b.updated - a.updated;
  });
  const streamRunning = rows.filter((r) => r.status === 'running');
  let inFlight = streamRunning.length;
  let queued = rows.filter((r) => r.status === 'queued').length;
  const sessions: CompletionsView['sessions'] = [];
  const d = probe.data;
  if (d) {
    // The poll is authoritative, but the stream may have seen a start since it was taken.
    const polled = first(d, ['running', 'in_flight', 'active'], num);
    const since = streamRunning.filter((r) => probe.at !== undefined && r.updated > probe.at).length;
    if (polled !== undefined) inFlight = Math.max(polled, since);
    queued = first(d, ['queued', 'queue_length', 'pending'], num) ?? queued;
    // Either {session: n} maps or [{session_id, queued}] lists, under `sessions` or `queues`.
    for (const field of ['sessions', 'queues']) {
      const v = d[field];
      if (Array.isArray(v)) {
        for (const item of v) {
          const o = obj(item);
          const session = o && first(o, ['session_id', 'session', 'key'], str);
          const n = o && first(o, ['queued', 'length', 'size'], num);
          if (session && n) sessions.push({ session, queued: n });
        }
      } else if (obj(v)) {
        for (const [session, x] of Object.entries(obj(v)!)) {
          const n = num(x) ?? (Array.isArray(x) ? x.length : num(obj(x)?.queued));
          if (n) sessions.push({ session, queued: n });
        }
      }
      if (sessions.length) break;
    }
    // Requests running since before the monitor's history reaches.
    if (Array.isArray(d.in_flight)) {
      const known = new Set(rows.map((r) => r.requestId));
      for (const item of d.in_flight) {
        const o = obj(item);
        const id = o && str(o.request_id);
        if (!o || !id || known.has(id)) continue;
        rows.unshift({
          requestId: id,
          status: 'running',
          sessionId: str(o.session_id),
          agentId: str(o.agent_id),
          model: str(o.model),
          tokens: 0,
          started: 0,
          updated: 0,
        });
      }
    }
  }
  return { inFlight, queued, sessions: sessions.sort((a, b) => b.queued - a.queued), rows };
}

export interface BudgetView {
  key: string;
  label: string;
  period: string;
  spentUsd: number;
  limitUsd: number | null;
  percent: number | null;
  spentTokens?: number;
  limitTokens?: number | null;
  percentTokens?: number | null;
  raw: Obj;
}

export function budgetViews(probe: Probe): BudgetView[] {
  const scopes = Array.isArray(probe.data?.scopes) ? (probe.data!.scopes as unknown[]) : [];
  const out: BudgetView[] = [];
  for (const s of scopes) {
    const o = obj(s);
    if (!o) continue;
    const scope = str(o.scope) ?? '?';
    const id = str(o.id);
    const period = str(o.period) ?? 'total';
    const label = id ? `${scope}:${id}` : scope;
    out.push({
      key: `${label}/${period}`,
      label,
      period,
      spentUsd: num(o.spent_usd) ?? 0,
      limitUsd: num(o.limit_usd) ?? null,
      percent: num(o.percent) ?? null,
      spentTokens: num(o.spent_tokens),
      limitTokens: num(o.limit_tokens) ?? null,
      percentTokens: num(o.percent_tokens) ?? null,
      raw: o,
    });
  }
  // Closest to its limit first: that is what an operator watches.
  const p = (b: BudgetView): number => Math.max(b.percent ?? -1, b.percentTokens ?? -1);
  return out.sort((a, b) => p(b) - p(a) || a.label.localeCompare(b.label));
}

export interface SandboxView {
  engine?: { reachable: boolean; version?: string; reason?: string };
  pool?: { size?: number; ready?: number };
  running?: number;
  queued?: number;
  sessions?: number;
  rows: ExecRow[];
}

export function sandboxView(probe: Probe, stream: StreamState): SandboxView {
  const d = probe.data;
  const engine = obj(d?.engine);
  const pool = obj(d?.pool);
  const rows = Object.values(stream.execs).sort(
    (a, b) => Number(b.running) - Number(a.running) || b.updated - a.updated,
  );
  return {
    ...(engine
      ? { engine: { reachable: engine.reachable === true, version: str(engine.version), reason: str(engine.reason) } }
      : {}),
    ...(pool ? { pool: { size: num(pool.size), ready: num(pool.ready) } } : {}),
    running: num(d?.running_execs) ?? (d ? undefined : rows.filter((r) => r.running).length),
    queued: num(d?.queued_execs),
    sessions: num(d?.sessions),
    rows,
  };
}

export interface KgView {
  nodes?: number;
  edges?: number;
  /** Labels and edge types with their counts, largest first. */
  rows: Array<{ key: string; kind: 'label' | 'type'; name: string; count: number }>;
}

export function kgView(probe: Probe): KgView {
  const d = probe.data;
  if (!d) return { rows: [] };
  const rows: KgView['rows'] = [];
  for (const [kind, field] of [
    ['label', 'labels'],
    ['type', 'types'],
  ] as const) {
    for (const [name, v] of Object.entries(obj(d[field]) ?? {})) {
      const count = num(v);
      if (count !== undefined) rows.push({ key: `${kind}:${name}`, kind, name, count });
    }
  }
  return {
    nodes: num(d.nodes),
    edges: num(d.edges),
    rows: rows.sort((a, b) => b.count - a.count || a.name.localeCompare(b.name)),
  };
}
