/**
 * The Docker connection and its health. Reachability is probed with a ping: every `healthIntervalMs`
 * while up, with doubling backoff (with jitter) while down. Callers that see a connection-level error report it with
 * `markDown`, so a vanished engine is noticed at once rather than at the next ping.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { Backoff, TimeoutError, withTimeout } from '../../daemon/plugin-api.js';

export interface EngineOptions {
  socketPath?: string;
  probeMinMs: number;
  probeMaxMs: number;
  healthIntervalMs: number;
  /** A call the engine has not answered for this long means it hangs (see `stuck`). */
  callTimeoutMs: number;
  log: Logger;
}

/** One engine call waiting for its answer. */
interface Call {
  method: string;
  path: string;
  since: number;
  abort: AbortController;
}

type Dial = (
  options: { method?: string; path?: string; abortSignal?: AbortSignal },
  callback: (err: unknown, data?: unknown) => void,
) => void;

export interface EngineState {
  up: boolean;
  reason: string | null;
  version: string | null;
  apiVersion: string | null;
  since: number;
}

const PING_TIMEOUT_MS = 3_000;

/** Errors that mean "the engine is not there" rather than "this request was wrong". */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string; statusCode?: number } | null;
  if (!e) return false;
  if (
    e.code &&
    ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EACCES', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(e.code)
  )
    return true;
  return /socket hang up|connect E|engine ping timed out/i.test(e.message ?? '');
}

/**
 * The Unix socket the engine would be reached on, when it is one: where dockerode itself would look
 * (the configured path, DOCKER_HOST=unix://..., else /var/run/docker.sock). null for tcp/ssh hosts.
 */
export function unixSocketOf(socketPath: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  if (socketPath) return socketPath;
  const host = env.DOCKER_HOST;
  if (!host) return '/var/run/docker.sock';
  return host.startsWith('unix://') ? host.slice('unix://'.length) : null;
}

export class Engine extends EventEmitter<{ up: [EngineState]; down: [EngineState] }> {
  private client: Docker | null = null;
  private current: EngineState = {
    up: false,
    reason: 'not probed yet',
    version: null,
    apiVersion: null,
    since: Date.now(),
  };
  private timer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  private stopped = false;
  private probing: Promise<boolean> | null = null;
  private readonly calls = new Set<Call>();
  /** Why the engine was last taken as hung; until a real call is answered again it stays down. */
  private hung: string | null = null;
  /** Settles once the version of the engine last found up is known (or could not be had). */
  versionKnown: Promise<void> = Promise.resolve();

  constructor(private readonly opts: EngineOptions) {
    super();
    this.backoff = new Backoff({ initialMs: opts.probeMinMs, maxMs: opts.probeMaxMs });
  }

  /** The dockerode client; it exists once a probe found an engine socket to talk to. */
  get docker(): Docker {
    if (!this.client)
      throw Object.assign(new Error('docker engine unreachable: not connected yet'), { code: 'ECONNREFUSED' });
    return this.client;
  }

  /**
   * dockerode (with the gRPC and SSH stacks it pulls in) is imported once an engine answered, so a
   * machine without Docker never loads it; a Unix-socket engine is pinged without it (see doProbe).
   */
  async connect(): Promise<Docker> {
    if (this.client) return this.client;
    const sock = unixSocketOf(this.opts.socketPath);
    if (sock !== null && !fs.existsSync(sock))
      throw Object.assign(new Error(`connect ENOENT ${sock}`), { code: 'ENOENT', address: sock });
    const { default: Dockerode } = await import('dockerode');
    this.client = this.opts.socketPath ? new Dockerode({ socketPath: this.opts.socketPath }) : new Dockerode();
    this.watchCalls(this.client);
    return this.client;
  }

  /**
   * Keep every call in flight, from its request to its answer (for a stream: its headers). An engine
   * that answers pings but not its calls (a hung containerd, a wedged daemon) is only seen this way.
   * Waits that last as long as a container runs (`/wait`) are not counted.
   */
  private watchCalls(docker: Docker): void {
    const modem = docker.modem as { dial: Dial };
    const dial = modem.dial.bind(modem) as Dial;
    modem.dial = (options, callback) => {
      if (/\/wait$/.test((options.path ?? '').split('?')[0]!)) return dial(options, callback);
      const abort = new AbortController();
      const call: Call = {
        method: options.method ?? 'GET',
        path: (options.path ?? '').split('?')[0]!,
        since: Date.now(),
        abort,
      };
      this.calls.add(call);
      const signal = options.abortSignal ? AbortSignal.any([options.abortSignal, abort.signal]) : abort.signal;
      dial({ ...options, abortSignal: signal }, (err, data) => {
        this.calls.delete(call);
        // Cut off as stuck: say so, as a connection error (the engine is unusable, not the request wrong).
        callback(err && abort.signal.aborted ? abort.signal.reason : err, data);
      });
    };
  }

