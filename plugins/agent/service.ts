/**
 * The agent service: spawn, send, message, list, info, terminate, and the per-agent workers that run
 * queued turns one at a time. Work is journaled (agent_turns) before it is acknowledged; at start
 * the journal says what to resume. A plain class, driven by the plugin through ctx.request/emit.
 */
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import {
  DaemonError,
  type EventContext,
  GroupCommit,
  type PluginContext,
  runLazy,
  timeOrderedId,
} from '../../daemon/plugin-api.js';
import type { AgentConfig } from './config.js';
import type { ProfileStore } from './profiles.js';
import type { SpawnInput } from './schemas.js';
import { AgentStore, MIGRATIONS, type AgentRow, type TurnError, type TurnRow, type TurnSource } from './store.js';
import { spawnAgent } from './spawn.js';
import { roundUsd, unixSeconds } from '../../client/units.js';
import { TurnRunner } from './turn.js';
import { drainUntil } from '../../client/timing.js';

export { MIGRATIONS };

export interface ServiceDeps {
  db: Database.Database;
  log: Logger;
  config: AgentConfig;
  profiles: ProfileStore;
  request: PluginContext['request'];
  emit: PluginContext['emit'];
}

interface Waiter {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: unknown) => void;
}

const CHAIN_MAX = 64;

export class AgentService {
  readonly store: AgentStore;
  readonly gc: GroupCommit;
  private readonly runner: TurnRunner;
  private readonly workers = new Map<string, Promise<void>>();
  /** The turn each agent is running now. */
  private readonly current = new Map<string, TurnRow>();
  private readonly inflight = new Map<string, string>();
  private readonly terminated = new Set<string>();
  /** Running turns asked to stop (agent:cancel), by agent, with the controller their requests listen to. */
  private readonly cancels = new Map<string, { turnId: string; ac: AbortController }>();
  private readonly waiters = new Map<string, Waiter[]>();
  private stopping = false;

  constructor(private readonly deps: ServiceDeps) {
    this.store = new AgentStore(deps.db);
    this.gc = GroupCommit.for(deps.db);
    this.runner = new TurnRunner({
      store: this.store,
      gc: this.gc,
      lazy: (op) => runLazy(deps.db, op),
      config: deps.config,
      log: deps.log,
      request: deps.request,
      emit: deps.emit,
      interrupted: (id) =>
        this.terminated.has(id) ? 'terminated' : this.stopping ? 'stopping' : this.isCancelled(id) ? 'cancelled' : null,
      signalOf: (id) => this.cancelSignal(id),
      setInflight: (id, rid) => void (rid ? this.inflight.set(id, rid) : this.inflight.delete(id)),
      parentOf: (id) => {
        const a = this.store.agent(id);
        return a ? a.parent_id : undefined;
      },
    });
  }

  private live(id: string): AgentRow {
    const a = this.store.agent(id);
    if (!a) throw new DaemonError('NOT_FOUND', `no agent ${id}`, { agent_id: id });
    if (a.status === 'terminated')
      throw new DaemonError('CONFLICT', `agent ${id} is terminated`, { agent_id: id, status: 'terminated' });
    return a;
  }

  private guard(): void {
    if (this.stopping)
      throw new DaemonError('SHUTTING_DOWN', 'the agent service is stopping; queued turns resume at the next start');
  }

  async spawn(input: SpawnInput, context: EventContext): Promise<Record<string, unknown>> {
    this.guard();
    return spawnAgent(
      {
        store: this.store,
        gc: this.gc,
        config: this.deps.config,
        profiles: this.deps.profiles,
        log: this.deps.log,
        request: this.deps.request,
        emit: this.deps.emit,
        live: (id) => this.live(id),
        view: (a) => this.view(a),
      },
      input,
      context,
    );
  }

  // ---- turns ---------------------------------------------------------------------------------------

