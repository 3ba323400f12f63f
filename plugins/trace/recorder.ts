/**
 * Recording a run for its trace, from the events the workflow and agent plugins emit (never by
 * importing them): `workflow:step_started` names each attempt's key, the agent whose turn has that key
 * works for that step (and so do the children it spawns), and each `agent:tool_result` of those
 * agents carries the events the tool call made, with data and results. `agent:reply` says how many
 * tool calls a turn made, so a recording that lost one (a crash between the call and its event) is
 * known to be incomplete and is never replayed. An agent turn given a goal is recorded the same way,
 * under its turn id: its agent's tool calls in that turn, and those of the children it spawns.
 * Listeners are synchronous, so they see the events in the order they were emitted; writes are lazy
 * (they survive kill -9, not a power cut).
 */
import type Database from 'better-sqlite3';
import { runLazy, type EmittedEvent } from '../../daemon/plugin-api.js';
import type { TraceStore } from './store.js';

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export class Recorder {
  /** Runs being recorded (unsettled), for a cheap first filter on every event. */
  readonly open = new Set<string>();
  /**
   * Agents working for an agent turn given a goal (the run id is the turn id): the turn's own agent
   * (only that turn of it counts) and the children it spawned (any of their turns).
   */
  private readonly turnAgents = new Map<string, { runId: string; own: boolean }>();

  constructor(
    private readonly db: Database.Database,
    private readonly store: TraceStore,
  ) {}

  private runOf(ev: EmittedEvent): string | null {
    const id = ev.context.workflow_id;
    return id !== undefined && this.open.has(id) ? id : null;
  }

  /** The goal turn an agent's turn works for, if any. */
  private turnRunOf(agentId: string | null, turnId: string | null): string | null {
    const m = agentId ? this.turnAgents.get(agentId) : undefined;
    if (!m || !this.open.has(m.runId) || (m.own && m.runId !== turnId)) return null;
    return m.runId;
  }

  /** An agent turn given a goal begins to be recorded (the mapping rows are already written). */
  openTurn(runId: string, agentId: string): void {
    this.open.add(runId);
    this.turnAgents.set(agentId, { runId, own: true });
  }

  /** After a restart: the agents of the goal turns still being recorded. */
  reopenTurn(runId: string, ownAgentId: string | null): void {
    this.open.add(runId);
    for (const a of this.store.agentsOf(runId))
      this.turnAgents.set(a.agent_id, { runId, own: a.agent_id === ownAgentId });
  }

  /** A run is settled (or its own turn has ended): its agents' later work is not part of it. */
  close(runId: string): void {
    for (const [id, m] of this.turnAgents) if (m.runId === runId) this.turnAgents.delete(id);
  }

  /** Whether this is the turn of an agent turn given a goal that is being recorded. */
  isGoalTurn(turnId: string | null): boolean {
    if (!turnId || !this.open.has(turnId)) return false;
    const r = this.store.run(turnId);
    return r?.kind === 'turn';
  }

  /** `workflow:step_started {run_id, step, item, attempt, key}` */
  stepStarted(ev: EmittedEvent): void {
    const runId = str(ev.data.run_id);
    const key = str(ev.data.key);
    const step = str(ev.data.step);
    if (!runId || !key || !step || !this.open.has(runId)) return;
    const idx = typeof ev.data.item === 'number' ? ev.data.item : 0;
    const attempt = typeof ev.data.attempt === 'number' ? ev.data.attempt : 1;
    runLazy(this.db, () => this.store.putKey(runId, key, step, idx, attempt, false));
  }

  /** `agent:turn_started {agent_id, turn_id}`: an agent step's turn id is its attempt's key. */
  turnStarted(ev: EmittedEvent): void {
    const runId = this.runOf(ev);
    const agentId = str(ev.data.agent_id);
    const turnId = str(ev.data.turn_id);
    if (!runId || !agentId || !turnId) return;
    if (this.store.agent(agentId)) return;
    if (!this.store.keyOf(runId, turnId)) return;
    runLazy(this.db, () => this.store.putAgent(agentId, runId, turnId));
  }

  /** `agent:spawned {agent_id, parent_id}`: a child works for its parent's step. */
  spawned(ev: EmittedEvent): void {
    const child = str(ev.data.agent_id);
    const parent = str(ev.data.parent_id);
    if (!child || !parent) return;
    const goalTurn = this.turnAgents.get(parent);
    if (!this.runOf(ev) && !(goalTurn && this.open.has(goalTurn.runId))) return;
    const p = this.store.agent(parent);
    if (!p) return;
    runLazy(this.db, () => this.store.putAgent(child, p.run_id, p.key));
    if (goalTurn) this.turnAgents.set(child, { runId: goalTurn.runId, own: false });
  }

  /** `agent:tool_result`: one tool call, with the events it made. */
  toolResult(ev: EmittedEvent): void {
    const agentId = str(ev.data.agent_id);
    if (!this.runOf(ev) && !this.turnRunOf(agentId, str(ev.data.turn_id))) return;
    const a = agentId ? this.store.agent(agentId) : undefined;
    if (!a) return;
    const events = Array.isArray(ev.data.events) ? ev.data.events : null;
    runLazy(this.db, () =>
      this.store.putCall({
        run_id: a.run_id,
        tool_use_id: str(ev.data.tool_use_id) ?? String(ev.seq),
        key: a.key,
        agent_id: a.agent_id,
        turn_id: str(ev.data.turn_id) ?? '',
        tool: str(ev.data.name) ?? '',
        events: events
          ? JSON.stringify(events.map((e) => ({ ...(e as Record<string, unknown>), tool: ev.data.name })))
          : null,
        result: str(ev.data.result),
        is_error: ev.data.is_error === true ? 1 : 0,
      }),
    );
  }

  /** `agent:reply {turn_id, tool_calls, cost_usd}`: how many calls the turn made, to check the recording, and its cost. */
  reply(ev: EmittedEvent): void {
    const agentId = str(ev.data.agent_id);
    const turnId = str(ev.data.turn_id);
    if (!this.runOf(ev) && !this.turnRunOf(agentId, turnId)) return;
    const a = agentId ? this.store.agent(agentId) : undefined;
    if (!a || !turnId) return;
    const n = typeof ev.data.tool_calls === 'number' ? ev.data.tool_calls : 0;
    const cost = typeof ev.data.cost_usd === 'number' ? ev.data.cost_usd : 0;
    runLazy(this.db, () => this.store.putTurn(turnId, a.run_id, a.key, n, cost));
  }
}
