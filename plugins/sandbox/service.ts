/**
 * The sandbox service: everything behind the `sandbox:*` events, usable without the kernel (tests,
 * benchmarks). It owns the engine watch, the warm pool, sessions, the concurrency bound and shutdown.
 */
import { unixSeconds } from '../../client/units.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { DaemonError, withTimeout } from '../../daemon/plugin-api.js';
import type { SandboxConfig } from './config.js';
import { Containers, type Managed } from './containers.js';
import { Engine, isConnectionError } from './engine.js';
import { decodeFiles } from './files.js';
import { resourceLimits, type Limits } from './hardening.js';
import { WarmPool } from './pool.js';
import { runAttached } from './attached.js';
import { runExec, stageWorkspace, type ExecResult, type ExecSpec, type RunOptions } from './runner.js';
import type { CreateInput, ExecInput } from './schemas.js';
import { Semaphore } from './semaphore.js';
import { workspaceUsage } from './usage.js';
import { Sessions, type SessionInfo, type SessionRecord } from './sessions.js';

export type Emit = (event: string, data: Record<string, unknown>) => void;

/** The parts of a request the service uses (a kernel CallContext fits). */
export interface CallLike {
  signal?: AbortSignal;
  emit?: Emit;
  remainingMs?: () => number;
}

export interface ServiceOptions {
  config: SandboxConfig;
  log: Logger;
  /** Runtime dir (AGENTD_HOME); workspaces live in <home>/sandbox. Also names the owner label. */
  home: string;
  emit: Emit;
  setStatus?: (status: 'ok' | 'degraded', reason?: string, code?: 'BACKEND_UNAVAILABLE' | 'NOT_CONFIGURED') => void;
  /** The snapshot changed (a session came or went): ask for a checkpoint. */
  markDirty?: () => void;
}

interface Running {
  execId: string;
  sessionId: string | null;
  startedAt: number;
  kill: () => Promise<void>;
  done: Promise<unknown>;
}

/** Leave this much of the caller's time for answering after a timeout kill. */
const ANSWER_MARGIN_MS = 250;
/** How long sandbox:status waits for a recovery in progress before answering without it. */
const STATUS_WAIT_MS = 3_000;
/** How often a running session exec's workspace is measured against limits.session_workspace_mb. */
const WORKSPACE_CHECK_MS = 1_000;

export class SandboxService {
  readonly engine: Engine;
  readonly containers: Containers;
  readonly pool: WarmPool;
  readonly sessions: Sessions;
  private readonly slots: Semaphore;
  private readonly running = new Map<string, Running>();
  private stopping = false;
  private imagePresent: boolean | null = null;
  private imageTimer: NodeJS.Timeout | null = null;
  private recovering: Promise<void> = Promise.resolve();
  private firstUp = true;
  private pendingRestore: SessionRecord[] = [];
  private readonly unreadableWarned = new Set<string>();

  constructor(private readonly opts: ServiceOptions) {
    const { config, log } = opts;
    this.engine = new Engine({
      socketPath: config.docker_socket,
      probeMinMs: config.probe_min_ms,
      probeMaxMs: config.probe_max_ms,
      healthIntervalMs: config.health_interval_ms,
      callTimeoutMs: config.engine_timeout_ms,
      log,
    });
    const owner = crypto.createHash('sha256').update(path.resolve(opts.home)).digest('hex').slice(0, 16);
    this.containers = new Containers(this.engine, config, owner, log);
    this.pool = new WarmPool(this.containers, {
      size: config.pool_size,
      languages: config.pool_languages,
      image: config.image,
      limits: this.defaultLimits(),
      log,
      canRefill: () => this.engine.up && !this.stopping && this.imagePresent !== false,
    });
    const sessionsDir = path.join(opts.home, 'sandbox', 'sessions');
    this.sessions = new Sessions(this.containers, config, sessionsDir, log, (id, reason) => {
      this.opts.emit('sandbox:session_destroyed', { session_id: id, reason });
      this.opts.markDirty?.();
    });
    this.slots = new Semaphore(config.max_concurrent, config.max_queue);
  }

