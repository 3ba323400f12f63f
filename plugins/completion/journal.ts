/**
 * The durable journal of completion requests and the conversation store. A request row is written
 * when the request is accepted (before the ack), moves queued → running → completed | failed |
 * cancelled, and keeps its outcome for the retention period. The journal, not a checkpoint, is what
 * makes accepted work survive kill -9: at start the service re-reads it.
 */
import { unixSeconds, unixSecondsToMs } from '../../client/units.js';
import type Database from 'better-sqlite3';
import { type Migration, rebuildTable } from '../../daemon/plugin-api.js';

export const MIGRATIONS: Migration[] = [
  `CREATE TABLE completion_requests (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     request_id TEXT NOT NULL UNIQUE,
     session_id TEXT,
     agent_id TEXT,
     model TEXT NOT NULL,
     status TEXT NOT NULL,
     params TEXT NOT NULL,
     params_hash TEXT NOT NULL,
     context TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     started_at INTEGER,
     finished_at INTEGER,
     result TEXT,
     error TEXT,
     settled INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX completion_requests_status ON completion_requests (status, seq);
   CREATE INDEX completion_requests_finished ON completion_requests (finished_at);
   CREATE TABLE completion_conversations (
     session_id TEXT PRIMARY KEY,
     agent_id TEXT,
     model TEXT,
     system TEXT,
     turns INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX completion_conversations_updated ON completion_conversations (updated_at);
   CREATE TABLE completion_messages (
     session_id TEXT NOT NULL,
     idx INTEGER NOT NULL,
     role TEXT NOT NULL,
     content TEXT NOT NULL,
     request_id TEXT,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (session_id, idx)
   );`,
  // The first attempt number of this acceptance: a failed request asked again continues the numbering
  // (attempts key the budget ledger), and the restart policy counts only this acceptance's runs.
  'ALTER TABLE completion_requests ADD COLUMN first_attempt INTEGER NOT NULL DEFAULT 1',
  // Fewer pages written per request, same rows: only finished requests in the index prune reads
  // (\`finished_at < ?\` implies NOT NULL), so accepting one writes no entry under NULL there; and seq
  // is a plain rowid, not AUTOINCREMENT, which also updated sqlite_sequence in every commit (seq only
  // orders the queue, and a new row still gets one past the largest).
  (db) => {
    rebuildTable(
      db,
      'completion_requests',
      `(
      seq INTEGER PRIMARY KEY,
      request_id TEXT NOT NULL UNIQUE,
      session_id TEXT,
      agent_id TEXT,
      model TEXT NOT NULL,
      status TEXT NOT NULL,
      params TEXT NOT NULL,
      params_hash TEXT NOT NULL,
      context TEXT,
      attempts INTEGER NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL,
      started_at INTEGER,
      finished_at INTEGER,
      result TEXT,
      error TEXT,
      settled INTEGER NOT NULL DEFAULT 0,
      first_attempt INTEGER NOT NULL DEFAULT 1
    )`,
    );
    db.exec(`CREATE INDEX completion_requests_status ON completion_requests (status, seq);
      CREATE INDEX completion_requests_finished ON completion_requests (finished_at) WHERE finished_at IS NOT NULL;`);
  },
];

export type RequestStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export const ACTIVE: ReadonlySet<string> = new Set(['queued', 'running']);

export interface RequestRow {
  seq: number;
  request_id: string;
  session_id: string | null;
  agent_id: string | null;
  model: string;
  status: RequestStatus;
  params: string;
  params_hash: string;
  context: string | null;
  attempts: number;
  first_attempt: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  result: string | null;
  error: string | null;
  settled: number;
}

export interface StoredMessage {
  role: 'user' | 'assistant';
  content: string | Array<Record<string, unknown>>;
}

/** Sessions whose parsed history is kept in memory: a queued session re-reads it on every turn. */
const HISTORY_CACHE = 1000;

