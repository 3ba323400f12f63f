/**
 * The checkpoint service: collects every stateful plugin's snapshot through the kernel
 * (`plugin:snapshot`) into one SQLite transaction, restores at boot (newest intact, compatible part
 * per plugin, before any other plugin starts) and live (`plugin:restore`), keeps lineage and
 * retention, and takes the final checkpoint at shutdown after every other plugin stopped.
 *
 * Saves and restores are serialised through one bounded queue: concurrent `checkpoint:save` calls
 * each get their own checkpoint, in arrival order, each the parent of the next.
 */
import { performance } from 'node:perf_hooks';
import { DaemonError, type PluginContext } from '../../daemon/plugin-api.js';
import type { CheckpointConfig } from './schemas.js';
import { SerialQueue } from './serial.js';
import {
  CheckpointStore,
  FORMAT,
  MIGRATIONS,
  verifyPart,
  type BootRecord,
  type CheckpointRow,
  type PartInput,
} from './store.js';
import { FullCheckpoints, NEVER_ROLLED_BACK, type Captured } from './full.js';
import { keptSummary } from './manifest.js';

export type SaveReason = 'manual' | 'periodic' | 'shutdown' | 'restore';
type States = Record<string, { version: number; state: unknown }>;

interface SnapshotAnswer {
  states: Record<string, { version: number; state: unknown }>;
  errors: Record<string, string>;
  dirty: boolean;
}

interface RestoreAnswer {
  restored: string[];
  skipped: Record<string, string>;
}

/** What one save produced, as answered by checkpoint:save and emitted as checkpoint:saved. */
export interface SaveSummary {
  checkpoint_id: number;
  parent_id: number | null;
  label: string | null;
  reason: string;
  created_at: number;
  plugins: string[];
  errors: Record<string, string>;
  complete: boolean;
  size_bytes: number;
  duration_ms: number;
  write_ms: number;
  pruned: number;
  scope: 'state' | 'full';
  /** Full checkpoints: what the copy holds, what it took, and what a restore of it never rolls back. */
  full?: Record<string, unknown>;
}

/**
 * Kept in the plugin's processState, which survives a hot reload of this plugin but not a restart:
 * it is how a reloaded checkpoint plugin knows the boot restore already happened in this process and
 * must not be replayed into plugins that have been serving since.
 */
interface ProcessBoot {
  bootId: number | null;
  head: number | null;
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

export function describeCheckpoint(row: CheckpointRow): Record<string, unknown> {
  return {
    id: row.id,
    parent_id: row.parent_id,
    label: row.label,
    reason: row.reason,
    created_at: row.created_at,
    age_s: Math.round((Date.now() / 1000 - row.created_at) * 10) / 10,
    size_bytes: row.size_bytes,
    duration_ms: row.duration_ms,
    plugins: row.plugins,
    errors: row.errors,
    complete: Object.keys(row.errors).length === 0,
    scope: row.scope,
    ...(row.scope === 'full' ? { full_bytes: row.full_bytes } : {}),
  };
}

export class CheckpointService {
  private readonly store: CheckpointStore;
  private readonly full: FullCheckpoints;
  private readonly queue: SerialQueue;
  private readonly boot: ProcessBoot;
  private timer: NodeJS.Timeout | null = null;
  /** After a failed write the dirty flags were already consumed: the next periodic save must not skip. */
  private forceFull = false;
  private lastSave: SaveSummary | null = null;
  private bootRestoreMs: number | null = null;
  readonly stats = { saves: 0, periodic_skipped_clean: 0, failures: 0, live_restores: 0 };

  constructor(
    private readonly ctx: PluginContext,
    private readonly cfg: CheckpointConfig,
  ) {
    ctx.migrate(MIGRATIONS);
    this.store = new CheckpointStore(ctx.db);
    this.queue = new SerialQueue(cfg.max_pending);
    this.full = new FullCheckpoints(ctx, this.store, cfg);
    const kept = ctx.processState as { boot?: ProcessBoot };
    this.boot = kept.boot ??= { bootId: null, head: null };
  }

