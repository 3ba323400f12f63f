/**
 * The trace service: the store, the recorder, the replayer, and settling runs into traces. One
 * instance per plugin start, holding all of the plugin's state; the handlers call its methods.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import {
  DaemonError,
  GroupCommit,
  runLazy,
  type CallContext,
  type EventContext,
  type PluginContext,
} from '../../daemon/plugin-api.js';
import { canonicalJson, findTraces, goalColumns, type Match } from './finder.js';
import { followDefinition, type Plan } from './follow-plan.js';
import { Recorder } from './recorder.js';
import { fallbackNote, replayEvents, Replayer, type ReplayInput } from './replay.js';
import type { TraceConfig } from './schemas.js';
import { eventsOf, learnedItems, repairedItems, TERMINAL, type RunStatus } from './settle.js';
import { TraceStore, type ItemRow, type RecordedEvent, type RunOrigin, type RunRow, type TraceRow } from './store.js';
import { TURN_STEP, turnItem, turnPlan, type TurnSpec } from './turn.js';

export interface ServiceDeps {
  db: Database.Database;
  log: Logger;
  config: TraceConfig;
  request: PluginContext['request'];
  emit: PluginContext['emit'];
}

/** How a run for a goal ended, and how its trace items are made from it. */
interface RunEnd {
  status: string;
  cost: number;
  durationMs: number | null;
  /** The plan it ran (a workflow run's final definition; an agent turn's one-step plan). */
  plan: Plan | null;
  learned(traceId: string, plan: Plan): ItemRow[];
  repaired(traceId: string): ItemRow[];
}

/** An agent turn given a goal ended. */
export interface TurnOutcome {
  status: 'succeeded' | 'failed' | 'cancelled';
  reply: string | null;
  stop_reason: string | null;
  cost_usd: number;
  tool_calls: number;
}

const secs = (ms: number | null): number | null => (ms === null ? null : ms / 1000);
const usd = (v: number | null): number | null => (v === null ? null : Math.round(v * 1e9) / 1e9);
const rate = (t: TraceRow): number | null =>
  t.successes + t.failures === 0 ? null : Math.round((t.successes / (t.successes + t.failures)) * 1e4) / 1e4;

export class TraceService {
  readonly store: TraceStore;
  readonly recorder: Recorder;
  private readonly replayer: Replayer;
  private readonly gc: GroupCommit;
  /** Settles in progress, so a run ends into a trace once. */
  private readonly settling = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, Array<() => void>>();
  /** Goal turns that ended, until they are settled. */
  private readonly turnOutcomes = new Map<string, TurnOutcome>();
  private stopping = false;

  constructor(private readonly deps: ServiceDeps) {
    this.store = new TraceStore(deps.db);
    this.gc = GroupCommit.for(deps.db);
    this.recorder = new Recorder(deps.db, this.store);
    this.replayer = new Replayer({
      db: deps.db,
      store: this.store,
      fallbackTimeoutMs: deps.config.fallback_timeout_s * 1000,
      outputMatters: deps.config.output_matters,
      emit: (event, data, call) => call.emit(event, data),
    });
    for (const r of this.store.openRuns()) {
      if (r.kind === 'turn') this.recorder.reopenTurn(r.run_id, r.agent_id);
      else this.recorder.open.add(r.run_id);
    }
  }

  /** After a restart: runs that ended while the daemon was down (or whose end was not seen) are settled now. */
  recover(): void {
    for (const runId of this.recorder.open)
      void this.settle(runId).catch((err: unknown) =>
        this.deps.log.warn({ err, run_id: runId }, 'settling a run after restart failed'),
      );
  }

  stop(): void {
    this.stopping = true;
  }

  // ---- finding --------------------------------------------------------------------------------------

  match(
    goal: string,
    o: {
      threshold?: number | undefined;
      limit?: number;
      include_demoted?: boolean;
      inputs?: Record<string, unknown> | undefined;
      accept?: (t: TraceRow) => boolean;
    },
  ): Match[] {
    const want = o.inputs && Object.keys(o.inputs).length > 0 ? canonicalJson(o.inputs) : null;
    const accept =
      want === null
        ? o.accept
        : (t: TraceRow): boolean => canonicalJson(JSON.parse(t.inputs)) === want && (o.accept?.(t) ?? true);
    return findTraces(this.store, goal, {
      threshold: o.threshold ?? this.deps.config.threshold,
      candidates: this.deps.config.candidates,
      includeDemoted: o.include_demoted ?? false,
      limit: o.limit ?? 1,
      ...(accept ? { accept } : {}),
    });
  }

