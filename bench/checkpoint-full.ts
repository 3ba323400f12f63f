/**
 * Full checkpoints of a large state, on a real daemon (the bundled build `daemon-control start` runs):
 * 10,000 agents with their histories and turns, and a knowledge graph of 100,000 nodes and 200,000 edges.
 *  - save: checkpoint:save {scope: "full"} — the daemon's own duration (cut, page copy, seal) and the
 *    round trip; system:ping answered meanwhile (the save is online: how long does a ping wait?);
 *  - restore: checkpoint:restore of that checkpoint after changes — plugins stopped, tables and the
 *    graph put back under the journal, plugins started again; ping meanwhile;
 *  - baselines, same run, same files: a plain file copy (`cp` of agentd.db and kg.db with their WALs,
 *    what a user would do, though a copy of files being written is not a consistent state), and the
 *    two SQLite ways of copying a live database from another connection: the backup API (what the
 *    checkpoint uses) and VACUUM INTO.
 * Run alone: `npx tsx bench/checkpoint-full.ts [--quick]`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { builtDaemonArgs, ensureBuilt } from '../daemon/build.js';
import type { EventClient } from '../client/event-client.js';
import { startMessagesApiServer } from '../test/fixtures/messages-api-server.js';
import { ROOT, startDaemon, type DaemonHandle } from '../test/helpers/daemon-process.js';
import { fullConfig } from '../test/checkpoint/full-helpers.js';

const r2 = (x: number): number => Math.round(x * 100) / 100;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

/** Keeps one system:ping outstanding until stopped; the latencies tell how long the event loop was held. */
function pinger(c: EventClient): { stop(): Promise<{ n: number; p50_ms: number; p99_ms: number; max_ms: number }> } {
  const lat: number[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const t = performance.now();
      await c.request('system:ping', {});
      lat.push(performance.now() - t);
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return { n: lat.length, p50_ms: r2(pct(lat, 0.5)), p99_ms: r2(pct(lat, 0.99)), max_ms: r2(Math.max(...lat)) };
    },
  };
}