  get head(): number | null {
    return this.boot.head;
  }

  /** Restore at boot (once per process), then start the periodic timer. Never throws. */
  async start(): Promise<void> {
    if (this.boot.bootId !== null) {
      this.ctx.log.info(
        { boot_id: this.boot.bootId, head_id: this.boot.head },
        'boot restore already done in this process, not replayed',
      );
    } else {
      try {
        await this.finishRestores();
        await this.restoreAtBoot();
      } catch (err) {
        // The daemon must come up even when the checkpoints cannot be read: say so, serve without them.
        this.ctx.log.error({ err }, 'restore at boot failed');
        // Attempted is enough: a reload of this plugin must not try again into plugins already serving.
        if (this.boot.bootId === null) this.boot.bootId = 0;
        this.ctx.setStatus('degraded', `restore at boot failed: ${(err as Error).message}`);
      }
    }
    if (this.cfg.interval_ms > 0) {
      this.timer = setInterval(() => this.tick(), this.cfg.interval_ms);
      this.timer.unref();
    }
  }

  /** Final checkpoint at shutdown (after every other plugin stopped); on a reload only drain. */
  async stop(): Promise<SaveSummary | null> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.queue.idle();
    if (!this.ctx.shuttingDown) return null;
    const s = await this.save({ reason: 'shutdown' });
    if (s)
      this.ctx.log.info(
        { checkpoint_id: s.checkpoint_id, size_bytes: s.size_bytes, duration_ms: s.duration_ms, errors: s.errors },
        'final checkpoint taken',
      );
    return s;
  }

  private tick(): void {
    if (this.ctx.shuttingDown || this.queue.busy) return;
    this.save({ reason: 'periodic', onlyDirty: true }).catch((err: unknown) =>
      this.ctx.log.error({ err }, 'periodic checkpoint failed'),
    );
  }

  /**
   * Before the boot restore (and before any other plugin starts): finish a full restore a crash
   * interrupted, so every plugin starts on one state, never a mix; remove copies of saves a crash cut short.
   */
  private async finishRestores(): Promise<void> {
    const swept = this.full.sweep();
    if (swept) this.ctx.log.info({ swept }, 'removed copies of full checkpoints a crash interrupted');
    const r = await this.full.rollForward();
    if (r.restoredId !== null) {
      // The restored checkpoint's in-memory parts are what the plugins start from: make them the newest.
      const parts = this.store
        .parts(r.restoredId)
        .map((p) => ({ plugin: p.plugin, version: p.version, json: p.state }));
      const row = this.store.insert({
        parentId: r.restoredId,
        label: null,
        reason: 'restore',
        durationMs: 0,
        parts,
        errors: {},
        keep: this.cfg.keep,
      }).row;
      this.boot.head = row.id;
    }
    for (const f of r.failed) {
      await this.ctx.request('plugin:hold', {
        plugins: f.plugins,
        deadline: Date.now(),
        reason: `the restore of checkpoint ${f.checkpoint_id} is unfinished (${f.error}); ask checkpoint:restore {checkpoint_id: ${f.checkpoint_id}} or restart the daemon`,
      });
      this.ctx.setStatus('degraded', `the restore of checkpoint ${f.checkpoint_id} is unfinished: ${f.error}`);
    }
    if (r.pending.length === 0) return;
    const off = this.ctx.subscribe('system:ready', async () => {
      off();
      for (const p of r.pending) {
        try {
          await this.full.putBack(p.manifest, this.full.dirOf(p.journal));
          this.store.setPhase(p.journal.id, 'done');
        } catch (err) {
          this.ctx.log.error(
            { err, checkpoint_id: p.journal.checkpoint_id },
            'putting back external state failed; retried at the next start',
          );
        }
      }
    });
  }

