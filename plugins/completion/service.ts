/**
 * The completion service: accept (journal, then ack), schedule (per-session FIFO, global limit), run
 * (reserve budget → provider → settle budget → record result → emit), cancel, recover after a crash,
 * and hand work back at shutdown. It is a plain class so it can be driven without the kernel.
 */
import { unixSeconds } from '../../client/units.js';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { DaemonError, type EventContext, GroupCommit, type RequestOptions, timeOrderedId } from '../../daemon/plugin-api.js';
import { DEFAULT_ALIASES, type CompletionConfig } from './config.js';
import { inputShape } from './input-bound.js';
import { ACTIVE, Journal, type RequestRow, type StoredMessage } from './journal.js';
import type { Provider, ProviderRequest, ProviderUsage } from './providers/types.js';
import { SessionQueue, type QueueItem } from './queue.js';
import type { CompletionInput } from './schemas.js';
import { TokenCoalescer } from './tokens.js';

export interface ServiceDeps {
  db: Database.Database;
  log: Logger;
  config: CompletionConfig;
  provider: Provider;
  request: <T = Record<string, unknown>>(event: string, data: Record<string, unknown>, opts?: RequestOptions & { context?: EventContext }) => Promise<T>;
  emit: (event: string, data: Record<string, unknown>, opts?: { context?: EventContext }) => void;
  /** True once the daemon's shutdown has begun: start no new call from then on. */
  shuttingDown?: () => boolean;
  now?: () => number;
}

/** What is journaled as `params`: everything needed to run the call again after a restart. */
interface Params extends Omit<ProviderRequest, 'messages'> {
  messages: StoredMessage[];
  stream: boolean;
}

interface Item extends QueueItem {
  session_id: string | null;
  agent_id: string | null;
  params: Params;
  context: EventContext | undefined;
  /** Attempts already started before this run (from the journal). */
  attempts: number;
}

interface Waiter {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: unknown) => void;
}

interface InFlight {
  ac: AbortController;
  why: 'cancel' | 'shutdown' | null;
  done: Promise<void>;
}

export interface ErrorOutcome {
  code: string;
  message: string;
  retryable: boolean;
  reason?: string;
  details?: Record<string, unknown>;
}

const HOLDER = 'completion';

export class CompletionService {
  readonly journal: Journal;
  private readonly gc: GroupCommit;
  private readonly queue: SessionQueue<Item>;
  private readonly aliases: Record<string, string>;
  /** Ids accepted and not finished, including ones mid-accept: the CONFLICT check must not race. */
  private readonly active = new Set<string>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly inflight = new Map<string, InFlight>();
  /** Costs of completed requests whose settlement is still in the pending group commit. */
  private readonly settling = new Map<string, number>();
  private stopping = false;

  constructor(private readonly d: ServiceDeps) {
    this.journal = new Journal(d.db);
    this.gc = GroupCommit.for(d.db);
    this.queue = new SessionQueue<Item>(d.config.max_concurrency, (it) => this.run(it));
    this.aliases = { ...DEFAULT_ALIASES, ...d.config.models };
  }

  private now(): number {
    return this.d.now ? this.d.now() : Date.now();
  }

  resolveModel(m: string): string {
    return this.aliases[m] ?? m;
  }

  /** The default model and the aliases in force (the shipped ones merged with completion.models). */
  models(): { default_model: string; aliases: Record<string, string> } {
    return { default_model: this.d.config.default_model, aliases: { ...this.aliases } };
  }

  // ---- accept -------------------------------------------------------------------------------------

