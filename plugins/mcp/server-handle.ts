/**
 * One supervised MCP server, reached through the official SDK's client: started on demand (a stdio
 * process or a Streamable HTTP session), restarted with backoff when a running server exits, its
 * tool list cached (and dropped when the server says it changed). Every failure is a DaemonError:
 * a server that cannot start or exits during a call is UNAVAILABLE, a call it does not answer in
 * time is TIMEOUT. The SDK is imported on first start, so a daemon without MCP servers never loads it.
 */
import type { Logger } from 'pino';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { DaemonError } from '../../daemon/plugin-api.js';
import type { ServerConfig } from './config.js';

export type ServerState = 'idle' | 'starting' | 'ready' | 'backoff' | 'failed' | 'stopped';

export interface HandleOptions {
  callTimeoutMs: number;
  startTimeoutMs: number;
  restartInitialMs: number;
  restartMaxMs: number;
  stableMs: number;
  log: Logger;
  /** The daemon's environment, for `${NAME}` in env and headers. */
  env: NodeJS.ProcessEnv;
  onState(h: ServerHandle): void;
  onToolsChanged(h: ServerHandle): void;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Epoch ms by which the caller needs the answer. */
  deadline: number;
  onProgress?: (p: { progress: number; total?: number; message?: string }) => void;
}

/** JSON-RPC error codes the SDK raises (types.ts ErrorCode), kept here so the SDK loads lazily. */
const CONNECTION_CLOSED = -32000;
const REQUEST_TIMEOUT = -32001;
const INVALID_PARAMS = -32602;
const METHOD_NOT_FOUND = -32601;

const STDERR_LINES = 20;

const expand = (m: Record<string, string>, env: NodeJS.ProcessEnv): Record<string, string> =>
  Object.fromEntries(
    Object.entries(m).map(([k, v]) => [
      k,
      v.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, n: string) => env[n] ?? ''),
    ]),
  );

export class ServerHandle {
  state: ServerState = 'idle';
  reason: string | null = null;
  pid: number | null = null;
  /** Restarts after the server exited on its own. */
  restarts = 0;
  calls = 0;
  inFlight = 0;
  startedAt: number | null = null;
  retryAt: number | null = null;
  serverInfo: { name: string; version: string } | null = null;
  private failures = 0;
  private client: Client | null = null;
  private starting: Promise<Client> | null = null;
  private tools: Tool[] | null = null;
  private listing: Promise<Tool[]> | null = null;
  private readonly stderr: string[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly name: string,
    readonly spec: ServerConfig,
    private readonly opts: HandleOptions,
  ) {}

  get transportKind(): 'stdio' | 'http' {
    return this.spec.command !== undefined ? 'stdio' : 'http';
  }

  /** The tools last listed, also while the server restarts (null before the first listing). */
  get cachedTools(): Tool[] | null {
    return this.tools;
  }

  private setState(state: ServerState, reason: string | null = null): void {
    if (this.state === state && this.reason === reason) return;
    this.state = state;
    this.reason = reason;
    this.opts.onState(this);
  }

  private lastStderr(): string {
    const tail = this.stderr.slice(-3).join(' | ').trim();
    return tail ? `; it wrote: ${tail.slice(-500)}` : '';
  }