  /** Queue one save. Resolves to null only for a periodic save that found nothing changed. */
  save(opts: {
    label?: string | null;
    reason: SaveReason;
    onlyDirty?: boolean;
    scope?: 'state' | 'full';
  }): Promise<SaveSummary | null> {
    if (opts.scope === 'full' && this.ctx.shuttingDown)
      return Promise.reject(
        new DaemonError(
          'SHUTTING_DOWN',
          'the daemon is shutting down; a full checkpoint now would copy a state being stopped',
        ),
      );
    return this.queue.run(() => this.doSave(opts));
  }

  private async doSave({
    label = null,
    reason,
    onlyDirty = false,
    scope = 'state',
  }: {
    label?: string | null;
    reason: SaveReason;
    onlyDirty?: boolean;
    scope?: 'state' | 'full';
  }): Promise<SaveSummary | null> {
    const t0 = performance.now();
    const only = onlyDirty && !this.forceFull && scope === 'state';
    let snap: SnapshotAnswer;
    let captured: Captured | null = null;
    const collect = (): Promise<SnapshotAnswer> =>
      this.ctx.request<SnapshotAnswer>(
        'plugin:snapshot',
        { only_dirty: only },
        { timeoutMs: this.cfg.snapshot_timeout_ms },
      );
    try {
      if (scope === 'full') {
        const desc = await this.full.describe();
        this.full.precheck(label, desc);
        captured = await this.full.capture(desc, collect);
        snap = captured.snap;
      } else snap = await collect();
    } catch (err) {
      this.forceFull = true;
      this.stats.failures++;
      throw err;
    }
    if (only && !snap.dirty) {
      this.stats.periodic_skipped_clean++;
      return null;
    }
    const parts: PartInput[] = [];
    const errors: Record<string, string> = { ...snap.errors };
    for (const [plugin, part] of Object.entries(snap.states)) {
      try {
        parts.push({ plugin, version: part.version, json: JSON.stringify(part.state) ?? 'null' });
      } catch (err) {
        errors[plugin] = `snapshot is not JSON-serialisable: ${(err as Error).message}`;
      }
    }
    const collectMs = performance.now() - t0;
    let written: ReturnType<CheckpointStore['insert']>;
    const pruneFull = captured ? this.full.prunePlan(captured, label) : [];
    try {
      written = this.store.insert({
        parentId: this.boot.head,
        label,
        reason,
        durationMs: round(collectMs),
        parts,
        errors,
        keep: this.cfg.keep,
        ...(captured
          ? {
              full: { dir: captured.rel, bytes: captured.manifest.bytes, manifest: JSON.stringify(captured.manifest) },
              pruneFull: pruneFull.map((r) => r.id),
            }
          : {}),
      });
      this.full.removeDirs(pruneFull);
    } catch (err) {
      if (captured) this.full.removeDirs([{ full_dir: captured.rel } as CheckpointRow]);
      this.forceFull = true;
      this.stats.failures++;
      this.ctx.log.error({ err, reason }, 'checkpoint write failed');
      throw new DaemonError('UNAVAILABLE', `the checkpoint could not be written: ${(err as Error).message}`);
    }
    this.forceFull = false;
    const { row, pruned } = written;
    this.boot.head = row.id;
    this.stats.saves++;
    const total = performance.now() - t0;
    const summary: SaveSummary = {
      checkpoint_id: row.id,
      parent_id: row.parent_id,
      label: row.label,
      reason,
      created_at: row.created_at,
      plugins: row.plugins,
      errors,
      complete: Object.keys(errors).length === 0,
      size_bytes: row.size_bytes,
      duration_ms: round(total),
      write_ms: round(total - collectMs),
      pruned,
      scope,
      ...(captured
        ? {
            full: {
              bytes: captured.manifest.bytes,
              ...captured.timings,
              online: true,
              covered: Object.fromEntries(
                Object.entries(captured.manifest.plugins).map(([n, p]) => [
                  n,
                  {
                    tables: p.tables,
                    files: Object.keys(p.files),
                    dirs: Object.keys(p.dirs),
                    external: p.external ? Object.keys(p.external) : [],
                  },
                ]),
              ),
              kept: keptSummary(captured.manifest),
              never_rolled_back: NEVER_ROLLED_BACK,
              pruned_full: pruneFull.map((r) => r.id),
            },
          }
        : {}),
    };
    this.lastSave = summary;
    if (!summary.complete)
      this.ctx.log.warn({ checkpoint_id: row.id, errors }, 'checkpoint taken without some plugins');
    else
      this.ctx.log.debug(
        { checkpoint_id: row.id, reason, size_bytes: row.size_bytes, ms: summary.duration_ms },
        'checkpoint taken',
      );
    this.ctx.emit('checkpoint:saved', { ...summary });
    return summary;
  }