  /** Journal the request (durably), queue it, and say where it stands. */
  async accept(input: CompletionInput, context: EventContext | undefined, durable = true): Promise<{ request_id: string; status: string; position: number; replayed?: boolean }> {
    if (this.stopping) throw new DaemonError('SHUTTING_DOWN', 'the completion service is stopping; queued work resumes at the next start');
    const ps = this.d.provider.status();
    if (!ps.configured) throw new DaemonError('UNAVAILABLE', ps.reason ?? 'the provider is not configured', { provider: this.d.provider.name });
    const maxTokens = input.max_tokens ?? this.d.config.default_max_tokens;
    if (maxTokens > this.d.config.max_tokens_limit) {
      throw new DaemonError('INVALID_DATA', `max_tokens ${maxTokens} is above completion.max_tokens_limit (${this.d.config.max_tokens_limit})`, {
        issues: [{ path: ['max_tokens'], message: `at most ${this.d.config.max_tokens_limit}` }],
      });
    }
    const params = this.paramsOf(input, maxTokens);
    const sessionId = input.session_id ?? null;
    const agentId = input.agent_id ?? context?.agent_id ?? null;
    const paramsJson = JSON.stringify(params);
    // The hash of JSON.stringify([params, sessionId, agentId]), composed from the JSON already made.
    const hash = createHash('sha256').update(`[${paramsJson},${JSON.stringify(sessionId)},${JSON.stringify(agentId)}]`).digest('hex');
    const requestId = input.request_id ?? `cmp_${timeOrderedId()}`;

    if (this.active.has(requestId)) throw this.conflictActive(requestId);
    // Only a client's own id can name an earlier request: a fresh one (time and 74 random bits) cannot.
    const prior = input.request_id !== undefined ? this.journal.get(requestId) : undefined;
    if (prior) {
      if (ACTIVE.has(prior.status)) throw this.conflictActive(requestId);
      if (prior.status === 'completed') {
        if (prior.params_hash !== hash) {
          throw new DaemonError('CONFLICT', `request_id ${requestId} already completed a different request; use a new request_id`, { request_id: requestId, status: prior.status });
        }
        // The same request again (a client retrying after losing the answer): never run twice.
        return { request_id: requestId, status: prior.status, position: 0, replayed: true };
      }
      // Failed or cancelled: asking again runs it again, continuing the attempt numbering below.
    }
    if (this.queue.size >= this.d.config.max_queue) throw new DaemonError('OVERLOADED', `the completion queue is full (${this.d.config.max_queue} requests); retry later`, { queued: this.queue.size });

    this.active.add(requestId);
    const attempts = prior?.attempts ?? 0;
    try {
      // Pre-flight: an unpriced model or a used-up budget is refused now, not after queueing.
      await this.d.request('budget:check', { model: params.model, ...(agentId ? { agent_id: agentId } : {}), ...(sessionId ? { session_id: sessionId } : {}) }, { context });
      const row = {
        request_id: requestId, session_id: sessionId, agent_id: agentId, model: params.model,
        params: paramsJson, params_hash: hash, context: context ? JSON.stringify(context) : null, created_at: this.now(),
        // Attempt numbers key the budget ledger, so a rerun continues after the earlier attempts.
        attempts,
      };
      // An acknowledged request must be on disk before the ack. A waiting caller's ack is the result,
      // so its row rides in the transaction of the budget reservation that follows in this same turn,
      // whose sync makes both durable before any token is spent.
      const write = (): void => {
        if (prior) this.journal.forget(requestId);
        this.journal.insert(row);
      };
      if (durable) await this.gc.run(write);
      else void this.gc.later(write).catch((err: unknown) => this.d.log.error({ err, request_id: requestId }, 'journaling an accepted request failed'));
    } catch (e) {
      this.active.delete(requestId);
      throw e;
    }
    const position = this.queue.enqueue({ id: requestId, key: sessionId ?? `\0${requestId}`, session_id: sessionId, agent_id: agentId, params, context, attempts });
    this.d.log.debug({ request_id: requestId, session_id: sessionId, position }, 'completion accepted');
    return { request_id: requestId, status: 'queued', position };
  }

  private conflictActive(requestId: string): DaemonError {
    return new DaemonError('CONFLICT', `request_id ${requestId} is already queued or running`, { request_id: requestId });
  }

