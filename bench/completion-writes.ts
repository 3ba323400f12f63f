/**
 * The SQLite work of one drained completion request, without the SDK, the socket or the router: the
 * real journal, budget ledger and group commit, driven in the pattern a drain produces (sixteen
 * requests per commit, each of its stages queued together: accept, start with its reservation,
 * result with its settlement, bookkeeping). Beside it, in the same run, the least a durable queue
 * could write: one row per request into a one-index table, through the same group commit. Also the
 * pages of a lone call (one request at a time, no session or agent: what a waited call commits).
 * Reports CPU per request and WAL pages written per request (a page is two write calls here).
 * Run alone: `npx tsx bench/completion-writes.ts [--quick]`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { GroupCommit } from '../daemon/group-commit.js';
import { migrate, openDatabase } from '../daemon/persistence.js';
import { timeOrderedId } from '../daemon/time-ordered-id.js';
import { BudgetLedger } from '../plugins/budget/ledger.js';
import { PriceTable } from '../plugins/budget/prices.js';
import { MIGRATIONS as BUDGET } from '../plugins/budget/store.js';
import { Journal, MIGRATIONS as COMPLETION } from '../plugins/completion/journal.js';

const PER_COMMIT = 16;
const SESSIONS = 50;

interface Pass {
  cpuUs: number;
  pages: number;
}

/** Run `n` requests through `stage` (stages 0..3 of request i), batched as a drain batches them. */
async function drive(
  db: Database.Database,
  n: number,
  stages: number,
  stage: (i: number, s: number) => Promise<unknown>,
  countPages: boolean,
): Promise<Pass> {
  if (countPages) db.pragma('wal_autocheckpoint = 0');
  const c0 = process.cpuUsage();
  for (let k = 0; k < n; k += PER_COMMIT) {
    const ps: Promise<unknown>[] = [];
    // Request i at stage s: the newest batch is being accepted while older ones finish.
    for (let i = k; i < k + PER_COMMIT; i++)
      for (let s = 0; s < stages; s++) ps.push(stage(i + (stages - 1 - s) * PER_COMMIT, s));
    await Promise.all(ps);
  }
  return finish(db, n, c0, countPages);
}

/**
 * One request at a time, as a lone waited call commits: its acceptance with its reservation, then its
 * result with its settlement; the bookkeeping after it rides on the next request's first commit.
 */
async function driveAlone(
  db: Database.Database,
  n: number,
  stage: (i: number, s: number) => Promise<unknown>,
): Promise<Pass> {
  db.pragma('wal_autocheckpoint = 0');
  const c0 = process.cpuUsage();
  let last: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < n; i++) {
    await Promise.all([stage(i, 0), stage(i, 1)]);
    await stage(i, 2);
    last = stage(i, 3);
  }
  await last;
  return finish(db, n, c0, true);
}

function finish(db: Database.Database, n: number, c0: NodeJS.CpuUsage, countPages: boolean): Pass {
  const c = process.cpuUsage(c0);
  const frames = countPages ? (db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>)[0]!.log : 0;
  return { cpuUs: (c.user + c.system) / n, pages: frames / n };
}

