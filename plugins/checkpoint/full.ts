/**
 * Full checkpoints: a consistent copy of the journaled state (agentd.db, every plugin's declared files
 * and directories, and what external backends capture themselves), taken online; restored into the
 * running daemon under a journal that a crash rolls forward; compared; forked into a new home.
 * The checkpoint service runs these inside its serial queue, so none of them overlaps a save or another.
 *
 * What is covered is what plugins declare (`fullState` in their definitions), read through the kernel's
 * `plugin:full_state`; nothing here knows a plugin by name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DaemonError, type PluginContext, timeOrderedId } from '../../daemon/plugin-api.js';
import type { FullStateDescription } from '../../daemon/plugin-api.js';
import { diffStates, type DiffSide, type EntityOutcome } from './full-diff.js';
import {
  copyTree,
  Cut,
  fsyncAsync,
  fsyncTreeAsync,
  restoreDir,
  restoreFile,
  restoreTables,
  schemaDifferences,
  sealCopy,
  treeBytes,
} from './full-files.js';
import { forkHome, type ForkAnswer } from './fork.js';
import { keptSummary, parseManifest, rebase, rolledBack, type Manifest, type ManifestPlugin } from './manifest.js';
import type { CheckpointConfig } from './schemas.js';
import type { CheckpointRow, CheckpointStore, RestoreJournal } from './store.js';

type Snapshot = {
  states: Record<string, { version: number; state: unknown }>;
  errors: Record<string, string>;
  dirty: boolean;
};

const round = (ms: number): number => Math.round(ms * 100) / 100;

/** Every full restore answer and save says this: spend is never rolled back. */
export const NEVER_ROLLED_BACK =
  "Money spent stays spent: the budget (ledger, limits, reservations) and the completion journal's outcomes are never rolled back; a restore rolls back agents, conversations, the graph and runs, not what they cost.";

export interface Captured {
  rel: string;
  manifest: Manifest;
  snap: Snapshot;
  timings: { cut_ms: number; copy_ms: number; seal_ms: number };
}

export class FullCheckpoints {
  constructor(
    private readonly ctx: PluginContext,
    private readonly store: CheckpointStore,
    private readonly cfg: CheckpointConfig,
  ) {}

  private get dbFile(): string {
    return this.ctx.db.name;
  }

  private abs(rel: string): string {
    return path.join(this.ctx.paths.data, rel);
  }

  describe(): Promise<FullStateDescription> {
    return this.ctx.request<FullStateDescription>(
      'plugin:full_state',
      { op: 'describe' },
      { timeoutMs: this.cfg.snapshot_timeout_ms },
    );
  }

  // ---- save ------------------------------------------------------------------------------------

  /** Refuse before copying anything when labelled full checkpoints alone leave no room. */
  precheck(_label: string | null, desc: FullStateDescription): void {
    const open = this.store.unfinishedRestores()[0];
    if (open) {
      throw new DaemonError(
        'CONFLICT',
        `the restore of checkpoint ${open.checkpoint_id} is unfinished: the state is half put back; finish it first (checkpoint:restore {checkpoint_id: ${open.checkpoint_id}}) or restart the daemon`,
        { unfinished: open.checkpoint_id },
      );
    }
    const full = this.store.listFull();
    const labelled = full.filter((r) => r.label !== null);
    if (labelled.length + 1 > this.cfg.full_keep) {
      throw new DaemonError(
        'CONFLICT',
        `${labelled.length} labelled full checkpoints already fill checkpoint.full_keep (${this.cfg.full_keep}); delete one (checkpoint:delete) or raise the limit`,
        {
          labelled: labelled.map((r) => r.id),
          full_keep: this.cfg.full_keep,
        },
      );
    }
    let estimate = treeBytes(this.dbFile) + treeBytes(`${this.dbFile}-wal`);
    for (const p of Object.values(desc.plugins)) {
      for (const f of Object.values(p.files)) estimate += treeBytes(f);
      for (const d of Object.values(p.dirs)) estimate += treeBytes(d);
    }
    const held = labelled.reduce((n, r) => n + r.full_bytes, 0);
    if (held + estimate > this.cfg.full_max_bytes) {
      throw new DaemonError(
        'CONFLICT',
        `a full checkpoint (about ${estimate} bytes) does not fit beside the labelled ones (${held} bytes) within checkpoint.full_max_bytes (${this.cfg.full_max_bytes})`,
        {
          labelled: labelled.map((r) => r.id),
          estimate_bytes: estimate,
          labelled_bytes: held,
          full_max_bytes: this.cfg.full_max_bytes,
        },
      );
    }
  }

