/**
 * The trace store, in the shared agentd.db: the traces (goal, signature, plan, counters) with an FTS5
 * index of their goals' terms for the similar match, each trace's items (what one step, or one item of
 * a foreach step, did: the events its agents' tool calls made, in order, with data and results, and
 * the step's output), and the bookkeeping of the runs being recorded: which workflow task and which
 * agents belong to which run, the tool calls as they happen, and where a followed run diverged.
 */
import type Database from 'better-sqlite3';

export const MIGRATIONS: Array<string | ((db: Database.Database) => void)> = [
  `CREATE TABLE trace_traces (
     trace_id TEXT PRIMARY KEY,
     signature TEXT NOT NULL UNIQUE,
     goal TEXT NOT NULL,
     normalized TEXT NOT NULL,
     terms TEXT NOT NULL,
     slots TEXT NOT NULL,
     names TEXT NOT NULL,
     plan TEXT NOT NULL,
     version INTEGER NOT NULL DEFAULT 1,
     status TEXT NOT NULL DEFAULT 'active',
     usage_count INTEGER NOT NULL DEFAULT 0,
     successes INTEGER NOT NULL DEFAULT 0,
     failures INTEGER NOT NULL DEFAULT 0,
     repairs INTEGER NOT NULL DEFAULT 0,
     learned_run_id TEXT,
     learned_cost_usd REAL NOT NULL DEFAULT 0,
     learned_duration_ms INTEGER,
     saved_usd REAL NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     last_used_at INTEGER
   );
   CREATE INDEX trace_traces_used ON trace_traces (last_used_at);
   CREATE VIRTUAL TABLE trace_fts USING fts5(terms, content='trace_traces', content_rowid='rowid', tokenize='unicode61 remove_diacritics 0');
   CREATE VIRTUAL TABLE trace_vocab USING fts5vocab(trace_fts, 'row');
   CREATE TRIGGER trace_fts_ai AFTER INSERT ON trace_traces BEGIN
     INSERT INTO trace_fts (rowid, terms) VALUES (new.rowid, new.terms);
   END;
   CREATE TRIGGER trace_fts_ad AFTER DELETE ON trace_traces BEGIN
     INSERT INTO trace_fts (trace_fts, rowid, terms) VALUES ('delete', old.rowid, old.terms);
   END;
   CREATE TRIGGER trace_fts_au AFTER UPDATE OF terms ON trace_traces BEGIN
     INSERT INTO trace_fts (trace_fts, rowid, terms) VALUES ('delete', old.rowid, old.terms);
     INSERT INTO trace_fts (rowid, terms) VALUES (new.rowid, new.terms);
   END;
   CREATE TABLE trace_items (
     trace_id TEXT NOT NULL,
     step TEXT NOT NULL,
     idx INTEGER NOT NULL,
     kind TEXT NOT NULL,
     status TEXT NOT NULL,
     output TEXT,
     error TEXT,
     events TEXT NOT NULL,
     complete INTEGER NOT NULL,
     PRIMARY KEY (trace_id, step, idx)
   ) WITHOUT ROWID;
   CREATE TABLE trace_runs (
     run_id TEXT PRIMARY KEY,
     goal TEXT NOT NULL,
     signature TEXT NOT NULL,
     mode TEXT NOT NULL,
     trace_id TEXT,
     trace_version INTEGER,
     match TEXT,
     score REAL,
     status TEXT NOT NULL DEFAULT 'running',
     settled INTEGER NOT NULL DEFAULT 0,
     cost_usd REAL,
     saved_usd REAL,
     learned_cost_usd REAL,
     outcome TEXT,
     created_at INTEGER NOT NULL,
     finished_at INTEGER
   );
   CREATE INDEX trace_runs_open ON trace_runs (settled);
   CREATE TABLE trace_keys (
     run_id TEXT NOT NULL, key TEXT NOT NULL, step TEXT NOT NULL, idx INTEGER NOT NULL, attempt INTEGER NOT NULL,
     fallback INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (run_id, key)
   ) WITHOUT ROWID;
   CREATE TABLE trace_agents (
     agent_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, key TEXT NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE trace_calls (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     run_id TEXT NOT NULL, key TEXT NOT NULL, agent_id TEXT NOT NULL, turn_id TEXT NOT NULL, tool_use_id TEXT NOT NULL,
     tool TEXT NOT NULL, events TEXT, result TEXT, is_error INTEGER NOT NULL,
     UNIQUE (turn_id, tool_use_id)
   );
   CREATE INDEX trace_calls_key ON trace_calls (run_id, key, id);
   CREATE INDEX trace_calls_turn ON trace_calls (run_id, turn_id);
   CREATE TABLE trace_turns (
     turn_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, key TEXT NOT NULL, tool_calls INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE trace_divergences (
     run_id TEXT NOT NULL, step TEXT NOT NULL, idx INTEGER NOT NULL,
     at INTEGER NOT NULL, reason TEXT NOT NULL, prefix TEXT NOT NULL, fallback_key TEXT,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (run_id, step, idx)
   ) WITHOUT ROWID;`,
  // Runs for a goal from workflow:plan, workflow:start and agent:send too: the inputs a trace was
  // learned with (a followed run gets them), what began a run, and for an agent turn given a goal its
  // agent and turn (message and spec) so that it can be settled, even after a restart.
  `ALTER TABLE trace_traces ADD COLUMN inputs TEXT NOT NULL DEFAULT '{}';
   ALTER TABLE trace_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'workflow';
   ALTER TABLE trace_runs ADD COLUMN origin TEXT;
   ALTER TABLE trace_runs ADD COLUMN inputs TEXT NOT NULL DEFAULT '{}';
   ALTER TABLE trace_runs ADD COLUMN agent_id TEXT;
   ALTER TABLE trace_runs ADD COLUMN turn TEXT;
   ALTER TABLE trace_turns ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;`,
];