  async send(
    input: {
      agent_id: string;
      message: string;
      wait: boolean;
      turn_id?: string;
      goal?: string | undefined;
      goal_mode?: 'auto' | 'learn' | 'follow';
    },
    context: EventContext,
  ): Promise<Record<string, unknown>> {
    this.guard();
    if (input.turn_id) {
      const prior = this.store.turn(input.turn_id);
      if (prior) {
        if (prior.agent_id !== input.agent_id || prior.input !== input.message) {
          throw new DaemonError('CONFLICT', `turn_id ${input.turn_id} was already used for another message`, {
            turn_id: input.turn_id,
          });
        }
        return input.wait
          ? this.outcome(prior.turn_id)
          : { agent_id: prior.agent_id, turn_id: prior.turn_id, status: prior.status };
      }
    }
    // With wait, the answer is the outcome (written durably); the queued row need not wait for the disk.
    const turnId = await this.enqueue(input.agent_id, {
      source: 'send',
      input: input.message,
      context,
      turn_id: input.turn_id,
      durable: !input.wait,
      ...(input.goal ? { goal: input.goal, goal_mode: input.goal_mode ?? 'auto' } : {}),
    });
    return input.wait ? this.outcome(turnId) : { agent_id: input.agent_id, turn_id: turnId, status: 'queued' };
  }

  async message(
    input: { from: string; to: string; content: string; message_id?: string },
    context: EventContext,
  ): Promise<Record<string, unknown>> {
    this.guard();
    if (input.message_id) {
      const prior = this.store.inboxEntry(input.message_id);
      if (prior)
        return {
          message_id: prior.message_id,
          to: prior.to_agent,
          turn_id: prior.turn_id,
          status: 'delivered',
          duplicate: true,
        };
    }
    this.live(input.from);
    if (input.from === input.to)
      throw new DaemonError('CONFLICT', 'an agent cannot message itself', { agent_id: input.from });
    // The chain of agents this message continues: the sender's current turn's chain when it is the sender acting.
    const cur = context.agent_id === input.from ? this.current.get(input.from) : undefined;
    const chain = [...(cur?.chain ?? []), input.from].slice(-CHAIN_MAX);
    const hops = this.deps.config.max_message_hops;
    if (hops > 0 && chain.length > hops) {
      // The sender's turn fails on this and reports it (agent:error with the chain).
      throw new DaemonError(
        'LOOP_DETECTED',
        `message chain ${chain.join(' → ')} → ${input.to} exceeds agent.max_message_hops (${hops})`,
        {
          agents: [...chain, input.to],
          max_message_hops: hops,
        },
      );
    }
    const messageId = input.message_id ?? `msg-${timeOrderedId()}`;
    const turnId = await this.enqueue(input.to, {
      source: 'message',
      input: input.content,
      context,
      from: input.from,
      message_id: messageId,
      chain,
      inbox: { messageId, from: input.from, content: input.content },
    });
    return { message_id: messageId, to: input.to, turn_id: turnId, status: 'queued' };
  }

  /** Journal a turn (and its inbox entry) durably, then wake the agent's worker. */
  async enqueue(
    agentId: string,
    o: {
      source: TurnSource;
      input: string;
      context: EventContext;
      turn_id?: string | undefined;
      from?: string;
      message_id?: string;
      chain?: string[];
      conversation_id?: string;
      inbox?: { messageId: string; from: string; content: string };
      goal?: string;
      goal_mode?: 'auto' | 'learn' | 'follow';
      /** Wait for the disk before answering (the answer acknowledges the work). Default true. */
      durable?: boolean;
    },
  ): Promise<string> {
    this.live(agentId);
    const max = this.deps.config.max_queued_turns;
    if (this.store.queuedCount(agentId) >= max)
      throw new DaemonError('OVERLOADED', `agent ${agentId} has ${max} queued turns (agent.max_queued_turns)`, {
        agent_id: agentId,
      });
    const turnId = o.turn_id ?? `t-${timeOrderedId()}`;
    const write = (): void => {
      const a = this.store.agent(agentId);
      if (!a || a.status === 'terminated')
        throw new DaemonError('CONFLICT', `agent ${agentId} is terminated`, { agent_id: agentId });
      this.store.insertTurn({
        turn_id: turnId,
        agent_id: agentId,
        source: o.source,
        from_agent: o.from ?? null,
        message_id: o.message_id ?? null,
        input: o.input,
        context: o.context,
        chain: o.chain ?? [],
        conversation_id: o.conversation_id ?? null,
        created_at: Date.now(),
        goal: o.goal ?? null,
        goal_mode: o.goal_mode ?? null,
      });
      if (o.inbox)
        this.store.insertInbox(o.inbox.messageId, agentId, o.inbox.from, o.inbox.content, turnId, Date.now());
    };
    if (o.durable === false) runLazy(this.deps.db, write);
    else await this.gc.run(write);
    this.kick(agentId);
    return turnId;
  }