  /**
   * The copy: external stores frozen, every SQLite file opened for reading in one synchronous block
   * (the cut), the in-memory snapshots collected, then the files copied page by page while the daemon
   * keeps serving, then directories and external captures; external stores thawed whatever happens.
   */
  async capture(desc: FullStateDescription, collect: () => Promise<Snapshot>): Promise<Captured> {
    const rel = path.join('full', timeOrderedId());
    const dir = this.abs(rel);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const manifest: Manifest = {
      format: 1,
      home: this.ctx.paths.home,
      db: 'agentd.db',
      saved_at: Date.now() / 1000,
      plugins: {},
      undeclared: desc.undeclared,
      bytes: 0,
    };
    const t0 = performance.now();
    let cut: Cut | null = null;
    let frozen: string[] = [];
    let snap: Snapshot;
    let cutMs = 0;
    try {
      frozen = (
        await this.ctx.request<{ frozen: string[] }>(
          'plugin:full_state',
          { op: 'freeze' },
          { timeoutMs: this.cfg.snapshot_timeout_ms },
        )
      ).frozen;
      const sources = [{ src: this.dbFile, dest: path.join(dir, 'agentd.db') }];
      for (const [name, p] of Object.entries(desc.plugins)) {
        const entry: ManifestPlugin = {
          tables: p.tables,
          kept: p.kept,
          kept_reason: p.kept_reason,
          schema_version: p.schema_version,
          files: {},
          dirs: {},
          external: null,
          entities: p.entities,
        };
        for (const [fname, file] of Object.entries(p.files)) {
          const copy = path.join('files', name, `${fname}.db`);
          entry.files[fname] = { path: file, copy: fs.existsSync(file) ? copy : null };
          sources.push({ src: file, dest: path.join(dir, copy) });
        }
        for (const [dname, d] of Object.entries(p.dirs))
          entry.dirs[dname] = { path: d, copy: fs.existsSync(d) ? path.join('dirs', name, dname) : null };
        manifest.plugins[name] = entry;
      }
      const c0 = performance.now();
      cut = new Cut(sources);
      cutMs = performance.now() - c0;
      snap = await collect();
      await cut.copy(this.cfg.copy_pages_per_step);
      cut.close();
      for (const [name, entry] of Object.entries(manifest.plugins)) {
        for (const d of Object.values(entry.dirs)) if (d.copy) await copyTree(d.path, path.join(dir, d.copy));
        if (frozen.includes(name)) {
          const files = (
            await this.ctx.request<{ files: Record<string, string> }>(
              'plugin:full_state',
              { op: 'capture', plugins: [name], dir: path.join(dir, 'external', name) },
              { timeoutMs: 600_000 },
            )
          ).files;
          entry.external = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, path.relative(dir, f)]));
        }
      }
    } catch (e) {
      cut?.close();
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    } finally {
      if (frozen.length)
        await this.ctx
          .request('plugin:full_state', { op: 'thaw', plugins: frozen })
          .catch((err: unknown) => this.ctx.log.error({ err }, 'thawing external stores failed'));
    }
    const copyMs = performance.now() - t0 - cutMs;
    const s0 = performance.now();
    try {
      sealCopy(path.join(dir, 'agentd.db'));
      for (const entry of Object.values(manifest.plugins))
        for (const f of Object.values(entry.files)) if (f.copy) sealCopy(path.join(dir, f.copy));
      await fsyncTreeAsync(dir);
      await fsyncAsync(path.dirname(dir));
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    manifest.bytes = treeBytes(dir);
    return {
      rel,
      manifest,
      snap: snap!,
      timings: { cut_ms: round(cutMs), copy_ms: round(copyMs), seal_ms: round(performance.now() - s0) },
    };
  }

  /**
   * Which full checkpoints retention removes to make room for one of `bytes`: the oldest unlabelled
   * first. When even that is not enough, the new copy is removed and the save refused.
   */
  prunePlan(c: Captured, label: string | null): CheckpointRow[] {
    const full = this.store.listFull();
    let count = full.length + 1;
    let bytes = full.reduce((n, r) => n + r.full_bytes, 0) + c.manifest.bytes;
    const out: CheckpointRow[] = [];
    for (const r of [...full].reverse()) {
      if (count <= this.cfg.full_keep && bytes <= this.cfg.full_max_bytes) break;
      if (r.label !== null || this.restoring(r.id)) continue;
      out.push(r);
      count--;
      bytes -= r.full_bytes;
    }
    if (count > this.cfg.full_keep || bytes > this.cfg.full_max_bytes) {
      fs.rmSync(this.abs(c.rel), { recursive: true, force: true });
      throw new DaemonError(
        'CONFLICT',
        `this full checkpoint (${c.manifest.bytes} bytes) does not fit within checkpoint.full_keep (${this.cfg.full_keep}) and full_max_bytes (${this.cfg.full_max_bytes}) beside the labelled ones; delete some (checkpoint:delete)`,
        {
          bytes: c.manifest.bytes,
          labelled: full.filter((r) => r.label !== null).map((r) => r.id),
          full_keep: this.cfg.full_keep,
          full_max_bytes: this.cfg.full_max_bytes,
          label,
        },
      );
    }
    return out;
  }

  private restoring(id: number): boolean {
    return this.store.unfinishedRestores().some((j) => j.checkpoint_id === id);
  }

  /** Remove the directories of checkpoints that are gone. */
  removeDirs(rows: CheckpointRow[]): void {
    for (const r of rows) if (r.full_dir) fs.rmSync(this.abs(r.full_dir), { recursive: true, force: true });
  }

  /** Directories under full/ that no checkpoint or unfinished restore refers to: saves a crash interrupted. */
  sweep(): number {
    const root = this.abs('full');
    if (!fs.existsSync(root)) return 0;
    const used = this.store.fullDirsInUse();
    let n = 0;
    for (const e of fs.readdirSync(root)) {
      if (used.has(path.join('full', e))) continue;
      fs.rmSync(path.join(root, e), { recursive: true, force: true });
      n++;
    }
    return n;
  }

  // ---- reading a full checkpoint ----------------------------------------------------------------

  /** The row, its manifest and its directory, or the typed reason it cannot be used. */
  open(id: number): { row: CheckpointRow; manifest: Manifest; dir: string } {
    const row = this.store.get(id);
    if (!row) throw new DaemonError('NOT_FOUND', `no checkpoint ${id}`, { checkpoint_id: id });
    if (row.scope !== 'full' || !row.full_dir) {
      throw new DaemonError(
        'CONFLICT',
        `checkpoint ${id} is a state checkpoint (the plugins' in-memory snapshots only); take one with checkpoint:save {scope: "full"}`,
        { checkpoint_id: id, scope: row.scope },
      );
    }
    const manifest = parseManifest(this.store.manifest(id));
    const dir = this.abs(row.full_dir);
    if (!manifest)
      throw new DaemonError('CONFLICT', `checkpoint ${id}'s manifest is unreadable`, { checkpoint_id: id });
    if (!fs.existsSync(path.join(dir, manifest.db)))
      throw new DaemonError('NOT_FOUND', `checkpoint ${id}'s files are missing (${dir})`, { checkpoint_id: id, dir });
    return { row, manifest, dir };
  }

  private side(m: Manifest, dir: string): DiffSide {
    const files: Record<string, string | null> = {};
    for (const [name, p] of Object.entries(m.plugins)) {
      for (const [f, c] of Object.entries(p.files)) files[`${name}/${f}`] = c.copy ? path.join(dir, c.copy) : null;
      for (const [f, c] of Object.entries(p.external ?? {})) files[`${name}/${f}`] = path.join(dir, c);
    }
    return { db: path.join(dir, m.db), files };
  }

  private liveSide(m: Manifest): DiffSide {
    const files: Record<string, string | null> = {};
    for (const [name, p] of Object.entries(m.plugins)) {
      for (const [f, c] of Object.entries(p.files)) files[`${name}/${f}`] = rebase(c.path, m.home, this.ctx.paths.home);
    }
    return { db: this.dbFile, files };
  }

  private entities(...ms: Manifest[]): Record<string, { plugin: string; entity: ManifestPlugin['entities'][string] }> {
    const out: Record<string, { plugin: string; entity: ManifestPlugin['entities'][string] }> = {};
    for (const m of ms)
      for (const [plugin, p] of Object.entries(m.plugins))
        for (const [name, entity] of Object.entries(p.entities)) out[name] ??= { plugin, entity };
    return out;
  }

  async diff(from: number, to: number | undefined, limit: number): Promise<Record<string, unknown>> {
    const a = this.open(from);
    const b = to === undefined ? null : this.open(to);
    const changes = await diffStates(
      this.side(a.manifest, a.dir),
      b ? this.side(b.manifest, b.dir) : this.liveSide(a.manifest),
      this.entities(a.manifest, ...(b ? [b.manifest] : [])),
      limit,
    );
    return { from, to: to ?? 'live', changes };
  }

  // ---- restore -----------------------------------------------------------------------------------

  /** Why this checkpoint cannot be put back into this daemon now (empty: it can). */
  private incompatibilities(m: Manifest, dir: string, desc: FullStateDescription): string[] {
    const out: string[] = [];
    const tables: string[] = [];
    for (const [name, p] of Object.entries(m.plugins)) {
      const now = desc.plugins[name];
      if (p.tables.length && now && now.schema_version !== p.schema_version)
        out.push(`${name}: schema version ${p.schema_version} at the save, ${now.schema_version} now`);
      tables.push(...p.tables);
      for (const [f, c] of Object.entries(p.files)) {
        if (c.copy)
          out.push(
            ...schemaDifferences(rebase(c.path, m.home, this.ctx.paths.home), path.join(dir, c.copy)).map(
              (d) => `${name}/${f}: ${d}`,
            ),
          );
      }
    }
    out.push(...schemaDifferences(this.dbFile, path.join(dir, m.db), tables));
    return out;
  }

  /** The plugins a restore of `m` stops and starts again: those it rolls back that run now (or that an unfinished restore holds). */
  private restartSet(m: Manifest, desc: FullStateDescription): string[] {
    return Object.entries(m.plugins)
      .filter(([name, p]) => rolledBack(p) && (desc.plugins[name]?.running || desc.plugins[name]?.status === 'stopped'))
      .map(([name]) => name);
  }

  /**
   * Put the files, directories and tables back. Files and directories first (each its own atomic
   * step), then the tables of agentd.db together with the journal's "applied": after a crash anywhere
   * in here the journal still says "applying" and the next start does it all again.
   */
  async apply(
    j: { id: number; manifest: Manifest; dir: string },
    lockTimeoutMs: number,
  ): Promise<{ files_ms: number; tables_ms: number }> {
    const t0 = performance.now();
    const m = j.manifest;
    const deadline = Date.now() + lockTimeoutMs;
    const home = this.ctx.paths.home;
    for (const p of Object.values(m.plugins)) {
      for (const f of Object.values(p.files))
        await restoreFile(rebase(f.path, m.home, home), f.copy ? path.join(j.dir, f.copy) : null, deadline);
      for (const d of Object.values(p.dirs))
        await restoreDir(rebase(d.path, m.home, home), d.copy ? path.join(j.dir, d.copy) : null);
    }
    const tables = Object.values(m.plugins).flatMap((p) => p.tables);
    const t1 = performance.now();
    await restoreTables(
      this.dbFile,
      path.join(j.dir, m.db),
      tables,
      {
        sql: "UPDATE checkpoint_restores SET phase = 'applied', updated_at = ? WHERE id = ?",
        args: [Date.now() / 1000, j.id],
      },
      deadline,
    );
    return { files_ms: round(t1 - t0), tables_ms: round(performance.now() - t1) };
  }

  /** External stores (Neo4j) are put back by their plugin, once it runs again. */
  async putBack(m: Manifest, dir: string): Promise<string[]> {
    const done: string[] = [];
    for (const [name, p] of Object.entries(m.plugins)) {
      if (!p.external) continue;
      await this.ctx.request(
        'plugin:full_state',
        { op: 'put_back', plugins: [name], dir: path.join(dir, 'external', name) },
        { timeoutMs: 600_000 },
      );
      done.push(name);
    }
    return done;
  }

  /**
   * Restore a full checkpoint into the running daemon. The journal goes first: "stopping" (nothing
   * changed yet; a crash keeps the old state), then "applying" (from here a crash finishes the
   * restore at the next start), "applied" with the tables, "done" once every plugin runs again.
   */
  async restore(
    id: number,
    states: Record<string, { version: number; state: unknown }>,
    afterSave: () => Promise<number | null>,
  ): Promise<Record<string, unknown>> {
    const t0 = performance.now();
    const { manifest: m, dir, row } = this.open(id);
    const open = this.store.unfinishedRestores();
    const other = open.find((j) => j.checkpoint_id !== id);
    if (other) {
      throw new DaemonError(
        'CONFLICT',
        `the restore of checkpoint ${other.checkpoint_id} is unfinished; finish it first (checkpoint:restore {checkpoint_id: ${other.checkpoint_id}}) or restart the daemon`,
        { unfinished: other.checkpoint_id },
      );
    }
    const desc = await this.describe();
    const bad = this.incompatibilities(m, dir, desc);
    if (bad.length) {
      throw new DaemonError(
        'CONFLICT',
        `checkpoint ${id} does not fit this daemon's schemas (${bad.slice(0, 3).join('; ')}); fork it instead (checkpoint:fork): a daemon started on the fork migrates it`,
        { checkpoint_id: id, differences: bad },
      );
    }
    const plugins = this.restartSet(m, desc);
    const prior = open.find((j) => j.checkpoint_id === id);
    const jid = prior?.id ?? this.store.beginRestore(id, this.relDir(dir), JSON.stringify(m));
    const why = `checkpoint ${id} is being restored`;
    const hold = await this.ctx.request<{ held: string[]; unfinished: string[] }>(
      'plugin:hold',
      {
        plugins,
        deadline: Date.now() + this.cfg.restore_stop_timeout_ms,
        reason: why,
      },
      { timeoutMs: this.cfg.restore_stop_timeout_ms + 10_000 },
    );
    const stoppedMs = performance.now() - t0;
    if (hold.unfinished.length) {
      // A plugin still busy past the deadline may still write: putting its tables back now could mix two states.
      this.store.setPhase(jid, 'abandoned', `did not stop in time: ${hold.unfinished.join(', ')}`);
      await this.ctx.request('plugin:resume', { plugins, states: {}, carry: true }, { timeoutMs: 120_000 });
      throw new DaemonError(
        'UNAVAILABLE',
        `${hold.unfinished.join(', ')} did not finish stopping within checkpoint.restore_stop_timeout_ms (${this.cfg.restore_stop_timeout_ms} ms); nothing was restored and they run on`,
        {
          checkpoint_id: id,
          unfinished: hold.unfinished,
        },
      );
    }
    // What this restore changes, read while nothing moves: the live state against the checkpoint.
    let changes: Record<string, EntityOutcome> = {};
    const d0 = performance.now();
    try {
      changes = await diffStates(this.liveSide(m), this.side(m, dir), this.entities(m), 100);
    } catch (err) {
      this.ctx.log.warn({ err }, 'could not list what the restore changes');
    }
    const changesMs = performance.now() - d0;
    try {
      this.store.setPhase(jid, 'applying');
    } catch (err) {
      this.store.setPhase(jid, 'abandoned', (err as Error).message);
      await this.ctx.request('plugin:resume', { plugins, states: {}, carry: true }, { timeoutMs: 120_000 });
      throw err;
    }
    const a0 = performance.now();
    let applied: { files_ms: number; tables_ms: number };
    try {
      applied = await this.apply({ id: jid, manifest: m, dir }, this.cfg.lock_timeout_ms);
    } catch (err) {
      // The old state is partly replaced: the plugins stay stopped rather than serve a mix.
      this.store.setPhase(jid, 'applying', (err as Error).message);
      this.ctx.log.error({ err, checkpoint_id: id }, 'full restore could not be applied; plugins held until it is');
      await this.ctx.request('plugin:hold', {
        plugins,
        deadline: Date.now(),
        reason: `the restore of checkpoint ${id} is unfinished: ${(err as Error).message}; ask checkpoint:restore again or restart the daemon to finish it`,
      });
      throw new DaemonError(
        'UNAVAILABLE',
        `checkpoint ${id} could not be put back: ${(err as Error).message}; ${plugins.join(', ')} stay stopped until checkpoint:restore is asked again or the daemon restarts (either finishes it)`,
        { checkpoint_id: id, plugins },
      );
    }
    const applyMs = performance.now() - a0;
    const resumed = await this.ctx.request<{ started: string[]; failed: Record<string, string> }>(
      'plugin:resume',
      { plugins, states },
      { timeoutMs: 120_000 },
    );
    // Stateful plugins the restore did not stop take their in-memory part as a state restore gives it.
    const others = Object.fromEntries(Object.entries(states).filter(([n]) => !plugins.includes(n)));
    const live = Object.keys(others).length
      ? await this.ctx.request<{ restored: string[]; skipped: Record<string, string> }>('plugin:restore', {
          states: others,
        })
      : { restored: [], skipped: {} };
    let putBack: string[] = [];
    let warning: string | undefined;
    try {
      putBack = await this.putBack(m, dir);
    } catch (err) {
      warning = `an external store could not be put back yet: ${(err as Error).message}; it is retried at the next start`;
      this.ctx.log.error({ err, checkpoint_id: id }, 'putting back external state failed');
    }
    const after = await afterSave();
    if (!warning) this.store.setPhase(jid, 'done');
    return {
      checkpoint_id: id,
      scope: 'full',
      label: row.label,
      restarted: resumed.started,
      restored: live.restored,
      skipped: live.skipped,
      failed: resumed.failed,
      put_back: putBack,
      changes,
      kept: keptSummary(m),
      never_rolled_back: NEVER_ROLLED_BACK,
      checkpoint_after: after,
      stop_ms: round(stoppedMs),
      changes_ms: round(changesMs),
      apply_ms: round(applyMs),
      ...applied,
      restore_ms: round(performance.now() - t0),
      ...(warning ? { warning } : {}),
    };
  }

  dirOf(j: RestoreJournal): string {
    return this.abs(j.dir);
  }

  private relDir(dir: string): string {
    return path.relative(this.ctx.paths.data, dir);
  }

  /**
   * At start, before any other plugin: finish what a crash interrupted. "stopping": nothing was
   * changed, the restore is abandoned. "applying": done again from the copy. "applied": only external
   * stores may be left, put back once their plugin runs. Answers the checkpoint whose in-memory parts
   * the plugins must now start from, and what is still to do after the plugins started.
   */
  async rollForward(): Promise<{
    restoredId: number | null;
    pending: Array<{ journal: RestoreJournal; manifest: Manifest }>;
    failed: Array<{ checkpoint_id: number; error: string; plugins: string[] }>;
  }> {
    let restoredId: number | null = null;
    const pending: Array<{ journal: RestoreJournal; manifest: Manifest }> = [];
    const failed: Array<{ checkpoint_id: number; error: string; plugins: string[] }> = [];
    for (const j of this.store.unfinishedRestores()) {
      const m = parseManifest(j.manifest);
      if (j.phase === 'stopping' || !m) {
        this.store.setPhase(
          j.id,
          'abandoned',
          m ? 'the daemon stopped before the restore changed anything' : 'unreadable manifest',
        );
        this.ctx.log.warn({ checkpoint_id: j.checkpoint_id }, 'unfinished restore abandoned: nothing had been changed');
        continue;
      }
      if (j.phase === 'applying') {
        try {
          // The other plugins have not started; keep well inside the start timeout.
          await this.apply({ id: j.id, manifest: m, dir: this.abs(j.dir) }, Math.min(this.cfg.lock_timeout_ms, 20_000));
        } catch (err) {
          this.store.setPhase(j.id, 'applying', (err as Error).message);
          failed.push({
            checkpoint_id: j.checkpoint_id,
            error: (err as Error).message,
            plugins: Object.entries(m.plugins)
              .filter(([, p]) => rolledBack(p))
              .map(([n]) => n),
          });
          continue;
        }
        this.ctx.log.warn({ checkpoint_id: j.checkpoint_id }, 'unfinished restore finished at start');
      }
      restoredId = j.checkpoint_id;
      if (Object.values(m.plugins).some((p) => p.external)) pending.push({ journal: j, manifest: m });
      else this.store.setPhase(j.id, 'done');
    }
    return { restoredId, pending, failed };
  }

  // ---- fork ----------------------------------------------------------------------------------

  fork(id: number, home: string): Promise<ForkAnswer> {
    const { row, manifest, dir } = this.open(id);
    return forkHome({ home, originHome: this.ctx.paths.home, dir, manifest, row, parts: this.store.parts(id) });
  }
}