export class Journal {
  private readonly stmts;
  /** Parsed histories, most recently used last; this plugin is the only writer of its tables. */
  private readonly cache = new Map<string, StoredMessage[]>();

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO completion_requests (request_id, session_id, agent_id, model, status, params, params_hash, context, created_at, attempts, first_attempt)
         VALUES (@request_id, @session_id, @agent_id, @model, 'queued', @params, @params_hash, @context, @created_at, @attempts, @attempts + 1)`,
      ),
      get: db.prepare<[string], RequestRow>('SELECT * FROM completion_requests WHERE request_id = ?'),
      byStatus: db.prepare<[string], RequestRow>('SELECT * FROM completion_requests WHERE status = ? ORDER BY seq'),
      deleteRow: db.prepare('DELETE FROM completion_requests WHERE request_id = ?'),
      running: db.prepare(
        "UPDATE completion_requests SET status = 'running', attempts = attempts + 1, started_at = ? WHERE request_id = ? AND status = 'queued'",
      ),
      requeue: db.prepare(
        "UPDATE completion_requests SET status = 'queued', attempts = MAX(0, attempts - ?) WHERE request_id = ?",
      ),
      finish: db.prepare(
        'UPDATE completion_requests SET status = @status, finished_at = @finished_at, result = @result, error = @error, settled = @settled WHERE request_id = @request_id',
      ),
      settled: db.prepare(
        "UPDATE completion_requests SET settled = 1, result = json_set(result, '$.cost_usd', ?, '$.price_known', json(?)) WHERE request_id = ?",
      ),
      unsettled: db.prepare<[], RequestRow>(
        "SELECT * FROM completion_requests WHERE status = 'completed' AND settled = 0",
      ),
      // By the finished_at index (the unary + keeps the planner off the status index, which would walk
      // every finished request kept, not just the ones old enough to go).
      prune: db.prepare(
        "DELETE FROM completion_requests WHERE +status IN ('completed', 'failed', 'cancelled') AND finished_at < ?",
      ),
      conv: db.prepare<[string], ConversationRow>('SELECT * FROM completion_conversations WHERE session_id = ?'),
      convUpsert: db.prepare(
        `INSERT INTO completion_conversations (session_id, agent_id, model, system, turns, created_at, updated_at)
         VALUES (@session_id, @agent_id, @model, @system, 1, @now, @now)
         ON CONFLICT (session_id) DO UPDATE SET model = @model, system = COALESCE(@system, system),
           agent_id = COALESCE(agent_id, @agent_id), turns = turns + 1, updated_at = @now`,
      ),
      msgs: db.prepare<
        [string],
        { role: string; content: string; request_id: string | null; created_at: number; idx: number }
      >('SELECT idx, role, content, request_id, created_at FROM completion_messages WHERE session_id = ? ORDER BY idx'),
      nextIdx: db.prepare<[string], { n: number }>(
        'SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM completion_messages WHERE session_id = ?',
      ),
      insertMsg: db.prepare(
        'INSERT INTO completion_messages (session_id, idx, role, content, request_id, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      deleteConv: db.prepare('DELETE FROM completion_conversations WHERE session_id = ?'),
      deleteMsgs: db.prepare('DELETE FROM completion_messages WHERE session_id = ?'),
    };
  }

  insert(r: {
    request_id: string;
    session_id: string | null;
    agent_id: string | null;
    model: string;
    params: string;
    params_hash: string;
    context: string | null;
    created_at: number;
    attempts: number;
  }): number {
    return Number(this.stmts.insert.run(r).lastInsertRowid);
  }

  get(requestId: string): RequestRow | undefined {
    return this.stmts.get.get(requestId);
  }

  /** Drop a finished row so its request_id can be reused for a new, different request. */
  forget(requestId: string): void {
    this.stmts.deleteRow.run(requestId);
  }

  withStatus(status: RequestStatus): RequestRow[] {
    return this.stmts.byStatus.all(status);
  }

  markRunning(requestId: string, now: number): boolean {
    return this.stmts.running.run(now, requestId).changes === 1;
  }

  /** Back to queued (shutdown handed it back, or a restart retries it); `undoAttempt` when the call never really ran. */
  requeue(requestId: string, undoAttempt: boolean): void {
    this.stmts.requeue.run(undoAttempt ? 1 : 0, requestId);
  }

  finish(
    requestId: string,
    status: 'completed' | 'failed' | 'cancelled',
    outcome: { result?: unknown; error?: unknown; settled: boolean },
    now: number,
  ): void {
    this.stmts.finish.run({
      request_id: requestId,
      status,
      finished_at: now,
      result: outcome.result === undefined ? null : JSON.stringify(outcome.result),
      error: outcome.error === undefined ? null : JSON.stringify(outcome.error),
      settled: outcome.settled ? 1 : 0,
    });
  }

  /** The budget has the call's spend: record its cost in the result. */
  settle(requestId: string, costUsd: number, priceKnown: boolean): void {
    this.stmts.settled.run(costUsd, priceKnown ? 'true' : 'false', requestId);
  }

  unsettled(): RequestRow[] {
    return this.stmts.unsettled.all();
  }

  prune(olderThan: number): number {
    return this.stmts.prune.run(olderThan).changes;
  }

  // ---- conversations ----------------------------------------------------------------------------

  /** The session's messages in order. The array is shared with the cache: copy before changing it. */
  history(sessionId: string): readonly StoredMessage[] {
    let h = this.cache.get(sessionId);
    if (h) {
      this.cache.delete(sessionId);
    } else {
      h = this.stmts.msgs.all(sessionId).map((m) => ({
        role: m.role as 'user' | 'assistant',
        content: JSON.parse(m.content) as StoredMessage['content'],
      }));
      if (this.cache.size >= HISTORY_CACHE) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(sessionId, h);
    return h;
  }

  /** The session's messages as answers show them (times in Unix seconds). */
  messages(sessionId: string) {
    return this.stmts.msgs.all(sessionId).map((m) => ({
      idx: m.idx,
      role: m.role,
      content: JSON.parse(m.content) as unknown,
      request_id: m.request_id,
      created_at: unixSeconds(m.created_at),
    }));
  }

  /** A conversation as answers show it (times in Unix seconds). */
  conversation(sessionId: string): ConversationRow | undefined {
    const row = this.stmts.conv.get(sessionId);
    return row && conversationView(row);
  }

  /** Append one turn: the new user-side messages and the assistant's reply, atomically with the result. */
  appendTurn(
    sessionId: string,
    agentId: string | null,
    model: string,
    system: string | null,
    msgs: StoredMessage[],
    requestId: string,
    now: number,
  ): void {
    this.stmts.convUpsert.run({ session_id: sessionId, agent_id: agentId, model, system, now });
    let idx = this.stmts.nextIdx.get(sessionId)!.n;
    for (const m of msgs) this.stmts.insertMsg.run(sessionId, idx++, m.role, JSON.stringify(m.content), requestId, now);
    this.cache.get(sessionId)?.push(...msgs);
  }

  /** Conversations, most recently updated first; `before` is an `updated_at` of an earlier page (Unix seconds). */
  listConversations(q: {
    agent_id?: string | undefined;
    limit: number;
    before?: number | undefined;
  }): ConversationRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.agent_id) (where.push('agent_id = ?'), args.push(q.agent_id));
    if (q.before) (where.push('updated_at < ?'), args.push(unixSecondsToMs(q.before)));
    return (
      this.db
        .prepare(
          `SELECT * FROM completion_conversations ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY updated_at DESC LIMIT ?`,
        )
        .all(...args, q.limit) as ConversationRow[]
    ).map(conversationView);
  }

  deleteConversation(sessionId: string): boolean {
    this.cache.delete(sessionId);
    this.stmts.deleteMsgs.run(sessionId);
    return this.stmts.deleteConv.run(sessionId).changes > 0;
  }
}

const conversationView = (r: ConversationRow): ConversationRow => ({
  ...r,
  created_at: unixSeconds(r.created_at),
  updated_at: unixSeconds(r.updated_at),
});

/** A conversation; times are epoch ms in the table and Unix seconds in what the journal returns. */
export interface ConversationRow {
  session_id: string;
  agent_id: string | null;
  model: string | null;
  system: string | null;
  turns: number;
  created_at: number;
  updated_at: number;
}
