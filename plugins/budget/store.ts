/**
 * The budget's tables. Spend is kept twice on purpose: the ledger is the audit trail (every reserve,
 * commit and release, paginated for `budget:ledger`), and `budget_usage` holds running totals per scope
 * and period bucket so that checking a limit is a primary-key lookup, not a scan of the whole ledger.
 * Both are written in the same transaction, so they never disagree.
 */
import type Database from 'better-sqlite3';
import { type Migration, rebuildTable } from '../../daemon/plugin-api.js';

export const MIGRATIONS: Migration[] = [
  `CREATE TABLE budget_limits (
     scope TEXT NOT NULL, scope_id TEXT NOT NULL, period TEXT NOT NULL,
     limit_nanos INTEGER, limit_tokens INTEGER,
     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
     PRIMARY KEY (scope, scope_id, period)
   );
   CREATE TABLE budget_ledger (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     ts INTEGER NOT NULL,
     kind TEXT NOT NULL,
     request_id TEXT NOT NULL,
     attempt INTEGER NOT NULL DEFAULT 1,
     holder TEXT,
     model TEXT,
     agent_id TEXT,
     session_id TEXT,
     input_tokens INTEGER, output_tokens INTEGER, cache_write_tokens INTEGER, cache_read_tokens INTEGER,
     tokens INTEGER NOT NULL DEFAULT 0,
     nanos INTEGER NOT NULL DEFAULT 0,
     estimated INTEGER NOT NULL DEFAULT 0,
     reason TEXT
   );
   CREATE INDEX budget_ledger_request ON budget_ledger (request_id, attempt, kind);
   CREATE INDEX budget_ledger_agent ON budget_ledger (agent_id, seq);
   CREATE INDEX budget_ledger_session ON budget_ledger (session_id, seq);
   CREATE TABLE budget_reservations (
     request_id TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 1,
     holder TEXT NOT NULL, model TEXT NOT NULL,
     agent_id TEXT, session_id TEXT,
     nanos INTEGER NOT NULL, tokens INTEGER NOT NULL,
     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
     PRIMARY KEY (request_id, attempt)
   );
   CREATE INDEX budget_reservations_agent ON budget_reservations (agent_id);
   CREATE INDEX budget_reservations_session ON budget_reservations (session_id);
   CREATE TABLE budget_usage (
     scope TEXT NOT NULL, scope_id TEXT NOT NULL, bucket TEXT NOT NULL,
     nanos INTEGER NOT NULL DEFAULT 0, tokens INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (scope, scope_id, bucket)
   );
   CREATE TABLE budget_alerts (
     scope TEXT NOT NULL, scope_id TEXT NOT NULL, period TEXT NOT NULL, bucket TEXT NOT NULL,
     dimension TEXT NOT NULL, threshold INTEGER NOT NULL, ts INTEGER NOT NULL,
     PRIMARY KEY (scope, scope_id, period, bucket, dimension, threshold)
   );`,
  // Fewer pages written per call, same rows and the same answers:
  // - the agent and session indexes hold only rows that have an agent or a session (a call without
  //   one wrote an entry under NULL that no query reads, a page per index in every commit; lookups by
  //   agent or session, \`agent_id = ?\`, imply NOT NULL, so they still use these indexes);
  // - the ledger's seq is a plain rowid, not AUTOINCREMENT, which also updated sqlite_sequence in
  //   every commit. Ledger rows are never deleted, so seq still only grows and cursors keep working;
  // - reservations and usage totals, small rows always found by their primary key, are stored in
  //   that key's B-tree (WITHOUT ROWID) instead of in a rowid table plus an index on the key.
  (db) => {
    rebuildTable(
      db,
      'budget_ledger',
      `(
      seq INTEGER PRIMARY KEY,
      ts INTEGER NOT NULL,
      kind TEXT NOT NULL,
      request_id TEXT NOT NULL,
      attempt INTEGER NOT NULL DEFAULT 1,
      holder TEXT,
      model TEXT,
      agent_id TEXT,
      session_id TEXT,
      input_tokens INTEGER, output_tokens INTEGER, cache_write_tokens INTEGER, cache_read_tokens INTEGER,
      tokens INTEGER NOT NULL DEFAULT 0,
      nanos INTEGER NOT NULL DEFAULT 0,
      estimated INTEGER NOT NULL DEFAULT 0,
      reason TEXT
    )`,
    );
    rebuildTable(
      db,
      'budget_reservations',
      `(
      request_id TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 1,
      holder TEXT NOT NULL, model TEXT NOT NULL,
      agent_id TEXT, session_id TEXT,
      nanos INTEGER NOT NULL, tokens INTEGER NOT NULL,
      created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
      PRIMARY KEY (request_id, attempt)
    ) WITHOUT ROWID`,
    );
    rebuildTable(
      db,
      'budget_usage',
      `(
      scope TEXT NOT NULL, scope_id TEXT NOT NULL, bucket TEXT NOT NULL,
      nanos INTEGER NOT NULL DEFAULT 0, tokens INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (scope, scope_id, bucket)
    ) WITHOUT ROWID`,
    );
    db.exec(`CREATE INDEX budget_ledger_request ON budget_ledger (request_id, attempt, kind);
      CREATE INDEX budget_ledger_agent ON budget_ledger (agent_id, seq) WHERE agent_id IS NOT NULL;
      CREATE INDEX budget_ledger_session ON budget_ledger (session_id, seq) WHERE session_id IS NOT NULL;
      CREATE INDEX budget_reservations_agent ON budget_reservations (agent_id) WHERE agent_id IS NOT NULL;
      CREATE INDEX budget_reservations_session ON budget_reservations (session_id) WHERE session_id IS NOT NULL;`);
  },
  // The workflow scope: a run's calls carry its run_id (from their causality context).
  `ALTER TABLE budget_reservations ADD COLUMN workflow_id TEXT;
   ALTER TABLE budget_ledger ADD COLUMN workflow_id TEXT;
   CREATE INDEX budget_reservations_workflow ON budget_reservations (workflow_id) WHERE workflow_id IS NOT NULL;
   CREATE INDEX budget_ledger_workflow ON budget_ledger (workflow_id, seq) WHERE workflow_id IS NOT NULL;`,
];