  /** The connected client, starting the server when needed. */
  async connect(deadline: number): Promise<Client> {
    if (this.state === 'stopped')
      throw new DaemonError('UNAVAILABLE', `MCP server ${this.name}: the mcp plugin is stopping`, {
        server: this.name,
      });
    if (this.client && this.state === 'ready') return this.client;
    // Restarting after an exit: a call that can wait for the restart does (a start that failed is not waited for).
    if (!this.starting && this.state === 'backoff' && this.retryAt !== null && this.retryAt < deadline) {
      await new Promise((r) => setTimeout(r, Math.max(0, this.retryAt! - Date.now())));
      return this.connect(deadline);
    }
    if (!this.starting) {
      if (this.retryAt !== null && Date.now() < this.retryAt) {
        const wait = this.retryAt - Date.now();
        throw new DaemonError(
          'UNAVAILABLE',
          `MCP server ${this.name} is ${this.state === 'backoff' ? 'restarting' : 'failing'} (${this.reason ?? 'unknown'}); next start in ${wait} ms`,
          {
            server: this.name,
            state: this.state,
            retry_in_ms: wait,
          },
        );
      }
      this.starting = this.start().finally(() => (this.starting = null));
    }
    const left = deadline - Date.now();
    if (left <= 0)
      throw new DaemonError('TIMEOUT', `MCP server ${this.name}: no time left to wait for its start`, {
        server: this.name,
      });
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.starting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new DaemonError(
                  'TIMEOUT',
                  `MCP server ${this.name} did not finish starting within the call's ${left} ms`,
                  { server: this.name },
                ),
              ),
            left,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async start(): Promise<Client> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.setState('starting');
    this.stderr.length = 0;
    const [{ Client: ClientClass }, types] = await Promise.all([
      import('@modelcontextprotocol/sdk/client/index.js'),
      import('@modelcontextprotocol/sdk/types.js'),
    ]);
    let transport: Transport;
    if (this.spec.command !== undefined) {
      const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');
      const t = new StdioClientTransport({
        command: this.spec.command,
        args: this.spec.args,
        env: expand(this.spec.env, this.opts.env),
        stderr: 'pipe',
        ...(this.spec.cwd ? { cwd: this.spec.cwd } : {}),
      });
      t.stderr?.on('data', (d: Buffer) => {
        for (const line of d.toString('utf8').split('\n')) {
          if (!line.trim()) continue;
          this.stderr.push(line.slice(0, 1000));
          if (this.stderr.length > STDERR_LINES) this.stderr.shift();
          this.opts.log.debug({ server: this.name, line: line.slice(0, 1000) }, 'mcp server stderr');
        }
      });
      transport = t;
    } else {
      const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
      transport = new StreamableHTTPClientTransport(new URL(this.spec.url!), {
        requestInit: { headers: expand(this.spec.headers, this.opts.env) },
      });
    }
    const client = new ClientClass({ name: 'agentd', version: '1' }, { capabilities: {} });
    client.onclose = () => this.closed(client);
    client.setNotificationHandler(types.ToolListChangedNotificationSchema, () => {
      this.tools = null;
      this.opts.onToolsChanged(this);
    });
    const t0 = Date.now();
    try {
      await client.connect(transport, { timeout: this.spec.start_timeout_ms ?? this.opts.startTimeoutMs });
    } catch (e) {
      await transport.close().catch(() => undefined);
      if (this.state === 'stopped')
        throw new DaemonError('UNAVAILABLE', `MCP server ${this.name}: the mcp plugin is stopping`, {
          server: this.name,
        });
      this.failures++;
      const why = this.describeStartFailure(e);
      this.retryAt = Date.now() + this.backoff();
      this.setState('failed', why);
      this.opts.log.warn({ server: this.name, reason: why, ms: Date.now() - t0 }, 'mcp server did not start');
      throw new DaemonError('UNAVAILABLE', `MCP server ${this.name} did not start: ${why}`, { server: this.name });
    }
    if (this.state === 'stopped') {
      await client.close().catch(() => undefined);
      throw new DaemonError('UNAVAILABLE', `MCP server ${this.name}: the mcp plugin is stopping`, {
        server: this.name,
      });
    }
    this.client = client;
    this.pid = 'pid' in transport ? (transport as { pid: number | null }).pid : null;
    this.startedAt = Date.now();
    this.retryAt = null;
    const info = client.getServerVersion();
    this.serverInfo = info ? { name: info.name, version: info.version } : null;
    this.setState('ready');
    this.opts.log.info(
      { server: this.name, pid: this.pid, ms: Date.now() - t0, server_info: this.serverInfo },
      'mcp server ready',
    );
    return client;
  }

  private describeStartFailure(e: unknown): string {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOENT') return `command not found: ${JSON.stringify(this.spec.command)}`;
    if (code === 'EACCES') return `command not executable: ${JSON.stringify(this.spec.command)}`;
    if (code === REQUEST_TIMEOUT)
      return `no answer to initialize within ${this.spec.start_timeout_ms ?? this.opts.startTimeoutMs} ms${this.lastStderr()}`;
    if (code === CONNECTION_CLOSED) return `it exited before answering initialize${this.lastStderr()}`;
    return `${e instanceof Error ? e.message : String(e)}${this.lastStderr()}`;
  }

  private backoff(): number {
    return Math.min(this.opts.restartMaxMs, this.opts.restartInitialMs * 2 ** Math.max(0, this.failures - 1));
  }

  /** The connection ended: the process exited (or the plugin closed it). A server that was serving is restarted after a backoff. */
  private closed(client: Client): void {
    if (client !== this.client) return; // a start that failed, or a client already replaced
    this.client = null;
    this.pid = null;
    if (this.state === 'stopped') return;
    if (this.startedAt !== null && Date.now() - this.startedAt >= this.opts.stableMs) this.failures = 0;
    this.failures++;
    this.restarts++;
    const delay = this.backoff();
    this.retryAt = Date.now() + delay;
    const why = `the server exited${this.lastStderr()}`;
    this.setState('backoff', why);
    this.opts.log.warn(
      { server: this.name, restarts: this.restarts, delay_ms: delay, reason: why },
      'mcp server exited; restarting',
    );
    this.timer = setTimeout(() => {
      this.timer = null;
      this.retryAt = null;
      if (this.state === 'backoff') this.connect(Date.now() + this.opts.startTimeoutMs + 1000).catch(() => undefined);
    }, delay);
    this.timer.unref();
  }

  /** The server's tools (listed once, then cached until it says they changed). */
  async listTools(deadline: number, refresh = false): Promise<Tool[]> {
    if (this.tools && !refresh) return this.tools;
    const client = await this.connect(deadline);
    if (!this.listing) {
      this.listing = (async () => {
        const all: Tool[] = [];
        let cursor: string | undefined;
        do {
          const r = await client.listTools(cursor ? { cursor } : {}, { timeout: Math.max(100, deadline - Date.now()) });
          all.push(...r.tools);
          cursor = r.nextCursor;
        } while (cursor && all.length < 10_000);
        this.tools = all;
        return all;
      })().finally(() => (this.listing = null));
    }
    try {
      return await this.listing;
    } catch (e) {
      throw this.mapError(e, 'tools/list', deadline);
    }
  }

  async call(tool: string, args: Record<string, unknown>, o: CallOptions): Promise<CallToolResult> {
    const timeout = Math.min(this.spec.timeout_ms ?? this.opts.callTimeoutMs, o.deadline - Date.now());
    if (timeout <= 0)
      throw new DaemonError('TIMEOUT', `MCP server ${this.name}: no time left for ${tool}`, {
        server: this.name,
        tool,
      });
    // A ready server is called at once: the wait for a start is only for one that is not.
    const client = this.client && this.state === 'ready' ? this.client : await this.connect(Date.now() + timeout);
    this.calls++;
    this.inFlight++;
    const left = Math.max(1, Math.min(timeout, o.deadline - Date.now()));
    try {
      return (await client.callTool({ name: tool, arguments: args }, undefined, {
        timeout: left,
        ...(o.signal ? { signal: o.signal } : {}),
        ...(o.onProgress ? { onprogress: o.onProgress } : {}),
      })) as CallToolResult;
    } catch (e) {
      // The SDK reports any abort as a request timeout: the caller's reason says what it was.
      if (o.signal?.aborted) {
        const r: unknown = o.signal.reason;
        throw (r as { name?: unknown })?.name === 'DaemonError'
          ? r
          : new DaemonError('CANCELLED', `${tool} on MCP server ${this.name} was cancelled`, {
              server: this.name,
              tool,
            });
      }
      throw this.mapError(e, tool, Date.now() + left);
    } finally {
      this.inFlight--;
    }
  }

  private mapError(e: unknown, what: string, deadline: number): DaemonError {
    if (e instanceof DaemonError) return e;
    if ((e as { name?: unknown })?.name === 'DaemonError') return e as DaemonError;
    const details = { server: this.name, tool: what };
    const code = (e as { code?: unknown }).code;
    const msg = e instanceof Error ? e.message : String(e);
    if (code === REQUEST_TIMEOUT)
      return new DaemonError(
        'TIMEOUT',
        `MCP server ${this.name} did not answer ${what} in time (${Math.max(0, Math.round(deadline - Date.now()))} ms left)`,
        details,
      );
    if (code === CONNECTION_CLOSED)
      return new DaemonError(
        'UNAVAILABLE',
        `MCP server ${this.name} exited during ${what}${this.state === 'backoff' ? '; it is being restarted' : ''}`,
        details,
      );
    if (code === INVALID_PARAMS)
      return new DaemonError('INVALID_DATA', `MCP server ${this.name} refused ${what}: ${msg}`, details);
    if (code === METHOD_NOT_FOUND) return new DaemonError('NOT_FOUND', `MCP server ${this.name}: ${msg}`, details);
    if ((e as { name?: unknown })?.name === 'AbortError')
      return new DaemonError('CANCELLED', `${what} on MCP server ${this.name} was cancelled`, details);
    if (typeof code === 'number')
      return new DaemonError('HANDLER_ERROR', `MCP server ${this.name} failed ${what}: ${msg}`, details);
    // Not a JSON-RPC answer: the HTTP endpoint is unreachable or dropped the session. Start over next time.
    if (this.transportKind === 'http') void this.reset(msg);
    return new DaemonError('UNAVAILABLE', `MCP server ${this.name} is unreachable during ${what}: ${msg}`, details);
  }

  /** Drop an HTTP session that failed; the next call starts a new one (after the backoff). */
  private async reset(why: string): Promise<void> {
    const c = this.client;
    if (!c) return;
    this.client = null;
    this.failures++;
    this.retryAt = Date.now() + this.backoff();
    this.setState('failed', why);
    await c.close().catch(() => undefined);
  }

  /** Close the server (stdin, then SIGTERM, then SIGKILL for a process). */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.setState('stopped');
    const c = this.client ?? (this.starting ? await this.starting.catch(() => null) : null);
    this.client = null;
    this.pid = null;
    await c?.close().catch(() => undefined);
  }
}
