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
import {
  DaemonError,
  type EventContext,
  GroupCommit,
  redactSecrets,
  type RequestOptions,
  timeOrderedId,
} from '../../daemon/plugin-api.js';
import type { CompletionConfig } from './config.js';
import { ACTIVE, Journal, type RequestRow, type StoredMessage } from './journal.js';
import { CallChain, HOLDER, type CallState } from './call-chain.js';
import type { Providers } from './providers/registry.js';
import type { ProviderRequest, ProviderUsage } from './providers/types.js';
import { SessionQueue, type QueueItem } from './queue.js';
import type { CompletionInput } from './schemas.js';
import { TokenCoalescer } from './tokens.js';
import { drainUntil } from '../../client/timing.js';

export interface ServiceDeps {
  db: Database.Database;
  log: Logger;
  config: CompletionConfig;
  providers: Providers;
  request: <T = Record<string, unknown>>(
    event: string,
    data: Record<string, unknown>,
    opts?: RequestOptions & { context?: EventContext },
  ) => Promise<T>;
  emit: (event: string, data: Record<string, unknown>, opts?: { context?: EventContext }) => void;
  /** True once the daemon's shutdown has begun: start no new call from then on. */
  shuttingDown?: () => boolean;
  now?: () => number;
}

/** What is journaled as `params`: everything needed to run the call again after a restart. */
interface Params extends Omit<ProviderRequest, 'messages'> {
  messages: StoredMessage[];
  stream: boolean;
  /** An alias's fallbacks, tried in order after `model` (absent when there are none). */
  fallbacks?: string[];
}

/** What the budget settled a call at. */
interface Settled {
  cost_usd: number;
  /** False for a model without a price (it cost 0). */
  price_known: boolean;
}

/** Parked requests none of whose providers can run now (not configured) wait in this lane until a restart. */
const NO_PROVIDER = '\0none';

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

export class CompletionService {
  readonly journal: Journal;
  private readonly gc: GroupCommit;
  private readonly queue: SessionQueue<Item>;
  private readonly providers: Providers;
  private readonly chain: CallChain;
  /**
   * Ids accepted and not finished (including ones mid-accept, so the check cannot race), each with the
   * hash of its input: the same request asked again joins it, a different one under its id is CONFLICT.
   */
  private readonly active = new Map<string, string>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly inflight = new Map<string, InFlight>();
  /** Costs of completed requests whose settlement is still in the pending group commit. */
  private readonly settling = new Map<string, Settled>();
  private stopping = false;

  constructor(private readonly deps: ServiceDeps) {
    this.journal = new Journal(deps.db);
    this.gc = GroupCommit.for(deps.db);
    this.providers = deps.providers;
    this.chain = new CallChain({
      config: deps.config,
      providers: deps.providers,
      log: deps.log,
      request: deps.request,
      emit: deps.emit,
    });
    this.queue = new SessionQueue<Item>(
      deps.config.max_concurrency,
      (it) => this.run(it),
      (it) => this.laneOf(it),
    );
    this.providers.onFree = (p) => this.queue.wake(p);
  }

  /** The models a request may be answered by, in order. */
  private chainOf(p: Params): string[] {
    return p.fallbacks ? [p.model, ...p.fallbacks] : [p.model];
  }