/** One event a step made, as recorded and replayed. */
export interface RecordedEvent {
  event: string;
  data: Record<string, unknown>;
  result?: unknown;
  error?: { code: string; message: string };
  /** The agent tool that made it (absent for an event step's own event). */
  tool?: string;
}

export interface TraceRow {
  trace_id: string;
  signature: string;
  goal: string;
  normalized: string;
  terms: string;
  slots: string;
  names: string;
  plan: string;
  /** The inputs (JSON) the learned run was given; a followed run is given them too. */
  inputs: string;
  version: number;
  status: 'active' | 'demoted';
  usage_count: number;
  successes: number;
  failures: number;
  repairs: number;
  learned_run_id: string | null;
  learned_cost_usd: number;
  learned_duration_ms: number | null;
  saved_usd: number;
  created_at: number;
  updated_at: number;
  last_used_at: number | null;
}

export interface ItemRow {
  trace_id: string;
  step: string;
  idx: number;
  kind: 'agent' | 'event';
  status: 'succeeded' | 'failed';
  output: string | null;
  error: string | null;
  events: string;
  complete: number;
}

/** What a run for a goal is: a workflow run, or one agent turn (agent:send with a goal). */
export type RunKind = 'workflow' | 'turn';
/** What began it. */
export type RunOrigin = 'run_goal' | 'plan' | 'start' | 'send';

export interface RunRow {
  run_id: string;
  kind: RunKind;
  origin: RunOrigin | null;
  /** The inputs (JSON) the run was given. */
  inputs: string;
  /** A turn: its agent, and {message, spec} (the turn's message and the agent's model, system, tools, profile). */
  agent_id: string | null;
  turn: string | null;
  goal: string;
  signature: string;
  mode: 'learn' | 'follow';
  trace_id: string | null;
  trace_version: number | null;
  match: string | null;
  score: number | null;
  status: string;
  settled: number;
  cost_usd: number | null;
  saved_usd: number | null;
  learned_cost_usd: number | null;
  outcome: string | null;
  created_at: number;
  finished_at: number | null;
}

export interface KeyRow {
  run_id: string;
  key: string;
  step: string;
  idx: number;
  attempt: number;
  fallback: number;
}

export interface CallRow {
  id?: number;
  run_id: string;
  tool_use_id: string;
  key: string;
  agent_id: string;
  turn_id: string;
  tool: string;
  events: string | null;
  result: string | null;
  is_error: number;
}

export interface DivergenceRow {
  run_id: string;
  step: string;
  idx: number;
  at: number;
  reason: string;
  prefix: string;
  fallback_key: string | null;
  created_at: number;
}

type Stmt = Database.Statement<unknown[]>;

/** Prepared statements over the trace tables. Synchronous; the caller chooses the transaction. */
export class TraceStore {
  private readonly stmts: Record<string, Stmt>;

