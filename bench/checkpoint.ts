/**
 * Checkpoint and shutdown figures, on real daemons:
 *  - save: checkpoint:save of a state with 10,000 session records (~2.6 MB of JSON) — the daemon's
 *    own duration (collect, serialise, checksum, one fsynced transaction) and the round trip;
 *  - restore: live checkpoint:restore of that state (restore_ms: read, verify, parse, hand to the
 *    plugin) and the restore at boot (from checkpoint:status after a restart);
 *  - baseline, same run: the same state stringified, hashed and inserted into a fresh WAL/FULL
 *    SQLite file, and read back, hashed and parsed, with no daemon in between — the floor;
 *  - SIGTERM to exit with idle plugins: checkpoint + test plugins only, and every repository plugin.
 * Targets: save ≤ 100 ms, restore ≤ 200 ms, SIGTERM to exit ≤ 500 ms.
 * Run alone: `npx tsx bench/checkpoint.ts [--quick]`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import YAML from 'yaml';
import { startDaemon, type DaemonHandle } from '../test/helpers/daemon-process.js';
import { startMessagesApiServer } from '../test/fixtures/messages-api-server.js';
import { testConfig } from '../test/checkpoint/helpers.js';

const SESSIONS = 10_000;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const r2 = (x: number): number => Math.round(x * 100) / 100;

/** The same records memo:fill creates in the test plugin. */
function sessions(n: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    out[`s${i}`] = {
      session_id: `s${i}`,
      agent_id: `agent-${i % 97}`,
      model: 'claude-sonnet-4-5',
      created_at: 1764000000 + i,
      turns: i % 13,
      tokens: { input: 1000 + i, output: 200 + (i % 50) },
      last: `message number ${i} of the conversation`,
    };
  }
  return out;
}

