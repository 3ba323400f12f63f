/**
 * The agent plugin's tables in agentd.db: agents, their histories, turns (the journal of work
 * accepted), inboxes, tool calls (so a resumed turn never runs a finished call twice) and
 * conversations. Plain synchronous methods; callers batch them through GroupCommit.
 */
import type Database from 'better-sqlite3';
import type { EventContext } from '../../daemon/plugin-api.js';
import type { Limits } from './config.js';
import type { AgentTool } from './mcp-tools.js';
import type { TokenUsage as Usage } from '../../client/usage.js';

export const MIGRATIONS = [
  `CREATE TABLE agent_agents (
     agent_id TEXT PRIMARY KEY, profile TEXT, model TEXT NOT NULL, system TEXT NOT NULL, tools TEXT NOT NULL,
     limits TEXT NOT NULL, budget_usd REAL, metadata TEXT, parent_id TEXT, depth INTEGER NOT NULL,
     status TEXT NOT NULL, created_at INTEGER NOT NULL, terminated_at INTEGER, terminate_reason TEXT,
     turns INTEGER NOT NULL DEFAULT 0, tool_calls INTEGER NOT NULL DEFAULT 0,
     input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
     cache_read_input_tokens INTEGER NOT NULL DEFAULT 0, cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
     cost_usd REAL NOT NULL DEFAULT 0)`,
  `CREATE INDEX agent_agents_parent ON agent_agents(parent_id)`,
  `CREATE TABLE agent_messages (
     agent_id TEXT NOT NULL, idx INTEGER NOT NULL, turn_id TEXT, role TEXT NOT NULL, content TEXT NOT NULL,
     created_at INTEGER NOT NULL, PRIMARY KEY (agent_id, idx))`,
  `CREATE TABLE agent_turns (
     turn_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, source TEXT NOT NULL, from_agent TEXT, message_id TEXT,
     input TEXT NOT NULL, context TEXT, chain TEXT NOT NULL DEFAULT '[]', conversation_id TEXT,
     status TEXT NOT NULL, opened INTEGER NOT NULL DEFAULT 0, steps INTEGER NOT NULL DEFAULT 0,
     tool_calls INTEGER NOT NULL DEFAULT 0, resumes INTEGER NOT NULL DEFAULT 0,
     reply TEXT, stop_reason TEXT, error TEXT, usage TEXT, cost_usd REAL NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER)`,
  `CREATE INDEX agent_turns_agent ON agent_turns(agent_id, status)`,
  `CREATE INDEX agent_turns_status ON agent_turns(status)`,
  `CREATE TABLE agent_inbox (
     message_id TEXT PRIMARY KEY, to_agent TEXT NOT NULL, from_agent TEXT NOT NULL, content TEXT NOT NULL,
     turn_id TEXT NOT NULL, created_at INTEGER NOT NULL)`,
  `CREATE INDEX agent_inbox_to ON agent_inbox(to_agent)`,
  `CREATE TABLE agent_tool_calls (
     turn_id TEXT NOT NULL, tool_use_id TEXT NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL, input TEXT NOT NULL,
     is_error INTEGER NOT NULL, error_code TEXT, result TEXT NOT NULL, duration_ms INTEGER NOT NULL,
     PRIMARY KEY (turn_id, tool_use_id))`,
  `CREATE TABLE agent_conversations (
     conversation_id TEXT PRIMARY KEY, agents TEXT NOT NULL, spawned TEXT NOT NULL, opening TEXT NOT NULL,
     rounds INTEGER NOT NULL, keep_agents INTEGER NOT NULL, status TEXT NOT NULL, transcript TEXT NOT NULL,
     pending_turn TEXT, context TEXT, error TEXT, created_at INTEGER NOT NULL, finished_at INTEGER)`,
  `ALTER TABLE agent_agents ADD COLUMN stream INTEGER NOT NULL DEFAULT 0`,
  // A turn given a goal (agent:send {goal}): the trace plugin records it, or answers it from a trace.
  `ALTER TABLE agent_turns ADD COLUMN goal TEXT`,
  `ALTER TABLE agent_turns ADD COLUMN goal_mode TEXT`,
  `ALTER TABLE agent_turns ADD COLUMN trace TEXT`,
];