export interface LimitRow {
  scope: string;
  scope_id: string;
  period: string;
  limit_nanos: number | null;
  limit_tokens: number | null;
  created_at: number;
  updated_at: number;
}

export interface ReservationRow {
  request_id: string;
  attempt: number;
  holder: string;
  model: string;
  agent_id: string | null;
  session_id: string | null;
  workflow_id: string | null;
  nanos: number;
  tokens: number;
  created_at: number;
  expires_at: number;
}

export interface LedgerRow {
  seq: number;
  ts: number;
  kind: string;
  request_id: string;
  attempt: number;
  holder: string | null;
  model: string | null;
  agent_id: string | null;
  session_id: string | null;
  workflow_id: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cache_write_tokens: number | null;
  cache_read_tokens: number | null;
  tokens: number;
  nanos: number;
  estimated: number;
  reason: string | null;
}

/** Prepared statements, built once. */
export function statements(db: Database.Database) {
  return {
    limitsFor: db.prepare<[string, string], LimitRow>('SELECT * FROM budget_limits WHERE scope = ? AND scope_id = ?'),
    allLimits: db.prepare<[], LimitRow>('SELECT * FROM budget_limits ORDER BY scope, scope_id, period'),
    upsertLimit: db.prepare(
      `INSERT INTO budget_limits (scope, scope_id, period, limit_nanos, limit_tokens, created_at, updated_at)
       VALUES (@scope, @scope_id, @period, @limit_nanos, @limit_tokens, @now, @now)
       ON CONFLICT (scope, scope_id, period) DO UPDATE SET limit_nanos = @limit_nanos, limit_tokens = @limit_tokens, updated_at = @now`,
    ),
    deleteLimit: db.prepare('DELETE FROM budget_limits WHERE scope = ? AND scope_id = ? AND period = ?'),
    usage: db.prepare<[string, string, string], { nanos: number; tokens: number }>(
      'SELECT nanos, tokens FROM budget_usage WHERE scope = ? AND scope_id = ? AND bucket = ?',
    ),
    reservedGlobal: db.prepare<[], { nanos: number; tokens: number }>(
      'SELECT COALESCE(SUM(nanos), 0) AS nanos, COALESCE(SUM(tokens), 0) AS tokens FROM budget_reservations',
    ),
    reservedAgent: db.prepare<[string], { nanos: number; tokens: number }>(
      'SELECT COALESCE(SUM(nanos), 0) AS nanos, COALESCE(SUM(tokens), 0) AS tokens FROM budget_reservations WHERE agent_id = ?',
    ),
    reservedSession: db.prepare<[string], { nanos: number; tokens: number }>(
      'SELECT COALESCE(SUM(nanos), 0) AS nanos, COALESCE(SUM(tokens), 0) AS tokens FROM budget_reservations WHERE session_id = ?',
    ),
    reservedWorkflow: db.prepare<[string], { nanos: number; tokens: number }>(
      'SELECT COALESCE(SUM(nanos), 0) AS nanos, COALESCE(SUM(tokens), 0) AS tokens FROM budget_reservations WHERE workflow_id = ?',
    ),
    getReservation: db.prepare<[string, number], ReservationRow>(
      'SELECT * FROM budget_reservations WHERE request_id = ? AND attempt = ?',
    ),
    reservationsOf: db.prepare<[string], ReservationRow>('SELECT * FROM budget_reservations WHERE request_id = ?'),
    reservationsByHolder: db.prepare<[string], ReservationRow>('SELECT * FROM budget_reservations WHERE holder = ?'),
    expiredReservations: db.prepare<[number], ReservationRow>('SELECT * FROM budget_reservations WHERE expires_at < ?'),
    insertReservation: db.prepare(
      `INSERT INTO budget_reservations (request_id, attempt, holder, model, agent_id, session_id, workflow_id, nanos, tokens, created_at, expires_at)
       VALUES (@request_id, @attempt, @holder, @model, @agent_id, @session_id, @workflow_id, @nanos, @tokens, @created_at, @expires_at)`,
    ),
    deleteReservation: db.prepare('DELETE FROM budget_reservations WHERE request_id = ? AND attempt = ?'),
    committed: db.prepare<[string, number], { nanos: number; tokens: number; model: string | null }>(
      "SELECT nanos, tokens, model FROM budget_ledger WHERE request_id = ? AND attempt = ? AND kind IN ('commit', 'charge') LIMIT 1",
    ),
    insertLedger: db.prepare(
      `INSERT INTO budget_ledger (ts, kind, request_id, attempt, holder, model, agent_id, session_id, workflow_id,
         input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, tokens, nanos, estimated, reason)
       VALUES (@ts, @kind, @request_id, @attempt, @holder, @model, @agent_id, @session_id, @workflow_id,
         @input_tokens, @output_tokens, @cache_write_tokens, @cache_read_tokens, @tokens, @nanos, @estimated, @reason)`,
    ),
    insertAlert: db.prepare(
      `INSERT OR IGNORE INTO budget_alerts (scope, scope_id, period, bucket, dimension, threshold, ts) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
  };
}

export type Statements = ReturnType<typeof statements>;