  find(d: {
    goal: string;
    threshold?: number | undefined;
    limit: number;
    include_demoted: boolean;
    inputs?: Record<string, unknown> | undefined;
  }): Record<string, unknown> {
    const t0 = process.hrtime.bigint();
    const matches = this.match(d.goal, d);
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    return {
      matches: matches.map((m) => ({ ...this.summary(m.trace), match: m.match, score: m.score })),
      lookup_us: Math.round(us),
    };
  }

  // ---- reading --------------------------------------------------------------------------------------

  private summary(t: TraceRow): Record<string, unknown> {
    const c = this.store.itemCounts(t.trace_id);
    return {
      trace_id: t.trace_id,
      goal: t.goal,
      signature: t.signature,
      status: t.status,
      version: t.version,
      inputs: JSON.parse(t.inputs) as unknown,
      usage_count: t.usage_count,
      success_rate: rate(t),
      successes: t.successes,
      failures: t.failures,
      repairs: t.repairs,
      steps: (JSON.parse(t.plan) as Plan).steps?.length ?? 0,
      items: c.items,
      events: c.events,
      learned_run_id: t.learned_run_id,
      learned_cost_usd: usd(t.learned_cost_usd),
      saved_usd: usd(t.saved_usd),
      created: secs(t.created_at),
      last_used: secs(t.last_used_at),
      updated: secs(t.updated_at),
    };
  }

  list(d: {
    status?: 'active' | 'demoted' | undefined;
    order: 'last_used' | 'created' | 'usage';
    limit: number;
    offset: number;
  }): Record<string, unknown> {
    return {
      traces: this.store.list(d.order, d.status ?? null, d.limit, d.offset).map((t) => this.summary(t)),
      total: this.store.count(),
    };
  }

  get(d: { trace_id: string; steps: boolean }): Record<string, unknown> {
    const t = this.store.get(d.trace_id);
    if (!t) throw new DaemonError('NOT_FOUND', `no trace ${d.trace_id}`, { trace_id: d.trace_id });
    const out: Record<string, unknown> = {
      ...this.summary(t),
      normalized: t.normalized,
      plan: JSON.parse(t.plan) as unknown,
    };
    if (d.steps) out.recorded = this.store.items(t.trace_id).map(itemView);
    return out;
  }

  delete(d: { trace_id: string }): Promise<Record<string, unknown>> {
    return this.gc.run(() => {
      if (!this.store.delete(d.trace_id))
        throw new DaemonError('NOT_FOUND', `no trace ${d.trace_id}`, { trace_id: d.trace_id });
      return { trace_id: d.trace_id, deleted: true };
    });
  }

  // ---- runs for a goal ------------------------------------------------------------------------------

