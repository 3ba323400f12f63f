/**
 * `daemon-control mcp`: agentd as an MCP server on stdio, with the official SDK. The tools are the
 * daemon events `mcp.expose` chooses, named `<ns>_<action>`, with the JSON Schemas the catalog
 * documents (`mcp:exposed`). A call runs through `mcp:invoke` under a causality root of its own, so
 * the events it causes (sandbox output, a turn's tokens and tool calls, a workflow's steps) become
 * progress notifications when the client sent a progress token, and `mcp:abort` cancels it when
 * the client cancels. A typed error is a tool error whose text starts with its code. KG nodes,
 * agent transcripts and workflow runs are resources. stdout carries the protocol only.
 */
import { randomBytes } from 'node:crypto';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  type CallToolResult,
  type ReadResourceResult,
  type ServerNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { EventClient, type Subscription } from '../../client/event-client.js';
import { DaemonError } from '../../client/errors.js';
import type { EventFrame } from '../../client/protocol.js';
import { progressLine, PROGRESS_PATTERNS } from './mcp-progress.js';
import { transcript } from './mcp-transcript.js';

interface ExposedTool {
  name: string;
  event: string;
  description: string;
  input_schema: Record<string, unknown>;
  default_timeout_ms: number | null;
}

export interface McpServerOptions {
  socketPath: string;
  /** Instead of mcp.expose. */
  expose?: string[];
  /** Where diagnostics go (never stdout: it carries the protocol). */
  warn(line: string): void;
}

/** The MCP error code for "resource not found" (the spec's -32002). */
const RESOURCE_NOT_FOUND = -32002;
const DEFAULT_CALL_TIMEOUT_MS = 120_000;

/**
 * A JSON-RPC error for the client. Not an McpError: the SDK sends an error's message as is, and
 * McpError's message already carries an "MCP error <code>:" prefix the client would add again.
 */
const rpcError = (code: number, message: string, data?: unknown): Error =>
  Object.assign(new Error(message), { code, ...(data === undefined ? {} : { data }) });

const errorText = (e: DaemonError): string =>
  `${e.code}: ${e.message}${e.details && Object.keys(e.details).length ? `\n${JSON.stringify(e.details)}` : ''}`;

function asDaemonError(e: unknown): DaemonError {
  return e instanceof DaemonError ? e : new DaemonError('HANDLER_ERROR', e instanceof Error ? e.message : String(e));
}

/** Progress routing: the events of calls whose client asked for progress, by the call's causality root. */
class ProgressRouter {
  private sub: Subscription | null = null;
  private subscribing: Promise<void> | null = null;
  private readonly routes = new Map<string, (ev: EventFrame) => void>();
  private idle: NodeJS.Timeout | null = null;

  constructor(private readonly client: EventClient) {}

  async add(callId: string, fn: (ev: EventFrame) => void): Promise<void> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    this.routes.set(callId, fn);
    if (!this.sub) {
      this.subscribing ??= this.client
        .subscribe(PROGRESS_PATTERNS, (ev) => this.routes.get(ev.context?.root_id ?? '')?.(ev))
        .then((s) => void (this.sub = s))
        .finally(() => (this.subscribing = null));
      await this.subscribing;
    }
  }

  remove(callId: string): void {
    this.routes.delete(callId);
    // Daemon-wide output is not worth receiving while no call wants it; a burst of calls keeps one subscription.
    if (this.routes.size === 0 && this.sub && !this.idle) {
      this.idle = setTimeout(() => {
        this.idle = null;
        if (this.routes.size > 0 || !this.sub) return;
        const sub = this.sub;
        this.sub = null;
        void sub.unsubscribe().catch(() => undefined);
      }, 5000);
      this.idle.unref();
    }
  }
}