  private paramsOf(input: CompletionInput, maxTokens: number): Params {
    const p: Params = {
      model: this.resolveModel(input.model ?? this.d.config.default_model),
      max_tokens: maxTokens,
      messages: input.prompt !== undefined ? [{ role: 'user', content: input.prompt }] : (input.messages as StoredMessage[]),
      stream: input.stream,
    };
    if (input.system !== undefined) p.system = input.system as Params['system'];
    for (const k of ['temperature', 'top_p', 'top_k', 'stop_sequences', 'tools', 'tool_choice', 'thinking', 'metadata'] as const) {
      if (input[k] !== undefined) (p as unknown as Record<string, unknown>)[k] = input[k];
    }
    return p;
  }

  /** Resolve with the result, or reject with the request's error, once it has an outcome. */
  outcome(requestId: string): Promise<Record<string, unknown>> {
    // Accepted and not finished: wait for it (its row may still be in the pending group commit).
    if (this.active.has(requestId)) return this.waitFor(requestId);
    const row = this.journal.get(requestId);
    if (!row) return Promise.reject(new DaemonError('NOT_FOUND', `no request ${requestId}`, { request_id: requestId }));
    if (!ACTIVE.has(row.status)) {
      const o = outcomeOf(row, this.settling.get(requestId));
      return o.ok ? Promise.resolve(o.result) : Promise.reject(o.error);
    }
    return this.waitFor(requestId);
  }