function agentdStages(
  db: Database.Database,
  ids: string[],
  sessions = true,
): (i: number, s: number) => Promise<unknown> {
  migrate(db, 'completion', COMPLETION);
  migrate(db, 'budget', BUDGET);
  const journal = new Journal(db);
  const ledger = new BudgetLedger(db, new PriceTable({ 'bench-model': { input: 3, output: 15 } }));
  const gc = GroupCommit.for(db);
  const params = JSON.stringify({
    model: 'bench-model',
    max_tokens: 64,
    messages: [{ role: 'user', content: 'drain 1 1234' }],
    stream: false,
  });
  const usage = { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  return (i, s) => {
    const id = ids[i]!;
    const session = sessions ? `bench-${i % SESSIONS}` : null;
    const now = Date.now();
    switch (s) {
      case 0:
        return gc.run(() =>
          journal.insert({
            request_id: id,
            session_id: session,
            agent_id: null,
            model: 'bench-model',
            params,
            params_hash: 'h'.repeat(64),
            context: null,
            created_at: now,
            attempts: 0,
          }),
        );
      case 1:
        void gc.later(() => journal.markRunning(id, now));
        return gc.run(() =>
          ledger.reserve({
            request_id: id,
            attempt: 1,
            holder: 'completion',
            model: 'bench-model',
            input_tokens: 40,
            max_tokens: 64,
            session_id: session,
          }),
        );
      case 2: {
        const result = {
          request_id: id,
          session_id: session,
          text: 'ok',
          content: [{ type: 'text', text: 'ok' }],
          stop_reason: 'end_turn',
          usage,
          cost_usd: null,
          model: 'bench-model',
          attempt: 1,
        };
        const recorded = gc.run(() => {
          journal.finish(id, 'completed', { result, settled: false }, now);
          if (session)
            journal.appendTurn(
              session,
              null,
              'bench-model',
              null,
              [
                { role: 'user', content: 'drain' },
                { role: 'assistant', content: [{ type: 'text', text: 'ok' }] },
              ],
              id,
              now,
            );
        });
        return Promise.all([
          recorded,
          gc.run(() => ledger.commit({ request_id: id, attempt: 1, model: 'bench-model', usage, session_id: session })),
        ]);
      }
      default:
        return gc.later(() => journal.settle(id, 0.0001, true));
    }
  };
}

function minimalStages(db: Database.Database, ids: string[]): (i: number, s: number) => Promise<unknown> {
  db.exec('CREATE TABLE q (id TEXT PRIMARY KEY, params TEXT NOT NULL) WITHOUT ROWID');
  const ins = db.prepare('INSERT INTO q (id, params) VALUES (?, ?)');
  const gc = GroupCommit.for(db);
  return (i) => gc.run(() => ins.run(ids[i]!, 'drain 1 1234'));
}

async function measure(kind: 'agentd' | 'minimal' | 'lone', n: number, countPages: boolean): Promise<Pass> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-writes-'));
  const db = openDatabase(dir);
  try {
    // Ids as the daemon makes them, about ten per millisecond as a busy accept loop does.
    const t0 = Date.now();
    const ids = Array.from({ length: n + 4 * PER_COMMIT }, (_, i) => `cmp_${timeOrderedId(t0 + Math.floor(i / 10))}`);
    if (kind === 'lone') return await driveAlone(db, n, agentdStages(db, ids, false));
    return kind === 'agentd'
      ? await drive(db, n, 4, agentdStages(db, ids), countPages)
      : await drive(db, n, 1, minimalStages(db, ids), countPages);
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchCompletionWrites(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const n = opts.quick ? 1000 : 4000;
  const runs = opts.quick ? 1 : 5;
  const agentd: number[] = [];
  const minimal: number[] = [];
  for (let r = 0; r < runs; r++) {
    // Alternating, so both see the same machine.
    agentd.push((await measure('agentd', n, false)).cpuUs);
    minimal.push((await measure('minimal', n, false)).cpuUs);
  }
  const pages = await measure('agentd', n, true);
  const minimalPages = await measure('minimal', n, true);
  const lone = await measure('lone', opts.quick ? 100 : 500, true);
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
  return {
    requests: n,
    requests_per_commit: PER_COMMIT,
    runs,
    cpu_us_per_request: {
      agentd: round(med(agentd)),
      minimal_queue: round(med(minimal)),
      agentd_runs: agentd.map((x) => round(x)),
    },
    wal_pages_per_request: {
      agentd: round(pages.pages, 2),
      minimal_queue: round(minimalPages.pages, 2),
      agentd_lone_call: round(lone.pages, 2),
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchCompletionWrites({ quick: process.argv.includes('--quick') }).then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