  /**
   * The oldest call unanswered past the timeout, if any. When there is one the engine is taken as
   * down (`not responding`) and every such call is cut off, so nothing waits on it forever; the
   * usual probing brings the engine back once it answers again.
   */
  stuck(now = Date.now()): string | null {
    const old = [...this.calls].filter((c) => now - c.since >= this.opts.callTimeoutMs);
    if (old.length === 0) return null;
    const first = old.reduce((a, b) => (a.since <= b.since ? a : b));
    const reason = `docker engine not responding: ${first.method} ${first.path} unanswered for ${Math.round((now - first.since) / 1000)} s`;
    for (const c of old) c.abort.abort(Object.assign(new Error(reason), { code: 'ETIMEDOUT' }));
    this.hung = reason;
    if (this.current.up) {
      this.transition(false, reason);
      this.schedule();
    }
    return reason;
  }

  get state(): EngineState {
    return { ...this.current };
  }

  get up(): boolean {
    return this.current.up;
  }

  /** Probe once now, then keep watching. Resolves after the first probe. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.probe();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** A caller saw a connection error: go down now and start probing. */
  markDown(err: unknown): void {
    if (!this.current.up) return;
    this.transition(false, describe(err));
    this.schedule();
  }

  /** Probe now (coalesced with a probe in flight). */
  probe(): Promise<boolean> {
    this.probing ??= this.doProbe().finally(() => (this.probing = null));
    return this.probing;
  }

  private async doProbe(): Promise<boolean> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let ok = false;
    try {
      // The first probe is on the daemon's start path: over a Unix socket it is one bare HTTP request
      // (~1 ms), not dockerode's import (~20 ms), which the recovery after 'up' then does alongside
      // its own work. Later probes use the client that exists by then.
      const sock = unixSocketOf(this.opts.socketPath);
      if (!this.client && sock !== null) await pingUnix(sock, PING_TIMEOUT_MS);
      else await withTimeout((await this.connect()).ping(), PING_TIMEOUT_MS, 'engine ping');
      // Answering pings is not enough: a call left unanswered means the engine hangs, and after a
      // hang it is back only once it answers a call again (one that needs more than the API server).
      if (this.calls.size && this.stuck()) {
        this.schedule();
        return false;
      }
      if (this.hung) {
        // Still unanswered: the reason stays what it was (the hung call), not the version's timeout.
        const hung = this.hung;
        await withTimeout((await this.connect()).version(), PING_TIMEOUT_MS, 'engine version').catch((err: unknown) => {
          throw err instanceof TimeoutError ? new Error(hung) : err;
        });
        this.hung = null;
      }
      if (!this.current.up) {
        // The engine is usable once it answers the ping; its version (a slower call) is for status
        // and logs, so it is fetched alongside the recovery the 'up' event starts, not before it.
        this.versionKnown = this.connect()
          .then((docker) => withTimeout(docker.version(), PING_TIMEOUT_MS, 'engine version'))
          .then(
            (v) => {
              this.current.version = v.Version;
              this.current.apiVersion = v.ApiVersion;
              this.opts.log.info({ version: v.Version, api_version: v.ApiVersion }, 'docker engine version');
            },
            (err: unknown) => this.opts.log.debug({ err }, 'docker engine version unknown'),
          );
        this.transition(true, null);
      }
      ok = true;
    } catch (err) {
      if (this.current.up || this.current.reason !== describe(err)) this.transition(false, describe(err));
    }
    this.schedule();
    return ok;
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    let delay: number;
    if (this.current.up) {
      this.backoff.reset();
      delay = this.opts.healthIntervalMs;
    } else delay = this.backoff.next();
    this.timer = setTimeout(() => void this.probe(), delay);
    this.timer.unref();
  }

  private transition(up: boolean, reason: string | null): void {
    const wasUp = this.current.up;
    this.current = { ...this.current, up, reason, since: Date.now() };
    if (up && !wasUp) {
      this.opts.log.info('docker engine reachable');
      this.emit('up', this.state);
    } else if (!up) {
      this.opts.log.warn({ reason }, 'docker engine unreachable');
      if (wasUp) this.backoff.reset();
      this.emit('down', this.state);
    }
  }
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string; address?: string };
  if (e?.message?.startsWith('docker engine not responding')) return e.message;
  const where = e?.address ? ` (${e.address})` : '';
  return `docker engine unreachable: ${e?.code ?? e?.message ?? String(err)}${where}`;
}

/**
 * GET /_ping on the engine's Unix socket: what dockerode's ping does, without loading it. Rejects
 * with the socket error (ENOENT, ECONNREFUSED, EACCES…), a status error, or a timeout.
 */
export function pingUnix(socketPath: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = http.request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      if (res.statusCode === 200) resolve();
      else
        reject(Object.assign(new Error(`engine ping answered HTTP ${res.statusCode}`), { statusCode: res.statusCode }));
    });
    req.once('timeout', () => req.destroy(new Error('engine ping timed out')));
    req.once('error', (err: NodeJS.ErrnoException & { address?: string }) =>
      reject(Object.assign(err, { address: err.address ?? socketPath })),
    );
    req.end();
  });
}