export interface AgentRow {
  agent_id: string;
  profile: string | null;
  model: string;
  system: string;
  tools: AgentTool[];
  limits: Limits;
  budget_usd: number | null;
  metadata: Record<string, unknown> | null;
  parent_id: string | null;
  depth: number;
  /** Its model calls stream text as completion:token events. */
  stream: boolean;
  status: 'active' | 'terminated';
  created_at: number;
  terminated_at: number | null;
  terminate_reason: string | null;
  turns: number;
  tool_calls: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  cost_usd: number;
}

export type TurnStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export type TurnSource = 'send' | 'message' | 'converse';

export interface TurnRow {
  turn_id: string;
  agent_id: string;
  source: TurnSource;
  from_agent: string | null;
  message_id: string | null;
  input: string;
  context: EventContext | null;
  chain: string[];
  conversation_id: string | null;
  /** The goal the turn works on (agent:send {goal}), and whether a trace may be followed for it. */
  goal: string | null;
  goal_mode: 'auto' | 'learn' | 'follow' | null;
  /** What the trace plugin answered for a goal turn (trace:begin_turn), once it has. */
  trace: Record<string, unknown> | null;
  status: TurnStatus;
  opened: boolean;
  steps: number;
  tool_calls: number;
  resumes: number;
  reply: string | null;
  stop_reason: string | null;
  error: TurnError | null;
  usage: Usage | null;
  cost_usd: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface TurnError {
  code: string;
  message: string;
  reason?: string;
  details?: Record<string, unknown>;
}

export type { TokenUsage as Usage } from '../../client/usage.js';
export { ZERO_USAGE } from '../../client/usage.js';

/** A history message: content is a string or content blocks, as the Messages API takes them. */
export interface StoredMessage {
  role: 'user' | 'assistant';
  content: string | Array<Record<string, unknown>>;
}

export interface ToolCallRow {
  tool_use_id: string;
  step: number;
  name: string;
  input: unknown;
  is_error: boolean;
  error_code: string | null;
  result: string;
  duration_ms: number;
}

export interface ConversationRow {
  conversation_id: string;
  agents: string[];
  spawned: string[];
  opening: string;
  rounds: number;
  keep_agents: boolean;
  status: 'running' | 'completed' | 'failed';
  transcript: Utterance[];
  pending_turn: string | null;
  context: EventContext | null;
  error: TurnError | null;
  created_at: number;
  finished_at: number | null;
}

export interface Utterance {
  round: number;
  agent_id: string;
  text: string;
  turn_id: string;
}

type Raw = Record<string, unknown>;
const json = <T>(v: unknown): T => (v === null || v === undefined ? (null as T) : (JSON.parse(String(v)) as T));

function agentOf(r: Raw): AgentRow {
  return {
    ...(r as unknown as AgentRow),
    tools: json(r.tools),
    limits: json(r.limits),
    metadata: json(r.metadata),
    stream: r.stream === 1,
  };
}

function turnOf(r: Raw): TurnRow {
  return {
    ...(r as unknown as TurnRow),
    context: json(r.context),
    chain: json(r.chain),
    opened: r.opened === 1,
    error: json(r.error),
    usage: json(r.usage),
    trace: json(r.trace),
  };
}

function convOf(r: Raw): ConversationRow {
  return {
    ...(r as unknown as ConversationRow),
    agents: json(r.agents),
    spawned: json(r.spawned),
    keep_agents: r.keep_agents === 1,
    transcript: json(r.transcript),
    context: json(r.context),
    error: json(r.error),
  };
}

export class AgentStore {
  private readonly stmts: Record<string, Database.Statement>;