  /**
   * A run for a goal is about to start: record it (durably, before the run exists, so none of its
   * events is missed). For follow, answers the definition that replays the trace.
   */
  async begin(d: {
    run_id: string;
    goal: string;
    mode: 'learn' | 'follow';
    trace_id?: string | undefined;
    match?: 'exact' | 'similar' | undefined;
    score?: number | undefined;
    inputs?: Record<string, unknown> | undefined;
    origin?: RunOrigin | undefined;
  }): Promise<Record<string, unknown>> {
    if (this.stopping) throw new DaemonError('SHUTTING_DOWN', 'the trace plugin is stopping');
    const prior = this.store.run(d.run_id);
    if (prior && prior.kind !== 'workflow')
      throw new DaemonError('CONFLICT', `${d.run_id} is an agent turn given a goal, not a workflow run`, {
        run_id: d.run_id,
      });
    const t = d.trace_id ? this.store.get(d.trace_id) : undefined;
    if (d.mode === 'follow' && !t)
      throw new DaemonError('NOT_FOUND', `no trace ${d.trace_id}`, { trace_id: d.trace_id });
    if (!prior) {
      // A followed run is given the inputs its trace was learned with (the goal's words stand for them).
      const inputs = d.mode === 'follow' ? t!.inputs : canonicalJson(d.inputs ?? {});
      await this.gc.run(() =>
        this.store.insertRun({
          run_id: d.run_id,
          kind: 'workflow',
          origin: d.origin ?? 'run_goal',
          inputs,
          agent_id: null,
          turn: null,
          goal: d.goal,
          signature: goalColumns(d.goal).signature,
          mode: d.mode,
          trace_id: t?.trace_id ?? null,
          trace_version: t?.version ?? null,
          match: d.match ?? null,
          score: d.score ?? null,
          learned_cost_usd: t?.learned_cost_usd ?? null,
          created_at: Date.now(),
        }),
      );
      this.recorder.open.add(d.run_id);
    }
    const row = this.store.run(d.run_id)!;
    if (row.mode !== 'follow') return { run_id: d.run_id, mode: row.mode };
    const trace = this.store.get(row.trace_id!)!;
    const plan = JSON.parse(trace.plan) as Plan;
    return {
      run_id: d.run_id,
      mode: 'follow',
      trace_id: trace.trace_id,
      version: trace.version,
      match: row.match,
      score: row.score,
      plan,
      inputs: JSON.parse(row.inputs) as unknown,
      definition: followDefinition(plan),
    };
  }

  /**
   * An agent turn given a goal is about to run (the agent plugin asks before the turn's first model
   * call). learn: it is recorded, and kept as a one-step trace when it succeeds. follow: the trace's
   * recorded events are performed now with no model call, and the turn answers the recorded reply; or,
   * when one differs in a way that matters, the turn goes on with the model, told what was done.
   * Asked again for the same turn (a resumed turn), it answers the same way.
   */
  async beginTurn(
    d: {
      agent_id: string;
      turn_id: string;
      goal: string;
      mode: 'auto' | 'learn' | 'follow';
      message: string;
      agent: TurnSpec;
    },
    call: CallContext,
  ): Promise<Record<string, unknown>> {
    if (this.stopping) throw new DaemonError('SHUTTING_DOWN', 'the trace plugin is stopping');
    const prior = this.store.run(d.turn_id);
    if (prior && prior.kind !== 'turn')
      throw new DaemonError('CONFLICT', `${d.turn_id} is a workflow run, not an agent turn`, { turn_id: d.turn_id });
    if (!prior) {
      const found =
        d.mode === 'learn'
          ? undefined
          : this.match(d.goal, {
              include_demoted: d.mode === 'follow',
              accept: (t) => turnItem(this.store, t) !== null,
            })[0];
      if (d.mode === 'follow' && !found)
        throw new DaemonError(
          'NOT_FOUND',
          'no trace of this goal that an agent turn can follow (one agent step answering text) at the threshold',
          { goal: d.goal },
        );
      const t = found?.trace;
      await this.gc.run(() => {
        this.store.insertRun({
          run_id: d.turn_id,
          kind: 'turn',
          origin: 'send',
          inputs: '{}',
          agent_id: d.agent_id,
          turn: JSON.stringify({ message: d.message, spec: d.agent }),
          goal: d.goal,
          signature: goalColumns(d.goal).signature,
          mode: t ? 'follow' : 'learn',
          trace_id: t?.trace_id ?? null,
          trace_version: t?.version ?? null,
          match: found?.match ?? null,
          score: found?.score ?? null,
          learned_cost_usd: t?.learned_cost_usd ?? null,
          created_at: Date.now(),
        });
        this.store.replaceAgent(d.agent_id, d.turn_id, d.turn_id);
      });
      this.recorder.openTurn(d.turn_id, d.agent_id);
    }
    const row = this.store.run(d.turn_id)!;
    const head = { run_id: row.run_id, mode: row.mode, trace_id: row.trace_id, match: row.match, score: row.score };
    if (row.mode === 'learn' || row.settled) return { ...head, replayed: false };
    const t = row.trace_id ? this.store.get(row.trace_id) : undefined;
    const it = t ? turnItem(this.store, t) : null;
    const diverge = async (at: number, reason: string, done: RecordedEvent[]): Promise<Record<string, unknown>> => {
      const dv = {
        run_id: row.run_id,
        step: it?.step ?? TURN_STEP,
        idx: 0,
        at,
        reason,
        prefix: JSON.stringify(done),
        fallback_key: row.run_id,
        created_at: Date.now(),
      };
      await this.gc.run(() => this.store.putDivergence(dv));
      call.emit('trace:diverged', { run_id: row.run_id, trace_id: row.trace_id, step: dv.step, index: 0, at, reason });
      return {
        ...head,
        replayed: false,
        diverged: { at, reason },
        note: done.length ? fallbackNote(done, reason) : null,
      };
    };
    const before = this.store.divergences(row.run_id)[0];
    if (before)
      return {
        ...head,
        replayed: false,
        diverged: { at: before.at, reason: before.reason },
        note: before.at >= 0 ? fallbackNote(JSON.parse(before.prefix) as RecordedEvent[], before.reason) : null,
      };
    if (!t || !it) return diverge(-1, 'the trace is gone or no longer one agent turn', []);
    if (!it.item.complete) return diverge(-1, 'the recording of this item is incomplete', []);
    const r = await replayEvents(call, JSON.parse(it.item.events) as RecordedEvent[], {
      output: this.deps.config.output_matters,
    });
    if (r.diverged) return diverge(r.diverged.at, r.diverged.reason, r.done);
    return { ...head, replayed: true, reply: it.reply, events: r.done.length };
  }

