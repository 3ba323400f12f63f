/**
 * The mcp plugin's work: the configured servers (supervised handles), their tools as a model would
 * see them, tool calls with the caller's causality and deadline, and the exposure of daemon events
 * to `daemon-control mcp`. A plain class; the plugin's index binds its events to it.
 */
import type { Logger } from 'pino';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import { DaemonError, type CallContext, type PluginContext } from '../../daemon/plugin-api.js';
import type { McpConfig } from './config.js';
import { toolsFor, type EventDoc, type ExposedTool } from './expose.js';
import { Invoker } from './invoke.js';
import { modelToolName, providerProblem } from './model-tools.js';
import { ServerHandle } from './server-handle.js';

export interface McpServiceDeps {
  config: McpConfig;
  log: Logger;
  request: PluginContext['request'];
  emit: PluginContext['emit'];
  setStatus: PluginContext['setStatus'];
  env?: NodeJS.ProcessEnv;
}

export interface ToolView {
  server: string;
  name: string;
  /** The name a model sees: `<server>__<tool>`. */
  model_name: string;
  title: string | null;
  description: string | null;
  input_schema: Record<string, unknown>;
  annotations: Record<string, unknown> | null;
  /** Why a model API would refuse it (then agents do not get it); null when usable. */
  problem: string | null;
}

export class McpService {
  private readonly handles = new Map<string, ServerHandle>();
  readonly invoker: Invoker;
  /** Tools already reported as unusable, so a listing repeated from the cache does not repeat the report. */
  private readonly reported = new Set<string>();

  constructor(private readonly deps: McpServiceDeps) {
    this.invoker = new Invoker(deps.request);
    const c = deps.config;
    for (const [name, spec] of Object.entries(c.servers)) {
      this.handles.set(
        name,
        new ServerHandle(name, spec, {
          callTimeoutMs: c.call_timeout_ms,
          startTimeoutMs: c.start_timeout_ms,
          restartInitialMs: c.restart_initial_ms,
          restartMaxMs: c.restart_max_ms,
          stableMs: c.stable_ms,
          log: deps.log,
          env: deps.env ?? process.env,
          onState: (h) => this.stateChanged(h),
          onToolsChanged: (h) => deps.emit('mcp:tools_changed', { server: h.name }),
        }),
      );
    }
  }

  private stateChanged(h: ServerHandle): void {
    this.deps.emit('mcp:server_state', {
      server: h.name,
      state: h.state,
      reason: h.reason,
      pid: h.pid,
      restarts: h.restarts,
    });
    const bad = [...this.handles.values()].filter((x) => x.state === 'failed' || x.state === 'backoff');
    if (h.state === 'stopped') return;
    if (bad.length)
      this.deps.setStatus(
        'degraded',
        bad.map((x) => `server ${x.name} ${x.state}: ${x.reason ?? 'unknown'}`).join('; '),
        'BACKEND_UNAVAILABLE',
      );
    else this.deps.setStatus('ok');
  }

  handle(name: string): ServerHandle {
    const h = this.handles.get(name);
    if (!h) {
      const known = [...this.handles.keys()];
      throw new DaemonError(
        'NOT_FOUND',
        `no MCP server "${name}" (configured in mcp.servers: ${known.join(', ') || 'none'})`,
        { server: name, servers: known },
      );
    }
    return h;
  }

  servers(): Record<string, unknown> {
    return {
      servers: [...this.handles.values()].map((h) => ({
        name: h.name,
        transport: h.transportKind,
        ...(h.spec.command !== undefined ? { command: h.spec.command, args: h.spec.args } : { url: h.spec.url }),
        state: h.state,
        reason: h.reason,
        pid: h.pid,
        restarts: h.restarts,
        started_at: h.startedAt === null ? null : h.startedAt / 1000,
        retry_at: h.retryAt === null ? null : h.retryAt / 1000,
        server_info: h.serverInfo,
        tools: h.cachedTools?.length ?? null,
        calls: h.calls,
        in_flight: h.inFlight,
      })),
    };
  }