  constructor(readonly db: Database.Database) {
    const p = (sql: string): Stmt => db.prepare(sql);
    this.stmts = {
      bySig: p('SELECT * FROM trace_traces WHERE signature = ?'),
      byId: p('SELECT * FROM trace_traces WHERE trace_id = ?'),
      byRowids: p('SELECT rowid AS rid, * FROM trace_traces WHERE rowid IN (SELECT value FROM json_each(?))'),
      candidates: p('SELECT rowid AS rid FROM trace_fts WHERE trace_fts MATCH ? ORDER BY bm25(trace_fts) LIMIT ?'),
      df: p('SELECT term, doc FROM trace_vocab WHERE term IN (SELECT value FROM json_each(?))'),
      count: p('SELECT count(*) AS n FROM trace_traces'),
      insert:
        p(`INSERT INTO trace_traces (trace_id, signature, goal, normalized, terms, slots, names, plan, inputs, learned_run_id, learned_cost_usd, learned_duration_ms, successes, created_at, updated_at, last_used_at)
                 VALUES (@trace_id, @signature, @goal, @normalized, @terms, @slots, @names, @plan, @inputs, @learned_run_id, @learned_cost_usd, @learned_duration_ms, 1, @now, @now, @now)`),
      relearn:
        p(`UPDATE trace_traces SET plan = @plan, inputs = @inputs, version = version + 1, status = 'active', learned_run_id = @learned_run_id, learned_cost_usd = @learned_cost_usd,
                  learned_duration_ms = @learned_duration_ms, successes = successes + 1, updated_at = @now, last_used_at = @now WHERE trace_id = @trace_id`),
      used: p(`UPDATE trace_traces SET usage_count = usage_count + 1, successes = successes + @ok, failures = failures + @failed, repairs = repairs + @repaired,
               version = version + @repaired, saved_usd = saved_usd + @saved, last_used_at = @now, updated_at = @now WHERE trace_id = @trace_id`),
      setStatus: p('UPDATE trace_traces SET status = ?, updated_at = ? WHERE trace_id = ?'),
      del: p('DELETE FROM trace_traces WHERE trace_id = ?'),
      delItems: p('DELETE FROM trace_items WHERE trace_id = ?'),
      putItem:
        p(`INSERT OR REPLACE INTO trace_items (trace_id, step, idx, kind, status, output, error, events, complete)
                  VALUES (@trace_id, @step, @idx, @kind, @status, @output, @error, @events, @complete)`),
      item: p('SELECT * FROM trace_items WHERE trace_id = ? AND step = ? AND idx = ?'),
      items: p('SELECT * FROM trace_items WHERE trace_id = ? ORDER BY step, idx'),
      itemCounts: p(
        'SELECT count(*) AS items, coalesce(sum(json_array_length(events)), 0) AS events FROM trace_items WHERE trace_id = ?',
      ),
      insertRun:
        p(`INSERT OR IGNORE INTO trace_runs (run_id, kind, origin, inputs, agent_id, turn, goal, signature, mode, trace_id, trace_version, match, score, learned_cost_usd, created_at)
                    VALUES (@run_id, @kind, @origin, @inputs, @agent_id, @turn, @goal, @signature, @mode, @trace_id, @trace_version, @match, @score, @learned_cost_usd, @created_at)`),
      run: p('SELECT * FROM trace_runs WHERE run_id = ?'),
      openRuns: p('SELECT * FROM trace_runs WHERE settled = 0'),
      runsRecent: p('SELECT * FROM trace_runs ORDER BY created_at DESC LIMIT ?'),
      runsOf: p('SELECT * FROM trace_runs WHERE run_id IN (SELECT value FROM json_each(?))'),
      settle:
        p(`UPDATE trace_runs SET settled = 1, status = @status, cost_usd = @cost_usd, saved_usd = @saved_usd, outcome = @outcome, trace_id = @trace_id,
                 finished_at = @now WHERE run_id = @run_id`),
      putKey: p(
        'INSERT OR IGNORE INTO trace_keys (run_id, key, step, idx, attempt, fallback) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      keys: p('SELECT * FROM trace_keys WHERE run_id = ?'),
      keyOf: p('SELECT * FROM trace_keys WHERE run_id = ? AND key = ?'),
      putAgent: p('INSERT OR IGNORE INTO trace_agents (agent_id, run_id, key) VALUES (?, ?, ?)'),
      replaceAgent: p('INSERT OR REPLACE INTO trace_agents (agent_id, run_id, key) VALUES (?, ?, ?)'),
      agentsOf: p('SELECT * FROM trace_agents WHERE run_id = ?'),
      agent: p('SELECT * FROM trace_agents WHERE agent_id = ?'),
      putCall:
        p(`INSERT OR IGNORE INTO trace_calls (run_id, key, agent_id, turn_id, tool_use_id, tool, events, result, is_error)
                  VALUES (@run_id, @key, @agent_id, @turn_id, @tool_use_id, @tool, @events, @result, @is_error)`),
      calls: p('SELECT * FROM trace_calls WHERE run_id = ? AND key = ? ORDER BY id'),
      putTurn: p(
        'INSERT OR REPLACE INTO trace_turns (turn_id, run_id, key, tool_calls, cost_usd) VALUES (?, ?, ?, ?, ?)',
      ),
      turns: p('SELECT * FROM trace_turns WHERE run_id = ? AND key = ?'),
      turnsCost: p('SELECT coalesce(sum(cost_usd), 0) AS c FROM trace_turns WHERE run_id = ?'),
      callsOfTurn: p('SELECT count(*) AS n FROM trace_calls WHERE run_id = ? AND turn_id = ?'),
      putDivergence:
        p(`INSERT OR REPLACE INTO trace_divergences (run_id, step, idx, at, reason, prefix, fallback_key, created_at)
                        VALUES (@run_id, @step, @idx, @at, @reason, @prefix, @fallback_key, @created_at)`),
      divergences: p('SELECT * FROM trace_divergences WHERE run_id = ? ORDER BY created_at, step, idx'),
      forgetKeys: p('DELETE FROM trace_keys WHERE run_id = ?'),
      forgetCalls: p('DELETE FROM trace_calls WHERE run_id = ?'),
      forgetTurns: p('DELETE FROM trace_turns WHERE run_id = ?'),
      forgetAgents: p('DELETE FROM trace_agents WHERE run_id = ?'),
    };
  }

  bySignature(sig: string): TraceRow | undefined {
    return this.stmts.bySig!.get(sig) as TraceRow | undefined;
  }

  get(traceId: string): TraceRow | undefined {
    return this.stmts.byId!.get(traceId) as TraceRow | undefined;
  }

  /** The rowids of the traces whose terms best match an FTS5 query, best first. */
  candidates(match: string, limit: number): number[] {
    return (this.stmts.candidates!.all(match, limit) as Array<{ rid: number }>).map((r) => r.rid);
  }

  byRowids(ids: number[]): Array<TraceRow & { rid: number }> {
    return this.stmts.byRowids!.all(JSON.stringify(ids)) as Array<TraceRow & { rid: number }>;
  }

  /** How many traces hold each term. */
  docFreq(terms: string[]): Map<string, number> {
    return new Map(
      (this.stmts.df!.all(JSON.stringify(terms)) as Array<{ term: string; doc: number }>).map((r) => [r.term, r.doc]),
    );
  }

  count(): number {
    return (this.stmts.count!.get() as { n: number }).n;
  }

  insert(row: {
    trace_id: string;
    signature: string;
    goal: string;
    normalized: string;
    terms: string;
    slots: string;
    names: string;
    plan: string;
    inputs: string;
    learned_run_id: string;
    learned_cost_usd: number;
    learned_duration_ms: number | null;
    now: number;
  }): void {
    this.stmts.insert!.run(row);
  }

  relearn(row: {
    trace_id: string;
    plan: string;
    inputs: string;
    learned_run_id: string;
    learned_cost_usd: number;
    learned_duration_ms: number | null;
    now: number;
  }): void {
    this.stmts.relearn!.run(row);
  }

  used(row: { trace_id: string; ok: number; failed: number; repaired: number; saved: number; now: number }): void {
    this.stmts.used!.run(row);
  }

  setStatus(traceId: string, status: 'active' | 'demoted', now: number): void {
    this.stmts.setStatus!.run(status, now, traceId);
  }

  delete(traceId: string): boolean {
    this.stmts.delItems!.run(traceId);
    return this.stmts.del!.run(traceId).changes > 0;
  }

  deleteItems(traceId: string): void {
    this.stmts.delItems!.run(traceId);
  }

  putItem(row: ItemRow): void {
    this.stmts.putItem!.run(row);
  }

  item(traceId: string, step: string, idx: number): ItemRow | undefined {
    return this.stmts.item!.get(traceId, step, idx) as ItemRow | undefined;
  }

  items(traceId: string): ItemRow[] {
    return this.stmts.items!.all(traceId) as ItemRow[];
  }

  itemCounts(traceId: string): { items: number; events: number } {
    return this.stmts.itemCounts!.get(traceId) as { items: number; events: number };
  }

  /** A page of traces; `order` is a fixed column list, never the caller's text. */
  list(order: 'last_used' | 'created' | 'usage', status: string | null, limit: number, offset: number): TraceRow[] {
    const by =
      order === 'usage'
        ? 'usage_count DESC, created_at DESC'
        : order === 'created'
          ? 'created_at DESC'
          : 'coalesce(last_used_at, created_at) DESC';
    const where = status ? 'WHERE status = ?' : '';
    const args: unknown[] = status ? [status, limit, offset] : [limit, offset];
    return this.db
      .prepare(`SELECT * FROM trace_traces ${where} ORDER BY ${by} LIMIT ? OFFSET ?`)
      .all(...args) as TraceRow[];
  }

  insertRun(row: Omit<RunRow, 'status' | 'settled' | 'cost_usd' | 'saved_usd' | 'outcome' | 'finished_at'>): boolean {
    return this.stmts.insertRun!.run(row).changes > 0;
  }

  run(runId: string): RunRow | undefined {
    return this.stmts.run!.get(runId) as RunRow | undefined;
  }

  openRuns(): RunRow[] {
    return this.stmts.openRuns!.all() as RunRow[];
  }

  runs(runIds: string[] | null, limit: number): RunRow[] {
    return (runIds ? this.stmts.runsOf!.all(JSON.stringify(runIds)) : this.stmts.runsRecent!.all(limit)) as RunRow[];
  }

  settleRun(row: {
    run_id: string;
    status: string;
    cost_usd: number | null;
    saved_usd: number | null;
    outcome: string;
    trace_id: string | null;
    now: number;
  }): void {
    this.stmts.settle!.run(row);
  }

  putKey(runId: string, key: string, step: string, idx: number, attempt: number, fallback: boolean): void {
    this.stmts.putKey!.run(runId, key, step, idx, attempt, fallback ? 1 : 0);
  }

  keys(runId: string): KeyRow[] {
    return this.stmts.keys!.all(runId) as KeyRow[];
  }

  keyOf(runId: string, key: string): KeyRow | undefined {
    return this.stmts.keyOf!.get(runId, key) as KeyRow | undefined;
  }

  putAgent(agentId: string, runId: string, key: string): void {
    this.stmts.putAgent!.run(agentId, runId, key);
  }

  /** An agent now works for this run's key, whatever it worked for before (an agent turn given a goal). */
  replaceAgent(agentId: string, runId: string, key: string): void {
    this.stmts.replaceAgent!.run(agentId, runId, key);
  }

  agent(agentId: string): { agent_id: string; run_id: string; key: string } | undefined {
    return this.stmts.agent!.get(agentId) as { agent_id: string; run_id: string; key: string } | undefined;
  }

  agentsOf(runId: string): Array<{ agent_id: string; run_id: string; key: string }> {
    return this.stmts.agentsOf!.all(runId) as Array<{ agent_id: string; run_id: string; key: string }>;
  }

  putCall(row: CallRow): void {
    this.stmts.putCall!.run(row);
  }

  calls(runId: string, key: string): CallRow[] {
    return this.stmts.calls!.all(runId, key) as CallRow[];
  }

  putTurn(turnId: string, runId: string, key: string, toolCalls: number, costUsd: number): void {
    this.stmts.putTurn!.run(turnId, runId, key, toolCalls, costUsd);
  }

  /** What the turns recorded for a run cost (an agent turn given a goal, and its children's). */
  turnsCost(runId: string): number {
    return (this.stmts.turnsCost!.get(runId) as { c: number }).c;
  }

  /** Whether every tool call the turns of a task reported was recorded (a crash can lose one). */
  complete(runId: string, key: string): boolean {
    for (const t of this.stmts.turns!.all(runId, key) as Array<{ turn_id: string; tool_calls: number }>) {
      const n = (this.stmts.callsOfTurn!.get(runId, t.turn_id) as { n: number }).n;
      if (n < t.tool_calls) return false;
    }
    return true;
  }

  putDivergence(row: DivergenceRow): boolean {
    return this.stmts.putDivergence!.run(row).changes > 0;
  }

  divergences(runId: string): DivergenceRow[] {
    return this.stmts.divergences!.all(runId) as DivergenceRow[];
  }

  /** Once a run is settled its recording has become (part of) a trace: the raw calls go. */
  forgetRecording(runId: string): void {
    this.stmts.forgetKeys!.run(runId);
    this.stmts.forgetCalls!.run(runId);
    this.stmts.forgetTurns!.run(runId);
    this.stmts.forgetAgents!.run(runId);
  }
}