  constructor(private readonly db: Database.Database) {
    const p = (sql: string) => db.prepare(sql);
    this.stmts = {
      insertAgent:
        p(`INSERT INTO agent_agents (agent_id, profile, model, system, tools, limits, budget_usd, metadata, parent_id, depth, stream, status, created_at)
                      VALUES (@agent_id, @profile, @model, @system, @tools, @limits, @budget_usd, @metadata, @parent_id, @depth, @stream, 'active', @created_at)`),
      getAgent: p('SELECT * FROM agent_agents WHERE agent_id = ?'),
      liveCount: p("SELECT COUNT(*) AS n FROM agent_agents WHERE status = 'active'"),
      liveChildren: p("SELECT COUNT(*) AS n FROM agent_agents WHERE parent_id = ? AND status = 'active'"),
      children: p('SELECT agent_id, status FROM agent_agents WHERE parent_id = ? ORDER BY created_at, agent_id'),
      terminate: p(
        "UPDATE agent_agents SET status = 'terminated', terminated_at = ?, terminate_reason = ? WHERE agent_id = ? AND status = 'active'",
      ),
      addUsage:
        p(`UPDATE agent_agents SET turns = turns + @turns, tool_calls = tool_calls + @tool_calls, input_tokens = input_tokens + @input_tokens,
                   output_tokens = output_tokens + @output_tokens, cache_read_input_tokens = cache_read_input_tokens + @cache_read_input_tokens,
                   cache_creation_input_tokens = cache_creation_input_tokens + @cache_creation_input_tokens, cost_usd = cost_usd + @cost_usd
                   WHERE agent_id = @agent_id`),
      nextIdx: p('SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM agent_messages WHERE agent_id = ?'),
      insertMessage: p(
        'INSERT INTO agent_messages (agent_id, idx, turn_id, role, content, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      history: p(
        'SELECT role, content FROM (SELECT idx, role, content FROM agent_messages WHERE agent_id = ? ORDER BY idx DESC LIMIT ?) ORDER BY idx',
      ),
      historyCount: p('SELECT COUNT(*) AS n FROM agent_messages WHERE agent_id = ?'),
      lastMessage: p('SELECT role, content, turn_id FROM agent_messages WHERE agent_id = ? ORDER BY idx DESC LIMIT 1'),
      insertTurn:
        p(`INSERT INTO agent_turns (turn_id, agent_id, source, from_agent, message_id, input, context, chain, conversation_id, goal, goal_mode, status, created_at)
                     VALUES (@turn_id, @agent_id, @source, @from_agent, @message_id, @input, @context, @chain, @conversation_id, @goal, @goal_mode, 'queued', @created_at)`),
      setTrace: p('UPDATE agent_turns SET trace = ? WHERE turn_id = ?'),
      getTurn: p('SELECT * FROM agent_turns WHERE turn_id = ?'),
      nextQueued: p(
        "SELECT * FROM agent_turns WHERE agent_id = ? AND status IN ('queued', 'running') ORDER BY (status = 'running') DESC, rowid LIMIT 1",
      ),
      queuedCount: p("SELECT COUNT(*) AS n FROM agent_turns WHERE agent_id = ? AND status = 'queued'"),
      withStatus: p('SELECT * FROM agent_turns WHERE status = ? ORDER BY rowid'),
      agentsWithWork: p("SELECT DISTINCT agent_id FROM agent_turns WHERE status IN ('queued', 'running')"),
      startTurn: p(
        "UPDATE agent_turns SET status = 'running', started_at = COALESCE(started_at, ?), resumes = resumes + ? WHERE turn_id = ?",
      ),
      openTurn: p('UPDATE agent_turns SET opened = 1 WHERE turn_id = ?'),
      stepDone: p('UPDATE agent_turns SET steps = steps + 1, usage = ?, cost_usd = ? WHERE turn_id = ?'),
      toolsDone: p('UPDATE agent_turns SET tool_calls = ? WHERE turn_id = ?'),
      finishTurn: p(
        'UPDATE agent_turns SET status = @status, reply = @reply, stop_reason = @stop_reason, error = @error, finished_at = @finished_at WHERE turn_id = @turn_id',
      ),
      cancelQueued: p(
        "UPDATE agent_turns SET status = 'cancelled', error = ?, finished_at = ? WHERE agent_id = ? AND status = 'queued' RETURNING turn_id",
      ),
      recentTurns: p(
        'SELECT turn_id, source, from_agent, status, steps, tool_calls, stop_reason, error, cost_usd, created_at, finished_at FROM agent_turns WHERE agent_id = ? ORDER BY rowid DESC LIMIT ?',
      ),
      insertInbox: p(
        'INSERT OR IGNORE INTO agent_inbox (message_id, to_agent, from_agent, content, turn_id, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      getInbox: p('SELECT * FROM agent_inbox WHERE message_id = ?'),
      inbox: p(`SELECT i.message_id, i.from_agent AS "from", i.content, i.turn_id, i.created_at, t.status AS turn_status
                FROM agent_inbox i LEFT JOIN agent_turns t ON t.turn_id = i.turn_id WHERE i.to_agent = ? ORDER BY i.rowid DESC LIMIT ?`),
      insertToolCall:
        p(`INSERT OR REPLACE INTO agent_tool_calls (turn_id, tool_use_id, step, name, input, is_error, error_code, result, duration_ms)
                         VALUES (@turn_id, @tool_use_id, @step, @name, @input, @is_error, @error_code, @result, @duration_ms)`),
      toolCalls: p('SELECT * FROM agent_tool_calls WHERE turn_id = ? ORDER BY rowid'),
      insertConv:
        p(`INSERT INTO agent_conversations (conversation_id, agents, spawned, opening, rounds, keep_agents, status, transcript, context, created_at)
                     VALUES (@conversation_id, @agents, @spawned, @opening, @rounds, @keep_agents, 'running', '[]', @context, @created_at)`),
      getConv: p('SELECT * FROM agent_conversations WHERE conversation_id = ?'),
      runningConvs: p("SELECT * FROM agent_conversations WHERE status = 'running' ORDER BY rowid"),
      convPending: p('UPDATE agent_conversations SET pending_turn = ? WHERE conversation_id = ?'),
      convUtter: p('UPDATE agent_conversations SET transcript = ?, pending_turn = NULL WHERE conversation_id = ?'),
      convFinish: p('UPDATE agent_conversations SET status = ?, error = ?, finished_at = ? WHERE conversation_id = ?'),
      deleteToolCalls: p(
        'DELETE FROM agent_tool_calls WHERE turn_id IN (SELECT turn_id FROM agent_turns WHERE agent_id = ?)',
      ),
      deleteTurns: p('DELETE FROM agent_turns WHERE agent_id = ?'),
      deleteMessages: p('DELETE FROM agent_messages WHERE agent_id = ?'),
      deleteInbox: p('DELETE FROM agent_inbox WHERE to_agent = ?'),
      deleteAgent: p("DELETE FROM agent_agents WHERE agent_id = ? AND status = 'terminated'"),
      terminatedBefore: p(
        "SELECT agent_id FROM agent_agents WHERE status = 'terminated' AND terminated_at <= ? ORDER BY terminated_at, agent_id",
      ),
    };
  }

  /** Remove a terminated agent with its history, turns, tool calls and inbox; false when it is not (or no longer) terminated. */
  deleteAgent(agentId: string): { deleted: boolean; messages: number; turns: number } {
    const tx = this.db.transaction(() => {
      const gone = this.stmts.deleteAgent!.run(agentId).changes === 1;
      if (!gone) return { deleted: false, messages: 0, turns: 0 };
      this.stmts.deleteToolCalls!.run(agentId);
      const turns = this.stmts.deleteTurns!.run(agentId).changes;
      const messages = this.stmts.deleteMessages!.run(agentId).changes;
      this.stmts.deleteInbox!.run(agentId);
      return { deleted: true, messages, turns };
    });
    return tx();
  }

  /** Terminated agents terminated at or before `ms` (epoch ms), oldest first. */
  terminatedBefore(ms: number): string[] {
    return (this.stmts.terminatedBefore!.all(ms) as Array<{ agent_id: string }>).map((r) => r.agent_id);
  }

  insertAgent(
    a: Omit<
      AgentRow,
      'status' | 'terminated_at' | 'terminate_reason' | 'turns' | 'tool_calls' | 'cost_usd' | keyof Usage
    >,
  ): void {
    this.stmts.insertAgent!.run({
      ...a,
      tools: JSON.stringify(a.tools),
      limits: JSON.stringify(a.limits),
      metadata: a.metadata ? JSON.stringify(a.metadata) : null,
      stream: a.stream ? 1 : 0,
    });
  }

  agent(id: string): AgentRow | undefined {
    const r = this.stmts.getAgent!.get(id) as Raw | undefined;
    return r ? agentOf(r) : undefined;
  }

  list(f: { status?: 'active' | 'terminated'; parent_id?: string; limit: number }): AgentRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.status) (where.push('status = ?'), args.push(f.status));
    if (f.parent_id) (where.push('parent_id = ?'), args.push(f.parent_id));
    const sql = `SELECT * FROM agent_agents ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, rowid DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, f.limit) as Raw[]).map(agentOf);
  }

  liveCount(): number {
    return (this.stmts.liveCount!.get() as { n: number }).n;
  }

  liveChildren(id: string): number {
    return (this.stmts.liveChildren!.get(id) as { n: number }).n;
  }

  children(id: string): Array<{ agent_id: string; status: string }> {
    return this.stmts.children!.all(id) as Array<{ agent_id: string; status: string }>;
  }

  /** True when it was live and is now terminated. */
  terminate(id: string, reason: string | null, now: number): boolean {
    return this.stmts.terminate!.run(now, reason, id).changes === 1;
  }

  addUsage(agentId: string, d: { turns: number; tool_calls: number; cost_usd: number } & Usage): void {
    this.stmts.addUsage!.run({ agent_id: agentId, ...d });
  }

  appendMessage(agentId: string, turnId: string | null, m: StoredMessage, now: number): void {
    const idx = (this.stmts.nextIdx!.get(agentId) as { n: number }).n;
    this.stmts.insertMessage!.run(agentId, idx, turnId, m.role, JSON.stringify(m.content), now);
  }

  /** The last `limit` history messages, oldest first. */
  history(agentId: string, limit: number): StoredMessage[] {
    return (this.stmts.history!.all(agentId, limit) as Array<{ role: 'user' | 'assistant'; content: string }>).map(
      (r) => ({ role: r.role, content: JSON.parse(r.content) }),
    );
  }

  historyCount(agentId: string): number {
    return (this.stmts.historyCount!.get(agentId) as { n: number }).n;
  }

  lastMessage(agentId: string): (StoredMessage & { turn_id: string | null }) | undefined {
    const r = this.stmts.lastMessage!.get(agentId) as
      { role: 'user' | 'assistant'; content: string; turn_id: string | null } | undefined;
    return r ? { role: r.role, content: JSON.parse(r.content), turn_id: r.turn_id } : undefined;
  }

  insertTurn(
    t: Pick<
      TurnRow,
      | 'turn_id'
      | 'agent_id'
      | 'source'
      | 'from_agent'
      | 'message_id'
      | 'input'
      | 'context'
      | 'chain'
      | 'conversation_id'
      | 'created_at'
    > & { goal?: string | null; goal_mode?: TurnRow['goal_mode'] },
  ): void {
    this.stmts.insertTurn!.run({
      ...t,
      goal: t.goal ?? null,
      goal_mode: t.goal ? (t.goal_mode ?? 'auto') : null,
      context: t.context ? JSON.stringify(t.context) : null,
      chain: JSON.stringify(t.chain),
    });
  }

  setTrace(turnId: string, trace: Record<string, unknown>): void {
    this.stmts.setTrace!.run(JSON.stringify(trace), turnId);
  }

  turn(id: string): TurnRow | undefined {
    const r = this.stmts.getTurn!.get(id) as Raw | undefined;
    return r ? turnOf(r) : undefined;
  }

  /** The agent's running turn (after a restart) or its oldest queued one. */
  nextTurn(agentId: string): TurnRow | undefined {
    const r = this.stmts.nextQueued!.get(agentId) as Raw | undefined;
    return r ? turnOf(r) : undefined;
  }

  queuedCount(agentId: string): number {
    return (this.stmts.queuedCount!.get(agentId) as { n: number }).n;
  }

  turnsWithStatus(status: TurnStatus): TurnRow[] {
    return (this.stmts.withStatus!.all(status) as Raw[]).map(turnOf);
  }

  agentsWithWork(): string[] {
    return (this.stmts.agentsWithWork!.all() as Array<{ agent_id: string }>).map((r) => r.agent_id);
  }

  startTurn(id: string, resumed: boolean, now: number): void {
    this.stmts.startTurn!.run(now, resumed ? 1 : 0, id);
  }

  openTurn(id: string): void {
    this.stmts.openTurn!.run(id);
  }

  stepDone(id: string, usage: Usage, costUsd: number): void {
    this.stmts.stepDone!.run(JSON.stringify(usage), costUsd, id);
  }

  setToolCalls(id: string, n: number): void {
    this.stmts.toolsDone!.run(n, id);
  }

  finishTurn(
    id: string,
    f: { status: TurnStatus; reply: string | null; stop_reason: string | null; error: TurnError | null },
    now: number,
  ): void {
    this.stmts.finishTurn!.run({
      turn_id: id,
      status: f.status,
      reply: f.reply,
      stop_reason: f.stop_reason,
      error: f.error ? JSON.stringify(f.error) : null,
      finished_at: now,
    });
  }

  cancelQueued(agentId: string, error: TurnError, now: number): string[] {
    return (this.stmts.cancelQueued!.all(JSON.stringify(error), now, agentId) as Array<{ turn_id: string }>).map(
      (r) => r.turn_id,
    );
  }

  recentTurns(agentId: string, limit: number): Array<Record<string, unknown>> {
    return (this.stmts.recentTurns!.all(agentId, limit) as Raw[]).map((r) => ({ ...r, error: json(r.error) }));
  }

  /** False when a message with this id was already delivered. */
  insertInbox(messageId: string, to: string, from: string, content: string, turnId: string, now: number): boolean {
    return this.stmts.insertInbox!.run(messageId, to, from, content, turnId, now).changes === 1;
  }

  inboxEntry(
    messageId: string,
  ): { message_id: string; to_agent: string; from_agent: string; turn_id: string } | undefined {
    return this.stmts.getInbox!.get(messageId) as
      { message_id: string; to_agent: string; from_agent: string; turn_id: string } | undefined;
  }

  inbox(agentId: string, limit: number): Array<Record<string, unknown>> {
    return this.stmts.inbox!.all(agentId, limit) as Array<Record<string, unknown>>;
  }

  recordToolCall(turnId: string, c: ToolCallRow): void {
    this.stmts.insertToolCall!.run({
      turn_id: turnId,
      ...c,
      input: JSON.stringify(c.input ?? null),
      is_error: c.is_error ? 1 : 0,
    });
  }

  toolCalls(turnId: string): ToolCallRow[] {
    return (this.stmts.toolCalls!.all(turnId) as Raw[]).map((r) => ({
      tool_use_id: String(r.tool_use_id),
      step: Number(r.step),
      name: String(r.name),
      input: json(r.input),
      is_error: r.is_error === 1,
      error_code: (r.error_code as string | null) ?? null,
      result: String(r.result),
      duration_ms: Number(r.duration_ms),
    }));
  }

  insertConversation(
    c: Pick<
      ConversationRow,
      'conversation_id' | 'agents' | 'spawned' | 'opening' | 'rounds' | 'keep_agents' | 'context' | 'created_at'
    >,
  ): void {
    this.stmts.insertConv!.run({
      ...c,
      agents: JSON.stringify(c.agents),
      spawned: JSON.stringify(c.spawned),
      keep_agents: c.keep_agents ? 1 : 0,
      context: c.context ? JSON.stringify(c.context) : null,
    });
  }

  conversation(id: string): ConversationRow | undefined {
    const r = this.stmts.getConv!.get(id) as Raw | undefined;
    return r ? convOf(r) : undefined;
  }

  runningConversations(): ConversationRow[] {
    return (this.stmts.runningConvs!.all() as Raw[]).map(convOf);
  }

  setConversationPending(id: string, turnId: string): void {
    this.stmts.convPending!.run(turnId, id);
  }

  setConversationTranscript(id: string, t: Utterance[]): void {
    this.stmts.convUtter!.run(JSON.stringify(t), id);
  }

  finishConversation(id: string, status: 'completed' | 'failed', error: TurnError | null, now: number): void {
    this.stmts.convFinish!.run(status, error ? JSON.stringify(error) : null, now, id);
  }
}