  private waitFor(requestId: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(requestId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(requestId, list);
    });
  }

  private settleWaiters(requestId: string, ok: boolean, v: unknown): void {
    const list = this.waiters.get(requestId);
    if (!list) return;
    this.waiters.delete(requestId);
    for (const w of list) (ok ? w.resolve(v as Record<string, unknown>) : w.reject(v));
  }

  // ---- run ----------------------------------------------------------------------------------------

  private async run(it: Item): Promise<void> {
    // Shutdown has begun: the request stays queued in the journal for the next start.
    if (this.stopping || this.d.shuttingDown?.()) return;
    // In the transaction of the budget reservation queued right after, whose sync covers it. A queued
    // request leaves the queue only here or through cancel(), so its row is still 'queued' now.
    void this.gc.later(() => this.journal.markRunning(it.id, this.now())).catch((err: unknown) => this.d.log.error({ err, request_id: it.id }, 'marking a request running failed'));
    const attempt = it.attempts + 1;
    const who = { request_id: it.id, session_id: it.session_id, agent_id: it.agent_id };
    const opts = { context: it.context };
    const fl: InFlight = { ac: new AbortController(), why: null, done: Promise.resolve() };
    let finish!: () => void;
    fl.done = new Promise<void>((r) => (finish = r));
    this.inflight.set(it.id, fl);
    this.d.emit('completion:started', { ...who, model: it.params.model, attempt }, opts);

    let reserved = false;
    let billed: ProviderUsage | null = null;
    let chars = 0;
    const coalescer = it.params.stream
      ? new TokenCoalescer((index, text) => this.d.emit('completion:token', { ...who, index, text }, opts), this.d.config.token_flush_ms, this.d.config.token_flush_chars)
      : null;
    const t0 = performance.now();
    try {
      const { stream: _s, ...base } = it.params;
      const history = it.session_id ? this.journal.history(it.session_id) : [];
      const req: ProviderRequest = { ...base, messages: [...history, ...it.params.messages] };
      await this.reserve(it, req, attempt, fl.ac.signal);
      reserved = true;
      const res = await this.d.provider.complete(req, {
        signal: fl.ac.signal,
        onText: (t) => {
          chars += t.length;
          coalescer?.push(t);
        },
        onStart: (u) => (billed = u),
      });
      coalescer?.end();
      const durationMs = Math.round(performance.now() - t0);
      const result = {
        ...who, text: res.text, content: res.content, stop_reason: res.stop_reason,
        usage: {
          input_tokens: res.usage.input_tokens, output_tokens: res.usage.output_tokens,
          cache_creation_input_tokens: res.usage.cache_creation_input_tokens, cache_read_input_tokens: res.usage.cache_read_input_tokens,
        },
        cost_usd: null as number | null, model: res.model, duration_ms: durationMs, attempt,
      };
      // The result and the budget's settlement are queued in the same turn, so they share one
      // transaction and one disk sync, and only then is the result emitted. Should the budget not
      // answer, the result is still recorded (completed-but-unsettled), which recovery settles.
      const recorded = this.gc.run(() => {
        this.journal.finish(it.id, 'completed', { result, settled: false }, this.now());
        if (it.session_id) {
          const sys = typeof it.params.system === 'string' ? it.params.system : it.params.system ? JSON.stringify(it.params.system) : null;
          this.journal.appendTurn(it.session_id, it.agent_id, res.model, sys, [...it.params.messages, { role: 'assistant', content: res.content }], it.id, this.now());
        }
      });
      const cost = await this.commit(it, attempt, res.model, res.usage, false);
      await recorded;
      result.cost_usd = cost;
      // Bookkeeping only (recovery re-settles idempotently): it rides on a later commit, off this path;
      // until then readers of the stored result get its cost from `settling`.
      if (cost !== null) {
        this.settling.set(it.id, cost);
        this.gc.later(() => this.journal.settle(it.id, cost))
          .catch((err: unknown) => this.d.log.warn({ err, request_id: it.id }, 'marking the request settled failed; the next start settles it'))
          .finally(() => this.settling.delete(it.id));
      }
      this.active.delete(it.id);
      this.d.emit('completion:result', result, opts);
      this.d.log.debug({ request_id: it.id, session_id: it.session_id, duration_ms: durationMs }, 'completion done');
      this.settleWaiters(it.id, true, result);
    } catch (err) {
      coalescer?.end();
      await this.afterFailure(it, attempt, fl.why, err, reserved, billed, chars);
    } finally {
      this.inflight.delete(it.id);
      finish();
    }
  }

  private async afterFailure(it: Item, attempt: number, why: InFlight['why'], err: unknown, reserved: boolean, billed: ProviderUsage | null, chars: number): Promise<void> {
    const who = { request_id: it.id, session_id: it.session_id, agent_id: it.agent_id };
    const opts = { context: it.context };
    if (reserved) {
      if (billed) {
        // The provider had started answering: input is billed and some output too. Count it.
        const u = billed as ProviderUsage;
        await this.commit(it, attempt, it.params.model, { ...u, output_tokens: Math.max(u.output_tokens, chars) }, true);
      } else {
        await this.d.request('budget:release', { request_id: it.id, attempt, reason: why ?? 'failed' }, { context: it.context })
          .catch((e: unknown) => this.d.log.error({ err: e, request_id: it.id }, 'budget release failed'));
      }
    }
    if (why === 'shutdown') {
      // Handed back: queued again for the next start, and this attempt does not count.
      await this.gc.run(() => this.journal.requeue(it.id, true));
      this.settleWaiters(it.id, false, new DaemonError('SHUTTING_DOWN', `request ${it.id} was interrupted by shutdown and stays queued for the next start`, { request_id: it.id }));
      return;
    }
    if (why === 'cancel') {
      await this.gc.run(() => this.journal.finish(it.id, 'cancelled', { error: { code: 'CANCELLED', message: 'cancelled while running', retryable: false }, settled: true }, this.now()));
      this.active.delete(it.id);
      this.d.emit('completion:cancelled', { ...who, was: 'running' }, opts);
      this.settleWaiters(it.id, false, new DaemonError('CANCELLED', `request ${it.id} was cancelled`, { request_id: it.id }));
      return;
    }
    const e = this.d.provider.mapError(err);
    const error: ErrorOutcome = { code: e.code, message: e.message, retryable: e.retryable, ...(e.details ? { details: e.details } : {}) };
    await this.gc.run(() => this.journal.finish(it.id, 'failed', { error, settled: true }, this.now()));
    this.active.delete(it.id);
    this.d.log.info({ request_id: it.id, session_id: it.session_id, code: e.code }, 'completion failed');
    this.d.emit('completion:error', { ...who, error: { code: error.code, message: error.message, retryable: error.retryable } }, opts);
    this.settleWaiters(it.id, false, new DaemonError(e.code, e.message, { ...e.details, request_id: it.id }));
  }

  /**
   * Reserve the call's worst case. The input side starts from a byte bound (no network round trip);
   * only when that bound does not fit the budget is the exact count asked of the API, so a tight budget
   * is not refused for a loose estimate, and a loose budget costs no extra call.
   */
  private async reserve(it: Item, req: ProviderRequest, attempt: number, signal: AbortSignal): Promise<void> {
    const shape = inputShape(req);
    const base = {
      request_id: it.id, attempt, holder: HOLDER, model: req.model, max_tokens: req.max_tokens, cache_ttl: shape.cacheTtl,
      ...(it.agent_id ? { agent_id: it.agent_id } : {}), ...(it.session_id ? { session_id: it.session_id } : {}),
    };
    const mode = this.d.config.count_tokens;
    const canCount = mode !== 'never' && this.d.provider.countTokens !== undefined;
    let input = shape.bound;
    if (mode === 'always' && canCount) input = (await this.count(req, signal)) ?? input;
    try {
      await this.d.request('budget:reserve', { ...base, input_tokens: input, notify: !(mode === 'auto' && canCount) }, { context: it.context });
    } catch (e) {
      if (!(mode === 'auto' && canCount && e instanceof DaemonError && e.code === 'BUDGET_EXCEEDED')) throw e;
      const counted = await this.count(req, signal);
      await this.d.request('budget:reserve', { ...base, input_tokens: counted !== null && counted < input ? counted : input }, { context: it.context });
    }
  }

  private async count(req: ProviderRequest, signal: AbortSignal): Promise<number | null> {
    try {
      return await this.d.provider.countTokens!(req, signal);
    } catch (err) {
      this.d.log.debug({ err: this.d.provider.mapError(err).message }, 'token count unavailable; using the byte bound');
      return null;
    }
  }

  /** Settle spend with the budget; null when the budget could not be told (retried at next start). */
  private async commit(it: Item, attempt: number, model: string, usage: ProviderUsage, estimated: boolean): Promise<number | null> {
    try {
      const r = await this.d.request<{ cost_usd: number }>('budget:commit', {
        request_id: it.id, attempt, model, usage, estimated,
        ...(it.agent_id ? { agent_id: it.agent_id } : {}), ...(it.session_id ? { session_id: it.session_id } : {}),
      }, { context: it.context });
      return r.cost_usd;
    } catch (err) {
      this.d.log.error({ err, request_id: it.id, session_id: it.session_id }, 'budget commit failed; will retry at next start');
      return null;
    }
  }

  // ---- cancel, status ------------------------------------------------------------------------------

  /** The journal row, after committing this turn's pending writes if the request is one of them. */
  private row(requestId: string): RequestRow | undefined {
    const row = this.journal.get(requestId);
    if (row || !this.active.has(requestId)) return row;
    this.gc.flush();
    return this.journal.get(requestId);
  }

  async cancel(requestId: string): Promise<Record<string, unknown>> {
    const row = this.row(requestId);
    if (!row) throw new DaemonError('NOT_FOUND', `no request ${requestId}`, { request_id: requestId });
    if (!ACTIVE.has(row.status)) {
      throw new DaemonError('CONFLICT', `request ${requestId} already finished (${row.status}); nothing to cancel`, { request_id: requestId, status: row.status });
    }
    const fl = this.inflight.get(requestId);
    if (fl) {
      fl.why = 'cancel';
      fl.ac.abort(new DaemonError('CANCELLED', 'cancelled'));
      await fl.done;
      const after = this.journal.get(requestId)!;
      if (after.status === 'completed') throw new DaemonError('CONFLICT', `request ${requestId} completed before it could be cancelled`, { request_id: requestId, status: 'completed' });
      return { request_id: requestId, status: after.status, was: 'running' };
    }
    const key = row.session_id ?? `\0${requestId}`;
    this.queue.remove(requestId, key);
    await this.gc.run(() => this.journal.finish(requestId, 'cancelled', { error: { code: 'CANCELLED', message: 'cancelled while queued', retryable: false }, settled: true }, this.now()));
    this.active.delete(requestId);
    const context = row.context ? (JSON.parse(row.context) as EventContext) : undefined;
    this.d.emit('completion:cancelled', { request_id: requestId, session_id: row.session_id, agent_id: row.agent_id, was: 'queued' }, { context });
    this.settleWaiters(requestId, false, new DaemonError('CANCELLED', `request ${requestId} was cancelled`, { request_id: requestId }));
    return { request_id: requestId, status: 'cancelled', was: 'queued' };
  }

  requestStatus(requestId: string): Record<string, unknown> {
    const row = this.row(requestId);
    if (!row) throw new DaemonError('NOT_FOUND', `no request ${requestId} (unknown, or finished longer ago than completion.retention_hours)`, { request_id: requestId });
    const out: Record<string, unknown> = {
      request_id: row.request_id, status: row.status, session_id: row.session_id, agent_id: row.agent_id, model: row.model,
      attempts: row.attempts, created_at: unixSeconds(row.created_at), started_at: unixSeconds(row.started_at), finished_at: unixSeconds(row.finished_at),
    };
    if (row.result) out.result = withCost(JSON.parse(row.result) as Record<string, unknown>, this.settling.get(requestId));
    if (row.error) out.error = JSON.parse(row.error);
    return out;
  }

  queues(): Record<string, unknown> {
    const depths = this.queue.depths().filter((d) => !d.key.startsWith('\0'));
    depths.sort((a, b) => b.queued - a.queued);
    return {
      queued: this.queue.size,
      running: this.queue.inFlight,
      max_concurrency: this.d.config.max_concurrency,
      sessions: depths.slice(0, 100).map((d) => ({ session_id: d.key, queued: d.queued, running: d.running })),
      in_flight: this.queue.running().slice(0, 100).map((i) => ({ request_id: i.id, session_id: i.session_id, agent_id: i.agent_id, model: i.params.model })),
      provider: { name: this.d.provider.name, ...this.d.provider.status() },
      stopping: this.stopping,
    };
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  /** Recover from the journal: settle what a crash left half done, then queue what is still owed. */
  async recover(): Promise<{ requeued: number; failed: number; queued: number; resettled: number }> {
    const now = this.now();
    const failedAfterRestart: RequestRow[] = [];
    let requeued = 0;
    await this.gc.run(() => {
      for (const row of this.journal.withStatus('running')) {
        // Runs of this acceptance so far (a rerun of a failed request continues the numbering).
        const runs = row.attempts - row.first_attempt + 1;
        if (this.d.config.restart_policy === 'retry_once' && runs < 2) {
          this.journal.requeue(row.request_id, false);
          requeued++;
        } else {
          const error: ErrorOutcome = { code: 'UNAVAILABLE', message: 'the daemon stopped while this call was in flight', retryable: true, reason: 'daemon_restart' };
          this.journal.finish(row.request_id, 'failed', { error, settled: true }, now);
          failedAfterRestart.push(row);
        }
      }
      this.journal.prune(now - this.d.config.retention_hours * 3600_000);
    });
    // Results recorded but not yet settled (the crash came between the two): settle them first, with
    // their actual usage, which also takes their reservations out of the reconcile below.
    let resettled = 0;
    for (const row of this.journal.unsettled()) {
      const r = JSON.parse(row.result!) as { usage: ProviderUsage; model: string; attempt: number };
      const item = { id: row.request_id, session_id: row.session_id, agent_id: row.agent_id } as Item;
      const cost = await this.commit(item, r.attempt, r.model, r.usage, false);
      if (cost !== null) {
        await this.gc.run(() => this.journal.settle(row.request_id, cost));
        resettled++;
      }
    }
    // Nothing is in flight yet, so every reservation this plugin holds was lost with the old process.
    await this.d.request('budget:reconcile', { holder: HOLDER, keep: [] }).catch((err: unknown) => this.d.log.error({ err }, 'budget reconcile failed'));
    for (const row of failedAfterRestart) {
      const context = row.context ? (JSON.parse(row.context) as EventContext) : undefined;
      this.d.emit('completion:error', {
        request_id: row.request_id, session_id: row.session_id, agent_id: row.agent_id,
        error: { code: 'UNAVAILABLE', message: 'the daemon stopped while this call was in flight', retryable: true, reason: 'daemon_restart' },
      }, { context });
    }
    const queued = this.journal.withStatus('queued');
    if (queued.length > 0 && !this.d.provider.status().configured) {
      // Accepted work must not fail for a missing key: it waits for a start that has one.
      this.queue.pause();
      this.d.log.warn({ queued: queued.length }, 'provider not configured; queued requests wait for the next start');
    }
    for (const row of queued) {
      this.active.add(row.request_id);
      this.queue.enqueue({
        id: row.request_id, key: row.session_id ?? `\0${row.request_id}`, session_id: row.session_id, agent_id: row.agent_id,
        params: JSON.parse(row.params) as Params, context: row.context ? (JSON.parse(row.context) as EventContext) : undefined, attempts: row.attempts,
      });
    }
    return { requeued, failed: failedAfterRestart.length, queued: queued.length, resettled };
  }

  prune(): number {
    return this.journal.prune(this.now() - this.d.config.retention_hours * 3600_000);
  }

  /** Shutdown has begun (before this plugin's stop() is called): start nothing new from now on. */
  pause(): void {
    this.stopping = true;
    this.queue.pause();
  }

  /**
   * Shutdown: start nothing new, let calls in flight finish until shortly before the deadline, then
   * abort the rest and hand them back to the queue. Queued requests simply stay in the journal.
   */
  async stop(deadline: number): Promise<{ finished: number; handedBack: number }> {
    this.stopping = true;
    this.queue.pause();
    const before = this.inflight.size;
    const margin = Math.min(2000, Math.max(100, (deadline - Date.now()) / 5));
    const waitAll = Promise.all([...this.inflight.values()].map((f) => f.done));
    await Promise.race([waitAll, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now() - margin)).unref())]);
    const left = [...this.inflight.values()];
    for (const f of left) {
      f.why = 'shutdown';
      f.ac.abort(new DaemonError('SHUTTING_DOWN', 'shutdown'));
    }
    await Promise.race([Promise.all(left.map((f) => f.done)), new Promise((r) => setTimeout(r, Math.max(50, deadline - Date.now() - 50)).unref())]);
    for (const [id] of this.waiters) this.settleWaiters(id, false, new DaemonError('SHUTTING_DOWN', `the daemon is shutting down; request ${id} stays queued for the next start`, { request_id: id }));
    this.gc.flush();
    return { finished: before - left.length, handedBack: left.length };
  }
}

/** A stored result, with its cost when the settlement that writes it there is still pending. */
function withCost(result: Record<string, unknown>, cost: number | undefined): Record<string, unknown> {
  return cost === undefined ? result : { ...result, cost_usd: cost };
}

function outcomeOf(row: RequestRow, pendingCost?: number): { ok: true; result: Record<string, unknown> } | { ok: false; error: DaemonError } {
  if (row.status === 'completed') return { ok: true, result: withCost(JSON.parse(row.result!) as Record<string, unknown>, pendingCost) };
  const e = row.error ? (JSON.parse(row.error) as ErrorOutcome) : { code: 'CANCELLED', message: 'cancelled', retryable: false };
  const code = (row.status === 'cancelled' ? 'CANCELLED' : e.code) as ConstructorParameters<typeof DaemonError>[0];
  return { ok: false, error: new DaemonError(code, e.message, { ...e.details, request_id: row.request_id, ...(e.reason ? { reason: e.reason } : {}) }) };
}
