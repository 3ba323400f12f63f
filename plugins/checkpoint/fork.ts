/**
 * checkpoint:fork: a new AGENTD_HOME holding a full checkpoint's state, for a second daemon to run the
 * branch side by side. Built in a hidden sibling directory and renamed into place, so the home either
 * appears whole or not at all; private from the start (directories 0700, databases 0600). The fork's
 * own checkpoint tables say where it came from, and its first start restores the checkpoint's
 * in-memory parts as a boot restore would.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DaemonError } from '../../daemon/plugin-api.js';
import { copyTree, fsyncAsync, fsyncTreeAsync, treeBytes } from './full-files.js';
import { inside, rebase, type Manifest } from './manifest.js';
import type { CheckpointRow, StoredPart } from './store.js';

export interface ForkInput {
  home: string;
  originHome: string;
  /** The checkpoint's directory. */
  dir: string;
  manifest: Manifest;
  row: CheckpointRow;
  parts: StoredPart[];
}

export interface ForkAnswer {
  home: string;
  checkpoint_id: number;
  origin: { home: string; checkpoint_id: number; label: string | null; saved_at: number };
  bytes: number;
  duration_ms: number;
  start: string;
  notes: string[];
}

/** The target must be a new path, or an empty directory of ours that nobody else can write and that is no symlink. */
function checkTarget(home: string, originHome: string): { exists: boolean } {
  const bad = (message: string, code: 'INVALID_DATA' | 'CONFLICT' = 'CONFLICT'): DaemonError =>
    new DaemonError(code, message, {
      home,
      ...(code === 'INVALID_DATA' ? { issues: [{ path: ['home'], message }] } : {}),
    });
  if (!path.isAbsolute(home)) throw bad('home must be an absolute path', 'INVALID_DATA');
  if (inside(originHome, home) || inside(home, originHome))
    throw bad(`home must be outside this daemon's home (${originHome}) and not contain it`, 'INVALID_DATA');
  const parent = path.dirname(home);
  if (!fs.existsSync(parent))
    throw new DaemonError('NOT_FOUND', `the parent directory ${parent} does not exist`, { home });
  let st: fs.Stats;
  try {
    st = fs.lstatSync(home);
  } catch {
    return { exists: false };
  }
  if (st.isSymbolicLink()) throw bad(`${home} is a symbolic link`);
  if (!st.isDirectory()) throw bad(`${home} exists and is not a directory`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw bad(`${home} belongs to another user`);
  if (st.mode & 0o022) throw bad(`${home} is writable by others`);
  if (fs.readdirSync(home).length > 0) throw bad(`${home} is not empty`);
  return { exists: true };
}

/** The fork's checkpoint tables: none of the origin's full checkpoints (their files stay there), its origin, and the checkpoint's parts as its head. */
function adoptCheckpoint(file: string, f: ForkInput, forkedAt: number): void {
  const db = new Database(file);
  try {
    db.pragma('synchronous = FULL');
    db.transaction(() => {
      db.exec(`DELETE FROM checkpoint_parts WHERE checkpoint_id IN (SELECT id FROM checkpoint_checkpoints WHERE scope = 'full');
               DELETE FROM checkpoint_checkpoints WHERE scope = 'full';
               DELETE FROM checkpoint_restores; DELETE FROM checkpoint_boots; DELETE FROM checkpoint_origin;`);
      const r = f.row;
      db.prepare(
        `INSERT OR REPLACE INTO checkpoint_checkpoints (id, parent_id, label, reason, created_at, duration_ms, size_bytes, plugins, errors, format, scope)
                  VALUES (?, ?, ?, 'fork', ?, ?, ?, ?, ?, ?, 'state')`,
      ).run(
        r.id,
        r.parent_id,
        r.label,
        r.created_at,
        r.duration_ms,
        r.size_bytes,
        JSON.stringify(r.plugins),
        JSON.stringify(r.errors),
        r.format,
      );
      const part = db.prepare(
        'INSERT OR REPLACE INTO checkpoint_parts (checkpoint_id, plugin, version, sha256, state) VALUES (?, ?, ?, ?, ?)',
      );
      for (const p of f.parts) part.run(r.id, p.plugin, p.version, p.sha256, p.state);
      db.prepare(
        'INSERT INTO checkpoint_origin (id, origin_home, checkpoint_id, label, saved_at, forked_at) VALUES (1, ?, ?, ?, ?, ?)',
      ).run(f.originHome, r.id, r.label, r.created_at, forkedAt);
    })();
  } finally {
    db.close();
  }
}

export async function forkHome(f: ForkInput): Promise<ForkAnswer> {
  const t0 = performance.now();
  const home = path.normalize(f.home);
  const { exists } = checkTarget(home, f.originHome);
  const tmp = path.join(
    path.dirname(home),
    `.${path.basename(home)}.forking-${process.pid}-${crypto.randomBytes(4).toString('hex')}`,
  );
  const notes: string[] = [];
  const m = f.manifest;
  try {
    fs.mkdirSync(tmp, { mode: 0o700 });
    for (const d of ['db', 'run', 'logs']) fs.mkdirSync(path.join(tmp, d), { mode: 0o700 });
    const db = path.join(tmp, 'db', 'agentd.db');
    await fs.promises.copyFile(path.join(f.dir, m.db), db);
    fs.chmodSync(db, 0o600);
    adoptCheckpoint(db, f, Date.now() / 1000);
    // Under the origin's home: the same place under the fork's. Elsewhere: into the fork's db/, and say so.
    const place = (p: string, fallback: string): string => {
      if (inside(p, m.home)) return rebase(p, m.home, tmp);
      notes.push(
        `${p} was outside the origin's home; the fork has it at ${rebase(fallback, tmp, home)} (point the fork's configuration there)`,
      );
      return fallback;
    };
    for (const [plugin, p] of Object.entries(m.plugins)) {
      for (const [name, file] of Object.entries(p.files)) {
        if (!file.copy) continue;
        const dest = place(file.path, path.join(tmp, 'db', `${plugin}-${name}.db`));
        fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
        await fs.promises.copyFile(path.join(f.dir, file.copy), dest);
        fs.chmodSync(dest, 0o600);
      }
      for (const [name, d] of Object.entries(p.dirs)) {
        if (!d.copy) continue;
        const dest = place(d.path, path.join(tmp, `${plugin}-${name}`));
        fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
        await copyTree(path.join(f.dir, d.copy), dest);
      }
      for (const [name, copy] of Object.entries(p.external ?? {})) {
        // Captured from a backend outside the home (Neo4j): the fork gets it as the plugin's own file format.
        const dest = path.join(tmp, 'db', `${name}.db`);
        await fs.promises.copyFile(path.join(f.dir, copy), dest);
        fs.chmodSync(dest, 0o600);
        notes.push(
          `${plugin}'s state was captured from an external backend; the fork has it in ${path.join(home, 'db', `${name}.db`)}: start the fork with its embedded backend (e.g. AGENTD_KG_BACKEND=embedded), or import it into another database, so the two daemons do not share one`,
        );
      }
    }
    await fsyncTreeAsync(tmp);
    if (exists) fs.rmdirSync(home);
    fs.renameSync(tmp, home);
    await fsyncAsync(path.dirname(home));
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return {
    home,
    checkpoint_id: f.row.id,
    origin: { home: f.originHome, checkpoint_id: f.row.id, label: f.row.label, saved_at: f.row.created_at },
    bytes: treeBytes(home),
    duration_ms: Math.round((performance.now() - t0) * 100) / 100,
    start: `AGENTD_HOME=${home} daemon-control start`,
    notes,
  };
}
