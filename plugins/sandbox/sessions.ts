/**
 * Long-lived sessions: a container plus a workspace directory on the host (bind-mounted at
 * /workspace), so files persist across execs, across a timeout kill (the container is restarted, the
 * workspace stays) and across a daemon restart (restore recreates the container on the same directory).
 * Execs in one session run one at a time, in arrival order.
 */
import { unixSeconds } from '../../client/units.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { DaemonError } from '../../daemon/plugin-api.js';
import type { SandboxConfig } from './config.js';
import type { Containers, Managed } from './containers.js';
import type { Limits } from './hardening.js';

export interface Session {
  id: string;
  image: string;
  limits: Limits;
  idleMs: number;
  workspaceDir: string;
  managed: Managed | null;
  createdAt: number;
  lastUsed: number;
  execs: number;
  busy: number;
  chain: Promise<unknown>;
}

export interface SessionInfo {
  session_id: string;
  image: string;
  limits: Limits;
  /** Unix seconds, like every time in an answer. */
  created_at: number;
  last_used_at: number;
  idle_expires_at: number;
  execs: number;
  busy: boolean;
  container_id: string | null;
}

/** What survives a restart (the workspace itself is on disk). */
export interface SessionRecord {
  id: string;
  image: string;
  limits: Limits;
  idleMs: number;
  createdAt: number;
  lastUsed: number;
  execs: number;
}

export class Sessions {
  private readonly map = new Map<string, Session>();
  private reaper: NodeJS.Timeout | null = null;

  constructor(
    private readonly containers: Containers,
    private readonly config: SandboxConfig,
    private readonly baseDir: string,
    private readonly log: Logger,
    private readonly onDestroyed: (id: string, reason: string) => void,
  ) {}

  get count(): number {
    return this.map.size;
  }

  containerIds(): string[] {
    return [...this.map.values()].flatMap((s) => (s.managed ? [s.managed.id] : []));
  }

  get(id: string): Session {
    const s = this.map.get(id);
    if (!s) throw new DaemonError('NOT_FOUND', `no sandbox session ${id}`, { session_id: id });
    return s;
  }

  async create(opts: { id?: string; image: string; limits: Limits; idleMs: number }): Promise<Session> {
    const id = opts.id ?? `s-${crypto.randomBytes(6).toString('hex')}`;
    if (this.map.has(id)) throw new DaemonError('CONFLICT', `sandbox session ${id} already exists`, { session_id: id });
    if (this.map.size >= this.config.max_sessions) {
      throw new DaemonError('OVERLOADED', `at most ${this.config.max_sessions} sandbox sessions (config max_sessions)`);
    }
    const now = Date.now();
    const s: Session = {
      id,
      image: opts.image,
      limits: opts.limits,
      idleMs: opts.idleMs,
      workspaceDir: this.workspaceDir(id),
      managed: null,
      createdAt: now,
      lastUsed: now,
      execs: 0,
      busy: 0,
      chain: Promise.resolve(),
    };
    // Reserve the id before the slow part so a concurrent create with the same id gets CONFLICT.
    this.map.set(id, s);
    try {
      this.prepareWorkspace(s.workspaceDir);
      s.managed = await this.containers.create({
        image: s.image,
        kind: 'session',
        limits: s.limits,
        sessionId: id,
        workspaceDir: s.workspaceDir,
      });
    } catch (err) {
      this.map.delete(id);
      fs.rmSync(s.workspaceDir, { recursive: true, force: true });
      throw err;
    }
    this.ensureReaper();
    return s;
  }

  /** Run `fn` when the session's previous execs are done (one at a time per session). */
  exclusive<T>(s: Session, fn: () => Promise<T>): Promise<T> {
    s.busy++;
    const run = s.chain.then(fn, fn);
    s.chain = run.catch(() => undefined);
    return run.finally(() => {
      s.busy--;
      s.lastUsed = Date.now();
    });
  }

  /** After a kill: start the container again (the workspace is on the host and survives). */
  async revive(s: Session): Promise<void> {
    if (!this.map.has(s.id)) return;
    try {
      if (s.managed) {
        await s.managed.container.start().catch((err: { statusCode?: number }) => {
          if (err?.statusCode !== 304) throw err; // 304: already running
        });
        return;
      }
    } catch (err) {
      this.log.warn({ err, session: s.id }, 'session container restart failed; recreating');
      if (s.managed) await this.containers.remove(s.managed.container);
    }
    s.managed = await this.containers.create({
      image: s.image,
      kind: 'session',
      limits: s.limits,
      sessionId: s.id,
      workspaceDir: s.workspaceDir,
    });
  }