export async function runMcpServer(o: McpServerOptions): Promise<number> {
  let client: EventClient;
  try {
    client = await EventClient.connect({ socketPath: o.socketPath, reconnect: true, connectTimeoutMs: 2000 });
  } catch {
    o.warn(`agentd is not running (no answer on ${o.socketPath}); start it with: daemon-control start`);
    return 1;
  }
  const fetchTools = async (): Promise<Map<string, ExposedTool>> => {
    const r = await client.request<{ tools: ExposedTool[] }>('mcp:exposed', o.expose ? { expose: o.expose } : {}, {
      timeoutMs: 10_000,
    });
    return new Map(r.tools.map((t) => [t.name, t]));
  };
  let tools: Map<string, ExposedTool>;
  try {
    tools = await fetchTools();
  } catch (e) {
    const de = asDaemonError(e);
    o.warn(
      de.code === 'UNKNOWN_EVENT' || de.code === 'UNAVAILABLE'
        ? `the daemon's mcp plugin is not available (${de.message})`
        : `mcp:exposed failed: ${errorText(de)}`,
    );
    await client.close();
    return 1;
  }

  const mcp = new McpServer(
    { name: 'agentd', version: '1.0.0' },
    {
      capabilities: { tools: { listChanged: true } },
      instructions:
        'agentd runs AI agents, workflows, sandboxed code and a knowledge graph. Each tool is one daemon event (<namespace>_<action>); errors start with their code (NOT_FOUND, INVALID_DATA, UNAVAILABLE, BUDGET_EXCEEDED, ...).',
    },
  );
  // The tools come as JSON Schemas from the daemon, not as zod shapes, so they are served by the
  // protocol-level handlers of the underlying server; McpServer keeps the resources.
  const server = mcp.server;
  const progress = new ProgressRouter(client);
  let seq = 0;
  const prefix = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;

  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: [...tools.values()].map((t) => ({
      name: t.name,
      description: t.description,
      inputSchema: t.input_schema as { type: 'object' },
    })),
  }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const tool = tools.get(req.params.name);
    if (!tool)
      throw rpcError(
        ErrorCode.InvalidParams,
        `unknown tool "${req.params.name}" (mcp.expose chooses the daemon events offered)`,
      );
    const callId = `m${prefix}-${(++seq).toString(36)}`;
    const token = req.params._meta?.progressToken;
    if (token !== undefined) {
      let n = 0;
      await progress.add(callId, (ev) => {
        const message = progressLine(ev);
        if (message === null) return;
        const note: ServerNotification = {
          method: 'notifications/progress',
          params: { progressToken: token, progress: ++n, message },
        };
        void extra.sendNotification(note).catch(() => undefined);
      });
    }
    const onCancel = (): void =>
      void client.request('mcp:abort', { call_id: callId }, { timeoutMs: 10_000 }).catch(() => undefined);
    extra.signal.addEventListener('abort', onCancel, { once: true });
    try {
      const data = await client.request(
        'mcp:invoke',
        { event: tool.event, data: req.params.arguments ?? {}, call_id: callId },
        { timeoutMs: tool.default_timeout_ms ?? DEFAULT_CALL_TIMEOUT_MS },
      );
      return { content: [{ type: 'text', text: JSON.stringify(data, null, 2) }], structuredContent: data };
    } catch (e) {
      return { isError: true, content: [{ type: 'text', text: errorText(asDaemonError(e)) }] };
    } finally {
      extra.signal.removeEventListener('abort', onCancel);
      if (token !== undefined) progress.remove(callId);
    }
  });

  registerResources(mcp, client);

  // A restarted daemon may offer other events (a plugin added or gone): tell the client.
  client.on('reconnect', () => {
    void fetchTools().then(
      (next) => {
        const same = next.size === tools.size && [...next.keys()].every((k) => tools.has(k));
        tools = next;
        if (!same) void server.sendToolListChanged().catch(() => undefined);
      },
      (e: unknown) => o.warn(`after reconnecting, mcp:exposed failed: ${asDaemonError(e).message}`),
    );
  });

  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
  });
  await mcp.connect(transport);
  await closed;
  await mcp.close().catch(() => undefined);
  await client.close();
  return 0;
}

