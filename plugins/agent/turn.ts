/**
 * One turn of an agent: model call, tool calls routed as events, results fed back, until the model
 * stops or a limit is hit. Every step is journaled before the next begins (the user message, each
 * assistant message, each tool result), so a turn interrupted by a crash is resumed from where its
 * journal ends: finished model calls are replayed by request_id, finished tool calls are not rerun.
 */
import type { Logger } from 'pino';
import { DaemonError, type GroupCommit, type PluginContext } from '../../daemon/plugin-api.js';
import type { AgentConfig } from './config.js';
import { buildMessages, textOf, toolUsesOf, type ToolUse } from './history.js';
import {
  ZERO_USAGE,
  type AgentRow,
  type AgentStore,
  type StoredMessage,
  type ToolCallRow,
  type TurnError,
  type TurnRow,
  type Usage,
} from './store.js';
import { runTool, toolDefinitions } from './tools.js';
import { sleep } from '../../client/timing.js';
import { addUsage } from '../../client/usage.js';
import { ToolEvents } from './tool-events.js';
import { isBuiltinTool, mcpToolDefinitions } from './mcp-tools.js';

export interface TurnDeps {
  store: AgentStore;
  gc: GroupCommit;
  /** A write that need not wait for the disk: the next durable commit flushes it, and kill -9 never loses it. */
  lazy(op: () => void): void;
  config: AgentConfig;
  log: Logger;
  request: PluginContext['request'];
  emit: PluginContext['emit'];
  /** The agent was terminated, its turn cancelled, or the daemon is stopping: stop at the next step. */
  interrupted(agentId: string): 'terminated' | 'cancelled' | 'stopping' | null;
  /** Aborted when the agent's running turn is cancelled: its model call and tool calls stop waiting. */
  signalOf?(agentId: string): AbortSignal | undefined;
  setInflight(agentId: string, requestId: string | null): void;
  parentOf(agentId: string): string | null | undefined;
}

export type TurnOutcome =
  | { status: 'completed'; reply: string; stop_reason: string }
  | { status: 'failed' | 'cancelled'; error: TurnError }
  /** Left running in the journal for the next start (shutdown). */
  | { status: 'interrupted' };

interface CompletionResult {
  content: Array<Record<string, unknown>>;
  stop_reason: string | null;
  usage: Usage;
  cost_usd: number;
}

/** What the model sees as the turn's user message. */
export function userMessageOf(t: Pick<TurnRow, 'source' | 'from_agent' | 'input'>): string {
  return t.source === 'message' ? `[message from agent ${t.from_agent}]\n${t.input}` : t.input;
}

export class TurnRunner {
  constructor(private readonly deps: TurnDeps) {}

  private emit(t: TurnRow, event: string, data: Record<string, unknown>): void {
    this.deps.emit(event, data, { context: t.context ?? undefined, agentId: t.agent_id });
  }

  private req<T>(t: TurnRow, event: string, data: Record<string, unknown>, timeoutMs: number): Promise<T> {
    const signal = this.deps.signalOf?.(t.agent_id);
    return this.deps.request<T>(event, data, {
      context: t.context ?? undefined,
      agentId: t.agent_id,
      timeoutMs,
      ...(signal ? { signal } : {}),
    });
  }