  replayStep(d: ReplayInput, call: CallContext): Promise<unknown> {
    return this.replayer.step(d, call);
  }

  runView(r: RunRow): Record<string, unknown> {
    return {
      run_id: r.run_id,
      kind: r.kind,
      origin: r.origin,
      agent_id: r.agent_id,
      goal: r.goal,
      mode: r.mode,
      trace_id: r.trace_id,
      trace_version: r.trace_version,
      match: r.match,
      score: r.score,
      status: r.status,
      settled: r.settled === 1,
      cost_usd: usd(r.cost_usd),
      saved_usd: usd(r.saved_usd),
      learned_cost_usd: usd(r.learned_cost_usd),
      ...(r.outcome ? (JSON.parse(r.outcome) as Record<string, unknown>) : {}),
      created: secs(r.created_at),
      finished: secs(r.finished_at),
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
        call?.signal.addEventListener(
          'abort',
          () => reject(new DaemonError('TIMEOUT', `run ${d.run_id} has not ended yet`)),
          { once: true },
        );
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
    const ctx: EventContext = {
      id: `trace-settle-${runId}`,
      parent_id: null,
      root_id: `trace-settle-${runId}`,
      depth: 0,
    };
    const end = row.kind === 'turn' ? await this.turnEnd(row, ctx) : await this.workflowEnd(row, ctx);
    if (end) await this.conclude(row, end, ctx);
  }

  /** How a workflow run for a goal ended (null: not yet, or settled here as never started). */
  private async workflowEnd(row: RunRow, ctx: EventContext): Promise<RunEnd | null> {
    const runId = row.run_id;
    let st: RunStatus;
    try {
      st = await this.deps.request<RunStatus>(
        'workflow:status',
        { run_id: runId, versions: true },
        { context: ctx, timeoutMs: 30_000 },
      );
    } catch (e) {
      if (e instanceof DaemonError && e.code === 'NOT_FOUND' && Date.now() - row.created_at > 60_000) {
        // Begun but never started (the caller died in between): nothing to learn from.
        await this.gc.run(() =>
          this.store.settleRun({
            run_id: runId,
            status: 'not_started',
            cost_usd: null,
            saved_usd: null,
            outcome: '{}',
            trace_id: row.trace_id,
            now: Date.now(),
          }),
        );
        this.recorder.open.delete(runId);
        this.wake(runId);
        return null;
      }
      throw e;
    }
    if (!TERMINAL.has(st.status)) return null;
    return {
      status: st.status,
      cost: st.cost_usd ?? 0,
      durationMs:
        st.finished_at !== null && st.created_at !== null ? Math.round((st.finished_at - st.created_at) * 1000) : null,
      plan: (st.versions?.[st.versions.length - 1]?.definition as Plan | undefined) ?? null,
      learned: (traceId, plan) => learnedItems(this.store, runId, traceId, st, plan),
      repaired: (traceId) => repairedItems(this.store, runId, traceId, st),
    };
  }

  /** A goal turn ended (agent:reply or agent:error): settle it with that outcome. */
  turnEnded(turnId: string, o: TurnOutcome): void {
    this.recorder.close(turnId);
    this.turnOutcomes.set(turnId, o);
    void this.settle(turnId).catch((err: unknown) =>
      this.deps.log.warn({ err, run_id: turnId }, 'settling a goal turn failed'),
    );
  }

  /**
   * How an agent turn given a goal ended: from its agent:reply or agent:error, or (after a restart,
   * when that event was missed) from agent:send with the same turn id, which answers a turn's outcome.
   */
  private async turnEnd(row: RunRow, ctx: EventContext): Promise<RunEnd | null> {
    const turnId = row.run_id;
    const turn = JSON.parse(row.turn ?? '{}') as { message?: string; spec?: TurnSpec };
    let o = this.turnOutcomes.get(turnId);
    if (!o) {
      try {
        const r = await this.deps.request<{
          reply: string;
          stop_reason: string;
          cost_usd: number;
          tool_calls: unknown[];
        }>(
          'agent:send',
          {
            agent_id: row.agent_id,
            message: turn.message ?? '',
            turn_id: turnId,
            wait: true,
          },
          { context: ctx, timeoutMs: this.deps.config.fallback_timeout_s * 1000 },
        );
        o = {
          status: 'succeeded',
          reply: r.reply,
          stop_reason: r.stop_reason,
          cost_usd: r.cost_usd,
          tool_calls: r.tool_calls.length,
        };
      } catch (e) {
        if (
          !(e instanceof DaemonError) ||
          ['SHUTTING_DOWN', 'TIMEOUT', 'UNAVAILABLE', 'UNKNOWN_EVENT'].includes(e.code)
        )
          throw e;
        o = {
          status: e.code === 'CANCELLED' ? 'cancelled' : 'failed',
          reply: null,
          stop_reason: null,
          cost_usd: 0,
          tool_calls: 0,
        };
      }
    }
    this.turnOutcomes.delete(turnId);
    const outcome = o;
    // The turn's own reply counts toward what it cost, even when its event was missed.
    runLazy(this.deps.db, () => {
      if (outcome.status === 'succeeded')
        this.store.putTurn(turnId, turnId, turnId, outcome.tool_calls, outcome.cost_usd);
    });
    const output = {
      reply: o.reply,
      turn_id: turnId,
      cost_usd: o.cost_usd,
      agent_id: row.agent_id,
      stop_reason: o.stop_reason,
    };
    const item = (traceId: string, step: string, prefix: RecordedEvent[]): ItemRow => {
      const more = eventsOf(this.store, turnId, turnId);
      return {
        trace_id: traceId,
        step,
        idx: 0,
        kind: 'agent',
        status: 'succeeded',
        output: JSON.stringify(output),
        error: null,
        events: JSON.stringify([...prefix, ...(more ?? [])]),
        complete: more !== null && this.store.complete(turnId, turnId) ? 1 : 0,
      };
    };
    return {
      status: o.status,
      cost: this.store.turnsCost(turnId),
      durationMs: Date.now() - row.created_at,
      plan: turnPlan(row.goal, turn.message ?? '', turn.spec ?? {}),
      learned: (traceId) => [item(traceId, TURN_STEP, [])],
      repaired: (traceId) =>
        this.store.divergences(turnId).map((dv) => item(traceId, dv.step, JSON.parse(dv.prefix) as RecordedEvent[])),
    };
  }

  /** A run for a goal has ended: make or update its trace, count it, and record what it cost and saved. */
  private async conclude(row: RunRow, e: RunEnd, ctx: EventContext): Promise<void> {
    const runId = row.run_id;
    const cost = e.cost;
    const now = Date.now();
    let outcome: Record<string, unknown> = {};
    let traceId = row.trace_id;
    let saved: number | null = null;
    let emit: [string, Record<string, unknown>] | null = null;
    if (row.mode === 'learn') {
      if (e.status === 'succeeded' && e.plan) {
        const plan = e.plan;
        const existing = this.store.bySignature(row.signature);
        traceId = existing?.trace_id ?? `tr${now.toString(36)}${randomBytes(3).toString('hex')}`;
        const id = traceId;
        const items = e.learned(id, plan);
        await this.gc.run(() => {
          if (existing) {
            this.store.deleteItems(id);
            this.store.relearn({
              trace_id: id,
              plan: JSON.stringify(plan),
              inputs: row.inputs,
              learned_run_id: runId,
              learned_cost_usd: cost,
              learned_duration_ms: e.durationMs,
              now,
            });
          } else {
            this.store.insert({
              trace_id: id,
              ...goalColumns(row.goal),
              goal: row.goal,
              plan: JSON.stringify(plan),
              inputs: row.inputs,
              learned_run_id: runId,
              learned_cost_usd: cost,
              learned_duration_ms: e.durationMs,
              now,
            });
          }
          for (const it of items) this.store.putItem(it);
        });
        const t = this.store.get(id)!;
        const events = items.reduce((n, it) => n + (JSON.parse(it.events) as unknown[]).length, 0);
        outcome = { learned: true, items: items.length, events, incomplete: items.filter((i) => !i.complete).length };
        emit = [
          'trace:learned',
          {
            trace_id: id,
            goal: row.goal,
            run_id: runId,
            kind: row.kind,
            version: t.version,
            items: items.length,
            events,
            cost_usd: usd(cost),
          },
        ];
      } else {
        outcome = { learned: false };
      }
    } else if (row.trace_id && this.store.get(row.trace_id)) {
      const t = this.store.get(row.trace_id)!;
      const diverged = this.store
        .divergences(runId)
        .map((x) => ({ step: x.step, index: x.idx, at: x.at, reason: x.reason }));
      const savedNow = Math.max(0, t.learned_cost_usd - cost);
      saved = savedNow;
      if (e.status === 'succeeded') {
        const repaired = e.repaired(t.trace_id);
        await this.gc.run(() => {
          for (const it of repaired) this.store.putItem(it);
          this.store.used({
            trace_id: t.trace_id,
            ok: 1,
            failed: 0,
            repaired: repaired.length > 0 ? 1 : 0,
            saved: savedNow,
            now,
          });
        });
        outcome = { diverged, repaired: repaired.length };
      } else if (e.status === 'failed' || e.status === 'budget_exhausted') {
        await this.gc.run(() =>
          this.store.used({ trace_id: t.trace_id, ok: 0, failed: 1, repaired: 0, saved: 0, now }),
        );
        const after = this.store.get(t.trace_id)!;
        const r = rate(after) ?? 0;
        if (r < this.deps.config.demote_below && after.status === 'active') {
          await this.gc.run(() => this.store.setStatus(t.trace_id, 'demoted', now));
          this.deps.emit('trace:demoted', { trace_id: t.trace_id, success_rate: r }, { context: ctx });
        }
        saved = null;
        outcome = { diverged, repaired: 0, demoted: this.store.get(t.trace_id)!.status === 'demoted' };
      } else {
        outcome = { diverged, repaired: 0 };
      }
      emit = [
        'trace:followed',
        {
          trace_id: t.trace_id,
          run_id: runId,
          kind: row.kind,
          status: e.status,
          cost_usd: usd(cost),
          saved_usd: usd(saved),
          ...outcome,
        },
      ];
    }
    await this.gc.run(() => {
      this.store.settleRun({
        run_id: runId,
        status: e.status,
        cost_usd: cost,
        saved_usd: saved,
        outcome: JSON.stringify(outcome),
        trace_id: traceId,
        now,
      });
      this.store.forgetRecording(runId);
    });
    this.recorder.open.delete(runId);
    this.recorder.close(runId);
    if (emit) this.deps.emit(emit[0], emit[1], { context: ctx });
    this.deps.log.info(
      { run_id: runId, kind: row.kind, mode: row.mode, status: e.status, trace_id: traceId },
      'goal run settled',
    );
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
    step: i.step,
    index: i.idx,
    kind: i.kind,
    status: i.status,
    complete: i.complete === 1,
    output: i.output === null ? null : (JSON.parse(i.output) as unknown),
    error: i.error === null ? null : (JSON.parse(i.error) as unknown),
    events: JSON.parse(i.events) as unknown,
  };
}