  /**
   * Boot restore: for every loaded plugin, the newest checkpoint part that is intact and that the
   * plugin accepts (same version, restore() did not throw); damaged or incompatible parts are
   * reported and an older checkpoint's part is tried instead. The outcome is recorded as a boot.
   */
  private async restoreAtBoot(): Promise<void> {
    const t0 = performance.now();
    const list = await this.ctx.request<{ plugins: Array<{ name: string; status: string }> }>('plugin:list');
    const loaded = new Set(
      list.plugins
        .filter(
          (p) => p.name !== this.ctx.name && (p.status === 'loading' || p.status === 'ok' || p.status === 'degraded'),
        )
        .map((p) => p.name),
    );
    const checkpoints = this.store.list(this.cfg.fallback_depth);
    const restored: Record<string, number> = {};
    const skipped: BootRecord['skipped'] = [];
    const corrupt: BootRecord['corrupt'] = [];
    const stored = this.store.pluginsStored();
    for (const p of stored)
      if (!loaded.has(p))
        skipped.push({ checkpoint_id: checkpoints[0]?.id ?? 0, plugin: p, reason: 'plugin not loaded' });
    const wanted = new Set(stored.filter((p) => loaded.has(p)));
    for (const cp of checkpoints) {
      if (wanted.size === 0) break;
      if (cp.format !== FORMAT) {
        corrupt.push({
          checkpoint_id: cp.id,
          plugin: null,
          reason: `stored in format ${cp.format}; this version reads format ${FORMAT}`,
        });
        continue;
      }
      const states: Record<string, { version: number; state: unknown }> = {};
      for (const meta of this.store.partIndex(cp.id)) {
        if (!wanted.has(meta.plugin)) continue;
        const part = this.store.part(cp.id, meta.plugin);
        const v = part ? verifyPart(part) : { ok: false as const, reason: 'part vanished' };
        if (!v.ok) {
          corrupt.push({ checkpoint_id: cp.id, plugin: meta.plugin, reason: v.reason });
          continue;
        }
        states[meta.plugin] = { version: meta.version, state: v.state };
      }
      if (Object.keys(states).length === 0) continue;
      const r = await this.ctx.request<RestoreAnswer>('plugin:restore', { states });
      for (const name of r.restored) {
        restored[name] = cp.id;
        wanted.delete(name);
      }
      for (const [plugin, reason] of Object.entries(r.skipped)) skipped.push({ checkpoint_id: cp.id, plugin, reason });
    }
    const ids = Object.values(restored);
    this.boot.head = ids.length ? Math.max(...ids) : null;
    const newest = checkpoints[0]?.id ?? null;
    const fallbacks = Object.entries(restored)
      .filter(([, id]) => id !== newest)
      .map(([p]) => p);
    this.boot.bootId = this.store.recordBoot({
      pid: process.pid,
      started_at: Date.now() / 1000,
      head_id: this.boot.head,
      restored,
      skipped,
      corrupt,
    });
    this.bootRestoreMs = round(performance.now() - t0);
    const fields = { boot_id: this.boot.bootId, head_id: this.boot.head, restored, fallbacks, ms: this.bootRestoreMs };
    if (corrupt.length || skipped.length)
      this.ctx.log.warn({ ...fields, skipped, corrupt }, 'checkpoint restored at boot with problems');
    else this.ctx.log.info(fields, checkpoints.length ? 'checkpoint restored at boot' : 'no checkpoint to restore');
    this.ctx.emit('checkpoint:restored', {
      live: false,
      checkpoint_id: this.boot.head,
      boot_id: this.boot.bootId,
      restored,
      fallbacks,
      skipped,
      corrupt,
    });
  }