  /** Null when the request may start now (run() takes its provider's slot at once), else the lane it waits in. */
  private laneOf(it: Item): string | null {
    const m = this.providers.firstUsable(this.chainOf(it.params));
    if (m === null) return NO_PROVIDER;
    const name = this.providers.providerName(m);
    return this.providers.limiter(name).full ? name : null;
  }

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }

  resolveModel(m: string): string {
    return this.providers.resolve(m).model;
  }

  /** The default model and the aliases in force (the shipped ones merged with completion.models). */
  models(): { default_model: string; aliases: Record<string, { model: string; fallbacks: string[] }> } {
    return { default_model: this.deps.config.default_model, aliases: this.providers.aliasTable() };
  }

  // ---- accept -------------------------------------------------------------------------------------

  /** Journal the request (durably), queue it, and say where it stands. */
  async accept(
    input: CompletionInput,
    context: EventContext | undefined,
    durable = true,
  ): Promise<{ request_id: string; status: string; position: number; replayed?: boolean }> {
    if (this.stopping)
      throw new DaemonError(
        'SHUTTING_DOWN',
        'the completion service is stopping; queued work resumes at the next start',
      );
    const maxTokens = input.max_tokens ?? this.deps.config.default_max_tokens;
    if (maxTokens > this.deps.config.max_tokens_limit) {
      throw new DaemonError(
        'INVALID_DATA',
        `max_tokens ${maxTokens} is above completion.max_tokens_limit (${this.deps.config.max_tokens_limit})`,
        {
          issues: [{ path: ['max_tokens'], message: `at most ${this.deps.config.max_tokens_limit}` }],
        },
      );
    }
    const params = this.paramsOf(input, maxTokens);
    const chain = this.chainOf(params);
    // Every model names a configured provider (INVALID_DATA otherwise), and one of them can be used.
    const first = this.providers.route(chain[0]!).provider;
    for (const m of chain.slice(1)) this.providers.route(m);
    if (this.providers.firstUsable(chain) === null) {
      const ps = first.status();
      throw new DaemonError('UNAVAILABLE', ps.reason ?? `provider ${first.name} is not configured`, {
        provider: first.name,
      });
    }
    const sessionId = input.session_id ?? null;
    const agentId = input.agent_id ?? context?.agent_id ?? null;
    const paramsJson = JSON.stringify(params);
    // The hash of JSON.stringify([params, sessionId, agentId]), composed from the JSON already made.
    const hash = createHash('sha256')
      .update(`[${paramsJson},${JSON.stringify(sessionId)},${JSON.stringify(agentId)}]`)
      .digest('hex');
    const requestId = input.request_id ?? `cmp_${timeOrderedId()}`;

    // The same request asked again while it is queued or running (a caller retrying after a lost answer,
    // a resumed agent turn, a workflow step after a crash) joins it: never a second paid call.
    const activeHash = this.active.get(requestId);
    if (activeHash !== undefined) return this.join(requestId, activeHash, hash);
    // Only a client's own id can name an earlier request: a fresh one (time and 74 random bits) cannot.
    const prior = input.request_id !== undefined ? this.journal.get(requestId) : undefined;
    if (prior) {
      if (ACTIVE.has(prior.status)) return this.join(requestId, prior.params_hash, hash);
      if (prior.status === 'completed') {
        if (prior.params_hash !== hash) {
          throw new DaemonError(
            'CONFLICT',
            `request_id ${requestId} already completed a different request; use a new request_id`,
            { request_id: requestId, status: prior.status },
          );
        }
        // The same request again (a client retrying after losing the answer): never run twice.
        return { request_id: requestId, status: prior.status, position: 0, replayed: true };
      }
      // Failed or cancelled: asking again runs it again, continuing the attempt numbering below.
    }
    if (this.queue.size >= this.deps.config.max_queue)
      throw new DaemonError(
        'OVERLOADED',
        `the completion queue is full (${this.deps.config.max_queue} requests); retry later`,
        { queued: this.queue.size },
      );

    this.active.set(requestId, hash);
    const attempts = prior?.attempts ?? 0;
    try {
      // Pre-flight: an unpriced model (any of the chain) or a used-up budget is refused now, not after queueing.
      const scope = { ...(agentId ? { agent_id: agentId } : {}), ...(sessionId ? { session_id: sessionId } : {}) };
      await Promise.all(
        [...new Set(chain)].map((model) => this.deps.request('budget:check', { model, ...scope }, { context })),
      );
      const row = {
        request_id: requestId,
        session_id: sessionId,
        agent_id: agentId,
        model: params.model,
        params: paramsJson,
        params_hash: hash,
        context: context ? JSON.stringify(context) : null,
        created_at: this.now(),
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
      else
        void this.gc
          .later(write)
          .catch((err: unknown) =>
            this.deps.log.error({ err, request_id: requestId }, 'journaling an accepted request failed'),
          );
    } catch (e) {
      this.active.delete(requestId);
      throw e;
    }
    const position = this.queue.enqueue({
      id: requestId,
      key: sessionId ?? `\0${requestId}`,
      session_id: sessionId,
      agent_id: agentId,
      params,
      context,
      attempts,
    });
    this.deps.log.debug({ request_id: requestId, session_id: sessionId, position }, 'completion accepted');
    return { request_id: requestId, status: 'queued', position };
  }

  private join(
    requestId: string,
    knownHash: string,
    hash: string,
  ): { request_id: string; status: string; position: number; replayed: boolean } {
    if (knownHash !== hash) {
      throw new DaemonError(
        'CONFLICT',
        `request_id ${requestId} is already queued or running with different input; use a new request_id`,
        { request_id: requestId },
      );
    }
    return {
      request_id: requestId,
      status: this.inflight.has(requestId) ? 'running' : 'queued',
      position: 0,
      replayed: true,
    };
  }

  private paramsOf(input: CompletionInput, maxTokens: number): Params {
    const { model, fallbacks } = this.providers.resolve(input.model ?? this.deps.config.default_model);
    const p: Params = {
      model,
      max_tokens: maxTokens,
      messages:
        input.prompt !== undefined ? [{ role: 'user', content: input.prompt }] : (input.messages as StoredMessage[]),
      stream: input.stream,
    };
    // Only when there are some: the journaled params (and their hash) of other requests stay as they were.
    if (fallbacks.length > 0) p.fallbacks = fallbacks;
    if (input.system !== undefined) p.system = input.system as Params['system'];
    for (const k of [
      'temperature',
      'top_p',
      'top_k',
      'stop_sequences',
      'tools',
      'tool_choice',
      'thinking',
      'metadata',
    ] as const) {
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
    for (const w of list) ok ? w.resolve(v as Record<string, unknown>) : w.reject(v);
  }

  // ---- run ----------------------------------------------------------------------------------------

  private async run(it: Item): Promise<void> {
    // Shutdown has begun: the request stays queued in the journal for the next start.
    if (this.stopping || this.deps.shuttingDown?.()) return;
    const chain = this.chainOf(it.params);
    // The queue's gate let this request start because the provider of its first usable model has a
    // free slot: take it now, before anything awaits, so no other request can take it meanwhile.
    const firstUsable = this.providers.firstUsable(chain);
    let held =
      firstUsable !== null && this.providers.limiter(this.providers.providerName(firstUsable)).tryAcquire()
        ? firstUsable
        : null;
    // In the transaction of the budget reservation queued right after, whose sync covers it. A queued
    // request leaves the queue only here or through cancel(), so its row is still 'queued' now.
    void this.gc
      .later(() => this.journal.markRunning(it.id, this.now()))
      .catch((err: unknown) => this.deps.log.error({ err, request_id: it.id }, 'marking a request running failed'));
    const attempt = it.attempts + 1;
    const who = { request_id: it.id, session_id: it.session_id, agent_id: it.agent_id };
    const opts = { context: it.context };
    const fl: InFlight = { ac: new AbortController(), why: null, done: Promise.resolve() };
    let finish!: () => void;
    fl.done = new Promise<void>((r) => (finish = r));
    this.inflight.set(it.id, fl);
    this.deps.emit(
      'completion:started',
      { ...who, model: it.params.model, provider: this.providers.providerName(it.params.model), attempt },
      opts,
    );

    const call: CallState = { model: it.params.model, reserved: false, input: 0, billed: null, chars: 0 };
    const coalescer = it.params.stream
      ? new TokenCoalescer(
          (index, text) => this.deps.emit('completion:token', { ...who, index, text }, opts),
          this.deps.config.token_flush_ms,
          this.deps.config.token_flush_chars,
        )
      : null;
    const t0 = performance.now();
    try {
      const { stream: _s, fallbacks: _f, ...base } = it.params;
      const history = it.session_id ? this.journal.history(it.session_id) : [];
      const req: ProviderRequest = { ...base, messages: [...history, ...it.params.messages] };
      const handed = held;
      held = null; // the chain releases it from here on
      const { res, provider, tried } = await this.chain.call(
        {
          item: it,
          chain,
          held: handed,
          req,
          attempt,
          signal: fl.ac.signal,
          stopped: () => fl.why !== null,
          coalescer,
        },
        call,
      );
      coalescer?.end();
      const durationMs = Math.round(performance.now() - t0);
      // A server that reports no usage: the input reserved (never below the real count) and the
      // answer's size (never below its tokens) are charged, marked as an estimate.
      const usage: ProviderUsage =
        res.usage_reported === false
          ? {
              ...res.usage,
              input_tokens: call.input,
              output_tokens: Math.max(res.usage.output_tokens, JSON.stringify(res.content).length),
            }
          : res.usage;
      const result = {
        ...who,
        text: res.text,
        content: res.content,
        stop_reason: res.stop_reason,
        usage: {
          input_tokens: usage.input_tokens,
          output_tokens: usage.output_tokens,
          cache_creation_input_tokens: usage.cache_creation_input_tokens,
          cache_read_input_tokens: usage.cache_read_input_tokens,
        },
        cost_usd: null as number | null,
        price_known: null as boolean | null,
        // The model of the chain that answered, as priced; the provider's own name for it beside.
        model: call.model,
        provider: provider.name,
        provider_model: res.model,
        duration_ms: durationMs,
        attempt,
        ...(res.usage_reported === false ? { usage_estimated: true } : {}),
        ...(tried.length > 0 ? { fallback_from: tried } : {}),
      };
      // The result and the budget's settlement are queued in the same turn, so they share one
      // transaction and one disk sync, and only then is the result emitted. Should the budget not
      // answer, the result is still recorded (completed-but-unsettled), which recovery settles.
      const recorded = this.gc.run(() => {
        this.journal.finish(it.id, 'completed', { result, settled: false }, this.now());
        if (it.session_id) {
          const sys =
            typeof it.params.system === 'string'
              ? it.params.system
              : it.params.system
                ? JSON.stringify(it.params.system)
                : null;
          this.journal.appendTurn(
            it.session_id,
            it.agent_id,
            call.model,
            sys,
            [...it.params.messages, { role: 'assistant', content: res.content }],
            it.id,
            this.now(),
          );
        }
      });
      const settled = await this.commit(it, attempt, call.model, usage, res.usage_reported === false);
      await recorded;
      const cost = settled?.cost_usd ?? null;
      result.cost_usd = cost;
      result.price_known = settled?.price_known ?? null;
      // Bookkeeping only (recovery re-settles idempotently): it rides on a later commit, off this path;
      // until then readers of the stored result get its cost from `settling`.
      if (settled) {
        this.settling.set(it.id, settled);
        this.gc
          .later(() => this.journal.settle(it.id, settled.cost_usd, settled.price_known))
          .catch((err: unknown) =>
            this.deps.log.warn(
              { err, request_id: it.id },
              'marking the request settled failed; the next start settles it',
            ),
          )
          .finally(() => this.settling.delete(it.id));
      }
      this.active.delete(it.id);
      this.deps.emit('completion:result', result, opts);
      this.deps.log.debug({ request_id: it.id, session_id: it.session_id, duration_ms: durationMs }, 'completion done');
      this.settleWaiters(it.id, true, result);
    } catch (err) {
      coalescer?.end();
      await this.afterFailure(it, attempt, fl.why, err, call);
    } finally {
      if (held !== null) this.providers.limiter(this.providers.providerName(held)).release();
      this.inflight.delete(it.id);
      finish();
    }
  }

  private async afterFailure(
    it: Item,
    attempt: number,
    why: InFlight['why'],
    err: unknown,
    call: CallState,
  ): Promise<void> {
    const who = { request_id: it.id, session_id: it.session_id, agent_id: it.agent_id };
    const opts = { context: it.context };
    if (call.reserved) {
      if (call.billed) {
        // The provider had started answering: input is billed and some output too. Count it.
        const u = call.billed;
        await this.commit(
          it,
          attempt,
          call.model,
          { ...u, output_tokens: Math.max(u.output_tokens, call.chars) },
          true,
        );
      } else {
        await this.deps
          .request('budget:release', { request_id: it.id, attempt, reason: why ?? 'failed' }, { context: it.context })
          .catch((e: unknown) => this.deps.log.error({ err: e, request_id: it.id }, 'budget release failed'));
      }
    }
    if (why === 'shutdown') {
      // Handed back: queued again for the next start, and this attempt does not count.
      await this.gc.run(() => this.journal.requeue(it.id, true));
      this.settleWaiters(
        it.id,
        false,
        new DaemonError(
          'SHUTTING_DOWN',
          `request ${it.id} was interrupted by shutdown and stays queued for the next start`,
          { request_id: it.id },
        ),
      );
      return;
    }
    if (why === 'cancel') {
      await this.gc.run(() =>
        this.journal.finish(
          it.id,
          'cancelled',
          { error: { code: 'CANCELLED', message: 'cancelled while running', retryable: false }, settled: true },
          this.now(),
        ),
      );
      this.active.delete(it.id);
      this.deps.emit('completion:cancelled', { ...who, was: 'running' }, opts);
      this.settleWaiters(
        it.id,
        false,
        new DaemonError('CANCELLED', `request ${it.id} was cancelled`, { request_id: it.id }),
      );
      return;
    }
    const failure =
      err instanceof DaemonError
        ? err
        : new DaemonError('UNAVAILABLE', `the call failed: ${(err as Error)?.message ?? String(err)}`);
    // Recorded, emitted and answered: a provider's message may quote its base URL, credentials and all.
    const e = new DaemonError(
      failure.code,
      redactSecrets(failure.message),
      failure.details ? redactDeepDetails(failure.details) : undefined,
    );
    const error: ErrorOutcome = {
      code: e.code,
      message: e.message,
      retryable: e.retryable,
      ...(e.details ? { details: e.details } : {}),
    };
    await this.gc.run(() => this.journal.finish(it.id, 'failed', { error, settled: true }, this.now()));
    this.active.delete(it.id);
    this.deps.log.info({ request_id: it.id, session_id: it.session_id, code: e.code }, 'completion failed');
    this.deps.emit(
      'completion:error',
      { ...who, error: { code: error.code, message: error.message, retryable: error.retryable } },
      opts,
    );
    this.settleWaiters(it.id, false, new DaemonError(e.code, e.message, { ...e.details, request_id: it.id }));
  }

  /** Settle spend with the budget; null when the budget could not be told (retried at next start). */
  private async commit(
    it: Item,
    attempt: number,
    model: string,
    usage: ProviderUsage,
    estimated: boolean,
  ): Promise<Settled | null> {
    try {
      return await this.deps.request<Settled>(
        'budget:commit',
        {
          request_id: it.id,
          attempt,
          model,
          usage,
          estimated,
          ...(it.agent_id ? { agent_id: it.agent_id } : {}),
          ...(it.session_id ? { session_id: it.session_id } : {}),
        },
        { context: it.context },
      );
    } catch (err) {
      this.deps.log.error(
        { err, request_id: it.id, session_id: it.session_id },
        'budget commit failed; will retry at next start',
      );
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
      throw new DaemonError('CONFLICT', `request ${requestId} already finished (${row.status}); nothing to cancel`, {
        request_id: requestId,
        status: row.status,
      });
    }
    const fl = this.inflight.get(requestId);
    if (fl) {
      fl.why = 'cancel';
      fl.ac.abort(new DaemonError('CANCELLED', 'cancelled'));
      await fl.done;
      const after = this.journal.get(requestId)!;
      if (after.status === 'completed')
        throw new DaemonError('CONFLICT', `request ${requestId} completed before it could be cancelled`, {
          request_id: requestId,
          status: 'completed',
        });
      return { request_id: requestId, status: after.status, was: 'running' };
    }
    const key = row.session_id ?? `\0${requestId}`;
    this.queue.remove(requestId, key);
    await this.gc.run(() =>
      this.journal.finish(
        requestId,
        'cancelled',
        { error: { code: 'CANCELLED', message: 'cancelled while queued', retryable: false }, settled: true },
        this.now(),
      ),
    );
    this.active.delete(requestId);
    const context = row.context ? (JSON.parse(row.context) as EventContext) : undefined;
    this.deps.emit(
      'completion:cancelled',
      { request_id: requestId, session_id: row.session_id, agent_id: row.agent_id, was: 'queued' },
      { context },
    );
    this.settleWaiters(
      requestId,
      false,
      new DaemonError('CANCELLED', `request ${requestId} was cancelled`, { request_id: requestId }),
    );
    return { request_id: requestId, status: 'cancelled', was: 'queued' };
  }

  requestStatus(requestId: string): Record<string, unknown> {
    const row = this.row(requestId);
    if (!row)
      throw new DaemonError(
        'NOT_FOUND',
        `no request ${requestId} (unknown, or finished longer ago than completion.retention_hours)`,
        { request_id: requestId },
      );
    const out: Record<string, unknown> = {
      request_id: row.request_id,
      status: row.status,
      session_id: row.session_id,
      agent_id: row.agent_id,
      model: row.model,
      attempts: row.attempts,
      created_at: unixSeconds(row.created_at),
      started_at: unixSeconds(row.started_at),
      finished_at: unixSeconds(row.finished_at),
    };
    if (row.result)
      out.result = withCost(JSON.parse(row.result) as Record<string, unknown>, this.settling.get(requestId));
    if (row.error) out.error = JSON.parse(row.error);
    return out;
  }

  queues(): Record<string, unknown> {
    const depths = this.queue.depths().filter((d) => !d.key.startsWith('\0'));
    depths.sort((a, b) => b.queued - a.queued);
    return {
      queued: this.queue.size,
      running: this.queue.inFlight,
      max_concurrency: this.deps.config.max_concurrency,
      sessions: depths.slice(0, 100).map((d) => ({ session_id: d.key, queued: d.queued, running: d.running })),
      in_flight: this.queue
        .running()
        .slice(0, 100)
        .map((i) => ({
          request_id: i.id,
          session_id: i.session_id,
          agent_id: i.agent_id,
          model: i.params.model,
          provider: this.providers.providerName(i.params.model),
        })),
      // The provider of the default model (what a request naming no model uses), and every provider.
      provider: this.defaultProvider(),
      providers: this.providers.states(),
      stopping: this.stopping,
    };
  }

  private defaultProvider(): { name: string; configured: boolean; reason?: string } {
    const model = this.resolveModel(this.deps.config.default_model);
    const name = this.providers.providerName(model);
    const p = this.providers.get(name);
    if (!p)
      return {
        name,
        configured: false,
        reason: `completion.default_model ${model} names provider "${name}", which is not configured (completion.providers.${name})`,
      };
    return { name: p.name, ...p.status() };
  }

  /** Each provider's state in brief, for system:health. */
  providerHealth(): Record<string, { kind: string; state: string; in_flight: number; reason?: string }> {
    return Object.fromEntries(
      Object.entries(this.providers.states()).map(([n, p]) => [
        n,
        {
          kind: p.kind,
          state: p.state,
          in_flight: p.in_flight,
          ...(p.reason ? { reason: p.reason } : {}),
        },
      ]),
    );
  }

  /** The plugin's status: degraded when the default model cannot be used, saying why. */
  defaultStatus(): { configured: boolean; reason?: string } {
    const { model, fallbacks } = this.providers.resolve(this.deps.config.default_model);
    if (this.providers.firstUsable([model, ...fallbacks]) !== null) return { configured: true };
    return this.defaultProvider();
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  /** Recover from the journal: settle what a crash left half done, then queue what is still owed. */
  async recover(): Promise<{ requeued: number; failed: number; queued: number; resettled: number }> {
    const now = this.now();
    const failedAfterRestart: RequestRow[] = [];
    const retried: string[] = [];
    await this.gc.run(() => {
      for (const row of this.journal.withStatus('running')) {
        // Runs of this acceptance so far (a rerun of a failed request continues the numbering).
        const runs = row.attempts - row.first_attempt + 1;
        if (this.deps.config.restart_policy === 'retry_once' && runs < 2) {
          this.journal.requeue(row.request_id, false);
          retried.push(row.request_id);
        } else {
          const error: ErrorOutcome = {
            code: 'UNAVAILABLE',
            message: 'the daemon stopped while this call was in flight',
            retryable: true,
            reason: 'daemon_restart',
          };
          this.journal.finish(row.request_id, 'failed', { error, settled: true }, now);
          failedAfterRestart.push(row);
        }
      }
      this.journal.prune(now - this.deps.config.retention_hours * 3600_000);
    });
    // Results recorded but not yet settled (the crash came between the two): settle them first, with
    // their actual usage, which also takes their reservations out of the reconcile below.
    let resettled = 0;
    for (const row of this.journal.unsettled()) {
      const r = JSON.parse(row.result!) as {
        usage: ProviderUsage;
        model: string;
        attempt: number;
        usage_estimated?: boolean;
      };
      const item = { id: row.request_id, session_id: row.session_id, agent_id: row.agent_id } as Item;
      const settled = await this.commit(item, r.attempt, r.model, r.usage, r.usage_estimated === true);
      if (settled !== null) {
        await this.gc.run(() => this.journal.settle(row.request_id, settled.cost_usd, settled.price_known));
        resettled++;
      }
    }
    // A call that runs once more is charged once, by the rerun's settlement: the interrupted attempt's
    // reservation is released, not charged as a worst-case estimate on top of it.
    for (const id of retried) {
      await this.deps
        .request('budget:release', { request_id: id, reason: 'daemon_restart_retried' })
        .catch((err: unknown) =>
          this.deps.log.error({ err, request_id: id }, "releasing an interrupted call's reservation failed"),
        );
    }
    // Nothing is in flight yet, so every other reservation this plugin holds was lost with the old process.
    await this.deps
      .request('budget:reconcile', { holder: HOLDER, keep: [] })
      .catch((err: unknown) => this.deps.log.error({ err }, 'budget reconcile failed'));
    for (const row of failedAfterRestart) {
      const context = row.context ? (JSON.parse(row.context) as EventContext) : undefined;
      this.deps.emit(
        'completion:error',
        {
          request_id: row.request_id,
          session_id: row.session_id,
          agent_id: row.agent_id,
          error: {
            code: 'UNAVAILABLE',
            message: 'the daemon stopped while this call was in flight',
            retryable: true,
            reason: 'daemon_restart',
          },
        },
        { context },
      );
    }
    const queued = this.journal.withStatus('queued');
    // Accepted work must not fail for a missing key: a request none of whose providers is configured
    // waits in the queue (the queue's gate holds it) for a start that has one.
    let waiting = 0;
    for (const row of queued) {
      this.active.set(row.request_id, row.params_hash);
      this.queue.enqueue({
        id: row.request_id,
        key: row.session_id ?? `\0${row.request_id}`,
        session_id: row.session_id,
        agent_id: row.agent_id,
        params: JSON.parse(row.params) as Params,
        context: row.context ? (JSON.parse(row.context) as EventContext) : undefined,
        attempts: row.attempts,
      });
      if (this.providers.firstUsable(this.chainOf(JSON.parse(row.params) as Params)) === null) waiting++;
    }
    if (waiting > 0)
      this.deps.log.warn({ waiting }, 'provider not configured; queued requests wait for the next start');
    return { requeued: retried.length, failed: failedAfterRestart.length, queued: queued.length, resettled };
  }

  prune(): number {
    return this.journal.prune(this.now() - this.deps.config.retention_hours * 3600_000);
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
    const margin = Math.min(2000, Math.max(100, (deadline - Date.now()) / 5));
    const { finished, left } = await drainUntil({
      inflight: () => [...this.inflight.values()],
      done: (f) => f.done,
      finishBy: deadline - margin,
      abort: (flights) => {
        for (const f of flights) {
          f.why = 'shutdown';
          f.ac.abort(new DaemonError('SHUTTING_DOWN', 'shutdown'));
        }
      },
      abortedBy: Math.max(Date.now() + 50, deadline - 50),
    });
    for (const [id] of this.waiters)
      this.settleWaiters(
        id,
        false,
        new DaemonError('SHUTTING_DOWN', `the daemon is shutting down; request ${id} stays queued for the next start`, {
          request_id: id,
        }),
      );
    this.gc.flush();
    return { finished, handedBack: left.length };
  }
}

/** A stored result, with its cost when the settlement that writes it there is still pending. */
function withCost(result: Record<string, unknown>, s: Settled | undefined): Record<string, unknown> {
  return s === undefined ? result : { ...result, cost_usd: s.cost_usd, price_known: s.price_known };
}

function outcomeOf(
  row: RequestRow,
  pendingCost?: Settled,
): { ok: true; result: Record<string, unknown> } | { ok: false; error: DaemonError } {
  if (row.status === 'completed')
    return { ok: true, result: withCost(JSON.parse(row.result!) as Record<string, unknown>, pendingCost) };
  const e = row.error
    ? (JSON.parse(row.error) as ErrorOutcome)
    : { code: 'CANCELLED', message: 'cancelled', retryable: false };
  const code = (row.status === 'cancelled' ? 'CANCELLED' : e.code) as ConstructorParameters<typeof DaemonError>[0];
  return {
    ok: false,
    error: new DaemonError(code, e.message, {
      ...e.details,
      request_id: row.request_id,
      ...(e.reason ? { reason: e.reason } : {}),
    }),
  };
}

/** Details with every string value passed through redactSecrets (one level: details are flat). */
function redactDeepDetails(details: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(details).map(([k, v]) => [k, typeof v === 'string' ? redactSecrets(v) : v]));
}