  async destroy(id: string, reason: string): Promise<void> {
    const s = this.get(id);
    this.map.delete(id);
    if (s.managed) await this.containers.remove(s.managed.container);
    fs.rmSync(s.workspaceDir, { recursive: true, force: true });
    this.onDestroyed(id, reason);
    this.log.info({ session: id, reason }, 'sandbox session destroyed');
  }

  list(): SessionInfo[] {
    return [...this.map.values()].map((s) => ({
      session_id: s.id,
      image: s.image,
      limits: s.limits,
      created_at: unixSeconds(s.createdAt),
      last_used_at: unixSeconds(s.lastUsed),
      idle_expires_at: unixSeconds(s.lastUsed + s.idleMs),
      execs: s.execs,
      busy: s.busy > 0,
      container_id: s.managed?.id ?? null,
    }));
  }

  /** Make every session's container run again (engine restarted, daemon restarted). */
  async recover(): Promise<void> {
    for (const s of this.map.values()) {
      try {
        if (s.managed) {
          const info = await s.managed.container.inspect().catch(() => null);
          if (info?.State.Running) continue;
          if (info) await this.containers.remove(s.managed.container);
          s.managed = null;
        }
        this.prepareWorkspace(s.workspaceDir);
        s.managed = await this.containers.create({
          image: s.image,
          kind: 'session',
          limits: s.limits,
          sessionId: s.id,
          workspaceDir: s.workspaceDir,
        });
        this.log.info({ session: s.id }, 'sandbox session container recreated');
      } catch (err) {
        this.log.warn({ err, session: s.id }, 'sandbox session recovery failed');
      }
    }
    this.ensureReaper();
  }

  /** The engine is gone: the containers are unreachable; recover() rebuilds them later. */
  forgetContainers(): void {
    for (const s of this.map.values()) s.managed = null;
  }

  records(): SessionRecord[] {
    return [...this.map.values()].map(({ id, image, limits, idleMs, createdAt, lastUsed, execs }) => ({
      id,
      image,
      limits,
      idleMs,
      createdAt,
      lastUsed,
      execs,
    }));
  }

  /** Re-register sessions from a snapshot; their containers are created by recover(). */
  adopt(records: SessionRecord[]): void {
    for (const r of records) {
      if (this.map.has(r.id) || !fs.existsSync(this.workspaceDir(r.id))) continue;
      this.map.set(r.id, {
        ...r,
        workspaceDir: this.workspaceDir(r.id),
        managed: null,
        busy: 0,
        chain: Promise.resolve(),
      });
    }
  }

  /** Delete workspace directories no session owns (sessions lost without a checkpoint). */
  removeOrphanWorkspaces(): number {
    let n = 0;
    for (const name of fs.existsSync(this.baseDir) ? fs.readdirSync(this.baseDir) : []) {
      if (this.map.has(name)) continue;
      fs.rmSync(path.join(this.baseDir, name), { recursive: true, force: true });
      n++;
    }
    return n;
  }

  /** Shutdown: remove the containers, keep the records and workspaces for the next start. */
  async shutdown(): Promise<void> {
    this.stopReaper();
    await Promise.all(
      [...this.map.values()].map(async (s) => {
        if (s.managed) await this.containers.remove(s.managed.container);
        s.managed = null;
      }),
    );
  }

  reapIdle(now = Date.now()): void {
    for (const s of [...this.map.values()]) {
      if (s.busy === 0 && now - s.lastUsed >= s.idleMs) {
        void this.destroy(s.id, 'idle').catch((err) =>
          this.log.warn({ err, session: s.id }, 'idle session reap failed'),
        );
      }
    }
  }

  private ensureReaper(): void {
    this.stopReaper();
    if (this.map.size === 0) return;
    // Check often enough for the shortest idle timeout among the sessions.
    const shortest = Math.min(...[...this.map.values()].map((s) => s.idleMs));
    const every = Math.max(200, Math.min(30_000, shortest / 4));
    this.reaper = setInterval(() => this.reapIdle(), every);
    this.reaper.unref();
  }

  stopReaper(): void {
    if (this.reaper) clearInterval(this.reaper);
    this.reaper = null;
  }

  private workspaceDir(id: string): string {
    return path.join(this.baseDir, id);
  }

  private prepareWorkspace(dir: string): void {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const [uid, gid] = this.config.user.split(':').map(Number);
    try {
      // The sandbox user must own its workspace; only root can hand it over.
      fs.chownSync(dir, uid ?? 1000, gid ?? uid ?? 1000);
      fs.chmodSync(dir, 0o700);
    } catch {
      // Not root: fall back to a world-writable dir (its parent stays private to the daemon's user).
      fs.chmodSync(dir, 0o777);
    }
  }
}