  /** Live restore of one checkpoint into the running plugins, then a checkpoint of the result. */
  restore(id: number): Promise<Record<string, unknown>> {
    if (this.ctx.shuttingDown) return Promise.reject(shuttingDown());
    return this.queue.run(async () => {
      if (this.ctx.shuttingDown) throw shuttingDown();
      const t0 = performance.now();
      const row = this.store.get(id);
      if (!row)
        throw new DaemonError('NOT_FOUND', `no checkpoint ${id}`, {
          checkpoint_id: id,
          newest: this.store.list(1)[0]?.id ?? null,
        });
      if (row.format !== FORMAT)
        throw new DaemonError(
          'CONFLICT',
          `checkpoint ${id} is stored in format ${row.format}; this version reads format ${FORMAT}`,
          { checkpoint_id: id },
        );
      const states: States = {};
      const skipped: Record<string, string> = {};
      for (const part of this.store.parts(id)) {
        const v = verifyPart(part);
        if (v.ok) states[part.plugin] = { version: part.version, state: v.state };
        else skipped[part.plugin] = `corrupt: ${v.reason}`;
      }
      if (row.scope === 'full') return this.restoreFull(id, states, skipped);
      const r = await this.ctx.request<RestoreAnswer>('plugin:restore', { states });
      Object.assign(skipped, r.skipped);
      const restoreMs = round(performance.now() - t0);
      this.boot.head = id;
      this.stats.live_restores++;
      // Checkpoint the restored state at once, so a crash now comes back to it, not to what was replaced.
      let after: SaveSummary | null = null;
      let warning: string | undefined;
      try {
        after = await this.doSave({ reason: 'restore' });
      } catch (err) {
        warning = `restored, but the checkpoint of the restored state failed: ${(err as Error).message}`;
        this.ctx.log.error({ err, checkpoint_id: id }, 'checkpoint after live restore failed');
      }
      const out = {
        checkpoint_id: id,
        restored: r.restored,
        skipped,
        restore_ms: restoreMs,
        checkpoint_after: after?.checkpoint_id ?? null,
        ...(warning ? { warning } : {}),
      };
      this.ctx.log.info(out, 'checkpoint restored live');
      this.ctx.emit('checkpoint:restored', { live: true, ...out });
      return out;
    });
  }

  /** A full restore (inside the queue): the journaled state put back, then the in-memory parts, then a checkpoint of the result. */
  private async restoreFull(
    id: number,
    states: States,
    corrupt: Record<string, string>,
  ): Promise<Record<string, unknown>> {
    let warning: string | undefined;
    const r = await this.full.restore(id, states, async () => {
      this.boot.head = id;
      try {
        return (await this.doSave({ reason: 'restore' }))?.checkpoint_id ?? null;
      } catch (err) {
        warning = `restored, but the checkpoint of the restored state failed: ${(err as Error).message}`;
        this.ctx.log.error({ err, checkpoint_id: id }, 'checkpoint after full restore failed');
        return null;
      }
    });
    this.stats.live_restores++;
    const out = {
      ...r,
      skipped: { ...(r.skipped as Record<string, string>), ...corrupt },
      ...(warning ? { warning } : {}),
    };
    this.ctx.log.info(
      { checkpoint_id: id, restarted: r.restarted, restore_ms: r.restore_ms },
      'full checkpoint restored live',
    );
    this.ctx.emit('checkpoint:restored', { live: true, ...out });
    return out;
  }