  async run(
    t: TurnRow,
    agent: AgentRow,
  ): Promise<TurnOutcome & { steps: number; tool_calls: number; usage: Usage; cost_usd: number }> {
    const d = this.deps;
    const resumed = t.status === 'running';
    let steps = t.steps;
    let toolCalls = t.tool_calls;
    let usage = t.usage ?? ZERO_USAGE;
    let cost = t.cost_usd;
    const done = (o: TurnOutcome) => ({ ...o, steps, tool_calls: toolCalls, usage, cost_usd: cost });

    if (resumed && (d.config.restart_policy === 'fail' || t.resumes >= d.config.max_resumes)) {
      return done({
        status: 'failed',
        error: {
          code: 'UNAVAILABLE',
          message: 'the daemon stopped while this turn was running',
          reason: 'daemon_restart',
        },
      });
    }
    // A turn answered from a trace has its reply in the history like any other; one whose replay
    // diverged tells the model what was done.
    const open = (trace: Record<string, unknown> | null): void => {
      const note = typeof trace?.note === 'string' ? `\n\n${trace.note}` : '';
      const reply = trace?.replayed === true && typeof trace.reply === 'string' ? trace.reply : null;
      d.store.appendMessage(t.agent_id, t.turn_id, { role: 'user', content: userMessageOf(t) + note }, Date.now());
      if (trace) d.store.setTrace(t.turn_id, trace);
      if (reply !== null)
        d.store.appendMessage(
          t.agent_id,
          t.turn_id,
          { role: 'assistant', content: [{ type: 'text', text: reply }] },
          Date.now(),
        );
      d.store.openTurn(t.turn_id);
    };
    const started = {
      agent_id: t.agent_id,
      turn_id: t.turn_id,
      source: t.source,
      from: t.from_agent,
      resumed,
      ...(t.goal ? { goal: t.goal } : {}),
    };
    // Lazy: if a power cut lost it, the turn is simply still queued (or opened again) at the next start.
    if (t.goal && !t.opened) {
      // A turn given a goal asks the trace plugin before it is opened: the answer may be its reply.
      d.lazy(() => d.store.startTurn(t.turn_id, resumed, Date.now()));
      this.emit(t, 'agent:turn_started', started);
      const g = await this.beginGoal(t, agent);
      if ('outcome' in g) return done(g.outcome);
      d.lazy(() => open(g.trace));
    } else {
      d.lazy(() => {
        d.store.startTurn(t.turn_id, resumed, Date.now());
        if (!t.opened) open(null);
      });
      this.emit(t, 'agent:turn_started', started);
    }

    const last = d.store.lastMessage(t.agent_id);
    let lastOwn: StoredMessage | null = last && last.turn_id === t.turn_id && last.role === 'assistant' ? last : null;
    let lastStop = 'end_turn';
    let lastText = lastOwn ? textOf(lastOwn.content) : '';
    try {
      for (;;) {
        const why = d.interrupted(t.agent_id);
        if (why === 'terminated')
          return done({
            status: 'cancelled',
            error: { code: 'CANCELLED', message: `agent ${t.agent_id} was terminated` },
          });
        if (why === 'stopping') return done({ status: 'interrupted' });
        // Cancelled with tool calls unanswered: answer them as not run first, so the history stays a valid exchange.
        if (why === 'cancelled' && !(lastOwn && toolUsesOf(lastOwn.content).length))
          return done({ status: 'cancelled', error: { code: 'CANCELLED', message: 'the turn was cancelled' } });

        if (lastOwn) {
          const uses = toolUsesOf(lastOwn.content);
          if (uses.length === 0) return done({ status: 'completed', reply: lastText, stop_reason: lastStop });
          const r = await this.runTools(t, agent, uses, steps, toolCalls);
          toolCalls = r.toolCalls;
          // Lazy like every step inside a turn: kill -9 never loses it; a power cut at worst runs an
          // idempotent tool call again. Only the turn's outcome waits for the disk.
          d.lazy(() => {
            for (const c of r.unjournaled) d.store.recordToolCall(t.turn_id, c);
            d.store.appendMessage(t.agent_id, t.turn_id, { role: 'user', content: r.blocks }, Date.now());
            d.store.setToolCalls(t.turn_id, toolCalls);
          });
          if (r.fatal) throw r.fatal;
          if (r.limitHit) return done({ status: 'completed', reply: lastText, stop_reason: 'tool_call_limit' });
          lastOwn = null;
          continue;
        }

        if (steps >= agent.limits.max_turns)
          return done({ status: 'completed', reply: lastText, stop_reason: 'turn_limit' });
        const res = await this.complete(t, agent, steps, resumed);
        // Stopping: write nothing more; the resumed turn gets this same answer replayed by request_id.
        if (d.interrupted(t.agent_id) === 'stopping') return done({ status: 'interrupted' });
        steps++;
        usage = addUsage(usage, res.usage);
        cost += res.cost_usd;
        const content = res.content.length > 0 ? res.content : [{ type: 'text', text: '(no reply)' }];
        // Lazy: lost only to a power cut, and then the same call is replayed from the completion journal by its request_id.
        d.lazy(() => {
          d.store.appendMessage(t.agent_id, t.turn_id, { role: 'assistant', content }, Date.now());
          d.store.stepDone(t.turn_id, usage, cost);
        });
        lastOwn = { role: 'assistant', content };
        lastStop = res.stop_reason ?? 'end_turn';
        lastText = textOf(content);
      }
    } catch (e) {
      if (d.interrupted(t.agent_id) === 'stopping') return done({ status: 'interrupted' });
      const de =
        e instanceof DaemonError ? e : new DaemonError('HANDLER_ERROR', e instanceof Error ? e.message : String(e));
      if (!(e instanceof DaemonError))
        d.log.error({ err: e, agent_id: t.agent_id, turn_id: t.turn_id }, 'turn failed unexpectedly');
      const reason = typeof de.details?.reason === 'string' ? de.details.reason : undefined;
      const status = de.code === 'CANCELLED' ? 'cancelled' : 'failed';
      return done({
        status,
        error: {
          code: de.code,
          message: de.message,
          ...(reason ? { reason } : {}),
          ...(de.details ? { details: de.details } : {}),
        },
      });
    } finally {
      d.setInflight(t.agent_id, null);
    }
  }