  get owner(): string {
    return this.containers.owner;
  }

  /** Begin, and wait until the first recovery with the engine (if one answered) is done. */
  async start(): Promise<void> {
    await this.begin();
    await this.recovering;
  }

  /**
   * Probe the engine once (a ping: the plugin's status is truthful from the start) and begin the
   * recovery in the background: the daemon's start does not wait for the engine's container listing,
   * event stream and image lookup. Work that needs the engine waits for that recovery (`recovered`).
   */
  async begin(): Promise<void> {
    fs.mkdirSync(path.join(this.opts.home, 'sandbox', 'sessions'), { recursive: true, mode: 0o700 });
    this.engine.on('up', () => {
      this.recovering = this.recovering
        .then(() => this.onUp())
        .catch((err) => {
          // Lost the engine again half-way: go down; the next 'up' runs the whole recovery again.
          if (isConnectionError(err)) this.engine.markDown(err);
          else {
            this.opts.log.warn({ err }, 'sandbox recovery incomplete');
            this.publishStatus();
          }
        });
    });
    this.engine.on('down', (st) => this.onDown(st.reason ?? 'docker engine unreachable'));
    await this.engine.start();
    if (!this.engine.up) this.onDown(this.engine.state.reason ?? 'docker engine unreachable');
  }

  /** Settles when the recovery after the engine's latest 'up' (leftovers reaped, sessions back) ran. */
  recovered(): Promise<void> {
    return this.recovering;
  }

