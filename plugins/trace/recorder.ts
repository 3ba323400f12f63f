/**
 * Recording a run for its trace, from the events the workflow and agent plugins emit (never by
 * importing them): `workflow:step_started` names each attempt's key, the agent whose turn has that key
 * works for that step (and so do the children it spawns), and each `agent:tool_result` of those
 * agents carries the events the tool call made, with data and results. `agent:reply` says how many
 * tool calls a turn made, so a recording that lost one (a crash between the call and its event) is
 * known to be incomplete and is never replayed. Listeners are synchronous, so they see the events in
 * the order they were emitted; writes are lazy (they survive kill -9, not a power cut).
 */
import type Database from 'better-sqlite3';
import { runLazy, type EmittedEvent } from '../../daemon/plugin-api.js';
import type { TraceStore } from './store.js';

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export class Recorder {
  /** Runs being recorded (unsettled), for a cheap first filter on every event. */
  readonly open = new Set<string>();

  constructor(private readonly db: Database.Database, private readonly store: TraceStore) {}

  private runOf(ev: EmittedEvent): string | null {
    const id = ev.context.workflow_id;
    return id !== undefined && this.open.has(id) ? id : null;
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
    if (!this.runOf(ev)) return;
    const child = str(ev.data.agent_id);
    const parent = str(ev.data.parent_id);
    if (!child || !parent) return;
    const p = this.store.agent(parent);
    if (p) runLazy(this.db, () => this.store.putAgent(child, p.run_id, p.key));
  }

  /** `agent:tool_result`: one tool call, with the events it made. */
  toolResult(ev: EmittedEvent): void {
    if (!this.runOf(ev)) return;
    const agentId = str(ev.data.agent_id);
    const a = agentId ? this.store.agent(agentId) : undefined;
    if (!a) return;
    const events = Array.isArray(ev.data.events) ? ev.data.events : null;
    runLazy(this.db, () => this.store.putCall({
      run_id: a.run_id, tool_use_id: str(ev.data.tool_use_id) ?? String(ev.seq), key: a.key, agent_id: a.agent_id, turn_id: str(ev.data.turn_id) ?? '', tool: str(ev.data.name) ?? '',
      events: events ? JSON.stringify(events.map((e) => ({ ...(e as Record<string, unknown>), tool: ev.data.name }))) : null,
      result: str(ev.data.result), is_error: ev.data.is_error === true ? 1 : 0,
    }));
  }

  /** `agent:reply {turn_id, tool_calls}`: how many calls the turn made, to check the recording. */
  reply(ev: EmittedEvent): void {
    if (!this.runOf(ev)) return;
    const agentId = str(ev.data.agent_id);
    const turnId = str(ev.data.turn_id);
    const a = agentId ? this.store.agent(agentId) : undefined;
    if (!a || !turnId) return;
    const n = typeof ev.data.tool_calls === 'number' ? ev.data.tool_calls : 0;
    runLazy(this.db, () => this.store.putTurn(turnId, a.run_id, a.key, n));
  }
}
