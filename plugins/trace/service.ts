/**
 * The trace service: the store, the recorder, the replayer, and settling runs into traces. One
 * instance per plugin start, holding all of the plugin's state; the handlers call its methods.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { DaemonError, GroupCommit, type CallContext, type EventContext, type PluginContext } from '../../daemon/plugin-api.js';
import { findTraces, goalColumns, type Match } from './finder.js';
import { followDefinition, type Plan } from './follow-plan.js';
import { Recorder } from './recorder.js';
import { Replayer, type ReplayInput } from './replay.js';
import type { TraceConfig } from './schemas.js';
import { learnedItems, repairedItems, TERMINAL, type RunStatus } from './settle.js';
import { TraceStore, type ItemRow, type RunRow, type TraceRow } from './store.js';

export interface ServiceDeps {
  db: Database.Database;
  log: Logger;
  config: TraceConfig;
  request: PluginContext['request'];
  emit: PluginContext['emit'];
}

const secs = (ms: number | null): number | null => (ms === null ? null : ms / 1000);
const usd = (v: number | null): number | null => (v === null ? null : Math.round(v * 1e9) / 1e9);
const rate = (t: TraceRow): number | null => (t.successes + t.failures === 0 ? null : Math.round((t.successes / (t.successes + t.failures)) * 1e4) / 1e4);

export class TraceService {
  readonly store: TraceStore;
  readonly recorder: Recorder;
  private readonly replayer: Replayer;
  private readonly gc: GroupCommit;
  /** Settles in progress, so a run ends into a trace once. */
  private readonly settling = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, Array<() => void>>();
  private stopping = false;

  constructor(private readonly d: ServiceDeps) {
    this.store = new TraceStore(d.db);
    this.gc = GroupCommit.for(d.db);
    this.recorder = new Recorder(d.db, this.store);
    this.replayer = new Replayer({
      db: d.db, store: this.store, fallbackTimeoutMs: d.config.fallback_timeout_s * 1000,
      emit: (event, data, call) => call.emit(event, data),
    });
    for (const r of this.store.openRuns()) this.recorder.open.add(r.run_id);
  }

  /** After a restart: runs that ended while the daemon was down (or whose end was not seen) are settled now. */
  recover(): void {
    for (const runId of this.recorder.open) void this.settle(runId).catch((err: unknown) => this.d.log.warn({ err, run_id: runId }, 'settling a run after restart failed'));
  }

  stop(): void {
    this.stopping = true;
  }

  // ---- finding --------------------------------------------------------------------------------------

  match(goal: string, o: { threshold?: number | undefined; limit?: number; include_demoted?: boolean }): Match[] {
    return findTraces(this.store, goal, {
      threshold: o.threshold ?? this.d.config.threshold, candidates: this.d.config.candidates, includeDemoted: o.include_demoted ?? false, limit: o.limit ?? 1,
    });
  }

  find(d: { goal: string; threshold?: number | undefined; limit: number; include_demoted: boolean }): Record<string, unknown> {
    const t0 = process.hrtime.bigint();
    const matches = this.match(d.goal, d);
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    return { matches: matches.map((m) => ({ ...this.summary(m.trace), match: m.match, score: m.score })), lookup_us: Math.round(us) };
  }

  // ---- reading --------------------------------------------------------------------------------------

  private summary(t: TraceRow): Record<string, unknown> {
    const c = this.store.itemCounts(t.trace_id);
    return {
      trace_id: t.trace_id, goal: t.goal, signature: t.signature, status: t.status, version: t.version,
      usage_count: t.usage_count, success_rate: rate(t), successes: t.successes, failures: t.failures, repairs: t.repairs,
      steps: (JSON.parse(t.plan) as Plan).steps?.length ?? 0, items: c.items, events: c.events,
      learned_run_id: t.learned_run_id, learned_cost_usd: usd(t.learned_cost_usd), saved_usd: usd(t.saved_usd),
      created: secs(t.created_at), last_used: secs(t.last_used_at), updated: secs(t.updated_at),
    };
  }

  list(d: { status?: 'active' | 'demoted' | undefined; order: 'last_used' | 'created' | 'usage'; limit: number; offset: number }): Record<string, unknown> {
    return { traces: this.store.list(d.order, d.status ?? null, d.limit, d.offset).map((t) => this.summary(t)), total: this.store.count() };
  }

  get(d: { trace_id: string; steps: boolean }): Record<string, unknown> {
    const t = this.store.get(d.trace_id);
    if (!t) throw new DaemonError('NOT_FOUND', `no trace ${d.trace_id}`, { trace_id: d.trace_id });
    const out: Record<string, unknown> = { ...this.summary(t), normalized: t.normalized, plan: JSON.parse(t.plan) as unknown };
    if (d.steps) out.recorded = this.store.items(t.trace_id).map(itemView);
    return out;
  }

  delete(d: { trace_id: string }): Promise<Record<string, unknown>> {
    return this.gc.run(() => {
      if (!this.store.delete(d.trace_id)) throw new DaemonError('NOT_FOUND', `no trace ${d.trace_id}`, { trace_id: d.trace_id });
      return { trace_id: d.trace_id, deleted: true };
    });
  }

  // ---- runs for a goal ------------------------------------------------------------------------------

  /**
   * A run for a goal is about to start: record it (durably, before the run exists, so none of its
   * events is missed). For follow, answers the definition that replays the trace.
   */
  async begin(d: { run_id: string; goal: string; mode: 'learn' | 'follow'; trace_id?: string | undefined; match?: 'exact' | 'similar' | undefined; score?: number | undefined }): Promise<Record<string, unknown>> {
    if (this.stopping) throw new DaemonError('SHUTTING_DOWN', 'the trace plugin is stopping');
    const prior = this.store.run(d.run_id);
    const t = d.trace_id ? this.store.get(d.trace_id) : undefined;
    if (d.mode === 'follow' && !t) throw new DaemonError('NOT_FOUND', `no trace ${d.trace_id}`, { trace_id: d.trace_id });
    if (!prior) {
      await this.gc.run(() => this.store.insertRun({
        run_id: d.run_id, goal: d.goal, signature: goalColumns(d.goal).signature, mode: d.mode, trace_id: t?.trace_id ?? null,
        trace_version: t?.version ?? null, match: d.match ?? null, score: d.score ?? null, learned_cost_usd: t?.learned_cost_usd ?? null, created_at: Date.now(),
      }));
      this.recorder.open.add(d.run_id);
    }
    const row = this.store.run(d.run_id)!;
    if (row.mode !== 'follow') return { run_id: d.run_id, mode: row.mode };
    const trace = this.store.get(row.trace_id!)!;
    return { run_id: d.run_id, mode: 'follow', trace_id: trace.trace_id, version: trace.version, definition: followDefinition(JSON.parse(trace.plan) as Plan) };
  }

  replayStep(d: ReplayInput, call: CallContext): Promise<unknown> {
    return this.replayer.step(d, call);
  }

  runView(r: RunRow): Record<string, unknown> {
    return {
      run_id: r.run_id, goal: r.goal, mode: r.mode, trace_id: r.trace_id, trace_version: r.trace_version, match: r.match, score: r.score,
      status: r.status, settled: r.settled === 1, cost_usd: usd(r.cost_usd), saved_usd: usd(r.saved_usd), learned_cost_usd: usd(r.learned_cost_usd),
      ...(r.outcome ? (JSON.parse(r.outcome) as Record<string, unknown>) : {}),
      created: secs(r.created_at), finished: secs(r.finished_at),
    };
  }

  async run(d: { run_id: string; wait: boolean }, call?: CallContext): Promise<Record<string, unknown>> {
    let r = this.store.run(d.run_id);
    if (!r) throw new DaemonError('NOT_FOUND', `no run for a goal with id ${d.run_id}`, { run_id: d.run_id });
    if (d.wait && r.settled === 0) {
      await new Promise<void>((resolve, reject) => {
        const list = this.waiters.get(d.run_id) ?? [];
        list.push(resolve);
        this.waiters.set(d.run_id, list);
        call?.signal.addEventListener('abort', () => reject(new DaemonError('TIMEOUT', `run ${d.run_id} has not ended yet`)), { once: true });
        // It may have ended before anyone listened.
        void this.settle(d.run_id).catch(() => undefined);
      });
      r = this.store.run(d.run_id)!;
    }
    return this.runView(r);
  }

  runs(d: { run_ids?: string[] | undefined; limit: number }): Record<string, unknown> {
    return { runs: this.store.runs(d.run_ids ?? null, d.limit).map((r) => this.runView(r)) };
  }

  // ---- settling -------------------------------------------------------------------------------------

  /** `workflow:finished` of a recorded run (or a check after a restart): make or update its trace. */
  settle(runId: string): Promise<void> {
    const going = this.settling.get(runId);
    if (going) return going;
    const p = this.settleNow(runId).finally(() => this.settling.delete(runId));
    this.settling.set(runId, p);
    return p;
  }

  private async settleNow(runId: string): Promise<void> {
    const row = this.store.run(runId);
    if (!row || row.settled) return this.wake(runId);
    const ctx: EventContext = { id: `trace-settle-${runId}`, parent_id: null, root_id: `trace-settle-${runId}`, depth: 0 };
    let st: RunStatus;
    try {
      st = await this.d.request<RunStatus>('workflow:status', { run_id: runId, versions: true }, { context: ctx, timeoutMs: 30_000 });
    } catch (e) {
      if (e instanceof DaemonError && e.code === 'NOT_FOUND' && Date.now() - row.created_at > 60_000) {
        // Begun but never started (the caller died in between): nothing to learn from.
        await this.gc.run(() => this.store.settleRun({ run_id: runId, status: 'not_started', cost_usd: null, saved_usd: null, outcome: '{}', trace_id: row.trace_id, now: Date.now() }));
        this.recorder.open.delete(runId);
        return this.wake(runId);
      }
      throw e;
    }
    if (!TERMINAL.has(st.status)) return;
    const cost = st.cost_usd ?? 0;
    const now = Date.now();
    const durationMs = st.finished_at !== null && st.created_at !== null ? Math.round((st.finished_at - st.created_at) * 1000) : null;
    const plan = st.versions?.[st.versions.length - 1]?.definition;
    let outcome: Record<string, unknown> = {};
    let traceId = row.trace_id;
    let saved: number | null = null;
    let emit: [string, Record<string, unknown>] | null = null;
    if (row.mode === 'learn') {
      if (st.status === 'succeeded' && plan) {
        const existing = this.store.bySignature(row.signature);
        traceId = existing?.trace_id ?? `tr${now.toString(36)}${randomBytes(3).toString('hex')}`;
        const items = learnedItems(this.store, runId, traceId, st, plan);
        const id = traceId;
        await this.gc.run(() => {
          if (existing) {
            this.store.deleteItems(id);
            this.store.relearn({ trace_id: id, plan: JSON.stringify(plan), learned_run_id: runId, learned_cost_usd: cost, learned_duration_ms: durationMs, now });
          } else {
            this.store.insert({ trace_id: id, ...goalColumns(row.goal), goal: row.goal, plan: JSON.stringify(plan), learned_run_id: runId, learned_cost_usd: cost, learned_duration_ms: durationMs, now });
          }
          for (const it of items) this.store.putItem(it);
        });
        const t = this.store.get(id)!;
        const events = items.reduce((n, it) => n + (JSON.parse(it.events) as unknown[]).length, 0);
        outcome = { learned: true, items: items.length, events, incomplete: items.filter((i) => !i.complete).length };
        emit = ['trace:learned', { trace_id: id, goal: row.goal, run_id: runId, version: t.version, items: items.length, events, cost_usd: usd(cost) }];
      } else {
        outcome = { learned: false };
      }
    } else if (row.trace_id && this.store.get(row.trace_id)) {
      const t = this.store.get(row.trace_id)!;
      const diverged = this.store.divergences(runId).map((x) => ({ step: x.step, index: x.idx, at: x.at, reason: x.reason }));
      const savedNow = Math.max(0, t.learned_cost_usd - cost);
      saved = savedNow;
      if (st.status === 'succeeded') {
        const repaired = repairedItems(this.store, runId, t.trace_id, st);
        await this.gc.run(() => {
          for (const it of repaired) this.store.putItem(it);
          this.store.used({ trace_id: t.trace_id, ok: 1, failed: 0, repaired: repaired.length > 0 ? 1 : 0, saved: savedNow, now });
        });
        outcome = { diverged, repaired: repaired.length };
      } else if (st.status === 'failed' || st.status === 'budget_exhausted') {
        await this.gc.run(() => this.store.used({ trace_id: t.trace_id, ok: 0, failed: 1, repaired: 0, saved: 0, now }));
        const after = this.store.get(t.trace_id)!;
        const r = rate(after) ?? 0;
        if (r < this.d.config.demote_below && after.status === 'active') {
          await this.gc.run(() => this.store.setStatus(t.trace_id, 'demoted', now));
          this.d.emit('trace:demoted', { trace_id: t.trace_id, success_rate: r }, { context: ctx });
        }
        saved = null;
        outcome = { diverged, repaired: 0, demoted: this.store.get(t.trace_id)!.status === 'demoted' };
      } else {
        outcome = { diverged, repaired: 0 };
      }
      emit = ['trace:followed', { trace_id: t.trace_id, run_id: runId, status: st.status, cost_usd: usd(cost), saved_usd: usd(saved), ...outcome }];
    }
    await this.gc.run(() => {
      this.store.settleRun({ run_id: runId, status: st.status, cost_usd: cost, saved_usd: saved, outcome: JSON.stringify(outcome), trace_id: traceId, now });
      this.store.forgetRecording(runId);
    });
    this.recorder.open.delete(runId);
    if (emit) this.d.emit(emit[0], emit[1], { context: ctx });
    this.d.log.info({ run_id: runId, mode: row.mode, status: st.status, trace_id: traceId }, 'goal run settled');
    this.wake(runId);
  }

  private wake(runId: string): void {
    const list = this.waiters.get(runId);
    this.waiters.delete(runId);
    for (const w of list ?? []) w();
  }

  health(): Record<string, unknown> {
    return { traces: this.store.count(), recording: this.recorder.open.size };
  }
}

function itemView(i: ItemRow): Record<string, unknown> {
  return {
    step: i.step, index: i.idx, kind: i.kind, status: i.status, complete: i.complete === 1,
    output: i.output === null ? null : JSON.parse(i.output) as unknown, error: i.error === null ? null : JSON.parse(i.error) as unknown,
    events: JSON.parse(i.events) as unknown,
  };
}