  private view(server: string, t: Tool): ToolView {
    const model = modelToolName(server, t.name);
    const problem = providerProblem(model, t.inputSchema);
    if (problem && !this.reported.has(model)) {
      this.reported.add(model);
      this.deps.log.warn({ server, tool: t.name, problem }, 'mcp tool not usable by models');
      this.deps.emit('mcp:tool_rejected', { server, tool: t.name, model_name: model, reason: problem });
    }
    return {
      server,
      name: t.name,
      model_name: model,
      title: t.title ?? (t.annotations?.title as string | undefined) ?? null,
      description: t.description ?? null,
      input_schema: t.inputSchema as Record<string, unknown>,
      annotations: (t.annotations as Record<string, unknown> | undefined) ?? null,
      problem,
    };
  }

  /** One server's tools, or every server's (starting those not running); a server that fails is named under `errors`. */
  async tools(
    input: { server?: string | undefined; refresh: boolean },
    call: CallContext,
  ): Promise<{ tools: ToolView[]; errors: Record<string, { code: string; message: string }> }> {
    const names = input.server !== undefined ? [this.handle(input.server).name] : [...this.handles.keys()];
    const errors: Record<string, { code: string; message: string }> = {};
    const lists = await Promise.all(
      names.map(async (n) => {
        try {
          return (await this.handles.get(n)!.listTools(call.deadline, input.refresh)).map((t) => this.view(n, t));
        } catch (e) {
          if (input.server !== undefined) throw e;
          const de = e as DaemonError;
          errors[n] = { code: de.code, message: de.message };
          return [];
        }
      }),
    );
    return { tools: lists.flat(), errors };
  }

  async call(
    input: { server: string; tool: string; arguments: Record<string, unknown> },
    call: CallContext,
  ): Promise<Record<string, unknown>> {
    const h = this.handle(input.server);
    const known = h.cachedTools ?? (await h.listTools(call.deadline));
    if (!known.some((t) => t.name === input.tool)) {
      throw new DaemonError(
        'NOT_FOUND',
        `MCP server ${h.name} has no tool "${input.tool}" (it has: ${known.map((t) => t.name).join(', ') || 'none'})`,
        { server: h.name, tool: input.tool },
      );
    }
    const who = { server: h.name, tool: input.tool, agent_id: call.context.agent_id ?? null };
    call.emit('mcp:call_started', { ...who, deadline: call.deadline / 1000 });
    const t0 = performance.now();
    let result: CallToolResult | null = null;
    let code: string | null = null;
    try {
      result = await h.call(input.tool, input.arguments, { signal: call.signal, deadline: call.deadline });
      return {
        server: h.name,
        tool: input.tool,
        content: result.content,
        ...(result.structuredContent !== undefined ? { structured_content: result.structuredContent } : {}),
        is_error: result.isError === true,
        duration_ms: Math.round((performance.now() - t0) * 1000) / 1000,
      };
    } catch (e) {
      code = (e as DaemonError).code ?? 'HANDLER_ERROR';
      throw e;
    } finally {
      call.emit('mcp:call_finished', {
        ...who,
        duration_ms: Math.round((performance.now() - t0) * 1000) / 1000,
        is_error: code !== null || result?.isError === true,
        error_code: code,
      });
    }
  }

  /** The daemon events offered as MCP tools (`mcp.expose`, or the list given). */
  async exposed(
    input: { expose?: string[] | undefined },
    call: CallContext,
  ): Promise<{ expose: string[]; tools: ExposedTool[] }> {
    const expose = input.expose ?? this.deps.config.expose;
    const r = await call.request<{ events: Record<string, EventDoc[]> }>('system:discover', { schemas: true });
    return { expose, tools: toolsFor(r.events, expose) };
  }

  health(): Record<string, unknown> {
    const servers: Record<string, unknown> = {};
    for (const h of this.handles.values())
      servers[h.name] = {
        state: h.state,
        ...(h.reason ? { reason: h.reason } : {}),
        restarts: h.restarts,
        in_flight: h.inFlight,
      };
    return { servers, invocations: this.invoker.inFlight };
  }

  async stop(): Promise<void> {
    this.invoker.abortAll();
    await Promise.all([...this.handles.values()].map((h) => h.stop()));
  }
}