  /**
   * A turn given a goal asks the trace plugin first: it records the turn (learn), or replays a trace
   * of the goal with no model call (follow) and hands back the reply, or where the replay diverged.
   * Without the trace plugin the turn is just not learned; follow then fails, as it cannot be done.
   */
  private async beginGoal(
    t: TurnRow,
    agent: AgentRow,
  ): Promise<{ trace: Record<string, unknown> | null } | { outcome: TurnOutcome }> {
    const mode = t.goal_mode ?? 'auto';
    try {
      const trace = await this.req<Record<string, unknown>>(
        t,
        'trace:begin_turn',
        {
          agent_id: t.agent_id,
          turn_id: t.turn_id,
          goal: t.goal,
          mode,
          message: t.input,
          agent: {
            ...(agent.profile ? { profile: agent.profile } : {}),
            ...(agent.model ? { model: agent.model } : {}),
            ...(agent.system ? { system: agent.system } : {}),
            tools: agent.tools,
          },
        },
        this.deps.config.step_timeout_ms,
      );
      return { trace };
    } catch (e) {
      const de =
        e instanceof DaemonError ? e : new DaemonError('HANDLER_ERROR', e instanceof Error ? e.message : String(e));
      if (this.deps.interrupted(t.agent_id) === 'stopping' || de.code === 'SHUTTING_DOWN')
        return { outcome: { status: 'interrupted' } };
      if (de.code === 'CANCELLED')
        return { outcome: { status: 'cancelled', error: { code: 'CANCELLED', message: 'the turn was cancelled' } } };
      if (mode === 'follow') {
        const err =
          de.code === 'UNKNOWN_EVENT'
            ? new DaemonError('UNAVAILABLE', 'following a trace needs the trace plugin, which is not loaded')
            : de;
        return {
          outcome: {
            status: 'failed',
            error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) },
          },
        };
      }
      if (de.code !== 'UNKNOWN_EVENT')
        this.deps.log.warn({ err: de, agent_id: t.agent_id, turn_id: t.turn_id }, 'goal turn not recorded');
      return { trace: null };
    }
  }

  /**
   * One model call. Its request_id is derived from (turn, step), so after a crash the same call is
   * asked again and the completion plugin answers with the recorded outcome, or joins the call it is
   * still making (it retries an interrupted one by itself), instead of paying for it a second time.
   */
  private async complete(t: TurnRow, agent: AgentRow, step: number, resumed: boolean): Promise<CompletionResult> {
    const d = this.deps;
    const messages = buildMessages(d.store.history(t.agent_id, d.config.history_window), d.config.history_max_chars);
    const tools = [
      ...toolDefinitions(agent.tools.filter(isBuiltinTool)),
      ...(await mcpToolDefinitions(
        agent.tools,
        (event, data) => this.req(t, event, data, 30_000),
        (server, err) => d.log.warn({ err, agent_id: t.agent_id, server }, 'mcp tools left out of a model call'),
      )),
    ];
    const params: Record<string, unknown> = {
      messages,
      agent_id: t.agent_id,
      max_tokens: agent.limits.max_tokens,
      ...(agent.model ? { model: agent.model } : {}),
      ...(agent.system ? { system: agent.system } : {}),
      ...(tools.length ? { tools } : {}),
      ...(agent.stream ? { stream: true } : {}),
    };
    for (let attempt = 0; ; attempt++) {
      const requestId = `${t.turn_id}.s${step}${attempt ? `.r${attempt}` : ''}`;
      d.setInflight(t.agent_id, requestId);
      try {
        return await this.req<CompletionResult>(
          t,
          'completion:request',
          { ...params, request_id: requestId },
          d.config.step_timeout_ms,
        );
      } catch (e) {
        if (!(e instanceof DaemonError) || attempt >= 2) throw e;
        if (e.code === 'CONFLICT') {
          // The step's call was made with other input (the history changed under a resumed turn): its
          // outcome is still this step's answer, paid for once. Only a call that failed is asked anew.
          const waited = await this.waitCompletion(t, requestId);
          if (waited) return waited;
          continue;
        }
        if (resumed && e.details?.reason === 'daemon_restart') continue;
        throw e;
      }
    }
  }

  /** The recorded result of a call once it has one; null when it failed or was cancelled. */
  private async waitCompletion(t: TurnRow, requestId: string): Promise<CompletionResult | null> {
    const until = Date.now() + this.deps.config.step_timeout_ms;
    while (Date.now() < until) {
      const st = await this.req<{ status: string; result?: CompletionResult; error?: TurnError }>(
        t,
        'completion:status',
        { request_id: requestId },
        10_000,
      );
      if (st.status === 'queued' || st.status === 'running') {
        if (this.deps.interrupted(t.agent_id))
          throw new DaemonError('CANCELLED', 'interrupted while waiting for a model call');
        await sleep(100, { unref: true });
        continue;
      }
      return st.status === 'completed' && st.result ? st.result : null;
    }
    throw new DaemonError('TIMEOUT', `model call ${requestId} did not finish within agent.step_timeout_ms`);
  }

  /**
   * Run the tool calls of one assistant message in order. Each finished call is journaled before the
   * next starts; the last one is handed back (`unjournaled`) to be written with the tool_result
   * message in one transaction.
   */
  private async runTools(
    t: TurnRow,
    agent: AgentRow,
    uses: ToolUse[],
    step: number,
    toolCalls: number,
  ): Promise<{
    blocks: Array<Record<string, unknown>>;
    toolCalls: number;
    fatal?: DaemonError;
    limitHit: boolean;
    unjournaled: ToolCallRow[];
  }> {
    const d = this.deps;
    const journaled = new Map(d.store.toolCalls(t.turn_id).map((c) => [c.tool_use_id, c]));
    const blocks: Array<Record<string, unknown>> = [];
    let limitHit = false;
    let fatal: DaemonError | undefined;
    const unjournaled: ToolCallRow[] = [];
    for (const u of uses) {
      if (unjournaled.length) d.lazy(() => d.store.recordToolCall(t.turn_id, unjournaled.pop()!));
      const prior = journaled.get(u.id);
      if (prior) {
        blocks.push({
          type: 'tool_result',
          tool_use_id: u.id,
          content: prior.result,
          ...(prior.is_error ? { is_error: true } : {}),
        });
        continue;
      }
      if (d.interrupted(t.agent_id) === 'cancelled') {
        blocks.push({
          type: 'tool_result',
          tool_use_id: u.id,
          content: JSON.stringify({ error: { code: 'CANCELLED', message: 'not run: the turn was cancelled' } }),
          is_error: true,
        });
        continue;
      }
      if (fatal || limitHit || toolCalls >= agent.limits.max_tool_calls) {
        limitHit ||= !fatal;
        const msg = fatal
          ? `not run: ${fatal.code}`
          : `not run: the tool call limit of this message (${agent.limits.max_tool_calls}) is reached; answer without tools`;
        blocks.push({
          type: 'tool_result',
          tool_use_id: u.id,
          content: JSON.stringify({ error: { code: fatal ? fatal.code : 'LIMIT', message: msg } }),
          is_error: true,
        });
        continue;
      }
      toolCalls++;
      this.emit(t, 'agent:tool_call', {
        agent_id: t.agent_id,
        turn_id: t.turn_id,
        tool_use_id: u.id,
        name: u.name,
        input: u.input,
      });
      const t0 = Date.now();
      const made = new ToolEvents();
      const out = await runTool(u.name, u.input, {
        agentId: t.agent_id,
        allowed: agent.tools,
        turnId: t.turn_id,
        toolUseId: u.id,
        maxResultChars: d.config.max_tool_result_chars,
        request: (event, data, timeoutMs) =>
          made.track(event, data, this.req(t, event, data, timeoutMs ?? d.config.tool_timeout_ms)),
        parentOf: (id) => d.parentOf(id),
      });
      const durationMs = Date.now() - t0;
      // Shutdown is not the tool's answer: leave the call unjournaled so the resumed turn runs it.
      if (out.fatal?.code === 'SHUTTING_DOWN' || d.interrupted(t.agent_id) === 'stopping')
        throw out.fatal ?? new DaemonError('SHUTTING_DOWN', 'stopping');
      if (out.fatal) fatal = out.fatal;
      // Journaled before the next call starts (or with the results message), so a crash never runs it again.
      unjournaled.push({
        tool_use_id: u.id,
        step,
        name: u.name,
        input: u.input,
        is_error: out.is_error,
        error_code: out.error_code,
        result: out.content,
        duration_ms: durationMs,
      });
      this.emit(t, 'agent:tool_result', {
        agent_id: t.agent_id,
        turn_id: t.turn_id,
        tool_use_id: u.id,
        name: u.name,
        is_error: out.is_error,
        error_code: out.error_code,
        duration_ms: durationMs,
        result: out.content,
        ...made.view(),
      });
      blocks.push({
        type: 'tool_result',
        tool_use_id: u.id,
        content: out.content,
        ...(out.is_error ? { is_error: true } : {}),
      });
    }
    return { blocks, toolCalls, limitHit, unjournaled, ...(fatal ? { fatal } : {}) };
  }
}