/** Floor: the same work without the daemon — stringify, hash, one fsynced insert; read, hash, parse. */
function baseline(rounds: number): { save_ms: number; restore_ms: number; bytes: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-cp-'));
  const db = new Database(path.join(dir, 'base.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE parts (id INTEGER PRIMARY KEY, sha TEXT, state TEXT)');
    const ins = db.prepare('INSERT INTO parts (sha, state) VALUES (?, ?)');
    const get = db.prepare('SELECT sha, state FROM parts WHERE id = ?');
    const state = { entries: sessions(SESSIONS), stops: 0 };
    const saves: number[] = [];
    const restores: number[] = [];
    let bytes = 0;
    for (let i = 0; i < rounds; i++) {
      let t = performance.now();
      const json = JSON.stringify(state);
      bytes = Buffer.byteLength(json);
      const sha = createHash('sha256').update(json).digest('hex');
      const id = db.transaction(() => Number(ins.run(sha, json).lastInsertRowid))();
      saves.push(performance.now() - t);
      t = performance.now();
      const row = get.get(id) as { sha: string; state: string };
      if (createHash('sha256').update(row.state).digest('hex') !== row.sha)
        throw new Error('baseline checksum mismatch');
      const back = JSON.parse(row.state) as { entries: Record<string, unknown> };
      if (new Map(Object.entries(back.entries)).size !== SESSIONS) throw new Error('baseline lost records');
      restores.push(performance.now() - t);
    }
    return { save_ms: r2(median(saves)), restore_ms: r2(median(restores)), bytes };
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function sigtermToExit(d: DaemonHandle): Promise<number> {
  await d.client.close();
  const t = performance.now();
  d.proc.kill('SIGTERM');
  const code = await d.exited;
  if (code !== 0) throw new Error(`daemon exited with ${String(code)} on SIGTERM`);
  return performance.now() - t;
}

export async function benchCheckpoint(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const rounds = opts.quick ? 5 : 20;
  const restarts = opts.quick ? 1 : 3;
  const exits = opts.quick ? 1 : 3;
  const quiet = { daemon: { log_level: 'warn' } };

  // save and live restore of 10k sessions
  let d = await startDaemon({ config: testConfig(quiet), readyTimeoutMs: 90_000 });
  const home = d.home;
  await d.client.request('memo:fill', { count: SESSIONS });
  const saveServer: number[] = [];
  const saveRtt: number[] = [];
  let size = 0;
  let id = 0;
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    const s = await d.client.request<{ checkpoint_id: number; duration_ms: number; size_bytes: number }>(
      'checkpoint:save',
      {},
    );
    saveRtt.push(performance.now() - t);
    saveServer.push(s.duration_ms);
    size = s.size_bytes;
    id = s.checkpoint_id;
  }
  const restoreServer: number[] = [];
  for (let i = 0; i < Math.max(3, Math.floor(rounds / 2)); i++) {
    const r = await d.client.request<{ restore_ms: number; restored: string[] }>('checkpoint:restore', {
      checkpoint_id: id,
    });
    if (!r.restored.includes('memo')) throw new Error('memo was not restored');
    restoreServer.push(r.restore_ms);
  }
  const dump = await d.client.request<{ size: number }>('memo:dump', { keys_only: true });
  if (dump.size !== SESSIONS) throw new Error(`restored ${dump.size} sessions, expected ${SESSIONS}`);

  // restore at boot, and SIGTERM to exit (checkpoint + test plugins; the final checkpoint holds 10k sessions)
  const bootRestore: number[] = [];
  const exitSmall: number[] = [];
  for (let i = 0; i < restarts; i++) {
    exitSmall.push(await sigtermToExit(d));
    d = await startDaemon({ home, readyTimeoutMs: 90_000 });
    const st = await d.client.request<{ boot: { restore_ms: number; restored: Record<string, number> } }>(
      'checkpoint:status',
    );
    if (st.boot.restored.memo === undefined) throw new Error('memo not restored at boot');
    bootRestore.push(st.boot.restore_ms);
  }
  exitSmall.push(await sigtermToExit(d));

  // SIGTERM to exit with every repository plugin enabled and idle (the local Messages API stands in for Anthropic)
  const api = await startMessagesApiServer();
  const exitAll: number[] = [];
  try {
    for (let i = 0; i < exits; i++) {
      const all = await startDaemon({
        env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: 'bench' },
        config: YAML.stringify(quiet),
        readyTimeoutMs: 90_000,
      });
      exitAll.push(await sigtermToExit(all));
    }
  } finally {
    await api.close();
  }

  const base = baseline(rounds);
  const saveMs = median(saveServer);
  const restoreMs = median(restoreServer);
  const bootMs = median(bootRestore);
  return {
    sessions: SESSIONS,
    state_bytes: size,
    save_ms_p50: r2(saveMs),
    save_ms_max: r2(Math.max(...saveServer)),
    save_round_trip_ms_p50: r2(median(saveRtt)),
    baseline_save_ms_p50: base.save_ms,
    save_vs_baseline: r2(saveMs / base.save_ms),
    restore_live_ms_p50: r2(restoreMs),
    restore_boot_ms_p50: r2(bootMs),
    baseline_restore_ms_p50: base.restore_ms,
    restore_vs_baseline: r2(restoreMs / base.restore_ms),
    sigterm_exit_ms_checkpoint_only_p50: r2(median(exitSmall)),
    sigterm_exit_ms_all_plugins_p50: r2(median(exitAll)),
    sigterm_exit_ms_all_plugins_max: r2(Math.max(...exitAll)),
    targets: { save_ms: 100, restore_ms: 200, sigterm_exit_ms: 500 },
    // The absolute figures move with the machine's load; the ratios to the baseline much less.
    load_avg_1m: r2(os.loadavg()[0]),
    cpus: os.cpus().length,
    within_targets: saveMs <= 100 && Math.max(restoreMs, bootMs) <= 200 && Math.max(...exitSmall, ...exitAll) <= 500,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchCheckpoint({ quick: process.argv.includes('--quick') }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
