/**
 * Carrying out a task through the router: an event step sends its event; an agent step spawns a
 * fresh agent for the attempt (or uses the one it names) and gives it one turn. Every id is derived
 * from the attempt's key, so a task performed again after a crash finds the agent it spawned and the
 * turn it started (`agent:send {turn_id}` answers with that turn rather than taking a new one).
 */
import { DaemonError } from '../../client/errors.js';
import type { EventContext } from '../../client/protocol.js';
import type { TaskSpec } from './task.js';

export type Request = <T = Record<string, unknown>>(
  event: string,
  data: Record<string, unknown>,
  opts: { context: EventContext; timeoutMs?: number; signal?: AbortSignal },
) => Promise<T>;

/** The agent an agent step's attempt spawns. */
export const agentIdFor = (key: string): string => `wf.${key}`;

export interface PerformerDeps {
  request: Request;
  isStopping(): boolean;
}

export async function perform(d: PerformerDeps, t: TaskSpec, signal: AbortSignal): Promise<unknown> {
  const opts = { context: t.context, timeoutMs: t.timeoutMs, signal };
  if (t.step.event) return d.request(t.step.event, t.data ?? {}, opts);
  if (!t.agent) throw new DaemonError('HANDLER_ERROR', `step ${t.step.id} has nothing to perform`);
  const a = t.agent;
  let agentId = a.agent_id;
  const spawned = agentId === undefined;
  if (agentId === undefined) {
    agentId = agentIdFor(t.key);
    try {
      await d.request(
        'agent:spawn',
        {
          agent_id: agentId,
          ...(a.profile !== undefined ? { profile: a.profile } : {}),
          ...(a.model !== undefined ? { model: a.model } : {}),
          ...(a.system !== undefined ? { system: a.system } : {}),
          ...(a.tools !== undefined ? { tools: a.tools } : {}),
          ...(a.budget_usd !== undefined ? { budget_usd: a.budget_usd } : {}),
          metadata: { workflow_run: t.run_id, workflow: t.workflow, step: t.step.id, item: t.idx, attempt: t.attempt },
        },
        { ...opts, timeoutMs: 30_000 },
      );
    } catch (e) {
      // Spawned by this same attempt before a crash: carry on with it (the send below says if it is terminated).
      if (!(e instanceof DaemonError && e.code === 'CONFLICT')) throw e;
      await d
        .request('agent:info', { agent_id: agentId, history_limit: 0, turns_limit: 0 }, { ...opts, timeoutMs: 30_000 })
        .catch(() => {
          throw e;
        });
    }
  }
  try {
    const r = await d.request<{ reply: string; turn_id: string; cost_usd: number; stop_reason: string }>(
      'agent:send',
      {
        agent_id: agentId,
        message: a.message,
        turn_id: t.key,
        wait: true,
      },
      opts,
    );
    if (spawned) retire(d, agentId, t.context, 'workflow step finished');
    return { reply: r.reply, turn_id: r.turn_id, cost_usd: r.cost_usd, agent_id: agentId, stop_reason: r.stop_reason };
  } catch (e) {
    // A shutdown leaves the turn journaled to resume; anything else ends this attempt's agent.
    if (spawned && !d.isStopping() && !(e instanceof DaemonError && e.code === 'SHUTTING_DOWN'))
      retire(d, agentId, t.context, 'workflow step failed');
    throw e;
  }
}

function retire(d: PerformerDeps, agentId: string, context: EventContext, reason: string): void {
  void d
    .request('agent:terminate', { agent_id: agentId, reason }, { context, timeoutMs: 10_000 })
    .catch(() => undefined);
}

/**
 * After a cancel or a timeout: stop the work the task started elsewhere. The spawned agent is
 * terminated (its turn stops, its model call is cancelled); an existing agent's turn is cancelled; a
 * completion is cancelled; a sub-run too.
 */
export function abandon(d: PerformerDeps, t: TaskSpec): void {
  const ignore = (): undefined => undefined;
  const opts = { context: t.context, timeoutMs: 10_000 };
  if (t.agent) {
    // A spawned agent is the attempt's own: terminated. An existing agent lives on: only the turn this
    // attempt gave it (turn_id = the key) is cancelled.
    if (t.agent.agent_id === undefined)
      void d
        .request('agent:terminate', { agent_id: agentIdFor(t.key), reason: 'workflow step stopped' }, opts)
        .catch(ignore);
    else void d.request('agent:cancel', { agent_id: t.agent.agent_id, turn_id: t.key }, opts).catch(ignore);
    return;
  }
  const ev = t.step.event;
  if ((ev === 'completion:request' || ev === 'completion:async') && typeof t.data?.request_id === 'string') {
    void d.request('completion:cancel', { request_id: t.data.request_id }, opts).catch(ignore);
  } else if (ev === 'workflow:start' && typeof t.data?.run_id === 'string') {
    void d.request('workflow:cancel', { run_id: t.data.run_id }, opts).catch(ignore);
  }
}

/** Terminate every agent a run's agent steps spawned (those already gone answer with an error, ignored). */
export function retireAll(d: PerformerDeps, keys: string[], context: EventContext): void {
  for (const k of keys) retire(d, agentIdFor(k), context, 'workflow run ended');
}