/** 10,000 agents (each a copy of a real one, with its history grown to `messages`) and a graph of `nodes` nodes, two edges each. */
function populate(home: string, agents: number, messages: number, nodes: number): void {
  const db = new Database(path.join(home, 'db', 'agentd.db'));
  try {
    const cols = (
      db.prepare("SELECT name FROM pragma_table_info('agent_agents')").all() as Array<{ name: string }>
    ).map((c) => c.name);
    const tpl = db
      .prepare("SELECT role, content FROM agent_messages WHERE agent_id = 'template' ORDER BY idx")
      .all() as Array<{ role: string; content: string }>;
    const turn = db.prepare("SELECT * FROM agent_turns WHERE agent_id = 'template'").get() as Record<string, unknown>;
    const turnCols = Object.keys(turn);
    db.transaction(() => {
      db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${agents - 1})
               INSERT INTO agent_agents (${cols.join(', ')}) SELECT ${cols.map((c) => (c === 'agent_id' ? "printf('bench-%05d', i)" : c)).join(', ')}
               FROM agent_agents, n WHERE agent_id = 'template'`);
      const msg = db.prepare(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${agents - 1})
               INSERT INTO agent_messages (agent_id, idx, turn_id, role, content, created_at) SELECT printf('bench-%05d', i), ?, printf('t-bench-%05d-%d', i, ? / 2), ?, ?, 1764000000 FROM n`);
      for (let k = 0; k < messages; k++) msg.run(k, k, tpl[k % 2]!.role, tpl[k % 2]!.content);
      const tcopy = db.prepare(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${agents - 1})
               INSERT INTO agent_turns (${turnCols.join(', ')}) SELECT ${turnCols.map((c) => (c === 'turn_id' ? "printf('t-bench-%05d-%d', i, ?)" : c === 'agent_id' ? "printf('bench-%05d', i)" : c)).join(', ')}
               FROM agent_turns, n WHERE agent_turns.agent_id = 'template'`);
      for (let t = 0; t < messages / 2; t++) tcopy.run(t);
    })();
  } finally {
    db.close();
  }
  const kg = new Database(path.join(home, 'db', 'kg.db'));
  try {
    kg.transaction(() => {
      kg.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${nodes - 1})
               INSERT INTO kg_nodes (id, label, props) SELECT printf('n%06d', i), CASE i % 4 WHEN 0 THEN 'Paper' WHEN 1 THEN 'Concept' WHEN 2 THEN 'Hypothesis' ELSE 'Finding' END,
               json_object('name', 'node ' || i, 'year', 2000 + i % 25, 'score', i % 100) FROM n`);
      kg.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${nodes - 1})
               INSERT OR IGNORE INTO kg_edges (src, type, dst, props) SELECT printf('n%06d', i), 'RELATES_TO', printf('n%06d', (i + 1) % ${nodes}), '{}' FROM n
               UNION ALL SELECT printf('n%06d', i), 'CITES', printf('n%06d', (i * 7 + 3) % ${nodes}), json_object('weight', i % 10) FROM n`);
    })();
  } finally {
    kg.close();
  }
}

const size = (f: string): number => (fs.existsSync(f) ? fs.statSync(f).size : 0);

/** The same databases copied three ways by a process of its own, while the daemon runs. */
function baselines(home: string, rounds: number): Record<string, unknown> {
  const files = ['agentd.db', 'kg.db'].map((f) => path.join(home, 'db', f));
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-full-'));
  const copy: number[] = [];
  const vacuum: number[] = [];
  try {
    let bytes = 0;
    for (let r = 0; r < rounds; r++) {
      let t = performance.now();
      bytes = 0;
      for (const f of files) {
        for (const s of ['', '-wal']) {
          if (!fs.existsSync(f + s)) continue;
          fs.copyFileSync(f + s, path.join(out, path.basename(f) + s));
          bytes += size(f + s);
        }
      }
      copy.push(performance.now() - t);
      t = performance.now();
      for (const f of files) {
        const db = new Database(f, { readonly: true });
        const dest = path.join(out, `vac-${r}-${path.basename(f)}`);
        db.exec(`VACUUM INTO '${dest}'`);
        db.close();
      }
      vacuum.push(performance.now() - t);
    }
    return { file_copy_ms: r2(median(copy)), file_bytes: bytes, vacuum_into_ms: r2(median(vacuum)) };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

async function backupApi(home: string): Promise<number> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'agentd-bench-bk-'));
  try {
    const t = performance.now();
    for (const f of ['agentd.db', 'kg.db']) {
      const db = new Database(path.join(home, 'db', f), { readonly: true });
      db.exec('BEGIN');
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      await db.backup(path.join(out, f), { progress: () => 1024 });
      db.exec('COMMIT');
      db.close();
    }
    return performance.now() - t;
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

export async function benchCheckpointFull(opts: { quick: boolean }): Promise<Record<string, unknown>> {
  const agents = opts.quick ? 1_000 : 10_000;
  const nodes = opts.quick ? 10_000 : 100_000;
  const messages = 20;
  const rounds = opts.quick ? 1 : 3;
  const api = await startMessagesApiServer();
  const nodeArgs = builtDaemonArgs((await ensureBuilt(ROOT)).entry);
  const start = (home?: string): Promise<DaemonHandle> =>
    startDaemon({
      ...(home ? { home } : {}),
      nodeArgs,
      readyTimeoutMs: 120_000,
      env: {
        ANTHROPIC_BASE_URL: api.url,
        ANTHROPIC_API_KEY: 'bench',
        AGENTD_DAEMON_LOG_LEVEL: 'warn',
        AGENTD_AGENT_MAX_AGENTS: '100000',
      },
      config: fullConfig({ sandbox: false }),
    });
  let d = await start();
  const home = d.home;
  try {
    // One real agent with one real turn: the template every bench agent is a copy of.
    await d.client.request('agent:spawn', { agent_id: 'template', system: 'You are a research assistant.' });
    await d.client.request(
      'agent:send',
      { agent_id: 'template', message: 'Summarise the findings on protein folding so far.' },
      { timeoutMs: 60_000 },
    );
    await d.client.request('kg:stats', {});
    await d.stop();
    populate(home, agents, messages, nodes);
    d = await start(home);
    const idle = pinger(d.client);
    await new Promise((r) => setTimeout(r, 1000));
    const pingIdle = await idle.stop();

    const saves: Array<Record<string, number>> = [];
    const pingSave: Array<Record<string, number>> = [];
    let id = 0;
    let bytes = 0;
    for (let r = 0; r < rounds; r++) {
      const p = pinger(d.client);
      const t = performance.now();
      const s = await d.client.request<{
        checkpoint_id: number;
        duration_ms: number;
        full: { bytes: number; cut_ms: number; copy_ms: number; seal_ms: number };
      }>('checkpoint:save', { scope: 'full' }, { timeoutMs: 600_000 });
      saves.push({
        round_trip_ms: performance.now() - t,
        duration_ms: s.duration_ms,
        cut_ms: s.full.cut_ms,
        copy_ms: s.full.copy_ms,
        seal_ms: s.full.seal_ms,
      });
      pingSave.push(await p.stop());
      id = s.checkpoint_id;
      bytes = s.full.bytes;
    }
    const restores: Array<Record<string, number>> = [];
    const pingRestore: Array<Record<string, number>> = [];
    for (let r = 0; r < rounds; r++) {
      await d.client.request('kg:add_nodes', { nodes: [{ id: `extra-${r}`, label: 'Finding' }] });
      await d.client.request('agent:spawn', { agent_id: `extra-${r}`, system: 'x' });
      const p = pinger(d.client);
      const t = performance.now();
      const x = await d.client.request<Record<string, number>>(
        'checkpoint:restore',
        { checkpoint_id: id },
        { timeoutMs: 600_000 },
      );
      restores.push({ round_trip_ms: performance.now() - t, ...x });
      pingRestore.push(await p.stop());
    }
    const st = await d.client.request<{ nodes: number; edges: number }>('kg:stats', {});
    const list = await d.client.request<{ agents: unknown[] }>('agent:list', { limit: 10_000 });
    if (st.nodes !== nodes || list.agents.length !== Math.min(10_000, agents + 1))
      throw new Error(`restored ${st.nodes} nodes and ${list.agents.length} agents`);
    const base = baselines(home, rounds);
    const bk = await backupApi(home);
    const m = (xs: Array<Record<string, number>>, k: string): number => r2(median(xs.map((x) => x[k]!)));
    const saveMs = m(saves, 'duration_ms');
    const restoreMs = m(restores, 'restore_ms');
    const copyMs = base.file_copy_ms as number;
    return {
      agents,
      messages_per_agent: messages,
      nodes,
      edges: st.edges,
      databases_bytes: base.file_bytes,
      checkpoint_bytes: bytes,
      save: {
        duration_ms: saveMs,
        round_trip_ms: m(saves, 'round_trip_ms'),
        cut_ms: m(saves, 'cut_ms'),
        copy_ms: m(saves, 'copy_ms'),
        seal_ms: m(saves, 'seal_ms'),
      },
      ping_idle: pingIdle,
      ping_during_save: pingSave[pingSave.length - 1],
      restore: {
        restore_ms: restoreMs,
        round_trip_ms: m(restores, 'round_trip_ms'),
        stop_ms: m(restores, 'stop_ms'),
        changes_ms: m(restores, 'changes_ms'),
        apply_ms: m(restores, 'apply_ms'),
        files_ms: m(restores, 'files_ms'),
        tables_ms: m(restores, 'tables_ms'),
      },
      ping_during_restore: pingRestore[pingRestore.length - 1],
      baseline: { file_copy_ms: copyMs, backup_api_ms: r2(bk), vacuum_into_ms: base.vacuum_into_ms },
      save_vs_file_copy: r2(saveMs / copyMs),
      restore_vs_file_copy: r2(restoreMs / copyMs),
      load_avg_1m: r2(os.loadavg()[0]!),
      cpus: os.cpus().length,
    };
  } finally {
    await d.stop().catch(() => undefined);
    await api.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchCheckpointFull({ quick: process.argv.includes('--quick') }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