/** Read one daemon answer for a resource; NOT_FOUND becomes the spec's resource-not-found error. */
async function read(
  client: EventClient,
  uri: URL,
  event: string,
  data: Record<string, unknown>,
  render: (r: Record<string, unknown>) => { text: string; mimeType: string },
): Promise<ReadResourceResult> {
  try {
    const r = await client.request(event, data, { timeoutMs: 30_000 });
    const { text, mimeType } = render(r);
    return { contents: [{ uri: uri.href, mimeType, text }] };
  } catch (e) {
    const de = asDaemonError(e);
    throw rpcError(de.code === 'NOT_FOUND' ? RESOURCE_NOT_FOUND : ErrorCode.InternalError, errorText(de), {
      uri: uri.href,
    });
  }
}

/** List through an event that may be absent (no workflow plugin): nothing to list then. */
async function listOr<T>(
  client: EventClient,
  event: string,
  data: Record<string, unknown>,
  pick: (r: Record<string, unknown>) => T[],
): Promise<T[]> {
  try {
    return pick(await client.request(event, data, { timeoutMs: 10_000 }));
  } catch {
    return [];
  }
}

const json = (r: unknown): { text: string; mimeType: string } => ({
  text: JSON.stringify(r, null, 2),
  mimeType: 'application/json',
});
const one = (v: string | string[] | undefined): string =>
  decodeURIComponent(Array.isArray(v) ? (v[0] ?? '') : (v ?? ''));
const LIST_LIMIT = 100;

function registerResources(mcp: McpServer, client: EventClient): void {
  mcp.registerResource(
    'kg-node',
    new ResourceTemplate('agentd://kg/node/{id}', {
      list: async () => ({
        resources: await listOr(client, 'kg:find', { limit: LIST_LIMIT }, (r) =>
          (r.nodes as Array<{ id: string; label: string }>).map((n) => ({
            uri: `agentd://kg/node/${encodeURIComponent(n.id)}`,
            name: n.id,
            title: `${n.label} ${n.id}`,
            mimeType: 'application/json',
          })),
        ),
      }),
    }),
    {
      title: 'Knowledge graph node',
      description: 'A node of the knowledge graph with its label and properties (kg:get)',
      mimeType: 'application/json',
    },
    (uri, v) => read(client, uri, 'kg:get', { id: one(v.id) }, json),
  );

  mcp.registerResource(
    'agent-transcript',
    new ResourceTemplate('agentd://agent/{agent_id}/transcript', {
      list: async () => ({
        resources: await listOr(client, 'agent:list', { limit: LIST_LIMIT }, (r) =>
          (r.agents as Array<{ agent_id: string; profile: string | null; status: string }>).map((a) => ({
            uri: `agentd://agent/${encodeURIComponent(a.agent_id)}/transcript`,
            name: a.agent_id,
            title: `agent ${a.agent_id}${a.profile ? ` (${a.profile})` : ''}, ${a.status}`,
            mimeType: 'text/markdown',
          })),
        ),
      }),
    }),
    {
      title: 'Agent transcript',
      description: "An agent's conversation: messages, tool calls and results, as Markdown (agent:info)",
      mimeType: 'text/markdown',
    },
    (uri, v) =>
      read(client, uri, 'agent:info', { agent_id: one(v.agent_id), history_limit: 10_000, turns_limit: 0 }, (r) => ({
        text: transcript(r),
        mimeType: 'text/markdown',
      })),
  );

  mcp.registerResource(
    'workflow-run',
    new ResourceTemplate('agentd://workflow/run/{run_id}', {
      list: async () => ({
        resources: await listOr(client, 'workflow:runs', { limit: LIST_LIMIT }, (r) =>
          ((r.runs ?? []) as Array<{ run_id: string; workflow?: string; status?: string }>).map((w) => ({
            uri: `agentd://workflow/run/${encodeURIComponent(w.run_id)}`,
            name: w.run_id,
            title: `${w.workflow ?? 'workflow'} ${w.run_id}${w.status ? `, ${w.status}` : ''}`,
            mimeType: 'application/json',
          })),
        ),
      }),
    }),
    {
      title: 'Workflow run',
      description: 'A workflow run: status, steps with their outputs, cost (workflow:status)',
      mimeType: 'application/json',
    },
    (uri, v) => read(client, uri, 'workflow:status', { run_id: one(v.run_id) }, json),
  );
}