  /** The recovery, or the caller giving up (its deadline passed, it disconnected): whichever is first. */
  private recoveredOrAborted(signal: AbortSignal | undefined): Promise<void> {
    if (!signal) return this.recovering;
    if (signal.aborted)
      return Promise.reject(new DaemonError('CANCELLED', 'the request was abandoned before the sandbox was ready'));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void =>
        reject(new DaemonError('CANCELLED', 'the request was abandoned before the sandbox was ready'));
      signal.addEventListener('abort', onAbort, { once: true });
      void this.recovering.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Engine reachable (at start or again): clean up, then bring pool and sessions back. */
  private async onUp(): Promise<void> {
    if (this.stopping) return;
    await this.engine.connect();
    // Leftovers of a crashed run (first time), or containers orphaned while the engine was away.
    const keep = new Set<string>([...this.sessions.containerIds(), ...this.pool.ids()]);
    const firstUp = this.firstUp;
    // Independent round trips to the engine, so concurrent: they are what a start waits for.
    const [reaped] = await Promise.all([
      (async () =>
        (await this.containers.reap(firstUp ? new Set() : keep)) + (firstUp ? await this.containers.reapDead() : 0))(),
      this.containers.watchOoms(),
      // No refill from here: a container created now could be taken by the reap running alongside.
      this.checkImage(false),
    ]);
    if (reaped) this.opts.log.info({ reaped }, 'removed leftover sandbox containers');
    this.sessions.adopt(this.pendingRestore.splice(0));
    if (this.firstUp) {
      const orphans = this.sessions.removeOrphanWorkspaces();
      if (orphans) this.opts.log.info({ orphans }, 'removed workspaces of sessions not in the checkpoint');
    }
    this.firstUp = false;
    await this.sessions.recover();
    await this.engine.versionKnown; // fetched alongside the recovery; reported with 'reachable'
    if (!this.engine.up) return; // lost again meanwhile: 'down' has been reported
    this.pool.cancelRetry();
    this.pool.refill();
    this.publishStatus();
    this.opts.emit('sandbox:engine', { reachable: true, version: this.engine.state.version, reason: null });
  }

  private onDown(reason: string): void {
    this.pool.forget();
    this.sessions.forgetContainers();
    this.containers.unwatchOoms();
    this.opts.setStatus?.('degraded', reason, 'BACKEND_UNAVAILABLE');
    this.opts.emit('sandbox:engine', { reachable: false, version: null, reason });
  }

  /**
   * Is the default image there? While it is missing, look again every health interval, so building
   * it (scripts/sandbox-image.sh build) turns the plugin ok and fills the pool without a restart.
   */
  private async checkImage(refill = true): Promise<void> {
    if (this.imageTimer) clearTimeout(this.imageTimer);
    this.imageTimer = null;
    const was = this.imagePresent;
    try {
      this.imagePresent = await this.containers.imagePresent(this.opts.config.image);
    } catch (err) {
      if (isConnectionError(err)) this.engine.markDown(err);
      return;
    }
    if (this.imagePresent !== was) {
      this.publishStatus();
      if (this.imagePresent && refill) this.pool.refill();
    }
    if (this.imagePresent === false && this.engine.up && !this.stopping) {
      this.imageTimer = setTimeout(() => void this.checkImage(), this.opts.config.health_interval_ms);
      this.imageTimer.unref();
    }
  }

  private publishStatus(): void {
    if (!this.engine.up) return;
    if (this.imagePresent === false) {
      this.opts.setStatus?.(
        'degraded',
        `default image ${this.opts.config.image} missing: build it with scripts/sandbox-image.sh build`,
        'NOT_CONFIGURED',
      );
    } else {
      this.opts.setStatus?.('ok');
    }
  }

  private ensureAvailable(): void {
    if (this.stopping) throw new DaemonError('UNAVAILABLE', 'sandbox is shutting down');
    if (!this.engine.up)
      throw new DaemonError('UNAVAILABLE', this.engine.state.reason ?? 'docker engine unreachable', {
        reason: this.engine.state.reason,
      });
  }

  defaultLimits(): Limits {
    const l = this.opts.config.limits;
    return { memory_mb: l.memory_mb, cpus: l.cpus, pids: l.pids };
  }

  /** Requested limits within the configured maxima, else INVALID_DATA naming the field. */
  resolveLimits(
    req: { memory_mb?: number; cpus?: number; pids?: number },
    base = this.defaultLimits(),
    prefix: (string | number)[] = [],
  ): Limits {
    const l = this.opts.config.limits;
    const issues: Array<{ path: (string | number)[]; message: string }> = [];
    if (req.memory_mb !== undefined && req.memory_mb > l.max_memory_mb)
      issues.push({
        path: [...prefix, 'memory_mb'],
        message: `at most ${l.max_memory_mb} (config limits.max_memory_mb)`,
      });
    if (req.cpus !== undefined && req.cpus > l.max_cpus)
      issues.push({ path: [...prefix, 'cpus'], message: `at most ${l.max_cpus} (config limits.max_cpus)` });
    if (req.pids !== undefined && req.pids > Math.max(l.pids, 4096))
      issues.push({ path: [...prefix, 'pids'], message: `at most ${Math.max(l.pids, 4096)}` });
    if (issues.length)
      throw new DaemonError(
        'INVALID_DATA',
        `limits out of range: ${issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`,
        { issues },
      );
    return { memory_mb: req.memory_mb ?? base.memory_mb, cpus: req.cpus ?? base.cpus, pids: req.pids ?? base.pids };
  }

  async exec(input: ExecInput, call: CallLike = {}): Promise<ExecResult> {
    await this.recoveredOrAborted(call.signal);
    this.ensureAvailable();
    const cfg = this.opts.config;
    if (input.timeout_s !== undefined && input.timeout_s > cfg.limits.max_timeout_s) {
      throw new DaemonError(
        'INVALID_DATA',
        `timeout_s at most ${cfg.limits.max_timeout_s} (config limits.max_timeout_s)`,
        {
          issues: [{ path: ['timeout_s'], message: `at most ${cfg.limits.max_timeout_s}` }],
        },
      );
    }
    const session = input.session_id !== undefined ? this.sessions.get(input.session_id) : null;
    if (session && input.image !== undefined && input.image !== session.image) {
      throw new DaemonError(
        'INVALID_DATA',
        `session ${session.id} runs ${session.image}; image cannot change per exec`,
        { issues: [{ path: ['image'], message: 'differs from the session image' }] },
      );
    }
    const limits = this.resolveLimits(input, session?.limits);
    const files = decodeFiles(input.files ?? []);
    const fileBytes = files.reduce((n, f) => n + f.data.length, 0);
    if (!session && fileBytes > cfg.limits.workspace_mb * 1024 * 1024) {
      throw new DaemonError(
        'INVALID_DATA',
        `files total ${fileBytes} bytes: more than the ${cfg.limits.workspace_mb} MiB workspace (config limits.workspace_mb)`,
        {
          issues: [{ path: ['files'], message: 'larger than the workspace' }],
        },
      );
    }
    // Called as a method: a kernel CallContext's emit needs its `this`.
    const emit: Emit = call.emit ? (event, data) => call.emit!(event, data) : this.opts.emit;
    const release = await this.slots.acquire(call.signal);
    try {
      this.ensureAvailable();
      // The caller's own deadline bounds the exec too, so the answer still arrives in time.
      let timeoutMs = (input.timeout_s ?? cfg.limits.timeout_s) * 1000;
      const remaining = call.remainingMs?.();
      if (remaining !== undefined) timeoutMs = Math.max(1, Math.min(timeoutMs, remaining - ANSWER_MARGIN_MS));
      const execId = `x-${crypto.randomUUID()}`;
      const spec = {
        execId,
        language: input.language,
        code: input.code,
        files,
        env: input.env ?? {},
        stdin: input.stdin,
        timeoutMs,
      };
      if (session)
        return await this.sessions.exclusive(session, () => this.runInSession(session.id, spec, limits, emit, call));
      return await this.runOneShot(spec, input.image ?? cfg.image, limits, emit, call);
    } catch (err) {
      throw this.containers.translate(
        err instanceof NotStarted ? err.cause : err,
        input.image ?? session?.image ?? cfg.image,
      );
    } finally {
      release();
    }
  }

  private async runOneShot(
    spec: ExecSpec,
    image: string,
    limits: Limits,
    emit: Emit,
    call: CallLike,
    usePool = true,
  ): Promise<ExecResult> {
    let managed: Managed | null = usePool && image === this.opts.config.image ? this.pool.take(spec.language) : null;
    const warm = managed !== null;
    try {
      if (managed && !sameLimits(managed.limits, limits)) await managed.container.update(resourceLimits(limits));
    } catch (err) {
      // A warm container that vanished or cannot take the limits: fall back to a fresh one.
      this.opts.log.debug({ err }, 'warm container unusable');
      if (managed) void this.containers.discard(managed);
      managed = null;
    }
    managed ??= await this.containers.create({ image, kind: 'exec', limits, language: spec.language });
    const m = managed;
    try {
      return await this.track(
        spec,
        m,
        null,
        warm,
        emit,
        call,
        async () => {
          await m.container.kill().catch(() => undefined);
        },
        async (opts) => {
          if (spec.files.length) await stageWorkspace(m.container, spec.files, this.opts.config.user);
          return runAttached(m.container, m.attachment!, spec, opts);
        },
      );
    } catch (err) {
      // A warm container that died while idle (engine restarted, killed behind our back) fails before
      // the exec reached it: that is ours to absorb, so run the exec once more in a fresh container.
      if (warm && err instanceof NotStarted && isGone(err.cause)) {
        this.opts.log.debug({ err: err.cause }, 'warm container was dead; retrying cold');
        return this.runOneShot(spec, image, limits, emit, call, false);
      }
      throw err;
    } finally {
      // One exec per container: whatever happened, it goes; then the pool gets its replacement.
      void this.containers.discard(m);
      this.pool.refill();
    }
  }

  private async runInSession(
    sessionId: string,
    spec: ExecSpec,
    limits: Limits,
    emit: Emit,
    call: CallLike,
    retry = true,
  ): Promise<ExecResult> {
    this.ensureAvailable(); // queued behind the session's earlier execs: things may have changed
    const s = this.sessions.get(sessionId); // may have been destroyed while queued
    // A container the code stopped last time (kill -9 -1) is found by the exec itself, which then
    // answers "not running": the retry below starts it again. No inspect round trip per exec.
    if (!s.managed) await this.sessions.revive(s);
    const m = s.managed!;
    if (!sameLimits(m.limits, limits)) {
      await m.container.update(resourceLimits(limits));
      m.limits = limits;
    }
    s.execs++;
    let killed = false;
    const over = new AbortController();
    const stopWatch = this.watchWorkspace(s.id, s.workspaceDir, over);
    try {
      return await this.track(
        spec,
        m,
        sessionId,
        true,
        emit,
        call,
        async () => {
          killed = true;
          await m.container.kill().catch(() => undefined);
        },
        async (opts) => {
          const { limited, ...r } = await runExec(m.container, spec, { ...opts, reused: true, limit: over.signal });
          stopWatch();
          // Checked once more at the end: an exec shorter than the check interval is seen here.
          return { ...r, workspace_exceeded: limited || (await this.workspaceOver(s.id, s.workspaceDir)) };
        },
      );
    } catch (err) {
      // The container stopped between our check and the exec (its processes were just killed):
      // start it again and run this exec once more.
      if (retry && err instanceof NotStarted && isGone(err.cause)) {
        s.execs--;
        // Let it finish stopping first, or the restart would find it "already running".
        await withTimeout(m.container.wait({ condition: 'not-running' }), 5_000, 'container wait timed out').catch(
          () => undefined,
        );
        await this.sessions.revive(s);
        return this.runInSession(sessionId, spec, limits, emit, call, false);
      }
      throw err;
    } finally {
      stopWatch();
      // The timeout killed every process in the container; start it again on the same workspace.
      if (killed && !this.stopping)
        await this.sessions
          .revive(s)
          .catch((err) => this.opts.log.warn({ err, session: s.id }, 'session revive failed'));
    }
  }

  private async track(
    spec: ExecSpec,
    m: Managed,
    sessionId: string | null,
    warm: boolean,
    emit: Emit,
    call: CallLike,
    kill: () => Promise<void>,
    run: (opts: RunOptions) => Promise<ExecResult & { cancelled: boolean }>,
  ): Promise<ExecResult> {
    const cfg = this.opts.config;
    const base = sessionId ? { exec_id: spec.execId, session_id: sessionId } : { exec_id: spec.execId };
    let started = false;
    const abort = new AbortController();
    call.signal?.addEventListener('abort', () => abort.abort(), { once: true });
    if (call.signal?.aborted) abort.abort();
    const done = run({
      user: cfg.user,
      signal: abort.signal,
      kill,
      onStart: () => {
        started = true;
        emit('sandbox:exec_started', { ...base, language: spec.language, image: m.image, warm });
      },
      oomSince: (since) => this.containers.oomSince(m.id, since),
      output: {
        capBytes: cfg.output_cap_bytes,
        flushMs: cfg.output_flush_ms,
        chunkBytes: cfg.output_chunk_bytes,
        onChunk: (stream, chunk) => emit('sandbox:output', { ...base, stream, chunk }),
      },
    });
    const entry: Running = {
      execId: spec.execId,
      sessionId,
      startedAt: Date.now(),
      kill: async () => abort.abort(),
      done,
    };
    this.running.set(spec.execId, entry);
    try {
      const { cancelled, ...result } = await done;
      const summary = {
        ...base,
        exit_code: result.exit_code,
        duration_ms: result.duration_ms,
        timed_out: result.timed_out,
        oom_killed: result.oom_killed,
        truncated: result.truncated,
        ...(result.workspace_exceeded !== undefined && { workspace_exceeded: result.workspace_exceeded }),
      };
      if (cancelled) {
        emit('sandbox:exec_finished', { ...summary, cancelled: true });
        throw new DaemonError(
          'CANCELLED',
          this.stopping ? 'exec killed: the daemon is shutting down' : 'exec killed: the request was abandoned',
          { exec_id: spec.execId },
        );
      }
      emit('sandbox:exec_finished', summary);
      return result;
    } catch (err) {
      if (isConnectionError(err)) this.engine.markDown(err);
      // Runner errors with an engine status came from the runtime, not from the code's run.
      throw started && (err as { statusCode?: number }).statusCode === undefined ? err : new NotStarted(err);
    } finally {
      this.running.delete(spec.execId);
    }
  }

  /**
   * While a session exec runs, measure its workspace every WORKSPACE_CHECK_MS; past the cap, abort
   * `over` (the exec is killed like at a timeout). Returns the function that stops watching.
   */
  private watchWorkspace(id: string, dir: string, over: AbortController): () => void {
    let stopped = false;
    let timer: NodeJS.Timeout | null = null;
    const tick = async (): Promise<void> => {
      if (stopped) return;
      if (await this.workspaceOver(id, dir)) over.abort();
      else if (!stopped) timer = setTimeout(() => void tick(), WORKSPACE_CHECK_MS);
    };
    timer = setTimeout(() => void tick(), WORKSPACE_CHECK_MS);
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }

  private async workspaceOver(id: string, dir: string): Promise<boolean> {
    const u = await workspaceUsage(dir, this.opts.config.limits.session_workspace_mb * 1024 * 1024).catch(() => null);
    if (u?.unreadable && !this.unreadableWarned.has(id)) {
      this.unreadableWarned.add(id);
      this.opts.log.warn(
        { session: id, unreadable: u.unreadable },
        'session workspace partly unreadable by the daemon: its size is undercounted',
      );
    }
    return u?.over ?? false;
  }

  async createSession(input: CreateInput): Promise<SessionInfo> {
    await this.recovering;
    this.ensureAvailable();
    const limits = this.resolveLimits(input.limits ?? {}, undefined, ['limits']);
    const image = input.image ?? this.opts.config.image;
    try {
      const s = await this.sessions.create({
        id: input.session_id,
        image,
        limits,
        idleMs: (input.idle_timeout_s ?? this.opts.config.session_idle_s) * 1000,
      });
      this.opts.emit('sandbox:session_created', { session_id: s.id, image, limits });
      this.opts.markDirty?.();
      return this.sessions.list().find((i) => i.session_id === s.id)!;
    } catch (err) {
      throw this.containers.translate(err, image);
    }
  }

  async destroySession(id: string): Promise<{ session_id: string; destroyed: true }> {
    await this.recovering; // restored sessions are adopted by the recovery
    this.sessions.get(id); // NOT_FOUND before anything else
    this.ensureAvailable();
    await this.sessions.destroy(id, 'requested');
    return { session_id: id, destroyed: true };
  }

  listSessions(): { sessions: SessionInfo[] } {
    return { sessions: this.sessions.list() };
  }

  /** Always answers (even without an engine): it is how an operator finds out why. */
  async status(): Promise<Record<string, unknown>> {
    // Answers after the recovery in progress, if any, but within STATUS_WAIT_MS in all: an engine that
    // answers pings and hangs on everything else is exactly what an operator asks status about.
    const until = Date.now() + STATUS_WAIT_MS;
    let recovering = true;
    await withTimeout(
      this.recovering.then(() => (recovering = false)),
      STATUS_WAIT_MS,
      'recovery still running',
    ).catch(() => undefined);
    this.engine.stuck();
    const st = this.engine.state;
    // The image is looked up afresh when time is left; otherwise the last known answer is given.
    if (st.up && !recovering)
      await withTimeout(this.checkImage(), Math.max(0, until - Date.now()), 'image check still running').catch(
        () => undefined,
      );
    return {
      engine: {
        reachable: st.up,
        version: st.version,
        api_version: st.apiVersion,
        reason: st.reason,
        since: unixSeconds(st.since),
      },
      image: { name: this.opts.config.image, present: st.up ? this.imagePresent : null },
      pool: {
        size: this.pool.size,
        languages: this.pool.languages,
        ready: this.pool.available,
        ready_by_language: this.pool.readyByLanguage(),
        last_error: this.pool.lastError,
      },
      running_execs: this.running.size,
      queued_execs: this.slots.queued,
      sessions: this.sessions.count,
      owner: this.owner,
      recovering,
      status: !st.up ? 'degraded' : this.imagePresent === false ? 'degraded' : 'ok',
    };
  }

  health(): Record<string, unknown> {
    this.engine.stuck();
    return {
      engine_reachable: this.engine.up,
      running_execs: this.running.size,
      pool_ready: this.pool.available,
      sessions: this.sessions.count,
    };
  }

  snapshot(): { sessions: SessionRecord[] } {
    return { sessions: [...this.sessions.records(), ...this.pendingRestore] };
  }

  restore(state: unknown): void {
    const s = state as { sessions?: SessionRecord[] } | null;
    if (s && Array.isArray(s.sessions)) this.pendingRestore = s.sessions;
  }

  /**
   * Shutdown: refuse new work, give running execs until `deadline`, kill what is left, remove every
   * container of ours. Session workspaces stay on disk for the next start.
   */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.slots.rejectAll(new DaemonError('UNAVAILABLE', 'sandbox is shutting down'));
    this.sessions.stopReaper();
    await this.pool.settled();
    if (this.engine.up) await this.pool.drain().catch(() => undefined);
    const inflight = [...this.running.values()];
    if (inflight.length) {
      this.opts.log.info({ running: inflight.length }, 'waiting for running execs');
      const wait = Math.max(0, deadline - Date.now() - 2_000);
      await Promise.race([Promise.allSettled(inflight.map((r) => r.done)), new Promise((r) => setTimeout(r, wait))]);
      const left = [...this.running.values()];
      if (left.length) this.opts.log.warn({ killed: left.length }, 'killing execs still running at the deadline');
      await Promise.allSettled(left.map((r) => r.kill()));
      await Promise.race([Promise.allSettled(left.map((r) => r.done)), new Promise((r) => setTimeout(r, 1_500))]);
    }
    // A recovery still running at the deadline (an engine that answers pings and hangs otherwise)
    // is left behind: its containers are reaped at the next start.
    const recovered = await withTimeout(
      this.recovering,
      Math.max(0, deadline - Date.now() - 1_000),
      'recovery still running',
    ).then(
      () => true,
      () => false,
    );
    if (!recovered)
      this.opts.log.warn(
        'sandbox recovery still running at the shutdown deadline; leftovers are removed at the next start',
      );
    if (recovered && this.engine.up) {
      await this.sessions.shutdown().catch(() => undefined);
      await this.containers.settle();
      // Final sweep: anything labelled ours that slipped through (created while stopping).
      await this.containers.reap().catch(() => undefined);
      await this.containers.settle();
    }
    this.containers.unwatchOoms();
    if (this.imageTimer) clearTimeout(this.imageTimer);
    this.engine.stop();
  }
}

/** The exec failed before it started: the container, not the code, is at fault. */
class NotStarted extends Error {
  constructor(override readonly cause: unknown) {
    super('exec did not start', { cause });
  }
}

/** No such container (404), or not running (409; engines before 23 answer 500 "is not running"). */
function isGone(err: unknown): boolean {
  const e = err as { statusCode?: number; message?: string } | null;
  return (
    e?.statusCode === 404 || e?.statusCode === 409 || (e?.statusCode === 500 && /is not running/.test(e.message ?? ''))
  );
}

function sameLimits(a: Limits, b: Limits): boolean {
  return a.memory_mb === b.memory_mb && a.cpus === b.cpus && a.pids === b.pids;
}