  /** The turn's outcome once it has one: the reply, or its error thrown. */
  outcome(turnId: string): Promise<Record<string, unknown>> {
    const t = this.store.turn(turnId);
    if (!t) return Promise.reject(new DaemonError('NOT_FOUND', `no turn ${turnId}`, { turn_id: turnId }));
    if (t.status === 'completed' || t.status === 'failed' || t.status === 'cancelled') {
      try {
        return Promise.resolve(this.result(t));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(turnId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(turnId, list);
    });
  }

  private result(t: TurnRow): Record<string, unknown> {
    if (t.status !== 'completed') {
      const e = t.error ?? { code: 'CANCELLED', message: 'cancelled' };
      throw new DaemonError(e.code as ConstructorParameters<typeof DaemonError>[0], e.message, {
        ...e.details,
        agent_id: t.agent_id,
        turn_id: t.turn_id,
        ...(e.reason ? { reason: e.reason } : {}),
      });
    }
    return {
      agent_id: t.agent_id,
      turn_id: t.turn_id,
      status: t.status,
      reply: t.reply,
      stop_reason: t.stop_reason,
      steps: t.steps,
      tool_calls: this.store.toolCalls(t.turn_id).map((c) => ({
        tool_use_id: c.tool_use_id,
        name: c.name,
        input: c.input,
        is_error: c.is_error,
        error_code: c.error_code,
        duration_ms: c.duration_ms,
      })),
      usage: t.usage,
      cost_usd: roundUsd(t.cost_usd),
      ...(t.trace ? { trace: t.trace } : {}),
    };
  }

  private settle(turnId: string): void {
    const list = this.waiters.get(turnId);
    if (!list) return;
    this.waiters.delete(turnId);
    const t = this.store.turn(turnId)!;
    for (const w of list) {
      try {
        w.resolve(this.result(t));
      } catch (e) {
        w.reject(e);
      }
    }
  }

  private kick(agentId: string): void {
    if (this.workers.has(agentId) || this.stopping) return;
    const work = (async () => {
      let previous: string | null = null;
      try {
        for (;;) {
          if (this.stopping) return;
          const t = this.store.nextTurn(agentId);
          if (!t) return;
          if (t.turn_id === previous) {
            this.deps.log.error(
              { agent_id: agentId, turn_id: t.turn_id },
              'turn did not leave the queue; worker stops',
            );
            return;
          }
          previous = t.turn_id;
          await this.runOne(t);
        }
      } catch (err) {
        this.deps.log.error({ err, agent_id: agentId }, 'agent worker failed');
      } finally {
        this.workers.delete(agentId);
      }
    })();
    this.workers.set(agentId, work);
  }

  private async runOne(t: TurnRow): Promise<void> {
    const agent = this.store.agent(t.agent_id);
    let out: Awaited<ReturnType<TurnRunner['run']>>;
    if (!agent || agent.status === 'terminated') {
      out = {
        status: 'cancelled',
        error: { code: 'CANCELLED', message: `agent ${t.agent_id} was terminated` },
        steps: t.steps,
        tool_calls: t.tool_calls,
        usage: t.usage ?? {
          input_tokens: 0,
          output_tokens: 0,
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 0,
        },
        cost_usd: t.cost_usd,
      };
    } else {
      this.current.set(t.agent_id, t);
      try {
        out = await this.runner.run(t, agent);
      } finally {
        this.current.delete(t.agent_id);
        this.terminated.delete(t.agent_id);
        this.cancels.delete(t.agent_id);
      }
    }
    if (out.status === 'interrupted') {
      for (const w of this.waiters.get(t.turn_id) ?? [])
        w.reject(
          new DaemonError('SHUTTING_DOWN', `the daemon is stopping; turn ${t.turn_id} resumes at the next start`, {
            turn_id: t.turn_id,
          }),
        );
      this.waiters.delete(t.turn_id);
      return;
    }
    const error: TurnError | null = out.status === 'completed' ? null : out.error;
    await this.gc.run(() => {
      this.store.finishTurn(
        t.turn_id,
        {
          status: out.status as 'completed' | 'failed' | 'cancelled',
          reply: out.status === 'completed' ? out.reply : null,
          stop_reason: out.status === 'completed' ? out.stop_reason : null,
          error,
        },
        Date.now(),
      );
      this.store.addUsage(t.agent_id, { turns: 1, tool_calls: out.tool_calls, cost_usd: out.cost_usd, ...out.usage });
    });
    const opts = { context: t.context ?? undefined, agentId: t.agent_id };
    if (out.status === 'completed') {
      this.deps.emit(
        'agent:reply',
        {
          agent_id: t.agent_id,
          turn_id: t.turn_id,
          text: out.reply,
          stop_reason: out.stop_reason,
          steps: out.steps,
          tool_calls: out.tool_calls,
          usage: out.usage,
          cost_usd: roundUsd(out.cost_usd),
        },
        opts,
      );
    } else {
      const e = out.error;
      const agents = e.code === 'LOOP_DETECTED' ? [...t.chain, t.agent_id] : undefined;
      this.deps.emit(
        'agent:error',
        {
          agent_id: t.agent_id,
          turn_id: t.turn_id,
          code: e.code,
          message: e.message,
          reason: e.reason ?? null,
          ...(agents ? { agents } : {}),
        },
        opts,
      );
      this.deps.log.info({ agent_id: t.agent_id, turn_id: t.turn_id, code: e.code, agents }, 'turn failed');
    }
    this.settle(t.turn_id);
  }

  // ---- cancel --------------------------------------------------------------------------------------

  private isCancelled(agentId: string): boolean {
    const c = this.cancels.get(agentId);
    return c !== undefined && c.turnId === this.current.get(agentId)?.turn_id && c.ac.signal.aborted;
  }

  /** The running turn's cancel signal (made on first use: most turns are never cancelled). */
  private cancelSignal(agentId: string): AbortSignal | undefined {
    const cur = this.current.get(agentId);
    if (!cur) return undefined;
    let c = this.cancels.get(agentId);
    if (!c || c.turnId !== cur.turn_id)
      this.cancels.set(agentId, (c = { turnId: cur.turn_id, ac: new AbortController() }));
    return c.ac.signal;
  }

  /**
   * Cancel a turn (default: the running one). A queued turn is cancelled at once; the running one
   * stops at its next step: its model call and tool call in flight are abandoned, tool calls not yet
   * made are answered "not run", and the agent stays live for its next message.
   */
  async cancel(
    input: { agent_id: string; turn_id?: string | undefined },
    context: EventContext,
  ): Promise<Record<string, unknown>> {
    if (!this.store.agent(input.agent_id))
      throw new DaemonError('NOT_FOUND', `no agent ${input.agent_id}`, { agent_id: input.agent_id });
    const turnId = input.turn_id ?? this.current.get(input.agent_id)?.turn_id;
    if (!turnId) return { agent_id: input.agent_id, turn_id: null, cancelled: false, status: 'idle' };
    const t = this.store.turn(turnId);
    if (!t || t.agent_id !== input.agent_id)
      throw new DaemonError('NOT_FOUND', `agent ${input.agent_id} has no turn ${turnId}`, {
        agent_id: input.agent_id,
        turn_id: turnId,
      });
    let queuedCancelled = false;
    await this.gc.run(() => {
      const now = this.store.turn(turnId);
      if (now?.status !== 'queued' || this.current.get(input.agent_id)?.turn_id === turnId) return;
      this.store.finishTurn(
        turnId,
        {
          status: 'cancelled',
          reply: null,
          stop_reason: null,
          error: { code: 'CANCELLED', message: 'the turn was cancelled' },
        },
        Date.now(),
      );
      queuedCancelled = true;
    });
    if (queuedCancelled) {
      this.settle(turnId);
      this.deps.emit(
        'agent:error',
        { agent_id: t.agent_id, turn_id: turnId, code: 'CANCELLED', message: 'the turn was cancelled', reason: null },
        { context, agentId: t.agent_id },
      );
      return { agent_id: input.agent_id, turn_id: turnId, cancelled: true, status: 'cancelled' };
    }
    if (this.current.get(input.agent_id)?.turn_id !== turnId)
      return {
        agent_id: input.agent_id,
        turn_id: turnId,
        cancelled: false,
        status: this.store.turn(turnId)?.status ?? t.status,
      };
    this.cancelSignal(input.agent_id);
    this.cancels
      .get(input.agent_id)!
      .ac.abort(new DaemonError('CANCELLED', `turn ${turnId} was cancelled`, { turn_id: turnId }));
    const rid = this.inflight.get(input.agent_id);
    if (rid)
      void this.deps
        .request('completion:cancel', { request_id: rid }, { context, agentId: input.agent_id })
        .catch(() => undefined);
    return { agent_id: input.agent_id, turn_id: turnId, cancelled: true, status: 'cancelling' };
  }

  // ---- terminate -----------------------------------------------------------------------------------

  async terminate(
    input: { agent_id: string; cascade: boolean; reason?: string | undefined },
    context: EventContext,
  ): Promise<Record<string, unknown>> {
    const a = this.store.agent(input.agent_id);
    if (!a) throw new DaemonError('NOT_FOUND', `no agent ${input.agent_id}`, { agent_id: input.agent_id });
    const targets: Array<{ id: string; from: string | null }> = [{ id: a.agent_id, from: null }];
    if (input.cascade) {
      for (let i = 0; i < targets.length && targets.length < 100_000; i++) {
        for (const c of this.store.children(targets[i]!.id))
          if (c.status === 'active') targets.push({ id: c.agent_id, from: a.agent_id });
      }
    }
    const done: Array<{ id: string; from: string | null; cancelled: string[] }> = [];
    await this.gc.run(() => {
      for (const t of targets) {
        if (!this.store.terminate(t.id, input.reason ?? null, Date.now())) continue;
        const cancelled = this.store.cancelQueued(
          t.id,
          { code: 'CANCELLED', message: `agent ${t.id} was terminated` },
          Date.now(),
        );
        done.push({ ...t, cancelled });
      }
    });
    for (const t of done) {
      // Tells a running turn to stop at its next step (queued ones were cancelled above).
      if (this.current.has(t.id)) this.terminated.add(t.id);
      for (const turnId of t.cancelled) this.settle(turnId);
      const rid = this.inflight.get(t.id);
      if (rid)
        void this.deps
          .request('completion:cancel', { request_id: rid }, { context, agentId: t.id })
          .catch(() => undefined);
      this.deps.emit(
        'agent:terminated',
        { agent_id: t.id, reason: input.reason ?? null, cascade_from: t.from },
        { context, agentId: t.id },
      );
    }
    return {
      agent_id: a.agent_id,
      status: 'terminated',
      already_terminated: a.status === 'terminated',
      terminated: done.map((t) => t.id),
      cancelled_turns: done.reduce((n, t) => n + t.cancelled.length, 0),
    };
  }

  // ---- delete --------------------------------------------------------------------------------------

  /** Delete a terminated agent and its history. A live agent must be terminated first. */
  async delete(agentId: string): Promise<{ agent_id: string; deleted: true; messages: number; turns: number }> {
    const a = this.store.agent(agentId);
    if (!a) throw new DaemonError('NOT_FOUND', `no agent ${agentId}`, { agent_id: agentId });
    if (a.status !== 'terminated')
      throw new DaemonError('CONFLICT', `agent ${agentId} is live; terminate it first (agent:terminate)`, {
        agent_id: agentId,
        status: 'active',
      });
    if (this.current.has(agentId))
      throw new DaemonError('CONFLICT', `agent ${agentId} is still finishing its last turn; try again shortly`, {
        agent_id: agentId,
      });
    const live = this.store
      .children(agentId)
      .filter((c) => c.status === 'active')
      .map((c) => c.agent_id);
    if (live.length)
      throw new DaemonError(
        'CONFLICT',
        `agent ${agentId} has live children; terminate them first (agent:terminate with cascade)`,
        { agent_id: agentId, children: live },
      );
    const r = await this.gc.run(() => this.store.deleteAgent(agentId));
    if (!r.deleted) throw new DaemonError('NOT_FOUND', `no agent ${agentId}`, { agent_id: agentId });
    this.deps.emit('agent:deleted', { agent_id: agentId });
    return { agent_id: agentId, deleted: true, messages: r.messages, turns: r.turns };
  }

  /** Delete every terminated agent terminated at least `olderThanS` seconds ago (those that can be: see delete). */
  async prune(olderThanS: number): Promise<{ deleted: string[]; kept: Array<{ agent_id: string; reason: string }> }> {
    const deleted: string[] = [];
    const kept: Array<{ agent_id: string; reason: string }> = [];
    for (const id of this.store.terminatedBefore(Date.now() - olderThanS * 1000)) {
      try {
        await this.delete(id);
        deleted.push(id);
      } catch (e) {
        kept.push({ agent_id: id, reason: (e as Error).message });
      }
    }
    return { deleted, kept };
  }

  // ---- queries -------------------------------------------------------------------------------------

  view(a: AgentRow): Record<string, unknown> {
    return {
      agent_id: a.agent_id,
      status: a.status === 'terminated' ? 'terminated' : this.current.has(a.agent_id) ? 'running' : 'idle',
      profile: a.profile,
      model: a.model || null,
      tools: a.tools,
      limits: a.limits,
      budget_usd: a.budget_usd,
      metadata: a.metadata,
      parent_id: a.parent_id,
      depth: a.depth,
      stream: a.stream,
      created_at: unixSeconds(a.created_at),
      terminated_at: unixSeconds(a.terminated_at),
      terminate_reason: a.terminate_reason,
      usage: {
        turns: a.turns,
        tool_calls: a.tool_calls,
        input_tokens: a.input_tokens,
        output_tokens: a.output_tokens,
        cache_read_input_tokens: a.cache_read_input_tokens,
        cache_creation_input_tokens: a.cache_creation_input_tokens,
        cost_usd: roundUsd(a.cost_usd),
      },
    };
  }

  list(f: {
    status?: 'idle' | 'running' | 'terminated' | 'live' | undefined;
    parent_id?: string | undefined;
    limit: number;
  }): Record<string, unknown> {
    const dbStatus = f.status === 'terminated' ? 'terminated' : f.status ? 'active' : undefined;
    let rows = this.store.list({
      ...(dbStatus ? { status: dbStatus } : {}),
      ...(f.parent_id ? { parent_id: f.parent_id } : {}),
      limit: f.status === 'idle' || f.status === 'running' ? 100_000 : f.limit,
    });
    if (f.status === 'running') rows = rows.filter((r) => this.current.has(r.agent_id));
    if (f.status === 'idle') rows = rows.filter((r) => !this.current.has(r.agent_id));
    const agents = rows.slice(0, f.limit).map((r) => this.view(r));
    return { agents, count: agents.length };
  }

  async info(
    input: { agent_id: string; history_limit: number; turns_limit: number },
    context: EventContext,
  ): Promise<Record<string, unknown>> {
    const a = this.store.agent(input.agent_id);
    if (!a) throw new DaemonError('NOT_FOUND', `no agent ${input.agent_id}`, { agent_id: input.agent_id });
    let budget: unknown = null;
    if (a.budget_usd !== null) {
      budget = await this.deps
        .request<{ scopes: unknown[] }>(
          'budget:status',
          { scope: 'agent', id: a.agent_id },
          { context, timeoutMs: 5000 },
        )
        .then(
          (r) => r.scopes[0] ?? null,
          () => null,
        );
    }
    const cur = this.current.get(a.agent_id);
    return {
      ...this.view(a),
      current_turn: cur?.turn_id ?? null,
      queued_turns: this.store.queuedCount(a.agent_id),
      history_length: this.store.historyCount(a.agent_id),
      history: input.history_limit > 0 ? this.store.history(a.agent_id, input.history_limit) : [],
      inbox: this.store.inbox(a.agent_id, 50).map((m) => ({ ...m, created_at: unixSeconds(m.created_at as number) })),
      children: this.store.children(a.agent_id),
      turns: this.store.recentTurns(a.agent_id, input.turns_limit).map((t) => ({
        ...t,
        cost_usd: roundUsd(t.cost_usd as number | null),
        created_at: unixSeconds(t.created_at as number),
        finished_at: unixSeconds(t.finished_at as number | null),
      })),
      budget,
    };
  }

  // ---- lifecycle -----------------------------------------------------------------------------------

  /** After a start: wake every agent with queued or interrupted work. */
  recover(): { running: number; queued: number } {
    const running = this.store.turnsWithStatus('running').length;
    const queued = this.store.turnsWithStatus('queued').length;
    for (const id of this.store.agentsWithWork()) this.kick(id);
    return { running, queued };
  }

  /**
   * No new turn or step starts; a running step may finish within half the time left (the completion
   * plugin stops after this one and needs the rest to hand its calls back). Turns still running stay
   * journaled as running and resume at the next start.
   */
  async stop(deadline: number): Promise<{ finished: number; left: number }> {
    this.stopping = true;
    const { finished, left } = await drainUntil({
      inflight: () => [...this.workers.values()],
      done: (w) => w,
      finishBy: Date.now() + Math.max(0, (deadline - Date.now()) / 2),
    });
    for (const [id, list] of this.waiters) {
      for (const w of list)
        w.reject(
          new DaemonError('SHUTTING_DOWN', `the daemon is stopping; turn ${id} resumes at the next start`, {
            turn_id: id,
          }),
        );
    }
    this.waiters.clear();
    this.gc.flush();
    return { finished, left: left.length };
  }

  isStopping(): boolean {
    return this.stopping;
  }

  health(): Record<string, unknown> {
    return { live_agents: this.store.liveCount(), running_turns: this.current.size, workers: this.workers.size };
  }
}