  /** What differs between two full checkpoints, or one and the live state (serialised with saves and restores). */
  diff(from: number, to: number | undefined, limit: number): Promise<Record<string, unknown>> {
    return this.queue.run(async () => this.full.diff(from, to, limit));
  }

  /** A new home holding a full checkpoint's state, for a second daemon. */
  fork(id: number, home: string): Promise<Record<string, unknown>> {
    return this.queue.run(async () => {
      const out = await this.full.fork(id, home);
      this.ctx.log.info(
        { checkpoint_id: id, home: out.home, bytes: out.bytes, ms: out.duration_ms },
        'checkpoint forked',
      );
      this.ctx.emit('checkpoint:forked', { ...out });
      return { ...out };
    });
  }

  /** Delete one checkpoint (serialised with saves and restores). Children keep their parent id. */
  delete(id: number): Promise<Record<string, unknown>> {
    return this.queue.run(async () => {
      const row = this.store.get(id);
      if (row && this.store.unfinishedRestores().some((j) => j.checkpoint_id === id)) {
        throw new DaemonError(
          'CONFLICT',
          `checkpoint ${id} is being restored (unfinished); it cannot be deleted until the restore finished`,
          { checkpoint_id: id },
        );
      }
      if (!row || !this.store.delete(id))
        throw new DaemonError('NOT_FOUND', `no checkpoint ${id}`, { checkpoint_id: id });
      this.full.removeDirs([row]);
      this.ctx.log.info({ checkpoint_id: id }, 'checkpoint deleted');
      return { deleted: id };
    });
  }

  list(limit: number, labelledOnly: boolean): Record<string, unknown> {
    const c = this.store.counts();
    return {
      checkpoints: this.store.list(limit, labelledOnly).map(describeCheckpoint),
      total: c.n,
      labelled: c.labelled,
      head_id: this.boot.head,
    };
  }

  status(): Record<string, unknown> {
    const newest = this.store.list(1)[0];
    const c = this.store.counts();
    const boot = this.boot.bootId !== null ? this.store.boot(this.boot.bootId) : undefined;
    return {
      head_id: this.boot.head,
      last: newest
        ? {
            ...describeCheckpoint(newest),
            ...(this.lastSave?.checkpoint_id === newest.id
              ? { duration_ms: this.lastSave.duration_ms, write_ms: this.lastSave.write_ms }
              : {}),
          }
        : null,
      count: c.n,
      labelled: c.labelled,
      total_bytes: c.bytes,
      saving: this.queue.busy,
      pending: this.queue.pending,
      interval_ms: this.cfg.interval_ms,
      keep: this.cfg.keep,
      full: { count: c.full, bytes: c.full_bytes, keep: this.cfg.full_keep, max_bytes: this.cfg.full_max_bytes },
      last_restore: this.store.lastRestore()
        ? (({ manifest: _m, dir: _d, ...j }) => j)(this.store.lastRestore()!)
        : null,
      origin: this.store.origin() ?? null,
      boot: boot ? { ...boot, restore_ms: this.bootRestoreMs } : null,
      stats: { ...this.stats },
    };
  }

  health(): Record<string, unknown> {
    const newest = this.store.list(1)[0];
    return {
      head_id: this.boot.head,
      last_age_s: newest ? Math.round(Date.now() / 1000 - newest.created_at) : null,
      pending: this.queue.pending,
    };
  }
}

const shuttingDown = (): DaemonError =>
  new DaemonError('SHUTTING_DOWN', 'the daemon is shutting down; a restore now would be lost');
